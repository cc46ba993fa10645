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
//! `MOOT_AS` and `MOOT_HUB` come from the client's environment, not the node's. A path that
//! names one of the client's own descriptors (`/dev/stdout`, `/dev/stdin`, `/dev/fd/3`,
//! `/dev/tty`, `/proc/self/…`, or a link to one) would name the node's if the node opened it:
//! the client opens it and passes the open file with the request (`SCM_RIGHTS`), and the node
//! runs the command on that file (`moot bundle export /dev/stdout | ssh …` writes to the
//! client's pipe, as without a node running). What a command reads from such a file that is
//! not a regular file (a pipe, a terminal) the client copies first, so that the node never
//! waits on it while it holds its turn. A command waits for its turn at most as long as one
//! run with no node waits for the data directory's lock.
//!
//! Frames: a 4-byte big-endian length, then a postcard-encoded [`Request`] (at most
//! [`MAX_REQUEST`] bytes) or [`Response`] (at most [`MAX_RESPONSE`]). The files a request
//! passes travel with its length's first byte.

use std::io::Write as _;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::cli::{Cli, Command};

/// Largest request: arguments, a working directory and a passphrase.
const MAX_REQUEST: usize = 1 << 20;
/// Largest response: what one command printed.
const MAX_RESPONSE: usize = 256 << 20;
/// The version of this exchange; a client and node of different versions refuse each other.
const VERSION: u32 = 3;
/// At most this many files are passed with one request (a command has one path argument).
const MAX_PASSED: usize = 4;

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
    /// The path arguments (as given) that name the client's own descriptors, in the order of
    /// the files passed with the request.
    passed: Vec<Vec<u8>>,
    /// Of those, the one that is the client's standard output (the same file), if one is.
    stdout: Option<Vec<u8>>,
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
    read_body(stream, len, max)
}

fn read_body(stream: &mut impl std::io::Read, len: [u8; 4], max: usize) -> anyhow::Result<Vec<u8>> {
    let len = u32::from_be_bytes(len) as usize;
    anyhow::ensure!(len <= max, "a control frame of {len} bytes (at most {max})");
    let mut bytes = vec![0u8; len];
    stream.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// A frame, with `files` passed along with its first byte.
fn write_frame_passing(
    stream: &mut std::os::unix::net::UnixStream,
    bytes: &[u8],
    files: &[std::fs::File],
) -> std::io::Result<()> {
    if files.is_empty() {
        return write_frame(stream, bytes);
    }
    if files.len() > MAX_PASSED {
        return Err(std::io::Error::other(format!(
            "more than {MAX_PASSED} files to pass to the running node"
        )));
    }
    let len = u32::try_from(bytes.len())
        .map_err(|_| std::io::Error::other("a control frame over 4 GiB"))?
        .to_be_bytes();
    let fds: Vec<BorrowedFd<'_>> = files.iter().map(|f| f.as_fd()).collect();
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED))];
    let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
    if !control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)) {
        return Err(std::io::Error::other(
            "no room to pass the files to the running node",
        ));
    }
    let sent = loop {
        match rustix::net::sendmsg(
            &*stream,
            &[std::io::IoSlice::new(&len)],
            &mut control,
            rustix::net::SendFlags::empty(),
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => break other?,
        }
    };
    let rest = len.get(sent..).unwrap_or_default();
    stream.write_all(rest)?;
    stream.write_all(bytes)?;
    stream.flush()
}

/// Passed files are received closed on exec (not left open in a process a command starts).
#[cfg(any(target_os = "linux", target_os = "android"))]
const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::CMSG_CLOEXEC;
#[cfg(not(any(target_os = "linux", target_os = "android")))]
const RECV_FLAGS: rustix::net::RecvFlags = rustix::net::RecvFlags::empty();

