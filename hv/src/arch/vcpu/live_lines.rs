//! The state of a partition's lines beyond its distributor model, read on the trap path
//! when the guest reads its pending or active registers: the physical GIC, this CPU's
//! list registers, the interrupts owed a list register and the virtual SGIs queued for
//! this CPU's vCPU. What the guest then sees is [`hv_core::vgic::live_state`]'s decision;
//! this only reads.

use hv_core::vgic::live_state::{HeldWord, PhysicalWord};
use hv_core::vgic::LiveLines;

use super::super::{cpu, gic};
use super::{OWED, PENDING_SGIS};

/// [`LiveLines`] for an access made on this CPU by a vCPU of a partition with or without
/// exit-less delivery.
pub(super) struct Live<'a> {
    pub gic: &'a gic::Gic,
    pub exitless: bool,
}

impl LiveLines for Live<'_> {
    fn physical(&self, word: usize, cpu: u32) -> PhysicalWord {
        let (pending, active) = self.gic.physical_word(word, cpu as usize);
        PhysicalWord { pending, active }
    }

    fn held(&self, word: usize, cpu: u32) -> HeldWord {
        let me = cpu::index();
        // Another CPU's list registers and queues are its own; exit-less vCPUs have none.
        if cpu as usize != me || self.exitless {
            return HeldWord::default();
        }
        let (mut pending, active, mut held) = self.gic.list_register_word(word);
        for &intid in OWED[me].lock().ids() {
            if (intid / 32) as usize == word {
                pending |= 1 << (intid % 32);
                held |= 1 << (intid % 32);
            }
        }
        if word == 0 {
            pending |= PENDING_SGIS[me].queued();
        }
        HeldWord {
            pending,
            active,
            held,
        }
    }

    fn physical_sgis(&self) -> bool {
        self.exitless
    }
}
