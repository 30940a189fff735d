//! The wasmtime side: one engine, a cached `InstancePre` per plugin, a fresh store per call.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ed25519_dalek::VerifyingKey;
use wasmtime::component::{Component, HasSelf, Linker, ResourceTable};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap,
};

use crate::bindings::{hardware, transport};
use crate::error::PluginError;
use crate::hardware::HardwareCheckPlugin;
use crate::hid::HidBackend;
use crate::manifest::{HidId, Manifest, Slot, World};
use crate::signing::verify_plugin;
use crate::transport::TransportPlugin;

/// What each plugin call may consume. The host sets these, never the plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Fuel (roughly, WebAssembly instructions) per call.
    pub fuel: u64,
    /// Linear memory per call, in bytes.
    pub memory_bytes: usize,
    /// Bytes a plugin may hand back to the host in one result.
    pub max_guest_bytes: usize,
    /// Native stack for WebAssembly frames, in bytes.
    pub max_wasm_stack: usize,
    /// Calls that may run at once across all plugins of one host; instance slots are pooled and
    /// reused, which keeps a fresh instance cheap.
    pub concurrent_calls: u32,
    /// Time one call may spend waiting in HID reads, in all. Fuel bounds the plugin's own work
    /// but not time spent blocked in the host, so this bounds a call's wall-clock time too.
    pub hid_wait: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            fuel: 50_000_000,
            memory_bytes: 16 << 20,
            max_guest_bytes: 1 << 20,
            max_wasm_stack: 256 << 10,
            concurrent_calls: 16,
            hid_wait: Duration::from_secs(10),
        }
    }
}

/// The longest HID report a plugin may write (64 bytes plus the report ID).
pub const MAX_HID_REPORT: usize = 65;
/// The longest a plugin may wait for one HID read.
pub const MAX_HID_TIMEOUT_MS: u32 = 5_000;
const MAX_OPEN_DEVICES: usize = 4;

/// Something a plugin did that the host stopped; recorded before the call traps so the caller
/// gets a typed error rather than a bare trap.
#[derive(Debug)]
pub(crate) enum Violation {
    Memory,
    Payload { what: &'static str, size: usize },
    NotAllowed(String),
    HidWait,
}

/// An open HID device, as a plugin's `device` resource.
pub struct HidHandle(Box<dyn crate::hid::HidDevice>);

impl std::fmt::Debug for HidHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("HidHandle")
    }
}

/// The store data of one call.
pub(crate) struct CallState {
    limits: Limits,
    pub(crate) violation: Option<Violation>,
    table: ResourceTable,
    hid: Option<Arc<dyn HidBackend>>,
    allowed_hid: Vec<HidId>,
    open_devices: usize,
    hid_wait_left: Duration,
}

impl CallState {
    fn violate(&mut self, violation: Violation) -> wasmtime::Error {
        let message = format!("{violation:?}");
        self.violation = Some(violation);
        wasmtime::Error::msg(message)
    }
}

impl ResourceLimiter for CallState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limits.memory_bytes {
            return Err(self.violate(Violation::Memory));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 10_000)
    }

    fn instances(&self) -> usize {
        16
    }

    fn tables(&self) -> usize {
        16
    }

    fn memories(&self) -> usize {
        4
    }
}

impl hardware::licet::plugin::types::Host for CallState {}

impl hardware::licet::plugin::hid::Host for CallState {
    fn open(
        &mut self,
        vendor_id: u16,
        product_id: u16,
    ) -> wasmtime::Result<Result<wasmtime::component::Resource<HidHandle>, String>> {
        let allowed = self
            .allowed_hid
            .iter()
            .any(|id| id.vendor_id == vendor_id && id.product_id == product_id);
        if !allowed {
            return Err(self.violate(Violation::NotAllowed(format!(
                "HID device `{vendor_id:04x}:{product_id:04x}`"
            ))));
        }
        if self.open_devices >= MAX_OPEN_DEVICES {
            return Ok(Err("too many open HID devices".to_string()));
        }
        let Some(backend) = &self.hid else {
            return Ok(Err("this call has no HID access".to_string()));
        };
        match backend.open(vendor_id, product_id) {
            Ok(device) => {
                let handle = self.table.push(HidHandle(device))?;
                self.open_devices += 1;
                Ok(Ok(handle))
            }
            Err(error) => Ok(Err(error.to_string())),
        }
    }
}

impl hardware::licet::plugin::hid::HostDevice for CallState {
    fn write(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        report: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if report.len() > MAX_HID_REPORT {
            return Err(self.violate(Violation::Payload {
                what: "a HID report",
                size: report.len(),
            }));
        }
        let handle = self.table.get_mut(&device)?;
        Ok(handle.0.write(&report).map_err(|error| error.to_string()))
    }

    fn read(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if self.hid_wait_left.is_zero() {
            return Err(self.violate(Violation::HidWait));
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms.min(MAX_HID_TIMEOUT_MS)))
            .min(self.hid_wait_left);
        let started = Instant::now();
        let handle = self.table.get_mut(&device)?;
        let report = handle.0.read(timeout).map_err(|error| error.to_string());
        self.hid_wait_left = self.hid_wait_left.saturating_sub(started.elapsed());
        Ok(report)
    }

    fn drop(&mut self, device: wasmtime::component::Resource<HidHandle>) -> wasmtime::Result<()> {
        self.table.delete(device)?;
        self.open_devices = self.open_devices.saturating_sub(1);
        Ok(())
    }
}

