//! Property tests: random scripts drive the real kernel through the
//! simulator, which checks every kernel invariant after every step
//! (priority inheritance exactness, wait-queue order, no lost wakeups,
//! run-queue consistency, and that no runnable thread waits while a CPU it may
//! use runs something less urgent).

use guest_rt::sim::{Op, Sim, SimConfig};
use guest_rt::{CpuMask, Nanos, Policy, Priority, ThreadId, ThreadSpec, ThreadState};
use proptest::prelude::*;

/// An operation with resources named by small indices, bound to real ids
/// once the simulator exists.
#[derive(Clone, Copy, Debug)]
enum Step {
    Compute(Nanos),
    Lock(usize),
    LockTimeout(usize, Nanos),
    LockInterruptible(usize),
    TryLock(usize),
    Unlock(usize),
    Wait(usize),
    WaitTimeout(usize, Nanos),
    WaitInterruptible(usize),
    Complete(usize),
    CompleteAll(usize),
    Reinit(usize),
    Down,
    DownTimeout(Nanos),
    Up,
    SleepFor(Nanos),
    Yield,
    SetPriority(usize, u8),
    Interrupt(usize),
    SetAffinity(usize, u64),
    /// Lock a, work, lock b, work, unlock both: builds inheritance chains.
    Nested(usize, usize, Nanos),
}

const MUTEXES: usize = 3;
const COMPLETIONS: usize = 2;

fn step() -> impl Strategy<Value = Step> {
    let m = 0..MUTEXES;
    let c = 0..COMPLETIONS;
    let t = 1u64..80;
    prop_oneof![
        3 => t.clone().prop_map(Step::Compute),
        4 => m.clone().prop_map(Step::Lock),
        2 => (m.clone(), t.clone()).prop_map(|(m, t)| Step::LockTimeout(m, t)),
        1 => m.clone().prop_map(Step::LockInterruptible),
        1 => m.clone().prop_map(Step::TryLock),
        4 => m.prop_map(Step::Unlock),
        1 => c.clone().prop_map(Step::Wait),
        1 => (c.clone(), t.clone()).prop_map(|(c, t)| Step::WaitTimeout(c, t)),
        1 => c.clone().prop_map(Step::WaitInterruptible),
        2 => c.clone().prop_map(Step::Complete),
        1 => c.clone().prop_map(Step::CompleteAll),
        1 => c.prop_map(Step::Reinit),
        1 => Just(Step::Down),
        1 => t.clone().prop_map(Step::DownTimeout),
        1 => Just(Step::Up),
        2 => t.prop_map(Step::SleepFor),
        1 => Just(Step::Yield),
        2 => (0usize..8, 1u8..7).prop_map(|(t, p)| Step::SetPriority(t, p)),
        1 => (0usize..8).prop_map(Step::Interrupt),
        1 => (0usize..8, 1u64..16).prop_map(|(t, a)| Step::SetAffinity(t, a)),
        4 => (0..MUTEXES, 0..MUTEXES, 1u64..80).prop_map(|(a, b, t)| Step::Nested(a, b, t)),
    ]
}

#[derive(Clone, Debug)]
struct ThreadPlan {
    prio: u8,
    round_robin: bool,
    affinity: u64,
    steps: Vec<Step>,
}

fn thread_plan() -> impl Strategy<Value = ThreadPlan> {
    (
        1u8..7,
        any::<bool>(),
        1u64..16,
        prop::collection::vec(step(), 1..14),
    )
        .prop_map(|(prio, round_robin, affinity, steps)| ThreadPlan {
            prio,
            round_robin,
            affinity,
            steps,
        })
}

fn mask(bits: u64, cpus: usize) -> CpuMask {
    let m = CpuMask::from_bits(bits).intersect(CpuMask::first(cpus));
    if m.is_empty() {
        CpuMask::first(cpus)
    } else {
        m
    }
}

