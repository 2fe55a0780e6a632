//! The control demo (`rt.app=control`) on QEMU `virt` under deterministic time (-icount),
//! steered from Linux's shell with `rtctl`: the loop holds the default set-point on both
//! RT vCPUs, a new set-point reaches both loops and the measurement converges to it, an
//! out-of-range value is refused before anything is published, an overload disturbance
//! drives the plant out of its envelope and the watchdog puts the actuator in its safe
//! state, a re-arm brings the loop back; no deadline is missed throughout. The RT side's
//! replay of the `control` crate's reference script prints the same fingerprint as the
//! host's run of the same crate. Linux's faults (a panic, one and ten reboots, an out of
//! memory, a fork bomb) cost the 1 kHz loops no deadline and leave the plant at its
//! set-point and the telemetry moving for Linux afterwards.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, linux_session};
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(60);
/// How long one RT report line (one per second of virtual time per vCPU) may take.
const REPORT: Duration = Duration::from_secs(120);

fn control_boot() -> Session {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=control".to_string(),
        "rt.control.period-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ]);
    linux_session(&b)
}

/// The number after `"key":` in `json`, for each occurrence.
fn numbers(json: &str, key: &str) -> Vec<f64> {
    json.split(&format!("\"{key}\":"))
        .skip(1)
        .map(|rest| {
            let text: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || matches!(c, '-' | '.' | 'e' | 'E'))
                .collect();
            text.parse().unwrap_or_else(|_| panic!("`{key}` in {json}"))
        })
        .collect()
}

/// One `rtctl watch --json` sample.
fn watch(s: &mut Session) -> String {
    let out = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
    assert_eq!(out.len(), 1, "{out:?}");
    out[0].clone()
}

/// The first report line of `vcpu` from line `from` on, and its index.
fn report(s: &mut Session, from: usize, vcpu: usize) -> (usize, String) {
    let at = s
        .wait_line(from, &format!("control vCPU {vcpu}: period "), REPORT)
        .unwrap();
    (at, s.lines_from(at)[0].clone())
}

/// The value after `name ` in a report line (`measurement 1.0000 rad/s`).
fn field(line: &str, name: &str) -> f64 {
    let at = line
        .find(&format!("{name} "))
        .unwrap_or_else(|| panic!("{name} in {line}"));
    line[at + name.len() + 1..]
        .split([' ', ','])
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} in {line}"))
}

/// Waits (report by report, at most `reports` of them) until `vcpu`'s measurement is within
/// `tolerance` of `target`; returns the line.
fn converges(
    s: &mut Session,
    from: usize,
    vcpu: usize,
    target: f64,
    tolerance: f64,
    reports: usize,
) -> String {
    let mut at = from;
    for _ in 0..reports {
        let (i, line) = report(s, at, vcpu);
        if (field(&line, "measurement") - target).abs() <= tolerance {
            return line;
        }
        at = i + 1;
    }
    panic!("vCPU {vcpu} did not reach {target} within {reports} reports");
}

