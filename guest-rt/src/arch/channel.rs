//! The inter-partition channel on the RT side: the one unsafe step (a slice of words over
//! the region hv names in our DTB, mapped non-cacheable by [`super::mmu`]), our own layout
//! checked once against hv's header, and each vCPU's endpoint (its parameter reader and
//! its telemetry writer) kept in the kernel's locked per-CPU slots, so a thread migrated
//! mid-update still writes under that block's lock.
//!
//! Owns the mapping and the slots; what goes through them is the `channel` crate's, and
//! when to read or publish is the app's. Nothing here waits for Linux: every operation is
//! the crate's fixed number of loads and stores (the slot lock is ours, RT-side only).

use log::{info, warn};
use spin::{Mutex, Once};

use channel::params::{ParamReader, Refresh};
use channel::schema::CONTROL;
use channel::telemetry::{Telemetry, TelemetryWriter};
use channel::{Channel, Layout, Region, Word};
use guest_rt::sync::percpu_locked::PerCpuLocked;
use guest_rt::WaitStatus;

use super::threads::{wait, with};

static CHANNEL: Once<Channel<'static>> = Once::new();

/// One RT CPU's side of the channel.
pub struct Endpoint {
    pub reader: ParamReader,
    pub writer: TelemetryWriter,
    /// The figures this CPU's block shows (published whole each time).
    pub telemetry: Telemetry,
}

static ENDPOINTS: Mutex<Option<PerCpuLocked<Endpoint>>> = Mutex::new(None);

/// Builds our layout for `region` and `vcpus`, compares hv's header with it once and says
/// what it found. A header that differs is reported, not obeyed: the RT side keeps its own
/// layout (Linux refuses a header it does not understand, so nothing gets through).
pub fn init(region: platform::config::Region, vcpus: usize) {
    let words = (region.size / 8) as usize;
    let layout = match Layout::new(words, vcpus) {
        Ok(l) => l,
        Err(e) => {
            warn!("channel {region}: no layout for {vcpus} vCPUs: {e}; channel unused");
            return;
        }
    };
    // SAFETY: hv names this region in our DTB as the channel: memory outside our RAM that
    // hv maps into our stage 2 for good, and that `mmu::build` identity-maps (page
    // aligned, so aligned for AtomicU64). Linux writes it concurrently, which atomics
    // allow; nothing here ever makes a non-atomic reference to it.
    let slice: &'static [Word] =
        unsafe { core::slice::from_raw_parts(region.base as *const Word, words) };
    let Ok(ch) = Channel::new(Region::new(slice), layout) else {
        return;
    };
    match ch.check_header() {
        Ok(()) => info!(
            "channel {region}: header valid (layout version {}, {vcpus} RT CPUs)",
            channel::layout::LAYOUT_VERSION
        ),
        Err(e) => warn!("channel {region}: header refused ({e}); using our own layout"),
    }
    CHANNEL.call_once(|| ch);
}

fn endpoints_ready() {
    with(|k, _| {
        let mut slots = ENDPOINTS.lock();
        if slots.is_none() {
            if let Some(ch) = CHANNEL.get() {
                *slots = Some(PerCpuLocked::new(k, |cpu| Endpoint {
                    reader: ParamReader::new(ch, cpu).expect("a reader per vCPU"),
                    writer: TelemetryWriter::new(ch, cpu).expect("a block per vCPU"),
                    telemetry: Telemetry::default(),
                }));
            }
        }
    });
}

/// Runs `op` on this vCPU's endpoint under its per-CPU lock (may sleep for the lock, held
/// only by RT threads). None without a channel.
pub fn with_endpoint<R>(op: impl FnOnce(&Channel, &mut Endpoint) -> R) -> Option<R> {
    let ch = CHANNEL.get()?;
    endpoints_ready();
    let mut slot = None;
    wait(|k, cpu| {
        let guard = ENDPOINTS.lock();
        let Some(slots) = guard.as_ref() else {
            return WaitStatus::Ready(guest_rt::WaitOutcome::Interrupted);
        };
        match slots.get_locked(k, cpu) {
            Ok((taken, status)) => {
                slot = Some(taken);
                status
            }
            Err(_) => WaitStatus::Ready(guest_rt::WaitOutcome::Interrupted),
        }
    });
    let slot = slot?;
    // `op` runs inside the kernel entry (its raw section): the crate's operations are a
    // bounded few hundred loads and stores, never a wait.
    with(move |k, cpu| {
        let mut guard = ENDPOINTS.lock();
        let slots = guard
            .as_mut()
            .expect("endpoints exist once a slot was taken");
        let result = slots
            .slot_mut(k, cpu, slot)
            .map(|endpoint| op(ch, endpoint))
            .ok();
        let _ = slots.put_locked(k, cpu, slot);
        result
    })
}

/// Takes the current parameters if they are new and good; the snapshot's `probe_period`
/// (us) when a new version was accepted.
pub fn refresh(ch: &Channel, endpoint: &mut Endpoint) -> Option<(u64, i64)> {
    match endpoint.reader.refresh(ch, &CONTROL) {
        Refresh::Accepted(version) => {
            endpoint.telemetry.params_version = version;
            let period = endpoint
                .reader
                .current()
                .and_then(|s| s.value(CONTROL.index("probe_period")?))?;
            Some((version, period))
        }
        _ => None,
    }
}
