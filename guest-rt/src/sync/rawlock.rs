//! The complete list of raw (non-preemptible, interrupts-off) sections.
//!
//! Everything else in the kernel is preemptible and sleeps on rt-mutexes.
//! This module owns the list only; adding a raw section anywhere else without
//! adding it here is a review error, and the count is pinned by a test so the
//! list cannot grow silently. Raw sections must be short, bounded and must
//! never block, allocate or wait for anything (in particular not for Linux).

/// One place where the kernel runs with preemption and interrupts disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSection {
    pub name: &'static str,
    pub reason: &'static str,
}

/// Number of raw sections; pinned by a test.
pub const RAW_SECTION_COUNT: usize = 6;

pub const RAW_SECTIONS: [RawSection; RAW_SECTION_COUNT] = [
    RawSection {
        name: "run queue",
        reason: "schedule(), wakeups and migration edit per-CPU run queues; a sleeping lock \
                 here would need the scheduler to sleep on itself",
    },
    RawSection {
        name: "timer queue",
        reason: "timers are armed from wait paths and expired from the timer interrupt, \
                 which cannot sleep",
    },
    RawSection {
        name: "interrupt top half",
        reason: "acknowledges the interrupt and wakes its handler thread; all real handling \
                 runs in that preemptible thread",
    },
    RawSection {
        name: "wait queue / rt-mutex internals",
        reason: "the owner, waiter list and priority-inheritance walk are the implementation \
                 of sleeping locks and cannot themselves use one; the walk is bounded by \
                 MAX_CHAIN_DEPTH",
    },
    RawSection {
        name: "heap allocator",
        reason: "the kernel allocates inside its own raw section and threads allocate with \
                 interrupts open; a holder interrupted or preempted there would stall every \
                 other allocation on its CPU",
    },
    RawSection {
        name: "console line",
        reason: "one line is written whole (a bounded copy into hv's ring or the UART FIFO); \
                 a preempted writer would stall every other thread's output",
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_section_list_is_pinned_and_documented() {
        assert_eq!(
            RAW_SECTIONS.len(),
            6,
            "update RAW_SECTION_COUNT deliberately"
        );
        for (i, s) in RAW_SECTIONS.iter().enumerate() {
            assert!(!s.reason.is_empty(), "{} lacks a reason", s.name);
            assert!(
                RAW_SECTIONS[..i].iter().all(|o| o.name != s.name),
                "duplicate raw section {}",
                s.name
            );
        }
    }
}
