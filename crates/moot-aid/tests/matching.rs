//! Matching: who is suggested, in what order, the same order whatever order the items came in,
//! and odd text never panics.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_aid::matching::{Board, ItemKind, ItemView, Match, MatchReason, Status, Window, matches};
use proptest::prelude::*;

const NOW: u64 = 1_800_000_000;
const ALICE: [u8; 32] = [0xa1; 32];

fn id(n: u8) -> [u8; 32] {
    let mut id = [0; 32];
    id[0] = n;
    id
}

fn item(n: u8, kind: ItemKind, category: &str, area: Option<&str>) -> ItemView {
    ItemView {
        id: id(n),
        kind,
        status: Status::Open,
        category: category.to_string(),
        area: area.map(str::to_string),
        window: Window::default(),
        quantity: None,
        pledged: 0,
        author: [n; 32],
    }
}

/// Alice's request for food in E1 6AN, this week.
fn target() -> ItemView {
    ItemView {
        author: ALICE,
        window: Window {
            from: Some(NOW),
            until: Some(NOW + 7 * 86_400),
        },
        ..item(200, ItemKind::Request, "Food", Some("E1 6AN"))
    }
}

fn ids(found: &[Match]) -> Vec<u8> {
    found.iter().map(|m| m.id[0]).collect()
}

fn later(mut view: ItemView) -> ItemView {
    view.window = Window {
        from: Some(NOW + 30 * 86_400),
        until: Some(NOW + 31 * 86_400),
    };
    view
}

#[test]
fn same_area_then_nearby_then_elsewhere_and_overlap_before_disjoint() {
    let items = vec![
        item(1, ItemKind::Offer, "food", Some("N1")), // elsewhere, any time
        item(2, ItemKind::Offer, "FOOD", Some("e1  6an")), // same area, any time
        item(3, ItemKind::Offer, " Food ", Some("E1")), // nearby, any time
        later(item(4, ItemKind::Offer, "food", Some("E1 6AN"))), // same area, later
        later(item(5, ItemKind::Offer, "food", Some("E1"))), // nearby, later
        later(item(6, ItemKind::Offer, "food", None)), // unknown area, later
        item(7, ItemKind::Offer, "food", None),       // unknown area, any time
        item(8, ItemKind::Offer, "ｆｏｏｄ", Some("E1 6AN")), // full-width category: same
        target(),
    ];
    let found = matches(&target(), &items, NOW, 100);
    assert_eq!(ids(&found), vec![2, 8, 3, 4, 5, 1, 7, 6]);
    assert_eq!(found[0].score, 90);
    assert_eq!(
        found[0].reasons,
        vec![MatchReason::SameArea, MatchReason::TimeOverlap]
    );
    assert_eq!(
        found[2].reasons,
        vec![MatchReason::NearbyArea, MatchReason::TimeOverlap]
    );
    assert_eq!(found[3].reasons, vec![MatchReason::SameArea]);
    assert_eq!(found[5].reasons, vec![MatchReason::TimeOverlap]);
    assert_eq!(found[7].reasons, vec![]);
    assert_eq!(
        found.iter().map(|m| m.score).collect::<Vec<_>>(),
        vec![90, 90, 70, 60, 40, 30, 30, 0]
    );
    // The limit keeps the best.
    assert_eq!(ids(&matches(&target(), &items, NOW, 3)), vec![2, 8, 3]);
    assert!(matches(&target(), &items, NOW, 0).is_empty());
}

