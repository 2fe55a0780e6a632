//! A deterministic simulator of N CPUs and virtual time that drives the real
//! kernel (scheduler, rt-mutexes, completions, ...) with scripted threads.
//!
//! Owns virtual time, each thread's script and progress, and a log of what
//! happened (marks, operation results, context switches, IPIs). It plays the
//! arch layer's part: it calls [`Kernel::schedule`] wherever a reschedule is
//! pending (delivering IPIs that way), programs "the timer" with
//! [`Kernel::next_deadline`], and calls [`Kernel::expire`]. It never decides
//! anything the kernel should decide; given the same scripts it always
//! produces the same log.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::kernel::{Kernel, KernelConfig};
use crate::memory::kmap::{KmapPool, PageMapper};
use crate::scheduling::thread::{
    CpuId, CpuMask, Priority, ThreadId, ThreadSpec, ThreadState, WaitOutcome, WaitStatus,
};
use crate::sync::completion::CompletionId;
use crate::sync::percpu_locked::{PerCpuLocked, PerCpuSlot};
use crate::sync::rcu::{RcuCell, RcuGuard, VersionId};
use crate::sync::rtmutex::{LockError, MutexId};
use crate::sync::rwsem::RwSemId;
use crate::sync::semaphore::SemaphoreId;
use crate::time::timer::Nanos;

/// One step of a scripted thread. Everything except `Compute` takes no
/// virtual time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Burn CPU for this long (preemptible).
    Compute(Nanos),
    Lock(MutexId),
    LockInterruptible(MutexId),
    LockTimeout(MutexId, Nanos),
    TryLock(MutexId),
    Unlock(MutexId),
    Wait(CompletionId),
    WaitInterruptible(CompletionId),
    WaitTimeout(CompletionId, Nanos),
    WaitInterruptibleTimeout(CompletionId, Nanos),
    TryWait(CompletionId),
    Complete(CompletionId),
    CompleteAll(CompletionId),
    Reinit(CompletionId),
    Down(SemaphoreId),
    DownTimeout(SemaphoreId, Nanos),
    Up(SemaphoreId),
    DownRead(RwSemId),
    UpRead(RwSemId),
    DownWrite(RwSemId),
    UpWrite(RwSemId),
    SleepUntil(Nanos),
    SleepFor(Nanos),
    Yield,
    SetPriority(ThreadId, u8),
    SetAffinity(ThreadId, CpuMask),
    Interrupt(ThreadId),
    /// Log the current virtual time under a label.
    Mark(&'static str),
    /// `get_cpu_var_locked` on the simulator's per-CPU counter.
    PerCpuGet,
    /// Read the locked slot into the thread's register.
    PerCpuLoad,
    /// Write register + 1 into the locked slot.
    PerCpuStore,
    /// `put_cpu_var_locked`.
    PerCpuPut,
    /// The same read/write on a plain per-CPU array with no lock: what
    /// per-CPU data looks like without disabled preemption (control case).
    PlainPerCpuLoad,
    PlainPerCpuStore,
    RcuReadLock,
    /// Dereference the RCU cell inside the read side; logs the version seen.
    RcuRead,
    /// Check that the version seen by the last `RcuRead` is still live.
    RcuCheck,
    RcuReadUnlock,
    /// Remember the current version without entering the read side (control).
    RcuPeekUnlocked,
    RcuWriteLock,
    RcuPublish(u64),
    RcuWriteUnlock,
    /// Reserve a kmap slot (may sleep) and map this frame.
    Kmap(u64),
    Kunmap,
}

/// What an operation returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpResult {
    Done(WaitOutcome),
    Flag(bool),
    LockFailed(LockError),
    Failed(&'static str),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SimEvent {
    Mark {
        tid: ThreadId,
        label: &'static str,
    },
    Result {
        tid: ThreadId,
        op: Op,
        result: OpResult,
    },
    Switch {
        cpu: CpuId,
        from: Option<ThreadId>,
        to: Option<ThreadId>,
    },
    Ipi {
        from: CpuId,
        to: CpuId,
    },
    RcuSeen {
        tid: ThreadId,
        version: VersionId,
        live: bool,
    },
    Exit {
        tid: ThreadId,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub at: Nanos,
    pub event: SimEvent,
}

/// Which lock the simulator's RCU cell uses for its read side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RcuGuardKind {
    Mutex,
    RwSem,
}

