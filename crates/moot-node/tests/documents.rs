//! Documents on a node: a snapshot never changes which of two forked changes stands, and a vote
//! on a proposal always keeps its "Reject" option.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::{Lane, SecretKey};
use moot_node::Node;
use moot_state::body::{AssemblyRef, DocChange};
use moot_state::{Body, Limits, Replica};

/// A device writes two different changes with the same sequence number (a copied data
/// directory); the node saw one, saved a snapshot, then the other: the text is the one a node
/// rebuilding from the ops shows, whatever the snapshot.
#[test]
fn forked_changes_show_the_same_text_with_or_without_a_snapshot() {
    let temp = tempfile::tempdir().unwrap();
    let node = Node::open(&temp.path().join("n")).unwrap();
    let (member, device) = (SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32]));
    node.init_with_keys("Fay", member, device.clone()).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    let doc = node
        .create_proposal(&hub, &fay, &AssemblyRef::Policy, "Sunday", "Open the hall.")
        .unwrap();
    // Two copies of the node's state, each writing its own next change with the same device.
    let ops = node.store().unwrap().ops(&hub).unwrap();
    let fork = |text: &str| {
        let mut replica = Replica::new(hub, Limits::default());
        for op in &ops {
            replica.insert(op);
        }
        let changes = replica.doc_changes(&doc);
        let creator = replica.op(&changes[0].op).unwrap();
        let creator = moot_state::body::stored_change(creator.kind(), creator.body()).unwrap();
        let mut document = moot_doc::Document::from_creator(&creator).unwrap();
        document.apply(&[(doc.0, &creator)]);
        let change = document
            .edit(&device.public().to_bytes(), 0, 0, text)
            .unwrap();
        let body = Body::DocChange(DocChange { doc, change });
        let id = replica
            .write_in(&device, Lane::Members, &body, &[doc])
            .unwrap();
        replica.op_bytes(id.last().unwrap()).unwrap().to_vec()
    };
    let (a, b) = (fork("A: "), fork("B: "));
    let mut replica = node.replica(&hub).unwrap();
    node.ingest(&hub, &mut replica, &[a]).unwrap();
    // The node shows the document: a snapshot holding the first change is saved.
    node.proposal_view(&hub, &doc).unwrap();
    let mut replica = node.replica(&hub).unwrap();
    node.ingest(&hub, &mut replica, &[b]).unwrap();
    let with_snapshot = node.proposal_view(&hub, &doc).unwrap();
    // Without any snapshot: rebuilt from the ops.
    node.store()
        .unwrap()
        .put_view(&hub, &format!("doc/{doc}"), b"")
        .unwrap();
    let rebuilt = node.proposal_view(&hub, &doc).unwrap();
    assert_eq!(with_snapshot.text, rebuilt.text);
    assert!(with_snapshot.flags.iter().any(|f| f.contains("left out")));
}

#[test]
fn a_vote_with_too_many_amendments_for_one_ballot_is_refused_not_cut() {
    let temp = tempfile::tempdir().unwrap();
    let node = Node::open(&temp.path().join("n")).unwrap();
    node.init("Fay", None).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    let words: Vec<String> = (0..63).map(|i| format!("w{i:02}x")).collect();
    let doc = node
        .create_proposal(&hub, &fay, &AssemblyRef::Policy, "Many", &words.join(" "))
        .unwrap();
    for w in &words {
        node.amend(&hub, &fay, &doc, w, "y").unwrap();
    }
    let refused = node
        .decide(&hub, &fay, &doc, moot_node::deliberation::Decision::Vote)
        .unwrap_err();
    assert!(
        refused.to_string().contains("do not fit one ballot"),
        "{refused}"
    );
    assert!(node.polls(&hub).unwrap().is_empty());
}

/// A proposal's title may take all its 200 bytes (here in two-byte letters); the vote's
/// question and options quote it cut to fit theirs, and the vote goes ahead.
#[test]
fn a_proposal_with_the_longest_title_goes_to_a_vote() {
    let temp = tempfile::tempdir().unwrap();
    let node = Node::open(&temp.path().join("n")).unwrap();
    node.init("Fay", None).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    let title = "é".repeat(100);
    assert_eq!(title.len(), 200);
    let doc = node
        .create_proposal(&hub, &fay, &AssemblyRef::Policy, &title, "Open the hall.")
        .unwrap();
    node.amend(&hub, &fay, &doc, "hall", &"ü".repeat(100))
        .unwrap();
    let (_, poll) = node
        .decide(&hub, &fay, &doc, moot_node::deliberation::Decision::Vote)
        .unwrap();
    assert!(poll.is_some());
    let polls = node.polls(&hub).unwrap();
    let poll = &polls[0];
    assert!(poll.question.len() <= 200, "{}", poll.question);
    assert!(poll.question.starts_with("Adopt the proposal \"éé"));
    assert!(poll.question.ends_with("é…\"?"), "{}", poll.question);
    assert_eq!(poll.options.len(), 3, "{:?}", poll.options);
    assert!(
        poll.options.iter().all(|o| o.len() <= 200),
        "{:?}",
        poll.options
    );
    assert!(poll.options[1].starts_with("Adopt with amendment 1: üü"));
    assert_eq!(poll.options[2], "Reject");
}

/// An edit whose change is larger than one op's body may be (every peer refuses it) is refused
/// before it is signed, saying to make it in parts; the text is unchanged, and the same text in
/// two edits goes in. (30,000 three-byte characters: within one change's 65,536 ops, not within
/// an op's 64 KiB.)
#[test]
fn an_edit_larger_than_one_op_is_refused_saying_to_make_it_in_parts() {
    let temp = tempfile::tempdir().unwrap();
    let node = Node::open(&temp.path().join("n")).unwrap();
    node.init("Fay", None).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    let doc = node
        .create_proposal(&hub, &fay, &AssemblyRef::Policy, "Hall", "Open the hall.")
        .unwrap();
    let long: String = (0..30_000u32)
        .map(|i| char::from_u32(0x4E00 + i % 2_000).unwrap())
        .collect();
    let error = node
        .edit_proposal(&hub, &fay, &doc, |d, actor| d.replace_all(actor, &long))
        .unwrap_err()
        .to_string();
    assert!(error.contains("make it in parts"), "{error}");
    assert!(error.contains("one op carries at most"), "{error}");
    assert_eq!(
        node.proposal_view(&hub, &doc).unwrap().text,
        "Open the hall."
    );
    let half: String = long.chars().take(15_000).collect();
    node.edit_proposal(&hub, &fay, &doc, |d, actor| d.replace_all(actor, &half))
        .unwrap();
    node.edit_proposal(&hub, &fay, &doc, |d, actor| d.replace_all(actor, &long))
        .unwrap();
    assert_eq!(node.proposal_view(&hub, &doc).unwrap().text, long);
}