/// A request frame and the files passed with it (at most [`MAX_PASSED`]).
fn read_frame_passed(
    stream: &mut std::os::unix::net::UnixStream,
    max: usize,
) -> anyhow::Result<(Vec<u8>, Vec<OwnedFd>)> {
    let mut len = [0u8; 4];
    let mut got = 0;
    let mut files = Vec::new();
    while got < len.len() {
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED))];
        let mut control = rustix::net::RecvAncillaryBuffer::new(&mut space);
        let received = match rustix::net::recvmsg(
            &*stream,
            &mut [std::io::IoSliceMut::new(
                len.get_mut(got..).unwrap_or_default(),
            )],
            &mut control,
            RECV_FLAGS,
        ) {
            Err(rustix::io::Errno::INTR) => continue,
            other => other.map_err(std::io::Error::from)?,
        };
        for message in control.drain() {
            if let rustix::net::RecvAncillaryMessage::ScmRights(passed) = message {
                for file in passed {
                    // Where the flag cannot ask for it, closed on exec all the same.
                    #[cfg(not(any(target_os = "linux", target_os = "android")))]
                    rustix::io::fcntl_setfd(&file, rustix::io::FdFlags::CLOEXEC)?;
                    files.push(file);
                }
            }
        }
        anyhow::ensure!(
            !received.flags.contains(rustix::net::ReturnFlags::CTRUNC) && files.len() <= MAX_PASSED,
            "a request passing more than {MAX_PASSED} files (or this node is out of file \
             descriptors)"
        );
        if received.bytes == 0 {
            return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof).into());
        }
        got += received.bytes;
    }
    Ok((read_body(stream, len, max)?, files))
}

// ---------------------------------------------------------------------------------------------
// Client

/// A connection to the node running behind the socket at `path`; `None` if none runs there.
/// Refused if another user's process serves it (the passphrase goes only to a node run by
/// this user, or root: not to a socket another user put in a directory they can write to).
fn connect(path: &Path) -> anyhow::Result<Option<std::os::unix::net::UnixStream>> {
    let shown = || moot_text::escape(&path.display().to_string()).into_owned();
    let stream = match std::os::unix::net::UnixStream::connect(path) {
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
                shown()
            )));
        }
    };
    let server = server_uid(&stream, path)
        .with_context(|| format!("reading who runs the node behind {}", shown()))?;
    anyhow::ensure!(
        server == rustix::process::geteuid().as_raw() || server == 0,
        "the control socket {} belongs to a process of another user (uid {server}): not using \
         it; remove it, or use a data directory of your own",
        shown(),
    );
    Ok(Some(stream))
}

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
pub fn forward(cli: &mut Cli, data_dir: &Path) -> anyhow::Result<Option<u8>> {
    let global = &cli.global;
    if data_dir.exists() && !data_dir.is_dir() {
        return Err(crate::bad_input(anyhow::anyhow!(
            "the data directory {} is a file, not a directory: give --data a directory (a new \
             one is made for you)",
            moot_text::escape(&data_dir.display().to_string())
        )));
    }
    let path = socket_path(data_dir);
    let Some(stream) = connect(&path)? else {
        return Ok(None);
    };
    let connected = std::time::Instant::now();
    let passphrase = crate::node_cmd::passphrase(global)?;
    let cwd = match std::env::current_dir() {
        Ok(cwd) => cwd,
        // A working directory since removed (`rm -r` of the shell's own): needed only to
        // resolve relative paths, as with no node running.
        Err(_) if !path_args(cli).iter().any(|(path, _)| path.is_relative()) => PathBuf::from("/"),
        Err(e) => return Err(e).context("reading the working directory"),
    };
    let own = own_descriptors(cli, &cwd, data_dir)?;
    // Reading this process's input (its standard input, a passphrase typed at its terminal)
    // may take its time, and a node gives a request 30 s: then a fresh connection.
    let mut stream = if own.iter().any(|o| o.copied) || connected.elapsed() > REQUEST_TIME / 3 {
        drop(stream);
        connect(&path)?.context(
            "the running node (moot serve) stopped while this command read its input; nothing \
             was done",
        )?
    } else {
        stream
    };
    let stdout = own.iter().find(|o| o.is_stdout).map(|o| o.given.clone());
    let (passed, files): (Vec<_>, Vec<_>) = own.into_iter().map(|o| (o.given, o.file)).unzip();
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
        passed,
        stdout,
    };
    let bytes = postcard::to_allocvec(&request).context("encoding the request")?;
    anyhow::ensure!(
        bytes.len() <= MAX_REQUEST,
        "the command is too long to pass to the running node"
    );
    write_frame_passing(&mut stream, &bytes, &files)
        .context("sending the command to the running node (moot serve)")?;
    drop(files);
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

