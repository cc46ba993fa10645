//! The routes: each `/api` route names one `moot` command (docs/API.md), and the gate in front
//! of them all (`Host`, session, CSRF, headers).

// The helpers below fail with the response to send (a large value, made once per request).
#![allow(clippy::result_large_err)]

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::guard::{
    COOKIE, CSRF_HEADER, Denied, Exposure, Guard, OWNER_HEADER, SECURITY_HEADERS, Session, SignedIn,
};
use crate::{Arg, Backend, Call, Outcome};

/// A JSON body at most.
const MAX_BODY: usize = 64 << 10;
/// A bundle uploaded at most.
const MAX_BUNDLE: usize = 64 << 20;
/// Commands waiting for their turn at most (they run one at a time): more get 503, so that a
/// flood of requests cannot queue without bound in front of the node's own commands.
const MAX_WAITING: usize = 32;
/// Pages listening for changes at most.
const MAX_STREAMS: usize = 64;
/// Uploads (bundles, ballot files) read at once at most: each may hold up to [`MAX_BUNDLE`].
const MAX_UPLOADS: usize = 2;

pub struct App<B> {
    backend: Arc<B>,
    guard: Arc<Guard>,
    waiting: Arc<tokio::sync::Semaphore>,
    streams: Arc<tokio::sync::Semaphore>,
    uploads: Arc<tokio::sync::Semaphore>,
    /// How long a request's body (bar an upload's) may take to arrive, counted from its header.
    body_time: std::time::Duration,
}

impl<B> Clone for App<B> {
    fn clone(&self) -> Self {
        App {
            backend: Arc::clone(&self.backend),
            guard: Arc::clone(&self.guard),
            waiting: Arc::clone(&self.waiting),
            streams: Arc::clone(&self.streams),
            uploads: Arc::clone(&self.uploads),
            body_time: self.body_time,
        }
    }
}

impl<B: Backend> App<B> {
    /// `body_time`: how long a request's body may take to arrive once its header has (an
    /// upload's has its own limits, [`UPLOAD_PAUSE`] and [`UPLOAD_TIME`]).
    pub fn new(backend: Arc<B>, guard: Guard, body_time: std::time::Duration) -> Self {
        App {
            backend,
            guard: Arc::new(guard),
            waiting: Arc::new(tokio::sync::Semaphore::new(MAX_WAITING)),
            streams: Arc::new(tokio::sync::Semaphore::new(MAX_STREAMS)),
            uploads: Arc::new(tokio::sync::Semaphore::new(MAX_UPLOADS)),
            body_time,
        }
    }
}

/// The request's session, put there by the gate.
#[derive(Clone)]
pub struct Ctx {
    id: String,
    /// The session as this request may use it (not the owner's without the owner secret).
    session: Session,
    addr: Option<SocketAddr>,
    /// This request made the session the owner's: its answer gives the owner secret.
    revealed: bool,
}

pub fn router<B: Backend>(app: App<B>) -> Router {
    let api = Router::new()
        .route(
            "/session",
            get(session_get::<B>)
                .post(sign_in::<B>)
                .delete(sign_out::<B>),
        )
        .route("/events", get(events::<B>))
        .route("/id", get(|a, c| run::<B>(a, c, Spec::read(["id"]))))
        .route(
            "/keys",
            get(|a, c| run::<B>(a, c, Spec::read(["keys"]).private())).post(key_new::<B>),
        )
        .route("/key/protect", post(key_protect::<B>))
        .route("/key/new-device", post(key_new_device::<B>))
        .route(
            "/tally",
            post(tally::<B>).layer(DefaultBodyLimit::max(MAX_BUNDLE)),
        )
        .route("/init", post(init::<B>))
        .route(
            "/hubs",
            get(|a, c| run::<B>(a, c, Spec::read(["hubs"])))
                .post(|a, c, h, b| one_value::<B>(a, c, (h, b), "name", ["hub", "create"])),
        )
        .route("/hubs/join", post(hub_join::<B>))
        .route(
            "/hubs/use",
            post(|a, c, h, b| one_value::<B>(a, c, (h, b), "hub_id", ["hub", "use"])),
        )
        .route(
            "/hub",
            get(|a, c| run::<B>(a, c, Spec::read(["hub", "show"]).open())),
        )
        .route(
            "/hub/access",
            post(|a, c, h, b| one_value::<B>(a, c, (h, b), "access", ["hub", "access"])),
        )
        .route("/hub/ticket", get(ticket::<B>))
        .route(
            "/members",
            get(|a, c| run::<B>(a, c, Spec::read(["members"]))).post(member_add::<B>),
        )
        .route(
            "/members/{id}",
            axum::routing::patch(member_update::<B>).delete(member_remove::<B>),
        )
        .route(
            "/assemblies",
            get(|a, c| {
                run::<B>(
                    a,
                    c,
                    Spec::read(["assemblies"]).view(View::List("assemblies")),
                )
            })
            .post(assembly_create::<B>),
        )
        .route("/assemblies/{id}/{action}", post(assembly_action::<B>))
        .route(
            "/polls",
            get(|a, c| run::<B>(a, c, Spec::read(["polls"]).view(View::Polls)))
                .post(poll_create::<B>),
        )
        .route(
            "/polls/{id}/results",
            get(|a, c, p| poll_read::<B>(a, c, p, "results")),
        )
        .route(
            "/polls/{id}/verify",
            get(|a, c, p| poll_read::<B>(a, c, p, "verify"))
                .post(poll_verify_bundle::<B>)
                .layer(DefaultBodyLimit::max(MAX_BUNDLE)),
        )
        .route("/polls/{id}/ballot", post(vote::<B>))
        .route("/polls/{id}/{action}", post(poll_action::<B>))
        .route(
            "/proposals",
            get(|a, c| {
                run::<B>(
                    a,
                    c,
                    Spec::read(["proposals"]).view(View::List("proposals")),
                )
            })
            .post(proposal_create::<B>),
        )
        .route("/proposals/{id}", get(proposal_show::<B>))
        .route("/proposals/{id}/export", get(proposal_export::<B>))
        .route("/proposals/{id}/{action}", post(proposal_action::<B>))
        .route("/amendments/{id}/{action}", post(amendment_action::<B>))
        .route("/aid", get(aid_list::<B>))
        .route(
            "/aid/offers",
            post(|a, c, b| aid_post::<B>(a, c, b, "offer")),
        )
        .route(
            "/aid/requests",
            post(|a, c, b| aid_post::<B>(a, c, b, "request")),
        )
        .route("/aid/pledges/{id}/reply", post(aid_reply::<B>))
        .route("/aid/{id}", get(aid_show::<B>))
        .route("/aid/{id}/matches", get(aid_match::<B>))
        .route("/aid/{id}/{action}", post(aid_action::<B>))
        .route(
            "/merges",
            get(|a, c| run::<B>(a, c, Spec::read(["merges"]))),
        )
        .route("/peers", get(|a, c| run::<B>(a, c, Spec::read(["peers"]))))
        .route("/activity", get(activity::<B>))
        .route("/sync", post(sync::<B>))
        .route(
            "/bundle",
            get(bundle_export::<B>)
                .post(bundle_import::<B>)
                .layer(DefaultBodyLimit::max(MAX_BUNDLE)),
        )
        .fallback(|| async { error(StatusCode::NOT_FOUND, "not_found", "no such API route") });
    Router::new()
        .nest("/api", api)
        .merge(crate::assets::router())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::middleware::from_fn_with_state(app.clone(), gate::<B>))
        .with_state(app)
}

