//! The channel seen from Linux's shell through `rtctl`, as the system is today: hv does
//! not write the channel's header yet (the integration step will, and these assertions
//! change with it), so every command that needs the region says so, and says why when the
//! header is there but wrong; the commands that need no region answer.
#![forbid(unsafe_code)]

use std::time::Duration;

use bulkhead_tests::{board, linux_session};
use xtask::qemu::Boot;

const COMMAND: Duration = Duration::from_secs(60);

#[test]
fn virt_rtctl_says_the_channel_has_no_valid_header_yet() {
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
}
