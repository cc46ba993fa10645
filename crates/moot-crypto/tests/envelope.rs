//! The op envelope against malformed, truncated, oversized, tampered and replayed input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::op::{MAX_BODY_BYTES, MAX_DEPS, MAX_OP_BYTES};
use moot_crypto::{DecodeError, Draft, HubId, Lane, OpId, SecretKey, SignatureError, SignedOp};
use proptest::prelude::*;

const HUB: HubId = HubId([9; 32]);

fn device() -> SecretKey {
    SecretKey::from_seed([5; 32])
}

fn draft(seq: u64, deps: Vec<OpId>, body: Vec<u8>) -> Draft {
    Draft {
        lane: Lane::Members,
        seq,
        prev: (seq > 1).then_some(OpId([1; 32])),
        deps,
        kind: 3,
        body,
    }
}

#[test]
fn a_signed_op_round_trips_and_authenticates() {
    let op = draft(
        2,
        vec![OpId([8; 32]), OpId([4; 32]), OpId([8; 32])],
        b"body".to_vec(),
    )
    .sign(&HUB, &device())
    .unwrap();
    let back = SignedOp::decode(op.bytes())
        .unwrap()
        .authenticate(&HUB)
        .unwrap();
    assert_eq!(back.id(), op.id());
    assert_eq!(back.author(), device().public());
    assert_eq!(back.lane(), Lane::Members);
    assert_eq!(back.seq(), 2);
    assert_eq!(back.prev(), Some(OpId([1; 32])));
    // Dependencies are stored sorted and de-duplicated: one encoding per op.
    assert_eq!(back.deps(), &[OpId([4; 32]), OpId([8; 32])]);
    assert_eq!(back.kind(), 3);
    assert_eq!(back.body(), b"body");
}

#[test]
fn envelope_overhead_is_146_bytes_plus_32_per_extra_dependency() {
    let op = draft(2, vec![], vec![0; 100])
        .sign(&HUB, &device())
        .unwrap();
    assert_eq!(op.bytes().len() - 100, 146);
    let op = draft(2, vec![OpId([3; 32])], vec![0; 100])
        .sign(&HUB, &device())
        .unwrap();
    assert_eq!(op.bytes().len() - 100, 178);
}

#[test]
fn an_op_replayed_into_another_hub_is_refused() {
    let op = draft(1, vec![], b"x".to_vec())
        .sign(&HUB, &device())
        .unwrap();
    let decoded = SignedOp::decode(op.bytes()).unwrap();
    assert_eq!(
        decoded.authenticate(&HubId([0; 32])),
        Err(SignatureError::Invalid(op.id()))
    );
}

#[test]
fn a_signature_by_another_key_is_refused() {
    // Mallory signs, then claims Alice's device as author: the signature no longer verifies.
    let mallory = SecretKey::from_seed([6; 32]);
    let op = draft(1, vec![], b"x".to_vec())
        .sign(&HUB, &mallory)
        .unwrap();
    let mut bytes = op.bytes().to_vec();
    bytes[1..33].copy_from_slice(&device().public().to_bytes());
    let forged = SignedOp::decode(&bytes).unwrap();
    assert!(matches!(
        forged.authenticate(&HUB),
        Err(SignatureError::Invalid(_))
    ));
}

