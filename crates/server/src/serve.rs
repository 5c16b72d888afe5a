//! The HTTP/1.1 server: an accept loop that serves the router on each connection with
//! hyper, under the bounds of [`HttpLimits`], and shuts down gracefully.
//!
//! `axum::serve` has no header-read or idle timeout and no limit on connections that never
//! finish their headers, so a client sending one byte every few seconds held a connection
//! and up to 400 KB of buffered headers for as long as it liked. Here every connection has a
//! watchdog ([`watch`]): a request's headers must arrive within `header_timeout`, a
//! keep-alive connection may idle for `keepalive_timeout`, at most `max_incomplete`
//! connections may be sending headers at once (past it the one that has waited longest is
//! closed), and headers over `max_header_bytes` answer 431.

mod watch;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use switchboard_hub::metrics::{bump, NodeMetrics};
use switchboard_hub::Hub;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::HttpLimits;
use watch::{Closed, Pending, Tracked, Watch, WatchedIo};

/// What every connection task shares.
struct Shared {
    router: Router,
    limits: HttpLimits,
    builder: http1::Builder,
    pending: Arc<Pending>,
    hub: Hub,
}

/// Serves `router` on `listener` until `stop` is cancelled; then stops accepting, closes
/// the connections still sending headers or idle, and waits for requests in flight to
/// finish (upgraded sockets are the hub's to drain).
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HttpLimits,
    hub: Hub,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let mut builder = http1::Builder::new();
    builder
        .keep_alive(!limits.keepalive_timeout.is_zero())
        // The watchdog times headers itself: hyper's own timer would also end idle
        // keep-alive connections at the header timeout.
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        // hyper's read buffer otherwise grows to ~400 KB per connection; 8 KiB is its least.
        .max_buf_size(limits.max_header_bytes.max(8192));
    let pending = Arc::new(Pending::new(limits.max_incomplete));
    let shared = Arc::new(Shared { router, limits, builder, pending, hub });
    let tasks = TaskTracker::new();
    loop {
        let (stream, addr) = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
        };
        // Admitted here, in accept order, so that the cap closes the oldest.
        let watch = shared.pending.admit();
        tasks.spawn(connection(shared.clone(), stream, addr, watch, stop.clone()));
    }
    drop(listener);
    // Connections still sending headers have no request to finish.
    shared.pending.close_all();
    tasks.close();
    tasks.wait().await;
    Ok(())
}

/// Connection errors concern one client; anything else (such as running out of file
/// descriptors) would repeat at once, so the loop pauses as hyper's and axum's do.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(e.kind(), ConnectionAborted | ConnectionRefused | ConnectionReset) {
        return;
    }
    tracing::error!(error = %e, "accept failed; pausing 1 s");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One connection's life: hyper serves it while its watchdog keeps time.
async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    addr: SocketAddr,
    watch: Arc<Watch>,
    stop: CancellationToken,
) {
    let io = TokioIo::new(WatchedIo::new(stream, watch.clone(), shared.pending.clone()));
    let service = ConnService {
        router: TowerToHyperService::new(shared.router.clone()),
        addr,
        watch: watch.clone(),
        pending: shared.pending.clone(),
    };
    let conn = shared.builder.serve_connection(io, service).with_upgrades();
    tokio::pin!(conn);
    let watchdog = watch.watchdog(shared.limits);
    tokio::pin!(watchdog);
    let mut stopping = false;
    let closed = loop {
        tokio::select! {
            result = conn.as_mut() => {
                let too_large = result.as_ref().err().is_some_and(hyper::Error::is_parse_too_large);
                if let Err(e) = result {
                    tracing::trace!(error = %e, %addr, "connection ended");
                }
                break too_large.then_some(Closed::TooLarge);
            }
            closed = &mut watchdog => break Some(closed),
            () = stop.cancelled(), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    };
    shared.pending.finish(&watch);
    if let Some(closed) = closed {
        tracing::debug!(%addr, reason = closed.as_str(), "closed an HTTP connection");
        bump(counter(shared.hub.node_metrics(), closed));
    }
}

fn counter(metrics: &NodeMetrics, closed: Closed) -> &AtomicU64 {
    match closed {
        Closed::HeaderTimeout => &metrics.http_header_timeouts,
        Closed::IdleTimeout => &metrics.http_idle_timeouts,
        Closed::Evicted => &metrics.http_incomplete_cap,
        Closed::TooLarge => &metrics.http_header_too_large,
    }
}

/// The router as hyper calls it: each request gets the peer's address as axum's
/// `ConnectInfo`, and marks its connection's headers complete; its response body marks the
/// connection idle once written.
struct ConnService {
    router: TowerToHyperService<Router>,
    addr: SocketAddr,
    watch: Arc<Watch>,
    pending: Arc<Pending>,
}

type Respond = Pin<Box<dyn Future<Output = Result<hyper::Response<Tracked>, Infallible>> + Send>>;

impl Service<hyper::Request<Incoming>> for ConnService {
    type Response = hyper::Response<Tracked>;
    type Error = Infallible;
    type Future = Respond;

    fn call(&self, mut request: hyper::Request<Incoming>) -> Self::Future {
        self.pending.headers_done(&self.watch);
        request.extensions_mut().insert(ConnectInfo(self.addr));
        let response = self.router.call(request);
        let watch = self.watch.clone();
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| Tracked::new(body, watch)))
        })
    }
}
