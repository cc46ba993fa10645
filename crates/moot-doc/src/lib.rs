//! Moot's automerge documents: the one crate that imports automerge.
//!
//! Collaborative documents (a proposal's body) are automerge documents whose every change
//! travels as a signed op. automerge trusts its input, so this crate puts our own code in front
//! of it:
//!
//! - [`prescan()`] reads one change chunk with bounded work before automerge parses it: one
//!   uncompressed change, nothing after it, checksum valid, op count and every column's rows
//!   within [`Limits`] ([`PrescanError`] names what failed). It returns a [`ChangeInfo`].
//! - [`Document`] wraps an automerge document whose root holds one Text object, `"text"`,
//!   made by its creator change ([`creator_change`]). [`Document::apply`] applies changes in
//!   batches under deterministic rules (forked devices: the lower Key wins; dependants of an
//!   excluded change are excluded; automerge's refusals exclude one change, not the batch).
//!   Positions are UTF-16 code units, as in JS automerge.
//!
//! # What the caller checks (moot-state)
//! This crate does not see the op DAG. Before applying a `DocChange { doc, change }` the caller
//! checks, for the change's [`ChangeInfo`] (the pure helper [`check_against`] does the first
//! three):
//! 1. `actor` is the author's device;
//! 2. `seq` is the device's previous seq in this document + 1 (1 for its first change);
//! 3. every automerge dep is the hash of a change carried by an op the op names as a dep;
//! 4. `touches_root` is false unless the op is the document's creator op.
//!
//! # Boundary
//! No IO: no files, sockets or clock (changes are stamped with time 0). No `HashMap` iteration
//! decides anything: state is kept in `BTreeMap`s.

pub mod document;
mod leb;
pub mod prescan;

pub use document::{
    DIFF_TIME, DocError, Document, Excluded, Exclusion, Key, TEXT_PROP, creator_change,
};
pub use prescan::{ChangeInfo, CheckError, Limits, MAGIC, PrescanError, check_against, prescan};

/// automerge's own apply, with none of our checks: the baseline benchmarks in other crates
/// compare against (feature `baseline`). Never use it on bytes from anyone else.
#[cfg(feature = "baseline")]
pub mod baseline {
    /// Applies `changes` (a whole document's, in causal order) to a new automerge document in
    /// one batch, as automerge does unsigned; returns how many it holds.
    ///
    /// # Errors
    /// automerge's message, if a change does not parse or apply.
    pub fn automerge_apply(changes: &[Vec<u8>]) -> Result<usize, String> {
        let parsed = changes
            .iter()
            .map(|c| automerge::Change::try_from(c.as_slice()).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut doc = automerge::Automerge::new();
        doc.apply_changes(parsed).map_err(|e| e.to_string())?;
        Ok(doc.get_changes(&[]).len())
    }
}