// ---------------------------------------------------------------------------------------------
// The gate

fn cookie_session(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// In front of every route: the `Host` check, the session (made on first contact), the CSRF
/// token on writes, and the security headers on every response.
async fn gate<B: Backend>(State(app): State<App<B>>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    if !app.guard.host_ok(host) {
        return secure(error(
            StatusCode::MISDIRECTED_REQUEST,
            "host",
            "this node does not answer to that host name",
        ));
    }
    // The body arrives whole, and in time, before anything reads it: a body that never ends
    // (a header saying 60,000 bytes, and one sent) held its connection, and a place of the
    // listener's, for ever. Uploads read theirs with limits of their own (`upload`).
    let mut request = if is_upload(request.method(), request.uri().path()) {
        request
    } else {
        let (parts, body) = request.into_parts();
        match read_body(body, MAX_BODY, app.body_time, app.body_time).await {
            Ok(bytes) => Request::from_parts(parts, axum::body::Body::from(bytes)),
            Err(e) => return secure(body_error(e, "the request body", "64 KiB")),
        }
    };
    let given = request.uri().query().and_then(|q| {
        q.split('&')
            .filter_map(|kv| kv.split_once('='))
            .find(|(k, _)| *k == "token")
            .map(|(_, v)| v.to_string())
    });
    // The UI's files need no session; only the API makes one.
    if !request.uri().path().starts_with("/api/") {
        return secure(next.run(request).await);
    }
    let found = cookie_session(request.headers()).and_then(|id| {
        app.guard
            .session(id)
            .map(|session| (id.to_string(), session))
    });
    let (id, session, new) = match found {
        Some((id, session)) => (id, session, false),
        None => match app.guard.new_session() {
            Some((id, session)) => (id, session, true),
            None => {
                return secure(error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "busy",
                    "no room for another session: try again later",
                ));
            }
        },
    };
    let reading = matches!(*request.method(), Method::GET | Method::HEAD);
    // The link `moot serve` prints carries the web token; the page passes it here
    // (`GET /api/session?token=TOKEN`), which makes this session the node owner's under a new
    // id (an id planted before is worth nothing) and answers, this once, with the owner secret
    // the page keeps and sends with every request.
    let (id, mut session, new, revealed) = match given {
        Some(given)
            if reading && request.uri().path() == "/api/session" && app.guard.token_ok(&given) =>
        {
            match app.guard.trust(&id).and_then(|_| app.guard.rotate(&id)) {
                Some((id, trusted)) => (id, trusted, true, true),
                None => (id, session, new, false),
            }
        }
        _ => (id, session, new, false),
    };
    // The cookie alone is not the owner: the request must show the owner secret too.
    let presented = request
        .headers()
        .get(OWNER_HEADER)
        .and_then(|v| v.to_str().ok());
    if session.trusted && !revealed && !app.guard.owner_ok(&session, presented) {
        session.trusted = false;
    }
    if !reading {
        let token = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if new || token != Some(session.csrf.as_str()) {
            return secure(with_cookie(
                error(
                    StatusCode::FORBIDDEN,
                    "csrf",
                    "this request lacks the page's token (X-Moot-Csrf): reload the page",
                ),
                new.then_some(id.as_str()),
            ));
        }
    }
    let addr = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0);
    let api = request.uri().path().starts_with("/api/");
    request.extensions_mut().insert(Ctx {
        id: id.clone(),
        session,
        addr,
        revealed,
    });
    let mut response = next.run(request).await;
    if api {
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    secure(with_cookie(response, new.then_some(id.as_str())))
}

fn with_cookie(mut response: Response, id: Option<&str>) -> Response {
    if let Some(id) = id
        && let Ok(value) =
            HeaderValue::from_str(&format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict"))
    {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

fn secure(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response
            .headers_mut()
            .insert(*name, HeaderValue::from_static(value));
    }
    response
}

pub fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": {"kind": kind, "message": message}})),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// Commands

/// What a public-only session (an anonymous visitor on the LAN, a guest) may see of a read.
#[derive(Debug, Clone)]
enum View {
    /// Not at all.
    Private,
    /// All of it (the hub's name and counts).
    Open,
    /// The elements of this array with `"public": true`.
    List(&'static str),
    /// The object, if `"public": true`.
    Item,
    /// The polls of public assemblies.
    Polls,
    /// This poll's output, if its assembly is public.
    Poll(String),
}

/// One command to run for a route.
struct Spec {
    args: Vec<Arg>,
    write: bool,
    view: View,
    input: Option<Vec<u8>>,
}

impl Spec {
    fn read<const N: usize>(words: [&str; N]) -> Self {
        Spec {
            args: words.iter().map(|w| Arg::Text((*w).to_string())).collect(),
            write: false,
            view: View::Private,
            input: None,
        }
    }
    fn write<const N: usize>(words: [&str; N]) -> Self {
        Spec {
            write: true,
            ..Spec::read(words)
        }
    }
    fn private(self) -> Self {
        Spec {
            view: View::Private,
            ..self
        }
    }
    fn open(self) -> Self {
        Spec {
            view: View::Open,
            ..self
        }
    }
    fn view(self, view: View) -> Self {
        Spec { view, ..self }
    }
    /// `--name=value` (a value is never taken for a flag this way, whatever it starts with).
    fn flag(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.args.push(Arg::Text(format!("--{name}={value}")));
        self
    }
    fn flag_opt(self, name: &str, value: Option<impl std::fmt::Display>) -> Self {
        match value {
            Some(v) => self.flag(name, v),
            None => self,
        }
    }
    fn switch(mut self, name: &str, on: bool) -> Self {
        if on {
            self.args.push(Arg::Text(format!("--{name}")));
        }
        self
    }
    /// Positional arguments, after `--` (so that none is taken for a flag).
    fn then<const N: usize>(mut self, values: [&str; N]) -> Self {
        self.args.push(Arg::Text("--".into()));
        self.args
            .extend(values.iter().map(|v| Arg::Text((*v).to_string())));
        self
    }
    fn arg(mut self, arg: Arg) -> Self {
        self.args.push(arg);
        self
    }
}

/// Runs a command for a session: who it acts as, whether it may, what it may see of the
/// answer.
async fn run<B: Backend>(
    State(app): State<App<B>>,
    Extension(ctx): Extension<Ctx>,
    spec: Spec,
) -> Response {
    let ctx = standing(&app, ctx).await;
    let public_only = app.guard.public_only(&ctx.session);
    // A members-only hub shows nothing at all to whoever is not a member (as its nodes send
    // unknown peers nothing).
    if public_only && !spec.write {
        match members_only(&app, &ctx).await {
            Ok(false) => {}
            Ok(true) => {
                return error(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "this hub is for its members only: sign in as a member",
                );
            }
            // The hub could not be read (a node too busy to answer): that error, and nothing.
            Err(response) => return response,
        }
    }
    if spec.write && !app.guard.may_write(&ctx.session) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            if ctx.session.signed_in.as_ref().is_some_and(|s| s.guest) {
                "guests cannot do this"
            } else {
                "sign in as a member to do this"
            },
        );
    }
    if !spec.write && public_only && matches!(spec.view, View::Private) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as a member to see this",
        );
    }
    let file_out = spec.args.contains(&Arg::OutputFile);
    let outcome = match execute(&app, call(&ctx, &spec)).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    let mut value = match answer(&outcome) {
        Ok(Some(value)) => value,
        Ok(None) => Value::Null,
        Err(response) => return response,
    };
    if !spec.write && public_only {
        match filter(&app, &ctx, &spec.view, &mut value).await {
            Ok(()) => strip_contacts(&mut value),
            Err(response) => return response,
        }
    }
    if file_out {
        return match outcome.file {
            Some(bytes) => {
                ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
            }
            None => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                "the command wrote no file",
            ),
        };
    }
    axum::Json(value).into_response()
}

