//! A minimal HTTP/1.1 client for publishing: each publisher owns one keep-alive connection
//! and writes each request in one syscall. A general client (pools, header maps, a task per
//! request) spent more CPU than the servers it measured, on the same two cores.

use std::net::SocketAddr;

use anyhow::Context;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// One request: always a JSON POST.
pub(crate) struct Post {
    pub(crate) path: String,
    pub(crate) bearer: Option<String>,
    pub(crate) body: String,
}

/// A keep-alive connection to the server under test.
pub(crate) struct Connection {
    addr: SocketAddr,
    stream: Option<BufReader<TcpStream>>,
    line: String,
}

impl Connection {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        Self { addr, stream: None, line: String::new() }
    }

    /// Sends `post` and reads the whole response; returns its status.
    pub(crate) async fn send(&mut self, post: &Post) -> anyhow::Result<u16> {
        Ok(self.exchange(post).await?.0)
    }

    /// Sends `post`; the response's status and body. A connection the server closed is
    /// reopened once.
    pub(crate) async fn exchange(&mut self, post: &Post) -> anyhow::Result<(u16, Vec<u8>)> {
        let auth = post.bearer.as_ref().map(|key| format!("Authorization: Bearer {key}\r\n")).unwrap_or_default();
        let request = format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n{auth}Content-Length: {}\r\n\r\n{}",
            post.path,
            self.addr,
            post.body.len(),
            post.body
        );
        match self.once(request.as_bytes()).await {
            Ok(response) => Ok(response),
            Err(_) => {
                self.stream = None;
                self.once(request.as_bytes()).await
            }
        }
    }

    async fn once(&mut self, request: &[u8]) -> anyhow::Result<(u16, Vec<u8>)> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr).await?;
            stream.set_nodelay(true)?;
            self.stream = Some(BufReader::new(stream));
        }
        let stream = self.stream.as_mut().context("connected above")?;
        stream.get_mut().write_all(request).await?;
        let (status, length, chunked) = read_head(stream, &mut self.line).await?;
        let mut body = Vec::new();
        if chunked {
            skip_chunks(stream, &mut self.line).await?;
        } else {
            body.resize(length, 0);
            stream.read_exact(&mut body).await?;
        }
        Ok((status, body))
    }
}

/// The status, Content-Length and whether the body is chunked.
async fn read_head(stream: &mut BufReader<TcpStream>, line: &mut String) -> anyhow::Result<(u16, usize, bool)> {
    line.clear();
    anyhow::ensure!(stream.read_line(line).await? > 0, "server closed the connection");
    let status = line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("bad status line")?;
    let (mut length, mut chunked) = (0, false);
    loop {
        line.clear();
        stream.read_line(line).await?;
        let header = line.trim_end();
        if header.is_empty() {
            return Ok((status, length, chunked));
        }
        let (name, value) = header.split_once(':').unwrap_or((header, ""));
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse()?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.trim().eq_ignore_ascii_case("chunked");
        }
    }
}

async fn skip_chunks(stream: &mut BufReader<TcpStream>, line: &mut String) -> anyhow::Result<()> {
    loop {
        line.clear();
        stream.read_line(line).await?;
        let size = usize::from_str_radix(line.trim(), 16)?;
        let mut chunk = vec![0; size + 2]; // the chunk and its CRLF
        stream.read_exact(&mut chunk).await?;
        if size == 0 {
            return Ok(());
        }
    }
}
