//! Ed25519 keys and printable ids. Key generation takes its randomness from the caller, so this
//! crate never touches the OS.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use ed25519_dalek::{Signer, SigningKey};

/// Why a key or id was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Not 64 hexadecimal digits.
    #[error("a key id is 64 hexadecimal digits")]
    Format,
    /// Not a valid Ed25519 public key (not a curve point).
    #[error("not a valid Ed25519 public key")]
    NotAPoint,
    /// A small-order ("weak") key, for which signatures prove nothing.
    #[error("a weak (small-order) Ed25519 key is not accepted")]
    Weak,
}

/// A secret signing key (a member key or a device key). Zeroised on drop by ed25519-dalek.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// The key whose 32-byte seed is `seed`. The caller supplies the randomness (the binary uses
    /// the OS generator; tests use fixed seeds).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        SecretKey(SigningKey::from_bytes(&seed))
    }

    /// The 32-byte seed, for the keystore.
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs a message (deterministic Ed25519).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }

    /// The X25519 secret scalar of this key, for decrypting what was sealed to
    /// [`PublicKey::to_x25519`]: the first half of SHA-512(seed), clamped — the scalar Ed25519
    /// signs with, as libsodium's `crypto_sign_ed25519_sk_to_curve25519` derives it. Wiped when
    /// dropped. Only for a well-reviewed KEM (see `moot-aid`'s `seal`), never for a second
    /// signature scheme.
    pub fn x25519_secret(&self) -> zeroize::Zeroizing<[u8; 32]> {
        let mut bytes = self.0.to_scalar_bytes();
        let clamped = zeroize::Zeroizing::new(curve25519_dalek::scalar::clamp_integer(bytes));
        zeroize::Zeroize::zeroize(&mut bytes);
        clamped
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print secret material.
        write!(f, "SecretKey(public {})", self.public())
    }
}

/// A public Ed25519 key: the id of a member or a device. Printed as 64 lowercase hex digits.
/// Weak (small-order) keys and non-points cannot be constructed.
///
/// Kept as its 32 bytes (checked once, when made) rather than as ed25519-dalek's
/// `VerifyingKey`, which also holds the decompressed point: 192 bytes, in every roll entry,
/// body and op that names a member or a device. The point is decompressed again where a
/// signature is checked (once per distinct key in a batch).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Parses 32 bytes, refusing non-points and weak keys.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        parse_point(bytes).map(|_| PublicKey(*bytes))
    }

    /// The key as a curve point (`None` cannot happen: the bytes were checked when the key was
    /// made; a caller treats it as a key that verifies nothing).
    pub(crate) fn point(&self) -> Option<curve25519_dalek::EdwardsPoint> {
        parse_point(&self.0).ok()
    }

    /// The 32-byte encoding.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }

    /// The 32-byte encoding, borrowed.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// This key as an X25519 public key (the Montgomery u-coordinate of the same point,
    /// birationally mapped), whose secret is [`SecretKey::x25519_secret`]. Never of small order,
    /// since weak keys cannot be constructed (were the point somehow missing, the result would
    /// be the zero coordinate, which sealing refuses as small order).
    pub fn to_x25519(&self) -> [u8; 32] {
        self.point()
            .map_or([0; 32], |point| point.to_montgomery().to_bytes())
    }

    /// True if `signature` is a valid signature of `message` by this key, under the one rule
    /// every node applies alike, alone or in batches (see `verify.rs`: cofactored, canonical
    /// `s`).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        crate::verify::verify(self, message, signature)
    }
}

/// The point 32 bytes encode, if they encode a point that is not of small order (a weak key,
/// for which signatures prove nothing) — what ed25519-dalek's `VerifyingKey::from_bytes` and
/// `is_weak` check.
fn parse_point(bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
    if let Some(point) = recent_point(bytes) {
        return Ok(point);
    }
    let point = CompressedEdwardsY(*bytes)
        .decompress()
        .ok_or(KeyError::NotAPoint)?;
    if point.is_small_order() {
        return Err(KeyError::Weak);
    }
    remember_point(bytes, point);
    Ok(point)
}

/// Keys whose points this thread decompressed lately, at most this many (about 200 bytes
/// each).
const RECENT_POINTS: usize = 1_024;

