//! guest-rt: the real-time kernel of the RT partition.
#![cfg_attr(not(test), no_std)]
