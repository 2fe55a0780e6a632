//! The RT partition's fault policy (`on_fault` in the board file): a vCPU that leaves its
//! sandbox stops alone (the default, tested in rt_partition.rs), stops the partition, or
//! restarts it up to its limit, after which the partition stops.
#![forbid(unsafe_code)]

use bulkhead_tests::{board_variant, boot_until, linux_session};
use platform::config::{Config, OnFault};
use std::time::Duration;
use xtask::qemu::Boot;

const VIOLATION: &str = "partition `rt` vCPU 1 left its sandbox";
/// hv stops the partition's other vCPU once the partition is stopped.
const VCPU0_OFF: &str = "partition `rt` vCPU 0 stopped: the partition is off";

/// Boots `config` with vCPU 1 escaping at every boot, until `until` is printed.
fn escape_at_every_boot(config: &Config, image: &std::path::Path, until: &str) -> Vec<String> {
    let mut b = Boot::new(config, image);
    let target = config.hv.ram.base + 0x8_0000;
    b.bootargs.push(format!("rt.selftest=escape@{target:#x}"));
    // Linux is not needed and would only slow the boots down.
    b.bootargs.push("bulkhead.only=rt".into());
    let log = boot_until(&b, |lines| lines.iter().any(|l| l.contains(until)));
    assert!(log.fatal().is_none(), "hv survives");
    log.lines.clone()
}

#[test]
fn restart_reboots_the_partition_up_to_its_limit_then_stops_it() {
    let (config, image) = board_variant("virt", "virt-on-fault-restart", |c| {
        let rt = c.partitions.iter_mut().find(|p| p.name == "rt").unwrap();
        (rt.on_fault, rt.restart_limit) = (OnFault::Restart, Some(2));
    });
    let lines = escape_at_every_boot(&config, &image, VCPU0_OFF);
    // Each boot's fault, in order: restart 1, boot 2, restart 2, boot 3, given up.
    let expected = [
        VIOLATION,
        "restarting it (fault restart 1 of 2)",
        "partition `rt` restarted (boot 2)",
        VIOLATION,
        "restarting it (fault restart 2 of 2)",
        "partition `rt` restarted (boot 3)",
        VIOLATION,
        "its 2 fault restarts are used up: the partition stops",
        VCPU0_OFF,
    ];
    let mut rest = lines.iter();
    for want in expected {
        assert!(
            rest.any(|l| l.contains(want)),
            "`{want}` missing or out of order in:\n{}",
            lines.join("\n")
        );
    }
    assert!(
        !lines.iter().any(|l| l.contains("(boot 4)")),
        "no fourth boot"
    );
}

#[test]
fn stop_stops_the_whole_partition_at_its_first_fault() {
    let (config, image) = board_variant("virt", "virt-on-fault-stop", |c| {
        let rt = c.partitions.iter_mut().find(|p| p.name == "rt").unwrap();
        rt.on_fault = OnFault::Stop;
    });
    let lines = escape_at_every_boot(&config, &image, VCPU0_OFF);
    let text = lines.join("\n");
    let fault = text.find(VIOLATION).expect("the escape is reported");
    let stops = text
        .find("on_fault = \"stop\": the partition stops")
        .expect("the policy is named");
    let off = text.find(VCPU0_OFF).expect("vCPU 0 stopped");
    assert!(fault < stops && stops < off, "{text}");
    assert!(!text.contains("restarted (boot 2)"), "{text}");
}

#[test]
fn linux_sees_the_rt_partitions_fault_restarts_in_rtctl_status() {
    let (config, image) = board_variant("virt", "virt-on-fault-restart-1", |c| {
        let rt = c.partitions.iter_mut().find(|p| p.name == "rt").unwrap();
        (rt.on_fault, rt.restart_limit) = (OnFault::Restart, Some(1));
    });
    let mut b = Boot::new(&config, &image);
    let target = config.hv.ram.base + 0x8_0000;
    b.bootargs.push(format!("rt.selftest=escape@{target:#x}"));
    let mut s = linux_session(&b);
    // The RT side's end, whenever it comes relative to Linux's shell: an event, not a wait.
    s.wait_line(0, VCPU0_OFF, Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    let status = s
        .shell("rtctl status", Duration::from_secs(300))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        status.iter().any(|l| l
            == "partition rt (rt): CPUs 2, 3; stopped after a fault, boot 2, 1 fault restarts"),
        "{status:?}"
    );
    assert!(
        status
            .iter()
            .any(|l| l == "partition linux (linux): CPUs 0, 1; running, boot 1, 0 fault restarts"),
        "{status:?}"
    );
}
