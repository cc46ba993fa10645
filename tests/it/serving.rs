//! Running `moot serve` in tests: a node process that is stopped as Ctrl-C would (it must exit
//! 0), and killed if a test fails first, so no node outlives its test.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::Data;

/// A running `moot serve`; killed when dropped unless stopped.
pub struct Server(Option<Child>);

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    /// The node's process id.
    pub fn pid(&self) -> Option<u32> {
        self.0.as_ref().map(Child::id)
    }

    /// Kills the node (SIGKILL), as a crash would.
    pub fn kill(mut self) {
        if let Some(mut child) = self.0.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }
}

/// `moot serve` on 127.0.0.1 (mDNS off), dialing `peers` → the node and its ready line.
pub fn serve(data: &Data, peers: &[&str]) -> (Server, Value) {
    let mut args = vec!["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    for peer in peers {
        args.extend(["--peer", peer]);
    }
    let (server, ready) = serve_with(&[], data, &args);
    let addr = ready["listen"][0].as_str().unwrap_or_default();
    assert!(addr.starts_with("/ip4/127.0.0.1/"), "{ready}");
    (server, ready)
}

/// `moot serve` with `args`, run through `prefix` (e.g. `ip netns exec NS`) if not empty. The web
/// UI listens on a free port of 127.0.0.1 unless `args` say otherwise.
pub fn serve_with(prefix: &[&str], data: &Data, args: &[&str]) -> (Server, Value) {
    let (server, lines) = serve_lines_with(prefix, data, args, Stdio::null());
    let ready = lines
        .recv_timeout(Duration::from_secs(120))
        .expect("serve's ready line");
    (server, ready)
}

/// Stops the node as Ctrl-C would; it must exit 0.
pub fn stop(mut server: Server) {
    let mut child = server.0.take().unwrap();
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "serve exited with {exit}");
}

/// Waits until `check` holds, failing after `limit`.
pub fn eventually(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `moot --json serve ARGS` whose every stdout line is handed over as it comes (a node that
/// prints more than its ready line: the first run with the web UI).
pub fn serve_lines(data: &Data, args: &[&str]) -> (Server, std::sync::mpsc::Receiver<Value>) {
    serve_lines_with(&[], data, args, Stdio::null())
}

/// [`serve`] (no peers) whose logs go to the file `log`.
pub fn serve_logged(data: &Data, log: &std::path::Path) -> (Server, Value) {
    let args = ["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];
    let (server, lines) =
        serve_lines_with(&[], data, &args, std::fs::File::create(log).unwrap().into());
    let ready = lines
        .recv_timeout(Duration::from_secs(120))
        .expect("serve's ready line");
    (server, ready)
}

/// [`serve_lines`] run through `prefix`, its logs to `stderr`; the web UI on a free port of
/// 127.0.0.1 unless `args` say otherwise.
fn serve_lines_with(
    prefix: &[&str],
    data: &Data,
    args: &[&str],
    stderr: Stdio,
) -> (Server, std::sync::mpsc::Receiver<Value>) {
    let mut args = args.to_vec();
    if !args.iter().any(|a| *a == "--http" || *a == "--no-http") {
        args.extend(["--http", "127.0.0.1:0"]);
    }
    let moot = env!("CARGO_BIN_EXE_moot");
    let (program, before) = match prefix.split_first() {
        Some((first, rest)) => (*first, [rest, &[moot]].concat()),
        None => (moot, Vec::new()),
    };
    let mut child = Command::new(program)
        .args(&before)
        .args(["--data", &data.path(), "--json", "serve"])
        .args(args)
        .env_remove("MOOT_NO_MDNS")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
            if send.send(value).is_err() {
                break;
            }
        }
    });
    (Server(Some(child)), lines)
}

/// `moot serve` (web UI on a free port of 127.0.0.1, mDNS off) on a data directory without a
/// hub, or without a node at all: its lines up to `{"http", "open", "waiting_for": "hub"}`,
/// which it returns. The rest of its output is read on (and dropped) so that the node can print
/// its ready line once a hub is made in the browser.
pub fn serve_waiting(data: &Data) -> (Server, Value) {
    let (server, lines) = serve_lines(data, &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"]);
    let waiting = loop {
        let value = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("serve ended before its web UI was up");
        if value["waiting_for"] == "hub" {
            break value;
        }
    };
    std::thread::spawn(move || for _ in lines.iter() {});
    (server, waiting)
}
