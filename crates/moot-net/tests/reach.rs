//! Reaching peers, on loopback only (127.0.0.1, mDNS off): QUIC alone, a kept peer that
//! restarts on the same port (redialed with backoff, without being told), a bootstrap address
//! that comes up late, a node reachable only through a relay's circuit, and a plain libp2p
//! swarm (identify + ping only) that identifies and pings a Moot node.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{Multiaddr, SwarmBuilder, identify, noise, ping, tcp, yamux};
use moot_net::{Backoff, NetConfig, NetEvent, RelayServer, protocol};
use moot_state::sample;
use moot_sync::Lanes;

mod common;
use common::*;

fn addr(text: &str) -> Multiaddr {
    text.parse().unwrap()
}

/// Quick redials, so the tests do not wait out the default 1 s doubling.
fn quick() -> Backoff {
    Backoff {
        initial: Duration::from_millis(100),
        max: Duration::from_millis(800),
        jitter_percent: 20,
    }
}

fn listening(on: &str) -> NetConfig {
    NetConfig {
        listen: vec![addr(on)],
        backoff: quick(),
        ..NetConfig::default()
    }
}

async fn write(node: &Running, ops: &[Vec<u8>]) {
    let ops = ops.to_vec();
    node.handle
        .with_state(move |replica, store| load(replica, store, &ops))
        .await
        .unwrap();
}

#[tokio::test]
async fn two_nodes_sync_over_quic_alone() {
    let sample = sample::poll_history(40);
    let (held_back, early) = sample.ballots.split_at(5);
    let history = history(&sample, early);
    let quic = "/ip4/127.0.0.1/udp/0/quic-v1";
    let a = start(1, sample.hub, &history, listening(quic), everyone()).await;
    let b = start(2, sample.hub, &[], listening(quic), everyone()).await;
    let a_addr = a.addr.clone().unwrap();
    assert!(
        a_addr.iter().any(|p| matches!(p, Protocol::QuicV1)),
        "{a_addr}"
    );
    // Neither node has a TCP listener: the only way between them is QUIC.
    b.handle.dial(a_addr).await.unwrap();
    let want = ids(&a).await;
    eventually("b holds a's ops over QUIC", || async {
        ids(&b).await == want
    })
    .await;
    write(&b, held_back).await;
    let want = ids(&b).await;
    assert_eq!(want.len(), sample.setup.len() + sample.ballots.len());
    eventually("a holds b's new ops over QUIC", || async {
        ids(&a).await == want
    })
    .await;
    stop(a).await;
    stop(b).await;
}

