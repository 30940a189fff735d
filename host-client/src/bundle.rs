//! Product bundles on the client host: the vendor builds one, a product ships it.
//!
//! A bundle ([`licet_engine::bundle`]) is one vendor-signed file with the product's policy, the
//! plugins the client runs, the server addresses and an optional pinned server certificate.
//! [`build_bundle`] makes one from the loose files (the vendor's side, with the vendor secret);
//! [`Client::open_bundle`](crate::client::Client::open_bundle) opens one with the vendor's public
//! key compiled into the product, so that the end user can swap neither the policy nor a plugin
//! nor the server the client talks to.

use licet_engine::report::Report as _;
use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use licet_engine::bundle::{BundleError, BundledPlugin, PluginRole, ProductBundle};
use licet_engine::Fingerprint;
use licet_plugin_host::{
    read_machine, verify_plugin, HardwareCheckPlugin, Instances, LoadedPlugin, PluginError,
    PluginHost, Slot, TransportPlugin, World, FINGERPRINT_PLUGIN,
};

use crate::client::{load_policy, policy_from_text, ClientError};
use crate::http::HttpTransport;
use crate::machine::{Environment, MachineClock, MachineProbe, NativeProbe, ProbeError};
use crate::plugin_transport::PluginTransport;
use crate::transport::Transport;
use crate::transport::TransportError;
use licet_plugin_host::http::{HttpSettings, PinnedCertificate};

/// The largest server certificate file a bundle takes.
const MAX_CERTIFICATE_BYTES: u64 = 64 << 10;
/// The largest plugin signature file.
const MAX_SIGNATURE_FILE_BYTES: u64 = 1024;

/// What goes into a bundle: the loose files of development.
#[derive(Debug, Clone, Default)]
pub struct BundleSpec {
    /// The policy file.
    pub policy: PathBuf,
    /// The product's server addresses, the preferred one first.
    pub servers: Vec<String>,
    /// The server certificate (PEM or DER) the client pins, if any.
    pub server_certificate: Option<PathBuf>,
    /// The vendor-signed plugin directories, each with the role it plays.
    pub plugins: Vec<(PluginRole, PathBuf)>,
}

/// Why a bundle could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleBuildError {
    /// A file could not be read.
    #[error("`{path}`")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The policy is invalid.
    #[error(transparent)]
    Policy(ClientError),
    /// A plugin is not signed by this vendor, or is not one its role takes.
    #[error("the {role} plugin `{dir}`")]
    Plugin {
        /// The role it was given.
        role: PluginRole,
        /// Its directory.
        dir: PathBuf,
        /// What is wrong with it.
        #[source]
        source: PluginError,
    },
    /// Two plugins were given the same role.
    #[error("two plugins were given the {0} role")]
    DuplicateRole(PluginRole),
    /// Two plugins of one name were given different contents.
    #[error("two different plugins are named `{0}`")]
    DuplicatePlugin(String),
    /// The bundle itself is refused (too large, too many parts).
    #[error(transparent)]
    Bundle(#[from] BundleError),
}

/// The slot a plugin of `role` must fit, as the plugin host checks it.
pub fn role_slot(role: PluginRole) -> Slot<'static> {
    match role {
        PluginRole::Fingerprint => Slot::named(World::HardwareCheck, FINGERPRINT_PLUGIN),
        PluginRole::Dongle => Slot::DONGLE,
        PluginRole::Online | PluginRole::Files | PluginRole::Text => Slot::TRANSPORT,
    }
}

/// Builds the bundle of `spec`, signed with the vendor's secret key. Every plugin must verify
/// under the vendor's key and fit its role's slot; the policy must load.
pub fn build_bundle(spec: &BundleSpec, vendor: &SigningKey) -> Result<Vec<u8>, BundleBuildError> {
    let policy = load_policy(&spec.policy).map_err(BundleBuildError::Policy)?;
    let policy_yaml = read_text(&spec.policy)?;
    let server_certificate = spec
        .server_certificate
        .as_deref()
        .map(|path| read_limited(path, MAX_CERTIFICATE_BYTES))
        .transpose()?;
    let mut bundle = ProductBundle {
        product: policy.product.id.clone(),
        policy_yaml,
        servers: spec.servers.clone(),
        server_certificate,
        roles: Default::default(),
        plugins: Default::default(),
    };
    let vendor_key = vendor.verifying_key();
    for (role, dir) in &spec.plugins {
        let (name, plugin) = read_plugin(*role, dir, &vendor_key)?;
        if bundle.roles.insert(*role, name.clone()).is_some() {
            return Err(BundleBuildError::DuplicateRole(*role));
        }
        if let Some(existing) = bundle.plugins.get(&name) {
            if *existing != plugin {
                return Err(BundleBuildError::DuplicatePlugin(name));
            }
        }
        bundle.plugins.insert(name, plugin);
    }
    Ok(bundle.sign(vendor)?)
}

