//! Matching offers to requests: for an offer, the requests it could meet; for a request, the
//! offers that could meet it; best first.
//!
//! # Who is a candidate
//!
//! For a target item, a candidate is an item that
//! - is of the opposite [`ItemKind`];
//! - is still available at `now` ([`ItemView::is_available`]): [`Status::Open`], or
//!   [`Status::Pledged`] while part of its quantity is unpledged (a pledged item without a
//!   quantity is one thing, already promised), and its window has not ended (`until < now`);
//! - is by another author (nobody is matched with themselves);
//! - has the same category under [`moot_text::fold_unaccented`] (case, accents, width and
//!   invisible characters do not matter; a blank category matches nothing).
//!
//! A target that is not available itself (fulfilled, withdrawn, expired…) has no matches.
//!
//! # Score
//!
//! | component | points | [`MatchReason`] |
//! | --- | --- | --- |
//! | same area (folded, runs of white space as one space) | 60 | [`MatchReason::SameArea`] |
//! | one area a whole-word prefix of the other (`E1` / `E1 6AN`), or two postcodes of one district (`E1 6AN` / `E1 7QX`: the same first word, of letters and digits) | 40 | [`MatchReason::NearbyArea`] |
//! | other area, or either area unknown | 0 | — |
//! | time windows overlap (missing bounds are open) | 30 | [`MatchReason::TimeOverlap`] |
//! | windows disjoint | 0 | — |
//! | the offer's unpledged quantity covers the request's | 5 | [`MatchReason::QuantityCovers`] |
//!
//! So the tiers are: same area and time (90+), nearby and same time (70+), same area at another
//! time (60+), nearby at another time (40+), elsewhere at the same time (30+), elsewhere (0+);
//! quantity only orders within a tier. Equal scores are ordered by item id, so the list is the
//! same on every node whatever order the items arrived in.
//!
//! Folded keys are computed once per item by [`Board::new`]; a query looks only at the items of
//! the opposite kind in the target's category (an index kept in a `BTreeMap`).

use std::collections::BTreeMap;

/// Offer or request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ItemKind {
    /// Something a member can give or do.
    Offer,
    /// Something a member needs.
    Request,
}

impl ItemKind {
    /// The kind an item of this kind is matched with.
    pub fn opposite(self) -> ItemKind {
        match self {
            ItemKind::Offer => ItemKind::Request,
            ItemKind::Request => ItemKind::Offer,
        }
    }
}

/// Where an item is in its life: open → pledged → fulfilled, or withdrawn / expired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Open to anyone.
    Open,
    /// Promised (in part, if it has a quantity) to a matched member.
    Pledged,
    /// Done.
    Fulfilled,
    /// Taken back by its author.
    Withdrawn,
    /// Marked expired.
    Expired,
}

/// When an item is wanted or available, in Unix seconds, both bounds inclusive; a missing bound
/// is open. Advisory: it ranks matches, and an item whose `until` has passed is over.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    /// From this time on (None: already).
    pub from: Option<u64>,
    /// Until this time (None: no end).
    pub until: Option<u64>,
}

impl Window {
    /// True if the two windows share at least one second. An inverted window (`from > until`)
    /// overlaps nothing.
    pub fn overlaps(&self, other: &Window) -> bool {
        let start = self.from.unwrap_or(0).max(other.from.unwrap_or(0));
        let end = self
            .until
            .unwrap_or(u64::MAX)
            .min(other.until.unwrap_or(u64::MAX));
        start <= end
    }

    /// True if the window ended before `now`.
    pub fn is_over(&self, now: u64) -> bool {
        self.until.is_some_and(|until| until < now)
    }
}

/// What matching needs to know of an offer or request (the rest of the item, its description
/// and sealed contact, is not looked at).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ItemView {
    /// The id of the op that created the item.
    pub id: [u8; 32],
    /// Offer or request.
    pub kind: ItemKind,
    /// Where it is in its life.
    pub status: Status,
    /// Free text category ("food", "lifts", "DIY"); compared folded.
    pub category: String,
    /// Postcode district, constituency or other place name; None or blank: unknown.
    pub area: Option<String>,
    /// When.
    pub window: Window,
    /// How many units in all (meals, lifts, hours…); None: one thing, not counted.
    pub quantity: Option<u32>,
    /// How many of `quantity` are already pledged (0 when not counted).
    pub pledged: u32,
    /// The author's member key.
    pub author: [u8; 32],
}

