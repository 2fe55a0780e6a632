//! Bulkhead `hv`: the EL2 hypervisor that splits one machine into partitions.
//!
//! Portable modules (everything but `arch` and `boot`) are unit-tested on the host with
//! `cargo test -p hv`; `arch` and `boot` exist only on the bare-metal target (hv is built
//! for `aarch64-unknown-none-softfloat`: it never touches the guests' FP/SIMD registers).
//! hv runs with interrupts masked and has no scheduler: every path is short and bounded.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod console_ring;
mod esr;
mod exception_injection;
mod guest_dtb;
mod guest_image;
mod hypercall;
mod layout;
mod options;
mod owed_irqs;
mod partition;
mod stage2;
// The distributor model (host-tested) is ahead of the trap path that will feed it guest
// GICD accesses; on the target nothing calls it yet.
#[cfg_attr(target_os = "none", allow(dead_code))]
mod vgic;
// The emulated PL011 for a partition sharing hv's UART, and the routing of typed bytes
// between partitions: host-tested, not yet wired to the trap path.
#[cfg_attr(target_os = "none", allow(dead_code))]
mod console_input;
#[cfg_attr(target_os = "none", allow(dead_code))]
mod vuart;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv runs only at EL2 on aarch64: build it with `cargo xtask run`.");
    std::process::exit(2);
}
