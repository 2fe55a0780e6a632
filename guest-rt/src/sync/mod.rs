//! Synchronization: everything a thread can wait on or hold.
//!
//! Owns the sleeping locks ([`rtmutex`] with priority inheritance, [`rwsem`],
//! [`semaphore`]), [`completion`]s, the priority-ordered [`waitqueue`] they share,
//! per-CPU data behind a lock ([`percpu_locked`]), [`rcu`] over a sleeping lock, and
//! the list of raw (non-preemptible) sections ([`rawlock`]), and the fair spinlock the
//! kernel lock is ([`ticket_lock`]). Picking who runs next
//! is [`crate::scheduling`]'s, never this module's.
pub mod completion;
pub mod percpu_locked;
pub mod rawlock;
pub mod rcu;
pub mod rtmutex;
pub mod rwsem;
pub mod semaphore;
pub mod ticket_lock;
pub mod waitqueue;
