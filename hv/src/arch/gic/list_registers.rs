//! The list-register interface of the physical GIC, one for both versions: making virtual
//! interrupts pending for the vCPU on this CPU (hardware-linked, SGI, emulated), asking
//! for a refill when they outnumber the list registers, and clearing a vCPU's interface
//! when it restarts. Values come from [`hv_core::list_register`]; this only reads and
//! writes them (GICv3 ICH_LR<n>_EL2 system registers, the GICv2 GICH frame).

use aarch64_cpu::registers::{
    Readable, Writeable, ICH_AP0R0_EL2, ICH_AP1R0_EL2, ICH_HCR_EL2, ICH_LR0_EL2, ICH_LR1_EL2,
    ICH_LR2_EL2, ICH_LR3_EL2, ICH_VMCR_EL2,
};
use hv_core::list_register::{self as lr, VirtualIrq};

use super::{Frames, Gic, PRIORITY};

/// ICH_HCR_EL2.UIE / GICH_HCR.UIE: maintenance interrupt when at most one list register
/// still holds an interrupt (so queued ones can be refilled).
const HCR_UIE: u32 = 1 << 1;

impl Gic {
    /// Forgets everything a previous guest left in this CPU's virtual interface before a
    /// vCPU (re)starts: list registers (the physical interrupt behind a hardware-linked
    /// one, pending or active, is deactivated, or its line would stay blocked for good), active priorities and the
    /// virtual machine control register. A vCPU powered on by PSCI starts like a reset CPU.
    pub fn reset_vcpu_interface(&self) {
        let count = self.list_registers.get().copied().unwrap_or(0);
        match &self.frames {
            Frames::V3 { .. } => {
                for n in 0..count.min(4) {
                    // A hardware-linked entry in any state (pending too) stands for a
                    // physical interrupt hv left active for the guest to deactivate: the
                    // guest is gone, hv does it.
                    if let Some(physical) = lr::v3::linked_physical(read_lr(n)) {
                        self.deactivate(physical);
                    }
                    write_lr(n, 0);
                }
                ICH_AP0R0_EL2.set(0);
                ICH_AP1R0_EL2.set(0);
                ICH_VMCR_EL2.set(0);
            }
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                for n in 0..count.min(64) {
                    // Any state, as above.
                    if let Some(physical) = lr::v2::linked_physical(gich.lr[n].get()) {
                        self.deactivate(physical);
                    }
                    gich.lr[n].set(0);
                }
                gich.apr.set(0);
                gich.vmcr.set(0);
            }
        }
    }

    /// Makes virtual interrupt `intid` pending for the vCPU on this CPU, linked to the
    /// physical interrupt of the same number (the guest's EOI deactivates it). Returns
    /// false when every list register is in use.
    pub fn inject_hw(&self, intid: u32) -> bool {
        self.write_free_lr(VirtualIrq::Hardware(intid))
    }

    /// Writes `irq`, pending, into a free list register (values from [`lr`]). False when
    /// every list register is in use.
    #[inline]
    fn write_free_lr(&self, irq: VirtualIrq) -> bool {
        let count = self.list_registers.get().copied().unwrap_or(0);
        match &self.frames {
            Frames::V3 { .. } => {
                let free = (0..count.min(4)).find(|&n| lr::v3::is_free(read_lr(n)));
                free.map(|n| write_lr(n, lr::v3::encode(irq, PRIORITY)))
                    .is_some()
            }
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                // GICH_ELRSR0 names the free ones.
                let empty = gich.elrsr0.get();
                let free = (0..count.min(32)).find(|&n| empty & (1 << n) != 0);
                free.map(|n| gich.lr[n].set(lr::v2::encode(irq, PRIORITY)))
                    .is_some()
            }
        }
    }

    /// Asks for (or stops asking for) a maintenance interrupt once the list registers
    /// drain: how interrupts queued beyond the list registers get their turn.
    pub fn request_refill(&self, on: bool) {
        match &self.frames {
            Frames::V3 { .. } => {
                let hcr = ICH_HCR_EL2.get();
                let uie = u64::from(HCR_UIE);
                ICH_HCR_EL2.set(if on { hcr | uie } else { hcr & !uie });
            }
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                let hcr = gich.hcr.get();
                gich.hcr
                    .set(if on { hcr | HCR_UIE } else { hcr & !HCR_UIE });
            }
        }
    }

    /// Makes virtual SGI `intid` from vCPU `source` pending for the vCPU on this CPU (not
    /// linked to any physical interrupt). False when every list register is in use.
    pub fn inject_sgi(&self, intid: u32, source: u32) -> bool {
        // An SGI already in a list register is not listed twice (the architecture forbids
        // two list registers with one vINTID): pending stays pending, active becomes
        // active and pending, as on a physical GIC.
        if self.merge_pending(intid, source) {
            return true;
        }
        self.write_free_lr(VirtualIrq::Sgi { intid, source })
    }

    /// Makes an emulated level-sensitive interrupt (one with no physical line behind it,
    /// like a Linux partition's console UART) pending for the vCPU on this CPU. False when
    /// every list register is in use.
    pub fn inject_virtual(&self, intid: u32) -> bool {
        let count = self.list_registers.get().copied().unwrap_or(0);
        // Held already: pending stays pending; active (the guest is in its handler) becomes
        // active and pending, so the still-high line is taken again after its EOI.
        let held = match &self.frames {
            Frames::V3 { .. } => (0..count.min(4)).find_map(|n| {
                let value = read_lr(n);
                lr::v3::holds(value, intid).then(|| write_lr(n, lr::v3::with_pending(value)))
            }),
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                (0..count.min(32)).find_map(|n| {
                    let value = gich.lr[n].get();
                    lr::v2::holds(value, intid).then(|| gich.lr[n].set(lr::v2::with_pending(value)))
                })
            }
        };
        held.is_some() || self.write_free_lr(VirtualIrq::Emulated(intid))
    }

    /// The interrupts of 32-line word `word` in this CPU's list registers: (pending,
    /// active, held in any state), bit n = INTID 32 * word + n.
    pub fn list_register_word(&self, word: usize) -> (u32, u32, u32) {
        let count = self.list_registers.get().copied().unwrap_or(0);
        let mut states = (0, 0, 0);
        let mut add = |held: Option<lr::Held>| {
            let Some(held) = held.filter(|h| (h.intid / 32) as usize == word) else {
                return;
            };
            let bit = 1 << (held.intid % 32);
            states.0 |= if held.pending { bit } else { 0 };
            states.1 |= if held.active { bit } else { 0 };
            states.2 |= bit;
        };
        match &self.frames {
            Frames::V3 { .. } => (0..count.min(4)).for_each(|n| add(lr::v3::held(read_lr(n)))),
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                (0..count.min(64)).for_each(|n| add(lr::v2::held(gich.lr[n].get())));
            }
        }
        states
    }

    /// Marks an SGI that is already in a list register pending; false if none holds it.
    fn merge_pending(&self, intid: u32, source: u32) -> bool {
        let count = self.list_registers.get().copied().unwrap_or(0);
        match &self.frames {
            Frames::V3 { .. } => {
                let found = (0..count.min(4)).find(|&n| lr::v3::holds(read_lr(n), intid));
                found
                    .map(|n| write_lr(n, lr::v3::with_pending(read_lr(n))))
                    .is_some()
            }
            Frames::V2 { gich, .. } => {
                let gich = gich.get();
                let found = (0..count.min(32))
                    .find(|&n| lr::v2::holds_sgi(gich.lr[n].get(), intid, source));
                found
                    .map(|n| gich.lr[n].set(lr::v2::with_pending(gich.lr[n].get())))
                    .is_some()
            }
        }
    }
}

fn read_lr(n: usize) -> u64 {
    match n {
        0 => ICH_LR0_EL2.get(),
        1 => ICH_LR1_EL2.get(),
        2 => ICH_LR2_EL2.get(),
        _ => ICH_LR3_EL2.get(),
    }
}

fn write_lr(n: usize, value: u64) {
    match n {
        0 => ICH_LR0_EL2.set(value),
        1 => ICH_LR1_EL2.set(value),
        2 => ICH_LR2_EL2.set(value),
        _ => ICH_LR3_EL2.set(value),
    }
}
