//! Access control on the network, through real `moot serve` processes (loopback, mDNS off): a
//! members-only hub gives a stranger nothing at all, a guest its public lane only, and a
//! member's new device everything (vouched for by its member's certificate before the roll
//! knows it); a member removed while connected stops receiving the members lane at once, while
//! the connection goes on carrying the public lane.

use std::time::Duration;

use crate::node::Data;
use crate::serving::{serve, stop};

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
    // ... and is told why, and what to do.
    assert!(err.contains("members-only"), "{err}");
    assert!(err.contains("moot member add"), "{err}");

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
    crate::serving::eventually(
        "the member receives the members lane",
        Duration::from_secs(30),
        || assembly_names(&branch).contains(&"Before".to_string()),
    );

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
    crate::serving::eventually(
        "the public op reaches the removed member's node",
        Duration::from_secs(30),
        || assembly_names(&branch).contains(&"Public after".to_string()),
    );
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
