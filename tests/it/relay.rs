//! A node reachable only through a relay, through the binary (loopback only, mDNS off): a
//! branch node runs `moot serve --relay`; the hall serves listening through the relay's circuit
//! alone; a member's node syncs with the hall by the circuit address the hall prints.

use serde_json::Value;

use crate::node::Data;
use crate::serving::{serve_with, stop};

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

#[test]
fn a_hall_listening_through_a_relay_is_reached_by_its_circuit_address() {
    let (hall, relay, branch) = (Data::new(), Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let genesis = hall.0.path().join("genesis.bundle").display().to_string();
    hall.ok(&["bundle", "export", &genesis]);
    // The relay serves the same hub (a node of one hub drops peers of another) but is no
    // member: it is sent the public lane only, so the members lane can reach the branch from
    // the hall alone.
    relay.ok(&["init", "--name", "Relay"]);
    relay.ok(&["bundle", "import", &genesis]);
    let bob = field(&branch.ok(&["init", "--name", "Bob"]), "member_id");
    branch.ok(&["bundle", "import", &genesis]);
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    let xena = field(&hall.ok(&["key", "new", "--name", "Xena"]), "member_id");
    hall.ok(&["member", "add", &xena, "--name", "Xena"]);

    let (relay_node, ready) = serve_with(
        &[],
        &relay,
        &["--no-mdns", "--relay", "--listen", "/ip4/127.0.0.1/tcp/0"],
    );
    let relay_addr = ready["listen"][0].as_str().unwrap().to_string();
    assert!(
        relay_addr.starts_with("/ip4/127.0.0.1/tcp/"),
        "{relay_addr}"
    );
    let circuit = format!("{relay_addr}/p2p-circuit");
    let (hall_node, ready) = serve_with(&[], &hall, &["--no-mdns", "--listen", &circuit]);
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    assert_eq!(
        hall_addr,
        format!("{circuit}/p2p/{}", field(&ready, "node_id"))
    );

    let hall_id = field(&ready, "node_id");
    let synced = branch.ok(&["sync", "--peer", &hall_addr, "--timeout", "20"]);
    // The branch synced with the hall (and with the relay, which it connected to on the way).
    let peers = synced["peers"].as_array().unwrap();
    assert!(peers.iter().any(|p| p == hall_id.as_str()), "{synced}");
    let members = branch.ok(&["members"]);
    let names: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(names.contains(&"Xena"), "{members}");
    stop(hall_node);
    stop(relay_node);
}
