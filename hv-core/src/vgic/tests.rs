use super::*;
use AccessWidth::{Byte, Double, Half, Word};

/// Linux-like partition: SPIs 33 and 40 (0x28) and 100; vCPUs on CPUs 0 and 1.
fn v2() -> VgicDistributor {
    VgicDistributor::new(GicVersion::V2, 288, &[33, 40, 100], &[0, 1]).unwrap()
}

/// RT-like partition on CPUs 2 and 3 owning SPI 34.
fn v3() -> VgicDistributor {
    VgicDistributor::new(GicVersion::V3, 288, &[34, 35], &[2, 3]).unwrap()
}

fn spi(intid: u32) -> Irq {
    Irq { intid, cpu: None }
}

fn banked(intid: u32, cpu: u32) -> Irq {
    Irq {
        intid,
        cpu: Some(cpu),
    }
}

fn cpus(list: &[u32]) -> CpuSet {
    let mut set = CpuSet::empty();
    for &c in list {
        set.insert(c);
    }
    set
}

fn w(d: &mut VgicDistributor, offset: u64, value: u64) -> Vec<Effect> {
    d.write(offset, Word, value, 0).unwrap().to_vec()
}

fn r(d: &VgicDistributor, offset: u64) -> u64 {
    d.read(offset, Word, 0).unwrap()
}

#[test]
fn an_emulated_spi_is_configured_virtually_and_never_reaches_hardware() {
    let mut d = v3().with_emulated_spi(35).unwrap();
    assert!(d.is_emulated(35) && !d.is_emulated(34));
    // ISENABLER1 for 34 and 35, priorities of 32-35, IROUTER35: only 34's effects leave.
    let enable = w(&mut d, BITMAPS + 4, (1 << 2) | (1 << 3));
    assert_eq!(enable, [Effect::Enable(spi(34))]);
    assert!(d.line_enabled(35, 0), "the guest sees its line enabled");
    let prio = w(&mut d, IPRIORITYR + 32, 0xa0a0_a0a0);
    assert!(
        prio.iter().all(|e| e.irq().is_some_and(|i| i.intid == 34)),
        "{prio:?}"
    );
    assert!(w(&mut d, IROUTER + 8 * 35, 1).is_empty());
    let mut reset = Vec::new();
    d.reset_effects(|e| reset.push(e));
    assert!(!reset.is_empty());
    assert!(reset.iter().all(|e| match *e {
        Effect::Route { intid, .. } | Effect::Target { intid, .. } => intid != 35,
        ref other => other.irq().is_none_or(|i| i.intid != 35),
    }));
    assert!(v3().with_emulated_spi(36).is_err(), "only an owned SPI");
}

#[test]
fn two_emulated_spis_both_stay_virtual() {
    let mut d = v3()
        .with_emulated_spi(35)
        .and_then(|d| d.with_emulated_spi(34))
        .unwrap();
    assert!(d.is_emulated(34) && d.is_emulated(35));
    assert!(w(&mut d, BITMAPS + 4, (1 << 2) | (1 << 3)).is_empty());
    assert!(d.line_enabled(34, 0) && d.line_enabled(35, 0));
    assert!(
        d.clone().with_emulated_spi(34).is_err(),
        "no third emulated line"
    );
}

#[test]
fn enable_and_disable_an_owned_spi_give_exactly_that_effect() {
    let mut d = v2();
    assert_eq!(w(&mut d, 0x104, 1 << 1), [Effect::Enable(spi(33))]);
    assert_eq!(r(&d, 0x104), 1 << 1);
    assert_eq!(r(&d, 0x184), 1 << 1);
    assert!(d.line_enabled(33, 0));
    assert_eq!(w(&mut d, 0x184, 1 << 1), [Effect::Disable(spi(33))]);
    assert_eq!(r(&d, 0x104), 0);
    assert_eq!(d.ignored_writes(), 0);
}

#[test]
fn linux_style_distributor_init_touches_only_owned_lines() {
    // What a GICv3 guest does at boot: distributor off, every SPI group 1, level,
    // priority 0xa0, inactive, disabled, routed to the boot CPU; distributor on.
    let mut d = v3();
    let mut effects = Vec::new();
    w(&mut d, 0, 0);
    for i in (32..288u64).step_by(32) {
        effects.extend(w(&mut d, 0x80 + i / 8, u64::from(u32::MAX)));
        effects.extend(w(&mut d, 0x380 + i / 8, u64::from(u32::MAX)));
        effects.extend(w(&mut d, 0x180 + i / 8, u64::from(u32::MAX)));
    }
    for i in (32..288u64).step_by(16) {
        effects.extend(w(&mut d, 0xc00 + i / 4, 0));
    }
    for i in (32..288u64).step_by(4) {
        effects.extend(w(&mut d, 0x400 + i, 0xa0a0_a0a0));
    }
    for i in 32..288u64 {
        effects.extend(d.write(0x6000 + 8 * i, Double, 0, 0).unwrap().iter());
    }
    w(&mut d, 0, 0b1_0011);
    let prio = |intid| Effect::SetPriority {
        irq: spi(intid),
        priority: 0xa0,
    };
    assert_eq!(
        effects,
        [
            Effect::ClearActive(spi(34)),
            Effect::ClearActive(spi(35)),
            Effect::Disable(spi(34)),
            Effect::Disable(spi(35)),
            prio(34),
            prio(35),
        ]
    );
    // 8 ICACTIVER + 8 ICENABLER words with foreign bits, 64 priority words.
    assert_eq!(d.stats().foreign_lines, 8 + 8 + 64);
    assert!(d.distributor_enabled());
}

