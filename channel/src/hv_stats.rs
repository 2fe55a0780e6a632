//! hv's area of the channel: its partition table and its per-physical-CPU statistics, as
//! locked per-CPU blocks under a sequence count.
//!
//! One block per physical CPU, written only by hv on that CPU (hv's traps run with
//! interrupts masked, so the CPU itself is the block's lock: no other CPU can hold it, and
//! readers take none). A writer makes the count odd, writes, makes it even; a reader copies
//! and takes the copy only if the count was even and unchanged, retrying a bounded number
//! of times: the writer never waits for a reader. The same update goes to hv's own copy of
//! the block (in hv's memory, which any hv core reads consistently) and, when the board
//! keeps a channel, to the channel's block that Linux reads (`rtctl status`). The writer
//! loads only from its own copy: nothing Linux writes into the channel reaches hv.
//!
//! The partition table is static: hv writes it with the header (at boot and at each
//! Linux restart), before Linux runs. What Linux reads here steers nothing; names are shown
//! lossily and CPU masks as they are.

use crate::layout::Channel;
use crate::region::Region;
use crate::sync::{fence, Ordering};

/// Physical CPUs the area has a block for.
pub const MAX_HV_CPUS: usize = 8;
/// Words per block: the sequence count, then the counters (room left for more).
pub const BLOCK_WORDS: usize = 32;
/// Partitions the table has room for.
pub const MAX_PARTITIONS: usize = 4;
/// Words per partition entry: kind, CPU mask, name (16 bytes), padding to a line.
pub const PARTITION_WORDS: usize = 8;
/// Bytes of a partition name in the table (longer ones are cut).
pub const NAME_BYTES: usize = 16;

/// What hv counts on each physical CPU. The index is the counter's word in the block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub enum Counter {
    /// Traps by kind: HVC (hypercalls and PSCI).
    TrapHvc,
    TrapSmc,
    TrapWfi,
    /// ICC_SGI1R_EL1 writes (GICv3 SGIs).
    TrapSgi1r,
    /// Emulated distributor accesses.
    TrapGicd,
    /// Emulated redistributor accesses.
    TrapGicr,
    /// Emulated console UART accesses.
    TrapConsole,
    /// hv's control page accesses.
    TrapControl,
    /// Any other trap.
    TrapOther,
    /// Accesses refused: an external abort injected, or the vCPU stopped.
    Refused,
    /// Undefined instructions injected (unhandled traps of Linux).
    Undefined,
    /// Fault reports printed (the others were only counted, rate-limited).
    FaultReports,
    /// Physical interrupts taken at EL2.
    IrqsTaken,
    /// Forwarded into a list register.
    IrqsForwarded,
    /// PMU counts hv spent forwarding (instructions under -icount).
    ForwardCost,
    /// Left active for lack of a list register, injected later.
    IrqsOwed,
    /// Taken but not forwarded (no partition here owns them, or the owed list was full).
    IrqsDropped,
    /// Times the list registers were full and had to be refilled.
    LrRefills,
    /// Virtual SGIs this CPU queued for a vCPU.
    SgisQueued,
    /// Virtual SGIs a full queue refused.
    SgisRefused,
    /// Console ticks (EL2 timer: typed input polled, the console ring drained).
    ConsoleTicks,
    /// Console bytes the guest on this CPU wrote (UART or hypercall).
    ConsoleOut,
    /// Typed bytes this CPU delivered to a partition's console.
    ConsoleIn,
}

