//! Identity, keys, hub and roll commands on a real data directory (real redb), end to end.

use serde_json::Value;

use crate::moot;

pub struct Data(pub tempfile::TempDir);

impl Data {
    pub fn new() -> Self {
        Data(tempfile::tempdir().unwrap())
    }
    /// The data directory: `node` inside a temporary directory, whose root holds the test's
    /// other files (passphrase files), since moot refuses to make a directory of other files
    /// into a data directory.
    pub fn dir(&self) -> std::path::PathBuf {
        self.0.path().join("node")
    }
    pub fn path(&self) -> String {
        self.dir().display().to_string()
    }
    /// Runs moot on this data dir; returns (exit code, stdout JSON or Null, stderr).
    pub fn run(&self, args: &[&str]) -> (i32, Value, String) {
        let data = self.path();
        let mut all = vec!["--data", data.as_str(), "--json"];
        all.extend_from_slice(args);
        let out = moot(&all, None);
        let json = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
        (
            out.status.code().unwrap(),
            json,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
    pub fn ok(&self, args: &[&str]) -> Value {
        let (code, json, stderr) = self.run(args);
        assert_eq!(code, 0, "{args:?}: {stderr}");
        json
    }
    /// Creates a poll in the Activism society (every member's) with `options`, and opens it:
    /// its id.
    pub fn open_poll(&self, question: &str, options: &[&str]) -> String {
        let poll = self.create_poll(question, options);
        self.ok(&["poll", "open", &poll]);
        poll
    }
    /// A poll of the activism assembly, not opened → its id.
    pub fn create_poll(&self, question: &str, options: &[&str]) -> String {
        let mut args = vec![
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            question,
        ];
        for option in options {
            args.extend(["--option", option]);
        }
        self.ok(&args)["poll_id"].as_str().unwrap().to_string()
    }
    /// Carries everything this node holds to `to` in a bundle (named `name`, in this node's
    /// directory): exported here, imported there.
    pub fn carry_to(&self, to: &Data, name: &str) {
        let path = self.0.path().join(name).display().to_string();
        self.ok(&["bundle", "export", &path]);
        to.ok(&["bundle", "import", &path]);
    }
    pub fn passphrase(&self, text: &str) -> String {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let path = self.0.path().join(format!("pw-{text}"));
        // Readable by its owner only, as the docs ask.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .unwrap();
        file.write_all(format!("{text}\n").as_bytes()).unwrap();
        path.display().to_string()
    }
}

/// A member's id from a command's JSON (`init`, `key new`).
pub fn id_of(value: &Value) -> String {
    value["member_id"].as_str().unwrap().to_string()
}

/// A data dir with Fay (steward) and a hub, Riverside; Fay's member id.
pub fn hub_with_fay() -> (Data, String) {
    let data = Data::new();
    let fay = id_of(&data.ok(&["init", "--name", "Fay"]));
    data.ok(&["hub", "create", "Riverside"]);
    (data, fay)
}

pub fn status_of(members: &Value, id: &str) -> String {
    members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == id)
        .map(|m| m["status"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

#[test]
fn init_id_and_keys() {
    let data = Data::new();
    let init = data.ok(&["init", "--name", "Fay"]);
    let member = init["member_id"].as_str().unwrap().to_string();
    assert_eq!(member.len(), 64);
    assert!(
        init["node_id"].as_str().unwrap().starts_with("12D3KooW"),
        "an Ed25519 libp2p peer id"
    );
    let id = data.ok(&["id"]);
    assert_eq!(id["member_id"], member.as_str());
    assert_eq!(id["node_id"], init["node_id"]);
    assert_eq!(id["name"], "Fay");
    // A second init is refused: identities are never silently replaced.
    let (code, _, stderr) = data.run(&["init", "--name", "Other"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("already has an identity"), "{stderr}");

    let pw = data.passphrase("s3cret");
    let ann = data.ok(&["key", "new", "--name", "Ann", "--passphrase-file", &pw]);
    let keys = data.ok(&["keys"]);
    let keys = keys["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 2);
    let ann_key = keys
        .iter()
        .find(|k| k["member_id"] == ann["member_id"])
        .unwrap();
    assert_eq!(ann_key["protected"], true);
    assert_eq!(ann_key["node"], false);
}

#[test]
fn commands_before_init_say_so() {
    let data = Data::new();
    let (code, _, stderr) = data.run(&["id"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("moot init"), "{stderr}");
}

#[test]
fn a_steward_manages_the_roll_and_it_survives_restarts() {
    let data = Data::new();
    let fay = data.ok(&["init", "--name", "Fay"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    data.ok(&["hub", "create", "Riverside Branch"]);
    let other = Data::new();
    let bob = other.ok(&["init", "--name", "Bob"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    data.ok(&[
        "member",
        "add",
        &bob,
        "--name",
        "Bob",
        "--constituency",
        "North",
        "--role",
        "convener",
    ]);
    // Each command opens the store afresh: the roll is rebuilt from the stored ops.
    let members = data.ok(&["members"]);
    let list = members["members"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    let bob_record = list
        .iter()
        .find(|m| m["member_id"] == bob.as_str())
        .unwrap();
    assert_eq!(bob_record["name"], "Bob");
    assert_eq!(bob_record["roles"], serde_json::json!(["convener"]));
    assert_eq!(bob_record["constituency"], "North");
    assert_eq!(status_of(&members, &fay), "member");
    data.ok(&["member", "remove", &bob]);
    assert_eq!(status_of(&data.ok(&["members"]), &bob), "removed");
}

#[test]
fn members_act_in_turn_with_as_and_only_with_their_passphrase() {
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    data.ok(&["hub", "create", "Riverside Branch"]);
    let pw = data.passphrase("ann-secret");
    let ann = data.ok(&["key", "new", "--name", "Ann", "--passphrase-file", &pw])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let cara = Data::new().ok(&["init", "--name", "Cara"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    data.ok(&["member", "add", &ann, "--name", "Ann", "--role", "steward"]);

    // Without her passphrase, or with a wrong one, nobody can act as Ann.
    let (code, _, stderr) = data.run(&["--as", &ann, "member", "add", &cara, "--name", "Cara"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("protected by a passphrase"), "{stderr}");
    // And it says how to give one.
    assert!(stderr.contains("--passphrase-file FILE"), "{stderr}");
    let wrong = data.passphrase("guess");
    let (code, _, stderr) = data.run(&[
        "--as",
        &ann,
        "--passphrase-file",
        &wrong,
        "member",
        "add",
        &cara,
        "--name",
        "Cara",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    // With it, Ann (a steward) admits Cara; her device on this node is certified on the way.
    data.ok(&[
        "--as",
        &ann,
        "--passphrase-file",
        &pw,
        "member",
        "add",
        &cara,
        "--name",
        "Cara",
    ]);
    assert_eq!(status_of(&data.ok(&["members"]), &cara), "member");
}

#[test]
fn a_non_steward_is_refused_and_bad_ids_are_bad_input() {
    let data = Data::new();
    data.ok(&["init", "--name", "Fay"]);
    data.ok(&["hub", "create", "Riverside Branch"]);
    let dan = data.ok(&["key", "new", "--name", "Dan"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    data.ok(&["member", "add", &dan, "--name", "Dan"]);
    let eve = Data::new().ok(&["init", "--name", "Eve"])["member_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _, stderr) = data.run(&["--as", &dan, "member", "add", &eve, "--name", "Eve"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("only a steward"), "{stderr}");
    assert_eq!(status_of(&data.ok(&["members"]), &eve), "");

    let (code, _, stderr) = data.run(&["member", "add", "not-a-key", "--name", "X"]);
    assert_eq!(code, 2, "{stderr}");
    // --as is checked for every command, reads included.
    let (code, _, stderr) = data.run(&["--as", &eve, "members"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not held on this node"), "{stderr}");
    let (code, _, stderr) = data.run(&["--as", &eve, "member", "remove", &dan]);
    assert_eq!(code, 1);
    assert!(stderr.contains("not held on this node"), "{stderr}");
}
