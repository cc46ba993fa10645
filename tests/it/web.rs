//! The web UI's HTTP API on real nodes (`moot serve`, real redb, real libp2p on 127.0.0.1):
//! the first run made from the API, a whole poll through it with the same JSON as the command
//! line, live change events, and a write through the API reaching a peer.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::node::Data;
use crate::serving::{eventually, serve_lines, stop};

/// A browser's session with one node: its cookie and CSRF token.
#[derive(Clone)]
pub(crate) struct Page {
    addr: String,
    cookie: String,
    csrf: String,
    /// The owner secret, for the page opened with the node's link (sent as X-Moot-Owner).
    owner: Option<String>,
}

/// One HTTP/1.1 exchange → status and body.
fn exchange(addr: &str, request: &str, body: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    let split = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&reply[..split]).to_string();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers, reply[split + 4..].to_vec())
}

impl Page {
    /// A page opened at `url`: the link `moot serve` prints (`http://ADDR/?token=T`: the node
    /// owner's page) or the bare address (anyone else's).
    pub(crate) fn open(url: &str) -> Page {
        let rest = url.trim_start_matches("http://");
        let (addr, query) = rest.split_once('/').unwrap_or((rest, ""));
        let addr = addr.to_string();
        let request = format!(
            "GET /api/session{query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
        );
        let (status, headers, body) = exchange(&addr, &request, b"");
        assert_eq!(status, 200);
        let cookie = headers
            .iter()
            .find(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.split(';').next().unwrap().to_string())
            .unwrap();
        let session: Value = serde_json::from_slice(&body).unwrap();
        Page {
            addr,
            cookie,
            csrf: session["csrf"].as_str().unwrap().to_string(),
            owner: session["owner"].as_str().map(str::to_string),
        }
    }

    /// The owner secret's header line, if this page has one.
    fn owner_line(&self) -> String {
        self.owner
            .as_ref()
            .map_or_else(String::new, |o| format!("X-Moot-Owner: {o}\r\n"))
    }

    /// One request of this page's session → status, headers and body.
    fn send(&self, method: &str, path: &str, body: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nX-Moot-Csrf: {}\r\n{}\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            self.addr,
            self.cookie,
            self.csrf,
            self.owner_line(),
            body.len()
        );
        exchange(&self.addr, &request, body.as_bytes())
    }

    pub(crate) fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let (status, _, reply) = self.send(method, path, &body);
        (
            status,
            serde_json::from_slice(&reply).unwrap_or(Value::Null),
        )
    }

    /// Signs in (the session moves to a new id: the cookie and token are taken from the answer).
    fn sign_in(&mut self, body: Value) -> Value {
        let (status, headers, reply) = self.send("POST", "/api/session", &body.to_string());
        let value: Value = serde_json::from_slice(&reply).unwrap_or(Value::Null);
        assert_eq!(status, 200, "sign-in: {value}");
        self.cookie = headers
            .iter()
            .find(|(k, _)| k == "set-cookie")
            .map(|(_, v)| v.split(';').next().unwrap().to_string())
            .expect("a new session cookie");
        self.csrf = value["csrf"].as_str().unwrap().to_string();
        value
    }

    fn get(&self, path: &str) -> Value {
        let (status, value) = self.call("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {value}");
        value
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let (status, value) = self.call("POST", path, Some(body));
        assert_eq!(status, 200, "POST {path}: {value}");
        value
    }
}

/// `moot serve` on 127.0.0.1 only, mDNS off (the web UI on a free port).
const LOOPBACK: &[&str] = &["--listen", "/ip4/127.0.0.1/tcp/0", "--no-mdns"];

/// Fay founds Riverside and serves it → her data, node and ready line.
fn hall() -> (Data, crate::serving::Server, Value) {
    let hall = Data::new();
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let (server, lines) = serve_lines(&hall, LOOPBACK);
    let ready = next_line(&lines);
    (hall, server, ready)
}

fn next_line(lines: &std::sync::mpsc::Receiver<Value>) -> Value {
    lines.recv_timeout(Duration::from_secs(60)).unwrap()
}

