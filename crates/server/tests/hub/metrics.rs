//! `/metrics`: what it counts, and that it is well-formed Prometheus text.

use serde_json::json;

use crate::support::{metric, TestServer, API_KEY};

const APP: &str = "app=\"app1\"";

#[tokio::test]
async fn metrics_count_connections_traffic_deliveries_and_refused_credentials() {
    let server = TestServer::start().await;
    let mut ann = server.connect("ann").await;
    let _bob = server.connect("bob").await;
    let _guest = server.raw("/open", &[]).await;
    // Refused credentials: a bad token at connect, a wrong API key.
    let (_, closed) = server.raw("/ws?token=not-a-jwt", &[]).await.closed().await;
    assert_eq!(closed.code, 4401);
    let body = json!({"channels": ["user:ann"], "type": "x", "data": 1});
    let (status, _) = server.api("POST", "/api/v1/apps/app1/publish", Some("sk_wrong"), Some(body)).await;
    assert_eq!(status, 401);

    for n in 0..3 {
        server.publish(json!({"channels": ["user:ann"], "type": "note", "data": n})).await;
    }
    for _ in 0..3 {
        ann.expect("note").await;
    }
    let subscribed = ann.request("subscribe", json!({"channel": "room:1"})).await;
    assert_ne!(subscribed["type"], "error", "{subscribed}");

    let endpoint = |name: &str| format!("endpoint=\"{name}\"");
    let realtime = endpoint("realtime");
    let open = endpoint("open");
    assert_eq!(server.metric_until("switchboard_connections", &[APP, &realtime], |n| n == 2.0).await, 2.0);
    assert_eq!(server.metric_until("switchboard_connections", &[APP, &open], |n| n == 1.0).await, 1.0);
    assert_eq!(server.metric_until("switchboard_users", &[APP], |n| n == 2.0).await, 2.0);
    assert_eq!(server.metric_until("switchboard_events_published_total", &[APP], |n| n == 3.0).await, 3.0);
    assert_eq!(server.metric_until("switchboard_messages_delivered_total", &[APP], |n| n == 3.0).await, 3.0);
    assert_eq!(server.metric_until("switchboard_client_messages_total", &[APP], |n| n == 1.0).await, 1.0);
    let delivered = server.metric_until("switchboard_delivery_latency_seconds_count", &[APP], |n| n == 3.0).await;
    assert_eq!(delivered, 3.0, "one latency per event delivered on this node");
    let within_10s = ["le=\"10\"", APP];
    assert_eq!(
        server.metric_until("switchboard_delivery_latency_seconds_bucket", &within_10s, |n| n == 3.0).await,
        3.0
    );
    let connection = ["via=\"connection\"", APP];
    assert_eq!(server.metric_until("switchboard_auth_failures_total", &connection, |n| n == 1.0).await, 1.0);
    let api = ["via=\"api\"", APP];
    assert_eq!(server.metric_until("switchboard_auth_failures_total", &api, |n| n == 1.0).await, 1.0);
    assert_eq!(server.metric_until("switchboard_ready", &[], |n| n == 1.0).await, 1.0);
}

#[tokio::test]
async fn metrics_are_well_formed_prometheus_text() {
    let server = TestServer::start().await;
    let response = reqwest::get(server.url("/metrics")).await.unwrap();
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let text = response.text().await.unwrap();
    let mut typed = std::collections::HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap();
            assert!(["gauge", "counter", "histogram"].contains(&kind), "{line}");
            assert!(typed.insert(name.to_owned(), kind.to_owned()).is_none(), "{name} typed twice");
            continue;
        }
        if line.starts_with("# HELP ") {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("no value: {line}"));
        assert!(value.parse::<f64>().is_ok(), "{line}");
        let (name, labels) = series.split_once('{').unwrap_or_else(|| panic!("no labels: {line}"));
        assert!(labels.ends_with('}') && labels.starts_with("node=\""), "{line}");
        let family = ["_bucket", "_sum", "_count"].iter().find_map(|s| name.strip_suffix(s)).unwrap_or(name);
        let kind = typed.get(name).or_else(|| typed.get(family)).unwrap_or_else(|| panic!("untyped: {line}"));
        assert!(kind != "histogram" || name != family, "a histogram's series ends in _bucket, _sum or _count");
    }
    for family in ["switchboard_delivery_latency_seconds", "switchboard_store_commit_seconds"] {
        assert_eq!(typed.get(family).map(String::as_str), Some("histogram"), "{family}");
        assert_eq!(metric(&text, &format!("{family}_bucket"), &["le=\"+Inf\""]), Some(0.0));
    }
    // Like /healthz, /metrics needs no credentials; it holds counts, never a secret.
    assert!(!text.contains(API_KEY) && !text.contains(crate::support::SECRET));
}
