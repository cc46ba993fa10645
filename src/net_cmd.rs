//! The node on the network: `moot serve` and `moot sync --peer`.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use moot_node::serve::{NetEvent, NetOptions};
use serde_json::json;

use crate::cli::Global;
use crate::node_cmd::{NodeResult as _, open, print};

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `moot serve`'s flags.
pub struct ServeArgs<'a> {
    pub listen: &'a [String],
    pub peers: &'a [String],
    pub mdns: bool,
    pub relay: bool,
    pub external: &'a [String],
    /// `--http ADDR` (`None`: the default address).
    pub http: Option<&'a str>,
    pub no_http: bool,
    pub http_hosts: &'a [String],
}

/// SIGINT and SIGTERM, listened for once at start: a signal that comes while the node is busy
/// (bringing views up to date) waits in them (a `ctrl_c()` future made per turn would miss it,
/// and the node would never stop).
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("listening for SIGTERM")?,
            int: signal(SignalKind::interrupt()).context("listening for SIGINT")?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

/// The web UI while the node runs.
struct Web {
    backend: Arc<crate::http_cmd::HttpBackend>,
    url: String,
    /// The URL with the web token: what the node's owner opens.
    open: String,
    task: tokio::task::JoinHandle<()>,
    stop: tokio::sync::oneshot::Sender<()>,
}

impl Web {
    /// Stops answering; pages still listening for changes are cut off after a moment.
    async fn stop(self) {
        self.backend.set_served(None);
        let _ = self.stop.send(());
        let mut task = self.task;
        if tokio::time::timeout(Duration::from_secs(2), &mut task)
            .await
            .is_err()
        {
            task.abort();
        }
    }
}

fn is_no_node(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<moot_node::NodeError>(),
        Some(moot_node::NodeError::NoNode { .. })
    )
}

fn is_no_hub(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        matches!(
            cause.downcast_ref::<moot_node::NodeError>(),
            Some(moot_node::NodeError::NoHub | moot_node::NodeError::NoDefaultHub)
        )
    })
}

/// File descriptors a serving node may hold: its peers' connections, the web UI's, its store
/// and sockets. The soft limit is often 1,024, far below the hard one.
const WANTED_FILES: u64 = 16_384;

/// Raises the soft limit on open files towards [`WANTED_FILES`] (never past the hard limit);
/// a failure leaves the limit as it was.
fn raise_file_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let wanted = match limit.maximum {
        Some(hard) => hard.min(WANTED_FILES),
        None => WANTED_FILES,
    };
    if limit.current.is_some_and(|soft| soft < wanted) {
        let _ = setrlimit(
            Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(wanted),
                maximum: limit.maximum,
            },
        );
    }
}