#[test]
fn value_bits_beyond_the_access_width_are_ignored() {
    let mut d = v2();
    assert_eq!(
        w(&mut d, 0x104, (1 << 33) | (1 << 1)),
        [Effect::Enable(spi(33))]
    );
    assert_eq!(AccessWidth::from_bytes(4), Some(Word));
    assert_eq!(AccessWidth::from_bytes(3), None);
    let effects = d.write(0x421, Byte, 0x1_22, 0).unwrap();
    assert_eq!(
        &*effects,
        [Effect::SetPriority {
            irq: spi(33),
            priority: 0x22
        }]
    );
}

#[test]
fn owned_spis_start_disabled() {
    let d = v3();
    for word in 0..9 {
        assert_eq!(r(&d, 0x100 + 4 * word), 0);
    }
    assert!(!d.line_enabled(34, 0));
}

#[test]
fn foreign_bit_in_a_shared_register_is_dropped_and_counted() {
    let mut d = v2();
    // 33 owned, 34 foreign, same register.
    let effects = w(&mut d, 0x104, (1 << 1) | (1 << 2));
    assert_eq!(effects, [Effect::Enable(spi(33))]);
    assert_eq!(d.stats().foreign_lines, 1);
    assert_eq!(r(&d, 0x104), 1 << 1);
    // Only foreign bits: nothing at all.
    assert!(w(&mut d, 0x104, 1 << 2).is_empty());
    assert!(w(&mut d, 0x184, u64::from(u32::MAX)).len() == 2);
    assert_eq!(d.stats().foreign_lines, 3);
    assert_eq!(d.ignored_writes(), 3);
}

#[test]
fn reads_hide_foreign_lines() {
    let mut d = v2();
    w(&mut d, 0x104, u64::from(u32::MAX));
    w(&mut d, 0x204, u64::from(u32::MAX));
    w(&mut d, 0x304, u64::from(u32::MAX));
    let owned_word1 = (1 << 1) | (1 << 8);
    assert_eq!(r(&d, 0x104), owned_word1);
    assert_eq!(r(&d, 0x204), owned_word1);
    assert_eq!(r(&d, 0x284), owned_word1);
    assert_eq!(r(&d, 0x304), owned_word1);
    assert_eq!(r(&d, 0x384), owned_word1);
    // IGROUPR: group 1 for owned lines only.
    assert_eq!(r(&d, 0x084), owned_word1);
    assert_eq!(r(&d, 0x088), 0);
    assert_eq!(r(&d, 0x08c), 1 << 4); // 100 = 96 + 4
                                      // Beyond the implemented lines.
    assert_eq!(r(&d, 0x124), 0);
}

#[test]
fn pending_and_active_effects_and_notes() {
    let mut d = v3();
    assert_eq!(w(&mut d, 0x204, 1 << 2), [Effect::SetPending(spi(34))]);
    assert_eq!(w(&mut d, 0x284, 1 << 2), [Effect::ClearPending(spi(34))]);
    assert_eq!(w(&mut d, 0x304, 1 << 3), [Effect::SetActive(spi(35))]);
    assert_eq!(w(&mut d, 0x384, 1 << 3), [Effect::ClearActive(spi(35))]);
    assert!(d.note_pending(35, 0, true));
    assert_eq!(r(&d, 0x204), 1 << 3);
    assert!(!d.note_pending(36, 0, true));
    // v3: banked lines live in the redistributors, hidden from the distributor.
    assert!(d.note_active(5, 0, true));
    assert!(!d.note_active(25, 0, true)); // hv's maintenance PPI
    assert_eq!(r(&d, 0x300), 0);
    assert_eq!(r(&d, 0x204), 1 << 3);
}

#[test]
fn priorities_are_byte_wise_and_foreign_bytes_ignored() {
    let mut d = v2();
    // IPRIORITYR8 covers 32..35: 33 owned, 32/34/35 foreign.
    let effects = w(&mut d, 0x420, 0x40_30_a0_10);
    assert_eq!(
        effects,
        [Effect::SetPriority {
            irq: spi(33),
            priority: 0xa0
        }]
    );
    assert_eq!(d.stats().foreign_lines, 1);
    assert_eq!(r(&d, 0x420), 0x00_00_a0_00);
    assert_eq!(d.read(0x421, Byte, 0), Ok(0xa0));
    assert_eq!(d.read(0x422, Byte, 0), Ok(0));
    // Byte write to an owned line.
    let effects = d.write(0x428, Byte, 0x80, 0).unwrap();
    assert_eq!(
        &*effects,
        [Effect::SetPriority {
            irq: spi(40),
            priority: 0x80
        }]
    );
    // Same value again: no physical write.
    assert!(d.write(0x428, Byte, 0x80, 0).unwrap().is_empty());
    // Byte write to a foreign line.
    assert!(d.write(0x422, Byte, 0x80, 0).unwrap().is_empty());
    assert_eq!(d.stats().foreign_lines, 2);
    // Read-modify-write of the shared word is not an attempt on the foreign lines.
    let word = r(&d, 0x420);
    w(&mut d, 0x420, (word & !0xff00) | 0x6000);
    assert_eq!(d.stats().foreign_lines, 2);
}

