//! The Linux partition: Debian's unmodified arm64 kernel boots to a busybox shell on CPUs
//! 0-1 under hv, beside the RT partition on CPUs 2-3, on every board. A test types into the
//! shell like a person at the console and reads the answers.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, edited_image, linux_session, payload_offset, LINUX_TIMEOUT};
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(60);
/// RT heartbeat period in these tests: frequent enough to see the RT side keep going.
const HEARTBEAT: &str = "rt.heartbeat-ms=1000";

fn heartbeats_after(session: &Session, from: usize) -> usize {
    session
        .lines_from(from)
        .iter()
        .filter(|l| l.starts_with("[rt cpu") && l.contains("heartbeat"))
        .count()
}

/// Waits until the RT partition printed another heartbeat after line `from`.
fn rt_keeps_running(session: &mut Session, from: usize) {
    session
        .wait_line(from, "heartbeat", Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("the RT partition stopped printing: {e}"));
    assert!(heartbeats_after(session, from) >= 1);
}

/// Both partitions up; the shell answers; the timer ticks on both Linux CPUs; `/dev/mem`
/// reads of RT and hv memory are bus errors in Linux, reported by hv, and the RT
/// partition keeps running; hv's console commands answer.
fn linux_shell(name: &str) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(HEARTBEAT.into());
    let mut s = linux_session(&b);
    let ready = s
        .lines_from(0)
        .iter()
        .find(|l| l.contains("bulkhead-linux: ready"));
    assert_eq!(
        ready.map(String::as_str),
        Some("bulkhead-linux: ready (2 cpus)")
    );

    assert_eq!(s.shell("nproc", COMMAND).unwrap(), ["2"]);

    let timer = s
        .shell("grep arch_timer /proc/interrupts", COMMAND)
        .unwrap();
    assert_eq!(timer.len(), 1, "one timer line: {timer:?}");
    let counts: Vec<u64> = timer[0]
        .split_whitespace()
        .skip(1)
        .take(2)
        .map(|n| n.parse().expect("a count per CPU"))
        .collect();
    assert!(
        counts.len() == 2 && counts.iter().all(|&n| n > 0),
        "the timer ticks on both Linux CPUs: {timer:?}"
    );

    let rt = config.partitions.iter().find(|p| p.name == "rt").unwrap();
    for (what, addr) in [
        ("RT", rt.ram[0].base),
        ("hv", config.hv.ram.base + 0x8_0000),
    ] {
        let from = s.line_count();
        let out = s.shell(&format!("devmem {addr:#x} 32"), COMMAND).unwrap();
        assert!(
            out.iter().any(|l| l.contains("Bus error")),
            "reading {what} memory at {addr:#x} from Linux is a bus error: {out:?}"
        );
        let report = format!("read of IPA {addr:#x} outside its sandbox");
        assert!(
            s.lines_from(from)
                .iter()
                .any(|l| l.starts_with("[hv cpu") && l.contains(&report)),
            "hv reports the {what} access:\n{}",
            s.tail(20)
        );
        rt_keeps_running(&mut s, from);
    }
    // A device hv emulates says why it refused: a control-page write without the magic.
    let from = s.line_count();
    let control = abi::CONTROL_PAGE_IPA;
    let out = s
        .shell(&format!("devmem {control:#x} 32 0x1"), COMMAND)
        .unwrap();
    assert!(out.iter().any(|l| l.contains("Bus error")), "{out:?}");
    assert!(
        s.lines_from(from).iter().any(|l| l.starts_with("[hv cpu")
            && l.contains(&format!(
                "write to IPA {control:#x} refused by control page"
            ))
            && l.contains("only the ready magic")),
        "hv names the control page's reason:\n{}",
        s.tail(20)
    );

    // The channel's memory, outside Linux's own RAM, is mapped for it: no bus error.
    let channel = config
        .channel
        .as_ref()
        .expect("the board keeps a channel")
        .ram
        .base;
    let out = s
        .shell(
            &format!("devmem {channel:#x} 32 0x5a5aa5a5; devmem {channel:#x} 32"),
            COMMAND,
        )
        .unwrap();
    assert_eq!(out, ["0x5A5AA5A5"], "the channel is memory Linux can use");

    // Linux itself is fine afterwards.
    assert_eq!(s.shell("echo still here", COMMAND).unwrap(), ["still here"]);

    // hv's console commands (Ctrl-] ?) answer without disturbing the shell.
    let from = s.line_count();
    s.send("\x1d?").unwrap();
    s.wait_line(from, "console: Ctrl-] n = input to next partition", COMMAND)
        .unwrap();
    assert_eq!(s.shell("echo after help", COMMAND).unwrap(), ["after help"]);
}

#[test]
fn virt_linux_shell_beside_the_rt_partition() {
    linux_shell("virt");
}

#[test]
fn virt_gicv2_linux_shell_beside_the_rt_partition() {
    linux_shell("virt-gicv2");
}

#[test]
fn rpi4_linux_shell_beside_the_rt_partition() {
    linux_shell("rpi4");
}

