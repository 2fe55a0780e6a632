//! Property tests of the channel against a Linux that may write anything anywhere: the
//! RT side never panics, never accepts a version that was not published, keeps its last
//! good one; the rings never lose or duplicate an accepted record.
#![cfg(not(loom))]

use channel::hv_stats;
use channel::params::{ParamReader, Publisher, Refresh};
use channel::ring::{Consumer, Direction, Producer, Record, RingError};
use channel::schema::{CONTROL, MAX_PARAMS};
use channel::telemetry::{read_telemetry, Telemetry, TelemetryWriter};
use channel::{Channel, Layout, Region, Word};
use proptest::prelude::*;
use std::sync::atomic::Ordering;

const WORDS: usize = 4864;

fn zeroed() -> Vec<Word> {
    (0..WORDS).map(|_| Word::new(0)).collect()
}

fn channel(words: &[Word]) -> Channel<'_> {
    Channel::new(Region::new(words), Layout::new(WORDS, 2).unwrap()).unwrap()
}

/// A payload of CONTROL with every value in range, from seeds.
fn payload(seeds: &[u64]) -> Vec<u64> {
    CONTROL
        .params
        .iter()
        .zip(seeds.iter().cycle())
        .map(|(p, s)| (p.min + (*s % (p.max - p.min + 1) as u64) as i64) as u64)
        .collect()
}

/// One thing Linux does to the region.
#[derive(Clone, Debug)]
enum Scribble {
    /// An honest publish of a payload.
    Publish(Vec<u64>),
    /// One word anywhere set to a value.
    Word(usize, u64),
    /// One bit flipped anywhere.
    Flip(usize, u32),
    /// A run of words filled with random data.
    Fill(usize, Vec<u64>),
}

fn scribble() -> impl Strategy<Value = Scribble> {
    prop_oneof![
        prop::collection::vec(any::<u64>(), 1..4).prop_map(|s| Scribble::Publish(payload(&s))),
        (0..WORDS, any::<u64>()).prop_map(|(a, v)| Scribble::Word(a, v)),
        (0..WORDS, 0..64u32).prop_map(|(a, b)| Scribble::Flip(a, b)),
        (0..WORDS, prop::collection::vec(any::<u64>(), 1..300))
            .prop_map(|(a, v)| Scribble::Fill(a, v)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever Linux writes, an RT reader only ever holds a payload that was published
    /// (or nothing), and it never panics; honest publishes after the scribbling are
    /// accepted again once Linux stops scribbling the slot it uses.
    #[test]
    fn rt_readers_accept_only_published_versions(ops in prop::collection::vec(scribble(), 1..40)) {
        let words = zeroed();
        let ch = channel(&words);
        let mut publisher = Publisher::new();
        let mut readers = [ParamReader::new(&ch, 0).unwrap(), ParamReader::new(&ch, 1).unwrap()];
        let mut published: Vec<Vec<u64>> = Vec::new();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Scribble::Publish(p) => {
                    publisher.publish(&ch, CONTROL.id, p).unwrap();
                    published.push(p.clone());
                }
                Scribble::Word(at, v) => words[*at].store(*v, Ordering::Relaxed),
                Scribble::Flip(at, bit) => {
                    words[*at].fetch_xor(1 << bit, Ordering::Relaxed);
                }
                Scribble::Fill(at, vs) => {
                    for (w, v) in words[*at..].iter().zip(vs) {
                        w.store(*v, Ordering::Relaxed);
                    }
                }
            }
            let reader = &mut readers[i % 2];
            let before = reader.current().copied();
            let outcome = reader.refresh(&ch, &CONTROL);
            match reader.current() {
                Some(s) => prop_assert!(
                    published.iter().any(|p| p[..] == *s.words()),
                    "accepted a payload never published: {:?}", s.words()
                ),
                None => prop_assert!(before.is_none()),
            }
            if !matches!(outcome, Refresh::Accepted(_)) {
                prop_assert_eq!(reader.current().copied(), before, "kept the last good copy");
            }
            prop_assert!(CONTROL.check(reader.current().map_or(&[][..], |s| s.words())).is_ok()
                || reader.current().is_none());
        }
    }

    /// Random bytes over the whole region, then RT-side operations of every kind: none
    /// panics, and none accepts anything.
    #[test]
    fn random_regions_never_panic_the_rt_side(fill in prop::collection::vec(any::<u64>(), WORDS)) {
        let words: Vec<Word> = fill.iter().map(|&v| Word::new(v)).collect();
        let ch = channel(&words);
        for cpu in 0..2 {
            let mut r = ParamReader::new(&ch, cpu).unwrap();
            let first = r.refresh(&ch, &CONTROL);
            prop_assert!(!matches!(first, Refresh::Accepted(_)), "{first:?}");
            prop_assert_eq!(r.refresh(&ch, &CONTROL), Refresh::Unchanged);
            TelemetryWriter::new(&ch, cpu).unwrap().publish(&ch, &Telemetry::default());
            prop_assert!(read_telemetry(&ch, cpu, 2).is_ok());
        }
        for dir in [Direction::ToRt, Direction::ToLinux] {
            let mut c = Consumer::attach(&ch, dir);
            for _ in 0..300 {
                if c.pop(&ch).is_none() { break; }
            }
            let _ = Producer::attach(&ch, dir).push(&ch, &Record::new(1, b"x").unwrap());
        }
    }

    /// Any interleaving of pushes and pops: what comes out is exactly what was accepted,
    /// in order, and a push is refused only when the ring holds its capacity.
    #[test]
    fn rings_never_lose_or_duplicate_accepted_records(ops in prop::collection::vec(any::<bool>(), 1..1500)) {
        let words = zeroed();
        let ch = channel(&words);
        let mut p = Producer::attach(&ch, Direction::ToLinux);
        let mut c = Consumer::attach(&ch, Direction::ToLinux);
        let (mut accepted, mut popped) = (Vec::new(), Vec::new());
        let mut next = 0u32;
        for push in ops {
            if push {
                let record = Record::new(next, &next.to_le_bytes()).unwrap();
                match p.push(&ch, &record) {
                    Ok(()) => accepted.push(next),
                    Err(e) => {
                        prop_assert_eq!(e, RingError::Full);
                        prop_assert_eq!(accepted.len() - popped.len(), 256);
                    }
                }
                next += 1;
            } else if let Some(r) = c.pop(&ch) {
                let r = r.unwrap();
                prop_assert_eq!(r.bytes(), &r.kind.to_le_bytes()[..]);
                popped.push(r.kind);
            } else {
                prop_assert_eq!(accepted.len(), popped.len());
            }
        }
        while let Some(r) = c.pop(&ch) {
            popped.push(r.unwrap().kind);
        }
        prop_assert_eq!(&popped, &accepted);
        prop_assert_eq!(p.dropped(), u64::from(next) - accepted.len() as u64);
    }
}

