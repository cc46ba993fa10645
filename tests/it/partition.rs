//! Three running nodes (real `moot serve` processes, loopback, mDNS off) split into two
//! partitions — the hall and North together, South alone — while everyone keeps editing a
//! proposal and voting; when South dials the hall again, all three converge on the same text
//! (both sides' edits kept) and, after the returning officer's close, the same result.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::Data;

fn serve(data: &Data, peers: &[&str]) -> (Child, Value) {
    let mut args = vec![
        "--data".to_string(),
        data.path(),
        "--json".into(),
        "serve".into(),
        "--listen".into(),
        "/ip4/127.0.0.1/tcp/0".into(),
        "--no-mdns".into(),
    ];
    for peer in peers {
        args.push("--peer".into());
        args.push(peer.to_string());
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    (child, ready)
}

fn stop(mut child: Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit}");
}

fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn text(data: &Data, proposal: &str) -> String {
    data.ok(&["proposal", "show", proposal])["text"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn three_running_nodes_partition_edit_and_vote_apart_then_heal_to_one_state() {
    let (hall, north, south) = (Data::new(), Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let mut members = Vec::new();
    for (data, name) in [(&north, "Nell"), (&south, "Sam")] {
        let id = data.ok(&["init", "--name", name])["member_id"]
            .as_str()
            .unwrap()
            .to_string();
        hall.ok(&["member", "add", &id, "--name", name]);
        members.push(id);
    }
    let proposal = hall.ok(&[
        "proposal",
        "create",
        "--assembly",
        "activism",
        "--title",
        "Bus campaign",
        "--body",
        "We campaign for free buses.",
    ])["proposal_id"]
        .as_str()
        .unwrap()
        .to_string();
    let poll = hall.ok(&[
        "poll",
        "create",
        "--assembly",
        "activism",
        "--question",
        "Which campaign first?",
        "--option",
        "Buses",
        "--option",
        "Bikes",
        "--option",
        "Trams",
    ])["poll_id"]
        .as_str()
        .unwrap()
        .to_string();
    hall.ok(&["poll", "open", &poll]);

    // All three connected: the branches join with the hall's ticket and serve, dialing it.
    let (hall_node, ready) = serve(&hall, &[]);
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    north.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    south.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    let (north_node, _) = serve(&north, &[&hall_addr]);
    let (south_node, _) = serve(&south, &[&hall_addr]);
    let base = text(&hall, &proposal);
    for data in [&north, &south] {
        eventually("every node holds the proposal", || {
            data.run(&["proposal", "show", &proposal]).0 == 0 && text(data, &proposal) == base
        });
    }

    // The partition: South's node restarts dialing no one, and nobody dials it.
    stop(south_node);
    let (south_node, _) = serve(&south, &[]);

    // Apart: edits and ballots on both sides (through the running nodes' sockets).
    hall.ok(&[
        "proposal", "edit", &proposal, "--at", "0", "--insert", "[hall] ",
    ]);
    let end = base.encode_utf16().count().to_string();
    north.ok(&[
        "proposal", "edit", &proposal, "--at", &end, "--insert", " (north)",
    ]);
    south.ok(&[
        "proposal", "edit", &proposal, "--at", "3", "--insert", "all ",
    ]);
    hall.ok(&[
        "vote", &poll, "--score", "Buses=5", "--score", "Bikes=2", "--score", "Trams=0",
    ]);
    north.ok(&[
        "vote", &poll, "--score", "Buses=1", "--score", "Bikes=5", "--score", "Trams=3",
    ]);
    south.ok(&[
        "vote", &poll, "--score", "Buses=2", "--score", "Bikes=0", "--score", "Trams=5",
    ]);
    // South changes its mind while apart: the later revision counts.
    south.ok(&[
        "vote", &poll, "--score", "Buses=4", "--score", "Bikes=0", "--score", "Trams=5",
    ]);
    eventually("the hall and North converge with each other", || {
        text(&hall, &proposal) == text(&north, &proposal)
    });
    let apart = text(&hall, &proposal);
    assert!(
        apart.contains("[hall]") && apart.contains("(north)"),
        "{apart}"
    );
    assert!(
        !apart.contains("all "),
        "South's edit crossed the partition: {apart}"
    );
    assert!(!text(&south, &proposal).contains("[hall]"));

    // Heal: South dials the hall (through its running node).
    south.ok(&["sync", "--peer", &hall_addr, "--timeout", "20"]);
    eventually("all three show the same text", || {
        let t = text(&hall, &proposal);
        t == text(&north, &proposal) && t == text(&south, &proposal) && t.contains("all ")
    });
    let healed = text(&south, &proposal);
    for piece in ["[hall]", "(north)", "all "] {
        assert!(healed.contains(piece), "{piece:?} lost in {healed:?}");
    }

    // The returning officer closes once the hall holds every member's ballot (a close counts
    // what is in its causal past, and North's ballot may still be on its way).
    eventually("the hall holds the three members' ballots", || {
        hall.ok(&["poll", "results", &poll])["ballots"] == 3
    });
    hall.ok(&["poll", "close", &poll]);
    eventually("every node shows the closed result", || {
        [&north, &south]
            .iter()
            .all(|d| d.ok(&["poll", "results", &poll])["stage"] == "closed")
    });
    let results: Vec<Value> = [&hall, &north, &south]
        .iter()
        .map(|d| d.ok(&["poll", "results", &poll]))
        .collect();
    assert_eq!(results[0]["counted"], 3, "{}", results[0]);
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    // The same proposal state everywhere, not only the text.
    let shown: Vec<Value> = [&hall, &north, &south]
        .iter()
        .map(|d| d.ok(&["proposal", "show", &proposal]))
        .collect();
    for s in &shown[1..] {
        assert_eq!(s, &shown[0]);
    }
    stop(south_node);
    stop(north_node);
    stop(hall_node);
}
