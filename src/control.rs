//! The control socket of a running node. While `moot serve` runs it owns the data directory
//! (its lock, store and keys): every other `moot` command on the same directory finds the
//! socket (`DIR/moot.sock`, mode 0600 in the 0700 directory, and only the directory's owner is
//! answered), sends its arguments over it, and the running node runs the command — the same
//! code, on the node it already has open — and sends back what the command printed and its
//! exit code. So a command behaves exactly as it would without the node running, and what it
//! writes is pushed to connected peers at once.
//!
//! A passphrase file is read by the client and its passphrase passed over the socket (never on
//! a command line); relative paths are resolved against the client's working directory;
//! `MOOT_AS` and `MOOT_HUB` come from the client's environment, not the node's.
//!
//! Frames: a 4-byte big-endian length, then a postcard-encoded [`Request`] (at most
//! [`MAX_REQUEST`] bytes) or [`Response`] (at most [`MAX_RESPONSE`]).

use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command, Global};

/// Largest request: arguments, a working directory and a passphrase.
const MAX_REQUEST: usize = 1 << 20;
/// Largest response: what one command printed.
const MAX_RESPONSE: usize = 256 << 20;
/// The version of this exchange; a client and node of different versions refuse each other.
const VERSION: u32 = 2;

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    version: u32,
    /// The arguments after the program name, as bytes.
    args: Vec<Vec<u8>>,
    /// The client's working directory, as bytes.
    cwd: Vec<u8>,
    /// `MOOT_AS` and `MOOT_HUB` as the client's environment has them.
    as_member: Option<String>,
    hub: Option<String>,
    /// The passphrase from the client's `--passphrase-file`, read by the client.
    passphrase: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Response {
    version: u32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    code: u8,
    /// The command saved a change before it printed (its output is its result).
    saved: bool,
}

/// A node's answer: its version first, as a node of another version answers in another layout
/// (which must say so, not be "damaged").
fn decode_response(bytes: &[u8]) -> anyhow::Result<Response> {
    let (version, _) = postcard::take_from_bytes::<u32>(bytes).context("a damaged response")?;
    anyhow::ensure!(
        version == VERSION,
        "the running node speaks control version {version} (this moot: {VERSION}): use the \
         same moot binary as the node",
    );
    postcard::from_bytes(bytes).context("a damaged response")
}

/// The socket's path in a data directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join(moot_node::dir::SOCKET_FILE)
}

fn write_frame(stream: &mut impl std::io::Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a control frame over 4 GiB"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(bytes)?;
    stream.flush()
}

fn read_frame(stream: &mut impl std::io::Read, max: usize) -> anyhow::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    anyhow::ensure!(len <= max, "a control frame of {len} bytes (at most {max})");
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

// ---------------------------------------------------------------------------------------------
// Client

/// The user id of the process serving `stream`: its credentials on Linux (`SO_PEERCRED`);
/// elsewhere the owner of the socket file (which only the process that bound it can own).
#[cfg(any(target_os = "linux", target_os = "android"))]
fn server_uid(stream: &std::os::unix::net::UnixStream, _: &Path) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn server_uid(_: &std::os::unix::net::UnixStream, path: &Path) -> std::io::Result<u32> {
    use std::os::unix::fs::MetadataExt as _;
    Ok(std::fs::metadata(path)?.uid())
}

