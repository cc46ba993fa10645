//! The sync engine (`moot-sync`) over this node's store: the redb-backed [`OpStore`], and an
//! in-process sync of two nodes' stores (tests and tools; the running node of the next issue
//! drives the same engine over libp2p). A sync records a merge report on each side.

use std::collections::HashSet;
use std::ops::Deref;

use moot_crypto::{HubId, OpId, SignedOp};
use moot_store::Store;
use moot_sync::{Config, Engine, Event, Lanes, OpStore, PeerId, Role, StoreError};

use crate::merge::MergeReport;
use crate::{Node, NodeError, REFUSED_ON_UPGRADE};

/// A hub's ops in a node's redb store, as the sync engine sees them: over `&Node` for an
/// in-process sync, over `Arc<Node>` for the network task (`serve::SharedOps`).
pub struct NodeOps<N> {
    node: N,
    hub: HubId,
    end: u64,
    /// Positions below this were compared with the replica by [`NodeOps::catch_up`].
    scanned: u64,
}

impl<N: Deref<Target = Node>> NodeOps<N> {
    /// The node's ops of `hub`.
    pub fn new(node: N, hub: HubId) -> Result<Self, NodeError> {
        let end = node.store()?.op_count(&hub)?;
        Ok(NodeOps {
            node,
            hub,
            end,
            scanned: end,
        })
    }

    /// Brings `replica` (which held what this store held when it was made, and everything
    /// stored through it since) up to date with ops stored by other writers on the same node —
    /// a command run through a running node's control socket, a bundle imported — in store
    /// order (a causal order), with the verdicts they were stored with. Afterwards the engine
    /// streams them to connected peers like any op stored here. Returns how many it added.
    pub fn catch_up(&mut self, replica: &mut moot_state::Replica) -> Result<usize, NodeError> {
        let store = self.node.store()?;
        let mut added = 0;
        loop {
            let batch = store.load_from(&self.hub, self.scanned, crate::LOAD_BATCH)?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            let next = last + 1;
            for (at, op, stored) in batch {
                if stored == REFUSED_ON_UPGRADE || replica.holds(&op.id()) {
                    continue;
                }
                let verdict = moot_state::Verdict::from_byte(stored).ok_or_else(|| {
                    NodeError::Corrupt(format!("verdict of the op at position {at}"))
                })?;
                let id = op.id();
                replica
                    .restore(op, verdict)
                    .map_err(|rejection| NodeError::StoredOpRefused {
                        hub: self.hub,
                        op: id,
                        outcome: rejection.reason.to_string(),
                    })?;
                added += 1;
            }
            self.scanned = next;
        }
        self.end = self.end.max(self.scanned);
        Ok(added)
    }

    /// The node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// The node, as held.
    pub fn node_arc(&self) -> &N {
        &self.node
    }

    /// The hub.
    pub fn hub(&self) -> HubId {
        self.hub
    }

    fn store(&self) -> Result<&Store, StoreError> {
        self.node.store().map_err(store_error)
    }
}

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl<N: Deref<Target = Node>> OpStore for NodeOps<N> {
    fn end(&self) -> u64 {
        self.end
    }

    fn ops_from(&self, position: u64, max_ops: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .store()?
            .raw_from(&self.hub, position, max_ops)
            .map_err(store_error)?
            .into_iter()
            // Evidence of ops refused after an upgrade is kept, not passed on.
            .filter(|(_, verdict, _)| *verdict != REFUSED_ON_UPGRADE)
            .map(|(at, _, bytes)| (at, bytes))
            .collect())
    }

    fn op(&self, id: &OpId) -> Result<Option<Vec<u8>>, StoreError> {
        self.store()?.op(&self.hub, id).map_err(store_error)
    }

    fn heads(&self) -> Result<Vec<moot_sync::wire::Head>, StoreError> {
        Ok(self
            .store()?
            .raw_heads(&self.hub)
            .map_err(store_error)?
            .into_iter()
            .map(|h| moot_sync::wire::Head {
                device: h.device,
                lane: h.lane,
                seq: h.seq,
                id: h.id,
            })
            .collect())
    }

    fn put_kept(&mut self, ops: &[(&SignedOp, moot_state::Verdict)]) -> Result<(), StoreError> {
        let refs: Vec<(&SignedOp, u8)> = ops.iter().map(|(op, v)| (*op, v.to_byte())).collect();
        self.store()?
            .put_kept(&self.hub, &refs)
            .map_err(store_error)?;
        self.moved_end(refs.len() as u64)
    }

    /// One transaction for all the batches (a commit writes every page the batch touched, and
    /// costs as much as inserting a frame of ops).
    fn put_kept_batches(
        &mut self,
        batches: &mut dyn Iterator<Item = Vec<(SignedOp, moot_state::Verdict)>>,
    ) -> Result<(), StoreError> {
        let mut count = 0u64;
        let batches = batches.map(|batch| {
            count += batch.len() as u64;
            Some(
                batch
                    .into_iter()
                    .map(|(op, verdict)| (op, verdict.to_byte()))
                    .collect(),
            )
        });
        self.store()?
            .put_all(&self.hub, None, batches)
            .map_err(store_error)?;
        self.moved_end(count)
    }
}

