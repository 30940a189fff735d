//! The wasmtime side: one engine and its deadline clock, a cached `InstancePre` per plugin, a
//! fresh store per call (or a warm instance a host keeps on purpose), and the optional
//! compiled-module cache.

use licet_engine::report::Report as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU32;
use std::sync::{Arc, OnceLock};

use ed25519_dalek::VerifyingKey;
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap,
};

use crate::bindings::{hardware, transport, v0_1};
use crate::cache::{engine_fingerprint, CacheStats, CompiledCache};
pub use crate::call_state::HidHandle;
use crate::call_state::{CallSlot, CallState, Violation};
use crate::deadline::Ticker;
use crate::error::PluginError;
use crate::hardware::{HardwareCheckPlugin, HardwarePres};
use crate::hid::HidBackend;
pub use crate::limits::{Limits, MAX_HID_REPORT, MAX_HID_TIMEOUT_MS};
use crate::manifest::{Manifest, Slot, WitVersion, World};
use crate::signing::{verify_plugin, verify_plugin_bytes, VerifiedPlugin};
use crate::transport::{TransportPlugin, TransportPres};

pub(crate) struct Runtime {
    engine: Engine,
    limits: Limits,
    deadline_ticks: u64,
    vendor_key: VerifyingKey,
    transport_linker: Linker<CallState>,
    hardware_linker: Linker<CallState>,
    /// The linker of `licet:plugin@0.1.0` hardware checks, made when the first one is loaded.
    legacy_hardware_linker: OnceLock<Linker<CallState>>,
    cache: Option<CompiledCache>,
    /// The deadline thread; stops when the last clone of the host goes away.
    ticker: Ticker,
    /// Stores alive now (calls running and warm instances).
    live_calls: Arc<AtomicU32>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Runtime")
            .field("limits", &self.limits)
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A store for `manifest`'s plugin: one fresh call, or a warm instance; [`PluginError::Busy`]
    /// when [`Limits::concurrent_calls`] stores are alive already.
    pub(crate) fn store(
        &self,
        manifest: &Manifest,
        hid: Option<Arc<dyn HidBackend>>,
    ) -> Result<Store<CallState>, PluginError> {
        let slot =
            CallSlot::take(&self.live_calls, self.limits.concurrent_calls).ok_or_else(|| {
                PluginError::Busy {
                    plugin: manifest.name.clone(),
                    concurrent_calls: self.limits.concurrent_calls,
                }
            })?;
        let state = CallState::new(self.limits, hid, manifest.allow.hid.clone(), slot);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        Ok(store)
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Runs one call of `plugin` in `store` under the limits: full fuel, the wall-clock deadline
    /// (the epoch deadline for WebAssembly code, the same instant for host calls), the HID wait
    /// budget; a failure comes back typed.
    pub(crate) fn run<R>(
        &self,
        plugin: &str,
        store: &mut Store<CallState>,
        call: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        let _ticking = self.ticker.enter();
        if let Err(error) = store.set_fuel(self.limits.fuel) {
            return Err(PluginError::Trapped {
                plugin: plugin.to_string(),
                reason: format!("{error:#}"),
            });
        }
        store.set_epoch_deadline(self.deadline_ticks);
        store.data_mut().begin_call();
        call(store).map_err(|error| self.call_failed(plugin, store, error))
    }

    /// Turns a failed call into a typed error: what the host stopped, or how the plugin trapped.
    fn call_failed(
        &self,
        plugin: &str,
        store: &mut Store<CallState>,
        error: wasmtime::Error,
    ) -> PluginError {
        let plugin = plugin.to_string();
        let timeout = |plugin| PluginError::Timeout {
            plugin,
            limit_ms: self.limits.call_time.as_millis(),
        };
        match store.data_mut().violation.take() {
            Some(Violation::Memory) => PluginError::MemoryLimit {
                plugin,
                limit: self.limits.memory_bytes,
            },
            Some(Violation::Payload { what, size }) => PluginError::PayloadTooLarge {
                plugin,
                what,
                size,
                limit: self.limits.hid_report_bytes,
            },
            Some(Violation::NotAllowed(what)) => PluginError::NotAllowed { plugin, what },
            Some(Violation::HidWait) => PluginError::HidTimeLimit {
                plugin,
                limit_ms: self.limits.hid_wait.as_millis(),
            },
            Some(Violation::Deadline) => timeout(plugin),
            None if error.downcast_ref::<PoolConcurrencyLimitError>().is_some() => {
                PluginError::Busy {
                    plugin,
                    concurrent_calls: self.limits.concurrent_calls,
                }
            }
            None => match error.downcast_ref::<Trap>() {
                Some(Trap::OutOfFuel) => PluginError::OutOfFuel {
                    plugin,
                    fuel: self.limits.fuel,
                },
                Some(Trap::Interrupt) => timeout(plugin),
                Some(Trap::StackOverflow) => PluginError::StackOverflow { plugin },
                Some(trap) => PluginError::Trapped {
                    plugin,
                    reason: trap.to_string(),
                },
                None => PluginError::Trapped {
                    plugin,
                    reason: format!("{error:#}"),
                },
            },
        }
    }

    /// Checks that a result of `size` bytes may pass from the plugin to the host.
    pub(crate) fn check_size(
        &self,
        plugin: &str,
        what: &'static str,
        size: usize,
    ) -> Result<(), PluginError> {
        if size > self.limits.max_guest_bytes {
            return Err(PluginError::PayloadTooLarge {
                plugin: plugin.to_string(),
                what,
                size,
                limit: self.limits.max_guest_bytes,
            });
        }
        Ok(())
    }

    /// The linker of `licet:plugin@0.1.0` hardware checks. Few hosts load one, so it is made
    /// when the first is loaded rather than with the host.
    fn legacy_hardware_linker(&self) -> wasmtime::Result<&Linker<CallState>> {
        if let Some(linker) = self.legacy_hardware_linker.get() {
            return Ok(linker);
        }
        let mut linker = Linker::new(&self.engine);
        v0_1::hardware::HardwareCheck::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut linker,
            |state| state,
        )?;
        Ok(self.legacy_hardware_linker.get_or_init(|| linker))
    }

