//! Per-connection rate limiting: a token bucket, and a rule for when to give up on a client.

use std::time::{Duration, Instant};

/// How long rejected messages are counted before the count starts again.
const STRIKE_WINDOW: Duration = Duration::from_secs(5);

/// A token bucket with a strike counter.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    strikes: u32,
    strikes_since: Instant,
    max_strikes: u32,
}

/// What to do with one client message.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Handle it.
    Allow,
    /// Refuse it with `rate_limited`.
    Reject,
    /// The client keeps going over: close 4429.
    Close,
}

impl RateLimiter {
    /// `rate` messages per second with `burst` extra; a client that has more than
    /// `max(burst, 10)` messages refused within 5 s is closed.
    pub fn new(rate: u32, burst: u32) -> Self {
        let now = Instant::now();
        Self {
            rate: f64::from(rate.max(1)),
            burst: f64::from(burst.max(1)),
            tokens: f64::from(burst.max(1)),
            last: now,
            strikes: 0,
            strikes_since: now,
            max_strikes: burst.max(10),
        }
    }

    /// Judges one message arriving now.
    pub fn check(&mut self) -> Verdict {
        let now = Instant::now();
        let elapsed = now.duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Verdict::Allow;
        }
        if now.duration_since(self.strikes_since) > STRIKE_WINDOW {
            self.strikes = 0;
            self.strikes_since = now;
        }
        self.strikes += 1;
        if self.strikes > self.max_strikes {
            Verdict::Close
        } else {
            Verdict::Reject
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_reject_then_close() {
        let mut limiter = RateLimiter::new(1, 3);
        let verdicts: Vec<Verdict> = (0..14).map(|_| limiter.check()).collect();
        assert_eq!(verdicts[..3], [Verdict::Allow, Verdict::Allow, Verdict::Allow]);
        assert_eq!(verdicts[3], Verdict::Reject);
        assert_eq!(verdicts[12], Verdict::Reject, "ten strikes are tolerated");
        assert_eq!(verdicts[13], Verdict::Close);
    }
}
