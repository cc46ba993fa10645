//! The signed operation envelope: one format for everything a member writes.
//!
//! # Wire format, version 2
//! All integers little-endian; the op is exactly these bytes, nothing before or after:
//!
//! | field | bytes | rule |
//! | --- | --- | --- |
//! | version | 1 | `2` (version 1 had no lane; no deployed data used it, so it is not read) |
//! | author | 32 | the author device's public key (not weak) |
//! | lane | 1 | [`Lane`]: `0` public, `1` members |
//! | seq | 8 | per-(device, lane) sequence number, from 1 |
//! | has_prev | 1 | `0` when `seq == 1`, else `1` |
//! | prev | 32 if has_prev | id of the author's op in the same lane with `seq - 1` |
//! | dep_count | 1 | at most [`MAX_DEPS`] |
//! | deps | 32 each | other ops this one causally follows; strictly ascending, never `prev` |
//! | kind | 2 | body kind; kinds this node does not know are kept and passed on |
//! | body_len | 4 | at most [`MAX_BODY_BYTES`] |
//! | body | body_len | the typed body, encoded by its kind |
//! | signature | 64 | Ed25519 over `"moot/op/v2\0" || hub id || all bytes above` |
//!
//! The hub id is signed but not sent: an op is only ever exchanged within one hub, and signing
//! it means an op cannot be replayed into another hub. The op id is
//! `SHA-256("moot/op-id/v2\0" || op bytes)`. Ops are never re-serialised: the bytes received
//! are the bytes stored, hashed and passed on, so the encoding cannot drift between versions.
//! Decoding is strict (one encoding per op): a length that does not add up, a non-canonical
//! dependency list, an unknown lane or a trailing byte is an error.
//!
//! The **lane** is the unit of access control: a guest receives the public lane only, so a
//! device keeps one chain per lane (a members-lane op never sits in a public op's `prev`), and
//! the rule that a public op depends only on public ops is checked where the dependencies are
//! known (`moot-state`).

use std::fmt;

use sha2::{Digest, Sha256};

use crate::{PublicKey, SecretKey};

/// The envelope version this code writes and reads.
pub const VERSION: u8 = 2;
/// Most causal dependencies besides `prev` one op may name.
pub const MAX_DEPS: usize = 32;
/// Largest body, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Smallest encoded op, in bytes: a chain's first op (no `prev`), no other dependency, an
/// empty body.
pub const MIN_OP_BYTES: usize = 1 + 32 + 1 + 8 + 1 + 1 + 2 + 4 + 64;
/// Largest encoded op, in bytes.
pub const MAX_OP_BYTES: usize =
    1 + 32 + 1 + 8 + 1 + 32 + 1 + 32 * MAX_DEPS + 2 + 4 + MAX_BODY_BYTES + 64;

const SIGN_DOMAIN: &[u8] = b"moot/op/v2\0";
const ID_DOMAIN: &[u8] = b"moot/op-id/v2\0";

/// Who may receive an op: the unit of access control.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub enum Lane {
    /// Anyone who may see the hub's public spaces, guests included.
    Public,
    /// Members only.
    Members,
}

impl Lane {
    /// Both lanes, public first.
    pub const ALL: [Lane; 2] = [Lane::Public, Lane::Members];

    /// The lane's byte in the envelope.
    pub fn to_byte(self) -> u8 {
        match self {
            Lane::Public => 0,
            Lane::Members => 1,
        }
    }

    /// The lane of an envelope byte.
    pub fn from_byte(byte: u8) -> Option<Lane> {
        match byte {
            0 => Some(Lane::Public),
            1 => Some(Lane::Members),
            _ => None,
        }
    }

    /// `public` or `members`.
    pub fn as_str(self) -> &'static str {
        match self {
            Lane::Public => "public",
            Lane::Members => "members",
        }
    }

    /// True if an op in this lane may depend on an op in `dep`: a public op only on public ops.
    pub fn may_depend_on(self, dep: Lane) -> bool {
        self == Lane::Members || dep == Lane::Public
    }
}

