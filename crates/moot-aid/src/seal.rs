//! Contact details sealed to one member: RFC 9180 HPKE, mode base, with the suite
//! DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / ChaCha20-Poly1305, to the recipient member's
//! Ed25519 key in its X25519 (Montgomery) form.
//!
//! The byte format of a sealed field, version 1:
//!
//! ```text
//! 0x01 ‖ enc (32 bytes: the sender's ephemeral X25519 public key) ‖ ciphertext ‖ tag (16 bytes)
//! ```
//!
//! - HPKE `info` is [`INFO_LABEL`] followed by the caller's `context` (for an aid item:
//!   [`contact_context`] of the hub id and the item's op id), so the key schedule, and with it
//!   the AEAD key and nonce, belong to that one hub and item: a sealed blob copied into another
//!   item or hub does not open.
//! - HPKE `aad` is the version byte, so it cannot be changed without breaking the tag.
//! - The ciphertext is as long as the plaintext; at most [`MAX_CONTACT_BYTES`].
//!
//! A sealed field is therefore [`OVERHEAD`] bytes plus the contact detail's length: that length
//! is all a third member (who holds the op, like every member) learns. Pad the detail first if
//! even that matters.

use hpke::aead::ChaCha20Poly1305;
use hpke::kdf::HkdfSha256;
use hpke::kem::X25519HkdfSha256;
use hpke::rand_core::{TryCryptoRng, TryRng};
use hpke::{Deserializable, HpkeError, Kem, OpModeR, OpModeS, Serializable};
use moot_crypto::{PublicKey, SecretKey};
use sha2::{Digest, Sha512};
use zeroize::{Zeroize, Zeroizing};

type Suite = X25519HkdfSha256;
type EncappedKey = <Suite as Kem>::EncappedKey;
type X25519Public = <Suite as Kem>::PublicKey;
type X25519Secret = <Suite as Kem>::PrivateKey;

/// The format version written as the first byte of every sealed field.
pub const VERSION: u8 = 1;

/// The largest contact detail that can be sealed, in bytes (UTF-8 or otherwise).
pub const MAX_CONTACT_BYTES: usize = 512;

/// Bytes of the ephemeral public key (HPKE `enc`) after the version byte.
pub const ENC_BYTES: usize = 32;

/// Bytes of the Poly1305 tag at the end.
pub const TAG_BYTES: usize = 16;

/// What sealing adds to a contact detail: version byte, ephemeral key and tag (49 bytes).
pub const OVERHEAD: usize = 1 + ENC_BYTES + TAG_BYTES;

/// The largest well-formed sealed field.
pub const MAX_SEALED_BYTES: usize = OVERHEAD + MAX_CONTACT_BYTES;

/// The label put before the caller's context in HPKE `info`, separating these keys from any
/// other use of HPKE with the same member keys.
pub const INFO_LABEL: &[u8] = b"moot/aid/seal/v1\x00";

/// The label of [`contact_context`].
pub const CONTACT_LABEL: &[u8] = b"moot/aid/contact/v1";

/// Why a contact detail could not be sealed or opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SealError {
    /// The contact detail is longer than [`MAX_CONTACT_BYTES`].
    #[error("a contact detail is at most {max} bytes, this one is {len}")]
    TooLong {
        /// Its length.
        len: usize,
        /// [`MAX_CONTACT_BYTES`].
        max: usize,
    },
    /// The recipient's X25519 key has small order: nothing sealed to it would be secret.
    #[error("the recipient key has small order and cannot be sealed to")]
    WeakRecipient,
    /// Shorter than the [`OVERHEAD`] of an empty sealed field.
    #[error("a sealed field is at least {min} bytes, this one is {len}")]
    Truncated {
        /// Its length.
        len: usize,
        /// [`OVERHEAD`].
        min: usize,
    },
    /// Longer than [`MAX_SEALED_BYTES`].
    #[error("a sealed field is at most {max} bytes, this one is {len}")]
    Oversized {
        /// Its length.
        len: usize,
        /// [`MAX_SEALED_BYTES`].
        max: usize,
    },
    /// The first byte is not a version this code reads.
    #[error("unknown sealed-field version {0}")]
    UnknownVersion(u8),
    /// The ephemeral key in the field has small order (a forged or corrupted field).
    #[error("the sealed field's ephemeral key is invalid")]
    BadEphemeral,
    /// The tag does not verify: sealed to another member, under another context (another hub
    /// or item), or altered. These cannot be told apart, by design.
    #[error("the sealed field is not for this key and context, or was altered")]
    Unreadable,
}

