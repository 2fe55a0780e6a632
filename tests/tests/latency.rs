//! The latency probe (`rt.app=latency`): under deterministic virtual time (`-icount`), an
//! idle system wakes the probe on every period, on both RT cores, on every board.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot_until};
use xtask::qemu::Boot;

/// Periods per vCPU: enough to cross the probe's 1000-period report.
const PERIODS: u64 = 1_200;

fn probe_misses_no_period(name: &str) {
    probe_misses_no_period_in(board(name));
}

fn probe_misses_no_period_in((config, image): (platform::config::Config, std::path::PathBuf)) {
    let mut b = Boot::new(&config, &image);
    bulkhead_tests::latency_probe(&mut b, PERIODS);
    let done = |vcpu: usize| format!("latency vCPU {vcpu}: done: {PERIODS} periods of 1000 us");
    // Each vCPU prints its histogram last, after its summary.
    let histogram = |vcpu: usize| format!("latency vCPU {vcpu}: histogram");
    let log = boot_until(&b, |lines| {
        (0..2).all(|v| lines.iter().any(|l| l.contains(&histogram(v))))
    });
    for (vcpu, cpu) in [(0, 2), (1, 3)] {
        let summary = log
            .line(&done(vcpu))
            .unwrap_or_else(|| panic!("vCPU {vcpu} finished the probe"));
        assert!(summary.starts_with(&format!("[rt cpu{cpu}]")), "{summary}");
        assert!(
            summary.ends_with("missed 0"),
            "an idle system missed periods: {summary}"
        );
        assert!(
            log.contains(&format!("latency vCPU {vcpu}: 1000 periods of 1000 us")),
            "periodic report"
        );
        assert!(log.contains(&histogram(vcpu)));
    }
    assert!(log.fatal().is_none());
}

#[test]
fn virt_latency_probe_misses_no_period_when_idle() {
    probe_misses_no_period("virt");
}

#[test]
fn virt_gicv2_latency_probe_misses_no_period_when_idle() {
    probe_misses_no_period("virt-gicv2");
}

#[test]
fn rpi4_latency_probe_misses_no_period_when_idle() {
    probe_misses_no_period("rpi4");
}

#[test]
fn exitless_latency_probe_misses_no_period_when_idle_on_every_board() {
    for name in ["virt", "virt-gicv2", "rpi4"] {
        probe_misses_no_period_in(bulkhead_tests::board_exitless(name));
    }
}

#[test]
fn guest_rt_boots_bare_without_hv_for_the_baseline() {
    let image = xtask::image::bare_guest_rt().expect("guest-rt builds");
    let cmd = xtask::qemu::bare_guest_rt_command(&image, "rt.app=latency rt.latency.periods=100");
    let log =
        xtask::qemu::capture_command(cmd, bulkhead_tests::BOOT_TIMEOUT, false).expect("QEMU runs");
    println!("{}", log.text());
    assert!(log.contains("[bare cpu0] guest-rt 0.1.0 starting bare (no hypervisor) on vCPU 0 of 2"));
    for vcpu in 0..2 {
        let done = log
            .line(&format!(
                "[bare cpu{vcpu}] latency vCPU {vcpu}: done: 100 periods"
            ))
            .unwrap_or_else(|| panic!("vCPU {vcpu} finished"));
        assert!(done.ends_with("missed 0"), "{done}");
    }
    assert!(log.contains("bare: every vCPU finished its probe, powering off"));
    assert!(
        log.status.is_some_and(|s| s.success()),
        "guest-rt powered the machine off"
    );
}
