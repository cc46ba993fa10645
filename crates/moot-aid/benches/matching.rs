//! Criterion benchmarks of matching one target against 10,000 items, with two baselines
//! measured in the same run: cloning the items, and a plain linear scan comparing raw strings.
//!
//! `CARGO_TARGET_DIR=… cargo bench -p moot-aid --bench matching`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use moot_aid::matching::{Board, ItemKind, ItemView, Status, Window, matches};

const NOW: u64 = 1_800_000_000;
const ITEMS: usize = 10_000;
const LIMIT: usize = 20;

/// SplitMix64: a tiny seeded generator so every run benchmarks the same items.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const CATEGORIES: [&str; 12] = [
    "Food",
    "food",
    "FOOD ",
    "Lifts",
    "DIY",
    "Childcare",
    "Clothes",
    "Furniture",
    "Gardening",
    "Tech help",
    "Pet care",
    "Café visits",
];

/// `count` items: categories from [`CATEGORIES`] (or all "food" when `one_category`), areas a
/// mix of districts (`E1`), full postcodes (`E1 6AN`) and none, windows around `NOW`.
fn items(count: usize, one_category: bool) -> Vec<ItemView> {
    let mut rng = SplitMix(42);
    (0..count)
        .map(|_| {
            let mut id = [0u8; 32];
            for chunk in id.chunks_mut(8) {
                chunk.copy_from_slice(&rng.next().to_le_bytes());
            }
            let district = format!("E{}", rng.below(20));
            let area = match rng.below(3) {
                0 => None,
                1 => Some(district),
                _ => Some(format!("{district} {}AN", rng.below(10))),
            };
            let from = NOW - 86_400 + rng.below(30 * 86_400);
            let status = match rng.below(10) {
                0 => Status::Fulfilled,
                1 => Status::Pledged,
                2 => Status::Withdrawn,
                _ => Status::Open,
            };
            ItemView {
                id,
                kind: if rng.below(2) == 0 {
                    ItemKind::Offer
                } else {
                    ItemKind::Request
                },
                status,
                category: if one_category {
                    "food".to_string()
                } else {
                    CATEGORIES[rng.below(CATEGORIES.len() as u64) as usize].to_string()
                },
                area,
                window: Window {
                    from: Some(from),
                    until: Some(from + rng.below(14 * 86_400)),
                },
                quantity: (rng.below(2) == 0).then(|| rng.below(10) as u32 + 1),
                pledged: 0,
                author: [rng.below(500) as u8; 32],
            }
        })
        .collect()
}

/// A request for food in E3 next week.
fn target() -> ItemView {
    ItemView {
        id: [0xff; 32],
        kind: ItemKind::Request,
        status: Status::Open,
        category: "Food".to_string(),
        area: Some("E3 2AN".to_string()),
        window: Window {
            from: Some(NOW + 7 * 86_400),
            until: Some(NOW + 9 * 86_400),
        },
        quantity: Some(2),
        pledged: 0,
        author: [0xaa; 32],
    }
}

/// The baseline: one full pass comparing raw strings, no folding, no ranking.
fn linear_scan(target: &ItemView, items: &[ItemView], now: u64) -> Vec<[u8; 32]> {
    let mut found: Vec<[u8; 32]> = items
        .iter()
        .filter(|item| {
            item.kind != target.kind
                && item.status == Status::Open
                && item.author != target.author
                && item.window.until.is_none_or(|until| until >= now)
                && item.category == target.category
        })
        .map(|item| item.id)
        .collect();
    found.truncate(LIMIT);
    found
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("matching_10k");
    group.sample_size(30);
    for (name, one_category) in [("mixed", false), ("one_category", true)] {
        let mut all = items(ITEMS, one_category);
        all.push(target());
        let board = Board::new(all.clone());
        assert_eq!(board.matches(&target().id, NOW, LIMIT).len(), LIMIT);
        group.bench_function(format!("{name}/board_query"), |b| {
            b.iter(|| board.matches(black_box(&target().id), black_box(NOW), LIMIT))
        });
        group.bench_function(format!("{name}/matches_unindexed"), |b| {
            b.iter(|| matches(black_box(&target()), black_box(&all), NOW, LIMIT))
        });
        group.bench_function(format!("{name}/board_new"), |b| {
            b.iter(|| Board::new(black_box(&all).clone()))
        });
        group.bench_function(format!("{name}/baseline_clone_items"), |b| {
            b.iter(|| black_box(&all).clone())
        });
        group.bench_function(format!("{name}/baseline_linear_scan_raw"), |b| {
            b.iter(|| linear_scan(black_box(&target()), black_box(&all), NOW))
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