/// Orders 32 bytes as the bytes do (lexicographically), as four big-endian words: ids and
/// keys are the keys of the replica's and the roll's ordered maps, and comparing them is most
/// of a lookup. A word compare settles almost every pair of distinct hashes in its first word,
/// without the call into `memcmp` that comparing the arrays makes.
#[inline]
pub fn cmp_bytes32(a: &[u8; 32], b: &[u8; 32]) -> std::cmp::Ordering {
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let word = |c: &[u8]| {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            u64::from_be_bytes(w)
        };
        match word(x).cmp(&word(y)) {
            std::cmp::Ordering::Equal => {}
            other => return other,
        }
    }
    std::cmp::Ordering::Equal
}

/// A 32-byte hash id, printed as hex.
macro_rules! hash_id {
    ($name:ident, $doc:literal) => {
        #[doc = $doc]
        #[derive(Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub struct $name(pub [u8; 32]);

        /// Ordered as its bytes (see [`cmp_bytes32`]).
        impl Ord for $name {
            #[inline]
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                cmp_bytes32(&self.0, &other.0)
            }
        }

        impl PartialOrd for $name {
            #[inline]
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&hex::encode(self.0))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    concat!(stringify!($name), "({})"),
                    &hex::encode(self.0)[..12]
                )
            }
        }
    };
}

hash_id!(OpId, "The id of an op: the hash of its bytes.");
hash_id!(HubId, "The id of a hub, fixed when it is founded.");

/// Why bytes are not an op.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// More bytes than any op may have.
    #[error("op of {0} bytes exceeds the {MAX_OP_BYTES}-byte limit")]
    TooLarge(usize),
    /// The bytes end before the op does.
    #[error("op truncated: {field} needs more bytes")]
    Truncated {
        /// The field being read.
        field: &'static str,
    },
    /// An envelope version this node does not know.
    #[error("unknown op envelope version {0}")]
    Version(u8),
    /// A lane byte that names no lane.
    #[error("unknown lane {0}")]
    Lane(u8),
    /// The author is not a valid, non-weak key.
    #[error("author key: {0}")]
    Author(crate::KeyError),
    /// `seq` is 0, or `has_prev` does not match `seq`.
    #[error("sequence {seq} with has_prev = {has_prev} is not canonical")]
    Sequence {
        /// The sequence number.
        seq: u64,
        /// The flag byte.
        has_prev: u8,
    },
    /// Too many dependencies, unsorted, repeated, or repeating `prev`.
    #[error("dependency list is not canonical: {0}")]
    Deps(&'static str),
    /// The body is larger than allowed.
    #[error("body of {0} bytes exceeds the {MAX_BODY_BYTES}-byte limit")]
    BodyTooLarge(usize),
    /// Bytes after the signature.
    #[error("{0} trailing byte(s) after the op")]
    Trailing(usize),
}

/// Why an op could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// The fields break a rule of the format (see [`DecodeError`]).
    #[error(transparent)]
    Invalid(#[from] DecodeError),
}

/// The fields of an op before signing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// The lane: who may receive the op.
    pub lane: Lane,
    /// Sequence number in the author device's chain in this lane, from 1.
    pub seq: u64,
    /// The author's previous op (`None` exactly when `seq == 1`).
    pub prev: Option<OpId>,
    /// Other ops this one causally follows (sorted and de-duplicated when signed).
    pub deps: Vec<OpId>,
    /// Body kind.
    pub kind: u16,
    /// Encoded body.
    pub body: Vec<u8>,
}

/// A decoded op: its exact bytes, its id and its parsed header. Its signature has *not* been
/// checked; [`SignedOp::authenticate`] does that.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedOp {
    bytes: Vec<u8>,
    id: OpId,
    author: PublicKey,
    lane: Lane,
    seq: u64,
    prev: Option<OpId>,
    deps: Vec<OpId>,
    kind: u16,
    body_start: usize,
}

impl fmt::Debug for SignedOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedOp")
            .field("id", &self.id)
            .field("author", &self.author)
            .field("lane", &self.lane)
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// A value whose signature has been verified. Only this crate can construct it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentic<T>(T);

impl<T> Authentic<T> {
    /// The verified value.
    pub fn get(&self) -> &T {
        &self.0
    }

