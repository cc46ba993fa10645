//! The node on the network through the binary, loopback only and mDNS off: `moot serve` in
//! one data directory, `moot sync --peer` from another. A member just admitted gets the
//! members lane once its device presents its certificate; a stranger gets the public lane
//! only. SIGINT stops `serve` cleanly.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::Value;

use crate::node::Data;

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

/// `moot serve` on 127.0.0.1 (mDNS off) → the child and its first listen address.
fn serve(data: &Data) -> (Child, String) {
    let (child, ready) = serve_ready(data);
    (child, ready["listen"][0].as_str().unwrap().to_string())
}

/// `moot serve` on 127.0.0.1 (mDNS off) → the child and its ready line.
fn serve_ready(data: &Data) -> (Child, Value) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args([
            "--data",
            &data.path(),
            "--json",
            "serve",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--http",
            "127.0.0.1:0",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
    let addr = ready["listen"][0].as_str().unwrap().to_string();
    assert!(addr.starts_with("/ip4/127.0.0.1/tcp/"), "{addr}");
    (child, ready)
}

fn stop(child: Child) {
    stop_with(child, "-INT");
}

/// Sends `signal` (as `kill` takes it) to the node; it must exit 0.
fn stop_with(mut child: Child, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit}");
}

/// SIGTERM (what a service manager sends) stops `serve` as cleanly as Ctrl-C: exit 0, its
/// socket removed, what it stored kept, and the next `serve` starts at once.
#[test]
fn sigterm_stops_serve_cleanly() {
    let hall = Data::new();
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let (server, _) = serve(&hall);
    assert!(hall.dir().join("moot.sock").exists());
    hall.ok(&["assembly", "create", "--kind", "working-group", "Choir"]);
    stop_with(server, "-TERM");
    assert!(!hall.dir().join("moot.sock").exists(), "its socket is left");
    let assemblies = hall.ok(&["assemblies"]);
    assert!(assemblies.to_string().contains("Choir"), "{assemblies}");
    let (again, _) = serve(&hall);
    stop_with(again, "-TERM");
}

#[test]
fn serve_and_sync_on_loopback_obey_the_roll() {
    let (hall, branch, stranger) = (Data::new(), Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    // The branch and the stranger know the hub from its genesis (a bundle, as a ticket would).
    let genesis = hall.0.path().join("genesis.bundle").display().to_string();
    hall.ok(&["bundle", "export", &genesis]);
    let bob = field(&branch.ok(&["init", "--name", "Bob"]), "member_id");
    branch.ok(&["bundle", "import", &genesis]);
    stranger.ok(&["init", "--name", "Sly"]);
    stranger.ok(&["bundle", "import", &genesis]);
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    let xena = field(&hall.ok(&["key", "new", "--name", "Xena"]), "member_id");
    hall.ok(&["member", "add", &xena, "--name", "Xena"]);
    let (server, addr) = serve(&hall);
    // The member: its device presents its certificate and receives the members lane (names).
    let synced = branch.ok(&["sync", "--peer", &addr, "--timeout", "20"]);
    assert_eq!(synced["peers"].as_array().unwrap().len(), 1);
    let members = branch.ok(&["members"]);
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"Xena"), "{members}");
    // The stranger: the public lane only — the admissions, not the names written since
    // (members-lane ops).
    stranger.ok(&["sync", "--peer", &addr, "--timeout", "20"]);
    let seen = stranger.ok(&["members"]);
    assert_eq!(seen["members"].as_array().unwrap().len(), 3);
    let names: Vec<&str> = seen["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        !names.contains(&"Xena") && !names.contains(&"Bob"),
        "{seen}"
    );
    stop(server);
}

