//! Deterministic sample histories, for benchmarks, examples and tools: a hub founded by one
//! member, `members` more admitted (each with a self-certified device), then `other_ops` ops of
//! a kind this version does not interpret (stand-ins for ballots and comments) written by the
//! members in turn. Keys come from fixed seeds, so every run builds the same ops.

use moot_crypto::{HubId, SecretKey};

use crate::body::{Admit, Certificate, CertifyDevice, Checkpoint, Found, SetName, hub_id};
use crate::{Body, Limits, Replica, Standing};
use moot_crypto::Lane;

/// Kind used for the filler ops.
pub const FILLER_KIND: u16 = 1000;
/// Body size of the filler ops, in bytes.
pub const FILLER_BODY_BYTES: usize = 64;

/// The sample's keys: `key(1, n)` is member `n`'s key (0 the founder), `key(2, n)` their
/// device's.
pub fn key(kind: u8, n: usize) -> SecretKey {
    let mut seed = [kind; 32];
    seed[..8].copy_from_slice(&(n as u64).to_le_bytes());
    SecretKey::from_seed(seed)
}

/// Builds the history; returns the hub and every op's bytes in the order written (causal).
/// Member ops name the roll heads and the previous filler op (as a ballot names its poll)
/// besides `prev`.
pub fn history(members: usize, other_ops: usize) -> (HubId, Vec<Vec<u8>>) {
    history_with(members, other_ops, true)
}

/// [`history`], choosing whether member ops carry a dependency besides `prev`.
pub fn history_with(
    members: usize,
    other_ops: usize,
    with_dependency: bool,
) -> (HubId, Vec<Vec<u8>>) {
    let founder = key(1, 0);
    let founder_device = key(2, 0);
    let nonce = [7u8; 16];
    let hub = hub_id(&founder.public(), &nonce);
    let limits = Limits {
        max_pending: 1,
        ..Limits::default()
    };
    let mut replica = Replica::new(hub, limits);
    let mut order = Vec::new();
    let mut record = |replica: &Replica, id| {
        if let Some(bytes) = replica.op_bytes(&id) {
            order.push(bytes.to_vec());
        }
    };
    let found = Body::Found(Box::new(Found {
        name: "Sample hub".into(),
        founder: founder.public(),
        nonce,
        protocol: crate::body::PROTOCOL,
        device_certificate: Certificate::issue(&founder, &hub, &founder_device.public()),
    }));
    if let Ok(id) = replica.write(&founder_device, &found) {
        record(&replica, id);
    }
    let name = Body::SetName(SetName {
        member: founder.public(),
        name: "Founder".into(),
    });
    if let Ok(id) = replica.write(&founder_device, &name) {
        record(&replica, id);
    }
    let mut devices = Vec::with_capacity(members);
    for n in 1..=members {
        let member = key(1, n);
        let device = key(2, n);
        let admit = Body::Admit(Admit {
            member: member.public(),
            standing: Standing::Member,
        });
        if let Ok(id) = replica.write(&founder_device, &admit) {
            record(&replica, id);
        }
        let name = Body::SetName(SetName {
            member: member.public(),
            name: format!("Member {n}"),
        });
        if let Ok(id) = replica.write(&founder_device, &name) {
            record(&replica, id);
        }
        let certify = Body::CertifyDevice(CertifyDevice {
            member: member.public(),
            device: device.public(),
            certificate: Certificate::issue(&member, &hub, &device.public()),
        });
        if let Ok(id) = replica.write(&device, &certify) {
            record(&replica, id);
        }
        devices.push(device);
    }
    let mut last_filler = None;
    for i in 0..other_ops {
        let Some(device) = devices.get(i % devices.len().max(1)) else {
            break;
        };
        // Unknown bodies have no encoding of their own: draft a checkpoint, then replace it.
        let refs: Vec<moot_crypto::OpId> = last_filler.into_iter().collect();
        let Ok(mut draft) = replica.draft(
            &device.public(),
            Lane::Members,
            &Body::Checkpoint(Checkpoint {}),
            if with_dependency { &refs } else { &[] },
        ) else {
            break;
        };
        draft.kind = FILLER_KIND;
        // Without dependencies an op follows only its own chain; the first op of a chain
        // still names the roll heads (it has no other past to be judged in).
        if !with_dependency && draft.prev.is_some() {
            draft.deps.clear();
        }
        draft.body = vec![(i % 251) as u8; FILLER_BODY_BYTES];
        if let Ok(op) = draft.sign(&hub, device) {
            let id = op.id();
            replica.insert_authentic(op);
            record(&replica, id);
            last_filler = Some(id);
        }
    }
    (hub, order)
}

