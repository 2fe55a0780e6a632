//! Everything that only exists on the target: entry code, vectors, system registers, MMU,
//! UART, power. Kept thin; decisions live in the portable modules.

pub mod boot;
pub mod cache;
pub mod channel;
pub mod console;
pub mod cpu;
pub mod device_regs;
pub mod doorbell;
pub mod entry;
pub mod exception;
pub mod gic;
pub mod heap;
pub mod image;
pub mod mmu;
pub mod pl011;
pub mod pmu;
pub mod power;
pub mod smp;
pub mod stats;
pub mod vconsole;
pub mod vcpu;
pub mod virtual_line;
pub mod wrong_level;
