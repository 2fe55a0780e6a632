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
// Part of the distributor model's API serves only its host tests (the list form of
// `write`, the `note_*` bookkeeping, accessors): the target uses the callback form.
mod console_input;
#[cfg_attr(target_os = "none", allow(dead_code))]
mod vgic;
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
