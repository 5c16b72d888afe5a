//! Notifications (seed 003) over REST and the socket, on SQLite and PostgreSQL: every change
//! reaches every device of the user with the new unread count.

use serde_json::{json, Value};

use crate::on_both_stores;
use crate::support::{manifest, Backend, Client, TestServer, API_KEY};

on_both_stores!(a_created_notification_reaches_every_device_and_lists, reading_on_one_device_clears_the_badge_on_all);

async fn create(server: &TestServer, user: &str, title: &str) -> Value {
    let body =
        json!({"user": user, "title": title, "message": "You have a new task", "type": "task", "data": {"task": 7}});
    let (status, created) = server.api("POST", "/api/v1/apps/app1/notifications", Some(API_KEY), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Reads `notification:new` and `notification:count` on each client; returns the new one.
async fn expect_new(clients: &mut [&mut Client], unread: u64) -> Value {
    let mut seen = Value::Null;
    for client in clients.iter_mut() {
        seen = client.expect("notification:new").await;
        assert_eq!(client.expect("notification:count").await, json!({"unread": unread}));
    }
    seen
}

async fn a_created_notification_reaches_every_device_and_lists(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let mut phone = server.connect("alice").await;
    let mut laptop = server.connect("alice").await;
    let mut bob = server.connect("bob").await;

    let first = create(&server, "alice", "New Task").await;
    assert_eq!(
        (first["title"].as_str(), first["type"].as_str(), first["read"].as_bool()),
        (Some("New Task"), Some("task"), Some(false))
    );
    assert_eq!(first["id"], first["notification_id"]);
    let pushed = expect_new(&mut [&mut phone, &mut laptop], 1).await;
    assert_eq!(pushed, first, "the pushed notification is the stored one");
    assert_eq!(pushed["data"], json!({"task": 7}));
    let second = create(&server, "alice", "Second").await;
    expect_new(&mut [&mut phone, &mut laptop], 2).await;
    bob.assert_alive().await; // nothing of alice's reached bob

    let alice = server.token("alice", json!({}));
    let (status, list) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&alice), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["unread"], 2);
    let ids: Vec<&Value> = list["notifications"].as_array().unwrap().iter().map(|n| &n["id"]).collect();
    assert_eq!(ids, [&second["id"], &first["id"]], "newest first");
    assert_eq!(list["next_cursor"], Value::Null, "one page holds both");

    let (_, page) = server.api("GET", "/api/v1/apps/app1/me/notifications?limit=1", Some(&alice), None).await;
    assert_eq!(page["notifications"][0]["id"], second["id"]);
    let cursor = page["next_cursor"].as_str().expect("a full page has a next cursor").to_owned();
    let path = format!("/api/v1/apps/app1/me/notifications?limit=1&cursor={cursor}");
    let (_, page) = server.api("GET", &path, Some(&alice), None).await;
    assert_eq!(page["notifications"][0]["id"], first["id"]);

    let (_, count) = server.api("GET", "/api/v1/apps/app1/me/notifications/count", Some(&alice), None).await;
    assert_eq!(count, json!({"unread": 2}));
    let bob_token = server.token("bob", json!({}));
    let (_, theirs) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&bob_token), None).await;
    assert_eq!(theirs["notifications"], json!([]), "a user lists only their own");
}

