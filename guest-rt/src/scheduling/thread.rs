//! Threads: identity, base and effective priority, state, affinity and the
//! pending-interruption flag.
//!
//! Owns the per-thread scheduling attributes. It never decides where or when a
//! thread runs (that is [`crate::scheduling::sched`]) and never changes a priority by
//! itself (boosting is [`crate::sync::rtmutex`]'s job, through the kernel).

use alloc::vec::Vec;

use crate::sync::completion::CompletionId;
use crate::sync::rtmutex::MutexId;
use crate::sync::rwsem::RwSemId;
use crate::sync::semaphore::SemaphoreId;
use crate::time::timer::{Nanos, TimerKey};

/// Index of a (virtual) CPU.
pub type CpuId = usize;

/// Identifies a thread for the lifetime of the kernel (ids are never reused).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ThreadId(pub u32);

impl ThreadId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// A fixed real-time priority: higher number = more urgent, like SCHED_FIFO.
/// 0 is the lowest level (background work), 99 the highest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Priority(u8);

impl Priority {
    /// Number of distinct levels; the run queue bitmap has one bit per level.
    pub const LEVELS: usize = 100;
    pub const MIN: Priority = Priority(0);
    pub const MAX: Priority = Priority(99);

    /// Panics if `level` is above [`Priority::MAX`]: a priority out of range
    /// is a configuration bug, not a runtime condition.
    pub const fn new(level: u8) -> Priority {
        assert!((level as usize) < Priority::LEVELS, "priority out of range");
        Priority(level)
    }

    pub const fn get(self) -> u8 {
        self.0
    }

    pub(crate) const fn index(self) -> usize {
        self.0 as usize
    }
}

/// How a thread shares the CPU with others of the same priority.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Runs until it blocks, yields or is preempted by a higher priority.
    Fifo,
    /// Like `Fifo`, but rotates behind equal-priority peers when its slice
    /// (see [`crate::KernelConfig::rr_slice`]) runs out.
    RoundRobin,
}

/// The set of CPUs a thread may run on (bit n = CPU n; at most 64 CPUs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CpuMask(u64);

impl CpuMask {
    pub const fn from_bits(bits: u64) -> CpuMask {
        CpuMask(bits)
    }

    /// CPUs `0..count`.
    pub const fn first(count: usize) -> CpuMask {
        if count >= 64 {
            CpuMask(u64::MAX)
        } else {
            CpuMask((1u64 << count) - 1)
        }
    }

    pub const fn single(cpu: CpuId) -> CpuMask {
        CpuMask(1u64 << cpu)
    }

    pub const fn bits(self) -> u64 {
        self.0
    }

    pub const fn contains(self, cpu: CpuId) -> bool {
        cpu < 64 && self.0 & (1u64 << cpu) != 0
    }

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn intersect(self, other: CpuMask) -> CpuMask {
        CpuMask(self.0 & other.0)
    }

    /// Lowest CPU in the mask.
    pub fn lowest(self) -> Option<CpuId> {
        (self.0 != 0).then(|| self.0.trailing_zeros() as CpuId)
    }
}

/// What a blocked thread is waiting for. Exactly one wait queue holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockedOn {
    Mutex(MutexId),
    Completion(CompletionId),
    Semaphore(SemaphoreId),
    RwSem(RwSemId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadState {
    /// Queued on a run queue, waiting for a CPU.
    Runnable,
    /// The current thread of `Thread::cpu`.
    Running,
    Blocked(BlockedOn),
    /// In an absolute-time sleep.
    Sleeping {
        until: Nanos,
    },
    Exited,
}

/// How a wait ended. Delivered immediately (inside [`WaitStatus::Ready`]) or,
/// after the thread blocked, through [`crate::Kernel::take_outcome`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitOutcome {
    /// Got what it waited for. For timed waits, `remaining` is the time left
    /// until the deadline (the Linux `*_timeout` return value). It may be 0
    /// when the event came exactly at the deadline: unlike Linux there is no
    /// need to report at least 1, since a timeout is a distinct outcome.
    Success {
        remaining: Option<Nanos>,
    },
    TimedOut,
    Interrupted,
}

/// Result of an operation that may block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitStatus {
    /// Finished without blocking.
    Ready(WaitOutcome),
    /// The calling thread is now blocked; the CPU must reschedule. The outcome
    /// is delivered when the thread is woken.
    Blocked,
}

impl WaitStatus {
    pub fn is_success(self) -> bool {
        matches!(self, WaitStatus::Ready(WaitOutcome::Success { .. }))
    }
}

/// Parameters of a new thread.
#[derive(Clone, Copy, Debug)]
pub struct ThreadSpec {
    pub priority: Priority,
    pub policy: Policy,
    pub affinity: CpuMask,
}

impl ThreadSpec {
    /// A SCHED_FIFO-like thread allowed on every CPU.
    pub const fn fifo(level: u8) -> ThreadSpec {
        ThreadSpec {
            priority: Priority::new(level),
            policy: Policy::Fifo,
            affinity: CpuMask::from_bits(u64::MAX),
        }
    }

    /// A round-robin thread allowed on every CPU.
    pub const fn round_robin(level: u8) -> ThreadSpec {
        ThreadSpec {
            priority: Priority::new(level),
            policy: Policy::RoundRobin,
            affinity: CpuMask::from_bits(u64::MAX),
        }
    }

    pub const fn on(self, affinity: CpuMask) -> ThreadSpec {
        ThreadSpec { affinity, ..self }
    }
}

/// A thread's kernel-side record.
#[derive(Debug)]
pub struct Thread {
    pub(crate) id: ThreadId,
    pub(crate) base: Priority,
    /// max(base, priorities inherited through owned rt-mutexes).
    pub(crate) effective: Priority,
    pub(crate) policy: Policy,
    pub(crate) affinity: CpuMask,
    pub(crate) state: ThreadState,
    /// The CPU it runs on, is queued on, or last ran on.
    pub(crate) cpu: CpuId,
    pub(crate) interrupt_pending: bool,
    /// Whether the current wait may be ended by [`crate::Kernel::interrupt`].
    pub(crate) interruptible: bool,
    /// rt-mutexes it owns, in acquisition order.
    pub(crate) owned: Vec<MutexId>,
    pub(crate) outcome: Option<WaitOutcome>,
    pub(crate) timer: Option<TimerKey>,
    /// Deadline of the current timed wait, to report the remaining time.
    pub(crate) deadline: Option<Nanos>,
}

impl Thread {
    pub fn id(&self) -> ThreadId {
        self.id
    }
    pub fn base_priority(&self) -> Priority {
        self.base
    }
    pub fn effective_priority(&self) -> Priority {
        self.effective
    }
    pub fn policy(&self) -> Policy {
        self.policy
    }
    pub fn affinity(&self) -> CpuMask {
        self.affinity
    }
    pub fn state(&self) -> ThreadState {
        self.state
    }
    pub fn cpu(&self) -> CpuId {
        self.cpu
    }
    pub fn owned_mutexes(&self) -> &[MutexId] {
        &self.owned
    }
    pub fn interrupt_pending(&self) -> bool {
        self.interrupt_pending
    }
}
