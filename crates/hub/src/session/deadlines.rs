//! A connection's deadlines behind one timer: the next ping, the token's expiry and the wait
//! for a `resume`. A tokio `Sleep` is 112 bytes of the connection's task for as long as the
//! connection lives; with one per deadline (and an `Interval`'s boxed one) they were a fifth
//! of an idle connection's task (docs/BENCHMARKS.md, change 13). One timer is set to the
//! earliest, and re-set after each.

use std::time::Duration;

use tokio::time::Instant;

/// Which deadline passed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Due {
    /// The wait for a `resume` frame is over.
    Resume,
    /// The token expired.
    Expiry,
    /// Time to ping (the next ping is then one interval away).
    Ping,
}

pub(super) struct Deadlines {
    ping_interval: Duration,
    ping: Instant,
    expiry: Option<Instant>,
    resume: Option<Instant>,
}

impl Deadlines {
    /// From `now`: the first ping one interval away, and the resume wait when one is owed.
    pub(super) fn new(
        now: Instant,
        ping_interval: Duration,
        expiry: Option<Instant>,
        resume: Option<Duration>,
    ) -> Self {
        Self { ping_interval, ping: now + ping_interval, expiry, resume: resume.map(|wait| now + wait) }
    }

    /// When the timer should fire next.
    pub(super) fn next(&self) -> Instant {
        [Some(self.ping), self.expiry, self.resume].into_iter().flatten().min().unwrap_or(self.ping)
    }

    /// The token's expiry, as last set.
    pub(super) fn expiry(&self) -> Option<Instant> {
        self.expiry
    }

    /// A refresh moved (or removed) the token's expiry.
    pub(super) fn set_expiry(&mut self, expiry: Option<Instant>) {
        self.expiry = expiry;
    }

    /// The earliest deadline passed at `now`, taken: each fires once (a ping's next one is
    /// set one interval from now), except expiry, which ends the connection.
    pub(super) fn due(&mut self, now: Instant) -> Option<Due> {
        if self.resume.is_some_and(|at| at <= now) {
            self.resume = None;
            return Some(Due::Resume);
        }
        if self.expiry.is_some_and(|at| at <= now) {
            return Some(Due::Expiry);
        }
        if self.ping <= now {
            self.ping = now + self.ping_interval;
            return Some(Due::Ping);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn each_deadline_fires_once_in_time_order() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new(start, 25 * S, Some(start + 60 * S), Some(10 * S));
        assert_eq!(deadlines.next(), start + 10 * S);
        assert_eq!(deadlines.due(start + 9 * S), None, "nothing before its time");
        assert_eq!(deadlines.due(start + 10 * S), Some(Due::Resume));
        assert_eq!(deadlines.next(), start + 25 * S);
        assert_eq!(deadlines.due(start + 26 * S), Some(Due::Ping));
        assert_eq!(deadlines.next(), start + 51 * S, "the next ping is an interval after the last");
        assert_eq!(deadlines.due(start + 51 * S), Some(Due::Ping));
        assert_eq!(deadlines.next(), start + 60 * S);
        assert_eq!(deadlines.due(start + 60 * S), Some(Due::Expiry));
        assert_eq!(deadlines.due(start + 61 * S), Some(Due::Expiry), "expiry stays due");
    }

    #[test]
    fn a_refresh_moves_the_expiry() {
        let start = Instant::now();
        let mut deadlines = Deadlines::new(start, 25 * S, Some(start + 5 * S), None);
        assert_eq!(deadlines.next(), start + 5 * S);
        deadlines.set_expiry(Some(start + 100 * S));
        assert_eq!(deadlines.due(start + 6 * S), None);
        assert_eq!(deadlines.next(), start + 25 * S);
        deadlines.set_expiry(None);
        assert_eq!(deadlines.due(start + 99 * S), Some(Due::Ping));
        assert_eq!(deadlines.due(start + 99 * S), None);
    }
}
