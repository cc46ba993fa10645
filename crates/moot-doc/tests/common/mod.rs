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

/// Splits a change chunk into (chunk type, body).
pub fn split_chunk(bytes: &[u8]) -> (u8, Vec<u8>) {
    assert_eq!(&bytes[..4], &moot_doc::MAGIC);
    let ty = bytes[8];
    let mut i = 9;
    let mut len: u64 = 0;
    let mut shift = 0;
    loop {
        let b = bytes[i];
        i += 1;
        len |= u64::from(b & 0x7f) << shift;
        shift += 7;
        if b & 0x80 == 0 {
            break;
        }
    }
    assert_eq!(bytes.len() - i, len as usize);
    (ty, bytes[i..].to_vec())
}

/// A chunk of type `ty` around `body`, with a valid checksum.
pub fn make_chunk(ty: u8, body: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let mut len = Vec::new();
    uleb(body.len() as u64, &mut len);
    let mut h = Sha256::new();
    h.update([ty]);
    h.update(&len);
    h.update(body);
    let hash: [u8; 32] = h.finalize().into();
    let mut out = moot_doc::MAGIC.to_vec();
    out.extend_from_slice(&hash[..4]);
    out.push(ty);
    out.extend_from_slice(&len);
    out.extend_from_slice(body);
    out
}

/// Appends the uLEB128 of `v`.
pub fn uleb(mut v: u64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// Appends the sLEB128 of `v`.
pub fn sleb(mut v: i64, out: &mut Vec<u8>) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if (v == 0 && b & 0x40 == 0) || (v == -1 && b & 0x40 != 0) {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// A change body from its parts: `columns` are (spec, data) pairs in order.
pub fn change_body(
    deps: &[[u8; 32]],
    actor: &[u8],
    seq: u64,
    start_op: u64,
    columns: &[(u32, Vec<u8>)],
) -> Vec<u8> {
    let mut b = Vec::new();
    uleb(deps.len() as u64, &mut b);
    for d in deps {
        b.extend_from_slice(d);
    }
    uleb(actor.len() as u64, &mut b);
    b.extend_from_slice(actor);
    uleb(seq, &mut b);
    uleb(start_op, &mut b);
    sleb(0, &mut b); // time
    uleb(0, &mut b); // message
    uleb(0, &mut b); // other actors
    uleb(columns.len() as u64, &mut b);
    for (spec, data) in columns {
        uleb(u64::from(*spec), &mut b);
        uleb(data.len() as u64, &mut b);
    }
    for (_, data) in columns {
        b.extend_from_slice(data);
    }
    b
}

/// An RLE run of `n` copies of the uLEB value `v`.
pub fn run_u(n: i64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    sleb(n, &mut out);
    uleb(v, &mut out);
    out
}

/// An RLE run of `n` copies of the sLEB value `v`.
pub fn run_s(n: i64, v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    sleb(n, &mut out);
    sleb(v, &mut out);
    out
}

/// The op columns of a change of `n` deletes of consecutive elements of object `1@actor0`
/// (all on one run header per column: a few bytes whatever `n` is).
pub fn delete_columns(n: i64) -> Vec<(u32, Vec<u8>)> {
    let mut insert = Vec::new();
    uleb(n as u64, &mut insert);
    vec![
        (0x01, run_u(n, 0)),  // obj actor
        (0x02, run_u(n, 1)),  // obj counter
        (0x11, run_u(n, 0)),  // key actor
        (0x13, delta_run(n)), // key counter (delta)
        (0x34, insert),       // insert: all false
        (0x42, run_u(n, 3)),  // action: delete
        (0x56, run_u(n, 0)),  // value metadata: null (no raw value bytes)
        (0x70, run_u(n, 1)),  // pred group: one pred each
        (0x71, run_u(n, 0)),  // pred actor
        (0x73, delta_run(n)), // pred counter (delta)
    ]
}

/// A delta column 2, 3, 4, ... of `n` rows.
fn delta_run(n: i64) -> Vec<u8> {
    let mut v = run_s(1, 2);
    if n > 1 {
        v.extend(run_s(n - 1, 1));
    }
    v
}
