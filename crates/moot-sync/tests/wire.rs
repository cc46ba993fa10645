//! The wire decoder on hostile input: random bytes, mutations and truncations of valid
//! frames, lists longer than their limits, and round trips. It must never panic, and whatever
//! it accepts must encode back to a frame that decodes to the same message.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::Rng;
use moot_crypto::{Lane, OpId};
use moot_sync::WireError;
use moot_sync::wire::{
    self, Bounded, Head, MAX_IDS_PER_MESSAGE, MAX_OPS_PER_MESSAGE, Message, OpBytes, WIRE_VERSION,
};

fn message(rng: &mut Rng) -> Message {
    match rng.below(4) {
        0 => Message::Heads {
            first: rng.below(2) == 0,
            last: rng.below(2) == 0,
            heads: Bounded::new(
                (0..rng.below(20))
                    .map(|_| Head {
                        device: rng.bytes(32).try_into().unwrap(),
                        lane: if rng.below(2) == 0 {
                            Lane::Public
                        } else {
                            Lane::Members
                        },
                        seq: rng.next() >> rng.below(64),
                        id: OpId(rng.bytes(32).try_into().unwrap()),
                    })
                    .collect(),
            )
            .unwrap(),
        },
        1 => {
            let n = rng.below(10);
            let ops = (0..n)
                .map(|_| {
                    let len = rng.below(400);
                    OpBytes(rng.bytes(len))
                })
                .collect();
            Message::Ops {
                ops: Bounded::new(ops).unwrap(),
            }
        }
        2 => {
            let len = rng.below(wire::MAX_CREDENTIAL_BYTES + 1);
            Message::Present {
                credential: Bounded::new(rng.bytes(len)).unwrap(),
            }
        }
        _ => Message::Want {
            ids: Bounded::new(
                (0..rng.below(20))
                    .map(|_| OpId(rng.bytes(32).try_into().unwrap()))
                    .collect(),
            )
            .unwrap(),
        },
    }
}

/// Decodes; if accepted, the message must survive a round trip.
fn check(frame: &[u8]) {
    if let Ok(m) = wire::decode(frame) {
        let again = wire::encode(&m).unwrap();
        assert_eq!(wire::decode(&again).unwrap(), m);
    }
}

#[test]
fn round_trips() {
    let mut rng = Rng(1);
    for _ in 0..2_000 {
        let m = message(&mut rng);
        let frame = wire::encode(&m).unwrap();
        assert_eq!(frame[0], WIRE_VERSION);
        assert_eq!(wire::decode(&frame).unwrap(), m);
        // The tag alone tells a frame that names ops or heads of a lane.
        let names = matches!(m, Message::Heads { .. } | Message::Ops { .. });
        assert_eq!(wire::names_lane_data(&frame), names, "{m:?}");
    }
    assert!(wire::names_lane_data(&[]) && wire::names_lane_data(&[WIRE_VERSION]));
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(2);
    for i in 0..50_000 {
        let len = rng.below(if i % 100 == 0 { 5_000 } else { 80 });
        let mut frame = rng.bytes(len);
        if let Some(first) = frame.first_mut() {
            // Mostly the right version, so the message decoder is what is exercised.
            if rng.below(8) != 0 {
                *first = WIRE_VERSION;
            }
        }
        check(&frame);
    }
}

#[test]
fn mutations_and_truncations_never_panic() {
    let mut rng = Rng(3);
    for _ in 0..5_000 {
        let frame = wire::encode(&message(&mut rng)).unwrap();
        for cut in 0..frame.len().min(64) {
            check(&frame[..cut]);
        }
        check(&frame[..frame.len() - 1]);
        for _ in 0..8 {
            let mut mutated = frame.clone();
            match rng.below(4) {
                0 => {
                    let at = rng.below(mutated.len());
                    mutated[at] ^= 1 << rng.below(8);
                }
                1 => {
                    let at = rng.below(mutated.len());
                    mutated[at] = rng.next() as u8;
                }
                2 => {
                    let at = rng.below(mutated.len() + 1);
                    mutated.insert(at, rng.next() as u8);
                }
                _ => {
                    let at = rng.below(mutated.len());
                    mutated.remove(at);
                }
            }
            check(&mutated);
        }
    }
}

#[test]
fn claimed_lengths_beyond_the_input_or_the_limits_are_refused() {
    // Ops (tag 1) claiming u32::MAX ops, with nothing after.
    let huge = [WIRE_VERSION, 1, 0xff, 0xff, 0xff, 0xff, 0x0f];
    assert!(matches!(wire::decode(&huge), Err(WireError::Malformed(_))));
    // Want (tag 2) with one id more than allowed, all present.
    let mut want = vec![WIRE_VERSION, 2];
    let n = MAX_IDS_PER_MESSAGE + 1;
    want.extend([(n & 0x7f) as u8 | 0x80, (n >> 7) as u8]);
    want.extend(std::iter::repeat_n(7u8, 32 * n));
    assert!(matches!(wire::decode(&want), Err(WireError::Malformed(_))));
    // An op longer than any op may be.
    let long = moot_crypto::op::MAX_OP_BYTES + 1;
    let mut ops = vec![WIRE_VERSION, 1, 1];
    let mut len = long;
    while len >= 0x80 {
        ops.push((len as u8) | 0x80);
        len >>= 7;
    }
    ops.push(len as u8);
    ops.extend(std::iter::repeat_n(0u8, long));
    assert!(matches!(wire::decode(&ops), Err(WireError::Malformed(_))));
    // Too many ops cannot even be built.
    assert!(
        Bounded::<OpBytes, MAX_OPS_PER_MESSAGE>::new(vec![
            OpBytes(vec![]);
            MAX_OPS_PER_MESSAGE + 1
        ])
        .is_none()
    );
}

#[test]
fn version_trailing_and_size_are_checked_first() {
    let frame = wire::encode(&Message::Want {
        ids: Bounded::new(vec![]).unwrap(),
    })
    .unwrap();
    let mut other = frame.clone();
    other[0] = WIRE_VERSION + 1;
    assert_eq!(
        wire::decode(&other),
        Err(WireError::Version(WIRE_VERSION + 1))
    );
    let mut trailing = frame.clone();
    trailing.push(0);
    assert_eq!(wire::decode(&trailing), Err(WireError::Trailing(1)));
    assert_eq!(wire::decode(&[]), Err(WireError::Empty));
    let big = vec![WIRE_VERSION; wire::MAX_MESSAGE_BYTES + 1];
    assert_eq!(wire::decode(&big), Err(WireError::TooLarge(big.len())));
}

#[test]
fn a_credential_over_the_limit_is_refused() {
    let mut frame = wire::encode(&Message::Present {
        credential: Bounded::new(vec![7; wire::MAX_CREDENTIAL_BYTES]).unwrap(),
    })
    .unwrap();
    assert!(wire::decode(&frame).is_ok());
    // One more byte: the varint length and the bytes, as a peer could send them.
    frame.truncate(2);
    let mut len = Vec::new();
    let mut n = wire::MAX_CREDENTIAL_BYTES + 1;
    while n >= 0x80 {
        len.push((n as u8) | 0x80);
        n >>= 7;
    }
    len.push(n as u8);
    frame.extend_from_slice(&len);
    frame.extend(std::iter::repeat_n(7u8, wire::MAX_CREDENTIAL_BYTES + 1));
    assert!(wire::decode(&frame).is_err());
}
