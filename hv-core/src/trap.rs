//! What a trap from a guest is, and the register file it arrives with.
//!
//! [`Frame`] is the context hv's EL2 vectors save (its layout is the vectors' contract);
//! [`Trap::decode`] turns ESR_EL2's exception class into the action hv takes; a trapped
//! MMIO load is completed into the guest's register by [`Frame::complete_load`], which
//! applies the access width, sign extension and register width the syndrome names.
//!
//! Portable and host-tested; it never reads a system register (the arch layer passes the
//! values in).

use core::fmt;

use crate::esr::{DataAbort, Esr};

/// The context saved by the EL2 vectors, in the order their assembly stores it.
#[repr(C)]
pub struct Frame {
    pub x: [u64; 31],
    pub elr: u64,
    pub spsr: u64,
    pub esr: u64,
    pub far: u64,
    pad: u64,
}

/// Bytes the vectors reserve for a [`Frame`] (a multiple of 16: the stack stays aligned).
pub const FRAME_SIZE: usize = core::mem::size_of::<Frame>();
const _: () = assert!(FRAME_SIZE.is_multiple_of(16));

impl Frame {
    /// A frame with every register zero (for tests and for building one by hand).
    pub const fn zeroed() -> Self {
        Self {
            x: [0; 31],
            elr: 0,
            spsr: 0,
            esr: 0,
            far: 0,
            pad: 0,
        }
    }

    /// General-purpose register `n` as an instruction reads it (31 is XZR: zero).
    #[inline]
    pub fn reg(&self, n: u8) -> u64 {
        self.x.get(usize::from(n)).copied().unwrap_or(0)
    }

    /// Writes register `n` as an instruction would (a write to XZR, 31, is discarded).
    #[inline]
    pub fn set_reg(&mut self, n: u8, value: u64) {
        if let Some(x) = self.x.get_mut(usize::from(n)) {
            *x = value;
        }
    }

    /// Completes the trapped load `da` with `value` read from the emulated device: the
    /// destination register gets what the load instruction would have put there.
    #[inline]
    pub fn complete_load(&mut self, da: DataAbort, value: u64) {
        self.set_reg(da.register, da.loaded(value));
    }

    /// Steps over the trapped instruction (every trap hv emulates is a 4-byte A64 one).
    #[inline]
    pub fn skip_instruction(&mut self) {
        self.elr += 4;
    }
}

impl fmt::Display for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, pair) in self.x.chunks(2).enumerate() {
            match pair {
                [a, b] => writeln!(f, "  x{:<2} {a:#018x}  x{:<2} {b:#018x}", 2 * i, 2 * i + 1)?,
                [a] => writeln!(f, "  x{:<2} {a:#018x}", 2 * i)?,
                _ => {}
            }
        }
        write!(f, "  elr {:#018x}  spsr {:#010x}", self.elr, self.spsr)
    }
}

/// What a synchronous trap from a guest's EL1 asks of hv, by exception class (Arm ARM
/// D24.2.40, ESR_EL2.EC).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trap {
    /// HVC (EC 0x16): PSCI, SMCCC and Bulkhead's hypercalls.
    Hvc,
    /// SMC (EC 0x17): firmware belongs to hv; refused.
    Smc,
    /// WFI/WFE (EC 0x01): stepped over.
    WaitForInterrupt,
    /// A write of ICC_SGI1R_EL1 (EC 0x18): the guest sends an SGI; the value is in
    /// general-purpose register `register`.
    Sgi1rWrite { register: u8 },
    /// A stage-2 data abort from the guest (EC 0x24): an emulated device or a stray access.
    /// Only an abort whose syndrome describes the access (`valid`, ISV) can be emulated.
    DataAbort(DataAbort),
    /// A stage-2 instruction abort from the guest (EC 0x20).
    InstructionAbort,
    /// An MRS/MSR (EC 0x18) of a PMU or debug register, trapped by MDCR_EL2 (TPM, TPMCR;
    /// TDA, TDOSA, TDRA): hv answers it read-as-zero, write-ignored (no partition gets
    /// the PMU or the debug hardware, so none can disturb hv's counters or another's).
    /// `register` is the general-purpose register moved to or from.
    MonitorAccess {
        unit: Monitor,
        register: u8,
        read: bool,
    },
    /// Anything else (hv emulates nothing more).
    Other,
}

