//! The node on the network: the sync engine (`moot-sync`) over libp2p (`moot-net`) with this
//! node's store, for `moot serve` (runs until stopped) and `moot sync --peer` (one-shot).
//!
//! Lanes per peer come from the roll ([`lanes_by_roll`]): a member's certified device receives
//! both lanes, a guest's device the public lane, and any other device (unknown, revoked, a
//! removed member's) the public lane of a public hub and nothing at all of a members-only hub
//! (`SetAccess`). A device the roll does not know yet is judged by the credential it presents
//! at the start of the session — its member's certificate of it for the hub — so a member's new
//! device can join a members-only hub. A credential is sealed for the one peer it is presented
//! to, under a key only holders of the hub's id can derive ([`moot_crypto::seal_for_peer`]): a
//! node of another members-only hub met on the LAN, or any stranger without a ticket, learns
//! nothing of the member or the hub from it (a public hub's id is in its public lane, and its
//! roll public anyway). The roll is read again whenever ops arrive, and every
//! connected peer's lanes re-evaluated: a removed member's device stops receiving the members
//! lane mid-connection.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use moot_crypto::{HubId, PublicKey};
use moot_net::{Discovery, NetConfig, NetHandle, NetNode, RelayServer};
pub use moot_net::{Multiaddr, NetEvent};
use moot_state::{Replica, Roll, Status};
pub use moot_sync::Lanes;
use moot_sync::OpStore;
use serde::{Deserialize, Serialize};

use crate::{Node, NodeError, Signer};

/// A hub's ops in a node's store, owned (for the network task).
pub type SharedOps = crate::sync::NodeOps<Arc<Node>>;

impl SharedOps {
    /// Writes this node's device certificate if its member is on the roll and the device is
    /// not certified yet; stored through the engine's store, so it is pushed to peers.
    fn certify_if_admitted(
        &mut self,
        replica: &mut Replica,
        signer: &Signer,
    ) -> Result<(), NodeError> {
        let roll = replica.roll();
        let member = signer.member.public();
        let admitted = roll
            .member(&member)
            .is_some_and(|r| r.status != Status::Removed);
        if !admitted || roll.member_of(&signer.device.public()).is_some() {
            return Ok(());
        }
        // A command through the control socket may be writing with the same device, or may
        // have certified it already: wait for it, then look again with what it stored.
        let node = Arc::clone(self.node_arc());
        let _writing = node.own_writes();
        self.catch_up(replica)?;
        if replica.roll().member_of(&signer.device.public()).is_some() {
            return Ok(());
        }
        // Like every write: never with a device whose chain holds ops this node did not write.
        self.node().check_own_device(&self.hub(), signer, replica)?;
        let certify = moot_state::Body::CertifyDevice(moot_state::body::CertifyDevice {
            member,
            device: signer.device.public(),
            certificate: moot_state::body::Certificate::issue(
                &signer.member,
                &self.hub(),
                &signer.device.public(),
            ),
        });
        let ops = replica
            .write_ops(&signer.device, moot_state::Lane::Public, &certify, &[])
            .map_err(|r| NodeError::Refused(r.reason))?;
        let mut kept = Vec::new();
        for op in &ops {
            if let Some(verdict) = replica.verdict(&op.id()) {
                kept.push((op.get(), verdict));
            }
        }
        // Recorded as this node's own writes (see `Node::check_own_device`), then stored.
        self.node()
            .record_own(&self.hub(), ops.iter().map(|op| op.get()))?;
        self.put_kept(&kept)
            .map_err(|e| NodeError::Sync(e.to_string()))
    }
}

/// What a node presents to its peers (the engine's `Present` message): its member and the
/// member's certificate of its device for the hub — what its device's certification op will
/// say, before a peer has seen that op (a member's new device joining a members-only hub).
#[derive(Debug, Serialize, Deserialize)]
struct Credential {
    member: [u8; 32],
    certificate: moot_state::body::Certificate,
}

/// This node's credential for `hub`, before it is sealed for a peer.
fn credential(signer: &Signer, hub: &HubId) -> Result<Vec<u8>, NodeError> {
    let credential = Credential {
        member: signer.member.public().to_bytes(),
        certificate: moot_state::body::Certificate::issue(
            &signer.member,
            hub,
            &signer.device.public(),
        ),
    };
    postcard::to_allocvec(&credential).map_err(|e| NodeError::Corrupt(e.to_string()))
}

/// The purpose a credential is sealed for ([`moot_crypto::seal_for_peer`]).
const CREDENTIAL: &str = "moot/credential/v1";

/// What this node presents to each peer: its credential for `hub`, sealed for that peer's
/// device.
fn presenter(signer: &Signer, hub: &HubId) -> Result<moot_net::Presenter, NodeError> {
    let plain = credential(signer, hub)?;
    let hub = *hub;
    let me = signer.device.public();
    Ok(moot_net::Presenter::new(move |peer: &PublicKey| {
        moot_crypto::seal_for_peer(&hub, &me, peer, CREDENTIAL, &plain)
    }))
}

/// The lanes `device` may receive, given what it presented to this node's device `me`
/// (sealed for `me` by the presenting node): what opens is judged by [`lanes_by_roll`];
/// anything that does not open (sealed for another hub or device, or not sealed) vouches for
/// nothing.
pub fn lanes_for_presented(
    roll: &Roll,
    hub: &HubId,
    me: &PublicKey,
    device: &PublicKey,
    presented: Option<&[u8]>,
) -> Lanes {
    let opened = presented
        .and_then(|sealed| moot_crypto::open_from_peer(hub, device, me, CREDENTIAL, sealed));
    lanes_by_roll(roll, hub, device, opened.as_deref())
}

/// The lanes a device may receive, by the roll: a member's device (certified on the roll, or
/// vouched for by its member's certificate when the roll does not know it yet) both lanes; a
/// guest's device the public lane; any other device — unknown, revoked, a removed member's —
/// the public lane of a public hub and nothing of a members-only hub.
pub fn lanes_by_roll(
    roll: &Roll,
    hub: &HubId,
    device: &PublicKey,
    presented: Option<&[u8]>,
) -> Lanes {
    let stranger = if roll.members_only {
        Lanes::NONE
    } else {
        Lanes::PUBLIC
    };
    let by_standing = |member: &PublicKey| match roll.member(member).map(|r| r.status) {
        Some(Status::Member) => Lanes::ALL,
        Some(Status::Guest) => Lanes::PUBLIC,
        _ => stranger,
    };
    if let Some(record) = roll.devices.get(device) {
        return if record.revoked {
            stranger
        } else {
            by_standing(&record.member)
        };
    }
    let vouched = presented
        .and_then(|bytes| postcard::from_bytes::<Credential>(bytes).ok())
        .and_then(|c| {
            let member = PublicKey::from_bytes(&c.member).ok()?;
            c.certificate.verify(&member, hub, device).then_some(member)
        });
    match vouched {
        Some(member) => by_standing(&member),
        None => stranger,
    }
}

