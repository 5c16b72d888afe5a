//! Channels and routing: users, groups, rooms, broadcast and custom namespaces, per app.

use serde_json::json;

use crate::support::{manifest, second_app, TestServer, API_KEY};

#[tokio::test]
async fn seed_events_reach_every_device_of_the_user_and_no_one_else() {
    let server = TestServer::start().await;
    let mut phone = server.connect("u1").await;
    let mut laptop = server.connect("u1").await;
    let mut other = server.connect("u2").await;
    assert!(phone.connected["data"].is_null());
    assert_eq!(laptop.connected["user_id"], "u1");
    assert!(laptop.connected["channels"].as_array().unwrap().contains(&json!("user:u1")));

    let invitation = json!({"family_id": "f1", "family_name": "Smiths", "invited_by": "u9"});
    server.publish(json!({"channels": ["user:u1"], "type": "family_invitation", "data": invitation})).await;
    let received = json!({"from_username": "bob", "amount": 100, "new_balance": 1234});
    server.publish(json!({"channels": ["user:u1"], "type": "sbd_tokens_received", "data": received})).await;
    let sent = json!({"to_username": "alice", "amount": 100, "new_balance": 5678});
    server.publish(json!({"channels": ["user:u2"], "type": "sbd_tokens_sent", "data": sent})).await;

    for device in [&mut phone, &mut laptop] {
        // A seed-000/002 client reads only message.type and message.data.
        let first = device.next_json().await;
        assert_eq!((first["type"].as_str(), &first["data"]), (Some("family_invitation"), &invitation));
        assert_eq!(first["channel"], "user:u1");
        assert_eq!(first["app_slug"], "app1");
        assert!(first["id"].is_string() && first["ts"].is_u64());
        let second = device.next_json().await;
        assert_eq!((second["type"].as_str(), &second["data"]), (Some("sbd_tokens_received"), &received));
    }
    // u2 got only its own event: the first frame it sees is sbd_tokens_sent.
    let only = other.next_json().await;
    assert_eq!((only["type"].as_str(), &only["data"]), (Some("sbd_tokens_sent"), &sent));
}

#[tokio::test]
async fn group_events_reach_exactly_the_group() {
    let server = TestServer::start().await;
    let mut member = server.connect_token(&server.token("m1", json!({"groups": ["family-7"]}))).await;
    let mut added = server.connect("m2").await;
    let mut outsider = server.connect("x1").await;
    // m2 joins through the members API, applied at once to the live connection.
    let (status, _) =
        server.api("PUT", "/api/v1/apps/app1/channels/group:family-7/members/m2", Some(API_KEY), None).await;
    assert_eq!(status, 200);

    server
        .publish(json!({"channels": ["group:family-7"], "type": "family_account_frozen", "data": {"frozen": true}}))
        .await;
    server.publish(json!({"channels": ["broadcast"], "type": "marker", "data": null})).await;
    for client in [&mut member, &mut added] {
        assert_eq!(client.next_json().await["type"], "family_account_frozen");
        assert_eq!(client.next_json().await["type"], "marker");
    }
    assert_eq!(outsider.next_json().await["type"], "marker", "the outsider saw no group event");
}

#[tokio::test]
async fn events_of_one_channel_arrive_in_publish_order() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let events: Vec<_> = (0..50).map(|i| json!({"channels": ["user:u1"], "type": "n", "data": i})).collect();
    assert_eq!(server.publish_batch(events).await, 200);
    for i in 0..50 {
        assert_eq!(client.next_json().await["data"], i);
    }
}

