//! Thread contexts: per-thread stacks and the switch between two threads' register state.
//!
//! Owns the saved-register layout and the switch itself, nothing about *who* runs (that is
//! the portable scheduler, driven by [`super::threads`]). A switch is an ordinary function
//! call, so per AAPCS64 it saves only what a callee must preserve: x19-x29, the link
//! register, d8-d15 (the callee-saved low halves of v8-v15), plus FPCR/FPSR, which are
//! per-thread state. Everything else a thread had live is already on its own stack: saved by
//! the compiler around the call, or, when the thread was preempted, by the IRQ entry
//! ([`super::exception`]), which saves all of x0-x18, q0-q31, FPCR and FPSR because the
//! interrupted code made no call.

use alloc::vec::Vec;
use core::arch::global_asm;

/// Size of the frame [`switch`] pushes: x19-x30 (12), d8-d15 (8), FPCR, FPSR.
const FRAME: usize = 176;
/// Offset of x30 (the address `switch` returns to) in the frame.
const LR_SLOT: usize = 88;
/// Offset of x19 (a new thread's argument) in the frame.
const X19_SLOT: usize = 0;

global_asm!(
    r#"
    .section .text.guest_rt_switch, "ax"
    .global guest_rt_switch
    .balign 16
// x0 = where to store the outgoing thread's sp, x1 = the incoming thread's saved sp.
guest_rt_switch:
    sub     sp, sp, #{frame}
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    mrs     x10, fpsr
    stp     x9, x10, [sp, #160]
    mov     x9, sp
    str     x9, [x0]
    mov     sp, x1
    ldp     x9, x10, [sp, #160]
    msr     fpcr, x9
    msr     fpsr, x10
    ldp     d14, d15, [sp, #144]
    ldp     d12, d13, [sp, #128]
    ldp     d10, d11, [sp, #112]
    ldp     d8, d9, [sp, #96]
    ldp     x29, x30, [sp, #80]
    ldp     x27, x28, [sp, #64]
    ldp     x25, x26, [sp, #48]
    ldp     x23, x24, [sp, #32]
    ldp     x21, x22, [sp, #16]
    ldp     x19, x20, [sp, #0]
    add     sp, sp, #{frame}
    ret

// A new thread's first instructions: `switch` "returned" here with its argument in x19.
    .global guest_rt_thread_entry
guest_rt_thread_entry:
    mov     x0, x19
    mov     x29, #0
    mov     x30, #0
    b       {start}
"#,
    frame = const FRAME,
    start = sym super::threads::thread_start,
);

unsafe extern "C" {
    #[link_name = "guest_rt_switch"]
    fn switch_asm(save_sp: *mut u64, load_sp: u64);
    #[link_name = "guest_rt_thread_entry"]
    fn thread_entry();
}

/// Saves the running context's callee-saved state on its stack, stores its stack pointer in
/// `*save_sp`, and resumes the context whose stack pointer is `load_sp`. Returns when some
/// later switch resumes the saved context.
///
/// # Safety
/// Interrupts must be masked; `load_sp` must come from a previous switch-out or from
/// [`Stack::new`], and no other CPU may resume that context concurrently (the kernel lock,
/// held across the switch and released by the incoming context, guarantees both).
pub unsafe fn switch(save_sp: *mut u64, load_sp: u64) {
    // SAFETY: the caller upholds the contract above; the asm follows AAPCS64 for a call.
    unsafe { switch_asm(save_sp, load_sp) }
}

/// One thread's stack, owned by its thread's record and freed once the thread has exited
/// and is off every CPU.
pub struct Stack {
    words: Vec<u128>,
}

impl Stack {
    pub const SIZE: usize = 16 * 1024;

    /// A stack whose first switch-in enters `threads::thread_start(arg)`. Returns the stack
    /// and the stack pointer to switch to.
    pub fn new(arg: u64) -> (Stack, u64) {
        let mut words = alloc::vec![0u128; Stack::SIZE / 16];
        let top = words.as_mut_ptr_range().end as u64;
        let sp = top - FRAME as u64;
        let frame = (sp - words.as_ptr() as u64) as usize / 16;
        // The frame is zero (x29 = 0 ends backtraces, FPCR/FPSR = 0 is the reset state)
        // except the return address and x19.
        let bytes = |w: &mut [u128], offset: usize, value: u64| {
            let word = &mut w[frame + offset / 16];
            let shift = (offset % 16) * 8;
            *word = (*word & !(u128::from(u64::MAX) << shift)) | (u128::from(value) << shift);
        };
        bytes(&mut words, LR_SLOT, thread_entry as *const () as u64);
        bytes(&mut words, X19_SLOT, arg);
        (Stack { words }, sp)
    }

    /// Whether `sp` lies in this stack (overflow checks).
    pub fn contains(&self, sp: u64) -> bool {
        let range = self.words.as_ptr_range();
        (range.start as u64..=range.end as u64).contains(&sp)
    }
}
