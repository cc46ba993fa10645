//! Proposals and the aid board under attack: every refusal the rules name, each with its typed
//! reason and no state change; forked device chains on a document; replicas agreeing on the
//! document, the proposal and the board whatever order the ops arrive in; and hostile bytes
//! through the body decoder.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::deliberation::*;
use common::polls::*;
use common::*;
use moot_crypto::{Lane, OpId};
use moot_doc::PrescanError;
use moot_state::aid::{AidStatus, ItemInfo};
use moot_state::body::{
    AidChange, AidContact, AidItem, AidKind, AidPledge, AidUnpledge, AidUpdate, Amend,
    AssemblyKind, AssemblyRef, BodyError, Comment, CreateAssembly, CreatePoll, CreateProposal,
    DocChange, Forwarded, Outcome, ResolveAmendment, Stance, StanceKind,
};
use moot_state::deliberation::{AmendmentStatus, ProposalInfo};
use moot_state::{Body, Denied, DocDenied, Limits, Reason, Replica, Role};
use proptest::prelude::*;

/// What a refused op must leave alone: the ops held, every proposal and the board.
#[derive(Debug, PartialEq)]
struct Snapshot {
    len: usize,
    proposals: Vec<ProposalInfo>,
    board: Vec<ItemInfo>,
}

fn snapshot(replica: &mut Replica) -> Snapshot {
    let ids = replica.proposal_ids();
    Snapshot {
        len: replica.len(),
        proposals: ids.iter().filter_map(|id| replica.proposal(id)).collect(),
        board: replica.aid_items(),
    }
}

/// Runs `attempt`, which must be refused, and checks the state did not change → the reason.
fn refused(
    replica: &mut Replica,
    attempt: impl FnOnce(&mut Replica) -> Result<OpId, Reason>,
) -> Reason {
    let before = snapshot(replica);
    let result = attempt(replica);
    let reason = match result {
        Err(reason) => reason,
        Ok(id) => panic!("expected a refusal, {id:?} was accepted"),
    };
    assert_eq!(snapshot(replica), before, "a refused op changed the state");
    reason
}

/// [`refused`], which must be an authorization refusal → the denial.
fn refused_with(
    replica: &mut Replica,
    attempt: impl FnOnce(&mut Replica) -> Result<OpId, Reason>,
) -> Denied {
    match refused(replica, attempt) {
        Reason::Unauthorized(d) => d,
        other => panic!("expected an authorization refusal, got {other:?}"),
    }
}

fn send_change(
    replica: &mut Replica,
    who: &Person,
    doc: OpId,
    change: Vec<u8>,
    refs: &[OpId],
) -> Result<OpId, Reason> {
    try_write(
        replica,
        &who.device,
        Lane::Members,
        Body::DocChange(DocChange { doc, change }),
        refs,
    )
}

fn actor(p: &Person) -> [u8; 32] {
    p.device.public().to_bytes()
}

fn comment(replica: &mut Replica, who: &Person, doc: OpId, parent: Option<OpId>) -> OpId {
    try_comment(replica, who, Lane::Members, doc, parent).unwrap()
}

fn try_comment(
    replica: &mut Replica,
    who: &Person,
    lane: Lane,
    doc: OpId,
    parent: Option<OpId>,
) -> Result<OpId, Reason> {
    let mut refs = vec![doc];
    refs.extend(parent);
    try_write(
        replica,
        &who.device,
        lane,
        Body::Comment(Comment {
            proposal: doc,
            parent,
            text: "A thought.".into(),
        }),
        &refs,
    )
}

fn post(replica: &mut Replica, who: &Person, lane: Lane, kind: AidKind, title: &str) -> OpId {
    try_post(replica, who, lane, kind, title).unwrap()
}

fn try_post(
    replica: &mut Replica,
    who: &Person,
    lane: Lane,
    kind: AidKind,
    title: &str,
) -> Result<OpId, Reason> {
    try_write(
        replica,
        &who.device,
        lane,
        Body::AidItem(Box::new(AidItem {
            kind,
            details: details(title),
            forwarded: None,
        })),
        &[],
    )
}

fn sealed_to(replica: &Replica, author: &Person, item: OpId, contact: &[u8]) -> Vec<u8> {
    moot_aid::seal(
        &author.member.public(),
        &moot_aid::contact_context(&replica.hub().0, &item.0),
        contact,
        [9; 32],
    )
    .unwrap()
}

fn pledge(replica: &mut Replica, who: &Person, author: &Person, item: OpId) -> OpId {
    let contact = sealed_to(replica, author, item, b"pledger@example.org");
    write(
        replica,
        &who.device,
        Lane::Members,
        Body::AidPledge(AidPledge {
            item,
            quantity: None,
            note: "Saturday?".into(),
            contact,
        }),
        &[item],
    )
}

fn amend(replica: &mut Replica, who: &Person, doc: OpId, from: usize, to: usize) -> OpId {
    let document = materialise(replica, &doc);
    let text = document.text();
    write(
        replica,
        &who.device,
        Lane::Members,
        Body::Amend(Amend {
            proposal: doc,
            from: document.cursor(from).unwrap(),
            to: document.cursor(to).unwrap(),
            original: text[from..to].into(),
            replacement: "the caretaker".into(),
        }),
        &[doc],
    )
}

fn resolve(
    replica: &mut Replica,
    who: &Person,
    amendment: OpId,
    accepted: bool,
) -> Result<OpId, Reason> {
    try_write(
        replica,
        &who.device,
        Lane::Members,
        Body::ResolveAmendment(ResolveAmendment {
            amendment,
            accepted,
        }),
        &[amendment],
    )
}

