//! Signed product bundles: everything a product team ships with its application in one file.
//!
//! A bundle carries the product's policy, the plugins the client runs (each with its own
//! vendor-signed manifest), which plugin plays which role (the machine fingerprint, the dongle
//! check, online requests, request and response files, text blocks), the addresses of the
//! product's servers and, optionally, the server certificate the client pins. The vendor signs
//! the whole of it with the [`SignedKind::ProductBundle`] context, so the end user can swap none
//! of the parts: a bundle of another vendor, or changed by one byte, is refused before anything in
//! it is read.
//!
//! File layout: the magic `LICETBD1`, a big-endian `u32` length, that many bytes of canonical
//! content, then the 64-byte Ed25519 signature over the content. The content is, in order:
//! the product id, the policy's YAML text, the servers (a count, then strings), the pinned
//! certificate (absent 0, or 1 and its bytes), the roles (a count, then a role tag and a plugin
//! name each, in ascending tag order) and the plugins (a count, then in strictly ascending name
//! order: the name, the manifest bytes, the manifest's signature and the component's bytes).
//! Strings and byte strings are a big-endian `u32` length then the bytes, as in
//! [certificates](crate::certificate). A reader accepts exactly one byte string per bundle.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};

use crate::codec::{Reader, Writer};
use crate::signature::SignedKind;

#[cfg(test)]
mod tests;

/// The first bytes of every bundle file.
pub const BUNDLE_MAGIC: &[u8; 8] = b"LICETBD1";
/// The largest bundle a reader accepts.
pub const MAX_BUNDLE_BYTES: usize = 64 << 20;
/// The most plugins one bundle carries.
pub const MAX_PLUGINS: usize = 16;
/// The most server addresses one bundle names.
pub const MAX_SERVERS: usize = 16;
/// The longest server address, product id or plugin name.
pub const MAX_NAME_BYTES: usize = 1024;

const SIGNATURE_BYTES: usize = 64;

/// What a bundled plugin is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PluginRole {
    /// Normalizes and hashes the machine readings the host takes into the fingerprint.
    Fingerprint,
    /// Proves the presence of the product's USB dongle.
    Dongle,
    /// Carries online requests to the servers.
    Online,
    /// Writes request files and reads response files for manual activation and return.
    Files,
    /// Writes requests as text blocks a person carries, and reads the typed answers.
    Text,
}

impl PluginRole {
    /// Every role, in tag order.
    pub const ALL: [PluginRole; 5] = [
        PluginRole::Fingerprint,
        PluginRole::Dongle,
        PluginRole::Online,
        PluginRole::Files,
        PluginRole::Text,
    ];

    /// The role's name, as `licet bundle build --plugin ROLE=DIR` spells it.
    pub const fn name(self) -> &'static str {
        match self {
            PluginRole::Fingerprint => "fingerprint",
            PluginRole::Dongle => "dongle",
            PluginRole::Online => "online",
            PluginRole::Files => "files",
            PluginRole::Text => "text",
        }
    }

    /// The role named `name`.
    pub fn from_name(name: &str) -> Option<PluginRole> {
        PluginRole::ALL.into_iter().find(|role| role.name() == name)
    }

    const fn tag(self) -> u8 {
        match self {
            PluginRole::Fingerprint => 1,
            PluginRole::Dongle => 2,
            PluginRole::Online => 3,
            PluginRole::Files => 4,
            PluginRole::Text => 5,
        }
    }

    fn from_tag(tag: u8) -> Option<PluginRole> {
        PluginRole::ALL.into_iter().find(|role| role.tag() == tag)
    }
}

impl fmt::Display for PluginRole {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

/// One plugin as a bundle carries it: the files of its plugin directory.
#[derive(Clone, PartialEq, Eq)]
pub struct BundledPlugin {
    /// The exact bytes of its `plugin.json`.
    pub manifest: Vec<u8>,
    /// The vendor's signature over the manifest (the plugin-manifest context), 64 bytes.
    pub manifest_signature: Vec<u8>,
    /// The component's bytes.
    pub wasm: Vec<u8>,
}

impl fmt::Debug for BundledPlugin {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("BundledPlugin")
            .field("manifest_bytes", &self.manifest.len())
            .field("wasm_bytes", &self.wasm.len())
            .finish()
    }
}

/// The contents of a product bundle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductBundle {
    /// The product id; the policy must be this product's.
    pub product: String,
    /// The policy's YAML text.
    pub policy_yaml: String,
    /// The product's server addresses, the preferred one first (`https://host:port`, or
    /// `HOST:PORT`).
    pub servers: Vec<String>,
    /// The server certificate (DER or PEM) the client pins instead of the public roots.
    pub server_certificate: Option<Vec<u8>>,
    /// Which bundled plugin plays each role.
    pub roles: BTreeMap<PluginRole, String>,
    /// The bundled plugins, by name.
    pub plugins: BTreeMap<String, BundledPlugin>,
}