/// The unit a trapped [`Trap::MonitorAccess`] belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Monitor {
    /// Performance monitors: PMCR_EL0 and the rest of op0 3, op1 3, CRn 9, CRm 12-14;
    /// the event counters and types (op1 3, CRn 14, CRm 8-15); PMINTEN{SET,CLR}_EL1.
    Pmu,
    /// The debug registers (op0 2: breakpoints, watchpoints, MDSCR_EL1, the OS lock,
    /// MDRAR_EL1, the debug communication channel).
    Debug,
}

/// ESR_EL2 exception classes hv acts on.
const EC_WFX: u8 = 0x01;
const EC_HVC64: u8 = 0x16;
const EC_SMC64: u8 = 0x17;
const EC_SYSREG: u8 = 0x18;
const EC_IABT_LOWER: u8 = 0x20;
const EC_DABT_LOWER: u8 = 0x24;

impl Trap {
    #[inline]
    pub fn decode(esr: Esr) -> Self {
        match esr.ec() {
            EC_HVC64 => Self::Hvc,
            EC_SMC64 => Self::Smc,
            EC_WFX => Self::WaitForInterrupt,
            EC_SYSREG if is_sgi1r_write(esr) => Self::Sgi1rWrite {
                register: ((esr.iss() >> 5) & 0x1f) as u8,
            },
            EC_SYSREG => monitor_unit(esr).map_or(Self::Other, |unit| Self::MonitorAccess {
                unit,
                register: ((esr.iss() >> 5) & 0x1f) as u8,
                read: esr.iss() & 1 != 0,
            }),
            EC_DABT_LOWER => esr.data_abort().map_or(Self::Other, Self::DataAbort),
            EC_IABT_LOWER => Self::InstructionAbort,
            _ => Self::Other,
        }
    }
}

/// The PMU or debug register a trapped MRS/MSR names, if it is one (encodings: Arm ARM
/// C5.3, "op0 == 0b10" debug and "op0 == 0b11, CRn 9/14" performance monitors).
#[inline]
fn monitor_unit(esr: Esr) -> Option<Monitor> {
    let iss = esr.iss();
    let (op0, op2, op1, crn, crm) = (
        (iss >> 20) & 3,
        (iss >> 17) & 7,
        (iss >> 14) & 7,
        (iss >> 10) & 0xf,
        (iss >> 1) & 0xf,
    );
    match (op0, op1, crn, crm, op2) {
        (2, ..) => Some(Monitor::Debug),
        (3, 3, 9, 12..=14, _) | (3, 3, 14, 8..=15, _) | (3, 0, 9, 14, 1 | 2) => Some(Monitor::Pmu),
        _ => None,
    }
}

/// ICC_SGI1R_EL1 (op0 3, op1 0, CRn 12, CRm 11, op2 5) written by the guest: trapped
/// because HCR_EL2.IMO is set. ISS layout: Arm ARM D24.2.40, EC 0x18.
#[inline]
fn is_sgi1r_write(esr: Esr) -> bool {
    let iss = esr.iss();
    let (op0, op2, op1, crn, crm, read) = (
        (iss >> 20) & 3,
        (iss >> 17) & 7,
        (iss >> 14) & 7,
        (iss >> 10) & 0xf,
        (iss >> 1) & 0xf,
        iss & 1,
    );
    (op0, op1, crn, crm, op2, read) == (3, 0, 12, 11, 5, 0)
}

