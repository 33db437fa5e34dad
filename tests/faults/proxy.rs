//! A TCP proxy that can cut its traffic: a network partition between the processes
//! that connect through it and the server behind it. While cut, nothing is forwarded
//! either way and the connections stay open (as in a real partition: TCP keeps
//! retrying, heartbeats go missing); once healed, what was held back flows again, to a
//! peer that may have given the connection up meanwhile.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy to one upstream address.
#[derive(Debug)]
pub(crate) struct Proxy {
    addr: SocketAddr,
    cut: watch::Sender<bool>,
    accept: tokio::task::JoinHandle<()>,
}

impl Proxy {
    /// A proxy on a free local port to `upstream`.
    pub(crate) async fn start(upstream: SocketAddr) -> std::io::Result<Self> {
        Self::start_on(IpAddr::from([127, 0, 0, 1]), upstream).await
    }

    /// A proxy on a free port of address `on` to `upstream`.
    pub(crate) async fn start_on(on: IpAddr, upstream: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(SocketAddr::new(on, 0)).await?;
        let addr = listener.local_addr()?;
        let (cut, watched) = watch::channel(false);
        let watched = Arc::new(watched);
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let watched = Arc::clone(&watched);
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let up = pump(client_read, server_write, (*watched).clone());
                    let down = pump(server_read, client_write, (*watched).clone());
                    tokio::select! {
                        () = up => {}
                        () = down => {}
                    }
                });
            }
        });
        Ok(Self { addr, cut, accept })
    }

    /// Where clients connect.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts (true) or heals (false) every connection through the proxy.
    pub(crate) fn set_cut(&self, cut: bool) {
        let _ = self.cut.send(cut);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards `from` to `to` until either side closes, holding everything back while
/// the partition is on.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut cut: watch::Receiver<bool>,
) {
    let mut buffer = vec![0_u8; 16 * 1024];
    loop {
        if cut.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if cut.wait_for(|cut| !*cut).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
