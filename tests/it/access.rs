//! Access control on the network, through real `moot serve` processes (loopback, mDNS off): a
//! members-only hub gives a stranger nothing at all, a guest its public lane only, and a
//! member's new device everything (vouched for by its member's certificate before the roll
//! knows it); a member removed while connected stops receiving the members lane at once, while
//! the connection goes on carrying the public lane.

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
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting until {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn id(data: &Data, name: &str) -> String {
    data.ok(&["init", "--name", name])["member_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn assembly_names(data: &Data) -> Vec<String> {
    data.ok(&["assemblies"])["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

/// Ops of the hub held by `data`, by exporting what it holds.
fn op_count(data: &Data) -> u64 {
    let path = data.0.path().join("count.bundle");
    data.ok(&["bundle", "export", path.to_str().unwrap()])["ops"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_members_only_hub_gives_strangers_nothing_guests_the_public_lane_and_new_devices_all() {
    let (hall, newcomer, guest, stranger) = (Data::new(), Data::new(), Data::new(), Data::new());
    id(&hall, "Fay");
    hall.ok(&["hub", "create", "Riverside"]);
    let nia = id(&newcomer, "Nia");
    let gus = id(&guest, "Gus");
    id(&stranger, "Sly");
    hall.ok(&["member", "add", &nia, "--name", "Nia"]);
    hall.ok(&["member", "add", &gus, "--name", "Gus", "--role", "guest"]);
    let set = hall.ok(&["hub", "access", "members-only"]);
    assert_eq!(set["access"], "members-only");
    assert_eq!(hall.ok(&["hub", "show"])["access"], "members-only");
    hall.ok(&[
        "assembly",
        "create",
        "--kind",
        "working-group",
        "--public",
        "Open kitchen",
    ]);
    hall.ok(&[
        "assembly",
        "create",
        "--kind",
        "working-group",
        "Strike fund",
    ]);
    let (hall_node, ready) = serve(&hall, &[]);
    let ticket = ready["ticket"].as_str().unwrap().to_string();

    // The stranger: nothing at all, not even the genesis.
    let (code, _, err) = stranger.run(&["hub", "join", &ticket, "--timeout", "5"]);
    assert_ne!(code, 0, "a stranger joined a members-only hub: {err}");
    assert_eq!(op_count(&stranger), 0, "a stranger received ops");

    // The member's new device (never seen by the hall): vouched for by its certificate, it
    // gets everything, and then certifies itself.
    let joined = newcomer.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    assert_eq!(joined["name"], "Riverside");
    let names = assembly_names(&newcomer);
    assert!(
        names.contains(&"Strike fund".to_string()),
        "the member lacks the members lane: {names:?}"
    );

    // The guest: the public lane only.
    guest.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    let names = assembly_names(&guest);
    assert!(names.contains(&"Open kitchen".to_string()), "{names:?}");
    assert!(
        !names.contains(&"Strike fund".to_string()),
        "a guest got the members lane: {names:?}"
    );
    assert!(op_count(&guest) < op_count(&newcomer));
    stop(hall_node);
}

#[test]
fn a_member_removed_mid_connection_stops_receiving_the_members_lane() {
    let (hall, branch) = (Data::new(), Data::new());
    id(&hall, "Fay");
    hall.ok(&["hub", "create", "Riverside"]);
    let bob = id(&branch, "Bob");
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    let (hall_node, ready) = serve(&hall, &[]);
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    branch.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    let (branch_node, _) = serve(&branch, &[&hall_addr]);
    hall.ok(&["assembly", "create", "--kind", "working-group", "Before"]);
    eventually("the member receives the members lane", || {
        assembly_names(&branch).contains(&"Before".to_string())
    });

    // Removed while connected: the next members-lane op does not reach the branch, though the
    // connection carries on (a public op written after it does arrive).
    hall.ok(&["member", "remove", &bob]);
    hall.ok(&["assembly", "create", "--kind", "working-group", "After"]);
    hall.ok(&[
        "assembly",
        "create",
        "--kind",
        "working-group",
        "--public",
        "Public after",
    ]);
    eventually("the public op reaches the removed member's node", || {
        assembly_names(&branch).contains(&"Public after".to_string())
    });
    let names = assembly_names(&branch);
    assert!(
        !names.contains(&"After".to_string()),
        "a removed member still receives the members lane: {names:?}"
    );
    let peers = hall.ok(&["peers"]);
    assert_eq!(peers["peers"][0]["lanes"], "public", "{peers}");
    stop(branch_node);
    stop(hall_node);
}
