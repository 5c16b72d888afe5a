//! Connecting: authentication (a token from the upgrade request, or an in-band `auth` frame)
//! and the span the connection logs under.

use futures_util::{Stream, StreamExt};
use switchboard_auth::Identity;
use switchboard_protocol::{ClientFrame, Disconnect};

use crate::{App, EndpointSpec, Handshake, Inbound};

/// Who is connecting: `Ok(None)` is anonymous; `Err(None)` means the socket is already gone.
pub(crate) async fn authenticate<R>(
    app: &App,
    endpoint: &EndpointSpec,
    token: Option<String>,
    inbound: &mut R,
) -> Result<Option<Identity>, Option<Disconnect>>
where
    R: Stream<Item = Inbound> + Unpin,
{
    let token = match token {
        Some(token) => token,
        None if !endpoint.auth_required => return Ok(None),
        None => first_frame_token(app, inbound).await?,
    };
    verify(app, &token).await.map(Some).map_err(Some)
}

/// Verifies a token with the app's keys, as a close reason on failure.
pub(crate) async fn verify(app: &App, token: &str) -> Result<Identity, Disconnect> {
    let Some(verifier) = &app.spec.verifier else {
        return Err(Disconnect::unauthorized("this app has no JWT key configured, so it accepts no tokens"));
    };
    verifier.verify(token).await.map_err(|e| Disconnect::unauthorized(e.to_string()))
}

/// Waits for `{"type":"auth","data":{"token":"..."}}` as the first frame.
async fn first_frame_token<R>(app: &App, inbound: &mut R) -> Result<String, Option<Disconnect>>
where
    R: Stream<Item = Inbound> + Unpin,
{
    let timeout = app.spec.limits.auth_timeout;
    // Pings and pongs before the auth frame are not frames of the protocol: they are skipped
    // (the transport holds them to the rate limit).
    let first = async {
        loop {
            match inbound.next().await {
                Some(Inbound::Pong) => continue,
                other => return other,
            }
        }
    };
    let frame = match tokio::time::timeout(timeout, first).await {
        Err(_) => {
            let reason = format!("no token, and no auth frame within {} s", timeout.as_secs_f32());
            return Err(Some(Disconnect::new(Disconnect::AUTH_TIMEOUT, reason)));
        }
        Ok(Some(Inbound::Text(text))) if text.len() <= app.spec.limits.max_message_bytes => text,
        Ok(Some(Inbound::Text(_))) => {
            return Err(Some(Disconnect::new(Disconnect::TOO_BIG, "auth frame too large")));
        }
        Ok(Some(Inbound::TooBig)) => {
            return Err(Some(Disconnect::new(Disconnect::TOO_BIG, "auth frame too large")));
        }
        Ok(Some(Inbound::Binary | Inbound::Pong)) => String::new(), // a binary frame is no auth frame
        Ok(Some(Inbound::Broken(disconnect))) => return Err(Some(disconnect)),
        Ok(Some(Inbound::Closed) | None) => return Err(None),
    };
    let refuse =
        || Some(Disconnect::unauthorized("no token: send {\"type\":\"auth\",\"data\":{\"token\":\"...\"}} first"));
    let frame = ClientFrame::parse(&frame).map_err(|_| refuse())?;
    if frame.kind != "auth" {
        return Err(refuse());
    }
    frame.data_str("token").map(str::to_owned).map_err(|_| refuse())
}

/// The span every log line of a connection's life carries: where it came from and, once
/// known, its `id` and `user` (recorded after registration; never its token).
pub(crate) fn span(app: &App, endpoint: &EndpointSpec, handshake: &Handshake) -> tracing::Span {
    tracing::info_span!(
        "connection",
        app = %app.slug,
        endpoint = %endpoint.name,
        peer = %handshake.remote_addr,
        id = tracing::field::Empty,
        user = tracing::field::Empty,
    )
}