pub fn serve(global: &Global, args: &ServeArgs<'_>) -> anyhow::Result<()> {
    crate::control::refuse_while_served("moot serve")?;
    // A node runs its directory owner's commands with its own rights (it opens the files they
    // name): run by anyone else (`sudo moot serve --data ~alice/…`), it would open and
    // overwrite files for the owner that the owner cannot.
    {
        use std::os::unix::fs::MetadataExt as _;
        let dir = crate::node_cmd::data_dir(global)?;
        let euid = rustix::process::geteuid().as_raw();
        if let Ok(meta) = std::fs::metadata(&dir)
            && meta.uid() != euid
        {
            anyhow::bail!(
                "the data directory {} belongs to uid {}, and this moot serve would run as uid \
                 {euid}: run it as the directory's owner",
                moot_text::escape(&dir.display().to_string()),
                meta.uid()
            );
        }
    }
    // A bad `--peer` is refused before anything starts or is printed.
    moot_node::serve::check_addrs(args.peers).node()?;
    raise_file_limit();
    // The first run makes the node's keys; without the web UI that is all it does.
    let first = match open(global) {
        Ok(session) => Some(session),
        Err(e) if is_no_node(&e) => {
            crate::node_cmd::first_run(global, !args.no_http)?;
            if args.no_http {
                return Ok(());
            }
            None
        }
        Err(e) => return Err(e),
    };
    if args.no_http
        && let Some(session) = &first
    {
        // No hub and no web UI to make one in: say how (refused, exit 1).
        session.hub()?;
    }
    let dir = crate::node_cmd::data_dir(global)?;
    let dir = std::path::absolute(&dir).context("reading the working directory")?;
    crate::logs::init(!global.json);
    runtime()?.block_on(async move {
        let mut signals = Signals::new()?;
        let turn = Arc::new(tokio::sync::Mutex::new(()));
        let (changes, _) = tokio::sync::broadcast::channel(64);
        let web = if args.no_http {
            None
        } else {
            let listener = crate::http_cmd::bind(args.http).await?;
            let addr = listener.local_addr().context("reading the web UI's address")?;
            let backend = Arc::new(crate::http_cmd::HttpBackend::new(
                dir.clone(),
                global.hub.clone(),
                Arc::clone(&turn),
                changes.clone(),
            ));
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let token = crate::http_cmd::web_token(&dir)?;
            let options = moot_http::HttpOptions {
                hosts: args.http_hosts.to_vec(),
                token: Some(token.clone()),
            };
            let serving = Arc::clone(&backend);
            let task = tokio::spawn(async move {
                let stopped = async move {
                    let _ = stopped.await;
                };
                if let Err(e) = moot_http::serve(listener, serving, options, stopped).await {
                    tracing::error!(error = %e, "the web UI stopped");
                }
            });
            let url = crate::http_cmd::url(addr);
            Some(Web {
                backend,
                open: format!("{url}?token={token}"),
                url,
                task,
                stop,
            })
        };
        // Until the node has keys and a hub, the web UI is where to make them (the first run).
        let mut first = first;
        let mut said = false;
        // The turn is held from opening the node until the web UI's commands run on it (below):
        // one run on the data directory meanwhile would wait for the lock this node holds.
        let (mut session, held) = loop {
            let mut turn_now = Some(Arc::clone(&turn).lock_owned().await);
            let opened = match first.take() {
                Some(session) => Ok(session),
                None => open(global),
            };
            match opened {
                Ok(session) => match session.hub() {
                    Ok(_) => break (session, turn_now.take()),
                    Err(e) if is_no_hub(&e) && web.is_some() => {}
                    Err(e) => return Err(e),
                },
                Err(e) if is_no_node(&e) && web.is_some() => {}
                Err(e) => return Err(e),
            }
            drop(turn_now);
            let Some(shown) = &web else {
                anyhow::bail!("no hub to serve");
            };
            let waiting = shown.backend.node_changed.notified();
            if !said {
                said = true;
                print(
                    global,
                    json!({"http": shown.url, "open": shown.open, "waiting_for": "hub"}),
                    format!(
                        "open {} to found a hub or join one (or run `moot hub create NAME` / \
                         `moot hub join TICKET`); the node starts serving once it has one",
                        shown.open
                    ),
                )?;
                let _ = std::io::stdout().flush();
            }
            tokio::select! {
                _ = signals.recv() => {
                    if let Some(web) = web {
                        web.stop().await;
                    }
                    return Ok(());
                }
                _ = waiting => {}
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        };
        let hub = session.hub()?;
        let signer = session.signer()?;
        let node = Arc::clone(&session.node);
        drop(session);
        // `--peer`s, and the nodes this one joined the hub through (kept connected too).
        let mut peers = args.peers.to_vec();
        match node.known_peers(&hub) {
            Ok(known) => peers.extend(known.into_iter().filter(|k| !args.peers.contains(k))),
            Err(e) => tracing::warn!(error = %e, "the known peers are unreadable: going on without them"),
        }
        let mut options = NetOptions {
            listen: match args.listen {
                [] => default_listen(DEFAULT_PORT),
                given => given.to_vec(),
            },
            peers: peers.clone(),
            mdns: args.mdns,
            relay: args.relay,
            external: args.external.to_vec(),
        };
        let running = match node.start_net(hub, &signer, &options) {
            // The default port, free a moment ago, taken meanwhile (another node starting at
            // the same time): free ports instead, as if it had been taken all along.
            Err(moot_node::NodeError::Listen { .. }) if args.listen.is_empty() => {
                tracing::info!(port = DEFAULT_PORT, "port taken; listening on free ports");
                options.listen = default_listen(0);
                node.start_net(hub, &signer, &options).node()?
            }
            started => started.node()?,
        };
        let listening = settled_listen_addrs(&running).await?;
        let external = running.dialable(&moot_node::serve::parse_multiaddrs(args.external).node()?);
        // Other commands on this data directory run here from now on (see `control`).
        let listener = crate::control::bind(node.dir())?;
        let socket = crate::control::socket_path(node.dir());
        let owner = {
            use std::os::unix::fs::MetadataExt as _;
            std::fs::metadata(node.dir())
                .context("reading the data directory's owner")?
                .uid()
        };
        let net = Arc::new(NetState {
            running,
            hub,
            addrs: std::sync::RwLock::new(Vec::new()),
            external,
            peers: std::sync::Mutex::new(std::collections::BTreeMap::new()),
            changes,
        });
        net.set_listening(&listening);
        let addrs = net.addrs();
        let ticket = net.ticket()?;
        let served = crate::control::Served {
            node: Arc::clone(&node),
            passphrase: None,
            net: Arc::clone(&net),
        };
        let control = tokio::spawn(crate::control::serve(
            listener,
            served.clone(),
            owner,
            Arc::clone(&turn),
        ));
        if let Some(web) = &web {
            web.backend.set_served(Some(served));
        }
        drop(held);
        let mut ready = json!({
            "node_id": net.running.node_id,
            "hub_id": hub.to_string(),
            "listen": addrs,
            "ticket": ticket,
            "socket": socket.display().to_string(),
        });
        let mut text = format!(
            "serving hub {hub} as node {}\nlistening on:\n  {}\nticket (for `moot hub join`):\n  {ticket}\nother moot commands on this data directory now run through this node",
            net.running.node_id,
            addrs.join("\n  ")
        );
        if let Some(web) = &web {
            ready["http"] = json!(web.url);
            ready["open"] = json!(web.open);
            text.push_str(&format!("\nweb UI: open {}", web.open));
        }
        print(global, ready, text)?;
        let _ = std::io::stdout().flush();
        let result = run_until_stopped(&node, &net, &peers, &mut signals).await;
        // No new clients, then the network task stopped (what it stored is durable already).
        if let Some(web) = web {
            web.stop().await;
        }
        let _ = std::fs::remove_file(&socket);
        control.abort();
        let stopped = net.running.stop().await.node();
        result?;
        stopped?;
        Ok(())
    })
}

/// The running node's network side, shared with commands run through the control socket
/// (`moot sync`, `moot peers`, `moot hub join`).
pub struct NetState {
    pub running: moot_node::serve::Running,
    pub hub: moot_crypto::HubId,
    /// Where it listens (with /p2p/NODE_ID), as the network last said: interfaces come and go
    /// (the Wi-Fi joined after the node started).
    addrs: std::sync::RwLock<Vec<String>>,
    /// `--external` addresses (with /p2p/NODE_ID).
    external: Vec<String>,
    pub peers: std::sync::Mutex<std::collections::BTreeMap<String, PeerSeen>>,
    /// Tells the web UI's pages that something changed.
    pub changes: tokio::sync::broadcast::Sender<moot_http::Change>,
}

impl NetState {
    /// Where the node listens now (with /p2p/NODE_ID).
    pub fn addrs(&self) -> Vec<String> {
        self.addrs.read().map(|a| a.clone()).unwrap_or_default()
    }

    /// Takes the addresses the network listens on now.
    fn set_listening(&self, listening: &[moot_node::serve::Multiaddr]) {
        let dialable = self.running.dialable(listening);
        if let Ok(mut addrs) = self.addrs.write() {
            *addrs = dialable;
        }
    }

    /// The addresses a ticket for the hub carries now (`serve::ticket_addrs`).
    pub fn ticket_addrs(&self) -> Vec<String> {
        moot_node::serve::ticket_addrs(&self.external, &self.addrs())
    }

    /// A ticket for the hub with the addresses other machines can dial now.
    pub fn ticket(&self) -> anyhow::Result<String> {
        let addrs = self.ticket_addrs();
        anyhow::ensure!(!addrs.is_empty(), "the node listens on no address yet");
        moot_node::serve::make_ticket_fitting(&self.hub, &addrs).node()
    }
}

/// The port `moot serve` listens on by default, TCP and QUIC (the README's examples use it).
const DEFAULT_PORT: u16 = 4242;

/// Where `moot serve` listens without `--listen`: every address, TCP and QUIC, on `port`
/// ([`DEFAULT_PORT`]) so that a ticket handed out and the peers that remember this node stay good
/// when it restarts; on free ports if that port is taken on this machine (another node: two
/// nodes on one port would each get some of the other's connections).
fn default_listen(port: u16) -> Vec<String> {
    let free = port == 0
        || (std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok());
    let port = if free {
        port
    } else {
        tracing::info!(port, "port taken; listening on free ports");
        0
    };
    vec![
        format!("/ip4/0.0.0.0/tcp/{port}"),
        format!("/ip4/0.0.0.0/udp/{port}/quic-v1"),
    ]
}

/// The addresses the node listens on once they have settled: each interface of a 0.0.0.0
/// listener is reported on its own, TCP and QUIC apart, so the first answer may hold only the
/// loopback address. Asked again every 200 ms until two answers agree (at most 2 s).
async fn settled_listen_addrs(
    running: &moot_node::serve::Running,
) -> anyhow::Result<Vec<moot_node::serve::Multiaddr>> {
    let ask = || async {
        running
            .handle
            .listen_addrs()
            .await
            .map_err(|e| anyhow::anyhow!("listening: {e}"))
    };
    let mut addrs = ask().await?;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = ask().await?;
        if now == addrs {
            break;
        }
        addrs = now;
    }
    Ok(addrs)
}

