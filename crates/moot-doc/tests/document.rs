//! `Document`: creation, batch apply against automerge, the fork rule in both arrival orders,
//! refusals that exclude one change and its dependants, authoring (UTF-16 positions, seq and
//! deps of new changes), cursors across concurrent edits, and snapshots.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{actor, edit_script, text_of};
use moot_doc::{DocError, Document, Excluded, Exclusion, Key, Limits, creator_change, prescan};

fn key(n: u8) -> Key {
    [n; 32]
}

fn new_doc(text: &str) -> (Document, Vec<u8>) {
    let creator = creator_change(&actor(1), text).unwrap();
    (Document::from_creator(&creator).unwrap(), creator)
}

#[test]
fn creator_change_is_deterministic_and_makes_the_text() {
    let a = creator_change(&actor(1), "Hello 🌍").unwrap();
    let b = creator_change(&actor(1), "Hello 🌍").unwrap();
    assert_eq!(a, b);
    let info = prescan(&a, &Limits::default()).unwrap();
    assert_eq!((info.seq, info.start_op, info.deps.len()), (1, 1, 0));
    assert!(info.touches_root);
    let doc = Document::from_creator(&a).unwrap();
    assert_eq!(doc.text(), "Hello 🌍");
    assert_eq!(doc.len_utf16(), 8);
    assert_eq!(doc.heads(), vec![info.hash]);
    assert_eq!(doc.change_count(), 1);
    assert!(matches!(creator_change(&[], "x"), Err(DocError::BadActor)));
}

#[test]
fn a_non_creator_is_not_a_document() {
    let (mut doc, _) = new_doc("x");
    let edit = doc.edit(&actor(2), 0, 0, "y").unwrap();
    assert!(matches!(
        Document::from_creator(&edit),
        Err(DocError::NotACreator(_))
    ));
    assert!(matches!(
        Document::from_creator(b"junk"),
        Err(DocError::Invalid(_))
    ));
}

#[test]
fn batch_apply_equals_automerge() {
    for seed in 1..4 {
        let (reference, changes) = edit_script(seed, 300, 4);
        let mut doc = Document::from_creator(&changes[0]).unwrap();
        let keyed: Vec<(Key, &[u8])> = changes[1..]
            .iter()
            .enumerate()
            .map(|(i, c)| (key_n(i), &c[..]))
            .collect();
        assert_eq!(doc.apply(&keyed), vec![]);
        assert_eq!(doc.text(), text_of(&reference));
        let mut heads: Vec<[u8; 32]> = reference.get_heads().iter().map(|h| h.0).collect();
        heads.sort();
        assert_eq!(doc.heads(), heads);
        assert_eq!(doc.change_count(), changes.len());
        // Applying them again changes nothing and excludes nothing.
        assert_eq!(doc.apply(&keyed), vec![]);
        assert_eq!(doc.change_count(), changes.len());
    }
}

fn key_n(i: usize) -> Key {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&(i as u64 + 1000).to_be_bytes());
    k
}

/// Two changes by the same device with the same seq (a cloned device key), each with a
/// dependant by another device.
struct Fork {
    creator: Vec<u8>,
    low: Vec<u8>,
    low_child: Vec<u8>,
    high: Vec<u8>,
    high_child: Vec<u8>,
}

fn fork() -> Fork {
    let (mut base, creator) = new_doc("base text");
    let mut other = base.clone();
    let low = base.edit(&actor(2), 0, 0, "LOW ").unwrap();
    let low_child = base.edit(&actor(3), 4, 0, "child-of-low ").unwrap();
    let high = other.edit(&actor(2), 9, 0, " HIGH").unwrap();
    let high_child = other.edit(&actor(4), 0, 0, "child-of-high ").unwrap();
    let a = prescan(&low, &Limits::default()).unwrap();
    let b = prescan(&high, &Limits::default()).unwrap();
    assert_eq!((a.actor.clone(), a.seq), (b.actor.clone(), b.seq));
    Fork {
        creator,
        low,
        low_child,
        high,
        high_child,
    }
}

fn sorted(mut v: Vec<Excluded>) -> Vec<Excluded> {
    v.sort_by_key(|e| e.hash);
    v
}

