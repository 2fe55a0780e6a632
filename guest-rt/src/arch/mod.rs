//! The runtime: everything that touches EL1 registers, memory by address, or calls `hv`,
//! and drives the portable kernel on the vCPUs. It decides as little as it can: what to
//! run comes from [`guest_rt::bootargs`], what devices exist from [`guest_rt::dtb`], who
//! runs next from the [`guest_rt::Kernel`].

pub mod boot;
pub mod channel;
pub mod console;
pub mod context;
// The device-interrupt API (distributor line setup, threaded handlers, the device
// registry) has no caller in a product image until an app drives a device: today only the
// self-tests and the kernel bench do.
#[cfg_attr(not(feature = "selftests"), allow(dead_code))]
pub mod devices;
pub mod doorbell;
pub mod entry;
pub mod exception;
// The device-interrupt API (distributor line setup, threaded handlers, the device
// registry) has no caller in a product image until an app drives a device: today only the
// self-tests and the kernel bench do.
#[cfg_attr(not(feature = "selftests"), allow(dead_code))]
pub mod gic;
pub mod heap;
pub mod hvc;
// The device-interrupt API (distributor line setup, threaded handlers, the device
// registry) has no caller in a product image until an app drives a device: today only the
// self-tests and the kernel bench do.
#[cfg_attr(not(feature = "selftests"), allow(dead_code))]
pub mod irq;
// The device-interrupt API (distributor line setup, threaded handlers, the device
// registry) has no caller in a product image until an app drives a device: today only the
// self-tests and the kernel bench do.
#[cfg_attr(not(feature = "selftests"), allow(dead_code))]
pub mod irq_threads;
pub mod irqmask;
pub mod mmu;
// The PL031 RTC: the sample device only the self-tests and the kernel bench drive.
#[cfg(feature = "selftests")]
pub mod pl031;
pub mod threads;
pub mod timer;
pub mod trace;

/// vCPUs guest-rt can run on (stacks are reserved for this many).
pub const MAX_VCPUS: usize = 8;
/// Stack per vCPU.
pub const STACK_SIZE: usize = 32 * 1024;

/// Index of the vCPU running this code (TPIDR_EL1, set by the entry code).
pub fn vcpu_index() -> usize {
    use aarch64_cpu::registers::{Readable, TPIDR_EL1};
    TPIDR_EL1.get() as usize
}

unsafe extern "C" {
    static __image_start: u8;
    static __image_end: u8;
    static __stacks_start: u8;
}

/// guest-rt's memory: `[__image_start, __image_end)` (linker script).
pub fn image_range() -> (u64, u64) {
    (
        core::ptr::addr_of!(__image_start) as u64,
        core::ptr::addr_of!(__image_end) as u64,
    )
}

/// Top and size of vCPU `index`'s stack (as the entry code sets it up).
pub fn stack_of(index: usize) -> (u64, u64) {
    let base = core::ptr::addr_of!(__stacks_start) as u64;
    (base + ((index + 1) * STACK_SIZE) as u64, STACK_SIZE as u64)
}
