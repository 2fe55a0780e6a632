//! How long a wait on a guest's console may last.
//!
//! A wait ends on an event (a line, a prompt); the deadline only catches a guest that
//! hangs. A busy host makes an emulated guest slower, not wrong, so the deadline is on
//! *silence*: a guest that prints nothing for `quiet` hangs, and every new output extends
//! the wait. A guest that keeps printing but never shows what is waited for is caught by
//! a cap of [`CAP_FACTOR`] times `quiet` in all. Nothing here ever decides that a run
//! passed: it only decides when to stop waiting.

use std::time::{Duration, Instant};

/// The whole wait may last this many times the silence allowed.
pub const CAP_FACTOR: u32 = 10;

/// The deadline of one wait.
#[derive(Clone, Copy, Debug)]
pub struct Patience {
    quiet: Duration,
    started: Instant,
    last_output: Instant,
}

impl Patience {
    /// A wait starting now that gives up after `quiet` without output.
    pub fn new(quiet: Duration) -> Self {
        Self::starting_at(quiet, Instant::now())
    }

    fn starting_at(quiet: Duration, now: Instant) -> Self {
        Self {
            quiet,
            started: now,
            last_output: now,
        }
    }

    /// The guest printed something.
    pub fn output(&mut self) {
        self.output_at(Instant::now());
    }

    fn output_at(&mut self, now: Instant) {
        self.last_output = now;
    }

    /// How long to block for the next output before looking at the deadline again.
    pub fn left(&self) -> Duration {
        self.left_at(Instant::now())
    }

    fn left_at(&self, now: Instant) -> Duration {
        let silence_ends = self.last_output + self.quiet;
        let cap = self.started + self.quiet * CAP_FACTOR;
        silence_ends.min(cap).saturating_duration_since(now)
    }

    /// The wait is over: `quiet` without output, or the cap reached.
    pub fn expired(&self) -> bool {
        self.left().is_zero()
    }

    /// Why it expired, for the error message.
    pub fn why(&self) -> String {
        self.why_at(Instant::now())
    }

    fn why_at(&self, now: Instant) -> String {
        if now.saturating_duration_since(self.started) >= self.quiet * CAP_FACTOR {
            format!(
                "still not there after {} s of output",
                (self.quiet * CAP_FACTOR).as_secs()
            )
        } else {
            format!("no output for {} s", self.quiet.as_secs())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn silence_ends_the_wait() {
        let t0 = Instant::now();
        let p = Patience::starting_at(10 * S, t0);
        assert_eq!(p.left_at(t0 + 4 * S), 6 * S);
        assert!(p.left_at(t0 + 10 * S).is_zero());
        assert!(p.why_at(t0 + 10 * S).contains("no output for 10 s"));
    }

    #[test]
    fn output_extends_the_wait_up_to_the_cap() {
        let t0 = Instant::now();
        let mut p = Patience::starting_at(10 * S, t0);
        for i in 1..=95 {
            p.output_at(t0 + i * S);
            assert!(!p.left_at(t0 + i * S).is_zero(), "at {i} s");
        }
        // Printing every second, the wait still ends at the cap.
        assert_eq!(p.left_at(t0 + 95 * S), 5 * S);
        p.output_at(t0 + 100 * S);
        assert!(p.left_at(t0 + 100 * S).is_zero());
        assert!(p.why_at(t0 + 100 * S).contains("after 100 s"));
    }
}
