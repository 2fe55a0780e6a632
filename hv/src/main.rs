//! Bulkhead `hv`: the EL2 hypervisor that splits one machine into partitions.
//!
//! What hv decides lives in the portable, host-tested [`hv_core`] crate; this binary is
//! the thin layer that runs it on the machine (`arch`: entry, vectors, EL2 setup, MMU,
//! GIC, timers, SMP, power, heap and the boot flow). It exists only on the bare-metal
//! target (`aarch64-unknown-none-softfloat`: hv never touches the guests' FP/SIMD
//! registers). hv runs with interrupts masked and has no scheduler: every path is short
//! and bounded.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(any(test, target_os = "none"))]
extern crate alloc;

// Boot-argument parsing: portable and host-tested here; only the target's boot flow uses it.
#[cfg(any(test, target_os = "none"))]
mod options;

#[cfg(target_os = "none")]
mod arch;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("hv runs only at EL2 on aarch64: build it with `cargo xtask run`.");
    std::process::exit(2);
}
