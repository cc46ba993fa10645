//! The sync engine: a deterministic state machine per hub, one entry per connected peer.
//!
//! # Reconciliation
//! On [`Engine::connect`] each side sends its chain heads (every branch end of every
//! (device, lane) chain, in the lanes the peer may receive). When a peer's full set of heads
//! has arrived, the engine knows a *view* of what the peer holds: a head and its chain
//! ancestors. It then walks its own store in position order (a causal order) from a per-peer
//! cursor and sends, in bounded batches, every op in the peer's lanes that the view does not
//! cover. The cursor never stops at the end of the store: an op stored later (written here, or
//! received from another peer) is past the cursor, so it is pushed to every connected peer on
//! the next [`Engine::poll_transmit`] — gossip and the initial stream are one mechanism, and
//! causal order holds for both. The view grows with every op sent to the peer and every op
//! received from it, so nothing is echoed back.
//!
//! Every op received goes through the replica's batch insertion ([`Replica::insert_batch_runs`],
//! or [`Replica::insert_checked_runs`] for a frame checked ahead) with the peer's [`Source`],
//! exactly as a local op; what the replica keeps is handed to the [`OpStore`]. An op whose
//! dependencies are missing waits in the replica's pending pool (bounded per source, dropped by
//! [`Engine::disconnect`]), and the engine asks the peer for the missing ids
//! ([`Message::Want`]). Lost messages, rejected-for-now ops and restarts are repaired by the
//! periodic resync: heads are exchanged again every [`Config::resync_interval_ms`], and the
//! stream restarts from the beginning of the store if the peer's new heads do not cover all of
//! ours. A peer acknowledges a frame when it takes it up, not once it has stored it, so a
//! one-shot sync ends on the peer's heads instead: [`Engine::confirm`] asks for them, and
//! [`Engine::holds_all`] says whether they show the peer holding everything this node holds.
//!
//! # Bounds
//! Outgoing frames are built lazily, when the driver asks for one, so the per-peer outgoing
//! queue is a cursor plus a few control frames ([`Config::max_control_frames`]); ids asked for,
//! ids to serve, heads remembered and events are capped (see [`Config`]); sending is paced per
//! peer ([`Config::max_send_bytes_per_window`]) and a peer that sends more than
//! [`Config::max_receive_bytes_per_window`] in a window has the excess dropped and is reported.
//!
//! # Determinism
//! No clock (time is the `now_ms` argument), no randomness, and only ordered maps or, for a
//! peer's view, a table listed in the order its chains were first seen and only looked up by
//! hash (`view`): the same inputs give the same frames and events. The one thread, scoped to
//! a frame of ops, stores what validation kept while the rest is validated; it decides nothing. Nor does the check
//! pool a driver may hand frames to first ([`Incoming::start`]): checking a signature is a
//! pure function of the hub and the bytes, so only when the work is done changes.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use moot_crypto::{DecodeError, Lane, OpId, PublicKey, SignedOp};
use moot_state::precheck::Precheck;
use moot_state::{Insertion, Outcome, Reason, Replica, Source, Verdict};

use crate::store::{OpStore, StoreError};
use crate::view::{Chain, View};
use crate::wire::{
    self, Bounded, Head, MAX_HEADS_PER_MESSAGE, MAX_IDS_PER_MESSAGE, MAX_MESSAGE_BYTES,
    MAX_OPS_PER_MESSAGE, Message, OPS_FRAME_OVERHEAD, OpBytes, WireError,
};

/// A frame read off the wire and decoded, whose ops' signatures may be being checked already
/// on the check pool ([`moot_state::precheck`]): a driver makes one as soon as a frame has
/// arrived ([`Incoming::start`]) and hands it to [`Engine::handle_incoming`] when its turn
/// comes, so that the checks overlap the handling of the frames before it.
#[derive(Debug)]
pub struct Incoming {
    len: usize,
    content: Content,
}

#[derive(Debug)]
enum Content {
    Message(Result<Message, WireError>),
    Ops {
        ops: Arc<[OpBytes]>,
        precheck: Option<Precheck<OpBytes>>,
    },
}

impl Incoming {
    /// Decodes `frame`; if it carries ops of `hub`, starts checking them on the pool (when the
    /// pool has room: otherwise they are checked when handled, as by [`Engine::handle_frame`]).
    pub fn start(hub: moot_crypto::HubId, frame: &[u8]) -> Incoming {
        Self::start_with(hub, frame, None)
    }

    /// [`Incoming::start`], the checks taking the points of the devices in `points` (of the
    /// replica that will handle the frame) instead of decompressing their keys.
    pub fn start_with(
        hub: moot_crypto::HubId,
        frame: &[u8],
        points: Option<&moot_state::DevicePoints>,
    ) -> Incoming {
        let content = match wire::decode(frame) {
            Ok(Message::Ops { ops }) => {
                let ops: Arc<[OpBytes]> = Arc::from(ops.into_vec());
                let precheck = Precheck::start_with(hub, Arc::clone(&ops), points.cloned());
                Content::Ops { ops, precheck }
            }
            other => Content::Message(other),
        };
        Incoming {
            len: frame.len(),
            content,
        }
    }

    /// The frame's length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True if its ops are being checked on the pool (false for a frame of no ops, or when the
    /// pool had no room: they are checked when handled).
    pub fn checked_ahead(&self) -> bool {
        matches!(
            self.content,
            Content::Ops {
                precheck: Some(_),
                ..
            }
        )
    }
}

/// This node's chain heads (every op no op held continues), from the replica's index: the
/// store holds the same ops, but reading a head from it costs a few lookups and a hash each
/// (10,000 chains: tens of milliseconds, at every heads round).
fn own_heads(replica: &Replica) -> Vec<Head> {
    replica
        .chain_heads()
        .into_iter()
        .map(|(device, lane, seq, id)| Head {
            device: device.to_bytes(),
            lane,
            seq,
            id,
        })
        .collect()
}

/// A connected peer, numbered by the node. Its ops are inserted into the replica as
/// `Source(peer.0)`, so `PeerId(0)` (the replica's default source, for local ops) is reserved.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PeerId(pub u64);

impl PeerId {
    /// The replica source of this peer's ops.
    pub fn source(self) -> Source {
        Source(self.0)
    }
}

/// Which side of a connection this engine is. The dialer sends its heads; the listener
/// answers with its heads for the chains the dialer named only (the dialer has nothing to send
/// in the others, and learns of them from the ops streamed to it). So a new, empty node that
/// dials costs its peer no heads at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// This side opened the connection: it starts each round of heads (at connect and every
    /// [`Config::resync_interval_ms`]).
    Dialer,
    /// This side accepted it: it answers each complete set of heads.
    Listener,
}

/// The lanes a peer may receive (the node decides from the roll: members get both, guests
/// and unknown peers the public lane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Lanes(u8);

impl Lanes {
    /// No lane: the peer is sent nothing (heads included).
    pub const NONE: Lanes = Lanes(0);
    /// The public lane only (guests, unknown peers of a public hub).
    pub const PUBLIC: Lanes = Lanes(1);
    /// Both lanes (members).
    pub const ALL: Lanes = Lanes(3);

    fn bit(lane: Lane) -> u8 {
        match lane {
            Lane::Public => 1,
            Lane::Members => 2,
        }
    }
    /// True if `lane` is included.
    pub fn contains(self, lane: Lane) -> bool {
        self.0 & Lanes::bit(lane) != 0
    }
    /// These lanes and `lane`.
    pub fn with(self, lane: Lane) -> Lanes {
        Lanes(self.0 | Lanes::bit(lane))
    }
    /// True if every lane of `other` is included.
    pub fn covers(self, other: Lanes) -> bool {
        self.0 & other.0 == other.0
    }
    /// The lanes in both.
    pub fn and(self, other: Lanes) -> Lanes {
        Lanes(self.0 & other.0)
    }
    /// The lanes in either.
    pub fn or(self, other: Lanes) -> Lanes {
        Lanes(self.0 | other.0)
    }
    /// These lanes without `lane`.
    pub fn without(self, lane: Lane) -> Lanes {
        Lanes(self.0 & !Lanes::bit(lane))
    }
}

