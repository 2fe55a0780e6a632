//! Threaded interrupt lines: the one-shot protocol between a line's top half and the
//! thread that handles it.
//!
//! Owns one line's state (armed, or active until its handler finishes) and the completion
//! its handler thread sleeps on. The top half only acknowledges the interrupt, drops the
//! CPU interface's running priority and wakes the thread ([`ThreadedLine::top_half`]),
//! leaving the interrupt *active*: the GIC signals an active interrupt no more, so a
//! level-triggered device cannot storm the CPU while its handler waits to run, and no
//! distributor mask is needed. All device work runs in the thread at its own priority;
//! when the handler returns the interrupt is deactivated ([`ThreadedLine::handled`]), on
//! the vCPU that acknowledged it, since only that vCPU's CPU interface holds it. An edge
//! that arrives meanwhile makes the interrupt active and pending: it is delivered again
//! right after that deactivation, not lost. Never touches hardware: the arch layer
//! deactivates the interrupt (or asks the right vCPU to) when told to.

use crate::kernel::Kernel;
use crate::scheduling::thread::{CpuId, WaitStatus};
use crate::sync::completion::CompletionId;

/// What the interrupt path must do with the interrupt after [`ThreadedLine::top_half`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopHalf {
    /// Leave it active (priority dropped only): the woken handler's return deactivates it.
    Woken,
    /// The line was already active, waiting for its handler (which the GIC never lets
    /// happen: an active interrupt is not signalled again). Leave it active too: the
    /// pending handler pass covers the device, and deactivating here could let a level
    /// line storm before that pass runs.
    AlreadyActive,
}

/// What the handler thread's return asks of the arch layer ([`ThreadedLine::handled`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deactivate {
    /// Deactivate the interrupt now, on this vCPU (the one that acknowledged it).
    Here,
    /// The interrupt is active on vCPU `.0`'s interface: ask that vCPU, which then takes
    /// it with [`ThreadedLine::take_owed`].
    On(CpuId),
    /// Nothing is active (the line was armed already).
    Nothing,
}

/// Where a line stands in its one-shot cycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for the device.
    Armed,
    /// Acknowledged on `on`, left active there; the handler has not returned yet.
    Active { on: CpuId },
    /// The handler returned on another vCPU; still active on `on` until it deactivates.
    Owed { on: CpuId },
}

#[derive(Debug)]
pub struct ThreadedLine {
    intid: u32,
    wake: CompletionId,
    state: State,
    fired: u64,
    handled: u64,
}

impl ThreadedLine {
    /// A line, armed, with its handler's wake-up completion.
    pub fn new(kernel: &mut Kernel, intid: u32) -> ThreadedLine {
        ThreadedLine {
            intid,
            wake: kernel.completion_create(),
            state: State::Armed,
            fired: 0,
            handled: 0,
        }
    }

    pub fn intid(&self) -> u32 {
        self.intid
    }

    /// Whether the line can fire (not active, waiting for the device).
    pub fn armed(&self) -> bool {
        self.state == State::Armed
    }

    /// Times the top half woke the handler, and times the handler finished.
    pub fn counts(&self) -> (u64, u64) {
        (self.fired, self.handled)
    }

    /// The top half, on `cpu` with the kernel held: note where the interrupt is active and
    /// wake the handler thread.
    pub fn top_half(&mut self, kernel: &mut Kernel, cpu: CpuId) -> TopHalf {
        if !self.armed() {
            return TopHalf::AlreadyActive;
        }
        self.state = State::Active { on: cpu };
        self.fired += 1;
        kernel.complete(cpu, self.wake);
        TopHalf::Woken
    }

    /// The handler thread waits for the next interrupt (may block).
    pub fn wait(&self, kernel: &mut Kernel, cpu: CpuId) -> WaitStatus {
        kernel.wait_for_completion(cpu, self.wake)
    }

    /// The handler returned on `cpu` (with the kernel held, so it cannot migrate before it
    /// acts on the answer): where the interrupt must be deactivated to re-arm the line.
    pub fn handled(&mut self, cpu: CpuId) -> Deactivate {
        let State::Active { on } = self.state else {
            return Deactivate::Nothing;
        };
        self.handled += 1;
        if on == cpu {
            self.state = State::Armed;
            Deactivate::Here
        } else {
            self.state = State::Owed { on };
            Deactivate::On(on)
        }
    }

