//! hv's statistics, one locked per-CPU block per physical CPU: what each CPU's traps and
//! interrupts did (the counters are [`channel::hv_stats::Counter`]).
//!
//! A block is written only by its own CPU, from hv's trap and interrupt paths, which run
//! with interrupts masked: the CPU is the block's lock, no other CPU can ever hold it, and
//! an update is a fixed number of loads and stores under a sequence count
//! ([`channel::hv_stats::add`]). Any core reads any block consistently ([`CpuStats::read`])
//! without stalling the writer, and so does Linux from the channel's copy, which every
//! update writes too once the channel is attached. It never loads from the channel: what
//! Linux scribbles there is overwritten by the next update, and a Linux restart asks each
//! CPU to copy its whole block there again: at its next update, or, on a CPU whose
//! wake-up path must not depend on Linux (an RT partition's), at its next synchronous
//! trap ([`CpuStats::at_trap`]), never on its interrupt path.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

use channel::hv_stats::{self, Block, Counter, CpuStats as Counts, ReadError, BLOCK_WORDS};
use channel::{Channel, Word};
use spin::Once;

use crate::layout::MAX_CPUS;

const _: () = assert!(MAX_CPUS <= hv_stats::MAX_HV_CPUS);

const NO_COPY: u8 = 0;
const COPY_AT_UPDATE: u8 = 1;
const COPY_AT_TRAP: u8 = 2;

/// Every physical CPU's block in hv's memory, and where their channel copies are.
pub struct CpuStats {
    own: [Word; MAX_CPUS * BLOCK_WORDS],
    channel: Once<Channel<'static>>,
    /// Per CPU: whether (and where) to copy the whole block to the channel: [`NO_COPY`],
    /// [`COPY_AT_UPDATE`] or [`COPY_AT_TRAP`] (set by any CPU, cleared by the owner). One
    /// word, so an update costs the same whether an RT CPU's copy waits or none does.
    pending: [AtomicU8; MAX_CPUS],
    /// Per CPU: it copies only at synchronous traps (set once at boot).
    copy_at_traps: [AtomicBool; MAX_CPUS],
}

impl Default for CpuStats {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuStats {
    pub const fn new() -> Self {
        Self {
            own: [const { Word::new(0) }; MAX_CPUS * BLOCK_WORDS],
            channel: Once::new(),
            pending: [const { AtomicU8::new(NO_COPY) }; MAX_CPUS],
            copy_at_traps: [const { AtomicBool::new(false) }; MAX_CPUS],
        }
    }

    #[inline]
    fn own_block(&self, cpu: usize) -> Option<Block<'_>> {
        let words = self.own.get(cpu * BLOCK_WORDS..(cpu + 1) * BLOCK_WORDS)?;
        Block::own(words)
    }

    /// From now on every update also goes to `channel`'s copy (hv at boot, once): each CPU
    /// copies its whole block there at its next update.
    pub fn attach(&self, channel: Channel<'static>) {
        self.channel.call_once(|| channel);
        self.recopy();
    }

    /// Asks every CPU to copy its whole block to the channel at its next update (a Linux
    /// restart: Linux may have scribbled over the copies).
    pub fn recopy(&self) {
        for (pending, at_traps) in self.pending.iter().zip(&self.copy_at_traps) {
            let when = if at_traps.load(Ordering::Relaxed) {
                COPY_AT_TRAP
            } else {
                COPY_AT_UPDATE
            };
            pending.store(when, Ordering::Relaxed);
        }
    }

    /// CPU `cpu` runs an RT partition's vCPU: the copy a Linux restart asks for waits for
    /// its next synchronous trap ([`Self::at_trap`]), so Linux's restarts never lengthen
    /// its interrupt path (hv at boot, before the CPU runs).
    pub fn copy_at_traps(&self, cpu: usize) {
        if let Some(flag) = self.copy_at_traps.get(cpu) {
            flag.store(true, Ordering::Relaxed);
        }
    }

    /// CPU `cpu` took a synchronous trap (only CPU `cpu` calls this, interrupts masked):
    /// the copy a Linux restart asked for, if any, happens now.
    #[inline]
    pub fn at_trap(&self, cpu: usize) {
        if self
            .pending
            .get(cpu)
            .is_some_and(|p| p.load(Ordering::Relaxed) != NO_COPY)
        {
            self.copy_now(cpu);
        }
    }

    fn copy_now(&self, cpu: usize) {
        let own = self.own_block(cpu);
        let mirror = self.channel.get().and_then(|ch| Block::in_channel(ch, cpu));
        if let (Some(own), Some(mirror)) = (own, mirror) {
            self.pending[cpu].store(NO_COPY, Ordering::Relaxed);
            hv_stats::copy_all(own, mirror);
        }
    }

    /// Adds `counts` to physical CPU `cpu`'s block. Only CPU `cpu` may call this, with
    /// interrupts masked (hv's traps and interrupt handlers): that is the block's lock.
    #[inline]
    pub fn add(&self, cpu: usize, counts: &[(Counter, u64)]) {
        let Some(own) = self.own_block(cpu) else {
            return;
        };
        let mirror = self.channel.get().and_then(|ch| Block::in_channel(ch, cpu));
        hv_stats::add(own, mirror, counts);
        if mirror.is_some() && self.pending[cpu].load(Ordering::Relaxed) == COPY_AT_UPDATE {
            self.copy_now(cpu);
        }
    }

