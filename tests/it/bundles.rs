//! Sneakernet through the binary: the offline branch meeting with bundles alone — three data
//! directories (three branches), members voting at each while apart and each station closed,
//! bundles carried between them, the returning officer's close — and bundles refused whole
//! when cut off, altered or not causally complete, importing twice a no-op, and a poll
//! verified from a bundle with no data directory.

use serde_json::Value;

use crate::moot;
use crate::node::Data;

fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

fn file(data: &Data, name: &str) -> String {
    data.0.path().join(name).display().to_string()
}

/// Exports `from`'s hub and imports it into `to` → the import's JSON.
fn carry(from: &Data, to: &Data, name: &str) -> Value {
    let path = file(from, name);
    from.ok(&["bundle", "export", &path]);
    to.ok(&["bundle", "import", &path])
}

/// A voter whose key lives at `branch`, admitted by the steward at `hall`.
fn voter(hall: &Data, branch: &Data, name: &str) -> String {
    let id = field(&branch.ok(&["key", "new", "--name", name]), "member_id");
    hall.ok(&["member", "add", &id, "--name", name]);
    id
}

fn vote(branch: &Data, who: &str, poll: &str, a: u8, b: u8) {
    branch.ok(&[
        "--as",
        who,
        "vote",
        poll,
        "--score",
        &format!("Buses={a}"),
        "--score",
        &format!("Bikes={b}"),
    ]);
}

#[test]
fn the_offline_branch_meeting_with_bundles_alone() {
    let (hall, north, south) = (Data::new(), Data::new(), Data::new());
    let fay = field(&hall.ok(&["init", "--name", "Fay"]), "member_id");
    hall.ok(&["hub", "create", "Riverside"]);
    let nell = field(&north.ok(&["init", "--name", "Nell"]), "member_id");
    let sam = field(&south.ok(&["init", "--name", "Sam"]), "member_id");
    hall.ok(&["member", "add", &nell, "--name", "Nell"]);
    hall.ok(&["member", "add", &sam, "--name", "Sam"]);
    let north_voters: Vec<String> = (0..3)
        .map(|i| voter(&hall, &north, &format!("North {i}")))
        .collect();
    let south_voters: Vec<String> = (0..2)
        .map(|i| voter(&hall, &south, &format!("South {i}")))
        .collect();
    let poll = field(
        &hall.ok(&[
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            "Which campaign?",
            "--option",
            "Buses",
            "--option",
            "Bikes",
            "--station",
            &nell,
            "--station",
            &sam,
        ]),
        "poll_id",
    );
    hall.ok(&["poll", "open", &poll]);
    // The stick goes out to both branches: the hub is new there.
    assert_eq!(carry(&hall, &north, "out-n.bundle")["new_hub"], true);
    assert_eq!(carry(&hall, &south, "out-s.bundle")["new_hub"], true);
    // Apart: each branch votes and closes its station.
    for (i, v) in north_voters.iter().enumerate() {
        vote(&north, v, &poll, 5, i as u8);
    }
    vote(&north, &nell, &poll, 4, 4);
    north.ok(&["poll", "close-station", &poll]);
    for v in &south_voters {
        vote(&south, v, &poll, 0, 5);
    }
    vote(&south, &sam, &poll, 1, 3);
    south.ok(&["poll", "close-station", &poll]);
    vote(&hall, &fay, &poll, 2, 2);
    // The sticks come back; the hall sees what each side brought.
    let back_n = carry(&north, &hall, "back-n.bundle");
    let merge = &back_n["merge"];
    assert_eq!(merge["polls"][0]["theirs_only"], 4);
    assert_eq!(merge["polls"][0]["ours_only"], 1);
    assert_eq!(merge["by_family"]["polls"], 5); // 4 ballots + the station close
    carry(&south, &hall, "back-s.bundle");
    hall.ok(&["poll", "close", &poll]);
    // The result goes out again; all three show the same count.
    carry(&hall, &north, "final-n.bundle");
    carry(&hall, &south, "final-s.bundle");
    let results: Vec<Value> = [&hall, &north, &south]
        .iter()
        .map(|d| d.ok(&["poll", "results", &poll]))
        .collect();
    // 3 voters and Nell in the north, 2 and Sam in the south, Fay at the hall.
    assert_eq!(results[0]["counted"], 8);
    assert_eq!(results[0]["stage"], "closed");
    for r in &results[1..] {
        assert_eq!(r, &results[0]);
    }
    // …equal to tallying every ballot together, with the poll's seed.
    let csv = "Buses,Bikes\n5,0\n5,1\n5,2\n4,4\n0,5\n0,5\n1,3\n2,2\n";
    crate::polls::assert_equals_tally(&hall, &results[0], csv, "1");
    // Each station's share adds up: 4 north, 3 south, 1 at the hall ("elsewhere").
    let merges = hall.ok(&["merges"]);
    assert_eq!(merges["merges"].as_array().unwrap().len(), 2);
    // Anyone handed the final bundle can check the count, with no data directory.
    let verified = moot(
        &[
            "--json",
            "poll",
            "verify",
            &poll,
            "--bundle",
            &file(&hall, "final-n.bundle"),
        ],
        None,
    );
    let verified: Value = crate::json(&verified);
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["counted"], results[0]["counted"]);
    assert_eq!(verified["totals"], results[0]["totals"]);
}

