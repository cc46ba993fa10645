//! The web UI in a real browser: headless Chromium (Debian's `chromium`) driven by the Node
//! scripts in tests/browser/ (playwright-core, axe-core), against real `moot serve` nodes on
//! 127.0.0.1 (mDNS off). Data is set up through the CLI where that is quicker; what the issue
//! asks of the UI is done in the browser. Without node, the npm packages (`npm ci` in
//! tests/browser) or chromium each test says why and passes — unless MOOT_REQUIRE_BROWSER=1
//! (set by .ci/run), when it fails.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::node::Data;
use crate::root;
use crate::serving::{eventually, serve, serve_waiting, stop};

fn scripts() -> PathBuf {
    root().join("tests").join("browser")
}

fn chromium() -> PathBuf {
    std::env::var_os("MOOT_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

/// Why the browser tests cannot run here, if they cannot.
fn missing() -> Option<String> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Some("node is not installed".into());
    }
    for package in ["playwright-core", "axe-core"] {
        if !scripts().join("node_modules").join(package).is_dir() {
            return Some(format!(
                "the npm package {package} is missing: run `npm ci` in tests/browser"
            ));
        }
    }
    if !chromium().exists() {
        return Some(format!(
            "no Chromium at {} (apt-get install chromium)",
            chromium().display()
        ));
    }
    None
}

/// One browser test at a time: Chromium and two nodes already fill the machine's two cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The turn of a browser test (taken even if an earlier one failed holding it).
fn turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Whether to run: false (with a note) when the browser is missing, unless it is required.
fn ready(test: &str) -> bool {
    match missing() {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("MOOT_REQUIRE_BROWSER").as_deref() != Ok("1"),
                "{test}: MOOT_REQUIRE_BROWSER=1 but {why}"
            );
            eprintln!("{test}: skipped: {why}");
            false
        }
    }
}

/// Runs `node tests/browser/SCRIPT` with one JSON argument; fails with its output unless it
/// exits 0.
fn script(name: &str, args: &Value) {
    script_output(name, args);
}

/// [`script`], returning what the script printed.
fn script_output(name: &str, args: &Value) -> String {
    let out = Command::new("node")
        .arg(scripts().join(name))
        .arg(args.to_string())
        .current_dir(scripts())
        .env("MOOT_CHROMIUM", chromium())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    eprintln!("{name}: {stdout}");
    stdout.into_owned()
}

