//! Bundles: round trip, and every damage refused with its reason — never a panic, never a
//! partial result.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_bundle::{BundleError, Header, Lanes, Writer, read_all};
use proptest::prelude::*;

fn bundle(ops: &[Vec<u8>]) -> Vec<u8> {
    let header = Header {
        hub: [9; 32],
        lanes: Lanes::ALL,
    };
    let mut writer = Writer::new(Vec::new(), &header).unwrap();
    for op in ops {
        writer.op(op).unwrap();
    }
    // The size told before finishing is the bundle's (an export to a pipe reports it).
    let size = writer.finished_size();
    let file = writer.finish().unwrap();
    assert_eq!(size, file.len() as u64);
    file
}

fn sample_ops() -> Vec<Vec<u8>> {
    (0..5u8)
        .map(|i| vec![i; moot_bundle::MIN_FRAME_BYTES + i as usize * 7])
        .collect()
}

#[test]
fn round_trip_keeps_every_op_in_order() {
    let ops = sample_ops();
    let (header, read) = read_all(&bundle(&ops)[..], 100).unwrap();
    assert_eq!(header.hub, [9; 32]);
    assert_eq!(header.lanes, Lanes::ALL);
    assert_eq!(read, ops);
    let (_, none) = read_all(&bundle(&[])[..], 100).unwrap();
    assert!(none.is_empty());
}

#[test]
fn every_truncation_is_refused() {
    let file = bundle(&sample_ops());
    for cut in 0..file.len() {
        let result = read_all(&file[..cut], 100);
        assert!(
            matches!(
                result,
                Err(BundleError::Truncated | BundleError::NotABundle)
            ),
            "cut at {cut}: {result:?}"
        );
    }
}

#[test]
fn every_flipped_byte_is_refused() {
    let file = bundle(&sample_ops());
    for at in 0..file.len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = file.clone();
            bad[at] ^= flip;
            assert!(read_all(&bad[..], 100).is_err(), "flip {flip:#x} at {at}");
        }
    }
}

#[test]
fn a_dropped_or_duplicated_frame_and_trailing_bytes_are_refused() {
    let ops = sample_ops();
    let file = bundle(&ops);
    // Drop the second frame (header 46 bytes, frame = 4 + len).
    let first = 46 + 4 + ops[0].len();
    let second = first + 4 + ops[1].len();
    let mut dropped = file[..first].to_vec();
    dropped.extend_from_slice(&file[second..]);
    assert!(matches!(
        read_all(&dropped[..], 100),
        Err(BundleError::Tampered)
    ));
    let mut doubled = file[..second].to_vec();
    doubled.extend_from_slice(&file[first..]);
    assert!(matches!(
        read_all(&doubled[..], 100),
        Err(BundleError::Tampered)
    ));
    let mut longer = file.clone();
    longer.push(0);
    assert!(matches!(
        read_all(&longer[..], 100),
        Err(BundleError::TrailingBytes)
    ));
    assert!(matches!(
        read_all(&file[..], 3),
        Err(BundleError::TooManyOps(3))
    ));
}

#[test]
fn a_huge_frame_length_is_refused_before_any_allocation() {
    let mut file = bundle(&[]);
    let end = 46;
    file.truncate(end);
    file.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        read_all(&file[..], 100),
        Err(BundleError::FrameTooLarge(u32::MAX))
    ));
}

/// A frame shorter than any op is refused, reading and writing: a file of one-byte frames
/// would hold ten million ops in 50 MB, each a vector of its own (~0.7 GB).
#[test]
fn a_frame_shorter_than_any_op_is_refused() {
    let mut file = bundle(&[]);
    file.truncate(46);
    let short = moot_bundle::MIN_FRAME_BYTES as u32 - 1;
    file.extend_from_slice(&short.to_le_bytes());
    file.extend_from_slice(&vec![0; short as usize]);
    assert!(matches!(
        read_all(&file[..], 100),
        Err(BundleError::FrameTooSmall(n)) if n == short
    ));
    let header = Header {
        hub: [9; 32],
        lanes: Lanes::ALL,
    };
    let mut writer = Writer::new(Vec::new(), &header).unwrap();
    assert!(matches!(
        writer.op(b"x"),
        Err(BundleError::FrameTooSmall(1))
    ));
    assert!(matches!(writer.op(b""), Err(BundleError::FrameTooSmall(0))));
}

#[test]
fn headers_that_are_not_ours_are_refused() {
    let file = bundle(&sample_ops());
    let mut version = file.clone();
    version[12] = 2;
    assert!(matches!(
        read_all(&version[..], 100),
        Err(BundleError::UnknownVersion(2))
    ));
    let mut lanes = file.clone();
    lanes[45] = 4;
    assert!(matches!(
        read_all(&lanes[..], 100),
        Err(BundleError::BadLanes(4))
    ));
    assert!(matches!(
        read_all(&b"hello"[..], 100),
        Err(BundleError::NotABundle)
    ));
}

proptest! {
    #[test]
    fn random_bytes_are_refused_without_panicking(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        prop_assert!(read_all(&bytes[..], 100).is_err());
    }

    #[test]
    fn random_bytes_after_a_valid_header_are_refused(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let mut file = bundle(&[]);
        file.truncate(46);
        file.extend_from_slice(&bytes);
        prop_assert!(read_all(&file[..], 100).is_err());
    }

    #[test]
    fn any_ops_round_trip(ops in prop::collection::vec(prop::collection::vec(any::<u8>(), moot_bundle::MIN_FRAME_BYTES..400), 0..20)) {
        let (_, read) = read_all(&bundle(&ops)[..], 100).unwrap();
        prop_assert_eq!(read, ops);
    }
}