async fn reading_on_one_device_clears_the_badge_on_all(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let mut phone = server.connect("alice").await;
    let mut laptop = server.connect("alice").await;
    let ids: Vec<String> = {
        let mut ids = Vec::new();
        for n in 1..=4 {
            ids.push(create(&server, "alice", &format!("n{n}")).await["id"].as_str().unwrap().to_owned());
            expect_new(&mut [&mut phone, &mut laptop], n).await;
        }
        ids
    };
    let alice = server.token("alice", json!({}));

    // Over the socket, from the phone: every device hears it; the phone also gets its reply.
    phone.send(json!({"type": "notification:read", "data": {"notification_id": ids[0]}, "ref": 1})).await;
    for client in [&mut phone, &mut laptop] {
        let read = client.expect("notification:read").await;
        assert_eq!(read["notification_id"], ids[0].as_str());
        assert!(read["read_at"].is_string());
        assert_eq!(client.expect("notification:count").await, json!({"unread": 3}));
    }
    let reply = phone.expect("reply").await;
    assert_eq!((reply["ref"].clone(), reply["data"]["unread"].clone()), (json!(1), json!(3)));

    // Over REST: the same events.
    let path = format!("/api/v1/apps/app1/me/notifications/{}/read", ids[1]);
    let (status, answer) = server.api("POST", &path, Some(&alice), None).await;
    assert_eq!((status, answer["unread"].clone()), (200, json!(2)));
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("notification:read").await["notification_id"], ids[1].as_str());
        assert_eq!(client.expect("notification:count").await, json!({"unread": 2}));
    }
    // Reading again changes nothing and pushes nothing.
    let (status, again) = server.api("POST", &path, Some(&alice), None).await;
    assert_eq!((status, again["read_at"].clone()), (200, answer["read_at"].clone()));

    let (_, unread) =
        server.api("GET", "/api/v1/apps/app1/me/notifications?unread_only=true", Some(&alice), None).await;
    assert_eq!(unread["notifications"].as_array().unwrap().len(), 2);

    // Delete over the socket and over REST.
    laptop.send(json!({"type": "notification:delete", "data": {"notification_id": ids[2]}, "ref": "d"})).await;
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("notification:deleted").await, json!({"notification_id": ids[2]}));
        assert_eq!(client.expect("notification:count").await, json!({"unread": 1}));
    }
    assert_eq!(laptop.expect("reply").await["data"]["notification_id"], ids[2].as_str());
    let path = format!("/api/v1/apps/app1/me/notifications/{}", ids[0]);
    let (status, _) = server.api("DELETE", &path, Some(&alice), None).await;
    assert_eq!(status, 200);
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("notification:deleted").await, json!({"notification_id": ids[0]}));
        assert_eq!(client.expect("notification:count").await, json!({"unread": 1}));
    }

    // Read all over the socket; then over REST, where nothing is left to read.
    phone.send(json!({"type": "notification:read_all", "ref": "all"})).await;
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("notification:read_all").await["read"], 1);
        assert_eq!(client.expect("notification:count").await, json!({"unread": 0}));
    }
    assert_eq!(phone.expect("reply").await["data"]["unread"], 0);
    let (status, none) = server.api("POST", "/api/v1/apps/app1/me/notifications/read-all", Some(&alice), None).await;
    assert_eq!((status, none["read"].clone(), none["unread"].clone()), (200, json!(0), json!(0)));
    create(&server, "alice", "after").await;
    for client in [&mut phone, &mut laptop] {
        // Nothing was pushed for the empty read-all: the next event is the new notification.
        client.expect("notification:new").await;
        assert_eq!(client.expect("notification:count").await, json!({"unread": 1}));
    }
    let (status, _) = server.api("POST", "/api/v1/apps/app1/me/notifications/read-all", Some(&alice), None).await;
    assert_eq!(status, 200);
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("notification:read_all").await["read"], 1);
        assert_eq!(client.expect("notification:count").await, json!({"unread": 0}));
    }
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&alice), None).await;
    let list = list["notifications"].as_array().unwrap().clone();
    assert_eq!(list.len(), 3, "four created, two deleted, one more created");
    assert!(list.iter().all(|n| n["read"] == true && n["read_at"].is_string()));
}

#[tokio::test]
async fn retention_drops_old_notifications_in_the_background_and_keeps_the_newest_max() {
    let mut short = manifest();
    short["inbox"] = json!({"notifications": {"ttl": "1s", "max": 2}, "alerts": {"ttl": "1s"}});
    let server = TestServer::start_with(vec![short], |_| {}).await;
    for n in 1..=3 {
        create(&server, "alice", &format!("n{n}")).await;
    }
    let alice = server.token("alice", json!({}));
    let list = || async {
        let (_, list) = server.api("GET", "/api/v1/apps/app1/me/notifications", Some(&alice), None).await;
        list["notifications"].as_array().unwrap().iter().map(|n| n["title"].clone()).collect::<Vec<_>>()
    };
    assert_eq!(list().await, [json!("n3"), json!("n2")], "only the newest `max` stay");
    // The sweep runs every TTL/2 (at least every second): well within the bound below.
    let deadline = tokio::time::Instant::now() + crate::support::WAIT;
    while !list().await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the 1 s TTL was never enforced");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
