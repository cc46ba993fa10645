//! Sealed contact details: only the matched member reads them, only in their own item and hub,
//! and bad bytes of any kind give a typed error, never a panic.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_aid::seal::{MAX_SEALED_BYTES, OVERHEAD, VERSION};
use moot_aid::{MAX_CONTACT_BYTES, SealError, check_sealed, contact_context, open, seal};
use moot_crypto::SecretKey;
use proptest::prelude::*;

const HUB: [u8; 32] = [0x11; 32];
const ITEM: [u8; 32] = [0x22; 32];

fn bob() -> SecretKey {
    SecretKey::from_seed([0xb0; 32])
}

fn sealed_for_bob(detail: &[u8]) -> Vec<u8> {
    seal(
        &bob().public(),
        &contact_context(&HUB, &ITEM),
        detail,
        [7; 32],
    )
    .unwrap()
}

#[test]
fn the_matched_member_reads_the_detail() {
    let detail = "07700 900123 — ask for Jo".as_bytes();
    let sealed = sealed_for_bob(detail);
    assert_eq!(sealed.len(), OVERHEAD + detail.len());
    assert_eq!(sealed[0], VERSION);
    assert_eq!(check_sealed(&sealed), Ok(()));
    assert_eq!(
        open(&bob(), &contact_context(&HUB, &ITEM), &sealed).unwrap(),
        detail
    );
    // The plaintext does not appear in the sealed bytes.
    assert!(!sealed.windows(5).any(|w| w == b"07700"));
}

#[test]
fn empty_and_longest_details_round_trip_and_longer_is_refused() {
    let context = contact_context(&HUB, &ITEM);
    for len in [0, 1, MAX_CONTACT_BYTES] {
        let detail = vec![b'x'; len];
        let sealed = seal(&bob().public(), &context, &detail, [1; 32]).unwrap();
        assert!(sealed.len() <= MAX_SEALED_BYTES);
        assert_eq!(open(&bob(), &context, &sealed).unwrap(), detail);
    }
    assert_eq!(
        seal(
            &bob().public(),
            &context,
            &[0; MAX_CONTACT_BYTES + 1],
            [1; 32]
        ),
        Err(SealError::TooLong {
            len: MAX_CONTACT_BYTES + 1,
            max: MAX_CONTACT_BYTES
        })
    );
}

#[test]
fn a_third_member_cannot_read_a_contact_detail() {
    let sealed = sealed_for_bob(b"jo@example.org");
    let context = contact_context(&HUB, &ITEM);
    // Carol holds the op, like every member, and tries her key; so does the item's author.
    for seed in [[0xca; 32], [0xa1; 32], [0; 32]] {
        let other = SecretKey::from_seed(seed);
        assert_eq!(
            open(&other, &context, &sealed),
            Err(SealError::Unreadable),
            "{other:?}"
        );
    }
}

#[test]
fn another_item_or_hub_does_not_open() {
    let sealed = sealed_for_bob(b"jo@example.org");
    let mut other_item = ITEM;
    other_item[31] ^= 1;
    let mut other_hub = HUB;
    other_hub[0] ^= 0x80;
    for context in [
        contact_context(&HUB, &other_item),
        contact_context(&other_hub, &ITEM),
        Vec::new(),
        b"moot/aid/contact/v1".to_vec(),
    ] {
        assert_eq!(open(&bob(), &context, &sealed), Err(SealError::Unreadable));
    }
}

#[test]
fn sealing_is_deterministic_in_its_inputs_and_hedged_against_seed_reuse() {
    let context = contact_context(&HUB, &ITEM);
    let a = seal(&bob().public(), &context, b"one", [3; 32]).unwrap();
    assert_eq!(a, seal(&bob().public(), &context, b"one", [3; 32]).unwrap());
    // Another seed: another ephemeral key.
    let b = seal(&bob().public(), &context, b"one", [4; 32]).unwrap();
    assert_ne!(a[1..33], b[1..33]);
    // The same seed reused for another detail still gives another ephemeral key.
    let c = seal(&bob().public(), &context, b"two", [3; 32]).unwrap();
    assert_ne!(a[1..33], c[1..33]);
}

