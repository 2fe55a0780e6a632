//! Where everything lives in the region, and the versioned header that says so.
//!
//! The layout is a pure function of (geometry, region size, RT CPU count): hv computes it
//! and writes the header at boot; each side recomputes it and trusts its own result, never
//! offsets read from shared memory. Linux reads the header only to learn the RT CPU count
//! and region size (then checks every other field equals its own computation), and to see
//! whether the layout version is the one it speaks. This module never touches the areas
//! it places, only the header.

use core::fmt;

use crate::checksum::Fnv64;
use crate::region::Region;
use crate::sync::Ordering;

/// "BHCHANL1" as little-endian bytes: the first word of a written header.
pub const MAGIC: u64 = u64::from_le_bytes(*b"BHCHANL1");
/// Bumped whenever any offset, size or record format changes (2: hv's area, the header's
/// fields for it).
pub const LAYOUT_VERSION: u32 = 2;
/// The most RT CPUs a layout has room for (one reader record and telemetry block each).
pub const MAX_RT_CPUS: usize = 16;

/// Sizes of the areas, in 64-bit words (records) or counts. Version 1 uses
/// [`Geometry::STANDARD`]; small ones exist for model checking.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Geometry {
    /// Words per padding line: words written by different sides never share one, so a
    /// writer on one side never bounces the other side's cache line (64 bytes).
    pub line_words: usize,
    /// Words per parameter slot: [`crate::params::SLOT_HEADER_WORDS`] + payload.
    pub slot_words: usize,
    /// Words per telemetry block: sequence count + record.
    pub telemetry_words: usize,
    /// Records per ring.
    pub ring_capacity: usize,
    /// Words per ring record.
    pub record_words: usize,
}

impl Geometry {
    pub const STANDARD: Geometry = Geometry {
        line_words: 8,
        slot_words: 64,
        telemetry_words: 64,
        ring_capacity: 256,
        record_words: 8,
    };
}

/// Words of the header: its fields, then the checksum (padded to whole lines).
pub const HEADER_FIELDS: usize = 19;
/// Words of one RT CPU's reader record ([`crate::params`] says what they hold).
pub const READER_WORDS: usize = 5;

/// One SPSC ring: producer's line (head, drop count), consumer's line (tail), records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLayout {
    pub head: usize,
    pub dropped: usize,
    pub tail: usize,
    pub records: usize,
    pub capacity: usize,
    pub record_words: usize,
}

/// Word offsets of every area of one region.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub geometry: Geometry,
    pub region_words: usize,
    pub rt_cpus: usize,
    /// The published version (Linux writes, RT reads).
    pub current: usize,
    /// One reader record per RT CPU, a line each (RT writes, Linux reads).
    pub readers: usize,
    /// `slots` parameter slots of `geometry.slot_words` (Linux writes, RT reads).
    pub slots_at: usize,
    pub slots: usize,
    /// One telemetry block per RT CPU (RT writes, Linux reads).
    pub telemetry: usize,
    /// Commands Linux -> RT.
    pub to_rt: RingLayout,
    /// Events and log lines RT -> Linux.
    pub to_linux: RingLayout,
    /// hv's area: its partition table, then one statistics block per physical CPU (hv
    /// writes, Linux reads; [`crate::hv_stats`]).
    pub hv_partitions: usize,
    pub hv_stats: usize,
    /// First word past the last area.
    pub end: usize,
}

/// Why a layout cannot be made or a header not accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The first word is not [`MAGIC`]: nobody has written a header (yet).
    NoHeader { found: u64 },
    /// The header's checksum does not match its fields: scribbled or half written.
    HeaderChecksum,
    /// A header for another layout version.
    VersionMismatch { found: u32, expected: u32 },
    /// The RT CPU count is 0 or above [`MAX_RT_CPUS`].
    RtCpus { found: u64 },
    /// The areas need more words than the region has.
    TooSmall { needed: usize, have: usize },
    /// A header field differs from what its version and sizes imply.
    Inconsistent {
        field: &'static str,
        found: u64,
        expected: u64,
    },
}

impl fmt::Display for LayoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            LayoutError::NoHeader { found } => write!(
                f,
                "no valid header (first word {found:#018x}, expected magic {MAGIC:#018x}): \
                 the hypervisor has not set up the channel"
            ),
            LayoutError::HeaderChecksum => {
                write!(
                    f,
                    "the header's checksum does not match its fields (corrupt header)"
                )
            }
            LayoutError::VersionMismatch { found, expected } => write!(
                f,
                "layout version {found} in the header, this side speaks version {expected}"
            ),
            LayoutError::RtCpus { found } => {
                write!(f, "RT CPU count {found} is not in 1..={MAX_RT_CPUS}")
            }
            LayoutError::TooSmall { needed, have } => write!(
                f,
                "the channel needs {} bytes, the region has {}",
                needed * 8,
                have * 8
            ),
            LayoutError::Inconsistent {
                field,
                found,
                expected,
            } => write!(
                f,
                "header field `{field}` is {found:#x}, its layout version implies {expected:#x}"
            ),
        }
    }
}

