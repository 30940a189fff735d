//! A minimal keep-alive HTTP/1.1 JSON client for loopback addresses only, plain or over TLS,
//! used by the multi-process tests and the load generator to drive a running server.

use std::io;
use std::net::SocketAddr;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// The largest response body read.
const MAX_RESPONSE: usize = 16 * 1024 * 1024;

/// A byte stream the client speaks HTTP on: TCP, or TLS over TCP.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// One keep-alive connection to a server on a loopback address.
pub struct LoopbackClient {
    stream: BufReader<Box<dyn Connection>>,
    host: String,
}

impl std::fmt::Debug for LoopbackClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoopbackClient")
            .field("host", &self.host)
            .finish_non_exhaustive()
    }
}

/// A response: status and body.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> io::Result<serde_json::Value> {
        serde_json::from_slice(&self.body).map_err(io::Error::other)
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_owned())
}

impl LoopbackClient {
    /// Connects to `address`, which must be a loopback address.
    pub async fn connect(address: SocketAddr) -> io::Result<LoopbackClient> {
        let stream = Self::tcp(address).await?;
        Ok(LoopbackClient {
            stream: BufReader::new(Box::new(stream)),
            host: address.to_string(),
        })
    }

    /// Connects to `address`, which must be a loopback address, over TLS with `connector`,
    /// checking the server's certificate for `localhost`.
    pub async fn connect_tls(
        address: SocketAddr,
        connector: &TlsConnector,
    ) -> io::Result<LoopbackClient> {
        let stream = Self::tcp(address).await?;
        let stream = connector
            .connect(
                ServerName::try_from("localhost").map_err(io::Error::other)?,
                stream,
            )
            .await?;
        Ok(LoopbackClient {
            stream: BufReader::new(Box::new(stream)),
            host: address.to_string(),
        })
    }

    async fn tcp(address: SocketAddr) -> io::Result<TcpStream> {
        if !address.ip().is_loopback() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("`{address}` is not a loopback address"),
            ));
        }
        let stream = TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// Sends a request and reads the whole response.
    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        bearer: Option<&str>,
        json: Option<&serde_json::Value>,
    ) -> io::Result<Response> {
        let body = match json {
            Some(value) => serde_json::to_vec(value).map_err(io::Error::other)?,
            None => Vec::new(),
        };
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {}\r\n", self.host);
        if let Some(token) = bearer {
            head.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        if json.is_some() {
            head.push_str("Content-Type: application/json\r\n");
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut message = head.into_bytes();
        message.extend_from_slice(&body);
        let stream = self.stream.get_mut();
        stream.write_all(&message).await?;
        stream.flush().await?;
        self.read_response().await
    }

    async fn read_response(&mut self) -> io::Result<Response> {
        let mut line = String::new();
        if self.stream.read_line(&mut line).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status = line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse::<u16>().ok())
            .ok_or_else(|| invalid("malformed status line"))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(invalid("headers end early"));
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                let value = value.trim();
                if name.eq_ignore_ascii_case("content-length") {
                    length = Some(
                        value
                            .parse::<usize>()
                            .map_err(|_| invalid("bad content-length"))?,
                    );
                } else if name.eq_ignore_ascii_case("transfer-encoding")
                    && value.eq_ignore_ascii_case("chunked")
                {
                    chunked = true;
                }
            }
        }
        let body = if chunked {
            self.read_chunked().await?
        } else {
            let length = length.unwrap_or(0);
            if length > MAX_RESPONSE {
                return Err(invalid("response too large"));
            }
            let mut body = vec![0u8; length];
            self.stream.read_exact(&mut body).await?;
            body
        };
        Ok(Response { status, body })
    }

    async fn read_chunked(&mut self) -> io::Result<Vec<u8>> {
        let mut body = Vec::new();
        let mut line = String::new();
        loop {
            line.clear();
            self.stream.read_line(&mut line).await?;
            let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                .map_err(|_| invalid("bad chunk size"))?;
            if body.len() + size > MAX_RESPONSE {
                return Err(invalid("response too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.stream.read_exact(&mut body[start..]).await?;
            line.clear();
            self.stream.read_line(&mut line).await?;
            if size == 0 {
                return Ok(body);
            }
        }
    }
}