    /// One consistent copy of CPU `cpu`'s counters, from any CPU (None: never written, or
    /// mid-update on each of a thousand tries).
    pub fn read(&self, cpu: usize) -> Option<Counts> {
        match hv_stats::read(self.own_block(cpu)?, 1000) {
            Ok((_, counts)) => Some(counts),
            Err(ReadError::NeverWritten | ReadError::Busy) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use channel::Layout;
    use channel::Region;
    use std::sync::Arc;

    const WORDS: usize = 8192;

    fn leaked_channel() -> (&'static [Word], Channel<'static>) {
        let words: &'static [Word] = Vec::leak((0..WORDS).map(|_| Word::new(0)).collect());
        let ch = Channel::new(Region::new(words), Layout::new(WORDS, 2).unwrap()).unwrap();
        (words, ch)
    }

    fn channel_copy(ch: &Channel, cpu: usize) -> Counts {
        hv_stats::read(Block::in_channel(ch, cpu).unwrap(), 4)
            .unwrap()
            .1
    }

    #[test]
    fn counts_stay_per_cpu_and_reach_the_channel_once_attached() {
        let stats = CpuStats::new();
        assert!(stats.read(2).is_none());
        stats.add(2, &[(Counter::IrqsForwarded, 1), (Counter::IrqsTaken, 1)]);
        stats.add(0, &[(Counter::TrapConsole, 3)]);
        let (words, ch) = leaked_channel();
        stats.attach(ch);
        stats.add(2, &[(Counter::IrqsForwarded, 1), (Counter::IrqsTaken, 1)]);
        let two = stats.read(2).unwrap();
        assert_eq!(two.get(Counter::IrqsForwarded), 2);
        assert_eq!(two.get(Counter::TrapConsole), 0);
        assert_eq!(stats.read(0).unwrap().get(Counter::TrapConsole), 3);
        // CPU 2's first update after attaching copied its whole block.
        assert_eq!(channel_copy(&ch, 2), two);
        // CPU 0 has not updated since: its channel copy is not written yet.
        assert!(hv_stats::read(Block::in_channel(&ch, 0).unwrap(), 4).is_err());
        // Linux scribbles, then restarts: the next update repairs the copy.
        for w in words {
            w.store(u64::MAX / 3, Ordering::Relaxed);
        }
        stats.recopy();
        stats.add(2, &[(Counter::TrapHvc, 1)]);
        let two = stats.read(2).unwrap();
        assert_eq!(channel_copy(&ch, 2), two);
        assert_eq!(stats.read(2).unwrap().get(Counter::IrqsForwarded), 2);
        assert!(stats.read(MAX_CPUS).is_none());
        stats.add(MAX_CPUS, &[(Counter::TrapHvc, 1)]);
    }

    #[test]
    fn an_rt_cpu_repairs_its_copy_at_a_trap_never_at_an_update() {
        let stats = CpuStats::new();
        stats.copy_at_traps(3);
        let (words, ch) = leaked_channel();
        stats.attach(ch);
        stats.add(3, &[(Counter::IrqsTaken, 1)]);
        stats.add(1, &[(Counter::IrqsTaken, 1)]);
        for w in words {
            w.store(u64::MAX / 3, Ordering::Relaxed);
        }
        stats.recopy();
        stats.add(3, &[(Counter::IrqsForwarded, 1)]);
        stats.add(1, &[(Counter::IrqsForwarded, 1)]);
        assert_eq!(
            channel_copy(&ch, 1),
            stats.read(1).unwrap(),
            "CPU 1 copies at once"
        );
        let copy = hv_stats::read(Block::in_channel(&ch, 3).unwrap(), 4).map(|(_, c)| c);
        assert_ne!(copy.ok(), stats.read(3), "CPU 3 waits for a trap");
        stats.at_trap(3);
        assert_eq!(channel_copy(&ch, 3), stats.read(3).unwrap());
        // A trap with nothing asked copies nothing (nor breaks anything).
        stats.at_trap(3);
        stats.at_trap(MAX_CPUS);
        assert_eq!(channel_copy(&ch, 3), stats.read(3).unwrap());
    }

    /// Writers on their own CPUs (threads) and a reader of every block: every copy the
    /// reader takes is whole (the writers add to two counters together).
    #[test]
    fn concurrent_readers_never_see_a_torn_block() {
        let stats = Arc::new(CpuStats::new());
        let writers: Vec<_> = (0..2)
            .map(|cpu| {
                let stats = stats.clone();
                std::thread::spawn(move || {
                    for _ in 0..20_000 {
                        stats.add(cpu, &[(Counter::IrqsTaken, 1), (Counter::IrqsForwarded, 1)]);
                    }
                })
            })
            .collect();
        let mut seen = 0;
        while seen < 2_000 {
            for cpu in 0..2 {
                if let Some(s) = stats.read(cpu) {
                    assert_eq!(s.get(Counter::IrqsTaken), s.get(Counter::IrqsForwarded));
                    seen += 1;
                }
            }
        }
        for w in writers {
            w.join().unwrap();
        }
        assert_eq!(stats.read(1).unwrap().get(Counter::IrqsTaken), 20_000);
    }
}
