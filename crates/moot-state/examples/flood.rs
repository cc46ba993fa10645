//! A stranger floods a replica with 10,000 ops of 64 KiB (640 MB in all) whose dependencies
//! nobody has, from a key nobody certified; then an honest op whose dependencies are missing
//! arrives from another peer. Prints what the flood left behind: whether the honest op got in,
//! and the growth of resident memory (Linux `/proc/self/status`).
//!
//! `cargo run --release -p moot-state --example flood`

#![allow(clippy::unwrap_used, clippy::expect_used)]

use moot_crypto::{Draft, Lane, OpId, SecretKey};
use moot_state::body::{Admit, Certificate, CertifyDevice, Found, PROTOCOL, RoleChange, hub_id};
use moot_state::{Body, Limits, Outcome, Replica, Retain, Role, Source, Standing};

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let founder = SecretKey::from_seed([1; 32]);
    let device = SecretKey::from_seed([2; 32]);
    let ann = SecretKey::from_seed([3; 32]);
    let ann_device = SecretKey::from_seed([4; 32]);
    let stranger = SecretKey::from_seed([9; 32]);
    let nonce = [5; 16];
    let hub = hub_id(&founder.public(), &nonce);
    // The honest history, written on the founder's node.
    let mut source = Replica::new(hub, Limits::default());
    let found = Body::Found(Box::new(Found {
        name: "Flooded hub".into(),
        founder: founder.public(),
        nonce,
        protocol: PROTOCOL,
        device_certificate: Certificate::issue(&founder, &hub, &device.public()),
    }));
    let genesis = source.write(&device, &found).unwrap();
    let admit = Body::Admit(Admit {
        member: ann.public(),
        standing: Standing::Member,
    });
    source.write(&device, &admit).unwrap();
    let certify = Body::CertifyDevice(CertifyDevice {
        member: ann.public(),
        device: ann_device.public(),
        certificate: Certificate::issue(&ann, &hub, &ann_device.public()),
    });
    source.write(&ann_device, &certify).unwrap();
    let honest = source
        .write(
            &device,
            &Body::Grant(RoleChange {
                member: ann.public(),
                role: Role::Convener,
            }),
        )
        .unwrap();

    // The node under attack holds the genesis only.
    let mut replica = Replica::new(
        hub,
        Limits {
            retain: Retain::IndexOnly,
            ..Limits::default()
        },
    );
    replica.insert(source.op_bytes(&genesis).unwrap());
    let before = rss_kb();
    let mut refused = 0;
    let body = vec![7u8; 64 * 1024 - 64];
    for n in 0..10_000u64 {
        let mut missing = [0u8; 32];
        missing[..8].copy_from_slice(&n.to_le_bytes());
        let op = Draft {
            lane: Lane::Members,
            seq: n + 2,
            prev: Some(OpId([0xee; 32])),
            deps: vec![OpId(missing)],
            kind: 0x0377,
            body: body.clone(),
        }
        .sign(&hub, &stranger)
        .unwrap();
        if matches!(
            replica.insert_from(Source(66), op.bytes()).outcome,
            Outcome::Rejected(_)
        ) {
            refused += 1;
        }
    }
    let after_flood = rss_kb();
    // The honest op arrives before its dependencies, from another peer: it waits...
    let waiting = replica
        .insert_from(Source(1), source.op_bytes(&honest).unwrap())
        .outcome;
    // ...and is accepted when they come.
    for id in source.op_ids() {
        replica.insert_from(Source(1), source.op_bytes(&id).unwrap());
    }
    for id in source.op_ids() {
        replica.insert_from(Source(1), source.op_bytes(&id).unwrap());
    }
    let accepted = replica.validity(&honest) == Some(Ok(()));
    println!(
        "flood: {refused} of 10000 ops refused, {} waiting, {} rejections remembered; \
         honest op first {}, then accepted: {accepted}; RSS {before} kB before the flood, \
         {after_flood} kB after (growth {} kB)",
        replica.pending_len(),
        replica.remembered_rejections(),
        match waiting {
            Outcome::Pending { .. } => "waited",
            _ => "did not wait",
        },
        after_flood.saturating_sub(before)
    );
}