/// A replica of the hall as it stands, for another device to write on.
fn copy_of(replica: &Replica) -> Replica {
    let mut copy = Replica::new(replica.hub(), Limits::default());
    sync(replica, &mut copy);
    copy
}

// ---------------------------------------------------------------------------------------------
// Document changes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_change_whose_automerge_actor_is_another_device_is_refused() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Text");
    let forged = materialise(&mut h.replica, &doc)
        .edit(&actor(&ann), 0, 0, "x")
        .unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        send_change(r, &ben, doc, forged, &[doc])
    });
    assert_eq!(denied, Denied::Doc(DocDenied::ForgedActor));
    // A creator change in Ben's proposal with Ann's actor, too.
    let creator = moot_doc::creator_change(&actor(&ann), "Mine").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ben.device,
            Lane::Members,
            Body::CreateProposal(CreateProposal {
                assembly: AssemblyRef::Policy,
                title: "Borrowed".into(),
                change: creator,
            }),
            &[],
        )
    });
    assert_eq!(denied, Denied::Doc(DocDenied::ForgedActor));
    assert_eq!(materialise(&mut h.replica, &doc).text(), "Text");
}

#[test]
fn a_compressed_change_chunk_is_a_malformed_body() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Text");
    let real = materialise(&mut h.replica, &doc)
        .edit(&actor(&ben), 0, 0, "x")
        .unwrap();
    let (ty, body) = split_chunk(&real);
    assert_eq!(ty, 1);
    // Chunk type 2 (compressed), checksum recomputed so only the type is wrong.
    let compressed = make_chunk(2, &body);
    assert_eq!(
        moot_doc::prescan(&compressed, &moot_doc::Limits::default()),
        Err(PrescanError::Compressed)
    );
    let reason = refused(&mut h.replica, |r| {
        send_change(r, &ben, doc, compressed.clone(), &[doc])
    });
    assert!(
        matches!(
            reason,
            Reason::MalformedBody(BodyError::Change {
                kind: 0x0202,
                error: PrescanError::Compressed
            })
        ),
        "{reason:?}"
    );
    // The body decoder refuses it too.
    let (kind, bytes) = Body::DocChange(DocChange {
        doc,
        change: compressed,
    })
    .encode()
    .unwrap();
    assert_eq!(
        Body::decode(kind, &bytes),
        Err(BodyError::Change {
            kind,
            error: PrescanError::Compressed
        })
    );
}

#[test]
fn an_op_bombed_change_is_a_malformed_body() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Text");
    let creator_hash = moot_doc::prescan(
        &doc_change_bytes(&mut h.replica, &doc)[0].1,
        &moot_doc::Limits::default(),
    )
    .unwrap()
    .hash;
    // A hundred-odd bytes whose RLE columns claim 100,000 deletes.
    let body = change_body(
        &[creator_hash],
        &actor(&ben),
        1,
        10,
        &delete_columns(100_000),
    );
    let bomb = make_chunk(1, &body);
    assert!(bomb.len() < 200, "{} bytes", bomb.len());
    let reason = refused(&mut h.replica, |r| send_change(r, &ben, doc, bomb, &[doc]));
    assert!(
        matches!(
            reason,
            Reason::MalformedBody(BodyError::Change {
                kind: 0x0202,
                error: PrescanError::TooManyOps { .. }
            })
        ),
        "{reason:?}"
    );
    assert_eq!(materialise(&mut h.replica, &doc).text(), "Text");
}

#[test]
fn an_automerge_dependency_the_op_does_not_name_is_refused() {
    let mut h = hall();
    let (ann, ben, dee) = (person(3), person(4), person(5));
    let doc = propose(&mut h, &ann, "Open the hall.");
    // Dee edits; Ben's change builds on Dee's but his op names only the proposal.
    edit(&mut h.replica, &dee, &doc, 0, "Please: ");
    let mut document = materialise(&mut h.replica, &doc);
    let dees_hash = document.heads()[0];
    let change = document.edit(&actor(&ben), 0, 0, "> ").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        send_change(r, &ben, doc, change, &[doc])
    });
    assert_eq!(denied, Denied::Doc(DocDenied::UnnamedDependency(dees_hash)));
    assert_eq!(
        materialise(&mut h.replica, &doc).text(),
        "Please: Open the hall."
    );
}

#[test]
fn a_seq_that_does_not_follow_the_devices_named_change_is_refused() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Open the hall.");
    let before_ben = materialise(&mut h.replica, &doc);
    let first = edit(&mut h.replica, &ben, &doc, 0, "A");
    // Another op of Ben's, so his next op's `prev` is not his seq 1 change.
    comment(&mut h.replica, &ben, doc, None);
    // Ben's seq 2, with his op not naming his seq 1: a gap.
    let mut document = materialise(&mut h.replica, &doc);
    let second = document.edit(&actor(&ben), 0, 0, "B").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        send_change(r, &ben, doc, second, &[doc])
    });
    assert_eq!(
        denied,
        Denied::Doc(DocDenied::SeqGap {
            expected: 1,
            found: 2
        })
    );
    // A second seq 1 naming his seq 1: a duplicate (actor, seq).
    let again = before_ben.clone().edit(&actor(&ben), 0, 0, "C").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        send_change(r, &ben, doc, again, &[doc, first])
    });
    assert_eq!(
        denied,
        Denied::Doc(DocDenied::SeqGap {
            expected: 2,
            found: 1
        })
    );
    assert_eq!(materialise(&mut h.replica, &doc).text(), "AOpen the hall.");
}

