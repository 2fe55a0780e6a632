//! Interrupts, portable part: which handler serves which line ([`irq_registry`]), the
//! protocol of a threaded line between its top half and its handler thread
//! ([`irq_thread`]), what an acknowledged INTID is to the top half ([`source`]), and the
//! GIC CPU interface's register values ([`cpu_interface`]). Reading or writing a GIC
//! register is the runtime's.
pub mod cpu_interface;
pub mod irq_registry;
pub mod irq_thread;
pub mod source;
