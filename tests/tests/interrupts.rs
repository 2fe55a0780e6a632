//! Interrupt virtualization: the RT vCPUs get their virtual timer interrupts and each
//! other's SGIs through hv, and a partition's attempts to enable, prioritize, route or
//! trigger lines it does not own change nothing.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot_until, smoke};
use xtask::qemu::Boot;

fn timer_interrupts_reach_both_vcpus(name: &str) {
    let (_, log) = smoke(name);
    for (vcpu, cpu) in [(0, 2), (1, 3)] {
        let ready = log
            .line(&format!("[rt cpu{cpu}] ready: vCPU {vcpu} ("))
            .unwrap_or_else(|| panic!("vCPU {vcpu} ready"));
        assert!(
            ready.contains("(3 timer interrupts, 0 unexpected)"),
            "{ready}"
        );
    }
    let stats = log
        .line("stats: CPU 2: ")
        .expect("hv reports what it forwarded");
    assert!(stats.contains("interrupts forwarded"), "{stats}");
}

#[test]
fn virt_timer_interrupts_reach_both_rt_vcpus() {
    timer_interrupts_reach_both_vcpus("virt");
}

#[test]
fn virt_gicv2_timer_interrupts_reach_both_rt_vcpus() {
    timer_interrupts_reach_both_vcpus("virt-gicv2");
}

#[test]
fn rpi4_timer_interrupts_reach_both_rt_vcpus() {
    timer_interrupts_reach_both_vcpus("rpi4");
}

/// The `gic-live` checks: the ID registers describe the partition, a masked virtual timer
/// with its level high reads pending, and vCPU 1 reads the whole masked burst pending (in
/// list registers, hv's queue or, exit-less, at the GIC).
fn assert_live_state(log: &xtask::qemu::BootLog, checks: u32) {
    let summary = format!("[rt cpu2] gic-live: {checks}/{checks} as expected");
    assert!(log.contains(&summary), "{summary}:\n{}", log.text());
    let burst = log
        .line("[rt cpu3] gic-live: vCPU 1 reads its burst pending: 0xff0 of 0xff0: ok")
        .is_some();
    assert!(burst, "the masked burst reads pending:\n{}", log.text());
}

/// How many `gic-live` checks a board's 2-vCPU RT partition makes: lines, IIDR, PIDR2,
/// 3 timer states, and GICR_TYPER's 3 fields per vCPU (GICv3) or CPUNumber (GICv2).
fn live_checks(name: &str) -> u32 {
    if name == "virt" {
        2 + 1 + 3 + 2 * 3
    } else {
        2 + 2 + 3
    }
}

fn live_state_seen(lines: &[String]) -> bool {
    lines
        .iter()
        .any(|l| l.contains("gic-live: vCPU 1 reads its burst"))
        && lines
            .iter()
            .any(|l| l.contains("gic-live: ") && l.contains("as expected"))
}

fn sgis_arrive_and_foreign_lines_stay_untouched(name: &str, checks: u32) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=gic".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let summary = format!("gic-check: {checks}/{checks} as expected");
    let received = "[rt cpu3] heartbeat";
    // 3 single SGIs, then a burst of 8 distinct ones while vCPU 1 is masked: with 4 list
    // registers, the last 4 only arrive if hv refills the list registers.
    let all = "(11 SGIs received";
    let log = boot_until(&b, |lines| {
        lines.iter().any(|l| l.contains(&summary))
            && live_state_seen(lines)
            && lines
                .iter()
                .any(|l| l.starts_with(received) && l.contains(all))
    });
    assert!(log.contains("[rt cpu2] gic-check: sent 3 SGIs to vCPU 1"));
    assert_live_state(&log, live_checks(name));
    assert!(
        log.contains(&summary),
        "foreign lines changed:\n{}",
        log.text()
    );
    assert!(!log.contains("MISMATCH"));
    assert!(log.contains("sent a burst of 8 distinct SGIs to vCPU 1"));
    assert!(
        log.lines
            .iter()
            .any(|l| l.starts_with(received) && l.contains(all)),
        "vCPU 1 got every SGI, the burst included:\n{}",
        log.text()
    );
    // vCPU 0 never receives an SGI it did not send itself.
    assert!(!log
        .lines
        .iter()
        .any(|l| l.starts_with("[rt cpu2] heartbeat") && !l.contains("(0 SGIs received,")));
    assert!(log.fatal().is_none() && !log.contains("left its sandbox"));
}

#[test]
fn virt_sgis_arrive_and_foreign_lines_stay_untouched() {
    sgis_arrive_and_foreign_lines_stay_untouched("virt", 5);
}

#[test]
fn virt_gicv2_sgis_arrive_and_foreign_lines_stay_untouched() {
    sgis_arrive_and_foreign_lines_stay_untouched("virt-gicv2", 4);
}

#[test]
fn rpi4_sgis_arrive_and_foreign_lines_stay_untouched() {
    sgis_arrive_and_foreign_lines_stay_untouched("rpi4", 4);
}

/// Boots `name` with the RTC self-test `test` until it reported what arrived.
fn rtc_selftest(name: &str, test: &str) -> xtask::qemu::BootLog {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(format!("rt.selftest={test}"));
    boot_until(&b, |lines| {
        lines.iter().any(|l| l.contains("RTC interrupt"))
    })
}

