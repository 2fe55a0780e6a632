//! What the distributor model asks of the physical GIC: [`Effect`]s on named lines and
//! CPUs, one by one or as a fixed-capacity [`Effects`] list (no allocation on the trap
//! path). Plain values: the arch driver applies them.

use core::fmt;
use core::ops::Deref;

use crate::mmio_access::AccessError;

/// At most this many effects come out of one access (a 32-bit set/clear register).
pub const MAX_EFFECTS: usize = 32;

/// A set of physical CPUs (hv indices below 64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(u64);

impl CpuSet {
    pub const fn empty() -> Self {
        Self(0)
    }

    #[inline]
    pub fn bits(self) -> u64 {
        self.0
    }

    #[inline]
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    #[inline]
    pub fn contains(self, cpu: u32) -> bool {
        cpu < 64 && self.0 & (1 << cpu) != 0
    }

    #[inline]
    pub(super) fn insert(&mut self, cpu: u32) {
        if cpu < 64 {
            self.0 |= 1 << cpu;
        }
    }

    /// The CPUs in ascending order. Visits only the set bits (an SGI to one CPU is one
    /// step, not 64: this is on the SGI delivery path).
    #[inline]
    pub fn iter(self) -> impl Iterator<Item = u32> {
        let mut bits = self.0;
        core::iter::from_fn(move || {
            let cpu = (bits != 0).then(|| bits.trailing_zeros())?;
            bits &= bits - 1;
            Some(cpu)
        })
    }
}

/// An interrupt line on the physical GIC as an effect names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Irq {
    pub intid: u32,
    /// `Some(cpu)`: the banked SGI/PPI copy (INTID < 32) of that physical CPU (GICv2
    /// banked GICD registers, written from that CPU). `None`: a shared line (SPI).
    pub cpu: Option<u32>,
}

/// One physical action on the real distributor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    Enable(Irq),
    Disable(Irq),
    SetPending(Irq),
    ClearPending(Irq),
    SetActive(Irq),
    ClearActive(Irq),
    SetPriority {
        irq: Irq,
        priority: u8,
    },
    /// `edge`: edge-triggered, else level-sensitive.
    SetConfig {
        irq: Irq,
        edge: bool,
    },
    /// GICv2 ITARGETSR of an SPI: deliver to these physical CPUs (may be empty).
    Target {
        intid: u32,
        cpus: CpuSet,
    },
    /// GICv3 IROUTER of an SPI: deliver to this physical CPU (never 1-of-N).
    Route {
        intid: u32,
        cpu: u32,
    },
    /// Send SGI `intid` to these physical CPUs (all in the partition, never empty).
    SendSgi {
        intid: u32,
        cpus: CpuSet,
    },
}

impl Effect {
    /// The line a per-line effect acts on; `None` for targets, routes and SGIs.
    #[inline]
    pub fn irq(&self) -> Option<Irq> {
        match *self {
            Effect::Enable(irq)
            | Effect::Disable(irq)
            | Effect::SetPending(irq)
            | Effect::ClearPending(irq)
            | Effect::SetActive(irq)
            | Effect::ClearActive(irq)
            | Effect::SetPriority { irq, .. }
            | Effect::SetConfig { irq, .. } => Some(irq),
            Effect::Target { .. } | Effect::Route { .. } | Effect::SendSgi { .. } => None,
        }
    }

    /// Whether the effect is on a banked (per-CPU) SGI/PPI register: on GICv2 only its
    /// own CPU can write it (banked GICD); on GICv3 it is in that CPU's redistributor.
    #[inline]
    pub fn is_banked(&self) -> bool {
        self.irq().is_some_and(|irq| irq.cpu.is_some())
    }
}

/// The effects of one access: a fixed-capacity list (no allocation on the trap path).
#[derive(Clone, Copy)]
pub struct Effects {
    items: [Effect; MAX_EFFECTS],
    len: usize,
}

impl Effects {
    const PLACEHOLDER: Effect = Effect::Enable(Irq {
        intid: 0,
        cpu: None,
    });

    pub(super) fn new() -> Self {
        Self {
            items: [Self::PLACEHOLDER; MAX_EFFECTS],
            len: 0,
        }
    }

    /// What a `write_each`-shaped `write` hands over, as a list.
    pub(super) fn collect(
        write: impl FnOnce(&mut Self) -> Result<(), AccessError>,
    ) -> Result<Self, AccessError> {
        let mut effects = Self::new();
        write(&mut effects)?;
        Ok(effects)
    }

    #[inline]
    pub(super) fn push(&mut self, effect: Effect) {
        // One access touches at most 32 lines, so the list never fills; should it ever,
        // dropping is the safe side (no physical action) and stays panic-free.
        debug_assert!(self.len < MAX_EFFECTS);
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = effect;
            self.len += 1;
        }
    }
}

impl Deref for Effects {
    type Target = [Effect];

    #[inline]
    fn deref(&self) -> &[Effect] {
        &self.items[..self.len]
    }
}

impl<'a> IntoIterator for &'a Effects {
    type Item = &'a Effect;
    type IntoIter = core::slice::Iter<'a, Effect>;

    #[inline]
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl fmt::Debug for Effects {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}
