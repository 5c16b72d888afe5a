//! The conformance suite every [`Store`] implementation must pass, on an empty database.

use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::{unix_now, DeviceAck, HistoryAppend, Store};

mod chat;
mod inbox;

/// Runs every check of the contract. Panics on the first broken rule.
pub async fn conformance(store: &dyn Store) {
    members(store).await;
    idempotency(store).await;
    settings(store).await;
    control_log_epochs_and_ping(store).await;
    history(store).await;
    acks(store).await;
    inbox::notifications(store).await;
    inbox::alerts(store).await;
    inbox::retention(store).await;
    chat::conversations(store).await;
    chat::messages(store).await;
    chat::presence(store).await;
}

/// After [`conformance`], closing and opening the same database again: migrations are not
/// applied twice, rows are still there, and history keeps its epoch and numbering.
pub async fn survives_reopen(store: &dyn Store) {
    assert_eq!(store.members("a1", "room:1").await.unwrap(), vec!["u2"]);
    let before = store.history("a1", "user:u1", 0, 10).await.unwrap();
    let day = Duration::from_secs(86_400);
    let next = store.append_history(&[history_event("a1", "user:u1", 6, 3, day)]).await.unwrap();
    assert_eq!(next, vec![(before.epoch, before.latest + 1)]);
    assert_eq!(store.unread_notifications("a1", "u1").await.unwrap(), 1, "the inbox survives");
}

/// A new, empty PostgreSQL database for one test, on the server at `SWITCHBOARD_TEST_POSTGRES`
/// (a URL whose role may create databases). Without that variable: `None`, so the caller
/// skips, unless `SWITCHBOARD_REQUIRE_POSTGRES` is set (scripts/test sets both), which makes
/// the missing server a failure.
pub async fn postgres_database() -> Option<String> {
    let Ok(admin) = std::env::var("SWITCHBOARD_TEST_POSTGRES") else {
        assert!(
            std::env::var_os("SWITCHBOARD_REQUIRE_POSTGRES").is_none(),
            "SWITCHBOARD_REQUIRE_POSTGRES is set but SWITCHBOARD_TEST_POSTGRES is not"
        );
        eprintln!("PostgreSQL part skipped: set SWITCHBOARD_TEST_POSTGRES=postgres://... (scripts/test does)");
        return None;
    };
    let name = format!("sb_test_{:016x}", rand::random::<u64>());
    let mut admin_conn = sqlx::PgConnection::connect(&admin).await.expect("connect to SWITCHBOARD_TEST_POSTGRES");
    admin_conn.execute(format!("CREATE DATABASE {name}").as_str()).await.expect("create a test database");
    admin_conn.close().await.ok();
    Some(with_database(&admin, &name))
}

/// `url` with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[authority_start..].find('/').map_or(base.len(), |i| authority_start + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

async fn members(store: &dyn Store) {
    assert!(store.add_member("a1", "room:1", "u1").await.unwrap());
    assert!(!store.add_member("a1", "room:1", "u1").await.unwrap(), "adding twice is not new");
    assert!(store.add_member("a1", "room:1", "u2").await.unwrap());
    assert!(store.add_member("a1", "group:g", "u1").await.unwrap());
    assert!(store.add_member("a2", "room:1", "u9").await.unwrap());
    assert_eq!(store.members("a1", "room:1").await.unwrap(), vec!["u1", "u2"]);
    assert_eq!(store.memberships("a1", "u1").await.unwrap(), vec!["group:g", "room:1"]);
    assert_eq!(store.members("a2", "room:1").await.unwrap(), vec!["u9"], "apps are isolated");
    assert!(store.remove_member("a1", "room:1", "u1").await.unwrap());
    assert!(!store.remove_member("a1", "room:1", "u1").await.unwrap());
    assert_eq!(store.members("a1", "room:1").await.unwrap(), vec!["u2"]);
}

