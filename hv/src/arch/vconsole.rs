//! A Linux partition's console: the PL011 hv emulates at the address of the board's
//! console UART ([`hv_core::vuart`] is the register model), wired to the physical UART.
//!
//! Output: every byte the guest writes goes into hv's console ring as it is (Linux's own
//! line discipline made it terminal output). Input: hv polls the physical UART from the
//! EL2 timer of the partition's CPUs (every [`POLL_MS`] ms), routes each typed byte
//! with [`InputRouter`] (Ctrl-] commands switch the focus between partitions that take
//! input) and queues it in the focused partition's receive FIFO. The UART's interrupt is a
//! level-sensitive virtual SPI with no physical line behind it: hv puts it in a list
//! register of the first running vCPU whenever the model's line is high and the guest
//! enabled it.
//!
//! This never waits: neither for the physical UART (the ring absorbs output) nor for the
//! guest (input that finds the receive FIFO full is dropped and counted, as on hardware).

use alloc::vec::Vec;

use channel::hv_stats::Counter;
use log::info;
use spin::Mutex;

use super::console;
use super::exception::Frame;
use hv_core::console_input::{Cmd, InputRouter, Routed, HELP};
use hv_core::emulated_console::EmulatedConsole;
use hv_core::esr::DataAbort;
use hv_core::mmio_access::{AccessWidth, Refusal};
use hv_core::running::Running;

/// Period of the input poll while the guest runs.
pub const POLL_MS: u64 = 10;
/// Console ring space kept for hv's and the RT partition's lines: below it, the emulated
/// UART reports itself full and Linux waits (on a 115200-baud UART Linux can print far
/// faster than the line drains; its output must not crowd out the others').
pub const RESERVED_FOR_OTHERS: usize = 4096;

/// A Linux partition's console model ([`EmulatedConsole`]) wired to hv's UART and the GIC.
pub trait ConsoleWiring {
    /// A guest load or store in the frame. False if the model refuses it (bad width or
    /// offset: a stray access for the caller).
    fn access(
        &self,
        frame: &mut Frame,
        partition: &Running,
        offset: u64,
        da: DataAbort,
    ) -> Result<(), Refusal>;
    /// Keeps the virtual SPI pending while the model's line is high, on the partition's
    /// lowest-numbered running vCPU (Linux may take its CPU 0 offline): injected here when
    /// that is this CPU's, else that CPU is kicked and does it.
    fn update_irq(&self, partition: &Running);
}

impl ConsoleWiring for EmulatedConsole {
    fn access(
        &self,
        frame: &mut Frame,
        partition: &Running,
        offset: u64,
        da: DataAbort,
    ) -> Result<(), Refusal> {
        const DEVICE: &str = "the console UART";
        let Some(width) = AccessWidth::from_bytes(da.size) else {
            return Err(Refusal::Device(
                "the console UART: access of an unknown size",
            ));
        };
        console::drain_now();
        let full = console::room() < RESERVED_FOR_OTHERS;
        let (result, output) = {
            let mut model = self.model().lock();
            model.set_tx_full(full);
            let result = if da.write {
                model.write(offset, width, frame.reg(da.register))
            } else {
                model
                    .read(offset, width)
                    .map(|value| frame.complete_load(da, value))
            };
            (result, model.take_tx())
        };
        if !output.as_slice().is_empty() {
            super::stats::count_n(Counter::ConsoleOut, output.as_slice().len() as u64);
        }
        console::raw(output.as_slice());
        self.update_irq(partition);
        result.map_err(|error| Refusal::Access {
            device: DEVICE,
            error,
        })
    }

    fn update_irq(&self, partition: &Running) {
        if self.model().lock().line_high() {
            super::virtual_line::raise(partition, self.spi());
        }
    }
}

/// Who gets typed bytes; `None` until [`init_input`] (or when no partition takes input).
static ROUTER: Mutex<Option<InputRouter>> = Mutex::new(None);

/// Every partition with an emulated console takes input; the first one has the focus.
pub fn init_input(partitions: &[Running]) {
    let accepts: Vec<bool> = partitions.iter().map(|p| p.console.is_some()).collect();
    *ROUTER.lock() = InputRouter::new(&accepts).ok();
}

