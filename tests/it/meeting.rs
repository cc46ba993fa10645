//! The offline branch meeting (issue 11, 4b), end to end through real `moot` processes on
//! loopback (mDNS off): a hall node (the returning officer) and three branch laptops, each
//! branch's officer a station officer of one STAR poll of the Activism Society. The nodes sync
//! first (a ticket join); then, with no node serving, each branch's members vote in turn on its
//! laptop (`--as`, keys held there) and its officer closes the branch's station. Two branches
//! reconnect over the network, the third only through a bundle carried to the hall; the
//! returning officer closes the poll; everything syncs. Every node then shows the same result,
//! equal to `moot tally` over all the final ballots with the poll's seed, with each station's
//! figures in it. And `moot demo`, which runs the same meeting by itself and must find the same.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::node::Data;
use crate::polls::{assert_equals_tally, assert_shares_add_up};
use crate::serving::stop;

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

/// One branch: its laptop, its officer (the node's own key, the poll's station officer) and
/// the member keys held on the laptop.
struct Branch {
    name: &'static str,
    data: Data,
    officer: String,
    members: Vec<String>,
}

const OPTIONS: [&str; 3] = ["Rent", "Repairs", "Buses"];

/// Casts a ballot on `data` (as `who`, `None`: the node's own key) → (ballot id, revision).
fn vote(data: &Data, poll: &str, who: Option<&str>, scores: [u8; 3]) -> (String, u64) {
    let pairs: Vec<String> = OPTIONS
        .iter()
        .zip(scores)
        .map(|(o, s)| format!("{o}={s}"))
        .collect();
    let mut args: Vec<&str> = Vec::new();
    if let Some(who) = who {
        args.extend(["--as", who]);
    }
    args.extend(["vote", poll]);
    for pair in &pairs {
        args.extend(["--score", pair]);
    }
    let cast = data.ok(&args);
    (
        field(&cast, "ballot_id"),
        cast["revision"].as_u64().unwrap(),
    )
}

/// The path of a file beside a node's data directory.
fn beside(data: &Data, name: &str) -> String {
    data.0.path().join(name).display().to_string()
}