#[test]
fn a_forked_seq_keeps_the_lower_key_in_either_order() {
    let f = fork();
    let (lk, lck, hk, hck) = (key(1), key(2), key(9), key(8));
    // Low first: the high twin and its child are refused as they come.
    let mut a = Document::from_creator(&f.creator).unwrap();
    let ex_a = a.apply(&[
        (lk, &f.low[..]),
        (lck, &f.low_child[..]),
        (hk, &f.high[..]),
        (hck, &f.high_child[..]),
    ]);
    // High first, in separate calls: the low twin arrives later and displaces it (rebuild).
    let mut b = Document::from_creator(&f.creator).unwrap();
    assert_eq!(b.apply(&[(hk, &f.high[..])]), vec![]);
    assert_eq!(b.apply(&[(hck, &f.high_child[..])]), vec![]);
    assert!(b.text().contains("HIGH"));
    let ex_b = b.apply(&[(lk, &f.low[..]), (lck, &f.low_child[..])]);
    // The same high twin, but in one batch with the low one after it.
    let mut c = Document::from_creator(&f.creator).unwrap();
    let ex_c = c.apply(&[
        (hk, &f.high[..]),
        (hck, &f.high_child[..]),
        (lk, &f.low[..]),
        (lck, &f.low_child[..]),
    ]);
    for doc in [&a, &b, &c] {
        assert_eq!(doc.text(), "LOW child-of-low base text");
        assert_eq!(doc.heads(), a.heads());
        assert_eq!(doc.change_count(), 3);
    }
    let high = prescan(&f.high, &Limits::default()).unwrap().hash;
    let high_child = prescan(&f.high_child, &Limits::default()).unwrap().hash;
    let expected = sorted(vec![
        Excluded {
            key: Some(hk),
            hash: high,
            reason: Exclusion::ForkedSeq { kept: Some(lk) },
        },
        Excluded {
            key: Some(hck),
            hash: high_child,
            reason: Exclusion::DependsOnExcluded { on: Some(hk) },
        },
    ]);
    assert_eq!(sorted(ex_a), expected);
    assert_eq!(sorted(ex_b), expected);
    assert_eq!(sorted(ex_c), expected);
    // A later change that depends on the excluded twin is excluded too.
    let mut d = Document::from_creator(&f.creator).unwrap();
    d.apply(&[(hk, &f.high[..])]);
    let late = d.edit(&actor(5), 0, 0, "late ").unwrap();
    let ex = a.apply(&[(key(7), &late[..])]);
    let late_hash = prescan(&late, &Limits::default()).unwrap().hash;
    let late_ex = ex.iter().find(|e| e.hash == late_hash).unwrap();
    assert_eq!(
        late_ex.reason,
        Exclusion::DependsOnExcluded { on: Some(hk) }
    );
}

/// Forks that nest: device X forks its first change (Xa, Xb) and device Y forks its own (Ya,
/// which builds on Xb, and Yb, which does not). Ya has the lowest Key of all, so a node that
/// saw Xb before Xa lets Ya displace Yb; once Xa displaces Xb, Ya goes too — and Yb must come
/// back, as on a node that saw Xa first and never accepted Xb or Ya. Every arrival order gives
/// the same document.
#[test]
fn nested_forks_give_one_document_whatever_the_order() {
    let (base, creator) = new_doc("base");
    let (mut on_xa, mut on_xb) = (base.clone(), base.clone());
    let xa = on_xa.edit(&actor(2), 0, 0, "XA ").unwrap();
    let xb = on_xb.edit(&actor(2), 4, 0, " XB").unwrap();
    let ya = on_xb.edit(&actor(3), 0, 0, "YA ").unwrap();
    let mut on_base = base.clone();
    let yb = on_base.edit(&actor(3), 4, 0, " YB").unwrap();
    let (ka, kb, kya, kyb) = ([5u8; 32], [9u8; 32], [3u8; 32], [7u8; 32]);
    // Each order: the calls to `apply`, each a batch in causal order.
    type Calls<'a> = Vec<Vec<(Key, &'a [u8])>>;
    let orders: Vec<Calls<'_>> = vec![
        vec![
            vec![(kb, &xb)],
            vec![(kyb, &yb)],
            vec![(kya, &ya)],
            vec![(ka, &xa)],
        ],
        vec![
            vec![(ka, &xa)],
            vec![(kyb, &yb)],
            vec![(kb, &xb)],
            vec![(kya, &ya)],
        ],
        vec![vec![(kb, &xb), (kya, &ya), (ka, &xa), (kyb, &yb)]],
        vec![vec![(kyb, &yb), (kb, &xb)], vec![(ka, &xa), (kya, &ya)]],
    ];
    let mut results = Vec::new();
    for order in orders {
        let mut doc = Document::from_creator(&creator).unwrap();
        let mut last = Vec::new();
        for call in order {
            last = doc.apply(&call);
        }
        results.push((doc.text(), doc.heads(), sorted(last)));
    }
    assert_eq!(results[0].0, "XA base YB");
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
}