#[test]
fn virt_control_loop_follows_rtctl_refuses_bad_values_and_trips_safe_on_overload() {
    let mut s = control_boot();

    // The RT side's replay of the reference script computes the host's bits.
    let (host, host_last) = control::reference_run();
    let at = s.wait_line(0, "control: reference run: ", REPORT).unwrap();
    assert!(
        s.lines_from(at)[0].ends_with(&format!(
            "control: reference run: {} periods, fingerprint {:#018x}",
            host_last.seq,
            host.value()
        )),
        "{}",
        s.lines_from(at)[0]
    );

    // Both loops hold the default set-point (1 rad/s) and publish their figures.
    for vcpu in 0..2 {
        let line = converges(&mut s, 0, vcpu, 1.0, 0.001, 5);
        assert!(
            line.contains("misses 0, watchdog armed, params v0"),
            "{line}"
        );
    }
    let first = watch(&mut s);
    assert_eq!(
        first.matches("\"publisher\":\"control\"").count(),
        2,
        "{first}"
    );
    assert_eq!(
        first.matches("\"watchdog\":\"armed\"").count(),
        2,
        "{first}"
    );

    // Out of range: refused with the range, nothing published.
    for (set, refusal) in [
        (
            "setpoint=2.5",
            "rtctl: refused: 2.500 rad/s is out of range: setpoint takes -2.000 rad/s to \
             2.000 rad/s",
        ),
        (
            "disturbance=-1.5",
            "rtctl: refused: -1.500 N*m is out of range: disturbance takes -1.000 N*m to \
             1.000 N*m",
        ),
    ] {
        assert_eq!(
            s.shell(&format!("rtctl set {set}; echo status=$?"), COMMAND)
                .unwrap(),
            [refusal, "status=1"]
        );
    }

    // A new set-point reaches both loops and the measurement converges to it.
    let from = s.line_count();
    assert_eq!(
        s.shell("rtctl set setpoint=-1.2", COMMAND).unwrap(),
        ["published version 1: setpoint = -1.200 rad/s"]
    );
    let taken = s
        .wait_line(
            from,
            "control: parameters version 1 taken: set-point -1.2 rad/s",
            REPORT,
        )
        .unwrap();
    for vcpu in 0..2 {
        let line = converges(&mut s, taken, vcpu, -1.2, 0.001, 5);
        assert!(
            line.contains("misses 0, watchdog armed, params v1"),
            "{line}"
        );
    }
    let held = watch(&mut s);
    for m in numbers(&held, "measurement") {
        assert!((m + 1.2).abs() < 0.001, "{held}");
    }
    assert_eq!(numbers(&held, "setpoint"), [-1.2, -1.2], "{held}");
    assert_eq!(numbers(&held, "missed"), [0.0, 0.0], "{held}");
    assert_eq!(numbers(&held, "params_version"), [1.0, 1.0], "{held}");

    // An overload the bridge cannot hold drags the motor out of its envelope: the watchdog
    // trips and the actuator is safe (0 V, brake on) on both vCPUs.
    let from = s.line_count();
    assert_eq!(
        s.shell("rtctl set disturbance=-1", COMMAND).unwrap(),
        ["published version 2: disturbance = -1.000 N*m"]
    );
    for vcpu in 0..2 {
        let at = s
            .wait_line(
                from,
                &format!("control vCPU {vcpu}: watchdog tripped (speed outside envelope)"),
                REPORT,
            )
            .unwrap();
        assert!(
            s.lines_from(at)[0].ends_with("actuator safe (0 V, brake on), applied SafeStop"),
            "{}",
            s.lines_from(at)[0]
        );
    }
    let now = s.line_count();
    let (_, line) = report(&mut s, now, 0);
    assert!(line.contains("watchdog tripped-speed, params v2"), "{line}");
    let tripped = watch(&mut s);
    assert_eq!(
        tripped.matches("\"watchdog\":\"tripped-speed\"").count(),
        2,
        "{tripped}"
    );
    assert_eq!(numbers(&tripped, "effort"), [0.0, 0.0], "{tripped}");

    // The load removed and a re-arm asked for: both loops take the set-point again.
    let from = s.line_count();
    assert_eq!(
        s.shell("rtctl set disturbance=0 rearm=1", COMMAND).unwrap(),
        ["published version 3: disturbance = 0.000 N*m rearm = 1"]
    );
    for vcpu in 0..2 {
        s.wait_line(
            from,
            &format!("control vCPU {vcpu}: watchdog re-armed"),
            REPORT,
        )
        .unwrap();
        let line = converges(&mut s, from, vcpu, -1.2, 0.001, 5);
        assert!(
            line.contains("misses 0, watchdog armed, params v3"),
            "{line}"
        );
    }
    let after = watch(&mut s);
    assert_eq!(numbers(&after, "missed"), [0.0, 0.0], "{after}");
    assert_eq!(
        after.matches("\"watchdog\":\"armed\"").count(),
        2,
        "{after}"
    );
}

/// The loop alone (`bulkhead.only=rt`) under -icount: both vCPUs hold the set-point and
/// miss no deadline over their first reports.
#[test]
fn virt_control_loop_alone_misses_nothing() {
    alone_misses_nothing("virt");
}

/// As on `virt`, with the GICv2 (list registers through GICH, the GICC for the vCPUs).
#[test]
fn virt_gicv2_control_loop_alone_misses_nothing() {
    alone_misses_nothing("virt-gicv2");
}

/// Under -icount the loop is deterministic: two boots print the same reports, bit for bit
/// (latencies, figures and the fingerprint of every period's record).
#[test]
fn virt_control_loop_runs_the_same_twice_under_icount() {
    let first = alone_misses_nothing("virt");
    let second = alone_misses_nothing("virt");
    assert_eq!(first, second);
    assert!(first[0].contains(", fingerprint 0x"), "{first:?}");
}

