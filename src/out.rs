//! Standard output for every command. `println!` panics when stdout is closed (`moot tally
//! big.csv | head -1`); these functions return errors instead: a closed pipe becomes
//! [`StdoutClosed`], which `main` ends on quietly, and any other write error (a full disk)
//! becomes an ordinary error (exit 1, with a message).

use std::io::Write as _;
use std::sync::Mutex;

/// Notes for the user held back with `--json` (see [`note`]).
static HELD: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Tells the user something on stderr that is not an error (a damaged key file was read from
/// its backup). Without `--json` it is printed at once, as a `moot: warning:` line, escaped.
/// With `--json` it is held back: stderr must stay one JSON object if the command then fails,
/// so `main` puts held notes into the error object (`"notes"`), or prints them once the
/// command has succeeded.
pub fn note(json: bool, text: String) {
    if json {
        if let Ok(mut held) = HELD.lock() {
            held.push(text);
        }
    } else {
        let _ = writeln!(
            std::io::stderr().lock(),
            "moot: warning: {}",
            moot_text::escape(&text)
        );
    }
}

/// The notes held back so far (emptied).
pub fn take_notes() -> Vec<String> {
    HELD.lock()
        .map(|mut held| std::mem::take(&mut *held))
        .unwrap_or_default()
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
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes()).map_err(map)?;
    stdout.write_all(b"\n").map_err(map)?;
    stdout.flush().map_err(map)
}
