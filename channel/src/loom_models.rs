//! loom models of the concurrent parts (`RUSTFLAGS="--cfg loom" cargo test -p channel
//! --release --lib loom`): every interleaving and every weak-memory outcome loom explores,
//! within a preemption bound that keeps each model to seconds.
//!
//! * publish vs read with slot reuse: an accepted version is never torn, and an honest
//!   writer never makes a reader reject (no slot is rewritten while a reader may be on
//!   it); a writer that skips the grace period is caught;
//! * seqcount telemetry: Linux never takes a torn block;
//! * hv's statistics: neither hv's own copy nor the channel's is ever read torn;
//! * SPSC ring: records arrive once each, in order, whole.

use loom::sync::Arc;
use loom::thread;

use crate::layout::{Channel, Geometry, Layout};
use crate::params::{GracePeriod, ParamReader, Publisher, Refresh};
use crate::region::{Region, Word};
use crate::ring::{Consumer, Direction, Producer, Record};
use crate::schema::{ParamSpec, Schema};
use crate::telemetry::{read_telemetry, Telemetry, TelemetryWriter};

const TINY: Geometry = Geometry {
    line_words: 1,
    slot_words: crate::params::SLOT_HEADER_WORDS + 2,
    telemetry_words: 3,
    ring_capacity: 2,
    record_words: 2,
};

const SPEC: ParamSpec = ParamSpec {
    name: "a",
    unit: "",
    decimals: 0,
    min: 0,
    max: 1000,
    default: 0,
    help: "",
};
static PARAMS: [ParamSpec; 2] = [SPEC, ParamSpec { name: "b", ..SPEC }];
static SCHEMA: Schema = Schema::new("loom", &PARAMS);

fn region(rt_cpus: usize) -> (Arc<Vec<Word>>, Layout) {
    let layout = Layout::with_geometry(TINY, 4096, rt_cpus).unwrap();
    let words = (0..layout.end).map(|_| Word::new(0)).collect();
    (
        Arc::new(words),
        Layout {
            region_words: layout.end,
            ..layout
        },
    )
}

fn channel(words: &[Word], layout: Layout) -> Channel<'_> {
    Channel::new(Region::new(words), layout).unwrap()
}

/// The payload of version `v`: both words derived from it, so a mix of two is visible.
fn payload(v: u64) -> [u64; 2] {
    [v * 10, v * 10 + 1]
}

fn model(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    builder.preemption_bound = Some(3);
    builder.check(f);
}

/// Version 1 is published before the reader starts; the writer publishes 2 and 3, so
/// with three slots (one reader) version 3 reuses version 1's slot unless the reader
/// holds it. The reader refreshes twice.
fn publish_vs_read(grace: GracePeriod) {
    model(move || {
        let (words, layout) = region(1);
        Publisher::new()
            .publish(&channel(&words, layout), SCHEMA.id, &payload(1))
            .unwrap();
        let writer_words = words.clone();
        let writer = thread::spawn(move || {
            let ch = channel(&writer_words, layout);
            let mut p = Publisher::new();
            for v in 2..=3 {
                assert_eq!(
                    p.publish_with(&ch, SCHEMA.id, &payload(v), grace, || {}),
                    Ok(v)
                );
            }
        });
        let ch = channel(&words, layout);
        let mut reader = ParamReader::new(&ch, 0).unwrap();
        for _ in 0..2 {
            match reader.refresh(&ch, &SCHEMA) {
                Refresh::Accepted(v) => {
                    let s = reader.current().unwrap();
                    assert_eq!(s.words(), payload(v), "torn copy accepted");
                }
                Refresh::Unchanged | Refresh::Contended => {}
                Refresh::Rejected(why) => {
                    panic!("an honest writer made the reader reject: {why:?}")
                }
            }
        }
        writer.join().unwrap();
    });
}

#[test]
fn loom_publish_vs_read_never_tears_and_respects_the_grace_period() {
    publish_vs_read(GracePeriod::Observe);
}

/// The model is strong enough to see the bug the grace period prevents.
#[test]
#[should_panic(expected = "an honest writer made the reader reject")]
fn loom_a_writer_skipping_the_grace_period_is_caught() {
    publish_vs_read(GracePeriod::Ignore);
}

#[test]
fn loom_telemetry_is_never_read_torn() {
    model(|| {
        let (words, layout) = region(1);
        let writer_words = words.clone();
        let writer = thread::spawn(move || {
            let ch = channel(&writer_words, layout);
            let mut w = TelemetryWriter::new(&ch, 0).unwrap();
            for n in 1..=2 {
                w.publish(
                    &ch,
                    &Telemetry {
                        periods: n,
                        missed: n,
                        ..Telemetry::default()
                    },
                );
            }
        });
        let ch = channel(&words, layout);
        if let Ok((updates, t)) = read_telemetry(&ch, 0, 2) {
            assert_eq!((t.periods, t.missed), (updates, updates), "torn block");
        }
        writer.join().unwrap();
    });
}

#[test]
fn loom_hv_stats_are_never_read_torn() {
    use crate::hv_stats::{self, Block, Counter};
    model(|| {
        let (words, layout) = region(1);
        let own = Arc::new(
            (0..hv_stats::BLOCK_WORDS)
                .map(|_| Word::new(0))
                .collect::<Vec<_>>(),
        );
        let (writer_words, writer_own) = (words.clone(), own.clone());
        let writer = thread::spawn(move || {
            let ch = channel(&writer_words, layout);
            let mine = Block::own(&writer_own).unwrap();
            let theirs = Block::in_channel(&ch, 0).unwrap();
            for _ in 0..2 {
                hv_stats::add(
                    mine,
                    Some(theirs),
                    &[(Counter::IrqsTaken, 1), (Counter::IrqsForwarded, 1)],
                );
            }
        });
        let ch = channel(&words, layout);
        for block in [
            Block::own(&own).unwrap(),
            Block::in_channel(&ch, 0).unwrap(),
        ] {
            if let Ok((updates, s)) = hv_stats::read(block, 2) {
                let (taken, forwarded) = (s.get(Counter::IrqsTaken), s.get(Counter::IrqsForwarded));
                assert_eq!((taken, forwarded), (updates, updates), "torn block");
            }
        }
        writer.join().unwrap();
    });
}

#[test]
fn loom_ring_records_arrive_once_in_order_and_whole() {
    model(|| {
        let (words, layout) = region(1);
        let producer_words = words.clone();
        let producer = thread::spawn(move || {
            let ch = channel(&producer_words, layout);
            let mut p = Producer::attach(&ch, Direction::ToLinux);
            let mut accepted = 0;
            for k in 1..=3u32 {
                if p.push(&ch, &Record::new(k, &k.to_le_bytes()).unwrap())
                    .is_ok()
                {
                    accepted += 1;
                }
            }
            accepted
        });
        let ch = channel(&words, layout);
        let mut c = Consumer::attach(&ch, Direction::ToLinux);
        let mut seen = Vec::new();
        for _ in 0..2 {
            if let Some(r) = c.pop(&ch) {
                let r = r.unwrap();
                assert_eq!(r.bytes(), &r.kind.to_le_bytes()[..], "torn record");
                seen.push(r.kind);
            }
        }
        let accepted = producer.join().unwrap();
        while let Some(r) = c.pop(&ch) {
            seen.push(r.unwrap().kind);
        }
        assert_eq!(seen.len(), accepted, "lost or duplicated: {seen:?}");
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "out of order: {seen:?}"
        );
    });
}
