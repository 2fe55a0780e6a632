//! Sleepable temporary mappings of pages (the kmap_atomic_rt analog).
//!
//! Owns a small pool of virtual mapping slots and which thread holds each. In
//! a fully preemptible kernel a temporary mapping cannot be a per-CPU slot
//! used with preemption off, so a slot is reserved through a counting
//! semaphore (reserving may sleep) and stays valid across preemption and
//! migration. The page-table write itself is injected ([`PageMapper`]), so
//! this module never touches hardware and never disables preemption.

use alloc::vec::Vec;

use crate::kernel::Kernel;
use crate::scheduling::thread::{CpuId, ThreadId, WaitStatus};
use crate::sync::semaphore::SemaphoreId;

/// Writes and clears the page-table entry of one mapping slot.
pub trait PageMapper {
    fn map(&mut self, va: usize, frame: u64);
    fn unmap(&mut self, va: usize);
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KmapError {
    /// `map` without a completed reservation (every slot is taken).
    NoReservation,
    /// `unmap` of an address the caller has not mapped.
    NotMapped,
    NoCurrentThread,
}

#[derive(Debug)]
pub struct KmapPool {
    sem: SemaphoreId,
    base: usize,
    slot_size: usize,
    slots: Vec<Option<ThreadId>>,
}

impl KmapPool {
    pub fn new(kernel: &mut Kernel, base: usize, slot_size: usize, slots: usize) -> Self {
        KmapPool {
            sem: kernel.semaphore_create(slots as u32),
            base,
            slot_size,
            slots: alloc::vec![None; slots],
        }
    }

    /// Reserves a slot for the current thread; may block until one is free.
    pub fn reserve(&self, kernel: &mut Kernel, cpu: CpuId) -> WaitStatus {
        kernel.down(cpu, self.sem)
    }

    /// Maps `frame` into a reserved slot and returns its virtual address.
    pub fn map(
        &mut self,
        kernel: &Kernel,
        cpu: CpuId,
        frame: u64,
        mapper: &mut dyn PageMapper,
    ) -> Result<usize, KmapError> {
        let tid = kernel.current(cpu).ok_or(KmapError::NoCurrentThread)?;
        let index = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(KmapError::NoReservation)?;
        self.slots[index] = Some(tid);
        let va = self.base + index * self.slot_size;
        mapper.map(va, frame);
        Ok(va)
    }

    /// Removes the mapping and returns the slot to the pool (waking a waiter).
    pub fn unmap(
        &mut self,
        kernel: &mut Kernel,
        cpu: CpuId,
        va: usize,
        mapper: &mut dyn PageMapper,
    ) -> Result<(), KmapError> {
        let tid = kernel.current(cpu).ok_or(KmapError::NoCurrentThread)?;
        let index = va
            .checked_sub(self.base)
            .map(|off| off / self.slot_size)
            .filter(|&i| i < self.slots.len() && self.slots[i] == Some(tid))
            .ok_or(KmapError::NotMapped)?;
        mapper.unmap(va);
        self.slots[index] = None;
        kernel.up(cpu, self.sem);
        Ok(())
    }

    pub fn slots_in_use(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }
}
