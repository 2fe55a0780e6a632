//! The console's output buffer: a fixed ring of bytes between the CPUs that print and
//! whoever drains it into the UART.
//!
//! Printing never waits for the UART: a line is copied into the ring (or, when the ring
//! is full, dropped and counted), and draining writes only what the UART takes without
//! waiting. So an RT CPU that prints spends time proportional to its own line, never to
//! another CPU's output or to the baud rate. Portable and host-tested.
//!
//! Two kinds of writers share it: hv's and the RT partition's prefixed lines, and a
//! partition's raw terminal output (Linux's console), passed through as it is. A prefixed
//! line that arrives while the raw output is mid-line (a prompt, or a line Linux is still
//! writing byte by byte) starts on a line of its own, and the unfinished line is written
//! again after it, so the terminal, and a program reading it, still sees Linux's line
//! whole on its last row.

/// Ring capacity in bytes.
pub const CAPACITY: usize = 16 * 1024;

/// Longest unfinished raw line written again after a prefixed line; a longer one is
/// only broken, not repeated.
pub const UNFINISHED_MAX: usize = 256;

pub struct ConsoleRing {
    buf: [u8; CAPACITY],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    /// Bytes of lines that did not fit, not yet reported.
    dropped: u64,
    /// The raw output's line so far, if it has not ended it.
    unfinished: UnfinishedLine,
}

/// What the terminal shows of a raw line that has not ended yet: its printable text
/// (what repeating it may show again: escape sequences such as a shell's cursor query are
/// left out, backspaces and carriage returns applied).
struct UnfinishedLine {
    text: [u8; UNFINISHED_MAX],
    len: usize,
    /// Bytes since the last newline (the line is open even if nothing printable is kept).
    open: bool,
    /// The line grew past [`UNFINISHED_MAX`]: it can no longer be repeated.
    overflow: bool,
    /// Inside an escape sequence (after ESC, or ESC `[` until its final byte).
    escape: Escape,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    None,
    Started,
    Csi,
}

impl UnfinishedLine {
    const fn new() -> Self {
        Self {
            text: [0; UNFINISHED_MAX],
            len: 0,
            open: false,
            overflow: false,
            escape: Escape::None,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            match (self.escape, b) {
                (_, b'\n') => *self = Self::new(),
                (Escape::Started, b'[') => self.escape = Escape::Csi,
                (Escape::Started, _) => self.escape = Escape::None,
                (Escape::Csi, 0x40..=0x7e) => self.escape = Escape::None,
                (Escape::Csi, _) => {}
                (Escape::None, 0x1b) => {
                    self.open = true;
                    self.escape = Escape::Started;
                }
                (Escape::None, b'\r') => {
                    self.open = true;
                    self.len = 0;
                    self.overflow = false;
                }
                (Escape::None, 0x08) => {
                    self.open = true;
                    self.len = self.len.saturating_sub(1);
                }
                (Escape::None, b' '..=b'~' | b'\t') => {
                    self.open = true;
                    if self.len < UNFINISHED_MAX {
                        self.text[self.len] = b;
                        self.len += 1;
                    } else {
                        self.overflow = true;
                    }
                }
                (Escape::None, _) => self.open = true,
            }
        }
    }

    /// The text to write again after a line of hv's, if the line is open.
    fn repeat(&self) -> Option<&[u8]> {
        (self.open && !self.overflow).then_some(&self.text[..self.len])
    }
}

impl Default for ConsoleRing {
    fn default() -> Self {
        Self::new()
    }
}

