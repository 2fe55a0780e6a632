//! Hardware interrupts a CPU took for its vCPU but could not put in a list register yet
//! (all in use). They stay active at the GIC, so a level-sensitive line cannot fire again
//! and trap hv in a loop; hv injects them when the list registers drain (maintenance
//! interrupt). Fixed capacity, no allocation: this is on the interrupt path.
//!
//! Portable and host-tested; it never touches the GIC itself.

#![forbid(unsafe_code)]

/// How many can wait per CPU (its timer, a PPI or two, its SPIs: more is a guest storm).
pub const CAPACITY: usize = 8;

pub struct OwedIrqs {
    ids: [u32; CAPACITY],
    len: usize,
}

impl Default for OwedIrqs {
    fn default() -> Self {
        Self::new()
    }
}

impl OwedIrqs {
    pub const fn new() -> Self {
        Self {
            ids: [0; CAPACITY],
            len: 0,
        }
    }

    /// Records `intid` (once). False when full: the caller then drops it.
    pub fn push(&mut self, intid: u32) -> bool {
        if self.ids[..self.len].contains(&intid) {
            return true;
        }
        if self.len == CAPACITY {
            return false;
        }
        self.ids[self.len] = intid;
        self.len += 1;
        true
    }

    /// Keeps, in order, only the IDs `still_owed` returns true for (it is asked once per
    /// ID, oldest first: it injects what it can).
    pub fn retain(&mut self, mut still_owed: impl FnMut(u32) -> bool) {
        let mut kept = 0;
        for i in 0..self.len {
            let id = self.ids[i];
            if still_owed(id) {
                self.ids[kept] = id;
                kept += 1;
            }
        }
        self.len = kept;
    }

    /// The owed IDs, oldest first.
    pub fn ids(&self) -> &[u32] {
        &self.ids[..self.len]
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_line_once_and_refuses_beyond_capacity() {
        let mut owed = OwedIrqs::new();
        assert!(owed.is_empty());
        assert!(owed.push(27));
        assert!(owed.push(27), "already owed: fine, not twice");
        for intid in 32..32 + CAPACITY as u32 - 1 {
            assert!(owed.push(intid));
        }
        assert!(!owed.push(99), "full");
        let mut seen = alloc::vec::Vec::new();
        owed.retain(|id| {
            seen.push(id);
            true
        });
        assert_eq!(seen.len(), CAPACITY);
        assert_eq!(seen[0], 27, "oldest first");
    }

    #[test]
    fn retain_keeps_what_could_not_be_injected_in_order() {
        let mut owed = OwedIrqs::new();
        for intid in [27, 33, 34, 35] {
            owed.push(intid);
        }
        // Two list registers free: the first two go in.
        let mut free = 2;
        owed.retain(|_| {
            if free > 0 {
                free -= 1;
                false
            } else {
                true
            }
        });
        let mut left = alloc::vec::Vec::new();
        owed.retain(|id| {
            left.push(id);
            true
        });
        assert_eq!(left, [34, 35]);
        owed.retain(|_| false);
        assert!(owed.is_empty());
    }
}
