//! Who the client is behind a load balancer: the TCP peer, or, when that peer is one of the
//! configured trusted proxies, the address its forwarding headers name.
//!
//! The rule, as nginx's `real_ip_recursive` and most proxies apply it: when the peer is not
//! trusted, the headers are ignored (anyone can send them). When it is, the hops of
//! `X-Forwarded-For` (or, when a request has none, the `for=` of RFC 7239's `Forwarded`) are
//! read from right to left, each one appended by the proxy in front of it, while they are
//! trusted proxies too; the first untrusted hop is the client. A hop that cannot be read
//! (`unknown`, an obfuscated name, garbage) ends the walk, and the last address established
//! stands: the nearest trusted proxy, as if it had sent no header.
//!
//! Only the header the proxies maintain can be believed: X-Forwarded-For is read first, so a
//! proxy that sets `Forwarded` instead must remove any `X-Forwarded-For` a client sends.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// The peers whose forwarding headers are believed: addresses and CIDR ranges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<Range>,
}

/// One address range: the network's address and its prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Range {
    network: IpAddr,
    prefix: u8,
}

/// Where a connection comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr {
    /// The client's address.
    pub ip: IpAddr,
    /// Its port, when known: always for a direct peer, only when a header names one otherwise.
    pub port: Option<u16>,
    /// The trusted proxy the request came through (the TCP peer), when the address was
    /// forwarded.
    pub via: Option<SocketAddr>,
}

impl ClientAddr {
    /// A client connected directly (or through proxies that are not trusted).
    pub fn direct(peer: SocketAddr) -> Self {
        Self { ip: peer.ip(), port: Some(peer.port()), via: None }
    }
}

/// `203.0.113.7`, `203.0.113.7:4711`, `[2001:db8::17]:4711`: a direct peer shows as it always
/// did, with its port.
impl fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => SocketAddr::new(self.ip, port).fmt(f),
            None => self.ip.fmt(f),
        }
    }
}

impl TrustedProxies {
    /// Parses addresses (`10.0.0.7`, `::1`) and CIDR ranges (`10.0.0.0/8`, `fd00::/8`); empty
    /// entries are skipped. A range with host bits set (`10.0.0.1/8`) is refused: it is
    /// usually a typo that would trust far more than meant.
    pub fn parse<I, S>(entries: I) -> Result<Self, String>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut ranges = Vec::new();
        for entry in entries {
            let entry = entry.as_ref().trim();
            if !entry.is_empty() {
                ranges.push(Range::parse(entry)?);
            }
        }
        Ok(Self { ranges })
    }

    /// Whether no proxy is trusted (every peer is the client).
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.ranges.iter().any(|range| range.contains(ip))
    }

    /// The client of a request from `peer` carrying these `X-Forwarded-For` and `Forwarded`
    /// header values (each header line as sent, in order; a line that is not text counts as a
    /// hop that cannot be read).
    pub fn client<'a>(
        &self,
        peer: SocketAddr,
        x_forwarded_for: impl IntoIterator<Item = &'a [u8]>,
        forwarded: impl IntoIterator<Item = &'a [u8]>,
    ) -> ClientAddr {
        let direct = ClientAddr::direct(peer);
        if !self.trusts(peer.ip()) {
            return direct;
        }
        let mut hops: Vec<Option<Hop>> = x_forwarded_for.into_iter().flat_map(x_forwarded_for_hops).collect();
        if hops.is_empty() {
            hops = forwarded.into_iter().flat_map(forwarded_hops).collect();
        }
        let mut client = direct;
        for hop in hops.into_iter().rev() {
            let Some(Hop { ip, port }) = hop else { break };
            client = ClientAddr { ip, port, via: Some(peer) };
            if !self.trusts(ip) {
                break;
            }
        }
        client
    }
}

impl Range {
    fn parse(entry: &str) -> Result<Self, String> {
        let unreadable = || format!("trusted proxy `{entry}` is not an IP address or CIDR range (e.g. 10.0.0.0/8)");
        let (address, prefix) = match entry.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (entry, None),
        };
        let network: IpAddr = address.trim().parse().map_err(|_| unreadable())?;
        let network = if prefix.is_none() { network.to_canonical() } else { network };
        let width = width(network);
        let prefix = match prefix {
            None => width,
            Some(prefix) => prefix.trim().parse::<u8>().ok().filter(|p| *p <= width).ok_or_else(unreadable)?,
        };
        let range = Self { network, prefix };
        if range.host_bits(bits(network)) != 0 {
            return Err(format!(
                "trusted proxy `{entry}` has bits set after its /{prefix} prefix: write the network's \
                 first address, or the address alone for one proxy"
            ));
        }
        Ok(range)
    }

    fn contains(&self, ip: IpAddr) -> bool {
        if ip.is_ipv4() != self.network.is_ipv4() {
            return false;
        }
        let shift = u32::from(width(ip) - self.prefix);
        let (a, b) = (bits(ip), bits(self.network));
        a.checked_shr(shift).unwrap_or(0) == b.checked_shr(shift).unwrap_or(0)
    }

    /// The bits of `value` below the prefix.
    fn host_bits(&self, value: u128) -> u128 {
        let shift = u32::from(width(self.network) - self.prefix);
        value ^ value.checked_shr(shift).unwrap_or(0).checked_shl(shift).unwrap_or(0)
    }
}

