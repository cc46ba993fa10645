//! Mutual aid, the pure parts: contact details sealed to the one member who may read them
//! ([`seal()`] and [`open`], module [`mod@seal`]), and matching offers to requests
//! ([`matching`]). No IO: randomness and "now" come from the caller.
//!
//! # Sealed contact details
//!
//! Every member's node holds every op of the hub's members lane, so a phone number or e-mail
//! address in an aid op is not hidden by leaving it out of a view: it is encrypted to the
//! matched member's key with [`seal::seal`] and read with [`seal::open`]. The scheme is
//! RFC 9180 HPKE (mode base, DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20-Poly1305) from
//! the `hpke` crate; the byte format is in [`mod@seal`].
//!
//! **One key for signing and for receiving.** Members have one long-term key, an Ed25519
//! signing key; the hub knows members by it. Rather than publish and certify a second key, a
//! contact detail is sealed to the same key's X25519 form: the public key mapped to Montgomery
//! form ([`moot_crypto::PublicKey::to_x25519`]) and the secret scalar Ed25519 signs with
//! ([`moot_crypto::SecretKey::x25519_secret`]: SHA-512 of the seed, first half, clamped). This
//! is libsodium's `crypto_sign_ed25519_pk_to_curve25519` / `crypto_sign_ed25519_sk_to_curve25519`
//! practice, as used by age and minisign-style tools; Thormarker, "On using the same key pair
//! for Ed25519 and an X25519 based KEM" (ePrint 2021/509), proves Ed25519 signatures and an
//! X25519 DHKEM stay secure under the shared key. The scalar is only ever used in those two
//! well-reviewed constructions, and weak (small-order) Ed25519 keys cannot be constructed, so
//! their X25519 forms are never of small order; a small-order X25519 key is refused anyway.
//!
//! **What a third member sees.** The sealed field's version byte, a fresh ephemeral public key
//! (random, unlinkable to either party) and a ciphertext exactly as long as the detail plus a
//! 16-byte tag: the length of the detail, nothing else. Trying their own key fails with
//! [`seal::SealError::Unreadable`], as does a field copied into another item or hub, since the
//! caller's `context` ([`seal::contact_context`]: hub id ‖ item op id) is bound as HPKE `info`.
//! Any node can refuse a malformed field with [`seal::check_sealed`] without a key.
//!
//! What this does not give: sender authentication (the op's signature does that), forward
//! secrecy against a later theft of the recipient's key, or hiding the detail's length.
//!
//! # Matching
//!
//! [`matching::Board`] holds the open items with their keys folded once; [`matching::Board::matches`]
//! lists, for an offer, the requests it could meet, and for a request, the offers that could
//! meet it, ranked as [`matching`] describes.
//!
//! ```
//! use moot_aid::{Board, ItemKind, ItemView, Status, Window, contact_context, open, seal};
//! use moot_crypto::SecretKey;
//!
//! // Bob's request for food in E1 6AN; Ann's offer in E1.
//! let (ann, bob) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
//! let item = |id: u8, kind, area: &str, author: &SecretKey| ItemView {
//!     id: [id; 32],
//!     kind,
//!     status: Status::Open,
//!     category: "Food".into(),
//!     area: Some(area.into()),
//!     window: Window::default(),
//!     quantity: None,
//!     pledged: 0,
//!     author: author.public().to_bytes(),
//! };
//! let board = Board::new(vec![
//!     item(1, ItemKind::Request, "E1 6AN", &bob),
//!     item(2, ItemKind::Offer, "e1", &ann),
//! ]);
//! let found = board.matches(&[1; 32], 1_800_000_000, 10);
//! assert_eq!(found[0].id, [2; 32]);
//!
//! // Ann pledges, sealing her phone number to Bob for this item of this hub.
//! let context = contact_context(&[7; 32], &[2; 32]);
//! let sealed = seal(&bob.public(), &context, b"07700 900123", [42; 32])?; // 32 fresh random bytes
//! assert_eq!(open(&bob, &context, &sealed)?, b"07700 900123");
//! assert!(open(&ann, &context, &sealed).is_err());
//! # Ok::<(), moot_aid::SealError>(())
//! ```

#![deny(missing_docs)]

pub mod matching;
pub mod seal;

pub use matching::{Board, ItemKind, ItemView, Match, MatchReason, Status, Window, matches};
pub use seal::{MAX_CONTACT_BYTES, SealError, check_sealed, contact_context, open, seal};
