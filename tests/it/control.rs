//! While `moot serve` runs it owns the data directory; every other command on it runs through
//! the node's control socket and behaves as without it: same output, same exit codes, and
//! what it writes reaches connected peers at once. Loopback only, mDNS off.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::node::{Data, hub_with_fay};
use crate::serving::{serve, stop};

/// `moot` in `cwd` with no `--data` flag but `MOOT_DATA` (as a person in a shell would).
fn moot_in(cwd: &Path, data: &Data, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(args)
        .current_dir(cwd)
        .env("MOOT_DATA", data.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn names(assemblies: &Value) -> Vec<String> {
    assemblies["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn commands_run_through_a_running_node_and_reach_its_peers() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let bob = branch.ok(&["init", "--name", "Bob"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    // No node serving and no --addr: nothing to put in a ticket.
    let (code, _, err) = hall.run(&["hub", "ticket"]);
    assert_eq!(code, 2, "{err}");
    // Started with a soft limit of 1,024 open files (prlimit, from util-linux, where present),
    // which the node raises (below).
    let prlimit = Command::new("prlimit").arg("--version").output().is_ok();
    let (hall_node, ready) = if prlimit {
        crate::serving::serve_with(
            &["prlimit", "--nofile=1024:"],
            &hall,
            &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
        )
    } else {
        eprintln!("prlimit not found: the node's open-file limit is checked as it starts");
        serve(&hall, &[])
    };
    // While it serves, `hub ticket` gives the node's own.
    assert_eq!(hall.ok(&["hub", "ticket"])["ticket"], ready["ticket"]);
    let socket = hall.dir().join("moot.sock");
    assert!(socket.exists(), "{ready}");
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the socket is its owner's only");
    }
    // The node raised its soft limit on open files (peers' and pages' connections) to 16,384,
    // or to the hard limit if that is lower (never lowered it).
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", hall_node.pid().unwrap())).unwrap();
    let files: Vec<u64> = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .unwrap()
        .split_whitespace()
        .skip(3)
        .take(2)
        .map(|w| w.parse().unwrap_or(u64::MAX))
        .collect();
    let (soft, hard) = (files[0], files[1]);
    if prlimit {
        assert_eq!(soft, hard.min(16_384), "{limits}");
    } else {
        assert!(soft >= hard.min(16_384), "{limits}");
    }
    // A client that connects and sends nothing holds up no other command.
    let silent = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    let (done, finished) = std::sync::mpsc::channel();
    let data = hall.path();
    std::thread::spawn(move || {
        let _ = done.send(crate::moot(
            &["--data", &data, "--json", "assemblies"],
            None,
        ));
    });
    let out = finished
        .recv_timeout(Duration::from_secs(20))
        .expect("a command waited for a client that sent nothing");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(silent);
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    branch.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    let (branch_node, _) = serve(&branch, &[&hall_addr]);

    // A write on the hall while it serves: no waiting for the data directory, and it reaches
    // the connected branch (a member: the members lane) without another sync.
    let created = hall.ok(&["assembly", "create", "--kind", "working-group", "Choir"]);
    assert!(created["assembly_id"].is_string(), "{created}");
    crate::serving::eventually(
        "the branch shows the hall's new assembly",
        Duration::from_secs(30),
        || names(&branch.ok(&["assemblies"])).contains(&"Choir".to_string()),
    );
    // And the other way, written through the branch's socket.
    branch.ok(&["assembly", "create", "--kind", "working-group", "Garden"]);
    crate::serving::eventually(
        "the hall shows the branch's new assembly",
        Duration::from_secs(30),
        || names(&hall.ok(&["assemblies"])).contains(&"Garden".to_string()),
    );

    // `moot peers` shows the branch by name, with both lanes.
    let peers = hall.ok(&["peers"]);
    let list = peers["peers"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{peers}");
    assert_eq!(list[0]["name"], "Bob", "{peers}");
    assert_eq!(list[0]["member_id"], bob.as_str(), "{peers}");
    assert_eq!(list[0]["lanes"], "public+members", "{peers}");

    // Writes from several commands at once are serialised: none fails, the device never forks.
    let clients: Vec<_> = (0..4)
        .map(|i| {
            let data = hall.path();
            std::thread::spawn(move || {
                crate::moot(
                    &[
                        "--data",
                        &data,
                        "--json",
                        "assembly",
                        "create",
                        "--kind",
                        "working-group",
                        &format!("Group {i}"),
                    ],
                    None,
                )
            })
        })
        .collect();
    for client in clients {
        let out = client.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // Relative paths are the client's; a passphrase file is read by the client. A member key
    // protected by a passphrase, made through the running node:
    let cwd = hall.0.path();
    std::fs::write(cwd.join("pw"), "correct horse\n").unwrap();
    let (code, out, err) = moot_in(
        cwd,
        &hall,
        &[
            "--json",
            "key",
            "new",
            "--name",
            "Xena",
            "--passphrase-file",
            "pw",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let xena: Value = serde_json::from_str(&out).unwrap();
    let xena = xena["member_id"].as_str().unwrap().to_string();
    let (code, _, err) = moot_in(
        cwd,
        &hall,
        &["--as", &xena, "--passphrase-file", "pw", "keys"],
    );
    assert_eq!(code, 0, "{err}");
    std::fs::write(cwd.join("wrong"), "battery staple\n").unwrap();
    let (code, _, err) = moot_in(
        cwd,
        &hall,
        &[
            "--json",
            "--as",
            &xena,
            "--passphrase-file",
            "wrong",
            "keys",
        ],
    );
    assert_eq!(
        code, 1,
        "a wrong passphrase is refused as without the node: {err}"
    );
    let error: Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(error["error"]["kind"], "refused", "{err}");
    let (code, _, err) = moot_in(cwd, &hall, &["bundle", "export", "out.bundle"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        cwd.join("out.bundle").is_file(),
        "written in the client's directory"
    );

    // Bad usage and unknown ids give the same codes as without the node.
    let (code, _, _) = hall.run(&["poll", "results", "not-an-id"]);
    assert_eq!(code, 2);
    // A second node on the same directory is refused, not started.
    let (code, _, err) = hall.run(&["serve", "--no-mdns"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("running"), "{err}");

    stop(branch_node);
    stop(hall_node);
    assert!(!socket.exists(), "a clean stop removes the socket");
    // Without the node, the same commands open the directory themselves.
    let groups = names(&hall.ok(&["assemblies"]));
    for name in [
        "Choir", "Garden", "Group 0", "Group 1", "Group 2", "Group 3",
    ] {
        assert!(groups.contains(&name.to_string()), "{groups:?}");
    }
}

/// A `moot sync` through a running node waits on the network without holding the node's one
/// turn for commands: another command (a write, as a vote from the web UI would be) runs at
/// once meanwhile, not after the sync's timeout.
#[test]
fn a_sync_waiting_through_the_node_holds_up_no_other_command() {
    let (hall, _) = hub_with_fay();
    let (hall_node, _) = serve(&hall, &[]);
    // A peer that answers TCP and nothing more (a machine that hangs): the sync waits on its
    // handshake. (A refused dial would end the sync at once.)
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let nobody = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp",
        hang.local_addr().unwrap().port()
    );
    let started = std::time::Instant::now();
    let mut sync = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &hall.path(), "--json", "sync", "--peer", &nobody])
        .args(["--timeout", "8"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    hall.ok(&["assembly", "create", "--kind", "working-group", "Choir"]);
    let took = started.elapsed();
    assert!(sync.try_wait().unwrap().is_none(), "the sync ended early");
    assert!(
        took < std::time::Duration::from_secs(6),
        "the command waited for the sync: {took:?}"
    );
    sync.wait().unwrap();
    assert!(names(&hall.ok(&["assemblies"])).contains(&"Choir".to_string()));
    stop(hall_node);
}

/// Through the node as without it: a full disk when printing is an `io` error (exit 1), and a
/// write command's says the change was saved. (Both were dropped: exit 0, nothing said.)
#[test]
fn printing_fails_through_the_node_as_without_it() {
    let (hall, _) = hub_with_fay();
    let (node, _) = serve(&hall, &[]);
    let full = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(["--data", &hall.path(), "--json"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let error: Value = serde_json::from_str(stderr.lines().last().unwrap_or_default())
            .unwrap_or_else(|_| panic!("{args:?}: {stderr}"));
        (out.status.code(), error)
    };
    let (code, error) = full(&["members"]);
    assert_eq!(code, Some(1), "{error}");
    assert_eq!(error["error"]["kind"], "io", "{error}");
    let (code, error) = full(&["assembly", "create", "--kind", "working-group", "Choir"]);
    assert_eq!(code, Some(1), "{error}");
    assert_eq!(error["error"]["kind"], "io", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("the change was saved"), "{message}");
    assert!(
        names(&hall.ok(&["assemblies"])).contains(&"Choir".to_string()),
        "the change is there"
    );
    stop(node);
}

#[test]
fn a_killed_node_leaves_a_socket_the_next_commands_and_node_get_past() {
    let (hall, _) = hub_with_fay();
    let (node, _) = serve(&hall, &[]);
    node.kill();
    let socket = hall.dir().join("moot.sock");
    assert!(socket.exists(), "kill -9 leaves the socket behind");
    // Nobody answers on it: the command opens the directory itself.
    hall.ok(&["assembly", "create", "--kind", "working-group", "Choir"]);
    // A new node replaces the stale socket and serves the command.
    let (node, _) = serve(&hall, &[]);
    assert!(names(&hall.ok(&["assemblies"])).contains(&"Choir".to_string()));
    stop(node);
}

/// A node that takes a command and stops before answering (killed, or stopped mid-command):
/// the command fails saying whether it took effect is unknown, and how to find out — never
/// a bare I/O error that reads as "nothing happened".
#[test]
fn a_node_that_stops_before_answering_leaves_the_outcome_unknown_and_says_so() {
    use std::io::Read as _;
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    let listener = std::os::unix::net::UnixListener::bind(data.dir().join("moot.sock")).unwrap();
    let node = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Takes the whole request (a 4-byte big-endian length, then the bytes), then goes
        // away without answering.
        let mut len = [0u8; 4];
        stream.read_exact(&mut len).unwrap();
        let mut request = vec![0u8; u32::from_be_bytes(len) as usize];
        stream.read_exact(&mut request).unwrap();
    });
    let (code, _, stderr) = data.run(&["hub", "create", "Riverside"]);
    node.join().unwrap();
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("whether the command took effect is unknown")
            && stderr.contains("moot activity"),
        "{stderr}"
    );
}

/// `moot bundle export /dev/stdout` on `data`, its standard output a pipe for the caller.
fn export_to_pipe(data: &Data) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &data.path(), "bundle", "export", "/dev/stdout"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// `moot --json bundle import /dev/stdin` on `data`, reading `input`, its output piped.
fn import_from(data: &Data, input: Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_moot"))
        .args([
            "--data",
            &data.path(),
            "--json",
            "bundle",
            "import",
            "/dev/stdin",
        ])
        .stdin(input)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The JSON of an import that succeeded and found every op already held.
fn imported_nothing_new(out: std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let again: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(again["new_ops"], 0, "{again}");
    again
}

/// A path that names the client's own descriptors (`/dev/stdout`, `/dev/stdin`, a link to one)
/// opens the client's file, not the running node's: the client passes it with the request. A
/// bundle exported to `/dev/stdout` comes out whole on the client's standard output (its
/// summary on stderr), imports from `/dev/stdin` into another running node, and a body read
/// from `/dev/stdin` is the client's input. (Before, the node wrote the bundle to its own
/// standard output and read its own standard input.)
#[test]
fn paths_naming_the_clients_descriptors_open_the_clients_files() {
    use std::io::Write as _;
    let ((hall, _), branch) = (hub_with_fay(), Data::new());
    branch.ok(&["init", "--name", "Bob"]);
    let (hall_node, _) = serve(&hall, &[]);
    // The branch's node holds no hub yet: it waits for one, and runs commands meanwhile.
    let (branch_node, ready) = crate::serving::serve_with(
        &[],
        &branch,
        &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"],
    );
    assert_eq!(ready["waiting_for"], "hub", "{ready}");
    let moot = |data: &Data, args: &[&str], input: &[u8]| {
        let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(["--data", &data.path()])
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?}: {stderr}");
        (out.stdout, stderr)
    };

    // A body piped in through the running node.
    let body = "Fix the hall roof before winter.\n";
    let (created, _) = moot(
        &hall,
        &[
            "proposal",
            "create",
            "--assembly",
            "activism",
            "--title",
            "Roof",
            "--body-file",
            "/dev/stdin",
        ],
        body.as_bytes(),
    );
    let created = String::from_utf8(created).unwrap();
    let proposal = created.trim().rsplit(' ').next().unwrap().to_string();
    let (shown, _) = moot(&hall, &["--json", "proposal", "show", &proposal], b"");
    let shown: Value = serde_json::from_slice(&shown).unwrap();
    assert_eq!(shown["text"], body, "{shown}");

    // A bundle to the client's standard output, whole, and its summary on stderr.
    let (bundle, summary) = moot(&hall, &["bundle", "export", "/dev/stdout"], b"");
    assert!(bundle.starts_with(b"moot-bundle\n"), "{summary}");
    assert!(
        summary.contains(&format!("to /dev/stdout ({} bytes)", bundle.len())),
        "{summary}"
    );
    // Into the branch's running node from the client's standard input.
    let (imported, _) = moot(
        &branch,
        &["--json", "bundle", "import", "/dev/stdin"],
        &bundle,
    );
    let imported: Value = serde_json::from_slice(&imported).unwrap();
    assert_eq!(imported["new_ops"], imported["ops"], "{imported}");
    assert!(imported["new_ops"].as_u64().unwrap() >= 2, "{imported}");
    let (merges, _) = moot(&branch, &["--json", "merges"], b"");
    let merges: Value = serde_json::from_slice(&merges).unwrap();
    assert_eq!(
        merges["merges"][0]["source"], "bundle /dev/stdin",
        "{merges}"
    );

    // A body edited from the client's standard input.
    let edited = "Fix the hall roof before the first frost.\n";
    moot(
        &hall,
        &["proposal", "edit", &proposal, "--body-file", "/dev/stdin"],
        edited.as_bytes(),
    );
    let (shown, _) = moot(&hall, &["--json", "proposal", "show", &proposal], b"");
    let shown: Value = serde_json::from_slice(&shown).unwrap();
    assert_eq!(shown["text"], edited, "{shown}");
    // A proposal's document to the client's standard output, its JSON result on stderr.
    let (document, result) = moot(
        &hall,
        &["--json", "proposal", "export", &proposal, "/dev/stdout"],
        b"",
    );
    let result: Value = serde_json::from_str(result.lines().last().unwrap()).unwrap();
    assert_eq!(result["bytes"], document.len(), "{result}");
    assert_eq!(result["file"], "/dev/stdout", "{result}");
    // A full disk behind the client's standard output: the error names it as the client did.
    let full = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &hall.path(), "bundle", "export", "/dev/stdout"])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    let error = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(1), "{error}");
    assert!(
        error.contains("/dev/stdout") && !error.contains("/dev/fd/"),
        "{error}"
    );

    // An export piped into an import on the same running node: the import's input is read
    // before it takes the node's turn, so neither waits on the other.
    let mut export = export_to_pipe(&hall);
    let import = import_from(&hall, Stdio::from(export.stdout.take().unwrap()));
    let pids = [export.id(), import.id()];
    let (done, finished) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let out = import.wait_with_output().unwrap();
        let _ = done.send(());
        out
    });
    if finished.recv_timeout(Duration::from_secs(60)).is_err() {
        for pid in pids {
            let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
        }
        panic!("an export piped into an import on one node did not finish");
    }
    let out = waiter.join().unwrap();
    assert!(export.wait().unwrap().success());
    let again = imported_nothing_new(out);
    assert!(again["ops"].as_u64().unwrap() >= 3, "{again}");

    // An import whose input is still coming holds no turn while it waits: other commands
    // run meanwhile (the client copies its input before it sends the command).
    let (bundle, _) = moot(&hall, &["bundle", "export", "/dev/stdout"], b"");
    let mut waiting = import_from(&hall, Stdio::piped());
    let mut input = waiting.stdin.take().unwrap();
    input.write_all(&bundle[..100]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    hall.ok(&["assemblies"]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a command waited {:?} on another's input",
        started.elapsed()
    );
    input.write_all(&bundle[100..]).unwrap();
    drop(input);
    imported_nothing_new(waiting.wait_with_output().unwrap());

    // A link to the client's standard output, relative to its working directory.
    let cwd = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink("/dev/stdout", cwd.path().join("out")).unwrap();
    let through_link = || {
        Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(["--data", &hall.path(), "bundle", "export", "out"])
            .current_dir(cwd.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    // The same bundle, whole: the summary goes to stderr, as the file is the output.
    let out = through_link();
    assert!(out.status.success());
    assert_eq!(out.stdout, bundle, "the same bundle, through the link");
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote"));
    stop(hall_node);
    stop(branch_node);
    // And with no node running.
    let out = through_link();
    assert!(out.status.success());
    assert_eq!(out.stdout, bundle, "the same bundle, with no node");
    assert!(String::from_utf8_lossy(&out.stderr).contains("to out"));
}

/// A command stuck writing to a pipe nobody reads holds the node's turn; another command waits
/// for it no longer than a command run with no node waits for the data directory's lock (30
/// s), then says so (`failed`, exit 1), and the node takes commands again once the pipe is
/// read. (It waited for good: an export piped into a command that reads nothing wedged the
/// node, the web UI included.)
#[test]
fn a_command_stuck_on_a_pipe_holds_others_up_no_longer_than_the_lock_would() {
    use std::io::Read as _;
    let (hall, _) = hub_with_fay();
    // More than a pipe holds (64 KiB): 20 bodies of 8 KB.
    let body = hall.0.path().join("body.txt");
    std::fs::write(&body, "word ".repeat(1600)).unwrap();
    let body = body.display().to_string();
    for i in 0..20 {
        let title = format!("Proposal {i}");
        hall.ok(&[
            "proposal",
            "create",
            "--assembly",
            "activism",
            "--title",
            &title,
            "--body-file",
            &body,
        ]);
    }
    let (node, ready) = serve(&hall, &[]);
    let mut export = export_to_pipe(&hall);
    // The export has taken the turn and filled the pipe.
    std::thread::sleep(Duration::from_secs(2));
    // A write from the web UI meanwhile, which takes the same turn.
    let open = ready["open"].as_str().unwrap().to_string();
    let web = std::thread::spawn(move || {
        let page = crate::web::Page::open(&open);
        page.call(
            "POST",
            "/api/keys",
            Some(serde_json::json!({"name": "Ben"})),
        )
    });
    let started = std::time::Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &hall.path(), "--json", "members"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let waited = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one JSON object: {stderr}");
    let error: Value = serde_json::from_str(&stderr).unwrap();
    assert_eq!(error["error"]["kind"], "failed", "{error}");
    let message = error["error"]["message"].as_str().unwrap();
    assert!(message.contains("for 30 s"), "{message}");
    assert!(
        waited >= Duration::from_secs(25) && waited < Duration::from_secs(90),
        "waited {waited:?}"
    );
    let (status, answer) = web.join().unwrap();
    assert_eq!(status, 500, "{answer}");
    assert_eq!(answer["error"]["kind"], "failed", "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("for 30 s"), "{message}");
    // Read: the export finishes whole, and the node runs commands again.
    let mut bundle = Vec::new();
    export
        .stdout
        .take()
        .unwrap()
        .read_to_end(&mut bundle)
        .unwrap();
    assert!(export.wait().unwrap().success());
    assert!(bundle.len() > 64 * 1024, "{} bytes", bundle.len());
    assert_eq!(
        hall.ok(&["members"])["members"].as_array().unwrap().len(),
        1
    );
    stop(node);
}

/// `moot serve` runs only as its data directory's owner: it runs the owner's commands with its
/// own rights, so run by root on another user's directory it would read and overwrite files
/// for them that they cannot. (Needs root to give a directory away: skipped otherwise.)
#[test]
fn serve_refuses_a_data_directory_of_another_user() {
    if rustix::process::geteuid().as_raw() != 0 {
        eprintln!("skipped: only root can give a data directory to another user");
        return;
    }
    let (data, _) = hub_with_fay();
    std::os::unix::fs::chown(data.dir(), Some(65534), None).unwrap();
    let mut serve = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &data.path(), "serve", "--no-mdns", "--no-http"])
        .args(["--listen", "/ip4/127.0.0.1/tcp/0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while serve.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            let _ = serve.kill();
            panic!("moot serve ran on another user's data directory");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = serve.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("belongs to uid 65534"), "{stderr}");
    assert!(!data.dir().join("moot.sock").exists());
}

/// A command run from a working directory since removed works through a running node as it
/// does without one (the directory is needed only to resolve relative paths, and says so then).
#[test]
fn a_command_from_a_removed_working_directory_runs_through_the_node() {
    let (hall, _) = hub_with_fay();
    let (node, _) = serve(&hall, &[]);
    let gone = hall.0.path().join("gone");
    let run = |args: &str| {
        std::fs::create_dir_all(&gone).unwrap();
        Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cd '{}' && rmdir '{}' && exec '{}' --data '{}' {args}",
                gone.display(),
                gone.display(),
                env!("CARGO_BIN_EXE_moot"),
                hall.path()
            ))
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("--json members");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let members: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(members["members"].as_array().unwrap().len(), 1);
    // A relative path there cannot be resolved: said, not guessed.
    let out = run("bundle export relative.bundle");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("working directory"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stop(node);
}
