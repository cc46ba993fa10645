//! Gaps a reviewer found trying the real binary, one test per class: JSON error kinds, the
//! passphrase file's first line, a passphrase checked for every command, the key file (bounded,
//! not a directory, no stale temporary, a backup copy), no node made by a mistyped `--data`,
//! user text escaped in every error line, and `--hub` checked by every node command.

use std::process::Command;

use serde_json::Value;

use crate::node::{Data, hub_with_fay, id_of};

/// Runs moot (with `--json`) and returns (exit code, the error object on stderr).
fn error_of(data: &Data, args: &[&str]) -> (i32, Value) {
    let (code, _, stderr) = data.run(args);
    assert_eq!(stderr.lines().count(), 1, "{args:?}: one line: {stderr}");
    (code, serde_json::from_str(&stderr).unwrap())
}

#[test]
fn roll_refusals_and_damage_have_their_documented_kinds() {
    let (data, fay) = hub_with_fay();
    let bob = id_of(&Data::new().ok(&["init", "--name", "Bob"]));
    let stranger = id_of(&Data::new().ok(&["init", "--name", "Eve"]));
    data.ok(&["member", "add", &bob, "--name", "Bob"]);
    for (args, needle) in [
        (vec!["member", "remove", fay.as_str()], "last steward"),
        (
            vec!["member", "add", bob.as_str(), "--name", "Bob"],
            "already on the roll",
        ),
        (
            vec!["member", "update", stranger.as_str(), "--name", "E"],
            "not on the roll",
        ),
        (
            vec!["member", "remove", stranger.as_str()],
            "not on the roll",
        ),
    ] {
        let (code, error) = error_of(&data, &args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(error["error"]["kind"], "refused", "{args:?}: {error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(needle),
            "{error}"
        );
    }
    // A member who is not a steward, removing or demoting the last steward, is told what the
    // rules say (they may not change the roll), not to make another member a steward, which
    // they cannot do either.
    let cat = id_of(&data.ok(&["key", "new", "--name", "Cat"]));
    data.ok(&["member", "add", &cat, "--name", "Cat"]);
    for args in [
        vec!["--as", cat.as_str(), "member", "remove", fay.as_str()],
        vec![
            "--as",
            cat.as_str(),
            "member",
            "update",
            fay.as_str(),
            "--role",
            "member",
        ],
    ] {
        let (code, error) = error_of(&data, &args);
        assert_eq!(code, 1, "{args:?}");
        assert_eq!(error["error"]["kind"], "refused", "{args:?}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(!message.contains("last steward"), "{message}");
        assert!(message.contains("steward"), "{message}");
    }
    // A store deleted after moot closed it is "damaged" too, and no empty one takes its place.
    let store = data.dir().join("moot.redb");
    let kept = data.dir().join("moot.redb.kept");
    std::fs::rename(&store, &kept).unwrap();
    let (code, error) = error_of(&data, &["members"]);
    assert_eq!(
        (code, error["error"]["kind"].as_str()),
        (1, Some("damaged")),
        "{error}"
    );
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("is missing"),
        "{error}"
    );
    assert!(!store.exists(), "no empty store was made");
    std::fs::rename(&kept, &store).unwrap();
    let members = data.ok(&["members"]);
    assert!(members.to_string().contains("Bob"), "{members}");
    // A damaged store and a damaged key file (and its copy) are "damaged".
    std::fs::write(&store, b"not a redb file at all, just some bytes").unwrap();
    let (code, error) = error_of(&data, &["members"]);
    assert_eq!(
        (code, error["error"]["kind"].as_str()),
        (1, Some("damaged")),
        "{error}"
    );
    for name in ["keys", "keys.backup"] {
        let path = data.dir().join(name);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, bytes).unwrap();
    }
    let (code, error) = error_of(&data, &["id"]);
    assert_eq!(
        (code, error["error"]["kind"].as_str()),
        (1, Some("damaged")),
        "{error}"
    );
}