impl ItemView {
    /// Units still to be given or received: `Some(quantity - pledged)` for a counted item,
    /// `None` for a single uncounted thing.
    pub fn remaining(&self) -> Option<u32> {
        self.quantity.map(|q| q.saturating_sub(self.pledged))
    }

    /// True if the item can still be matched at `now`: open, or pledged with some quantity
    /// unpledged; not run out; and its window not over.
    pub fn is_available(&self, now: u64) -> bool {
        let status_allows = match self.status {
            Status::Open => true,
            Status::Pledged => self.quantity.is_some(),
            Status::Fulfilled | Status::Withdrawn | Status::Expired => false,
        };
        status_allows && self.remaining() != Some(0) && !self.window.is_over(now)
    }
}

/// Why a candidate scored what it did (in the order of the table in the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MatchReason {
    /// Same folded area.
    SameArea,
    /// One area is a whole-word prefix of the other (a district and a full postcode).
    NearbyArea,
    /// The time windows overlap.
    TimeOverlap,
    /// The offer's remaining quantity covers the request's.
    QuantityCovers,
}

impl MatchReason {
    /// Points this reason adds to a score.
    pub fn points(self) -> u32 {
        match self {
            MatchReason::SameArea => 60,
            MatchReason::NearbyArea => 40,
            MatchReason::TimeOverlap => 30,
            MatchReason::QuantityCovers => 5,
        }
    }
}

/// A suggested item for a target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Match {
    /// The suggested item's id.
    pub id: [u8; 32],
    /// The sum of the reasons' points; higher is better.
    pub score: u32,
    /// Why, in table order. Same category is implied.
    pub reasons: Vec<MatchReason>,
}

/// The suggestions for `target` among `items`, best first, at most `limit`. The same as
/// [`Board::new`] then [`Board::matches_for`], but only the candidates are copied and folded.
/// (Item ids are op ids and so unique; should one appear twice, the lesser of its eligible
/// copies is kept, whatever the order of `items`.) For repeated queries over the same items,
/// keep a [`Board`].
pub fn matches(target: &ItemView, items: &[ItemView], now: u64, limit: usize) -> Vec<Match> {
    if limit == 0 || !target.is_available(now) {
        return Vec::new();
    }
    let category = fold_key(&target.category);
    if category.is_empty() {
        return Vec::new();
    }
    let kind = target.kind.opposite();
    let candidates: Vec<ItemView> = items
        .iter()
        .filter(|item| {
            item.kind == kind
                && is_eligible(target, item, now)
                && fold_key(&item.category) == category
        })
        .cloned()
        .collect();
    Board::new(candidates).matches_for(target, now, limit)
}

/// True if `item` may be suggested for `target` whatever its category: another author's, not
/// the target itself, and available at `now`.
fn is_eligible(target: &ItemView, item: &ItemView, now: u64) -> bool {
    item.author != target.author && item.id != target.id && item.is_available(now)
}

/// [`moot_text::fold_unaccented`], the key two categories or areas are compared by. For ASCII
/// text, which has no accents, default-ignorable, compatibility or multi-character case forms,
/// that is trimming and lower-casing; a test checks the shortcut agrees.
fn fold_key(text: &str) -> String {
    if text.is_ascii() {
        text.trim().to_ascii_lowercase()
    } else {
        moot_text::fold_unaccented(text)
    }
}

/// Items with their folded keys, indexed by kind and category, ready for many queries.
#[derive(Debug, Clone, Default)]
pub struct Board {
    /// Sorted by id, one per id.
    entries: Vec<Entry>,
    /// (kind, folded category) → indices into `entries`, ascending (so ascending by id).
    by_category: BTreeMap<(ItemKind, String), Vec<usize>>,
}

#[derive(Debug, Clone)]
struct Entry {
    item: ItemView,
    /// The folded area with white space runs collapsed; empty when unknown.
    area: String,
}

