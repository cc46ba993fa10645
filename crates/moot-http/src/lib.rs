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
    #[error("serving HTTP: {0}")]
    Serve(std::io::Error),
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

/// Serves the UI and API on `listener` until `stop` resolves.
pub async fn serve<B: Backend>(
    listener: tokio::net::TcpListener,
    backend: Arc<B>,
    options: HttpOptions,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), HttpError> {
    let addr = listener.local_addr().map_err(HttpError::Address)?;
    let app = router(backend, addr, options);
    let listener = listen::Capped::new(listener, listen::MAX_CONNECTIONS, listen::MAX_PER_ADDRESS);
    // `tap_io` does nothing here but give the capped listener axum's `ConnectInfo` of the
    // peer's address (implemented for a tapped listener of any kind).
    let listener = axum::serve::ListenerExt::tap_io(listener, |_| {});
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stop)
    .await
    .map_err(HttpError::Serve)
}

/// The whole application (exposed for tests that drive it without a socket).
pub fn router<B: Backend>(backend: Arc<B>, addr: SocketAddr, options: HttpOptions) -> axum::Router {
    let exposure = if addr.ip().is_loopback() {
        Exposure::Local
    } else {
        Exposure::Lan
    };
    let app = routes::App::new(
        backend,
        guard::Guard::new(exposure, addr.port(), options.hosts, options.token),
    );
    routes::router(app)
}