fn width(ip: IpAddr) -> u8 {
    if ip.is_ipv4() {
        32
    } else {
        128
    }
}

fn bits(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// One hop a proxy reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Hop {
    ip: IpAddr,
    port: Option<u16>,
}

/// The hops of one `X-Forwarded-For` line, left to right: `203.0.113.7, 10.0.0.2`.
fn x_forwarded_for_hops(line: &[u8]) -> Vec<Option<Hop>> {
    match std::str::from_utf8(line) {
        Ok(line) => line.split(',').map(|hop| node(hop.trim())).collect(),
        Err(_) => vec![None],
    }
}

/// The `for=` of each element of one `Forwarded` line, left to right (RFC 7239, section 4):
/// `for=192.0.2.60;proto=https, for="[2001:db8:cafe::17]:4711"`. An element without `for`
/// is a hop that cannot be read.
fn forwarded_hops(line: &[u8]) -> Vec<Option<Hop>> {
    let Ok(line) = std::str::from_utf8(line) else { return vec![None] };
    split_outside_quotes(line, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';').into_iter().find_map(|pair| {
                let (name, value) = pair.split_once('=')?;
                name.trim().eq_ignore_ascii_case("for").then(|| unquote(value.trim()))
            })
        })
        .map(|value| value.and_then(|v| node(&v)))
        .collect()
}

/// `text` split at `separator`s that are not inside a quoted string.
fn split_outside_quotes(text: &str, separator: char) -> Vec<&str> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// A token, or a quoted string with its escapes undone.
fn unquote(value: &str) -> String {
    let Some(inner) = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) else { return value.to_owned() };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next().unwrap_or('\\') } else { c });
    }
    out
}

