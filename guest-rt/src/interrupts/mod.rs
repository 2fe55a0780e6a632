//! Interrupts, portable part: which handler serves which line ([`irq_registry`]) and the
//! protocol of a threaded line between its top half and its handler thread
//! ([`irq_thread`]). Acknowledging or deactivating anything on a GIC is the runtime's.
pub mod irq_registry;
pub mod irq_thread;
