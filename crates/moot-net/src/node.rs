//! The sync engine on the network: [`NetNode`] owns a libp2p swarm, a [`moot_sync::Engine`],
//! the node's [`Replica`] and its [`OpStore`], and drives them on tokio; [`NetHandle`] talks
//! to it from other tasks.
//!
//! The driver is thin, in the manner of quinn over quinn-proto: a connection up is
//! [`Engine::connect`] (the side that dialed is the [`Role::Dialer`]), a frame received is
//! [`Engine::handle_frame`], what [`Engine::poll_transmit`] yields is sent, time comes from a
//! real clock (milliseconds since the node was made) through [`Engine::poll_timeout`] and
//! [`Engine::handle_timeout`], and a peer the engine reports ([`Event::Misbehaved`]) is
//! disconnected. The lanes a peer may receive are the caller's decision ([`LanesFor`], from
//! the roll), asked when the peer connects and again on [`NetHandle::reevaluate_lanes`].
//!
//! # Bounds
//! One frame in flight per peer (the next is sent when the peer acknowledges the last, so
//! frames arrive in order and a slow peer is not flooded; a frame is acknowledged as its
//! handling starts, so the next one crosses meanwhile and waits: two per honest peer); at most
//! [`NetConfig::max_queued_frames`] frames queued per peer, after which the engine builds
//! no frame for that peer until it drains (the others are served meanwhile: a slow peer holds
//! up no other); a lane taken from a peer takes the frames queued for it with it (they were
//! built before, and may hold ops of that lane); connections limited in number
//! ([`NetConfig`]); commands queued in a bounded channel; at most [`MAX_TARGETS`] peers kept
//! connected on purpose.
//!
//! The run loop never waits while a peer could be sent a frame: acknowledgements are taken in
//! at several points of a turn (whenever frames are handed to their connections), so the
//! pump sends what they freed before it stops, not on the next event — there may be none
//! (a heads exchange waited 30 s for its next part that way).
//!
//! # Transports and reachability
//! TCP (Noise, Yamux) and QUIC (`/udp/PORT/quic-v1`, TLS 1.3 built in) side by side; a relay
//! client on every node, so a listen address `/…/p2p/RELAY/p2p-circuit` makes the node
//! reachable through a relay, and DCUtR to upgrade a relayed connection to a direct one where
//! NAT allows; optionally a relay server ([`NetConfig::relay_server`]) for an always-on branch
//! node.
//!
//! # Staying connected
//! A peer dialed on purpose ([`NetHandle::dial`], [`NetConfig::bootstrap`]) is kept connected:
//! a failed dial or a closed connection is followed by another dial after
//! [`Backoff::delay`] (1 s doubling to 60 s, seeded jitter), reset once connected. A relay
//! listen address whose reservation is lost is listened on again the same way.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::error::Error as StdError;
use std::time::Duration;

use libp2p::core::ConnectedPoint;
use libp2p::core::transport::ListenerId;
use libp2p::futures::{FutureExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, connection_limits, dcutr, identify, identity::Keypair, mdns,
    noise, ping, relay, tcp, yamux,
};
use moot_crypto::PublicKey;
use moot_state::Replica;
use moot_sync::{Engine, EngineError, Event, Incoming, Lanes, OpStore, PeerId, Role, SyncError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::backoff::{self, Backoff};
use crate::device_of;
use crate::protocol::{self, Ack, Frame, SyncCodec, SyncRequest};

/// The protocol version this node announces in identify (`/ipfs/id/1.0.0`): Moot, network
/// version 2. Bumped with an incompatible change to the set of protocols below.
pub const PROTOCOL_VERSION: &str = "moot/2";
/// Peers kept connected on purpose (explicit and bootstrap), at most.
pub const MAX_TARGETS: usize = 256;
/// Failures counted against a kept peer that misbehaved: its next dial waits the longest.
const MISBEHAVED_FAILURES: u32 = 16;
/// Callers waiting for listen addresses, at most (more get an empty answer at once).
const MAX_LISTEN_WAITERS: usize = 64;

/// Whether the node looks for peers on the local network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Discovery {
    /// Only the peers dialed ([`NetHandle::dial`]). Tests and CI always use this: mDNS
    /// multicasts on every non-loopback interface.
    #[default]
    Off,
    /// mDNS on the LAN: peers found are dialed.
    Mdns,
}

/// How a [`NetNode`] runs. Plain data, built by the caller.
#[derive(Debug, Clone)]
pub struct NetConfig {
    /// Addresses to listen on: TCP (`/ip4/127.0.0.1/tcp/0`), QUIC
    /// (`/ip4/127.0.0.1/udp/0/quic-v1`), or through a relay
    /// (`/ip4/…/tcp/PORT/p2p/RELAY/p2p-circuit`: the node books a reservation there and is
    /// reachable as that address followed by `/p2p/<its id>`). Default: none.
    pub listen: Vec<Multiaddr>,
    /// Peers dialed at start and kept connected, like those given to [`NetHandle::dial`]
    /// (redialed with [`NetConfig::backoff`]). Default: none; no public bootstrap node is
    /// built in.
    pub bootstrap: Vec<Multiaddr>,
    /// Redial delays for peers kept connected and relay listen addresses.
    pub backoff: Backoff,
    /// Mixed with the node's peer id to seed the redial jitter. Default 0.
    pub jitter_seed: u64,
    /// Serve as a relay for other nodes (circuit relay v2), with these limits. Default: off.
    pub relay_server: Option<RelayServer>,
    /// Addresses this node announces as reachable from outside (a public address forwarded
    /// to it). A relay server also announces every address it listens on. Default: none.
    pub external: Vec<Multiaddr>,
    /// Local discovery. Default [`Discovery::Off`].
    pub discovery: Discovery,
    /// The sync engine's bounds and timings.
    pub engine: moot_sync::Config,
    /// Established connections, at most. Default 64.
    pub max_connections: u32,
    /// Established connections to one peer, at most. Default 2 (so a simultaneous dial from
    /// both sides does not close both connections).
    pub max_connections_per_peer: u32,
    /// Incoming connections still handshaking, at most. Default 16.
    pub max_pending_incoming: u32,
    /// Incoming connections from one IP address (an IPv6 /64), at most: peer ids cost nothing
    /// to make, so one machine could otherwise take every place. Relayed connections are not
    /// counted, nor this machine's unless [`NetConfig::limit_loopback`]. Default 16: a branch
    /// office of a dozen devices behind one NAT still reaches an always-on node. Peers found by
    /// mDNS are not dialed past it either.
    pub max_connections_per_ip: u32,
    /// New incoming connections from one IP address (an IPv6 /64) per minute, at most, counted
    /// as [`NetConfig::max_connections_per_ip`] is. Each starts a sync session, whose exchange
    /// of heads costs this node a pass over its chains and often a walk of its store, so a peer
    /// connecting and closing in a loop must not buy that without end. Default 60: a dozen
    /// devices behind one NAT all (re)connecting at once, twice over, fit.
    pub max_new_connections_per_ip: u32,
    /// How long the IP address of a peer disconnected for misbehaving (forged ops, garbage
    /// frames) is refused: reconnecting under a new key must cost more than a handshake.
    /// Default 60 s.
    pub misbehaviour_ban: Duration,
    /// Apply the limits per IP address and the ban to loopback too (tests).
    /// Default false.
    pub limit_loopback: bool,
    /// Outgoing connections being dialed, at most (mDNS answers from the LAN, which anyone may
    /// send, would otherwise each open a socket). Default 16.
    pub max_pending_outgoing: u32,
    /// A peer that may receive nothing of the hub (an unknown device of a members-only hub, a
    /// removed member's) and sends no ops that are stored here is disconnected after this
    /// long: it would hold one of [`NetConfig::max_connections`] for nothing. Not on a relay
    /// server, which relays for peers it sends nothing to, and never a peer kept on purpose
    /// (dialed, bootstrap, a relay this node listens through). Default 60 s.
    pub stranger_grace: Duration,
    /// One frame's exchange (send, handle, acknowledge) must finish within this. Default
    /// 120 s: a frame is up to 1 MiB, which takes 84 s to cross a 100 kbit/s link (with 30 s,
    /// a frame of 500 KB could never cross 128 kbit/s: the session timed out and started again
    /// without end). A peer that has gone away is found by ping long before.
    pub request_timeout: Duration,
    /// A connection with no stream open for this long is closed. Default 120 s (a sync
    /// session's dialer sends something at least every `moot_sync::Config::keepalive_ms`, which
    /// the node keeps under half of this, so a session never goes idle).
    pub idle_timeout: Duration,
    /// Frames queued for one peer, at most (each ≤ `MAX_MESSAGE_BYTES`). Default 4.
    pub max_queued_frames: usize,
    /// Commands from handles queued, at most. Default 64.
    pub max_commands: usize,
    /// Events kept for subscribers, at most (older ones are lost to a slow subscriber).
    /// Default 1024.
    pub max_events: usize,
    /// What to present to a peer's device at the start of each session (the engine's
    /// `Present` message, at most `moot_sync::wire::MAX_CREDENTIAL_BYTES`): what lets a peer
    /// that has not yet seen this device's certification give it a member's lanes. Made for
    /// each peer, so that it can be sealed for that peer alone. Default none.
    pub credential: Option<Presenter>,
    /// Called, with the replica, when ops that may narrow a peer's lanes (any public-lane roll
    /// op but a public name: `moot_sync::engine::may_narrow_lanes`; most frames of a hub's
    /// first sync) were stored from a peer, before the lanes are judged again and before
    /// anything more is sent: whatever [`LanesFor`] reads must be brought up to date here, and
    /// cheaply. Default none.
    pub on_narrowing: Option<RollWatch>,
}

