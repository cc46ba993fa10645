//! Criterion benchmarks of the tally core: counting raw ballots, building precinct summaries,
//! tallying merged summaries and parsing a ballot CSV. Figures go in `docs/BENCHMARKS.md`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use moot_star::input::{ReadOptions, read_ballots, read_summary};
use moot_star::{Ballots, Config, Seed, Summary, tally};

/// SplitMix64: a tiny seeded generator so every run benchmarks the same ballots.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

fn ballots(count: usize, options: usize) -> Ballots {
    let names = (0..options).map(|i| format!("Option{i}")).collect();
    let mut ballots = Ballots::new(names).unwrap();
    let mut rng = SplitMix(42);
    let mut row = vec![0u8; options];
    for _ in 0..count {
        for score in row.iter_mut() {
            *score = (rng.next() % 6) as u8;
        }
        ballots.push(&row).unwrap();
    }
    ballots
}

fn csv_text(count: usize, options: usize) -> Vec<u8> {
    let mut rng = SplitMix(7);
    let mut text = (0..options)
        .map(|i| format!("Option{i}"))
        .collect::<Vec<_>>()
        .join(",");
    text.push('\n');
    let mut bytes = text.into_bytes();
    for _ in 0..count {
        for o in 0..options {
            if o > 0 {
                bytes.push(b',');
            }
            bytes.push(b'0' + (rng.next() % 6) as u8);
        }
        bytes.push(b'\n');
    }
    bytes
}

fn bench(c: &mut Criterion) {
    let seed = Seed([0; 32]);
    let million = ballots(1_000_000, 10);

    let mut group = c.benchmark_group("tally");
    group.sample_size(20);
    group.bench_function("star_1m_ballots_10_options", |b| {
        b.iter(|| {
            let counts = black_box(&million).counts();
            tally(&counts, &Config::single_winner(seed)).unwrap()
        })
    });
    group.bench_function("bloc3_1m_ballots_10_options", |b| {
        b.iter(|| {
            let counts = black_box(&million).counts();
            tally(&counts, &Config { seats: 3, seed }).unwrap()
        })
    });
    group.bench_function("summary_from_1m_ballots_10_options", |b| {
        b.iter(|| Summary::from_ballots(black_box(&million)))
    });
    let summary = Summary::from_ballots(&million);
    group.bench_function("star_from_summary_10_options", |b| {
        b.iter(|| tally(black_box(&summary), &Config::single_winner(seed)).unwrap())
    });
    group.finish();

    let text = csv_text(1_000_000, 5);
    let mut group = c.benchmark_group("input");
    group.sample_size(10);
    group.bench_function("parse_csv_1m_ballots_5_options", |b| {
        b.iter(|| read_ballots(black_box(text.as_slice())).unwrap())
    });
    // What `moot tally` does: read straight into a summary, keeping no ballots.
    group.bench_function("parse_csv_to_summary_1m_ballots_5_options", |b| {
        b.iter(|| read_summary(black_box(text.as_slice()), &ReadOptions::default()).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
