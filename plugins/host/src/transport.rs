//! Transport plugins: the plugin encodes and decodes, the host moves the bytes. The client host
//! calls the `wire` side (encode a request, decode the reply), the server host the `accept` side
//! (decode the arriving request, encode the answer), which plugins built against
//! `licet:plugin@0.1.0` do not have.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use wasmtime::Store;

use crate::bindings::transport::exports::licet::plugin::{accept, wire};
use crate::bindings::transport::licet::plugin::types::PluginError as GuestError;
use crate::bindings::transport::{Transport, TransportPre};
use crate::bindings::v0_1::transport as v0_1;
use crate::call_state::CallState;
use crate::error::PluginError;
use crate::http::{HttpAgent, HttpRequest, HttpSettings, ServerUrl};
use crate::manifest::{Manifest, WitVersion};
use crate::runtime::{Runtime, Warm};

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
    /// Text for a person to carry (read out, typed or pasted at the server): the host shows the
    /// body, as UTF-8, under this title, and hands what the user enters back to
    /// [`TransportPlugin::decode`] with status 0. `licet:plugin@0.2.0` only.
    Text {
        /// A short title for the block, such as `activation request`.
        title: String,
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

/// What the server sends back for a transport's client side to decode: the media type and the
/// bytes of the HTTP body (or of the response file, or the text to show).
pub use crate::bindings::transport::exports::licet::plugin::accept::Answer;

/// A transport component ready to instantiate, of the interface version it was built against.
pub(crate) enum TransportPres {
    V0_1(v0_1::TransportPre<CallState>),
    V0_2(TransportPre<CallState>),
}

impl TransportPres {
    fn instantiate(&self, store: &mut Store<CallState>) -> wasmtime::Result<Instance> {
        Ok(match self {
            TransportPres::V0_1(pre) => Instance::V0_1(pre.instantiate(store)?),
            TransportPres::V0_2(pre) => Instance::V0_2(pre.instantiate(store)?),
        })
    }
}

/// An instantiated transport. A 0.1.0 instance's values are converted into the 0.2.0 types
/// here, so the rest of the host knows one set of types.
enum Instance {
    V0_1(v0_1::Transport),
    V0_2(Transport),
}

type Guest<T> = wasmtime::Result<Result<T, GuestError>>;
/// The manifest's config as the generated bindings take it.
type Config = Vec<(String, String)>;

fn from_v0_1_error(error: v0_1::licet::plugin::types::PluginError) -> GuestError {
    GuestError {
        code: error.code,
        message: error.message,
    }
}

// The generated bindings take the config as `&Vec`.
#[allow(clippy::ptr_arg)]
impl Instance {
    fn encode(
        &self,
        store: &mut Store<CallState>,
        config: &Config,
        payload: &[u8],
    ) -> Guest<wire::WireRequest> {
        use v0_1::exports::licet::plugin::wire as old;
        match self {
            Instance::V0_2(instance) => instance
                .licet_plugin_wire()
                .call_encode(store, config, payload),
            Instance::V0_1(instance) => Ok(instance
                .licet_plugin_wire()
                .call_encode(store, config, payload)?
                .map(|request| wire::WireRequest {
                    destination: match request.destination {
                        old::Destination::HttpPost(url) => wire::Destination::HttpPost(url),
                        old::Destination::File(extension) => wire::Destination::File(extension),
                    },
                    content_type: request.content_type,
                    body: request.body,
                })
                .map_err(from_v0_1_error)),
        }
    }

    fn decode(
        &self,
        store: &mut Store<CallState>,
        config: &Config,
        reply: &WireReply,
    ) -> Guest<Vec<u8>> {
        match self {
            Instance::V0_2(instance) => instance
                .licet_plugin_wire()
                .call_decode(store, config, reply),
            Instance::V0_1(instance) => {
                let reply = v0_1::exports::licet::plugin::wire::WireReply {
                    status: reply.status,
                    body: reply.body.clone(),
                };
                Ok(instance
                    .licet_plugin_wire()
                    .call_decode(store, config, &reply)?
                    .map_err(from_v0_1_error))
            }
        }
    }

    /// The server side; [`TransportPlugin::server_side`] refuses a 0.1.0 plugin before it is
    /// instantiated.
    fn accept(&self) -> wasmtime::Result<&accept::Guest> {
        match self {
            Instance::V0_2(instance) => Ok(instance.licet_plugin_accept()),
            Instance::V0_1(_) => Err(wasmtime::Error::msg(
                "a licet:plugin@0.1.0 transport has no server side",
            )),
        }
    }
}

/// A loaded transport plugin.
pub struct TransportPlugin {
    runtime: Arc<Runtime>,
    manifest: Manifest,
    config: Vec<(String, String)>,
    pre: TransportPres,
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
        pre: TransportPres,
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

    /// The version of the `licet:plugin` interface the component was built against.
    pub fn wit_version(&self) -> WitVersion {
        match self.pre {
            TransportPres::V0_1(_) => WitVersion::V0_1,
            TransportPres::V0_2(_) => WitVersion::V0_2,
        }
    }

    /// Checks that the plugin has a server side ([`TransportPlugin::decode_request`],
    /// [`TransportPlugin::encode_answer`]): a plugin built against `licet:plugin@0.1.0` is
    /// [`PluginError::NoServerSide`]. A server checks this when it loads its transports.
    pub fn server_side(&self) -> Result<(), PluginError> {
        match self.wit_version() {
            WitVersion::V0_1 => Err(PluginError::NoServerSide {
                plugin: self.name().to_string(),
                version: WitVersion::V0_1.as_str(),
            }),
            _ => Ok(()),
        }
    }

    /// On the server: unwraps a request as it arrived (`content_type` and `body` of the HTTP
    /// request, an uploaded file or pasted text) into the payload the server decides on. A body
    /// larger than the host's limit on plugin payloads is refused unread.
    pub fn decode_request(&self, content_type: &str, body: &[u8]) -> Result<Vec<u8>, PluginError> {
        self.server_side()?;
        let limit = self.runtime.limits().max_guest_bytes;
        if body.len() + content_type.len() > limit {
            return Err(PluginError::Transport(format!(
                "an arriving request of {} bytes is larger than {limit} bytes",
                body.len() + content_type.len()
            )));
        }
        let arrival = accept::Arrival {
            content_type: content_type.to_string(),
            body: body.to_vec(),
        };
        let mut store = self.runtime.store(&self.manifest, None)?;
        let decoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .accept()?
                .call_decode_request(store, &self.config, &arrival)
        })?;
        let payload = decoded.map_err(|error| guest_error(self.name(), error))?;
        self.runtime
            .check_size(self.name(), "a decoded request", payload.len())?;
        Ok(payload)
    }

    /// On the server: wraps the answer payload for the wire, for the client side's
    /// [`TransportPlugin::decode`].
    pub fn encode_answer(&self, payload: &[u8]) -> Result<Answer, PluginError> {
        self.server_side()?;
        let mut store = self.runtime.store(&self.manifest, None)?;
        let encoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .accept()?
                .call_encode_answer(store, &self.config, payload)
        })?;
        let answer = encoded.map_err(|error| guest_error(self.name(), error))?;
        self.runtime.check_size(
            self.name(),
            "an encoded answer",
            answer.body.len() + answer.content_type.len(),
        )?;
        Ok(answer)
    }

    /// Encodes `payload` for the wire. An HTTP destination outside the manifest's `allow.urls` is
    /// refused.
    pub fn encode(&self, payload: &[u8]) -> Result<WireRequest, PluginError> {
        let mut store = self.runtime.store(&self.manifest, None)?;
        let encoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .encode(store, &self.config, payload)
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
            wire::Destination::Text(title) => Destination::Text { title },
        };
        let label_len = match &destination {
            Destination::HttpPost { url } => url.len(),
            Destination::File { extension } => extension.len(),
            Destination::Text { title } => title.len(),
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
        let mut store = self.runtime.store(&self.manifest, None)?;
        let decoded = self.runtime.run(self.name(), &mut store, |store| {
            self.pre
                .instantiate(&mut *store)?
                .decode(store, &self.config, reply)
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
    warm: Warm<Instance>,
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
                bindings.encode(store, &plugin.config, payload)
            })?;
        plugin.finish_encode(encoded)
    }

    /// Like [`TransportPlugin::decode`], in this instance.
    pub fn decode(&mut self, reply: &WireReply) -> Result<Vec<u8>, PluginError> {
        let plugin = self.plugin;
        let decoded = self
            .warm
            .call(&plugin.runtime, plugin.name(), |bindings, store| {
                bindings.decode(store, &plugin.config, reply)
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
