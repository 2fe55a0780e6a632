//! EL1 exception vectors. guest-rt takes no exception on purpose yet: any exception is a
//! bug, reported with its syndrome, and the partition powers itself off (hv keeps running).

use aarch64_cpu::registers::{Readable, ELR_EL1, ESR_EL1, FAR_EL1};
use core::arch::global_asm;

global_asm!(
    r#"
.macro SLOT n
    .balign 0x80
    mov     x0, #\n
    b       {handler}
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
"#,
    handler = sym unexpected,
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
