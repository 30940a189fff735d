//! The store data of one plugin call: the limits it runs under, what it did that the host
//! stopped, and the host functions a hardware check imports (HID access, granted only for the
//! devices its manifest allows and bounded in count, report size and waiting time).

use licet_engine::report::Report as _;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::ResourceTable;
use wasmtime::ResourceLimiter;

use crate::bindings::{hardware, v0_1};
use crate::hid::HidBackend;
use crate::limits::Limits;
use crate::manifest::HidId;

/// Something a plugin did that the host stopped; recorded before the call traps so the caller
/// gets a typed error rather than a bare trap.
#[derive(Debug)]
pub(crate) enum Violation {
    Memory,
    Payload { what: &'static str, size: usize },
    NotAllowed(String),
    HidWait,
    Deadline,
}

/// An open HID device, as a plugin's `device` resource.
pub struct HidHandle(Box<dyn crate::hid::HidDevice>);

impl std::fmt::Debug for HidHandle {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("HidHandle")
    }
}

/// The store data of one call (or of one warm instance, reset before each of its calls).
pub(crate) struct CallState {
    limits: Limits,
    pub(crate) violation: Option<Violation>,
    table: ResourceTable,
    hid: Option<Arc<dyn HidBackend>>,
    allowed_hid: Vec<HidId>,
    open_devices: usize,
    hid_wait_left: Duration,
    /// When the running call must have returned.
    deadline: Instant,
    /// The call's place among [`Limits::concurrent_calls`], given back with the store.
    _slot: CallSlot,
}

/// One of the [`Limits::concurrent_calls`] a host runs at once, held by a store while it lives.
pub(crate) struct CallSlot(Arc<AtomicU32>);

impl CallSlot {
    /// A slot of `live` if fewer than `limit` are taken.
    pub(crate) fn take(live: &Arc<AtomicU32>, limit: u32) -> Option<CallSlot> {
        live.fetch_update(Ordering::AcqRel, Ordering::Acquire, |taken| {
            (taken < limit).then_some(taken + 1)
        })
        .ok()
        .map(|_| CallSlot(Arc::clone(live)))
    }
}

impl Drop for CallSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl CallState {
    /// The state of a new store under `limits`, reaching HID devices through `hid` (if any)
    /// and only the `allowed_hid` ones, holding `slot` while it lives.
    pub(crate) fn new(
        limits: Limits,
        hid: Option<Arc<dyn HidBackend>>,
        allowed_hid: Vec<HidId>,
        slot: CallSlot,
    ) -> CallState {
        CallState {
            limits,
            violation: None,
            table: ResourceTable::new(),
            hid,
            allowed_hid,
            open_devices: 0,
            hid_wait_left: limits.hid_wait,
            deadline: Instant::now() + limits.call_time,
            _slot: slot,
        }
    }

    /// Starts a call: no violation yet, the whole HID wait budget and the wall-clock deadline
    /// counted from now.
    pub(crate) fn begin_call(&mut self) {
        self.violation = None;
        self.hid_wait_left = self.limits.hid_wait;
        self.deadline = Instant::now() + self.limits.call_time;
    }

    fn violate(&mut self, violation: Violation) -> wasmtime::Error {
        let message = format!("{violation:?}");
        self.violation = Some(violation);
        wasmtime::Error::msg(message)
    }

    /// The time the running call has left, or the violation if it has none.
    fn time_left(&mut self) -> Result<Duration, wasmtime::Error> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(self.violate(Violation::Deadline));
        }
        Ok(left)
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
        Ok(desired <= self.limits.table_elements)
    }

    fn instances(&self) -> usize {
        self.limits.core_instances as usize
    }

    fn tables(&self) -> usize {
        self.limits.tables as usize
    }

    fn memories(&self) -> usize {
        self.limits.memories as usize
    }
}

impl hardware::licet::plugin::types::Host for CallState {}

impl hardware::licet::plugin::hid::Host for CallState {
    fn open(
        &mut self,
        vendor_id: u16,
        product_id: u16,
    ) -> wasmtime::Result<Result<wasmtime::component::Resource<HidHandle>, String>> {
        self.time_left()?;
        let allowed = self
            .allowed_hid
            .iter()
            .any(|id| id.vendor_id == vendor_id && id.product_id == product_id);
        if !allowed {
            return Err(self.violate(Violation::NotAllowed(format!(
                "HID device `{vendor_id:04x}:{product_id:04x}`"
            ))));
        }
        if self.open_devices >= self.limits.hid_open_devices {
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
            Err(error) => Ok(Err(error.report())),
        }
    }
}

impl hardware::licet::plugin::hid::HostDevice for CallState {
    fn write(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        report: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        if report.len() > self.limits.hid_report_bytes {
            return Err(self.violate(Violation::Payload {
                what: "a HID report",
                size: report.len(),
            }));
        }
        self.time_left()?;
        let handle = self.table.get_mut(&device)?;
        Ok(handle.0.write(&report).map_err(|error| error.report()))
    }

    fn read(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        if self.hid_wait_left.is_zero() {
            return Err(self.violate(Violation::HidWait));
        }
        // A read never outlasts the call: it waits at most the time the call has left.
        let time_left = self.time_left()?;
        let timeout = Duration::from_millis(u64::from(timeout_ms))
            .min(self.limits.hid_read_timeout)
            .min(self.hid_wait_left)
            .min(time_left);
        let started = Instant::now();
        let handle = self.table.get_mut(&device)?;
        let report = handle.0.read(timeout).map_err(|error| error.report());
        self.hid_wait_left = self.hid_wait_left.saturating_sub(started.elapsed());
        Ok(report)
    }

    fn drop(&mut self, device: wasmtime::component::Resource<HidHandle>) -> wasmtime::Result<()> {
        self.table.delete(device)?;
        self.open_devices = self.open_devices.saturating_sub(1);
        Ok(())
    }
}

// `licet:plugin@0.1.0` imports the same `hid` interface under its own name: the same host
// functions serve it.
impl v0_1::hardware::licet::plugin::types::Host for CallState {}

impl v0_1::hardware::licet::plugin::hid::Host for CallState {
    fn open(
        &mut self,
        vendor_id: u16,
        product_id: u16,
    ) -> wasmtime::Result<Result<wasmtime::component::Resource<HidHandle>, String>> {
        hardware::licet::plugin::hid::Host::open(self, vendor_id, product_id)
    }
}

impl v0_1::hardware::licet::plugin::hid::HostDevice for CallState {
    fn write(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        report: Vec<u8>,
    ) -> wasmtime::Result<Result<(), String>> {
        hardware::licet::plugin::hid::HostDevice::write(self, device, report)
    }

    fn read(
        &mut self,
        device: wasmtime::component::Resource<HidHandle>,
        timeout_ms: u32,
    ) -> wasmtime::Result<Result<Vec<u8>, String>> {
        hardware::licet::plugin::hid::HostDevice::read(self, device, timeout_ms)
    }

    fn drop(&mut self, device: wasmtime::component::Resource<HidHandle>) -> wasmtime::Result<()> {
        hardware::licet::plugin::hid::HostDevice::drop(self, device)
    }
}
