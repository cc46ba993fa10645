//! Real libp2p nodes in one process, on loopback only (`/ip4/127.0.0.1/tcp/0`, mDNS off):
//! an empty node catches up, a third joins through either, a guest gets the public lane only
//! until promoted, and a peer sending garbage on `/moot/sync/2` is disconnected while the
//! honest pair carries on.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use libp2p::futures::StreamExt;
use libp2p::futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, StreamProtocol, request_response};
use moot_crypto::{HubId, Lane, SignedOp};
use moot_net::{LanesFor, NetConfig, NetEvent, protocol};
use moot_state::sample;
use moot_sync::MemoryStore;
use moot_sync::wire::MAX_MESSAGE_BYTES;

mod common;
use common::*;

/// A node of device `n` on loopback, holding `ops`, listening on TCP.
async fn start(n: usize, hub: HubId, ops: &[Vec<u8>], lanes_for: LanesFor) -> Running {
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..NetConfig::default()
    };
    common::start(n, hub, ops, config, lanes_for).await
}

#[tokio::test]
async fn an_empty_node_catches_up_and_a_third_joins_through_either() {
    let sample = sample::poll_history(200);
    let (held_back, early) = sample.ballots.split_at(10);
    let history = history(&sample, early);
    let a = start(1, sample.hub, &history, everyone()).await;
    let b = start(2, sample.hub, &[], everyone()).await;
    let mut b_events = b.handle.subscribe().await.unwrap();
    b.handle.dial(a.at()).await.unwrap();
    let want = ids(&a).await;
    assert_eq!(want.len(), history.len());
    eventually("b holds a's ops", || async { ids(&b).await == want }).await;
    // b was told what it stored, and from whom.
    let mut stored = 0;
    while let Ok(event) = b_events.try_recv() {
        if let NetEvent::Stored { op_count, .. } = event {
            stored += op_count;
        }
    }
    assert_eq!(stored, history.len());

    // A third node joins through b (which learned everything from a), and a ballot written at
    // a afterwards reaches it through b: gossip and catch-up are one stream.
    let c = start(3, sample.hub, &[], everyone()).await;
    c.handle.dial(b.at()).await.unwrap();
    eventually("c holds b's ops", || async { ids(&c).await == want }).await;
    let new = held_back.to_vec();
    a.handle
        .with_state(move |replica, store| load(replica, store, &new))
        .await
        .unwrap();
    let want = ids(&a).await;
    assert_eq!(want.len(), sample.setup.len() + sample.ballots.len());
    eventually("b and c hold the new ballots", || async {
        ids(&b).await == want && ids(&c).await == want
    })
    .await;

    // And a fourth catches up from a directly.
    let d = start(4, sample.hub, &[], everyone()).await;
    d.handle.dial(a.at()).await.unwrap();
    eventually("d holds a's ops", || async { ids(&d).await == want }).await;

    for node in [&a, &b, &c, &d] {
        assert_eq!(
            node.handle
                .stats()
                .await
                .unwrap()
                .disconnected_for_misbehaviour,
            0
        );
    }
    let (mut replica_a, _) = stop(a).await;
    let (mut replica_c, _) = stop(c).await;
    // Same ops, same poll state.
    assert_eq!(
        format!("{:?}", replica_a.polls()),
        format!("{:?}", replica_c.polls())
    );
    stop(b).await;
    stop(d).await;
}

#[tokio::test]
async fn peers_that_dial_each_other_at_once_still_converge() {
    let sample = sample::poll_history(30);
    let (held_back, early) = sample.ballots.split_at(10);
    let history = history(&sample, early);
    for _ in 0..3 {
        let a = start(1, sample.hub, &history, everyone()).await;
        let b = start(2, sample.hub, &[], everyone()).await;
        let (ab, ba) = tokio::join!(b.handle.dial(a.at()), a.handle.dial(b.at()));
        ab.unwrap();
        ba.unwrap();
        let want = ids(&a).await;
        eventually("b holds a's ops", || async { ids(&b).await == want }).await;
        // And the other way: ops written at b reach a.
        let new = held_back.to_vec();
        b.handle
            .with_state(move |replica, store| load(replica, store, &new))
            .await
            .unwrap();
        let want = ids(&b).await;
        assert_eq!(want.len(), sample.setup.len() + sample.ballots.len());
        eventually("a holds b's new ops", || async { ids(&a).await == want }).await;
        // Dialing a connected peer again opens no new connection.
        a.handle.dial(b.at()).await.unwrap();
        stop(a).await;
        stop(b).await;
    }
}

