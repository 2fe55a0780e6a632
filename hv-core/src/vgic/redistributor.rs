//! The emulated GICv3 redistributors of one partition: a region of one 128 KiB frame per
//! vCPU (frame `i` = vCPU `i`), each RD_base (64 KiB) followed by SGI_base (64 KiB).
//!
//! A child of [`super`] (the distributor model): the banked SGI/PPI state it exposes is
//! the same per-vCPU state the GICv2 distributor banks, so the injection path asks one
//! model (`line_enabled`, `note_pending`, `note_active`) whatever the GIC version. The
//! partition's stage 2 leaves the region unmapped; the arch side hands each trapped
//! access to [`VgicDistributor::read_redist`] / [`VgicDistributor::write_redist`] with
//! the offset from the region's start.
//!
//! What a guest may change, and what reaches the hardware:
//! * SGIs (0-15) are purely virtual: hv queues and injects them through list registers,
//!   and the physical SGIs (kick SGI 0 among them) stay hv's. Writes change only the
//!   virtual enable/pending/active/priority state; no effect.
//! * PPIs (16-31) hv does not keep: enable, active, priority and trigger writes become
//!   effects on the banked registers of the frame's physical CPU (`Irq { cpu: Some }`),
//!   whichever vCPU wrote (any CPU may write any redistributor, as on hardware). Pending
//!   writes are virtual only: a forwarded PPI is pended by its device, and a PPI the
//!   guest pends itself is hv's to inject.
//! * hv's PPIs ([`super::DEFAULT_HV_PRIVATE`] or `with_hv_private`) read as zero in every
//!   register and writes to them are dropped and counted, so Linux's boot-time "disable
//!   every PPI, group 1 for all" never reaches the maintenance or EL2 timer interrupt.
//!
//! It must never touch hardware and never name a physical CPU other than the frame's
//! vCPU's, nor a line hv keeps. No LPIs: GICR_CTLR, the LPI registers, IGRPMODR0 and
//! NSACR are RAZ/WI; any other offset is RAZ/WI and counted as reserved.
//!
//! Source (facts only): Arm IHI 0069, 12.10 "The GIC Redistributor register map" (RD_base:
//! CTLR 0x0, IIDR 0x4, TYPER 0x8, STATUSR 0x10, WAKER 0x14, PROPBASER 0x70, PENDBASER
//! 0x78, PIDR2 0xFFE8) and 12.11 (SGI_base: IGROUPR0 0x80, ISENABLER0 0x100 ... ICACTIVER0
//! 0x380, IPRIORITYR<n> 0x400-0x41C, ICFGR0/1 0xC00/0xC04, IGRPMODR0 0xD00, NSACR 0xE00);
//! GICR_TYPER and GICR_WAKER field layouts from their register descriptions.

use platform::config::GicVersion;

use super::{
    AccessError, AccessWidth, BitOp, Effect, Effects, LiveLines, VgicDistributor, View, BITMAPS,
    BITMAP_BANK, ICFGR, IIDR_VALUE, IPRIORITYR,
};

/// One vCPU's redistributor: RD_base and SGI_base, 64 KiB each.
pub const REDIST_FRAME: u64 = 0x2_0000;
/// SGI_base, from the start of a frame.
const SGI_BASE: u64 = 0x1_0000;

// RD_base offsets.
const CTLR: u64 = 0x0000;
const IIDR: u64 = 0x0004;
const TYPER: u64 = 0x0008;
const TYPER_HIGH: u64 = 0x000c;
const STATUSR: u64 = 0x0010;
const WAKER: u64 = 0x0014;
/// GICR_PROPBASER (0x70) and GICR_PENDBASER (0x78), 64-bit each.
const LPI_BASES: u64 = 0x0070;
const LPI_BASES_END: u64 = 0x0080;
const PIDR2: u64 = 0xffe8;

// SGI_base offsets beyond the distributor-shaped ones (IGROUPR0, the bitmaps,
// IPRIORITYR and ICFGR share the GICD offsets, for word 0 only).
const IGROUPR0: u64 = 0x0080;
const IPRIORITYR_END: u64 = IPRIORITYR + 0x20;
const ICFGR1: u64 = ICFGR + 4;
const IGRPMODR0: u64 = 0x0d00;
const NSACR: u64 = 0x0e00;

