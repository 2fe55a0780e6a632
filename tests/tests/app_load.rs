//! `rtctl load NAME` typed into Linux's shell on QEMU virt: hv restarts only the RT
//! partition, with the app asked for (its DTB's boot arguments), and Linux keeps running;
//! an unknown app, and any app on a board file without `load_from_linux`, are refused with
//! hv's reason while the running app goes on. Every wait is for a line.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, board_variant, linux_session};
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(120);
const LINE: Duration = Duration::from_secs(120);

/// Linux's shell on `config`'s image, the RT partition running the latency probe, under
/// -icount: the control app's 1 kHz loop must not depend on how busy the host is (without
/// it, a loaded host starves the app's reporter thread, which reports ready).
fn latency_boot(config: &platform::config::Config, image: &std::path::Path) -> Session {
    let mut b = Boot::new(config, image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=latency".to_string(),
        "rt.latency.interval-us=1000".to_string(),
    ]);
    linux_session(&b)
}

/// Runs `command` and returns its output and exit status.
fn run(s: &mut Session, command: &str) -> (Vec<String>, String) {
    let mut out = s.shell(&format!("{command}; echo rc=$?"), COMMAND).unwrap();
    let rc = out.pop().unwrap_or_default();
    (out, rc)
}

fn no_linux_restart(s: &Session) {
    assert!(
        !s.lines_from(0)
            .iter()
            .any(|l| l.contains("partition `linux` restarted")),
        "Linux was restarted:\n{}",
        s.tail(40)
    );
}

#[test]
fn virt_rtctl_load_restarts_only_the_rt_partition_with_the_app_asked_for() {
    let (config, image) = board("virt");
    let mut s = latency_boot(&config, &image);
    s.wait_line(0, "latency vCPU 0: ", LINE).unwrap();

    // The control app, asked for by name: hv names it, restarts the RT partition only.
    let from = s.line_count();
    let (out, rc) = run(&mut s, "rtctl load control");
    assert_eq!(rc, "rc=0", "{out:?}");
    assert!(
        out.iter()
            .any(|l| l.contains("hv accepted `control`") && l.contains("(boot 2)")),
        "{out:?}"
    );
    assert_eq!(
        out.last().map(String::as_str),
        Some("load: the RT partition runs `control` (boot 2, every vCPU ready)"),
        "{out:?}"
    );
    let asked = s
        .wait_line(
            from,
            "rtctl load: partition `rt` restarts with app `control` (boot 2)",
            LINE,
        )
        .unwrap();
    let restarted = s
        .wait_line(asked, "partition `rt` restarted (boot 2)", LINE)
        .unwrap();
    for vcpu in 0..2 {
        s.wait_line(restarted, &format!("control vCPU {vcpu}: period "), LINE)
            .unwrap();
    }
    // The channel tells Linux too.
    let status = s.shell("rtctl status", COMMAND).unwrap();
    assert!(
        status
            .iter()
            .any(|l| l.starts_with("partition rt (rt)") && l.contains("running, boot 2")),
        "{status:?}"
    );

    // A name guest-rt does not know: refused with hv's reason, the control loop goes on.
    let (out, rc) = run(&mut s, "rtctl load nope");
    assert_eq!(rc, "rc=1", "{out:?}");
    assert!(
        out.iter().any(
            |l| l.contains("load `nope`: hv refused: not one of guest-rt's apps")
                && l.contains("latency|control|kernel-bench")
        ),
        "{out:?}"
    );
    let after = s.line_count();
    s.wait_line(after, "control vCPU 0: period ", LINE).unwrap();
    assert!(
        !s.lines_from(restarted + 1)
            .iter()
            .any(|l| l.contains("partition `rt` restarted")),
        "a refused load restarted the RT partition:\n{}",
        s.tail(30)
    );

    // And back to the probe: a third boot of the RT partition, none of Linux.
    let from = s.line_count();
    let (out, rc) = run(&mut s, "rtctl load latency");
    assert_eq!(rc, "rc=0", "{out:?}");
    let restarted = s
        .wait_line(from, "partition `rt` restarted (boot 3)", LINE)
        .unwrap();
    s.wait_line(restarted, "latency vCPU 1: ", LINE).unwrap();
    let echo = s.shell("echo $((6 * 7))", COMMAND).unwrap();
    assert_eq!(echo, ["42"]);
    no_linux_restart(&s);
}

#[test]
fn virt_rtctl_load_is_refused_where_the_board_file_does_not_allow_it() {
    let (config, image) = board_variant("virt", "virt-no-load", |c| {
        for p in &mut c.partitions {
            p.load_from_linux = false;
        }
    });
    let mut s = latency_boot(&config, &image);
    s.wait_line(0, "latency vCPU 0: ", LINE).unwrap();
    let from = s.line_count();
    let (out, rc) = run(&mut s, "rtctl load control");
    assert_eq!(rc, "rc=1", "{out:?}");
    assert!(
        out.iter().any(
            |l| l.contains("hv refused: the board file does not allow it")
                && l.contains("load_from_linux = true")
        ),
        "{out:?}"
    );
    s.wait_line(
        from,
        "rtctl load: refused for partition `rt`: the board file",
        LINE,
    )
    .unwrap();
    // The probe was not stopped: it reports on, in the same boot.
    let after = s.line_count();
    s.wait_line(after, "latency vCPU 0: ", LINE).unwrap();
    assert!(
        !s.lines_from(from)
            .iter()
            .any(|l| l.contains("partition `rt` restarted")),
        "{}",
        s.tail(30)
    );
    no_linux_restart(&s);
}

#[test]
fn virt_rtctl_load_restarts_an_rt_partition_that_powered_itself_off() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.selftest=system-off".to_string(),
        "rt.heartbeat-ms=20".to_string(),
    ]);
    let mut s = linux_session(&b);
    s.wait_line(0, "powered itself off", LINE).unwrap();
    // The load drops the boot's self-test word (guest-rt refuses an app beside one).
    let from = s.line_count();
    let (out, rc) = run(&mut s, "rtctl load latency");
    assert_eq!(rc, "rc=0", "{out:?}\n{}", s.tail(30));
    let restarted = s
        .wait_line(from, "partition `rt` restarted (boot 2)", LINE)
        .unwrap();
    s.wait_line(restarted, "latency vCPU 1: ", LINE).unwrap();
    no_linux_restart(&s);
}