/// The RT partition owns QEMU virt's PL031 RTC (`platform/boards/virt*.toml`): it maps the
/// device, registers its handler (refused twice, refused for a line it does not own),
/// sets the line up through its emulated distributor, and gets the RTC's interrupt.
fn passed_through_spi_reaches_its_partition(name: &str) {
    let log = rtc_selftest(name, "spi");
    let reg = log
        .line("spi-check: register INTID 34")
        .expect("registration reported");
    assert!(
        reg.contains(
            "INTID 34: None; again: Some(AlreadyRegistered(34)); INTID 35: Some(NotOwned(35))"
        ),
        "{reg}"
    );
    let got = log
        .line("spi-check: INTID 34 enabled")
        .expect("the test ran");
    assert!(got.contains("enabled in our distributor: true"), "{got}");
    assert!(got.contains("RTC interrupt received"), "{got}");
    // Through a threaded handler: woken once by the top half, unmasked once when done.
    assert!(got.contains("(handler thread woken 1, done 1)"), "{got}");
    assert!(got.starts_with("[rt cpu2]"), "{got}");
    assert!(log.fatal().is_none() && !log.contains("left its sandbox"));
}

/// The RTC's line routed to vCPU 0 with its handler thread kept on vCPU 1, three times:
/// a one-shot line stays active until vCPU 0 deactivates it for the handler that ran on
/// vCPU 1, so the second and third interrupts arrive only if that owed deactivation works.
fn threaded_handler_on_another_vcpu_gets_every_interrupt(name: &str) {
    let log = rtc_selftest(name, "spi-cross");
    let got = log
        .line("spi-check: INTID 34 enabled")
        .expect("the test ran");
    assert!(got.contains("RTC interrupt received (3 of 3)"), "{got}");
    assert!(got.contains("(handler thread woken 3, done 3)"), "{got}");
    assert!(log.fatal().is_none());
}

#[test]
fn virt_threaded_handler_on_another_vcpu_gets_every_interrupt() {
    threaded_handler_on_another_vcpu_gets_every_interrupt("virt");
}

#[test]
fn virt_gicv2_threaded_handler_on_another_vcpu_gets_every_interrupt() {
    threaded_handler_on_another_vcpu_gets_every_interrupt("virt-gicv2");
}

#[test]
fn virt_passed_through_spi_reaches_its_partition() {
    passed_through_spi_reaches_its_partition("virt");
}

#[test]
fn virt_gicv2_passed_through_spi_reaches_its_partition() {
    passed_through_spi_reaches_its_partition("virt-gicv2");
}

/// Exit-less delivery (`exitless_irqs` in the partition config): the RT cores take their
/// timer interrupts and SGIs straight from the GIC, foreign lines stay untouched, and a
/// passed-through device's interrupt still arrives.
fn exitless_delivery_works(name: &str, checks: u32, with_rtc: bool) {
    let (config, image) = bulkhead_tests::board_exitless(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=gic".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let summary = format!("gic-check: {checks}/{checks} as expected");
    let log = boot_until(&b, |lines| {
        lines.iter().any(|l| l.contains(&summary))
            && live_state_seen(lines)
            && lines
                .iter()
                .any(|l| l.starts_with("[rt cpu3] heartbeat") && l.contains("(11 SGIs received"))
    });
    assert_live_state(&log, live_checks(name));
    assert!(
        log.contains("exit-less interrupt delivery"),
        "the guest saw exit-less mode"
    );
    for vcpu in 0..2 {
        let ready = log
            .line(&format!("] ready: vCPU {vcpu} ("))
            .unwrap_or_else(|| panic!("vCPU {vcpu} ready"));
        assert!(
            ready.contains("(3 timer interrupts, 0 unexpected)"),
            "{ready}"
        );
    }
    assert!(
        log.contains(&summary),
        "foreign lines changed:\n{}",
        log.text()
    );
    assert!(log.fatal().is_none() && !log.contains("left its sandbox"));
    if with_rtc {
        let mut b = Boot::new(&config, &image);
        b.bootargs.push("rt.selftest=spi".into());
        let log = boot_until(&b, |lines| {
            lines.iter().any(|l| l.contains("RTC interrupt"))
        });
        assert!(log.contains("RTC interrupt received"), "{}", log.text());
    }
}

#[test]
fn virt_exitless_delivery_works() {
    exitless_delivery_works("virt", 5, true);
}

#[test]
fn virt_gicv2_exitless_delivery_works() {
    exitless_delivery_works("virt-gicv2", 4, true);
}

#[test]
fn rpi4_exitless_delivery_works() {
    exitless_delivery_works("rpi4", 4, false);
}

/// An exit-less RT partition on GICv3 owns its CPUs' interfaces, so it can send physical
/// SGIs anywhere: every number to Linux's CPUs 0 and 1. hv must not act on them: SGIs
/// 1-15 stay disabled on those CPUs (hv enables only its kick), and a kick hv did not
/// request is ignored and counted; Linux boots to ready regardless.
#[test]
fn virt_exitless_stray_physical_sgis_are_ignored_and_counted() {
    let (config, image) = bulkhead_tests::board_exitless("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=stray-sgis".into());
    b.bootargs.push(xtask::qemu::SMOKE_ARG.into());
    let log = bulkhead_tests::boot(&b);
    assert!(
        log.contains("[rt cpu2] stray-sgis: sent 32 physical SGIs to the 2 CPUs below ours"),
        "{}",
        log.text()
    );
    for cpu in [0, 1] {
        let line = log
            .line(&format!(
                "stats: CPU {cpu}: SGIs hv did not send, ignored: "
            ))
            .unwrap_or_else(|| panic!("CPU {cpu} counted the stray kick:\n{}", log.text()));
        let kicks: u64 = line
            .split("ignored: ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{line}"));
        assert!(kicks >= 1, "{line}");
    }
    assert!(log.contains("smoke: every CPU and partition reported ready"));
    assert!(log.fatal().is_none() && !log.contains("left its sandbox"));
}
