//! mDNS discovery between two nodes, each in a network namespace this test creates and joins by
//! a veth pair: no traffic ever reaches a real interface. Where namespaces cannot be made (no
//! `ip`, no privilege), the test says why and checks nothing else. Every other test runs with
//! mDNS off.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::node::Data;
use crate::serving::{Server, serve_with, stop};

/// `made`, or `None` after saying why the test checks nothing here: network namespaces cannot
/// be made (no `ip`, no privilege). With `MOOT_REQUIRE_NETNS=1` (CI, where they can) that is a
/// failure instead, so that these tests are never skipped unseen.
pub fn or_skip(made: Result<Namespaces, String>) -> Option<Namespaces> {
    match made {
        Ok(made) => Some(made),
        Err(reason) => {
            assert!(
                std::env::var("MOOT_REQUIRE_NETNS").as_deref() != Ok("1"),
                "MOOT_REQUIRE_NETNS=1 but network namespaces are unavailable ({reason})"
            );
            println!("skipped: network namespaces unavailable here ({reason})");
            None
        }
    }
}

/// Two namespaces joined by a veth pair; removed (with the pair) when dropped.
pub struct Namespaces {
    pub names: [String; 2],
    devices: [String; 2],
}

impl Namespaces {
    pub fn make() -> Result<Namespaces, String> {
        Namespaces::make_on("10.231.77", "m")
    }

