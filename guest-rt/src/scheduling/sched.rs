//! The scheduler: per-CPU run queues with O(1) pick, FIFO and round-robin at
//! equal priority, affinity, push/pull migration, wakeup preemption across
//! CPUs, absolute-time sleeps and priority changes.
//!
//! Owns the run queues and the rules that choose who runs where. It never
//! switches contexts (the arch layer does, from [`Kernel::schedule`]'s answer)
//! and never blocks: run-queue manipulation is a raw section (see
//! [`crate::sync::rawlock`]).
//!
//! Placement rule (global fixed priority with affinity): a thread that becomes
//! runnable goes to the allowed CPU whose best thread (running or queued) is
//! the least urgent; if it beats that, the CPU is asked to reschedule and, if
//! it is not the calling CPU, an [`KernelEvent::Ipi`] is recorded. When a CPU
//! reschedules it first pulls the most urgent queued thread of other CPUs that
//! may run here and beats its own, then pushes queued threads it cannot run to
//! CPUs where they would run. Together these keep the invariant checked by
//! [`crate::invariants`]: once no CPU has a reschedule pending, no queued
//! thread is more urgent than the thread running on any CPU it may use.
//!
//! Queue positions: a preempted thread goes back to the head of its level (it
//! keeps its turn, as SCHED_FIFO requires); woken, spawned and migrated threads
//! go to the tail; a yield or an expired round-robin slice puts the current
//! thread at the tail. A round-robin thread starts a fresh slice whenever it is
//! switched in (a simplification: Linux keeps the remainder after preemption).
//! Push and pull visit every CPU but only its non-empty levels that could move
//! (bitmap walks, no allocation): fine for the handful of vCPUs of the RT
//! partition, to be replaced by per-priority CPU masks if that grows.

use alloc::collections::VecDeque;
use alloc::vec::Vec;

use crate::kernel::{Kernel, ThreadError};
use crate::scheduling::prio_bitmap::PrioBitmap;
use crate::scheduling::thread::{
    BlockedOn, CpuId, CpuMask, Policy, Priority, ThreadId, ThreadState, WaitOutcome, WaitStatus,
};
use crate::sync::rtmutex::MutexId;
use crate::time::timer::{Nanos, TimerAction, TimerKey};

/// Something the arch layer (or simulator) must deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelEvent {
    /// CPU `to` must call [`Kernel::schedule`]: a thread woken or made
    /// runnable by CPU `from` should preempt it.
    Ipi { from: CpuId, to: CpuId },
}

/// One CPU's run queue: a FIFO per priority level and a bitmap of non-empty
/// levels, so picking the most urgent thread is a leading-zeros count. The
/// running thread is not in the queue.
#[derive(Debug)]
pub struct RunQueue {
    bitmap: PrioBitmap,
    queues: Vec<VecDeque<ThreadId>>,
    pub(crate) current: Option<ThreadId>,
    pub(crate) need_resched: bool,
    /// The next reschedule should put the current thread behind its
    /// equal-priority peers (slice expiry or yield).
    pub(crate) rotate: bool,
    /// End of the current round-robin slice.
    pub(crate) slice_end: Option<Nanos>,
}

impl Default for RunQueue {
    fn default() -> Self {
        RunQueue {
            bitmap: PrioBitmap::default(),
            queues: (0..Priority::LEVELS).map(|_| VecDeque::new()).collect(),
            current: None,
            need_resched: false,
            rotate: false,
            slice_end: None,
        }
    }
}

impl RunQueue {
    pub(crate) fn enqueue(&mut self, tid: ThreadId, prio: Priority, front: bool) {
        let q = &mut self.queues[prio.index()];
        if front {
            q.push_front(tid);
        } else {
            q.push_back(tid);
        }
        self.bitmap.set(prio);
    }

    pub(crate) fn remove(&mut self, tid: ThreadId, prio: Priority) -> bool {
        let q = &mut self.queues[prio.index()];
        let Some(pos) = q.iter().position(|&t| t == tid) else {
            return false;
        };
        self.remove_at(prio, pos);
        true
    }

    /// Removes the `pos`-th thread of level `prio` (which holds one).
    fn remove_at(&mut self, prio: Priority, pos: usize) -> Option<ThreadId> {
        let q = &mut self.queues[prio.index()];
        let tid = q.remove(pos);
        if q.is_empty() {
            self.bitmap.clear(prio);
        }
        tid
    }

    /// Most urgent queued priority.
    pub fn top(&self) -> Option<Priority> {
        self.bitmap.highest()
    }