#[test]
fn a_new_node_joins_with_the_ticket_serve_prints() {
    let (hall, newcomer) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    let hub = field(&hall.ok(&["hub", "create", "Riverside"]), "hub_id");
    let (server, ready) = serve_ready(&hall);
    let ticket = field(&ready, "ticket");
    newcomer.ok(&["init", "--name", "Nia"]);
    let joined = newcomer.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    assert_eq!(joined["hub_id"], hub.as_str());
    assert_eq!(joined["name"], "Riverside");
    let hubs = newcomer.ok(&["hubs"]);
    assert_eq!(hubs["hubs"][0]["name"], "Riverside");
    assert_eq!(hubs["hubs"][0]["default"], true);
    // A damaged ticket is bad input.
    let (code, _, stderr) = newcomer.run(&["hub", "join", "moot1zz"]);
    assert_eq!(code, 2, "{stderr}");
    stop(server);
}

#[test]
fn the_first_serve_on_an_empty_data_directory_makes_keys_and_says_what_next() {
    // Without the web UI (`--no-http`): with it, the node waits for a hub made there.
    let fresh = Data::new();
    let first = fresh.ok(&["serve", "--no-mdns", "--no-http"]);
    assert_eq!(field(&first, "member_id").len(), 64);
    assert!(first["next"].to_string().contains("moot hub join"));
    assert_eq!(fresh.ok(&["id"])["member_id"], first["member_id"]);
    // Keys, but no hub yet: refused, saying how to get one.
    let (code, _, stderr) = fresh.run(&["serve", "--no-mdns", "--no-http"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("moot hub create"), "{stderr}");
}

/// A `--peer` that is not an address is bad input before anything starts: no ready line, no
/// node (it was checked only once the node ran, after the ready line).
#[test]
fn serve_refuses_a_bad_peer_before_it_starts() {
    let hall = Data::new();
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let data = hall.path();
    let out = crate::moot(
        &[
            "--data",
            &data,
            "--json",
            "serve",
            "--no-mdns",
            "--no-http",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--peer",
            "junk",
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let error: Value = serde_json::from_str(stderr.trim()).unwrap();
    assert_eq!(error["error"]["kind"], "bad_input", "{error}");
}

/// A big hub (`members` and `more` ops beyond them) imported from a bundle into `full`, and its
/// genesis alone into `bare`.
fn big_hub(full: &Data, bare: &Data, members: usize, more: usize) {
    let (hub, ops) = moot_state::sample::history(members, more);
    let header = moot_bundle::Header {
        hub: hub.0,
        lanes: moot_bundle::Lanes::ALL,
    };
    let mut writer = moot_bundle::Writer::new(Vec::new(), &header).unwrap();
    for op in &ops {
        writer.op(op).unwrap();
    }
    let big = full.0.path().join("big.bundle");
    std::fs::write(&big, writer.finish().unwrap()).unwrap();
    full.ok(&["bundle", "import", big.to_str().unwrap()]);
    let mut writer = moot_bundle::Writer::new(Vec::new(), &header).unwrap();
    writer.op(&ops[0]).unwrap();
    let genesis = bare.0.path().join("genesis.bundle");
    std::fs::write(&genesis, writer.finish().unwrap()).unwrap();
    bare.ok(&["bundle", "import", genesis.to_str().unwrap()]);
}

/// The public-lane ops `data` holds, counted through a bundle export.
fn public_ops(data: &Data) -> u64 {
    let path = data.0.path().join("check.bundle");
    data.ok(&[
        "bundle",
        "export",
        path.to_str().unwrap(),
        "--lane",
        "public",
    ])["ops"]
        .as_u64()
        .unwrap()
}

/// A one-shot `moot sync` that pushes more than it takes in ends only once its frames have all
/// been taken up by the peer: the branch holds a big hub and the hall only its genesis. (It
/// used to stop once nothing had come in for 1.5 s, which a push of this size outlasts in a
/// debug build, and report the sync complete with most of the hub left behind.)
#[test]
fn a_one_shot_sync_ends_only_once_its_push_is_taken_up() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Hall"]);
    branch.ok(&["init", "--name", "Branch"]);
    // 30,000 public-lane ops (what a stranger is given), which a debug build takes seconds
    // to take in.
    big_hub(&branch, &hall, 15_000, 0);
    let (server, addr) = serve(&hall);
    let report = branch.ok(&["sync", "--peer", &addr, "--timeout", "120"]);
    assert_eq!(report["complete"], true, "{report}");
    let want = public_ops(&branch);
    // The last frame taken up may still be being stored at the hall.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut held = public_ops(&hall);
    while held < want && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        held = public_ops(&hall);
    }
    stop(server);
    assert_eq!(held, want, "the hall holds what the branch pushed");
}

/// A running node killed with SIGKILL while it takes in a hub loses nothing it had stored: its
/// store opens again, the node serves again, and it catches up with the hall (issue 11, e).
#[test]
fn a_serving_node_killed_mid_sync_keeps_what_it_stored_and_catches_up() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Hall"]);
    branch.ok(&["init", "--name", "Branch"]);
    big_hub(&hall, &branch, 15_000, 0);
    let (hall_node, addr) = serve(&hall);
    let want = public_ops(&hall);
    let (node, _) = crate::serving::serve(&branch, &[&addr]);
    // Killed once some of the hub has been taken in, long before the end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut members = 0;
    while members < 100 {
        assert!(std::time::Instant::now() < deadline, "nothing arrived");
        std::thread::sleep(std::time::Duration::from_millis(50));
        members = branch.ok(&["hub", "show"])["members"].as_u64().unwrap_or(0);
    }
    let seen = branch.ok(&["hub", "show"])["members"].as_u64().unwrap();
    node.kill();
    assert!(seen < 15_001, "the sync finished before the kill");
    // What it showed as taken in is still there.
    let after = branch.ok(&["hub", "show"])["members"].as_u64().unwrap();
    assert!(
        after >= seen,
        "{after} members after the kill, {seen} before"
    );
    // Served again, it catches up.
    let (again, _) = crate::serving::serve(&branch, &[&addr]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while public_ops(&branch) < want {
        assert!(std::time::Instant::now() < deadline, "never caught up");
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    crate::serving::stop(again);
    stop(hall_node);
    assert_eq!(public_ops(&branch), want);
}

/// A one-shot sync whose peer goes away mid-push is not complete: it waits for the peer to
/// come back until its timeout and says so (it used to report the sync complete as soon as
/// the connection, and with it what was left to send, was gone).
#[test]
fn a_sync_whose_peer_dies_mid_push_is_not_complete() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Hall"]);
    branch.ok(&["init", "--name", "Branch"]);
    big_hub(&branch, &hall, 15_000, 0);
    let (mut server, addr) = serve(&hall);
    let sync = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &branch.path(), "--json", "sync", "--peer", &addr])
        .args(["--timeout", "6"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Killed once the push is under way (some of it taken in), long before its end.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while hall.ok(&["hub", "show"])["members"].as_u64().unwrap_or(0) < 100 {
        assert!(
            std::time::Instant::now() < deadline,
            "the push never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    server.kill().unwrap();
    server.wait().unwrap();
    let out = sync.wait_with_output().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{report} {stderr}");
    assert_eq!(report["complete"], false, "{report}");
}

/// A two-way one-shot sync waits a whole quiet spell after its push: the hall takes up the
/// branch's last frame before it handles it, and sends nothing meanwhile, so ending as soon as
/// the push was taken up left the hall's own ops behind. Both hold a hub of 50 members (the
/// hall as its founder, the branch as member 1); of 16,000 more ops, each in the chain of one
/// member's device, the branch holds those of a quarter of the devices and the hall the rest.
#[test]
fn a_two_way_sync_takes_in_everything_after_its_push() {
    let (hall, branch) = (Data::new(), Data::new());
    let members = 50;
    let (hub, ops) = moot_state::sample::history_with(members, 16_000, false);
    let base = 2 + 3 * members;
    let device_of = |op: &Vec<u8>| moot_crypto::SignedOp::decode(op).unwrap().author();
    // The branch's quarter: its push ends while the hall has much still to send.
    let quarter: std::collections::BTreeSet<_> = (1..=members)
        .filter(|n| n % 4 == 1)
        .map(|n| moot_state::sample::key(2, n).public())
        .collect();
    for (data, member, in_quarter) in [(&hall, 0, false), (&branch, 1, true)] {
        let held: Vec<Vec<u8>> = ops[..base]
            .iter()
            .chain(
                ops[base..]
                    .iter()
                    .filter(|op| quarter.contains(&device_of(op)) == in_quarter),
            )
            .cloned()
            .collect();
        let node = moot_node::Node::open(&data.dir()).unwrap();
        node.init_with_keys(
            "Someone",
            moot_state::sample::key(1, member),
            moot_state::sample::key(2, member),
        )
        .unwrap();
        node.import_hub(&hub, "Sample", &held).unwrap();
    }
    let count = |data: &Data| {
        let node = moot_node::Node::open(&data.dir()).unwrap();
        node.store().unwrap().op_count(&hub).unwrap()
    };
    let (before_hall, before_branch) = (count(&hall), count(&branch));
    assert!(before_hall < ops.len() as u64 && before_branch < ops.len() as u64);
    let (server, addr) = serve(&hall);
    let report = branch.ok(&["sync", "--peer", &addr, "--timeout", "120"]);
    assert_eq!(report["complete"], true, "{report}");
    stop(server);
    // The branch took in all the hall had for it before it ended, and the hall all it pushed.
    assert_eq!(count(&branch), ops.len() as u64, "{report}");
    assert_eq!(count(&hall), ops.len() as u64);
}

/// A sync whose every address refuses it ends at once with each address's error, not at its
/// timeout (a laptop in a hall whose node is down learns why now, and frees its data
/// directory); a peer reached beside an address that is not is synced with, and the other
/// address reported.
#[test]
fn a_sync_that_reaches_no_peer_says_why_at_once() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let genesis = hall.0.path().join("genesis.bundle").display().to_string();
    hall.ok(&["bundle", "export", &genesis]);
    branch.ok(&["init", "--name", "Bob"]);
    branch.ok(&["bundle", "import", &genesis]);
    // A loopback port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("/ip4/127.0.0.1/tcp/{port}");
    let started = std::time::Instant::now();
    let (code, _, stderr) = branch.run(&["sync", "--peer", &dead, "--timeout", "120"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(60),
        "waited {:?} for a refused dial",
        started.elapsed()
    );
    let error: Value = serde_json::from_str(stderr.trim()).unwrap();
    let message = error["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&dead) && message.contains("refused"),
        "{message}"
    );
    let (server, addr) = serve(&hall);
    let report = branch.ok(&["sync", "--peer", &addr, "--peer", &dead, "--timeout", "30"]);
    assert_eq!(report["peers"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["complete"], true, "{report}");
    let unreachable = report["unreachable"].as_array().unwrap();
    assert_eq!(unreachable.len(), 1, "{report}");
    assert_eq!(unreachable[0]["addr"], dead.as_str());
    stop(server);
}

/// A node killed with SIGKILL in the middle of a sync loses nothing it stored, and a second
/// sync completes it: both nodes end with the same ops (checked through their bundles).
#[test]
fn a_sync_killed_midway_resumes_and_converges() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Hall"]);
    branch.ok(&["init", "--name", "Branch"]);
    // A big hub at the hall; the branch knows it from its genesis.
    big_hub(&hall, &branch, 3_000, 20_000);
    let (server, addr) = serve(&hall);
    // Start a sync and kill it after a moment.
    let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &branch.path(), "--json", "sync", "--peer", &addr])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();
    // The store opens (nothing half-written), then a second sync completes it.
    let after_kill = branch.ok(&["hub", "show"]);
    // The kill landed mid-sync (a debug build takes seconds to check this hub's 23,000 ops).
    let members_after_kill = after_kill["members"].as_u64().unwrap();
    assert!(
        members_after_kill < 3_001,
        "the sync finished before the kill: {after_kill}"
    );
    branch.ok(&["sync", "--peer", &addr, "--timeout", "60"]);
    stop(server);
    assert_eq!(
        public_ops(&branch),
        public_ops(&hall),
        "after the kill: {after_kill}"
    );
    assert_eq!(
        branch.ok(&["members"])["members"].as_array().unwrap().len(),
        hall.ok(&["members"])["members"].as_array().unwrap().len()
    );
}

/// Three nodes on loopback through the CLI: they join with a ticket, vote while apart (the hall
/// not serving), heal by syncing through the hall, and after the returning officer's close all
/// three show the same result.
#[test]
fn three_nodes_vote_apart_heal_and_show_the_same_result() {
    let (hall, north, south) = (Data::new(), Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let nell = field(&north.ok(&["init", "--name", "Nell"]), "member_id");
    let sam = field(&south.ok(&["init", "--name", "Sam"]), "member_id");
    hall.ok(&["member", "add", &nell, "--name", "Nell"]);
    hall.ok(&["member", "add", &sam, "--name", "Sam"]);
    let poll = field(
        &hall.ok(&[
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            "Which campaign?",
            "--option",
            "Buses",
            "--option",
            "Bikes",
        ]),
        "poll_id",
    );
    hall.ok(&["poll", "open", &poll]);
    let (server, ready) = serve_ready(&hall);
    let ticket = field(&ready, "ticket");
    for branch in [&north, &south] {
        branch.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    }
    stop(server);
    // Apart: everyone votes on their own node.
    north.ok(&["vote", &poll, "--score", "Buses=5", "--score", "Bikes=1"]);
    south.ok(&["vote", &poll, "--score", "Buses=0", "--score", "Bikes=5"]);
    hall.ok(&["vote", &poll, "--score", "Buses=4", "--score", "Bikes=2"]);
    // Heal through the hall.
    let (server, addr) = serve(&hall);
    for branch in [&north, &south, &north] {
        branch.ok(&["sync", "--peer", &addr, "--timeout", "20"]);
    }
    stop(server);
    hall.ok(&["poll", "close", &poll]);
    let (server, addr) = serve(&hall);
    for branch in [&north, &south] {
        branch.ok(&["sync", "--peer", &addr, "--timeout", "20"]);
    }
    stop(server);
    let results: Vec<Value> = [&hall, &north, &south]
        .iter()
        .map(|d| d.ok(&["poll", "results", &poll]))
        .collect();
    assert_eq!(results[0]["counted"], 3);
    assert_eq!(results[0]["stage"], "closed");
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
}

/// A join cut short (killed: Ctrl-C, a laptop closed) while the hall is out of reach still
/// leaves the ticket's addresses remembered, so the newcomer's `moot serve` finds the hall once
/// it is back. Before, they were written only after the sync, and such a node knew of no peer.
#[test]
fn a_join_cut_short_leaves_serve_knowing_where_the_hub_is() {
    let (hall, newcomer) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let (server, ready) = serve_ready(&hall);
    let ticket = field(&ready, "ticket");
    let addr = ready["listen"][0].as_str().unwrap().to_string();
    let port = addr.split('/').nth(4).unwrap().to_string();
    let hall_id = addr.rsplit('/').next().unwrap().to_string();
    stop(server);
    // The hall's port answers TCP and nothing more (a machine that hangs): the join waits on
    // its handshake, and is killed meanwhile. (A refused dial would end the join at once.)
    let hang = std::net::TcpListener::bind(format!("127.0.0.1:{port}")).unwrap();
    newcomer.ok(&["init", "--name", "Nia"]);
    let mut join = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &newcomer.path(), "--json", "hub", "join", &ticket])
        .args(["--timeout", "60"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(2_000));
    assert!(
        join.try_wait().unwrap().is_none(),
        "the join ended before it was cut short"
    );
    join.kill().unwrap();
    join.wait().unwrap();
    drop(hang);
    // The hall is back on its port; the newcomer's node, told of no peer, reaches it.
    let listen = format!("/ip4/127.0.0.1/tcp/{port}");
    let (hall_node, _) =
        crate::serving::serve_with(&[], &hall, &["--listen", &listen, "--no-mdns"]);
    let (node, _) = crate::serving::serve(&newcomer, &[]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let peers = newcomer.ok(&["peers"]);
        let reached = peers["peers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["node_id"] == hall_id.as_str());
        if reached && newcomer.ok(&["hubs"])["hubs"][0]["name"] == "Riverside" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the newcomer never reached the hall: {peers}"
        );
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    crate::serving::stop(node);
    crate::serving::stop(hall_node);
}
