//! Parameters, Linux -> RT, published RCU-style.
//!
//! Linux's writer (one at a time, serialized by a lock on the Linux side) builds a new
//! version in a free slot and publishes it with one release store of `current`
//! (version << 8 | slot). An RT reader takes `current` without waiting, announces it in
//! its CPU's reader record (which doubles as "the version this CPU holds"), and copies the
//! slot into its own memory, where it checks the slot's version before and after the copy
//! (seqlock-style), the checksum, the schema and every value's range. Anything wrong: the
//! reader keeps its last good copy and counts the event; it never retries, spins or waits.
//!
//! The grace period is Linux's: a slot is reused only when it is not current and no
//! reader record names it. Reader: announce; fence(SeqCst); re-load `current`. Writer:
//! store `current`; fence(SeqCst) ... fence(SeqCst); scan the records. Either the writer's
//! scan sees the announcement (and leaves the slot alone) or the reader's re-load sees the
//! newer `current` (and the reader gives up this round, counting it as contended).
//!
//! This module never trusts a word Linux wrote: every index is checked against the layout.

use crate::checksum::Fnv64;
use crate::layout::Channel;
use crate::schema::{Schema, SchemaError};
use crate::sync::{fence, Ordering};

/// Words at the start of a slot: version (0 while being written), schema id and payload
/// length, checksum, reserved.
pub const SLOT_HEADER_WORDS: usize = 4;
/// The largest payload any geometry may carry (the standard slot's).
pub const PAYLOAD_MAX: usize = 60;

/// Offsets inside a reader record (`layout::READER_WORDS` per RT CPU on lines of its
/// own, written by that CPU's reader).
const HOLDS: usize = 0;
const ACCEPTED: usize = 1;
const REJECTED: usize = 2;
const CONTENDED: usize = 3;
const LAST_REJECT: usize = 4;

fn pack(version: u64, slot: usize) -> u64 {
    version << 8 | slot as u64
}

/// (version, slot) of a `current` or `holds` word.
fn unpack(word: u64) -> (u64, usize) {
    (word >> 8, (word & 0xff) as usize)
}

fn checksum(version: u64, meta: u64, payload: &[u64]) -> u64 {
    Fnv64::new()
        .word(version)
        .word(meta)
        .words(payload)
        .finish()
}

fn payload_capacity(channel: &Channel) -> usize {
    channel
        .layout
        .geometry
        .slot_words
        .saturating_sub(SLOT_HEADER_WORDS)
        .min(PAYLOAD_MAX)
}

/// A validated copy of one published version, in the reader's own memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Snapshot {
    pub version: u64,
    pub schema: u32,
    len: usize,
    words: [u64; PAYLOAD_MAX],
}

impl Snapshot {
    pub fn words(&self) -> &[u64] {
        &self.words[..self.len]
    }

    /// Parameter `index` as the signed value the schema describes.
    pub fn value(&self, index: usize) -> Option<i64> {
        self.words().get(index).map(|&w| w as i64)
    }
}

/// Why a published version was not taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reject {
    /// `current` names version 0 or a slot that does not exist.
    BadCurrent,
    /// The slot's version is not the one `current` names, or changed during the copy.
    Torn,
    /// The payload length is beyond the slot.
    Size,
    Checksum,
    /// Another schema, a wrong length or a value out of range.
    Schema,
}

impl Reject {
    fn code(self) -> u64 {
        match self {
            Reject::BadCurrent => 1,
            Reject::Torn => 2,
            Reject::Size => 3,
            Reject::Checksum => 4,
            Reject::Schema => 5,
        }
    }

    pub fn from_code(code: u64) -> Option<Self> {
        Some(match code {
            1 => Reject::BadCurrent,
            2 => Reject::Torn,
            3 => Reject::Size,
            4 => Reject::Checksum,
            5 => Reject::Schema,
            _ => return None,
        })
    }

