//! The console: the `log` facade on the PL011, one line per record, each naming its CPU.
//!
//! Printing never waits for the UART (an RT CPU must not stall behind another CPU's output
//! or the baud rate): a line goes whole into the [`ConsoleRing`], then the printer writes
//! what the UART FIFO takes right now. CPUs without a vCPU drain the rest in the
//! background ([`drain_idle`]); a fatal report drains everything before the machine stops.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use log::{Level, LevelFilter, Metadata, Record};
use spin::mutex::TicketMutex;
use spin::Mutex;

use aarch64_cpu::registers::{Writeable, CNTHP_CTL_EL2};

use super::cpu;
use super::pl011::Pl011;
use hv_core::console_ring::ConsoleRing;

static UART: Mutex<Option<Pl011>> = Mutex::new(None);
/// A ticket lock: CPUs get the ring in arrival order, so a Linux CPU writing byte after
/// byte cannot starve an RT CPU that prints a line.
static RING: TicketMutex<ConsoleRing> = TicketMutex::new(ConsoleRing::new());
/// CPU index holding `RING`, or `usize::MAX` (so a CPU faulting while it holds it can
/// still report).
static OWNER: AtomicUsize = AtomicUsize::new(usize::MAX);

struct Logger;
static LOGGER: Logger = Logger;

/// Longest line (with its prefix) kept whole; longer ones are cut.
const MAX_LINE: usize = 2048;

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

/// A line being formatted on the stack; `\n` becomes `\r\n` for the terminal.
struct LineBuf {
    buf: [u8; MAX_LINE],
    len: usize,
}

impl Write for LineBuf {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for &b in s.as_bytes() {
            if b == b'\n' && self.len < MAX_LINE {
                self.buf[self.len] = b'\r';
                self.len += 1;
            }
            if self.len < MAX_LINE {
                self.buf[self.len] = b;
                self.len += 1;
            }
        }
        Ok(())
    }
}

/// Runs `f` on the ring with this CPU as its owner.
fn with_ring<T>(f: impl FnOnce(&mut ConsoleRing) -> T) -> T {
    let me = cpu::index();
    if OWNER.load(Ordering::Acquire) == me {
        // This CPU faulted while holding the ring: its guard will never be dropped.
        // SAFETY: the lock is held by this very CPU, which abandoned that critical section
        // for good (fault reports do not return into it).
        unsafe { RING.force_unlock() };
    }
    let mut ring = RING.lock();
    OWNER.store(me, Ordering::Release);
    let result = f(&mut ring);
    OWNER.store(usize::MAX, Ordering::Release);
    result
}

fn emit(args: core::fmt::Arguments) {
    let mut line = LineBuf {
        buf: [0; MAX_LINE],
        len: 0,
    };
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    with_ring(|ring| ring.push_prefixed(&line.buf[..line.len]));
    drain_now();
}

/// Raw bytes from a partition's emulated UART (Linux's console), passed through as they
/// are: its own line discipline already made them terminal output.
pub fn raw(bytes: &[u8]) {
    if !bytes.is_empty() {
        with_ring(|ring| ring.push_raw(bytes));
        drain_now();
    }
}

/// Free bytes in the console ring.
pub fn room() -> usize {
    with_ring(|ring| ring.room())
}

/// A byte typed on the console, if one waits (never waits; skipped while another CPU
/// uses the UART).
pub fn poll_input() -> Option<u8> {
    UART.try_lock()?.as_ref()?.try_getc()
}

/// Writes what the UART accepts without waiting. Skipped if another CPU is draining.
pub fn drain_now() {
    if let Some(uart) = UART.try_lock() {
        if let Some(uart) = uart.as_ref() {
            with_ring(|ring| ring.drain(|b| uart.try_putc(b)));
        }
    }
}

/// Drains everything, waiting for the UART: only for reports just before the machine
/// stops.
pub fn drain_all() {
    // SAFETY: the machine is about to stop; a CPU stuck holding the UART lock (it faulted
    // while draining) must not hide the report.
    let uart = UART.try_lock().or_else(|| unsafe {
        UART.force_unlock();
        UART.try_lock()
    });
    if let Some(Some(uart)) = uart.as_deref() {
        with_ring(|ring| {
            ring.drain(|b| {
                uart.putc(b);
                true
            })
        });
        uart.flush();
    }
}

/// Whether output is waiting for the UART.
pub fn pending() -> bool {
    with_ring(|ring| !ring.is_empty())
}

/// The loop of a CPU that runs no vCPU: drains the console in the background, woken by
/// its EL2 physical timer (PPI `timer_ppi`) every millisecond while output waits, every
/// 10 ms otherwise. Interrupts stay masked: WFI wakes on the pending timer anyway.
pub fn drain_idle(timer_ppi: u32) -> ! {
    if let Some(gic) = super::gic::get() {
        gic.init_cpu();
        gic.enable_private(timer_ppi);
    }
    loop {
        drain_now();
        wait_tick();
    }
}

/// Sleeps until this CPU's EL2 physical timer fires: 1 ms while output waits, 10 ms
/// otherwise (or earlier, on any other interrupt). Every interrupt that woke it is
/// acknowledged and dropped: only a CPU whose vCPU does not run waits here.
pub fn wait_tick() {
    let hz = cpu::tick_hz();
    let wait = if pending() { hz / 1000 } else { hz / 100 };
    // SAFETY: the EL2 physical timer belongs to hv; arming it only raises its PPI.
    unsafe { core::arch::asm!("msr cnthp_tval_el2, {0}", in(reg) wait.max(1), options(nostack)) };
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::SET);
    aarch64_cpu::asm::wfi();
    CNTHP_CTL_EL2.write(CNTHP_CTL_EL2::ENABLE::CLEAR);
    if let Some(gic) = super::gic::get() {
        // Bounded: a level-triggered source that stays high must not keep this CPU here.
        for _ in 0..MAX_ACKS_PER_TICK {
            let Some(intid) = gic.acknowledge() else {
                break;
            };
            // A kick only wakes this wait; an SGI hv did not send is counted.
            if intid < 16 {
                gic.sgi_expected(intid);
            }
            gic.deactivate(intid);
        }
    }
}

/// Interrupts one idle tick acknowledges at most.
const MAX_ACKS_PER_TICK: usize = 16;

/// Prints one line (used by the logger and by fatal reports).
pub fn line(level: Level, args: core::fmt::Arguments) {
    match level {
        Level::Info => emit(format_args!("[hv cpu{}] {args}", cpu::index())),
        other => emit(format_args!("[hv cpu{}] {other}: {args}", cpu::index())),
    }
}

/// Prints one line a guest wrote, prefixed with its partition and physical CPU.
pub fn guest_line(partition: &str, cpu: usize, text: &str) {
    emit(format_args!("[{partition} cpu{cpu}] {text}"));
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
