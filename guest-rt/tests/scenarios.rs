//! Deterministic simulator scenarios: each one drives the real kernel through
//! a scripted situation and asserts what happened in virtual time.

use guest_rt::sim::{Op::*, OpResult, RcuGuardKind, Sim, SimConfig, SimEvent};
use guest_rt::sync::rcu::VersionId;
use guest_rt::{
    CpuMask, LockError, Nanos, Priority, ThreadId, ThreadSpec, ThreadState, WaitOutcome,
};

const END: Nanos = 1_000_000;

fn sim(cpus: usize) -> Sim {
    Sim::new(SimConfig::new(cpus))
}

fn eff(sim: &Sim, t: ThreadId) -> u8 {
    sim.kernel.thread(t).effective_priority().get()
}

fn ok(remaining: Option<Nanos>) -> OpResult {
    OpResult::Done(WaitOutcome::Success { remaining })
}

fn result_of(sim: &Sim, t: ThreadId, op: guest_rt::sim::Op) -> (Nanos, OpResult) {
    sim.results(t)
        .into_iter()
        .find(|&(_, o, _)| o == op)
        .map(|(at, _, r)| (at, r))
        .unwrap_or_else(|| panic!("{t:?} never finished {op:?}"))
}

// ---------------------------------------------------------------- inversion

/// Low holds M for 1000 ns, medium hogs the only CPU from t=100 for 10 µs,
/// high wants M at t=200. Returns (high's wait for M, time medium finished,
/// time high got M).
fn classic_inversion(inheritance: bool) -> (Nanos, Nanos, Nanos) {
    let mut cfg = SimConfig::new(1);
    cfg.kernel.priority_inheritance = inheritance;
    let mut sim = Sim::new(cfg);
    let m = sim.kernel.mutex_create();
    let _low = sim.spawn(ThreadSpec::fifo(10), &[Lock(m), Compute(1000), Unlock(m)]);
    let medium = sim.spawn(
        ThreadSpec::fifo(20),
        &[SleepUntil(100), Compute(10_000), Mark("done")],
    );
    let high = sim.spawn(
        ThreadSpec::fifo(30),
        &[
            SleepUntil(200),
            Mark("want"),
            Lock(m),
            Mark("got"),
            Unlock(m),
        ],
    );
    sim.run_until(END).unwrap();
    let want = sim.mark(high, "want").unwrap();
    let got = sim.mark(high, "got").unwrap();
    (got - want, sim.mark(medium, "done").unwrap(), got)
}

#[test]
fn inversion_is_bounded_by_the_critical_section_with_inheritance() {
    const CRITICAL_SECTION: Nanos = 1000;
    const EPSILON: Nanos = 0; // virtual time: lock handoff costs nothing
    let (wait, medium_done, got) = classic_inversion(true);
    assert!(wait <= CRITICAL_SECTION + EPSILON, "high waited {wait} ns");
    assert!(got < medium_done, "high must not wait for medium");
}

#[test]
fn inversion_is_unbounded_without_inheritance() {
    let (wait, medium_done, got) = classic_inversion(false);
    assert!(got >= medium_done, "without PI high runs only after medium");
    assert!(wait > 10_000 - 200, "high waited only {wait} ns");
}

// ------------------------------------------------------------------- chains

/// `locks` locks on `locks + 1` CPUs: thread i owns lock i and (for i > 0)
/// waits for lock i-1; the top thread waits for the last lock.
fn chain(locks: usize) {
    let mut sim = sim(locks + 1);
    let m: Vec<_> = (0..locks).map(|_| sim.kernel.mutex_create()).collect();
    let mut owners = Vec::new();
    for (i, &lock) in m.iter().enumerate() {
        let mut script = vec![Lock(lock), SleepUntil(10 * (i as Nanos + 1))];
        if i > 0 {
            script.push(Lock(m[i - 1]));
            script.push(Unlock(m[i - 1]));
        }
        script.extend([Compute(1000), Unlock(lock)]);
        let spec = ThreadSpec::fifo(10 * (i as u8 + 1)).on(CpuMask::single(i));
        owners.push(sim.spawn(spec, &script));
    }
    let top = sim.spawn(
        ThreadSpec::fifo(90).on(CpuMask::single(locks)),
        &[
            SleepUntil(100),
            Lock(m[locks - 1]),
            Mark("got"),
            Unlock(m[locks - 1]),
        ],
    );
    sim.run_until(150).unwrap();
    for &o in &owners {
        assert_eq!(eff(&sim, o), 90, "{o:?} not boosted through the chain");
    }
    assert!(matches!(
        sim.kernel.thread(owners[0]).state(),
        ThreadState::Running
    ));
    sim.run_until(END).unwrap();
    assert!(sim.mark(top, "got").is_some());
    for (i, &o) in owners.iter().enumerate() {
        assert_eq!(eff(&sim, o), 10 * (i as u8 + 1), "{o:?} kept a boost");
        assert!(sim.finished(o));
    }
}

