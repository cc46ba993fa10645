//! Keys, signed operation envelopes and their verification: Moot's trust layer, with no IO.
//!
//! - [`SecretKey`] / [`PublicKey`]: Ed25519 member and device keys (ed25519-dalek); weak keys
//!   cannot be constructed; ids print as hex.
//! - [`Draft`] → [`Draft::sign`] → [`Authentic<SignedOp>`]: one envelope for everything written
//!   (see [`op`] for the byte format). [`SignedOp::decode`] parses untrusted bytes strictly and
//!   [`SignedOp::authenticate`] checks the signature; only this crate can make an
//!   [`Authentic`], so code that needs a verified op cannot be handed an unverified one.
//!
//! - [`seal_for_peer`] / [`open_from_peer`]: a message for one peer of a hub, readable only
//!   with the hub's id (what a node presents to its peers).
//! - [`keystore`]: sealing secret keys, encrypted under a passphrase (Argon2id +
//!   ChaCha20-Poly1305) when one is set.
//!
//! Randomness comes from the caller ([`SecretKey::from_seed`]); nothing here reads a clock, a
//! file or a socket.
//!
//! ```
//! use moot_crypto::{Draft, HubId, Lane, SecretKey, SignedOp};
//!
//! let hub = HubId([7; 32]);
//! let device = SecretKey::from_seed([1; 32]);
//! let op = Draft { lane: Lane::Public, seq: 1, prev: None, deps: vec![], kind: 1, body: b"hello".to_vec() }
//!     .sign(&hub, &device)?;
//! // A peer receives the bytes, decodes and authenticates them.
//! let received = SignedOp::decode(op.bytes())?.authenticate(&hub)?;
//! assert_eq!(received.id(), op.id());
//! assert_eq!(received.body(), b"hello");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod keys;
pub mod keystore;
pub mod op;
mod peer_seal;
mod verify;

pub use keys::{KeyError, KnownPoints, ParsedKeys, PublicKey, SecretKey, forget_recent_points};
pub use op::{
    Authentic, BuildError, DecodeError, Draft, HubId, Lane, OpId, SignatureError, SignedOp,
    authenticate_batch, authenticate_sequential, authenticate_sequential_with,
};
pub use peer_seal::{SEAL_OVERHEAD, open_from_peer, seal_for_peer};
pub use verify::{SignatureCheck, verify_signatures};
