//! Transport plugins: the plugin encodes and decodes, the host moves the bytes.

use std::fmt;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::bindings::transport::exports::licet::plugin::wire;
use crate::bindings::transport::licet::plugin::types::PluginError as GuestError;
use crate::bindings::transport::{Transport, TransportPre};
use crate::error::PluginError;
use crate::manifest::Manifest;
use crate::runtime::{CallState, Runtime, Warm};

/// Where the host should deliver an encoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// An HTTP POST to this URL, one the manifest allows.
    HttpPost {
        /// The URL.
        url: String,
    },
    /// A request file for manual transfer; the host picks the path.
    File {
        /// The file name extension the plugin suggests, such as `licreq`.
        extension: String,
    },
}

/// An encoded request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireRequest {
    /// Where it goes.
    pub destination: Destination,
    /// The media type of `body`.
    pub content_type: String,
    /// The bytes to send or write.
    pub body: Vec<u8>,
}

/// What came back: an HTTP status (`status`, 0 for files) and the bytes received (`body`). It is
/// the interface's own `wire-reply` record, so a reply passes to the plugin without being copied
/// first.
pub use crate::bindings::transport::exports::licet::plugin::wire::WireReply;

/// A loaded transport plugin.
pub struct TransportPlugin {
    runtime: Arc<Runtime>,
    manifest: Manifest,
    config: Vec<(String, String)>,
    pre: TransportPre<CallState>,
}

impl fmt::Debug for TransportPlugin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TransportPlugin")
            .field("manifest", &self.manifest)
            .finish_non_exhaustive()
    }
}

fn guest_error(plugin: &str, error: GuestError) -> PluginError {
    PluginError::Plugin {
        plugin: plugin.to_string(),
        code: error.code,
        message: error.message,
    }
}

impl TransportPlugin {
    pub(crate) fn new(
        runtime: Arc<Runtime>,
        manifest: Manifest,
        pre: TransportPre<CallState>,
    ) -> TransportPlugin {
        TransportPlugin {
            runtime,
            config: manifest.config_pairs(),
            manifest,
            pre,
        }
    }

