//! `moot`: the command-line entry point. Parses arguments, runs the command, maps errors to exit
//! codes (1 = refused or failed, 2 = bad usage or bad input) and, with `--json`, to one JSON
//! object on stderr. Wiring only: the logic lives in the library crates under `crates/`.

mod cli;
mod node_cmd;
mod out;
mod tally_cmd;

use std::ffi::OsString;
use std::io::Write as _;
use std::process::ExitCode;

use clap::FromArgMatches as _;

use cli::{Cli, Command};

/// Wraps an error caused by bad input or bad usage (exit code 2) rather than a failure (1).
/// Transparent: it displays as, and has the sources of, the error it wraps.
#[derive(Debug)]
pub struct BadInput(pub anyhow::Error);

impl std::fmt::Display for BadInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for BadInput {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

/// Marks an error as bad input (exit code 2).
pub fn bad_input(error: anyhow::Error) -> anyhow::Error {
    anyhow::Error::new(BadInput(error))
}

fn main() -> ExitCode {
    // Known before parsing, so that a usage error can be reported as JSON too.
    let json = json_requested(std::env::args_os());
    let parsed = cli::command()
        .try_get_matches()
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        // `--help` and `--version` (and every usage error without `--json`) are clap's own.
        Err(error) if !json || !error.use_stderr() => error.exit(),
        Err(error) => {
            let text = error.render().to_string();
            let message = text.trim().trim_start_matches("error: ");
            report("usage", message, true);
            return ExitCode::from(2);
        }
    };
    let json = cli.global.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<out::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(error) => {
            let kind = error_kind(&error);
            report(kind, &format!("{error:#}"), json);
            if kind == "bad_input" {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
    }
}

/// True when `--json` appears among the arguments (before a `--`, after which everything is a
/// value).
fn json_requested(args: impl Iterator<Item = OsString>) -> bool {
    args.skip(1)
        .take_while(|arg| arg != "--")
        .any(|arg| arg == "--json")
}

/// The error kinds of the JSON error form (`docs/CLI.md`): a small fixed set derived from the
/// error, so scripts can branch on them. `usage` (a clap error) is decided before this.
fn error_kind(error: &anyhow::Error) -> &'static str {
    if error.downcast_ref::<BadInput>().is_some() {
        return "bad_input";
    }
    for cause in error.chain() {
        if let Some(node) = cause.downcast_ref::<moot_node::NodeError>() {
            match node {
                moot_node::NodeError::Refused(_)
                | moot_node::NodeError::AlreadyInitialised(_)
                | moot_node::NodeError::Keystore { .. } => return "refused",
                moot_node::NodeError::NotInitialised
                | moot_node::NodeError::UnknownKey(_)
                | moot_node::NodeError::NoHub
                | moot_node::NodeError::UnknownHub(_) => return "not_found",
                _ => {}
            }
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return if io.kind() == std::io::ErrorKind::NotFound {
                "not_found"
            } else {
                "io"
            };
        }
    }
    "failed"
}

/// Writes an error to stderr: one JSON object with `--json`, otherwise a `moot: error:` line
/// with every control or bidi character escaped (error messages quote option names, file names
/// and other text we do not control; line breaks we put there ourselves are kept). Never panics:
/// a closed stderr leaves nothing else to do.
fn report(kind: &str, message: &str, json: bool) {
    let mut stderr = std::io::stderr().lock();
    if json {
        let value = serde_json::json!({"error": {"kind": kind, "message": message}});
        let _ = writeln!(stderr, "{value}");
    } else {
        let escaped: Vec<_> = message.split('\n').map(moot_text::escape).collect();
        let _ = writeln!(stderr, "moot: error: {}", escaped.join("\n"));
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match &cli.command {
        Command::Tally(args) => tally_cmd::run(args, global.json),
        Command::Init { name } => node_cmd::init(global, name),
        Command::Id => node_cmd::id(global),
        Command::Key { command } => node_cmd::key(global, command),
        Command::Keys => node_cmd::keys(global),
        Command::Hub { command } => node_cmd::hub(global, command),
        Command::Hubs => node_cmd::hubs(global),
        Command::Member { command } => node_cmd::member(global, command),
        Command::Members => node_cmd::members(global),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = OsString> {
        list.iter()
            .map(OsString::from)
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn json_is_found_anywhere_before_a_double_dash() {
        assert!(json_requested(args(&["moot", "tally", "--json", "x"])));
        assert!(json_requested(args(&["moot", "--json", "tally"])));
        assert!(!json_requested(args(&["moot", "tally", "--", "--json"])));
        assert!(
            !json_requested(args(&["--json", "tally"])),
            "argv[0] is the program"
        );
    }
}