/// Bounds and timings. Plain data, built by the caller; [`Config::default`] documents the
/// values a node uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Heads are sent again to each peer this often, and the ids asked for are forgotten (so a
    /// lost request is made again). Default 30 s.
    pub resync_interval_ms: u64,
    /// A dialer whose last resync showed the peer holding everything, and whose session has
    /// been quiet since (no op either way, no lane changed, nothing asked for), doubles its
    /// interval up to this; anything of that kind brings it back to
    /// [`Config::resync_interval_ms`] after the next (due at most that long after it
    /// happened). A resync of a quiet session finds nothing to do: on a hub of W's size each
    /// costs ~1.3 MB of heads each way. Default 8 min.
    pub max_resync_interval_ms: u64,
    /// A dialer that has sent nothing to a peer for this long sends it an empty `Want` (which
    /// any version takes as asking for nothing), so that the connection is not closed as idle
    /// between two resyncs of a quiet session. Default 60 s (moot-net closes a connection with
    /// no stream for 120 s, as earlier versions do).
    pub keepalive_ms: u64,
    /// The window over which sending and receiving are paced. Default 1 s.
    pub rate_window_ms: u64,
    /// Frame bytes sent to one peer per window, at most (a frame starts only while the count
    /// is below it, so one frame may overshoot by up to [`MAX_MESSAGE_BYTES`]). Default 64 MiB:
    /// a fresh node takes in ~20 MB of ops a second (signatures, validation, storage), and
    /// one frame in flight per peer already keeps a sender from running ahead of its
    /// receiver; 4 MiB capped a 42 MB sync at over 10 s.
    pub max_send_bytes_per_window: usize,
    /// Frame bytes accepted from one peer per window; beyond it, frames are dropped and the
    /// peer is reported ([`Misbehaviour::Flood`]) once per window. Must exceed the peers'
    /// send limit plus one frame. Default 128 MiB.
    pub max_receive_bytes_per_window: usize,
    /// Ops per frame sent, at most (≤ [`MAX_OPS_PER_MESSAGE`]). Default 2048.
    pub max_ops_per_frame: usize,
    /// Ids asked of one peer and not yet received, at most. Default 4096.
    pub max_wanted: usize,
    /// Ids one peer asked for and not yet served, at most (more are dropped). Default 4096.
    pub max_requested: usize,
    /// Heads remembered per peer (its announced heads plus ops exchanged since), at most;
    /// beyond it the engine forgets coverage (it may send an op twice, never too few).
    /// Default 65,536.
    pub max_view_heads: usize,
    /// Control frames (heads parts) queued per peer, at most. Default 64.
    pub max_control_frames: usize,
    /// Heads per frame sent, at most (1 to [`MAX_HEADS_PER_MESSAGE`]; more if a set of heads
    /// would otherwise take more than `max_control_frames` frames). Default
    /// [`MAX_HEADS_PER_MESSAGE`].
    pub max_heads_per_frame: usize,
    /// Events queued, at most (more are counted in [`Stats::dropped_events`]). Default 4096.
    pub max_events: usize,
    /// Complete sets of heads taken from one peer per [`Config::resync_interval_ms`], at most,
    /// besides one answer to each set this node sent it; beyond it a set is ignored and the peer
    /// reported ([`Misbehaviour::HeadsFlood`]) once per interval. Each set costs this node a pass over its own chains, and unless the set
    /// covers them, a walk of its whole store: a few bytes of frame for seconds of work. An
    /// honest peer sends one at the start of a session and at each resync, and one more each
    /// time its lanes for this node change (a listener answers each of this node's sets).
    /// Default 16.
    pub max_heads_sets_per_interval: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            resync_interval_ms: 30_000,
            max_resync_interval_ms: 480_000,
            keepalive_ms: 60_000,
            rate_window_ms: 1_000,
            max_send_bytes_per_window: 64 * 1024 * 1024,
            max_receive_bytes_per_window: 128 * 1024 * 1024,
            max_ops_per_frame: MAX_OPS_PER_MESSAGE,
            max_wanted: 4096,
            max_requested: 4096,
            max_view_heads: 65_536,
            max_control_frames: 64,
            max_heads_per_frame: MAX_HEADS_PER_MESSAGE,
            max_events: 4096,
            max_heads_sets_per_interval: 16,
        }
    }
}

/// What a peer did wrong. The frame is dropped; the node decides whether to disconnect.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Misbehaviour {
    /// The frame is not a message (too large, unknown version, malformed, trailing bytes).
    /// An unknown version may be an incompatible node rather than a hostile one.
    Wire(WireError),
    /// An op whose signature does not verify for this hub (forged, or from another hub).
    BadSignature {
        /// The op, when it decoded far enough to have an id.
        op: Option<OpId>,
    },
    /// Bytes that are not an op.
    MalformedOp(DecodeError),
    /// More bytes than [`Config::max_receive_bytes_per_window`] within one window.
    Flood {
        /// Bytes received in the window so far.
        bytes: usize,
    },
    /// More complete sets of heads than [`Config::max_heads_sets_per_interval`] within one
    /// [`Config::resync_interval_ms`].
    HeadsFlood {
        /// Sets received in the interval so far.
        sets: usize,
    },
}

/// Something the node should know.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A peer misbehaved (see [`Misbehaviour`]); at most one per frame.
    Misbehaved {
        /// The peer.
        peer: PeerId,
        /// What it did.
        reason: Misbehaviour,
    },
    /// Ops from a peer were validated and stored (derived views may have changed).
    Stored {
        /// The peer.
        peer: PeerId,
        /// Ops stored (the peer's and any waiting ops they released).
        op_count: usize,
        /// Among them a roll op that may narrow what some peer may receive
        /// ([`may_narrow_lanes`]): the node must judge every peer's lanes again before it sends
        /// anything more, or a member removed in this frame is sent the frame's later ops.
        narrows: bool,
    },
    /// A peer presented a credential ([`Message::Present`]): the node may give it other lanes
    /// ([`Engine::set_peer_lanes`]).
    Presented {
        /// The peer.
        peer: PeerId,
        /// What it presented (at most [`wire::MAX_CREDENTIAL_BYTES`]).
        credential: Vec<u8>,
    },
}

/// A frame to send to a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The peer.
    pub peer: PeerId,
    /// The frame (at most [`MAX_MESSAGE_BYTES`]).
    pub frame: Vec<u8>,
}

/// Counters, for tests, benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Frames sent.
    pub frames_sent: u64,
    /// Frame bytes sent.
    pub bytes_sent: u64,
    /// Ops sent.
    pub ops_sent: u64,
    /// Bytes of the ops sent (their exact signed bytes).
    pub op_bytes_sent: u64,
    /// Frames received.
    pub frames_received: u64,
    /// Frame bytes received.
    pub bytes_received: u64,
    /// Ops received.
    pub ops_received: u64,
    /// Ops received that were already held, waiting or rejected.
    pub duplicates_received: u64,
    /// Ops received and rejected.
    pub rejected_received: u64,
    /// Frames dropped (over the receive budget, or not decodable).
    pub frames_dropped: u64,
    /// Events dropped because the queue was full.
    pub dropped_events: u64,
    /// Stored ops read to find what a peer lacks (the scans of the store from a cursor).
    pub ops_scanned: u64,
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// `PeerId(0)` is the replica's source for local ops.
    #[error("peer 0 is reserved for local ops")]
    ReservedPeer,
    /// The peer is not connected.
    #[error("peer {0:?} is not connected")]
    UnknownPeer(PeerId),
    /// A credential longer than [`wire::MAX_CREDENTIAL_BYTES`].
    #[error("a credential over {} bytes", wire::MAX_CREDENTIAL_BYTES)]
    CredentialTooLong,
}

/// The fields of an op the engine reasons about.
#[derive(Debug, Clone, Copy)]
struct OpRef {
    id: OpId,
    device: PublicKey,
    lane: Lane,
    seq: u64,
    prev: Option<OpId>,
}

impl OpRef {
    fn of(op: &SignedOp) -> OpRef {
        OpRef {
            id: op.id(),
            device: op.author(),
            lane: op.lane(),
            seq: op.seq(),
            prev: op.prev(),
        }
    }
}

/// Bytes counted in the current window.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    start_ms: u64,
    bytes: usize,
    reported: bool,
}

impl Window {
    /// Starts a new window if this one is over; true if it did.
    fn roll(&mut self, now_ms: u64, window_ms: u64) -> bool {
        if now_ms >= self.start_ms.saturating_add(window_ms) {
            *self = Window {
                start_ms: now_ms,
                bytes: 0,
                reported: false,
            };
            true
        } else {
            false
        }
    }
}