/// Why a bundle is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// The bytes are not a product bundle.
    #[error("not a Licet product bundle")]
    NotABundle,
    /// The bundle is larger than any bundle may be.
    #[error("the product bundle is larger than {MAX_BUNDLE_BYTES} bytes")]
    TooLarge,
    /// The bundle ends early, or has bytes after its signature.
    #[error("the product bundle is truncated or has trailing bytes")]
    Truncated,
    /// The signature is not the vendor's over these bytes: another vendor's bundle, or a changed
    /// one.
    #[error("the product bundle is not signed by this vendor, or was changed after signing")]
    BadSignature,
    /// The signed content is not canonical.
    #[error("the product bundle's content is malformed: {0}")]
    Malformed(String),
    /// A role names a plugin the bundle does not carry.
    #[error(
        "the product bundle's {role} role names the plugin `{plugin}`, which it does not carry"
    )]
    MissingPlugin {
        /// The role.
        role: PluginRole,
        /// The plugin it names.
        plugin: String,
    },
}

impl ProductBundle {
    /// The canonical content bytes, the ones the vendor signs.
    pub fn content_bytes(&self) -> Vec<u8> {
        let mut out = Writer(Vec::new());
        out.string(&self.product);
        out.string(&self.policy_yaml);
        out.len(self.servers.len());
        for server in &self.servers {
            out.string(server);
        }
        match &self.server_certificate {
            Some(certificate) => {
                out.u8(1);
                byte_string(&mut out, certificate);
            }
            None => out.u8(0),
        }
        out.len(self.roles.len());
        for (role, plugin) in &self.roles {
            out.u8(role.tag());
            out.string(plugin);
        }
        out.len(self.plugins.len());
        for (name, plugin) in &self.plugins {
            out.string(name);
            byte_string(&mut out, &plugin.manifest);
            byte_string(&mut out, &plugin.manifest_signature);
            byte_string(&mut out, &plugin.wasm);
        }
        out.0
    }

    /// Checks what a bundle must satisfy beyond its encoding: sizes, names and that every role
    /// names a plugin it carries. [`ProductBundle::sign`] and [`ProductBundle::verify`] both
    /// call it.
    pub fn check(&self) -> Result<(), BundleError> {
        let malformed = |what: &str| Err(BundleError::Malformed(what.to_owned()));
        if self.product.is_empty() || self.product.len() > MAX_NAME_BYTES {
            return malformed("the product id is empty or too long");
        }
        if self.servers.len() > MAX_SERVERS {
            return malformed("too many servers");
        }
        if self
            .servers
            .iter()
            .any(|server| server.is_empty() || server.len() > MAX_NAME_BYTES)
        {
            return malformed("a server address is empty or too long");
        }
        if self.plugins.len() > MAX_PLUGINS {
            return malformed("too many plugins");
        }
        if self
            .plugins
            .keys()
            .any(|name| name.is_empty() || name.len() > MAX_NAME_BYTES)
        {
            return malformed("a plugin name is empty or too long");
        }
        if self
            .plugins
            .values()
            .any(|plugin| plugin.manifest_signature.len() != SIGNATURE_BYTES)
        {
            return malformed("a plugin's manifest signature is not 64 bytes");
        }
        for (role, plugin) in &self.roles {
            if !self.plugins.contains_key(plugin) {
                return Err(BundleError::MissingPlugin {
                    role: *role,
                    plugin: plugin.clone(),
                });
            }
        }
        Ok(())
    }

    /// The bundle file: the magic, the content and the vendor's signature over it.
    pub fn sign(&self, vendor_key: &SigningKey) -> Result<Vec<u8>, BundleError> {
        self.check()?;
        let content = self.content_bytes();
        if content.len() + BUNDLE_MAGIC.len() + 4 + SIGNATURE_BYTES > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let signature = SignedKind::ProductBundle.sign(&content, vendor_key);
        Ok(seal(&content, &signature))
    }