#[test]
fn chain_through_two_locks_boosts_every_owner() {
    chain(2);
}

#[test]
fn chain_through_three_locks_boosts_every_owner() {
    chain(3);
}

// --------------------------------------------- timeout and interruption

/// Owner L (10) holds M; W (30) and H (50) wait. H leaves by `leave`; L must
/// drop to 30 (W still waits), not to its base and not stay at 50.
fn waiter_leaves(interrupt: bool) {
    let mut sim = sim(2);
    let m = sim.kernel.mutex_create();
    let owner = sim.spawn(
        ThreadSpec::fifo(10).on(CpuMask::single(0)),
        &[Lock(m), Compute(1000), Unlock(m)],
    );
    let w = sim.spawn(ThreadSpec::fifo(30), &[SleepUntil(50), Lock(m), Unlock(m)]);
    let h_op = if interrupt {
        LockInterruptible(m)
    } else {
        LockTimeout(m, 200)
    };
    let h = sim.spawn(ThreadSpec::fifo(50), &[SleepUntil(100), h_op, Mark("left")]);
    if interrupt {
        sim.spawn(ThreadSpec::fifo(60), &[SleepUntil(300), Interrupt(h)]);
    }
    sim.run_until(250).unwrap();
    assert_eq!(eff(&sim, owner), 50, "owner boosted by the top waiter");
    sim.run_until(350).unwrap();
    let expected = if interrupt {
        WaitOutcome::Interrupted
    } else {
        WaitOutcome::TimedOut
    };
    assert_eq!(result_of(&sim, h, h_op), (300, OpResult::Done(expected)));
    assert_eq!(
        eff(&sim, owner),
        30,
        "owner must drop to the remaining waiter"
    );
    assert_eq!(sim.kernel.mutex_owner(m), Some(owner));
    sim.run_until(END).unwrap();
    assert_eq!(eff(&sim, owner), 10);
    assert!(sim.finished(w) && sim.finished(owner));
}

#[test]
fn waiter_timeout_deboosts_owner_to_remaining_waiter() {
    waiter_leaves(false);
}

#[test]
fn waiter_interruption_deboosts_owner_to_remaining_waiter() {
    waiter_leaves(true);
}

#[test]
fn lock_timeout_success_reports_remaining_time() {
    let mut sim = sim(2);
    let m = sim.kernel.mutex_create();
    sim.spawn(ThreadSpec::fifo(10), &[Lock(m), Compute(100), Unlock(m)]);
    let w = sim.spawn(
        ThreadSpec::fifo(20),
        &[SleepUntil(10), LockTimeout(m, 500), Unlock(m)],
    );
    sim.run_until(END).unwrap();
    assert_eq!(
        result_of(&sim, w, LockTimeout(m, 500)),
        (100, ok(Some(410)))
    );
}

// -------------------------------------------------- priority change re-walk

#[test]
fn priority_change_of_blocked_waiter_rewalks_the_chain() {
    let mut sim = sim(4);
    let (a, b) = (sim.kernel.mutex_create(), sim.kernel.mutex_create());
    let low = sim.spawn(
        ThreadSpec::fifo(10).on(CpuMask::single(0)),
        &[Lock(a), Compute(1000), Unlock(a)],
    );
    let mid = sim.spawn(
        ThreadSpec::fifo(20).on(CpuMask::single(1)),
        &[Lock(b), SleepUntil(10), Lock(a), Unlock(a), Unlock(b)],
    );
    let waiter = sim.spawn(
        ThreadSpec::fifo(30).on(CpuMask::single(2)),
        &[SleepUntil(20), Lock(b), Unlock(b)],
    );
    sim.spawn(
        ThreadSpec::fifo(90).on(CpuMask::single(3)),
        &[
            SleepUntil(100),
            SetPriority(waiter, 60),
            SleepUntil(200),
            SetPriority(waiter, 5),
        ],
    );
    sim.run_until(50).unwrap();
    assert_eq!((eff(&sim, low), eff(&sim, mid)), (30, 30));
    sim.run_until(150).unwrap();
    assert_eq!(
        (eff(&sim, low), eff(&sim, mid)),
        (60, 60),
        "raise must propagate"
    );
    sim.run_until(250).unwrap();
    assert_eq!(eff(&sim, waiter), 5);
    assert_eq!(
        (eff(&sim, low), eff(&sim, mid)),
        (20, 20),
        "lowering must de-boost"
    );
    sim.run_until(END).unwrap();
    assert!([low, mid, waiter].iter().all(|&t| sim.finished(t)));
}

