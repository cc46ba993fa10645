//! moot-doc against bare automerge: (a) opening a 50 KB proposal built from 5,000 edits
//! (`Document::load` vs `Automerge::load`), and (b) applying 1,000 changes (our `prescan` +
//! `Document::apply` vs automerge's `apply_changes` of the same unsigned changes).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;

use automerge::{Automerge, LoadOptions, TextEncoding};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use moot_doc::{Document, Key, Limits, creator_change};

/// xorshift, so the edit script is the same on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        if n == 0 {
            0
        } else {
            (self.0 % n as u64) as usize
        }
    }
}

const WORDS: &[&str] = &[
    "members ",
    "the motion ",
    "vote 🗳️ ",
    "assemblée générale ",
    "総会の日程 ",
    "amended ",
    "quorum ",
];

/// A proposal edited `n` times by 5 devices (mostly inserts, some deletes); returns the
/// creator change, the document, and every later change in order.
fn proposal(n: usize) -> (Vec<u8>, Document, Vec<Vec<u8>>) {
    let creator = creator_change(&[1; 32], "Proposal\n").unwrap();
    let mut doc = Document::from_creator(&creator).unwrap();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut changes = Vec::with_capacity(n);
    for _ in 0..n {
        let actor = [1 + rng.below(5) as u8; 32];
        let text: Vec<u16> = doc.text().encode_utf16().collect();
        let mut pos = rng.below(text.len() + 1);
        while pos > 0 && pos < text.len() && (0xDC00..0xE000).contains(&text[pos]) {
            pos -= 1;
        }
        let del = if rng.below(5) == 0 && pos + 3 <= text.len() {
            let mut d = 3;
            while pos + d < text.len() && (0xDC00..0xE000).contains(&text[pos + d]) {
                d += 1;
            }
            d
        } else {
            0
        };
        let word = WORDS[rng.below(WORDS.len())];
        changes.push(doc.edit(&actor, pos, del, word).unwrap());
    }
    (creator, doc, changes)
}

fn open(c: &mut Criterion) {
    let (_, doc, _) = proposal(5_000);
    let saved = doc.save();
    eprintln!(
        "proposal: {} bytes of UTF-8 text ({} UTF-16 units), {} changes, {} bytes saved",
        doc.text().len(),
        doc.len_utf16(),
        doc.change_count(),
        saved.len()
    );
    let mut g = c.benchmark_group("open_50kb_5000_edits");
    g.sample_size(20);
    g.bench_function("moot_doc_load", |b| {
        b.iter(|| Document::load(black_box(&saved), &Limits::default()).unwrap())
    });
    g.bench_function("automerge_load", |b| {
        b.iter(|| {
            Automerge::load_with_options(
                black_box(&saved),
                LoadOptions::new().text_encoding(TextEncoding::Utf16CodeUnit),
            )
            .unwrap()
        })
    });
    g.finish();
}

fn apply(c: &mut Criterion) {
    let (creator, _, changes) = proposal(1_000);
    let keyed: Vec<(Key, &[u8])> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut k = [0u8; 32];
            k[..8].copy_from_slice(&(i as u64).to_be_bytes());
            (k, &c[..])
        })
        .collect();
    let base = Document::from_creator(&creator).unwrap();
    let mut am_base = Automerge::new_with_encoding(TextEncoding::Utf16CodeUnit);
    am_base
        .apply_changes([automerge::Change::try_from(&creator[..]).unwrap()])
        .unwrap();
    let mut g = c.benchmark_group("apply_1000_changes");
    g.sample_size(20);
    g.bench_function("moot_doc_prescan_apply", |b| {
        b.iter_batched(
            || base.clone(),
            |mut doc| {
                let excluded = doc.apply(black_box(&keyed));
                assert!(excluded.is_empty());
                doc
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("automerge_apply_changes", |b| {
        b.iter_batched(
            || am_base.clone(),
            |mut doc| {
                let parsed: Vec<automerge::Change> = changes
                    .iter()
                    .map(|c| automerge::Change::try_from(&c[..]).unwrap())
                    .collect();
                doc.apply_changes(parsed).unwrap();
                doc
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, open, apply);
criterion_main!(benches);
