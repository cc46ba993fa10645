//! Proposals and the aid board in the replica: a deliberation from draft to consensus, and the
//! rules each refusing its attack with a typed reason.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::deliberation::*;
use common::polls::*;
use common::*;
use moot_crypto::Lane;
use moot_state::aid::AidStatus;
use moot_state::body::{
    AidChange, AidItem, AidKind, AidPledge, AidUnpledge, AidUpdate, Comment, DocChange, Outcome,
    StanceKind,
};
use moot_state::{Body, Denied, DocDenied, Replica};

#[test]
fn a_deliberation_from_draft_to_consensus() {
    let mut hall = hall();
    let doc = propose(&mut hall, &person(3), "Open the hall.");
    // Ben and Dee edit concurrently on their own replicas, then sync.
    let mut bens = Replica::new(hall.replica.hub(), moot_state::Limits::default());
    sync(&hall.replica, &mut bens);
    let mut dees = Replica::new(hall.replica.hub(), moot_state::Limits::default());
    sync(&hall.replica, &mut dees);
    let ben = person(4);
    let dee = person(5);
    edit(&mut bens, &ben, &doc, 0, "Please: ");
    edit(&mut dees, &dee, &doc, 14, " On Sundays.");
    sync(&bens, &mut hall.replica);
    sync(&dees, &mut hall.replica);
    let text = materialise(&mut hall.replica, &doc).text();
    assert_eq!(text, "Please: Open the hall. On Sundays.");
    // Ben edits again, naming his previous change: seq 2.
    sync(&hall.replica, &mut bens);
    edit(&mut bens, &ben, &doc, 0, "> ");
    sync(&bens, &mut hall.replica);

    // A comment and a reply.
    let comment = write(
        &mut hall.replica,
        &hall.dee.device,
        Lane::Members,
        Body::Comment(Comment {
            proposal: doc,
            parent: None,
            text: "Who holds the key?".into(),
        }),
        &[doc],
    );
    write(
        &mut hall.replica,
        &hall.ann.device,
        Lane::Members,
        Body::Comment(Comment {
            proposal: doc,
            parent: Some(comment),
            text: "The caretaker.".into(),
        }),
        &[doc, comment],
    );

    // A block stops consensus; once Dee agrees, Ann adopts it.
    let dee_p = person(5);
    stance(&mut hall.replica, &dee_p, &doc, 1, StanceKind::Block);
    let ann = person(3);
    assert_eq!(
        denied(decide(&mut hall.replica, &ann, &doc, Outcome::Adopted)),
        Denied::UnresolvedObjection
    );
    stance(&mut hall.replica, &dee_p, &doc, 2, StanceKind::Agree);
    // Ben (not proposer, not convener) may not decide.
    assert_eq!(
        denied(decide(&mut hall.replica, &ben, &doc, Outcome::Adopted)),
        Denied::NotProposerOrConvener
    );
    let decision = decide(&mut hall.replica, &ann, &doc, Outcome::Adopted).unwrap();
    assert_eq!(
        denied(decide(&mut hall.replica, &ann, &doc, Outcome::Withdrawn)),
        Denied::AlreadyDecided
    );
    let info = hall.replica.proposal(&doc).unwrap();
    assert_eq!(info.comments.len(), 2);
    assert_eq!(info.comments[1].parent, Some(comment));
    assert_eq!(info.stances.len(), 1);
    assert_eq!(info.stances[0].stance, StanceKind::Agree);
    assert_eq!(info.outcome.unwrap().id, decision);
    assert_eq!(
        materialise(&mut hall.replica, &doc).text(),
        "> Please: Open the hall. On Sundays."
    );
}

#[test]
fn document_changes_that_break_the_rules_are_refused() {
    let mut hall = hall();
    let ann = person(3);
    let ben = person(4);
    let doc = propose(&mut hall, &ann, "Text");
    let mut document = materialise(&mut hall.replica, &doc);
    // A change whose actor is Ann's device, written by Ben: a forged actor.
    let forged = document
        .clone()
        .edit(&ann.device.public().to_bytes(), 0, 0, "x")
        .unwrap();
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        Body::DocChange(DocChange {
            doc,
            change: forged,
        }),
        &[doc],
    );
    assert_eq!(denied(result), Denied::Doc(DocDenied::ForgedActor));
    // Ben's change depends on the creator change, which the op names; a change whose
    // dependency is not named is refused (here: the op names only the proposal of another
    // document... we drop the doc's creator from refs by naming nothing but a comment).
    let change = document
        .edit(&ben.device.public().to_bytes(), 0, 0, "y")
        .unwrap();
    let other = propose(&mut hall, &ann, "O");
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        Body::DocChange(DocChange {
            doc: other,
            change: change.clone(),
        }),
        &[other],
    );
    assert!(matches!(
        denied(result),
        Denied::Doc(DocDenied::UnnamedDependency(_))
    ));
    // The proposal must be named in the deps.
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        Body::DocChange(DocChange { doc, change }),
        &[],
    );
    assert_eq!(denied(result), Denied::NoSuchProposal);
    // A second creator-style change touching the root.
    let root = moot_doc::creator_change(&ben.device.public().to_bytes(), "again").unwrap();
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        Body::DocChange(DocChange { doc, change: root }),
        &[doc],
    );
    assert_eq!(denied(result), Denied::Doc(DocDenied::RootObject));
    assert_eq!(materialise(&mut hall.replica, &doc).text(), "Text");
}

