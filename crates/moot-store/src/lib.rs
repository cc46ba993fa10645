//! Durable storage in one redb file: ops by id and by author chain, hubs, derived views and node
//! config. The only crate that knows redb. (Member keys live in their own file, apart from this
//! one: see `moot-node`.)
//!
//! Damage is reported, never repaired behind the caller's back: the file is opened with a repair
//! callback that aborts (a repair rewrites the file), every write records redb's allocator state
//! (`set_quick_repair`) so that a crash never needs a repair, every open first verifies the page
//! checksums of the committed state (one read of the live pages), and every call runs inside
//! [`std::panic::catch_unwind`], so redb meeting damaged pages it cannot parse becomes
//! [`StoreError::Damaged`] naming the file instead of a panic. A new file is made under a
//! temporary name and renamed into place only once it is complete, so a store file that exists
//! was whole once; an empty or truncated one is damage, not a fresh store.
//!
//! A write returns only after its transaction has committed (redb fsyncs and checksums each
//! commit; a torn commit is rolled back when the file is next opened), so an op the node
//! acknowledged is on disk. Ops are stored as their exact signed bytes; everything else about them
//! is derived. Tables and encodings are documented in `docs/STORAGE.md`.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use moot_crypto::{Draft, HubId, Lane, SecretKey};
//! use moot_store::Store;
//!
//! let dir = std::env::temp_dir().join(format!("moot-store-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = Store::open(&dir.join("moot.redb"))?;
//! let hub = HubId([3; 32]);
//! let op = Draft { lane: Lane::Public, seq: 1, prev: None, deps: vec![], kind: 9, body: b"hi".to_vec() }
//!     .sign(&hub, &SecretKey::from_seed([1; 32]))?;
//! store.put_ops(&hub, &[op.get()])?;
//! assert_eq!(store.ops(&hub)?, vec![op.bytes().to_vec()]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

use std::cell::Cell;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::Once;

use moot_crypto::{Authentic, HubId, Lane, OpId, PublicKey, SignedOp};
use redb::{
    Builder, Database, DatabaseError, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

/// Hubs this node belongs to: hub id → 4-byte hub number (little-endian) || hub metadata.
const HUBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("hubs");
/// Device numbers: (hub number, device key) → device number.
const DEVICES: TableDefinition<(u32, &[u8; 32]), u32> = TableDefinition::new("devices");
/// Device keys by number: (hub number, device number) → device key.
const DEVICE_KEYS: TableDefinition<(u32, u32), &[u8; 32]> = TableDefinition::new("device_keys");
/// Ops in acceptance order: (hub number, position) → device number (LEB128) || verdict byte ||
/// op bytes with the author field elided. Positions only grow, so this table is written in key
/// order and its pages stay full; and ops are accepted only after their dependencies, so
/// loading in position order never waits on one. The verdict is the replica's, given when the
/// op was kept (`moot_state::Verdict`: 0 accepted, 1 unsupported, 2 needs an upgrade).
const OPS: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("ops");
/// The chain index: (hub number, device number, lane, seq, position) → (). Chains are per
/// (device, lane); two entries with one seq are a fork (an equivocation, kept as evidence).
const CHAINS: TableDefinition<(u32, u32, u8, u64, u64), ()> = TableDefinition::new("chains");
/// Chains that fork somewhere: (hub number, device number, lane) → (). Their heads are found
/// by reading the chain; every other chain's head is its last entry.
const FORKED: TableDefinition<(u32, u32, u8), ()> = TableDefinition::new("forked");
/// Ops by id: (hub number, first 4 bytes of the op id, position) → (). A lookup checks the full
/// id of each candidate. Ids are hashes, so a batch of new ops lands on pages all over this
/// table, and each page a transaction changes is copied (redb is copy-on-write): a batch of
/// 2,048 ops copied most of its pages, 1.4 KB per op. New entries therefore go to
/// [`OP_IDS_RECENT`] first, and move here in bulk (see [`merge_recent_ids`]).
const OP_IDS: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("op_ids");
/// The id index's recent part: the same keys as [`OP_IDS`], for the ops at or after the hub's
/// [`IDS_MERGED`] position. Kept small (at most a quarter of the rest, or
/// [`RECENT_IDS_MIN`]), so a batch copies few of its pages.
const OP_IDS_RECENT: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("op_ids_recent");
/// Per hub number: the position below which every op's id entry is in [`OP_IDS`] (the rest
/// are in [`OP_IDS_RECENT`]). No entry: 0 (stores from before the recent part hold everything
/// in [`OP_IDS`] and an empty recent part: their first write to a hub of more than
/// [`RECENT_IDS_MIN`] ops moves that write's own entries at once and sets the boundary).
const IDS_MERGED: TableDefinition<u32, u64> = TableDefinition::new("op_ids_merged");
/// The recent part of a hub's id index is moved into the main part once the ops since the last
/// move number more than this and more than a quarter of those before it (positions: the ops
/// stored, at or after the boundary and before it).
const RECENT_IDS_MIN: u64 = 8_192;
/// Derived views, rebuildable from ops: (hub id, view name) → bytes.
const VIEWS: TableDefinition<(&[u8; 32], &str), &[u8]> = TableDefinition::new("views");
/// Node configuration: name → bytes.
const CONFIG: TableDefinition<&str, &[u8]> = TableDefinition::new("config");

/// Bytes of the author field, elided from stored ops (after the version byte).
const ELIDED: std::ops::Range<usize> = 1..33;

/// The stored value of an op: its device number (LEB128), its verdict byte, then its bytes
/// without the author.
fn elide(device_no: u32, verdict: u8, op: &SignedOp) -> Vec<u8> {
    let bytes = op.bytes();
    let mut stored = Vec::with_capacity(6 + bytes.len() - ELIDED.len());
    let mut n = device_no;
    loop {
        let low = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            stored.push(low);
            break;
        }
        stored.push(low | 0x80);
    }
    stored.push(verdict);
    stored.push(bytes[0]);
    stored.extend_from_slice(&bytes[ELIDED.end..]);
    stored
}

/// The device number (LEB128) at the start of a stored value, and the bytes it takes; the
/// verdict byte follows it.
fn device_number_of(stored: &[u8]) -> Option<(u32, usize)> {
    let mut device_no = 0u32;
    for (i, byte) in stored.iter().enumerate().take(5) {
        device_no |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            return Some((device_no, i + 1));
        }
    }
    None
}

/// The device number, verdict byte and exact op bytes of a stored value, given the device keys.
fn restore(stored: &[u8], keys: &[[u8; 32]]) -> Option<(u32, u8, Vec<u8>)> {
    let (device_no, _) = device_number_of(stored)?;
    restore_with(stored, keys.get(device_no as usize)?)
}

/// [`restore`] with the author's key given.
fn restore_with(stored: &[u8], author: &[u8; 32]) -> Option<(u32, u8, Vec<u8>)> {
    let (device_no, used) = device_number_of(stored)?;
    let verdict = *stored.get(used)?;
    let rest = stored.get(used + 1..)?;
    let mut bytes = Vec::with_capacity(rest.len() + ELIDED.len());
    bytes.extend_from_slice(rest.get(..1)?);
    bytes.extend_from_slice(author);
    bytes.extend_from_slice(rest.get(1..)?);
    Some((device_no, verdict, bytes))
}

fn id_prefix(id: &OpId) -> u32 {
    u32::from_be_bytes([id.0[0], id.0[1], id.0[2], id.0[3]])
}