/// What [`NetConfig::on_narrowing`] calls.
#[derive(Clone)]
pub struct RollWatch(std::sync::Arc<dyn Fn(&mut Replica) + Send + Sync>);

impl RollWatch {
    /// Calls `watch` with the replica each time.
    pub fn new(watch: impl Fn(&mut Replica) + Send + Sync + 'static) -> Self {
        RollWatch(std::sync::Arc::new(watch))
    }
}

impl std::fmt::Debug for RollWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RollWatch(..)")
    }
}

/// Makes what this node presents to a peer's device ([`NetConfig::credential`]).
#[derive(Clone)]
pub struct Presenter(std::sync::Arc<MakePresented>);

/// What [`Presenter`] calls: the bytes for one peer's device.
type MakePresented = dyn Fn(&PublicKey) -> Vec<u8> + Send + Sync;

impl Presenter {
    /// Presents `make(peer's device)` to each peer.
    pub fn new(make: impl Fn(&PublicKey) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Presenter(std::sync::Arc::new(make))
    }

    /// What to present to `device`.
    pub fn for_device(&self, device: &PublicKey) -> Vec<u8> {
        (self.0)(device)
    }
}

impl std::fmt::Debug for Presenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Presenter(..)")
    }
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: Vec::new(),
            bootstrap: Vec::new(),
            backoff: Backoff::default(),
            jitter_seed: 0,
            relay_server: None,
            external: Vec::new(),
            discovery: Discovery::Off,
            engine: moot_sync::Config::default(),
            max_connections: 64,
            max_connections_per_peer: 2,
            max_pending_incoming: 16,
            max_pending_outgoing: 16,
            stranger_grace: Duration::from_secs(60),
            request_timeout: Duration::from_secs(120),
            idle_timeout: Duration::from_secs(120),
            max_queued_frames: 4,
            max_commands: 64,
            max_events: 1024,
            max_connections_per_ip: 16,
            max_new_connections_per_ip: 60,
            misbehaviour_ban: Duration::from_secs(60),
            limit_loopback: false,
            credential: None,
            on_narrowing: None,
        }
    }
}

/// The limits of a relay server ([`NetConfig::relay_server`]). A circuit that reaches a limit
/// is closed; the two peers redial and resume with a fresh exchange of heads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RelayServer {
    /// Reservations (peers reachable through this relay), at most. Default 128.
    pub max_reservations: usize,
    /// Reservations per peer, at most. Default 4.
    pub max_reservations_per_peer: usize,
    /// Circuits open at once, at most. Default 64.
    pub max_circuits: usize,
    /// Circuits per peer, at most. Default 8.
    pub max_circuits_per_peer: usize,
    /// A circuit's lifetime, at most. Default 30 min (libp2p's default, 2 min, would cut a long
    /// first sync short).
    pub max_circuit_duration: Duration,
    /// Bytes relayed per circuit, at most. Default 64 MiB (libp2p's default is 128 KiB).
    pub max_circuit_bytes: u64,
}

impl Default for RelayServer {
    fn default() -> Self {
        RelayServer {
            max_reservations: 128,
            max_reservations_per_peer: 4,
            max_circuits: 64,
            max_circuits_per_peer: 8,
            max_circuit_duration: Duration::from_secs(30 * 60),
            max_circuit_bytes: 64 << 20,
        }
    }
}

/// The lanes a peer's device may receive, given what it presented (if anything): the caller's
/// decision, from the roll (members get [`Lanes::ALL`], guests and unknown devices
/// [`Lanes::PUBLIC`] or [`Lanes::NONE`]).
pub type LanesFor = Box<dyn FnMut(&PublicKey, Option<&[u8]>) -> Lanes + Send>;

/// Why the node could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NetError {
    /// The transport or behaviour could not be built.
    #[error("transport: {0}")]
    Transport(String),
    /// An address could not be listened on.
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A dial could not be started.
    #[error("dial: {0}")]
    Dial(String),
    /// The store failed (a store that cannot write cannot acknowledge ops: the node stops).
    #[error(transparent)]
    Sync(#[from] SyncError),
    /// The engine refused a call (a bug in the driver).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The node is no longer running.
    #[error("the node has stopped")]
    Stopped,
}

/// Counters, for tests and diagnostics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetStats {
    /// Peers with a sync session, by libp2p peer id.
    pub peers: Vec<libp2p::PeerId>,
    /// Peers disconnected because the engine reported them, or their stream broke the
    /// protocol (since start).
    pub disconnected_for_misbehaviour: u64,
    /// Dials made again after a failure or a lost connection (since start).
    pub redials: u64,
    /// The engine's counters.
    pub engine: moot_sync::Stats,
    /// Frames on their way in now: their length read, their body not yet whole (on a slow
    /// link, for seconds).
    pub frames_arriving: u64,
    /// Peers this node still has frames for: queued, or sent and not yet acknowledged (taken
    /// up by the peer), or still to be built by the engine (`Engine::sending_to`). A one-shot
    /// sync ends only once its peers are off this list, or it would stop mid-push.
    pub sending_to: Vec<libp2p::PeerId>,
    /// Peers whose heads showed them holding, stored, everything this node holds for them in
    /// the lanes their heads speak for (those they give this node: `Engine::holds_all`, by
    /// the lanes this node's own device may receive; asked for with [`NetHandle::confirm`]).
    /// An acknowledged frame is one the peer took up, not one it kept: a one-shot sync is
    /// complete only once its peers are on this list.
    pub confirmed: Vec<libp2p::PeerId>,
    /// Peers asked to confirm whose answer has not come yet (`Engine::confirming`).
    pub confirming: Vec<libp2p::PeerId>,
}

/// What happened on the network, for the node above (views to refresh, merge reports, logs).
/// Sent on a bounded broadcast channel ([`NetHandle::subscribe`]): a receiver that falls
/// behind loses the oldest events, never slows the node.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NetEvent {
    /// A sync session started with a peer's device.
    Connected {
        /// The peer.
        peer: libp2p::PeerId,
        /// Its device key.
        device: PublicKey,
        /// The lanes it may receive.
        lanes: Lanes,
        /// The connection goes through a relay (`/p2p-circuit`).
        relayed: bool,
    },
    /// The session ended (the last connection closed).
    Disconnected {
        /// The peer.
        peer: libp2p::PeerId,
    },
    /// Ops from a peer were validated and stored.
    Stored {
        /// The peer.
        peer: libp2p::PeerId,
        /// Ops stored.
        op_count: usize,
    },
    /// The addresses this node listens on changed (an interface came up or went down, a relay
    /// reservation was made or lost): all of them now.
    Listening {
        /// Every address listened on.
        addrs: Vec<Multiaddr>,
    },
    /// A peer kept connected ([`NetHandle::dial`]) is connected, through `addr` or another of its
    /// addresses.
    Reached {
        /// The address dialed, as given.
        addr: Multiaddr,
        /// The peer there.
        peer: libp2p::PeerId,
    },
    /// A dial of a peer kept connected ([`NetHandle::dial`]) failed: nothing answered at the
    /// address, or not the peer it names. It is dialed again with backoff. (A dial not made
    /// because the peer is being dialed through another address, or because of this node's
    /// own limits, is not reported: the address was not tried.)
    DialFailed {
        /// The address dialed, as given.
        addr: Multiaddr,
        /// Why, for a person (the transport's errors, causes included).
        error: String,
    },
    /// A peer broke the protocol and was disconnected.
    Misbehaved {
        /// The peer.
        peer: libp2p::PeerId,
        /// What it did.
        reason: String,
    },
}

/// True if the dial was made and failed (nothing answered at the address, or not the peer it
/// names); false if it was not made (the peer is being dialed through another address, this
/// node's limits) or was cut short by this node.
fn tried(error: &DialError) -> bool {
    matches!(
        error,
        DialError::Transport(_)
            | DialError::WrongPeerId { .. }
            | DialError::NoAddresses
            | DialError::LocalPeerId { .. }
    )
}