/// Boots `name`'s loop alone, checks its first three reports per vCPU and returns them.
fn alone_misses_nothing(name: &str) -> Vec<String> {
    let (config, image) = board(name);
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs = vec![
        xtask::qemu::only_rt(&config),
        "rt.app=control".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ];
    let log = bulkhead_tests::boot_until(&b, |lines| {
        (0..2).all(|v| {
            lines
                .iter()
                .filter(|l| l.contains(&format!("control vCPU {v}: period ")))
                .count()
                >= 3
        })
    });
    let text = log.text();
    let mut out = Vec::new();
    for v in 0..2 {
        let reports: Vec<&str> = text
            .lines()
            .filter(|l| l.contains(&format!("control vCPU {v}: period ")))
            .collect();
        assert!(reports.len() >= 3, "{text}");
        let last = reports[2];
        assert!(last.contains("misses 0, watchdog armed"), "{last}");
        assert!((field(last, "measurement") - 1.0).abs() < 0.001, "{last}");
        out.extend(reports[..3].iter().map(|r| r.to_string()));
    }
    out
}

/// The set-point the fault tests publish before their faults (parameters version 1).
const HELD: f64 = 0.5;

/// The loop at 1 kHz beside Linux under -icount, Linux booted `quiet` (its kernel prints
/// warnings and worse, as its init asks anyway once it is up: the same kernel and
/// userspace, a console without the boot's ~230 info lines between the test's commands);
/// set-point [`HELD`] published and taken by both loops.
/// Returns the session and each RT CPU's telemetry period counter.
fn fault_boot() -> (Session, Vec<f64>) {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=control".to_string(),
        "rt.control.period-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
        "linux.quiet".to_string(),
    ]);
    let mut s = linux_session(&b);
    assert_eq!(
        s.shell("rtctl set setpoint=0.5", COMMAND).unwrap(),
        ["published version 1: setpoint = 0.500 rad/s"]
    );
    let from = s.line_count();
    for vcpu in 0..2 {
        converges(&mut s, from, vcpu, HELD, 0.001, 5);
    }
    let periods = numbers(&watch(&mut s), "periods");
    assert_eq!(periods.len(), 2, "{periods:?}");
    (s, periods)
}

/// The RT side held from line `from` on, through `what`: after one more report of each
/// vCPU (so the range has at least one of each), every report in it says no deadline
/// missed, watchdog armed, parameters version 1 and a measurement within 0.001 rad/s of
/// [`HELD`]; no watchdog trip, no fault and no fatal error from hv.
fn held_since(s: &mut Session, from: usize, what: &str) {
    let now = s.line_count();
    for vcpu in 0..2 {
        report(s, now, vcpu);
    }
    let mut seen = [0usize; 2];
    for line in s.lines_from(from) {
        assert!(
            !line.contains("watchdog tripped") && !line.contains("FATAL"),
            "{what}: {line}"
        );
        for (vcpu, n) in seen.iter_mut().enumerate() {
            if line.contains(&format!("control vCPU {vcpu}: period ")) {
                *n += 1;
                assert!(
                    line.contains("misses 0, watchdog armed, params v1"),
                    "{what}: {line}"
                );
                assert!(
                    (field(line, "measurement") - HELD).abs() < 0.001,
                    "{what}: {line}"
                );
            }
        }
    }
    assert!(seen.iter().all(|&n| n >= 1), "{what}: reports {seen:?}");
}

/// Linux's telemetry view after `what`: both RT CPUs' period counters past `periods`
/// (updated), no miss, parameters version 1 kept, watchdogs armed.
fn telemetry_moves(s: &mut Session, periods: &mut Vec<f64>, what: &str) {
    let after = watch(s);
    let now = numbers(&after, "periods");
    assert_eq!(now.len(), 2, "{what}: {after}");
    for cpu in 0..2 {
        assert!(now[cpu] > periods[cpu], "{what}: {periods:?} -> {now:?}");
    }
    assert_eq!(numbers(&after, "missed"), [0.0, 0.0], "{what}: {after}");
    assert_eq!(
        numbers(&after, "params_version"),
        [1.0, 1.0],
        "{what}: {after}"
    );
    assert_eq!(
        after.matches("\"watchdog\":\"armed\"").count(),
        2,
        "{what}: {after}"
    );
    for m in numbers(&after, "measurement") {
        assert!((m - HELD).abs() < 0.001, "{what}: {after}");
    }
    *periods = now;
}

