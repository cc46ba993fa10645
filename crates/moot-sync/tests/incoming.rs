//! Frames whose ops are checked ahead, on the check pool (`Incoming::start`, as the network
//! driver reads them), give exactly what the same frames handled in turn give: the same ops
//! kept, the same verdicts, the same peers reported, for honest, forged, malformed and
//! randomly damaged frames alike.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Node, Rng};
use moot_crypto::HubId;
use moot_state::sample;
use moot_sync::wire::{self, Bounded, Message, OpBytes};
use moot_sync::{Config, Incoming, Lanes, PeerId, Role};

fn ops_frame(ops: &[Vec<u8>]) -> Vec<u8> {
    let ops = Bounded::new(ops.iter().cloned().map(OpBytes).collect()).unwrap();
    wire::encode(&Message::Ops { ops }).unwrap()
}

fn listener(hub: HubId) -> Node {
    let mut node = Node::new(hub, Config::default());
    node.engine
        .connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    node
}

/// What a node ended with: the ops stored (in order), the roll, the events, the counters.
fn outcome(node: &mut Node) -> (Vec<(Vec<u8>, String)>, String, String, String) {
    node.drain_events();
    let stored = node
        .store
        .stored()
        .map(|(op, verdict)| (op.to_vec(), format!("{verdict:?}")))
        .collect();
    let events: Vec<String> = node.events.iter().map(|e| format!("{e:?}")).collect();
    (
        stored,
        format!("{:?}", node.replica.roll()),
        events.join("\n"),
        format!("{:?}", node.engine.stats()),
    )
}

/// Handles `frames` in turn on one node, and on another with every frame's checks started
/// before the first is handled (the pool takes two at a time: the rest are checked in turn,
/// so both paths run), and asserts the two ended alike. Returns the ops stored and how many
/// frames had their checks started ahead.
fn both_ways(hub: HubId, frames: &[Vec<u8>]) -> (usize, usize) {
    both_ways_after(hub, &[], frames, false).0
}

/// [`both_ways`] after `before` was handled in turn on both nodes; with `consult`, the checks
/// ahead take the points of the devices the node's replica holds. Also returns the devices
/// the ahead node's replica names and holds the points of.
fn both_ways_after(
    hub: HubId,
    before: &[Vec<u8>],
    frames: &[Vec<u8>],
    consult: bool,
) -> ((usize, usize), (usize, usize)) {
    let mut in_turn = listener(hub);
    let mut ahead = listener(hub);
    for node in [&mut in_turn, &mut ahead] {
        for frame in before {
            node.engine
                .handle_frame(0, PeerId(1), frame, &mut node.replica, &mut node.store)
                .unwrap();
        }
    }
    for frame in frames {
        in_turn
            .engine
            .handle_frame(
                0,
                PeerId(1),
                frame,
                &mut in_turn.replica,
                &mut in_turn.store,
            )
            .unwrap();
    }
    // (The previous call's batches gave their places back as their last chunks came in.)
    let points = ahead.replica.device_points();
    let points = consult.then_some(&points);
    let started: Vec<Incoming> = frames
        .iter()
        .map(|f| Incoming::start_with(hub, f, points))
        .collect();
    let ahead_count = started.iter().filter(|i| i.checked_ahead()).count();
    for incoming in started {
        ahead
            .engine
            .handle_incoming(0, PeerId(1), incoming, &mut ahead.replica, &mut ahead.store)
            .unwrap();
    }
    let (a, b) = (outcome(&mut in_turn), outcome(&mut ahead));
    assert_eq!(a.0, b.0, "the ops stored differ");
    assert_eq!(a.1, b.1, "the rolls differ");
    assert_eq!(a.2, b.2, "the events differ");
    assert_eq!(a.3, b.3, "the counters differ");
    ((a.0.len(), ahead_count), ahead.replica.known_devices())
}

// One test, so that no other test of this process holds the pool's places meanwhile.
#[test]
fn frames_checked_ahead_end_as_frames_checked_in_turn() {
    honest_forged_and_malformed_ops();
    damaged_frames();
    ops_of_devices_the_replica_knows();
}

/// Frames of the members' ops reaching a node that holds the roll already: the checks ahead
/// take the devices' points from the replica's table (filling those not yet held), with the
/// same outcome as checks in turn, forgeries included.
fn ops_of_devices_the_replica_knows() {
    // Built on this thread, validated on another that has parsed none of the keys (nor has
    // any test before, on that thread): the replica computes no point when it learns of a
    // device (see KnownPoints::add), only the checks do.
    let (hub, ops) = sample::history(40, 3_000);
    // The roll (the genesis, then each member's admission, name and device certification),
    // then the members' 3,000 ops.
    let (roll, rest) = ops.split_at(ops.len() - 3_000);
    let mut rest = rest.to_vec();
    let last = rest[900].len() - 1;
    rest[900][last] ^= 1;
    let before = vec![ops_frame(roll)];
    // Two frames: both checked ahead (the pool's two places), none in turn.
    let frames: Vec<Vec<u8>> = rest.chunks(rest.len().div_ceil(2)).map(ops_frame).collect();
    let ((stored, ahead), (devices, held)) =
        std::thread::spawn(move || both_ways_after(hub, &before, &frames, true))
            .join()
            .unwrap();
    // Up to the forgery: every op after it names it, directly or not, and waits for it.
    assert_eq!(stored, roll.len() + 900);
    assert_eq!(ahead, 2);
    assert_eq!(devices, 41, "the founder's device and 40 members'");
    // The point of each device whose ops the pool checked.
    let authors: std::collections::BTreeSet<_> = rest
        .iter()
        .map(|op| moot_crypto::SignedOp::decode(op).unwrap().author())
        .collect();
    assert_eq!(authors.len(), 40);
    assert_eq!(held, authors.len());
}

fn honest_forged_and_malformed_ops() {
    // Several chunks of the check pool per frame, in three frames: two checked ahead.
    let (hub, ops) = sample::history(40, 3_000);
    let thirds: Vec<Vec<u8>> = ops.chunks(ops.len().div_ceil(3)).map(ops_frame).collect();
    assert_eq!(both_ways(hub, &thirds), (ops.len(), 2));

    // A forged signature, a malformed op and a duplicate among honest ops, across chunks.
    let mut damaged = ops[..1_500].to_vec();
    let last = damaged[700].len() - 1;
    damaged[700][last] ^= 1;
    damaged[1_100] = vec![2, 0, 0];
    damaged.push(ops[3].clone());
    let frames: Vec<Vec<u8>> = damaged.chunks(600).map(ops_frame).collect();
    let (stored, ahead) = both_ways(hub, &frames);
    assert!(stored > 0 && stored < 1_500, "{stored} stored");
    assert_eq!(ahead, 2);
}

fn damaged_frames() {
    let (hub, ops) = sample::history(8, 700);
    let good = ops_frame(&ops);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for round in 0..24 {
        let mut frame = good.clone();
        match round % 4 {
            // Bytes flipped anywhere (most land in op bytes: signatures, bodies, lengths).
            0 | 1 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(frame.len());
                    frame[at] ^= 1 << rng.below(8);
                }
            }
            // Cut short.
            2 => frame.truncate(rng.below(frame.len())),
            // Random bytes after a valid version byte.
            _ => {
                let len = rng.below(4_096);
                frame = std::iter::once(wire::WIRE_VERSION)
                    .chain((0..len).map(|_| rng.next() as u8))
                    .collect();
            }
        }
        both_ways(hub, &[frame]);
    }
}
