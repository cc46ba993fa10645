//! The roll view: written with every change, used while current, rebuilt from the ops when not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_node::{AddAs, Node};

/// A node in a temporary directory with Fay's key and her hub "Riverside".
fn fay_and_hub() -> (
    tempfile::TempDir,
    Node,
    moot_node::Signer,
    moot_crypto::HubId,
) {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.init("Fay", None).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    (dir, node, fay, hub)
}

#[test]
fn the_roll_view_is_a_rebuildable_cache_of_the_ops() {
    let (_dir, node, fay, hub) = fay_and_hub();
    let ann = node.new_member_key("Ann", None).unwrap();
    node.add_member(&hub, &fay, ann, "Ann", None, AddAs::Member)
        .unwrap();
    let old_view = node
        .store()
        .unwrap()
        .view(&hub, "roll")
        .unwrap()
        .expect("written with the change");
    assert_eq!(node.members(&hub).unwrap().len(), 2);

    let bob = node.new_member_key("Bob", None).unwrap();
    node.add_member(&hub, &fay, bob, "Bob", None, AddAs::Guest)
        .unwrap();
    let members = node.members(&hub).unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(
        members
            .iter()
            .find(|m| m.member_id == bob.to_string())
            .unwrap()
            .status,
        "guest"
    );

    // A stale view (from before Bob) or an unreadable one is not trusted: the roll is derived
    // from the ops again, and comes out the same.
    node.store()
        .unwrap()
        .put_view(&hub, "roll", &old_view)
        .unwrap();
    assert_eq!(node.members(&hub).unwrap(), members);
    node.store()
        .unwrap()
        .put_view(&hub, "roll", b"garbage")
        .unwrap();
    assert_eq!(node.members(&hub).unwrap(), members);
}

