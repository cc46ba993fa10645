//! The pre-scan: one automerge change chunk read by our own code, with bounded work, before
//! automerge sees its bytes.
//!
//! # The problem
//! automerge trusts its input. It inflates a compressed chunk (chunk type 2, or a column with
//! the DEFLATE bit) with no size limit, and it walks every op of a change while parsing it: the
//! op columns are run-length encoded, so a 148-byte change can claim 100,000 deletes and cost
//! as much as a change that really holds them.
//!
//! # The rule
//! [`prescan`] accepts exactly one uncompressed change chunk that fills its input, with a valid
//! checksum, and counts the rows of every op column from the run headers alone (never
//! materialising a value), stopping as soon as a count passes [`Limits::max_ops`]. Its work is
//! linear in the input length and it allocates only the [`ChangeInfo`] it returns (whose size
//! is bounded by the input). A change that passes can be handed to automerge: automerge's work
//! on it is then bounded by the op limit.
//!
//! The format is automerge's (see `src/storage/chunk.rs`, `src/storage/change.rs` and
//! `src/columnar/encoding/` in automerge 0.12, and the binary format specification):
//!
//! ```text
//! chunk  := magic(85 6f 4a 83) checksum(4) type(1) len(uLEB) body(len)
//! body   := deps(uLEB n, n × 32-byte hash) actor(uLEB len, bytes) seq(uLEB) start_op(uLEB)
//!           time(sLEB) message(uLEB len, UTF-8) other_actors(uLEB n, n × (uLEB len, bytes))
//!           columns(uLEB n, n × (spec uLEB u32, data_len uLEB)) column data  extra bytes
//! hash   := SHA-256(type ‖ uLEB(len) ‖ body); checksum = hash[0..4]
//! ```

use sha2::{Digest, Sha256};

use crate::leb::{Reader, Short, write_uleb};

/// The four bytes every automerge chunk starts with.
pub const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED: u8 = 2;

/// The column spec bit that marks DEFLATE-compressed column data.
const DEFLATE_BIT: u32 = 0b1000;

/// The action column (id 4, type Integer): one row per op.
const ACTION_SPEC: u32 = (4 << 4) | 2;
/// The object counter column (id 0, type Integer): null or 0 means the document root.
const OBJ_CTR_SPEC: u32 = 2;

/// Bounds on one change, checked by [`prescan`]. A plain struct built by the caller;
/// [`Limits::default`] holds the values Moot uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most ops in one change, and most rows in any one column (default 65,536).
    pub max_ops: u64,
    /// Most dependencies (automerge heads named as deps) of one change (default 32).
    pub max_deps: usize,
    /// Most "other actors" a change may reference (default 1,024).
    pub max_other_actors: usize,
    /// Longest actor id in bytes (default 64; Moot's device keys are 32).
    pub max_actor_bytes: usize,
    /// Most columns in one change (default 64; automerge 0.12 writes at most 14).
    pub max_columns: usize,
    /// Largest change chunk in bytes (default 4 MiB).
    pub max_change_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_ops: 65_536,
            max_deps: 32,
            max_other_actors: 1_024,
            max_actor_bytes: 64,
            max_columns: 64,
            max_change_bytes: 4 << 20,
        }
    }
}

/// What [`prescan`] learned about a change, without automerge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeInfo {
    /// The change's hash, as automerge computes it (`ChangeHash`): SHA-256 of the chunk type,
    /// the body length and the body.
    pub hash: [u8; 32],
    /// The actor id bytes.
    pub actor: Vec<u8>,
    /// The actor's sequence number of this change (1 for its first change in a document).
    pub seq: u64,
    /// The counter of the change's first op.
    pub start_op: u64,
    /// The number of ops.
    pub ops: u64,
    /// The counter of the change's last op: `start_op + ops - 1`, or `start_op - 1` with no ops.
    pub max_op: u64,
    /// The hashes of the changes this one depends on, in chunk order (strictly ascending).
    pub deps: Vec<[u8; 32]>,
    /// True if any op's object is the document root (only a document's creator may do this).
    pub touches_root: bool,
}

