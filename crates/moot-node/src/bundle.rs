//! Bundles on a node: exporting a hub's ops to a file, and importing one — validated exactly as
//! ops from a peer, all or nothing (`moot-bundle` is the file format).
//!
//! Import reads the whole file and checks its digest before any op is used (a cut-off or
//! altered file changes nothing), then validates every op in the hub's replica and stores them
//! in one transaction, committed only if no op is refused and none is left waiting for a
//! dependency. Ops already held are duplicates: importing a bundle twice changes nothing. A
//! bundle of a hub this node does not hold yet brings the hub with it (its genesis names it).

use std::io::{BufReader, BufWriter};
use std::path::Path;

use moot_bundle::{Header, Lanes};
use moot_crypto::HubId;
use moot_state::{Body, Lane, Limits, Replica, Retain};
use serde::{Deserialize, Serialize};

use crate::{HubRecord, LOAD_BATCH, Node, NodeError, REFUSED_ON_UPGRADE, clean_text};

/// How every bundle starts.
pub use moot_bundle::MAGIC;

/// Most ops one bundle may carry (a hub of a million members writes fewer between meetings).
pub const MAX_BUNDLE_OPS: usize = 10_000_000;

/// What an export wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exported {
    /// The hub.
    pub hub_id: String,
    /// `public` or `public+members`.
    pub lanes: String,
    /// Ops written.
    pub ops: u64,
    /// File size.
    pub bytes: u64,
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Imported {
    /// The hub.
    pub hub_id: String,
    /// Ops in the bundle.
    pub ops: u64,
    /// Ops this node did not hold, now stored.
    pub new_ops: u64,
    /// True if the bundle brought a hub this node did not hold.
    pub new_hub: bool,
    /// What each side brought.
    pub merge: crate::merge::MergeReport,
}

fn bundle_error(path: &Path, e: moot_bundle::BundleError) -> NodeError {
    match e {
        moot_bundle::BundleError::Io(source) => NodeError::File {
            path: path.to_path_buf(),
            source,
        },
        other => NodeError::BadBundle(other.to_string()),
    }
}

impl Node {
    /// Writes `hub`'s ops of `lanes` (the members lane needs the public one: `ALL`) to `path`,
    /// in acceptance order.
    pub fn export_bundle(
        &self,
        hub: &HubId,
        lanes: Lanes,
        path: &Path,
    ) -> Result<Exported, NodeError> {
        let store = self.store()?;
        // Readable by its owner only (a members-lane bundle holds what the hub keeps from
        // strangers), as the data directory's files are; written beside `path` and renamed over
        // it once whole, so an export cut short leaves the bundle that was there, never a part.
        let file_error = |source: std::io::Error| NodeError::File {
            path: path.to_path_buf(),
            source,
        };
        let (ops, bytes) = crate::dir::replace_private(path, file_error, |file| {
            let header = Header { hub: hub.0, lanes };
            let mut writer = moot_bundle::Writer::new(BufWriter::new(&mut *file), &header)
                .map_err(|e| bundle_error(path, e))?;
            let mut position = 0;
            loop {
                let batch = store.load_from(hub, position, LOAD_BATCH)?;
                let Some((last, _, _)) = batch.last() else {
                    break;
                };
                position = last + 1;
                for (_, op, verdict) in batch {
                    if verdict == REFUSED_ON_UPGRADE || !lanes.contains(op.lane()) {
                        continue;
                    }
                    writer.op(op.bytes()).map_err(|e| bundle_error(path, e))?;
                }
            }
            let ops = writer.count();
            let bytes = writer.finished_size();
            let out = writer.finish().map_err(|e| bundle_error(path, e))?;
            out.into_inner().map_err(|e| file_error(e.into_error()))?;
            Ok::<_, NodeError>((ops, bytes))
        })?;
        Ok(Exported {
            hub_id: hub.to_string(),
            lanes: lanes.as_str().to_string(),
            ops,
            bytes,
        })
    }