/// The plugin in `dir`, verified under the vendor's key and admitted by `role`'s slot.
fn read_plugin(
    role: PluginRole,
    dir: &Path,
    vendor_key: &VerifyingKey,
) -> Result<(String, BundledPlugin), BundleBuildError> {
    let plugin_error = |source| BundleBuildError::Plugin {
        role,
        dir: dir.to_path_buf(),
        source,
    };
    let verified = verify_plugin(dir, vendor_key).map_err(plugin_error)?;
    role_slot(role)
        .admit(dir, &verified.manifest)
        .map_err(plugin_error)?;
    let manifest = read_limited(&dir.join("plugin.json"), 64 << 10)?;
    let signature_path = dir.join("plugin.sig");
    let signature_text = read_limited(&signature_path, MAX_SIGNATURE_FILE_BYTES)?;
    let manifest_signature = std::str::from_utf8(&signature_text)
        .ok()
        .and_then(|text| STANDARD.decode(text.trim()).ok())
        .ok_or_else(|| {
            plugin_error(PluginError::BadSignature {
                path: dir.to_path_buf(),
            })
        })?;
    // Read again, the bytes must be those that verified: a file changed in between is refused
    // when the bundle is opened, but not carried into it.
    let reverified = licet_plugin_host::verify_plugin_bytes(
        dir,
        &manifest,
        &manifest_signature,
        verified.wasm,
        vendor_key,
    )
    .map_err(plugin_error)?;
    Ok((
        reverified.manifest.name.clone(),
        BundledPlugin {
            manifest,
            manifest_signature,
            wasm: reverified.wasm,
        },
    ))
}