impl Board {
    /// Folds every item's category and area once and indexes them. Item ids should be unique
    /// (they are op ids); if one appears twice, the lesser item in [`ItemView`]'s derived order
    /// is kept, so the board does not depend on the order of `items`.
    pub fn new(mut items: Vec<ItemView>) -> Board {
        items.sort_unstable();
        items.dedup_by(|later, earlier| later.id == earlier.id);
        let mut by_category: BTreeMap<(ItemKind, String), Vec<usize>> = BTreeMap::new();
        let mut entries = Vec::with_capacity(items.len());
        for (index, item) in items.into_iter().enumerate() {
            let category = fold_key(&item.category);
            if !category.is_empty() {
                by_category
                    .entry((item.kind, category))
                    .or_default()
                    .push(index);
            }
            let area = area_key(item.area.as_deref());
            entries.push(Entry { item, area });
        }
        Board {
            entries,
            by_category,
        }
    }

    /// The number of items (one per id).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True if the board holds no item.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The item with this id.
    pub fn get(&self, id: &[u8; 32]) -> Option<&ItemView> {
        self.position(id).map(|index| &self.entries[index].item)
    }

    fn position(&self, id: &[u8; 32]) -> Option<usize> {
        self.entries
            .binary_search_by(|entry| entry.item.id.cmp(id))
            .ok()
    }

    /// The suggestions for the board's item `target_id` (none if it is not on the board).
    pub fn matches(&self, target_id: &[u8; 32], now: u64, limit: usize) -> Vec<Match> {
        match self.position(target_id) {
            Some(index) => {
                let entry = &self.entries[index];
                self.ranked(&entry.item, &entry.area, now, limit)
            }
            None => Vec::new(),
        }
    }

    /// The suggestions for `target`, which need not be on the board (a draft, say).
    pub fn matches_for(&self, target: &ItemView, now: u64, limit: usize) -> Vec<Match> {
        self.ranked(target, &area_key(target.area.as_deref()), now, limit)
    }

    fn ranked(&self, target: &ItemView, target_area: &str, now: u64, limit: usize) -> Vec<Match> {
        if limit == 0 || !target.is_available(now) {
            return Vec::new();
        }
        let category = fold_key(&target.category);
        let Some(candidates) = self.by_category.get(&(target.kind.opposite(), category)) else {
            return Vec::new();
        };
        // Score without allocating; reasons are built for the kept few only.
        let mut scored: Vec<(u32, usize)> = candidates
            .iter()
            .filter_map(|&index| {
                let entry = &self.entries[index];
                is_eligible(target, &entry.item, now)
                    .then(|| (score(reasons(target, target_area, entry)), index))
            })
            .collect();
        // Higher score first; equal scores by ascending index, which is ascending id.
        let order = |a: &(u32, usize), b: &(u32, usize)| b.0.cmp(&a.0).then(a.1.cmp(&b.1));
        if scored.len() > limit {
            scored.select_nth_unstable_by(limit - 1, order);
            scored.truncate(limit);
        }
        scored.sort_unstable_by(order);
        scored
            .into_iter()
            .map(|(score, index)| {
                let entry = &self.entries[index];
                Match {
                    id: entry.item.id,
                    score,
                    reasons: reasons(target, target_area, entry).collect(),
                }
            })
            .collect()
    }
}

fn score(reasons: impl Iterator<Item = MatchReason>) -> u32 {
    reasons.map(MatchReason::points).sum()
}

/// The reasons `entry` suits `target`, in table order (category is already known to match).
fn reasons<'a>(
    target: &'a ItemView,
    target_area: &'a str,
    entry: &'a Entry,
) -> impl Iterator<Item = MatchReason> + 'a {
    let area = match area_match(target_area, &entry.area) {
        AreaMatch::Same => Some(MatchReason::SameArea),
        AreaMatch::Nearby => Some(MatchReason::NearbyArea),
        AreaMatch::Other => None,
    };
    let time = target
        .window
        .overlaps(&entry.item.window)
        .then_some(MatchReason::TimeOverlap);
    let (offer, request) = match target.kind {
        ItemKind::Offer => (target, &entry.item),
        ItemKind::Request => (&entry.item, target),
    };
    let covers = match (offer.remaining(), request.remaining()) {
        (Some(available), Some(wanted)) => available >= wanted,
        _ => false,
    };
    area.into_iter()
        .chain(time)
        .chain(covers.then_some(MatchReason::QuantityCovers))
}

