//! `moot demo`: the offline branch meeting on one machine, narrated. Four real nodes — the
//! hall and three branch laptops — each a data directory (temporary, or under `--dir`), run by
//! this same executable as child processes: `moot serve` on 127.0.0.1 with mDNS off while a
//! node is online, one-shot `moot` commands otherwise. Every step goes through the public
//! command line, so the demo shows exactly what an organiser would type. Children are stopped
//! and temporary directories removed on success, on failure and on Ctrl-C or SIGTERM.

use std::io::{BufRead as _, BufReader, Read as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use serde_json::{Value, json};

use crate::cli::Global;
use crate::node_cmd::esc;

/// The poll's options, in order.
const OPTIONS: [&str; 3] = ["Rent freeze", "Repairs now", "Cheaper buses"];

/// One branch of the meeting: its laptop, its officer (the node's own key, a station officer
/// of the poll) and two more members whose keys are held on the laptop, with the ballots they
/// cast (scores for [`OPTIONS`]); `first`: a ballot cast first and then changed (re-cast).
struct BranchPlan {
    name: &'static str,
    officer: &'static str,
    members: [&'static str; 2],
    ballots: [[u8; 3]; 3],
    first: Option<(usize, [u8; 3])>,
    online: bool,
}

const BRANCHES: [BranchPlan; 3] = [
    BranchPlan {
        name: "North",
        officer: "Nell",
        members: ["Ned", "Nia"],
        ballots: [[5, 3, 0], [4, 4, 1], [2, 3, 5]],
        first: Some((2, [0, 2, 5])),
        online: true,
    },
    BranchPlan {
        name: "South",
        officer: "Sam",
        members: ["Sol", "Sue"],
        ballots: [[1, 5, 2], [5, 2, 0], [3, 4, 4]],
        first: None,
        online: true,
    },
    BranchPlan {
        name: "West",
        officer: "Wren",
        members: ["Wes", "Wim"],
        ballots: [[5, 1, 3], [2, 5, 0], [5, 3, 1]],
        first: Some((2, [2, 4, 0])),
        online: false,
    },
];

/// Fay's ballot, cast at the hall.
const HALL_BALLOT: [u8; 3] = [2, 5, 1];

/// How long a node gets to stop after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn demo(global: &Global, dir: Option<&Path>) -> anyhow::Result<()> {
    // Never inside a running node (a client never forwards `demo`; this refuses one that
    // would): the demo's signal handling and children are a process's own.
    crate::control::refuse_while_served("moot demo")?;
    let exe = std::env::current_exe().context("finding the moot executable")?;
    let (root, keep) = match dir {
        Some(dir) => (prepare_dir(dir)?, true),
        None => (temp_dir()?, false),
    };
    let kids = Kids::new(exe, root.clone(), keep);
    watch_signals(&kids);
    let mut demo = Demo {
        kids: &kids,
        json: global.json,
        steps: Vec::new(),
    };
    let result = demo.run(&root);
    if kids.lock().stopping {
        // A signal came: its watcher stops the children, cleans up and exits (130).
        std::thread::sleep(STOP_GRACE * 3);
        std::process::exit(130);
    }
    let stopped = kids.stop_all();
    if !keep {
        remove_dir(&root);
    }
    let summary = result?;
    stopped?;
    let mut summary = summary;
    summary["dir"] = json!(root.display().to_string());
    summary["kept"] = json!(keep);
    summary["steps"] = json!(demo.steps);
    if global.json {
        crate::out::line(&summary.to_string())
    } else if keep {
        crate::out::line(&format!(
            "\nThe four nodes' data directories are kept in {} (try `moot --data {}/hall poll results {}`).",
            esc(&root.display().to_string()),
            esc(&root.display().to_string()),
            summary["poll_id"].as_str().unwrap_or_default()
        ))
    } else {
        crate::out::line("\nThe four nodes have stopped and their temporary directories are gone.")
    }
}

/// `--dir DIR`: created if missing; an existing one must be empty (the demo never writes over
/// someone's nodes).
fn prepare_dir(dir: &Path) -> anyhow::Result<PathBuf> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(crate::bad_input(anyhow!(
                    "{} is not empty: give `moot demo --dir` a new or empty directory",
                    dir.display()
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?
        }
        Err(e) => return Err(anyhow::Error::new(e).context(format!("reading {}", dir.display()))),
    }
    std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))
}

