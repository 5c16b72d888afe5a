//! Chat (seed 003) end to end over real sockets and REST, on SQLite and PostgreSQL.

use serde_json::{json, Value};

use crate::on_both_stores;
use crate::support::{chat_manifest, Backend, Client, TestServer, API_KEY};

on_both_stores!(a_whole_conversation_between_two_users, group_conversations_and_every_chat_error);

/// Sends a frame with a `ref` and returns the reply (after the events it caused, which the
/// caller reads first).
async fn send(client: &mut Client, kind: &str, data: Value) {
    client.send(json!({"type": kind, "data": data, "ref": kind})).await;
}

async fn a_whole_conversation_between_two_users(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![chat_manifest()]).await else { return };
    let mut phone = server.connect("ann").await;
    let mut laptop = server.connect("ann").await;
    let mut ben = server.connect("ben").await;

    // A direct conversation: everyone in it hears of it; creating it again finds it.
    send(&mut phone, "chat:conversation:create", json!({"type": "direct", "participants": ["ben"]})).await;
    let mut created = Value::Null;
    for client in [&mut phone, &mut laptop, &mut ben] {
        created = client.expect("chat:conversation:created").await;
        assert_eq!(created["participants"], json!(["ann", "ben"]));
        assert_eq!((created["type"].as_str(), created["createdBy"].as_str()), (Some("direct"), Some("ann")));
    }
    assert_eq!(phone.expect("reply").await["data"]["created"], true);
    let id = created["conversationId"].as_str().unwrap().to_owned();
    let again = ben.request("chat:conversation:create", json!({"type": "direct", "participants": ["ann"]})).await;
    assert_eq!(
        (again["data"]["conversationId"].as_str(), again["data"]["created"].as_bool()),
        (Some(id.as_str()), Some(false))
    );

    // A message: stored, confirmed to the sender's devices with the tempId, delivered to ben.
    let hello = json!({"conversationId": id, "content": "lunch today?", "tempId": "t1", "mentions": ["ben"]});
    send(&mut phone, "chat:send", hello).await;
    let sent = phone.expect("chat:message:sent").await;
    assert_eq!(
        (sent["tempId"].as_str(), sent["status"].as_str(), sent["senderKey"].as_str()),
        (Some("t1"), Some("sent"), Some("ann"))
    );
    assert!(sent["messageId"].is_string() && sent["createdAt"].is_string());
    assert_eq!(laptop.expect("chat:message:sent").await, sent);
    let received = ben.expect("chat:message").await;
    assert_eq!(received, sent, "chat:message carries the same data");
    assert_eq!(received["mentions"], json!(["ben"]));
    assert_eq!(phone.expect("reply").await["data"], sent, "stored before acknowledged");
    let first = sent["messageId"].as_str().unwrap().to_owned();

    // Receipts and typing.
    send(&mut ben, "chat:delivered", json!({"messageId": first})).await;
    for client in [&mut phone, &mut laptop] {
        let delivered = client.expect("chat:message:delivered").await;
        assert_eq!(
            (delivered["messageId"].as_str(), delivered["deliveredTo"].as_str()),
            (Some(first.as_str()), Some("ben"))
        );
    }
    ben.expect("reply").await;
    send(&mut ben, "chat:typing", json!({"conversationId": id, "isTyping": true})).await;
    for client in [&mut phone, &mut laptop] {
        let typing = client.expect("chat:typing:start").await;
        assert_eq!((typing["conversationId"].as_str(), typing["userKey"].as_str()), (Some(id.as_str()), Some("ben")));
    }
    ben.expect("reply").await;
    send(&mut ben, "chat:typing", json!({"conversationId": id, "isTyping": false})).await;
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("chat:typing:stop").await["userKey"], "ben");
    }
    ben.expect("reply").await;
    let answer = json!({"conversationId": id, "content": "yes, the usual place", "replyTo": first, "tempId": "b1"});
    send(&mut ben, "chat:send", answer).await;
    let reply_sent = ben.expect("chat:message:sent").await;
    for client in [&mut phone, &mut laptop] {
        assert_eq!(client.expect("chat:message").await["replyTo"], first.as_str());
    }
    ben.expect("reply").await;
    let second = reply_sent["messageId"].as_str().unwrap().to_owned();

    // The first load over REST: unread counts and the conversation list.
    let ann = server.token("ann", json!({}));
    let (_, unread) = server.api("GET", "/api/v1/apps/app1/me/chat/unread", Some(&ann), None).await;
    assert_eq!(unread, json!({"total": 1, "conversations": {id.clone(): 1}}));
    let (_, list) = server.api("GET", "/api/v1/apps/app1/me/conversations", Some(&ann), None).await;
    let summary = &list["conversations"][0];
    assert_eq!(
        (summary["unread"].as_u64(), summary["lastMessage"]["messageId"].as_str()),
        (Some(1), Some(second.as_str()))
    );

    // Reading clears the count everywhere.
    send(&mut laptop, "chat:read", json!({"conversationId": id})).await;
    for client in [&mut phone, &mut laptop, &mut ben] {
        let read = client.expect("chat:message:read").await;
        assert_eq!((read["conversationId"].as_str(), read["readBy"].as_str()), (Some(id.as_str()), Some("ann")));
    }
    assert_eq!(laptop.expect("reply").await["data"]["unread"], 0);
    let (_, unread) = server.api("GET", "/api/v1/apps/app1/me/chat/unread", Some(&ann), None).await;
    assert_eq!(unread["total"], 0);

    // Edit (the author only) and delete (for oneself, or for everyone by the author).
    send(&mut phone, "chat:edit", json!({"messageId": first, "content": "lunch at noon?"})).await;
    for client in [&mut phone, &mut laptop, &mut ben] {
        let edited = client.expect("chat:message:edited").await;
        assert_eq!((edited["content"].as_str(), edited["editedAt"].is_string()), (Some("lunch at noon?"), true));
    }
    phone.expect("reply").await;
    let refused = ben.request("chat:edit", json!({"messageId": first, "content": "mine now"})).await;
    assert_eq!((refused["type"].as_str(), refused["data"]["code"].as_str()), (Some("chat:error"), Some("forbidden")));
    send(&mut ben, "chat:delete", json!({"messageId": second, "forEveryone": false})).await;
    assert_eq!(ben.expect("chat:message:deleted").await["forEveryone"], false);
    ben.expect("reply").await;
    send(&mut phone, "chat:delete", json!({"messageId": first, "forEveryone": true})).await;
    for client in [&mut phone, &mut laptop, &mut ben] {
        let deleted = client.expect("chat:message:deleted").await;
        assert_eq!(
            (deleted["messageId"].as_str(), deleted["forEveryone"].as_bool()),
            (Some(first.as_str()), Some(true))
        );
    }
    phone.expect("reply").await;

    // History pages and search, as each user sees them.
    let path = format!("/api/v1/apps/app1/me/conversations/{id}/messages?limit=1");
    let (_, page) = server.api("GET", &path, Some(&ann), None).await;
    assert_eq!(page["messages"][0]["messageId"], second.as_str());
    let before = page["next_before"].as_str().expect("a full page pages on").to_owned();
    let (_, older) = server.api("GET", &format!("{path}&before={before}"), Some(&ann), None).await;
    assert_eq!(
        (older["messages"][0]["deleted"].as_bool(), older["messages"][0]["content"].as_str()),
        (Some(true), Some(""))
    );
    let ben_token = server.token("ben", json!({}));
    let (_, bens) =
        server.api("GET", &format!("/api/v1/apps/app1/me/conversations/{id}/messages"), Some(&ben_token), None).await;
    assert_eq!(bens["messages"].as_array().unwrap().len(), 1, "ben deleted his reply for himself");
    let (_, found) = server.api("GET", "/api/v1/apps/app1/me/chat/search?q=usual", Some(&ann), None).await;
    assert_eq!(found["messages"][0]["messageId"], second.as_str());
    // Control characters separate words (a NUL once ended SQLite's query early: a 500).
    let path = "/api/v1/apps/app1/me/chat/search?q=%00usual%1F";
    let (status, found) = server.api("GET", path, Some(&ann), None).await;
    assert_eq!((status, found["messages"][0]["messageId"].as_str()), (200, Some(second.as_str())), "{found}");
    let (_, gone) = server.api("GET", "/api/v1/apps/app1/me/chat/search?q=lunch", Some(&ann), None).await;
    assert_eq!(gone["messages"], json!([]), "a message deleted for everyone is not found");
}

