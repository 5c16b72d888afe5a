//! A TCP proxy for fault tests: it sits between a node and its broker (or store) server,
//! forwards both ways, and on [`FaultProxy::cut`] stops forwarding without closing anything,
//! as a half-open connection or a partition does: the node sees silence, not an error, and
//! new connections hang too. [`FaultProxy::heal`] lets new connections through again; those
//! made before the cut stay silent, as after a real partition.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// The proxy's state: how many cuts so far, and whether one is in effect.
#[derive(Clone, Copy, Default)]
struct Mode {
    cuts: u64,
    cut: bool,
}

/// A proxy to one server, on a free loopback port. Stops when dropped.
pub struct FaultProxy {
    addr: SocketAddr,
    mode: Arc<watch::Sender<Mode>>,
    accept: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Starts a proxy to `target` (`host:port`).
    pub async fn start(target: &str) -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(watch::channel(Mode::default()).0);
        let (target, shared) = (target.to_owned(), mode.clone());
        let accept = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(forward(client, target.clone(), shared.subscribe()));
            }
        });
        Ok(Self { addr, mode, accept })
    }

    /// Where to connect instead of the server.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops forwarding on every connection, and holds new ones without forwarding.
    pub fn cut(&self) {
        self.mode.send_modify(|m| *m = Mode { cuts: m.cuts + 1, cut: true });
    }

    /// Forwards new connections again.
    pub fn heal(&self) {
        self.mode.send_modify(|m| m.cut = false);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Forwards one connection until a cut; then holds it, silent, until the proxy is dropped.
async fn forward(mut client: TcpStream, target: String, mut mode: watch::Receiver<Mode>) {
    let born = *mode.borrow();
    if born.cut {
        return hold(mode).await;
    }
    let Ok(mut server) = TcpStream::connect(&target).await else { return };
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let (mut up, mut down) = (vec![0u8; 16 << 10], vec![0u8; 16 << 10]);
    loop {
        tokio::select! {
            read = from_client.read(&mut up) => match read {
                Ok(n) if n > 0 => if to_server.write_all(&up[..n]).await.is_err() { return },
                _ => return,
            },
            read = from_server.read(&mut down) => match read {
                Ok(n) if n > 0 => if to_client.write_all(&down[..n]).await.is_err() { return },
                _ => return,
            },
            changed = mode.changed() => {
                if changed.is_err() { return }
                if mode.borrow().cuts != born.cuts {
                    return hold(mode).await;
                }
            }
        }
    }
}

/// Waits until the proxy is dropped; the caller keeps its sockets open meanwhile. A heal
/// does not end it: a partition's connections do not come back.
async fn hold(mut mode: watch::Receiver<Mode>) {
    while mode.changed().await.is_ok() {}
}