/// Reads an upload (a bundle, a ballot file) — only once the session may do what it is for
/// and one of [`MAX_UPLOADS`] places is free, so that uploads refused anyway are never read,
/// and memory for them stays bounded. The permit is held until the command has run.
async fn upload<B: Backend>(
    app: &App<B>,
    ctx: &Ctx,
    write: bool,
    body: axum::body::Body,
) -> Result<(Vec<u8>, tokio::sync::OwnedSemaphorePermit), Response> {
    // The roll now, not as it was at sign-in: a member removed since uploads nothing.
    let ctx = &standing(app, ctx.clone()).await;
    if write && !app.guard.may_write(&ctx.session) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as a member to do this",
        ));
    }
    let Ok(permit) = Arc::clone(&app.uploads).try_acquire_owned() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "another upload is being read: try again in a moment",
        ));
    };
    match read_body(body, MAX_BUNDLE, UPLOAD_PAUSE, UPLOAD_TIME).await {
        Ok(bytes) => Ok((bytes, permit)),
        Err(e) => Err(body_error(e, "the upload", "64 MiB")),
    }
}

/// The routes that take an upload ([`upload`]: a bundle, a ballot file), whose bodies are
/// read by the route, not by the gate.
fn is_upload(method: &Method, path: &str) -> bool {
    let poll_verify = path
        .strip_prefix("/api/polls/")
        .and_then(|rest| rest.strip_suffix("/verify"))
        .is_some_and(|id| !id.is_empty() && !id.contains('/'));
    *method == Method::POST && (path == "/api/tally" || path == "/api/bundle" || poll_verify)
}

/// The answer to a body that could not be read.
fn body_error(e: UploadError, what: &str, max: &str) -> Response {
    match e {
        UploadError::TooLarge => error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "bad_input",
            &format!("{what} is larger than {max}"),
        ),
        UploadError::CutOff => error(
            StatusCode::BAD_REQUEST,
            "bad_input",
            &format!("{what} was cut off"),
        ),
        UploadError::TooSlow => error(
            StatusCode::REQUEST_TIMEOUT,
            "bad_input",
            &format!("{what} stalled or took too long: try again"),
        ),
    }
}

/// An upload that sends nothing for this long is dropped: it holds one of the
/// [`MAX_UPLOADS`] places.
const UPLOAD_PAUSE: std::time::Duration = std::time::Duration::from_secs(30);

/// An upload must be complete within this (64 MiB at ~110 KB/s).
const UPLOAD_TIME: std::time::Duration = std::time::Duration::from_secs(600);

#[derive(Debug, PartialEq, Eq)]
enum UploadError {
    TooLarge,
    CutOff,
    TooSlow,
}

/// Reads a request body of at most `max` bytes that keeps coming (no pause of `pause`) and
/// ends within `total`.
async fn read_body(
    body: axum::body::Body,
    max: usize,
    pause: std::time::Duration,
    total: std::time::Duration,
) -> Result<Vec<u8>, UploadError> {
    use futures_util::StreamExt as _;
    let deadline = tokio::time::Instant::now() + total;
    let mut stream = body.into_data_stream();
    let mut bytes: Vec<u8> = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match tokio::time::timeout(pause.min(left), stream.next()).await {
            Err(_) => return Err(UploadError::TooSlow),
            Ok(None) => return Ok(bytes),
            Ok(Some(Err(_))) => return Err(UploadError::CutOff),
            Ok(Some(Ok(chunk))) => {
                if bytes.len().saturating_add(chunk.len()) > max {
                    return Err(UploadError::TooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
        }
    }
}

/// Runs a call, if fewer than [`MAX_WAITING`] are waiting.
async fn execute<B: Backend>(app: &App<B>, call: Call) -> Result<Outcome, Response> {
    let Ok(_waiting) = app.waiting.try_acquire() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "the node has too many requests waiting: try again in a moment",
        ));
    };
    Ok(app.backend.run(call).await)
}

fn call(ctx: &Ctx, spec: &Spec) -> Call {
    let mut args = vec![Arg::Text("--json".into())];
    args.extend(spec.args.iter().cloned());
    let (as_member, passphrase) = match &ctx.session.signed_in {
        Some(s) => (Some(s.member_id.clone()), s.passphrase.clone()),
        None => (None, None),
    };
    Call {
        args,
        as_member,
        passphrase,
        input: spec.input.clone(),
        write: spec.write,
    }
}

