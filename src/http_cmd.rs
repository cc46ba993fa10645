//! The web UI's backend: `moot-http` asks for commands, and they run here exactly as the
//! control socket runs them (`control::run_captured`): on the running node once its network
//! runs, on the data directory before (the first run: making keys, founding or joining a hub).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use anyhow::Context as _;
use moot_http::{Arg, Backend, Call, Change, Outcome};

use crate::control::Served;

/// The address `moot serve` listens on for the web UI when `--http` is not given.
pub const DEFAULT_HTTP: &str = "127.0.0.1:7878";

/// Runs the web UI's commands.
pub struct HttpBackend {
    /// The data directory, absolute.
    dir: PathBuf,
    /// `--hub` of `moot serve`, for every command.
    hub: Option<String>,
    /// The running node, once its network runs.
    served: RwLock<Option<Served>>,
    /// One command at a time, shared with the control socket.
    turn: Arc<tokio::sync::Mutex<()>>,
    changes: tokio::sync::broadcast::Sender<Change>,
    /// Woken when a command may have made the node ready to serve (keys, a hub).
    pub node_changed: tokio::sync::Notify,
}

impl HttpBackend {
    pub fn new(
        dir: PathBuf,
        hub: Option<String>,
        turn: Arc<tokio::sync::Mutex<()>>,
        changes: tokio::sync::broadcast::Sender<Change>,
    ) -> Self {
        HttpBackend {
            dir,
            hub,
            served: RwLock::new(None),
            turn,
            changes,
            node_changed: tokio::sync::Notify::new(),
        }
    }

    /// The network runs: commands run on the node from now on.
    pub fn set_served(&self, served: Option<Served>) {
        if let Ok(mut s) = self.served.write() {
            *s = served;
        }
        let _ = self.changes.send(Change::Node);
    }

    fn served(&self) -> Option<Served> {
        self.served.read().ok().and_then(|s| s.clone())
    }
}

/// The failure of a command that could not even be started, as the CLI reports one.
fn failed(message: &str) -> Outcome {
    let error = serde_json::json!({"error": {"kind": "failed", "message": message}});
    Outcome {
        code: 1,
        stdout: Vec::new(),
        stderr: format!("{error}\n").into_bytes(),
        file: None,
    }
}

/// Runs one call on this thread: files in a private temporary directory, output captured.
fn run_call(
    dir: &std::path::Path,
    hub: Option<String>,
    served: Option<Served>,
    call: Call,
) -> Outcome {
    let scratch = match tempfile::Builder::new().prefix("moot-http-").tempdir() {
        Ok(scratch) => scratch,
        Err(e) => return failed(&format!("making a temporary directory: {e}")),
    };
    let input = scratch.path().join("input");
    let output = scratch.path().join("output");
    if let Some(bytes) = &call.input
        && let Err(e) = std::fs::write(&input, bytes)
    {
        return failed(&format!("writing the upload to a temporary file: {e}"));
    }
    let mut args: Vec<std::ffi::OsString> = vec!["--data".into(), dir.as_os_str().to_owned()];
    for arg in call.args {
        args.push(match arg {
            Arg::Text(text) => text.into(),
            Arg::InputFile => input.as_os_str().to_owned(),
            Arg::OutputFile => output.as_os_str().to_owned(),
        });
    }
    let (code, captured) = crate::control::run_captured(
        args,
        scratch.path(),
        served,
        call.passphrase,
        call.as_member,
        hub,
        Vec::new(),
    );
    let file = if code == 0 {
        std::fs::read(&output).ok()
    } else {
        None
    };
    Outcome {
        code,
        stdout: captured.stdout,
        stderr: captured.stderr,
        file,
    }
}

