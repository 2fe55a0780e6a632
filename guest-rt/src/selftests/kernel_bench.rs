//! The kernel micro-benchmarks (`rt.app=kernel-bench`), for `cargo xtask bench`: the cost
//! of the kernel's basic paths on real threads, in virtual-counter nanoseconds. Under QEMU
//! `-icount shift=0` a virtual nanosecond is one instruction (of any CPU of the machine:
//! idle ones execute none), so the figures are deterministic instruction counts.
//!
//! Owns the measuring loops only. Each figure is an average over [`ROUNDS`] repetitions,
//! which also hides the counter's granularity (16 ns at QEMU's 62.5 MHz); the device
//! interrupt's is sampled one by one ([`SPI_ROUNDS`]), with its min and max.

use alloc::sync::Arc;
use core::sync::atomic::{AtomicU64, Ordering};

use guest_rt::tracing::latency::LatencyStats;
use guest_rt::{CompletionId, CpuMask, Priority, ThreadSpec};
use spin::{Mutex, Once};

use crate::apps::{App, Context};
use crate::arch::boot::report_ready;
use crate::arch::console::print;
use crate::arch::threads::{sleep_ns, spawn, wait, with};
use crate::arch::timer::now_ns;
use crate::arch::{gic, irq_threads, pl031, trace};

const ROUNDS: u64 = 1_000;

fn report(what: &str, total_ns: u64, rounds: u64) {
    print(format_args!(
        "kernel-bench: {what}: {} ns",
        total_ns / rounds.max(1)
    ));
}

/// Blocks the caller until `done` has been completed `n` times.
fn await_done(done: CompletionId, n: u64) {
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
    lock_wait(done);
    device_interrupt(done);
    print(format_args!("kernel-bench: done"));
}

/// Kernel entries the measured vCPU makes while the other hammers the kernel.
const LOCK_ROUNDS: u64 = 2_000;

/// One vCPU's wait for the kernel lock while the other vCPU makes kernel calls back to
/// back: vCPU 0 makes [`LOCK_ROUNDS`] short kernel entries, vCPU 1 as many as it can until
/// vCPU 0 is done. Reports the waits of the entries that found the lock taken (under
/// -icount single-threaded TCG, contention happens where the emulator switches vCPUs
/// inside the other's hold, so the wait itself is mostly the emulator's round-robin
/// slice) and the most holds one wait was behind: the fairness figure, which a ticket lock
/// bounds at one per other vCPU.
fn lock_wait(done: CompletionId) {
    static STOP: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);
    spawn(ThreadSpec::fifo(20).on(CpuMask::single(1)), move || {
        while !STOP.load(Ordering::Acquire) {
            with(|k, _| core::hint::black_box(k.now()));
        }
        with(|k, cpu| k.complete(cpu, done));
    });
    spawn(ThreadSpec::fifo(20).on(CpuMask::single(0)), move || {
        trace::reset_lock_waits();
        for _ in 0..LOCK_ROUNDS {
            with(|k, _| core::hint::black_box(k.now()));
        }
        let w = trace::lock_waits();
        STOP.store(true, Ordering::Release);
        let ns = crate::arch::timer::ticks_to_ns;
        print(format_args!(
            "kernel-bench: kernel lock wait on vCPU 0 while vCPU 1 hammers kernel calls: {} \
             ns (min {} ns, max {} ns, {} samples)",
            ns(w.wait_ticks) / w.contended.max(1),
            ns(w.shortest_ticks),
            ns(w.longest_ticks),
            w.contended
        ));
        print(format_args!(
            "kernel-bench: most holds by vCPU 1 during one kernel-lock wait of vCPU 0: {} holds \
             ({} of {} entries waited)",
            w.most_holds_before, w.contended, w.taken
        ));
        with(|k, cpu| k.complete(cpu, done));
    });
    await_done(done, 2);
}

/// Rounds of the device-interrupt measurement, after one warm-up round.
const SPI_ROUNDS: u64 = 200;
/// The SPI's handler thread: above the pending thread, below the driver.
const SPI_HANDLER_PRIORITY: u8 = 80;
/// The line's priority in the distributor (any unmasked one would do).
const SPI_GIC_PRIORITY: u8 = 0xa0;
/// Pause after each round: the handler thread deactivates the interrupt (after it
/// signalled us) before the next pend, so no round waits for the previous deactivation.
const SPI_GAP_NS: u64 = 50_000;

/// When the handler thread last started running (virtual ns).
static SPI_HANDLER_STARTED: AtomicU64 = AtomicU64::new(0);
/// Completed by the handler each time it ran.
static SPI_HANDLED: Once<CompletionId> = Once::new();

