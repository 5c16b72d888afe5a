//! `GET /metrics`: this node's numbers in the Prometheus text format (version 0.0.4).
//!
//! Every series carries `node`, so a scrape of each node of a cluster adds up without
//! relabelling. Counters and histograms count since the process started.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use switchboard_hub::metrics::{Histogram, NodeMetrics, BUCKETS};
use switchboard_hub::{App, Hub, NodeCounts};

/// The content type Prometheus expects for the text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

pub(crate) async fn metrics(State(hub): State<Hub>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], render(&hub))
}

/// A metric family kept per app: its name, its help, and where each app keeps it.
type Family<T> = (&'static str, &'static str, fn(&App) -> &T);

/// Counters of each app.
const COUNTERS: [Family<AtomicU64>; 5] = [
    ("switchboard_events_published_total", "Events this node published, one per channel.", |a| &a.metrics.published),
    ("switchboard_client_messages_total", "Frames received from clients.", |a| &a.metrics.received),
    ("switchboard_messages_delivered_total", "Live events queued for connections on this node.", |a| {
        &a.metrics.delivered
    }),
    (
        "switchboard_queue_overflows_total",
        "Connections closed as slow consumers (4008): their queue overflowed.",
        |a| &a.metrics.overflows,
    ),
    (
        "switchboard_publishes_shed_total",
        "Events refused with 503 (Retry-After): the history store's queue was full.",
        |a| &a.metrics.shed,
    ),
];

/// Histograms of each app.
const HISTOGRAMS: [Family<Histogram>; 2] = [
    (
        "switchboard_delivery_latency_seconds",
        "From the publishing node's hand-off to its broker to this node queueing the event for its subscribers.",
        |a| &a.metrics.delivery,
    ),
    ("switchboard_handler_duration_seconds", "Calls to the app's backend handlers, failures included.", |a| {
        &a.metrics.handler
    }),
];

/// The whole exposition.
pub fn render(hub: &Hub) -> String {
    let mut out = Exposition { text: String::with_capacity(8192), node: escape(hub.node_id()) };
    let apps = hub.apps();
    gauges(&mut out, hub, &apps);
    traffic(&mut out, &apps);
    let node = hub.node_metrics();
    out.help("switchboard_broker_publish_seconds", "histogram", "A publish handed to the broker, until accepted.");
    out.histogram("switchboard_broker_publish_seconds", "", &node.broker_publish);
    out.help("switchboard_store_commit_seconds", "histogram", "One group commit of events to the history store.");
    out.histogram("switchboard_store_commit_seconds", "", &node.store_commit);
    bounds(&mut out, node, hub.control_messages_dropped());
    out.text
}

/// What the node's own bounds refused.
fn bounds(out: &mut Exposition, node: &NodeMetrics, control_dropped: u64) {
    let name = "switchboard_http_connections_closed_total";
    out.help(
        name,
        "counter",
        "HTTP connections the server closed: slow headers, idle keep-alive, too many unfinished, too large.",
    );
    let closed = [
        ("header_timeout", &node.http_header_timeouts),
        ("idle_timeout", &node.http_idle_timeouts),
        ("incomplete_cap", &node.http_incomplete_cap),
        ("header_too_large", &node.http_header_too_large),
    ];
    for (reason, n) in closed {
        out.sample(name, &format!(",reason=\"{reason}\""), n.load(Ordering::Relaxed));
    }
    let name = "switchboard_control_messages_dropped_total";
    out.help(name, "counter", "Messages to the other nodes dropped: their queue was full (the broker is too slow).");
    out.sample(name, "", control_dropped);
}

/// What is connected now.
fn gauges(out: &mut Exposition, hub: &Hub, apps: &[Arc<App>]) {
    out.help(
        "switchboard_ready",
        "gauge",
        "1 while /readyz passes; 0 while draining or cut off from the broker or store.",
    );
    out.sample("switchboard_ready", "", u64::from(hub.readiness_problems().is_empty()));
    out.help("switchboard_connections", "gauge", "Live connections on this node, per endpoint.");
    let counts: Vec<(&App, NodeCounts)> = apps.iter().map(|app| (&**app, hub.node_counts(app))).collect();
    for (app, counts) in &counts {
        for (endpoint, n) in &counts.by_endpoint {
            out.sample("switchboard_connections", &labels(app, &[("endpoint", endpoint)]), *n as u64);
        }
    }
    out.help("switchboard_users", "gauge", "Distinct users connected to this node.");
    for (app, counts) in &counts {
        out.sample("switchboard_users", &labels(app, &[]), counts.users as u64);
    }
    out.help("switchboard_cluster_nodes", "gauge", "Nodes this node knows alive for the app, itself included.");
    for app in apps {
        out.sample("switchboard_cluster_nodes", &labels(app, &[]), hub.live_nodes(app).len() as u64);
    }
}

/// What went through since the start.
fn traffic(out: &mut Exposition, apps: &[Arc<App>]) {
    for (name, help, field) in &COUNTERS {
        out.help(name, "counter", help);
        for app in apps {
            out.sample(name, &labels(app, &[]), field(app).load(Ordering::Relaxed));
        }
    }
    out.help("switchboard_auth_failures_total", "counter", "Refused credentials: at connect, or on an API call.");
    for app in apps {
        let failures = [("connection", &app.metrics.auth_failures), ("api", &app.metrics.api_auth_failures)];
        for (via, n) in failures {
            out.sample("switchboard_auth_failures_total", &labels(app, &[("via", via)]), n.load(Ordering::Relaxed));
        }
    }
    for (name, help, field) in &HISTOGRAMS {
        out.help(name, "histogram", help);
        for app in apps {
            out.histogram(name, &labels(app, &[]), field(app));
        }
    }
}

struct Exposition {
    text: String,
    /// The escaped node id, on every series.
    node: String,
}

impl Exposition {
    fn help(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One series; `labels` is empty or starts with a comma.
    fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.text, "{name}{{node=\"{}\"{labels}}} {value}", self.node);
    }

    fn histogram(&mut self, name: &str, labels: &str, histogram: &Histogram) {
        let snapshot = histogram.snapshot();
        let mut cumulative = 0;
        for (bound, n) in BUCKETS.iter().zip(&snapshot.counts) {
            cumulative += n;
            self.sample(&format!("{name}_bucket"), &format!("{labels},le=\"{bound}\""), cumulative);
        }
        let count = snapshot.count();
        self.sample(&format!("{name}_bucket"), &format!("{labels},le=\"+Inf\""), count);
        self.sample(&format!("{name}_sum"), labels, snapshot.sum_us as f64 / 1e6);
        self.sample(&format!("{name}_count"), labels, count);
    }
}

/// `,app="slug"` and the extra pairs, escaped.
fn labels(app: &App, extra: &[(&str, &str)]) -> String {
    let mut text = format!(",app=\"{}\"", escape(&app.slug));
    for (name, value) in extra {
        let _ = write!(text, ",{name}=\"{}\"", escape(value));
    }
    text
}

/// A label value with `\`, `"` and newlines escaped, as the text format requires.
fn escape(value: &str) -> String {
    value.replace('\\', r"\\").replace('"', "\\\"").replace('\n', "\\n")
}