/// GICR_TYPER: Last [4], Processor_Number [23:8], Affinity_Value [63:32] (Aff3.Aff2.
/// Aff1.Aff0). PLPIS [0], VLPIS [1], DirectLPI [3] stay 0: no LPIs.
const TYPER_LAST: u64 = 1 << 4;
const TYPER_PROCESSOR_SHIFT: u32 = 8;
const TYPER_AFFINITY_SHIFT: u32 = 32;
/// GICR_WAKER: ProcessorSleep [1] (writable), ChildrenAsleep [2] (read-only).
const WAKER_PROCESSOR_SLEEP: u32 = 1 << 1;
const WAKER_CHILDREN_ASLEEP: u32 = 1 << 2;

/// A decoded register of one redistributor frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RedistReg {
    Iidr,
    Typer {
        high: bool,
    },
    Waker,
    Pidr2,
    Group,
    Bits(BitOp),
    Priority {
        first: u32,
    },
    /// ICFGR0 (SGIs, read-only) or ICFGR1 (PPIs).
    Config {
        index: u32,
    },
    /// Implemented as RAZ/WI: GICR_CTLR, GICR_STATUSR, PROPBASER, PENDBASER, IGRPMODR0,
    /// NSACR. Writes are expected and not counted.
    RazWi,
    Reserved,
}

impl VgicDistributor {
    /// Size of the partition's redistributor region: [`REDIST_FRAME`] per vCPU on GICv3,
    /// 0 on GICv2 (no redistributors: every offset is outside).
    #[inline]
    pub fn redist_region_size(&self) -> u64 {
        match self.version {
            GicVersion::V2 => 0,
            GicVersion::V3 => REDIST_FRAME * self.cpus.len() as u64,
        }
    }

    /// A guest read of `width` at `offset` from the start of the redistributor region,
    /// by `accessing_vcpu` (which may read any vCPU's frame).
    #[inline]
    pub fn read_redist(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
    ) -> Result<u64, AccessError> {
        self.read_redist_with(offset, width, accessing_vcpu, None)
    }

    /// [`Self::read_redist`] on the trap path: pending and active are the lines' true
    /// state (see [`super::live_state`]).
    #[inline]
    pub fn read_redist_live(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
        live: &dyn LiveLines,
    ) -> Result<u64, AccessError> {
        self.read_redist_with(offset, width, accessing_vcpu, Some(live))
    }

    #[inline]
    fn read_redist_with(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
        live: Option<&dyn LiveLines>,
    ) -> Result<u64, AccessError> {
        let (frame, reg) = self.decode_redist(offset, width, accessing_vcpu)?;
        let view = View::Redistributor;
        let value = match reg {
            RedistReg::Iidr => u64::from(IIDR_VALUE),
            RedistReg::Typer { high } => {
                let typer = self.redist_typer(frame);
                match (width, high) {
                    (AccessWidth::Double, _) => typer,
                    (_, false) => typer & 0xffff_ffff,
                    (_, true) => typer >> 32,
                }
            }
            RedistReg::Waker => {
                // The wake/sleep handshake completes at once: nothing to quiesce.
                if self.processor_sleep & (1 << frame) != 0 {
                    u64::from(WAKER_PROCESSOR_SLEEP | WAKER_CHILDREN_ASLEEP)
                } else {
                    0
                }
            }
            RedistReg::Pidr2 => u64::from(self.pidr2()),
            RedistReg::Group => u64::from(self.visible_mask(view, 0)),
            RedistReg::Bits(op) => u64::from(self.read_bits(view, op, 0, frame, live)),
            RedistReg::Priority { first } => self.read_priority(view, first, width, frame),
            RedistReg::Config { index } => u64::from(self.read_config(view, index, frame)),
            RedistReg::RazWi | RedistReg::Reserved => 0,
        };
        Ok(value)
    }

    /// A guest write of `value` (its low `width` bytes) at `offset` from the start of the
    /// redistributor region, by `accessing_vcpu`. The effects name the physical CPU of the
    /// frame's vCPU (not necessarily the accessing one) and only PPIs hv does not keep.
    pub fn write_redist(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        accessing_vcpu: usize,
    ) -> Result<Effects, AccessError> {
        Effects::collect(|out| {
            self.write_redist_each(offset, width, value, accessing_vcpu, |e| out.push(e))
        })
    }