    /// The plugin's signed manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    fn name(&self) -> &str {
        &self.manifest.name
    }

    /// Encodes `payload` for the wire. An HTTP destination outside the manifest's `allow.urls` is
    /// refused.
    pub fn encode(&self, payload: &[u8]) -> Result<WireRequest, PluginError> {
        let mut store = self.runtime.store(&self.manifest, None);
        let encoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .licet_plugin_wire()
                .call_encode(store, &self.config, payload)
        })?;
        self.finish_encode(encoded)
    }

    /// Checks what the plugin encoded: its size, and that an HTTP destination is allowed.
    fn finish_encode(
        &self,
        encoded: Result<wire::WireRequest, GuestError>,
    ) -> Result<WireRequest, PluginError> {
        let request = encoded.map_err(|error| guest_error(self.name(), error))?;
        let destination = match request.destination {
            wire::Destination::HttpPost(url) => Destination::HttpPost { url },
            wire::Destination::File(extension) => Destination::File { extension },
        };
        let label_len = match &destination {
            Destination::HttpPost { url } => url.len(),
            Destination::File { extension } => extension.len(),
        };
        self.runtime.check_size(
            self.name(),
            "an encoded request",
            request.body.len() + request.content_type.len() + label_len,
        )?;
        if let Destination::HttpPost { url } = &destination {
            if !self.manifest.allows_url(url) {
                return Err(PluginError::NotAllowed {
                    plugin: self.name().to_string(),
                    what: format!("URL `{url}`"),
                });
            }
        }
        Ok(WireRequest {
            destination,
            content_type: request.content_type,
            body: request.body,
        })
    }

    /// Decodes a reply into the payload bytes for the host's verifier.
    pub fn decode(&self, reply: &WireReply) -> Result<Vec<u8>, PluginError> {
        let mut store = self.runtime.store(&self.manifest, None);
        let decoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .licet_plugin_wire()
                .call_decode(store, &self.config, reply)
        })?;
        self.finish_decode(decoded)
    }

    fn finish_decode(&self, decoded: Result<Vec<u8>, GuestError>) -> Result<Vec<u8>, PluginError> {
        let payload = decoded.map_err(|error| guest_error(self.name(), error))?;
        self.runtime
            .check_size(self.name(), "a decoded reply", payload.len())?;
        Ok(payload)
    }

    /// An instance kept warm for repeated calls (a host that encodes and decodes many
    /// requests). Each call gets the full fuel and a fresh deadline again, and the plugin's
    /// memory carries over from one successful call to the next; after a failed call the
    /// instance is unusable and a new one must be made. It holds one of the host's
    /// [`crate::Limits::concurrent_calls`] instance slots while it lives.
    pub fn warm_instance(&self) -> Result<WarmTransport<'_>, PluginError> {
        let warm = Warm::new(&self.runtime, &self.manifest, |store| {
            self.pre.instantiate(store)
        })?;
        Ok(WarmTransport { plugin: self, warm })
    }

    /// Encodes `payload`, posts it with `client` and decodes the reply.
    pub fn exchange_http(
        &self,
        client: &dyn HttpClient,
        payload: &[u8],
    ) -> Result<Vec<u8>, PluginError> {
        let request = self.encode(payload)?;
        let Destination::HttpPost { url } = &request.destination else {
            return Err(PluginError::Transport(format!(
                "plugin `{}` does not encode for HTTP",
                self.name()
            )));
        };
        let reply = client.post(url, &request.content_type, &request.body)?;
        self.decode(&reply)
    }

    /// Encodes `payload` into a request file at `path`, which the host chooses.
    pub fn write_request_file(&self, payload: &[u8], path: &Path) -> Result<(), PluginError> {
        let request = self.encode(payload)?;
        if !matches!(request.destination, Destination::File { .. }) {
            return Err(PluginError::Transport(format!(
                "plugin `{}` does not encode request files",
                self.name()
            )));
        }
        std::fs::write(path, &request.body).map_err(|source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        })
    }

    /// Reads and decodes the response file at `path`; files larger than the host's limit on
    /// plugin payloads are refused unread.
    pub fn read_response_file(&self, path: &Path) -> Result<Vec<u8>, PluginError> {
        let io = |source| PluginError::Io {
            path: path.to_path_buf(),
            source,
        };
        let limit = self.runtime.limits().max_guest_bytes;
        let mut body = Vec::new();
        std::fs::File::open(path)
            .map_err(io)?
            .take(limit as u64 + 1)
            .read_to_end(&mut body)
            .map_err(io)?;
        if body.len() > limit {
            return Err(PluginError::Transport(format!(
                "response file `{}` is larger than {limit} bytes",
                path.display()
            )));
        }
        self.decode(&WireReply { status: 0, body })
    }
}

/// A transport instance kept for repeated calls; see [`TransportPlugin::warm_instance`].
pub struct WarmTransport<'a> {
    plugin: &'a TransportPlugin,
    warm: Warm<Transport>,
}

impl fmt::Debug for WarmTransport<'_> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("WarmTransport")
            .field("plugin", &self.plugin.manifest.name)
            .field("failed", &self.warm.failed())
            .finish_non_exhaustive()
    }
}

impl WarmTransport<'_> {
    /// Like [`TransportPlugin::encode`], in this instance.
    pub fn encode(&mut self, payload: &[u8]) -> Result<WireRequest, PluginError> {
        let plugin = self.plugin;
        let encoded = self
            .warm
            .call(&plugin.runtime, plugin.name(), |bindings, store| {
                bindings
                    .licet_plugin_wire()
                    .call_encode(store, &plugin.config, payload)
            })?;
        plugin.finish_encode(encoded)
    }

    /// Like [`TransportPlugin::decode`], in this instance.
    pub fn decode(&mut self, reply: &WireReply) -> Result<Vec<u8>, PluginError> {
        let plugin = self.plugin;
        let decoded = self
            .warm
            .call(&plugin.runtime, plugin.name(), |bindings, store| {
                bindings
                    .licet_plugin_wire()
                    .call_decode(store, &plugin.config, reply)
            })?;
        plugin.finish_decode(decoded)
    }
}

/// Sends HTTP POSTs for transports. Hosts with an HTTP stack (TLS, proxies) implement it; the
/// plugin never sees the network.
pub trait HttpClient {
    /// Posts `body` to `url` and returns the status and body of the answer.
    fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<WireReply, PluginError>;
}

/// A minimal HTTP/1.1 client over `std::net` for `http://` URLs on loopback addresses only (a
/// license server on the same machine, tests). Anything else needs a TLS-capable [`HttpClient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopbackHttpClient {
    /// Connect, read and write timeout.
    pub timeout: Duration,
    /// The largest reply accepted.
    pub max_reply_bytes: usize,
}