#[test]
fn damaged_incomplete_and_repeated_bundles_change_nothing() {
    let (hall, branch) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let bob = field(&branch.ok(&["init", "--name", "Bob"]), "member_id");
    hall.ok(&["member", "add", &bob, "--name", "Bob"]);
    let first = file(&hall, "first.bundle");
    let exported = hall.ok(&["bundle", "export", &first]);
    let bytes = std::fs::read(&first).unwrap();
    let refused = |path: &str, needle: &str| {
        let (code, out, stderr) = branch.run(&["bundle", "import", path]);
        assert_eq!(code, 1, "{out} {stderr}");
        assert!(stderr.contains(needle), "{stderr}");
        assert_eq!(branch.ok(&["hubs"])["hubs"], Value::Array(vec![]));
    };
    // Cut off, altered anywhere: refused with the reason, nothing imported.
    let cut = file(&hall, "cut.bundle");
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).unwrap();
    refused(&cut, "truncated");
    for at in [20, 60, bytes.len() / 2, bytes.len() - 5] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x20;
        let altered = file(&hall, "altered.bundle");
        std::fs::write(&altered, &bad).unwrap();
        refused(&altered, "bundle refused");
    }
    // Importing twice: the second changes nothing.
    assert_eq!(
        branch.ok(&["bundle", "import", &first])["new_ops"],
        exported["ops"]
    );
    let roll = branch.ok(&["members"]);
    assert_eq!(branch.ok(&["bundle", "import", &first])["new_ops"], 0);
    assert_eq!(branch.ok(&["members"]), roll);
    // The public lane only (for guests).
    hall.ok(&["member", "update", &bob, "--name", "Robert"]);
    let public = file(&hall, "public.bundle");
    assert_eq!(
        hall.ok(&["bundle", "export", &public, "--lane", "public"])["lanes"],
        "public"
    );
    // A well-formed bundle missing an op that later ones depend on: refused whole.
    for name in ["Cy", "Dee"] {
        let id = field(&hall.ok(&["key", "new", "--name", name]), "member_id");
        hall.ok(&["member", "add", &id, "--name", name]);
    }
    let full = file(&hall, "full.bundle");
    hall.ok(&["bundle", "export", &full]);
    let (header, ops) = moot_bundle::read_all(&std::fs::read(&full).unwrap()[..], 1000).unwrap();
    let known = exported["ops"].as_u64().unwrap() as usize;
    assert!(ops.len() > known + 1);
    let mut writer = moot_bundle::Writer::new(Vec::new(), &header).unwrap();
    for op in &ops[known + 1..] {
        writer.op(op).unwrap();
    }
    let gap = file(&hall, "gap.bundle");
    std::fs::write(&gap, writer.finish().unwrap()).unwrap();
    let before = branch.ok(&["members"]);
    let (code, _, stderr) = branch.run(&["bundle", "import", &gap]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("nothing was imported"), "{stderr}");
    assert_eq!(branch.ok(&["members"]), before);
    // The whole bundle then imports.
    assert!(
        branch.ok(&["bundle", "import", &full])["new_ops"]
            .as_u64()
            .unwrap()
            > 0
    );
    // A node with a hub of its own keeps it as its default when a bundle brings another.
    let own = Data::new();
    own.ok(&["init", "--name", "Oli"]);
    let own_hub = field(&own.ok(&["hub", "create", "Hillside"]), "hub_id");
    assert_eq!(own.ok(&["bundle", "import", &full])["new_hub"], true);
    let hubs = own.ok(&["hubs"]);
    let default: Vec<&Value> = hubs["hubs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["default"] == true)
        .collect();
    assert_eq!(default.len(), 1);
    assert_eq!(default[0]["hub_id"], own_hub.as_str());
    assert_eq!(hubs["hubs"].as_array().unwrap().len(), 2);
}

/// A copied data directory: the copy writes with the same device key; when the original sees
/// those ops (here through a bundle) it refuses to write with that device — it would sign a
/// second op for a sequence number the copy used — and says how to recover: a new device key,
/// after which it writes again.
#[test]
fn a_copied_data_directory_stops_the_original_from_equivocating() {
    let Copied {
        original,
        ben,
        stderr,
        ..
    } = copied_and_refused();
    assert!(stderr.contains("moot key new-device"), "{stderr}");
    assert!(stderr.contains("\"refused\""), "{stderr}");
    let fresh = original.ok(&["key", "new-device"]);
    assert_eq!(field(&fresh, "device").len(), 64);
    original.ok(&["member", "add", &ben, "--name", "Ben"]);
    let members = original.ok(&["members"]);
    assert_eq!(members["members"].as_array().unwrap().len(), 3);
}

