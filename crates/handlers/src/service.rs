//! The three backend calls as a hub [`Service`].

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use switchboard_hub::{policy, Admission, Caller, Hub, Refusal, Service};
use switchboard_protocol::api::PublishRequest;
use switchboard_protocol::{Disconnect, ErrorCode};

use crate::call::{connection, Failed};
use crate::{Handlers, HOOK_TIMEOUT};

/// A handler's answer.
#[derive(Deserialize)]
struct Answer {
    #[serde(default)]
    reply: Option<Value>,
    /// One publish request, or a list of them.
    #[serde(default)]
    publish: Option<Value>,
    #[serde(default)]
    error: Option<BackendError>,
}

#[derive(Deserialize)]
struct BackendError {
    #[serde(default)]
    code: Option<String>,
    message: String,
}

/// The connect hook's answer.
#[derive(Deserialize)]
struct Verdict {
    #[serde(default = "yes")]
    allow: bool,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    channels: Vec<String>,
    #[serde(default)]
    data: Option<Value>,
}

fn yes() -> bool {
    true
}

#[async_trait]
impl Service for Handlers {
    /// Every type the hub and the built-in features leave (they are asked first), on an
    /// endpoint with a handler.
    fn owns(&self, caller: &Caller, _kind: &str) -> bool {
        caller.endpoint.handler.is_some()
    }

    async fn handle(&self, hub: &Hub, caller: &Caller, kind: &str, data: &Value) -> Result<Value, Refusal> {
        let Some(handler) = &caller.endpoint.handler else { return Ok(Value::Null) };
        let (app, endpoint) = (&caller.app, &caller.endpoint.name);
        let slots = self.slots(&app.spec.slug, endpoint, handler.concurrency);
        let failed = |message: String| Refusal::new(ErrorCode::HandlerFailed, message);
        let _slot = match tokio::time::timeout(handler.timeout, slots.acquire_owned()).await {
            Ok(Ok(slot)) => slot,
            _ => return Err(failed("too many messages are waiting for the app backend; retry".into())),
        };
        let body = json!({
            "app_slug": app.spec.slug,
            "endpoint": endpoint,
            "connection": connection(caller),
            "message": { "type": kind, "data": data },
        });
        let answer = self.call(app, &handler.url, &body, handler.timeout).await.map_err(|Failed(m)| failed(m))?;
        let answer: Answer = serde_json::from_value(answer)
            .map_err(|e| failed(format!("the app backend's answer does not fit {{reply, publish, error}}: {e}")))?;
        for request in requests(answer.publish).map_err(failed)? {
            if let Err(e) = hub.publish(app, request).await {
                return Err(failed(format!("the app backend asked to publish, and that failed: {e}")));
            }
        }
        if let Some(error) = answer.error {
            let mut extra = Map::new();
            extra.insert("code".into(), json!(error.code.unwrap_or_else(|| "handler_error".into())));
            return Err(Refusal::new(ErrorCode::HandlerFailed, error.message).framed("error", extra));
        }
        Ok(answer.reply.unwrap_or_else(|| json!({})))
    }

    async fn admit(&self, _hub: &Hub, caller: &Caller) -> Result<Admission, Disconnect> {
        let Some(url) = &caller.endpoint.connect_url else { return Ok(Admission::default()) };
        let body = json!({ "app_slug": caller.app.spec.slug, "endpoint": caller.endpoint.name, "connection": connection(caller) });
        let unavailable = |Failed(m)| {
            tracing::warn!(app = %caller.app.slug, reason = %m, "connect hook failed; refusing the connection");
            Disconnect::new(Disconnect::INTERNAL, "the app backend's connect hook failed; retry")
        };
        let answer = self.call(&caller.app, url, &body, HOOK_TIMEOUT).await.map_err(unavailable)?;
        let verdict: Verdict = serde_json::from_value(answer).map_err(|e| unavailable(Failed(e.to_string())))?;
        if !verdict.allow {
            let reason = verdict.reason.unwrap_or_else(|| "refused by the app backend".into());
            return Err(Disconnect::new(Disconnect::FORBIDDEN, reason));
        }
        let (valid, invalid): (Vec<String>, Vec<String>) =
            verdict.channels.into_iter().partition(|c| policy::check_name(&caller.app.spec, c).is_ok());
        if !invalid.is_empty() {
            tracing::warn!(app = %caller.app.slug, ?invalid, "connect hook named channels this app does not have");
        }
        Ok(Admission { channels: valid, data: verdict.data })
    }

    async fn may_subscribe(&self, _hub: &Hub, caller: &Caller, channel: &str, url: &str) -> Option<bool> {
        let user = caller.meta.user_id.clone().unwrap_or_default();
        let key = (caller.app.spec.slug.clone(), user, channel.to_owned());
        if let Some(allowed) = self.cached(&key) {
            return Some(allowed);
        }
        let body = json!({ "app_slug": caller.app.spec.slug, "connection": connection(caller), "channel": channel });
        let allowed = match self.call(&caller.app, url, &body, HOOK_TIMEOUT).await {
            Ok(answer) => answer.get("allow").and_then(Value::as_bool).unwrap_or(false),
            Err(Failed(m)) => {
                tracing::warn!(app = %caller.app.slug, channel, reason = %m, "subscribe proxy failed; refusing");
                return Some(false); // not cached: the next try asks again
            }
        };
        self.remember(key, allowed);
        Some(allowed)
    }
}

/// `publish` as publish requests: one object or a list.
fn requests(publish: Option<Value>) -> Result<Vec<PublishRequest>, String> {
    let items = match publish {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) => items,
        Some(one) => vec![one],
    };
    items
        .into_iter()
        .map(|item| {
            serde_json::from_value(item)
                .map_err(|e| format!("the app backend's `publish` is not a publish request: {e}"))
        })
        .collect()
}
