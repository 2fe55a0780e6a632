//! What a real Raspberry Pi 4 does differently from QEMU's defaults, as far as QEMU can
//! show it: hv loaded at the firmware's 0x200000 (or anywhere), entered at the wrong
//! exception level, RAM taken from the DTB by the board file's rules, and a FATAL that
//! halts the board instead of rebooting it.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot, edited_image, BUILD_LOCK};
use platform::config::Region;
use xtask::qemu::{Boot, SMOKE_ARG};

/// Offset of `text_offset` in the arm64 Image header: QEMU places an Image at its RAM
/// base plus this (hw/arm/boot.c), so patching it moves hv.
const TEXT_OFFSET: usize = 8;

fn smoke_loaded_at(name: &str, text_offset: u64, expected_base: u64) -> xtask::qemu::BootLog {
    let (config, image) = edited_image(name, "load2m", |bytes| {
        bytes[TEXT_OFFSET..TEXT_OFFSET + 8].copy_from_slice(&text_offset.to_le_bytes());
    });
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(SMOKE_ARG.into());
    let log = boot(&b);
    assert!(log.fatal().is_none(), "hv failed: {:?}", log.fatal());
    assert!(
        log.contains(&format!(
            "starting on CPU 0 at EL2, loaded at {expected_base:#x}"
        )),
        "hv did not run at {expected_base:#x}"
    );
    xtask::qemu::judge_smoke(&config, &log).expect("smoke passes");
    log
}

#[test]
fn rpi4_runs_where_the_pi_firmware_loads_it_and_takes_the_ram_qemu_reports() {
    // The Pi's firmware loads a 64-bit kernel at 0x200000; the card forces nothing.
    let log = smoke_loaded_at("rpi4", 0x20_0000, 0x20_0000);
    // QEMU reports low RAM up to 0x3c00_0000, a real Pi 4 (default gpu_mem) up to
    // 0x3b40_0000: Linux takes the difference through its dtb_ram window.
    assert!(
        log.contains(
            "partition `linux` takes RAM from the DTB in [0x3b400000..0x200000000): \
             [0x3b400000..0x3c000000)"
        ),
        "no RAM taken from the DTB"
    );
}

#[test]
fn virt_runs_wherever_it_is_loaded() {
    smoke_loaded_at("virt", 0x20_0000, 0x4020_0000);
}

#[test]
fn entered_at_el1_hv_says_so_and_stops() {
    // QEMU virt without virtualization=on enters the Image at EL1, with PSCI by HVC
    // answered by QEMU itself.
    let (mut config, image) = board("virt");
    let qemu = config.qemu.as_mut().expect("virt runs under QEMU");
    qemu.machine = qemu.machine.replace("virtualization=on,", "");
    assert!(!qemu.machine.contains("virtualization"));
    let log = boot(&Boot::new(&config, &image));
    assert!(
        log.contains("[hv] FATAL: hv was entered at EL1, it needs EL2: "),
        "no report of the exception level"
    );
    assert!(log.contains("[hv] stopping the machine"));
    assert!(!log.timed_out(), "QEMU kept running after the report");
    assert!(
        !log.contains("starting on CPU 0"),
        "hv went on booting at EL1"
    );
}

#[test]
fn a_fatal_halts_the_pi_instead_of_rebooting_it() {
    // Without -no-reboot, QEMU's BCM2835 watchdog reboots the machine on a full reset
    // unless PM_RSTS names partition 63, as on the real board's firmware: then it stops.
    let (mut config, image) = board("rpi4");
    let qemu = config.qemu.as_mut().expect("rpi4 runs under QEMU");
    qemu.extra_args.retain(|a| a != "-no-reboot");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("bulkhead.smok".into());
    let log = bulkhead_tests::boot_until(&b, |lines| {
        // A second boot would show a second banner.
        lines
            .iter()
            .filter(|l| l.contains("starting on CPU 0"))
            .count()
            > 1
    });
    assert!(log.fatal().is_some_and(|f| f.contains("bulkhead.smok")));
    assert_eq!(
        log.lines
            .iter()
            .filter(|l| l.contains("starting on CPU 0"))
            .count(),
        1,
        "the FATAL rebooted the board"
    );
    assert!(
        log.status.is_some_and(|s| s.success()),
        "QEMU did not stop by itself: {:?}",
        log.status
    );
}

#[test]
fn fixed_ram_the_dtb_does_not_report_is_refused_naming_the_rule() {
    // A board file that puts the channel in the GPU's memory above what QEMU reports:
    // valid as a file (its board RAM says so), refused by hv against the DTB.
    let (mut config, _) = board("rpi4");
    config.board.ram = vec![Region::new(0, 0x4000_0000)];
    config.channel.as_mut().expect("rpi4 has a channel").ram = Region::new(0x3fe0_0000, 0x20_0000);
    for p in &mut config.partitions {
        p.dtb_ram.clear();
    }
    config
        .validate()
        .expect("the variant is a valid board file");
    let image = {
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        xtask::image::system_image_as(&config, "rpi4-gpu-channel").expect("variant builds")
    };
    let log = boot(&Boot::new(&config, &image));
    assert!(
        log.contains(
            "board RAM: rule `fixed-ram-reported`: the channel RAM [0x3fe00000..0x40000000) \
             is not RAM the DTB reports (it reports [0x0..0x3c000000))"
        ),
        "refusal not named"
    );
    assert!(log
        .fatal()
        .is_some_and(|f| f.contains("does not fit the RAM the DTB reports (1 refused)")));
    assert!(!log.contains("ready: all"), "hv went on booting");
}

#[test]
fn a_coloured_rt_partition_runs_from_pages_of_its_colours_only() {
    // Half the Pi 4's L2 colours for the RT partition: 48 of its 96 MiB, contiguous IPA.
    let (mut config, _) = board("rpi4");
    let rt = config
        .partitions
        .iter_mut()
        .find(|p| p.name == "rt")
        .expect("rpi4 has rt");
    rt.colours = (0..8).collect();
    config
        .validate()
        .expect("the variant is a valid board file");
    let image = {
        let _guard = BUILD_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        xtask::image::system_image_as(&config, "rpi4-coloured").expect("variant builds")
    };
    // vCPU 1 reads the first IPA past its coloured RAM (still inside the board file's
    // range): stage 2 must not map it.
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("rt.selftest=escape@0x7000000".into());
    b.bootargs.push("rt.heartbeat-ms=20".into());
    let log = bulkhead_tests::boot_until(&b, |lines| {
        lines
            .iter()
            .skip_while(|l| !l.contains("left its sandbox"))
            .filter(|l| l.starts_with("[rt cpu2] heartbeat"))
            .count()
            >= 3
    });
    assert!(
        log.contains(
            "partition `rt`: colours [0, 1, 2, 3, 4, 5, 6, 7] of 16: RAM \
             [0x4000000..0x7000000) from 1536 runs of [0x4000000..0xa000000)"
        ),
        "no colour plan reported"
    );
    assert!(log.contains("partition `rt`: guest-rt at 0x4080000"));
    let report = log
        .line("left its sandbox")
        .expect("the read past the coloured RAM faults");
    assert!(report.contains("IPA 0x7000000"), "{report}");
    assert!(log.fatal().is_none(), "{:?}", log.fatal());
}