    pub(crate) fn pop_top(&mut self) -> Option<ThreadId> {
        let prio = self.top()?;
        self.remove_at(prio, 0)
    }

    pub(crate) fn has_level(&self, prio: Priority) -> bool {
        self.bitmap.contains(prio)
    }

    /// Queued threads, most urgent first, FIFO within a level.
    pub fn queued(&self) -> impl Iterator<Item = (Priority, ThreadId)> + '_ {
        self.queued_above(None)
    }

    /// Queued threads strictly more urgent than `floor`, in [`RunQueue::queued`] order.
    /// Visits only non-empty levels.
    fn queued_above(
        &self,
        floor: Option<Priority>,
    ) -> impl Iterator<Item = (Priority, ThreadId)> + '_ {
        self.bitmap
            .above(floor)
            .iter_desc()
            .flat_map(move |prio| self.queues[prio.index()].iter().map(move |&t| (prio, t)))
    }

    pub fn current(&self) -> Option<ThreadId> {
        self.current
    }

    pub fn need_resched(&self) -> bool {
        self.need_resched
    }

    /// Bitmap bit set exactly for the non-empty levels.
    pub fn bitmap_consistent(&self) -> bool {
        (0..Priority::LEVELS as u8).all(|l| {
            let prio = Priority::new(l);
            self.bitmap.contains(prio) != self.queues[prio.index()].is_empty()
        })
    }
}

impl Kernel {
    pub fn run_queue(&self, cpu: CpuId) -> &RunQueue {
        &self.rqs[cpu]
    }

    pub fn current(&self, cpu: CpuId) -> Option<ThreadId> {
        self.rqs[cpu].current
    }

    pub fn need_resched(&self, cpu: CpuId) -> bool {
        self.rqs[cpu].need_resched
    }

    /// Asks `cpu` to reschedule; crossing CPUs costs an IPI.
    pub(crate) fn resched(&mut self, cpu: CpuId, origin: CpuId) {
        self.rqs[cpu].need_resched = true;
        if cpu != origin {
            self.ipis.insert(origin, cpu);
        }
    }

    /// Priority of the thread actually running on `cpu` (None when idle or
    /// when the current thread has just blocked).
    pub(crate) fn running_priority(&self, cpu: CpuId) -> Option<Priority> {
        self.rqs[cpu]
            .current
            .filter(|&t| self.thread(t).state == ThreadState::Running)
            .map(|t| self.thread(t).effective)
    }

    /// The priority a newcomer must beat to run on `cpu` soon.
    fn cpu_top(&self, cpu: CpuId) -> Option<Priority> {
        self.running_priority(cpu).max(self.rqs[cpu].top())
    }

    fn enqueue_on(&mut self, cpu: CpuId, tid: ThreadId, front: bool) {
        let prio = self.thread(tid).effective;
        self.rqs[cpu].enqueue(tid, prio, front);
        let th = self.th(tid);
        th.state = ThreadState::Runnable;
        th.cpu = cpu;
    }

    /// Queues a runnable thread on the best allowed CPU (see module docs).
    pub(crate) fn place(&mut self, tid: ThreadId, origin: CpuId, front: bool) {
        let th = self.thread(tid);
        let (prio, affinity, last) = (th.effective, th.affinity, th.cpu);
        let best = (0..self.config.cpus)
            .filter(|&c| affinity.contains(c))
            .min_by_key(|&c| (self.cpu_top(c), c != last, c))
            .expect("affinity is never empty");
        if self.cpu_top(best) < Some(prio) {
            self.enqueue_on(best, tid, front);
            self.resched(best, origin);
        } else {
            // Nowhere to run now: wait at home; a CPU that frees up pulls it.
            let home = if affinity.contains(last) { last } else { best };
            self.enqueue_on(home, tid, front);
        }
    }

    /// Makes a woken thread runnable. A thread that blocked but has not been
    /// switched out yet simply keeps its CPU.
    pub(crate) fn make_runnable(&mut self, tid: ThreadId, origin: CpuId) {
        let cpu = self.thread(tid).cpu;
        if self.rqs[cpu].current == Some(tid) {
            self.th(tid).state = ThreadState::Running;
            return;
        }
        self.place(tid, origin, false);
    }

