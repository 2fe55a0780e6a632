//! What a partition reads back from its pending and active registers (GICD_ISPENDR,
//! ICPENDR, ISACTIVER, ICACTIVER and the redistributors' word-0 copies): the true state of
//! its lines, not only what it wrote.
//!
//! A child of [`super`]. The model alone knows only guest writes; the rest of a line's
//! state lives where hv put it: the physical GIC (a forwarded line not taken yet, a timer
//! whose level is high while the guest keeps it disabled, a line hv took and left active
//! for the guest), the accessing CPU's list registers (a virtual interrupt pending or
//! active in the vCPU's interface), and hv's queues (a taken line still owed a list
//! register, a virtual SGI queued for the vCPU). The arch side reports those through
//! [`LiveLines`]; [`merge`] decides what the guest sees.
//!
//! A hardware-backed line (an SPI with a physical line, a PPI, an exit-less partition's
//! SGIs): pending when the physical line is pending or hv holds it pending (list register
//! or owed); active when a list register holds it active, or when it is physically active
//! and no list register here holds it (the guest set it active, or it is in flight on
//! another vCPU whose list registers this CPU cannot read: hv took it, so it reads as
//! active). A virtual line (an SGI hv injects, the emulated console SPI): the model's bits
//! plus what hv holds for it.
//!
//! It never touches hardware; portable and host-tested.

/// Physical pending and active bits of one 32-line word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhysicalWord {
    pub pending: u32,
    pub active: u32,
}

/// What hv holds for one vCPU in one 32-line word: lines in its list registers (pending,
/// active) or waiting for one (owed hardware interrupts, queued SGIs: pending).
/// `held` = lines in a list register or owed, in any state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeldWord {
    pub pending: u32,
    pub active: u32,
    pub held: u32,
}

/// The arch side's view of the state beyond the model.
pub trait LiveLines {
    /// Physical pending/active of word `word`; word 0 is the banked SGIs/PPIs of
    /// physical CPU `cpu` (all zero when this CPU cannot read them: GICv2 banks them).
    fn physical(&self, word: usize, cpu: u32) -> PhysicalWord;
    /// What hv holds for the vCPU on physical CPU `cpu` in word `word` (all zero unless
    /// `cpu` is the CPU asking: list registers are per CPU).
    fn held(&self, word: usize, cpu: u32) -> HeldWord;
    /// The partition's SGIs are physical (exit-less delivery), not injected by hv.
    fn physical_sgis(&self) -> bool;
}

/// Which state a bitmap register reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Pending,
    Active,
}

/// The state of the lines of one word the guest sees: `model` is what it wrote,
/// `hardware` the lines backed by a physical line (the rest are virtual).
#[inline]
pub fn merge(
    state: State,
    model: u32,
    hardware: u32,
    physical: PhysicalWord,
    held: HeldWord,
) -> u32 {
    let virtual_lines = !hardware;
    match state {
        State::Pending => {
            (hardware & (physical.pending | held.pending))
                | (virtual_lines & (model | held.pending))
        }
        State::Active => {
            (hardware & (held.active | (physical.active & !held.held)))
                | (virtual_lines & (model | held.active))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TIMER: u32 = 1 << 27;

    #[test]
    fn a_masked_timer_with_its_level_high_reads_pending() {
        // PPI 27 disabled by the guest: the physical line is pending, nothing held.
        let physical = PhysicalWord {
            pending: TIMER,
            active: 0,
        };
        let got = merge(
            State::Pending,
            0,
            0xffff_0000,
            physical,
            HeldWord::default(),
        );
        assert_eq!(got, TIMER);
        assert_eq!(
            merge(State::Active, 0, 0xffff_0000, physical, HeldWord::default()),
            0
        );
    }

    #[test]
    fn a_forwarded_line_in_a_list_register_reads_as_its_list_register_says() {
        // hv took SPI bit 3 (physically active) and put it in a list register, pending.
        let physical = PhysicalWord {
            pending: 0,
            active: 1 << 3,
        };
        let pending = HeldWord {
            pending: 1 << 3,
            active: 0,
            held: 1 << 3,
        };
        assert_eq!(merge(State::Pending, 0, !0, physical, pending), 1 << 3);
        assert_eq!(merge(State::Active, 0, !0, physical, pending), 0);
        // The guest acknowledged it: active, no longer pending.
        let active = HeldWord {
            pending: 0,
            active: 1 << 3,
            held: 1 << 3,
        };
        assert_eq!(merge(State::Pending, 0, !0, physical, active), 0);
        assert_eq!(merge(State::Active, 0, !0, physical, active), 1 << 3);
        // Not held here (in flight on another vCPU, or set active by the guest): active.
        let elsewhere = HeldWord::default();
        assert_eq!(merge(State::Active, 0, !0, physical, elsewhere), 1 << 3);
    }

    #[test]
    fn stale_model_bits_of_a_hardware_line_are_not_reported() {
        // The guest pended SPI bit 1 long ago; it was taken and handled since.
        let got = merge(
            State::Pending,
            1 << 1,
            !0,
            PhysicalWord::default(),
            HeldWord::default(),
        );
        assert_eq!(got, 0);
    }

    #[test]
    fn a_queued_virtual_sgi_reads_pending() {
        let held = HeldWord {
            pending: 1 << 5,
            active: 0,
            held: 0,
        };
        let got = merge(
            State::Pending,
            0,
            0xffff_0000,
            PhysicalWord::default(),
            held,
        );
        assert_eq!(got, 1 << 5);
    }

    proptest! {
        /// Virtual lines never take physical state; hardware lines never take the model's.
        #[test]
        fn each_line_reads_from_its_own_source(
            model in any::<u32>(), hardware in any::<u32>(),
            pp in any::<u32>(), pa in any::<u32>(),
            hp in any::<u32>(), ha in any::<u32>(), hh in any::<u32>(),
        ) {
            let physical = PhysicalWord { pending: pp, active: pa };
            let held = HeldWord { pending: hp, active: ha, held: hh | hp | ha };
            for state in [State::Pending, State::Active] {
                let got = merge(state, model, hardware, physical, held);
                let (phys, hold) = match state {
                    State::Pending => (pp, hp),
                    State::Active => (pa & !held.held, ha),
                };
                prop_assert_eq!(got & hardware, (phys | hold) & hardware);
                prop_assert_eq!(got & !hardware, (model | hold) & !hardware);
            }
        }
    }
}