#[derive(Debug)]
struct Peer {
    lanes: Lanes,
    /// The peer's holdings; `None` until its first complete set of heads arrives (nothing is
    /// streamed before: the engine would send everything).
    view: Option<View>,
    /// Heads of a set still arriving.
    incoming: View,
    /// What the peer is known to hold for certain: the ops it sent in this session, kept
    /// beside the view (the peer holds an op if either covers it). A new set of heads replaces
    /// the view (ops sent to the peer may have been lost or refused, and the heads say), but
    /// not this: heads made while ops were on their way would forget them, and the engine
    /// would send the peer's own ops back to it. A head here that a set covers is let go (that
    /// set and every later one show it), so a chain the peer sent is remembered once, not in
    /// both.
    confirmed: View,
    /// The ops the stream handed out to the peer since its last complete set of heads arrived
    /// (the latest [`MAX_SENT_REMEMBERED`]). They are on their way (frames in flight or queued,
    /// in order, on one connection) or held already: a set of heads made before they arrived
    /// would send them all again (it did: every queued and in-flight frame, each time the
    /// fresh node's second set of heads arrived mid-stream).
    sent: VecDeque<OpId>,
    /// What `sent` held when the last complete set of heads arrived: counted as held, by exact
    /// id, until the next set, which forgets them — so an op the peer refused for now is sent
    /// again at the resync after next.
    in_transit: BTreeSet<OpId>,
    /// Next store position to consider streaming.
    cursor: u64,
    /// Store positions below this have been walked in this session, in every lane the peer
    /// had then: in a lane its heads do not speak for, ops there are not sent again.
    walked: u64,
    /// Store positions `[start, end)` that hold only ops this peer sent in this session
    /// (ascending, the latest [`MAX_THEIRS_RANGES`]): a scan from an earlier cursor (a lane
    /// added, heads that do not cover ours) skips them without reading them. A fresh node
    /// receiving a hub from one peer has one range: all of it.
    theirs: VecDeque<(u64, u64)>,
    role: Role,
    /// A set of heads is to be sent: all chains (`Some(None)`), or only these (a listener's
    /// answer).
    heads_due: Option<Option<BTreeSet<Chain>>>,
    last_heads_ms: u64,
    /// The dialer's resync interval now: [`Config::resync_interval_ms`], doubled after each
    /// quiet one up to [`Config::max_resync_interval_ms`].
    resync_ms: u64,
    /// When something first happened in the session since the last resync (ops either way, a
    /// lane changed, heads that did not cover this node's): the next resync comes at most
    /// [`Config::resync_interval_ms`] after it, and the interval after is the shortest.
    busy: Option<u64>,
    /// When a frame was last sent to the peer, or a keepalive last fell due (for
    /// [`Config::keepalive_ms`]).
    last_sent_ms: u64,
    /// An empty `Want` is to be sent when there is nothing else ([`Config::keepalive_ms`]).
    keepalive_due: bool,
    /// This node's credential, to be sent before anything else ([`Engine::present`]).
    present: Option<Vec<u8>>,
    control: VecDeque<Vec<u8>>,
    /// Ids to ask the peer for.
    want_queue: VecDeque<OpId>,
    /// Ids asked for and not yet received.
    wanted: BTreeSet<OpId>,
    /// Ids the peer asked for.
    requested: VecDeque<OpId>,
    send: Window,
    receive: Window,
    /// Complete sets of heads taken in the current resync interval (`bytes` counts sets).
    /// Kept when a second connection restarts the session: a restart must not buy a fresh
    /// allowance.
    heads_sets: Window,
    /// Whole sets of heads this node sent the peer in that interval (a dialer's, or a
    /// listener's asking for confirmation): the peer answers each, and the answers are not
    /// held against it.
    heads_sent: usize,
    /// A whole set of this node's heads went out and the peer's next complete set has not
    /// come yet: a dialer that receives a complete set while not waiting takes it for a
    /// listener's request ([`Engine::confirm`]) and answers with its own.
    awaiting: bool,
    /// The store's end when the peer's last complete set of heads arrived, the lanes of the
    /// peer's in which that set covered every head of this node's (the peer then held, stored,
    /// everything this node held in them), and the lanes the set named chains of
    /// ([`Engine::holds_all`]).
    covered_at: Option<Covered>,
    /// When a confirmation last asked for a set ([`Engine::confirm`]).
    last_confirm_ms: Option<u64>,
}

/// What a peer's complete set of heads showed ([`Peer::covered_at`]).
#[derive(Debug, Clone, Copy)]
struct Covered {
    /// The store's end when it arrived.
    at: u64,
    /// The peer's lanes in which it covered every head of this node's.
    lanes: Lanes,
    /// The lanes it named chains of: lanes the peer gives this node.
    named: Lanes,
    /// The peer's lanes its heads spoke for (this node's own lanes, [`Engine::set_own_lanes`],
    /// and `named`): those judged, of which `lanes` are covered.
    judged: Lanes,
}

/// The least time between two confirmations asked of one peer ([`Engine::confirm`]): at most
/// 15 a 30 s resync interval, within the 16 complete sets of heads a peer takes in one.
pub const CONFIRM_INTERVAL_MS: u64 = 2_000;

/// Store reads per scan step.
const SCAN_CHUNK: usize = 256;
/// Ranges of a peer's own ops remembered per peer (`Peer::theirs`); beyond it the oldest are
/// forgotten (a scan then reads them, and finds them held).
const MAX_THEIRS_RANGES: usize = 64;
/// Ops handed out to one peer remembered as on their way (`Peer::sent`): a few frames' worth,
/// at most 512 KiB of ids per peer. Beyond it the oldest are forgotten (and may be sent twice,
/// never too few).
const MAX_SENT_REMEMBERED: usize = 16_384;
/// Parsed author keys kept, at most.
const MAX_CACHED_KEYS: usize = 16_384;
/// Heads of one (device, lane) chain that this node does not hold, remembered per view from a
/// peer's heads, at most. An honest chain has one head; a forked one (an equivocation) a few
/// more, which this node holds once it has synced. Without a bound a peer could pile 65,536
/// made-up heads into one chain, and every head it named again, and every op of that chain
/// sent, would scan them all (seconds of the sync loop per frame). Past it such a head is
/// forgotten: an op may be sent twice, never too few. Heads this node holds are always kept
/// (they are ops it stored: a fork of 65 branches must not make every resync a full rescan).
const MAX_HEADS_PER_CHAIN: usize = 64;
/// Chain ids remembered for forked-chain ancestry checks, at most.
const MAX_BRANCH_IDS: usize = 1 << 20;

/// The sans-IO sync engine for one hub. See the module docs for the protocol, and
/// `docs/PROTOCOL.md` for the wire.
///
/// ```
/// use moot_sync::{Engine, Config, Lanes, MemoryStore, PeerId, Role};
/// use moot_state::{Limits, Replica, sample};
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let (hub, ops) = sample::history(2, 10);
/// let (mut a, mut b) = (Replica::new(hub, Limits::default()), Replica::new(hub, Limits::default()));
/// let (mut store_a, mut store_b) = (MemoryStore::new(), MemoryStore::new());
/// use moot_sync::OpStore;
/// for insertion in a.insert_batch(&ops) {
///     let kept: Vec<_> = insertion.kept.iter().map(|(op, v)| (op.get(), *v)).collect();
///     store_a.put_kept(&kept)?;
/// }
/// let (mut ea, mut eb) = (Engine::new(Config::default()), Engine::new(Config::default()));
/// // b, new and empty, dials a.
/// ea.connect(0, PeerId(2), Role::Listener, Lanes::ALL)?;
/// eb.connect(0, PeerId(1), Role::Dialer, Lanes::ALL)?;
/// loop {
///     let mut moved = false;
///     while let Some(t) = ea.poll_transmit(0, &a, &store_a)? {
///         eb.handle_frame(0, PeerId(1), &t.frame, &mut b, &mut store_b)?;
///         moved = true;
///     }
///     while let Some(t) = eb.poll_transmit(0, &b, &store_b)? {
///         ea.handle_frame(0, PeerId(2), &t.frame, &mut a, &mut store_a)?;
///         moved = true;
///     }
///     if !moved { break; }
/// }
/// assert_eq!(a.op_ids(), b.op_ids());
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Engine {
    config: Config,
    peers: BTreeMap<PeerId, Peer>,
    events: VecDeque<Event>,
    /// The peer served last (round robin).
    last_served: Option<PeerId>,
    keys: BTreeMap<[u8; 32], PublicKey>,
    /// Ancestors (same chain) of held heads of forked chains, by head.
    branches: BTreeMap<OpId, BTreeSet<OpId>>,
    branch_ids: usize,
    stats: Stats,
    /// The lanes this node's own device may receive ([`Engine::set_own_lanes`]).
    own: Lanes,
}

/// An error from the node's store, or from a call the engine refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SyncError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The call was refused.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A frame could not be built within the wire limits (a bug: batches are sized to fit).
    #[error(transparent)]
    Wire(#[from] WireError),
}

impl Engine {
    /// An engine with no peers.
    pub fn new(config: Config) -> Engine {
        Engine {
            config,
            peers: BTreeMap::new(),
            events: VecDeque::new(),
            last_served: None,
            keys: BTreeMap::new(),
            branches: BTreeMap::new(),
            branch_ids: 0,
            stats: Stats::default(),
            own: Lanes::ALL,
        }
    }

