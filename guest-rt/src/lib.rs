//! guest-rt: the fully preemptible real-time kernel of the RT partition.
//!
//! This crate is the portable core only: scheduling and locking are plain data
//! structures driven by explicit events (a thread asks for a lock, a timer
//! expires, a CPU is asked to reschedule). Nothing here touches hardware, so
//! the very same code runs in the host simulator ([`sim`]) and, later, on real
//! vCPUs where the arch layer turns [`Kernel::schedule`] results into context
//! switches and [`KernelEvent::Ipi`] into SGIs.
//!
//! Design rules that hold for every module:
//! * everything is preemptible except the sections listed in [`rawlock::RAW_SECTIONS`];
//! * sleeping locks are [`rtmutex`] rt-mutexes with priority inheritance;
//! * the RT side never waits for Linux: no operation here blocks on anything
//!   outside this kernel's own wait queues and timers;
//! * no periodic tick: time only advances through one-shot deadlines
//!   ([`Kernel::next_deadline`]).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod completion;
pub mod invariants;
pub mod kernel;
pub mod kmap;
pub mod percpu_locked;
pub mod rawlock;
pub mod rcu;
pub mod rtmutex;
pub mod rwsem;
pub mod sched;
pub mod semaphore;
pub mod sim;
pub mod thread;
pub mod timer;
pub mod waitqueue;

pub use completion::CompletionId;
pub use kernel::{Kernel, KernelConfig};
pub use rtmutex::{LockError, MutexId, MAX_CHAIN_DEPTH};
pub use rwsem::RwSemId;
pub use sched::KernelEvent;
pub use semaphore::SemaphoreId;
pub use thread::{
    BlockedOn, CpuId, CpuMask, Policy, Priority, ThreadId, ThreadSpec, ThreadState, WaitOutcome,
    WaitStatus,
};
pub use timer::Nanos;
