//! The API's gate and routes against an in-memory backend (no sockets): the `Host` check,
//! sessions and CSRF tokens, headers, size limits, sign-in and its rate limit, what a guest or a
//! LAN visitor may see, how commands are built from requests, and random bodies on every
//! route (a typed error, never a panic).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode, header};
use moot_http::{Arg, Backend, Call, Change, HttpOptions, Outcome};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;

const KEY_A: &str = "aaaa";
const KEY_G: &str = "gggg";

/// A node with two keys (A: a protected member key; G: a protected guest's), a public and a
/// members-only assembly with a poll each, and a public and a private aid item.
#[derive(Default)]
struct Fake {
    calls: Mutex<Vec<Call>>,
    /// When set, every command waits for a permit (a slow node).
    hold: Option<Arc<tokio::sync::Semaphore>>,
    /// Ann removed from the roll.
    ann_removed: std::sync::atomic::AtomicBool,
    /// The hub is members-only.
    members_only: std::sync::atomic::AtomicBool,
    /// `hub show` and `members` fail (a node too busy to answer).
    roll_unreadable: std::sync::atomic::AtomicBool,
    /// The node holds no hub yet.
    no_hub: std::sync::atomic::AtomicBool,
}

fn ok(value: Value) -> Outcome {
    Outcome {
        code: 0,
        stdout: format!("{value}\n").into_bytes(),
        ..Outcome::default()
    }
}

/// A command's failure, as the CLI reports it with `--json`: exit 1, one JSON error object.
fn failed(kind: &str, message: &str) -> Outcome {
    Outcome {
        code: 1,
        stderr: format!("{}\n", json!({"error": {"kind": kind, "message": message}})).into_bytes(),
        ..Outcome::default()
    }
}

fn refused(message: &str) -> Outcome {
    failed("refused", message)
}

fn not_found(message: &str) -> Outcome {
    failed("not_found", message)
}

fn words(call: &Call) -> Vec<String> {
    call.args
        .iter()
        .map(|a| match a {
            Arg::Text(t) => t.clone(),
            Arg::InputFile => "<in>".into(),
            Arg::OutputFile => "<out>".into(),
        })
        .collect()
}

impl Backend for Fake {
    async fn run(&self, call: Call) -> Outcome {
        if let Some(hold) = &self.hold {
            hold.acquire().await.unwrap().forget();
        }
        self.calls.lock().unwrap().push(call.clone());
        // A passphrase must open the key acted as.
        let right = match call.as_member.as_deref() {
            Some(KEY_A) => call.passphrase.as_deref() == Some("pa"),
            Some(KEY_G) => call.passphrase.as_deref() == Some("pg"),
            _ => true,
        };
        if !right {
            return refused("wrong passphrase");
        }
        let w = words(&call);
        let w: Vec<&str> = w.iter().map(String::as_str).collect();
        let flag = |f: &std::sync::atomic::AtomicBool| f.load(std::sync::atomic::Ordering::Relaxed);
        if flag(&self.no_hub) && matches!(&w[1..], ["hub", "show"] | ["members"]) {
            return not_found("no hub yet");
        }
        if flag(&self.roll_unreadable) && matches!(&w[1..], ["hub", "show"] | ["members"]) {
            return not_found("no such key");
        }
        match &w[1..] {
            ["hubs"] if flag(&self.no_hub) => ok(json!({"hubs": []})),
            ["hubs"] => {
                ok(json!({"hubs": [{"hub_id": "hhhh", "name": "Riverside", "default": true}]}))
            }
            ["keys"] => ok(json!({"keys": [
                {"member_id": KEY_A, "name": "Ann", "node": true, "protected": true},
                {"member_id": KEY_G, "name": "Gus", "node": false, "protected": true},
                {"member_id": "uuuu", "name": "Una", "node": false, "protected": false},
                {"member_id": "cccc", "name": "Cara", "node": false, "protected": true},
            ]})),
            ["id"] => ok(json!({"member_id": call.as_member})),
            ["members"] => {
                let ann = if self.ann_removed.load(std::sync::atomic::Ordering::Relaxed) {
                    "removed"
                } else {
                    "member"
                };
                ok(json!({"members": [
                    {"member_id": KEY_A, "status": ann},
                    {"member_id": KEY_G, "status": "guest"},
                    {"member_id": "uuuu", "status": "member"},
                ]}))
            }
            ["assemblies"] => ok(json!({"assemblies": [
                {"assembly_id": "pub", "public": true},
                {"assembly_id": "priv", "public": false},
            ]})),
            ["polls"] => ok(json!({"polls": [
                {"poll_id": "p1", "assembly_id": "pub"},
                {"poll_id": "p2", "assembly_id": "priv"},
            ]})),
            ["poll", "results", "--", id] => ok(json!({"poll_id": id})),
            ["aid", "show", "--", "item-pub"] => ok(json!({"item_id": "item-pub", "public": true,
                "pledges": [{"pledge_id": "p", "pledger_contact": "07700 900123", "author_contact": "x@y"}]})),
            ["aid", "show", "--", _] => ok(json!({"item_id": "x", "public": false})),
            ["hub", "show"] => ok(json!({"name": "Riverside", "access":
                if self.members_only.load(std::sync::atomic::Ordering::Relaxed) { "members-only" } else { "public" }})),
            ["vote", ..] if call.as_member.is_none() => refused("not in the electorate"),
            _ => ok(json!({"done": w})),
        }
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        tokio::sync::broadcast::channel(1).1
    }

