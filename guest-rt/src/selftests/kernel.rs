//! The `kernel` self-test (`rt.selftest=kernel`): the simulator's scenarios again, on real
//! threads on both RT vCPUs, each printing one PASS/FAIL line, then a summary.
//!
//! Owns the scenarios' scripts and checks only; everything they exercise is the portable
//! kernel driven by [`crate::arch::threads`]. Checks are about outcomes (who got a lock first,
//! which priority an owner ran at, how a wait ended), never about durations, and every
//! wait for another thread or vCPU is for an event (a completion, a flag, a thread's state
//! read inside a kernel entry), never a spin of some length, so a slow or loaded host
//! cannot make them fail; a time bound ([`STUCK_MS`]) only ends a run that already failed.
//! A driver thread (priority 90, vCPU 1) sets each scenario up and inspects the kernel
//! between steps.

use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use guest_rt::sync::percpu_locked::PerCpuLocked;
use guest_rt::sync::rcu::{RcuCell, RcuGuard};
use guest_rt::{
    BlockedOn, CompletionId, CpuMask, Kernel, LockError, MutexId, Priority, ThreadId, ThreadSpec,
    ThreadState, WaitOutcome, WaitStatus,
};
use spin::Mutex;

use crate::arch::console::print;
use crate::arch::threads::{self, spawn, wait, with};
use crate::arch::timer;

type Outcome = Result<(), String>;