#[test]
fn the_offline_branch_meeting_gives_every_node_the_tally_of_all_ballots() {
    let started = std::time::Instant::now();
    let hall = Data::new();
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside Tenants"]);

    // Three branch laptops, each with its officer and two more members' keys; the steward
    // admits them all at the hall (the ids are read out to her, no sync needed).
    let branches: Vec<Branch> = [
        ("North", "Nell", ["Ned", "Nia"]),
        ("South", "Sam", ["Sol", "Sue"]),
        ("West", "Wren", ["Wes", "Wim"]),
    ]
    .into_iter()
    .map(|(name, officer, others)| {
        let data = Data::new();
        let officer_id = field(&data.ok(&["init", "--name", officer]), "member_id");
        hall.ok(&["member", "add", &officer_id, "--name", officer]);
        let members = others
            .iter()
            .map(|who| {
                let id = field(&data.ok(&["key", "new", "--name", who]), "member_id");
                hall.ok(&["member", "add", &id, "--name", who]);
                id
            })
            .collect();
        Branch {
            name,
            data,
            officer: officer_id,
            members,
        }
    })
    .collect();

    // Fay (the poll's creator: its returning officer) asks the Activism Society, with each
    // branch's officer a station officer, and opens the poll: all ten members vote.
    let mut create = vec![
        "poll",
        "create",
        "--assembly",
        "activism",
        "--question",
        "Which campaign first?",
    ];
    for option in OPTIONS {
        create.extend(["--option", option]);
    }
    for branch in &branches {
        create.extend(["--station", &branch.officer]);
    }
    let poll = field(&hall.ok(&create), "poll_id");
    let opened = hall.ok(&["poll", "open", &poll]);
    assert_eq!(opened["electorate"], 10, "{opened}");
    let seed = field(&opened, "seed");

    // The branches sync first: the hall serves, each laptop joins with its ticket.
    let (server, ready) = crate::serving::serve(&hall, &[]);
    let ticket = field(&ready, "ticket");
    std::thread::scope(|s| {
        for branch in &branches {
            let ticket = &ticket;
            s.spawn(move || branch.data.ok(&["hub", "join", ticket, "--timeout", "20"]));
        }
    });
    stop(server);
    for branch in &branches {
        let polls = branch.data.ok(&["polls"]);
        assert_eq!(
            polls["polls"][0]["stage"], "open",
            "{}: {polls}",
            branch.name
        );
    }

    // Disconnected: no node serves. On each laptop the members vote in turn (keys held
    // there, `--as`), the officer too; one member per branch changes their mind (North and
    // West: a re-cast), then the officer closes the branch's station. Fay votes at the hall.
    let plan: [[[u8; 3]; 3]; 3] = [
        [[5, 3, 0], [4, 4, 1], [2, 3, 5]],
        [[1, 5, 2], [5, 2, 0], [3, 4, 4]],
        [[5, 1, 3], [2, 5, 0], [5, 3, 1]],
    ];
    let first_thoughts = [Some([0, 2, 5]), None, Some([2, 4, 0])];
    // The ballots that count: each member's latest (scores for Rent, Repairs, Buses).
    let mut finals: Vec<[u8; 3]> = Vec::new();
    let mut superseded: Vec<(String, String)> = Vec::new();
    let mut stations: Vec<String> = Vec::new();
    for ((branch, scores), first) in branches.iter().zip(plan).zip(first_thoughts) {
        let data = &branch.data;
        let (_, revision) = vote(data, &poll, None, scores[0]);
        assert_eq!(revision, 1);
        let [a, b] = [&branch.members[0], &branch.members[1]];
        vote(data, &poll, Some(a), scores[1]);
        if let Some(first) = first {
            let (ballot, revision) = vote(data, &poll, Some(b), first);
            assert_eq!(revision, 1);
            superseded.push((ballot, b.clone()));
        }
        let (_, revision) = vote(data, &poll, Some(b), scores[2]);
        assert_eq!(revision, if first.is_some() { 2 } else { 1 });
        finals.extend(scores);
        let closed = data.ok(&["poll", "close-station", &poll]);
        stations.push(field(&closed, "close_id"));
        // Offline, the laptop counts its own ballots only.
        let provisional = data.ok(&["poll", "results", &poll]);
        assert_eq!(provisional["counted"], 3, "{}: {provisional}", branch.name);
        assert_eq!(provisional["stage"], "open");
    }
    vote(&hall, &poll, None, [2, 5, 1]);
    finals.push([2, 5, 1]);
    let apart = hall.ok(&["poll", "results", &poll]);
    assert_eq!(
        apart["counted"], 1,
        "the hall holds only Fay's ballot: {apart}"
    );

    // North and South reconnect over the network; West has no network: its officer carries a
    // bundle to the hall, imported there while the hall serves (through its control socket).
    let (server, ready) = crate::serving::serve(&hall, &[]);
    let addr = ready["listen"][0].as_str().unwrap().to_string();
    for branch in &branches[..2] {
        let synced = branch
            .data
            .ok(&["sync", "--peer", &addr, "--timeout", "20"]);
        assert_eq!(synced["complete"], true, "{}: {synced}", branch.name);
    }
    let west = &branches[2];
    let carried = beside(&west.data, "west.bundle");
    west.data.ok(&["bundle", "export", &carried]);
    let imported = hall.ok(&["bundle", "import", &carried]);
    assert!(imported["new_ops"].as_u64().unwrap() >= 6, "{imported}");
    let merge = &imported["merge"];
    assert_eq!(merge["polls"][0]["poll_id"], poll.as_str(), "{merge}");
    assert_eq!(
        merge["polls"][0]["theirs_only"], 4,
        "West's ballots: {merge}"
    );
    assert_eq!(
        merge["polls"][0]["ours_only"], 8,
        "Fay's, North's and South's: {merge}"
    );
    assert_eq!(merge["polls"][0]["voted_on_both_sides"], json!([]));
    // `moot merges` on the hall shows the bundle's report.
    let merges = hall.ok(&["merges"]);
    let from_bundle: Vec<&Value> = merges["merges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["source"].as_str().unwrap().contains("west.bundle"))
        .collect();
    assert_eq!(from_bundle, [merge], "{merges}");

    // The returning officer closes the poll at the hall, with every station in its past.
    let close = field(&hall.ok(&["poll", "close", &poll]), "close_id");
    // Everything syncs: North and South over the network, West by a bundle back.
    for branch in &branches[..2] {
        branch
            .data
            .ok(&["sync", "--peer", &addr, "--timeout", "20"]);
    }
    stop(server);
    let back = beside(&hall, "hall.bundle");
    hall.ok(&["bundle", "export", &back]);
    west.data.ok(&["bundle", "import", &back]);

    // Every node shows the same result.
    let nodes: Vec<(&str, &Data)> = std::iter::once(("Hall", &hall))
        .chain(branches.iter().map(|b| (b.name, &b.data)))
        .collect();
    let results: Vec<Value> = nodes
        .iter()
        .map(|(_, data)| data.ok(&["poll", "results", &poll]))
        .collect();
    for ((name, _), shown) in nodes.iter().zip(&results).skip(1) {
        assert_eq!(shown, &results[0], "{name} differs from the hall");
    }
    let results = &results[0];
    assert_eq!(results["stage"], "closed", "{results}");
    assert_eq!(results["close_id"], close.as_str());
    assert_eq!(results["seed"], seed.as_str());
    assert_eq!(results["counted"], 10);
    assert_eq!(results["flags"], json!([]), "{results}");
    let mut excluded: Vec<(String, String)> = results["excluded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["reason"], "superseded_revision", "{e}");
            (field(e, "ballot_id"), field(e, "member_id"))
        })
        .collect();
    excluded.sort();
    superseded.sort();
    assert_eq!(excluded, superseded);

    // Equal to `moot tally` over all the final ballots together, with the poll's seed.
    let mut csv = format!("{}\n", OPTIONS.join(","));
    for scores in &finals {
        let row: Vec<String> = scores.iter().map(u8::to_string).collect();
        csv.push_str(&row.join(","));
        csv.push('\n');
    }
    assert_equals_tally(&hall, results, &csv, "1");
    assert_eq!(results["winners"], json!(["Repairs"]), "{results}");
    assert_eq!(
        results["runoff"]["a_votes"].as_u64().unwrap()
            + results["runoff"]["b_votes"].as_u64().unwrap(),
        9,
        "{results}"
    );

    // Each branch's station holds its three ballots, with its figures; Fay's is elsewhere;
    // the stations and elsewhere add up to the totals.
    let shown = results["stations"].as_array().unwrap();
    assert_eq!(shown.len(), 3, "{results}");
    for ((branch, close_id), scores) in branches.iter().zip(&stations).zip(plan) {
        let station = shown
            .iter()
            .find(|s| s["close_id"] == close_id.as_str())
            .unwrap_or_else(|| panic!("{}'s station not in {results}", branch.name));
        assert_eq!(station["officer"], branch.officer.as_str());
        assert_eq!(station["ballots"], 3);
        for (i, option) in OPTIONS.iter().enumerate() {
            let expected: u64 = scores.iter().map(|s| u64::from(s[i])).sum();
            let got = station["options"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == *option)
                .unwrap();
            assert_eq!(got["total"], expected, "{} {option}", branch.name);
        }
    }
    assert_eq!(results["elsewhere"]["ballots"], 1);
    assert_shares_add_up(results);

    // The count checks out from the signed ops on the hall and on the bundle-only branch.
    for data in [&hall, &west.data] {
        assert_eq!(data.ok(&["poll", "verify", &poll])["ok"], true);
    }
    eprintln!("the offline branch meeting took {:?}", started.elapsed());
}