    fn ticket(&self) -> Option<String> {
        None
    }
}

struct Client {
    app: axum::Router,
    fake: Arc<Fake>,
    cookie: Option<String>,
    csrf: Option<String>,
    /// The owner secret the owner's page keeps (sent as X-Moot-Owner).
    owner: Option<String>,
    host: String,
    from: SocketAddr,
}

struct Reply {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    json: Value,
}

impl Client {
    fn new(bind: &str) -> Client {
        Client::with(bind, Fake::default(), None)
    }

    fn with(bind: &str, fake: Fake, token: Option<String>) -> Client {
        let fake = Arc::new(fake);
        let addr: SocketAddr = bind.parse().unwrap();
        let app = moot_http::router(
            Arc::clone(&fake),
            addr,
            HttpOptions {
                hosts: vec![],
                token,
            },
        );
        Client {
            app,
            fake,
            cookie: None,
            csrf: None,
            owner: None,
            host: format!("{}:{}", addr.ip(), addr.port()),
            from: "127.0.0.1:50000".parse().unwrap(),
        }
    }

    async fn send(&mut self, method: &str, path: &str, body: Option<Vec<u8>>, json: bool) -> Reply {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.host);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        if let Some(csrf) = &self.csrf {
            request = request.header("x-moot-csrf", csrf);
        }
        if let Some(owner) = &self.owner {
            request = request.header("x-moot-owner", owner);
        }
        if json {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        let mut request = request.body(Body::from(body.unwrap_or_default())).unwrap();
        request.extensions_mut().insert(ConnectInfo(self.from));
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        if let Some(set) = headers.get(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            self.cookie = Some(set.split(';').next().unwrap().to_string());
        }
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
        }
    }

    async fn get(&mut self, path: &str) -> Reply {
        self.send("GET", path, None, false).await
    }

    async fn post(&mut self, path: &str, body: Value) -> Reply {
        self.send("POST", path, Some(body.to_string().into_bytes()), true)
            .await
    }

    /// Passes the node's web token, as the owner's page does with the link: keeps the owner
    /// secret the answer gives (once) → the answer.
    async fn open_owner(&mut self, token: &str) -> Value {
        let r = self.get(&format!("/api/session?token={token}")).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        self.owner = r.json["owner"].as_str().map(str::to_string);
        self.csrf = r.json["csrf"].as_str().map(str::to_string);
        r.json
    }

    /// Takes a session and its CSRF token, as the page does first.
    async fn start(&mut self) -> Value {
        let session = self.get("/api/session").await;
        assert_eq!(session.status, StatusCode::OK);
        self.csrf = session.json["csrf"].as_str().map(str::to_string);
        session.json
    }

    fn last_call(&self) -> Call {
        self.fake.calls.lock().unwrap().last().cloned().unwrap()
    }
}

#[tokio::test]
async fn a_host_that_is_not_this_node_is_refused_before_anything_runs() {
    let mut c = Client::new("127.0.0.1:7878");
    c.host = "evil.example:7878".into();
    let r = c.get("/api/hub").await;
    assert_eq!(r.status, StatusCode::MISDIRECTED_REQUEST);
    assert_eq!(r.json["error"]["kind"], "host");
    assert!(c.fake.calls.lock().unwrap().is_empty());
    // The security headers are on refusals too.
    assert!(r.headers.contains_key("content-security-policy"));
}