/// Ten Linux reboots in a row with the loop at 1 kHz (-icount): hv restarts the partition
/// each time (boots 2 to 11), the new Linux reaches its shell, and across every one the
/// loops miss no deadline, keep the set-point in force and hold the plant in its
/// envelope; their telemetry is there again for each new Linux, still moving. Prints what
/// each reboot took in the loop's periods (virtual milliseconds) and in wall time.
#[test]
fn virt_control_loop_holds_through_ten_linux_reboots() {
    let (mut s, mut periods) = fault_boot();
    for boot in 2..=11 {
        let what = format!("reboot to boot {boot}");
        let started = std::time::Instant::now();
        let before = periods.clone();
        let from = s.line_count();
        s.send("reboot\n").unwrap();
        let restarted = s
            .wait_line(
                from,
                &format!("partition `linux` restarted (boot {boot})"),
                bulkhead_tests::LINUX_TIMEOUT,
            )
            .unwrap();
        s.wait_line(
            restarted,
            xtask::initramfs::READY_PREFIX,
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap();
        s.wait_prompt("# ", COMMAND).unwrap();
        held_since(&mut s, from, &what);
        telemetry_moves(&mut s, &mut periods, &what);
        println!(
            "{what}: {} and {} loop periods (RT vCPU 0 and 1) from `reboot` to the new \
             shell's telemetry, {:.1} s wall",
            periods[0] - before[0],
            periods[1] - before[1],
            started.elapsed().as_secs_f64()
        );
    }
    assert_eq!(
        s.shell("rtctl get setpoint", COMMAND).unwrap(),
        ["setpoint = 0.500 rad/s"]
    );
}

/// Linux runs out of memory with the loop at 1 kHz (-icount): busybox awk builds 1 MiB
/// strings until nothing is left (Linux has no swap), Linux's OOM killer kills it (its
/// console line names awk, the shell sees SIGKILL), Linux goes on without a restart, and
/// the loops miss no deadline and hold the plant throughout.
#[test]
fn virt_control_loop_holds_through_a_linux_out_of_memory() {
    let (mut s, mut periods) = fault_boot();
    let from = s.line_count();
    let out = s
        .shell(
            "awk 'BEGIN { s = \"x\"; for (k = 0; k < 20; k++) s = s s; \
             for (i = 0; ; i++) a[i] = s i }'; echo status=$?",
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap();
    assert!(out.iter().any(|l| l == "status=137"), "{out:?}");
    let killed = s
        .lines_from(from)
        .iter()
        .find(|l| l.contains("Out of memory: Killed process "))
        .unwrap_or_else(|| panic!("no OOM kill reported:\n{}", s.tail(40)))
        .clone();
    assert!(killed.contains("(awk)"), "{killed}");
    assert!(
        !s.lines_from(from)
            .iter()
            .any(|l| l.contains("partition `linux` restarted")),
        "Linux restarted:\n{}",
        s.tail(40)
    );
    held_since(&mut s, from, "out of memory");
    telemetry_moves(&mut s, &mut periods, "out of memory");
    println!("OOM kill: {killed}");
}

/// A fork bomb in Linux with the loop at 1 kHz (-icount), bounded as a system would bound
/// it: awk processes that each start copies of themselves in a loop, retrying a refused
/// fork at once (as bash's bomb does; busybox sh would give up), started in a cgroup whose
/// pids controller allows 200 tasks. It fills the cgroup and keeps Linux's CPUs busy with
/// fork attempts (Linux counts those it refused in `pids.events` and logs the first) for
/// two CPU-seconds (the cgroup's `cpu.stat`), then the cgroup is killed (`cgroup.kill`); the loops miss no deadline and hold the
/// plant, and Linux's shell and telemetry are there afterwards.
#[test]
fn virt_control_loop_holds_through_a_linux_fork_bomb() {
    let (mut s, mut periods) = fault_boot();
    let cg = "/sys/fs/cgroup";
    assert_eq!(
        s.shell(
            &format!(
                "mount -t cgroup2 none {cg} && echo +pids > {cg}/cgroup.subtree_control && \
                 mkdir {cg}/bomb && echo 200 > {cg}/bomb/pids.max && \
                 echo 'BEGIN {{ while (1) system(\"awk -f /tmp/bomb.awk &\") }}' \
                 > /tmp/bomb.awk && echo bomb cgroup ready"
            ),
            COMMAND,
        )
        .unwrap(),
        ["bomb cgroup ready"]
    );
    let from = s.line_count();
    let out = s
        .shell(
            &format!(
                "sh -c 'echo $$ > {cg}/bomb/cgroup.procs; exec awk -f /tmp/bomb.awk' \
                 </dev/null >/dev/null 2>&1 & \
                 until read -r _ used < {cg}/bomb/cpu.stat && [ \"$used\" -ge 2000000 ]; \
                 do sleep 1; done; read -r tasks < {cg}/bomb/pids.current; \
                 read -r _ refused < {cg}/bomb/pids.events; \
                 echo saturated: $tasks tasks, $refused forks refused, $used us of CPU"
            ),
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap();
    let saturated = out
        .iter()
        .find(|l| l.starts_with("saturated: "))
        .unwrap_or_else(|| panic!("{out:?}"))
        .clone();
    let figures: Vec<u64> = saturated
        .split([' ', ','])
        .filter_map(|w| w.parse().ok())
        .collect();
    // Two CPU-seconds into the bomb the cgroup is full (a task or two may be between its
    // exit and the fork that replaces it) and Linux has refused forks by the thousand.
    assert!(
        figures.len() == 3
            && (190..=200).contains(&figures[0])
            && figures[1] >= 1000
            && figures[2] >= 2_000_000,
        "{saturated}"
    );
    assert_eq!(
        s.shell(
            "dmesg | grep -c 'fork rejected by pids controller in /bomb'",
            COMMAND
        )
        .unwrap(),
        ["1"]
    );
    let out = s
        .shell(
            &format!(
                "echo 1 > {cg}/bomb/cgroup.kill; \
                 until read -r n < {cg}/bomb/pids.current && [ \"$n\" -eq 0 ]; \
                 do sleep 1; done; rmdir {cg}/bomb && echo bomb gone"
            ),
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap();
    assert!(out.ends_with(&["bomb gone".to_string()]), "{out:?}");
    assert!(
        !s.lines_from(from)
            .iter()
            .any(|l| l.contains("partition `linux` restarted")),
        "Linux restarted:\n{}",
        s.tail(40)
    );
    held_since(&mut s, from, "fork bomb");
    telemetry_moves(&mut s, &mut periods, "fork bomb");
    println!("fork bomb: {saturated}");
}

/// Linux faults with the loop running (-icount): a kernel panic (sysrq `c`, Linux reboots
/// itself one second later through `panic=1`) and a reboot. Across both the RT loops miss
/// no deadline, keep the set-point Linux published before, and their telemetry is there
/// again for the new Linux, still moving.
#[test]
fn virt_control_loop_holds_through_a_linux_panic_and_a_reboot() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=control".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
        "linux.panic=1".to_string(),
    ]);
    let mut s = linux_session(&b);
    assert_eq!(
        s.shell("rtctl set setpoint=0.5", COMMAND).unwrap(),
        ["published version 1: setpoint = 0.500 rad/s"]
    );
    let from = s.line_count();
    for vcpu in 0..2 {
        converges(&mut s, from, vcpu, 0.5, 0.001, 5);
    }
    let mut periods = numbers(&watch(&mut s), "periods");
    for (fault, command) in [
        ("panic", "echo c > /proc/sysrq-trigger\n"),
        ("reboot", "reboot\n"),
    ] {
        let from = s.line_count();
        s.send(command).unwrap();
        let restarted = s
            .wait_line(
                from,
                "channel: header written again for Linux's restart",
                bulkhead_tests::LINUX_TIMEOUT,
            )
            .unwrap();
        s.wait_line(
            restarted,
            xtask::initramfs::READY_PREFIX,
            bulkhead_tests::LINUX_TIMEOUT,
        )
        .unwrap();
        s.wait_prompt("# ", COMMAND).unwrap();
        // The loops' reports while Linux went down and came back: no miss, no trip.
        let reports: Vec<String> = s
            .lines_from(from)
            .iter()
            .filter(|l| l.contains("control vCPU ") && l.contains(": period "))
            .cloned()
            .collect();
        for r in &reports {
            assert!(
                r.contains("misses 0, watchdog armed, params v1"),
                "{fault}: {r}"
            );
            assert!(
                (field(r, "measurement") - 0.5).abs() < 0.001,
                "{fault}: {r}"
            );
        }
        let after = watch(&mut s);
        let now = numbers(&after, "periods");
        assert_eq!(now.len(), 2, "{after}");
        for cpu in 0..2 {
            assert!(now[cpu] > periods[cpu], "{fault}: {periods:?} -> {now:?}");
        }
        assert_eq!(numbers(&after, "missed"), [0.0, 0.0], "{fault}: {after}");
        assert_eq!(numbers(&after, "params_version"), [1.0, 1.0], "{after}");
        assert_eq!(
            after.matches("\"watchdog\":\"armed\"").count(),
            2,
            "{after}"
        );
        periods = now;
    }
}