// ------------------------------------------------------------------ deadlock

#[test]
fn self_deadlock_is_an_error() {
    let mut sim = sim(1);
    let m = sim.kernel.mutex_create();
    let t = sim.spawn(ThreadSpec::fifo(10), &[Lock(m), Lock(m), Unlock(m)]);
    sim.run_until(END).unwrap();
    let results = sim.results(t);
    assert_eq!(results[1].2, OpResult::LockFailed(LockError::Deadlock));
    assert_eq!(results[2].2, OpResult::Flag(true));
    assert!(sim.finished(t) && sim.kernel.mutex(m).waiters().is_empty());
}

#[test]
fn abba_deadlock_is_an_error_and_leaves_no_boost() {
    let mut sim = sim(2);
    let (a, b) = (sim.kernel.mutex_create(), sim.kernel.mutex_create());
    let t1 = sim.spawn(
        ThreadSpec::fifo(30).on(CpuMask::single(0)),
        &[Lock(a), SleepUntil(100), Lock(b), Mark("after"), Unlock(a)],
    );
    let t2 = sim.spawn(
        ThreadSpec::fifo(20).on(CpuMask::single(1)),
        &[Lock(b), SleepUntil(50), Lock(a), Unlock(a), Unlock(b)],
    );
    sim.run_until(100).unwrap();
    assert_eq!(
        result_of(&sim, t1, Lock(b)).1,
        OpResult::LockFailed(LockError::Deadlock)
    );
    // Had t1 been queued on B, t2 would now run at 30.
    assert_eq!(eff(&sim, t2), 20);
    assert!(sim.kernel.mutex(b).waiters().is_empty());
    assert_eq!(eff(&sim, t1), 30);
    sim.run_until(END).unwrap();
    assert!(sim.finished(t1) && sim.finished(t2));
}

#[test]
fn three_lock_cycle_is_an_error() {
    let mut sim = sim(3);
    let m: Vec<_> = (0..3).map(|_| sim.kernel.mutex_create()).collect();
    let mut threads = Vec::new();
    for i in 0..3 {
        let script = [
            Lock(m[i]),
            SleepUntil(10 * (i as Nanos + 1)),
            Lock(m[(i + 1) % 3]),
        ];
        threads.push(sim.spawn(
            ThreadSpec::fifo(10 + i as u8).on(CpuMask::single(i)),
            &script,
        ));
    }
    sim.run_until(100).unwrap();
    // t0 and t1 block; t2 closes the cycle and is refused.
    assert_eq!(
        result_of(&sim, threads[2], Lock(m[0])).1,
        OpResult::LockFailed(LockError::Deadlock)
    );
    assert_eq!(
        eff(&sim, threads[2]),
        12,
        "t2 keeps only the legitimate boost from t1"
    );
    assert_eq!(eff(&sim, threads[1]), 11);
    sim.run_until(END).unwrap();
    assert!(threads.iter().all(|&t| sim.finished(t)));
}

// --------------------------------------------------------------- completions

#[test]
fn completion_before_wait_does_not_block() {
    let mut sim = sim(1);
    let c = sim.kernel.completion_create();
    sim.spawn(ThreadSpec::fifo(20), &[Complete(c)]);
    let w = sim.spawn(ThreadSpec::fifo(10), &[SleepUntil(10), Wait(c)]);
    sim.run_until(END).unwrap();
    assert_eq!(result_of(&sim, w, Wait(c)), (10, ok(None)));
    assert!(!sim.kernel.completion_done(c));
}

#[test]
fn complete_wakes_one_waiter_in_priority_order() {
    let mut sim = sim(3);
    let c = sim.kernel.completion_create();
    let lo = sim.spawn(ThreadSpec::fifo(10), &[Wait(c)]);
    let hi = sim.spawn(ThreadSpec::fifo(20), &[Wait(c)]);
    sim.spawn(
        ThreadSpec::fifo(5),
        &[SleepUntil(100), Complete(c), SleepUntil(200), Complete(c)],
    );
    sim.run_until(150).unwrap();
    assert_eq!(result_of(&sim, hi, Wait(c)), (100, ok(None)));
    assert!(!sim.finished(lo));
    sim.run_until(END).unwrap();
    assert_eq!(result_of(&sim, lo, Wait(c)), (200, ok(None)));
}