    /// The compiled component of a verified plugin: from the cache when the host has one and its
    /// entry verifies, else compiled from the signed `.wasm`.
    fn compile(&self, manifest: &Manifest, wasm: &[u8]) -> wasmtime::Result<Component> {
        match (&self.cache, parse_sha256(&manifest.wasm_sha256)) {
            (Some(cache), Some(wasm_sha256)) => cache.component(&self.engine, &wasm_sha256, wasm),
            _ => Component::new(&self.engine, wasm),
        }
    }
}

/// The 32 bytes of a lowercase hex SHA-256 (the manifest's `wasm_sha256`, already checked
/// against the component).
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let text = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(text, 16).ok()?;
    }
    Some(bytes)
}

/// One instance kept for repeated calls of one plugin: the store, its bindings and whether a call
/// failed (after which it serves no more calls).
pub(crate) struct Warm<B> {
    store: Store<CallState>,
    bindings: B,
    failed: bool,
}

impl<B> Warm<B> {
    /// Instantiates `manifest`'s plugin, under the limits of one call.
    pub(crate) fn new(
        runtime: &Runtime,
        manifest: &Manifest,
        instantiate: impl FnOnce(&mut Store<CallState>) -> wasmtime::Result<B>,
    ) -> Result<Warm<B>, PluginError> {
        let mut store = runtime.store(manifest, None)?;
        let bindings = runtime.run(&manifest.name, &mut store, instantiate)?;
        Ok(Warm {
            store,
            bindings,
            failed: false,
        })
    }

    /// Runs one call in the instance, with full fuel and a fresh deadline. A call that fails
    /// (anything but the plugin returning its own error) leaves the instance unusable.
    pub(crate) fn call<R>(
        &mut self,
        runtime: &Runtime,
        plugin: &str,
        call: impl FnOnce(&B, &mut Store<CallState>) -> wasmtime::Result<R>,
    ) -> Result<R, PluginError> {
        if self.failed {
            return Err(PluginError::Trapped {
                plugin: plugin.to_string(),
                reason: "this instance failed before; make a new one".to_string(),
            });
        }
        let bindings = &self.bindings;
        let outcome = runtime.run(plugin, &mut self.store, |store| call(bindings, store));
        if outcome.is_err() {
            self.failed = true;
        }
        outcome
    }

