//! Cache colouring arithmetic: which colour of a physically indexed cache a page has, and
//! how a partition's contiguous IPA range is backed by physical pages of its colours only.
//!
//! A set-associative cache of `size` bytes and `ways` ways indexes its sets with the
//! address bits below `size / ways` (the way size). Pages whose addresses agree in those
//! bits above the page offset compete for the same sets: they have the same colour. The
//! Pi 4's L2 (1 MiB, 16 ways, 64-byte lines) has a 64 KiB way, so 16 colours of 4 KiB
//! pages. Partitions given disjoint colours never evict each other's lines in that cache.
//!
//! A partition with `colours` in its board file gets a contiguous IPA range from the
//! start of its `ram`, as large as its pages of those colours ([`plan`]); hv maps it run
//! by run in stage 2 and copies its images through [`pieces`]. This module only computes;
//! it never touches memory or a register.

use alloc::vec::Vec;
use core::fmt;

use platform::config::{CacheSpec, Partition, Region, PAGE_SIZE};

/// A physically indexed, set-associative cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CacheGeometry {
    pub size: u64,
    pub ways: u64,
    pub line: u64,
}

impl From<CacheSpec> for CacheGeometry {
    fn from(c: CacheSpec) -> Self {
        Self {
            size: c.size,
            ways: c.ways,
            line: c.line,
        }
    }
}

impl CacheGeometry {
    /// The Raspberry Pi 4's shared L2 (Cortex-A72 cluster of the BCM2711).
    pub const PI4_L2: Self = Self {
        size: 1 << 20,
        ways: 16,
        line: 64,
    };

    /// Bytes of one way: the span of addresses that index distinct sets.
    pub fn way_size(self) -> u64 {
        self.size / self.ways
    }

    /// Colours with 4 KiB pages (at least 1: a way smaller than a page has one colour).
    pub fn colours(self) -> u64 {
        (self.way_size() / PAGE_SIZE).max(1)
    }

    /// The colour of the page holding physical address `pa`.
    pub fn colour_of(self, pa: u64) -> u64 {
        (pa / PAGE_SIZE) % self.colours()
    }
}

/// A set of colours (at most 64), as a bit mask.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Colours(u64);

/// Why a colour assignment is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ColourError {
    Empty,
    /// The cache has colours 0..`colours`.
    OutOfRange {
        colour: u64,
        colours: u64,
    },
    /// Two owners were given the same colour.
    Shared {
        colour: u64,
    },
    /// The pool's pages of these colours hold fewer bytes than asked for.
    DoesNotFit {
        wanted: u64,
        available: u64,
    },
}

impl fmt::Display for ColourError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no colour given"),
            Self::OutOfRange { colour, colours } => write!(
                f,
                "colour {colour} does not exist: the cache has colours 0-{}",
                colours - 1
            ),
            Self::Shared { colour } => write!(f, "colour {colour} is given twice"),
            Self::DoesNotFit { wanted, available } => write!(
                f,
                "{wanted:#x} bytes asked for, the pages of these colours hold {available:#x}"
            ),
        }
    }
}

impl Colours {
    /// The colours in `list`, each below `geometry.colours()`.
    pub fn new(list: &[u64], geometry: CacheGeometry) -> Result<Self, ColourError> {
        let colours = geometry.colours().min(64);
        let mut mask = 0u64;
        for &colour in list {
            if colour >= colours {
                return Err(ColourError::OutOfRange { colour, colours });
            }
            mask |= 1 << colour;
        }
        if mask == 0 {
            return Err(ColourError::Empty);
        }
        Ok(Self(mask))
    }

    pub fn contains(self, colour: u64) -> bool {
        colour < 64 && self.0 & (1 << colour) != 0
    }

    pub fn count(self) -> u32 {
        self.0.count_ones()
    }

    /// `Err` with the lowest colour both sets have.
    pub fn disjoint(self, other: Self) -> Result<(), ColourError> {
        match self.0 & other.0 {
            0 => Ok(()),
            both => Err(ColourError::Shared {
                colour: u64::from(both.trailing_zeros()),
            }),
        }
    }
}

/// One stage-2 mapping of a coloured partition: `size` bytes from IPA `ipa` to PA `pa`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub ipa: u64,
    pub pa: u64,
    pub size: u64,
}

/// Bytes the pages of `colours` in `pool` hold.
pub fn capacity(pool: &[Region], colours: Colours, geometry: CacheGeometry) -> u64 {
    coloured_runs(pool, colours, geometry).map(|r| r.size).sum()
}

