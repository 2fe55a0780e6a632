//! hv boots on every board, brings every CPU online, describes the board and stops cleanly.
#![forbid(unsafe_code)]

use bulkhead_tests::smoke;

fn boots_all_cpus(board: &str, gic: &str, uart: &str, cpu_start: &str) {
    let (config, log) = smoke(board);
    assert!(log.fatal().is_none(), "hv failed: {:?}", log.fatal());
    for cpu in 0..config.board.cpus {
        let line = log
            .line(&format!("ready: cpu {cpu} online at EL2"))
            .unwrap_or_else(|| panic!("CPU {cpu} never reported ready"));
        assert!(
            line.starts_with(&format!("[hv cpu{cpu}]")),
            "line names the wrong CPU: {line}"
        );
    }
    assert!(log.contains(&format!("ready: all {} CPUs online", config.board.cpus)));
    let gic_line = log.line("  gic ").expect("GIC described");
    assert!(gic_line.contains(gic), "{gic_line}");
    assert!(log.contains("uart   PL011") && log.contains(uart));
    assert!(log
        .line("  cpus ")
        .expect("CPUs described")
        .contains(cpu_start));
    assert!(log.contains("MMU and caches on"));
    xtask::qemu::judge_smoke(&config, &log).expect("smoke passes");
}

#[test]
fn virt_gicv3_boots_every_cpu_through_psci() {
    boots_all_cpus(
        "virt",
        "V3: GICD 0x8000000 GICR 0x80a0000",
        "at 0x9000000",
        "PSCI via SMC",
    );
}

#[test]
fn virt_gicv2_boots_every_cpu_through_psci() {
    boots_all_cpus(
        "virt-gicv2",
        "V2: GICD 0x8000000 GICR - GICC 0x8010000 GICH 0x8030000 GICV 0x8040000",
        "at 0x9000000",
        "PSCI via SMC",
    );
}

#[test]
fn rpi4_boots_every_cpu_through_the_spin_table() {
    boots_all_cpus(
        "rpi4",
        "V2: GICD 0xff841000 GICR - GICC 0xff842000 GICH 0xff844000 GICV 0xff846000",
        "at 0xfe201000",
        "spin table",
    );
}
