//! Text that comes from people (names, options, titles, constituencies): how it is normalised
//! before it is stored or signed, how two texts are judged "the same" for duplicate checks, and
//! how it is shown on a terminal so that it can never drive the terminal. Pure: no IO.
//!
//! - [`normalize`]: NFC, then surrounding white space trimmed. Every name that goes into a
//!   signed op or a tally goes through it, so two nodes never disagree on the bytes.
//! - [`fold`]: the duplicate key: [`normalize`], invisible (default-ignorable) characters
//!   removed, compatibility forms unified, fully case-folded. Two option or member names with
//!   the same key are the same name (`"Ada"`, `" ada "`, `"A\u{301}da"` vs `"Ádá"`,
//!   `"A\u{200b}da"`, `"Straße"` vs `"STRASSE"`…).
//! - [`is_blank`]: a name that shows as nothing (empty, spaces, only invisible characters).
//! - [`escape`]: for human (text) output only. Control characters (C0, DEL, C1), line and
//!   paragraph separators, Unicode bidirectional controls and invisible characters (zero-width
//!   spaces, soft hyphens, tag characters, fillers…; not the joiners ZWNJ/ZWJ, which words and
//!   emoji need) are replaced by visible escapes (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`,
//!   `\u{200b}`…), so a name like `"Ben\x1b[2K\rAda"` prints as `Ben\u{1b}[2K\rAda`, a name
//!   with a newline cannot forge a row, and `"Ada\u{200b}"` cannot pass for `"Ada"`. JSON output
//!   carries the text exactly and never goes through this.
//!
//! ```
//! assert_eq!(moot_text::escape("Ben\u{1b}[2K\rAda"), "Ben\\u{1b}[2K\\rAda");
//! assert_eq!(moot_text::normalize("  Ada \n"), "Ada");
//! assert_eq!(moot_text::fold(" ADA"), moot_text::fold("ada"));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_normalization::UnicodeNormalization as _;

/// True for Unicode's default-ignorable code points (`Default_Ignorable_Code_Point` in
/// `DerivedCoreProperties.txt`, Unicode 16): characters a renderer shows as nothing at all
/// (zero-width spaces and joiners, soft hyphen, word joiner, invisible operators, fillers,
/// variation selectors, tag characters…). Two names that differ only by them look the same.
pub fn is_default_ignorable(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{061C}'
            | '\u{115F}'..='\u{1160}'
            | '\u{17B4}'..='\u{17B5}'
            | '\u{180B}'..='\u{180F}'
            | '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{206F}'
            | '\u{3164}'
            | '\u{FE00}'..='\u{FE0F}'
            | '\u{FEFF}'
            | '\u{FFA0}'
            | '\u{FFF0}'..='\u{FFF8}'
            | '\u{1BCA0}'..='\u{1BCA3}'
            | '\u{1D173}'..='\u{1D17A}'
            | '\u{E0000}'..='\u{E0FFF}'
    )
}

/// Variation selectors (standard, ideographic and Mongolian free variation selectors): they
/// change how the character before them is drawn (`❤` + U+FE0F is the emoji heart), so they are
/// shown as themselves after a visible character and escaped anywhere else ([`escape`]).
fn is_variation_selector(c: char) -> bool {
    matches!(
        c,
        '\u{180B}'..='\u{180D}' | '\u{180F}' | '\u{FE00}'..='\u{FE0F}' | '\u{E0100}'..='\u{E01EF}'
    )
}

