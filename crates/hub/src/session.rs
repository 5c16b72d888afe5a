//! One client connection, from authentication to close. Generic over the transport's
//! streams, so the same logic serves every protocol: a reader task here, a writer in `writer.rs`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Sink, Stream, StreamExt};
use serde_json::json;
use switchboard_auth::Identity;
use switchboard_protocol::{channel, Disconnect, ErrorCode, ServerFrame};
use tokio::task::JoinHandle;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::Instrument;

pub use crate::frames::{Handshake, Inbound, Outbound};
use crate::rate::RateLimiter;
use crate::{clock, writer, App, Caller, ConnMeta, EndpointSpec, Hub, Outbox};

/// The live state of one authenticated connection.
pub(crate) struct Session {
    pub(crate) hub: Hub,
    pub(crate) app: Arc<App>,
    pub(crate) endpoint: Arc<EndpointSpec>,
    pub(crate) meta: Arc<ConnMeta>,
    pub(crate) identity: Option<Identity>,
    pub(crate) outbox: Outbox,
    pub(crate) expires: Option<Instant>,
    pub(crate) rate: RateLimiter,
    /// Opened with `?resume=1` and no frame read yet: live events are held for `resume`.
    pub(crate) awaiting_resume: bool,
}

/// How long a connection opened with `?resume=1` holds live events for its `resume`.
const RESUME_WAIT: Duration = Duration::from_secs(10);
/// How long a socket closed for what its client sent stays open, unread, after the close.
const LINGER: Duration = Duration::from_secs(1);

/// Closes the client brought on itself while it may still be writing.
fn client_caused(code: u16) -> bool {
    matches!(code, Disconnect::RATE_LIMITED | Disconnect::TOO_BIG | 1002 | 1007)
}

/// Authenticates and registers a connection, then hands it to a task of its own (tracked by
/// [`Hub::sessions`]) that reads and writes until it ends. The transport calls this once per
/// accepted socket; it returns as soon as the connection is live or refused.
pub async fn run<R, W>(
    hub: Hub,
    app: Arc<App>,
    endpoint: Arc<EndpointSpec>,
    handshake: Handshake,
    mut inbound: R,
    mut outbound: W,
) where
    R: Stream<Item = Inbound> + Unpin + Send + 'static,
    W: Sink<Outbound> + Unpin + Send + 'static,
{
    // The connected life gets a fresh task, so the memory it keeps for as long as the
    // connection lasts holds only what reading needs: the upgrade, authentication and
    // registration futures (store and JWKS calls) end here (see docs/BENCHMARKS.md).
    let tracker = hub.sessions().clone();
    let span = crate::handshake::span(&app, &endpoint, &handshake);
    let start = Session::start(hub, app, endpoint.clone(), handshake, &mut inbound, &mut outbound);
    if let Some(session) = start.instrument(span.clone()).await {
        span.record("id", session.meta.connection_id.as_str());
        if let Some(user) = &session.meta.user_id {
            span.record("user", user.as_str());
        }
        tracker.spawn(session.live(inbound, outbound).instrument(span));
    }
}

impl Session {
    /// Authenticates and registers the connection; on refusal, sends the close frame.
    async fn start<R, W>(
        hub: Hub,
        app: Arc<App>,
        endpoint: Arc<EndpointSpec>,
        handshake: Handshake,
        inbound: &mut R,
        outbound: &mut W,
    ) -> Option<Self>
    where
        R: Stream<Item = Inbound> + Unpin + Send,
        W: Sink<Outbound> + Unpin + Send,
    {
        let token = handshake.token.clone();
        let identity = match crate::handshake::authenticate(&app, &endpoint, token, inbound).await {
            Ok(identity) => identity,
            Err(refusal) => {
                // `None`: the client left before sending a token, which is no failure.
                if let Some(disconnect) = refusal {
                    crate::metrics::bump(&app.metrics.auth_failures);
                    writer::close(outbound, disconnect).await;
                }
                return None;
            }
        };
        let registered = Session::register(hub, app, endpoint, identity, handshake).await;
        if let Err(disconnect) = &registered {
            writer::close(outbound, disconnect.clone()).await;
        }
        registered.ok()
    }