impl Layout {
    /// The [`LAYOUT_VERSION`] layout of a region of `region_words` words for `rt_cpus` RT CPUs.
    pub fn new(region_words: usize, rt_cpus: usize) -> Result<Self, LayoutError> {
        Self::with_geometry(Geometry::STANDARD, region_words, rt_cpus)
    }

    pub fn with_geometry(
        geometry: Geometry,
        region_words: usize,
        rt_cpus: usize,
    ) -> Result<Self, LayoutError> {
        if rt_cpus == 0 || rt_cpus > MAX_RT_CPUS {
            return Err(LayoutError::RtCpus {
                found: rt_cpus as u64,
            });
        }
        let line = geometry.line_words.max(1);
        let lines = |words: usize| words.div_ceil(line) * line;
        let mut at = lines(HEADER_FIELDS);
        let mut take = |words: usize| {
            let start = at;
            at += lines(words);
            start
        };
        let current = take(1);
        let readers = take(lines(READER_WORDS) * rt_cpus);
        // Every RT CPU may hold one slot, one is current, and the writer needs a free one.
        let slots = rt_cpus + 2;
        let slots_at = take(geometry.slot_words * slots);
        let telemetry = take(geometry.telemetry_words * rt_cpus);
        let mut ring = || {
            let head = take(2);
            let tail = take(1);
            let records = take(geometry.ring_capacity * geometry.record_words);
            RingLayout {
                head,
                dropped: head + 1,
                tail,
                records,
                capacity: geometry.ring_capacity,
                record_words: geometry.record_words,
            }
        };
        let to_rt = ring();
        let to_linux = ring();
        let hv_partitions =
            take(crate::hv_stats::PARTITION_WORDS * crate::hv_stats::MAX_PARTITIONS);
        let hv_stats = take(crate::hv_stats::BLOCK_WORDS * crate::hv_stats::MAX_HV_CPUS);
        let end = at;
        if end > region_words {
            return Err(LayoutError::TooSmall {
                needed: end,
                have: region_words,
            });
        }
        Ok(Layout {
            geometry,
            region_words,
            rt_cpus,
            current,
            readers,
            slots_at,
            slots,
            telemetry,
            to_rt,
            to_linux,
            hv_partitions,
            hv_stats,
            end,
        })
    }

    /// Word offset of RT CPU `cpu`'s reader record.
    pub fn reader(&self, cpu: usize) -> usize {
        let line = self.geometry.line_words.max(1);
        self.readers + cpu * READER_WORDS.div_ceil(line) * line
    }

    /// Word offset of parameter slot `slot`.
    pub fn slot(&self, slot: usize) -> usize {
        self.slots_at + slot * self.geometry.slot_words
    }

    /// Word offset of RT CPU `cpu`'s telemetry block.
    pub fn telemetry_block(&self, cpu: usize) -> usize {
        self.telemetry + cpu * self.geometry.telemetry_words
    }

    /// Word offset of physical CPU `cpu`'s hv statistics block.
    #[inline]
    pub fn hv_stats_block(&self, cpu: usize) -> usize {
        self.hv_stats + cpu * crate::hv_stats::BLOCK_WORDS
    }

    /// Word offset of hv's partition table entry `index`.
    pub fn hv_partition(&self, index: usize) -> usize {
        self.hv_partitions + index * crate::hv_stats::PARTITION_WORDS
    }