#[tokio::test]
async fn a_guest_receives_no_members_lane_op_until_promoted() {
    let sample = sample::poll_history(20);
    let history = history(&sample, &sample.ballots);
    let guest_device = sample::key(7, 2).public();
    let guest_only = Arc::new(AtomicBool::new(true));
    let lanes_for = public_only_while(guest_device, guest_only.clone());
    let a = start(1, sample.hub, &history, lanes_for).await;
    let guest = start(2, sample.hub, &[], everyone()).await;
    assert_eq!(guest.device, guest_device);
    guest.handle.dial(a.at()).await.unwrap();

    let lanes_of = |store: &MemoryStore| -> Vec<Lane> {
        store
            .stored()
            .map(|(bytes, _)| SignedOp::decode(bytes).unwrap().lane())
            .collect()
    };
    let public: usize = a
        .handle
        .with_state(move |_, store| lanes_of(store))
        .await
        .unwrap()
        .into_iter()
        .filter(|lane| *lane == Lane::Public)
        .count();
    assert!(public > 0 && public < history.len());
    eventually("the guest holds the public lane", || async {
        ids(&guest).await.len() == public
    })
    .await;
    // Time for anything else to arrive, were it to be sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lanes = guest
        .handle
        .with_state(move |_, store| lanes_of(store))
        .await
        .unwrap();
    assert_eq!(lanes.len(), public);
    assert!(lanes.iter().all(|lane| *lane == Lane::Public));

    // The roll changed: the node asks again, and the members lane follows.
    guest_only.store(false, Ordering::SeqCst);
    a.handle.reevaluate_lanes().await.unwrap();
    let want = ids(&a).await;
    eventually("the promoted guest holds everything", || async {
        ids(&guest).await == want
    })
    .await;
    stop(a).await;
    stop(guest).await;
}

