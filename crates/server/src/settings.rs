//! Layering: the config file, then the environment and flags (clap merges those two).

use std::time::Duration;

use anyhow::{bail, Context};
use switchboard_config::duration;
use switchboard_config::server::ServerFile;
use switchboard_hub::{GateLimits, TrustedProxies};

use crate::cli::ServeArgs;

/// Validated serve settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address.
    pub bind: String,
    /// Manifest files; empty for the demo.
    pub manifests: Vec<String>,
    /// Store URL.
    pub store: String,
    /// Broker URL.
    pub broker: String,
    /// Node id.
    pub node_id: String,
    /// Emit JSON logs.
    pub json_logs: bool,
    /// /readyz fails this long before sockets close.
    pub drain_grace: Duration,
    /// Sessions get this long to flush.
    pub drain_timeout: Duration,
    /// The admin console's token; `None` turns the console off.
    pub admin_token: Option<String>,
    /// How slow and half-finished HTTP requests are bounded.
    pub http: HttpLimits,
    /// Publishes that may wait for the history store at once; more are refused with 503.
    pub history_queue: usize,
    /// Connections and Socket.IO sessions that may wait to authenticate at once.
    pub unauthenticated: GateLimits,
    /// The load balancers whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
}

/// The bounds on HTTP connections, like nginx's `client_header_timeout`, `keepalive_timeout`
/// and `large_client_header_buffers`, so that slow or idle clients cannot hold the server's
/// memory or connections open for as long as they like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Time from a request's first byte (or the connection's accept) to the end of its
    /// headers; then the connection closes.
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests; zero turns keep-alive off.
    pub keepalive_timeout: Duration,
    /// Connections still sending their request headers, at most; past it the one that has
    /// waited longest is closed.
    pub max_incomplete: usize,
    /// Largest request line and headers, in bytes; larger answers 431.
    pub max_header_bytes: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        Self {
            header_timeout: Duration::from_secs(60),
            keepalive_timeout: Duration::from_secs(75),
            max_incomplete: 1024,
            max_header_bytes: 32 * 1024,
        }
    }
}

/// The default of `history_queue` (the hub's own default too): at the tens of thousands of
/// durable events per second one SQLite store commits, a fraction of a second of waiting.
pub(crate) const HISTORY_QUEUE: usize = 8192;
/// The least `history_queue` may be: the largest batch must fit in it at once.
const MIN_HISTORY_QUEUE: usize = 100;
/// The least header size limit: a request line with a token in its query string needs room.
const MIN_HEADER_BYTES: usize = 1024;

impl Settings {
    /// Settings for a server in tests or embedding: the given manifests, an in-memory store.
    pub fn for_manifests(manifests: Vec<String>) -> Self {
        Self {
            bind: "127.0.0.1:0".into(),
            manifests,
            store: "sqlite::memory:".into(),
            broker: "memory".into(),
            node_id: "test".into(),
            json_logs: false,
            drain_grace: Duration::ZERO,
            drain_timeout: Duration::from_secs(10),
            admin_token: None,
            http: HttpLimits::default(),
            history_queue: HISTORY_QUEUE,
            unauthenticated: GateLimits::default(),
            trusted_proxies: TrustedProxies::default(),
        }
    }

