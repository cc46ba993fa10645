#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;
use moot_doc::*;
#[test]
fn smoke() {
    let (doc, changes) = common::edit_script(7, 50, 3);
    for c in &changes {
        let info = prescan(c, &Limits::default()).unwrap();
        let am = automerge::Change::try_from(&c[..]).unwrap();
        assert_eq!(info.hash, am.hash().0);
        assert_eq!(info.ops as usize, am.len());
        println!("{} ops={} root={}", c.len(), info.ops, info.touches_root);
    }
    let mut d = Document::from_creator(&changes[0]).unwrap();
    let rest: Vec<(Key, &[u8])> = changes[1..]
        .iter()
        .enumerate()
        .map(|(i, c)| ([i as u8 + 1; 32], &c[..]))
        .collect();
    let ex = d.apply(&rest);
    assert!(ex.is_empty(), "{ex:?}");
    assert_eq!(d.text(), common::text_of(&doc));
}
