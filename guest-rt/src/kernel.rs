//! The kernel object: every table (threads, run queues, timers, locks) and the
//! generic blocking protocol (block the current thread, wake a waiter, abort a
//! wait on timeout or interruption) that all sleeping primitives share.
//!
//! Every entry point names the CPU it is called on; the acting thread is that
//! CPU's current thread. Entry points never switch contexts themselves: they
//! change states and set "need resched" flags, and the caller (arch layer or
//! simulator) then calls [`Kernel::schedule`]. Nothing here ever spins or
//! waits on something outside the kernel (the RT side never waits for Linux).

use alloc::vec::Vec;

use crate::scheduling::ipi_set::{self, IpiSet};
use crate::scheduling::sched::RunQueue;
use crate::scheduling::thread::{
    BlockedOn, CpuId, CpuMask, Thread, ThreadId, ThreadSpec, ThreadState, WaitOutcome,
};
use crate::sync::completion::Completion;
use crate::sync::rtmutex::RtMutex;
use crate::sync::rwsem::RwSem;
use crate::sync::semaphore::Semaphore;
use crate::time::timer::{Nanos, TimerAction, TimerKey, TimerQueue};

/// Most timers one [`Kernel::expire`] fires (one hold of the kernel lock); the rest wait
/// for the next pass. Each costs one wake-up (a bounded walk when it ends a timed
/// rt-mutex wait).
pub const EXPIRE_BATCH: usize = 4;

#[derive(Clone, Copy, Debug)]
pub struct KernelConfig {
    pub cpus: usize,
    /// Round-robin time slice.
    pub rr_slice: Nanos,
    /// When false, rt-mutexes do not boost owners. Only useful to demonstrate
    /// (in tests) the unbounded inversion that inheritance prevents.
    pub priority_inheritance: bool,
}

impl KernelConfig {
    pub const fn new(cpus: usize) -> KernelConfig {
        KernelConfig {
            cpus,
            rr_slice: 1_000_000,
            priority_inheritance: true,
        }
    }
}

/// Errors of thread management calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ThreadError {
    /// The affinity mask names no existing CPU.
    EmptyAffinity,
    /// A thread may not exit while owning rt-mutexes: waiters would be
    /// stranded and boosts could never be undone.
    HoldsLocks,
}

#[derive(Debug)]
pub struct Kernel {
    pub(crate) config: KernelConfig,
    pub(crate) now: Nanos,
    pub(crate) threads: Vec<Thread>,
    pub(crate) rqs: Vec<RunQueue>,
    pub(crate) timers: Vec<TimerQueue>,
    pub(crate) mutexes: Vec<RtMutex>,
    pub(crate) completions: Vec<Completion>,
    pub(crate) semaphores: Vec<Semaphore>,
    pub(crate) rwsems: Vec<RwSem>,
    /// Reschedule IPIs not yet taken by [`Kernel::take_events`].
    pub(crate) ipis: IpiSet,
    seq: u64,
}

impl Kernel {
    pub fn new(config: KernelConfig) -> Kernel {
        assert!(
            (1..=64).contains(&config.cpus),
            "between 1 and 64 CPUs are supported"
        );
        Kernel {
            config,
            now: 0,
            threads: Vec::new(),
            rqs: (0..config.cpus).map(|_| RunQueue::default()).collect(),
            timers: (0..config.cpus).map(|_| TimerQueue::default()).collect(),
            mutexes: Vec::new(),
            completions: Vec::new(),
            semaphores: Vec::new(),
            rwsems: Vec::new(),
            ipis: IpiSet::new(config.cpus),
            seq: 0,
        }
    }

    pub fn config(&self) -> &KernelConfig {
        &self.config
    }

    pub fn cpus(&self) -> usize {
        self.config.cpus
    }

    pub fn now(&self) -> Nanos {
        self.now
    }

    /// Moves the kernel's clock forward. The arch layer calls this with the
    /// monotonic counter on every entry; the simulator with virtual time.
    pub fn advance_time(&mut self, now: Nanos) {
        debug_assert!(now >= self.now, "time went backwards");
        self.now = self.now.max(now);
    }

    pub(crate) fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// The wait-queue entry of `tid`: queued by its effective priority, FIFO among equals
    /// (the sequence number), carrying `data`. Shared by every sleeping primitive.
    pub(crate) fn waiter_of<D>(
        &mut self,
        tid: ThreadId,
        data: D,
    ) -> crate::sync::waitqueue::Waiter<D> {
        crate::sync::waitqueue::Waiter {
            tid,
            prio: self.thread(tid).effective,
            seq: self.next_seq(),
            data,
        }
    }

