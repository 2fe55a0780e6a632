//! Threaded interrupt lines: the one-shot protocol between a line's top half and the
//! thread that handles it.
//!
//! Owns one line's state (armed, or masked until its handler finishes) and the completion
//! its handler thread sleeps on. The top half only acknowledges, masks the line and wakes
//! the thread ([`ThreadedLine::top_half`]); all device work runs in the thread at its own
//! priority, and the line is unmasked only when the handler returns
//! ([`ThreadedLine::handled`]), so a level-triggered device cannot storm the CPU while
//! its handler waits to run. Never touches hardware: the arch layer masks and unmasks the
//! line when told to.

use crate::completion::CompletionId;
use crate::kernel::Kernel;
use crate::thread::{CpuId, WaitStatus};

/// What the top half must do with the line after [`ThreadedLine::top_half`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopHalf {
    /// Mask the line: its handler thread was woken and will unmask it.
    MaskAndWoken,
    /// The line fired while already masked (a race with the mask): nothing to do, the
    /// handler's pass covers it.
    AlreadyMasked,
}

#[derive(Debug)]
pub struct ThreadedLine {
    intid: u32,
    wake: CompletionId,
    armed: bool,
    fired: u64,
    handled: u64,
}

impl ThreadedLine {
    /// A line, armed, with its handler's wake-up completion.
    pub fn new(kernel: &mut Kernel, intid: u32) -> ThreadedLine {
        ThreadedLine {
            intid,
            wake: kernel.completion_create(),
            armed: true,
            fired: 0,
            handled: 0,
        }
    }

    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// Whether the line is unmasked (waiting for the device).
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Times the top half woke the handler, and times the handler finished.
    pub fn counts(&self) -> (u64, u64) {
        (self.fired, self.handled)
    }

    /// The top half, on `cpu` with the kernel held: disarm and wake the handler thread.
    pub fn top_half(&mut self, kernel: &mut Kernel, cpu: CpuId) -> TopHalf {
        if !self.armed {
            return TopHalf::AlreadyMasked;
        }
        self.armed = false;
        self.fired += 1;
        kernel.complete(cpu, self.wake);
        TopHalf::MaskAndWoken
    }

    /// The handler thread waits for the next interrupt (may block).
    pub fn wait(&self, kernel: &mut Kernel, cpu: CpuId) -> WaitStatus {
        kernel.wait_for_completion(cpu, self.wake)
    }

    /// The handler returned: true if the line must be unmasked now (one-shot re-arm).
    pub fn handled(&mut self) -> bool {
        if self.armed {
            return false;
        }
        self.armed = true;
        self.handled += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{KernelConfig, ThreadSpec, ThreadState};

    /// A kernel with the handler thread (priority `prio`) running on CPU 0.
    fn setup(prio: u8) -> (Kernel, ThreadedLine, crate::ThreadId) {
        let mut k = Kernel::new(KernelConfig::new(1));
        let line = ThreadedLine::new(&mut k, 34);
        let handler = k.spawn(0, ThreadSpec::fifo(prio)).unwrap();
        assert_eq!(k.schedule(0), Some(handler));
        (k, line, handler)
    }

    #[test]
    fn top_half_masks_and_wakes_the_handler_once() {
        let (mut k, mut line, handler) = setup(60);
        assert_eq!(line.wait(&mut k, 0), WaitStatus::Blocked);
        assert_eq!(k.schedule(0), None);
        assert_eq!(line.top_half(&mut k, 0), TopHalf::MaskAndWoken);
        assert!(!line.armed());
        assert_eq!(k.thread(handler).state(), ThreadState::Runnable);
        assert!(
            k.need_resched(0),
            "the woken handler must preempt the idle CPU"
        );
        // Firing again while masked wakes nobody twice.
        assert_eq!(line.top_half(&mut k, 0), TopHalf::AlreadyMasked);
        assert_eq!(line.counts(), (1, 0));
        assert_eq!(k.schedule(0), Some(handler));
        assert!(k.take_outcome(handler).is_some());
        assert!(line.handled(), "the handler's return unmasks the line");
        assert!(line.armed());
        assert!(!line.handled(), "an armed line is not unmasked twice");
        assert_eq!(line.counts(), (1, 1));
    }

    #[test]
    fn an_interrupt_before_the_handler_waits_is_not_lost() {
        let (mut k, mut line, _) = setup(60);
        assert_eq!(line.top_half(&mut k, 0), TopHalf::MaskAndWoken);
        assert!(line.wait(&mut k, 0).is_success());
        assert!(line.handled());
    }

    /// The handler (priority `handler`) waits; a thread at 50 runs; the line fires.
    /// Returns whether the CPU must reschedule, and the handler's state.
    fn fire_over_a_busy_thread(handler: u8) -> (bool, ThreadState) {
        let (mut k, mut line, tid) = setup(handler);
        assert_eq!(line.wait(&mut k, 0), WaitStatus::Blocked);
        let busy = k.spawn(0, ThreadSpec::fifo(50)).unwrap();
        assert_eq!(k.schedule(0), Some(busy));
        line.top_half(&mut k, 0);
        (k.need_resched(0), k.thread(tid).state())
    }

    #[test]
    fn handler_runs_at_its_own_priority() {
        assert_eq!(
            fire_over_a_busy_thread(70),
            (true, ThreadState::Runnable),
            "a more urgent handler preempts"
        );
        assert_eq!(
            fire_over_a_busy_thread(20),
            (false, ThreadState::Runnable),
            "a less urgent handler waits its turn"
        );
    }
}