#[test]
fn complete_all_wakes_everyone_until_reinit() {
    let mut sim = sim(2);
    let c = sim.kernel.completion_create();
    let waiters: Vec<_> = (0..3)
        .map(|i| sim.spawn(ThreadSpec::fifo(10 + i), &[Wait(c)]))
        .collect();
    let late = sim.spawn(
        ThreadSpec::fifo(40),
        &[SleepUntil(200), Wait(c), TryWait(c), Reinit(c), TryWait(c)],
    );
    sim.spawn(ThreadSpec::fifo(50), &[SleepUntil(100), CompleteAll(c)]);
    sim.run_until(END).unwrap();
    for &w in &waiters {
        assert_eq!(result_of(&sim, w, Wait(c)).1, ok(None));
        assert!(sim.finished(w));
    }
    let late_results: Vec<OpResult> = sim.results(late).into_iter().map(|r| r.2).collect();
    assert_eq!(
        late_results[1..],
        [
            ok(None),
            OpResult::Flag(true),
            OpResult::Flag(true),
            OpResult::Flag(false)
        ]
    );
}

#[test]
fn completion_counts_events() {
    let mut sim = sim(1);
    let c = sim.kernel.completion_create();
    let t = sim.spawn(
        ThreadSpec::fifo(10),
        &[Complete(c), Complete(c), TryWait(c), TryWait(c), TryWait(c)],
    );
    sim.run_until(END).unwrap();
    let flags: Vec<OpResult> = sim.results(t).into_iter().skip(2).map(|r| r.2).collect();
    assert_eq!(
        flags,
        [
            OpResult::Flag(true),
            OpResult::Flag(true),
            OpResult::Flag(false)
        ]
    );
}

#[test]
fn completion_timeouts_and_remaining_time() {
    let mut sim = sim(4);
    let (c1, c2) = (
        sim.kernel.completion_create(),
        sim.kernel.completion_create(),
    );
    let times_out = sim.spawn(ThreadSpec::fifo(10), &[WaitTimeout(c1, 100)]);
    let succeeds = sim.spawn(ThreadSpec::fifo(10), &[WaitTimeout(c2, 500)]);
    let int_times_out = sim.spawn(ThreadSpec::fifo(10), &[WaitInterruptibleTimeout(c1, 300)]);
    sim.spawn(ThreadSpec::fifo(10), &[SleepUntil(200), Complete(c2)]);
    sim.run_until(END).unwrap();
    assert_eq!(
        result_of(&sim, times_out, WaitTimeout(c1, 100)),
        (100, OpResult::Done(WaitOutcome::TimedOut))
    );
    assert_eq!(
        result_of(&sim, succeeds, WaitTimeout(c2, 500)),
        (200, ok(Some(300)))
    );
    assert_eq!(
        result_of(&sim, int_times_out, WaitInterruptibleTimeout(c1, 300)),
        (300, OpResult::Done(WaitOutcome::TimedOut))
    );
}

#[test]
fn completion_interruptions_are_distinct_from_timeouts() {
    let mut sim = sim(3);
    let c = sim.kernel.completion_create();
    let plain = sim.spawn(ThreadSpec::fifo(10), &[WaitInterruptible(c)]);
    let timed = sim.spawn(ThreadSpec::fifo(10), &[WaitInterruptibleTimeout(c, 1000)]);
    let uninterruptible = sim.spawn(ThreadSpec::fifo(10), &[WaitTimeout(c, 1000)]);
    sim.spawn(
        ThreadSpec::fifo(20),
        &[
            SleepUntil(50),
            Interrupt(plain),
            Interrupt(timed),
            Interrupt(uninterruptible),
        ],
    );
    sim.run_until(END).unwrap();
    let interrupted = OpResult::Done(WaitOutcome::Interrupted);
    assert_eq!(
        result_of(&sim, plain, WaitInterruptible(c)),
        (50, interrupted)
    );
    assert_eq!(
        result_of(&sim, timed, WaitInterruptibleTimeout(c, 1000)),
        (50, interrupted)
    );
    assert_eq!(
        result_of(&sim, uninterruptible, WaitTimeout(c, 1000)),
        (1000, OpResult::Done(WaitOutcome::TimedOut)),
        "an uninterruptible wait ignores the interruption"
    );
    assert!(sim.kernel.thread(uninterruptible).interrupt_pending());
}