fn read_text(path: &Path) -> Result<String, BundleBuildError> {
    fs::read_to_string(path).map_err(|source| BundleBuildError::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, BundleBuildError> {
    use std::io::Read;
    let io = |source| BundleBuildError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut bytes = Vec::new();
    fs::File::open(path)
        .map_err(io)?
        .take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > limit {
        return Err(io(std::io::Error::other(format!(
            "larger than {limit} bytes"
        ))));
    }
    Ok(bytes)
}

/// How [`Client::open_bundle_with`](crate::client::Client::open_bundle_with) opens a bundle.
#[derive(Debug, Clone, Default)]
pub struct BundleOptions {
    /// A software dongle file standing in for the USB dongle (development and tests); the
    /// bundle's dongle plugin reaches it instead of USB HID.
    pub software_dongle: Option<PathBuf>,
    /// Compile the plugins at every start instead of keeping them compiled in the state
    /// directory's `plugin-cache` (see docs/plugins.md, "Compiled-component cache").
    pub no_compiled_cache: bool,
}

/// Why a bundle could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleOpenError {
    /// The bundle is not the vendor's, was changed, or is malformed.
    #[error("product bundle refused")]
    Bundle(#[from] BundleError),
    /// The policy it carries is not the product it names.
    #[error("product bundle refused: its policy is for `{policy}`, not `{product}`")]
    ProductMismatch {
        /// The product the bundle names.
        product: String,
        /// The product of its policy.
        policy: String,
    },
    /// A bundled plugin does not load in its role.
    #[error("product bundle refused: its {role} plugin")]
    Plugin {
        /// The role.
        role: PluginRole,
        /// Why it does not load.
        #[source]
        source: PluginError,
    },
}

/// An opened bundle: what the client uses besides the policy.
///
/// The transport plugins are loaded from the bundle the first time they are used, so a start-up
/// check pays only for the plugins it runs (the fingerprint and the dongle check).
pub struct OpenedBundle {
    /// The product's server addresses, the preferred one first.
    pub servers: Vec<String>,
    /// The server certificate the client pins, if the bundle has one.
    pub server_certificate: Option<Vec<u8>>,
    /// The dongle plugin, when the product uses dongles.
    pub dongle: Option<HardwareCheckPlugin>,
    /// The plugin host they run in.
    pub host: Arc<PluginHost>,
    online: Option<BundledTransport>,
    files: Option<BundledTransport>,
    text: Option<BundledTransport>,
}

/// A transport plugin of a verified bundle, loaded the first time it is used.
struct BundledTransport {
    role: PluginRole,
    name: String,
    plugin: BundledPlugin,
    loaded: OnceLock<Arc<TransportPlugin>>,
}

impl BundledTransport {
    fn of(bundle: &mut ProductBundle, role: PluginRole) -> Option<BundledTransport> {
        let name = bundle.roles.get(&role)?.clone();
        // A plugin playing two roles is carried once; each role loads its own instance.
        let plugin = bundle.plugins.get(&name)?.clone();
        Some(BundledTransport {
            role,
            name,
            plugin,
            loaded: OnceLock::new(),
        })
    }

    fn get(&self, host: &PluginHost) -> Result<&Arc<TransportPlugin>, BundleOpenError> {
        if let Some(plugin) = self.loaded.get() {
            return Ok(plugin);
        }
        let plugin = match load_role(host, self.role, &self.name, &self.plugin)? {
            LoadedPlugin::Transport(plugin) => plugin,
            _ => {
                return Err(BundleOpenError::Plugin {
                    role: self.role,
                    source: PluginError::WrongWorld {
                        plugin: self.name.clone(),
                        expected: World::Transport.name(),
                        found: World::HardwareCheck.name(),
                    },
                })
            }
        };
        Ok(self.loaded.get_or_init(|| Arc::new(plugin)))
    }
}

impl OpenedBundle {
    /// The HTTP(S) transport to the bundle's preferred server, trusting only its pinned server
    /// certificate when it has one.
    pub fn http_transport(&self, product: &str) -> Result<HttpTransport, TransportError> {
        let server = self.servers.first().ok_or_else(|| {
            TransportError::InvalidUrl("the product bundle names no server".to_owned())
        })?;
        let transport = HttpTransport::new(server, product)?;
        match &self.server_certificate {
            Some(certificate) => transport.with_pinned_certificate_bytes(certificate),
            None => Ok(transport),
        }
    }

    /// The transport of the product's online requests: its `online` transport plugin when the
    /// bundle has one (the plugin names the URL its signed manifest allows), else HTTP(S) to its
    /// preferred server. `settings` apply to the connection; without a pinned certificate of
    /// their own, the bundle's is pinned.
    pub fn transport(
        &self,
        product: &str,
        mut settings: HttpSettings,
    ) -> Result<Box<dyn Transport + Send>, TransportError> {
        if settings.pinned_certificate.is_none() {
            if let Some(certificate) = &self.server_certificate {
                settings.pinned_certificate = Some(PinnedCertificate::from_bytes(certificate)?);
            }
        }
        if let Some(plugin) = self
            .online()
            .map_err(|error| TransportError::Plugin(error.report()))?
        {
            return Ok(Box::new(
                PluginTransport::shared(plugin, product).with_http_settings(settings),
            ));
        }
        Ok(Box::new(
            self.http_transport(product)?.with_http_settings(settings),
        ))
    }
}

impl OpenedBundle {
    /// The transport plugin for online requests, if the bundle has one.
    pub fn online(&self) -> Result<Option<Arc<TransportPlugin>>, BundleOpenError> {
        self.transport_of(self.online.as_ref())
            .map(|plugin| plugin.map(Arc::clone))
    }

    /// The transport plugin for request and response files, if the bundle has one.
    pub fn files(&self) -> Result<Option<&TransportPlugin>, BundleOpenError> {
        self.transport_of(self.files.as_ref())
            .map(|plugin| plugin.map(|plugin| &**plugin))
    }

    /// The transport plugin for text blocks, if the bundle has one.
    pub fn text(&self) -> Result<Option<&TransportPlugin>, BundleOpenError> {
        self.transport_of(self.text.as_ref())
            .map(|plugin| plugin.map(|plugin| &**plugin))
    }

    /// Whether the bundle has a plugin for `role`.
    pub fn has(&self, role: PluginRole) -> bool {
        match role {
            PluginRole::Fingerprint => true,
            PluginRole::Dongle => self.dongle.is_some(),
            PluginRole::Online => self.online.is_some(),
            PluginRole::Files => self.files.is_some(),
            PluginRole::Text => self.text.is_some(),
        }
    }

    fn transport_of<'a>(
        &'a self,
        transport: Option<&'a BundledTransport>,
    ) -> Result<Option<&'a Arc<TransportPlugin>>, BundleOpenError> {
        transport
            .map(|transport| transport.get(&self.host))
            .transpose()
    }
}

