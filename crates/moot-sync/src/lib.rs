//! Sans-IO sync engine for a hub's signed ops: peers exchange their chain heads per
//! (device, lane), each streams what the other lacks in causal order, new ops are pushed to
//! connected peers at once, and every op received is validated by the node's
//! [`moot_state::Replica`] exactly as a local one.
//!
//! No sockets, no clock, no randomness that decides anything (a peer's view finds its chains
//! through a table with a per-process hash seed, and lists them in the order first seen; a
//! frame's ops are stored on a scoped thread while the rest are validated, nothing more): the
//! node feeds frames and time
//! in ([`Engine::handle_frame`], [`Engine::handle_timeout`]) and takes frames and events out
//! ([`Engine::poll_transmit`], [`Engine::poll_event`], [`Engine::poll_timeout`]), in the
//! manner of quinn-proto. Storage stays the node's, behind [`OpStore`].
//!
//! - [`engine`]: the state machine, the reconciliation and its bounds.
//! - [`wire`]: versioned, bounded wire messages and their strict decoder (`docs/PROTOCOL.md`).
//! - [`store`]: what the engine needs from the op store, and [`MemoryStore`].

pub mod engine;
pub mod store;
mod view;
pub mod wire;

pub use engine::{
    CONFIRM_INTERVAL_MS, Config, Engine, EngineError, Event, Incoming, Lanes, Misbehaviour, PeerId,
    Role, Stats, SyncError, Transmit,
};
pub use store::{MemoryStore, OpStore, StoreError};
pub use wire::{Message, WIRE_VERSION, WireError};