    /// The lanes this node's own device may receive by its roll (all, until told): what a peer
    /// following the same roll gives it, and so the lanes a peer's heads speak for, besides
    /// any lane they name a chain of. A lane the engine gives a peer and the peer's heads do
    /// not speak for (a removed member's node still giving the members lane to a member's, a
    /// stranger's node holding members-lane ops from a bundle) says nothing of what the peer
    /// holds: the walk sends each of its ops once a session (and those stored later as they
    /// come), where it would otherwise send them all again at every set of heads; the peer may
    /// still ask for any by id. Widening them asks every peer for its heads again, so that a
    /// lane now spoken for is compared.
    pub fn set_own_lanes(&mut self, lanes: Lanes) {
        let widened = !self.own.covers(lanes);
        self.own = lanes;
        if !widened {
            return;
        }
        for p in self.peers.values_mut() {
            if p.role == Role::Dialer && !p.awaiting && p.heads_due.is_none() {
                p.heads_due = Some(None);
            }
        }
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters since the engine was made.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Lets go of what only speeds up a sync, for a node whose arrivals have settled: the
    /// parsed author keys, and the spare capacity of each peer's views (their tables of chains,
    /// grown by doubling while a sync brings chains in) and queues. Changes no decision: the
    /// keys are parsed again when needed.
    pub fn shed_caches(&mut self) {
        self.keys = BTreeMap::new();
        for peer in self.peers.values_mut() {
            for view in peer
                .view
                .iter_mut()
                .chain([&mut peer.incoming, &mut peer.confirmed])
            {
                view.shrink();
            }
            peer.control.shrink_to_fit();
            peer.sent.shrink_to_fit();
            peer.want_queue.shrink_to_fit();
            peer.requested.shrink_to_fit();
        }
    }

    /// Heads remembered for `peer`: in its view, and as sent by it this session (a diagnostic
    /// of the engine's memory per peer).
    pub fn remembered_heads(&self, peer: PeerId) -> Option<(usize, usize)> {
        self.peers
            .get(&peer)
            .map(|p| (p.view.as_ref().map_or(0, |v| v.len), p.confirmed.len))
    }

    /// Parsed author keys cached (a diagnostic of [`Engine::shed_caches`]).
    pub fn cached_keys(&self) -> usize {
        self.keys.len()
    }

    /// Connected peers, ascending.
    pub fn peers(&self) -> Vec<PeerId> {
        self.peers.keys().copied().collect()
    }

    /// A connection to `peer` is up, opened by `role`'s side: it may receive `lanes`. The
    /// dialer sends heads first. Connecting a connected peer starts its session afresh.
    pub fn connect(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        role: Role,
        lanes: Lanes,
    ) -> Result<(), EngineError> {
        if peer.0 == 0 {
            return Err(EngineError::ReservedPeer);
        }
        // A session restarted (a second connection) keeps its count of the peer's sets, and
        // when it last asked for one.
        let (heads_sets, heads_sent, last_confirm_ms) = match self.peers.get(&peer) {
            Some(p) => (p.heads_sets, p.heads_sent, p.last_confirm_ms),
            None => (
                Window {
                    start_ms: now_ms,
                    ..Window::default()
                },
                0,
                None,
            ),
        };
        self.peers.insert(
            peer,
            Peer {
                lanes,
                view: None,
                incoming: View::default(),
                confirmed: View::default(),
                sent: VecDeque::new(),
                in_transit: BTreeSet::new(),
                cursor: 0,
                walked: 0,
                theirs: VecDeque::new(),
                role,
                heads_due: (role == Role::Dialer).then_some(None),
                last_heads_ms: now_ms,
                resync_ms: self.config.resync_interval_ms,
                busy: Some(now_ms),
                last_sent_ms: now_ms,
                keepalive_due: false,
                present: None,
                control: VecDeque::new(),
                want_queue: VecDeque::new(),
                wanted: BTreeSet::new(),
                requested: VecDeque::new(),
                send: Window {
                    start_ms: now_ms,
                    ..Window::default()
                },
                receive: Window {
                    start_ms: now_ms,
                    ..Window::default()
                },
                heads_sets,
                heads_sent,
                awaiting: false,
                covered_at: None,
                last_confirm_ms,
            },
        );
        Ok(())
    }

    /// The connection to `peer` is gone: its session is forgotten and the ops it sent that
    /// still wait for dependencies are dropped from the replica.
    pub fn disconnect(&mut self, peer: PeerId, replica: &mut Replica) {
        self.peers.remove(&peer);
        if peer.0 != 0 {
            replica.drop_source(peer.source());
        }
    }

    /// Changes the lanes `peer` may receive. Ops of a lane taken away are never sent again
    /// (frames are built when polled); a lane added is streamed from the start of the store,
    /// and heads are sent again.
    ///
    /// When a lane is taken away, the caller drops the frames for `peer` it has queued and
    /// not yet sent (they may hold ops of that lane): the engine stops counting what they
    /// carried as on its way, and a listener answers with its heads again (the dropped frames
    /// may have held part of its answer). Ops of the remaining lanes among them are sent again
    /// once the peer's next heads show it lacks them (in a lane its heads do not speak for,
    /// only in its next session: see [`Engine::set_own_lanes`]).
    pub fn set_peer_lanes(&mut self, peer: PeerId, lanes: Lanes) -> Result<(), EngineError> {
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        if !p.lanes.covers(lanes) {
            p.cursor = 0;
            p.walked = 0;
        }
        let removed = !lanes.covers(p.lanes);
        if p.lanes != lanes {
            p.busy.get_or_insert(p.last_heads_ms);
            // What the peer's heads showed held was for the lanes then.
            p.covered_at = None;
        }
        p.lanes = lanes;
        // Queued heads may name chains of a lane taken away: a new round replaces them. A
        // listener's answer cut short is made again, whole (the dialer acts on its heads only
        // once the last part has come): for the chains the peer holds, which include those it
        // named.
        let answering = p.role == Role::Listener && (removed || !p.control.is_empty());
        p.control.clear();
        if removed {
            p.sent.clear();
        }
        if p.role == Role::Dialer {
            p.heads_due = Some(None);
        } else if answering
            && p.heads_due.is_none()
            && let Some(view) = &p.view
        {
            let held = view.chains().chain(p.confirmed.chains()).copied();
            p.heads_due = Some(Some(held.collect()));
        }
        Ok(())
    }

    /// Sends `credential` to `peer` before anything else still to be sent ([`Message::Present`]).
    pub fn present(&mut self, peer: PeerId, credential: Vec<u8>) -> Result<(), EngineError> {
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let message = Message::Present {
            credential: Bounded::new(credential).ok_or(EngineError::CredentialTooLong)?,
        };
        p.present = Some(wire::encode(&message).map_err(|_| EngineError::CredentialTooLong)?);
        Ok(())
    }

    /// True if the engine may still have frames for `peer` (so a one-shot sync must not end
    /// yet): a credential, heads or ids to send, ids it asked for to serve, or a walk of the
    /// store short of `store_end` once the peer's heads are known. False for an unknown peer.
    pub fn sending_to(&self, peer: PeerId, store_end: u64) -> bool {
        self.peers.get(&peer).is_some_and(|p| {
            p.present.is_some()
                || p.heads_due.is_some()
                || !p.control.is_empty()
                || !p.want_queue.is_empty()
                || !p.requested.is_empty()
                || (p.view.is_some() && p.lanes != Lanes::NONE && p.cursor < store_end)
        })
    }

    /// Asks `peer` to confirm what it holds: unless a set is on its way already, this node
    /// sends its whole set of heads, and the peer answers with its own (a listener answers
    /// every set; a dialer answers a set it did not ask for). A node acknowledges a frame of
    /// ops when it takes it up, before it is checked and stored, so an acknowledgement is no
    /// proof that the ops were kept: the peer's heads are. They are made after every frame
    /// before them has been handled, from the ops it stored, so once the answer has come,
    /// [`Engine::holds_all`] says whether the peer holds everything this node does; if it
    /// does not, the engine sends what it lacks, and a later confirmation can tell.
    ///
    /// For a driver with nothing on its way to the peer (no frame queued or unacknowledged,
    /// [`Engine::sending_to`] false): the ops handed out before are no longer counted as on
    /// their way, so that the answer's gaps are filled at once rather than at the set after.
    ///
    /// At most one a [`CONFIRM_INTERVAL_MS`] per peer, whoever asks (one-shot syncs run one
    /// after another included): each costs the peer one of the complete sets of heads it takes
    /// in a resync interval ([`Config::max_heads_sets_per_interval`]). Returns whether a set
    /// was asked for now.
    pub fn confirm(&mut self, now_ms: u64, peer: PeerId) -> Result<bool, EngineError> {
        let p = self
            .peers
            .get_mut(&peer)
            .ok_or(EngineError::UnknownPeer(peer))?;
        let too_soon = p
            .last_confirm_ms
            .is_some_and(|at| now_ms < at.saturating_add(CONFIRM_INTERVAL_MS));
        if p.awaiting || p.heads_due.is_some() || too_soon {
            return Ok(false);
        }
        p.sent.clear();
        p.heads_due = Some(None);
        p.last_confirm_ms = Some(now_ms);
        Ok(true)
    }

    /// True while a confirmation asked of `peer` waits for its answer (a set of heads due or
    /// sent and not yet answered): asking again meanwhile sends nothing.
    pub fn confirming(&self, peer: PeerId) -> bool {
        self.peers
            .get(&peer)
            .is_some_and(|p| p.awaiting || p.heads_due.is_some())
    }

    /// True if `peer`'s last complete set of heads showed it holding every op this node held
    /// then in the peer's lanes that its heads speak for, and every op stored here since (up to
    /// `store_end`) came from that peer in this session: the peer holds, stored, everything
    /// this node has for it that it could show. The proof a one-shot sync needs before it
    /// reports itself complete (see [`Engine::confirm`]). False for an unknown peer.
    ///
    /// The lanes its heads speak for are those it gives this node: this node's own lanes when
    /// the set arrived ([`Engine::set_own_lanes`]: the lanes this node's own device may receive
    /// by its roll) and any lane the set named a chain of. A lane the peer receives from this
    /// node and does not give it (a stranger's node holding members-lane ops from a bundle,
    /// dialing a member's) cannot be confirmed: the peer's heads say nothing of it, and the walk
    /// sends each of that lane's ops once a session. If that leaves no lane of the peer's to
    /// judge by, nothing is confirmed (false), unless the peer is given no lane at all; nor is
    /// anything while this node's own lanes are wider than when the set was judged.
    pub fn holds_all(&self, peer: PeerId, store_end: u64) -> bool {
        let Some(p) = self.peers.get(&peer) else {
            return false;
        };
        let Some(covered) = p.covered_at else {
            return false;
        };
        let judged = covered.judged;
        // Lanes this node's own device has gained since the set was judged (its device
        // certified) were not compared: the next set will be.
        if (judged == Lanes::NONE && p.lanes != Lanes::NONE)
            || !covered.lanes.covers(judged)
            || !judged.covers(p.lanes.and(self.own))
        {
            return false;
        }
        let mut at = covered.at;
        // Positions since then, in the ranges of the peer's own ops (ascending).
        for &(start, end) in &p.theirs {
            if at >= store_end {
                break;
            }
            if start <= at && at < end {
                at = end;
            }
        }
        at >= store_end
    }

    /// The lanes `peer` may receive.
    pub fn peer_lanes(&self, peer: PeerId) -> Option<Lanes> {
        self.peers.get(&peer).map(|p| p.lanes)
    }

    /// When [`Engine::handle_timeout`] should next be called, if ever.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.peers
            .values()
            .flat_map(|p| {
                let resync = (p.role == Role::Dialer).then(|| self.resync_due(p));
                let keepalive = (p.role == Role::Dialer && !p.keepalive_due).then(|| {
                    p.last_sent_ms
                        .saturating_add(self.config.keepalive_ms.max(1))
                });
                let paced = (p.send.bytes >= self.config.max_send_bytes_per_window)
                    .then(|| p.send.start_ms.saturating_add(self.config.rate_window_ms));
                [resync, keepalive, paced]
            })
            .flatten()
            .min()
    }