/// A command's outcome as a response: its JSON, or its error object with the status its kind
/// means.
fn answer(outcome: &Outcome) -> Result<Option<Value>, Response> {
    if outcome.code == 0 {
        let text = String::from_utf8_lossy(&outcome.stdout);
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        return serde_json::from_str(text).map(Some).map_err(|_| {
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "failed",
                "the command's output was not JSON",
            )
        });
    }
    let text = String::from_utf8_lossy(&outcome.stderr);
    let value: Value = text
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str::<Value>(line).ok())
        .unwrap_or_else(|| json!({"error": {"kind": "failed", "message": text.trim()}}));
    let kind = value["error"]["kind"].as_str().unwrap_or("failed");
    let status = match kind {
        "usage" | "bad_input" => StatusCode::BAD_REQUEST,
        "refused" => StatusCode::FORBIDDEN,
        "not_found" => StatusCode::NOT_FOUND,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Err((status, axum::Json(value)).into_response())
}

/// A signed-in session's standing, checked against the roll now: an active member, or (a
/// guest, removed, not on the roll, or the roll unreadable) public-only. Before the node has a
/// hub there is no roll, and no one is a guest.
async fn standing<B: Backend>(app: &App<B>, ctx: Ctx) -> Ctx {
    let Some(signed_in) = ctx.session.signed_in.clone() else {
        return ctx;
    };
    let guest = !active_member(app, &ctx, &signed_in.member_id).await;
    if guest == signed_in.guest {
        return ctx;
    }
    match app.guard.set_guest(&ctx.id, guest) {
        Some(session) => Ctx { session, ..ctx },
        None => ctx,
    }
}

/// Whether `member_id` is an active member on the roll now (read as `ctx`); with no hub yet,
/// yes (there is no roll to be a guest on); if the roll cannot be read, no.
async fn active_member<B: Backend>(app: &App<B>, ctx: &Ctx, member_id: &str) -> bool {
    match read(app, ctx, ["members"]).await {
        Ok(members) => members["members"].as_array().is_some_and(|list| {
            list.iter().any(|m| {
                m["member_id"].as_str() == Some(member_id) && m["status"].as_str() == Some("member")
            })
        }),
        // Not found: no hub yet, or something else not found (fails closed).
        Err(response) => response.status() == StatusCode::NOT_FOUND && no_hub_yet(app, ctx).await,
    }
}

/// Whether the hub is members-only (`hub show`'s `access`; no hub yet: no). If the hub cannot
/// be read (a node too busy to answer, say), the error: a visitor is shown nothing rather than
/// a members-only hub's public-flagged spaces.
async fn members_only<B: Backend>(app: &App<B>, ctx: &Ctx) -> Result<bool, Response> {
    match read(app, ctx, ["hub", "show"]).await {
        Ok(hub) => Ok(hub["access"].as_str() == Some("members-only")),
        Err(_) if no_hub_yet(app, ctx).await => Ok(false),
        Err(response) => Err(response),
    }
}

/// Whether the node holds no hub yet (`moot hubs` lists none); a list that cannot be read is
/// not "none".
async fn no_hub_yet<B: Backend>(app: &App<B>, ctx: &Ctx) -> bool {
    match read(app, ctx, ["hubs"]).await {
        Ok(hubs) => hubs["hubs"].as_array().is_some_and(Vec::is_empty),
        Err(_) => false,
    }
}

/// Blanks every sealed contact (`…_contact`) in a value: a public-only session never sees one,
/// whatever key the node opened them with.
fn strip_contacts(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, field) in map.iter_mut() {
                if key.ends_with("_contact") {
                    *field = Value::Null;
                } else {
                    strip_contacts(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip_contacts),
        _ => {}
    }
}

fn is_public(value: &Value) -> bool {
    value["public"].as_bool() == Some(true)
}

/// Keeps what a public-only session may see of a read's answer.
async fn filter<B: Backend>(
    app: &App<B>,
    ctx: &Ctx,
    view: &View,
    value: &mut Value,
) -> Result<(), Response> {
    let hidden = || {
        error(
            StatusCode::NOT_FOUND,
            "not_found",
            "nothing public by that id",
        )
    };
    match view {
        View::Private => Err(hidden()),
        View::Open => Ok(()),
        View::List(key) => {
            if let Some(items) = value[*key].as_array_mut() {
                items.retain(is_public);
            }
            Ok(())
        }
        View::Item => {
            if is_public(value) {
                Ok(())
            } else {
                Err(hidden())
            }
        }
        View::Polls => {
            let public = public_assemblies(app, ctx).await?;
            if let Some(items) = value["polls"].as_array_mut() {
                items.retain(|p| {
                    p["assembly_id"]
                        .as_str()
                        .is_some_and(|a| public.contains(a))
                });
            }
            Ok(())
        }
        View::Poll(poll) => {
            let public = public_assemblies(app, ctx).await?;
            let polls = read(app, ctx, ["polls"]).await?;
            let assembly = polls["polls"]
                .as_array()
                .and_then(|list| list.iter().find(|p| p["poll_id"].as_str() == Some(poll)))
                .and_then(|p| p["assembly_id"].as_str().map(str::to_string));
            match assembly {
                Some(a) if public.contains(&a) => Ok(()),
                _ => Err(hidden()),
            }
        }
    }
}

async fn read<B: Backend, const N: usize>(
    app: &App<B>,
    ctx: &Ctx,
    words: [&str; N],
) -> Result<Value, Response> {
    let outcome = execute(app, call(ctx, &Spec::read(words))).await?;
    Ok(answer(&outcome)?.unwrap_or(Value::Null))
}

async fn public_assemblies<B: Backend>(
    app: &App<B>,
    ctx: &Ctx,
) -> Result<BTreeSet<String>, Response> {
    let assemblies = read(app, ctx, ["assemblies"]).await?;
    Ok(assemblies["assemblies"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter(|a| is_public(a))
                .filter_map(|a| a["assembly_id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default())
}

/// A JSON body, strictly: unknown fields refused.
fn body<T: serde::de::DeserializeOwned>(headers: &HeaderMap, bytes: &Bytes) -> Result<T, Response> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim() == "application/json")
        });
    if !json {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_input",
            "send the body as application/json",
        ));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            "bad_input",
            &format!("the request's body: {e}"),
        )
    })
}