#[test]
fn a_missing_dep_is_excluded() {
    let (mut doc, creator) = new_doc("x");
    let first = doc.edit(&actor(2), 0, 0, "a").unwrap();
    let second = doc.edit(&actor(2), 0, 0, "b").unwrap();
    let mut fresh = Document::from_creator(&creator).unwrap();
    let ex = fresh.apply(&[(key(2), &second[..])]);
    let first_hash = prescan(&first, &Limits::default()).unwrap().hash;
    assert_eq!(ex[0].reason, Exclusion::MissingDep { dep: first_hash });
    assert_eq!(fresh.text(), "x");
}

#[test]
fn invalid_bytes_are_excluded_without_failing_the_batch() {
    let (mut doc, creator) = new_doc("x");
    let good = doc.edit(&actor(2), 1, 0, "y").unwrap();
    let mut fresh = Document::from_creator(&creator).unwrap();
    let ex = fresh.apply(&[(key(1), b"junk"), (key(2), &good[..])]);
    assert_eq!(ex.len(), 1);
    assert!(matches!(ex[0].reason, Exclusion::Invalid(_)));
    assert_eq!(fresh.text(), "xy");
}

#[test]
fn a_change_automerge_refuses_is_excluded_with_its_dependants_only() {
    let (mut doc, creator) = new_doc("abc");
    let good = doc.edit(&actor(2), 3, 0, "d").unwrap();
    let good_info = prescan(&good, &Limits::default()).unwrap();
    // Deletes of elements that do not exist, by a new actor, depending on `good`.
    let body = common::change_body(
        &[good_info.hash],
        &actor(6),
        1,
        good_info.max_op + 1,
        &common::delete_columns(3),
    );
    let bad = common::make_chunk(1, &body);
    let bad_info = prescan(&bad, &Limits::default()).unwrap();
    // A change that depends on the bad one, and an unrelated good one after it.
    let mut after = Document::from_creator(&creator).unwrap();
    after.apply(&[(key(1), &good[..])]);
    let unrelated = after.edit(&actor(3), 0, 0, "Z").unwrap();
    let child_body = common::change_body(
        &[bad_info.hash],
        &actor(7),
        1,
        bad_info.max_op + 1,
        &common::delete_columns(1),
    );
    let child = common::make_chunk(1, &child_body);
    let mut fresh = Document::from_creator(&creator).unwrap();
    let ex = fresh.apply(&[
        (key(1), &good[..]),
        (key(2), &bad[..]),
        (key(3), &child[..]),
        (key(4), &unrelated[..]),
    ]);
    let reasons: Vec<(Option<Key>, bool)> = ex
        .iter()
        .map(|e| (e.key, matches!(e.reason, Exclusion::Refused(_))))
        .collect();
    assert_eq!(reasons[0], (Some(key(2)), true), "{ex:?}");
    assert_eq!(ex[1].key, Some(key(3)));
    assert_eq!(
        ex[1].reason,
        Exclusion::DependsOnExcluded { on: Some(key(2)) }
    );
    assert_eq!(ex.len(), 2);
    assert_eq!(fresh.text(), "Zabcd");
    assert_eq!(fresh.change_count(), 3);
}

#[test]
fn a_seq_gap_is_refused() {
    let (mut doc, creator) = new_doc("x");
    let one = doc.edit(&actor(2), 0, 0, "a").unwrap();
    let info = prescan(&one, &Limits::default()).unwrap();
    let body = common::change_body(&[info.hash], &actor(2), 3, info.max_op + 1, &[]);
    let gap = common::make_chunk(1, &body);
    let mut fresh = Document::from_creator(&creator).unwrap();
    let ex = fresh.apply(&[(key(1), &one[..]), (key(2), &gap[..])]);
    assert!(matches!(ex[0].reason, Exclusion::Refused(_)), "{ex:?}");
}

