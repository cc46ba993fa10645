//! End-to-end tests of the `moot` binary, grouped by concern. Each runs the real binary as a
//! child process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod node;
mod node_crash;
mod node_hardening;
mod tally;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Runs `moot` with arguments and optional standard input.
pub fn moot(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(bytes) = stdin {
        // moot may exit before reading its input (a usage error): a broken pipe is expected then.
        if let Err(error) = child.stdin.take().unwrap().write_all(bytes) {
            assert_eq!(error.kind(), std::io::ErrorKind::BrokenPipe, "{error}");
        }
    }
    child.wait_with_output().unwrap()
}

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

/// Parses stdout as JSON, failing with stderr on error.
pub fn json(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "moot failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}
