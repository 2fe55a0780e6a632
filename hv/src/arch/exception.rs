//! EL2 exception vectors: save the interrupted context into a [`Frame`], hand it to Rust,
//! restore it and `eret`.
//!
//! Synchronous exceptions, IRQs and SErrors from a guest go to [`super::vcpu`]; anything
//! taken from EL2 itself is a bug in `hv`: the handler prints a decoded report and stops
//! the machine. It never returns into a broken context.

use core::arch::global_asm;

use hv_core::esr::Esr;

pub use hv_core::trap::Frame;
use hv_core::trap::FRAME_SIZE;

/// Which of the 16 vector slots was taken.
#[derive(Clone, Copy, Debug)]
#[repr(u64)]
enum Origin {
    CurrentElSp0 = 0,
    CurrentElSpx = 1,
    LowerEl64 = 2,
    LowerEl32 = 3,
}

#[derive(Clone, Copy, Debug)]
#[repr(u64)]
enum Kind {
    Sync = 0,
    Irq = 1,
    Fiq = 2,
    SError = 3,
}

// Each slot saves x0/x1, then jumps to the common path with the slot number in x1.
global_asm!(
    r#"
.macro SLOT n
    .balign 0x80
    sub     sp, sp, #{frame}
    stp     x0, x1, [sp, #0]
    mov     x1, #\n
    b       hv_exception_common
.endm

    .section .text.vectors, "ax"
    .balign 0x800
    .global hv_vectors
hv_vectors:
    SLOT 0
    SLOT 1
    SLOT 2
    SLOT 3
    SLOT 4
    SLOT 5
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

hv_exception_common:
    stp     x2, x3, [sp, #16]
    stp     x4, x5, [sp, #32]
    stp     x6, x7, [sp, #48]
    stp     x8, x9, [sp, #64]
    stp     x10, x11, [sp, #80]
    stp     x12, x13, [sp, #96]
    stp     x14, x15, [sp, #112]
    stp     x16, x17, [sp, #128]
    stp     x18, x19, [sp, #144]
    stp     x20, x21, [sp, #160]
    stp     x22, x23, [sp, #176]
    stp     x24, x25, [sp, #192]
    stp     x26, x27, [sp, #208]
    stp     x28, x29, [sp, #224]
    mrs     x2, elr_el2
    stp     x30, x2, [sp, #240]
    mrs     x2, spsr_el2
    mrs     x3, esr_el2
    stp     x2, x3, [sp, #256]
    mrs     x2, far_el2
    str     x2, [sp, #272]
    mov     x0, sp
    bl      {handler}
    ldp     x30, x2, [sp, #240]
    msr     elr_el2, x2
    ldr     x2, [sp, #256]
    msr     spsr_el2, x2
    ldp     x2, x3, [sp, #16]
    ldp     x4, x5, [sp, #32]
    ldp     x6, x7, [sp, #48]
    ldp     x8, x9, [sp, #64]
    ldp     x10, x11, [sp, #80]
    ldp     x12, x13, [sp, #96]
    ldp     x14, x15, [sp, #112]
    ldp     x16, x17, [sp, #128]
    ldp     x18, x19, [sp, #144]
    ldp     x20, x21, [sp, #160]
    ldp     x22, x23, [sp, #176]
    ldp     x24, x25, [sp, #192]
    ldp     x26, x27, [sp, #208]
    ldp     x28, x29, [sp, #224]
    ldp     x0, x1, [sp, #0]
    add     sp, sp, #{frame}
    eret
"#,
    frame = const FRAME_SIZE,
    handler = sym handle_exception,
);

unsafe extern "C" {
    /// The vector table defined above (2 KiB aligned).
    #[link_name = "hv_vectors"]
    pub fn vectors();
}

extern "C" fn handle_exception(frame: &mut Frame, slot: u64) {
    match slot {
        // Synchronous, from a guest at EL1 (AArch64).
        8 => return super::vcpu::handle_trap(frame),
        // IRQ while a guest ran.
        9 => return super::vcpu::handle_irq(),
        // SError caused by a guest (HCR_EL2.AMO): that guest's problem, not the machine's.
        11 => super::vcpu::handle_serror(frame),
        _ => {}
    }
    let origin = match slot / 4 {
        0 => Origin::CurrentElSp0,
        1 => Origin::CurrentElSpx,
        2 => Origin::LowerEl64,
        _ => Origin::LowerEl32,
    };
    let kind = match slot % 4 {
        0 => Kind::Sync,
        1 => Kind::Irq,
        2 => Kind::Fiq,
        _ => Kind::SError,
    };
    let esr = Esr(frame.esr);
    crate::fatal!(
        "unexpected {kind:?} exception from {origin:?}: {esr}\n  ESR {:#010x}  FAR {:#018x}  ELR {:#018x}\n{frame}",
        frame.esr,
        frame.far,
        frame.elr,
    );
}