/// The zero-width non-joiner and joiner: invisible, but needed inside words (Persian, Indic
/// scripts) and emoji sequences (👩‍💻), so they are shown as themselves. [`fold`] ignores them.
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// True for characters that must never reach a terminal as themselves: they move the cursor or
/// drive the terminal (control characters, line and paragraph separators), reorder text (bidi
/// controls), or show as nothing and so hide what a name really is (every default-ignorable
/// code point but the two joiners and the variation selectors, which [`escape`] judges in
/// context; other invisible format characters such as the interlinear annotation marks and
/// the Arabic number signs that take no space).
pub fn is_unsafe(c: char) -> bool {
    c.is_control() // C0 controls, DEL, C1 controls (U+0080..U+009F)
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{0600}'..='\u{0605}' | '\u{06DD}' | '\u{070F}' | '\u{0890}'..='\u{0891}'
            | '\u{08E2}' | '\u{110BD}' | '\u{110CD}' // prepended number and abbreviation marks
            | '\u{13430}'..='\u{1343F}' // Egyptian hieroglyph format controls
            | '\u{FFF9}'..='\u{FFFB}' // interlinear annotation
        )
        || (is_default_ignorable(c) && !is_joiner(c) && !is_variation_selector(c))
}

/// Is `c` at this position escaped by [`escape`]? `previous` is the character before it as
/// shown (`None` at the start or after an escape): a variation selector is shown only right
/// after a visible character it can modify.
fn needs_escape(c: char, previous: Option<char>) -> bool {
    if is_variation_selector(c) {
        return previous
            .is_none_or(|p| p.is_whitespace() || is_variation_selector(p) || is_joiner(p));
    }
    is_unsafe(c)
}

/// `text` made safe for a terminal: every [`is_unsafe`] character, and every variation selector
/// that does not follow a visible character, replaced by a visible escape (`\n`, `\u{200b}`…).
/// Borrowed (no copy) when nothing needed escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    let mut previous = None;
    let clean = text.chars().all(|c| {
        let ok = !needs_escape(c, previous);
        previous = Some(c);
        ok
    });
    if clean {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut previous = None;
    for c in text.chars() {
        if !needs_escape(c, previous) {
            out.push(c);
            previous = Some(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
        previous = None;
    }
    Cow::Owned(out)
}

/// [`escape`] line by line: a text of several lines (a proposal's) keeps its line breaks, and
/// each line is escaped as one line would be (so a carriage return, a line separator or a bidi
/// control still shows as an escape and cannot move the cursor).
pub fn escape_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&escape(line));
    }
    out
}

/// `text` in Unicode normalisation form C with leading and trailing white space removed.
pub fn normalize(text: &str) -> String {
    let composed: String = text.nfc().collect();
    let trimmed = composed.trim();
    if trimmed.len() == composed.len() {
        composed
    } else {
        trimmed.to_string()
    }
}

/// True when `text` shows as nothing: empty, or only white space, control characters and
/// invisible characters (zero-width spaces, joiners, fillers, soft hyphens…). Such a name cannot
/// be told apart from an empty one, so it is refused wherever a name is required.
pub fn is_blank(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_whitespace() || is_unsafe(c) || is_default_ignorable(c) || c == '\u{2800}' // braille pattern blank: drawn as an empty cell
    })
}

/// The key under which two names are duplicates: what is left when everything a reader cannot
/// see is set aside. [`normalize`]d; every default-ignorable character removed (zero-width
/// spaces and joiners, soft hyphens, variation selectors…); compatibility forms unified (NFKC:
/// full-width `Ａ` is `A`, the ligature `ﬁ` is `fi`); then case-folded as upper-casing followed
/// by lower-casing (so `Straße` and `STRASSE` match, which lower-casing alone misses). Repeated
/// until it settles, so that `fold(fold(x)) == fold(x)` holds for every text.
pub fn fold(text: &str) -> String {
    let mut key = fold_once(text);
    // Case mappings and NFKC can each expose work for the other (rarely: a handful of
    // characters); a few rounds always settle it.
    for _ in 0..4 {
        let next = fold_once(&key);
        if next == key {
            break;
        }
        key = next;
    }
    key
}