/// A peer with a sync session, as the event stream showed it.
#[derive(Debug, Clone)]
pub struct PeerSeen {
    pub device: moot_crypto::PublicKey,
    pub since: std::time::Instant,
    pub ops_received: u64,
    pub last_ops: Option<std::time::Instant>,
}

/// Serves until SIGINT or SIGTERM: dials `peers`, keeps the peer table, brings views and lanes
/// up to date once arrivals settle.
async fn run_until_stopped(
    node: &moot_node::Node,
    net: &NetState,
    peers: &[String],
    signals: &mut Signals,
) -> anyhow::Result<()> {
    let running = &net.running;
    // Subscribed before dialing, so that no session starts unseen.
    let mut events = running
        .handle
        .subscribe()
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    // An address that came up between the start's reading and the subscription.
    if let Ok(addrs) = running.handle.listen_addrs().await {
        net.set_listening(&addrs);
    }
    running.dial(peers).await.node()?;
    let seen = |f: &mut dyn FnMut(&mut std::collections::BTreeMap<String, PeerSeen>)| {
        if let Ok(mut peers) = net.peers.lock() {
            f(&mut peers);
        }
    };
    // Ops arrive frame after frame: the views and lanes are brought up to date once they
    // settle, not after every frame.
    let mut settle: Option<tokio::time::Instant> = None;
    // The replica reads keep (the web UI's pages) is given back once no page reads for a minute,
    // and the devices' points once no ops came for `REST_AFTER` (`Running::rest`).
    let mut tidy = tokio::time::interval(Duration::from_secs(30));
    let mut last_arrival = tokio::time::Instant::now();
    let mut rested = false;
    loop {
        let settled = async {
            match settle {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = signals.recv() => break,
            _ = tidy.tick() => {
                if node.forget_idle_reads(Duration::from_secs(60)) {
                    tokio::task::spawn_blocking(moot_node::memory::give_back);
                }
                if !rested && last_arrival.elapsed() >= moot_node::serve::REST_AFTER {
                    rested = true;
                    if let Err(e) = running.rest().await {
                        tracing::warn!(error = %e, "letting the devices' points go");
                    }
                }
            }
            _ = settled => {
                settle = None;
                running.took_in().await.node()?;
                let _ = net.changes.send(moot_http::Change::Ops);
            }
            // Connections, dials and misbehaving peers are logged by moot-net.
            event = events.recv() => match event {
                Ok(NetEvent::Stored { peer, op_count }) => {
                    tracing::info!(%peer, op_count, "ops taken in");
                    seen(&mut |peers| {
                        if let Some(p) = peers.get_mut(&peer.to_string()) {
                            p.ops_received += op_count as u64;
                            p.last_ops = Some(std::time::Instant::now());
                        }
                    });
                    settle.get_or_insert(tokio::time::Instant::now() + moot_node::serve::SETTLE);
                    last_arrival = tokio::time::Instant::now();
                    rested = false;
                }
                Ok(NetEvent::Connected { peer, device, .. }) => {
                    seen(&mut |peers| {
                        peers.insert(peer.to_string(), PeerSeen {
                            device,
                            since: std::time::Instant::now(),
                            ops_received: 0,
                            last_ops: None,
                        });
                    });
                    let _ = net.changes.send(moot_http::Change::Peers);
                }
                Ok(NetEvent::Disconnected { peer }) => {
                    seen(&mut |peers| {
                        peers.remove(&peer.to_string());
                    });
                    let _ = net.changes.send(moot_http::Change::Peers);
                }
                Ok(NetEvent::Listening { addrs }) => {
                    tracing::info!(?addrs, "listen addresses changed");
                    net.set_listening(&addrs);
                    let _ = net.changes.send(moot_http::Change::Peers);
                }
                Ok(_) => {}
                // Events were lost: a change of addresses among them is read again.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    if let Ok(addrs) = running.handle.listen_addrs().await {
                        net.set_listening(&addrs);
                    }
                }
                Err(_) => break,
            },
        }
    }
    if settle.is_some() {
        running.took_in().await.node()?;
    }
    Ok(())
}