#[test]
fn a_stored_op_the_rules_refuse_is_a_loud_error_not_a_quiet_skip() {
    use moot_crypto::{Draft, Lane, SecretKey};
    use moot_state::Body;
    use moot_state::body::{Admit, Checkpoint};
    let (_dir, node, _fay, hub) = fay_and_hub();
    let replica = node.replica(&hub).unwrap();
    let heads = replica.roll_heads(Lane::Public);
    let stranger = SecretKey::from_seed([9; 32]);
    let sign = |lane: Lane, seq: u64, prev, deps: Vec<moot_crypto::OpId>, body: Body| {
        let (kind, bytes) = body.encode().unwrap();
        Draft {
            lane,
            seq,
            prev,
            deps,
            kind,
            body: bytes,
        }
        .sign(&hub, &stranger)
        .unwrap()
    };
    // Roll ops are judged again on load: an admission by a key nobody certified, slipped into
    // the store behind the replica's back (a tampered or incompatible store), stops the load.
    let admit = sign(
        Lane::Public,
        1,
        None,
        heads.clone(),
        Body::Admit(Admit {
            member: stranger.public(),
            standing: moot_state::Standing::Member,
        }),
    );
    node.store().unwrap().put_ops(&hub, &[admit.get()]).unwrap();
    let error = match node.replica(&hub) {
        Ok(_) => panic!("a refused stored op must not load quietly"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(&admit.id().to_string()), "{error}");
    assert!(error.contains("not accepted by this version"), "{error}");

    // Other ops keep the verdict they were stored with, but their structure is checked: a
    // public op resting on a members-lane op is refused too.
    let (_dir, node, _fay, hub) = fay_and_hub();
    let replica = node.replica(&hub).unwrap();
    let members_head = replica.roll_heads(Lane::Members);
    let bad = sign(
        Lane::Public,
        1,
        None,
        members_head,
        Body::Checkpoint(Checkpoint {}),
    );
    node.store().unwrap().put_ops(&hub, &[bad.get()]).unwrap();
    let error = match node.replica(&hub) {
        Ok(_) => panic!("a refused stored op must not load quietly"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains(&bad.id().to_string()), "{error}");
}

#[test]
fn ops_an_older_version_could_not_judge_are_judged_on_load_and_their_verdict_stored() {
    use moot_crypto::Lane;
    use moot_state::Body;
    use moot_state::body::Checkpoint;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Node::open(&data).unwrap();
    node.init_with_keys(
        "Founder",
        moot_state::sample::key(1, 0),
        moot_state::sample::key(2, 0),
    )
    .unwrap();
    let (hub, history) = moot_state::sample::history(2, 3);
    node.import_hub(&hub, "Sample", &history).unwrap();
    // An op of a kind this version knows, stored as an older version would have: "unsupported"
    // (verdict byte 1).
    let mut replica = node.replica(&hub).unwrap();
    let op = replica
        .write_ops(
            &moot_state::sample::key(2, 0),
            Lane::Members,
            &Body::Checkpoint(Checkpoint {}),
            &[],
        )
        .unwrap()
        .remove(0);
    let store = node.store().unwrap();
    store.put_kept(&hub, &[(op.get(), 1)]).unwrap();
    let stored_verdict = |node: &Node| {
        node.store()
            .unwrap()
            .load_from(&hub, 0, 1_000)
            .unwrap()
            .into_iter()
            .find(|(_, o, _)| o.id() == op.id())
            .map(|(_, _, v)| v)
    };
    assert_eq!(stored_verdict(&node), Some(1));
    // Loading judges it with today's rules, and stores the new verdict.
    let mut replica = node.replica(&hub).unwrap();
    assert_eq!(
        replica.verdict(&op.id()),
        Some(moot_state::Verdict::Accepted)
    );
    assert_eq!(replica.validity(&op.id()), Some(Ok(())));
    assert_eq!(stored_verdict(&node), Some(0));
}

#[test]
fn an_op_held_unjudged_and_refused_once_judged_is_recorded_not_fatal() {
    use moot_crypto::{Draft, Lane, SecretKey};
    let (_dir, node, _fay, hub) = fay_and_hub();
    let heads = node.replica(&hub).unwrap().roll_heads(Lane::Public);
    // A stranger's op, stored as an older version would have kept it: held for an upgrade.
    let op = Draft {
        lane: Lane::Public,
        seq: 1,
        prev: None,
        deps: heads,
        kind: moot_state::body::kind::CHECKPOINT,
        body: vec![],
    }
    .sign(&hub, &SecretKey::from_seed([9; 32]))
    .unwrap();
    node.store()
        .unwrap()
        .put_kept(&hub, &[(op.get(), 2)])
        .unwrap();
    // Judged now, it is refused: the hub still loads, without it, and its verdict is recorded.
    let replica = node.replica(&hub).unwrap();
    assert!(!replica.holds(&op.id()));
    let verdict = node
        .store()
        .unwrap()
        .load_from(&hub, 0, 100)
        .unwrap()
        .into_iter()
        .find(|(_, o, _)| o.id() == op.id())
        .map(|(_, _, v)| v);
    assert_eq!(verdict, Some(3));
    assert!(node.replica(&hub).is_ok(), "later loads skip it");
}

#[test]
fn an_op_resting_on_one_refused_after_an_upgrade_is_recorded_too_and_the_hub_loads() {
    use moot_crypto::{Draft, Lane, SecretKey};
    let (_dir, node, _fay, hub) = fay_and_hub();
    let heads = node.replica(&hub).unwrap().roll_heads(Lane::Public);
    // A stranger's chain of two: the first stored as held, the second (continuing it) as
    // accepted, as an older version could have stored them.
    let stranger = SecretKey::from_seed([9; 32]);
    let first = Draft {
        lane: Lane::Public,
        seq: 1,
        prev: None,
        deps: heads,
        kind: 0x0377,
        body: vec![],
    }
    .sign(&hub, &stranger)
    .unwrap();
    let second = Draft {
        lane: Lane::Public,
        seq: 2,
        prev: Some(first.id()),
        deps: vec![],
        kind: moot_state::body::kind::CHECKPOINT,
        body: vec![],
    }
    .sign(&hub, &stranger)
    .unwrap();
    node.store()
        .unwrap()
        .put_kept(&hub, &[(first.get(), 1), (second.get(), 0)])
        .unwrap();
    let replica = node.replica(&hub).unwrap();
    assert!(!replica.holds(&first.id()) && !replica.holds(&second.id()));
    assert!(node.replica(&hub).is_ok(), "and again");
    // The roll view stays current (it counts what the store holds).
    let members = node.members(&hub).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(
        node.store().unwrap().op_count(&hub).unwrap(),
        replica.len() as u64 + 2
    );
}

#[test]
fn ops_that_leave_the_roll_alone_move_only_the_roll_views_stamp() {
    use moot_state::Body;
    use moot_state::body::Checkpoint;
    let (_dir, node, fay, hub) = fay_and_hub();
    let ann = node.new_member_key("Ann", None).unwrap();
    node.add_member(&hub, &fay, ann, "Ann", None, AddAs::Member)
        .unwrap();
    let members = node.members(&hub).unwrap();
    let view = node.store().unwrap().view(&hub, "roll").unwrap().unwrap();
    // A non-roll op: the roll view is not derived again (its bytes stay), yet it is current.
    node.write(&hub, &fay, &[Body::Checkpoint(Checkpoint {})])
        .unwrap();
    assert_eq!(
        node.store().unwrap().view(&hub, "roll").unwrap().unwrap(),
        view
    );
    assert_eq!(node.members(&hub).unwrap(), members);
    // A roll op derives it again.
    let bob = node.new_member_key("Bob", None).unwrap();
    node.add_member(&hub, &fay, bob, "Bob", None, AddAs::Member)
        .unwrap();
    assert_ne!(
        node.store().unwrap().view(&hub, "roll").unwrap().unwrap(),
        view
    );
    assert_eq!(node.members(&hub).unwrap().len(), 3);
}

/// A hub with a members-only working group (Fay and Ann), a poll opened in it and two ballots.
fn hub_with_a_poll() -> (
    tempfile::TempDir,
    Node,
    moot_crypto::HubId,
    moot_crypto::OpId,
) {
    use moot_node::polls::PollSpec;
    use moot_state::body::{AssemblyKind, AssemblyRef};
    let (dir, node, fay, hub) = fay_and_hub();
    let ann = node.new_member_key("Ann", None).unwrap();
    node.add_member(&hub, &fay, ann, "Ann", None, AddAs::Member)
        .unwrap();
    let ann = node.signer(Some(ann), None).unwrap();
    let group = node
        .create_assembly(&hub, &fay, "Transport", AssemblyKind::WorkingGroup, false)
        .unwrap();
    let group = AssemblyRef::Created(group);
    for who in [&fay, &ann] {
        node.join_assembly(&hub, who, &group, true).unwrap();
    }
    let poll = node
        .create_poll(
            &hub,
            &fay,
            PollSpec {
                assembly: group,
                question: "Which first?".into(),
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
    node.open_poll(&hub, &fay, &poll).unwrap();
    node.vote(&hub, &fay, &poll, &[("Buses".into(), 5)])
        .unwrap();
    node.vote(&hub, &ann, &poll, &[("Bikes".into(), 4)])
        .unwrap();
    (dir, node, hub, poll)
}

#[test]
fn damaged_poll_and_roll_views_are_recomputed_from_the_ops_never_believed() {
    let (_dir, node, hub, poll) = hub_with_a_poll();
    let name = format!("poll/{poll}");
    let good = node.store().unwrap().view(&hub, &name).unwrap().unwrap();
    let results = node.poll_results(&hub, &poll).unwrap();
    assert_eq!(results.counted, 2);
    let members = node.members(&hub).unwrap();
    // Random bytes, truncations and bit flips of the stored views: every read gives the same
    // results (recomputed when the view does not decode or does not match), never a panic.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for trial in 0..200 {
        let mut bytes = good.clone();
        match trial % 4 {
            0 => bytes.truncate((next() as usize) % (good.len() + 1)),
            1 => {
                let at = (next() as usize) % bytes.len();
                bytes[at] ^= 1 << (next() % 8);
            }
            2 => bytes = (0..(next() % 600)).map(|_| next() as u8).collect(),
            _ => bytes.extend((0..(next() % 64)).map(|_| next() as u8)),
        }
        node.store().unwrap().put_view(&hub, &name, &bytes).unwrap();
        node.store()
            .unwrap()
            .put_view(&hub, "roll-stamp", &bytes[..bytes.len().min(9)])
            .unwrap();
        let again = node.poll_results(&hub, &poll).unwrap();
        assert_eq!(again.counted, results.counted);
        assert_eq!(again.total, results.total);
        assert_eq!(node.members(&hub).unwrap(), members);
    }
}

/// A document's snapshot is a cache: a stale one (from before later edits), a damaged one and
/// a missing one all give the same text, rebuilt from the ops; well-formed bytes that are not
/// a document (or hostile ones) are never believed.
#[test]
fn a_document_snapshot_is_a_rebuildable_cache_of_its_ops() {
    let (_dir, node, fay, hub) = fay_and_hub();
    let proposal = node
        .create_proposal(
            &hub,
            &fay,
            &moot_state::body::AssemblyRef::Policy,
            "Sunday opening",
            "Open the hall.",
        )
        .unwrap();
    let name = format!("doc/{proposal}");
    node.edit_proposal(&hub, &fay, &proposal, |doc, actor| {
        doc.edit(actor, 0, 0, "Please: ")
    })
    .unwrap();
    let early = node.store().unwrap().view(&hub, &name).unwrap().unwrap();
    node.edit_proposal(&hub, &fay, &proposal, |doc, actor| {
        let end = doc.len_utf16();
        doc.edit(actor, end, 0, " On Sundays.")
    })
    .unwrap();
    let text = node.proposal_view(&hub, &proposal).unwrap().text;
    assert_eq!(text, "Please: Open the hall. On Sundays.");
    let mut seeds: Vec<Vec<u8>> = vec![early.clone(), b"garbage".to_vec(), Vec::new()];
    // Every single-byte change of the stale snapshot (its seal then fails, or its contents do).
    for i in (0..early.len()).step_by(7) {
        let mut bad = early.clone();
        bad[i] ^= 0x55;
        seeds.push(bad);
    }
    for bytes in seeds {
        node.store().unwrap().put_view(&hub, &name, &bytes).unwrap();
        assert_eq!(node.proposal_view(&hub, &proposal).unwrap().text, text);
    }
    // Missing altogether: rebuilt from the ops too.
    node.store().unwrap().put_view(&hub, &name, b"").unwrap();
    assert_eq!(node.proposal_view(&hub, &proposal).unwrap().text, text);
    assert_eq!(
        node.export_proposal(&hub, &proposal)
            .map(
                |saved| moot_doc::Document::load(&saved, &moot_doc::Limits::default())
                    .unwrap()
                    .text()
            )
            .unwrap(),
        text
    );
}

#[test]
fn reads_kept_between_calls_see_everything_stored_since() {
    use moot_state::body::AssemblyKind;
    let temp = tempfile::tempdir().unwrap();
    let node = |dir: &str, name: &str, member: [u8; 32], device: [u8; 32]| {
        let node = Node::open(&temp.path().join(dir)).unwrap();
        node.init_with_keys(
            name,
            moot_crypto::SecretKey::from_seed(member),
            moot_crypto::SecretKey::from_seed(device),
        )
        .unwrap();
        node
    };
    let hall = node("hall", "Fay", [1; 32], [2; 32]);
    let fay = hall.signer(None, None).unwrap();
    let hub = hall.create_hub("Riverside", &fay).unwrap();
    let names = |node: &Node| -> Vec<String> {
        node.assemblies(&hub)
            .unwrap()
            .into_iter()
            .map(|a| a.name)
            .collect()
    };
    let before = names(&hall);
    // Written here after a read filled its replica.
    hall.create_assembly(&hub, &fay, "Housing", AssemblyKind::WorkingGroup, false)
        .unwrap();
    assert_eq!(names(&hall), [before, vec!["Housing".into()]].concat());

    // Stored by another path (a bundle from Ann's laptop): the next read has it.
    let ann = moot_crypto::SecretKey::from_seed([7; 32]).public();
    hall.add_member(&hub, &fay, ann, "Ann", None, AddAs::Member)
        .unwrap();
    let out = temp.path().join("out.bundle");
    hall.export_bundle(&hub, moot_bundle::Lanes::ALL, &out)
        .unwrap();
    let laptop = node("laptop", "Ann", [7; 32], [8; 32]);
    laptop.import_bundle(&out, &mut |_, _| {}).unwrap();
    let ann = laptop.signer(None, None).unwrap();
    laptop
        .create_assembly(&hub, &ann, "Transport", AssemblyKind::WorkingGroup, true)
        .unwrap();
    let back = temp.path().join("back.bundle");
    laptop
        .export_bundle(&hub, moot_bundle::Lanes::ALL, &back)
        .unwrap();
    hall.import_bundle(&back, &mut |_, _| {}).unwrap();
    let now = names(&hall);
    assert!(now.contains(&"Transport".to_string()), "{now:?}");

    // Forgotten when idle: loaded afresh, the same answer.
    hall.forget_idle_reads(std::time::Duration::ZERO);
    assert_eq!(names(&hall), now);
}

#[test]
fn known_peers_are_kept_newest_first_without_repeats_and_bounded() {
    let (_dir, node, _fay, hub) = fay_and_hub();
    assert!(node.known_peers(&hub).unwrap().is_empty());
    let a = |i: usize| format!("/ip4/127.0.0.1/tcp/{}/p2p/12D3KooWA", 4000 + i);
    node.remember_peers(&hub, &[a(1), a(2), a(1)]).unwrap();
    assert_eq!(node.known_peers(&hub).unwrap(), [a(1), a(2)]);
    node.remember_peers(&hub, &[a(3), a(2)]).unwrap();
    assert_eq!(node.known_peers(&hub).unwrap(), [a(3), a(2), a(1)]);
    // At most 16, the newest; an address too long to be one is not kept.
    let many: Vec<String> = (10..40).map(a).collect();
    node.remember_peers(&hub, &many).unwrap();
    let known = node.known_peers(&hub).unwrap();
    assert_eq!(known.len(), moot_node::serve::MAX_KNOWN_PEERS);
    assert_eq!(known[0], a(10));
    node.remember_peers(&hub, &["x".repeat(600)]).unwrap();
    assert_eq!(node.known_peers(&hub).unwrap()[0], a(10));
}
