//! Locked per-CPU variables (DEFINE_PER_CPU_LOCKED / get_cpu_var_locked /
//! put_cpu_var_locked).
//!
//! Owns one value per CPU, each guarded by its own rt-mutex instead of by
//! disabled preemption. A thread locks the slot of the CPU it is on and may
//! then be preempted or even migrated while holding it: it keeps updating that
//! same slot (now "another CPU's"), and the lock keeps every update correct.
//! The values are therefore only statistically per-CPU. This type never
//! disables preemption and never touches a slot without holding its lock.

use alloc::vec::Vec;

use crate::kernel::Kernel;
use crate::scheduling::thread::{CpuId, WaitStatus};
use crate::sync::rtmutex::{LockError, MutexId};

/// Which slot a `get_locked` call locked; pass it to `slot_mut`/`put_locked`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PerCpuSlot(pub CpuId);

#[derive(Debug)]
pub struct PerCpuLocked<T> {
    values: Vec<T>,
    locks: Vec<MutexId>,
}

impl<T> PerCpuLocked<T> {
    pub fn new(kernel: &mut Kernel, mut init: impl FnMut(CpuId) -> T) -> Self {
        let cpus = kernel.cpus();
        PerCpuLocked {
            values: (0..cpus).map(&mut init).collect(),
            locks: (0..cpus).map(|_| kernel.mutex_create()).collect(),
        }
    }

    /// Locks the slot of `cpu` (the caller's CPU now). May block: when the
    /// status is [`WaitStatus::Blocked`], the slot is owned once the thread
    /// is woken with a success outcome.
    pub fn get_locked(
        &self,
        kernel: &mut Kernel,
        cpu: CpuId,
    ) -> Result<(PerCpuSlot, WaitStatus), LockError> {
        let status = kernel.lock(cpu, self.locks[cpu])?;
        Ok((PerCpuSlot(cpu), status))
    }

    /// The locked value. `cpu` is where the caller runs now, which may differ
    /// from the slot's CPU after a migration.
    pub fn slot_mut(
        &mut self,
        kernel: &Kernel,
        cpu: CpuId,
        slot: PerCpuSlot,
    ) -> Result<&mut T, LockError> {
        let holder = kernel.current(cpu);
        if holder.is_none() || kernel.mutex_owner(self.locks[slot.0]) != holder {
            return Err(LockError::NotOwner);
        }
        Ok(&mut self.values[slot.0])
    }

    pub fn put_locked(
        &self,
        kernel: &mut Kernel,
        cpu: CpuId,
        slot: PerCpuSlot,
    ) -> Result<(), LockError> {
        kernel.unlock(cpu, self.locks[slot.0])
    }

    pub fn lock_of(&self, slot: PerCpuSlot) -> MutexId {
        self.locks[slot.0]
    }

    /// All values, for inspection when no slot is held.
    pub fn values(&self) -> &[T] {
        &self.values
    }
}
