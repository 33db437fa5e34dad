//! Where webhook deliveries may go: never to this machine's or a private network's
//! addresses unless the operator allows it (server-side request forgery), checked on
//! the addresses a name resolves to at delivery time, which are then the only ones
//! connected to (so a name cannot switch to a private address between check and use).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use aggregator_core::error::{Error, Result};
use reqwest::Url;

/// The longest endpoint URL taken.
pub const MAX_URL_LENGTH: usize = 2_048;

/// Refuses (`Invalid`, field `url`) a URL that is not `http` or `https`, has no host,
/// carries credentials or a fragment, or is longer than [`MAX_URL_LENGTH`].
pub fn parse_endpoint_url(text: &str) -> Result<Url> {
    if text.len() > MAX_URL_LENGTH {
        return Err(Error::invalid(
            "url",
            format!("is longer than {MAX_URL_LENGTH} characters"),
        ));
    }
    let url = Url::parse(text).map_err(|e| Error::invalid("url", e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid("url", "must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid("url", "must name a host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::invalid(
            "url",
            "must not carry credentials (sign with the endpoint's secret instead)",
        ));
    }
    if url.fragment().is_some() {
        return Err(Error::invalid("url", "must not have a fragment"));
    }
    Ok(url)
}

/// True for an address on the public internet: not loopback, private, shared
/// (carrier-grade NAT), link-local, site- or unique-local, unspecified, multicast,
/// broadcast, documentation, benchmarking or reserved space, and not an IPv4 address of
/// those kinds carried in IPv6 (IPv4-compatible `::a.b.c.d`, mapped `::ffff:a.b.c.d`,
/// translated `::ffff:0:a.b.c.d`, NAT64 `64:ff9b::/96` and `64:ff9b:1::/48`, 6to4
/// `2002::/16`).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            let embedded =
                |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
            // ::a.b.c.d and ::ffff:a.b.c.d (also ::1 and ::, whose IPv4 form is not public).
            if let Some(v4) = v6.to_ipv4() {
                return is_public_v4(v4);
            }
            // ::ffff:0:a.b.c.d (IPv4-translated).
            if segments[..6] == [0, 0, 0, 0, 0xffff, 0] {
                return is_public_v4(embedded(segments[6], segments[7]));
            }
            // NAT64, well-known prefix: the IPv4 address in the last 32 bits.
            if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public_v4(embedded(segments[6], segments[7]));
            }
            // 6to4: the IPv4 address right after 2002::/16.
            if segments[0] == 0x2002 {
                return is_public_v4(embedded(segments[1], segments[2]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (segments[0] == 0x64 && segments[1] == 0xff9b) // NAT64, local-use 64:ff9b:1::/48
                || (segments[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (segments[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (segments[0] & 0xffc0) == 0xfec0 // site-local fec0::/10
                || (segments[0] == 0x2001 && segments[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_broadcast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 192 && b == 0 && ip.octets()[2] == 0) // IETF protocol assignments
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

/// Resolves `url`'s host and answers the addresses a delivery may connect to: all of
/// them when `allow_private` (an operator setting, for receivers on the same network),
/// otherwise only if every one is public; a name with any private address is refused
/// whole (`Invalid`, field `url`), as is one that resolves to nothing (`Unavailable`,
/// retryable: the name may come back).
pub async fn resolve_destination(url: &Url, allow_private: bool) -> Result<Vec<SocketAddr>> {
    let host = url
        .host_str()
        .ok_or_else(|| Error::invalid("url", "must name a host"))?;
    let port = url
        .port_or_known_default()
        .ok_or_else(|| Error::invalid("url", "has no port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Error::transient(format!("webhook host {host}"), e.to_string()))?
        .collect();
    if addresses.is_empty() {
        return Err(Error::transient(
            format!("webhook host {host}"),
            "resolves to no address",
        ));
    }
    if !allow_private && let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Error::invalid(
            "url",
            format!(
                "{host} resolves to {}, a loopback, private or reserved address; webhooks \
                 go only to public addresses unless the operator allows private ones \
                 (--webhook-allow-private)",
                private.ip()
            ),
        ));
    }
    Ok(addresses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "192.0.2.1",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::7f00:1",
            "::127.0.0.1",
            "::10.0.0.1",
            "::ffff:0:127.0.0.1",
            "64:ff9b:1::a00:1",
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "fec0::1",
            "192.0.0.8",
        ] {
            let ip: IpAddr = private.parse().expect(private);
            assert!(!is_public(ip), "{private} must not count as public");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = public.parse().expect(public);
            assert!(is_public(ip), "{public} is public");
        }
    }

    #[test]
    fn endpoint_urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse_endpoint_url("https://hooks.example.com/orders?x=1").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "https://user:pw@example.com/",
            "https://example.com/#frag",
            "not a url",
            "http://",
        ] {
            let error = parse_endpoint_url(bad).expect_err(bad);
            assert!(error.to_string().contains("url"), "{bad}: {error}");
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LENGTH));
        assert!(parse_endpoint_url(&long).is_err());
    }

    #[tokio::test]
    async fn loopback_and_private_destinations_are_refused_unless_allowed() {
        for url in [
            "http://127.0.0.1:9/hook",
            "http://localhost:9/hook",
            "http://[::1]:9/hook",
            "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data",
        ] {
            let url = parse_endpoint_url(url).expect("shape");
            let error = resolve_destination(&url, false).await.expect_err("refused");
            assert!(
                error.to_string().contains("--webhook-allow-private"),
                "{url}: {error}"
            );
        }
        let url = parse_endpoint_url("http://127.0.0.1:9/hook").expect("shape");
        let allowed = resolve_destination(&url, true).await.expect("allowed");
        assert_eq!(
            allowed,
            vec!["127.0.0.1:9".parse::<SocketAddr>().expect("addr")]
        );
    }
}
