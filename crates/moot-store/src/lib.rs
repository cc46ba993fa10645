//! Durable storage in one redb file: ops by id and by author chain, derived views, the keystore
//! and node config. The only crate that knows redb.
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

use std::path::Path;

use moot_crypto::{Authentic, HubId, OpId, PublicKey, SignedOp};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};

/// Hubs this node belongs to: hub id → 4-byte hub number (little-endian) || hub metadata.
const HUBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("hubs");
/// Device numbers: (hub number, device key) → device number.
const DEVICES: TableDefinition<(u32, &[u8; 32]), u32> = TableDefinition::new("devices");
/// Device keys by number: (hub number, device number) → device key.
const DEVICE_KEYS: TableDefinition<(u32, u32), &[u8; 32]> = TableDefinition::new("device_keys");
/// Ops in acceptance order: (hub number, position) → device number (LEB128) || op bytes with
/// the author field elided. Positions only grow, so this table is written in key
/// order and its pages stay full; and ops are accepted only after their dependencies, so
/// loading in position order never waits on one.
const OPS: TableDefinition<(u32, u64), &[u8]> = TableDefinition::new("ops");
/// The per-device chain index: (hub number, device number, position) → (). A device's ops are
/// accepted in chain order, so positions ascend with seq; two ops with one seq (read from the
/// op) are a fork (an equivocation, kept as evidence).
const CHAINS: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("chains");
/// Ops by id: (hub number, first 4 bytes of the op id, position) → (). A lookup checks the full
/// id of each candidate.
const OP_IDS: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("op_ids");
/// Derived views, rebuildable from ops: (hub id, view name) → bytes.
const VIEWS: TableDefinition<(&[u8; 32], &str), &[u8]> = TableDefinition::new("views");
/// Keystore: entry name → sealed key bytes (encrypted when a passphrase is set).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Node configuration: name → bytes.
const CONFIG: TableDefinition<&str, &[u8]> = TableDefinition::new("config");

/// Bytes of the author field, elided from stored ops (after the version byte).
const ELIDED: std::ops::Range<usize> = 1..33;

/// The stored value of an op: its device number (LEB128), then its bytes without the author.
fn elide(device_no: u32, op: &SignedOp) -> Vec<u8> {
    let bytes = op.bytes();
    let mut stored = Vec::with_capacity(5 + bytes.len() - ELIDED.len());
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
    stored.push(bytes[0]);
    stored.extend_from_slice(&bytes[ELIDED.end..]);
    stored
}