#[test]
fn own_closed_expired_and_other_category_items_are_left_out() {
    let mut own = item(1, ItemKind::Offer, "food", Some("E1 6AN"));
    own.author = ALICE;
    let closed: Vec<ItemView> = [Status::Fulfilled, Status::Withdrawn, Status::Expired]
        .into_iter()
        .enumerate()
        .map(|(i, status)| ItemView {
            status,
            ..item(10 + i as u8, ItemKind::Offer, "food", Some("E1 6AN"))
        })
        .collect();
    let mut over = item(20, ItemKind::Offer, "food", Some("E1 6AN"));
    over.window.until = Some(NOW - 1);
    let mut ends_now = item(21, ItemKind::Offer, "food", Some("E1 6AN"));
    ends_now.window.until = Some(NOW);
    let pledged_whole = ItemView {
        status: Status::Pledged,
        ..item(22, ItemKind::Offer, "food", Some("E1 6AN"))
    };
    let pledged_part = ItemView {
        status: Status::Pledged,
        quantity: Some(10),
        pledged: 4,
        ..item(23, ItemKind::Offer, "food", Some("E1 6AN"))
    };
    let pledged_all = ItemView {
        status: Status::Pledged,
        quantity: Some(10),
        pledged: 10,
        ..item(24, ItemKind::Offer, "food", Some("E1 6AN"))
    };
    let other_request = item(30, ItemKind::Request, "food", Some("E1 6AN"));
    let other_category = item(31, ItemKind::Offer, "foods", Some("E1 6AN"));
    let blank_category = item(32, ItemKind::Offer, " \u{200b}", Some("E1 6AN"));
    let mut items = vec![
        own,
        over,
        ends_now,
        pledged_whole,
        pledged_part,
        pledged_all,
    ];
    items.extend(closed);
    items.extend([other_request, other_category, blank_category, target()]);
    assert_eq!(ids(&matches(&target(), &items, NOW, 100)), vec![21, 23]);
    // The day after, the item that ended today is over too.
    assert_eq!(ids(&matches(&target(), &items, NOW + 1, 100)), vec![23]);
}

#[test]
fn a_closed_target_or_a_blank_category_has_no_matches() {
    let items = vec![item(1, ItemKind::Offer, "food", None)];
    let mut closed = target();
    closed.status = Status::Fulfilled;
    assert!(matches(&closed, &items, NOW, 10).is_empty());
    let mut blank = target();
    blank.category = "  ".into();
    assert!(matches(&blank, &[item(1, ItemKind::Offer, "  ", None)], NOW, 10).is_empty());
}

#[test]
fn quantity_that_covers_the_request_ranks_within_its_tier() {
    let mut wanted = target();
    wanted.quantity = Some(5);
    let small = ItemView {
        quantity: Some(3),
        ..item(1, ItemKind::Offer, "food", Some("E1 6AN"))
    };
    let big = ItemView {
        quantity: Some(8),
        pledged: 2,
        ..item(2, ItemKind::Offer, "food", Some("E1 6AN"))
    };
    let nearby_big = ItemView {
        quantity: Some(50),
        ..item(3, ItemKind::Offer, "food", Some("E1"))
    };
    let found = matches(&wanted, &[small, big, nearby_big], NOW, 10);
    assert_eq!(ids(&found), vec![2, 1, 3]);
    assert_eq!(found[0].score, 95);
    assert_eq!(found[0].reasons.last(), Some(&MatchReason::QuantityCovers));
    assert_eq!(found[2].score, 75);
}

#[test]
fn an_offer_finds_requests_and_the_board_answers_by_id() {
    let offer = ItemView {
        author: ALICE,
        ..item(100, ItemKind::Offer, "Lifts", Some("SW1A"))
    };
    let items = vec![
        offer.clone(),
        item(1, ItemKind::Request, "lifts", Some("SW1A 1AA")),
        item(2, ItemKind::Request, "lifts", Some("sw1a")),
        item(3, ItemKind::Offer, "lifts", Some("sw1a")),
    ];
    let board = Board::new(items);
    assert_eq!(board.len(), 4);
    assert_eq!(ids(&board.matches(&offer.id, NOW, 10)), vec![2, 1]);
    assert_eq!(board.matches(&id(99), NOW, 10), vec![]);
    assert_eq!(board.get(&id(2)).map(|v| v.kind), Some(ItemKind::Request));
    assert!(Board::default().is_empty());
}

#[test]
fn equal_scores_are_ordered_by_id() {
    let items: Vec<ItemView> = [9u8, 3, 7, 1, 5]
        .into_iter()
        .map(|n| item(n, ItemKind::Offer, "food", Some("E1 6AN")))
        .collect();
    assert_eq!(
        ids(&matches(&target(), &items, NOW, 10)),
        vec![1, 3, 5, 7, 9]
    );
}

