//! Two engines in one process: convergence, lanes, requests for missing dependencies, and
//! peers reported for bad input.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Node, connect, pump};
use std::collections::BTreeSet;

use moot_crypto::{Lane, OpId, SignedOp};
use moot_state::{Retain, sample};
use moot_sync::wire::{self, Bounded, Message, OpBytes};
use moot_sync::{Config, Event, Lanes, Misbehaviour, OpStore, PeerId, Role, WireError};

fn ops_frame(ops: &[Vec<u8>]) -> Vec<u8> {
    let ops = Bounded::new(ops.iter().cloned().map(OpBytes).collect()).unwrap();
    wire::encode(&Message::Ops { ops }).unwrap()
}

#[test]
fn one_sided_history_reaches_an_empty_peer() {
    let (hub, ops) = sample::history(6, 500);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::with_retain(hub, Config::default(), Retain::IndexOnly);
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(b.ids().len(), ops.len());
    assert_eq!(a.replica.roll(), b.replica.roll());
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
    // Nothing echoed back: b sent only heads.
    assert_eq!(b.engine.stats().ops_sent, 0);
    assert_eq!(a.engine.stats().ops_sent, ops.len() as u64);
}

#[test]
fn divergent_peers_exchange_what_each_lacks_and_push_new_ops() {
    let sample = sample::poll_history(6);
    let mut a = Node::new(sample.hub, Config::default());
    let mut b = Node::new(sample.hub, Config::default());
    a.load(&sample.setup);
    b.load(&sample.setup);
    a.load(&sample.ballots[..3]);
    b.load(&sample.ballots[3..5]);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(a.ids().len(), sample.setup.len() + 5);
    // Only what the other lacked crossed.
    assert_eq!(a.engine.stats().ops_sent, 3);
    assert_eq!(b.engine.stats().ops_sent, 2);
    // A new op is pushed at once.
    b.load(&sample.ballots[5..]);
    pump(&mut a, &mut b, 1);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(
        format!("{:?}", a.replica.polls()),
        format!("{:?}", b.replica.polls())
    );
}

#[test]
fn a_public_peer_receives_only_the_public_lane() {
    let (hub, ops) = sample::history(4, 50);
    let mut a = Node::new(hub, Config::default());
    let mut guest = Node::new(hub, Config::default());
    a.load(&ops);
    connect(&mut a, &mut guest, Lanes::PUBLIC, Lanes::ALL);
    pump(&mut a, &mut guest, 0);
    let public = a
        .store
        .stored()
        .filter(|(b, _)| SignedOp::decode(b).unwrap().lane() == Lane::Public)
        .count();
    assert!(public > 0);
    assert_eq!(guest.ids().len(), public);
    for (bytes, _) in guest.store.stored() {
        assert_eq!(SignedOp::decode(bytes).unwrap().lane(), Lane::Public);
    }
    // Promoted to member mid-connection: the members lane follows.
    a.engine.set_peer_lanes(PeerId(2), Lanes::ALL).unwrap();
    pump(&mut a, &mut guest, 1);
    assert_eq!(a.ids(), guest.ids());
}

#[test]
fn a_lane_added_for_the_peer_that_sent_everything_rescans_none_of_its_ops() {
    // A fresh node (b) takes a hub in from a, giving a the public lane only (it does not know
    // a yet); once the roll shows a is a member, b gives it both lanes and scans its store
    // again for what a lacks: a sent all of it, so nothing is read or sent.
    let (hub, ops) = sample::history(6, 400);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::PUBLIC);
    pump(&mut a, &mut b, 0);
    assert_eq!(b.ids().len(), ops.len());
    let scanned = b.engine.stats().ops_scanned;
    b.engine.set_peer_lanes(PeerId(1), Lanes::ALL).unwrap();
    pump(&mut a, &mut b, 1);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(b.engine.stats().ops_sent, 0);
    assert_eq!(
        b.engine.stats().ops_scanned,
        scanned,
        "b read a's ops again"
    );
    // An op of b's own is still streamed to a (its position is not a's).
    let (extra_hub, extra) = sample::history(6, 401);
    assert_eq!(extra_hub, hub);
    b.load(&extra[ops.len()..]);
    pump(&mut a, &mut b, 2);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(b.engine.stats().ops_sent, 1);
}

#[test]
fn heads_sent_to_a_public_peer_name_no_members_chain() {
    let (hub, ops) = sample::history(3, 20);
    let mut a = Node::new(hub, Config::default());
    a.load(&ops);
    a.engine
        .connect(0, PeerId(7), Role::Dialer, Lanes::PUBLIC)
        .unwrap();
    let t = a
        .engine
        .poll_transmit(0, &a.replica, &a.store)
        .unwrap()
        .unwrap();
    let Message::Heads { heads, first, last } = wire::decode(&t.frame).unwrap() else {
        panic!("heads first");
    };
    assert!(first && last && !heads.is_empty());
    assert!(heads.as_slice().iter().all(|h| h.lane == Lane::Public));
    assert!(
        a.store
            .heads()
            .unwrap()
            .iter()
            .any(|h| h.lane == Lane::Members)
    );
}

#[test]
fn missing_dependencies_are_asked_for_by_id() {
    let sample = sample::poll_history(3);
    let mut a = Node::new(sample.hub, Config::default());
    let mut b = Node::new(sample.hub, Config::default());
    a.load(&sample.setup);
    a.load(&sample.ballots);
    // b already holds all but the open, and receives a ballot that needs it.
    b.load(&sample.setup[..sample.setup.len() - 1]);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    b.engine
        .handle_frame(
            0,
            PeerId(1),
            &ops_frame(&sample.ballots[..1]),
            &mut b.replica,
            &mut b.store,
        )
        .unwrap();
    assert_eq!(b.replica.pending_len(), 1);
    let mut frames = Vec::new();
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        frames.push(wire::decode(&t.frame).unwrap());
    }
    let open = SignedOp::decode(sample.setup.last().unwrap()).unwrap().id();
    assert!(
        frames
            .iter()
            .any(|m| matches!(m, Message::Want { ids } if ids.as_slice() == [open]))
    );
    // Served from the request alone, before any heads reach a.
    let (wants, heads): (Vec<_>, Vec<_>) = frames
        .into_iter()
        .partition(|m| matches!(m, Message::Want { .. }));
    for m in wants {
        a.engine
            .handle_frame(
                0,
                PeerId(2),
                &wire::encode(&m).unwrap(),
                &mut a.replica,
                &mut a.store,
            )
            .unwrap();
    }
    let reply = a
        .engine
        .poll_transmit(0, &a.replica, &a.store)
        .unwrap()
        .unwrap();
    let reply = match wire::decode(&reply.frame).unwrap() {
        Message::Heads { .. } => a
            .engine
            .poll_transmit(0, &a.replica, &a.store)
            .unwrap()
            .unwrap(),
        _ => reply,
    };
    b.engine
        .handle_frame(0, PeerId(1), &reply.frame, &mut b.replica, &mut b.store)
        .unwrap();
    assert_eq!(b.replica.pending_len(), 0);
    assert!(b.store.contains(&open));
    for m in heads {
        a.engine
            .handle_frame(
                0,
                PeerId(2),
                &wire::encode(&m).unwrap(),
                &mut a.replica,
                &mut a.store,
            )
            .unwrap();
    }
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
}

