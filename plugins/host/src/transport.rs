//! Transport plugins: the plugin encodes and decodes, the host moves the bytes.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use crate::bindings::transport::exports::licet::plugin::wire;
use crate::bindings::transport::licet::plugin::types::PluginError as GuestError;
use crate::bindings::transport::{Transport, TransportPre};
use crate::error::PluginError;
use crate::http::{HttpAgent, HttpRequest, HttpSettings, ServerUrl};
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

/// The host's [`HttpClient`]: HTTPS by default (or plain HTTP to loopback, or anywhere when
/// [`HttpSettings::allow_plain_http`] is set), over the shared [`HttpAgent`]; see
/// [`crate::http`] for addresses, trust, timeouts and limits.
#[derive(Debug, Clone)]
pub struct HttpsClient {
    agent: HttpAgent,
}

impl Default for HttpsClient {
    fn default() -> HttpsClient {
        HttpsClient::new(HttpSettings::default())
    }
}

impl HttpsClient {
    /// A client with `settings`.
    pub fn new(settings: HttpSettings) -> HttpsClient {
        HttpsClient {
            agent: HttpAgent::new(settings),
        }
    }
}

impl HttpClient for HttpsClient {
    fn post(&self, url: &str, content_type: &str, body: &[u8]) -> Result<WireReply, PluginError> {
        // The plugin names one URL: its origin is the server, its path the request's path.
        let server = ServerUrl::parse(url)?;
        let path = match server.prefix() {
            "" => "/",
            prefix => prefix,
        };
        let answer = self.agent.send(
            &server.origin(),
            &HttpRequest {
                method: "POST",
                path,
                body: Some((content_type, body)),
                bearer: None,
            },
        )?;
        Ok(WireReply {
            status: answer.status,
            body: answer.body,
        })
    }
}