/// How to run on the network.
#[derive(Debug, Clone, Default)]
pub struct NetOptions {
    /// Listen addresses (multiaddrs); none: listen on nothing (a one-shot sync dials out).
    pub listen: Vec<String>,
    /// Peers to dial.
    pub peers: Vec<String>,
    /// mDNS on the LAN.
    pub mdns: bool,
    /// Relay for other nodes (an always-on branch node).
    pub relay: bool,
    /// Addresses announced as reachable from outside (multiaddrs).
    pub external: Vec<String>,
}

/// What a one-shot sync did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// The peers synced with (node ids).
    pub peers: Vec<String>,
    /// Ops taken in.
    pub new_ops: u64,
    /// True if the sync ended because nothing more came, false on the timeout.
    pub complete: bool,
    /// The addresses given whose dials failed and that no peer of this sync was reached at, with
    /// the last error of each.
    #[serde(default)]
    pub unreachable: Vec<Unreachable>,
}

/// An address a sync could not reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreachable {
    /// The address, as given.
    pub addr: String,
    /// Why (the transport's error).
    pub error: String,
}

/// Checks that each of `addrs` is a multiaddr (bad text otherwise), before anything is started
/// with them.
pub fn check_addrs(addrs: &[String]) -> Result<(), NodeError> {
    parse_addrs(addrs).map(|_| ())
}

/// Each of `addrs` as a multiaddr (bad text otherwise).
pub fn parse_multiaddrs(addrs: &[String]) -> Result<Vec<Multiaddr>, NodeError> {
    parse_addrs(addrs)
}