    /// Gives up the proof and returns the value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Authentic<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Why an op's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature does not verify for this hub, author and content.
    #[error("op {0}: signature does not verify")]
    Invalid(OpId),
}

/// The id of an op given as its exact bytes (what [`SignedOp::id`] returns once decoded),
/// computed without decoding it: for ops already checked, e.g. to tell which ops of a file a
/// node holds.
pub fn id_of_bytes(bytes: &[u8]) -> OpId {
    op_id(bytes)
}

fn op_id(bytes: &[u8]) -> OpId {
    let mut hasher = Sha256::new();
    hasher.update(ID_DOMAIN);
    hasher.update(bytes);
    OpId(hasher.finalize().into())
}

fn signed_message(hub: &HubId, unsigned: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(SIGN_DOMAIN.len() + 32 + unsigned.len());
    message.extend_from_slice(SIGN_DOMAIN);
    message.extend_from_slice(&hub.0);
    message.extend_from_slice(unsigned);
    message
}

impl Draft {
    /// Signs the draft as `key`'s device in `hub`.
    pub fn sign(mut self, hub: &HubId, key: &SecretKey) -> Result<Authentic<SignedOp>, BuildError> {
        self.deps.sort_unstable();
        self.deps.dedup();
        if self.deps.len() > MAX_DEPS {
            return Err(DecodeError::Deps("more than MAX_DEPS dependencies").into());
        }
        if self.body.len() > MAX_BODY_BYTES {
            return Err(DecodeError::BodyTooLarge(self.body.len()).into());
        }
        let mut bytes = Vec::with_capacity(150 + 32 * self.deps.len() + self.body.len());
        bytes.push(VERSION);
        bytes.extend_from_slice(&key.public().to_bytes());
        bytes.push(self.lane.to_byte());
        bytes.extend_from_slice(&self.seq.to_le_bytes());
        match self.prev {
            Some(prev) => {
                bytes.push(1);
                bytes.extend_from_slice(&prev.0);
            }
            None => bytes.push(0),
        }
        bytes.push(self.deps.len() as u8); // <= MAX_DEPS (32), checked above
        for dep in &self.deps {
            bytes.extend_from_slice(&dep.0);
        }
        bytes.extend_from_slice(&self.kind.to_le_bytes());
        bytes.extend_from_slice(&(self.body.len() as u32).to_le_bytes()); // <= MAX_BODY_BYTES
        bytes.extend_from_slice(&self.body);
        let signature = key.sign(&signed_message(hub, &bytes));
        bytes.extend_from_slice(&signature);
        // Decode what we wrote: the same strict rules apply to our own ops as to a peer's.
        let op = SignedOp::decode(&bytes)?;
        Ok(Authentic(op))
    }
}

/// Ops verified together in one Ed25519 batch.
pub const BATCH: usize = 512;

/// Checks the signatures of many ops for `hub`, in batches of [`BATCH`] (Ed25519 batch
/// verification, about 3x faster per signature). When a batch fails, each of its ops is checked
/// alone with the strict rules, so the result says exactly which ops are authentic.
pub fn authenticate_batch(
    hub: &HubId,
    ops: Vec<SignedOp>,
) -> Vec<Result<Authentic<SignedOp>, SignatureError>> {
    // Split across the machine's cores: each op's verdict depends only on that op (a failing
    // batch is re-checked op by op), so the split cannot change a result.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads > 1 && ops.len() >= 4 * BATCH {
        let per_thread = ops.len().div_ceil(threads).div_ceil(BATCH) * BATCH;
        let mut parts: Vec<Vec<SignedOp>> = Vec::new();
        let mut rest = ops.into_iter().peekable();
        while rest.peek().is_some() {
            parts.push(rest.by_ref().take(per_thread).collect());
        }
        let results: Vec<Vec<Result<Authentic<SignedOp>, SignatureError>>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = parts
                    .into_iter()
                    .map(|part| scope.spawn(move || authenticate_sequential(hub, part)))
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join()
                            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                    })
                    .collect()
            });
        return results.into_iter().flatten().collect();
    }
    authenticate_sequential(hub, ops)
}