    /// Picks the thread `cpu` runs next and makes it current. The previous
    /// current thread, if still runnable, goes back to the head of its level
    /// (a preempted FIFO thread keeps its place) or to the tail when rotating.
    /// Returns the new current thread (None = idle).
    pub fn schedule(&mut self, cpu: CpuId) -> Option<ThreadId> {
        let rq = &mut self.rqs[cpu];
        rq.need_resched = false;
        let rotate = core::mem::take(&mut rq.rotate);
        let prev = rq.current.take();
        if let Some(p) = prev {
            if self.thread(p).state == ThreadState::Running {
                if self.thread(p).affinity.contains(cpu) {
                    self.enqueue_on(cpu, p, !rotate);
                } else {
                    self.place(p, cpu, false);
                }
            }
        }
        self.pull(cpu);
        let next = self.rqs[cpu].pop_top();
        if let Some(n) = next {
            let th = self.th(n);
            th.state = ThreadState::Running;
            th.cpu = cpu;
        }
        let slice_end = match next {
            Some(n) if self.thread(n).policy == Policy::RoundRobin => {
                if next != prev || rotate || self.rqs[cpu].slice_end.is_none() {
                    Some(self.now.saturating_add(self.config.rr_slice))
                } else {
                    self.rqs[cpu].slice_end
                }
            }
            _ => None,
        };
        let rq = &mut self.rqs[cpu];
        rq.current = next;
        rq.slice_end = slice_end;
        self.push_queued(cpu);
        next
    }

    /// Takes the most urgent thread queued elsewhere that may run on `cpu`
    /// and beats everything queued here.
    fn pull(&mut self, cpu: CpuId) {
        let local = self.rqs[cpu].top();
        let mut best: Option<(Priority, CpuId, ThreadId)> = None;
        for c in (0..self.config.cpus).filter(|&c| c != cpu) {
            // Only threads beating both what runs here and the best found so far can win.
            let floor = local.max(best.map(|(b, _, _)| b));
            let candidate = self.rqs[c]
                .queued_above(floor)
                .find(|&(_, t)| self.thread(t).affinity.contains(cpu));
            if let Some((prio, t)) = candidate {
                // Leave alone a thread its own CPU is about to switch to: taking
                // it would only add a migration.
                let claimed = self.running_priority(c) < Some(prio)
                    && self.rqs[c].top() == Some(prio)
                    && self.rqs[c].need_resched;
                if !claimed && Some(prio) > local && best.is_none_or(|(b, _, _)| prio > b) {
                    best = Some((prio, c, t));
                }
            }
        }
        if let Some((prio, c, t)) = best {
            self.rqs[c].remove(t, prio);
            self.enqueue_on(cpu, t, false);
        }
    }

    /// Moves threads queued on `cpu` to allowed CPUs where they would run now.
    /// Threads go most urgent first, FIFO within a level. Moving a thread only raises the
    /// target's best priority, so a level no other CPU would take now is never revisited.
    fn push_queued(&mut self, cpu: CpuId) {
        // Only levels beating some other CPU's best can move at all.
        let Some(floor) = (0..self.config.cpus)
            .filter(|&c| c != cpu)
            .map(|c| self.cpu_top(c))
            .min()
        else {
            return;
        };
        let levels = self.rqs[cpu].bitmap.above(floor);
        for prio in levels.iter_desc() {
            let mut pos = 0;
            while pos < self.rqs[cpu].queues[prio.index()].len() {
                let t = self.rqs[cpu].queues[prio.index()][pos];
                let affinity = self.thread(t).affinity;
                let target = (0..self.config.cpus)
                    .filter(|&c| c != cpu && affinity.contains(c))
                    .filter(|&c| self.cpu_top(c) < Some(prio))
                    .min_by_key(|&c| (self.cpu_top(c), c));
                match target {
                    Some(c) => {
                        self.rqs[cpu].remove_at(prio, pos);
                        self.enqueue_on(c, t, false);
                        self.resched(c, cpu);
                    }
                    None => pos += 1,
                }
            }
        }
    }