macro_rules! check {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

const MS: u64 = 1_000_000;
/// How long a step may take before the scenario counts as stuck (generous: QEMU under load).
const STUCK_MS: u64 = 5_000;
/// Priority of the driver thread.
const DRIVER: u8 = 90;

fn cpu(n: usize) -> CpuMask {
    CpuMask::single(n)
}

fn both() -> CpuMask {
    CpuMask::first(2)
}

fn sleep_ms(ms: u64) {
    let until = timer::now_ns() + ms * MS;
    wait(|k, c| k.sleep_until(c, until));
}

fn mutex() -> MutexId {
    with(|k, _| k.mutex_create())
}

fn completion() -> CompletionId {
    with(|k, _| k.completion_create())
}

fn complete(c: CompletionId) {
    with(|k, cpu| k.complete(cpu, c));
}

fn wait_for(c: CompletionId) -> WaitOutcome {
    wait(|k, cpu| k.wait_for_completion(cpu, c))
}

/// Runs a lock call, folding a refusal into the result.
fn locking(
    op: impl FnOnce(&mut Kernel, usize) -> Result<WaitStatus, LockError>,
) -> Result<WaitOutcome, LockError> {
    let mut refused = None;
    let outcome = wait(|k, cpu| {
        op(k, cpu).unwrap_or_else(|e| {
            refused = Some(e);
            WaitStatus::Ready(WaitOutcome::Interrupted)
        })
    });
    refused.map_or(Ok(outcome), Err)
}

fn lock(m: MutexId) -> Result<WaitOutcome, LockError> {
    locking(|k, cpu| k.lock(cpu, m))
}

fn unlock(m: MutexId) -> Result<(), LockError> {
    with(|k, cpu| k.unlock(cpu, m))
}

fn my_priority() -> u8 {
    with(|k, cpu| {
        let me = k.current(cpu).expect("a thread");
        k.thread(me).effective_priority().get()
    })
}

fn eff(t: ThreadId) -> u8 {
    with(|k, _| k.thread(t).effective_priority().get())
}

/// Polls (sleeping 1 ms between looks) until `cond` holds; false if it never does.
fn wait_until(cond: impl Fn(&Kernel) -> bool) -> bool {
    let give_up = timer::now_ns() + STUCK_MS * MS;
    loop {
        if with(|k, _| cond(k)) {
            return true;
        }
        if timer::now_ns() > give_up {
            return false;
        }
        sleep_ms(1);
    }
}

fn blocked_on_mutex(k: &Kernel, t: ThreadId, m: MutexId) -> bool {
    k.thread(t).state() == ThreadState::Blocked(BlockedOn::Mutex(m))
}

fn exited(k: &Kernel, t: ThreadId) -> bool {
    k.thread(t).state() == ThreadState::Exited
}

/// Numbers recorded by a scenario's threads, plus an order stamp per event.
#[derive(Default)]
struct Shared {
    seq: AtomicU32,
    order: [AtomicU32; 8],
    value: [AtomicU64; 8],
}

impl Shared {
    fn new() -> Arc<Shared> {
        Arc::new(Shared::default())
    }
    /// Event `i` happened now (stamps start at 1; 0 = never).
    fn mark(&self, i: usize) {
        let stamp = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        self.order[i].store(stamp, Ordering::Release);
    }
    fn stamp(&self, i: usize) -> u32 {
        self.order[i].load(Ordering::Acquire)
    }
    fn set(&self, i: usize, v: u64) {
        self.value[i].store(v, Ordering::Release);
    }
    fn get(&self, i: usize) -> u64 {
        self.value[i].load(Ordering::Acquire)
    }
}

/// How a wait or lock ended, as a number a thread can record.
fn code(r: Result<WaitOutcome, LockError>) -> u64 {
    match r {
        Ok(WaitOutcome::Success { .. }) => 1,
        Ok(WaitOutcome::TimedOut) => 2,
        Ok(WaitOutcome::Interrupted) => 3,
        Err(LockError::Deadlock) => 4,
        Err(_) => 5,
    }
}

/// Waits until every thread in `threads` has exited.
fn join(threads: &[ThreadId]) -> Outcome {
    let all = threads.to_vec();
    check!(
        wait_until(move |k| all.iter().all(|&t| exited(k, t))),
        "threads {threads:?} did not all finish"
    );
    Ok(())
}

// ------------------------------------------------------------------- scenarios

/// Low (10) holds M; medium (30) hogs the same vCPU until high has M; high (50) wants M.
/// Low finishes its critical section only once it sees high's request, which it can only
/// do if it runs while medium is runnable: with inheritance it runs at 50 and high gets M
/// while medium still runs; without, high would wait for medium to give up.
fn inversion() -> Outcome {
    let (m, locked, s) = (mutex(), completion(), Shared::new());
    let s1 = s.clone();
    let low = spawn(ThreadSpec::fifo(10).on(cpu(0)), move || {
        let _ = lock(m);
        complete(locked);
        while s1.get(2) == 0 {
            core::hint::spin_loop();
        }
        s1.set(0, u64::from(my_priority()));
        let _ = unlock(m);
    });
    wait_for(locked);
    let s2 = s.clone();
    let medium = spawn(ThreadSpec::fifo(30).on(cpu(0)), move || {
        s2.set(3, 1);
        // Hog vCPU 0 until high got M (an event, however late the driver spawns high);
        // the bound only ends a failed run, where low never runs and high never gets M.
        let give_up = timer::now_ns() + STUCK_MS * MS;
        while s2.stamp(0) == 0 && timer::now_ns() < give_up {
            core::hint::spin_loop();
        }
        s2.mark(1);
    });
    let s0 = s.clone();
    check!(wait_until(move |_| s0.get(3) == 1), "medium never ran");
    let s3 = s.clone();
    let high = spawn(ThreadSpec::fifo(50).on(cpu(0)), move || {
        s3.set(2, 1);
        let r = lock(m);
        s3.mark(0);
        s3.set(1, code(r));
        let _ = unlock(m);
    });
    join(&[low, medium, high])?;
    check!(s.get(1) == 1, "high's lock failed ({})", s.get(1));
    check!(
        s.stamp(0) < s.stamp(1),
        "high got M only after medium finished: the inversion was unbounded"
    );
    check!(
        s.get(0) == 50,
        "low ran its critical section at priority {} instead of inheriting 50",
        s.get(0)
    );
    Ok(())
}

/// `locks` locks, owners alternating between the vCPUs: owner i holds lock i and waits for
/// lock i-1; a top thread (60) waits for the last lock. Every owner must run at 60, and
/// drop back to its own priority once the chain unwinds.
fn chain(locks: usize) -> Outcome {
    let m: Vec<MutexId> = (0..locks).map(|_| mutex()).collect();
    let (go, ready, s) = (completion(), completion(), Shared::new());
    let mut owners = Vec::new();
    for i in 0..locks {
        let (locks_of, s) = (m.clone(), s.clone());
        let base = 10 + 10 * i as u8;
        owners.push(spawn(ThreadSpec::fifo(base).on(cpu(i % 2)), move || {
            let m = locks_of;
            let _ = lock(m[i]);
            complete(ready);
            if i == 0 {
                wait_for(go);
            } else {
                let _ = lock(m[i - 1]);
                let _ = unlock(m[i - 1]);
            }
            let _ = unlock(m[i]);
            s.set(i, u64::from(my_priority()));
        }));
        wait_for(ready);
        if i > 0 {
            let (o, l) = (owners[i], m[i - 1]);
            check!(
                wait_until(move |k| blocked_on_mutex(k, o, l)),
                "owner {i} never blocked"
            );
        }
    }
    let last = m[locks - 1];
    let top = spawn(ThreadSpec::fifo(60).on(cpu(locks % 2)), move || {
        let _ = lock(last);
        let _ = unlock(last);
    });
    let o = owners.clone();
    let boosted = wait_until(move |k| {
        o.iter()
            .all(|&t| k.thread(t).effective_priority().get() == 60)
    });
    let seen: Vec<u8> = owners.iter().map(|&t| eff(t)).collect();
    complete(go);
    let mut all = owners.clone();
    all.push(top);
    join(&all)?;
    check!(boosted, "owners ran at {seen:?}, not all at 60");
    for i in 0..locks {
        check!(
            s.get(i) == 10 + 10 * i as u64,
            "owner {i} kept priority {} after the chain unwound",
            s.get(i)
        );
    }
    Ok(())
}

/// A lock held by L (10, vCPU 0) until `go` completes, and W (30, vCPU 1) blocked on it.
struct Owned {
    m: MutexId,
    go: CompletionId,
    low: ThreadId,
    w: ThreadId,
}

fn owned_with_waiter() -> Result<Owned, String> {
    let (m, go, ready) = (mutex(), completion(), completion());
    let low = spawn(ThreadSpec::fifo(10).on(cpu(0)), move || {
        let _ = lock(m);
        complete(ready);
        wait_for(go);
        let _ = unlock(m);
    });
    wait_for(ready);
    let w = spawn(ThreadSpec::fifo(30).on(cpu(1)), move || {
        let _ = lock(m);
        let _ = unlock(m);
    });
    check!(
        wait_until(move |k| blocked_on_mutex(k, w, m)),
        "W never blocked"
    );
    Ok(Owned { m, go, low, w })
}

/// Owner L (10) holds M; W (30) and H (50) wait; H leaves by timeout or interruption. L
/// must drop to 30 (W still waits), neither to 10 nor stay at 50.
fn waiter_leaves(interrupt: bool) -> Outcome {
    let (Owned { m, go, low, w }, s) = (owned_with_waiter()?, Shared::new());
    let s1 = s.clone();
    let high = spawn(ThreadSpec::fifo(50).on(cpu(1)), move || {
        // L's priority is read in the very entry that queues H on M: a driver looking
        // later could miss the boost if H's timeout expired first.
        let r = locking(|k, cpu| {
            let r = if interrupt {
                k.lock_interruptible(cpu, m)
            } else {
                k.lock_timeout(cpu, m, 200 * MS)
            };
            s1.set(5, u64::from(k.thread(low).effective_priority().get()));
            r
        });
        s1.set(0, code(r));
        if r.is_ok_and(|o| matches!(o, WaitOutcome::Success { .. })) {
            let _ = unlock(m);
        }
    });
    if interrupt {
        // H waits until interrupted: interrupt it once it is queued on M.
        check!(
            wait_until(move |k| blocked_on_mutex(k, high, m)),
            "H never blocked"
        );
        with(|k, cpu| k.interrupt(cpu, high));
    }
    check!(wait_until(move |k| exited(k, high)), "H never gave up");
    let after = eff(low);
    complete(go);
    join(&[low, w])?;
    check!(
        s.get(5) == 50,
        "L ran at {} while H waited, not boosted to 50",
        s.get(5)
    );
    let expected = if interrupt { 3 } else { 2 };
    check!(
        s.get(0) == expected,
        "H's wait ended with code {} instead of {expected}",
        s.get(0)
    );
    check!(after == 30, "L runs at {after} after H left, not 30");
    Ok(())
}

/// A blocked waiter's priority changes: the owner follows it up and down.
fn priority_change() -> Outcome {
    let Owned { go, low, w, .. } = owned_with_waiter()?;
    let first = eff(low);
    with(|k, cpu| k.set_priority(cpu, w, Priority::new(60)));
    let raised = eff(low);
    with(|k, cpu| k.set_priority(cpu, w, Priority::new(20)));
    let lowered = eff(low);
    complete(go);
    join(&[low, w])?;
    check!(
        (first, raised, lowered) == (30, 60, 20),
        "owner ran at {first}, {raised}, {lowered} (expected 30, 60, 20)"
    );
    Ok(())
}

/// Locking a held lock again is refused, and the lock still works.
fn self_deadlock() -> Outcome {
    let (m, s) = (mutex(), Shared::new());
    let s1 = s.clone();
    let t = spawn(ThreadSpec::fifo(20).on(cpu(0)), move || {
        s1.set(0, code(lock(m)));
        s1.set(1, code(lock(m)));
        s1.set(2, u64::from(unlock(m).is_ok()));
    });
    join(&[t])?;
    check!(
        (s.get(0), s.get(1), s.get(2)) == (1, 4, 1),
        "lock, relock, unlock gave {}, {}, {} (expected 1, 4 = deadlock, 1)",
        s.get(0),
        s.get(1),
        s.get(2)
    );
    check!(
        with(move |k, _| k.mutex(m).waiters().is_empty() && k.mutex_owner(m).is_none()),
        "the lock was left held or queued"
    );
    Ok(())
}

/// T1 (30) holds A, T2 (20) holds B and waits for A; T1 then asks for B: refused as a
/// deadlock, with no boost left on T2 and nobody queued on B.
fn abba() -> Outcome {
    let (a, b) = (mutex(), mutex());
    let (go, ready, s) = (completion(), completion(), Shared::new());
    let t2_id = Arc::new(AtomicU32::new(u32::MAX));
    let (s1, id) = (s.clone(), t2_id.clone());
    let t1 = spawn(ThreadSpec::fifo(30).on(cpu(0)), move || {
        let _ = lock(a);
        complete(ready);
        wait_for(go);
        s1.set(0, code(lock(b)));
        let t2 = ThreadId(id.load(Ordering::Acquire));
        s1.set(1, u64::from(eff(t2)));
        s1.set(
            2,
            u64::from(with(move |k, _| k.mutex(b).waiters().is_empty())),
        );
        let _ = unlock(a);
    });
    wait_for(ready);
    let t2 = spawn(ThreadSpec::fifo(20).on(cpu(1)), move || {
        let _ = lock(b);
        let _ = lock(a);
        let _ = unlock(a);
        let _ = unlock(b);
    });
    t2_id.store(t2.0, Ordering::Release);
    check!(
        wait_until(move |k| blocked_on_mutex(k, t2, a)),
        "T2 never blocked on A"
    );
    complete(go);
    join(&[t1, t2])?;
    check!(
        s.get(0) == 4,
        "T1's lock of B gave code {}, not deadlock",
        s.get(0)
    );
    check!(s.get(1) == 20, "T2 was left at priority {}", s.get(1));
    check!(s.get(2) == 1, "a waiter stayed queued on B");
    Ok(())
}

/// Completions: a completion before the wait, one wake-up per `complete` in priority order,
/// `complete_all` until reinit, counting.
fn completion_basics() -> Outcome {
    let c = completion();
    complete(c);
    let early = with(move |k, cpu| k.wait_for_completion(cpu, c));
    check!(
        early.is_success(),
        "a completed completion blocked: {early:?}"
    );
    for _ in 0..3 {
        complete(c);
    }
    let counted: Vec<bool> = (0..4)
        .map(|_| with(move |k, _| k.try_wait_for_completion(c)))
        .collect();
    check!(
        counted == [true, true, true, false],
        "3 completions allowed {counted:?}"
    );
    // Priority order: two waiters, woken one per complete, the more urgent first.
    let s = Shared::new();
    let mut waiters = Vec::new();
    for (i, prio) in [(0usize, 20u8), (1, 40)] {
        let s = s.clone();
        waiters.push(spawn(ThreadSpec::fifo(prio).on(cpu(0)), move || {
            wait_for(c);
            s.mark(i);
        }));
    }
    let w = waiters.clone();
    check!(
        wait_until(move |k| w
            .iter()
            .all(|&t| matches!(k.thread(t).state(), ThreadState::Blocked(_)))),
        "waiters never blocked"
    );
    complete(c);
    let w1 = waiters[1];
    check!(
        wait_until(move |k| exited(k, w1)),
        "the first complete woke nobody"
    );
    let woke_low = s.stamp(0) != 0;
    complete(c);
    join(&waiters)?;
    check!(
        !woke_low,
        "the first complete woke the lower-priority waiter"
    );
    check!(s.stamp(1) < s.stamp(0), "wake order was not by priority");
    // complete_all: every wait succeeds until reinit.
    let all = completion();
    with(move |k, cpu| k.complete_all(cpu, all));
    let twice = (0..2).all(|_| with(move |k, cpu| k.wait_for_completion(cpu, all)).is_success());
    with(move |k, _| k.reinit_completion(all));
    let after = with(move |k, _| k.try_wait_for_completion(all));
    check!(
        twice && !after,
        "complete_all: waits {twice}, after reinit {after}"
    );
    Ok(())
}

/// Timed and interruptible completion waits: a timeout, a success with time left, an
/// interruption (distinct from a timeout), and an interruption that stays pending through
/// an uninterruptible wait.
fn completion_timeouts() -> Outcome {
    let (c, s) = (completion(), Shared::new());
    let s1 = s.clone();
    let t = spawn(ThreadSpec::fifo(40).on(cpu(0)), move || {
        let r = wait(|k, cpu| k.wait_for_completion_timeout(cpu, c, 5 * MS));
        s1.set(0, code(Ok(r)));
        let r = wait(|k, cpu| k.wait_for_completion_timeout(cpu, c, 10_000 * MS));
        s1.set(1, code(Ok(r)));
        if let WaitOutcome::Success {
            remaining: Some(left),
        } = r
        {
            s1.set(2, left);
        }
        let r = wait(|k, cpu| k.wait_for_completion_interruptible_timeout(cpu, c, 10_000 * MS));
        s1.set(3, code(Ok(r)));
        let r = wait(|k, cpu| k.wait_for_completion_interruptible_timeout(cpu, c, 5 * MS));
        s1.set(4, code(Ok(r)));
    });
    // Second wait: complete it while it waits.
    let s0 = s.clone();
    check!(
        wait_until(
            move |k| matches!(k.thread(t).state(), ThreadState::Blocked(_)) && s0.get(0) != 0
        ),
        "no second wait"
    );
    complete(c);
    // Third: interrupt it.
    let s2 = s.clone();
    check!(
        wait_until(
            move |k| matches!(k.thread(t).state(), ThreadState::Blocked(_)) && s2.get(1) != 0
        ),
        "no third wait"
    );
    with(move |k, cpu| k.interrupt(cpu, t));
    join(&[t])?;
    check!(
        s.get(0) == 2,
        "a 5 ms wait with no completion gave code {}",
        s.get(0)
    );
    check!(
        s.get(1) == 1 && s.get(2) > 0 && s.get(2) <= 10_000 * MS,
        "completed wait gave code {} with {} ns left",
        s.get(1),
        s.get(2)
    );
    check!(s.get(3) == 3, "interrupted wait gave code {}", s.get(3));
    check!(
        s.get(4) == 2,
        "interruptible wait timing out gave code {}",
        s.get(4)
    );
    // A pending interruption survives an uninterruptible wait and ends the next
    // interruptible one at once.
    let (c2, s) = (completion(), Shared::new());
    let (ready, s1) = (completion(), s.clone());
    let t = spawn(ThreadSpec::fifo(40).on(cpu(0)), move || {
        complete(ready);
        s1.set(0, code(Ok(wait_for(c2))));
        s1.set(
            1,
            code(Ok(wait(|k, cpu| {
                k.wait_for_completion_interruptible(cpu, c2)
            }))),
        );
    });
    wait_for(ready);
    check!(
        wait_until(move |k| matches!(k.thread(t).state(), ThreadState::Blocked(_))),
        "never waited"
    );
    with(move |k, cpu| k.interrupt(cpu, t));
    complete(c2);
    join(&[t])?;
    check!(
        (s.get(0), s.get(1)) == (1, 3),
        "uninterruptible then interruptible waits gave {}, {} (expected 1, 3)",
        s.get(0),
        s.get(1)
    );
    Ok(())
}

/// The per-CPU counter of the scenarios (read and written only inside kernel entries).
static PERCPU: Mutex<Option<PerCpuLocked<u64>>> = Mutex::new(None);

/// Takes the calling vCPU's slot of the scenarios' per-CPU counter (may sleep).
fn percpu_get() -> guest_rt::sync::percpu_locked::PerCpuSlot {
    let mut slot = None;
    wait(|k, cpu| {
        let guard = PERCPU.lock();
        let (taken, status) = guard
            .as_ref()
            .expect("set up")
            .get_locked(k, cpu)
            .expect("a per-CPU lock is never part of a cycle here");
        slot = Some(taken);
        status
    });
    slot.expect("get_locked names the slot")
}

fn percpu_update(slot: guest_rt::sync::percpu_locked::PerCpuSlot, f: impl FnOnce(u64) -> u64) {
    with(move |k, cpu| {
        let mut guard = PERCPU.lock();
        let value = guard
            .as_mut()
            .expect("set up")
            .slot_mut(k, cpu, slot)
            .expect("the slot is held");
        *value = f(*value);
    });
}

fn percpu_put(slot: guest_rt::sync::percpu_locked::PerCpuSlot) {
    with(move |k, cpu| {
        PERCPU
            .lock()
            .as_ref()
            .expect("set up")
            .put_locked(k, cpu, slot)
    })
    .ok();
}

/// A (10) takes vCPU 0's slot and reads it; H (50, pinned to vCPU 0) preempts it there, so
/// A moves to vCPU 1 (idle), where it writes its increment to vCPU 0's slot; H then takes
/// the slot and increments it too. Both increments must land.
fn percpu_migration() -> Outcome {
    with(|k, _| *PERCPU.lock() = Some(PerCpuLocked::new(k, |_| 0)));
    let (ready, s) = (completion(), Shared::new());
    let s1 = s.clone();
    let a = spawn(ThreadSpec::fifo(10).on(cpu(0)), move || {
        let slot = percpu_get();
        let me = threads::current();
        with(move |k, cpu| k.set_affinity(cpu, me, both())).ok();
        let read = with(move |k, cpu| {
            *PERCPU
                .lock()
                .as_mut()
                .expect("set up")
                .slot_mut(k, cpu, slot)
                .expect("held")
        });
        complete(ready);
        // Preempted by H, A can only continue where the scheduler moves it.
        let give_up = timer::now_ns() + STUCK_MS * MS;
        while (s1.get(4) == 0 || crate::arch::vcpu_index() == 0) && timer::now_ns() < give_up {
            core::hint::spin_loop();
        }
        s1.set(0, crate::arch::vcpu_index() as u64);
        percpu_update(slot, |_| read + 1);
        percpu_put(slot);
        s1.set(5, 1);
    });
    wait_for(ready);
    let s2 = s.clone();
    let h = spawn(ThreadSpec::fifo(50).on(cpu(0)), move || {
        s2.set(4, 1);
        let give_up = timer::now_ns() + STUCK_MS * MS;
        while s2.get(5) == 0 && timer::now_ns() < give_up {
            core::hint::spin_loop();
        }
        let slot = percpu_get();
        percpu_update(slot, |v| v + 1);
        percpu_put(slot);
    });
    join(&[a, h])?;
    let values: Vec<u64> = with(|_, _| PERCPU.lock().as_ref().expect("set up").values().to_vec());
    check!(
        s.get(0) == 1,
        "A finished its update on vCPU {}, it never migrated",
        s.get(0)
    );
    check!(
        values[0] == 2,
        "vCPU 0's counter is {} after two increments",
        values[0]
    );
    Ok(())
}

/// The thread whose id `id` holds (once stored) is blocked on the RCU cell's guard.
fn writer_queued(k: &Kernel, id: &AtomicU32) -> bool {
    let id = id.load(Ordering::Acquire);
    if id == u32::MAX {
        return false;
    }
    let guard = RCU.lock().as_ref().expect("set up").guard();
    let on = match guard {
        RcuGuard::Mutex(m) => BlockedOn::Mutex(m),
        RcuGuard::RwSem(r) => BlockedOn::RwSem(r),
    };
    k.thread(ThreadId(id)).state() == ThreadState::Blocked(on)
}

/// The RCU cell of the scenarios (touched only inside kernel entries).
static RCU: Mutex<Option<RcuCell<u64>>> = Mutex::new(None);

/// A reader preempted inside the read side keeps its version alive while a writer (more
/// urgent, same vCPU) waits for the guard, then publishes once the reader leaves; the old
/// version is freed with its last reader.
fn rcu_readers(rwsem: bool) -> Outcome {
    with(move |k, _| {
        let guard = if rwsem {
            RcuGuard::RwSem(k.rwsem_create())
        } else {
            RcuGuard::Mutex(k.mutex_create())
        };
        *RCU.lock() = Some(RcuCell::new(guard, 0));
    });
    let (ready, s) = (completion(), Shared::new());
    let writer_id = Arc::new(AtomicU32::new(u32::MAX));
    let (s1, id) = (s.clone(), writer_id.clone());
    let reader = spawn(ThreadSpec::fifo(10).on(cpu(0)), move || {
        let guard = with(|_, _| RCU.lock().as_ref().expect("set up").guard());
        let _ = locking(|k, cpu| match guard {
            RcuGuard::Mutex(m) => k.lock(cpu, m),
            RcuGuard::RwSem(r) => Ok(k.down_read(cpu, r)),
        });
        let seen = with(|k, cpu| {
            RCU.lock()
                .as_mut()
                .expect("set up")
                .read_deref(k, cpu)
                .map(|(v, _)| v)
        });
        complete(ready);
        // Stay inside the read side until the writer waits for the guard (an event: the
        // driver may spawn the writer arbitrarily late on a loaded host). The writer is
        // more urgent on this vCPU, so it runs and queues as soon as it exists; the bound
        // only ends a failed run, where the writer got in while we were inside.
        let give_up = timer::now_ns() + STUCK_MS * MS;
        while !with(|k, _| writer_queued(k, &id)) && timer::now_ns() < give_up {
            core::hint::spin_loop();
        }
        let live =
            with(move |_, _| seen.is_ok_and(|v| RCU.lock().as_ref().expect("set up").is_live(v)));
        s1.set(0, u64::from(live));
        s1.mark(0);
        with(|k, cpu| RCU.lock().as_mut().expect("set up").read_unlock(k, cpu)).ok();
        let freed =
            with(move |_, _| seen.is_ok_and(|v| !RCU.lock().as_ref().expect("set up").is_live(v)));
        s1.set(2, u64::from(freed));
    });
    wait_for(ready);
    let s2 = s.clone();
    let writer = spawn(ThreadSpec::fifo(50).on(cpu(0)), move || {
        let guard = with(|_, _| RCU.lock().as_ref().expect("set up").guard());
        let _ = locking(|k, cpu| match guard {
            RcuGuard::Mutex(m) => k.lock(cpu, m),
            RcuGuard::RwSem(r) => Ok(k.down_write(cpu, r)),
        });
        s2.mark(1);
        let ok = with(|k, cpu| {
            RCU.lock()
                .as_mut()
                .expect("set up")
                .publish(k, cpu, 1)
                .is_ok()
        });
        s2.set(1, u64::from(ok));
        with(|k, cpu| RCU.lock().as_mut().expect("set up").write_unlock(k, cpu)).ok();
    });
    writer_id.store(writer.0, Ordering::Release);
    join(&[reader, writer])?;
    check!(s.get(0) == 1, "the reader's version was freed under it");
    check!(s.get(1) == 1, "the writer could not publish");
    check!(
        s.stamp(0) < s.stamp(1),
        "the writer got in while the reader was inside"
    );
    let old = guest_rt::sync::rcu::VersionId(s.get(2).wrapping_sub(1));
    let freed = with(move |_, _| !RCU.lock().as_ref().expect("set up").is_live(old));
    check!(
        s.get(2) != 0 && freed,
        "the old version outlived its last reader"
    );
    Ok(())
}

/// A scenario's name (its PASS/FAIL line) and body.
type Scenario = (&'static str, fn() -> Outcome);

const SCENARIOS: &[Scenario] = &[
    ("priority inversion bounded by inheritance", inversion),
    ("chain through 2 locks across both vCPUs", || chain(2)),
    ("chain through 3 locks across both vCPUs", || chain(3)),
    ("waiter timeout de-boosts the owner", || {
        waiter_leaves(false)
    }),
    ("waiter interruption de-boosts the owner", || {
        waiter_leaves(true)
    }),
    (
        "priority change of a blocked waiter re-walks the chain",
        priority_change,
    ),
    ("self deadlock is refused", self_deadlock),
    ("AB-BA deadlock is refused with no boost left", abba),
    (
        "completion: early complete, counting, priority order, complete_all",
        completion_basics,
    ),
    (
        "completion: timeouts, remaining time, interruptions",
        completion_timeouts,
    ),
    (
        "PerCpuLocked update from a migrated thread",
        percpu_migration,
    ),
    ("RCU readers under an rt-mutex", || rcu_readers(false)),
    ("RCU readers under an rwsem", || rcu_readers(true)),
];

/// The driver: runs every scenario, one line each, then the summary.
fn driver() {
    let mut passed = 0;
    for (name, scenario) in SCENARIOS {
        match scenario() {
            Ok(()) => {
                passed += 1;
                print(format_args!("kernel-selftest: PASS {name}"));
            }
            Err(why) => print(format_args!("kernel-selftest: FAIL {name}: {why}")),
        }
    }
    print(format_args!(
        "kernel-selftest: {passed}/{} scenarios passed ({} context switches)",
        SCENARIOS.len(),
        threads::switches()
    ));
}

/// Starts the driver (vCPU 0, before it enters the scheduler).
pub fn start() {
    spawn(ThreadSpec::fifo(DRIVER).on(cpu(1)), driver);
}