#[test]
fn a_forked_device_chain_is_accepted_and_materialises_alike_in_either_order() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Open the hall.");
    // Ben's keys on two replicas, each writing its own seq 1 from the same state.
    let mut one = copy_of(&h.replica);
    let mut two = copy_of(&h.replica);
    let a = edit(&mut one, &ben, &doc, 0, "Please: ");
    let b = edit(&mut two, &ben, &doc, 14, " Today.");
    assert_ne!(a, b);
    let base = copy_of(&h.replica);
    let bytes = |r: &Replica, id: OpId| r.op_bytes(&id).unwrap().to_vec();
    let (a_bytes, b_bytes) = (bytes(&one, a), bytes(&two, b));
    let mut texts = Vec::new();
    for order in [[&a_bytes, &b_bytes], [&b_bytes, &a_bytes]] {
        let mut replica = copy_of(&base);
        for op in order {
            replica.insert(op);
        }
        // Both accepted by the rules.
        let changes: Vec<OpId> = replica.doc_changes(&doc).iter().map(|c| c.op).collect();
        assert!(changes.contains(&a) && changes.contains(&b), "{changes:?}");
        let (document, excluded) = materialise_with_exclusions(&mut replica, &doc);
        // The lower op id's change kept, the other left out.
        let (low, high) = (a.min(b), a.max(b));
        assert_eq!(excluded.len(), 1, "{excluded:?}");
        assert_eq!(excluded[0].key, Some(high.0));
        assert!(document.key_of(&document.heads()[0]) == Some(low.0));
        texts.push(document.text());
    }
    assert_eq!(texts[0], texts[1]);
    assert!(
        texts[0] == "Please: Open the hall." || texts[0] == "Open the hall. Today.",
        "{}",
        texts[0]
    );
}

#[test]
fn root_objects_created_outside_the_creator_op_are_refused() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "Text");
    let root = moot_doc::creator_change(&actor(&ben), "again").unwrap();
    let denied = refused_with(&mut h.replica, |r| send_change(r, &ben, doc, root, &[doc]));
    assert_eq!(denied, Denied::Doc(DocDenied::RootObject));
    assert_eq!(materialise(&mut h.replica, &doc).text(), "Text");
}

// ---------------------------------------------------------------------------------------------
// The aid board
// ---------------------------------------------------------------------------------------------