    /// Imports a bundle: all or nothing. `progress` hears (ops validated, ops in the bundle).
    pub fn import_bundle(
        &self,
        path: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Imported, NodeError> {
        self.import_bundle_as(path, path, progress)
    }

    /// [`Node::import_bundle`] of the bundle opened at `path`, named `shown` in the merge report
    /// and in errors (a running node opens a file its client passed through a descriptor of
    /// its own, and names it as the client did).
    pub fn import_bundle_as(
        &self,
        path: &Path,
        shown: &Path,
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Imported, NodeError> {
        let file = std::fs::File::open(path).map_err(|source| NodeError::File {
            path: shown.to_path_buf(),
            source,
        })?;
        let (header, ops) = moot_bundle::read_all(BufReader::new(file), MAX_BUNDLE_OPS)
            .map_err(|e| bundle_error(shown, e))?;
        let hub = HubId(header.hub);
        let known = self.store()?.hubs()?.iter().any(|(h, _)| *h == hub);
        let (mut replica, new_hub) = if known {
            (self.replica(&hub)?, None)
        } else {
            // A hub this node does not hold: its genesis (the bundle's first op) names it.
            let name = ops
                .first()
                .and_then(|bytes| moot_crypto::SignedOp::decode(bytes).ok())
                .and_then(|op| match Body::decode(op.kind(), op.body()) {
                    Ok(Body::Found(found)) => Some(found.name),
                    _ => None,
                })
                .ok_or_else(|| {
                    NodeError::BadBundle(
                        "the bundle is of a hub this node does not hold, and does not start \
                         with its genesis"
                            .into(),
                    )
                })?;
            let record = HubRecord {
                name: clean_text("hub name", &name)?,
            };
            let bytes =
                postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
            let replica = Replica::new(
                hub,
                Limits {
                    retain: Retain::IndexOnly,
                    ..Limits::default()
                },
            );
            (replica, Some(bytes))
        };
        let total = ops.len() as u64;
        let incoming: std::collections::HashSet<moot_crypto::OpId> = ops
            .iter()
            .map(|b| moot_crypto::op::id_of_bytes(b))
            .collect();
        let new: std::collections::HashSet<moot_crypto::OpId> = incoming
            .iter()
            .filter(|id| !replica.holds(id))
            .copied()
            .collect();
        let before = crate::merge::before(&replica);
        let stored = self
            .take_in(
                &hub,
                &mut replica,
                &ops,
                Some(new_hub.clone()),
                &mut |done| progress(done as u64, total),
            )
            .map_err(|e| match e {
                NodeError::Refused(reason) => NodeError::BadBundle(format!(
                    "an op in it is refused ({reason}); nothing was imported"
                )),
                other => other,
            })?
            .ok_or_else(|| NodeError::BadBundle("import aborted; nothing was imported".into()))?;
        let merge = crate::merge::report(
            format!("bundle {}", shown.display()),
            &hub,
            &mut replica,
            &before,
            &incoming,
            &new,
        );
        if stored > 0 {
            self.record_merge(&hub, &merge)?;
        }
        Ok(Imported {
            hub_id: hub.to_string(),
            ops: total,
            new_ops: stored,
            new_hub: new_hub.is_some(),
            merge,
        })
    }
}

/// The lanes of `--lane`: `public`, or everything (`members` needs the public lane too).
pub fn lanes_of(lane: Option<Lane>) -> Lanes {
    match lane {
        Some(Lane::Public) => Lanes::PUBLIC,
        _ => Lanes::ALL,
    }
}

/// A poll's results recomputed from a bundle alone, with no data directory: every op's
/// signature checked and every op validated in a fresh replica, then the poll counted.
#[derive(Debug, Clone)]
pub struct BundleCount {
    /// The hub.
    pub hub: HubId,
    /// Ops in the bundle.
    pub ops: u64,
    /// Ops the rules accepted (or kept unjudged: kinds of a newer version).
    pub kept: u64,
    /// Ops refused, with the first reason.
    pub refused: Vec<(moot_crypto::OpId, String)>,
    /// The results.
    pub results: crate::polls::PollResults,
}

/// Recomputes `poll`'s results from the bundle at `path` alone.
pub fn count_from_bundle(path: &Path, poll: &moot_crypto::OpId) -> Result<BundleCount, NodeError> {
    let file = std::fs::File::open(path).map_err(|source| NodeError::File {
        path: path.to_path_buf(),
        source,
    })?;
    let (header, ops) = moot_bundle::read_all(BufReader::new(file), MAX_BUNDLE_OPS)
        .map_err(|e| bundle_error(path, e))?;
    let hub = HubId(header.hub);
    let mut replica = Replica::new(
        hub,
        Limits {
            retain: Retain::IndexOnly,
            ..Limits::default()
        },
    );
    let mut kept = 0u64;
    let mut refused = Vec::new();
    replica.insert_batch_runs(moot_state::Source::DEFAULT, &ops, &mut |run| {
        for insertion in run {
            match insertion.outcome {
                moot_state::Outcome::Rejected(r) => {
                    if let Some(op) = r.op {
                        refused.push((op, r.reason.to_string()));
                    }
                }
                ref outcome if outcome.kept().is_some() => kept += 1,
                _ => {}
            }
        }
        true
    });
    let count = match replica.count_poll(poll) {
        Some(Ok(count)) => count,
        Some(Err(e)) => {
            return Err(NodeError::BadBundle(format!(
                "the poll cannot be counted: {e}"
            )));
        }
        None => return Err(NodeError::NoSuchPoll(poll.to_string())),
    };
    Ok(BundleCount {
        hub,
        ops: ops.len() as u64,
        kept,
        refused,
        results: crate::polls::results_view(ops.len() as u64, &count),
    })
}