    /// Reads a bundle file: the signature is verified over the exact content bytes before any of
    /// them is parsed, then the content must be canonical and every role must name a plugin the
    /// bundle carries.
    pub fn verify(bytes: &[u8], vendor_key: &VerifyingKey) -> Result<ProductBundle, BundleError> {
        if bytes.len() > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge);
        }
        let rest = bytes
            .strip_prefix(BUNDLE_MAGIC.as_slice())
            .ok_or(BundleError::NotABundle)?;
        let (length, rest) = rest.split_at_checked(4).ok_or(BundleError::Truncated)?;
        let length = u32::from_be_bytes([length[0], length[1], length[2], length[3]]);
        let length = usize::try_from(length).map_err(|_| BundleError::Truncated)?;
        let (content, signature) = rest
            .split_at_checked(length)
            .ok_or(BundleError::Truncated)?;
        if signature.len() != SIGNATURE_BYTES {
            return Err(BundleError::Truncated);
        }
        let signature = Signature::from_slice(signature).map_err(|_| BundleError::BadSignature)?;
        SignedKind::ProductBundle
            .verify(content, &signature, vendor_key)
            .map_err(|_| BundleError::BadSignature)?;
        let bundle = parse_content(content)?;
        bundle.check()?;
        Ok(bundle)
    }

    /// The plugin that plays `role`, with its name, if the bundle has one.
    pub fn plugin_for(&self, role: PluginRole) -> Option<(&str, &BundledPlugin)> {
        let name = self.roles.get(&role)?;
        let plugin = self.plugins.get(name)?;
        Some((name.as_str(), plugin))
    }
}

fn byte_string(out: &mut Writer, bytes: &[u8]) {
    out.len(bytes.len());
    out.bytes(bytes);
}

/// The bundle file of `content` and its `signature`: the magic, the content's length, the content
/// and the signature. [`ProductBundle::sign`] makes its files with it.
pub fn seal(content: &[u8], signature: &Signature) -> Vec<u8> {
    let signature = signature.to_bytes();
    let mut file = Vec::with_capacity(BUNDLE_MAGIC.len() + 4 + content.len() + signature.len());
    file.extend_from_slice(BUNDLE_MAGIC);
    file.extend_from_slice(
        &u32::try_from(content.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    file.extend_from_slice(content);
    file.extend_from_slice(&signature);
    file
}

fn parse_content(content: &[u8]) -> Result<ProductBundle, BundleError> {
    let malformed =
        |error: crate::certificate::CertificateError| BundleError::Malformed(error.to_string());
    let mut input = Reader(content);
    let product = input.string("product").map_err(malformed)?;
    let policy_yaml = input.string("policy").map_err(malformed)?;
    let server_count = count(&mut input, MAX_SERVERS, "servers")?;
    let mut servers = Vec::with_capacity(server_count);
    for _ in 0..server_count {
        servers.push(input.string("servers").map_err(malformed)?);
    }
    let server_certificate = match input.u8().map_err(malformed)? {
        0 => None,
        1 => Some(read_bytes(&mut input)?),
        tag => {
            return Err(BundleError::Malformed(format!(
                "invalid value `{tag}` for `server_certificate`"
            )))
        }
    };
    let role_count = count(&mut input, PluginRole::ALL.len(), "roles")?;
    let mut roles = BTreeMap::new();
    for _ in 0..role_count {
        let tag = input.u8().map_err(malformed)?;
        let role = PluginRole::from_tag(tag)
            .ok_or_else(|| BundleError::Malformed(format!("unknown plugin role `{tag}`")))?;
        if roles
            .last_key_value()
            .is_some_and(|(last, _)| *last >= role)
        {
            return Err(BundleError::Malformed(
                "roles are not in ascending order".to_owned(),
            ));
        }
        roles.insert(role, input.string("roles").map_err(malformed)?);
    }
    let plugin_count = count(&mut input, MAX_PLUGINS, "plugins")?;
    let mut plugins: BTreeMap<String, BundledPlugin> = BTreeMap::new();
    for _ in 0..plugin_count {
        let name = input.string("plugins").map_err(malformed)?;
        if plugins
            .last_key_value()
            .is_some_and(|(last, _)| *last >= name)
        {
            return Err(BundleError::Malformed(
                "plugins are not in strictly ascending name order".to_owned(),
            ));
        }
        let plugin = BundledPlugin {
            manifest: read_bytes(&mut input)?,
            manifest_signature: read_bytes(&mut input)?,
            wasm: read_bytes(&mut input)?,
        };
        plugins.insert(name, plugin);
    }
    if !input.0.is_empty() {
        return Err(BundleError::Malformed(
            "bytes after the last plugin".to_owned(),
        ));
    }
    Ok(ProductBundle {
        product,
        policy_yaml,
        servers,
        server_certificate,
        roles,
        plugins,
    })
}

fn count(input: &mut Reader<'_>, limit: usize, field: &str) -> Result<usize, BundleError> {
    let count = input
        .array::<4>()
        .map(u32::from_be_bytes)
        .map_err(|error| BundleError::Malformed(error.to_string()))?;
    usize::try_from(count)
        .ok()
        .filter(|count| *count <= limit)
        .ok_or_else(|| BundleError::Malformed(format!("too many {field}")))
}

fn read_bytes(input: &mut Reader<'_>) -> Result<Vec<u8>, BundleError> {
    let malformed =
        |error: crate::certificate::CertificateError| BundleError::Malformed(error.to_string());
    let len = input.len().map_err(malformed)?;
    Ok(input.take(len).map_err(malformed)?.to_vec())
}
