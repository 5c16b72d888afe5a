//! Where a NATS server is and how to reach it: the URL, and opening one connection (INFO,
//! TLS when either side requires it, CONNECT, then a PING whose PONG proves it took).

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_rustls::TlsConnector;

use super::wire::{self, ServerOp};
use super::{GREETING_TIMEOUT, OPS_QUEUE};
use crate::{split_params, tls, BrokerError};

/// The connection to the server: plain TCP, or TLS over it.
pub(super) trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}
pub(super) type Writer = WriteHalf<Box<dyn Io>>;

/// Where and how to connect.
#[derive(Clone)]
pub(super) struct Server {
    pub(super) addr: String,
    /// The host the server's certificate must name (a DNS name or an IP address).
    host: String,
    user: Option<String>,
    pass: Option<String>,
    token: Option<String>,
    /// Whether the URL requires TLS (`tls://`, or a `ca=`): a server that offers none is refused.
    require_tls: bool,
    /// Trusts the `ca=` file, or the public roots. Used when TLS is required by either side.
    tls: TlsConnector,
}

impl Server {
    /// `nats://` or `tls://`, then `[user:pass@|token@]host[:port][?channel_prefix=name][&ca=/path/ca.pem]`;
    /// returns the subject prefix too.
    pub(super) fn parse(url: &str) -> Result<(Self, String), BrokerError> {
        let (url, params) = split_params(url)?;
        let prefix = params.prefix.map_or_else(|| "sb.".to_owned(), |n| format!("sb.{n}."));
        let (rest, scheme_tls) = match (url.strip_prefix("nats://"), url.strip_prefix("tls://")) {
            (Some(rest), _) => (rest, false),
            (None, Some(rest)) => (rest, true),
            (None, None) => return Err(BrokerError::Unavailable(format!("`{url}` is not nats:// or tls://"))),
        };
        let rest = rest.trim_end_matches('/');
        if let Some((_, query)) = rest.split_once('?') {
            return Err(BrokerError::Unavailable(format!(
                "unknown NATS URL parameter `{query}`; known: channel_prefix, ca"
            )));
        }
        let (credentials, host) = rest.rsplit_once('@').map_or((None, rest), |(c, h)| (Some(c), h));
        let (user, pass, token) = match credentials.map(|c| c.split_once(':')) {
            Some(Some((user, pass))) => (Some(user.to_owned()), Some(pass.to_owned()), None),
            Some(None) => (None, None, credentials.map(str::to_owned)),
            None => (None, None, None),
        };
        // `host`, `host:port`, `[v6]` or `[v6]:port`.
        let (name, port) = match host.strip_prefix('[') {
            Some(v6) => {
                let (name, after) =
                    v6.split_once(']').ok_or_else(|| BrokerError::Unavailable(format!("bad host `{host}`")))?;
                (name, after.strip_prefix(':'))
            }
            None => host.rsplit_once(':').map_or((host, None), |(name, port)| (name, Some(port))),
        };
        let addr = match port {
            Some(port) if host.starts_with('[') => format!("[{name}]:{port}"),
            Some(port) => format!("{name}:{port}"),
            None if host.starts_with('[') => format!("[{name}]:4222"),
            None => format!("{name}:4222"),
        };
        let require_tls = scheme_tls || params.ca.is_some();
        let tls = TlsConnector::from(tls::client_config(params.ca.as_deref())?);
        Ok((Self { addr, host: name.to_owned(), user, pass, token, require_tls, tls }, prefix))
    }