#[tokio::test]
async fn peers_sending_garbage_or_forged_ops_are_disconnected_and_the_honest_pair_carries_on() {
    let sample = sample::poll_history(20);
    let (held_back, early) = sample.ballots.split_at(5);
    let history = history(&sample, early);
    let a = start(1, sample.hub, &history, everyone()).await;
    let b = start(2, sample.hub, &[], everyone()).await;
    b.handle.dial(a.at()).await.unwrap();
    let want = ids(&a).await;
    eventually("b holds a's ops", || async { ids(&b).await == want }).await;

    let mut events = a.handle.subscribe().await.unwrap();
    // A device that speaks the sync protocol's framing but sends a frame that is no message.
    let rogue = protocol::behaviour(Duration::from_secs(5));
    let frame = b"\x01\xffnot a sync message".to_vec();
    assert!(
        rogue_is_disconnected(
            666,
            rogue,
            || protocol::SyncRequest::Frame(frame.clone()),
            &a.at()
        )
        .await,
        "the rogue peer was not disconnected"
    );
    let stats = a.handle.stats().await.unwrap();
    assert_eq!(stats.disconnected_for_misbehaviour, 1);
    assert!(stats.engine.frames_dropped >= 1);
    // Subscribers heard of it: connected (as its device), reported, disconnected.
    let rogue = sample::key(7, 666).public();
    let mut seen = Vec::new();
    let gone = tokio::time::timeout(PATIENCE, async {
        loop {
            let event = events.recv().await.unwrap();
            let done = matches!(event, NetEvent::Disconnected { .. });
            seen.push(event);
            if done {
                return;
            }
        }
    })
    .await;
    assert!(gone.is_ok(), "{seen:?}");
    assert!(matches!(&seen[0], NetEvent::Connected { device, .. } if *device == rogue));
    assert!(
        matches!(&seen[1], NetEvent::Misbehaved { reason, .. } if reason.starts_with("Wire(")),
        "{seen:?}"
    );

    // One that announces a frame over the limit: refused before it is read.
    let liar = request_response::Behaviour::with_codec(
        LyingCodec,
        [(
            protocol::SYNC_PROTOCOL,
            request_response::ProtocolSupport::Full,
        )],
        request_response::Config::default(),
    );
    assert!(
        rogue_is_disconnected(667, liar, Vec::new, &a.at()).await,
        "the lying peer was not disconnected"
    );
    let stats = a.handle.stats().await.unwrap();
    assert_eq!(stats.disconnected_for_misbehaviour, 2);

    // One that sends a well-formed frame holding a forged op (a ballot whose signature was
    // altered): the op is refused, the peer reported and disconnected.
    let mut forged = held_back[0].clone();
    let at = forged.len() - 64;
    forged[at] ^= 0x01;
    let frame = moot_sync::wire::encode(&moot_sync::wire::Message::Ops {
        ops: moot_sync::wire::Bounded::new(vec![moot_sync::wire::OpBytes(forged.clone())]).unwrap(),
    })
    .unwrap();
    let forger = protocol::behaviour(Duration::from_secs(5));
    assert!(
        rogue_is_disconnected(
            668,
            forger,
            || protocol::SyncRequest::Frame(frame.clone()),
            &a.at()
        )
        .await,
        "the forging peer was not disconnected"
    );
    let stats = a.handle.stats().await.unwrap();
    assert_eq!(stats.disconnected_for_misbehaviour, 3);
    let forged_id = moot_crypto::op::id_of_bytes(&forged);
    assert!(!ids(&a).await.contains(&forged_id));

    // One that sends frames (harmless ones: empty requests for ops) without waiting for each
    // to be acknowledged: more than two waiting at once, so it breaks the one-in-flight rule.
    let frame = moot_sync::wire::encode(&moot_sync::wire::Message::Want {
        ids: moot_sync::wire::Bounded::new(Vec::new()).unwrap(),
    })
    .unwrap();
    let impatient = protocol::behaviour(Duration::from_secs(5));
    assert!(
        rogue_sending_at_once_is_disconnected(
            669,
            impatient,
            || protocol::SyncRequest::Frame(frame.clone()),
            64,
            &a.at()
        )
        .await,
        "the impatient peer was not disconnected"
    );
    let stats = a.handle.stats().await.unwrap();
    assert_eq!(stats.disconnected_for_misbehaviour, 4);

    // The honest pair is still connected and still syncing.
    let new = held_back.to_vec();
    a.handle
        .with_state(move |replica, store| load(replica, store, &new))
        .await
        .unwrap();
    let want = ids(&a).await;
    assert_eq!(want.len(), sample.setup.len() + sample.ballots.len());
    eventually("b holds the ballots written after the attack", || async {
        ids(&b).await == want
    })
    .await;
    assert_eq!(a.handle.stats().await.unwrap().peers.len(), 1);
    assert_eq!(
        b.handle
            .stats()
            .await
            .unwrap()
            .disconnected_for_misbehaviour,
        0
    );
    stop(a).await;
    stop(b).await;
}

/// Dials `addr` as device `n` with a bare request-response behaviour, sends what `request`
/// makes once connected, and reports whether the other side closed the connection within [`PATIENCE`].
async fn rogue_is_disconnected<C>(
    n: usize,
    behaviour: request_response::Behaviour<C>,
    request: impl Fn() -> C::Request,
    addr: &Multiaddr,
) -> bool
where
    C: request_response::Codec + Clone + Send + 'static,
{
    rogue_sending_at_once_is_disconnected(n, behaviour, request, 1, addr).await
}

