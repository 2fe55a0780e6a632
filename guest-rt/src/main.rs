//! The guest-rt binary: the RT partition's kernel as `hv` boots it (an arm64 Image entered
//! at EL1 with x0 = the partition's DTB).
//!
//! Three parts over the portable kernel (the `guest_rt` library):
//! * [`arch`], the runtime that drives the kernel on the vCPUs: entry, exceptions, the
//!   GIC CPU interface, the virtual timer, threads and context switches, the MMU, the
//!   heap, console and PSCI through hypercalls, and the boot sequence;
//! * [`apps`], what the partition runs (`rt.app=NAME`): the latency probe, more to come;
//! * `selftests` (cargo feature `selftests`): the boot self-tests the QEMU tests ask
//!   for (`rt.selftest=...`) and the kernel bench app, left out of a product image.
//!
//! The RT side never waits for Linux: nothing here depends on the other partition.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod apps;
#[cfg(target_os = "none")]
mod arch;
#[cfg(all(target_os = "none", feature = "selftests"))]
mod selftests;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("guest-rt runs inside a Bulkhead partition: build it with `cargo xtask run`.");
    std::process::exit(2);
}
