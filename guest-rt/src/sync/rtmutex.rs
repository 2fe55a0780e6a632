//! rt-mutex: the sleeping lock that replaces spinlocks in a fully preemptible
//! kernel.
//!
//! Owns the owner/waiter relation and priority inheritance. Waiters are
//! ordered by effective priority, FIFO among equals. A thread's effective
//! priority is max(base, the top waiter's effective priority of every lock it
//! owns); a change anywhere is pushed down the chain "waiter -> lock -> owner
//! -> lock it is blocked on -> ..." by a walk bounded by [`MAX_CHAIN_DEPTH`].
//!
//! Unlock is a strict handoff: the top waiter becomes the owner at once, even
//! before it runs, so no thread (of any priority) can steal the lock from it.
//! This trades a little throughput for simple, provable latency bounds.
//!
//! Lock requests that would close a cycle (self-deadlock, A->B->A) or build a
//! chain longer than the bound fail before anything is queued, so an error
//! never leaves a boost behind. This module never spins and never waits for
//! anything but the owner.

use crate::kernel::Kernel;
use crate::scheduling::thread::{BlockedOn, CpuId, Priority, ThreadId, ThreadState, WaitStatus};
use crate::sync::waitqueue::WaitQueue;
use crate::time::timer::Nanos;

/// Longest owner chain a lock request may create and a priority walk follows.
pub const MAX_CHAIN_DEPTH: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MutexId(pub(crate) u32);

impl MutexId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockError {
    /// The request would wait for itself: the caller already owns the lock,
    /// or the owner chain leads back to the caller.
    Deadlock,
    /// The owner chain is longer than [`MAX_CHAIN_DEPTH`].
    ChainTooDeep,
    /// Unlock by a thread that does not own the lock.
    NotOwner,
}

#[derive(Debug, Default)]
pub struct RtMutex {
    pub(crate) owner: Option<ThreadId>,
    pub(crate) waiters: WaitQueue<()>,
}

impl RtMutex {
    pub fn owner(&self) -> Option<ThreadId> {
        self.owner
    }
    pub fn waiters(&self) -> &WaitQueue<()> {
        &self.waiters
    }
}

impl Kernel {
    pub fn mutex_create(&mut self) -> MutexId {
        self.mutexes.push(RtMutex::default());
        MutexId(self.mutexes.len() as u32 - 1)
    }

    pub fn mutex(&self, m: MutexId) -> &RtMutex {
        &self.mutexes[m.index()]
    }

    pub fn mutex_owner(&self, m: MutexId) -> Option<ThreadId> {
        self.mutexes[m.index()].owner
    }

    /// Takes the lock if it is free; never blocks.
    pub fn try_lock(&mut self, cpu: CpuId, m: MutexId) -> bool {
        let tid = self.current_thread(cpu);
        if self.mutexes[m.index()].owner.is_some() {
            return false;
        }
        self.take_free(tid, m);
        true
    }

    pub fn lock(&mut self, cpu: CpuId, m: MutexId) -> Result<WaitStatus, LockError> {
        self.lock_slow(cpu, m, None, false)
    }

    /// Like [`Kernel::lock`], but [`Kernel::interrupt`] ends the wait.
    pub fn lock_interruptible(&mut self, cpu: CpuId, m: MutexId) -> Result<WaitStatus, LockError> {
        self.lock_slow(cpu, m, None, true)
    }

    /// Like [`Kernel::lock`], giving up `timeout` ns from now.
    pub fn lock_timeout(
        &mut self,
        cpu: CpuId,
        m: MutexId,
        timeout: Nanos,
    ) -> Result<WaitStatus, LockError> {
        let deadline = self.deadline_after(timeout);
        self.lock_slow(cpu, m, Some(deadline), false)
    }

    fn take_free(&mut self, tid: ThreadId, m: MutexId) {
        self.mutexes[m.index()].owner = Some(tid);
        self.th(tid).owned.push(m);
    }

