//! The contract scripts rely on, whatever the command: `--json` errors are one JSON object on
//! stderr with the usual exit codes; output to a closed pipe ends quietly and other write errors
//! fail with a message; help shows only the flags a command uses.

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{moot, root};

/// The JSON error object on stderr, checked to be exactly one object of the documented shape.
fn json_error(output: &Output) -> (i32, String, String) {
    assert!(
        output.stdout.is_empty(),
        "an error prints nothing on stdout"
    );
    let stderr = String::from_utf8(output.stderr.clone()).unwrap();
    let value: Value = serde_json::from_str(&stderr)
        .unwrap_or_else(|e| panic!("stderr is not one JSON document ({e}): {stderr:?}"));
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr:?}");
    let object = value.as_object().unwrap();
    assert_eq!(object.len(), 1, "only \"error\": {value}");
    let error = value["error"].as_object().unwrap();
    assert_eq!(error.len(), 2, "only kind and message: {value}");
    (
        output.status.code().unwrap(),
        error["kind"].as_str().unwrap().to_string(),
        error["message"].as_str().unwrap().to_string(),
    )
}

#[test]
fn json_error_for_bad_input_exits_2() {
    let out = moot(&["tally", "-", "--json"], Some(b"Ada,Ben\n5,0\n1,6\n"));
    let (code, kind, message) = json_error(&out);
    assert_eq!((code, kind.as_str()), (2, "bad_input"));
    assert!(
        message.contains("line 3: score 6 for \"Ben\" is outside 0-5"),
        "{message}"
    );
}

#[test]
fn json_error_for_a_refused_command_exits_1() {
    let data = tempfile::tempdir().unwrap();
    let data = data.path().display().to_string();
    let first = moot(&["--data", &data, "--json", "init", "--name", "Fay"], None);
    assert!(first.status.success(), "{first:?}");
    let again = moot(&["--data", &data, "--json", "init", "--name", "Fay"], None);
    let (code, kind, message) = json_error(&again);
    assert_eq!((code, kind.as_str()), (1, "refused"));
    assert!(message.contains("already has an identity"), "{message}");
}

#[test]
fn a_data_directory_that_is_a_file_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.txt");
    std::fs::write(&file, "not a data directory").unwrap();
    let file = file.display().to_string();
    let out = moot(&["--data", &file, "--json", "members"], None);
    let (code, kind, message) = json_error(&out);
    assert_eq!((code, kind.as_str()), (2, "bad_input"), "{message}");
    assert!(message.contains("is a file, not a directory"), "{message}");
}

#[test]
fn json_error_for_a_missing_file_is_not_found_exit_1() {
    let out = moot(&["--json", "tally", "/nonexistent/ballots.csv"], None);
    let (code, kind, message) = json_error(&out);
    assert_eq!((code, kind.as_str()), (1, "not_found"));
    assert!(message.contains("/nonexistent/ballots.csv"), "{message}");
}

