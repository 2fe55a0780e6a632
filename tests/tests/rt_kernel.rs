//! guest-rt's portable kernel on real threads (`rt.selftest=kernel`): the simulator's
//! scenarios (priority inheritance, chains across both RT vCPUs, timeouts, interruptions,
//! deadlock refusal, completions, per-CPU data after migration, RCU readers) each pass on
//! target. The assertions are outcomes printed by guest-rt, never timings.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot_until};
use xtask::qemu::Boot;

/// Scenarios guest-rt runs; keep in step with `SCENARIOS` in guest-rt/src/selftests/kernel.rs.
const SCENARIOS: usize = 13;

fn every_scenario_passes(name: &str) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=kernel".into());
    let summary = "kernel-selftest: ";
    let log = boot_until(&b, |lines| {
        lines
            .iter()
            .any(|l| l.contains(summary) && l.contains("scenarios passed"))
            || lines.iter().any(|l| l.contains("FATAL"))
    });
    let results: Vec<&String> = log
        .lines
        .iter()
        .filter(|l| l.contains("kernel-selftest: PASS") || l.contains("kernel-selftest: FAIL"))
        .collect();
    let failed: Vec<&&String> = results.iter().filter(|l| l.contains("FAIL")).collect();
    assert!(failed.is_empty(), "failing scenarios: {failed:#?}");
    assert_eq!(
        results.len(),
        SCENARIOS,
        "one line per scenario: {results:#?}"
    );
    assert!(
        log.contains(&format!(
            "kernel-selftest: {SCENARIOS}/{SCENARIOS} scenarios passed"
        )),
        "summary:\n{}",
        log.text()
    );
    // Every scenario line comes from guest-rt on an RT core.
    assert!(results.iter().all(|l| l.starts_with("[rt cpu")));
    assert!(log.fatal().is_none());
}

#[test]
fn virt_kernel_scenarios_pass_on_real_threads() {
    every_scenario_passes("virt");
}

#[test]
fn virt_gicv2_kernel_scenarios_pass_on_real_threads() {
    every_scenario_passes("virt-gicv2");
}

#[test]
fn rpi4_kernel_scenarios_pass_on_real_threads() {
    every_scenario_passes("rpi4");
}
