//! What the hub counts and times, for `/metrics` and the admin console.
//!
//! Every number is a relaxed atomic bumped on paths that already do far more work (a
//! delivery, a store commit), so counting costs nothing measurable. Histograms keep fixed
//! buckets; a [`Window`] turns cumulative numbers into per-second rates and a recent p99.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Upper bounds of the histogram buckets, in seconds (the last bucket is unbounded).
pub const BUCKETS: [f64; 14] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A latency histogram with the [`BUCKETS`] bounds.
#[derive(Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is above every bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    /// Records one duration.
    pub fn observe(&self, elapsed: Duration) {
        self.observe_us(elapsed.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    /// Records one duration given in microseconds.
    pub fn observe_us(&self, micros: u64) {
        let seconds = micros as f64 / 1e6;
        let bucket = BUCKETS.iter().position(|bound| seconds <= *bound).unwrap_or(BUCKETS.len());
        self.counts[bucket].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(micros, Ordering::Relaxed);
    }

    /// The numbers so far.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            counts: self.counts.iter().map(|c| c.load(Ordering::Relaxed)).collect(),
            sum_us: self.sum_us.load(Ordering::Relaxed),
        }
    }
}

/// A histogram's numbers at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Observations per bucket, not cumulative, one more than [`BUCKETS`].
    pub counts: Vec<u64>,
    /// The sum of every observation, in microseconds.
    pub sum_us: u64,
}

impl Snapshot {
    /// How many observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// What was observed since `earlier`.
    pub fn since(&self, earlier: &Snapshot) -> Snapshot {
        let counts = self.counts.iter().enumerate().map(|(i, n)| n - earlier.counts.get(i).copied().unwrap_or(0));
        Snapshot { counts: counts.collect(), sum_us: self.sum_us - earlier.sum_us }
    }

    /// The bound (seconds) under which a `q` share of the observations fall, as Prometheus's
    /// `histogram_quantile` would estimate it: linear within the bucket. `None` when empty;
    /// the largest bound when the quantile lies above every bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = q * total as f64;
        let mut below = 0;
        for (i, n) in self.counts.iter().enumerate() {
            if *n > 0 && (below + n) as f64 >= rank {
                let Some(upper) = BUCKETS.get(i) else { break };
                let lower = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                return Some(lower + (upper - lower) * (rank - below as f64) / *n as f64);
            }
            below += n;
        }
        BUCKETS.last().copied()
    }
}

/// One app's numbers on this node.
#[derive(Default)]
pub struct AppMetrics {
    /// Events this node published (one per channel), from the API, clients and features.
    pub published: AtomicU64,
    /// Frames received from clients.
    pub received: AtomicU64,
    /// Frames queued for connections on this node (live events; replays not counted).
    pub delivered: AtomicU64,
    /// Connections closed because their queue overflowed (4008).
    pub overflows: AtomicU64,
    /// Connections refused at authentication.
    pub auth_failures: AtomicU64,
    /// HTTP API calls refused for their API key or user token.
    pub api_auth_failures: AtomicU64,
    /// Publishes refused with 503 because the history sequencer's queue was full.
    pub shed: AtomicU64,
    /// From the publishing node's hand-off to the broker to this node queueing the event
    /// for its subscribers (clock skew between nodes adds in).
    pub delivery: Histogram,
    /// Calls to the app's backend handlers, failed ones included.
    pub handler: Histogram,
}

/// Adds one to a counter.
pub fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// The node's numbers that belong to no app.
#[derive(Default)]
pub struct NodeMetrics {
    /// A publish handed to the broker, until it accepted it.
    pub broker_publish: Histogram,
    /// A sequencer round's history commit to the store.
    pub store_commit: Histogram,
    /// HTTP connections closed because their request's headers took too long.
    pub http_header_timeouts: AtomicU64,
    /// Keep-alive connections closed after idling too long.
    pub http_idle_timeouts: AtomicU64,
    /// Connections closed as the oldest of too many still sending their headers.
    pub http_incomplete_cap: AtomicU64,
    /// Connections answered 431: headers over the size limit.
    pub http_header_too_large: AtomicU64,
}

/// A node's traffic for one app over the last few seconds, as the console shows it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Traffic {
    /// Events published per second.
    pub published_per_sec: f64,
    /// Frames received from clients per second.
    pub received_per_sec: f64,
    /// Frames queued for connections per second.
    pub delivered_per_sec: f64,
    /// Slow-consumer closes since the node started.
    pub overflows: u64,
    /// The 99th percentile delivery latency over the window, in milliseconds.
    pub p99_ms: Option<f64>,
}

