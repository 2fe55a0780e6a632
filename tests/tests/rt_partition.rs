//! The RT partition: guest-rt on its own pinned cores inside a stage-2 sandbox, talking to
//! hv only through PSCI and Bulkhead's hypercalls.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot, boot_until, edited_image, payload_offset, smoke};
use xtask::qemu::{self, Boot};

fn rt_runs_on_cores_2_and_3(name: &str) {
    let (config, log) = smoke(name);
    qemu::judge_smoke(&config, &log).expect("smoke passes");
    for (vcpu, cpu) in [(0, 2), (1, 3)] {
        assert!(
            log.contains(&format!("[rt cpu{cpu}] vCPU {vcpu} up at EL1")),
            "vCPU {vcpu} on CPU {cpu}"
        );
        assert!(log.contains(&format!(
            "[rt cpu{cpu}] virtual timer: tick 3 on vCPU {vcpu}"
        )));
        assert!(log.contains(&format!(
            "[hv cpu{cpu}] ready: partition `rt` vCPU {vcpu} (CPU {cpu})"
        )));
    }
    assert!(
        log.contains("partition `rt` vCPU 0 starts vCPU 1"),
        "vCPU 1 came up through PSCI CPU_ON"
    );
    assert!(
        log.contains("[rt cpu2] 2 vCPUs"),
        "the generated DTB lists exactly the partition's 2 CPUs"
    );
    assert!(!log
        .lines
        .iter()
        .any(|l| l.starts_with("[rt cpu0]") || l.starts_with("[rt cpu1]")));
}

#[test]
fn virt_rt_partition_runs_on_cores_2_and_3() {
    rt_runs_on_cores_2_and_3("virt");
}

#[test]
fn virt_gicv2_rt_partition_runs_on_cores_2_and_3() {
    rt_runs_on_cores_2_and_3("virt-gicv2");
}

#[test]
fn rpi4_rt_partition_runs_on_cores_2_and_3() {
    rt_runs_on_cores_2_and_3("rpi4");
}

const VIOLATION: &str = "partition `rt` vCPU 1 left its sandbox";

fn escape_is_contained(name: &str) {
    let (config, image) = board(name);
    // hv's own image: inside hv's reserved RAM, text_offset into it.
    let target = config.hv.ram.base + 0x8_0000;
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(format!("rt.selftest=escape@{target:#x}"));
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let log = boot_until(&b, |lines| {
        let after = lines.iter().skip_while(|l| !l.contains(VIOLATION));
        after
            .filter(|l| l.starts_with("[rt cpu2] heartbeat"))
            .count()
            >= 3
    });
    let report = log.line(VIOLATION).expect("hv reports the escape");
    assert!(
        report.starts_with("[hv cpu3]"),
        "reported on the faulting CPU: {report}"
    );
    assert!(report.contains(&format!("IPA {target:#x}")), "{report}");
    assert!(
        report.contains("data abort from a lower EL")
            && report.contains("PC 0x")
            && report.contains("ESR 0x")
    );
    let after = log.after(VIOLATION);
    assert!(
        after
            .iter()
            .filter(|l| l.starts_with("[rt cpu2] heartbeat"))
            .count()
            >= 3,
        "vCPU 0 keeps running after vCPU 1 was stopped"
    );
    assert!(
        !after.iter().any(|l| l.starts_with("[rt cpu3]")),
        "vCPU 1 printed after it was stopped"
    );
    assert!(!log.contains("isolation is broken") && log.fatal().is_none());
}

#[test]
fn virt_escaping_vcpu_is_stopped_while_the_other_keeps_running() {
    escape_is_contained("virt");
}

#[test]
fn rpi4_escaping_vcpu_is_stopped_while_the_other_keeps_running() {
    escape_is_contained("rpi4");
}