/// A dial's error for a person: each address's transport error with its causes (libp2p's own
/// text wraps them in debug formatting).
fn dial_error_text(error: &DialError) -> String {
    fn chain(error: &dyn std::error::Error) -> String {
        let mut text = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.ends_with(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
    match error {
        DialError::Transport(errors) if !errors.is_empty() => errors
            .iter()
            .map(|(_, e)| match e {
                libp2p::TransportError::MultiaddrNotSupported(addr) => {
                    format!("no transport for {addr}")
                }
                libp2p::TransportError::Other(e) => chain(e),
            })
            .collect::<Vec<_>>()
            .join("; "),
        DialError::WrongPeerId { obtained, .. } => {
            format!("the node there is {obtained}, not the one the address names")
        }
        other => chain(other),
    }
}

/// The libp2p behaviour of a Moot node.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    ip_limits: crate::ip_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    relay_client: relay::client::Behaviour,
    relay_server: Toggle<relay::Behaviour>,
    dcutr: dcutr::Behaviour,
}

/// A work item for the node's task.
type StateFn<S> = Box<dyn FnOnce(&mut Replica, &mut S) + Send>;

enum Command<S> {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Stats(oneshot::Sender<NetStats>),
    Subscribe(oneshot::Sender<broadcast::Receiver<NetEvent>>),
    WithState(StateFn<S>),
    /// [`Command::WithState`], then every peer's lanes judged again before anything is sent.
    WithStateThenLanes(StateFn<S>),
    ReevaluateLanes,
    ShedCaches,
    /// `Engine::confirm` for these peers (those connected).
    Confirm(Vec<libp2p::PeerId>),
    Shutdown,
}

/// A peer kept connected on purpose: dialed, and dialed again with backoff when lost.
struct Target {
    addr: Multiaddr,
    /// From the address's `/p2p/` suffix, or learned on the first connection.
    peer: Option<libp2p::PeerId>,
    /// Failed attempts in a row.
    failures: u32,
    state: TargetState,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TargetState {
    Dialing(ConnectionId),
    Connected,
    Waiting(Instant),
}

/// Why a TCP address with a port of its own cannot be listened on, if it cannot: libp2p's TCP
/// listeners share their port with any other socket of this user that asks (`SO_REUSEPORT`),
/// so a second node told the port of a running one would listen beside it, and each would get
/// some of the other's connections. A plain socket bound first (no `SO_REUSEPORT`) finds the
/// port taken instead.
fn tcp_port_taken(addr: &Multiaddr) -> Option<std::io::Error> {
    let mut parts = addr.iter();
    let ip: std::net::IpAddr = match parts.next()? {
        Protocol::Ip4(ip) => ip.into(),
        Protocol::Ip6(ip) => ip.into(),
        _ => return None,
    };
    let Protocol::Tcp(port) = parts.next()? else {
        return None;
    };
    if port == 0 || parts.next().is_some() {
        return None;
    }
    // As libp2p's listener binds (address reuse, IPv6 only on an IPv6 address: an IPv6 probe
    // must not collide with this node's own IPv4 listener on the port), without port reuse.
    let domain = match ip {
        std::net::IpAddr::V4(_) => socket2::Domain::IPV4,
        std::net::IpAddr::V6(_) => socket2::Domain::IPV6,
    };
    let socket =
        socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP)).ok()?;
    if ip.is_ipv6() {
        socket.set_only_v6(true).ok()?;
    }
    socket.set_reuse_address(true).ok()?;
    socket
        .bind(&std::net::SocketAddr::new(ip, port).into())
        .err()
        .filter(|e| e.kind() == std::io::ErrorKind::AddrInUse)
}

/// A relay listen address, listened on again with backoff when its reservation is lost.
struct RelayListen {
    addr: Multiaddr,
    listener: Option<ListenerId>,
    failures: u32,
    retry_at: Option<Instant>,
}

/// A connected peer's sync session.
struct Link {
    peer: libp2p::PeerId,
    device: PublicKey,
    /// What the peer presented this session, if anything.
    credential: Option<Vec<u8>>,
    /// The frame sent and not yet acknowledged.
    in_flight: Option<OutboundRequestId>,
    queue: VecDeque<Frame>,
    /// Since when the peer may receive nothing and has sent no ops stored here
    /// ([`NetConfig::stranger_grace`]).
    stranger_since: Option<Instant>,
}

/// A Moot node on the network for one hub. Made with [`NetNode::new`], run with
/// [`NetNode::run`] (usually in its own task), driven through its [`NetHandle`].
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use moot_net::{NetConfig, NetNode};
/// use moot_state::{Limits, Replica, sample};
/// use moot_sync::{Lanes, MemoryStore};
///
/// let device = sample::key(2, 0);
/// let (hub, _) = sample::history(1, 0);
/// let config = NetConfig {
///     listen: vec!["/ip4/127.0.0.1/tcp/0".parse()?],
///     ..NetConfig::default()
/// };
/// let replica = Replica::new(hub, Limits::default());
/// let (node, handle) = NetNode::new(
///     moot_net::keypair(&device)?,
///     config,
///     replica,
///     MemoryStore::new(),
///     Box::new(|_device, _presented| Lanes::PUBLIC),
/// )?;
/// let task = tokio::spawn(node.run());
/// println!("listening on {:?}", handle.listen_addrs().await?);
/// handle.shutdown().await;
/// let (_replica, _store) = task.await??;
/// # Ok(())
/// # }
/// ```
pub struct NetNode<S> {
    swarm: Swarm<Behaviour>,
    engine: Engine,
    replica: Replica,
    store: S,
    lanes_for: LanesFor,
    credential: Option<Presenter>,
    /// This node's device key.
    device: PublicKey,
    on_narrowing: Option<RollWatch>,
    max_queued_frames: usize,
    start: Instant,
    links: BTreeMap<PeerId, Link>,
    ids: HashMap<libp2p::PeerId, PeerId>,
    next_id: u64,
    commands: mpsc::Receiver<Command<S>>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    disconnected_for_misbehaviour: u64,
    events: broadcast::Sender<NetEvent>,
    targets: Vec<Target>,
    relay_listens: Vec<RelayListen>,
    backoff: Backoff,
    jitter_seed: u64,
    redials: u64,
    relay_server: bool,
    bootstrap: Vec<Multiaddr>,
    /// Frames received and not yet handled, in arrival order, each with the acknowledgement
    /// owed for it (see [`NetNode::handle_next_frame`]).
    inbox: VecDeque<Received>,
    /// Peers being disconnected for breaking the protocol, until their last connection closes:
    /// frames still arriving from them are ignored, and they are counted and reported once.
    dropping: HashSet<libp2p::PeerId>,
    /// Frames read from peers, counted by the codec as they arrive.
    arrivals: std::sync::Arc<std::sync::atomic::AtomicU64>,
    stranger_grace: Duration,
}

/// A frame received, waiting to be handled.
struct Received {
    peer: libp2p::PeerId,
    /// The engine session it came in (a frame of an earlier session is dropped).
    session: PeerId,
    frame: Incoming,
    ack: request_response::ResponseChannel<Ack>,
}

/// Frames from one peer waiting to be handled, at most: an honest peer, which sends its next
/// frame only once the last is acknowledged, has one waiting at a time.
const MAX_WAITING_FRAMES: usize = 2;

/// Rounds of sending and building frames in one `pump` (each sends at most one frame per peer).
const MAX_PUMP_ROUNDS: usize = 64;

/// Swarm events handled at most in one poll without waiting ([`NetNode::take_ready_events`]).
const MAX_READY_EVENTS: usize = 256;

/// Talks to a running [`NetNode`]. Cheap to clone; the node stops when every handle is
/// dropped or [`NetHandle::shutdown`] is called.
pub struct NetHandle<S> {
    commands: mpsc::Sender<Command<S>>,
}

impl<S> Clone for NetHandle<S> {
    fn clone(&self) -> Self {
        NetHandle {
            commands: self.commands.clone(),
        }
    }
}