thread_local! {
    /// The points of keys parsed or checked lately on this thread, only of keys that parsed
    /// (a point and not of small order). Decompressing a point is a pure function of the bytes,
    /// so this changes no verdict: it spares a square root each time a key comes back soon,
    /// as it does within a sync's frame — an admission names the member, the device
    /// certification that follows names the member again (and its certificate is checked by
    /// the member's key), and the device's own ops follow. Cleared when full.
    static RECENT: std::cell::RefCell<std::collections::HashMap<[u8; 32], EdwardsPoint>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// The point of `bytes` if this thread parsed them lately (and they parsed).
fn recent_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    RECENT
        .try_with(|recent| recent.try_borrow().ok()?.get(bytes).copied())
        .ok()
        .flatten()
}

/// Remembers the point of key bytes that parsed (a thread being torn down remembers nothing).
fn remember_point(bytes: &[u8; 32], point: EdwardsPoint) {
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            if recent.len() >= RECENT_POINTS {
                recent.clear();
            }
            recent.insert(*bytes, point);
        }
    });
}

/// Lets go of the points this thread remembers (its `RECENT` memo), for a thread about to wait
/// for work: an idle node then holds none (up to ~260 KB a thread). Changes no verdict.
pub fn forget_recent_points() {
    let _ = RECENT.try_with(|recent| {
        if let Ok(mut recent) = recent.try_borrow_mut() {
            *recent = std::collections::HashMap::new();
        }
    });
}

/// Public keys parsed from bytes, each with its curve point, for a run of signature checks.
/// Parsing a key decompresses its point (to refuse non-points and weak keys), and checking a
/// signature by the key needs the point again: ops by distinct authors (a poll's ballots) had
/// each author's point decompressed twice, once to decode the op and once to check it. Through
/// this, once. Bounded: cleared when it holds `max` keys (about 230 bytes each).
pub struct ParsedKeys {
    keys: std::collections::HashMap<[u8; 32], (PublicKey, EdwardsPoint)>,
    max: usize,
    /// A hub's certified keys, whose points are looked up there before any is decompressed.
    known: Option<std::sync::Arc<KnownPoints>>,
}

impl ParsedKeys {
    /// An empty cache holding at most `max` keys.
    pub fn new(max: usize) -> Self {
        ParsedKeys {
            keys: std::collections::HashMap::new(),
            max: max.max(1),
            known: None,
        }
    }

    /// From now on, takes the points of keys in `known` from there (and fills the points
    /// it is missing) instead of decompressing them; `None`: stops consulting any.
    pub fn consult(&mut self, known: Option<std::sync::Arc<KnownPoints>>) {
        self.known = known;
    }

    /// [`PublicKey::from_bytes`], remembering the key and its point.
    pub fn parse(&mut self, bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        if let Some((key, _)) = self.keys.get(bytes) {
            return Ok(*key);
        }
        let point = match &self.known {
            Some(known) => known.point_of(bytes)?,
            None => parse_point(bytes)?,
        };
        if self.keys.len() >= self.max {
            self.keys.clear();
        }
        let key = PublicKey(*bytes);
        self.keys.insert(*bytes, (key, point));
        Ok(key)
    }

