//! The channel seen from Linux's shell through `rtctl`, as the system is today: hv does
//! not write the channel's header yet (the integration step will, and these assertions
//! change with it), so every command that needs the region says so, and says why when the
//! header is there but wrong; the commands that need no region answer. Then the test
//! writes the header from Linux itself, standing in for hv, and drives the Linux side of
//! the protocol through rtctl's real /dev/mem mapping.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, linux_session};
use channel::layout::HEADER_FIELDS;
use channel::Layout;
use xtask::qemu::Boot;
use xtask::session::Session;

const COMMAND: Duration = Duration::from_secs(60);

#[test]
fn virt_rtctl_without_a_header_then_with_one_written_from_linux() {
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

    // Nothing has written the region: its first word is still zero.
    assert_eq!(
        s.shell("rtctl status; echo status=$?", COMMAND).unwrap(),
        [
            format!(
                "{at} no valid header (first word 0x0000000000000000, expected magic \
                 0x314c4e4148434842): the hypervisor has not set up the channel"
            ),
            "status=1".to_string()
        ]
    );
    let get = s.shell("rtctl get kp", COMMAND).unwrap();
    assert_eq!(get.len(), 1, "{get:?}");
    assert!(
        get[0].starts_with(&format!("{at} no valid header")),
        "{get:?}"
    );

    // Out-of-range values are refused before the region is touched.
    assert_eq!(
        s.shell("rtctl set kp=1000; echo status=$?", COMMAND)
            .unwrap(),
        [
            "rtctl: refused: 1000.000 is out of range: kp takes 0.000 to 100.000",
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

    // A magic word alone (written from Linux with devmem) is not a header: rtctl reads
    // the rest of it through its /dev/mem mapping and finds the checksum wrong.
    let magic = 0x314c_4e41_4843_4842u64;
    s.shell(
        &format!("devmem {:#x} 64 {magic:#x}", channel.base),
        COMMAND,
    )
    .unwrap();
    assert_eq!(
        s.shell("rtctl status", COMMAND).unwrap(),
        [format!(
            "{at} the header's checksum does not match its fields (corrupt header)"
        )]
    );

    let params = s.shell("rtctl params", COMMAND).unwrap();
    assert!(
        params
            .iter()
            .any(|l| l.starts_with("  probe_period  100 us to 1000000 us, default 1000 us")),
        "{params:?}"
    );

    // What hv will write at boot, written here with devmem (magic last). A header for
    // another layout version, checksum and all, is named as such.
    let rt_cpus = config
        .partitions
        .iter()
        .find(|p| p.name == "rt")
        .unwrap()
        .cpus
        .len();
    let layout = Layout::new((channel.size / 8) as usize, rt_cpus).unwrap();
    let mut v2 = layout.header_words();
    v2[1] = 2;
    v2[HEADER_FIELDS - 1] = Layout::header_checksum(&v2[..HEADER_FIELDS - 1]);
    write_header(&mut s, channel.base, &v2);
    assert_eq!(
        s.shell("rtctl status", COMMAND).unwrap(),
        [format!(
            "{at} layout version 2 in the header, this side speaks version 1"
        )]
    );
    write_header(&mut s, channel.base, &layout.header_words());
    assert_eq!(
        s.shell("rtctl status", COMMAND).unwrap(),
        [
            format!(
                "channel: {:#x}, 2048 KiB, layout version 1, 2 RT CPUs",
                channel.base
            ),
            "parameters: none published (the RT side uses its defaults)".into(),
            "rt cpu 0: holds no version, accepted 0, rejected 0, contended 0; no telemetry yet"
                .into(),
            "rt cpu 1: holds no version, accepted 0, rejected 0, contended 0; no telemetry yet"
                .into(),
            "ring to-rt: 0 waiting, 0 dropped".into(),
            "ring to-linux: 0 waiting, 0 dropped".into(),
        ]
    );

    // Publishing through the mapping: each set reads the published version and publishes
    // the next; two at once queue on the writer lock, so neither change is lost.
    assert_eq!(
        s.shell("rtctl set kp=2.5 setpoint=21.5", COMMAND).unwrap(),
        ["published version 1: kp = 2.500 setpoint = 21.500 degC"]
    );
    let both = s
        .shell("(rtctl set ki=0.25 & rtctl set kd=1.5 & wait)", COMMAND)
        .unwrap();
    assert_eq!(both.len(), 2, "{both:?}");
    assert!(
        both.iter().all(|l| l.starts_with("published version ")),
        "{both:?}"
    );
    assert_eq!(
        s.shell("rtctl get", COMMAND).unwrap(),
        [
            "setpoint = 21.500 degC",
            "kp = 2.500",
            "ki = 0.250 1/s",
            "kd = 1.500 s",
            "output_limit = 100.0 %",
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
    assert_eq!(
        s.shell("rtctl watch --json --hz 50 --count 2", COMMAND)
            .unwrap(),
        [
            "{\"sample\":0,\"cpus\":[{\"cpu\":0,\"error\":\"no telemetry yet\"},\
             {\"cpu\":1,\"error\":\"no telemetry yet\"}]}",
            "{\"sample\":1,\"cpus\":[{\"cpu\":0,\"error\":\"no telemetry yet\"},\
             {\"cpu\":1,\"error\":\"no telemetry yet\"}]}"
        ]
    );
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