    /// The header fields, in order; the checksum covers all but itself.
    fn header_fields(&self) -> [(&'static str, u64); HEADER_FIELDS - 1] {
        let g = &self.geometry;
        [
            ("magic", MAGIC),
            ("layout_version", LAYOUT_VERSION as u64),
            ("region_words", self.region_words as u64),
            ("rt_cpus", self.rt_cpus as u64),
            ("line_words", g.line_words as u64),
            ("current", self.current as u64),
            ("readers", self.readers as u64),
            ("slots_at", self.slots_at as u64),
            ("slots", self.slots as u64),
            ("slot_words", g.slot_words as u64),
            ("telemetry", self.telemetry as u64),
            ("telemetry_words", g.telemetry_words as u64),
            ("to_rt", self.to_rt.head as u64),
            ("to_linux", self.to_linux.head as u64),
            (
                "ring_capacity_and_record_words",
                (g.ring_capacity as u64) << 32 | g.record_words as u64,
            ),
            ("hv_partitions", self.hv_partitions as u64),
            ("hv_stats", self.hv_stats as u64),
            (
                "hv_cpus_and_block_words",
                (crate::hv_stats::MAX_HV_CPUS as u64) << 32 | crate::hv_stats::BLOCK_WORDS as u64,
            ),
        ]
    }

    /// The header's words as [`Channel::write_header`] stores them, checksum last.
    pub fn header_words(&self) -> [u64; HEADER_FIELDS] {
        let mut words = [0u64; HEADER_FIELDS];
        for (w, (_, v)) in words.iter_mut().zip(self.header_fields().iter()) {
            *w = *v;
        }
        words[HEADER_FIELDS - 1] = Layout::header_checksum(&words[..HEADER_FIELDS - 1]);
        words
    }

    /// The checksum of the header's fields (all its words but the last).
    pub fn header_checksum(fields: &[u64]) -> u64 {
        Fnv64::new().words(fields).finish()
    }
}

/// The region together with a layout that fits it: what every protocol operation takes.
#[derive(Clone, Copy)]
pub struct Channel<'a> {
    pub(crate) region: Region<'a>,
    pub(crate) layout: Layout,
}

impl<'a> Channel<'a> {
    /// Pairs a region with a layout computed for it (the RT side and hv: their own layout).
    pub fn new(region: Region<'a>, layout: Layout) -> Result<Self, LayoutError> {
        if layout.end > region.len_words() || layout.region_words > region.len_words() {
            return Err(LayoutError::TooSmall {
                needed: layout.end.max(layout.region_words),
                have: region.len_words(),
            });
        }
        Ok(Self { region, layout })
    }

    /// Reads and checks the header of `region` (Linux): the layout it describes, if it is a
    /// header of this [`LAYOUT_VERSION`] whose every field is what the version implies for
    /// its sizes.
    pub fn from_header(region: Region<'a>) -> Result<Self, LayoutError> {
        let mut words = [0u64; HEADER_FIELDS];
        region.copy_out(0, &mut words);
        if words[0] != MAGIC {
            return Err(LayoutError::NoHeader { found: words[0] });
        }
        // The version before the checksum: another version's header may have another
        // length, so its checksum is not where this version's is, and it is named as
        // another version rather than as corrupt.
        let version = words[1];
        if version != LAYOUT_VERSION as u64 {
            return Err(LayoutError::VersionMismatch {
                found: version as u32,
                expected: LAYOUT_VERSION,
            });
        }
        let (fields, checksum) = words.split_at(HEADER_FIELDS - 1);
        if Layout::header_checksum(fields) != checksum[0] {
            return Err(LayoutError::HeaderChecksum);
        }
        let region_words = words[2];
        if region_words > region.len_words() as u64 {
            return Err(LayoutError::TooSmall {
                needed: usize::try_from(region_words).unwrap_or(usize::MAX),
                have: region.len_words(),
            });
        }
        let rt_cpus = words[3];
        if rt_cpus == 0 || rt_cpus > MAX_RT_CPUS as u64 {
            return Err(LayoutError::RtCpus { found: rt_cpus });
        }
        let layout = Layout::new(region_words as usize, rt_cpus as usize)?;
        for ((field, expected), &found) in layout.header_fields().iter().zip(fields) {
            if found != *expected {
                return Err(LayoutError::Inconsistent {
                    field,
                    found,
                    expected: *expected,
                });
            }
        }
        Channel::new(region, layout)
    }

    /// Writes the header (hv at boot, before either partition runs). The magic goes last
    /// with a release store, so a reader that sees it sees every field.
    pub fn write_header(&self) {
        let words = self.layout.header_words();
        self.region.store(0, 0, Ordering::Relaxed);
        self.region.copy_in(1, &words[1..]);
        self.region.store(0, MAGIC, Ordering::Release);
    }

