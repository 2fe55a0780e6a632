//! Partition config: board files, `validate()` (one case per `ConfigError` variant),
//! TOML errors, the postcard encoding and the `Region` helpers.

use platform::config::{Config, ConfigError, Device, Region, PAGE_SIZE};

const BOARDS: [&str; 3] = ["virt", "virt-gicv2", "rpi4"];

fn board_text(name: &str) -> String {
    let path = format!("{}/boards/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

fn board(name: &str) -> Config {
    Config::from_toml(&board_text(name)).unwrap_or_else(|e| panic!("board {name}: {e}"))
}

/// The default board; every refusal case below starts from it and breaks one thing.
fn virt() -> Config {
    let config = board("virt");
    assert_eq!(
        config.validate(),
        Ok(()),
        "the starting point must be valid"
    );
    config
}

fn partition_mut<'a>(config: &'a mut Config, name: &str) -> &'a mut platform::config::Partition {
    config
        .partitions
        .iter_mut()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no partition {name}"))
}

fn extra_uart() -> Device {
    Device {
        name: "uart1".into(),
        compatible: "arm,pl011".into(),
        base: 0x0904_0000,
        size: 0x1000,
        irqs: vec![40],
    }
}

/// A broken config, the error `validate` must return, and words its message must contain.
struct Case {
    config: Config,
    expected: ConfigError,
    parts: &'static [&'static str],
}

fn assert_refused(case: Case) -> ConfigError {
    let err = case
        .config
        .validate()
        .expect_err("the broken config was accepted");
    assert_eq!(err, case.expected);
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("{}: ", err.name())),
        "message `{text}` does not start with the error's name"
    );
    for part in case.parts {
        assert!(
            text.contains(part),
            "message `{text}` does not name `{part}`"
        );
    }
    err
}

fn no_partitions() -> Case {
    let mut config = virt();
    config.partitions.clear();
    Case {
        config,
        expected: ConfigError::NoPartitions,
        parts: &["no partition"],
    }
}

fn duplicate_partition() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").name = "linux".into();
    Case {
        config,
        expected: ConfigError::DuplicatePartition {
            name: "linux".into(),
        },
        parts: &["`linux`", "twice"],
    }
}

fn partition_without_cpus() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").cpus.clear();
    Case {
        config,
        expected: ConfigError::PartitionWithoutCpus {
            partition: "rt".into(),
        },
        parts: &["`rt`", "no CPU"],
    }
}

fn partition_without_ram() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "linux").ram.clear();
    Case {
        config,
        expected: ConfigError::PartitionWithoutRam {
            partition: "linux".into(),
        },
        parts: &["`linux`", "no RAM"],
    }
}

fn empty_region() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").ram[0].size = 0;
    Case {
        config,
        expected: ConfigError::EmptyRegion {
            owner: "partition `rt`".into(),
            region: Region::new(0x4400_0000, 0),
        },
        parts: &["`rt`", "0x44000000", "empty"],
    }
}

fn misaligned_region() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").ram[0].size += 0x800;
    Case {
        config,
        expected: ConfigError::MisalignedRegion {
            owner: "partition `rt`".into(),
            region: Region::new(0x4400_0000, 0x0600_0800),
        },
        parts: &["`rt`", "[0x44000000..0x4a000800)", "0x1000"],
    }
}

fn ram_outside_board() -> Case {
    let mut config = virt();
    // Ends one page past the board's last RAM byte (0xc000_0000).
    partition_mut(&mut config, "linux").ram[0].size = 0x7600_0000 + PAGE_SIZE;
    Case {
        config,
        expected: ConfigError::RamOutsideBoard {
            owner: "partition `linux`".into(),
            region: Region::new(0x4a00_0000, 0x7600_1000),
        },
        parts: &["`linux`", "[0x4a000000..0xc0001000)", "board"],
    }
}

fn overlapping_ram() -> Case {
    let mut config = virt();
    // Grows the rt partition one page into linux's RAM.
    partition_mut(&mut config, "rt").ram[0].size += PAGE_SIZE;
    Case {
        config,
        expected: ConfigError::OverlappingRam {
            first: "partition `linux`".into(),
            second: "partition `rt`".into(),
            region: Region::new(0x4400_0000, 0x0600_1000),
        },
        parts: &["`rt`", "`linux`", "[0x44000000..0x4a001000)", "overlaps"],
    }
}

fn cpu_outside_board() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").cpus.push(4);
    Case {
        config,
        expected: ConfigError::CpuOutsideBoard {
            partition: "rt".into(),
            cpu: 4,
            board_cpus: 4,
        },
        parts: &["`rt`", "CPU 4", "0-3"],
    }
}