/// vCPU 1 maps a channel page executable in its own stage 1 and jumps there: hv's stage 2
/// (execute-never everywhere but the partition's RAM) stops it with an instruction abort.
fn fetch_from_the_channel_is_stopped(name: &str) {
    let (config, image) = board(name);
    let channel = config
        .channel
        .as_ref()
        .expect("the board has a channel")
        .ram;
    let target = channel.base + channel.size - 0x1000;
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=exec-channel".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let log = boot_until(&b, |lines| {
        let after = lines.iter().skip_while(|l| !l.contains(VIOLATION));
        after
            .filter(|l| l.starts_with("[rt cpu2] heartbeat"))
            .count()
            >= 3
    });
    assert!(log.contains(&format!("vCPU 1 jumps into the channel at {target:#x}")));
    let report = log.line(VIOLATION).expect("hv reports the fetch");
    assert!(report.starts_with("[hv cpu3]"), "{report}");
    assert!(
        report.contains("instruction abort from a lower EL")
            && report.contains("permission fault")
            && report.contains("instruction fetch")
            && report.contains(&format!("IPA {target:#x}")),
        "{report}"
    );
    let after = log.after(VIOLATION);
    assert!(
        !after.iter().any(|l| l.starts_with("[rt cpu3]")),
        "vCPU 1 printed after it was stopped"
    );
    assert!(!log.contains("execute-never is broken") && log.fatal().is_none());
}

#[test]
fn virt_a_fetch_from_the_channel_is_stopped_by_stage_2() {
    fetch_from_the_channel_is_stopped("virt");
}

#[test]
fn virt_gicv2_a_fetch_from_the_channel_is_stopped_by_stage_2() {
    fetch_from_the_channel_is_stopped("virt-gicv2");
}

fn hypercall_sweep(name: &str) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=hypercalls".into());
    b.bootargs.push(qemu::SMOKE_ARG.into());
    let log = boot(&b);
    let summary = log.line("hvc-sweep: ").map(|_| ()).and_then(|_| {
        log.lines.iter().find_map(|l| {
            l.split("hvc-sweep: ")
                .nth(1)
                .filter(|s| s.ends_with("as expected"))
        })
    });
    let summary = summary.expect("the sweep finished");
    let (passed, total) = summary.split_once(' ').unwrap().0.split_once('/').unwrap();
    assert_eq!(
        passed,
        total,
        "some calls got unexpected answers:\n{}",
        log.text()
    );
    assert!(
        total.parse::<u32>().unwrap() >= 18,
        "the sweep covers the calls it should"
    );
    assert!(!log.contains("MISMATCH"));
    // hv survived every call: the partition still reported ready and smoke completed.
    qemu::judge_smoke(&config, &log).expect("hv survives the sweep");
}

#[test]
fn virt_bad_hypercalls_get_smccc_errors_and_hv_survives() {
    hypercall_sweep("virt");
}

#[test]
fn rpi4_bad_hypercalls_get_smccc_errors_and_hv_survives() {
    hypercall_sweep("rpi4");
}

#[test]
fn partition_power_off_stops_the_partition_not_the_machine() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=system-off".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    // vCPU 1 keeps running until its next trap (a heartbeat), where hv stops it and says
    // so: that line can only appear if the machine survived the partition's SYSTEM_OFF.
    // Linux reaching its shell afterwards (it boots for seconds, the RT partition powers
    // off right after its own boot) shows the machine went on long enough for a stray RT
    // line to show.
    const STOPPED: &str = "partition `rt` vCPU 1 stopped: the partition is off";
    let log = boot_until(&b, |lines| {
        lines
            .iter()
            .skip_while(|l| !l.contains(STOPPED))
            .any(|l| l.contains(xtask::initramfs::READY_PREFIX))
    });
    let off = log
        .line("powered itself off")
        .expect("hv reports the partition's SYSTEM_OFF");
    assert!(
        off.contains("partition `rt`") && off.contains("other partitions keep running"),
        "{off}"
    );
    assert!(
        log.after("powered itself off")
            .iter()
            .any(|l| l.contains(STOPPED)),
        "hv kept running after the partition's SYSTEM_OFF and stopped its other vCPU"
    );
    assert!(
        log.status.is_none(),
        "QEMU exited: SYSTEM_OFF from a partition stopped the machine"
    );
    assert!(
        !log.after(STOPPED).iter().any(|l| l.starts_with("[rt ")),
        "the partition printed after it was off"
    );
    assert!(log.fatal().is_none());
}