    /// On `cpu`, asked by [`Deactivate::On`]: true if this line's interrupt is owed a
    /// deactivation here (the line is armed from now on; the caller deactivates).
    pub fn take_owed(&mut self, cpu: CpuId) -> bool {
        if self.state != (State::Owed { on: cpu }) {
            return false;
        }
        self.state = State::Armed;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CpuMask, KernelConfig, ThreadSpec, ThreadState};

    /// A kernel with the handler thread (priority `prio`) running on CPU 0.
    fn setup(prio: u8) -> (Kernel, ThreadedLine, crate::ThreadId) {
        let mut k = Kernel::new(KernelConfig::new(1));
        let line = ThreadedLine::new(&mut k, 34);
        let handler = k.spawn(0, ThreadSpec::fifo(prio)).unwrap();
        assert_eq!(k.schedule(0), Some(handler));
        (k, line, handler)
    }

    #[test]
    fn top_half_leaves_the_interrupt_active_and_wakes_the_handler_once() {
        let (mut k, mut line, handler) = setup(60);
        assert_eq!(line.wait(&mut k, 0), WaitStatus::Blocked);
        assert_eq!(k.schedule(0), None);
        assert_eq!(line.top_half(&mut k, 0), TopHalf::Woken);
        assert!(!line.armed());
        assert_eq!(k.thread(handler).state(), ThreadState::Runnable);
        assert!(
            k.need_resched(0),
            "the woken handler must preempt the idle CPU"
        );
        // Firing again while active wakes nobody twice.
        assert_eq!(line.top_half(&mut k, 0), TopHalf::AlreadyActive);
        assert_eq!(line.counts(), (1, 0));
        assert_eq!(k.schedule(0), Some(handler));
        assert!(k.take_outcome(handler).is_some());
        assert_eq!(
            line.handled(0),
            Deactivate::Here,
            "the handler's return deactivates on the acknowledging CPU"
        );
        assert!(line.armed());
        assert_eq!(
            line.handled(0),
            Deactivate::Nothing,
            "an armed line is not deactivated twice"
        );
        assert_eq!(line.counts(), (1, 1));
        assert_eq!(line.top_half(&mut k, 0), TopHalf::Woken, "re-armed");
    }

    #[test]
    fn an_interrupt_before_the_handler_waits_is_not_lost() {
        let (mut k, mut line, _) = setup(60);
        assert_eq!(line.top_half(&mut k, 0), TopHalf::Woken);
        assert!(line.wait(&mut k, 0).is_success());
        assert_eq!(line.handled(0), Deactivate::Here);
    }

    #[test]
    fn a_handler_done_on_another_cpu_owes_the_deactivation_to_the_acknowledging_one() {
        let mut k = Kernel::new(KernelConfig::new(2));
        let mut line = ThreadedLine::new(&mut k, 34);
        let handler = k
            .spawn(1, ThreadSpec::fifo(60).on(CpuMask::single(1)))
            .unwrap();
        assert_eq!(k.schedule(1), Some(handler));
        assert_eq!(line.wait(&mut k, 1), WaitStatus::Blocked);
        // Acknowledged on CPU 0, handled on CPU 1.
        assert_eq!(line.top_half(&mut k, 0), TopHalf::Woken);
        assert_eq!(k.schedule(1), Some(handler));
        assert_eq!(line.handled(1), Deactivate::On(0));
        assert!(!line.armed(), "still active on CPU 0");
        assert_eq!(line.counts(), (1, 1));
        assert_eq!(
            line.top_half(&mut k, 0),
            TopHalf::AlreadyActive,
            "an owed line is still active"
        );
        assert!(!line.take_owed(1), "CPU 1 does not hold it");
        assert!(line.take_owed(0));
        assert!(line.armed());
        assert!(!line.take_owed(0), "owed once");
        assert_eq!(line.top_half(&mut k, 1), TopHalf::Woken);
        assert_eq!(line.handled(1), Deactivate::Here);
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