/// Every counter, in block order, with the name `rtctl` shows.
pub const COUNTERS: [(Counter, &str); 23] = [
    (Counter::TrapHvc, "traps_hvc"),
    (Counter::TrapSmc, "traps_smc"),
    (Counter::TrapWfi, "traps_wfi"),
    (Counter::TrapSgi1r, "traps_sgi1r"),
    (Counter::TrapGicd, "traps_gicd"),
    (Counter::TrapGicr, "traps_gicr"),
    (Counter::TrapConsole, "traps_console"),
    (Counter::TrapControl, "traps_control"),
    (Counter::TrapOther, "traps_other"),
    (Counter::Refused, "refused"),
    (Counter::Undefined, "undefined"),
    (Counter::FaultReports, "fault_reports"),
    (Counter::IrqsTaken, "irqs_taken"),
    (Counter::IrqsForwarded, "irqs_forwarded"),
    (Counter::ForwardCost, "forward_cost"),
    (Counter::IrqsOwed, "irqs_owed"),
    (Counter::IrqsDropped, "irqs_dropped"),
    (Counter::LrRefills, "lr_refills"),
    (Counter::SgisQueued, "sgis_queued"),
    (Counter::SgisRefused, "sgis_refused"),
    (Counter::ConsoleTicks, "console_ticks"),
    (Counter::ConsoleOut, "console_out"),
    (Counter::ConsoleIn, "console_in"),
];

/// Counters a block holds.
pub const COUNTER_COUNT: usize = COUNTERS.len();
const _: () = assert!(COUNTER_COUNT < BLOCK_WORDS);

impl Counter {
    /// The counter's word in a block (after the sequence count).
    #[inline]
    fn word(self) -> usize {
        1 + self as usize
    }

    pub fn name(self) -> &'static str {
        COUNTERS[self as usize].1
    }
}

/// One CPU's counters, as read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CpuStats {
    pub counts: [u64; COUNTER_COUNT],
}

impl CpuStats {
    pub fn get(&self, c: Counter) -> u64 {
        self.counts[c as usize]
    }
}

/// One statistics block somewhere: hv's own copy, or the channel's.
#[derive(Clone, Copy)]
pub struct Block<'a> {
    region: Region<'a>,
    at: usize,
}

impl<'a> Block<'a> {
    /// A block of hv's own memory: `words` holds [`BLOCK_WORDS`] words that only hv writes.
    #[inline]
    pub fn own(words: &'a [crate::Word]) -> Option<Self> {
        (words.len() >= BLOCK_WORDS).then(|| Self {
            region: Region::new(words),
            at: 0,
        })
    }

    /// Physical CPU `cpu`'s block in the channel (None past [`MAX_HV_CPUS`]).
    #[inline]
    pub fn in_channel(ch: &Channel<'a>, cpu: usize) -> Option<Self> {
        (cpu < MAX_HV_CPUS).then(|| Self {
            region: ch.region,
            at: ch.layout.hv_stats_block(cpu),
        })
    }
}

/// Adds `counts` to the block `own` (hv's memory, written only by the calling CPU) and
/// copies the changed counters to `mirror` (the channel's block of the same CPU), under
/// one sequence count step in both. Loads only from `own`; a fixed number of loads and
/// stores, no wait. Counters wrap.
#[inline]
pub fn add(own: Block, mirror: Option<Block>, counts: &[(Counter, u64)]) {
    let seq = own.region.load(own.at, Ordering::Relaxed);
    let odd = seq.wrapping_add(1) | 1;
    own.region.store(own.at, odd, Ordering::Relaxed);
    if let Some(m) = mirror {
        m.region.store(m.at, odd, Ordering::Relaxed);
    }
    // Readers that see any new counter see the odd count (pairs with their acquire fence).
    fence(Ordering::Release);
    for &(c, n) in counts {
        let value = own
            .region
            .load(own.at + c.word(), Ordering::Relaxed)
            .wrapping_add(n);
        own.region
            .store(own.at + c.word(), value, Ordering::Relaxed);
        if let Some(m) = mirror {
            m.region.store(m.at + c.word(), value, Ordering::Relaxed);
        }
    }
    let even = odd.wrapping_add(1);
    own.region.store(own.at, even, Ordering::Release);
    if let Some(m) = mirror {
        m.region.store(m.at, even, Ordering::Release);
    }
}

/// Copies every counter of `own` into `mirror` (hv at boot or a Linux restart, when the
/// channel's copy was zeroed or may have been scribbled over).
pub fn copy_all(own: Block, mirror: Block) {
    let mut counts = [(Counter::TrapHvc, 0); COUNTER_COUNT];
    for (slot, &(c, _)) in counts.iter_mut().zip(COUNTERS.iter()) {
        *slot = (c, 0);
    }
    // Adding zero to every counter writes them all, under the count.
    add(own, Some(mirror), &counts);
}

