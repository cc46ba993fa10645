//! Proposals and the mutual-aid board through the binary, on one node: a deliberation from
//! draft to consensus (concurrent edits, an amendment accepted, comments, a block that stops
//! consensus until withdrawn), a proposal sent to a vote, and an aid exchange whose contacts
//! only the matched members read.

use serde_json::Value;

use crate::node::Data;

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

fn member(data: &Data, name: &str) -> String {
    let id = field(&data.ok(&["key", "new", "--name", name]), "member_id");
    data.ok(&["member", "add", &id, "--name", name]);
    id
}

fn hall() -> (Data, String, String) {
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    data.ok(&["hub", "create", "Riverside"]);
    let ann = member(&data, "Ann");
    let ben = member(&data, "Ben");
    (data, ann, ben)
}

fn refused_kind(data: &Data, args: &[&str]) -> String {
    let (code, out, stderr) = data.run(args);
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    let error: Value = serde_json::from_str(stderr.trim_end()).unwrap();
    field(&error["error"], "kind")
}

#[test]
fn a_deliberation_reaches_consensus_and_another_goes_to_a_vote() {
    let (data, ann, ben) = hall();
    let p = field(
        &data.ok(&[
            "--as",
            &ann,
            "proposal",
            "create",
            "--assembly",
            "policy",
            "--title",
            "Sunday opening",
            "--body",
            "Open the hall on Sundays.",
        ]),
        "proposal_id",
    );
    data.ok(&[
        "--as", &ben, "proposal", "edit", &p, "--at", "0", "--insert", "Please: ",
    ]);
    data.ok(&[
        "--as",
        &ann,
        "proposal",
        "edit",
        &p,
        "--at",
        "33",
        "--insert",
        " From 10am.",
    ]);
    let a = field(
        &data.ok(&[
            "--as",
            &ben,
            "proposal",
            "amend",
            &p,
            "--replace",
            "Sundays",
            "--with",
            "Sundays and Mondays",
        ]),
        "amendment_id",
    );
    let c = field(
        &data.ok(&[
            "--as",
            &ben,
            "proposal",
            "comment",
            &p,
            "--text",
            "Who holds the key?",
        ]),
        "comment_id",
    );
    data.ok(&[
        "--as",
        &ann,
        "proposal",
        "comment",
        &p,
        "--text",
        "The caretaker",
        "--reply-to",
        &c,
    ]);
    data.ok(&[
        "--as", &ben, "proposal", "stance", &p, "block", "--reason", "staffing",
    ]);
    // A block stands: consensus is refused, and nothing is written.
    let before = data.ok(&["proposal", "show", &p]);
    assert_eq!(
        refused_kind(&data, &["--as", &ann, "proposal", "decide", &p, "adopt"]),
        "refused"
    );
    assert_eq!(data.ok(&["proposal", "show", &p]), before);
    // Ben may not accept an amendment (neither proposer nor convener).
    assert_eq!(
        refused_kind(&data, &["--as", &ben, "proposal", "amend", &a, "--accept"]),
        "refused"
    );
    data.ok(&["--as", &ann, "proposal", "amend", &a, "--accept"]);
    data.ok(&["--as", &ben, "proposal", "stance", &p, "agree"]);
    data.ok(&["--as", &ann, "proposal", "decide", &p, "adopt"]);
    let shown = data.ok(&["proposal", "show", &p]);
    assert_eq!(
        shown["text"],
        "Please: Open the hall on Sundays and Mondays. From 10am."
    );
    assert_eq!(shown["outcome"]["outcome"], "adopted");
    assert_eq!(shown["amendments"][0]["status"], "accepted");
    assert_eq!(shown["comments"][1]["reply_to"], c.as_str());
    assert_eq!(shown["stances"][0]["stance"], "agree");
    assert_eq!(shown["objections"], 0);
    // The export opens with the same text in the Rust loader.
    let file = data.0.path().join("p.automerge");
    data.ok(&["proposal", "export", &p, file.to_str().unwrap()]);
    let saved = std::fs::read(&file).unwrap();
    let doc = moot_doc::Document::load(&saved, &moot_doc::Limits::default()).unwrap();
    assert_eq!(doc.text(), shown["text"].as_str().unwrap());

    // A second proposal is sent to a vote by the steward (a convener of every assembly).
    let q = field(
        &data.ok(&[
            "--as",
            &ben,
            "proposal",
            "create",
            "--assembly",
            "policy",
            "--title",
            "New roof",
            "--body",
            "Fix the roof.",
        ]),
        "proposal_id",
    );
    data.ok(&[
        "--as",
        &ann,
        "proposal",
        "amend",
        &q,
        "--replace",
        "Fix",
        "--with",
        "Replace",
    ]);
    // Ben proposed it but convenes nothing: the poll cannot be created, and nothing is
    // written (no poll left without its decision).
    let polls_before = data.ok(&["polls"]);
    assert_eq!(
        refused_kind(&data, &["--as", &ben, "proposal", "decide", &q, "vote"]),
        "refused"
    );
    assert_eq!(data.ok(&["polls"]), polls_before);
    assert_eq!(data.ok(&["proposal", "show", &q])["outcome"], Value::Null);
    let decided = data.ok(&["proposal", "decide", &q, "vote"]);
    let poll = field(&decided, "poll_id");
    let polls = data.ok(&["polls"]);
    let listed = polls["polls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["poll_id"] == poll.as_str())
        .unwrap();
    assert_eq!(listed["stage"], "open");
    assert_eq!(listed["options"].as_array().unwrap().len(), 3);
    data.ok(&[
        "--as",
        &ann,
        "vote",
        &poll,
        "--score",
        "Reject=0",
        "--score",
        "Adopt: New roof=5",
    ]);
    data.ok(&["poll", "close", &poll]);
    let results = data.ok(&["poll", "results", &poll]);
    assert_eq!(results["counted"], 1);
    let shown = data.ok(&["proposal", "show", &q]);
    assert_eq!(shown["outcome"]["outcome"], "sent-to-vote");
    // The vote's standing shows with the proposal: closed, and won by "Adopt: New roof".
    assert_eq!(shown["vote"]["poll_id"], poll.as_str(), "{shown}");
    assert_eq!(shown["vote"]["stage"], "closed", "{shown}");
    assert_eq!(shown["vote"]["counted"], 1, "{shown}");
    assert_eq!(shown["vote"]["winners"][0], "Adopt: New roof", "{shown}");
    // A proposal adopted by consensus has no vote.
    assert_eq!(data.ok(&["proposal", "show", &p])["vote"], Value::Null);
}

#[test]
fn an_aid_exchange_whose_contacts_only_the_matched_members_read() {
    let (data, ann, ben) = hall();
    let offer = field(
        &data.ok(&[
            "--as",
            &ann,
            "aid",
            "offer",
            "--title",
            "A drill",
            "--category",
            "Tools",
            "--area",
            "E1",
        ]),
        "item_id",
    );
    let request = field(
        &data.ok(&[
            "--as",
            &ben,
            "aid",
            "request",
            "--title",
            "Need a drill",
            "--category",
            "tools",
            "--area",
            "E1 6AN",
        ]),
        "item_id",
    );
    let matched = data.ok(&["aid", "match", &offer]);
    assert_eq!(matched["matches"][0]["item"]["item_id"], request.as_str());
    let pledge = field(
        &data.ok(&[
            "--as",
            &ben,
            "aid",
            "pledge",
            &offer,
            "--note",
            "Saturday?",
            "--contact",
            "ben@example.org",
        ]),
        "pledge_id",
    );
    data.ok(&[
        "--as",
        &ann,
        "aid",
        "reply",
        &pledge,
        "--contact",
        "07700 900123",
    ]);
    // Ben may not withdraw Ann's offer; Ann may not withdraw Ben's pledge.
    assert_eq!(
        refused_kind(&data, &["--as", &ben, "aid", "withdraw", &offer]),
        "refused"
    );
    assert_eq!(
        refused_kind(&data, &["--as", &ann, "aid", "withdraw", &pledge]),
        "refused"
    );
    let as_ann = data.ok(&["--as", &ann, "aid", "show", &offer]);
    assert_eq!(as_ann["status"], "pledged");
    assert_eq!(as_ann["pledges"][0]["pledger_contact"], "ben@example.org");
    let as_ben = data.ok(&["--as", &ben, "aid", "show", &offer]);
    assert_eq!(as_ben["pledges"][0]["author_contact"], "07700 900123");
    assert_eq!(as_ben["pledges"][0]["pledger_contact"], Value::Null);
    // The steward (a third member) reads neither.
    let as_fay = data.ok(&["aid", "show", &offer]);
    assert_eq!(as_fay["pledges"][0]["pledger_contact"], Value::Null);
    assert_eq!(as_fay["pledges"][0]["author_contact"], Value::Null);
    // Not fulfilled yet: nothing to pass on (refused, as a state rule; not bad input).
    let early = [
        "--as",
        &ben,
        "aid",
        "forward",
        &offer,
        "--title",
        "Too soon",
        "--category",
        "Tools",
    ];
    assert_eq!(refused_kind(&data, &early), "refused");
    data.ok(&["--as", &ann, "aid", "fulfil", &offer]);
    let passed = field(
        &data.ok(&[
            "--as",
            &ben,
            "aid",
            "forward",
            &offer,
            "--title",
            "Drill, passed on",
            "--category",
            "Tools",
        ]),
        "item_id",
    );
    let shown = data.ok(&["aid", "show", &offer]);
    assert_eq!(shown["status"], "fulfilled");
    assert_eq!(shown["forwarded_to"][0], passed.as_str());
    // A fulfilled item is not withdrawn, expired or fulfilled again, nor is the pledge that
    // met it withdrawn: each would be written and count for nothing.
    for args in [
        vec!["--as", &ann, "aid", "withdraw", &offer],
        vec!["--as", &ann, "aid", "expire", &offer],
        vec!["--as", &ann, "aid", "fulfil", &offer],
        vec!["--as", &ben, "aid", "withdraw", &pledge],
    ] {
        assert_eq!(refused_kind(&data, &args), "refused", "{args:?}");
    }
    let shown = data.ok(&["aid", "show", &offer]);
    assert_eq!(shown["status"], "fulfilled");
    assert_eq!(shown["pledges"][0]["withdrawn"], false, "{shown}");
    // A coordinator may close anyone's item; Ben's request (met elsewhere) expires.
    let cat = field(&data.ok(&["key", "new", "--name", "Cat"]), "member_id");
    data.ok(&[
        "member",
        "add",
        &cat,
        "--name",
        "Cat",
        "--role",
        "coordinator",
    ]);
    data.ok(&["--as", &cat, "aid", "expire", &request]);
    assert_eq!(data.ok(&["aid", "show", &request])["status"], "expired");
    assert_eq!(
        refused_kind(&data, &["--as", &cat, "aid", "expire", &request]),
        "refused"
    );
    let open = data.ok(&["aid", "list", "--status", "open", "--kind", "offer"]);
    assert_eq!(open["items"].as_array().unwrap().len(), 1);
    assert_eq!(open["items"][0]["item_id"], passed.as_str());
}

/// `proposal show` keeps the text's own line breaks for people, and escapes everything else
/// a line may hold (an escape sequence, a carriage return).
#[test]
fn a_proposals_text_keeps_its_lines_and_nothing_else_reaches_the_terminal() {
    let (data, ann, _) = hall();
    let p = field(
        &data.ok(&[
            "--as",
            &ann,
            "proposal",
            "create",
            "--assembly",
            "policy",
            "--title",
            "Rules",
            "--body",
            "1. Be kind.\n2. Tidy up.\u{1b}[2J\r",
        ]),
        "proposal_id",
    );
    let out = crate::moot(&["--data", &data.path(), "proposal", "show", &p], None);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("1. Be kind.\n2. Tidy up.\\u{1b}[2J"),
        "{text}"
    );
    assert_eq!(crate::raw_dangerous(&text), None, "{text:?}");
}