    /// Whether a call failed.
    pub(crate) fn failed(&self) -> bool {
        self.failed
    }
}

/// A plugin of either world.
#[derive(Debug)]
#[non_exhaustive]
pub enum LoadedPlugin {
    /// A transport.
    Transport(TransportPlugin),
    /// A fingerprint or dongle check.
    HardwareCheck(HardwareCheckPlugin),
}

impl LoadedPlugin {
    /// The plugin's signed manifest.
    pub fn manifest(&self) -> &Manifest {
        match self {
            LoadedPlugin::Transport(plugin) => plugin.manifest(),
            LoadedPlugin::HardwareCheck(plugin) => plugin.manifest(),
        }
    }
}

/// Loads signed plugins and runs them in the sandbox.
///
/// Cheap to clone; clones share the engine, its deadline thread and its cache. Plugins are
/// compiled from their signed `.wasm` at every load, unless the host was built with a
/// compiled-module cache ([`PluginHostBuilder::compiled_cache`]) that holds a verified entry for
/// it.
#[derive(Debug, Clone)]
pub struct PluginHost {
    runtime: Arc<Runtime>,
}

/// How a [`PluginHost`] is built: the vendor key, the [`Limits`] and, optionally, a
/// compiled-module cache.
#[derive(Debug, Clone)]
pub struct PluginHostBuilder {
    vendor_key: VerifyingKey,
    limits: Limits,
    cache_dir: Option<PathBuf>,
    instances: Instances,
}

/// Where the instances of a host's calls live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Instances {
    /// In slots reserved when the host is built ([`Limits::concurrent_calls`] of them) and reused
    /// call after call, which keeps a fresh instance cheap: for a host that makes many calls,
    /// such as a server. The default.
    Pooled,
    /// Allocated when a call starts and freed when it ends, with nothing reserved up front: for
    /// a host that makes a few calls, such as a product's start-up check, which then pays for
    /// neither building nor tearing down the pool. The limits are the same.
    OnDemand,
}

impl PluginHostBuilder {
    /// The limits every call runs under (default: [`Limits::default`]).
    pub fn limits(mut self, limits: Limits) -> PluginHostBuilder {
        self.limits = limits;
        self
    }

    /// Where the instances of the host's calls live (default: [`Instances::Pooled`]).
    pub fn instances(mut self, instances: Instances) -> PluginHostBuilder {
        self.instances = instances;
        self
    }

    /// Keeps compiled plugins in `dir` (created private if missing), so that the next host
    /// started with the same directory loads them without compiling; see [`crate::cache`] for
    /// how entries are checked and the threat model. Off by default.
    pub fn compiled_cache(mut self, dir: impl Into<PathBuf>) -> PluginHostBuilder {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Builds the host: checks the limits, makes the engine, starts its deadline thread and
    /// opens the cache.
    pub fn build(self) -> Result<PluginHost, PluginError> {
        let limits = self.limits;
        limits.check()?;
        let engine_error = |reason: String| PluginError::Load {
            plugin: "(engine)".to_string(),
            reason,
        };
        let mut config = Config::new();
        config.consume_fuel(true);
        config.epoch_interruption(true);
        config.max_wasm_stack(limits.max_wasm_stack);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.concurrent_calls)
            .total_core_instances(
                limits
                    .concurrent_calls
                    .saturating_mul(limits.core_instances),
            )
            .total_memories(limits.concurrent_calls.saturating_mul(limits.memories))
            .total_tables(limits.concurrent_calls.saturating_mul(limits.tables))
            .max_memory_size(limits.memory_bytes);
        if self.instances == Instances::Pooled {
            config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        } else {
            config.memory_init_cow(false);
        }
        let engine = Engine::new(&config).map_err(|error| engine_error(format!("{error:#}")))?;
        let transport_linker = Linker::new(&engine);
        let mut hardware_linker = Linker::new(&engine);
        hardware::HardwareCheck::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut hardware_linker,
            |state| state,
        )
        .map_err(|error| engine_error(format!("{error:#}")))?;
        let cache = match &self.cache_dir {
            Some(dir) => {
                // Everything of the engine's configuration above that compiled code may
                // depend on, beside what wasmtime's own compatibility hash covers.
                let settings = format!(
                    "fuel epoch stack={} memory={} {:?} pool={}x{}/{}/{}",
                    limits.max_wasm_stack,
                    limits.memory_bytes,
                    self.instances,
                    limits.concurrent_calls,
                    limits.core_instances,
                    limits.tables,
                    limits.memories
                );
                let fingerprint = engine_fingerprint(&engine, &settings);
                Some(CompiledCache::open(dir, fingerprint).map_err(|source| {
                    PluginError::Cache {
                        path: dir.clone(),
                        source,
                    }
                })?)
            }
            None => None,
        };
        let ticker = Ticker::start(&engine).map_err(|error| engine_error(error.report()))?;
        Ok(PluginHost {
            runtime: Arc::new(Runtime {
                engine,
                limits,
                deadline_ticks: limits.deadline_ticks(),
                vendor_key: self.vendor_key,
                transport_linker,
                hardware_linker,
                legacy_hardware_linker: OnceLock::new(),
                cache,
                ticker,
                live_calls: Arc::new(AtomicU32::new(0)),
            }),
        })
    }
}