/// The physical runs (contiguous pages of `colours`) in `pool`, in address order; only
/// whole pages count.
fn coloured_runs(
    pool: &[Region],
    colours: Colours,
    geometry: CacheGeometry,
) -> impl Iterator<Item = Region> + '_ {
    pool.iter().flat_map(move |region| {
        let start = region.base.next_multiple_of(PAGE_SIZE);
        let end = region.end().unwrap_or(0) & !(PAGE_SIZE - 1);
        let mut runs: Vec<Region> = Vec::new();
        let mut page = start;
        while page < end {
            if colours.contains(geometry.colour_of(page)) {
                match runs.last_mut() {
                    Some(last) if last.end() == Some(page) => last.size += PAGE_SIZE,
                    _ => runs.push(Region::new(page, PAGE_SIZE)),
                }
            }
            page += PAGE_SIZE;
        }
        runs
    })
}

/// The stage-2 runs that give a coloured partition `size` bytes of contiguous IPA from
/// `ipa_base`, backed by the pages of `colours` in `pool` taken in address order.
pub fn map(
    ipa_base: u64,
    size: u64,
    pool: &[Region],
    colours: Colours,
    geometry: CacheGeometry,
) -> Result<Vec<Run>, ColourError> {
    let available = capacity(pool, colours, geometry);
    if size > available || !size.is_multiple_of(PAGE_SIZE) {
        return Err(ColourError::DoesNotFit {
            wanted: size,
            available,
        });
    }
    let mut out = Vec::new();
    let mut ipa = ipa_base;
    let mut left = size;
    for run in coloured_runs(pool, colours, geometry) {
        if left == 0 {
            break;
        }
        let take = run.size.min(left);
        out.push(Run {
            ipa,
            pa: run.base,
            size: take,
        });
        ipa += take;
        left -= take;
    }
    Ok(out)
}

/// A coloured partition's RAM as its guest sees it and as stage 2 backs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The guest's RAM: contiguous, from the start of the board file's first range.
    pub ipa: Region,
    pub runs: Vec<Run>,
}

/// The plan of partition `p` (with colours) on a board with `cache`: all of its pages of
/// its colours, in address order, from IPA `p.ram[0].base` on.
pub fn plan(p: &Partition, cache: CacheSpec) -> Result<Plan, ColourError> {
    let geometry = CacheGeometry::from(cache);
    let colours = Colours::new(&p.colours, geometry)?;
    let base = p.ram.first().map_or(0, |r| r.base);
    let size = capacity(&p.ram, colours, geometry);
    let runs = map(base, size, &p.ram, colours, geometry)?;
    Ok(Plan {
        ipa: Region::new(base, size),
        runs,
    })
}

