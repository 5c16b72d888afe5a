//! `subscribe {channel, since?}`: join a channel the manifest's policy allows; with `since`
//! (`{epoch, seq}`), first replay what the client missed on it.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::{field, position, replayable, Refusal};
use crate::policy::{self, Denial};
use crate::replay::Outcome;
use crate::session::Session;

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let channel = field(frame, "channel")?;
    let since = match frame.data.get("since") {
        None | Some(serde_json::Value::Null) => None,
        Some(value) => Some(position(value, "data.since")?),
    };
    within_limit(session, channel)?;
    authorize(session, channel).await?;
    let Some(since) = since else {
        session.hub.subscribe(&session.app, session.meta.id, channel).await;
        // The reply promises events from every node from now on.
        session.hub.settle().await;
        session.send(ServerFrame::reply(frame.reference.as_ref(), json!({ "channel": channel })));
        return Ok(());
    };
    let spec = replayable(session, channel)?;
    session.outbox.hold();
    session.hub.subscribe(&session.app, session.meta.id, channel).await;
    session.hub.settle().await;
    let reply = |outcome: &Outcome| {
        let mut data = outcome.data();
        data["channel"] = json!(channel);
        ServerFrame::reply(frame.reference.as_ref(), data)
    };
    session.replay(vec![(channel.to_owned(), since, spec)], reply).await;
    Ok(())
}

/// A connection holds at most `limits.max_channels` channels: each costs memory on the node.
fn within_limit(session: &Session, channel: &str) -> Result<(), Refusal> {
    let (registry, id, max) = (&session.app.registry, session.meta.id, session.app.spec.limits.max_channels);
    if registry.is_subscribed(id, channel) || registry.channel_count(id) < max {
        return Ok(());
    }
    let message = format!(
        "a connection may be subscribed to at most {max} channels (limits.max_channels); unsubscribe from one first"
    );
    Err((ErrorCode::Forbidden, message))
}

/// Whether this connection may subscribe to `channel`, as an error answer if not.
pub(crate) async fn authorize(session: &Session, channel: &str) -> Result<(), Refusal> {
    let spec = &session.app.spec;
    if let Some(url) = proxy_url(spec, channel) {
        return ask_backend(session, channel, url).await;
    }
    let identity = session.identity.as_ref();
    // Most channels are decided by name and token alone; only a denial is worth asking the
    // store whether the server made this user a member.
    let verdict = match policy::may_subscribe(spec, identity, channel, false) {
        Err(Denial::Forbidden(_)) if identity.is_some() && is_member(session, channel).await? => {
            policy::may_subscribe(spec, identity, channel, true)
        }
        verdict => verdict,
    };
    verdict.map_err(|d| match d {
        Denial::BadName(m) => (ErrorCode::BadRequest, format!("field `data.channel`: {m}")),
        Denial::Forbidden(m) => (ErrorCode::Forbidden, m),
    })
}

async fn is_member(session: &Session, channel: &str) -> Result<bool, Refusal> {
    let Some(identity) = &session.identity else {
        return Ok(false);
    };
    let memberships = session.hub.store().memberships(&session.app.spec.slug, &identity.user_id).await;
    let memberships = memberships.map_err(|e| (ErrorCode::Internal, e.to_string()))?;
    Ok(memberships.iter().any(|c| c == channel))
}

/// The backend URL that decides subscriptions to `channel`, when its namespace has the
/// `proxy` policy.
fn proxy_url<'s>(spec: &'s crate::AppSpec, channel: &str) -> Option<&'s str> {
    let parsed = policy::check_name(spec, channel).ok()?;
    let namespace = spec.namespaces.get(parsed.namespace())?;
    (namespace.subscribe == crate::Policy::Proxy).then_some(namespace.proxy_url.as_deref()).flatten()
}

/// The subscribe proxy: the first service that decides answers.
async fn ask_backend(session: &Session, channel: &str, url: &str) -> Result<(), Refusal> {
    let caller = session.caller();
    for service in session.hub.services() {
        if let Some(allowed) = service.may_subscribe(&session.hub, &caller, channel, url).await {
            return match allowed {
                true => Ok(()),
                false => {
                    Err((ErrorCode::Forbidden, format!("the app backend does not let you subscribe to `{channel}`")))
                }
            };
        }
    }
    Err((ErrorCode::Forbidden, format!("`{channel}` uses the proxy policy, but no subscribe proxy runs")))
}
