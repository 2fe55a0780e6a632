//! The latency probe app (`rt.app=latency`): on each vCPU, sleep to absolute deadlines
//! one period apart (`rt.latency.interval-us`) on the virtual timer interrupt and record
//! how late each wake-up is (CNTVCT), printing statistics every 1000 periods and at the
//! end. With `rt.latency.periods=N` it stops after N periods and only then reports ready
//! (what smoke and the benchmark wait for); otherwise ready comes first.
//!
//! The probe is a thread pinned to its vCPU at [`PRIORITY`], sleeping in the kernel
//! (`sleep_until` on the one-shot timer): each sample is the whole path from the timer
//! interrupt through the kernel's expiry and the switch to the probe thread. The
//! statistics are the portable [`guest_rt::tracing::latency`].
//!
//! With the channel (under hv), each period starts by taking the current parameters
//! (a new version is reported once, and its `probe_period` becomes the probe's period)
//! and ends by publishing this vCPU's telemetry block, both under the vCPU's locked
//! per-CPU endpoint ([`crate::arch::channel`]); neither ever waits for Linux.

use guest_rt::tracing::latency::{bucket_floor_us, LatencyStats, OVERFLOW};
use guest_rt::{CpuMask, ThreadSpec};
use log::info;

use super::{App, Context};
use crate::arch::boot::{heartbeat, report_ready};
use crate::arch::{channel, doorbell, threads, timer, trace};

pub const APP: App = App {
    name: "latency",
    about: "wake-up latency of a periodic thread on each vCPU",
    run,
};

/// The probe thread's priority.
pub const PRIORITY: u8 = 80;

const REPORT_EVERY: u64 = 1_000;

fn report(vcpu: usize, what: &str, s: &LatencyStats) {
    report_stats(vcpu, what, s);
    report_trace(vcpu);
}

/// The latency tracer's records of this vCPU so far ([`crate::arch::trace`]).
fn report_trace(vcpu: usize) {
    let t = trace::read();
    let site = |l: &guest_rt::tracing::sections::Longest| match l.site {
        Some(site) => alloc::format!("{} ns at {site}", l.ticks),
        None => alloc::string::String::from("none"),
    };
    info!(
        "latency vCPU {vcpu}: trace: longest kernel-lock hold {}; longest kernel-lock wait {}; \
         longest interrupts-masked {}",
        site(&t.lock_hold),
        site(&t.lock_wait),
        site(&t.masked)
    );
    info!(
        "latency vCPU {vcpu}: trace: longest wake-up {} ns, cause {} (interrupt delivery {} \
         ns, kernel lock wait {} ns, interrupt path and kernel {} ns)",
        t.wake.total(),
        t.wake.cause().name(),
        t.wake.delivery,
        t.wake.lock_wait,
        t.wake.kernel
    );
}

fn report_stats(vcpu: usize, what: &str, s: &LatencyStats) {
    info!(
        "latency vCPU {vcpu}: {what}{} periods of {} us: min {} ns, avg {} ns, max {} ns, \
         p99 {} ns, missed {}",
        s.samples,
        s.interval_ns / 1_000,
        if s.samples == 0 { 0 } else { s.min_ns },
        s.avg_ns(),
        s.max_ns,
        s.percentile_ns(99),
        s.missed
    );
}

/// Virtual time the probe spent on the channel (instructions under -icount: the bench's
/// RT-side cost of taking the parameters and of publishing telemetry).
#[derive(Default)]
struct ChannelCost {
    refresh_ns: u64,
    publish_ns: u64,
    /// The same without taking and releasing the per-CPU lock (the crate's operations).
    refresh_op_ns: u64,
    publish_op_ns: u64,
    /// Periods that had a channel.
    periods: u64,
}

/// Starts the probe's thread on this vCPU and runs threads from then on.
fn run(cx: &Context) -> ! {
    let cx = *cx;
    threads::spawn(
        ThreadSpec::fifo(PRIORITY).on(CpuMask::single(cx.vcpu)),
        move || probe_thread(&cx),
    );
    threads::enter()
}

