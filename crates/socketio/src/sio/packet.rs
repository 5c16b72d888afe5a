//! Socket.IO v5 packets, carried in Engine.IO messages:
//! `<type>[<attachments>-][<namespace>,][<ack id>][<JSON>]`, e.g. `2["hello",1]`,
//! `21/chat,7["ask"]`, `51-["file",{"_placeholder":true,"num":0}]` (then one binary message
//! per attachment).

use serde_json::Value;

/// The kind of a Socket.IO packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

/// One Socket.IO packet, before its binary attachments are put back.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SioPacket {
    pub(crate) kind: Kind,
    pub(crate) namespace: String,
    pub(crate) id: Option<u64>,
    pub(crate) data: Option<Value>,
    /// How many binary messages follow (binary kinds only).
    pub(crate) attachments: usize,
}

/// A packet that breaks the protocol: the session is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed Socket.IO packet: {0}")]
pub(crate) struct SioError(pub(crate) &'static str);

impl SioPacket {
    /// A packet of the default namespace.
    pub(crate) fn new(kind: Kind, namespace: &str, id: Option<u64>, data: Option<Value>) -> Self {
        Self { kind, namespace: namespace.to_owned(), id, data, attachments: 0 }
    }

    /// The text form.
    pub(crate) fn encode(&self) -> String {
        let mut out = (self.kind as u8).to_string();
        if matches!(self.kind, Kind::BinaryEvent | Kind::BinaryAck) {
            out.push_str(&format!("{}-", self.attachments));
        }
        if self.namespace != "/" {
            out.push_str(&self.namespace);
            out.push(',');
        }
        if let Some(id) = self.id {
            out.push_str(&id.to_string());
        }
        if let Some(data) = &self.data {
            out.push_str(&data.to_string());
        }
        out
    }

    /// Reads and checks one packet.
    pub(crate) fn decode(text: &str) -> Result<Self, SioError> {
        let bytes = text.as_bytes();
        let kind = match bytes.first() {
            Some(b'0') => Kind::Connect,
            Some(b'1') => Kind::Disconnect,
            Some(b'2') => Kind::Event,
            Some(b'3') => Kind::Ack,
            Some(b'4') => Kind::ConnectError,
            Some(b'5') => Kind::BinaryEvent,
            Some(b'6') => Kind::BinaryAck,
            _ => return Err(SioError("unknown packet type")),
        };
        let mut rest = &text[1..];
        let mut attachments = 0;
        if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
            let (count, after) = rest.split_once('-').ok_or(SioError("binary packet without an attachment count"))?;
            attachments = count.parse().map_err(|_| SioError("bad attachment count"))?;
            rest = after;
        }
        let mut namespace = "/".to_owned();
        if rest.starts_with('/') {
            let end = rest.find(',').unwrap_or(rest.len());
            namespace = rest[..end].to_owned();
            rest = rest.get(end + 1..).unwrap_or("");
        }
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let id = match digits {
            0 => None,
            n => Some(rest[..n].parse().map_err(|_| SioError("ack id out of range"))?),
        };
        rest = &rest[digits..];
        let data = match rest {
            "" => None,
            json => Some(serde_json::from_str(json).map_err(|_| SioError("payload is not JSON"))?),
        };
        let packet = Self { kind, namespace, id, data, attachments };
        packet.check()?;
        Ok(packet)
    }

    /// The shape each kind must have.
    fn check(&self) -> Result<(), SioError> {
        let ok = match self.kind {
            Kind::Connect => matches!(self.data, None | Some(Value::Object(_))),
            Kind::Disconnect => self.data.is_none(),
            Kind::Event | Kind::BinaryEvent => {
                matches!(&self.data, Some(Value::Array(args)) if args.first().is_some_and(Value::is_string))
            }
            Kind::Ack | Kind::BinaryAck => self.id.is_some() && matches!(self.data, Some(Value::Array(_))),
            Kind::ConnectError => false, // only servers send it
        };
        if ok {
            Ok(())
        } else {
            Err(SioError("payload does not fit the packet type"))
        }
    }
}

