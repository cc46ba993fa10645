//! Proposal and mutual-aid commands: wiring from the command line to `moot-node`.

use std::io::Read as _;
use std::path::Path;

use anyhow::Context as _;
use moot_crypto::OpId;
use moot_node::aid::{AidFilter, ItemChange, ItemOrPledge, ItemSpec, ItemView};
use moot_node::deliberation::{Decision, MAX_PROPOSAL_BYTES};
use moot_node::polls::{parse_op_id, parse_utc};
use moot_state::aid::AidStatus;
use moot_state::body::{AidKind, StanceKind};
use serde_json::json;

use crate::bad_input;
use crate::cli::{AidCommand, AidKindArg, DecideArg, Global, ItemArgs, ProposalCommand, StanceArg};
use crate::node_cmd::{NodeResult as _, esc, open, print, print_beside, print_saved};

fn op_id(what: &str, text: &str) -> anyhow::Result<OpId> {
    parse_op_id(text)
        .with_context(|| format!("{text:?} is not {what} id (64 hex digits)"))
        .map_err(bad_input)
}

fn assembly_arg(text: &str) -> anyhow::Result<moot_state::body::AssemblyRef> {
    moot_node::polls::parse_assembly(text)
        .with_context(|| {
            format!(
                "{text:?} is not an assembly: give its id (64 hex digits, from `moot \
                 assemblies`), or activism, policy, or constituency:NAME"
            )
        })
        .map_err(bad_input)
}