/// The recommended `context` for a contact detail in an aid item: [`CONTACT_LABEL`] ‖ hub id ‖
/// the item's op id. Both ends must build it alike.
pub fn contact_context(hub: &[u8; 32], item: &[u8; 32]) -> Vec<u8> {
    let mut context = Vec::with_capacity(CONTACT_LABEL.len() + 64);
    context.extend_from_slice(CONTACT_LABEL);
    context.extend_from_slice(hub);
    context.extend_from_slice(item);
    context
}

/// Seals `plaintext` so that only the holder of `recipient`'s secret key can read it, bound to
/// `context`.
///
/// `rng_seed` must be 32 fresh bytes from a cryptographic generator (the node reads the OS
/// generator; this crate does no IO). It is hedged: the ephemeral key is derived from the seed
/// *and* the recipient, context and plaintext, so a seed reused by mistake for another detail
/// or recipient still yields an unrelated ephemeral key. The output is deterministic in all
/// four inputs, which is what lets tests pin it.
pub fn seal(
    recipient: &PublicKey,
    context: &[u8],
    plaintext: &[u8],
    rng_seed: [u8; 32],
) -> Result<Vec<u8>, SealError> {
    seal_to_x25519(&recipient.to_x25519(), context, plaintext, rng_seed)
}

/// [`seal`] to a raw X25519 public key (the Montgomery u-coordinate). Refuses small-order keys.
pub(crate) fn seal_to_x25519(
    recipient: &[u8; 32],
    context: &[u8],
    plaintext: &[u8],
    rng_seed: [u8; 32],
) -> Result<Vec<u8>, SealError> {
    if plaintext.len() > MAX_CONTACT_BYTES {
        return Err(SealError::TooLong {
            len: plaintext.len(),
            max: MAX_CONTACT_BYTES,
        });
    }
    // 32 bytes always deserialise; small order is caught by the DH below (RFC 9180 §7.1.4:
    // an all-zero shared secret is refused, which happens exactly for small-order points, since
    // clamped scalars are multiples of the cofactor).
    let pk = X25519Public::from_bytes(recipient).map_err(|_| SealError::WeakRecipient)?;
    let mut rng = HedgedRng::new(&rng_seed, recipient, context, plaintext);
    let info = info(context);
    let aad = [VERSION];
    let (enc, ciphertext) = hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeS::Base,
        &pk,
        &info,
        plaintext,
        &aad,
        &mut rng,
    )
    // Encapsulation fails only on an all-zero shared secret; the plaintext is bounded far below
    // every other HPKE limit.
    .map_err(|_| SealError::WeakRecipient)?;
    let mut sealed = Vec::with_capacity(OVERHEAD + plaintext.len());
    sealed.push(VERSION);
    sealed.extend_from_slice(&enc.to_bytes());
    sealed.extend_from_slice(&ciphertext);
    Ok(sealed)
}

/// Opens a field sealed by [`seal`] to `recipient`'s public key under the same `context`.
pub fn open(recipient: &SecretKey, context: &[u8], sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    check_sealed(sealed)?;
    let (enc, ciphertext) = sealed[1..].split_at(ENC_BYTES);
    let enc = EncappedKey::from_bytes(enc).map_err(|_| SealError::BadEphemeral)?;
    let secret = recipient.x25519_secret();
    let sk = X25519Secret::from_bytes(&secret[..]).map_err(|_| SealError::Unreadable)?;
    let info = info(context);
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Suite>(
        &OpModeR::Base,
        &sk,
        &enc,
        &info,
        ciphertext,
        &[VERSION],
    )
    .map_err(|error| match error {
        HpkeError::DecapError => SealError::BadEphemeral,
        _ => SealError::Unreadable,
    })
}

/// Checks a sealed field's structure without any key: a known version and a length within
/// [`OVERHEAD`]..=[`MAX_SEALED_BYTES`]. Every node runs it on the aid ops it accepts, so a
/// malformed or oversized field is refused on arrival, not discovered by its recipient.
pub fn check_sealed(sealed: &[u8]) -> Result<(), SealError> {
    let Some(&version) = sealed.first() else {
        return Err(SealError::Truncated {
            len: 0,
            min: OVERHEAD,
        });
    };
    if version != VERSION {
        return Err(SealError::UnknownVersion(version));
    }
    if sealed.len() < OVERHEAD {
        return Err(SealError::Truncated {
            len: sealed.len(),
            min: OVERHEAD,
        });
    }
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(SealError::Oversized {
            len: sealed.len(),
            max: MAX_SEALED_BYTES,
        });
    }
    Ok(())
}

/// HPKE `info`: [`INFO_LABEL`] ‖ context.
fn info(context: &[u8]) -> Vec<u8> {
    let mut info = Vec::with_capacity(INFO_LABEL.len() + context.len());
    info.extend_from_slice(INFO_LABEL);
    info.extend_from_slice(context);
    info
}