/// The peer an address names by its last part (`/p2p/ID`), if it does.
fn peer_named(addr: &Multiaddr) -> Option<moot_net::Libp2pPeerId> {
    match addr.iter().last() {
        Some(moot_net::Protocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

fn parse_addrs(addrs: &[String]) -> Result<Vec<Multiaddr>, NodeError> {
    addrs
        .iter()
        .map(|a| {
            a.parse::<Multiaddr>().map_err(|e| NodeError::BadText {
                what: "address",
                reason: format!("{a:?} is not a multiaddr ({e}); e.g. /ip4/127.0.0.1/tcp/4242"),
            })
        })
        .collect()
}

/// How long after ops arrive the views and lanes are brought up to date. `moot serve` counts
/// it from the first arrival since the last update (a throttle, not a debounce: during a long
/// sync the views follow it, and a removal reaches the lanes within this); a one-shot sync
/// ([`Running::sync_until_quiet`]) from the last arrival.
pub const SETTLE: Duration = Duration::from_millis(200);

/// How often a one-shot sync that is still pushing its own frames looks again whether they
/// have all been taken up (`Running::sync_until_quiet`).
const PUSH_POLL: Duration = Duration::from_millis(100);

/// Confirmations a one-shot sync asks of one peer at most (`Running::sync_until_quiet`): the
/// first usually finds the peer holding everything; one that shows a gap has what the peer
/// lacks sent again, and the next finds it held. A peer whose heads never show it (it keeps
/// a lane from this node) is not asked for ever: each round costs a whole set of heads, and
/// more than 16 a resync interval is a flood.
const MAX_CONFIRM_ROUNDS: u32 = 4;

/// The least time between two confirmations asked of one peer: at most 10 a resync interval,
/// well within the 16 sets of heads a peer takes in one.
const CONFIRM_INTERVAL: Duration = Duration::from_secs(3);

/// The longest a one-shot sync waits when it is given a timeout the clock cannot add (a
/// year).
const MAX_SYNC_WAIT: Duration = Duration::from_secs(365 * 24 * 3600);

/// Ops taken in since the replica last shed its caches after which a settle sheds them again
/// and gives the memory back to the system (`Replica::shed_caches`, `memory::give_back`): a
/// sync's burst, not each op of a conversation (a trim walks the allocator's arenas).
pub const SHED_AFTER_OPS: usize = 1_024;

/// Spare capacity in the replica's per-op tables after which a settle sheds its caches however
/// few ops came since the last shed: a shed during a burst (a pause of [`SETTLE`] between
/// frames) and a table doubling in the burst's last few hundred ops would otherwise leave the
/// doubled capacity (W: 7 MB of the op index) held for as long as the node runs.
pub const SHED_SPARE_BYTES: usize = 1 << 20;

/// How long a node takes no ops in before it is at rest ([`Running::rest`]): its devices'
/// points go (16 MB for a hub of 100,000 devices), to be computed again by the next burst.
pub const REST_AFTER: Duration = Duration::from_secs(60);

type NetTask = tokio::task::JoinHandle<Result<(Replica, SharedOps), moot_net::NetError>>;

/// A running network node for one hub.
pub struct Running {
    /// Talks to the network task.
    pub handle: NetHandle<SharedOps>,
    /// The network task; returns the replica and store when stopped (taken by
    /// [`Running::stop`]).
    task: Mutex<Option<NetTask>>,
    /// This node's id.
    pub node_id: String,
    peer: moot_net::Libp2pPeerId,
    roll: Arc<Mutex<Roll>>,
    /// Ops the replica held when it last shed its caches ([`Running::took_in`]).
    shed_at: Arc<AtomicUsize>,
    hub: HubId,
    signer: Signer,
}

impl Node {
    /// Starts the node on the network for `hub` with `signer`'s device as its identity (in the
    /// current tokio runtime).
    pub fn start_net(
        self: &Arc<Self>,
        hub: HubId,
        signer: &Signer,
        options: &NetOptions,
    ) -> Result<Running, NodeError> {
        // A running node lives long: large blocks get pages of their own (`memory::tune`).
        crate::memory::tune();
        let listen = parse_addrs(&options.listen)?;
        let external = parse_addrs(&options.external)?;
        let mut replica = self.replica(&hub)?;
        let mut store = SharedOps::new(Arc::clone(self), hub)?;
        store.certify_if_admitted(&mut replica, signer)?;
        let roll = Arc::new(Mutex::new(replica.roll()));
        // A removal (or the like) stored from a peer: the roll the lanes are judged by is read
        // again at once, not at the next settle (`took_in`), so that nothing more goes out to
        // a peer on lanes it no longer has.
        let watched_roll = Arc::clone(&roll);
        let on_narrowing = moot_net::RollWatch::new(move |replica: &mut Replica| {
            // The public roll: all a lane depends on (standing, devices, access), and cheap; the
            // names follow at the settle.
            let now = replica.public_roll();
            if let Ok(mut shared) = watched_roll.lock() {
                *shared = now;
            }
        });
        // Loading the hub cached the rolls of every past it went through: they go now, not
        // at the first settle (which a single new op would otherwise make slow).
        replica.shed_caches();
        let shed_at = Arc::new(AtomicUsize::new(replica.len()));
        crate::memory::give_back();
        let keypair = moot_net::keypair(&signer.device)
            .map_err(|e| NodeError::Sync(format!("identity: {e}")))?;
        let peer = moot_net::peer_id(&signer.device.public())
            .map_err(|e| NodeError::Sync(format!("identity: {e}")))?;
        let node_id = peer.to_string();
        let config = NetConfig {
            listen,
            external,
            relay_server: options.relay.then(RelayServer::default),
            credential: Some(presenter(signer, &hub)?),
            on_narrowing: Some(on_narrowing),
            discovery: if options.mdns {
                Discovery::Mdns
            } else {
                Discovery::Off
            },
            ..NetConfig::default()
        };
        let lanes_roll = Arc::clone(&roll);
        let me = signer.device.public();
        let lanes_for = Box::new(move |device: &PublicKey, presented: Option<&[u8]>| {
            lanes_roll
                .lock()
                .map(|roll| lanes_for_presented(&roll, &hub, &me, device, presented))
                .unwrap_or(Lanes::NONE)
        });
        let (net, handle) =
            NetNode::new(keypair, config, replica, store, lanes_for).map_err(|e| match e {
                moot_net::NetError::Listen { addr, reason } => NodeError::Listen {
                    addr: addr.to_string(),
                    reason,
                },
                other => NodeError::Sync(other.to_string()),
            })?;
        let task = tokio::spawn(net.run());
        Ok(Running {
            handle,
            task: Mutex::new(Some(task)),
            node_id,
            peer,
            roll,
            shed_at,
            hub,
            signer: signer.clone(),
        })
    }
}

impl Running {
    /// Listen addresses as peers dial them: ending in `/p2p/NODE_ID` (a relayed one does
    /// already).
    pub fn dialable(&self, listening: &[Multiaddr]) -> Vec<String> {
        listening
            .iter()
            .map(|a| {
                a.clone()
                    .with_p2p(self.peer)
                    .unwrap_or_else(|a| a)
                    .to_string()
            })
            .collect()
    }

    /// `f` on the roll as the network side last read it: after the last arrivals settled, or,
    /// between a frame that stored a public-lane roll op and the next settle, the public roll
    /// alone (standing, devices and access up to date; members-lane names not yet).
    pub fn with_roll<R>(&self, f: impl FnOnce(&Roll) -> R) -> Option<R> {
        self.roll.lock().ok().map(|roll| f(&roll))
    }

    /// The lanes a peer's device receives now, by the roll as last read.
    pub fn lanes_of(&self, device: &PublicKey) -> Lanes {
        let hub = self.hub;
        self.with_roll(|roll| lanes_by_roll(roll, &hub, device, None))
            .unwrap_or(Lanes::NONE)
    }

    /// Dials `peers` (each kept connected: redialed with backoff when lost).
    pub async fn dial(&self, peers: &[String]) -> Result<(), NodeError> {
        for addr in parse_addrs(peers)? {
            self.handle
                .dial(addr)
                .await
                .map_err(|e| NodeError::Sync(e.to_string()))?;
        }
        Ok(())
    }

    /// After ops arrived: the views refreshed, the roll read again, every peer's lanes
    /// re-evaluated.
    pub async fn took_in(&self) -> Result<(), NodeError> {
        self.refresh(false).await
    }

    /// After a command on this node (through the control socket) stored ops: the network
    /// task's replica takes them in from the store, so they are pushed to every connected
    /// peer, then as [`Running::took_in`].
    pub async fn local_wrote(&self) -> Result<(), NodeError> {
        self.refresh(true).await
    }

    async fn refresh(&self, local: bool) -> Result<(), NodeError> {
        let hub = self.hub;
        let signer = self.signer.clone();
        let shed_at = Arc::clone(&self.shed_at);
        let shared = Arc::clone(&self.roll);
        // The roll the lanes are judged by is replaced in the closure, on the network task, in
        // order with `on_narrowing`'s (an older roll read here must never overwrite a newer
        // one), and every peer's lanes are judged again before anything more is sent (a local
        // write or an import may hold a removal: the ops after it must not reach the removed
        // member).
        let (error, shed) = self
            .handle
            .with_state_then_lanes(move |replica, store: &mut SharedOps| {
                let settled = Self::settle(replica, store, local, &signer, &hub, &shed_at);
                let roll = replica.roll();
                if let Ok(mut shared) = shared.lock() {
                    *shared = roll;
                }
                settled
            })
            .await
            .map_err(|e| NodeError::Sync(e.to_string()))?;
        if let Some(e) = error {
            return Err(NodeError::Sync(format!("refreshing the views: {e}")));
        }
        // The freed caches (and what the arrivals' buffers left free) back to the system: a
        // node's resident memory otherwise stays at its peak for as long as it runs. A failed
        // blocking task only means nothing was given back.
        if shed {
            self.handle
                .shed_caches()
                .await
                .map_err(|e| NodeError::Sync(e.to_string()))?;
            let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
        }
        Ok(())
    }

    /// On the network task, once arrivals settled or a local command stored ops: takes in what
    /// the command stored (`local`), presents this node's certificate if it was just admitted,
    /// sheds the caches after enough ops, and brings the views up to date. The error to report,
    /// and whether the caches were shed.
    fn settle(
        replica: &mut Replica,
        store: &mut SharedOps,
        local: bool,
        signer: &Signer,
        hub: &HubId,
        shed_at: &AtomicUsize,
    ) -> (Option<String>, bool) {
        if local && let Err(e) = store.catch_up(replica) {
            return (Some(e.to_string()), false);
        }
        // A member just admitted (here, through what arrived) presents its device's
        // certificate, so that its peers send it the members lane.
        let certified = store.certify_if_admitted(replica, signer);
        // A burst of arrivals has settled: what only sped up taking them in goes, before
        // the views are built (the cached rolls of pasts, up to 4 MiB, are freed for
        // them to reuse rather than adding to the node's peak).
        let held = replica.len();
        let shed = held >= shed_at.load(Ordering::Relaxed) + SHED_AFTER_OPS
            || replica.spare_bytes() >= SHED_SPARE_BYTES;
        if shed {
            replica.shed_caches();
            shed_at.store(held, Ordering::Relaxed);
        }
        let refreshed = store.node().refresh_view(hub, replica);
        if shed {
            // Counting the polls for the views may have resolved past rolls again (a
            // ballot's standing where a roll op was denied): they go too.
            replica.shed_caches();
        }
        (
            refreshed.err().or(certified.err()).map(|e| e.to_string()),
            shed,
        )
    }

    /// For a node at rest (no ops taken in for [`REST_AFTER`]): lets go of what only speeds up
    /// checking the next burst — the certified devices' curve points
    /// (`Replica::forget_points`) — and gives the memory back. True if anything was let go.
    pub async fn rest(&self) -> Result<bool, NodeError> {
        let forgot = self
            .handle
            .with_state(|replica, _: &mut SharedOps| replica.forget_points())
            .await
            .map_err(|e| NodeError::Sync(e.to_string()))?;
        if forgot {
            let _ = tokio::task::spawn_blocking(crate::memory::give_back).await;
        }
        Ok(forgot)
    }

    /// Stops the network task and waits for it.
    pub async fn stop(&self) -> Result<(), NodeError> {
        self.handle.shutdown().await;
        let task = self.task.lock().ok().and_then(|mut task| task.take());
        match task {
            None => Ok(()),
            Some(task) => match task.await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(NodeError::Sync(e.to_string())),
                Err(e) => Err(NodeError::Sync(e.to_string())),
            },
        }
    }

    /// The network's counters.
    async fn net_stats(&self) -> Result<moot_net::NetStats, NodeError> {
        self.handle
            .stats()
            .await
            .map_err(|e| NodeError::Sync(e.to_string()))
    }

    /// One-shot: dials `peers`, takes in what they have until nothing more comes for `quiet`
    /// (or `timeout` passes), then stops.
    pub async fn sync_once(
        self,
        peers: &[String],
        quiet: Duration,
        timeout: Duration,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<SyncReport, NodeError> {
        let report = self
            .sync_until_quiet(peers, quiet, timeout, progress)
            .await?;
        self.stop().await?;
        Ok(report)
    }

    /// Dials `peers` and waits until nothing more has come for `quiet` and nothing is left to
    /// go to them (or `timeout` passes), counting the ops taken in meanwhile; the node keeps
    /// running. A peer already connected counts as synced with (a running node syncs
    /// continuously). Nothing has come when no op was stored and no frame is being read: on a
    /// slow link a frame takes longer than `quiet` to cross (500 KB at 1 Mbit/s: 4 s), and keeps
    /// the wait going. (The frames counted are every peer's: a running node's other peers'
    /// small frames are read in an instant.) Nothing is left to go when no frame for these
    /// peers is queued, sent and not yet acknowledged, or still to be built: a push of this
    /// node's own ops outlasts `quiet` and must not be cut short. Then the peers are asked to
    /// confirm what they hold (an acknowledged frame is one a peer took up, and it may die
    /// before storing it): the sync is complete once each one's heads show it holding
    /// everything this node holds for it; what one lacks is sent again meanwhile.
    /// `progress` is told the ops taken in so far, as they arrive. If every address given has
    /// failed to dial before any peer is reached, the sync ends at once (not complete, no peer,
    /// the errors in [`SyncReport::unreachable`]): the network keeps redialing them with
    /// backoff, but a person waiting on a one-shot sync learns why now, not at the timeout.
    pub async fn sync_until_quiet(
        &self,
        peers: &[String],
        quiet: Duration,
        timeout: Duration,
        progress: &mut (dyn FnMut(u64) + Send),
    ) -> Result<SyncReport, NodeError> {
        let mut events = self
            .handle
            .subscribe()
            .await
            .map_err(|e| NodeError::Sync(e.to_string()))?;
        let mut addrs = parse_addrs(peers)?;
        addrs.sort();
        addrs.dedup();
        // The peers this sync dialed, by the id their addresses end in.
        let dialed: Vec<moot_net::Libp2pPeerId> = addrs.iter().filter_map(peer_named).collect();
        let already = self.net_stats().await?.peers;
        let mut connected: Vec<String> = Vec::new();
        for peer in dialed.iter().filter(|p| already.contains(p)) {
            if !connected.contains(&peer.to_string()) {
                connected.push(peer.to_string());
            }
        }
        self.dial(peers).await?;
        // The last dial error of each address given, while it is not known to have reached its
        // peer.
        let mut failed: std::collections::BTreeMap<Multiaddr, String> =
            std::collections::BTreeMap::new();
        // A timeout past what the clock can add is as good as none (it must not overflow).
        let now = tokio::time::Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + MAX_SYNC_WAIT);
        let mut new_ops = 0u64;
        let mut complete = false;
        // Ops arrive frame after frame: the views and lanes are brought up to date once they
        // settle (`SETTLE`), not after every frame.
        let mut unsettled = false;
        // Frames were still going out at the last look: looked at again soon.
        let mut pushing = false;
        // The peers were asked to confirm what they hold: looked at again soon.
        let mut confirming = false;
        // Confirmations asked of each peer (by id) since it last confirmed, and when the last
        // was asked: a peer whose heads still show a gap after `MAX_CONFIRM_ROUNDS` (what it
        // lacks sent again after each) is not asked again.
        let mut asked: std::collections::BTreeMap<String, (u32, tokio::time::Instant)> =
            std::collections::BTreeMap::new();
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let wait = if connected.is_empty() {
                left
            } else if unsettled {
                SETTLE.min(left)
            } else if pushing || confirming {
                PUSH_POLL.min(left)
            } else {
                quiet.min(left)
            };
            // Nothing happened for a whole quiet spell, if this wait runs out (half the timeout
            // when that is shorter: a sync of a second must be able to end complete).
            let full_spell = !connected.is_empty()
                && !unsettled
                && !pushing
                && !confirming
                && wait >= quiet.min(timeout / 2);
            match tokio::time::timeout(wait, events.recv()).await {
                // A peer of this sync: one it dialed (any, when the addresses name no peer id:
                // whoever answers at them).
                Ok(Ok(NetEvent::Connected { peer, .. }))
                    if dialed.is_empty() || dialed.contains(&peer) =>
                {
                    if !connected.contains(&peer.to_string()) {
                        connected.push(peer.to_string());
                    }
                }
                // An address given reached its peer (or its peer was reached another way). A
                // peer with a sync session already (a second connection to it: an address
                // without its id, given to a running node connected to it) counts as synced
                // with, as one already connected does.
                Ok(Ok(NetEvent::Reached { addr, peer })) => {
                    if addrs.contains(&addr) {
                        failed.remove(&addr);
                        if (dialed.is_empty() || dialed.contains(&peer))
                            && !connected.contains(&peer.to_string())
                            && self.net_stats().await?.peers.contains(&peer)
                        {
                            connected.push(peer.to_string());
                        }
                    }
                }
                Ok(Ok(NetEvent::DialFailed { addr, error })) => {
                    if addrs.contains(&addr) {
                        failed.insert(addr, error);
                    }
                    // Nothing reached and every address failed: no use waiting for the timeout.
                    if connected.is_empty() && !addrs.is_empty() && failed.len() == addrs.len() {
                        break;
                    }
                }
                Ok(Ok(NetEvent::Stored { op_count, .. })) => {
                    new_ops += op_count as u64;
                    progress(new_ops);
                    unsettled = true;
                }
                // A peer of this sync broke the protocol (a running node's other peers are its
                // own business: they are dropped as always, and this sync goes on).
                Ok(Ok(NetEvent::Misbehaved { peer, reason }))
                    if connected.contains(&peer.to_string()) || dialed.contains(&peer) =>
                {
                    return Err(NodeError::Sync(format!("the peer misbehaved: {reason}")));
                }
                Ok(Ok(_)) => {}
                // A slow reader lost some events: the peers of this sync connected meanwhile are
                // read from the network (a `Connected` may have been among those lost), and
                // more ops may have come.
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                    // Only peers the addresses name: a running node's other peers are not this
                    // sync's. With no ids given, the addresses are dialed again: those already
                    // connected answer `Reached` at once.
                    if dialed.is_empty() {
                        self.dial(peers).await?;
                    }
                    for peer in self.net_stats().await?.peers {
                        if dialed.contains(&peer) && !connected.contains(&peer.to_string()) {
                            connected.push(peer.to_string());
                        }
                        failed.retain(|addr, _| peer_named(addr) != Some(peer));
                    }
                    unsettled = true;
                }
                Ok(Err(_)) => break,
                Err(_) if unsettled => {
                    // Settled: this may certify the device and change lanes, so more may come.
                    self.took_in().await?;
                    unsettled = false;
                }
                Err(_) => {
                    // Quiet, unless a frame is still crossing (its length read, its body not
                    // yet whole); this node still has frames for a peer of this sync (its own
                    // ops on their way out: ending now would cut the push short), or had at the
                    // last look (the peer takes a frame up before it handles it, and sends
                    // nothing meanwhile: a whole quiet spell follows a push); or a peer of this
                    // sync lost its connection (waited for, its redial, until the timeout).
                    let stats = self.net_stats().await?;
                    let was_pushing = pushing;
                    pushing = stats
                        .sending_to
                        .iter()
                        .any(|p| connected.contains(&p.to_string()));
                    let still_there = connected
                        .iter()
                        .all(|c| stats.peers.iter().any(|p| p.to_string() == *c));
                    if stats.frames_arriving == 0 && !pushing && !was_pushing && still_there {
                        // Everything went out and was taken up; whether the peers kept it,
                        // only their heads tell (a peer takes a frame up before it stores it,
                        // and may die in between): they are asked, and what they lack goes
                        // again.
                        let unconfirmed: Vec<moot_net::Libp2pPeerId> = stats
                            .peers
                            .iter()
                            .filter(|p| {
                                connected.contains(&p.to_string()) && !stats.confirmed.contains(p)
                            })
                            .copied()
                            .collect();
                        // A round that confirmed is not held against a peer: more ops stored
                        // here later (a running node's other peers') are asked about afresh.
                        for (peer, (rounds, _)) in asked.iter_mut() {
                            if stats.confirmed.iter().any(|c| c.to_string() == *peer) {
                                *rounds = 0;
                            }
                        }
                        if unconfirmed.is_empty() {
                            if full_spell {
                                complete = !connected.is_empty();
                                break;
                            }
                            // Confirmed since the last quiet spell: one more, so that what the
                            // confirmation set moving (a peer that found this node lacking
                            // something streams it) arrives before the sync ends.
                            confirming = false;
                        } else {
                            // Not one already asked and not yet answered, nor one asked less
                            // than `CONFIRM_INTERVAL` ago (each round costs the peer one of its
                            // 16 sets of heads a resync interval).
                            let now = tokio::time::Instant::now();
                            let ask: Vec<moot_net::Libp2pPeerId> = unconfirmed
                                .into_iter()
                                .filter(|p| !stats.confirming.contains(p))
                                .filter(|p| {
                                    asked.get(&p.to_string()).is_none_or(|(_, at)| {
                                        now.saturating_duration_since(*at) >= CONFIRM_INTERVAL
                                    })
                                })
                                .collect();
                            if ask.iter().any(|p| {
                                asked
                                    .get(&p.to_string())
                                    .is_some_and(|(rounds, _)| *rounds >= MAX_CONFIRM_ROUNDS)
                            }) {
                                // Its heads never show what was sent (it keeps a lane from
                                // this node, or its heads are past the bounds a set carries):
                                // not complete, and not worth more rounds.
                                break;
                            }
                            for p in &ask {
                                let (rounds, at) = asked.entry(p.to_string()).or_insert((0, now));
                                *rounds += 1;
                                *at = now;
                            }
                            if !ask.is_empty() {
                                self.handle
                                    .confirm(ask)
                                    .await
                                    .map_err(|e| NodeError::Sync(e.to_string()))?;
                            }
                            confirming = true;
                        }
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                break;
            }
        }
        if unsettled {
            self.took_in().await?;
        }
        Ok(SyncReport {
            unreachable: failed
                .into_iter()
                .map(|(addr, error)| Unreachable {
                    addr: addr.to_string(),
                    error,
                })
                .collect(),
            peers: connected,
            new_ops,
            complete,
        })
    }
}

/// What a ticket carries: the hub and where a node serving it listens.
#[derive(Debug, Serialize, Deserialize)]
struct Ticket {
    hub: [u8; 32],
    addrs: Vec<String>,
}

/// Longest ticket accepted, in characters.
pub const MAX_TICKET_CHARS: usize = 4096;
const TICKET_PREFIX: &str = "moot1";

/// A ticket for `hub` at `addrs` (multiaddrs with `/p2p/NODE_ID`): what another node needs to
/// join (`moot hub join`). Text: `moot1` and the hex of its postcard encoding.
/// Addresses [`Node::remember_peers`] keeps per hub at most.
pub const MAX_KNOWN_PEERS: usize = 16;
/// The longest address kept.
pub const MAX_PEER_ADDR: usize = 512;

fn peers_key(hub: &HubId) -> String {
    format!("known_peers/{hub}")
}

/// Addresses a ticket carries, at most (more and `parse_ticket` refuses it).
pub const MAX_TICKET_ADDRS: usize = 16;

/// The addresses a ticket should carry, from those given as reachable from outside (`external`,
/// first, as given) and those listened on (`listening`, with /p2p/NODE_ID): addresses other
/// machines can dial first — IPv4, then IPv6 (not link-local: without the interface's zone it
/// cannot be dialed) — then relayed ones, and this machine's loopback only if there is nothing
/// else (a node started before the Wi-Fi came up); each once, at most [`MAX_TICKET_ADDRS`].
/// Within a rank TCP comes first, then the addresses by text: the order the interfaces were
/// reported in changes nothing, so a node restarted on the same ports gives the same ticket.
pub fn ticket_addrs(external: &[String], listening: &[String]) -> Vec<String> {
    use moot_net::Protocol;
    // Lower ranks first; `None` for an address no other machine could use.
    let rank = |text: &str| -> Option<u8> {
        let addr: Multiaddr = text.parse().ok()?;
        if addr.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return Some(3);
        }
        match addr.iter().next()? {
            Protocol::Ip4(ip) if ip.is_unspecified() => None,
            Protocol::Ip4(ip) if ip.is_loopback() => Some(4),
            Protocol::Ip4(_) => Some(1),
            Protocol::Ip6(ip) if ip.is_unspecified() => None,
            Protocol::Ip6(ip) if ip.is_loopback() => Some(4),
            Protocol::Ip6(ip) if ip.segments()[0] & 0xffc0 == 0xfe80 => None,
            Protocol::Ip6(_) => Some(2),
            Protocol::Dns(_) | Protocol::Dns4(_) | Protocol::Dns6(_) => Some(1),
            _ => None,
        }
    };
    // Given ones in their order; the others by rank, TCP before the rest, then by text: the
    // same ticket whatever order the interfaces were reported in.
    let mut ranked: Vec<(u8, usize, bool, &String)> = external
        .iter()
        .enumerate()
        .map(|(i, a)| (0, i, false, a))
        .chain(listening.iter().filter_map(|a| {
            let not_tcp = !a.contains("/tcp/") || a.contains("/p2p-circuit");
            Some((rank(a)?, 0, not_tcp, a))
        }))
        .collect();
    ranked.sort();
    let others = ranked.iter().any(|(rank, ..)| *rank < 4);
    let mut out: Vec<String> = Vec::new();
    for (rank, _, _, addr) in ranked {
        if (rank == 4 && others) || out.contains(addr) {
            continue;
        }
        if out.len() == MAX_TICKET_ADDRS {
            break;
        }
        out.push(addr.clone());
    }
    out
}

/// A ticket for `hub` with as many of `addrs` as fit, in their order (a ticket longer than
/// [`parse_ticket`] reads is no ticket: relayed addresses are ~150 characters each). An error if
/// not even the first fits.
pub fn make_ticket_fitting(hub: &HubId, addrs: &[String]) -> Result<String, NodeError> {
    let mut take = addrs.len().min(MAX_TICKET_ADDRS);
    loop {
        let ticket = make_ticket(hub, &addrs[..take])?;
        if ticket.len() <= MAX_TICKET_CHARS || take <= 1 {
            return Ok(ticket);
        }
        take -= 1;
    }
}

pub fn make_ticket(hub: &HubId, addrs: &[String]) -> Result<String, NodeError> {
    let ticket = Ticket {
        hub: hub.0,
        addrs: addrs.to_vec(),
    };
    let bytes = postcard::to_allocvec(&ticket).map_err(|e| NodeError::Corrupt(e.to_string()))?;
    Ok(format!("{TICKET_PREFIX}{}", hex::encode(bytes)))
}

/// The hub and addresses of a ticket.
pub fn parse_ticket(text: &str) -> Result<(HubId, Vec<String>), NodeError> {
    let bad = |reason: &str| NodeError::BadText {
        what: "ticket",
        reason: reason.to_string(),
    };
    let text = text.trim();
    if text.len() > MAX_TICKET_CHARS {
        return Err(bad("is too long"));
    }
    let hex_part = text
        .strip_prefix(TICKET_PREFIX)
        .ok_or_else(|| bad("is not a moot ticket (one starts with \"moot1\")"))?;
    let bytes = hex::decode(hex_part).map_err(|_| bad("is damaged (not hexadecimal)"))?;
    // All of it: a ticket with bytes after its end was damaged (or added to) on its way.
    let ticket: Ticket = match postcard::take_from_bytes(&bytes) {
        Ok((ticket, [])) => ticket,
        _ => return Err(bad("is damaged")),
    };
    if ticket.addrs.is_empty() || ticket.addrs.len() > MAX_TICKET_ADDRS {
        return Err(bad("names no address, or too many"));
    }
    parse_addrs(&ticket.addrs)?;
    Ok((HubId(ticket.hub), ticket.addrs))
}

/// The name a hub is recorded under while it is being joined, until its genesis arrives.
pub const JOINING_NAME: &str = "(joining)";

impl Node {
    /// Before joining `hub`: records it (named "(joining)" until its genesis arrives) and makes
    /// it the default hub on a node without one. Returns false if the hub was known already.
    pub fn prepare_join(&self, hub: &HubId) -> Result<bool, NodeError> {
        if self.store()?.hubs()?.iter().any(|(h, _)| h == hub) {
            return Ok(false);
        }
        let record = crate::HubRecord {
            name: JOINING_NAME.into(),
        };
        let bytes =
            postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let default = self.store()?.config(crate::DEFAULT_HUB)?.is_none();
        let config: Vec<(&str, &[u8])> = if default {
            vec![(crate::DEFAULT_HUB, &hub.0)]
        } else {
            Vec::new()
        };
        self.store()?.create_hub(hub, &bytes, &[], &config)?;
        Ok(true)
    }

    /// Remembers where nodes serving `hub` were reached (a ticket's addresses): `moot serve`
    /// keeps them connected along with its `--peer`s. Newest first, at most
    /// [`MAX_KNOWN_PEERS`]; an address longer than [`MAX_PEER_ADDR`] bytes is not kept.
    pub fn remember_peers(&self, hub: &HubId, addrs: &[String]) -> Result<(), NodeError> {
        let mut known: Vec<String> = Vec::new();
        let fresh = addrs
            .iter()
            .filter(|a| !a.is_empty() && a.len() <= MAX_PEER_ADDR)
            .cloned();
        for addr in fresh.chain(self.known_peers(hub).unwrap_or_default()) {
            if !known.contains(&addr) {
                known.push(addr);
            }
        }
        known.truncate(MAX_KNOWN_PEERS);
        let bytes = postcard::to_allocvec(&known).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.store()?.put_config(&peers_key(hub), &bytes)?;
        Ok(())
    }

    /// The addresses [`Node::remember_peers`] kept for `hub` (none: an empty list). A damaged
    /// record is an error (`serve` says so and goes on without it).
    pub fn known_peers(&self, hub: &HubId) -> Result<Vec<String>, NodeError> {
        match self.store()?.config(&peers_key(hub))? {
            None => Ok(Vec::new()),
            Some(bytes) => {
                let known: Vec<String> = postcard::from_bytes(&bytes)
                    .map_err(|_| NodeError::Corrupt(format!("{} (known peers)", peers_key(hub))))?;
                Ok(known
                    .into_iter()
                    .filter(|a| a.len() <= MAX_PEER_ADDR)
                    .take(MAX_KNOWN_PEERS)
                    .collect())
            }
        }
    }

    /// After a join's first sync: names the hub from its genesis. Returns the name.
    pub fn name_from_genesis(&self, hub: &HubId) -> Result<String, NodeError> {
        let name = self
            .genesis_name(hub)?
            .ok_or_else(|| NodeError::Sync("the hub's genesis did not arrive".into()))?;
        let record = crate::HubRecord {
            name: crate::clean_text("hub name", &name)?,
        };
        let bytes =
            postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.store()?.create_hub(hub, &bytes, &[], &[])?;
        Ok(record.name)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use moot_state::body::Certificate;
    use moot_state::{Limits, Replica, sample};

    use super::*;

    fn credential_of(member: &moot_crypto::SecretKey, hub: &HubId, device: &PublicKey) -> Vec<u8> {
        postcard::to_allocvec(&Credential {
            member: member.public().to_bytes(),
            certificate: Certificate::issue(member, hub, device),
        })
        .unwrap()
    }

    /// A ticket reads back as made; one cut short, added to or altered is damaged, with a
    /// message that reads as a sentence.
    #[test]
    fn a_ticket_reads_back_whole_and_nothing_else_does() {
        let hub = HubId([5; 32]);
        let addrs = vec!["/ip4/127.0.0.1/tcp/4101".to_string()];
        let ticket = make_ticket(&hub, &addrs).unwrap();
        assert_eq!(parse_ticket(&ticket).unwrap(), (hub, addrs));
        for bad in [
            format!("{ticket}00"),
            format!("{ticket}0000"),
            ticket[..ticket.len() - 2].to_string(),
            format!("{ticket}0"),
        ] {
            let e = parse_ticket(&bad).unwrap_err().to_string();
            assert!(e.starts_with("the ticket is damaged"), "{bad}: {e}");
        }
    }

    /// A ticket carries what other machines can dial: the addresses given as reachable first,
    /// then LAN and internet addresses, relayed ones, and loopback only when there is nothing
    /// else; never an unspecified or IPv6 link-local address; each once; at most 16, so that it
    /// always reads back.
    #[test]
    fn a_ticket_carries_the_addresses_other_machines_can_dial() {
        let p2p = "/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp";
        let at = |a: &str| format!("{a}{p2p}");
        let listening = vec![
            at("/ip4/127.0.0.1/tcp/4242"),
            at("/ip6/::1/tcp/4242"),
            at("/ip6/fe80::1/tcp/4242"),
            at("/ip6/2001:db8::7/tcp/4242"),
            at("/ip4/192.168.1.20/tcp/4242"),
            at("/ip4/192.168.1.20/udp/4242/quic-v1"),
            at(
                "/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWKSFC31sJSgLSMTmMyfQfJCu4XbtMLD2otATqfYLAuQeR/p2p-circuit",
            ),
            at("/ip4/192.168.1.20/tcp/4242"),
        ];
        let external = vec![at("/ip4/198.51.100.9/tcp/4242")];
        assert_eq!(
            ticket_addrs(&external, &listening),
            vec![
                at("/ip4/198.51.100.9/tcp/4242"),
                at("/ip4/192.168.1.20/tcp/4242"),
                at("/ip4/192.168.1.20/udp/4242/quic-v1"),
                at("/ip6/2001:db8::7/tcp/4242"),
                at(
                    "/ip4/203.0.113.5/tcp/4001/p2p/12D3KooWKSFC31sJSgLSMTmMyfQfJCu4XbtMLD2otATqfYLAuQeR/p2p-circuit"
                ),
            ]
        );
        // Reported in another order: the same ticket.
        let reversed: Vec<String> = listening.iter().rev().cloned().collect();
        assert_eq!(
            ticket_addrs(&external, &reversed),
            ticket_addrs(&external, &listening)
        );
        // Loopback alone: kept (this machine's other nodes can still use it).
        let alone = vec![at("/ip4/127.0.0.1/tcp/4242"), at("/ip4/0.0.0.0/tcp/1")];
        assert_eq!(
            ticket_addrs(&[], &alone),
            vec![at("/ip4/127.0.0.1/tcp/4242")]
        );
        // A machine with many interfaces: the ticket still reads back.
        let many: Vec<String> = (1..40)
            .map(|n| at(&format!("/ip4/10.0.{n}.1/tcp/4242")))
            .collect();
        let addrs = ticket_addrs(&[], &many);
        assert_eq!(addrs.len(), MAX_TICKET_ADDRS);
        let ticket = make_ticket(&HubId([5; 32]), &addrs).unwrap();
        assert_eq!(parse_ticket(&ticket).unwrap().1, addrs);
        // Sixteen relayed addresses (~150 characters each) are too long for one ticket: as
        // many as fit go, in their order, and it reads back.
        let relayed: Vec<String> = (1..=16)
            .map(|n| {
                at(&format!(
                    "/ip4/203.0.113.{n}/tcp/4001/p2p/12D3KooWKSFC31sJSgLSMTmMyfQfJCu4XbtMLD2otATqfYLAuQeR/p2p-circuit"
                ))
            })
            .collect();
        let too_long = make_ticket(&HubId([5; 32]), &relayed).unwrap();
        assert!(parse_ticket(&too_long).is_err());
        let fitting = make_ticket_fitting(&HubId([5; 32]), &relayed).unwrap();
        let (_, kept) = parse_ticket(&fitting).unwrap();
        assert!(
            !kept.is_empty() && kept.len() < relayed.len(),
            "{}",
            kept.len()
        );
        assert_eq!(kept[..], relayed[..kept.len()]);
    }

    /// A roll with the founder and two members, each with a certified device.
    fn roll() -> (HubId, Roll) {
        let (hub, ops) = sample::history(2, 0);
        let mut replica = Replica::new(hub, Limits::default());
        replica.insert_batch(&ops);
        (hub, replica.roll())
    }

    #[test]
    fn lanes_follow_the_roll_and_a_members_certificate_vouches_for_a_new_device() {
        let (hub, mut roll) = roll();
        let certified = sample::key(2, 1).public();
        let new_device = sample::key(3, 9).public();
        let member = sample::key(1, 1);
        let vouched = credential_of(&member, &hub, &new_device);
        assert_eq!(lanes_by_roll(&roll, &hub, &certified, None), Lanes::ALL);
        assert_eq!(lanes_by_roll(&roll, &hub, &new_device, None), Lanes::PUBLIC);
        assert_eq!(
            lanes_by_roll(&roll, &hub, &new_device, Some(&vouched)),
            Lanes::ALL
        );
        roll.members_only = true;
        assert_eq!(lanes_by_roll(&roll, &hub, &new_device, None), Lanes::NONE);
        assert_eq!(
            lanes_by_roll(&roll, &hub, &new_device, Some(&vouched)),
            Lanes::ALL
        );
        // A certificate of another device, for another hub, or by someone not on the roll
        // vouches for nothing.
        let other = credential_of(&member, &hub, &certified);
        assert_eq!(
            lanes_by_roll(&roll, &hub, &new_device, Some(&other)),
            Lanes::NONE
        );
        let elsewhere = credential_of(&member, &HubId([9; 32]), &new_device);
        assert_eq!(
            lanes_by_roll(&roll, &hub, &new_device, Some(&elsewhere)),
            Lanes::NONE
        );
        let stranger = credential_of(&sample::key(1, 99), &hub, &new_device);
        assert_eq!(
            lanes_by_roll(&roll, &hub, &new_device, Some(&stranger)),
            Lanes::NONE
        );
    }

    /// What a node presents is sealed for each peer: the peer it was made for opens it and
    /// lets the member's new device in; a stranger's node, one of another hub, or any other
    /// device gets bytes that show neither the member nor the certificate, and that vouch for
    /// nothing; an unsealed credential (what nodes presented before) vouches for nothing.
    #[test]
    fn a_credential_is_sealed_for_the_peer_it_is_presented_to() {
        let (hub, mut roll) = roll();
        roll.members_only = true;
        let member = sample::key(1, 1);
        let new_device = sample::key(3, 9);
        let signer = Signer {
            member: member.clone(),
            device: new_device.clone(),
        };
        let presenter = presenter(&signer, &hub).unwrap();
        let hall = sample::key(2, 1).public();
        let stranger = sample::key(7, 7).public();
        let me = new_device.public();
        let plain = credential(&signer, &hub).unwrap();
        let to_hall = presenter.for_device(&hall);
        let to_stranger = presenter.for_device(&stranger);
        assert_ne!(to_hall, to_stranger);
        for sealed in [&to_hall, &to_stranger] {
            for secret in [member.public().to_bytes().as_slice(), &plain[32..64]] {
                assert!(
                    !sealed.windows(secret.len()).any(|w| w == secret),
                    "the sealed credential shows what it seals"
                );
            }
        }
        assert_eq!(
            lanes_for_presented(&roll, &hub, &hall, &me, Some(&to_hall)),
            Lanes::ALL
        );
        // Sealed for another device, or opened as another hub, it vouches for nothing.
        assert_eq!(
            lanes_for_presented(&roll, &hub, &hall, &me, Some(&to_stranger)),
            Lanes::NONE
        );
        assert_eq!(
            lanes_for_presented(&roll, &HubId([9; 32]), &hall, &me, Some(&to_hall)),
            Lanes::NONE
        );
        assert_eq!(
            lanes_for_presented(&roll, &hub, &hall, &me, Some(&plain)),
            Lanes::NONE
        );
        assert_eq!(
            lanes_for_presented(&roll, &hub, &hall, &me, None),
            Lanes::NONE
        );
    }

    /// A credential comes from a peer: random and mutated bytes give a stranger's lanes (or,
    /// for a mutation that decodes to the same credential, the member's), never a panic.
    #[test]
    fn hostile_credentials_vouch_for_nothing() {
        let (hub, mut roll) = roll();
        roll.members_only = true;
        let device = sample::key(3, 9).public();
        let valid = credential_of(&sample::key(1, 1), &hub, &device);
        let decoded = |bytes: &[u8]| {
            postcard::from_bytes::<Credential>(bytes)
                .ok()
                .map(|c| (c.member, c.certificate))
        };
        let original = decoded(&valid);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 160) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                let mut bytes = valid.clone();
                for _ in 0..1 + next() % 4 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] ^= 1 << (next() % 8);
                }
                if next() % 4 == 0 {
                    bytes.truncate((next() as usize) % bytes.len());
                }
                bytes
            };
            let lanes = lanes_by_roll(&roll, &hub, &device, Some(&bytes));
            if lanes != Lanes::NONE {
                assert_eq!(lanes, Lanes::ALL);
                assert_eq!(decoded(&bytes), original, "{bytes:?}");
            }
        }
    }
}