fn cpu_twice() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "rt").cpus = vec![1, 2, 3];
    Case {
        config,
        expected: ConfigError::CpuTwice {
            cpu: 1,
            first: "linux".into(),
            second: "rt".into(),
        },
        parts: &["CPU 1", "`linux`", "`rt`"],
    }
}

fn unknown_device() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "linux")
        .devices
        .push("virtio0".into());
    Case {
        config,
        expected: ConfigError::UnknownDevice {
            owner: "partition `linux`".into(),
            device: "virtio0".into(),
        },
        parts: &["`linux`", "`virtio0`", "does not declare"],
    }
}

fn duplicate_device() -> Case {
    let mut config = virt();
    let mut again = extra_uart();
    again.name = "uart0".into();
    config.board.devices.push(again);
    Case {
        config,
        expected: ConfigError::DuplicateDevice {
            device: "uart0".into(),
        },
        parts: &["`uart0`", "twice"],
    }
}

fn device_twice() -> Case {
    let mut config = virt();
    config.board.devices.push(extra_uart());
    partition_mut(&mut config, "linux")
        .devices
        .push("uart1".into());
    partition_mut(&mut config, "rt")
        .devices
        .push("uart1".into());
    Case {
        config,
        expected: ConfigError::DeviceTwice {
            device: "uart1".into(),
            first: "partition `linux`".into(),
            second: "partition `rt`".into(),
        },
        parts: &["`uart1`", "`linux`", "`rt`"],
    }
}

fn unknown_irq() -> Case {
    let mut config = virt();
    // No device of the board raises INTID 99.
    partition_mut(&mut config, "rt").irqs.push(99);
    Case {
        config,
        expected: ConfigError::UnknownIrq {
            partition: "rt".into(),
            irq: 99,
        },
        parts: &["`rt`", "interrupt 99"],
    }
}

fn irq_twice() -> Case {
    let mut config = virt();
    // The RTC's line, which the RT partition owns already.
    partition_mut(&mut config, "linux").irqs.push(34);
    Case {
        config,
        expected: ConfigError::IrqTwice {
            irq: 34,
            first: "linux".into(),
            second: "rt".into(),
        },
        parts: &["interrupt 34", "`linux`", "`rt`"],
    }
}

fn bad_device_irq() -> Case {
    let mut config = virt();
    // The EL1 physical timer PPI is per CPU and cannot be given away.
    config.board.devices[0].irqs.push(30);
    Case {
        config,
        expected: ConfigError::BadDeviceIrq {
            device: "uart0".into(),
            irq: 30,
        },
        parts: &["`uart0`", "interrupt 30", "SPIs"],
    }
}

fn board_without_cpus() -> Case {
    let mut config = virt();
    config.board.cpus = 0;
    Case {
        config,
        expected: ConfigError::BoardWithoutCpus,
        parts: &["no CPU", "cpus = 0"],
    }
}

fn too_many_cpus() -> Case {
    let mut config = virt();
    config.board.cpus = 16;
    partition_mut(&mut config, "linux").cpus = (0..2).chain(4..11).collect();
    Case {
        config,
        expected: ConfigError::TooManyCpus {
            partition: "linux".into(),
            cpus: 9,
        },
        parts: &["`linux`", "9 CPUs", "at most 8"],
    }
}

fn second_linux_partition() -> Case {
    let mut config = virt();
    let rt = partition_mut(&mut config, "rt");
    rt.kind = platform::config::PartitionKind::Linux;
    rt.load_from_linux = false;
    rt.devices.clear();
    rt.irqs.clear();
    Case {
        config,
        expected: ConfigError::SecondLinuxPartition {
            first: "linux".into(),
            second: "rt".into(),
        },
        parts: &["`linux`", "`rt`", "console"],
    }
}

fn exitless_linux() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "linux").exitless_irqs = true;
    Case {
        config,
        expected: ConfigError::ExitlessLinux {
            partition: "linux".into(),
        },
        parts: &["`linux`", "exitless_irqs", "SGIs"],
    }
}

fn load_on_an_exitless_partition() -> Case {
    let mut config = virt();
    let rt = partition_mut(&mut config, "rt");
    (rt.load_from_linux, rt.exitless_irqs) = (true, true);
    Case {
        config,
        expected: ConfigError::LoadNotAllowed {
            partition: "rt".into(),
            why: "it has exitless_irqs: hv stops a running vCPU by kicking its CPU, and an \
                  exit-less CPU takes the kick at EL1",
        },
        parts: &["`rt`", "load_from_linux", "exitless_irqs", "kick"],
    }
}