#[test]
fn a_forged_signature_is_reported_and_not_kept() {
    let (hub, ops) = sample::history(2, 5);
    let mut b = Node::new(hub, Config::default());
    b.engine
        .connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    let mut forged = ops[0].clone();
    let last = forged.len() - 1;
    forged[last] ^= 1;
    b.engine
        .handle_frame(
            0,
            PeerId(1),
            &ops_frame(&[forged]),
            &mut b.replica,
            &mut b.store,
        )
        .unwrap();
    b.drain_events();
    assert!(b.store.is_empty());
    assert!(matches!(
        b.misbehaved()[..],
        [Event::Misbehaved {
            peer: PeerId(1),
            reason: Misbehaviour::BadSignature { .. }
        }]
    ));
}

#[test]
fn malformed_ops_and_frames_are_reported() {
    let (hub, _) = sample::history(1, 0);
    let mut b = Node::new(hub, Config::default());
    b.engine
        .connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    let frames = [
        ops_frame(&[vec![2, 0, 0]]),
        vec![],
        vec![9, 0],
        vec![wire::WIRE_VERSION, 200],
        vec![0; wire::MAX_MESSAGE_BYTES + 1],
    ];
    for frame in &frames {
        b.engine
            .handle_frame(0, PeerId(1), frame, &mut b.replica, &mut b.store)
            .unwrap();
    }
    let reasons = b.misbehaviours();
    assert_eq!(reasons.len(), frames.len());
    assert!(matches!(reasons[0], Misbehaviour::MalformedOp(_)));
    assert_eq!(reasons[1], Misbehaviour::Wire(WireError::Empty));
    assert_eq!(reasons[2], Misbehaviour::Wire(WireError::Version(9)));
    assert!(matches!(
        reasons[3],
        Misbehaviour::Wire(WireError::Malformed(_))
    ));
    assert!(matches!(
        reasons[4],
        Misbehaviour::Wire(WireError::TooLarge(_))
    ));
}

#[test]
fn a_flood_is_cut_off_and_reported_once_per_window() {
    let (hub, ops) = sample::history(2, 200);
    let config = Config {
        max_receive_bytes_per_window: 10_000,
        ..Config::default()
    };
    let mut b = Node::new(hub, config);
    b.engine
        .connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    let frame = ops_frame(&ops[..20]);
    for _ in 0..10 {
        b.engine
            .handle_frame(5, PeerId(1), &frame, &mut b.replica, &mut b.store)
            .unwrap();
    }
    b.drain_events();
    assert_eq!(b.misbehaved().len(), 1);
    assert!(b.engine.stats().frames_dropped > 0);
    // A new window accepts frames again.
    b.engine
        .handle_frame(2_000, PeerId(1), &frame, &mut b.replica, &mut b.store)
        .unwrap();
    assert!(b.store.len() >= 20);
}

/// A complete set of heads costs this node a pass over its chains and, unless it covers them,
/// a walk of its whole store: a peer sending empty sets back to back (a few bytes each) would
/// keep it walking. Past the bound per resync interval a set is ignored and the peer reported
/// once; the next interval takes sets again.
#[test]
fn sets_of_heads_past_the_bound_are_ignored_and_reported_once_per_interval() {
    let (hub, ops) = sample::history(4, 300);
    let config = Config {
        max_heads_sets_per_interval: 3,
        ..Config::default()
    };
    let mut a = Node::new(hub, config);
    a.load(&ops);
    a.engine
        .connect(0, PeerId(2), Role::Listener, Lanes::ALL)
        .unwrap();
    let empty_set = empty_heads_set();
    // Each set taken in makes the node walk its store again (it answers, then streams).
    let walk = |a: &mut Node, now: u64| -> u64 {
        let before = a.engine.stats().ops_scanned;
        a.engine
            .handle_frame(now, PeerId(2), &empty_set, &mut a.replica, &mut a.store)
            .unwrap();
        send_everything(a, now);
        a.engine.stats().ops_scanned - before
    };
    let walked: Vec<u64> = (0..6).map(|_| walk(&mut a, 10)).collect();
    let stored = ops.len() as u64;
    assert!(
        walked[..3].iter().all(|&n| n == stored),
        "sets within the bound walk the store: {walked:?}"
    );
    assert_eq!(&walked[3..], &[0, 0, 0], "sets past the bound are ignored");
    let reasons = a.misbehaviours();
    assert_eq!(reasons, vec![Misbehaviour::HeadsFlood { sets: 4 }]);
    // A second connection restarts the session, but not the count.
    a.engine
        .connect(20, PeerId(2), Role::Listener, Lanes::ALL)
        .unwrap();
    assert_eq!(walk(&mut a, 20), 0, "a restart bought a fresh allowance");
    // The next resync interval takes sets again.
    let later = Config::default().resync_interval_ms + 10;
    assert_eq!(walk(&mut a, later), stored);
}

/// A listener answers every set of heads a dialer sends: those answers are not held against
/// it, however often the dialer's lanes for it change (each change sends a set).
#[test]
fn a_listeners_answers_to_this_nodes_own_sets_are_not_a_flood() {
    let (hub, ops) = sample::history(4, 50);
    let config = Config {
        max_heads_sets_per_interval: 2,
        ..Config::default()
    };
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, config);
    a.load(&ops);
    b.load(&ops);
    // b dials: each change of a's lanes makes b send its heads again, and a answer.
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    for round in 0..6 {
        let lanes = if round % 2 == 0 {
            Lanes::PUBLIC
        } else {
            Lanes::ALL
        };
        b.engine.set_peer_lanes(PeerId(1), lanes).unwrap();
        pump(&mut a, &mut b, 1);
    }
    assert!(b.engine.stats().frames_received >= 7);
    a.drain_events();
    b.drain_events();
    assert!(b.misbehaved().is_empty(), "{:?}", b.misbehaved());
    assert_eq!(a.ids(), b.ids());
}

/// A peer that may receive nothing (a stranger to a members-only hub) costs no walk of the
/// store, whatever heads it sends; given a lane later, it is sent that lane from the start.
#[test]
fn a_peer_with_no_lane_costs_no_walk_of_the_store() {
    let (hub, ops) = sample::history(4, 200);
    let mut a = Node::new(hub, Config::default());
    a.load(&ops);
    a.engine
        .connect(0, PeerId(2), Role::Listener, Lanes::NONE)
        .unwrap();
    let empty_set = empty_heads_set();
    for _ in 0..3 {
        a.engine
            .handle_frame(0, PeerId(2), &empty_set, &mut a.replica, &mut a.store)
            .unwrap();
        send_everything(&mut a, 0);
    }
    assert_eq!(a.engine.stats().ops_scanned, 0);
    assert_eq!(a.engine.stats().ops_sent, 0);
    a.engine.set_peer_lanes(PeerId(2), Lanes::PUBLIC).unwrap();
    send_everything(&mut a, 0);
    let public = a
        .store
        .stored()
        .filter(|(b, _)| SignedOp::decode(b).unwrap().lane() == Lane::Public)
        .count();
    assert!(public > 0);
    assert_eq!(a.engine.stats().ops_sent, public as u64);
}