/// An edit counted in a version of the text this node does not have (`--base` naming heads it
/// does not hold, as a version seen on another node would) is `not_found`, exit 1, as CLI.md
/// says; the text is unchanged.
#[test]
fn an_edit_from_a_version_this_node_does_not_have_is_not_found() {
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    data.ok(&["hub", "create", "Riverside"]);
    let proposal = field(
        &data.ok(&[
            "proposal",
            "create",
            "--assembly",
            "activism",
            "--title",
            "Buses",
            "--body",
            "Free buses.",
        ]),
        "proposal_id",
    );
    let unknown = "0".repeat(64);
    let args = [
        "proposal", "edit", &proposal, "--at", "0", "--insert", "x", "--base", &unknown,
    ];
    let (code, _, stderr) = data.run(&args);
    assert_eq!(code, 1, "{stderr}");
    assert_eq!(refused_kind(&data, &args), "not_found");
    let shown = data.ok(&["proposal", "show", &proposal]);
    assert_eq!(shown["text"], "Free buses.");
}

/// A first text too long for one op is bad input that says how to get there (create with the
/// first part, add the rest by an edit), not a refusal of a "malformed op"; and that way works.
#[test]
fn a_long_motion_is_created_in_parts_as_the_error_says() {
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    data.ok(&["hub", "create", "Riverside"]);
    let paragraph = "The branch resolves to campaign for free buses on every route. ";
    let whole: String = paragraph.repeat(70_000 / paragraph.len() + 1);
    let dir = data.0.path();
    let long = dir.join("long.txt");
    std::fs::write(&long, &whole).unwrap();
    let create = |file: &std::path::Path| {
        data.run(&[
            "proposal",
            "create",
            "--assembly",
            "activism",
            "--title",
            "Buses",
            "--body-file",
            &file.display().to_string(),
        ])
    };
    let (code, _, stderr) = create(&long);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("bad_input") && stderr.contains("moot proposal edit"),
        "{stderr}"
    );
    let first = dir.join("first.txt");
    std::fs::write(&first, &whole[..30_000]).unwrap();
    let (code, created, stderr) = create(&first);
    assert_eq!(code, 0, "{stderr}");
    let proposal = field(&created, "proposal_id");
    data.ok(&[
        "proposal",
        "edit",
        &proposal,
        "--body-file",
        &long.display().to_string(),
    ]);
    let shown = data.ok(&["proposal", "show", &proposal]);
    assert_eq!(shown["text"].as_str().unwrap(), whole);
}