#[test]
fn load_from_linux_is_refused_on_linux_and_without_linux() {
    let mut config = virt();
    partition_mut(&mut config, "linux").load_from_linux = true;
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("it is Linux"), "{err}");
    let mut config = virt();
    partition_mut(&mut config, "rt").load_from_linux = true;
    config.channel = None;
    config.partitions.retain(|p| p.name != "linux");
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("no Linux partition"), "{err}");
}

fn fault_policy_on_linux() -> Case {
    let mut config = virt();
    partition_mut(&mut config, "linux").on_fault = platform::config::OnFault::Restart;
    Case {
        config,
        expected: ConfigError::FaultPolicyOnLinux {
            partition: "linux".into(),
        },
        parts: &["`linux`", "on_fault", "RT partition"],
    }
}

fn bad_restart_limit() -> Case {
    let mut config = virt();
    let rt = partition_mut(&mut config, "rt");
    (rt.on_fault, rt.restart_limit) = (platform::config::OnFault::Restart, Some(0));
    Case {
        config,
        expected: ConfigError::BadRestartLimit {
            partition: "rt".into(),
            limit: 0,
            on_fault: platform::config::OnFault::Restart,
        },
        parts: &["`rt`", "restart_limit 0", "1..=1000"],
    }
}

fn colours_not_allowed() -> Case {
    let mut config = board("rpi4");
    partition_mut(&mut config, "linux").colours = vec![8];
    Case {
        config,
        expected: ConfigError::ColoursNotAllowed {
            partition: "linux".into(),
            why: "it is Linux (only an RT partition may be coloured)",
        },
        parts: &["`linux` has colours", "only an RT partition"],
    }
}

fn colour_out_of_range() -> Case {
    let mut config = board("rpi4");
    partition_mut(&mut config, "rt").colours = vec![0, 16];
    Case {
        config,
        expected: ConfigError::ColourOutOfRange {
            partition: "rt".into(),
            colour: 16,
            colours: 16,
        },
        parts: &["colour 16", "colours 0-15"],
    }
}

fn colour_twice() -> Case {
    // Two RT partitions, one CPU and half the RAM each, sharing colour 1.
    let mut config = board("rpi4");
    let rt = partition_mut(&mut config, "rt");
    rt.cpus = vec![2];
    rt.ram = vec![Region::new(0x0400_0000, 0x0300_0000)];
    rt.colours = vec![0, 1];
    let mut rt2 = rt.clone();
    rt2.name = "rt2".into();
    rt2.cpus = vec![3];
    rt2.ram = vec![Region::new(0x0700_0000, 0x0300_0000)];
    rt2.colours = vec![1, 2];
    config.partitions.push(rt2);
    Case {
        config,
        expected: ConfigError::ColourTwice {
            colour: 1,
            first: "rt".into(),
            second: "rt2".into(),
        },
        parts: &["colour 1", "`rt` and to `rt2`"],
    }
}

#[test]
fn colours_need_a_cache_and_an_rt_partition() {
    let mut config = board("rpi4");
    partition_mut(&mut config, "rt").colours = (0..8).collect();
    assert_eq!(config.validate(), Ok(()));
    config.board.cache = None;
    let err = config.validate().unwrap_err();
    assert_eq!(err.name(), "colours-not-allowed");
    assert!(err.to_string().contains("no [board] cache"), "{err}");
    let mut config = board("rpi4");
    let linux = partition_mut(&mut config, "linux");
    linux.dtb_ram.clear();
    linux.colours = vec![9];
    let err = config.validate().unwrap_err();
    assert!(err.to_string().contains("it is Linux"), "{err}");
}

#[test]
fn refuses_a_partition_owning_the_line_of_hvs_console() {
    let mut config = virt();
    partition_mut(&mut config, "rt").irqs.push(33);
    assert_refused(Case {
        config,
        expected: ConfigError::IrqTwice {
            irq: 33,
            first: "hv (console)".into(),
            second: "rt".into(),
        },
        parts: &["interrupt 33", "hv (console)", "`rt`"],
    });
}

#[test]
fn eight_cpus_in_a_partition_are_accepted() {
    let mut config = virt();
    config.board.cpus = 16;
    partition_mut(&mut config, "linux").cpus = (0..2).chain(4..10).collect();
    assert_eq!(config.validate(), Ok(()));
}

fn kernel_outside_hv() -> Case {
    let mut config = board("rpi4");
    let hv = config.hv.ram;
    // Right past hv's RAM: the firmware would load hv over the RT partition.
    config
        .sdcard
        .as_mut()
        .expect("rpi4 has an SD card")
        .load_address = hv.base + hv.size;
    Case {
        config,
        expected: ConfigError::KernelOutsideHv {
            address: hv.base + hv.size,
            hv,
        },
        parts: &["load_address 0x4000000", "hv's RAM"],
    }
}

