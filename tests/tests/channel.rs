//! The channel seen from Linux's shell through `rtctl`: hv zeroes the region and writes
//! its header before either partition runs, so `rtctl` finds a valid header without
//! Linux writing anything. Then the Linux side of the protocol through rtctl's real
//! /dev/mem mapping, a header Linux scribbles over (named for what it is), and a Linux
//! reboot after which hv's header is whole again and the published parameters stay.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, linux_session, LINUX_TIMEOUT};
use channel::layout::HEADER_FIELDS;
use channel::Layout;
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(60);

#[test]
fn virt_rtctl_finds_hvs_header_publishes_and_recovers_after_a_linux_reboot() {
    let (config, image) = board("virt");
    let mut s = linux_session(&Boot::new(&config, &image));
    let channel = config
        .channel
        .as_ref()
        .expect("the board keeps a channel")
        .ram;
    let at = format!(
        "rtctl: the channel at {:#x} ({} KiB):",
        channel.base,
        channel.size / 1024
    );

    let rt_cpus = config
        .partitions
        .iter()
        .find(|p| p.name == "rt")
        .unwrap()
        .cpus
        .len();
    let layout = Layout::new((channel.size / 8) as usize, rt_cpus).unwrap();
    // hv wrote the header at boot (and said so), Linux wrote nothing.
    assert!(
        s.lines_from(0).iter().any(|l| l.contains(&format!(
            "channel [{:#x}..{:#x}): header written (layout version 2, 2 RT CPUs",
            channel.base,
            channel.base + channel.size
        ))),
        "hv reports the header"
    );
    let status_before = s.shell("rtctl status; echo status=$?", COMMAND).unwrap();
    assert_eq!(
        status_before.first(),
        Some(&format!(
            "channel: {:#x}, 2048 KiB, layout version 2, 2 RT CPUs",
            channel.base
        )),
        "{status_before:?}"
    );
    // hv's partition table, from the board file.
    assert_eq!(
        status_before[1..4],
        [
            "partition linux (linux): CPUs 0, 1; running, boot 1, 0 fault restarts",
            "partition rt (rt): CPUs 2, 3; running, boot 1, 0 fault restarts",
            "parameters: none published (the RT side uses its defaults)"
        ],
        "{status_before:?}"
    );
    assert_eq!(status_before.last().map(String::as_str), Some("status=0"));
    let header: Vec<String> = (0..HEADER_FIELDS)
        .map(|i| format!("0x{:016X}", layout.header_words()[i]))
        .collect();
    assert_eq!(read_words(&mut s, channel.base, HEADER_FIELDS), header);

    // Out-of-range values are refused before the region is touched.
    assert_eq!(
        s.shell("rtctl set kp=5000; echo status=$?", COMMAND)
            .unwrap(),
        [
            "rtctl: refused: 5000.000 V/(rad/s) is out of range: kp takes 0.000 V/(rad/s) to \
             2000.000 V/(rad/s)",
            "status=1"
        ]
    );
    let usage = s
        .shell("rtctl watch --hz 0; echo status=$?", COMMAND)
        .unwrap();
    assert_eq!(
        usage.first().map(String::as_str),
        Some("rtctl: --hz 0: between 1 and 1000 samples a second")
    );
    assert_eq!(usage.last().map(String::as_str), Some("status=2"));

    let params = s.shell("rtctl params", COMMAND).unwrap();
    assert!(
        params
            .iter()
            .any(|l| l.starts_with("  probe_period  100 us to 1000000 us, default 1000 us")),
        "{params:?}"
    );

    // Publishing through the mapping: each set reads the published version and publishes
    // the next; two at once queue on the writer lock, so neither change is lost.
    assert_eq!(
        s.shell("rtctl set kp=2.5 setpoint=1.5", COMMAND).unwrap(),
        ["published version 1: kp = 2.500 V/(rad/s) setpoint = 1.500 rad/s"]
    );
    let both = s
        .shell("(rtctl set ki=0.25 & rtctl set kd=1.5 & wait)", COMMAND)
        .unwrap();
    // The second writer may say it waits for the first: that is the queue, not a change.
    let both: Vec<&String> = both
        .iter()
        .filter(|l| !l.contains("waiting for the writer lock"))
        .collect();
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both.iter().all(|l| l.starts_with("published version ")),
        "{both:?}"
    );
    assert_eq!(
        s.shell("rtctl get", COMMAND).unwrap(),
        [
            "setpoint = 1.500 rad/s",
            "kp = 2.500 V/(rad/s)",
            "ki = 0.250 V/rad",
            "kd = 1.500 V*s^2/rad",
            "disturbance = 0.000 N*m",
            "setpoint_ramp = 0.000 rad/s^2",
            "watchdog_misses = 3 periods",
            "rearm = 0",
            "probe_period = 1000 us"
        ]
    );
    // Version 3 is current, in slot 0 (version 1's, free again: no RT reader holds it).
    let current = channel.base + 8 * layout.current as u64;
    assert_eq!(
        s.shell(&format!("devmem {current:#x} 64"), COMMAND)
            .unwrap(),
        ["0x0000000000000300"]
    );

    // Linux scribbles over the header: a flipped word is a corrupt header, a header for
    // another version (here the older, shorter version 1) is named as such.
    let word = channel.base + 8 * 5;
    s.shell(&format!("devmem {word:#x} 64 0x1234"), COMMAND)
        .unwrap();
    assert_eq!(
        s.shell("rtctl status", COMMAND).unwrap(),
        [format!(
            "{at} the header's checksum does not match its fields (corrupt header)"
        )]
    );
    let mut v1 = layout.header_words();
    v1[1] = 1;
    v1[15] = Layout::header_checksum(&v1[..15]);
    write_header(&mut s, channel.base, &v1);
    assert_eq!(
        s.shell("rtctl status", COMMAND).unwrap(),
        [format!(
            "{at} layout version 1 in the header, this side speaks version 2"
        )]
    );

    // A Linux reboot: hv writes its header again; what was published stays published.
    let from = s.line_count();
    s.send("reboot\n").unwrap();
    let restarted = s
        .wait_line(
            from,
            "channel: header written again for Linux's restart",
            LINUX_TIMEOUT,
        )
        .unwrap();
    s.wait_line(restarted, xtask::initramfs::READY_PREFIX, LINUX_TIMEOUT)
        .unwrap();
    s.wait_prompt("# ", COMMAND).unwrap();
    assert_eq!(read_words(&mut s, channel.base, HEADER_FIELDS), header);
    let after = s.shell("rtctl status", COMMAND).unwrap();
    assert!(
        after
            .iter()
            .any(|l| l == "parameters: version 3 (schema control)"),
        "{after:?}"
    );
    assert_eq!(
        s.shell("rtctl get kp", COMMAND).unwrap(),
        ["kp = 2.500 V/(rad/s)"]
    );
}