#[test]
fn edits_count_utf16_units_and_follow_seq_and_heads() {
    let (mut doc, _) = new_doc("a🎉b");
    assert_eq!(doc.len_utf16(), 4);
    let heads = doc.heads();
    let c1 = doc.edit(&actor(2), 3, 1, "c").unwrap();
    assert_eq!(doc.text(), "a🎉c");
    let i1 = prescan(&c1, &Limits::default()).unwrap();
    assert_eq!((i1.seq, i1.deps.clone()), (1, heads));
    let c2 = doc.edit(&actor(2), 1, 2, "é").unwrap();
    let i2 = prescan(&c2, &Limits::default()).unwrap();
    assert_eq!((i2.seq, i2.deps.clone()), (2, vec![i1.hash]));
    assert!(!i2.touches_root);
    assert_eq!(doc.text(), "aéc");
    assert_eq!(doc.heads(), vec![i2.hash]);
    // The returned change is what automerge itself would report.
    let change = automerge::Change::try_from(&c2[..]).unwrap();
    assert_eq!(change.timestamp(), 0);
    assert_eq!(change.message(), None);
    assert!(matches!(
        doc.edit(&actor(2), 4, 0, "x"),
        Err(DocError::OutOfRange { .. })
    ));
    assert!(matches!(
        doc.edit(&actor(2), 2, 2, "x"),
        Err(DocError::OutOfRange { .. })
    ));
    assert!(matches!(
        doc.edit(&actor(2), 1, 0, ""),
        Err(DocError::Empty)
    ));
    let (mut emoji, _) = new_doc("🎉");
    assert!(matches!(
        emoji.edit(&actor(2), 1, 0, "x"),
        Err(DocError::SplitsChar { pos: 1 })
    ));
    assert!(matches!(
        emoji.edit(&actor(2), 0, 1, ""),
        Err(DocError::SplitsChar { pos: 1 })
    ));
    // Binding the Key of a local change: applying it again records the Key, nothing else.
    assert_eq!(doc.apply(&[(key(3), &c2[..])]), vec![]);
    assert_eq!(doc.key_of(&i2.hash), Some(key(3)));
    assert_eq!(doc.change_count(), 3);
}

/// A long text rewritten: the diff is looked for at most `DIFF_TIME` (a minimal diff of two
/// dissimilar 30,000-character texts is billions of steps; automerge's own took minutes), the
/// common start and end are left alone (a concurrent edit there survives), and the result is
/// the new text on every replica. An edit of more characters than one change may hold is
/// refused before any work, naming the limit.
#[test]
fn a_long_rewrite_is_bounded_and_an_edit_too_large_for_one_change_is_refused() {
    let words = |seed: u32, n: usize| -> String {
        (0..n)
            .map(|i| char::from(b'a' + ((i as u32 * 7 + seed) % 26) as u8))
            .collect()
    };
    let old = format!("Intro. {} Outro.", words(1, 30_000));
    let new = format!("Intro. {} Outro.", words(5, 30_000));
    let (base, creator) = new_doc(&old);
    let mut a = base.clone();
    let mut b = base.clone();
    let ca = a.replace_all(&actor(2), &new).unwrap();
    assert_eq!(a.text(), new);
    let info = prescan(&ca, &Limits::default()).unwrap();
    assert!(info.ops <= 60_000, "{} ops", info.ops);
    // A peer's concurrent edit of the common start survives.
    let cb = b.edit(&actor(3), 0, 5, "Preface").unwrap();
    let mut merged = Document::from_creator(&creator).unwrap();
    assert_eq!(
        merged.apply(&[(key(1), &ca[..]), (key(2), &cb[..])]),
        vec![]
    );
    assert_eq!(merged.text(), new.replacen("Intro", "Preface", 1));

    // Two typos fixed far apart in that long text: a minimal diff, two small edits, not the
    // stretch between them rewritten.
    let mut fixed: Vec<char> = new.chars().collect();
    fixed[100] = 'X';
    fixed[29_900] = 'Y';
    let fixed: String = fixed.into_iter().collect();
    let typos = a.replace_all(&actor(2), &fixed).unwrap();
    assert_eq!(a.text(), fixed);
    let info = prescan(&typos, &Limits::default()).unwrap();
    assert!(info.ops <= 4, "{} ops", info.ops);

    // More than one change holds: refused, whichever way the edit is asked for.
    let max = Limits::default().max_ops;
    let huge = "c".repeat(40_000);
    let (mut small, _) = new_doc("x");
    assert_eq!(
        small.replace_all(&actor(2), &format!("{huge}{huge}")),
        Err(DocError::TooLarge {
            changes: 80_001,
            max
        })
    );
    assert_eq!(
        small.edit(&actor(2), 0, 1, &format!("{huge}{huge}")),
        Err(DocError::TooLarge {
            changes: 80_001,
            max
        })
    );
    assert_eq!(small.text(), "x");
    // Up to the limit is one change.
    let fits = "c".repeat(max as usize - 1);
    let change = small.replace_all(&actor(2), &fits).unwrap();
    assert_eq!(small.text(), fits);
    assert_eq!(prescan(&change, &Limits::default()).unwrap().ops, max);
}