/// [`rogue_is_disconnected`], sending `request` `times` times at once (without waiting for
/// acknowledgements).
async fn rogue_sending_at_once_is_disconnected<C>(
    n: usize,
    behaviour: request_response::Behaviour<C>,
    request: impl Fn() -> C::Request,
    times: usize,
    addr: &Multiaddr,
) -> bool
where
    C: request_response::Codec + Clone + Send + 'static,
{
    let mut rogue = bare_swarm(n, behaviour);
    rogue.dial(addr.clone()).unwrap();
    tokio::time::timeout(PATIENCE, async {
        loop {
            match rogue.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    for _ in 0..times {
                        rogue.behaviour_mut().send_request(&peer_id, request());
                    }
                }
                SwarmEvent::ConnectionClosed { .. } => return,
                _ => {}
            }
        }
    })
    .await
    .is_ok()
}

/// Announces a frame one byte over the limit (and sends a little of it).
#[derive(Debug, Clone, Copy)]
struct LyingCodec;

impl request_response::Codec for LyingCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = ();

    async fn read_request<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<Vec<u8>> {
        Ok(Vec::new())
    }

    async fn read_response<T: AsyncRead + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
    ) -> std::io::Result<()> {
        Ok(())
    }

    async fn write_request<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        _: Vec<u8>,
    ) -> std::io::Result<()> {
        let len = u32::try_from(MAX_MESSAGE_BYTES + 1).unwrap();
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&[0; 1024]).await
    }

    async fn write_response<T: AsyncWrite + Unpin + Send>(
        &mut self,
        _: &StreamProtocol,
        _: &mut T,
        _: (),
    ) -> std::io::Result<()> {
        Ok(())
    }
}

/// What each peer's device presented to a node, in order.
type Seen = Arc<std::sync::Mutex<Vec<(moot_crypto::PublicKey, Vec<u8>)>>>;

/// What a node presents is made for each peer's device, and arrives as made; a credential the
/// engine cannot send (over `MAX_CREDENTIAL_BYTES`) is left out, and the node syncs on rather
/// than stopping.
#[tokio::test]
async fn a_credential_is_made_for_each_peer_and_one_too_long_is_left_out() {
    let sample = sample::poll_history(20);
    let history = history(&sample, &sample.ballots);
    let seen: Seen = Arc::default();
    let recorder = |seen: &Seen| -> LanesFor {
        let seen = Arc::clone(seen);
        Box::new(move |device, presented| {
            if let Some(bytes) = presented {
                seen.lock().unwrap().push((*device, bytes.to_vec()));
            }
            moot_sync::Lanes::ALL
        })
    };
    let listen = || vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    // a presents to each peer the peer's own key; c presents too much.
    let a = common::start(
        1,
        sample.hub,
        &history,
        NetConfig {
            listen: listen(),
            credential: Some(moot_net::Presenter::new(|peer: &moot_crypto::PublicKey| {
                peer.to_bytes().to_vec()
            })),
            ..NetConfig::default()
        },
        recorder(&seen),
    )
    .await;
    let b_seen: Seen = Arc::default();
    let c_seen: Seen = Arc::default();
    let b = common::start(2, sample.hub, &[], NetConfig::default(), recorder(&b_seen)).await;
    let c = common::start(
        3,
        sample.hub,
        &[],
        NetConfig {
            credential: Some(moot_net::Presenter::new(|_: &moot_crypto::PublicKey| {
                vec![7; moot_sync::wire::MAX_CREDENTIAL_BYTES + 1]
            })),
            ..NetConfig::default()
        },
        recorder(&c_seen),
    )
    .await;
    b.handle.dial(a.at()).await.unwrap();
    c.handle.dial(a.at()).await.unwrap();
    let want = ids(&a).await;
    eventually("b and c hold a's ops", || async {
        ids(&b).await == want && ids(&c).await == want
    })
    .await;
    // b and c were each presented their own key by a: made for each. (A node also judges its
    // own device with what it would present itself: the lanes its peers' heads speak for.)
    for (node, got) in [(&b, &b_seen), (&c, &c_seen)] {
        let got: Vec<_> = got
            .lock()
            .unwrap()
            .iter()
            .filter(|(from, _)| *from != node.device)
            .cloned()
            .collect();
        assert!(!got.is_empty());
        assert!(
            got.iter()
                .all(|(from, bytes)| *from == a.device && bytes[..] == node.device.to_bytes()[..]),
            "{got:?}"
        );
    }
    // a got nothing from c (too long to send) and nothing from b (presents nothing).
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(from, _)| *from == a.device)
    );
    stop(a).await;
    stop(b).await;
    stop(c).await;
}

