//! The roll view: written with every change, used while current, rebuilt from the ops when not.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_node::{AddAs, Node};

#[test]
fn the_roll_view_is_a_rebuildable_cache_of_the_ops() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Node::open(dir.path()).unwrap();
    node.init("Fay", None).unwrap();
    let fay = node.signer(None, None).unwrap();
    let hub = node.create_hub("Riverside", &fay).unwrap();
    let ann = node.new_member_key("Ann", None).unwrap();
    node.add_member(&hub, &fay, ann, "Ann", None, AddAs::Member)
        .unwrap();
    let old_view = node
        .store()
        .unwrap()
        .view(&hub, "roll")
        .unwrap()
        .expect("written with the change");
    assert_eq!(node.members(&hub).unwrap().len(), 2);

    let bob = node.new_member_key("Bob", None).unwrap();
    node.add_member(&hub, &fay, bob, "Bob", None, AddAs::Guest)
        .unwrap();
    let members = node.members(&hub).unwrap();
    assert_eq!(members.len(), 3);
    assert_eq!(
        members
            .iter()
            .find(|m| m.member_id == bob.to_string())
            .unwrap()
            .status,
        "guest"
    );

    // A stale view (from before Bob) or an unreadable one is not trusted: the roll is derived
    // from the ops again, and comes out the same.
    node.store()
        .unwrap()
        .put_view(&hub, "roll", &old_view)
        .unwrap();
    assert_eq!(node.members(&hub).unwrap(), members);
    node.store()
        .unwrap()
        .put_view(&hub, "roll", b"garbage")
        .unwrap();
    assert_eq!(node.members(&hub).unwrap(), members);
}