    /// The connected life: a writer task sends, this task reads, until either ends.
    ///
    /// Not an `async fn`: one keeps its arguments twice in its state (as passed, and as moved
    /// into its body; rust-lang/rust#62958), and this state lives as long as the connection,
    /// so that was 300 bytes of every idle connection. An `async move` block uses them in place.
    #[allow(clippy::manual_async_fn)] // deliberately not an `async fn`, as said above
    fn live<R, W>(mut self, mut inbound: R, outbound: W) -> impl Future<Output = ()> + Send
    where
        R: Stream<Item = Inbound> + Unpin + Send,
        W: Sink<Outbound> + Unpin + Send + 'static,
    {
        async move {
            tracing::debug!("connected"); // the span names the connection
            let mut writer = tokio::spawn(writer::run(self.outbox.clone(), outbound));
            let caller = self.caller();
            for service in self.hub.services() {
                service.connected(&self.hub, &caller).await;
            }
            let writer_done = self.drive(&mut inbound, &mut writer).await;
            self.app.registry.remove(self.meta.id);
            for service in self.hub.services() {
                service.disconnected(&self.hub, &caller).await;
            }
            // The writer sends the close frame; it ends by itself once the outbox is closed.
            if !writer_done && tokio::time::timeout(Duration::from_secs(5), &mut writer).await.is_err() {
                writer.abort();
            }
            // A client closed for what it kept sending may still be sending: the socket stays open,
            // unread, a moment longer, so the close frame reaches it before the kernel answers its
            // next bytes with a reset (which would discard the close on its side).
            if self.outbox.close_code().is_some_and(client_caused) {
                tokio::time::sleep(LINGER).await;
            }
            drop(inbound);
            if self.outbox.close_code() == Some(Disconnect::SLOW_CONSUMER) {
                crate::metrics::bump(&self.app.metrics.overflows);
                let limit = self.app.spec.limits.outbox_max_bytes;
                tracing::info!(limit, "closed a slow consumer: its queue passed the limit");
            }
            tracing::debug!("closed");
        }
    }

    async fn register(
        hub: Hub,
        app: Arc<App>,
        endpoint: Arc<EndpointSpec>,
        identity: Option<Identity>,
        handshake: Handshake,
    ) -> Result<Self, Disconnect> {
        let (id, connection_id) = hub.next_connection();
        let meta = Arc::new(ConnMeta {
            id,
            connection_id,
            app_slug: app.slug.clone(),
            user_id: identity.as_ref().map(|i| i.user_id.clone()),
            user_email: identity.as_ref().and_then(|i| i.email.clone()),
            groups: identity.as_ref().map(|i| i.groups.clone()).unwrap_or_default(),
            connected_at_ms: clock::unix_ms(),
            endpoint: endpoint.name.clone(),
            protocol: endpoint.protocol.as_str(),
            remote_addr: handshake.remote_addr,
            device: identity.as_ref().and_then(|i| i.device.clone()).or(handshake.device),
        });
        let limits = &app.spec.limits;
        let outbox = Outbox::new(limits.outbox_max_bytes);
        if app.registry.insert(meta.clone(), outbox.clone(), limits.max_connections_per_user).is_err() {
            let limit = limits.max_connections_per_user;
            return Err(Disconnect::new(
                Disconnect::FORBIDDEN,
                format!("too many connections for this user (limit {limit})"),
            ));
        }
        let expires = expiry_of(&app, identity.as_ref());
        let rate = RateLimiter::new(limits.messages_per_second, limits.burst);
        let awaiting_resume = handshake.resume;
        let session = Self { hub, app, endpoint, meta, identity, outbox, expires, rate, awaiting_resume };
        let mut channels = session.initial_channels().await;
        let data = match session.connect_hooks(&mut channels).await {
            Ok(data) => data,
            Err(refusal) => {
                session.app.registry.remove(session.meta.id);
                return Err(refusal);
            }
        };
        // `connected` is queued before any subscription exists, so it is always the first frame.
        session.send_connected(&channels, data);
        if awaiting_resume {
            session.outbox.hold();
        }
        for channel in &channels {
            session.hub.subscribe(&session.app, session.meta.id, channel).await;
        }
        // `connected` goes out only once the writer starts, after this: by then events from
        // every node reach these channels.
        session.hub.settle().await;
        Ok(session)
    }