/// The device number and exact op bytes of a stored value, given the device keys.
fn restore(stored: &[u8], keys: &[[u8; 32]]) -> Option<(u32, Vec<u8>)> {
    let mut device_no = 0u32;
    let mut used = 0;
    for (i, byte) in stored.iter().enumerate().take(5) {
        device_no |= u32::from(byte & 0x7f).checked_shl(7 * i as u32)?;
        if byte & 0x80 == 0 {
            used = i + 1;
            break;
        }
    }
    if used == 0 {
        return None;
    }
    let author = keys.get(device_no as usize)?;
    let rest = stored.get(used..)?;
    let mut bytes = Vec::with_capacity(rest.len() + ELIDED.len());
    bytes.extend_from_slice(rest.get(..1)?);
    bytes.extend_from_slice(author);
    bytes.extend_from_slice(rest.get(1..)?);
    Some((device_no, bytes))
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

/// The node's redb store.
pub struct Store {
    db: Database,
}

impl Store {
    /// Opens (or creates) the store at `path`, repairing an interrupted commit if needed.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let db = Database::create(path)?;
        // Make sure every table exists, so readers never meet a missing table.
        let txn = db.begin_write()?;
        txn.open_table(HUBS)?;
        txn.open_table(DEVICES)?;
        txn.open_table(DEVICE_KEYS)?;
        txn.open_table(OPS)?;
        txn.open_table(CHAINS)?;
        txn.open_table(OP_IDS)?;
        txn.open_table(VIEWS)?;
        txn.open_table(KEYS)?;
        txn.open_table(CONFIG)?;
        txn.commit()?;
        Ok(Store { db })
    }

    /// Rewrites the file without free space (redb compaction). Returns true if it shrank.
    pub fn compact(&mut self) -> Result<bool, StoreError> {
        self.db
            .compact()
            .map_err(|e| StoreError::Redb(redb::Error::from(e)))
    }

    /// Records a hub and its metadata (keeping its number if it has one).
    pub fn put_hub(&self, hub: &HubId, metadata: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut hubs = txn.open_table(HUBS)?;
            let number = hub_number(&hubs, hub)?;
            let mut value = number.to_le_bytes().to_vec();
            value.extend_from_slice(metadata);
            hubs.insert(&hub.0, value.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    /// Every hub, with its metadata, ascending by id.
    pub fn hubs(&self) -> Result<Vec<(HubId, Vec<u8>)>, StoreError> {
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
    }

    fn known_hub_number(
        &self,
        txn: &redb::ReadTransaction,
        hub: &HubId,
    ) -> Result<Option<u32>, StoreError> {
        let hubs = txn.open_table(HUBS)?;
        let value = hubs.get(&hub.0)?;
        Ok(value.and_then(|v| {
            v.value()
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        }))
    }

    /// Stores ops in one transaction, in the order given (which must respect dependencies, as
    /// a replica's acceptance order does); returns once it is durable. Ops already stored are
    /// skipped.
    pub fn put_ops(&self, hub: &HubId, ops: &[&SignedOp]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut hubs = txn.open_table(HUBS)?;
            let hub_no = hub_number(&hubs, hub)?;
            if hubs.get(&hub.0)?.is_none() {
                hubs.insert(&hub.0, hub_no.to_le_bytes().as_slice())?;
            }
            let mut devices = txn.open_table(DEVICES)?;
            let mut device_keys = txn.open_table(DEVICE_KEYS)?;
            let mut table = txn.open_table(OPS)?;
            let mut chains = txn.open_table(CHAINS)?;
            let mut ids = txn.open_table(OP_IDS)?;
            let mut position = match table
                .range((hub_no, 0u64)..=(hub_no, u64::MAX))?
                .next_back()
            {
                Some(last) => last?.0.value().1 + 1,
                None => 0,
            };
            let mut keys = device_key_list(&device_keys, hub_no)?;
            for op in ops {
                let id = op.id();
                let prefix = id_prefix(&id);
                let mut duplicate = false;
                for candidate in ids.range((hub_no, prefix, 0u64)..=(hub_no, prefix, u64::MAX))? {
                    let at = candidate?.0.value().2;
                    if let Some(stored) = table.get((hub_no, at))?
                        && restore(stored.value(), &keys)
                            .is_some_and(|(_, bytes)| bytes == op.bytes())
                    {
                        duplicate = true;
                        break;
                    }
                }
                if duplicate {
                    continue;
                }
                let author = op.author().to_bytes();
                let existing = devices.get((hub_no, &author))?.map(|v| v.value());
                let device_no = match existing {
                    Some(n) => n,
                    None => {
                        let n =
                            u32::try_from(keys.len()).map_err(|_| corrupt("too many devices"))?;
                        devices.insert((hub_no, &author), n)?;
                        device_keys.insert((hub_no, n), &author)?;
                        keys.push(author);
                        n
                    }
                };
                table.insert((hub_no, position), elide(device_no, op).as_slice())?;
                chains.insert((hub_no, device_no, position), ())?;
                ids.insert((hub_no, prefix, position), ())?;
                position += 1;
            }
        }
        txn.commit()?;
        Ok(())
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
            let (device_no, bytes) = restore(value.value(), &keys)
                .ok_or_else(|| corrupt(format!("op at position {}", key.value().1)))?;
            visit(device_no as usize, &keys, bytes)?;
        }
        Ok(())
    }

    /// Every op of a hub, as exact bytes, in acceptance order.
    pub fn ops(&self, hub: &HubId) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut out = Vec::new();
        self.each_op(hub, |_, _, bytes| {
            out.push(bytes);
            Ok(())
        })?;
        Ok(out)
    }

    /// One op's bytes, by id.
    pub fn op(&self, hub: &HubId, id: &OpId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let Some(hub_no) = self.known_hub_number(&txn, hub)? else {
            return Ok(None);
        };
        let keys = device_key_list(&txn.open_table(DEVICE_KEYS)?, hub_no)?;
        let ids = txn.open_table(OP_IDS)?;
        let table = txn.open_table(OPS)?;
        let prefix = id_prefix(id);
        for entry in ids.range((hub_no, prefix, 0u64)..=(hub_no, prefix, u64::MAX))? {
            let position = entry?.0.value().2;
            let Some(stored) = table.get((hub_no, position))? else {
                continue;
            };
            if let Some((_, bytes)) = restore(stored.value(), &keys)
                && SignedOp::decode(&bytes).is_ok_and(|op| op.id() == *id)
            {
                return Ok(Some(bytes));
            }
        }
        Ok(None)
    }

    /// Number of ops stored for a hub.
    pub fn op_count(&self, hub: &HubId) -> Result<u64, StoreError> {
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
    }

    /// Total ops stored, all hubs.
    pub fn total_ops(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(OPS)?.len()?)
    }

    /// A device's chain in a hub: `(seq, op id)` ascending (two ids at one seq mean a fork).
    pub fn chain(&self, hub: &HubId, device: &PublicKey) -> Result<Vec<(u64, OpId)>, StoreError> {
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
        let mut out = Vec::new();
        for entry in chains.range((hub_no, device_no, 0u64)..=(hub_no, device_no, u64::MAX))? {
            let (_, _, position) = entry?.0.value();
            let stored = table
                .get((hub_no, position))?
                .ok_or_else(|| corrupt(format!("chain names missing position {position}")))?;
            let (_, bytes) =
                restore(stored.value(), &keys).ok_or_else(|| corrupt("unreadable op"))?;
            let op = SignedOp::decode(&bytes).map_err(|e| corrupt(e.to_string()))?;
            out.push((op.seq(), op.id()));
        }
        Ok(out)
    }

    /// Stores a derived view (rebuildable from the ops).
    pub fn put_view(&self, hub: &HubId, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(VIEWS)?.insert((&hub.0, name), bytes)?;
        txn.commit()?;
        Ok(())
    }

    /// Reads a derived view.
    pub fn view(&self, hub: &HubId, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(VIEWS)?;
        Ok(table.get((&hub.0, name))?.map(|v| v.value().to_vec()))
    }

    /// Stores a keystore entry.
    pub fn put_key(&self, name: &str, sealed: &[u8]) -> Result<(), StoreError> {
        self.put(KEYS, name, sealed)
    }

    /// Reads a keystore entry.
    pub fn key(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(KEYS, name)
    }

    /// Every keystore entry name, ascending.
    pub fn key_names(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(KEYS)?;
        let mut out = Vec::new();
        for entry in table.iter()? {
            out.push(entry?.0.value().to_string());
        }
        Ok(out)
    }

    /// Stores a config value.
    pub fn put_config(&self, name: &str, value: &[u8]) -> Result<(), StoreError> {
        self.put(CONFIG, name, value)
    }

    /// Reads a config value.
    pub fn config(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.get(CONFIG, name)
    }

    fn put(
        &self,
        table: TableDefinition<&str, &[u8]>,
        name: &str,
        value: &[u8],
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
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
    /// dependencies). Signatures are not re-checked:
    /// the node verified each op before storing it. Bytes that do not decode are corruption,
    /// reported rather than skipped.
    pub fn load_ops(&self, hub: &HubId) -> Result<Vec<Authentic<SignedOp>>, StoreError> {
        let mut out = Vec::new();
        // Parsing a key costs more than decoding the rest of an op: parse each device once.
        let mut parsed: Vec<Option<PublicKey>> = Vec::new();
        self.each_op(hub, |device_no, keys, bytes| {
            if parsed.len() < keys.len() {
                parsed.resize(keys.len(), None);
            }
            let key = match parsed.get(device_no).copied().flatten() {
                Some(key) => key,
                None => {
                    let raw = keys
                        .get(device_no)
                        .ok_or_else(|| corrupt("unknown device number"))?;
                    let key = PublicKey::from_bytes(raw)
                        .map_err(|e| corrupt(format!("device key: {e}")))?;
                    parsed[device_no] = Some(key);
                    key
                }
            };
            let op = SignedOp::decode_trusted_from_own_store(&bytes, |_| Ok(key))
                .map_err(|e| corrupt(e.to_string()))?;
            out.push(op);
            Ok(())
        })?;
        Ok(out)
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
