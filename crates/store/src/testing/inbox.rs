//! Conformance checks of the inbox: notifications, alerts and retention.

use std::time::Duration;

use crate::{NewAlert, NewNotification, Page, Retention, Store};

fn note(app: &str, user: &str, n: u32, at_ms: u64) -> NewNotification {
    NewNotification {
        app: app.into(),
        user: user.into(),
        id: format!("{app}-{user}-n{n}"),
        kind: "task".into(),
        title: format!("title {n}"),
        message: format!("message {n}"),
        data: format!("{{\"n\":{n}}}"),
        created_at_ms: at_ms,
    }
}

fn alarm(app: &str, group: &str, n: u32, at_ms: u64) -> NewAlert {
    NewAlert {
        app: app.into(),
        group: group.into(),
        id: format!("{app}-{group}-a{n}"),
        kind: "oxygen".into(),
        title: format!("alert {n}"),
        message: "Oxygen in Pond A is below threshold".into(),
        severity: "critical".into(),
        data: "{}".into(),
        created_at_ms: at_ms,
    }
}

const ALL: Page = Page { pending_only: false, before: None, limit: 100 };

pub(super) async fn notifications(store: &dyn Store) {
    for n in 1..=4 {
        assert_eq!(
            store.insert_notification(&note("a1", "u1", n, 1000 + u64::from(n)), 100).await.unwrap(),
            u64::from(n)
        );
    }
    store.insert_notification(&note("a1", "u2", 9, 1000), 100).await.unwrap();
    store.insert_notification(&note("a2", "u1", 9, 1000), 100).await.unwrap();
    let list = store.notifications("a1", "u1", ALL).await.unwrap();
    let ids: Vec<&str> = list.iter().map(|n| n.fields.id.as_str()).collect();
    assert_eq!(ids, ["a1-u1-n4", "a1-u1-n3", "a1-u1-n2", "a1-u1-n1"], "newest first, one user, one app");
    assert_eq!(list[0].fields, note("a1", "u1", 4, 1004), "every field comes back");
    let first = store.notifications("a1", "u1", Page { limit: 2, ..ALL }).await.unwrap();
    let rest = store.notifications("a1", "u1", Page { before: Some(first[1].cursor), ..ALL }).await.unwrap();
    assert_eq!(rest.iter().map(|n| n.fields.id.as_str()).collect::<Vec<_>>(), ["a1-u1-n2", "a1-u1-n1"], "paged");

    let mark = |at_ms, first| Some(crate::ReadMark { at_ms, first });
    assert_eq!(store.read_notification("a1", "u1", "a1-u1-n3", 5000).await.unwrap(), mark(5000, true));
    assert_eq!(store.read_notification("a1", "u1", "a1-u1-n3", 6000).await.unwrap(), mark(5000, false), "read once");
    assert_eq!(
        store.read_notification("a1", "u1", "a1-u1-n3", 5000).await.unwrap(),
        mark(5000, false),
        "a repeat in the same millisecond is no first read either"
    );
    assert_eq!(store.read_notification("a1", "u1", "a1-u2-n9", 5000).await.unwrap(), None, "not another's");
    assert_eq!(store.read_notification("a1", "u1", "nope", 5000).await.unwrap(), None);
    assert_eq!(store.unread_notifications("a1", "u1").await.unwrap(), 3);
    let unread = store.notifications("a1", "u1", Page { pending_only: true, ..ALL }).await.unwrap();
    assert_eq!(unread.len(), 3);
    assert!(unread.iter().all(|n| n.read_at_ms.is_none()));

    assert!(!store.delete_notification("a1", "u1", "a1-u2-n9").await.unwrap(), "not another's");
    assert!(store.delete_notification("a1", "u1", "a1-u1-n4").await.unwrap());
    assert!(!store.delete_notification("a1", "u1", "a1-u1-n4").await.unwrap());
    assert_eq!(store.read_all_notifications("a1", "u1", 7000).await.unwrap(), 2);
    assert_eq!(store.unread_notifications("a1", "u1").await.unwrap(), 0);
    assert_eq!(store.unread_notifications("a1", "u2").await.unwrap(), 1, "other users keep theirs");

    // Keeping 2 drops the oldest at insert.
    let unread = store.insert_notification(&note("a1", "u1", 5, 1005), 2).await.unwrap();
    assert_eq!(unread, 1);
    let left = store.notifications("a1", "u1", ALL).await.unwrap();
    assert_eq!(left.iter().map(|n| n.fields.id.as_str()).collect::<Vec<_>>(), ["a1-u1-n5", "a1-u1-n3"]);
}

