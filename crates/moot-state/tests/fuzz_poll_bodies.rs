//! Fuzz-style tests of the assembly and poll bodies (the project rule: every decoder of bytes
//! from a peer, a bundle or the disk gets one). For each new kind, `Body::decode` on random byte
//! strings of many lengths, on mutations of valid encodings (bit flips, byte changes,
//! truncations, extensions, insertions, deletions, length-prefix bumps) and on huge claimed
//! vector lengths must give a typed error or a body within the limits — never a panic, never
//! an allocation beyond what the input can back. Then signed ops carrying such bodies go
//! through `Replica::insert`: refused with a typed reason, and the replica's state unchanged.
//!
//! On allocation: postcard decodes from a slice, and its sequence access gives serde no size
//! hint when the claimed length exceeds the bytes left (postcard 1.2 `SeqAccess::size_hint`),
//! so a `Vec` starts empty and grows only as elements actually decode; serde also caps any
//! preallocation at 1 MiB. A claimed length beyond the input fails at the first missing
//! element. `huge_claimed_lengths_fail_fast` pins that the decode fails (and quickly, whatever
//! the claim).
//!
//! The generator is a fixed xorshift PRNG: every run tests the same inputs.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use moot_crypto::{Lane, OpId, SecretKey};
use moot_state::body::{
    AssemblyKind, AssemblyRef, Ballot, BodyError, ClosePoll, CloseStation, Convener,
    CreateAssembly, CreatePoll, Join, MAX_OFFICERS, MAX_POLL_OPTIONS, MAX_QUESTION_BYTES,
    MAX_SCORE, MAX_TEXT_BYTES, OpenPoll, Seat, kind,
};
use moot_state::{Body, Outcome, Reason, Replica, Role, Standing};

/// The kinds under test.
const KINDS: [u16; 9] = [
    kind::CREATE_ASSEMBLY,
    kind::CONVENER,
    kind::JOIN,
    kind::SEAT,
    kind::CREATE_POLL,
    kind::OPEN_POLL,
    kind::BALLOT,
    kind::CLOSE_STATION,
    kind::CLOSE_POLL,
];

/// A deterministic PRNG (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next() as u8
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.byte()).collect()
    }
}

fn key(n: u8) -> moot_crypto::PublicKey {
    SecretKey::from_seed([n; 32]).public()
}

fn text(len: usize, c: char) -> String {
    std::iter::repeat_n(c, len).collect()
}

