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
//! use moot_crypto::{Draft, HubId, SecretKey};
//! use moot_store::Store;
//!
//! let dir = std::env::temp_dir().join(format!("moot-store-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! let store = Store::open(&dir.join("moot.redb"))?;
//! let hub = HubId([3; 32]);
//! let op = Draft { seq: 1, prev: None, deps: vec![], kind: 9, body: b"hi".to_vec() }
//!     .sign(&hub, &SecretKey::from_seed([1; 32]))?;
//! store.put_ops(&hub, &[op.get()])?;
//! assert_eq!(store.ops(&hub)?, vec![op.bytes().to_vec()]);
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```

use std::path::Path;

use moot_crypto::{Authentic, HubId, OpId, PublicKey, SignedOp};
use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

/// Hubs this node belongs to: hub id → hub metadata (opaque to the store).
const HUBS: TableDefinition<&[u8; 32], &[u8]> = TableDefinition::new("hubs");
/// Ops: (hub id, op id) → exact op bytes.
const OPS: TableDefinition<(&[u8; 32], &[u8; 32]), &[u8]> = TableDefinition::new("ops");
/// Key of the chain index: (hub id, device, seq).
type ChainKey = (&'static [u8; 32], &'static [u8; 32], u64);
/// Author chains: (hub id, device, seq) → op ids (several only for an equivocation).
const CHAINS: MultimapTableDefinition<ChainKey, &[u8; 32]> = MultimapTableDefinition::new("chains");
/// Acceptance order: (hub id, position) → op id. Ops are accepted only after their
/// dependencies, so this order is causal and loading in it never waits on a dependency.
const ORDER: TableDefinition<(&[u8; 32], u64), &[u8; 32]> = TableDefinition::new("order");
/// Derived views, rebuildable from ops: (hub id, view name) → bytes.
const VIEWS: TableDefinition<(&[u8; 32], &str), &[u8]> = TableDefinition::new("views");
/// Keystore: entry name → sealed key bytes (encrypted when a passphrase is set).
const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Node configuration: name → bytes.
const CONFIG: TableDefinition<&str, &[u8]> = TableDefinition::new("config");

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
        txn.open_table(OPS)?;
        txn.open_multimap_table(CHAINS)?;
        txn.open_table(ORDER)?;
        txn.open_table(VIEWS)?;
        txn.open_table(KEYS)?;
        txn.open_table(CONFIG)?;
        txn.commit()?;
        Ok(Store { db })
    }

    /// Records a hub and its metadata.
    pub fn put_hub(&self, hub: &HubId, metadata: &[u8]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        txn.open_table(HUBS)?.insert(&hub.0, metadata)?;
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
            out.push((HubId(*key.value()), value.value().to_vec()));
        }
        Ok(out)
    }

    /// Stores ops in one transaction; returns once it is durable. Ops already stored are
    /// skipped.
    pub fn put_ops(&self, hub: &HubId, ops: &[&SignedOp]) -> Result<(), StoreError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OPS)?;
            let mut chains = txn.open_multimap_table(CHAINS)?;
            let mut order = txn.open_table(ORDER)?;
            let mut position = match order
                .range((&hub.0, 0u64)..=(&hub.0, u64::MAX))?
                .next_back()
            {
                Some(last) => last?.0.value().1 + 1,
                None => 0,
            };
            for op in ops {
                let id = op.id();
                if table.get((&hub.0, &id.0))?.is_some() {
                    continue;
                }
                table.insert((&hub.0, &id.0), op.bytes())?;
                chains.insert((&hub.0, &op.author().to_bytes(), op.seq()), &id.0)?;
                order.insert((&hub.0, position), &id.0)?;
                position += 1;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Every op of a hub, as stored (ascending by op id).
    pub fn ops(&self, hub: &HubId) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OPS)?;
        let mut out = Vec::new();
        for entry in table.range((&hub.0, &[0u8; 32])..=(&hub.0, &[0xffu8; 32]))? {
            let (_, value) = entry?;
            out.push(value.value().to_vec());
        }
        Ok(out)
    }

    /// One op's bytes.
    pub fn op(&self, hub: &HubId, id: &OpId) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OPS)?;
        Ok(table.get((&hub.0, &id.0))?.map(|v| v.value().to_vec()))
    }

    /// Number of ops stored for a hub.
    pub fn op_count(&self, hub: &HubId) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(OPS)?;
        let mut count = 0;
        for entry in table.range((&hub.0, &[0u8; 32])..=(&hub.0, &[0xffu8; 32]))? {
            entry?;
            count += 1;
        }
        Ok(count)
    }

    /// Total ops stored, all hubs.
    pub fn total_ops(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read()?;
        Ok(txn.open_table(OPS)?.len()?)
    }

    /// A device's chain in a hub: `(seq, op id)` ascending (two ids at one seq mean a fork).
    pub fn chain(&self, hub: &HubId, device: &PublicKey) -> Result<Vec<(u64, OpId)>, StoreError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_multimap_table(CHAINS)?;
        let device = device.to_bytes();
        let mut out = Vec::new();
        for entry in table.range((&hub.0, &device, 0u64)..=(&hub.0, &device, u64::MAX))? {
            let (key, values) = entry?;
            let seq = key.value().2;
            for value in values {
                out.push((seq, OpId(*value?.value())));
            }
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

    /// Every stored op of a hub in acceptance (causal) order, decoded and checked to be the op
    /// its key names; a mismatch is corruption, reported rather than skipped. Signatures are not
    /// re-checked: the node verified each op before storing it.
    pub fn load_ops(&self, hub: &HubId) -> Result<Vec<Authentic<SignedOp>>, StoreError> {
        let txn = self.db.begin_read()?;
        let order = txn.open_table(ORDER)?;
        let table = txn.open_table(OPS)?;
        let mut out = Vec::new();
        for entry in order.range((&hub.0, 0u64)..=(&hub.0, u64::MAX))? {
            let id = OpId(*entry?.1.value());
            let corrupt = |reason: String| StoreError::Corrupt { op: id, reason };
            let bytes = table
                .get((&hub.0, &id.0))?
                .ok_or_else(|| corrupt("listed in the order table but missing".into()))?;
            let op = SignedOp::decode_trusted_from_own_store(bytes.value())
                .map_err(|e| corrupt(e.to_string()))?;
            if op.id() != id {
                return Err(corrupt("bytes do not hash to their key".into()));
            }
            out.push(op);
        }
        Ok(out)
    }
}