impl PluginHost {
    /// A host that accepts plugins signed by `vendor_key`, with the default limits and no
    /// compiled-module cache.
    pub fn new(vendor_key: VerifyingKey) -> Result<PluginHost, PluginError> {
        PluginHost::builder(vendor_key).build()
    }

    /// A host with explicit limits and no compiled-module cache.
    pub fn with_limits(
        vendor_key: VerifyingKey,
        limits: Limits,
    ) -> Result<PluginHost, PluginError> {
        PluginHost::builder(vendor_key).limits(limits).build()
    }

    /// A builder for a host that accepts plugins signed by `vendor_key`.
    pub fn builder(vendor_key: VerifyingKey) -> PluginHostBuilder {
        PluginHostBuilder {
            vendor_key,
            limits: Limits::default(),
            cache_dir: None,
            instances: Instances::Pooled,
        }
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.runtime.limits
    }

    /// What the compiled-module cache did so far, if the host has one.
    pub fn cache_stats(&self) -> Option<CacheStats> {
        self.runtime.cache.as_ref().map(CompiledCache::stats)
    }

    /// Where the compiled-module cache keeps the entry of the component with this SHA-256 (the
    /// manifest's `wasm_sha256`), if the host has a cache.
    pub fn cache_entry(&self, wasm_sha256: &str) -> Option<PathBuf> {
        let cache = self.runtime.cache.as_ref()?;
        Some(cache.entry_path(&parse_sha256(wasm_sha256)?))
    }

    /// Verifies the plugin in `dir`, checks that it is one `slot` takes (its signed world and
    /// name), then compiles (or loads from the cache) and links it. A plugin of another world or
    /// name is refused before anything of it is compiled or instantiated.
    pub fn load(&self, dir: &Path, slot: Slot<'_>) -> Result<LoadedPlugin, PluginError> {
        let verified = verify_plugin(dir, &self.runtime.vendor_key)?;
        self.load_verified(verified, slot)
    }

    /// Like [`PluginHost::load`], for a plugin held in memory (a product bundle's): `manifest`
    /// is the exact bytes of its `plugin.json`, `signature` the vendor's 64-byte signature over
    /// them, `wasm` the component. `origin` names it in errors.
    pub fn load_bytes(
        &self,
        origin: &Path,
        manifest: &[u8],
        signature: &[u8],
        wasm: Vec<u8>,
        slot: Slot<'_>,
    ) -> Result<LoadedPlugin, PluginError> {
        let verified =
            verify_plugin_bytes(origin, manifest, signature, wasm, &self.runtime.vendor_key)?;
        self.load_verified(verified, slot)
    }

