//! System-image payload table: build/parse round trip, one case per `ImageError` variant,
//! and corruption never panics.

use platform::image::{
    build, claimed_size, ImageError, PayloadKind, Payloads, ENTRY_SIZE, HEADER_SIZE, MAX_PAYLOADS,
    PAYLOAD_ALIGN, VERSION,
};
use proptest::prelude::*;

const KINDS: [PayloadKind; 4] = [
    PayloadKind::Config,
    PayloadKind::GuestRt,
    PayloadKind::LinuxImage,
    PayloadKind::Initramfs,
];

/// Deterministic, non-repeating filler so a payload swapped for another is noticed.
fn data(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// Three payloads of awkward sizes (one empty, one spanning several pages).
fn sample() -> (Vec<u8>, Vec<(PayloadKind, Vec<u8>)>) {
    let payloads = vec![
        (PayloadKind::Config, data(1, 123)),
        (PayloadKind::GuestRt, data(2, 3 * PAYLOAD_ALIGN + 5)),
        (PayloadKind::Initramfs, Vec::new()),
        (PayloadKind::LinuxImage, data(4, 4097)),
    ];
    let refs: Vec<(PayloadKind, &[u8])> = payloads.iter().map(|(k, d)| (*k, &d[..])).collect();
    (build(&refs), payloads)
}

fn le32(image: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(image[at..at + 4].try_into().unwrap())
}

fn put32(image: &mut [u8], at: usize, v: u32) {
    image[at..at + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(image: &mut [u8], at: usize, v: u64) {
    image[at..at + 8].copy_from_slice(&v.to_le_bytes());
}

fn entry_at(i: usize) -> usize {
    HEADER_SIZE + i * ENTRY_SIZE
}

fn table_len(image: &[u8]) -> usize {
    HEADER_SIZE + le32(image, 12) as usize * ENTRY_SIZE
}

/// Recomputes the table CRC (written independently of the crate: CRC-32 over the header
/// with its CRC field zeroed, then every entry), so an edit is judged on its own merits.
fn reseal(image: &mut [u8]) {
    let len = table_len(image);
    let mut table = image[..len].to_vec();
    table[24..28].fill(0);
    put32(image, 24, crc32fast::hash(&table));
}

fn parse_err(image: &[u8]) -> ImageError {
    Payloads::parse(image).expect_err("the broken image was accepted")
}

#[test]
fn round_trip_with_several_payloads() {
    let (image, payloads) = sample();
    let table = Payloads::parse(&image).expect("a fresh image parses");
    assert_eq!(table.total_size(), image.len());
    assert_eq!(claimed_size(&image), Ok(image.len() as u64));
    assert_eq!(table.entries().len(), payloads.len());
    let mut last_end = (HEADER_SIZE + payloads.len() * ENTRY_SIZE) as u64;
    for ((kind, bytes), entry) in payloads.iter().zip(table.entries()) {
        assert_eq!(entry.kind, *kind);
        assert_eq!(
            entry.offset % PAYLOAD_ALIGN as u64,
            0,
            "{kind:?} not page aligned"
        );
        assert!(
            entry.offset >= last_end,
            "{kind:?} overlaps what precedes it"
        );
        assert_eq!(entry.size, bytes.len() as u64);
        assert_eq!(entry.crc, crc32fast::hash(bytes));
        assert_eq!(table.get(*kind), Ok(&bytes[..]));
        last_end = entry.offset + entry.size;
    }
    assert_eq!(last_end, image.len() as u64, "no trailing bytes");
    // The first payload starts on the first page after the table.
    assert_eq!(table.entries()[0].offset, PAYLOAD_ALIGN as u64);
}

#[test]
fn trailing_bytes_after_the_claimed_size_are_ignored() {
    let (mut image, payloads) = sample();
    image.extend_from_slice(&[0xaa; 100]);
    let table = Payloads::parse(&image).expect("extra bytes after the image are fine");
    assert_eq!(table.total_size(), image.len() - 100);
    assert_eq!(table.get(PayloadKind::Config), Ok(&payloads[0].1[..]));
}

#[test]
fn empty_and_full_tables() {
    let image = build(&[]);
    assert_eq!(image.len(), HEADER_SIZE);
    let table = Payloads::parse(&image).expect("an empty table is well formed");
    assert!(table.entries().is_empty());
    assert_eq!(
        table.get(PayloadKind::GuestRt),
        Err(ImageError::Missing(PayloadKind::GuestRt))
    );

    let blobs: Vec<Vec<u8>> = (0..4).map(|i| data(i, 10 + usize::from(i))).collect();
    let all: Vec<(PayloadKind, &[u8])> = KINDS
        .iter()
        .copied()
        .zip(blobs.iter().map(|b| &b[..]))
        .collect();
    let image = build(&all);
    let table = Payloads::parse(&image).expect("one of each kind");
    for (kind, bytes) in &all {
        assert_eq!(table.get(*kind), Ok(*bytes));
    }
}

#[test]
fn kind_codes_round_trip() {
    for kind in KINDS {
        assert_eq!(PayloadKind::from_code(kind.code()), Some(kind));
        assert!(!kind.name().is_empty());
    }
    assert_eq!(PayloadKind::from_code(0), None);
    assert_eq!(PayloadKind::from_code(5), None);
}

#[test]
fn truncated() {
    let (image, _) = sample();
    let short = &image[..image.len() - 1];
    let err = parse_err(short);
    assert_eq!(
        err,
        ImageError::Truncated {
            needed: image.len() as u64,
            available: image.len() as u64 - 1
        }
    );
    assert!(err.to_string().contains("truncated"), "{err}");
    // Shorter than the header itself.
    assert_eq!(
        parse_err(&image[..HEADER_SIZE - 1]),
        ImageError::Truncated {
            needed: HEADER_SIZE as u64,
            available: HEADER_SIZE as u64 - 1
        }
    );
    assert_eq!(
        claimed_size(&[]),
        Err(ImageError::Truncated {
            needed: HEADER_SIZE as u64,
            available: 0
        })
    );
}

#[test]
fn truncated_table_within_claimed_size() {
    // The header claims fewer bytes than its own entries take.
    let (mut image, _) = sample();
    put64(&mut image, 16, HEADER_SIZE as u64 + 10);
    reseal(&mut image);
    assert_eq!(
        parse_err(&image),
        ImageError::Truncated {
            needed: table_len(&image) as u64,
            available: HEADER_SIZE as u64 + 10
        }
    );
}

#[test]
fn claimed_size_smaller_than_the_header() {
    // Regression: this used to index past the re-sliced image and panic.
    let (mut image, _) = sample();
    for claimed in [0, 5, HEADER_SIZE as u64 - 1] {
        put64(&mut image, 16, claimed);
        reseal(&mut image);
        assert_eq!(
            parse_err(&image),
            ImageError::Truncated {
                needed: HEADER_SIZE as u64,
                available: claimed
            }
        );
    }
}

#[test]
fn bad_magic() {
    let (mut image, _) = sample();
    image[0] = b'b';
    let err = parse_err(&image);
    assert_eq!(err, ImageError::BadMagic);
    assert_eq!(claimed_size(&image), Err(ImageError::BadMagic));
    assert!(err.to_string().contains("magic"), "{err}");
}

#[test]
fn bad_version() {
    let (mut image, _) = sample();
    put32(&mut image, 8, VERSION + 1);
    let err = parse_err(&image);
    assert_eq!(err, ImageError::BadVersion(VERSION + 1));
    assert!(
        err.to_string()
            .contains(&format!("version {}", VERSION + 1)),
        "{err}"
    );
}

#[test]
fn too_many_payloads() {
    let (mut image, _) = sample();
    put32(&mut image, 12, MAX_PAYLOADS + 1);
    let err = parse_err(&image);
    assert_eq!(err, ImageError::TooManyPayloads(MAX_PAYLOADS + 1));
    assert!(
        err.to_string().contains(&(MAX_PAYLOADS + 1).to_string()),
        "{err}"
    );
    // The largest count is only refused for what it is, not for its size.
    put32(&mut image, 12, u32::MAX);
    assert_eq!(parse_err(&image), ImageError::TooManyPayloads(u32::MAX));
}

#[test]
fn table_checksum() {
    let (mut image, _) = sample();
    let stored = le32(&image, 24);
    // A payload's size, changed without resealing the table.
    image[entry_at(0) + 16] ^= 1;
    let err = parse_err(&image);
    let ImageError::TableChecksum {
        stored: s,
        computed,
    } = err
    else {
        panic!("expected a table checksum error, got {err:?}");
    };
    assert_eq!(s, stored);
    assert_ne!(computed, stored);
    assert!(
        err.to_string().contains(&format!("{stored:#010x}")),
        "{err}"
    );
    // Reserved words are covered too.
    let (mut image, _) = sample();
    image[entry_at(1) + 28] = 1;
    assert!(matches!(
        parse_err(&image),
        ImageError::TableChecksum { .. }
    ));
}

#[test]
fn unknown_kind() {
    let (mut image, _) = sample();
    put32(&mut image, entry_at(1), 77);
    reseal(&mut image);
    let err = parse_err(&image);
    assert_eq!(err, ImageError::UnknownKind(77));
    assert!(err.to_string().contains("77"), "{err}");
}

#[test]
fn duplicate_payload() {
    let (mut image, _) = sample();
    put32(&mut image, entry_at(2), PayloadKind::GuestRt.code());
    reseal(&mut image);
    let err = parse_err(&image);
    assert_eq!(err, ImageError::DuplicatePayload(PayloadKind::GuestRt));
    assert!(err.to_string().contains("guest-rt"), "{err}");
}

#[test]
fn payload_out_of_bounds() {
    let (image, _) = sample();
    let total = image.len() as u64;

    // Past the end of the image.
    let mut past = image.clone();
    let size = total - PAYLOAD_ALIGN as u64 + 1;
    put64(&mut past, entry_at(0) + 16, size);
    reseal(&mut past);
    let err = parse_err(&past);
    assert_eq!(
        err,
        ImageError::PayloadOutOfBounds {
            kind: PayloadKind::Config,
            offset: PAYLOAD_ALIGN as u64,
            size
        }
    );
    assert!(err.to_string().contains("board config"), "{err}");

    // Inside the table itself.
    let mut inside = image.clone();
    put64(&mut inside, entry_at(0) + 8, 0);
    reseal(&mut inside);
    assert!(matches!(
        parse_err(&inside),
        ImageError::PayloadOutOfBounds { offset: 0, .. }
    ));

    // offset + size wraps around.
    let mut wraps = image;
    put64(&mut wraps, entry_at(3) + 8, u64::MAX - 10);
    put64(&mut wraps, entry_at(3) + 16, 20);
    reseal(&mut wraps);
    assert_eq!(
        parse_err(&wraps),
        ImageError::PayloadOutOfBounds {
            kind: PayloadKind::LinuxImage,
            offset: u64::MAX - 10,
            size: 20
        }
    );
}

#[test]
fn payload_checksum() {
    let (mut image, _) = sample();
    let table = Payloads::parse(&image).unwrap();
    let entry = table.entries()[1];
    drop(table);
    image[entry.offset as usize + 100] ^= 0x40;
    let err = parse_err(&image);
    let ImageError::PayloadChecksum {
        kind,
        stored,
        computed,
    } = err
    else {
        panic!("expected a payload checksum error, got {err:?}");
    };
    assert_eq!(kind, PayloadKind::GuestRt);
    assert_eq!(stored, entry.crc);
    assert_eq!(
        computed,
        crc32fast::hash(&image[entry.offset as usize..(entry.offset + entry.size) as usize])
    );
    assert!(err.to_string().contains("guest-rt"), "{err}");
}

#[test]
fn missing() {
    let image = build(&[(PayloadKind::Config, b"config")]);
    let table = Payloads::parse(&image).unwrap();
    assert_eq!(table.get(PayloadKind::Config), Ok(&b"config"[..]));
    let err = table.get(PayloadKind::LinuxImage).expect_err("no Linux");
    assert_eq!(err, ImageError::Missing(PayloadKind::LinuxImage));
    assert!(err.to_string().contains("Linux Image"), "{err}");
}

/// Which bytes of the sample image some check covers: the table and every payload.
fn covered(image: &[u8]) -> Vec<bool> {
    let table = Payloads::parse(image).unwrap();
    let mut covered = vec![false; image.len()];
    covered[..table_len(image)].fill(true);
    for e in table.entries() {
        covered[e.offset as usize..(e.offset + e.size) as usize].fill(true);
    }
    covered
}

/// Everything a caller can observe of a parsed table.
fn observe(table: &Payloads) -> Vec<(platform::image::Entry, Vec<u8>)> {
    table
        .entries()
        .iter()
        .map(|e| (*e, table.get(e.kind).unwrap().to_vec()))
        .collect()
}

#[test]
fn padding_is_not_covered_but_everything_else_is() {
    let (image, _) = sample();
    let covered = covered(&image);
    let padding = covered.iter().filter(|&&c| !c).count();
    assert!(padding > 0 && padding < image.len());
    let original = observe(&Payloads::parse(&image).unwrap());
    // Every single byte, flipped: CRC-32 catches every single-byte error.
    let mut copy = image.clone();
    for at in 0..image.len() {
        copy[at] ^= 0xff;
        match Payloads::parse(&copy) {
            Ok(table) => {
                assert!(!covered[at], "corruption at {at:#x} went unnoticed");
                assert_eq!(
                    observe(&table),
                    original,
                    "padding byte {at:#x} changed the result"
                );
            }
            Err(_) => assert!(covered[at], "padding byte {at:#x} made the image invalid"),
        }
        copy[at] ^= 0xff;
    }
}

proptest! {
    #[test]
    fn single_byte_corruption_is_caught_or_harmless(at in any::<prop::sample::Index>(), value in any::<u8>()) {
        let (image, _) = sample();
        let covered = covered(&image);
        let original = observe(&Payloads::parse(&image).unwrap());
        let at = at.index(image.len());
        let mut bad = image.clone();
        bad[at] = value;
        match Payloads::parse(&bad) {
            Ok(table) => {
                prop_assert!(bad[at] == image[at] || !covered[at], "corruption at {:#x} went unnoticed", at);
                prop_assert_eq!(observe(&table), original);
            }
            Err(_) => prop_assert!(covered[at]),
        }
    }

    #[test]
    fn arbitrary_header_and_table_never_panics(
        table in prop::collection::vec(any::<u8>(), 0..HEADER_SIZE + 4 * ENTRY_SIZE),
        count in 0u32..6,
        total in any::<u64>(),
        tail in 0usize..9000,
        seal in any::<bool>(),
    ) {
        let mut image = build(&[]);
        image.extend_from_slice(&table);
        put32(&mut image, 12, count);
        // Mostly plausible sizes, sometimes anything.
        let claimed = if total % 2 == 0 { total % (image.len() + tail + 1) as u64 } else { total };
        put64(&mut image, 16, claimed);
        image.resize(image.len() + tail, 0x5a);
        if seal && image.len() >= table_len(&image) {
            reseal(&mut image);
        }
        let _ = claimed_size(&image);
        if let Ok(parsed) = Payloads::parse(&image) {
            for e in parsed.entries() {
                prop_assert_eq!(parsed.get(e.kind).map(<[u8]>::len), Ok(e.size as usize));
            }
        }
    }

    #[test]
    fn truncation_is_always_detected(cut in any::<prop::sample::Index>()) {
        let (image, _) = sample();
        let len = cut.index(image.len());
        let err = Payloads::parse(&image[..len]);
        let is_truncated = matches!(err, Err(ImageError::Truncated { .. }));
        prop_assert!(is_truncated, "{:?}", err.map(|_| ()));
    }
}
