//! What hv does with each physical interrupt it acknowledges while a vCPU runs: one of
//! its own (the kick SGI, the GIC maintenance interrupt, the EL2 timer's console tick),
//! one to forward to the vCPU as a hardware-linked virtual interrupt, or one to drop.
//!
//! Forwarded: the vCPU's virtual timer, its partition's SPIs (not its emulated console's,
//! whose physical line is hv's), and the PPIs it enabled itself (on GICv3 through its
//! redistributor: e.g. Linux's PMU or EL1 physical timer), never hv's private ones.
//!
//! Portable and host-tested; the arch layer acknowledges, injects and deactivates.

use spin::Mutex;

use crate::vgic::VgicDistributor;

/// The private interrupts hv keeps for itself on every CPU, and the vCPUs' virtual timer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HvLines {
    /// The physical SGI one CPU sends another to make it look at its queues.
    pub kick: u32,
    /// The virtualization interface's maintenance interrupt (list registers drained).
    pub maintenance: u32,
    /// The EL2 physical timer (the console input poll).
    pub hyp_timer: u32,
    /// The EL1 virtual timer, always the vCPU's.
    pub vtimer: u32,
}

/// What to do with one acknowledged interrupt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Another CPU queued something for this vCPU (or its partition stopped): deactivate,
    /// then inject what is queued.
    Kick,
    /// The list registers drained: deactivate, then inject what is queued.
    Refill,
    /// hv's console tick: deactivate, poll the console.
    ConsoleTick,
    /// The vCPU's: inject it linked to the physical interrupt (the guest deactivates it).
    Forward,
    /// Nobody's on this CPU: deactivate and count.
    Drop,
    /// An SGI other than the kick: hv sends none to a CPU whose interrupts it takes (its
    /// guests' SGIs are virtual there), so it came from an exit-less partition that owns
    /// its GIC interface: deactivate and count (see [`crate::kick_requests`]).
    ForeignSgi,
}

/// Decides `intid`'s fate on a CPU running `pinned` (its partition's distributor model and
/// the vCPU index), or no vCPU. The model is locked only for lines it decides (not for
/// hv's own or the virtual timer, the common case).
#[inline]
pub fn dispose(
    intid: u32,
    lines: &HvLines,
    pinned: Option<(&Mutex<VgicDistributor>, usize)>,
) -> Disposition {
    if intid == lines.kick {
        return Disposition::Kick;
    }
    if intid == lines.maintenance {
        return Disposition::Refill;
    }
    if intid == lines.hyp_timer {
        return Disposition::ConsoleTick;
    }
    if intid < 16 {
        return Disposition::ForeignSgi;
    }
    let Some((vgic, vcpu)) = pinned else {
        return Disposition::Drop;
    };
    if intid == lines.vtimer || forwards(&vgic.lock(), vcpu, intid) {
        Disposition::Forward
    } else {
        Disposition::Drop
    }
}

/// Whether a line other than the virtual timer belongs to `vcpu` of the partition `vgic`
/// models.
#[inline]
fn forwards(vgic: &VgicDistributor, vcpu: usize, intid: u32) -> bool {
    if intid >= 32 {
        vgic.owns_spi(intid) && !vgic.is_emulated(intid)
    } else {
        intid >= 16 && vgic.line_enabled(intid, vcpu)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::config::GicVersion;

    const LINES: HvLines = HvLines {
        kick: 0,
        maintenance: 25,
        hyp_timer: 26,
        vtimer: 27,
    };

    /// A two-vCPU GICv3 partition owning SPIs 40 and 41, 41 being its emulated console.
    fn partition() -> Mutex<VgicDistributor> {
        let vgic = VgicDistributor::new(GicVersion::V3, 256, &[40, 41], &[2, 3])
            .unwrap()
            .with_emulated_spi(41)
            .unwrap();
        Mutex::new(vgic)
    }

    #[test]
    fn hvs_own_lines_are_hvs_whoever_runs() {
        let vgic = partition();
        for pinned in [None, Some((&vgic, 0))] {
            assert_eq!(dispose(0, &LINES, pinned), Disposition::Kick);
            assert_eq!(dispose(25, &LINES, pinned), Disposition::Refill);
            assert_eq!(dispose(26, &LINES, pinned), Disposition::ConsoleTick);
        }
    }

    #[test]
    fn the_virtual_timer_and_owned_spis_are_forwarded() {
        let vgic = partition();
        assert_eq!(dispose(27, &LINES, Some((&vgic, 1))), Disposition::Forward);
        assert_eq!(dispose(40, &LINES, Some((&vgic, 0))), Disposition::Forward);
    }

    #[test]
    fn foreign_spis_the_emulated_console_and_idle_cpus_drop() {
        let vgic = partition();
        assert_eq!(dispose(42, &LINES, Some((&vgic, 0))), Disposition::Drop);
        // The console's SPI has no physical line of the guest's: a physical one is stray.
        assert_eq!(dispose(41, &LINES, Some((&vgic, 0))), Disposition::Drop);
        assert_eq!(dispose(27, &LINES, None), Disposition::Drop);
        assert_eq!(dispose(40, &LINES, None), Disposition::Drop);
    }

    #[test]
    fn a_ppi_is_forwarded_once_its_vcpu_enabled_it() {
        let vgic = partition();
        // PPI 23 (the PMU on QEMU virt), SGIs never (guests' SGIs are virtual).
        assert_eq!(dispose(23, &LINES, Some((&vgic, 0))), Disposition::Drop);
        // GICR_ISENABLER0 of vCPU 0's redistributor (SGI_base + 0x100).
        let mut effects = alloc::vec::Vec::new();
        vgic.lock()
            .write_redist_each(
                0x1_0100,
                crate::vgic::AccessWidth::Word,
                1 << 23 | 1 << 3,
                0,
                |e| effects.push(e),
            )
            .unwrap();
        assert_eq!(dispose(23, &LINES, Some((&vgic, 0))), Disposition::Forward);
        assert_eq!(dispose(23, &LINES, Some((&vgic, 1))), Disposition::Drop);
        assert_eq!(
            dispose(3, &LINES, Some((&vgic, 0))),
            Disposition::ForeignSgi
        );
    }

    #[test]
    fn sgis_other_than_the_kick_are_foreign_whoever_runs() {
        let vgic = partition();
        for pinned in [None, Some((&vgic, 0))] {
            for sgi in 1..16 {
                assert_eq!(dispose(sgi, &LINES, pinned), Disposition::ForeignSgi);
            }
        }
    }
}