/// Valid bodies of every new kind: small ones, and ones at every limit.
fn samples() -> Vec<Body> {
    let assembly = OpId([7; 32]);
    let poll = OpId([8; 32]);
    let open = OpId([9; 32]);
    vec![
        Body::CreateAssembly(CreateAssembly {
            name: "Transport".into(),
            kind: AssemblyKind::WorkingGroup,
        }),
        Body::CreateAssembly(CreateAssembly {
            name: text(MAX_TEXT_BYTES, 'x'),
            kind: AssemblyKind::Committee,
        }),
        Body::Convener(Convener {
            assembly,
            member: key(3),
            convener: true,
        }),
        Body::Join(Join {
            assembly,
            joined: true,
        }),
        Body::Seat(Seat {
            assembly,
            member: key(4),
            seated: false,
        }),
        Body::CreatePoll(Box::new(CreatePoll {
            assembly: AssemblyRef::Created(assembly),
            question: "Which campaign first?".into(),
            options: vec!["Buses".into(), "Bikes".into(), "Trams".into()],
            seats: 1,
            officers: vec![key(1)],
            stations: vec![key(5)],
            quorum: Some(3),
            opens_at: Some(1_700_000_000),
            closes_at: Some(u64::MAX),
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            assembly: AssemblyRef::Constituency("Riverside".into()),
            question: "Who?".into(),
            options: vec!["Ann".into(), "Ben".into()],
            seats: 1,
            officers: vec![],
            stations: vec![],
            quorum: None,
            opens_at: None,
            closes_at: None,
        })),
        // Every list and text at its limit.
        Body::CreatePoll(Box::new(CreatePoll {
            assembly: AssemblyRef::Constituency(text(MAX_TEXT_BYTES, 'c')),
            question: text(MAX_QUESTION_BYTES, 'q'),
            options: (0..MAX_POLL_OPTIONS)
                .map(|i| format!("{i:03}{}", text(MAX_TEXT_BYTES - 3, 'o')))
                .collect(),
            seats: u16::MAX,
            officers: (0..MAX_OFFICERS).map(|i| key(i as u8)).collect(),
            stations: (0..MAX_OFFICERS).map(|i| key(i as u8 + 64)).collect(),
            quorum: Some(u32::MAX),
            opens_at: Some(0),
            closes_at: Some(u64::MAX),
        })),
        Body::OpenPoll(OpenPoll {
            poll,
            electorate: 4,
            electorate_hash: [0xAB; 32],
        }),
        Body::Ballot(Ballot {
            open,
            member: key(3).to_bytes(),
            revision: 1,
            scores: vec![5, 1, 0],
        }),
        Body::Ballot(Ballot {
            open,
            member: key(3).to_bytes(),
            revision: u32::MAX,
            scores: vec![MAX_SCORE; MAX_POLL_OPTIONS],
        }),
        Body::CloseStation(CloseStation { open }),
        Body::ClosePoll(ClosePoll { open }),
    ]
}

/// True if a decoded body is of `kind` and within every limit its kind has.
fn within_limits(kind: u16, body: &Body) -> bool {
    if body.kind() != kind {
        return false;
    }
    match body {
        Body::CreateAssembly(a) => a.name.len() <= MAX_TEXT_BYTES,
        Body::CreatePoll(p) => {
            let assembly_ok = match &p.assembly {
                AssemblyRef::Constituency(c) => c.len() <= MAX_TEXT_BYTES,
                _ => true,
            };
            assembly_ok
                && p.question.len() <= MAX_QUESTION_BYTES
                && p.options.len() <= MAX_POLL_OPTIONS
                && p.options.iter().all(|o| o.len() <= MAX_TEXT_BYTES)
                && p.officers.len() <= MAX_OFFICERS
                && p.stations.len() <= MAX_OFFICERS
        }
        Body::Ballot(b) => b.scores.len() <= MAX_POLL_OPTIONS,
        Body::Convener(_)
        | Body::Join(_)
        | Body::Seat(_)
        | Body::OpenPoll(_)
        | Body::CloseStation(_)
        | Body::ClosePoll(_) => true,
        _ => false,
    }
}

/// Decodes `bytes` as `kind`: a typed error, or a body of the kind within its limits that
/// encodes and decodes back to itself.
fn check(kind: u16, bytes: &[u8]) -> Result<Body, BodyError> {
    let result = Body::decode(kind, bytes);
    match &result {
        Ok(body) => {
            assert!(
                within_limits(kind, body),
                "kind {kind:#06x}: {} bytes decoded beyond a limit",
                bytes.len()
            );
            let (encoded_kind, encoded) = body.encode().expect("a known body encodes");
            assert_eq!(encoded_kind, kind);
            assert_eq!(Body::decode(kind, &encoded).as_ref(), Ok(body));
        }
        Err(BodyError::Decode { kind: k, .. }) | Err(BodyError::Limit(k)) => {
            assert_eq!(*k, kind, "the error names the kind");
        }
        Err(other) => panic!("kind {kind:#06x}: unexpected error {other:?}"),
    }
    result
}

fn encoding(body: &Body) -> (u16, Vec<u8>) {
    body.encode().expect("a known body encodes")
}