enum AreaMatch {
    Same,
    Nearby,
    Other,
}

/// Compares two area keys from [`area_key`]; empty means unknown.
fn area_match(a: &str, b: &str) -> AreaMatch {
    if a.is_empty() || b.is_empty() {
        return AreaMatch::Other;
    }
    if a == b {
        return AreaMatch::Same;
    }
    let (short, long) = if a.len() < b.len() { (a, b) } else { (b, a) };
    if long.starts_with(short) && long.as_bytes().get(short.len()) == Some(&b' ') {
        return AreaMatch::Nearby;
    }
    // Two postcodes of one district: full postcodes (two words or more) whose first words, an
    // outward code of letters and digits, are the same.
    match (district(a), district(b)) {
        (Some(x), Some(y)) if x == y => AreaMatch::Nearby,
        _ => AreaMatch::Other,
    }
}

/// The district of an area key that is a full postcode: its first word, an outward code of
/// letters and digits, when more words follow.
fn district(key: &str) -> Option<&str> {
    let (first, rest) = key.split_once(' ')?;
    let code = !rest.is_empty()
        && first.chars().any(|c| c.is_ascii_digit())
        && first.chars().any(char::is_alphabetic);
    code.then_some(first)
}

/// The folded area with each run of white space as one ASCII space; empty when unknown.
fn area_key(area: Option<&str>) -> String {
    let Some(area) = area else {
        return String::new();
    };
    let folded = fold_key(area);
    let mut key = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.push_str(word);
    }
    key
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn area_keys_and_comparison() {
        assert_eq!(area_key(Some("  E1\t 6AN ")), "e1 6an");
        assert_eq!(area_key(None), "");
        assert_eq!(area_key(Some(" \u{200b} ")), "");
        let cmp = |a: &str, b: &str| match area_match(&area_key(Some(a)), &area_key(Some(b))) {
            AreaMatch::Same => "same",
            AreaMatch::Nearby => "nearby",
            AreaMatch::Other => "other",
        };
        assert_eq!(cmp("e1", "E1"), "same");
        assert_eq!(cmp("E1", "E1 6AN"), "nearby");
        assert_eq!(cmp("E1 6AN", "E1"), "nearby");
        assert_eq!(cmp("E1", "E16"), "other");
        assert_eq!(cmp("E1 6AN", "e1  7aa"), "nearby");
        assert_eq!(cmp("E1 6AN", "E16 6AN"), "other");
        assert_eq!(cmp("North London", "North Yorkshire"), "other");
        assert_eq!(cmp("Ward 7 North", "Ward 7 South"), "other");
        assert_eq!(cmp("7 North", "7 South"), "other");
        assert_eq!(cmp("Élancourt", "elancourt"), "same");
        // Categories compare the same way: accents do not hide a match.
        assert_eq!(fold_key("Café"), fold_key("cafe"));
        assert_eq!(fold_key("tóols"), fold_key("Tools"));
        assert_eq!(cmp("", "E1"), "other");
    }

    proptest::proptest! {
        #[test]
        fn the_ascii_shortcut_agrees_with_fold(text in "[\\x00-\\x7f]{0,40}") {
            proptest::prop_assert_eq!(fold_key(&text), moot_text::fold_unaccented(&text));
        }

        #[test]
        fn fold_key_is_fold_unaccented(text in "\\PC{0,20}") {
            proptest::prop_assert_eq!(fold_key(&text), moot_text::fold_unaccented(&text));
        }
    }

    #[test]
    fn windows() {
        let w = |from, until| Window { from, until };
        assert!(w(None, None).overlaps(&w(Some(5), Some(6))));
        assert!(w(Some(1), Some(5)).overlaps(&w(Some(5), Some(9))));
        assert!(!w(Some(1), Some(4)).overlaps(&w(Some(5), Some(9))));
        assert!(!w(Some(9), Some(1)).overlaps(&w(None, None)));
        assert!(w(None, Some(9)).is_over(10));
        assert!(!w(None, Some(10)).is_over(10));
        assert!(!w(None, None).is_over(u64::MAX));
    }
}