/// [`fold`], with accents set aside as well (`Café` and `cafe`, `Ñandú` and `nandu`): the
/// folded text decomposed (NFD), its diacritics dropped, composed again. For keys where a
/// missing accent must not hide a match (the aid board's categories and areas); names keep
/// theirs. Only the combining diacritics shared by many scripts are dropped ([`is_diacritic`]):
/// the vowel signs and viramas of Indic and other scripts are letters of their words, not
/// accents (Malayalam `കാർ`, car, and `കർ` must not match), and are kept.
pub fn fold_unaccented(text: &str) -> String {
    let folded = fold(text);
    if folded.is_ascii() {
        return folded;
    }
    let bare: String = folded.nfd().filter(|&c| !is_diacritic(c)).collect();
    bare.nfc().collect()
}

/// True for a combining diacritical mark of the blocks shared across scripts (U+0300–U+036F
/// and its extensions, marks for symbols, half marks): what an accent decomposes into.
pub fn is_diacritic(c: char) -> bool {
    matches!(
        c,
        '\u{0300}'..='\u{036F}'
            | '\u{1AB0}'..='\u{1AFF}'
            | '\u{1DC0}'..='\u{1DFF}'
            | '\u{20D0}'..='\u{20FF}'
            | '\u{FE20}'..='\u{FE2F}'
    )
}

