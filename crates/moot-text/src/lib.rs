//! Text that comes from people (names, options, titles, constituencies): how it is normalised
//! before it is stored or signed, how two texts are judged "the same" for duplicate checks, and
//! how it is shown on a terminal so that it can never drive the terminal. Pure: no IO.
//!
//! - [`normalize`]: NFC, then surrounding white space trimmed. Every name that goes into a
//!   signed op or a tally goes through it, so two nodes never disagree on the bytes.
//! - [`fold`]: the duplicate key: [`normalize`], then lower-cased. Two option or member names
//!   with the same key are the same name (`"Ada"`, `" ada "`, `"A\u{301}da"` vs `"Ádá"`…).
//! - [`escape`]: for human (text) output only. Control characters (C0, DEL, C1), line and
//!   paragraph separators and Unicode bidirectional controls are replaced by visible escapes
//!   (`\n`, `\r`, `\t`, `\u{1b}`, `\u{202e}`…), so a name like `"Ben\x1b[2K\rAda"` prints as
//!   `Ben\u{1b}[2K\rAda`, and a name with a newline cannot forge a row. JSON output carries the
//!   text exactly and never goes through this.
//!
//! ```
//! assert_eq!(moot_text::escape("Ben\u{1b}[2K\rAda"), "Ben\\u{1b}[2K\\rAda");
//! assert_eq!(moot_text::normalize("  Ada \n"), "Ada");
//! assert_eq!(moot_text::fold(" ADA"), moot_text::fold("ada"));
//! ```

use std::borrow::Cow;
use std::fmt::Write as _;

use unicode_normalization::UnicodeNormalization as _;

/// True for characters that must never reach a terminal as themselves.
pub fn is_unsafe(c: char) -> bool {
    c.is_control() // C0 controls, DEL, C1 controls (U+0080..U+009F)
        || matches!(
            c,
            '\u{061C}' // Arabic letter mark
            | '\u{200E}' | '\u{200F}' // left-to-right / right-to-left marks
            | '\u{202A}'..='\u{202E}' // embeddings and overrides
            | '\u{2066}'..='\u{2069}' // isolates
            | '\u{2028}' | '\u{2029}' // line and paragraph separators
            | '\u{FEFF}' // byte order mark / zero-width no-break space
        )
}

/// `text` made safe for a terminal: every [`is_unsafe`] character replaced by a visible escape.
/// Borrowed (no copy) when nothing needed escaping.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unsafe(c) => {
                // Writing into a String cannot fail.
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
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

/// The key under which two names are duplicates: [`normalize`]d, then lower-cased (and
/// re-composed, since lower-casing can decompose).
pub fn fold(text: &str) -> String {
    normalize(text).to_lowercase().nfc().collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

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

    proptest! {
        #[test]
        fn escaped_text_is_always_safe(text in any::<String>()) {
            let escaped = escape(&text);
            prop_assert!(!escaped.chars().any(is_unsafe));
            // Nothing is lost: text without unsafe characters comes back unchanged.
            if !text.chars().any(is_unsafe) {
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
    }
}
