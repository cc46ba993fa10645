//! Assembly, poll and vote commands: wiring from the command line to `moot-node`.
//!
//! `poll results` prints `moot tally`'s report of the counted ballots, tallied with the poll's
//! seed (the open op's id), plus the poll's own fields: counted and excluded ballots with
//! reasons, each polling station's summary and head-to-head matrix, quorum and flags.

use anyhow::Context as _;
use moot_crypto::OpId;
use moot_node::polls::{self, PollResults, PollSpec, PollView};
use moot_star::lot::lot_order;
use moot_star::report::{OptionReport, Report, render_text};
use moot_star::{Config, Counts, Seed, Summary, tally};
use moot_state::body::AssemblyKind;
use serde_json::{Value, json};

use crate::bad_input;
use crate::cli::{AssemblyCommand, AssemblyKindArg, Global, PollCommand};
use crate::node_cmd::{NodeResult as _, esc, member_id, open, print, print_saved};

fn poll_id(text: &str) -> anyhow::Result<OpId> {
    polls::parse_op_id(text)
        .with_context(|| format!("{text:?} is not a poll id (64 hex digits, from `moot polls`)"))
        .map_err(bad_input)
}

fn assembly_arg(text: &str) -> anyhow::Result<moot_state::body::AssemblyRef> {
    polls::parse_assembly(text)
        .with_context(|| {
            format!(
                "{text:?} is not an assembly: give its id (64 hex digits, from `moot \
                 assemblies`), or activism, policy, or constituency:NAME"
            )
        })
        .map_err(bad_input)
}