#[test]
fn json_error_for_bad_usage_exits_2_wherever_json_is_given() {
    for args in [
        &["tally", "--seats", "lots", "x.csv", "--json"][..],
        &["--json", "tally"],
        &["--json", "no-such-command"],
        &["members", "--json", "--no-such-flag"],
        // A timeout the clock cannot add panicked once (exit 101), and `hub join` had recorded
        // the hub by then.
        &[
            "--json",
            "sync",
            "--peer",
            "/ip4/127.0.0.1/tcp/9",
            "--timeout",
            "18446744073709551615",
        ],
        &[
            "--json",
            "hub",
            "join",
            "no-ticket",
            "--timeout",
            "9223372036854775807",
        ],
    ] {
        let out = moot(args, None);
        let (code, kind, message) = json_error(&out);
        assert_eq!((code, kind.as_str()), (2, "usage"), "{args:?}");
        assert!(
            !message.is_empty() && !message.starts_with("error:"),
            "{message}"
        );
    }
    // Without --json, clap's own text, same exit code.
    let out = moot(&["tally", "--seats", "lots", "x.csv"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid value 'lots'"));
}

#[test]
fn help_and_version_still_print_normally_with_json() {
    let help = moot(&["--json", "tally", "--help"], None);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: moot tally"));
    let version = moot(&["--version", "--json"], None);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("moot "));
}

#[test]
fn tally_help_hides_the_node_flags_that_do_nothing_there() {
    let help = moot(&["tally", "--help"], None);
    assert!(help.status.success());
    let text = String::from_utf8(help.stdout).unwrap();
    for flag in ["--data", "--as", "--passphrase-file", "MOOT_DATA"] {
        assert!(
            !text.contains(flag),
            "{flag} in `moot tally --help`:\n{text}"
        );
    }
    assert!(text.contains("--json"), "{text}");
    assert!(text.contains("--seats"), "{text}");

    let members = moot(&["members", "--help"], None);
    let text = String::from_utf8(members.stdout).unwrap();
    for flag in ["--data", "--as", "--passphrase-file", "--json"] {
        assert!(
            text.contains(flag),
            "{flag} missing from `moot members --help`:\n{text}"
        );
    }
    // Still accepted (and ignored) by tally, so a script that sets them everywhere keeps working.
    let example = root().join("examples/ballots.csv").display().to_string();
    let out = moot(&["tally", &example, "--data", "/nonexistent"], None);
    assert!(out.status.success(), "{out:?}");
}

/// `moot tally - ` whose stdout is a pipe with its read end already closed: the ballots are
/// written (and stdin closed) only after the reader is gone, so the report is certainly written
/// into a closed pipe.
#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    let csv = std::fs::read(root().join("examples/ballots.csv")).unwrap();
    for json in [false, true] {
        let mut args = vec!["tally", "-"];
        if json {
            args.push("--json");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&csv).unwrap();
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.is_empty(), "json={json}: {stderr}");
        assert_eq!(out.status.code(), Some(0), "json={json}: {stderr}");
    }
}

/// A full disk (Linux's `/dev/full`): exit 1 and a message, as text or as JSON.
#[cfg(target_os = "linux")]
#[test]
fn a_write_error_on_stdout_fails_with_a_message() {
    let example = root().join("examples/ballots.csv").display().to_string();
    for json in [false, true] {
        let mut args = vec!["tally", example.as_str()];
        if json {
            args.push("--json");
        }
        let full = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(&args)
            .stdout(full)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "json={json}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(stderr.contains("writing to standard output"), "{stderr}");
        if json {
            let value: Value = serde_json::from_str(&stderr).unwrap();
            assert_eq!(value["error"]["kind"], "io");
        }
    }
}

/// A variable set to nothing (`MOOT_DATA= moot …`, how a shell clears one) is as if unset: it
/// once made every command a usage error, blaming a flag nobody typed, even `tally` (which
/// ignores it) and commands given the flag itself.
#[test]
fn an_empty_environment_variable_is_as_if_unset() {
    let example = root().join("examples/ballots.csv").display().to_string();
    let data = crate::node::Data::new();
    data.ok(&["init", "--name", "Fay"]);
    let path = data.path();
    // Kept until the end: it removes its directory when dropped.
    let empty = crate::node::Data::new();
    let fresh = empty.path();
    for (var, args) in [
        ("MOOT_DATA", vec!["--json", "tally", example.as_str()]),
        (
            "MOOT_PASSPHRASE_FILE",
            vec!["--json", "tally", example.as_str()],
        ),
        ("MOOT_DATA", vec!["--json", "--data", path.as_str(), "id"]),
        (
            "MOOT_PASSPHRASE_FILE",
            vec!["--json", "--data", path.as_str(), "id"],
        ),
        ("MOOT_AS", vec!["--json", "--data", path.as_str(), "id"]),
        ("MOOT_HUB", vec!["--json", "--data", path.as_str(), "id"]),
        // A subcommand's flag too: the first `serve` on an empty directory makes keys and ends.
        (
            "MOOT_NO_MDNS",
            vec!["--json", "--data", fresh.as_str(), "serve", "--no-http"],
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_moot"))
            .args(&args)
            .env(var, "")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{var}= moot {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