/// One node: `192.0.2.60`, `192.0.2.60:4711`, `2001:db8::17`, `[2001:db8::17]:4711`; a port
/// that is not a number (RFC 7239's obfuscated `_port`) is dropped. `unknown`, an obfuscated
/// name and anything else: `None`.
fn node(text: &str) -> Option<Hop> {
    let canonical = |ip: IpAddr| ip.to_canonical();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(Hop { ip: canonical(ip), port: None });
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(Hop { ip: canonical(addr.ip()), port: Some(addr.port()) });
    }
    let (host, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (host, after) = rest.split_once(']')?;
            let port = after.strip_prefix(':');
            if port.is_none() && !after.is_empty() {
                return None;
            }
            (host, port)
        }
        None => {
            let (host, port) = text.split_once(':')?;
            (host, Some(port))
        }
    };
    // A numeric port would have parsed above: only an obfuscated one (or none) is left.
    if port.is_some_and(|p| !p.starts_with('_')) {
        return None;
    }
    let ip: IpAddr = host.parse().ok()?;
    Some(Hop { ip: canonical(ip), port: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(entries).unwrap()
    }

    fn peer(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    /// The client, as shown, of a request from `from` with these header lines.
    fn client(proxies: &TrustedProxies, from: &str, xff: &[&str], forwarded: &[&str]) -> String {
        let xff = xff.iter().map(|v| v.as_bytes());
        proxies.client(peer(from), xff, forwarded.iter().map(|v| v.as_bytes())).to_string()
    }

    #[test]
    fn parses_addresses_and_ranges_and_refuses_typos() {
        let proxies = trusted(&["10.0.0.0/8", " 192.0.2.10 ", "", "fd00::/8", "::1"]);
        for ip in ["10.1.2.3", "192.0.2.10", "fd12::1", "::1", "::ffff:10.9.9.9"] {
            assert!(proxies.trusts(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["11.0.0.1", "192.0.2.11", "fe80::1", "::2", "127.0.0.1"] {
            assert!(!proxies.trusts(ip.parse().unwrap()), "{ip}");
        }
        assert!(trusted(&["0.0.0.0/0"]).trusts("203.0.113.7".parse().unwrap()));
        assert!(trusted(&["::/0"]).trusts("2001:db8::1".parse().unwrap()));
        assert!(TrustedProxies::parse(["10.0.0.1/8"]).unwrap_err().contains("after its /8 prefix"));
        for bad in ["proxy.internal", "10.0.0.0/33", "fd00::/129", "10.0.0.0/", "10.0.0.0/x"] {
            assert!(TrustedProxies::parse([bad]).unwrap_err().contains("not an IP address or CIDR"), "{bad}");
        }
        assert!(TrustedProxies::parse(Vec::<String>::new()).unwrap().is_empty());
    }

    #[test]
    fn walks_x_forwarded_for_right_to_left_while_hops_are_trusted() {
        let proxies = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let from_proxy = |xff: &[&str]| client(&proxies, "127.0.0.1:5000", xff, &[]);
        assert_eq!(from_proxy(&["203.0.113.7, 10.0.0.2"]), "203.0.113.7");
        assert_eq!(
            from_proxy(&["198.51.100.1, 203.0.113.7, 10.0.0.2"]),
            "203.0.113.7",
            "the left is the client's word"
        );
        assert_eq!(from_proxy(&["198.51.100.1", "203.0.113.7,10.0.0.2"]), "203.0.113.7", "lines join in order");
        assert_eq!(from_proxy(&["10.0.0.3, 10.0.0.2"]), "10.0.0.3", "all trusted: the farthest");
        assert_eq!(from_proxy(&["[2001:db8::7]:4711"]), "[2001:db8::7]:4711");
        assert_eq!(from_proxy(&["203.0.113.7:4711"]), "203.0.113.7:4711");
        assert_eq!(from_proxy(&["::ffff:203.0.113.7"]), "203.0.113.7");
        assert_eq!(from_proxy(&["[2001:db8::7]"]), "2001:db8::7");
        assert_eq!(from_proxy(&["203.0.113.7:99999, 10.0.0.2"]), "10.0.0.2", "not a port");
        assert_eq!(from_proxy(&["203.0.113.7, garbage, 10.0.0.2"]), "10.0.0.2", "an unreadable hop ends the walk");
        assert_eq!(from_proxy(&["unknown"]), "127.0.0.1:5000");
        assert_eq!(from_proxy(&[]), "127.0.0.1:5000");
        // A line that is not text cannot hide the hops after it.
        let lines: [&[u8]; 2] = [b"203.0.113.9", b"\xff, 203.0.113.7"];
        assert_eq!(proxies.client(peer("127.0.0.1:5000"), lines, []).to_string(), "127.0.0.1:5000");
        let forwarded = proxies.client(peer("127.0.0.1:5000"), [&b"203.0.113.7"[..]], []);
        assert_eq!((forwarded.via, forwarded.port), (Some(peer("127.0.0.1:5000")), None));
    }

    #[test]
    fn ignores_the_headers_of_a_peer_that_is_not_trusted() {
        let proxies = trusted(&["10.0.0.0/8"]);
        assert_eq!(client(&proxies, "127.0.0.1:5000", &["203.0.113.7, 10.0.0.2"], &[]), "127.0.0.1:5000");
        assert_eq!(client(&TrustedProxies::default(), "10.0.0.1:5000", &["203.0.113.7"], &[]), "10.0.0.1:5000");
        let direct = proxies.client(peer("127.0.0.1:5000"), [], []);
        assert_eq!(direct, ClientAddr::direct(peer("127.0.0.1:5000")));
    }

    #[test]
    fn reads_the_for_of_rfc_7239_forwarded_when_there_is_no_x_forwarded_for() {
        let proxies = trusted(&["127.0.0.1", "10.0.0.0/8"]);
        let from_proxy = |forwarded: &[&str]| client(&proxies, "127.0.0.1:5000", &[], forwarded);
        assert_eq!(from_proxy(&["for=203.0.113.7"]), "203.0.113.7");
        assert_eq!(from_proxy(&["For=\"203.0.113.7\";proto=https;by=10.0.0.1, for=10.0.0.2"]), "203.0.113.7");
        assert_eq!(from_proxy(&["for=\"[2001:db8:cafe::17]:4711\""]), "[2001:db8:cafe::17]:4711");
        assert_eq!(from_proxy(&["for=\"[2001:db8:cafe::17]:_port\""]), "2001:db8:cafe::17");
        assert_eq!(from_proxy(&["for=\"203.0.113.7:_x\""]), "203.0.113.7");
        assert_eq!(from_proxy(&["for=198.51.100.1", "for=203.0.113.7;host=\"a,b;c\", for=10.0.0.2"]), "203.0.113.7");
        assert_eq!(from_proxy(&["for=_hidden, for=10.0.0.2"]), "10.0.0.2");
        assert_eq!(from_proxy(&["proto=https"]), "127.0.0.1:5000", "an element without for");
        assert_eq!(from_proxy(&["for=unknown"]), "127.0.0.1:5000");
        // X-Forwarded-For wins: the proxies that set it pass a client's Forwarded through.
        assert_eq!(client(&proxies, "127.0.0.1:5000", &["203.0.113.7"], &["for=198.51.100.1"]), "203.0.113.7");
    }
}