    /// The point of a key parsed here (and not cleared since).
    pub(crate) fn point(&self, key: &PublicKey) -> Option<EdwardsPoint> {
        self.keys.get(&key.0).map(|(_, point)| *point)
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True if none is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The curve points of the keys a hub certified (its devices), shared by the threads that
/// check signatures: a key certified long before its ops arrive (a member's device, voting
/// months after it was certified) is not decompressed again for each batch of its ops. Filled
/// by the replica as certificates are judged — so bounded by the certifications it holds (one
/// stored op each), never by what a peer merely sends — with each point taken from the
/// thread's recent points when there (a store being loaded decodes each certificate just
/// before), else computed the first time a check needs it. A point is a pure function of the
/// key's bytes: consulting this changes no verdict (a wrong one could only fail a batch, whose
/// ops are then checked one by one from their bytes). Keys are kept for as long as the table
/// (certifications are never taken out of a roll): about 40 bytes per key, and 160 more while
/// its point is held — until [`KnownPoints::forget_points`] (a node at rest).
#[derive(Default)]
pub struct KnownPoints {
    table: std::sync::RwLock<PointTable>,
}

#[derive(Default)]
struct PointTable {
    /// Each key added, with its point's place in `points` ([`UNFILLED`] until computed).
    places: std::collections::HashMap<[u8; 32], u32>,
    /// The points computed, in the order they were.
    points: Vec<EdwardsPoint>,
}

/// The place of a key whose point is not computed yet.
const UNFILLED: u32 = u32::MAX;

impl PointTable {
    /// Keeps `point` as the point of `bytes` (a key added and not filled yet).
    fn fill(&mut self, bytes: &[u8; 32], point: EdwardsPoint) {
        let Ok(place) = u32::try_from(self.points.len()) else {
            return;
        };
        if place == UNFILLED {
            return;
        }
        if let Some(slot) = self.places.get_mut(bytes)
            && *slot == UNFILLED
        {
            // The point first: a slot never names a place that holds no point (were the push
            // to fail, the next fill would give that place to another key).
            self.points.push(point);
            *slot = place;
        }
    }
}

impl KnownPoints {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table to read. It only ever holds points computed from their keys' bytes, so a
    /// thread that panicked while holding the lock left nothing wrong in it.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, PointTable> {
        self.table
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The table to write (see [`KnownPoints::read`]).
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, PointTable> {
        self.table
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Adds `key` (a key the hub certified; adding it again does nothing).
    pub fn add(&self, key: &PublicKey) {
        let point = recent_point(&key.0);
        let mut table = self.write();
        if table.places.contains_key(&key.0) {
            return;
        }
        table.places.insert(key.0, UNFILLED);
        if let Some(point) = point {
            table.fill(&key.0, point);
        }
    }

    /// True if `key` was added.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.read().places.contains_key(&key.0)
    }

    /// Keys added.
    pub fn len(&self) -> usize {
        self.read().places.len()
    }

    /// True if no key was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keys whose points are held (computed when added, or by a check since).
    pub fn points_held(&self) -> usize {
        self.read().points.len()
    }

    /// Gives back the spare capacity of the table's storage.
    pub fn shrink_to_fit(&self) {
        let mut table = self.write();
        table.places.shrink_to_fit();
        table.points.shrink_to_fit();
    }

    /// Lets go of the points (160 bytes each), keeping the keys: each is computed again the
    /// first time a check needs it. For a node at rest (no ops for a while): a hub of 100,000
    /// certified devices holds 16 MB of points, to spare one square root per device in the
    /// next burst of their ops.
    pub fn forget_points(&self) {
        let mut table = self.write();
        table.points = Vec::new();
        for place in table.places.values_mut() {
            *place = UNFILLED;
        }
        table.places.shrink_to_fit();
    }

    /// The point of `bytes` as [`parse_point`] gives it: from the table when held there,
    /// decompressed otherwise (and kept, for a key the table holds).
    fn point_of(&self, bytes: &[u8; 32]) -> Result<EdwardsPoint, KeyError> {
        let held = {
            let table = self.read();
            table
                .places
                .get(bytes)
                .map(|&place| table.points.get(place as usize).copied())
        };
        match held {
            Some(Some(point)) => Ok(point),
            None => parse_point(bytes),
            Some(None) => {
                let point = parse_point(bytes)?;
                self.write().fill(bytes, point);
                Ok(point)
            }
        }
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_bytes().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let bytes = <[u8; 32]>::deserialize(deserializer)?;
        PublicKey::from_bytes(&bytes).map_err(serde::de::Error::custom)
    }
}

impl PartialOrd for PublicKey {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered as its bytes (see [`crate::op::cmp_bytes32`]).
impl Ord for PublicKey {
    #[inline]
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        crate::op::cmp_bytes32(&self.0, &other.0)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut bytes).map_err(|_| KeyError::Format)?;
        PublicKey::from_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The table hands out each key's own point, whether held when added or computed by a
    /// check, and decompresses a key it does not hold without adding it.
    #[test]
    fn known_points_are_the_keys_own_points() {
        let keys: Vec<PublicKey> = (0..40u8)
            .map(|i| SecretKey::from_seed([i; 32]).public())
            .collect();
        let known = KnownPoints::new();
        for key in &keys[..10] {
            // Parsed on this thread just before: held when added.
            assert_eq!(PublicKey::from_bytes(&key.0).as_ref(), Ok(key));
            known.add(key);
        }
        std::thread::scope(|scope| {
            scope.spawn(|| keys[10..30].iter().for_each(|key| known.add(key)));
        });
        assert_eq!((known.len(), known.points_held()), (30, 10));
        for key in &keys {
            let own = CompressedEdwardsY(key.0).decompress();
            assert!(own.is_some());
            assert_eq!(known.point_of(&key.0).ok(), own);
            assert_eq!(known.point_of(&key.0).ok(), own, "asked again");
        }
        assert_eq!((known.len(), known.points_held()), (30, 30));
        // Bytes that are no point are refused as when parsed.
        let not_a_point = (0u8..=255)
            .map(|b| [b; 32])
            .find(|bytes| CompressedEdwardsY(*bytes).decompress().is_none());
        let not_a_point = not_a_point.unwrap_or([0xff; 32]);
        assert!(PublicKey::from_bytes(&not_a_point).is_err());
        assert_eq!(
            known.point_of(&not_a_point).err(),
            PublicKey::from_bytes(&not_a_point).err()
        );
        assert_eq!(known.len(), 30);
    }

    #[test]
    fn ids_round_trip_through_text() {
        let key = SecretKey::from_seed([1; 32]).public();
        let text = key.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<PublicKey>(), Ok(key));
        assert_eq!("xyz".parse::<PublicKey>(), Err(KeyError::Format));
    }

    /// A key is its 32 bytes in memory (roll entries, bodies and ops hold many), and one made
    /// from bytes is the same key as the signer's, down to its order.
    #[test]
    fn a_key_is_32_bytes_and_parsing_gives_the_signers_key() {
        assert_eq!(std::mem::size_of::<PublicKey>(), 32);
        let keys: Vec<PublicKey> = (0..8u8)
            .map(|i| SecretKey::from_seed([i; 32]).public())
            .collect();
        for key in &keys {
            assert_eq!(PublicKey::from_bytes(&key.to_bytes()).as_ref(), Ok(key));
            assert!(key.point().is_some());
        }
        let mut sorted = keys.clone();
        sorted.sort();
        let mut bytes: Vec<[u8; 32]> = keys.iter().map(PublicKey::to_bytes).collect();
        bytes.sort();
        assert_eq!(
            sorted.iter().map(PublicKey::to_bytes).collect::<Vec<_>>(),
            bytes
        );
        // Bytes that are not a point are refused.
        let mut not_a_point = [0u8; 32];
        not_a_point[0] = 2;
        assert_eq!(
            PublicKey::from_bytes(&not_a_point),
            Err(KeyError::NotAPoint)
        );
    }

    #[test]
    fn weak_keys_are_refused() {
        // The identity point (encoded as 1 followed by zeros) has small order.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
    }

    /// `count` byte strings of which about half are points (some of small order), then the
    /// signers' keys, then the identity (a weak key, also returned).
    fn key_candidates(count: u32, signers: &[SecretKey]) -> (Vec<[u8; 32]>, [u8; 32]) {
        let mut candidates: Vec<[u8; 32]> = (0..count)
            .map(|i| {
                let mut bytes = [0u8; 32];
                bytes[..4].copy_from_slice(&i.to_le_bytes());
                bytes[31] = (i % 128) as u8;
                bytes
            })
            .collect();
        candidates.extend(signers.iter().map(|k| k.public().to_bytes()));
        let mut identity = [0u8; 32];
        identity[0] = 1;
        candidates.push(identity);
        (candidates, identity)
    }

    /// Parsing through the cache accepts and refuses exactly what `from_bytes` does, and keeps
    /// the point the key's own decompression gives; it holds at most its bound.
    #[test]
    fn parsed_keys_parse_as_from_bytes_and_keep_the_keys_point() {
        let mut parsed = ParsedKeys::new(64);
        let signers: Vec<SecretKey> = (0..40u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let (candidates, identity) = key_candidates(600, &signers);
        let (mut accepted, mut refused) = (0, 0);
        for bytes in candidates.iter().chain(candidates.iter()) {
            let expected = PublicKey::from_bytes(bytes);
            let got = parsed.parse(bytes);
            assert_eq!(got, expected, "{bytes:?}");
            match got {
                Ok(key) => {
                    accepted += 1;
                    let point = parsed.point(&key).map(|p| p.compress());
                    assert_eq!(point, key.point().map(|p| p.compress()));
                }
                Err(_) => refused += 1,
            }
            assert!(parsed.len() <= 64);
        }
        assert!(
            accepted > 80 && refused > 80,
            "{accepted} accepted, {refused} refused"
        );
        assert_eq!(parsed.parse(&identity), Err(KeyError::Weak));
    }

    /// Keys parsed again on a thread that parsed them lately (its points remembered) get the
    /// verdict and point of a parse from scratch, whatever came between: non-points, weak keys,
    /// more keys than are remembered (the memory cleared), checks by the keys.
    #[test]
    fn keys_parsed_again_get_the_verdict_of_a_fresh_parse() {
        fn fresh(bytes: &[u8; 32]) -> Result<[u8; 32], KeyError> {
            let point = CompressedEdwardsY(*bytes)
                .decompress()
                .ok_or(KeyError::NotAPoint)?;
            if point.is_small_order() {
                return Err(KeyError::Weak);
            }
            Ok(point.compress().to_bytes())
        }
        let signers: Vec<SecretKey> = (0..40u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let (candidates, identity) = key_candidates(3 * RECENT_POINTS as u32, &signers);
        let (mut accepted, mut refused) = (0, 0);
        for round in 0..3 {
            for bytes in &candidates {
                let got = PublicKey::from_bytes(bytes);
                assert_eq!(
                    got.as_ref().map(|k| k.to_bytes()).map_err(|e| e.clone()),
                    fresh(bytes).map(|_| *bytes)
                );
                match got {
                    Ok(key) => {
                        accepted += 1;
                        let point = key.point().map(|p| p.compress().to_bytes());
                        assert_eq!(point, fresh(bytes).ok(), "round {round}");
                    }
                    Err(_) => refused += 1,
                }
            }
            for signer in &signers {
                let signature = signer.sign(b"device");
                assert!(signer.public().verify(b"device", &signature));
                assert!(!signer.public().verify(b"other", &signature));
            }
        }
        assert!(
            accepted > 300 && refused > 300,
            "{accepted} accepted, {refused} refused"
        );
        RECENT.with(|recent| assert!(recent.borrow().len() <= RECENT_POINTS));
        // Forgotten, the points are computed again, to the same keys.
        RECENT.with(|recent| assert!(!recent.borrow().is_empty()));
        forget_recent_points();
        RECENT.with(|recent| assert_eq!(recent.borrow().capacity(), 0));
        for bytes in &candidates {
            let got = PublicKey::from_bytes(bytes);
            assert_eq!(got.map(|k| k.to_bytes()), fresh(bytes).map(|_| *bytes));
        }
        RECENT.with(|recent| assert!(!recent.borrow().is_empty()));
        assert_eq!(PublicKey::from_bytes(&identity), Err(KeyError::Weak));
    }

    #[test]
    fn signatures_verify_only_for_their_key_and_message() {
        let alice = SecretKey::from_seed([2; 32]);
        let bob = SecretKey::from_seed([3; 32]);
        let signature = alice.sign(b"ballot");
        assert!(alice.public().verify(b"ballot", &signature));
        assert!(!alice.public().verify(b"ballot!", &signature));
        assert!(!bob.public().verify(b"ballot", &signature));
        assert!(format!("{alice:?}").starts_with("SecretKey(public "));
    }

    #[test]
    fn x25519_forms_agree() {
        // The X25519 public key of the secret scalar is the Montgomery form of the Ed25519 key.
        for seed in [[0u8; 32], [5; 32], [255; 32]] {
            let key = SecretKey::from_seed(seed);
            let secret = key.x25519_secret();
            assert_eq!(secret[0] & 7, 0, "clamped");
            let public = curve25519_dalek::MontgomeryPoint::mul_base_clamped(*secret);
            assert_eq!(public.to_bytes(), key.public().to_x25519());
        }
    }
}
