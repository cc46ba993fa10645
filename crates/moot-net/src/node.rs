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
//! frames arrive in order and a slow peer is not flooded); at most
//! [`NetConfig::max_queued_frames`] frames queued per peer, after which the engine is not
//! polled until that peer drains (a slow peer slows the others: the engine's frames are built
//! lazily, round robin, so it cannot be asked for another peer's frame alone); connections
//! limited in number ([`NetConfig`]); commands queued in a bounded channel.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::error::Error as StdError;
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundRequestId};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{DialError, NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, Swarm, SwarmBuilder, connection_limits, identify, identity::Keypair, mdns, noise,
    ping, tcp, yamux,
};
use moot_crypto::PublicKey;
use moot_state::Replica;
use moot_sync::{Engine, EngineError, Event, Lanes, OpStore, PeerId, Role, SyncError};
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::time::Instant;

use crate::device_of;
use crate::protocol::{self, Ack, Frame, SyncCodec, SyncRequest};

/// The identify protocol version this node announces.
const IDENTIFY_PROTOCOL: &str = "/moot/id/1";
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
    /// Addresses to listen on (e.g. `/ip4/127.0.0.1/tcp/0`). Default: none.
    pub listen: Vec<Multiaddr>,
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
    /// One frame's exchange (send, handle, acknowledge) must finish within this. Default 30 s.
    pub request_timeout: Duration,
    /// A connection with no stream open for this long is closed. Default 120 s (the engine
    /// resyncs every 30 s, so a sync session never goes idle).
    pub idle_timeout: Duration,
    /// Frames queued for one peer, at most (each ≤ `MAX_MESSAGE_BYTES`). Default 4.
    pub max_queued_frames: usize,
    /// Commands from handles queued, at most. Default 64.
    pub max_commands: usize,
    /// Events kept for subscribers, at most (older ones are lost to a slow subscriber).
    /// Default 1024.
    pub max_events: usize,
    /// Presented to every peer at the start of each session (the engine's `Present` message,
    /// at most `moot_sync::wire::MAX_CREDENTIAL_BYTES`): what lets a peer that has not yet seen
    /// this device's certification give it a member's lanes. Default none.
    pub credential: Option<Vec<u8>>,
}

