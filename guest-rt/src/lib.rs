//! guest-rt: the fully preemptible real-time kernel of the RT partition.
//!
//! This crate is the portable core only: scheduling and locking are plain data
//! structures driven by explicit events (a thread asks for a lock, a timer
//! expires, a CPU is asked to reschedule). Nothing here touches hardware, so
//! the very same code runs in the host simulator ([`sim`]) and on the
//! partition's vCPUs, where the runtime (the `guest-rt` binary's `arch`) turns
//! [`Kernel::schedule`] results into context switches and [`KernelEvent::Ipi`]
//! into SGIs.
//!
//! Grouped by concept:
//! * [`scheduling`]: threads, run queues, reschedule requests;
//! * [`sync`]: rt-mutexes, rwsems, semaphores, completions, wait queues,
//!   per-CPU locked data, RCU, the raw sections;
//! * [`time`]: one-shot deadlines;
//! * [`interrupts`]: the handler registry and the threaded-line protocol;
//! * [`memory`]: temporary kernel mappings;
//! * [`tracing`]: latency statistics;
//! * [`kernel`]: the [`Kernel`] facade every entry goes through, with its
//!   [`invariants`];
//! * [`bootargs`]: the `rt.*` boot arguments, their table, and refusals by name;
//! * [`dtb`]: what the partition's DTB passes through (read, never touched);
//! * host-only testing support: [`sim`], the deterministic simulator the
//!   scenario and property tests drive the kernel with.
//!
//! Design rules that hold for every module:
//! * everything is preemptible except the sections listed in [`sync::rawlock::RAW_SECTIONS`];
//! * sleeping locks are [`sync::rtmutex`] rt-mutexes with priority inheritance;
//! * the RT side never waits for Linux: no operation here blocks on anything
//!   outside this kernel's own wait queues and timers;
//! * no periodic tick: time only advances through one-shot deadlines
//!   ([`Kernel::next_deadline`]).
//!
//! # Driving the core (contract for the arch layer)
//! * Build one [`Kernel`] with [`KernelConfig`] and [`Kernel::spawn`] the first
//!   threads. The kernel is a single data structure with no internal locking:
//!   on SMP every entry must run under one raw spinlock with interrupts off
//!   (the "run queue" entry of [`sync::rawlock::RAW_SECTIONS`]); entries are short
//!   and bounded ([`MAX_CHAIN_DEPTH`] bounds the longest one).
//! * On every entry call [`Kernel::advance_time`] with the monotonic clock,
//!   then the operation, naming the CPU it runs on; the acting thread is that
//!   CPU's [`Kernel::current`].
//! * Operations that may sleep return [`WaitStatus`]. On `Blocked` the thread
//!   stays parked; when it is next switched in, its result is
//!   [`Kernel::take_outcome`].
//! * After each entry: send an SGI for every [`KernelEvent::Ipi`] that
//!   [`Kernel::take_events`] yields (a draining iterator: it allocates nothing,
//!   and a CPU asked twice since the last drain is named once); if
//!   [`Kernel::need_resched`] is set for this CPU, call [`Kernel::schedule`]
//!   and switch to the thread it returns (idle/WFI on `None`); then program
//!   this CPU's one-shot timer with [`Kernel::next_deadline`] (O(1)).
//! * Cost: no entry on the wake, timer or switch path allocates once the
//!   kernel is warm (queues keep their capacity), and `schedule` visits only
//!   non-empty priority levels. The arch layer should keep to that: take the
//!   kernel lock once per entry and do per-thread work (such as freeing an
//!   exited thread's stack) only for threads that need it.
//! * Timer interrupt: `advance_time`, [`Kernel::expire`], then as above. IPI
//!   interrupt: just the reschedule check.
//! * Device interrupts: the top half acknowledges and wakes a handler thread
//!   (e.g. [`Kernel::complete`]); all real work runs in that thread.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod bootargs;
pub mod dtb;
pub mod interrupts;
pub mod invariants;
pub mod kernel;
pub mod memory;
pub mod scheduling;
pub mod sim;
pub mod sync;
pub mod time;
pub mod tracing;

pub use kernel::{Kernel, KernelConfig};
pub use scheduling::sched::KernelEvent;
pub use scheduling::thread::{
    BlockedOn, CpuId, CpuMask, Policy, Priority, ThreadId, ThreadSpec, ThreadState, WaitOutcome,
    WaitStatus,
};
pub use sync::completion::CompletionId;
pub use sync::rtmutex::{LockError, MutexId, MAX_CHAIN_DEPTH};
pub use sync::rwsem::RwSemId;
pub use sync::semaphore::SemaphoreId;
pub use time::timer::Nanos;
