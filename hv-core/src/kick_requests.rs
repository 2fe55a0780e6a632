//! Which physical SGIs hv itself asked for: the kick SGI is hv's private number, but an
//! exit-less partition on GICv3 owns its CPUs' interfaces and can write ICC_SGI1R_EL1 with
//! any INTID and any target, so a kick (or any SGI) may come from it rather than from hv.
//!
//! hv raises a CPU's request flag before it sends that CPU a kick ([`KickRequests::request`]);
//! the CPU takes the flag when a kick arrives ([`KickRequests::take`]). [`classify`] decides
//! what an acknowledged SGI is: a kick hv asked for, or one nobody in hv sent (ignored and
//! counted). A forged kick that arrives while a real one is requested merges with it, as
//! two kicks do on a GIC: acting on it then does only what the real one asked. A real kick
//! already served by an earlier one (its queue drained) is ignored too: it has nothing left
//! to do.
//!
//! Portable and host-tested; it never touches the GIC.

use core::sync::atomic::{AtomicBool, Ordering};

use crate::layout::MAX_CPUS;

/// One flag per CPU: a kick for it was requested and not taken yet.
pub struct KickRequests {
    flags: [AtomicBool; MAX_CPUS],
}

impl Default for KickRequests {
    fn default() -> Self {
        Self::new()
    }
}

impl KickRequests {
    pub const fn new() -> Self {
        Self {
            flags: [const { AtomicBool::new(false) }; MAX_CPUS],
        }
    }

    /// Before sending CPU `cpu` a kick (after queueing what it is to pick up: the flag's
    /// release orders the two).
    #[inline]
    pub fn request(&self, cpu: usize) {
        if let Some(flag) = self.flags.get(cpu) {
            flag.store(true, Ordering::Release);
        }
    }

    /// On CPU `cpu`, when a kick arrives: whether one was requested (and clears it).
    #[inline]
    pub fn take(&self, cpu: usize) -> bool {
        self.flags
            .get(cpu)
            .is_some_and(|flag| flag.swap(false, Ordering::AcqRel))
    }
}

/// What an acknowledged SGI is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SgiVerdict {
    /// hv's kick, requested: act on it.
    Kick,
    /// hv's kick number, but no kick was requested: ignore and count.
    UnrequestedKick,
    /// Another SGI number: hv sends none to a CPU whose interrupts it takes (its
    /// partitions' SGIs are virtual there): ignore and count.
    Foreign,
}

/// Classifies SGI `intid` taken on CPU `cpu` (`kick` = hv's kick number), taking the CPU's
/// request flag when it is a kick.
#[inline]
pub fn classify(requests: &KickRequests, cpu: usize, intid: u32, kick: u32) -> SgiVerdict {
    if intid != kick {
        SgiVerdict::Foreign
    } else if requests.take(cpu) {
        SgiVerdict::Kick
    } else {
        SgiVerdict::UnrequestedKick
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_requested_kick_is_acted_on_once() {
        let r = KickRequests::new();
        r.request(1);
        assert_eq!(classify(&r, 1, 0, 0), SgiVerdict::Kick);
        // The same SGI again (forged, or a real one already served): nothing requested.
        assert_eq!(classify(&r, 1, 0, 0), SgiVerdict::UnrequestedKick);
    }

    #[test]
    fn requests_are_per_cpu() {
        let r = KickRequests::new();
        r.request(0);
        assert_eq!(classify(&r, 1, 0, 0), SgiVerdict::UnrequestedKick);
        assert_eq!(classify(&r, 0, 0, 0), SgiVerdict::Kick);
    }

    #[test]
    fn other_sgi_numbers_are_foreign_and_leave_the_request() {
        let r = KickRequests::new();
        r.request(2);
        for intid in 1..16 {
            assert_eq!(classify(&r, 2, intid, 0), SgiVerdict::Foreign);
        }
        assert_eq!(classify(&r, 2, 0, 0), SgiVerdict::Kick);
    }

    #[test]
    fn cpus_out_of_range_never_have_a_request() {
        let r = KickRequests::new();
        r.request(MAX_CPUS);
        assert!(!r.take(MAX_CPUS));
    }
}