#[test]
fn pending_interruption_ends_next_interruptible_wait() {
    let mut sim = sim(1);
    let c = sim.kernel.completion_create();
    let t = sim.spawn(
        ThreadSpec::fifo(10),
        &[SleepUntil(100), WaitInterruptible(c)],
    );
    sim.spawn(ThreadSpec::fifo(20), &[SleepUntil(50), Interrupt(t)]);
    sim.run_until(END).unwrap();
    assert_eq!(
        result_of(&sim, t, WaitInterruptible(c)),
        (100, OpResult::Done(WaitOutcome::Interrupted))
    );
    assert!(!sim.kernel.thread(t).interrupt_pending());
}

// ---------------------------------------------------- semaphores and rwsems

#[test]
fn semaphore_counts_and_times_out() {
    let mut sim = sim(3);
    let s = sim.kernel.semaphore_create(1);
    let a = sim.spawn(ThreadSpec::fifo(10), &[Down(s), Compute(300), Up(s)]);
    let b = sim.spawn(ThreadSpec::fifo(10), &[SleepUntil(10), DownTimeout(s, 100)]);
    let c = sim.spawn(ThreadSpec::fifo(10), &[SleepUntil(20), Down(s), Up(s)]);
    sim.run_until(END).unwrap();
    assert_eq!(result_of(&sim, a, Down(s)), (0, ok(None)));
    assert_eq!(
        result_of(&sim, b, DownTimeout(s, 100)),
        (110, OpResult::Done(WaitOutcome::TimedOut))
    );
    assert_eq!(result_of(&sim, c, Down(s)), (300, ok(None)));
    assert_eq!(sim.kernel.semaphore(s).count(), 1);
}

#[test]
fn rwsem_readers_share_and_queued_writer_blocks_new_readers() {
    let mut sim = sim(4);
    let r = sim.kernel.rwsem_create();
    let r1 = sim.spawn(
        ThreadSpec::fifo(10),
        &[DownRead(r), Compute(100), UpRead(r)],
    );
    let r2 = sim.spawn(
        ThreadSpec::fifo(10),
        &[SleepUntil(10), DownRead(r), Compute(100), UpRead(r)],
    );
    let w = sim.spawn(
        ThreadSpec::fifo(10),
        &[SleepUntil(20), DownWrite(r), Compute(50), UpWrite(r)],
    );
    let r3 = sim.spawn(
        ThreadSpec::fifo(10),
        &[SleepUntil(30), DownRead(r), UpRead(r)],
    );
    sim.run_until(END).unwrap();
    assert_eq!(result_of(&sim, r1, DownRead(r)).0, 0);
    assert_eq!(result_of(&sim, r2, DownRead(r)).0, 10, "readers share");
    assert_eq!(
        result_of(&sim, w, DownWrite(r)).0,
        110,
        "writer waits for both readers"
    );
    assert_eq!(
        result_of(&sim, r3, DownRead(r)).0,
        160,
        "late reader queues behind the writer"
    );
}

// -------------------------------------------------------------- per-CPU locked

/// A (10) takes CPU 0's slot; at t=1 H (50, pinned to CPU 0) arrives,
/// preempts A mid-update and so migrates it to CPU 1, where A finishes its
/// update of CPU 0's slot. At t=50 H updates CPU 0's slot too.
#[test]
fn percpu_locked_update_survives_migration_mid_hold() {
    let mut sim = sim(2);
    let a = sim.spawn(
        ThreadSpec::fifo(10),
        &[PerCpuGet, PerCpuLoad, Compute(100), PerCpuStore, PerCpuPut],
    );
    sim.run_until(1).unwrap();
    let h = sim.spawn(
        ThreadSpec::fifo(50).on(CpuMask::single(0)),
        &[
            SleepUntil(50),
            PerCpuGet,
            PerCpuLoad,
            Compute(10),
            PerCpuStore,
            PerCpuPut,
        ],
    );
    sim.run_until(END).unwrap();
    assert_eq!(sim.switched_in(a).first().map(|s| s.1), Some(0));
    assert!(
        sim.switched_in(a)
            .iter()
            .any(|&(at, cpu)| cpu == 1 && at == 1),
        "A migrated mid-hold"
    );
    assert!(sim.finished(a) && sim.finished(h));
    // H really contended: it got the slot only when A put it back.
    assert_eq!(result_of(&sim, h, PerCpuGet), (100, ok(None)));
    assert_eq!(
        sim.percpu.values(),
        &[2, 0],
        "both increments landed in CPU 0's slot"
    );
    for t in [a, h] {
        assert!(sim
            .results(t)
            .iter()
            .all(|r| !matches!(r.2, OpResult::LockFailed(_) | OpResult::Failed(_))));
    }
}

