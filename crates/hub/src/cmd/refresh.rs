//! `refresh {token}`: replace the connection's token before it expires.

use serde_json::json;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use super::{field, Refusal};
use crate::session::{expiry_of, Session};

pub(crate) async fn apply(session: &mut Session, frame: &ClientFrame) -> Result<(), Refusal> {
    let token = field(frame, "token")?;
    // An anonymous connection has no user to refresh, and cannot become one: its
    // subscriptions were checked as nobody's. Said before verifying, whatever the token.
    if session.identity.is_none() {
        return Err((ErrorCode::Forbidden, "this connection is anonymous; reconnect with the token".into()));
    }
    let identity = crate::handshake::verify(&session.app, token)
        .await
        .map_err(|d| (ErrorCode::Unauthorized, d.reason.into_owned()))?;
    if session.identity.as_ref().map(|i| &i.user_id) != Some(&identity.user_id) {
        return Err((ErrorCode::Forbidden, "the new token is for another user; reconnect instead".into()));
    }
    session.expires = expiry_of(&session.app, Some(&identity));
    let reply = json!({ "user_id": identity.user_id, "expires_at": identity.expires_at });
    session.identity = Some(identity);
    session.send(ServerFrame::reply(frame.reference.as_ref(), reply));
    Ok(())
}