async fn idempotency(store: &dyn Store) {
    let day = Duration::from_secs(86_400);
    assert_eq!(store.claim_idempotency("a1", "k", "first", day).await.unwrap(), None);
    assert_eq!(
        store.claim_idempotency("a1", "k", "second", day).await.unwrap().as_deref(),
        Some("first"),
        "a repeated key returns the first result"
    );
    assert_eq!(store.claim_idempotency("a2", "k", "other", day).await.unwrap(), None, "per app");
    store.update_idempotency("a1", "k", "first, completed").await.unwrap();
    assert_eq!(store.claim_idempotency("a1", "k", "x", day).await.unwrap().as_deref(), Some("first, completed"));
    store.release_idempotency("a1", "k").await.unwrap();
    assert_eq!(store.claim_idempotency("a1", "k", "third", day).await.unwrap(), None);
    // A zero TTL expires at once: the key can be claimed again and purge removes it.
    assert_eq!(store.claim_idempotency("a1", "z", "x", Duration::ZERO).await.unwrap(), None);
    assert_eq!(store.claim_idempotency("a1", "z", "y", Duration::ZERO).await.unwrap(), None);
    assert_eq!(store.purge_expired().await.unwrap(), 1);
}

async fn settings(store: &dyn Store) {
    assert_eq!(store.setting("s").await.unwrap(), None);
    assert_eq!(store.setting_or_insert("s", "v1").await.unwrap(), "v1");
    assert_eq!(store.setting_or_insert("s", "v2").await.unwrap(), "v1", "first value wins");
    assert_eq!(store.setting("s").await.unwrap().as_deref(), Some("v1"));
}

async fn control_log_epochs_and_ping(store: &dyn Store) {
    store.ping().await.unwrap();
    let now = unix_now() as u64 * 1000;
    let entry = |at_ms, user: &str, act: &str| crate::ControlEntry {
        app: "a1".into(),
        at_ms,
        user: user.into(),
        act: act.into(),
    };
    let old = entry(now - crate::CONTROL_LOG_KEPT.as_millis() as u64 - 1, "u0", "{}");
    let (first, second) = (entry(now - 2_000, "u1", "{\"act\":\"disconnect\"}"), entry(now - 1_000, "u2", "{}"));
    for e in [&old, &second, &first, &entry(now, "u3", "{}")] {
        store.log_control(e).await.unwrap();
    }
    store.log_control(&crate::ControlEntry { app: "a2".into(), ..first.clone() }).await.unwrap();
    let since = store.control_since("a1", now - 2_000).await.unwrap();
    assert_eq!(since[..2], [first.clone(), second], "this app's, from the time on, oldest first");
    let ack = |device: &str, acked_at_ms| crate::DeviceAck {
        device: device.into(),
        channel: "user:u9".into(),
        epoch: "e".into(),
        seq: 1,
        acked_at_ms,
    };
    let stale = ack("old-phone", now - crate::ACKS_KEPT.as_millis() as u64 - 1);
    store.save_acks("a1", "u9", &[stale, ack("laptop", now)]).await.unwrap();
    store.purge_expired().await.unwrap();
    assert_eq!(store.control_since("a1", 0).await.unwrap().len(), 3, "a day-old entry was purged");
    let kept: Vec<String> = store.acks("a1", "u9", None).await.unwrap().into_iter().map(|a| a.device).collect();
    assert_eq!(kept, ["laptop"], "a device silent for longer than ACKS_KEPT lost its positions");

    let event = history_event("a1", "epoch:c", 1, 10, Duration::from_secs(60));
    let (before, _) = store.append_history(&[event]).await.unwrap().remove(0);
    let (epoch, channels) = store.new_epoch(Some("a1")).await.unwrap();
    assert!(channels >= 1 && epoch != before);
    assert_eq!(
        store.history("a1", "epoch:c", 0, 10).await.unwrap().epoch,
        epoch,
        "positions of the old epoch no longer match"
    );
}

/// An event for the history checks; `data` is `{"n": n}`.
pub fn history_event(app: &str, channel: &str, n: u32, size: u32, ttl: Duration) -> HistoryAppend {
    HistoryAppend {
        app: app.into(),
        channel: channel.into(),
        id: format!("e{n}"),
        kind: "t".into(),
        data: format!("{{\"n\":{n}}}"),
        ts: u64::from(n),
        size,
        ttl,
    }
}