/// How the removal and the op after it reach the middle node.
#[derive(Clone, Copy)]
enum Arrival {
    /// In a frame from a third node.
    FromAPeer,
    /// Written on the middle node itself (a local write, an import).
    Local,
}

/// A member removed in a frame (a removal and a members-lane op written after it, from a third
/// node) is sent none of the frame's later members-lane ops: the node judges its peers' lanes
/// again, by the roll as it now stands, before it sends anything more. (Judged only when the
/// arrivals settled, the removed member's device received them.)
#[tokio::test]
async fn a_member_removed_in_a_frame_is_sent_none_of_its_later_members_ops() {
    removed_member_is_sent_nothing_after(Arrival::FromAPeer).await;
}

/// The same for a removal written on the node itself (`NetHandle::with_state_then_lanes`, as
/// `moot serve` takes in a local write or an import).
#[tokio::test]
async fn a_member_removed_by_a_local_write_is_sent_none_of_its_later_members_ops() {
    removed_member_is_sent_nothing_after(Arrival::Local).await;
}

async fn removed_member_is_sent_nothing_after(arrival: Arrival) {
    use moot_state::body::{Remove, SetName};
    use moot_state::{Body, Roll, Status};
    let (hub, history) = sample::history(3, 0);
    // The founder removes member 2, then writes a members-lane op.
    let mut writer = moot_state::Replica::new(hub, moot_state::Limits::default());
    writer.insert_batch(&history);
    let founder_device = sample::key(2, 0);
    let removed = sample::key(1, 2).public();
    let removal = writer
        .write(
            &founder_device,
            &Body::Remove(Remove {
                member: removed,
                cuts: Vec::new(),
            }),
        )
        .unwrap();
    let after = writer
        .write(
            &founder_device,
            &Body::SetName(SetName {
                member: sample::key(1, 0).public(),
                name: "Written after the removal".into(),
            }),
        )
        .unwrap();
    assert_eq!(
        SignedOp::decode(writer.op_bytes(&after).unwrap())
            .unwrap()
            .lane(),
        Lane::Members
    );
    let news = vec![
        writer.op_bytes(&removal).unwrap().to_vec(),
        writer.op_bytes(&after).unwrap().to_vec(),
    ];
    let mut later = history.clone();
    later.extend(news.iter().cloned());

    // The middle node gives the removed member's device (device 2 here) the lanes the roll
    // gives member 2, reading a roll that only `on_narrowing` (or the local write) updates.
    let mut replica = moot_state::Replica::new(hub, moot_state::Limits::default());
    let mut store = MemoryStore::new();
    load(&mut replica, &mut store, &history);
    let roll: Arc<std::sync::Mutex<Roll>> = Arc::new(std::sync::Mutex::new(replica.roll()));
    let lanes_roll = Arc::clone(&roll);
    let device_2 = sample::key(7, 2).public();
    let lanes_for: LanesFor = Box::new(move |device, _| {
        if *device != device_2 {
            return moot_sync::Lanes::ALL;
        }
        let roll = lanes_roll.lock().unwrap();
        match roll.member(&removed).map(|r| r.status) {
            Some(Status::Member) => moot_sync::Lanes::ALL,
            _ => moot_sync::Lanes::PUBLIC,
        }
    });
    let watched = Arc::clone(&roll);
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        on_narrowing: Some(moot_net::RollWatch::new(move |replica| {
            *watched.lock().unwrap() = replica.public_roll();
        })),
        ..NetConfig::default()
    };
    let middle = common::run(1, replica, store, config, lanes_for).await;
    let member = start(2, hub, &[], everyone()).await;
    member.handle.dial(middle.at()).await.unwrap();
    eventually("the member holds the hub", || async {
        ids(&member).await.len() == history.len()
    })
    .await;
    let third = match arrival {
        Arrival::FromAPeer => {
            let third = start(3, hub, &later, everyone()).await;
            third.handle.dial(middle.at()).await.unwrap();
            Some(third)
        }
        Arrival::Local => {
            let local = Arc::clone(&roll);
            middle
                .handle
                .with_state_then_lanes(move |replica, store| {
                    load(replica, store, &news);
                    *local.lock().unwrap() = replica.roll();
                })
                .await
                .unwrap();
            None
        }
    };
    eventually(
        "the middle node holds the removal and what follows",
        || async { ids(&middle).await.len() == later.len() },
    )
    .await;
    eventually("the removal reaches the removed member", || async {
        ids(&member).await.contains(&removal)
    })
    .await;
    // Time for anything else to arrive, were it to be sent.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !ids(&member).await.contains(&after),
        "the removed member was sent a members-lane op written after its removal"
    );
    if let Some(third) = third {
        stop(third).await;
    }
    stop(member).await;
    stop(middle).await;
}

