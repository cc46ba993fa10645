//! Assemblies, polls and votes through the binary, on one node: a whole branch meeting (a
//! working group's poll with a polling station, a re-cast, a late ballot, the close, results
//! that equal `moot tally` on the counted ballots with the poll's seed, `poll verify`), and the
//! refusals — each with its exit code and JSON error kind, and nothing written.

use serde_json::{Value, json};

use crate::moot;
use crate::node::Data;

/// A field of a JSON document, as a string.
fn field(value: &Value, name: &str) -> String {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("no string {name:?} in {value}"))
        .to_string()
}

/// A member key held on this node, admitted to the roll by the node's steward.
fn member(data: &Data, name: &str) -> String {
    let id = field(&data.ok(&["key", "new", "--name", name]), "member_id");
    data.ok(&["member", "add", &id, "--name", name]);
    id
}

/// Casts `who`'s ballot → (ballot id, revision).
fn vote(data: &Data, poll: &str, who: &str, scores: &[&str]) -> (String, u64) {
    let mut args = vec!["--as", who, "vote", poll];
    for score in scores {
        args.extend(["--score", score]);
    }
    let cast = data.ok(&args);
    (
        field(&cast, "ballot_id"),
        cast["revision"].as_u64().unwrap(),
    )
}

/// Runs a command that must fail: checks that stdout is empty and stderr is one JSON error
/// object, and returns (exit code, kind, message).
fn refused(data: &Data, args: &[&str]) -> (i32, String, String) {
    let (code, out, stderr) = data.run(args);
    assert_ne!(code, 0, "{args:?} succeeded: {out}");
    assert_eq!(out, Value::Null, "{args:?}: nothing on stdout");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    let error: Value = serde_json::from_str(&stderr).unwrap();
    (
        code,
        field(&error["error"], "kind"),
        field(&error["error"], "message"),
    )
}

/// Runs moot on the data directory without `--json` → stdout, which must succeed.
fn text(data: &Data, args: &[&str]) -> String {
    let path = data.path();
    let mut all = vec!["--data", path.as_str()];
    all.extend_from_slice(args);
    let out = moot(&all, None);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A branch: Fay (the node's own key, the hub's founding steward) and five member keys held on
/// the laptop. Ann (a plain member) founds a members-only working group, which she, Bob, Cara
/// and Dan join; Eve is a member of the branch but not of the group.
struct Branch {
    data: Data,
    fay: String,
    ann: String,
    bob: String,
    cara: String,
    dan: String,
    eve: String,
    group: String,
}

fn branch() -> Branch {
    let data = Data::new();
    let fay = field(&data.ok(&["init", "--name", "Fay"]), "member_id");
    data.ok(&["hub", "create", "Riverside Branch"]);
    let [ann, bob, cara, dan, eve] =
        ["Ann", "Bob", "Cara", "Dan", "Eve"].map(|name| member(&data, name));
    let group = field(
        &data.ok(&[
            "--as",
            &ann,
            "assembly",
            "create",
            "Transport Working Group",
            "--kind",
            "working-group",
        ]),
        "assembly_id",
    );
    assert_eq!(group.len(), 64);
    for who in [&ann, &bob, &cara, &dan] {
        let joined = data.ok(&["--as", who, "assembly", "join", &group]);
        assert_eq!(joined["assembly_id"], group.as_str());
        assert_eq!(joined["joined"], true);
    }
    Branch {
        data,
        fay,
        ann,
        bob,
        cara,
        dan,
        eve,
        group,
    }
}

impl Branch {
    /// Ann's poll in the working group: Cara is its returning officer, Bob its station officer.
    fn poll(&self, quorum: &str) -> String {
        field(
            &self.data.ok(&[
                "--as",
                &self.ann,
                "poll",
                "create",
                "--assembly",
                &self.group,
                "--question",
                "Which campaign first?",
                "--option",
                "Buses",
                "--option",
                "Trams",
                "--option",
                "Bikes",
                "--officer",
                &self.cara,
                "--station",
                &self.bob,
                "--quorum",
                quorum,
            ]),
            "poll_id",
        )
    }

    /// A poll Fay (a steward) creates and opens in the Policy Society: its `poll verify` counts
    /// every op of the hub, so a refusal that wrote anything would show there.
    fn witness(&self) -> String {
        let poll = field(
            &self.data.ok(&[
                "poll",
                "create",
                "--assembly",
                "policy",
                "--question",
                "Witness?",
                "--option",
                "Yes",
                "--option",
                "No",
            ]),
            "poll_id",
        );
        self.data.ok(&["poll", "open", &poll]);
        poll
    }

    /// Everything a refused command must leave as it was: the number of ops in the hub (from
    /// `poll verify` of `witness`), the roll, the assemblies, the polls, and each poll's
    /// results (or the error they give).
    fn snapshot(&self, witness: &str) -> Value {
        let data = &self.data;
        let verify = data.ok(&["poll", "verify", witness]);
        assert_eq!(verify["ok"], true, "{verify}");
        let polls = data.ok(&["polls"]);
        let results: Vec<Value> = polls["polls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let (code, out, stderr) = data.run(&["poll", "results", &field(p, "poll_id")]);
                json!({"code": code, "out": out, "stderr": stderr})
            })
            .collect();
        json!({
            "ops": verify["ops_checked"],
            "members": data.ok(&["members"]),
            "assemblies": data.ok(&["assemblies"]),
            "polls": polls,
            "results": results,
        })
    }

    /// Asserts that `args` fails with `code` and `kind`, its message holding `needle`, and
    /// that it wrote nothing.
    fn refuses(&self, witness: &str, args: &[&str], code: i32, kind: &str, needle: &str) {
        let before = self.snapshot(witness);
        let (got, got_kind, message) = refused(&self.data, args);
        assert_eq!(
            (got, got_kind.as_str()),
            (code, kind),
            "{args:?}: {message}"
        );
        assert!(message.contains(needle), "{args:?}: {message:?}");
        assert_eq!(self.snapshot(witness), before, "{args:?} changed something");
    }
}

/// The option `name`'s entry in a summary (`options` of a report, a station or `elsewhere`).
fn option<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["options"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no option {name} in {summary}"))
}