/// Why [`prescan`] refused a change. Every refusal is data, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PrescanError {
    /// The input does not start with automerge's magic bytes.
    #[error("not an automerge chunk (bad magic bytes)")]
    BadMagic,
    /// The input ends before the chunk (or its header) does.
    #[error("the change is truncated")]
    Truncated,
    /// Bytes follow the chunk, or automerge's trailing "extra bytes" after the columns are not
    /// empty (Moot changes carry none).
    #[error("extra bytes after the change's data")]
    ExtraBytes,
    /// The checksum in the header is not the first 4 bytes of the chunk's hash.
    #[error("the change's checksum does not match its contents")]
    BadChecksum,
    /// A compressed change chunk, or a column with the DEFLATE bit: refused, since inflating
    /// has no bound.
    #[error("compressed changes are refused")]
    Compressed,
    /// A valid chunk of another type: 0 is a whole document, 3 a bundle.
    #[error("chunk type {chunk_type} is not a change")]
    NotAChange {
        /// The chunk type byte.
        chunk_type: u8,
    },
    /// The input is longer than [`Limits::max_change_bytes`].
    #[error("the change is larger than {limit} bytes")]
    TooLarge {
        /// The limit that was passed.
        limit: usize,
    },
    /// More deps than [`Limits::max_deps`].
    #[error("the change has more than {limit} deps")]
    TooManyDeps {
        /// The limit that was passed.
        limit: usize,
    },
    /// More other actors than [`Limits::max_other_actors`], or an actor id longer than
    /// [`Limits::max_actor_bytes`].
    #[error("the change's actors exceed the limit of {limit}")]
    TooManyActors {
        /// The limit that was passed (a count, or a length in bytes for an overlong actor).
        limit: usize,
    },
    /// More columns than [`Limits::max_columns`].
    #[error("the change has more than {limit} columns")]
    TooManyColumns {
        /// The limit that was passed.
        limit: usize,
    },
    /// A column claims more rows than [`Limits::max_ops`] (the op count, the number of
    /// predecessors, or any other column).
    #[error("the change has more than {limit} ops")]
    TooManyOps {
        /// The limit that was passed.
        limit: u64,
    },
    /// `start_op + ops - 1` does not fit an op counter (automerge counters are at most
    /// `u32::MAX`).
    #[error("the change's op counters overflow")]
    CounterOverflow,
    /// Anything else that is not a well-formed change: the reason names the part.
    #[error("malformed change: {0}")]
    Malformed(&'static str),
}

/// Reads the top-level structure: running out of bytes is `Truncated`.
fn top(e: Short) -> PrescanError {
    match e {
        Short::End => PrescanError::Truncated,
        Short::BadInt => PrescanError::Malformed("overlong or oversized integer"),
    }
}

/// Reads inside the body, whose length is already known: running out is `Malformed`.
fn body(what: &'static str) -> impl Fn(Short) -> PrescanError {
    move |_| PrescanError::Malformed(what)
}

