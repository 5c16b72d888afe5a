//! Who may subscribe to which channel.

use switchboard_auth::Identity;
use switchboard_protocol::Channel;

use crate::{AppSpec, Policy};

/// A subscribe was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum Denial {
    /// The name is not a channel this app has: `bad_request`.
    BadName(String),
    /// The policy denies it: `forbidden`.
    Forbidden(String),
}

/// Parses a channel name and checks that its namespace exists in this app.
pub fn check_name<'a>(spec: &AppSpec, name: &'a str) -> Result<Channel<'a>, String> {
    let channel = Channel::parse(name).map_err(|e| format!("`{name}`: {e}"))?;
    if let Channel::Custom { namespace, .. } = channel {
        if !spec.namespaces.contains_key(namespace) {
            return Err(format!("`{name}`: namespace `{namespace}` is not declared under `channels` in the manifest"));
        }
    }
    Ok(channel)
}

/// Whether a connection may subscribe itself. `is_member` says whether the server API made
/// this user a member of the channel.
pub fn may_subscribe(spec: &AppSpec, identity: Option<&Identity>, name: &str, is_member: bool) -> Result<(), Denial> {
    let channel = check_name(spec, name).map_err(Denial::BadName)?;
    let allowed = match channel {
        Channel::Broadcast => true,
        Channel::User(id) => identity.is_some_and(|i| i.user_id == id),
        Channel::Group(id) => identity.is_some_and(|i| i.groups.iter().any(|g| g == id)) || is_member,
        Channel::Room(_) | Channel::Custom { .. } => {
            let policy = spec.namespaces.get(channel.namespace()).map_or(Policy::Server, |n| n.subscribe);
            return by_policy(policy, identity, name, is_member);
        }
    };
    allowed.then_some(()).ok_or_else(|| Denial::Forbidden(format!("you may not subscribe to `{name}`")))
}

fn by_policy(policy: Policy, identity: Option<&Identity>, name: &str, is_member: bool) -> Result<(), Denial> {
    let allowed = match policy {
        Policy::Public => true,
        Policy::Authenticated => identity.is_some(),
        Policy::Claim => identity.is_some_and(|i| i.channels.iter().any(|c| claim_matches(c, name))),
        Policy::Server => is_member,
        Policy::Proxy => {
            return Err(Denial::Forbidden(format!(
                "`{name}` uses the proxy policy, which needs the subscribe proxy (not in this build)"
            )))
        }
    };
    let why = match policy {
        Policy::Server => "only the server API can add members to",
        Policy::Claim => "your token's channels claim does not list",
        _ => "you must be signed in to subscribe to",
    };
    allowed.then_some(()).ok_or_else(|| Denial::Forbidden(format!("{why} `{name}`")))
}

/// A claim entry is a channel name, or `ns:*` for every channel of a namespace.
fn claim_matches(entry: &str, name: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) if prefix.ends_with(':') => name.starts_with(prefix),
        _ => entry == name,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, NamespaceSpec};

    fn spec() -> AppSpec {
        let mut namespaces = std::collections::HashMap::new();
        namespaces.insert("room".into(), NamespaceSpec { subscribe: Policy::Server, history: None, proxy_url: None });
        namespaces.insert("stream".into(), NamespaceSpec { subscribe: Policy::Claim, history: None, proxy_url: None });
        namespaces.insert("news".into(), NamespaceSpec { subscribe: Policy::Public, history: None, proxy_url: None });
        AppSpec {
            slug: "a".into(),
            verifier: None,
            api_keys: Default::default(),
            cookie: None,
            endpoints: vec![],
            namespaces,
            history: Default::default(),
            limits: Limits::default(),
            features: Default::default(),
            inbox: Default::default(),
            chat: Default::default(),
        }
    }

    fn alice() -> Identity {
        Identity {
            user_id: "alice".into(),
            email: None,
            groups: vec!["fam".into()],
            channels: vec!["stream:pond:*".into()],
            device: None,
            expires_at: None,
        }
    }

    #[test]
    fn policies_decide() {
        let (s, a) = (spec(), alice());
        assert!(may_subscribe(&s, Some(&a), "user:alice", false).is_ok());
        assert!(matches!(may_subscribe(&s, Some(&a), "user:bob", true), Err(Denial::Forbidden(_))));
        assert!(may_subscribe(&s, Some(&a), "group:fam", false).is_ok());
        assert!(may_subscribe(&s, Some(&a), "group:other", true).is_ok());
        assert!(may_subscribe(&s, Some(&a), "group:other", false).is_err());
        assert!(may_subscribe(&s, Some(&a), "room:1", false).is_err());
        assert!(may_subscribe(&s, Some(&a), "stream:pond:42", false).is_ok());
        assert!(may_subscribe(&s, Some(&a), "stream:lake:1", false).is_err());
        assert!(may_subscribe(&s, None, "news:today", false).is_ok());
        assert!(matches!(may_subscribe(&s, Some(&a), "nope:1", true), Err(Denial::BadName(_))));
    }
}
