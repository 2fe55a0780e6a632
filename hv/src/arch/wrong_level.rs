//! hv entered at another exception level than EL2 (`hv_core::entry_level` decides what
//! that means): the report on the console, if one can be found, and the halt.
//!
//! Runs with the MMU off and must never touch an EL2 register (at EL1 they do not exist):
//! no TPIDR_EL2, so the console ring, which names CPUs by it, is bypassed and the UART is
//! written directly. On hardware the heap's lock then runs on Device memory, where
//! exclusives are not guaranteed; QEMU runs it either way.

use alloc::format;

use hv_core::entry_level::{self, Halt};
use platform::dtb::BoardInfo;

use super::{boot, heap, pl011::Pl011, power};

/// Entered from `arch::entry` on CPU 0's stack with the firmware's x0 and the raw
/// CurrentEL value. Never returns.
///
/// # Safety
/// Called once, by the entry code, with the DTB pointer the loader passed in x0.
pub unsafe extern "C" fn report(dtb: usize, current_el: u64) -> ! {
    let wrong = match entry_level::check(current_el) {
        Err(wrong) => wrong,
        // The entry code comes here only when CurrentEL is not EL2.
        Ok(()) => entry_level::WrongLevel { el: 2 },
    };
    heap::init_boot_arena();
    // SAFETY: `dtb` is the loader's x0 (this function's contract), read before anything
    // could reuse that memory.
    let board = unsafe { boot::dtb_slice(dtb) }
        .ok()
        .and_then(|bytes| BoardInfo::parse(bytes).ok());
    let config = boot::payloads()
        .ok()
        .and_then(|p| boot::load_config(&p).ok());
    if let Some(base) = boot::console_base(config.as_ref(), board.as_ref()) {
        // SAFETY: the config's (or the DTB's) console UART, which hv alone drives; the
        // MMU is off, so its address is its physical one.
        let uart = unsafe { Pl011::new(base as usize) };
        uart.init();
        let text = format!("[hv] FATAL: {wrong}\n[hv] stopping the machine\n");
        for b in text.bytes() {
            if b == b'\n' {
                uart.putc(b'\r');
            }
            uart.putc(b);
        }
        uart.flush();
    }
    if let Some(board) = &board {
        match wrong.halt() {
            Halt::PsciOrWatchdog => boot::set_power_method(board),
            Halt::WatchdogOnly => {
                if let Some(wdt) = board.watchdog {
                    // SAFETY: the board's watchdog (DTB), used by nothing else; the MMU
                    // is off.
                    power::set_method(unsafe { power::Method::watchdog(wdt.base as usize) });
                }
            }
        }
    }
    power::stop()
}