/// Pre-scans one automerge change chunk: see the [module docs](self) for what is checked.
///
/// # Errors
/// A [`PrescanError`] naming the first rule the bytes break.
///
/// # Example
/// ```
/// let change = moot_doc::creator_change(&[7; 32], "Hello").unwrap();
/// let info = moot_doc::prescan(&change, &moot_doc::Limits::default()).unwrap();
/// assert_eq!((info.seq, info.ops, info.touches_root), (1, 6, true));
/// ```
pub fn prescan(bytes: &[u8], limits: &Limits) -> Result<ChangeInfo, PrescanError> {
    if bytes.len() > limits.max_change_bytes {
        return Err(PrescanError::TooLarge {
            limit: limits.max_change_bytes,
        });
    }
    let mut r = Reader::new(bytes);
    let magic: [u8; 4] = r.array().map_err(top)?;
    if magic != MAGIC {
        return Err(PrescanError::BadMagic);
    }
    let checksum: [u8; 4] = r.array().map_err(top)?;
    let chunk_type = r.byte().map_err(top)?;
    match chunk_type {
        CHUNK_CHANGE => {}
        CHUNK_COMPRESSED => return Err(PrescanError::Compressed),
        CHUNK_DOCUMENT | 3 => return Err(PrescanError::NotAChange { chunk_type }),
        _ => return Err(PrescanError::Malformed("unknown chunk type")),
    }
    let len = r.uleb().map_err(top)?;
    let len = usize::try_from(len).map_err(|_| PrescanError::Truncated)?;
    if len > r.remaining() {
        return Err(PrescanError::Truncated);
    }
    if len < r.remaining() {
        return Err(PrescanError::ExtraBytes);
    }
    let data = r.take(len).map_err(top)?;

    let hash = chunk_hash(chunk_type, data);
    if hash[..4] != checksum {
        return Err(PrescanError::BadChecksum);
    }

    let mut r = Reader::new(data);
    let dep_count = r.uleb().map_err(body("deps"))?;
    if dep_count > limits.max_deps as u64 {
        return Err(PrescanError::TooManyDeps {
            limit: limits.max_deps,
        });
    }
    let mut deps: Vec<[u8; 32]> = Vec::with_capacity(dep_count as usize);
    for _ in 0..dep_count {
        let dep: [u8; 32] = r.array().map_err(body("deps"))?;
        if deps.last().is_some_and(|last| *last >= dep) {
            return Err(PrescanError::Malformed("deps not strictly ascending"));
        }
        deps.push(dep);
    }
    let actor = r.prefixed().map_err(body("actor"))?;
    check_actor(actor, limits)?;
    let seq = r.uleb().map_err(body("seq"))?;
    if seq == 0 {
        return Err(PrescanError::Malformed("seq is zero"));
    }
    let start_op = r.uleb().map_err(body("start_op"))?;
    if start_op == 0 {
        return Err(PrescanError::Malformed("start_op is zero"));
    }
    let _time = r.sleb().map_err(body("time"))?;
    let message = r.prefixed().map_err(body("message"))?;
    if std::str::from_utf8(message).is_err() {
        return Err(PrescanError::Malformed("message is not UTF-8"));
    }
    let other_count = r.uleb().map_err(body("other actors"))?;
    if other_count > limits.max_other_actors as u64 {
        return Err(PrescanError::TooManyActors {
            limit: limits.max_other_actors,
        });
    }
    for _ in 0..other_count {
        let other = r.prefixed().map_err(body("other actors"))?;
        check_actor(other, limits)?;
    }

    // Column metadata: (spec, length) pairs, specs strictly ascending once the DEFLATE bit is
    // masked (automerge refuses out-of-order and duplicate columns).
    let column_count = r.uleb().map_err(body("columns"))?;
    if column_count > limits.max_columns as u64 {
        return Err(PrescanError::TooManyColumns {
            limit: limits.max_columns,
        });
    }
    // Bounded by max_columns: a fixed small table, read a second time below.
    let mut columns: Vec<(u32, usize)> = Vec::with_capacity(column_count as usize);
    let mut total: usize = 0;
    for _ in 0..column_count {
        let spec = r.uleb().map_err(body("column spec"))?;
        let spec = u32::try_from(spec).map_err(|_| PrescanError::Malformed("column spec"))?;
        let col_len = r.uleb().map_err(body("column length"))?;
        let col_len =
            usize::try_from(col_len).map_err(|_| PrescanError::Malformed("column length"))?;
        if spec & DEFLATE_BIT != 0 {
            return Err(PrescanError::Compressed);
        }
        if columns.last().is_some_and(|(last, _)| *last >= spec) {
            return Err(PrescanError::Malformed("columns not in ascending order"));
        }
        total = total
            .checked_add(col_len)
            .ok_or(PrescanError::Malformed("column lengths overflow"))?;
        columns.push((spec, col_len));
    }
    if total > r.remaining() {
        return Err(PrescanError::Malformed(
            "column data longer than the change",
        ));
    }
    if total < r.remaining() {
        return Err(PrescanError::ExtraBytes);
    }

    let scan = scan_columns(&mut r, &columns, limits.max_ops)?;
    let ops = scan.ops;
    let max_op = if ops == 0 {
        start_op - 1
    } else {
        start_op
            .checked_add(ops - 1)
            .ok_or(PrescanError::CounterOverflow)?
    };
    if max_op > u64::from(u32::MAX) || start_op > u64::from(u32::MAX) {
        return Err(PrescanError::CounterOverflow);
    }

    Ok(ChangeInfo {
        hash,
        actor: actor.to_vec(),
        seq,
        start_op,
        ops,
        max_op,
        deps,
        touches_root: scan.touches_root,
    })
}

