//! Hosts for the multi-host case: one network namespace per host, joined to this one
//! by a veth pair (10.N.i.1 on our side, 10.N.i.2 inside), and on our side of each
//! pair a proxy per service and vendor, so that processes inside reach the local
//! PostgreSQL, RabbitMQ, Redis and mock vendors (which listen on 127.0.0.1 only) over
//! the pair. Taking our end of a pair down partitions that host from everything.
//!
//! Needs root (network namespaces); everything made here is deleted when dropped.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;

use crate::proxy::Proxy;

/// One host: its namespace and both ends of its link.
#[derive(Debug)]
pub(crate) struct Host {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub(crate) namespace: String,
    /// Our end of the veth pair.
    link: String,
    /// Our end's address, where the host reaches the proxies.
    pub(crate) gateway: Ipv4Addr,
    /// The host's own address.
    pub(crate) address: Ipv4Addr,
}

/// The proxies one host reaches the services and vendors through.
#[derive(Debug)]
pub(crate) struct Uplinks {
    pub(crate) postgres: Proxy,
    pub(crate) rabbitmq: Proxy,
    pub(crate) redis: Proxy,
    /// (vendor id, proxy to its API).
    pub(crate) vendors: Vec<(String, Proxy)>,
}

/// The hosts of a case, deleted (namespaces and links) when dropped.
#[derive(Debug)]
pub(crate) struct Hosts {
    pub(crate) hosts: Vec<Host>,
    pub(crate) uplinks: Vec<Uplinks>,
}

/// Runs `ip args`; the error names the command and what it printed.
fn ip(args: &[&str]) -> Result<(), String> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip {}: {e}", args.join(" ")))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// Why hosts cannot be made here, if they cannot (not root, or no `ip`).
pub(crate) fn unavailable() -> Option<String> {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .ok()
        .is_some_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0");
    if !root {
        return Some("network namespaces need root".into());
    }
    if Command::new("ip").arg("-V").output().is_err() {
        return Some("iproute2 (ip) is not installed".into());
    }
    None
}

impl Hosts {
    /// `count` hosts, each with proxies to `postgres`, `rabbitmq`, `redis` and every
    /// `(vendor id, address)`.
    pub(crate) async fn create(
        count: u8,
        postgres: SocketAddr,
        rabbitmq: SocketAddr,
        redis: SocketAddr,
        vendors: &[(String, SocketAddr)],
    ) -> Result<Self, String> {
        let pid = std::process::id();
        let tag = pid & 0xffff;
        let net = u8::try_from(100 + pid % 100).unwrap_or(100);
        let mut made = Self {
            hosts: Vec::new(),
            uplinks: Vec::new(),
        };
        for index in 0..count {
            let host = Host {
                namespace: format!("oa-{tag:x}-{index}"),
                link: format!("oa{tag:x}h{index}"),
                gateway: Ipv4Addr::new(10, net, index, 1),
                address: Ipv4Addr::new(10, net, index, 2),
            };
            let peer = format!("oa{tag:x}n{index}");
            // A namespace of the same name is a leftover of a run of the same PID.
            let _ = ip(&["netns", "del", &host.namespace]);
            let _ = ip(&["link", "del", &host.link]);
            ip(&["netns", "add", &host.namespace])?;
            made.hosts.push(host);
            let host = &made.hosts[usize::from(index)];
            ip(&[
                "link", "add", &host.link, "type", "veth", "peer", "name", &peer,
            ])?;
            ip(&["link", "set", &peer, "netns", &host.namespace])?;
            ip(&[
                "addr",
                "add",
                &format!("{}/24", host.gateway),
                "dev",
                &host.link,
            ])?;
            ip(&["link", "set", &host.link, "up"])?;
            let inside = |args: &[&str]| {
                let mut all = vec!["-n", host.namespace.as_str()];
                all.extend_from_slice(args);
                ip(&all)
            };
            inside(&["addr", "add", &format!("{}/24", host.address), "dev", &peer])?;
            inside(&["link", "set", &peer, "up"])?;
            inside(&["link", "set", "lo", "up"])?;
            let on = IpAddr::V4(host.gateway);
            let proxy = |upstream| Proxy::start_on(on, upstream);
            let mut uplinks = Uplinks {
                postgres: proxy(postgres).await.map_err(|e| e.to_string())?,
                rabbitmq: proxy(rabbitmq).await.map_err(|e| e.to_string())?,
                redis: proxy(redis).await.map_err(|e| e.to_string())?,
                vendors: Vec::new(),
            };
            for (id, addr) in vendors {
                let through = proxy(*addr).await.map_err(|e| e.to_string())?;
                uplinks.vendors.push((id.clone(), through));
            }
            made.uplinks.push(uplinks);
        }
        Ok(made)
    }

    /// Cuts host `index` off from everything (our end of its link down), or joins it
    /// again.
    pub(crate) fn set_partitioned(&self, index: usize, partitioned: bool) -> Result<(), String> {
        let host = self
            .hosts
            .get(index)
            .ok_or_else(|| format!("no host {index}"))?;
        ip(&[
            "link",
            "set",
            &host.link,
            if partitioned { "down" } else { "up" },
        ])
    }

    /// Joins every host again.
    pub(crate) fn heal(&self) {
        for index in 0..self.hosts.len() {
            if let Err(error) = self.set_partitioned(index, false) {
                eprintln!("faults: healing host {index}: {error}");
            }
        }
    }
}

impl Drop for Hosts {
    fn drop(&mut self) {
        for host in &self.hosts {
            let _ = ip(&["netns", "del", &host.namespace]);
            let _ = ip(&["link", "del", &host.link]);
        }
    }
}