/// Why no consistent copy of a block was had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Nothing was ever written (count 0): hv runs nothing on that CPU, or has no stats.
    NeverWritten,
    /// The writer was mid-update on every try.
    Busy,
}

/// One consistent copy of `block`, with its update count, trying up to `tries` times.
pub fn read(block: Block, tries: usize) -> Result<(u64, CpuStats), ReadError> {
    for _ in 0..tries {
        let before = block.region.load(block.at, Ordering::Acquire);
        if before == 0 {
            return Err(ReadError::NeverWritten);
        }
        if before & 1 == 1 {
            core::hint::spin_loop();
            continue;
        }
        let mut stats = CpuStats::default();
        block.region.copy_out(block.at + 1, &mut stats.counts);
        fence(Ordering::Acquire);
        if block.region.load(block.at, Ordering::Relaxed) == before {
            return Ok((before / 2, stats));
        }
    }
    Err(ReadError::Busy)
}

/// What a partition is, in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartitionKind {
    Linux,
    Rt,
    /// A kind word this side does not know (a scribble, or a newer hv).
    Other(u64),
}

impl PartitionKind {
    #[inline]
    fn word(self) -> u64 {
        match self {
            PartitionKind::Linux => 1,
            PartitionKind::Rt => 2,
            PartitionKind::Other(w) => w,
        }
    }

    fn from_word(w: u64) -> Option<Self> {
        match w {
            0 => None,
            1 => Some(PartitionKind::Linux),
            2 => Some(PartitionKind::Rt),
            other => Some(PartitionKind::Other(other)),
        }
    }
}

/// One entry of hv's partition table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PartitionEntry {
    pub kind: PartitionKind,
    /// Bit n: physical CPU n runs one of its vCPUs (vCPU i on the i-th bit set).
    pub cpus: u64,
    pub name: [u8; NAME_BYTES],
}

impl PartitionEntry {
    pub fn new(kind: PartitionKind, cpus: u64, name: &str) -> Self {
        let mut bytes = [0u8; NAME_BYTES];
        let n = name.len().min(NAME_BYTES);
        bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
        Self {
            kind,
            cpus,
            name: bytes,
        }
    }

    /// The name's bytes up to the first NUL.
    pub fn name_bytes(&self) -> &[u8] {
        let end = self.name.iter().position(|&b| b == 0).unwrap_or(NAME_BYTES);
        &self.name[..end]
    }
}

/// Words of an entry that [`write_partitions`] writes (kind, CPUs, name); the rest of the
/// line is the run record ([`write_run`]).
const STATIC_WORDS: usize = 4;
/// Where the run record starts in an entry.
const RUN_AT: usize = STATIC_WORDS;

/// What became of a partition, as hv last said (`state` word of its run record).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RunState {
    /// Nothing written yet (hv not yet booted it, or an older hv).
    #[default]
    Unknown,
    Running,
    /// It powered itself off (PSCI SYSTEM_OFF).
    Off,
    /// hv stopped it after a fault (its board file's `on_fault`).
    Faulted,
    /// Being reloaded and rebooted (SYSTEM_RESET, or a fault restart).
    Resetting,
    /// A state word this side does not know (a scribble, or a newer hv).
    Other(u64),
}

impl RunState {
    fn word(self) -> u64 {
        match self {
            RunState::Unknown => 0,
            RunState::Running => 1,
            RunState::Off => 2,
            RunState::Faulted => 3,
            RunState::Resetting => 4,
            RunState::Other(w) => w,
        }
    }

    fn from_word(w: u64) -> Self {
        match w {
            0 => RunState::Unknown,
            1 => RunState::Running,
            2 => RunState::Off,
            3 => RunState::Faulted,
            4 => RunState::Resetting,
            other => RunState::Other(other),
        }
    }

    /// As `rtctl status` prints it.
    pub fn name(self) -> &'static str {
        match self {
            RunState::Unknown => "unknown",
            RunState::Running => "running",
            RunState::Off => "off",
            RunState::Faulted => "stopped after a fault",
            RunState::Resetting => "resetting",
            RunState::Other(_) => "unknown state",
        }
    }
}