/// A small world, so that categories, areas and windows collide often.
fn arb_item() -> impl Strategy<Value = ItemView> {
    (
        (any::<u8>(), any::<bool>(), 0..5u8, 0..4usize, 0..6usize),
        (
            proptest::option::of(0..20u64),
            proptest::option::of(0..20u64),
        ),
        (proptest::option::of(0..6u32), 0..4u32, 0..4u8),
    )
        .prop_map(
            |((n, offer, status, category, area), (from, until), (quantity, pledged, author))| {
                ItemView {
                    id: id(n),
                    kind: if offer {
                        ItemKind::Offer
                    } else {
                        ItemKind::Request
                    },
                    status: [
                        Status::Open,
                        Status::Pledged,
                        Status::Fulfilled,
                        Status::Withdrawn,
                        Status::Expired,
                    ][status as usize],
                    category: ["food", "FOOD", "lifts", ""][category].to_string(),
                    area: [
                        None,
                        Some("E1"),
                        Some("e1 6an"),
                        Some("E1 7AA"),
                        Some("N1"),
                        Some(" "),
                    ][area]
                        .map(str::to_string),
                    window: Window {
                        from: from.map(|f| f + 90),
                        until: until.map(|u| u + 95),
                    },
                    quantity,
                    pledged,
                    author: [author; 32],
                }
            },
        )
}

proptest! {
    /// The suggestions depend on the items, not on the order they arrived in.
    #[test]
    fn order_of_arrival_does_not_matter(
        items in proptest::collection::vec(arb_item(), 0..60),
        target in arb_item(),
        shuffle in any::<u64>(),
        now in 95..115u64,
        limit in 0..20usize,
    ) {
        let mut shuffled = items.clone();
        // A deterministic Fisher–Yates driven by the drawn seed.
        let mut state = shuffle | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let mut reversed = items.clone();
        reversed.reverse();
        let expected = matches(&target, &items, now, limit);
        prop_assert_eq!(&matches(&target, &shuffled, now, limit), &expected);
        prop_assert_eq!(&matches(&target, &reversed, now, limit), &expected);
        // And the list is sorted: score down, then id up, with no id twice.
        for pair in expected.windows(2) {
            prop_assert!(
                pair[0].score > pair[1].score
                    || (pair[0].score == pair[1].score && pair[0].id < pair[1].id)
            );
        }
        prop_assert!(expected.len() <= limit);
        // With unique ids, the one-shot path and a kept board agree.
        let mut unique = items.clone();
        unique.sort_by_key(|item| item.id);
        unique.dedup_by_key(|item| item.id);
        prop_assert_eq!(
            matches(&target, &unique, now, limit),
            Board::new(unique).matches_for(&target, now, limit)
        );
        for found in &expected {
            prop_assert_eq!(
                found.score,
                found.reasons.iter().map(|r| r.points()).sum::<u32>()
            );
        }
    }
}

proptest! {
    // Texts up to ~100 kB each, folded unoptimised: fewer cases.
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Empty, very long and control-laden text never panics, and a category still matches
    /// itself.
    #[test]
    fn odd_text_never_panics(
        category in "\\PC{0,40}|[\\x00-\\x1f\\u{200b}\\u{202e}\\u{fe0f} ]{0,20}",
        area in proptest::option::of("\\PC{0,40}|[\\x00-\\x1f\\u{200b}\\u{202e} a-z0-9]{0,20}"),
        repeat in 1..2000usize,
    ) {
        let long = category.repeat(repeat);
        let mut me = target();
        me.category = long.clone();
        me.area = area.clone();
        let them = ItemView {
            category: long,
            area: area.map(|a| a.repeat(repeat)),
            ..item(1, ItemKind::Offer, "", None)
        };
        let found = matches(&me, &[them, me.clone()], NOW, 10);
        let blank = moot_text::fold_unaccented(&me.category).is_empty();
        prop_assert_eq!(found.len(), usize::from(!blank));
    }
}

/// Found by `odd_text_never_panics`: a category of a Malayalam vowel sign alone was folded to
/// nothing (every combining mark was dropped as an accent), so it matched nothing, itself
/// included. Vowel signs are kept now; an accent alone is still blank.
#[test]
fn a_category_of_a_vowel_sign_matches_itself_and_one_of_an_accent_alone_nothing() {
    for (category, expected) in [("\u{d3e}", 1), ("ഭക്ഷണം", 1), ("\u{301}", 0)] {
        let mut me = target();
        me.category = category.to_string();
        let them = ItemView {
            category: category.to_string(),
            ..item(1, ItemKind::Offer, "", None)
        };
        assert_eq!(
            matches(&me, &[them], NOW, 10).len(),
            expected,
            "{category:?}"
        );
    }
}