    /// [`Self::write_redist`] for the trap path, as [`VgicDistributor::write_each`] is for
    /// [`VgicDistributor::write`]: each effect goes to `apply` in order, none is
    /// collected; on an error `apply` is never called and the model is unchanged.
    #[inline]
    pub fn write_redist_each(
        &mut self,
        offset: u64,
        width: AccessWidth,
        value: u64,
        accessing_vcpu: usize,
        mut apply: impl FnMut(Effect),
    ) -> Result<(), AccessError> {
        let (frame, reg) = self.decode_redist(offset, width, accessing_vcpu)?;
        let value = value & width.mask();
        let view = View::Redistributor;
        let out = &mut apply;
        match reg {
            RedistReg::Waker => {
                if value as u32 & WAKER_PROCESSOR_SLEEP != 0 {
                    self.processor_sleep |= 1 << frame;
                } else {
                    self.processor_sleep &= !(1 << frame);
                }
            }
            // Group 1 for every visible line: read-as-one, write-ignored (as GICD's).
            RedistReg::Group | RedistReg::RazWi => {}
            RedistReg::Bits(op) => self.write_bits(view, op, 0, value as u32, frame, out),
            RedistReg::Priority { first } => {
                self.write_priority(view, first, width, value, frame, out)
            }
            RedistReg::Config { index: 1 } => self.write_config(view, 1, value as u32, frame, out),
            // ICFGR0 (SGIs are always edge) and the ID registers are read-only.
            RedistReg::Config { .. }
            | RedistReg::Iidr
            | RedistReg::Typer { .. }
            | RedistReg::Pidr2
            | RedistReg::Reserved => self.stats.reserved += 1,
        }
        Ok(())
    }

    /// Whether vCPU `vcpu`'s redistributor is awake (GICR_WAKER.ProcessorSleep clear).
    #[inline]
    pub fn redist_awake(&self, vcpu: usize) -> bool {
        vcpu < self.cpus.len() && self.processor_sleep & (1 << vcpu) == 0
    }

    /// Splits a region offset into (frame = vCPU, register) and checks the access.
    #[inline]
    fn decode_redist(
        &self,
        offset: u64,
        width: AccessWidth,
        accessing_vcpu: usize,
    ) -> Result<(usize, RedistReg), AccessError> {
        self.check_vcpu(accessing_vcpu)?;
        if offset >= self.redist_region_size() {
            return Err(AccessError::OutsideFrame { offset });
        }
        if !offset.is_multiple_of(width.bytes()) {
            return Err(AccessError::Misaligned { offset, width });
        }
        let frame = (offset / REDIST_FRAME) as usize;
        let rel = offset % REDIST_FRAME;
        let reg = if rel < SGI_BASE {
            rd_base_reg(rel)
        } else {
            sgi_base_reg(rel - SGI_BASE)
        };
        let ok = match (reg, width) {
            (_, AccessWidth::Half) => false,
            (RedistReg::Typer { .. }, w) => w != AccessWidth::Byte,
            (RedistReg::RazWi, AccessWidth::Double) => (LPI_BASES..LPI_BASES_END).contains(&rel),
            (RedistReg::Priority { .. }, w) => w != AccessWidth::Double,
            // Reserved space: any size the frame's registers use.
            (RedistReg::Reserved, _) => true,
            (_, w) => w == AccessWidth::Word,
        };
        if ok {
            Ok((frame, reg))
        } else {
            Err(AccessError::BadWidth { offset, width })
        }
    }

    /// GICR_TYPER of vCPU `vcpu`'s frame: its virtual affinity (Aff0 = vCPU index),
    /// Processor_Number = vCPU index, Last on the last frame of the region.
    #[inline]
    fn redist_typer(&self, vcpu: usize) -> u64 {
        let index = vcpu as u64;
        let last = if vcpu + 1 == self.cpus.len() {
            TYPER_LAST
        } else {
            0
        };
        (index << TYPER_AFFINITY_SHIFT) | (index << TYPER_PROCESSOR_SHIFT) | last
    }
}

