//! The key file, `DIR/keys`: every member key held on this node (each with its device key, sealed
//! under that member's passphrase or not at all) and which one is the node's own. It lives apart
//! from the op store on purpose: the op store can be re-supplied by peers, a member's key cannot,
//! so damage to one must never cost the other.
//!
//! Format: `b"moot-keys/v1\n"` ‖ SHA-256 of the body (32 bytes) ‖ body (postcard [`KeyFile`]).
//! The file is small and rewritten whole, atomically (`dir::write_atomic`), with mode 0600.
//!
//! A second copy, `keys.backup`, is written (atomically, 0600) with every save, before the main
//! file is replaced: one flipped byte in `keys` must not cost every key. When `keys` is damaged
//! (or missing) and the backup is whole, the backup is used and [`KeyFile::note`] says so; when
//! both are damaged, the error says so. Reading is bounded ([`MAX_KEYS_BYTES`]), and only
//! regular files are read (`keys` pointing at `/dev/zero` must not eat memory). A temporary
//! file left by a killed write (`keys.tmp`, holding key material) is removed on the next open.

use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::NodeError;

/// The key file's name inside the data directory.
pub const KEYS_FILE: &str = "keys";
/// The copy of the key file written with every save.
pub const BACKUP_FILE: &str = "keys.backup";
/// The largest key file read: thousands of keys take well under a megabyte, so anything larger
/// is damage (or not a key file at all), refused before it is read into memory.
pub const MAX_KEYS_BYTES: u64 = 16 * 1024 * 1024;
const MAGIC: &[u8] = b"moot-keys/v1\n";

/// The temporary file [`crate::dir::write_atomic`] writes before renaming it over `name`.
pub fn temp_name(name: &str) -> String {
    format!("{name}.tmp")
}

/// [`NodeError::NoNode`] unless `dir` holds a key file (or its backup): checked before a
/// command creates or changes anything in `dir`.
pub fn require(dir: &Path) -> Result<(), NodeError> {
    let present = |name: &str| std::fs::symlink_metadata(dir.join(name)).is_ok();
    let is_dir = std::fs::metadata(dir).is_ok_and(|meta| meta.is_dir());
    if is_dir && (present(KEYS_FILE) || present(BACKUP_FILE)) {
        Ok(())
    } else {
        Err(NodeError::NoNode {
            dir: dir.to_path_buf(),
        })
    }
}

/// Why one copy of the key file could not be used.
enum Unreadable {
    Missing,
    Damaged(NodeError),
    /// Not a file, or an IO error: reported as it is, never papered over with the backup.
    Failed(NodeError),
}

/// Reads and checks one copy of the key file.
fn read_copy(path: &Path) -> Result<KeyFile, Unreadable> {
    let damaged = |detail: String| {
        Unreadable::Damaged(NodeError::KeysDamaged {
            path: path.to_path_buf(),
            detail,
        })
    };
    let io = |source| {
        Unreadable::Failed(NodeError::DataDir {
            path: path.to_path_buf(),
            source,
        })
    };
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Unreadable::Missing),
        Err(source) => return Err(io(source)),
    };
    if !meta.is_file() {
        return Err(Unreadable::Failed(NodeError::NotAFile {
            path: path.to_path_buf(),
            what: if meta.is_dir() {
                "a directory"
            } else {
                "a device or other special file"
            },
        }));
    }
    let file = std::fs::File::open(path).map_err(io)?;
    let mut bytes = Vec::new();
    // Bounded even though it is a regular file: it may grow while being read.
    file.take(MAX_KEYS_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_KEYS_BYTES {
        return Err(damaged(format!(
            "larger than {} MiB",
            MAX_KEYS_BYTES / 1024 / 1024
        )));
    }
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| damaged("not a moot key file".into()))?;
    let (sum, body) = rest
        .split_at_checked(32)
        .ok_or_else(|| damaged("truncated".into()))?;
    if Sha256::digest(body).as_slice() != sum {
        return Err(damaged("checksum mismatch".into()));
    }
    postcard::from_bytes(body).map_err(|_| damaged("unreadable entries".into()))
}

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
    /// Not stored: what the user should hear about how the file was read (its backup was
    /// used because the main file is damaged or missing).
    #[serde(skip)]
    pub note: Option<String>,
}

impl KeyFile {
    /// Reads the key file in `dir` (call it with the directory's lock held); an absent file
    /// (and no backup) is an empty key file (no `init` yet). A damaged or missing main file
    /// falls back to a whole backup, noted in [`KeyFile::note`]. Removes a temporary file left
    /// by a killed write: it holds key material and nothing else will ever use it.
    pub fn load(dir: &Path) -> Result<KeyFile, NodeError> {
        for name in [KEYS_FILE, BACKUP_FILE] {
            let temp = dir.join(temp_name(name));
            match std::fs::remove_file(&temp) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(NodeError::DataDir {
                        path: temp,
                        source: e,
                    });
                }
                _ => {}
            }
        }
        let path = dir.join(KEYS_FILE);
        let backup = dir.join(BACKUP_FILE);
        let main_problem = match read_copy(&path) {
            Ok(keys) => return Ok(keys),
            Err(Unreadable::Failed(error)) => return Err(error),
            Err(Unreadable::Missing) => None,
            Err(Unreadable::Damaged(error)) => Some(error),
        };
        match (read_copy(&backup), main_problem) {
            (Ok(mut keys), problem) => {
                let what = match &problem {
                    Some(error) => error.to_string(),
                    None => format!("the key file {} is missing", path.display()),
                };
                keys.note = Some(format!(
                    "{what}; using its copy {} instead. To repair it: `cp {} {}`",
                    backup.display(),
                    backup.display(),
                    path.display()
                ));
                Ok(keys)
            }
            (Err(Unreadable::Missing), None) => Ok(KeyFile::default()),
            (Err(Unreadable::Missing), Some(error)) => Err(error),
            (Err(Unreadable::Failed(error)), _) => Err(error),
            (Err(Unreadable::Damaged(backup_error)), problem) => {
                let backup_detail = match backup_error {
                    NodeError::KeysDamaged { detail, .. } => detail,
                    other => other.to_string(),
                };
                let detail = match problem {
                    Some(NodeError::KeysDamaged { detail, .. }) => detail,
                    Some(other) => other.to_string(),
                    None => "missing".into(),
                };
                Err(NodeError::KeysDamaged {
                    path,
                    detail: format!(
                        "{detail}; its copy {} is damaged too ({backup_detail})",
                        backup.display()
                    ),
                })
            }
        }
    }

    /// Writes the key file in `dir`: first its copy, then the main file, each atomically, so a
    /// crash at any moment leaves at least one whole copy of either the old or the new keys.
    pub fn save(&self, dir: &Path) -> Result<(), NodeError> {
        let body = postcard::to_allocvec(self).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&Sha256::digest(&body));
        bytes.extend_from_slice(&body);
        crate::dir::write_atomic(&dir.join(BACKUP_FILE), &bytes)?;
        crate::dir::write_atomic(&dir.join(KEYS_FILE), &bytes)
    }

    /// The entry of `member`.
    pub fn entry(&self, member: &[u8; 32]) -> Option<&KeyEntry> {
        self.entries.iter().find(|e| e.member == *member)
    }
}