macro_rules! parse {
    ($headers:expr, $bytes:expr) => {
        match body(&$headers, &$bytes) {
            Ok(value) => value,
            Err(response) => return response,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Sessions

async fn session_get<B: Backend>(
    State(app): State<App<B>>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    let mut answer = session_json(&app, &ctx.session);
    if ctx.revealed
        && let Some(owner) = &ctx.session.owner
    {
        answer["owner"] = json!(owner);
    }
    axum::Json(answer).into_response()
}

fn session_json<B: Backend>(app: &App<B>, session: &Session) -> Value {
    json!({
        "csrf": session.csrf,
        "exposure": match app.guard.exposure { Exposure::Local => "local", Exposure::Lan => "lan" },
        "signed_in": session.signed_in.as_ref().map(|s| json!({
            "member_id": s.member_id, "name": s.name, "guest": s.guest,
        })),
        "may_write": app.guard.may_write(session),
        "public_only": app.guard.public_only(session),
        "trusted": app.guard.acts_as_node(session),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignIn {
    /// A member id, or the name of a key held by this node.
    member: String,
    #[serde(default)]
    passphrase: Option<String>,
}

async fn sign_in<B: Backend>(
    State(app): State<App<B>>,
    Extension(ctx): Extension<Ctx>,
    headers: HeaderMap,
    bytes: Bytes,
) -> Response {
    let request: SignIn = parse!(headers, bytes);
    // Counted per address (all unknown addresses share one count).
    let ip = ctx
        .addr
        .map_or(std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |a| {
            a.ip()
        });
    if app.guard.sign_in_begin(ip) == Err(Denied::TooMany) {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many",
            "too many failed sign-ins: wait a minute",
        );
    }
    let response = sign_in_as(&app, &ctx, request).await;
    // Anything but a success (no such key, a wrong or missing passphrase) counts against the
    // address.
    if response.status() == StatusCode::OK {
        app.guard.sign_in_succeeded(ip);
    }
    response
}

async fn sign_in_as<B: Backend>(app: &App<B>, ctx: &Ctx, request: SignIn) -> Response {
    let anonymous = Ctx {
        session: Session {
            signed_in: None,
            ..ctx.session.clone()
        },
        ..ctx.clone()
    };
    // Which key: by member id or by its name on this node.
    let keys = match read(app, &anonymous, ["keys"]).await {
        Ok(keys) => keys,
        Err(response) => return response,
    };
    let wanted = request.member.trim();
    let found = keys["keys"].as_array().and_then(|list| {
        list.iter().find(|k| {
            k["member_id"].as_str() == Some(wanted)
                || k["name"]
                    .as_str()
                    .is_some_and(|n| n.eq_ignore_ascii_case(wanted))
        })
    });
    let Some(key) = found else {
        return error(
            StatusCode::FORBIDDEN,
            "refused",
            "no key by that member id or name is held by this node",
        );
    };
    let member_id = key["member_id"].as_str().unwrap_or_default().to_string();
    let protected = key["protected"].as_bool() == Some(true);
    if !protected && !app.guard.acts_as_node(&ctx.session) {
        return error(
            StatusCode::FORBIDDEN,
            "refused",
            "this key has no passphrase: only the node's owner (the page opened with the link \
             moot serve printed, on this machine) may act with it (moot key protect)",
        );
    }
    let passphrase = request.passphrase.filter(|p| !p.is_empty());
    if protected && passphrase.is_none() {
        return error(
            StatusCode::FORBIDDEN,
            "refused",
            "this key needs its passphrase",
        );
    }
    let candidate = SignedIn {
        member_id: member_id.clone(),
        name: key["name"].as_str().unwrap_or_default().to_string(),
        passphrase: if protected { passphrase } else { None },
        guest: false,
    };
    let trying = Ctx {
        session: Session {
            signed_in: Some(candidate.clone()),
            ..ctx.session.clone()
        },
        ..ctx.clone()
    };
    // The passphrase opens the key (every command checks it).
    if let Err(response) = read(app, &trying, ["id"]).await {
        return response;
    }
    // Only an active member on the roll is more than a visitor (see `standing`).
    let guest = !active_member(app, &trying, &member_id).await;
    change_session(
        app,
        &ctx.id,
        ctx.session.trusted,
        Some(SignedIn { guest, ..candidate }),
    )
}

/// Signs a session in or out, under a new id (a cookie seen before is worth nothing after).
/// `trusted`: whether this request is the owner's (showed the owner secret).
fn change_session<B: Backend>(
    app: &App<B>,
    id: &str,
    trusted: bool,
    signed_in: Option<SignedIn>,
) -> Response {
    match app
        .guard
        .set_signed_in(id, signed_in)
        .and_then(|_| app.guard.rotate(id))
    {
        Some((id, mut session)) => {
            session.trusted = session.trusted && trusted;
            with_cookie(
                axum::Json(session_json(app, &session)).into_response(),
                Some(&id),
            )
        }
        None => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "failed",
            "the session is gone",
        ),
    }
}

async fn sign_out<B: Backend>(
    State(app): State<App<B>>,
    Extension(ctx): Extension<Ctx>,
) -> Response {
    change_session(&app, &ctx.id, ctx.session.trusted, None)
}

async fn events<B: Backend>(State(app): State<App<B>>) -> Response {
    // The permit goes with the stream: released when the page goes away.
    let Ok(permit) = Arc::clone(&app.streams).try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "too many pages are listening for changes",
        );
    };
    let changes = app.backend.changes();
    let stream =
        futures_util::stream::unfold((changes, permit), |(mut changes, permit)| async move {
            loop {
                match changes.recv().await {
                    Ok(change) => {
                        let event = Event::default()
                            .event("change")
                            .json_data(change)
                            .unwrap_or_else(|_| Event::default().event("change"));
                        return Some((Ok::<_, std::convert::Infallible>(event), (changes, permit)));
                    }
                    // Missed some: one change says "fetch again" as well as many.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

async fn ticket<B: Backend>(State(app): State<App<B>>, Extension(ctx): Extension<Ctx>) -> Response {
    let ctx = standing(&app, ctx).await;
    if app.guard.public_only(&ctx.session) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "sign in as a member to see this",
        );
    }
    match app.backend.ticket() {
        Some(ticket) => axum::Json(json!({ "ticket": ticket })).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            "the node is not on the network yet: create or join a hub first",
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// Keys and hubs

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NameBody {
    name: String,
    #[serde(default)]
    passphrase: Option<String>,
}

/// Writes that make or seal keys on this node: only its owner, on this machine.
fn owner_only<B: Backend>(app: &App<B>, ctx: &Ctx) -> Option<Response> {
    (!app.guard.acts_as_node(&ctx.session)).then(|| {
        error(
            StatusCode::FORBIDDEN,
            "refused",
            "keys are made by the node's owner, on its machine (the link moot serve printed)",
        )
    })
}

async fn init<B: Backend>(a: State<App<B>>, c: Extension<Ctx>, h: HeaderMap, b: Bytes) -> Response {
    if let Some(r) = owner_only(&a.0, &c.0) {
        return r;
    }
    let body: NameBody = parse!(h, b);
    let spec = Spec::write(["init"]).flag("name", &body.name);
    key_command(&a.0, spec, None, body.passphrase).await
}

async fn key_new<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Some(r) = owner_only(&a.0, &c.0) {
        return r;
    }
    let body: NameBody = parse!(h, b);
    let spec = Spec::write(["key", "new"]).flag("name", &body.name);
    key_command(&a.0, spec, None, body.passphrase).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Passphrase {
    passphrase: String,
}

async fn key_protect<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    if let Some(r) = owner_only(&a.0, &c.0) {
        return r;
    }
    let body: Passphrase = parse!(h, b);
    let as_member = c.0.session.signed_in.as_ref().map(|s| s.member_id.clone());
    key_command(
        &a.0,
        Spec::write(["key", "protect"]),
        as_member,
        Some(body.passphrase),
    )
    .await
}

async fn key_new_device<B: Backend>(a: State<App<B>>, c: Extension<Ctx>) -> Response {
    if let Some(r) = owner_only(&a.0, &c.0) {
        return r;
    }
    run(a, c, Spec::write(["key", "new-device"])).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct TallyQuery {
    #[serde(default)]
    seats: Option<u32>,
    #[serde(default)]
    seed: Option<String>,
    #[serde(default)]
    race: Option<String>,
}

/// `moot tally` of a ballot file sent as the body (no node involved; anyone may count).
async fn tally<B: Backend>(
    State(app): State<App<B>>,
    Extension(ctx): Extension<Ctx>,
    Query(q): Query<TallyQuery>,
    body: axum::body::Body,
) -> Response {
    let (bytes, _permit) = match upload(&app, &ctx, false, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let spec = Spec::read(["tally"])
        .flag_opt("seats", q.seats)
        .flag_opt("seed", nonempty(q.seed))
        .flag_opt("race", nonempty(q.race))
        .arg(Arg::Text("--".into()))
        .arg(Arg::InputFile);
    let call = Call {
        args: std::iter::once(Arg::Text("--json".into()))
            .chain(spec.args)
            .collect(),
        as_member: None,
        passphrase: None,
        input: Some(bytes),
        write: false,
    };
    let outcome = match execute(&app, call).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    match answer(&outcome) {
        Ok(value) => axum::Json(value.unwrap_or(Value::Null)).into_response(),
        Err(response) => response,
    }
}

/// Runs a key command: `passphrase` is the new (or sealing) passphrase, not a session's.
async fn key_command<B: Backend>(
    app: &App<B>,
    spec: Spec,
    as_member: Option<String>,
    passphrase: Option<String>,
) -> Response {
    let mut args = vec![Arg::Text("--json".into())];
    args.extend(spec.args);
    let call = Call {
        args,
        as_member,
        passphrase: passphrase.filter(|p| !p.is_empty()),
        input: None,
        write: true,
    };
    let outcome = match execute(app, call).await {
        Ok(outcome) => outcome,
        Err(response) => return response,
    };
    match answer(&outcome) {
        Ok(value) => axum::Json(value.unwrap_or(Value::Null)).into_response(),
        Err(response) => response,
    }
}

/// A write whose body is `{"FIELD": "VALUE"}` and whose command takes VALUE as its one
/// positional argument (`hub create NAME`, `hub use HUB_ID`, `hub access ACCESS`).
async fn one_value<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    (h, b): (HeaderMap, Bytes),
    field: &'static str,
    words: [&'static str; 2],
) -> Response {
    let body: std::collections::BTreeMap<String, String> = parse!(h, b);
    let value = match body.get(field) {
        Some(value) if body.len() == 1 => value,
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_input",
                &format!("the request's body: expected {{\"{field}\": TEXT}} and nothing else"),
            );
        }
    };
    run(a, c, Spec::write(words).then([value])).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Join {
    ticket: String,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn hub_join<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: Join = parse!(h, b);
    let spec = Spec::write(["hub", "join"])
        .flag("timeout", body.timeout.unwrap_or(30).min(120))
        .then([&body.ticket]);
    run(a, c, spec).await
}

// ---------------------------------------------------------------------------------------------
// Members and assemblies

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberBody {
    #[serde(default)]
    member_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    constituency: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

async fn member_add<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: MemberBody = parse!(h, b);
    let spec = Spec::write(["member", "add"])
        .flag("name", body.name.unwrap_or_default())
        .flag_opt("constituency", body.constituency)
        .flag_opt("role", body.role)
        .then([body.member_id.as_deref().unwrap_or_default()]);
    run(a, c, spec).await
}

async fn member_update<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: MemberBody = parse!(h, b);
    let spec = Spec::write(["member", "update"])
        .flag_opt("name", body.name)
        .flag_opt("constituency", body.constituency)
        .flag_opt("role", body.role)
        .then([&id]);
    run(a, c, spec).await
}

async fn member_remove<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    run(a, c, Spec::write(["member", "remove"]).then([&id])).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AssemblyBody {
    name: String,
    kind: String,
    #[serde(default)]
    public: bool,
}

async fn assembly_create<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: AssemblyBody = parse!(h, b);
    let spec = Spec::write(["assembly", "create"])
        .flag("kind", &body.kind)
        .switch("public", body.public)
        .then([&body.name]);
    run(a, c, spec).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct SeatBody {
    #[serde(default)]
    member_id: String,
    #[serde(default)]
    remove: bool,
}

async fn assembly_action<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let spec = match action.as_str() {
        "join" => Spec::write(["assembly", "join"]).then([&id]),
        "leave" => Spec::write(["assembly", "leave"]).then([&id]),
        "seat" | "convener" => {
            let body: SeatBody = parse!(h, b);
            let switch = if action == "seat" {
                "remove"
            } else {
                "dismiss"
            };
            Spec::write(["assembly", action.as_str()])
                .switch(switch, body.remove)
                .then([&id, &body.member_id])
        }
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such API route"),
    };
    run(a, c, spec).await
}

// ---------------------------------------------------------------------------------------------
// Polls

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PollBody {
    assembly: String,
    question: String,
    options: Vec<String>,
    #[serde(default)]
    seats: Option<u16>,
    #[serde(default)]
    officers: Vec<String>,
    #[serde(default)]
    stations: Vec<String>,
    #[serde(default)]
    quorum: Option<u32>,
    #[serde(default)]
    opens_at: Option<String>,
    #[serde(default)]
    closes_at: Option<String>,
}

async fn poll_create<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: PollBody = parse!(h, b);
    let mut spec = Spec::write(["poll", "create"])
        .flag("assembly", &body.assembly)
        .flag("question", &body.question)
        .flag_opt("seats", body.seats)
        .flag_opt("quorum", body.quorum)
        .flag_opt("opens-at", body.opens_at)
        .flag_opt("closes-at", body.closes_at);
    for option in &body.options {
        spec = spec.flag("option", option);
    }
    for officer in &body.officers {
        spec = spec.flag("officer", officer);
    }
    for station in &body.stations {
        spec = spec.flag("station", station);
    }
    run(a, c, spec).await
}

async fn poll_action<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let word = match action.as_str() {
        "open" => "open",
        "close-station" => "close-station",
        "close" => "close",
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such API route"),
    };
    run(a, c, Spec::write(["poll", word]).then([&id])).await
}

/// `moot poll results|verify ID`: what a public-only session sees of a poll of a public
/// assembly.
async fn poll_read<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    word: &'static str,
) -> Response {
    let spec = Spec::read(["poll", word]).then([&id]).view(View::Poll(id));
    run(a, c, spec).await
}

/// `moot poll verify ID --bundle FILE` with the bundle sent as the body: the poll counted from
/// that bundle's signed ops alone.
async fn poll_verify_bundle<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    body: axum::body::Body,
) -> Response {
    let (bytes, _permit) = match upload(&a.0, &c.0, false, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let mut spec = Spec::read(["poll", "verify"])
        .arg(Arg::Text("--bundle".into()))
        .arg(Arg::InputFile)
        .then([&id])
        .open();
    spec.input = Some(bytes);
    run(a, c, spec).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ballot {
    /// Option name → score.
    scores: std::collections::BTreeMap<String, u8>,
}

async fn vote<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: Ballot = parse!(h, b);
    let mut spec = Spec::write(["vote"]);
    for (option, score) in &body.scores {
        spec = spec.flag("score", format!("{option}={score}"));
    }
    run(a, c, spec.then([&id])).await
}

// ---------------------------------------------------------------------------------------------
// Proposals

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalBody {
    assembly: String,
    title: String,
    #[serde(default)]
    body: Option<String>,
}

async fn proposal_create<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: ProposalBody = parse!(h, b);
    let spec = Spec::write(["proposal", "create"])
        .flag("assembly", &body.assembly)
        .flag("title", &body.title)
        .flag_opt("body", body.body);
    run(a, c, spec).await
}

async fn proposal_show<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    run(
        a,
        c,
        Spec::read(["proposal", "show"])
            .then([&id])
            .view(View::Item),
    )
    .await
}

