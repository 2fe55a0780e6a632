//! `cargo xtask bench --only wake`: the RT CPU's own instructions on its wake-up path
//! (timer interrupt taken -> probe thread running) and per probe period, counted by the
//! vcpu-insn TCG plugin under each Linux load, and the device-interrupt path (an SPI ->
//! its handler thread) with Linux not started and booting.
//!
//! The shared virtual clock cannot separate the RT CPU's work from the round-robin
//! scheduling of the emulator (see README, "How latency is measured"); these counts are
//! the RT CPU's alone, so they stay the same under load unless the RT CPU does more.

use std::path::Path;
use std::time::Duration;

use platform::config::Config;

use xtask::qemu::{self, Boot};
use xtask::rt_marks::{
    check_placement, points, rt_cpus, Points, DEVICE_END, HV_IRQ, RT_IRQ, SPIN, WAKE, WAKE_GUEST,
};
use xtask::session::Session;
use xtask::vcpu_insns::{self, Plan, Summary};
use xtask::{initramfs, step, target_dir, Error};

/// One load's figures on one RT CPU.
pub struct LoadRow {
    pub load: String,
    pub cpu: u32,
    /// Every wake-path length (for the plots).
    pub wake_samples: Vec<u64>,
    pub wake: Option<Summary>,
    pub wake_guest: Option<Summary>,
    pub per_period: Option<Summary>,
    pub device: Vec<u64>,
    /// Turns of spin-wait loops (hv's and guest-rt's) on this CPU, per function.
    pub spins: Vec<(String, usize)>,
    /// Marks whose QEMU-given vCPU index differed from the executing CPU (the
    /// attribution check).
    pub misattributed: usize,
    pub hits: usize,
}

fn spins_by_function(
    points: &Points,
    report: &vcpu_insns::Report,
    cpu: u32,
) -> Vec<(String, usize)> {
    let mut by: std::collections::BTreeMap<String, usize> = Default::default();
    for h in report
        .hits
        .iter()
        .filter(|h| h.cpu == cpu && h.mark.starts_with(SPIN))
    {
        let function = points
            .spin_sites
            .iter()
            .find(|(name, _)| *name == h.mark)
            .map_or("?", |(_, f)| f.as_str());
        *by.entry(function.to_string()).or_default() += 1;
    }
    by.into_iter().collect()
}

fn rows(
    points: &Points,
    load: &str,
    report: &vcpu_insns::Report,
    cpus: &[u32],
    skip_wakes: usize,
) -> Vec<LoadRow> {
    cpus.iter()
        .map(|&cpu| {
            let s = |v: Vec<u64>| vcpu_insns::summary(&v);
            let skip = |v: Vec<u64>| v.into_iter().skip(skip_wakes).collect::<Vec<_>>();
            let mine = report.hits.iter().filter(|h| h.cpu == cpu);
            LoadRow {
                load: load.into(),
                cpu,
                wake_samples: skip(vcpu_insns::path_lengths(&report.hits, cpu, &WAKE)),
                wake: s(skip(vcpu_insns::path_lengths(&report.hits, cpu, &WAKE))),
                wake_guest: s(skip(vcpu_insns::path_lengths(
                    &report.hits,
                    cpu,
                    &WAKE_GUEST,
                ))),
                per_period: s(skip(vcpu_insns::between(&report.hits, cpu, "wake"))),
                // The first sample is kernel-bench's warm-up round (it skips it too).
                device: vcpu_insns::last_entry_lengths(
                    &report.hits,
                    cpu,
                    HV_IRQ,
                    RT_IRQ,
                    &["rt-idle"],
                    DEVICE_END,
                )
                .into_iter()
                .skip(1)
                .collect(),
                spins: spins_by_function(points, report, cpu),
                misattributed: mine.clone().filter(|h| h.qemu_index != cpu).count(),
                hits: mine.count(),
            }
        })
        .collect()
}

fn with_plugin(boot: &mut Boot, plugin: &Path, out: &Path, points: &Points, cpus: &[u32]) {
    boot.plugin = Some(
        Plan {
            plugin,
            out,
            cpus,
            code: &points.code,
            marks: &points.marks,
            whoami: "TPIDR_EL2",
            rank: false,
        }
        .argument(),
    );
}

