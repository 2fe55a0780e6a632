//! Lock-based RCU, as PREEMPT_RT does it: readers take a real (sleeping) lock
//! that excludes writers, so they stay preemptible inside the read side.
//!
//! Owns the published versions of one value, which readers currently hold
//! which version, and the retired versions waiting to be freed. The read side
//! must name its lock ([`RcuGuard`]): the analogs of `rcu_read_lock_spin` and
//! `rcu_read_lock_sem` use an rt-mutex (in a fully preemptible kernel both a
//! spinlock and a binary semaphore become one), `rcu_read_lock_down_read`
//! uses an rwsem's read side. A version is freed only when it is no longer
//! current and no reader record points at it; this module never frees, or
//! hands out, a version on any other condition, and never disables
//! preemption.

use alloc::vec::Vec;

use crate::kernel::Kernel;
use crate::scheduling::thread::{CpuId, ThreadId, WaitStatus};
use crate::sync::rtmutex::{LockError, MutexId};
use crate::sync::rwsem::RwSemId;

/// The lock that excludes writers from readers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcuGuard {
    /// Readers and writers serialize on one rt-mutex (spin / sem analogs).
    Mutex(MutexId),
    /// Readers share the read side; writers take the write side.
    RwSem(RwSemId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(pub u64);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcuError {
    /// The caller does not hold the side of the guard the operation needs.
    NotHeld,
    Lock(LockError),
}

#[derive(Debug)]
pub struct RcuCell<T> {
    guard: RcuGuard,
    current: VersionId,
    /// Current and retired-but-still-referenced versions.
    live: Vec<(VersionId, T)>,
    readers: Vec<(ThreadId, VersionId)>,
    freed: Vec<VersionId>,
    next_version: u64,
}

impl<T> RcuCell<T> {
    pub fn new(guard: RcuGuard, init: T) -> Self {
        RcuCell {
            guard,
            current: VersionId(0),
            live: alloc::vec![(VersionId(0), init)],
            readers: Vec::new(),
            freed: Vec::new(),
            next_version: 1,
        }
    }

    pub fn guard(&self) -> RcuGuard {
        self.guard
    }

    /// Enters the read side by taking the guard. May block.
    pub fn read_lock(&self, kernel: &mut Kernel, cpu: CpuId) -> Result<WaitStatus, LockError> {
        match self.guard {
            RcuGuard::Mutex(m) => kernel.lock(cpu, m),
            RcuGuard::RwSem(r) => Ok(kernel.down_read(cpu, r)),
        }
    }

    fn holds_read(&self, kernel: &Kernel, tid: ThreadId) -> bool {
        match self.guard {
            RcuGuard::Mutex(m) => kernel.mutex_owner(m) == Some(tid),
            RcuGuard::RwSem(r) => {
                let sem = kernel.rwsem(r);
                sem.readers().contains(&tid) || sem.writer() == Some(tid)
            }
        }
    }

    fn holds_write(&self, kernel: &Kernel, tid: ThreadId) -> bool {
        match self.guard {
            RcuGuard::Mutex(m) => kernel.mutex_owner(m) == Some(tid),
            RcuGuard::RwSem(r) => kernel.rwsem(r).writer() == Some(tid),
        }
    }

    fn caller(kernel: &Kernel, cpu: CpuId) -> Result<ThreadId, RcuError> {
        kernel.current(cpu).ok_or(RcuError::NotHeld)
    }

    /// The version visible to the caller, who must be inside the read side.
    /// The first dereference pins the current version for this reader.
    pub fn read_deref(&mut self, kernel: &Kernel, cpu: CpuId) -> Result<(VersionId, &T), RcuError> {
        let tid = Self::caller(kernel, cpu)?;
        if !self.holds_read(kernel, tid) {
            return Err(RcuError::NotHeld);
        }
        let version = match self.readers.iter().find(|(t, _)| *t == tid) {
            Some(&(_, v)) => v,
            None => {
                self.readers.push((tid, self.current));
                self.current
            }
        };
        let value = self
            .live
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, value)| value)
            .expect("a pinned version is never freed");
        Ok((version, value))
    }

    /// Leaves the read side, releasing the guard and freeing versions no
    /// reader can see any more.
    pub fn read_unlock(&mut self, kernel: &mut Kernel, cpu: CpuId) -> Result<(), RcuError> {
        let tid = Self::caller(kernel, cpu)?;
        if !self.holds_read(kernel, tid) {
            return Err(RcuError::NotHeld);
        }
        self.readers.retain(|(t, _)| *t != tid);
        match self.guard {
            RcuGuard::Mutex(m) => kernel.unlock(cpu, m).map_err(RcuError::Lock)?,
            RcuGuard::RwSem(r) => kernel.up_read(cpu, r).map_err(|_| RcuError::NotHeld)?,
        }
        self.reclaim();
        Ok(())
    }

    /// Takes the writer side of the guard. May block (until readers leave).
    pub fn write_lock(&self, kernel: &mut Kernel, cpu: CpuId) -> Result<WaitStatus, LockError> {
        match self.guard {
            RcuGuard::Mutex(m) => kernel.lock(cpu, m),
            RcuGuard::RwSem(r) => Ok(kernel.down_write(cpu, r)),
        }
    }

    /// Publishes a new version; the old one is retired and freed as soon as
    /// no reader holds it (at once, when the guard excludes all readers).
    pub fn publish(
        &mut self,
        kernel: &Kernel,
        cpu: CpuId,
        value: T,
    ) -> Result<VersionId, RcuError> {
        let tid = Self::caller(kernel, cpu)?;
        if !self.holds_write(kernel, tid) {
            return Err(RcuError::NotHeld);
        }
        let version = VersionId(self.next_version);
        self.next_version += 1;
        self.live.push((version, value));
        self.current = version;
        self.reclaim();
        Ok(version)
    }

    pub fn write_unlock(&mut self, kernel: &mut Kernel, cpu: CpuId) -> Result<(), RcuError> {
        let tid = Self::caller(kernel, cpu)?;
        if !self.holds_write(kernel, tid) {
            return Err(RcuError::NotHeld);
        }
        match self.guard {
            RcuGuard::Mutex(m) => kernel.unlock(cpu, m).map_err(RcuError::Lock),
            RcuGuard::RwSem(r) => kernel.up_write(cpu, r).map_err(|_| RcuError::NotHeld),
        }
    }

    fn reclaim(&mut self) {
        let (current, readers) = (self.current, &self.readers);
        let freed = &mut self.freed;
        self.live.retain(|(v, _)| {
            let keep = *v == current || readers.iter().any(|(_, r)| r == v);
            if !keep {
                freed.push(*v);
            }
            keep
        });
    }

    pub fn current_version(&self) -> VersionId {
        self.current
    }

    /// True if `version` has not been freed.
    pub fn is_live(&self, version: VersionId) -> bool {
        self.live.iter().any(|(v, _)| *v == version)
    }

    /// Freed versions, in freeing order.
    pub fn freed(&self) -> &[VersionId] {
        &self.freed
    }
}