/// If a node is running on the command's data directory, runs the command there and returns
/// its exit code; `None` if no node answers on the socket (the command then runs here).
pub fn forward(global: &Global, data_dir: &Path) -> anyhow::Result<Option<u8>> {
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(crate::bad_input(anyhow::anyhow!(
            "the data directory {} is a file, not a directory: give --data a directory (a new \
             one is made for you)",
            moot_text::escape(&data_dir.display().to_string())
        )));
    }
    let path = socket_path(data_dir);
    let mut stream = match std::os::unix::net::UnixStream::connect(&path) {
        Ok(stream) => stream,
        // No node running: no socket, or one left by a node that was killed.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
            ) =>
        {
            return Ok(None);
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!(
                "connecting to the running node's socket {}",
                moot_text::escape(&path.display().to_string())
            )));
        }
    };
    // The passphrase goes only to a node run by this user (or root): not to a socket another
    // user put in a directory they can write to.
    let server = server_uid(&stream, &path).with_context(|| {
        format!(
            "reading who runs the node behind {}",
            moot_text::escape(&path.display().to_string())
        )
    })?;
    anyhow::ensure!(
        server == rustix::process::geteuid().as_raw() || server == 0,
        "the control socket {} belongs to a process of another user (uid {server}): not using \
         it; remove it, or use a data directory of your own",
        moot_text::escape(&path.display().to_string()),
    );
    let passphrase = crate::node_cmd::passphrase(global)?;
    let cwd = std::env::current_dir().context("reading the working directory")?;
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let request = Request {
        version: VERSION,
        args: std::env::args_os()
            .skip(1)
            .map(|a| a.as_bytes().to_vec())
            .collect(),
        cwd: cwd.as_os_str().as_bytes().to_vec(),
        as_member: env("MOOT_AS"),
        hub: env("MOOT_HUB"),
        passphrase,
    };
    let bytes = postcard::to_allocvec(&request).context("encoding the request")?;
    anyhow::ensure!(
        bytes.len() <= MAX_REQUEST,
        "the command is too long to pass to the running node"
    );
    write_frame(&mut stream, &bytes)
        .context("sending the command to the running node (moot serve)")?;
    // Once the command is sent the node may run it: an answer that does not come (the node
    // stopped or was killed meanwhile) leaves unknown whether it took effect.
    let answer = read_frame(&mut stream, MAX_RESPONSE).context(
        "the running node (moot serve) did not answer: it may have stopped while running \
             the command, so whether the command took effect is unknown; check (e.g. `moot \
             activity`) before running it again",
    )?;
    let response = decode_response(&answer).context("reading the running node's answer")?;
    let printed = {
        let mut stdout = std::io::stdout().lock();
        stdout
            .write_all(&response.stdout)
            .and_then(|()| stdout.flush())
    };
    let _ = std::io::stderr().lock().write_all(&response.stderr);
    match printed {
        // A closed pipe is not an error here either.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            let error = anyhow::Error::new(e).context("writing to standard output");
            Err(if response.saved {
                error.context("the change was saved, but printing the result failed")
            } else {
                error
            })
        }
        _ => Ok(Some(response.code)),
    }
}

// ---------------------------------------------------------------------------------------------
// Server

/// What a command run for a client of the socket uses instead of opening the data directory.
#[derive(Clone)]
pub struct Served {
    pub node: Arc<moot_node::Node>,
    pub passphrase: Option<String>,
    pub net: Arc<crate::net_cmd::NetState>,
}

thread_local! {
    static SERVED: std::cell::RefCell<Option<Served>> = const { std::cell::RefCell::new(None) };
    /// A passphrase a client passed (for a command not run on a served node).
    static PASSED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The passphrase a client passed for the command this thread runs, if it passed one.
pub fn passed_passphrase() -> Option<String> {
    PASSED.with(|p| p.borrow().clone())
}

/// The running node, when this thread runs a command for a client of its socket.
pub fn served() -> Option<Served> {
    SERVED.with(|s| s.borrow().clone())
}

/// Binds the socket in `dir` (replacing one a killed node left: this process holds the data
/// directory's lock, so no other node is running on it), readable and writable by its owner
/// only.
pub fn bind(dir: &Path) -> anyhow::Result<tokio::net::UnixListener> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = socket_path(dir);
    let shown = moot_text::escape(&path.display().to_string()).into_owned();
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_file() || meta.file_type().is_dir() => {
            anyhow::bail!("{shown} exists and is not a socket: move it away")
        }
        Ok(_) => std::fs::remove_file(&path)
            .with_context(|| format!("removing the old control socket {shown}"))?,
        Err(_) => {}
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .with_context(|| format!("making the control socket {shown}"))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .with_context(|| format!("making the control socket {shown} private"))?;
    Ok(listener)
}