impl<N: Deref<Target = Node>> NodeOps<N> {
    /// After storing `count` ops: the end is the store's, which is past them and past any op
    /// another writer (a command on this node) committed before them and not yet taken in by
    /// [`NodeOps::catch_up`]. The engine then sees that more than its own ops went in, and
    /// does not take the others for the peer's: they are sent at once, not left for the next
    /// resync.
    fn moved_end(&mut self, count: u64) -> Result<(), StoreError> {
        let end = self.store()?.op_count(&self.hub).map_err(store_error)?;
        self.end = end.max(self.end + count);
        Ok(())
    }
}

/// What an in-process sync did.
#[derive(Debug, Clone)]
pub struct Synced {
    /// What the other side brought to this node.
    pub here: MergeReport,
    /// What this node brought to the other.
    pub there: MergeReport,
    /// Frame bytes sent both ways.
    pub wire_bytes: u64,
}

impl Node {
    /// Syncs `hub` with another node's store, in process, through two sync engines (both lanes:
    /// for tools and tests; the network node decides lanes from the roll). Both nodes must hold
    /// the hub. Records a merge report on each side that took in ops.
    pub fn sync_with(&self, other: &Node, hub: &HubId) -> Result<Synced, NodeError> {
        let mut here = self.replica(hub)?;
        let mut there = other.replica(hub)?;
        let (ids_here, ids_there): (HashSet<OpId>, HashSet<OpId>) = (
            here.op_ids().into_iter().collect(),
            there.op_ids().into_iter().collect(),
        );
        let (before_here, before_there) =
            (crate::merge::before(&here), crate::merge::before(&there));
        let mut store_here = NodeOps::new(self, *hub)?;
        let mut store_there = NodeOps::new(other, *hub)?;
        let config = Config {
            max_send_bytes_per_window: usize::MAX,
            max_receive_bytes_per_window: usize::MAX,
            ..Config::default()
        };
        let (mut a, mut b) = (Engine::new(config), Engine::new(config));
        let sync = |e: moot_sync::SyncError| NodeError::Sync(e.to_string());
        a.connect(0, PeerId(2), Role::Dialer, Lanes::ALL)
            .map_err(sync_engine)?;
        b.connect(0, PeerId(1), Role::Listener, Lanes::ALL)
            .map_err(sync_engine)?;
        loop {
            let mut moved = false;
            while let Some(t) = a.poll_transmit(0, &here, &store_here).map_err(sync)? {
                b.handle_frame(0, PeerId(1), &t.frame, &mut there, &mut store_there)
                    .map_err(sync)?;
                moved = true;
            }
            while let Some(t) = b.poll_transmit(0, &there, &store_there).map_err(sync)? {
                a.handle_frame(0, PeerId(2), &t.frame, &mut here, &mut store_here)
                    .map_err(sync)?;
                moved = true;
            }
            for engine in [&mut a, &mut b] {
                while let Some(event) = engine.poll_event() {
                    if let Event::Misbehaved { reason, .. } = event {
                        return Err(NodeError::Sync(format!("the peer misbehaved: {reason:?}")));
                    }
                }
            }
            if !moved {
                break;
            }
        }
        let new_here: HashSet<OpId> = ids_there.difference(&ids_here).copied().collect();
        let new_there: HashSet<OpId> = ids_here.difference(&ids_there).copied().collect();
        let report_here = crate::merge::report(
            "in-process sync".into(),
            hub,
            &mut here,
            &before_here,
            &ids_there,
            &new_here,
        );
        let report_there = crate::merge::report(
            "in-process sync".into(),
            hub,
            &mut there,
            &before_there,
            &ids_here,
            &new_there,
        );
        for (node, replica, report) in [
            (self, &mut here, &report_here),
            (other, &mut there, &report_there),
        ] {
            if report.new_ops > 0 {
                node.refresh_view(hub, replica)?;
                node.record_merge(hub, report)?;
            }
        }
        let wire_bytes = a.stats().bytes_sent + b.stats().bytes_sent;
        Ok(Synced {
            here: report_here,
            there: report_there,
            wire_bytes,
        })
    }
}

fn sync_engine(e: moot_sync::EngineError) -> NodeError {
    NodeError::Sync(e.to_string())
}
