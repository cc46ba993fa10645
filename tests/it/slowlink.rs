//! `moot hub join` over a slow link: two network namespaces joined by a veth pair that `tc`
//! limits to 1 Mbit/s each way, so the hub's first frame (about 500 KB) takes about 4 s to
//! cross — longer than the 1.5 s of quiet that ends a one-shot sync. The join used to end
//! while that frame was on its way ("the hub's genesis did not arrive"); the frame's bytes now
//! keep it waiting. Where namespaces or `tc` cannot be used (no `ip`, no privilege), the test
//! says why and checks nothing else.

use std::time::{Duration, Instant};

use moot_crypto::HubId;

use crate::mdns::Namespaces;
use crate::node::Data;
use crate::serving::{serve_with, stop};

/// The ops a data directory's store holds for `hub` (no node may be running on it).
fn op_count(data: &Data, hub: &HubId) -> u64 {
    let node = moot_node::Node::open(&data.dir()).unwrap();
    node.store().unwrap().op_count(hub).unwrap()
}

#[test]
fn a_hub_joined_over_a_slow_link_arrives_whole() {
    let made = Namespaces::make_on("10.231.79", "s").and_then(|n| {
        n.shape("1mbit")?;
        Ok(n)
    });
    let Some(namespaces) = crate::mdns::or_skip(made) else {
        return;
    };
    let (hall, branch) = (Data::new(), Data::new());
    // A hub of 2,600 ops (26 members and filler ops of about 240 bytes), written through the
    // real store: its first frame is 2,048 ops, about 500 KB.
    let (hub, history) = moot_state::sample::history(26, 2_600 - 2 - 3 * 26);
    {
        let node = moot_node::Node::open(&hall.dir()).unwrap();
        node.init_with_keys(
            "Founder",
            moot_state::sample::key(1, 0),
            moot_state::sample::key(2, 0),
        )
        .unwrap();
        node.import_hub(&hub, "Slow", &history).unwrap();
    }
    let bob = branch.ok(&["init", "--name", "Bob"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    let held = op_count(&hall, &hub);
    assert!(held > 2_600, "{held}");
    let (hall_node, ready) = serve_with(
        &["ip", "netns", "exec", &namespaces.names[0]],
        &hall,
        &[
            "--no-mdns",
            "--no-http",
            "--listen",
            "/ip4/10.231.79.1/tcp/0",
        ],
    );
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    let start = Instant::now();
    let (out, json) = crate::mdns::join_in(&namespaces.names[1], &branch, &ticket, "120");
    let took = start.elapsed();
    assert!(
        out.status.success(),
        "join failed after {took:?}: {json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The link was slow: the frames took seconds (else this tested nothing).
    assert!(took > Duration::from_secs(3), "{took:?}");
    stop(hall_node);
    // Every op of the hall's arrived (the branch also holds its device's own certification).
    assert_eq!(json["new_ops"].as_u64(), Some(held), "{json}");
    assert!(op_count(&branch, &hub) >= held);
    drop(namespaces);
}