/// Lengths from empty to past the largest body the envelope carries.
const LENGTHS: [usize; 24] = [
    0, 1, 2, 3, 4, 5, 7, 8, 15, 16, 31, 32, 33, 63, 64, 65, 100, 127, 128, 255, 256, 1000, 4096,
    70_000,
];

#[test]
fn random_bytes_give_a_typed_error_or_a_body_within_the_limits() {
    let mut rng = Rng::new(1);
    for kind in KINDS {
        let mut decoded = 0;
        for &len in &LENGTHS {
            let rounds = if len > 1000 { 8 } else { 300 };
            for _ in 0..rounds {
                let bytes = rng.bytes(len);
                decoded += usize::from(check(kind, &bytes).is_ok());
                // Small varints and bytes are the likely values of real fields: a second
                // draw biased to them reaches deeper into the structures.
                let biased: Vec<u8> = (0..len).map(|_| rng.byte() % 4).collect();
                decoded += usize::from(check(kind, &biased).is_ok());
            }
        }
        // Fixed-size bodies (a close is 32 bytes) do decode from random bytes sometimes:
        // that is fine, only the limits matter.
        let _ = decoded;
    }
}

#[test]
fn every_single_byte_change_and_truncation_of_a_valid_encoding_is_typed() {
    for body in samples() {
        let (kind, bytes) = encoding(&body);
        assert_eq!(check(kind, &bytes), Ok(body.clone()), "the sample decodes");
        // Big bodies: every byte would be slow in a debug build (each decode checks up to
        // 128 keys); a stride covers them, and the last bytes are covered one by one.
        let stride = if bytes.len() > 2000 { 97 } else { 1 };
        let dense_from = bytes.len().saturating_sub(256);
        // Truncations: every prefix but the whole is refused (no field is optional at the
        // end of any of these bodies).
        let cuts = (0..dense_from)
            .step_by(stride)
            .chain(dense_from..bytes.len());
        for cut in cuts {
            assert!(
                check(kind, &bytes[..cut]).is_err(),
                "kind {kind:#06x}: a prefix of {cut} bytes decoded"
            );
        }
        // Extensions: trailing bytes are refused.
        for extra in [&[0u8][..], &[0xFF], &[1, 2, 3], &[0; 64]] {
            let mut longer = bytes.clone();
            longer.extend_from_slice(extra);
            assert!(check(kind, &longer).is_err(), "trailing bytes decoded");
        }
        for at in (0..dense_from)
            .step_by(stride)
            .chain(dense_from..bytes.len())
        {
            let mut changed = bytes.clone();
            for bit in 0..8 {
                changed[at] = bytes[at] ^ (1 << bit);
                let _ = check(kind, &changed);
            }
            // Values a length prefix or tag is likely to be bumped to: 0, small, the
            // varint continuation bit, and everything set.
            for value in [0x00, 0x01, 0x02, 0x3F, 0x40, 0x7F, 0x80, 0x81, 0xFE, 0xFF] {
                changed[at] = value;
                let _ = check(kind, &changed);
            }
            // Insertion and deletion shift every later field.
            let mut inserted = bytes.clone();
            inserted.insert(at, 0x80);
            let _ = check(kind, &inserted);
            let mut deleted = bytes.clone();
            deleted.remove(at);
            let _ = check(kind, &deleted);
        }
    }
}

#[test]
fn random_mutations_of_valid_encodings_are_typed() {
    let mut rng = Rng::new(2);
    let samples: Vec<(u16, Vec<u8>)> = samples().iter().map(encoding).collect();
    for round in 0..20_000 {
        let (kind, original) = &samples[round % samples.len()];
        let mut bytes = original.clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(6) {
                0 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] ^= 1 << rng.below(8);
                }
                1 if !bytes.is_empty() => {
                    let at = rng.below(bytes.len());
                    bytes[at] = rng.byte();
                }
                2 => bytes.truncate(rng.below(bytes.len() + 1)),
                3 => {
                    let extra = rng.below(40);
                    bytes.extend(rng.bytes(extra));
                }
                4 => {
                    let at = rng.below(bytes.len() + 1);
                    bytes.insert(at, rng.byte());
                }
                _ if !bytes.is_empty() => {
                    // A varint bump: a byte becomes a long continuation run.
                    let at = rng.below(bytes.len());
                    let run = 1 + rng.below(10);
                    let tail = bytes.split_off(at);
                    bytes.extend(std::iter::repeat_n(0xFF, run));
                    bytes.extend(tail.into_iter().skip(1));
                }
                _ => {}
            }
        }
        let _ = check(*kind, &bytes);
    }
}

