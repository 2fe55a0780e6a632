//! The guest-rt binary: the RT partition's kernel as `hv` boots it (an arm64 Image entered
//! at EL1 with x0 = the partition's DTB).
//!
//! This is the thin target layer: entry, console and PSCI through hypercalls, EL1 MMU,
//! the virtual timer, and boot self-tests. The portable kernel core is the `guest_rt`
//! library. The RT side never waits for Linux: nothing here depends on the other partition.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
extern crate alloc;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("guest-rt runs inside a Bulkhead partition: build it with `cargo xtask run`.");
    std::process::exit(2);
}
