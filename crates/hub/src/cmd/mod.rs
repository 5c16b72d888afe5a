//! Client commands: one file per command, each parsing its frame and applying it.

mod refresh;
mod subscribe;
mod unsubscribe;

use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use crate::session::Session;

/// An error answer: the code and a message naming what is wrong.
pub(crate) type Refusal = (ErrorCode, String);

/// Applies one client frame; every failure is answered with an `error` frame.
pub(crate) async fn dispatch(session: &mut Session, frame: ClientFrame) {
    let result = match frame.kind.as_str() {
        "auth" | "refresh" => refresh::apply(session, &frame).await,
        "subscribe" => subscribe::apply(session, &frame).await,
        "unsubscribe" => unsubscribe::apply(session, &frame),
        "ping" => {
            session.send(ServerFrame::pong(frame.reference.as_ref()));
            Ok(())
        }
        other => Err((
            ErrorCode::UnknownType,
            format!("no handler for message type `{other}`: the hub does not own it, and backend handlers are not in this release"),
        )),
    };
    if let Err((code, message)) = result {
        session.send_error(frame.reference.as_ref(), code, &message);
    }
}

/// A required string field of `data`, as a `bad_request` refusal.
pub(crate) fn field<'f>(frame: &'f ClientFrame, name: &str) -> Result<&'f str, Refusal> {
    frame.data_str(name).map_err(|e| (ErrorCode::BadRequest, e.message))
}
