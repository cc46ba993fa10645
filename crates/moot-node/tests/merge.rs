//! The merge report: a member who voted at two branches (their key on both branch laptops) is
//! counted once and flagged when the bundles meet.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_bundle::Lanes;
use moot_crypto::SecretKey;
use moot_node::Node;
use moot_node::polls::PollSpec;
use moot_state::body::AssemblyRef;

fn node(dir: &std::path::Path, name: &str, member: [u8; 32], device: [u8; 32]) -> Node {
    let mut node = Node::open(dir).unwrap();
    node.init_with_keys(
        name,
        SecretKey::from_seed(member),
        SecretKey::from_seed(device),
    )
    .unwrap();
    node
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
    let poll = hall
        .create_poll(
            &hub,
            &fay,
            PollSpec {
                assembly: AssemblyRef::Activism,
                question: "Which campaign?".into(),
                options: vec!["Buses".into(), "Bikes".into()],
                seats: 1,
                officers: Vec::new(),
                stations: Vec::new(),
                quorum: None,
                opens_at: None,
                closes_at: None,
            },
        )
        .unwrap();
    hall.open_poll(&hub, &fay, &poll).unwrap();
    let out = path("out.bundle");
    hall.export_bundle(&hub, Lanes::ALL, &out).unwrap();
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
