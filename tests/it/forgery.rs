//! Issue 11, 4c, with real processes and real stores: a node that sends a forged op (another
//! member's ballot whose signature no longer verifies, planted in its own redb store as a
//! dishonest node's disk would hold it) is refused and disconnected by the running node it
//! syncs with; the honest nodes carry on and count the genuine ballot.

use std::time::Duration;

use serde_json::Value;

use crate::node::Data;
use crate::serving::{serve_logged, stop};

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no {name} in {value}"))
        .to_string()
}

/// The op ids a node holds, newest first (through its running node if there is one).
fn held(data: &Data) -> Vec<String> {
    data.ok(&["activity", "--limit", "500"])["activity"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| field(op, "op_id"))
        .collect()
}

#[test]
fn a_node_sending_a_forged_ballot_is_refused_and_dropped_and_the_honest_nodes_carry_on() {
    let (hall, north, forger) = (Data::new(), Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    let hub = field(&hall.ok(&["hub", "create", "Riverside"]), "hub_id");
    for (data, name) in [(&north, "Nell"), (&forger, "Mo")] {
        let id = field(&data.ok(&["init", "--name", name]), "member_id");
        hall.ok(&["member", "add", &id, "--name", name]);
    }
    let poll = hall.open_poll("Which campaign first?", &["Buses", "Bikes"]);
    let log = hall.0.path().join("serve.log");
    let (hall_node, ready) = serve_logged(&hall, &log);
    let ticket = field(&ready, "ticket");
    let hall_addr = ready["listen"][0].as_str().unwrap().to_string();
    north.ok(&["hub", "join", &ticket, "--timeout", "20"]);
    forger.ok(&["hub", "join", &ticket, "--timeout", "20"]);

    // Nell votes on her laptop, not connected to anyone.
    let genuine = field(
        &north.ok(&["vote", &poll, "--score", "Buses=1", "--score", "Bikes=5"]),
        "ballot_id",
    );
    // Mo gets hold of it and alters it: one bit of its signature (a well-formed op that is
    // not Nell's), written straight into his own store, below the checks moot makes.
    let hub = moot_node::parse_hub_id(&hub).unwrap();
    let genuine_id = moot_node::polls::parse_op_id(&genuine).unwrap();
    let mut bytes = moot_store::Store::open(&north.dir().join("moot.redb"))
        .unwrap()
        .op(&hub, &genuine_id)
        .unwrap()
        .expect("Nell's ballot in her store");
    let at = bytes.len() - 64;
    bytes[at] ^= 0x01;
    let forged = moot_crypto::SignedOp::decode(&bytes).unwrap();
    assert!(forged.clone().authenticate(&hub).is_err(), "not a forgery");
    let forged_id = forged.id().to_string();
    moot_store::Store::open(&forger.dir().join("moot.redb"))
        .unwrap()
        .put_ops(&hub, &[&forged])
        .unwrap();
    assert!(
        held(&forger).contains(&forged_id),
        "the forger does not offer it"
    );

    // Mo's node pushes it to the hall's running node: refused, and Mo's node dropped.
    let _ = forger.run(&["sync", "--peer", &hall_addr, "--timeout", "10"]);
    let forger_node = field(&forger.ok(&["id"]), "node_id");
    crate::serving::eventually(
        "the hall reports the forger's misbehaviour",
        Duration::from_secs(30),
        || {
            std::fs::read_to_string(&log).unwrap().lines().any(|line| {
                line.contains("peer misbehaved; disconnected")
                    && line.contains(&forger_node)
                    && line.contains("BadSignature")
            })
        },
    );
    assert!(
        !held(&hall).contains(&forged_id),
        "the hall took the forgery"
    );
    let peers = hall.ok(&["peers"]);
    assert!(
        !peers.to_string().contains(&forger_node),
        "the forger is still connected: {peers}"
    );

    // The honest nodes carry on: Nell's genuine ballot reaches the hall, the hall's writes
    // reach her, and the returning officer's close counts her ballot, not the forgery.
    let report = north.ok(&["sync", "--peer", &hall_addr, "--timeout", "20"]);
    assert_eq!(report["complete"], true, "{report}");
    assert!(held(&hall).contains(&genuine));
    hall.ok(&["vote", &poll, "--score", "Buses=5", "--score", "Bikes=0"]);
    hall.ok(&["poll", "close", &poll]);
    north.ok(&["sync", "--peer", &hall_addr, "--timeout", "20"]);
    let at_hall = hall.ok(&["poll", "results", &poll]);
    let at_north = north.ok(&["poll", "results", &poll]);
    assert_eq!(at_hall, at_north);
    assert_eq!(at_hall["counted"], 2, "{at_hall}");
    let totals: Vec<(String, u64)> = at_hall["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (field(o, "name"), o["total"].as_u64().unwrap()))
        .collect();
    assert!(totals.contains(&("Buses".into(), 6)), "{totals:?}");
    assert!(totals.contains(&("Bikes".into(), 5)), "{totals:?}");
    stop(hall_node);
}