/// automerge's chunk hash: SHA-256 over the type byte, the minimal uLEB128 of the body length,
/// and the body.
fn chunk_hash(chunk_type: u8, data: &[u8]) -> [u8; 32] {
    let mut len = [0u8; 10];
    let n = write_uleb(data.len() as u64, &mut len);
    let mut h = Sha256::new();
    h.update([chunk_type]);
    h.update(&len[..n]);
    h.update(data);
    h.finalize().into()
}

fn check_actor(actor: &[u8], limits: &Limits) -> Result<(), PrescanError> {
    if actor.len() > limits.max_actor_bytes {
        return Err(PrescanError::TooManyActors {
            limit: limits.max_actor_bytes,
        });
    }
    if actor.is_empty() {
        return Err(PrescanError::Malformed("empty actor id"));
    }
    Ok(())
}

/// What the column walk found.
struct ColumnScan {
    ops: u64,
    touches_root: bool,
}

/// The column types: the low 3 bits of a column spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Group,
    Actor,
    Integer,
    Delta,
    Boolean,
    Str,
    ValueMeta,
    Value,
}

impl ColType {
    fn of(spec: u32) -> ColType {
        match spec & 0b111 {
            0 => ColType::Group,
            1 => ColType::Actor,
            2 => ColType::Integer,
            3 => ColType::Delta,
            4 => ColType::Boolean,
            5 => ColType::Str,
            6 => ColType::ValueMeta,
            _ => ColType::Value,
        }
    }
}

/// Counts in one column, gathered from its run headers.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    /// Rows in the column.
    rows: u64,
    /// Sum of the values (group columns: rows in the grouped columns).
    sum: u64,
    /// Sum of the value lengths (value metadata columns: bytes in the raw value column).
    value_bytes: u64,
    /// A null row, or a row whose value is 0, was seen.
    null_or_zero: bool,
}