/// The cumulative numbers [`Window`] keeps one of per tick.
#[derive(Clone)]
struct Sample {
    published: u64,
    received: u64,
    delivered: u64,
    delivery: Snapshot,
}

/// The last [`Window::SAMPLES`] samples of one app, one per heartbeat, and the traffic
/// the latest tick worked out.
#[derive(Default)]
pub(crate) struct Window {
    samples: Mutex<VecDeque<Sample>>,
    latest: Mutex<Traffic>,
}

impl Window {
    /// Samples kept: ten heartbeats.
    const SAMPLES: usize = 10;

    /// Takes a sample and returns the traffic since the oldest one kept, over `tick`s.
    pub(crate) fn tick(&self, metrics: &AppMetrics, tick: Duration) -> Traffic {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let now = Sample {
            published: load(&metrics.published),
            received: load(&metrics.received),
            delivered: load(&metrics.delivered),
            delivery: metrics.delivery.snapshot(),
        };
        let mut samples = self.samples.lock().unwrap_or_else(|e| e.into_inner());
        let oldest = samples.front().cloned().unwrap_or_else(|| now.clone());
        samples.push_back(now.clone());
        if samples.len() > Self::SAMPLES {
            samples.pop_front();
        }
        let seconds = (tick.as_secs_f64() * (samples.len() - 1) as f64).max(f64::EPSILON);
        let rate = |a: u64, b: u64| if samples.len() > 1 { (a - b) as f64 / seconds } else { 0.0 };
        let traffic = Traffic {
            published_per_sec: rate(now.published, oldest.published),
            received_per_sec: rate(now.received, oldest.received),
            delivered_per_sec: rate(now.delivered, oldest.delivered),
            overflows: load(&metrics.overflows),
            p99_ms: now.delivery.since(&oldest.delivery).quantile(0.99).map(|s| s * 1000.0),
        };
        *self.latest.lock().unwrap_or_else(|e| e.into_inner()) = traffic.clone();
        traffic
    }

    /// What the latest tick worked out.
    pub(crate) fn latest(&self) -> Traffic {
        self.latest.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_whose_bound_holds_them() {
        let h = Histogram::default();
        h.observe(Duration::from_micros(300)); // <= 0.5 ms
        h.observe(Duration::from_millis(1)); // exactly on the 1 ms bound
        h.observe(Duration::from_secs(60)); // above every bound
        let s = h.snapshot();
        assert_eq!((s.counts[0], s.counts[1], s.counts[BUCKETS.len()]), (1, 1, 1));
        assert_eq!(s.count(), 3);
        assert_eq!(s.sum_us, 300 + 1000 + 60_000_000);
    }

    #[test]
    fn the_quantile_interpolates_within_its_bucket() {
        let h = Histogram::default();
        for _ in 0..99 {
            h.observe(Duration::from_micros(100)); // bucket 0: 0 to 0.5 ms
        }
        h.observe(Duration::from_millis(40)); // bucket 6: 25 to 50 ms
        let s = h.snapshot();
        assert_eq!(s.quantile(0.5), Some(0.0005 * 50.0 / 99.0));
        assert_eq!(s.quantile(0.99), Some(0.0005));
        assert_eq!(s.quantile(1.0), Some(0.05));
        assert_eq!(Snapshot::default().quantile(0.99), None);
    }

    #[test]
    fn the_window_reports_rates_and_the_p99_of_recent_deliveries_only() {
        let (metrics, window, tick) = (AppMetrics::default(), Window::default(), Duration::from_secs(1));
        metrics.delivery.observe(Duration::from_secs(3)); // before the window: not in its p99
        assert_eq!(window.tick(&metrics, tick).published_per_sec, 0.0);
        for _ in 0..20 {
            bump(&metrics.published);
            metrics.delivery.observe(Duration::from_micros(200));
        }
        metrics.delivered.fetch_add(60, Ordering::Relaxed);
        window.tick(&metrics, tick);
        let traffic = window.tick(&metrics, tick);
        assert_eq!((traffic.published_per_sec, traffic.delivered_per_sec), (10.0, 30.0));
        assert!(traffic.p99_ms.is_some_and(|p| p <= 0.5), "{traffic:?}");
    }
}
