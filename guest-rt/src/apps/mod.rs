//! Applications apart from the kernel: what the RT partition runs on its vCPUs once
//! guest-rt is up, selected with `rt.app=NAME`.
//!
//! Owns the registry ([`APPS`]), what an app is handed ([`Context`]) and the app API an
//! app is written against ([`api`]: threads, periodic releases, locks, completions,
//! per-CPU and RCU data, device interrupts, the channel). To add an app: a module here
//! (or behind its own cargo feature) with a `pub const APP: App`, one line in [`APPS`]
//! and its row in `abi::bootargs::RT_APPS` (what `cargo xtask run --help` lists);
//! `rt.app` is checked against [`NAMES`] by [`guest_rt::bootargs`], so a name that is not
//! registered is refused at boot. An app uses [`api`] (the latency probe, older, still
//! calls the runtime directly) and never touches registers itself.

use guest_rt::bootargs::BootArgs;

pub mod api;
pub mod control;
pub mod latency;

/// A registered app.
pub struct App {
    /// Its `rt.app` name.
    pub name: &'static str,
    /// One line: what it does.
    pub about: &'static str,
    /// Runs on every vCPU once the vCPU is up, and never returns; the app reports the
    /// vCPU ready ([`crate::arch::boot::report_ready`]) when it is.
    pub run: fn(&Context) -> !,
}

/// What an app is started with on one vCPU.
#[derive(Clone, Copy, Debug)]
pub struct Context {
    /// This vCPU's index.
    pub vcpu: usize,
    /// The partition's vCPUs.
    pub vcpus: usize,
    /// The boot arguments (all understood).
    pub args: BootArgs,
}

/// Every app built into this image.
pub const APPS: &[App] = &[
    latency::APP,
    control::APP,
    #[cfg(feature = "selftests")]
    crate::selftests::kernel_bench::APP,
];

/// The apps' names, in [`APPS`] order (what `rt.app` may name).
pub const NAMES: [&str; APPS.len()] = names();

const fn names<const N: usize>() -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < N {
        out[i] = APPS[i].name;
        i += 1;
    }
    out
}
