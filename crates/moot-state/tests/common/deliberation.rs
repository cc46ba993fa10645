//! Fixtures for proposal and aid-board tests: proposing, editing a proposal's document as a
//! node does (naming the right deps), materialising it from the replica's ops, and hand-built
//! automerge change chunks for attacks (the technique of `moot-doc`'s prescan tests).

use moot_crypto::{Lane, OpId};
use moot_doc::Document;
use moot_state::body::{
    AidDetails, AssemblyRef, CreateProposal, Decide, DocChange, Outcome, Stance, StanceKind,
};
use moot_state::{Body, Denied, Reason, Replica};

use super::Person;
use super::polls::{Hall, try_write, write};

pub fn propose(hall: &mut Hall, by: &Person, text: &str) -> OpId {
    let change = moot_doc::creator_change(&by.device.public().to_bytes(), text).unwrap();
    write(
        &mut hall.replica,
        &by.device,
        Lane::Members,
        Body::CreateProposal(CreateProposal {
            assembly: AssemblyRef::Policy,
            title: "Open the hall on Sundays".into(),
            change,
        }),
        &[],
    )
}

/// The changes of document `doc` as the replica holds them, in its causal order, each with
/// the op carrying it (ops retained whole in tests).
pub fn doc_change_bytes(replica: &mut Replica, doc: &OpId) -> Vec<(OpId, Vec<u8>)> {
    replica
        .doc_changes(doc)
        .iter()
        .map(|c| {
            let op = replica.op(&c.op).unwrap();
            let change = match Body::decode(op.kind(), op.body()).unwrap() {
                Body::CreateProposal(p) => p.change,
                Body::DocChange(d) => d.change,
                other => panic!("not a change: {other:?}"),
            };
            (c.op, change)
        })
        .collect()
}

/// The document as the replica's changes make it, with the changes automerge left out.
pub fn materialise_with_exclusions(
    replica: &mut Replica,
    doc: &OpId,
) -> (Document, Vec<moot_doc::Excluded>) {
    let bytes = doc_change_bytes(replica, doc);
    let mut document = Document::from_creator(&bytes[0].1).unwrap();
    let batch: Vec<([u8; 32], &[u8])> = bytes.iter().map(|(id, b)| (id.0, b.as_slice())).collect();
    let excluded = document.apply(&batch);
    (document, excluded)
}

/// The document as the replica's changes make it (none left out).
pub fn materialise(replica: &mut Replica, doc: &OpId) -> Document {
    let (document, excluded) = materialise_with_exclusions(replica, doc);
    assert!(excluded.is_empty(), "{excluded:?}");
    document
}

/// Writes an edit by `who` on the document as `who`'s replica holds it.
pub fn edit(replica: &mut Replica, who: &Person, doc: &OpId, pos: usize, insert: &str) -> OpId {
    try_edit(replica, who, doc, pos, insert).unwrap()
}

pub fn try_edit(
    replica: &mut Replica,
    who: &Person,
    doc: &OpId,
    pos: usize,
    insert: &str,
) -> Result<OpId, Reason> {
    let mut document = materialise(replica, doc);
    let actor = who.device.public().to_bytes();
    let change = document.edit(&actor, pos, 0, insert).unwrap();
    let info = moot_doc::prescan(&change, &moot_doc::Limits::default()).unwrap();
    let mut refs = vec![*doc];
    for dep in &info.deps {
        refs.push(OpId(document.key_of(dep).unwrap()));
    }
    // The device's previous change to the document.
    for c in replica.doc_changes(doc) {
        let op = replica.op(&c.op).unwrap();
        let bytes = match Body::decode(op.kind(), op.body()).unwrap() {
            Body::CreateProposal(p) => p.change,
            Body::DocChange(d) => d.change,
            _ => continue,
        };
        let other = moot_doc::prescan(&bytes, &moot_doc::Limits::default()).unwrap();
        if other.actor == actor && other.seq + 1 == info.seq {
            refs.push(c.op);
        }
    }
    refs.sort();
    refs.dedup();
    try_write(
        replica,
        &who.device,
        Lane::Members,
        Body::DocChange(DocChange { doc: *doc, change }),
        &refs,
    )
}

pub fn stance(
    replica: &mut Replica,
    who: &Person,
    doc: &OpId,
    revision: u32,
    s: StanceKind,
) -> OpId {
    write(
        replica,
        &who.device,
        Lane::Members,
        Body::Stance(Stance {
            proposal: *doc,
            revision,
            stance: s,
            reason: "because".into(),
        }),
        &[*doc],
    )
}

pub fn decide(
    replica: &mut Replica,
    who: &Person,
    doc: &OpId,
    outcome: Outcome,
) -> Result<OpId, Reason> {
    try_write(
        replica,
        &who.device,
        Lane::Members,
        Body::Decide(Decide {
            proposal: *doc,
            outcome,
        }),
        &[*doc],
    )
}

pub fn denied(result: Result<OpId, Reason>) -> Denied {
    match result {
        Err(Reason::Unauthorized(d)) => d,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

pub fn details(title: &str) -> AidDetails {
    AidDetails {
        title: title.into(),
        description: String::new(),
        category: "Tools".into(),
        area: Some("E1".into()),
        from: None,
        until: None,
        quantity: None,
    }
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

fn run_u(n: i64, v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    sleb(n, &mut out);
    uleb(v, &mut out);
    out
}

fn run_s(n: i64, v: i64) -> Vec<u8> {
    let mut out = Vec::new();
    sleb(n, &mut out);
    sleb(v, &mut out);
    out
}

fn delta_run(n: i64) -> Vec<u8> {
    let mut v = run_s(1, 2);
    if n > 1 {
        v.extend(run_s(n - 1, 1));
    }
    v
}

/// The op columns of a change of `n` deletes of consecutive elements of object `1@actor0`
/// (one RLE run per column: a few bytes whatever `n` is).
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
        (0x56, run_u(n, 0)),  // value metadata: null
        (0x70, run_u(n, 1)),  // pred group: one pred each
        (0x71, run_u(n, 0)),  // pred actor
        (0x73, delta_run(n)), // pred counter (delta)
    ]
}
