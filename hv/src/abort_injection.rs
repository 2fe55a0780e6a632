//! What a partition sees when it touches memory that is not its own and hv chooses to
//! answer with an exception instead of stopping the vCPU: a synchronous external abort,
//! delivered to the guest's own EL1 vectors exactly as a bus error from hardware would be.
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

/// The injection for `access`, taken by guest code running with PSTATE `interrupted_spsr`
/// (SPSR_EL2 at the trap).
pub fn external_abort(access: Access, interrupted_spsr: u64) -> Injection {
    let from_el0 = interrupted_spsr & SPSR_AARCH32 != 0 || (interrupted_spsr >> 2) & 0b11 == 0;
    let vector_offset = if interrupted_spsr & SPSR_AARCH32 != 0 {
        0x600 // lower EL, AArch32
    } else if from_el0 {
        0x400 // lower EL, AArch64
    } else if interrupted_spsr & 1 == 0 {
        0x000 // current EL, SP_EL0
    } else {
        0x200 // current EL, SP_ELx
    };
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
        spsr: SPSR_EL1H_ALL_MASKED,
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

    #[test]
    fn a_user_read_becomes_a_lower_el_data_abort_at_vector_0x400() {
        let i = external_abort(Access::Data { write: false }, EL0 | 0x2000_0000);
        assert_eq!(i.vector_offset, 0x400);
        assert_eq!(i.esr_el1 >> 26, 0x24);
        assert_eq!(i.esr_el1 & 0x3f, 0x10, "synchronous external abort");
        assert_eq!(i.esr_el1 & WNR, 0);
        assert_ne!(i.esr_el1 & IL, 0);
        assert_eq!(i.spsr, 0x3c5, "handler runs at EL1h with DAIF masked");
    }

    #[test]
    fn a_kernel_write_becomes_a_same_el_data_abort_with_wnr() {
        let i = external_abort(Access::Data { write: true }, EL1H);
        assert_eq!(i.vector_offset, 0x200);
        assert_eq!(i.esr_el1 >> 26, 0x25);
        assert_ne!(i.esr_el1 & WNR, 0);
        assert_eq!(
            external_abort(Access::Data { write: true }, EL1T).vector_offset,
            0
        );
    }

    #[test]
    fn fetches_and_aarch32_callers_use_their_own_classes_and_vectors() {
        let i = external_abort(Access::Fetch, EL1H);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x21, 0x200));
        let i = external_abort(Access::Fetch, EL0);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x20, 0x400));
        let i = external_abort(Access::Data { write: false }, AARCH32_USR);
        assert_eq!((i.esr_el1 >> 26, i.vector_offset), (0x24, 0x600));
    }
}