/// Position of a variant; the match has no wildcard, so a new variant breaks the build
/// here until a case for it is added to `ALL_CASES`.
fn variant_index(e: &ConfigError) -> usize {
    match e {
        ConfigError::NoPartitions => 0,
        ConfigError::DuplicatePartition { .. } => 1,
        ConfigError::PartitionWithoutCpus { .. } => 2,
        ConfigError::PartitionWithoutRam { .. } => 3,
        ConfigError::EmptyRegion { .. } => 4,
        ConfigError::MisalignedRegion { .. } => 5,
        ConfigError::RamOutsideBoard { .. } => 6,
        ConfigError::OverlappingRam { .. } => 7,
        ConfigError::CpuOutsideBoard { .. } => 8,
        ConfigError::CpuTwice { .. } => 9,
        ConfigError::UnknownDevice { .. } => 10,
        ConfigError::DuplicateDevice { .. } => 11,
        ConfigError::DeviceTwice { .. } => 12,
        ConfigError::UnknownIrq { .. } => 13,
        ConfigError::IrqTwice { .. } => 14,
        ConfigError::BadDeviceIrq { .. } => 15,
        ConfigError::KernelOutsideHv { .. } => 16,
        ConfigError::BoardWithoutCpus => 17,
        ConfigError::TooManyCpus { .. } => 18,
        ConfigError::SecondLinuxPartition { .. } => 19,
        ConfigError::ExitlessLinux { .. } => 20,
        ConfigError::ColoursNotAllowed { .. } => 21,
        ConfigError::ColourOutOfRange { .. } => 22,
        ConfigError::ColourTwice { .. } => 23,
        ConfigError::FaultPolicyOnLinux { .. } => 24,
        ConfigError::BadRestartLimit { .. } => 25,
        ConfigError::DoorbellLine { .. } => 26,
        ConfigError::DoorbellWithoutPeer { .. } => 27,
        ConfigError::DoorbellInterval { .. } => 28,
        ConfigError::LoadNotAllowed { .. } => 29,
    }
}
const VARIANTS: usize = 30;

const ALL_CASES: [fn() -> Case; VARIANTS] = [
    no_partitions,
    duplicate_partition,
    partition_without_cpus,
    partition_without_ram,
    empty_region,
    misaligned_region,
    ram_outside_board,
    overlapping_ram,
    cpu_outside_board,
    cpu_twice,
    unknown_device,
    duplicate_device,
    device_twice,
    unknown_irq,
    irq_twice,
    bad_device_irq,
    kernel_outside_hv,
    board_without_cpus,
    too_many_cpus,
    second_linux_partition,
    exitless_linux,
    colours_not_allowed,
    colour_out_of_range,
    colour_twice,
    fault_policy_on_linux,
    bad_restart_limit,
    doorbell_on_a_device_line,
    doorbells_without_an_rt_partition,
    doorbell_interval_zero,
    load_on_an_exitless_partition,
];

#[test]
fn every_variant_is_produced_and_named_uniquely() {
    let mut seen = [false; VARIANTS];
    let mut names = Vec::new();
    for case in ALL_CASES {
        let err = assert_refused(case());
        seen[variant_index(&err)] = true;
        names.push(err.name());
    }
    assert!(seen.iter().all(|&s| s), "variants never produced: {seen:?}");
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), VARIANTS, "error names are not unique");
}

#[test]
fn refuses_no_partitions() {
    assert_refused(no_partitions());
}

#[test]
fn refuses_duplicate_partition() {
    assert_refused(duplicate_partition());
}

#[test]
fn refuses_partition_without_cpus() {
    assert_refused(partition_without_cpus());
}

#[test]
fn refuses_partition_without_ram() {
    assert_refused(partition_without_ram());
}

#[test]
fn refuses_empty_region() {
    assert_refused(empty_region());
}

#[test]
fn refuses_region_that_wraps() {
    let mut config = virt();
    partition_mut(&mut config, "rt").ram[0] = Region::new(0xffff_ffff_ffff_f000, 0x2000);
    assert_refused(Case {
        config,
        expected: ConfigError::EmptyRegion {
            owner: "partition `rt`".into(),
            region: Region::new(0xffff_ffff_ffff_f000, 0x2000),
        },
        parts: &["`rt`", "0xfffffffffffff000", "wraps"],
    });
}

#[test]
fn refuses_misaligned_region() {
    assert_refused(misaligned_region());
}

#[test]
fn refuses_misaligned_region_base() {
    let mut config = virt();
    config.hv.ram.base += 0x10;
    assert_refused(Case {
        config,
        expected: ConfigError::MisalignedRegion {
            owner: "hv".into(),
            region: Region::new(0x4000_0010, 0x0400_0000),
        },
        parts: &["hv", "0x40000010"],
    });
}