/// The SPI's threaded handler: note when it started, then do what a driver of the RTC
/// would (clear its interrupt: nothing is latched there, the pend was software's) and
/// tell the pending thread.
fn spi_handler(_intid: u32) {
    SPI_HANDLER_STARTED.store(now_ns(), Ordering::Release);
    pl031::clear_interrupt();
    if let Some(&handled) = SPI_HANDLED.get() {
        with(|k, cpu| k.complete(cpu, handled));
    }
}

/// A device interrupt through the threaded path: the RTC's SPI, routed to vCPU 0 whose
/// handler thread is pinned there, made pending through the partition's distributor
/// (emulated by hv, which pends the physical line; it comes back through hv's injection,
/// or straight to the vCPU with exit-less delivery). Each sample is from just before the
/// pend to the handler thread's first instruction: the trapped distributor write, the
/// interrupt's delivery, the top half (which leaves the interrupt active instead of
/// masking the line: no distributor access) and the switch. The pend's trapped write is
/// a large part of it; its cost is reported too.
/// Measured twice: the pending thread on vCPU 0 (the handler preempts it) and on vCPU 1
/// (vCPU 0 idle in WFI; under -icount vCPU 1's instructions until it sleeps count too).
fn device_interrupt(done: CompletionId) {
    let Some(intid) = pl031::find() else {
        print(format_args!(
            "kernel-bench: no PL031 passed through: no device interrupt measured"
        ));
        return;
    };
    // The RTC itself never raises its line here: only software pends it.
    pl031::silence();
    SPI_HANDLED.call_once(|| with(|k, _| k.completion_create()));
    // Level-sensitive (the line's reset state): a pend is latched until the interrupt is
    // acknowledged, so with the device silent each pend is one interrupt (the counts
    // printed at the end show it); no edge configuration is needed.
    gic::set_up_spi(intid, 0, SPI_GIC_PRIORITY, false);
    let registered = irq_threads::register_on(
        intid,
        Priority::new(SPI_HANDLER_PRIORITY),
        CpuMask::single(0),
        spi_handler,
    );
    if let Err(why) = registered {
        print(format_args!(
            "kernel-bench: INTID {intid} refused ({why:?}): no device interrupt measured"
        ));
        return;
    }

    // What one distributor access costs (a trap to hv and back, in both delivery modes):
    // each sample below has one write, the pend.
    let start = now_ns();
    for _ in 0..ROUNDS {
        core::hint::black_box(gic::spi_enabled(intid));
    }
    report(
        "distributor register read (trapped by hv)",
        now_ns() - start,
        ROUNDS,
    );
    let start = now_ns();
    for _ in 0..ROUNDS {
        // The line is enabled already: the write changes nothing.
        gic::set_spi_enabled(intid, true);
    }
    report(
        "distributor register write (trapped by hv)",
        now_ns() - start,
        ROUNDS,
    );

    for (what, pender) in [
        ("SPI -> handler thread, preempting a thread on its vCPU", 0),
        ("SPI -> handler thread, its vCPU idle", 1),
    ] {
        // A period of a second: no sample ever counts as a "missed period".
        let stats = Arc::new(Mutex::new(LatencyStats::new(1_000_000_000)));
        let s = stats.clone();
        spawn(
            ThreadSpec::fifo(10).on(CpuMask::single(pender)),
            move || {
                let handled = *SPI_HANDLED.get().expect("created above");
                for round in 0..=SPI_ROUNDS {
                    let pended = now_ns();
                    gic::pend_spi(intid);
                    wait(|k, cpu| k.wait_for_completion(cpu, handled));
                    if round > 0 {
                        s.lock()
                            .record(pended, SPI_HANDLER_STARTED.load(Ordering::Acquire));
                    }
                    sleep_ns(SPI_GAP_NS);
                }
                with(|k, cpu| k.complete(cpu, done));
            },
        );
        await_done(done, 1);
        let s = stats.lock();
        print(format_args!(
            "kernel-bench: {what}: {} ns (min {} ns, max {} ns, {} samples)",
            s.avg_ns(),
            s.min_ns,
            s.max_ns,
            s.samples
        ));
    }
    let (woken, handled) = irq_threads::counts(intid);
    print(format_args!(
        "kernel-bench: INTID {intid}: handler thread woken {woken}, done {handled}"
    ));
}

/// The benchmark as an app (`rt.app=kernel-bench`).
pub const APP: App = App {
    name: "kernel-bench",
    about: "the kernel's basic paths on real threads, for `cargo xtask bench`",
    run,
};

/// Ready at once; vCPU 0 starts the driver, which runs on vCPU 1 at the top priority and
/// sleeps while the measured threads run; both vCPUs run threads from then on.
fn run(cx: &Context) -> ! {
    report_ready(cx.vcpu, false, cx.vcpus);
    if cx.vcpu == 0 {
        spawn(ThreadSpec::fifo(90).on(CpuMask::single(1)), driver);
    }
    crate::arch::threads::enter()
}
