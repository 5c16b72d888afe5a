//! What a session does with each frame the client sends: size, rate, parse, dispatch.

use serde_json::Value;
use switchboard_protocol::{ClientFrame, Disconnect, ErrorCode};

use crate::rate::Verdict;
use crate::session::Session;
use crate::{cmd, Refusal};

impl Session {
    /// The close for a frame over `max_message_bytes`.
    pub(crate) fn too_big(&self) -> Disconnect {
        let limit = self.app.spec.limits.max_message_bytes;
        Disconnect::new(Disconnect::TOO_BIG, format!("message larger than {limit} bytes"))
    }

    /// Counts one client message against the rate limit; `false` when it must be dropped.
    /// A refusal of a service's message is shaped by that service (`chat:error` for chat).
    fn admit(&mut self, reference: Option<&Value>, frame: Option<&ClientFrame>) -> bool {
        match self.rate.check() {
            Verdict::Allow => true,
            Verdict::Reject => {
                let mut refusal = Refusal::new(ErrorCode::RateLimited, "too many messages; slow down");
                if let Some(frame) = frame {
                    if let Some(service) = self.hub.service_for(&self.caller(), &frame.kind) {
                        refusal = service.reshape(&frame.kind, &frame.data, refusal);
                    }
                }
                self.send(refusal.encode(reference));
                false
            }
            Verdict::Close => {
                let reason = "rate limit exceeded repeatedly";
                self.outbox.close(Disconnect::new(Disconnect::RATE_LIMITED, reason), false);
                false
            }
        }
    }

    /// A text frame: checked for size, counted, parsed and dispatched.
    pub(crate) async fn on_text(&mut self, text: String) {
        if text.len() > self.app.spec.limits.max_message_bytes {
            return self.outbox.close(self.too_big(), false);
        }
        let parsed = ClientFrame::parse(&text);
        let reference = match &parsed {
            Ok(frame) => frame.reference.clone(),
            Err(e) => e.reference.clone(),
        };
        // Only a `resume` may come first on a `?resume=1` connection and keep the hold.
        if !matches!(&parsed, Ok(frame) if frame.kind == "resume") {
            self.end_resume_wait();
        }
        if !self.admit(reference.as_ref(), parsed.as_ref().ok()) {
            return self.end_resume_wait();
        }
        match parsed {
            Ok(frame) => cmd::dispatch(self, frame).await,
            Err(e) => self.send_error(e.reference.as_ref(), ErrorCode::BadRequest, &e.message),
        }
    }

    /// A binary frame: not part of the native protocol, but counted like any message so a
    /// flood of them meets the rate limit.
    pub(crate) fn on_binary(&mut self) {
        if self.admit(None, None) {
            let message = "binary frames are not part of the native protocol; send JSON text";
            self.send_error(None, ErrorCode::BadRequest, message);
        }
    }
}