#[test]
fn refuses_ram_outside_board() {
    assert_refused(ram_outside_board());
}

#[test]
fn refuses_overlapping_ram() {
    assert_refused(overlapping_ram());
}

#[test]
fn refuses_channel_over_partition_ram() {
    let mut config = virt();
    // The channel may be shared by every partition, but it is no partition's own RAM.
    config.channel.as_mut().expect("virt keeps a channel").ram =
        Region::new(0x4900_0000, 0x20_0000);
    assert_refused(Case {
        config,
        expected: ConfigError::OverlappingRam {
            first: "channel".into(),
            second: "partition `rt`".into(),
            region: Region::new(0x4400_0000, 0x0600_0000),
        },
        parts: &["channel", "`rt`", "overlaps"],
    });
}

#[test]
fn refuses_partition_ram_over_hv_ram() {
    let mut config = virt();
    partition_mut(&mut config, "rt").ram[0].base = 0x4200_0000;
    assert_refused(Case {
        config,
        expected: ConfigError::OverlappingRam {
            first: "hv".into(),
            second: "partition `rt`".into(),
            region: Region::new(0x4200_0000, 0x0600_0000),
        },
        parts: &["hv", "`rt`", "0x42000000"],
    });
}

#[test]
fn refuses_cpu_outside_board() {
    assert_refused(cpu_outside_board());
}

#[test]
fn refuses_cpu_twice() {
    assert_refused(cpu_twice());
}

#[test]
fn refuses_cpu_twice_within_one_partition() {
    let mut config = virt();
    partition_mut(&mut config, "rt").cpus = vec![2, 2];
    assert_refused(Case {
        config,
        expected: ConfigError::CpuTwice {
            cpu: 2,
            first: "rt".into(),
            second: "rt".into(),
        },
        parts: &["CPU 2"],
    });
}

#[test]
fn refuses_unknown_device() {
    assert_refused(unknown_device());
}

#[test]
fn refuses_unknown_console() {
    let mut config = virt();
    config.hv.console = "uart7".into();
    assert_refused(Case {
        config,
        expected: ConfigError::UnknownDevice {
            owner: "hv (console)".into(),
            device: "uart7".into(),
        },
        parts: &["console", "`uart7`"],
    });
}

#[test]
fn refuses_duplicate_device() {
    assert_refused(duplicate_device());
}

#[test]
fn refuses_device_twice() {
    assert_refused(device_twice());
}

#[test]
fn refuses_console_passed_to_a_partition() {
    let mut config = virt();
    partition_mut(&mut config, "linux")
        .devices
        .push("uart0".into());
    assert_refused(Case {
        config,
        expected: ConfigError::DeviceTwice {
            device: "uart0".into(),
            first: "hv (console)".into(),
            second: "partition `linux`".into(),
        },
        parts: &["`uart0`", "hv (console)", "`linux`"],
    });
}

#[test]
fn refuses_unknown_irq() {
    assert_refused(unknown_irq());
}

#[test]
fn refuses_irq_twice() {
    assert_refused(irq_twice());
}

#[test]
fn refuses_bad_device_irq() {
    assert_refused(bad_device_irq());
}

#[test]
fn refuses_device_irq_past_the_last_spi() {
    let mut config = virt();
    config.board.devices[0].irqs = vec![1020];
    assert_refused(Case {
        config,
        expected: ConfigError::BadDeviceIrq {
            device: "uart0".into(),
            irq: 1020,
        },
        parts: &["`uart0`", "1020"],
    });
}

#[test]
fn accepts_irq_and_device_given_once() {
    let mut config = virt();
    config.board.devices.push(extra_uart());
    let rt = partition_mut(&mut config, "rt");
    rt.devices.push("uart1".into());
    rt.irqs.push(40);
    assert_eq!(config.validate(), Ok(()));
    // Boundary SPIs are accepted.
    config.board.devices[1].irqs = vec![32, 1019];
    partition_mut(&mut config, "rt").irqs = vec![32, 1019];
    assert_eq!(config.validate(), Ok(()));
}

#[test]
fn real_board_files_parse_and_validate() {
    for name in BOARDS {
        let config = board(name);
        assert_eq!(config.name, name);
        assert_eq!(config.validate(), Ok(()));
        assert_eq!(config.board.cpus, 4);
        assert!(config.device(&config.hv.console).is_some());
        for cpu in 0..config.board.cpus {
            assert!(
                config.partition_of_cpu(cpu).is_some(),
                "{name}: CPU {cpu} is idle"
            );
        }
        assert!(config.partition("linux").is_some() && config.partition("rt").is_some());
    }
}