async fn proposal_export<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    let spec = Spec::read(["proposal", "export"])
        .then([&id])
        .arg(Arg::OutputFile);
    run(a, c, spec).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProposalAction {
    // edit: a splice at a UTF-16 position, or the whole new text.
    #[serde(default)]
    at: Option<usize>,
    #[serde(default)]
    delete: Option<usize>,
    #[serde(default)]
    insert: Option<String>,
    #[serde(default)]
    text: Option<String>,
    /// The heads the positions count in (`heads` of the proposal as the editor last saw it).
    #[serde(default)]
    base: Vec<String>,
    // comment
    #[serde(default)]
    reply_to: Option<String>,
    // stance
    #[serde(default)]
    stance: Option<String>,
    #[serde(default)]
    reason: Option<String>,
    // amend
    #[serde(default)]
    replace: Option<String>,
    #[serde(default)]
    with: Option<String>,
    // decide
    #[serde(default)]
    outcome: Option<String>,
}

async fn proposal_action<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: ProposalAction = parse!(h, b);
    let spec = match action.as_str() {
        "edit" => match (body.text, body.at) {
            (Some(text), None) => {
                let mut spec = Spec::write(["proposal", "edit"])
                    .arg(Arg::Text("--body-file".into()))
                    .arg(Arg::InputFile)
                    .then([&id]);
                spec.input = Some(text.into_bytes());
                spec
            }
            (None, Some(at)) => {
                let spec = Spec::write(["proposal", "edit"])
                    .flag("at", at)
                    .flag("delete", body.delete.unwrap_or(0))
                    .flag("insert", body.insert.unwrap_or_default());
                let spec = if body.base.is_empty() {
                    spec
                } else {
                    spec.flag("base", body.base.join(","))
                };
                spec.then([&id])
            }
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_input",
                    "an edit is either {\"text\"} or {\"at\", \"delete\", \"insert\"}",
                );
            }
        },
        "comments" => Spec::write(["proposal", "comment"])
            .flag("text", body.text.unwrap_or_default())
            .flag_opt("reply-to", body.reply_to)
            .then([&id]),
        "stance" => Spec::write(["proposal", "stance"])
            .flag("reason", body.reason.unwrap_or_default())
            .then([&id, body.stance.as_deref().unwrap_or_default()]),
        "amendments" => Spec::write(["proposal", "amend"])
            .flag("replace", body.replace.unwrap_or_default())
            .flag("with", body.with.unwrap_or_default())
            .then([&id]),
        "decide" => Spec::write(["proposal", "decide"])
            .then([&id, body.outcome.as_deref().unwrap_or_default()]),
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such API route"),
    };
    run(a, c, spec).await
}

