//! The channel between Bulkhead's partitions, over one shared memory region that both map.
//!
//! Three kinds of traffic, each with its own module, on a layout the [`layout`] header
//! versions: parameters Linux -> RT published RCU-style ([`params`], typed by [`schema`]),
//! telemetry RT -> Linux in locked per-CPU blocks under a sequence count ([`telemetry`]),
//! and SPSC message rings both ways ([`ring`]); and hv's own area, its partition table and
//! per-physical-CPU statistics ([`hv_stats`]).
//!
//! The rule that shapes it: **the RT side never waits for Linux**. No RT operation here has
//! a lock, spin, retry loop or grace period that depends on Linux; each is a fixed number
//! of loads and stores. And nothing Linux writes is trusted: every word read from the
//! region is bounds-checked before it is used as an index, and all access goes through
//! [`region::Region`] (atomic loads and stores only, no unsafe code in this crate).
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

pub mod checksum;
pub mod hv_stats;
pub mod layout;
pub mod params;
pub mod region;
pub mod ring;
pub mod schema;
mod sync;
pub mod telemetry;

#[cfg(all(test, loom))]
mod loom_models;

pub use layout::{Channel, Layout, LayoutError};
pub use region::{Region, Word};
