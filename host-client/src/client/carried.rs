//! Manual activation and return through a transport plugin: the request file of
//! [`Client::begin_manual_activation`] goes through a transport plugin, which turns it into what
//! the user carries to the vendor, and what the user brings back is decoded by the same plugin
//! into the response file, which is then loaded exactly as a response file is. The exchange rules
//! (pending requests, replay and order, the machine) are the files'.
//!
//! Two destinations are carried this way:
//!
//! - `text` (the shipped `transport-text`): a short block the user reads out, types or pastes at
//!   the vendor's page, for machines where no file can be moved;
//! - `file` (the shipped `transport-file`, a bundle's `files` plugin): a request file in the
//!   plugin's own format (`transport-file` armors the exchange file in base64 lines), which the
//!   vendor's server reads through the same plugin's server side.
//!
//! A plugin whose destination is not the one asked for is refused with
//! [`ClientError::NotText`] or [`ClientError::NotFile`], and nothing is remembered as pending
//! when the plugin fails.

use std::path::Path;

use chrono::{DateTime, Utc};
use ed25519_dalek::VerifyingKey;
use licet_plugin_host::{Destination, PluginHost, TransportPlugin, WireReply};

use super::{CheckReport, Client, ClientError};

/// A request as text, to be shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextBlock {
    /// What the block is, such as `activation request`.
    pub title: String,
    /// The block: lines of text to read out, type or paste.
    pub text: String,
}

/// A request file a transport plugin made, to be written where the user chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRequest {
    /// The file name extension the plugin suggests, without the dot (`licreq`).
    pub extension: String,
    /// The file's bytes.
    pub bytes: Vec<u8>,
}

/// Loads the vendor-signed transport plugin in `dir` (such as `transport-text`) for text
/// activation; any signed transport loads, and one that does not encode for text is refused when
/// it is used.
pub fn load_text_transport(
    dir: &Path,
    vendor_key: VerifyingKey,
) -> Result<TransportPlugin, ClientError> {
    let host = PluginHost::new(vendor_key)?;
    Ok(host.load_transport(dir)?)
}

/// The request file through `plugin`, as `take` accepts its destination; `refused` is the error
/// of a plugin whose destination `take` does not accept.
fn carry<T>(
    plugin: &TransportPlugin,
    file: String,
    take: impl FnOnce(Destination, Vec<u8>) -> Option<T>,
    refused: fn(String) -> ClientError,
) -> Result<T, ClientError> {
    let encoded = plugin.encode(file.as_bytes())?;
    take(encoded.destination, encoded.body).ok_or_else(|| refused(plugin.manifest().name.clone()))
}

fn to_block(plugin: &TransportPlugin, file: String) -> Result<TextBlock, ClientError> {
    let take = |destination, body| match destination {
        Destination::Text { title } => String::from_utf8(body)
            .ok()
            .map(|text| TextBlock { title, text }),
        _ => None,
    };
    carry(plugin, file, take, ClientError::NotText)
}

fn to_file(plugin: &TransportPlugin, file: String) -> Result<FileRequest, ClientError> {
    let take = |destination, bytes| match destination {
        Destination::File { extension } => Some(FileRequest { extension, bytes }),
        _ => None,
    };
    carry(plugin, file, take, ClientError::NotFile)
}

/// The response file in what the user brought back (a typed block, a response file).
fn carried_back(plugin: &TransportPlugin, body: &[u8]) -> Result<Vec<u8>, ClientError> {
    Ok(plugin.decode(&WireReply {
        status: 0,
        body: body.to_vec(),
    })?)
}

impl Client {
    /// Loads the transport plugin in `dir`, signed with this client's vendor key (see
    /// [`load_text_transport`]).
    pub fn text_transport(&self, dir: &Path) -> Result<TransportPlugin, ClientError> {
        load_text_transport(dir, self.vendor_key)
    }

