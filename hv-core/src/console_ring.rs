//! The console's output buffer: a fixed ring of bytes between the CPUs that print and
//! whoever drains it into the UART.
//!
//! Printing never waits for the UART: a line is copied into the ring (or, when the ring
//! is full, dropped and counted), and draining writes only what the UART takes without
//! waiting. So an RT CPU that prints spends time proportional to its own line, never to
//! another CPU's output or to the baud rate. Portable and host-tested.

/// Ring capacity in bytes.
pub const CAPACITY: usize = 16 * 1024;

pub struct ConsoleRing {
    buf: [u8; CAPACITY],
    /// Index of the oldest byte.
    head: usize,
    len: usize,
    /// Bytes of lines that did not fit, not yet reported.
    dropped: u64,
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
        if self.dropped > 0 {
            let mut note = [0u8; 48];
            let n = format_dropped(&mut note, self.dropped);
            if self.room() >= n + line.len() {
                self.append(&note[..n]);
                self.dropped = 0;
            }
        }
        if self.room() >= line.len() {
            self.append(line);
        } else {
            self.dropped += line.len() as u64;
        }
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
