//! End-to-end tests of the `moot` binary, grouped by concern. Each runs the real binary as a
//! child process.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod browser;
mod bundles;
mod cli;
mod control;
mod deliberation;
mod forgery;
mod mdns;
mod meeting;
mod net;
mod node;
mod node_crash;
mod node_hardening;
mod node_review;
mod partition;
mod polls;
mod relay;
mod serving;
mod slowlink;
mod tally;
mod web;

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

/// The first character of `text` that must never reach a terminal raw, from a list written here
/// independently of `moot_text::is_unsafe` (a test must not use the code under test as its
/// oracle): controls (but the line feeds that end our own lines), separators, bidi controls and
/// invisible characters that could hide or fake a name.
pub fn raw_dangerous(text: &str) -> Option<char> {
    const DANGEROUS: &[(u32, u32)] = &[
        (0x00, 0x09),
        (0x0B, 0x1F),
        (0x7F, 0x9F),
        (0xAD, 0xAD),
        (0x34F, 0x34F),
        (0x61C, 0x61C),
        (0x115F, 0x1160),
        (0x180E, 0x180E),
        (0x200B, 0x200B),
        (0x200E, 0x200F),
        (0x2028, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0x3164, 0x3164),
        (0xFEFF, 0xFEFF),
        (0xFFA0, 0xFFA0),
        (0xFFF9, 0xFFFB),
        (0xE0000, 0xE007F),
    ];
    text.chars().find(|&c| {
        DANGEROUS
            .iter()
            .any(|&(a, b)| (a..=b).contains(&(c as u32)))
    })
}