    /// Makes an activation request for license `key` and `edition` as a text block through
    /// `plugin`, and remembers it as pending (as [`Client::begin_manual_activation`] does for the
    /// file). Nothing is remembered when the plugin fails.
    pub fn begin_text_activation(
        &self,
        plugin: &TransportPlugin,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<TextBlock, ClientError> {
        self.begin_activation_as(key, edition, now, |file| to_block(plugin, file))
    }

    /// Reads the activation response block the user typed or pasted: `plugin` turns it back into
    /// the response file, which [`Client::load_activation_response`] then loads. A block with a
    /// typo is refused by the plugin, naming the line.
    pub fn load_text_activation_response(
        &self,
        plugin: &TransportPlugin,
        block: &str,
        now: DateTime<Utc>,
    ) -> Result<CheckReport, ClientError> {
        let file = carried_back(plugin, block.as_bytes())?;
        self.load_activation_response(&file, now)
    }

    /// Makes a return request for the installed license as a text block and marks the license
    /// return-pending (see [`Client::begin_manual_return`]).
    pub fn begin_text_return(
        &self,
        plugin: &TransportPlugin,
        now: DateTime<Utc>,
    ) -> Result<TextBlock, ClientError> {
        self.begin_return_as(now, |file| to_block(plugin, file))
    }

    /// Reads the return response block the user typed or pasted and removes the license (see
    /// [`Client::load_return_response`]).
    pub fn load_text_return_response(
        &self,
        plugin: &TransportPlugin,
        block: &str,
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let file = carried_back(plugin, block.as_bytes())?;
        self.load_return_response(&file, now)
    }

    /// The bundle's `files` transport plugin, when the client was opened from a bundle that has
    /// one: the plugin manual request and response files go through. It is loaded from the
    /// bundle the first time it is asked for; one that does not load is an error.
    pub fn file_transport(&self) -> Result<Option<&TransportPlugin>, ClientError> {
        match self.bundle() {
            Some(bundle) => Ok(bundle.files()?),
            None => Ok(None),
        }
    }

    /// The activation request file this product's users carry: the bundle's `files` plugin's
    /// file when it has one ([`Client::begin_file_activation`]), else the exchange file
    /// ([`Client::begin_manual_activation`]).
    pub fn manual_activation_file(
        &self,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<u8>, ClientError> {
        match self.file_transport()? {
            Some(plugin) => Ok(self.begin_file_activation(plugin, key, edition, now)?.bytes),
            None => Ok(self
                .begin_manual_activation(key, edition, now)?
                .into_bytes()),
        }
    }

    /// Loads an activation response file as [`Client::manual_activation_file`] makes requests:
    /// through the bundle's `files` plugin when it has one.
    pub fn load_manual_activation_file(
        &self,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CheckReport, ClientError> {
        match self.file_transport()? {
            Some(plugin) => self.load_file_activation_response(plugin, bytes, now),
            None => self.load_activation_response(bytes, now),
        }
    }

    /// The return request file this product's users carry, as
    /// [`Client::manual_activation_file`].
    pub fn manual_return_file(&self, now: DateTime<Utc>) -> Result<Vec<u8>, ClientError> {
        match self.file_transport()? {
            Some(plugin) => Ok(self.begin_file_return(plugin, now)?.bytes),
            None => Ok(self.begin_manual_return(now)?.into_bytes()),
        }
    }

    /// Loads a return response file as [`Client::manual_return_file`] makes requests.
    pub fn load_manual_return_file(
        &self,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        match self.file_transport()? {
            Some(plugin) => self.load_file_return_response(plugin, bytes, now),
            None => self.load_return_response(bytes, now),
        }
    }

    /// Makes an activation request for license `key` and `edition` as a request file of
    /// `plugin`, a transport whose destination is `file` (a bundle's `files` plugin), and
    /// remembers it as pending (as [`Client::begin_manual_activation`] does for the exchange
    /// file). Nothing is remembered when the plugin fails or makes no file.
    pub fn begin_file_activation(
        &self,
        plugin: &TransportPlugin,
        key: &str,
        edition: &str,
        now: DateTime<Utc>,
    ) -> Result<FileRequest, ClientError> {
        self.begin_activation_as(key, edition, now, |file| to_file(plugin, file))
    }

    /// Reads an activation response file the vendor answered through `plugin`'s server side:
    /// `plugin` turns it back into the exchange response file, which
    /// [`Client::load_activation_response`] then loads. A file the plugin cannot read is refused
    /// by the plugin and changes nothing.
    pub fn load_file_activation_response(
        &self,
        plugin: &TransportPlugin,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<CheckReport, ClientError> {
        let file = carried_back(plugin, bytes)?;
        self.load_activation_response(&file, now)
    }

    /// Makes a return request for the installed license as a request file of `plugin` and marks
    /// the license return-pending (see [`Client::begin_manual_return`]).
    pub fn begin_file_return(
        &self,
        plugin: &TransportPlugin,
        now: DateTime<Utc>,
    ) -> Result<FileRequest, ClientError> {
        self.begin_return_as(now, |file| to_file(plugin, file))
    }

    /// Reads a return response file the vendor answered through `plugin`'s server side and
    /// removes the license (see [`Client::load_return_response`]).
    pub fn load_file_return_response(
        &self,
        plugin: &TransportPlugin,
        bytes: &[u8],
        now: DateTime<Utc>,
    ) -> Result<(), ClientError> {
        let file = carried_back(plugin, bytes)?;
        self.load_return_response(&file, now)
    }
}