impl Default for NetConfig {
    fn default() -> Self {
        NetConfig {
            listen: Vec::new(),
            discovery: Discovery::Off,
            engine: moot_sync::Config::default(),
            max_connections: 64,
            max_connections_per_peer: 2,
            max_pending_incoming: 16,
            request_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(120),
            max_queued_frames: 4,
            max_commands: 64,
            max_events: 1024,
            credential: None,
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
    /// The engine's counters.
    pub engine: moot_sync::Stats,
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
    /// A peer broke the protocol and was disconnected.
    Misbehaved {
        /// The peer.
        peer: libp2p::PeerId,
        /// What it did.
        reason: String,
    },
}

/// The libp2p behaviour of a Moot node.
#[derive(NetworkBehaviour)]
struct Behaviour {
    limits: connection_limits::Behaviour,
    identify: identify::Behaviour,
    ping: ping::Behaviour,
    sync: request_response::Behaviour<SyncCodec>,
    mdns: Toggle<mdns::tokio::Behaviour>,
}

/// A work item for the node's task.
type StateFn<S> = Box<dyn FnOnce(&mut Replica, &mut S) + Send>;

enum Command<S> {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Dial(Multiaddr, oneshot::Sender<Result<(), NetError>>),
    Stats(oneshot::Sender<NetStats>),
    Subscribe(oneshot::Sender<broadcast::Receiver<NetEvent>>),
    WithState(StateFn<S>),
    ReevaluateLanes,
    Shutdown,
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
    credential: Option<Vec<u8>>,
    max_queued_frames: usize,
    start: Instant,
    links: BTreeMap<PeerId, Link>,
    ids: HashMap<libp2p::PeerId, PeerId>,
    next_id: u64,
    commands: mpsc::Receiver<Command<S>>,
    listen_waiters: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    disconnected_for_misbehaviour: u64,
    events: broadcast::Sender<NetEvent>,
}

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
            .with_max_pending_incoming(Some(config.max_pending_incoming));
        let discovery = config.discovery;
        let request_timeout = config.request_timeout;
        let mut swarm = SwarmBuilder::with_existing_identity(keypair)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| transport(&e))?
            .with_behaviour(
                |key| -> Result<Behaviour, Box<dyn StdError + Send + Sync>> {
                    let mdns = match discovery {
                        Discovery::Off => None,
                        Discovery::Mdns => Some(mdns::tokio::Behaviour::new(
                            mdns::Config::default(),
                            key.public().to_peer_id(),
                        )?),
                    };
                    Ok(Behaviour {
                        limits: connection_limits::Behaviour::new(limits),
                        identify: identify::Behaviour::new(identify::Config::new(
                            IDENTIFY_PROTOCOL.into(),
                            key.public(),
                        )),
                        ping: ping::Behaviour::default(),
                        sync: protocol::behaviour(request_timeout),
                        mdns: Toggle::from(mdns),
                    })
                },
            )
            .map_err(|e| transport(&e))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(config.idle_timeout))
            .build();
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        let (tx, rx) = mpsc::channel(config.max_commands.max(1));
        let node = NetNode {
            swarm,
            engine: Engine::new(config.engine),
            replica,
            store,
            lanes_for,
            credential: config.credential.clone(),
            max_queued_frames: config.max_queued_frames.max(1),
            start: Instant::now(),
            links: BTreeMap::new(),
            ids: HashMap::new(),
            next_id: 1,
            commands: rx,
            listen_waiters: Vec::new(),
            disconnected_for_misbehaviour: 0,
            events: broadcast::channel(config.max_events.max(1)).0,
        };
        Ok((node, NetHandle { commands: tx }))
    }

    /// This node's libp2p peer id (its device key).
    pub fn peer_id(&self) -> libp2p::PeerId {
        *self.swarm.local_peer_id()
    }

    /// Runs until [`NetHandle::shutdown`] or every handle is dropped, and gives back the
    /// replica and store. Stops with an error if the store fails.
    pub async fn run(mut self) -> Result<(Replica, S), NetError> {
        loop {
            self.pump()?;
            let deadline = self
                .engine
                .poll_timeout()
                .map(|ms| self.start + Duration::from_millis(ms));
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event)?,
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => break,
                    Some(command) => self.on_command(command),
                },
                () = sleep_until(deadline) => self.engine.handle_timeout(self.now_ms()),
            }
        }
        Ok((self.replica, self.store))
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Moves frames from the engine to the peers, and acts on the engine's events.
    fn pump(&mut self) -> Result<(), NetError> {
        let now_ms = self.now_ms();
        loop {
            for link in self.links.values_mut() {
                if link.in_flight.is_none()
                    && let Some(frame) = link.queue.pop_front()
                {
                    let sync = &mut self.swarm.behaviour_mut().sync;
                    link.in_flight = Some(sync.send_request(&link.peer, SyncRequest::Frame(frame)));
                }
            }
            if self
                .links
                .values()
                .any(|l| l.queue.len() >= self.max_queued_frames)
            {
                break;
            }
            let Some(transmit) = self
                .engine
                .poll_transmit(now_ms, &self.replica, &self.store)?
            else {
                break;
            };
            if let Some(link) = self.links.get_mut(&transmit.peer) {
                link.queue.push_back(transmit.frame);
            }
        }
        while let Some(event) = self.engine.poll_event() {
            match event {
                Event::Misbehaved { peer, reason } => {
                    if let Some(link) = self.links.get(&peer) {
                        let peer = link.peer;
                        self.drop_peer(peer, format!("{reason:?}"));
                    }
                }
                Event::Presented { peer, credential } => {
                    if let Some(link) = self.links.get_mut(&peer) {
                        let lanes = (self.lanes_for)(&link.device, Some(&credential));
                        link.credential = Some(credential);
                        if self.engine.peer_lanes(peer) != Some(lanes) {
                            let _ = self.engine.set_peer_lanes(peer, lanes);
                        }
                    }
                }
                Event::Stored { peer, op_count } => {
                    if let Some(link) = self.links.get(&peer) {
                        self.emit(NetEvent::Stored {
                            peer: link.peer,
                            op_count,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Closes every connection to `peer` for breaking the protocol (its session ends when the
    /// last connection is closed).
    fn drop_peer(&mut self, peer: libp2p::PeerId, reason: String) {
        if self.swarm.disconnect_peer_id(peer).is_ok() {
            self.disconnected_for_misbehaviour += 1;
            self.emit(NetEvent::Misbehaved { peer, reason });
        }
    }

    fn emit(&self, event: NetEvent) {
        // No subscriber is not an error.
        let _ = self.events.send(event);
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) -> Result<(), NetError> {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                num_established,
                ..
            } if num_established.get() == 1 => {
                let Ok(device) = device_of(&peer_id) else {
                    // Not an Ed25519 identity: not a Moot device.
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                    return Ok(());
                };
                let role = if endpoint.is_dialer() {
                    Role::Dialer
                } else {
                    Role::Listener
                };
                let lanes = (self.lanes_for)(&device, None);
                let id = PeerId(self.next_id);
                self.next_id += 1;
                self.engine.connect(self.now_ms(), id, role, lanes)?;
                if let Some(credential) = &self.credential {
                    self.engine.present(id, credential.clone())?;
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
                    },
                );
                self.emit(NetEvent::Connected {
                    peer: peer_id,
                    device,
                    lanes,
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
                        self.engine.present(id, credential.clone())?;
                    }
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                ..
            } => {
                if let Some(id) = self.ids.remove(&peer_id) {
                    self.links.remove(&id);
                    self.engine.disconnect(id, &mut self.replica);
                    self.emit(NetEvent::Disconnected { peer: peer_id });
                }
            }
            SwarmEvent::NewListenAddr { .. } => {
                let addrs: Vec<Multiaddr> = self.swarm.listeners().cloned().collect();
                for waiter in self.listen_waiters.drain(..) {
                    let _ = waiter.send(addrs.clone());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Sync(event)) => self.on_sync_event(event)?,
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(found))) => {
                for (peer, addr) in found {
                    let opts = DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .addresses(vec![addr])
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
            } => match request {
                SyncRequest::Frame(frame) => {
                    if let Some(&id) = self.ids.get(&peer) {
                        let now_ms = self.now_ms();
                        self.engine.handle_frame(
                            now_ms,
                            id,
                            &frame,
                            &mut self.replica,
                            &mut self.store,
                        )?;
                    }
                    // Handled (or dropped): the peer may send the next frame. A closed stream
                    // only means the peer is gone.
                    let _ = self.swarm.behaviour_mut().sync.send_response(channel, Ack);
                }
                // Over the frame limit: no honest node sends it.
                SyncRequest::Oversized { len } => {
                    self.drop_peer(peer, format!("announced a frame of {len} bytes"));
                }
            },
            request_response::Event::Message {
                peer,
                message: request_response::Message::Response { request_id, .. },
                ..
            } => {
                if let Some(link) = self.link_of(&peer)
                    && link.in_flight == Some(request_id)
                {
                    link.in_flight = None;
                }
            }
            request_response::Event::OutboundFailure {
                peer, request_id, ..
            } => {
                // The frame may be lost, and the next ones would arrive out of order: end the
                // session (it restarts, with a fresh exchange of heads, on the next connection).
                if let Some(link) = self.link_of(&peer)
                    && link.in_flight == Some(request_id)
                {
                    link.in_flight = None;
                    let _ = self.swarm.disconnect_peer_id(peer);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn link_of(&mut self, peer: &libp2p::PeerId) -> Option<&mut Link> {
        let id = self.ids.get(peer)?;
        self.links.get_mut(id)
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
                let opts = match addr.iter().last() {
                    Some(Protocol::P2p(peer)) => DialOpts::peer_id(peer)
                        .condition(PeerCondition::DisconnectedAndNotDialing)
                        .addresses(vec![addr])
                        .build(),
                    _ => DialOpts::unknown_peer_id().address(addr).build(),
                };
                let result = match self.swarm.dial(opts) {
                    Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => Ok(()),
                    Err(e) => Err(NetError::Dial(e.to_string())),
                };
                let _ = reply.send(result);
            }
            Command::Stats(reply) => {
                let _ = reply.send(NetStats {
                    peers: self.links.values().map(|l| l.peer).collect(),
                    disconnected_for_misbehaviour: self.disconnected_for_misbehaviour,
                    engine: self.engine.stats(),
                });
            }
            Command::Subscribe(reply) => {
                let _ = reply.send(self.events.subscribe());
            }
            Command::WithState(f) => f(&mut self.replica, &mut self.store),
            Command::ReevaluateLanes => {
                for (&id, link) in &self.links {
                    let lanes = (self.lanes_for)(&link.device, link.credential.as_deref());
                    if self.engine.peer_lanes(id) != Some(lanes) {
                        // Every link has a session: connect and disconnect go together.
                        let _ = self.engine.set_peer_lanes(id, lanes);
                    }
                }
            }
            Command::Shutdown => {}
        }
    }
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

    /// Starts dialing `addr`. If it ends in `/p2p/<peer id>` and that peer is connected or
    /// being dialed already, nothing is done. The sync session starts when the connection is
    /// up.
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
        self.ask(|tx| {
            Command::WithState(Box::new(move |replica: &mut Replica, store: &mut S| {
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

    /// Stops the node ([`NetNode::run`] returns). Does nothing if it has stopped already.
    pub async fn shutdown(&self) {
        let _ = self.commands.send(Command::Shutdown).await;
    }
}
