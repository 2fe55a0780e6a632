//! `cargo xtask bench`: measurements, never assertions. Every run is under QEMU
//! `-icount shift=0` (one instruction per virtual nanosecond, one host thread), so the
//! numbers are deterministic counts that repeat bit for bit on any machine.
//!
//! Today: the latency probe on the RT cores of every board (wake-up latency in virtual
//! ns), what hv spends per forwarded interrupt (PMU cycle counter = instructions), and
//! guest-rt's kernel paths on real threads (context switch, locks, wake-ups, a device
//! interrupt to its handler thread), with trap-and-inject and exit-less delivery; the
//! doorbells' latency both ways with Linux running.

mod compare;
mod doorbell;
mod preempt_rt;
mod wake;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use platform::config::Config;

use xtask::qemu::{self, Boot};
use xtask::{boards, image, setup, step, Error};

const PERIODS: u64 = 1_000;
const INTERVAL_US: u64 = 1_000;
const TIMEOUT: Duration = Duration::from_secs(300);

/// The number right after `key` in `line` (up to the next space or comma).
fn number_after(line: &str, key: &str) -> Option<u64> {
    let rest = &line[line.find(key)? + key.len()..];
    rest.split([' ', ',']).next()?.parse().ok()
}

struct Row {
    board: String,
    vcpu: usize,
    cpu: u32,
    min: u64,
    avg: u64,
    max: u64,
    missed: u64,
    forwarded: u64,
    hv_cost: u64,
}

/// Board `board`'s config with trap-and-inject or (`exitless`) exit-less delivery, the
/// name its figures go under (`BOARD` or `BOARD-exitless`), and its system image, built.
fn board_image(board: &str, exitless: bool) -> Result<(Config, String, PathBuf), Error> {
    let (config, name) = if exitless {
        boards::exitless_variant(boards::load(board)?)
    } else {
        (boards::load(board)?, board.to_string())
    };
    let image = image::system_image_as(&config, &name)?;
    Ok((config, name, image))
}

/// The probe on board `board`, with trap-and-inject or (`exitless`) exit-less delivery.
fn measure(board: &str, exitless: bool) -> Result<Vec<Row>, Error> {
    let (config, name, image) = board_image(board, exitless)?;
    let name = name.as_str();
    let mut boot = Boot::new(&config, &image);
    boot.icount = true;
    boot.bootargs = vec![
        qemu::SMOKE_ARG.into(),
        // The RT side alone: Linux booting under -icount would dominate the run.
        qemu::only_rt(&config),
        "rt.app=latency".into(),
        format!("rt.latency.interval-us={INTERVAL_US}"),
        format!("rt.latency.periods={PERIODS}"),
    ];
    step(&format!(
        "bench: `{name}`: latency probe, {PERIODS} periods of {INTERVAL_US} us per RT vCPU"
    ));
    let log = qemu::capture(&boot, TIMEOUT, false)?;
    qemu::judge_smoke(&config, &log)
        .map_err(|why| Error::new(format!("bench `{name}`: {why}\n{}", log.text())))?;
    let mut rows = Vec::new();
    for p in qemu::rt_partitions(&config) {
        for (vcpu, &cpu) in p.cpus.iter().enumerate() {
            let done = log
                .line(&format!("latency vCPU {vcpu}: done: "))
                .ok_or_else(|| {
                    Error::new(format!("bench `{name}`: vCPU {vcpu} printed no result"))
                })?;
            let stats = log.line(&format!("stats: CPU {cpu}: ")).unwrap_or("");
            rows.push(Row {
                board: name.into(),
                vcpu,
                cpu,
                min: number_after(done, "min ").unwrap_or(0),
                avg: number_after(done, "avg ").unwrap_or(0),
                max: number_after(done, "max ").unwrap_or(0),
                missed: number_after(done, "missed ").unwrap_or(0),
                forwarded: number_after(stats, &format!("CPU {cpu}: ")).unwrap_or(0),
                hv_cost: number_after(stats, "forwarded, ").unwrap_or(0),
            });
        }
    }
    Ok(rows)
}