    pub fn describe(self) -> &'static str {
        match self {
            Reject::BadCurrent => "current names no valid slot",
            Reject::Torn => "slot changed while being read",
            Reject::Size => "payload larger than its slot",
            Reject::Checksum => "checksum mismatch",
            Reject::Schema => "wrong schema or value out of range",
        }
    }
}

/// Copies the version `current` names, checking it; no announcement (used by the RT
/// reader after announcing, and by Linux, which may simply try again).
fn copy_version(channel: &Channel, current: u64, schema: &Schema) -> Result<Snapshot, Reject> {
    let (region, layout) = (channel.region, &channel.layout);
    let (version, slot) = unpack(current);
    if version == 0 || slot >= layout.slots {
        return Err(Reject::BadCurrent);
    }
    let at = layout.slot(slot);
    let mut header = [0u64; SLOT_HEADER_WORDS];
    region.copy_out(at, &mut header);
    if header[0] != version {
        return Err(Reject::Torn);
    }
    let meta = header[1];
    let len = (meta >> 32) as usize;
    if len > payload_capacity(channel) {
        return Err(Reject::Size);
    }
    let mut snapshot = Snapshot {
        version,
        schema: meta as u32,
        len,
        words: [0; PAYLOAD_MAX],
    };
    region.copy_out(at + SLOT_HEADER_WORDS, &mut snapshot.words[..len]);
    // Pairs with the writer's release fence after zeroing the version: if any payload word
    // came from a newer write, this load sees that write's version (0 or newer).
    fence(Ordering::Acquire);
    if region.load(at, Ordering::Relaxed) != version {
        return Err(Reject::Torn);
    }
    if checksum(version, meta, snapshot.words()) != header[2] {
        return Err(Reject::Checksum);
    }
    if snapshot.schema != schema.id {
        return Err(Reject::Schema);
    }
    schema
        .check(snapshot.words())
        .map_err(|_: SchemaError| Reject::Schema)?;
    Ok(snapshot)
}

/// What one [`ParamReader::refresh`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refresh {
    /// `current` is the version this CPU already holds (one load).
    Unchanged,
    /// A new version was taken.
    Accepted(u64),
    /// Linux published again during the announcement: nothing read, try next time.
    Contended,
    /// The version was garbage: the last good copy stays.
    Rejected(Reject),
}

/// The RT side of one RT CPU. Its `&mut self` methods are the proof that one thread at a
/// time uses this CPU's reader record: the RT kernel keeps each in a locked per-CPU slot.
#[derive(Clone, Debug)]
pub struct ParamReader {
    /// Word offset of this CPU's reader record.
    record: usize,
    holds: u64,
    good: Option<Snapshot>,
    accepted: u64,
    rejected: u64,
    contended: u64,
}

impl ParamReader {
    /// The reader of RT CPU `cpu` (None if the layout has no such CPU). It starts holding
    /// nothing, so its first refresh reads whatever is current.
    pub fn new(channel: &Channel, cpu: usize) -> Option<Self> {
        (cpu < channel.layout.rt_cpus).then_some(Self {
            record: channel.layout.reader(cpu),
            holds: 0,
            good: None,
            accepted: 0,
            rejected: 0,
            contended: 0,
        })
    }

    /// The last good version, if any was ever accepted.
    pub fn current(&self) -> Option<&Snapshot> {
        self.good.as_ref()
    }

    /// (accepted, rejected, contended) so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (self.accepted, self.rejected, self.contended)
    }

    /// Takes the current version if it is new and good. Bounded: a fixed number of loads
    /// and stores, whatever Linux does.
    pub fn refresh(&mut self, channel: &Channel, schema: &Schema) -> Refresh {
        let (region, layout) = (channel.region, &channel.layout);
        let record = self.record;
        let current = region.load(layout.current, Ordering::Acquire);
        if current == self.holds {
            return Refresh::Unchanged;
        }
        region.store(record + HOLDS, current, Ordering::Relaxed);
        fence(Ordering::SeqCst);
        let again = region.load(layout.current, Ordering::Acquire);
        let outcome = if again != current {
            // Whatever we announced may already be reused: read nothing this round.
            region.store(record + HOLDS, self.holds, Ordering::Relaxed);
            self.contended += 1;
            region.store(record + CONTENDED, self.contended, Ordering::Relaxed);
            return Refresh::Contended;
        } else {
            self.holds = current;
            copy_version(channel, current, schema)
        };
        match outcome {
            Ok(snapshot) => {
                self.good = Some(snapshot);
                self.accepted += 1;
                region.store(record + ACCEPTED, self.accepted, Ordering::Relaxed);
                Refresh::Accepted(snapshot.version)
            }
            Err(why) => {
                self.rejected += 1;
                region.store(record + REJECTED, self.rejected, Ordering::Relaxed);
                region.store(record + LAST_REJECT, why.code(), Ordering::Relaxed);
                Refresh::Rejected(why)
            }
        }
    }
}

