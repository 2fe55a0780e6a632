//! Bulkhead `hv`: the EL2 hypervisor that splits one machine into partitions.
//!
//! Portable modules (`esr`, `layout`, `options`) are unit-tested on the host with
//! `cargo test -p hv`; `arch` and `boot` exist only on `aarch64-unknown-none`. hv runs
//! with interrupts masked and has no scheduler: every path is short and bounded.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![cfg_attr(not(target_os = "none"), allow(dead_code))]

extern crate alloc;

mod esr;
mod guest_dtb;
mod guest_image;
mod hypercall;
mod layout;
mod options;
mod partition;
mod stage2;
// The distributor model is built and host-tested ahead of the GIC driver that will use it.
#[cfg_attr(target_os = "none", allow(dead_code))]
mod vgic;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
mod boot;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv runs only at EL2 on aarch64: build it with `cargo xtask run`.");
    std::process::exit(2);
}