/// A file of this process's passed to the node with its request.
struct Own {
    /// The path argument as given.
    given: Vec<u8>,
    file: std::fs::File,
    /// A copy of the input, not the input itself.
    copied: bool,
    /// It is this process's standard output.
    is_stdout: bool,
}

/// The path arguments of `cli` that name this process's own descriptors: a running node would
/// open its own under those names. A file the command writes is passed as it is opened; one it
/// reads too if it is a regular file, else a copy in `data_dir` (see [`copy_input`]).
fn own_descriptors(cli: &mut Cli, cwd: &Path, data_dir: &Path) -> anyhow::Result<Vec<Own>> {
    let mut own = Vec::new();
    for (path, access) in path_args(cli) {
        if !names_own_descriptor(path, cwd) {
            continue;
        }
        let shown = moot_text::escape(&path.display().to_string()).into_owned();
        let given = path.as_os_str().as_bytes().to_vec();
        let (file, copied) = match access {
            Access::Read { limit, starts } => {
                let input =
                    std::fs::File::open(&*path).with_context(|| format!("cannot open {shown}"))?;
                if input.metadata().is_ok_and(|m| m.is_file()) {
                    // Read through the descriptor, as it is: it waits on no one.
                    (input, false)
                } else {
                    let copy = copy_input(input, limit, starts, data_dir)
                        .with_context(|| format!("copying {shown} for the running node"))?;
                    (copy, true)
                }
            }
            Access::Write => (
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(&*path)
                    .with_context(|| format!("cannot open {shown}"))?,
                false,
            ),
        };
        let is_stdout =
            access == Access::Write && file.metadata().is_ok_and(|meta| is_own_stdout(&meta));
        own.push(Own {
            given,
            file,
            copied,
            is_stdout,
        });
    }
    Ok(own)
}

/// What `input` holds, copied into an unnamed temporary file in `dir` (the data directory,
/// 0700: on disk, not in a memory-backed `/tmp`): at most `limit` bytes,
/// and only its first bytes if they do not start with `starts` (the command refuses them
/// from those). The node then reads that copy, never the client's pipe or terminal, so it
/// does not wait on the client's input while it holds its turn (`moot proposal show … | moot
/// proposal create --body-file /dev/stdin` on one node), nor read a terminal after the client
/// is stopped.
fn copy_input(
    mut input: std::fs::File,
    limit: u64,
    starts: &[u8],
    dir: &Path,
) -> std::io::Result<std::fs::File> {
    use std::io::{Read as _, Seek as _};
    let mut copy = tempfile::tempfile_in(dir)?;
    let mut head = Vec::new();
    (&mut input)
        .take(starts.len() as u64)
        .read_to_end(&mut head)?;
    copy.write_all(&head)?;
    if head == starts {
        std::io::copy(
            &mut input.take(limit.saturating_sub(head.len() as u64)),
            &mut copy,
        )?;
    }
    copy.rewind()?;
    Ok(copy)
}