    /// When `p`'s next resync is due: its interval after the last, or sooner, the shortest
    /// interval after something happened (a listener: the shortest, to forget what it asked
    /// for).
    fn resync_due(&self, p: &Peer) -> u64 {
        let base = self.config.resync_interval_ms;
        if p.role == Role::Listener {
            return p.last_heads_ms.saturating_add(base);
        }
        let due = p.last_heads_ms.saturating_add(p.resync_ms);
        match p.busy {
            Some(at) => due.min(at.max(p.last_heads_ms).saturating_add(base)),
            None => due,
        }
    }

    /// Time passed: resyncs that are due are started. A dialer's next interval doubles (up to
    /// [`Config::max_resync_interval_ms`]) if the session was quiet since the last one and
    /// that one showed the peer holding everything; otherwise it is
    /// [`Config::resync_interval_ms`].
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let (base, max) = (
            self.config.resync_interval_ms,
            self.config.max_resync_interval_ms,
        );
        let keepalive = self.config.keepalive_ms.max(1);
        for p in self.peers.values_mut() {
            if p.role == Role::Dialer
                && !p.keepalive_due
                && now_ms >= p.last_sent_ms.saturating_add(keepalive)
            {
                // Sent when nothing else is; the clock moves on meanwhile (a peer whose frames
                // wait behind a slow one must not keep the timer due).
                p.keepalive_due = true;
                p.last_sent_ms = now_ms;
            }
        }
        let due: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, p)| now_ms >= self.resync_due(p))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            let Some(p) = self.peers.get_mut(&id) else {
                continue;
            };
            if p.role == Role::Dialer {
                p.heads_due = Some(None);
                let quiet = p.busy.is_none()
                    && p.wanted.is_empty()
                    && p.want_queue.is_empty()
                    && p.covered_at.is_some_and(|c| c.lanes == c.judged);
                p.resync_ms = if quiet {
                    p.resync_ms.saturating_mul(2).min(max.max(base))
                } else {
                    base
                };
                p.busy = None;
            }
            p.last_heads_ms = now_ms;
            p.wanted.clear();
        }
    }

    /// The next event, if any.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= self.config.max_events {
            self.stats.dropped_events += 1;
        } else {
            self.events.push_back(event);
        }
    }

    /// A frame arrived from `peer`. Ops in it are validated by `replica` (as `peer.source()`)
    /// and what it keeps is stored in `store`. Bad input is reported as an event, never an
    /// error; the error is the store's. Frames from a peer not connected are ignored.
    pub fn handle_frame<S: OpStore + Send>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        frame: &[u8],
        replica: &mut Replica,
        store: &mut S,
    ) -> Result<(), SyncError> {
        if !self.take_in(now_ms, peer, frame.len()) {
            return Ok(());
        }
        self.dispatch(now_ms, peer, wire::decode(frame), replica, store)
    }

    /// [`Engine::handle_frame`] for a frame decoded already, whose ops' checks may be running
    /// ([`Incoming::start`]): the same outcome, sooner.
    pub fn handle_incoming<S: OpStore + Send>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        incoming: Incoming,
        replica: &mut Replica,
        store: &mut S,
    ) -> Result<(), SyncError> {
        if !self.take_in(now_ms, peer, incoming.len) {
            return Ok(());
        }
        match incoming.content {
            Content::Message(message) => self.dispatch(now_ms, peer, message, replica, store),
            Content::Ops { ops, precheck } => {
                self.receive_ops(now_ms, peer, ops, precheck, replica, store)
            }
        }
    }

    /// Counts a frame of `len` bytes from `peer` against its receive budget; false if it is to
    /// be dropped (an unknown peer, or over budget: reported once).
    fn take_in(&mut self, now_ms: u64, peer: PeerId, len: usize) -> bool {
        let window_ms = self.config.rate_window_ms;
        let max_receive = self.config.max_receive_bytes_per_window;
        let Some(p) = self.peers.get_mut(&peer) else {
            return false;
        };
        self.stats.frames_received += 1;
        self.stats.bytes_received += len as u64;
        p.receive.roll(now_ms, window_ms);
        p.receive.bytes = p.receive.bytes.saturating_add(len);
        if p.receive.bytes > max_receive {
            self.stats.frames_dropped += 1;
            if !p.receive.reported {
                p.receive.reported = true;
                let bytes = p.receive.bytes;
                self.push_event(Event::Misbehaved {
                    peer,
                    reason: Misbehaviour::Flood { bytes },
                });
            }
            return false;
        }
        true
    }

    fn dispatch<S: OpStore + Send>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        message: Result<Message, WireError>,
        replica: &mut Replica,
        store: &mut S,
    ) -> Result<(), SyncError> {
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                self.stats.frames_dropped += 1;
                self.push_event(Event::Misbehaved {
                    peer,
                    reason: Misbehaviour::Wire(error),
                });
                return Ok(());
            }
        };
        match message {
            Message::Heads { first, last, heads } => {
                self.receive_heads(now_ms, peer, first, last, heads.into_vec(), replica, store)?
            }
            Message::Want { ids } => {
                let max = self.config.max_requested;
                if let Some(p) = self.peers.get_mut(&peer) {
                    for id in ids.into_vec() {
                        if p.requested.len() < max {
                            p.requested.push_back(id);
                        }
                    }
                }
            }
            Message::Ops { ops } => self.receive_ops(
                now_ms,
                peer,
                Arc::from(ops.into_vec()),
                None,
                replica,
                store,
            )?,
            Message::Present { credential } => self.push_event(Event::Presented {
                peer,
                credential: credential.into_vec(),
            }),
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn receive_heads<S: OpStore>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        first: bool,
        last: bool,
        heads: Vec<Head>,
        replica: &Replica,
        store: &S,
    ) -> Result<(), SyncError> {
        let max_heads = self.config.max_view_heads;
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(());
        };
        if first {
            p.incoming = View::default();
        }
        for head in heads {
            if p.incoming.len >= max_heads {
                break;
            }
            let Some(chain) = p.incoming.chain_mut((head.device, head.lane)) else {
                break;
            };
            // Only a head that is an op of this very chain held here skips the bound (any held
            // id named under one chain would pass `holds`).
            if (chain.len() < MAX_HEADS_PER_CHAIN
                || replica.holds_in_chain(&head.id, &head.device, head.lane, head.seq))
                && !chain.contains_id(&head.id)
            {
                chain.push((head.seq, head.id));
                p.incoming.len += 1;
            }
        }
        if !last {
            return Ok(());
        }
        if p.heads_sets.roll(now_ms, self.config.resync_interval_ms) {
            p.heads_sent = 0;
        }
        p.heads_sets.bytes = p.heads_sets.bytes.saturating_add(1);
        let allowed = self
            .config
            .max_heads_sets_per_interval
            .saturating_add(p.heads_sent);
        if p.heads_sets.bytes > allowed {
            p.incoming = View::default();
            self.stats.frames_dropped += 1;
            if !p.heads_sets.reported {
                p.heads_sets.reported = true;
                let sets = p.heads_sets.bytes;
                self.push_event(Event::Misbehaved {
                    peer,
                    reason: Misbehaviour::HeadsFlood { sets },
                });
            }
            return Ok(());
        }
        let view = std::mem::take(&mut p.incoming);
        // A listener answers for the chains the peer named.
        let named: BTreeSet<Chain> = view.chains().copied().collect();
        let named_lanes = named
            .iter()
            .fold(Lanes::NONE, |lanes, (_, lane)| lanes.with(*lane));
        p.in_transit = std::mem::take(&mut p.sent).into_iter().collect();
        let lanes = p.lanes;
        let judged = lanes.and(self.own.or(named_lanes));
        let confirmed = std::mem::take(&mut p.confirmed);
        let (kept, covered) = match self.judge_set(&view, &confirmed, judged, replica, store) {
            Ok(judgment) => judgment,
            Err(e) => {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.confirmed = confirmed;
                }
                return Err(e);
            }
        };
        let all_covered = covered == judged;
        if let Some(p) = self.peers.get_mut(&peer) {
            if !all_covered {
                p.busy.get_or_insert(now_ms);
            }
            // Covered, only what was never walked is left to walk, of lanes the peer's heads
            // do not speak for (`walked` is the end of the store once they have been).
            p.cursor = match (all_covered, judged == lanes) {
                (true, true) => store.end(),
                (true, false) => p.walked.min(store.end()),
                (false, _) => 0,
            };
            p.covered_at = Some(Covered {
                at: store.end(),
                lanes: covered,
                named: named_lanes,
                judged,
            });
            if p.role == Role::Listener {
                p.heads_due = Some(Some(named));
            } else if !p.awaiting && p.heads_due.is_none() {
                // A set this dialer did not ask for: the listener asks for this node's own
                // (`Engine::confirm`).
                p.heads_due = Some(None);
            }
            p.awaiting = false;
            p.view = Some(view);
            p.confirmed = kept;
        }
        Ok(())
    }

    fn receive_ops<S: OpStore + Send>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        ops: Arc<[OpBytes]>,
        precheck: Option<Precheck<OpBytes>>,
        replica: &mut Replica,
        store: &mut S,
    ) -> Result<(), SyncError> {
        self.stats.ops_received += ops.len() as u64;
        if let Some(p) = self.peers.get_mut(&peer)
            && !ops.is_empty()
        {
            p.busy.get_or_insert(now_ms);
        }
        let end_before = store.end();
        let mut from_peer: BTreeSet<OpId> = BTreeSet::new();
        // Ops the peer is known to hold, in the order the frame shows them (numbered: a
        // duplicate's place is kept while the replica is busy, and filled in after).
        let mut held_by_peer: Vec<(usize, OpRef)> = Vec::new();
        let mut duplicates: Vec<(usize, usize)> = Vec::new();
        let mut order = 0usize;
        let mut misbehaved: Option<Misbehaviour> = None;
        let mut to_want: Vec<OpId> = Vec::new();
        let mut stored = 0usize;
        let mut narrows = false;
        let mut only_theirs = true;
        let mut at = 0usize;
        // Ops kept are stored on a thread of their own, run by run as they are validated, in
        // one durable write that ends before this returns: storing overlaps checking. Each run's
        // outcomes are read here and its kept ops move to the writer (not copied).
        let writing = &mut *store;
        let stats = &mut self.stats;
        let written = std::thread::scope(|scope| {
            let (sender, receiver) = std::sync::mpsc::channel::<Vec<(SignedOp, Verdict)>>();
            let writer = scope.spawn(move || writing.put_kept_batches(&mut receiver.into_iter()));
            let mut on_run = |run: Vec<Insertion>| {
                let mut kept: Vec<(SignedOp, Verdict)> = Vec::new();
                for insertion in run {
                    match &insertion.outcome {
                        Outcome::Accepted(id)
                        | Outcome::Unsupported(id)
                        | Outcome::NeedsUpgrade(id) => {
                            from_peer.insert(*id);
                        }
                        Outcome::Duplicate(id) => {
                            from_peer.insert(*id);
                            stats.duplicates_received += 1;
                            duplicates.push((order, at));
                            order += 1;
                        }
                        Outcome::Pending { op, missing } => {
                            from_peer.insert(*op);
                            to_want.extend(missing.iter().copied());
                        }
                        Outcome::Rejected(rejection) => {
                            stats.rejected_received += 1;
                            match &rejection.reason {
                                Reason::Malformed(error) => {
                                    misbehaved
                                        .get_or_insert(Misbehaviour::MalformedOp(error.clone()));
                                }
                                Reason::BadSignature => {
                                    misbehaved.get_or_insert(Misbehaviour::BadSignature {
                                        op: rejection.op,
                                    });
                                }
                                _ => {}
                            }
                        }
                    }
                    at += 1;
                    for (op, verdict) in insertion.kept {
                        let op = op.into_inner();
                        narrows |= may_narrow_lanes(&op);
                        if from_peer.contains(&op.id()) {
                            held_by_peer.push((order, OpRef::of(&op)));
                            order += 1;
                        } else {
                            only_theirs = false;
                        }
                        kept.push((op, verdict));
                    }
                }
                stored += kept.len();
                // A writer that stopped has failed: its error is returned below.
                if !kept.is_empty() {
                    let _ = sender.send(kept);
                }
                true
            };
            match precheck {
                // Checked from the same ops (`Incoming` keeps them together), for this hub.
                Some(precheck) if precheck.hub() == replica.hub() => {
                    replica.insert_checked_runs(peer.source(), &mut precheck.chunks(), &mut on_run)
                }
                _ => replica.insert_batch_runs(peer.source(), &ops[..], &mut on_run),
            }
            drop(sender);
            writer
                .join()
                .unwrap_or_else(|_| Err(StoreError("the store thread panicked".into())))
        });
        written?;
        // A duplicate the peer sent is an op it holds (if held here, not only waiting).
        if !duplicates.is_empty() {
            for (place, i) in duplicates {
                if let Some(raw) = ops.get(i)
                    && let Some(op) = self.decode(&raw.0)
                    && replica.holds(&op.id)
                {
                    held_by_peer.push((place, op));
                }
            }
            held_by_peer.sort_unstable_by_key(|(place, _)| *place);
        }
        let held_by_peer: Vec<OpRef> = held_by_peer.into_iter().map(|(_, op)| op).collect();
        let max_wanted = self.config.max_wanted;
        let max_heads = self.config.max_view_heads;
        if let Some(p) = self.peers.get_mut(&peer) {
            for op in &held_by_peer {
                add_head(&mut p.confirmed, op, replica, max_heads);
            }
        }
        if let Some(p) = self.peers.get_mut(&peer) {
            for id in &from_peer {
                p.wanted.remove(id);
            }
            for id in to_want {
                if p.wanted.len() < max_wanted && !replica.holds(&id) && p.wanted.insert(id) {
                    p.want_queue.push_back(id);
                }
            }
            // What this frame stored is the peer's own: no need to scan it for the peer. Unless
            // the store moved by more than that (another writer's ops landed first, not yet
            // sent to anyone): then nothing is skipped, and the view keeps the peer's ops out.
            let end_after = store.end();
            if only_theirs && end_after > end_before && end_after - end_before == stored as u64 {
                if p.cursor == end_before {
                    p.cursor = end_after;
                }
                if p.walked == end_before {
                    p.walked = end_after;
                }
                match p.theirs.back_mut() {
                    Some(last) if last.1 == end_before => last.1 = end_after,
                    _ => {
                        if p.theirs.len() >= MAX_THEIRS_RANGES {
                            p.theirs.pop_front();
                        }
                        p.theirs.push_back((end_before, end_after));
                    }
                }
            }
        }
        if let Some(reason) = misbehaved {
            self.push_event(Event::Misbehaved { peer, reason });
        }
        if stored > 0 {
            self.push_event(Event::Stored {
                peer,
                op_count: stored,
                narrows,
            });
        }
        Ok(())
    }

    /// The next frame to send, to any peer (round robin), if one is ready. Call until `None`
    /// after every input, and after storing a local op (it is pushed at once).
    pub fn poll_transmit<S: OpStore>(
        &mut self,
        now_ms: u64,
        replica: &Replica,
        store: &S,
    ) -> Result<Option<Transmit>, SyncError> {
        self.poll_transmit_to(now_ms, replica, store, |_| true)
    }

    /// [`Engine::poll_transmit`] for the peers `ready` accepts only: a peer whose connection
    /// is still busy with earlier frames is skipped (nothing of its stream is consumed), and
    /// the others are not held up by it.
    pub fn poll_transmit_to<S: OpStore>(
        &mut self,
        now_ms: u64,
        replica: &Replica,
        store: &S,
        ready: impl Fn(PeerId) -> bool,
    ) -> Result<Option<Transmit>, SyncError> {
        let peers: Vec<PeerId> = self.peers.keys().copied().filter(|&p| ready(p)).collect();
        let start = match self.last_served {
            Some(last) => peers.iter().position(|p| *p > last).unwrap_or(0),
            None => 0,
        };
        for i in 0..peers.len() {
            let peer = peers[(start + i) % peers.len()];
            if let Some(frame) = self.next_frame(now_ms, peer, replica, store)? {
                self.last_served = Some(peer);
                self.stats.frames_sent += 1;
                self.stats.bytes_sent += frame.len() as u64;
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.send.bytes = p.send.bytes.saturating_add(frame.len());
                    p.last_sent_ms = now_ms;
                    p.keepalive_due = false;
                }
                return Ok(Some(Transmit { peer, frame }));
            }
        }
        Ok(None)
    }

    /// The next frame for `peer`: [`Engine::next_frame_of_sync`], or when there is none and a
    /// keepalive fell due, an empty `Want` (nothing sent for a while: it keeps the connection
    /// from being closed as idle, a quiet session's resyncs being minutes apart).
    fn next_frame<S: OpStore>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        replica: &Replica,
        store: &S,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        if let Some(frame) = self.next_frame_of_sync(now_ms, peer, replica, store)? {
            return Ok(Some(frame));
        }
        match self.peers.get(&peer) {
            Some(p) if p.keepalive_due => {
                let ids = Bounded::new(Vec::new()).ok_or(WireError::Limit)?;
                Ok(Some(wire::encode(&Message::Want { ids })?))
            }
            _ => Ok(None),
        }
    }

    /// What the sync itself has to send `peer` next, if anything.
    fn next_frame_of_sync<S: OpStore>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        replica: &Replica,
        store: &S,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let config = self.config;
        let Some(p) = self.peers.get_mut(&peer) else {
            return Ok(None);
        };
        p.send.roll(now_ms, config.rate_window_ms);
        if p.send.bytes >= config.max_send_bytes_per_window {
            return Ok(None);
        }
        if let Some(frame) = p.present.take() {
            return Ok(Some(frame));
        }
        if let Some(chains) = p.heads_due.take() {
            p.last_heads_ms = now_ms;
            if p.heads_sets.roll(now_ms, config.resync_interval_ms) {
                p.heads_sent = 0;
            }
            // A whole set (not a listener's answer) is owed one: the peer's next set is
            // awaited, and not held against it.
            if chains.is_none() {
                p.heads_sent = p.heads_sent.saturating_add(1);
                p.awaiting = true;
            }
            p.control.clear();
            let lanes = p.lanes;
            let heads: Vec<Head> = own_heads(replica)
                .into_iter()
                .filter(|h| lanes.contains(h.lane))
                .filter(|h| {
                    chains
                        .as_ref()
                        .is_none_or(|c| c.contains(&(h.device, h.lane)))
                })
                .collect();
            // Parts made larger if needed to fit the control frames; beyond even the largest,
            // the rest are left out (the peer then sends some ops twice, never too few), and
            // the last part sent is marked last, so the peer always completes the set.
            let max_parts = config.max_control_frames.max(1);
            let per_part = config
                .max_heads_per_frame
                .max(heads.len().div_ceil(max_parts))
                .clamp(1, MAX_HEADS_PER_MESSAGE);
            let mut parts: Vec<&[Head]> = if heads.is_empty() {
                vec![&[]]
            } else {
                heads.chunks(per_part).collect()
            };
            parts.truncate(max_parts);
            let count = parts.len();
            for (i, part) in parts.into_iter().enumerate() {
                let heads = Bounded::new(part.to_vec()).ok_or(WireError::Limit)?;
                let message = Message::Heads {
                    first: i == 0,
                    last: i + 1 == count,
                    heads,
                };
                if let Ok(frame) = wire::encode(&message) {
                    p.control.push_back(frame);
                }
            }
        }
        if let Some(frame) = p.control.pop_front() {
            return Ok(Some(frame));
        }
        if !p.want_queue.is_empty() {
            let take = p.want_queue.len().min(MAX_IDS_PER_MESSAGE);
            let ids: Vec<OpId> = p.want_queue.drain(..take).collect();
            if let Some(ids) = Bounded::new(ids)
                && let Ok(frame) = wire::encode(&Message::Want { ids })
            {
                return Ok(Some(frame));
            }
        }
        if !p.requested.is_empty() {
            let requested: Vec<OpId> = p.requested.drain(..).collect();
            let lanes = p.lanes;
            let mut batch = Vec::new();
            let mut bytes = OPS_FRAME_OVERHEAD;
            let mut rest = requested.into_iter();
            for id in rest.by_ref() {
                let Some(raw) = store.op(&id)? else {
                    continue;
                };
                let Some(op) = self.decode(&raw) else {
                    continue;
                };
                if !lanes.contains(op.lane) {
                    continue;
                }
                batch.push((op, OpBytes(raw)));
                bytes += wire::op_frame_bytes(batch.last().map_or(0, |(_, b)| b.0.len()));
                if batch.len() >= config.max_ops_per_frame.min(MAX_OPS_PER_MESSAGE)
                    || bytes + wire::op_frame_bytes(moot_crypto::op::MAX_OP_BYTES)
                        > MAX_MESSAGE_BYTES
                {
                    break;
                }
            }
            if let Some(p) = self.peers.get_mut(&peer) {
                let left: Vec<OpId> = rest.collect();
                p.requested.extend(left);
            }
            if !batch.is_empty() {
                return self.ops_frame(now_ms, peer, batch, replica).map(Some);
            }
        }
        self.scan(now_ms, peer, replica, store)
    }

    /// Walks the store from the peer's cursor for ops it lacks; a frame of them, if any.
    fn scan<S: OpStore>(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        replica: &Replica,
        store: &S,
    ) -> Result<Option<Vec<u8>>, SyncError> {
        let max_ops = self.config.max_ops_per_frame.clamp(1, MAX_OPS_PER_MESSAGE);
        let end = store.end();
        let mut batch: Vec<(OpRef, OpBytes)> = Vec::new();
        let mut bytes = OPS_FRAME_OVERHEAD;
        'scan: loop {
            let own = self.own;
            let (cursor, lanes, spoken, walked) = match self.peers.get_mut(&peer) {
                Some(p) if p.view.is_some() && p.cursor < end => {
                    // The peer's own ops, stored from its frames, are held by it.
                    if let Some(&(_, skip_to)) = p
                        .theirs
                        .iter()
                        .find(|(start, stop)| *start <= p.cursor && p.cursor < *stop)
                    {
                        p.cursor = skip_to;
                        p.walked = p.walked.max(skip_to);
                        continue;
                    }
                    let named = p.covered_at.map_or(Lanes::NONE, |c| c.named);
                    (p.cursor, p.lanes, own.or(named), p.walked)
                }
                _ => break,
            };
            let chunk = store.ops_from(cursor, SCAN_CHUNK)?;
            self.stats.ops_scanned += chunk.len() as u64;
            if chunk.is_empty() {
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.cursor = end;
                    p.walked = p.walked.max(end);
                }
                break;
            }
            for (position, raw) in chunk {
                let next = position.saturating_add(1);
                let send = match self.decode(&raw) {
                    // In a lane the peer's heads do not speak for, nothing tells what it holds:
                    // an op already walked past this session is not sent again.
                    Some(op)
                        if lanes.contains(op.lane)
                            && (spoken.contains(op.lane) || position >= walked) =>
                    {
                        let in_transit = self
                            .peers
                            .get(&peer)
                            .is_some_and(|p| p.in_transit.contains(&op.id));
                        let (view, confirmed) = match self.peers.get_mut(&peer) {
                            Some(p) => (p.view.take(), std::mem::take(&mut p.confirmed)),
                            None => (None, View::default()),
                        };
                        let covered = match &view {
                            Some(_) if in_transit => Ok(true),
                            Some(view) => self.covered_by(view, &confirmed, &op, replica, store),
                            None => Ok(true),
                        };
                        if let Some(p) = self.peers.get_mut(&peer) {
                            p.view = view;
                            p.confirmed = confirmed;
                        }
                        (!covered?).then_some(op)
                    }
                    // Not an op (damage in the node's own store) or not the peer's lane.
                    _ => None,
                };
                if let Some(op) = send {
                    if batch.len() >= max_ops
                        || bytes + wire::op_frame_bytes(raw.len()) > MAX_MESSAGE_BYTES
                    {
                        break 'scan;
                    }
                    bytes += wire::op_frame_bytes(raw.len());
                    // Counted as held at once, so the rest of the batch is judged with it.
                    self.add_to_view(peer, &op, replica);
                    if let Some(p) = self.peers.get_mut(&peer) {
                        if p.sent.len() >= MAX_SENT_REMEMBERED {
                            p.sent.pop_front();
                        }
                        p.sent.push_back(op.id);
                    }
                    batch.push((op, OpBytes(raw)));
                }
                if let Some(p) = self.peers.get_mut(&peer) {
                    p.cursor = next;
                    p.walked = p.walked.max(next);
                }
            }
        }
        if batch.is_empty() {
            return Ok(None);
        }
        self.ops_frame(now_ms, peer, batch, replica).map(Some)
    }

    fn ops_frame(
        &mut self,
        now_ms: u64,
        peer: PeerId,
        batch: Vec<(OpRef, OpBytes)>,
        replica: &Replica,
    ) -> Result<Vec<u8>, SyncError> {
        let mut ops = Vec::with_capacity(batch.len());
        if let Some(p) = self.peers.get_mut(&peer)
            && !batch.is_empty()
        {
            p.busy.get_or_insert(now_ms);
        }
        for (op, raw) in batch {
            self.add_to_view(peer, &op, replica);
            self.stats.ops_sent += 1;
            self.stats.op_bytes_sent += raw.0.len() as u64;
            ops.push(raw);
        }
        let ops = Bounded::new(ops).ok_or(WireError::Limit)?;
        Ok(wire::encode(&Message::Ops { ops })?)
    }

    /// True if the view shows the peer holds `op`: a head of its chain is `op`, or is held
    /// here with a sequence number at least `op`'s and `op` is its chain ancestor.
    fn covered<S: OpStore>(
        &mut self,
        view: &View,
        op: &OpRef,
        replica: &Replica,
        store: &S,
    ) -> Result<bool, SyncError> {
        let Some(heads) = view.get(&(op.device.to_bytes(), op.lane)) else {
            return Ok(false);
        };
        if heads.contains_id(&op.id) {
            return Ok(true);
        }
        let forked = replica.is_forked(&op.device, op.lane);
        for &(seq, head) in heads.as_slice() {
            if seq < op.seq || !replica.holds(&head) {
                continue;
            }
            // An unforked chain held here has one op per seq: the head's ancestor at `op.seq`
            // is `op`.
            if !forked {
                return Ok(true);
            }
            if self.branch(&head, store)?.contains(&op.id) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Judges a complete set of a peer's heads (`view`): what it sent in this session
    /// (`confirmed`) that the set does not show, and the lanes of `judged` in which the set,
    /// with what the peer sent, covers every head of this node's.
    ///
    /// A head of `confirmed` that the set covers is shown by this set and every later one (made
    /// after it): it is let go, so that a chain is not remembered twice.
    fn judge_set<S: OpStore>(
        &mut self,
        view: &View,
        confirmed: &View,
        judged: Lanes,
        replica: &Replica,
        store: &S,
    ) -> Result<(View, Lanes), SyncError> {
        let max_heads = self.config.max_view_heads;
        let mut kept = View::default();
        for (chain, (seq, id)) in confirmed.heads() {
            let Some(device) = self.key(&chain.0, replica) else {
                continue;
            };
            let op = OpRef {
                id,
                device,
                lane: chain.1,
                seq,
                prev: None,
            };
            if !self.covered(view, &op, replica, store)? {
                add_head(&mut kept, &op, replica, max_heads);
            }
        }
        // If the peer's heads cover every head of ours it may receive, in the lanes they speak
        // for, it holds everything we could send. The lanes in which they do are what a
        // confirmation can show.
        let mut covered = judged;
        for head in own_heads(replica) {
            if !covered.contains(head.lane) {
                if covered == Lanes::NONE {
                    break;
                }
                continue;
            }
            let Some(device) = self.key(&head.device, replica) else {
                continue;
            };
            let op = OpRef {
                id: head.id,
                device,
                lane: head.lane,
                seq: head.seq,
                prev: None,
            };
            if !self.covered_by(view, &kept, &op, replica, store)? {
                covered = covered.without(head.lane);
            }
        }
        Ok((kept, covered))
    }

    /// True if the peer holds `op` by its view or by what it sent in this session.
    fn covered_by<S: OpStore>(
        &mut self,
        view: &View,
        confirmed: &View,
        op: &OpRef,
        replica: &Replica,
        store: &S,
    ) -> Result<bool, SyncError> {
        Ok(self.covered(view, op, replica, store)?
            || self.covered(confirmed, op, replica, store)?)
    }

    /// The chain ancestors of a held op (itself included), remembered (bounded).
    fn branch<S: OpStore>(&mut self, head: &OpId, store: &S) -> Result<&BTreeSet<OpId>, SyncError> {
        if !self.branches.contains_key(head) {
            let mut ids = BTreeSet::new();
            let mut at = Some(*head);
            while let Some(id) = at {
                if !ids.insert(id) {
                    break;
                }
                at = store.op(&id)?.as_deref().and_then(raw_prev);
            }
            if self.branch_ids + ids.len() > MAX_BRANCH_IDS {
                self.branches.clear();
                self.branch_ids = 0;
            }
            self.branch_ids += ids.len();
            self.branches.insert(*head, ids);
        }
        self.branches
            .get(head)
            .ok_or_else(|| SyncError::Store(StoreError("branch cache lost an entry".into())))
    }

    /// Records that `peer` holds `op`.
    fn add_to_view(&mut self, peer: PeerId, op: &OpRef, replica: &Replica) {
        let max = self.config.max_view_heads;
        if let Some(view) = self.peers.get_mut(&peer).and_then(|p| p.view.as_mut()) {
            add_head(view, op, replica, max);
        }
    }

    /// The key of `raw` author bytes: the replica's, for a device whose ops it holds (most
    /// heads name one: no square root); else parsed once (bounded cache).
    fn key(&mut self, raw: &[u8; 32], replica: &Replica) -> Option<PublicKey> {
        if let Some(key) = replica.held_key(raw) {
            return Some(key);
        }
        if let Some(key) = self.keys.get(raw) {
            return Some(*key);
        }
        let key = PublicKey::from_bytes(raw).ok()?;
        if self.keys.len() >= MAX_CACHED_KEYS {
            self.keys.clear();
        }
        self.keys.insert(*raw, key);
        Some(key)
    }

    /// The fields of an op's bytes, or `None` if they are not an op.
    fn decode(&mut self, raw: &[u8]) -> Option<OpRef> {
        let keys = &mut self.keys;
        let op = SignedOp::decode_with(raw, |author| {
            if let Some(key) = keys.get(author) {
                return Ok(*key);
            }
            let key = PublicKey::from_bytes(author)?;
            if keys.len() >= MAX_CACHED_KEYS {
                keys.clear();
            }
            keys.insert(*author, key);
            Ok(key)
        })
        .ok()?;
        Some(OpRef::of(&op))
    }
}

/// True if `op` is a roll op that may take a lane from someone: any public-lane roll op but a
/// public name. Removals and revocations do directly; any other can by resolution (slotted into
/// the seniority order, an admission or a certification can make a held removal by its author
/// count). Members-lane roll ops (names, constituencies, contributions) touch no standing.
pub fn may_narrow_lanes(op: &SignedOp) -> bool {
    use moot_state::body::kind;
    kind::is_roll(op.kind())
        && kind::lane_of(op.kind()) == Some(Lane::Public)
        && op.kind() != kind::PUBLIC_NAME
}

/// Records in `view` that its peer holds `op` (and so its chain ancestors), within `max` heads.
fn add_head(view: &mut View, op: &OpRef, replica: &Replica, max: usize) {
    let forked = replica.is_forked(&op.device, op.lane);
    let mut len = view.len;
    let Some(chain) = view.chain_mut((op.device.to_bytes(), op.lane)) else {
        return;
    };
    if chain.contains_id(&op.id) {
        return;
    }
    let before = chain.len();
    // Heads the new one continues are no longer heads (in an unforked chain held here,
    // every lower held head is an ancestor).
    chain.retain(|&(seq, id)| {
        Some(id) != op.prev && (forked || seq >= op.seq || !replica.holds(&id))
    });
    len = len + chain.len() - before;
    if len < max {
        chain.push((op.seq, op.id));
        len += 1;
    }
    view.len = len;
}

/// The `prev` field of an op from the node's own store (see the envelope layout in
/// `moot_crypto::op`: version, author, lane, seq, has_prev, prev).
fn raw_prev(bytes: &[u8]) -> Option<OpId> {
    const HAS_PREV: usize = 1 + 32 + 1 + 8;
    if *bytes.get(HAS_PREV)? != 1 {
        return None;
    }
    let prev: [u8; 32] = bytes.get(HAS_PREV + 1..HAS_PREV + 33)?.try_into().ok()?;
    Some(OpId(prev))
}