impl Backend for HttpBackend {
    async fn run(&self, call: Call) -> Outcome {
        // Writes take turns with each other and with the control socket's commands. Reads on
        // the running node do not wait for them (a page is not held up by a sync of up to a
        // minute, or by a long import): the node's own locks keep them consistent (the
        // store's snapshots, the read cache). Before the network runs, every command opens the
        // data directory, so all of them take turns.
        // At most as long as a command waits for the data directory's lock (one stuck on a
        // pipe holds up a page no longer).
        let _turn = if call.write || self.served().is_none() {
            match tokio::time::timeout(moot_node::LOCK_WAIT, self.turn.lock()).await {
                Ok(turn) => Some(turn),
                Err(_) => {
                    return failed(
                        &moot_node::NodeError::Busy {
                            dir: self.dir.clone(),
                            waited: moot_node::LOCK_WAIT,
                        }
                        .to_string(),
                    );
                }
            }
        } else {
            None
        };
        let served = self.served();
        let dir = self.dir.clone();
        let hub = self.hub.clone();
        let write = call.write;
        let net = served.as_ref().map(|s| Arc::clone(&s.net));
        let outcome =
            match tokio::task::spawn_blocking(move || run_call(&dir, hub, served, call)).await {
                Ok(outcome) => outcome,
                Err(_) => failed("the command stopped unexpectedly"),
            };
        if write {
            match net {
                Some(net) => {
                    if let Err(e) = net.running.local_wrote().await {
                        tracing::warn!(error = %e, "taking in a web command's ops");
                    }
                    let _ = self.changes.send(Change::Ops);
                }
                None => {
                    let _ = self.changes.send(Change::Node);
                    self.node_changed.notify_one();
                }
            }
        }
        outcome
    }

    fn changes(&self) -> tokio::sync::broadcast::Receiver<Change> {
        self.changes.subscribe()
    }

    /// A ticket with the addresses the node listens on now (they change as interfaces come and
    /// go).
    fn ticket(&self) -> Option<String> {
        self.served().and_then(|s| s.net.ticket().ok())
    }
}

/// Binds the web UI's address: `--http ADDR` as given, or the default — and, if the default is
/// taken (a second node on this machine), any free port on loopback.
pub async fn bind(addr: Option<&str>) -> anyhow::Result<tokio::net::TcpListener> {
    let explicit = addr.is_some();
    let text = addr.unwrap_or(DEFAULT_HTTP);
    let parsed: SocketAddr = text.parse().map_err(|_| {
        crate::bad_input(anyhow::anyhow!(
            "--http {}: not an IP address and port (e.g. 127.0.0.1:7878 or 0.0.0.0:7878)",
            moot_text::escape(text)
        ))
    })?;
    match tokio::net::TcpListener::bind(parsed).await {
        Ok(listener) => Ok(listener),
        Err(e) if !explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
            let any = SocketAddr::new(parsed.ip(), 0);
            tokio::net::TcpListener::bind(any)
                .await
                .with_context(|| format!("listening for the web UI on {any}"))
        }
        Err(e) => {
            Err(anyhow::Error::new(e).context(format!("listening for the web UI on {parsed}")))
        }
    }
}

pub use moot_node::dir::WEB_TOKEN_FILE as TOKEN_FILE;

/// The node's web token: read from the data directory, or made (0600, written whole or not at
/// all) on the first serve.
pub fn web_token(dir: &std::path::Path) -> anyhow::Result<String> {
    let path = dir.join(TOKEN_FILE);
    let shown = moot_text::escape(&path.display().to_string()).into_owned();
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let token = text.trim();
            anyhow::ensure!(
                token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
                "{shown} is damaged: delete it and start `moot serve` again (a new one is made)"
            );
            Ok(token.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut bytes = [0u8; 32];
            getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no random source: {e}"))?;
            let token = hex::encode(bytes);
            moot_node::dir::write_private(&path, token.as_bytes())
                .with_context(|| format!("making {shown}"))?;
            Ok(token)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!("reading {shown}"))),
    }
}

/// The URL to open for a listening address.
pub fn url(addr: SocketAddr) -> String {
    if addr.ip().is_unspecified() {
        format!("http://127.0.0.1:{}/", addr.port())
    } else {
        format!("http://{addr}/")
    }
}