fn fold_once(text: &str) -> String {
    let visible: String = normalize(text)
        .chars()
        .filter(|&c| !is_default_ignorable(c))
        .collect();
    let compat: String = visible.nfkc().collect();
    let folded: String = compat.to_uppercase().to_lowercase().nfkc().collect();
    folded.trim().to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// Characters that must never reach a terminal raw, written out here independently of
    /// [`is_unsafe`] (which the tests must not use as their own oracle): controls, separators,
    /// bidi controls, and invisible characters that could hide or fake a name.
    const DANGEROUS: &[(u32, u32)] = &[
        (0x00, 0x1F),       // C0 controls
        (0x7F, 0x9F),       // DEL, C1 controls
        (0xAD, 0xAD),       // soft hyphen
        (0x34F, 0x34F),     // combining grapheme joiner
        (0x61C, 0x61C),     // Arabic letter mark
        (0x115F, 0x1160),   // Hangul choseong/jungseong fillers
        (0x17B4, 0x17B5),   // Khmer inherent vowels
        (0x180E, 0x180E),   // Mongolian vowel separator
        (0x200B, 0x200B),   // zero-width space
        (0x200E, 0x200F),   // LRM, RLM
        (0x2028, 0x2029),   // line, paragraph separators
        (0x202A, 0x202E),   // embeddings, overrides
        (0x2060, 0x2064),   // word joiner, invisible operators
        (0x2066, 0x2069),   // isolates
        (0x206A, 0x206F),   // deprecated format characters
        (0x3164, 0x3164),   // Hangul filler
        (0xFEFF, 0xFEFF),   // BOM / zero-width no-break space
        (0xFFA0, 0xFFA0),   // half-width Hangul filler
        (0xFFF9, 0xFFFB),   // interlinear annotation
        (0x1D173, 0x1D17A), // musical formatting
        (0xE0000, 0xE007F), // tag characters
    ];

    fn dangerous() -> impl Iterator<Item = char> {
        DANGEROUS
            .iter()
            .flat_map(|&(a, b)| (a..=b).filter_map(char::from_u32))
    }

    fn is_dangerous(c: char) -> bool {
        DANGEROUS
            .iter()
            .any(|&(a, b)| (a..=b).contains(&(c as u32)))
    }

    #[test]
    fn escapes_the_terminal_attacks() {
        assert_eq!(escape("Ben\u{1b}[2K\rAda"), "Ben\\u{1b}[2K\\rAda");
        assert_eq!(escape("Ann\nfake row"), "Ann\\nfake row");
        assert_eq!(escape("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(escape("\u{2067}x\u{2069}"), "\\u{2067}x\\u{2069}");
        assert_eq!(escape("a\u{85}b\u{7f}"), "a\\u{85}b\\u{7f}");
        assert_eq!(escape("tab\there"), "tab\\there");
    }

    #[test]
    fn escapes_every_invisible_character() {
        let mut count = 0;
        for c in dangerous() {
            let text = format!("Ada{c}");
            let escaped = escape(&text);
            assert!(
                !escaped.chars().any(is_dangerous),
                "U+{:04X} reached the terminal raw: {escaped:?}",
                c as u32
            );
            assert!(
                escaped.starts_with("Ada\\"),
                "U+{:04X}: {escaped:?}",
                c as u32
            );
            count += 1;
        }
        assert_eq!(count, 240, "the whole list is tried");
        assert_eq!(escape("Ada\u{200b}"), "Ada\\u{200b}");
        assert_eq!(escape("\u{ad}Ada"), "\\u{ad}Ada");
        assert_eq!(escape("A\u{e0041}"), "A\\u{e0041}");
    }

    #[test]
    fn joiners_and_variation_selectors_after_a_letter_are_shown() {
        // ZWNJ and ZWJ are part of words and emoji: shown as they are.
        for text in [
            "\u{645}\u{6cc}\u{200c}\u{62e}\u{648}\u{627}\u{647}\u{645}",
            "👩\u{200d}💻",
        ] {
            assert!(matches!(escape(text), Cow::Borrowed(_)), "{text}");
        }
        // A variation selector after a visible character draws it (the emoji heart)…
        assert!(matches!(escape("\u{2764}\u{fe0f}"), Cow::Borrowed(_)));
        assert!(matches!(escape("\u{845b}\u{e0100}"), Cow::Borrowed(_)));
        // …but alone, after a space or after another selector it hides in a name.
        assert_eq!(escape("\u{fe0f}Ada"), "\\u{fe0f}Ada");
        assert_eq!(escape("Ada \u{fe0f}"), "Ada \\u{fe0f}");
        assert_eq!(escape("A\u{fe0f}\u{fe0e}"), "A\u{fe0f}\\u{fe0e}");
        assert_eq!(escape("\u{200b}\u{fe0f}"), "\\u{200b}\\u{fe0f}");
    }

    #[test]
    fn leaves_ordinary_text_alone() {
        for text in ["Ada Lovelace", "Zoë", "Ádá", "日本語", "emoji 🎉", "a\\nb"] {
            assert!(matches!(escape(text), Cow::Borrowed(_)), "{text}");
        }
    }

    #[test]
    fn normalizes_and_folds() {
        assert_eq!(normalize("  A\u{301}da\t"), "\u{c1}da");
        assert_eq!(fold("A\u{301}DA"), fold("\u{e1}da"));
        assert_ne!(fold("Ada"), fold("Adam"));
        assert_eq!(normalize(""), "");
        assert_eq!(normalize(" \u{3000} "), "");
    }

    #[test]
    fn escape_lines_keeps_line_breaks_and_escapes_the_rest() {
        assert_eq!(escape_lines("one\ntwo"), "one\ntwo");
        assert_eq!(escape_lines("a\r\nb\u{1b}[2J"), "a\\r\nb\\u{1b}[2J");
        assert_eq!(escape_lines("x\u{2028}y\u{202e}"), "x\\u{2028}y\\u{202e}");
        assert_eq!(escape_lines(""), "");
        assert_eq!(escape_lines("\n"), "\n");
    }

    #[test]
    fn fold_unaccented_sets_accents_aside_and_keeps_the_rest_of_fold() {
        assert_eq!(fold_unaccented("Café"), "cafe");
        assert_eq!(fold_unaccented("CAFE\u{301}"), "cafe");
        assert_eq!(fold_unaccented("Ñandú"), "nandu");
        assert_eq!(fold_unaccented("ＴＯＯＬＳ"), "tools");
        assert_eq!(fold_unaccented("Straße"), fold("STRASSE"));
        // Letters that are not a base and a mark stay as they are.
        assert_eq!(fold_unaccented("Øl"), "øl");
        assert_eq!(fold_unaccented("tools"), "tools");
        assert_eq!(fold_unaccented("Tiếng Việt"), "tieng viet");
        // Vowel signs and viramas are letters of their words: kept (a category of a vowel sign
        // alone is not blank).
        assert_ne!(fold_unaccented("കാർ"), fold_unaccented("കർ"));
        assert_eq!(fold_unaccented("हिन्दी"), fold("हिन्दी"));
        assert_eq!(fold_unaccented("\u{d3e}"), "\u{d3e}");
        // An accent alone is blank.
        assert_eq!(fold_unaccented("\u{301}"), "");
    }

    #[test]
    fn fold_ignores_invisible_characters_and_folds_case_fully() {
        let ada = fold("Ada");
        for c in dangerous()
            .filter(|c| !c.is_control() && !matches!(c, '\u{2028}' | '\u{2029}'))
            .filter(|&c| !('\u{FFF9}'..='\u{FFFB}').contains(&c))
            .chain(['\u{200c}', '\u{200d}', '\u{fe0f}', '\u{e0100}', '\u{180b}'])
        {
            assert_eq!(fold(&format!("A{c}da")), ada, "U+{:04X}", c as u32);
            assert_eq!(fold(&format!("{c}Ada{c}")), ada, "U+{:04X}", c as u32);
        }
        assert_eq!(fold("Straße"), fold("STRASSE"));
        assert_eq!(fold("straße"), fold("Strasse"));
        assert_eq!(fold("ﬁsh"), fold("FISH"), "ligature");
        assert_eq!(fold("Ａｄａ"), ada, "full-width forms");
        assert_eq!(fold("ΣΟΦΙΑ"), fold("σοφια"));
        assert_eq!(fold("ΟΔΥΣΣΕΥΣ"), fold("Οδυσσευς"), "final sigma");
        assert_ne!(fold("Ada"), fold("Ida"));
        assert_ne!(fold("Straße"), fold("Strase"));
    }

    #[test]
    fn blank_means_nothing_visible() {
        for text in [
            "",
            "   ",
            "\u{200b}",
            "\u{200d}\u{200c}",
            " \u{ad}\u{2060}\u{feff} ",
            "\u{3164}\u{115f}\u{ffa0}",
            "\u{e0041}\u{e007f}",
            "\u{fe0f}",
            "\u{2800}",
            "\u{1b}\n",
        ] {
            assert!(is_blank(text), "{text:?}");
        }
        for text in ["A", "\u{200b}A", "👩\u{200d}💻", "-"] {
            assert!(!is_blank(text), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn escaped_text_is_always_safe(text in any::<String>()) {
            let escaped = escape(&text);
            prop_assert!(!escaped.chars().any(is_dangerous));
            // Nothing is lost: text without dangerous characters (or stray selectors) comes
            // back unchanged.
            let stray_selector = text.chars().any(|c| ('\u{fe00}'..='\u{fe0f}').contains(&c)
                || ('\u{e0100}'..='\u{e01ef}').contains(&c)
                || ('\u{180b}'..='\u{180f}').contains(&c));
            if !text.chars().any(is_dangerous) && !stray_selector {
                prop_assert_eq!(escaped.as_ref(), text.as_str());
            }
        }

        #[test]
        fn normalizing_is_idempotent(text in any::<String>()) {
            let once = normalize(&text);
            prop_assert_eq!(normalize(&once), once.clone());
            let folded = fold(&text);
            prop_assert_eq!(fold(&folded), folded);
        }

        #[test]
        fn invisible_characters_never_change_the_key(
            text in "[a-zA-Zß ]{1,12}",
            at in 0usize..12,
            c in proptest::sample::select(vec!['\u{200b}', '\u{200c}', '\u{200d}', '\u{ad}',
                '\u{2060}', '\u{feff}', '\u{34f}', '\u{e0020}', '\u{fe0f}']),
        ) {
            let at = text.char_indices().nth(at).map_or(text.len(), |(i, _)| i);
            let mut hidden = text.clone();
            hidden.insert(at, c);
            prop_assert_eq!(fold(&hidden), fold(&text));
        }
    }
}
