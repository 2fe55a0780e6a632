//! hv's portable core: everything the hypervisor decides, as plain Rust that builds and is
//! unit-tested on the host (`cargo test -p hv-core`).
//!
//! It owns the partitions' run-time state, trap and data-abort decoding, the emulated GIC
//! distributor and redistributors, the emulated devices (console UART, control page, the doorbell's PL061), the doorbell's rate limit, the
//! console ring and input routing, the channel's header, guest placement, the guests' DTBs and stage-2 tables.
//! It must never touch a register, a physical address or the MMU: hv's `arch` layer does
//! that, with the values and decisions this crate hands it.
#![cfg_attr(not(test), no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod app_load;
pub mod board_ram;
pub mod cache_colour;
pub mod channel_setup;
pub mod console_input;
pub mod console_ring;
pub mod control_page;
pub mod cpu_stats;
pub mod doorbell;
pub mod emulated_console;
pub mod emulated_gpio;
pub mod entry_level;
pub mod esr;
pub mod exception_injection;
pub mod fault_policy;
pub mod fault_reports;
pub mod forwarding;
pub mod guest_dtb;
pub mod guest_image;
pub mod hypercall;
pub mod hypercall_server;
pub mod kick_requests;
pub mod layout;
pub mod list_register;
pub mod mmio_access;
pub mod owed_irqs;
pub mod partition;
pub mod running;
pub mod stage2;
pub mod trap;
pub mod vgic;
pub mod vgpio;
pub mod virtual_sgi;
pub mod vuart;
