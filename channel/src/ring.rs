//! Message rings both ways: single producer, single consumer, fixed-size records.
//!
//! The producer owns `head` and the drop count, the consumer owns `tail`; each keeps its
//! own copy and only ever stores it, so a side never trusts the counter it does not own
//! beyond "how many records may I touch": `head - tail` is checked against the capacity
//! and record indices are taken modulo it. A full ring drops the record and counts it
//! (the RT side never waits for Linux to make room); a consumer that finds more records
//! than the ring holds has met a scribbled counter, skips to the producer's head and counts
//! that. Records carry a kind and a length checked against their size.

use crate::layout::{Channel, RingLayout};
use crate::sync::Ordering;

/// Payload bytes of one record (the standard 8-word record less its kind/length word).
pub const RECORD_BYTES: usize = 56;

/// One message: what it is, and up to [`RECORD_BYTES`] bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    pub kind: u32,
    len: u32,
    data: [u8; RECORD_BYTES],
}

impl Record {
    /// A record of `kind` holding `bytes` (None if they do not fit).
    pub fn new(kind: u32, bytes: &[u8]) -> Option<Self> {
        let mut data = [0u8; RECORD_BYTES];
        data.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(Self {
            kind,
            len: bytes.len() as u32,
            data,
        })
    }

    pub fn bytes(&self) -> &[u8] {
        &self.data[..self.len as usize]
    }
}

/// Which ring of the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Commands, Linux -> RT.
    ToRt,
    /// Events and log lines, RT -> Linux.
    ToLinux,
}

fn ring(channel: &Channel, direction: Direction) -> RingLayout {
    match direction {
        Direction::ToRt => channel.layout.to_rt,
        Direction::ToLinux => channel.layout.to_linux,
    }
}

/// Words a record occupies in this ring (at most the standard record's).
fn used_words(ring: &RingLayout) -> usize {
    ring.record_words.min(1 + RECORD_BYTES / 8)
}

/// Why a push or pop did not move a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingError {
    /// Push: no room; the record was dropped and counted.
    Full,
    /// Pop: the counters said more than the ring holds; the consumer resynchronised.
    Corrupt,
    /// Pop: a record whose length exceeds its size; skipped.
    BadRecord,
}

/// The producing end. One per ring; `&mut self` is its exclusivity.
#[derive(Debug)]
pub struct Producer {
    ring: RingLayout,
    head: u64,
    dropped: u64,
}

impl Producer {
    /// Takes up the producer's end where the shared counters left it (after a restart of
    /// either side the ring continues).
    pub fn attach(channel: &Channel, direction: Direction) -> Self {
        let ring = ring(channel, direction);
        let region = channel.region;
        Self {
            ring,
            head: region.load(ring.head, Ordering::Relaxed),
            dropped: region.load(ring.dropped, Ordering::Relaxed),
        }
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Appends `record`, or drops and counts it when the ring is full: one load of the
    /// consumer's tail and a fixed number of stores, never a wait.
    pub fn push(&mut self, channel: &Channel, record: &Record) -> Result<(), RingError> {
        let region = channel.region;
        let ring = self.ring;
        let tail = region.load(ring.tail, Ordering::Acquire);
        if self.head.wrapping_sub(tail) >= ring.capacity as u64 {
            self.dropped = self.dropped.wrapping_add(1);
            region.store(ring.dropped, self.dropped, Ordering::Relaxed);
            return Err(RingError::Full);
        }
        let at = ring.records + (self.head % ring.capacity as u64) as usize * ring.record_words;
        let mut words = [0u64; 1 + RECORD_BYTES / 8];
        words[0] = u64::from(record.len) << 32 | u64::from(record.kind);
        for (w, chunk) in words[1..].iter_mut().zip(record.data.chunks_exact(8)) {
            *w = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        }
        region.copy_in(at, &words[..used_words(&ring)]);
        self.head = self.head.wrapping_add(1);
        region.store(ring.head, self.head, Ordering::Release);
        Ok(())
    }
}

/// The consuming end. One per ring; `&mut self` is its exclusivity.
#[derive(Debug)]
pub struct Consumer {
    ring: RingLayout,
    tail: u64,
    skipped: u64,
}

impl Consumer {
    pub fn attach(channel: &Channel, direction: Direction) -> Self {
        let ring = ring(channel, direction);
        Self {
            ring,
            tail: channel.region.load(ring.tail, Ordering::Relaxed),
            skipped: 0,
        }
    }