/// Puts binary attachments back in place of their placeholders, as `{"base64": "..."}`
/// (the hub speaks JSON).
pub(crate) fn attach(value: &mut Value, attachments: &[bytes::Bytes]) -> Result<(), SioError> {
    attach_once(value, attachments, &mut vec![false; attachments.len()])
}

/// Each attachment may take one placeholder's place: a placeholder repeated thousands of
/// times would otherwise copy one attachment thousands of times.
fn attach_once(value: &mut Value, attachments: &[bytes::Bytes], used: &mut [bool]) -> Result<(), SioError> {
    use base64::Engine as _;
    match value {
        Value::Object(map) if map.get("_placeholder") == Some(&Value::Bool(true)) => {
            let num = map.get("num").and_then(Value::as_u64).ok_or(SioError("placeholder without num"))? as usize;
            let bytes = attachments.get(num).ok_or(SioError("placeholder beyond the attachments"))?;
            if std::mem::replace(&mut used[num], true) {
                return Err(SioError("an attachment's placeholder appears twice"));
            }
            *value = serde_json::json!({ "base64": base64::engine::general_purpose::STANDARD.encode(bytes) });
            Ok(())
        }
        Value::Object(map) => map.values_mut().try_for_each(|v| attach_once(v, attachments, used)),
        Value::Array(items) => items.iter_mut().try_for_each(|v| attach_once(v, attachments, used)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_attachment_fills_one_placeholder_only() {
        let one = [bytes::Bytes::from_static(b"abc")];
        let mut data = json!(["upload", {"_placeholder": true, "num": 0}]);
        attach(&mut data, &one).unwrap();
        assert_eq!(data, json!(["upload", {"base64": "YWJj"}]));
        let mut twice = json!(["upload", {"_placeholder": true, "num": 0}, [{"_placeholder": true, "num": 0}]]);
        assert_eq!(attach(&mut twice, &one).unwrap_err().0, "an attachment's placeholder appears twice");
    }

    #[test]
    fn packets_round_trip() {
        let cases = [
            "0",
            "0{\"token\":\"t\"}",
            "0/custom,",
            "2[\"hello\",1]",
            "212[\"ask\",{\"a\":1}]",
            "2/custom,3[\"x\"]",
            "37[\"ok\"]",
            "1",
            "51-[\"file\",{\"_placeholder\":true,\"num\":0}]",
        ];
        for case in cases {
            let packet = SioPacket::decode(case).unwrap_or_else(|e| panic!("{case}: {e}"));
            assert_eq!(packet.encode(), case, "{case}");
        }
        let ack = SioPacket::decode("212[\"ask\"]").unwrap();
        assert_eq!((ack.kind, ack.id, ack.namespace.as_str()), (Kind::Event, Some(12), "/"));
    }

    #[test]
    fn a_long_number_survives_a_round_trip() {
        // Found by the fuzzer (CI, 2026-12-01): with serde_json's fast float parsing, this
        // number read back from its own encoding came out one unit in the last place off.
        let digits = format!("66{}{}{}", "8".repeat(57), "9".repeat(77), "8".repeat(51));
        let text = format!("51-[\"file\",{{\"pZnde\":{digits}}}]");
        crate::fuzzing::socketio_packet(&text);
        crate::fuzzing::engine_packet(&format!("4{text}"));
    }

    #[test]
    fn malformed_packets_are_refused() {
        for bad in [
            "",
            "9",
            "2",
            "2{}",
            "2[1]",
            "2[]",
            "3[\"x\"]",
            "0[]",
            "1{}",
            "2[\"a\"",
            "4{}",
            "5[\"a\"]",
            "2999999999999999999999[\"a\"]",
        ] {
            assert!(SioPacket::decode(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn attachments_replace_placeholders() {
        let mut value = json!(["file", {"_placeholder": true, "num": 0}, [{"_placeholder": true, "num": 1}]]);
        attach(&mut value, &[bytes::Bytes::from_static(b"\x01\x02"), bytes::Bytes::from_static(b"hi")]).unwrap();
        assert_eq!(value, json!(["file", {"base64": "AQI="}, [{"base64": "aGk="}]]));
        assert!(attach(&mut json!([{"_placeholder": true, "num": 5}]), &[]).is_err());
    }
}