/// A sample poll: a hub whose founder admits `voters` members (each with a self-certified
/// device), creates a STAR poll in the Activism Society (every member) and opens it; then one
/// ballot per voter, cast under the open. The setup ops and the ballots come apart, in causal
/// order, so a benchmark can store the setup and time the ballots alone.
pub struct PollSample {
    /// The hub.
    pub hub: HubId,
    /// Genesis, admissions, certifications, the poll and its open.
    pub setup: Vec<Vec<u8>>,
    /// One signed ballot per voter.
    pub ballots: Vec<Vec<u8>>,
    /// The poll's id.
    pub poll: moot_crypto::OpId,
}

/// Writes `body` as `device` in `lane` naming `refs` and appends the bytes of every op written
/// (checkpoints too) to `out` → the op's id.
fn record(
    replica: &mut Replica,
    out: &mut Vec<Vec<u8>>,
    device: &SecretKey,
    lane: Lane,
    body: &Body,
    refs: &[moot_crypto::OpId],
) -> Option<moot_crypto::OpId> {
    let ids = replica.write_in(device, lane, body, refs).ok()?;
    for id in &ids {
        out.push(replica.op_bytes(id)?.to_vec());
    }
    ids.last().copied()
}

/// The start the poll, document and workload samples share: member 0 founds a hub named `name`
/// and admits `members` more, each certifying its own device (genesis, then admission and
/// certificate member after member).
struct Founded {
    hub: HubId,
    replica: Replica,
    founder_device: SecretKey,
    /// (member key, device key) of members 1 to `members`.
    members: Vec<(SecretKey, SecretKey)>,
    ops: Vec<Vec<u8>>,
}

fn founded(name: &str, nonce: [u8; 16], members: usize) -> Founded {
    let founder = key(1, 0);
    let founder_device = key(2, 0);
    let hub = hub_id(&founder.public(), &nonce);
    let mut replica = Replica::new(hub, Limits::default());
    let mut ops = Vec::with_capacity(2 * members + 1);
    let found = Body::Found(Box::new(Found {
        name: name.into(),
        founder: founder.public(),
        nonce,
        protocol: crate::body::PROTOCOL,
        device_certificate: Certificate::issue(&founder, &hub, &founder_device.public()),
    }));
    record(
        &mut replica,
        &mut ops,
        &founder_device,
        Lane::Public,
        &found,
        &[],
    );
    let mut admitted = Vec::with_capacity(members);
    for n in 1..=members {
        let (member, device) = (key(1, n), key(2, n));
        let admit = Body::Admit(Admit {
            member: member.public(),
            standing: Standing::Member,
        });
        record(
            &mut replica,
            &mut ops,
            &founder_device,
            Lane::Public,
            &admit,
            &[],
        );
        let certify = Body::CertifyDevice(CertifyDevice {
            member: member.public(),
            device: device.public(),
            certificate: Certificate::issue(&member, &hub, &device.public()),
        });
        record(&mut replica, &mut ops, &device, Lane::Public, &certify, &[]);
        admitted.push((member, device));
    }
    Founded {
        hub,
        replica,
        founder_device,
        members: admitted,
        ops,
    }
}