/// Reads what was typed and hands it to the partition with input focus, stopping while
/// that partition's receive FIFO is full (the physical UART keeps the rest). Run from the
/// EL2 timer tick of a CPU whose vCPU has an emulated console.
pub fn poll_input(partitions: &[Running]) {
    console::drain_now();
    // Another CPU polling right now does the same work.
    let Some(mut router) = ROUTER.try_lock() else {
        return;
    };
    let Some(router) = router.as_mut() else {
        return;
    };
    let mut touched = 0u64;
    loop {
        let focused = router
            .focus()
            .and_then(|i| Some((i, partitions.get(i)?.console.as_ref()?)));
        if focused.is_some_and(|(_, c)| c.model().lock().rx_room() == 0) {
            break;
        }
        let Some(byte) = console::poll_input() else {
            break;
        };
        match router.route(byte) {
            Routed::Deliver { partition, byte } => {
                if let Some(c) = partitions.get(partition).and_then(|p| p.console.as_ref()) {
                    c.model().lock().push_rx(byte);
                    super::stats::count(Counter::ConsoleIn);
                    touched |= 1 << partition;
                }
            }
            Routed::Command(Cmd::Help) => {
                let focus = partition_name(partitions, router.focus().unwrap_or(usize::MAX));
                let takers: Vec<_> = router
                    .accepting()
                    .map(|i| partition_name(partitions, i))
                    .collect();
                info!(
                    "{HELP}; input now goes to {focus} (taking input: {})",
                    if takers.is_empty() {
                        "none".into()
                    } else {
                        takers.join(", ")
                    }
                );
            }
            Routed::Command(Cmd::FocusMoved { to }) => {
                let focus = partition_name(partitions, to.unwrap_or(usize::MAX));
                info!("console: input now goes to {focus}");
            }
            Routed::Command(Cmd::Unknown(byte)) => {
                info!("console: no command {byte:#04x} after Ctrl-] (Ctrl-] ? for help)");
            }
            Routed::Nothing => {}
        }
    }
    // The ring drained since the last look: a guest waiting to print may go on.
    let full = console::room() < RESERVED_FOR_OTHERS;
    for (i, p) in partitions.iter().enumerate() {
        if let Some(c) = &p.console {
            let was_full = {
                let mut model = c.model().lock();
                let was = model.tx_full();
                model.set_tx_full(full);
                was
            };
            if touched & (1 << i) != 0 || (was_full && !full) {
                c.update_irq(p);
            }
        }
    }
}

fn partition_name(partitions: &[Running], index: usize) -> alloc::string::String {
    partitions.get(index).map_or_else(
        || "no partition".into(),
        |p| alloc::format!("partition `{}`", p.state.lock().name),
    )
}

/// Partition `index` stopped (`false`) or runs again (`true`): a stopped partition takes
/// no input, so typed bytes are not queued for nobody; the focus moves on if it had it.
pub fn set_takes_input(partitions: &[Running], index: usize, takes: bool) {
    if partitions.get(index).is_none_or(|p| p.console.is_none()) {
        return;
    }
    let change = ROUTER.lock().as_mut().map(|router| {
        let before = router.focus();
        (before, router.set_accepts(index, takes))
    });
    if let Some((_, after)) = change.filter(|(before, after)| before != after) {
        let name = partition_name(partitions, after.unwrap_or(usize::MAX));
        info!("console: input now goes to {name}");
    }
}

/// Prints what each emulated console carried (on `--smoke` power-off, with hv's other
/// statistics).
pub fn print_stats(partitions: &[Running]) {
    for (i, p) in partitions.iter().enumerate() {
        if let Some(console) = &p.console {
            let stats = console.model().lock().stats();
            info!(
                "stats: {} console: {} bytes out, {} in, {} typed bytes lost (receive FIFO full)",
                partition_name(partitions, i),
                stats.tx_bytes,
                stats.rx_bytes,
                stats.rx_overflows
            );
        }
    }
}