#[test]
fn corrupt_guest_rt_payload_is_refused() {
    let (config, image) = edited_image("virt", "corrupt-guest", |bytes| {
        let at = payload_offset(bytes, 1) + 100;
        bytes[at] ^= 0xff;
    });
    let log = boot(&Boot::new(&config, &image).unverified());
    let fatal = log.fatal().expect("refused");
    assert!(
        fatal.contains("guest-rt payload is corrupt (CRC-32"),
        "{fatal}"
    );
    assert!(!log.timed_out());
}

#[test]
fn partition_reset_reloads_and_reboots_only_the_partition() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=system-reset".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    const FIRST_READY: &str = "[hv cpu2] ready: partition `rt` vCPU 0 (CPU 2)";
    const SECOND_READY: &str = "[hv cpu3] ready: partition `rt` vCPU 1 (CPU 3)";
    // Enough once both vCPUs reported ready again after the restart.
    let log = boot_until(&b, |lines| {
        let after = lines
            .iter()
            .skip_while(|l| !l.contains("restarted (boot 2)"));
        after
            .filter(|l| l.contains(SECOND_READY) || l.contains(FIRST_READY))
            .count()
            >= 2
    });
    let reset = log
        .line("asked for a reset")
        .expect("hv reports the SYSTEM_RESET");
    assert!(
        reset.contains("partition `rt`") && reset.contains("other partitions keep running"),
        "{reset}"
    );
    let after = log.after("asked for a reset");
    assert!(
        after
            .iter()
            .any(|l| l.contains("partition `rt` vCPU 1 stopped: the partition is resetting")),
        "the running vCPU was stopped before the reload"
    );
    assert!(after
        .iter()
        .any(|l| l.contains("partition `rt` restarted (boot 2)")));
    assert!(
        after
            .iter()
            .any(|l| l.contains("starting on vCPU 0 of 2 (partition 1, boot 2)")),
        "guest-rt booted again"
    );
    let rebooted = log.after("restarted (boot 2)");
    for ready in [FIRST_READY, SECOND_READY] {
        assert!(
            rebooted.iter().any(|l| l.contains(ready)),
            "after the reset: {ready}"
        );
    }
    assert!(log.status.is_none(), "the machine kept running");
    assert!(log.fatal().is_none() && !log.contains("SYSTEM_RESET returned"));
}

#[test]
fn virt_gicv2_escaping_vcpu_is_stopped_while_the_other_keeps_running() {
    escape_is_contained("virt-gicv2");
}

#[test]
fn virt_gicv2_bad_hypercalls_get_smccc_errors_and_hv_survives() {
    hypercall_sweep("virt-gicv2");
}

/// A boot argument guest-rt cannot honour is refused by name, and the partition starts
/// nothing (it powers itself off) instead of running with a value bent into range; hv and
/// the machine go on.
#[test]
fn an_out_of_range_boot_argument_is_refused_by_name() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.app=latency".into());
    b.bootargs.push("rt.latency.interval-us=0".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let log = boot_until(&b, |lines| {
        lines.iter().any(|l| l.contains("powered itself off"))
    });
    let refused = log
        .line("rt: boot argument `rt.latency.interval-us=0`")
        .expect("guest-rt names the word it refuses");
    assert!(refused.contains("out of range 10..=1000000"), "{refused}");
    assert!(
        log.line("rt: 1 boot argument(s) refused").is_some(),
        "guest-rt says what it does about it"
    );
    assert!(
        log.line("partition `rt` powered itself off").is_some(),
        "the partition did not stop"
    );
    // The log ends at hv's report of the power-off (`boot_until`): nothing was started
    // up to there, and a partition that is off starts nothing later.
    assert!(
        !log.lines.iter().any(|l| l.contains("latency vCPU")
            || l.contains("ready: vCPU")
            || l.contains("ready: partition `rt`")),
        "guest-rt started the app or reported ready despite the refusal"
    );
    assert!(
        log.status.is_none(),
        "the machine stopped with the partition"
    );
    assert!(log.fatal().is_none());
}
