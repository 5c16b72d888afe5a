//! The JSON clients see. Field names follow seed 003: `notification_id`, `alert_id`,
//! `created_at`; `id` is there too, because the seed's React hooks match on `n.id`.

use serde_json::{json, Value};
use switchboard_hub::rfc3339;
use switchboard_store::{Alert, Notification};

/// A notification as listed and as `notification:new` carries it.
pub(crate) fn notification(n: &Notification) -> Value {
    let f = &n.fields;
    json!({
        "id": f.id,
        "notification_id": f.id,
        "user": f.user,
        "type": f.kind,
        "title": f.title,
        "message": f.message,
        "data": data(&f.data),
        "read": n.read_at_ms.is_some(),
        "read_at": n.read_at_ms.map(rfc3339),
        "created_at": rfc3339(f.created_at_ms),
    })
}

/// An alert as one user sees it, and as `alert:new` carries it (unacknowledged).
pub(crate) fn alert(a: &Alert) -> Value {
    let f = &a.fields;
    json!({
        "id": f.id,
        "alert_id": f.id,
        "group": f.group,
        "type": f.kind,
        "title": f.title,
        "message": f.message,
        "severity": f.severity,
        "data": data(&f.data),
        "acknowledged": a.acknowledged_at_ms.is_some(),
        "acknowledged_at": a.acknowledged_at_ms.map(rfc3339),
        "created_at": rfc3339(f.created_at_ms),
    })
}

/// Stored `data` text back as JSON (it was JSON when stored).
fn data(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}