pub(super) async fn alerts(store: &dyn Store) {
    let groups = |gs: &[&str]| gs.iter().map(|g| (*g).to_owned()).collect::<Vec<_>>();
    assert_eq!(store.insert_alert(&alarm("a1", "acc1", 1, 100), 100).await.unwrap(), 1);
    assert_eq!(store.insert_alert(&alarm("a1", "acc1", 2, 200), 100).await.unwrap(), 2);
    assert_eq!(store.insert_alert(&alarm("a1", "acc2", 3, 300), 100).await.unwrap(), 1);
    store.insert_alert(&alarm("a2", "acc1", 4, 400), 100).await.unwrap();
    let mine = groups(&["acc1", "acc2"]);
    let list = store.alerts("a1", "u1", &mine, ALL).await.unwrap();
    assert_eq!(
        list.iter().map(|a| a.fields.id.as_str()).collect::<Vec<_>>(),
        ["a1-acc2-a3", "a1-acc1-a2", "a1-acc1-a1"]
    );
    assert_eq!(list[1].fields, alarm("a1", "acc1", 2, 200));
    assert!(store.alerts("a1", "u1", &[], ALL).await.unwrap().is_empty(), "no groups, no alerts");
    let found = store.alert("a1", "a1-acc1-a1").await.unwrap().expect("the alert");
    assert_eq!((found.fields.group.as_str(), found.acknowledged_at_ms), ("acc1", None));
    assert!(store.alert("a2", "a1-acc1-a1").await.unwrap().is_none(), "apps are isolated");

    assert_eq!(store.acknowledge_alert("a1", "u1", "a1-acc1-a1", 500).await.unwrap(), Some(500));
    assert_eq!(store.acknowledge_alert("a1", "u1", "a1-acc1-a1", 900).await.unwrap(), Some(500), "once");
    assert_eq!(store.acknowledge_alert("a1", "u1", "missing", 500).await.unwrap(), None);
    assert_eq!(store.unacknowledged_alerts("a1", "u1", &mine).await.unwrap(), 2);
    assert_eq!(store.unacknowledged_alerts("a1", "u2", &mine).await.unwrap(), 3, "acknowledgement is per user");
    let pending = store.alerts("a1", "u1", &mine, Page { pending_only: true, ..ALL }).await.unwrap();
    assert_eq!(pending.len(), 2);
    let acked = store.alerts("a1", "u1", &groups(&["acc1"]), ALL).await.unwrap();
    assert_eq!(acked[1].acknowledged_at_ms, Some(500));

    assert_eq!(store.delete_alert("a1", "a1-acc1-a1").await.unwrap().as_deref(), Some("acc1"));
    assert_eq!(store.delete_alert("a1", "a1-acc1-a1").await.unwrap(), None);
    assert_eq!(store.group_alerts("a1", "acc1").await.unwrap(), 1);
    assert_eq!(store.unacknowledged_alerts("a1", "u1", &mine).await.unwrap(), 2);
    // The acknowledgement went with its alert: the same id again starts unacknowledged.
    store.insert_alert(&alarm("a1", "acc1", 1, 600), 100).await.unwrap();
    assert_eq!(store.unacknowledged_alerts("a1", "u1", &mine).await.unwrap(), 3);
    assert_eq!(store.insert_alert(&alarm("a1", "acc1", 5, 700), 2).await.unwrap(), 2, "keep 2 per group");
}

pub(super) async fn retention(store: &dyn Store) {
    for n in 0..5 {
        store.insert_notification(&note("r", "u1", n, 10_000 + u64::from(n) * 1000), 100).await.unwrap();
        store.insert_notification(&note("r", "u2", n, 10_000 + u64::from(n) * 1000), 100).await.unwrap();
        store.insert_alert(&alarm("r", "g", n, 10_000 + u64::from(n) * 1000), 100).await.unwrap();
    }
    let keep = |secs, max_count| Retention { max_age: Duration::from_secs(secs), max_count };
    // At 20 s with a 7.5 s age limit, rows from 12.5 s on stay: n = 3, 4 (and 4 per kind).
    let gone = store.purge_inbox("r", keep(7, 100), keep(7, 100), 19_500).await.unwrap();
    assert_eq!(gone, 3 + 3 + 3);
    let gone = store.purge_inbox("r", keep(3600, 1), keep(3600, 2), 19_500).await.unwrap();
    assert_eq!(gone, 1 + 1, "one notification per user over the count; alerts within it");
    for user in ["u1", "u2"] {
        let left = store.notifications("r", user, ALL).await.unwrap();
        assert_eq!(left.iter().map(|n| n.fields.created_at_ms).collect::<Vec<_>>(), [14_000], "the newest stays");
    }
    assert_eq!(store.group_alerts("r", "g").await.unwrap(), 2);
    assert_eq!(store.unread_notifications("a1", "u2").await.unwrap(), 1, "another app's retention is its own");
}
