//! The `log` facade on the hypercall console: `hv` prefixes each line with the partition
//! and the physical CPU, so lines carry no prefix of their own here. Booted bare (no hv,
//! for the benchmark's baseline), lines go to the board's PL011 with a `[bare cpuN]`
//! prefix instead.

use core::fmt::Write;
use core::sync::atomic::{AtomicUsize, Ordering};

use log::{Level, LevelFilter, Metadata, Record};
use spin::Mutex;

use super::hvc;

/// Formats a line into a buffer first, so one line is one burst of hypercalls.
struct Line {
    buf: [u8; 240],
    len: usize,
}

impl Write for Line {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let room = self.buf.len() - self.len;
        let n = s.len().min(room);
        self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// hv buffers by physical CPU, but two of our threads on one vCPU must not interleave
/// (and bare, two vCPUs share the UART).
static LOCK: Mutex<()> = Mutex::new(());
/// PL011 base when running bare, 0 under hv.
static BARE_UART: AtomicUsize = AtomicUsize::new(0);

/// PL011 registers used bare (ARM DDI 0183): data at 0x00, flags at 0x18 (TXFF = bit 5).
const UART_DR: usize = 0x00;
const UART_FR: usize = 0x18;
const UART_FR_TXFF: u32 = 1 << 5;

/// Sends the console to the PL011 at `base` (bare boot, no hv to print for us).
pub fn use_uart(base: usize) {
    BARE_UART.store(base, Ordering::Release);
}

fn uart_write(base: usize, bytes: &[u8]) {
    for &b in bytes {
        // SAFETY: `base` is the board's PL011 from its DTB, identity-mapped as device memory
        // (or the MMU is off); guest-rt is its only user when booted bare.
        unsafe {
            while ((base + UART_FR) as *const u32).read_volatile() & UART_FR_TXFF != 0 {
                core::hint::spin_loop();
            }
            ((base + UART_DR) as *mut u32).write_volatile(u32::from(b));
        }
    }
}

pub fn print(args: core::fmt::Arguments) {
    let mut line = Line {
        buf: [0; 240],
        len: 0,
    };
    let uart = BARE_UART.load(Ordering::Acquire);
    if uart != 0 {
        let _ = write!(line, "[bare cpu{}] ", super::vcpu_index());
    }
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    // Masked: a thread preempted holding the line would stall the preempting one.
    let _masked = super::irqmask::IrqMasked::new();
    let _guard = LOCK.lock();
    if uart != 0 {
        uart_write(uart, &line.buf[..line.len]);
    } else {
        hvc::console_write(&line.buf[..line.len]);
    }
}

struct Logger;
static LOGGER: Logger = Logger;

pub fn init() {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(LevelFilter::Info);
}

impl log::Log for Logger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= Level::Info
    }

    fn log(&self, record: &Record) {
        match record.level() {
            Level::Info => print(*record.args()),
            level => print(format_args!("{level}: {}", record.args())),
        }
    }

    fn flush(&self) {}
}