/// The same when the directory was copied after joining a hub and before this node wrote
/// anything in it (so neither copy has a record of writing): the copy's first write (its
/// device's certification) reaches the original, which then refuses to write.
#[test]
fn a_directory_copied_before_its_first_write_stops_the_original_too() {
    let hall = Data::new();
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let original = Data::new();
    let ann = field(&original.ok(&["init", "--name", "Ann"]), "member_id");
    hall.ok(&["member", "add", &ann, "--name", "Ann"]);
    let path = file(&hall, "hall.bundle");
    hall.ok(&["bundle", "export", &path]);
    original.ok(&["bundle", "import", &path]);
    let copy = Data::new();
    copy_dir(&original.dir(), &copy.dir());
    copy.ok(&[
        "proposal",
        "create",
        "--assembly",
        "activism",
        "--title",
        "From the copy",
        "--body",
        "Written on the second machine.",
    ]);
    let path = file(&copy, "copy.bundle");
    copy.ok(&["bundle", "export", &path]);
    original.ok(&["bundle", "import", &path]);
    let (code, _, stderr) = original.run(&[
        "proposal",
        "create",
        "--assembly",
        "activism",
        "--title",
        "From the original",
        "--body",
        "Written on the first machine.",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("moot key new-device"), "{stderr}");
}

/// The copy the refusal names the old device of: with its new device key, the original
/// revokes the old one. What the other copy writes with it afterwards, not having heard,
/// counts for nothing there; the old device cannot be revoked twice, the device a command
/// signs with not at all, and an unknown one is not found.
#[test]
fn the_original_revokes_the_copied_device_and_the_copys_later_writes_do_not_count() {
    let Copied {
        original,
        copy,
        fay,
        ann,
        ben,
        stderr,
    } = copied_and_refused();
    let named = stderr
        .split("moot member revoke-device ")
        .nth(1)
        .and_then(|rest| rest.get(..64))
        .unwrap_or_else(|| panic!("no device to revoke named: {stderr}"))
        .to_string();
    // Not with the device the command signs with.
    let (code, _, stderr) = original.run(&["member", "revoke-device", &named]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("\"refused\"") && stderr.contains("new-device"),
        "{stderr}"
    );
    original.ok(&["key", "new-device"]);
    let revoked = original.ok(&["member", "revoke-device", &named]);
    assert_eq!(revoked["member_id"], fay.as_str());
    assert_eq!(revoked["device"], named.as_str());
    let (code, _, stderr) = original.run(&["member", "revoke-device", &named]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("revoked already"), "{stderr}");
    // A key that is no device of the hub (Ben's member key).
    let (code, _, stderr) = original.run(&["member", "revoke-device", &ben]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("\"not_found\""), "{stderr}");
    // The copy, not having heard, admits Cy with the old device: at the original it does not
    // count.
    let cy = field(&copy.ok(&["key", "new", "--name", "Cy"]), "member_id");
    copy.ok(&["member", "add", &cy, "--name", "Cy"]);
    let path = file(&copy, "copy-later.bundle");
    copy.ok(&["bundle", "export", &path]);
    original.ok(&["bundle", "import", &path]);
    let members = original.ok(&["members"]);
    let on_roll: Vec<&str> = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["status"] == "member")
        .map(|m| m["member_id"].as_str().unwrap())
        .collect();
    assert!(on_roll.contains(&ann.as_str()), "{members}");
    assert!(!on_roll.contains(&cy.as_str()), "{members}");
}

/// Fay's data directory and a copy of it; the copy admits Ann and that reaches the original
/// by a bundle; the original's next write (admitting Ben) is refused.
struct Copied {
    original: Data,
    copy: Data,
    fay: String,
    ann: String,
    ben: String,
    /// The refusal.
    stderr: String,
}

fn copied_and_refused() -> Copied {
    let original = Data::new();
    let fay = field(&original.ok(&["init", "--name", "Fay"]), "member_id");
    original.ok(&["hub", "create", "Riverside"]);
    let copy = Data::new();
    copy_dir(&original.dir(), &copy.dir());
    let ann = field(&copy.ok(&["key", "new", "--name", "Ann"]), "member_id");
    copy.ok(&["member", "add", &ann, "--name", "Ann"]);
    let path = file(&copy, "copy.bundle");
    copy.ok(&["bundle", "export", &path]);
    original.ok(&["bundle", "import", &path]);
    let ben = field(&original.ok(&["key", "new", "--name", "Ben"]), "member_id");
    let (code, _, stderr) = original.run(&["member", "add", &ben, "--name", "Ben"]);
    assert_eq!(code, 1, "{stderr}");
    Copied {
        original,
        copy,
        fay,
        ann,
        ben,
        stderr,
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}