#[inline]
fn rd_base_reg(rel: u64) -> RedistReg {
    match rel {
        CTLR | STATUSR => RedistReg::RazWi,
        IIDR => RedistReg::Iidr,
        TYPER => RedistReg::Typer { high: false },
        TYPER_HIGH => RedistReg::Typer { high: true },
        WAKER => RedistReg::Waker,
        LPI_BASES..LPI_BASES_END => RedistReg::RazWi,
        PIDR2 => RedistReg::Pidr2,
        _ => RedistReg::Reserved,
    }
}

#[inline]
fn sgi_base_reg(rel: u64) -> RedistReg {
    match rel {
        IGROUPR0 => RedistReg::Group,
        // Word 0 of each of the six set/clear banks; the rest of each bank is reserved.
        BITMAPS..IPRIORITYR if rel.is_multiple_of(BITMAP_BANK) => {
            RedistReg::Bits(BitOp::of_bank(rel - BITMAPS))
        }
        IPRIORITYR..IPRIORITYR_END => RedistReg::Priority {
            first: (rel - IPRIORITYR) as u32,
        },
        ICFGR => RedistReg::Config { index: 0 },
        ICFGR1 => RedistReg::Config { index: 1 },
        IGRPMODR0 | NSACR => RedistReg::RazWi,
        _ => RedistReg::Reserved,
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Effect, Irq, DEFAULT_HV_PRIVATE};
    use super::*;
    use alloc::vec::Vec;
    use AccessWidth::{Byte, Double, Half, Word};

    /// A Linux-like GICv3 partition: vCPUs 0 and 1 on physical CPUs 4 and 6.
    fn part() -> VgicDistributor {
        VgicDistributor::new(GicVersion::V3, 288, &[40], &[4, 6]).unwrap()
    }

    /// Offset of SGI_base register `reg` in vCPU `vcpu`'s frame.
    fn sgi(vcpu: u64, reg: u64) -> u64 {
        vcpu * REDIST_FRAME + SGI_BASE + reg
    }

    fn w(d: &mut VgicDistributor, offset: u64, value: u64, vcpu: usize) -> Vec<Effect> {
        d.write_redist(offset, Word, value, vcpu).unwrap().to_vec()
    }

    fn r(d: &VgicDistributor, offset: u64) -> u64 {
        d.read_redist(offset, Word, 0).unwrap()
    }

    fn banked(intid: u32, cpu: u32) -> Irq {
        Irq {
            intid,
            cpu: Some(cpu),
        }
    }

    #[test]
    fn typer_names_each_frames_vcpu_and_marks_the_last() {
        for n in 1..=8usize {
            let cpus: Vec<u32> = (0..n as u32).map(|i| 10 + i).collect();
            let d = VgicDistributor::new(GicVersion::V3, 288, &[], &cpus).unwrap();
            assert_eq!(d.redist_region_size(), n as u64 * 0x2_0000);
            // Walk the region as a driver does: frame by frame until Last.
            let mut seen = 0;
            for i in 0..n as u64 {
                let base = i * REDIST_FRAME;
                let typer = d.read_redist(base + 8, Double, 0).unwrap();
                assert_eq!(typer >> 32, i, "Aff0 = vCPU index, Aff1-3 = 0");
                assert_eq!((typer >> 8) & 0xffff, i, "Processor_Number");
                assert_eq!(typer & 0b1111, 0, "no LPIs");
                let last = typer & (1 << 4) != 0;
                assert_eq!(last, i + 1 == n as u64, "Last on frame {i} of {n}");
                // The same value as two 32-bit halves.
                let lo = d.read_redist(base + 8, Word, 1 % n).unwrap();
                let hi = d.read_redist(base + 0xc, Word, 0).unwrap();
                assert_eq!(lo | hi << 32, typer);
                seen += 1;
                if last {
                    break;
                }
            }
            assert_eq!(seen, n);
            let beyond = n as u64 * REDIST_FRAME + 8;
            assert_eq!(
                d.read_redist(beyond, Double, 0),
                Err(AccessError::OutsideFrame { offset: beyond })
            );
        }
    }

    #[test]
    fn waker_handshake_completes_at_once_per_frame() {
        let mut d = part();
        // Out of reset: asleep, children asleep.
        assert_eq!(r(&d, 0x14), 0b110);
        assert!(!d.redist_awake(1));
        // Linux wakes its own redistributor: clear ProcessorSleep, poll ChildrenAsleep.
        let waker = r(&d, REDIST_FRAME + 0x14);
        assert!(w(&mut d, REDIST_FRAME + 0x14, waker & !0b10, 1).is_empty());
        assert_eq!(r(&d, REDIST_FRAME + 0x14), 0);
        assert!(d.redist_awake(1));
        // vCPU 0's frame is untouched.
        assert_eq!(r(&d, 0x14), 0b110);
        // Back to sleep.
        w(&mut d, REDIST_FRAME + 0x14, 0b10, 1);
        assert_eq!(r(&d, REDIST_FRAME + 0x14), 0b110);
        assert_eq!(d.ignored_writes(), 0);
    }

    /// What Linux's GICv3 driver does on each CPU it brings up (vCPU 1 here), then the
    /// arch timer enabling its PPI as level-triggered.
    #[test]
    fn linux_cpu_init_sequence_reaches_only_the_frames_cpu_and_guest_ppis() {
        let mut d = part();
        let frame = 1;
        let mut effects = Vec::new();
        let waker = sgi(frame, 0) - SGI_BASE + 0x14;
        w(&mut d, waker, 0, 1);
        effects.extend(w(&mut d, sgi(frame, 0x080), u64::from(u32::MAX), 1));
        effects.extend(w(&mut d, sgi(frame, 0x380), u64::from(u32::MAX), 1));
        effects.extend(w(&mut d, sgi(frame, 0x180), 0xffff_0000, 1));
        effects.extend(w(&mut d, sgi(frame, 0x100), 0x0000_ffff, 1));
        for i in (0..32).step_by(4) {
            effects.extend(w(&mut d, sgi(frame, 0x400 + i), 0xa0a0_a0a0, 1));
        }
        let cfg = r(&d, sgi(frame, 0xc04));
        effects.extend(w(&mut d, sgi(frame, 0xc04), cfg & !(0b11 << 22), 1));
        effects.extend(w(&mut d, sgi(frame, 0x100), 1 << 27, 1));

        let guest_ppis = (16..32u32).filter(|i| DEFAULT_HV_PRIVATE & (1 << i) == 0);
        let mut expected: Vec<Effect> = guest_ppis
            .clone()
            .map(|i| Effect::ClearActive(banked(i, 6)))
            .collect();
        expected.extend(guest_ppis.clone().map(|i| Effect::Disable(banked(i, 6))));
        expected.extend(guest_ppis.map(|i| Effect::SetPriority {
            irq: banked(i, 6),
            priority: 0xa0,
        }));
        // ICFGR1 already read level for 27: no change, no effect.
        expected.push(Effect::Enable(banked(27, 6)));
        assert_eq!(effects, expected);
        // The SGIs are enabled in the guest's view only, on vCPU 1 only.
        for intid in 0..16 {
            assert!(d.line_enabled(intid, 1), "SGI {intid}");
            assert!(!d.line_enabled(intid, 0), "SGI {intid}");
        }
        assert!(d.line_enabled(27, 1));
        assert!(!d.line_enabled(25, 1) && !d.line_enabled(26, 1));
        // The all-ones ICACTIVER0/ICENABLER0 and the priority word of 24-27 touched hv's.
        assert_eq!(d.stats().foreign_lines, 3);
        assert_eq!(d.stats().reserved, 0);
        // The distributor still shows nothing of INTIDs 0-31 on GICv3.
        assert_eq!(d.read(0x100, Word, 1), Ok(0));
        assert_eq!(r(&d, sgi(frame, 0x100)), 0xffff | (1 << 27));
    }

    #[test]
    fn a_vcpu_may_program_another_vcpus_ppi() {
        let mut d = part();
        // vCPU 0 enables PPI 23 (PMU) in vCPU 1's frame: CPU 6's redistributor.
        assert_eq!(
            w(&mut d, sgi(1, 0x100), 1 << 23, 0),
            [Effect::Enable(banked(23, 6))]
        );
        assert!(d.line_enabled(23, 1));
        assert!(!d.line_enabled(23, 0));
        assert_eq!(
            d.write_redist(sgi(1, 0x417), Byte, 0x80, 0)
                .unwrap()
                .to_vec(),
            [Effect::SetPriority {
                irq: banked(23, 6),
                priority: 0x80
            }]
        );
        assert_eq!(d.read_redist(sgi(1, 0x417), Byte, 1), Ok(0x80));
        assert_eq!(d.read_redist(sgi(0, 0x417), Byte, 1), Ok(0));
        assert_eq!(
            w(&mut d, sgi(0, 0x300), 1 << 30, 1),
            [Effect::SetActive(banked(30, 4))]
        );
        assert_eq!(
            w(&mut d, sgi(0, 0x380), 1 << 30, 1),
            [Effect::ClearActive(banked(30, 4))]
        );
    }

    #[test]
    fn sgi_state_is_virtual_only() {
        let mut d = part();
        for reg in [0x100, 0x200, 0x300] {
            assert!(w(&mut d, sgi(0, reg), 1 << 3, 0).is_empty(), "{reg:#x}");
            assert_eq!(r(&d, sgi(0, reg)), 1 << 3, "{reg:#x}");
        }
        assert!(d.line_enabled(3, 0));
        assert!(d
            .write_redist(sgi(0, 0x403), Byte, 0x40, 0)
            .unwrap()
            .is_empty());
        assert_eq!(d.read_redist(sgi(0, 0x400), Word, 0), Ok(0x40 << 24));
        // The arch side's notes and the guest's view agree.
        assert!(d.note_pending(3, 0, false));
        assert_eq!(r(&d, sgi(0, 0x200)), 0);
        for reg in [0x180, 0x380] {
            assert!(w(&mut d, sgi(0, reg), 1 << 3, 0).is_empty());
        }
        assert!(!d.line_enabled(3, 0));
        assert_eq!(d.ignored_writes(), 0);
    }

    #[test]
    fn ppi_pending_is_virtual_only() {
        let mut d = part();
        assert!(w(&mut d, sgi(1, 0x200), 1 << 27, 1).is_empty());
        assert_eq!(r(&d, sgi(1, 0x280)), 1 << 27);
        assert!(w(&mut d, sgi(1, 0x280), 1 << 27, 1).is_empty());
        assert_eq!(r(&d, sgi(1, 0x200)), 0);
    }

    #[test]
    fn icfgr0_is_read_only_and_icfgr1_configures_ppis() {
        let mut d = part();
        assert_eq!(r(&d, sgi(0, 0xc00)), 0xaaaa_aaaa);
        assert!(w(&mut d, sgi(0, 0xc00), 0, 0).is_empty());
        assert_eq!(r(&d, sgi(0, 0xc00)), 0xaaaa_aaaa);
        assert_eq!(d.stats().reserved, 1);
        // PPI 23 (field 7) edge; PPI 25 (field 9, hv's) refused.
        let effects = w(&mut d, sgi(0, 0xc04), (0b10 << 14) | (0b10 << 18), 0);
        assert_eq!(
            effects,
            [Effect::SetConfig {
                irq: banked(23, 4),
                edge: true
            }]
        );
        assert_eq!(r(&d, sgi(0, 0xc04)), 0b10 << 14);
        assert_eq!(r(&d, sgi(1, 0xc04)), 0);
        assert_eq!(d.stats().foreign_lines, 1);
    }

    #[test]
    fn hv_private_lines_are_invisible_in_every_register() {
        let mut d = part().with_hv_private(DEFAULT_HV_PRIVATE | 1);
        let hidden = DEFAULT_HV_PRIVATE | 1;
        for reg in [0x100, 0x200, 0x300] {
            w(&mut d, sgi(0, reg), u64::from(u32::MAX), 0);
            assert_eq!(r(&d, sgi(0, reg)), u64::from(!hidden), "{reg:#x}");
        }
        assert_eq!(r(&d, sgi(0, 0x080)), u64::from(!hidden));
        w(&mut d, sgi(0, 0x418), 0xffff_ffff, 0);
        assert_eq!(r(&d, sgi(0, 0x418)), 0xff00_00ff);
        assert!(d
            .write_redist(sgi(0, 0x400), Byte, 0xff, 0)
            .unwrap()
            .is_empty());
        assert_eq!(r(&d, sgi(0, 0x400)), 0);
        assert_eq!(r(&d, sgi(0, 0xc00)), 0xaaaa_aaa8);
        assert!(!d.line_enabled(0, 0) && !d.note_pending(26, 0, true));
        assert_eq!(d.stats().foreign_lines, 5);
    }

    #[test]
    fn id_lpi_and_raz_wi_registers() {
        let mut d = part();
        assert_eq!(r(&d, 0x4), u64::from(IIDR_VALUE));
        assert_eq!(r(&d, REDIST_FRAME + 0xffe8), 0x3b);
        for offset in [0x0, 0x10, sgi(0, 0xd00), sgi(1, 0xe00)] {
            assert!(w(&mut d, offset, u64::from(u32::MAX), 0).is_empty());
            assert_eq!(r(&d, offset), 0, "{offset:#x}");
        }
        for offset in [0x70, 0x78] {
            assert!(d
                .write_redist(offset, Double, u64::MAX, 0)
                .unwrap()
                .is_empty());
            assert_eq!(d.read_redist(offset, Double, 0), Ok(0));
        }
        assert_eq!(d.ignored_writes(), 0);
        // Read-only and reserved offsets: zero, writes counted.
        let counted = [
            0x4,
            0x8,
            0xffe8,
            0x18,
            0x40,
            0xffd0,
            sgi(0, 0x0),
            sgi(0, 0x84),
            sgi(0, 0x104),
            sgi(1, 0x420),
            sgi(1, 0xc08),
            sgi(1, 0xfffc),
        ];
        for offset in counted {
            let before = if offset == 0x4 || offset == 0x8 || offset == 0xffe8 {
                r(&d, offset)
            } else {
                0
            };
            assert!(w(&mut d, offset, u64::from(u32::MAX), 0).is_empty());
            assert_eq!(r(&d, offset), before, "{offset:#x}");
        }
        assert_eq!(d.stats().reserved, counted.len() as u64);
        assert_eq!(d.read_redist(0x40, Double, 0), Ok(0));
    }

    #[test]
    fn bad_accesses_are_errors() {
        let mut d = part();
        let bad = |offset, width| Err(AccessError::BadWidth { offset, width });
        assert_eq!(d.read_redist(0x14, Half, 0), bad(0x14, Half));
        assert_eq!(d.read_redist(0x14, Byte, 0), bad(0x14, Byte));
        assert_eq!(d.read_redist(0x10, Double, 0), bad(0x10, Double));
        assert_eq!(d.read_redist(0x8, Byte, 0), bad(0x8, Byte));
        assert_eq!(
            d.read_redist(sgi(0, 0x100), Byte, 0),
            bad(sgi(0, 0x100), Byte)
        );
        assert_eq!(
            d.read_redist(sgi(0, 0x100), Double, 0),
            bad(sgi(0, 0x100), Double)
        );
        assert_eq!(
            d.read_redist(sgi(0, 0x400), Double, 0),
            bad(sgi(0, 0x400), Double)
        );
        assert_eq!(
            d.write_redist(sgi(0, 0x402), Word, 0, 0).unwrap_err(),
            AccessError::Misaligned {
                offset: sgi(0, 0x402),
                width: Word
            }
        );
        assert_eq!(
            d.read_redist(0xc, Double, 0),
            Err(AccessError::Misaligned {
                offset: 0xc,
                width: Double
            })
        );
        assert_eq!(
            d.read_redist(2 * REDIST_FRAME, Word, 0),
            Err(AccessError::OutsideFrame {
                offset: 2 * REDIST_FRAME
            })
        );
        assert_eq!(
            d.read_redist(u64::MAX, Byte, 0),
            Err(AccessError::OutsideFrame { offset: u64::MAX })
        );
        assert_eq!(
            d.write_redist(0x14, Word, 0, 2).unwrap_err(),
            AccessError::NoSuchVcpu { vcpu: 2 }
        );
        // GICv2 has no redistributors.
        let v2 = VgicDistributor::new(GicVersion::V2, 288, &[], &[0]).unwrap();
        assert_eq!(v2.redist_region_size(), 0);
        assert_eq!(
            v2.read_redist(0x8, Word, 0),
            Err(AccessError::OutsideFrame { offset: 0x8 })
        );
        // Nothing changed through any of that.
        assert_eq!(d.ignored_writes(), 0);
        assert_eq!(r(&d, 0x14), 0b110);
    }

    mod random {
        use super::*;
        use proptest::prelude::*;

        /// An offset in (or just past) the region, mostly on the SGI_base registers.
        fn offset(frames: u64) -> impl Strategy<Value = u64> {
            let frame = 0..=frames;
            prop_oneof![
                (frame.clone(), 0..REDIST_FRAME).prop_map(|(f, o)| f * REDIST_FRAME + o),
                (
                    frame.clone(),
                    prop::sample::select(vec![
                        0x80u64, 0x100, 0x180, 0x200, 0x280, 0x300, 0x380, 0x400, 0x404, 0x408,
                        0x40c, 0x410, 0x414, 0x418, 0x41b, 0x41c, 0xc00, 0xc04, 0xd00, 0xe00,
                    ])
                )
                    .prop_map(|(f, o)| sgi(f, o)),
                (
                    frame,
                    prop::sample::select(vec![0u64, 0x8, 0xc, 0x14, 0x70, 0xffe8])
                )
                    .prop_map(|(f, o)| f * REDIST_FRAME + o),
            ]
        }

        fn partition() -> impl Strategy<Value = (Vec<u32>, u32)> {
            let cpus =
                prop::sample::subsequence((0..64u32).collect::<Vec<_>>(), 1..=6).prop_shuffle();
            let private = prop_oneof![Just(DEFAULT_HV_PRIVATE), any::<u32>()];
            (cpus, private)
        }

        proptest! {
            /// Random redistributor writes from random vCPUs only ever name the frame's
            /// own physical CPU and a PPI hv does not keep; hv's lines keep reading zero.
            #[test]
            fn writes_never_escape_the_frame(
                (cpus, private) in partition(),
                accesses in prop::collection::vec(
                    (offset(6), 0..4usize, any::<u64>(), 0..7usize),
                    1..200,
                ),
            ) {
                let mut d = VgicDistributor::new(GicVersion::V3, 288, &[40], &cpus)
                    .unwrap()
                    .with_hv_private(private);
                for (offset, width, value, vcpu) in accesses {
                    let width = [Byte, Half, Word, Double][width];
                    let Ok(effects) = d.write_redist(offset, width, value, vcpu) else {
                        prop_assert!(d.read_redist(offset, width, vcpu).is_err());
                        continue;
                    };
                    let frame_cpu = cpus[(offset / REDIST_FRAME) as usize];
                    for e in &effects {
                        let Some(irq) = e.irq() else {
                            return Err(TestCaseError::fail(format!("{e:?}")));
                        };
                        prop_assert_eq!(irq.cpu, Some(frame_cpu), "{:?}", e);
                        prop_assert!((16..32).contains(&irq.intid), "{:?}", e);
                        prop_assert!(private & (1 << irq.intid) == 0, "{:?}", e);
                    }
                }
                for frame in 0..cpus.len() as u64 {
                    for reg in [0x80, 0x100, 0x200, 0x300] {
                        let value = d.read_redist(sgi(frame, reg), Word, 0).unwrap();
                        prop_assert_eq!(value as u32 & private, 0);
                    }
                    for intid in (0..32).filter(|i| private & (1 << i) != 0) {
                        let prio = d.read_redist(sgi(frame, 0x400 + intid), Byte, 0);
                        prop_assert_eq!(prio, Ok(0));
                    }
                }
            }
        }
    }

    /// As `write_redist`: frame 1's PPI 27 reaches its CPU (6), SGI 1 stays virtual; a
    /// refused access hands over nothing.
    #[test]
    fn write_redist_each_hands_over_the_frames_effects() {
        let mut d = part();
        let mut seen = Vec::new();
        let enable = sgi(1, 0x100);
        d.write_redist_each(enable, Word, (1 << 27) | (1 << 1), 0, |e| seen.push(e))
            .unwrap();
        assert_eq!(seen, [Effect::Enable(banked(27, 6))]);
        assert_eq!(r(&d, enable), (1 << 27) | (1 << 1));
        let result = d.write_redist_each(sgi(1, 0x182), Word, u64::MAX, 0, |e| {
            panic!("{e:?} from a misaligned access")
        });
        assert!(result.is_err());
        assert_eq!(r(&d, enable), (1 << 27) | (1 << 1));
    }
}
