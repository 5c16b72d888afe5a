//! Manifest loading: seed-004 shapes, defaults, and errors that point at the spot.

use std::collections::HashMap;
use std::path::Path;

use switchboard_config::{check_unique, parse, resolve, Secrets};
use switchboard_hub::{Policy, Protocol};

/// Secrets from a map, so tests do not touch the process environment.
struct MapSecrets(HashMap<&'static str, &'static str>);

impl Secrets for MapSecrets {
    fn env(&self, name: &str) -> Option<String> {
        self.0.get(name).map(|v| v.to_string())
    }
    fn file(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        self.0.get(name).map(|v| v.as_bytes().to_vec()).ok_or_else(|| std::io::Error::other("no such file"))
    }
}

fn secrets(pairs: &[(&'static str, &'static str)]) -> MapSecrets {
    MapSecrets(pairs.iter().copied().collect())
}

#[test]
fn seed_004_minimal_manifest_loads_unchanged_with_safe_defaults() {
    let seed = r#"{"slug": "my_app", "websockets": {"realtime": {"path": "/ws"}}}"#;
    let loaded = parse("my_app.json", seed).unwrap();
    let resolved = resolve(&loaded, &secrets(&[("MY_APP_JWT_SECRET", "s"), ("MY_APP_API_KEY", "k")])).unwrap();
    let spec = resolved.spec;
    assert_eq!(spec.slug, "my_app");
    let endpoint = &spec.endpoints[0];
    assert_eq!((endpoint.name.as_str(), endpoint.path.as_str()), ("realtime", "/ws"));
    assert!(endpoint.auth_required, "auth is required by default");
    assert_eq!(endpoint.protocol, Protocol::Native);
    assert_eq!(endpoint.ping_interval.as_secs(), 30);
    assert!(spec.verifier.is_some() && spec.api_keys.accepts("k"));
    assert_eq!(spec.namespaces["room"].subscribe, Policy::Server, "rooms are server-managed by default");
    assert_eq!(spec.limits.max_message_bytes, 65_536);
    assert!(resolved.warnings.is_empty(), "{:?}", resolved.warnings);
}

#[test]
fn seed_004_advanced_manifest_with_app_engine_keys_loads() {
    let seed = r#"{
      "slug": "my_app", "name": "My App", "version": "1.0", "managed_indexes": {},
      "websockets": {
        "realtime": {"path": "/ws", "description": "Real-time updates",
                     "auth": {"required": true, "allow_anonymous": false}, "ping_interval": 30},
        "events": {"path": "/events", "auth": {"required": false}, "description": "Public event stream"}
      }
    }"#;
    let loaded = parse("m.json", seed).unwrap();
    let spec = resolve(&loaded, &secrets(&[("MY_APP_JWT_SECRET", "s")])).unwrap().spec;
    let events = spec.endpoints.iter().find(|e| e.name == "events").unwrap();
    assert!(!events.auth_required);
}

