//! Presence (seed 003): online with the first connection, offline after a grace period
//! once the last one closes, away and busy on request; told to groups and chat partners.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{presence_manifest, Client, TestServer, API_KEY};

async fn presence_of(server: &TestServer, users: &str) -> Value {
    let (status, answer) =
        server.api("GET", &format!("/api/v1/apps/app1/presence?users={users}"), Some(API_KEY), None).await;
    assert_eq!(status, 200, "{answer}");
    answer["presence"].clone()
}

async fn connect_in(server: &TestServer, user: &str, groups: Value) -> Client {
    server.connect_token(&server.token(user, json!({ "groups": groups }))).await
}

#[tokio::test]
async fn presence_follows_connections_with_a_grace_period_and_reaches_the_group() {
    let server = TestServer::start_with(vec![presence_manifest()], |_| {}).await;
    let mut ben = connect_in(&server, "ben", json!(["team"])).await;
    assert_eq!(ben.expect("presence:online").await["userKey"], "ben", "a user hears their own status too");

    let mut ann = connect_in(&server, "ann", json!(["team"])).await;
    let online = ben.expect("presence:online").await;
    assert_eq!((online["userKey"].as_str(), online["status"].as_str()), (Some("ann"), Some("online")));
    assert_eq!(ann.expect("presence:online").await["userKey"], "ann");
    let second = connect_in(&server, "ann", json!(["team"])).await;
    ann.request("ping", json!({})).await; // a second device announces nothing
    let presence = presence_of(&server, "ann,ben,zed").await;
    assert_eq!(presence["ann"], json!({"status": "online", "connections": 2, "last_seen": null}));
    assert_eq!(presence["zed"]["status"], "offline");
    let (_, channel) = server.api("GET", "/api/v1/apps/app1/channels/group:team/presence", Some(API_KEY), None).await;
    assert_eq!(channel["users"], json!([{"user": "ann", "status": "online"}, {"user": "ben", "status": "online"}]));

    ann.send(json!({"type": "presence:set", "data": {"status": "away"}, "ref": 1})).await;
    assert_eq!(ann.expect("presence:away").await["userKey"], "ann", "the signal comes before the reply");
    assert_eq!(ann.expect("reply").await["data"]["status"], "away");
    assert_eq!(ben.expect("presence:away").await["userKey"], "ann");
    let bad = ann.request("presence:set", json!({"status": "asleep"})).await;
    assert_eq!((bad["type"].as_str(), bad["data"]["code"].as_str()), (Some("error"), Some("bad_request")));

    // Leaving: nothing while a device remains; offline one grace period after the last.
    drop(second);
    drop(ann);
    let offline = ben.expect("presence:offline").await;
    assert_eq!((offline["userKey"].as_str(), offline["lastSeen"].is_string()), (Some("ann"), true));
    let presence = presence_of(&server, "ann").await;
    assert_eq!((presence["ann"]["status"].as_str(), presence["ann"]["last_seen"].is_string()), (Some("offline"), true));
}

#[tokio::test]
async fn a_reload_within_the_grace_period_does_not_flap() {
    let server = TestServer::start_with(vec![presence_manifest()], |_| {}).await;
    let mut ben = connect_in(&server, "ben", json!(["team"])).await;
    ben.expect("presence:online").await;
    let ann = connect_in(&server, "ann", json!(["team"])).await;
    assert_eq!(ben.expect("presence:online").await["userKey"], "ann");
    drop(ann);
    let _reloaded = connect_in(&server, "ann", json!(["team"])).await;
    // Proving that nothing happens needs the grace period (1 s) to pass; no event marks it.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    ben.assert_alive().await;
    assert_eq!(presence_of(&server, "ann").await["ann"]["status"], "online");
}

#[tokio::test]
async fn chat_partners_hear_presence_without_sharing_a_group() {
    let server = TestServer::start_with(vec![presence_manifest()], |_| {}).await;
    let mut carl = server.connect("carl").await;
    let body = json!({"type": "direct", "participants": ["carl"], "created_by": "ann"});
    let (status, _) = server.api("POST", "/api/v1/apps/app1/conversations", Some(API_KEY), Some(body)).await;
    assert_eq!(status, 201);
    carl.expect("chat:conversation:created").await;
    let _ann = server.connect("ann").await;
    assert_eq!(carl.expect("presence:online").await["userKey"], "ann");
    let chat = carl.expect("chat:presence").await;
    assert_eq!((chat["userKey"].as_str(), chat["status"].as_str()), (Some("ann"), Some("online")));
}