/// Control: the same interleaving on a plain per-CPU variable loses an update,
/// which shows the scenario above does exercise the race.
#[test]
fn plain_percpu_update_loses_an_increment_under_the_same_interleaving() {
    let mut sim = sim(2);
    sim.spawn(
        ThreadSpec::fifo(10),
        &[PlainPerCpuLoad, Compute(100), PlainPerCpuStore],
    );
    sim.run_until(1).unwrap();
    sim.spawn(
        ThreadSpec::fifo(50).on(CpuMask::single(0)),
        &[
            SleepUntil(50),
            PlainPerCpuLoad,
            Compute(10),
            PlainPerCpuStore,
        ],
    );
    sim.run_until(END).unwrap();
    assert_eq!(sim.plain_percpu, [1, 0]);
}

// --------------------------------------------------------------------- RCU

fn rcu_reader_preempted(guard: RcuGuardKind, locked_reader: bool) -> Sim {
    let mut cfg = SimConfig::new(2);
    cfg.rcu_guard = guard;
    let mut sim = Sim::new(cfg);
    let reader: &[_] = if locked_reader {
        &[
            RcuReadLock,
            RcuRead,
            Compute(200),
            RcuCheck,
            RcuReadUnlock,
            Mark("out"),
        ]
    } else {
        &[RcuPeekUnlocked, Compute(200), RcuCheck, Mark("out")]
    };
    let r = sim.spawn(ThreadSpec::fifo(10).on(CpuMask::single(0)), reader);
    // Preempts the reader inside its read side.
    sim.spawn(
        ThreadSpec::fifo(50).on(CpuMask::single(0)),
        &[SleepUntil(50), Compute(100)],
    );
    let w = sim.spawn(
        ThreadSpec::fifo(40).on(CpuMask::single(1)),
        &[
            SleepUntil(20),
            RcuWriteLock,
            Mark("write"),
            RcuPublish(7),
            RcuWriteUnlock,
        ],
    );
    sim.run_until(END).unwrap();
    assert!(sim.finished(r) && sim.finished(w));
    sim
}

fn rcu_seen(sim: &Sim) -> Vec<(VersionId, bool)> {
    sim.log()
        .iter()
        .filter_map(|r| match r.event {
            SimEvent::RcuSeen { version, live, .. } => Some((version, live)),
            _ => None,
        })
        .collect()
}

#[test]
fn rcu_readers_preempted_in_read_side_never_see_freed_versions() {
    for guard in [RcuGuardKind::RwSem, RcuGuardKind::Mutex] {
        let sim = rcu_reader_preempted(guard, true);
        assert_eq!(
            rcu_seen(&sim),
            [(VersionId(0), true), (VersionId(0), true)],
            "{guard:?}"
        );
        // The writer had to wait for the preempted reader (out at 350).
        let w = ThreadId(2);
        assert_eq!(sim.mark(w, "write"), sim.mark(ThreadId(0), "out"));
        assert_eq!(sim.rcu.freed(), &[VersionId(0)]);
        assert_eq!(sim.rcu.current_version(), VersionId(1));
    }
}

/// Control: a reader outside the read side does see its version freed.
#[test]
fn rcu_reader_without_the_lock_sees_a_freed_version() {
    let sim = rcu_reader_preempted(RcuGuardKind::RwSem, false);
    assert_eq!(rcu_seen(&sim), [(VersionId(0), false)]);
}

// --------------------------------------------------------------- scheduling

#[test]
fn round_robin_rotates_equal_priorities_each_slice() {
    let mut cfg = SimConfig::new(1);
    cfg.kernel.rr_slice = 100;
    let mut sim = Sim::new(cfg);
    let t: Vec<_> = (0..3)
        .map(|_| sim.spawn(ThreadSpec::round_robin(10), &[Compute(250), Mark("done")]))
        .collect();
    sim.run_until(END).unwrap();
    let starts = |i: usize| -> Vec<Nanos> { sim.switched_in(t[i]).iter().map(|s| s.0).collect() };
    assert_eq!(starts(0), [0, 300, 600]);
    assert_eq!(starts(1), [100, 400, 650]);
    assert_eq!(starts(2), [200, 500, 700]);
    assert_eq!(sim.mark(t[2], "done"), Some(750));
}

#[test]
fn fifo_equal_priorities_run_to_completion_in_order() {
    let mut cfg = SimConfig::new(1);
    cfg.kernel.rr_slice = 100;
    let mut sim = Sim::new(cfg);
    let t: Vec<_> = (0..3)
        .map(|_| sim.spawn(ThreadSpec::fifo(10), &[Compute(250), Mark("done")]))
        .collect();
    sim.run_until(END).unwrap();
    let done: Vec<_> = t.iter().map(|&t| sim.mark(t, "done").unwrap()).collect();
    assert_eq!(done, [250, 500, 750]);
}