    /// `broadcast`, the user's own channel, the token's groups and server-managed memberships.
    async fn initial_channels(&self) -> Vec<String> {
        let mut channels = vec!["broadcast".to_owned()];
        if let Some(identity) = &self.identity {
            channels.push(channel::user_channel(&identity.user_id));
            channels.extend(identity.groups.iter().map(|g| channel::group_channel(g)));
            match self.hub.store().memberships(&self.app.spec.slug, &identity.user_id).await {
                Ok(memberships) => channels.extend(memberships),
                Err(e) => tracing::error!(error = %e, "could not load memberships"),
            }
        }
        channels.sort();
        channels.dedup();
        channels
    }

    /// Asks every service (the connect hook) whether the connection may stay, and what
    /// channels and `connected` data it adds.
    async fn connect_hooks(&self, channels: &mut Vec<String>) -> Result<Option<serde_json::Value>, Disconnect> {
        let caller = self.caller();
        let mut data = None;
        for service in self.hub.services() {
            let admission = service.admit(&self.hub, &caller).await?;
            channels.extend(admission.channels);
            data = admission.data.or(data);
        }
        channels.sort();
        channels.dedup();
        Ok(data)
    }

    fn send_connected(&self, channels: &[String], extra: Option<serde_json::Value>) {
        let mut data = json!({
            "connection_id": self.meta.connection_id,
            "user_id": self.meta.user_id,
            "app_slug": &*self.app.slug,
            "ping_interval": seconds(self.endpoint.ping_interval),
            "channels": channels,
        });
        if let Some(extra) = extra {
            data["data"] = extra;
        }
        self.send(ServerFrame::typed("connected", data));
    }

    /// Who this connection is, for services.
    pub(crate) fn caller(&self) -> Caller {
        Caller { app: self.app.clone(), endpoint: self.endpoint.clone(), meta: self.meta.clone() }
    }

    /// Queues a frame for this client behind any events already queued.
    pub(crate) fn send(&self, frame: String) {
        let _ = self.outbox.push(Bytes::from(frame));
    }

    /// Queues an error answering `frame`.
    pub(crate) fn send_error(&self, reference: Option<&serde_json::Value>, code: ErrorCode, message: &str) {
        self.send(ServerFrame::error(reference, code, message));
    }

