//! Standard output for every command. `println!` panics when stdout is closed (`moot tally
//! big.csv | head -1`); these functions return errors instead: a closed pipe becomes
//! [`StdoutClosed`], which `main` ends on quietly, and any other write error (a full disk)
//! becomes an ordinary error (exit 1, with a message).

use std::cell::RefCell;
use std::io::{IsTerminal as _, Write as _};

thread_local! {
    /// Notes for the user held back with `--json` (see [`note`]). Per thread: a running node
    /// runs each command from its control socket on a thread of its own.
    static HELD: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
    /// Output captured instead of written, while a running node runs a command for a client
    /// of its control socket (see [`capture`]).
    static CAPTURED: RefCell<Option<Captured>> = const { RefCell::new(None) };
}

/// What a command printed, captured (see [`capture`]).
#[derive(Debug, Default)]
pub struct Captured {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// The output follows a change that was saved ([`note_saved`]): if the client cannot print
    /// it, it says the change was saved all the same.
    pub saved: bool,
}

/// Marks what is printed next as the result of a saved change (see [`Captured::saved`]).
pub fn note_saved() {
    captured(|c| c.saved = true);
}

/// Runs `f` with everything this module writes (standard output, warnings, errors) captured
/// on this thread instead, and returns it beside `f`'s result.
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Captured) {
    CAPTURED.with(|c| *c.borrow_mut() = Some(Captured::default()));
    let out = f();
    let captured = CAPTURED.with(|c| c.borrow_mut().take()).unwrap_or_default();
    (out, captured)
}

fn captured(f: impl FnOnce(&mut Captured)) -> bool {
    CAPTURED.with(|c| match c.borrow_mut().as_mut() {
        Some(captured) => {
            f(captured);
            true
        }
        None => false,
    })
}

/// Writes `text` and a newline to standard error as is (callers escape what they quote).
/// Never fails: a closed stderr leaves nothing else to do.
pub fn err_line(text: &str) {
    if !captured(|c| {
        c.stderr.extend_from_slice(text.as_bytes());
        c.stderr.push(b'\n');
    }) {
        let _ = writeln!(std::io::stderr().lock(), "{text}");
    }
}

/// Writes `text` to standard error as is, with no newline (progress lines).
pub fn err_text(text: &str) {
    if !captured(|c| c.stderr.extend_from_slice(text.as_bytes())) {
        let mut stderr = std::io::stderr().lock();
        let _ = stderr.write_all(text.as_bytes());
        let _ = stderr.flush();
    }
}

/// True when standard error is a terminal a person watches (never while captured).
pub fn stderr_is_terminal() -> bool {
    CAPTURED.with(|c| c.borrow().is_none()) && std::io::stderr().is_terminal()
}

/// Tells the user something on stderr that is not an error (a damaged key file was read from
/// its backup). Without `--json` it is printed at once, as a `moot: warning:` line, escaped.
/// With `--json` it is held back: stderr must stay one JSON object if the command then fails,
/// so `main` puts held notes into the error object (`"notes"`), or prints them once the
/// command has succeeded.
pub fn note(json: bool, text: String) {
    if json {
        HELD.with(|held| held.borrow_mut().push(text));
    } else {
        err_line(&format!("moot: warning: {}", moot_text::escape(&text)));
    }
}

/// The notes held back so far (emptied).
pub fn take_notes() -> Vec<String> {
    HELD.with(|held| std::mem::take(&mut *held.borrow_mut()))
}

/// Standard output was closed by the reader: not a failure, nothing more to say.
#[derive(Debug)]
pub struct StdoutClosed;

impl std::fmt::Display for StdoutClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for StdoutClosed {}

fn map(error: std::io::Error) -> anyhow::Error {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        anyhow::Error::new(StdoutClosed)
    } else {
        anyhow::Error::new(error).context("writing to standard output")
    }
}

/// Writes `text` and a newline to standard output, and flushes.
pub fn line(text: &str) -> anyhow::Result<()> {
    if captured(|c| {
        c.stdout.extend_from_slice(text.as_bytes());
        c.stdout.push(b'\n');
    }) {
        return Ok(());
    }
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).map_err(map)?;
    stdout.write_all(b"\n").map_err(map)?;
    stdout.flush().map_err(map)
}