/// `moot peers`: the running node's connected peers.
pub fn peers(global: &Global) -> anyhow::Result<()> {
    let Some(served) = crate::control::served() else {
        anyhow::bail!(
            "no node is running on this data directory: start one with `moot serve` (peers are \
             those of a running node)"
        );
    };
    let net = &served.net;
    let list: Vec<(String, PeerSeen)> = net
        .peers
        .lock()
        .map(|p| p.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();
    let now = std::time::Instant::now();
    let mut rows = Vec::new();
    let mut lines = vec![format!(
        "{} peer(s) connected; listening on {}",
        list.len(),
        net.addrs().join(", ")
    )];
    for (node_id, p) in &list {
        let (member, name) = net
            .running
            .with_roll(|roll| {
                let member = roll.member_of(&p.device);
                let name = member.and_then(|m| roll.member(&m)).map(|r| r.name.clone());
                (member, name)
            })
            .unwrap_or((None, None));
        let lanes = lanes_name(net.running.lanes_of(&p.device));
        let connected = now.saturating_duration_since(p.since).as_secs();
        let last = p
            .last_ops
            .map(|t| now.saturating_duration_since(t).as_secs());
        rows.push(json!({
            "node_id": node_id,
            "device": p.device.to_string(),
            "member_id": member.map(|m| m.to_string()),
            "name": name,
            "lanes": lanes,
            "connected_secs": connected,
            "ops_received": p.ops_received,
            "last_ops_secs_ago": last,
        }));
        lines.push(format!(
            "  {node_id}  {}  lanes: {lanes}  connected {connected} s  {} ops received{}",
            match (&member, name.as_deref()) {
                (None, _) => "(not on the roll)".to_string(),
                (Some(_), None | Some("")) => "(a member; name not known here)".to_string(),
                (Some(_), Some(n)) => moot_text::escape(n).into_owned(),
            },
            p.ops_received,
            last.map_or(String::new(), |s| format!(", last {s} s ago"))
        ));
    }
    print(
        global,
        json!({"hub_id": net.hub.to_string(), "listen": net.addrs(), "peers": rows}),
        lines.join("\n"),
    )
}

fn lanes_name(lanes: moot_node::serve::Lanes) -> &'static str {
    if lanes.contains(moot_crypto::Lane::Members) {
        "public+members"
    } else if lanes.contains(moot_crypto::Lane::Public) {
        "public"
    } else {
        "none"
    }
}

