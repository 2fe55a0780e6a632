//! A hostile Linux, with the RT latency probe running under deterministic time (-icount):
//! from Linux's shell, writes to the distributor (Debian's strict /dev/mem refuses to map
//! GICv3's; GICv2's maps, and the writes reach hv's model), stray writes and reads to hv's, the RT
//! partition's and unassigned memory, CPU hotplug of Linux's CPU 1, and a kernel panic.
//! After each: hv alive and answering (its console commands), the RT probe still running;
//! at the end it missed 0 periods, and hv reported every stray access.
//!
//! Not repeated here (tests/tests/linux.rs has them): reads of hv and RT memory, the
//! control page's refusal, reboot, poweroff followed by hv's console commands.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, latency_probe, linux_session};
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(120);
/// Long enough (virtual seconds) to outlast Linux's boot and every attack below (about
/// 7 s of virtual time on virt); each attack checks the probe still reports after it.
const PERIODS: u64 = 12_000;

/// hv answers its console commands (Ctrl-] ?) from line `from` on.
fn hv_answers(s: &mut Session) {
    let from = s.line_count();
    s.send("\x1d?").unwrap();
    s.wait_line(from, "console: Ctrl-] n = input to next partition", COMMAND)
        .unwrap_or_else(|e| panic!("hv's console did not answer: {e}"));
}

/// The probe on both RT vCPUs reported a period after line `from`.
fn probe_runs_after(s: &mut Session, from: usize) {
    for vcpu in 0..2 {
        let marker = format!("latency vCPU {vcpu}: ");
        s.wait_line(from, &marker, COMMAND)
            .unwrap_or_else(|e| panic!("RT vCPU {vcpu} stopped reporting: {e}"));
    }
}

fn hostile_linux(name: &str) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    latency_probe(&mut b, PERIODS);
    let mut s = linux_session(&b);

    // The distributor. Strict /dev/mem refuses to map it on GICv3 (Linux's driver holds
    // the region); on GICv2 it maps, and the writes reach hv's emulated distributor: all
    // SPIs 32-63 enabled (the foreign ones are dropped), SPIs 32-35 targeted at CPUs 2-7
    // (foreign CPUs: dropped), an SGI to CPUs 2-7 (dropped: not Linux's CPUs).
    let gicd: u64 = 0x0800_0000; // QEMU virt's GICD, for both GIC versions.
    for (offset, value) in [
        (0x104u64, 0xffff_ffffu32),
        (0x820, 0xfcfc_fcfc),
        (0xf00, 0x00fc_000f),
    ] {
        let out = s
            .shell(
                &format!("devmem {:#x} 32 {value:#x}; echo rc=$?", gicd + offset),
                COMMAND,
            )
            .unwrap();
        let refused = out.iter().any(|l| l.contains("Operation not permitted"));
        assert!(
            refused || out.last().map(String::as_str) == Some("rc=0"),
            "{offset:#x}: {out:?}"
        );
        if name == "virt" {
            assert!(refused, "strict /dev/mem maps GICv3's distributor: {out:?}");
        }
    }
    assert_eq!(s.shell("echo still here", COMMAND).unwrap(), ["still here"]);
    hv_answers(&mut s);

    // Stray writes: hv's image, the RT partition's RAM, unassigned space: each a bus error
    // for the process, reported by hv as outside Linux's sandbox.
    let rt = config.partitions.iter().find(|p| p.name == "rt").unwrap();
    let attacks = [
        ("hv", config.hv.ram.base + 0x8_0000),
        ("RT", rt.ram[0].base + 0x1000),
        ("unassigned", 0x0c00_0000),
    ];
    for (what, addr) in attacks {
        let from = s.line_count();
        let out = s
            .shell(&format!("devmem {addr:#x} 32 0xdeadbeef"), COMMAND)
            .unwrap();
        assert!(
            out.iter().any(|l| l.contains("Bus error")),
            "writing {what} memory at {addr:#x} from Linux: {out:?}"
        );
        let report = format!("write to IPA {addr:#x} outside its sandbox");
        assert!(
            s.lines_from(from)
                .iter()
                .any(|l| l.starts_with("[hv cpu") && l.contains(&report)),
            "hv reports the {what} write:\n{}",
            s.tail(20)
        );
    }
    let from = s.line_count();
    probe_runs_after(&mut s, from);

    // CPU hotplug: Linux takes its CPU 1 down (PSCI CPU_OFF to hv) and up again (CPU_ON).
    let out = s
        .shell(
            "echo 0 > /sys/devices/system/cpu/cpu1/online; cat /sys/devices/system/cpu/online",
            COMMAND,
        )
        .unwrap();
    // Kernel messages may come between (Linux's own "psci: CPU1 killed").
    assert_eq!(
        out.last().map(String::as_str),
        Some("0"),
        "CPU 1 went offline: {out:?}"
    );
    hv_answers(&mut s);
    let out = s
        .shell(
            "echo 1 > /sys/devices/system/cpu/cpu1/online; cat /sys/devices/system/cpu/online",
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        out.last().map(String::as_str),
        Some("0-1"),
        "CPU 1 came back: {out:?}"
    );
    let from = s.line_count();
    probe_runs_after(&mut s, from);

    // A kernel panic: Linux stops for good; hv and the RT partition do not notice.
    let from = s.line_count();
    s.send("echo c > /proc/sysrq-trigger\n").unwrap();
    s.wait_line(from, "Kernel panic", COMMAND)
        .unwrap_or_else(|e| panic!("no panic: {e}"));
    hv_answers(&mut s);
    let panicked = s.line_count();
    probe_runs_after(&mut s, panicked);

    // The probe's verdict, over the whole run.
    for vcpu in 0..2 {
        let done = format!("latency vCPU {vcpu}: done: {PERIODS} periods of 1000 us");
        let at = s
            .wait_line(0, &done, Duration::from_secs(600))
            .unwrap_or_else(|e| panic!("{e}"));
        let summary = &s.lines_from(at)[0];
        assert!(summary.ends_with("missed 0"), "vCPU {vcpu}: {summary}");
    }
    let all = s.lines_from(0);
    assert!(
        !all.iter()
            .any(|l| l.contains("FATAL") || l.contains("EL2 exception")),
        "hv stayed up:\n{}",
        s.tail(40)
    );
}

#[test]
fn virt_hostile_linux_changes_nothing_for_hv_and_the_rt_probe() {
    hostile_linux("virt");
}

#[test]
fn virt_gicv2_hostile_linux_changes_nothing_for_hv_and_the_rt_probe() {
    hostile_linux("virt-gicv2");
}