/// The randomness HPKE asks for (32 bytes, for the ephemeral key), drawn from
/// SHA-512(label ‖ seed ‖ recipient ‖ len(context) ‖ context ‖ plaintext ‖ block counter):
/// random when the seed is, and never the same for two different messages even if a seed is
/// reused.
struct HedgedRng {
    key: Zeroizing<[u8; 64]>,
    block: Zeroizing<[u8; 64]>,
    used: usize,
    counter: u64,
}

impl HedgedRng {
    fn new(seed: &[u8; 32], recipient: &[u8; 32], context: &[u8], plaintext: &[u8]) -> Self {
        let mut hash = Sha512::new();
        hash.update(b"moot/aid/seal/ephemeral/v1\x00");
        hash.update(seed);
        hash.update(recipient);
        hash.update((context.len() as u64).to_be_bytes());
        hash.update(context);
        hash.update(plaintext);
        let mut key = Zeroizing::new([0u8; 64]);
        key.copy_from_slice(&hash.finalize());
        HedgedRng {
            key,
            block: Zeroizing::new([0u8; 64]),
            used: 64,
            counter: 0,
        }
    }

    fn refill(&mut self) {
        let mut hash = Sha512::new();
        hash.update(&self.key[..]);
        hash.update(self.counter.to_be_bytes());
        let mut out = hash.finalize();
        self.block.copy_from_slice(&out);
        out.zeroize();
        self.counter = self.counter.wrapping_add(1);
        self.used = 0;
    }
}

impl TryRng for HedgedRng {
    type Error = core::convert::Infallible;

    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        let mut bytes = [0u8; 4];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u32::from_le_bytes(bytes))
    }

    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        let mut bytes = [0u8; 8];
        self.try_fill_bytes(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        let mut filled = 0;
        while filled < dst.len() {
            if self.used == self.block.len() {
                self.refill();
            }
            let take = (dst.len() - filled).min(self.block.len() - self.used);
            dst[filled..filled + take].copy_from_slice(&self.block[self.used..self.used + take]);
            self.used += take;
            filled += take;
        }
        Ok(())
    }
}

impl TryCryptoRng for HedgedRng {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;

    /// The u-coordinates of small order on Curve25519 and its twist, as in libsodium's
    /// blacklist (0, 1, the order-8 points, p−1, p, p+1, and their non-canonical forms).
    fn small_order_points() -> Vec<[u8; 32]> {
        let hex = [
            "0000000000000000000000000000000000000000000000000000000000000000",
            "0100000000000000000000000000000000000000000000000000000000000000",
            "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
            "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
            "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
            "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        ];
        hex.iter()
            .map(|h| {
                let mut bytes = [0u8; 32];
                for (i, byte) in bytes.iter_mut().enumerate() {
                    *byte = u8::from_str_radix(&h[2 * i..2 * i + 2], 16).unwrap();
                }
                bytes
            })
            .collect()
    }

    #[test]
    fn sealing_to_a_small_order_point_is_refused() {
        for point in small_order_points() {
            assert_eq!(
                seal_to_x25519(&point, b"ctx", b"07700 900123", [9; 32]),
                Err(SealError::WeakRecipient),
                "{point:?}"
            );
        }
    }

    #[test]
    fn a_small_order_ephemeral_key_is_refused() {
        let bob = SecretKey::from_seed([2; 32]);
        let mut sealed = seal(&bob.public(), b"ctx", b"hi", [1; 32]).unwrap();
        for point in small_order_points() {
            sealed[1..1 + ENC_BYTES].copy_from_slice(&point);
            assert_eq!(
                open(&bob, b"ctx", &sealed),
                Err(SealError::BadEphemeral),
                "{point:?}"
            );
        }
    }

    #[test]
    fn the_rng_is_a_stream() {
        let mut a = HedgedRng::new(&[1; 32], &[2; 32], b"c", b"p");
        let mut b = HedgedRng::new(&[1; 32], &[2; 32], b"c", b"p");
        let mut whole = [0u8; 150];
        a.try_fill_bytes(&mut whole).unwrap();
        let mut parts = [0u8; 150];
        for chunk in parts.chunks_mut(7) {
            b.try_fill_bytes(chunk).unwrap();
        }
        assert_eq!(whole, parts);
        assert_ne!(whole[..64], whole[64..128]);
        // Another plaintext, same seed: another stream.
        let mut c = HedgedRng::new(&[1; 32], &[2; 32], b"c", b"q");
        let mut other = [0u8; 32];
        c.try_fill_bytes(&mut other).unwrap();
        assert_ne!(other, whole[..32]);
    }
}