/// Builds a [`PollSample`] with `voters` voters and 5 options. Deterministic.
pub fn poll_history(voters: usize) -> PollSample {
    use crate::body::{AssemblyRef, Ballot, CreatePoll, OpenPoll};
    let Founded {
        hub,
        mut replica,
        founder_device,
        members: devices,
        ops: mut setup,
    } = founded("Sample poll hub", [9u8; 16], voters);
    let mut write =
        |replica: &mut Replica, device: &SecretKey, body: &Body, refs: &[moot_crypto::OpId]| {
            let lane = body.lane().unwrap_or(Lane::Members);
            record(replica, &mut setup, device, lane, body, refs)
        };
    let options: Vec<String> = ["Buses", "Bikes", "Trams", "Trains", "Ferries"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let create = Body::CreatePoll(Box::new(CreatePoll {
        assembly: AssemblyRef::Activism,
        question: "Which campaign first?".into(),
        options: options.clone(),
        seats: 1,
        officers: Vec::new(),
        stations: Vec::new(),
        quorum: None,
        opens_at: None,
        closes_at: None,
    }));
    let poll =
        write(&mut replica, &founder_device, &create, &[]).unwrap_or(moot_crypto::OpId([0; 32]));
    let (electorate, electorate_hash) = replica
        .electorate_now(&poll, Lane::Members)
        .unwrap_or((0, [0; 32]));
    let open = Body::OpenPoll(OpenPoll {
        poll,
        electorate,
        electorate_hash,
    });
    let open =
        write(&mut replica, &founder_device, &open, &[poll]).unwrap_or(moot_crypto::OpId([0; 32]));
    let mut ballots = Vec::with_capacity(voters);
    for (i, (member, device)) in devices.iter().enumerate() {
        let scores: Vec<u8> = (0..options.len())
            .map(|o| ((i * 7 + o * 3 + i / 5) % 6) as u8)
            .collect();
        let body = Body::Ballot(Ballot {
            open,
            member: member.public().to_bytes(),
            revision: 1,
            scores,
        });
        // Drafted, not inserted: each voter's first members-lane op, naming the open.
        let Ok(draft) = replica.draft(&device.public(), Lane::Members, &body, &[open]) else {
            continue;
        };
        if let Ok(op) = draft.sign(&hub, device) {
            ballots.push(op.bytes().to_vec());
        }
    }
    PollSample {
        hub,
        setup,
        ballots,
        poll,
    }
}

/// A sample deliberation: a hub, its setup ops (genesis, admissions, certifications), then
/// proposals and their edits as signed ops, and the same automerge changes unsigned.
pub struct DocSample {
    /// The hub.
    pub hub: HubId,
    /// Genesis, admissions and device certifications, in causal order.
    pub setup: Vec<Vec<u8>>,
    /// The proposals' create ops and their document changes, in causal order.
    pub ops: Vec<Vec<u8>>,
    /// Each proposal's automerge changes (the creator change first), unsigned.
    pub changes: Vec<Vec<Vec<u8>>>,
    /// The proposals' ids.
    pub proposals: Vec<moot_crypto::OpId>,
}

/// Builds a [`DocSample`]: `members` members, `proposals` proposals in the Policy Society, each
/// edited `edits` times by the members in turn (a few words inserted at a spread of places).
/// Deterministic.
pub fn doc_history(members: usize, proposals: usize, edits: usize) -> DocSample {
    use crate::body::{AssemblyRef, CreateProposal, DocChange};
    let Founded {
        hub,
        mut replica,
        founder_device,
        members: admitted,
        ops: setup,
    } = founded("Sample deliberation hub", [11u8; 16], members);
    let write = |replica: &mut Replica,
                 out: &mut Vec<Vec<u8>>,
                 device: &SecretKey,
                 body: &Body,
                 refs: &[moot_crypto::OpId]| {
        let lane = body.lane().unwrap_or(Lane::Members);
        record(replica, out, device, lane, body, refs)
    };
    let mut devices = vec![founder_device.clone()];
    devices.extend(admitted.into_iter().map(|(_, device)| device));
    let words = [
        "the ",
        "hall ",
        "opens ",
        "on ",
        "Sundays ",
        "for ",
        "everyone ",
        "who ",
        "needs ",
        "it; ",
    ];
    let mut ops = Vec::new();
    let mut all_changes = Vec::new();
    let mut ids = Vec::new();
    for p in 0..proposals {
        let author = &devices[p % devices.len()];
        let Ok(creator) = moot_doc::creator_change(&author.public().to_bytes(), "A proposal. ")
        else {
            continue;
        };
        let Ok(mut doc) = moot_doc::Document::from_creator(&creator) else {
            continue;
        };
        let body = Body::CreateProposal(CreateProposal {
            assembly: AssemblyRef::Policy,
            title: format!("Proposal {p}"),
            change: creator.clone(),
        });
        let Some(proposal) = write(&mut replica, &mut ops, author, &body, &[]) else {
            continue;
        };
        doc.apply(&[(proposal.0, &creator)]);
        let mut changes = vec![creator];
        // Each device's last change op to this document.
        let mut last: std::collections::HashMap<[u8; 32], moot_crypto::OpId> =
            std::collections::HashMap::new();
        last.insert(author.public().to_bytes(), proposal);
        let mut previous = proposal;
        for e in 0..edits {
            let device = &devices[(p + e + 1) % devices.len()];
            let actor = device.public().to_bytes();
            let len = doc.len_utf16();
            // Word boundaries are ASCII here, so any position is a character boundary.
            let at = (e * 7919 + p * 104_729) % (len + 1);
            let Ok(change) = doc.edit(&actor, at, 0, words[(e + p) % words.len()]) else {
                continue;
            };
            let mut refs = vec![proposal, previous];
            if let Some(own) = last.get(&actor) {
                refs.push(*own);
            }
            refs.sort();
            refs.dedup();
            let body = Body::DocChange(DocChange {
                doc: proposal,
                change: change.clone(),
            });
            let Some(id) = write(&mut replica, &mut ops, device, &body, &refs) else {
                continue;
            };
            doc.apply(&[(id.0, &change)]);
            last.insert(actor, id);
            previous = id;
            changes.push(change);
        }
        all_changes.push(changes);
        ids.push(proposal);
    }
    DocSample {
        hub,
        setup,
        ops,
        changes: all_changes,
        proposals: ids,
    }
}

/// Workload W (the shape of `../shared/bench/automerge-repo`'s `W-v1`), as signed ops: a hub
/// with `voters` members (each certifying a device), 100 proposals in the Policy Society each
/// typed as 1 creation + `edits` small edits (86% insert 1-4 words at the cursor, 12% of them
/// ending a sentence; 14% backspace 1-8 characters; 3% move the cursor first), one STAR poll
/// with a ballot of 5 scores from every voter, and `offers` offers (title 3-7 words, a ~200
/// character description, 1 of 10 categories, 1 of 16 areas; a sixth withdrawn, a sixth
/// expired). Deterministic from `seed`.
pub struct Workload {
    /// The hub.
    pub hub: HubId,
    /// Every op, in causal order.
    pub ops: Vec<Vec<u8>>,
    /// The proposals.
    pub proposals: Vec<moot_crypto::OpId>,
    /// The poll.
    pub poll: moot_crypto::OpId,
}

/// A splitmix64 generator: workloads must not depend on a crate's RNG algorithm.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from.get(self.below(from.len())).copied().unwrap_or("")
    }
}