fn run_random(cpus: usize, inheritance: bool, plans: &[ThreadPlan]) -> Result<Sim, String> {
    let mut cfg = SimConfig::new(cpus);
    cfg.kernel.rr_slice = 50;
    cfg.kernel.priority_inheritance = inheritance;
    cfg.check_invariants = true;
    let mut sim = Sim::new(cfg);
    let m: Vec<_> = (0..MUTEXES).map(|_| sim.kernel.mutex_create()).collect();
    let c: Vec<_> = (0..COMPLETIONS)
        .map(|_| sim.kernel.completion_create())
        .collect();
    let s = sim.kernel.semaphore_create(1);
    let n = plans.len();
    let tid = |i: usize| ThreadId((i % n) as u32);
    let single_op = |st: Step| match st {
        Step::Compute(t) => Op::Compute(t),
        Step::Lock(i) => Op::Lock(m[i]),
        Step::LockTimeout(i, t) => Op::LockTimeout(m[i], t),
        Step::LockInterruptible(i) => Op::LockInterruptible(m[i]),
        Step::TryLock(i) => Op::TryLock(m[i]),
        Step::Unlock(i) => Op::Unlock(m[i]),
        Step::Wait(i) => Op::Wait(c[i]),
        Step::WaitTimeout(i, t) => Op::WaitTimeout(c[i], t),
        Step::WaitInterruptible(i) => Op::WaitInterruptible(c[i]),
        Step::Complete(i) => Op::Complete(c[i]),
        Step::CompleteAll(i) => Op::CompleteAll(c[i]),
        Step::Reinit(i) => Op::Reinit(c[i]),
        Step::Down => Op::Down(s),
        Step::DownTimeout(t) => Op::DownTimeout(s, t),
        Step::Up => Op::Up(s),
        Step::SleepFor(t) => Op::SleepFor(t),
        Step::Yield => Op::Yield,
        Step::SetPriority(t, p) => Op::SetPriority(tid(t), p),
        Step::Interrupt(t) => Op::Interrupt(tid(t)),
        Step::SetAffinity(t, a) => Op::SetAffinity(tid(t), mask(a, cpus)),
        Step::Nested(..) => unreachable!("expanded by the caller"),
    };
    for plan in plans {
        let script: Vec<Op> = plan
            .steps
            .iter()
            .flat_map(|&st| match st {
                Step::Nested(a, b, t) => vec![
                    Op::Lock(m[a]),
                    Op::Compute(t),
                    Op::Lock(m[b]),
                    Op::Compute(t),
                    Op::Unlock(m[b]),
                    Op::Unlock(m[a]),
                ],
                other => vec![single_op(other)],
            })
            .collect();
        let spec = ThreadSpec {
            priority: Priority::new(plan.prio),
            policy: if plan.round_robin {
                Policy::RoundRobin
            } else {
                Policy::Fifo
            },
            affinity: mask(plan.affinity, cpus),
        };
        sim.spawn(spec, &script);
    }
    sim.run_until(200_000)?;
    Ok(sim)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Every invariant holds after every step of random scripts.
    #[test]
    fn invariants_hold_after_every_step(
        cpus in 1usize..4,
        plans in prop::collection::vec(thread_plan(), 1..6),
    ) {
        let sim = run_random(cpus, true, &plans).map_err(TestCaseError::fail)?;
        // Liveness at the end: nothing is left runnable but unscheduled.
        for t in sim.kernel.threads() {
            prop_assert_ne!(t.state(), ThreadState::Runnable, "{:?}", t.id());
        }
    }

    /// The scheduling and wait-queue invariants do not depend on inheritance.
    #[test]
    fn invariants_hold_without_inheritance(
        cpus in 1usize..4,
        plans in prop::collection::vec(thread_plan(), 1..6),
    ) {
        run_random(cpus, false, &plans).map_err(TestCaseError::fail)?;
    }

    /// Waiters get a contended rt-mutex in priority order, FIFO among equal
    /// priorities (strict handoff, no stealing).
    #[test]
    fn mutex_grants_in_priority_then_arrival_order(prios in prop::collection::vec(1u8..4, 2..6)) {
        let k = prios.len();
        let mut sim = Sim::new(SimConfig::new(k + 1));
        let m = sim.kernel.mutex_create();
        sim.spawn(
            ThreadSpec::fifo(0).on(CpuMask::single(k)),
            &[Op::Lock(m), Op::Compute(1000), Op::Unlock(m)],
        );
        let waiters: Vec<ThreadId> = prios
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                let script = [
                    Op::SleepUntil(10 * (i as Nanos + 1)),
                    Op::Lock(m),
                    Op::Mark("got"),
                    Op::Compute(5),
                    Op::Unlock(m),
                ];
                sim.spawn(ThreadSpec::fifo(p).on(CpuMask::single(i)), &script)
            })
            .collect();
        sim.run_until(100_000).map_err(TestCaseError::fail)?;
        let mut got: Vec<(Nanos, usize)> = waiters
            .iter()
            .enumerate()
            .map(|(i, &t)| (sim.mark(t, "got").expect("every waiter gets the lock"), i))
            .collect();
        got.sort();
        let order: Vec<usize> = got.into_iter().map(|(_, i)| i).collect();
        let mut expected: Vec<usize> = (0..k).collect();
        // Stable sort keeps arrival order among equal priorities.
        expected.sort_by_key(|&i| std::cmp::Reverse(prios[i]));
        prop_assert_eq!(order, expected);
    }

    /// Locked per-CPU counters lose no increment, whatever the preemption and
    /// migration pattern.
    #[test]
    fn percpu_locked_loses_no_update(
        cpus in 1usize..4,
        threads in prop::collection::vec((1u8..6, 1u64..16, 1u64..60, 0u64..40, 1usize..4), 1..6),
    ) {
        let mut sim = Sim::new(SimConfig::new(cpus));
        let mut expected = 0;
        for &(prio, affinity, work, pause, reps) in &threads {
            let mut script = Vec::new();
            for _ in 0..reps {
                script.extend([
                    Op::PerCpuGet,
                    Op::PerCpuLoad,
                    Op::Compute(work),
                    Op::PerCpuStore,
                    Op::PerCpuPut,
                    Op::SleepFor(pause),
                ]);
            }
            expected += reps as u64;
            sim.spawn(ThreadSpec::fifo(prio).on(mask(affinity, cpus)), &script);
        }
        sim.run_until(1_000_000).map_err(TestCaseError::fail)?;
        prop_assert_eq!(sim.percpu.values().iter().sum::<u64>(), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// On one CPU, FIFO threads released together finish in priority order,
    /// and in release order among equal priorities.
    #[test]
    fn fifo_run_order_is_priority_then_release(
        threads in prop::collection::vec((1u8..4, 1u64..100), 1..8),
    ) {
        let mut sim = Sim::new(SimConfig::new(1));
        let ids: Vec<ThreadId> = threads
            .iter()
            .map(|&(p, work)| sim.spawn(ThreadSpec::fifo(p), &[Op::Compute(work), Op::Mark("done")]))
            .collect();
        sim.run_until(1_000_000).map_err(TestCaseError::fail)?;
        let mut done: Vec<(Nanos, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, &t)| (sim.mark(t, "done").expect("finished"), i))
            .collect();
        done.sort();
        let order: Vec<usize> = done.into_iter().map(|(_, i)| i).collect();
        let mut expected: Vec<usize> = (0..threads.len()).collect();
        expected.sort_by_key(|&i| std::cmp::Reverse(threads[i].0));
        prop_assert_eq!(order, expected);
    }

    /// Every `complete` is accounted for: it either woke a waiter or is still
    /// banked. Timed waiters may give up, but no event is ever lost.
    #[test]
    fn completions_lose_no_wakeup(
        cpus in 1usize..4,
        waiters in prop::collection::vec((1u8..6, 0u64..100, prop::option::of(1u64..200)), 1..7),
        completer in (1u8..6, prop::collection::vec(0u64..60, 7)),
    ) {
        let mut sim = Sim::new(SimConfig::new(cpus));
        let c = sim.kernel.completion_create();
        let ids: Vec<ThreadId> = waiters
            .iter()
            .map(|&(p, start, timeout)| {
                let wait = match timeout {
                    Some(t) => Op::WaitTimeout(c, t),
                    None => Op::Wait(c),
                };
                sim.spawn(ThreadSpec::fifo(p), &[Op::SleepFor(start), wait])
            })
            .collect();
        let mut script = Vec::new();
        for &gap in &completer.1[..waiters.len()] {
            script.extend([Op::SleepFor(gap), Op::Complete(c)]);
        }
        sim.spawn(ThreadSpec::fifo(completer.0), &script);
        sim.run_until(1_000_000).map_err(TestCaseError::fail)?;
        let mut woken = 0;
        for (&t, w) in ids.iter().zip(&waiters) {
            prop_assert!(sim.finished(t), "waiter {:?} stuck", t);
            let last = sim.results(t).last().map(|r| r.2);
            match last {
                Some(guest_rt::sim::OpResult::Done(guest_rt::WaitOutcome::Success { .. })) => woken += 1,
                Some(guest_rt::sim::OpResult::Done(guest_rt::WaitOutcome::TimedOut)) => {
                    prop_assert!(w.2.is_some(), "an untimed wait timed out")
                }
                other => prop_assert!(false, "unexpected {:?}", other),
            }
        }
        let mut banked = 0;
        while sim.kernel.try_wait_for_completion(c) {
            banked += 1;
        }
        prop_assert_eq!(woken + banked, waiters.len());
    }

    /// The simulator is deterministic: the same scripts give the same log.
    #[test]
    fn simulation_is_deterministic(
        cpus in 1usize..4,
        plans in prop::collection::vec(thread_plan(), 1..5),
    ) {
        let a = run_random(cpus, true, &plans).map_err(TestCaseError::fail)?;
        let b = run_random(cpus, true, &plans).map_err(TestCaseError::fail)?;
        prop_assert_eq!(a.log(), b.log());
    }
}