/// True if `path` (relative to `cwd`) names a file through this process (`/dev/stdin`,
/// `/dev/stdout`, `/dev/stderr`, `/dev/tty`, `/dev/fd/…`, `/proc/self/…`,
/// `/proc/thread-self/…`, `/proc/PID/…`), or is a link, or a path through linked directories,
/// leading to one.
fn names_own_descriptor(path: &Path, cwd: &Path) -> bool {
    let mut path = cwd.join(path);
    // Links are followed as the kernel does, to its limit of 40.
    for _ in 0..40 {
        if is_own_path(&path) {
            return true;
        }
        // The directory resolved (`/dev/fd` is a link to `/proc/self/fd`), the name as it is.
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name())
            && let Ok(dir) = std::fs::canonicalize(dir)
        {
            path = dir.join(name);
            if is_own_path(&path) {
                return true;
            }
        }
        match std::fs::read_link(&path) {
            Ok(target) => {
                path = match path.parent() {
                    Some(dir) => dir.join(target),
                    None => target,
                }
            }
            Err(_) => return false,
        }
    }
    false
}

fn is_own_path(path: &Path) -> bool {
    let own = format!("/proc/{}", std::process::id());
    ["/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty"]
        .iter()
        .any(|name| path == Path::new(name))
        || ["/dev/fd", "/proc/self", "/proc/thread-self", own.as_str()]
            .iter()
            .any(|dir| path.starts_with(dir))
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
    /// The client's files passed with the request this thread runs.
    static FILES: std::cell::RefCell<Vec<Passed>> = const { std::cell::RefCell::new(Vec::new()) };
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
                // A client that went away before its answer (`moot … | head -c1`), or that sent
                // nothing in 30 s, is no fault of the node's.
                let gone = e.chain().any(|cause| {
                    cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                        matches!(
                            io.kind(),
                            std::io::ErrorKind::BrokenPipe
                                | std::io::ErrorKind::UnexpectedEof
                                | std::io::ErrorKind::ConnectionReset
                                | std::io::ErrorKind::WouldBlock
                                | std::io::ErrorKind::TimedOut
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
    let (mut stream, bytes, files) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let (bytes, files) = read_frame_passed(&mut stream, MAX_REQUEST)
            .context("reading the request (a client that sent nothing in 30 s is dropped)")?;
        stream.set_read_timeout(None)?;
        Ok((stream, bytes, files))
    })
    .await??;
    // A command that only waits on the network runs without the turn: a `moot sync` waiting
    // out its timeout must not hold up every other command, a vote from the web UI included.
    let waits = postcard::from_bytes::<Request>(&bytes)
        .ok()
        .is_some_and(|request| waits_on_network(&request));
    // As a command run with no node waits for the data directory's lock: at most LOCK_WAIT,
    // then it says so (a command stuck on a pipe nobody reads holds up no one for good).
    let (_one, turn) = match waits {
        true => (None, true),
        false => match tokio::time::timeout(moot_node::LOCK_WAIT, one_at_a_time.lock()).await {
            Ok(one) => (Some(one), true),
            Err(_) => (None, false),
        },
    };
    let net = Arc::clone(&served.net);
    let response = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let response = match decode_request(&bytes) {
            Ok(request) if !turn => busy(&request, served.node.dir()),
            Ok(request) => run_request(request, served, files),
            Err(refusal) => refusal,
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
/// The answer to a command that waited [`moot_node::LOCK_WAIT`] for its turn: what a command
/// run with no node says of a data directory another command kept, as text or JSON.
fn busy(request: &Request, dir: &Path) -> Response {
    let args = std::iter::once(std::ffi::OsString::from("moot")).chain(
        request
            .args
            .iter()
            .map(|a| std::ffi::OsString::from_vec(a.clone())),
    );
    let json = crate::json_requested(args);
    let error = anyhow::Error::new(moot_node::NodeError::Busy {
        dir: dir.to_path_buf(),
        waited: moot_node::LOCK_WAIT,
    });
    let ((), captured) = crate::out::capture(|| {
        crate::report(
            crate::error_kind(&error),
            &crate::message(&error),
            &[],
            json,
        );
    });
    Response {
        version: VERSION,
        stdout: captured.stdout,
        stderr: captured.stderr,
        code: 1,
        saved: false,
    }
}

/// The answer refusing a request, saying why.
fn refusal(why: &str) -> Response {
    Response {
        version: VERSION,
        stdout: Vec::new(),
        stderr: format!("moot: error: {why}\n").into_bytes(),
        code: 1,
        saved: false,
    }
}

/// A request, or the answer refusing it: a client of another version is told so (its request
/// may be laid out otherwise: its version is read first), and a damaged one is refused.
fn decode_request(bytes: &[u8]) -> Result<Request, Response> {
    let Ok((version, _)) = postcard::take_from_bytes::<u32>(bytes) else {
        return Err(refusal("a damaged request"));
    };
    if version != VERSION {
        return Err(refusal(&format!(
            "this moot speaks control version {version} and the running node {VERSION}: use \
             the same moot binary as the node"
        )));
    }
    postcard::from_bytes(bytes).map_err(|_| refusal("a damaged request"))
}

fn run_request(request: Request, served: Served, files: Vec<OwnedFd>) -> Response {
    if request.passed.len() != files.len() {
        return refusal(&format!(
            "the request names {} files of the client's and passes {}",
            request.passed.len(),
            files.len()
        ));
    }
    let args: Vec<std::ffi::OsString> = request
        .args
        .into_iter()
        .map(std::ffi::OsString::from_vec)
        .collect();
    let cwd = PathBuf::from(std::ffi::OsString::from_vec(request.cwd));
    // The node opens each passed file again through its own descriptor table (`/dev/fd`,
    // `/proc/self/fd` on Linux).
    let passed: Vec<Passed> = request
        .passed
        .into_iter()
        .zip(&files)
        .map(|(given, file)| Passed {
            is_stdout: request.stdout.as_ref() == Some(&given),
            given: PathBuf::from(std::ffi::OsString::from_vec(given)),
            here: PathBuf::from(format!("/dev/fd/{}", file.as_raw_fd())),
        })
        .collect();
    let (code, captured) = run_captured(
        args,
        &cwd,
        Some(served),
        request.passphrase,
        request.as_member,
        request.hub,
        passed,
    );
    // Closed once the command is done with them.
    drop(files);
    Response {
        version: VERSION,
        stdout: captured.stdout,
        stderr: captured.stderr,
        code,
        saved: captured.saved,
    }
}

/// A file of the client's, passed with its request: the path argument it was given as, and the
/// path that opens it here (its descriptor in this process).
#[derive(Debug, Clone)]
pub struct Passed {
    given: PathBuf,
    here: PathBuf,
    /// It is the client's standard output.
    is_stdout: bool,
}

/// Runs `moot ARGS` on this thread for a client (of the socket, or of the web UI), with its
/// output captured: on the running node when `served`, else on the data directory as a
/// command line would. `passphrase` stands for a `--passphrase-file`'s; `as_member` and `hub`
/// for `MOOT_AS` and `MOOT_HUB`; relative paths are `cwd`'s; a path argument `passed` names
/// opens the client's file passed with the request.
pub fn run_captured(
    args: Vec<std::ffi::OsString>,
    cwd: &Path,
    served: Option<Served>,
    passphrase: Option<String>,
    as_member: Option<String>,
    hub: Option<String>,
    passed: Vec<Passed>,
) -> (u8, crate::out::Captured) {
    let args: Vec<std::ffi::OsString> = std::iter::once(std::ffi::OsString::from("moot"))
        .chain(args)
        .collect();
    let served = served.map(|served| Served {
        passphrase: passphrase.clone(),
        ..served
    });
    /// Clears what this thread was given for the command, however it ends (a thread of
    /// `spawn_blocking` that a panic ended runs the next command).
    struct Clear;
    impl Drop for Clear {
        fn drop(&mut self) {
            SERVED.with(|s| *s.borrow_mut() = None);
            PASSED.with(|p| *p.borrow_mut() = None);
            FILES.with(|f| f.borrow_mut().clear());
        }
    }
    let _clear = Clear;
    SERVED.with(|s| *s.borrow_mut() = served);
    PASSED.with(|p| *p.borrow_mut() = passphrase);
    crate::out::capture(|| {
        crate::run_args(args, false, |cli| {
            absolutize(cli, cwd, &passed);
            FILES.with(|f| *f.borrow_mut() = passed);
            // The client's environment, not the node's (clap read none: see `run_args`).
            if cli.global.as_member.is_none() {
                cli.global.as_member = as_member;
            }
            if cli.global.hub.is_none() {
                cli.global.hub = hub;
            }
        })
    })
}

/// True if the command writing `path` writes its own standard output (`/dev/stdout`, a link
/// to it, or the file it was redirected to): judged by the client for a file it passed, never
/// true for another file a running node opens (its standard output is not the command's).
pub fn is_stdout(path: &Path) -> bool {
    let passed = FILES.with(|f| {
        f.borrow()
            .iter()
            .find(|passed| passed.here == path)
            .map(|passed| passed.is_stdout)
    });
    match passed {
        Some(is_stdout) => is_stdout,
        None if served().is_some() => false,
        None => std::fs::metadata(path)
            .ok()
            .is_some_and(|meta| is_own_stdout(&meta)),
    }
}

/// True if `meta` is that of this process's standard output's file.
fn is_own_stdout(meta: &std::fs::Metadata) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/dev/stdout")
        .ok()
        .is_some_and(|out| (out.dev(), out.ino()) == (meta.dev(), meta.ino()))
}

/// `path` as the person gave it: a client's file passed with its request is opened here
/// through this process's descriptor (`/dev/fd/N`), and shown by the name it was given.
pub fn shown(path: &Path) -> PathBuf {
    FILES.with(|f| {
        f.borrow()
            .iter()
            .find(|passed| passed.here == path)
            .map_or_else(|| path.to_path_buf(), |passed| passed.given.clone())
    })
}

/// Relative paths in a command made absolute against the client's working directory; a path
/// that names a file the client passed, the path that opens it here.
fn absolutize(cli: &mut Cli, cwd: &Path, passed: &[Passed]) {
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
    for (path, _) in path_args(cli) {
        match passed.iter().find(|p| p.given == *path) {
            Some(p) => *path = p.here.clone(),
            None => fix(path),
        }
    }
}

/// How a command opens a path argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Reads at most `limit` bytes of it, and no more than its first bytes if they do not
    /// start with `starts`.
    Read {
        limit: u64,
        starts: &'static [u8],
    },
    Write,
}

/// What a command reads of a text file (a proposal's body): one byte past its limit, to say
/// it is too long.
const TEXT: Access = Access::Read {
    limit: moot_node::deliberation::MAX_PROPOSAL_BYTES as u64 + 1,
    starts: b"",
};
/// What a command reads of a bundle: the whole of one that starts as a bundle does.
const BUNDLE: Access = Access::Read {
    limit: u64::MAX,
    starts: moot_node::bundle::MAGIC,
};

/// The files a command opens, named by its arguments (besides `--data` and
/// `--passphrase-file`, which the client reads).
fn path_args(cli: &mut Cli) -> Vec<(&mut PathBuf, Access)> {
    use crate::cli::{BundleCommand, PollCommand, ProposalCommand};
    match &mut cli.command {
        Command::Tally(args) => vec![(
            &mut args.file,
            Access::Read {
                limit: u64::MAX,
                starts: b"",
            },
        )],
        Command::Poll {
            command: PollCommand::Verify {
                bundle: Some(file), ..
            },
        } => vec![(file, BUNDLE)],
        Command::Proposal {
            command:
                ProposalCommand::Create {
                    body_file: Some(file),
                    ..
                }
                | ProposalCommand::Edit {
                    body_file: Some(file),
                    ..
                },
        } => vec![(file, TEXT)],
        Command::Proposal {
            command: ProposalCommand::Export { file, .. },
        } => vec![(file, Access::Write)],
        Command::Bundle { command } => match command {
            BundleCommand::Export { file, .. } => vec![(file, Access::Write)],
            BundleCommand::Import { file } => vec![(file, BUNDLE)],
        },
        _ => Vec::new(),
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

    fn stderr_of(response: Response) -> String {
        assert_eq!(response.code, 1);
        String::from_utf8(response.stderr).unwrap()
    }

    /// A client of the version before (no `passed` field) is told to use the node's binary,
    /// not dropped unanswered (which it would report as a node that stopped mid-command).
    #[test]
    fn a_request_of_another_version_or_damaged_is_answered_so() {
        #[derive(Serialize)]
        struct Version2 {
            version: u32,
            args: Vec<Vec<u8>>,
            cwd: Vec<u8>,
            as_member: Option<String>,
            hub: Option<String>,
            passphrase: Option<String>,
        }
        let old = postcard::to_allocvec(&Version2 {
            version: 2,
            args: vec![b"members".to_vec()],
            cwd: b"/".to_vec(),
            as_member: None,
            hub: None,
            passphrase: None,
        })
        .unwrap();
        let why = stderr_of(decode_request(&old).unwrap_err());
        assert!(why.contains("control version 2"), "{why}");
        let now = Request {
            version: VERSION,
            args: vec![b"members".to_vec()],
            cwd: b"/".to_vec(),
            as_member: None,
            hub: None,
            passphrase: None,
            passed: vec![b"/dev/stdout".to_vec()],
            stdout: Some(b"/dev/stdout".to_vec()),
        };
        let bytes = postcard::to_allocvec(&now).unwrap();
        assert_eq!(decode_request(&bytes).unwrap().passed, now.passed);
        // Cut short at every length: refused, never a panic.
        for len in 0..bytes.len() {
            let why = stderr_of(decode_request(&bytes[..len]).unwrap_err());
            assert!(why.contains("damaged") || why.contains("version"), "{why}");
        }
    }

    /// Files go with a frame's first byte and come out as this process's descriptors, which
    /// open the same files; more than [`MAX_PASSED`] are refused at both ends.
    #[test]
    fn files_pass_with_a_frame_and_are_bounded() {
        use std::io::Read as _;
        let dir = tempfile::tempdir().unwrap();
        let files: Vec<std::fs::File> = (0..MAX_PASSED)
            .map(|i| {
                let path = dir.path().join(format!("f{i}"));
                std::fs::write(&path, format!("file {i}")).unwrap();
                std::fs::File::open(path).unwrap()
            })
            .collect();
        let (mut client, mut node) = std::os::unix::net::UnixStream::pair().unwrap();
        write_frame_passing(&mut client, b"request", &files).unwrap();
        let (bytes, passed) = read_frame_passed(&mut node, MAX_REQUEST).unwrap();
        assert_eq!(bytes, b"request");
        assert_eq!(passed.len(), MAX_PASSED);
        for (i, fd) in passed.iter().enumerate() {
            let mut text = String::new();
            std::fs::File::open(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            assert_eq!(text, format!("file {i}"));
        }
        // None: a plain frame.
        write_frame_passing(&mut client, b"plain", &[]).unwrap();
        let (bytes, passed) = read_frame_passed(&mut node, MAX_REQUEST).unwrap();
        assert_eq!((bytes.as_slice(), passed.len()), (&b"plain"[..], 0));
        // One too many: the client will not send them, and a node will not take them.
        let more: Vec<std::fs::File> = (0..=MAX_PASSED)
            .map(|_| std::fs::File::open(dir.path()).unwrap())
            .collect();
        assert!(write_frame_passing(&mut client, b"request", &more).is_err());
        let fds: Vec<BorrowedFd<'_>> = more.iter().map(|f| f.as_fd()).collect();
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(MAX_PASSED + 1))];
        let mut control = rustix::net::SendAncillaryBuffer::new(&mut space);
        assert!(control.push(rustix::net::SendAncillaryMessage::ScmRights(&fds)));
        let len = 7u32.to_be_bytes();
        rustix::net::sendmsg(
            &client,
            &[std::io::IoSlice::new(&len)],
            &mut control,
            rustix::net::SendFlags::empty(),
        )
        .unwrap();
        client.write_all(b"request").unwrap();
        let error = format!(
            "{:#}",
            read_frame_passed(&mut node, MAX_REQUEST).unwrap_err()
        );
        assert!(error.contains("more than 4 files"), "{error}");
        // A client that goes away mid-length.
        drop(node);
        let (mut client, mut node) = std::os::unix::net::UnixStream::pair().unwrap();
        client.write_all(&[0, 0]).unwrap();
        drop(client);
        assert!(read_frame_passed(&mut node, MAX_REQUEST).is_err());
    }

    /// A copy of the client's input holds what the command would read of it: up to its limit,
    /// and no more than the first bytes of one that does not start as it must.
    #[test]
    fn an_input_is_copied_as_far_as_the_command_reads_it() {
        use std::io::Read as _;
        let copy = |input: &[u8], limit: u64, starts: &[u8]| {
            let mut file = tempfile::tempfile().unwrap();
            file.write_all(input).unwrap();
            std::io::Seek::rewind(&mut file).unwrap();
            let mut text = Vec::new();
            copy_input(file, limit, starts, &std::env::temp_dir())
                .unwrap()
                .read_to_end(&mut text)
                .unwrap();
            text
        };
        assert_eq!(copy(b"hello world", 5, b""), b"hello");
        assert_eq!(copy(b"hello world", u64::MAX, b""), b"hello world");
        let mut bundle = moot_node::bundle::MAGIC.to_vec();
        bundle.extend_from_slice(&[7; 5000]);
        assert_eq!(copy(&bundle, u64::MAX, moot_node::bundle::MAGIC), bundle);
        let junk = vec![0u8; 1 << 20];
        assert_eq!(
            copy(&junk, u64::MAX, moot_node::bundle::MAGIC),
            vec![0u8; moot_node::bundle::MAGIC.len()]
        );
        assert_eq!(copy(b"moot", u64::MAX, moot_node::bundle::MAGIC), b"moot");
    }

    /// The paths that name a process's own descriptors, directly, through a link, or through
    /// a linked directory; other paths are opened by the node by name.
    #[test]
    fn paths_naming_own_descriptors_are_told_apart() {
        let cwd = tempfile::tempdir().unwrap();
        let cwd = cwd.path();
        let own = |path: &str| names_own_descriptor(Path::new(path), cwd);
        for path in [
            "/dev/stdin",
            "/dev/stdout",
            "/dev/stderr",
            "/dev/tty",
            "/dev/fd/1",
            "/dev/fd/7",
            "/proc/self/fd/0",
            "/proc/self/cwd/bundle",
            "/proc/thread-self/fd/2",
            &format!("/proc/{}/fd/1", std::process::id()),
        ] {
            assert!(own(path), "{path}");
        }
        std::os::unix::fs::symlink("/dev/stdout", cwd.join("out")).unwrap();
        std::os::unix::fs::symlink("out", cwd.join("out2")).unwrap();
        std::os::unix::fs::symlink("/dev/fd", cwd.join("fds")).unwrap();
        std::os::unix::fs::symlink("loop2", cwd.join("loop1")).unwrap();
        std::os::unix::fs::symlink("loop1", cwd.join("loop2")).unwrap();
        std::fs::write(cwd.join("plain"), b"x").unwrap();
        std::os::unix::fs::symlink(cwd.join("plain"), cwd.join("to-plain")).unwrap();
        for path in ["out", "out2", "fds/1"] {
            assert!(own(path), "{path}");
        }
        for path in [
            "plain",
            "to-plain",
            "missing",
            "loop1",
            "/dev/null",
            "/dev/stdoutx",
            "/proc/selfish",
            "/tmp/bundle",
        ] {
            assert!(!own(path), "{path}");
        }
    }
}