/// Walks the column data in `r`, in column order, checking each column's encoding and row
/// count; returns the op count and whether any op targets the root.
fn scan_columns(
    r: &mut Reader<'_>,
    columns: &[(u32, usize)],
    max_ops: u64,
) -> Result<ColumnScan, PrescanError> {
    // The op count is the action column's row count; the other columns are compared with it.
    // (spec, inside a group, counts), in column order.
    let mut tallies: Vec<(u32, bool, Tally)> = Vec::with_capacity(columns.len());
    // The open group (column id, rows its members must have) and the pending value metadata
    // (column id, bytes its raw value column must hold).
    let mut group: Option<(u32, u64)> = None;
    let mut value_meta: Option<(u32, u64)> = None;
    for &(spec, col_len) in columns {
        let data = r.take(col_len).map_err(body("column data"))?;
        let id = spec >> 4;
        let ty = ColType::of(spec);
        if let Some((meta_id, bytes)) = value_meta.take()
            && !(ty == ColType::Value && id == meta_id)
            && bytes != 0
        {
            return Err(PrescanError::Malformed(
                "value metadata without its value column",
            ));
        }
        if group.is_some_and(|(gid, _)| gid != id) {
            group = None;
        }
        let tally = match ty {
            ColType::Value => {
                // Raw bytes, one value per metadata row: their total length is fixed by the
                // metadata column that must precede it.
                let prev = tallies.last().map(|(s, _, t)| (*s, *t));
                match prev {
                    Some((prev_spec, t))
                        if prev_spec >> 4 == id && ColType::of(prev_spec) == ColType::ValueMeta =>
                    {
                        if t.value_bytes != data.len() as u64 {
                            return Err(PrescanError::Malformed(
                                "raw value column length disagrees with its metadata",
                            ));
                        }
                    }
                    _ => {
                        if !data.is_empty() {
                            return Err(PrescanError::Malformed(
                                "raw value column without metadata",
                            ));
                        }
                    }
                }
                continue;
            }
            ColType::Boolean => boolean_rows(data, max_ops)?,
            ColType::Group | ColType::Actor | ColType::Integer | ColType::ValueMeta => {
                rle_rows(data, Item::Unsigned, max_ops)?
            }
            ColType::Delta => rle_rows(data, Item::Signed, max_ops)?,
            ColType::Str => rle_rows(data, Item::Str, max_ops)?,
        };
        if ty == ColType::Group {
            if tally.sum > max_ops {
                return Err(PrescanError::TooManyOps { limit: max_ops });
            }
            group = Some((id, tally.sum));
        } else if let Some((_, members)) = group {
            // A grouped column: as many rows as the group's values add up to, or none.
            if tally.rows != members && tally.rows != 0 {
                return Err(PrescanError::Malformed(
                    "grouped column disagrees with its group",
                ));
            }
            if ty == ColType::ValueMeta {
                value_meta = Some((id, tally.value_bytes));
            }
            tallies.push((spec, true, tally));
            continue;
        }
        if ty == ColType::ValueMeta {
            value_meta = Some((id, tally.value_bytes));
        }
        tallies.push((spec, false, tally));
    }
    if value_meta.is_some_and(|(_, bytes)| bytes != 0) {
        return Err(PrescanError::Malformed(
            "value metadata without its value column",
        ));
    }

    let ops = tallies
        .iter()
        .find(|(spec, grouped, _)| *spec == ACTION_SPEC && !grouped)
        .map_or(0, |(_, _, t)| t.rows);
    for (_, grouped, t) in &tallies {
        if !grouped && t.rows != 0 && t.rows != ops {
            return Err(PrescanError::Malformed(
                "op columns disagree on the op count",
            ));
        }
    }
    // automerge reads a null or 0 object counter as the root; an absent (all-null) column
    // means every op is on the root.
    let touches_root = ops > 0
        && tallies
            .iter()
            .find(|(spec, grouped, _)| *spec == OBJ_CTR_SPEC && !grouped)
            .is_none_or(|(_, _, t)| t.rows == 0 || t.null_or_zero);
    Ok(ColumnScan { ops, touches_root })
}

/// How one value of an RLE column is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Item {
    Unsigned,
    Signed,
    Str,
}

/// Counts the rows of an RLE column: runs of `(count > 0, value)`, literal runs of
/// `(count < 0, |count| values)` and null runs of `(0, uLEB length)`. Stops with `TooManyOps`
/// as soon as the count passes `max_ops`, before reading a literal run's values.
fn rle_rows(data: &[u8], item: Item, max_ops: u64) -> Result<Tally, PrescanError> {
    let bad = body("RLE column");
    let mut r = Reader::new(data);
    let mut t = Tally::default();
    while !r.is_empty() {
        let count = r.sleb().map_err(&bad)?;
        if count > 0 {
            let n = count as u64;
            add_rows(&mut t, n, max_ops)?;
            let v = read_item(&mut r, item)?;
            note_value(&mut t, v, n);
        } else if count < 0 {
            let n = count.unsigned_abs();
            add_rows(&mut t, n, max_ops)?;
            for _ in 0..n {
                let v = read_item(&mut r, item)?;
                note_value(&mut t, v, 1);
            }
        } else {
            let n = r.uleb().map_err(&bad)?;
            add_rows(&mut t, n, max_ops)?;
            if n > 0 {
                t.null_or_zero = true;
            }
        }
    }
    Ok(t)
}