/// A peer that sends complete sets of heads past the bound, one at a time as the protocol
/// allows, is dropped (the sets ignored), but its address is not refused: a run of honest
/// changes of its lanes could have caused it, and the address may be a whole NAT's. A node
/// from the same address connects at once.
#[tokio::test]
async fn a_peer_past_the_bound_on_sets_of_heads_is_dropped_but_its_address_not_refused() {
    let (hub, history) = sample::history(3, 10);
    let mut config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        limit_loopback: true,
        ..NetConfig::default()
    };
    config.engine.max_heads_sets_per_interval = 3;
    let a = common::start(1, hub, &history, config, everyone()).await;
    let at = a.addr.clone().unwrap();
    let empty_set = moot_sync::wire::encode(&moot_sync::wire::Message::Heads {
        first: true,
        last: true,
        heads: moot_sync::wire::Bounded::new(Vec::new()).unwrap(),
    })
    .unwrap();
    // The rogue sends its next set once the last one is acknowledged, as an honest peer does.
    let mut rogue = bare_swarm(667, protocol::behaviour(Duration::from_secs(5)));
    rogue.dial(at.clone()).unwrap();
    let mut sent = 0;
    let dropped = tokio::time::timeout(PATIENCE, async {
        loop {
            match rogue.select_next_some().await {
                SwarmEvent::ConnectionEstablished { peer_id, .. } => {
                    rogue
                        .behaviour_mut()
                        .send_request(&peer_id, protocol::SyncRequest::Frame(empty_set.clone()));
                    sent += 1;
                }
                SwarmEvent::Behaviour(request_response::Event::Message {
                    peer,
                    message: request_response::Message::Response { .. },
                    ..
                }) => {
                    rogue
                        .behaviour_mut()
                        .send_request(&peer, protocol::SyncRequest::Frame(empty_set.clone()));
                    sent += 1;
                }
                // The node's own frames (its answer, its ops) are acknowledged, as a peer does.
                SwarmEvent::Behaviour(request_response::Event::Message {
                    message: request_response::Message::Request { channel, .. },
                    ..
                }) => {
                    let _ = rogue.behaviour_mut().send_response(channel, protocol::Ack);
                }
                SwarmEvent::ConnectionClosed { .. } => return,
                _ => {}
            }
        }
    })
    .await
    .is_ok();
    assert!(dropped, "the rogue was not dropped after {sent} sets");
    assert!(sent > 3, "dropped after {sent} sets, within the bound");
    // Its address is not refused.
    let next = start(5, hub, &[], everyone()).await;
    next.handle.dial(at).await.unwrap();
    eventually("a connection from the same address", || async {
        a.handle.stats().await.unwrap().peers.len() == 1
    })
    .await;
    stop(next).await;
    stop(a).await;
}