    /// Layers file < environment < flags, then applies defaults.
    pub fn from_args(args: ServeArgs) -> anyhow::Result<Self> {
        let file = match &args.apps.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {path}"))?;
                switchboard_config::server::parse(path, &text).map_err(anyhow::Error::msg)?
            }
            None => ServerFile::default(),
        };
        let http = http_limits(&args, &file)?;
        let history_queue = history_queue(args.history_queue.or(file.history_queue))?;
        let unauthenticated = unauthenticated(
            args.max_unauthenticated.or(file.max_unauthenticated),
            args.max_unauthenticated_per_address.or(file.max_unauthenticated_per_address),
        )?;
        let trusted_proxies = match args.trusted_proxies.is_empty() {
            true => file.trusted_proxies.unwrap_or_default(),
            false => args.trusted_proxies,
        };
        let trusted_proxies = TrustedProxies::parse(trusted_proxies).map_err(anyhow::Error::msg)?;
        let log_format = args.log_format.or(file.log_format).unwrap_or_else(|| "text".into());
        if log_format != "text" && log_format != "json" {
            bail!("log format `{log_format}` is not text or json");
        }
        let manifests =
            if args.apps.manifests.is_empty() { file.manifests.unwrap_or_default() } else { args.apps.manifests };
        Ok(Self {
            bind: args.bind.or(file.bind).unwrap_or_else(|| "127.0.0.1:8080".into()),
            manifests,
            store: args.apps.store.or(file.store).unwrap_or_else(|| "sqlite://./switchboard.db".into()),
            broker: args.broker.or(file.broker).unwrap_or_else(|| "memory".into()),
            node_id: args.node_id.or(file.node_id).unwrap_or_else(default_node_id),
            json_logs: log_format == "json",
            drain_grace: span(args.drain_grace, file.drain_grace, Duration::ZERO)?,
            drain_timeout: span(args.drain_timeout, file.drain_timeout, Duration::from_secs(10))?,
            admin_token: admin_token(args.admin_token_file.or(file.admin_token_file))?,
            http,
            history_queue,
            unauthenticated,
            trusted_proxies,
        })
    }
}

/// A duration from a flag (or the environment), else the file, else `default`.
fn span(flag: Option<String>, file: Option<duration::DurationText>, default: Duration) -> anyhow::Result<Duration> {
    match flag {
        Some(text) => duration::parse(&text).map_err(anyhow::Error::msg),
        None => Ok(file.map_or(default, |d| d.0)),
    }
}

fn http_limits(args: &ServeArgs, file: &ServerFile) -> anyhow::Result<HttpLimits> {
    let d = HttpLimits::default();
    let limits = HttpLimits {
        header_timeout: span(args.http_header_timeout.clone(), file.http_header_timeout, d.header_timeout)?,
        keepalive_timeout: span(args.http_keepalive_timeout.clone(), file.http_keepalive_timeout, d.keepalive_timeout)?,
        max_incomplete: args.http_max_incomplete.or(file.http_max_incomplete).unwrap_or(d.max_incomplete),
        max_header_bytes: args.http_max_header_bytes.or(file.http_max_header_bytes).unwrap_or(d.max_header_bytes),
    };
    if limits.header_timeout.is_zero() {
        bail!("http_header_timeout must be longer than zero");
    }
    if limits.max_incomplete == 0 {
        bail!("http_max_incomplete must be at least 1");
    }
    if limits.max_header_bytes < MIN_HEADER_BYTES {
        bail!("http_max_header_bytes must be at least {MIN_HEADER_BYTES}");
    }
    Ok(limits)
}

fn history_queue(set: Option<usize>) -> anyhow::Result<usize> {
    let queue = set.unwrap_or(HISTORY_QUEUE);
    if queue < MIN_HISTORY_QUEUE {
        bail!("history_queue must be at least {MIN_HISTORY_QUEUE}, so that the largest batch fits in it");
    }
    Ok(queue)
}

/// The waiting room's caps; zero would refuse every connection.
fn unauthenticated(total: Option<usize>, per_address: Option<usize>) -> anyhow::Result<GateLimits> {
    let defaults = GateLimits::default();
    let limits =
        GateLimits { total: total.unwrap_or(defaults.total), per_address: per_address.unwrap_or(defaults.per_address) };
    if limits.total == 0 || limits.per_address == 0 {
        bail!("max_unauthenticated and max_unauthenticated_per_address must be at least 1");
    }
    Ok(limits)
}

