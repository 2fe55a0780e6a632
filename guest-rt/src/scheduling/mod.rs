//! Scheduling: threads and their priorities, the per-CPU run queues, and the
//! reschedule requests one CPU sends another.
//!
//! Owns who runs where: [`thread`] (a thread's identity, policy, state and wait
//! outcome), [`sched`] (run queues and the pick), [`prio_bitmap`] (the O(1)
//! index of non-empty priority levels), [`ipi_set`] (the CPUs owed a reschedule).
//! Never blocks on or sleeps for anything itself: waiting belongs to [`crate::sync`].
pub mod ipi_set;
pub mod prio_bitmap;
pub mod sched;
pub mod thread;