    pub fn thread(&self, tid: ThreadId) -> &Thread {
        &self.threads[tid.index()]
    }

    pub fn threads(&self) -> impl Iterator<Item = &Thread> {
        self.threads.iter()
    }

    pub(crate) fn th(&mut self, tid: ThreadId) -> &mut Thread {
        &mut self.threads[tid.index()]
    }

    /// Restricts `mask` to existing CPUs.
    pub(crate) fn valid_affinity(&self, mask: CpuMask) -> Result<CpuMask, ThreadError> {
        let mask = mask.intersect(CpuMask::first(self.config.cpus));
        if mask.is_empty() {
            Err(ThreadError::EmptyAffinity)
        } else {
            Ok(mask)
        }
    }

    /// Creates a runnable thread. `origin` is the CPU doing the call (an IPI
    /// is recorded if the new thread should preempt another CPU).
    pub fn spawn(&mut self, origin: CpuId, spec: ThreadSpec) -> Result<ThreadId, ThreadError> {
        let affinity = self.valid_affinity(spec.affinity)?;
        let id = ThreadId(self.threads.len() as u32);
        self.threads.push(Thread {
            id,
            base: spec.priority,
            effective: spec.priority,
            policy: spec.policy,
            affinity,
            state: ThreadState::Runnable,
            cpu: affinity.lowest().unwrap_or(0),
            interrupt_pending: false,
            interruptible: false,
            owned: Vec::new(),
            outcome: None,
            timer: None,
            deadline: None,
        });
        self.place(id, origin, false);
        Ok(id)
    }

    /// Ends the current thread of `cpu`.
    pub fn exit(&mut self, cpu: CpuId) -> Result<(), ThreadError> {
        let tid = self.current_thread(cpu);
        if !self.thread(tid).owned.is_empty() {
            return Err(ThreadError::HoldsLocks);
        }
        self.th(tid).state = ThreadState::Exited;
        self.resched(cpu, cpu);
        Ok(())
    }

    /// The thread acting on `cpu`. Calling a thread operation on an idle CPU
    /// is a caller bug, hence the panic.
    pub(crate) fn current_thread(&self, cpu: CpuId) -> ThreadId {
        let tid = self.rqs[cpu]
            .current
            .expect("thread operation on a CPU with no current thread");
        debug_assert_eq!(self.thread(tid).state, ThreadState::Running);
        tid
    }

    /// Takes the outcome of the wait that last blocked `tid`. The arch layer
    /// returns it to the thread when it resumes.
    pub fn take_outcome(&mut self, tid: ThreadId) -> Option<WaitOutcome> {
        self.th(tid).outcome.take()
    }

    /// Outcome for a wait that got what it asked for, with the time left
    /// before its deadline (Linux's `*_timeout` return value).
    pub(crate) fn success(&self, deadline: Option<Nanos>) -> WaitOutcome {
        WaitOutcome::Success {
            remaining: deadline.map(|d| d.saturating_sub(self.now)),
        }
    }

    pub(crate) fn deadline_after(&self, timeout: Nanos) -> Nanos {
        self.now.saturating_add(timeout)
    }

    /// Checks made before the current thread blocks: a pending interruption
    /// ends an interruptible wait at once, and so does an expired deadline.
    /// Returns `Some` if the thread must not block.
    pub(crate) fn precheck_wait(
        &mut self,
        cpu: CpuId,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) -> Option<WaitOutcome> {
        let tid = self.current_thread(cpu);
        if interruptible && self.thread(tid).interrupt_pending {
            self.th(tid).interrupt_pending = false;
            return Some(WaitOutcome::Interrupted);
        }
        match deadline {
            Some(d) if d <= self.now => Some(WaitOutcome::TimedOut),
            _ => None,
        }
    }

    /// Marks the current thread blocked on `on` and arms its timeout. The
    /// caller has already queued it on the primitive's wait queue.
    pub(crate) fn block_current(
        &mut self,
        cpu: CpuId,
        on: BlockedOn,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) {
        let tid = self.current_thread(cpu);
        let timer = deadline.map(|deadline| {
            let seq = self.next_seq();
            self.timers[cpu].arm(deadline, seq, TimerAction::WaitTimeout(tid));
            TimerKey { cpu, deadline, seq }
        });
        let th = self.th(tid);
        th.state = ThreadState::Blocked(on);
        th.interruptible = interruptible;
        th.deadline = deadline;
        th.timer = timer;
        th.outcome = None;
        self.resched(cpu, cpu);
    }

