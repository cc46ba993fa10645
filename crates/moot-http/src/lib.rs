//! The node's web UI and HTTP API: the only crate that knows HTTP.
//!
//! The API is the command line over HTTP. Each route under `/api` names one `moot` command
//! (docs/API.md has the table) and answers with exactly that command's `--json` output; its
//! error object and kind become the status code (`bad_input` 400, `refused` 403, `not_found`
//! 404, anything else 500). The [`Backend`] — the binary, holding the open node — runs the
//! command as the CLI would, so the API can do everything the CLI can, with the same JSON, the
//! same rules and the same errors, and nothing here decides anything about the hub.
//!
//! What this crate does decide is who may ask:
//! - Every browser gets a session (a cookie: `HttpOnly`, `SameSite=Strict`) with a CSRF token;
//!   every write must carry that token in the `X-Moot-Csrf` header, and a JSON body.
//! - Listening on loopback (the default), a page opened with the node's web token (the link
//!   `moot serve` prints; the token is in the data directory, readable by its owner only) acts
//!   as the node's own key, as the CLI does for that user — another user of the machine, who
//!   can reach 127.0.0.1 too, cannot. Signing in picks another key held by this node (members
//!   voting in turn on the branch laptop): a key without a passphrase only on such a page.
//! - Listening on another address (`--http 0.0.0.0:PORT`, the hall's Wi-Fi), every write needs a
//!   signed-in member whose key has a passphrase; a session that has not signed in, or a guest,
//!   sees public spaces only (public assemblies, their proposals and polls, public aid items).
//! - `Host` must be this node (an IP address, `localhost`, a `.local` name, or one given), so
//!   a page elsewhere cannot reach the node by DNS rebinding; a strict Content-Security-Policy
//!   and the other usual headers on every response; bodies of at most 64 KiB (a bundle: 64
//!   MiB); failed sign-ins limited per address.

mod assets;
mod guard;
pub mod listen;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

pub use guard::Exposure;

/// One argument of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    /// Passed as is.
    Text(String),
    /// The path of a private temporary file holding [`Call::input`] (a bundle to import).
    InputFile,
    /// The path of a private temporary file the command writes, whose bytes come back in
    /// [`Outcome::file`] (a bundle exported).
    OutputFile,
}

/// A command for the backend to run: `moot ARGS… --json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub args: Vec<Arg>,
    /// `--as`: the member key acted as (`None`: the node's own).
    pub as_member: Option<String>,
    /// The passphrase of the key acted as, when it has one.
    pub passphrase: Option<String>,
    /// The bytes behind [`Arg::InputFile`].
    pub input: Option<Vec<u8>>,
    /// Whether the command writes (so peers and pages hear of it afterwards).
    pub write: bool,
}

/// What a command did: its exit code and output, as the CLI has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    pub code: u8,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The bytes the command wrote to [`Arg::OutputFile`].
    pub file: Option<Vec<u8>>,
}

/// Something changed on the node: ops arrived from a peer or a command wrote some, or peers
/// came or went. Pages listening on `/api/events` fetch what they show again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    Ops,
    Peers,
    /// The node itself changed: a hub was created or joined, the network started.
    Node,
}

/// The node, as the API sees it: runs commands, and says when something changed.
pub trait Backend: Send + Sync + 'static {
    /// Runs one command with `--json`, as `moot` would on this data directory.
    fn run(&self, call: Call) -> impl std::future::Future<Output = Outcome> + Send;
    /// Changes from now on.
    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change>;
    /// The hub ticket of the running node (`None` before the network runs).
    fn ticket(&self) -> Option<String>;
}

/// Why the server stopped.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("reading the listening address: {0}")]
    Address(std::io::Error),
}

/// Where the server listens and who may ask it.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Host names (without port) accepted in `Host` besides IP addresses, `localhost` and
    /// `*.local`.
    pub hosts: Vec<String>,
    /// The node's web token: a page opened with `?token=TOKEN` (the link `moot serve` prints)
    /// is the node owner's. `None`: every loopback page is (tests of the routes alone).
    pub token: Option<String>,
}

/// How long a connection may take to send a request's headers, counted from when it opened or
/// from the end of the response before (an idle keep-alive connection): then it is closed.
/// A request's body (bar an upload's, which has limits of its own) must then arrive within as
/// long again, or it is answered 408.
/// Without it, a device could hold its connections open for ever with nothing to say, or
/// trickle a header a byte at a time, and the hall's devices together fill
/// [`listen::MAX_CONNECTIONS`]. Browsers open a new connection when they need one.
pub const HEADER_READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Serves the UI and API on `listener` until `stop` resolves.
pub async fn serve<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    options: HttpOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    serve_with_header_timeout(listener, backend, options, HEADER_READ_TIMEOUT, stop).await
}

/// [`serve`] with another [`HEADER_READ_TIMEOUT`] (tests use a short one). At `stop`, no
/// connection is taken any more; the requests under way are answered and the idle
/// connections closed, and this returns when every connection has closed.
pub async fn serve_with_header_timeout<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    options: HttpOptions,
    header_timeout: std::time::Duration,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    use axum::serve::Listener as _;
    use tower::ServiceExt as _;

    let addr = listener.local_addr().map_err(HttpError::Address)?;
    let app = router_with(backend, addr, options, header_timeout);
    let mut listener =
        listen::Capped::new(listener, listen::MAX_CONNECTIONS, listen::MAX_PER_ADDRESS);
    // Every connection task holds a receiver of `closing`: the sender's `closed` is when the
    // last has ended.
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let mut stop = std::pin::pin!(stop);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut stop => break,
        };
        // The routes read the peer's address as axum's `ConnectInfo`.
        let service =
            app.clone()
                .map_request(move |request: axum::http::Request<hyper::body::Incoming>| {
                    let mut request = request.map(axum::body::Body::new);
                    request
                        .extensions_mut()
                        .insert(axum::extract::ConnectInfo(peer));
                    request
                });
        let service = hyper_util::service::TowerToHyperService::new(service);
        let mut closing = closing_rx.clone();
        tokio::spawn(async move {
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(header_timeout);
            let connection = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            let mut stopping = false;
            loop {
                tokio::select! {
                    result = connection.as_mut() => {
                        if let Err(error) = result {
                            tracing::debug!(%peer, %error, "web connection ended");
                        }
                        break;
                    }
                    // Stopping, or the server's task is gone: answer what is under way, then
                    // close.
                    _ = closing.changed(), if !stopping => {
                        stopping = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        });
    }
    drop(closing_rx);
    let _ = closing.send(true);
    closing.closed().await;
    Ok(())
}

/// The whole application (exposed for tests that drive it without a socket).
pub fn router<B: Backend>(backend: Arc<B>, addr: SocketAddr, options: HttpOptions) -> axum::Router {
    router_with(backend, addr, options, HEADER_READ_TIMEOUT)
}

/// [`router`], a request's body (bar an upload's) to arrive within `body_time` of its header.
fn router_with<B: Backend>(
    backend: Arc<B>,
    addr: SocketAddr,
    options: HttpOptions,
    body_time: std::time::Duration,
) -> axum::Router {
    let exposure = if addr.ip().is_loopback() {
        Exposure::Local
    } else {
        Exposure::Lan
    };
    let app = routes::App::new(
        backend,
        guard::Guard::new(exposure, addr.port(), options.hosts, options.token),
        body_time,
    );
    routes::router(app)
}
