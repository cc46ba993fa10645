//! Sealing secret keys for the keystore: plain, or encrypted under a passphrase with Argon2id
//! (key derivation) and ChaCha20-Poly1305 (authenticated encryption). No home-made crypto; the
//! salt and nonce come from the caller, who draws them from the OS generator.
//!
//! Sealed formats (first byte is the version):
//! - `0x00 || seed (32)`: not encrypted;
//! - `0x01 || salt (16) || nonce (12) || ciphertext (32 + 16-byte tag)`: Argon2id with
//!   m = 19 MiB, t = 2, p = 1 (the OWASP baseline) derives the 32-byte key from the passphrase;
//!   the version byte is authenticated as associated data.

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};

use crate::SecretKey;

const PLAIN: u8 = 0;
const ARGON2ID_CHACHA20POLY1305: u8 = 1;

/// Why a sealed key could not be opened or made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeystoreError {
    /// The key is encrypted and no passphrase was given.
    #[error("this key is protected by a passphrase")]
    NeedsPassphrase,
    /// The passphrase is wrong (or the sealed bytes were altered).
    #[error("wrong passphrase, or the sealed key was altered")]
    WrongPassphrase,
    /// The bytes are not a sealed key.
    #[error("not a sealed key")]
    Malformed,
    /// The key derivation failed.
    #[error("key derivation failed: {0}")]
    Kdf(String),
}

fn derive(passphrase: &str, salt: &[u8; 16]) -> Result<[u8; 32], KeystoreError> {
    let params =
        Params::new(19 * 1024, 2, 1, Some(32)).map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    let mut key = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, &mut key)
        .map_err(|e| KeystoreError::Kdf(e.to_string()))?;
    Ok(key)
}

/// Seals a key; encrypted when `passphrase` is given. `salt` and `nonce` must be fresh random
/// bytes.
pub fn seal(
    key: &SecretKey,
    passphrase: Option<&str>,
    salt: [u8; 16],
    nonce: [u8; 12],
) -> Result<Vec<u8>, KeystoreError> {
    let seed = key.seed();
    let Some(passphrase) = passphrase else {
        let mut out = vec![PLAIN];
        out.extend_from_slice(&seed);
        return Ok(out);
    };
    let derived = derive(passphrase, &salt)?;
    let cipher = ChaCha20Poly1305::new(&Key::from(derived));
    let payload = Payload {
        msg: &seed,
        aad: &[ARGON2ID_CHACHA20POLY1305],
    };
    let ciphertext = cipher
        .encrypt(&Nonce::from(nonce), payload)
        .map_err(|_| KeystoreError::Malformed)?;
    let mut out = vec![ARGON2ID_CHACHA20POLY1305];
    out.extend_from_slice(&salt);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// True if a sealed key needs a passphrase.
pub fn is_encrypted(sealed: &[u8]) -> bool {
    sealed.first() == Some(&ARGON2ID_CHACHA20POLY1305)
}

/// True if the sealed key needs a passphrase to open (false: stored as it is).
pub fn has_passphrase(sealed: &[u8]) -> bool {
    sealed.first() == Some(&ARGON2ID_CHACHA20POLY1305)
}

/// Opens a sealed key.
pub fn unseal(sealed: &[u8], passphrase: Option<&str>) -> Result<SecretKey, KeystoreError> {
    match sealed {
        [PLAIN, seed @ ..] => {
            let seed: [u8; 32] = seed.try_into().map_err(|_| KeystoreError::Malformed)?;
            Ok(SecretKey::from_seed(seed))
        }
        [ARGON2ID_CHACHA20POLY1305, rest @ ..] => {
            if rest.len() != 16 + 12 + 32 + 16 {
                return Err(KeystoreError::Malformed);
            }
            let passphrase = passphrase.ok_or(KeystoreError::NeedsPassphrase)?;
            let (salt, rest) = rest.split_at(16);
            let (nonce, ciphertext) = rest.split_at(12);
            let salt: [u8; 16] = salt.try_into().map_err(|_| KeystoreError::Malformed)?;
            let nonce: [u8; 12] = nonce.try_into().map_err(|_| KeystoreError::Malformed)?;
            let derived = derive(passphrase, &salt)?;
            let cipher = ChaCha20Poly1305::new(&Key::from(derived));
            let payload = Payload {
                msg: ciphertext,
                aad: &[ARGON2ID_CHACHA20POLY1305],
            };
            let seed = cipher
                .decrypt(&Nonce::from(nonce), payload)
                .map_err(|_| KeystoreError::WrongPassphrase)?;
            let seed: [u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| KeystoreError::Malformed)?;
            Ok(SecretKey::from_seed(seed))
        }
        _ => Err(KeystoreError::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_encrypted_round_trip() {
        let key = SecretKey::from_seed([4; 32]);
        let plain = seal(&key, None, [0; 16], [0; 12]).unwrap();
        assert!(!is_encrypted(&plain));
        assert_eq!(unseal(&plain, None).unwrap().public(), key.public());

        let sealed = seal(&key, Some("correct horse"), [1; 16], [2; 12]).unwrap();
        assert!(is_encrypted(&sealed));
        assert!(
            !sealed.windows(32).any(|w| w == key.seed()),
            "the seed is not stored in clear"
        );
        assert_eq!(
            unseal(&sealed, Some("correct horse")).unwrap().public(),
            key.public()
        );
        assert_eq!(
            unseal(&sealed, None).unwrap_err(),
            KeystoreError::NeedsPassphrase
        );
        assert_eq!(
            unseal(&sealed, Some("wrong")).unwrap_err(),
            KeystoreError::WrongPassphrase
        );
    }

    #[test]
    fn altered_or_truncated_sealed_keys_are_refused() {
        let key = SecretKey::from_seed([4; 32]);
        let mut sealed = seal(&key, Some("pw"), [1; 16], [2; 12]).unwrap();
        let last = sealed.len() - 1;
        sealed[last] ^= 1;
        assert_eq!(
            unseal(&sealed, Some("pw")).unwrap_err(),
            KeystoreError::WrongPassphrase
        );
        assert_eq!(
            unseal(&sealed[..20], Some("pw")).unwrap_err(),
            KeystoreError::Malformed
        );
        assert_eq!(unseal(&[9, 9], None).unwrap_err(), KeystoreError::Malformed);
        assert_eq!(unseal(&[], None).unwrap_err(), KeystoreError::Malformed);
    }
}
