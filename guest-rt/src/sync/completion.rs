//! Completions: "wait until this has happened", the replacement for
//! semaphores used as event signals.
//!
//! Owns the done count and its waiters (priority ordered). `complete` hands
//! one "done" straight to the top waiter, so a wakeup can never be lost
//! between the waiter's check and its sleep. There is no owner, hence no
//! priority inheritance: whoever completes is not known in advance.

use crate::kernel::Kernel;
use crate::scheduling::thread::{BlockedOn, CpuId, WaitStatus};
use crate::sync::waitqueue::WaitQueue;
use crate::time::timer::Nanos;

/// `done` value after `complete_all`: every present and future wait succeeds
/// until `reinit`.
const DONE_ALL: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CompletionId(pub(crate) u32);

impl CompletionId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Default)]
pub struct Completion {
    pub(crate) done: u32,
    pub(crate) waiters: WaitQueue<()>,
}

impl Completion {
    pub fn waiters(&self) -> &WaitQueue<()> {
        &self.waiters
    }
}

impl Kernel {
    pub fn completion_create(&mut self) -> CompletionId {
        self.completions.push(Completion::default());
        CompletionId(self.completions.len() as u32 - 1)
    }

    pub fn completion(&self, c: CompletionId) -> &Completion {
        &self.completions[c.index()]
    }

    /// Signals one waiter (or banks the event if nobody waits).
    pub fn complete(&mut self, cpu: CpuId, c: CompletionId) {
        let comp = &mut self.completions[c.index()];
        match comp.waiters.pop_front() {
            Some(w) => self.wake_granted(w.tid, cpu),
            None => {
                if comp.done != DONE_ALL {
                    comp.done = comp.done.saturating_add(1).min(DONE_ALL - 1);
                }
            }
        }
    }

    /// Signals every current and future waiter until [`Kernel::reinit_completion`].
    pub fn complete_all(&mut self, cpu: CpuId, c: CompletionId) {
        self.completions[c.index()].done = DONE_ALL;
        while let Some(w) = self.completions[c.index()].waiters.pop_front() {
            self.wake_granted(w.tid, cpu);
        }
    }

    pub fn wait_for_completion(&mut self, cpu: CpuId, c: CompletionId) -> WaitStatus {
        self.wait_completion(cpu, c, None, false)
    }

    pub fn wait_for_completion_interruptible(&mut self, cpu: CpuId, c: CompletionId) -> WaitStatus {
        self.wait_completion(cpu, c, None, true)
    }

    /// On success the outcome carries the time left of `timeout`.
    pub fn wait_for_completion_timeout(
        &mut self,
        cpu: CpuId,
        c: CompletionId,
        timeout: Nanos,
    ) -> WaitStatus {
        let deadline = self.deadline_after(timeout);
        self.wait_completion(cpu, c, Some(deadline), false)
    }

    pub fn wait_for_completion_interruptible_timeout(
        &mut self,
        cpu: CpuId,
        c: CompletionId,
        timeout: Nanos,
    ) -> WaitStatus {
        let deadline = self.deadline_after(timeout);
        self.wait_completion(cpu, c, Some(deadline), true)
    }

    /// Consumes a banked event if there is one; never blocks.
    pub fn try_wait_for_completion(&mut self, c: CompletionId) -> bool {
        let comp = &mut self.completions[c.index()];
        match comp.done {
            0 => false,
            DONE_ALL => true,
            _ => {
                comp.done -= 1;
                true
            }
        }
    }

    /// True if a wait would succeed without blocking.
    pub fn completion_done(&self, c: CompletionId) -> bool {
        self.completions[c.index()].done > 0
    }

    /// Forgets banked events (including `complete_all`). Waiters stay queued.
    pub fn reinit_completion(&mut self, c: CompletionId) {
        self.completions[c.index()].done = 0;
    }

    fn wait_completion(
        &mut self,
        cpu: CpuId,
        c: CompletionId,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) -> WaitStatus {
        let tid = self.current_thread(cpu);
        if self.try_wait_for_completion(c) {
            return WaitStatus::Ready(self.success(deadline));
        }
        if let Some(outcome) = self.precheck_wait(cpu, deadline, interruptible) {
            return WaitStatus::Ready(outcome);
        }
        let waiter = self.waiter_of(tid, ());
        self.completions[c.index()].waiters.insert(waiter);
        self.block_current(cpu, BlockedOn::Completion(c), deadline, interruptible);
        WaitStatus::Blocked
    }
}