/// A second node told to listen on the TCP port a running node holds is refused, naming the
/// address: libp2p's listeners share a port with any socket of the same user that asks, so it
/// would otherwise listen beside the first and each get some of the other's connections.
#[tokio::test]
async fn a_second_node_on_a_taken_tcp_port_is_refused() {
    let (hub, history) = sample::history(2, 0);
    let a = start(
        1,
        hub,
        &history,
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let port = a
        .addr
        .as_ref()
        .and_then(|addr| {
            addr.iter().find_map(|p| match p {
                Protocol::Tcp(port) => Some(port),
                _ => None,
            })
        })
        .unwrap();
    let taken: Multiaddr = format!("/ip4/127.0.0.1/tcp/{port}").parse().unwrap();
    let keypair = moot_net::keypair(&sample::key(7, 2)).unwrap();
    let replica = moot_state::Replica::new(hub, moot_state::Limits::default());
    let refused = moot_net::NetNode::new(
        keypair,
        NetConfig {
            listen: vec![taken.clone()],
            ..NetConfig::default()
        },
        replica,
        moot_sync::MemoryStore::new(),
        everyone(),
    );
    match refused {
        Err(moot_net::NetError::Listen { addr, reason }) => {
            assert_eq!(addr, taken);
            assert!(reason.contains("another node"), "{reason}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(_) => panic!("a second node listened on a taken port"),
    }
    stop(a).await;
}

/// A node may listen on one port number over IPv4 and IPv6 at once: the check for a taken
/// port probes IPv6 alone, as libp2p listens, so the node's own IPv4 listener does not count.
/// (Skipped where this machine has no IPv6 loopback.)
#[tokio::test]
async fn one_port_over_ipv4_and_ipv6_is_not_taken_by_the_node_itself() {
    if std::net::TcpListener::bind("[::]:0").is_err() {
        eprintln!("no IPv6 loopback here: nothing to check");
        return;
    }
    // Every address of each family (as `moot serve` would be told): a probe on `[::]` that
    // also took IPv4 would collide with the node's own `0.0.0.0` listener. Nothing is sent.
    let port = std::net::TcpListener::bind("0.0.0.0:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (hub, history) = sample::history(2, 0);
    let mut config = listening(&format!("/ip4/0.0.0.0/tcp/{port}"));
    config
        .listen
        .push(format!("/ip6/::/tcp/{port}").parse().unwrap());
    let a = start(1, hub, &history, config, everyone()).await;
    let addrs = a.handle.listen_addrs().await.unwrap();
    assert!(!addrs.is_empty());
    stop(a).await;
}

#[tokio::test]
async fn a_kept_peer_that_restarts_on_the_same_port_is_redialed_and_syncs() {
    let sample = sample::poll_history(40);
    let (late, early) = sample.ballots.split_at(10);
    let (while_down, after_restart) = late.split_at(5);
    let history = history(&sample, early);
    let a = start(
        1,
        sample.hub,
        &history,
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let b = start(
        2,
        sample.hub,
        &[],
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let b_addr = b.addr.clone().unwrap();
    let b_peer = b.peer;
    let mut a_events = a.handle.subscribe().await.unwrap();
    a.handle.dial(b_addr.clone()).await.unwrap();
    let want = ids(&a).await;
    eventually("b holds a's ops", || async { ids(&b).await == want }).await;
    assert_eq!(a.handle.stats().await.unwrap().redials, 0);

    // b goes away; a writes meanwhile.
    let (b_replica, b_store) = stop(b).await;
    eventually("a sees b gone", || async {
        a.handle.stats().await.unwrap().peers.is_empty()
    })
    .await;
    write(&a, while_down).await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    // b comes back on the same address with the same identity and its store; nobody dials.
    let mut config = listening("/ip4/127.0.0.1/tcp/0");
    config.listen = vec![b_addr.clone()];
    let b = run(2, b_replica, b_store, config, everyone()).await;
    assert_eq!(b.peer, b_peer);
    assert_eq!(b.addr.as_ref(), Some(&b_addr));
    let want = ids(&a).await;
    eventually("b holds what a wrote while it was down", || async {
        ids(&b).await == want
    })
    .await;
    // And the other way: an op written at b after the restart reaches a.
    write(&b, after_restart).await;
    let want = ids(&b).await;
    assert_eq!(want.len(), sample.setup.len() + sample.ballots.len());
    eventually("a holds b's op written after the restart", || async {
        ids(&a).await == want
    })
    .await;
    assert!(a.handle.stats().await.unwrap().redials >= 1);
    // a saw b connect, go, and connect again.
    let mut seen = Vec::new();
    while let Ok(event) = a_events.try_recv() {
        match event {
            NetEvent::Connected { peer, .. } if peer == b_peer => seen.push("up"),
            NetEvent::Disconnected { peer } if peer == b_peer => seen.push("down"),
            _ => {}
        }
    }
    assert_eq!(seen, ["up", "down", "up"]);
    stop(a).await;
    stop(b).await;
}

#[tokio::test]
async fn a_bootstrap_address_down_at_start_is_reached_when_it_comes_up() {
    let sample = sample::poll_history(20);
    let history = history(&sample, &sample.ballots);
    // Find a free address for b, then take b down.
    let b = start(
        2,
        sample.hub,
        &history,
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let b_addr = b.addr.clone().unwrap();
    let (b_replica, b_store) = stop(b).await;

    // a starts with b as its bootstrap address and listens on nothing.
    let config = NetConfig {
        bootstrap: vec![b_addr.clone()],
        backoff: quick(),
        ..NetConfig::default()
    };
    let a = start(1, sample.hub, &[], config, everyone()).await;
    eventually("a has retried", || async {
        a.handle.stats().await.unwrap().redials >= 2
    })
    .await;
    assert!(ids(&a).await.is_empty());

    let mut config = listening("/ip4/127.0.0.1/tcp/0");
    config.listen = vec![b_addr];
    let b = run(2, b_replica, b_store, config, everyone()).await;
    let want = ids(&b).await;
    assert_eq!(want.len(), history.len());
    eventually("a reached its bootstrap peer and synced", || async {
        ids(&a).await == want
    })
    .await;
    stop(a).await;
    stop(b).await;
}

#[tokio::test]
async fn a_node_listening_through_a_relay_is_reachable_and_syncs_over_the_circuit() {
    let sample = sample::poll_history(30);
    let history = history(&sample, &sample.ballots);
    // The relay: a Moot node in relay mode that sends nobody anything of its own (no lanes),
    // so whatever reaches a came from b, through the circuit.
    let relay_config = NetConfig {
        relay_server: Some(RelayServer::default()),
        ..listening("/ip4/127.0.0.1/tcp/0")
    };
    let r = start(
        3,
        sample.hub,
        &[],
        relay_config,
        Box::new(|_, _| Lanes::NONE),
    )
    .await;
    let r_addr = r.addr.clone().unwrap();

    // b listens only through r's circuit: no address of its own.
    let b_config = NetConfig {
        listen: vec![r_addr.clone().with(Protocol::P2pCircuit)],
        backoff: quick(),
        ..NetConfig::default()
    };
    let b = start(2, sample.hub, &history, b_config, everyone()).await;
    let b_addr = b.addr.clone().unwrap();
    assert_eq!(
        b_addr,
        r_addr
            .clone()
            .with(Protocol::P2pCircuit)
            .with(Protocol::P2p(b.peer))
    );

    let a = start(
        1,
        sample.hub,
        &[],
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let mut a_events = a.handle.subscribe().await.unwrap();
    a.handle.dial(b_addr).await.unwrap();
    let want = ids(&b).await;
    eventually("a holds b's ops, through the relay", || async {
        ids(&a).await == want
    })
    .await;
    // a's session with b started on a relayed connection.
    let mut relayed = None;
    while let Ok(event) = a_events.try_recv() {
        if let NetEvent::Connected {
            peer, relayed: r, ..
        } = event
            && peer == b.peer
        {
            relayed.get_or_insert(r);
        }
    }
    assert_eq!(relayed, Some(true));
    // The relay stored nothing it could have passed on to a (it sends no lane), yet a holds
    // everything: the ops crossed the circuit.
    assert!(r.handle.stats().await.unwrap().engine.ops_sent == 0);
    stop(a).await;
    stop(b).await;
    stop(r).await;
}

/// What a plain libp2p node needs to identify and ping another.
#[derive(NetworkBehaviour)]
struct Plain {
    identify: identify::Behaviour,
    ping: ping::Behaviour,
}

#[tokio::test]
async fn a_plain_libp2p_swarm_identifies_and_pings_a_moot_node() {
    let sample = sample::poll_history(2);
    let node = start(
        1,
        sample.hub,
        &sample.setup,
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes([42u8; 32]).unwrap();
    let mut plain = SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|key| Plain {
            identify: identify::Behaviour::new(identify::Config::new(
                "other/0.1".into(),
                key.public(),
            )),
            ping: ping::Behaviour::new(
                ping::Config::new().with_interval(Duration::from_millis(200)),
            ),
        })
        .unwrap()
        .build();
    plain.dial(node.addr.clone().unwrap()).unwrap();
    let (info, rtt) = tokio::time::timeout(PATIENCE, async {
        let mut info = None;
        let mut rtt = None;
        loop {
            match plain.select_next_some().await {
                SwarmEvent::Behaviour(PlainEvent::Identify(identify::Event::Received {
                    peer_id,
                    info: received,
                    ..
                })) if peer_id == node.peer => info = Some(received),
                SwarmEvent::Behaviour(PlainEvent::Ping(ping::Event {
                    peer,
                    result: Ok(took),
                    ..
                })) if peer == node.peer => rtt = Some(took),
                _ => {}
            }
            if let (Some(info), Some(rtt)) = (&info, rtt) {
                return (info.clone(), rtt);
            }
        }
    })
    .await
    .expect("identified and pinged in time");
    assert_eq!(info.protocol_version, moot_net::PROTOCOL_VERSION);
    assert_eq!(info.protocol_version, "moot/2");
    assert!(
        info.agent_version.starts_with("moot/"),
        "{}",
        info.agent_version
    );
    assert_eq!(info.public_key.to_peer_id(), node.peer);
    let protocols: Vec<String> = info.protocols.iter().map(|p| p.to_string()).collect();
    for expected in [
        protocol::SYNC_PROTOCOL.as_ref(),
        "/ipfs/id/1.0.0",
        "/ipfs/ping/1.0.0",
        "/libp2p/circuit/relay/0.2.0/stop",
    ] {
        assert!(
            protocols.iter().any(|p| p == expected),
            "{expected} not in {protocols:?}"
        );
    }
    // DCUtR is offered on relayed connections only; not a relay unless asked.
    assert!(
        !protocols.iter().any(|p| p == "/libp2p/dcutr"),
        "{protocols:?}"
    );
    assert!(
        !protocols.iter().any(|p| p.ends_with("/hop")),
        "{protocols:?}"
    );
    assert!(
        info.listen_addrs
            .iter()
            .any(|a| a.iter().any(|p| matches!(p, Protocol::Tcp(_))))
    );
    assert!(rtt < PATIENCE);
    stop(node).await;
}

/// A peer that may receive nothing of the hub and sends no ops is disconnected once its grace
/// is over; a peer that may receive a lane stays, and so does a stranger this node dialed on
/// purpose (a relay it listens through is one).
#[tokio::test]
async fn a_stranger_that_may_receive_nothing_is_disconnected_after_its_grace() {
    let sample = sample::poll_history(5);
    let history = history(&sample, &sample.ballots);
    let stranger = sample::key(7, 2).public();
    let dialed = sample::key(7, 4).public();
    let config = NetConfig {
        stranger_grace: Duration::from_millis(500),
        ..listening("/ip4/127.0.0.1/tcp/0")
    };
    // a: a members-only hub's node, to which device 2 is unknown and device 3 a member.
    let a = start(
        1,
        sample.hub,
        &history,
        config,
        Box::new(move |device, _| {
            if *device == stranger || *device == dialed {
                Lanes::NONE
            } else {
                Lanes::ALL
            }
        }),
    )
    .await;
    let a_addr = a.addr.clone().unwrap();
    let mut events = a.handle.subscribe().await.unwrap();
    let b = start(
        2,
        sample.hub,
        &[],
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let c = start(
        3,
        sample.hub,
        &[],
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    let d = start(
        4,
        sample.hub,
        &[],
        listening("/ip4/127.0.0.1/tcp/0"),
        everyone(),
    )
    .await;
    b.handle.dial(a_addr.clone()).await.unwrap();
    c.handle.dial(a_addr).await.unwrap();
    a.handle.dial(d.addr.clone().unwrap()).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut b_left = false;
    while !b_left {
        let event = tokio::time::timeout_at(deadline, events.recv())
            .await
            .expect("the stranger disconnected in time")
            .unwrap();
        if let NetEvent::Disconnected { peer } = event {
            assert_eq!(peer, b.peer, "only the stranger is disconnected");
            b_left = true;
        }
    }
    // c, a member, synced and is still connected well past the grace.
    let want = ids(&a).await;
    eventually("c holds a's ops", || async { ids(&c).await == want }).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let peers = a.handle.stats().await.unwrap().peers;
    assert!(peers.contains(&c.peer), "{peers:?}");
    assert!(peers.contains(&d.peer), "{peers:?}");
    stop(d).await;
    stop(a).await;
    stop(b).await;
    stop(c).await;
}
