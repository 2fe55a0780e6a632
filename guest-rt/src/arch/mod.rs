//! Target-only parts of guest-rt: everything that touches EL1 registers or calls `hv`.

pub mod boot;
pub mod console;
pub mod entry;
pub mod exception;
pub mod gic;
pub mod heap;
pub mod hvc;
pub mod irq;
pub mod mmu;
pub mod selftest;
pub mod timer;

/// vCPUs guest-rt can run on (stacks are reserved for this many).
pub const MAX_VCPUS: usize = 8;
/// Stack per vCPU.
pub const STACK_SIZE: usize = 32 * 1024;

/// Index of the vCPU running this code (TPIDR_EL1, set by the entry code).
pub fn vcpu_index() -> usize {
    use aarch64_cpu::registers::{Readable, TPIDR_EL1};
    TPIDR_EL1.get() as usize
}