/// `count` 64-bit words from `base`, read with devmem from Linux's shell.
fn read_words(s: &mut Session, base: u64, count: usize) -> Vec<String> {
    let reads: Vec<String> = (0..count)
        .map(|i| format!("devmem {:#x} 64", base + 8 * i as u64))
        .collect();
    reads
        .chunks(4)
        .flat_map(|chunk| s.shell(&chunk.join("; "), COMMAND).unwrap())
        .collect()
}

/// Writes header `words` at `base` from Linux's shell, the first word (the magic) last.
fn write_header(s: &mut Session, base: u64, words: &[u64]) {
    let at = |i: usize| base + 8 * i as u64;
    let stores: Vec<String> = (1..words.len())
        .map(|i| format!("devmem {:#x} 64 {:#x}", at(i), words[i]))
        .collect();
    for chunk in stores.chunks(4) {
        assert_eq!(s.shell(&chunk.join("; "), COMMAND).unwrap(), [""; 0]);
    }
    assert_eq!(
        s.shell(&format!("devmem {base:#x} 64 {:#x}", words[0]), COMMAND)
            .unwrap(),
        [""; 0]
    );
}

/// `"periods":N` of each RT CPU in one `rtctl watch --json` line.
fn periods(json: &str) -> Vec<u64> {
    json.split("\"periods\":")
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits
                .parse()
                .unwrap_or_else(|_| panic!("periods in {json}"))
        })
        .collect()
}

/// A few of hv's counters for one physical CPU, from `rtctl status`.
#[derive(Debug)]
struct HvCpu {
    runs: String,
    hvc: u64,
    console: u64,
    forwarded: u64,
}