/// The faulting intermediate physical address of a stage-2 abort: HPFAR_EL2.FIPA (the
/// page, bits [47:12] of the IPA) plus the offset within the page from FAR_EL2.
#[inline]
pub fn fault_ipa(hpfar_fipa: u64, far: u64) -> u64 {
    (hpfar_fipa << 12) | (far & 0xfff)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A data abort syndrome from a lower EL with ISV set.
    fn load(size_log2: u64, register: u64, sse: bool, sf: bool) -> DataAbort {
        let iss = (1 << 24)
            | (size_log2 << 22)
            | (u64::from(sse) << 21)
            | (register << 16)
            | (u64::from(sf) << 15);
        Esr((0x24 << 26) | (1 << 25) | iss)
            .data_abort()
            .expect("a data abort")
    }

    #[test]
    fn a_sign_extended_byte_load_fills_a_w_register_to_32_bits() {
        // ldrsb w3, [x0] of 0x80.
        let mut frame = Frame::zeroed();
        frame.x[3] = u64::MAX;
        frame.complete_load(load(0, 3, true, false), 0x80);
        assert_eq!(frame.x[3], 0xffff_ff80);
    }

    #[test]
    fn a_sign_extended_byte_load_fills_an_x_register_to_64_bits() {
        // ldrsb x3, [x0] of 0x80.
        let mut frame = Frame::zeroed();
        frame.complete_load(load(0, 3, true, true), 0x80);
        assert_eq!(frame.x[3], 0xffff_ffff_ffff_ff80);
    }

    #[test]
    fn sign_extension_of_halfwords_and_words() {
        let mut frame = Frame::zeroed();
        // ldrsh x1 of 0x8001, ldrsw x2 of 0x8000_0000, ldrsh w4 of 0x7fff (positive).
        frame.complete_load(load(1, 1, true, true), 0x8001);
        frame.complete_load(load(2, 2, true, true), 0x8000_0000);
        frame.complete_load(load(1, 4, true, false), 0x7fff);
        assert_eq!(frame.x[1], 0xffff_ffff_ffff_8001);
        assert_eq!(frame.x[2], 0xffff_ffff_8000_0000);
        assert_eq!(frame.x[4], 0x7fff);
    }

    #[test]
    fn a_zero_extending_load_keeps_only_the_accessed_bytes() {
        // ldrb w5 of a device value with stray high bits; ldr w6 clears the top half of x6.
        let mut frame = Frame::zeroed();
        frame.x[6] = u64::MAX;
        frame.complete_load(load(0, 5, false, false), 0x1_ff80);
        frame.complete_load(load(2, 6, false, false), 0x1234_5678);
        assert_eq!(frame.x[5], 0x80);
        assert_eq!(frame.x[6], 0x1234_5678);
    }

    #[test]
    fn a_64_bit_load_is_written_as_is() {
        let mut frame = Frame::zeroed();
        frame.complete_load(load(3, 7, false, true), 0x8000_0000_0000_0001);
        assert_eq!(frame.x[7], 0x8000_0000_0000_0001);
    }

    #[test]
    fn a_load_into_xzr_is_discarded() {
        let mut frame = Frame::zeroed();
        frame.complete_load(load(2, 31, true, true), 0x8000_0000);
        assert!(frame.x.iter().all(|&x| x == 0));
    }

    #[test]
    fn exception_classes_map_to_actions() {
        assert_eq!(Trap::decode(Esr(0x16 << 26)), Trap::Hvc);
        assert_eq!(Trap::decode(Esr(0x17 << 26)), Trap::Smc);
        assert_eq!(Trap::decode(Esr(0x01 << 26)), Trap::WaitForInterrupt);
        assert_eq!(Trap::decode(Esr(0x20 << 26)), Trap::InstructionAbort);
        assert_eq!(Trap::decode(Esr(0x00 << 26)), Trap::Other);
        // A data abort at EL2 itself is never a guest's MMIO access.
        assert_eq!(Trap::decode(Esr(0x25 << 26 | 1 << 24)), Trap::Other);
        // Without ISV the access cannot be emulated, but it still says read or write.
        let Trap::DataAbort(da) = Trap::decode(Esr(0x24 << 26 | 1 << 6)) else {
            panic!("not a data abort");
        };
        assert!(!da.valid && da.write);
        let da = load(2, 9, false, false);
        let esr = Esr((0x24 << 26) | (1 << 24) | (2 << 22) | (9 << 16));
        assert_eq!(Trap::decode(esr), Trap::DataAbort(da));
    }

    /// ESR of a trapped MSR/MRS (EC 0x18) of the register op0:op1:CRn:CRm:op2 via `rt`.
    fn sysreg(op0: u64, op1: u64, crn: u64, crm: u64, op2: u64, rt: u64, read: bool) -> Esr {
        let iss = (op0 << 20)
            | (op2 << 17)
            | (op1 << 14)
            | (crn << 10)
            | (rt << 5)
            | (crm << 1)
            | u64::from(read);
        Esr((0x18 << 26) | (1 << 25) | iss)
    }

    #[test]
    fn only_a_write_of_icc_sgi1r_el1_is_an_sgi() {
        assert_eq!(
            Trap::decode(sysreg(3, 0, 12, 11, 5, 7, false)),
            Trap::Sgi1rWrite { register: 7 }
        );
        // A read of it, ICC_ASGI1R_EL1 (op2 6) and ICC_SGI0R_EL1 (op2 7) are not.
        assert_eq!(Trap::decode(sysreg(3, 0, 12, 11, 5, 7, true)), Trap::Other);
        assert_eq!(Trap::decode(sysreg(3, 0, 12, 11, 6, 7, false)), Trap::Other);
        assert_eq!(Trap::decode(sysreg(3, 0, 12, 11, 7, 7, false)), Trap::Other);
    }

    #[test]
    fn pmu_and_debug_registers_are_monitor_accesses() {
        let pmu = |rt, read| Trap::MonitorAccess {
            unit: Monitor::Pmu,
            register: rt,
            read,
        };
        // PMCR_EL0 write, PMCCNTR_EL0 read, PMUSERENR_EL0 write (Linux's boot), PMEVCNTR3,
        // PMCCFILTR_EL0, PMINTENSET_EL1.
        assert_eq!(
            Trap::decode(sysreg(3, 3, 9, 12, 0, 2, false)),
            pmu(2, false)
        );
        assert_eq!(Trap::decode(sysreg(3, 3, 9, 13, 0, 4, true)), pmu(4, true));
        assert_eq!(
            Trap::decode(sysreg(3, 3, 9, 14, 0, 31, false)),
            pmu(31, false)
        );
        assert_eq!(Trap::decode(sysreg(3, 3, 14, 8, 3, 1, true)), pmu(1, true));
        assert_eq!(
            Trap::decode(sysreg(3, 3, 14, 15, 7, 1, false)),
            pmu(1, false)
        );
        assert_eq!(
            Trap::decode(sysreg(3, 0, 9, 14, 1, 1, false)),
            pmu(1, false)
        );
        // OSLAR_EL1, MDSCR_EL1, DBGBVR0_EL1: debug.
        for (crn, crm, op2) in [(1, 0, 4), (0, 2, 2), (0, 0, 4)] {
            assert_eq!(
                Trap::decode(sysreg(2, 0, crn, crm, op2, 0, false)),
                Trap::MonitorAccess {
                    unit: Monitor::Debug,
                    register: 0,
                    read: false
                }
            );
        }
        // Not monitors: CNTV_CTL_EL0 (3, 3, 14, 3, 1), PMSCR_EL1 (SPE, 3, 0, 9, 9, 0),
        // PMINTENSET's neighbours in CRm 14 of op1 0 (op2 0, 3).
        assert_eq!(Trap::decode(sysreg(3, 3, 14, 3, 1, 0, true)), Trap::Other);
        assert_eq!(Trap::decode(sysreg(3, 0, 9, 9, 0, 0, true)), Trap::Other);
        assert_eq!(Trap::decode(sysreg(3, 0, 9, 14, 0, 0, true)), Trap::Other);
        assert_eq!(Trap::decode(sysreg(3, 0, 9, 14, 3, 0, true)), Trap::Other);
    }

    #[test]
    fn the_fault_ipa_joins_the_page_and_the_offset() {
        assert_eq!(fault_ipa(0x8_0000, 0xffff_0000_1234_5abc), 0x8000_0abc);
    }
}
