//! Ed25519 verification with one rule for single and batch checks.
//!
//! Every node must agree on which signatures are valid, whether it checks an op alone or in a
//! batch. ed25519-dalek's `verify_strict` uses the cofactorless equation and its `verify_batch`
//! a random linear combination of it: a signature whose `R` carries a small torsion component
//! fails the first but passes the second with probability up to 1/2, so two nodes could disagree
//! about an op a malicious member crafted. Here both checks use the **cofactored** equation
//! (as ZIP-215 does): `[8]([s]B - [k]A - R) = 0`, with `s` canonical, `k = SHA-512(R || A ||
//! M)` and `A` not of small order. A batch passes exactly when every member passes, except with
//! negligible probability; honest signatures (from ed25519-dalek's signer) satisfy both forms.
//! Batch coefficients are 128-bit values derived from a hash of the whole batch, so the check is
//! deterministic.

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

use crate::PublicKey;

/// One signature to check: `signature` on `message` by `key`.
#[derive(Debug, Clone, Copy)]
pub struct SignatureCheck<'a> {
    /// The signer.
    pub key: &'a PublicKey,
    /// What was signed.
    pub message: &'a [u8],
    /// The signature.
    pub signature: &'a [u8; 64],
}

/// Checks many signatures, each under the one rule of [`PublicKey::verify`]: in Ed25519
/// batches of [`crate::op::BATCH`], and one by one in a batch that fails, so that each result
/// is exactly that signature's.
pub fn verify_signatures(checks: &[SignatureCheck<'_>]) -> Vec<bool> {
    let mut out = Vec::with_capacity(checks.len());
    for chunk in checks.chunks(crate::op::BATCH) {
        if verify_batch(chunk, None) {
            out.extend(std::iter::repeat_n(true, chunk.len()));
        } else {
            out.extend(chunk.iter().map(|c| verify(c.key, c.message, c.signature)));
        }
    }
    out
}

/// `R` as a point and `s` as a canonical scalar, or `None`.
fn parts(signature: &[u8; 64]) -> Option<(EdwardsPoint, Scalar)> {
    let mut r = [0u8; 32];
    r.copy_from_slice(&signature[..32]);
    let mut s = [0u8; 32];
    s.copy_from_slice(&signature[32..]);
    let r = CompressedEdwardsY(r).decompress()?;
    let s = Option::from(Scalar::from_canonical_bytes(s))?;
    Some((r, s))
}

fn challenge(signature: &[u8; 64], key: &PublicKey, message: &[u8]) -> Scalar {
    let mut hasher = Sha512::new();
    hasher.update(&signature[..32]);
    hasher.update(key.to_bytes());
    hasher.update(message);
    Scalar::from_bytes_mod_order_wide(&hasher.finalize().into())
}

/// Checks one signature.
pub(crate) fn verify(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    let Some((r, s)) = parts(signature) else {
        return false;
    };
    let k = challenge(signature, key, message);
    let Some(a) = key.point() else {
        return false;
    };
    // [k](-A) + [s]B, which equals R for a valid signature (up to torsion).
    let expected_r = EdwardsPoint::vartime_double_scalar_mul_basepoint(&k, &(-a), &s);
    (expected_r - r).mul_by_cofactor().is_identity()
}

/// Checks many signatures at once; `true` only if (with overwhelming probability) every one
/// passes [`verify`]. An empty batch passes. The points of keys in `known` are taken from it
/// instead of decompressed again.
pub(crate) fn verify_batch(
    items: &[SignatureCheck<'_>],
    known: Option<&crate::ParsedKeys>,
) -> bool {
    // The challenges bind each message; the transcript binds the whole batch through them.
    let mut parsed = Vec::with_capacity(items.len());
    let mut transcript = Sha512::new();
    transcript.update(b"moot/ed25519-batch/v1\0");
    for item in items {
        let Some((r, s)) = parts(item.signature) else {
            return false;
        };
        let k = challenge(item.signature, item.key, item.message);
        transcript.update(item.signature);
        transcript.update(item.key.to_bytes());
        transcript.update(k.as_bytes());
        parsed.push((r, s, k));
    }
    let seed = transcript.finalize();
    let mut scalars = Vec::with_capacity(2 * items.len() + 1);
    let mut points = Vec::with_capacity(2 * items.len() + 1);
    let mut basepoint = Scalar::ZERO;
    scalars.push(Scalar::ZERO); // replaced below by the basepoint's coefficient
    points.push(ED25519_BASEPOINT_POINT);
    let mut block = [0u8; 64];
    // Ops of one author come in runs (a document's edits, a device's chain): the terms of one
    // key are summed into one coefficient, `[z1 k1 + z2 k2]A`, the same point as `[z1 k1]A +
    // [z2 k2]A`, so the sum checked is unchanged and the multiscalar multiplication has one
    // point per distinct key instead of one per signature.
    let mut key_terms: std::collections::HashMap<[u8; 32], usize> =
        std::collections::HashMap::new();
    for (i, (item, (r, s, k))) in items.iter().zip(parsed).enumerate() {
        // Four 128-bit coefficients per SHA-512 block.
        if i % 4 == 0 {
            let mut hasher = Sha512::new();
            hasher.update(seed);
            hasher.update((i as u64).to_le_bytes());
            block = hasher.finalize().into();
        }
        let offset = (i % 4) * 16;
        let mut z = [0u8; 16];
        z.copy_from_slice(&block[offset..offset + 16]);
        let z = Scalar::from(u128::from_le_bytes(z));
        basepoint -= z * s;
        scalars.push(z);
        points.push(r);
        match key_terms.entry(item.key.to_bytes()) {
            std::collections::hash_map::Entry::Occupied(at) => {
                if let Some(scalar) = scalars.get_mut(*at.get()) {
                    *scalar += z * k;
                }
            }
            std::collections::hash_map::Entry::Vacant(slot) => {
                let Some(point) = known
                    .and_then(|k| k.point(item.key))
                    .or_else(|| item.key.point())
                else {
                    return false;
                };
                slot.insert(scalars.len());
                scalars.push(z * k);
                points.push(point);
            }
        }
    }
    scalars[0] = basepoint;
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SecretKey;

    #[test]
    fn honest_signatures_pass_alone_and_in_batches() {
        let keys: Vec<SecretKey> = (0..20u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        let messages: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; i as usize]).collect();
        let signatures: Vec<[u8; 64]> =
            keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let items: Vec<SignatureCheck<'_>> = (0..20)
            .map(|i| SignatureCheck {
                key: &publics[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect();
        assert!(items.iter().all(|i| verify(i.key, i.message, i.signature)));
        assert!(verify_batch(&items, None));
        assert!(verify_batch(&[], None));
        // One wrong message fails the batch and the single check alike.
        let wrong = SignatureCheck {
            key: &publics[3],
            message: b"other",
            signature: &signatures[3],
        };
        assert!(!verify(wrong.key, wrong.message, wrong.signature));
        let mut mixed: Vec<SignatureCheck<'_>> = (0..20)
            .map(|i| SignatureCheck {
                key: &publics[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect();
        mixed[3] = wrong;
        assert!(!verify_batch(&mixed, None));
    }

    /// Points taken from a table of known keys are the keys' own: an honest batch passes as a
    /// batch (no fallback to checks one by one hides a wrong point), and a forged one fails.
    #[test]
    fn a_batch_with_known_points_passes_as_a_batch() {
        let keys: Vec<SecretKey> = (0..24u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        let known = std::sync::Arc::new(crate::KnownPoints::new());
        std::thread::scope(|scope| {
            // Added by a thread that parsed none: computed when first needed.
            scope.spawn(|| publics[..16].iter().for_each(|key| known.add(key)));
        });
        // A first pass computes the points (kept in the table); the checks' pass below takes
        // them from there.
        let mut first = crate::ParsedKeys::new(64);
        first.consult(Some(std::sync::Arc::clone(&known)));
        for key in &publics {
            assert_eq!(first.parse(&key.to_bytes()).as_ref(), Ok(key));
        }
        assert_eq!((known.len(), known.points_held()), (16, 16));
        let mut parsed = crate::ParsedKeys::new(64);
        parsed.consult(Some(std::sync::Arc::clone(&known)));
        for key in &publics {
            assert_eq!(parsed.parse(&key.to_bytes()).as_ref(), Ok(key));
        }
        let messages: Vec<Vec<u8>> = (0..24u8).map(|i| vec![i; 3]).collect();
        let signatures: Vec<[u8; 64]> =
            keys.iter().zip(&messages).map(|(k, m)| k.sign(m)).collect();
        let mut items: Vec<SignatureCheck<'_>> = (0..24)
            .map(|i| SignatureCheck {
                key: &publics[i],
                message: &messages[i],
                signature: &signatures[i],
            })
            .collect();
        assert!(verify_batch(&items, Some(&parsed)));
        items[5].message = b"other";
        assert!(!verify_batch(&items, Some(&parsed)));
    }

    /// `verify_signatures` gives each signature its own verdict across batch boundaries:
    /// wrong ones anywhere (first, last, straddling two batches) fail alone.
    #[test]
    fn many_signatures_get_one_verdict_each() {
        let keys: Vec<SecretKey> = (0..7u8).map(|i| SecretKey::from_seed([i; 32])).collect();
        let publics: Vec<PublicKey> = keys.iter().map(SecretKey::public).collect();
        let count = crate::op::BATCH * 2 + 37;
        let messages: Vec<Vec<u8>> = (0..count).map(|i| i.to_le_bytes().to_vec()).collect();
        let signatures: Vec<[u8; 64]> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % 7].sign(m))
            .collect();
        let wrong = [0, 1, crate::op::BATCH - 1, crate::op::BATCH, count - 1];
        let checks: Vec<SignatureCheck<'_>> = (0..count)
            .map(|i| SignatureCheck {
                key: &publics[i % 7],
                message: if wrong.contains(&i) {
                    b"forged"
                } else {
                    &messages[i]
                },
                signature: &signatures[i],
            })
            .collect();
        let verdicts = verify_signatures(&checks);
        assert_eq!(verdicts.len(), count);
        for (i, verdict) in verdicts.iter().enumerate() {
            assert_eq!(*verdict, !wrong.contains(&i), "signature {i}");
        }
        assert!(
            verify_signatures(&checks[2..crate::op::BATCH - 1])
                .iter()
                .all(|v| *v)
        );
        assert!(verify_signatures(&[]).is_empty());
    }

    /// Many signatures by one key (their key terms are summed into one coefficient) pass
    /// together, and one wrong signature among them, wherever it is, fails the batch.
    #[test]
    fn signatures_by_one_key_are_checked_together_and_one_wrong_fails_them() {
        let key = SecretKey::from_seed([4; 32]);
        let other = SecretKey::from_seed([5; 32]);
        let (public, other_public) = (key.public(), other.public());
        let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 1 + i as usize % 7]).collect();
        let signatures: Vec<[u8; 64]> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                if i % 5 == 4 {
                    other.sign(m)
                } else {
                    key.sign(m)
                }
            })
            .collect();
        let items = |wrong: Option<usize>| -> Vec<SignatureCheck<'_>> {
            (0..64)
                .map(|i| SignatureCheck {
                    key: if i % 5 == 4 { &other_public } else { &public },
                    message: if Some(i) == wrong {
                        b"not what was signed"
                    } else {
                        &messages[i]
                    },
                    signature: &signatures[i],
                })
                .collect()
        };
        assert!(verify_batch(&items(None), None));
        for wrong in [0, 1, 4, 31, 63] {
            assert!(!verify_batch(&items(Some(wrong)), None), "wrong at {wrong}");
        }
        // A signature by the other key presented as the first key's fails too.
        let mut swapped = items(None);
        swapped[4].key = &public;
        assert!(!verify_batch(&swapped, None));
    }

    /// A signature with a torsion component in `R`, built to satisfy the cofactored equation
    /// but not the cofactorless one: exactly the case where ed25519-dalek's single and batch
    /// checks can disagree. Ours gives one verdict alone and in every batch composition.
    #[test]
    fn a_torsion_component_in_r_gets_the_same_verdict_alone_and_in_any_batch() {
        let seed = [9u8; 32];
        let key = SecretKey::from_seed(seed);
        let public = key.public();
        let a = ed25519_dalek::SigningKey::from_bytes(&seed).to_scalar();
        let message = b"crafted by a member who wants nodes to disagree";
        let r = Scalar::from(123_456_789u64);
        let r_point = EdwardsPoint::mul_base(&r) + curve25519_dalek::constants::EIGHT_TORSION[1];
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(r_point.compress().as_bytes());
        let k = challenge(&signature, &public, message);
        signature[32..].copy_from_slice((r + k * a).as_bytes());

        let dalek = ed25519_dalek::VerifyingKey::from_bytes(&public.to_bytes()).unwrap();
        let dalek_signature = ed25519_dalek::Signature::from_bytes(&signature);
        assert!(
            dalek.verify_strict(message, &dalek_signature).is_err(),
            "cofactorless rejects it"
        );
        let alone = verify(&public, message, &signature);
        assert!(alone, "the cofactored rule accepts it");

        let others: Vec<(SecretKey, Vec<u8>)> = (0..40u8)
            .map(|i| (SecretKey::from_seed([i + 50; 32]), vec![i; 3]))
            .collect();
        let other_publics: Vec<PublicKey> = others.iter().map(|(k, _)| k.public()).collect();
        let other_signatures: Vec<[u8; 64]> = others.iter().map(|(k, m)| k.sign(m)).collect();
        for size in 0..40 {
            let mut items: Vec<SignatureCheck<'_>> = (0..size)
                .map(|i| SignatureCheck {
                    key: &other_publics[i],
                    message: &others[i].1,
                    signature: &other_signatures[i],
                })
                .collect();
            items.push(SignatureCheck {
                key: &public,
                message,
                signature: &signature,
            });
            assert_eq!(verify_batch(&items, None), alone, "batch of {}", size + 1);
        }
    }
}