/// hv's statistics per physical CPU as `rtctl status` shows them (cut down by sed in
/// Linux's shell so each line stays short).
fn hv_summary(s: &mut Session) -> Vec<HvCpu> {
    let lines = s
        .shell(
            "rtctl status | sed -n 's/^hv cpu \\([0-9]*\\) (\\([^)]*\\)).* traps_hvc=\\([0-9]*\\) \
             .* traps_console=\\([0-9]*\\) .* irqs_forwarded=\\([0-9]*\\) .*/\\1:\\2:\\3:\\4:\\5/p'",
            COMMAND,
        )
        .unwrap();
    lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(':').collect();
            assert_eq!(f.len(), 5, "{lines:?}");
            assert_eq!(f[0], i.to_string(), "{lines:?}");
            let n = |x: &str| x.parse::<u64>().unwrap_or_else(|_| panic!("{lines:?}"));
            HvCpu {
                runs: f[1].to_string(),
                hvc: n(f[2]),
                console: n(f[3]),
                forwarded: n(f[4]),
            }
        })
        .collect()
}

/// The first complete line from `from` on that contains `needle`.
fn line_with(s: &mut Session, from: usize, needle: &str) -> String {
    let at = s.wait_line(from, needle, COMMAND).unwrap();
    s.lines_from(at)[0].clone()
}

/// The RT partition's latency probe takes what Linux publishes and publishes its
/// telemetry, and survives a hostile Linux, under deterministic time (-icount): `rtctl
/// set probe_period=500` from the shell, each RT vCPU reports the new version (and probes
/// at the new period), `rtctl watch` shows its periods moving; then Linux scribbles
/// random words over the whole region: the probe misses no period and keeps its last good
/// parameters; after a Linux reboot hv's header is back and a new `set` goes through.
#[test]
fn virt_rt_probe_takes_parameters_publishes_telemetry_and_survives_scribbles() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=latency".to_string(),
        "rt.latency.interval-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ]);
    let mut s = linux_session(&b);
    assert!(
        s.lines_from(0)
            .iter()
            .any(|l| l.starts_with("[rt cpu2] channel [0xaa000000..0xaa200000): header valid")),
        "guest-rt checks hv's header"
    );
    let first = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
    assert_eq!(first.len(), 1, "{first:?}");
    let before = periods(&first[0]);
    assert_eq!(before.len(), 2, "{first:?}");
    assert_eq!(
        first[0].matches("\"params_version\":0").count(),
        2,
        "{first:?}"
    );

    let from = s.line_count();
    assert_eq!(
        s.shell("rtctl set probe_period=500", COMMAND).unwrap(),
        ["published version 1: probe_period = 500 us"]
    );
    for vcpu in 0..2 {
        s.wait_line(
            from,
            &format!("latency vCPU {vcpu}: parameters version 1 taken (probe_period 500 us)"),
            COMMAND,
        )
        .unwrap();
    }
    let status = s.shell("rtctl status", COMMAND).unwrap();
    for cpu in 0..2 {
        assert!(
            status.iter().any(|l| l.starts_with(&format!(
                "rt cpu {cpu}: holds version 1, accepted 1, rejected 0"
            ))),
            "{status:?}"
        );
    }
    // hv's statistics: the RT CPUs' forwarded interrupts (the probe's timer) grow between
    // two calls, and so do the console traps of Linux's CPUs (the first call's output).
    let first_stats = hv_summary(&mut s);
    let second_stats = hv_summary(&mut s);
    let runs: Vec<&str> = second_stats.iter().map(|c| c.runs.as_str()).collect();
    assert_eq!(
        runs,
        ["linux vCPU 0", "linux vCPU 1", "rt vCPU 0", "rt vCPU 1"],
        "{second_stats:?}"
    );
    for cpu in [2, 3] {
        assert!(
            second_stats[cpu].forwarded > first_stats[cpu].forwarded
                && first_stats[cpu].forwarded > 0,
            "cpu {cpu}: {first_stats:?} -> {second_stats:?}"
        );
        assert_eq!(second_stats[cpu].console, 0, "{second_stats:?}");
        assert!(second_stats[cpu].hvc > 0, "{second_stats:?}");
    }
    let console = |stats: &[HvCpu]| stats[0].console + stats[1].console;
    assert!(
        console(&second_stats) > console(&first_stats),
        "{first_stats:?} -> {second_stats:?}"
    );
    let json = s
        .shell(
            "rtctl status --json > /tmp/status.json; echo json=$?; \
             grep -o '\"cpu\":[0-9],\"partition\":\"[a-z]*\",\"vcpu\":[0-9]' /tmp/status.json",
            COMMAND,
        )
        .unwrap();
    assert_eq!(
        json,
        [
            "json=0",
            "\"cpu\":0,\"partition\":\"linux\",\"vcpu\":0",
            "\"cpu\":1,\"partition\":\"linux\",\"vcpu\":1",
            "\"cpu\":2,\"partition\":\"rt\",\"vcpu\":0",
            "\"cpu\":3,\"partition\":\"rt\",\"vcpu\":1"
        ]
    );

    let later = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
    let after = periods(&later[0]);
    assert_eq!(after.len(), 2, "{later:?}");
    for cpu in 0..2 {
        assert!(
            after[cpu] > before[cpu],
            "cpu {cpu}: {before:?} -> {after:?}"
        );
    }
    assert_eq!(
        later[0].matches("\"params_version\":1").count(),
        2,
        "{later:?}"
    );
    assert_eq!(later[0].matches("\"missed\":0,").count(), 2, "{later:?}");

    // A hostile Linux: every word of the region overwritten.
    assert_eq!(
        s.shell("rtctl scribble 12345", COMMAND).unwrap(),
        ["scribbled 262144 words over the channel at 0xaa000000"]
    );
    let scribbled = s.line_count();
    let broken = s.shell("rtctl status; echo status=$?", COMMAND).unwrap();
    assert_eq!(
        broken.last().map(String::as_str),
        Some("status=1"),
        "{broken:?}"
    );
    // The probe goes on at the last good period and misses nothing (its next reports).
    for vcpu in 0..2 {
        let report = line_with(&mut s, scribbled, &format!("latency vCPU {vcpu}: "));
        let report = if report.contains("periods of") {
            report
        } else {
            line_with(&mut s, scribbled, &format!("latency vCPU {vcpu}: 1"))
        };
        assert!(report.contains("periods of 500 us"), "{report}");
        assert!(report.ends_with("missed 0"), "{report}");
    }

    // A Linux reboot: hv's header is whole again; the RT side still holds version 1 and
    // a new `set` (from the defaults: the published version is garbage) goes through.
    let from = s.line_count();
    s.send("reboot\n").unwrap();
    let restarted = s
        .wait_line(
            from,
            "channel: header written again for Linux's restart",
            LINUX_TIMEOUT,
        )
        .unwrap();
    s.wait_line(restarted, xtask::initramfs::READY_PREFIX, LINUX_TIMEOUT)
        .unwrap();
    s.wait_prompt("# ", COMMAND).unwrap();
    let watch = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
    assert_eq!(
        watch[0].matches("\"params_version\":1").count(),
        2,
        "{watch:?}"
    );
    assert_eq!(watch[0].matches("\"missed\":0,").count(), 2, "{watch:?}");
    let from = s.line_count();
    let set = s.shell("rtctl set probe_period=700", COMMAND).unwrap();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(
        set[0].contains("probe_period = 700 us (the published version was unusable: "),
        "{set:?}"
    );
    for vcpu in 0..2 {
        let taken = line_with(
            &mut s,
            from,
            &format!("latency vCPU {vcpu}: parameters version "),
        );
        assert!(taken.ends_with("taken (probe_period 700 us)"), "{taken}");
    }
}

