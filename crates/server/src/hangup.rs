//! SIGHUP: this version applies configuration only at start, so a hangup does not reload.
//! Instead of dying (the default for SIGHUP), the node checks the configuration and manifests
//! on disk as a restart would read them and logs the verdict: an operator who edited them
//! learns whether the rolling restart that applies them will start (docs/OPERATIONS.md).

use switchboard_config::EnvSecrets;

use crate::cli::ServeArgs;
use crate::{wire, Settings};

/// Answers every SIGHUP until the process ends.
pub async fn check_on_hangup(args: ServeArgs) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else { return };
        while hangups.recv().await.is_some() {
            match check(&args) {
                Ok(apps) => tracing::warn!(
                    apps,
                    "SIGHUP: the configuration on disk is valid, but a running node does not reload; \
                     restart it to apply changes (one node at a time: docs/OPERATIONS.md)"
                ),
                Err(e) => tracing::error!(
                    error = format!("{e:#}"),
                    "SIGHUP: the configuration on disk would not start; this node runs on unchanged"
                ),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = args;
}

/// Reads the settings and manifests as `serve` would; how many apps they hold.
fn check(args: &ServeArgs) -> anyhow::Result<usize> {
    let settings = Settings::from_args(args.clone())?;
    let loaded = wire::manifests(&settings)?;
    // The demo app's secrets live in the store; only manifests of your own are resolved.
    if !settings.manifests.is_empty() {
        for manifest in &loaded {
            switchboard_config::resolve(manifest, &EnvSecrets::default())?;
        }
    }
    Ok(loaded.len())
}
