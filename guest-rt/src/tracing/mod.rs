//! Tracing: what the kernel measures about itself, as plain numbers ([`latency`]'s
//! wake-up statistics and histogram, [`sections`]' longest lock holds, masked sections
//! and wake-ups per vCPU). Printing them is the caller's.
pub mod latency;
pub mod sections;