    /// The reader's loop: client frames, pings, token expiry and shutdown. Every ending
    /// closes the outbox, which tells the writer to send the close frame. Returns whether the
    /// writer has already finished.
    // An `async move` block rather than an `async fn`, for the reason given at `live`.
    #[allow(clippy::manual_async_fn)]
    fn drive<'a, R>(
        &'a mut self,
        inbound: &'a mut R,
        writer: &'a mut JoinHandle<()>,
    ) -> impl Future<Output = bool> + Send + 'a
    where
        R: Stream<Item = Inbound> + Unpin + Send,
    {
        async move {
            let shutdown = self.hub.shutdown_token();
            // The shutdown and expiry futures live across iterations: re-creating them on every
            // wakeup would re-register with the shared token and the timer wheel.
            let cancelled = shutdown.cancelled();
            tokio::pin!(cancelled);
            let expiry = tokio::time::sleep_until(self.expires.unwrap_or_else(far_future));
            tokio::pin!(expiry);
            let mut armed_for = self.expires;
            // Pings are timed here, not in the writer, so deliveries never poll a timer.
            let ping_interval = self.endpoint.ping_interval;
            let mut ping = tokio::time::interval_at(Instant::now() + ping_interval, ping_interval);
            ping.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut unanswered = 0u8;
            let mut draining = false;
            let resume_wait = tokio::time::sleep(RESUME_WAIT);
            tokio::pin!(resume_wait);
            loop {
                if self.expires != armed_for {
                    armed_for = self.expires; // a refresh moved the deadline
                    expiry.as_mut().reset(self.expires.unwrap_or_else(far_future));
                }
                tokio::select! {
                    // The writer ended: close sent, or the socket failed.
                    _ = &mut *writer => return true,
                    frame = inbound.next() => {
                        // Anything from the client proves it alive, as a pong does.
                        unanswered = 0;
                        if !self.on_inbound(frame).await {
                            return false;
                        }
                    }
                    _ = ping.tick() => {
                        if unanswered >= 2 {
                            tracing::debug!("dropping dead peer: two pings unanswered");
                            writer.abort();
                            return true;
                        }
                        unanswered += 1;
                        self.outbox.ping();
                    }
                    _ = &mut resume_wait, if self.awaiting_resume => {
                        // No `resume` came: live events flow, and a late resume reports the gap.
                        self.end_resume_wait();
                    }
                    _ = &mut expiry, if self.expires.is_some() => {
                        let reason = "token expired; send refresh with a new token before it expires";
                        self.outbox.close(Disconnect::unauthorized(reason), false);
                        return false;
                    }
                    _ = &mut cancelled, if !draining => {
                        // Queued events still go out, then 1001 tells the client to resume elsewhere.
                        draining = true;
                        self.outbox.close(Disconnect::going_away(), true);
                    }
                }
            }
        }
    }

    /// Stops holding live events for a `resume` that did not come first.
    pub(crate) fn end_resume_wait(&mut self) {
        if std::mem::take(&mut self.awaiting_resume) {
            self.outbox.release(&[]);
        }
    }

    /// Handles one client frame. Returns `false` when the connection ends.
    async fn on_inbound(&mut self, frame: Option<Inbound>) -> bool {
        let disconnect = match frame {
            // Boxed for the same reason as `start`: commands may await the store.
            Some(Inbound::Text(text)) => {
                crate::metrics::bump(&self.app.metrics.received);
                Box::pin(self.on_text(text)).await;
                return true;
            }
            Some(Inbound::Binary) => {
                self.on_binary();
                return true;
            }
            Some(Inbound::Pong) => return true,
            Some(Inbound::TooBig) => self.too_big(),
            Some(Inbound::Broken(disconnect)) => disconnect,
            // The client closed: the writer only flushes the close reply owed.
            Some(Inbound::Closed) | None => Disconnect::new(Disconnect::NORMAL, ""),
        };
        self.outbox.close(disconnect, false);
        false
    }
}

/// When a connection's token stops being accepted: its `exp` plus the app's leeway, the
/// same tolerance the verifier applied at connect.
pub(crate) fn expiry_of(app: &App, identity: Option<&Identity>) -> Option<Instant> {
    let exp = identity?.expires_at?;
    let leeway = app.spec.verifier.as_ref().map_or(0, |v| v.leeway_secs());
    let now = clock::unix_ms() / 1000;
    Some(Instant::now() + Duration::from_secs((exp + leeway).saturating_sub(now)))
}

/// A duration as JSON seconds: whole when it is whole, fractional otherwise.
fn seconds(d: Duration) -> serde_json::Value {
    if d.subsec_millis() == 0 {
        json!(d.as_secs())
    } else {
        json!(d.as_secs_f64())
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