/// Asserts that the stations' shares and `elsewhere` add up to the total: ballots, each
/// option's total and histogram, and the head-to-head matrix.
pub(crate) fn assert_shares_add_up(results: &Value) {
    let mut shares: Vec<&Value> = results["stations"].as_array().unwrap().iter().collect();
    shares.push(&results["elsewhere"]);
    let sum = |f: &dyn Fn(&Value) -> u64| shares.iter().map(|s| f(s)).sum::<u64>();
    assert_eq!(
        sum(&|s| s["ballots"].as_u64().unwrap()),
        results["ballots"].as_u64().unwrap()
    );
    for total in results["options"].as_array().unwrap() {
        let name = total["name"].as_str().unwrap();
        assert_eq!(
            sum(&|s| option(s, name)["total"].as_u64().unwrap()),
            total["total"].as_u64().unwrap(),
            "{name}"
        );
        for score in 0..6 {
            assert_eq!(
                sum(&|s| option(s, name)["histogram"][score].as_u64().unwrap()),
                total["histogram"][score].as_u64().unwrap(),
                "{name} histogram[{score}]"
            );
        }
    }
    let n = results["options"].as_array().unwrap().len();
    for a in 0..n {
        for b in 0..n {
            assert_eq!(
                sum(&|s| s["pairwise"][a][b].as_u64().unwrap()),
                results["pairwise"][a][b].as_u64().unwrap(),
                "pairwise[{a}][{b}]"
            );
        }
    }
}

/// Asserts that `results` holds exactly `moot tally --json --seed SEED --seats N`'s report of
/// `csv` (the counted ballots, written out by the test from what was cast): every field of the
/// tally report, with the same value.
pub(crate) fn assert_equals_tally(data: &Data, results: &Value, csv: &str, seats: &str) -> Value {
    let path = data.0.path().join("counted.csv");
    std::fs::write(&path, csv).unwrap();
    let seed = field(results, "seed");
    let path = path.display().to_string();
    let tally = crate::json(&moot(
        &["tally", &path, "--seed", &seed, "--seats", seats, "--json"],
        None,
    ));
    for key in [
        "winners",
        "ballots",
        "options",
        "runoff",
        "rounds",
        "tiebreaks",
        "pairwise",
    ] {
        assert!(tally.get(key).is_some(), "tally has {key}: {tally}");
    }
    for (key, value) in tally.as_object().unwrap() {
        assert_eq!(
            &results[key], value,
            "{key}: poll results differ from moot tally"
        );
    }
    tally
}