#[test]
fn only_the_author_or_a_coordinator_changes_an_offer() {
    let mut h = hall();
    let (ann, ben, dee) = (person(3), person(4), person(5));
    let offer = post(
        &mut h.replica,
        &ann,
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    let edit_by = |r: &mut Replica, who: &Person, change: AidChange| {
        try_write(
            r,
            &who.device,
            Lane::Members,
            Body::AidUpdate(Box::new(AidUpdate {
                item: offer,
                change,
            })),
            &[offer],
        )
    };
    let ben_edit = AidChange::Edit {
        revision: 1,
        details: details("Ben's now"),
    };
    let denied = refused_with(&mut h.replica, |r| edit_by(r, &ben, ben_edit));
    assert_eq!(denied, Denied::NotYourItem);
    let denied = refused_with(&mut h.replica, |r| edit_by(r, &dee, AidChange::Withdraw));
    assert_eq!(denied, Denied::NotYourItem);
    // The steward makes Dee a coordinator: now she may withdraw it.
    h.replica
        .write(&h.fay.device, &grant_body(&dee, Role::Coordinator))
        .unwrap();
    edit_by(&mut h.replica, &dee, AidChange::Withdraw).unwrap();
    assert_eq!(
        h.replica.aid_item(&offer).unwrap().status,
        AidStatus::Withdrawn
    );
}

/// A convener's decision on another's proposal rests on the convener grant: Cy's taken away
/// while his laptop is apart, the decision he writes there afterwards does not count.
#[test]
fn a_decision_by_a_convener_revoked_meanwhile_does_not_count() {
    let ann = person(3);
    let mut h = hall();
    let doc = propose(&mut h, &ann, "Open the hall on Sundays.");
    let mut laptop = hall();
    assert_eq!(propose(&mut laptop, &ann, "Open the hall on Sundays."), doc);
    let revocation = revoke_body(&h.replica, &h.cy, Role::Convener);
    h.replica.write(&h.fay.device, &revocation).unwrap();
    let late = decide(&mut laptop.replica, &laptop.cy, &doc, Outcome::Withdrawn).unwrap();
    assert_eq!(
        laptop.replica.proposal(&doc).unwrap().outcome.map(|d| d.id),
        Some(late)
    );
    sync(&laptop.replica, &mut h.replica);
    assert!(h.replica.holds(&late));
    assert_eq!(h.replica.validity(&late), Some(Err(Denied::BeyondCut)));
    assert_eq!(h.replica.proposal(&doc).unwrap().outcome, None);
    // Ann can still decide, following it: a decision that does not count in her decision's
    // past does not make the proposal decided there.
    let adopted = decide(&mut h.replica, &ann, &doc, Outcome::Adopted).unwrap();
    assert_eq!(
        h.replica.proposal(&doc).unwrap().outcome.map(|d| d.id),
        Some(adopted)
    );
}

/// The same for an amendment's resolution: Cy's, written apart after his convener role was
/// taken away, does not count, and Ann, the proposer, can still resolve the amendment.
#[test]
fn an_amendment_resolved_by_a_convener_revoked_meanwhile_stays_open_to_the_proposer() {
    let (ann, ben) = (person(3), person(4));
    let mut h = hall();
    let doc = propose(&mut h, &ann, "Ask the warden for the key.");
    let amendment = amend(&mut h.replica, &ben, doc, 8, 14);
    let mut laptop = copy_of(&h.replica);
    let revocation = revoke_body(&h.replica, &h.cy, Role::Convener);
    h.replica.write(&h.fay.device, &revocation).unwrap();
    let late = resolve(&mut laptop, &h.cy, amendment, false).unwrap();
    sync(&laptop, &mut h.replica);
    assert_eq!(h.replica.validity(&late), Some(Err(Denied::BeyondCut)));
    let resolution = |r: &mut Replica| r.proposal(&doc).unwrap().amendments[0].resolution;
    assert_eq!(resolution(&mut h.replica), None);
    // Following Cy's (a node that saw it may name it).
    let accepted = write(
        &mut h.replica,
        &ann.device,
        Lane::Members,
        Body::ResolveAmendment(ResolveAmendment {
            amendment,
            accepted: true,
        }),
        &[amendment, late],
    );
    assert_eq!(resolution(&mut h.replica), Some(accepted));
}

/// Whether a decision already in a new one's past counts there is judged from that past alone:
/// a fork of its author's chain under a revocation's cut, which only some nodes hold, does not
/// change it. Otherwise a node holding the other branch would take the new decision (the old
/// one forked under the cut, so not counting) and one without it would refuse it for good, and
/// the two would hold different ops.
#[test]
fn a_decision_already_made_is_judged_the_same_whether_a_fork_of_its_chain_is_held() {
    let ann = person(3);
    let mut h = hall();
    let doc = propose(&mut h, &ann, "Open the hall on Sundays.");
    // Cy's device forks: two stances with one sequence number.
    let stance_body = |reason: &str| {
        Body::Stance(Stance {
            proposal: doc,
            revision: 1,
            stance: StanceKind::Agree,
            reason: reason.into(),
        })
    };
    let first = h
        .replica
        .draft(
            &h.cy.device.public(),
            Lane::Members,
            &stance_body("yes"),
            &[doc],
        )
        .unwrap();
    let other = moot_crypto::Draft {
        body: h
            .replica
            .draft(
                &h.cy.device.public(),
                Lane::Members,
                &stance_body("no"),
                &[doc],
            )
            .unwrap()
            .body,
        ..first.clone()
    };
    let first = first.sign(&h.replica.hub(), &h.cy.device).unwrap();
    let other = other.sign(&h.replica.hub(), &h.cy.device).unwrap();
    h.replica.insert_authentic(first.clone());
    // Cy decides on the branch of the first; Fay revokes his role, her cut taking the decision.
    let decided = decide(&mut h.replica, &h.cy, &doc, Outcome::Withdrawn).unwrap();
    let revocation = revoke_body(&h.replica, &h.cy, Role::Convener);
    h.replica.write(&h.fay.device, &revocation).unwrap();
    let mut with_fork = copy_of(&h.replica);
    with_fork.insert_authentic(other.clone());
    assert_eq!(with_fork.equivocations().len(), 1);
    // Globally, the fork under the cut voids the decision where the fork is known.
    assert_eq!(
        with_fork.validity(&decided),
        Some(Err(Denied::ForkedUnderCut))
    );
    // Ann's decision following both: judged alike on both nodes.
    let outcomes: Vec<Result<OpId, Reason>> = [&mut h.replica, &mut with_fork]
        .into_iter()
        .map(|r| decide(r, &ann, &doc, Outcome::Adopted))
        .collect();
    assert_eq!(
        outcomes[0].as_ref().map(drop).map_err(Clone::clone),
        outcomes[1].as_ref().map(drop).map_err(Clone::clone),
        "{outcomes:?}"
    );
}

/// An objection a removed member wrote apart, beyond the removal's cut, counts for nothing, and
/// blocks no consensus: Ann can adopt her proposal following it. One the steward had seen when
/// removing still stands, and still blocks.
#[test]
fn an_objection_beyond_a_removal_cut_blocks_no_consensus() {
    let (ann, dee) = (person(3), person(5));
    for seen in [false, true] {
        let mut h = hall();
        let doc = propose(&mut h, &ann, "Open the hall on Sundays.");
        let mut laptop = copy_of(&h.replica);
        let objection = stance(&mut laptop, &dee, &doc, 1, StanceKind::Object);
        if seen {
            sync(&laptop, &mut h.replica);
        }
        h.replica
            .write(&h.fay.device, &remove_body(&h.replica, &dee))
            .unwrap();
        sync(&laptop, &mut h.replica);
        let adopted = decide(&mut h.replica, &ann, &doc, Outcome::Adopted);
        if seen {
            assert_eq!(h.replica.validity(&objection), Some(Ok(())));
            assert_eq!(denied(adopted), Denied::UnresolvedObjection);
        } else {
            assert_eq!(h.replica.validity(&objection), Some(Err(Denied::BeyondCut)));
            let adopted = adopted.unwrap();
            assert_eq!(
                h.replica.proposal(&doc).unwrap().outcome.map(|d| d.id),
                Some(adopted)
            );
        }
    }
}

/// Ann's offer on a hall where Dee is made a coordinator by `granter` (a steward).
/// Deterministic, as `hall` is: two made alike hold the same ops.
fn offer_with_dee_coordinating(granter: &Person, sam_steward: bool) -> (Hall, OpId, OpId) {
    let mut h = hall();
    let (ann, dee, sam) = (person(3), person(5), person(7));
    if sam_steward {
        join(&mut h.replica, &h.fay, &sam, moot_state::Standing::Member);
        h.replica
            .write(&h.fay.device, &grant_body(&sam, Role::Steward))
            .unwrap();
    }
    let offer = post(
        &mut h.replica,
        &ann,
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    let grant = h
        .replica
        .write(&granter.device, &grant_body(&dee, Role::Coordinator))
        .unwrap();
    (h, offer, grant)
}

fn withdraw_as(replica: &mut Replica, who: &Person, offer: OpId) -> OpId {
    try_write(
        replica,
        &who.device,
        Lane::Members,
        Body::AidUpdate(Box::new(AidUpdate {
            item: offer,
            change: AidChange::Withdraw,
        })),
        &[offer],
    )
    .unwrap()
}

/// A coordinator's change to another's offer rests on the coordinator grant, and the validity
/// rule holds it to that grant, as it holds an open to a convener's: taken away while her
/// laptop is apart, the withdrawal she writes there afterwards does not count; nor does one
/// resting on a grant by a steward removed, with a cut before the grant, meanwhile.
#[test]
fn a_coordinators_change_counts_only_while_the_grant_it_rests_on_does() {
    let dee = person(5);
    // The role revoked: Fay's cut is what she held of Dee's ops, so the later withdrawal is
    // beyond it.
    let (mut h, offer, _) = offer_with_dee_coordinating(&person(1), false);
    let (mut laptop, _, _) = offer_with_dee_coordinating(&person(1), false);
    let revocation = revoke_body(&h.replica, &dee, Role::Coordinator);
    h.replica.write(&h.fay.device, &revocation).unwrap();
    let late = withdraw_as(&mut laptop.replica, &dee, offer);
    sync(&laptop.replica, &mut h.replica);
    assert!(h.replica.holds(&late));
    assert_eq!(h.replica.validity(&late), Some(Err(Denied::BeyondCut)));
    assert_eq!(h.replica.aid_item(&offer).unwrap().status, AidStatus::Open);

    // The granting steward removed concurrently, the removal's cut before the grant.
    let sam = person(7);
    let (mut h, offer, grant) = offer_with_dee_coordinating(&sam, true);
    let mut before_grant = hall();
    join(
        &mut before_grant.replica,
        &before_grant.fay,
        &sam,
        moot_state::Standing::Member,
    );
    before_grant
        .replica
        .write(&before_grant.fay.device, &grant_body(&sam, Role::Steward))
        .unwrap();
    post(
        &mut before_grant.replica,
        &person(3),
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    before_grant
        .replica
        .write(
            &before_grant.fay.device,
            &remove_body(&before_grant.replica, &sam),
        )
        .unwrap();
    let withdrawal = withdraw_as(&mut h.replica, &dee, offer);
    assert_eq!(
        h.replica.aid_item(&offer).unwrap().status,
        AidStatus::Withdrawn
    );
    sync(&before_grant.replica, &mut h.replica);
    assert!(h.replica.validity(&grant).unwrap().is_err());
    assert_eq!(
        h.replica.validity(&withdrawal),
        Some(Err(Denied::UnacceptedFact(grant)))
    );
    assert_eq!(h.replica.aid_item(&offer).unwrap().status, AidStatus::Open);
}

#[test]
fn only_the_pledger_withdraws_a_pledge_and_only_the_author_reads_its_contact() {
    let mut h = hall();
    let (ann, ben, dee) = (person(3), person(4), person(5));
    let offer = post(
        &mut h.replica,
        &ann,
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    let pledged = pledge(&mut h.replica, &ben, &ann, offer);
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &dee.device,
            Lane::Members,
            Body::AidUnpledge(AidUnpledge { pledge: pledged }),
            &[pledged],
        )
    });
    assert_eq!(denied, Denied::NotYourPledge);
    // The sealed contact as the replica shows it opens for Ann only.
    let item = h.replica.aid_item(&offer).unwrap();
    let sealed = &item.pledges[0].contact;
    let context = moot_aid::contact_context(&h.replica.hub().0, &offer.0);
    assert_eq!(
        moot_aid::open(&ann.member, &context, sealed).unwrap(),
        b"pledger@example.org"
    );
    assert!(moot_aid::open(&dee.member, &context, sealed).is_err());
    assert!(moot_aid::open(&ben.member, &context, sealed).is_err());
    // Nor under another item's context.
    let other = moot_aid::contact_context(&h.replica.hub().0, &pledged.0);
    assert!(moot_aid::open(&ann.member, &other, sealed).is_err());
    // Ben withdraws his own.
    write(
        &mut h.replica,
        &ben.device,
        Lane::Members,
        Body::AidUnpledge(AidUnpledge { pledge: pledged }),
        &[pledged],
    );
    assert_eq!(h.replica.aid_item(&offer).unwrap().status, AidStatus::Open);
}

#[test]
fn ops_about_an_item_go_in_its_lane() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    // A public request: members-lane ops about it are in the wrong lane.
    let request = post(
        &mut h.replica,
        &ann,
        Lane::Public,
        AidKind::Request,
        "A lift",
    );
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ann.device,
            Lane::Members,
            Body::AidUpdate(Box::new(AidUpdate {
                item: request,
                change: AidChange::Withdraw,
            })),
            &[request],
        )
    });
    assert_eq!(denied, Denied::ItemLane);
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ben.device,
            Lane::Members,
            Body::AidPledge(AidPledge {
                item: request,
                quantity: None,
                note: "quietly".into(),
                contact: Vec::new(),
            }),
            &[request],
        )
    });
    assert_eq!(denied, Denied::ItemLane);
    // A public op about a members-lane offer cannot even name it: the lane rule refuses it
    // first.
    let offer = post(
        &mut h.replica,
        &ann,
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    let reason = refused(&mut h.replica, |r| {
        try_write(
            r,
            &ann.device,
            Lane::Public,
            Body::AidUpdate(Box::new(AidUpdate {
                item: offer,
                change: AidChange::Withdraw,
            })),
            &[offer],
        )
    });
    assert_eq!(reason, Reason::LaneDependency(offer));
}