/// `sending_to` says whether the engine may still have frames for a peer: true while a walk of
/// the store is under way, false once everything the peer lacks has gone (what a one-shot sync
/// waits for before it ends).
#[test]
fn sending_to_is_true_until_the_peer_has_been_sent_everything() {
    let (hub, ops) = sample::history(4, 3000);
    let config = Config {
        max_ops_per_frame: 256,
        ..Config::default()
    };
    let mut a = Node::new(hub, config);
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    assert!(
        !a.engine.sending_to(PeerId(9), a.store.end()),
        "unknown peer"
    );
    // b (the dialer) sends its heads; a answers and starts its walk: one frame of ops out.
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        a.engine
            .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
            .unwrap();
    }
    let mut frames = 0;
    while let Some(t) = a.engine.poll_transmit(0, &a.replica, &a.store).unwrap() {
        b.engine
            .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
            .unwrap();
        frames += 1;
        if frames == 3 {
            break;
        }
    }
    assert!(a.engine.sending_to(PeerId(2), a.store.end()));
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    assert!(!a.engine.sending_to(PeerId(2), a.store.end()));
    assert!(!b.engine.sending_to(PeerId(1), b.store.end()));
}

#[test]
fn sending_is_paced_per_window() {
    let (hub, ops) = sample::history(4, 3000);
    // A frame starts only while the window's count is under the limit: at most one frame
    // (here of up to 1,024 ops) goes past it.
    let config = Config {
        max_send_bytes_per_window: 100_000,
        max_ops_per_frame: 1024,
        ..Config::default()
    };
    let mut a = Node::new(hub, config);
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert!(b.ids().len() < ops.len());
    assert!(a.engine.stats().bytes_sent < 300_000);
    let mut now = 0;
    while b.ids().len() < ops.len() {
        now = a.engine.poll_timeout().unwrap().max(now + 1);
        a.engine.handle_timeout(now);
        b.engine.handle_timeout(now);
        pump(&mut a, &mut b, now);
        assert!(now < 100_000);
    }
    assert_eq!(a.ids(), b.ids());
}

#[test]
fn disconnect_drops_the_peers_waiting_ops() {
    let sample = sample::poll_history(3);
    let mut b = Node::new(sample.hub, Config::default());
    b.load(&sample.setup[..sample.setup.len() - 1]);
    b.engine
        .connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    b.engine
        .handle_frame(
            0,
            PeerId(1),
            &ops_frame(&sample.ballots),
            &mut b.replica,
            &mut b.store,
        )
        .unwrap();
    assert_eq!(b.replica.pending_len(), 3);
    b.engine.disconnect(PeerId(1), &mut b.replica);
    assert_eq!(b.replica.pending_len(), 0);
    assert!(
        b.engine
            .connect(0, PeerId(0), Role::Dialer, Lanes::ALL)
            .is_err()
    );
}

#[test]
fn wire_bytes_stay_close_to_op_bytes() {
    let sample = sample::poll_history(2000);
    let mut a = Node::new(sample.hub, Config::default());
    let mut b = Node::new(sample.hub, Config::default());
    a.load(&sample.setup);
    a.load(&sample.ballots);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    let (sa, sb) = (a.engine.stats(), b.engine.stats());
    let wire_bytes = sa.bytes_sent + sb.bytes_sent;
    let ratio = wire_bytes as f64 / sa.op_bytes_sent as f64;
    assert!(
        ratio <= 1.1,
        "wire {wire_bytes} / op bytes {} = {ratio}",
        sa.op_bytes_sent
    );
}

/// A fresh node learns mid-stream that its peer may receive the members lane (its roll just
/// arrived) and sends heads again while the peer's frames are on their way. The peer's answer
/// does not make it forget what those frames brought: nothing is sent back.
#[test]
fn a_heads_round_mid_stream_sends_the_peer_nothing_of_its_own() {
    let (hub, ops) = sample::history(40, 200);
    let config = Config {
        max_ops_per_frame: 10,
        ..Config::default()
    };
    let mut a = Node::new(hub, config);
    let mut b = Node::with_retain(hub, config, Retain::IndexOnly);
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::PUBLIC);
    let a_to_b = |a: &mut Node, b: &mut Node| {
        let t = a
            .engine
            .poll_transmit(0, &a.replica, &a.store)
            .unwrap()
            .unwrap();
        b.engine
            .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
            .unwrap();
    };
    // b's (empty) heads, a's (empty) answer, a first frame of ops.
    let t = b
        .engine
        .poll_transmit(0, &b.replica, &b.store)
        .unwrap()
        .unwrap();
    a.engine
        .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
        .unwrap();
    a_to_b(&mut a, &mut b);
    a_to_b(&mut a, &mut b);
    assert!(!b.ids().is_empty());
    // Three more frames leave a (in flight on a network).
    let in_flight: Vec<Vec<u8>> = (0..3)
        .map(|_| {
            a.engine
                .poll_transmit(0, &a.replica, &a.store)
                .unwrap()
                .unwrap()
                .frame
        })
        .collect();
    // b now lets a receive both lanes: it sends heads again, which reach a first.
    b.engine.set_peer_lanes(PeerId(1), Lanes::ALL).unwrap();
    let t = b
        .engine
        .poll_transmit(0, &b.replica, &b.store)
        .unwrap()
        .unwrap();
    assert!(matches!(
        wire::decode(&t.frame).unwrap(),
        Message::Heads { .. }
    ));
    a.engine
        .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
        .unwrap();
    for frame in in_flight {
        b.engine
            .handle_frame(0, PeerId(1), &frame, &mut b.replica, &mut b.store)
            .unwrap();
    }
    // a's answer (its heads for the chains b named) arrives; b streams what it thinks a lacks.
    a_to_b(&mut a, &mut b);
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        a.engine
            .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
            .unwrap();
    }
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    assert_eq!(b.ids().len(), ops.len());
    assert_eq!(b.engine.stats().ops_sent, 0, "b sent a its own ops back");
}

/// Hands `a` one part of a set of heads from peer 2; returns the heads its view of peer 2
/// then remembers.
/// A complete, empty set of heads (a peer that holds nothing, or says so).
fn empty_heads_set() -> Vec<u8> {
    wire::encode(&Message::Heads {
        first: true,
        last: true,
        heads: Bounded::new(Vec::new()).unwrap(),
    })
    .unwrap()
}

/// Builds every frame `a` has to send (into the void).
fn send_everything(a: &mut Node, now: u64) {
    while a
        .engine
        .poll_transmit(now, &a.replica, &a.store)
        .unwrap()
        .is_some()
    {}
}

fn name_heads(a: &mut Node, heads: Vec<wire::Head>, first: bool, last: bool) -> usize {
    let frame = wire::encode(&Message::Heads {
        first,
        last,
        heads: Bounded::new(heads).unwrap(),
    })
    .unwrap();
    a.engine
        .handle_frame(0, PeerId(2), &frame, &mut a.replica, &mut a.store)
        .unwrap();
    a.engine.remembered_heads(PeerId(2)).unwrap().0
}