#[test]
fn a_passphrase_file_holds_the_passphrase_on_its_first_line() {
    let data = Data::new();
    let dir = data.0.path();
    // Written with CRLF and a second line, as an editor on another system might.
    let first = dir.join("pw-crlf");
    std::fs::write(&first, "open sesame\r\nthis line is a comment\n").unwrap();
    let first = first.display().to_string();
    data.ok(&["init", "--name", "Fay", "--passphrase-file", &first]);
    // The same passphrase, alone, opens the key: only the first line was used.
    let alone = dir.join("pw-alone");
    std::fs::write(&alone, "open sesame").unwrap();
    data.ok(&[
        "hub",
        "create",
        "Riverside",
        "--passphrase-file",
        &alone.display().to_string(),
    ]);
    // The whole file is not the passphrase.
    let whole = dir.join("pw-whole");
    std::fs::write(&whole, "open sesame\r\nthis line is a comment").unwrap();
    data.ok(&["members", "--passphrase-file", &whole.display().to_string()]);
    let second = dir.join("pw-second");
    std::fs::write(&second, "this line is a comment\nopen sesame\n").unwrap();
    let (code, error) = error_of(
        &data,
        &[
            "members",
            "--passphrase-file",
            &second.display().to_string(),
        ],
    );
    assert_eq!(
        (code, error["error"]["kind"].as_str()),
        (1, Some("refused")),
        "{error}"
    );
    // An empty first line is refused (exit 2), even with a passphrase after it; and the bound.
    for (name, bytes) in [
        ("pw-empty-first", b"\nopen sesame\n".to_vec()),
        ("pw-cr-only", b"\r\n".to_vec()),
        ("pw-huge", vec![b'x'; 4097]),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let (code, error) = error_of(
            &data,
            &["members", "--passphrase-file", &path.display().to_string()],
        );
        assert_eq!(
            (code, error["error"]["kind"].as_str()),
            (2, Some("bad_input")),
            "{name}: {error}"
        );
    }
}

#[test]
fn a_wrong_passphrase_for_the_nodes_own_key_fails_every_command() {
    let data = Data::new();
    let pw = data.passphrase("right");
    let fay = id_of(&data.ok(&["init", "--name", "Fay", "--passphrase-file", &pw]));
    data.ok(&["hub", "create", "Riverside", "--passphrase-file", &pw]);
    let wrong = data.passphrase("wrong");
    for command in [
        &["members"][..],
        &["id"],
        &["keys"],
        &["hubs"],
        &["hub", "show"],
    ] {
        // With and without `--as` naming the node's own key: the same answer.
        for as_flag in [&[][..], &["--as", fay.as_str()]] {
            let mut args = vec!["--passphrase-file", wrong.as_str()];
            args.extend_from_slice(as_flag);
            args.extend_from_slice(command);
            let (code, error) = error_of(&data, &args);
            assert_eq!(code, 1, "{args:?}: {error}");
            assert_eq!(error["error"]["kind"], "refused", "{args:?}");
            // The right one reads fine (and with no `--as`, so does none at all: a read needs
            // no key).
            if as_flag.is_empty() {
                data.ok(&args[2..]);
            }
            let mut right = vec!["--passphrase-file", pw.as_str()];
            right.extend_from_slice(&args[2..]);
            data.ok(&right);
        }
    }
}

#[test]
fn a_mistyped_data_dir_is_not_made_into_a_node() {
    let parent = tempfile::tempdir().unwrap();
    let missing = parent.path().join("nothere");
    let empty = parent.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "mine").unwrap();
    for dir in [&missing, &empty] {
        let shown = dir.display().to_string();
        for command in [
            &["members"][..],
            &["id"],
            &["keys"],
            &["hubs"],
            &["hub", "create", "X"],
            &["key", "new", "--name", "Ann"],
            &["key", "protect"],
        ] {
            let mut args = vec!["--data", shown.as_str()];
            args.extend_from_slice(command);
            let out = crate::moot(&args, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
            assert!(
                stderr.contains(&format!(
                    "no moot node at {shown}: run `moot init --name NAME` first (or check --data / MOOT_DATA)"
                )),
                "{stderr}"
            );
        }
    }
    assert!(!missing.exists(), "nothing was created");
    let names: Vec<_> = std::fs::read_dir(&empty)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        ["notes.txt"],
        "nothing was added to an existing directory"
    );
    let mode = std::fs::metadata(empty.join("notes.txt"))
        .unwrap()
        .permissions();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        assert_ne!(
            mode.mode() & 0o777,
            0o600,
            "its files' modes were left alone"
        );
    }
    let _ = mode;
    // `init` makes one, and then every command finds it.
    let shown = missing.display().to_string();
    let out = crate::moot(&["--data", &shown, "init", "--name", "Fay"], None);
    assert!(out.status.success());
    let out = crate::moot(&["--data", &shown, "members"], None);
    assert_eq!(out.status.code(), Some(1), "no hub yet, but a node");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no hub yet"));
}

