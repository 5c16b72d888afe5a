//! Alerts (seed 003) over REST and the socket, on SQLite and PostgreSQL: pushed to the
//! group, acknowledged by each member for themself.

use serde_json::{json, Value};

use crate::on_both_stores;
use crate::support::{manifest, Backend, TestServer, API_KEY};

on_both_stores!(alerts_reach_the_group_and_each_member_acknowledges_for_themself, server_deletes_and_managed_members);

async fn create(server: &TestServer, group: &str, severity: &str) -> Value {
    let body = json!({"group": group, "title": "Low Oxygen", "message": "Oxygen in Pond A is below threshold", "severity": severity});
    let (status, created) = server.api("POST", "/api/v1/apps/app1/alerts", Some(API_KEY), Some(body)).await;
    assert_eq!(status, 201, "{created}");
    created
}

async fn alerts_reach_the_group_and_each_member_acknowledges_for_themself(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let in_acc1 = json!({"groups": ["acc1"]});
    let mut alice = server.connect_token(&server.token("alice", in_acc1.clone())).await;
    let mut alice_phone = server.connect_token(&server.token("alice", in_acc1.clone())).await;
    let mut bob = server.connect_token(&server.token("bob", in_acc1.clone())).await;
    let mut carol = server.connect_token(&server.token("carol", json!({"groups": ["acc2"]}))).await;

    let alert = create(&server, "acc1", "critical").await;
    assert_eq!((alert["severity"].as_str(), alert["acknowledged"].as_bool()), (Some("critical"), Some(false)));
    for client in [&mut alice, &mut alice_phone, &mut bob] {
        assert_eq!(client.expect("alert:new").await, alert);
        assert_eq!(client.expect("alert:count").await, json!({"group": "acc1", "total": 1}));
    }
    carol.assert_alive().await; // another group's alert never reaches carol
    let id = alert["id"].as_str().unwrap().to_owned();

    let alice_token = server.token("alice", in_acc1.clone());
    let (status, list) = server.api("GET", "/api/v1/apps/app1/me/alerts", Some(&alice_token), None).await;
    assert_eq!((status, list["unacknowledged"].clone(), list["alerts"][0]["id"].clone()), (200, json!(1), json!(id)));
    let carol_token = server.token("carol", json!({"groups": ["acc2"]}));
    let (_, theirs) = server.api("GET", "/api/v1/apps/app1/me/alerts", Some(&carol_token), None).await;
    assert_eq!(theirs["alerts"], json!([]));

    // Alice acknowledges over the socket: her devices hear it, bob's state is untouched.
    alice.send(json!({"type": "alert:acknowledge", "data": {"alert_id": id}, "ref": 5})).await;
    for client in [&mut alice, &mut alice_phone] {
        let ack = client.expect("alert:acknowledged").await;
        assert_eq!((ack["alert_id"].as_str(), ack["group"].as_str()), (Some(id.as_str()), Some("acc1")));
        assert_eq!(client.expect("alert:count").await, json!({"unacknowledged": 0}));
    }
    assert_eq!(alice.expect("reply").await["data"]["unacknowledged"], 0);
    bob.assert_alive().await;
    let bob_token = server.token("bob", in_acc1.clone());
    let (_, count) = server.api("GET", "/api/v1/apps/app1/me/alerts/count", Some(&bob_token), None).await;
    assert_eq!(count, json!({"unacknowledged": 1}), "acknowledgement is per user");

    // Bob acknowledges over REST.
    let path = format!("/api/v1/apps/app1/me/alerts/{id}/acknowledge");
    let (status, ack) = server.api("POST", &path, Some(&bob_token), None).await;
    assert_eq!((status, ack["unacknowledged"].clone()), (200, json!(0)));
    assert_eq!(bob.expect("alert:acknowledged").await["alert_id"], id.as_str());
    assert_eq!(bob.expect("alert:count").await, json!({"unacknowledged": 0}));
    let (status, again) = server.api("POST", &path, Some(&bob_token), None).await;
    assert_eq!((status, again["acknowledged_at"].clone()), (200, ack["acknowledged_at"].clone()), "once");

    let (_, pending) =
        server.api("GET", "/api/v1/apps/app1/me/alerts?unacknowledged_only=true", Some(&alice_token), None).await;
    assert_eq!(pending["alerts"], json!([]));
    let (_, all) = server.api("GET", "/api/v1/apps/app1/me/alerts?group=acc1", Some(&alice_token), None).await;
    assert_eq!(all["alerts"][0]["acknowledged"], true);
}

async fn server_deletes_and_managed_members(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![manifest()]).await else { return };
    let mut alice = server.connect_token(&server.token("alice", json!({"groups": ["acc1"]}))).await;
    let first = create(&server, "acc1", "warning").await;
    alice.expect("alert:new").await;
    alice.expect("alert:count").await;
    create(&server, "acc1", "info").await;
    alice.expect("alert:new").await;
    assert_eq!(alice.expect("alert:count").await["total"], 2);

    let path = format!("/api/v1/apps/app1/alerts/{}", first["id"].as_str().unwrap());
    let (status, deleted) = server.api("DELETE", &path, Some(API_KEY), None).await;
    assert_eq!(status, 200, "{deleted}");
    assert_eq!(alice.expect("alert:deleted").await, json!({"alert_id": first["id"], "group": "acc1"}));
    assert_eq!(alice.expect("alert:count").await, json!({"group": "acc1", "total": 1}));
    let (status, gone) = server.api("DELETE", &path, Some(API_KEY), None).await;
    assert_eq!((status, gone["error"]["code"].as_str()), (404, Some("not_found")));

    // A server-managed member of a group sees and acknowledges its alerts like a token member.
    let (status, _) =
        server.api("PUT", "/api/v1/apps/app1/channels/group:acc1/members/dave", Some(API_KEY), None).await;
    assert_eq!(status, 200);
    let dave = server.token("dave", json!({}));
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/alerts", Some(&dave), None).await;
    let id = list["alerts"][0]["id"].as_str().expect("dave sees acc1's alert").to_owned();
    let (status, _) =
        server.api("POST", &format!("/api/v1/apps/app1/me/alerts/{id}/acknowledge"), Some(&dave), None).await;
    assert_eq!(status, 200);
    let (status, forbidden) = server.api("GET", "/api/v1/apps/app1/me/alerts?group=acc9", Some(&dave), None).await;
    assert_eq!((status, forbidden["error"]["code"].as_str()), (403, Some("forbidden")));
}