#[test]
fn limits_and_canonical_form_are_enforced() {
    let too_many: Vec<OpId> = (0..=MAX_DEPS as u8).map(|i| OpId([i; 32])).collect();
    assert!(draft(2, too_many, vec![]).sign(&HUB, &device()).is_err());
    assert!(
        draft(2, vec![], vec![0; MAX_BODY_BYTES + 1])
            .sign(&HUB, &device())
            .is_err()
    );
    assert_eq!(
        SignedOp::decode(&vec![1; MAX_OP_BYTES + 1]),
        Err(DecodeError::TooLarge(MAX_OP_BYTES + 1))
    );

    let good = draft(2, vec![OpId([2; 32]), OpId([3; 32])], b"b".to_vec())
        .sign(&HUB, &device())
        .unwrap();
    let bytes = good.bytes();

    let mut trailing = bytes.to_vec();
    trailing.push(0);
    assert_eq!(SignedOp::decode(&trailing), Err(DecodeError::Trailing(1)));

    let mut version = bytes.to_vec();
    version[0] = 1;
    assert_eq!(SignedOp::decode(&version), Err(DecodeError::Version(1)));

    // seq 1 must have no prev; seq 0 does not exist.
    let mut seq = bytes.to_vec();
    seq[34..42].copy_from_slice(&1u64.to_le_bytes());
    assert!(matches!(
        SignedOp::decode(&seq),
        Err(DecodeError::Sequence { seq: 1, .. })
    ));

    // Swap the two dependencies: no longer ascending.
    let mut unsorted = bytes.to_vec();
    let deps = 1 + 32 + 1 + 8 + 1 + 32 + 1;
    unsorted[deps..deps + 32].copy_from_slice(&[3; 32]);
    unsorted[deps + 32..deps + 64].copy_from_slice(&[2; 32]);
    assert_eq!(
        SignedOp::decode(&unsorted),
        Err(DecodeError::Deps("not strictly ascending"))
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Every strict prefix of a valid op is refused as truncated, never accepted or panicking.
    #[test]
    fn every_truncation_is_refused(body in proptest::collection::vec(any::<u8>(), 0..64), deps in 0usize..3) {
        let deps = (0..deps).map(|i| OpId([i as u8 + 10; 32])).collect();
        let op = draft(3, deps, body).sign(&HUB, &device()).unwrap();
        for cut in 0..op.bytes().len() {
            let result = SignedOp::decode(&op.bytes()[..cut]);
            prop_assert!(matches!(result, Err(DecodeError::Truncated { .. })), "cut {cut}: {result:?}");
        }
    }

    /// Changing any one byte of an op makes it either undecodable or unauthentic: nothing a
    /// member signed can be altered.
    #[test]
    fn any_tampered_byte_is_caught(body in proptest::collection::vec(any::<u8>(), 1..48), flip in any::<u8>().prop_filter("non-zero", |b| *b != 0), at in any::<proptest::sample::Index>()) {
        let op = draft(2, vec![OpId([4; 32])], body).sign(&HUB, &device()).unwrap();
        let mut bytes = op.bytes().to_vec();
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        if let Ok(decoded) = SignedOp::decode(&bytes) {
            prop_assert!(decoded.authenticate(&HUB).is_err(), "byte {i} changed and still authentic");
        }
    }

    /// Arbitrary bytes never panic the decoder.
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = SignedOp::decode(&bytes);
    }
}

#[test]
fn batch_authentication_finds_the_one_forgery() {
    let key = device();
    let mut ops: Vec<SignedOp> = (1..=300u64)
        .map(|seq| {
            let prev = (seq > 1).then_some(OpId([seq as u8; 32]));
            Draft {
                lane: Lane::Public,
                seq,
                prev,
                deps: vec![],
                kind: 1,
                body: seq.to_le_bytes().to_vec(),
            }
            .sign(&HUB, &key)
            .unwrap()
            .into_inner()
        })
        .collect();
    // Forge op 150's signature.
    let mut bytes = ops[150].bytes().to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    ops[150] = SignedOp::decode(&bytes).unwrap();
    let results = moot_crypto::authenticate_batch(&HUB, ops.clone());
    assert_eq!(results.len(), 300);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(result.is_ok(), i != 150, "op {i}");
    }
    // The same verdicts as checking one by one.
    for (op, result) in ops.iter().cloned().zip(&results) {
        assert_eq!(op.authenticate(&HUB).is_ok(), result.is_ok());
    }
}

/// The seed of author `i` of [`ops_by_authors`]' family `family`.
fn author_seed(family: u8, i: u32) -> [u8; 32] {
    let mut seed = [family; 32];
    seed[..4].copy_from_slice(&i.to_le_bytes());
    seed
}

/// `count` ops, op `i` signed by author `i % authors` of family `family` (see [`author_seed`]).
fn ops_by_authors(family: u8, count: u32, authors: u32) -> Vec<Vec<u8>> {
    (0..count)
        .map(|i| {
            Draft {
                lane: Lane::Members,
                seq: 1,
                prev: None,
                deps: vec![],
                kind: 1,
                body: i.to_le_bytes().to_vec(),
            }
            .sign(
                &HUB,
                &SecretKey::from_seed(author_seed(family, i % authors)),
            )
            .unwrap()
            .bytes()
            .to_vec()
        })
        .collect()
}