#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    pub kernel: KernelConfig,
    /// Run [`Kernel::check_invariants`] after every step; the run fails on
    /// the first violation.
    pub check_invariants: bool,
    pub rcu_guard: RcuGuardKind,
    pub kmap_slots: usize,
}

impl SimConfig {
    pub fn new(cpus: usize) -> SimConfig {
        SimConfig {
            kernel: KernelConfig::new(cpus),
            check_invariants: true,
            rcu_guard: RcuGuardKind::RwSem,
            kmap_slots: 2,
        }
    }
}

/// A page mapper that records the simulated page table.
#[derive(Debug, Default)]
pub struct RecordingMapper {
    pub table: BTreeMap<usize, u64>,
    /// Set if a slot was mapped while already mapped.
    pub double_mapped: bool,
    pub maps: usize,
}

impl PageMapper for RecordingMapper {
    fn map(&mut self, va: usize, frame: u64) {
        self.double_mapped |= self.table.insert(va, frame).is_some();
        self.maps += 1;
    }
    fn unmap(&mut self, va: usize) {
        self.table.remove(&va);
    }
}

#[derive(Debug)]
struct SimThread {
    script: Vec<Op>,
    pc: usize,
    compute_left: Option<Nanos>,
    /// Blocked in `script[pc]`; the outcome arrives when it runs again.
    waiting: bool,
    register: u64,
    plain_slot: CpuId,
    slot: Option<PerCpuSlot>,
    rcu_seen: Option<VersionId>,
    kmap_va: Option<usize>,
    finished: bool,
}

enum Exec {
    Blocked,
    Done(OpResult),
}

const KMAP_BASE: usize = 0xffff_0000_0000;
const PAGE: usize = 4096;
/// Bound on zero-time steps at one instant; exceeding it means a livelock.
const MAX_STEPS_PER_INSTANT: usize = 100_000;

pub struct Sim {
    pub kernel: Kernel,
    threads: Vec<SimThread>,
    log: Vec<Record>,
    check: bool,
    pub percpu: PerCpuLocked<u64>,
    pub plain_percpu: Vec<u64>,
    pub rcu: RcuCell<u64>,
    pub kmap: KmapPool,
    pub mapper: RecordingMapper,
}

impl Sim {
    pub fn new(config: SimConfig) -> Sim {
        let mut kernel = Kernel::new(config.kernel);
        let percpu = PerCpuLocked::new(&mut kernel, |_| 0u64);
        let guard = match config.rcu_guard {
            RcuGuardKind::Mutex => RcuGuard::Mutex(kernel.mutex_create()),
            RcuGuardKind::RwSem => RcuGuard::RwSem(kernel.rwsem_create()),
        };
        let kmap = KmapPool::new(&mut kernel, KMAP_BASE, PAGE, config.kmap_slots);
        Sim {
            plain_percpu: alloc::vec![0; kernel.cpus()],
            kernel,
            threads: Vec::new(),
            log: Vec::new(),
            check: config.check_invariants,
            percpu,
            rcu: RcuCell::new(guard, 0),
            kmap,
            mapper: RecordingMapper::default(),
        }
    }

    /// Adds a thread that starts running its script now.
    pub fn spawn(&mut self, spec: ThreadSpec, script: &[Op]) -> ThreadId {
        let tid = self.kernel.spawn(0, spec).expect("valid affinity");
        debug_assert_eq!(tid.0 as usize, self.threads.len());
        self.threads.push(SimThread {
            script: script.to_vec(),
            pc: 0,
            compute_left: None,
            waiting: false,
            register: 0,
            plain_slot: 0,
            slot: None,
            rcu_seen: None,
            kmap_va: None,
            finished: false,
        });
        self.drain_events();
        tid
    }

    pub fn now(&self) -> Nanos {
        self.kernel.now()
    }

    pub fn log(&self) -> &[Record] {
        &self.log
    }

    pub fn finished(&self, tid: ThreadId) -> bool {
        self.threads[tid.index()].finished
    }

    /// Time of the first mark `label` logged by `tid`.
    pub fn mark(&self, tid: ThreadId, label: &str) -> Option<Nanos> {
        self.log.iter().find_map(|r| match r.event {
            SimEvent::Mark { tid: t, label: l } if t == tid && l == label => Some(r.at),
            _ => None,
        })
    }

