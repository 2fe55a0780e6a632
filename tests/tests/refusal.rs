//! Bad input at boot is a named error followed by a clean stop, never a hang: a DTB that
//! disagrees with the board config, a corrupt or truncated system image, a fault in hv, a
//! boot argument of hv's it cannot honour.
#![forbid(unsafe_code)]

use bulkhead_tests::{board, boot, edited_image, table_offset};
use xtask::qemu::Boot;

/// Asserts hv printed a FATAL line containing `reason` and QEMU then exited.
fn assert_refused(log: &xtask::qemu::BootLog, reason: &str) {
    let fatal = log
        .fatal()
        .unwrap_or_else(|| panic!("no FATAL line; expected `{reason}`"));
    assert!(
        log.lines.iter().any(|l| l.contains(reason)),
        "expected `{reason}`; hv said: {fatal}"
    );
    assert!(log.contains("stopping the machine"));
    assert!(!log.timed_out(), "QEMU kept running after the fatal error");
    assert!(
        !log.contains("ready: all"),
        "hv went on booting after the error"
    );
}

#[test]
fn dtb_with_fewer_cpus_than_the_config_is_refused() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.smp = Some(2);
    let log = boot(&b);
    assert_refused(&log, "config expects 4 CPUs, the DTB lists 2");
}

#[test]
fn image_for_another_board_is_refused() {
    // The GICv2 board's image on the GICv3 machine.
    let (virt, _) = board("virt");
    let (_, gicv2_image) = board("virt-gicv2");
    let log = boot(&Boot::new(&virt, &gicv2_image));
    assert_refused(&log, "config expects GIC V2, the DTB has GIC V3");
}

#[test]
fn corrupt_board_config_payload_is_refused() {
    let (config, image) = edited_image("virt", "corrupt", |bytes| {
        let payload = table_offset(bytes) + 4096;
        bytes[payload + 3] ^= 0x5a;
    });
    let log = boot(&Boot::new(&config, &image).unverified());
    assert_refused(&log, "board config payload is corrupt (CRC-32");
}

#[test]
fn truncated_image_is_refused() {
    let (config, image) = edited_image("virt", "truncated", |bytes| {
        let cut = table_offset(bytes) + 4096 + 8;
        bytes.truncate(cut);
    });
    let log = boot(&Boot::new(&config, &image).unverified());
    // The loader zero-fills past the file: the checksum over the missing bytes fails.
    assert_refused(&log, "bad system image");
}

#[test]
fn image_without_payload_table_is_refused() {
    let (config, image) = edited_image("virt", "no-table", |bytes| {
        let at = table_offset(bytes);
        bytes.truncate(at);
    });
    let log = boot(&Boot::new(&config, &image).unverified());
    assert_refused(&log, "not a Bulkhead system image");
}

#[test]
fn a_fault_inside_hv_is_reported_with_its_syndrome() {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push("bulkhead.selftest=el2-fault".into());
    let log = boot(&b);
    assert_refused(
        &log,
        "unexpected Sync exception from CurrentElSpx: data abort at the same EL (EC 0x25), translation fault",
    );
    assert!(log.contains("FAR 0x0000004000000000"), "FAR not reported");
    assert!(log.contains("elr "), "registers not dumped");
}

/// A smoke boot with `args` must stop at hv's boot-argument check with `reason`, before
/// any CPU or partition starts (so it can never pass with nothing started).
fn assert_boot_argument_refused(args: &str, reason: &str) {
    let (config, image) = board("virt");
    let mut b = Boot::new(&config, &image);
    b.bootargs.push(xtask::qemu::SMOKE_ARG.into());
    b.bootargs.push(args.into());
    let log = boot(&b);
    assert_refused(&log, reason);
    assert!(
        xtask::qemu::judge_smoke(&config, &log).is_err(),
        "the smoke judge passed a refused boot"
    );
}

#[test]
fn only_naming_no_partition_of_the_board_is_refused() {
    assert_boot_argument_refused(
        "bulkhead.only=nonexistent",
        "FATAL: boot argument `bulkhead.only=nonexistent`: the board has no partition `nonexistent` (it has linux, rt)",
    );
}

#[test]
fn only_with_empty_names_is_refused() {
    assert_boot_argument_refused(
        "bulkhead.only=",
        "FATAL: boot argument `bulkhead.only=`: an empty partition name",
    );
    assert_boot_argument_refused(
        "bulkhead.only=,,,",
        "FATAL: boot argument `bulkhead.only=,,,`: an empty partition name",
    );
}

#[test]
fn an_unknown_bulkhead_word_is_refused() {
    assert_boot_argument_refused(
        "bulkhead.smok",
        "FATAL: boot argument `bulkhead.smok`: unknown boot argument",
    );
}

/// One bit of hv's own code flipped (in the middle of its trap handler, which runs only
/// once guests do): hv's boot-time check of its seal stops the machine with a FATAL line
/// naming the checksum before that code could run. (Booted unverified: xtask would refuse
/// the file first.)
#[test]
fn a_flipped_bit_in_hvs_text_is_fatal_at_boot() {
    let elf = std::fs::read(xtask::image::binaries().hv).expect("hv's ELF");
    let handler = xtask::code_points::Elf::parse(&elf)
        .and_then(|e| e.function("hv::arch::vcpu::trap_exit::handle_trap"))
        .expect("hv's trap handler");
    let at = (handler.addr + handler.size / 2) as usize;
    let (config, image) = edited_image("virt", "hv-bitflip", |bytes| {
        bytes[at] ^= 0x04;
    });
    let log = boot(&Boot::new(&config, &image).unverified());
    assert_refused(&log, "hv's own image fails its checksum: CRC-32");
}

/// What xtask says, instead of starting QEMU on a file it could not boot: an empty file,
/// a header whose magic or first instruction is gone, hv's bytes changed.
#[test]
fn xtask_refuses_to_boot_empty_header_corrupt_and_flipped_images() {
    type Edit = fn(&mut Vec<u8>);
    let cases: [(&str, Edit, &str); 4] = [
        ("empty", |b| b.clear(), "the image is empty"),
        ("no-magic", |b| b[0x38] ^= 0xff, "no arm64 Image header"),
        ("no-branch", |b| b[3] = 0, "does not start with a branch"),
        (
            "hv-flip",
            |b| {
                let end = u32::from_le_bytes(b[0x20..0x24].try_into().unwrap()) as usize;
                b[end / 2] ^= 0x04;
            },
            "hv's own image fails its checksum",
        ),
    ];
    for (suffix, edit, reason) in cases {
        let (config, image) = edited_image("virt", suffix, edit);
        let err = match Boot::new(&config, &image).command() {
            Ok(_) => panic!("{suffix}: xtask would boot it"),
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("refusing to boot") && err.contains(reason),
            "{suffix}: {err}"
        );
    }
}