#[test]
fn missing_secret_is_an_error_naming_the_variable_and_missing_key_a_warning() {
    let loaded = parse("a.json", r#"{"slug": "a-b", "websockets": {"rt": {"path": "/ws"}}}"#).unwrap();
    let err = resolve(&loaded, &secrets(&[])).err().expect("auth needs a key");
    assert!(err.message.contains("A_B_JWT_SECRET"), "{err}");
    let resolved = resolve(&loaded, &secrets(&[("A_B_JWT_SECRET", "s")])).unwrap();
    assert!(resolved.warnings.iter().any(|w| w.contains("A_B_API_KEY")), "{:?}", resolved.warnings);
}

#[test]
fn syntax_and_type_errors_name_file_line_column_and_field() {
    let text = "{\n  \"slug\": \"a\",\n  \"websockets\": {\"rt\": {\"path\": 7}}\n}";
    let err = parse("apps/a.json", text).unwrap_err();
    assert_eq!((err.file.as_str(), err.line), ("apps/a.json", 3));
    assert_eq!(err.field, "websockets.rt.path");
    assert!(err.message.contains("expected a string"), "{err}");
    assert!(err.to_string().starts_with("apps/a.json:3:"), "{err}");

    let err =
        parse("b.json", "{\"slug\": \"a\",\n \"websockets\": {\"rt\": {\"path\": \"/ws\", \"pth\": 1}}}").unwrap_err();
    assert_eq!(err.line, 2);
    assert!(err.message.contains("unknown field `pth`"), "{err}");

    let err = parse(
        "c.json",
        "{\"slug\": \"a\", \"websockets\": {\"rt\": {\"path\": \"/ws\", \"ping_interval\": \"5 weeks\"}}}",
    )
    .unwrap_err();
    assert_eq!(err.field, "websockets.rt.ping_interval");

    let float = "{\"slug\": \"a\", \"websockets\": {\"rt\": {\"path\": \"/ws\", \"ping_interval\": 2.5}}}";
    let err = parse("f.json", float).unwrap_err();
    assert!(err.message.contains("fractions are not allowed; use 2500ms"), "{err}");

    let err = parse("d.json", "{\"slug\": \"a\",").unwrap_err();
    assert_eq!(err.line, 1);
}

#[test]
fn semantic_errors_point_at_the_field() {
    let cases = [
        (r#"{"slug": "Bad Slug", "websockets": {"rt": {"path": "/ws"}}}"#, "slug"),
        (r#"{"slug": "a", "websockets": {}}"#, "websockets"),
        (r#"{"slug": "a", "websockets": {"rt": {"path": "ws"}}}"#, "websockets.rt.path"),
        (r#"{"slug": "a", "websockets": {"rt": {"path": "/api/x"}}}"#, "websockets.rt.path"),
        (r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "protocol": "mqtt"}}}"#, "websockets.rt.protocol"),
        (r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "ping_interval": 0}}}"#, "websockets.rt.ping_interval"),
        (r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}, "two": {"path": "/ws"}}}"#, "websockets.two.path"),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}}, "channels": {"user": {"subscribe": "public"}}}"#,
            "channels.user",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}}, "channels": {"s": {"subscribe": "anyone"}}}"#,
            "channels.s.subscribe",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}}, "history": {"user": {"storage": "disk"}}}"#,
            "history.user.storage",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}}, "history": {"group": {"size": 200000}}}"#,
            "history.group.size",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws"}}, "channels": {"s": {"subscribe": "public", "history": {"ttl": "0s"}}}}"#,
            "channels.s.history.ttl",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "compression": {"level": 0}}}}"#,
            "websockets.rt.compression.level",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "compression": {"window_bits": 8}}}}"#,
            "websockets.rt.compression.window_bits",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "compression": {"min_size": 10}}}}"#,
            "websockets.rt.compression.min_size",
        ),
        (
            r#"{"slug": "a", "websockets": {"rt": {"path": "/ws", "compression": {"min_bytes": -1}}}}"#,
            "websockets.rt.compression.min_bytes",
        ),
    ];
    for (text, field) in cases {
        let err = parse("x.json", text).unwrap_err();
        assert_eq!(err.field, field, "{err}");
        assert_eq!(err.line, 1);
        assert!(err.column > 1, "{err}");
    }
}

#[test]
fn secrets_in_the_manifest_are_refused() {
    let text = r#"{"slug": "a", "auth_policy": {"jwt": {"secret": "hunter2"}}, "websockets": {"rt": {"path": "/ws"}}}"#;
    let err = parse("s.json", text).unwrap_err();
    assert_eq!(err.field, "auth_policy.jwt.secret");
    assert!(err.message.contains("secret_env"));
    assert!(!err.to_string().contains("hunter2"), "the secret is not echoed");
}

