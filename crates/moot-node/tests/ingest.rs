//! Taking in many ops (`Node::ingest`): what the replica accepted is what the store holds, also
//! when an op is refused partway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use moot_crypto::{OpId, SignedOp};
use moot_node::{Node, NodeError};

/// 30 ballots in one run of the batch insertion, the 11th forged: the error names the refusal,
/// and every ballot the replica accepted (the ones after the forged one in the same run too) is
/// stored; a node loading the hub again holds exactly them.
#[test]
fn a_refused_ballot_leaves_every_accepted_one_stored() {
    let sample = moot_state::sample::poll_history(30);
    let temp = tempfile::tempdir().unwrap();
    let node = Node::open(&temp.path().join("n")).unwrap();
    node.init_with_keys(
        "Founder",
        moot_state::sample::key(1, 0),
        moot_state::sample::key(2, 0),
    )
    .unwrap();
    node.import_hub(&sample.hub, "Sample poll hub", &sample.setup)
        .unwrap();
    let mut ballots = sample.ballots.clone();
    let last = ballots[10].len() - 1;
    ballots[10][last] ^= 0x01;
    let mut replica = node.replica(&sample.hub).unwrap();
    let result = node.ingest(&sample.hub, &mut replica, &ballots);
    assert!(matches!(result, Err(NodeError::Refused(_))), "{result:?}");
    let id = |bytes: &Vec<u8>| SignedOp::decode(bytes).unwrap().id();
    let stored: BTreeSet<OpId> = node
        .store()
        .unwrap()
        .ops(&sample.hub)
        .unwrap()
        .iter()
        .map(id)
        .collect();
    for (n, ballot) in ballots.iter().enumerate() {
        assert_eq!(stored.contains(&id(ballot)), n != 10, "ballot {n}");
        assert_eq!(
            replica.holds(&id(ballot)),
            n != 10,
            "ballot {n} in the replica"
        );
    }
    let reloaded = node.replica(&sample.hub).unwrap();
    assert_eq!(reloaded.op_ids(), replica.op_ids());
}