/// The RT side's cost per period of taking the channel's parameters (no new version: the
/// steady state) and of publishing a telemetry record, each under its per-CPU lock, as
/// the probe on `virt` reports it: (vCPU, [refresh, publish] with the lock, [refresh,
/// publish] alone) in instructions.
fn measure_channel() -> Result<Vec<(usize, [u64; 4])>, Error> {
    let (config, _, image) = board_image("virt", false)?;
    let mut boot = Boot::new(&config, &image);
    boot.icount = true;
    boot.bootargs = vec![
        qemu::SMOKE_ARG.into(),
        qemu::only_rt(&config),
        "rt.app=latency".into(),
        format!("rt.latency.interval-us={INTERVAL_US}"),
        format!("rt.latency.periods={PERIODS}"),
    ];
    step("bench: `virt`: the channel's RT-side costs in the latency probe");
    let log = qemu::capture(&boot, TIMEOUT, false)?;
    (0..2)
        .map(|vcpu| {
            let line = log
                .line(&format!("latency vCPU {vcpu}: channel per period: "))
                .ok_or_else(|| Error::new(format!("vCPU {vcpu} reported no channel cost")))?;
            let alone = &line[line.find("alone").unwrap_or(0)..];
            Ok((
                vcpu,
                [
                    number_after(line, "refresh ").unwrap_or(0),
                    number_after(line, "publish ").unwrap_or(0),
                    number_after(alone, "refresh ").unwrap_or(0),
                    number_after(alone, "publish ").unwrap_or(0),
                ],
            ))
        })
        .collect()
}

/// Average and max latency of guest-rt's probe booted bare (no hv) on QEMU virt with a
/// GICv3, same CPU model, same periods: the baseline hv is compared with.
fn measure_bare() -> Result<Vec<(u64, u64, u64)>, Error> {
    let image = image::bare_guest_rt()?;
    step(&format!(
        "bench: guest-rt bare on QEMU virt (EL1, no hv): latency probe, {PERIODS} periods of {INTERVAL_US} us"
    ));
    let cmd = qemu::bare_guest_rt_command(
        &image,
        &format!(
            "rt.app=latency rt.latency.interval-us={INTERVAL_US} rt.latency.periods={PERIODS}"
        ),
    );
    let log = qemu::capture_command(cmd, TIMEOUT, false)?;
    (0..2)
        .map(|vcpu| {
            let done = log
                .line(&format!("latency vCPU {vcpu}: done: "))
                .ok_or_else(|| {
                    Error::new(format!(
                        "bare guest-rt: vCPU {vcpu} printed no result\n{}",
                        log.text()
                    ))
                })?;
            Ok((
                number_after(done, "min ").unwrap_or(0),
                number_after(done, "avg ").unwrap_or(0),
                number_after(done, "max ").unwrap_or(0),
            ))
        })
        .collect()
}

/// One `kernel-bench:` result: what was measured and its average, with the extremes when
/// the figure was sampled one by one (the device interrupt) rather than averaged over a
/// loop.
#[derive(Debug, PartialEq, Eq)]
struct KernelRow {
    what: String,
    avg: u64,
    min_max: Option<(u64, u64)>,
}

