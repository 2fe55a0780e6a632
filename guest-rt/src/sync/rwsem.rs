//! Reader/writer semaphores on the shared priority-ordered wait queue.
//!
//! Owns the reader set, the writer and the waiters. Grants follow queue order
//! (priority, then FIFO): a reader arriving while anyone waits queues too, so
//! writers are not starved; when the head is a reader, every reader up to the
//! first queued writer is admitted together. Like semaphores, rwsems do not
//! boost readers (there may be many); code that needs bounded writer latency
//! under inversion uses an rt-mutex instead.

use alloc::vec::Vec;

use crate::kernel::Kernel;
use crate::scheduling::thread::{BlockedOn, CpuId, ThreadId, WaitStatus};
use crate::sync::waitqueue::WaitQueue;
use crate::time::timer::Nanos;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RwSemId(pub(crate) u32);

impl RwSemId {
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RwMode {
    Read,
    Write,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RwError {
    /// Release by a thread that does not hold the rwsem in that mode.
    NotHolder,
}

#[derive(Debug, Default)]
pub struct RwSem {
    pub(crate) readers: Vec<ThreadId>,
    pub(crate) writer: Option<ThreadId>,
    pub(crate) waiters: WaitQueue<RwMode>,
}

impl RwSem {
    pub fn readers(&self) -> &[ThreadId] {
        &self.readers
    }
    pub fn writer(&self) -> Option<ThreadId> {
        self.writer
    }
    pub fn waiters(&self) -> &WaitQueue<RwMode> {
        &self.waiters
    }

    fn can_grant(&self, mode: RwMode) -> bool {
        match mode {
            RwMode::Read => self.writer.is_none(),
            RwMode::Write => self.writer.is_none() && self.readers.is_empty(),
        }
    }

    /// True if the head waiter could be granted right now (a lost wakeup).
    pub fn head_grantable(&self) -> bool {
        self.waiters.front().is_some_and(|w| self.can_grant(w.data))
    }
}

impl Kernel {
    pub fn rwsem_create(&mut self) -> RwSemId {
        self.rwsems.push(RwSem::default());
        RwSemId(self.rwsems.len() as u32 - 1)
    }

    pub fn rwsem(&self, r: RwSemId) -> &RwSem {
        &self.rwsems[r.index()]
    }

    pub fn down_read(&mut self, cpu: CpuId, r: RwSemId) -> WaitStatus {
        self.rwsem_acquire(cpu, r, RwMode::Read, None, false)
    }

    pub fn down_write(&mut self, cpu: CpuId, r: RwSemId) -> WaitStatus {
        self.rwsem_acquire(cpu, r, RwMode::Write, None, false)
    }

    pub fn down_read_timeout(&mut self, cpu: CpuId, r: RwSemId, timeout: Nanos) -> WaitStatus {
        let deadline = self.deadline_after(timeout);
        self.rwsem_acquire(cpu, r, RwMode::Read, Some(deadline), false)
    }

    pub fn down_write_timeout(&mut self, cpu: CpuId, r: RwSemId, timeout: Nanos) -> WaitStatus {
        let deadline = self.deadline_after(timeout);
        self.rwsem_acquire(cpu, r, RwMode::Write, Some(deadline), false)
    }

    pub fn try_down_read(&mut self, cpu: CpuId, r: RwSemId) -> bool {
        let tid = self.current_thread(cpu);
        let sem = &mut self.rwsems[r.index()];
        if sem.waiters.is_empty() && sem.can_grant(RwMode::Read) {
            sem.readers.push(tid);
            true
        } else {
            false
        }
    }

    pub fn try_down_write(&mut self, cpu: CpuId, r: RwSemId) -> bool {
        let tid = self.current_thread(cpu);
        let sem = &mut self.rwsems[r.index()];
        if sem.waiters.is_empty() && sem.can_grant(RwMode::Write) {
            sem.writer = Some(tid);
            true
        } else {
            false
        }
    }

    pub fn up_read(&mut self, cpu: CpuId, r: RwSemId) -> Result<(), RwError> {
        let tid = self.current_thread(cpu);
        let sem = &mut self.rwsems[r.index()];
        let pos = sem
            .readers
            .iter()
            .position(|&t| t == tid)
            .ok_or(RwError::NotHolder)?;
        sem.readers.swap_remove(pos);
        self.rwsem_grant(r, cpu);
        Ok(())
    }

    pub fn up_write(&mut self, cpu: CpuId, r: RwSemId) -> Result<(), RwError> {
        let tid = self.current_thread(cpu);
        let sem = &mut self.rwsems[r.index()];
        if sem.writer != Some(tid) {
            return Err(RwError::NotHolder);
        }
        sem.writer = None;
        self.rwsem_grant(r, cpu);
        Ok(())
    }

    fn rwsem_acquire(
        &mut self,
        cpu: CpuId,
        r: RwSemId,
        mode: RwMode,
        deadline: Option<Nanos>,
        interruptible: bool,
    ) -> WaitStatus {
        let tid = self.current_thread(cpu);
        let granted = match mode {
            RwMode::Read => self.try_down_read(cpu, r),
            RwMode::Write => self.try_down_write(cpu, r),
        };
        if granted {
            return WaitStatus::Ready(self.success(deadline));
        }
        if let Some(outcome) = self.precheck_wait(cpu, deadline, interruptible) {
            return WaitStatus::Ready(outcome);
        }
        let waiter = self.waiter_of(tid, mode);
        self.rwsems[r.index()].waiters.insert(waiter);
        self.block_current(cpu, BlockedOn::RwSem(r), deadline, interruptible);
        WaitStatus::Blocked
    }

    /// Admits waiters from the head while they are compatible.
    pub(crate) fn rwsem_grant(&mut self, r: RwSemId, origin: CpuId) {
        loop {
            let sem = &mut self.rwsems[r.index()];
            let Some(head) = sem.waiters.front().copied() else {
                return;
            };
            if !sem.can_grant(head.data) {
                return;
            }
            sem.waiters.pop_front();
            match head.data {
                RwMode::Read => sem.readers.push(head.tid),
                RwMode::Write => sem.writer = Some(head.tid),
            }
            self.wake_granted(head.tid, origin);
        }
    }
}
