//! Masking this vCPU's interrupts around a raw section, restoring the previous state after.
//!
//! Owns nothing but the DAIF save/restore: every spinlock that interrupt handlers or a
//! preempting thread could also want (the kernel lock, the heap, the console line) is taken
//! inside one of these, so the holder can neither be interrupted into a handler that spins
//! on it nor be switched out while holding it.

use aarch64_cpu::registers::{Readable, Writeable, DAIF};

/// Interrupts (IRQ and FIQ) masked until dropped; then DAIF is what it was before.
pub struct IrqMasked {
    saved: u64,
}

impl IrqMasked {
    pub fn new() -> IrqMasked {
        let saved = DAIF.get();
        DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
        IrqMasked { saved }
    }
}

impl Drop for IrqMasked {
    fn drop(&mut self) {
        DAIF.set(self.saved);
    }
}

/// Lets interrupts in on this vCPU (a thread's or the idle loop's normal state).
pub fn unmask() {
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Unmasked + DAIF::F::Masked);
}
