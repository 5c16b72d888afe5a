//! The part of the NATS client protocol a broker needs: text commands, binary payloads, and
//! one connection's subscription ids.
//! (<https://docs.nats.io/reference/reference-protocols/nats-protocol>)

use std::collections::HashMap;
use std::io;

use serde_json::json;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::Topic;

/// The subject of a topic. NATS splits subjects at `.` and reads `*` and `>` tokens as
/// wildcards, and channel names may hold any of them, so those (and `%`) are escaped: each
/// channel is one literal token.
pub(super) fn subject(prefix: &str, topic: &Topic) -> String {
    format!("{prefix}{}.{}", escape(&topic.app), escape(&topic.channel))
}

fn escape(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        match c {
            '%' => out.push_str("%25"),
            '.' => out.push_str("%2E"),
            '*' => out.push_str("%2A"),
            '>' => out.push_str("%3E"),
            c => out.push(c),
        }
    }
    out
}

/// The CONNECT line. `echo: false`: the server does not send a node its own publishes (the
/// node delivers those locally at once). `tls`: whether the connection was upgraded to TLS.
pub(super) fn connect(user: Option<&str>, pass: Option<&str>, token: Option<&str>, tls: bool) -> Vec<u8> {
    let options = json!({
        "verbose": false, "pedantic": false, "tls_required": tls, "echo": false, "protocol": 1,
        "name": "switchboard", "lang": "rust", "version": env!("CARGO_PKG_VERSION"),
        "user": user, "pass": pass, "auth_token": token,
    });
    format!("CONNECT {options}\r\n").into_bytes()
}

/// `PUB subject n\r\npayload\r\n`, appended to `out`.
pub(super) fn publish(out: &mut Vec<u8>, subject: &str, payload: &[u8]) {
    out.extend_from_slice(format!("PUB {subject} {}\r\n", payload.len()).as_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n");
}

pub(super) fn subscribe(out: &mut Vec<u8>, subject: &str, sid: u64) {
    out.extend_from_slice(format!("SUB {subject} {sid}\r\n").as_bytes());
}

pub(super) fn unsubscribe(out: &mut Vec<u8>, sid: u64) {
    out.extend_from_slice(format!("UNSUB {sid}\r\n").as_bytes());
}

pub(super) const PING: &[u8] = b"PING\r\n";
pub(super) const PONG: &[u8] = b"PONG\r\n";

/// What the server sent.
#[derive(Debug, PartialEq)]
pub(super) enum ServerOp {
    Msg {
        sid: u64,
        payload: Vec<u8>,
    },
    Ping,
    Pong,
    /// The INFO line's JSON.
    Info(String),
    Ok,
    Err(String),
}

/// What the server's INFO says of TLS: required (the client must upgrade), or available (the
/// client may).
#[derive(Debug, Default, PartialEq)]
pub(super) struct TlsOffer {
    pub(super) required: bool,
    pub(super) available: bool,
}

/// The TLS part of an INFO line's JSON; `None` when it is not a JSON object.
pub(super) fn tls_offer(info: &str) -> Option<TlsOffer> {
    let info: serde_json::Value = serde_json::from_str(info).ok()?;
    let flag = |name: &str| info.get(name).and_then(serde_json::Value::as_bool).unwrap_or(false);
    info.is_object().then(|| TlsOffer { required: flag("tls_required"), available: flag("tls_available") })
}

/// Reads one server operation; `None` at the end of the stream.
pub(super) async fn read_op<R: AsyncBufRead + Unpin>(reader: &mut R) -> io::Result<Option<ServerOp>> {
    let mut line = String::new();
    if reader.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    let line = line.trim_end();
    let (op, rest) = line.split_once(' ').unwrap_or((line, ""));
    let op = match op.to_ascii_uppercase().as_str() {
        "MSG" => read_msg(reader, rest).await?,
        "PING" => ServerOp::Ping,
        "PONG" => ServerOp::Pong,
        "INFO" => ServerOp::Info(rest.to_owned()),
        "+OK" => ServerOp::Ok,
        "-ERR" => ServerOp::Err(rest.trim_matches('\'').to_owned()),
        _ => return Err(io::Error::new(io::ErrorKind::InvalidData, format!("unexpected NATS line `{line}`"))),
    };
    Ok(Some(op))
}

/// `MSG <subject> <sid> [reply-to] <#bytes>`, then the payload and CRLF.
async fn read_msg<R: AsyncBufRead + Unpin>(reader: &mut R, args: &str) -> io::Result<ServerOp> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, format!("bad NATS MSG line `{args}`"));
    let fields: Vec<&str> = args.split_whitespace().collect();
    let (Some(sid), Some(size)) = (fields.get(1), fields.last()) else { return Err(bad()) };
    let (sid, size): (u64, usize) = (sid.parse().map_err(|_| bad())?, size.parse().map_err(|_| bad())?);
    let mut payload = vec![0; size + 2];
    reader.read_exact(&mut payload).await?;
    payload.truncate(size);
    Ok(ServerOp::Msg { sid, payload })
}

