//! EL1 exception vectors. IRQs taken at EL1 (slot 5: current EL, SP_EL1) go to
//! [`super::irq::handle`] with the caller-saved registers preserved; any other exception is
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

// Caller-saved registers (x0-x18, x29, x30) and ELR/SPSR, in a 192-byte frame: the handler is a normal Rust
// function, which preserves the rest.
guest_rt_irq:
    sub     sp, sp, #192
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
    str     x1, [sp, #176]
    bl      {irq}
    ldp     x30, x0, [sp, #160]
    msr     elr_el1, x0
    ldr     x1, [sp, #176]
    msr     spsr_el1, x1
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
    add     sp, sp, #192
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