    /// Sets a thread's effective priority and repositions it wherever it is
    /// queued. Returns the rt-mutex it is blocked on, whose owner's priority
    /// may now have to change too (the caller continues the chain walk).
    pub(crate) fn change_effective(
        &mut self,
        tid: ThreadId,
        new: Priority,
        origin: CpuId,
    ) -> Option<MutexId> {
        let old = self.thread(tid).effective;
        if old == new {
            return None;
        }
        match self.thread(tid).state {
            ThreadState::Running => {
                self.th(tid).effective = new;
                if new < old {
                    // Someone queued may now beat it, here or via a pull.
                    let cpu = self.thread(tid).cpu;
                    self.resched(cpu, origin);
                }
                None
            }
            ThreadState::Runnable => {
                let cpu = self.thread(tid).cpu;
                self.rqs[cpu].remove(tid, old);
                self.th(tid).effective = new;
                // De-boosted threads keep their turn at the new level.
                self.place(tid, origin, new < old);
                None
            }
            ThreadState::Blocked(on) => {
                self.th(tid).effective = new;
                let seq = self.next_seq();
                match on {
                    BlockedOn::Mutex(m) => {
                        self.mutexes[m.index()].waiters.requeue(tid, new, seq);
                        return Some(m);
                    }
                    BlockedOn::Completion(c) => {
                        self.completions[c.index()].waiters.requeue(tid, new, seq);
                    }
                    BlockedOn::Semaphore(s) => {
                        self.semaphores[s.index()].waiters.requeue(tid, new, seq);
                    }
                    BlockedOn::RwSem(r) => {
                        self.rwsems[r.index()].waiters.requeue(tid, new, seq);
                    }
                }
                None
            }
            ThreadState::Sleeping { .. } | ThreadState::Exited => {
                self.th(tid).effective = new;
                None
            }
        }
    }

    /// Changes a thread's base priority. If it is blocked on an rt-mutex the
    /// inheritance chain is walked again, so owners are boosted or de-boosted.
    /// A queued thread whose effective priority rises goes to the tail of its
    /// new level; one that drops goes to the head (it keeps its turn).
    pub fn set_priority(&mut self, cpu: CpuId, tid: ThreadId, prio: Priority) {
        if self.thread(tid).state == ThreadState::Exited {
            return;
        }
        self.th(tid).base = prio;
        let new = self.effective_for(tid);
        if let Some(m) = self.change_effective(tid, new, cpu) {
            self.propagate_from(m, cpu);
        }
    }

    /// Restricts where a thread may run, migrating it if needed.
    pub fn set_affinity(
        &mut self,
        cpu: CpuId,
        tid: ThreadId,
        mask: CpuMask,
    ) -> Result<(), ThreadError> {
        let mask = self.valid_affinity(mask)?;
        self.th(tid).affinity = mask;
        let th = self.thread(tid);
        match th.state {
            ThreadState::Runnable => {
                let (at, prio) = (th.cpu, th.effective);
                self.rqs[at].remove(tid, prio);
                self.place(tid, cpu, false);
            }
            ThreadState::Running if !mask.contains(th.cpu) => {
                // schedule() on that CPU re-places it on an allowed one.
                let at = th.cpu;
                self.resched(at, cpu);
            }
            _ => {}
        }
        Ok(())
    }

    /// The current thread gives way to its equal-priority peers.
    pub fn yield_now(&mut self, cpu: CpuId) {
        let rq = &mut self.rqs[cpu];
        rq.rotate = true;
        rq.need_resched = true;
    }

    /// Sleeps the current thread until absolute time `until`. A time in the
    /// past returns at once. Sleeps are not interruptible.
    pub fn sleep_until(&mut self, cpu: CpuId, until: Nanos) -> WaitStatus {
        let tid = self.current_thread(cpu);
        if until <= self.now {
            return WaitStatus::Ready(WaitOutcome::Success { remaining: None });
        }
        let seq = self.next_seq();
        self.timers[cpu].arm(until, seq, TimerAction::SleepEnd(tid));
        let th = self.th(tid);
        th.timer = Some(TimerKey {
            cpu,
            deadline: until,
            seq,
        });
        th.state = ThreadState::Sleeping { until };
        th.outcome = None;
        self.resched(cpu, cpu);
        WaitStatus::Blocked
    }

    /// Round-robin slice accounting, from the CPU's timer interrupt.
    pub(crate) fn expire_slice(&mut self, cpu: CpuId) {
        let Some(end) = self.rqs[cpu].slice_end else {
            return;
        };
        if end > self.now {
            return;
        }
        let current = self.rqs[cpu]
            .current
            .filter(|&t| self.thread(t).state == ThreadState::Running)
            .filter(|&t| self.thread(t).policy == Policy::RoundRobin);
        let next_end = self.now.saturating_add(self.config.rr_slice);
        let rq = &mut self.rqs[cpu];
        match current {
            Some(t) => {
                if rq.has_level(self.threads[t.index()].effective) {
                    rq.rotate = true;
                    rq.need_resched = true;
                }
                rq.slice_end = Some(next_end);
            }
            None => rq.slice_end = None,
        }
    }
}