/// Reads a UTF-8 text file of at most [`MAX_PROPOSAL_BYTES`].
fn read_text(path: &Path) -> anyhow::Result<String> {
    let shown = crate::control::shown(path);
    let shown = shown.display();
    let file = std::fs::File::open(path).with_context(|| format!("cannot open {shown}"))?;
    let mut bytes = Vec::new();
    file.take(MAX_PROPOSAL_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {shown}"))?;
    if bytes.len() > MAX_PROPOSAL_BYTES {
        return Err(bad_input(anyhow::anyhow!(
            "{shown} is larger than {MAX_PROPOSAL_BYTES} bytes"
        )));
    }
    String::from_utf8(bytes).map_err(|_| bad_input(anyhow::anyhow!("{shown} is not UTF-8 text")))
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

pub fn proposal(global: &Global, command: &ProposalCommand) -> anyhow::Result<()> {
    match command {
        ProposalCommand::Create {
            assembly,
            title,
            body_file,
            body,
        } => {
            let assembly = assembly_arg(assembly)?;
            let text = match (body_file, body) {
                (Some(path), _) => read_text(path)?,
                (None, Some(text)) => text.clone(),
                (None, None) => String::new(),
            };
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let id = session
                .node
                .create_proposal(&hub, &signer, &assembly, title, &text)
                .node()?;
            print_saved(
                global,
                json!({"proposal_id": id.to_string()}),
                format!("proposal {id}"),
            )
        }
        ProposalCommand::Edit {
            proposal_id,
            body_file,
            at,
            delete,
            insert,
            base,
        } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let base = base
                .iter()
                .map(|h| {
                    let mut bytes = [0u8; 32];
                    hex::decode_to_slice(h.trim(), &mut bytes)
                        .map(|()| bytes)
                        .map_err(|_| {
                            bad_input(anyhow::anyhow!(
                                "--base {}: not a head (64 hex digits, as `proposal show` gives)",
                                moot_text::escape(h)
                            ))
                        })
                })
                .collect::<anyhow::Result<Vec<[u8; 32]>>>()?;
            let new_text = body_file.as_deref().map(read_text).transpose()?;
            if new_text.is_none() && at.is_none() {
                return Err(bad_input(anyhow::anyhow!(
                    "give --body-file FILE, or --at N with --insert TEXT and/or --delete N"
                )));
            }
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let (at, delete, insert) = (at.unwrap_or(0), *delete, insert.clone());
            let (id, heads) = session
                .node
                .edit_proposal_heads(&hub, &signer, &proposal, |doc, actor| match &new_text {
                    Some(text) => doc.replace_all(actor, text),
                    None if base.is_empty() => doc.edit(actor, at, delete, &insert),
                    None => doc.edit_since(actor, &base, at, delete, &insert),
                })
                .node()?;
            print_saved(
                global,
                json!({"proposal_id": proposal_id, "change_id": id.to_string(), "heads": heads}),
                format!("edited: change {id}"),
            )
        }
        ProposalCommand::Comment {
            proposal_id,
            text,
            reply_to,
        } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let reply_to = reply_to
                .as_deref()
                .map(|r| op_id("a comment", r))
                .transpose()?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let id = session
                .node
                .comment(&hub, &signer, &proposal, reply_to, text)
                .node()?;
            print_saved(
                global,
                json!({"comment_id": id.to_string()}),
                format!("comment {id}"),
            )
        }
        ProposalCommand::Stance {
            proposal_id,
            stance,
            reason,
        } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let stance = match stance {
                StanceArg::Agree => StanceKind::Agree,
                StanceArg::Concerns => StanceKind::Concerns,
                StanceArg::Object => StanceKind::Object,
                StanceArg::Block => StanceKind::Block,
            };
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let (id, revision) = session
                .node
                .stance(&hub, &signer, &proposal, stance, reason)
                .node()?;
            print_saved(
                global,
                json!({"stance_id": id.to_string(), "stance": stance.as_str(), "revision": revision}),
                format!("stance: {} (revision {revision})", stance.as_str()),
            )
        }
        ProposalCommand::Amend {
            id,
            replace,
            with,
            accept,
            reject,
        } => {
            let target = op_id("a proposal or amendment", id)?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            if *accept || *reject {
                let (resolution, change) = session
                    .node
                    .resolve_amendment(&hub, &signer, &target, *accept)
                    .node()?;
                return print_saved(
                    global,
                    json!({
                        "amendment_id": id,
                        "accepted": *accept,
                        "resolution_id": resolution.to_string(),
                        "change_id": change.map(|c| c.to_string()),
                    }),
                    if *accept {
                        "accepted and applied to the text"
                    } else {
                        "rejected"
                    }
                    .to_string(),
                );
            }
            let (Some(replace), Some(with)) = (replace, with) else {
                return Err(bad_input(anyhow::anyhow!(
                    "give --replace OLD --with NEW to propose an amendment, or --accept / \
                     --reject with an amendment's id"
                )));
            };
            let amendment = session
                .node
                .amend(&hub, &signer, &target, replace, with)
                .node()?;
            print_saved(
                global,
                json!({"amendment_id": amendment.to_string()}),
                format!("amendment {amendment}"),
            )
        }
        ProposalCommand::Decide {
            proposal_id,
            outcome,
        } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let decision = match outcome {
                DecideArg::Adopt => Decision::Adopt,
                DecideArg::Vote => Decision::Vote,
                DecideArg::Withdraw => Decision::Withdraw,
            };
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let (id, poll) = session
                .node
                .decide(&hub, &signer, &proposal, decision)
                .node()?;
            let text = match poll {
                Some(poll) => format!("sent to a vote: poll {poll} is open"),
                None => format!("decided: {id}"),
            };
            print_saved(
                global,
                json!({"decision_id": id.to_string(), "poll_id": poll.map(|p| p.to_string())}),
                text,
            )
        }
        ProposalCommand::Show { proposal_id } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let session = open(global)?;
            let hub = session.hub()?;
            let view = session.node.proposal_view(&hub, &proposal).node()?;
            let mut text = format!(
                "{}\n{}\n\n{}\n",
                esc(&view.title),
                "=".repeat(view.title.chars().count().min(72)),
                // The text's own line breaks are kept; everything else is escaped.
                moot_text::escape_lines(&view.text)
            );
            if !view.amendments.is_empty() {
                text.push_str("\nAmendments:\n");
                for a in &view.amendments {
                    text.push_str(&format!(
                        "  {}  {:<8} {:?} -> {:?}\n",
                        short(&a.amendment_id),
                        a.status,
                        esc(&a.original),
                        esc(&a.replacement)
                    ));
                }
            }
            if !view.comments.is_empty() {
                text.push_str("\nComments:\n");
                for c in &view.comments {
                    let indent = if c.reply_to.is_some() { "    " } else { "  " };
                    text.push_str(&format!(
                        "{indent}{} {}: {}\n",
                        short(&c.comment_id),
                        short(&c.author),
                        esc(&c.text)
                    ));
                }
            }
            if !view.stances.is_empty() {
                text.push_str("\nStances:\n");
                for s in &view.stances {
                    text.push_str(&format!(
                        "  {} {:<8} {}\n",
                        short(&s.member),
                        s.stance,
                        esc(&s.reason)
                    ));
                }
            }
            // A proposal sent to a vote: how the vote stands (its poll's results).
            let vote = match view.outcome.as_ref().and_then(|o| o.poll_id.as_deref()) {
                Some(poll) => {
                    let poll = op_id("a poll", poll)?;
                    // A poll not open here yet (its open op still on its way) leaves the
                    // proposal shown, with no standing for its vote.
                    let counted = match session.node.poll_results(&hub, &poll) {
                        Ok(results) => Some(crate::poll_cmd::render_results(&results)?.0),
                        Err(_) => None,
                    };
                    let field = |key: &str, none: serde_json::Value| {
                        counted.as_ref().map_or(none, |c| c[key].clone())
                    };
                    Some(json!({
                        "poll_id": poll.to_string(),
                        "stage": field("stage", json!(null)),
                        "counted": field("counted", json!(0)),
                        "winners": field("winners", json!([])),
                    }))
                }
                None => None,
            };
            text.push_str(&match &view.outcome {
                Some(o) => format!("\nOutcome: {}\n", o.outcome),
                None => format!(
                    "\nOpen; {} objection(s) or block(s) standing\n",
                    view.objections
                ),
            });
            if let Some(vote) = &vote {
                let winners: Vec<String> = vote["winners"]
                    .as_array()
                    .map(|w| {
                        w.iter()
                            .filter_map(|n| n.as_str())
                            .map(|n| format!("\"{}\"", esc(n)))
                            .collect()
                    })
                    .unwrap_or_default();
                text.push_str(&format!(
                    "Vote: {}, {} ballot(s) counted{}\n",
                    vote["stage"]
                        .as_str()
                        .unwrap_or("not open on this node yet"),
                    vote["counted"],
                    match (vote["stage"].as_str(), winners.is_empty()) {
                        (Some("closed"), false) => format!("; won by {}", winners.join(", ")),
                        _ => String::new(),
                    }
                ));
            }
            for flag in &view.flags {
                text.push_str(&format!("flag: {}\n", esc(flag)));
            }
            let mut value = serde_json::to_value(&view)?;
            value["vote"] = vote.unwrap_or(serde_json::Value::Null);
            print(global, value, text.trim_end().to_string())
        }
        ProposalCommand::Export { proposal_id, file } => {
            let proposal = op_id("a proposal", proposal_id)?;
            let session = open(global)?;
            let hub = session.hub()?;
            let bytes = session.node.export_proposal(&hub, &proposal).node()?;
            // Readable by its owner only (a members-lane proposal is kept from strangers),
            // and whole or not at all.
            let shown = crate::control::shown(file).display().to_string();
            moot_node::dir::write_private(file, &bytes)
                .with_context(|| format!("cannot write {shown}"))?;
            print_beside(
                global,
                json!({"proposal_id": proposal_id, "file": shown, "bytes": bytes.len()}),
                format!("wrote {} bytes to {}", bytes.len(), esc(&shown)),
                file,
            )
        }
    }
}