#[test]
fn higher_priority_preempts_and_preempted_fifo_thread_keeps_its_place() {
    let mut sim = sim(1);
    let a = sim.spawn(ThreadSpec::fifo(10), &[Compute(100), Mark("done")]);
    let b = sim.spawn(ThreadSpec::fifo(10), &[Compute(100), Mark("done")]);
    let h = sim.spawn(
        ThreadSpec::fifo(20),
        &[SleepUntil(50), Compute(10), Mark("done")],
    );
    sim.run_until(END).unwrap();
    assert_eq!(sim.mark(h, "done"), Some(60));
    assert_eq!(
        sim.mark(a, "done"),
        Some(110),
        "preempted A resumes before B"
    );
    assert_eq!(sim.mark(b, "done"), Some(210));
}

#[test]
fn affinity_is_respected_even_with_an_idle_cpu() {
    let mut sim = sim(2);
    let pinned: Vec<_> = (0..2)
        .map(|_| sim.spawn(ThreadSpec::fifo(10).on(CpuMask::single(1)), &[Compute(100)]))
        .collect();
    sim.run_until(END).unwrap();
    for &t in &pinned {
        assert!(sim.switched_in(t).iter().all(|&(_, cpu)| cpu == 1));
    }
    assert_eq!(
        sim.switched_in(pinned[1]),
        [(100, 1)],
        "waits rather than use CPU 0"
    );
}

#[test]
fn set_affinity_migrates_a_running_thread() {
    let mut sim = sim(2);
    let t = sim.spawn(ThreadSpec::fifo(10), &[Compute(100)]);
    sim.spawn(
        ThreadSpec::fifo(20).on(CpuMask::single(1)),
        &[
            SleepUntil(40),
            SetAffinity(t, CpuMask::single(1)),
            Compute(10),
        ],
    );
    sim.run_until(END).unwrap();
    assert_eq!(sim.switched_in(t), [(0, 0), (50, 1)]);
}

#[test]
fn cross_cpu_wakeup_sends_an_ipi() {
    let mut sim = sim(2);
    let c = sim.kernel.completion_create();
    let busy = sim.spawn(ThreadSpec::fifo(5).on(CpuMask::single(1)), &[Compute(1000)]);
    let waiter = sim.spawn(
        ThreadSpec::fifo(50).on(CpuMask::single(1)),
        &[Wait(c), Compute(10)],
    );
    sim.spawn(
        ThreadSpec::fifo(10).on(CpuMask::single(0)),
        &[SleepUntil(100), Complete(c)],
    );
    sim.run_until(END).unwrap();
    assert!(sim.ipis().contains(&(100, 0, 1)), "ipis: {:?}", sim.ipis());
    assert!(sim.switched_in(waiter).contains(&(100, 1)));
    assert_eq!(sim.switched_in(busy), [(0, 1), (110, 1)]);
}

#[test]
fn same_cpu_wakeup_needs_no_ipi() {
    let mut sim = sim(2);
    let c = sim.kernel.completion_create();
    sim.spawn(ThreadSpec::fifo(50).on(CpuMask::single(0)), &[Wait(c)]);
    sim.spawn(
        ThreadSpec::fifo(10).on(CpuMask::single(0)),
        &[SleepUntil(100), Complete(c)],
    );
    sim.run_until(END).unwrap();
    assert!(sim.ipis().iter().all(|&(at, _, _)| at != 100));
}

#[test]
fn sleep_until_is_absolute() {
    let mut sim = sim(1);
    let t = sim.spawn(
        ThreadSpec::fifo(10),
        &[
            Compute(30),
            SleepUntil(100),
            Mark("a"),
            SleepUntil(50),
            Mark("b"),
        ],
    );
    sim.run_until(END).unwrap();
    assert_eq!(sim.mark(t, "a"), Some(100));
    assert_eq!(
        sim.mark(t, "b"),
        Some(100),
        "a past deadline returns at once"
    );
}

// -------------------------------------------------------------------- kmap

#[test]
fn kmap_reservation_sleeps_until_a_slot_frees() {
    let mut cfg = SimConfig::new(2);
    cfg.kmap_slots = 1;
    let mut sim = Sim::new(cfg);
    let t: Vec<_> = (0..3u64)
        .map(|f| {
            sim.spawn(
                ThreadSpec::fifo(10),
                &[Kmap(0x1000 * (f + 1)), Compute(100), Kunmap],
            )
        })
        .collect();
    sim.run_until(END).unwrap();
    assert!(!sim.mapper.double_mapped);
    assert_eq!(sim.mapper.maps, 3);
    assert!(sim.mapper.table.is_empty());
    let got: Vec<Nanos> = t
        .iter()
        .map(|&t| result_of(&sim, t, sim.results(t)[0].1).0)
        .collect();
    assert_eq!(got, [0, 100, 200]);
    assert_eq!(sim.kmap.slots_in_use(), 0);
}

