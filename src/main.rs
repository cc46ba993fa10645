//! `moot`: the command-line entry point. Parses arguments, runs the command, maps errors to exit
//! codes (1 = refused or failed, 2 = bad usage or bad input) and, with `--json`, to one JSON
//! object on stderr. Wiring only: the logic lives in the library crates under `crates/`.

mod bundle_cmd;
mod cli;
mod control;
mod delib_cmd;
mod demo_cmd;
mod http_cmd;
mod logs;
mod net_cmd;
mod node_cmd;
mod out;
mod poll_cmd;
mod tally_cmd;

use std::ffi::OsString;
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
    let args: Vec<OsString> = std::env::args_os().collect();
    if let Some(code) = forward_if_served(&args) {
        return ExitCode::from(code);
    }
    ExitCode::from(run_args(args, true, |_| {}))
}

/// Parses the arguments; `env`: whether flags may come from the environment (`MOOT_DATA`…) —
/// not for a command a running node runs for a client of its socket, whose environment is the
/// client's (see `control`).
fn parse(args: Vec<OsString>, env: bool) -> Result<Cli, clap::Error> {
    without_env(cli::command(), env)
        .try_get_matches_from(args)
        .and_then(|matches| Cli::from_arg_matches(&matches))
}

/// `command` with no flag read from the environment unless `env`, and none from a variable set
/// to nothing (`MOOT_DATA= moot …`, the shell's way to clear one: clap took it for the flag
/// given without its value), in every subcommand too.
fn without_env(command: clap::Command, env: bool) -> clap::Command {
    command
        .mut_args(|arg| {
            let empty = arg
                .get_env()
                .is_some_and(|name| std::env::var_os(name).is_some_and(|v| v.is_empty()));
            if !env || empty {
                arg.env(None::<&'static str>)
            } else {
                arg
            }
        })
        .mut_subcommands(|sub| without_env(sub, env))
}

/// If a node is running on the command's data directory (`moot serve`), the command runs there
/// (see `control`): its exit code. `None`: run it here.
fn forward_if_served(args: &[OsString]) -> Option<u8> {
    // Usage errors and `--help` are for `run_args`, here.
    let mut cli = parse(args.to_vec(), true).ok()?;
    // `tally` uses no node, `demo` nodes of its own.
    if matches!(cli.command, Command::Tally(_) | Command::Demo { .. }) {
        return None;
    }
    let dir = node_cmd::data_dir(&cli.global).ok()?;
    let forwarded = control::forward(&mut cli, &dir);
    // Notes held back here (`--json`: reading the passphrase file, say) go out as after a
    // command run here: after a success; in the error object of a failure here. (A failure the
    // node reports has its own error object on stderr: nothing may follow it.)
    let notes = out::take_notes();
    match forwarded {
        Ok(Some(code)) => {
            if code == 0 {
                print_notes(&notes);
            }
            Some(code)
        }
        Ok(None) => {
            // Run here after all: the notes are made again.
            None
        }
        Err(error) => {
            let kind = error_kind(&error);
            report(kind, &message(&error), &notes, cli.global.json);
            Some(if kind == "bad_input" { 2 } else { 1 })
        }
    }
}

/// Parses and runs a command, printing through `out` (so a running node can capture what a
/// command for a client prints); `adjust` may change the parsed command first. Returns the
/// exit code.
pub fn run_args(args: Vec<OsString>, env: bool, adjust: impl FnOnce(&mut Cli)) -> u8 {
    // Known before parsing, so that a usage error can be reported as JSON too.
    let json = json_requested(args.iter().cloned());
    let shown: Vec<OsString> = args.iter().skip(1).cloned().collect();
    let mut cli = match parse(args, env) {
        Ok(cli) => cli,
        // `--help` and `--version` are clap's own, on stdout.
        Err(error) if !error.use_stderr() => {
            let text = error.render().to_string();
            return match out::line(text.trim_end()) {
                Ok(()) => 0,
                Err(_) => 0,
            };
        }
        Err(error) => {
            let text = error.render().to_string();
            if json {
                let message = text.trim().trim_start_matches("error: ");
                report("usage", message, &[], true);
            } else {
                // clap quotes the arguments it complains about as they were typed: escape them
                // before its (multi-line) text reaches the terminal.
                out::err_text(&escape_args(&text, shown.into_iter()));
            }
            return 2;
        }
    };
    adjust(&mut cli);
    let json = cli.global.json;
    let result = run(cli);
    let notes = out::take_notes();
    match result {
        Ok(()) => {
            print_notes(&notes);
            0
        }
        Err(error) if error.downcast_ref::<out::StdoutClosed>().is_some() => {
            print_notes(&notes);
            0
        }
        Err(error) => {
            let kind = error_kind(&error);
            report(kind, &message(&error), &notes, json);
            if kind == "bad_input" { 2 } else { 1 }
        }
    }
}

/// Notes held back for `--json` (see [`out::note`]), after a command that succeeded: stdout
/// holds the JSON document, so they go to stderr as warning lines.
fn print_notes(notes: &[String]) {
    for note in notes {
        out::err_line(&format!("moot: warning: {}", moot_text::escape(note)));
    }
}

/// clap's usage error `text` made safe for a terminal. clap quotes the arguments it complains
/// about as typed (minus ANSI escape sequences, which it strips): every argument holding a
/// character unsafe for a terminal is replaced by its escaped form, as typed and as stripped,
/// so a line feed in one cannot start a line of its own; then each of clap's own lines is
/// escaped, for anything left.
fn escape_args(text: &str, args: impl Iterator<Item = OsString>) -> String {
    let mut text = text.to_string();
    for arg in args {
        let arg = arg.to_string_lossy().into_owned();
        for form in [strip_ansi(&arg), arg.clone()] {
            let escaped = moot_text::escape(&form);
            if !form.is_empty() && escaped != form {
                text = text.replace(&form, &escaped);
            }
        }
    }
    let lines: Vec<_> = text.split('\n').map(moot_text::escape).collect();
    lines.join("\n")
}

/// `text` without ANSI escape sequences (CSI `ESC [ … final`, OSC `ESC ] … BEL|ESC \\`, and
/// two-character `ESC x`), as clap strips them from what it prints.
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.next_if_eq(&'\\').is_some()) {
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

/// One line of text for an error: its causes joined by ": ", a cause left out when the one
/// before already ends with its text (an IO error shown by its wrapper and again as its source
/// would read "Is a directory (os error 21): Is a directory (os error 21)").
fn message(error: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || parts.last().is_some_and(|last| last.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
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
    use moot_node::NodeError as E;
    if error.downcast_ref::<BadInput>().is_some() {
        return "bad_input";
    }
    for cause in error.chain() {
        if let Some(node) = cause.downcast_ref::<E>() {
            match node {
                // Understood and not allowed: validation, the node's own roll rules, keys.
                E::Refused(_)
                | E::LastSteward(_)
                | E::AlreadyOnRoll { .. }
                | E::NotOnRoll(_)
                | E::AlreadyProtected(_)
                | E::AlreadyInitialised(_)
                | E::Keystore { .. }
                | E::Automatic(_)
                | E::PollNotOpenYet(_)
                | E::EmptyElectorate(_)
                | E::NotAMember { .. }
                | E::ObjectionStands(_)
                | E::AidClosed { .. }
                | E::NotFulfilled(_)
                | E::DeviceRevoked(_)
                | E::RevokingOwnDevice(_)
                | E::DeviceUsedElsewhere { .. }
                | E::BadBundle(_)
                | E::Incomplete(_)
                | E::NotInElectorate(_) => return "refused",
                E::NotInitialised
                | E::NoSuchPoll(_)
                | E::NoSuchAssembly(_)
                | E::NoSuchProposal(_)
                | E::NoSuchComment(_)
                | E::NoSuchAmendment(_)
                | E::NoSuchItem(_)
                | E::NoSuchPledge(_)
                | E::UnknownBase
                | E::UnknownDevice(_)
                | E::NoSuchConstituency { .. }
                | E::NoNode { .. }
                | E::UnknownKey(_)
                | E::NoHub
                | E::NoDefaultHub
                | E::UnknownHub(_) => return "not_found",
                // A file moot wrote is not what it wrote: not fixed by trying again.
                E::StoreDamaged { .. }
                | E::KeysDamaged { .. }
                | E::StoredOpRefused { .. }
                | E::Corrupt(_)
                | E::StoreMissing(_) => return "damaged",
                E::NotAFile { .. } | E::NotPrivate { .. } => return "io",
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

/// Writes an error to stderr: one JSON object with `--json` (held-back notes in `"notes"`),
/// otherwise the notes as `moot: warning:` lines and one `moot: error:` line, with every
/// control, bidi or invisible character escaped (error messages quote file names, option names
/// and other text we do not control; our own messages are one line, so a line break in one is
/// always someone's text). Never panics: a closed stderr leaves nothing else to do.
fn report(kind: &str, message: &str, notes: &[String], json: bool) {
    if json {
        let mut error = serde_json::json!({"kind": kind, "message": message});
        if !notes.is_empty() {
            error["notes"] = serde_json::json!(notes);
        }
        let value = serde_json::json!({ "error": error });
        out::err_line(&value.to_string());
    } else {
        print_notes(notes);
        out::err_line(&format!("moot: error: {}", moot_text::escape(message)));
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
        Command::Assembly { command } => poll_cmd::assembly(global, command),
        Command::Assemblies => poll_cmd::assemblies(global),
        Command::Poll { command } => poll_cmd::poll(global, command),
        Command::Polls => poll_cmd::polls(global),
        Command::Proposal { command } => delib_cmd::proposal(global, command),
        Command::Proposals => delib_cmd::proposals(global),
        Command::Aid { command } => delib_cmd::aid(global, command),
        Command::Bundle { command } => bundle_cmd::bundle(global, command),
        Command::Merges => bundle_cmd::merges(global),
        Command::Serve {
            listen,
            peer,
            no_mdns,
            relay,
            external,
            http,
            no_http,
            http_host,
        } => net_cmd::serve(
            global,
            &net_cmd::ServeArgs {
                listen,
                peers: peer,
                mdns: !*no_mdns,
                relay: *relay,
                external,
                http: http.as_deref(),
                no_http: *no_http,
                http_hosts: http_host,
            },
        ),
        Command::Peers => net_cmd::peers(global),
        Command::Activity { limit } => node_cmd::activity(global, *limit),
        Command::Sync { peer, timeout } => net_cmd::sync(global, peer, *timeout),
        Command::Vote { poll_id, scores } => poll_cmd::vote(global, poll_id, scores),
        Command::Demo { dir } => demo_cmd::demo(global, dir.as_deref()),
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
    fn usage_errors_quote_arguments_escaped() {
        // As clap prints it: the ANSI sequence stripped, the CR/LF kept.
        let text = "error: invalid value 'a\r\nb' for '--role'\n\nUsage: moot\n";
        let escaped = escape_args(text, args(&["--role", "a\r\n\u{1b}[2Kb"]));
        assert_eq!(
            escaped,
            "error: invalid value 'a\\r\\nb' for '--role'\n\nUsage: moot\n"
        );
        assert_eq!(strip_ansi("x\u{1b}]0;title\u{7}y\u{1b}[1;31mz"), "xyz");
    }

    #[test]
    fn a_cause_repeated_by_its_wrapper_is_said_once() {
        let io = std::io::Error::other("Is a directory (os error 21)");
        let error =
            anyhow::Error::new(io).context("opening the store: Is a directory (os error 21)");
        let error = error.context("opening the node at d");
        assert_eq!(
            message(&error),
            "opening the node at d: opening the store: Is a directory (os error 21)"
        );
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