/// The ballots `moot demo` casts that count (each member's latest), for Rent freeze, Repairs
/// now and Cheaper buses: written out here, apart from the demo's code, as the test's oracle.
const DEMO_FINAL_BALLOTS: &str = "Rent freeze,Repairs now,Cheaper buses
5,3,0
4,4,1
2,3,5
1,5,2
5,2,0
3,4,4
5,1,3
2,5,0
5,3,1
2,5,1
";

#[test]
fn moot_demo_runs_the_meeting_every_node_agrees_and_it_cleans_up() {
    // The user's own settings must not reach the demo's nodes.
    let out = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["demo", "--json"])
        .env("MOOT_DATA", "/nonexistent/moot")
        .env("MOOT_AS", "not-a-member")
        .env("MOOT_HUB", "not-a-hub")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let demo = crate::json(&out);
    assert_eq!(demo["agreed"], true, "{demo}");
    assert_eq!(demo["kept"], false);
    let dir = field(&demo, "dir");
    assert!(
        !std::path::Path::new(&dir).exists(),
        "the temporary directory {dir} is removed"
    );
    let names: Vec<&str> = demo["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Hall", "North", "South", "West"]);
    let steps = demo["steps"].as_array().unwrap();
    assert!(steps.len() >= 8, "{demo}");
    assert!(
        steps
            .iter()
            .any(|s| s["title"] == "West meets offline" && s["says"].as_array().unwrap().len() >= 4),
        "{demo}"
    );
    // The bundle West carried: its four ballots (a re-cast among them) were the hall's news.
    assert_eq!(demo["merge"]["polls"][0]["theirs_only"], 4, "{demo}");
    assert_eq!(demo["merge"]["polls"][0]["ours_only"], 8, "{demo}");
    let result = &demo["result"];
    assert_eq!(result["poll_id"], demo["poll_id"]);
    assert_eq!(result["stage"], "closed");
    assert_eq!(result["counted"], 10);
    assert_eq!(result["winners"], json!(["Repairs now"]), "{result}");
    let stations = result["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 3);
    // The stations come in causal order, then by id: the branches' order is not theirs.
    let mut shown: Vec<&Value> = stations.iter().map(|s| &s["close_id"]).collect();
    let mut closed: Vec<&Value> = demo["stations"].as_array().unwrap().iter().collect();
    shown.sort_by_key(|v| v.to_string());
    closed.sort_by_key(|v| v.to_string());
    assert_eq!(shown, closed);
    for station in stations {
        assert_eq!(station["ballots"], 3, "{station}");
    }
    assert_shares_add_up(result);
    let scratch = Data::new();
    assert_equals_tally(&scratch, result, DEMO_FINAL_BALLOTS, "1");
}