// ---------------------------------------------------------------------------------------------
// Guests, authority and one-shot decisions
// ---------------------------------------------------------------------------------------------

#[test]
fn a_guest_may_not_propose_comment_take_a_stance_or_post_an_item() {
    let mut h = hall();
    let ann = person(3);
    let gus = person(6);
    let doc = propose(&mut h, &ann, "Text");
    let creator = moot_doc::creator_change(&actor(&gus), "Guest text").unwrap();
    let attempts: Vec<(Lane, Body, Vec<OpId>)> = vec![
        (
            Lane::Members,
            Body::CreateProposal(CreateProposal {
                assembly: AssemblyRef::Policy,
                title: "Mine".into(),
                change: creator,
            }),
            vec![],
        ),
        (
            Lane::Members,
            Body::Comment(Comment {
                proposal: doc,
                parent: None,
                text: "Hello".into(),
            }),
            vec![doc],
        ),
        (
            Lane::Members,
            Body::Stance(Stance {
                proposal: doc,
                revision: 1,
                stance: StanceKind::Block,
                reason: "No".into(),
            }),
            vec![doc],
        ),
        (
            Lane::Public,
            Body::AidItem(Box::new(AidItem {
                kind: AidKind::Request,
                details: details("A lift"),
                forwarded: None,
            })),
            vec![],
        ),
    ];
    for (lane, body, refs) in attempts {
        let denied = refused_with(&mut h.replica, |r| {
            try_write(r, &gus.device, lane, body.clone(), &refs)
        });
        assert_eq!(denied, Denied::GuestNotAllowed, "{body:?}");
    }
}