/// Authors parsed through a cache that hands their points to the checks give the same verdicts,
/// also when the cache is smaller than the number of authors (some points decompressed again).
#[test]
fn checks_with_parsed_authors_give_the_same_verdicts() {
    let mut bytes = ops_by_authors(5, 700, 90);
    // Forge op 33 (a signature byte) and op 600 (its body).
    let last = bytes[33].len() - 1;
    bytes[33][last] ^= 0x01;
    bytes[600][60] ^= 0x01;
    for max in [7, 4096] {
        let mut parsed = moot_crypto::ParsedKeys::new(max);
        let decoded: Vec<SignedOp> = bytes
            .iter()
            .map(|b| SignedOp::decode_with(b, |raw| parsed.parse(raw)).unwrap())
            .collect();
        let alone: Vec<bool> = decoded
            .iter()
            .map(|op| op.clone().authenticate(&HUB).is_ok())
            .collect();
        let with = moot_crypto::authenticate_sequential_with(&HUB, decoded, &parsed);
        let with: Vec<bool> = with.iter().map(Result::is_ok).collect();
        assert_eq!(with, alone, "cache of {max}");
        assert_eq!(with.iter().filter(|ok| !**ok).count(), 2);
    }
}

/// Authors whose points come from a table of known keys get the same verdicts whether the
/// table held the point, fills it on first use, or does not know the key; a key the table does
/// not hold is never added by a check.
#[test]
fn checks_with_known_points_give_the_same_verdicts() {
    let mut bytes = ops_by_authors(6, 600, 90);
    let last = bytes[40].len() - 1;
    bytes[40][last] ^= 0x01;
    bytes[555][60] ^= 0x01;
    let alone: Vec<bool> = bytes
        .iter()
        .map(|b| SignedOp::decode(b).unwrap().authenticate(&HUB).is_ok())
        .collect();
    assert_eq!(alone.iter().filter(|ok| !**ok).count(), 2);
    let key = |i: u32| SecretKey::from_seed(author_seed(6, i)).public();
    let known = std::sync::Arc::new(moot_crypto::KnownPoints::new());
    // Authors 0-29 parsed on this thread just before being added: their points are held.
    for i in 0..30 {
        let parsed = moot_crypto::PublicKey::from_bytes(&key(i).to_bytes()).unwrap();
        known.add(&parsed);
    }
    // Authors 30-59 added by a thread that parsed none (this one decoded them all above):
    // their points are computed when a check needs them.
    std::thread::scope(|scope| {
        scope.spawn(|| {
            for i in 30..60 {
                known.add(&key(i));
            }
        });
    });
    // Authors 60-89: not known.
    assert_eq!((known.len(), known.points_held()), (60, 30));
    // The verdicts of the ops checked with `max` parsed keys cached, consulting `known`.
    let checked = |max: usize| -> Vec<bool> {
        let mut parsed = moot_crypto::ParsedKeys::new(max);
        parsed.consult(Some(std::sync::Arc::clone(&known)));
        let decoded: Vec<SignedOp> = bytes
            .iter()
            .map(|b| SignedOp::decode_with(b, |raw| parsed.parse(raw)).unwrap())
            .collect();
        let with = moot_crypto::authenticate_sequential_with(&HUB, decoded, &parsed);
        with.iter().map(Result::is_ok).collect()
    };
    for max in [7, 4096] {
        assert_eq!(checked(max), alone, "cache of {max}");
    }
    assert_eq!((known.len(), known.points_held()), (60, 60));
    assert!(known.contains(&key(59)));
    assert!(!known.contains(&key(60)));
    // Forgotten points (a node at rest): the keys stay, each point comes back when needed,
    // and no verdict changes.
    known.forget_points();
    assert_eq!((known.len(), known.points_held()), (60, 0));
    assert_eq!(checked(4096), alone);
    assert_eq!((known.len(), known.points_held()), (60, 60));
}

#[test]
fn the_lane_is_signed_and_an_unknown_lane_is_refused() {
    let op = draft(1, vec![], b"x".to_vec())
        .sign(&HUB, &device())
        .unwrap();
    let mut bytes = op.bytes().to_vec();
    // Byte 33 is the lane (after the version and the author).
    assert_eq!(bytes[33], Lane::Members.to_byte());
    bytes[33] = Lane::Public.to_byte();
    // Moving an op to another lane breaks its signature.
    let moved = SignedOp::decode(&bytes).unwrap();
    assert_eq!(moved.lane(), Lane::Public);
    assert!(moved.authenticate(&HUB).is_err());
    for lane in 2..=255u8 {
        bytes[33] = lane;
        assert_eq!(SignedOp::decode(&bytes), Err(DecodeError::Lane(lane)));
    }
}

#[test]
fn public_ops_depend_only_on_public_ops() {
    assert!(Lane::Public.may_depend_on(Lane::Public));
    assert!(!Lane::Public.may_depend_on(Lane::Members));
    assert!(Lane::Members.may_depend_on(Lane::Public));
    assert!(Lane::Members.may_depend_on(Lane::Members));
}
