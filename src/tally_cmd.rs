//! `moot tally`: read a ballot file straight into counts, count it, print the report.

use std::fs::File;
use std::io::{self, Read};

use anyhow::Context as _;
use moot_star::input::{InputError, Layout, ReadOptions, read_summary};
use moot_star::report::{Report, render_text};
use moot_star::{Config, Seed, default_seed, tally};

use crate::bad_input;
use crate::cli::TallyArgs;
use crate::out;

pub fn run(args: &TallyArgs, json: bool) -> anyhow::Result<()> {
    let seed = match &args.seed {
        Some(text) => Some(text.parse::<Seed>().context("--seed").map_err(bad_input)?),
        None => None,
    };
    let reader: Box<dyn Read> = if args.file.as_os_str() == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(&args.file)
            .with_context(|| format!("cannot open {}", args.file.display()))?;
        // No BufReader: the ballot reader keeps its own 256 KiB buffer.
        Box::new(file)
    };
    let source = args.file.display().to_string();
    let options = match &args.race {
        Some(race) => ReadOptions::race(race.as_str()),
        None => ReadOptions::default(),
    };
    // Ballots are folded into a summary as they are read, never kept: memory stays flat
    // however large the file, and the summary tallies exactly as the ballots would.
    let read = read_summary(reader, &options).map_err(|error| {
        let is_bad_input = !matches!(error, InputError::Io(_));
        let error = anyhow::Error::new(error).context(source.clone());
        if is_bad_input {
            crate::bad_input(error)
        } else {
            error
        }
    })?;
    let seats = usize::try_from(args.seats).context("--seats")?;
    let config = Config {
        seats,
        seed: seed.unwrap_or_else(|| default_seed(&read.summary)),
    };
    let result = tally(&read.summary, &config)
        .with_context(|| format!("counting {source}"))
        .map_err(bad_input)?;
    if json {
        let report = Report::new(&result);
        out::line(&serde_json::to_string_pretty(&report)?)?;
    } else {
        out::line(render_text(&result).trim_end_matches('\n'))?;
        let race = match &read.race {
            Some(race) => format!(", race \"{}\"", moot_text::escape(race)),
            None => String::new(),
        };
        if read.layout != Layout::Plain {
            out::line(&format!("(read as a {}{race})", read.layout.as_str()))?;
        }
    }
    Ok(())
}
