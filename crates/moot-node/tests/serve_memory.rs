//! A running node lets go of its caches once a burst of arrivals has settled: real nodes
//! (libp2p on 127.0.0.1, real redb stores), a fresh node syncing a hub of 2,000+ ops.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use moot_node::Node;
use moot_node::serve::{NetOptions, Running, SharedOps};
use moot_state::poll::PollInfo;
use moot_state::{Roll, sample};
use moot_sync::OpStore as _;

fn options() -> NetOptions {
    NetOptions {
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        ..NetOptions::default()
    }
}

async fn cached(node: &Running) -> usize {
    node.handle
        .with_state(|replica, _: &mut SharedOps| replica.cached_rolls())
        .await
        .unwrap()
}

/// Devices certified, and how many of their points are held.
async fn devices(node: &Running) -> (usize, usize) {
    node.handle
        .with_state(|replica, _: &mut SharedOps| replica.known_devices())
        .await
        .unwrap()
}

async fn results(node: &Running) -> (Roll, Vec<PollInfo>) {
    node.handle
        .with_state(|replica, _: &mut SharedOps| (replica.roll(), replica.polls()))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settled_node_sheds_the_rolls_of_pasts_and_keeps_its_results() {
    // 400 members each certifying a device (800 roll ops), 2 proposals of 1 + 50 edits, a
    // poll with 400 ballots, 20 offers.
    let w = sample::workload(400, 2, 50, 20, 11);
    let dirs = tempfile::tempdir().unwrap();
    let loaded = Arc::new(Node::open(&dirs.path().join("a")).unwrap());
    loaded
        .init_with_keys("A", sample::key(1, 0), sample::key(2, 0))
        .unwrap();
    loaded.import_hub(&w.hub, "W", &w.ops).unwrap();
    let fresh = Arc::new(Node::open(&dirs.path().join("b")).unwrap());
    // Member 100, with the device W certifies for it: it receives both lanes.
    fresh
        .init_with_keys("B", sample::key(1, 100), sample::key(2, 100))
        .unwrap();
    fresh.prepare_join(&w.hub).unwrap();

    let a = loaded
        .start_net(w.hub, &loaded.signer(None, None).unwrap(), &options())
        .unwrap();
    // Loading the hub cached the rolls of its pasts; starting let them go.
    assert!(cached(&a).await <= 3);
    let addr = format!(
        "{}/p2p/{}",
        a.handle.listen_addrs().await.unwrap()[0],
        a.node_id
    );
    let b = fresh
        .start_net(w.hub, &fresh.signer(None, None).unwrap(), &options())
        .unwrap();
    b.dial(&[addr]).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let held = b
            .handle
            .with_state(|_, store: &mut SharedOps| store.end())
            .await
            .unwrap();
        if held >= w.ops.len() as u64 {
            break;
        }
        assert!(Instant::now() < deadline, "{held} of {} ops", w.ops.len());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Taking in 2,000+ ops cached the rolls of hundreds of pasts, until the settle.
    let before = cached(&b).await;
    b.took_in().await.unwrap();
    let after = cached(&b).await;
    assert!(before > 10, "{before} rolls cached before the settle");
    assert!(
        after <= 3,
        "{after} rolls cached after the settle ({before} before)"
    );
    // The results are those of the loaded node.
    assert_eq!(results(&a).await, results(&b).await);
    // At rest, a node lets its devices' points go (a settle keeps them), and its results
    // stay. The loaded node holds a point for each device (loading decodes each certificate
    // just before its device is added); the fresh one holds those its checks needed after the
    // device was certified, which depends on how the frames' checks ran ahead (none at all
    // under load: the checks of a frame ran before the frame that certified its devices was
    // judged).
    let (known, held) = devices(&a).await;
    assert!(known >= 400 && held > 0, "{known} devices, {held} points");
    assert!(a.rest().await.unwrap());
    assert_eq!(devices(&a).await, (known, 0));
    assert!(!a.rest().await.unwrap());
    let (known, _) = devices(&b).await;
    assert!(known >= 400, "{known} devices");
    b.rest().await.unwrap();
    assert_eq!(devices(&b).await, (known, 0));
    assert!(!b.rest().await.unwrap());
    assert_eq!(results(&a).await, results(&b).await);
    b.stop().await.unwrap();
    a.stop().await.unwrap();
}
