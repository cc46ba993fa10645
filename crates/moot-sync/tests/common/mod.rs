//! Test fixtures: a node (replica + in-memory store + engine) and a lossless pump between two.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moot_crypto::{HubId, OpId};
use moot_state::{Limits, Replica, Retain};
use moot_sync::{Config, Engine, Event, Lanes, MemoryStore, OpStore, PeerId, Role};

pub struct Node {
    pub replica: Replica,
    pub store: MemoryStore,
    pub engine: Engine,
    pub events: Vec<(PeerId, Event)>,
}

impl Node {
    pub fn new(hub: HubId, config: Config) -> Node {
        Node::with_retain(hub, config, Retain::Everything)
    }

    pub fn with_retain(hub: HubId, config: Config, retain: Retain) -> Node {
        Node {
            replica: Replica::new(
                hub,
                Limits {
                    retain,
                    ..Limits::default()
                },
            ),
            store: MemoryStore::new(),
            engine: Engine::new(config),
            events: Vec::new(),
        }
    }

    /// Inserts ops as local ones (source 0) and stores what is kept.
    pub fn load(&mut self, ops: &[Vec<u8>]) {
        for insertion in self.replica.insert_batch(ops) {
            let kept: Vec<_> = insertion
                .kept
                .iter()
                .map(|(op, v)| (op.get(), *v))
                .collect();
            self.store.put_kept(&kept).unwrap();
        }
    }

    pub fn ids(&self) -> std::collections::BTreeSet<OpId> {
        self.store.ids()
    }

    pub fn drain_events(&mut self) {
        while let Some(event) = self.engine.poll_event() {
            let peer = match &event {
                Event::Misbehaved { peer, .. } | Event::Stored { peer, .. } => *peer,
                _ => PeerId(0),
            };
            self.events.push((peer, event));
        }
    }

    pub fn misbehaved(&self) -> Vec<&Event> {
        self.events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Misbehaved { .. }))
            .map(|(_, e)| e)
            .collect()
    }

    /// What the peers were reported for, in order (events drained first).
    pub fn misbehaviours(&mut self) -> Vec<moot_sync::Misbehaviour> {
        self.drain_events();
        self.events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Misbehaved { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Connects `a` (as peer 1 of `b`) and `b` (as peer 2 of `a`); `b` dials.
pub fn connect(a: &mut Node, b: &mut Node, a_gives_b: Lanes, b_gives_a: Lanes) {
    a.engine
        .connect(0, PeerId(2), Role::Listener, a_gives_b)
        .unwrap();
    b.engine
        .connect(0, PeerId(1), Role::Dialer, b_gives_a)
        .unwrap();
}

/// Moves frames both ways until neither side has anything to send. Returns the frames moved.
pub fn pump(a: &mut Node, b: &mut Node, now_ms: u64) -> usize {
    let mut moved = 0;
    loop {
        let mut any = false;
        while let Some(t) = a
            .engine
            .poll_transmit(now_ms, &a.replica, &a.store)
            .unwrap()
        {
            b.engine
                .handle_frame(now_ms, PeerId(1), &t.frame, &mut b.replica, &mut b.store)
                .unwrap();
            any = true;
            moved += 1;
        }
        while let Some(t) = b
            .engine
            .poll_transmit(now_ms, &b.replica, &b.store)
            .unwrap()
        {
            a.engine
                .handle_frame(now_ms, PeerId(2), &t.frame, &mut a.replica, &mut a.store)
                .unwrap();
            any = true;
            moved += 1;
        }
        a.drain_events();
        b.drain_events();
        if !any {
            return moved;
        }
    }
}

/// splitmix64: a tiny seeded generator, so a failure replays from its seed.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
