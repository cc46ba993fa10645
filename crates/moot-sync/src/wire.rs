//! The wire messages and their codec: one version byte, then a postcard-encoded [`Message`].
//!
//! Wire types are separate from domain types (a refactor of `moot-state` never silently changes
//! the protocol); ops travel as their exact signed bytes. The decoder is strict and bounded: a
//! frame longer than [`MAX_MESSAGE_BYTES`] is refused before it is read, every list has a
//! maximum length checked while it is read, nothing is preallocated from a length the peer
//! claims (so memory grows only with bytes actually present), and trailing bytes are an error.
//! It never panics: `tests/wire.rs` feeds it random bytes, mutations and truncations.
//! `docs/PROTOCOL.md` specifies the format.

use std::fmt;
use std::marker::PhantomData;

use moot_crypto::op::MAX_OP_BYTES;
use moot_crypto::{Lane, OpId};
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The wire version this code writes and reads (the first byte of every frame).
pub const WIRE_VERSION: u8 = 2;
/// Largest frame, in bytes (version byte included). Room for a batch of ops, and for the
/// largest op ([`MAX_OP_BYTES`], about 66 KiB) many times over.
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// Most ops in one [`Message::Ops`].
pub const MAX_OPS_PER_MESSAGE: usize = 2048;
/// Most ids in one [`Message::Want`].
pub const MAX_IDS_PER_MESSAGE: usize = 1024;
/// Most heads in one [`Message::Heads`] (a hub with more chains sends several parts).
pub const MAX_HEADS_PER_MESSAGE: usize = 4096;
/// Longest credential in one [`Message::Present`].
pub const MAX_CREDENTIAL_BYTES: usize = 1024;
/// Bytes a frame adds to its ops, at most, besides one length prefix per op: the version byte,
/// the message tag and the op count.
pub const OPS_FRAME_OVERHEAD: usize = 1 + 1 + 5;
/// Bytes of one op's length prefix, at most (a varint of at most [`MAX_OP_BYTES`]).
pub const OP_PREFIX_BYTES: usize = 3;

/// The head of one (device, lane) chain: an op that no other op of the chain held by the
/// sender continues. A forked chain has several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Head {
    /// The author device's public key bytes.
    pub device: [u8; 32],
    /// The chain's lane.
    pub lane: Lane,
    /// The head op's sequence number.
    pub seq: u64,
    /// The head op.
    pub id: OpId,
}

/// One wire message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// Part of the sender's chain heads, in the lanes the receiver may receive. `first` starts
    /// a new set (forgetting parts of an earlier one); `last` completes it, and the receiver
    /// then streams what the sender lacks.
    Heads {
        /// This part starts a set.
        first: bool,
        /// This part completes the set.
        last: bool,
        /// Heads, at most [`MAX_HEADS_PER_MESSAGE`].
        heads: Bounded<Head, MAX_HEADS_PER_MESSAGE>,
    },
    /// Ops, each as its exact signed bytes, in causal order (each after the ops it depends on
    /// that the receiver is not known to hold).
    Ops {
        /// At most [`MAX_OPS_PER_MESSAGE`], each at most [`MAX_OP_BYTES`].
        ops: Bounded<OpBytes, MAX_OPS_PER_MESSAGE>,
    },
    /// Ops the sender lacks (dependencies of ops it holds waiting), by id.
    Want {
        /// At most [`MAX_IDS_PER_MESSAGE`].
        ids: Bounded<OpId, MAX_IDS_PER_MESSAGE>,
    },
    /// What the sender's device presents for the lanes it may receive, opaque to the engine
    /// (a node sends its member's certificate of the device, so that a peer that has not yet
    /// seen the device's certification op can tell a member's new device from a stranger).
    /// Sent first, once per session.
    Present {
        /// At most [`MAX_CREDENTIAL_BYTES`].
        credential: Bounded<u8, MAX_CREDENTIAL_BYTES>,
    },
}

/// Whether a frame made by [`encode`] may name ops or heads of a lane (`Heads`, `Ops`), read
/// from its message tag alone: what a peer must not be sent once that lane is taken from it.
/// `Want` and `Present` name none; anything unreadable counts as naming some.
pub fn names_lane_data(frame: &[u8]) -> bool {
    // The version byte, then postcard's variant index (one byte below 128).
    !matches!(frame.get(1), Some(2 | 3))
}

