//! Sharing the one physical console's input between partitions: which partition gets the
//! bytes typed on it ([`InputRouter`]). (Output needs no model: hv's and the RT
//! partition's lines are prefixed, Linux's bytes pass through, and hv's `arch::console`
//! starts a prefixed line on a fresh line when Linux left the cursor mid-line.)
//!
//! Input: every typed byte goes to the partition with input focus, initially the first
//! partition that takes input. Ctrl-] starts a command for hv: `n` moves the focus to
//! the next partition that takes input, `?` or `h` asks for a help/status line, `]` or a
//! second Ctrl-] sends a literal Ctrl-] to the focused partition; any other byte after
//! Ctrl-] is dropped and reported as unknown. (Command letters are accepted in either
//! case, so Caps Lock does not get in the way.)
//!
//! This module only decides; it never prints, touches a UART or a partition, and never
//! allocates or panics on a byte. Portable and host-tested.

#![forbid(unsafe_code)]

/// Ctrl-]: the byte that starts a command. Not Ctrl-], which QEMU's `-serial mon:stdio`
/// (and screen, and minicom) already take for themselves.
pub const ESCAPE: u8 = 0x1d;

/// At most this many partitions (a bit each in [`InputRouter`]'s set).
pub const MAX_PARTITIONS: usize = 64;

/// One line of help for the console's user.
pub const HELP: &str = "console: Ctrl-] n = input to next partition, Ctrl-] ] = send Ctrl-], \
                        Ctrl-] ? = this help";

/// A command for hv, recognised after [`ESCAPE`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cmd {
    /// `n`: input now goes to `to` (`None`: no partition takes input).
    FocusMoved { to: Option<usize> },
    /// `?` or `h`: print [`HELP`] and the status (who takes input, who has focus).
    Help,
    /// Any other byte after Ctrl-]: dropped.
    Unknown(u8),
}

/// What to do with one typed byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Routed {
    /// Queue `byte` as input of `partition`.
    Deliver {
        partition: usize,
        byte: u8,
    },
    Command(Cmd),
    /// Nothing to do: a Ctrl-] waiting for its command byte, or no partition takes input.
    Nothing,
}

/// More partitions than [`MAX_PARTITIONS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TooManyPartitions(pub usize);

/// Routes typed bytes to partitions. See the module notes.
#[derive(Clone, Debug)]
pub struct InputRouter {
    /// Bit `i`: partition `i` takes input now.
    accepting: u64,
    count: usize,
    focus: Option<usize>,
    /// A Ctrl-] was typed and its command byte has not come yet.
    escaped: bool,
}

impl InputRouter {
    /// `accepts_input[i]`: whether partition `i` takes console input.
    pub fn new(accepts_input: &[bool]) -> Result<Self, TooManyPartitions> {
        if accepts_input.len() > MAX_PARTITIONS {
            return Err(TooManyPartitions(accepts_input.len()));
        }
        let accepting = accepts_input
            .iter()
            .enumerate()
            .filter(|(_, &accepts)| accepts)
            .fold(0u64, |set, (i, _)| set | 1 << i);
        let mut router = Self {
            accepting,
            count: accepts_input.len(),
            focus: None,
            escaped: false,
        };
        router.focus = router.next_after(None);
        Ok(router)
    }

    /// The partition that gets typed bytes now.
    pub fn focus(&self) -> Option<usize> {
        self.focus
    }

