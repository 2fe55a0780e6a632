//! The vcpu-insn plugin's attribution (`tools/vcpu-insn-plugin`), checked before its
//! figures are trusted: with the RT side alone under `-icount`, each RT CPU reaches its
//! probe's wake-up point once per period and runs the same wake-up path every period,
//! both CPUs alike (each vCPU's probe is pinned to it). Instruction counts are
//! deterministic under `-icount`, so they are compared exactly.
#![forbid(unsafe_code)]

use bulkhead_tests::board;
use xtask::qemu::{self, Boot};
use xtask::rt_marks::{self, WAKE};
use xtask::vcpu_insns::{self, Plan};

const PERIODS: u64 = 200;

/// The RT CPU's own wake-up path (hv's IRQ vector -> probe thread running, trap-and-inject
/// on virt), in instructions: the measured count (the same every run and under every Linux
/// load, see `cargo xtask bench --only wake`) plus about 5%, so a 10% regression fails.
const WAKE_PATH_BUDGET: u64 = 1_416; // measured 1349 (CPU 2), 1348 (CPU 3)

#[test]
fn virt_each_rt_cpu_runs_its_own_probe_every_period() {
    let (config, image) = board("virt");
    let plugin = vcpu_insns::build_plugin().unwrap_or_else(|e| panic!("{e}"));
    let points = rt_marks::points(&config).unwrap_or_else(|e| panic!("{e}"));
    let cpus = rt_marks::rt_cpus(&config);
    let out = xtask::target_dir().join("vcpu-insns-test.txt");
    let mut b = Boot::new(&config, &image);
    bulkhead_tests::latency_probe(&mut b, PERIODS);
    b.bootargs
        .extend([qemu::SMOKE_ARG.to_string(), qemu::only_rt(&config)]);
    b.plugin = Some(
        Plan {
            plugin: &plugin,
            out: &out,
            cpus: &cpus,
            code: &points.code,
            marks: &points.marks,
            whoami: "TPIDR_EL2",
            rank: false,
        }
        .argument(),
    );
    let log = bulkhead_tests::boot(&b);
    qemu::judge_smoke(&config, &log).unwrap_or_else(|e| panic!("{e}"));
    rt_marks::check_placement(&points, &log.lines).unwrap_or_else(|e| panic!("{e}"));
    let report = vcpu_insns::read(&out).unwrap_or_else(|e| panic!("{e}"));

    let mut per_cpu = Vec::new();
    for &cpu in &cpus {
        let wakes = vcpu_insns::hit_count(&report.hits, cpu, WAKE.end);
        assert_eq!(
            wakes as u64, PERIODS,
            "CPU {cpu} reached its probe's wake-up"
        );
        // Skip the first period (its path differs: the probe's first sleep).
        let paths: Vec<u64> = vcpu_insns::path_lengths(&report.hits, cpu, &WAKE)
            .into_iter()
            .skip(1)
            .collect();
        assert_eq!(paths.len() as u64, PERIODS - 1, "CPU {cpu}: {paths:?}");
        assert!(
            paths.iter().all(|&p| p == paths[0]),
            "CPU {cpu}: the wake-up path changed from period to period: {paths:?}"
        );
        println!("CPU {cpu}: wake-up path {} instructions", paths[0]);
        assert!(
            paths[0] <= WAKE_PATH_BUDGET,
            "CPU {cpu}: the wake-up path takes {} instructions, over its budget of \
             {WAKE_PATH_BUDGET}",
            paths[0]
        );
        let total = report.totals.get(&cpu).copied().unwrap_or(0);
        assert!(total > PERIODS * paths[0], "CPU {cpu}: total {total}");
        per_cpu.push(paths[0]);
    }
    // Both RT CPUs run the same code for the same work: within a few instructions (their
    // vCPU index changes a few branches), nowhere near the thousands a misattribution
    // moves from one CPU to the other.
    let (a, b) = (per_cpu[0], per_cpu[1]);
    assert!(
        a.abs_diff(b) * 100 <= a,
        "CPU paths {a} and {b} differ by over 1%"
    );
}