/// guest-rt's kernel paths on real threads (`rt.app=kernel-bench`) on `board`, with
/// trap-and-inject or (`exitless`) exit-less interrupt delivery.
fn measure_kernel(board: &str, exitless: bool) -> Result<Vec<KernelRow>, Error> {
    let (config, name, image) = board_image(board, exitless)?;
    let name = name.as_str();
    let mut boot = Boot::new(&config, &image);
    boot.icount = true;
    // The RT side alone: under -icount every vCPU's instructions advance the one virtual
    // clock, so Linux booting beside it would be counted into every figure.
    boot.bootargs = vec![qemu::only_rt(&config), "rt.app=kernel-bench".into()];
    step(&format!(
        "bench: `{name}`: guest-rt kernel paths on real threads"
    ));
    let log = qemu::capture_until(
        &boot,
        TIMEOUT,
        false,
        |lines| lines.iter().any(|l| l.contains("kernel-bench: done")),
        Duration::ZERO,
    )?;
    if !log.contains("kernel-bench: done") {
        return Err(Error::new(format!(
            "bench `{name}`: the kernel benchmark did not finish\n{}",
            log.text()
        )));
    }
    Ok(kernel_rows(&log.lines))
}

/// The results of the `kernel-bench:` lines: `WHAT: N ns`, or for sampled figures
/// `WHAT: N ns (min N ns, max N ns, N samples)`. Other lines are skipped.
fn kernel_rows(lines: &[String]) -> Vec<KernelRow> {
    lines
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("kernel-bench: ")? + "kernel-bench: ".len()..];
            let (what, value) = rest.split_once(": ")?;
            // A count of holds (the kernel lock's fairness figure), else nanoseconds.
            if let Some((holds, _)) = value.split_once(" holds") {
                return Some(KernelRow {
                    what: format!("{what} (holds)"),
                    avg: holds.parse().ok()?,
                    min_max: None,
                });
            }
            let (avg, extra) = value.split_once(" ns")?;
            let min_max = match extra {
                "" => None,
                _ => Some((number_after(extra, "min ")?, number_after(extra, "max ")?)),
            };
            Some(KernelRow {
                what: what.to_string(),
                avg: avg.parse().ok()?,
                min_max,
            })
        })
        .collect()
}

/// A kernel row's figure as printed: the average, and `(min..max)` when sampled.
fn kernel_figure(row: Option<&KernelRow>) -> String {
    match row {
        None => "-".into(),
        Some(KernelRow {
            avg, min_max: None, ..
        }) => avg.to_string(),
        Some(KernelRow {
            avg,
            min_max: Some((min, max)),
            ..
        }) => format!("{avg} ({min}..{max})"),
    }
}

/// The parts of `cargo xtask bench`, each runnable alone with `--only NAME`, and what
/// each takes on a 2-core machine (measured, other work running beside it).
pub const PARTS: [(&str, &str); 6] = [
    (
        "kernel",
        "guest-rt kernel paths on real threads, both delivery modes (about 10 s)",
    ),
    (
        "probe",
        "latency probe on every board, both delivery modes, shared clock (about 25 s)",
    ),
    (
        "bare",
        "the probe on guest-rt booted bare, no hv (seconds; with `probe`, inside its time)",
    ),
    (
        "wake",
        "RT CPU's own instructions per path and Linux load, vcpu-insn plugin (about 4 min)",
    ),
    (
        "doorbell",
        "doorbell latency both ways on virt with Linux, rtctl in its shell, both delivery \
         modes (about 1 min)",
    ),
    (
        "preempt-rt",
        "cyclictest on Debian's PREEMPT_RT kernel, bare, per load, and the side-by-side \
         table (5-9 min; the table needs `wake` in the same run)",
    ),
];