    /// Opens a connection: reads INFO, upgrades to TLS if either side requires it, sends
    /// CONNECT, and waits for the PONG to a PING, so that a refused CONNECT (bad credentials)
    /// is an error here. Its reader runs as a task.
    pub(super) async fn open(&self) -> Result<(Writer, mpsc::Receiver<ServerOp>), BrokerError> {
        let io = |e: std::io::Error| BrokerError::Unavailable(format!("NATS at {}: {e}", self.addr));
        let mut tcp = TcpStream::connect(&self.addr).await.map_err(io)?;
        // INFO comes in the clear, then nothing until the client speaks (CONNECT, or a TLS
        // ClientHello), so the buffer holds nothing past it. A server set to expect TLS
        // first (`handshake_first`, no fallback) sends no INFO: it times out here.
        let mut greeting = BufReader::new(&mut tcp);
        let first = tokio::time::timeout(GREETING_TIMEOUT, wire::read_op(&mut greeting)).await.map_err(|_| {
            let error = format!("NATS at {} sent no INFO within {GREETING_TIMEOUT:?}", self.addr);
            BrokerError::Unavailable(error)
        })?;
        let info = match first.map_err(io)? {
            Some(ServerOp::Info(info)) if greeting.buffer().is_empty() => wire::tls_offer(&info),
            _ => None,
        };
        let Some(offer) = info else {
            return Err(BrokerError::Unavailable(format!("{} did not greet like a NATS server", self.addr)));
        };
        if self.require_tls && !offer.required && !offer.available {
            return Err(BrokerError::Unavailable(format!(
                "NATS at {} does not offer TLS, which the broker URL requires (tls:// or ca=): \
                 enable TLS on the server, or use nats:// without ca=",
                self.addr
            )));
        }
        let upgrade = offer.required || self.require_tls;
        let stream: Box<dyn Io> = if upgrade {
            let name = ServerName::try_from(self.host.clone())
                .map_err(|e| BrokerError::Unavailable(format!("NATS host `{}` for TLS: {e}", self.host)))?;
            let tls = self.tls.connect(name, tcp).await.map_err(|e| {
                let advice = tls::advice(&e.to_string());
                BrokerError::Unavailable(format!("NATS at {}: TLS handshake failed: {e}{advice}", self.addr))
            })?;
            Box::new(tls)
        } else {
            Box::new(tcp)
        };
        let (read, mut write) = tokio::io::split(stream);
        let mut reader = BufReader::new(read);
        let mut hello = wire::connect(self.user.as_deref(), self.pass.as_deref(), self.token.as_deref(), upgrade);
        hello.extend_from_slice(wire::PING);
        write.write_all(&hello).await.map_err(io)?;
        write.flush().await.map_err(io)?;
        loop {
            match wire::read_op(&mut reader).await.map_err(io)? {
                Some(ServerOp::Pong) => break,
                Some(ServerOp::Err(e)) => return Err(BrokerError::Unavailable(format!("NATS refused: {e}"))),
                Some(_) => continue,
                None => return Err(BrokerError::Unavailable("NATS closed the connection".into())),
            }
        }
        let (ops, received) = mpsc::channel(OPS_QUEUE);
        tokio::spawn(async move {
            while let Ok(Some(op)) = wire::read_op(&mut reader).await {
                if ops.send(op).await.is_err() {
                    return;
                }
            }
        });
        Ok((write, received))
    }
}

#[cfg(test)]
mod tests {
    use super::Server;

    #[test]
    fn urls_name_the_server_its_credentials_and_the_prefix() {
        let (s, prefix) = Server::parse("nats://127.0.0.1:4333").unwrap();
        assert_eq!((s.addr.as_str(), prefix.as_str()), ("127.0.0.1:4333", "sb."));
        let (s, prefix) = Server::parse("nats://ann:pw@nats.internal/?channel_prefix=blue").unwrap();
        assert_eq!(
            (s.addr.as_str(), s.user.as_deref(), s.pass.as_deref()),
            ("nats.internal:4222", Some("ann"), Some("pw"))
        );
        assert_eq!(prefix, "sb.blue.");
        let (s, _) = Server::parse("nats://s3cret@h:1").unwrap();
        assert_eq!(s.token.as_deref(), Some("s3cret"));
    }

    #[test]
    fn urls_say_whether_tls_is_required_and_which_host_the_certificate_names() {
        let (s, _) = Server::parse("nats://nats.internal:4222").unwrap();
        assert_eq!((s.host.as_str(), s.require_tls), ("nats.internal", false));
        let (s, prefix) = Server::parse("tls://ann:pw@nats.example.com?channel_prefix=blue").unwrap();
        assert_eq!(
            (s.addr.as_str(), s.host.as_str(), s.require_tls),
            ("nats.example.com:4222", "nats.example.com", true)
        );
        assert_eq!((s.user.as_deref(), prefix.as_str()), (Some("ann"), "sb.blue."));
        let (s, _) = Server::parse("tls://[::1]:4443").unwrap();
        assert_eq!((s.addr.as_str(), s.host.as_str()), ("[::1]:4443", "::1"));
        let (s, _) = Server::parse("nats://[::1]").unwrap();
        assert_eq!(s.addr, "[::1]:4222");
        let error = Server::parse("nats://h:1/?tls=1").err().unwrap().to_string();
        assert!(error.contains("unknown NATS URL parameter `tls=1`"), "{error}");
        let error = Server::parse("http://h:1").err().unwrap().to_string();
        assert!(error.contains("is not nats:// or tls://"), "{error}");
    }
}
