//! Timer expiry is bounded per kernel-lock hold: [`Kernel::expire`] fires at most
//! [`EXPIRE_BATCH`] due timers, leaves the next deadline in the past for the rest (so the
//! one-shot timer fires again at once), and no timer is lost or fired twice.

use guest_rt::kernel::EXPIRE_BATCH;
use guest_rt::{CpuMask, Kernel, KernelConfig, ThreadSpec, ThreadState, WaitOutcome, WaitStatus};

#[test]
fn due_timers_fire_in_batches_and_none_is_lost() {
    const SLEEPERS: usize = 3 * EXPIRE_BATCH + 1;
    let mut k = Kernel::new(KernelConfig::new(1));
    let spec = ThreadSpec::fifo(10).on(CpuMask::single(0));
    let ids: Vec<_> = (0..SLEEPERS)
        .map(|_| k.spawn(0, spec).expect("CPU 0 exists"))
        .collect();
    // Each sleeper in turn runs and sleeps to the same deadline, bar one a tick later.
    for (i, &id) in ids.iter().enumerate() {
        assert_eq!(k.schedule(0), Some(id));
        let until = if i == SLEEPERS - 1 { 1_001 } else { 1_000 };
        assert!(matches!(k.sleep_until(0, until), WaitStatus::Blocked));
    }
    assert_eq!(k.schedule(0), None, "every thread sleeps");
    k.advance_time(2_000);
    let mut passes = 0;
    loop {
        let before = ids
            .iter()
            .filter(|&&t| k.thread(t).state() == ThreadState::Runnable)
            .count();
        k.expire(0);
        passes += 1;
        let after = ids
            .iter()
            .filter(|&&t| k.thread(t).state() == ThreadState::Runnable)
            .count();
        assert!(
            after - before <= EXPIRE_BATCH,
            "one pass fired {}",
            after - before
        );
        match k.next_deadline(0) {
            // Due timers remain: the deadline is in the past, so the timer fires again.
            Some(d) => assert!(d <= k.now(), "a due timer was pushed into the future"),
            None => break,
        }
        assert!(passes <= SLEEPERS, "expiry makes no progress");
    }
    assert_eq!(passes, SLEEPERS.div_ceil(EXPIRE_BATCH));
    for &t in &ids {
        assert_eq!(k.thread(t).state(), ThreadState::Runnable);
        assert_eq!(
            k.take_outcome(t),
            Some(WaitOutcome::Success { remaining: None }),
            "each sleep ends once, as a success"
        );
        assert_eq!(k.take_outcome(t), None);
    }
    k.check_invariants().expect("kernel consistent");
}

#[test]
fn expire_at_most_says_whether_due_timers_remain() {
    let mut k = Kernel::new(KernelConfig::new(1));
    let spec = ThreadSpec::fifo(10).on(CpuMask::single(0));
    let ids: Vec<_> = (0..3).map(|_| k.spawn(0, spec).expect("spawn")).collect();
    for &id in &ids {
        assert_eq!(k.schedule(0), Some(id));
        assert!(matches!(k.sleep_until(0, 500), WaitStatus::Blocked));
    }
    k.advance_time(500);
    assert!(k.expire_at_most(0, 2), "one left");
    assert!(!k.expire_at_most(0, 2), "all fired");
    assert!(!k.expire_at_most(0, 2), "nothing to do");
}