pub fn run_all(only: Option<&str>) -> Result<(), Error> {
    if let Some(name) = only {
        if !PARTS.iter().any(|(p, _)| *p == name) {
            let parts: Vec<String> = PARTS
                .iter()
                .map(|(p, what)| format!("  {p:<11} {what}"))
                .collect();
            return Err(Error::new(format!(
                "no bench part `{name}`; parts:\n{}",
                parts.join("\n")
            )));
        }
    }
    let wanted = |part: &str| only.is_none_or(|o| o == part);
    setup::ensure_all()?;
    let mut took = Vec::new();
    let mut timed = |part: &'static str, f: &mut dyn FnMut() -> Result<(), Error>| {
        if !wanted(part) {
            return Ok(());
        }
        let start = Instant::now();
        f()?;
        took.push((part, start.elapsed()));
        Ok::<(), Error>(())
    };
    timed("kernel", &mut || print_kernel())?;
    timed("probe", &mut || print_probe(wanted("bare")))?;
    timed("bare", &mut || {
        if wanted("probe") {
            // Printed with the probe's table (its ratios need both).
            return Ok(());
        }
        print_bare(&[], &measure_bare()?);
        Ok(())
    })?;
    let mut bulkhead = Vec::new();
    timed("wake", &mut || {
        for exitless in [false, true] {
            let (config, name, image) = board_image("virt", exitless)?;
            let results = wake::run(&config, &name, &image)?;
            wake::print(&name, &results.rows);
            bulkhead.push((name, results));
        }
        Ok(())
    })?;
    timed("doorbell", &mut || {
        let modes = [(false, "virt"), (true, "virt-exitless")];
        // BULKHEAD_BENCH_DOORBELL=exitless|trap: one mode only.
        let only_mode = std::env::var("BULKHEAD_BENCH_DOORBELL").ok();
        for (exitless, name) in modes
            .into_iter()
            .filter(|(e, _)| only_mode.as_deref().is_none_or(|m| (m == "exitless") == *e))
        {
            let (to_rt, to_linux) = doorbell::run(exitless)?;
            doorbell::print(name, &to_rt, &to_linux);
        }
        Ok(())
    })?;
    let mut prt = Vec::new();
    timed("preempt-rt", &mut || {
        let plugin = xtask::vcpu_insns::build_plugin()?;
        prt = preempt_rt::run(&plugin)?;
        preempt_rt::print(&prt);
        Ok(())
    })?;
    if !prt.is_empty() {
        compare::report(&bulkhead, &prt)?;
    }
    println!();
    for (part, elapsed) in took {
        println!("bench part `{part}`: {} s", elapsed.as_secs());
    }
    Ok(())
}

fn print_probe(with_bare: bool) -> Result<(), Error> {
    let mut rows = Vec::new();
    for name in boards::names() {
        rows.extend(measure(&name, false)?);
        rows.extend(measure(&name, true)?);
    }
    let channel = measure_channel()?;
    println!();
    println!(
        "Channel, RT side per period on `virt` (instructions; with the per-CPU lock / alone):"
    );
    for (vcpu, [refresh, publish, refresh_op, publish_op]) in &channel {
        println!(
            "  vCPU {vcpu}: take the parameters {refresh} / {refresh_op}, publish telemetry \
             {publish} / {publish_op}"
        );
    }
    println!();
    println!(
        "Latency probe under hv (BOARD: trap-and-inject, BOARD-exitless: exit-less delivery),"
    );
    println!("QEMU -icount shift=0: 1 instruction = 1 virtual ns of the clock all vCPUs share");
    println!("(RT side alone: the shared clock then counts the RT CPUs' own instructions)");
    println!(
        "{:<20} {:>4} {:>4} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>14}",
        "board",
        "vCPU",
        "CPU",
        "periods",
        "min ns",
        "avg ns",
        "max ns",
        "missed",
        "forwarded",
        "hv instr/irq"
    );
    for r in &rows {
        println!(
            "{:<20} {:>4} {:>4} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>14}",
            r.board, r.vcpu, r.cpu, PERIODS, r.min, r.avg, r.max, r.missed, r.forwarded, r.hv_cost
        );
    }
    if with_bare {
        print_bare(&rows, &measure_bare()?);
    }
    Ok(())
}

