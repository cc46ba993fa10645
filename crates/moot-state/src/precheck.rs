//! Checking a batch of ops before its turn: while one frame of ops is validated and stored, the
//! next one's signatures are checked on a small pool of threads, so that the cores are not left
//! idle at the end of each frame (the validation of its last chunk and the store's commit run
//! on one thread).
//!
//! [`Precheck::start`] hands a batch's chunks to the pool (one job per [`BATCH`] ops) and
//! returns at once; [`Precheck::chunks`] gives the [`CheckedChunk`]s in order, each as soon as
//! it is ready, for [`Replica::insert_checked_runs`](crate::replica::Replica::insert_checked_runs).
//! The result is exactly [`check_chunk`]'s: the pool changes when the work is done, never what
//! it finds. A chunk whose job did not finish (its thread failed) is checked again by the
//! caller.
//!
//! Bounded: at most [`MAX_PRECHECKS`] batches are being checked or wait to be validated in the
//! whole process. Beyond that `start` declines (`None`), and the batch is checked when its turn
//! comes, as without the pool: a peer sending frames faster than they are handled gains nothing
//! from it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use moot_crypto::HubId;
use moot_crypto::op::BATCH;

use crate::replica::{CheckedChunk, check_chunk};

/// Batches checked ahead at once, in the whole process.
pub const MAX_PRECHECKS: usize = 2;

/// Keys each pool thread keeps parsed across jobs (with their curve points).
const KEPT_KEYS: usize = 4_096;

/// Batches smaller than this are not worth a trip through the pool: checked when handled.
pub const MIN_PRECHECK_OPS: usize = 64;

type Job = Box<dyn FnOnce(&mut moot_crypto::ParsedKeys) + Send>;

struct Pool {
    jobs: Mutex<mpsc::Sender<Job>>,
}

static POOL: OnceLock<Option<Pool>> = OnceLock::new();
static IN_USE: AtomicUsize = AtomicUsize::new(0);

/// The pool, started on first use: one thread per core (at most 8). `None` if no thread could
/// be started.
fn pool() -> Option<&'static Pool> {
    POOL.get_or_init(|| {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 8);
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let mut started = 0;
        for i in 0..workers {
            let receiver = Arc::clone(&receiver);
            let spawned = std::thread::Builder::new()
                .name(format!("moot-check-{i}"))
                .spawn(move || {
                    // Kept while there is work; let go before waiting (for a job, or for
                    // the queue another thread waits on), with the points this thread
                    // remembers, so that an idle node holds no keys here.
                    let mut keys: Option<moot_crypto::ParsedKeys> = None;
                    loop {
                        let ready = match receiver.try_lock() {
                            Ok(jobs) => jobs.try_recv().ok(),
                            Err(_) => None,
                        };
                        let job = match ready {
                            Some(job) => job,
                            None => {
                                keys = None;
                                moot_crypto::forget_recent_points();
                                // Nothing panics while the lock is held: a poisoned lock is
                                // still good.
                                let jobs = match receiver.lock() {
                                    Ok(jobs) => jobs,
                                    Err(poisoned) => poisoned.into_inner(),
                                };
                                match jobs.recv() {
                                    Ok(job) => job,
                                    Err(_) => break,
                                }
                            }
                        };
                        let keys =
                            keys.get_or_insert_with(|| moot_crypto::ParsedKeys::new(KEPT_KEYS));
                        // A job that panics drops its result's sender: the caller sees the
                        // chunk missing and checks it itself. The thread goes on.
                        let _ =
                            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(keys)));
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        (started > 0).then(|| Pool {
            jobs: Mutex::new(sender),
        })
    })
    .as_ref()
}

/// A place among the [`MAX_PRECHECKS`], given back when the batch and every job of it are
/// gone (a batch dropped early leaves its jobs queued: they end at once, but hold the place
/// until then, so the queue stays bounded).
struct Slot;

impl Slot {
    fn take() -> Option<Slot> {
        IN_USE
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_PRECHECKS).then_some(n + 1)
            })
            .ok()
            .map(|_| Slot)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        IN_USE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a batch's jobs share with it.
struct Shared {
    /// Set when the batch is dropped: its jobs not yet started do nothing.
    dropped: AtomicBool,
    _slot: Slot,
}