/// The admin token: `SWITCHBOARD_ADMIN_TOKEN`, or the file named (trimmed). Short ones are
/// refused, since the console can disconnect users and publish.
fn admin_token(file: Option<String>) -> anyhow::Result<Option<String>> {
    let token = match (std::env::var("SWITCHBOARD_ADMIN_TOKEN"), file) {
        (Ok(token), _) if !token.is_empty() => token,
        (_, Some(path)) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the admin token file {path}"))?
            .trim()
            .to_owned(),
        _ => return Ok(None),
    };
    if token.len() < 16 {
        bail!("the admin token must be at least 16 characters (it guards disconnects and publishes)");
    }
    Ok(Some(token))
}

fn default_node_id() -> String {
    std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "node".into())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{HttpLimits, Settings};
    use crate::cli::ServeArgs;

    fn with(tweak: impl FnOnce(&mut ServeArgs)) -> anyhow::Result<Settings> {
        let mut args = ServeArgs::default();
        tweak(&mut args);
        Settings::from_args(args)
    }

    #[test]
    fn http_bounds_default_like_nginx_and_take_flags() {
        let settings = with(|_| {}).unwrap();
        assert_eq!(settings.http, HttpLimits::default());
        assert_eq!(
            (settings.http.header_timeout, settings.http.keepalive_timeout),
            (Duration::from_secs(60), Duration::from_secs(75))
        );
        assert_eq!(settings.history_queue, super::HISTORY_QUEUE);
        let settings = with(|a| {
            a.http_header_timeout = Some("2s".into());
            a.http_keepalive_timeout = Some("0s".into());
            a.http_max_incomplete = Some(20);
            a.http_max_header_bytes = Some(4096);
            a.history_queue = Some(100);
        })
        .unwrap();
        let expected = HttpLimits {
            header_timeout: Duration::from_secs(2),
            keepalive_timeout: Duration::ZERO,
            max_incomplete: 20,
            max_header_bytes: 4096,
        };
        assert_eq!((settings.http, settings.history_queue), (expected, 100));
    }

    #[test]
    fn bounds_that_would_refuse_everything_are_refused_at_startup() {
        let error = |tweak: fn(&mut ServeArgs)| with(tweak).unwrap_err().to_string();
        assert!(error(|a| a.http_header_timeout = Some("0s".into())).contains("http_header_timeout"));
        assert!(error(|a| a.http_max_incomplete = Some(0)).contains("http_max_incomplete"));
        assert!(error(|a| a.http_max_header_bytes = Some(100)).contains("http_max_header_bytes"));
        assert!(error(|a| a.history_queue = Some(99)).contains("the largest batch"));
        assert!(error(|a| a.max_unauthenticated_per_address = Some(0)).contains("max_unauthenticated"));
    }

    #[test]
    fn the_waiting_room_defaults_and_takes_flags() {
        assert_eq!(with(|_| {}).unwrap().unauthenticated, switchboard_hub::GateLimits::default());
        let settings = with(|a| {
            a.max_unauthenticated = Some(50);
            a.max_unauthenticated_per_address = Some(5);
        })
        .unwrap();
        assert_eq!(settings.unauthenticated, switchboard_hub::GateLimits { total: 50, per_address: 5 });
    }

    #[test]
    fn trusted_proxies_default_to_none_and_take_addresses_and_ranges() {
        assert!(with(|_| {}).unwrap().trusted_proxies.is_empty());
        let settings = with(|a| a.trusted_proxies = vec!["10.0.0.0/8".into(), "192.0.2.10".into()]).unwrap();
        let proxies = settings.trusted_proxies;
        assert!(proxies.trusts("10.1.2.3".parse().unwrap()) && proxies.trusts("192.0.2.10".parse().unwrap()));
        assert!(!proxies.trusts("192.0.2.11".parse().unwrap()));
        let error = with(|a| a.trusted_proxies = vec!["lb.internal".into()]).unwrap_err().to_string();
        assert!(error.contains("`lb.internal` is not an IP address or CIDR range"), "{error}");
    }
}