#[test]
fn replace_all_keeps_concurrent_edits_elsewhere() {
    let (base, creator) = new_doc("The quick brown fox jumps over the lazy dog.");
    let mut a = base.clone();
    let mut b = base.clone();
    let ca = a
        .replace_all(&actor(2), "The quick brown fox jumps over the lazy cat.")
        .unwrap();
    let cb = b.edit(&actor(3), 0, 3, "A").unwrap();
    assert!(matches!(
        a.replace_all(&actor(2), &a.text()),
        Err(DocError::Empty)
    ));
    let info = prescan(&ca, &Limits::default()).unwrap();
    assert!(
        info.ops < 10,
        "a minimal diff, not a rewrite: {} ops",
        info.ops
    );
    let mut merged = Document::from_creator(&creator).unwrap();
    assert_eq!(
        merged.apply(&[(key(1), &ca[..]), (key(2), &cb[..])]),
        vec![]
    );
    assert_eq!(merged.text(), "A quick brown fox jumps over the lazy cat.");
}

#[test]
fn cursors_follow_concurrent_edits() {
    let (base, creator) = new_doc("Hello world");
    let cursor = base.cursor(6).unwrap();
    let end = base.cursor(11).unwrap();
    assert!(matches!(base.cursor(12), Err(DocError::OutOfRange { .. })));
    let mut other = base.clone();
    let c = other.edit(&actor(2), 0, 0, "👋 Oh, ").unwrap();
    let mut doc = Document::from_creator(&creator).unwrap();
    doc.apply(&[(key(1), &c[..])]);
    let at = doc.resolve(&cursor).unwrap();
    assert_eq!(at, 6 + "👋 Oh, ".encode_utf16().count());
    assert_eq!(
        String::from_utf16(&doc.text().encode_utf16().collect::<Vec<_>>()[at..]).unwrap(),
        "world"
    );
    assert_eq!(doc.resolve(&end).unwrap(), doc.len_utf16());
    assert!(matches!(
        doc.resolve("nonsense"),
        Err(DocError::BadCursor(_))
    ));
}

#[test]
fn save_and_load_round_trip_and_damage_is_an_error() {
    let (reference, changes) = edit_script(11, 200, 3);
    let mut doc = Document::from_creator(&changes[0]).unwrap();
    let keyed: Vec<(Key, &[u8])> = changes[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| (key_n(i), &c[..]))
        .collect();
    doc.apply(&keyed);
    let saved = doc.save();
    let mut loaded = Document::load(&saved, &Limits::default()).unwrap();
    assert_eq!(loaded.text(), text_of(&reference));
    assert_eq!(loaded.heads(), doc.heads());
    assert_eq!(loaded.change_count(), doc.change_count());
    // A loaded document keeps working: edits, and changes from elsewhere.
    let mut elsewhere = doc.clone();
    let c = elsewhere.edit(&actor(8), 0, 0, "new ").unwrap();
    assert_eq!(loaded.apply(&[(key(1), &c[..])]), vec![]);
    assert_eq!(loaded.text(), elsewhere.text());
    loaded.edit(&actor(9), 0, 0, "more ").unwrap();
    // Damage: truncations and byte flips give errors or a document, never a panic.
    for len in (0..saved.len()).step_by(7) {
        assert!(Document::load(&saved[..len], &Limits::default()).is_err());
    }
    for i in (0..saved.len()).step_by(3) {
        let mut bad = saved.clone();
        bad[i] ^= 0x55;
        let _ = Document::load(&bad, &Limits::default());
    }
    // A document of another shape is refused.
    let mut other = automerge::AutoCommit::new();
    automerge::transaction::Transactable::put(&mut other, automerge::ROOT, "x", 1).unwrap();
    assert!(matches!(
        Document::load(&other.save(), &Limits::default()),
        Err(DocError::Shape)
    ));
}

