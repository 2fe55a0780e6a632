//! `check::check`: board configs against the boards the DTB fixtures describe.

use platform::check::{check, Mismatch};
use platform::config::{Config, CpuBoot, GicVersion, Region};
use platform::dtb::{BoardInfo, CpuEnable};

fn board_config(name: &str) -> Config {
    let path = format!("{}/boards/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    Config::from_toml(&std::fs::read_to_string(&path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture(name: &str) -> BoardInfo {
    let path = format!("{}/tests/data/{name}.dtb", env!("CARGO_MANIFEST_DIR"));
    BoardInfo::parse(&std::fs::read(&path).unwrap()).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A QEMU virt fixture as the board file runs it: the fixtures were dumped with `-m 1G`,
/// the board files ask QEMU for 2 GiB.
fn virt_dtb(name: &str) -> BoardInfo {
    let mut board = fixture(name);
    assert_eq!(board.memory, [Region::new(0x4000_0000, 0x4000_0000)]);
    board.memory = vec![Region::new(0x4000_0000, 0x8000_0000)];
    board
}

#[test]
fn virt_agrees_with_virt_gicv3() {
    assert_eq!(check(&board_config("virt"), &virt_dtb("virt-gicv3")), []);
}

#[test]
fn virt_gicv2_agrees_with_virt_gicv2() {
    assert_eq!(
        check(&board_config("virt-gicv2"), &virt_dtb("virt-gicv2")),
        []
    );
}

#[test]
fn gic_version_mismatch() {
    let found = check(&board_config("virt"), &virt_dtb("virt-gicv2"));
    assert_eq!(
        found,
        [Mismatch::GicVersion {
            config: GicVersion::V3,
            dtb: GicVersion::V2
        }]
    );
    let text = found[0].to_string();
    assert!(text.contains("V3") && text.contains("V2"), "{text}");

    let found = check(&board_config("virt-gicv2"), &virt_dtb("virt-gicv3"));
    assert_eq!(
        found,
        [Mismatch::GicVersion {
            config: GicVersion::V2,
            dtb: GicVersion::V3
        }]
    );
}

#[test]
fn no_gic() {
    let mut board = virt_dtb("virt-gicv3");
    board.gic = None;
    assert_eq!(check(&board_config("virt"), &board), [Mismatch::NoGic]);
}

#[test]
fn ram_is_not_this_checks_business() {
    // The 1 GiB fixture cannot hold the 2 GiB the virt board file gives out, but the RAM
    // rules are hv_core::board_ram's (tested there): the board itself agrees.
    assert_eq!(check(&board_config("virt"), &fixture("virt-gicv3")), []);
}

#[test]
fn cpu_count_mismatch() {
    let mut board = virt_dtb("virt-gicv3");
    board.cpus.truncate(2);
    let found = check(&board_config("virt"), &board);
    assert_eq!(found, [Mismatch::CpuCount { config: 4, dtb: 2 }]);
    assert!(found[0]
        .to_string()
        .contains("expects 4 CPUs, the DTB lists 2"));

    let mut config = board_config("virt");
    config.board.cpus = 8;
    assert_eq!(
        check(&config, &virt_dtb("virt-gicv3")),
        [Mismatch::CpuCount { config: 8, dtb: 4 }]
    );
}

#[test]
fn spin_table_config_on_a_psci_board() {
    let mut config = board_config("virt");
    config.board.cpu_boot = CpuBoot::SpinTable;
    let found = check(&config, &virt_dtb("virt-gicv3"));
    let expected: Vec<Mismatch> = (0..4)
        .map(|cpu| Mismatch::CpuBoot {
            cpu,
            config: CpuBoot::SpinTable,
            dtb: CpuEnable::Psci,
        })
        .collect();
    assert_eq!(found, expected);
    assert!(found[3].to_string().starts_with("CPU 3:"));
}

#[test]
fn psci_config_on_a_spin_table_board() {
    // One CPU switched to the spin table, and the /psci node gone.
    let mut board = virt_dtb("virt-gicv3");
    board.cpus[1].enable = CpuEnable::SpinTable { release_addr: 0xe0 };
    board.psci = None;
    let found = check(&board_config("virt"), &board);
    assert_eq!(
        found,
        [
            Mismatch::CpuBoot {
                cpu: 1,
                config: CpuBoot::Psci,
                dtb: CpuEnable::SpinTable { release_addr: 0xe0 }
            },
            Mismatch::NoPsci
        ]
    );
    assert!(found[1].to_string().contains("/psci"));
}

#[test]
fn unknown_enable_method_is_a_mismatch() {
    let mut board = virt_dtb("virt-gicv3");
    board.cpus[0].enable = CpuEnable::Other(String::new());
    assert_eq!(
        check(&board_config("virt"), &board),
        [Mismatch::CpuBoot {
            cpu: 0,
            config: CpuBoot::Psci,
            dtb: CpuEnable::Other(String::new())
        }]
    );
}

#[test]
fn missing_uart() {
    let config = board_config("virt");
    let mut board = virt_dtb("virt-gicv3");
    board.uarts.clear();
    let expected = [Mismatch::DeviceMissing {
        device: "uart0".into(),
        base: 0x0900_0000,
    }];
    assert_eq!(check(&config, &board), expected);
    assert!(expected[0].to_string().contains("`uart0` at 0x9000000"));

    // Present but disabled counts as missing.
    let mut board = virt_dtb("virt-gicv3");
    board.uarts[0].enabled = false;
    assert_eq!(check(&config, &board), expected);

    // Present at another address too.
    let mut board = virt_dtb("virt-gicv3");
    board.uarts[0].base = 0x0904_0000;
    assert_eq!(check(&config, &board), expected);
}

#[test]
fn only_pl011_devices_are_checked() {
    let mut config = board_config("virt");
    config.board.devices.push(platform::config::Device {
        name: "rtc".into(),
        compatible: "arm,pl031".into(),
        base: 0x0a00_0000,
        size: 0x1000,
        irqs: vec![34],
    });
    assert_eq!(check(&config, &virt_dtb("virt-gicv3")), []);
}

#[test]
fn not_compatible() {
    let mut config = board_config("virt");
    config.board.compatible = "raspberrypi,4-model-b".into();
    let found = check(&config, &virt_dtb("virt-gicv3"));
    assert_eq!(
        found,
        [Mismatch::NotCompatible {
            wanted: "raspberrypi,4-model-b".into(),
            found: vec!["linux,dummy-virt".into()],
        }]
    );
    let text = found[0].to_string();
    assert!(text.contains("raspberrypi,4-model-b") && text.contains("linux,dummy-virt"));
}

#[test]
fn compatible_must_match_a_whole_string() {
    let mut config = board_config("virt");
    config.board.compatible = "linux,dummy".into();
    assert!(matches!(
        check(&config, &virt_dtb("virt-gicv3"))[..],
        [Mismatch::NotCompatible { .. }]
    ));
}

#[test]
fn every_disagreement_is_reported() {
    // The Pi config on QEMU virt: wrong board, GIC, CPU start and UART at once.
    let found = check(&board_config("rpi4"), &virt_dtb("virt-gicv3"));
    let has = |f: fn(&Mismatch) -> bool| found.iter().any(f);
    assert!(
        has(|m| matches!(m, Mismatch::NotCompatible { .. })),
        "{found:?}"
    );
    assert!(
        has(|m| matches!(m, Mismatch::GicVersion { .. })),
        "{found:?}"
    );
    assert!(
        has(|m| matches!(m, Mismatch::DeviceMissing { .. })),
        "{found:?}"
    );
    let boot = found
        .iter()
        .filter(|m| matches!(m, Mismatch::CpuBoot { .. }))
        .count();
    assert_eq!(boot, 4, "{found:?}");
    assert!(
        !has(|m| matches!(m, Mismatch::CpuCount { .. })),
        "{found:?}"
    );
}
