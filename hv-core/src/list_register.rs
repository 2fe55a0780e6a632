//! List-register values: how hv describes a virtual interrupt to the GIC's virtualization
//! interface, as numbers the arch driver writes (GICv3 ICH_LR<n>_EL2, 64 bits; GICv2
//! GICH_LR<n>, 32 bits) and the questions it asks of the values it reads back.
//!
//! Layouts: Arm IHI 0069 12.5.10 (ICH_LR<n>_EL2: State [63:62], HW [61], Group [60],
//! Priority [55:48], pINTID [44:32], vINTID [31:0]) and Arm IHI 0048B 5.3.8 (GICH_LR<n>:
//! HW [31], State [29:28], Priority [27:23], PhysicalID [19:10] or, without HW, CPUID
//! [12:10], VirtualID [9:0]). Portable and host-tested; it never touches a register.

/// A virtual interrupt to make pending for a vCPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VirtualIrq {
    /// Linked to the physical interrupt of the same number (the guest's EOI deactivates
    /// it): the vCPU's timer, its SPIs and PPIs.
    Hardware(u32),
    /// A virtual SGI from vCPU `source` (named in the GICv2 layout only).
    Sgi { intid: u32, source: u32 },
    /// An emulated interrupt with no physical line (the Linux console UART's SPI).
    Emulated(u32),
}

/// The list-register state field: 0 = invalid (free), 1 = pending, 2 = active, 3 = both.
const PENDING: u64 = 0b01;

/// GICv3 ICH_LR<n>_EL2 values.
pub mod v3 {
    use super::{VirtualIrq, PENDING};

    const STATE_SHIFT: u32 = 62;
    const HW: u64 = 1 << 61;
    const GROUP1: u64 = 1 << 60;
    const PRIORITY_SHIFT: u32 = 48;
    const PINTID_SHIFT: u32 = 32;
    const PINTID_MASK: u64 = 0x1fff;
    const VINTID_MASK: u64 = 0xffff_ffff;

    /// A pending group-1 entry for `irq` at `priority`.
    #[inline]
    pub fn encode(irq: VirtualIrq, priority: u8) -> u64 {
        let fixed = (PENDING << STATE_SHIFT) | GROUP1 | (u64::from(priority) << PRIORITY_SHIFT);
        fixed
            | match irq {
                VirtualIrq::Hardware(intid) => {
                    HW | (u64::from(intid) << PINTID_SHIFT) | u64::from(intid)
                }
                VirtualIrq::Sgi { intid, .. } | VirtualIrq::Emulated(intid) => u64::from(intid),
            }
    }

    /// The entry holds no interrupt (state invalid): it may be overwritten.
    #[inline]
    pub fn is_free(lr: u64) -> bool {
        lr >> STATE_SHIFT == 0
    }

    /// The entry holds virtual interrupt `intid`, pending or active.
    #[inline]
    pub fn holds(lr: u64, intid: u32) -> bool {
        !is_free(lr) && lr & VINTID_MASK == u64::from(intid)
    }

    /// The entry with its interrupt (also) pending: active becomes active and pending.
    #[inline]
    pub fn with_pending(lr: u64) -> u64 {
        lr | (PENDING << STATE_SHIFT)
    }

    /// The physical interrupt a hardware-linked entry in any state stands for (hv left it
    /// active for the guest to deactivate).
    pub fn linked_physical(lr: u64) -> Option<u32> {
        (lr & HW != 0 && !is_free(lr)).then_some(((lr >> PINTID_SHIFT) & PINTID_MASK) as u32)
    }

    /// The virtual interrupt an entry holds and its state, if it holds one.
    #[inline]
    pub fn held(lr: u64) -> Option<super::Held> {
        super::Held::of((lr & VINTID_MASK) as u32, (lr >> STATE_SHIFT) as u32)
    }
}

/// A list register's interrupt and state, as the guest sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub intid: u32,
    pub pending: bool,
    pub active: bool,
}

impl Held {
    /// From a vINTID and the 2-bit state field (0 = free).
    #[inline]
    fn of(intid: u32, state: u32) -> Option<Self> {
        let state = state & 0b11;
        (state != 0).then_some(Self {
            intid,
            pending: state & 0b01 != 0,
            active: state & 0b10 != 0,
        })
    }
}

/// GICv2 GICH_LR<n> values.
pub mod v2 {
    use super::VirtualIrq;

    const STATE_SHIFT: u32 = 28;
    const STATE_MASK: u32 = 0b11;
    const PENDING: u32 = super::PENDING as u32;
    const HW: u32 = 1 << 31;
    const PRIORITY_SHIFT: u32 = 23;
    const PHYSICAL_SHIFT: u32 = 10;
    const PHYSICAL_MASK: u32 = 0x3ff;
    const CPUID_SHIFT: u32 = 10;
    const CPUID_MASK: u32 = 0x7;
    const VIRTUAL_MASK: u32 = 0x3ff;
    /// CPUID and VirtualID: what tells one SGI entry from another.
    const SGI_ID_MASK: u32 = 0x1fff;

    /// A pending group-0 entry for `irq` at `priority` (the layout keeps its top 5 bits).
    #[inline]
    pub fn encode(irq: VirtualIrq, priority: u8) -> u32 {
        let fixed = (PENDING << STATE_SHIFT) | (u32::from(priority >> 3) << PRIORITY_SHIFT);
        fixed
            | match irq {
                VirtualIrq::Hardware(intid) => HW | (intid << PHYSICAL_SHIFT) | intid,
                VirtualIrq::Sgi { intid, source } => sgi_id(intid, source),
                VirtualIrq::Emulated(intid) => intid,
            }
    }