fn corrupt(reason: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        op: OpId([0; 32]),
        reason: reason.into(),
    }
}

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database file could not be opened or is not a redb database.
    #[error("opening the store: {0}")]
    Open(#[from] redb::DatabaseError),
    /// A transaction, table, read, write or commit failed.
    #[error("store: {0}")]
    Redb(#[from] redb::Error),
    /// The store file is damaged (checksums, structure, or bytes that should be an op are not):
    /// it was left untouched.
    #[error("the store file {} is damaged ({detail})", path.display())]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Another process holds the file open (redb's own lock).
    #[error("the store file {} is in use by another process", path.display())]
    Busy {
        /// The file.
        path: PathBuf,
    },
    /// Creating a new store file failed.
    #[error("creating the store file {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The store file is gone, but moot closed a store there before (its stamp, `FILE.closed`,
    /// is still beside it): the file was deleted or moved. Nothing is created, so that a
    /// command does not carry on with an empty store as if the node had never held a hub.
    #[error(
        "the store file {} is missing, but this node had one (it was closed cleanly here): put \
         it back from a backup, or delete {} to start again with an empty store and re-sync \
         your hubs from a peer",
        path.display(), stamp.display()
    )]
    Missing {
        /// The store file.
        path: PathBuf,
        /// The stamp left when it was closed.
        stamp: PathBuf,
    },
    /// Stored bytes that should be an op are not (disk corruption or tampering).
    #[error("stored op {op} is corrupt: {reason}")]
    Corrupt {
        /// The op id under which it was stored.
        op: OpId,
        /// What is wrong.
        reason: String,
    },
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(error: $t) -> Self {
                StoreError::Redb(error.into())
            }
        }
    )*};
}
from_redb!(
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

thread_local! {
    /// Set while a store call runs under `catch_unwind`: the panic is reported as damage, so the
    /// default hook's "panicked at" message would only frighten.
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

static HOOK: Once = Once::new();

/// Installs (once) a panic hook that stays silent inside store calls and defers to the previous
/// hook everywhere else, so genuine bugs elsewhere are still reported as before.
fn install_quiet_hook() {
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` at the store boundary: a panic inside redb (damaged pages it cannot parse) and
/// redb's corruption errors become [`StoreError::Damaged`] naming `path`.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
    install_quiet_hook();
    let was = QUIET.with(|q| q.replace(true));
    let result = std::panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.with(|q| q.set(was));
    match result {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.located(path)),
        Err(payload) => {
            let what = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unreadable structure".to_string());
            Err(StoreError::Damaged {
                path: path.to_path_buf(),
                detail: format!("the database could not read it: {what}"),
            })
        }
    }
}

impl StoreError {
    /// Turns the kinds of error that mean "the file is damaged" into [`StoreError::Damaged`].
    fn located(self, path: &Path) -> StoreError {
        let damaged = |detail: String| StoreError::Damaged {
            path: path.to_path_buf(),
            detail,
        };
        match self {
            StoreError::Open(DatabaseError::DatabaseAlreadyOpen) => StoreError::Busy {
                path: path.to_path_buf(),
            },
            StoreError::Open(DatabaseError::RepairAborted) => {
                damaged("it needs a repair, which would rewrite it".into())
            }
            // redb reports a file that is not (or no longer) a database as an I/O error: an
            // empty file, a bad magic number, a header that reads short.
            StoreError::Open(DatabaseError::Storage(redb::StorageError::Io(e)))
                if !looks_damaged(&e) =>
            {
                StoreError::Open(DatabaseError::Storage(redb::StorageError::Io(e)))
            }
            StoreError::Open(e) => damaged(e.to_string()),
            StoreError::Redb(redb::Error::Corrupted(e)) => damaged(e),
            StoreError::Redb(redb::Error::Io(e))
                if e.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                damaged(e.to_string())
            }
            StoreError::Redb(
                e @ (redb::Error::TableDoesNotExist(_)
                | redb::Error::TableTypeMismatch { .. }
                | redb::Error::TypeDefinitionChanged { .. }
                | redb::Error::ValueTooLarge(_)),
            ) => damaged(e.to_string()),
            StoreError::Corrupt { op, reason } => damaged(format!("stored op {op}: {reason}")),
            other => other,
        }
    }
}

/// An I/O error that says the bytes are wrong (not that the disk, permissions or space are).
fn looks_damaged(error: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        error.kind(),
        InvalidData | UnexpectedEof | InvalidInput | Other
    )
}

/// A hub recorded with the ops of [`Store::put_all`]: its metadata and config values.
pub type NewHub<'a> = (&'a [u8], &'a [(&'a str, &'a [u8])]);

/// redb's page cache, in bytes (at most half of it buffers a transaction's dirty pages; what is
/// written stays cached for reading). A node keeps its state in memory, not in pages, and reads
/// ops for a peer in order: 4 MiB cost a full sync nothing measurable and kept 12 MB less
/// resident than 16 MiB did; 2 MiB keeps 2 MB less again, with neither the full sync nor a
/// 100,000-ballot ingest measurably slower (docs/BENCHMARKS.md, sync_workload, poll_figures).
pub const CACHE_BYTES: usize = 2 * 1024 * 1024;

/// How every store file is opened: a repair (which rewrites the file) is never started silently.
fn builder() -> Builder {
    let mut builder = Builder::new();
    builder.set_repair_callback(|session| session.abort());
    // The default cache may grow to 1 GiB. A command reads each page about once, and a node
    // keeps its state in memory, not in pages: 2 MiB is plenty, and bounds memory on a
    // Raspberry Pi.
    builder.set_cache_size(CACHE_BYTES);
    builder
}

/// Checks every page checksum of the committed state before the file is used: redb does not
/// check them on ordinary reads, so flipped bits could otherwise come back as wrong data (a hub
/// that seems to be missing) instead of as damage. It runs redb's integrity check with a repair
/// callback that stops it before anything is written: redb calls it at progress 0.6 only once
/// the primary's checksums verified, and at 0.3 when they did not.
fn verify(path: &Path) -> Result<(), StoreError> {
    let reached = std::rc::Rc::new(Cell::new(0.0f64));
    let seen = reached.clone();
    let mut builder = builder();
    builder.set_check_integrity_on_open(true);
    builder.set_repair_callback(move |session| {
        seen.set(session.progress());
        if session.progress() > 0.0 {
            session.abort();
        }
    });
    match builder.open(path) {
        Ok(_) => Ok(()),
        Err(DatabaseError::RepairAborted) if reached.get() >= 0.6 => Ok(()),
        Err(DatabaseError::RepairAborted) => Err(StoreError::Damaged {
            path: path.to_path_buf(),
            detail: "page checksums do not match".into(),
        }),
        Err(error) => Err(StoreError::Open(error)),
    }
}

/// The stamp file beside a store: the file's identity and times when moot last closed it.
fn stamp_path(path: &Path) -> PathBuf {
    let mut stamp = path.as_os_str().to_owned();
    stamp.push(".closed");
    PathBuf::from(stamp)
}

/// A file's identity, size and modification and change times, as bytes.
#[cfg(unix)]
fn file_stamp(path: &Path) -> Option<Vec<u8>> {
    use std::os::unix::fs::MetadataExt as _;
    // The file itself, through any symlink (a store kept on another disk): its times are the
    // ones that change when it is written.
    let m = std::fs::metadata(path).ok()?;
    let fields = [
        m.dev(),
        m.ino(),
        m.len(),
        m.mtime() as u64,
        m.mtime_nsec() as u64,
        m.ctime() as u64,
        m.ctime_nsec() as u64,
    ];
    Some(fields.iter().flat_map(|f| f.to_le_bytes()).collect())
}

#[cfg(not(unix))]
fn file_stamp(_path: &Path) -> Option<Vec<u8>> {
    None
}

/// True if the store file is exactly as moot left it when it last closed it: same file, size
/// and times (the change time cannot be set back by hand). Anything else — a crash while open,
/// an edit, a copy, a restore — gets the full check.
fn closed_cleanly(path: &Path) -> bool {
    match (file_stamp(path), std::fs::read(stamp_path(path))) {
        (Some(now), Ok(stamped)) => now == stamped,
        _ => false,
    }
}

/// Records that moot closed the store at `path` cleanly (call after the [`Store`] is dropped),
/// so the next open can skip the full page check. Best effort: without the stamp, the next
/// open checks every page, which is slower, never wrong.
pub fn mark_closed(path: &Path) {
    let Some(stamp) = file_stamp(path) else {
        return;
    };
    let target = stamp_path(path);
    let mut temp = target.as_os_str().to_owned();
    temp.push(".tmp");
    let temp = PathBuf::from(temp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&temp)
        .and_then(|mut f| std::io::Write::write_all(&mut f, &stamp))
        .and_then(|()| std::fs::rename(&temp, &target));
    if written.is_err() {
        let _ = std::fs::remove_file(&temp);
        let _ = std::fs::remove_file(&target);
    }
}

/// Forgets the clean-close record (before the store is opened for use, so a crash while it is
/// open means a full check next time).
fn unmark_closed(path: &Path) {
    let _ = std::fs::remove_file(stamp_path(path));
}

/// Creates every table in a new file.
fn create_tables(db: &Database) -> Result<(), StoreError> {
    let mut txn = db.begin_write()?;
    txn.set_quick_repair(true);
    txn.open_table(HUBS)?;
    txn.open_table(DEVICES)?;
    txn.open_table(DEVICE_KEYS)?;
    txn.open_table(OPS)?;
    txn.open_table(CHAINS)?;
    txn.open_table(FORKED)?;
    txn.open_table(OP_IDS)?;
    txn.open_table(OP_IDS_RECENT)?;
    txn.open_table(IDS_MERGED)?;
    txn.open_table(VIEWS)?;
    txn.open_table(CONFIG)?;
    txn.commit()?;
    Ok(())
}

/// Adds the tables a file made by an earlier version lacks (the id index's recent part), in one
/// transaction, only when one is missing.
fn add_missing_tables(db: &Database) -> Result<(), StoreError> {
    let missing = {
        let txn = db.begin_read()?;
        let absent = |result: Result<_, redb::TableError>| match result {
            Ok(_) => Ok(false),
            Err(redb::TableError::TableDoesNotExist(_)) => Ok(true),
            Err(e) => Err(StoreError::from(e)),
        };
        absent(txn.open_table(OP_IDS_RECENT).map(drop))?
            | absent(txn.open_table(IDS_MERGED).map(drop))?
    };
    if missing {
        let mut txn = db.begin_write()?;
        txn.set_quick_repair(true);
        txn.open_table(OP_IDS_RECENT)?;
        txn.open_table(IDS_MERGED)?;
        txn.commit()?;
    }
    Ok(())
}

/// Makes a complete, empty store at `path`: built under a temporary name (readable only by its
/// owner), fsynced, then renamed into place and the directory fsynced. A crash at any moment
/// leaves either no store file or a whole one (and perhaps a stale temporary, replaced next time).
fn create_new(path: &Path) -> Result<(), StoreError> {
    let io = |source| StoreError::Create {
        path: path.to_path_buf(),
        source,
    };
    let mut temp = path.as_os_str().to_owned();
    temp.push(".new");
    let temp = PathBuf::from(temp);
    match std::fs::remove_file(&temp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options.open(&temp).map_err(io)?;
    {
        let backend = redb::backends::FileBackend::new(file.try_clone().map_err(io)?)
            .map_err(StoreError::Open)?;
        let db = builder().create_with_backend(backend)?;
        create_tables(&db)?;
    }
    file.sync_all().map_err(io)?;
    drop(file);
    std::fs::rename(&temp, path).map_err(io)?;
    if let Some(dir) = path.parent() {
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io)?;
    }
    Ok(())
}

/// The node's redb store.
pub struct Store {
    db: Database,
    path: PathBuf,
    /// Set when any call failed: the file may be damaged, so it is not recorded as closed
    /// cleanly (the next open checks every page).
    failed: std::sync::atomic::AtomicBool,
}

impl Store {
    /// Opens the store at `path`, creating a complete empty one if no file is there. A file that
    /// is there but damaged (empty, truncated, flipped bytes, or needing a repair) is reported as
    /// [`StoreError::Damaged`] and left untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        guarded(path, || {
            match std::fs::symlink_metadata(path) {
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let stamp = stamp_path(path);
                    if std::fs::symlink_metadata(&stamp).is_ok() {
                        return Err(StoreError::Missing {
                            path: path.to_path_buf(),
                            stamp,
                        });
                    }
                    create_new(path)?
                }
                Err(source) => {
                    return Err(StoreError::Create {
                        path: path.to_path_buf(),
                        source,
                    });
                }
            }
            // The full check reads every page: skip it when the file is exactly as this code
            // left it when it last closed it (see `mark_closed`). The stamp goes either way:
            // while the store is open (a crash then means a full check), and when it does not
            // match, since it no longer vouches for the file (once a damaged file is moved
            // aside, as the error says, it must not make the store look deleted:
            // [`StoreError::Missing`]).
            let clean = closed_cleanly(path);
            unmark_closed(path);
            if !clean {
                verify(path)?;
            }
            let db = builder().open(path)?;
            add_missing_tables(&db)?;
            Ok(Store {
                db,
                path: path.to_path_buf(),
                failed: std::sync::atomic::AtomicBool::new(false),
            })
        })
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// True if no call on this store has failed (see [`mark_closed`]).
    pub fn healthy(&self) -> bool {
        !self.failed.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs a store call through [`guarded`], remembering a failure.
    fn guard<T>(&self, f: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let result = guarded(&self.path, f);
        if result.is_err() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// A write transaction that records the allocator state, so a crash during or after it never
    /// needs a repair on the next open (repairs are refused: they rewrite the file).
    fn write_txn(&self) -> Result<redb::WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write()?;
        txn.set_quick_repair(true);
        Ok(txn)
    }

    /// Rewrites the file without free space (redb compaction). Returns true if it shrank.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        let db = &mut self.db;
        let result = guarded(&self.path, || {
            db.compact()
                .map_err(|e| StoreError::Redb(redb::Error::from(e)))
        });
        if result.is_err() {
            self.failed
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        result
    }

    /// Records a hub and its metadata (keeping its number if it has one).
    pub fn put_hub(&self, hub: &HubId, metadata: &[u8]) -> Result<(), StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            {
                let mut hubs = txn.open_table(HUBS)?;
                let number = hub_number(&hubs, hub)?;
                let mut value = number.to_le_bytes().to_vec();
                value.extend_from_slice(metadata);
                hubs.insert(&hub.0, value.as_slice())?;
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// Every hub, with its metadata, ascending by id.
    pub fn hubs(&self) -> Result<Vec<(HubId, Vec<u8>)>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(HUBS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                out.push((
                    HubId(*key.value()),
                    value.value().get(4..).unwrap_or_default().to_vec(),
                ));
            }
            Ok(out)
        })
    }

    fn known_hub_number(
        &self,
        txn: &redb::ReadTransaction,
        hub: &HubId,
    ) -> Result<Option<u32>, StoreError> {
        stored_hub_number(&txn.open_table(HUBS)?, hub)
    }

    /// Stores accepted ops in one transaction (verdict 0), in the order given (which must
    /// respect dependencies, as a replica's acceptance order does); returns once it is durable.
    /// Ops already stored are skipped.
    pub fn put_ops(&self, hub: &HubId, ops: &[&SignedOp]) -> Result<(), StoreError> {
        let with_verdicts: Vec<(&SignedOp, u8)> = ops.iter().map(|op| (*op, 0)).collect();
        self.put_kept(hub, &with_verdicts)
    }

    /// Stores ops with the verdict byte the replica gave each (`moot_state::Verdict`), in one
    /// transaction, in acceptance order; returns once it is durable. Ops already stored are
    /// skipped.
    pub fn put_kept(&self, hub: &HubId, ops: &[(&SignedOp, u8)]) -> Result<(), StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            insert_ops(&txn, hub, ops)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// Stores batches of kept ops in **one** transaction, committed only once the last batch
    /// came (all or nothing): the ops of a bundle. `new_hub`: the metadata of a hub not stored
    /// yet and config values, recorded in the same transaction. A `None` batch aborts:
    /// nothing is stored, and `Ok(None)` is returned. Returns the ops stored.
    pub fn put_all(
        &self,
        hub: &HubId,
        new_hub: Option<NewHub<'_>>,
        batches: impl IntoIterator<Item = Option<Vec<(SignedOp, u8)>>>,
    ) -> Result<Option<u64>, StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            if let Some((metadata, config)) = new_hub {
                let mut hubs = txn.open_table(HUBS)?;
                let number = hub_number(&hubs, hub)?;
                let mut value = number.to_le_bytes().to_vec();
                value.extend_from_slice(metadata);
                hubs.insert(&hub.0, value.as_slice())?;
                let mut table = txn.open_table(CONFIG)?;
                for (name, value) in config {
                    table.insert(*name, *value)?;
                }
            }
            let mut stored = 0u64;
            for batch in batches {
                let Some(batch) = batch else {
                    // Dropping the transaction aborts it.
                    return Ok(None);
                };
                let refs: Vec<(&SignedOp, u8)> = batch.iter().map(|(op, v)| (op, *v)).collect();
                insert_ops(&txn, hub, &refs)?;
                stored += refs.len() as u64;
            }
            txn.commit()?;
            Ok(Some(stored))
        })
    }

    /// Changes the stored verdicts of ops already stored (a newer version judged ops that an
    /// older one kept as unsupported or held). One transaction.
    pub fn set_verdicts(&self, hub: &HubId, verdicts: &[(OpId, u8)]) -> Result<(), StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            {
                let hubs = txn.open_table(HUBS)?;
                let Some(hub_no) = stored_hub_number(&hubs, hub)? else {
                    return Err(corrupt(format!("hub {hub} is not stored")));
                };
                let keys = device_key_list(&txn.open_table(DEVICE_KEYS)?, hub_no)?;
                let ids = txn.open_table(OP_IDS)?;
                let recent = txn.open_table(OP_IDS_RECENT)?;
                let mut table = txn.open_table(OPS)?;
                for (id, verdict) in verdicts {
                    let position = find_position(&[&ids, &recent], &table, &keys, hub_no, id)?
                        .ok_or_else(|| corrupt(format!("op {id} is not stored")))?;
                    let updated = table.get((hub_no, position))?.map(|stored| {
                        let mut value = stored.value().to_vec();
                        let at = device_number_of(&value).map(|(_, used)| used);
                        if let Some(at) = at
                            && let Some(byte) = value.get_mut(at)
                        {
                            *byte = *verdict;
                        }
                        value
                    });
                    if let Some(value) = updated {
                        table.insert((hub_no, position), value.as_slice())?;
                    }
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// Records a new hub in one transaction: its first ops, its metadata and config values
    /// (e.g. making it the default hub). Either all of it is durable or none of it is.
    pub fn create_hub(
        &self,
        hub: &HubId,
        metadata: &[u8],
        ops: &[&SignedOp],
        config: &[(&str, &[u8])],
    ) -> Result<(), StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            let accepted: Vec<(&SignedOp, u8)> = ops.iter().map(|op| (*op, 0)).collect();
            insert_ops(&txn, hub, &accepted)?;
            {
                let mut hubs = txn.open_table(HUBS)?;
                let number = hub_number(&hubs, hub)?;
                let mut value = number.to_le_bytes().to_vec();
                value.extend_from_slice(metadata);
                hubs.insert(&hub.0, value.as_slice())?;
                let mut table = txn.open_table(CONFIG)?;
                for (name, value) in config {
                    table.insert(*name, *value)?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// Visits every op of a hub in acceptance order, as (device key, exact bytes).
    fn each_op(
        &self,
        hub: &HubId,
        mut visit: impl FnMut(usize, &[[u8; 32]], Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_read()?;
        let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
            return Ok(());
        };
        let keys = device_key_list(&txn.open_table(DEVICE_KEYS)?, hub_no)?;
        let table = txn.open_table(OPS)?;
        for entry in table.range((hub_no, 0u64)..=(hub_no, u64::MAX))? {
            let (key, value) = entry?;
            let (device_no, _, bytes) = restore(value.value(), &keys)
                .ok_or_else(|| corrupt(format!("op at position {}", key.value().1)))?;
            visit(device_no as usize, &keys, bytes)?;
        }
        Ok(())
    }

    /// Every op of a hub, as exact bytes, in acceptance order.
    pub fn ops(&self, hub: &HubId) -> Result<Vec<Vec<u8>>, StoreError> {
        self.guard(|| {
            let mut out = Vec::new();
            self.each_op(hub, |_, _, bytes| {
                out.push(bytes);
                Ok(())
            })?;
            Ok(out)
        })
    }

    /// One op's bytes, by id.
    pub fn op(&self, hub: &HubId, id: &OpId) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
                return Ok(None);
            };
            let device_keys = txn.open_table(DEVICE_KEYS)?;
            let key_of = |n: u32| Ok(device_keys.get((hub_no, n))?.map(|v| *v.value()));
            let ids = txn.open_table(OP_IDS)?;
            let recent = txn.open_table(OP_IDS_RECENT)?;
            let table = txn.open_table(OPS)?;
            let Some(position) = find_position_by(&[&ids, &recent], &table, key_of, hub_no, id)?
            else {
                return Ok(None);
            };
            let Some(stored) = table.get((hub_no, position))? else {
                return Ok(None);
            };
            let stored = stored.value();
            let Some((device_no, _)) = device_number_of(stored) else {
                return Ok(None);
            };
            let Some(author) = key_of(device_no)? else {
                return Ok(None);
            };
            Ok(restore_with(stored, &author).map(|(_, _, bytes)| bytes))
        })
    }

    /// Number of ops stored for a hub.
    pub fn op_count(&self, hub: &HubId) -> Result<u64, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
                return Ok(0);
            };
            let table = txn.open_table(OPS)?;
            Ok(
                match table
                    .range((hub_no, 0u64)..=(hub_no, u64::MAX))?
                    .next_back()
                {
                    Some(last) => last?.0.value().1 + 1,
                    None => 0,
                },
            )
        })
    }

    /// Total ops stored, all hubs.
    pub fn total_ops(&self) -> Result<u64, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            Ok(txn.open_table(OPS)?.len()?)
        })
    }

    /// A device's chain in a hub and lane: `(seq, op id)` ascending (two ids at one seq mean a
    /// fork).
    pub fn chain(
        &self,
        hub: &HubId,
        device: &PublicKey,
        lane: Lane,
    ) -> Result<Vec<(u64, OpId)>, StoreError> {
        let ops = self.chain_range(hub, device, lane, 1..=u64::MAX, usize::MAX)?;
        ops.into_iter()
            .map(|(seq, bytes)| {
                SignedOp::decode(&bytes)
                    .map(|op| (seq, op.id()))
                    .map_err(|e| corrupt(e.to_string()))
            })
            .collect()
    }

    /// The ops of `device`'s chain in `lane` with a sequence number in `seqs`, ascending (forks
    /// included), at most `max_ops`: `(seq, exact bytes)`. What a peer asks for when it lacks
    /// part of a chain.
    pub fn chain_range(
        &self,
        hub: &HubId,
        device: &PublicKey,
        lane: Lane,
        seqs: std::ops::RangeInclusive<u64>,
        max_ops: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
                return Ok(Vec::new());
            };
            let keys = device_key_list(&txn.open_table(DEVICE_KEYS)?, hub_no)?;
            let devices = txn.open_table(DEVICES)?;
            let Some(device_no) = devices
                .get((hub_no, &device.to_bytes()))?
                .map(|v| v.value())
            else {
                return Ok(Vec::new());
            };
            let chains = txn.open_table(CHAINS)?;
            let table = txn.open_table(OPS)?;
            let lane = lane.to_byte();
            let (from, to) = (*seqs.start(), *seqs.end());
            let mut out = Vec::new();
            for entry in chains.range(
                (hub_no, device_no, lane, from, 0u64)..=(hub_no, device_no, lane, to, u64::MAX),
            )? {
                if out.len() >= max_ops {
                    break;
                }
                let (_, _, _, seq, position) = entry?.0.value();
                let stored = table
                    .get((hub_no, position))?
                    .ok_or_else(|| corrupt(format!("chain names missing position {position}")))?;
                let (_, _, bytes) =
                    restore(stored.value(), &keys).ok_or_else(|| corrupt("unreadable op"))?;
                out.push((seq, bytes));
            }
            Ok(out)
        })
    }

    /// The heads of every chain in a hub, fork-aware: for each (device, lane), every op that no
    /// other op of the chain continues (one per chain unless it forked), ascending by device,
    /// lane and sequence number. What a sync peer compares first.
    pub fn heads(&self, hub: &HubId) -> Result<Vec<Head>, StoreError> {
        self.raw_heads(hub)?
            .into_iter()
            .map(|h| {
                Ok(Head {
                    device: PublicKey::from_bytes(&h.device)
                        .map_err(|e| corrupt(format!("device key: {e}")))?,
                    lane: h.lane,
                    seq: h.seq,
                    id: h.id,
                })
            })
            .collect()
    }

    /// [`Store::heads`] with the device keys as bytes: no key is parsed (parsing a key is most
    /// of the cost of a head, and a sync peer needs only the bytes), and an unforked chain's
    /// head is hashed for its id, not decoded.
    pub fn raw_heads(&self, hub: &HubId) -> Result<Vec<RawHead>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
                return Ok(Vec::new());
            };
            let keys = device_key_list(&txn.open_table(DEVICE_KEYS)?, hub_no)?;
            let chains = txn.open_table(CHAINS)?;
            let forked = txn.open_table(FORKED)?;
            let table = txn.open_table(OPS)?;
            let read = |position: u64| -> Result<Vec<u8>, StoreError> {
                let stored = table
                    .get((hub_no, position))?
                    .ok_or_else(|| corrupt(format!("chain names missing position {position}")))?;
                let (_, _, bytes) =
                    restore(stored.value(), &keys).ok_or_else(|| corrupt("unreadable op"))?;
                Ok(bytes)
            };
            let mut out = Vec::new();
            for (device_no, device) in keys.iter().enumerate() {
                let device_no = device_no as u32;
                for lane in Lane::ALL {
                    let l = lane.to_byte();
                    let range = (hub_no, device_no, l, 0u64, 0u64)
                        ..=(hub_no, device_no, l, u64::MAX, u64::MAX);
                    if forked.get((hub_no, device_no, l))?.is_none() {
                        if let Some(last) = chains.range(range)?.next_back() {
                            let (_, _, _, seq, position) = last?.0.value();
                            out.push(RawHead {
                                device: *device,
                                lane,
                                seq,
                                id: moot_crypto::op::id_of_bytes(&read(position)?),
                            });
                        }
                        continue;
                    }
                    // A forked chain: its heads are the ops no other op names as `prev`.
                    let mut ops = Vec::new();
                    for entry in chains.range(range)? {
                        let (_, _, _, seq, position) = entry?.0.value();
                        let op = SignedOp::decode(&read(position)?)
                            .map_err(|e| corrupt(e.to_string()))?;
                        ops.push((seq, op.id(), op.prev()));
                    }
                    let continued: std::collections::BTreeSet<OpId> =
                        ops.iter().filter_map(|(_, _, prev)| *prev).collect();
                    for (seq, id, _) in ops {
                        if !continued.contains(&id) {
                            out.push(RawHead {
                                device: *device,
                                lane,
                                seq,
                                id,
                            });
                        }
                    }
                }
            }
            Ok(out)
        })
    }

    /// Up to `max_ops` ops of a hub from `position` on, in acceptance order (each after its
    /// dependencies): `(position, exact bytes)`. Call again from the last position + 1 to go on:
    /// a stream in bounded batches, never the whole hub at once.
    pub fn ops_from(
        &self,
        hub: &HubId,
        position: u64,
        max_ops: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .stored_from(hub, position, max_ops)?
            .into_iter()
            .map(|(position, _, bytes)| (position, bytes))
            .collect())
    }

    /// [`Store::ops_from`] with each op's verdict byte.
    /// Up to `max_ops` ops of `hub` from `position` on, in position order, as (position,
    /// verdict byte, exact bytes), not decoded: what a peer is sent.
    pub fn raw_from(
        &self,
        hub: &HubId,
        position: u64,
        max_ops: usize,
    ) -> Result<Vec<(u64, u8, Vec<u8>)>, StoreError> {
        self.stored_from(hub, position, max_ops)
    }

    fn stored_from(
        &self,
        hub: &HubId,
        position: u64,
        max_ops: usize,
    ) -> Result<Vec<(u64, u8, Vec<u8>)>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
                return Ok(Vec::new());
            };
            // Only the keys of the devices in the range are read (a hub of 10,000 devices has
            // 10,000 keys; a sync reads the store 256 ops at a time).
            let mut keys = DeviceKeys::new(txn.open_table(DEVICE_KEYS)?, hub_no);
            let table = txn.open_table(OPS)?;
            let mut out = Vec::new();
            for entry in table.range((hub_no, position)..=(hub_no, u64::MAX))? {
                if out.len() >= max_ops {
                    break;
                }
                let (key, value) = entry?;
                let at = key.value().1;
                let value = value.value();
                let damaged = || corrupt(format!("op at position {at}"));
                let (device_no, _) = device_number_of(value).ok_or_else(damaged)?;
                let author = keys.get(device_no)?.ok_or_else(damaged)?;
                let (_, verdict, bytes) = restore_with(value, &author).ok_or_else(damaged)?;
                out.push((at, verdict, bytes));
            }
            Ok(out)
        })
    }

    /// Up to `max_ops` stored ops of a hub from `position` on, decoded, with their verdict
    /// bytes, in acceptance order. Signatures are not checked again: the node verified each op
    /// before storing it (this is the store loader, the one caller of
    /// `SignedOp::decode_trusted_from_own_store`). Bytes that do not decode are damage,
    /// reported rather than skipped.
    pub fn load_from(
        &self,
        hub: &HubId,
        position: u64,
        max_ops: usize,
    ) -> Result<Vec<(u64, Authentic<SignedOp>, u8)>, StoreError> {
        let stored = self.stored_from(hub, position, max_ops)?;
        let mut out = Vec::with_capacity(stored.len());
        let mut last_key: Option<([u8; 32], PublicKey)> = None;
        for (at, verdict, bytes) in stored {
            let op = SignedOp::decode_trusted_from_own_store(&bytes, |raw| match &last_key {
                Some((k, key)) if k == raw => Ok(*key),
                _ => PublicKey::from_bytes(raw),
            })
            .map_err(|e| corrupt(format!("op at position {at}: {e}")))?;
            last_key = Some((op.author().to_bytes(), op.author()));
            out.push((at, op, verdict));
        }
        Ok(out)
    }

    /// Stores a derived view (rebuildable from the ops).
    pub fn put_view(&self, hub: &HubId, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.guard(|| {
            let txn = self.write_txn()?;
            txn.open_table(VIEWS)?.insert((&hub.0, name), bytes)?;
            txn.commit()?;
            Ok(())
        })
    }

    /// Stores several derived views in one transaction (one commit, one fsync).
    pub fn put_views(&self, hub: &HubId, views: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        if views.is_empty() {
            return Ok(());
        }
        self.guard(|| {
            let txn = self.write_txn()?;
            {
                let mut table = txn.open_table(VIEWS)?;
                for (name, bytes) in views {
                    table.insert((&hub.0, name.as_str()), bytes.as_slice())?;
                }
            }
            txn.commit()?;
            Ok(())
        })
    }

    /// Reads a derived view.
    pub fn view(&self, hub: &HubId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard(|| {
            let txn = self.db.begin_read()?;
            let table = txn.open_table(VIEWS)?;
            Ok(table.get((&hub.0, name))?.map(|v| v.value().to_vec()))
        })
    }

    /// Stores a config value.
    pub fn put_config(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.guard(|| self.put(CONFIG, name, value))
    }

    /// Reads a config value.
    pub fn config(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.guard(|| self.get(CONFIG, name))
    }

    fn put(
        &self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let txn = self.write_txn()?;
        txn.open_table(table)?.insert(name, value)?;
        txn.commit()?;
        Ok(())
    }

    fn get(
        &self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(table)?;
        Ok(table.get(name)?.map(|v| v.value().to_vec()))
    }

    /// Every stored op of a hub, decoded, in acceptance order (so each comes after its
    /// dependencies); see [`Store::load_from`], which reads them in bounded batches.
    pub fn load_ops(&self, hub: &HubId) -> Result<Vec<Authentic<SignedOp>>, StoreError> {
        let mut out = Vec::new();
        let mut position = 0;
        loop {
            let batch = self.load_from(hub, position, 4096)?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            position = last + 1;
            out.extend(batch.into_iter().map(|(_, op, _)| op));
        }
        Ok(out)
    }
}

/// Inserts ops into an open write transaction (see [`Store::put_kept`]).
fn insert_ops(
    txn: &redb::WriteTransaction,
    hub: &HubId,
    ops: &[(&SignedOp, u8)],
) -> Result<(), StoreError> {
    let mut hubs = txn.open_table(HUBS)?;
    let hub_no = hub_number(&hubs, hub)?;
    if hubs.get(&hub.0)?.is_none() {
        hubs.insert(&hub.0, hub_no.to_le_bytes().as_slice())?;
    }
    let mut devices = txn.open_table(DEVICES)?;
    let mut device_keys = txn.open_table(DEVICE_KEYS)?;
    let mut table = txn.open_table(OPS)?;
    let mut chains = txn.open_table(CHAINS)?;
    let mut forked = txn.open_table(FORKED)?;
    let mut ids = txn.open_table(OP_IDS)?;
    let mut recent_ids = txn.open_table(OP_IDS_RECENT)?;
    let mut merged = txn.open_table(IDS_MERGED)?;
    let mut position = match table
        .range((hub_no, 0u64)..=(hub_no, u64::MAX))?
        .next_back()
    {
        Some(last) => last?.0.value().1 + 1,
        None => 0,
    };
    // Device numbers are dense: the next is one past the last (no need to load every key).
    let mut next_device = match device_keys
        .range((hub_no, 0u32)..=(hub_no, u32::MAX))?
        .next_back()
    {
        Some(last) => last?
            .0
            .value()
            .1
            .checked_add(1)
            .ok_or_else(|| corrupt("too many devices"))?,
        None => 0,
    };
    // The index tables are keyed by hashes and keys, in no order the ops come in: each is
    // looked up and written in key order (B-tree pages stay hot), the ops themselves in
    // acceptance order.
    let ids_of: Vec<OpId> = ops.iter().map(|(op, _)| op.id()).collect();
    let mut by_id: Vec<usize> = (0..ops.len()).collect();
    // Stable: of an op given twice, the first stays (a later copy may follow ops that depend
    // on it).
    by_id.sort_by_key(|&i| ids_of.get(i).copied());
    let mut skip = vec![false; ops.len()];
    for pair in by_id.windows(2) {
        if let [a, b] = pair
            && ids_of.get(*a) == ids_of.get(*b)
            && let Some(slot) = skip.get_mut(*b)
        {
            *slot = true;
        }
    }
    // Device numbers: known ones looked up in key order, new ones numbered in order of first
    // appearance.
    let mut authors: Vec<[u8; 32]> = ops
        .iter()
        .zip(&skip)
        .filter(|(_, skipped)| !**skipped)
        .map(|((op, _), _)| op.author().to_bytes())
        .collect();
    authors.sort_unstable();
    authors.dedup();
    let mut numbers: std::collections::HashMap<[u8; 32], u32> =
        std::collections::HashMap::with_capacity(authors.len());
    for author in &authors {
        if let Some(n) = devices.get((hub_no, author))? {
            numbers.insert(*author, n.value());
        }
    }
    // Which ops are stored already, found through the chain index (an op is stored iff its
    // chain holds, at its seq, an op with its id): a seek the fork check needs anyway, on
    // pages in chain order, where the id index's would land anywhere. An entry at the seq that
    // is another op is a fork.
    let mut at_seq: Vec<(u32, u8, u64, usize)> = ops
        .iter()
        .enumerate()
        .zip(&skip)
        .filter(|(_, skipped)| !**skipped)
        .filter_map(|((i, (op, _)), _)| {
            let n = numbers.get(&op.author().to_bytes())?;
            Some((*n, op.lane().to_byte(), op.seq(), i))
        })
        .collect();
    at_seq.sort_unstable();
    let mut forks = vec![false; ops.len()];
    for (device_no, lane, seq, i) in at_seq {
        let (Some((op, _)), Some(id)) = (ops.get(i), ids_of.get(i)) else {
            continue;
        };
        let author = op.author().to_bytes();
        let mut stored = false;
        let mut other = false;
        for entry in chains.range(
            (hub_no, device_no, lane, seq, 0u64)..=(hub_no, device_no, lane, seq, u64::MAX),
        )? {
            let at = entry?.0.value().4;
            let same = match table.get((hub_no, at))? {
                Some(value) => restore_with(value.value(), &author)
                    .is_some_and(|(_, _, bytes)| moot_crypto::op::id_of_bytes(&bytes) == *id),
                None => false,
            };
            stored |= same;
            other |= !same;
        }
        if let Some(slot) = skip.get_mut(i) {
            *slot |= stored;
        }
        if let Some(slot) = forks.get_mut(i) {
            *slot = other && !stored;
        }
    }
    let mut new_devices: Vec<([u8; 32], u32)> = Vec::new();
    let mut chain_keys: Vec<(u32, u8, u64, u64, bool)> = Vec::with_capacity(ops.len());
    let mut id_keys: Vec<(u32, u64)> = Vec::with_capacity(ops.len());
    for (i, (((op, verdict), id), skipped)) in ops.iter().zip(&ids_of).zip(&skip).enumerate() {
        if *skipped {
            continue;
        }
        let author = op.author().to_bytes();
        let device_no = match numbers.get(&author) {
            Some(n) => *n,
            None => {
                let n = next_device;
                next_device = n
                    .checked_add(1)
                    .ok_or_else(|| corrupt("too many devices"))?;
                numbers.insert(author, n);
                new_devices.push((author, n));
                n
            }
        };
        table.insert(
            (hub_no, position),
            elide(device_no, *verdict, op).as_slice(),
        )?;
        chain_keys.push((
            device_no,
            op.lane().to_byte(),
            op.seq(),
            position,
            forks.get(i).copied().unwrap_or(false),
        ));
        id_keys.push((id_prefix(id), position));
        position += 1;
    }
    new_devices.sort_unstable();
    for (author, n) in &new_devices {
        devices.insert((hub_no, author), *n)?;
    }
    new_devices.sort_unstable_by_key(|(_, n)| *n);
    for (author, n) in &new_devices {
        device_keys.insert((hub_no, *n), author)?;
    }
    // A fork: another op stored at the seq (found above), or two ops of this batch at one seq.
    chain_keys.sort_unstable();
    let mut previous: Option<(u32, u8, u64)> = None;
    for (device_no, lane, seq, at, fork) in chain_keys {
        if fork || previous == Some((device_no, lane, seq)) {
            forked.insert((hub_no, device_no, lane), ())?;
        }
        previous = Some((device_no, lane, seq));
        chains.insert((hub_no, device_no, lane, seq, at), ())?;
    }
    id_keys.sort_unstable();
    for (prefix, at) in id_keys {
        recent_ids.insert((hub_no, prefix, at), ())?;
    }
    merge_recent_ids(&mut ids, &mut recent_ids, &mut merged, hub_no, position)?;
    Ok(())
}

/// Moves a hub's recent id entries into the main id index once the ops since the last move
/// number more than [`RECENT_IDS_MIN`] and more than a quarter of those before it (`next` is the
/// hub's next position: the recent part holds the ops from the merged position to it). The main part
/// then grows by a quarter or more at each move, so each entry is moved once and the main
/// part's pages are copied a few times over a hub's life, not at every batch.
fn merge_recent_ids(
    ids: &mut redb::Table<(u32, u32, u64), ()>,
    recent: &mut redb::Table<(u32, u32, u64), ()>,
    merged: &mut redb::Table<u32, u64>,
    hub_no: u32,
    next: u64,
) -> Result<(), StoreError> {
    let below = merged.get(hub_no)?.map_or(0, |v| v.value());
    let pending = next.saturating_sub(below);
    if pending <= RECENT_IDS_MIN || pending <= below / 4 {
        return Ok(());
    }
    let range = (hub_no, 0u32, 0u64)..=(hub_no, u32::MAX, u64::MAX);
    let mut moving: Vec<(u32, u64)> = Vec::new();
    for entry in recent.range(range.clone())? {
        let key = entry?.0.value();
        moving.push((key.1, key.2));
    }
    recent.retain_in(range, |_, _| false)?;
    for (prefix, at) in moving {
        ids.insert((hub_no, prefix, at), ())?;
    }
    merged.insert(hub_no, next)?;
    Ok(())
}

/// The position of a stored op, by id (the id index holds 4-byte prefixes; each candidate's
/// full id is checked).
fn find_position<T: ReadableTable<(u32, u32, u64), ()>>(
    ids: &[&T],
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    keys: &[[u8; 32]],
    hub_no: u32,
    id: &OpId,
) -> Result<Option<u64>, StoreError> {
    find_position_by(
        ids,
        table,
        |n| Ok(keys.get(n as usize).copied()),
        hub_no,
        id,
    )
}

/// [`find_position`] reading a candidate's author key with `key_of` (by device number), so a
/// writer need not load every device key of the hub: candidates are rare (4-byte prefixes).
fn find_position_by<T: ReadableTable<(u32, u32, u64), ()>>(
    ids: &[&T],
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    mut key_of: impl FnMut(u32) -> Result<Option<[u8; 32]>, StoreError>,
    hub_no: u32,
    id: &OpId,
) -> Result<Option<u64>, StoreError> {
    let prefix = id_prefix(id);
    for part in ids {
        if let Some(at) = position_in(*part, table, &mut key_of, hub_no, prefix, id)? {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// [`find_position_by`] in one part of the id index.
fn position_in(
    ids: &impl ReadableTable<(u32, u32, u64), ()>,
    table: &impl ReadableTable<(u32, u64), &'static [u8]>,
    key_of: &mut impl FnMut(u32) -> Result<Option<[u8; 32]>, StoreError>,
    hub_no: u32,
    prefix: u32,
    id: &OpId,
) -> Result<Option<u64>, StoreError> {
    for candidate in ids.range((hub_no, prefix, 0u64)..=(hub_no, prefix, u64::MAX))? {
        let at = candidate?.0.value().2;
        let Some(stored) = table.get((hub_no, at))? else {
            continue;
        };
        let stored = stored.value();
        let Some((device_no, _)) = device_number_of(stored) else {
            continue;
        };
        let Some(key) = key_of(device_no)? else {
            continue;
        };
        if let Some((_, _, bytes)) = restore_with(stored, &key)
            && moot_crypto::op::id_of_bytes(&bytes) == *id
        {
            return Ok(Some(at));
        }
    }
    Ok(None)
}

/// The number of a stored hub, if it is stored.
fn stored_hub_number(
    hubs: &impl ReadableTable<&'static [u8; 32], &'static [u8]>,
    hub: &HubId,
) -> Result<Option<u32>, StoreError> {
    Ok(hubs.get(&hub.0)?.and_then(|v| {
        v.value()
            .get(..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_le_bytes)
    }))
}

/// One head of a chain (see [`Store::heads`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Head {
    /// The author device.
    pub device: PublicKey,
    /// The chain's lane.
    pub lane: Lane,
    /// The head's sequence number.
    pub seq: u64,
    /// The head op.
    pub id: OpId,
}

/// A chain head as [`Store::raw_heads`] gives it: the device key as bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawHead {
    /// The author device's key bytes.
    pub device: [u8; 32],
    /// The chain's lane.
    pub lane: Lane,
    /// The head's sequence number.
    pub seq: u64,
    /// The head op.
    pub id: OpId,
}

/// Device keys of one hub read one at a time, as needed, and remembered.
struct DeviceKeys<T> {
    table: T,
    hub_no: u32,
    known: std::collections::HashMap<u32, [u8; 32]>,
}

impl<T: ReadableTable<(u32, u32), &'static [u8; 32]>> DeviceKeys<T> {
    fn new(table: T, hub_no: u32) -> Self {
        DeviceKeys {
            table,
            hub_no,
            known: std::collections::HashMap::new(),
        }
    }

    fn get(&mut self, device_no: u32) -> Result<Option<[u8; 32]>, StoreError> {
        if let Some(key) = self.known.get(&device_no) {
            return Ok(Some(*key));
        }
        let Some(key) = self
            .table
            .get((self.hub_no, device_no))?
            .map(|v| *v.value())
        else {
            return Ok(None);
        };
        self.known.insert(device_no, key);
        Ok(Some(key))
    }
}

/// The device keys of a hub, indexed by device number.
fn device_key_list(
    device_keys: &impl ReadableTable<(u32, u32), &'static [u8; 32]>,
    hub_no: u32,
) -> Result<Vec<[u8; 32]>, StoreError> {
    let mut keys: Vec<[u8; 32]> = Vec::new();
    for entry in device_keys.range((hub_no, 0u32)..=(hub_no, u32::MAX))? {
        let (key, value) = entry?;
        let device_no = key.value().1 as usize;
        if device_no != keys.len() {
            return Err(corrupt(format!("device numbers skip {}", keys.len())));
        }
        keys.push(*value.value());
    }
    Ok(keys)
}

/// The number of `hub`, assigning the next free one to a new hub.
fn hub_number(hubs: &redb::Table<&[u8; 32], &[u8]>, hub: &HubId) -> Result<u32, StoreError> {
    if let Some(value) = hubs.get(&hub.0)?
        && let Some(number) = value.value().get(..4).and_then(|b| b.try_into().ok())
    {
        return Ok(u32::from_le_bytes(number));
    }
    let mut next = 0u32;
    for entry in hubs.iter()? {
        let (_, value) = entry?;
        if let Some(number) = value.value().get(..4).and_then(|b| b.try_into().ok()) {
            next = next.max(u32::from_le_bytes(number) + 1);
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

    use super::*;
    use moot_crypto::{Draft, SecretKey};
    use proptest::prelude::*;

    fn stored_value() -> (Vec<u8>, Vec<[u8; 32]>, Vec<u8>) {
        let key = SecretKey::from_seed([3; 32]);
        let op = Draft {
            lane: Lane::Members,
            seq: 1,
            prev: None,
            deps: vec![OpId([9; 32])],
            kind: 7,
            body: b"body".to_vec(),
        }
        .sign(&HubId([1; 32]), &key)
        .unwrap();
        let keys = vec![[0; 32], key.public().to_bytes()];
        (elide(1, 2, op.get()), keys, op.bytes().to_vec())
    }

    #[test]
    fn a_stored_value_round_trips() {
        let (stored, keys, bytes) = stored_value();
        assert_eq!(restore(&stored, &keys), Some((1, 2, bytes)));
        // A device number with no key is not an op.
        assert_eq!(restore(&stored, &keys[..1]), None);
    }

    /// A store written before the id index had a recent part (every entry in `op_ids`, no
    /// `op_ids_recent` or `op_ids_merged` table) opens, finds its ops by id, skips them as
    /// duplicates, and takes new ones: its hub holds more than `RECENT_IDS_MIN` ops, so the
    /// first write moves its own entries at once.
    #[test]
    fn a_store_from_before_the_recent_id_part_still_works() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("moot.redb");
        let hub = HubId([4; 32]);
        let key = SecretKey::from_seed([5; 32]);
        let (old, all) = (RECENT_IDS_MIN as usize + 800, RECENT_IDS_MIN as usize + 840);
        let mut ops: Vec<SignedOp> = Vec::new();
        for seq in 1..=all as u64 {
            let draft = Draft {
                lane: Lane::Public,
                seq,
                prev: ops.last().map(SignedOp::id),
                deps: vec![],
                kind: 5,
                body: seq.to_le_bytes().to_vec(),
            };
            ops.push(draft.sign(&hub, &key).unwrap().into_inner());
        }
        let refs: Vec<&SignedOp> = ops.iter().collect();
        let found = |store: &Store, op: &SignedOp| {
            assert_eq!(
                store.op(&hub, &op.id()).unwrap().as_deref(),
                Some(op.bytes())
            );
        };
        {
            let store = Store::open(&path).unwrap();
            for batch in refs[..old].chunks(1_000) {
                store.put_ops(&hub, batch).unwrap();
            }
            // Turn the file into the earlier layout: every entry in the main part.
            let txn = store.db.begin_write().unwrap();
            {
                let mut recent = txn.open_table(OP_IDS_RECENT).unwrap();
                let mut main = txn.open_table(OP_IDS).unwrap();
                let keys: Vec<(u32, u32, u64)> = recent
                    .range::<(u32, u32, u64)>(..)
                    .unwrap()
                    .map(|e| e.unwrap().0.value())
                    .collect();
                recent.retain(|_, _| false).unwrap();
                for key in keys {
                    main.insert(key, ()).unwrap();
                }
                assert_eq!(main.len().unwrap(), old as u64);
            }
            assert!(txn.delete_table(OP_IDS_RECENT).unwrap());
            assert!(txn.delete_table(IDS_MERGED).unwrap());
            txn.commit().unwrap();
        }
        let store = Store::open(&path).unwrap();
        for op in ops[..old].iter().step_by(37) {
            found(&store, op);
        }
        store.put_ops(&hub, &refs[old - 20..]).unwrap();
        assert_eq!(store.op_count(&hub).unwrap(), all as u64);
        for op in ops[..old].iter().step_by(37).chain(&ops[old - 20..]) {
            found(&store, op);
        }
        // That write moved its entries at once: the boundary is the hub's end.
        {
            let txn = store.db.begin_read().unwrap();
            let merged = txn.open_table(IDS_MERGED).unwrap();
            let merged = merged.get(0u32).unwrap().map(|v| v.value());
            assert_eq!(merged, Some(all as u64));
        }
        store.put_ops(&hub, &refs).unwrap();
        assert_eq!(store.op_count(&hub).unwrap(), all as u64, "all duplicates");
        store
            .set_verdicts(&hub, &[(ops[3].id(), 1), (ops[all - 5].id(), 2)])
            .unwrap();
        let verdicts: Vec<u8> = store
            .load_from(&hub, 0, all)
            .unwrap()
            .iter()
            .map(|(_, _, verdict)| *verdict)
            .collect();
        assert_eq!(verdicts.len(), all);
        assert_eq!((verdicts[3], verdicts[all - 5], verdicts[4]), (1, 2, 0));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random bytes read back from a damaged store never panic the decoder.
        #[test]
        fn random_stored_values_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let (_, keys, _) = stored_value();
            if let Some((_, _, op)) = restore(&bytes, &keys) {
                let _ = SignedOp::decode(&op);
            }
        }

        /// A stored value with flipped, cut or added bytes never panics, and what it decodes to
        /// is either refused or a different op (the id changes), never silently the same.
        #[test]
        fn mutated_stored_values_never_panic(at in 0usize..200, flip in 1u8..=255, cut in 0usize..200) {
            let (stored, keys, bytes) = stored_value();
            let mut flipped = stored.clone();
            let i = at % flipped.len();
            flipped[i] ^= flip;
            if let Some((_, _, op)) = restore(&flipped, &keys)
                && let Ok(decoded) = SignedOp::decode(&op)
            {
                let original = SignedOp::decode(&bytes).unwrap();
                // The verdict byte is not part of the op; everything else changes the op.
                prop_assert!(decoded.id() != original.id() || op == bytes);
            }
            let cut = &stored[..cut.min(stored.len())];
            if let Some((_, _, op)) = restore(cut, &keys) {
                let _ = SignedOp::decode(&op);
            }
        }
    }
}