#[test]
fn a_whole_meeting_on_one_node() {
    let branch = branch();
    let Branch {
        data,
        fay,
        ann,
        bob,
        cara,
        dan,
        eve,
        group,
    } = &branch;
    let poll = branch.poll("4");
    let opened = data.ok(&["--as", ann, "poll", "open", &poll]);
    assert_eq!(opened["poll_id"], poll.as_str());
    assert_eq!(opened["electorate"], 4, "Ann, Bob, Cara and Dan: {opened}");
    let seed = field(&opened, "seed");
    assert_eq!(seed, field(&opened, "open_id"), "the seed is the open's id");
    assert_eq!(seed.len(), 64);

    // Members vote in turn on the branch's laptop; Ann changes her mind (names match in any
    // case; options not named score 0).
    let (ann_first, revision) = vote(data, &poll, ann, &["Buses=5", "Trams=1"]);
    assert_eq!(revision, 1);
    let (_, revision) = vote(data, &poll, bob, &["Buses=5", "Trams=3"]);
    assert_eq!(revision, 1);
    vote(data, &poll, cara, &["buses=1", "TRAMS=4", "Bikes=5"]);
    let (ann_second, revision) = vote(data, &poll, ann, &["Buses=2", "Trams=5", "Bikes=3"]);
    assert_eq!(revision, 2, "a re-cast goes one revision higher");
    assert_ne!(ann_first, ann_second);

    // Before the close the results are provisional: the ballots held now, quorum not met yet.
    let early = data.ok(&["poll", "results", &poll]);
    assert_eq!(early["stage"], "open");
    assert_eq!(early["close_id"], Value::Null);
    assert_eq!(early["counted"], 3);
    assert_eq!(early["quorum"], json!({"required": 4, "met": false}));
    let kinds: Vec<&Value> = early["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| &f["kind"])
        .collect();
    assert_eq!(kinds, [&json!("provisional"), &json!("quorum_not_met")]);
    assert_eq!(early["stations"], json!([]));
    assert!(
        text(data, &["poll", "results", &poll]).contains("(provisional: not closed yet)"),
        "the text says so"
    );

    // Bob closes his polling station; Dan's ballot comes in after it; Cara closes the poll.
    let station = data.ok(&["--as", bob, "poll", "close-station", &poll]);
    assert_eq!(station["poll_id"], poll.as_str());
    let station = field(&station, "close_id");
    let (dan_ballot, _) = vote(data, &poll, dan, &["Trams=5", "Bikes=2"]);
    let close = data.ok(&["--as", cara, "poll", "close", &poll]);
    assert_eq!(close["poll_id"], poll.as_str());
    let close = field(&close, "close_id");
    // After the close nothing more is cast.
    let (code, kind, message) = refused(data, &["--as", dan, "vote", &poll, "--score", "Buses=5"]);
    assert_eq!((code, kind.as_str()), (1, "refused"), "{message}");
    assert!(message.contains("closed"), "{message}");

    let results = data.ok(&["poll", "results", &poll]);
    assert_eq!(results["poll_id"], poll.as_str());
    assert_eq!(results["question"], "Which campaign first?");
    assert_eq!(results["stage"], "closed");
    assert_eq!(results["open_id"], seed.as_str());
    assert_eq!(results["seed"], seed.as_str());
    assert_eq!(results["close_id"], close.as_str());
    assert_eq!(results["electorate"], 4);
    assert_eq!(results["counted"], 4);
    assert_eq!(results["ballots"], 4);
    assert_eq!(results["winners"], json!(["Trams"]));
    assert_eq!(
        results["excluded"],
        json!([{
            "ballot_id": ann_first,
            "member_id": ann,
            "revision": 1,
            "reason": "superseded_revision",
            "detail": null,
        }])
    );
    assert_eq!(results["quorum"], json!({"required": 4, "met": true}));
    assert_eq!(
        results["flags"],
        json!([]),
        "closed, quorum met: nothing to flag"
    );
    // Bob's station holds the three ballots cast before he closed it (Ann's latest only);
    // Dan's late ballot was cast elsewhere.
    let stations = results["stations"].as_array().unwrap();
    assert_eq!(stations.len(), 1);
    assert_eq!(stations[0]["close_id"], station.as_str());
    assert_eq!(stations[0]["officer"], bob.as_str());
    assert_eq!(stations[0]["ballots"], 3);
    let totals = |summary: &Value| {
        ["Buses", "Trams", "Bikes"].map(|name| option(summary, name)["total"].as_u64().unwrap())
    };
    assert_eq!(totals(&stations[0]), [8, 12, 8]);
    assert_eq!(
        option(&stations[0], "Buses")["histogram"],
        json!([0, 1, 1, 0, 0, 1])
    );
    assert_eq!(results["elsewhere"]["ballots"], 1);
    assert_eq!(totals(&results["elsewhere"]), [0, 5, 2]);
    assert_eq!(totals(&results), [8, 17, 10]);
    assert_shares_add_up(&results);

    // The count is `moot tally`'s on the counted ballots, with the open's id as the seed.
    let tally = assert_equals_tally(
        data,
        &results,
        "Buses,Trams,Bikes\n2,5,3\n5,3,0\n1,4,5\n0,5,2\n",
        "1",
    );
    assert_eq!(
        tally["runoff"],
        json!({"a": "Trams", "b": "Bikes", "a_votes": 3, "b_votes": 1, "no_preference": 0,
               "winner": "Trams"})
    );

    let verify = data.ok(&["poll", "verify", &poll]);
    assert_eq!(verify["ok"], true, "{verify}");
    assert_eq!(verify["poll_id"], poll.as_str());
    assert_eq!(verify["counted"], 4);
    assert_eq!(verify["differences"], json!([]));
    assert!(verify["ops_checked"].as_u64().unwrap() > 10, "{verify}");
    assert!(text(data, &["poll", "verify", &poll]).starts_with("ok: "));

    // The text view: the winner, the station lines, the excluded ballot, the quorum.
    let shown = text(data, &["poll", "results", &poll]);
    for needle in [
        "Poll: Which campaign first?".to_string(),
        format!("Status: closed (the close: {})\n", &close[..16]),
        format!("Tiebreak seed (the open's id): {seed}"),
        "Counted: 4 of an electorate of 4; excluded: 1".to_string(),
        "Winner: Trams".to_string(),
        "Polling stations:".to_string(),
        format!(
            "closed by {} ({}): 3 ballots; totals: Buses 8, Trams 12, Bikes 8",
            &bob[..16],
            &station[..16]
        ),
        "elsewhere: 1 ballot; totals: Buses 0, Trams 5, Bikes 2".to_string(),
        format!(
            "{} by {} (revision 1): superseded revision",
            &ann_first[..16],
            &ann[..16]
        ),
        "Quorum: 4 ballots — met".to_string(),
    ] {
        assert!(shown.contains(&needle), "{needle:?} not in:\n{shown}");
    }
    assert!(!shown.contains(&dan_ballot[..16]), "Dan's ballot counts");

    // `polls` and `assemblies` list them.
    let polls = data.ok(&["polls"]);
    assert_eq!(
        polls["polls"],
        json!([{
            "poll_id": poll,
            "assembly_id": group,
            "question": "Which campaign first?",
            "options": ["Buses", "Trams", "Bikes"],
            "seats": 1,
            "stage": "closed",
            "open_id": seed,
            "close_id": close,
            "electorate": 4,
            "officers": [cara],
            "stations": [bob],
            "quorum": 4,
            "opens_at": null,
            "closes_at": null,
        }])
    );
    let listed = text(data, &["polls"]);
    assert!(
        listed.contains(&poll) && listed.contains("closed") && listed.contains("Which campaign"),
        "{listed}"
    );
    let assemblies = data.ok(&["assemblies"]);
    let list = assemblies["assemblies"].as_array().unwrap();
    let ids: Vec<&str> = list
        .iter()
        .map(|a| a["assembly_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["activism", "policy", group.as_str()]);
    let mut members = vec![ann.clone(), bob.clone(), cara.clone(), dan.clone()];
    members.sort();
    assert_eq!(
        list[2],
        json!({
            "assembly_id": group,
            "name": "Transport Working Group",
            "kind": "working-group",
            "public": false,
            "automatic": false,
            "members": members,
            "conveners": [ann],
        })
    );
    let mut everyone = vec![
        fay.clone(),
        ann.clone(),
        bob.clone(),
        cara.clone(),
        dan.clone(),
        eve.clone(),
    ];
    everyone.sort();
    assert_eq!(list[0]["members"], json!(everyone));
    assert_eq!(list[0]["automatic"], true);
    assert_eq!(list[0]["conveners"], json!([fay]), "the hub's steward");
    // The text view shows ids that `assembly join` and `poll create --assembly` take.
    let listed = text(data, &["assemblies"]);
    assert!(
        listed.contains(group.as_str()) && listed.contains("Transport Working Group"),
        "{listed}"
    );
}

#[test]
fn a_tie_goes_to_the_lot_drawn_with_the_open_s_id_as_moot_tally_draws_it() {
    let branch = branch();
    let data = &branch.data;
    // Fay (a steward) convenes the Policy Society; Bloc STAR for two seats of four.
    let poll = field(
        &data.ok(&[
            "poll",
            "create",
            "--assembly",
            "policy",
            "--question",
            "Delegates?",
            "--option",
            "Ada",
            "--option",
            "Ben",
            "--option",
            "Cy",
            "--option",
            "Di",
            "--seats",
            "2",
        ]),
        "poll_id",
    );
    let opened = data.ok(&["poll", "open", &poll]);
    assert_eq!(opened["electorate"], 6);
    for who in [&branch.ann, &branch.bob, &branch.cara] {
        vote(data, &poll, who, &["Ada=3", "Ben=3", "Cy=3", "Di=3"]);
    }
    data.ok(&["poll", "close", &poll]);
    let results = data.ok(&["poll", "results", &poll]);
    assert_eq!(results["lot_used"], true, "{results}");
    assert_eq!(results["quorum"], Value::Null, "no quorum asked");
    assert_eq!(results["flags"], json!([]));
    assert_eq!(results["winners"].as_array().unwrap().len(), 2);
    assert_equals_tally(
        data,
        &results,
        "Ada,Ben,Cy,Di\n3,3,3,3\n3,3,3,3\n3,3,3,3\n",
        "2",
    );
    assert_eq!(data.ok(&["poll", "verify", &poll])["ok"], true);
}

#[test]
fn votes_and_closes_by_the_wrong_people_are_refused_and_write_nothing() {
    let branch = branch();
    let Branch {
        data,
        ann,
        bob,
        cara,
        dan,
        eve,
        ..
    } = &branch;
    let witness = branch.witness();
    let poll = branch.poll("3");
    let r = |args: &[&str], code, kind, needle: &str| {
        branch.refuses(&witness, args, code, kind, needle)
    };

    // Before the open nobody votes, and its results are not there yet: each says so, and how
    // to open it (not the rules' words about a ballot's causal past).
    let not_open =
        format!("poll {poll} is not open yet: a convener opens it with `moot poll open {poll}`");
    r(
        &["--as", bob, "vote", &poll, "--score", "Buses=5"],
        1,
        "refused",
        &not_open,
    );
    r(&["poll", "results", &poll], 1, "refused", "not open yet");
    // Only a convener opens it: Bob is a member of the group, not its convener.
    r(
        &["--as", bob, "poll", "open", &poll],
        1,
        "refused",
        "convener",
    );
    // Nor is a close, or a station's, possible before the open.
    r(
        &["--as", cara, "poll", "close", &poll],
        1,
        "refused",
        &not_open,
    );
    r(
        &["--as", bob, "poll", "close-station", &poll],
        1,
        "refused",
        &not_open,
    );
    let seed = field(&data.ok(&["--as", ann, "poll", "open", &poll]), "seed");
    r(
        &["--as", ann, "poll", "open", &poll],
        1,
        "refused",
        "already open",
    );
    // Open, no ballot yet: every field of the tally JSON is there all the same.
    let empty = data.ok(&["poll", "results", &poll]);
    assert_eq!(empty["stage"], "open");
    assert_eq!(empty["seed"], seed.as_str());
    assert_eq!(
        (&empty["ballots"], &empty["counted"]),
        (&json!(0), &json!(0))
    );
    assert_eq!(empty["winners"], json!([]));
    assert_eq!(empty["seats"], 1);
    let zero =
        |name| json!({"name": name, "total": 0, "average": 0.0, "histogram": [0, 0, 0, 0, 0, 0]});
    assert_eq!(
        empty["options"],
        json!([zero("Buses"), zero("Trams"), zero("Bikes")])
    );
    assert_eq!(empty["runoff"], Value::Null);
    assert_eq!(empty["rounds"], json!([]));
    assert_eq!(empty["tiebreaks"], json!([]));
    assert_eq!(empty["lot_used"], false);
    assert_eq!(empty["pairwise"], json!([[0, 0, 0], [0, 0, 0], [0, 0, 0]]));
    let mut drawn: Vec<&str> = empty["lot_order"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap())
        .collect();
    drawn.sort_unstable();
    assert_eq!(drawn, ["Bikes", "Buses", "Trams"]);
    assert_eq!(empty["quorum"], json!({"required": 3, "met": false}));

    // Eve is a member of the branch but not of the group: not in the electorate. Joining
    // after the open does not put her in it: the open fixed it.
    r(
        &["--as", eve, "vote", &poll, "--score", "Buses=5"],
        1,
        "refused",
        "electorate",
    );
    data.ok(&["--as", eve, "assembly", "join", &branch.group]);
    r(
        &["--as", eve, "vote", &poll, "--score", "Buses=5"],
        1,
        "refused",
        "electorate",
    );
    vote(data, &poll, bob, &["Trams=5"]);
    // Leaving the group after the open does not take Dan out of the electorate either.
    let left = data.ok(&["--as", dan, "assembly", "leave", &branch.group]);
    assert_eq!(left["joined"], false);
    let listed = data.ok(&["assemblies"]);
    let group = listed["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assembly_id"] == branch.group.as_str())
        .unwrap();
    let members = group["members"].as_array().unwrap();
    assert!(
        members.contains(&json!(eve)) && !members.contains(&json!(dan)),
        "{group}"
    );
    vote(data, &poll, dan, &["Bikes=4"]);
    // A steward then removes Dan from the roll: he can no longer re-cast; the ballot he cast
    // while on the roll stands.
    data.ok(&["member", "remove", dan]);
    r(
        &["--as", dan, "vote", &poll, "--score", "Buses=5"],
        1,
        "refused",
        "removed",
    );

    // Cara is the returning officer, not a station officer; Ann created and convenes the
    // poll but is not its returning officer; Fay is a steward, not its returning officer.
    r(
        &["--as", cara, "poll", "close-station", &poll],
        1,
        "refused",
        "station officer",
    );
    r(
        &["--as", ann, "poll", "close", &poll],
        1,
        "refused",
        "returning officer",
    );
    r(&["poll", "close", &poll], 1, "refused", "returning officer");
    r(
        &["--as", bob, "poll", "close", &poll],
        1,
        "refused",
        "returning officer",
    );

    data.ok(&["--as", cara, "poll", "close", &poll]);
    // After the close: no ballot, no station close, no second close.
    r(
        &["--as", cara, "vote", &poll, "--score", "Bikes=5"],
        1,
        "refused",
        "closed",
    );
    r(
        &["--as", bob, "vote", &poll, "--score", "Bikes=5"],
        1,
        "refused",
        "closed",
    );
    r(
        &["--as", bob, "poll", "close-station", &poll],
        1,
        "refused",
        "closed",
    );
    r(
        &["--as", cara, "poll", "close", &poll],
        1,
        "refused",
        "closed",
    );
    // Bob's and Dan's ballots count; the quorum of three is not met, and that is flagged.
    let results = data.ok(&["poll", "results", &poll]);
    assert_eq!(results["counted"], 2);
    assert_eq!(results["winners"], json!(["Trams"]));
    assert_eq!(results["quorum"], json!({"required": 3, "met": false}));
    assert_eq!(results["flags"].as_array().unwrap().len(), 1);
    assert_eq!(results["flags"][0]["kind"], "quorum_not_met");
    assert!(
        text(data, &["poll", "results", &poll]).contains("Quorum: 3 ballots — NOT met"),
        "the text says so"
    );
}

#[test]
fn bad_scores_and_ids_are_bad_input_and_unknown_polls_not_found() {
    let branch = branch();
    let Branch { data, ann, bob, .. } = &branch;
    let witness = branch.witness();
    let poll = branch.poll("1");
    data.ok(&["--as", ann, "poll", "open", &poll]);
    vote(data, &poll, bob, &["Buses=4"]);
    let r = |args: &[&str], code, kind, needle: &str| {
        branch.refuses(&witness, args, code, kind, needle)
    };
    let vote_with = |scores: &[&'static str]| -> Vec<String> {
        let mut args = vec!["--as".to_string(), bob.clone(), "vote".into(), poll.clone()];
        for score in scores {
            args.extend(["--score".to_string(), (*score).to_string()]);
        }
        args
    };
    let r_vote = |scores: &[&'static str], needle| {
        let args = vote_with(scores);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        r(&args, 2, "bad_input", needle);
    };

    r_vote(&["Ferries=5"], "not an option");
    r_vote(&["Buses=6"], "0-5");
    r_vote(&["Buses=-1"], "0-5");
    r_vote(&["Buses=five"], "0-5");
    r_vote(&["Buses"], "OPTION=N");
    r_vote(&["Buses:5"], "OPTION=N");
    r_vote(&["Buses=5", "buses=4"], "twice");
    r_vote(&["Trams=5", "Ferries=1"], "Ferries");
    r_vote(&[], "--score");

    // Poll ids are 64 hex digits: a short prefix or a name is bad input, for every command.
    let prefix = &poll[..16];
    for bad in ["not-hex", prefix] {
        r(&["poll", "results", bad], 2, "bad_input", "not a poll id");
        r(&["poll", "verify", bad], 2, "bad_input", "not a poll id");
        r(&["poll", "open", bad], 2, "bad_input", "not a poll id");
        r(&["poll", "close", bad], 2, "bad_input", "not a poll id");
        r(
            &["poll", "close-station", bad],
            2,
            "bad_input",
            "not a poll id",
        );
        r(
            &["--as", bob, "vote", bad, "--score", "Buses=5"],
            2,
            "bad_input",
            "not a poll id",
        );
    }
    // A well-formed id of no poll here is not found.
    let unknown = "ab".repeat(32);
    r(&["poll", "results", &unknown], 1, "not_found", "no poll");
    r(&["poll", "verify", &unknown], 1, "not_found", "no poll");
    r(&["poll", "open", &unknown], 1, "not_found", "no poll");
    r(&["poll", "close", &unknown], 1, "not_found", "no poll");
    r(
        &["--as", bob, "vote", &unknown, "--score", "Buses=5"],
        1,
        "not_found",
        "no poll",
    );
    // A poll create with bad content is bad input; an unknown assembly is not found.
    r(
        &[
            "--as",
            ann,
            "poll",
            "create",
            "--assembly",
            &branch.group,
            "--question",
            "Q",
            "--option",
            "A",
        ],
        2,
        "bad_input",
        "two options",
    );
    r(
        &[
            "--as",
            ann,
            "poll",
            "create",
            "--assembly",
            &branch.group,
            "--question",
            "Q",
            "--option",
            "A",
            "--option",
            "a",
        ],
        2,
        "bad_input",
        "twice",
    );
    r(
        &[
            "--as",
            ann,
            "poll",
            "create",
            "--assembly",
            "nowhere",
            "--question",
            "Q",
            "--option",
            "A",
            "--option",
            "B",
        ],
        2,
        "bad_input",
        "not an assembly",
    );
    r(
        &[
            "--as",
            ann,
            "poll",
            "create",
            "--assembly",
            &unknown,
            "--question",
            "Q",
            "--option",
            "A",
            "--option",
            "B",
        ],
        1,
        "not_found",
        "no assembly",
    );
    r(
        &["--as", bob, "assembly", "join", &unknown],
        1,
        "not_found",
        "no assembly",
    );
    // The automatic societies follow the roll.
    r(
        &["--as", bob, "assembly", "join", "activism"],
        1,
        "refused",
        "automatic",
    );
    // The ballot that was cast still counts, alone.
    let results = data.ok(&["poll", "results", &poll]);
    assert_eq!(results["counted"], 1);
    assert_eq!(option(&results, "Buses")["total"], 4);
}

#[test]
fn guests_and_members_cannot_vote_themselves_into_an_electorate() {
    let branch = branch();
    let Branch {
        data,
        fay,
        ann,
        bob,
        cara,
        ..
    } = &branch;
    let witness = branch.witness();
    let r = |args: &[&str], code, kind, needle: &str| {
        branch.refuses(&witness, args, code, kind, needle)
    };

    // A guest may not join a members-only working group.
    let gus = field(&data.ok(&["key", "new", "--name", "Gus"]), "member_id");
    data.ok(&["member", "add", &gus, "--name", "Gus", "--role", "guest"]);
    r(
        &["--as", &gus, "assembly", "join", &branch.group],
        1,
        "refused",
        "guests",
    );
    // Nor found a working group; and a plain member founds no committee.
    r(
        &[
            "--as",
            &gus,
            "assembly",
            "create",
            "X",
            "--kind",
            "working-group",
        ],
        1,
        "refused",
        "guests",
    );
    r(
        &[
            "--as",
            bob,
            "assembly",
            "create",
            "X",
            "--kind",
            "committee",
        ],
        1,
        "refused",
        "steward or a convener",
    );
    // A committee's members are seated, not joined; a guest is no returning officer.
    let board = field(
        &data.ok(&["assembly", "create", "Board", "--kind", "committee"]),
        "assembly_id",
    );
    r(
        &["--as", bob, "assembly", "join", &board],
        1,
        "refused",
        "cannot be joined",
    );
    r(
        &[
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            "Q?",
            "--option",
            "A",
            "--option",
            "B",
            "--officer",
            &gus,
        ],
        1,
        "refused",
        &format!("{gus} is a guest: returning officers must be members"),
    );
    // Nor a station officer, a committee member or a convener; and someone not on the roll
    // is said to be so (the rules' "no such member on the roll" is wrong for a guest).
    r(
        &[
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            "Q?",
            "--option",
            "A",
            "--option",
            "B",
            "--station",
            &gus,
        ],
        1,
        "refused",
        &format!("{gus} is a guest: station officers must be members"),
    );
    r(
        &["assembly", "seat", &board, &gus],
        1,
        "refused",
        &format!("{gus} is a guest: those seated on a committee must be members"),
    );
    r(
        &["assembly", "convener", &board, &gus],
        1,
        "refused",
        &format!("{gus} is a guest: conveners must be members"),
    );
    let stranger = field(&data.ok(&["key", "new", "--name", "Stranger"]), "member_id");
    r(
        &[
            "poll",
            "create",
            "--assembly",
            "activism",
            "--question",
            "Q?",
            "--option",
            "A",
            "--option",
            "B",
            "--officer",
            &stranger,
        ],
        1,
        "refused",
        &format!("{stranger} is not on the roll: returning officers must be members"),
    );
    // A public working group lets the guest join, but a guest is never in an electorate.
    let public = field(
        &data.ok(&[
            "--as",
            ann,
            "assembly",
            "create",
            "Open Group",
            "--kind",
            "working-group",
            "--public",
        ]),
        "assembly_id",
    );
    data.ok(&["--as", &gus, "assembly", "join", &public]);
    data.ok(&["--as", bob, "assembly", "join", &public]);
    let listed = data.ok(&["assemblies"]);
    let open_group = listed["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assembly_id"] == public.as_str())
        .unwrap();
    assert_eq!(open_group["public"], true);
    assert_eq!(
        open_group["members"],
        json!([bob]),
        "guests are not members"
    );
    let open_poll = field(
        &data.ok(&[
            "--as",
            ann,
            "poll",
            "create",
            "--assembly",
            &public,
            "--question",
            "Q?",
            "--option",
            "A",
            "--option",
            "B",
        ]),
        "poll_id",
    );
    assert_eq!(
        data.ok(&["--as", ann, "poll", "open", &open_poll])["electorate"],
        1
    );
    r(
        &["--as", &gus, "vote", &open_poll, "--score", "A=5"],
        1,
        "refused",
        "guests",
    );

    // Constituency societies: a steward puts Bob in North; a poll there is opened.
    data.ok(&["member", "update", bob, "--constituency", "North"]);
    let north = field(
        &data.ok(&[
            "poll",
            "create",
            "--assembly",
            "constituency:North",
            "--question",
            "North's delegate?",
            "--option",
            "Bob",
            "--option",
            "Cara",
        ]),
        "poll_id",
    );
    assert_eq!(data.ok(&["poll", "open", &north])["electorate"], 1);
    // Cara cannot move herself into North (only a steward changes the roll), nor vote there.
    r(
        &[
            "--as",
            cara,
            "member",
            "update",
            cara,
            "--constituency",
            "North",
        ],
        1,
        "refused",
        "steward",
    );
    r(
        &["--as", cara, "vote", &north, "--score", "Cara=5"],
        1,
        "refused",
        "electorate",
    );
    // A steward moves her there: she is now in the society, but the poll was opened before.
    data.ok(&["member", "update", cara, "--constituency", "North"]);
    let listed = data.ok(&["assemblies"]);
    let society = listed["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assembly_id"] == "constituency:North")
        .unwrap();
    let mut both = vec![bob.clone(), cara.clone()];
    both.sort();
    assert_eq!(society["members"], json!(both));
    assert_eq!(society["automatic"], true);
    assert_eq!(society["conveners"], json!([fay]));
    // The text view gives the society's whole id, as `poll create --assembly` takes it.
    let shown = text(data, &["assemblies"]);
    assert!(
        shown
            .lines()
            .any(|l| l.starts_with("constituency:North ") && l.ends_with("Society of North")),
        "{shown}"
    );
    r(
        &["--as", cara, "vote", &north, "--score", "Cara=5"],
        1,
        "refused",
        "electorate",
    );
    vote(data, &north, bob, &["Bob=5", "Cara=4"]);
    let results = data.ok(&["poll", "results", &north]);
    assert_eq!(
        (&results["electorate"], &results["counted"]),
        (&json!(1), &json!(1))
    );
    // A poll opened after the move has her in its electorate.
    let later = field(
        &data.ok(&[
            "poll",
            "create",
            "--assembly",
            "constituency:North",
            "--question",
            "Again?",
            "--option",
            "Yes",
            "--option",
            "No",
        ]),
        "poll_id",
    );
    assert_eq!(data.ok(&["poll", "open", &later])["electorate"], 2);
    vote(data, &later, cara, &["Yes=5"]);
    assert_eq!(data.ok(&["poll", "results", &later])["counted"], 1);
}

