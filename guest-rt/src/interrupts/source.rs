//! What an acknowledged INTID is to the interrupt top half: the kernel's timer, the
//! reschedule SGI, another SGI, or a device line (whose handler the registry names).
//!
//! Owns that decision only, so the runtime's top half (`arch/irq.rs`) just acts on it;
//! never acknowledges, ends or counts anything itself.

use super::cpu_interface::SGIS;

/// Where an interrupt came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// This vCPU's timer PPI.
    Timer,
    /// The kernel's reschedule IPI.
    Resched,
    /// Any other SGI (a self-test's, or a peer's message).
    Sgi(u32),
    /// A PPI or SPI: a device's line, if a handler is registered for it.
    Line(u32),
}

/// Classifies `intid`, given the INTIDs of this vCPU's timer and of the reschedule SGI.
#[inline]
pub fn classify(intid: u32, timer: u32, resched_sgi: u32) -> Source {
    if intid == timer {
        Source::Timer
    } else if intid == resched_sgi {
        Source::Resched
    } else if intid < SGIS {
        Source::Sgi(intid)
    } else {
        Source::Line(intid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TIMER: u32 = 27;
    const RESCHED: u32 = 15;

    #[test]
    fn each_kind_is_told_apart() {
        assert_eq!(classify(27, TIMER, RESCHED), Source::Timer);
        assert_eq!(classify(15, TIMER, RESCHED), Source::Resched);
        assert_eq!(classify(3, TIMER, RESCHED), Source::Sgi(3));
        assert_eq!(classify(0, TIMER, RESCHED), Source::Sgi(0));
        assert_eq!(classify(16, TIMER, RESCHED), Source::Line(16));
        assert_eq!(classify(34, TIMER, RESCHED), Source::Line(34));
    }

    proptest! {
        /// Exactly the timer and the reschedule SGI are the kernel's; every other INTID
        /// keeps its number.
        #[test]
        fn only_the_kernels_two_are_special(intid in 0u32..1020, timer in 16u32..32) {
            match classify(intid, timer, RESCHED) {
                Source::Timer => prop_assert_eq!(intid, timer),
                Source::Resched => prop_assert_eq!(intid, RESCHED),
                Source::Sgi(n) => prop_assert!(n == intid && n < 16 && n != RESCHED),
                Source::Line(n) => prop_assert!(n == intid && n >= 16 && n != timer),
            }
        }
    }
}
