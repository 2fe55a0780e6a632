//! The console: the `log` facade on the PL011, one line per record, each naming its CPU.
//!
//! Lines from different CPUs never interleave (a spin lock around each record). A CPU that
//! faults while it holds the lock may still print its report: the lock remembers its owner.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use log::{Level, LevelFilter, Metadata, Record};
use spin::Mutex;

use super::cpu;
use super::pl011::Pl011;

static UART: Mutex<Option<Pl011>> = Mutex::new(None);
/// CPU index holding `UART`, or `usize::MAX`.
static OWNER: AtomicUsize = AtomicUsize::new(usize::MAX);

struct Logger;
static LOGGER: Logger = Logger;

/// Starts the console on the PL011 at `base` and installs the logger.
///
/// # Safety
/// `base` must be a PL011 owned by hv and accessible (identity mapped or MMU off).
pub unsafe fn init(base: usize) {
    // SAFETY: forwarded from the caller.
    let uart = unsafe { Pl011::new(base) };
    uart.init();
    *UART.lock() = Some(uart);
    // A second init (after a fallback console) keeps the installed logger.
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

/// Runs `f` with exclusive access to the UART (if any).
fn with_uart(f: impl FnOnce(&mut Pl011)) {
    let me = cpu::index();
    if OWNER.load(Ordering::Acquire) == me {
        // This CPU faulted while printing: its guard will never be dropped.
        // SAFETY: the lock is held by this very CPU, which abandoned that critical section
        // for good (fault reports do not return into it).
        unsafe { UART.force_unlock() };
    }
    let mut guard = UART.lock();
    OWNER.store(me, Ordering::Release);
    if let Some(uart) = guard.as_mut() {
        f(uart);
    }
    OWNER.store(usize::MAX, Ordering::Release);
}

/// Prints one line (used by the logger and by fatal reports).
pub fn line(level: Level, args: core::fmt::Arguments) {
    with_uart(|uart| {
        let _ = match level {
            Level::Info => write!(uart, "[hv cpu{}] ", cpu::index()),
            other => write!(uart, "[hv cpu{}] {other}: ", cpu::index()),
        };
        let _ = uart.write_fmt(args);
        let _ = uart.write_str("\n");
        uart.flush();
    });
}

/// Prints one line a guest wrote, prefixed with its partition and physical CPU.
pub fn guest_line(partition: &str, cpu: usize, text: &str) {
    with_uart(|uart| {
        let _ = writeln!(uart, "[{partition} cpu{cpu}] {text}");
        uart.flush();
    });
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record) {
        if self.enabled(record.metadata()) {
            line(record.level(), *record.args());
        }
    }

    fn flush(&self) {}
}
