//! What a partition sees when it does something hv refuses and hv chooses to answer with
//! an exception instead of stopping the vCPU: a synchronous external abort for memory that
//! is not its own (as a bus error from hardware would be), an undefined instruction for a
//! trapped instruction hv does not emulate, delivered to the guest's own EL1 vectors.
//!
//! Linux handles such an abort itself (a user process gets SIGBUS, the kernel oopses only
//! if the kernel made the access), so a stray `/dev/mem` read costs Linux one process, and
//! hv nothing. This module computes the register values (portable, host-tested); the arch
//! side writes them. It never decides *whether* to inject: that is the trap handler's
//! policy (Linux partitions get the abort, the RT partition's vCPU is stopped).
//!
//! Facts from the Arm ARM (DDI 0487): exception vector offsets (D1.10.2, table "Vector
//! offsets from vector table base address"), ESR_ELx layout (D24.2.40: EC [31:26], IL
//! [25], ISS [24:0]; data abort ISS: WnR [6], DFSC [5:0]; DFSC/IFSC 0b010000 =
//! synchronous external abort, not on a translation table walk), SPSR M[3:0] encodings.

/// The abort hv raised at stage 2, as the trap handler saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A load or store (`write` from ESR_EL2.WnR).
    Data { write: bool },
    /// An instruction fetch.
    Fetch,
}

/// Register values that make the guest take the abort at its EL1.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Injection {
    /// Written to ESR_EL1.
    pub esr_el1: u64,
    /// Added to VBAR_EL1 to get the new PC.
    pub vector_offset: u64,
    /// The guest's PSTATE on entry to its handler (becomes SPSR_EL2 for the `eret`).
    pub spsr: u64,
}

/// EL1h (EL1 using SP_EL1) with D, A, I and F masked: PSTATE on any exception to EL1.
const SPSR_EL1H_ALL_MASKED: u64 = 0x3c5;
/// PSTATE.PAN, set on exception entry when the CPU has PAN and SCTLR_EL1.SPAN is 0.
const SPSR_PAN: u64 = 1 << 22;
/// EC 0: unknown reason, what an undefined instruction raises.
const EC_UNKNOWN: u64 = 0x00;
/// SPSR M[4] = 1: the interrupted code ran in AArch32.
const SPSR_AARCH32: u64 = 1 << 4;
const EC_DATA_LOWER: u64 = 0x24;
const EC_DATA_SAME: u64 = 0x25;
const EC_FETCH_LOWER: u64 = 0x20;
const EC_FETCH_SAME: u64 = 0x21;
/// ESR IL: the trapped instruction was 32 bits (always, for an abort on an A64 access).
const IL: u64 = 1 << 25;
const WNR: u64 = 1 << 6;
const SYNC_EXTERNAL_ABORT: u64 = 0b01_0000;

/// PSTATE bits on entry to the guest's EL1 that depend on the CPU and the guest's
/// configuration (Arm ARM D1.10.3 "PSTATE on exception entry"). Bulkhead's cores are
/// Armv8.0 (Cortex-A72): of PAN, SSBS and TCO only PAN could exist; the arch side says
/// whether it must be set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EntryState {
    /// The CPU implements PAN and SCTLR_EL1.SPAN is 0.
    pub set_pan: bool,
}

/// Whether the interrupted code ran at EL0 (AArch64 EL0t, or any AArch32 mode: a 32-bit
/// guest kernel is not supported), and the vector offset that follows.
fn origin(interrupted_spsr: u64) -> (bool, u64) {
    if interrupted_spsr & SPSR_AARCH32 != 0 {
        (true, 0x600) // lower EL, AArch32
    } else if (interrupted_spsr >> 2) & 0b11 == 0 {
        (true, 0x400) // lower EL, AArch64
    } else if interrupted_spsr & 1 == 0 {
        (false, 0x000) // current EL, SP_EL0
    } else {
        (false, 0x200) // current EL, SP_ELx
    }
}

fn entry_spsr(entry: EntryState) -> u64 {
    SPSR_EL1H_ALL_MASKED | if entry.set_pan { SPSR_PAN } else { 0 }
}

