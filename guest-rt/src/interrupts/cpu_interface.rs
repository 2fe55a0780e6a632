//! The values guest-rt exchanges with a GIC CPU interface, as plain numbers: what an
//! acknowledge (IAR) read means, and the register value that sends an SGI (GICv3
//! `ICC_SGI1R_EL1`, GICv2 `GICD_SGIR`).
//!
//! Owns the bit layouts (Arm IHI 0069 12.2 for ICC_*, IHI 0048B 4.3.15 and 4.4.4 for
//! GICD_SGIR and GICC_IAR) and refuses what a layout cannot express instead of masking it
//! into another meaning. Reading or writing the registers is the runtime's
//! (`arch/gic.rs`); this module never touches hardware.

/// INTIDs from here up (1020-1023) are special: "nothing to acknowledge" and its kin.
pub const SPURIOUS_FIRST: u32 = 1020;
/// SGIs are INTIDs 0-15.
pub const SGIS: u32 = 16;
/// GICv2 names at most 8 CPU interfaces.
pub const GICV2_MAX_CPUS: usize = 8;

/// An acknowledged interrupt: its INTID, and the value its EOI and deactivation must
/// write back (on GICv2 an SGI's also names the CPU that sent it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ack {
    pub intid: u32,
    pub value: u32,
}

/// GICv3 `ICC_IAR1_EL1`: INTID bits 23:0. `None` when nothing real was acknowledged.
#[inline]
pub fn ack_v3(iar: u64) -> Option<Ack> {
    let intid = iar as u32 & 0xff_ffff;
    (intid < SPURIOUS_FIRST).then_some(Ack {
        intid,
        value: intid,
    })
}

/// GICv2 `GICC_IAR`: INTID bits 9:0 and, for an SGI, the sending CPU bits 12:10, both
/// given back at EOI and deactivation. `None` when nothing real was acknowledged.
#[inline]
pub fn ack_v2(iar: u32) -> Option<Ack> {
    let value = iar & 0x1fff;
    let intid = value & 0x3ff;
    (intid < SPURIOUS_FIRST).then_some(Ack { intid, value })
}

/// GICv3 `ICC_SGI1R_EL1` sending SGI `intid` to the one CPU with affinity `mpidr`:
/// Aff3 bits 55:48, Aff2 39:32, Aff1 23:16, the range selector (Aff0 bits 7:4) bits
/// 47:44, INTID bits 27:24, and the target list bit Aff0 bits 3:0. `None` for an INTID
/// that is no SGI.
#[inline]
pub fn sgi1r(intid: u32, mpidr: u64) -> Option<u64> {
    if intid >= SGIS {
        return None;
    }
    let aff = |shift: u32| (mpidr >> shift) & 0xff;
    let aff0 = aff(0);
    Some(
        aff(32) << 48
            | (aff0 >> 4) << 44
            | aff(16) << 32
            | u64::from(intid) << 24
            | aff(8) << 16
            | 1 << (aff0 & 0xf),
    )
}

/// GICv2 `GICD_SGIR` sending SGI `intid` to CPU interface `target` (target list filter
/// 0: the list; CPU target list bits 23:16, INTID bits 3:0). `None` for an INTID that is
/// no SGI or a CPU GICv2 cannot name.
#[inline]
pub fn gicd_sgir(intid: u32, target: usize) -> Option<u32> {
    if intid >= SGIS || target >= GICV2_MAX_CPUS {
        return None;
    }
    Some((1u32 << target) << 16 | intid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn spurious_and_special_intids_acknowledge_nothing() {
        for intid in [1020u32, 1021, 1022, 1023] {
            assert_eq!(ack_v3(u64::from(intid)), None);
            assert_eq!(ack_v2(intid), None);
        }
        assert_eq!(
            ack_v3(27),
            Some(Ack {
                intid: 27,
                value: 27
            })
        );
    }

    #[test]
    fn a_gicv2_sgi_keeps_its_sender_for_the_eoi() {
        // SGI 3 from CPU 1: bits 12:10 = 1.
        let ack = ack_v2(1 << 10 | 3).unwrap();
        assert_eq!(
            ack,
            Ack {
                intid: 3,
                value: 1 << 10 | 3
            }
        );
        // Bits above 12 are not part of what is given back.
        assert_eq!(ack_v2(0xffff_e000 | 34).unwrap().value, 34);
    }

    #[test]
    fn sgi1r_places_every_affinity_field() {
        // Aff3 0x12, Aff2 0x34, Aff1 0x56, Aff0 0x17 (range 1, bit 7).
        let mpidr = 0x12_0000_0000 | 0x34_0000 | 0x5600 | 0x17;
        let v = sgi1r(15, mpidr).unwrap();
        assert_eq!(v >> 48 & 0xff, 0x12);
        assert_eq!(v >> 44 & 0xf, 1);
        assert_eq!(v >> 32 & 0xff, 0x34);
        assert_eq!(v >> 24 & 0xf, 15);
        assert_eq!(v >> 16 & 0xff, 0x56);
        assert_eq!(v & 0xffff, 1 << 7);
        // Under hv: virtual affinity, Aff0 = vCPU index.
        assert_eq!(sgi1r(15, 1), Some(15 << 24 | 0b10));
    }

    #[test]
    fn what_a_layout_cannot_say_is_refused() {
        assert_eq!(sgi1r(16, 0), None);
        assert_eq!(gicd_sgir(16, 0), None);
        assert_eq!(gicd_sgir(0, 8), None);
        assert_eq!(gicd_sgir(3, 1), Some(0x2_0003));
    }

    proptest! {
        /// Every SGI to every affinity decodes back to that SGI and affinity.
        #[test]
        fn sgi1r_round_trips(intid in 0u32..16, aff in any::<[u8; 4]>()) {
            let mpidr = u64::from(aff[3]) << 32
                | u64::from(aff[2]) << 16
                | u64::from(aff[1]) << 8
                | u64::from(aff[0]);
            let v = sgi1r(intid, mpidr).unwrap();
            prop_assert_eq!((v >> 24 & 0xf) as u32, intid);
            prop_assert_eq!(v >> 40 & 1, 0, "IRM stays 0: one target, not all");
            let list = v & 0xffff;
            prop_assert_eq!(list.count_ones(), 1);
            let aff0 = (v >> 44 & 0xf) << 4 | u64::from(list.trailing_zeros());
            let back = (v >> 48 & 0xff) << 32 | (v >> 32 & 0xff) << 16 | (v >> 16 & 0xff) << 8 | aff0;
            prop_assert_eq!(back, mpidr);
        }

        /// An acknowledged INTID is below the special range, and the value given back
        /// names the same INTID.
        #[test]
        fn acks_are_real_interrupts(iar in any::<u32>()) {
            if let Some(a) = ack_v2(iar) {
                prop_assert!(a.intid < SPURIOUS_FIRST);
                prop_assert_eq!(a.value & 0x3ff, a.intid);
            }
            if let Some(a) = ack_v3(u64::from(iar)) {
                prop_assert!(a.intid < SPURIOUS_FIRST);
                prop_assert_eq!(a.value, a.intid);
            }
        }
    }
}
