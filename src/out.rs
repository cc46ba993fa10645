//! Standard output for every command. `println!` panics when stdout is closed (`moot tally
//! big.csv | head -1`); these functions return errors instead: a closed pipe becomes
//! [`StdoutClosed`], which `main` ends on quietly, and any other write error (a full disk)
//! becomes an ordinary error (exit 1, with a message).

use std::io::Write as _;

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