/// A partition's run record: how often hv booted it, how many of those boots were fault
/// restarts, and its state. hv writes it (under the partition's own lock, so writers never
/// race) whenever one of them changes, and again after each Linux restart; each word is
/// read on its own, so a reader may see a boot count one ahead of the state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PartitionRun {
    pub boots: u64,
    pub fault_restarts: u64,
    pub state: RunState,
}

/// Writes partition `index`'s run record (hv); an index past [`MAX_PARTITIONS`] is
/// left out.
pub fn write_run(ch: &Channel, index: usize, run: PartitionRun) {
    if index >= MAX_PARTITIONS {
        return;
    }
    let at = ch.layout.hv_partition(index) + RUN_AT;
    ch.region
        .copy_in(at, &[run.boots, run.fault_restarts, run.state.word()]);
}

/// Partition `index`'s run record as found (Linux).
pub fn read_run(ch: &Channel, index: usize) -> PartitionRun {
    if index >= MAX_PARTITIONS {
        return PartitionRun::default();
    }
    let mut words = [0u64; 3];
    ch.region
        .copy_out(ch.layout.hv_partition(index) + RUN_AT, &mut words);
    PartitionRun {
        boots: words[0],
        fault_restarts: words[1],
        state: RunState::from_word(words[2]),
    }
}

/// Writes the partition table (hv, before Linux runs): `entries` first, the rest empty;
/// entries past [`MAX_PARTITIONS`] are left out. Run records ([`write_run`]) are not
/// touched.
pub fn write_partitions(ch: &Channel, entries: &[PartitionEntry]) {
    for i in 0..MAX_PARTITIONS {
        let at = ch.layout.hv_partition(i);
        let mut words = [0u64; STATIC_WORDS];
        if let Some(e) = entries.get(i) {
            words[0] = e.kind.word();
            words[1] = e.cpus;
            for (w, chunk) in words[2..4].iter_mut().zip(e.name.chunks(8)) {
                let mut b = [0u8; 8];
                b.copy_from_slice(chunk);
                *w = u64::from_le_bytes(b);
            }
        }
        ch.region.copy_in(at, &words);
    }
}

