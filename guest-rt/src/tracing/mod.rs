//! Tracing: what the kernel measures about itself, as plain numbers ([`latency`]'s
//! wake-up statistics and histogram). Printing them is the caller's.
pub mod latency;