const W_WORDS: [&str; 64] = [
    "the",
    "of",
    "and",
    "to",
    "in",
    "is",
    "it",
    "you",
    "that",
    "was",
    "for",
    "on",
    "are",
    "with",
    "as",
    "they",
    "be",
    "at",
    "one",
    "have",
    "this",
    "from",
    "or",
    "by",
    "hot",
    "word",
    "but",
    "what",
    "some",
    "we",
    "can",
    "out",
    "other",
    "were",
    "all",
    "there",
    "when",
    "up",
    "use",
    "your",
    "how",
    "said",
    "each",
    "which",
    "do",
    "their",
    "time",
    "if",
    "will",
    "way",
    "meeting",
    "garden",
    "neighbour",
    "kitchen",
    "repair",
    "bicycle",
    "market",
    "library",
    "school",
    "hall",
    "branch",
    "vote",
    "bus",
    "rent",
];
const W_CATEGORIES: [&str; 10] = [
    "food",
    "housing",
    "transport",
    "childcare",
    "tools",
    "medical",
    "clothing",
    "skills",
    "pets",
    "other",
];
const W_AREAS: [&str; 16] = [
    "north",
    "south",
    "east",
    "west",
    "centre",
    "riverside",
    "old-town",
    "harbour",
    "hillside",
    "station",
    "university",
    "market-square",
    "park-lane",
    "mill-end",
    "new-estate",
    "green-belt",
];