#[tokio::test]
async fn subscribe_follows_namespace_policies() {
    let server = TestServer::start().await;
    let token = server.token("u1", json!({"channels": ["stream:pond:*"]}));
    let mut client = server.connect_token(&token).await;
    for (channel, expected) in [
        ("room:lobby", "reply"),
        ("stream:pond:42", "reply"),
        ("stream:lake:1", "error"),
        ("vip:club", "error"),
        ("user:u2", "error"),
        ("group:other", "error"),
        ("news:today", "reply"),
    ] {
        let answer = client.request("subscribe", json!({"channel": channel})).await;
        assert_eq!(answer["type"], expected, "{channel}: {answer}");
        if expected == "error" {
            assert_eq!(answer["data"]["code"], "forbidden", "{channel}: {answer}");
        }
    }
    server.publish(json!({"channels": ["stream:pond:42", "room:lobby"], "type": "ripple", "data": 1})).await;
    assert_eq!(client.next_json().await["channel"], "stream:pond:42");
    assert_eq!(client.next_json().await["channel"], "room:lobby");

    let left = client.request("unsubscribe", json!({"channel": "room:lobby"})).await;
    assert_eq!(left["data"]["was_subscribed"], true);
    server.publish(json!({"channels": ["room:lobby", "user:u1"], "type": "after", "data": 2})).await;
    assert_eq!(client.next_json().await["channel"], "user:u1", "no room event after unsubscribe");
}

#[tokio::test]
async fn server_policy_channels_open_only_through_members() {
    let server = TestServer::start().await;
    let mut client = server.connect("u1").await;
    let denied = client.request("subscribe", json!({"channel": "vip:club"})).await;
    assert_eq!(denied["data"]["code"], "forbidden");
    let path = "/api/v1/apps/app1/channels/vip:club/members/u1";
    assert_eq!(server.api("PUT", path, Some(API_KEY), None).await.1["added"], true);
    let (_, members) = server.api("GET", "/api/v1/apps/app1/channels/vip:club/members", Some(API_KEY), None).await;
    assert_eq!(members["members"], json!(["u1"]));
    server.publish(json!({"channels": ["vip:club"], "type": "vip", "data": 1})).await;
    assert_eq!(client.next_json().await["type"], "vip");
    // A new connection of the member is subscribed from the start.
    let fresh = server.connect("u1").await;
    assert!(fresh.connected["channels"].as_array().unwrap().contains(&json!("vip:club")));
    assert_eq!(server.api("DELETE", path, Some(API_KEY), None).await.1["removed"], true);
    server.publish(json!({"channels": ["vip:club", "user:u1"], "type": "after", "data": 2})).await;
    assert_eq!(client.next_json().await["channel"], "user:u1", "removed member gets nothing more");
}

#[tokio::test]
async fn anonymous_connections_get_broadcast_and_public_channels_only() {
    let server = TestServer::start().await;
    let mut anon = server.raw("/open", &[]).await;
    let connected = anon.next_json().await;
    assert_eq!(connected["type"], "connected");
    assert!(connected["data"]["user_id"].is_null());
    assert_eq!(anon.request("subscribe", json!({"channel": "room:x"})).await["data"]["code"], "forbidden");
    assert_eq!(anon.request("subscribe", json!({"channel": "news:today"})).await["type"], "reply");
    server.publish(json!({"channels": ["news:today"], "type": "headline", "data": "hi"})).await;
    server.publish(json!({"channels": ["broadcast"], "type": "everyone", "data": null})).await;
    assert_eq!(anon.next_json().await["type"], "headline");
    assert_eq!(anon.next_json().await["type"], "everyone");
}

#[tokio::test]
async fn apps_are_isolated() {
    let server = TestServer::start_with(vec![manifest(), second_app()], |_| {}).await;
    let mut in_app1 = server.connect("same-user").await;
    let token = server.token("same-user", json!({}));
    let mut in_app2 = server.raw(&format!("/ws2?token={token}"), &[]).await;
    assert_eq!(in_app2.next_json().await["data"]["app_slug"], "app2");
    server.publish(json!({"channels": ["user:same-user", "broadcast"], "type": "app1-only", "data": null})).await;
    assert_eq!(in_app1.next_json().await["type"], "app1-only");
    assert_eq!(in_app2.request("ping", json!({})).await["type"], "pong", "app2 saw no app1 event before its pong");
}