/// The probe's thread: probe, ready (before or after a fixed-length probe), heartbeat.
fn probe_thread(cx: &Context) {
    let interval = cx.args.latency_interval_us * 1_000;
    let periods = cx.args.latency_periods;
    let fixed = periods > 0;
    if fixed {
        probe(cx.vcpu, interval, periods);
    }
    report_ready(cx.vcpu, fixed, cx.vcpus);
    if !fixed {
        probe(cx.vcpu, interval, 0);
    }
    heartbeat(cx.vcpu, cx.args.heartbeat_ms, threads::sleep_ns);
}

/// Probes this vCPU for `periods` periods (0: for ever) of `interval_ns`.
fn probe(vcpu: usize, interval_ns: u64, periods: u64) {
    info!(
        "latency vCPU {vcpu}: probing every {} us{}",
        interval_ns / 1_000,
        if periods == 0 {
            alloc::string::String::new()
        } else {
            alloc::format!(" for {periods} periods")
        }
    );
    let mut stats = LatencyStats::new(interval_ns);
    let mut cost = ChannelCost::default();
    let mut deadline = timer::now_ns() + interval_ns;
    while periods == 0 || stats.samples < periods {
        threads::sleep_until_ns(deadline);
        let woke = timer::now_ns();
        trace::woke(deadline, woke);
        let latency = woke.saturating_sub(deadline);
        deadline = stats.record(deadline, woke);
        let refresh_at = timer::now_ns();
        let accepted = channel::with_endpoint(|ch, ep| {
            let at = timer::now_ns();
            let taken = channel::refresh(ch, ep);
            (taken, timer::now_ns() - at)
        })
        .and_then(|(taken, op_ns)| {
            cost.refresh_op_ns += op_ns;
            taken
        });
        cost.refresh_ns += timer::now_ns() - refresh_at;
        if let Some((version, period_us)) = accepted {
            info!(
                "latency vCPU {vcpu}: parameters version {version} taken (probe_period \
                 {period_us} us)"
            );
            // Linux learns that its version is in use (once: vCPU 0 speaks for both).
            if vcpu == 0 {
                let at = timer::now_ns();
                if doorbell::ring_linux() {
                    info!("doorbell: rang Linux for version {version} (at {at} ns)");
                }
            }
            // The schema's range (100 us to 1 s) was checked by the reader.
            let interval = period_us as u64 * 1_000;
            if interval != stats.interval_ns {
                deadline = deadline - stats.interval_ns + interval;
                stats.interval_ns = interval;
            }
        }
        let publish_at = timer::now_ns();
        let published = channel::with_endpoint(|ch, ep| {
            let at = timer::now_ns();
            ep.telemetry.periods = stats.samples;
            ep.telemetry.missed = stats.missed;
            ep.telemetry.record_latency(latency);
            ep.writer.publish(ch, &ep.telemetry);
            timer::now_ns() - at
        });
        cost.publish_op_ns += published.unwrap_or(0);
        cost.publish_ns += timer::now_ns() - publish_at;
        cost.periods += u64::from(published.is_some());
        if stats.samples.is_multiple_of(REPORT_EVERY) {
            report(vcpu, "", &stats);
            if vcpu == 0 && (doorbell::taken_count() > 0 || doorbell::rang_count() > 0) {
                info!(
                    "latency vCPU 0: doorbells: {} taken from Linux, {} rung",
                    doorbell::taken_count(),
                    doorbell::rang_count()
                );
            }
        }
    }
    report(vcpu, "done: ", &stats);
    if cost.periods > 0 {
        let per = |total: u64| total / cost.periods;
        info!(
            "latency vCPU {vcpu}: channel per period: refresh {} ns, publish {} ns with the \
             per-CPU lock; the channel operations alone: refresh {} ns, publish {} ns \
             (average of {} periods)",
            per(cost.refresh_ns),
            per(cost.publish_ns),
            per(cost.refresh_op_ns),
            per(cost.publish_op_ns),
            cost.periods
        );
    }
    let mut line = alloc::string::String::new();
    // Each bucket by its lower edge (1 us wide to 64 us, then doubling); the overflow
    // bucket marked with a `+`.
    for (b, &count) in stats.histogram.iter().enumerate().filter(|(_, &c)| c > 0) {
        let more = if b == OVERFLOW { "+" } else { "" };
        line.push_str(&alloc::format!(" {}{more}us:{count}", bucket_floor_us(b)));
    }
    info!("latency vCPU {vcpu}: histogram (bucket: count){line}");
}