#[test]
fn the_aid_board_rules() {
    let mut hall = hall();
    let (ann, ben, dee) = (person(3), person(4), person(5));
    let offer = write(
        &mut hall.replica,
        &ann.device,
        Lane::Members,
        Body::AidItem(Box::new(AidItem {
            kind: AidKind::Offer,
            details: details("A drill"),
            forwarded: None,
        })),
        &[],
    );
    // Ben may not edit Ann's offer.
    let edit = Body::AidUpdate(Box::new(AidUpdate {
        item: offer,
        change: AidChange::Edit {
            revision: 1,
            details: details("Ben's now"),
        },
    }));
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        edit,
        &[offer],
    );
    assert_eq!(denied(result), Denied::NotYourItem);
    // Ann may not pledge to her own offer; Ben pledges, with his contact sealed to Ann.
    let sealed = moot_aid::seal(
        &ann.member.public(),
        &moot_aid::contact_context(&hall.replica.hub().0, &offer.0),
        b"ben@example.org",
        [9; 32],
    )
    .unwrap();
    let pledge_body = |contact: Vec<u8>| {
        Body::AidPledge(AidPledge {
            item: offer,
            quantity: None,
            note: "Saturday?".into(),
            contact,
        })
    };
    let result = try_write(
        &mut hall.replica,
        &ann.device,
        Lane::Members,
        pledge_body(Vec::new()),
        &[offer],
    );
    assert_eq!(denied(result), Denied::OwnItem);
    let result = try_write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        pledge_body(vec![7; 20]),
        &[offer],
    );
    assert!(matches!(denied(result), Denied::BadContact(_)));
    let pledge = write(
        &mut hall.replica,
        &ben.device,
        Lane::Members,
        pledge_body(sealed.clone()),
        &[offer],
    );
    assert_eq!(
        hall.replica.aid_item(&offer).unwrap().status,
        AidStatus::Pledged
    );
    // Only Ann reads it; Dee cannot.
    let context = moot_aid::contact_context(&hall.replica.hub().0, &offer.0);
    assert_eq!(
        moot_aid::open(&ann.member, &context, &sealed).unwrap(),
        b"ben@example.org"
    );
    assert!(moot_aid::open(&dee.member, &context, &sealed).is_err());
    // Dee may not withdraw Ben's pledge.
    let result = try_write(
        &mut hall.replica,
        &dee.device,
        Lane::Members,
        Body::AidUnpledge(AidUnpledge { pledge }),
        &[pledge],
    );
    assert_eq!(denied(result), Denied::NotYourPledge);
    // Ann fulfils it; Ben passes the drill on; Dee cannot.
    let fulfilment = write(
        &mut hall.replica,
        &ann.device,
        Lane::Members,
        Body::AidUpdate(Box::new(AidUpdate {
            item: offer,
            change: AidChange::Fulfil { pledge },
        })),
        &[offer, pledge],
    );
    let forward = |replica: &mut Replica, who: &Person| {
        try_write(
            replica,
            &who.device,
            Lane::Members,
            Body::AidItem(Box::new(AidItem {
                kind: AidKind::Offer,
                details: details("The drill, passed on"),
                forwarded: Some(moot_state::body::Forwarded {
                    item: offer,
                    fulfilment,
                }),
            })),
            &[offer, fulfilment],
        )
    };
    assert_eq!(
        denied(forward(&mut hall.replica, &dee)),
        Denied::NotRecipient
    );
    let passed = forward(&mut hall.replica, &ben).unwrap();
    let board = hall.replica.aid_item(&offer).unwrap();
    assert_eq!(board.status, AidStatus::Fulfilled);
    assert_eq!(board.forwarded_to, vec![passed]);
    assert_eq!(
        hall.replica.aid_item(&passed).unwrap().forwarded_from,
        Some(offer)
    );
}

#[test]
fn a_comment_a_removed_member_wrote_apart_is_left_out_and_said_so() {
    let mut hall = hall();
    let doc = propose(&mut hall, &person(3), "Open the hall.");
    // Dee's copy of the hub, before the steward removes her.
    let mut dees = Replica::new(hall.replica.hub(), moot_state::Limits::default());
    sync(&hall.replica, &mut dees);
    hall.replica
        .write(&hall.fay.device, &remove_body(&hall.replica, &hall.dee))
        .unwrap();
    let comment = write(
        &mut dees,
        &hall.dee.device,
        Lane::Members,
        Body::Comment(Comment {
            proposal: doc,
            parent: None,
            text: "Written after my removal.".into(),
        }),
        &[doc],
    );
    sync(&dees, &mut hall.replica);
    assert!(hall.replica.holds(&comment));
    let shown = hall.replica.proposal(&doc).unwrap();
    assert!(shown.comments.iter().all(|c| c.id != comment));
    assert!(
        shown
            .flags
            .iter()
            .any(|f| f.starts_with(&format!("comment {comment} not shown: "))),
        "{:?}",
        shown.flags
    );
}