/// A peer that names tens of thousands of heads in one chain, and names them again and again,
/// has a few dozen remembered: each head named (and each op of the chain sent) would otherwise
/// be checked against all of them, seconds of the sync loop per frame.
#[test]
fn a_chain_keeps_a_bounded_number_of_a_peers_heads() {
    let (hub, ops) = sample::history(4, 100);
    let mut a = Node::new(hub, Config::default());
    a.load(&ops);
    a.engine
        .connect(0, PeerId(2), Role::Listener, Lanes::ALL)
        .unwrap();
    let head = |n: u32| wire::Head {
        device: [9; 32],
        lane: Lane::Public,
        seq: u64::MAX,
        id: moot_crypto::OpId({
            let mut id = [0u8; 32];
            id[..4].copy_from_slice(&n.to_le_bytes());
            id
        }),
    };
    let parts = 16u32;
    for part in 0..parts {
        let mut heads: Vec<wire::Head> = (0..2048).map(|i| head(part * 2048 + i)).collect();
        // The same head again, many times over.
        heads.extend((0..2048).map(|_| head(part * 2048)));
        let view = name_heads(&mut a, heads, part == 0, part + 1 == parts);
        assert!(view <= 64, "{view} heads remembered");
    }
    let (view, _) = a.engine.remembered_heads(PeerId(2)).unwrap();
    assert!((1..=64).contains(&view), "{view} heads remembered");
    // Ids this node holds, named under a chain they are not in, are made-up heads too.
    let held: Vec<wire::Head> = a
        .ids()
        .into_iter()
        .map(|id| wire::Head {
            device: [9; 32],
            lane: Lane::Public,
            seq: 1,
            id,
        })
        .collect();
    assert!(held.len() > 64);
    let view = name_heads(&mut a, held, true, true);
    assert!(
        (1..=64).contains(&view),
        "{view} held ids remembered under one chain"
    );
}

/// Heads this node holds are always remembered, however many one chain has (a device forked
/// 70 ways, each branch stored here as evidence): were they capped like made-up heads, the
/// branches past the cap would be uncovered and every resync would rescan the store.
#[test]
fn a_peers_heads_that_this_node_holds_are_all_remembered() {
    use moot_state::body::Checkpoint;
    let (hub, ops) = sample::history(4, 0);
    let mut a = Node::new(hub, Config::default());
    a.load(&ops);
    let device = sample::key(2, 1);
    let mut forks = Vec::new();
    for i in 0..70u8 {
        let mut draft = a
            .replica
            .draft(
                &device.public(),
                Lane::Members,
                &moot_state::Body::Checkpoint(Checkpoint {}),
                &[],
            )
            .unwrap();
        draft.kind = sample::FILLER_KIND;
        draft.body = vec![i; 8];
        forks.push(draft.sign(&hub, &device).unwrap().get().bytes().to_vec());
    }
    a.load(&forks);
    assert_eq!(a.ids().len(), ops.len() + 70, "every branch is kept");
    a.engine
        .connect(0, PeerId(2), Role::Listener, Lanes::ALL)
        .unwrap();
    let heads: Vec<wire::Head> = forks
        .iter()
        .map(|bytes| {
            let op = SignedOp::decode(bytes).unwrap();
            wire::Head {
                device: op.author().to_bytes(),
                lane: op.lane(),
                seq: op.seq(),
                id: op.id(),
            }
        })
        .collect();
    assert_eq!(name_heads(&mut a, heads, true, true), 70);
}

#[test]
fn shedding_caches_mid_session_changes_what_crosses_in_no_way() {
    // The same session twice: once as is, once with both engines and replicas shedding their
    // caches after the first sync (what a settled node does). The same ops cross, no more.
    let sample = sample::poll_history(6);
    let run = |shed: bool| {
        let mut a = Node::new(sample.hub, Config::default());
        let mut b = Node::with_retain(sample.hub, Config::default(), Retain::IndexOnly);
        a.load(&sample.setup);
        a.load(&sample.ballots[..3]);
        connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
        pump(&mut a, &mut b, 0);
        if shed {
            assert!(a.engine.cached_keys() > 0);
            for node in [&mut a, &mut b] {
                node.engine.shed_caches();
                node.replica.shed_caches();
            }
            assert_eq!(a.engine.cached_keys(), 0);
        }
        // New ops on both sides after the shed are pushed as before.
        a.load(&sample.ballots[3..4]);
        b.load(&sample.ballots[4..]);
        pump(&mut a, &mut b, 1);
        assert_eq!(a.ids(), b.ids());
        assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
        (
            a.ids(),
            b.replica.roll(),
            format!("{:?}", b.replica.polls()),
            a.engine.stats(),
            b.engine.stats(),
        )
    };
    let (ids, roll, polls, a_stats, b_stats) = run(false);
    let (shed_ids, shed_roll, shed_polls, shed_a, shed_b) = run(true);
    assert_eq!(ids, shed_ids);
    assert_eq!(ids.len(), sample.setup.len() + sample.ballots.len());
    assert_eq!(roll, shed_roll);
    assert_eq!(polls, shed_polls);
    assert_eq!(a_stats.ops_sent, shed_a.ops_sent);
    assert_eq!(b_stats.ops_sent, shed_b.ops_sent);
    assert_eq!(a_stats.ops_received, shed_a.ops_received);
}

/// A new set of heads from the peer, made before the frames on their way to it arrived, does
/// not make the sender send those frames' ops again (they are in order on one connection): the
/// fresh peer receives every op exactly once.
#[test]
fn heads_arriving_mid_stream_do_not_send_the_frames_in_flight_again() {
    let (hub, ops) = sample::history(6, 3000);
    let config = Config {
        max_ops_per_frame: 256,
        ..Config::default()
    };
    let mut a = Node::new(hub, config);
    let mut b = Node::new(hub, config);
    a.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    // b (the dialer) sends its heads: it holds nothing.
    let heads = b
        .engine
        .poll_transmit(0, &b.replica, &b.store)
        .unwrap()
        .unwrap();
    a.engine
        .handle_frame(0, PeerId(2), &heads.frame, &mut a.replica, &mut a.store)
        .unwrap();
    // a answers with its heads (delivered) and starts streaming: three frames of ops leave a
    // and are still on their way.
    let mut in_flight = Vec::new();
    while in_flight.len() < 3 {
        let t = a
            .engine
            .poll_transmit(0, &a.replica, &a.store)
            .unwrap()
            .unwrap();
        match wire::decode(&t.frame).unwrap() {
            Message::Ops { .. } => in_flight.push(t.frame),
            _ => b
                .engine
                .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
                .unwrap(),
        }
    }
    // b sends heads again before those frames arrive (as a node does once the roll lets it
    // give its peer another lane), still holding nothing.
    b.engine.set_peer_lanes(PeerId(1), Lanes::ALL).unwrap();
    let again = b
        .engine
        .poll_transmit(0, &b.replica, &b.store)
        .unwrap()
        .unwrap();
    assert!(matches!(
        wire::decode(&again.frame).unwrap(),
        Message::Heads { .. }
    ));
    a.engine
        .handle_frame(0, PeerId(2), &again.frame, &mut a.replica, &mut a.store)
        .unwrap();
    for frame in &in_flight {
        b.engine
            .handle_frame(0, PeerId(1), frame, &mut b.replica, &mut b.store)
            .unwrap();
    }
    pump(&mut a, &mut b, 0);
    assert_eq!(b.ids().len(), ops.len());
    assert_eq!(b.engine.stats().duplicates_received, 0);
    assert_eq!(a.engine.stats().ops_sent, ops.len() as u64);
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
}