impl ConsoleRing {
    pub const fn new() -> Self {
        Self {
            buf: [0; CAPACITY],
            head: 0,
            len: 0,
            dropped: 0,
            unfinished: UnfinishedLine::new(),
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends a whole line, or drops it (counted) if it does not fit: lines are never
    /// cut. A note about earlier drops goes first once there is room for it.
    pub fn push_line(&mut self, line: &[u8]) {
        self.push_parts(&[line]);
    }

    /// [`Self::push_line`] of the concatenation of `parts`.
    fn push_parts(&mut self, parts: &[&[u8]]) {
        let total: usize = parts.iter().map(|p| p.len()).sum();
        if self.dropped > 0 {
            let mut note = [0u8; 48];
            let n = format_dropped(&mut note, self.dropped);
            if self.room() >= n + total {
                self.append(&note[..n]);
                self.dropped = 0;
            }
        }
        if self.room() >= total {
            for part in parts {
                self.append(part);
            }
        } else {
            self.dropped += total as u64;
        }
    }

    /// A partition's raw terminal output, as it is (whole or dropped, like a line).
    pub fn push_raw(&mut self, bytes: &[u8]) {
        self.push_line(bytes);
        self.unfinished.feed(bytes);
    }

    /// A prefixed line of hv's or the RT partition's (ending in its own newline). If the
    /// raw output is mid-line, the line starts on a row of its own and the unfinished raw
    /// line is written again after it; all of it goes in whole, or is dropped.
    pub fn push_prefixed(&mut self, line: &[u8]) {
        if !self.unfinished.open {
            return self.push_line(line);
        }
        let mut again = [0u8; UNFINISHED_MAX];
        let n = self.unfinished.repeat().map_or(0, |text| {
            again[..text.len()].copy_from_slice(text);
            text.len()
        });
        self.push_parts(&[b"\r\n", line, &again[..n]]);
    }

    /// Free bytes.
    pub fn room(&self) -> usize {
        CAPACITY - self.len
    }

    fn append(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf[(self.head + self.len) % CAPACITY] = b;
            self.len += 1;
        }
    }

    /// Hands bytes to `put` in order while it accepts them (returns true); stops at the
    /// first refusal, keeping that byte. Returns how many bytes went out.
    pub fn drain(&mut self, mut put: impl FnMut(u8) -> bool) -> usize {
        let mut sent = 0;
        while self.len > 0 && put(self.buf[self.head]) {
            self.head = (self.head + 1) % CAPACITY;
            self.len -= 1;
            sent += 1;
        }
        sent
    }
}

/// Writes "[console: N bytes dropped]\n" into `out`; returns its length.
fn format_dropped(out: &mut [u8; 48], dropped: u64) -> usize {
    let mut digits = [0u8; 20];
    let mut n = dropped;
    let mut d = 0;
    loop {
        digits[d] = b'0' + (n % 10) as u8;
        d += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        out[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(b"[console: ");
    for i in (0..d).rev() {
        put(&digits[i..=i]);
    }
    put(b" bytes dropped]\n");
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain_all(r: &mut ConsoleRing) -> alloc::vec::Vec<u8> {
        let mut out = alloc::vec::Vec::new();
        r.drain(|b| {
            out.push(b);
            true
        });
        out
    }

    #[test]
    fn lines_come_out_in_order_and_a_busy_uart_keeps_the_rest() {
        let mut r = ConsoleRing::new();
        r.push_line(b"one\n");
        r.push_line(b"two\n");
        let mut budget = 5;
        let mut out = alloc::vec::Vec::new();
        assert_eq!(
            r.drain(|b| {
                if budget == 0 {
                    return false;
                }
                budget -= 1;
                out.push(b);
                true
            }),
            5
        );
        assert_eq!(out, b"one\nt");
        assert_eq!(r.len(), 3);
        assert_eq!(drain_all(&mut r), b"wo\n");
        assert!(r.is_empty());
    }

    #[test]
    fn a_full_ring_drops_whole_lines_and_says_so_later() {
        let mut r = ConsoleRing::new();
        let line = [b'x'; 1000];
        for _ in 0..16 {
            r.push_line(&line);
        }
        r.push_line(&line); // 17th does not fit: dropped
        assert_eq!(r.len(), 16_000);
        assert_eq!(drain_all(&mut r).len(), 16_000);
        r.push_line(b"after\n");
        let out = drain_all(&mut r);
        assert_eq!(out, b"[console: 1000 bytes dropped]\nafter\n");
    }

    #[test]
    fn a_prefixed_line_at_the_start_of_a_row_goes_in_as_it_is() {
        let mut r = ConsoleRing::new();
        r.push_raw(b"linux says hi\r\n");
        r.push_prefixed(b"[rt cpu2] heartbeat\r\n");
        assert_eq!(
            drain_all(&mut r),
            b"linux says hi\r\n[rt cpu2] heartbeat\r\n"
        );
    }

    #[test]
    fn a_prefixed_line_mid_line_gets_its_own_row_and_the_line_is_written_again() {
        let mut r = ConsoleRing::new();
        r.push_raw(b"_");
        r.push_prefixed(b"[rt cpu2] heartbeat 32\r\n");
        r.push_raw(b"_end_5__\r\n");
        let out = drain_all(&mut r);
        assert_eq!(out, b"_\r\n[rt cpu2] heartbeat 32\r\n__end_5__\r\n");
        // Read as lines, Linux's line is whole on its last row.
        let text = alloc::string::String::from_utf8(out).unwrap();
        assert!(text.lines().any(|l| l.trim_end() == "__end_5__"));
    }

    #[test]
    fn a_prompt_comes_back_without_the_escape_sequences_it_sent() {
        let mut r = ConsoleRing::new();
        // busybox's prompt, with its cursor position query and a backspaced typo.
        r.push_raw(b"/ # \x1b[6necho x\x08y");
        r.push_prefixed(b"[hv cpu0] note\r\n");
        let out = drain_all(&mut r);
        assert_eq!(&out[out.len() - 10..], b"/ # echo y");
        assert_eq!(
            out.iter().filter(|&&b| b == 0x1b).count(),
            1,
            "the query is not sent again"
        );
    }

    #[test]
    fn a_line_too_long_to_repeat_is_only_broken() {
        let mut r = ConsoleRing::new();
        r.push_raw(&[b'x'; UNFINISHED_MAX + 1]);
        drain_all(&mut r);
        r.push_prefixed(b"[hv cpu0] note\r\n");
        assert_eq!(drain_all(&mut r), b"\r\n[hv cpu0] note\r\n");
        // A carriage return starts the row afresh, repeatable again.
        r.push_raw(b"\rab");
        drain_all(&mut r);
        r.push_prefixed(b"[hv cpu0] note\r\n");
        assert_eq!(drain_all(&mut r), b"\r\n[hv cpu0] note\r\nab");
    }

    #[test]
    fn wraps_around_the_end_of_the_buffer() {
        let mut r = ConsoleRing::new();
        let line = [b'a'; 10_000];
        r.push_line(&line);
        assert_eq!(drain_all(&mut r).len(), 10_000);
        let mut second = alloc::vec![b'b'; 9_000];
        second.push(b'\n');
        r.push_line(&second);
        assert_eq!(drain_all(&mut r), second);
    }
}