/// `moot sync` or `moot hub join` through a running node: its network dials the peers and the
/// command waits until nothing more comes.
fn sync_served(
    served: &crate::control::Served,
    peers: &[String],
    timeout: u64,
) -> anyhow::Result<moot_node::serve::SyncReport> {
    let net = Arc::clone(&served.net);
    let peers = peers.to_vec();
    let handle = tokio::runtime::Handle::try_current()
        .map_err(|_| anyhow::anyhow!("the running node's runtime is gone"))?;
    handle.block_on(async move {
        net.running
            .sync_until_quiet(
                &peers,
                Duration::from_millis(1_500),
                Duration::from_secs(timeout.max(1)),
                &mut |_| {},
            )
            .await
            .node()
    })
}

pub fn sync(global: &Global, peers: &[String], timeout: u64) -> anyhow::Result<()> {
    let mut session = open(global)?;
    let hub = session.hub()?;
    let report = if let Some(served) = crate::control::served() {
        anyhow::ensure!(
            served.net.hub == hub,
            "the running node serves hub {}: stop it to sync another hub",
            served.net.hub
        );
        sync_served(&served, peers, timeout)?
    } else {
        sync_alone(global.json, &mut session, hub, peers, timeout)?
    };
    if report.peers.is_empty() {
        if report.unreachable.is_empty() {
            anyhow::bail!("no peer could be reached within {timeout} s");
        }
        anyhow::bail!(
            "no peer could be reached: {}",
            unreachable_text(&report.unreachable)
        );
    }
    let mut text = format!(
        "synced with {} peer(s): {} new ops{}",
        report.peers.len(),
        report.new_ops,
        if report.complete {
            ""
        } else {
            " (not complete: stopped at the timeout, or a peer's heads did not show it holding \
             everything sent; run it again)"
        }
    );
    if !report.unreachable.is_empty() {
        text.push_str(&format!(
            "\nnot reached: {}",
            unreachable_text(&report.unreachable)
        ));
    }
    print(global, serde_json::to_value(&report)?, text)
}