#[test]
fn two_apps_declaring_one_path_is_an_error_naming_both() {
    let a = parse("one.json", r#"{"slug": "one", "websockets": {"rt": {"path": "/ws"}}}"#).unwrap();
    let b = parse("two.json", r#"{"slug": "two", "websockets": {"live": {"path": "/ws"}}}"#).unwrap();
    let err = check_unique(&[a, b]).unwrap_err();
    assert_eq!((err.file.as_str(), err.field.as_str()), ("two.json", "websockets.live.path"));
    assert!(err.message.contains("one.json") && err.message.contains("`one`"), "{err}");
    let a = parse("one.json", r#"{"slug": "same", "websockets": {"rt": {"path": "/a"}}}"#).unwrap();
    let b = parse("two.json", r#"{"slug": "same", "websockets": {"rt": {"path": "/b"}}}"#).unwrap();
    assert!(check_unique(&[a, b]).unwrap_err().message.contains("one.json"));
}

#[test]
fn key_files_and_algorithms_resolve() {
    let text = r#"{"slug": "k", "auth_policy": {"jwt": {"secret_file": "jwt.key", "algorithms": ["HS512"]},
                   "claims": {"user_id": "uid"}, "cookie": "session"},
                   "api_key_file": "api.keys", "websockets": {"rt": {"path": "/ws"}}}"#;
    let loaded = parse("dir/k.json", text).unwrap();
    let spec = resolve(&loaded, &secrets(&[("jwt.key", "s3cret\n"), ("api.keys", "k1\nk2\n")])).unwrap().spec;
    assert!(spec.api_keys.accepts("k1") && spec.api_keys.accepts("k2"));
    assert_eq!(spec.cookie.as_deref(), Some("session"));
    let bad = r#"{"slug": "k", "auth_policy": {"jwt": {"secret_env": "X", "algorithms": ["none"]}}, "websockets": {"rt": {"path": "/ws"}}}"#;
    let err = resolve(&parse("k.json", bad).unwrap(), &secrets(&[("X", "s")])).err().unwrap();
    assert_eq!(err.field, "auth_policy.jwt.algorithms");
    let unreadable = r#"{"slug": "k", "api_key_file": "missing.txt", "auth_policy": {"required": false}, "websockets": {"rt": {"path": "/ws"}}}"#;
    let err = resolve(&parse("k.json", unreadable).unwrap(), &secrets(&[])).err().unwrap();
    assert_eq!(err.field, "api_key_file");
}

#[test]
fn demo_manifest_is_valid() {
    let loaded = parse(switchboard_config::demo::FILE, switchboard_config::demo::MANIFEST).unwrap();
    let spec = resolve(&loaded, &secrets(&[("DEMO_JWT_SECRET", "s"), ("DEMO_API_KEY", "k")])).unwrap().spec;
    let paths: Vec<(&str, &str)> = spec.endpoints.iter().map(|e| (e.path.as_str(), e.protocol.as_str())).collect();
    assert_eq!(paths, [("/socket.io/", "socket.io"), ("/ws", "native")], "DESIGN's zero-config endpoints");
}

#[test]
fn example_server_config_parses() {
    let text = include_str!("../../../switchboard.example.toml");
    let file = switchboard_config::server::parse("switchboard.example.toml", text).unwrap();
    assert_eq!(file.bind.as_deref(), Some("127.0.0.1:8080"));
    assert_eq!(file.drain_timeout.map(|d| d.0.as_secs()), Some(10));
}

#[test]
fn history_defaults_are_durable_for_users_and_groups_and_opt_in_elsewhere() {
    let text = r#"{"slug": "h", "auth_policy": {"required": false}, "websockets": {"rt": {"path": "/ws"}},
                   "history": {"group": {"size": 0}},
                   "channels": {"feed": {"subscribe": "public", "history": {"size": 5}},
                                "log": {"subscribe": "server", "history": {"storage": "durable", "ttl": "1h"}},
                                "plain": {"subscribe": "public"}}}"#;
    let spec = resolve(&parse("h.json", text).unwrap(), &secrets(&[])).unwrap().spec;
    let user = spec.history_of("user:u1").expect("user history is on by default");
    assert_eq!((user.size, user.ttl.as_secs(), user.durable), (1000, 86_400, true));
    assert_eq!(spec.history_of("group:g"), None, "size 0 turns it off");
    let feed = spec.history_of("feed:x").unwrap();
    assert_eq!((feed.size, feed.durable), (5, false), "declared namespace history lives in memory by default");
    let log = spec.history_of("log:x").unwrap();
    assert_eq!((log.size, log.ttl.as_secs(), log.durable), (100, 3600, true));
    assert_eq!(spec.history_of("plain:x"), None);
    assert_eq!(spec.history_of("room:1"), None);
    assert_eq!(spec.history_of("broadcast"), None);
}

#[test]
fn compression_is_off_unless_declared_and_fills_in_defaults() {
    let text = r#"{"slug": "a", "websockets": {
        "plain": {"path": "/plain"},
        "on": {"path": "/on", "compression": {}},
        "tuned": {"path": "/tuned", "compression": {"min_bytes": 0, "level": 6, "window_bits": 11,
                  "server_context_takeover": true, "client_context_takeover": true}},
        "off": {"path": "/off", "compression": {"enabled": false, "level": 9}}}}"#;
    let resolved = resolve(&parse("a.json", text).unwrap(), &secrets(&[("A_JWT_SECRET", "s")])).unwrap();
    let by_name = |name: &str| resolved.spec.endpoints.iter().find(|e| e.name == name).unwrap().compression;
    assert_eq!(by_name("plain"), None);
    assert_eq!(by_name("off"), None);
    assert_eq!(by_name("on"), Some(switchboard_hub::CompressionSpec::default()));
    let tuned = by_name("tuned").unwrap();
    assert_eq!((tuned.min_bytes, tuned.level, tuned.window_bits), (0, 6, 11));
    assert!(tuned.server_context_takeover && tuned.client_context_takeover);
    let d = switchboard_hub::CompressionSpec::default();
    assert_eq!((d.min_bytes, d.level, d.window_bits), (256, 1, 15));
    assert!(!d.server_context_takeover && !d.client_context_takeover, "memory stays flat by default");
}