fn print_bare(rows: &[Row], bare: &[(u64, u64, u64)]) {
    println!();
    println!(
        "Same probe, guest-rt booted bare at EL1 on QEMU virt (GICv3), and the ratios hv/bare:"
    );
    println!(
        "{:>4} {:>8} {:>8} {:>8}   {:>18} {:>18}",
        "vCPU", "min ns", "avg ns", "max ns", "trap avg/max ratio", "exit-less avg/max"
    );
    let ratio = |a: u64, b: u64| {
        if b == 0 {
            f64::NAN
        } else {
            a as f64 / b as f64
        }
    };
    for (vcpu, (min, avg, max)) in bare.iter().enumerate() {
        let of = |board: &str| {
            rows.iter()
                .find(|r| r.board == board && r.vcpu == vcpu)
                .map_or((f64::NAN, f64::NAN), |r| {
                    (ratio(r.avg, *avg), ratio(r.max, *max))
                })
        };
        let (ta, tm) = of("virt");
        let (ea, em) = of("virt-exitless");
        println!(
            "{vcpu:>4} {min:>8} {avg:>8} {max:>8}   {:>18} {:>18}",
            format!("{ta:.2} / {tm:.2}"),
            format!("{ea:.2} / {em:.2}")
        );
    }
}

fn print_kernel() -> Result<(), Error> {
    let kernel = measure_kernel("virt", false)?;
    let kernel_exitless = measure_kernel("virt", true)?;
    println!();
    println!(
        "guest-rt kernel paths on real threads, QEMU virt under hv (instructions = virtual ns;"
    );
    println!("sampled figures: avg (min..max)):");
    println!(
        "{:<60} {:>20} {:>20}",
        "path", "trap-and-inject", "exit-less"
    );
    for row in &kernel {
        let exitless = kernel_exitless.iter().find(|r| r.what == row.what);
        println!(
            "{:<60} {:>20} {:>20}",
            row.what,
            kernel_figure(Some(row)),
            kernel_figure(exitless)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::number_after;

    #[test]
    fn reads_numbers_out_of_result_lines() {
        let line = "[rt cpu2] latency vCPU 0: done: 1000 periods of 1000 us: min 288 ns, avg 290 ns, max 301 ns, p99 1000 ns, missed 0";
        assert_eq!(number_after(line, "min "), Some(288));
        assert_eq!(number_after(line, "avg "), Some(290));
        assert_eq!(number_after(line, "missed "), Some(0));
        let stats = "[hv cpu3] stats: CPU 3: 1004 interrupts forwarded, 131 PMU counts in hv";
        assert_eq!(number_after(stats, "CPU 3: "), Some(1004));
        assert_eq!(number_after(stats, "forwarded, "), Some(131));
        assert_eq!(number_after(stats, "nothing "), None);
    }

    #[test]
    fn reads_kernel_bench_lines() {
        let lines = [
            "[rt cpu3] kernel-bench: uncontended lock + unlock: 812 ns".to_string(),
            "[rt cpu3] kernel-bench: SPI -> handler thread, its vCPU idle: 4736 ns (min 4720 ns, max 4752 ns, 200 samples)".to_string(),
            "[rt cpu3] kernel-bench: INTID 34: handler thread woken 402, done 402".to_string(),
            "[rt cpu3] kernel-bench: done".to_string(),
            "[rt cpu2] ready: vCPU 0 (3 timer interrupts, 0 unexpected)".to_string(),
        ];
        let rows = super::kernel_rows(&lines);
        assert_eq!(
            rows,
            vec![
                super::KernelRow {
                    what: "uncontended lock + unlock".into(),
                    avg: 812,
                    min_max: None
                },
                super::KernelRow {
                    what: "SPI -> handler thread, its vCPU idle".into(),
                    avg: 4736,
                    min_max: Some((4720, 4752))
                },
            ]
        );
        assert_eq!(super::kernel_figure(rows.first()), "812");
        assert_eq!(super::kernel_figure(rows.get(1)), "4736 (4720..4752)");
        assert_eq!(super::kernel_figure(None), "-");
    }
}