/// The next probe report of `vcpu` (a "N periods of" line) from line `from` on.
fn report_after(s: &mut Session, mut from: usize, vcpu: usize) -> String {
    let who = format!("latency vCPU {vcpu}: ");
    loop {
        let at = s.wait_line(from, " periods of ", COMMAND).unwrap();
        let line = s.lines_from(at)[0].clone();
        if line.contains(&who) {
            return line;
        }
        from = at + 1;
    }
}

/// A Linux writer stopped (SIGSTOP) in the middle of its publish, with the latency probe
/// running under -icount: the probe misses no period and keeps its last good parameters;
/// readers go on without the lock; a second writer is refused with the holder's PID
/// (`--no-wait`) or waits for it, saying so; after SIGCONT the stopped writer completes,
/// then the waiting one, and the RT side takes the last version with both changes.
#[test]
fn virt_a_writer_stopped_mid_publish_costs_rt_nothing_and_queues_the_next_writer() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.icount = true;
    b.bootargs.extend([
        "rt.app=latency".to_string(),
        "rt.latency.interval-us=1000".to_string(),
        "rt.heartbeat-ms=1000000".to_string(),
    ]);
    let mut s = linux_session(&b);
    let from = s.line_count();
    assert_eq!(
        s.shell("rtctl set probe_period=500", COMMAND).unwrap(),
        ["published version 1: probe_period = 500 us"]
    );
    for vcpu in 0..2 {
        s.wait_line(
            from,
            &format!("latency vCPU {vcpu}: parameters version 1 taken (probe_period 500 us)"),
            COMMAND,
        )
        .unwrap();
    }

    // Writer A stops itself with half of version 2's slot written, holding the lock.
    let from = s.line_count();
    s.send("rtctl set --pause-after-slot kp=3 &\n").unwrap();
    let hook = line_with(&mut s, from, "rtctl: test hook: PID ");
    let pid: u32 = hook
        .split("PID ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{hook}"));
    assert!(
        hook.ends_with(&format!("PID {pid} stops with half its slot written")),
        "{hook}"
    );
    assert_eq!(
        s.shell(&format!("cut -d' ' -f3 /proc/{pid}/stat"), COMMAND)
            .unwrap(),
        ["T"]
    );
    // The probe's next reports on both vCPUs: the last good period, nothing missed.
    let paused = s.line_count();
    for vcpu in 0..2 {
        let report = report_after(&mut s, paused, vcpu);
        assert!(report.contains("periods of 500 us"), "{report}");
        assert!(report.ends_with("missed 0"), "{report}");
    }
    // Readers take no lock: version 1 is what is published and what both CPUs hold.
    assert_eq!(
        s.shell("rtctl get kp", COMMAND).unwrap(),
        [default_of("kp")]
    );
    let status = s.shell("rtctl status", COMMAND).unwrap();
    for cpu in 0..2 {
        assert!(
            status.iter().any(|l| l.starts_with(&format!(
                "rt cpu {cpu}: holds version 1, accepted 1, rejected 0"
            ))),
            "{status:?}"
        );
    }
    // A second writer: refused with the holder named, or waiting for it, saying so.
    assert_eq!(
        s.shell("rtctl set --no-wait kd=2; echo status=$?", COMMAND)
            .unwrap(),
        [
            format!(
                "rtctl: the writer lock on /dev/mem is held by PID {pid} (stopped): nothing \
                 published (without --no-wait, set waits for it)"
            ),
            "status=1".to_string()
        ]
    );
    let from = s.line_count();
    s.send("rtctl set kd=2 &\n").unwrap();
    s.wait_line(
        from,
        &format!("rtctl: waiting for the writer lock on /dev/mem, held by PID {pid} (stopped)"),
        COMMAND,
    )
    .unwrap();

    // SIGCONT: A completes version 2, then B publishes version 3 from it.
    let from = s.line_count();
    s.shell(&format!("kill -CONT {pid}"), COMMAND).unwrap();
    let a = s
        .wait_line(from, "published version 2: kp = 3.000", COMMAND)
        .unwrap();
    s.wait_line(a, "published version 3: kd = 2.000 V*s^2/rad", COMMAND)
        .unwrap();
    for vcpu in 0..2 {
        let taken = line_with(
            &mut s,
            from,
            &format!("latency vCPU {vcpu}: parameters version 3"),
        );
        assert!(taken.ends_with("taken (probe_period 500 us)"), "{taken}");
    }
    let get = s.shell("rtctl get kp; rtctl get kd", COMMAND).unwrap();
    assert_eq!(get, ["kp = 3.000 V/(rad/s)", "kd = 2.000 V*s^2/rad"]);
    let watch = s.shell("rtctl watch --json --count 1", COMMAND).unwrap();
    assert_eq!(watch[0].matches("\"missed\":0,").count(), 2, "{watch:?}");
    assert_eq!(
        watch[0].matches("\"params_version\":3").count(),
        2,
        "{watch:?}"
    );
}

/// `rtctl get NAME`'s answer for a parameter still at the schema's default.
fn default_of(name: &str) -> String {
    let spec = channel::schema::CONTROL
        .params
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} is in the schema"));
    let scale = 10i64.pow(spec.decimals);
    let (whole, frac) = (spec.default / scale, (spec.default % scale).abs());
    let sign = if spec.default < 0 && whole == 0 {
        "-"
    } else {
        ""
    };
    format!(
        "{name} = {sign}{whole}.{frac:0width$} {}",
        spec.unit,
        width = spec.decimals as usize
    )
}