async fn group_conversations_and_every_chat_error(backend: Backend) {
    let Some(server) = TestServer::start_on(backend, vec![chat_manifest()]).await else { return };
    let mut ann = server.connect("ann").await;
    let mut dan = server.connect("dan").await;
    let body = json!({"type": "group", "participants": ["ben", "cat"], "name": "Pond team", "created_by": "ann"});
    let (status, group) = server.api("POST", "/api/v1/apps/app1/conversations", Some(API_KEY), Some(body)).await;
    assert_eq!(status, 201, "{group}");
    assert_eq!(group["participants"], json!(["ann", "ben", "cat"]));
    assert_eq!(ann.expect("chat:conversation:created").await["name"], "Pond team");
    let id = group["conversationId"].as_str().unwrap().to_owned();

    let unnamed = json!({"type": "group", "participants": ["ben"], "created_by": "ann"});
    let (status, e) = server.api("POST", "/api/v1/apps/app1/conversations", Some(API_KEY), Some(unnamed)).await;
    assert_eq!((status, e["error"]["message"].as_str().unwrap().contains("`name`")), (400, true));
    let crowded = json!({"type": "direct", "participants": ["ben", "cat"], "created_by": "ann"});
    let (status, _) = server.api("POST", "/api/v1/apps/app1/conversations", Some(API_KEY), Some(crowded)).await;
    assert_eq!(status, 400);
    let nobody = json!({"type": "direct", "participants": ["ben"]});
    let (status, e) = server.api("POST", "/api/v1/apps/app1/conversations", Some(API_KEY), Some(nobody)).await;
    assert_eq!((status, e["error"]["message"].as_str()), (400, Some("missing field `created_by`")));

    // Every failed send answers chat:error with the code, a message and the tempId.
    let failures = [
        ("dan", json!({"conversationId": id, "content": "hi", "tempId": "x1"}), "forbidden", "participant"),
        ("ann", json!({"conversationId": "nope", "content": "hi", "tempId": "x2"}), "not_found", "nope"),
        ("ann", json!({"conversationId": id, "content": "  ", "tempId": "x3"}), "bad_request", "empty"),
        (
            "ann",
            json!({"conversationId": id, "content": "x".repeat(51), "tempId": "x4"}),
            "bad_request",
            "max_message_chars",
        ),
        ("ann", json!({"content": "hi", "tempId": "x5"}), "bad_request", "conversationId"),
        (
            "ann",
            json!({"conversationId": id, "content": "hi", "replyTo": "nope", "tempId": "x6"}),
            "bad_request",
            "replyTo",
        ),
    ];
    for (who, data, code, names) in failures {
        let client = if who == "dan" { &mut dan } else { &mut ann };
        let temp = data["tempId"].clone();
        let error = client.request("chat:send", data).await;
        assert_eq!(error["type"], "chat:error", "{error}");
        assert_eq!((error["data"]["code"].as_str(), &error["data"]["tempId"]), (Some(code), &temp), "{error}");
        assert!(error["data"]["message"].as_str().unwrap().contains(names), "{error}");
    }
    ann.assert_alive().await;

    // A NUL is text to SQLite; PostgreSQL cannot store it, so there it is refused, by name.
    let nul = json!({"conversationId": id, "content": "a\u{0}b", "tempId": "n1"});
    match backend {
        Backend::Sqlite => {
            send(&mut ann, "chat:send", nul).await;
            assert_eq!(ann.expect("chat:message:sent").await["content"], "a\u{0}b");
            ann.expect("reply").await;
        }
        Backend::Postgres => {
            let error = ann.request("chat:send", nul).await;
            assert_eq!(
                (error["data"]["code"].as_str(), error["data"]["tempId"].as_str()),
                (Some("bad_request"), Some("n1"))
            );
            assert!(error["data"]["message"].as_str().unwrap().contains("NUL"), "{error}");
        }
    }

    // Media with no text is a message; reading up to one message names it.
    let photo = json!({"conversationId": id, "type": "image", "mediaUrl": "https://cdn.example/p.jpg", "tempId": "p1"});
    send(&mut ann, "chat:send", photo).await;
    let sent = ann.expect("chat:message:sent").await;
    assert_eq!(
        (sent["type"].as_str(), sent["mediaUrl"].as_str(), sent["content"].as_str()),
        (Some("image"), Some("https://cdn.example/p.jpg"), Some(""))
    );
    ann.expect("reply").await;
    send(&mut ann, "chat:read", json!({"messageId": sent["messageId"]})).await;
    let read = ann.expect("chat:message:read").await;
    assert_eq!((read["messageId"].clone(), read["readBy"].as_str()), (sent["messageId"].clone(), Some("ann")));
    assert_eq!(ann.expect("reply").await["data"]["unread"], 0);

    // Joining answers the state to a participant only.
    let joined = ann.request("chat:conversation:join", json!({"conversationId": id})).await;
    assert_eq!((joined["data"]["name"].as_str(), joined["data"]["unread"].as_u64()), (Some("Pond team"), Some(0)));
    let refused = dan.request("chat:conversation:join", json!({"conversationId": id})).await;
    assert_eq!(refused["data"]["code"], "forbidden");
    let dan_token = server.token("dan", json!({}));
    let path = format!("/api/v1/apps/app1/me/conversations/{id}/messages");
    let (status, _) = server.api("GET", &path, Some(&dan_token), None).await;
    assert_eq!(status, 403, "another user's conversation is not readable");
    for blank in ["", "%00%10%20"] {
        let path = format!("/api/v1/apps/app1/me/chat/search?q={blank}");
        let (status, _) = server.api("GET", &path, Some(&dan_token), None).await;
        assert_eq!(status, 400, "a query of no words: {blank}");
    }
}