    fn lock_slow(
        &mut self,
        cpu: CpuId,
        m: MutexId,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) -> Result<WaitStatus, LockError> {
        let tid = self.current_thread(cpu);
        if self.mutexes[m.index()].owner.is_none() {
            self.take_free(tid, m);
            return Ok(WaitStatus::Ready(self.success(deadline)));
        }
        self.check_chain(tid, m)?;
        if let Some(outcome) = self.precheck_wait(cpu, deadline, interruptible) {
            return Ok(WaitStatus::Ready(outcome));
        }
        let waiter = self.waiter_of(tid, ());
        self.mutexes[m.index()].waiters.insert(waiter);
        self.block_current(cpu, BlockedOn::Mutex(m), deadline, interruptible);
        self.propagate_from(m, cpu);
        Ok(WaitStatus::Blocked)
    }

    /// Checks the chain the new edge `tid -> m` would complete: the longest
    /// run of waiters already queued behind `tid`, plus `m` and the locks its
    /// owner chain is blocked on. Fails if the chain comes back to `tid` (it
    /// would wait for itself) or would hold more than [`MAX_CHAIN_DEPTH`]
    /// locks, so that every later priority walk is complete within the bound.
    fn check_chain(&self, tid: ThreadId, m: MutexId) -> Result<(), LockError> {
        let behind = self.chain_behind(tid, 0);
        let budget = MAX_CHAIN_DEPTH.saturating_sub(behind);
        let mut lock = m;
        for _ in 0..budget {
            let Some(owner) = self.mutexes[lock.index()].owner else {
                return Ok(());
            };
            if owner == tid {
                return Err(LockError::Deadlock);
            }
            match self.thread(owner).state {
                ThreadState::Blocked(BlockedOn::Mutex(next)) => lock = next,
                _ => return Ok(()),
            }
        }
        Err(LockError::ChainTooDeep)
    }

    /// Number of locks in the longest waiter chain ending at `tid`. `depth`
    /// counts the locks already seen; recursion stops just past the bound,
    /// where the exact answer no longer matters.
    fn chain_behind(&self, tid: ThreadId, depth: usize) -> usize {
        if depth > MAX_CHAIN_DEPTH {
            return 0;
        }
        self.thread(tid)
            .owned
            .iter()
            .flat_map(|m| self.mutexes[m.index()].waiters.iter())
            .map(|w| 1 + self.chain_behind(w.tid, depth + 1))
            .max()
            .unwrap_or(0)
    }

    /// Releases `m`, handing it to the top waiter, and drops any priority the
    /// caller inherited through it.
    pub fn unlock(&mut self, cpu: CpuId, m: MutexId) -> Result<(), LockError> {
        let tid = self.current_thread(cpu);
        if self.mutexes[m.index()].owner != Some(tid) {
            return Err(LockError::NotOwner);
        }
        self.th(tid).owned.retain(|&o| o != m);
        match self.mutexes[m.index()].waiters.pop_front() {
            Some(next) => {
                self.take_free(next.tid, m);
                // The new owner inherits from the waiters it now leads. It is
                // in no queue at this point, so a plain store is enough.
                let prio = self.effective_for(next.tid);
                self.th(next.tid).effective = prio;
                self.wake_granted(next.tid, cpu);
            }
            None => self.mutexes[m.index()].owner = None,
        }
        let prio = self.effective_for(tid);
        self.change_effective(tid, prio, cpu);
        Ok(())
    }

    /// The effective priority `tid` should have now.
    pub(crate) fn effective_for(&self, tid: ThreadId) -> Priority {
        let th = self.thread(tid);
        if !self.config.priority_inheritance {
            return th.base;
        }
        th.owned
            .iter()
            .filter_map(|m| self.mutexes[m.index()].waiters.top_priority())
            .fold(th.base, Priority::max)
    }

    /// Re-evaluates the owner of `m` and continues down the chain while
    /// priorities keep changing, at most [`MAX_CHAIN_DEPTH`] hops.
    pub(crate) fn propagate_from(&mut self, m: MutexId, origin: CpuId) {
        let mut lock = m;
        for _ in 0..MAX_CHAIN_DEPTH {
            let Some(owner) = self.mutexes[lock.index()].owner else {
                return;
            };
            let prio = self.effective_for(owner);
            match self.change_effective(owner, prio, origin) {
                Some(next) => lock = next,
                None => return,
            }
        }
    }
}
