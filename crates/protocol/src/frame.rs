//! Frames on the native protocol: JSON text, `{"type", "data", "ref"}` both ways.

use bytes::Bytes;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{json, Value};

use crate::ErrorCode;

/// One message from a client, checked for shape but not yet for meaning.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientFrame {
    /// The `type` field: `subscribe`, `ping`, `chat:send`, or an app's own type.
    pub kind: String,
    /// The `data` field; `null` when absent.
    pub data: Value,
    /// The optional `ref`, echoed on the `reply` or `error` that answers this frame.
    pub reference: Option<Value>,
}

/// A frame that could not be read, with the `ref` to answer on if one was found.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameError {
    /// The frame's `ref`, when the frame was an object that had one.
    pub reference: Option<Value>,
    /// What is wrong, naming the field.
    pub message: String,
}

impl FrameError {
    fn new(reference: Option<Value>, message: impl Into<String>) -> Self {
        Self { reference, message: message.into() }
    }
}

impl ClientFrame {
    /// Reads a client's text frame.
    pub fn parse(text: &str) -> Result<Self, FrameError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| FrameError::new(None, format!("malformed JSON: {e}")))?;
        let Value::Object(mut map) = value else {
            return Err(FrameError::new(None, "a frame must be a JSON object with a `type` field"));
        };
        let reference = map.remove("ref");
        let kind = match map.remove("type") {
            Some(Value::String(kind)) if !kind.is_empty() => kind,
            Some(_) => return Err(FrameError::new(reference, "field `type` must be a non-empty string")),
            None => return Err(FrameError::new(reference, "missing field `type`")),
        };
        let data = map.remove("data").unwrap_or(Value::Null);
        Ok(Self { kind, data, reference })
    }

    /// A required string field of `data`, or an error naming it.
    pub fn data_str(&self, field: &str) -> Result<&str, FrameError> {
        match self.data.get(field) {
            Some(Value::String(s)) => Ok(s),
            Some(_) => Err(self.error(format!("field `data.{field}` must be a string"))),
            None => Err(self.error(format!("missing field `data.{field}`"))),
        }
    }

    /// An error about this frame, carrying its `ref`.
    pub fn error(&self, message: impl Into<String>) -> FrameError {
        FrameError::new(self.reference.clone(), message)
    }
}

/// Frames the server sends that are not events.
pub struct ServerFrame;

impl ServerFrame {
    /// `{"type": kind, "data": data}`, e.g. `connected`.
    pub fn typed(kind: &str, data: Value) -> String {
        json!({ "type": kind, "data": data }).to_string()
    }

    /// `{"type": "reply", "ref", "data"}` answering a request.
    pub fn reply(reference: Option<&Value>, data: Value) -> String {
        with_ref(json!({ "type": "reply", "data": data }), reference)
    }

    /// `{"type": kind, "ref", "data"}`: a typed frame that answers a request, e.g. `resumed`.
    pub fn answer(kind: &str, reference: Option<&Value>, data: Value) -> String {
        with_ref(json!({ "type": kind, "data": data }), reference)
    }

    /// `{"type": "pong", "ref"}` answering an app-level `ping`.
    pub fn pong(reference: Option<&Value>) -> String {
        with_ref(json!({ "type": "pong", "data": {} }), reference)
    }

    /// `{"type": "error", "ref", "data": {"code", "message"}}`.
    pub fn error(reference: Option<&Value>, code: ErrorCode, message: &str) -> String {
        let data = json!({ "code": code.as_str(), "message": message });
        with_ref(json!({ "type": "error", "data": data }), reference)
    }
}

fn with_ref(mut frame: Value, reference: Option<&Value>) -> String {
    if let (Some(reference), Value::Object(map)) = (reference, &mut frame) {
        map.insert("ref".to_owned(), reference.clone());
    }
    frame.to_string()
}

/// What the hub adds to every event it delivers.
#[derive(Debug, Clone, Serialize)]
pub struct EventMeta<'a> {
    /// The app the event belongs to.
    pub app_slug: &'a str,
    /// The channel it was published to.
    pub channel: &'a str,
    /// The event's id, shared by every channel of one publish.
    pub id: &'a str,
    /// Publish time, Unix milliseconds.
    pub ts: u64,
    /// The channel's history epoch; only on channels with history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub epoch: Option<&'a str>,
    /// The event's place in the channel's history; only on channels with history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Serialize)]
struct Envelope<'a> {
    #[serde(rename = "type")]
    kind: &'a str,
    data: &'a RawValue,
    #[serde(flatten)]
    meta: &'a EventMeta<'a>,
}

/// Encodes an event once; the same bytes go to every subscriber of the channel.
pub fn encode_event(kind: &str, data: &RawValue, meta: &EventMeta<'_>) -> Bytes {
    let envelope = Envelope { kind, data, meta };
    // Serializing borrowed strings and raw JSON into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_names_the_missing_field() {
        let err = ClientFrame::parse(r#"{"data":{},"ref":7}"#).unwrap_err();
        assert_eq!(err.message, "missing field `type`");
        assert_eq!(err.reference, Some(json!(7)));
        assert!(ClientFrame::parse("{nope").unwrap_err().message.starts_with("malformed JSON"));
        let frame = ClientFrame::parse(r#"{"type":"subscribe","data":{}}"#).unwrap();
        assert_eq!(frame.data_str("channel").unwrap_err().message, "missing field `data.channel`");
    }

    #[test]
    fn event_envelope_keeps_seed_fields() {
        let data = RawValue::from_string(r#"{"amount":100}"#.into()).unwrap();
        let meta = EventMeta { app_slug: "demo", channel: "user:1", id: "e1", ts: 5, epoch: None, seq: None };
        let bytes = encode_event("sbd_tokens_received", &data, &meta);
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["type"], "sbd_tokens_received");
        assert_eq!(v["data"]["amount"], 100);
        assert_eq!(v["channel"], "user:1");
        assert_eq!(v["app_slug"], "demo");
        assert!(v.get("epoch").is_none() && v.get("seq").is_none(), "no position without history");
        let meta = EventMeta { epoch: Some("e7"), seq: Some(3), ..meta };
        let v: Value = serde_json::from_slice(&encode_event("x", &data, &meta)).unwrap();
        assert_eq!((v["epoch"].as_str(), v["seq"].as_u64()), (Some("e7"), Some(3)));
    }
}