    /// Checks the header in the region against this side's own layout (the RT side at
    /// start: it then keeps using its own layout whatever the header says later).
    pub fn check_header(&self) -> Result<(), LayoutError> {
        let found = Channel::from_header(self.region)?;
        if found.layout != self.layout {
            return Err(LayoutError::Inconsistent {
                field: "layout",
                found: found.layout.region_words as u64,
                expected: self.layout.region_words as u64,
            });
        }
        Ok(())
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn region(&self) -> Region<'a> {
        self.region
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::region::testing::zeroed;

    const WORDS: usize = 2 * 1024 * 1024 / 8;

    #[test]
    fn the_standard_layout_fits_two_mib_with_areas_in_order_and_apart() {
        let l = Layout::new(WORDS, 2).unwrap();
        let areas = [
            (0, HEADER_FIELDS),
            (l.current, 1),
            (l.readers, 8 * 2),
            (l.slots_at, 64 * 4),
            (l.telemetry, 64 * 2),
            (l.to_rt.head, 2),
            (l.to_rt.tail, 1),
            (l.to_rt.records, 256 * 8),
            (l.to_linux.head, 2),
            (l.to_linux.tail, 1),
            (l.to_linux.records, 256 * 8),
            (l.hv_partitions, 8 * 4),
            (l.hv_stats, 32 * 8),
        ];
        for pair in areas.windows(2) {
            let ((a, len), (b, _)) = (pair[0], pair[1]);
            assert!(a + len <= b, "{pair:?} overlap");
            assert_eq!(b % 8, 0, "every area starts a line");
        }
        assert_eq!(l.slots, 4);
        assert!(l.end <= WORDS);
        assert_eq!(l.end, 4_848, "under 38 KiB of the 2 MiB");
    }

    #[test]
    fn a_written_header_reads_back_as_the_same_layout() {
        let words = zeroed(WORDS);
        let region = Region::new(&words);
        let hv = Channel::new(region, Layout::new(WORDS, 2).unwrap()).unwrap();
        hv.write_header();
        let linux = Channel::from_header(region).unwrap();
        assert_eq!(linux.layout, hv.layout);
        hv.check_header().unwrap();
    }

    #[test]
    fn a_zeroed_region_has_no_header() {
        let words = zeroed(WORDS);
        let e = Channel::from_header(Region::new(&words)).err().unwrap();
        assert_eq!(e, LayoutError::NoHeader { found: 0 });
        assert!(e.to_string().contains("no valid header"), "{e}");
    }

    fn written() -> Vec<crate::Word> {
        let words = zeroed(WORDS);
        Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap())
            .unwrap()
            .write_header();
        words
    }

    #[test]
    fn another_version_is_named() {
        let words = written();
        let region = Region::new(&words);
        // A version-3 writer with a correct checksum.
        region.store(1, 3, Ordering::Relaxed);
        let mut fields = [0u64; HEADER_FIELDS - 1];
        region.copy_out(0, &mut fields);
        region.store(
            HEADER_FIELDS - 1,
            Layout::header_checksum(&fields),
            Ordering::Relaxed,
        );
        let e = Channel::from_header(region).err().unwrap();
        assert_eq!(
            e,
            LayoutError::VersionMismatch {
                found: 3,
                expected: 2
            }
        );
        assert_eq!(
            e.to_string(),
            "layout version 3 in the header, this side speaks version 2"
        );
        // A version-1 header (shorter: its checksum is where version 2 has fields) is
        // named as the other version, not as corrupt.
        region.store(1, 1, Ordering::Relaxed);
        assert_eq!(
            Channel::from_header(region).err(),
            Some(LayoutError::VersionMismatch {
                found: 1,
                expected: 2
            })
        );
    }

    #[test]
    fn a_flipped_bit_anywhere_in_the_header_is_refused() {
        for word in 0..HEADER_FIELDS {
            let words = written();
            let region = Region::new(&words);
            let old = region.load(word, Ordering::Relaxed);
            region.store(word, old ^ 1 << 17, Ordering::Relaxed);
            assert!(Channel::from_header(region).is_err(), "word {word}");
        }
    }

    #[test]
    fn a_consistent_header_that_lies_about_offsets_is_refused() {
        let words = written();
        let region = Region::new(&words);
        // Offsets pointing elsewhere, checksum recomputed: still refused.
        region.store(7, 0x10_0000, Ordering::Relaxed);
        let mut fields = [0u64; HEADER_FIELDS - 1];
        region.copy_out(0, &mut fields);
        region.store(
            HEADER_FIELDS - 1,
            Layout::header_checksum(&fields),
            Ordering::Relaxed,
        );
        assert!(matches!(
            Channel::from_header(region),
            Err(LayoutError::Inconsistent {
                field: "slots_at",
                ..
            })
        ));
    }

    #[test]
    fn a_header_claiming_a_larger_region_than_mapped_is_refused() {
        let words = written();
        let small = Region::new(&words[..WORDS / 2]);
        assert!(matches!(
            Channel::from_header(small),
            Err(LayoutError::TooSmall { .. })
        ));
    }

    #[test]
    fn cpu_counts_and_sizes_out_of_range_are_refused() {
        assert_eq!(Layout::new(WORDS, 0), Err(LayoutError::RtCpus { found: 0 }));
        assert!(Layout::new(WORDS, MAX_RT_CPUS).is_ok());
        assert!(Layout::new(WORDS, MAX_RT_CPUS + 1).is_err());
        assert!(matches!(
            Layout::new(1000, 2),
            Err(LayoutError::TooSmall {
                needed: 4_848,
                have: 1000
            })
        ));
        let words = zeroed(100);
        assert!(Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).is_err());
    }
}