#[test]
fn itargetsr_translates_virtual_to_physical_and_drops_foreign_cpus() {
    // vCPU 0 on CPU 2, vCPU 1 on CPU 3.
    let mut d = VgicDistributor::new(GicVersion::V2, 224, &[33], &[2, 3]).unwrap();
    assert_eq!(d.read(0x821, Byte, 0), Ok(0x01));
    let effects = d.write(0x821, Byte, 0b10, 0).unwrap();
    assert_eq!(
        &*effects,
        [Effect::Target {
            intid: 33,
            cpus: cpus(&[3])
        }]
    );
    assert_eq!(d.read(0x821, Byte, 0), Ok(0b10));
    // Both vCPUs plus vCPUs 2..7 that do not exist.
    let effects = d.write(0x821, Byte, 0xff, 1).unwrap();
    assert_eq!(
        &*effects,
        [Effect::Target {
            intid: 33,
            cpus: cpus(&[2, 3])
        }]
    );
    assert_eq!(d.stats().foreign_cpus, 1);
    assert_eq!(r(&d, 0x820), 0b11 << 8);
    // Only a non-existent vCPU: the line ends up targeting nobody.
    let effects = d.write(0x821, Byte, 0x80, 0).unwrap();
    assert_eq!(
        &*effects,
        [Effect::Target {
            intid: 33,
            cpus: CpuSet::empty()
        }]
    );
    // Foreign line: nothing.
    assert!(w(&mut d, 0x820, 0x01_01_01_01).len() == 1);
    assert_eq!(d.stats().foreign_lines, 1);
    // Banked targets read as the accessing vCPU's own bit, and are read-only.
    assert_eq!(d.read(0x800, Word, 1), Ok(0x0202_0202));
    assert_eq!(d.read(0x819, Byte, 0), Ok(0)); // INTID 25: hv's maintenance PPI
    assert!(w(&mut d, 0x800, 0xffff_ffff).is_empty());
}

#[test]
fn irouter_translates_and_refuses_foreign_cpus() {
    let mut d = v3();
    let off = 0x6000 + 8 * 34;
    assert_eq!(d.read(off, Double, 0), Ok(0));
    // Route to vCPU 1 = physical CPU 3.
    let effects = d.write(off, Double, 1, 0).unwrap();
    assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 3 }]);
    assert_eq!(d.read(off, Double, 0), Ok(1));
    // vCPU 2 does not exist; Aff1 != 0 does not exist: refused, route unchanged.
    assert!(d.write(off, Double, 2, 0).unwrap().is_empty());
    assert!(d.write(off, Double, 0x100, 0).unwrap().is_empty());
    assert!(d.write(off, Double, 1 << 32, 0).unwrap().is_empty());
    assert_eq!(d.stats().foreign_cpus, 3);
    assert_eq!(d.read(off, Double, 0), Ok(1));
    // IRM = 1 goes to the partition's first CPU.
    let effects = d.write(off, Double, IROUTER_IRM, 0).unwrap();
    assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 2 }]);
    assert_eq!(d.read(off, Word, 0), Ok(IROUTER_IRM));
    // 32-bit halves (as AArch32 or lo/hi writers do).
    let effects = d.write(off, Word, 1, 0).unwrap();
    assert_eq!(&*effects, [Effect::Route { intid: 34, cpu: 3 }]);
    assert!(d.write(off + 4, Word, 0, 0).unwrap().is_empty());
    assert_eq!(d.read(off + 4, Word, 0), Ok(0));
    // Foreign SPI 33 and SGI/PPI slots: nothing, reads zero.
    let foreign = 0x6000 + 8 * 33;
    assert!(d.write(foreign, Double, 0, 0).unwrap().is_empty());
    assert!(d.write(foreign, Double, 1, 0).unwrap().is_empty());
    assert_eq!(d.read(foreign, Double, 0), Ok(0));
    assert!(d.write(0x6000, Double, 1, 0).unwrap().is_empty());
    assert_eq!(d.stats().foreign_lines, 2);
}

#[test]
fn sgir_filters_map_to_the_partitions_cpus_only() {
    // Four vCPUs on CPUs 4..7 (so virtual and physical numbers differ).
    let mut d = VgicDistributor::new(GicVersion::V2, 224, &[], &[4, 5, 6, 7]).unwrap();
    let sgi = |d: &mut VgicDistributor, value: u64, vcpu: usize| {
        d.write(0xf00, Word, value, vcpu).unwrap().to_vec()
    };
    // Filter 0: list of vCPUs 1 and 3 (and 6, which does not exist).
    assert_eq!(
        sgi(&mut d, (0b0100_1010 << 16) | 3, 0),
        [Effect::SendSgi {
            intid: 3,
            cpus: cpus(&[5, 7])
        }]
    );
    assert_eq!(d.stats().foreign_cpus, 1);
    // Filter 1: all but self.
    assert_eq!(
        sgi(&mut d, (1 << 24) | 1, 2),
        [Effect::SendSgi {
            intid: 1,
            cpus: cpus(&[4, 5, 7])
        }]
    );
    // Filter 2: self.
    assert_eq!(
        sgi(&mut d, (2 << 24) | 15, 3),
        [Effect::SendSgi {
            intid: 15,
            cpus: cpus(&[7])
        }]
    );
    // Filter 3 is reserved; empty lists send nothing.
    assert!(sgi(&mut d, (3 << 24) | 0xff << 16, 0).is_empty());
    assert!(sgi(&mut d, 0xf0 << 16, 0).is_empty());
    assert_eq!(d.stats().reserved, 1);
    // GICD_SGIR is write-only.
    assert_eq!(r(&d, 0xf00), 0);

    // A single-vCPU partition: all-but-self is nobody.
    let mut one = VgicDistributor::new(GicVersion::V2, 224, &[], &[2]).unwrap();
    assert!(sgi(&mut one, 1 << 24, 0).is_empty());
    assert_eq!(
        sgi(&mut one, 0xff << 16, 0),
        [Effect::SendSgi {
            intid: 0,
            cpus: cpus(&[2])
        }]
    );
    // An SGI hv reserved is never sent.
    let mut d = v2().with_hv_private(DEFAULT_HV_PRIVATE | (1 << 15));
    assert!(sgi(&mut d, (2 << 24) | 15, 0).is_empty());
    assert_eq!(d.stats().foreign_lines, 1);
}