/// A frame mixing ops already held with new ones: the held ones are counted as duplicates and
/// not stored again, the new ones are stored, and the peer that sent them is known to hold all
/// of them: ops it lacked by its heads, but then sent, are not sent back to it.
#[test]
fn duplicates_in_a_frame_are_counted_and_never_echoed() {
    let sample = sample::poll_history(6);
    let mut a = Node::new(sample.hub, Config::default());
    let mut b = Node::new(sample.hub, Config::default());
    a.load(&sample.setup);
    b.load(&sample.setup);
    b.load(&sample.ballots[..2]);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    // b's heads reach a, and a's answer (the setup only) reaches b; nothing else moves yet.
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        assert!(!matches!(
            wire::decode(&t.frame).unwrap(),
            Message::Ops { .. }
        ));
        a.engine
            .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
            .unwrap();
    }
    while let Some(t) = a.engine.poll_transmit(0, &a.replica, &a.store).unwrap() {
        b.engine
            .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
            .unwrap();
    }
    // a takes in five ballots from elsewhere and passes them on: two that b holds (and was
    // about to send a, by a's heads), three it lacks.
    a.load(&sample.ballots[..5]);
    let held_before = b.store.end();
    b.engine
        .handle_frame(
            0,
            PeerId(1),
            &ops_frame(&sample.ballots[..5]),
            &mut b.replica,
            &mut b.store,
        )
        .unwrap();
    b.drain_events();
    assert!(b.misbehaved().is_empty());
    assert_eq!(b.engine.stats().duplicates_received, 2);
    assert_eq!(b.store.end(), held_before + 3);
    for ballot in &sample.ballots[..5] {
        assert!(b.replica.holds(&SignedOp::decode(ballot).unwrap().id()));
    }
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        assert!(
            !matches!(wire::decode(&t.frame).unwrap(), Message::Ops { .. }),
            "b sent a ops a sent b"
        );
    }
    assert_eq!(b.engine.stats().ops_sent, 0);
}

/// `a`, the listener, holds the first half of a short history and gives `b` the lanes
/// `a_gives_b`; `b`, the dialer, holds all of it. Connected, nothing sent yet.
fn half_and_all(config: Config, a_gives_b: Lanes) -> (Node, Node) {
    let (hub, ops) = sample::history(4, 60);
    let mut a = Node::new(hub, config);
    let mut b = Node::new(hub, config);
    a.load(&ops[..ops.len() / 2]);
    b.load(&ops);
    connect(&mut a, &mut b, a_gives_b, Lanes::ALL);
    (a, b)
}

#[test]
fn a_listener_whose_lanes_change_mid_answer_answers_again_whole() {
    // A lane taken away (a device revoked, say) and a lane given (a guest admitted).
    for (before, after) in [(Lanes::ALL, Lanes::PUBLIC), (Lanes::PUBLIC, Lanes::ALL)] {
        // One head per frame: the listener's answer takes several frames.
        let config = Config {
            max_heads_per_frame: 1,
            ..Config::default()
        };
        let (mut a, mut b) = half_and_all(config, before);
        // b, the dialer, sends its heads; a starts its answer.
        while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
            a.engine
                .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                .unwrap();
        }
        let t = a
            .engine
            .poll_transmit(0, &a.replica, &a.store)
            .unwrap()
            .unwrap();
        let Message::Heads { first, last, .. } = wire::decode(&t.frame).unwrap() else {
            panic!("the answer first");
        };
        assert!(first && !last, "an answer of one part tests nothing");
        b.engine
            .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
            .unwrap();
        a.engine.set_peer_lanes(PeerId(2), after).unwrap();
        pump(&mut a, &mut b, 0);
        // The answer came whole, so b sent a what it lacked.
        assert_eq!(a.ids(), b.ids(), "{before:?} -> {after:?}");
        assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
    }
}

#[test]
fn heads_fit_the_control_frames_and_always_end_with_a_last_part() {
    // One head per frame asked, but only 2 control frames: the parts grow to fit.
    let config = Config {
        max_heads_per_frame: 1,
        max_control_frames: 2,
        ..Config::default()
    };
    let (mut a, mut b) = half_and_all(config, Lanes::ALL);
    assert!(b.store.heads().unwrap().len() > 2);
    let mut parts = Vec::new();
    while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
        let Message::Heads { first, last, heads } = wire::decode(&t.frame).unwrap() else {
            panic!("heads first");
        };
        parts.push((first, last, heads.as_slice().len()));
        a.engine
            .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
            .unwrap();
    }
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts[0].0 && !parts[0].1 && !parts[1].0 && parts[1].1);
    let named: usize = parts.iter().map(|p| p.2).sum();
    assert_eq!(named, b.store.heads().unwrap().len());
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
}

/// A later time for each confirmation asked in this test (confirmations of one peer are at
/// least `CONFIRM_INTERVAL_MS` apart).
fn confirm_at() -> u64 {
    thread_local!(static NEXT: std::cell::Cell<u64> = const { std::cell::Cell::new(0) });
    NEXT.with(|next| {
        let at = next.get();
        next.set(at + moot_sync::CONFIRM_INTERVAL_MS);
        at
    })
}

/// The dialer `b` (or, if not `b_asks`, the listener `a`) asks the other to confirm, and frames
/// move both ways until none is left: a few, not sets bounced back and forth.
fn confirm_and_pump(a: &mut Node, b: &mut Node, b_asks: bool) {
    if b_asks {
        b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    } else {
        a.engine.confirm(confirm_at(), PeerId(2)).unwrap();
    }
    let moved = pump(a, b, 0);
    assert!(
        moved < 100,
        "{moved} frames: the sets must not bounce back and forth"
    );
}

/// Moves `from`'s frames to `to` (peer ids as `connect` numbers them), dropping the first frame
/// of ops: what a peer that took it up (acknowledged it) and then died before storing it
/// leaves behind. Returns true if a frame was dropped.
fn deliver_losing_first_ops(from: &mut Node, to: &mut Node, from_id: PeerId) -> bool {
    let mut dropped = false;
    while let Some(t) = from
        .engine
        .poll_transmit(0, &from.replica, &from.store)
        .unwrap()
    {
        if !dropped && matches!(wire::decode(&t.frame), Ok(Message::Ops { .. })) {
            dropped = true;
            continue;
        }
        to.engine
            .handle_frame(0, from_id, &t.frame, &mut to.replica, &mut to.store)
            .unwrap();
    }
    dropped
}