#[test]
fn only_the_proposer_or_a_convener_decides_and_only_once() {
    let mut h = hall();
    let (ann, ben, cy) = (person(3), person(4), person(2));
    let doc = propose(&mut h, &ann, "Text");
    let denied = refused_with(&mut h.replica, |r| decide(r, &ben, &doc, Outcome::Adopted));
    assert_eq!(denied, Denied::NotProposerOrConvener);
    // Cy convenes: he may decide.
    let decision = decide(&mut h.replica, &cy, &doc, Outcome::Withdrawn).unwrap();
    // A second decision with the first in its past, by either.
    for who in [&ann, &cy] {
        let denied = refused_with(&mut h.replica, |r| decide(r, who, &doc, Outcome::Adopted));
        assert_eq!(denied, Denied::AlreadyDecided);
    }
    let info = h.replica.proposal(&doc).unwrap();
    assert_eq!(info.outcome.unwrap().id, decision);
}

#[test]
fn a_proposal_sent_to_a_vote_names_a_poll_of_its_own_assembly() {
    let mut h = hall();
    let (ann, cy) = (person(3), person(2));
    let doc = propose(&mut h, &ann, "Text");
    // A poll of a working group, not of the policy assembly.
    let group = write(
        &mut h.replica,
        &cy.device,
        Lane::Members,
        Body::CreateAssembly(CreateAssembly {
            name: "Transport".into(),
            kind: AssemblyKind::WorkingGroup,
        }),
        &[],
    );
    let poll = write(
        &mut h.replica,
        &cy.device,
        Lane::Members,
        Body::CreatePoll(Box::new(CreatePoll {
            assembly: AssemblyRef::Created(group),
            question: "Which campaign first?".into(),
            options: vec!["Buses".into(), "Bikes".into()],
            seats: 1,
            officers: vec![h.fay.member.public()],
            stations: vec![],
            quorum: None,
            opens_at: None,
            closes_at: None,
        })),
        &[group],
    );
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ann.device,
            Lane::Members,
            Body::Decide(moot_state::body::Decide {
                proposal: doc,
                outcome: Outcome::SentToVote { poll },
            }),
            &[doc, poll],
        )
    });
    assert_eq!(denied, Denied::WrongPoll);
    // Naming an op that is no poll at all.
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ann.device,
            Lane::Members,
            Body::Decide(moot_state::body::Decide {
                proposal: doc,
                outcome: Outcome::SentToVote { poll: group },
            }),
            &[doc, group],
        )
    });
    assert_eq!(denied, Denied::WrongPoll);
}

#[test]
fn an_amendment_is_resolved_once_by_the_proposer_or_a_convener() {
    let mut h = hall();
    let (ann, ben, dee) = (person(3), person(4), person(5));
    let doc = propose(&mut h, &ann, "Ask the warden for the key.");
    let amendment = amend(&mut h.replica, &ben, doc, 8, 14);
    let denied = refused_with(&mut h.replica, |r| resolve(r, &dee, amendment, true));
    assert_eq!(denied, Denied::NotProposerOrConvener);
    let first = resolve(&mut h.replica, &ann, amendment, true).unwrap();
    // Ann again (her first resolution is her previous op), and Cy naming it.
    let denied = refused_with(&mut h.replica, |r| resolve(r, &ann, amendment, false));
    assert_eq!(denied, Denied::AlreadyResolved);
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &h.cy.device,
            Lane::Members,
            Body::ResolveAmendment(ResolveAmendment {
                amendment,
                accepted: false,
            }),
            &[amendment, first],
        )
    });
    assert_eq!(denied, Denied::AlreadyResolved);
    let info = h.replica.proposal(&doc).unwrap();
    assert_eq!(info.amendments[0].status, AmendmentStatus::Accepted);
    assert_eq!(info.amendments[0].original, "warden");
}

