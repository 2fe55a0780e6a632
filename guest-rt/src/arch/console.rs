//! The `log` facade on the hypercall console: `hv` prefixes each line with the partition
//! and the physical CPU, so lines carry no prefix of their own here.

use core::fmt::Write;

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

/// hv buffers by physical CPU, but two of our threads on one vCPU must not interleave.
static LOCK: Mutex<()> = Mutex::new(());

pub fn print(args: core::fmt::Arguments) {
    let mut line = Line {
        buf: [0; 240],
        len: 0,
    };
    let _ = line.write_fmt(args);
    let _ = line.write_str("\n");
    let _guard = LOCK.lock();
    hvc::console_write(&line.buf[..line.len]);
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
