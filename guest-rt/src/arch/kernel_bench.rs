//! The kernel micro-benchmarks (`rt.app=kernel-bench`), for `cargo xtask bench`: the cost
//! of the kernel's basic paths on real threads, in virtual-counter nanoseconds. Under QEMU
//! `-icount shift=0` a virtual nanosecond is one instruction (of any CPU of the machine:
//! idle ones execute none), so the figures are deterministic instruction counts.
//!
//! Owns the measuring loops only. Each figure is an average over [`ROUNDS`] repetitions,
//! which also hides the counter's granularity (16 ns at QEMU's 62.5 MHz).

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::{CpuMask, ThreadSpec};

use super::console::print;
use super::threads::{spawn, wait, with};
use super::timer::now_ns;

const ROUNDS: u64 = 1_000;

fn report(what: &str, total_ns: u64, rounds: u64) {
    print(format_args!(
        "kernel-bench: {what}: {} ns",
        total_ns / rounds.max(1)
    ));
}

/// Blocks the caller until `done` has been completed `n` times.
fn await_done(done: guest_rt::CompletionId, n: u64) {
    for _ in 0..n {
        wait(|k, cpu| k.wait_for_completion(cpu, done));
    }
}

fn driver() {
    let done = with(|k, _| k.completion_create());
    let on = |cpu: usize| CpuMask::single(cpu);

    // Uncontended lock + unlock.
    let m = with(|k, _| k.mutex_create());
    spawn(ThreadSpec::fifo(20).on(on(0)), move || {
        let start = now_ns();
        for _ in 0..ROUNDS {
            wait(|k, cpu| k.lock(cpu, m).expect("uncontended"));
            with(|k, cpu| k.unlock(cpu, m)).expect("owner");
        }
        report("uncontended lock + unlock", now_ns() - start, ROUNDS);
        with(|k, cpu| k.complete(cpu, done));
    });
    await_done(done, 1);

    // Context switch: two equal-priority threads yielding to each other; every yield is
    // one kernel entry and one switch.
    let total = Arc::new(AtomicU64::new(0));
    for _ in 0..2 {
        let total = total.clone();
        spawn(ThreadSpec::fifo(20).on(on(0)), move || {
            let start = now_ns();
            for _ in 0..ROUNDS {
                with(|k, cpu| k.yield_now(cpu));
            }
            total.fetch_max(now_ns() - start, Ordering::Relaxed);
            with(|k, cpu| k.complete(cpu, done));
        });
    }
    await_done(done, 2);
    report(
        "context switch (yield to an equal-priority thread)",
        total.load(Ordering::Relaxed),
        2 * ROUNDS,
    );

    // Contended lock with one PI boost: H (50) asks for the lock L (10) holds on the same
    // vCPU; measured from H's request to H owning the lock (block, boost, switch to L,
    // L's unlock with de-boost and hand-over, switch back).
    let (m, go) = (
        with(|k, _| k.mutex_create()),
        with(|k, _| k.completion_create()),
    );
    let total = Arc::new(AtomicU64::new(0));
    let t = total.clone();
    spawn(ThreadSpec::fifo(50).on(on(0)), move || {
        for _ in 0..ROUNDS {
            wait(|k, cpu| k.wait_for_completion(cpu, go));
            let start = now_ns();
            wait(|k, cpu| k.lock(cpu, m).expect("no cycle"));
            t.fetch_add(now_ns() - start, Ordering::Relaxed);
            with(|k, cpu| k.unlock(cpu, m)).expect("owner");
        }
        with(|k, cpu| k.complete(cpu, done));
    });
    spawn(ThreadSpec::fifo(10).on(on(0)), move || {
        for _ in 0..ROUNDS {
            wait(|k, cpu| k.lock(cpu, m).expect("no cycle"));
            // H preempts here, blocks on the lock and boosts us back in.
            with(|k, cpu| k.complete(cpu, go));
            with(|k, cpu| k.unlock(cpu, m)).expect("owner");
        }
        with(|k, cpu| k.complete(cpu, done));
    });
    await_done(done, 2);
    report(
        "contended lock with one PI boost (request to ownership)",
        total.load(Ordering::Relaxed),
        ROUNDS,
    );

    // Wake-up of a more urgent thread, on the same vCPU and on the other one: from the
    // waker's `complete` to the woken thread running.
    for (what, target) in [
        ("wake-up of a higher-priority thread, same vCPU", 0),
        ("wake-up of a higher-priority thread, other vCPU", 1),
    ] {
        let (c, ack) = (
            with(|k, _| k.completion_create()),
            with(|k, _| k.completion_create()),
        );
        let (sent, total) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (s, t) = (sent.clone(), total.clone());
        spawn(ThreadSpec::fifo(50).on(on(target)), move || {
            for _ in 0..ROUNDS {
                wait(|k, cpu| k.wait_for_completion(cpu, c));
                t.fetch_add(now_ns() - s.load(Ordering::Acquire), Ordering::Relaxed);
                with(|k, cpu| k.complete(cpu, ack));
            }
            with(|k, cpu| k.complete(cpu, done));
        });
        spawn(ThreadSpec::fifo(10).on(on(0)), move || {
            for _ in 0..ROUNDS {
                sent.store(now_ns(), Ordering::Release);
                with(|k, cpu| k.complete(cpu, c));
                wait(|k, cpu| k.wait_for_completion(cpu, ack));
            }
            with(|k, cpu| k.complete(cpu, done));
        });
        await_done(done, 2);
        report(what, total.load(Ordering::Relaxed), ROUNDS);
    }
    print(format_args!("kernel-bench: done"));
}

/// Starts the benchmark driver (vCPU 0, before it enters the scheduler). It runs on vCPU 1
/// at the top priority and sleeps while the measured threads run.
pub fn start() {
    spawn(ThreadSpec::fifo(90).on(CpuMask::single(1)), driver);
}