    /// Two namespaces on `subnet`.0/24 (`.1` and `.2`), their veth devices named from
    /// `prefix` (tests running at once need their own).
    pub fn make_on(subnet: &str, prefix: &str) -> Result<Namespaces, String> {
        let id = std::process::id();
        let names = [
            format!("moot-{prefix}a-{id}"),
            format!("moot-{prefix}b-{id}"),
        ];
        let ip = |args: &[&str]| -> Result<(), String> {
            let out = Command::new("ip")
                .args(args)
                .output()
                .map_err(|e| format!("cannot run `ip`: {e}"))?;
            if out.status.success() {
                Ok(())
            } else {
                Err(format!(
                    "`ip {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                ))
            }
        };
        let (va, vb) = (format!("{prefix}va{id}"), format!("{prefix}vb{id}"));
        ip(&["netns", "add", &names[0]])?;
        let made = Namespaces {
            names: names.clone(),
            devices: [va.clone(), vb.clone()],
        };
        ip(&["netns", "add", &names[1]])?;
        ip(&["link", "add", &va, "type", "veth", "peer", "name", &vb])?;
        ip(&["link", "set", &va, "netns", &names[0]])?;
        ip(&["link", "set", &vb, "netns", &names[1]])?;
        let (a, b) = (format!("{subnet}.1/24"), format!("{subnet}.2/24"));
        for (ns, dev, addr) in [(&names[0], &va, &a), (&names[1], &vb, &b)] {
            ip(&["-n", ns, "addr", "add", addr, "dev", dev])?;
            ip(&["-n", ns, "link", "set", dev, "multicast", "on", "up"])?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        Ok(made)
    }

    /// Limits the link to `rate` (a `tc` rate, e.g. `1mbit`) each way.
    pub fn shape(&self, rate: &str) -> Result<(), String> {
        for (ns, dev) in self.names.iter().zip(&self.devices) {
            let out = Command::new("ip")
                .args([
                    "netns", "exec", ns, "tc", "qdisc", "add", "dev", dev, "root", "tbf",
                ])
                .args(["rate", rate, "burst", "16kb", "latency", "5s"])
                .output()
                .map_err(|e| format!("cannot run `tc`: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "`tc` failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
        }
        Ok(())
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// `moot --json hub join TICKET --timeout SECS` on `data`, run inside namespace `ns`: its
/// output and its JSON (`Null` if none).
pub fn join_in(
    ns: &str,
    data: &Data,
    ticket: &str,
    timeout: &str,
) -> (std::process::Output, Value) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns])
        .arg(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &data.path(), "--json", "hub", "join", ticket])
        .args(["--timeout", timeout])
        .output()
        .unwrap();
    let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out, json)
}

/// `moot serve` with mDNS on, inside namespace `ns`, listening on every address there.
pub fn serve_in(ns: &str, data: &Data) -> (Server, Value) {
    serve_with(
        &["ip", "netns", "exec", ns],
        data,
        &["--listen", "/ip4/0.0.0.0/tcp/0"],
    )
}

#[test]
fn two_nodes_in_their_own_network_namespaces_find_each_other_by_mdns() {
    let Some(namespaces) = or_skip(Namespaces::make()) else {
        return;
    };
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let bob = branch.ok(&["init", "--name", "Bob"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    hall.ok(&["assembly", "create", "--kind", "working-group", "Choir"]);
    // The branch knows the hub from its genesis, and no address of the hall.
    let genesis = hall.0.path().join("genesis.bundle").display().to_string();
    hall.ok(&["bundle", "export", &genesis, "--lane", "public"]);
    branch.ok(&["bundle", "import", &genesis]);
    let (hall_node, _) = serve_in(&namespaces.names[0], &hall);
    let (branch_node, ready) = serve_in(&namespaces.names[1], &branch);
    // Only namespace addresses: nothing listens on a real interface.
    for addr in ready["listen"].as_array().unwrap() {
        let addr = addr.as_str().unwrap();
        assert!(
            addr.starts_with("/ip4/10.231.77.") || addr.starts_with("/ip4/127.0.0.1/"),
            "{addr}"
        );
    }
    let start = Instant::now();
    loop {
        let names: Vec<String> = branch.ok(&["assemblies"])["assemblies"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["name"].as_str().unwrap().to_string())
            .collect();
        if names.contains(&"Choir".to_string()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the branch never found the hall by mDNS: {names:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The hall knows the branch as Bob's device once its certification has settled.
    let start = Instant::now();
    loop {
        let peers = hall.ok(&["peers"]);
        if peers["peers"][0]["name"] == "Bob" {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{peers}");
        std::thread::sleep(Duration::from_millis(100));
    }
    stop(branch_node);
    stop(hall_node);
    drop(namespaces);
}

/// A node listening on every address (`0.0.0.0`, as `moot serve` does by default) gives a
/// ticket that names its LAN address, not only loopback, even though each interface is
/// reported on its own: a node in another namespace joins with it, mDNS off, so the ticket
/// alone found the hall. (The ticket used to be made from the first address reported, most
/// often 127.0.0.1: useless on any other machine.)
#[test]
fn a_ticket_names_the_lan_address_and_another_machine_joins_with_it() {
    let Some(namespaces) = or_skip(Namespaces::make_on("10.231.78", "t")) else {
        return;
    };
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    branch.ok(&["init", "--name", "Bob"]);
    let (hall_node, ready) = serve_with(
        &["ip", "netns", "exec", &namespaces.names[0]],
        &hall,
        &[
            "--no-mdns",
            "--no-http",
            "--listen",
            "/ip4/0.0.0.0/tcp/0",
            "--listen",
            "/ip4/0.0.0.0/udp/0/quic-v1",
        ],
    );
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    // What the ticket names, as `hub ticket` through the running node gives it too.
    let again = hall.ok(&["hub", "ticket"])["ticket"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(again, ticket);
    let listen: Vec<&str> = ready["listen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert!(
        listen
            .iter()
            .any(|a| a.starts_with("/ip4/10.231.78.1/tcp/"))
            && listen
                .iter()
                .any(|a| a.starts_with("/ip4/10.231.78.1/udp/")),
        "{listen:?}"
    );
    let (out, json) = join_in(&namespaces.names[1], &branch, &ticket, "30");
    assert!(
        out.status.success(),
        "join with {ticket} failed: {json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The hub's genesis came: the branch knows it by name now.
    assert_eq!(json["name"], "Riverside", "{json}");
    assert!(json["new_ops"].as_u64().unwrap() > 0, "{json}");
    stop(hall_node);
    drop(namespaces);
}

/// Without `--listen`, `moot serve` listens on port 4242 (TCP and QUIC), so the ticket it
/// hands out names the same addresses after a restart; a second node on the same machine
/// finds the port taken and listens on free ports instead of sharing it. (In a network
/// namespace of its own, where nothing else holds the port.)
#[test]
fn without_listen_a_node_keeps_port_4242_across_restarts_and_a_second_one_moves_aside() {
    let Some(namespaces) = or_skip(Namespaces::make_on("10.231.76", "p")) else {
        return;
    };
    let ns = ["ip", "netns", "exec", namespaces.names[0].as_str()];
    let (hall, other) = (Data::new(), Data::new());
    for (data, name) in [(&hall, "Fay"), (&other, "Bob")] {
        data.ok(&["init", "--name", name]);
        data.ok(&["hub", "create", "Riverside"]);
    }
    let args = ["--no-mdns", "--no-http"];
    let ports = |ready: &Value| -> Vec<String> {
        ready["listen"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .filter(|a| a.starts_with("/ip4/10.231.76.1/"))
            .map(|a| a.split('/').nth(4).unwrap().to_string())
            .collect()
    };
    let (first, ready) = serve_with(&ns, &hall, &args);
    assert_eq!(ports(&ready), vec!["4242", "4242"], "{ready}");
    let ticket = ready["ticket"].as_str().unwrap().to_string();
    // Another node on the same machine, meanwhile: elsewhere.
    let (second, beside) = serve_with(&ns, &other, &args);
    let moved = ports(&beside);
    assert_eq!(moved.len(), 2, "{beside}");
    assert!(moved.iter().all(|p| p != "4242"), "{beside}");
    stop(second);
    stop(first);
    // Restarted, the hall listens where its ticket says.
    let (again, ready) = serve_with(&ns, &hall, &args);
    assert_eq!(ready["ticket"].as_str().unwrap(), ticket);
    stop(again);
    drop(namespaces);
}
