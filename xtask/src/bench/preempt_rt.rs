//! `cargo xtask bench --only preempt-rt`: cyclictest under Debian's PREEMPT_RT kernel,
//! booted bare on the machine shape of the `virt` board, per load condition, with the
//! same per-CPU instruction view as Bulkhead's (the vcpu-insn plugin on CPUs 2-3).

use std::path::Path;
use std::time::Duration;

use xtask::rt_baseline::{self, Cyclictest};
use xtask::session::Session;
use xtask::vcpu_insns::{self, PathSpec, Plan, Report};
use xtask::{qemu, step, target_dir, Error};

/// Periods of 1 ms per condition.
pub const LOOPS: u64 = 1_000;

/// Timer interrupt (taken in the idle loop or in user space) -> the sleeping thread
/// back from `schedule()` in its nanosleep.
pub const WAKE: PathSpec = PathSpec {
    starts: &["irq-el1", "irq-el0"],
    resets: &["idle"],
    end: "wake",
};

const DEADLINE: Duration = Duration::from_secs(1200);

/// The kernel symbols, from a first boot that prints them (cached: without KASLR they
/// are the same on every boot of this kernel).
fn symbols(image: &Path) -> Result<std::collections::BTreeMap<String, (u64, u64)>, Error> {
    let target = target_dir();
    let cache = target.join(format!(
        "rt-baseline/kallsyms-{}.txt",
        xtask::debian::RT_KERNEL.version
    ));
    let lines: Vec<String> = match std::fs::read_to_string(&cache) {
        Ok(text) => text.lines().map(String::from).collect(),
        Err(_) => {
            step("bench: PREEMPT_RT: a first boot to read its kernel symbols");
            let initramfs = rt_baseline::initramfs(&target, 0)?;
            let log = qemu::capture_command(
                rt_baseline::command(image, &initramfs, None),
                DEADLINE,
                false,
            )?;
            let lines: Vec<String> = log
                .lines
                .into_iter()
                .filter(|l| l.contains(rt_baseline::SYMBOL_LINE))
                .collect();
            std::fs::write(&cache, lines.join("\n"))
                .map_err(|e| Error::new(format!("{}: {e}", cache.display())))?;
            lines
        }
    };
    Ok(rt_baseline::parse_kallsyms(&lines))
}

/// One condition: cyclictest's figures and the plugin's marks while it ran.
pub struct Condition {
    pub name: String,
    pub cyclictest: Cyclictest,
    pub insns: Report,
}

fn len(path: &Path) -> usize {
    std::fs::metadata(path).map_or(0, |m| m.len() as usize)
}

/// cyclictest's results and the per-CPU marks per condition, in
/// [`rt_baseline::CONDITIONS`] order.
pub fn run(plugin: &Path) -> Result<Vec<Condition>, Error> {
    let target = target_dir();
    let image = rt_baseline::kernel(&target)?;
    let bytes =
        std::fs::read(&image).map_err(|e| Error::new(format!("{}: {e}", image.display())))?;
    let points = rt_baseline::kernel_points(&bytes, &symbols(&image)?)?;
    let initramfs = rt_baseline::initramfs(&target, LOOPS)?;
    let out = target.join("bench/vcpu-insns-preempt-rt.txt");
    let argument = Plan {
        plugin,
        out: &out,
        cpus: &[2, 3],
        code: &[points.text],
        marks: &points.marks,
        // QEMU offers no MPIDR_EL1 to plugins; Linux's per-CPU offset in TPIDR_EL1
        // grows with the CPU number.
        whoami: "TPIDR_EL1",
        rank: true,
    }
    .argument();
    step(&format!(
        "bench: PREEMPT_RT bare on QEMU virt: cyclictest, {LOOPS} periods of 1 ms per condition"
    ));
    let mut s = Session::start(
        rt_baseline::command(&image, &initramfs, Some(&argument)),
        false,
    )?;
    let mut results = Vec::new();
    for (name, _) in rt_baseline::CONDITIONS {
        let begin = s.wait_line(0, &format!("{}{name}", rt_baseline::BEGIN), DEADLINE)?;
        let from = len(&out);
        let end = s.wait_line(begin, &format!("{}{name}", rt_baseline::END), DEADLINE)?;
        let to = len(&out);
        let lines = s.lines_from(begin + 1)[..end - begin - 1].to_vec();
        let cyclictest = rt_baseline::parse(&lines);
        if cyclictest.max.len() != 2 {
            return Err(Error::new(format!(
                "cyclictest printed no results for condition `{name}`:\n{}",
                lines[..lines.len().min(40)].join("\n")
            )));
        }
        let text =
            std::fs::read(&out).map_err(|e| Error::new(format!("{}: {e}", out.display())))?;
        let insns = vcpu_insns::parse(&String::from_utf8_lossy(
            &text[from.min(text.len())..to.min(text.len())],
        ));
        results.push(Condition {
            name: name.to_string(),
            cyclictest,
            insns,
        });
    }
    s.wait_line(0, rt_baseline::DONE, DEADLINE)?;
    Ok(results)
}

/// cyclictest's figures (shared clock) and the CPUs' own instructions per condition.
pub fn print(conditions: &[Condition]) {
    println!();
    println!("PREEMPT_RT (Debian linux-image-6.1.0-50-rt-arm64) bare, cyclictest -m -p 80 -i 1000");
    println!("-t 2 -a 2,3 on isolated CPUs 2-3; µs on the shared virtual clock; instructions on");
    println!("that CPU alone (timer interrupt vector -> thread back from schedule(); per period):");
    println!(
        "{:<18} {:>3} {:>8} {:>8} {:>8} {:>28} {:>28}",
        "condition", "CPU", "min us", "avg us", "max us", "wake instructions", "per period"
    );
    for c in conditions {
        for (t, cpu) in [2u32, 3].into_iter().enumerate() {
            let get = |v: &Vec<u64>| v.get(t).map_or("-".into(), u64::to_string);
            let fig = |s: Option<vcpu_insns::Summary>| {
                s.map_or("-".into(), |s| {
                    format!("{} / {} / {} (x{})", s.min, s.median, s.max, s.samples)
                })
            };
            println!(
                "{:<18} {:>3} {:>8} {:>8} {:>8} {:>28} {:>28}",
                c.name,
                cpu,
                get(&c.cyclictest.min),
                get(&c.cyclictest.avg),
                get(&c.cyclictest.max),
                fig(vcpu_insns::summary(&vcpu_insns::path_lengths(
                    &c.insns.hits,
                    cpu,
                    &WAKE
                ))),
                fig(vcpu_insns::summary(&vcpu_insns::between(
                    &c.insns.hits,
                    cpu,
                    "wake"
                )))
            );
        }
    }
}