#[test]
fn an_edit_from_an_older_base_lands_where_its_author_put_it() {
    // A browser saw "the cat sat" and typed " black" after "the"; meanwhile a peer's edit put
    // "Today " at the start. Counted at the base, the browser's edit still goes after "the".
    let (mut node, creator) = new_doc("the cat sat");
    let base = node.heads();
    let mut peer = Document::from_creator(&creator).unwrap();
    let peer_edit = peer.edit(b"peer", 0, 0, "Today ").unwrap();
    assert_eq!(node.apply(&[(key(2), &peer_edit[..])]), vec![]);
    assert_eq!(node.text(), "Today the cat sat");
    node.edit_since(b"browser", &base, 3, 0, " black").unwrap();
    assert_eq!(node.text(), "Today the black cat sat");
    // A deletion counted at the base removes the same characters now ("cat " → "").
    let base = node.heads();
    let peer_edit = {
        let mut peer2 = Document::from_creator(&creator).unwrap();
        peer2.apply(&[(key(2), &peer_edit[..])]);
        peer2.edit(b"peer", 0, 0, ">> ").unwrap()
    };
    assert_eq!(node.apply(&[(key(3), &peer_edit[..])]), vec![]);
    node.edit_since(b"browser", &base, 16, 4, "").unwrap();
    assert_eq!(node.text(), ">> Today the black sat");
    // The heads now: a plain edit. Out of range at the base, or an unknown base: typed errors.
    let now = node.heads();
    node.edit_since(b"browser", &now, 0, 3, "").unwrap();
    assert_eq!(node.text(), "Today the black sat");
    let old = base.clone();
    assert!(matches!(
        node.edit_since(b"browser", &old, 99, 0, "x"),
        Err(moot_doc::DocError::OutOfRange { .. })
    ));
    assert!(matches!(
        node.edit_since(b"browser", &[[7u8; 32]], 0, 0, "x"),
        Err(moot_doc::DocError::UnknownBase)
    ));
}

#[test]
fn a_deletion_from_an_older_base_keeps_what_a_peer_added_at_its_edges() {
    // Deleting " world" while a peer appended " - agreed.": the peer's text stays.
    let (mut node, creator) = new_doc("Hello world");
    let base = node.heads();
    let mut peer = Document::from_creator(&creator).unwrap();
    let appended = peer.edit(b"peer", 11, 0, " - agreed.").unwrap();
    assert_eq!(node.apply(&[(key(2), &appended[..])]), vec![]);
    node.edit_since(b"browser", &base, 5, 6, "").unwrap();
    assert_eq!(node.text(), "Hello - agreed.");

    // Deleting "abc" while a peer put "X" right after it: the X stays.
    let (mut node, creator) = new_doc("abc def");
    let base = node.heads();
    let mut peer = Document::from_creator(&creator).unwrap();
    let x = peer.edit(b"peer", 3, 0, "X").unwrap();
    assert_eq!(node.apply(&[(key(2), &x[..])]), vec![]);
    node.edit_since(b"browser", &base, 0, 3, "").unwrap();
    assert_eq!(node.text(), "X def");

    // Deleting "ab" of "abcd" while a peer deleted the "b": only the "a" is left to take.
    let (mut node, creator) = new_doc("abcd");
    let base = node.heads();
    let mut peer = Document::from_creator(&creator).unwrap();
    let gone = peer.edit(b"peer", 1, 1, "").unwrap();
    assert_eq!(node.apply(&[(key(2), &gone[..])]), vec![]);
    assert_eq!(node.text(), "acd");
    node.edit_since(b"browser", &base, 0, 2, "").unwrap();
    assert_eq!(node.text(), "cd");

    // A character outside the BMP at the end of the range goes whole.
    let (mut node, creator) = new_doc("a\u{1F600}b");
    let base = node.heads();
    let mut peer = Document::from_creator(&creator).unwrap();
    let z = peer.edit(b"peer", 0, 0, "Z").unwrap();
    assert_eq!(node.apply(&[(key(2), &z[..])]), vec![]);
    node.edit_since(b"browser", &base, 1, 2, "").unwrap();
    assert_eq!(node.text(), "Zab");
}