#[test]
fn a_node_is_set_up_and_a_poll_run_from_the_web_api_with_the_clis_json() {
    let data = Data::new();
    let (server, lines) = serve_lines(&data, LOOPBACK);
    // The first run: keys made, then the web UI waits for a hub.
    let first = next_line(&lines);
    assert_eq!(first["member_id"].as_str().unwrap().len(), 64, "{first}");
    let waiting = next_line(&lines);
    assert_eq!(waiting["waiting_for"], "hub", "{waiting}");
    // Someone else on this machine, without the link, can neither act nor see the roll.
    let stranger = Page::open(waiting["http"].as_str().unwrap());
    let (status, refused) = stranger.call("POST", "/api/hubs", Some(json!({"name": "Mine"})));
    assert_eq!(status, 401, "{refused}");
    assert_eq!(stranger.call("GET", "/api/keys", None).0, 401);
    let page = Page::open(waiting["open"].as_str().unwrap());
    let me = page.get("/api/id")["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let hub = page.post("/api/hubs", json!({"name": "Riverside Branch"}));
    // With a hub the node starts its network.
    let ready = next_line(&lines);
    assert_eq!(ready["hub_id"], hub["hub_id"], "{ready}");
    assert_eq!(ready["http"], waiting["http"]);
    assert_eq!(page.get("/api/hub")["name"], "Riverside Branch");

    // Two more members, voting in turn on this machine: keys held here, added to the roll.
    let mut members = vec![me.clone()];
    for name in ["Ben", "Cy"] {
        let key = page.post("/api/keys", json!({"name": name}));
        let id = key["member_id"].as_str().unwrap().to_string();
        page.post("/api/members", json!({"member_id": id, "name": name}));
        members.push(id);
    }
    let poll = page.post(
        "/api/polls",
        json!({"assembly": "activism", "question": "Where do we meet?",
               "options": ["Hall", "Pub", "Park"], "officers": [me]}),
    );
    let poll_id = poll["poll_id"].as_str().unwrap().to_string();
    page.post(&format!("/api/polls/{poll_id}/open"), json!({}));
    let ballots = [[5, 1, 0], [2, 5, 3], [4, 0, 5]];
    let open = waiting["open"].as_str().unwrap();
    for (member, scores) in members.iter().zip(ballots) {
        let mut voter = Page::open(open);
        voter.sign_in(json!({"member": member}));
        let cast = voter.post(
            &format!("/api/polls/{poll_id}/ballot"),
            json!({"scores": {"Hall": scores[0], "Pub": scores[1], "Park": scores[2]}}),
        );
        assert_eq!(cast["revision"], 1, "{cast}");
    }
    page.post(&format!("/api/polls/{poll_id}/close"), json!({}));
    // Recent activity, newest first: the close, then the ballots (Cy's, Ben's, mine), each
    // member's first write beside its device's certification.
    let activity = page.get("/api/activity?limit=8")["activity"].clone();
    let list = activity.as_array().unwrap();
    assert_eq!(list[0]["kind"], "close_poll", "{activity}");
    assert_eq!(list[0]["member_id"], me.as_str());
    let voters: Vec<&str> = list
        .iter()
        .filter(|a| a["kind"] == "ballot")
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let my_name = page.get("/api/id")["name"].clone();
    assert_eq!(
        voters,
        ["Cy", "Ben", my_name.as_str().unwrap()],
        "{activity}"
    );
    let results = page.get(&format!("/api/polls/{poll_id}/results"));
    // The same JSON as the command line's (run through the node's socket).
    let cli = data.ok(&["poll", "results", &poll_id]);
    assert_eq!(results, cli);
    assert_eq!(results["counted"], 3, "{results}");
    // Hall 11, Pub 6, Park 8: Hall and Park in the runoff, Park preferred on 2 ballots of 3.
    assert_eq!(results["winners"], json!(["Park"]), "{results}");
    assert_eq!(results["runoff"]["b_votes"], 2, "{results}");
    let (status, refused) = page.call(
        "POST",
        &format!("/api/polls/{poll_id}/ballot"),
        Some(json!({"scores": {"Hall": 0, "Pub": 0, "Park": 5}})),
    );
    assert_eq!(status, 403, "{refused}");
    assert_eq!(refused["error"]["kind"], "refused");
    stop(server);
}

#[test]
fn pages_hear_of_changes_and_an_api_write_reaches_a_peer() {
    let (hall, hall_server, hall_ready) = hall();
    let hub_id = hall_ready["hub_id"].as_str().unwrap();
    let ticket = hall_ready["ticket"].as_str().unwrap();
    let branch = Data::new();
    let ben = branch.ok(&["init", "--name", "Ben"]);
    hall.ok(&[
        "member",
        "add",
        ben["member_id"].as_str().unwrap(),
        "--name",
        "Ben",
    ]);
    branch.ok(&["hub", "join", ticket]);
    let peer = hall_ready["listen"][0].as_str().unwrap();
    let (branch_server, branch_lines) =
        serve_lines(&branch, &[LOOPBACK, &["--peer", peer]].concat());
    let branch_ready = next_line(&branch_lines);
    assert_eq!(branch_ready["hub_id"], hub_id);

    // A page on the hall listens for changes; a command run in a terminal writes.
    let page = Page::open(hall_ready["open"].as_str().unwrap());
    let mut events = TcpStream::connect(&page.addr).unwrap();
    events
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        events,
        "GET /api/events HTTP/1.1\r\nHost: {}\r\nCookie: {}\r\nAccept: text/event-stream\r\n\r\n",
        page.addr, page.cookie
    )
    .unwrap();
    let mut events = BufReader::new(events);
    // The stream is open once its headers came.
    let mut line = String::new();
    while line.trim() != "" || line.is_empty() {
        line.clear();
        events.read_line(&mut line).unwrap();
        if line == "\r\n" {
            break;
        }
    }
    hall.ok(&["assembly", "create", "Housing", "--kind", "working-group"]);
    let start = Instant::now();
    let mut heard = String::new();
    // (A "peers" change may come first: the branch connecting.)
    while !heard.contains("data: \"ops\"") {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no change event: {heard:?}"
        );
        let mut l = String::new();
        events.read_line(&mut l).unwrap();
        heard.push_str(&l);
    }
    assert!(heard.contains("\"ops\""), "{heard:?}");

    // A proposal written through the hall's API reaches the branch node.
    let created = page.post(
        "/api/proposals",
        json!({"assembly": "activism", "title": "Open the food bank on Sundays", "body": "We open at ten."}),
    );
    let id = created["proposal_id"].as_str().unwrap().to_string();
    let branch_page = Page::open(branch_ready["open"].as_str().unwrap());
    eventually(
        "the branch has the proposal",
        Duration::from_secs(30),
        || {
            branch_page
                .call("GET", &format!("/api/proposals/{id}"), None)
                .0
                == 200
        },
    );
    // Edited on the branch at a version the hall has moved past: lands where it was typed.
    let seen = branch_page.get(&format!("/api/proposals/{id}"));
    let base = seen["heads"].clone();
    page.post(
        &format!("/api/proposals/{id}/edit"),
        json!({"at": 0, "insert": "Agreed: "}),
    );
    eventually(
        "the branch has the hall's edit",
        Duration::from_secs(30),
        || branch_page.get(&format!("/api/proposals/{id}"))["text"] == "Agreed: We open at ten.",
    );
    let at = "We open at ten".len();
    branch_page.post(
        &format!("/api/proposals/{id}/edit"),
        json!({"at": at, "insert": " sharp", "base": base}),
    );
    eventually(
        "the hall has the branch's edit",
        Duration::from_secs(30),
        || page.get(&format!("/api/proposals/{id}"))["text"] == "Agreed: We open at ten sharp.",
    );
    stop(branch_server);
    stop(hall_server);
}