/// `poweroff` in Linux stops the Linux partition only: hv says so, the RT partition keeps
/// printing and the machine stays on.
fn poweroff_leaves_rt_running(name: &str) {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(HEARTBEAT.into());
    let mut s = linux_session(&b);
    let from = s.line_count();
    s.send("poweroff\n").unwrap();
    let off = s
        .wait_line(from, "partition `linux` powered itself off", LINUX_TIMEOUT)
        .unwrap();
    // Nobody reads Linux's console any more: hv says where typed bytes go now.
    s.wait_line(off, "console: input now goes to no partition", COMMAND)
        .unwrap();
    // Had the machine gone down with Linux, QEMU would have exited at once: the RT
    // partition printing twice more after hv's report is what shows it stayed on.
    let first = s.wait_line(off, "heartbeat", COMMAND).unwrap();
    rt_keeps_running(&mut s, first + 1);
    assert!(s.exited().is_none(), "the machine stays on");
    assert!(heartbeats_after(&s, off) >= 2);
    // hv's console still reads what is typed with Linux's CPUs stopped.
    let from = s.line_count();
    s.send("\x1d?").unwrap();
    let help = s
        .wait_line(from, "console: Ctrl-] n = input to next partition", COMMAND)
        .unwrap();
    assert!(
        s.lines_from(help)
            .iter()
            .any(|l| l.contains("taking input: none")),
        "nobody takes input after Linux powered off:\n{}",
        s.tail(5)
    );
}

#[test]
fn virt_linux_poweroff_leaves_the_rt_partition_running() {
    poweroff_leaves_rt_running("virt");
}

#[test]
fn virt_gicv2_linux_poweroff_leaves_the_rt_partition_running() {
    poweroff_leaves_rt_running("virt-gicv2");
}

/// `reboot` in Linux restarts the Linux partition only: it comes back to its shell (boot
/// 2) while the RT partition keeps running.
/// Linux's boot writes PMU and debug registers on each of its CPUs (PMUSERENR_EL0, the OS
/// lock, MDSCR_EL1, the breakpoint resets). MDCR_EL2 traps them and hv answers them
/// read-as-zero, write-ignored: each is counted as trapped, so none reached the PMU whose
/// cycle counter hv measures itself with on those CPUs (nor the debug hardware).
fn pmu_and_debug_are_hvs(name: &str) {
    let (_, log) = bulkhead_tests::smoke(name);
    for cpu in [0, 1] {
        let line = log
            .line(&format!(
                "stats: CPU {cpu}: guest register accesses answered read-as-zero"
            ))
            .unwrap_or_else(|| panic!("Linux's CPU {cpu} PMU/debug accesses:\n{}", log.text()));
        let counts: Vec<u64> = line
            .rsplit(": ")
            .next()
            .unwrap()
            .split(", ")
            .map(|part| part.split(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(counts.iter().all(|&n| n > 0), "{line}");
    }
    assert!(log.fatal().is_none());
}

#[test]
fn virt_linux_pmu_and_debug_accesses_are_answered_by_hv() {
    pmu_and_debug_are_hvs("virt");
}

#[test]
fn virt_gicv2_linux_pmu_and_debug_accesses_are_answered_by_hv() {
    pmu_and_debug_are_hvs("virt-gicv2");
}

#[test]
fn virt_linux_reboot_restarts_only_linux() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(HEARTBEAT.into());
    let mut s = linux_session(&b);
    let from = s.line_count();
    s.send("reboot\n").unwrap();
    let restarted = s
        .wait_line(from, "partition `linux` restarted (boot 2)", LINUX_TIMEOUT)
        .unwrap();
    rt_keeps_running(&mut s, restarted);
    let again = s
        .wait_line(restarted, xtask::initramfs::READY_PREFIX, LINUX_TIMEOUT)
        .unwrap();
    s.wait_prompt("# ", COMMAND).unwrap();
    assert!(again > restarted);
    assert_eq!(s.shell("nproc", COMMAND).unwrap(), ["2"]);
    assert!(
        !s.lines_from(from)
            .iter()
            .any(|l| l.contains("partition `rt` restarted")),
        "the RT partition was not restarted"
    );
}

/// Under deterministic time, the latency probe misses no period while Linux boots and then
/// spins on both of its CPUs.
#[test]
fn virt_probe_misses_no_period_while_linux_boots_and_spins() {
    const PERIODS: u64 = 12_000;
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    bulkhead_tests::latency_probe(&mut b, PERIODS);
    let mut s = linux_session(&b);
    s.send("while :; do :; done &\nwhile :; do :; done &\n")
        .unwrap();
    let spinning = s.line_count();
    let done = |vcpu: usize| format!("latency vCPU {vcpu}: done: {PERIODS} periods of 1000 us");
    for vcpu in 0..2 {
        s.wait_line(0, &done(vcpu), Duration::from_secs(400))
            .unwrap();
    }
    for vcpu in 0..2 {
        let lines = s.lines_from(0);
        let summary = lines.iter().find(|l| l.contains(&done(vcpu))).unwrap();
        assert!(summary.ends_with("missed 0"), "vCPU {vcpu}: {summary}");
        // The probe was still running once both Linux CPUs spun.
        assert!(
            s.lines_from(spinning)
                .iter()
                .any(|l| l.contains(&format!("latency vCPU {vcpu}: "))
                    && l.contains(" periods of 1000 us: ")),
            "vCPU {vcpu} reported after Linux started spinning"
        );
    }
}

/// A corrupt Linux Image or initramfs in the system image is named before anything runs.
#[test]
fn corrupt_linux_payloads_are_named() {
    for (index, what) in [(2, "Linux Image"), (3, "initramfs")] {
        let (config, image) = edited_image("virt", &format!("bad-linux-{index}"), |bytes| {
            let at = payload_offset(bytes, index) + 0x1000;
            bytes[at] ^= 0xff;
        });
        let log = bulkhead_tests::boot(&Boot::new(&config, &image).unverified());
        let fatal = log
            .fatal()
            .unwrap_or_else(|| panic!("corrupt {what} refused"));
        assert!(
            fatal.contains(what) && fatal.contains("corrupt"),
            "the FATAL names the {what} payload: {fatal}"
        );
    }
}