impl fmt::Debug for OpenedBundle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name =
            |plugin: &Option<BundledTransport>| plugin.as_ref().map(|plugin| plugin.name.clone());
        formatter
            .debug_struct("OpenedBundle")
            .field("servers", &self.servers)
            .field("pinned", &self.server_certificate.is_some())
            .field("online", &name(&self.online))
            .field("files", &name(&self.files))
            .field("text", &name(&self.text))
            .field("dongle", &self.dongle.is_some())
            .finish()
    }
}

/// Verifies `bytes` as a bundle of the vendor and loads its plugins. Returns the policy's text,
/// the fingerprint plugin (if any) and the rest.
pub(crate) fn open(
    bytes: &[u8],
    vendor_key: &VerifyingKey,
    cache_dir: Option<&Path>,
) -> Result<
    (
        licet_engine::Policy,
        Option<HardwareCheckPlugin>,
        OpenedBundle,
    ),
    ClientError,
> {
    let mut bundle = ProductBundle::verify(bytes, vendor_key).map_err(BundleOpenError::from)?;
    let policy = policy_from_text(&bundle.policy_yaml)?;
    if policy.product.id != bundle.product {
        return Err(BundleOpenError::ProductMismatch {
            product: bundle.product,
            policy: policy.product.id,
        }
        .into());
    }
    // A product makes a few plugin calls, one at a time: their instances are allocated when
    // they run rather than from a pool reserved for many. A cache that cannot be opened (a
    // directory others may write, say) costs compilations, never the start.
    let builder = PluginHost::builder(*vendor_key).instances(Instances::OnDemand);
    let cached = cache_dir.and_then(|dir| builder.clone().compiled_cache(dir).build().ok());
    let host = match cached {
        Some(host) => host,
        None => builder.build().map_err(|source| BundleOpenError::Plugin {
            role: PluginRole::Fingerprint,
            source,
        })?,
    };
    let hardware = |role| -> Result<Option<HardwareCheckPlugin>, BundleOpenError> {
        let Some((name, plugin)) = bundle.plugin_for(role) else {
            return Ok(None);
        };
        Ok(match load_role(&host, role, name, plugin)? {
            LoadedPlugin::HardwareCheck(plugin) => Some(plugin),
            _ => None,
        })
    };
    let fingerprint = hardware(PluginRole::Fingerprint)?;
    let dongle = hardware(PluginRole::Dongle)?;
    let opened = OpenedBundle {
        online: BundledTransport::of(&mut bundle, PluginRole::Online),
        files: BundledTransport::of(&mut bundle, PluginRole::Files),
        text: BundledTransport::of(&mut bundle, PluginRole::Text),
        dongle,
        servers: bundle.servers,
        server_certificate: bundle.server_certificate,
        host: Arc::new(host),
    };
    Ok((policy, fingerprint, opened))
}

/// Loads the bundled `plugin` named `name` in `role`'s slot.
fn load_role(
    host: &PluginHost,
    role: PluginRole,
    name: &str,
    plugin: &BundledPlugin,
) -> Result<LoadedPlugin, BundleOpenError> {
    let origin = Path::new("bundle").join(name);
    host.load_bytes(
        &origin,
        &plugin.manifest,
        &plugin.manifest_signature,
        plugin.wasm.clone(),
        role_slot(role),
    )
    .map_err(|source| BundleOpenError::Plugin { role, source })
}

/// The machine probe of a bundled product: the host takes the machine's readings, the bundle's
/// fingerprint plugin normalizes and hashes them with the product's salt. Whether the
/// environment can be trusted and the machine's own times come from the native probe.
pub struct PluginProbe {
    plugin: HardwareCheckPlugin,
    salt: [u8; 32],
    native: NativeProbe,
}

impl PluginProbe {
    /// The probe of `product` through the fingerprint `plugin`.
    pub fn new(plugin: HardwareCheckPlugin, product: &str) -> PluginProbe {
        PluginProbe {
            plugin,
            salt: licet_engine::fingerprint::product_salt(product),
            native: NativeProbe::for_product(product),
        }
    }
}

impl fmt::Debug for PluginProbe {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PluginProbe")
            .field("plugin", &self.plugin.manifest().name)
            .finish()
    }
}

impl MachineProbe for PluginProbe {
    fn fingerprint(&self) -> Result<Fingerprint, ProbeError> {
        let fingerprint = self
            .plugin
            .fingerprint(&self.salt, &read_machine())
            .map_err(|error| ProbeError::Failed(error.report()))?;
        if fingerprint.components.is_empty() {
            return Err(ProbeError::NoComponents);
        }
        Ok(fingerprint)
    }

    fn environment(&self) -> Environment {
        self.native.environment()
    }

    fn clock(&self) -> MachineClock {
        self.native.clock()
    }
}
