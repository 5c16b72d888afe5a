//! The manifest's history settings: `history.user`, `history.group` and
//! `channels.<ns>.history`, checked and resolved to the hub's [`HistorySpec`].

use switchboard_hub::{BuiltinHistory, HistorySpec};

use crate::manifest::History;
use crate::{LoadedManifest, ManifestError};

/// Most events one channel may keep.
const MAX_SIZE: u32 = 100_000;
const STORAGES: [&str; 2] = ["durable", "memory"];

/// Checks every history setting of a manifest.
pub(crate) fn validate(loaded: &LoadedManifest, errors: &mut Vec<ManifestError>) {
    let m = &loaded.manifest;
    let builtin = m.history.as_ref();
    let sections = [("user", builtin.and_then(|h| h.user.as_ref())), ("group", builtin.and_then(|h| h.group.as_ref()))];
    for (kind, history) in sections {
        if let Some(history) = history {
            check(loaded, &["history", kind], history, errors);
        }
    }
    for (namespace, spec) in &m.channels {
        if let Some(history) = &spec.history {
            check(loaded, &["channels", namespace.as_str(), "history"], history, errors);
        }
    }
}

fn check(loaded: &LoadedManifest, at: &[&str], history: &History, errors: &mut Vec<ManifestError>) {
    let field = |name: &'static str| [at, &[name]].concat();
    if history.size.is_some_and(|s| s > MAX_SIZE) {
        errors
            .push(loaded.error(&field("size"), format!("keep at most {MAX_SIZE} events per channel (0: no history)")));
    }
    if history.ttl.as_ref().is_some_and(|t| t.0.is_zero()) {
        errors.push(loaded.error(&field("ttl"), "must be longer than zero, e.g. \"10m\" or \"24h\""));
    }
    if let Some(storage) = history.storage.as_deref().filter(|s| !STORAGES.contains(s)) {
        errors.push(loaded.error(&field("storage"), format!("unknown storage `{storage}`; use one of {STORAGES:?}")));
    }
}

/// `user:` and `group:` history: durable, 1000 events and 24 h unless the manifest says
/// otherwise; `size: 0` turns it off.
pub(crate) fn builtin(loaded: &LoadedManifest) -> BuiltinHistory {
    let section = loaded.manifest.history.as_ref();
    let pick = |h: Option<&History>| resolve(h, HistorySpec::DEFAULT_DURABLE);
    BuiltinHistory {
        user: pick(section.and_then(|h| h.user.as_ref())),
        group: pick(section.and_then(|h| h.group.as_ref())),
    }
}

/// A namespace's history: none unless declared; declared history lives in memory unless it
/// asks for `durable` storage (as Centrifugo's does).
pub(crate) fn namespace(history: Option<&History>) -> Option<HistorySpec> {
    let declared = history?;
    resolve(Some(declared), HistorySpec { size: 100, ttl: std::time::Duration::from_secs(600), durable: false })
}

fn resolve(history: Option<&History>, default: HistorySpec) -> Option<HistorySpec> {
    let Some(h) = history else {
        return Some(default);
    };
    let spec = HistorySpec {
        size: h.size.unwrap_or(default.size),
        ttl: h.ttl.as_ref().map_or(default.ttl, |t| t.0),
        durable: h.storage.as_deref().map_or(default.durable, |s| s == "durable"),
    };
    (spec.size > 0).then_some(spec)
}
