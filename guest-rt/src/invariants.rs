//! Consistency checks over the whole kernel state, for tests and debug
//! builds of the arch layer.
//!
//! Owns nothing: it only reads. Each rule here is a property the rest of the
//! kernel promises; the property tests call [`Kernel::check_invariants`] after
//! every simulated step. It must never repair state it finds broken.

use alloc::format;
use alloc::string::String;

use crate::kernel::Kernel;
use crate::scheduling::thread::{BlockedOn, Priority, ThreadState};
use crate::time::timer::TimerAction;

impl Kernel {
    /// Checks every invariant. With `settled` (no CPU has a reschedule
    /// pending) it also checks the scheduling guarantee: no queued thread is
    /// more urgent than the running thread of any CPU it may use.
    pub fn check_invariants(&self) -> Result<(), String> {
        let settled = self.settled();
        self.check_threads(settled)?;
        self.check_locks()?;
        self.check_run_queues()?;
        if settled {
            self.check_placement()?;
        }
        Ok(())
    }

    /// True when no CPU has a reschedule pending.
    pub fn settled(&self) -> bool {
        self.rqs.iter().all(|rq| !rq.need_resched)
    }

    fn check_threads(&self, settled: bool) -> Result<(), String> {
        for th in &self.threads {
            let t = th.id;
            let want = self.effective_for(t);
            if th.effective != want {
                return Err(format!(
                    "{t:?}: effective {:?} but base/inheritance says {want:?}",
                    th.effective
                ));
            }
            for (i, m) in th.owned.iter().enumerate() {
                if self.mutexes[m.index()].owner != Some(t) || th.owned[..i].contains(m) {
                    return Err(format!("{t:?}: owned list has {m:?} wrongly"));
                }
            }
            match th.state {
                ThreadState::Blocked(on) => {
                    let found = match on {
                        BlockedOn::Mutex(m) => {
                            let q = &self.mutexes[m.index()].waiters;
                            q.iter()
                                .filter(|w| w.tid == t && w.prio == th.effective)
                                .count()
                        }
                        BlockedOn::Completion(c) => {
                            let q = &self.completions[c.index()].waiters;
                            q.iter()
                                .filter(|w| w.tid == t && w.prio == th.effective)
                                .count()
                        }
                        BlockedOn::Semaphore(s) => {
                            let q = &self.semaphores[s.index()].waiters;
                            q.iter()
                                .filter(|w| w.tid == t && w.prio == th.effective)
                                .count()
                        }
                        BlockedOn::RwSem(r) => {
                            let q = &self.rwsems[r.index()].waiters;
                            q.iter()
                                .filter(|w| w.tid == t && w.prio == th.effective)
                                .count()
                        }
                    };
                    if found != 1 {
                        return Err(format!("{t:?}: blocked on {on:?} but queued {found} times (or at a stale priority)"));
                    }
                    if let Some(key) = th.timer {
                        if !self.timers[key.cpu].contains_action(TimerAction::WaitTimeout(t)) {
                            return Err(format!("{t:?}: timed wait without armed timer"));
                        }
                    }
                }
                ThreadState::Sleeping { .. } => {
                    let armed = th.timer.is_some_and(|k| {
                        self.timers[k.cpu].contains_action(TimerAction::SleepEnd(t))
                    });
                    if !armed {
                        return Err(format!("{t:?}: sleeping with no timer (lost wakeup)"));
                    }
                }
                ThreadState::Runnable => {
                    let mut places = 0;
                    for (c, rq) in self.rqs.iter().enumerate() {
                        for (prio, q) in rq.queued() {
                            if q == t {
                                places += 1;
                                if c != th.cpu || prio != th.effective {
                                    return Err(format!(
                                        "{t:?}: queued on CPU {c} at {prio:?}, expected CPU {} at {:?}",
                                        th.cpu, th.effective
                                    ));
                                }
                            }
                        }
                    }
                    if places != 1 || !th.affinity.contains(th.cpu) {
                        return Err(format!(
                            "{t:?}: runnable but queued {places} times or off its affinity"
                        ));
                    }
                }
                ThreadState::Running => {
                    // An affinity change takes effect at the next reschedule.
                    let allowed = th.affinity.contains(th.cpu) || !settled;
                    if self.rqs[th.cpu].current != Some(t) || !allowed {
                        return Err(format!("{t:?}: running but not current on an allowed CPU"));
                    }
                }
                ThreadState::Exited => {}
            }
            if !matches!(
                th.state,
                ThreadState::Blocked(_) | ThreadState::Sleeping { .. }
            ) && th.timer.is_some()
            {
                return Err(format!("{t:?}: timer armed while not waiting"));
            }
        }
        Ok(())
    }