#[test]
fn board_files_say_what_the_boards_are() {
    use platform::config::{CpuBoot, GicVersion, PartitionKind};
    let virt = board("virt");
    assert_eq!(virt.board.gic, GicVersion::V3);
    assert_eq!(virt.board.cpu_boot, CpuBoot::Psci);
    assert_eq!(virt.qemu.as_ref().map(|q| q.smp), Some(4));
    assert_eq!(
        virt.partition("rt").map(|p| p.kind),
        Some(PartitionKind::Rt)
    );

    let v2 = board("virt-gicv2");
    assert_eq!(v2.board.gic, GicVersion::V2);

    let pi = board("rpi4");
    assert_eq!(pi.board.compatible, "raspberrypi,4-model-b");
    assert_eq!(pi.board.cpu_boot, CpuBoot::SpinTable);
    assert_eq!(pi.device("uart0").map(|d| d.base), Some(0xfe20_1000));
    let qemu = pi.qemu.as_ref().expect("rpi4 runs under QEMU raspi4b");
    assert_eq!(
        qemu.kernel_package_dtb, None,
        "QEMU takes the SD card's DTB"
    );
    let card = pi.sdcard.as_ref().expect("rpi4 boots from an SD card");
    assert_eq!(card.dtb, "broadcom/bcm2711-rpi-4-b.dtb");
    // The firmware's own default: hv runs wherever it is loaded.
    assert_eq!(card.load_address, 0x20_0000);
    assert_eq!(qemu.extra_args, ["-no-reboot"]);
}

#[test]
fn from_toml_runs_validate() {
    let text = board_text("virt").replace("cpus = [2, 3]", "cpus = [1, 3]");
    let err = Config::from_toml(&text).expect_err("CPU 1 given twice");
    assert!(err.starts_with("cpu-twice: "), "{err}");
}

#[test]
fn malformed_toml_is_refused_with_a_location() {
    let text = board_text("virt").replace("name = \"virt\"", "name = \"virt");
    let err = Config::from_toml(&text).expect_err("unterminated string");
    assert!(err.contains("line"), "no location in `{err}`");
}

#[test]
fn unknown_field_is_refused_by_name() {
    let text = board_text("virt").replace("[hv]\n", "[hv]\nstack = 4096\n");
    let err = Config::from_toml(&text).expect_err("unknown field");
    assert!(err.contains("stack"), "`{err}` does not name the field");
    assert!(err.contains("unknown field"), "{err}");

    let text = board_text("virt").replace("size = 0x1000\n", "size = 0x1000\nsizee = 1\n");
    let err = Config::from_toml(&text).expect_err("unknown device field");
    assert!(err.contains("sizee"), "{err}");
}

#[test]
fn wrong_type_is_refused_by_name() {
    let text = board_text("virt").replace("cpus = 4", "cpus = \"four\"");
    let err = Config::from_toml(&text).expect_err("string for an integer");
    assert!(err.contains("cpus") || err.contains("line"), "{err}");
    assert!(err.contains("integer") || err.contains("u32"), "{err}");

    let text = board_text("virt").replace("gic = \"v3\"", "gic = \"v4\"");
    let err = Config::from_toml(&text).expect_err("no GICv4");
    assert!(err.contains("v4"), "{err}");
}

#[test]
fn missing_field_is_refused_by_name() {
    let text = board_text("virt").replace("console = \"uart0\"\n", "");
    let err = Config::from_toml(&text).expect_err("hv without a console");
    assert!(err.contains("console"), "{err}");
}

#[test]
fn encode_decode_round_trip() {
    for name in BOARDS {
        let config = board(name);
        let bytes = config.encode();
        assert_eq!(Config::decode(&bytes), Ok(config.clone()), "{name}");
        // Truncation is an error, not a different config.
        assert!(Config::decode(&bytes[..bytes.len() - 1]).is_err(), "{name}");
    }
    let mut config = virt();
    config.qemu = None;
    config.board.devices.push(extra_uart());
    assert_eq!(Config::decode(&config.encode()), Ok(config));
}

#[test]
fn lookups() {
    let config = virt();
    assert_eq!(
        config.partition_of_cpu(0).map(|p| p.name.as_str()),
        Some("linux")
    );
    assert_eq!(
        config.partition_of_cpu(3).map(|p| p.name.as_str()),
        Some("rt")
    );
    assert!(config.partition_of_cpu(4).is_none());
    assert!(config.partition("nope").is_none());
    assert!(config.device("nope").is_none());
}