/// A new private directory under the system's temporary directory.
fn temp_dir() -> anyhow::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let base = std::env::temp_dir();
    for attempt in 0u32..100 {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(attempt);
        let path = base.join(format!(
            "moot-demo-{}-{:08x}",
            std::process::id(),
            nanos ^ attempt
        ));
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok(path),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                return Err(anyhow::Error::new(e).context(format!("creating {}", path.display())));
            }
        }
    }
    bail!("could not make a temporary directory in {}", base.display())
}

/// Removes the demo's temporary directory (a node killed a moment ago may still be closing
/// its files: tried a few times).
fn remove_dir(root: &Path) {
    for _ in 0..20 {
        match std::fs::remove_dir_all(root) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    crate::out::err_line(&format!(
        "moot: warning: could not remove {}",
        esc(&root.display().to_string())
    ));
}

/// The child processes: every `moot` the demo runs, registered while it runs, so that a
/// signal stops them all.
struct Kids {
    exe: PathBuf,
    root: PathBuf,
    keep: bool,
    state: Arc<Mutex<KidState>>,
}

#[derive(Default)]
struct KidState {
    next: u64,
    running: Vec<(u64, Child)>,
    /// Set by a signal: start nothing more.
    stopping: bool,
}

/// A running `moot serve`: its registration, its ready line, and what it wrote on stderr.
struct Server {
    id: u64,
    ready: Value,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Server {
    fn addr(&self) -> anyhow::Result<String> {
        self.ready["listen"][0]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("`moot serve` gave no listen address: {}", self.ready))
    }
}

impl Kids {
    fn new(exe: PathBuf, root: PathBuf, keep: bool) -> Self {
        Kids {
            exe,
            root,
            keep,
            state: Arc::new(Mutex::new(KidState::default())),
        }
    }

    fn lock(&self) -> MutexGuard<'_, KidState> {
        lock(&self.state)
    }

    fn data(&self, node: &str) -> PathBuf {
        self.root.join(node)
    }

    fn command(&self, node: &str, json: bool, args: &[&str]) -> Command {
        let mut command = Command::new(&self.exe);
        command.arg("--data").arg(self.data(node));
        if json {
            command.arg("--json");
        }
        command
            .args(args)
            // The user's own settings are not the demo's nodes'.
            .env_remove("MOOT_DATA")
            .env_remove("MOOT_AS")
            .env_remove("MOOT_HUB")
            .env_remove("MOOT_PASSPHRASE_FILE")
            .env("MOOT_NO_MDNS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        command
    }

    /// Starts `command` and registers it (so that a signal stops it) → its registration and
    /// its stdout and stderr.
    fn spawn(
        &self,
        mut command: Command,
    ) -> anyhow::Result<(
        u64,
        Option<std::process::ChildStdout>,
        Option<std::process::ChildStderr>,
    )> {
        let mut state = self.lock();
        if state.stopping {
            bail!("interrupted");
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.exe.display()))?;
        state.next += 1;
        let id = state.next;
        let pipes = (child.stdout.take(), child.stderr.take());
        state.running.push((id, child));
        Ok((id, pipes.0, pipes.1))
    }

    /// Waits for a registered child to exit, leaving it registered (so a signal can stop it)
    /// until it has.
    fn wait(&self, id: u64) -> anyhow::Result<ExitStatus> {
        loop {
            {
                let mut state = self.lock();
                let Some(i) = state.running.iter().position(|(k, _)| *k == id) else {
                    bail!("interrupted");
                };
                if let Some(status) = state.running[i].1.try_wait().context("waiting for moot")? {
                    state.running.remove(i);
                    return Ok(status);
                }
            }
            std::thread::sleep(Duration::from_millis(3));
        }
    }

    /// Runs `moot --data ROOT/NODE [--json] ARGS` to the end → its stdout; fails with its
    /// stderr.
    fn run(&self, node: &str, json: bool, args: &[&str]) -> anyhow::Result<String> {
        let (id, stdout, stderr) = self.spawn(self.command(node, json, args))?;
        let stdout = drain(stdout);
        let stderr = drain(stderr);
        let status = self.wait(id)?;
        let stdout = join(stdout);
        let stderr = join(stderr);
        if !status.success() {
            let why = String::from_utf8_lossy(&stderr);
            bail!(
                "`moot {}` on the {node} node failed ({status}): {}",
                args.join(" "),
                why.trim()
            );
        }
        String::from_utf8(stdout).context("moot printed something that is not UTF-8")
    }

    /// [`Kids::run`] with `--json` → the JSON document it printed.
    fn json(&self, node: &str, args: &[&str]) -> anyhow::Result<Value> {
        let out = self.run(node, true, args)?;
        serde_json::from_str(&out)
            .with_context(|| format!("reading what `moot {}` printed", args.join(" ")))
    }

    /// Starts `moot serve` on NODE, on 127.0.0.1 only, mDNS off, dialing `peers` → once it is
    /// ready.
    fn serve(&self, node: &str) -> anyhow::Result<Server> {
        let args = [
            "serve",
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--no-mdns",
            "--no-http",
        ];
        let (id, stdout, pipe) = self.spawn(self.command(node, true, &args))?;
        let stderr = Arc::new(Mutex::new(Vec::new()));
        if let Some(mut pipe) = pipe {
            let sink = Arc::clone(&stderr);
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let mut kept = lock(&sink);
                    kept.extend_from_slice(&buf[..n]);
                    // Only the end is worth showing.
                    let len = kept.len();
                    if len > 64 * 1024 {
                        kept.drain(..len - 32 * 1024);
                    }
                }
            });
        }
        let mut line = String::new();
        let mut reader = stdout.map(BufReader::new);
        if let Some(reader) = reader.as_mut() {
            reader
                .read_line(&mut line)
                .context("reading `moot serve`'s ready line")?;
        }
        let server = Server {
            id,
            ready: Value::Null,
            stderr,
        };
        let ready: Value = match serde_json::from_str(&line) {
            Ok(ready) => ready,
            Err(_) => {
                let status = self.stop(&server);
                bail!(
                    "`moot serve` on the {node} node did not start ({}): {}",
                    match status {
                        Ok(()) => "it stopped".to_string(),
                        Err(e) => e.to_string(),
                    },
                    String::from_utf8_lossy(&lock(&server.stderr)).trim()
                );
            }
        };
        // Whatever else it prints is drained, never left to fill the pipe.
        if let Some(mut reader) = reader {
            std::thread::spawn(move || std::io::copy(&mut reader, &mut std::io::sink()));
        }
        Ok(Server { ready, ..server })
    }

    /// Stops a `moot serve` as Ctrl-C would (SIGTERM) and waits for it; it must exit 0.
    fn stop(&self, server: &Server) -> anyhow::Result<()> {
        let status = {
            let mut state = self.lock();
            let Some(i) = state.running.iter().position(|(k, _)| *k == server.id) else {
                return Ok(());
            };
            let (_, child) = state.running.remove(i);
            drop(state);
            end(child)?
        };
        if status.success() {
            Ok(())
        } else {
            bail!(
                "`moot serve` ended with {status}: {}",
                String::from_utf8_lossy(&lock(&server.stderr)).trim()
            )
        }
    }

    /// Stops every child still running (the nodes still serving).
    fn stop_all(&self) -> anyhow::Result<()> {
        let children: Vec<Child> = {
            let mut state = self.lock();
            state.running.drain(..).map(|(_, c)| c).collect()
        };
        let mut result = Ok(());
        for child in children {
            if let Err(e) = end(child) {
                result = Err(e);
            }
        }
        result
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Sends SIGTERM and waits up to [`STOP_GRACE`], then kills.
fn end(mut child: Child) -> anyhow::Result<ExitStatus> {
    if let Some(status) = child.try_wait().context("waiting for moot")? {
        return Ok(status);
    }
    let pid = rustix::process::Pid::from_child(&child);
    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().context("waiting for moot")? {
            return Ok(status);
        }
        if start.elapsed() > STOP_GRACE {
            let _ = child.kill();
            return child.wait().context("waiting for moot");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Reads a pipe to its end on a thread of its own.
fn drain<R: std::io::Read + Send + 'static>(
    pipe: Option<R>,
) -> Option<std::thread::JoinHandle<Vec<u8>>> {
    pipe.map(|mut pipe| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
    })
}

fn join(handle: Option<std::thread::JoinHandle<Vec<u8>>>) -> Vec<u8> {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// On Ctrl-C or SIGTERM: start nothing more, stop every child, remove the temporary directory
/// (not one given with `--dir`), and exit 130.
fn watch_signals(kids: &Kids) {
    let state = Arc::clone(&kids.state);
    let root = kids.root.clone();
    let keep = kids.keep;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let Ok(runtime) = runtime else {
        return;
    };
    // Registered here, before any child starts, so no signal comes too early to be seen.
    let (interrupt, terminate) = runtime.block_on(async {
        use tokio::signal::unix::{SignalKind, signal};
        (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        )
    });
    let (Ok(mut interrupt), Ok(mut terminate)) = (interrupt, terminate) else {
        return;
    };
    std::thread::spawn(move || {
        runtime.block_on(async {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
        });
        let children: Vec<Child> = {
            let mut state = lock(&state);
            state.stopping = true;
            state.running.drain(..).map(|(_, c)| c).collect()
        };
        for child in children {
            let _ = end(child);
        }
        if !keep {
            remove_dir(&root);
        }
        crate::out::err_line("moot demo: interrupted: the nodes are stopped");
        std::process::exit(130);
    });
}

/// The narrated run.
struct Demo<'a> {
    kids: &'a Kids,
    json: bool,
    steps: Vec<Value>,
}

/// A node of the demo, once it exists.
struct NodeInfo {
    key: String,
    name: String,
    officer: String,
    member_id: String,
    node_id: String,
}

impl Demo<'_> {
    /// Starts a step: a title, and what it is for.
    fn step(&mut self, title: &str, why: &str) -> anyhow::Result<()> {
        let n = self.steps.len() + 1;
        self.steps
            .push(json!({"step": n, "title": title, "why": why, "says": []}));
        if self.json {
            return Ok(());
        }
        crate::out::line(&format!("\n{n}. {title}\n   {why}"))
    }

    /// Says what just happened, within the current step.
    fn say(&mut self, text: &str) -> anyhow::Result<()> {
        if let Some(step) = self.steps.last_mut()
            && let Some(says) = step["says"].as_array_mut()
        {
            says.push(json!(text));
        }
        if self.json {
            return Ok(());
        }
        crate::out::line(&format!("   - {text}"))
    }

    fn run(&mut self, root: &Path) -> anyhow::Result<Value> {
        let kids = self.kids;
        let started = Instant::now();
        if !self.json {
            crate::out::line(&format!(
                "The offline branch meeting, on this machine: four Moot nodes (the hall and three branch laptops), each its own data directory under {}, talking only over 127.0.0.1.",
                esc(&root.display().to_string())
            ))?;
        }

        // 1. The nodes and the roll.
        self.step(
            "Four nodes, one hub",
            "The hall runs the union's hub; each branch has a laptop holding its officer's key and the keys of members who vote on it.",
        )?;
        let hall_init = kids.json("hall", &["init", "--name", "Fay"])?;
        let hub = kids.json("hall", &["hub", "create", "Riverside Tenants"])?;
        let hub_id = field(&hub, "hub_id")?;
        let mut nodes = vec![NodeInfo {
            key: "hall".into(),
            name: "Hall".into(),
            officer: "Fay".into(),
            member_id: field(&hall_init, "member_id")?,
            node_id: field(&hall_init, "node_id")?,
        }];
        self.say(&format!(
            "Fay founds the hub Riverside Tenants ({}) at the hall: she is its steward and will be the returning officer.",
            short(&hub_id)
        ))?;
        let mut members: Vec<Vec<String>> = Vec::new();
        for plan in &BRANCHES {
            let key = plan.name.to_lowercase();
            let init = kids.json(&key, &["init", "--name", plan.officer])?;
            let officer_id = field(&init, "member_id")?;
            let mut ids = vec![officer_id.clone()];
            for who in plan.members {
                let made = kids.json(&key, &["key", "new", "--name", who])?;
                ids.push(field(&made, "member_id")?);
            }
            for (id, who) in ids
                .iter()
                .zip(std::iter::once(plan.officer).chain(plan.members))
            {
                kids.json("hall", &["member", "add", id, "--name", who])?;
            }
            self.say(&format!(
                "{} branch: a laptop for {} (the branch officer), holding keys for {} and {} too; Fay admits all three to the roll.",
                plan.name, plan.officer, plan.members[0], plan.members[1]
            ))?;
            nodes.push(NodeInfo {
                key,
                name: plan.name.into(),
                officer: plan.officer.into(),
                member_id: officer_id,
                node_id: field(&init, "node_id")?,
            });
            members.push(ids);
        }

        // 2. The poll.
        self.step(
            "The poll",
            "A STAR poll of the Activism Society (every member): each branch officer may close a polling station; only Fay may close the poll.",
        )?;
        let question = "Which campaign do we run first?";
        let mut create = vec![
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            question,
        ];
        for option in OPTIONS {
            create.extend(["--option", option]);
        }
        for node in &nodes[1..] {
            create.extend(["--station", node.member_id.as_str()]);
        }
        let poll = field(&kids.json("hall", &create)?, "poll_id")?;
        let opened = kids.json("hall", &["poll", "open", &poll])?;
        self.say(&format!(
            "Fay asks \"{question}\" ({}) and opens it: an electorate of {}, fixed now; the tiebreak seed is the open's id {}.",
            OPTIONS.join(", "),
            opened["electorate"],
            short(opened["seed"].as_str().unwrap_or_default())
        ))?;

        // 3. The first sync.
        self.step(
            "Before the meetings: everyone syncs",
            "The hall serves on 127.0.0.1; each laptop joins the hub with the ticket the hall prints, taking the roll and the open poll with it.",
        )?;
        let server = kids.serve("hall")?;
        let ticket = field(&server.ready, "ticket")?;
        let joined: Vec<anyhow::Result<Value>> = std::thread::scope(|s| {
            let handles: Vec<_> = nodes[1..]
                .iter()
                .map(|node| {
                    let ticket = &ticket;
                    s.spawn(move || {
                        kids.json(&node.key, &["hub", "join", ticket, "--timeout", "30"])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a join panicked"))))
                .collect()
        });
        for (node, joined) in nodes[1..].iter().zip(joined) {
            let joined = joined?;
            self.say(&format!(
                "{}'s laptop joined: {} ops taken in.",
                node.name, joined["new_ops"]
            ))?;
        }
        kids.stop(&server)?;
        self.say("The hall stops serving: from here on, nobody is connected.")?;

        // 4. The branch meetings, offline.
        let mut finals: Vec<[u8; 3]> = Vec::new();
        let mut stations: Vec<String> = Vec::new();
        for ((plan, ids), node) in BRANCHES.iter().zip(&members).zip(&nodes[1..]) {
            let names: Vec<&str> = std::iter::once(plan.officer).chain(plan.members).collect();
            self.step(
                &format!("{} meets offline", plan.name),
                &format!(
                    "No network: {} members vote in turn on the branch laptop (each with their own key, `moot vote --as`), then {} closes the branch's polling station.",
                    names.len(),
                    plan.officer
                ),
            )?;
            for (i, (who, id)) in names.iter().zip(ids).enumerate() {
                let acting = if i == 0 { None } else { Some(id.as_str()) };
                if let Some((j, first)) = plan.first
                    && j == i
                {
                    vote(kids, &node.key, &poll, acting, first)?;
                    self.say(&format!("{who} votes {}.", scores_text(first)))?;
                    let cast = vote(kids, &node.key, &poll, acting, plan.ballots[i])?;
                    self.say(&format!(
                        "{who} changes their mind and votes again: {} (revision {}; only the latest counts).",
                        scores_text(plan.ballots[i]),
                        cast["revision"]
                    ))?;
                } else {
                    vote(kids, &node.key, &poll, acting, plan.ballots[i])?;
                    self.say(&format!("{who} votes {}.", scores_text(plan.ballots[i])))?;
                }
                finals.push(plan.ballots[i]);
            }
            let closed = kids.json(&node.key, &["poll", "close-station", &poll])?;
            stations.push(field(&closed, "close_id")?);
            let counted = kids.json(&node.key, &["poll", "results", &poll])?;
            self.say(&format!(
                "{} closes the {} station ({}); the laptop, knowing only its own ballots, counts {} so far (provisional).",
                plan.officer,
                plan.name,
                short(stations.last().map(String::as_str).unwrap_or_default()),
                counted["counted"]
            ))?;
        }
        self.step(
            "Meanwhile at the hall",
            "Fay votes at the hall: a ballot cast at no polling station.",
        )?;
        vote(kids, "hall", &poll, None, HALL_BALLOT)?;
        finals.push(HALL_BALLOT);
        self.say(&format!("Fay votes {}.", scores_text(HALL_BALLOT)))?;

        // 5. Reconnecting.
        let online: Vec<&NodeInfo> = nodes[1..]
            .iter()
            .zip(&BRANCHES)
            .filter(|(_, p)| p.online)
            .map(|(n, _)| n)
            .collect();
        let carried: Vec<&NodeInfo> = nodes[1..]
            .iter()
            .zip(&BRANCHES)
            .filter(|(_, p)| !p.online)
            .map(|(n, _)| n)
            .collect();
        self.step(
            "Back together",
            "The hall serves again. North and South reconnect over the network and sync; West has no connection: Wren carries the branch's ballots to the hall in a bundle file (on a USB stick, say), which the hall imports — every op checked as if from a peer.",
        )?;
        let server = kids.serve("hall")?;
        let addr = server.addr()?;
        self.sync_all(&online, &addr)?;
        let mut merge = Value::Null;
        for node in &carried {
            let file = root
                .join(format!("{}.bundle", node.key))
                .display()
                .to_string();
            let exported = kids.json(&node.key, &["bundle", "export", &file])?;
            self.say(&format!(
                "{} exports {} ops to {}.bundle.",
                node.name, exported["ops"], node.key
            ))?;
            let imported = kids.json("hall", &["bundle", "import", &file])?;
            self.say(&format!(
                "The hall imports it: {} new ops. Its merge report: {}",
                imported["new_ops"],
                merge_line(&imported["merge"])
            ))?;
            merge = imported["merge"].clone();
        }

        // 6. The close.
        self.step(
            "The count",
            "Fay, the returning officer, closes the poll at the hall: exactly the ballots the hall holds now count, every station's among them. Then everyone syncs once more, West again by a bundle.",
        )?;
        let close = kids.json("hall", &["poll", "close", &poll])?;
        self.say(&format!(
            "Fay closes the poll ({}).",
            short(close["close_id"].as_str().unwrap_or_default())
        ))?;
        self.sync_all(&online, &addr)?;
        let merges_text = kids.run("hall", false, &["merges"])?;
        kids.stop(&server)?;
        for node in &carried {
            let file = root.join("hall.bundle").display().to_string();
            kids.json("hall", &["bundle", "export", &file])?;
            let imported = kids.json(&node.key, &["bundle", "import", &file])?;
            self.say(&format!(
                "{} imports the hall's bundle: {} new ops.",
                node.name, imported["new_ops"]
            ))?;
        }

        // 7. Everyone agrees.
        self.step(
            "Does every node agree?",
            "Each node counts the poll from the signed ops it holds; the demo compares the four results field by field and has each node re-check every signature (`moot poll verify`).",
        )?;
        let mut results: Vec<Value> = Vec::new();
        for node in &nodes {
            let shown = kids.json(&node.key, &["poll", "results", &poll])?;
            let verified = kids.json(&node.key, &["poll", "verify", &poll])?;
            if verified["ok"] != json!(true) {
                bail!("the {} node's results do not verify: {verified}", node.name);
            }
            if let Some(first) = results.first()
                && &shown != first
            {
                bail!(
                    "the {} node shows a different result from the hall's: {}",
                    node.name,
                    differences(first, &shown).join("; ")
                );
            }
            results.push(shown);
        }
        let result = results.swap_remove(0);
        if result["stage"] != "closed" || result["counted"] != json!(finals.len()) {
            bail!(
                "expected a closed poll counting {} ballots, found: {result}",
                finals.len()
            );
        }
        if result["stations"].as_array().map(Vec::len) != Some(stations.len()) {
            bail!(
                "expected {} polling stations in the result: {result}",
                stations.len()
            );
        }
        self.say(&format!(
            "All {} nodes show the same result: {} ballots counted, winner {}.",
            nodes.len(),
            result["counted"],
            winners(&result)
        ))?;
        let result_text = kids.run("hall", false, &["poll", "results", &poll])?;
        if !self.json {
            crate::out::line("\nThe hall's merge report (`moot merges`):")?;
            crate::out::line(merges_text.trim_end())?;
            crate::out::line("\nThe result (`moot poll results`, the same on every node):")?;
            crate::out::line(result_text.trim_end())?;
            crate::out::line(&format!(
                "\nDone in {:.1} s.",
                started.elapsed().as_secs_f64()
            ))?;
        }
        Ok(json!({
            "hub_id": hub_id,
            "poll_id": poll,
            "nodes": nodes.iter().map(|n| json!({
                "name": n.name,
                "officer": n.officer,
                "member_id": n.member_id,
                "node_id": n.node_id,
            })).collect::<Vec<_>>(),
            "stations": stations,
            "merge": merge,
            "agreed": true,
            "result": result,
        }))
    }

    /// The online branches sync with the hall, at once.
    fn sync_all(&mut self, online: &[&NodeInfo], addr: &str) -> anyhow::Result<()> {
        let kids = self.kids;
        let synced: Vec<anyhow::Result<Value>> = std::thread::scope(|s| {
            let handles: Vec<_> = online
                .iter()
                .map(|node| {
                    s.spawn(move || {
                        kids.json(&node.key, &["sync", "--peer", addr, "--timeout", "30"])
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("a sync panicked"))))
                .collect()
        });
        for (node, synced) in online.iter().zip(synced) {
            let synced = synced?;
            self.say(&format!(
                "{} syncs with the hall over 127.0.0.1, each side taking what the other has: {} ops new to the laptop.",
                node.name, synced["new_ops"]
            ))?;
        }
        Ok(())
    }
}

fn vote(
    kids: &Kids,
    node: &str,
    poll: &str,
    acting: Option<&str>,
    scores: [u8; 3],
) -> anyhow::Result<Value> {
    let pairs: Vec<String> = OPTIONS
        .iter()
        .zip(scores)
        .map(|(o, s)| format!("{o}={s}"))
        .collect();
    let mut args: Vec<&str> = Vec::new();
    if let Some(who) = acting {
        args.extend(["--as", who]);
    }
    args.extend(["vote", poll]);
    for pair in &pairs {
        args.extend(["--score", pair]);
    }
    kids.json(node, &args)
}

fn field(value: &Value, name: &str) -> anyhow::Result<String> {
    value[name]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("no {name} in {value}"))
}

fn short(id: &str) -> &str {
    id.get(..16).unwrap_or(id)
}

fn scores_text(scores: [u8; 3]) -> String {
    OPTIONS
        .iter()
        .zip(scores)
        .map(|(o, s)| format!("{o} {s}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn winners(result: &Value) -> String {
    let names: Vec<&str> = result["winners"]
        .as_array()
        .map(|w| w.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

/// A merge report in one line (as `moot bundle import` sums it up).
fn merge_line(merge: &Value) -> String {
    let mut line = format!("{} new ops", merge["new_ops"]);
    for poll in merge["polls"].as_array().into_iter().flatten() {
        line.push_str(&format!(
            "; on the poll, {} ballots from the bundle only, {} held at the hall only",
            poll["theirs_only"], poll["ours_only"],
        ));
        let both = poll["voted_on_both_sides"].as_array().map_or(0, Vec::len);
        if both > 0 {
            line.push_str(&format!(
                ", {both} member(s) with a ballot on both sides (counted once, flagged)"
            ));
        }
    }
    let unseen: Vec<&Value> = merge["roll_changes_during_open_polls"]
        .as_array()
        .map(|changes| changes.iter().collect())
        .unwrap_or_default();
    if !unseen.is_empty() {
        line.push_str(&format!(
            "; {} roll op(s) written after the poll opened — an electorate is fixed at the open, so they change nothing for this poll",
            unseen.len(),
        ));
    }
    line
}

/// The top-level fields in which two results differ.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let (Some(a), Some(b)) = (a.as_object(), b.as_object()) else {
        return vec![format!("{a} vs {b}")];
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            format!(
                "{k}: {} vs {}",
                a.get(k).unwrap_or(&Value::Null),
                b.get(k).unwrap_or(&Value::Null)
            )
        })
        .collect()
}
