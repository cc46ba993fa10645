//! What the network tests share: nodes of sample devices in one process, on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libp2p::Multiaddr;
use moot_crypto::{HubId, OpId, PublicKey};
use moot_net::{LanesFor, NetConfig, NetError, NetHandle, NetNode};
use moot_state::{Limits, Replica, sample};
use moot_sync::{Lanes, MemoryStore, OpStore};
use tokio::task::JoinHandle;

/// Every wait in these tests gives up after this.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// A bare libp2p swarm (TCP, Noise, Yamux) as sample device `n`, running `behaviour` alone:
/// a peer that speaks the sync protocol however a test makes it.
pub fn bare_swarm<B: libp2p::swarm::NetworkBehaviour>(n: usize, behaviour: B) -> libp2p::Swarm<B> {
    libp2p::SwarmBuilder::with_existing_identity(moot_net::keypair(&sample::key(7, n)).unwrap())
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default(),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| behaviour)
        .unwrap()
        .build()
}

pub struct Running {
    pub handle: NetHandle<MemoryStore>,
    pub task: JoinHandle<Result<(Replica, MemoryStore), NetError>>,
    pub peer: libp2p::PeerId,
    pub device: PublicKey,
    /// The first listen address, ending in the node's peer id (none if it listens on nothing).
    pub addr: Option<Multiaddr>,
}

impl Running {
    /// The listen address of a node that listens.
    pub fn at(&self) -> Multiaddr {
        self.addr.clone().expect("the node listens")
    }
}

/// Inserts ops as local ones and stores what the replica keeps.
pub fn load(replica: &mut Replica, store: &mut MemoryStore, ops: &[Vec<u8>]) {
    for insertion in replica.insert_batch(ops) {
        let kept: Vec<_> = insertion
            .kept
            .iter()
            .map(|(op, v)| (op.get(), *v))
            .collect();
        store.put_kept(&kept).unwrap();
    }
}

/// Device `n` (`sample::key(7, n)`) running with `replica` and `store` under `config`.
pub async fn run(
    n: usize,
    replica: Replica,
    store: MemoryStore,
    config: NetConfig,
    lanes_for: LanesFor,
) -> Running {
    let device = sample::key(7, n);
    let keypair = moot_net::keypair(&device).unwrap();
    let listens = !config.listen.is_empty();
    let (node, handle) = NetNode::new(keypair, config, replica, store, lanes_for).unwrap();
    let peer = node.peer_id();
    let task = tokio::spawn(node.run());
    let addr = if listens {
        let addrs = tokio::time::timeout(PATIENCE, handle.listen_addrs())
            .await
            .expect("a listen address in time")
            .unwrap();
        // A relayed listen address ends in the node's id already.
        Some(addrs[0].clone().with_p2p(peer).unwrap())
    } else {
        None
    };
    Running {
        handle,
        task,
        peer,
        device: device.public(),
        addr,
    }
}

/// Device `n` holding `ops`, under `config`.
pub async fn start(
    n: usize,
    hub: HubId,
    ops: &[Vec<u8>],
    config: NetConfig,
    lanes_for: LanesFor,
) -> Running {
    let mut replica = Replica::new(hub, Limits::default());
    let mut store = MemoryStore::new();
    load(&mut replica, &mut store, ops);
    assert_eq!(store.len(), ops.len(), "every sample op is kept");
    run(n, replica, store, config, lanes_for).await
}

/// Both lanes for every peer.
pub fn everyone() -> LanesFor {
    Box::new(|_, _| Lanes::ALL)
}

/// Both lanes for every peer but `device`, which gets the public lane only while `public_only`
/// is set (a guest promoted, or a member's device revoked, when the test flips it).
pub fn public_only_while(device: PublicKey, public_only: Arc<AtomicBool>) -> LanesFor {
    Box::new(move |peer, _| {
        if *peer == device && public_only.load(Ordering::SeqCst) {
            Lanes::PUBLIC
        } else {
            Lanes::ALL
        }
    })
}

/// The ids a node's store holds.
pub async fn ids(node: &Running) -> BTreeSet<OpId> {
    node.handle
        .with_state(|_, store| store.ids())
        .await
        .unwrap()
}

/// Waits until `check` holds, polling; fails the test after [`PATIENCE`].
pub async fn eventually<F: Future<Output = bool>>(what: &str, mut check: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Stops a node → its replica and store.
pub async fn stop(node: Running) -> (Replica, MemoryStore) {
    node.handle.shutdown().await;
    node.task.await.unwrap().unwrap()
}

/// A sample poll's setup ops followed by `ballots` (some or all of its ballots).
pub fn history(sample: &sample::PollSample, ballots: &[Vec<u8>]) -> Vec<Vec<u8>> {
    sample.setup.iter().chain(ballots).cloned().collect()
}
