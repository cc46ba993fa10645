//! `moot init` and `moot hub create` killed with SIGKILL at random moments: each either happened
//! whole or not at all, and the data dir stays usable (the next `id`, `init`, `hubs` work).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::node::Data;
use crate::node_hardening::Rng;

const TRIALS: usize = 20;

/// Starts `moot --data DIR --json ARGS` and kills it after `delay` (if it is still running).
/// Returns true if it was killed before it finished.
fn run_and_kill(data: &Data, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(env!("CARGO_BIN_EXE_moot"))
        .args(["--data", &data.path(), "--json"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let killed = child.try_wait().unwrap().is_none();
    child.kill().unwrap();
    child.wait().unwrap();
    killed
}

/// How long a command takes uninterrupted, to spread the kills over its whole run.
fn duration_of(args: &[&str], prepare: impl Fn() -> Data) -> Duration {
    let data = prepare();
    let started = Instant::now();
    data.ok(args);
    started.elapsed()
}

#[test]
fn a_killed_init_leaves_no_identity_or_a_whole_one() {
    let mut rng = Rng::from_env("MOOT_KILL_SEED");
    let span = duration_of(&["init", "--name", "Fay"], Data::new);
    let mut killed = 0;
    for _ in 0..TRIALS {
        let data = Data::new();
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64));
        killed += usize::from(run_and_kill(&data, &["init", "--name", "Fay"], delay));
        let (code, id, stderr) = data.run(&["id"]);
        match code {
            0 => assert_eq!(id["name"], "Fay"),
            _ => {
                assert_eq!(code, 1, "{stderr}");
                assert!(stderr.contains("moot init"), "{stderr}");
                data.ok(&["init", "--name", "Fay"]);
                assert_eq!(data.ok(&["id"])["name"], "Fay");
            }
        }
        assert_eq!(data.ok(&["keys"])["keys"].as_array().unwrap().len(), 1);
    }
    eprintln!("init: {killed} of {TRIALS} killed mid-run");
}

#[test]
fn a_killed_hub_create_leaves_no_hub_or_a_whole_one() {
    let mut rng = Rng::from_env("MOOT_KILL_SEED");
    let initialised = || {
        let data = Data::new();
        data.ok(&["init", "--name", "Fay"]);
        data
    };
    let span = duration_of(&["hub", "create", "Riverside"], initialised);
    let mut killed = 0;
    let mut whole = 0;
    for _ in 0..TRIALS {
        let data = initialised();
        let fay = data.ok(&["id"])["member_id"].as_str().unwrap().to_string();
        let delay = Duration::from_micros(rng.below(span.as_micros() as u64));
        killed += usize::from(run_and_kill(&data, &["hub", "create", "Riverside"], delay));
        let hubs = data.ok(&["hubs"]);
        let hubs = hubs["hubs"].as_array().unwrap();
        match hubs.len() {
            0 => {
                // Not made: making it again works.
                data.ok(&["hub", "create", "Riverside"]);
            }
            1 => {
                whole += 1;
                assert_eq!(
                    hubs[0]["default"], true,
                    "a hub is whole: it is the default"
                );
                assert_eq!(hubs[0]["name"], "Riverside");
            }
            n => panic!("{n} hubs after one create"),
        }
        let show = data.ok(&["hub", "show"]);
        assert_eq!(show["founder"], fay.as_str());
        assert_eq!(
            (show["members"].clone(), show["stewards"].clone()),
            (1.into(), 1.into())
        );
    }
    eprintln!("hub create: {killed} of {TRIALS} killed mid-run, {whole} whole before the kill");
}
