//! Conformance checks of chat: conversations, messages, receipts, search and last seen.

use crate::{NewConversation, NewMessage, Store};

fn conversation(id: &str, kind: &str, users: &[&str], at_ms: u64) -> NewConversation {
    let mut participants: Vec<String> = users.iter().map(|u| (*u).to_owned()).collect();
    participants.sort();
    NewConversation {
        app: "c1".into(),
        id: id.into(),
        kind: kind.into(),
        name: (kind == "group").then(|| format!("{id} team")),
        created_by: users[0].into(),
        participants,
        created_at_ms: at_ms,
    }
}

fn text(id: &str, conversation: &str, sender: &str, content: &str, at_ms: u64) -> NewMessage {
    NewMessage {
        app: "c1".into(),
        id: id.into(),
        conversation: conversation.into(),
        sender: sender.into(),
        kind: "text".into(),
        content: content.into(),
        reply_to: None,
        media_url: None,
        mentions: "[]".into(),
        temp_id: Some(format!("tmp-{id}")),
        created_at_ms: at_ms,
    }
}

pub(super) async fn conversations(store: &dyn Store) {
    let direct = conversation("d1", "direct", &["ann", "ben"], 100);
    let (made, created) = store.create_conversation(&direct).await.unwrap();
    assert!(created);
    assert_eq!(made, direct);
    let again = NewConversation { id: "d2".into(), created_by: "ben".into(), ..direct.clone() };
    let (found, created) = store.create_conversation(&again).await.unwrap();
    assert!(!created, "one direct conversation per pair");
    assert_eq!(found.id, "d1");
    let group = conversation("g1", "group", &["ann", "ben", "cat"], 200);
    assert!(store.create_conversation(&group).await.unwrap().1);
    let twin = NewConversation { id: "g2".into(), ..group.clone() };
    assert!(store.create_conversation(&twin).await.unwrap().1, "groups may share members");
    assert_eq!(store.conversation("c1", "g1").await.unwrap(), Some(group.clone()));
    assert_eq!(store.conversation("c1", "nope").await.unwrap(), None);
    assert_eq!(store.conversation("c2", "g1").await.unwrap(), None, "apps are isolated");
    assert_eq!(store.partners("c1", "ann").await.unwrap(), ["ben", "cat"]);
    assert_eq!(store.partners("c1", "cat").await.unwrap(), ["ann", "ben"]);
    assert!(store.partners("c1", "zed").await.unwrap().is_empty());
}

pub(super) async fn messages(store: &dyn Store) {
    let first = store.insert_message(&text("m1", "d1", "ann", "hello ben, lunch today?", 300)).await.unwrap();
    let second = store.insert_message(&text("m2", "d1", "ben", "yes: the usual place", 400)).await.unwrap();
    let third = store.insert_message(&text("m3", "d1", "ann", "see you at noon", 500)).await.unwrap();
    store.insert_message(&text("m4", "g1", "cat", "lunch for the team", 450)).await.unwrap();
    assert!(first.cursor < second.cursor && second.cursor < third.cursor, "cursors grow");
    assert_eq!(store.message("c1", "m2").await.unwrap(), Some(second.clone()));

    let page = store.messages("c1", "d1", "ben", None, 2).await.unwrap();
    assert_eq!(page.iter().map(|m| m.fields.id.as_str()).collect::<Vec<_>>(), ["m3", "m2"], "newest first");
    let older = store.messages("c1", "d1", "ben", Some(page[1].cursor), 10).await.unwrap();
    assert_eq!(older.iter().map(|m| m.fields.id.as_str()).collect::<Vec<_>>(), ["m1"]);

    let unread = store.unread_messages("c1", "ben").await.unwrap();
    assert_eq!(unread, [("d1".to_owned(), 2), ("g1".to_owned(), 1)], "others' messages count, own do not");
    assert_eq!(store.mark_read("c1", "d1", "ben", first.cursor).await.unwrap(), first.cursor);
    assert_eq!(store.mark_read("c1", "d1", "ben", 0).await.unwrap(), first.cursor, "a read mark never moves back");
    assert_eq!(store.unread_messages("c1", "ben").await.unwrap()[0], ("d1".to_owned(), 1));
    let summaries = store.conversations("c1", "ben").await.unwrap();
    let order: Vec<(&str, u64)> = summaries.iter().map(|s| (s.conversation.id.as_str(), s.unread)).collect();
    assert_eq!(order, [("d1", 1), ("g1", 1), ("g2", 0)], "most recently active first");
    let whole: Vec<(Vec<&str>, Option<&str>)> = summaries
        .iter()
        .map(|s| {
            let participants = s.conversation.participants.iter().map(String::as_str).collect();
            (participants, s.last_message.as_ref().map(|m| m.fields.id.as_str()))
        })
        .collect();
    let group = vec!["ann", "ben", "cat"];
    let expected = [(vec!["ann", "ben"], Some("m3")), (group.clone(), Some("m4")), (group, None)];
    assert_eq!(whole, expected, "each with its participants and newest message");

    let edited = store.edit_message("c1", "m3", "see you at one", 600).await.unwrap().unwrap();
    assert_eq!((edited.fields.content.as_str(), edited.edited_at_ms), ("see you at one", Some(600)));
    assert_eq!(store.mark_delivered("c1", "m3", "ben", 700).await.unwrap(), 700);
    assert_eq!(store.mark_delivered("c1", "m3", "ben", 800).await.unwrap(), 700, "first delivery counts");

    let found = store.search_messages("c1", "ben", "LUNCH", 10).await.unwrap();
    assert_eq!(found.iter().map(|m| m.fields.id.as_str()).collect::<Vec<_>>(), ["m4", "m1"], "any case, newest first");
    assert!(store.search_messages("c1", "zed", "lunch", 10).await.unwrap().is_empty(), "only one's own conversations");
    let edited_text = store.search_messages("c1", "ann", "one", 10).await.unwrap();
    assert_eq!(edited_text.len(), 1, "search follows edits");
    assert!(store.search_messages("c1", "ann", "noon", 10).await.unwrap().is_empty());
    assert_eq!(store.search_messages("c1", "ann", "usual \"place", 10).await.unwrap().len(), 1, "quotes are text");

    store.delete_message("c1", "m1", "ben", false, 900).await.unwrap();
    let for_ben = store.messages("c1", "d1", "ben", None, 10).await.unwrap();
    assert_eq!(for_ben.len(), 2, "deleted for ben only");
    assert_eq!(store.messages("c1", "d1", "ann", None, 10).await.unwrap().len(), 3);
    store.delete_message("c1", "m2", "ben", true, 950).await.unwrap();
    let gone = store.message("c1", "m2").await.unwrap().unwrap();
    assert_eq!((gone.fields.content.as_str(), gone.deleted_at_ms), ("", Some(950)), "blanked for everyone");
    assert!(store.search_messages("c1", "ann", "usual", 10).await.unwrap().is_empty());
}

pub(super) async fn presence(store: &dyn Store) {
    store.set_last_seen("c1", "ann", 1000).await.unwrap();
    store.set_last_seen("c1", "ann", 2000).await.unwrap();
    store.set_last_seen("c1", "ben", 1500).await.unwrap();
    let users = ["ann".to_owned(), "ben".to_owned(), "zed".to_owned()];
    let seen = store.last_seen("c1", &users).await.unwrap();
    assert_eq!(seen, [("ann".to_owned(), 2000), ("ben".to_owned(), 1500)]);
    assert!(store.last_seen("c2", &users).await.unwrap().is_empty());
    assert!(store.last_seen("c1", &[]).await.unwrap().is_empty());
}