proptest! {
    /// hv's statistics with Linux scribbling over the channel's copy between updates: hv's
    /// own copy always holds exactly what was added (nothing Linux wrote reaches it), the
    /// channel's copy never makes a reader panic, and it is right again after the next
    /// update of every counter.
    #[test]
    fn hv_stats_never_take_what_linux_scribbled(
        steps in prop::collection::vec((0..hv_stats::COUNTER_COUNT, 0..1000u64, any::<Option<(usize, u64)>>()), 1..200)
    ) {
        let words = zeroed();
        let ch = channel(&words);
        let own: Vec<Word> = (0..hv_stats::BLOCK_WORDS).map(|_| Word::new(0)).collect();
        let mine = hv_stats::Block::own(&own).unwrap();
        let theirs = hv_stats::Block::in_channel(&ch, 1).unwrap();
        let mut expected = [0u64; hv_stats::COUNTER_COUNT];
        let at = ch.layout().hv_stats_block(1);
        for (counter, n, scribble) in steps {
            let c = hv_stats::COUNTERS[counter].0;
            hv_stats::add(mine, Some(theirs), &[(c, n)]);
            expected[counter] += n;
            prop_assert_eq!(hv_stats::read(mine, 2).unwrap().1.counts, expected);
            if let Some((word, value)) = scribble {
                words[at + word % hv_stats::BLOCK_WORDS].store(value, Ordering::Relaxed);
            }
            let _ = hv_stats::read(theirs, 2);
        }
        hv_stats::copy_all(mine, theirs);
        prop_assert_eq!(hv_stats::read(theirs, 2).unwrap().1.counts, expected);
    }
}

/// A version made only of values in range and a payload of the right length: the
/// property test above needs `payload` to build only acceptable ones.
#[test]
fn generated_payloads_are_acceptable() {
    for seeds in [[0u64], [u64::MAX], [12345]] {
        let p = payload(&seeds);
        assert_eq!(p.len(), CONTROL.params.len());
        assert!(CONTROL.check(&p).is_ok());
    }
    assert!(CONTROL.params.len() <= MAX_PARAMS);
}
