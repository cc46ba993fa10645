//! Shared test helpers: changes made by automerge itself from edit scripts.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, Automerge, ObjType, ROOT, ReadDoc, TextEncoding};

/// A device's actor id: 32 bytes, as Moot's device keys are.
pub fn actor(n: u8) -> Vec<u8> {
    vec![n; 32]
}

/// A small deterministic generator (xorshift), so tests replay exactly from a seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

/// A pool of text snippets with tricky characters.
pub const SNIPPETS: &[&str] = &[
    "a",
    "Hello ",
    "é",
    "e\u{301}",
    "日本語",
    "🎉",
    "👩‍👩‍👧",
    "\n",
    "x🦀y",
    " ",
    "Ω≈ç√",
];

/// An automerge document (UTF-16 positions) with `n` changes from `actors` editing one text,
/// each change one splice; returns the doc and the raw bytes of every change in causal order.
pub fn edit_script(seed: u64, n: usize, actors: usize) -> (Automerge, Vec<Vec<u8>>) {
    let mut rng = Rng(seed | 1);
    let mut doc = Automerge::new_with_encoding(TextEncoding::Utf16CodeUnit)
        .with_actor(ActorId::from(actor(1)));
    let creator = moot_doc::creator_change(&actor(1), "Start").unwrap();
    doc.apply_changes([automerge::Change::try_from(&creator[..]).unwrap()])
        .unwrap();
    let text = match doc.get(ROOT, "text").unwrap().unwrap() {
        (automerge::Value::Object(ObjType::Text), id) => id,
        _ => panic!("no text"),
    };
    let mut out = vec![creator];
    for _ in 0..n {
        let a = 1 + rng.below(actors as u64) as u8;
        doc.set_actor(ActorId::from(actor(a)));
        let current = doc.text(&text).unwrap();
        let units: Vec<u16> = current.encode_utf16().collect();
        let mut pos = rng.below(units.len() as u64 + 1) as usize;
        while pos > 0 && pos < units.len() && (0xDC00..0xE000).contains(&units[pos]) {
            pos -= 1;
        }
        let mut del = if rng.below(3) == 0 {
            rng.below(4) as usize
        } else {
            0
        };
        del = del.min(units.len() - pos);
        while pos + del < units.len() && (0xDC00..0xE000).contains(&units[pos + del]) {
            del += 1;
        }
        let ins = SNIPPETS[rng.below(SNIPPETS.len() as u64) as usize];
        let mut tx = doc.transaction();
        tx.splice_text(&text, pos, del as isize, ins).unwrap();
        tx.commit_with(CommitOptions::default().with_time(0));
        out.push(doc.get_last_local_change().unwrap().raw_bytes().to_vec());
    }
    (doc, out)
}

/// The text of ROOT."text" in `doc`.
pub fn text_of(doc: &Automerge) -> String {
    let (_, id) = doc.get(ROOT, "text").unwrap().unwrap();
    doc.text(&id).unwrap()
}