/// The RT side alone (`bulkhead.only=rt`): the probe for `periods`, or the kernel
/// benchmark (`kernel_bench`) for the device-interrupt path.
fn rt_alone(
    config: &Config,
    name: &str,
    image: &Path,
    plugin: &Path,
    points: &Points,
    app: &str,
    periods: u64,
) -> Result<(vcpu_insns::Report, Vec<String>), Error> {
    let cpus = rt_cpus(config);
    let out = target_dir().join(format!("bench/vcpu-insns-{name}-{app}-alone.txt"));
    let mut boot = Boot::new(config, image);
    boot.icount = true;
    with_plugin(&mut boot, plugin, &out, points, &cpus);
    boot.bootargs = vec![
        qemu::only_rt(config),
        format!("rt.app={app}"),
        "rt.latency.interval-us=1000".into(),
        format!("rt.latency.periods={periods}"),
    ];
    let log = if app == "latency" {
        boot.bootargs.push(qemu::SMOKE_ARG.into());
        qemu::capture(&boot, Duration::from_secs(300), false)?
    } else {
        // The kernel benchmark does not power off; QEMU is asked to quit (so the plugin
        // writes its totals) once it is done.
        qemu::capture_until(
            &boot,
            Duration::from_secs(300),
            false,
            |lines| lines.iter().any(|l| l.contains("kernel-bench: done")),
            Duration::ZERO,
        )?
    };
    check_placement(points, &log.lines)?;
    Ok((vcpu_insns::read(&out)?, log.lines))
}

/// Byte length of the plugin's report so far (windows are cut at these).
fn mark_len(out: &Path) -> usize {
    std::fs::metadata(out).map_or(0, |m| m.len() as usize)
}

fn window(out: &Path, from: usize, to: usize) -> Result<vcpu_insns::Report, Error> {
    let text = std::fs::read(out).map_err(|e| Error::new(format!("{}: {e}", out.display())))?;
    let slice = &text[from.min(text.len())..to.min(text.len())];
    Ok(vcpu_insns::parse(&String::from_utf8_lossy(slice)))
}

const COMMAND: Duration = Duration::from_secs(600);

/// The loads typed into Linux's shell: name, commands started before the window,
/// command whose run is the window, commands after it.
const LOADS: [(&str, &str, &str, &str); 4] = [
    ("idle", "", "sleep 1", ""),
    (
        "busy loops",
        "while :; do :; done & while :; do :; done &",
        "sleep 1",
        "kill %1 %2; wait",
    ),
    (
        "fork/exec + I/O",
        "",
        "i=0; while [ $i -lt 100 ]; do ls -l /bin > /dev/null; cat /proc/interrupts > /tmp/x; i=$((i+1)); done",
        "",
    ),
    (
        "console flood",
        "",
        "i=0; while [ $i -lt 600 ]; do echo flood-$i-abcdefghijklmnopqrstuvwxyz0123456789; i=$((i+1)); done",
        "",
    ),
];

/// The probe beside Linux: booting (start to shell), then each load of [`LOADS`].
fn beside_linux(
    config: &Config,
    name: &str,
    image: &Path,
    plugin: &Path,
    points: &Points,
    app: &str,
) -> Result<Vec<(String, vcpu_insns::Report)>, Error> {
    let cpus = rt_cpus(config);
    let out = target_dir().join(format!("bench/vcpu-insns-{name}-{app}-linux.txt"));
    let mut boot = Boot::new(config, image);
    boot.icount = true;
    with_plugin(&mut boot, plugin, &out, points, &cpus);
    boot.bootargs = vec![
        format!("rt.app={app}"),
        "rt.latency.interval-us=1000".into(),
        "rt.latency.periods=0".into(),
        "rt.heartbeat-ms=1000000".into(),
    ];
    let mut s = Session::start(boot.command()?, false)?;
    s.wait_line(0, initramfs::READY_PREFIX, Duration::from_secs(900))?;
    s.wait_prompt("# ", Duration::from_secs(120))?;
    let booted = mark_len(&out);
    check_placement(points, s.lines_from(0))?;
    let mut windows = vec![("booting".to_string(), window(&out, 0, booted)?)];
    if app != "latency" {
        return Ok(windows);
    }
    for (load, before, during, after) in LOADS {
        step(&format!("bench: wake: load `{load}`"));
        if !before.is_empty() {
            s.send(&format!("{before}\n"))?;
            s.shell("true", COMMAND)?;
        }
        let from = mark_len(&out);
        s.shell(during, COMMAND)?;
        let to = mark_len(&out);
        windows.push((load.to_string(), window(&out, from, to)?));
        if !after.is_empty() {
            s.shell(after, COMMAND)?;
        }
    }
    // Ctrl-A x: QEMU quits normally and the plugin writes its totals.
    let _ = s.send("\x01x");
    Ok(windows)
}

/// Samples as `VALUE xCOUNT` per distinct value when there are few, else a summary.
fn distribution(values: &[u64]) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for v in values {
        *counts.entry(*v).or_insert(0usize) += 1;
    }
    if counts.len() <= 3 {
        let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} x{n}")).collect();
        if parts.is_empty() {
            "-".into()
        } else {
            parts.join(", ")
        }
    } else {
        figure(&vcpu_insns::summary(values))
    }
}

fn figure(s: &Option<Summary>) -> String {
    s.map_or("-".into(), |s| {
        if s.min == s.max {
            format!("{} (x{})", s.min, s.samples)
        } else {
            format!("{} / {} / {} (x{})", s.min, s.median, s.max, s.samples)
        }
    })
}