#[test]
fn a_new_node_joins_a_hub_from_the_web_ui_on_its_first_run() {
    let (hall, hall_server, hall_ready) = hall();
    // The hall's page gives the ticket (as `moot serve` printed it).
    let hall_page = Page::open(hall_ready["open"].as_str().unwrap());
    let ticket = hall_page.get("/api/hub/ticket")["ticket"].clone();
    assert_eq!(ticket, hall_ready["ticket"]);

    let fresh = Data::new();
    let (server, lines) = serve_lines(&fresh, LOOPBACK);
    let _keys = next_line(&lines);
    let waiting = next_line(&lines);
    let page = Page::open(waiting["open"].as_str().unwrap());
    let (status, _) = page.call("GET", "/api/hub/ticket", None);
    assert_eq!(status, 404, "no ticket before the network runs");
    let joined = page.post("/api/hubs/join", json!({"ticket": ticket, "timeout": 20}));
    assert_eq!(joined["name"], "Riverside", "{joined}");
    let ready = next_line(&lines);
    assert_eq!(ready["hub_id"], hall_ready["hub_id"], "{ready}");
    assert_eq!(page.get("/api/hub")["name"], "Riverside");
    // The node keeps the hall (the ticket's node) connected: what the hall writes later
    // reaches it (a public assembly: this node's member is not on the roll, a stranger).
    hall.ok(&[
        "assembly",
        "create",
        "Open Meeting",
        "--kind",
        "working-group",
        "--public",
    ]);
    eventually(
        "the new node has the hall's later write",
        Duration::from_secs(30),
        || {
            page.get("/api/assemblies")["assemblies"]
                .as_array()
                .is_some_and(|list| list.iter().any(|a| a["name"] == "Open Meeting"))
        },
    );
    stop(server);
    stop(hall_server);
}

#[test]
fn a_page_reads_while_a_long_write_runs() {
    let (_hall, hall_server, hall_ready) = hall();
    let page = Page::open(hall_ready["open"].as_str().unwrap());
    // A sync with a peer that answers TCP and never speaks holds the command turn until its
    // timeout (a refused dial would end it at once).
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let peer = format!(
        "/ip4/127.0.0.1/tcp/{}/p2p/12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN",
        hang.local_addr().unwrap().port()
    );
    let copy = page.clone();
    let syncing = std::thread::spawn(move || {
        let page = copy;
        page.call(
            "POST",
            "/api/sync",
            Some(json!({"peers": [peer], "timeout": 15})),
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    // Reads are answered meanwhile.
    assert_eq!(page.get("/api/hub")["name"], "Riverside");
    assert!(page.get("/api/assemblies")["assemblies"].is_array());
    assert!(
        !syncing.is_finished(),
        "the sync ended before the reads: the test proves nothing"
    );
    let (status, _) = syncing.join().unwrap();
    assert_eq!(status, 500, "no peer reached is a failure");
    drop(hang);
    stop(hall_server);
}
