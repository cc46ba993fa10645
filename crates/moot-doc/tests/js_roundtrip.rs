//! Saved documents open in JS automerge with the same text (`moot proposal export` writes
//! `Document::save` bytes), and documents saved by JS automerge open here. The Rust half (our
//! loader gives the same text) always runs; the JS half runs when `node` is on PATH and
//! `tests/js/setup.sh` has installed the pinned `@automerge/automerge`, and says so when it
//! is skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::actor;
use moot_doc::{Document, Key, Limits, creator_change};

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js")
}

/// `Some(node)` when the JS half can run.
fn node() -> Option<&'static str> {
    let installed = js_dir().join("node_modules/@automerge/automerge").exists();
    let on_path = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    (installed && on_path).then_some("node")
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("moot-doc-js-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Documents with tricky text, one of them merged from concurrent edits.
fn documents() -> Vec<(&'static str, Document)> {
    let mut out = Vec::new();
    for (name, text) in [
        ("emoji", "Vote 🗳️ now 👩‍👩‍👧‍👦 🇪🇺!"),
        ("combining", "e\u{301}te\u{301} cafe\u{301} n\u{303}"),
        ("cjk", "提案：会員総会の日程 — 합의 — 日本語"),
        ("empty", ""),
    ] {
        let doc = Document::from_creator(&creator_change(&actor(1), text).unwrap()).unwrap();
        out.push((name, doc));
    }
    let creator = creator_change(&actor(1), "Motion: we meet monthly.").unwrap();
    let base = Document::from_creator(&creator).unwrap();
    let mut a = base.clone();
    let mut b = base.clone();
    let ca = a.edit(&actor(2), 0, 0, "🎉 Amended ").unwrap();
    let cb = b
        .replace_all(&actor(3), "Motion: we meet weekly (日曜).")
        .unwrap();
    let cb2 = b.edit(&actor(3), 8, 0, "e\u{301} ").unwrap();
    let mut merged = Document::from_creator(&creator).unwrap();
    let keyed: Vec<(Key, &[u8])> =
        vec![([1; 32], &ca[..]), ([2; 32], &cb[..]), ([3; 32], &cb2[..])];
    assert_eq!(merged.apply(&keyed), vec![]);
    out.push(("merged", merged));
    out
}

#[test]
fn saved_documents_open_with_the_same_text() {
    let dir = scratch();
    let node = node();
    for (name, doc) in documents() {
        let saved = doc.save();
        let loaded = Document::load(&saved, &Limits::default()).unwrap();
        assert_eq!(loaded.text(), doc.text(), "{name}");
        assert_eq!(
            loaded.len_utf16(),
            doc.text().encode_utf16().count(),
            "{name}"
        );
        let file = dir.join(format!("{name}.automerge"));
        std::fs::write(&file, &saved).unwrap();
        if let Some(node) = node {
            let out = Command::new(node)
                .current_dir(js_dir())
                .arg("roundtrip.mjs")
                .arg("load")
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["text"].as_str().unwrap(), doc.text(), "{name}");
            // JS string length counts UTF-16 units: our positions agree.
            assert_eq!(
                v["length"].as_u64().unwrap() as usize,
                doc.len_utf16(),
                "{name}"
            );
        }
    }
    if node.is_none() {
        eprintln!(
            "NOTE: the JS half of the round trip was skipped (needs `node` on PATH and \
             crates/moot-doc/tests/js/setup.sh run); the Rust loader half ran."
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn documents_saved_by_js_open_here() {
    let Some(node) = node() else {
        eprintln!("NOTE: JS-to-Rust direction skipped (no node or no tests/js/node_modules).");
        return;
    };
    let dir = scratch().join("from-js");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("js.automerge");
    let text = "Hello 👋 e\u{301} 日本";
    let out = Command::new(node)
        .current_dir(js_dir())
        .arg("roundtrip.mjs")
        .arg("save")
        .arg(&file)
        .arg(serde_json::to_string(text).unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut doc = Document::load(&std::fs::read(&file).unwrap(), &Limits::default()).unwrap();
    assert_eq!(doc.text(), format!("JS:{text}"));
    // And it can be edited here at a UTF-16 position past the emoji.
    let at = "JS:Hello 👋".encode_utf16().count();
    doc.edit(&actor(5), at, 0, "!").unwrap();
    assert_eq!(doc.text(), "JS:Hello 👋! e\u{301} 日本");
    std::fs::remove_dir_all(&dir).ok();
}