#[tokio::test]
async fn every_response_carries_the_security_headers_and_api_answers_are_not_cached() {
    let mut c = Client::new("127.0.0.1:7878");
    for path in ["/", "/assets/app.js", "/api/hub", "/api/nothing-here"] {
        let r = c.get(path).await;
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(r.headers["x-content-type-options"], "nosniff");
        assert_eq!(r.headers["x-frame-options"], "DENY");
        if path.starts_with("/api/") {
            assert_eq!(r.headers["cache-control"], "no-store", "{path}");
        }
    }
    let cookie = c.get("/").await;
    assert!(
        cookie.headers.get(header::SET_COOKIE).is_none(),
        "one cookie per session"
    );
}

#[tokio::test]
async fn a_write_needs_the_sessions_csrf_token_and_a_json_body() {
    let mut c = Client::new("127.0.0.1:7878");
    // No session yet.
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"]["kind"], "csrf");
    // A session, but a wrong token.
    c.start().await;
    let good = c.csrf.replace("0".repeat(64));
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.json["error"]["kind"], "csrf");
    assert!(c.fake.calls.lock().unwrap().is_empty());
    c.csrf = good;
    // Not JSON.
    let r = c
        .send("POST", "/api/hubs", Some(b"name=X".to_vec()), false)
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    // Unknown fields are refused, not ignored.
    let r = c
        .post("/api/hubs", json!({"name": "X", "admin": true}))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn values_from_requests_never_become_flags() {
    let mut c = Client::new("127.0.0.1:7878");
    c.start().await;
    c.post("/api/hubs", json!({"name": "--data=/etc"})).await;
    assert_eq!(
        words(&c.last_call()),
        ["--json", "hub", "create", "--", "--data=/etc"]
    );
    c.post(
        "/api/polls/abc/ballot",
        json!({"scores": {"--as=x": 5, "B=C": 0}}),
    )
    .await;
    assert_eq!(
        words(&c.last_call()),
        [
            "--json",
            "vote",
            "--score=--as=x=5",
            "--score=B=C=0",
            "--",
            "abc"
        ]
    );
    c.post(
        "/api/aid/offers",
        json!({"title": "-x", "category": "food", "public": true}),
    )
    .await;
    let w = words(&c.last_call());
    assert!(
        w.contains(&"--title=-x".to_string()) && w.contains(&"--public".to_string()),
        "{w:?}"
    );
    // A proposal's new text goes through a file, not the command line.
    c.post("/api/proposals/p/edit", json!({"text": "new"}))
        .await;
    let call = c.last_call();
    assert_eq!(call.input.as_deref(), Some(&b"new"[..]));
    assert!(call.args.contains(&Arg::InputFile));
    c.post(
        "/api/proposals/p/edit",
        json!({"at": 3, "insert": "x", "base": ["h1", "h2"]}),
    )
    .await;
    assert_eq!(
        words(&c.last_call()),
        [
            "--json",
            "proposal",
            "edit",
            "--at=3",
            "--delete=0",
            "--insert=x",
            "--base=h1,h2",
            "--",
            "p"
        ]
    );
}

#[tokio::test]
async fn anyone_may_count_a_ballot_file_or_verify_a_poll_from_a_bundle() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    let r = c
        .send(
            "POST",
            "/api/tally?seats=2",
            Some(b"A,B\n5,0\n".to_vec()),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let call = c.last_call();
    assert_eq!(words(&call), ["--json", "tally", "--seats=2", "--", "<in>"]);
    assert_eq!(call.input.as_deref(), Some(&b"A,B\n5,0\n"[..]));
    let r = c
        .send(
            "POST",
            "/api/polls/p9/verify",
            Some(b"bundle".to_vec()),
            false,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        words(&c.last_call()),
        ["--json", "poll", "verify", "--bundle", "<in>", "--", "p9"]
    );
}

#[tokio::test]
async fn a_commands_error_keeps_its_json_and_its_kind_sets_the_status() {
    let mut c = Client::new("127.0.0.1:7878");
    c.start().await;
    let r = c
        .post("/api/polls/abc/ballot", json!({"scores": {"A": 5}}))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.json["error"]["kind"], "refused");
    assert_eq!(r.json["error"]["message"], "not in the electorate");
}

