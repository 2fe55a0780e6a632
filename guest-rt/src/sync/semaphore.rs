//! Counting semaphores on the shared priority-ordered wait queue.
//!
//! Owns a count and its waiters. `up` hands the unit directly to the top
//! waiter (no window in which a newcomer could take it). A semaphore has no
//! owner, so it cannot do priority inheritance: use an rt-mutex for mutual
//! exclusion and keep semaphores for counting resources (e.g. [`crate::memory::kmap`]
//! slots).

use crate::kernel::Kernel;
use crate::scheduling::thread::{BlockedOn, CpuId, WaitStatus};
use crate::sync::waitqueue::WaitQueue;
use crate::time::timer::Nanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SemaphoreId(pub(crate) u32);

impl SemaphoreId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Debug, Default)]
pub struct Semaphore {
    pub(crate) count: u32,
    pub(crate) waiters: WaitQueue<()>,
}

impl Semaphore {
    pub fn count(&self) -> u32 {
        self.count
    }
    pub fn waiters(&self) -> &WaitQueue<()> {
        &self.waiters
    }
}

impl Kernel {
    pub fn semaphore_create(&mut self, count: u32) -> SemaphoreId {
        self.semaphores.push(Semaphore {
            count,
            waiters: WaitQueue::default(),
        });
        SemaphoreId(self.semaphores.len() as u32 - 1)
    }

    pub fn semaphore(&self, s: SemaphoreId) -> &Semaphore {
        &self.semaphores[s.index()]
    }

    pub fn down(&mut self, cpu: CpuId, s: SemaphoreId) -> WaitStatus {
        self.down_slow(cpu, s, None, false)
    }

    pub fn down_interruptible(&mut self, cpu: CpuId, s: SemaphoreId) -> WaitStatus {
        self.down_slow(cpu, s, None, true)
    }

    pub fn down_timeout(&mut self, cpu: CpuId, s: SemaphoreId, timeout: Nanos) -> WaitStatus {
        let deadline = self.deadline_after(timeout);
        self.down_slow(cpu, s, Some(deadline), false)
    }

    pub fn down_trylock(&mut self, s: SemaphoreId) -> bool {
        let sem = &mut self.semaphores[s.index()];
        if sem.count > 0 {
            sem.count -= 1;
            true
        } else {
            false
        }
    }

    pub fn up(&mut self, cpu: CpuId, s: SemaphoreId) {
        let sem = &mut self.semaphores[s.index()];
        match sem.waiters.pop_front() {
            Some(w) => self.wake_granted(w.tid, cpu),
            None => sem.count = sem.count.saturating_add(1),
        }
    }

    fn down_slow(
        &mut self,
        cpu: CpuId,
        s: SemaphoreId,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) -> WaitStatus {
        let tid = self.current_thread(cpu);
        if self.down_trylock(s) {
            return WaitStatus::Ready(self.success(deadline));
        }
        if let Some(outcome) = self.precheck_wait(cpu, deadline, interruptible) {
            return WaitStatus::Ready(outcome);
        }
        let waiter = self.waiter_of(tid, ());
        self.semaphores[s.index()].waiters.insert(waiter);
        self.block_current(cpu, BlockedOn::Semaphore(s), deadline, interruptible);
        WaitStatus::Blocked
    }
}
