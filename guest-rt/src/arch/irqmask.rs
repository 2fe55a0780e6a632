//! Masking this vCPU's interrupts around a raw section, restoring the previous state after.
//!
//! Owns nothing but the DAIF save/restore: every spinlock that interrupt handlers or a
//! preempting thread could also want (the kernel lock, the heap, the console line) is taken
//! inside one of these, so the holder can neither be interrupted into a handler that spins
//! on it nor be switched out while holding it. The outermost mask of a section (interrupts
//! were open) and every return to open interrupts are reported to the latency tracer
//! ([`super::trace`]), with the code that masked.

use aarch64_cpu::registers::{Readable, Writeable, DAIF};
use guest_rt::tracing::sections::Site;

use super::trace;

/// Interrupts (IRQ and FIQ) masked until dropped; then DAIF is what it was before.
pub struct IrqMasked {
    saved: u64,
}

impl IrqMasked {
    /// Masks interrupts; the caller (through any `#[track_caller]` callers) is the site the
    /// tracer names if this section is the longest.
    #[track_caller]
    #[inline]
    pub fn new() -> IrqMasked {
        let saved = DAIF.get();
        DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Masked + DAIF::F::Masked);
        if !was_masked(saved) {
            trace::masked(Site::Code(core::panic::Location::caller()));
        }
        IrqMasked { saved }
    }
}

fn was_masked(daif: u64) -> bool {
    DAIF::I.read(daif) != 0
}

impl Drop for IrqMasked {
    #[inline]
    fn drop(&mut self) {
        if !was_masked(self.saved) {
            trace::unmasking();
        }
        DAIF.set(self.saved);
    }
}

/// Lets interrupts in on this vCPU (a thread's or the idle loop's normal state).
pub fn unmask() {
    if DAIF.is_set(DAIF::I) {
        trace::unmasking();
    }
    DAIF.write(DAIF::D::Masked + DAIF::A::Masked + DAIF::I::Unmasked + DAIF::F::Masked);
}
