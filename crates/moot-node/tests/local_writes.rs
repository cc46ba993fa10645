//! A running node's store has two writers: the network task (ops from peers, through
//! `NodeOps`) and the node's own commands (CLI, web UI, imports), whose ops the network task
//! takes in afterwards (`NodeOps::catch_up`). Ops a command committed must reach every peer,
//! even when a peer's frame is stored between the command's commit and that catch-up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::SignedOp;
use moot_node::Node;
use moot_node::sync::NodeOps;
use moot_state::{Replica, sample};
use moot_sync::{Config, Engine, Lanes, PeerId, Role};

type Side<'a> = (Engine, Replica, NodeOps<&'a Node>);

/// Frames both ways until neither side has anything to send.
fn pump<'n>(now: u64, a: &mut Side<'n>, b: &mut Side<'n>) {
    loop {
        let mut moved = false;
        while let Some(t) = a.0.poll_transmit(now, &a.1, &a.2).unwrap() {
            b.0.handle_frame(now, PeerId(1), &t.frame, &mut b.1, &mut b.2)
                .unwrap();
            moved = true;
        }
        while let Some(t) = b.0.poll_transmit(now, &b.1, &b.2).unwrap() {
            a.0.handle_frame(now, PeerId(2), &t.frame, &mut a.1, &mut a.2)
                .unwrap();
            moved = true;
        }
        for side in [&mut *a, &mut *b] {
            while let Some(event) = side.0.poll_event() {
                assert!(
                    !matches!(event, moot_sync::Event::Misbehaved { .. }),
                    "{event:?}"
                );
            }
        }
        if !moved {
            return;
        }
    }
}

#[test]
fn a_command_committed_while_a_peer_frame_is_stored_still_reaches_the_peer() {
    let sample = sample::poll_history(4);
    let temp = tempfile::tempdir().unwrap();
    let open = |name: &str| {
        let node = Node::open(&temp.path().join(name)).unwrap();
        node.init_with_keys(name, sample::key(1, 0), sample::key(2, 0))
            .unwrap();
        let mut ops = sample.setup.clone();
        ops.extend_from_slice(&sample.ballots[..2]);
        node.import_hub(&sample.hub, "H", &ops).unwrap();
        node
    };
    let (node_a, node_b) = (open("a"), open("b"));
    let side = |node| -> Side<'_> {
        (
            Engine::new(Config::default()),
            Node::replica(node, &sample.hub).unwrap(),
            NodeOps::new(node, sample.hub).unwrap(),
        )
    };
    let (mut a, mut b) = (side(&node_a), side(&node_b));
    a.0.connect(0, PeerId(2), Role::Dialer, Lanes::ALL).unwrap();
    b.0.connect(0, PeerId(1), Role::Listener, Lanes::ALL)
        .unwrap();
    pump(0, &mut a, &mut b);

    // A command on node a commits ballot 2 (its network task has not taken it in yet)...
    let local = sample.ballots[2].clone();
    let command = |node: &Node, op: &Vec<u8>| {
        let mut replica = node.replica(&sample.hub).unwrap();
        node.ingest(&sample.hub, &mut replica, std::slice::from_ref(op))
            .unwrap();
    };
    command(&node_a, &local);
    // ... while b's new ballot 3 arrives and is stored through a's network task.
    command(&node_b, &sample.ballots[3]);
    b.2.catch_up(&mut b.1).unwrap();
    pump(0, &mut a, &mut b);
    // Then a's network task takes in the command's ballot, as `Running::local_wrote` does,
    // and the session goes on (and through a resync, which changes nothing).
    a.2.catch_up(&mut a.1).unwrap();
    pump(0, &mut a, &mut b);
    // Pushed at once, as any op stored here: not left for the next resync.
    let id = SignedOp::decode(&local).unwrap().id();
    assert!(b.1.holds(&id), "a's ballot waits for a resync");
    let later = Config::default().resync_interval_ms + 1;
    a.0.handle_timeout(later);
    b.0.handle_timeout(later);
    pump(later, &mut a, &mut b);

    assert!(
        node_b
            .store()
            .unwrap()
            .op(&sample.hub, &id)
            .unwrap()
            .is_some()
    );
    let all = sample.setup.len() + sample.ballots.len();
    assert_eq!(
        node_a.store().unwrap().op_count(&sample.hub).unwrap(),
        all as u64
    );
    assert_eq!(
        node_b.store().unwrap().op_count(&sample.hub).unwrap(),
        all as u64
    );
}