/// Answers clients of the socket, one command at a time (as the data directory's lock let one
/// command in at a time), until the task is dropped. After each command, whatever it stored is
/// taken in by the network side and pushed to peers.
pub async fn serve(
    listener: tokio::net::UnixListener,
    served: Served,
    owner: u32,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors, say: wait rather than spin.
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        };
        // Only the data directory's owner may drive the node (the socket's mode says so too;
        // this holds if the mode is loosened).
        match stream.peer_cred() {
            Ok(cred) if cred.uid() == owner => {}
            _ => continue,
        }
        let served = served.clone();
        let lock = Arc::clone(&one_at_a_time);
        tokio::spawn(async move {
            if let Err(e) = answer(stream, served, lock).await {
                // A client that went away before its answer (`moot … | head -c1`) is no fault.
                let gone = e.chain().any(|cause| {
                    cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                        matches!(
                            io.kind(),
                            std::io::ErrorKind::BrokenPipe
                                | std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::ConnectionReset
                        )
                    })
                });
                let error = moot_text::escape(&format!("{e:#}")).into_owned();
                if gone {
                    tracing::debug!(%error, "a control client went away");
                } else {
                    tracing::warn!(%error, "a control client failed");
                }
            }
        });
    }
}

/// A client has this long to send its request; the turn is taken only once it has.
const REQUEST_TIME: std::time::Duration = std::time::Duration::from_secs(30);

async fn answer(
    stream: tokio::net::UnixStream,
    served: Served,
    one_at_a_time: Arc<tokio::sync::Mutex<()>>,
) -> anyhow::Result<()> {
    let mut stream = stream.into_std()?;
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(REQUEST_TIME))?;
    // Read before taking the turn: a client that connects and sends nothing holds up no one.
    let (mut stream, bytes) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let bytes = read_frame(&mut stream, MAX_REQUEST)
            .context("reading the request (a client that sent nothing in 30 s is dropped)")?;
        stream.set_read_timeout(None)?;
        Ok((stream, bytes))
    })
    .await??;
    // A command that only waits on the network runs without the turn: a `moot sync` waiting
    // out its timeout must not hold up every other command, a vote from the web UI included.
    let waits = postcard::from_bytes::<Request>(&bytes)
        .ok()
        .is_some_and(|request| waits_on_network(&request));
    let _one = match waits {
        true => None,
        false => Some(one_at_a_time.lock().await),
    };
    let net = Arc::clone(&served.net);
    let response = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let request: Request = postcard::from_bytes(&bytes).context("a damaged request")?;
        let response = if request.version != VERSION {
            Response {
                version: VERSION,
                stdout: Vec::new(),
                stderr: format!(
                    "moot: error: this moot speaks control version {} and the running node \
                     {VERSION}: use the same moot binary as the node\n",
                    request.version
                )
                .into_bytes(),
                code: 1,
                saved: false,
            }
        } else {
            run_request(request, served)
        };
        let bytes = postcard::to_allocvec(&response)?;
        write_frame(&mut stream, &bytes)?;
        Ok(())
    })
    .await?;
    // Whatever the command stored reaches the network side (and peers) now, and the pages of
    // the web UI fetch what they show again.
    let refreshed = net.running.local_wrote().await;
    let _ = net.changes.send(moot_http::Change::Ops);
    response?;
    refreshed.map_err(|e| anyhow::anyhow!("taking in the command's ops: {e}"))
}

/// True for a command that reads nothing and writes nothing on this node but waits on its
/// network: `moot sync` (it dials, waits for quiet, and reports) and `moot peers`.
fn waits_on_network(request: &Request) -> bool {
    // As `run_captured` parses them: the program's name first.
    let args: Vec<std::ffi::OsString> = std::iter::once(std::ffi::OsString::from("moot"))
        .chain(
            request
                .args
                .iter()
                .map(|a| std::ffi::OsString::from_vec(a.clone())),
        )
        .collect();
    matches!(
        crate::parse(args, false).map(|cli| cli.command),
        Ok(Command::Sync { .. } | Command::Peers)
    )
}

/// Runs one client's command on this thread, with its output captured.
fn run_request(request: Request, served: Served) -> Response {
    let args: Vec<std::ffi::OsString> = request
        .args
        .into_iter()
        .map(std::ffi::OsString::from_vec)
        .collect();
    let cwd = PathBuf::from(std::ffi::OsString::from_vec(request.cwd));
    let (code, captured) = run_captured(
        args,
        &cwd,
        Some(served),
        request.passphrase,
        request.as_member,
        request.hub,
    );
    Response {
        version: VERSION,
        stdout: captured.stdout,
        stderr: captured.stderr,
        code,
        saved: captured.saved,
    }
}

