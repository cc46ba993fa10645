//! A one-shot sync through a running node: real nodes (libp2p on 127.0.0.1, real redb stores).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use moot_node::Node;
use moot_node::serve::{NetOptions, Running};
use moot_state::sample;

fn options() -> NetOptions {
    NetOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..NetOptions::default()
    }
}

async fn addr(node: &Running) -> String {
    format!(
        "{}/p2p/{}",
        node.handle.listen_addrs().await.unwrap()[0],
        node.node_id
    )
}

/// While a running node syncs with one peer, another peer that breaks the protocol (a node of
/// another hub, whose ops fail this hub's signature checks) is dropped as always, and the
/// sync goes on to complete: another peer's misbehaviour is not this sync's failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_goes_on_when_another_peer_of_the_node_misbehaves() {
    let (hub, ops) = sample::history(3, 40);
    let dirs = tempfile::tempdir().unwrap();
    let open = |name: &str, member: usize| {
        let node = Arc::new(Node::open(&dirs.path().join(name)).unwrap());
        node.init_with_keys(name, sample::key(1, member), sample::key(2, member))
            .unwrap();
        node
    };
    let (a, b, c) = (open("a", 0), open("b", 50), open("c", 60));
    a.import_hub(&hub, "H", &ops[..20]).unwrap();
    b.import_hub(&hub, "H", &ops).unwrap();
    // c serves a hub of its own.
    let other = c
        .create_hub("Other", &c.signer(None, None).unwrap())
        .unwrap();
    let a = a
        .start_net(hub, &a.signer(None, None).unwrap(), &options())
        .unwrap();
    let b = b
        .start_net(hub, &b.signer(None, None).unwrap(), &options())
        .unwrap();
    let c = c
        .start_net(
            other,
            &c.signer(None, None).unwrap(),
            &NetOptions::default(),
        )
        .unwrap();
    let (at_a, at_b) = (addr(&a).await, addr(&b).await);
    let a = Arc::new(a);
    let syncing = {
        let a = Arc::clone(&a);
        tokio::spawn(async move {
            a.sync_until_quiet(
                &[at_b],
                Duration::from_millis(1_500),
                Duration::from_secs(30),
                &mut |_| {},
            )
            .await
        })
    };
    // Within the sync's wait, c connects to a and sends it ops of its own hub.
    tokio::time::sleep(Duration::from_millis(200)).await;
    c.dial(&[at_a]).await.unwrap();
    let report = syncing.await.unwrap().unwrap();
    assert!(report.complete, "{report:?}");
    assert_eq!(report.new_ops, (ops.len() - 20) as u64, "{report:?}");
    let stats = a.handle.stats().await.unwrap();
    assert!(
        stats.disconnected_for_misbehaviour >= 1,
        "the other hub's node was not dropped: {stats:?}"
    );
    c.stop().await.unwrap();
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}

/// A listen address another socket holds is `NodeError::Listen` (what `moot serve` falls back
/// to free ports on when it chose the port itself), naming the address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_listen_error() {
    let (hub, ops) = sample::history(2, 0);
    let dirs = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::open(&dirs.path().join("a")).unwrap());
    node.init_with_keys("a", sample::key(1, 0), sample::key(2, 0))
        .unwrap();
    node.import_hub(&hub, "H", &ops).unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    let options = NetOptions {
        listen: vec![format!("/ip4/127.0.0.1/tcp/{port}")],
        ..NetOptions::default()
    };
    match node.start_net(hub, &node.signer(None, None).unwrap(), &options) {
        Err(moot_node::NodeError::Listen { addr, .. }) => {
            assert_eq!(addr, format!("/ip4/127.0.0.1/tcp/{port}"));
        }
        Err(other) => panic!("another error: {other}"),
        Ok(running) => {
            running.stop().await.unwrap();
            panic!("listened on a taken port");
        }
    }
    drop(held);
}

/// A join cut short after the hub's ops arrived (Ctrl-C, a crash, before the join named the
/// hub) leaves it recorded under the placeholder; it is shown by its genesis's name all the
/// same, in the list of hubs and on its own.
#[test]
fn a_join_cut_short_still_shows_the_hub_by_its_genesis_name() {
    let (hub, ops) = sample::history(3, 10);
    let dirs = tempfile::tempdir().unwrap();
    let node = Node::open(&dirs.path().join("n")).unwrap();
    node.init_with_keys("n", sample::key(1, 40), sample::key(2, 40))
        .unwrap();
    assert!(node.prepare_join(&hub).unwrap());
    assert_eq!(node.hub_name(&hub).unwrap(), moot_node::serve::JOINING_NAME);
    let mut replica = node.replica(&hub).unwrap();
    node.ingest(&hub, &mut replica, &ops).unwrap();
    let genesis = moot_crypto::SignedOp::decode(&ops[0]).unwrap();
    let Ok(moot_state::Body::Found(found)) =
        moot_state::Body::decode(genesis.kind(), genesis.body())
    else {
        panic!("the first op is not the genesis");
    };
    assert_ne!(found.name, moot_node::serve::JOINING_NAME);
    assert_eq!(node.hub_name(&hub).unwrap(), found.name);
    let hubs = node.hubs().unwrap();
    assert_eq!(hubs.len(), 1);
    assert_eq!(hubs[0].name, found.name);
}
