//! Shutdown, in order: fail /readyz, wait the grace period, tell every session to drain
//! and close with 1001, stop accepting (the HTTP server closes idle connections and those
//! still sending headers, and lets requests in flight finish), wait for sessions under a
//! deadline, then close the broker and the store.

use std::time::Duration;

use switchboard_hub::Hub;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Settings;

/// Resolves on Ctrl-C or SIGTERM.
pub async fn signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// Runs the choreography. Idempotent in effect: each step tolerates having run before.
pub(crate) async fn drain(
    hub: &Hub,
    settings: &Settings,
    stop_accepting: CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
) {
    hub.mark_unready();
    tracing::info!(grace = ?settings.drain_grace, "shutting down: /readyz now fails");
    tokio::time::sleep(settings.drain_grace).await;
    let open = hub.sessions().len();
    hub.shutdown_token().cancel();
    stop_accepting.cancel();
    hub.sessions().close();
    tracing::info!(sessions = open, "closing sockets with 1001 after their queues drain");
    if tokio::time::timeout(settings.drain_timeout, hub.sessions().wait()).await.is_err() {
        tracing::warn!(left = hub.sessions().len(), "drain deadline passed; dropping remaining sockets");
    }
    if tokio::time::timeout(Duration::from_secs(5), server).await.is_err() {
        tracing::warn!("HTTP server did not stop within 5 s");
    }
    hub.close_backends().await;
    tracing::info!("shutdown complete");
}

/// Deletes expired idempotency keys every 10 minutes.
pub(crate) async fn purge_loop(hub: Hub) {
    let mut tick = tokio::time::interval(Duration::from_secs(600));
    loop {
        tick.tick().await;
        match hub.store().purge_expired().await {
            Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired idempotency keys"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "idempotency purge failed"),
        }
    }
}