pub(crate) struct Runtime {
    engine: Engine,
    limits: Limits,
    vendor_key: VerifyingKey,
    transport_linker: Linker<CallState>,
    hardware_linker: Linker<CallState>,
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("Runtime")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A fresh store for one call of `manifest`'s plugin.
    pub(crate) fn store(
        &self,
        manifest: &Manifest,
        hid: Option<Arc<dyn HidBackend>>,
    ) -> Result<Store<CallState>, PluginError> {
        let state = CallState {
            limits: self.limits,
            violation: None,
            table: ResourceTable::new(),
            hid,
            allowed_hid: manifest.allow.hid.clone(),
            open_devices: 0,
            hid_wait_left: self.limits.hid_wait,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| state as &mut dyn ResourceLimiter);
        store
            .set_fuel(self.limits.fuel)
            .map_err(|error| PluginError::Load {
                plugin: manifest.name.clone(),
                reason: error.to_string(),
            })?;
        Ok(store)
    }

    pub(crate) fn limits(&self) -> Limits {
        self.limits
    }

    /// Turns a failed call into a typed error: what the host stopped, or how the plugin trapped.
    pub(crate) fn call_failed(
        &self,
        plugin: &str,
        store: &mut Store<CallState>,
        error: wasmtime::Error,
    ) -> PluginError {
        let plugin = plugin.to_string();
        match store.data_mut().violation.take() {
            Some(Violation::Memory) => PluginError::MemoryLimit {
                plugin,
                limit: self.limits.memory_bytes,
            },
            Some(Violation::Payload { what, size }) => PluginError::PayloadTooLarge {
                plugin,
                what,
                size,
                limit: MAX_HID_REPORT,
            },
            Some(Violation::NotAllowed(what)) => PluginError::NotAllowed { plugin, what },
            Some(Violation::HidWait) => PluginError::HidTimeLimit {
                plugin,
                limit_ms: self.limits.hid_wait.as_millis(),
            },
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
                Some(Trap::StackOverflow) => PluginError::StackOverflow { plugin },
                Some(trap) => PluginError::Trapped {
                    plugin,
                    reason: trap.to_string(),
                },
                None => PluginError::Trapped {
                    plugin,
                    reason: error.to_string(),
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
/// Cheap to clone; clones share the engine. Plugins are compiled from their signed `.wasm` at
/// every load; no compiled code is ever read from disk.
#[derive(Debug, Clone)]
pub struct PluginHost {
    runtime: Arc<Runtime>,
}

impl PluginHost {
    /// A host that accepts plugins signed by `vendor_key`, with the default limits.
    pub fn new(vendor_key: VerifyingKey) -> Result<PluginHost, PluginError> {
        PluginHost::with_limits(vendor_key, Limits::default())
    }

    /// A host with explicit limits.
    pub fn with_limits(
        vendor_key: VerifyingKey,
        limits: Limits,
    ) -> Result<PluginHost, PluginError> {
        let engine_error = |error: wasmtime::Error| PluginError::Load {
            plugin: "(engine)".to_string(),
            reason: error.to_string(),
        };
        let mut config = Config::new();
        config.consume_fuel(true);
        config.max_wasm_stack(limits.max_wasm_stack);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(limits.concurrent_calls)
            .total_core_instances(limits.concurrent_calls.saturating_mul(4))
            .total_memories(limits.concurrent_calls)
            .total_tables(limits.concurrent_calls.saturating_mul(4))
            .max_memory_size(limits.memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(engine_error)?;
        let transport_linker = Linker::new(&engine);
        let mut hardware_linker = Linker::new(&engine);
        hardware::HardwareCheck::add_to_linker::<CallState, HasSelf<CallState>>(
            &mut hardware_linker,
            |state| state,
        )
        .map_err(engine_error)?;
        Ok(PluginHost {
            runtime: Arc::new(Runtime {
                engine,
                limits,
                vendor_key,
                transport_linker,
                hardware_linker,
            }),
        })
    }

    /// The limits every call runs under.
    pub fn limits(&self) -> Limits {
        self.runtime.limits
    }

    /// Verifies the plugin in `dir`, checks that it is one `slot` takes (its signed world and
    /// name), then compiles and links it. A plugin of another world or name is refused before
    /// anything of it is compiled or instantiated.
    pub fn load(&self, dir: &Path, slot: Slot<'_>) -> Result<LoadedPlugin, PluginError> {
        let verified = verify_plugin(dir, &self.runtime.vendor_key)?;
        slot.admit(dir, &verified.manifest)?;
        let manifest = verified.manifest;
        let plugin = manifest.name.clone();
        let load_error = |error: wasmtime::Error| PluginError::Load {
            plugin: plugin.clone(),
            reason: format!("{error:#}"),
        };
        let component = Component::new(&self.runtime.engine, &verified.wasm).map_err(load_error)?;
        let world = manifest.world;
        let allowed = world.allowed_imports();
        for (import, _) in component.component_type().imports(&self.runtime.engine) {
            if !allowed.contains(&import) {
                return Err(PluginError::ForbiddenImport {
                    plugin,
                    world: world.name(),
                    import: import.to_string(),
                });
            }
        }
        match world {
            World::Transport => {
                let pre = self
                    .runtime
                    .transport_linker
                    .instantiate_pre(&component)
                    .and_then(transport::TransportPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::Transport(TransportPlugin::new(
                    Arc::clone(&self.runtime),
                    manifest,
                    pre,
                )))
            }
            World::HardwareCheck => {
                let pre = self
                    .runtime
                    .hardware_linker
                    .instantiate_pre(&component)
                    .and_then(hardware::HardwareCheckPre::new)
                    .map_err(load_error)?;
                Ok(LoadedPlugin::HardwareCheck(HardwareCheckPlugin::new(
                    Arc::clone(&self.runtime),
                    manifest,
                    pre,
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
