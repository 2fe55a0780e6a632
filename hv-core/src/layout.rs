//! hv's memory layout: per-CPU stacks and how the free part of hv's RAM is found.
//!
//! Portable: the arithmetic here is host-tested; the linker symbols live in hv's `arch::image`.

use platform::config::Region;

/// CPUs hv can run on (stacks are reserved for this many).
pub const MAX_CPUS: usize = 8;
/// Stack per CPU. hv paths are short; 32 KiB leaves room for formatting fault reports.
pub const STACK_SIZE: usize = 32 * 1024;

/// The largest part of `within` that overlaps none of `used`, page aligned.
pub fn largest_free(within: Region, used: &[Region]) -> Option<Region> {
    let page = platform::config::PAGE_SIZE;
    let mut best: Option<Region> = None;
    // Candidate gaps start at `within.base` or at the end of a used range.
    let starts = core::iter::once(within.base).chain(used.iter().filter_map(|u| u.end()));
    for start in starts {
        let start = start.next_multiple_of(page);
        if !within.contains_addr(start) || used.iter().any(|u| u.contains_addr(start)) {
            continue;
        }
        let limit = used
            .iter()
            .map(|u| u.base)
            .filter(|&b| b > start)
            .chain(within.end())
            .min()?;
        let end = limit & !(page - 1);
        if end > start && best.is_none_or(|b| end - start > b.size) {
            best = Some(Region::new(start, end - start));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_largest_gap_around_used_ranges() {
        let ram = Region::new(0x4000_0000, 0x200_0000);
        let image = Region::new(0x4008_0000, 0x30_0000);
        let dtb = Region::new(0x4100_0000, 0x1_0000);
        let free = largest_free(ram, &[image, dtb]).unwrap();
        // Gaps: [0x4000_0000, 0x4008_0000) 512K, [0x4038_0000, 0x4100_0000) ~12.5M,
        // [0x4101_0000, 0x4200_0000) ~15.9M.
        assert_eq!(free, Region::new(0x4101_0000, 0x4200_0000 - 0x4101_0000));
        assert!(!free.overlaps(&image) && !free.overlaps(&dtb));
    }

    #[test]
    fn unaligned_used_ranges_are_rounded_out() {
        let ram = Region::new(0, 0x10_0000);
        let used = Region::new(0x100, 0x501);
        let free = largest_free(ram, &[used]).unwrap();
        assert_eq!(free.base, 0x1000);
        assert_eq!(free.end(), Some(0x10_0000));
    }

    #[test]
    fn nothing_free_when_fully_used() {
        let ram = Region::new(0x1000, 0x1000);
        assert_eq!(largest_free(ram, &[Region::new(0, 0x3000)]), None);
    }
}