/// "1 ballot", "2 ballots".
fn count(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

pub fn assembly(global: &Global, command: &AssemblyCommand) -> anyhow::Result<()> {
    match command {
        AssemblyCommand::Create { name, kind, public } => {
            let name = moot_node::clean_text("assembly name", name).node()?;
            let kind = match kind {
                AssemblyKindArg::WorkingGroup => AssemblyKind::WorkingGroup,
                AssemblyKindArg::Committee => AssemblyKind::Committee,
                AssemblyKindArg::Society => AssemblyKind::Society,
            };
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let id = session
                .node
                .create_assembly(&hub, &signer, &name, kind, *public)
                .node()?;
            print_saved(
                global,
                json!({"assembly_id": id.to_string()}),
                format!("created {} {}: {id}", kind.as_str(), esc(&name)),
            )
        }
        AssemblyCommand::Seat {
            assembly_id,
            member_id: member,
            remove,
        }
        | AssemblyCommand::Convener {
            assembly_id,
            member_id: member,
            dismiss: remove,
        } => {
            let seat = matches!(command, AssemblyCommand::Seat { .. });
            let assembly = assembly_arg(assembly_id)?;
            let member = member_id(member)?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let op = if seat {
                session
                    .node
                    .seat(&hub, &signer, &assembly, member, !*remove)
            } else {
                session
                    .node
                    .appoint_convener(&hub, &signer, &assembly, member, !*remove)
            }
            .node()?;
            let (key, done) = match (seat, *remove) {
                (true, false) => ("seated", "seated"),
                (true, true) => ("seated", "unseated"),
                (false, false) => ("convener", "appointed convener"),
                (false, true) => ("convener", "dismissed as convener"),
            };
            print_saved(
                global,
                json!({
                    "assembly_id": assembly_id,
                    "member_id": member.to_string(),
                    key: !*remove,
                    "op_id": op.to_string(),
                }),
                done.to_string(),
            )
        }
        AssemblyCommand::Join { assembly_id } | AssemblyCommand::Leave { assembly_id } => {
            let joined = matches!(command, AssemblyCommand::Join { .. });
            let assembly = assembly_arg(assembly_id)?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let op = session
                .node
                .join_assembly(&hub, &signer, &assembly, joined)
                .node()?;
            print_saved(
                global,
                json!({"assembly_id": assembly_id, "joined": joined, "op_id": op.to_string()}),
                if joined { "joined" } else { "left" }.to_string(),
            )
        }
    }
}

pub fn assemblies(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let list = session.node.assemblies(&hub).node()?;
    let text = list
        .iter()
        .map(|a| {
            // The whole id: it is what `assembly join` and `poll create --assembly` take (a
            // constituency society's name is part of its id).
            format!(
                "{:<64}  {:<14} {:<8} {:>4} members  {}",
                esc(&a.assembly_id),
                a.kind,
                if a.public { "public" } else { "members" },
                a.members.len(),
                esc(&a.name)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    print(global, json!({"assemblies": list}), text)
}

pub fn polls(global: &Global) -> anyhow::Result<()> {
    let session = open(global)?;
    let hub = session.hub()?;
    let list = session.node.polls(&hub).node()?;
    let text = if list.is_empty() {
        "no polls yet".to_string()
    } else {
        list.iter()
            .map(|p| format!("{}  {:<7}  {}", p.poll_id, p.stage, esc(&p.question)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    print(global, json!({"polls": list}), text)
}

/// `OPTION=N` pairs.
fn scores(pairs: &[String]) -> anyhow::Result<Vec<(String, u8)>> {
    pairs
        .iter()
        .map(|pair| {
            let (name, score) = pair
                .rsplit_once('=')
                .with_context(|| format!("--score {pair:?}: write OPTION=N, e.g. Buses=5"))
                .map_err(bad_input)?;
            let score: u8 = score
                .trim()
                .parse()
                .ok()
                .filter(|s| *s <= moot_state::body::MAX_SCORE)
                .with_context(|| {
                    format!(
                        "--score {pair:?}: the score (after the last `=`) must be a whole number \
                         0-5"
                    )
                })
                .map_err(bad_input)?;
            if name.trim().is_empty() {
                return Err(bad_input(anyhow::anyhow!(
                    "--score {pair:?}: name the option before the `=`, e.g. Buses=5"
                )));
            }
            Ok((name.trim().to_string(), score))
        })
        .collect()
}

pub fn vote(global: &Global, poll: &str, pairs: &[String]) -> anyhow::Result<()> {
    let poll = poll_id(poll)?;
    let scores = scores(pairs)?;
    if scores.is_empty() {
        return Err(bad_input(anyhow::anyhow!(
            "give a score for at least one option: --score OPTION=N (0-5)"
        )));
    }
    let mut session = open(global)?;
    let hub = session.hub()?;
    let signer = session.signer()?;
    let (ballot, revision) = session.node.vote(&hub, &signer, &poll, &scores).node()?;
    print_saved(
        global,
        json!({"ballot_id": ballot.to_string(), "revision": revision}),
        format!("ballot cast (revision {revision}): {ballot}"),
    )
}

pub fn poll(global: &Global, command: &PollCommand) -> anyhow::Result<()> {
    match command {
        PollCommand::Create {
            assembly,
            question,
            options,
            seats,
            officers,
            stations,
            quorum,
            opens_at,
            closes_at,
        } => {
            let time = |flag: &str, text: &Option<String>| -> anyhow::Result<Option<u64>> {
                text.as_deref()
                    .map(|t| {
                        polls::parse_utc(t)
                            .with_context(|| {
                                format!(
                                    "{flag} {t:?}: write a UTC time as YYYY-MM-DDTHH:MM[:SS]Z, \
                                     e.g. 2026-12-01T19:30Z"
                                )
                            })
                            .map_err(bad_input)
                    })
                    .transpose()
            };
            let opens_at = time("--opens-at", opens_at)?;
            let closes_at = time("--closes-at", closes_at)?;
            if let (Some(open), Some(close)) = (opens_at, closes_at)
                && close <= open
            {
                return Err(bad_input(anyhow::anyhow!(
                    "--closes-at must come after --opens-at"
                )));
            }
            let spec = PollSpec {
                assembly: assembly_arg(assembly)?,
                question: question.clone(),
                options: options.clone(),
                seats: *seats,
                officers: officers
                    .iter()
                    .map(|m| member_id(m))
                    .collect::<anyhow::Result<_>>()?,
                stations: stations
                    .iter()
                    .map(|m| member_id(m))
                    .collect::<anyhow::Result<_>>()?,
                quorum: *quorum,
                opens_at,
                closes_at,
            };
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let id = session.node.create_poll(&hub, &signer, spec).node()?;
            print_saved(
                global,
                json!({"poll_id": id.to_string()}),
                format!("created poll {id}"),
            )
        }
        PollCommand::Open { poll_id: text } => {
            let poll = poll_id(text)?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let open_id = session.node.open_poll(&hub, &signer, &poll).node()?;
            let view = session
                .node
                .polls(&hub)
                .node()?
                .into_iter()
                .find(|p| p.poll_id == poll.to_string());
            let electorate = view.as_ref().and_then(|p| p.electorate);
            // Fixed from now on: a quorum larger than the electorate can never be met.
            if let (Some(quorum), Some(electorate)) = (view.and_then(|p| p.quorum), electorate)
                && quorum > electorate
            {
                crate::out::note(
                    global.json,
                    format!(
                        "the quorum ({quorum} ballots) is more than the electorate ({electorate}): this poll \
                         cannot be quorate"
                    ),
                );
            }
            print_saved(
                global,
                json!({
                    "poll_id": poll.to_string(),
                    "open_id": open_id.to_string(),
                    "seed": open_id.to_string(),
                    "electorate": electorate,
                }),
                format!(
                    "poll open; electorate {}; tiebreak seed {open_id}",
                    count(u64::from(electorate.unwrap_or(0)), "member", "members")
                ),
            )
        }
        PollCommand::CloseStation { poll_id: text } | PollCommand::Close { poll_id: text } => {
            let station = matches!(command, PollCommand::CloseStation { .. });
            let poll = poll_id(text)?;
            let mut session = open(global)?;
            let hub = session.hub()?;
            let signer = session.signer()?;
            let close = if station {
                session.node.close_station(&hub, &signer, &poll)
            } else {
                session.node.close_poll(&hub, &signer, &poll)
            }
            .node()?;
            print_saved(
                global,
                json!({"poll_id": poll.to_string(), "close_id": close.to_string()}),
                format!(
                    "{} closed: {close}",
                    if station { "polling station" } else { "poll" }
                ),
            )
        }
        PollCommand::Results { poll_id: text } => {
            let poll = poll_id(text)?;
            let session = open(global)?;
            let hub = session.hub()?;
            let results = session.node.poll_results(&hub, &poll).node()?;
            let (value, text) = render_results(&results)?;
            print(global, value, text)
        }
        PollCommand::Verify {
            poll_id: text,
            bundle: Some(file),
        } => {
            let poll = poll_id(text)?;
            let counted = moot_node::bundle::count_from_bundle(file, &poll).node()?;
            let (mut value, mut text) = render_results(&counted.results)?;
            let ok = counted.refused.is_empty();
            value["ok"] = json!(ok);
            value["hub_id"] = json!(counted.hub.to_string());
            value["ops_checked"] = json!(counted.ops);
            value["refused"] = json!(
                counted
                    .refused
                    .iter()
                    .map(|(op, why)| json!({"op_id": op.to_string(), "reason": why}))
                    .collect::<Vec<_>>()
            );
            text = format!(
                "{}: {} ops in the bundle, every signature checked and every op validated; {} \
                 refused\n{text}",
                if ok { "ok" } else { "REFUSED OPS" },
                counted.ops,
                counted.refused.len()
            );
            print(global, value, text)?;
            if ok {
                Ok(())
            } else {
                anyhow::bail!("the bundle holds ops the rules refuse")
            }
        }
        PollCommand::Verify {
            poll_id: text,
            bundle: None,
        } => {
            let poll = poll_id(text)?;
            let session = open(global)?;
            let hub = session.hub()?;
            let verification = session.node.verify_poll(&hub, &poll).node()?;
            let mut value = serde_json::to_value(&verification)?;
            value["poll_id"] = json!(poll.to_string());
            let text = if verification.ok {
                format!(
                    "ok: {} ops checked again; {} ballots counted, as shown",
                    verification.ops_checked, verification.counted
                )
            } else {
                format!(
                    "MISMATCH: {}",
                    verification
                        .differences
                        .iter()
                        .map(|d| esc(d).into_owned())
                        .collect::<Vec<_>>()
                        .join("; ")
                )
            };
            print(global, value, text)?;
            if verification.ok {
                Ok(())
            } else {
                anyhow::bail!("the recomputed results differ from those shown")
            }
        }
    }
}

/// A summary's own figures: ballots, each option's total and histogram, and the head-to-head
/// matrix.
fn summary_json(summary: &Summary) -> Value {
    let n = summary.option_count();
    let options: Vec<Value> = (0..n)
        .map(|i| {
            let histogram = summary.histogram(i);
            let total: u64 = histogram
                .iter()
                .enumerate()
                .map(|(s, c)| s as u64 * c)
                .sum();
            json!({"name": summary.names()[i], "total": total, "histogram": histogram})
        })
        .collect();
    let pairwise: Vec<Vec<u64>> = (0..n)
        .map(|a| {
            (0..n)
                .map(|b| {
                    if a == b {
                        0
                    } else {
                        summary.preference(a, b).0
                    }
                })
                .collect()
        })
        .collect();
    json!({"ballots": summary.ballot_count(), "options": options, "pairwise": pairwise})
}

fn totals_line(summary: &Summary) -> String {
    (0..summary.option_count())
        .map(|i| {
            let total: u64 = summary
                .histogram(i)
                .iter()
                .enumerate()
                .map(|(s, c)| s as u64 * c)
                .sum();
            format!("{} {total}", esc(&summary.names()[i]))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The report of a poll with no ballot counted (yet): `moot tally` counts no empty file, but
/// a script reading `poll results` gets every field of the tally JSON all the same — no
/// winners, each option with zero totals and histograms, no runoff, rounds or tiebreaks, a
/// matrix of zeros, and the lot order the seed gives.
fn empty_report(poll: &PollView, config: &Config) -> Report {
    let n = poll.options.len();
    Report {
        winners: Vec::new(),
        ballots: 0,
        seats: config.seats,
        options: poll
            .options
            .iter()
            .map(|name| OptionReport {
                name: name.clone(),
                total: 0,
                average: 0.0,
                histogram: [0; 6],
            })
            .collect(),
        runoff: None,
        rounds: Vec::new(),
        tiebreaks: Vec::new(),
        lot_used: false,
        seed: config.seed.to_string(),
        lot_order: lot_order(&config.seed, &poll.options)
            .into_iter()
            .filter_map(|i| poll.options.get(i).cloned())
            .collect(),
        pairwise: vec![vec![0; n]; n],
    }
}

/// The results as JSON (the tally report plus the poll's fields) and as text.
pub(crate) fn render_results(results: &PollResults) -> anyhow::Result<(Value, String)> {
    let poll: &PollView = &results.poll;
    let mut seed_bytes = [0u8; 32];
    hex::decode_to_slice(&results.seed, &mut seed_bytes).context("the stored seed")?;
    let config = Config {
        seats: usize::from(poll.seats),
        seed: Seed(seed_bytes),
    };
    let counted = (results.total.ballot_count() > 0)
        .then(|| tally(&results.total, &config))
        .transpose()
        .context("counting the poll")?;
    let mut value = match &counted {
        Some(result) => serde_json::to_value(Report::new(result))?,
        None => serde_json::to_value(empty_report(poll, &config))?,
    };
    value["poll_id"] = json!(poll.poll_id);
    value["question"] = json!(poll.question);
    value["stage"] = json!(poll.stage);
    value["close_id"] = json!(poll.close_id);
    value["open_id"] = json!(poll.open_id);
    value["seed"] = json!(results.seed);
    value["electorate"] = json!(poll.electorate);
    value["counted"] = json!(results.counted);
    value["excluded"] = json!(results.excluded);
    value["flags"] = json!(results.flags);
    value["quorum"] = json!(
        poll.quorum
            .map(|q| json!({"required": q, "met": results.quorum_met}))
    );
    value["stations"] = json!(
        results
            .stations
            .iter()
            .map(|s| {
                let mut v = summary_json(&s.summary);
                v["close_id"] = json!(s.close_id);
                v["officer"] = json!(s.officer);
                v
            })
            .collect::<Vec<_>>()
    );
    value["elsewhere"] = summary_json(&results.rest);

    let mut text = format!(
        "Poll: {}\nStatus: {}{}\nTiebreak seed (the open's id): {}\n",
        esc(&poll.question),
        poll.stage,
        match &poll.close_id {
            // The close op's id (who closed is in its signature): "closed by" names a
            // member everywhere else.
            Some(close) => format!(" (the close: {})", short(close)),
            None => " (provisional: not closed yet)".into(),
        },
        results.seed
    );
    if poll.opens_at.is_some() || poll.closes_at.is_some() {
        text.push_str(&format!(
            "Advisory times (not enforced): opens {}, closes {}\n",
            poll.opens_at.as_deref().unwrap_or("-"),
            poll.closes_at.as_deref().unwrap_or("-")
        ));
    }
    text.push_str(&format!(
        "Counted: {} of an electorate of {}; excluded: {}\n\n",
        results.counted,
        poll.electorate.unwrap_or(0),
        results.excluded.len()
    ));
    match &counted {
        Some(result) => text.push_str(render_text(result).trim_end_matches('\n')),
        None => text.push_str("No ballots counted yet."),
    }
    if !results.stations.is_empty() {
        text.push_str("\n\nPolling stations:");
        for station in &results.stations {
            text.push_str(&format!(
                "\n  closed by {} ({}): {}; totals: {}",
                short(&station.officer),
                short(&station.close_id),
                count(station.summary.ballot_count(), "ballot", "ballots"),
                totals_line(&station.summary)
            ));
        }
        text.push_str(&format!(
            "\n  elsewhere: {}; totals: {}",
            count(results.rest.ballot_count(), "ballot", "ballots"),
            totals_line(&results.rest)
        ));
    }
    if !results.excluded.is_empty() {
        text.push_str("\n\nExcluded ballots:");
        for e in &results.excluded {
            text.push_str(&format!(
                "\n  {} by {} (revision {}): {}{}",
                short(&e.ballot_id),
                short(&e.member_id),
                e.revision,
                e.reason.replace('_', " "),
                e.detail
                    .as_ref()
                    .map(|d| format!(" ({})", esc(d)))
                    .unwrap_or_default()
            ));
        }
    }
    if let (Some(q), Some(met)) = (poll.quorum, results.quorum_met) {
        text.push_str(&format!(
            "\n\nQuorum: {q} ballots — {}",
            if met { "met" } else { "NOT met" }
        ));
    }
    if !results.flags.is_empty() {
        text.push_str("\n\nFlags:");
        for flag in &results.flags {
            text.push_str(&format!("\n  {}: {}", flag.kind, esc(&flag.message)));
        }
    }
    Ok((value, text))
}