#[test]
fn a_reply_names_a_comment_of_the_same_proposal() {
    let mut h = hall();
    let (ann, ben) = (person(3), person(4));
    let doc = propose(&mut h, &ann, "One");
    let other = propose(&mut h, &ann, "Two");
    let elsewhere = comment(&mut h.replica, &ben, other, None);
    let denied = refused_with(&mut h.replica, |r| {
        try_comment(r, &ann, Lane::Members, doc, Some(elsewhere))
    });
    assert_eq!(denied, Denied::NoSuchComment);
    // A reply to a comment it does not name.
    let here = comment(&mut h.replica, &ben, doc, None);
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ann.device,
            Lane::Members,
            Body::Comment(Comment {
                proposal: doc,
                parent: Some(here),
                text: "Unnamed".into(),
            }),
            &[doc],
        )
    });
    assert_eq!(denied, Denied::NoSuchComment);
}

#[test]
fn ops_about_a_proposal_go_in_its_assemblys_lane() {
    let mut h = hall();
    let (ben, cy) = (person(4), person(2));
    // A public working group and a proposal in it (its lane: public).
    let group = write(
        &mut h.replica,
        &cy.device,
        Lane::Public,
        Body::CreateAssembly(CreateAssembly {
            name: "Open meetings".into(),
            kind: AssemblyKind::WorkingGroup,
        }),
        &[],
    );
    let creator = moot_doc::creator_change(&actor(&cy), "In the open").unwrap();
    let doc = write(
        &mut h.replica,
        &cy.device,
        Lane::Public,
        Body::CreateProposal(CreateProposal {
            assembly: AssemblyRef::Created(group),
            title: "Meet in the park".into(),
            change: creator,
        }),
        &[group],
    );
    // Members-lane ops about it are in the wrong lane.
    let denied = refused_with(&mut h.replica, |r| {
        try_comment(r, &ben, Lane::Members, doc, None)
    });
    assert_eq!(denied, Denied::AssemblyLane);
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ben.device,
            Lane::Members,
            Body::Stance(Stance {
                proposal: doc,
                revision: 1,
                stance: StanceKind::Agree,
                reason: String::new(),
            }),
            &[doc],
        )
    });
    assert_eq!(denied, Denied::AssemblyLane);
    // A proposal of the public group written in the members lane.
    let creator = moot_doc::creator_change(&actor(&ben), "Hidden").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ben.device,
            Lane::Members,
            Body::CreateProposal(CreateProposal {
                assembly: AssemblyRef::Created(group),
                title: "Behind doors".into(),
                change: creator,
            }),
            &[group],
        )
    });
    assert_eq!(denied, Denied::AssemblyLane);
    // A policy proposal in the public lane.
    let creator = moot_doc::creator_change(&actor(&ben), "Public").unwrap();
    let denied = refused_with(&mut h.replica, |r| {
        try_write(
            r,
            &ben.device,
            Lane::Public,
            Body::CreateProposal(CreateProposal {
                assembly: AssemblyRef::Policy,
                title: "Out loud".into(),
                change: creator,
            }),
            &[],
        )
    });
    assert_eq!(denied, Denied::AssemblyLane);
    // A public comment on a members-lane proposal cannot name it: the lane rule refuses it.
    let members_doc = propose(&mut h, &person(3), "Text");
    let reason = refused(&mut h.replica, |r| {
        try_comment(r, &ben, Lane::Public, members_doc, None)
    });
    assert_eq!(reason, Reason::LaneDependency(members_doc));
}

// ---------------------------------------------------------------------------------------------
// Convergence
// ---------------------------------------------------------------------------------------------

/// A whole history, written once: its ops, and what the source replica shows.
struct History {
    hub: moot_crypto::HubId,
    ops: Vec<Vec<u8>>,
    doc: OpId,
    text: Vec<u8>,
    proposal: ProposalInfo,
    board: Vec<ItemInfo>,
}

fn busy_history() -> History {
    let mut h = hall();
    let (ann, ben, cy, dee) = (person(3), person(4), person(2), person(5));
    let doc = propose(&mut h, &ann, "Open the hall.");
    // Three members edit concurrently, each on their own replica.
    let mut bens = copy_of(&h.replica);
    let mut dees = copy_of(&h.replica);
    edit(&mut bens, &ben, &doc, 0, "Please: ");
    edit(&mut dees, &dee, &doc, 14, " On Sundays.");
    // Concurrent comments, too.
    comment(&mut bens, &ben, doc, None);
    comment(&mut dees, &dee, doc, None);
    edit(&mut h.replica, &cy, &doc, 4, " up");
    sync(&bens, &mut h.replica);
    sync(&dees, &mut h.replica);
    // Ben again, after seeing everything.
    sync(&h.replica, &mut bens);
    edit(&mut bens, &ben, &doc, 0, "> ");
    sync(&bens, &mut h.replica);
    // Comments, stances.
    let question = comment(&mut h.replica, &dee, doc, None);
    comment(&mut h.replica, &ann, doc, Some(question));
    stance(&mut h.replica, &dee, &doc, 1, StanceKind::Block);
    stance(&mut h.replica, &ben, &doc, 1, StanceKind::Concerns);
    // An amendment, accepted and applied by the proposer.
    let amendment = amend(&mut h.replica, &ben, doc, 2, 8);
    resolve(&mut h.replica, &ann, amendment, true).unwrap();
    edit(&mut h.replica, &ann, &doc, 2, "Kindly ");
    stance(&mut h.replica, &dee, &doc, 2, StanceKind::Agree);
    decide(&mut h.replica, &ann, &doc, Outcome::Adopted).unwrap();
    // The aid board: an offer and a request, a pledge, a contact, a fulfilment, a gift passed on.
    let offer = post(
        &mut h.replica,
        &ann,
        Lane::Members,
        AidKind::Offer,
        "A drill",
    );
    post(
        &mut h.replica,
        &dee,
        Lane::Public,
        AidKind::Request,
        "A lift",
    );
    let pledged = pledge(&mut h.replica, &ben, &ann, offer);
    let reply = moot_aid::seal(
        &ben.member.public(),
        &moot_aid::contact_context(&h.replica.hub().0, &pledged.0),
        b"ann@example.org",
        [3; 32],
    )
    .unwrap();
    write(
        &mut h.replica,
        &ann.device,
        Lane::Members,
        Body::AidContact(AidContact {
            pledge: pledged,
            contact: reply,
        }),
        &[pledged],
    );
    let fulfilment = write(
        &mut h.replica,
        &ann.device,
        Lane::Members,
        Body::AidUpdate(Box::new(AidUpdate {
            item: offer,
            change: AidChange::Fulfil { pledge: pledged },
        })),
        &[offer, pledged],
    );
    write(
        &mut h.replica,
        &ben.device,
        Lane::Members,
        Body::AidItem(Box::new(AidItem {
            kind: AidKind::Offer,
            details: details("The drill, passed on"),
            forwarded: Some(Forwarded {
                item: offer,
                fulfilment,
            }),
        })),
        &[offer, fulfilment],
    );
    let proposal = h.replica.proposal(&doc).unwrap();
    assert_eq!(proposal.comments.len(), 4);
    assert_eq!(proposal.amendments[0].status, AmendmentStatus::Accepted);
    assert!(proposal.outcome.is_some());
    assert_eq!(proposal.changes.len(), 6);
    let board = h.replica.aid_items();
    assert_eq!(board.len(), 3);
    let text = materialise(&mut h.replica, &doc).text().into_bytes();
    let ops = h
        .replica
        .op_ids()
        .iter()
        .map(|id| h.replica.op_bytes(id).unwrap().to_vec())
        .collect();
    History {
        hub: h.replica.hub(),
        ops,
        doc,
        text,
        proposal,
        board,
    }
}

