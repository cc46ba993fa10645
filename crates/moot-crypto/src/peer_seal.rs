//! Sealing a message for one peer of a hub, so that only a node that knows the hub's id can
//! read it (what a node presents to a peer: its member and its device's certificate).
//!
//! The key is `SHA-256("moot/peer-seal/v1\0" ‖ hub id ‖ sender's device key ‖ receiver's device
//! key)`: bound to the hub and to both ends, in one direction, so a sealed message opens only
//! for the peer it was made for and only as coming from its sender. ChaCha20-Poly1305 with a
//! synthetic nonce (`SHA-256("moot/peer-seal-nonce/v1\0" ‖ key ‖ message)`, its first 12
//! bytes): no randomness is needed, the same message sealed twice is the same bytes (a peer
//! learns only that the message has not changed), and two different messages under one key
//! never share a nonce. Device keys are public (a peer's id is its device key), so the hub id
//! is the secret: a stranger to the hub learns nothing from the bytes but their length. Each
//! message is sealed for a purpose (authenticated, not sent), so bytes sealed for one purpose
//! never open as another's.
//!
//! Anyone who knows the hub id can open what was sealed for them: the members, the guests,
//! whoever holds a ticket (which carries it), and, for a hub whose genesis is public (a public
//! hub), anyone who receives its public lane. It protects what the hub id protects.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

use crate::{HubId, PublicKey};

const KEY_DOMAIN: &[u8] = b"moot/peer-seal/v1\0";
const NONCE_DOMAIN: &[u8] = b"moot/peer-seal-nonce/v1\0";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// Bytes a sealed message adds to the message: the nonce and the tag.
pub const SEAL_OVERHEAD: usize = NONCE_BYTES + TAG_BYTES;

fn key(hub: &HubId, from: &PublicKey, to: &PublicKey) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(KEY_DOMAIN);
    hasher.update(hub.0);
    hasher.update(from.to_bytes());
    hasher.update(to.to_bytes());
    hasher.finalize().into()
}

/// `message`, sealed by the device `from` for the device `to` of `hub`, for `purpose` (a
/// constant label, e.g. `"credential"`).
pub fn seal_for_peer(
    hub: &HubId,
    from: &PublicKey,
    to: &PublicKey,
    purpose: &str,
    message: &[u8],
) -> Vec<u8> {
    let key = key(hub, from, to);
    let mut hasher = Sha256::new();
    hasher.update(NONCE_DOMAIN);
    hasher.update(key);
    hasher.update(message);
    let digest: [u8; 32] = hasher.finalize().into();
    let mut nonce = [0u8; NONCE_BYTES];
    nonce.copy_from_slice(&digest[..NONCE_BYTES]);
    let cipher = ChaCha20Poly1305::new(&Key::from(key));
    let payload = Payload {
        msg: message,
        aad: purpose.as_bytes(),
    };
    let mut out = Vec::with_capacity(message.len() + SEAL_OVERHEAD);
    out.extend_from_slice(&nonce);
    // Encryption fails only for messages beyond ChaCha20's 256 GiB; an empty seal then opens
    // as nothing.
    if let Ok(sealed) = cipher.encrypt(&Nonce::from(nonce), payload) {
        out.extend_from_slice(&sealed);
    }
    out
}

/// The message in `sealed`, if it was sealed by `from` for `to` with `hub`'s id for `purpose`;
/// `None` for anything else (another hub, sender, receiver or purpose, altered or cut bytes).
pub fn open_from_peer(
    hub: &HubId,
    from: &PublicKey,
    to: &PublicKey,
    purpose: &str,
    sealed: &[u8],
) -> Option<Vec<u8>> {
    if sealed.len() < SEAL_OVERHEAD {
        return None;
    }
    let (nonce, body) = sealed.split_at(NONCE_BYTES);
    let nonce: [u8; NONCE_BYTES] = nonce.try_into().ok()?;
    let key = key(hub, from, to);
    let cipher = ChaCha20Poly1305::new(&Key::from(key));
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: body,
                aad: purpose.as_bytes(),
            },
        )
        .ok()
}