#[test]
fn sgi1r_maps_virtual_affinity_to_partition_cpus() {
    let mut d = VgicDistributor::new(GicVersion::V3, 288, &[], &[1, 2, 3]).unwrap();
    // TargetList vCPUs 0 and 2, INTID 5.
    assert_eq!(
        d.write_sgi1r((5 << 24) | 0b101, 1),
        Ok(Some(Effect::SendSgi {
            intid: 5,
            cpus: cpus(&[1, 3])
        }))
    );
    // IRM: all but self.
    assert_eq!(
        d.write_sgi1r((1 << 40) | (7 << 24), 1),
        Ok(Some(Effect::SendSgi {
            intid: 7,
            cpus: cpus(&[1, 3])
        }))
    );
    // Aff1 != 0, RS != 0, or a list beyond the partition: nobody, counted.
    assert_eq!(d.write_sgi1r((1 << 16) | 1, 0), Ok(None));
    assert_eq!(d.write_sgi1r((1 << 44) | 1, 0), Ok(None));
    assert_eq!(
        d.write_sgi1r(0b1001, 0),
        Ok(Some(Effect::SendSgi {
            intid: 0,
            cpus: cpus(&[1])
        }))
    );
    assert_eq!(d.stats().foreign_cpus, 3);
    assert_eq!(
        d.write_sgi1r(1, 3),
        Err(AccessError::NoSuchVcpu { vcpu: 3 })
    );
}

#[test]
fn sgi1r_from_and_to_vcpus_above_3_in_an_eight_vcpu_partition() {
    // The decoder's limits: target lists name vCPUs RS * 16 + bit, so 0-15 with RS = 0;
    // every vCPU index of a partition (at most one per CPU hv runs on) is a valid source.
    let cpus_of_vcpus: Vec<u32> = (0..8).collect();
    let mut d = VgicDistributor::new(GicVersion::V3, 288, &[], &cpus_of_vcpus).unwrap();
    assert_eq!(
        d.write_sgi1r((2 << 24) | (1 << 6) | 1, 5),
        Ok(Some(Effect::SendSgi {
            intid: 2,
            cpus: cpus(&[0, 6])
        }))
    );
    assert_eq!(
        d.write_sgi1r((1 << 40) | (9 << 24), 7),
        Ok(Some(Effect::SendSgi {
            intid: 9,
            cpus: cpus(&[0, 1, 2, 3, 4, 5, 6])
        }))
    );
    // vCPU 8 and up do not exist: the bits are dropped and counted, not delivered.
    assert_eq!(d.write_sgi1r(1 << 8, 4), Ok(None));
    assert_eq!(d.stats().foreign_cpus, 1);
    assert_eq!(
        d.write_sgi1r(1, 8),
        Err(AccessError::NoSuchVcpu { vcpu: 8 })
    );
}

#[test]
fn v2_banked_sgi_ppi_state_is_per_accessing_vcpu() {
    // vCPU 0 on CPU 0, vCPU 1 on CPU 1; exit-less, so its SGIs are physical.
    let mut d = v2().with_physical_sgis();
    // vCPU 1 enables the virtual timer PPI (27) and SGI 1.
    let effects = d.write(0x100, Word, (1 << 27) | (1 << 1), 1).unwrap();
    assert_eq!(
        &*effects,
        [Effect::Enable(banked(1, 1)), Effect::Enable(banked(27, 1))]
    );
    assert_eq!(d.read(0x100, Word, 1), Ok((1 << 27) | (1 << 1)));
    assert_eq!(d.read(0x100, Word, 0), Ok(0));
    assert!(d.line_enabled(27, 1));
    assert!(!d.line_enabled(27, 0));
    // vCPU 0 disables PPI 27 on its own CPU only.
    let effects = d.write(0x180, Word, 1 << 27, 0).unwrap();
    assert_eq!(&*effects, [Effect::Disable(banked(27, 0))]);
    assert_eq!(d.read(0x100, Word, 1), Ok((1 << 27) | (1 << 1)));
    // Banked priority and config.
    let effects = d.write(0x41b, Byte, 0x20, 1).unwrap();
    assert_eq!(
        &*effects,
        [Effect::SetPriority {
            irq: banked(27, 1),
            priority: 0x20
        }]
    );
    assert_eq!(d.read(0x418, Word, 1), Ok(0x20 << 24));
    assert_eq!(d.read(0x418, Word, 0), Ok(0));
    let effects = d.write(0xc04, Word, 0b10 << 22, 0).unwrap();
    assert_eq!(
        &*effects,
        [Effect::SetConfig {
            irq: banked(27, 0),
            edge: true
        }]
    );
    // SGIs read as edge and cannot be changed.
    assert_eq!(d.read(0xc00, Word, 0), Ok(0xaaaa_aaaa));
    assert!(d.write(0xc00, Word, 0, 0).unwrap().is_empty());
    // SGI pending bits of ISPENDR0 are write-ignored; PPI ones act on the CPU.
    let effects = d.write(0x200, Word, 0xffff | (1 << 27), 1).unwrap();
    assert_eq!(&*effects, [Effect::SetPending(banked(27, 1))]);
}