#[test]
fn every_single_byte_change_is_refused() {
    let context = contact_context(&HUB, &ITEM);
    let sealed = sealed_for_bob(b"07700 900123");
    for position in 0..sealed.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = sealed.clone();
            bad[position] ^= flip;
            let error = open(&bob(), &context, &bad).unwrap_err();
            if position == 0 {
                assert_eq!(error, SealError::UnknownVersion(VERSION ^ flip));
            } else {
                assert!(
                    matches!(error, SealError::Unreadable | SealError::BadEphemeral),
                    "byte {position} ^ {flip:#x}: {error:?}"
                );
            }
        }
    }
}

#[test]
fn every_truncation_and_extension_is_refused() {
    let context = contact_context(&HUB, &ITEM);
    let sealed = sealed_for_bob(b"07700 900123");
    for len in 0..sealed.len() {
        let error = open(&bob(), &context, &sealed[..len]).unwrap_err();
        if len < OVERHEAD {
            assert_eq!(error, SealError::Truncated { len, min: OVERHEAD });
            assert_eq!(check_sealed(&sealed[..len]), Err(error));
        } else {
            // Structurally fine (a shorter detail would be this long), but the tag fails.
            assert_eq!(check_sealed(&sealed[..len]), Ok(()));
            assert_eq!(error, SealError::Unreadable, "len {len}");
        }
    }
    let mut longer = sealed.clone();
    longer.push(0);
    assert_eq!(open(&bob(), &context, &longer), Err(SealError::Unreadable));
}

#[test]
fn the_structural_check_bounds_version_and_length() {
    assert_eq!(
        check_sealed(&[]),
        Err(SealError::Truncated {
            len: 0,
            min: OVERHEAD
        })
    );
    assert_eq!(check_sealed(&[2; 100]), Err(SealError::UnknownVersion(2)));
    let mut huge = vec![0; MAX_SEALED_BYTES + 1];
    huge[0] = VERSION;
    assert_eq!(
        check_sealed(&huge),
        Err(SealError::Oversized {
            len: MAX_SEALED_BYTES + 1,
            max: MAX_SEALED_BYTES
        })
    );
    assert_eq!(check_sealed(&huge[..MAX_SEALED_BYTES]), Ok(()));
}

#[test]
fn errors_read_as_sentences() {
    assert_eq!(
        SealError::Unreadable.to_string(),
        "the sealed field is not for this key and context, or was altered"
    );
    assert_eq!(
        SealError::TooLong { len: 600, max: 512 }.to_string(),
        "a contact detail is at most 512 bytes, this one is 600"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes (with the right version byte half the time) never open and never panic.
    #[test]
    fn random_bytes_give_a_typed_error(
        mut bytes in proptest::collection::vec(any::<u8>(), 0..700),
        versioned in any::<bool>(),
        context in proptest::collection::vec(any::<u8>(), 0..80),
    ) {
        if versioned && !bytes.is_empty() {
            bytes[0] = VERSION;
        }
        let structural = check_sealed(&bytes);
        let opened = open(&bob(), &context, &bytes);
        prop_assert!(opened.is_err());
        if let Err(error) = structural {
            prop_assert_eq!(opened, Err(error));
        }
    }

    /// Round trip for any detail, context, seed and recipient.
    #[test]
    fn any_detail_round_trips(
        detail in proptest::collection::vec(any::<u8>(), 0..=MAX_CONTACT_BYTES),
        context in proptest::collection::vec(any::<u8>(), 0..80),
        seed in any::<[u8; 32]>(),
        key in any::<[u8; 32]>(),
    ) {
        let recipient = SecretKey::from_seed(key);
        let sealed = seal(&recipient.public(), &context, &detail, seed).unwrap();
        prop_assert_eq!(check_sealed(&sealed), Ok(()));
        prop_assert_eq!(open(&recipient, &context, &sealed).unwrap(), detail);
    }
}

/// The format is pinned: nodes of different versions must read each other's fields, so a change
/// here is a new format version, not an edit. This vector was opened by an independent RFC 9180
/// implementation written out over pyca/cryptography (`hpke_crosscheck.py` beside this file),
/// which also checks that the Ed25519 key's Montgomery form is the X25519 key of the clamped
/// SHA-512 scalar.
#[test]
fn a_pinned_vector() {
    let sealed = seal(
        &bob().public(),
        &contact_context(&HUB, &ITEM),
        b"07700 900123",
        [7; 32],
    )
    .unwrap();
    let hex: String = sealed.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "01da8f72beb69fa6c7c99892e17376d3fb9cafba84b5761d8837a3690b87717d\
         331b46fe4ba90ebd9d49073d8bd1a03d5dcf1da3a9f217fdb5d50e1768"
    );
}