pub fn proposals(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let list = session.node.proposals(&hub).node()?;
    let text = if list.is_empty() {
        "no proposals yet".to_string()
    } else {
        list.iter()
            .map(|p| format!("{}  {:<12}  {}", p.proposal_id, p.status, esc(&p.title)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(global, json!({"proposals": list}), text)
}

fn time_arg(what: &str, text: Option<&String>) -> anyhow::Result<Option<u64>> {
    text.map(|t| {
        parse_utc(t)
            .or_else(|| parse_utc(&format!("{t}T00:00")))
            .with_context(|| format!("{what} {t:?} is not a UTC time (YYYY-MM-DD[THH:MM[:SS]][Z])"))
            .map_err(bad_input)
    })
    .transpose()
}

fn spec(args: &ItemArgs) -> anyhow::Result<ItemSpec> {
    Ok(ItemSpec {
        title: args.title.clone(),
        description: args.description.clone(),
        category: args.category.clone(),
        area: args.area.clone(),
        from: time_arg("--from", args.from.as_ref())?,
        until: time_arg("--until", args.until.as_ref())?,
        quantity: args.quantity,
        public: args.public,
    })
}

fn item_line(i: &ItemView) -> String {
    format!(
        "{}  {:<7} {:<9} [{}] {}{}",
        i.item_id,
        i.kind,
        i.status,
        esc(&i.category),
        esc(&i.title),
        i.area
            .as_deref()
            .map(|a| format!(" ({})", esc(a)))
            .unwrap_or_default()
    )
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

pub fn aid(global: &Global, command: &AidCommand) -> anyhow::Result<()> {
    let mut session = open(global)?;
    let hub = session.hub()?;
    match command {
        AidCommand::Offer(args) | AidCommand::Request(args) => {
            let kind = match command {
                AidCommand::Offer(_) => AidKind::Offer,
                _ => AidKind::Request,
            };
            let spec = spec(args)?;
            let signer = session.signer()?;
            let id = session
                .node
                .post_item(&hub, &signer, kind, &spec, None)
                .node()?;
            print_saved(
                global,
                json!({"item_id": id.to_string()}),
                format!("{} {id}", kind.as_str()),
            )
        }
        AidCommand::Forward { item_id, item } => {
            let from = op_id("an item", item_id)?;
            let spec = spec(item)?;
            let signer = session.signer()?;
            let id = session
                .node
                .post_item(&hub, &signer, AidKind::Offer, &spec, Some(from))
                .node()?;
            print_saved(
                global,
                json!({"item_id": id.to_string(), "forwarded_from": item_id}),
                format!("passed on as offer {id}"),
            )
        }
        AidCommand::List {
            kind,
            category,
            area,
            status,
        } => {
            let status = status
                .as_deref()
                .map(|s| {
                    AidStatus::parse(s)
                        .with_context(|| {
                            format!(
                                "{s:?} is not a status (open, pledged, fulfilled, withdrawn, \
                                 expired)"
                            )
                        })
                        .map_err(bad_input)
                })
                .transpose()?;
            let filter = AidFilter {
                kind: kind.map(|k| match k {
                    AidKindArg::Offer => AidKind::Offer,
                    AidKindArg::Request => AidKind::Request,
                }),
                category: category.clone(),
                area: area.clone(),
                status,
            };
            let readers: Vec<_> = session.signer().ok().into_iter().collect();
            let list = session.node.aid_list(&hub, &filter, &readers).node()?;
            let text = if list.is_empty() {
                "nothing on the board".to_string()
            } else {
                list.iter().map(item_line).collect::<Vec<_>>().join("\n")
            };
            print(global, json!({"items": list}), text)
        }
        AidCommand::Show { item_id } => {
            let item = op_id("an item", item_id)?;
            let readers: Vec<_> = session.signer().ok().into_iter().collect();
            let view = session.node.aid_show(&hub, &item, &readers).node()?;
            let mut text = item_line(&view);
            if !view.description.is_empty() {
                text.push_str(&format!("\n{}", esc(&view.description)));
            }
            for p in &view.pledges {
                text.push_str(&format!(
                    "\n  pledge {} by {}{}: {}",
                    short(&p.pledge_id),
                    short(&p.pledger),
                    if p.withdrawn { " (withdrawn)" } else { "" },
                    esc(&p.note)
                ));
                if let Some(c) = &p.pledger_contact {
                    text.push_str(&format!("\n    pledger's contact: {}", esc(c)));
                }
                if let Some(c) = &p.author_contact {
                    text.push_str(&format!("\n    author's contact: {}", esc(c)));
                }
            }
            if let Some(f) = &view.forwarded_from {
                text.push_str(&format!("\npassed on from {f}"));
            }
            for f in &view.forwarded_to {
                text.push_str(&format!("\npassed on as {f}"));
            }
            print(global, serde_json::to_value(&view)?, text)
        }
        AidCommand::Match { item_id, limit } => {
            let item = op_id("an item", item_id)?;
            let found = session
                .node
                .aid_match(&hub, &item, now(), (*limit).min(1000))
                .node()?;
            let text = if found.is_empty() {
                "no matches".to_string()
            } else {
                found
                    .iter()
                    .map(|m| format!("{:>4}  {}", m.score, item_line(&m.item)))
                    .collect::<Vec<_>>()
                    .join("\n")
            };
            print(global, json!({"item_id": item_id, "matches": found}), text)
        }
        AidCommand::Pledge {
            item_id,
            note,
            contact,
            quantity,
        } => {
            let item = op_id("an item", item_id)?;
            let signer = session.signer()?;
            let id = session
                .node
                .pledge(&hub, &signer, &item, *quantity, note, contact)
                .node()?;
            print_saved(
                global,
                json!({"pledge_id": id.to_string()}),
                format!("pledged: {id}"),
            )
        }
        AidCommand::Reply { pledge_id, contact } => {
            let pledge = op_id("a pledge", pledge_id)?;
            let signer = session.signer()?;
            let id = session
                .node
                .reply_to_pledge(&hub, &signer, &pledge, contact)
                .node()?;
            print_saved(
                global,
                json!({"reply_id": id.to_string()}),
                "contact sent, readable by the pledger only".to_string(),
            )
        }
        AidCommand::Fulfil { item_id, pledge } => {
            let item = op_id("an item", item_id)?;
            let pledge = pledge
                .as_deref()
                .map(|p| op_id("a pledge", p))
                .transpose()?;
            let signer = session.signer()?;
            let id = session
                .node
                .update_item(&hub, &signer, &item, ItemChange::Fulfil(pledge))
                .node()?;
            print_saved(
                global,
                json!({"update_id": id.to_string(), "status": "fulfilled"}),
                "fulfilled".to_string(),
            )
        }
        AidCommand::Expire { item_id } => {
            let item = op_id("an item", item_id)?;
            let signer = session.signer()?;
            let id = session
                .node
                .update_item(&hub, &signer, &item, ItemChange::Expire)
                .node()?;
            print_saved(
                global,
                json!({"update_id": id.to_string(), "status": "expired"}),
                "expired".to_string(),
            )
        }
        AidCommand::Withdraw { id } => {
            let target = op_id("an item or pledge", id)?;
            let what = session.node.item_or_pledge(&hub, &target).node()?;
            let signer = session.signer()?;
            let (op, status) = match what {
                ItemOrPledge::Item => (
                    session
                        .node
                        .update_item(&hub, &signer, &target, ItemChange::Withdraw)
                        .node()?,
                    "withdrawn",
                ),
                ItemOrPledge::Pledge => (
                    session.node.unpledge(&hub, &signer, &target).node()?,
                    "pledge withdrawn",
                ),
            };
            print_saved(
                global,
                json!({"op_id": op.to_string(), "status": status}),
                status.to_string(),
            )
        }
    }
}