    /// Results of `tid`'s operations, with the time they completed.
    pub fn results(&self, tid: ThreadId) -> Vec<(Nanos, Op, OpResult)> {
        self.log
            .iter()
            .filter_map(|r| match r.event {
                SimEvent::Result { tid: t, op, result } if t == tid => Some((r.at, op, result)),
                _ => None,
            })
            .collect()
    }

    pub fn ipis(&self) -> Vec<(Nanos, CpuId, CpuId)> {
        self.log
            .iter()
            .filter_map(|r| match r.event {
                SimEvent::Ipi { from, to } => Some((r.at, from, to)),
                _ => None,
            })
            .collect()
    }

    /// Every (time, CPU) at which `tid` was switched in.
    pub fn switched_in(&self, tid: ThreadId) -> Vec<(Nanos, CpuId)> {
        self.log
            .iter()
            .filter_map(|r| match r.event {
                SimEvent::Switch { cpu, to, .. } if to == Some(tid) => Some((r.at, cpu)),
                _ => None,
            })
            .collect()
    }

    fn record(&mut self, event: SimEvent) {
        let at = self.kernel.now();
        self.log.push(Record { at, event });
    }

    fn drain_events(&mut self) {
        let ipis: Vec<crate::scheduling::sched::KernelEvent> = self.kernel.take_events().collect();
        for crate::scheduling::sched::KernelEvent::Ipi { from, to } in ipis {
            // Delivery is the reschedule `settle` performs on that CPU.
            self.record(SimEvent::Ipi { from, to });
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.check {
            self.kernel
                .check_invariants()
                .map_err(|e| format!("t={}: {e}", self.kernel.now()))?;
        }
        Ok(())
    }

    /// Runs until virtual time `end` (or until nothing can happen any more).
    pub fn run_until(&mut self, end: Nanos) -> Result<(), String> {
        loop {
            self.settle()?;
            let now = self.kernel.now();
            if now >= end {
                return Ok(());
            }
            let mut next = end;
            for cpu in 0..self.kernel.cpus() {
                if let Some(d) = self.kernel.next_deadline(cpu) {
                    next = next.min(d.max(now));
                }
                if let Some(left) = self.running_compute(cpu) {
                    next = next.min(now + left);
                }
            }
            let elapsed = next - now;
            for cpu in 0..self.kernel.cpus() {
                if self.running_compute(cpu).is_some() {
                    let tid = self.kernel.current(cpu).expect("running");
                    let st = &mut self.threads[tid.index()];
                    let left = st.compute_left.as_mut().expect("computing");
                    *left -= elapsed;
                    if *left == 0 {
                        st.compute_left = None;
                        st.pc += 1;
                    }
                }
            }
            self.kernel.advance_time(next);
            for cpu in 0..self.kernel.cpus() {
                self.kernel.expire(cpu);
            }
            self.drain_events();
        }
    }

    /// Remaining compute of the thread running on `cpu`, if it is computing.
    fn running_compute(&self, cpu: CpuId) -> Option<Nanos> {
        let tid = self.kernel.current(cpu)?;
        if self.kernel.thread(tid).state() != ThreadState::Running {
            return None;
        }
        self.threads[tid.index()].compute_left
    }

    /// Reschedules and executes zero-time operations until nothing changes.
    fn settle(&mut self) -> Result<(), String> {
        for _ in 0..MAX_STEPS_PER_INSTANT {
            let mut progressed = false;
            for cpu in 0..self.kernel.cpus() {
                if self.kernel.need_resched(cpu) {
                    let from = self.kernel.current(cpu);
                    let to = self.kernel.schedule(cpu);
                    if from != to {
                        self.record(SimEvent::Switch { cpu, from, to });
                    }
                    progressed = true;
                }
            }
            self.drain_events();
            self.check()?;
            for cpu in 0..self.kernel.cpus() {
                if self.kernel.need_resched(cpu) {
                    continue;
                }
                let Some(tid) = self.kernel.current(cpu) else {
                    continue;
                };
                if self.kernel.thread(tid).state() == ThreadState::Running && self.step(cpu, tid) {
                    progressed = true;
                    self.drain_events();
                    self.check()?;
                }
            }
            if !progressed {
                return Ok(());
            }
        }
        Err(format!(
            "t={}: no progress in time (livelock)",
            self.kernel.now()
        ))
    }

    /// Advances `tid` (running on `cpu`) by one zero-time step.
    fn step(&mut self, cpu: CpuId, tid: ThreadId) -> bool {
        let st = &mut self.threads[tid.index()];
        if st.finished {
            return false;
        }
        if st.waiting {
            st.waiting = false;
            let op = st.script[st.pc];
            let outcome = self
                .kernel
                .take_outcome(tid)
                .expect("a woken thread has an outcome");
            self.finish(cpu, tid, op, OpResult::Done(outcome));
            return true;
        }
        let Some(&op) = st.script.get(st.pc) else {
            self.exit(cpu, tid);
            return true;
        };
        if let Op::Compute(ns) = op {
            if st.compute_left.is_some() {
                return false;
            }
            if ns == 0 {
                st.pc += 1;
            } else {
                st.compute_left = Some(ns);
            }
            return true;
        }
        match self.execute(cpu, tid, op) {
            Exec::Blocked => self.threads[tid.index()].waiting = true,
            Exec::Done(result) => self.finish(cpu, tid, op, result),
        }
        true
    }

    fn exit(&mut self, cpu: CpuId, tid: ThreadId) {
        // Scripts may end holding locks; release them like a robust owner.
        let owned: Vec<MutexId> = self.kernel.thread(tid).owned_mutexes().to_vec();
        for m in owned.into_iter().rev() {
            self.kernel.unlock(cpu, m).expect("owner can unlock");
        }
        self.kernel.exit(cpu).expect("no locks held");
        self.threads[tid.index()].finished = true;
        self.record(SimEvent::Exit { tid });
    }

    fn execute(&mut self, cpu: CpuId, tid: ThreadId, op: Op) -> Exec {
        let k = &mut self.kernel;
        let status = |s: WaitStatus| match s {
            WaitStatus::Ready(o) => Exec::Done(OpResult::Done(o)),
            WaitStatus::Blocked => Exec::Blocked,
        };
        let locked = |r: Result<WaitStatus, LockError>| match r {
            Ok(s) => status(s),
            Err(e) => Exec::Done(OpResult::LockFailed(e)),
        };
        let flag = |b: bool| Exec::Done(OpResult::Flag(b));
        let ok = Exec::Done(OpResult::Flag(true));
        match op {
            Op::Compute(_) => unreachable!("handled by step"),
            Op::Lock(m) => locked(k.lock(cpu, m)),
            Op::LockInterruptible(m) => locked(k.lock_interruptible(cpu, m)),
            Op::LockTimeout(m, t) => locked(k.lock_timeout(cpu, m, t)),
            Op::TryLock(m) => flag(k.try_lock(cpu, m)),
            Op::Unlock(m) => match k.unlock(cpu, m) {
                Ok(()) => ok,
                Err(e) => Exec::Done(OpResult::LockFailed(e)),
            },
            Op::Wait(c) => status(k.wait_for_completion(cpu, c)),
            Op::WaitInterruptible(c) => status(k.wait_for_completion_interruptible(cpu, c)),
            Op::WaitTimeout(c, t) => status(k.wait_for_completion_timeout(cpu, c, t)),
            Op::WaitInterruptibleTimeout(c, t) => {
                status(k.wait_for_completion_interruptible_timeout(cpu, c, t))
            }
            Op::TryWait(c) => flag(k.try_wait_for_completion(c)),
            Op::Complete(c) => {
                k.complete(cpu, c);
                ok
            }
            Op::CompleteAll(c) => {
                k.complete_all(cpu, c);
                ok
            }
            Op::Reinit(c) => {
                k.reinit_completion(c);
                ok
            }
            Op::Down(s) => status(k.down(cpu, s)),
            Op::DownTimeout(s, t) => status(k.down_timeout(cpu, s, t)),
            Op::Up(s) => {
                k.up(cpu, s);
                ok
            }
            Op::DownRead(r) => status(k.down_read(cpu, r)),
            Op::DownWrite(r) => status(k.down_write(cpu, r)),
            Op::UpRead(r) => flag(k.up_read(cpu, r).is_ok()),
            Op::UpWrite(r) => flag(k.up_write(cpu, r).is_ok()),
            Op::SleepUntil(t) => status(k.sleep_until(cpu, t)),
            Op::SleepFor(d) => {
                let until = k.now().saturating_add(d);
                status(k.sleep_until(cpu, until))
            }
            Op::Yield => {
                k.yield_now(cpu);
                ok
            }
            Op::SetPriority(t, p) => {
                k.set_priority(cpu, t, Priority::new(p));
                ok
            }
            Op::SetAffinity(t, mask) => flag(k.set_affinity(cpu, t, mask).is_ok()),
            Op::Interrupt(t) => {
                k.interrupt(cpu, t);
                ok
            }
            Op::Mark(label) => {
                self.record(SimEvent::Mark { tid, label });
                Exec::Done(OpResult::Flag(true))
            }
            Op::PerCpuGet => match self.percpu.get_locked(k, cpu) {
                Ok((slot, s)) => {
                    self.threads[tid.index()].slot = Some(slot);
                    status(s)
                }
                Err(e) => Exec::Done(OpResult::LockFailed(e)),
            },
            Op::PerCpuLoad | Op::PerCpuStore => {
                let st = &mut self.threads[tid.index()];
                let Some(slot) = st.slot else {
                    return Exec::Done(OpResult::Failed("no per-CPU slot held"));
                };
                match self.percpu.slot_mut(k, cpu, slot) {
                    Ok(v) => {
                        if op == Op::PerCpuLoad {
                            st.register = *v;
                        } else {
                            *v = st.register + 1;
                        }
                        ok
                    }
                    Err(e) => Exec::Done(OpResult::LockFailed(e)),
                }
            }
            Op::PerCpuPut => {
                let Some(slot) = self.threads[tid.index()].slot.take() else {
                    return Exec::Done(OpResult::Failed("no per-CPU slot held"));
                };
                match self.percpu.put_locked(k, cpu, slot) {
                    Ok(()) => ok,
                    Err(e) => Exec::Done(OpResult::LockFailed(e)),
                }
            }
            Op::PlainPerCpuLoad => {
                let st = &mut self.threads[tid.index()];
                st.plain_slot = cpu;
                st.register = self.plain_percpu[cpu];
                ok
            }
            Op::PlainPerCpuStore => {
                let st = &self.threads[tid.index()];
                self.plain_percpu[st.plain_slot] = st.register + 1;
                ok
            }
            Op::RcuReadLock => locked(self.rcu.read_lock(k, cpu)),
            Op::RcuRead => match self.rcu.read_deref(k, cpu) {
                Ok((version, _)) => {
                    self.threads[tid.index()].rcu_seen = Some(version);
                    let live = self.rcu.is_live(version);
                    self.record(SimEvent::RcuSeen { tid, version, live });
                    ok
                }
                Err(_) => Exec::Done(OpResult::Failed("RCU read outside the read side")),
            },
            Op::RcuCheck => match self.threads[tid.index()].rcu_seen {
                Some(version) => {
                    let live = self.rcu.is_live(version);
                    self.record(SimEvent::RcuSeen { tid, version, live });
                    ok
                }
                None => Exec::Done(OpResult::Failed("nothing seen yet")),
            },
            Op::RcuReadUnlock => flag(self.rcu.read_unlock(k, cpu).is_ok()),
            Op::RcuPeekUnlocked => {
                self.threads[tid.index()].rcu_seen = Some(self.rcu.current_version());
                ok
            }
            Op::RcuWriteLock => locked(self.rcu.write_lock(k, cpu)),
            Op::RcuPublish(v) => flag(self.rcu.publish(k, cpu, v).is_ok()),
            Op::RcuWriteUnlock => flag(self.rcu.write_unlock(k, cpu).is_ok()),
            Op::Kmap(_) => status(self.kmap.reserve(k, cpu)),
            Op::Kunmap => {
                let Some(va) = self.threads[tid.index()].kmap_va.take() else {
                    return Exec::Done(OpResult::Failed("nothing mapped"));
                };
                flag(self.kmap.unmap(k, cpu, va, &mut self.mapper).is_ok())
            }
        }
    }

    /// Logs an operation's result, applies its after-effects, moves on.
    fn finish(&mut self, cpu: CpuId, tid: ThreadId, op: Op, result: OpResult) {
        let success = matches!(result, OpResult::Done(WaitOutcome::Success { .. }));
        match op {
            Op::Kmap(frame) if success => {
                let mapped = self.kmap.map(&self.kernel, cpu, frame, &mut self.mapper);
                self.threads[tid.index()].kmap_va = mapped.ok();
            }
            Op::PerCpuGet if !success => self.threads[tid.index()].slot = None,
            _ => {}
        }
        if !matches!(op, Op::Mark(_)) {
            self.record(SimEvent::Result { tid, op, result });
        }
        self.threads[tid.index()].pc += 1;
    }
}