/// With trap-and-inject a GICv2 partition's SGIs are virtual: its writes to the banked
/// SGI bits (enable, active, priority) change only its view, never the physical SGIs of
/// its CPUs, which are hv's (kick SGI 0: disabled, active or at priority 0xff it would
/// never reach the CPU again). PPIs still reach the CPU.
#[test]
fn v2_virtual_sgis_never_reach_the_physical_sgis() {
    let mut d = v2();
    for (offset, value) in [
        (0x100, 0xffff),      // ISENABLER0
        (0x180, 0xffff),      // ICENABLER0
        (0x300, 0xffff),      // ISACTIVER0
        (0x380, 0xffff),      // ICACTIVER0
        (0x400, 0xffff_ffff), // IPRIORITYR0: SGIs 0-3 at 0xff
        (0x40c, 0xa0a0_a0a0), // IPRIORITYR3: SGIs 12-15
    ] {
        for vcpu in 0..2 {
            let effects = d.write(offset, Word, value, vcpu).unwrap();
            assert!(effects.is_empty(), "{offset:#x}: {effects:?}");
        }
    }
    // The view keeps what the guest wrote.
    assert_eq!(d.read(0x400, Word, 1), Ok(0xffff_ffff));
    assert_eq!(d.read(0x100, Word, 0), Ok(0));
    // PPIs in the same registers still act on the writing vCPU's CPU.
    let effects = d.write(0x100, Word, (1 << 27) | 1, 1).unwrap();
    assert_eq!(&*effects, [Effect::Enable(banked(27, 1))]);
    // A reset gives the SGIs no physical setup either.
    let mut reset = Vec::new();
    d.reset_effects(|e| reset.push(e));
    assert!(
        reset
            .iter()
            .all(|e| e.irq().is_none_or(|irq| irq.intid >= 16)),
        "{reset:?}"
    );
}

#[test]
fn hv_private_ppis_are_invisible() {
    let mut d = v2();
    // Maintenance (25) and EL2 timer (26).
    assert!(d.write(0x180, Word, 0b11 << 25, 0).unwrap().is_empty());
    assert_eq!(d.stats().foreign_lines, 1);
    let all = d.write(0x100, Word, u64::from(u32::MAX), 0).unwrap();
    // The 14 PPIs that are not hv's (the SGIs are virtual).
    assert_eq!(all.len(), 14);
    assert!(all
        .iter()
        .all(|e| !matches!(e, Effect::Enable(Irq { intid: 25 | 26, .. }))));
    assert_eq!(r(&d, 0x100), u64::from(!DEFAULT_HV_PRIVATE));
    assert_eq!(d.read(0x419, Byte, 0), Ok(0));
    assert!(d.write(0x419, Byte, 0xff, 0).unwrap().is_empty());
    assert_eq!(r(&d, 0x080), u64::from(!DEFAULT_HV_PRIVATE));
}

#[test]
fn v3_has_no_banked_lines_in_the_distributor() {
    let mut d = v3();
    assert!(w(&mut d, 0x100, u64::from(u32::MAX)).is_empty());
    assert_eq!(r(&d, 0x100), 0);
    assert_eq!(r(&d, 0xc00), 0);
    assert_eq!(r(&d, 0x080), 0);
    // ITARGETSR and SGIR do not exist with affinity routing.
    assert_eq!(r(&d, 0x820), 0);
    assert!(w(&mut d, 0x820, 0x01010101).is_empty());
    assert!(w(&mut d, 0xf00, 0x0001_0001).is_empty());
    assert_eq!(d.stats().reserved, 2);
}

#[test]
fn icfgr_sets_edge_or_level_on_owned_lines() {
    let mut d = v3();
    // ICFGR2 covers 32..47: 34 and 35 owned (fields 2 and 3).
    let effects = w(&mut d, 0xc08, (0b10 << 4) | (0b10 << 2));
    assert_eq!(
        effects,
        [Effect::SetConfig {
            irq: spi(34),
            edge: true
        }]
    );
    assert_eq!(d.stats().foreign_lines, 1);
    assert_eq!(r(&d, 0xc08), 0b10 << 4);
    // Read-modify-write back unchanged: nothing.
    let v = r(&d, 0xc08);
    assert!(w(&mut d, 0xc08, v).is_empty());
    let effects = w(&mut d, 0xc08, 0b10 << 6);
    assert_eq!(
        effects,
        [
            Effect::SetConfig {
                irq: spi(34),
                edge: false
            },
            Effect::SetConfig {
                irq: spi(35),
                edge: true
            }
        ]
    );
}

#[test]
fn ctlr_is_a_virtual_enable() {
    let mut d = v2();
    assert_eq!(r(&d, 0), 0);
    assert!(w(&mut d, 0, 0xffff_ffff).is_empty());
    assert_eq!(r(&d, 0), 1);
    assert!(d.distributor_enabled());
    w(&mut d, 0, 0);
    assert!(!d.distributor_enabled());

    let mut d = v3();
    assert_eq!(r(&d, 0), u64::from(CTLR_V3_ARE | CTLR_V3_DS));
    // Linux writes ARE_NS | EnableGrp1A | EnableGrp1.
    assert!(w(&mut d, 0, 0b1_0011).is_empty());
    assert_eq!(r(&d, 0), 0b101_0011);
    assert!(d.distributor_enabled());
    assert_eq!(d.ignored_writes(), 0);
}

#[test]
fn id_registers() {
    let d = v2();
    // The partition's lines, not the GIC's 288: its highest SPI (100) is in word 3 ->
    // ITLinesNumber 3 (128 lines); 2 vCPUs -> CPUNumber 1.
    assert_eq!(r(&d, 4), 3 | (1 << 5));
    assert_eq!(r(&d, 8), u64::from(IIDR_VALUE));
    assert_eq!(r(&d, 0xfe8), 0x2b);
    let d = v3();
    // SPIs 34 and 35: 64 lines.
    assert_eq!(r(&d, 4), 1 | (9 << 19));
    assert_eq!(r(&d, 8), u64::from(IIDR_VALUE));
    assert_eq!(r(&d, 0xffe8), 0x3b);
    assert_eq!(r(&d, 0xfe8), 0);
    // Pi 4 GIC-400: 224 lines.
    let pi = VgicDistributor::new(GicVersion::V2, 224, &[153], &[0, 1]).unwrap();
    assert_eq!(r(&pi, 4) & 0x1f, 4);
    // No SPIs at all: the 32 banked lines; 4 vCPUs -> CPUNumber 3.
    let bare = VgicDistributor::new(GicVersion::V2, 224, &[], &[0, 1, 2, 3]).unwrap();
    assert_eq!(r(&bare, 4), 3 << 5);
    // Read-only: writes are dropped and counted.
    let mut d = v2();
    assert!(w(&mut d, 4, 0).is_empty());
    assert!(w(&mut d, 0xfe8, 0).is_empty());
    assert_eq!(r(&d, 4), 3 | (1 << 5));
    assert_eq!(d.stats().reserved, 2);
}