impl<S: OpStore + Send + 'static> NetNode<S> {
    /// A node whose libp2p identity is `keypair` (the device key: see [`crate::keypair`]),
    /// holding `replica` and `store` (which must hold the same ops), listening on
    /// `config.listen`. Nothing happens until [`NetNode::run`] is polled.
    pub fn new(
        keypair: Keypair,
        config: NetConfig,
        replica: Replica,
        store: S,
        lanes_for: LanesFor,
    ) -> Result<(NetNode<S>, NetHandle<S>), NetError> {
        let transport = |e: &dyn std::fmt::Display| NetError::Transport(e.to_string());
        let limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(config.max_connections))
            .with_max_established_per_peer(Some(config.max_connections_per_peer))
            .with_max_pending_incoming(Some(config.max_pending_incoming))
            .with_max_pending_outgoing(Some(config.max_pending_outgoing));
        let ip_limits = crate::ip_limits::Limits {
            max_per_ip: config.max_connections_per_ip,
            max_new_per_ip: config.max_new_connections_per_ip,
            ban_for: config.misbehaviour_ban,
            loopback: config.limit_loopback,
        };
        let discovery = config.discovery;
        let request_timeout = config.request_timeout;
        let arrivals = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counted = arrivals.clone();
        let hub = replica.hub();
        let points = replica.device_points();
        let relay_config = config.relay_server.map(|r| relay::Config {
            max_reservations: r.max_reservations,
            max_reservations_per_peer: r.max_reservations_per_peer,
            max_circuits: r.max_circuits,
            max_circuits_per_peer: r.max_circuits_per_peer,
            max_circuit_duration: r.max_circuit_duration,
            max_circuit_bytes: r.max_circuit_bytes,
            // libp2p's rate limits on reservations and circuits per peer and per IP.
            ..relay::Config::default()
        });
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| transport(&e))?
            .with_quic()
            .with_relay_client(noise::Config::new, yamux::Config::default)
            .map_err(|e| transport(&e))?
            .with_behaviour(
                |key, relay_client| -> Result<Behaviour, Box<dyn StdError + Send + Sync>> {
                    let me = key.public().to_peer_id();
                    let mdns = match discovery {
                        Discovery::Off => None,
                        Discovery::Mdns => {
                            Some(mdns::tokio::Behaviour::new(mdns::Config::default(), me)?)
                        }
                    };
                    let relay_server = relay_config.map(|config| {
                        let mut server = relay::Behaviour::new(me, config);
                        // Offered whether or not an external address is confirmed yet: the
                        // operator asked for it.
                        server.set_status(Some(relay::Status::Enable));
                        server
                    });
                    Ok(Behaviour {
                        limits: connection_limits::Behaviour::new(limits),
                        ip_limits: crate::ip_limits::Behaviour::new(ip_limits),
                        identify: identify::Behaviour::new(
                            identify::Config::new(PROTOCOL_VERSION.into(), key.public())
                                .with_agent_version(format!("moot/{}", env!("CARGO_PKG_VERSION"))),
                        ),
                        ping: ping::Behaviour::default(),
                        sync: protocol::node_behaviour(
                            request_timeout,
                            counted.clone(),
                            hub,
                            points.clone(),
                        ),
                        mdns: Toggle::from(mdns),
                        relay_client,
                        relay_server: Toggle::from(relay_server),
                        dcutr: dcutr::Behaviour::new(me),
                    })
                },
            )
            .map_err(|e| transport(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .build();
        let mut relay_listens = Vec::new();
        for addr in &config.listen {
            if let Some(error) = tcp_port_taken(addr) {
                return Err(NetError::Listen {
                    addr: addr.clone(),
                    reason: format!("{error} (another node on this machine?)"),
                });
            }
            let listener = swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
            if is_relayed(addr) {
                relay_listens.push(RelayListen {
                    addr: addr.clone(),
                    listener: Some(listener),
                    failures: 0,
                    retry_at: None,
                });
            }
        }
        for addr in &config.external {
            swarm.add_external_address(addr.clone());
        }
        let jitter_seed = config.jitter_seed ^ backoff::key_of(&swarm.local_peer_id().to_bytes());
        let device = crate::device_of(swarm.local_peer_id())
            .map_err(|e| NetError::Transport(format!("this node's identity: {e}")))?;
        let (tx, rx) = mpsc::channel(config.max_commands.max(1));
        let node = NetNode {
            swarm,
            engine: Engine::new(moot_sync::Config {
                // A quiet session's only stream between resyncs: it must come before the
                // connection is closed as idle.
                keepalive_ms: config
                    .engine
                    .keepalive_ms
                    .min(u64::try_from(config.idle_timeout.as_millis() / 2).unwrap_or(u64::MAX)),
                ..config.engine
            }),
            replica,
            store,
            lanes_for,
            credential: config.credential.clone(),
            device,
            on_narrowing: config.on_narrowing.clone(),
            max_queued_frames: config.max_queued_frames.max(1),
            start: Instant::now(),
            links: BTreeMap::new(),
            ids: HashMap::new(),
            next_id: 1,
            commands: rx,
            listen_waiters: Vec::new(),
            disconnected_for_misbehaviour: 0,
            events: broadcast::channel(config.max_events.max(1)).0,
            targets: Vec::new(),
            relay_listens,
            backoff: config.backoff,
            jitter_seed,
            redials: 0,
            relay_server: config.relay_server.is_some(),
            bootstrap: config.bootstrap,
            inbox: VecDeque::new(),
            dropping: HashSet::new(),
            arrivals,
            stranger_grace: config.stranger_grace,
        };
        Ok((node, NetHandle { commands: tx }))
    }

    /// The lanes this node's own device may receive, by the lanes callback and what it
    /// presents: what a peer following the same roll gives it, so what the peer's heads speak
    /// for (`Engine::set_own_lanes`, told at every session's start and whenever the peers'
    /// lanes are judged again).
    fn own_lanes(&mut self) -> Lanes {
        let presented = self.credential.as_ref().map(|c| c.for_device(&self.device));
        (self.lanes_for)(&self.device, presented.as_deref())
    }

    /// This node's libp2p peer id (its device key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until [`NetHandle::shutdown`] or every handle is dropped, and gives back the
    /// replica and store. Stops with an error if the store fails.
    pub async fn run(mut self) -> Result<(Replica, S), NetError> {
        tracing::info!(peer = %self.peer_id(), relay_server = self.relay_server, "node started");
        for addr in std::mem::take(&mut self.bootstrap) {
            if let Err(e) = self.add_target(addr.clone()) {
                tracing::warn!(%addr, error = %e, "bootstrap address not dialed");
            }
        }
        loop {
            let more = self.pump()?;
            if more || !self.inbox.is_empty() {
                // Work waits (frames to handle, or to send): take in a command or a timer due
                // without waiting, so that neither starves, then do one piece of it.
                match self.commands.try_recv() {
                    Ok(Command::Shutdown) | Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Ok(command) => self.on_command(command),
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                self.timers_due();
                if self.inbox.is_empty() {
                    // Frames still to send: let the connections run, then send more.
                    self.take_ready_events()?;
                    tokio::task::yield_now().await;
                } else {
                    // Network events are taken in by `handle_next_frame`.
                    self.handle_next_frame().await?;
                }
                continue;
            }
            // The pump left no peer a frame it could be sent (see the module's docs): the
            // wait below is for the network, a command or a timer, not for this node.
            debug_assert!(
                !self.frame_sendable(),
                "the node would wait with a frame it could send"
            );
            let deadline = [
                self.engine
                    .poll_timeout()
                    .map(|ms| self.start + Duration::from_millis(ms)),
                self.next_retry(),
                self.next_stranger_due(),
            ]
            .into_iter()
            .flatten()
            .min();
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event)?,
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.on_command(command),
                },
                () = sleep_until(deadline) => self.timers_due(),
            }
        }
        tracing::info!(peer = %self.peer_id(), "node stopped");
        Ok((self.replica, self.store))
    }

    /// Starts keeping `addr` connected: dials it now and again whenever it is lost. An error
    /// if the first dial cannot even start (a malformed or unsupported address, this node's
    /// own id) or too many peers are kept already; an address kept already is dialed again if
    /// it is not connected.
    fn add_target(&mut self, addr: Multiaddr) -> Result<(), NetError> {
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Some(peer),
            _ => None,
        };
        if peer == Some(*self.swarm.local_peer_id()) {
            return Err(NetError::Dial(format!("{addr} is this node")));
        }
        if let Some(i) = self.targets.iter().position(|t| t.addr == addr) {
            if matches!(self.targets[i].state, TargetState::Waiting(_)) {
                self.targets[i].failures = 0;
                self.dial_target(i);
            }
            // Kept connected already: reached.
            if let (TargetState::Connected, Some(peer)) =
                (self.targets[i].state, self.targets[i].peer)
            {
                self.emit(NetEvent::Reached { addr, peer });
            }
            return Ok(());
        }
        if self.targets.len() >= MAX_TARGETS {
            return Err(NetError::Dial(format!(
                "already keeping {MAX_TARGETS} peers connected"
            )));
        }
        let opts = target_dial_opts(&addr, peer);
        let connection = opts.connection_id();
        let state = match self.swarm.dial(opts) {
            Ok(()) => TargetState::Dialing(connection),
            // Connected, or being dialed (by mDNS, or through another address).
            Err(DialError::DialPeerConditionFalse(_)) => match peer {
                Some(p) if self.swarm.is_connected(&p) => TargetState::Connected,
                _ => TargetState::Waiting(Instant::now() + self.delay(&addr, 0)),
            },
            Err(e) => return Err(NetError::Dial(e.to_string())),
        };
        tracing::debug!(%addr, "keeping peer connected");
        if let (TargetState::Connected, Some(peer)) = (state, peer) {
            self.emit(NetEvent::Reached {
                addr: addr.clone(),
                peer,
            });
        }
        self.targets.push(Target {
            addr,
            peer,
            failures: 0,
            state,
        });
        Ok(())
    }

    fn delay(&self, addr: &Multiaddr, failures: u32) -> Duration {
        self.backoff
            .delay(failures, self.jitter_seed, backoff::key_of(&addr.to_vec()))
    }

    /// Dials target `i` now; on an error that stops the dial at once, waits again.
    fn dial_target(&mut self, i: usize) {
        let Some(target) = self.targets.get(i) else {
            return;
        };
        let (addr, peer) = (target.addr.clone(), target.peer);
        let opts = target_dial_opts(&addr, peer);
        let connection = opts.connection_id();
        let state = match self.swarm.dial(opts) {
            Ok(()) => TargetState::Dialing(connection),
            Err(DialError::DialPeerConditionFalse(_))
                if peer.is_some_and(|p| self.swarm.is_connected(&p)) =>
            {
                TargetState::Connected
            }
            Err(e) => {
                let failures = self.targets[i].failures;
                let delay = self.delay(&addr, failures);
                tracing::info!(%addr, error = %e, retry_in = ?delay, "dial not started");
                self.targets[i].failures = failures.saturating_add(1);
                self.report_dial_failure(&addr, &e);
                TargetState::Waiting(Instant::now() + delay)
            }
        };
        self.targets[i].state = state;
    }

    /// When the next redial or relay listen is due.
    fn next_retry(&self) -> Option<Instant> {
        let targets = self.targets.iter().filter_map(|t| match t.state {
            TargetState::Waiting(at) => Some(at),
            _ => None,
        });
        let listens = self.relay_listens.iter().filter_map(|l| l.retry_at);
        targets.chain(listens).min()
    }

    /// Redials the targets and listens again on the relay addresses that are due.
    /// What is due now: the engine's timers (resyncs, forgetting requests) and redials.
    fn timers_due(&mut self) {
        self.engine.handle_timeout(self.now_ms());
        self.retry_due(Instant::now());
        self.drop_strangers(Instant::now());
    }

    /// Peers this node chose to keep connected (dialed on purpose, bootstrap, a relay it
    /// listens through): never dropped as strangers (a relay is an unknown device to the hub
    /// and sends it nothing, yet carries its circuits).
    fn kept(&self, peer: &libp2p::PeerId) -> bool {
        self.targets.iter().any(|t| t.peer.as_ref() == Some(peer))
            || self
                .relay_listens
                .iter()
                .any(|l| l.addr.iter().any(|p| p == Protocol::P2p(*peer)))
    }

    /// When the first peer that may receive nothing reaches [`NetConfig::stranger_grace`]
    /// (never on a relay server: relaying for peers it sends nothing to is its work).
    fn next_stranger_due(&self) -> Option<Instant> {
        if self.relay_server {
            return None;
        }
        self.links
            .values()
            .filter_map(|l| l.stranger_since)
            .min()
            .map(|since| since + self.stranger_grace)
    }

    /// Disconnects the peers that have been strangers for [`NetConfig::stranger_grace`] (not
    /// misbehaviour: they may come back, and get lanes if the roll gives them some).
    fn drop_strangers(&mut self, now: Instant) {
        if self.relay_server {
            return;
        }
        let grace = self.stranger_grace;
        let mut due = Vec::new();
        for link in self.links.values_mut() {
            if link
                .stranger_since
                .is_some_and(|since| since + grace <= now)
            {
                link.stranger_since = None;
                due.push(link.peer);
            }
        }
        due.retain(|peer| !self.kept(peer));
        for peer in due {
            tracing::info!(%peer, "may receive nothing of the hub and sends nothing: disconnected");
            let _ = self.swarm.disconnect_peer_id(peer);
        }
    }

    fn retry_due(&mut self, now: Instant) {
        for i in 0..self.targets.len() {
            if matches!(self.targets[i].state, TargetState::Waiting(at) if at <= now) {
                self.redials += 1;
                tracing::debug!(addr = %self.targets[i].addr, "redialing");
                self.dial_target(i);
            }
        }
        for i in 0..self.relay_listens.len() {
            let listen = &mut self.relay_listens[i];
            if listen.retry_at.is_some_and(|at| at <= now) {
                listen.retry_at = None;
                let addr = listen.addr.clone();
                match self.swarm.listen_on(addr.clone()) {
                    Ok(id) => self.relay_listens[i].listener = Some(id),
                    Err(e) => {
                        let failures = self.relay_listens[i].failures;
                        let delay = self.delay(&addr, failures);
                        tracing::info!(%addr, error = %e, retry_in = ?delay, "relay listen failed");
                        let listen = &mut self.relay_listens[i];
                        listen.failures = failures.saturating_add(1);
                        listen.retry_at = Some(now + delay);
                    }
                }
            }
        }
    }

    /// A dial of ours failed: the target it was for waits before the next.
    fn on_dial_failed(
        &mut self,
        connection: ConnectionId,
        peer: Option<libp2p::PeerId>,
        error: &DialError,
    ) {
        let now = Instant::now();
        for i in 0..self.targets.len() {
            if self.targets[i].state != TargetState::Dialing(connection) {
                continue;
            }
            // Connected meanwhile (it dialed us, or another address won).
            if let Some(p) = self.targets[i].peer.or(peer)
                && self.swarm.is_connected(&p)
            {
                self.targets[i].state = TargetState::Connected;
                continue;
            }
            let failures = self.targets[i].failures;
            let delay = self.delay(&self.targets[i].addr, failures);
            tracing::info!(addr = %self.targets[i].addr, failures = failures + 1, retry_in = ?delay, "dial failed; backing off");
            let target = &mut self.targets[i];
            target.failures = failures.saturating_add(1);
            target.state = TargetState::Waiting(now + delay);
            let addr = target.addr.clone();
            self.report_dial_failure(&addr, error);
        }
    }

    /// A connection to `peer` is up (`connection` may be one of our dials).
    fn on_target_connected(&mut self, peer: libp2p::PeerId, connection: ConnectionId) {
        let mut reached = Vec::new();
        for target in &mut self.targets {
            let ours = target.state == TargetState::Dialing(connection);
            if ours && target.peer.is_none() {
                target.peer = Some(peer);
            }
            if ours || target.peer == Some(peer) {
                target.state = TargetState::Connected;
                target.failures = 0;
                reached.push(target.addr.clone());
            }
        }
        for addr in reached {
            self.emit(NetEvent::Reached { addr, peer });
        }
    }

    /// The last connection to `peer` closed: targets for it wait, then redial.
    fn on_target_lost(&mut self, peer: libp2p::PeerId) {
        let now = Instant::now();
        for i in 0..self.targets.len() {
            if self.targets[i].peer == Some(peer) && self.targets[i].state == TargetState::Connected
            {
                let failures = self.targets[i].failures;
                let delay = self.delay(&self.targets[i].addr, failures);
                tracing::debug!(addr = %self.targets[i].addr, retry_in = ?delay, "kept peer lost; redialing later");
                self.targets[i].state = TargetState::Waiting(now + delay);
            }
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves frames from the engine to the peers, and acts on the engine's events.
    /// Returns true if it stopped with frames perhaps still to send (after `MAX_PUMP_ROUNDS`).
    fn pump(&mut self) -> Result<bool, NetError> {
        let now_ms = self.now_ms();
        // What the frames handled since the last pump told (a peer's credential may change
        // what it may receive) comes before the frames built for it.
        self.take_engine_events();
        // Bounded: acknowledgements taken in below let more frames go, and peers that
        // acknowledge fast must not keep the node from its inbox, commands and timers.
        let mut more = true;
        for _ in 0..MAX_PUMP_ROUNDS {
            let mut sent = false;
            for link in self.links.values_mut() {
                if link.in_flight.is_none()
                    && let Some(frame) = link.queue.pop_front()
                {
                    tracing::debug!(peer = %link.peer, bytes = frame.len(), "frame sent");
                    let sync = &mut self.swarm.behaviour_mut().sync;
                    link.in_flight = Some(sync.send_request(&link.peer, SyncRequest::Frame(frame)));
                    sent = true;
                }
            }
            if sent {
                // Hand the frames to their connections now (the swarm passes them on when
                // polled), not after the next frames are built below.
                self.take_ready_events()?;
            }
            // Frames are built only for peers with room in their queue: a slow peer's full
            // queue holds up no other peer.
            let (links, max) = (&self.links, self.max_queued_frames);
            let Some(transmit) =
                self.engine
                    .poll_transmit_to(now_ms, &self.replica, &self.store, |peer| {
                        links.get(&peer).is_some_and(|l| l.queue.len() < max)
                    })?
            else {
                // Nothing more to build. An acknowledgement taken in above, while frames were
                // handed on, may have freed a peer with frames queued: they go before this
                // stops, for no event may come to wake the node again (the peer waits for them).
                if self.frame_sendable() {
                    continue;
                }
                more = false;
                break;
            };
            if let Some(link) = self.links.get_mut(&transmit.peer) {
                link.queue.push_back(transmit.frame);
            }
        }
        // Events of frames handled since the last pump were acted on first; these came while
        // frames were built. A change of lanes leaves the engine work (a new heads round, a
        // lane's stream): the caller pumps again rather than wait for an event.
        if self.take_engine_events() {
            more = true;
        }
        Ok(more)
    }

    /// Queues what this node presents to the peer `id` (its device `device`). A credential the
    /// engine refuses (over `MAX_CREDENTIAL_BYTES`) is not sent, and said so: the session goes
    /// on without it, as with a node that presents nothing.
    fn present(
        engine: &mut Engine,
        id: PeerId,
        peer: &libp2p::PeerId,
        credential: &Presenter,
        device: &PublicKey,
    ) {
        if let Err(error) = engine.present(id, credential.for_device(device)) {
            tracing::warn!(%peer, %error, "credential not presented");
        }
    }

    /// Acts on the engine's events; true if a peer's lanes changed.
    fn take_engine_events(&mut self) -> bool {
        let mut lanes_changed = false;
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Misbehaved { peer, reason } => {
                    if let Some(link) = self.links.get(&peer) {
                        let peer = link.peer;
                        // A node of another wire version may be honest: dropped, not banned. So
                        // may one whose lanes here changed many times in a row (each change
                        // sends a set of heads): dropped, and its sets meanwhile ignored, but
                        // its address (shared behind a NAT) not refused.
                        let forgivable = matches!(
                            reason,
                            moot_sync::Misbehaviour::Wire(moot_sync::WireError::Version(_))
                                | moot_sync::Misbehaviour::HeadsFlood { .. }
                        );
                        self.drop_peer(peer, format!("{reason:?}"));
                        if !forgivable {
                            self.swarm.behaviour_mut().ip_limits.ban(&peer);
                        }
                    }
                }
                Event::Presented { peer, credential } => {
                    if let Some(link) = self.links.get_mut(&peer) {
                        let lanes = (self.lanes_for)(&link.device, Some(&credential));
                        link.credential = Some(credential);
                        lanes_changed |= Self::set_lanes(&mut self.engine, peer, link, lanes);
                    }
                }
                Event::Stored {
                    peer,
                    op_count,
                    narrows,
                } => {
                    if let Some(link) = self.links.get(&peer) {
                        tracing::debug!(peer = %link.peer, op_count, "ops stored");
                        self.emit(NetEvent::Stored {
                            peer: link.peer,
                            op_count,
                        });
                    }
                    // A member removed in this frame must not be sent its later ops: every
                    // peer's lanes are judged again now, by the roll as it now stands.
                    if narrows {
                        if let Some(watch) = &self.on_narrowing {
                            (watch.0)(&mut self.replica);
                        }
                        lanes_changed |= self.judge_lanes();
                    }
                }
                _ => {}
            }
        }
        lanes_changed
    }

    /// Asks the lanes callback again for every connected peer and applies what changed; true if
    /// any peer's lanes changed.
    fn judge_lanes(&mut self) -> bool {
        let own = self.own_lanes();
        self.engine.set_own_lanes(own);
        let mut changed = false;
        for (&id, link) in &mut self.links {
            let lanes = (self.lanes_for)(&link.device, link.credential.as_deref());
            changed |= Self::set_lanes(&mut self.engine, id, link, lanes);
        }
        changed
    }

    /// Gives the peer of session `id` these lanes; true if they changed. A lane taken away
    /// takes the frames queued for it and not yet sent with it (built before, they may hold ops
    /// of that lane); the engine sends again what they held of the other lanes.
    fn set_lanes(engine: &mut Engine, id: PeerId, link: &mut Link, lanes: Lanes) -> bool {
        let Some(before) = engine.peer_lanes(id) else {
            return false;
        };
        // A peer with no lane starts (or keeps) its time as a stranger; a lane ends it.
        link.stranger_since = match lanes == Lanes::NONE {
            true => link.stranger_since.or_else(|| Some(Instant::now())),
            false => None,
        };
        if before == lanes {
            return false;
        }
        if !lanes.covers(before) {
            // Present and Want frames name nothing of a lane: they stay.
            let queued = link.queue.len();
            link.queue
                .retain(|frame| !moot_sync::wire::names_lane_data(frame));
            tracing::debug!(peer = %link.peer, dropped = queued - link.queue.len(), "lane taken away; frames queued for it dropped");
        }
        // Every link has a session: connect and disconnect go together.
        engine.set_peer_lanes(id, lanes).is_ok()
    }

    /// Closes every connection to `peer` for breaking the protocol (its session ends when the
    /// last connection is closed).
    fn drop_peer(&mut self, peer: libp2p::PeerId, reason: String) {
        if self.dropping.contains(&peer) {
            return;
        }
        if self.swarm.disconnect_peer_id(peer).is_ok() {
            self.dropping.insert(peer);
            // Its frames still waiting are not handled.
            self.inbox.retain(|r| r.peer != peer);
            tracing::warn!(%peer, %reason, "peer misbehaved; disconnected");
            self.disconnected_for_misbehaviour += 1;
            // A kept peer that misbehaved is redialed only after the longest delay.
            for target in &mut self.targets {
                if target.peer == Some(peer) {
                    target.failures = target.failures.max(MISBEHAVED_FAILURES);
                }
            }
            self.emit(NetEvent::Misbehaved { peer, reason });
        }
    }

    /// Tells subscribers that the dial of target `addr` failed, if it was made
    /// ([`NetEvent::DialFailed`]).
    fn report_dial_failure(&self, addr: &Multiaddr, error: &DialError) {
        if tried(error) {
            self.emit(NetEvent::DialFailed {
                addr: addr.clone(),
                error: dial_error_text(error),
            });
        }
    }

    fn emit(&self, event: NetEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Result<(), NetError> {
        if let SwarmEvent::ConnectionEstablished {
            peer_id,
            connection_id,
            endpoint,
            num_established,
            ..
        } = &event
        {
            tracing::info!(
                peer = %peer_id,
                addr = %endpoint_addr(endpoint),
                dialer = endpoint.is_dialer(),
                connections = num_established.get(),
                "connection up"
            );
            if self.dropping.contains(peer_id) {
                // A peer being disconnected for misbehaviour does not get a new connection
                // (nor a session) before its old ones have closed.
                tracing::debug!(peer = %peer_id, "connection from a peer being dropped; closed");
                self.swarm.close_connection(*connection_id);
                return Ok(());
            }
            self.on_target_connected(*peer_id, *connection_id);
        }
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                let Ok(device) = device_of(&peer_id) else {
                    // Not an Ed25519 identity: not a Moot device.
                    tracing::info!(peer = %peer_id, "not an Ed25519 identity; disconnected");
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return Ok(());
                };
                let relayed = match &endpoint {
                    ConnectedPoint::Dialer { address, .. } => is_relayed(address),
                    ConnectedPoint::Listener { local_addr, .. } => is_relayed(local_addr),
                };
                let role = if endpoint.is_dialer() {
                    Role::Dialer
                } else {
                    Role::Listener
                };
                let lanes = (self.lanes_for)(&device, None);
                let id = PeerId(self.next_id);
                self.next_id += 1;
                let own = self.own_lanes();
                self.engine.set_own_lanes(own);
                self.engine.connect(self.now_ms(), id, role, lanes)?;
                if let Some(credential) = &self.credential {
                    Self::present(&mut self.engine, id, &peer_id, credential, &device);
                }
                self.ids.insert(peer_id, id);
                self.links.insert(
                    id,
                    Link {
                        peer: peer_id,
                        device,
                        credential: None,
                        in_flight: None,
                        queue: VecDeque::new(),
                        stranger_since: (lanes == Lanes::NONE).then(Instant::now),
                    },
                );
                tracing::debug!(peer = %peer_id, ?role, ?lanes, relayed, "sync session started");
                self.emit(NetEvent::Connected {
                    peer: peer_id,
                    device,
                    lanes,
                    relayed,
                });
            }
            SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                // Another connection to a peer with a session: usually both sides dialed at
                // once, and each may have taken its first connection's side as its role (two
                // listeners would wait for each other's heads forever). Both sides see the
                // second connection, so both restart the session with roles by peer id order.
                let dialer = self.swarm.local_peer_id().to_bytes() < peer_id.to_bytes();
                let role = if dialer { Role::Dialer } else { Role::Listener };
                if let Some(&id) = self.ids.get(&peer_id)
                    && let Some(link) = self.links.get_mut(&id)
                {
                    let lanes = self.engine.peer_lanes(id).unwrap_or(Lanes::NONE);
                    // Frames of the old session not yet sent are dropped; the new session
                    // streams from the start (what the peer holds is skipped).
                    link.queue.clear();
                    let now_ms =
                        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
                    self.engine.connect(now_ms, id, role, lanes)?;
                    if let Some(credential) = &self.credential {
                        Self::present(&mut self.engine, id, &peer_id, credential, &link.device);
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                endpoint,
                ..
            } => {
                tracing::info!(
                    peer = %peer_id,
                    addr = %endpoint_addr(&endpoint),
                    cause = %cause.as_ref().map_or("closed".to_string(), |e| e.to_string()),
                    connections = num_established,
                    "connection down"
                );
                if num_established == 0 {
                    self.dropping.remove(&peer_id);
                    if let Some(id) = self.ids.remove(&peer_id) {
                        self.links.remove(&id);
                        self.engine.disconnect(id, &mut self.replica);
                        tracing::debug!(peer = %peer_id, "sync session ended");
                        self.emit(NetEvent::Disconnected { peer: peer_id });
                    }
                    self.on_target_lost(peer_id);
                }
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
                self.on_dial_failed(connection_id, peer_id, &error);
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(from = %send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::NewListenAddr {
                listener_id,
                address,
            } => {
                tracing::info!(%address, "listening");
                if let Some(listen) = self
                    .relay_listens
                    .iter_mut()
                    .find(|l| l.listener == Some(listener_id))
                {
                    listen.failures = 0;
                }
                // A relay server tells the peers it relays for where it can be reached.
                if self.relay_server && !is_relayed(&address) {
                    self.swarm.add_external_address(address);
                }
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(addrs.clone());
                }
                self.emit(NetEvent::Listening { addrs });
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                tracing::info!(%address, "no longer listening");
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                self.emit(NetEvent::Listening { addrs });
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                reason,
            } => {
                tracing::info!(?addresses, ?reason, "listener closed");
                let now = Instant::now();
                if let Some(i) = self
                    .relay_listens
                    .iter()
                    .position(|l| l.listener == Some(listener_id))
                {
                    let failures = self.relay_listens[i].failures;
                    let delay = self.delay(&self.relay_listens[i].addr, failures);
                    tracing::info!(addr = %self.relay_listens[i].addr, retry_in = ?delay, "relay reservation lost; listening again later");
                    let listen = &mut self.relay_listens[i];
                    listen.listener = None;
                    listen.failures = failures.saturating_add(1);
                    listen.retry_at = Some(now + delay);
                }
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                self.emit(NetEvent::Listening { addrs });
            }
            SwarmEvent::ListenerError { listener_id, error } => {
                tracing::info!(?listener_id, %error, "listener error");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event)?,
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                tracing::debug!(
                    peer = %peer_id,
                    // The peer's own words: Debug-quoted, so control characters are escaped.
                    protocol_version = ?info.protocol_version,
                    agent = ?info.agent_version,
                    observed = %info.observed_addr,
                    "identified"
                );
            }
            // A connection that stops answering pings is dead (a peer gone without closing
            // it): closed, so the session ends and a kept peer is redialed.
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping::Event {
                peer,
                connection,
                result: Err(error),
            })) if !matches!(error, ping::Failure::Unsupported) => {
                tracing::info!(%peer, %error, "ping failed; closing the connection");
                self.swarm.close_connection(connection);
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(event)) => {
                tracing::info!(?event, "relay client");
            }
            SwarmEvent::Behaviour(BehaviourEvent::RelayServer(event)) => {
                tracing::debug!(?event, "relay server");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(event)) => match event.result {
                Ok(_) => {
                    tracing::info!(peer = %event.remote_peer_id, "direct connection through hole punching")
                }
                Err(e) => {
                    tracing::info!(peer = %event.remote_peer_id, error = %e, "hole punching failed; staying relayed")
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    // Two nodes discover each other at the same moment and dial at once: from
                    // their listening ports (libp2p's default, for hole punching) the two dials
                    // are one TCP 4-tuple, a simultaneous open where both sides take the
                    // initiator's part in Noise and both fail — and mDNS would not find them
                    // again for minutes. A fresh source port makes two connections instead,
                    // and the second-connection rule above settles the roles. (No NAT on a LAN.)
                    // Not an address that misbehaved a moment ago, nor one holding its share.
                    if !self.swarm.behaviour_mut().ip_limits.allows_dial(&addr) {
                        continue;
                    }
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .addresses(vec![addr])
                        .allocate_new_port()
                        .build();
                    // A failed dial is reported as an event and retried at the next discovery.
                    let _ = self.swarm.dial(opts);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn on_sync_event(
        &mut self,
        event: request_response::Event<SyncRequest, Ack>,
    ) -> Result<(), NetError> {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
                ..
            } => {
                let frame = match request {
                    // This node's codec reads frames so, their checks started.
                    SyncRequest::Received(frame) => frame,
                    SyncRequest::Frame(bytes) => Incoming::start_with(
                        self.replica.hub(),
                        &bytes,
                        Some(&self.replica.device_points()),
                    ),
                    // Over the frame limit: no honest node sends it.
                    SyncRequest::Oversized { len } => {
                        self.drop_peer(peer, format!("announced a frame of {len} bytes"));
                        self.swarm.behaviour_mut().ip_limits.ban(&peer);
                        return Ok(());
                    }
                };
                tracing::debug!(%peer, bytes = frame.len(), "frame received");
                // Handled by `run` once the network has been polled (see
                // `handle_next_frame`).
                let waiting = self.inbox.iter().filter(|r| r.peer == peer).count();
                if self.dropping.contains(&peer) {
                    // Being disconnected: not handled, not acknowledged.
                    tracing::debug!(%peer, "frame from a peer being dropped: ignored");
                } else if waiting >= MAX_WAITING_FRAMES {
                    self.drop_peer(
                        peer,
                        "sent frames without waiting for acknowledgements".into(),
                    );
                    self.swarm.behaviour_mut().ip_limits.ban(&peer);
                } else if let Some(&session) = self.ids.get(&peer) {
                    self.inbox.push_back(Received {
                        peer,
                        session,
                        frame,
                        ack: channel,
                    });
                } else {
                    // No session with this peer: dropped (a closed stream only means the
                    // peer is gone).
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, Ack);
                }
            }
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, .. },
                ..
            } => {
                let matched = if let Some(link) = self.link_of(&peer)
                    && link.in_flight == Some(request_id)
                {
                    link.in_flight = None;
                    true
                } else {
                    false
                };
                tracing::debug!(%peer, matched, "acknowledgement received");
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                // The frame may be lost, and the next ones would arrive out of order: end the
                // session (it restarts, with a fresh exchange of heads, on the next connection).
                if let Some(link) = self.link_of(&peer)
                    && link.in_flight == Some(request_id)
                {
                    link.in_flight = None;
                    tracing::info!(%peer, %error, "frame not delivered; closing the session");
                    let _ = self.swarm.disconnect_peer_id(peer);
                } else {
                    tracing::debug!(%peer, %error, "a frame not in flight failed");
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                // The peer's frame timed out here, or its stream failed: the peer sees it as a
                // frame not delivered, and ends the session.
                tracing::debug!(%peer, %error, "a received frame's exchange failed");
            }
            request_response::Event::ResponseSent { peer, .. } => {
                tracing::trace!(%peer, "acknowledgement written");
            }
        }
        Ok(())
    }

    /// True if some peer has frames queued and none in flight: one could be sent now.
    fn frame_sendable(&self) -> bool {
        self.links
            .values()
            .any(|l| l.in_flight.is_none() && !l.queue.is_empty())
    }

    fn link_of(&mut self, peer: &libp2p::PeerId) -> Option<&mut Link> {
        let id = self.ids.get(peer)?;
        self.links.get_mut(id)
    }

    /// Handles the oldest frame received. Its acknowledgement is sent first, and delivered to
    /// the connection before the frame is handled: the peer sends its next frame while this
    /// one is checked, validated and stored, and that frame waits in the inbox, unacknowledged,
    /// until this one is done. So a peer has at most two frames here, and frames stay in order
    /// (one in flight per peer).
    async fn handle_next_frame(&mut self) -> Result<(), NetError> {
        let Some(Received {
            peer,
            session,
            frame,
            ack,
        }) = self.inbox.pop_front()
        else {
            return Ok(());
        };
        // A frame whose exchange timed out is not handled: the peer ends the session.
        if !ack.is_open() {
            tracing::debug!(%peer, "frame's exchange closed: not handled");
            return Ok(());
        }
        // A closed stream only means the peer is gone.
        let acked = self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(ack, Ack)
            .is_ok();
        tracing::debug!(%peer, acked, "frame acknowledged");
        // Hand the acknowledgement to the connection now: the swarm passes it on when polled.
        self.take_ready_events()?;
        // ... and let the connection's task write it before this task is busy.
        tokio::task::yield_now().await;
        // The session may have ended while the acknowledgement was passed on.
        if self.ids.get(&peer) == Some(&session) {
            let now_ms = self.now_ms();
            let before = self.store.end();
            self.engine.handle_incoming(
                now_ms,
                session,
                frame,
                &mut self.replica,
                &mut self.store,
            )?;
            // A peer whose ops are stored here is no stranger's idle connection (a node
            // fetching a hub that does not know it yet); ops held already or refused count for
            // nothing.
            if self.store.end() > before
                && let Some(link) = self.links.get_mut(&session)
                && link.stranger_since.is_some()
            {
                link.stranger_since = Some(Instant::now());
            }
        }
        Ok(())
    }

    /// Polls the swarm without waiting, so that it passes on what was queued for connections
    /// (frames, acknowledgements), and handles the events that were ready (at most
    /// `MAX_READY_EVENTS`: the rest wait for the next poll).
    fn take_ready_events(&mut self) -> Result<(), NetError> {
        for _ in 0..MAX_READY_EVENTS {
            match self.swarm.next().now_or_never().flatten() {
                Some(event) => self.on_swarm_event(event)?,
                None => break,
            }
        }
        Ok(())
    }

    fn on_command(&mut self, command: Command<S>) {
        match command {
            Command::ListenAddrs(reply) => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                if addrs.is_empty() && self.listen_waiters.len() < MAX_LISTEN_WAITERS {
                    self.listen_waiters.push(reply);
                } else {
                    let _ = reply.send(addrs);
                }
            }
            Command::Dial(addr, reply) => {
                // A known peer already connected (or being dialed) is not dialed again.
                let _ = reply.send(self.add_target(addr));
            }
            Command::Stats(reply) => {
                let _ = reply.send(NetStats {
                    peers: self.links.values().map(|l| l.peer).collect(),
                    disconnected_for_misbehaviour: self.disconnected_for_misbehaviour,
                    redials: self.redials,
                    engine: self.engine.stats(),
                    frames_arriving: self.arrivals.load(std::sync::atomic::Ordering::Relaxed),
                    sending_to: self
                        .links
                        .iter()
                        .filter(|(id, l)| {
                            l.in_flight.is_some()
                                || !l.queue.is_empty()
                                || self.engine.sending_to(**id, self.store.end())
                        })
                        .map(|(_, l)| l.peer)
                        .collect(),
                    confirmed: self
                        .links
                        .iter()
                        .filter(|(id, _)| self.engine.holds_all(**id, self.store.end()))
                        .map(|(_, l)| l.peer)
                        .collect(),
                    confirming: self
                        .links
                        .iter()
                        .filter(|(id, _)| self.engine.confirming(**id))
                        .map(|(_, l)| l.peer)
                        .collect(),
                });
            }
            Command::Subscribe(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            Command::WithState(f) => f(&mut self.replica, &mut self.store),
            // The run loop pumps after every command.
            Command::WithStateThenLanes(f) => {
                f(&mut self.replica, &mut self.store);
                self.judge_lanes();
            }
            Command::ReevaluateLanes => {
                self.judge_lanes();
            }
            Command::ShedCaches => self.engine.shed_caches(),
            Command::Confirm(peers) => {
                let now_ms = self.now_ms();
                for peer in peers {
                    if let Some(&id) = self.ids.get(&peer) {
                        // A peer whose session just ended is simply not confirmed; one asked
                        // too lately is asked by a later look.
                        let _ = self.engine.confirm(now_ms, id);
                    }
                }
            }
            Command::Shutdown => {}
        }
    }
}

