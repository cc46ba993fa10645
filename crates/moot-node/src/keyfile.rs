//! The key file, `DIR/keys`: every member key held on this node (each with its device key, sealed
//! under that member's passphrase or not at all) and which one is the node's own. It lives apart
//! from the op store on purpose: the op store can be re-supplied by peers, a member's key cannot,
//! so damage to one must never cost the other.
//!
//! Format: `b"moot-keys/v1\n"` ‖ SHA-256 of the body (32 bytes) ‖ body (postcard [`KeyFile`]).
//! The file is small and rewritten whole, atomically (`dir::write_atomic`), with mode 0600.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::NodeError;

/// The key file's name inside the data directory.
pub const KEYS_FILE: &str = "keys";
const MAGIC: &[u8] = b"moot-keys/v1\n";

/// One member key held on this node.
#[derive(Clone, Serialize, Deserialize)]
pub struct KeyEntry {
    /// The member id (public key bytes).
    pub member: [u8; 32],
    /// The name given when it was made.
    pub name: String,
    /// The member secret key, sealed (`moot_crypto::keystore`).
    pub member_sealed: Vec<u8>,
    /// This node's device key for that member, sealed the same way.
    pub device_sealed: Vec<u8>,
}

/// The whole key file.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct KeyFile {
    /// The node's own member id, once `init` has run.
    pub node_member: Option<[u8; 32]>,
    /// Every key held, in order of creation.
    pub entries: Vec<KeyEntry>,
}

impl KeyFile {
    /// Reads the key file in `dir`; an absent file is an empty key file (no `init` yet).
    pub fn load(dir: &Path) -> Result<KeyFile, NodeError> {
        let path = dir.join(KEYS_FILE);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(KeyFile::default()),
            Err(source) => return Err(NodeError::DataDir { path, source }),
        };
        let damaged = |detail: &str| NodeError::KeysDamaged {
            path: path.clone(),
            detail: detail.to_string(),
        };
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or_else(|| damaged("not a moot key file"))?;
        let (sum, body) = rest
            .split_at_checked(32)
            .ok_or_else(|| damaged("truncated"))?;
        if Sha256::digest(body).as_slice() != sum {
            return Err(damaged("checksum mismatch"));
        }
        postcard::from_bytes(body).map_err(|_| damaged("unreadable entries"))
    }

    /// Writes the key file in `dir`, atomically.
    pub fn save(&self, dir: &Path) -> Result<(), NodeError> {
        let body = postcard::to_allocvec(self).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&Sha256::digest(&body));
        bytes.extend_from_slice(&body);
        crate::dir::write_atomic(&dir.join(KEYS_FILE), &bytes)
    }

    /// The entry of `member`.
    pub fn entry(&self, member: &[u8; 32]) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.member == *member)
    }
}