/// Why a frame is not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// The frame is empty (no version byte).
    #[error("empty frame")]
    Empty,
    /// Larger than [`MAX_MESSAGE_BYTES`].
    #[error("frame of {0} bytes exceeds the {MAX_MESSAGE_BYTES}-byte limit")]
    TooLarge(usize),
    /// A wire version this node does not speak.
    #[error("unknown wire version {0}")]
    Version(u8),
    /// The bytes after the version byte are not a message (or break a limit).
    #[error("malformed message: {0}")]
    Malformed(postcard::Error),
    /// Bytes after the message.
    #[error("{0} trailing byte(s) after the message")]
    Trailing(usize),
    /// A message could not be encoded within the limits (a bug in the caller).
    #[error("message exceeds a wire limit")]
    Limit,
}

/// A list of at most `MAX` items. Decoding refuses a longer one as soon as it reads item
/// `MAX + 1`, and never preallocates from the claimed length.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Bounded<T, const MAX: usize>(Vec<T>);

impl<T, const MAX: usize> Bounded<T, MAX> {
    /// The list, or `None` when it is longer than `MAX`.
    pub fn new(items: Vec<T>) -> Option<Self> {
        (items.len() <= MAX).then_some(Bounded(items))
    }
    /// The items.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }
    /// The items, owned.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
    /// Number of items.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<T: fmt::Debug, const MAX: usize> fmt::Debug for Bounded<T, MAX> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl<T: Serialize, const MAX: usize> Serialize for Bounded<T, MAX> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(serializer)
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Bounded<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BoundedVisitor<T, const MAX: usize>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for BoundedVisitor<T, MAX> {
            type Value = Bounded<T, MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "a list of at most {MAX} items")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                if seq.size_hint().is_some_and(|n| n > MAX) {
                    return Err(serde::de::Error::invalid_length(MAX + 1, &self));
                }
                // No preallocation from the claimed length: the vector grows with the items
                // actually read, so memory is bounded by the input.
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    if items.len() == MAX {
                        return Err(serde::de::Error::invalid_length(MAX + 1, &self));
                    }
                    items.push(item);
                }
                Ok(Bounded(items))
            }
        }
        deserializer.deserialize_seq(BoundedVisitor::<T, MAX>(PhantomData))
    }
}

/// One op's exact bytes on the wire (at most [`MAX_OP_BYTES`]; not decoded as an op here:
/// the replica does that, and reports malformed ops).
#[derive(Clone, PartialEq, Eq)]
pub struct OpBytes(pub Vec<u8>);

impl fmt::Debug for OpBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OpBytes({} bytes)", self.0.len())
    }
}

impl AsRef<[u8]> for OpBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for OpBytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for OpBytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct BytesVisitor;
        impl Visitor<'_> for BytesVisitor {
            type Value = OpBytes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "op bytes, at most {MAX_OP_BYTES}")
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<OpBytes, E> {
                if v.len() > MAX_OP_BYTES {
                    return Err(E::invalid_length(v.len(), &self));
                }
                Ok(OpBytes(v.to_vec()))
            }
        }
        deserializer.deserialize_bytes(BytesVisitor)
    }
}

/// Encodes a message as a frame: the version byte, then the message. Fails if the frame would
/// exceed [`MAX_MESSAGE_BYTES`].
pub fn encode(message: &Message) -> Result<Vec<u8>, WireError> {
    let frame = postcard::to_extend(message, vec![WIRE_VERSION]).map_err(|_| WireError::Limit)?;
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::Limit);
    }
    Ok(frame)
}

/// Decodes a frame strictly: size, version, message, no trailing bytes. Never panics;
/// allocates at most in proportion to `frame`'s length.
pub fn decode(frame: &[u8]) -> Result<Message, WireError> {
    if frame.len() > MAX_MESSAGE_BYTES {
        return Err(WireError::TooLarge(frame.len()));
    }
    let (&version, rest) = frame.split_first().ok_or(WireError::Empty)?;
    if version != WIRE_VERSION {
        return Err(WireError::Version(version));
    }
    let (message, trailing) =
        postcard::take_from_bytes::<Message>(rest).map_err(WireError::Malformed)?;
    if !trailing.is_empty() {
        return Err(WireError::Trailing(trailing.len()));
    }
    Ok(message)
}

/// Bytes an op adds to an [`Message::Ops`] frame, at most: its length prefix and its bytes.
pub fn op_frame_bytes(op_len: usize) -> usize {
    OP_PREFIX_BYTES + op_len
}