/// [`authenticate_batch`] on the calling thread only.
pub fn authenticate_sequential(
    hub: &HubId,
    ops: Vec<SignedOp>,
) -> Vec<Result<Authentic<SignedOp>, SignatureError>> {
    authenticate_chunks(hub, ops, None)
}

/// [`authenticate_sequential`] for ops whose authors were parsed through `parsed` (see
/// [`SignedOp::decode_with`]): their points are not decompressed again.
pub fn authenticate_sequential_with(
    hub: &HubId,
    ops: Vec<SignedOp>,
    parsed: &crate::ParsedKeys,
) -> Vec<Result<Authentic<SignedOp>, SignatureError>> {
    authenticate_chunks(hub, ops, Some(parsed))
}

fn authenticate_chunks(
    hub: &HubId,
    ops: Vec<SignedOp>,
    parsed: Option<&crate::ParsedKeys>,
) -> Vec<Result<Authentic<SignedOp>, SignatureError>> {
    let mut out = Vec::with_capacity(ops.len());
    let mut ops = ops.into_iter().peekable();
    while ops.peek().is_some() {
        let chunk: Vec<SignedOp> = ops.by_ref().take(BATCH).collect();
        let messages: Vec<Vec<u8>> = chunk
            .iter()
            .map(|op| signed_message(hub, &op.bytes[..op.bytes.len() - 64]))
            .collect();
        let message_refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        let signatures: Vec<[u8; 64]> = chunk.iter().map(SignedOp::signature).collect();
        let items: Vec<crate::SignatureCheck<'_>> = chunk
            .iter()
            .zip(&message_refs)
            .zip(&signatures)
            .map(|((op, message), signature)| crate::SignatureCheck {
                key: &op.author,
                message,
                signature,
            })
            .collect();
        if crate::verify::verify_batch(&items, parsed) {
            out.extend(chunk.into_iter().map(|op| Ok(Authentic(op))));
        } else {
            out.extend(chunk.into_iter().map(|op| op.authenticate(hub)));
        }
    }
    out
}

/// Reads fields off the front of a byte slice.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], DecodeError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or(DecodeError::Truncated { field })?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, field)?);
        Ok(out)
    }
}

impl SignedOp {
    /// Decodes an op from exactly `bytes`, strictly. Does not check the signature.
    pub fn decode(bytes: &[u8]) -> Result<SignedOp, DecodeError> {
        SignedOp::decode_with(bytes, PublicKey::from_bytes)
    }

    /// [`SignedOp::decode`], with the author key parsed by `author` (a caller that sees the same
    /// authors again and again can cache the parsed keys: parsing a key is most of the cost of
    /// decoding an op).
    pub fn decode_with(
        bytes: &[u8],
        author: impl FnOnce(&[u8; 32]) -> Result<PublicKey, crate::KeyError>,
    ) -> Result<SignedOp, DecodeError> {
        if bytes.len() > MAX_OP_BYTES {
            return Err(DecodeError::TooLarge(bytes.len()));
        }
        let mut r = Reader { bytes, at: 0 };
        let [version] = r.array::<1>("version")?;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let author = author(&r.array::<32>("author")?).map_err(DecodeError::Author)?;
        let [lane] = r.array::<1>("lane")?;
        let lane = Lane::from_byte(lane).ok_or(DecodeError::Lane(lane))?;
        let seq = u64::from_le_bytes(r.array::<8>("seq")?);
        let [has_prev] = r.array::<1>("has_prev")?;
        let prev = match (seq, has_prev) {
            (1, 0) => None,
            (2.., 1) => Some(OpId(r.array::<32>("prev")?)),
            _ => return Err(DecodeError::Sequence { seq, has_prev }),
        };
        let [dep_count] = r.array::<1>("dep_count")?;
        if usize::from(dep_count) > MAX_DEPS {
            return Err(DecodeError::Deps("more than MAX_DEPS dependencies"));
        }
        let mut deps = Vec::with_capacity(usize::from(dep_count));
        for _ in 0..dep_count {
            let dep = OpId(r.array::<32>("deps")?);
            if deps.last().is_some_and(|last| *last >= dep) {
                return Err(DecodeError::Deps("not strictly ascending"));
            }
            if Some(dep) == prev {
                return Err(DecodeError::Deps("repeats prev"));
            }
            deps.push(dep);
        }
        let kind = u16::from_le_bytes(r.array::<2>("kind")?);
        let body_len = u32::from_le_bytes(r.array::<4>("body_len")?) as usize;
        if body_len > MAX_BODY_BYTES {
            return Err(DecodeError::BodyTooLarge(body_len));
        }
        let body_start = r.at;
        r.take(body_len, "body")?;
        r.take(64, "signature")?;
        if r.at != bytes.len() {
            return Err(DecodeError::Trailing(bytes.len() - r.at));
        }
        Ok(SignedOp {
            bytes: bytes.to_vec(),
            id: op_id(bytes),
            author,
            lane,
            seq,
            prev,
            deps,
            kind,
            body_start,
        })
    }

