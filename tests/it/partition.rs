//! Three running nodes (real `moot serve` processes, loopback, mDNS off) split into two
//! partitions — the hall and North together, South alone — while everyone keeps editing a
//! proposal and voting; when South dials the hall again, all three converge on the same text
//! (both sides' edits kept) and, after the returning officer's close, the same result.

use std::time::Duration;

use serde_json::Value;

use crate::node::Data;
use crate::serving::{serve, stop};

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

    // All three connected: North joins with the hall's ticket, South from a bundle (a node that
    // joined by ticket keeps that node connected whenever it serves, and South must be able to
    // serve apart below); both serve, dialing the hall.
    let (hall_node, ready) = serve(&hall, &[]);
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    north.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    let bundle = south.dir().join("hub.bundle");
    let bundle = bundle.to_str().unwrap();
    hall.ok(&["bundle", "export", bundle]);
    south.ok(&["bundle", "import", bundle]);
    let (north_node, _) = serve(&north, &[&hall_addr]);
    let (south_node, _) = serve(&south, &[&hall_addr]);
    let base = text(&hall, &proposal);
    for data in [&north, &south] {
        crate::serving::eventually(
            "every node holds the proposal",
            Duration::from_secs(30),
            || data.run(&["proposal", "show", &proposal]).0 == 0 && text(data, &proposal) == base,
        );
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
    crate::serving::eventually(
        "the hall and North converge with each other",
        Duration::from_secs(30),
        || text(&hall, &proposal) == text(&north, &proposal),
    );
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
    crate::serving::eventually(
        "all three show the same text",
        Duration::from_secs(30),
        || {
            let t = text(&hall, &proposal);
            t == text(&north, &proposal) && t == text(&south, &proposal) && t.contains("all ")
        },
    );
    let healed = text(&south, &proposal);
    for piece in ["[hall]", "(north)", "all "] {
        assert!(healed.contains(piece), "{piece:?} lost in {healed:?}");
    }

    // The returning officer closes once the hall holds every member's ballot (a close counts
    // what is in its causal past, and North's ballot may still be on its way).
    crate::serving::eventually(
        "the hall holds the three members' ballots",
        Duration::from_secs(30),
        || hall.ok(&["poll", "results", &poll])["ballots"] == 3,
    );
    hall.ok(&["poll", "close", &poll]);
    crate::serving::eventually(
        "every node shows the closed result",
        Duration::from_secs(30),
        || {
            [&north, &south]
                .iter()
                .all(|d| d.ok(&["poll", "results", &poll])["stage"] == "closed")
        },
    );
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