#[tokio::test]
async fn rate_limited_sends_answer_chat_error_with_their_temp_id() {
    let mut tight = chat_manifest();
    tight["limits"] = json!({"messages_per_second": 1, "burst": 2});
    let server = TestServer::start_with(vec![tight], |_| {}).await;
    let mut ann = server.connect("ann").await;
    let mut outcomes = Vec::new();
    for n in 0..4 {
        // No conversation is needed: the limit is checked first.
        let error =
            ann.request("chat:send", json!({"conversationId": "c", "content": "hi", "tempId": format!("t{n}")})).await;
        outcomes.push((error["data"]["code"].as_str().unwrap().to_owned(), error["data"]["tempId"].clone()));
    }
    assert_eq!(outcomes[0].0, "not_found");
    assert_eq!(outcomes[3], ("rate_limited".to_owned(), json!("t3")), "{outcomes:?}");
}

async fn typists(manifest: Value) -> (TestServer, Client, Client, String) {
    let server = TestServer::start_with(vec![manifest], |_| {}).await;
    let mut ann = server.connect("ann").await;
    let mut ben = server.connect("ben").await;
    send(&mut ann, "chat:conversation:create", json!({"type": "direct", "participants": ["ben"]})).await;
    ann.expect("chat:conversation:created").await;
    let id = ann.expect("reply").await["data"]["conversationId"].as_str().unwrap().to_owned();
    ben.expect("chat:conversation:created").await;
    (server, ann, ben, id)
}

#[tokio::test]
async fn typing_stops_by_itself_after_the_typing_timeout() {
    let (_server, mut ann, mut ben, id) = typists(chat_manifest()).await;
    let started = tokio::time::Instant::now();
    ben.send(json!({"type": "chat:typing", "data": {"conversationId": id, "isTyping": true}})).await;
    assert_eq!(ann.expect("chat:typing:start").await["userKey"], "ben");
    // The manifest's typing_timeout is 300 ms: the stop comes by itself, and not before it.
    assert_eq!(ann.expect("chat:typing:stop").await["userKey"], "ben");
    assert!(started.elapsed() >= std::time::Duration::from_millis(300));
    ann.assert_alive().await;
}

#[tokio::test]
async fn typing_stops_when_the_typists_connection_closes() {
    let mut manifest = chat_manifest();
    manifest["chat"]["typing_timeout"] = json!("1h"); // only the disconnect can stop it
    let (_server, mut ann, mut ben, id) = typists(manifest).await;
    ben.send(json!({"type": "chat:typing", "data": {"conversationId": id}})).await;
    assert_eq!(ann.expect("chat:typing:start").await["userKey"], "ben");
    drop(ben);
    assert_eq!(ann.expect("chat:typing:stop").await["userKey"], "ben");
}