/// One connection's subscriptions, by id and by topic.
#[derive(Default)]
pub(super) struct Subscriptions {
    next: u64,
    pub(super) by_sid: HashMap<u64, Topic>,
    by_topic: HashMap<Topic, u64>,
}

impl Subscriptions {
    pub(super) fn add(&mut self, out: &mut Vec<u8>, prefix: &str, topic: Topic) {
        if self.by_topic.contains_key(&topic) {
            return;
        }
        self.next += 1;
        subscribe(out, &subject(prefix, &topic), self.next);
        self.by_sid.insert(self.next, topic.clone());
        self.by_topic.insert(topic, self.next);
    }

    pub(super) fn remove(&mut self, out: &mut Vec<u8>, topic: &Topic) {
        if let Some(sid) = self.by_topic.remove(topic) {
            self.by_sid.remove(&sid);
            unsubscribe(out, sid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_keep_each_channel_one_literal_token() {
        let topic = Topic { app: "app1".into(), channel: "room:a.b*>%".into() };
        assert_eq!(subject("sb.", &topic), "sb.app1.room:a%2Eb%2A%3E%25");
    }

    #[tokio::test]
    async fn reads_messages_with_binary_payloads_and_control_lines() {
        let wire: &[u8] =
            b"INFO {\"tls_required\":true}\r\nMSG sb.a.room:1 7 5\r\nhe\r\no\r\nPING\r\n+OK\r\n-ERR 'Unknown Protocol Operation'\r\n";
        let mut reader = tokio::io::BufReader::new(wire);
        let mut ops = Vec::new();
        while let Some(op) = read_op(&mut reader).await.unwrap() {
            ops.push(op);
        }
        let msg = ServerOp::Msg { sid: 7, payload: b"he\r\no".to_vec() };
        let err = ServerOp::Err("Unknown Protocol Operation".into());
        let info = ServerOp::Info(r#"{"tls_required":true}"#.into());
        assert_eq!(ops, [info, msg, ServerOp::Ping, ServerOp::Ok, err]);
        let mut garbage = tokio::io::BufReader::new(&b"HELLO\r\n"[..]);
        assert!(read_op(&mut garbage).await.is_err());
    }

    #[test]
    fn info_says_whether_tls_is_required_or_available() {
        let offer = |required, available| Some(TlsOffer { required, available });
        assert_eq!(tls_offer(r#"{"server_id":"x","tls_required":true,"tls_verify":false}"#), offer(true, false));
        assert_eq!(tls_offer(r#"{"tls_available":true}"#), offer(false, true));
        assert_eq!(tls_offer(r#"{"max_payload":1048576}"#), offer(false, false));
        assert_eq!(tls_offer("not json"), None);
    }

    #[test]
    fn connect_says_whether_the_connection_is_tls() {
        let line = String::from_utf8(connect(Some("ann"), Some("pw"), None, true)).unwrap();
        let options: serde_json::Value =
            serde_json::from_str(line.strip_prefix("CONNECT ").unwrap().trim_end()).unwrap();
        assert_eq!((options["tls_required"].as_bool(), options["echo"].as_bool()), (Some(true), Some(false)));
        assert_eq!(options["user"], "ann");
    }
}