    /// Decodes an op that this node verified itself before storing it, without checking the
    /// signature again (re-verifying a 100,000-op store would dominate start-up). Only the
    /// store loader may call this, on bytes read from the node's own store; everything from a
    /// peer, a bundle or a user goes through [`SignedOp::authenticate`].
    pub fn decode_trusted_from_own_store(
        bytes: &[u8],
        author: impl FnOnce(&[u8; 32]) -> Result<PublicKey, crate::KeyError>,
    ) -> Result<Authentic<SignedOp>, DecodeError> {
        SignedOp::decode_with(bytes, author).map(Authentic)
    }

    /// Checks the signature for `hub`.
    pub fn authenticate(self, hub: &HubId) -> Result<Authentic<SignedOp>, SignatureError> {
        let split = self.bytes.len() - 64;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&self.bytes[split..]);
        if self
            .author
            .verify(&signed_message(hub, &self.bytes[..split]), &signature)
        {
            Ok(Authentic(self))
        } else {
            Err(SignatureError::Invalid(self.id))
        }
    }

    fn signature(&self) -> [u8; 64] {
        let split = self.bytes.len() - 64;
        let mut signature = [0u8; 64];
        signature.copy_from_slice(&self.bytes[split..]);
        signature
    }

    /// The exact bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }
    /// The op id.
    pub fn id(&self) -> OpId {
        self.id
    }
    /// The author device.
    pub fn author(&self) -> PublicKey {
        self.author
    }
    /// The lane.
    pub fn lane(&self) -> Lane {
        self.lane
    }
    /// Sequence number in the author's chain in this lane.
    pub fn seq(&self) -> u64 {
        self.seq
    }
    /// The author's previous op.
    pub fn prev(&self) -> Option<OpId> {
        self.prev
    }
    /// Other causal dependencies, ascending.
    pub fn deps(&self) -> &[OpId] {
        &self.deps
    }
    /// Body kind.
    pub fn kind(&self) -> u16 {
        self.kind
    }
    /// Encoded body.
    pub fn body(&self) -> &[u8] {
        &self.bytes[self.body_start..self.bytes.len() - 64]
    }
}

#[cfg(test)]
mod order_tests {
    use super::{OpId, cmp_bytes32};
    use proptest::prelude::*;

    proptest! {
        /// Ids and keys order exactly as their bytes, so every ordered map and every
        /// "ties by the lower id" rule is unchanged.
        #[test]
        fn ids_order_as_their_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), at in 0usize..32) {
            prop_assert_eq!(cmp_bytes32(&a, &b), a.cmp(&b));
            prop_assert_eq!(OpId(a).cmp(&OpId(b)), a.cmp(&b));
            // Equal up to one byte: the word holding it decides.
            let mut c = a;
            c[at] = c[at].wrapping_add(1);
            prop_assert_eq!(cmp_bytes32(&a, &c), a.cmp(&c));
            prop_assert_eq!(cmp_bytes32(&a, &a), std::cmp::Ordering::Equal);
        }

        /// Public keys too.
        #[test]
        fn keys_order_as_their_bytes(a in any::<[u8; 32]>(), b in any::<[u8; 32]>()) {
            let a = crate::SecretKey::from_seed(a).public();
            let b = crate::SecretKey::from_seed(b).public();
            prop_assert_eq!(a.cmp(&b), a.to_bytes().cmp(&b.to_bytes()));
        }
    }
}