async fn amendment_action<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let switch = match action.as_str() {
        "accept" => "accept",
        "reject" => "reject",
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such API route"),
    };
    run(
        a,
        c,
        Spec::write(["proposal", "amend"])
            .switch(switch, true)
            .then([&id]),
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Mutual aid

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AidQuery {
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

fn nonempty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

async fn aid_list<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Query(q): Query<AidQuery>,
) -> Response {
    let spec = Spec::read(["aid", "list"])
        .flag_opt("kind", nonempty(q.kind))
        .flag_opt("category", nonempty(q.category))
        .flag_opt("area", nonempty(q.area))
        .flag_opt("status", nonempty(q.status))
        .view(View::List("items"));
    run(a, c, spec).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemBody {
    title: String,
    category: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    public: bool,
}

fn item_flags(spec: Spec, item: ItemBody) -> Spec {
    spec.flag("title", &item.title)
        .flag("category", &item.category)
        .flag("description", item.description.unwrap_or_default())
        .flag_opt("area", nonempty(item.area))
        .flag_opt("from", nonempty(item.from))
        .flag_opt("until", nonempty(item.until))
        .flag_opt("quantity", item.quantity)
        .switch("public", item.public)
}

async fn aid_post<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    (h, b): (HeaderMap, Bytes),
    kind: &'static str,
) -> Response {
    let body: ItemBody = parse!(h, b);
    let spec = item_flags(Spec::write(["aid", kind]), body);
    run(a, c, spec).await
}

async fn aid_show<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
) -> Response {
    run(
        a,
        c,
        Spec::read(["aid", "show"]).then([&id]).view(View::Item),
    )
    .await
}

