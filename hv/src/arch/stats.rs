//! hv's per-CPU statistics as its trap and interrupt paths count them: the one
//! [`CpuStats`] (hv-core), each CPU adding only to its own block (the caller's CPU, with
//! interrupts masked as every hv path runs), attached to the channel by `channel` so
//! Linux's `rtctl status` reads them too.

use channel::hv_stats::Counter;
use hv_core::cpu_stats::CpuStats;

use super::cpu;

pub static STATS: CpuStats = CpuStats::new();

/// Counts one `counter` event on this CPU.
#[inline]
pub fn count(counter: Counter) {
    STATS.add(cpu::index(), &[(counter, 1)]);
}

/// Adds `n` to `counter` on this CPU.
#[inline]
pub fn count_n(counter: Counter, n: u64) {
    STATS.add(cpu::index(), &[(counter, n)]);
}

/// Adds several counters on this CPU under one sequence-count step.
#[inline]
pub fn add(counts: &[(Counter, u64)]) {
    STATS.add(cpu::index(), counts);
}

/// This CPU took a synchronous trap: a statistics copy a Linux restart asked for and an
/// RT CPU deferred happens here, off its interrupt path.
#[inline]
pub fn at_trap() {
    STATS.at_trap(cpu::index());
}