impl Default for LoopbackHttpClient {
    fn default() -> LoopbackHttpClient {
        LoopbackHttpClient {
            timeout: Duration::from_secs(10),
            max_reply_bytes: 1 << 20,
        }
    }
}

fn transport_error(message: impl Into<String>) -> PluginError {
    PluginError::Transport(message.into())
}

/// Splits `http://host:port/path` into the socket address and the path.
fn loopback_target(url: &str) -> Result<(SocketAddr, String, String), PluginError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| transport_error(format!("`{url}` is not an http:// URL")))?;
    let (authority, path) = match rest.find('/') {
        Some(index) => (&rest[..index], &rest[index..]),
        None => (rest, "/"),
    };
    if authority.contains('@') || authority.is_empty() {
        return Err(transport_error(format!("`{url}` has no plain host")));
    }
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.is_empty() && port.bytes().all(|byte| byte.is_ascii_digit()))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let address = with_port
        .to_socket_addrs()
        .map_err(|error| transport_error(format!("`{url}`: {error}")))?
        .find(|address| address.ip().is_loopback())
        .ok_or_else(|| {
            transport_error(format!(
                "`{url}` is not on this machine; plain HTTP is for loopback only"
            ))
        })?;
    Ok((address, authority.to_string(), path.to_string()))
}

fn parse_response(raw: &[u8]) -> Result<WireReply, PluginError> {
    let malformed = || transport_error("the server's answer is not HTTP/1.1");
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .ok_or_else(malformed)?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| malformed())?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(malformed)?;
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed());
    }
    let status: u16 = parts
        .next()
        .and_then(|code| code.parse().ok())
        .ok_or_else(malformed)?;
    let mut content_length = None;
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(malformed)?;
        let name = name.trim().to_ascii_lowercase();
        if name == "transfer-encoding" {
            return Err(transport_error("chunked answers are not supported"));
        }
        if name == "content-length" {
            content_length = Some(value.trim().parse::<usize>().map_err(|_| malformed())?);
        }
    }
    let body = &raw[split + 4..];
    let body = match content_length {
        Some(length) if length <= body.len() => &body[..length],
        Some(_) => return Err(transport_error("the server's answer was cut short")),
        None => body,
    };
    Ok(WireReply {
        status,
        body: body.to_vec(),
    })
}

impl HttpClient for LoopbackHttpClient {
    fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<WireReply, PluginError> {
        let (address, host, path) = loopback_target(url)?;
        if content_type.contains(['\r', '\n']) || path.contains(['\r', '\n', ' ']) {
            return Err(transport_error("the request has a malformed header"));
        }
        let io = |error: std::io::Error| transport_error(format!("`{url}`: {error}"));
        let mut stream = TcpStream::connect_timeout(&address, self.timeout).map_err(io)?;
        stream.set_read_timeout(Some(self.timeout)).map_err(io)?;
        stream.set_write_timeout(Some(self.timeout)).map_err(io)?;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: {content_type}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).map_err(io)?;
        stream.write_all(body).map_err(io)?;
        let head_allowance = 16 << 10;
        let limit = self.max_reply_bytes + head_allowance;
        let mut raw = Vec::new();
        (&mut stream)
            .take(limit as u64 + 1)
            .read_to_end(&mut raw)
            .map_err(io)?;
        if raw.len() > limit {
            return Err(transport_error(format!(
                "`{url}` answered with more than {} bytes",
                self.max_reply_bytes
            )));
        }
        parse_response(&raw)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn only_loopback_http_is_spoken() {
        assert!(loopback_target("http://127.0.0.1:8080/activate").is_ok());
        for url in [
            "https://127.0.0.1/",
            "http://192.0.2.1:80/",
            "http://user@127.0.0.1/",
        ] {
            assert!(
                matches!(loopback_target(url), Err(PluginError::Transport(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn responses_are_parsed_and_truncation_is_refused() {
        let reply =
            parse_response(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nokEXTRA").unwrap();
        assert_eq!(reply.status, 201);
        assert_eq!(reply.body, b"ok");
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nok").is_err());
        assert!(parse_response(b"SSH-2.0\r\n\r\n").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok")
                .is_err()
        );
    }
}
