//! `Replica::shed_caches` (what a settled node calls to give memory back) drops what only speeds
//! up taking in ops, and never changes a result: a replica that sheds its caches again and again
//! while taking in a workload judges every op, and derives the roll, the polls and the ballots,
//! exactly as one that never sheds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_state::{Limits, Replica, Retain, sample};

#[test]
fn shedding_caches_changes_no_result_and_frees_the_rolls_of_pasts() {
    // 150 members each certifying a device (300 roll ops), 3 proposals of 1 + 20 edits, a poll
    // with 150 ballots (each naming the poll's opening: an old roll frontier), 10 offers.
    let w = sample::workload(150, 3, 20, 10, 7);
    let limits = Limits {
        retain: Retain::IndexOnly,
        ..Limits::default()
    };
    let mut kept = Replica::new(w.hub, limits);
    let mut shed = Replica::new(w.hub, limits);
    let mut most_cached = 0;
    for (i, op) in w.ops.iter().enumerate() {
        let a = kept.insert(op);
        let b = shed.insert(op);
        assert_eq!(a.outcome, b.outcome, "op {i}");
        assert_eq!(a.released, b.released, "op {i}");
        most_cached = most_cached.max(shed.cached_rolls());
        if i % 37 == 36 {
            shed.shed_caches();
            // Only the rolls of the current roll heads stay (the heads of both lanes, and their
            // public frontier).
            assert!(shed.cached_rolls() <= 3, "{} cached", shed.cached_rolls());
        }
    }
    // Without shedding, the rolls of hundreds of pasts stay cached.
    assert!(
        kept.cached_rolls() > 100 && kept.cached_rolls() > most_cached,
        "{} cached, {most_cached} at most with shedding",
        kept.cached_rolls()
    );
    shed.shed_caches();
    assert!(shed.index_bytes() <= kept.index_bytes());

    assert_eq!(kept.roll(), shed.roll());
    assert_eq!(kept.polls(), shed.polls());
    assert_eq!(kept.poll_ballots(&w.poll), shed.poll_ballots(&w.poll));
    assert_eq!(kept.ballot_count(), 150);
    for op in &w.ops {
        let id = moot_crypto::SignedOp::decode(op).unwrap().id();
        assert_eq!(kept.validity(&id), shed.validity(&id));
        assert_eq!(kept.verdict(&id), shed.verdict(&id));
    }
}

/// A node sheds when its per-op tables hold much spare capacity (`Replica::spare_bytes`), so
/// the spare must be seen after a table doubles, be zero after a shed, and stay zero for the
/// next few ops (a shed keeps a little room; without it, every op after a shed would double a
/// table again and the node would shed at every settle).
#[test]
fn spare_capacity_is_seen_given_back_and_not_regrown_by_the_next_ops() {
    let w = sample::workload(300, 3, 20, 10, 11);
    let mut replica = Replica::new(w.hub, Limits::default());
    let mut saw_spare = false;
    for (i, op) in w.ops.iter().enumerate() {
        replica.insert(op);
        saw_spare |= replica.spare_bytes() > 0;
        if i == w.ops.len() / 2 {
            replica.shed_caches();
            assert_eq!(replica.spare_bytes(), 0, "after the shed at op {i}");
            let at_shed = replica.index_bytes();
            // The next ops fit in the room the shed kept.
            for op in &w.ops[i + 1..i + 1 + (i + 1) / 64] {
                replica.insert(op);
            }
            assert_eq!(
                replica.spare_bytes(),
                0,
                "the ops after a shed doubled a table"
            );
            assert_eq!(replica.index_bytes(), at_shed);
        }
    }
    assert!(saw_spare, "no table ever doubled past its length");
    let before = replica.index_bytes();
    replica.shed_caches();
    assert_eq!(replica.spare_bytes(), 0);
    assert!(replica.index_bytes() <= before);
}