    /// Records skipped because the counters or a record were corrupt.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// The oldest record, if any: one load of the producer's head, a fixed number of loads
    /// and one store.
    pub fn pop(&mut self, channel: &Channel) -> Option<Result<Record, RingError>> {
        let region = channel.region;
        let ring = self.ring;
        let head = region.load(ring.head, Ordering::Acquire);
        let available = head.wrapping_sub(self.tail);
        if available == 0 {
            return None;
        }
        if available > ring.capacity as u64 {
            self.skipped = self.skipped.wrapping_add(available);
            self.tail = head;
            region.store(ring.tail, self.tail, Ordering::Release);
            return Some(Err(RingError::Corrupt));
        }
        let at = ring.records + (self.tail % ring.capacity as u64) as usize * ring.record_words;
        let mut words = [0u64; 1 + RECORD_BYTES / 8];
        region.copy_out(at, &mut words[..used_words(&ring)]);
        self.tail = self.tail.wrapping_add(1);
        // Releases the record's words to the producer only after they were read.
        region.store(ring.tail, self.tail, Ordering::Release);
        let len = (words[0] >> 32) as usize;
        let capacity = (used_words(&ring) - 1) * 8;
        if len > capacity {
            self.skipped = self.skipped.wrapping_add(1);
            return Some(Err(RingError::BadRecord));
        }
        let mut data = [0u8; RECORD_BYTES];
        for (chunk, w) in data.chunks_exact_mut(8).zip(&words[1..]) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        Some(Ok(Record {
            kind: words[0] as u32,
            len: len as u32,
            data,
        }))
    }
}

/// (records waiting, records dropped) of a ring, as a third party (status) sees them.
pub fn ring_fill(channel: &Channel, direction: Direction) -> (u64, u64) {
    let ring = ring(channel, direction);
    let load = |at| channel.region.load(at, Ordering::Relaxed);
    (
        load(ring.head).wrapping_sub(load(ring.tail)),
        load(ring.dropped),
    )
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::region::{testing::zeroed, Region};

    fn channel(words: &[crate::Word]) -> Channel<'_> {
        Channel::new(Region::new(words), Layout::new(words.len(), 2).unwrap()).unwrap()
    }

    #[test]
    fn records_come_out_in_order_and_a_full_ring_drops_and_counts() {
        let words = zeroed(8192);
        let ch = channel(&words);
        let mut p = Producer::attach(&ch, Direction::ToLinux);
        let mut c = Consumer::attach(&ch, Direction::ToLinux);
        assert_eq!(c.pop(&ch), None);
        for i in 0..256u32 {
            p.push(&ch, &Record::new(i, &i.to_le_bytes()).unwrap())
                .unwrap();
        }
        let extra = Record::new(999, b"x").unwrap();
        assert_eq!(p.push(&ch, &extra), Err(RingError::Full));
        assert_eq!(ring_fill(&ch, Direction::ToLinux), (256, 1));
        for i in 0..256u32 {
            let r = c.pop(&ch).unwrap().unwrap();
            assert_eq!((r.kind, r.bytes()), (i, &i.to_le_bytes()[..]));
        }
        assert_eq!(c.pop(&ch), None);
        assert_eq!(ring_fill(&ch, Direction::ToLinux), (0, 1));
        assert_eq!(
            ring_fill(&ch, Direction::ToRt),
            (0, 0),
            "the other ring is apart"
        );
    }

    #[test]
    fn both_ends_resume_where_the_counters_left_off() {
        let words = zeroed(8192);
        let ch = channel(&words);
        let line = b"a log line of fifty-six bytes, the most a record holds!!";
        assert_eq!(line.len(), RECORD_BYTES);
        Producer::attach(&ch, Direction::ToRt)
            .push(&ch, &Record::new(7, line).unwrap())
            .unwrap();
        let mut p = Producer::attach(&ch, Direction::ToRt);
        p.push(&ch, &Record::new(8, b"").unwrap()).unwrap();
        assert_eq!(
            Consumer::attach(&ch, Direction::ToRt)
                .pop(&ch)
                .unwrap()
                .unwrap()
                .bytes(),
            line
        );
        let mut c = Consumer::attach(&ch, Direction::ToRt);
        assert_eq!(c.pop(&ch).unwrap().unwrap().kind, 8);
        assert_eq!(c.pop(&ch), None);
        assert!(Record::new(1, &[0; RECORD_BYTES + 1]).is_none());
    }

    #[test]
    fn scribbled_counters_and_lengths_are_skipped_and_counted() {
        let words = zeroed(8192);
        let ch = channel(&words);
        let ring = ch.layout.to_rt;
        let mut c = Consumer::attach(&ch, Direction::ToRt);
        ch.region.store(ring.head, 1 << 40, Ordering::Relaxed);
        assert_eq!(c.pop(&ch), Some(Err(RingError::Corrupt)));
        assert_eq!(c.pop(&ch), None, "resynchronised at the producer's head");
        let mut p = Producer::attach(&ch, Direction::ToRt);
        p.push(&ch, &Record::new(1, b"ok").unwrap()).unwrap();
        let at = ring.records + ((1u64 << 40) % 256) as usize * 8;
        ch.region.store(at, 500 << 32 | 1, Ordering::Relaxed);
        assert_eq!(c.pop(&ch), Some(Err(RingError::BadRecord)));
        assert_eq!(c.skipped(), (1 << 40) + 1);
        // A consumer's tail scribbled ahead of the head: the producer sees a full ring.
        ch.region.store(ring.tail, u64::MAX - 5, Ordering::Relaxed);
        assert_eq!(
            p.push(&ch, &Record::new(1, b"x").unwrap()),
            Err(RingError::Full)
        );
    }
}