#[test]
fn region_end() {
    assert_eq!(Region::new(0x1000, 0x2000).end(), Some(0x3000));
    assert_eq!(Region::new(0, 0).end(), Some(0));
    assert_eq!(Region::new(u64::MAX, 1).end(), None);
    assert_eq!(Region::new(u64::MAX - 0xfff, 0x1000).end(), None);
    assert_eq!(Region::new(u64::MAX - 0xfff, 0xfff).end(), Some(u64::MAX));
}

#[test]
fn region_overlaps() {
    let a = Region::new(0x1000, 0x1000);
    assert!(a.overlaps(&a));
    assert!(a.overlaps(&Region::new(0x1fff, 1)));
    assert!(Region::new(0x1fff, 1).overlaps(&a));
    assert!(a.overlaps(&Region::new(0, 0x10000)));
    // Touching is not overlapping.
    assert!(!a.overlaps(&Region::new(0x2000, 0x1000)));
    assert!(!a.overlaps(&Region::new(0, 0x1000)));
    // A wrapping range is taken to overlap everything (it is never valid).
    let wraps = Region::new(u64::MAX, 2);
    assert!(wraps.overlaps(&a) && a.overlaps(&wraps));
}

#[test]
fn region_contains() {
    let a = Region::new(0x4000_0000, 0x4000_0000);
    assert!(a.contains(&a));
    assert!(a.contains(&Region::new(0x4000_0000, 0x1000)));
    assert!(a.contains(&Region::new(0x7fff_f000, 0x1000)));
    assert!(!a.contains(&Region::new(0x7fff_f000, 0x1001)));
    assert!(!a.contains(&Region::new(0x3fff_f000, 0x2000)));
    assert!(!a.contains(&Region::new(u64::MAX, 2)));
    assert!(!Region::new(u64::MAX, 2).contains(&Region::new(u64::MAX, 1)));

    assert!(a.contains_addr(0x4000_0000));
    assert!(a.contains_addr(0x7fff_ffff));
    assert!(!a.contains_addr(0x8000_0000));
    assert!(!a.contains_addr(0x3fff_ffff));
    // A range that reaches the top of the address space contains its last byte.
    let top = Region::new(u64::MAX - 0xff, 0x100);
    assert!(top.contains_addr(u64::MAX));
}

#[test]
fn region_display() {
    assert_eq!(
        Region::new(0x4000_0000, 0x1000).to_string(),
        "[0x40000000..0x40001000)"
    );
    assert_eq!(
        Region::new(u64::MAX, 2).to_string(),
        "[0xffffffffffffffff+0x2 wraps]"
    );
}

#[test]
fn fault_policies_are_checked() {
    use platform::config::OnFault;
    // Accepted: the RT partition restarts, with and without a limit; or stops.
    for (on_fault, limit) in [
        (OnFault::Restart, None),
        (OnFault::Restart, Some(1)),
        (OnFault::Restart, Some(1000)),
        (OnFault::Stop, None),
    ] {
        let mut config = virt();
        let rt = partition_mut(&mut config, "rt");
        (rt.on_fault, rt.restart_limit) = (on_fault, limit);
        assert_eq!(config.validate(), Ok(()), "{on_fault:?} {limit:?}");
    }
    assert_refused(fault_policy_on_linux());
    for (on_fault, limit, parts) in [
        (
            OnFault::Restart,
            0,
            &["`rt`", "restart_limit 0", "1..=1000"][..],
        ),
        (OnFault::Restart, 1001, &["restart_limit 1001"][..]),
        (
            OnFault::Stop,
            3,
            &["`rt`", "on_fault = \"stop\"", "only"][..],
        ),
        (OnFault::StopVcpu, 3, &["on_fault = \"stop-vcpu\""][..]),
    ] {
        let mut config = virt();
        let rt = partition_mut(&mut config, "rt");
        (rt.on_fault, rt.restart_limit) = (on_fault, Some(limit));
        assert_refused(Case {
            config,
            expected: ConfigError::BadRestartLimit {
                partition: "rt".into(),
                limit,
                on_fault,
            },
            parts,
        });
    }
}

#[test]
fn a_board_file_names_its_fault_policy() {
    let text = board_text("virt").replace(
        "name = \"rt\"",
        "name = \"rt\"\non_fault = \"restart\"\nrestart_limit = 5",
    );
    let config = Config::from_toml(&text).expect("parses");
    let rt = config.partition("rt").unwrap();
    assert_eq!(
        (rt.on_fault, rt.restart_limit),
        (platform::config::OnFault::Restart, Some(5))
    );
    let bad = board_text("virt").replace("name = \"rt\"", "name = \"rt\"\non_fault = \"reboot\"");
    let err = Config::from_toml(&bad).expect_err("unknown policy refused");
    assert!(err.to_string().contains("stop-vcpu"), "{err}");
}