fn w_words(rng: &mut Mix, n: usize) -> String {
    (0..n)
        .map(|_| rng.pick(&W_WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Builds [`Workload`] W: `workload(10_000, 100, 1_000, 1_000, seed)` is the full size.
pub fn workload(
    voters: usize,
    proposals: usize,
    edits: usize,
    offers: usize,
    seed: u64,
) -> Workload {
    use crate::body::{
        AidChange, AidDetails, AidItem, AidKind, AidUpdate, AssemblyRef, Ballot, CreatePoll,
        CreateProposal, DocChange, OpenPoll,
    };
    let mut rng = Mix(seed);
    let Founded {
        hub,
        mut replica,
        founder_device,
        members: devices,
        mut ops,
    } = founded("Workload W", [13u8; 16], voters);
    let write = record;
    let authors: Vec<&SecretKey> = devices.iter().take(20).map(|(_, d)| d).collect();
    let mut ids = Vec::new();
    for p in 0..proposals {
        let Some(author) = authors.get(p % authors.len().max(1)).copied() else {
            break;
        };
        let actor = author.public().to_bytes();
        let Ok(creator) = moot_doc::creator_change(&actor, "") else {
            continue;
        };
        let Ok(mut doc) = moot_doc::Document::from_creator(&creator) else {
            continue;
        };
        let body = Body::CreateProposal(CreateProposal {
            assembly: AssemblyRef::Policy,
            title: w_words(&mut rng, 4),
            change: creator.clone(),
        });
        let Some(proposal) = write(&mut replica, &mut ops, author, Lane::Members, &body, &[])
        else {
            continue;
        };
        doc.apply(&[(proposal.0, &creator)]);
        let (mut previous, mut cursor) = (proposal, 0usize);
        for _ in 0..edits {
            let len = doc.len_utf16();
            let roll = rng.below(100);
            let change = if roll < 14 && cursor > 0 {
                let n = (1 + rng.below(8)).min(cursor);
                cursor -= n;
                doc.edit(&actor, cursor, n, "")
            } else {
                if rng.below(100) < 3 {
                    cursor = rng.below(len + 1);
                }
                let count = 1 + rng.below(4);
                let mut text = w_words(&mut rng, count);
                text.push(if rng.below(100) < 12 { '.' } else { ' ' });
                if text.ends_with('.') {
                    text.push(' ');
                }
                let at = cursor.min(len);
                cursor = at + text.len();
                doc.edit(&actor, at, 0, &text)
            };
            let Ok(change) = change else {
                continue;
            };
            let refs = [proposal, previous];
            let body = Body::DocChange(DocChange {
                doc: proposal,
                change: change.clone(),
            });
            let Some(id) = write(&mut replica, &mut ops, author, Lane::Members, &body, &refs)
            else {
                continue;
            };
            doc.apply(&[(id.0, &change)]);
            previous = id;
        }
        ids.push(proposal);
    }
    let options: Vec<String> = ["Buses", "Bikes", "Trams", "Trains", "Ferries"]
        .iter()
        .map(|s| (*s).to_string())
        .collect();
    let create = Body::CreatePoll(Box::new(CreatePoll {
        assembly: AssemblyRef::Activism,
        question: "Which campaign first?".into(),
        options,
        seats: 1,
        officers: Vec::new(),
        stations: Vec::new(),
        quorum: None,
        opens_at: None,
        closes_at: None,
    }));
    let poll = write(
        &mut replica,
        &mut ops,
        &founder_device,
        Lane::Members,
        &create,
        &[],
    )
    .unwrap_or(moot_crypto::OpId([0; 32]));
    let (electorate, electorate_hash) = replica
        .electorate_now(&poll, Lane::Members)
        .unwrap_or((0, [0; 32]));
    let open = Body::OpenPoll(OpenPoll {
        poll,
        electorate,
        electorate_hash,
    });
    let open = write(
        &mut replica,
        &mut ops,
        &founder_device,
        Lane::Members,
        &open,
        &[poll],
    )
    .unwrap_or(moot_crypto::OpId([0; 32]));
    for (member, device) in &devices {
        let scores: Vec<u8> = (0..5).map(|_| rng.below(6) as u8).collect();
        let body = Body::Ballot(Ballot {
            open,
            member: member.public().to_bytes(),
            revision: 1,
            scores,
        });
        write(
            &mut replica,
            &mut ops,
            device,
            Lane::Members,
            &body,
            &[open],
        );
    }
    for o in 0..offers {
        let Some((_, author)) = devices.get(o % devices.len().max(1)) else {
            break;
        };
        let mut description = String::new();
        while description.len() < 190 {
            description.push_str(&w_words(&mut rng, 1));
            description.push(' ');
        }
        let title_words = 3 + rng.below(5);
        let details = AidDetails {
            title: w_words(&mut rng, title_words),
            description: description.trim_end().to_string(),
            category: rng.pick(&W_CATEGORIES).to_string(),
            area: Some(rng.pick(&W_AREAS).to_string()),
            from: None,
            until: None,
            quantity: None,
        };
        let body = Body::AidItem(Box::new(AidItem {
            kind: AidKind::Offer,
            details,
            forwarded: None,
        }));
        let Some(item) = write(&mut replica, &mut ops, author, Lane::Members, &body, &[]) else {
            continue;
        };
        let change = match rng.below(6) {
            4 => Some(AidChange::Withdraw),
            5 => Some(AidChange::Expire),
            _ => None,
        };
        if let Some(change) = change {
            let body = Body::AidUpdate(Box::new(AidUpdate { item, change }));
            write(
                &mut replica,
                &mut ops,
                author,
                Lane::Members,
                &body,
                &[item],
            );
        }
    }
    Workload {
        hub,
        ops,
        proposals: ids,
        poll,
    }
}