    /// Checks that `slot` takes the verified plugin, then compiles (or loads from the cache) and
    /// links it.
    fn load_verified(
        &self,
        verified: VerifiedPlugin,
        slot: Slot<'_>,
    ) -> Result<LoadedPlugin, PluginError> {
        let dir = verified.dir.as_path();
        slot.admit(dir, &verified.manifest)?;
        let manifest = verified.manifest;
        let plugin = manifest.name.clone();
        let load_error = |error: wasmtime::Error| PluginError::Load {
            plugin: plugin.clone(),
            reason: format!("{error:#}"),
        };
        let component = self
            .runtime
            .compile(&manifest, &verified.wasm)
            .map_err(load_error)?;
        let world = manifest.world;
        let component_type = component.component_type();
        let engine = &self.runtime.engine;
        let version = WitVersion::of_interfaces(
            component_type
                .imports(engine)
                .map(|(name, _)| name)
                .chain(component_type.exports(engine).map(|(name, _)| name)),
        );
        let allowed = world.allowed_imports(version);
        for (import, _) in component_type.imports(engine) {
            if !allowed.contains(&import) {
                return Err(PluginError::ForbiddenImport {
                    plugin,
                    world: world.name(),
                    import: import.to_string(),
                });
            }
        }
        let runtime = Arc::clone(&self.runtime);
        match (world, version) {
            (World::Transport, WitVersion::V0_1) => {
                let pre = self
                    .runtime
                    .transport_linker
                    .instantiate_pre(&component)
                    .and_then(v0_1::transport::TransportPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::Transport(TransportPlugin::new(
                    runtime,
                    manifest,
                    TransportPres::V0_1(pre),
                )))
            }
            (World::Transport, _) => {
                let pre = self
                    .runtime
                    .transport_linker
                    .instantiate_pre(&component)
                    .and_then(transport::TransportPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::Transport(TransportPlugin::new(
                    runtime,
                    manifest,
                    TransportPres::V0_2(pre),
                )))
            }
            (World::HardwareCheck, WitVersion::V0_1) => {
                let pre = self
                    .runtime
                    .legacy_hardware_linker()
                    .and_then(|linker| linker.instantiate_pre(&component))
                    .and_then(v0_1::hardware::HardwareCheckPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::HardwareCheck(HardwareCheckPlugin::new(
                    runtime,
                    manifest,
                    HardwarePres::V0_1(pre),
                )))
            }
            (World::HardwareCheck, _) => {
                let pre = self
                    .runtime
                    .hardware_linker
                    .instantiate_pre(&component)
                    .and_then(hardware::HardwareCheckPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::HardwareCheck(HardwareCheckPlugin::new(
                    runtime,
                    manifest,
                    HardwarePres::V0_2(pre),
                )))
            }
        }
    }

    /// Loads a plugin for a transport slot: any `transport` plugin ([`Slot::TRANSPORT`]).
    pub fn load_transport(&self, dir: &Path) -> Result<TransportPlugin, PluginError> {
        match self.load(dir, Slot::TRANSPORT)? {
            LoadedPlugin::Transport(plugin) => Ok(plugin),
            other => Err(wrong_world(&other, World::Transport)),
        }
    }

    /// Loads the `hardware-check` plugin `name` (such as [`crate::manifest::FINGERPRINT_PLUGIN`]);
    /// a hardware check of another name, or a plugin of another world, is refused.
    pub fn load_hardware_check(
        &self,
        dir: &Path,
        name: &str,
    ) -> Result<HardwareCheckPlugin, PluginError> {
        match self.load(dir, Slot::named(World::HardwareCheck, name))? {
            LoadedPlugin::HardwareCheck(plugin) => Ok(plugin),
            other => Err(wrong_world(&other, World::HardwareCheck)),
        }
    }

    /// Loads every plugin directory (one holding `plugin.json`) directly under `plugins_dir`, in
    /// name order, each of which `slot` must take. The first plugin that fails to load, or that
    /// the slot does not take, fails the whole set: fail closed.
    pub fn load_all(
        &self,
        plugins_dir: &Path,
        slot: Slot<'_>,
    ) -> Result<Vec<LoadedPlugin>, PluginError> {
        let io = |source| PluginError::Io {
            path: plugins_dir.to_path_buf(),
            source,
        };
        let mut dirs = Vec::new();
        for entry in std::fs::read_dir(plugins_dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            if path.join(crate::manifest::MANIFEST_FILE).is_file() {
                dirs.push(path);
            }
        }
        dirs.sort();
        dirs.iter().map(|dir| self.load(dir, slot)).collect()
    }
}

/// A loaded plugin of another world than the one its slot takes (which [`Slot::admit`] refuses
/// before it loads).
fn wrong_world(plugin: &LoadedPlugin, expected: World) -> PluginError {
    PluginError::WrongWorld {
        plugin: plugin.manifest().name.clone(),
        expected: expected.name(),
        found: plugin.manifest().world.name(),
    }
}