#[test]
fn dtb_ram_windows_may_lie_outside_the_board_ram_but_never_overlap_owned_ram() {
    let pi = board("rpi4");
    let linux = pi.partition("linux").expect("rpi4 has linux");
    let window = linux.dtb_ram[0];
    assert!(
        !pi.board.ram.iter().any(|b| b.contains(&window)),
        "the window reaches past the RAM every Pi 4 has"
    );
    assert_eq!(pi.validate(), Ok(()));

    let mut config = pi.clone();
    partition_mut(&mut config, "rt").dtb_ram = vec![Region::new(0x3b30_0000, 0x20_0000)];
    let err = config
        .validate()
        .expect_err("the window overlaps the channel");
    assert_eq!(err.name(), "overlapping-ram", "{err}");
    assert!(
        err.to_string().contains("partition `rt` (dtb_ram)"),
        "{err}"
    );

    let mut config = pi;
    partition_mut(&mut config, "rt").dtb_ram = vec![window];
    let err = config.validate().expect_err("two windows overlap");
    assert_eq!(err.name(), "overlapping-ram", "{err}");
}

fn doorbells(config: &mut Config) -> &mut platform::config::DoorbellSpec {
    config
        .channel
        .as_mut()
        .and_then(|c| c.doorbells.as_mut())
        .expect("virt has doorbells")
}

#[test]
fn virt_names_its_doorbells() {
    let mut config = virt();
    let d = *doorbells(&mut config);
    assert_eq!((d.to_rt, d.to_linux, d.min_interval_us), (96, 97, 1000));
}

fn doorbell_on_a_device_line() -> Case {
    let mut config = virt();
    doorbells(&mut config).to_rt = 34;
    Case {
        config,
        expected: ConfigError::DoorbellLine {
            which: "to_rt",
            irq: 34,
            user: "the line of device `rtc`".into(),
        },
        parts: &["to_rt = 34", "`rtc`"],
    }
}

#[test]
fn refuses_a_doorbell_on_a_device_line() {
    assert_refused(doorbell_on_a_device_line());
}

fn doorbell_interval_zero() -> Case {
    let mut config = virt();
    doorbells(&mut config).min_interval_us = 0;
    Case {
        config,
        expected: ConfigError::DoorbellInterval { us: 0 },
        parts: &["min_interval_us = 0"],
    }
}

fn doorbells_without_an_rt_partition() -> Case {
    let mut config = virt();
    config.partitions.retain(|p| p.name != "rt");
    Case {
        config,
        expected: ConfigError::DoorbellWithoutPeer { missing: "RT" },
        parts: &["no RT partition"],
    }
}

#[test]
fn refuses_a_doorbell_on_the_consoles_line() {
    let mut config = virt();
    doorbells(&mut config).to_linux = 33;
    assert_refused(Case {
        config,
        expected: ConfigError::DoorbellLine {
            which: "to_linux",
            irq: 33,
            user: "the line of hv's console `uart0`".into(),
        },
        parts: &["to_linux = 33", "console"],
    });
}

#[test]
fn refuses_the_same_line_both_ways() {
    let mut config = virt();
    doorbells(&mut config).to_rt = 97;
    assert_refused(Case {
        config,
        expected: ConfigError::DoorbellLine {
            which: "to_rt",
            irq: 97,
            user: "the other doorbell's line".into(),
        },
        parts: &["to_rt = 97", "other doorbell"],
    });
}

#[test]
fn refuses_doorbells_that_are_not_spis() {
    for irq in [27, 1020] {
        let mut config = virt();
        doorbells(&mut config).to_linux = irq;
        assert_refused(Case {
            config,
            expected: ConfigError::DoorbellLine {
                which: "to_linux",
                irq,
                user: "not an SPI".into(),
            },
            parts: &["not an SPI"],
        });
    }
}

#[test]
fn refuses_a_doorbell_interval_out_of_range() {
    for us in [0, 1_000_001] {
        let mut config = virt();
        doorbells(&mut config).min_interval_us = us;
        assert_refused(Case {
            config,
            expected: ConfigError::DoorbellInterval { us },
            parts: &["min_interval_us", "1..=1000000"],
        });
    }
}

#[test]
fn refuses_doorbells_without_an_rt_partition() {
    assert_refused(doorbells_without_an_rt_partition());
}

#[test]
fn board_files_refuse_a_clashing_doorbell_by_name() {
    let text = include_str!("../boards/virt.toml").replace("to_rt = 96", "to_rt = 34");
    let err = Config::from_toml(&text).expect_err("a clash is refused when parsed");
    assert!(err.starts_with("doorbell-line: "), "{err}");
}
