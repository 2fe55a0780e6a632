//! EL1 exception vectors. IRQs taken at EL1 (slot 5: current EL, SP_EL1) go to
//! [`super::irq::handle`] with every register the handler or a preempting thread may
//! change saved on the interrupted stack; any other exception is
//! a bug, reported with its syndrome, and the partition powers itself off (hv keeps
//! running).

use aarch64_cpu::registers::{Readable, ELR_EL1, ESR_EL1, FAR_EL1};
use core::arch::global_asm;

global_asm!(
    r#"
.macro SLOT n
    .balign 0x80
    mov     x0, #\n
    b       {handler}
.endm
.macro IRQ_SLOT
    .balign 0x80
    b       guest_rt_irq
.endm
    .section .text.vectors, "ax"
    .balign 0x800
    .global guest_rt_vectors
guest_rt_vectors:
    SLOT 0
    SLOT 1
    SLOT 2
    SLOT 3
    SLOT 4
    IRQ_SLOT
    SLOT 6
    SLOT 7
    SLOT 8
    SLOT 9
    SLOT 10
    SLOT 11
    SLOT 12
    SLOT 13
    SLOT 14
    SLOT 15

// The interrupted context's registers the handler may change, in a 720-byte frame on its
// own stack: x0-x18, x29, x30, ELR, SPSR, and all of q0-q31 with FPCR/FPSR. The FP/SIMD
// state is saved whole (not just the caller-saved part) because the handler may switch to
// another thread (preemption), which may use any of it; the Rust handler preserves x19-x28.
guest_rt_irq:
    sub     sp, sp, #720
    stp     x0, x1, [sp, #0]
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x29, [sp, #144]
    mrs     x0, elr_el1
    mrs     x1, spsr_el1
    stp     x30, x0, [sp, #160]
    mrs     x2, fpcr
    mrs     x3, fpsr
    stp     x1, x2, [sp, #176]
    str     x3, [sp, #192]
    add     x0, sp, #208
    stp     q0, q1, [x0, #0]
    stp     q2, q3, [x0, #32]
    stp     q4, q5, [x0, #64]
    stp     q6, q7, [x0, #96]
    stp     q8, q9, [x0, #128]
    stp     q10, q11, [x0, #160]
    stp     q12, q13, [x0, #192]
    stp     q14, q15, [x0, #224]
    stp     q16, q17, [x0, #256]
    stp     q18, q19, [x0, #288]
    stp     q20, q21, [x0, #320]
    stp     q22, q23, [x0, #352]
    stp     q24, q25, [x0, #384]
    stp     q26, q27, [x0, #416]
    stp     q28, q29, [x0, #448]
    stp     q30, q31, [x0, #480]
    bl      {irq}
    add     x0, sp, #208
    ldp     q0, q1, [x0, #0]
    ldp     q2, q3, [x0, #32]
    ldp     q4, q5, [x0, #64]
    ldp     q6, q7, [x0, #96]
    ldp     q8, q9, [x0, #128]
    ldp     q10, q11, [x0, #160]
    ldp     q12, q13, [x0, #192]
    ldp     q14, q15, [x0, #224]
    ldp     q16, q17, [x0, #256]
    ldp     q18, q19, [x0, #288]
    ldp     q20, q21, [x0, #320]
    ldp     q22, q23, [x0, #352]
    ldp     q24, q25, [x0, #384]
    ldp     q26, q27, [x0, #416]
    ldp     q28, q29, [x0, #448]
    ldp     q30, q31, [x0, #480]
    ldp     x1, x2, [sp, #176]
    ldr     x3, [sp, #192]
    msr     spsr_el1, x1
    msr     fpcr, x2
    msr     fpsr, x3
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldp     x0, x1, [sp, #0]
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x29, [sp, #144]
    add     sp, sp, #720
    eret
"#,
    handler = sym unexpected,
    irq = sym super::irq::handle,
);

unsafe extern "C" {
    #[link_name = "guest_rt_vectors"]
    pub fn vectors();
}

extern "C" fn unexpected(slot: u64) -> ! {
    super::console::print(format_args!(
        "FATAL: unexpected exception (vector slot {slot}): ESR {:#010x} FAR {:#x} ELR {:#x}; powering the partition off",
        ESR_EL1.get(),
        FAR_EL1.get(),
        ELR_EL1.get()
    ));
    super::boot::power_off()
}