#[test]
fn moot_demo_narrates_and_keeps_its_nodes_under_dir() {
    let scratch = Data::new();
    let dir = scratch.0.path().join("meeting");
    let out = crate::moot(&["demo", "--dir", dir.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "North meets offline",
        "Wim changes their mind and votes again",
        "closes the West station",
        "West exports",
        "The hall's merge report (`moot merges`):",
        "4 ballots from them only, 8 ours only",
        "Winner: Repairs now",
        "Polling stations:",
        "All 4 nodes show the same result",
    ] {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
    // The nodes are kept, stopped: their results can be read again, the same on each.
    let poll = text
        .lines()
        .find_map(|l| l.split("poll results ").nth(1))
        .unwrap()
        .trim_end_matches("`).")
        .to_string();
    let read = |node: &str| {
        let data = dir.join(node).display().to_string();
        crate::json(&crate::moot(
            &["--data", &data, "--json", "poll", "results", &poll],
            None,
        ))
    };
    let hall = read("hall");
    assert_eq!(hall["winners"], json!(["Repairs now"]));
    for node in ["north", "south", "west"] {
        assert_eq!(read(node), hall, "{node}");
    }
    // A directory that holds something is not the demo's to use.
    let out = crate::moot(&["demo", "--dir", dir.to_str().unwrap(), "--json"], None);
    assert_eq!(out.status.code(), Some(2));
    let error: Value = serde_json::from_slice(&out.stderr).unwrap();
    assert_eq!(error["error"]["kind"], "bad_input", "{error}");
}