fn add_rows(t: &mut Tally, n: u64, max_ops: u64) -> Result<(), PrescanError> {
    t.rows = t
        .rows
        .checked_add(n)
        .filter(|rows| *rows <= max_ops)
        .ok_or(PrescanError::TooManyOps { limit: max_ops })?;
    Ok(())
}

/// Reads one value; returns it when unsigned (for sums), else 1 (a non-zero stand-in).
fn read_item(r: &mut Reader<'_>, item: Item) -> Result<u64, PrescanError> {
    match item {
        Item::Unsigned => r.uleb().map_err(body("RLE value")),
        Item::Signed => r.sleb().map(|_| 1).map_err(body("RLE value")),
        Item::Str => {
            let s = r.prefixed().map_err(body("RLE string"))?;
            std::str::from_utf8(s).map_err(|_| PrescanError::Malformed("string is not UTF-8"))?;
            Ok(1)
        }
    }
}

/// Adds `n` rows of value `v` to the sums (saturating: a sum past any limit is refused by the
/// caller, and a saturated sum is past every limit).
fn note_value(t: &mut Tally, v: u64, n: u64) {
    if v == 0 {
        t.null_or_zero = true;
    }
    t.sum = t.sum.saturating_add(v.saturating_mul(n));
    t.value_bytes = t.value_bytes.saturating_add((v >> 4).saturating_mul(n));
}

/// Counts the rows of a boolean column: alternating run lengths, false first.
fn boolean_rows(data: &[u8], max_ops: u64) -> Result<Tally, PrescanError> {
    let mut r = Reader::new(data);
    let mut t = Tally::default();
    while !r.is_empty() {
        let n = r.uleb().map_err(body("boolean column"))?;
        add_rows(&mut t, n, max_ops)?;
    }
    Ok(t)
}

/// Checks the caller must make against the op that carries a change, in one place: the
/// change's actor is the author's device, its seq follows the device's previous change in this
/// document, and its automerge deps are all named among the op's deps (given as change hashes).
///
/// # Errors
/// [`CheckError`] naming the first check that failed.
pub fn check_against(
    info: &ChangeInfo,
    expected_actor: &[u8],
    expected_seq: u64,
    named_dep_hashes: &[[u8; 32]],
) -> Result<(), CheckError> {
    if info.actor != expected_actor {
        return Err(CheckError::WrongActor);
    }
    if info.seq != expected_seq {
        return Err(CheckError::WrongSeq {
            expected: expected_seq,
            found: info.seq,
        });
    }
    if let Some(dep) = info.deps.iter().find(|d| !named_dep_hashes.contains(d)) {
        return Err(CheckError::UnnamedDep { dep: *dep });
    }
    Ok(())
}

/// Why [`check_against`] refused a change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CheckError {
    /// The change's actor is not the author's device.
    #[error("the change's actor is not the author's device")]
    WrongActor,
    /// The change's seq does not follow the device's previous change in this document.
    #[error("expected seq {expected}, found {found}")]
    WrongSeq {
        /// The seq the caller expected.
        expected: u64,
        /// The seq the change has.
        found: u64,
    },
    /// An automerge dep of the change is not among the changes the op names as deps.
    #[error("automerge dep not named by the op")]
    UnnamedDep {
        /// The unnamed dep's change hash.
        dep: [u8; 32],
    },
}
