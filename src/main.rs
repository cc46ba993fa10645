//! `moot`: the command-line entry point. Parses arguments, runs the command, maps errors to exit
//! codes (1 = refused or failed, 2 = bad usage or bad input). Wiring only: the logic lives in
//! the library crates under `crates/`.

mod cli;
mod node_cmd;
mod out;
mod tally_cmd;

use std::process::ExitCode;

use clap::Parser;

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
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) if error.downcast_ref::<out::StdoutClosed>().is_some() => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("moot: error: {error:#}");
            if error.downcast_ref::<BadInput>().is_some() {
                ExitCode::from(2)
            } else {
                ExitCode::from(1)
            }
        }
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