/// A varint (postcard's LEB128) of `value`.
fn varint(mut value: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let byte = (value & 0x7F) as u8;
        value >>= 7;
        if value == 0 {
            out.push(byte);
            return out;
        }
        out.push(byte | 0x80);
    }
}

/// Claimed lengths: far beyond any input, at the edges of the integer widths, and an overlong
/// varint (more continuation bytes than a u64 has).
fn huge_claims() -> Vec<Vec<u8>> {
    let mut claims: Vec<Vec<u8>> = [
        MAX_POLL_OPTIONS as u64 + 1,
        1 << 16,
        u32::MAX as u64,
        1 << 32,
        1 << 48,
        (1 << 63) - 1,
        1 << 63,
        u64::MAX,
    ]
    .iter()
    .map(|v| varint(*v))
    .collect();
    claims.push(vec![0xFF; 11]);
    claims.push(vec![0x80; 20]);
    claims
}

/// `prefix`, a claimed length, then `tail` (a few bytes of what the claim says follows).
fn claimed(prefix: &[u8], claim: &[u8], tail: &[u8]) -> Vec<u8> {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(claim);
    bytes.extend_from_slice(tail);
    bytes
}

#[test]
fn huge_claimed_lengths_fail_fast() {
    let assembly = postcard::to_allocvec(&AssemblyRef::Activism).unwrap();
    let question = postcard::to_allocvec("q").unwrap();
    let option = postcard::to_allocvec("Buses").unwrap();
    let open = [9u8; 32];
    let member = key(3).to_bytes();
    let mut cases: Vec<(u16, Vec<u8>)> = Vec::new();
    for claim in huge_claims() {
        for tail in [&[][..], &[0], &[1, b'x'], &[5; 40]] {
            // CreatePoll: the question, each option, the options list, officers, stations,
            // and a constituency's name.
            let mut before_question = assembly.clone();
            cases.push((kind::CREATE_POLL, claimed(&before_question, &claim, tail)));
            before_question.extend_from_slice(&question);
            cases.push((kind::CREATE_POLL, claimed(&before_question, &claim, tail)));
            let mut one_option = before_question.clone();
            one_option.push(2);
            one_option.extend_from_slice(&option);
            cases.push((kind::CREATE_POLL, claimed(&one_option, &claim, tail)));
            let mut officers = before_question.clone();
            officers.push(2);
            officers.extend_from_slice(&option);
            officers.extend_from_slice(&postcard::to_allocvec("Bikes").unwrap());
            officers.push(1); // seats
            cases.push((kind::CREATE_POLL, claimed(&officers, &claim, &member)));
            let mut stations = officers.clone();
            stations.push(0); // no officers
            cases.push((kind::CREATE_POLL, claimed(&stations, &claim, &member)));
            cases.push((kind::CREATE_POLL, claimed(&[3], &claim, tail))); // Constituency(name)
            // Ballot: the scores.
            let mut ballot = open.to_vec();
            ballot.extend_from_slice(&member);
            ballot.push(1); // revision
            cases.push((kind::BALLOT, claimed(&ballot, &claim, tail)));
            // CreateAssembly: the name.
            cases.push((kind::CREATE_ASSEMBLY, claimed(&[], &claim, tail)));
        }
    }
    let started = Instant::now();
    for (kind, bytes) in &cases {
        let one = Instant::now();
        let result = check(*kind, bytes);
        assert!(
            matches!(result, Err(BodyError::Decode { .. })),
            "kind {kind:#06x}: {bytes:02x?} gave {result:?}"
        );
        // Generous for a debug build on a loaded machine; a decoder that tried to honour the
        // claim would take far longer (or abort).
        assert!(one.elapsed() < Duration::from_secs(1), "slow decode");
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn lengths_one_past_each_limit_are_refused_as_limits() {
    let base = CreatePoll {
        assembly: AssemblyRef::Activism,
        question: "q".into(),
        options: vec!["a".into(), "b".into()],
        seats: 1,
        officers: vec![],
        stations: vec![],
        quorum: None,
        opens_at: None,
        closes_at: None,
    };
    let over: Vec<Body> = vec![
        Body::CreateAssembly(CreateAssembly {
            name: text(MAX_TEXT_BYTES + 1, 'x'),
            kind: AssemblyKind::Society,
        }),
        Body::CreatePoll(Box::new(CreatePoll {
            question: text(MAX_QUESTION_BYTES + 1, 'q'),
            ..base.clone()
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            options: (0..=MAX_POLL_OPTIONS).map(|i| i.to_string()).collect(),
            ..base.clone()
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            options: vec!["a".into(), text(MAX_TEXT_BYTES + 1, 'b')],
            ..base.clone()
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            officers: (0..=MAX_OFFICERS).map(|i| key(i as u8)).collect(),
            ..base.clone()
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            stations: (0..=MAX_OFFICERS).map(|i| key(i as u8)).collect(),
            ..base.clone()
        })),
        Body::CreatePoll(Box::new(CreatePoll {
            assembly: AssemblyRef::Constituency(text(MAX_TEXT_BYTES + 1, 'c')),
            ..base.clone()
        })),
        Body::Ballot(Ballot {
            open: OpId([1; 32]),
            member: key(2).to_bytes(),
            revision: 0,
            scores: vec![0; MAX_POLL_OPTIONS + 1],
        }),
    ];
    for body in over {
        let (kind, bytes) = encoding(&body);
        assert_eq!(check(kind, &bytes), Err(BodyError::Limit(kind)), "{body:?}");
    }
    // Multi-byte text at the limit counts bytes, not characters.
    let wide = Body::CreateAssembly(CreateAssembly {
        name: text(MAX_TEXT_BYTES / 2 + 1, 'é'),
        kind: AssemblyKind::Society,
    });
    let (kind, bytes) = encoding(&wide);
    assert_eq!(check(kind, &bytes), Err(BodyError::Limit(kind)));
}

/// A hub with an open poll: Fay founds (steward), Cy convenes, Ann and Ben are members; Cy's
/// members-only working group (Ann, Ben) has a poll, opened, with one ballot.
struct Hub {
    replica: Replica,
    ann: Person,
    poll: OpId,
}

fn hub_with_an_open_poll() -> Hub {
    let fay = person(1);
    let cy = person(2);
    let ann = person(3);
    let ben = person(4);
    let mut replica = founded(&fay);
    for p in [&cy, &ann, &ben] {
        join(&mut replica, &fay, p, Standing::Member);
    }
    replica
        .write(&fay.device, &grant_body(&cy, Role::Convener))
        .unwrap();
    let group = *replica
        .write_in(
            &cy.device,
            Lane::Members,
            &Body::CreateAssembly(CreateAssembly {
                name: "Transport".into(),
                kind: AssemblyKind::WorkingGroup,
            }),
            &[],
        )
        .unwrap()
        .last()
        .unwrap();
    for p in [&ann, &ben] {
        replica
            .write_in(
                &p.device,
                Lane::Members,
                &Body::Join(Join {
                    assembly: group,
                    joined: true,
                }),
                &[group],
            )
            .unwrap();
    }
    let poll = *replica
        .write_in(
            &cy.device,
            Lane::Members,
            &Body::CreatePoll(Box::new(CreatePoll {
                assembly: AssemblyRef::Created(group),
                question: "Which campaign first?".into(),
                options: vec!["Buses".into(), "Bikes".into(), "Trams".into()],
                seats: 1,
                officers: vec![fay.member.public()],
                stations: vec![],
                quorum: None,
                opens_at: None,
                closes_at: None,
            })),
            &[group],
        )
        .unwrap()
        .last()
        .unwrap();
    let (electorate, electorate_hash) = replica.electorate_now(&poll, Lane::Members).unwrap();
    let open = *replica
        .write_in(
            &cy.device,
            Lane::Members,
            &Body::OpenPoll(OpenPoll {
                poll,
                electorate,
                electorate_hash,
            }),
            &[poll],
        )
        .unwrap()
        .last()
        .unwrap();
    replica
        .write_in(
            &ben.device,
            Lane::Members,
            &Body::Ballot(Ballot {
                open,
                member: ben.member.public().to_bytes(),
                revision: 1,
                scores: vec![1, 2, 3],
            }),
            &[open],
        )
        .unwrap();
    Hub { replica, ann, poll }
}

/// What a refused op must leave as it was.
#[derive(Debug, PartialEq)]
struct View {
    len: usize,
    ballots: usize,
    polls: Vec<moot_state::poll::PollInfo>,
    assemblies: Vec<moot_state::poll::AssemblyInfo>,
    count: Option<moot_state::poll::PollCount>,
    heads: Vec<OpId>,
}

fn view(hub: &mut Hub) -> View {
    View {
        len: hub.replica.len(),
        ballots: hub.replica.ballot_count(),
        polls: hub.replica.polls(),
        assemblies: hub.replica.assemblies(),
        count: hub.replica.count_poll(&hub.poll).map(|c| c.unwrap()),
        heads: hub.replica.roll_heads(Lane::Members),
    }
}

/// Signs `bytes` as a body of `kind` by Ann, as her next members-lane op (a real member's
/// certified device, so nothing is refused before the body is decoded).
fn signed(hub: &Hub, kind: u16, bytes: Vec<u8>) -> moot_crypto::Authentic<moot_crypto::SignedOp> {
    let mut draft = hub
        .replica
        .draft(
            &hub.ann.device.public(),
            Lane::Members,
            &Body::Checkpoint(moot_state::body::Checkpoint {}),
            &[],
        )
        .unwrap();
    draft.kind = kind;
    draft.body = bytes;
    draft.sign(&hub.replica.hub(), &hub.ann.device).unwrap()
}

#[test]
fn signed_ops_with_malformed_bodies_are_refused_and_change_nothing() {
    let mut hub = hub_with_an_open_poll();
    let before = view(&mut hub);
    let mut rng = Rng::new(3);
    let samples: Vec<(u16, Vec<u8>)> = samples().iter().map(encoding).collect();
    let mut inputs: Vec<(u16, Vec<u8>)> = Vec::new();
    for kind in KINDS {
        for len in [0, 1, 5, 31, 32, 33, 64, 65, 200] {
            inputs.push((kind, rng.bytes(len)));
        }
    }
    for (kind, bytes) in &samples {
        inputs.push((*kind, bytes[..bytes.len() / 2].to_vec()));
        let mut longer = bytes.clone();
        longer.push(0);
        inputs.push((*kind, longer));
    }
    for claim in huge_claims() {
        inputs.push((kind::CREATE_POLL, claimed(&[1, 1, b'q'], &claim, &[0])));
        let mut ballot = hub.poll.0.to_vec();
        ballot.extend_from_slice(&hub.ann.member.public().to_bytes());
        ballot.push(1);
        inputs.push((kind::BALLOT, claimed(&ballot, &claim, &[0])));
    }
    // Over the limits (well-formed otherwise).
    let over = Body::Ballot(Ballot {
        open: hub.poll,
        member: hub.ann.member.public().to_bytes(),
        revision: 1,
        scores: vec![0; MAX_POLL_OPTIONS + 1],
    });
    inputs.push(encoding(&over));
    let mut refused = 0;
    for (kind, bytes) in inputs {
        let expected = Body::decode(kind, &bytes);
        let Err(error) = expected else {
            continue;
        };
        let op = signed(&hub, kind, bytes);
        match hub.replica.insert(op.bytes()).outcome {
            Outcome::Rejected(r) => {
                assert_eq!(r.op, Some(op.id()));
                assert_eq!(r.reason, Reason::MalformedBody(error));
            }
            other => panic!("kind {kind:#06x}: {other:?}"),
        }
        refused += 1;
        // A replay is a quiet duplicate (the refusal of a member's op is remembered).
        assert_eq!(
            hub.replica.insert(op.bytes()).outcome,
            Outcome::Duplicate(op.id())
        );
        assert_eq!(hub.replica.len(), before.len);
    }
    assert!(refused > 100, "only {refused} malformed bodies were tried");
    assert_eq!(view(&mut hub), before);
}

#[test]
fn signed_ops_with_mutated_bodies_get_a_typed_outcome_and_a_refusal_changes_nothing() {
    let mut hub = hub_with_an_open_poll();
    let mut before = view(&mut hub);
    let mut rng = Rng::new(4);
    // Mutations of bodies that name the real poll, open and member: the ones most likely to
    // decode and reach the checks at the causal position.
    let open = hub
        .replica
        .poll(&hub.poll)
        .and_then(|p| p.open)
        .expect("open");
    let ann = hub.ann.member.public();
    let bases: Vec<(u16, Vec<u8>)> = [
        Body::Ballot(Ballot {
            open,
            member: ann.to_bytes(),
            revision: 1,
            scores: vec![5, 0, 1],
        }),
        Body::ClosePoll(ClosePoll { open }),
        Body::CloseStation(CloseStation { open }),
        Body::OpenPoll(OpenPoll {
            poll: hub.poll,
            electorate: 2,
            electorate_hash: [0; 32],
        }),
        Body::Seat(Seat {
            assembly: hub.poll,
            member: ann,
            seated: true,
        }),
    ]
    .iter()
    .map(encoding)
    .collect();
    let (mut refused, mut accepted) = (0, 0);
    let mut tried = std::collections::BTreeSet::new();
    for round in 0..600 {
        let (kind, base) = &bases[round % bases.len()];
        let mut bytes = base.clone();
        let at = rng.below(bytes.len());
        match rng.below(3) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = rng.byte(),
            _ => bytes.truncate(at),
        }
        let op = signed(&hub, *kind, bytes);
        match hub.replica.insert(op.bytes()).outcome {
            Outcome::Rejected(r) => {
                assert!(
                    matches!(
                        r.reason,
                        Reason::MalformedBody(_) | Reason::Unauthorized(_) | Reason::NotHeld
                    ),
                    "{:?}",
                    r.reason
                );
                refused += 1;
                if round % 25 == 0 {
                    assert_eq!(view(&mut hub), before);
                } else {
                    assert_eq!(hub.replica.len(), before.len);
                }
            }
            // A mutation can make another valid op (a ballot with other scores): then it is
            // simply a new op, and the baseline moves.
            Outcome::Accepted(id) => {
                assert_eq!(id, op.id());
                accepted += 1;
                before = view(&mut hub);
            }
            // The same mutation drawn twice: its refusal is remembered.
            Outcome::Duplicate(id) if tried.contains(&id) => {}
            other => panic!("kind {kind:#06x}: {other:?}"),
        }
        tried.insert(op.id());
    }
    assert!(refused > 300, "{refused} refused, {accepted} accepted");
}
