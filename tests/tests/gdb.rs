//! GDB into a running system, as `cargo xtask run --gdb` sets it up: QEMU's gdbstub holds
//! the CPUs at reset, `gdb-multiarch` loads hv's and guest-rt's symbols where they run
//! (xtask's own commands), and in batch mode a breakpoint in guest-rt is hit on an RT CPU,
//! one in hv's trap path is hit, and each backtrace names functions of the right binary.
#![forbid(unsafe_code)]

use std::net::TcpListener;
use std::process::{Command, Stdio};

use bulkhead_tests::{board, BOOT_TIMEOUT};
use xtask::qemu::{self, Boot};

/// A guest-rt function every RT vCPU calls early (each console line goes through it).
const GUEST_RT_FUNCTION: &str = "guest_rt::arch::console::print";
/// hv's handler of a lower-EL synchronous exception (guest-rt's console hypercall is the
/// first such trap).
const HV_FUNCTION: &str = "hv::arch::vcpu::trap_exit::handle_trap";

/// A local port nobody listens on now (QEMU binds it right after).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    listener.local_addr().expect("bound").port()
}

/// The backtrace printed between `echo` markers `start` and `end`.
fn section<'a>(lines: &'a [String], start: &str, end: &str) -> Vec<&'a str> {
    lines
        .iter()
        .skip_while(|l| !l.contains(start))
        .skip(1)
        .take_while(|l| !l.contains(end))
        .map(String::as_str)
        .collect()
}

/// Function names of the `#N  ...` frame lines (`#1  0x... in NAME (args) at ...`).
fn frame_functions<'a>(lines: &[&'a str]) -> Vec<&'a str> {
    lines
        .iter()
        .filter(|l| l.starts_with('#'))
        .filter_map(|l| {
            let rest = l.split_once("  ")?.1;
            let rest = rest.split_once(" in ").map_or(rest, |(_, name)| name);
            rest.split(" (").next()
        })
        .collect()
}

#[test]
fn gdb_stops_in_guest_rt_on_an_rt_cpu_and_in_hvs_trap_path() {
    let gdb = xtask::setup::GDB;
    let present = Command::new(gdb)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        present,
        "{gdb} is missing: `cargo xtask test` installs it, or `cargo xtask run --gdb`, or \
         `apt-get install gdb-multiarch`"
    );
    let (config, image) = board("virt");
    let port = free_port();
    let mut b = Boot::new(&config, &image);
    b.gdb_port = Some(port);
    let placed = xtask::gdb::placements(&config, &xtask::image::binaries())
        .unwrap_or_else(|e| panic!("{e}"));

    let mut cmd = b.command().unwrap_or_else(|e| panic!("{e}"));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut qemu_child = cmd.spawn().expect("QEMU starts");

    let mut gdb_cmd = Command::new(gdb);
    gdb_cmd.args(["-batch", "-nx", "-ex", "set tcp connect-timeout 120"]);
    let script = xtask::gdb::commands(&placed, port).into_iter().chain([
        "info threads".to_string(),
        format!("break {GUEST_RT_FUNCTION}"),
        "continue".into(),
        "echo @@guest-rt-stop\\n".into(),
        "thread".into(),
        "bt".into(),
        "echo @@guest-rt-end\\n".into(),
        "delete".into(),
        format!("break {HV_FUNCTION}"),
        "continue".into(),
        "echo @@hv-stop\\n".into(),
        "bt".into(),
        "echo @@hv-end\\n".into(),
        "kill".into(),
    ]);
    for line in script {
        gdb_cmd.args(["-ex", &line]);
    }
    let log = qemu::capture_command(gdb_cmd, BOOT_TIMEOUT, false).unwrap_or_else(|e| panic!("{e}"));
    let _ = qemu_child.kill();
    let _ = qemu_child.wait();
    println!("---- gdb ----\n{}\n-------------", log.text());
    assert!(!log.timed_out(), "gdb did not finish");

    // Thread N is CPU N-1; the RT partition's CPUs are the board file's.
    let rt = qemu::rt_partitions(&config)
        .next()
        .expect("an RT partition");
    let rt_threads: Vec<String> = rt.cpus.iter().map(|c| (c + 1).to_string()).collect();
    let hit = log
        .line(&format!("hit Breakpoint 1, {GUEST_RT_FUNCTION}"))
        .unwrap_or_else(|| panic!("the guest-rt breakpoint was not hit"));
    let thread = hit
        .strip_prefix("Thread ")
        .and_then(|t| t.split(' ').next())
        .unwrap_or_else(|| panic!("no thread in `{hit}`"));
    assert!(
        rt_threads.iter().any(|t| t == thread),
        "guest-rt stopped on thread {thread}, not an RT CPU's ({rt_threads:?})"
    );
    let rt_bt = section(&log.lines, "@@guest-rt-stop", "@@guest-rt-end");
    let rt_frames = frame_functions(&rt_bt);
    assert_eq!(rt_frames.first(), Some(&GUEST_RT_FUNCTION), "{rt_bt:#?}");
    assert!(
        rt_frames
            .iter()
            .filter(|f| f.starts_with("guest_rt::"))
            .count()
            >= 2,
        "guest-rt's caller is not named: {rt_bt:#?}"
    );
    assert!(
        rt_frames.iter().all(|f| !f.starts_with("hv::")),
        "a guest-rt frame named from hv's symbols: {rt_bt:#?}"
    );

    assert!(
        log.contains(&format!("hit Breakpoint 2, {HV_FUNCTION}")),
        "hv's trap-path breakpoint was not hit"
    );
    let hv_bt = section(&log.lines, "@@hv-stop", "@@hv-end");
    let hv_frames = frame_functions(&hv_bt);
    assert_eq!(hv_frames.first(), Some(&HV_FUNCTION), "{hv_bt:#?}");
    // Down to the exception entry (assembly, `hv_...`): every frame is one of hv's.
    assert!(hv_frames.len() >= 2, "no caller frame: {hv_bt:#?}");
    assert!(
        hv_frames
            .iter()
            .all(|f| f.starts_with("hv::") || f.starts_with("hv_")),
        "an hv frame not named from hv's symbols: {hv_bt:#?}"
    );
}
