//! Manual activation and return by text blocks, for machines where no file can be moved: the
//! request file of [`Client::begin_manual_activation`] goes through a transport plugin whose
//! destination is `text` (the shipped `transport-text`), which turns it into a short block the user
//! reads out, types or pastes at the vendor's page; the response block the user types back is
//! decoded by the same plugin into the response file, which is then loaded exactly as a response
//! file is. The exchange rules (pending requests, replay and order, the machine) are the files'.

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

fn to_block(plugin: &TransportPlugin, file: String) -> Result<TextBlock, ClientError> {
    let encoded = plugin.encode(file.as_bytes())?;
    let plugin_name = || plugin.manifest().name.clone();
    let Destination::Text { title } = encoded.destination else {
        return Err(ClientError::NotText(plugin_name()));
    };
    let text = String::from_utf8(encoded.body).map_err(|_| ClientError::NotText(plugin_name()))?;
    Ok(TextBlock { title, text })
}

fn from_block(plugin: &TransportPlugin, block: &str) -> Result<Vec<u8>, ClientError> {
    Ok(plugin.decode(&WireReply {
        status: 0,
        body: block.as_bytes().to_vec(),
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
        let file = from_block(plugin, block)?;
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
        let file = from_block(plugin, block)?;
        self.load_return_response(&file, now)
    }
}