#[test]
fn the_key_file_is_bounded_checked_backed_up_and_cleaned() {
    let (data, fay) = hub_with_fay();
    let dir = data.dir();
    let keys = dir.join("keys");
    let backup = dir.join("keys.backup");
    // Every save writes a copy, owner-only.
    assert_eq!(
        std::fs::read(&keys).unwrap(),
        std::fs::read(&backup).unwrap()
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let good = std::fs::read(&keys).unwrap();

    // A single flipped byte in `keys`: the copy is used, and stderr says so.
    let mut flipped = good.clone();
    flipped[good.len() / 2] ^= 0x10;
    std::fs::write(&keys, &flipped).unwrap();
    let (code, id, stderr) = data.run(&["id"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(id["member_id"], fay.as_str());
    assert!(
        stderr.contains("is damaged") && stderr.contains("keys.backup"),
        "{stderr}"
    );
    // Without --json too, and the key still signs.
    let out = crate::moot(
        &[
            "--data",
            &data.path(),
            "member",
            "update",
            &fay,
            "--name",
            "Fay A",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("moot: warning: the key file"));

    // Both damaged: said clearly, naming both.
    std::fs::write(&backup, &flipped[..10]).unwrap();
    let (code, _, stderr) = data.run(&["id"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("checksum mismatch")
            && stderr.contains("is damaged too (not a moot key file)"),
        "{stderr}"
    );

    // `keys` as a directory: said so, not "data directory …: Is a directory".
    std::fs::write(&backup, &good).unwrap();
    std::fs::remove_file(&keys).unwrap();
    std::fs::create_dir(&keys).unwrap();
    let (code, _, stderr) = data.run(&["id"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("is a directory, not a moot key file"),
        "{stderr}"
    );
    std::fs::remove_dir(&keys).unwrap();

    // `keys` pointing at /dev/zero: refused at once, never read into memory.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink("/dev/zero", &keys).unwrap();
        let (code, _, stderr) = data.run(&["id"]);
        assert_eq!(code, 1);
        assert!(stderr.contains("special file"), "{stderr}");
        std::fs::remove_file(&keys).unwrap();
    }
    // A regular file over the bound (16 MiB) is damage; the copy is used.
    std::fs::write(&keys, vec![0u8; 16 * 1024 * 1024 + 1]).unwrap();
    let (code, _, stderr) = data.run(&["id"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("larger than 16 MiB"), "{stderr}");

    // A stale temporary from a killed write (key material) is removed on the next open.
    std::fs::write(&keys, &good).unwrap();
    std::fs::write(dir.join("keys.tmp"), &good).unwrap();
    std::fs::write(dir.join("keys.backup.tmp"), &good).unwrap();
    data.ok(&["members"]);
    assert!(!dir.join("keys.tmp").exists() && !dir.join("keys.backup.tmp").exists());
}

#[test]
fn user_text_in_errors_is_escaped_and_causes_are_not_repeated() {
    let (data, _) = hub_with_fay();
    // A path holding CR/LF, from the user, quoted in our error.
    let out = crate::moot(
        &[
            "--data",
            &data.path(),
            "--passphrase-file",
            "x\r\nFAKE: ok",
            "members",
        ],
        None,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(stderr.lines().count(), 1, "{stderr:?}");
    assert!(stderr.contains("x\\r\\nFAKE"), "{stderr:?}");
    assert_eq!(crate::raw_dangerous(&stderr), None);
    // clap's own usage errors quote arguments raw: escaped too.
    for args in [
        &[
            "--data",
            "d",
            "member",
            "add",
            "x",
            "--role",
            "boss\r\n\u{1b}[2Kok",
        ][..],
        &["tally", "-", "--seats", "two\r\nFAKE"],
        &["no-such-command\r\n\u{202e}x"],
    ] {
        let out = crate::moot(args, None);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert_eq!(crate::raw_dangerous(&stderr), None, "{args:?}: {stderr:?}");
        assert!(stderr.contains("\\r\\n"), "{stderr:?}");
    }
    // A directory given as the passphrase file: one cause, said once.
    let dir = data.dir().display().to_string();
    let out = crate::moot(
        &["--data", &dir, "--passphrase-file", &dir, "members"],
        None,
    );
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.matches("os error 21").count(), 1, "{stderr}");
    // A directory where the store should be: its cause once ("opening the store: I/O error:
    // Is a directory (os error 21)" was followed by the same text again).
    std::fs::remove_file(data.dir().join("moot.redb")).unwrap();
    std::fs::create_dir(data.dir().join("moot.redb")).unwrap();
    let out = crate::moot(&["--data", &dir, "members"], None);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stderr.matches("os error 21").count(), 1, "{stderr}");
}

#[test]
fn a_malformed_hub_is_refused_by_every_node_command() {
    let (data, _) = hub_with_fay();
    let bob = id_of(&Data::new().ok(&["init", "--name", "Bob"]));
    for command in [
        &["hub", "create", "X"][..],
        &["hubs"],
        &["id"],
        &["keys"],
        &["key", "new", "--name", "Ann"],
        &["members"],
        &["hub", "show"],
        &["member", "add", bob.as_str(), "--name", "Bob"],
    ] {
        let mut args = vec!["--hub", "zz"];
        args.extend_from_slice(command);
        let (code, error) = error_of(&data, &args);
        assert_eq!(
            (code, error["error"]["kind"].as_str()),
            (2, Some("bad_input")),
            "{args:?}"
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a hub id")
        );
    }
    // Nothing was written.
    assert_eq!(data.ok(&["hubs"])["hubs"].as_array().unwrap().len(), 1);
    assert_eq!(data.ok(&["keys"])["keys"].as_array().unwrap().len(), 1);
    let _ = Command::new("true");
}

#[test]
fn a_directory_of_someone_elses_files_is_not_made_a_data_dir() {
    use std::os::unix::fs::PermissionsExt as _;
    let home = tempfile::tempdir().unwrap();
    let notes = home.path().join("notes.txt");
    std::fs::write(&notes, b"mine").unwrap();
    std::fs::set_permissions(&notes, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(home.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = home.path().to_str().unwrap();
    let output = crate::moot(&["--data", dir, "init", "--name", "Fay"], None);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("holds no moot files"), "{stderr}");
    // Nothing of the user's was touched, and no node was made.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&notes), 0o644);
    assert_eq!(mode(home.path()), 0o755);
    assert!(!home.path().join("keys").exists());
    // A data directory that moot made keeps working, whatever else is put in it.
    let data = home.path().join("moot");
    let data = data.to_str().unwrap();
    assert!(
        crate::moot(&["--data", data, "init", "--name", "Fay"], None)
            .status
            .success()
    );
    std::fs::write(home.path().join("moot/README"), b"x").unwrap();
    assert!(crate::moot(&["--data", data, "id"], None).status.success());
}

#[test]
fn an_update_that_changes_nothing_writes_no_op_and_says_so() {
    let (data, _) = hub_with_fay();
    let bob = id_of(&Data::new().ok(&["init", "--name", "Bob"]));
    data.ok(&[
        "member",
        "add",
        &bob,
        "--name",
        "Bob",
        "--constituency",
        "North",
    ]);
    let ops = |v: &Value| v["op_ids"].as_array().unwrap().len();
    // The same name and constituency: nothing written.
    let same = data.ok(&[
        "member",
        "update",
        &bob,
        "--name",
        "Bob",
        "--constituency",
        "North",
    ]);
    assert_eq!(ops(&same), 0, "{same}");
    // A new name alone: one op, the constituency not written again.
    let renamed = data.ok(&[
        "member",
        "update",
        &bob,
        "--name",
        "Robert",
        "--constituency",
        "North",
    ]);
    assert_eq!(ops(&renamed), 1, "{renamed}");
    // Without --json, the owner is told nothing changed.
    let data_dir = data.path();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_moot"))
        .args([
            "--data", &data_dir, "member", "update", &bob, "--name", "Robert",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("nothing changed"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