#[test]
fn priorities_are_range_checked() {
    assert_eq!(Priority::MAX.get(), 99);
    assert!(std::panic::catch_unwind(|| Priority::new(100)).is_err());
}

#[test]
fn overlong_chain_is_refused_and_unwinds() {
    use guest_rt::MAX_CHAIN_DEPTH;
    let n = MAX_CHAIN_DEPTH + 2;
    let mut sim = sim(1);
    let m: Vec<_> = (0..n).map(|_| sim.kernel.mutex_create()).collect();
    let mut threads = vec![sim.spawn(
        ThreadSpec::fifo(1),
        &[Lock(m[0]), SleepUntil(1000), Compute(10), Unlock(m[0])],
    )];
    for i in 1..n {
        let script = [
            Lock(m[i]),
            SleepUntil(10 * i as Nanos),
            Lock(m[i - 1]),
            Unlock(m[i - 1]),
            Unlock(m[i]),
        ];
        threads.push(sim.spawn(ThreadSpec::fifo(1 + i as u8), &script));
    }
    sim.run_until(500).unwrap();
    // The longest allowed chain propagates all the way down.
    assert_eq!(eff(&sim, threads[0]), MAX_CHAIN_DEPTH as u8 + 1);
    let refused = threads[MAX_CHAIN_DEPTH + 1];
    assert_eq!(
        result_of(&sim, refused, Lock(m[MAX_CHAIN_DEPTH])).1,
        OpResult::LockFailed(LockError::ChainTooDeep)
    );
    sim.run_until(END).unwrap();
    assert!(threads.iter().all(|&t| sim.finished(t)));
    assert!(threads.iter().all(
        |&t| sim.kernel.thread(t).effective_priority() == sim.kernel.thread(t).base_priority()
    ));
}

#[test]
fn try_lock_and_unlock_by_non_owner() {
    let mut sim = sim(2);
    let m = sim.kernel.mutex_create();
    sim.spawn(ThreadSpec::fifo(10), &[Lock(m), Compute(100), Unlock(m)]);
    let t = sim.spawn(
        ThreadSpec::fifo(10),
        &[
            SleepUntil(10),
            TryLock(m),
            Unlock(m),
            SleepUntil(200),
            TryLock(m),
            Unlock(m),
        ],
    );
    sim.run_until(END).unwrap();
    let r: Vec<OpResult> = sim.results(t).into_iter().map(|r| r.2).collect();
    assert_eq!(
        r[1..],
        [
            OpResult::Flag(false),
            OpResult::LockFailed(LockError::NotOwner),
            ok(None),
            OpResult::Flag(true),
            OpResult::Flag(true),
        ]
    );
}

/// The same over-long chain built from the top down: each new wait adds a
/// short edge below an already long chain of waiters. It must still be
/// refused, or a later priority walk would stop short of the last owner (the
/// simulator's invariant check would catch the stale priority).
#[test]
fn overlong_chain_built_top_down_is_refused() {
    use guest_rt::MAX_CHAIN_DEPTH;
    let n = MAX_CHAIN_DEPTH + 2;
    let mut sim = sim(1);
    let m: Vec<_> = (0..n).map(|_| sim.kernel.mutex_create()).collect();
    let mut threads = vec![sim.spawn(
        ThreadSpec::fifo(1),
        &[Lock(m[0]), SleepUntil(1000), Compute(10), Unlock(m[0])],
    )];
    for i in 1..n {
        let script = [
            Lock(m[i]),
            SleepUntil(10 * (n - i) as Nanos),
            Lock(m[i - 1]),
            Unlock(m[i - 1]),
            Unlock(m[i]),
        ];
        threads.push(sim.spawn(ThreadSpec::fifo(1 + i as u8), &script));
    }
    sim.run_until(500).unwrap();
    assert_eq!(
        result_of(&sim, threads[1], Lock(m[0])).1,
        OpResult::LockFailed(LockError::ChainTooDeep)
    );
    // Every other wait was legal and was granted in the end.
    for i in 2..n {
        assert_eq!(result_of(&sim, threads[i], Lock(m[i - 1])).1, ok(None));
    }
    sim.run_until(END).unwrap();
    assert!(threads.iter().all(|&t| sim.finished(t)));
}