/// A batch of ops whose checks run on the pool.
pub struct Precheck<B> {
    hub: HubId,
    ops: Arc<[B]>,
    results: mpsc::Receiver<(usize, CheckedChunk)>,
    shared: Arc<Shared>,
}

impl<B> Drop for Precheck<B> {
    fn drop(&mut self) {
        self.shared.dropped.store(true, Ordering::Release);
    }
}

impl<B> std::fmt::Debug for Precheck<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Precheck({} ops)", self.ops.len())
    }
}

impl<B: AsRef<[u8]> + Send + Sync + 'static> Precheck<B> {
    /// Starts checking `ops` (for `hub`) on the pool; `None` if [`MAX_PRECHECKS`] batches are
    /// in hand already, the batch is smaller than [`MIN_PRECHECK_OPS`], or the pool could not
    /// start.
    pub fn start(hub: HubId, ops: Arc<[B]>) -> Option<Precheck<B>> {
        Self::start_with(hub, ops, None)
    }

    /// [`Precheck::start`], taking the points of the devices in `points` (the replica's that
    /// will validate the ops: [`crate::Replica::device_points`]) instead of decompressing their
    /// keys.
    pub fn start_with(
        hub: HubId,
        ops: Arc<[B]>,
        points: Option<crate::DevicePoints>,
    ) -> Option<Precheck<B>> {
        if ops.len() < MIN_PRECHECK_OPS {
            return None;
        }
        let shared = Arc::new(Shared {
            dropped: AtomicBool::new(false),
            _slot: Slot::take()?,
        });
        let pool = pool()?;
        let (sender, results) = mpsc::channel();
        {
            let jobs = match pool.jobs.lock() {
                Ok(jobs) => jobs,
                Err(poisoned) => poisoned.into_inner(),
            };
            for index in 0..ops.len().div_ceil(BATCH) {
                let (ops, sender) = (Arc::clone(&ops), sender.clone());
                let shared = Arc::clone(&shared);
                let points = points.as_ref().map(|points| Arc::clone(&points.0));
                let job: Job = Box::new(move |keys| {
                    if shared.dropped.load(Ordering::Acquire) {
                        return;
                    }
                    keys.consult(points);
                    let start = index * BATCH;
                    let end = (start + BATCH).min(ops.len());
                    let checked = check_chunk(&hub, &ops[start..end], keys);
                    // The place is given back before the result goes: once a batch has taken
                    // in all its chunks, none of its jobs holds it.
                    drop(shared);
                    // The batch may have been dropped meanwhile: nothing to do then.
                    let _ = sender.send((index, checked));
                });
                if jobs.send(job).is_err() {
                    // The pool is gone: the chunks not sent are checked by the caller.
                    break;
                }
            }
        }
        Some(Precheck {
            hub,
            ops,
            results,
            shared,
        })
    }

    /// The ops, as given.
    pub fn ops(&self) -> &[B] {
        &self.ops
    }

    /// The hub they are checked for.
    pub fn hub(&self) -> HubId {
        self.hub
    }

    /// The checked chunks in order, each when it is ready (a chunk whose job failed is
    /// checked here).
    pub fn chunks(self) -> impl Iterator<Item = CheckedChunk> {
        let count = self.ops.len().div_ceil(BATCH);
        let mut ready: BTreeMap<usize, CheckedChunk> = BTreeMap::new();
        let mut closed = false;
        let mut keys: Option<moot_crypto::ParsedKeys> = None;
        (0..count).map(move |index| {
            while !closed && !ready.contains_key(&index) {
                match self.results.recv() {
                    Ok((at, chunk)) => {
                        ready.insert(at, chunk);
                    }
                    // Every job has ended: what is missing is checked below.
                    Err(_) => closed = true,
                }
            }
            ready.remove(&index).unwrap_or_else(|| {
                let start = index * BATCH;
                let end = (start + BATCH).min(self.ops.len());
                let keys = keys.get_or_insert_with(|| moot_crypto::ParsedKeys::new(KEPT_KEYS));
                check_chunk(&self.hub, &self.ops[start..end], keys)
            })
        })
    }
}
