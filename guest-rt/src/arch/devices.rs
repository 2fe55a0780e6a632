//! The devices the partition's DTB passes through to it (anything at the root with a
//! `reg` and SPI `interrupts`), and the registry of their interrupt handlers.

use alloc::string::String;
use alloc::vec::Vec;

use guest_rt::interrupts::irq_registry::{IrqError, IrqRegistry};
use platform::config::Region;
use spin::{Mutex, Once};

pub struct Device {
    pub compatible: String,
    pub region: Region,
    /// INTIDs of its SPIs.
    pub irqs: Vec<u32>,
}

static DEVICES: Once<Vec<Device>> = Once::new();

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

fn be32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Reads the devices from the DTB (vCPU 0, once).
pub fn discover(dtb: &[u8]) -> &'static [Device] {
    DEVICES.call_once(|| {
        let Ok(fdt) = fdt::Fdt::new(dtb) else {
            return Vec::new();
        };
        let Some(root) = fdt.find_node("/") else {
            return Vec::new();
        };
        root.children()
            .filter_map(|node| {
                let compatible = node.compatible()?.first().into();
                let reg = node.reg()?.next()?;
                let cells = node.property("interrupts")?.value;
                // SPI specifiers only: <0 n flags> is INTID n + 32.
                let irqs: Vec<u32> = cells
                    .chunks_exact(12)
                    .filter(|c| be32(&c[0..4]) == 0)
                    .map(|c| be32(&c[4..8]) + 32)
                    .collect();
                Some(Device {
                    compatible,
                    region: Region::new(reg.starting_address as u64, reg.size? as u64),
                    irqs,
                })
            })
            .filter(|d| !d.irqs.is_empty())
            .collect()
    })
}

pub fn find(compatible: &str) -> Option<&'static Device> {
    DEVICES.get()?.iter().find(|d| d.compatible == compatible)
}

/// INTIDs of the SPIs the partition owns (its devices').
pub fn owned_spis() -> Vec<u32> {
    DEVICES
        .get()
        .map(|ds| ds.iter().flat_map(|d| d.irqs.iter().copied()).collect())
        .unwrap_or_default()
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

/// Physical MPIDRs of our vCPUs' CPUs, which hv lists (`bulkhead,physical-mpidr`) only for
/// exit-less partitions: their SGIs go straight to the physical GIC. Empty otherwise.
pub fn physical_mpidrs(dtb: &[u8]) -> Vec<u64> {
    let Ok(fdt) = fdt::Fdt::new(dtb) else {
        return Vec::new();
    };
    let Some(cpus) = fdt.find_node("/cpus") else {
        return Vec::new();
    };
    cpus.children()
        .filter_map(|cpu| {
            let v = cpu.property("bulkhead,physical-mpidr")?.value;
            Some(u64::from_be_bytes(v.get(..8)?.try_into().ok()?))
        })
        .collect()
}
