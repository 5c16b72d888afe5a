//! The manifest's `inbox` section (how long and how many notifications per user and alerts
//! per group an app keeps) and its `chat` and `presence` sections, resolved to the hub's
//! [`InboxSpec`] and [`ChatSpec`].

use switchboard_hub::{ChatSpec, InboxSpec, Retention};

use crate::manifest::Keep;
use crate::{LoadedManifest, ManifestError};

/// Most rows one user or group may keep.
const MAX_KEEP: u32 = 100_000;
/// Longest chat message an app may allow, in characters.
const MAX_CHARS: usize = 100_000;

/// Checks both parts of `inbox`.
pub(crate) fn validate(loaded: &LoadedManifest, errors: &mut Vec<ManifestError>) {
    let section = &loaded.manifest.inbox;
    for (kind, keep) in [("notifications", &section.notifications), ("alerts", &section.alerts)] {
        let Some(keep) = keep else { continue };
        if keep.ttl.is_some_and(|t| t.0.is_zero()) {
            errors.push(loaded.error(&["inbox", kind, "ttl"], "must be longer than zero, e.g. \"30d\""));
        }
        if keep.max.is_some_and(|m| m == 0 || m > MAX_KEEP) {
            let message = format!("keep between 1 and {MAX_KEEP}; turn the feature off under `features` instead");
            errors.push(loaded.error(&["inbox", kind, "max"], message));
        }
    }
}

/// Chat and presence: the defaults with the manifest's values over them.
pub(crate) fn chat(loaded: &LoadedManifest) -> ChatSpec {
    let m = &loaded.manifest;
    let d = ChatSpec::default();
    ChatSpec {
        max_message_chars: m.chat.max_message_chars.unwrap_or(d.max_message_chars),
        typing_timeout: m.chat.typing_timeout.map_or(d.typing_timeout, |t| t.0),
        offline_grace: m.presence.offline_grace.map_or(d.offline_grace, |t| t.0),
    }
}

/// Checks `chat` and `presence`.
pub(crate) fn validate_chat(loaded: &LoadedManifest, errors: &mut Vec<ManifestError>) {
    let m = &loaded.manifest;
    if m.chat.max_message_chars.is_some_and(|n| n == 0 || n > MAX_CHARS) {
        errors.push(loaded.error(&["chat", "max_message_chars"], format!("must be 1 to {MAX_CHARS}")));
    }
    if m.chat.typing_timeout.is_some_and(|t| t.0.is_zero()) {
        errors.push(loaded.error(&["chat", "typing_timeout"], "must be longer than zero, e.g. \"5s\""));
    }
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