#[tokio::test]
async fn bodies_over_the_limit_are_refused() {
    let mut c = Client::new("127.0.0.1:7878");
    c.start().await;
    let big = json!({"name": "x".repeat(70_000)});
    let r = c.post("/api/hubs", big).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(c.fake.calls.lock().unwrap().is_empty());
}

#[tokio::test]
async fn on_loopback_the_page_acts_as_the_nodes_key_until_someone_signs_in() {
    let mut c = Client::new("127.0.0.1:7878");
    let s = c.start().await;
    assert_eq!(s["exposure"], "local");
    assert_eq!(s["may_write"], true);
    c.get("/api/members").await;
    assert_eq!(c.last_call().as_member, None);
    // Members voting in turn: Una's key has no passphrase, so on this machine she signs in
    // with her name alone.
    let r = c.post("/api/session", json!({"member": "una"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["signed_in"]["member_id"], "uuuu");
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    let r = c
        .post("/api/polls/abc/ballot", json!({"scores": {"A": 5}}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    let call = c.last_call();
    assert_eq!(words(&call)[1], "vote");
    assert_eq!(call.as_member.as_deref(), Some("uuuu"));
}

#[tokio::test]
async fn a_visitor_never_sees_a_contact_and_nothing_of_a_members_only_hub() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    let item = c.get("/api/aid/item-pub").await;
    assert_eq!(item.status, StatusCode::OK);
    assert_eq!(
        item.json["pledges"][0]["pledger_contact"],
        Value::Null,
        "{}",
        item.json
    );
    assert_eq!(item.json["pledges"][0]["author_contact"], Value::Null);
    assert_eq!(item.json["pledges"][0]["pledge_id"], "p");
    c.fake
        .members_only
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for path in [
        "/api/hub",
        "/api/assemblies",
        "/api/polls",
        "/api/aid",
        "/api/aid/item-pub",
    ] {
        assert_eq!(c.get(path).await.status, StatusCode::UNAUTHORIZED, "{path}");
    }
    // A member signed in sees it all.
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(c.get("/api/hub").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_hub_or_roll_that_cannot_be_read_fails_closed() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.json["public_only"], false, "{}", r.json);
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    // The roll cannot be read: Ann is not taken for a member, and the hub is taken for
    // members-only (a visitor sees none of its public spaces).
    c.fake
        .roll_unreadable
        .store(true, std::sync::atomic::Ordering::Relaxed);
    for path in ["/api/assemblies", "/api/polls", "/api/aid"] {
        let r = c.get(path).await;
        // The hub's own error (here: not found), and none of its spaces.
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert!(r.json.get("assemblies").is_none(), "{}", r.json);
    }
    assert_eq!(c.get("/api/session").await.json["public_only"], true);
    // With no hub yet there is no roll to be off: Ann acts as before, and the pages answer.
    c.fake
        .roll_unreadable
        .store(false, std::sync::atomic::Ordering::Relaxed);
    c.fake
        .no_hub
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.get("/api/assemblies").await.status, StatusCode::OK);
    assert_eq!(c.get("/api/session").await.json["public_only"], false);
}

#[tokio::test]
async fn a_member_removed_since_signing_in_gets_no_ticket() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.json["public_only"], false, "{}", r.json);
    // No ticket yet (the fake node is not on the network): a member is told so.
    assert_eq!(c.get("/api/hub/ticket").await.status, StatusCode::NOT_FOUND);
    c.fake
        .ann_removed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        c.get("/api/hub/ticket").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_key_off_the_roll_or_removed_since_is_a_visitor() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    // Cara's key is held here and protected, but she is not on the roll: a visitor.
    let r = c
        .post(
            "/api/session",
            json!({"member": "Cara", "passphrase": "pc"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(
        (r.json["public_only"].clone(), r.json["may_write"].clone()),
        (json!(true), json!(false))
    );
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.json["public_only"], false, "{}", r.json);
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    assert_eq!(c.get("/api/members").await.status, StatusCode::OK);
    // Ann is removed from the roll: her next request is a visitor's.
    c.fake
        .ann_removed
        .store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(c.get("/api/members").await.status, StatusCode::UNAUTHORIZED);
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(c.get("/api/session").await.json["public_only"], true);
}

#[tokio::test]
async fn on_loopback_only_the_page_opened_with_the_web_token_is_the_nodes_owner() {
    let token = "ab".repeat(32);
    let mut c = Client::with("127.0.0.1:7878", Fake::default(), Some(token.clone()));
    // Another user of the machine reaches 127.0.0.1 too, but has not the token.
    let s = c.start().await;
    assert_eq!(
        (s["trusted"].clone(), s["may_write"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(
        c.post("/api/hubs", json!({"name": "X"})).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(c.get("/api/members").await.status, StatusCode::UNAUTHORIZED);
    let r = c.post("/api/session", json!({"member": "Una"})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "a key without a passphrase is the owner's"
    );
    let r = c.post("/api/keys", json!({"name": "Eve"})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let wrong = c
        .get(&format!("/api/session?token={}", "cd".repeat(32)))
        .await;
    assert_eq!(wrong.json["trusted"], false);
    assert_eq!(wrong.json["owner"], Value::Null);
    assert!(
        c.fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .all(|call| !words(call).contains(&"create".to_string()))
    );
    // The link `moot serve` printed: the page passes its token and keeps the owner secret.
    let opened = c.open_owner(&token).await;
    assert_eq!(opened["trusted"], true);
    assert_eq!(opened["owner"].as_str().map(str::len), Some(64));
    let s = c.start().await;
    assert_eq!(s["owner"], Value::Null, "the secret is given once");
    assert_eq!(
        (s["trusted"].clone(), s["may_write"].clone()),
        (json!(true), json!(true))
    );
    assert_eq!(
        c.post("/api/hubs", json!({"name": "X"})).await.status,
        StatusCode::OK
    );
    let r = c.post("/api/session", json!({"member": "Una"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
}

#[tokio::test]
async fn an_id_planted_or_seen_before_is_worth_nothing_once_the_session_gains_a_power() {
    let token = "ab".repeat(32);
    let mut c = Client::with("127.0.0.1:7878", Fake::default(), Some(token.clone()));
    c.start().await;
    let planted = c.cookie.clone().unwrap();
    // The owner's browser, carrying the planted id, opens the owner's link.
    c.open_owner(&token).await;
    let owner = c.cookie.clone().unwrap();
    assert_ne!(owner, planted, "a new id on trust");
    assert_eq!(c.start().await["trusted"], true);
    // Whoever planted the old id has nothing.
    c.cookie = Some(planted);
    let s = c.start().await;
    assert_eq!(s["trusted"], false);
    // Signing in and out move the session too.
    c.cookie = Some(owner.clone());
    c.start().await;
    let r = c.post("/api/session", json!({"member": "Una"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(c.cookie.as_deref(), Some(owner.as_str()));
}

#[tokio::test]
async fn the_owners_cookie_without_the_owner_secret_is_a_visitor() {
    // Browsers send 127.0.0.1's cookies to every port: another local web server the owner
    // visits sees the cookie. Without the secret the owner's page keeps, it is nobody.
    let token = "ab".repeat(32);
    let mut c = Client::with("127.0.0.1:7878", Fake::default(), Some(token.clone()));
    c.open_owner(&token).await;
    assert_eq!(c.start().await["trusted"], true);
    let secret = c.owner.take();
    let s = c.start().await;
    assert_eq!(
        (s["trusted"].clone(), s["may_write"].clone()),
        (json!(false), json!(false))
    );
    assert_eq!(c.get("/api/members").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.post("/api/hubs", json!({"name": "X"})).await.status,
        StatusCode::UNAUTHORIZED
    );
    c.owner = Some("0".repeat(64));
    assert_eq!(c.start().await["trusted"], false, "a wrong secret");
    c.owner = secret;
    assert_eq!(c.start().await["trusted"], true);
}

#[tokio::test]
async fn a_flood_of_new_sessions_never_pushes_out_the_owners_or_a_signed_in_one() {
    let token = "ab".repeat(32);
    let mut c = Client::with("127.0.0.1:7878", Fake::default(), Some(token.clone()));
    c.open_owner(&token).await;
    let owner = c.cookie.clone().unwrap();
    // The UI's files make no session at all.
    let mut stranger = Client::with("127.0.0.1:7878", Fake::default(), None);
    stranger.app = c.app.clone();
    assert!(
        stranger
            .get("/assets/app.js")
            .await
            .headers
            .get(header::SET_COOKIE)
            .is_none()
    );
    // 5,000 sessions made by requests without a cookie.
    for _ in 0..5_000 {
        stranger.cookie = None;
        stranger.get("/api/session").await;
    }
    c.cookie = Some(owner);
    let s = c.start().await;
    assert_eq!(s["trusted"], true, "{s}");
}

#[tokio::test]
async fn an_upload_the_session_may_not_make_is_refused_unread() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    // A body that records whether anyone read it.
    let read = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let seen = Arc::clone(&read);
    let stream = futures_util::stream::once(async move {
        seen.store(true, std::sync::atomic::Ordering::Relaxed);
        Ok::<_, std::io::Error>(axum::body::Bytes::from(vec![0u8; 1 << 20]))
    });
    let mut request = Request::builder()
        .method("POST")
        .uri("/api/bundle")
        .header(header::HOST, &c.host)
        .header(header::COOKIE, c.cookie.clone().unwrap())
        .header("x-moot-csrf", c.csrf.clone().unwrap())
        .body(Body::from_stream(stream))
        .unwrap();
    request.extensions_mut().insert(ConnectInfo(c.from));
    let response = c.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        !read.load(std::sync::atomic::Ordering::Relaxed),
        "the upload was read"
    );
    assert!(
        c.fake
            .calls
            .lock()
            .unwrap()
            .iter()
            .all(|call| !words(call).contains(&"import".to_string()))
    );
    // A member's upload over 64 MiB: refused as too large.
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    let big = vec![0u8; (64 << 20) + 1];
    let r = c.send("POST", "/api/bundle", Some(big), false).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn on_the_lan_a_visitor_sees_public_spaces_only_and_cannot_write() {
    let mut c = Client::new("192.168.1.20:7878");
    let s = c.start().await;
    assert_eq!(s["exposure"], "lan");
    assert_eq!(s["public_only"], true);
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    for private in [
        "/api/members",
        "/api/keys",
        "/api/merges",
        "/api/peers",
        "/api/id",
        "/api/hub/ticket",
    ] {
        assert_eq!(
            c.get(private).await.status,
            StatusCode::UNAUTHORIZED,
            "{private}"
        );
    }
    assert_eq!(c.get("/api/hub").await.json["name"], "Riverside");
    let a = c.get("/api/assemblies").await;
    assert_eq!(
        a.json["assemblies"],
        json!([{"assembly_id": "pub", "public": true}])
    );
    let p = c.get("/api/polls").await;
    assert_eq!(
        p.json["polls"],
        json!([{"poll_id": "p1", "assembly_id": "pub"}])
    );
    assert_eq!(c.get("/api/polls/p1/results").await.status, StatusCode::OK);
    assert_eq!(
        c.get("/api/polls/p2/results").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(c.get("/api/aid/item-pub").await.status, StatusCode::OK);
    assert_eq!(c.get("/api/aid/item-x").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn signing_in_on_the_lan_needs_a_key_with_a_passphrase_and_the_right_one() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    let r = c.post("/api/session", json!({"member": "Una"})).await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "an unprotected key cannot sign in from afar"
    );
    let r = c
        .post(
            "/api/session",
            json!({"member": "Ann", "passphrase": "wrong"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let old = c.csrf.clone();
    let r = c
        .post("/api/session", json!({"member": KEY_A, "passphrase": "pa"}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json);
    assert_eq!(r.json["may_write"], true);
    assert_eq!(r.json["public_only"], false);
    // The token changed with the sign-in: the old one no longer writes.
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.json["error"]["kind"], "csrf");
    c.csrf = c.get("/api/session").await.json["csrf"]
        .as_str()
        .map(str::to_string);
    assert_ne!(c.csrf, old);
    let r = c.post("/api/hubs", json!({"name": "X"})).await;
    assert_eq!(r.status, StatusCode::OK);
    let call = c.last_call();
    assert_eq!(
        (call.as_member.as_deref(), call.passphrase.as_deref()),
        (Some(KEY_A), Some("pa"))
    );
    assert_eq!(c.get("/api/members").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_signed_in_guest_is_public_only_and_cannot_write() {
    let mut c = Client::new("127.0.0.1:7878");
    c.start().await;
    let r = c
        .post("/api/session", json!({"member": "Gus", "passphrase": "pg"}))
        .await;
    assert_eq!(r.json["signed_in"]["guest"], true, "{}", r.json);
    c.csrf = r.json["csrf"].as_str().map(str::to_string);
    assert_eq!(c.get("/api/members").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        c.get("/api/polls/p2/results").await.status,
        StatusCode::NOT_FOUND
    );
    let r = c
        .post("/api/polls/p1/ballot", json!({"scores": {"A": 5}}))
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.json["error"]["message"], "guests cannot do this");
}

#[tokio::test]
async fn members_signing_in_one_after_another_are_never_held_up() {
    // The branch laptop: twenty sign-ins in a minute from one address, each right.
    let mut c = Client::new("127.0.0.1:7878");
    c.start().await;
    for _ in 0..20 {
        let r = c
            .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json);
        c.csrf = r.json["csrf"].as_str().map(str::to_string);
    }
}

#[tokio::test]
async fn sign_in_attempts_are_limited() {
    let mut c = Client::new("192.168.1.20:7878");
    c.start().await;
    for _ in 0..5 {
        let r = c
            .post(
                "/api/session",
                json!({"member": "Ann", "passphrase": "guess"}),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN);
    }
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is counted apart.
    c.from = "192.168.1.99:1234".parse().unwrap();
    let r = c
        .post("/api/session", json!({"member": "Ann", "passphrase": "pa"}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn requests_waiting_for_a_slow_node_and_listening_pages_are_bounded() {
    let hold = Arc::new(tokio::sync::Semaphore::new(0));
    let mut c = Client::with(
        "127.0.0.1:7878",
        Fake {
            hold: Some(Arc::clone(&hold)),
            ..Fake::default()
        },
        None,
    );
    c.start().await;
    let request = |c: &Client| {
        let mut r = Request::builder()
            .uri("/api/hub")
            .header(header::HOST, &c.host)
            .header(header::COOKIE, c.cookie.clone().unwrap())
            .body(Body::empty())
            .unwrap();
        r.extensions_mut().insert(ConnectInfo(c.from));
        r
    };
    let mut waiting = Vec::new();
    for _ in 0..32 {
        waiting.push(tokio::spawn(c.app.clone().oneshot(request(&c))));
    }
    // Let them all reach the node.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let r = c.get("/api/hub").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.json["error"]["kind"], "busy");
    hold.add_permits(1_000);
    for w in waiting {
        assert_eq!(w.await.unwrap().unwrap().status(), StatusCode::OK);
    }
    assert_eq!(c.get("/api/hub").await.status, StatusCode::OK);

    // 64 pages listening; the 65th is turned away until one goes.
    let events = |c: &Client| {
        let mut r = Request::builder()
            .uri("/api/events")
            .header(header::HOST, &c.host)
            .body(Body::empty())
            .unwrap();
        r.extensions_mut().insert(ConnectInfo(c.from));
        r
    };
    let held: Vec<_> = futures_held(&c, 64, events).await;
    assert!(held.iter().all(|r| r.status() == StatusCode::OK));
    let r = c.app.clone().oneshot(events(&c)).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    drop(held);
    let r = c.app.clone().oneshot(events(&c)).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

/// `n` responses of `make`'s requests, kept open (their bodies not read).
async fn futures_held(
    c: &Client,
    n: usize,
    make: impl Fn(&Client) -> Request<Body>,
) -> Vec<axum::response::Response> {
    let mut held = Vec::new();
    for _ in 0..n {
        held.push(c.app.clone().oneshot(make(c)).await.unwrap());
    }
    held
}

const POSTS: &[&str] = &[
    "/api/session",
    "/api/keys",
    "/api/key/protect",
    "/api/init",
    "/api/hubs",
    "/api/hubs/join",
    "/api/hubs/use",
    "/api/hub/access",
    "/api/members",
    "/api/assemblies",
    "/api/assemblies/a/join",
    "/api/assemblies/a/seat",
    "/api/polls",
    "/api/polls/p/open",
    "/api/polls/p/ballot",
    "/api/proposals",
    "/api/proposals/p/edit",
    "/api/proposals/p/comments",
    "/api/proposals/p/stance",
    "/api/proposals/p/amendments",
    "/api/proposals/p/decide",
    "/api/amendments/a/accept",
    "/api/aid/offers",
    "/api/aid/requests",
    "/api/aid/i/pledge",
    "/api/aid/i/forward",
    "/api/aid/pledges/p/reply",
    "/api/sync",
    "/api/bundle",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Random and mutated bodies on every write route: an answer (usually a typed 4xx), never a
    /// panic or a 5xx from the gate.
    #[test]
    fn random_bodies_on_every_route_get_an_answer(
        route in 0..POSTS.len(),
        body in prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            Just(br#"{"name": "x", "scores": {"A": 300}}"#.to_vec()),
            Just(br#"{"at": 18446744073709551615, "delete": 1}"#.to_vec()),
            Just(br#"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["#.to_vec()),
        ],
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        runtime.block_on(async {
            let mut c = Client::new("127.0.0.1:7878");
            c.start().await;
            let r = c.send("POST", POSTS[route], Some(body), true).await;
            prop_assert!(r.status != StatusCode::INTERNAL_SERVER_ERROR, "{} {}", POSTS[route], r.json);
            Ok(())
        })?;
    }
}

/// Reads until the peer closes (or errors); false if it is still open after `within`.
async fn closed_within(stream: &mut tokio::net::TcpStream, within: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut buf = [0u8; 4096];
    let read_all = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(within, read_all).await.is_ok()
}

/// A server of the fake backend on a loopback port with a 400 ms header timeout: its address,
/// what stops it, and its task.
async fn short_timeout_server() -> (
    std::net::SocketAddr,
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), moot_http::HttpError>>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(moot_http::serve_with_header_timeout(
        listener,
        Arc::new(Fake::default()),
        HttpOptions {
            hosts: vec![],
            token: None,
        },
        std::time::Duration::from_millis(400),
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop, server)
}

/// Stops a server made by [`short_timeout_server`] and waits for it to return.
async fn stop_server(
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<Result<(), moot_http::HttpError>>,
) {
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

/// Over a real socket: a connection that sends no request, or trickles its header, is closed
/// once the header timeout passes, as is a keep-alive connection left idle after its answer;
/// a request is answered; at `stop` the server returns.
#[tokio::test]
async fn the_server_closes_connections_that_hold_a_place_without_asking() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (addr, stop, server) = short_timeout_server().await;
    // Silent.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    // A header sent a byte at a time, each well within the timeout: the whole header is not.
    let mut trickle = tokio::net::TcpStream::connect(addr).await.unwrap();
    trickle.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
    let mut closed = false;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if trickle.write_all(b"X").await.is_err() {
            closed = true;
            break;
        }
    }
    assert!(
        closed || closed_within(&mut trickle, Duration::from_secs(1)).await,
        "a trickled header keeps its connection"
    );
    // A request is answered, and the connection, idle after it, is closed in turn.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(format!("GET / HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut head = [0u8; 12];
    client.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 200");
    assert!(closed_within(&mut client, Duration::from_secs(10)).await);
    stop_server(stop, server).await;
}

/// Over a real socket: a request whose header is whole but whose body never ends (one byte of
/// the 60,000 its header promises) is answered 408 once the body's time passes, and its
/// connection does not stay: any visitor could fill the listener's places so, for ever. The
/// same for a route that reads no body. (An upload has limits of its own, and one place.)
#[tokio::test]
async fn a_body_that_never_ends_does_not_hold_its_connection() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (addr, stop, server) = short_timeout_server().await;
    // A session and its page token, as any visitor gets them.
    let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
    client
        .write_all(
            format!("GET /api/session HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
    let mut answer = String::new();
    client.read_to_string(&mut answer).await.unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap();
    let cookie = head
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let csrf = serde_json::from_str::<serde_json::Value>(body).unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_string();
    for (request, status) in [
        ("POST /api/hubs", &b"HTTP/1.1 408"[..]),
        ("GET /api/session", b"HTTP/1.1 408"),
    ] {
        let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
        client
            .write_all(
                format!(
                    "{request} HTTP/1.1\r\nHost: {addr}\r\nCookie: {cookie}\r\n\
                     X-Moot-Csrf: {csrf}\r\nContent-Type: application/json\r\n\
                     Content-Length: 60000\r\n\r\n{{"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut head = [0u8; 12];
        tokio::time::timeout(Duration::from_secs(10), client.read_exact(&mut head))
            .await
            .unwrap_or_else(|_| panic!("{request}: no answer"))
            .unwrap();
        assert_eq!(&head, status, "{request}");
        assert!(
            closed_within(&mut client, Duration::from_secs(10)).await,
            "{request}: the connection stays open"
        );
    }
    stop_server(stop, server).await;
}
