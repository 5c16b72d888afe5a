//! The manifest's `inbox` section: how long and how many notifications (per user) and alerts
//! (per group) an app keeps, resolved to the hub's [`InboxSpec`].

use switchboard_hub::{InboxSpec, Retention};

use crate::manifest::Keep;
use crate::{LoadedManifest, ManifestError};

/// Most rows one user or group may keep.
const MAX_KEEP: u32 = 100_000;

/// Checks both parts of `inbox`.
pub(crate) fn validate(loaded: &LoadedManifest) -> Result<(), ManifestError> {
    let section = &loaded.manifest.inbox;
    for (kind, keep) in [("notifications", &section.notifications), ("alerts", &section.alerts)] {
        let Some(keep) = keep else { continue };
        if keep.ttl.is_some_and(|t| t.0.is_zero()) {
            return Err(loaded.error(&["inbox", kind, "ttl"], "must be longer than zero, e.g. \"30d\""));
        }
        if keep.max.is_some_and(|m| m == 0 || m > MAX_KEEP) {
            let message = format!("keep between 1 and {MAX_KEEP}; turn the feature off under `features` instead");
            return Err(loaded.error(&["inbox", kind, "max"], message));
        }
    }
    Ok(())
}

/// The defaults (30 days; 1000 notifications per user, 500 alerts per group) with the
/// manifest's values over them.
pub(crate) fn resolve(loaded: &LoadedManifest) -> InboxSpec {
    let section = &loaded.manifest.inbox;
    let defaults = InboxSpec::default();
    let pick = |keep: &Option<Keep>, default: Retention| match keep {
        None => default,
        Some(k) => {
            Retention { max_age: k.ttl.map_or(default.max_age, |t| t.0), max_count: k.max.unwrap_or(default.max_count) }
        }
    };
    InboxSpec {
        notifications: pick(&section.notifications, defaults.notifications),
        alerts: pick(&section.alerts, defaults.alerts),
    }
}
