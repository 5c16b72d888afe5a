//! One signed POST to the app backend, with a deadline, read as JSON.

use std::time::Duration;

use serde_json::Value;
use switchboard_hub::{rfc3339, unix_ms, App, Caller};

use crate::{sign, Handlers};

/// Why a backend call gave no usable answer; the message is for the client.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Failed(pub(crate) String);

impl Handlers {
    /// POSTs `body` to `url`, signed with the app's key and the time; the answer, as JSON.
    /// Timed for the handler latency metric, failures included. A redirect is a failure: the
    /// client does not follow it (see [`Handlers::default`]).
    pub(crate) async fn call(&self, app: &App, url: &str, body: &Value, timeout: Duration) -> Result<Value, Failed> {
        let started = std::time::Instant::now();
        let answer = self.post(app, url, body, timeout).await;
        app.metrics.handler.observe(started.elapsed());
        answer
    }

    async fn post(&self, app: &App, url: &str, body: &Value, timeout: Duration) -> Result<Value, Failed> {
        let bytes = body.to_string().into_bytes();
        let timestamp = unix_ms() / 1000;
        let mut request = self
            .client
            .post(url)
            .timeout(timeout)
            .header("content-type", "application/json")
            .header("x-switchboard-app", app.spec.slug.as_str())
            .header(sign::TIMESTAMP_HEADER, timestamp);
        if let Some(key) = app.spec.api_keys.signing_key() {
            request = request.header(sign::HEADER, sign::signature(key, timestamp, &bytes));
        }
        let response = request.body(bytes).send().await.map_err(|e| {
            Failed(if e.is_timeout() {
                format!("the app backend did not answer within {} s", timeout.as_secs_f32())
            } else {
                "the app backend could not be reached".to_owned()
            })
        })?;
        let status = response.status();
        if status.is_redirection() {
            // Not followed: the signed call would go wherever the answer points.
            let location = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("nowhere");
            tracing::warn!(
                app = %app.slug, %url, status = status.as_u16(), %location,
                "the app backend answered with a redirect, which is not followed; set the URL to where it points"
            );
            return Err(Failed(format!(
                "the app backend answered HTTP {} (a redirect, which Switchboard does not follow)",
                status.as_u16()
            )));
        }
        if !status.is_success() {
            return Err(Failed(format!("the app backend answered HTTP {}", status.as_u16())));
        }
        let text = response.text().await.map_err(|_| Failed("the app backend's answer broke off".into()))?;
        match serde_json::from_str(&text) {
            Ok(Value::Object(answer)) => Ok(Value::Object(answer)),
            _ => Err(Failed("the app backend answered something that is not a JSON object".into())),
        }
    }
}

/// The connection, as the backend sees it (seed 004's fields).
pub(crate) fn connection(caller: &Caller) -> Value {
    let meta = &caller.meta;
    serde_json::json!({
        "connection_id": meta.connection_id,
        "user_id": meta.user_id,
        "user_email": meta.user_email,
        "connected_at": rfc3339(meta.connected_at_ms),
    })
}