    /// CPUID and VirtualID of SGI `intid` from vCPU `source`.
    #[inline]
    fn sgi_id(intid: u32, source: u32) -> u32 {
        ((source & CPUID_MASK) << CPUID_SHIFT) | intid
    }

    /// The entry holds no interrupt (state invalid).
    #[inline]
    pub fn is_free(lr: u32) -> bool {
        (lr >> STATE_SHIFT) & STATE_MASK == 0
    }

    /// The entry holds virtual interrupt `intid`, pending or active.
    #[inline]
    pub fn holds(lr: u32, intid: u32) -> bool {
        !is_free(lr) && lr & VIRTUAL_MASK == intid
    }

    /// The entry holds SGI `intid` from vCPU `source`, pending or active.
    #[inline]
    pub fn holds_sgi(lr: u32, intid: u32, source: u32) -> bool {
        !is_free(lr) && lr & SGI_ID_MASK == sgi_id(intid, source)
    }

    /// The entry with its interrupt (also) pending.
    #[inline]
    pub fn with_pending(lr: u32) -> u32 {
        lr | (PENDING << STATE_SHIFT)
    }

    /// The physical interrupt a hardware-linked entry in any state stands for.
    pub fn linked_physical(lr: u32) -> Option<u32> {
        (lr & HW != 0 && !is_free(lr)).then_some((lr >> PHYSICAL_SHIFT) & PHYSICAL_MASK)
    }

    /// The virtual interrupt an entry holds and its state, if it holds one.
    #[inline]
    pub fn held(lr: u32) -> Option<super::Held> {
        super::Held::of(lr & VIRTUAL_MASK, lr >> STATE_SHIFT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// hv's priority for forwarded interrupts.
    const PRIORITY: u8 = 0xa0;

    #[test]
    fn held_entries_report_their_interrupt_and_state() {
        let lr = v3::encode(VirtualIrq::Hardware(27), PRIORITY);
        let pending = Held {
            intid: 27,
            pending: true,
            active: false,
        };
        assert_eq!(v3::held(lr), Some(pending));
        let both = Held {
            active: true,
            ..pending
        };
        assert_eq!(v3::held(lr | 0b11 << 62), Some(both));
        assert_eq!(v3::held(lr & !(0b11 << 62)), None);
        let sgi = v2::encode(
            VirtualIrq::Sgi {
                intid: 5,
                source: 3,
            },
            PRIORITY,
        );
        let active = (sgi & !(0b11 << 28)) | 0b10 << 28;
        assert_eq!(
            v2::held(active),
            Some(Held {
                intid: 5,
                pending: false,
                active: true
            })
        );
        assert_eq!(v2::held(5), None);
    }

    #[test]
    fn v3_hardware_entries_link_the_same_physical_interrupt() {
        let lr = v3::encode(VirtualIrq::Hardware(27), PRIORITY);
        // Pending, HW, group 1, priority 0xa0, pINTID 27, vINTID 27.
        assert_eq!(lr, 0x7000_0000_0000_0000 | 0xa0 << 48 | 27 << 32 | 27);
        assert!(!v3::is_free(lr) && v3::holds(lr, 27) && !v3::holds(lr, 28));
        assert_eq!(v3::linked_physical(lr), Some(27));
        // Once the guest deactivated it (state invalid) it links nothing.
        assert_eq!(v3::linked_physical(lr & !(0b11 << 62)), None);
    }

    #[test]
    fn v3_sgis_and_emulated_lines_are_not_linked() {
        let sgi = v3::encode(
            VirtualIrq::Sgi {
                intid: 3,
                source: 6,
            },
            PRIORITY,
        );
        assert_eq!(sgi, 0x5000_0000_0000_0000 | 0xa0 << 48 | 3);
        assert_eq!(v3::linked_physical(sgi), None);
        let uart = v3::encode(VirtualIrq::Emulated(33), PRIORITY);
        assert!(v3::holds(uart, 33));
        // Active only (state 2), then pending again: active and pending (state 3).
        let active = (uart & !(0b11 << 62)) | 0b10 << 62;
        assert_eq!(v3::with_pending(active) >> 62, 0b11);
        assert!(v3::is_free(0));
    }

    #[test]
    fn v2_entries_pack_priority_ids_and_the_sgi_source() {
        let hw = v2::encode(VirtualIrq::Hardware(40), PRIORITY);
        // HW, pending, priority 0xa0 >> 3 = 20, PhysicalID 40, VirtualID 40.
        assert_eq!(hw, 1 << 31 | 1 << 28 | 20 << 23 | 40 << 10 | 40);
        assert_eq!(v2::linked_physical(hw), Some(40));
        let sgi = v2::encode(
            VirtualIrq::Sgi {
                intid: 5,
                source: 7,
            },
            PRIORITY,
        );
        assert_eq!(sgi, 1 << 28 | 20 << 23 | 7 << 10 | 5);
        assert!(v2::holds_sgi(sgi, 5, 7) && !v2::holds_sgi(sgi, 5, 6));
        assert!(v2::holds(sgi, 5));
        assert_eq!(v2::linked_physical(sgi), None);
        let uart = v2::encode(VirtualIrq::Emulated(33), PRIORITY);
        assert_eq!(uart, 1 << 28 | 20 << 23 | 33);
        assert_eq!(v2::with_pending(2 << 28 | 33) >> 28, 0b11);
        assert!(v2::is_free(33) && !v2::is_free(uart));
    }
}