    fn cancel_timer(&mut self, tid: ThreadId) {
        if let Some(key) = self.th(tid).timer.take() {
            self.timers[key.cpu].cancel(key.deadline, key.seq);
        }
    }

    /// Wakes a blocked thread that its primitive has already removed from the
    /// wait queue (and granted, if `outcome` is a success).
    pub(crate) fn wake_granted(&mut self, tid: ThreadId, origin: CpuId) {
        let deadline = self.thread(tid).deadline;
        let outcome = self.success(deadline);
        self.wake_with(tid, outcome, origin);
    }

    pub(crate) fn wake_with(&mut self, tid: ThreadId, outcome: WaitOutcome, origin: CpuId) {
        self.cancel_timer(tid);
        let th = self.th(tid);
        th.outcome = Some(outcome);
        th.deadline = None;
        th.interruptible = false;
        self.make_runnable(tid, origin);
    }

    /// Takes a blocked thread off its wait queue without granting it anything
    /// (timeout or interruption), repairs what its leaving changes (owner
    /// boosts, rwsem grants) and wakes it with `outcome`.
    pub(crate) fn abort_wait(&mut self, tid: ThreadId, outcome: WaitOutcome, origin: CpuId) {
        let ThreadState::Blocked(on) = self.thread(tid).state else {
            return;
        };
        match on {
            BlockedOn::Mutex(m) => {
                self.mutexes[m.index()].waiters.remove(tid);
                // The owner may have been boosted by this waiter: re-walk.
                self.propagate_from(m, origin);
            }
            BlockedOn::Completion(c) => {
                self.completions[c.index()].waiters.remove(tid);
            }
            BlockedOn::Semaphore(s) => {
                self.semaphores[s.index()].waiters.remove(tid);
            }
            BlockedOn::RwSem(r) => {
                self.rwsems[r.index()].waiters.remove(tid);
                // A writer leaving the head may unblock readers behind it.
                self.rwsem_grant(r, origin);
            }
        }
        self.wake_with(tid, outcome, origin);
    }

    /// Interrupts `tid` (a signal, in Linux terms). An interruptible wait ends
    /// with [`WaitOutcome::Interrupted`]; otherwise the request stays pending
    /// until the thread's next interruptible wait.
    pub fn interrupt(&mut self, cpu: CpuId, tid: ThreadId) {
        let th = self.thread(tid);
        if matches!(th.state, ThreadState::Blocked(_)) && th.interruptible {
            self.abort_wait(tid, WaitOutcome::Interrupted, cpu);
        } else if th.state != ThreadState::Exited {
            self.th(tid).interrupt_pending = true;
        }
    }

    /// Fires the expired timers of `cpu`, at most [`EXPIRE_BATCH`] of them, and handles
    /// round-robin slice expiry. Called from the CPU's timer interrupt. Timers still due
    /// after the batch keep [`Kernel::next_deadline`] in the past, so the one-shot timer
    /// fires again at once and the next pass (a new hold of the kernel lock, interrupts
    /// open in between) takes the next batch: one hold's work stays bounded however many
    /// timers fall due together.
    pub fn expire(&mut self, cpu: CpuId) {
        self.expire_at_most(cpu, EXPIRE_BATCH);
    }

    /// [`Kernel::expire`] with a batch of `max` timers; returns whether due timers remain.
    pub fn expire_at_most(&mut self, cpu: CpuId, max: usize) -> bool {
        for _ in 0..max {
            let Some(action) = self.timers[cpu].pop_expired(self.now) else {
                break;
            };
            match action {
                TimerAction::SleepEnd(tid) => {
                    self.th(tid).timer = None;
                    self.th(tid).outcome = Some(WaitOutcome::Success { remaining: None });
                    self.make_runnable(tid, cpu);
                }
                TimerAction::WaitTimeout(tid) => {
                    self.th(tid).timer = None;
                    self.abort_wait(tid, WaitOutcome::TimedOut, cpu);
                }
            }
        }
        self.expire_slice(cpu);
        self.timers[cpu]
            .next_deadline()
            .is_some_and(|deadline| deadline <= self.now)
    }

    /// Earliest time `cpu` needs a timer interrupt (timer or slice end).
    pub fn next_deadline(&self, cpu: CpuId) -> Option<Nanos> {
        let timer = self.timers[cpu].next_deadline();
        let slice = self.rqs[cpu].slice_end;
        match (timer, slice) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Drains the events the arch layer must act on (IPIs), without allocating. An IPI
    /// asked for twice since the last drain is yielded once.
    pub fn take_events(&mut self) -> ipi_set::Drain<'_> {
        self.ipis.drain()
    }
}