/// The partition table as found (Linux): entries with a kind word, in order.
pub fn read_partitions(ch: &Channel) -> [Option<PartitionEntry>; MAX_PARTITIONS] {
    let mut out = [None; MAX_PARTITIONS];
    for (i, slot) in out.iter_mut().enumerate() {
        let mut words = [0u64; PARTITION_WORDS];
        ch.region.copy_out(ch.layout.hv_partition(i), &mut words);
        let Some(kind) = PartitionKind::from_word(words[0]) else {
            continue;
        };
        let mut name = [0u8; NAME_BYTES];
        for (chunk, w) in name.chunks_mut(8).zip(&words[2..4]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        *slot = Some(PartitionEntry {
            kind,
            cpus: words[1],
            name,
        });
    }
    out
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::region::testing::zeroed;

    const WORDS: usize = 8192;

    #[test]
    fn counts_reach_both_copies_under_one_count_step() {
        let own = zeroed(BLOCK_WORDS);
        let words = zeroed(WORDS);
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        let mine = Block::own(&own).unwrap();
        let theirs = Block::in_channel(&ch, 3).unwrap();
        assert_eq!(read(mine, 4), Err(ReadError::NeverWritten));
        assert_eq!(read(theirs, 4), Err(ReadError::NeverWritten));
        add(
            mine,
            Some(theirs),
            &[(Counter::IrqsTaken, 1), (Counter::IrqsForwarded, 1)],
        );
        add(
            mine,
            Some(theirs),
            &[(Counter::IrqsTaken, 1), (Counter::ForwardCost, 250)],
        );
        for block in [mine, theirs] {
            let (updates, s) = read(block, 4).unwrap();
            assert_eq!(updates, 2);
            assert_eq!(s.get(Counter::IrqsTaken), 2);
            assert_eq!(s.get(Counter::IrqsForwarded), 1);
            assert_eq!(s.get(Counter::ForwardCost), 250);
            assert_eq!(s.get(Counter::TrapHvc), 0);
        }
        // Another CPU's block is untouched.
        assert_eq!(
            read(Block::in_channel(&ch, 2).unwrap(), 4),
            Err(ReadError::NeverWritten)
        );
        assert!(Block::in_channel(&ch, MAX_HV_CPUS).is_none());
    }

    #[test]
    fn a_scribbled_mirror_never_reaches_hvs_counts_and_a_copy_repairs_it() {
        let own = zeroed(BLOCK_WORDS);
        let words = zeroed(WORDS);
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        let mine = Block::own(&own).unwrap();
        let theirs = Block::in_channel(&ch, 0).unwrap();
        add(mine, Some(theirs), &[(Counter::TrapConsole, 5)]);
        let at = ch.layout.hv_stats_block(0);
        for i in 0..BLOCK_WORDS {
            ch.region
                .store(at + i, 0xdead_beef_0000 + i as u64, Ordering::Relaxed);
        }
        add(mine, Some(theirs), &[(Counter::TrapConsole, 1)]);
        assert_eq!(read(mine, 4).unwrap().1.get(Counter::TrapConsole), 6);
        copy_all(mine, theirs);
        assert_eq!(read(theirs, 4).unwrap().1, read(mine, 4).unwrap().1);
    }

    #[test]
    fn a_block_mid_update_is_busy_not_torn() {
        let own = zeroed(BLOCK_WORDS);
        own[0].store(7, Ordering::Relaxed);
        assert_eq!(read(Block::own(&own).unwrap(), 4), Err(ReadError::Busy));
    }

    #[test]
    fn counter_names_follow_block_order() {
        for (i, &(c, name)) in COUNTERS.iter().enumerate() {
            assert_eq!(c as usize, i);
            assert_eq!(c.name(), name);
        }
    }

    #[test]
    fn run_records_read_back_and_survive_a_table_rewrite() {
        let words = zeroed(WORDS);
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        assert_eq!(read_run(&ch, 1), PartitionRun::default());
        let run = PartitionRun {
            boots: 3,
            fault_restarts: 2,
            state: RunState::Faulted,
        };
        write_run(&ch, 1, run);
        assert_eq!(read_run(&ch, 1), run);
        write_partitions(&ch, &[PartitionEntry::new(PartitionKind::Rt, 0b1100, "rt")]);
        assert_eq!(
            read_run(&ch, 1),
            run,
            "the table's rewrite keeps run records"
        );
        assert_eq!(read_run(&ch, 0), PartitionRun::default());
        write_run(&ch, MAX_PARTITIONS, run);
        assert_eq!(read_run(&ch, MAX_PARTITIONS), PartitionRun::default());
        let at = ch.layout.hv_partition(2) + RUN_AT + 2;
        ch.region.store(at, 77, Ordering::Relaxed);
        assert_eq!(read_run(&ch, 2).state, RunState::Other(77));
    }

    #[test]
    fn the_partition_table_reads_back_and_survives_garbage() {
        let words = zeroed(WORDS);
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, 2).unwrap()).unwrap();
        assert_eq!(read_partitions(&ch), [None; MAX_PARTITIONS]);
        let linux = PartitionEntry::new(PartitionKind::Linux, 0b0011, "linux");
        let rt = PartitionEntry::new(PartitionKind::Rt, 0b1100, "a-very-long-partition-name");
        write_partitions(&ch, &[linux, rt]);
        let found = read_partitions(&ch);
        assert_eq!(found[0], Some(linux));
        assert_eq!(found[1].unwrap().name_bytes(), b"a-very-long-part");
        assert_eq!(found[2], None);
        let at = ch.layout.hv_partition(2);
        ch.region.store(at, 99, Ordering::Relaxed);
        ch.region.store(at + 2, u64::MAX, Ordering::Relaxed);
        let odd = read_partitions(&ch)[2].unwrap();
        assert_eq!(odd.kind, PartitionKind::Other(99));
        assert_eq!(odd.name_bytes(), &[0xff; 8]);
    }
}
