//! Board support data shared by `hv` (no_std) and `cargo xtask` (host).
//!
//! * [`config`]: the partition config, the typed source of truth for who owns what;
//! * [`dtb`]: the board model read from the firmware's device tree;
//! * [`check`]: config against DTB, so `hv` refuses a board that is not what it was built for;
//! * [`image`]: the system image's payload table.
//!
//! Everything here is portable and unit-tested on the host; nothing touches hardware.
#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod check;
pub mod config;
pub mod dtb;
pub mod hv_seal;
pub mod image;