/// A frame of ops the peer took up and lost (it acknowledges a frame before storing it) leaves
/// the sender with nothing more to send, so `sending_to` alone would call the push complete.
/// Confirmation asks for the peer's heads: they show what it stored, the missing ops go again,
/// and only a later confirmation finds the peer holding everything. The dialer asks with its
/// own heads.
/// Two nodes, the sender holding ~3,000 ops the receiver lacks, after a push whose first frame
/// of ops the receiver took up and lost → `(a, b)`, `a` the listener and `b` the dialer; the
/// dialer sends if `dialer_sends`.
fn push_losing_a_frame(dialer_sends: bool) -> (Node, Node) {
    let (hub, ops) = sample::history(4, 3000);
    let small_frames = Config {
        max_ops_per_frame: 256,
        ..Config::default()
    };
    let (sender, receiver) = (
        Node::new(hub, small_frames),
        Node::new(hub, Config::default()),
    );
    let (mut a, mut b) = if dialer_sends {
        (receiver, sender)
    } else {
        (sender, receiver)
    };
    let (a_ops, b_ops) = if dialer_sends {
        (&ops[..100], &ops[..])
    } else {
        (&ops[..], &ops[..100])
    };
    a.load(a_ops);
    b.load(b_ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    let mut dropped = false;
    for _ in 0..50 {
        if dialer_sends {
            dropped |= deliver_losing_first_ops(&mut b, &mut a, PeerId(2));
            pump_one_way(&mut a, &mut b, PeerId(1));
        } else {
            pump_one_way(&mut b, &mut a, PeerId(2));
            dropped |= deliver_losing_first_ops(&mut a, &mut b, PeerId(1));
        }
    }
    assert!(dropped);
    (a, b)
}

#[test]
fn a_dialer_confirms_what_the_peer_stored_not_what_it_acknowledged() {
    let (_, ops) = sample::history(4, 3000);
    let (mut a, mut b) = push_losing_a_frame(true);
    assert!(
        a.ids().len() < b.ids().len(),
        "a lacks the lost frame's ops"
    );
    assert!(
        !b.engine.sending_to(PeerId(1), b.store.end()),
        "b has nothing more to send: the old end of a push"
    );
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    // Confirmation: a's heads show the gap, and b sends what a lacks.
    confirm_and_pump(&mut a, &mut b, true);
    assert!(
        a.ids() == b.ids(),
        "a still lacks ops after the confirmation"
    );
    assert!(
        !b.engine.holds_all(PeerId(1), b.store.end()),
        "the answer that showed the gap proves nothing about what was sent after it"
    );
    b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    pump(&mut a, &mut b, 0);
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    // An op stored here since is not held by the peer until confirmed again.
    let (_, more) = sample::history(4, 3001);
    b.load(&more[ops.len()..]);
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    pump(&mut a, &mut b, 0);
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
}

/// Moves all of `from`'s frames to `to`.
fn pump_one_way(from: &mut Node, to: &mut Node, from_id: PeerId) {
    while let Some(t) = from
        .engine
        .poll_transmit(0, &from.replica, &from.store)
        .unwrap()
    {
        to.engine
            .handle_frame(0, from_id, &t.frame, &mut to.replica, &mut to.store)
            .unwrap();
    }
}

/// The listener asks the same way: it sends its whole set of heads, which the dialer did not
/// ask for, so the dialer answers with its own.
#[test]
fn a_listener_confirms_through_a_set_the_dialer_answers() {
    let (mut a, mut b) = push_losing_a_frame(false);
    assert!(b.ids().len() < a.ids().len());
    assert!(!a.engine.sending_to(PeerId(2), a.store.end()));
    assert!(!a.engine.holds_all(PeerId(2), a.store.end()));
    for _ in 0..2 {
        confirm_and_pump(&mut a, &mut b, false);
    }
    assert!(
        a.ids() == b.ids(),
        "b still lacks ops after the confirmations"
    );
    assert!(a.engine.holds_all(PeerId(2), a.store.end()));
    // Asking again while a set is on its way sends no second one.
    // (Counted on their way to b.)
    let sets_sent = |a: &mut Node, b: &mut Node| {
        let mut sets = 0;
        while let Some(t) = a.engine.poll_transmit(0, &a.replica, &a.store).unwrap() {
            if matches!(
                wire::decode(&t.frame),
                Ok(Message::Heads { last: true, .. })
            ) {
                sets += 1;
            }
            b.engine
                .handle_frame(0, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
                .unwrap();
        }
        sets
    };
    let at = confirm_at();
    assert!(a.engine.confirm(at, PeerId(2)).unwrap());
    assert!(!a.engine.confirm(confirm_at(), PeerId(2)).unwrap());
    assert_eq!(sets_sent(&mut a, &mut b), 1);
    pump(&mut a, &mut b, 0);
    // Nor one asked again, answered, within the interval (whoever asks: syncs run one after
    // another included): each costs the peer one of its sets a resync interval.
    let soon = at + moot_sync::CONFIRM_INTERVAL_MS - 1;
    assert!(!a.engine.confirm(soon, PeerId(2)).unwrap());
    assert_eq!(sets_sent(&mut a, &mut b), 0);
    assert!(a.engine.confirm(soon + 1, PeerId(2)).unwrap());
    assert_eq!(sets_sent(&mut a, &mut b), 1);
}

/// A node that only took in needs one exchange to confirm: the first answer came while it could
/// not tell (the peer's heads were further along chains it then held only the start of). Ops
/// the peer sends afterwards are its own: held by it without asking again.
#[test]
fn a_node_that_took_in_confirms_once_and_the_peers_later_ops_need_no_more() {
    let (hub, ops) = sample::history(4, 500);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops[..400]);
    b.load(&ops[..50]);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert!(a.ids() == b.ids());
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    pump(&mut a, &mut b, 0);
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    a.load(&ops[400..]);
    pump(&mut a, &mut b, 0);
    assert!(a.ids() == b.ids() && b.ids().len() == ops.len());
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    assert!(
        !b.engine.holds_all(PeerId(7), b.store.end()),
        "unknown peer"
    );
    // The peer's lanes change: what its heads showed was for the lanes then.
    b.engine.set_peer_lanes(PeerId(1), Lanes::PUBLIC).unwrap();
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
}

/// A peer that gives this node fewer lanes than it receives (a stranger's node holding
/// members-lane ops, dialing a member's node) shows heads of the lanes it gives only: a
/// confirmation holds for those, and says nothing of the others, however often asked.
#[test]
fn a_confirmation_holds_for_the_lanes_the_peers_heads_speak_for() {
    let (hub, ops) = sample::history(4, 600);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    b.load(&ops);
    assert!(
        b.store
            .heads()
            .unwrap()
            .iter()
            .any(|h| h.lane == Lane::Members)
    );
    // a (the member's node) gives b the public lane; b gives a both, and knows it may
    // receive the public lane only.
    b.engine.set_own_lanes(Lanes::PUBLIC);
    connect(&mut a, &mut b, Lanes::PUBLIC, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    let sent_first = b.engine.stats().ops_sent;
    for round in 0..3 {
        b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
        pump(&mut a, &mut b, 0);
        assert!(
            b.engine.holds_all(PeerId(1), b.store.end()),
            "round {round}: the public lane is confirmed"
        );
        // The members lane went once, at the first set (a holds it all): a's heads never
        // speak for it, so it does not go again.
        assert_eq!(b.engine.stats().ops_sent, sent_first, "round {round}");
    }
    // Ops stored here since are not held by a until confirmed again, public ones included.
    let (_, more) = sample::history(4, 601);
    b.load(&more[ops.len()..]);
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    pump(&mut a, &mut b, 0);
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    // b's device certified: its own lanes widen, and the members lane, never compared, is
    // not confirmed until a set that speaks for it covers it.
    b.engine.set_own_lanes(Lanes::ALL);
    assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    a.engine.set_peer_lanes(PeerId(2), Lanes::ALL).unwrap();
    pump(&mut a, &mut b, 0);
    b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
    pump(&mut a, &mut b, 0);
    assert!(b.engine.holds_all(PeerId(1), b.store.end()));
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
}

/// A node given no lane by its peer (a stranger's node in a members-only hub, dialing a
/// member's) learns nothing of what the peer holds: nothing it sent is ever confirmed.
#[test]
fn a_peer_that_gives_no_lane_confirms_nothing() {
    let (hub, ops) = sample::history(4, 300);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops[..100]);
    b.load(&ops);
    b.engine.set_own_lanes(Lanes::NONE);
    connect(&mut a, &mut b, Lanes::NONE, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    for _ in 0..3 {
        b.engine.confirm(confirm_at(), PeerId(1)).unwrap();
        pump(&mut a, &mut b, 0);
        assert!(!b.engine.holds_all(PeerId(1), b.store.end()));
    }
}

/// Runs b's (the dialer's) and a's timers up to `until`, moving every frame; the whole sets of
/// heads b sent.
fn resync_until(a: &mut Node, b: &mut Node, until: u64) -> usize {
    let mut sets = 0;
    let mut now = 0;
    while let Some(due) = b.engine.poll_timeout() {
        now = due.max(now);
        if now > until {
            break;
        }
        b.engine.handle_timeout(now);
        a.engine.handle_timeout(now);
        while let Some(t) = b.engine.poll_transmit(now, &b.replica, &b.store).unwrap() {
            if matches!(
                wire::decode(&t.frame),
                Ok(Message::Heads { first: true, .. })
            ) {
                sets += 1;
            }
            a.engine
                .handle_frame(now, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                .unwrap();
        }
        pump(a, b, now);
    }
    sets
}

/// A node that gives its peer a lane the peer's heads do not speak for (a removed member's
/// node that still gives a member's node the members lane, and knows it may receive the
/// public lane only) walks that lane once a session: the peer's heads say nothing of what it
/// holds there, so each op goes once and not again at later sets of heads. Before, they all
/// went again at every set, and the session never backed off.
#[test]
fn a_lane_the_peers_heads_do_not_speak_for_is_not_sent_again_and_again() {
    let (hub, ops) = sample::history(4, 600);
    let members = |node: &Node| {
        node.store
            .heads()
            .unwrap()
            .iter()
            .filter(|h| h.lane == Lane::Members)
            .count()
    };
    // Both ways, to show what the walk did before: told nothing, b takes its own lanes to be
    // all of them, as if a's heads spoke for the members lane.
    for knows_its_lanes in [false, true] {
        let mut a = Node::new(hub, Config::default());
        let mut b = Node::new(hub, Config::default());
        a.load(&ops);
        b.load(&ops);
        assert!(members(&b) > 0);
        if knows_its_lanes {
            b.engine.set_own_lanes(Lanes::PUBLIC);
        }
        connect(&mut a, &mut b, Lanes::PUBLIC, Lanes::ALL);
        pump(&mut a, &mut b, 0);
        let sets = resync_until(&mut a, &mut b, 1_000_000);
        let sent = b.engine.stats().ops_sent;
        let duplicates = a.engine.stats().duplicates_received;
        if knows_its_lanes {
            // Walked once in the session: each members-lane op crosses once.
            let members = ops
                .iter()
                .filter(|raw| SignedOp::decode(raw).unwrap().lane() == Lane::Members)
                .count() as u64;
            assert_eq!(
                (sent, duplicates),
                (members, members),
                "nothing crosses twice"
            );
            // Quiet, the session backs off: sets at 30, 60, 120, 240, 480 and 960 s.
            assert_eq!(sets, 6, "sets of heads in 1,000 s");
        } else {
            assert!(
                sent > 0 && duplicates == sent,
                "{sent} sent, {duplicates} duplicates"
            );
            assert!(sets > 6, "{sets} sets of heads in 1,000 s");
        }
        assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
    }
}

/// The walk starts over at every set of heads that leaves a spoken-for lane uncovered (here
/// a link that loses every frame of ops, so the public lane never arrives): the public lane's
/// ops go again each time, the members lane's (which the peer's heads do not speak for) once
/// each, those the peer holds included.
#[test]
fn a_walk_started_over_sends_a_lane_not_spoken_for_once() {
    // 200 members: their admissions and certifications are public-lane ops past a's 100.
    let (hub, ops) = sample::history(200, 600);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops[..100]);
    b.load(&ops);
    b.engine.set_own_lanes(Lanes::PUBLIC);
    connect(&mut a, &mut b, Lanes::PUBLIC, Lanes::ALL);
    let in_lane = |ops: &[Vec<u8>], lane: Lane| {
        ops.iter()
            .filter(|raw| SignedOp::decode(raw).unwrap().lane() == lane)
            .count()
    };
    let lacking = |lane: Lane| in_lane(&ops[100..], lane);
    let (mut sent_public, mut sent_members) = (0, 0);
    let mut now = 0;
    while let Some(due) = b.engine.poll_timeout() {
        now = due.max(now);
        if now > 300_000 {
            break;
        }
        b.engine.handle_timeout(now);
        a.engine.handle_timeout(now);
        for _ in 0..100 {
            pump_one_way(&mut a, &mut b, PeerId(1));
            let Some(t) = b.engine.poll_transmit(now, &b.replica, &b.store).unwrap() else {
                break;
            };
            match wire::decode(&t.frame) {
                Ok(Message::Ops { ops }) => {
                    for raw in ops.into_vec() {
                        match SignedOp::decode(&raw.0).unwrap().lane() {
                            Lane::Public => sent_public += 1,
                            Lane::Members => sent_members += 1,
                        }
                    }
                }
                _ => a
                    .engine
                    .handle_frame(now, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                    .unwrap(),
            }
        }
    }
    assert!(lacking(Lane::Members) > 0 && lacking(Lane::Public) > 0);
    assert!(
        sent_public >= 3 * lacking(Lane::Public),
        "{sent_public} public ops sent for {} lacking",
        lacking(Lane::Public)
    );
    // Every members-lane op b holds, once: a's heads say nothing of those a holds.
    assert_eq!(sent_members, in_lane(&ops, Lane::Members));
}

/// When this node's own lanes widen (its device certified, so peers following the roll now
/// give it the members lane), it asks for its peers' heads again and sends what they lack of
/// the lane now spoken for — here, the members-lane ops of a frame the peer lost, which no
/// resync sent again while the lane was not spoken for.
#[test]
fn own_lanes_widened_send_what_the_peer_lacks_of_the_lane_now_spoken_for() {
    let (hub, ops) = sample::history(4, 3000);
    let small_frames = Config {
        max_ops_per_frame: 256,
        ..Config::default()
    };
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, small_frames);
    a.load(&ops[..100]);
    b.load(&ops);
    b.engine.set_own_lanes(Lanes::PUBLIC);
    connect(&mut a, &mut b, Lanes::PUBLIC, Lanes::ALL);
    // b's push, its last frame of ops lost (ops no later op depends on, so none is asked for).
    let mut held_back = Vec::new();
    for _ in 0..50 {
        pump_one_way(&mut a, &mut b, PeerId(1));
        while let Some(t) = b.engine.poll_transmit(0, &b.replica, &b.store).unwrap() {
            if matches!(wire::decode(&t.frame), Ok(Message::Ops { .. })) {
                held_back.push(t.frame);
            } else {
                a.engine
                    .handle_frame(0, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                    .unwrap();
            }
        }
    }
    assert!(held_back.len() > 2, "{} frames of ops", held_back.len());
    held_back.pop();
    for frame in &held_back {
        a.engine
            .handle_frame(0, PeerId(2), frame, &mut a.replica, &mut a.store)
            .unwrap();
    }
    pump(&mut a, &mut b, 0);
    resync_until(&mut a, &mut b, 200_000);
    let members_lacking = |a: &Node, b: &Node| {
        b.ids()
            .difference(&a.ids())
            .filter(|id| {
                let raw = b.store.op(id).unwrap().unwrap();
                SignedOp::decode(&raw).unwrap().lane() == Lane::Members
            })
            .count()
    };
    let public: BTreeSet<OpId> = ops
        .iter()
        .filter_map(|raw| SignedOp::decode(raw).ok())
        .filter(|op| op.lane() == Lane::Public)
        .map(|op| op.id())
        .collect();
    assert!(public.is_subset(&a.ids()), "the public lane is sent again");
    assert!(members_lacking(&a, &b) > 0, "a lacks members-lane ops");
    b.engine.set_own_lanes(Lanes::ALL);
    pump(&mut a, &mut b, 200_001);
    assert_eq!(members_lacking(&a, &b), 0);
    assert_eq!(a.ids(), b.ids());
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
}

/// A fresh node remembers each chain its peer sent once: in what the peer sent (which stays
/// held by it), not also in the view its heads replace; and once a set of the peer's heads
/// shows them, in that set alone. Nothing crosses twice meanwhile.
#[test]
fn a_chain_the_peer_sent_is_remembered_once() {
    let (hub, ops) = sample::history(40, 400);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    let chains = a.store.heads().unwrap().len();
    // b, the fresh node, dials.
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    assert_eq!(a.ids(), b.ids());
    let (view, sent_here) = b.engine.remembered_heads(PeerId(1)).unwrap();
    assert_eq!(sent_here, chains, "every chain a sent");
    assert_eq!(view, 0, "heads in the view besides");
    // b's next set: a answers for every chain, and what a sent is let go.
    resync_until(&mut a, &mut b, 31_000);
    assert_eq!(b.engine.remembered_heads(PeerId(1)), Some((chains, 0)));
    assert_eq!(a.engine.stats().ops_sent, ops.len() as u64);
    assert_eq!(b.engine.stats().ops_sent, 0);
}

/// A quiet session resyncs less and less often (after 30 s, then 60, 120, 240, then every
/// 480 s: each resync of a hub of W's size costs ~1.3 MB of heads each way), the dialer sending
/// an empty request whenever it sent nothing for 60 s (so the connection is never idle); ops
/// arriving bring the next resync within 30 s of them, and the interval back to 30 s.
#[test]
fn a_quiet_session_resyncs_less_often_until_ops_arrive() {
    let (hub, ops) = sample::history(4, 200);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops[..150]);
    b.load(&ops[..150]);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    // Runs both engines' timers up to `until`; the times (in seconds) at which b (the dialer)
    // sent a whole set of heads. Asserts that b never went 60 s without sending a frame.
    let run = |a: &mut Node, b: &mut Node, from: u64, until: u64| {
        let mut resyncs = Vec::new();
        let mut now = from;
        let mut last_frame = from;
        loop {
            now = b.engine.poll_timeout().unwrap().max(now);
            if now > until {
                return resyncs;
            }
            b.engine.handle_timeout(now);
            a.engine.handle_timeout(now);
            while let Some(t) = b.engine.poll_transmit(now, &b.replica, &b.store).unwrap() {
                assert!(
                    now - last_frame <= 60_000,
                    "{} ms without a frame",
                    now - last_frame
                );
                last_frame = now;
                if matches!(
                    wire::decode(&t.frame),
                    Ok(Message::Heads { first: true, .. })
                ) {
                    resyncs.push(now / 1_000);
                }
                a.engine
                    .handle_frame(now, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                    .unwrap();
            }
            pump(a, b, now);
        }
    };
    let resyncs = run(&mut a, &mut b, 0, 400_000);
    assert_eq!(resyncs, [30, 60, 120, 240], "seconds");
    // An op written on a reaches b at once (streamed); b resyncs 30 s after it came, and 30 s
    // after that, then backs off again.
    a.load(&ops[150..151]);
    pump(&mut a, &mut b, 400_000);
    assert!(a.ids() == b.ids());
    let resyncs = run(&mut a, &mut b, 400_000, 1_200_000);
    assert_eq!(resyncs, [430, 460, 520, 640, 880], "seconds");
    assert!(a.misbehaved().is_empty() && b.misbehaved().is_empty());
}

/// A keepalive that falls due while the dialer's frames cannot go (its connection busy with a
/// slow frame) waits for its turn without keeping the timer due: the node is not woken again
/// and again meanwhile.
#[test]
fn a_keepalive_waiting_for_its_turn_leaves_the_timer_alone() {
    let (hub, ops) = sample::history(3, 50);
    let mut a = Node::new(hub, Config::default());
    let mut b = Node::new(hub, Config::default());
    a.load(&ops);
    b.load(&ops);
    connect(&mut a, &mut b, Lanes::ALL, Lanes::ALL);
    pump(&mut a, &mut b, 0);
    let due = b.engine.poll_timeout().unwrap();
    assert!(due <= 30_000, "{due}");
    // Nothing goes out (not polled) past the keepalive's time.
    let late = 61_000;
    b.engine.handle_timeout(late);
    assert!(
        b.engine.poll_timeout().unwrap() > late,
        "a timer still due at {late} ms would wake the node at once, without end"
    );
    // Once the connection takes frames, the resync's heads go first; the keepalive is dropped
    // as any frame keeps the connection busy.
    let t = b
        .engine
        .poll_transmit(late, &b.replica, &b.store)
        .unwrap()
        .unwrap();
    assert!(matches!(wire::decode(&t.frame), Ok(Message::Heads { .. })));
}