/// An undefined instruction at the trapped instruction (an instruction hv traps but does
/// not emulate, e.g. an implementation-defined system register).
pub fn undefined_instruction(interrupted_spsr: u64, entry: EntryState) -> Injection {
    let (_, vector_offset) = origin(interrupted_spsr);
    Injection {
        esr_el1: (EC_UNKNOWN << 26) | IL,
        vector_offset,
        spsr: entry_spsr(entry),
    }
}

/// The injection for `access`, taken by guest code running with PSTATE `interrupted_spsr`
/// (SPSR_EL2 at the trap).
pub fn external_abort(access: Access, interrupted_spsr: u64, entry: EntryState) -> Injection {
    let (from_el0, vector_offset) = origin(interrupted_spsr);
    let (ec, iss) = match (access, from_el0) {
        (Access::Data { write }, lower) => (
            if lower { EC_DATA_LOWER } else { EC_DATA_SAME },
            SYNC_EXTERNAL_ABORT | if write { WNR } else { 0 },
        ),
        (Access::Fetch, lower) => (
            if lower { EC_FETCH_LOWER } else { EC_FETCH_SAME },
            SYNC_EXTERNAL_ABORT,
        ),
    };
    Injection {
        esr_el1: (ec << 26) | IL | iss,
        vector_offset,
        spsr: entry_spsr(entry),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SPSR values: EL0t, EL1t, EL1h (interrupts unmasked), and AArch32 user mode.
    const EL0: u64 = 0b0000;
    const EL1T: u64 = 0b0100;
    const EL1H: u64 = 0b0101;
    const AARCH32_USR: u64 = 0b1_0000;
    const NO_PAN: EntryState = EntryState { set_pan: false };

    #[test]
    fn a_user_read_becomes_a_lower_el_data_abort_at_vector_0x400() {
        let i = external_abort(Access::Data { write: false }, EL0 | 0x2000_0000, NO_PAN);
        assert_eq!(i.vector_offset, 0x400);
        assert_eq!(i.esr_el1 >> 26, 0x24);
        assert_eq!(i.esr_el1 & 0x3f, 0x10, "synchronous external abort");
        assert_eq!(i.esr_el1 & WNR, 0);
        assert_ne!(i.esr_el1 & IL, 0);
        assert_eq!(i.spsr, 0x3c5, "handler runs at EL1h with DAIF masked");
    }

    #[test]
    fn a_kernel_write_becomes_a_same_el_data_abort_with_wnr() {
        let i = external_abort(Access::Data { write: true }, EL1H, NO_PAN);
        assert_eq!(i.vector_offset, 0x200);
        assert_eq!(i.esr_el1 >> 26, 0x25);
        assert_ne!(i.esr_el1 & WNR, 0);
        assert_eq!(
            external_abort(Access::Data { write: true }, EL1T, NO_PAN).vector_offset,
            0
        );
    }

    #[test]
    fn fetches_and_aarch32_callers_use_their_own_classes_and_vectors() {
        let i = external_abort(Access::Fetch, EL1H, NO_PAN);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x21, 0x200));
        let i = external_abort(Access::Fetch, EL0, NO_PAN);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x20, 0x400));
        let i = external_abort(Access::Data { write: false }, AARCH32_USR, NO_PAN);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x24, 0x600));
    }

    #[test]
    fn pan_is_set_on_entry_only_when_asked() {
        let pan = EntryState { set_pan: true };
        let i = external_abort(Access::Data { write: false }, EL0, pan);
        assert_eq!(i.spsr, 0x3c5 | (1 << 22));
        assert_eq!(undefined_instruction(EL1H, NO_PAN).spsr, 0x3c5);
    }

    #[test]
    fn an_undefined_instruction_has_the_unknown_class_and_the_callers_vector() {
        let i = undefined_instruction(EL0, NO_PAN);
        assert_eq!(i.esr_el1, 1 << 25, "EC 0, IL 1, ISS 0");
        assert_eq!(i.vector_offset, 0x400);
        assert_eq!(undefined_instruction(EL1H, NO_PAN).vector_offset, 0x200);
    }
}