async fn aid_match<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    Query(q): Query<AidQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(10).min(100);
    run(
        a,
        c,
        Spec::read(["aid", "match"])
            .flag("limit", limit)
            .then([&id]),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AidAction {
    #[serde(default)]
    note: Option<String>,
    #[serde(default)]
    contact: Option<String>,
    #[serde(default)]
    quantity: Option<u32>,
    #[serde(default)]
    pledge: Option<String>,
    #[serde(flatten)]
    item: Option<ForwardItem>,
}

#[derive(Deserialize, Default)]
struct ForwardItem {
    title: String,
    category: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    until: Option<String>,
    #[serde(default)]
    public: bool,
}

async fn aid_action<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path((id, action)): Path<(String, String)>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: AidAction = if b.is_empty() {
        AidAction::default()
    } else {
        parse!(h, b)
    };
    let spec = match action.as_str() {
        "pledge" => Spec::write(["aid", "pledge"])
            .flag("note", body.note.unwrap_or_default())
            .flag("contact", body.contact.unwrap_or_default())
            .flag_opt("quantity", body.quantity)
            .then([&id]),
        "fulfil" => Spec::write(["aid", "fulfil"])
            .flag_opt("pledge", body.pledge)
            .then([&id]),
        "withdraw" => Spec::write(["aid", "withdraw"]).then([&id]),
        "expire" => Spec::write(["aid", "expire"]).then([&id]),
        "forward" => {
            let Some(item) = body.item else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "bad_input",
                    "a forward needs a title and a category",
                );
            };
            let item = ItemBody {
                title: item.title,
                category: item.category,
                description: item.description,
                area: item.area,
                from: item.from,
                until: item.until,
                quantity: body.quantity,
                public: item.public,
            };
            item_flags(Spec::write(["aid", "forward"]), item).then([&id])
        }
        _ => return error(StatusCode::NOT_FOUND, "not_found", "no such API route"),
    };
    run(a, c, spec).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contact {
    contact: String,
}

async fn aid_reply<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Path(id): Path<String>,
    h: HeaderMap,
    b: Bytes,
) -> Response {
    let body: Contact = parse!(h, b);
    run(
        a,
        c,
        Spec::write(["aid", "reply"])
            .flag("contact", &body.contact)
            .then([&id]),
    )
    .await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LimitQuery {
    #[serde(default)]
    limit: Option<usize>,
}

async fn activity<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Query(q): Query<LimitQuery>,
) -> Response {
    let limit = q.limit.unwrap_or(20).min(500);
    run(a, c, Spec::read(["activity"]).flag("limit", limit)).await
}

// ---------------------------------------------------------------------------------------------
// Network and bundles

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncBody {
    peers: Vec<String>,
    #[serde(default)]
    timeout: Option<u64>,
}

async fn sync<B: Backend>(a: State<App<B>>, c: Extension<Ctx>, h: HeaderMap, b: Bytes) -> Response {
    let body: SyncBody = parse!(h, b);
    let mut spec = Spec::write(["sync"]).flag("timeout", body.timeout.unwrap_or(30).min(120));
    for peer in &body.peers {
        spec = spec.flag("peer", peer);
    }
    run(a, c, spec).await
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct LaneQuery {
    #[serde(default)]
    lane: Option<String>,
}

async fn bundle_export<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    Query(q): Query<LaneQuery>,
) -> Response {
    let lane = nonempty(q.lane);
    let spec = Spec::read(["bundle", "export"])
        .flag_opt("lane", lane)
        .arg(Arg::Text("--".into()))
        .arg(Arg::OutputFile);
    run(a, c, spec).await
}

async fn bundle_import<B: Backend>(
    a: State<App<B>>,
    c: Extension<Ctx>,
    body: axum::body::Body,
) -> Response {
    let (bytes, _permit) = match upload(&a.0, &c.0, true, body).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let mut spec = Spec::write(["bundle", "import"])
        .arg(Arg::Text("--".into()))
        .arg(Arg::InputFile);
    spec.input = Some(bytes);
    run(a, c, spec).await
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::{MAX_BUNDLE, UploadError, is_upload, read_body};
    use axum::body::{Body, Bytes};
    use axum::http::Method;
    use futures_util::StreamExt as _;
    use std::time::Duration;

    /// The routes whose bodies the gate leaves to them are exactly the three uploads (a body
    /// over 64 KiB anywhere else is refused by the gate).
    #[test]
    fn only_the_uploads_read_their_own_bodies() {
        for path in ["/api/tally", "/api/bundle", "/api/polls/ab12/verify"] {
            assert!(is_upload(&Method::POST, path), "{path}");
            assert!(!is_upload(&Method::GET, path), "GET {path}");
        }
        for path in [
            "/api/hubs",
            "/api/polls//verify",
            "/api/polls/a/b/verify",
            "/api/polls/ab12/close",
            "/api/bundle/x",
            "/api/tally/",
            "/tally",
        ] {
            assert!(!is_upload(&Method::POST, path), "{path}");
        }
    }

    fn chunks(parts: Vec<Vec<u8>>) -> Body {
        Body::from_stream(futures_util::stream::iter(
            parts
                .into_iter()
                .map(|p| Ok::<_, std::io::Error>(Bytes::from(p))),
        ))
    }

    /// An upload's body with 5 s to come.
    async fn read_whole(body: Body) -> Result<Vec<u8>, UploadError> {
        read_body(
            body,
            MAX_BUNDLE,
            Duration::from_secs(5),
            Duration::from_secs(5),
        )
        .await
    }

    #[tokio::test]
    async fn an_upload_is_read_whole_within_its_size_and_time() {
        let body = chunks(vec![b"ab".to_vec(), b"cd".to_vec()]);
        let got = read_whole(body).await;
        assert_eq!(got, Ok(b"abcd".to_vec()));
        let body = chunks(vec![vec![0; MAX_BUNDLE / 2], vec![0; MAX_BUNDLE / 2 + 1]]);
        let got = read_whole(body).await;
        assert_eq!(got, Err(UploadError::TooLarge));
    }

    #[tokio::test]
    async fn an_upload_that_stalls_or_trickles_is_dropped() {
        // Two bytes, then nothing.
        let stalled = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from("ab"))])
            .chain(futures_util::stream::pending());
        let got = read_body(
            Body::from_stream(stalled),
            MAX_BUNDLE,
            Duration::from_millis(50),
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(got, Err(UploadError::TooSlow));
        // A byte every 20 ms never pauses for 50 ms, but runs out of its 200 ms.
        let trickle = futures_util::stream::unfold((), |()| async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            Some((Ok::<_, std::io::Error>(Bytes::from("x")), ()))
        });
        let got = read_body(
            Body::from_stream(trickle),
            MAX_BUNDLE,
            Duration::from_millis(50),
            Duration::from_millis(200),
        )
        .await;
        assert_eq!(got, Err(UploadError::TooSlow));
    }
}