/// One address opens at most `max_new_connections_per_ip` connections a minute, however short
/// each one is: each starts a sync session, with its exchange of heads. (Loopback counts here
/// only because the test asks it to.)
#[tokio::test]
async fn one_address_opens_a_bounded_number_of_connections_a_minute() {
    let (hub, history) = sample::history(3, 10);
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        max_new_connections_per_ip: 3,
        limit_loopback: true,
        ..NetConfig::default()
    };
    let a = common::start(1, hub, &history, config, everyone()).await;
    let peers_of_a = || async { a.handle.stats().await.unwrap().peers.len() };
    for n in 2..5 {
        let node = start(n, hub, &[], everyone()).await;
        node.handle.dial(a.at()).await.unwrap();
        eventually("connected", || async { peers_of_a().await == 1 }).await;
        stop(node).await;
        eventually("its place is free again", || async {
            peers_of_a().await == 0
        })
        .await;
    }
    let fourth = start(5, hub, &[], everyone()).await;
    fourth.handle.dial(a.at()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(
        peers_of_a().await,
        0,
        "a fourth connection within the minute"
    );
    stop(fourth).await;
    stop(a).await;
}

/// One address holds at most `max_connections_per_ip` incoming connections, whatever the keys
/// (peer ids cost nothing to make), and the address of a peer dropped for misbehaving is refused
/// for `misbehaviour_ban`. (Loopback counts here only because the test asks it to.)
#[tokio::test]
async fn one_address_holds_a_few_places_and_a_misbehaving_one_is_refused_a_while() {
    let (hub, history) = sample::history(3, 10);
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        max_connections_per_ip: 2,
        limit_loopback: true,
        misbehaviour_ban: Duration::from_secs(3),
        ..NetConfig::default()
    };
    let a = common::start(1, hub, &history, config, everyone()).await;
    let peers_of_a = || async { a.handle.stats().await.unwrap().peers.len() };
    let mut others = Vec::new();
    for n in 2..5 {
        let node = start(n, hub, &[], everyone()).await;
        node.handle.dial(a.at()).await.unwrap();
        others.push(node);
    }
    eventually("two of the three are connected", || async {
        peers_of_a().await == 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(peers_of_a().await, 2, "a third connection from one address");
    for node in others {
        stop(node).await;
    }
    eventually("the places are free again", || async {
        peers_of_a().await == 0
    })
    .await;

    // A peer sends `frame`, is dropped, and a fresh node (device `n`) then dials from the same
    // address: how many peers `a` has a second later.
    let after_garbage = |rogue: usize, frame: Vec<u8>, n: usize| {
        let at = a.at();
        let a = &a;
        async move {
            let behaviour = protocol::behaviour(Duration::from_secs(5));
            assert!(
                rogue_is_disconnected(
                    rogue,
                    behaviour,
                    || protocol::SyncRequest::Frame(frame.clone()),
                    &at
                )
                .await
            );
            let next = start(n, hub, &[], everyone()).await;
            next.handle.dial(at).await.unwrap();
            tokio::time::sleep(Duration::from_millis(1000)).await;
            let peers = a.handle.stats().await.unwrap().peers.len();
            stop(next).await;
            eventually("its place is free again", || async {
                a.handle.stats().await.unwrap().peers.is_empty()
            })
            .await;
            peers
        }
    };
    // A frame of another wire version may come from an honest node of another build: it is
    // dropped, and its address still welcome.
    let old_frame = b"\x01\xffa message of version 1".to_vec();
    assert_eq!(
        after_garbage(665, old_frame, 7).await,
        1,
        "refused after a version mismatch"
    );
    // A peer that sends garbage of this wire version is dropped, and its address refused for
    // a while.
    let mut frame = vec![moot_sync::WIRE_VERSION];
    frame.extend_from_slice(b"\xffnot a sync message");
    assert_eq!(
        after_garbage(666, frame, 5).await,
        0,
        "a banned address connected"
    );
    // Once the ban is over, the address is welcome again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let later = start(6, hub, &[], everyone()).await;
    later.handle.dial(a.at()).await.unwrap();
    eventually("a connection after the ban", || async {
        peers_of_a().await == 1
    })
    .await;
    stop(later).await;
    stop(a).await;
}
