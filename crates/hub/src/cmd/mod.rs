//! Client commands: one file per command, each parsing its frame and applying it.

mod ack;
mod refresh;
mod resume;
mod subscribe;
mod unsubscribe;

use serde_json::Value;
use switchboard_protocol::api::Position;
use switchboard_protocol::{ClientFrame, ErrorCode, ServerFrame};

use crate::session::Session;
use crate::{policy, HistorySpec, Service};

/// Most channels one `resume` or `ack` may name.
pub(crate) const MAX_POSITIONS: usize = 100;

/// A command's error answer: the code and a message naming what is wrong.
pub(crate) type Refusal = (ErrorCode, String);

/// Applies one client frame; every failure is answered with an `error` frame.
pub(crate) async fn dispatch(session: &mut Session, frame: ClientFrame) {
    let result: Result<(), Refusal> = match frame.kind.as_str() {
        "auth" | "refresh" => refresh::apply(session, &frame).await,
        "subscribe" => subscribe::apply(session, &frame).await,
        "unsubscribe" => unsubscribe::apply(session, &frame),
        "resume" => resume::apply(session, &frame).await,
        "ack" => ack::apply(session, &frame).await,
        "ping" => {
            session.send(ServerFrame::pong(frame.reference.as_ref()));
            Ok(())
        }
        other => {
            let caller = session.caller();
            match session.hub.service_for(&caller, other) {
                Some(service) => return serve(session, &caller, service.as_ref(), &frame).await,
            None => Err((
                ErrorCode::UnknownType,
                    format!("no handler for message type `{other}`: the hub does not own it and this endpoint has no `handler_url`"),
                )),
            }
        }
    };
    if let Err((code, message)) = result {
        session.send_error(frame.reference.as_ref(), code, &message);
    }
}

/// Hands a message to the service that owns its type; its answer is the reply, or the
/// refusal the service shaped. Both are sent even without a `ref` (then left out), as for
/// every command: a handler's reply may be all the client waits for.
async fn serve(session: &Session, caller: &crate::Caller, service: &dyn Service, frame: &ClientFrame) {
    match service.handle(&session.hub, caller, &frame.kind, &frame.data).await {
        Ok(data) => session.send(ServerFrame::reply(frame.reference.as_ref(), data)),
        Err(refusal) => session.send(refusal.encode(frame.reference.as_ref())),
    }
}

/// A required string field of `data`, as a `bad_request` refusal.
pub(crate) fn field<'f>(frame: &'f ClientFrame, name: &str) -> Result<&'f str, Refusal> {
    frame.data_str(name).map_err(|e| (ErrorCode::BadRequest, e.message))
}

/// A position (`{epoch, seq}`) at `name`, as a `bad_request` refusal naming it.
pub(crate) fn position(value: &Value, name: &str) -> Result<Position, Refusal> {
    serde_json::from_value(value.clone()).map_err(|_| {
        let message = format!("field `{name}` must be a position: {{\"epoch\": string, \"seq\": whole number}}");
        (ErrorCode::BadRequest, message)
    })
}

/// `{channel: {epoch, seq}}` at `data.positions`, in the order given.
pub(crate) fn positions(value: &Value) -> Result<Vec<(String, Position)>, Refusal> {
    let Value::Object(map) = value else {
        let message = "field `data.positions` must be an object of channel: {epoch, seq}";
        return Err((ErrorCode::BadRequest, message.into()));
    };
    map.iter().map(|(channel, p)| Ok((channel.clone(), position(p, &format!("data.positions.{channel}"))?))).collect()
}

/// The history settings of a channel a client wants replayed, or why it cannot be.
pub(crate) fn replayable(session: &Session, channel: &str) -> Result<HistorySpec, Refusal> {
    let spec = &session.app.spec;
    policy::check_name(spec, channel).map_err(|m| (ErrorCode::BadRequest, m))?;
    spec.history_of(channel).ok_or_else(|| {
        let message = format!("channel `{channel}` keeps no history, so it has no positions to resume from");
        (ErrorCode::BadRequest, message)
    })
}
