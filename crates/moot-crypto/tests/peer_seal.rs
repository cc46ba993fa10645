//! A message sealed for one peer of a hub opens only there, and hostile bytes open as nothing.

use moot_crypto::{HubId, SEAL_OVERHEAD, SecretKey, open_from_peer, seal_for_peer};

fn keys() -> (HubId, moot_crypto::PublicKey, moot_crypto::PublicKey) {
    (
        HubId([3; 32]),
        SecretKey::from_seed([1; 32]).public(),
        SecretKey::from_seed([2; 32]).public(),
    )
}

#[test]
fn a_sealed_message_opens_only_for_its_hub_sender_and_receiver() {
    let (hub, a, b) = keys();
    let c = SecretKey::from_seed([4; 32]).public();
    let message = b"member and certificate".as_slice();
    let sealed = seal_for_peer(&hub, &a, &b, "credential", message);
    assert_eq!(sealed.len(), message.len() + SEAL_OVERHEAD);
    assert_eq!(
        open_from_peer(&hub, &a, &b, "credential", &sealed).as_deref(),
        Some(message)
    );
    // Nothing of the message shows in the bytes.
    assert!(
        !sealed
            .windows(8)
            .any(|w| message.windows(8).any(|m| m == w))
    );
    // Another hub, the other direction, another sender or receiver: nothing.
    assert_eq!(
        open_from_peer(&HubId([4; 32]), &a, &b, "credential", &sealed),
        None
    );
    assert_eq!(open_from_peer(&hub, &b, &a, "credential", &sealed), None);
    assert_eq!(open_from_peer(&hub, &c, &b, "credential", &sealed), None);
    assert_eq!(open_from_peer(&hub, &a, &c, "credential", &sealed), None);
    // The same message seals to the same bytes; another message to other bytes and another
    // nonce (its first 12 bytes).
    assert_eq!(seal_for_peer(&hub, &a, &b, "credential", message), sealed);
    let other = seal_for_peer(&hub, &a, &b, "credential", b"member and certificatE");
    assert_ne!(other[..12], sealed[..12]);
    // Sealed for one purpose, it does not open for another.
    assert_eq!(open_from_peer(&hub, &a, &b, "other", &sealed), None);
    // An empty message is sealed and opened too.
    let empty = seal_for_peer(&hub, &a, &b, "credential", b"");
    assert_eq!(
        open_from_peer(&hub, &a, &b, "credential", &empty),
        Some(Vec::new())
    );
}

/// Random bytes, and sealed bytes flipped, cut or extended, open as nothing: never a panic.
#[test]
fn hostile_sealed_bytes_open_as_nothing() {
    let (hub, a, b) = keys();
    let sealed = seal_for_peer(&hub, &a, &b, "credential", &[7u8; 100]);
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for round in 0..5_000 {
        let bytes: Vec<u8> = match round % 3 {
            0 => (0..next() % 200).map(|_| next() as u8).collect(),
            1 => {
                let mut bytes = sealed.clone();
                let at = (next() as usize) % bytes.len();
                bytes[at] ^= 1 << (next() % 8);
                bytes
            }
            _ => {
                let mut bytes = sealed.clone();
                if next() % 2 == 0 {
                    bytes.truncate((next() as usize) % bytes.len());
                } else {
                    bytes.push(next() as u8);
                }
                bytes
            }
        };
        assert_eq!(
            open_from_peer(&hub, &a, &b, "credential", &bytes),
            None,
            "{bytes:?}"
        );
    }
}