/// The probe's own figures in the RT-alone run (shared virtual clock, ns), per vCPU:
/// min, avg, max and its histogram line's `(µs bucket, count)` pairs.
pub struct ProbeAlone {
    pub min: u64,
    pub avg: u64,
    pub max: u64,
    pub histogram: Vec<(u64, u64)>,
}

fn probe_alone(log: &[String], vcpus: usize) -> Vec<ProbeAlone> {
    let number = |line: &str, key: &str| -> u64 {
        line.find(key)
            .and_then(|i| line[i + key.len()..].split([' ', ',']).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (0..vcpus)
        .map(|v| {
            let done = log
                .iter()
                .find(|l| l.contains(&format!("latency vCPU {v}: done: ")))
                .map_or("", String::as_str);
            let histogram = log
                .iter()
                .find(|l| l.contains(&format!("latency vCPU {v}: histogram")))
                .map(|l| {
                    l.split_whitespace()
                        .filter_map(|w| {
                            let (us, n) = w.split_once("us:")?;
                            Some((us.trim_end_matches('+').parse().ok()?, n.parse().ok()?))
                        })
                        .collect()
                })
                .unwrap_or_default();
            ProbeAlone {
                min: number(done, "min "),
                avg: number(done, "avg "),
                max: number(done, "max "),
                histogram,
            }
        })
        .collect()
}

pub struct Results {
    pub rows: Vec<LoadRow>,
    pub probe_alone: Vec<ProbeAlone>,
}

pub fn run(config: &Config, name: &str, image: &Path) -> Result<Results, Error> {
    let plugin = vcpu_insns::build_plugin()?;
    std::fs::create_dir_all(target_dir().join("bench"))
        .map_err(|e| Error::new(format!("target/bench: {e}")))?;
    let points = points(config)?;
    let cpus = rt_cpus(config);
    let mut out = Vec::new();
    step("bench: wake: the RT side alone (Linux not started), probe and kernel benchmark");
    let (alone, probe_log) = rt_alone(config, name, image, &plugin, &points, "latency", 1_000)?;
    out.extend(rows(&points, "not started", &alone, &cpus, 1));
    let (bench_alone, _) = rt_alone(config, name, image, &plugin, &points, "kernel-bench", 0)?;
    for r in rows(
        &points,
        "not started (kernel-bench)",
        &bench_alone,
        &cpus,
        0,
    ) {
        out.push(r);
    }
    step("bench: wake: beside Linux: booting, then loads typed into its shell");
    for (load, report) in beside_linux(config, name, image, &plugin, &points, "latency")? {
        out.extend(rows(&points, &load, &report, &cpus, 1));
    }
    for (load, report) in beside_linux(config, name, image, &plugin, &points, "kernel-bench")? {
        out.extend(rows(
            &points,
            &format!("{load} (kernel-bench)"),
            &report,
            &cpus,
            0,
        ));
    }
    Ok(Results {
        rows: out,
        probe_alone: probe_alone(&probe_log, cpus.len()),
    })
}

pub fn print(name: &str, rows: &[LoadRow]) {
    println!();
    println!("RT CPU's own instructions (vcpu-insn plugin, counted on that CPU alone), `{name}`:");
    println!(
        "  wake: hv's IRQ vector -> probe thread running; guest: guest-rt's EL1 IRQ vector ->"
    );
    println!("  probe running; period: everything the CPU ran per 1 ms period; device: SPI -> its");
    println!("  handler thread (kernel-bench). Figures: min / median / max (xN samples).");
    println!(
        "{:<30} {:>3} {:>14} {:>14} {:>26} {:>22} {:>6} {:>10}",
        "load", "CPU", "wake", "guest part", "per period", "device", "spins", "QEMU idx"
    );
    for r in rows {
        println!(
            "{:<30} {:>3} {:>14} {:>14} {:>26} {:>22} {:>6} {:>10}",
            r.load,
            r.cpu,
            figure(&r.wake),
            figure(&r.wake_guest),
            figure(&r.per_period),
            distribution(&r.device),
            r.spins.iter().map(|(_, n)| n).sum::<usize>(),
            format!("{}/{}", r.misattributed, r.hits)
        );
    }
    println!(
        "  spins: turns of spin-wait loops (hv's and guest-rt's locks and tickets) on that CPU:"
    );
    for r in rows.iter().filter(|r| !r.spins.is_empty()) {
        let list: Vec<String> = r.spins.iter().map(|(f, n)| format!("{f} {n}")).collect();
        println!("    {} / CPU {}: {}", r.load, r.cpu, list.join(", "));
    }
    println!("  QEMU idx: marks for which QEMU's own vCPU index named another CPU than the one");
    println!(
        "  executing (QEMU 10.0 bakes the translating vCPU into shared blocks under -icount)."
    );
}
