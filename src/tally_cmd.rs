//! `moot tally`: read a ballot file, count it, print the report.

use std::fs::File;
use std::io::{self, Read};

use anyhow::Context as _;
use moot_star::input::read_ballots;
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
    let parsed = read_ballots(reader).map_err(|error| {
        let is_bad_input = !matches!(error, moot_star::input::InputError::Io(_));
        let error = anyhow::Error::new(error).context(source.clone());
        if is_bad_input {
            crate::bad_input(error)
        } else {
            error
        }
    })?;
    let counts = parsed.ballots.counts();
    let seats = usize::try_from(args.seats).context("--seats")?;
    let config = Config {
        seats,
        seed: seed.unwrap_or_else(|| default_seed(&counts)),
    };
    let result = tally(&counts, &config)
        .with_context(|| format!("counting {source}"))
        .map_err(bad_input)?;
    if json {
        let report = Report::new(&result);
        out::line(&serde_json::to_string_pretty(&report)?)?;
    } else {
        out::line(render_text(&result).trim_end_matches('\n'))?;
        if parsed.layout != moot_star::input::Layout::Plain {
            out::line(&format!("(read as a {})", parsed.layout.as_str()))?;
        }
    }
    Ok(())
}
