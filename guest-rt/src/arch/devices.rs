//! The devices the partition's DTB passes through to it, as found once at boot (the
//! reading is the portable [`guest_rt::dtb`]), and the registry of their top-half
//! interrupt handlers.

use alloc::vec::Vec;

use guest_rt::dtb::Device;

use guest_rt::interrupts::irq_registry::{IrqError, IrqRegistry};
use spin::{Mutex, Once};

static DEVICES: Once<Vec<Device>> = Once::new();
/// The SPI Linux's doorbell raises (hv's `/hypervisor/doorbell`), if any.
static DOORBELL: Once<Option<u32>> = Once::new();

/// How the interrupt path ends an interrupt after its top half (it always drops the
/// priority first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Deactivate it now: the line can fire again.
    Deactivate,
    /// Leave it active: whoever the top half handed it to deactivates it later.
    LeaveActive,
}

/// A top-half interrupt handler (gets the INTID).
pub type Handler = fn(u32) -> Ending;

static HANDLERS: Once<Mutex<IrqRegistry<Handler>>> = Once::new();

/// The devices passed through, read from the DTB ([`guest_rt::dtb::passed_through`])
/// by vCPU 0, once; later calls return the same.
pub fn discover(dtb: &[u8]) -> &'static [Device] {
    DOORBELL.call_once(|| guest_rt::dtb::doorbell(dtb));
    DEVICES.call_once(|| guest_rt::dtb::passed_through(dtb))
}

/// The doorbell's SPI, which the partition owns like a device's line.
pub fn doorbell() -> Option<u32> {
    DOORBELL.get().copied().flatten()
}

pub fn find(compatible: &str) -> Option<&'static Device> {
    DEVICES.get()?.iter().find(|d| d.compatible == compatible)
}

/// INTIDs of the SPIs the partition owns (its devices' and the doorbell's).
pub fn owned_spis() -> Vec<u32> {
    let mut spis: Vec<u32> = DEVICES
        .get()
        .map(|ds| guest_rt::dtb::owned_spis(ds))
        .unwrap_or_default();
    spis.extend(doorbell());
    spis
}

fn registry() -> &'static Mutex<IrqRegistry<Handler>> {
    HANDLERS.call_once(|| Mutex::new(IrqRegistry::new(&owned_spis())))
}

/// Registers the top-half handler of an SPI the partition owns.
pub fn register(intid: u32, handler: Handler) -> Result<(), IrqError> {
    // Masked: the interrupt path reads the registry, and must never find it held by the
    // context it interrupted.
    let _masked = super::irqmask::IrqMasked::new();
    registry().lock().register(intid, handler)
}

/// The handler registered for `intid`, if any.
pub fn handler(intid: u32) -> Option<Handler> {
    let _masked = super::irqmask::IrqMasked::new();
    registry().lock().handler(intid)
}