/// An RT CPU's reader record as Linux sees it (counts written by the RT side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReaderRecord {
    /// Version announced (0: none yet).
    pub holds: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub contended: u64,
    pub last_reject: Option<Reject>,
}

pub fn reader_record(channel: &Channel, cpu: usize) -> Option<ReaderRecord> {
    (cpu < channel.layout.rt_cpus).then(|| {
        let at = channel.layout.reader(cpu);
        let load = |i| channel.region.load(at + i, Ordering::Relaxed);
        ReaderRecord {
            holds: unpack(load(HOLDS)).0,
            accepted: load(ACCEPTED),
            rejected: load(REJECTED),
            contended: load(CONTENDED),
            last_reject: Reject::from_code(load(LAST_REJECT)),
        }
    })
}

/// Why Linux could not read or publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublishError {
    /// The payload is longer than a slot holds.
    TooLarge { len: usize, capacity: usize },
    /// Every slot is current or held by an RT reader (cannot happen with honest reader
    /// records: there are RT CPUs + 2 slots).
    NoFreeSlot,
}

/// Linux's view of the published version: nothing yet, or garbage, or a good copy.
pub fn read_published(channel: &Channel, schema: &Schema) -> Result<Option<Snapshot>, Reject> {
    // Linux may retry (a writer may be mid-publish); a few tries cover a real race.
    let mut last = Reject::Torn;
    for _ in 0..8 {
        let current = channel
            .region
            .load(channel.layout.current, Ordering::Acquire);
        if current == 0 {
            return Ok(None);
        }
        match copy_version(channel, current, schema) {
            Ok(s)
                if channel
                    .region
                    .load(channel.layout.current, Ordering::Relaxed)
                    == current =>
            {
                return Ok(Some(s))
            }
            Ok(_) => last = Reject::Torn,
            Err(e @ Reject::Torn) => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum GracePeriod {
    Observe,
    #[cfg(all(test, loom))]
    Ignore,
}

/// Linux's writer. Only one may publish at a time: Linux serializes its writers with its
/// own lock (`rtctl` holds an `flock`), and `&mut self` carries that within a process.
#[derive(Debug, Default)]
pub struct Publisher(());

impl Publisher {
    /// To be called with the Linux-side writer lock held.
    pub fn new() -> Self {
        Self(())
    }

    /// Publishes `payload` under `schema_id` as the next version; returns its number.
    pub fn publish(
        &mut self,
        channel: &Channel,
        schema_id: u32,
        payload: &[u64],
    ) -> Result<u64, PublishError> {
        self.publish_with(channel, schema_id, payload, GracePeriod::Observe, || {})
    }

    /// `publish`, calling `midway` after half the payload is in the slot and before the
    /// rest (a test hook: `rtctl set --pause-after-slot` stops itself there, to show that
    /// a writer stopped mid-publish costs the RT side nothing).
    pub fn publish_pausing(
        &mut self,
        channel: &Channel,
        schema_id: u32,
        payload: &[u64],
        midway: impl FnOnce(),
    ) -> Result<u64, PublishError> {
        self.publish_with(channel, schema_id, payload, GracePeriod::Observe, midway)
    }

    /// `publish`, or (`GracePeriod::Ignore`, for the model that must catch it) a writer
    /// that skips the grace period.
    pub(crate) fn publish_with(
        &mut self,
        channel: &Channel,
        schema_id: u32,
        payload: &[u64],
        grace: GracePeriod,
        midway: impl FnOnce(),
    ) -> Result<u64, PublishError> {
        let (region, layout) = (channel.region, &channel.layout);
        let capacity = payload_capacity(channel);
        if payload.len() > capacity {
            return Err(PublishError::TooLarge {
                len: payload.len(),
                capacity,
            });
        }
        // Pairs with each reader's fence between its announcement and its re-load.
        fence(Ordering::SeqCst);
        let current = region.load(layout.current, Ordering::Relaxed);
        let (version, slot) = unpack(current);
        let valid = version != 0 && slot < layout.slots;
        let mut busy = [false; crate::layout::MAX_RT_CPUS + 2];
        if valid {
            busy[slot] = true;
        }
        let scanned = if grace == GracePeriod::Observe {
            layout.rt_cpus
        } else {
            0
        };
        for cpu in 0..scanned {
            // Version 0: the CPU holds nothing (it never read, or Linux zeroed it).
            let (held_version, held) =
                unpack(region.load(layout.reader(cpu) + HOLDS, Ordering::Relaxed));
            if let Some(b) = busy
                .get_mut(held)
                .filter(|_| held_version != 0 && held < layout.slots)
            {
                *b = true;
            }
        }
        let free = (0..layout.slots)
            .find(|&s| !busy[s])
            .ok_or(PublishError::NoFreeSlot)?;
        let next = if valid && version < (1 << 56) - 1 {
            version + 1
        } else {
            1
        };
        let at = layout.slot(free);
        let meta = (payload.len() as u64) << 32 | u64::from(schema_id);
        region.store(at, 0, Ordering::Relaxed);
        fence(Ordering::Release);
        region.store(at + 1, meta, Ordering::Relaxed);
        region.store(at + 2, checksum(next, meta, payload), Ordering::Relaxed);
        let (first, rest) = payload.split_at(payload.len() / 2);
        region.copy_in(at + SLOT_HEADER_WORDS, first);
        midway();
        region.copy_in(at + SLOT_HEADER_WORDS + first.len(), rest);
        region.store(at, next, Ordering::Release);
        region.store(layout.current, pack(next, free), Ordering::Release);
        fence(Ordering::SeqCst);
        Ok(next)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::region::{testing::zeroed, Region};
    use crate::schema::{CONTROL, MAX_PARAMS};

    const WORDS: usize = 8192;

    fn values(edit: impl FnOnce(&mut [u64])) -> ([u64; MAX_PARAMS], usize) {
        let mut w = [0u64; MAX_PARAMS];
        let n = CONTROL.defaults(&mut w);
        edit(&mut w[..n]);
        (w, n)
    }

    fn with_channel(rt_cpus: usize, f: impl FnOnce(&Channel)) {
        let words = zeroed(WORDS);
        let ch = Channel::new(Region::new(&words), Layout::new(WORDS, rt_cpus).unwrap()).unwrap();
        f(&ch);
    }

    #[test]
    fn a_published_version_is_read_once_then_unchanged() {
        with_channel(2, |ch| {
            let mut reader = ParamReader::new(ch, 1).unwrap();
            assert_eq!(
                reader.refresh(ch, &CONTROL),
                Refresh::Unchanged,
                "nothing yet"
            );
            let (w, n) = values(|w| w[1] = 2_500);
            let v = Publisher::new().publish(ch, CONTROL.id, &w[..n]).unwrap();
            assert_eq!(v, 1);
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Accepted(1));
            assert_eq!(reader.current().unwrap().value(1), Some(2_500));
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Unchanged);
            let rec = reader_record(ch, 1).unwrap();
            assert_eq!((rec.holds, rec.accepted, rec.rejected), (1, 1, 0));
            assert_eq!(reader_record(ch, 0).unwrap().holds, 0, "CPU 0 never read");
            assert_eq!(reader_record(ch, 2), None);
            assert_eq!(
                read_published(ch, &CONTROL).unwrap().unwrap().words(),
                &w[..n]
            );
        });
    }

    #[test]
    fn the_writer_never_reuses_a_slot_a_reader_holds_or_the_current_one() {
        with_channel(2, |ch| {
            let mut readers = [
                ParamReader::new(ch, 0).unwrap(),
                ParamReader::new(ch, 1).unwrap(),
            ];
            let mut publisher = Publisher::new();
            let slot_of =
                |ch: &Channel| unpack(ch.region.load(ch.layout.current, Ordering::Relaxed)).1;
            let (w, n) = values(|_| ());
            publisher.publish(ch, CONTROL.id, &w[..n]).unwrap();
            readers[0].refresh(ch, &CONTROL);
            let held0 = slot_of(ch);
            publisher.publish(ch, CONTROL.id, &w[..n]).unwrap();
            readers[1].refresh(ch, &CONTROL);
            let held1 = slot_of(ch);
            // Many more versions: none may land in either held slot.
            for _ in 0..20 {
                publisher.publish(ch, CONTROL.id, &w[..n]).unwrap();
                let s = slot_of(ch);
                assert!(s != held0 && s != held1, "slot {s} is held");
            }
            // The holders still see their versions intact (the copy is theirs, and the
            // slots too).
            assert_eq!(readers[0].current().unwrap().version, 1);
            assert_eq!(readers[1].refresh(ch, &CONTROL), Refresh::Accepted(22));
        });
    }

    #[test]
    fn garbage_is_counted_and_the_last_good_version_kept() {
        with_channel(1, |ch| {
            let mut reader = ParamReader::new(ch, 0).unwrap();
            let (w, n) = values(|w| w[0] = 1_500);
            Publisher::new().publish(ch, CONTROL.id, &w[..n]).unwrap();
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Accepted(1));
            let r = ch.region;
            let current = ch.layout.current;
            let cases: [(&str, &dyn Fn(), Reject); 5] = [
                (
                    "slot past the end",
                    &|| r.store(current, pack(2, 200), Ordering::Relaxed),
                    Reject::BadCurrent,
                ),
                (
                    "version mismatch",
                    &|| r.store(current, pack(9, 1), Ordering::Relaxed),
                    Reject::Torn,
                ),
                (
                    "payload flipped",
                    &|| {
                        let mut p = Publisher::new();
                        p.publish(ch, CONTROL.id, &w[..n]).unwrap();
                        let (_, s) = unpack(r.load(current, Ordering::Relaxed));
                        let at = ch.layout.slot(s) + SLOT_HEADER_WORDS;
                        r.store(at, r.load(at, Ordering::Relaxed) ^ 4, Ordering::Relaxed);
                    },
                    Reject::Checksum,
                ),
                (
                    "length too big",
                    &|| {
                        Publisher::new().publish(ch, CONTROL.id, &w[..n]).unwrap();
                        let (_, s) = unpack(r.load(current, Ordering::Relaxed));
                        r.store(
                            ch.layout.slot(s) + 1,
                            1000 << 32 | u64::from(CONTROL.id),
                            Ordering::Relaxed,
                        );
                    },
                    Reject::Size,
                ),
                (
                    "other schema",
                    &|| {
                        Publisher::new()
                            .publish(ch, CONTROL.id ^ 2, &w[..n])
                            .unwrap();
                    },
                    Reject::Schema,
                ),
            ];
            for (i, (what, corrupt, why)) in cases.iter().enumerate() {
                corrupt();
                assert_eq!(
                    reader.refresh(ch, &CONTROL),
                    Refresh::Rejected(*why),
                    "{what}"
                );
                assert_eq!(reader.current().unwrap().value(0), Some(1_500), "{what}");
                assert_eq!(reader.counts().1, i as u64 + 1);
                let rec = reader_record(ch, 0).unwrap();
                assert_eq!((rec.rejected, rec.last_reject), (i as u64 + 1, Some(*why)));
                // Seen once: the same garbage is not counted again.
                assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Unchanged, "{what}");
            }
        });
    }

    #[test]
    fn a_value_out_of_range_with_a_valid_checksum_is_refused() {
        with_channel(1, |ch| {
            let mut reader = ParamReader::new(ch, 0).unwrap();
            let (w, n) = values(|w| w[8] = 5);
            Publisher::new().publish(ch, CONTROL.id, &w[..n]).unwrap();
            assert_eq!(
                reader.refresh(ch, &CONTROL),
                Refresh::Rejected(Reject::Schema)
            );
            assert_eq!(reader.current(), None);
            assert_eq!(read_published(ch, &CONTROL), Err(Reject::Schema));
        });
    }

    #[test]
    fn a_writer_stopped_mid_publish_leaves_the_current_version_readable() {
        with_channel(1, |ch| {
            let (w, n) = values(|w| w[0] = 1);
            Publisher::new().publish(ch, CONTROL.id, &w[..n]).unwrap();
            // A second writer that stopped after zeroing its slot's version: current still
            // names the first, whose slot it did not touch.
            let (_, s) = unpack(ch.region.load(ch.layout.current, Ordering::Relaxed));
            let other = (s + 1) % ch.layout.slots;
            ch.region.store(ch.layout.slot(other), 0, Ordering::Relaxed);
            ch.region.store(
                ch.layout.slot(other) + SLOT_HEADER_WORDS,
                77,
                Ordering::Relaxed,
            );
            let mut reader = ParamReader::new(ch, 0).unwrap();
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Accepted(1));
            assert_eq!(reader.current().unwrap().value(0), Some(1));
        });
    }

    #[test]
    fn midway_through_a_publish_readers_keep_the_current_version() {
        with_channel(2, |ch| {
            let (w, n) = values(|w| w[0] = 1);
            let mut p = Publisher::new();
            p.publish(ch, CONTROL.id, &w[..n]).unwrap();
            let mut reader = ParamReader::new(ch, 0).unwrap();
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Accepted(1));
            let (w2, _) = values(|w| w[0] = 2);
            let mut paused = false;
            let v = p
                .publish_pausing(ch, CONTROL.id, &w2[..n], || {
                    paused = true;
                    // The slot is half written; nothing names it yet.
                    assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Unchanged);
                    assert_eq!(read_published(ch, &CONTROL).unwrap().unwrap().version, 1);
                    let mut fresh = ParamReader::new(ch, 1).unwrap();
                    assert_eq!(fresh.refresh(ch, &CONTROL), Refresh::Accepted(1));
                })
                .unwrap();
            assert!(paused);
            assert_eq!(v, 2);
            assert_eq!(reader.refresh(ch, &CONTROL), Refresh::Accepted(2));
            assert_eq!(reader.current().unwrap().value(0), Some(2));
        });
    }

    #[test]
    fn with_no_reader_holding_anything_the_writer_alternates_two_slots() {
        with_channel(2, |ch| {
            let (w, n) = values(|_| ());
            let mut p = Publisher::new();
            for v in 1..=4u64 {
                assert_eq!(p.publish(ch, CONTROL.id, &w[..n]), Ok(v));
                let current = ch.region.load(ch.layout.current, Ordering::Relaxed);
                assert_eq!(unpack(current), (v, (v as usize + 1) % 2), "version {v}");
            }
        });
    }

    #[test]
    fn an_oversized_payload_is_refused_by_the_writer() {
        with_channel(1, |ch| {
            assert_eq!(
                Publisher::new().publish(ch, 1, &[0; 61]),
                Err(PublishError::TooLarge {
                    len: 61,
                    capacity: 60
                })
            );
        });
    }

    #[test]
    fn reader_records_full_of_garbage_still_leave_the_writer_a_slot() {
        with_channel(2, |ch| {
            for cpu in 0..2 {
                ch.region
                    .store(ch.layout.reader(cpu), u64::MAX, Ordering::Relaxed);
            }
            let (w, n) = values(|_| ());
            assert!(Publisher::new().publish(ch, CONTROL.id, &w[..n]).is_ok());
        });
    }
}