    /// The partitions that take input, in order.
    pub fn accepting(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.count).filter(|&i| self.accepts(i))
    }

    /// Whether a Ctrl-] is waiting for its command byte.
    #[cfg(test)]
    pub fn escape_pending(&self) -> bool {
        self.escaped
    }

    /// Decides what one byte typed on the physical console means.
    pub fn route(&mut self, byte: u8) -> Routed {
        if !self.escaped {
            if byte == ESCAPE {
                self.escaped = true;
                return Routed::Nothing;
            }
            return self.deliver(byte);
        }
        self.escaped = false;
        match byte.to_ascii_lowercase() {
            b'n' => {
                self.focus = self.next_after(self.focus);
                Routed::Command(Cmd::FocusMoved { to: self.focus })
            }
            b'?' | b'h' => Routed::Command(Cmd::Help),
            b']' | ESCAPE => self.deliver(ESCAPE),
            _ => Routed::Command(Cmd::Unknown(byte)),
        }
    }

    /// Starts or stops routing input to `partition` (say, when it stops or restarts).
    /// When the focused partition stops taking input, focus moves to the next one that
    /// does; when none had focus, a partition that starts taking input gets it. Returns
    /// the focus afterwards. Unknown partitions are ignored.
    pub fn set_accepts(&mut self, partition: usize, accepts: bool) -> Option<usize> {
        if partition >= self.count {
            return self.focus;
        }
        if accepts {
            self.accepting |= 1 << partition;
        } else {
            self.accepting &= !(1 << partition);
        }
        if self.focus.is_none_or(|focus| !self.accepts(focus)) {
            self.focus = self.next_after(self.focus);
        }
        self.focus
    }

    fn deliver(&self, byte: u8) -> Routed {
        match self.focus {
            Some(partition) => Routed::Deliver { partition, byte },
            None => Routed::Nothing,
        }
    }

    fn accepts(&self, partition: usize) -> bool {
        self.accepting & (1 << partition) != 0
    }

    /// The first partition after `current` (wrapping; from the start for `None`) that
    /// takes input; `current` itself if it is the only one.
    fn next_after(&self, current: Option<usize>) -> Option<usize> {
        let start = current.map_or(0, |c| c + 1);
        (0..self.count)
            .map(|step| (start + step) % self.count)
            .find(|&i| self.accepts(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    const LINUX: usize = 1;

    /// hv's usual setup: partition 0 is the RT kernel (no input), 1 is Linux.
    fn rt_and_linux() -> InputRouter {
        InputRouter::new(&[false, true]).unwrap()
    }

    fn route_all(router: &mut InputRouter, bytes: &[u8]) -> Vec<Routed> {
        bytes.iter().map(|&b| router.route(b)).collect()
    }

    #[test]
    fn plain_bytes_go_to_the_first_partition_that_takes_input() {
        let mut router = rt_and_linux();
        assert_eq!(router.focus(), Some(LINUX));
        let routed = route_all(&mut router, b"ls\r\x03\x7f");
        let expected: Vec<_> = b"ls\r\x03\x7f"
            .iter()
            .map(|&byte| Routed::Deliver {
                partition: LINUX,
                byte,
            })
            .collect();
        assert_eq!(routed, expected);
    }

    #[test]
    fn escape_n_cycles_through_the_partitions_that_take_input() {
        let mut router = InputRouter::new(&[true, false, true, true]).unwrap();
        assert_eq!(router.focus(), Some(0));
        let moves = route_all(&mut router, b"\x1dn\x1dn\x1dN\x1dn");
        let focus = |to| Routed::Command(Cmd::FocusMoved { to: Some(to) });
        let nothing = Routed::Nothing;
        assert_eq!(
            moves,
            [
                nothing,
                focus(2),
                nothing,
                focus(3),
                nothing,
                focus(0),
                nothing,
                focus(2)
            ]
        );
        assert_eq!(
            router.route(b'x'),
            Routed::Deliver {
                partition: 2,
                byte: b'x'
            }
        );
    }

    #[test]
    fn next_with_a_single_input_partition_keeps_it() {
        let mut router = rt_and_linux();
        assert_eq!(router.route(ESCAPE), Routed::Nothing);
        assert!(router.escape_pending());
        let moved = router.route(b'n');
        assert_eq!(moved, Routed::Command(Cmd::FocusMoved { to: Some(LINUX) }));
        assert!(!router.escape_pending());
    }

    #[test]
    fn help_commands() {
        let mut router = rt_and_linux();
        for key in [b'?', b'h', b'H'] {
            assert_eq!(
                route_all(&mut router, &[ESCAPE, key])[1],
                Routed::Command(Cmd::Help)
            );
        }
        assert_eq!(router.accepting().collect::<Vec<_>>(), [LINUX]);
        assert!(HELP.contains("Ctrl-] n"));
    }

    #[test]
    fn literal_escape_by_bracket_or_a_second_escape() {
        let mut router = rt_and_linux();
        let literal = Routed::Deliver {
            partition: LINUX,
            byte: ESCAPE,
        };
        assert_eq!(route_all(&mut router, b"\x1d]"), [Routed::Nothing, literal]);
        assert_eq!(
            route_all(&mut router, b"\x1d\x1d"),
            [Routed::Nothing, literal]
        );
        // The escape is over: the next byte is plain input again.
        let plain = Routed::Deliver {
            partition: LINUX,
            byte: b'a',
        };
        assert_eq!(router.route(b'a'), plain);
    }

    #[test]
    fn unknown_commands_are_dropped_and_reported() {
        let mut router = rt_and_linux();
        for byte in [b'x', b'\r', 0x00, 0xff, b'1'] {
            let routed = route_all(&mut router, &[ESCAPE, byte]);
            assert_eq!(
                routed,
                [Routed::Nothing, Routed::Command(Cmd::Unknown(byte))]
            );
        }
        assert_eq!(router.focus(), Some(LINUX), "focus unchanged");
        assert_eq!(
            router.route(b'y'),
            Routed::Deliver {
                partition: LINUX,
                byte: b'y'
            }
        );
    }

    #[test]
    fn without_input_partitions_nothing_is_delivered() {
        let mut router = InputRouter::new(&[false, false]).unwrap();
        assert_eq!(router.focus(), None);
        assert_eq!(router.route(b'x'), Routed::Nothing);
        let literal = route_all(&mut router, b"\x1d]");
        assert_eq!(literal, [Routed::Nothing, Routed::Nothing]);
        let next = route_all(&mut router, b"\x1dn");
        assert_eq!(next[1], Routed::Command(Cmd::FocusMoved { to: None }));
        assert_eq!(
            route_all(&mut router, b"\x1d?")[1],
            Routed::Command(Cmd::Help)
        );
        assert_eq!(InputRouter::new(&[]).unwrap().route(b'x'), Routed::Nothing);
    }

    #[test]
    fn too_many_partitions_is_an_error() {
        let flags = [true; MAX_PARTITIONS + 1];
        assert_eq!(
            InputRouter::new(&flags).unwrap_err(),
            TooManyPartitions(MAX_PARTITIONS + 1)
        );
        let mut router = InputRouter::new(&flags[..MAX_PARTITIONS]).unwrap();
        for _ in 0..MAX_PARTITIONS - 1 {
            route_all(&mut router, b"\x1dn");
        }
        assert_eq!(router.focus(), Some(MAX_PARTITIONS - 1));
        route_all(&mut router, b"\x1dn");
        assert_eq!(router.focus(), Some(0), "wraps around");
    }

    #[test]
    fn focus_follows_partitions_that_stop_and_start_taking_input() {
        let mut router = InputRouter::new(&[false, true, true]).unwrap();
        assert_eq!(router.focus(), Some(1));
        // An unfocused partition stopping leaves the focus alone.
        assert_eq!(router.set_accepts(2, false), Some(1));
        // The focused one stopping leaves nobody.
        assert_eq!(router.set_accepts(1, false), None);
        assert_eq!(router.route(b'x'), Routed::Nothing);
        // The first to start again gets the focus.
        assert_eq!(router.set_accepts(2, true), Some(2));
        assert_eq!(router.set_accepts(1, true), Some(2), "focus does not jump");
        assert_eq!(
            router.set_accepts(2, false),
            Some(1),
            "moves on when it stops"
        );
        assert_eq!(
            router.set_accepts(7, true),
            Some(1),
            "unknown partition ignored"
        );
        assert_eq!(router.accepting().collect::<Vec<_>>(), [1]);
    }
}