/// How to dial a kept peer: by peer id when known (never a second connection to a peer
/// connected or being dialed), else by address alone.
fn target_dial_opts(addr: &Multiaddr, peer: Option<libp2p::PeerId>) -> DialOpts {
    match peer {
        Some(peer) => DialOpts::peer_id(peer)
            .condition(PeerCondition::DisconnectedAndNotDialing)
            .addresses(vec![addr.clone()])
            .build(),
        None => DialOpts::unknown_peer_id().address(addr.clone()).build(),
    }
}

/// The remote address of a connection.
fn endpoint_addr(endpoint: &ConnectedPoint) -> &Multiaddr {
    match endpoint {
        ConnectedPoint::Dialer { address, .. } => address,
        ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
    }
}

/// The address goes through a relay.
fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| matches!(p, Protocol::P2pCircuit))
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

impl<S: OpStore + Send + 'static> NetHandle<S> {
    async fn ask<R>(
        &self,
        command: impl FnOnce(oneshot::Sender<R>) -> Command<S>,
    ) -> Result<R, NetError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(command(tx))
            .await
            .map_err(|_| NetError::Stopped)?;
        rx.await.map_err(|_| NetError::Stopped)
    }

    /// The addresses the node listens on; waits for the first one if none is up yet.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetError> {
        self.ask(Command::ListenAddrs).await
    }

    /// Starts dialing `addr`, and keeps it connected from then on: a failed dial or a lost
    /// connection is followed by another dial with backoff ([`NetConfig::backoff`]). If it
    /// ends in `/p2p/<peer id>` and that peer is connected or being dialed already, no second
    /// connection is made. The sync session starts when the connection is up. An error if the
    /// dial cannot start at all (a malformed or unsupported address, this node's own id).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetError> {
        self.ask(|tx| Command::Dial(addr, tx)).await?
    }

    /// Counters and connected peers.
    pub async fn stats(&self) -> Result<NetStats, NetError> {
        self.ask(Command::Stats).await
    }

    /// Events from now on ([`NetEvent`]).
    pub async fn subscribe(&self) -> Result<broadcast::Receiver<NetEvent>, NetError> {
        self.ask(Command::Subscribe).await
    }

    /// Runs `f` on the node's replica and store, in the node's task, and returns its result.
    /// To publish a local op, write it here (insert it into the replica, store what is kept):
    /// the engine streams from the store, so it is pushed to every connected peer at once.
    pub async fn with_state<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Replica, &mut S) -> R + Send + 'static,
    ) -> Result<R, NetError> {
        self.run_on_state(Command::WithState, f).await
    }

    /// [`NetHandle::with_state`], and then, before anything more is sent, the lanes callback
    /// asked again for every connected peer: for `f` that stores ops that may change the roll
    /// (a local write, an import) and brings up to date what the callback reads.
    pub async fn with_state_then_lanes<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Replica, &mut S) -> R + Send + 'static,
    ) -> Result<R, NetError> {
        self.run_on_state(Command::WithStateThenLanes, f).await
    }

    /// Sends `f` as the command `kind` makes of it, and returns its result.
    async fn run_on_state<R: Send + 'static>(
        &self,
        kind: fn(StateFn<S>) -> Command<S>,
        f: impl FnOnce(&mut Replica, &mut S) -> R + Send + 'static,
    ) -> Result<R, NetError> {
        self.ask(|tx| {
            kind(Box::new(move |replica: &mut Replica, store: &mut S| {
                let _ = tx.send(f(replica, store));
            }))
        })
        .await
    }

    /// Asks the lanes callback again for every connected peer (the roll changed) and applies
    /// what changed.
    pub async fn reevaluate_lanes(&self) -> Result<(), NetError> {
        self.commands
            .send(Command::ReevaluateLanes)
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Lets the sync engine go of what only speeds up a sync (`Engine::shed_caches`), once
    /// arrivals have settled.
    pub async fn shed_caches(&self) -> Result<(), NetError> {
        self.commands
            .send(Command::ShedCaches)
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Asks these peers to confirm what they hold (`Engine::confirm`): each answers with its
    /// heads, and [`NetStats::confirmed`] lists it once they show it holding everything this
    /// node holds for it. For a one-shot sync whose push is over (the peers off
    /// [`NetStats::sending_to`]).
    pub async fn confirm(&self, peers: Vec<libp2p::PeerId>) -> Result<(), NetError> {
        self.commands
            .send(Command::Confirm(peers))
            .await
            .map_err(|_| NetError::Stopped)
    }

    /// Stops the node ([`NetNode::run`] returns). Does nothing if it has stopped already.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}
