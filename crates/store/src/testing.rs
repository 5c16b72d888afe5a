//! The conformance suite every [`Store`] implementation must pass, on an empty database.

use std::time::Duration;

use crate::Store;

/// Runs every check of the contract. Panics on the first broken rule.
pub async fn conformance(store: &dyn Store) {
    members(store).await;
    idempotency(store).await;
    settings(store).await;
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
    store.release_idempotency("a1", "k").await.unwrap();
    assert_eq!(store.claim_idempotency("a1", "k", "third", day).await.unwrap(), None);
    // A zero TTL expires at once: the key can be claimed again and purge removes it.
    assert_eq!(store.claim_idempotency("a1", "z", "x", Duration::ZERO).await.unwrap(), None);
    assert_eq!(store.claim_idempotency("a1", "z", "y", Duration::ZERO).await.unwrap(), None);
    assert_eq!(store.purge_expired().await.unwrap(), 1);
}

async fn settings(store: &dyn Store) {
    assert_eq!(store.setting_or_insert("s", "v1").await.unwrap(), "v1");
    assert_eq!(store.setting_or_insert("s", "v2").await.unwrap(), "v1", "first value wins");
}
