//! The node on the network: `moot serve` and `moot sync --peer`.

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use moot_node::serve::NetOptions;
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

pub fn serve(
    global: &Global,
    listen: &[String],
    peers: &[String],
    mdns: bool,
    relay: bool,
    external: &[String],
) -> anyhow::Result<()> {
    let mut session = match open(global) {
        Ok(session) => session,
        Err(e)
            if matches!(
                e.downcast_ref::<moot_node::NodeError>(),
                Some(moot_node::NodeError::NoNode { .. })
            ) =>
        {
            return crate::node_cmd::first_run(global);
        }
        Err(e) => return Err(e),
    };
    let hub = session.hub()?;
    let signer = session.signer()?;
    let node = Arc::new(session.node);
    let options = NetOptions {
        listen: listen.to_vec(),
        peers: peers.to_vec(),
        mdns,
        relay,
        external: external.to_vec(),
    };
    crate::logs::init(!global.json);
    runtime()?.block_on(async move {
        let running = node.start_net(hub, &signer, &options).node()?;
        let addrs = running
            .handle
            .listen_addrs()
            .await
            .map_err(|e| anyhow::anyhow!("listening: {e}"))?;
        let addrs = running.dialable(&addrs);
        let ticket = moot_node::serve::make_ticket(&hub, &addrs).node()?;
        let ready = json!({
            "node_id": running.node_id,
            "hub_id": hub.to_string(),
            "listen": addrs,
            "ticket": ticket,
        });
        let text = format!(
            "serving hub {hub} as node {}\nlistening on:\n  {}\nticket (for `moot hub join`):\n  {ticket}",
            running.node_id,
            addrs.join("\n  ")
        );
        print(global, ready, text)?;
        let _ = std::io::stdout().flush();
        running.dial(peers).await.node()?;
        let mut events = running
            .handle
            .subscribe()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("listening for SIGTERM")?;
        // Made once, like `term`: a SIGINT that arrives while the loop is busy (bringing the
        // views up to date) is kept for the next turn, not lost with a fresh `ctrl_c()`.
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .context("listening for SIGINT")?;
        // Ops arrive frame after frame: the views and lanes are brought up to date once they
        // settle, not after every frame.
        let mut settle: Option<tokio::time::Instant> = None;
        loop {
            let settled = async {
                match settle {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = int.recv() => break,
                _ = term.recv() => break,
                _ = settled => {
                    settle = None;
                    running.took_in().await.node()?;
                }
                // Connections, dials and misbehaving peers are logged by moot-net.
                event = events.recv() => match event {
                    Ok(moot_node::serve::NetEvent::Stored { peer, op_count }) => {
                        tracing::info!(%peer, op_count, "ops taken in");
                        settle.get_or_insert(
                            tokio::time::Instant::now() + moot_node::serve::SETTLE,
                        );
                    }
                    Ok(_) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                },
            }
        }
        if settle.is_some() {
            running.took_in().await.node()?;
        }
        running.stop().await.node()?;
        Ok(())
    })
}

pub fn sync(global: &Global, peers: &[String], timeout: u64) -> anyhow::Result<()> {
    let mut session = open(global)?;
    let hub = session.hub()?;
    let signer = session.signer()?;
    let node = Arc::new(session.node);
    let options = NetOptions {
        listen: Vec::new(),
        peers: peers.to_vec(),
        ..NetOptions::default()
    };
    crate::logs::init(false);
    let report = runtime()?.block_on(async move {
        let running = node.start_net(hub, &signer, &options).node()?;
        running
            .sync_once(
                peers,
                Duration::from_millis(1_500),
                Duration::from_secs(timeout.max(1)),
            )
            .await
            .node()
    })?;
    if report.peers.is_empty() {
        anyhow::bail!("no peer could be reached within {timeout} s");
    }
    let text = format!(
        "synced with {} peer(s): {} new ops{}",
        report.peers.len(),
        report.new_ops,
        if report.complete {
            ""
        } else {
            " (stopped at the timeout)"
        }
    );
    print(global, serde_json::to_value(&report)?, text)
}

pub fn join(global: &Global, ticket: &str, timeout: u64) -> anyhow::Result<()> {
    let (hub, addrs) = moot_node::serve::parse_ticket(ticket)
        .node()
        .map_err(crate::bad_input)?;
    let mut session = open(global)?;
    let signer = session.signer()?;
    let node = Arc::new(session.node);
    node.prepare_join(&hub).node()?;
    let options = NetOptions {
        listen: Vec::new(),
        peers: addrs.clone(),
        ..NetOptions::default()
    };
    crate::logs::init(false);
    let joined = Arc::clone(&node);
    let report = runtime()?.block_on(async move {
        let running = joined.start_net(hub, &signer, &options).node()?;
        running
            .sync_once(
                &addrs,
                Duration::from_millis(1_500),
                Duration::from_secs(timeout.max(1)),
            )
            .await
            .node()
    })?;
    if report.peers.is_empty() {
        anyhow::bail!(
            "the hub is recorded, but no peer of the ticket could be reached within {timeout} s: \
             try `moot sync --peer ADDR` when it can"
        );
    }
    let name = node.name_from_genesis(&hub).node()?;
    let text = format!(
        "joined hub {} ({hub}): {} ops so far",
        moot_text::escape(&name),
        report.new_ops
    );
    print(
        global,
        json!({"hub_id": hub.to_string(), "name": name, "new_ops": report.new_ops}),
        text,
    )
}