/// The physical pieces of `[ipa, ipa + len)`: (PA, offset into the range, length), in
/// order, or `None` if part of it is not in `runs`.
pub fn pieces(runs: &[Run], ipa: u64, len: u64) -> Option<Vec<(u64, u64, u64)>> {
    let mut out = Vec::new();
    let mut at = ipa;
    let end = ipa.checked_add(len)?;
    while at < end {
        let run = runs.iter().find(|r| at >= r.ipa && at < r.ipa + r.size)?;
        let take = (run.ipa + run.size).min(end) - at;
        out.push((run.pa + (at - run.ipa), at - ipa, take));
        at += take;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PI: CacheGeometry = CacheGeometry::PI4_L2;

    #[test]
    fn the_pi4_l2_has_16_colours_of_4k_pages() {
        assert_eq!(PI.way_size(), 64 << 10);
        assert_eq!(PI.colours(), 16);
        assert_eq!(PI.colour_of(0x0), 0);
        assert_eq!(PI.colour_of(0x1fff), 1);
        assert_eq!(PI.colour_of(0xf000), 15);
        assert_eq!(PI.colour_of(0x1_0000), 0, "the colours repeat every way");
        assert_eq!(PI.colour_of(0x0400_3000), 3);
    }

    #[test]
    fn colours_are_checked_and_compared() {
        let rt = Colours::new(&[0, 1, 2, 3], PI).unwrap();
        let linux = Colours::new(&(4..16).collect::<Vec<_>>(), PI).unwrap();
        assert_eq!(rt.count(), 4);
        assert_eq!(rt.disjoint(linux), Ok(()));
        let hv = Colours::new(&[3, 4], PI).unwrap();
        assert_eq!(rt.disjoint(hv), Err(ColourError::Shared { colour: 3 }));
        assert_eq!(
            Colours::new(&[16], PI),
            Err(ColourError::OutOfRange {
                colour: 16,
                colours: 16
            })
        );
        assert_eq!(Colours::new(&[], PI), Err(ColourError::Empty));
        assert!(ColourError::OutOfRange {
            colour: 16,
            colours: 16
        }
        .to_string()
        .contains("colours 0-15"));
    }

    #[test]
    fn a_quarter_of_the_colours_gives_a_quarter_of_the_ram_in_16k_runs() {
        let rt = Colours::new(&[0, 1, 2, 3], PI).unwrap();
        let pool = [Region::new(0x0400_0000, 0x0600_0000)];
        assert_eq!(capacity(&pool, rt, PI), 0x0600_0000 / 4);
        let runs = map(0x0400_0000, 0x1_0000, &pool, rt, PI).unwrap();
        // Colours 0-3 are the first 16 KiB of every 64 KiB: contiguous IPA, scattered PA.
        assert_eq!(
            runs,
            [
                Run {
                    ipa: 0x0400_0000,
                    pa: 0x0400_0000,
                    size: 0x4000
                },
                Run {
                    ipa: 0x0400_4000,
                    pa: 0x0401_0000,
                    size: 0x4000
                },
                Run {
                    ipa: 0x0400_8000,
                    pa: 0x0402_0000,
                    size: 0x4000
                },
                Run {
                    ipa: 0x0400_c000,
                    pa: 0x0403_0000,
                    size: 0x4000
                },
            ]
        );
        for run in &runs {
            let mut pa = run.pa;
            while pa < run.pa + run.size {
                assert!(rt.contains(PI.colour_of(pa)), "{pa:#x}");
                pa += PAGE_SIZE;
            }
        }
    }

    #[test]
    fn what_does_not_fit_is_refused_with_both_sizes() {
        let one = Colours::new(&[7], PI).unwrap();
        let pool = [Region::new(0, 0x10_0000)];
        assert_eq!(capacity(&pool, one, PI), 0x1_0000);
        assert_eq!(
            map(0, 0x2_0000, &pool, one, PI),
            Err(ColourError::DoesNotFit {
                wanted: 0x2_0000,
                available: 0x1_0000
            })
        );
        let runs = map(0x8000_0000, 0x1_0000, &pool, one, PI).unwrap();
        assert_eq!(runs.len(), 16, "one page every 64 KiB");
        assert_eq!(runs[0].pa, 0x7000);
        assert_eq!(runs[15].ipa, 0x8000_f000);
    }

    #[test]
    fn the_rpi4_rt_partition_with_half_the_colours_gets_half_its_ram() {
        let path = alloc::format!(
            "{}/../platform/boards/rpi4.toml",
            env!("CARGO_MANIFEST_DIR")
        );
        let mut config =
            platform::config::Config::from_toml(&std::fs::read_to_string(path).unwrap()).unwrap();
        let cache = config.board.cache.expect("rpi4 declares its L2");
        let rt = config
            .partitions
            .iter_mut()
            .find(|p| p.name == "rt")
            .unwrap();
        rt.colours = (0..8).collect();
        let plan = plan(rt, cache).unwrap();
        assert_eq!(plan.ipa, Region::new(0x0400_0000, 0x0300_0000));
        assert_eq!(
            plan.runs.len(),
            0x0600_0000 / 0x1_0000,
            "one 32 KiB run per way"
        );
        assert!(plan.runs.iter().all(|r| r.size == 0x8000));
        // An image copy crossing runs lands in two pieces of the right pages.
        let p = pieces(&plan.runs, 0x0400_7000, 0x2000).unwrap();
        assert_eq!(p, [(0x0400_7000, 0, 0x1000), (0x0401_0000, 0x1000, 0x1000)]);
        assert_eq!(
            pieces(&plan.runs, 0x06ff_f000, 0x2000),
            None,
            "past the IPA range"
        );
    }

    #[test]
    fn partial_pages_of_the_pool_are_left_out() {
        let all = Colours::new(&(0..16).collect::<Vec<_>>(), PI).unwrap();
        let pool = [Region::new(0x800, 0x3000)];
        assert_eq!(capacity(&pool, all, PI), 0x2000);
    }
}