/// The addresses a sync could not reach, with why, for a person (escaped: an address may carry a
/// name given on the command line or in a ticket).
fn unreachable_text(unreachable: &[moot_node::serve::Unreachable]) -> String {
    unreachable
        .iter()
        .map(|u| {
            format!(
                "{} ({})",
                moot_text::escape(&u.addr),
                moot_text::escape(&u.error)
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A one-shot sync on a node not otherwise running.
fn sync_alone(
    json: bool,
    session: &mut crate::node_cmd::Session,
    hub: moot_crypto::HubId,
    peers: &[String],
    timeout: u64,
) -> anyhow::Result<moot_node::serve::SyncReport> {
    let signer = session.signer()?;
    let node = Arc::clone(&session.node);
    let options = NetOptions {
        listen: Vec::new(),
        peers: peers.to_vec(),
        ..NetOptions::default()
    };
    crate::logs::init(false);
    let progress = Progress::new(json);
    let shown = &progress;
    let report = runtime()?.block_on(async move {
        let running = node.start_net(hub, &signer, &options).node()?;
        running
            .sync_once(
                peers,
                Duration::from_millis(1_500),
                Duration::from_secs(timeout.max(1)),
                &mut |n| shown.set(n),
            )
            .await
            .node()
    });
    progress.finish();
    report
}

/// A spinner with the ops taken in so far, on stderr when a person watches it (never with
/// `--json`, never for a command run through a running node).
struct Progress(Option<indicatif::ProgressBar>);

impl Progress {
    fn new(json: bool) -> Progress {
        if json || !crate::out::stderr_is_terminal() {
            return Progress(None);
        }
        let bar = indicatif::ProgressBar::new_spinner();
        bar.set_message("connecting…");
        bar.enable_steady_tick(Duration::from_millis(120));
        Progress(Some(bar))
    }

    fn set(&self, ops: u64) {
        if let Some(bar) = &self.0 {
            bar.set_message(format!("{ops} ops taken in"));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

/// Remembers a ticket's addresses for `moot serve` to keep connected: those of the nodes the
/// join reached; if it reached none, all of them — but only for a hub with no known peer yet
/// (a first join while the hall is out of reach), so that a ticket of made-up addresses cannot
/// push out the nodes this one really syncs with.
fn remember_reached(
    node: &moot_node::Node,
    hub: &moot_crypto::HubId,
    addrs: &[String],
    report: Option<&moot_node::serve::SyncReport>,
) -> anyhow::Result<()> {
    let reached: Vec<String> = addrs
        .iter()
        .filter(|a| {
            report.is_some_and(|r| r.peers.iter().any(|p| a.ends_with(&format!("/p2p/{p}"))))
        })
        .cloned()
        .collect();
    let keep = if !reached.is_empty() {
        reached
    } else if node.known_peers(hub).map(|k| k.is_empty()).unwrap_or(true) {
        addrs.to_vec()
    } else {
        Vec::new()
    };
    if keep.is_empty() {
        return Ok(());
    }
    node.remember_peers(hub, &keep).node()
}

pub fn join(global: &Global, ticket: &str, timeout: u64) -> anyhow::Result<()> {
    let (hub, addrs) = moot_node::serve::parse_ticket(ticket)
        .node()
        .map_err(crate::bad_input)?;
    let mut session = open(global)?;
    if let Some(served) = crate::control::served() {
        anyhow::ensure!(
            served.net.hub == hub,
            "the running node serves hub {}: stop it (Ctrl-C) to join another hub",
            served.net.hub
        );
        let report = sync_served(&served, &addrs, timeout);
        remember_reached(&served.node, &hub, &addrs, report.as_ref().ok())?;
        let report = report?;
        let name = served.node.name_from_genesis(&hub).node()?;
        return print(
            global,
            json!({"hub_id": hub.to_string(), "name": name, "new_ops": report.new_ops}),
            format!(
                "this node serves hub {} ({hub}) already: synced with the ticket's node, {} new ops",
                moot_text::escape(&name),
                report.new_ops
            ),
        );
    }
    let signer = session.signer()?;
    let node = Arc::clone(&session.node);
    drop(session);
    node.prepare_join(&hub).node()?;
    // Remembered before the sync too (on a first join: all of the ticket's addresses), so that
    // a join cut short — Ctrl-C, a laptop closed, a crash — leaves `moot serve` knowing where
    // the hub is; the sync's outcome then puts the nodes reached first.
    remember_reached(&node, &hub, &addrs, None)?;
    let options = NetOptions {
        listen: Vec::new(),
        peers: addrs.clone(),
        ..NetOptions::default()
    };
    crate::logs::init(false);
    let joined = Arc::clone(&node);
    let progress = Progress::new(global.json);
    let shown = &progress;
    let dial = addrs.clone();
    let report = runtime()?.block_on(async move {
        let running = joined.start_net(hub, &signer, &options).node()?;
        running
            .sync_once(
                &dial,
                Duration::from_millis(1_500),
                Duration::from_secs(timeout.max(1)),
                &mut |n| shown.set(n),
            )
            .await
            .node()
    });
    progress.finish();
    // `moot serve` keeps the ticket's nodes connected from now on.
    remember_reached(&node, &hub, &addrs, report.as_ref().ok())?;
    let report = report?;
    if report.peers.is_empty() {
        let why = if report.unreachable.is_empty() {
            format!("within {timeout} s")
        } else {
            format!("({})", unreachable_text(&report.unreachable))
        };
        anyhow::bail!(
            "the hub is recorded, but no peer of the ticket could be reached {why}: join again, \
             or `moot sync --peer ADDR`, when it can be"
        );
    }
    // Reached, yet nothing of the hub came: a members-only hub's nodes send a device they do
    // not know nothing at all.
    let name = match node.name_from_genesis(&hub) {
        Ok(name) => name,
        Err(_) if report.new_ops == 0 => anyhow::bail!(
            "reached the ticket's node, but it sent nothing of the hub: if the hub is \
             members-only, its nodes send nothing to a device they do not know. Ask a steward \
             to add you (`moot member add {}`), then join again",
            node.identity()
                .map(|i| i.member_id)
                .unwrap_or_else(|_| "YOUR_MEMBER_ID (see `moot id`)".into())
        ),
        Err(e) => return Err(e).node(),
    };
    let text = format!(
        "joined hub {} ({hub}): {} new ops",
        moot_text::escape(&name),
        report.new_ops
    );
    print(
        global,
        json!({"hub_id": hub.to_string(), "name": name, "new_ops": report.new_ops}),
        text,
    )
}