async fn history(store: &dyn Store) {
    let day = Duration::from_secs(86_400);
    let fresh = store.history("a1", "user:u1", 0, 10).await.unwrap();
    assert_eq!((fresh.latest, fresh.oldest, fresh.events.len()), (0, 1, 0), "a new channel is empty");
    let mut batch: Vec<_> = (1..=5).map(|n| history_event("a1", "user:u1", n, 3, day)).collect();
    batch.push(history_event("a2", "user:u1", 9, 3, day));
    let positions = store.append_history(&batch).await.unwrap();
    let seqs: Vec<u64> = positions.iter().map(|p| p.1).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 1], "numbered per channel and per app, from 1");
    assert!(positions[..5].iter().all(|p| p.0 == fresh.epoch), "the epoch made at the first read is kept");
    assert_ne!(positions[5].0, fresh.epoch, "another app's channel has its own epoch");
    let page = store.history("a1", "user:u1", 0, 10).await.unwrap();
    assert_eq!((page.latest, page.oldest), (5, 3), "size 3 keeps the newest three");
    let heads =
        [store.history_head("a1", "user:u1").await.unwrap(), store.history_head("a1", "user:none").await.unwrap()];
    assert_eq!(heads, [5, 0], "a head is the newest seq, trimmed or not; 0 for a channel never used");
    assert_eq!(page.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
    assert_eq!((page.events[0].data.as_str(), page.events[0].id.as_str()), (r#"{"n":3}"#, "e3"));
    let after = store.history("a1", "user:u1", 4, 10).await.unwrap();
    assert_eq!(after.events.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![5]);
    assert_eq!(store.history("a1", "user:u1", 0, 2).await.unwrap().events.len(), 2, "limit applies");
    let mixed = [6, 1, 7].map(|n| history_event("a1", if n == 1 { "user:u2" } else { "user:u1" }, n, 3, day));
    let seqs: Vec<u64> = store.append_history(&mixed).await.unwrap().iter().map(|p| p.1).collect();
    assert_eq!(seqs, vec![6, 1, 7], "interleaved channels keep their own counters");
    // More channels and events than one statement takes.
    let big: Vec<_> = (0..1300).map(|n| history_event("a3", &format!("user:{}", n % 650), n, 1, day)).collect();
    let positions = store.append_history(&big).await.unwrap();
    assert!(positions.iter().enumerate().all(|(n, p)| p.1 == 1 + (n as u64) / 650), "chunked batches number right");
    let page = store.history("a3", "user:649", 0, 10).await.unwrap();
    assert_eq!((page.latest, page.oldest, page.events.len()), (2, 2, 1), "trimmed to size 1 across chunks");
    // A zero TTL: numbered, never visible, and purged.
    let gone = store.append_history(&[history_event("a1", "room:x", 1, 10, Duration::ZERO)]).await.unwrap();
    assert_eq!(gone[0].1, 1);
    let page = store.history("a1", "room:x", 0, 10).await.unwrap();
    assert_eq!((page.latest, page.oldest, page.events.len()), (1, 2, 0));
    assert_eq!(store.purge_expired().await.unwrap(), 1);
}

fn ack(device: &str, channel: &str, epoch: &str, seq: u64) -> DeviceAck {
    DeviceAck { device: device.into(), channel: channel.into(), epoch: epoch.into(), seq, acked_at_ms: seq * 1000 }
}

async fn acks(store: &dyn Store) {
    let first = [ack("phone", "user:u1", "e1", 5), ack("phone", "group:g", "e2", 2), ack("laptop", "user:u1", "e1", 9)];
    store.save_acks("a1", "u1", &first).await.unwrap();
    store.save_acks("a1", "u1", &[ack("phone", "user:u1", "e1", 3)]).await.unwrap();
    let phone = store.acks("a1", "u1", Some("phone")).await.unwrap();
    assert_eq!(phone, vec![first[1].clone(), first[0].clone()], "a late, older ack does not move back");
    store.save_acks("a1", "u1", &[ack("phone", "user:u1", "e7", 1)]).await.unwrap();
    let phone = store.acks("a1", "u1", Some("phone")).await.unwrap();
    assert_eq!(phone[1], ack("phone", "user:u1", "e7", 1), "a new epoch replaces the position");
    let all = store.acks("a1", "u1", None).await.unwrap();
    assert_eq!(all.iter().map(|a| a.device.as_str()).collect::<Vec<_>>(), ["laptop", "phone", "phone"]);
    assert!(store.acks("a2", "u1", None).await.unwrap().is_empty(), "apps are isolated");
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_names_are_replaced_in_urls() {
        let f = super::with_database;
        assert_eq!(f("postgres://u:p@127.0.0.1:5/postgres", "x"), "postgres://u:p@127.0.0.1:5/x");
        assert_eq!(f("postgres://127.0.0.1:5", "x"), "postgres://127.0.0.1:5/x");
        assert_eq!(f("postgres://h/db?sslmode=disable", "x"), "postgres://h/x?sslmode=disable");
    }
}
