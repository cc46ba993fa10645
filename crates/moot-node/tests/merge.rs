//! The merge report: a member who voted at two branches (their key on both branch laptops) is
//! counted once and flagged when the bundles meet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_bundle::Lanes;
use moot_crypto::SecretKey;
use moot_node::Node;
use moot_node::polls::PollSpec;
use moot_state::body::AssemblyRef;

fn node(dir: &std::path::Path, name: &str, member: [u8; 32], device: [u8; 32]) -> Node {
    let node = Node::open(dir).unwrap();
    node.init_with_keys(
        name,
        SecretKey::from_seed(member),
        SecretKey::from_seed(device),
    )
    .unwrap();
    node
}

/// The hall's STAR poll in the Activism Society (every member), opened.
fn open_poll(hall: &Node, fay: &moot_node::Signer, hub: &moot_crypto::HubId) -> moot_crypto::OpId {
    let spec = PollSpec {
        assembly: AssemblyRef::Activism,
        question: "Which campaign?".into(),
        options: vec!["Buses".into(), "Bikes".into()],
        seats: 1,
        officers: Vec::new(),
        stations: Vec::new(),
        quorum: None,
        opens_at: None,
        closes_at: None,
    };
    let poll = hall.create_poll(hub, fay, spec).unwrap();
    hall.open_poll(hub, fay, &poll).unwrap();
    poll
}

#[test]
fn a_member_who_voted_at_two_branches_counts_once_and_is_flagged() {
    let temp = tempfile::tempdir().unwrap();
    let path = |name: &str| temp.path().join(name);
    let hall = node(&path("hall"), "Fay", [1; 32], [2; 32]);
    let fay = hall.signer(None, None).unwrap();
    let hub = hall.create_hub("Riverside", &fay).unwrap();
    let mo = SecretKey::from_seed([7; 32]).public();
    hall.add_member(&hub, &fay, mo, "Mo", None, moot_node::AddAs::Member)
        .unwrap();
    let poll = open_poll(&hall, &fay, &hub);
    let out = path("out.bundle");
    hall.export_bundle(&hub, Lanes::ALL, &out).unwrap();
    // The bundle holds the members lane: its owner's only.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&out).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{mode:o}");
    }
    // Mo's key is on both branch laptops, each with its own device.
    let north = node(&path("north"), "Mo", [7; 32], [8; 32]);
    let south = node(&path("south"), "Mo", [7; 32], [9; 32]);
    for branch in [&north, &south] {
        branch.import_bundle(&out, &mut |_, _| {}).unwrap();
        let mo = branch.signer(None, None).unwrap();
        let score = if std::ptr::eq(branch, &north) { 5 } else { 0 };
        branch
            .vote(&hub, &mo, &poll, &[("Buses".into(), score)])
            .unwrap();
    }
    let (n, s) = (path("north.bundle"), path("south.bundle"));
    north.export_bundle(&hub, Lanes::ALL, &n).unwrap();
    south.export_bundle(&hub, Lanes::ALL, &s).unwrap();
    let first = hall.import_bundle(&n, &mut |_, _| {}).unwrap();
    assert!(first.merge.polls[0].voted_on_both_sides.is_empty());
    assert_eq!(first.merge.polls[0].theirs_only, 1);
    let second = hall.import_bundle(&s, &mut |_, _| {}).unwrap();
    let merged = &second.merge.polls[0];
    assert_eq!(merged.voted_on_both_sides, vec![hex::encode(mo.to_bytes())]);
    assert_eq!((merged.ours_only, merged.theirs_only), (1, 1));
    assert!(second.merge.summary().contains("voted on both sides"));
    // Counted once: one ballot of Mo's counts, the other is excluded with its reason.
    let results = hall.poll_results(&hub, &poll).unwrap();
    assert_eq!(results.counted, 1);
    assert_eq!(results.excluded.len(), 1);
    assert_eq!(hall.merges(&hub).unwrap().len(), 2);
}

