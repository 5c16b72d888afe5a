//! The HTTP layer under slow and half-finished requests: header-read and keep-alive timeouts,
//! the cap on connections still sending their headers, the header size limit, and memory.

use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use crate::support::{manifest, Server, WAIT};

/// The start of a request whose headers never end.
const PARTIAL: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bounds\r\nX-Slow: ";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: bounds\r\n\r\n";

/// Sends `PARTIAL`, then one more byte every `every`, until the server closes the connection
/// (bounded by [`WAIT`]); returns how long that took from the first byte.
async fn slow_headers(addr: &str, every: Duration) -> Duration {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(PARTIAL).await.unwrap();
    let mut tick = tokio::time::interval(every);
    let mut buf = [0u8; 1024];
    let closed = async {
        loop {
            tokio::select! {
                read = stream.read(&mut buf) => match read {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {} // an error status before the close is fine
                },
                _ = tick.tick() => if stream.write_all(b"x").await.is_err() { return },
            }
        }
    };
    tokio::time::timeout(WAIT, closed).await.expect("the server closed a connection that never finished its headers");
    started.elapsed()
}

/// Reads one response (head and a `Content-Length` body); its status, or `None` at EOF.
async fn read_response(stream: &mut TcpStream) -> Option<u16> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |n| n.trim().parse::<usize>().unwrap());
                if data.len() >= end + 4 + length {
                    return head.split_whitespace().nth(1).and_then(|s| s.parse().ok());
                }
            }
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(WAIT, read).await.expect("a response or a close within the bound")
}

/// Waits (bounded) until the server closes `stream`; how long that took.
async fn closed(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 1024];
    let eof = async {
        loop {
            if matches!(stream.read(&mut buf).await, Ok(0) | Err(_)) {
                return;
            }
        }
    };
    tokio::time::timeout(WAIT, eof).await.expect("the server closed the connection");
    started.elapsed()
}

/// A fresh connection's `GET /healthz` status.
async fn healthz(addr: &str) -> Option<u16> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(HEALTHZ).await.unwrap();
    read_response(&mut stream).await
}

#[tokio::test]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let server = Server::start_with(manifest(), &["--http-header-timeout", "1s"]).await;
    let mut clients = JoinSet::new();
    for _ in 0..20 {
        let addr = server.addr().to_owned();
        clients.spawn(async move { slow_headers(&addr, Duration::from_millis(200)).await });
    }
    while let Some(took) = clients.join_next().await {
        let took = took.unwrap();
        // Closed by the timeout, not by anything sooner: each byte arrived well within it.
        assert!(took >= Duration::from_millis(900), "closed after {took:?}, before the 1 s timeout");
    }
    assert_eq!(healthz(server.addr()).await, Some(200), "a prompt request is still served");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_at_its_own_timeout() {
    // The keep-alive timeout is longer than the header timeout: an idle connection must be
    // kept for the former, so the two are really separate.
    let flags = ["--http-header-timeout", "1s", "--http-keepalive-timeout", "2s"];
    let server = Server::start_with(manifest(), &flags).await;
    let mut stream = TcpStream::connect(server.addr()).await.unwrap();
    for _ in 0..2 {
        stream.write_all(HEALTHZ).await.unwrap();
        assert_eq!(read_response(&mut stream).await, Some(200), "keep-alive serves request after request");
    }
    let idle = closed(&mut stream).await;
    assert!(idle >= Duration::from_millis(1500), "an idle connection closed after {idle:?}, before its 2 s");
}

#[tokio::test]
async fn past_the_cap_of_unfinished_headers_the_oldest_are_closed_and_prompt_requests_served() {
    let flags = ["--http-max-incomplete", "20", "--http-header-timeout", "30s"];
    let server = Server::start_with(manifest(), &flags).await;
    let mut slow = Vec::new();
    for _ in 0..40 {
        let mut stream = TcpStream::connect(server.addr()).await.unwrap();
        stream.write_all(PARTIAL).await.unwrap();
        slow.push(stream);
    }
    // The twenty that waited longest made room for the twenty after them.
    let mut oldest: JoinSet<Duration> = JoinSet::new();
    for mut stream in slow.drain(..20) {
        oldest.spawn(async move { closed(&mut stream).await });
    }
    while let Some(result) = oldest.join_next().await {
        result.unwrap();
    }
    // A prompt request gets in (making room by closing the oldest unfinished one) ...
    assert_eq!(healthz(server.addr()).await, Some(200));
    // ... and the newest slow ones were kept: they finish their requests and are answered.
    for stream in slow.iter_mut().skip(10) {
        stream.write_all(b"1\r\n\r\n").await.unwrap();
        assert_eq!(read_response(stream).await, Some(200), "a kept connection finishes its request");
    }
}

#[tokio::test]
async fn three_hundred_connections_with_huge_unfinished_headers_stay_within_a_memory_budget() {
    let server = Server::start_with(manifest(), &["--http-header-timeout", "30s"]).await;
    let baseline = server.rss_mib();
    let pad = std::sync::Arc::new(vec![b'a'; 300 * 1024]);
    let mut clients = JoinSet::new();
    for _ in 0..300 {
        let (addr, pad) = (server.addr().to_owned(), pad.clone());
        clients.spawn(async move {
            let mut stream = TcpStream::connect(&addr).await.unwrap();
            // The server may answer and close before all of it is written.
            let _ = stream.write_all(PARTIAL).await;
            let _ = tokio::time::timeout(WAIT, stream.write_all(&pad)).await;
            stream
        });
    }
    let mut streams = Vec::new();
    while let Some(stream) = clients.join_next().await {
        streams.push(stream.unwrap());
    }
    // The server reads what the kernel buffered at its own pace: watch its memory for a
    // while (bounded) and keep the peak.
    let mut peak = server.rss_mib();
    let watch_until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < watch_until {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peak = peak.max(server.rss_mib());
    }
    println!("300 huge unfinished headers: peak RSS {peak:.1} MiB");
    assert!(peak - baseline <= 40.0, "RSS grew {:.1} MiB, over the 40 MiB budget", peak - baseline);
    assert_eq!(healthz(server.addr()).await, Some(200), "a prompt request is still served");
    // Each got 431 (headers over the size limit), or at least its connection closed.
    let mut refused = 0;
    for mut stream in streams {
        if read_response(&mut stream).await == Some(431) {
            refused += 1;
        }
    }
    assert!(refused > 0, "no connection was answered 431 for its oversized headers");
    server.assert_within("300 huge unfinished headers", baseline, 40.0);
}