#[test]
fn a_committee_votes_by_the_seats_its_conveners_give() {
    let b = branch();
    // Fay (a steward) creates the committee and appoints Ann its convener; Ann seats Bob and
    // Cara, then unseats Cara.
    let committee = field(
        &b.data
            .ok(&["assembly", "create", "Executive", "--kind", "committee"]),
        "assembly_id",
    );
    let appointed = b.data.ok(&["assembly", "convener", &committee, &b.ann]);
    assert_eq!(appointed["convener"], true);
    // Bob is not a convener: he cannot seat anyone.
    let (code, kind, message) = refused(
        &b.data,
        &["--as", &b.bob, "assembly", "seat", &committee, &b.bob],
    );
    assert_eq!((code, kind.as_str()), (1, "refused"), "{message}");
    for who in [&b.bob, &b.cara] {
        let seated = b
            .data
            .ok(&["--as", &b.ann, "assembly", "seat", &committee, who]);
        assert_eq!(seated["seated"], true);
    }
    let unseated = b.data.ok(&[
        "--as", &b.ann, "assembly", "seat", &committee, &b.cara, "--remove",
    ]);
    assert_eq!(unseated["seated"], false);
    // Committees are not joined.
    let (code, kind, _) = refused(&b.data, &["--as", &b.dan, "assembly", "join", &committee]);
    assert_eq!((code, kind.as_str()), (1, "refused"));
    let listed = b.data.ok(&["assemblies"]);
    let entry = listed["assemblies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["assembly_id"] == committee.as_str())
        .unwrap()
        .clone();
    assert_eq!(entry["members"], json!([b.bob]));
    // Ann (its convener, not a steward) runs its poll: only Bob is in the electorate.
    let poll = field(
        &b.data.ok(&[
            "--as",
            &b.ann,
            "poll",
            "create",
            "--assembly",
            &committee,
            "--question",
            "Chair?",
            "--option",
            "Bob",
            "--option",
            "Cara",
        ]),
        "poll_id",
    );
    let opened = b.data.ok(&["--as", &b.ann, "poll", "open", &poll]);
    assert_eq!(opened["electorate"], 1);
    vote(&b.data, &poll, &b.bob, &["Bob=5"]);
    let (code, kind, _) = refused(
        &b.data,
        &["--as", &b.cara, "vote", &poll, "--score", "Cara=5"],
    );
    assert_eq!((code, kind.as_str()), (1, "refused"));
    // Dismissed, Ann no longer convenes it: she cannot seat Dan.
    b.data
        .ok(&["assembly", "convener", &committee, &b.ann, "--dismiss"]);
    let (code, kind, _) = refused(
        &b.data,
        &["--as", &b.ann, "assembly", "seat", &committee, &b.dan],
    );
    assert_eq!((code, kind.as_str()), (1, "refused"));
    // She is still the poll's returning officer (its creator): she closes it.
    b.data.ok(&["--as", &b.ann, "poll", "close", &poll]);
    let results = b.data.ok(&["poll", "results", &poll]);
    assert_eq!(results["stage"], "closed");
    assert_eq!(results["counted"], 1);
    assert_eq!(results["winners"], json!(["Bob"]));
    let _ = (&b.fay, &b.eve);
}

#[test]
fn a_poll_names_a_constituency_on_the_roll_and_opens_only_with_someone_to_vote() {
    let b = branch();
    let witness = b.witness();
    let r = |args: &[&str], code, kind, needle| b.refuses(&witness, args, code, kind, needle);
    for who in [&b.ann, &b.bob] {
        b.data
            .ok(&["member", "update", who, "--constituency", "North Ward"]);
    }
    let create = |assembly: &str| -> Vec<String> {
        [
            "poll",
            "create",
            "--assembly",
            assembly,
            "--question",
            "Ward rep?",
            "--option",
            "Ann",
            "--option",
            "Bob",
        ]
        .map(String::from)
        .to_vec()
    };
    // Constituencies match exactly: another case is another constituency, which nobody is in.
    // A poll there could never be voted in, so it is not created: the message names the one
    // meant, or lists those on the roll.
    let lower = create("constituency:north ward");
    let lower: Vec<&str> = lower.iter().map(String::as_str).collect();
    r(
        &lower,
        1,
        "not_found",
        "no constituency \"north ward\" on the roll (did you mean constituency:North Ward?)",
    );
    let typo = create("constituency:Nowhere");
    let typo: Vec<&str> = typo.iter().map(String::as_str).collect();
    r(
        &typo,
        1,
        "not_found",
        "(constituencies: \"North Ward\"); a steward sets a member's",
    );
    // The constituency on the roll: its members vote, others are not in the electorate.
    let good = create("constituency:North Ward");
    let good: Vec<&str> = good.iter().map(String::as_str).collect();
    let poll = field(&b.data.ok(&good), "poll_id");
    assert_eq!(b.data.ok(&["poll", "open", &poll])["electorate"], 2);
    vote(&b.data, &poll, &b.ann, &["Bob=5"]);
    let (code, kind, message) = refused(
        &b.data,
        &["--as", &b.cara, "vote", &poll, "--score", "Ann=5"],
    );
    assert_eq!((code, kind.as_str()), (1, "refused"), "{message}");

    // A working group nobody has joined yet: its poll is created, but opening it now would
    // fix an empty electorate for good, so the open is refused, saying why.
    let empty = field(
        &b.data
            .ok(&["assembly", "create", "Empty", "--kind", "working-group"]),
        "assembly_id",
    );
    let args = create(&empty);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let poll = field(&b.data.ok(&args), "poll_id");
    r(&["poll", "open", &poll], 1, "refused", "nobody is in");
    b.data.ok(&["assembly", "join", &empty]);
    assert_eq!(b.data.ok(&["poll", "open", &poll])["electorate"], 1);
}

#[test]
fn odd_names_are_scored_by_the_last_equals_sign_shown_escaped_in_text_and_exact_in_json() {
    let b = branch();
    let witness = b.witness();
    let r = |args: &[&str], code, kind, needle: &str| b.refuses(&witness, args, code, kind, needle);
    let question = "Fund the\nbus\u{202e} campaign? \u{1b}[31mnow";
    let options = ["Buses = 5", "a=b=c", "Tr\tams", "Bi\u{200b}kes"];
    let mut args = vec![
        "--as",
        &b.ann,
        "poll",
        "create",
        "--assembly",
        &b.group,
        "--question",
        question,
        "--seats",
        "2",
    ];
    for option in &options {
        args.extend(["--option", option]);
    }
    let poll = field(&b.data.ok(&args), "poll_id");
    b.data.ok(&["--as", &b.ann, "poll", "open", &poll]);

    // The score is the text after the last `=`; the name before it is matched as options are
    // compared (trimmed, case-folded, invisible characters aside).
    vote(
        &b.data,
        &poll,
        &b.ann,
        &["buses = 5 = 4", "A=B=C=5", "tr\tams=1"],
    );
    vote(&b.data, &poll, &b.bob, &["Bikes=5", "a=b=c = 2"]);
    let bob_votes = |score: &'static str| {
        vec![
            "--as",
            b.bob.as_str(),
            "vote",
            poll.as_str(),
            "--score",
            score,
        ]
    };
    // `Buses=5` names no option here; the options are listed quoted, so that one holding `=`
    // or `, ` reads as one.
    r(
        &bob_votes("Buses=5"),
        2,
        "bad_input",
        r#""Buses" is not an option of this poll (options: "Buses = 5", "a=b=c", "Tr\tams", "Bi\u{200b}kes")"#,
    );
    r(
        &bob_votes("=5"),
        2,
        "bad_input",
        "name the option before the `=`",
    );
    r(
        &bob_votes("a=b=c"),
        2,
        "bad_input",
        "the score (after the last `=`) must be a whole number 0-5",
    );
    // Eve is not in the group: the refusal says the open fixed the electorate.
    r(
        &["--as", &b.eve, "vote", &poll, "--score", "Bikes=5"],
        1,
        "refused",
        &format!(
            "{} is not in the poll's electorate, which the open fixed",
            b.eve
        ),
    );

    // JSON: exactly as given.
    let listed = b.data.ok(&["polls"]);
    let entry = listed["polls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["poll_id"] == poll.as_str())
        .unwrap();
    assert_eq!(entry["question"], question);
    assert_eq!(entry["options"], json!(options));
    let results = b.data.ok(&["poll", "results", &poll]);
    assert_eq!(results["question"], question);
    assert_eq!(results["winners"], json!(["a=b=c", "Bi\u{200b}kes"]));
    assert_eq!(option(&results, "Tr\tams")["total"], 1);
    assert_eq!(option(&results["elsewhere"], "Buses = 5")["total"], 4);

    // Text: escaped, in the list, the results and an error alike; nothing raw gets through.
    let raw = |shown: &str| {
        assert!(
            !shown.contains(['\t', '\u{202e}', '\u{1b}', '\u{200b}']),
            "{shown:?}"
        );
    };
    let listed = text(&b.data, &["polls"]);
    raw(&listed);
    assert!(
        listed.contains(r"Fund the\nbus\u{202e} campaign? \u{1b}[31mnow"),
        "{listed}"
    );
    let shown = text(&b.data, &["poll", "results", &poll]);
    raw(&shown);
    for needle in [
        r"Poll: Fund the\nbus\u{202e} campaign? \u{1b}[31mnow",
        r"Winners: a=b=c, Bi\u{200b}kes",
        r"Tr\tams",
    ] {
        assert!(shown.contains(needle), "{needle}: {shown}");
    }
    let path = b.data.path();
    let failed = moot(
        &[
            "--data",
            &path,
            "--as",
            &b.bob,
            "vote",
            &poll,
            "--score",
            "x\u{202e}=1",
        ],
        None,
    );
    assert_eq!(failed.status.code(), Some(2));
    let stderr = String::from_utf8(failed.stderr).unwrap();
    raw(&stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains(r#"(options: "Buses = 5", "a=b=c", "Tr\tams", "Bi\u{200b}kes")"#));
}

#[test]
fn advisory_times_are_shown_and_never_enforced() {
    let b = branch();
    let poll = field(
        &b.data.ok(&[
            "--as",
            &b.ann,
            "poll",
            "create",
            "--assembly",
            &b.group,
            "--question",
            "When?",
            "--option",
            "Soon",
            "--option",
            "Later",
            "--opens-at",
            "2026-12-01T19:30Z",
            "--closes-at",
            "2026-12-01 21:00",
        ]),
        "poll_id",
    );
    let listed = b.data.ok(&["polls"]);
    let entry = &listed["polls"][0];
    assert_eq!(entry["poll_id"], poll.as_str());
    assert_eq!(entry["opens_at"], "2026-12-01T19:30:00Z");
    assert_eq!(entry["closes_at"], "2026-12-01T21:00:00Z");
    // Long past its advisory close, the poll opens, takes ballots and closes only by signed ops.
    b.data.ok(&["--as", &b.ann, "poll", "open", &poll]);
    vote(&b.data, &poll, &b.bob, &["Soon=5"]);
    let results = text(&b.data, &["poll", "results", &poll]);
    assert!(
        results.contains("opens 2026-12-01T19:30:00Z, closes 2026-12-01T21:00:00Z"),
        "{results}"
    );
    let create_with = |times: &[&str]| {
        let mut args = vec![
            "poll",
            "create",
            "--assembly",
            &b.group,
            "--question",
            "Q",
            "--option",
            "A",
            "--option",
            "B",
        ];
        args.extend_from_slice(times);
        refused(&b.data, &args)
    };
    for (flag, value) in [
        ("--opens-at", "1 December"),
        ("--closes-at", "2026-02-30T10:00Z"),
    ] {
        let (code, kind, message) = create_with(&[flag, value]);
        assert_eq!((code, kind.as_str()), (2, "bad_input"), "{message}");
        assert!(message.contains(flag), "{message}");
    }
    let (code, kind, message) = create_with(&[
        "--opens-at",
        "2026-12-01T19:30Z",
        "--closes-at",
        "2026-12-01T19:00Z",
    ]);
    assert_eq!((code, kind.as_str()), (2, "bad_input"), "{message}");
}

/// A quorum larger than the electorate cannot be met: opening such a poll says so (a
/// warning: the poll still opens); a quorum within reach says nothing.
#[test]
fn opening_a_poll_whose_quorum_exceeds_its_electorate_warns() {
    let b = branch();
    // The working group has four members.
    for (quorum, warned) in [("5", true), ("4", false)] {
        let poll = b.poll(quorum);
        let (code, opened, stderr) = b.data.run(&["--as", &b.ann, "poll", "open", &poll]);
        assert_eq!(code, 0, "{stderr}");
        assert_eq!(opened["electorate"], 4);
        assert_eq!(
            stderr.contains("cannot be quorate"),
            warned,
            "quorum {quorum}: {stderr}"
        );
    }
}

/// A member made a guest while their laptop is offline: the ballot they cast there, not
/// having heard, arrives afterwards and does not count (as after a removal), and says why.
/// Before, a guest admission cut nothing, so such a ballot — or one back-dated on purpose —
/// counted.
#[test]
fn a_ballot_cast_apart_by_a_member_made_a_guest_meanwhile_does_not_count() {
    let (hall, north) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let nell = field(&north.ok(&["init", "--name", "Nell"]), "member_id");
    hall.ok(&["member", "add", &nell, "--name", "Nell"]);
    let poll = hall.open_poll("Which first?", &["Buses", "Bikes"]);
    hall.carry_to(&north, "hall.bundle");
    // The hall makes Nell a guest; her laptop, apart, has not heard and lets her vote.
    hall.ok(&["member", "update", &nell, "--role", "guest"]);
    let (ballot, _) = vote(&north, &poll, &nell, &["Buses=5", "Bikes=0"]);
    vote(
        &hall,
        &poll,
        &field(&hall.ok(&["id"]), "member_id"),
        &["Buses=0", "Bikes=5"],
    );
    north.carry_to(&hall, "north.bundle");
    hall.ok(&["poll", "close", &poll]);
    let results = hall.ok(&["poll", "results", &poll]);
    assert_eq!(results["counted"], 1, "{results}");
    let excluded = results["excluded"].as_array().unwrap();
    assert_eq!(excluded.len(), 1, "{results}");
    assert_eq!(excluded[0]["ballot_id"], ballot.as_str());
    assert_eq!(excluded[0]["reason"], "not_valid");
    assert!(
        excluded[0]["detail"].as_str().unwrap().contains("cut"),
        "{results}"
    );
    // And she is a guest on the roll, as asked.
    let members = hall.ok(&["members"]);
    assert_eq!(crate::node::status_of(&members, &nell), "guest");
}

/// A convener whose role is taken away while their laptop is apart: the open they write there,
/// not having heard, arrives afterwards and does not open the poll (the revocation cuts what
/// rests on the role, as a removal cuts everything); the hall can still open it, and its open
/// counts. Before, a revocation cut nothing: an ex-convener could go on opening polls by
/// never naming it.
#[test]
fn a_poll_opened_apart_by_a_convener_revoked_meanwhile_stays_unopened() {
    let (hall, north) = (Data::new(), Data::new());
    hall.ok(&["init", "--name", "Fay"]);
    hall.ok(&["hub", "create", "Riverside"]);
    let nell = field(&north.ok(&["init", "--name", "Nell"]), "member_id");
    hall.ok(&[
        "member", "add", &nell, "--name", "Nell", "--role", "convener",
    ]);
    let poll = hall.create_poll("Which first?", &["Buses", "Bikes"]);
    hall.carry_to(&north, "hall.bundle");
    hall.ok(&["member", "update", &nell, "--role", "member"]);
    // Nell's laptop has not heard: there she still convenes.
    let late = field(&north.ok(&["poll", "open", &poll]), "open_id");
    north.carry_to(&hall, "north.bundle");
    let stage = |data: &Data| {
        let polls = data.ok(&["polls"]);
        let found = polls["polls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["poll_id"] == poll.as_str())
            .cloned()
            .unwrap();
        (found["stage"].clone(), found["open_id"].clone())
    };
    assert_eq!(stage(&hall), (json!("created"), json!(null)));
    // The hall can still open it (the open it holds counts for nothing there).
    let opened = field(&hall.ok(&["poll", "open", &poll]), "open_id");
    assert_ne!(opened, late);
    assert_eq!(stage(&hall), (json!("open"), json!(opened)));
    // Nell's laptop, once it hears, agrees.
    hall.carry_to(&north, "hall2.bundle");
    assert_eq!(stage(&north), (json!("open"), json!(opened)));
}

/// The founder stepping down as steward: their steward role came with the genesis, which is also
/// their admission, so `member update --role member` takes it away with a removal and a
/// re-admission, whose cut holds for what they write apart afterwards. A poll the founder opens
/// on a laptop that has not heard does not open it, and the founder is a plain member.
#[test]
fn a_founder_who_stepped_down_cannot_open_a_poll_apart() {
    let (north, hall) = (Data::new(), Data::new());
    let fay = field(&north.ok(&["init", "--name", "Fay"]), "member_id");
    north.ok(&["hub", "create", "Riverside"]);
    let sam = field(&hall.ok(&["init", "--name", "Sam"]), "member_id");
    north.ok(&["member", "add", &sam, "--name", "Sam", "--role", "steward"]);
    let poll = north.create_poll("Which first?", &["Buses", "Bikes"]);
    north.carry_to(&hall, "north.bundle");
    hall.ok(&["member", "update", &fay, "--role", "member"]);
    // Fay's laptop has not heard: there she is still a steward, and opens the poll.
    north.ok(&["poll", "open", &poll]);
    north.carry_to(&hall, "north2.bundle");
    let stage = |data: &Data| {
        let polls = data.ok(&["polls"]);
        polls["polls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["poll_id"] == poll.as_str())
            .map(|p| p["stage"].clone())
            .unwrap()
    };
    assert_eq!(stage(&hall), json!("created"));
    let members = hall.ok(&["members"]);
    assert_eq!(crate::node::status_of(&members, &fay), "member");
    let fay_roles = members["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["member_id"] == fay.as_str())
        .map(|m| m["roles"].clone())
        .unwrap();
    assert_eq!(fay_roles, json!([]), "{members}");
    // Sam opens it; Fay's laptop, once it hears, agrees.
    hall.ok(&["poll", "open", &poll]);
    hall.carry_to(&north, "hall.bundle");
    assert_eq!(stage(&north), json!("open"));
}