fn history() -> &'static History {
    static HISTORY: std::sync::OnceLock<History> = std::sync::OnceLock::new();
    HISTORY.get_or_init(busy_history)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn replicas_receiving_the_ops_in_any_order_show_the_same_document_proposal_and_board(
        seed in any::<u64>(),
    ) {
        let history = history();
        let hub = history.hub;
        let mut ops = history.ops.clone();
        // A deterministic shuffle from the seed.
        let mut state = seed | 1;
        for i in (1..ops.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ops.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut replica = Replica::new(hub, Limits::default());
        loop {
            let before = replica.len();
            for op in &ops {
                replica.insert(op);
            }
            if replica.len() == before {
                break;
            }
        }
        prop_assert_eq!(replica.len(), history.ops.len());
        prop_assert_eq!(
            materialise(&mut replica, &history.doc).text().into_bytes(),
            history.text.clone()
        );
        prop_assert_eq!(replica.proposal(&history.doc).unwrap(), history.proposal.clone());
        prop_assert_eq!(replica.aid_items(), history.board.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// The body decoder against hostile bytes
// ---------------------------------------------------------------------------------------------

const KINDS: [u16; 12] = [
    0x0201, 0x0202, 0x0203, 0x0204, 0x0205, 0x0206, 0x0207, 0x0401, 0x0402, 0x0403, 0x0404, 0x0405,
];

/// Decodes, and if that succeeds the body must encode and decode back to itself.
fn decode_and_judge(kind: u16, bytes: &[u8]) -> Result<(), BodyError> {
    let body = Body::decode(kind, bytes)?;
    let (k, again) = body.encode().unwrap();
    assert_eq!(k, kind);
    assert_eq!(Body::decode(k, &again).unwrap(), body);
    Ok(())
}

#[test]
fn every_single_byte_mutation_and_truncation_of_real_change_bodies_is_ok_or_typed() {
    let ann = person(3);
    let ben = person(4);
    let creator = moot_doc::creator_change(&actor(&ann), "Open the hall on Sundays.").unwrap();
    let mut document = moot_doc::Document::from_creator(&creator).unwrap();
    let change = document.edit(&actor(&ben), 5, 0, "main ").unwrap();
    let bodies = [
        Body::CreateProposal(CreateProposal {
            assembly: AssemblyRef::Policy,
            title: "Sundays".into(),
            change: creator,
        }),
        Body::DocChange(DocChange {
            doc: OpId([7; 32]),
            change,
        }),
    ];
    let mut outcomes = std::collections::BTreeMap::<String, usize>::new();
    for body in bodies {
        let (kind, bytes) = body.encode().unwrap();
        assert_eq!(Body::decode(kind, &bytes).unwrap(), body);
        let mut judge = |m: &[u8]| {
            let key = match decode_and_judge(kind, m) {
                Ok(()) => "ok".to_string(),
                Err(e) => format!("{e:?}")
                    .split([' ', '(', '{'])
                    .next()
                    .unwrap()
                    .to_string(),
            };
            *outcomes.entry(key).or_default() += 1;
        };
        for len in 0..bytes.len() {
            judge(&bytes[..len]);
        }
        for i in 0..bytes.len() {
            for v in [
                0x00,
                0x01,
                0x7f,
                0x80,
                0xff,
                bytes[i] ^ 0x01,
                bytes[i] ^ 0x40,
            ] {
                let mut m = bytes.clone();
                m[i] = v;
                judge(&m);
            }
        }
    }
    // The mutations reach the change pre-scan, not only the outer decoder.
    assert!(outcomes.contains_key("Change"), "{outcomes:?}");
    assert!(outcomes.contains_key("Decode"), "{outcomes:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn random_bytes_through_every_deliberation_and_aid_decoder_never_panic(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        k in 0usize..KINDS.len(),
    ) {
        let _ = decode_and_judge(KINDS[k], &bytes);
    }
}