    fn check_locks(&self) -> Result<(), String> {
        for (i, m) in self.mutexes.iter().enumerate() {
            if !m.waiters.is_ordered() {
                return Err(format!("mutex {i}: waiters out of priority/FIFO order"));
            }
            if let Some(owner) = m.owner {
                if !self.thread(owner).owned.iter().any(|o| o.index() == i) {
                    return Err(format!("mutex {i}: owner {owner:?} does not list it"));
                }
            } else if !m.waiters.is_empty() {
                return Err(format!("mutex {i}: waiters on a free lock (lost wakeup)"));
            }
        }
        for (i, c) in self.completions.iter().enumerate() {
            if !c.waiters.is_ordered() || (c.done > 0 && !c.waiters.is_empty()) {
                return Err(format!("completion {i}: done with waiters or out of order"));
            }
        }
        for (i, s) in self.semaphores.iter().enumerate() {
            if !s.waiters.is_ordered() || (s.count > 0 && !s.waiters.is_empty()) {
                return Err(format!(
                    "semaphore {i}: units available with waiters or out of order"
                ));
            }
        }
        for (i, r) in self.rwsems.iter().enumerate() {
            if !r.waiters.is_ordered() || r.head_grantable() {
                return Err(format!("rwsem {i}: grantable head waiter or out of order"));
            }
            if r.writer.is_some() && !r.readers.is_empty() {
                return Err(format!("rwsem {i}: writer and readers together"));
            }
        }
        Ok(())
    }

    fn check_run_queues(&self) -> Result<(), String> {
        for (c, rq) in self.rqs.iter().enumerate() {
            if !rq.bitmap_consistent() {
                return Err(format!("CPU {c}: priority bitmap disagrees with queues"));
            }
            for (_, t) in rq.queued() {
                if self.thread(t).state != ThreadState::Runnable {
                    return Err(format!("CPU {c}: queued {t:?} is not runnable"));
                }
            }
        }
        Ok(())
    }

    fn check_placement(&self) -> Result<(), String> {
        for (c, rq) in self.rqs.iter().enumerate() {
            if let Some(t) = rq.current {
                if self.thread(t).state != ThreadState::Running {
                    return Err(format!("CPU {c}: settled with non-running current {t:?}"));
                }
            }
            for (prio, t) in rq.queued() {
                let aff = self.thread(t).affinity;
                for other in (0..self.cpus()).filter(|&o| aff.contains(o)) {
                    let running: Option<Priority> = self.running_priority(other);
                    if running < Some(prio) {
                        return Err(format!(
                            "{t:?} ({prio:?}) waits on CPU {c} while CPU {other} runs {running:?}"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The checker must be able to fail: corrupt a consistent state in each
    //! way it guards against and expect an error.
    use crate::scheduling::thread::{Priority, ThreadSpec, ThreadState};
    use crate::{Kernel, KernelConfig};

    fn kernel_with_lock_waiter() -> (Kernel, crate::MutexId) {
        let mut k = Kernel::new(KernelConfig::new(2));
        let m = k.mutex_create();
        let low = k.spawn(0, ThreadSpec::fifo(10)).unwrap();
        let high = k.spawn(0, ThreadSpec::fifo(20)).unwrap();
        assert_eq!(k.schedule(0), Some(low));
        assert_eq!(k.schedule(1), Some(high));
        assert!(k.try_lock(0, m));
        assert!(!k.lock(1, m).unwrap().is_success());
        k.schedule(1);
        assert_eq!(k.thread(low).effective_priority(), Priority::new(20));
        k.check_invariants().unwrap();
        (k, m)
    }

    #[test]
    fn detects_wrong_effective_priority() {
        let (mut k, _) = kernel_with_lock_waiter();
        k.threads[0].effective = Priority::new(10);
        assert!(k.check_invariants().unwrap_err().contains("effective"));
    }

    #[test]
    fn detects_waiters_on_a_free_lock() {
        let (mut k, m) = kernel_with_lock_waiter();
        k.mutexes[m.index()].owner = None;
        k.threads[0].owned.clear();
        k.threads[0].effective = Priority::new(10);
        assert!(k.check_invariants().unwrap_err().contains("lost wakeup"));
    }

    #[test]
    fn detects_a_runnable_thread_left_behind_an_idle_cpu() {
        let (mut k, _) = kernel_with_lock_waiter();
        let extra = k.spawn(0, ThreadSpec::fifo(5)).unwrap();
        k.check_invariants().unwrap();
        // Pretend CPU 1 never got the reschedule request.
        k.rqs[1].need_resched = false;
        assert_eq!(k.thread(extra).state(), ThreadState::Runnable);
        assert!(k.check_invariants().unwrap_err().contains("waits on CPU"));
    }

    #[test]
    fn detects_a_lost_completion_wakeup() {
        let (mut k, _) = kernel_with_lock_waiter();
        let c = k.completion_create();
        k.completions[c.index()].done = 1;
        k.check_invariants().unwrap();
        let waiter = crate::sync::waitqueue::Waiter {
            tid: crate::ThreadId(1),
            prio: Priority::new(20),
            seq: 99,
            data: (),
        };
        k.completions[c.index()].waiters.insert(waiter);
        assert!(k.check_invariants().is_err());
    }
}