/// Runs `moot ARGS` on this thread for a client (of the socket, or of the web UI), with its
/// output captured: on the running node when `served`, else on the data directory as a
/// command line would. `passphrase` stands for a `--passphrase-file`'s; `as_member` and `hub`
/// for `MOOT_AS` and `MOOT_HUB`; relative paths are `cwd`'s.
pub fn run_captured(
    args: Vec<std::ffi::OsString>,
    cwd: &Path,
    served: Option<Served>,
    passphrase: Option<String>,
    as_member: Option<String>,
    hub: Option<String>,
) -> (u8, crate::out::Captured) {
    let args: Vec<std::ffi::OsString> = std::iter::once(std::ffi::OsString::from("moot"))
        .chain(args)
        .collect();
    let served = served.map(|served| Served {
        passphrase: passphrase.clone(),
        ..served
    });
    SERVED.with(|s| *s.borrow_mut() = served);
    PASSED.with(|p| *p.borrow_mut() = passphrase);
    let result = crate::out::capture(|| {
        crate::run_args(args, false, |cli| {
            absolutize(cli, cwd);
            // The client's environment, not the node's (clap read none: see `run_args`).
            if cli.global.as_member.is_none() {
                cli.global.as_member = as_member;
            }
            if cli.global.hub.is_none() {
                cli.global.hub = hub;
            }
        })
    });
    SERVED.with(|s| *s.borrow_mut() = None);
    PASSED.with(|p| *p.borrow_mut() = None);
    result
}

/// Relative paths in a command made absolute against the client's working directory.
fn absolutize(cli: &mut Cli, cwd: &Path) {
    use crate::cli::{BundleCommand, PollCommand, ProposalCommand};
    let fix = |path: &mut PathBuf| {
        if path.is_relative() {
            *path = cwd.join(&*path);
        }
    };
    if let Some(data) = cli.global.data.as_mut() {
        fix(data);
    }
    if let Some(file) = cli.global.passphrase_file.as_mut() {
        fix(file);
    }
    match &mut cli.command {
        Command::Tally(args) => fix(&mut args.file),
        Command::Poll {
            command: PollCommand::Verify {
                bundle: Some(file), ..
            },
        } => fix(file),
        Command::Proposal {
            command:
                ProposalCommand::Create {
                    body_file: Some(file),
                    ..
                }
                | ProposalCommand::Edit {
                    body_file: Some(file),
                    ..
                }
                | ProposalCommand::Export { file, .. },
        } => fix(file),
        Command::Bundle { command } => match command {
            BundleCommand::Export { file, .. } | BundleCommand::Import { file } => fix(file),
        },
        _ => {}
    }
}

/// A command run here that only a node not yet running may run.
pub fn refuse_while_served(what: &str) -> anyhow::Result<()> {
    if served().is_some() {
        anyhow::bail!(
            "{what}: a node is running on this data directory (moot serve); stop it first"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// A node of the version before (no `saved`) is named as such, not taken for damage.
    #[test]
    fn an_answer_of_another_version_says_so() {
        #[derive(Serialize)]
        struct Version1 {
            version: u32,
            stdout: Vec<u8>,
            stderr: Vec<u8>,
            code: u8,
        }
        let old = postcard::to_allocvec(&Version1 {
            version: 1,
            stdout: b"{}".to_vec(),
            stderr: Vec::new(),
            code: 0,
        })
        .unwrap();
        let error = format!("{:#}", decode_response(&old).unwrap_err());
        assert!(error.contains("control version 1"), "{error}");
        let now = Response {
            version: VERSION,
            stdout: b"{}".to_vec(),
            stderr: Vec::new(),
            code: 3,
            saved: true,
        };
        let back = decode_response(&postcard::to_allocvec(&now).unwrap()).unwrap();
        assert_eq!(
            (back.code, back.saved, back.stdout),
            (3, true, b"{}".to_vec())
        );
        assert!(decode_response(&[]).is_err());
    }
}