#[test]
fn bad_accesses_are_errors() {
    let mut d = v2();
    let e = |offset, width| Err(AccessError::BadWidth { offset, width });
    assert_eq!(d.read(0x104, Half, 0), e(0x104, Half));
    assert_eq!(d.read(0x104, Byte, 0), e(0x104, Byte));
    assert_eq!(d.read(0x100, Double, 0), e(0x100, Double));
    assert_eq!(d.read(0x420, Double, 0), e(0x420, Double));
    assert_eq!(d.read(0, Byte, 0), e(0, Byte));
    assert_eq!(
        d.write(0x102, Word, 0, 0).unwrap_err(),
        AccessError::Misaligned {
            offset: 0x102,
            width: Word
        }
    );
    assert_eq!(
        d.read(0x1000, Word, 0),
        Err(AccessError::OutsideFrame { offset: 0x1000 })
    );
    assert_eq!(
        d.read(u64::MAX, Byte, 0),
        Err(AccessError::OutsideFrame { offset: u64::MAX })
    );
    assert_eq!(
        d.read(0x100, Word, 2),
        Err(AccessError::NoSuchVcpu { vcpu: 2 })
    );
    let mut d3 = v3();
    assert_eq!(d3.read(0x6000 + 8 * 34, Byte, 0), e(0x6000 + 8 * 34, Byte));
    assert!(d3.read(0x6114, Word, 0).is_ok());
    assert_eq!(
        d3.write(0x6112, Word, 0, 0).unwrap_err(),
        AccessError::Misaligned {
            offset: 0x6112,
            width: Word
        }
    );
    assert_eq!(
        d3.read(0x1_0000, Word, 0),
        Err(AccessError::OutsideFrame { offset: 0x1_0000 })
    );
    // Nothing changed through any of that.
    assert_eq!(d.ignored_writes() + d3.ignored_writes(), 0);
}

#[test]
fn reserved_offsets_read_zero_and_count_writes() {
    let mut d = v2();
    for offset in [0x00c, 0x040, 0xd00, 0xe00, 0xf10, 0xf20, 0xfd0, 0xffc] {
        assert_eq!(r(&d, offset), 0, "{offset:#x}");
        assert!(w(&mut d, offset, u64::from(u32::MAX)).is_empty());
    }
    assert_eq!(d.stats().reserved, 8);
    let mut d3 = v3();
    assert_eq!(d3.read(0x8000, Double, 0), Ok(0));
    assert!(d3.write(0xc000, Double, u64::MAX, 0).unwrap().is_empty());
    assert_eq!(d3.stats().reserved, 1);
}

#[test]
fn setup_errors() {
    use SetupError::*;
    let new = |v, lines, spis: &[u32], cpus: &[u32]| {
        VgicDistributor::new(v, lines, spis, cpus).map(|_| ())
    };
    assert_eq!(new(GicVersion::V2, 288, &[], &[]), Err(NoVcpus));
    assert_eq!(
        new(GicVersion::V2, 288, &[], &[0, 1, 2, 3, 4, 5, 6, 7, 8]),
        Err(TooManyVcpus(9))
    );
    assert_eq!(new(GicVersion::V3, 288, &[], &[64]), Err(CpuOutOfRange(64)));
    assert_eq!(new(GicVersion::V3, 288, &[], &[1, 1]), Err(DuplicateCpu(1)));
    assert_eq!(new(GicVersion::V3, 16, &[], &[0]), Err(BadLineCount(16)));
    assert_eq!(
        new(GicVersion::V3, 2048, &[], &[0]),
        Err(BadLineCount(2048))
    );
    assert_eq!(new(GicVersion::V3, 288, &[31], &[0]), Err(NotAnSpi(31)));
    assert_eq!(new(GicVersion::V3, 288, &[288], &[0]), Err(NotAnSpi(288)));
    assert_eq!(
        new(GicVersion::V3, 1024, &[1020], &[0]),
        Err(NotAnSpi(1020))
    );
    assert_eq!(new(GicVersion::V3, 1024, &[1019], &[0]), Ok(()));
}

#[test]
fn reset_effects_cover_owned_lines_on_partition_cpus() {
    let d = v3();
    let mut effects = Vec::new();
    d.reset_effects(|e| effects.push(e));
    // 2 SPIs x 6, then 2 vCPUs x 14 visible PPIs x 4 (SGIs are virtual on v3).
    assert_eq!(effects.len(), 2 * 6 + 2 * 14 * 4);
    assert!(effects.contains(&Effect::Route { intid: 35, cpu: 2 }));
    assert!(effects.contains(&Effect::Disable(spi(34))));
    assert!(effects.contains(&Effect::Disable(banked(27, 3))));
    assert!(effects.contains(&Effect::ClearPending(banked(16, 2))));
    assert!(!effects.contains(&Effect::Disable(banked(26, 2))));
    assert!(!effects.contains(&Effect::Disable(banked(15, 2))));
    for e in &effects {
        check_effect(&d, &[34, 35], &[2, 3], e);
    }

    let d = v2();
    let mut effects = Vec::new();
    d.reset_effects(|e| effects.push(e));
    assert!(effects.contains(&Effect::Target {
        intid: 100,
        cpus: cpus(&[0])
    }));
    assert!(effects.contains(&Effect::Disable(banked(27, 1))));
    assert!(!effects.contains(&Effect::Disable(banked(25, 1))));
    assert!(!effects.contains(&Effect::ClearPending(banked(3, 0))));
    for e in &effects {
        check_effect(&d, &[33, 40, 100], &[0, 1], e);
    }
}