/// The same meeting over the sync engine instead of bundles: each branch syncs with the hall
/// through two engines over the nodes' real redb stores. The report of the second sync flags
/// the member who voted at both branches, the count takes one ballot, and all three nodes end
/// with the same ops and the same results.
#[test]
fn branches_syncing_with_the_hall_get_the_same_report_and_results() {
    let temp = tempfile::tempdir().unwrap();
    let path = |name: &str| temp.path().join(name);
    let hall = node(&path("hall"), "Fay", [1; 32], [2; 32]);
    let fay = hall.signer(None, None).unwrap();
    let hub = hall.create_hub("Riverside", &fay).unwrap();
    let mo = SecretKey::from_seed([7; 32]).public();
    hall.add_member(&hub, &fay, mo, "Mo", None, moot_node::AddAs::Member)
        .unwrap();
    let poll = open_poll(&hall, &fay, &hub);
    let out = path("out.bundle");
    hall.export_bundle(&hub, Lanes::ALL, &out).unwrap();
    let north = node(&path("north"), "Mo", [7; 32], [8; 32]);
    let south = node(&path("south"), "Mo", [7; 32], [9; 32]);
    for (branch, score) in [(&north, 5), (&south, 0)] {
        branch.import_bundle(&out, &mut |_, _| {}).unwrap();
        let mo = branch.signer(None, None).unwrap();
        branch
            .vote(&hub, &mo, &poll, &[("Buses".into(), score)])
            .unwrap();
    }
    hall.vote(&hub, &fay, &poll, &[("Bikes".into(), 4)])
        .unwrap();
    let first = hall.sync_with(&north, &hub).unwrap();
    assert_eq!(first.here.polls[0].theirs_only, 1); // Mo's ballot from the north
    assert!(first.here.polls[0].voted_on_both_sides.is_empty());
    assert_eq!(first.there.polls[0].theirs_only, 1); // Fay's ballot went north
    let second = hall.sync_with(&south, &hub).unwrap();
    let merged = &second.here.polls[0];
    assert_eq!(merged.voted_on_both_sides, vec![hex::encode(mo.to_bytes())]);
    // South learns of north's ballot from the hall, and flags it too.
    assert_eq!(
        second.there.polls[0].voted_on_both_sides,
        vec![hex::encode(mo.to_bytes())]
    );
    hall.sync_with(&north, &hub).unwrap();
    let results: Vec<_> = [&hall, &north, &south]
        .iter()
        .map(|n| n.poll_results(&hub, &poll).unwrap())
        .collect();
    assert_eq!(results[0].counted, 2);
    for r in &results[1..] {
        assert_eq!(r.counted, results[0].counted);
        assert_eq!(r.excluded, results[0].excluded);
        assert_eq!(r.total, results[0].total);
    }
    let ops: Vec<_> = [&hall, &north, &south]
        .iter()
        .map(|n| n.store().unwrap().ops(&hub).unwrap().len())
        .collect();
    assert!(ops.iter().all(|n| *n == ops[0]), "{ops:?}");
}

/// A roll change made where a poll's open was not yet known (a steward's second laptop admits
/// a member while the hall opens a poll) is one the open did not see: its electorate was fixed
/// without it, and the merge report says so while the poll is open; once it is closed, roll
/// changes no longer concern it.
#[test]
fn roll_changes_an_open_did_not_see_are_reported_while_the_poll_is_open() {
    let temp = tempfile::tempdir().unwrap();
    let path = |name: &str| temp.path().join(name);
    let hall = node(&path("hall"), "Fay", [1; 32], [2; 32]);
    let fay = hall.signer(None, None).unwrap();
    let hub = hall.create_hub("Riverside", &fay).unwrap();
    let before = path("before.bundle");
    hall.export_bundle(&hub, Lanes::ALL, &before).unwrap();
    // Fay's second laptop, apart from the hall.
    let annex = node(&path("annex"), "Fay", [1; 32], [3; 32]);
    annex.import_bundle(&before, &mut |_, _| {}).unwrap();
    let fay_annex = annex.signer(None, None).unwrap();
    let zed = SecretKey::from_seed([26; 32]).public();
    annex
        .add_member(&hub, &fay_annex, zed, "Zed", None, moot_node::AddAs::Member)
        .unwrap();
    let poll = open_poll(&hall, &fay, &hub);
    let synced = hall.sync_with(&annex, &hub).unwrap();
    let changes = &synced.here.roll_changes_during_open_polls;
    assert!(!changes.is_empty());
    assert!(
        changes
            .iter()
            .all(|c| c.open_polls == vec![poll.to_string()])
    );
    assert!(synced.here.summary().contains("did not see"));
    // The annex's device certificate (its first write) changes no electorate: not reported.
    assert!(
        changes
            .iter()
            .all(|c| c.kind != moot_state::body::kind::CERTIFY_DEVICE),
        "{changes:?}"
    );
    // In JSON the kind is named, as `moot activity` names it; stored, the report keeps the
    // number (and reads back the same).
    let json = serde_json::to_value(&synced.here).unwrap();
    assert_eq!(
        json["roll_changes_during_open_polls"][0]["kind"],
        moot_state::body::kind::name(changes[0].kind),
        "{json}"
    );
    assert_eq!(json["roll_changes_during_open_polls"][0]["kind"], "admit");
    let stored = postcard::to_allocvec(&synced.here).unwrap();
    let back: moot_node::merge::MergeReport = postcard::from_bytes(&stored).unwrap();
    assert_eq!(back, synced.here);
    // Once the poll is closed, a new admission is not reported.
    hall.close_poll(&hub, &fay, &poll).unwrap();
    let yan = SecretKey::from_seed([25; 32]).public();
    annex
        .add_member(&hub, &fay_annex, yan, "Yan", None, moot_node::AddAs::Member)
        .unwrap();
    let later = hall.sync_with(&annex, &hub).unwrap();
    assert!(later.here.new_ops > 0);
    assert!(later.here.roll_changes_during_open_polls.is_empty());
}