/// The editor's text logic (splices in UTF-16 code units, rebasing onto unsent typing) under
/// node's own test runner: needs node only.
#[test]
fn the_editors_splices_and_rebase() {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        assert!(
            std::env::var("MOOT_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "MOOT_REQUIRE_BROWSER=1 but node is not installed"
        );
        eprintln!("editor logic: skipped: node is not installed");
        return;
    }
    let out = Command::new("node")
        .args(["--test", "editor.test.mjs"])
        .current_dir(scripts())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn id(value: &Value, key: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {value}"))
        .to_string()
}

/// A hub founded by Fay (steward, the node's own key), with Bob's key held on the same node
/// and on the roll, and a working group both are in.
struct Hall {
    data: Data,
    fay: String,
    bob: String,
    group: String,
}

fn hall(public_group: bool) -> Hall {
    let data = Data::new();
    let fay = id(&data.ok(&["init", "--name", "Fay"]), "member_id");
    data.ok(&["hub", "create", "Riverside Tenants"]);
    let bob = id(&data.ok(&["key", "new", "--name", "Bob"]), "member_id");
    data.ok(&["member", "add", &bob, "--name", "Bob"]);
    let mut create = vec!["assembly", "create", "Housing", "--kind", "working-group"];
    if public_group {
        create.push("--public");
    }
    let group = id(&data.ok(&create), "assembly_id");
    data.ok(&["assembly", "join", &group]);
    data.ok(&["--as", &bob, "assembly", "join", &group]);
    Hall {
        data,
        fay,
        bob,
        group,
    }
}

/// The link the node's owner opens (with the web token).
fn http(ready: &Value) -> String {
    id(ready, "open")
}

#[test]
fn a_star_ballot_cast_in_the_browser_is_counted_after_close() {
    if !ready("star ballot") {
        return;
    }
    let _turn = turn();
    let hall = hall(false);
    let poll = id(
        &hall.data.ok(&[
            "poll",
            "create",
            "--assembly",
            &hall.group,
            "--question",
            "Which night for meetings?",
            "--option",
            "Mon",
            "--option",
            "Tue",
            "--option",
            "Wed",
        ]),
        "poll_id",
    );
    hall.data.ok(&["poll", "open", &poll]);
    let (server, ready) = serve(&hall.data, &[]);
    // Fay fills her ballot with the keyboard alone and re-casts it; Bob signs in on the same
    // page's Keys screen and votes with the mouse; Fay closes the poll in the browser and the
    // results page shows the count.
    script(
        "ballot.mjs",
        &json!({"url": http(&ready), "poll": poll, "bob": hall.bob}),
    );
    // The node counted what the browser cast: Fay's second revision and Bob's ballot.
    let results = hall.data.ok(&["poll", "results", &poll]);
    assert_eq!(results["stage"], "closed", "{results}");
    assert_eq!(results["counted"], 2, "{results}");
    assert_eq!(results["winners"], json!(["Mon"]), "{results}");
    let totals: Vec<i64> = results["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["total"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [9, 7, 1], "{results}");
    assert_eq!(results["excluded"][0]["reason"], "superseded_revision");
    assert_eq!(results["excluded"][0]["member_id"], json!(hall.fay));
    stop(server);
}

#[test]
fn an_offer_and_a_matching_request_posted_in_the_browser_are_matched() {
    if !ready("aid match") {
        return;
    }
    let _turn = turn();
    let hall = hall(false);
    let (server, ready) = serve(&hall.data, &[]);
    script(
        "aid.mjs",
        &json!({"url": http(&ready), "bob": hall.bob, "fay": hall.fay}),
    );
    // Both items are on the node, the request matched to the offer.
    let items = hall.data.ok(&["aid", "list"]);
    let items = items["items"].as_array().unwrap();
    let offer = items.iter().find(|i| i["kind"] == "offer").unwrap();
    let request = items.iter().find(|i| i["kind"] == "request").unwrap();
    assert_eq!(offer["author"], json!(hall.fay));
    assert_eq!(request["author"], json!(hall.bob));
    assert_eq!(request["category"], "Transport");
    // Bob's pledge made in the browser, his contact sealed to Fay (the node's key, acting here).
    assert_eq!(offer["status"], "pledged", "{offer}");
    assert_eq!(offer["pledges"][0]["pledger"], json!(hall.bob));
    assert_eq!(offer["pledges"][0]["pledger_contact"], "bob@example.org");
    stop(server);
}

#[test]
fn an_edit_typed_on_one_node_appears_on_the_other_without_a_reload() {
    if !ready("live editing") {
        return;
    }
    let _turn = turn();
    let hall = hall(false);
    let proposal = id(
        &hall.data.ok(&[
            "proposal",
            "create",
            "--assembly",
            &hall.group,
            "--title",
            "Repairs charter",
            "--body",
            "The landlord repairs within 14 days.",
        ]),
        "proposal_id",
    );
    // A second node of a member (Ann), joined by the ticket, then served dialing the first.
    let branch = Data::new();
    let ann = id(&branch.ok(&["init", "--name", "Ann"]), "member_id");
    hall.data.ok(&["member", "add", &ann, "--name", "Ann"]);
    let (hall_server, hall_ready) = serve(&hall.data, &[]);
    branch.ok(&["hub", "join", &id(&hall_ready, "ticket"), "--timeout", "20"]);
    let peer = hall_ready["listen"][0].as_str().unwrap().to_string();
    let (branch_server, branch_ready) = serve(&branch, &[&peer]);
    eventually(
        "the branch holds the proposal",
        Duration::from_secs(20),
        || branch.run(&["proposal", "show", &proposal]).0 == 0,
    );
    script(
        "coedit.mjs",
        &json!({"a": http(&hall_ready), "b": http(&branch_ready), "proposal": proposal}),
    );
    // Both nodes hold both edits.
    for data in [&hall.data, &branch] {
        eventually(
            "both edits are on both nodes",
            Duration::from_secs(20),
            || {
                let text = data.ok(&["proposal", "show", &proposal])["text"]
                    .as_str()
                    .unwrap()
                    .to_string();
                text.starts_with("Tenants agree: ") && text.ends_with(" Urgent ones within 2 days.")
            },
        );
    }
    stop(branch_server);
    stop(hall_server);
}

#[test]
fn a_guest_cannot_reach_members_only_pages_or_routes() {
    if !ready("guest") {
        return;
    }
    let _turn = turn();
    let hall = hall(true);
    let secret = id(
        &hall
            .data
            .ok(&["assembly", "create", "Strike fund", "--kind", "committee"]),
        "assembly_id",
    );
    let guest = id(&hall.data.ok(&["key", "new", "--name", "Gus"]), "member_id");
    hall.data
        .ok(&["member", "add", &guest, "--name", "Gus", "--role", "guest"]);
    let (server, ready) = serve(&hall.data, &[]);
    script(
        "guest.mjs",
        &json!({"url": http(&ready), "guest": guest, "public_group": hall.group, "secret": secret}),
    );
    stop(server);
}

/// Every main page, with data on it, audited by axe-core (WCAG 2.1 A and AA) — and the first
/// run on a node without a hub, where a hub is then founded in the browser. With
/// MOOT_SCREENSHOTS=DIR the pages are also photographed into DIR at desktop and phone widths
/// (`MOOT_SCREENSHOTS=docs/screenshots cargo test --test it browser::every_main_page`).
#[test]
fn every_main_page_passes_an_accessibility_audit() {
    if !ready("accessibility") {
        return;
    }
    let _turn = turn();
    let hall = hall(true);
    let data = &hall.data;
    let bob = hall.bob.as_str();
    let group = hall.group.as_str();
    let proposal = id(
        &data.ok(&[
            "proposal",
            "create",
            "--assembly",
            group,
            "--title",
            "Repairs charter",
            "--body",
            "The landlord repairs anything reported within 14 days, and tells the tenant in writing when.",
        ]),
        "proposal_id",
    );
    data.ok(&[
        "--as",
        bob,
        "proposal",
        "comment",
        &proposal,
        "--text",
        "Can we say 7 days for heating?",
    ]);
    let comments = data.ok(&["proposal", "show", &proposal]);
    let first = id(&comments["comments"][0], "comment_id");
    data.ok(&[
        "proposal",
        "comment",
        &proposal,
        "--text",
        "Yes: heating and hot water.",
        "--reply-to",
        &first,
    ]);
    data.ok(&[
        "--as",
        bob,
        "proposal",
        "amend",
        &proposal,
        "--replace",
        "14 days",
        "--with",
        "10 days",
    ]);
    data.ok(&[
        "--as",
        bob,
        "proposal",
        "stance",
        &proposal,
        "agree",
        "--reason",
        "Long overdue",
    ]);
    let question = |q: &str| {
        id(
            &data.ok(&[
                "poll",
                "create",
                "--assembly",
                group,
                "--question",
                q,
                "--option",
                "Mon",
                "--option",
                "Tue",
                "--option",
                "Wed",
                "--closes-at",
                "2026-12-01T19:00Z",
            ]),
            "poll_id",
        )
    };
    let open = question("Which night for meetings?");
    data.ok(&["poll", "open", &open]);
    let closed = question("Which night for the social?");
    data.ok(&["poll", "open", &closed]);
    data.ok(&[
        "vote", &closed, "--score", "Mon=5", "--score", "Tue=3", "--score", "Wed=0",
    ]);
    data.ok(&[
        "--as", bob, "vote", &closed, "--score", "Mon=1", "--score", "Tue=4", "--score", "Wed=5",
    ]);
    data.ok(&[
        "--as", bob, "vote", &closed, "--score", "Mon=2", "--score", "Tue=5", "--score", "Wed=4",
    ]);
    data.ok(&["poll", "close", &closed]);
    let offer = id(
        &data.ok(&[
            "aid",
            "offer",
            "--title",
            "Spare ladder",
            "--category",
            "tools",
            "--area",
            "N1",
            "--public",
        ]),
        "item_id",
    );
    data.ok(&[
        "--as",
        bob,
        "aid",
        "request",
        "--title",
        "Ladder for a weekend",
        "--category",
        "Tools",
        "--area",
        "N1",
    ]);
    data.ok(&[
        "--as",
        bob,
        "aid",
        "pledge",
        &offer,
        "--note",
        "Saturday?",
        "--contact",
        "bob@example.org",
    ]);
    // An open offer, which Bob's request matches (a pledged one is not suggested).
    let open_offer = id(
        &data.ok(&[
            "aid",
            "offer",
            "--title",
            "Step ladder, 6 steps",
            "--category",
            "tools",
            "--area",
            "N1",
            "--description",
            "Aluminium, light enough to carry on the bus.",
        ]),
        "item_id",
    );
    let (server, ready) = serve(&hall.data, &[]);
    // A node with its keys (made by serve) and no hub yet: the first run.
    let fresh = Data::new();
    let (fresh_server, waiting) = serve_waiting(&fresh);
    let shots = std::env::var("MOOT_SCREENSHOTS")
        .ok()
        .filter(|d| !d.is_empty())
        .map(|d| root().join(d).display().to_string());
    script(
        "a11y.mjs",
        &json!({
            "url": http(&ready),
            "first_run": http(&waiting),
            "assembly": group,
            "proposal": proposal,
            "open_poll": open,
            "closed_poll": closed,
            "item": open_offer,
            "pledged_item": offer,
            "screenshots": shots,
        }),
    );
    // The hub founded in the browser is the fresh node's.
    let hubs = fresh.ok(&["hubs"]);
    assert_eq!(hubs["hubs"][0]["name"], "Hall of the first run", "{hubs}");
    stop(fresh_server);
    stop(server);
}

/// The README's five-minute tour, entirely in the browser: two fresh nodes (no keys, no hub;
/// each served as the README says, on 127.0.0.1 with mDNS off), Fay's and Ann's pages. Fay
/// founds the hub, adds Ann (her member id read off Ann's Keys page) and hands her the ticket
/// from the Peers page; Ann joins with it; a proposal made on Fay's page, typed into, commented,
/// amended and given a stance, each seen on the other page without a reload; Fay puts it to a
/// STAR vote, both cast, Fay closes; both results pages, and both nodes' CLI, give the same
/// count.
#[test]
fn the_five_minute_tour_runs_in_the_browser() {
    if !ready("five-minute tour") {
        return;
    }
    let _turn = turn();
    let hall = Data::new();
    let branch = Data::new();
    let (hall_server, hall_waiting) = serve_waiting(&hall);
    let (branch_server, branch_waiting) = serve_waiting(&branch);
    let out = script_output(
        "tour.mjs",
        &json!({"fay": http(&hall_waiting), "ann": http(&branch_waiting)}),
    );
    let poll = out
        .lines()
        .find_map(|l| l.strip_prefix("poll "))
        .unwrap_or_else(|| panic!("tour.mjs named no poll: {out}"))
        .to_string();
    // Both running nodes count the same signed ballots: the same JSON, word for word.
    let fay = hall.ok(&["poll", "results", &poll]);
    let ann = branch.ok(&["poll", "results", &poll]);
    assert_eq!(fay, ann);
    assert_eq!(fay["stage"], "closed", "{fay}");
    assert_eq!(fay["counted"], 2, "{fay}");
    assert_eq!(fay["electorate"], 2, "{fay}");
    let totals: Vec<i64> = fay["options"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["total"].as_i64().unwrap())
        .collect();
    assert_eq!(totals, [7, 9, 1], "adopt, the amendment, reject: {fay}");
    assert_eq!(fay["winners"][0], fay["options"][1]["name"], "{fay}");
    // Both nodes hold the hub founded in Fay's browser, with Fay (under the name she gave
    // there) its steward and Ann a member.
    for data in [&hall, &branch] {
        assert_eq!(data.ok(&["hubs"])["hubs"][0]["name"], "Riverside Branch");
        let members = data.ok(&["members"]);
        let mut roll: Vec<(String, Value)> = members["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["name"].as_str().unwrap().to_string(), m["roles"].clone()))
            .collect();
        roll.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            roll,
            [
                ("Ann".to_string(), json!([])),
                ("Fay".to_string(), json!(["steward"]))
            ],
            "{members}"
        );
    }
    stop(branch_server);
    stop(hall_server);
}