/// Asserts `e` names only owned SPIs, visible banked lines and partition CPUs.
fn check_effect(d: &VgicDistributor, owned: &[u32], part: &[u32], e: &Effect) {
    let check_irq = |irq: Irq| match irq.cpu {
        None => assert!(owned.contains(&irq.intid), "{e:?}"),
        Some(cpu) => {
            // GICv3 SGIs are virtual: only PPIs reach a redistributor.
            let first = if d.version == GicVersion::V2 && d.physical_sgis {
                0
            } else {
                16
            };
            assert!((first..32).contains(&irq.intid), "{e:?}");
            assert!(d.hv_private & (1 << irq.intid) == 0, "{e:?}");
            assert!(part.contains(&cpu), "{e:?}");
        }
    };
    let check_set = |set: CpuSet| assert!(set.iter().all(|c| part.contains(&c)), "{e:?}");
    if let Some(irq) = e.irq() {
        check_irq(irq);
    }
    match e {
        Effect::Target { intid, cpus } => {
            assert!(owned.contains(intid), "{e:?}");
            check_set(*cpus);
        }
        Effect::Route { intid, cpu } => {
            assert!(owned.contains(intid), "{e:?}");
            assert!(part.contains(cpu), "{e:?}");
        }
        Effect::SendSgi { intid, cpus } => {
            assert!(*intid < 16, "{e:?}");
            assert!(!cpus.is_empty());
            check_set(*cpus);
        }
        // Per-line effects: checked above.
        _ => {}
    }
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Random writes at random offsets, widths and values from random vCPUs never give an
/// effect outside the partition, never panic, and foreign lines keep reading zero.
#[test]
fn random_writes_never_escape_the_partition() {
    let configs: [(GicVersion, u32, &[u32], &[u32]); 4] = [
        (GicVersion::V2, 288, &[33, 40, 63, 64, 100], &[0, 1]),
        (GicVersion::V2, 224, &[153], &[2, 3]),
        (GicVersion::V3, 288, &[34, 35, 287], &[2, 3]),
        (GicVersion::V3, 1024, &[32, 1019], &[5, 1, 7]),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    for (version, lines, owned, part) in configs {
        let mut d = VgicDistributor::new(version, lines, owned, part).unwrap();
        if part == [2, 3] && version == GicVersion::V2 {
            // An exit-less GICv2 partition: its banked SGI writes may reach its CPUs.
            d = d.with_physical_sgis();
        }
        let frame = d.frame_size();
        let mut effects_seen = 0;
        for _ in 0..20_000 {
            let width = [Byte, Half, Word, Double][rng.below(4) as usize];
            // Mostly aim at the interesting registers.
            let offset = match rng.below(5) {
                0 => rng.below(frame),
                4 => {
                    // A register field of an owned line (or its neighbours).
                    let intid = u64::from(owned[rng.below(owned.len() as u64) as usize]);
                    let field = match rng.below(4) {
                        0 => 0x100 + 0x80 * rng.below(6) + intid / 32 * 4,
                        1 => 0x400 + intid,
                        2 => 0xc00 + intid / 16 * 4,
                        _ if version == GicVersion::V2 => 0x800 + intid,
                        _ => 0x6000 + 8 * intid,
                    };
                    field & !(width.bytes() - 1)
                }
                1 => 0x80 + rng.below(0xc80),
                2 if version == GicVersion::V3 => 0x6000 + rng.below(0x2000),
                _ => [
                    0, 0xf00, 0x100, 0x104, 0x184, 0x200, 0x418, 0x420, 0x820, 0xc04, 0xc08,
                ][rng.below(11) as usize],
            };
            let value = match rng.below(3) {
                0 => rng.next(),
                1 => rng.below(256),
                _ => 1 << rng.below(64),
            };
            let vcpu = rng.below(part.len() as u64 + 1) as usize;
            match d.write(offset, width, value, vcpu) {
                Ok(effects) => {
                    effects_seen += effects.len();
                    for e in &effects {
                        check_effect(&d, owned, part, e);
                    }
                }
                Err(_) => assert!(d.read(offset, width, vcpu).is_err()),
            }
            if version == GicVersion::V3 && rng.below(8) == 0 {
                if let Ok(Some(e)) = d.write_sgi1r(rng.next(), vcpu) {
                    effects_seen += 1;
                    check_effect(&d, owned, part, &e);
                }
            }
        }
        assert!(
            effects_seen > 300,
            "{version:?}: only {effects_seen} effects"
        );
        // Every foreign SPI still reads as zero everywhere.
        for intid in 32..d.lines {
            if owned.contains(&intid) {
                continue;
            }
            let word = u64::from(intid / 32) * 4;
            let bit = 1u64 << (intid % 32);
            for base in [0x080, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380] {
                assert_eq!(r(&d, base + word) & bit, 0, "{intid} at {base:#x}");
            }
            assert_eq!(d.read(0x400 + u64::from(intid), Byte, 0), Ok(0));
            let cfg = 0xc00 + u64::from(intid / 16) * 4;
            assert_eq!(r(&d, cfg) >> (2 * (intid % 16)) & 0b11, 0);
            match version {
                GicVersion::V2 => {
                    assert_eq!(d.read(0x800 + u64::from(intid), Byte, 0), Ok(0))
                }
                GicVersion::V3 => {
                    assert_eq!(d.read(0x6000 + 8 * u64::from(intid), Double, 0), Ok(0))
                }
            }
        }
        assert!(d.ignored_writes() > 0);
    }
}

/// The trap path's entry point hands over what `write` lists, in order, and for a
/// refused access nothing at all (no effect, no state change).
#[test]
fn write_each_hands_over_effects_in_order_and_none_on_errors() {
    let mut d = v2();
    let mut seen = Vec::new();
    d.write_each(0x104, Word, (1 << 8) | (1 << 1), 0, |e| seen.push(e))
        .unwrap();
    assert_eq!(seen, [Effect::Enable(spi(33)), Effect::Enable(spi(40))]);
    assert_eq!(r(&d, 0x104), (1 << 8) | (1 << 1));
    // GICD_SGIR, target list = vCPU 1: its one SGI, to vCPU 1's CPU.
    seen.clear();
    d.write_each(0xf00, Word, (1 << 17) | 3, 0, |e| seen.push(e))
        .unwrap();
    let sgi = Effect::SendSgi {
        intid: 3,
        cpus: cpus(&[1]),
    };
    assert_eq!(seen, [sgi]);
    let before = (d.stats(), r(&d, 0x104));
    for (offset, width) in [(0x186, Word), (0x104, Half), (0x1000, Word)] {
        let result = d.write_each(offset, width, u64::MAX, 0, |e| {
            panic!("{e:?} from a refused access at {offset:#x}")
        });
        assert!(result.is_err(), "{offset:#x} {width:?}");
    }
    assert_eq!((d.stats(), r(&d, 0x104)), before);
}

#[test]
fn cpu_sets_iterate_their_members_in_order() {
    let set = cpus(&[63, 0, 5, 2]);
    assert_eq!(set.iter().collect::<Vec<_>>(), [0, 2, 5, 63]);
    assert_eq!(CpuSet::empty().iter().count(), 0);
    assert!(set.contains(63) && !set.contains(1) && !set.contains(64));
}

/// A fixed physical/held state for the live reads.
struct Live {
    physical: [live_state::PhysicalWord; 4],
    held: [live_state::HeldWord; 4],
    /// The physical CPU whose list registers are readable.
    me: u32,
    sgis: bool,
}

impl LiveLines for Live {
    fn physical(&self, word: usize, _cpu: u32) -> live_state::PhysicalWord {
        self.physical.get(word).copied().unwrap_or_default()
    }
    fn held(&self, word: usize, cpu: u32) -> live_state::HeldWord {
        if cpu != self.me {
            return Default::default();
        }
        self.held.get(word).copied().unwrap_or_default()
    }
    fn physical_sgis(&self) -> bool {
        self.sgis
    }
}

#[test]
fn live_reads_show_lines_in_flight_and_a_masked_high_timer() {
    use live_state::{HeldWord, PhysicalWord};
    // vCPU 0 on CPU 0. SPI 40 is in vCPU 0's list registers, active; SPI 33 is the
    // emulated console line, pending in a list register; the virtual timer (27) is
    // disabled by the guest with its level high; SGI 3 is queued.
    let d = v2().with_emulated_spi(33).unwrap();
    let mut live = Live {
        physical: [PhysicalWord::default(); 4],
        held: [HeldWord::default(); 4],
        me: 0,
        sgis: false,
    };
    live.physical[0].pending = 1 << 27;
    live.physical[1].active = 1 << (40 - 32);
    live.held[1] = HeldWord {
        pending: 1 << 1,
        active: 1 << 8,
        held: (1 << 1) | (1 << 8),
    };
    live.held[0].pending = 1 << 3;
    let read = |offset: u64, vcpu: usize| d.read_live(offset, Word, vcpu, &live).unwrap();
    for bank in [0x200, 0x280] {
        // ISPENDR0 / ICPENDR0, ISPENDR1 / ICPENDR1.
        assert_eq!(read(bank, 0), (1 << 27) | (1 << 3), "{bank:#x}");
        assert_eq!(read(bank + 4, 0), 1 << 1, "{bank:#x}");
    }
    for bank in [0x300, 0x380] {
        assert_eq!(read(bank, 0), 0);
        assert_eq!(read(bank + 4, 0), 1 << 8);
    }
    // vCPU 1 (CPU 1) cannot see CPU 0's list registers: the physically active SPI 40
    // reads as active; the emulated line and the queued SGI are not its.
    assert_eq!(read(0x304, 1), 1 << 8);
    assert_eq!(read(0x204, 1), 0);
    // The model alone knows none of it.
    assert_eq!(r(&d, 0x200) | r(&d, 0x204) | r(&d, 0x304), 0);
    // A foreign line pending physically (SPI 34) stays invisible.
    live.physical[1].pending = 1 << 2;
    assert_eq!(d.read_live(0x204, Word, 0, &live).unwrap(), 1 << 1);
}

#[test]
fn live_reads_through_a_redistributor_and_with_physical_sgis() {
    use live_state::{HeldWord, PhysicalWord};
    let d = v3();
    let mut live = Live {
        physical: [PhysicalWord::default(); 4],
        held: [HeldWord::default(); 4],
        me: 2,
        sgis: false,
    };
    // Physical SGI 1 pending (hv's kick, say) and the timer pending.
    live.physical[0].pending = (1 << 1) | (1 << 27);
    let gicr_ispendr0 = redistributor::REDIST_FRAME + 0x1_0200;
    // Frame 0 = vCPU 0 on CPU 2: the timer, never the physical SGI.
    assert_eq!(
        d.read_redist_live(0x1_0200, Word, 0, &live).unwrap(),
        1 << 27
    );
    // Exit-less: SGIs are the partition's own physical ones.
    live.sgis = true;
    assert_eq!(
        d.read_redist_live(gicr_ispendr0, Word, 0, &live).unwrap(),
        (1 << 1) | (1 << 27)
    );
    // GICD word 0 is RAZ on GICv3 whatever the GIC says.
    assert_eq!(d.read_live(0x200, Word, 0, &live).unwrap(), 0);
}
