//! The node: one data directory holding the key file (`keys`: the member keys held on this
//! machine), the redb op store (`moot.redb`: hubs, ops, views, the default hub) and a lock file.
//! This is the API the CLI (and later the web UI and the sync loop) call; it wires `moot-state`
//! (pure validation) to `moot-store` (disk).
//!
//! Keys: `init` creates the node's own member key and its device key. `new_member_key` adds
//! another member key held on this node (members voting in turn on the branch laptop); each
//! gets its own device key here, sealed under that member's passphrase when one is given, so
//! only its holder can act as that member. Keys live apart from the op store (see
//! [`keyfile`]), so a damaged op store never costs a key.
//!
//! Safety of the directory: it is 0700 and its files 0600; one [`Node`] at a time holds it (the
//! lock is waited for, within a bound); each command's change is one atomic step (`init`: one
//! rename of the key file; `hub create`: one store transaction); text is normalised and its
//! limits checked before anything is written.

pub mod aid;
pub mod bundle;
pub mod deliberation;
pub mod dir;
pub mod keyfile;
pub mod memory;
pub mod merge;
pub mod polls;
pub mod serve;
pub mod sync;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::OnceLock as OnceCell;
use std::time::Duration;

use moot_crypto::keystore::{self, KeystoreError};
use moot_crypto::{Authentic, HubId, OpId, PublicKey, SecretKey, SignedOp};
use moot_state::body::{
    Admit, Certificate, CertifyDevice, Found, MAX_TEXT_BYTES, PROTOCOL, Remove, RevokeRole,
    RoleChange, SetConstituency, SetName, hub_id,
};
use moot_state::{
    Body, Lane, Limits, Reason, Replica, Retain, Role, Roll, Standing, Status, Verdict,
};
use moot_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

use keyfile::{KEYS_FILE, KeyEntry, KeyFile};

/// The store file inside the data directory.
pub const STORE_FILE: &str = "moot.redb";
pub(crate) const DEFAULT_HUB: &str = "default_hub";
/// How long a command waits for another one using the same data directory.
pub const LOCK_WAIT: Duration = Duration::from_secs(30);

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NodeError {
    /// The data directory could not be created.
    #[error("data directory {path}")]
    DataDir {
        /// The directory.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// A file in the data directory is readable by others and its mode could not be changed.
    #[error(
        "{} is readable by other users and its mode cannot be changed to owner-only (is it \
         yours?); fix its owner or mode, or use another --data directory", path.display()
    )]
    NotPrivate {
        /// The file or directory.
        path: PathBuf,
        /// Why the change failed.
        source: std::io::Error,
    },
    /// Another command kept the data directory for the whole wait.
    #[error(
        "another moot command has been using {} for {} s; try again when it has finished",
        dir.display(), waited.as_secs()
    )]
    Busy {
        /// The data directory.
        dir: PathBuf,
        /// How long this command waited.
        waited: Duration,
    },
    /// The op store is damaged; nothing was changed.
    #[error(
        "the store file {} is damaged ({detail}); nothing was changed. Move it aside \
         (`mv {} {}.damaged`) and re-sync your hubs from a peer. Your keys, in {}, are safe.",
        path.display(), path.display(), path.display(), keys.display()
    )]
    StoreDamaged {
        /// The store file.
        path: PathBuf,
        /// What was found.
        detail: String,
        /// The key file, which is not affected.
        keys: PathBuf,
    },
    /// The op store file is gone where this node had one (moot-store's `StoreError::Missing`):
    /// nothing was created.
    #[error(transparent)]
    StoreMissing(StoreError),
    /// The key file is damaged.
    #[error(
        "the key file {} is damaged ({detail}); restore it from a backup (the op store is not \
         affected)", path.display()
    )]
    KeysDamaged {
        /// The key file.
        path: PathBuf,
        /// What was found.
        detail: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(StoreError),
    /// Text from the user is empty or too long (bad input).
    #[error("the {what} {reason}")]
    BadText {
        /// Which text.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An update that changes nothing (bad input).
    #[error("nothing to change: give --name, --role or --constituency")]
    NothingToUpdate,
    /// The change would leave the hub without a steward.
    #[error(
        "refused: {0} is the hub's last steward, and without a steward nobody could change the \
         roll again; make another member a steward first (`moot member update MEMBER_ID --role \
         steward`)"
    )]
    LastSteward(String),
    /// `member add` for someone already on the roll.
    #[error(
        "refused: {member} is already on the roll (as {name:?}); to change their name, role or \
         constituency use `moot member update {member}`"
    )]
    AlreadyOnRoll {
        /// The member id.
        member: String,
        /// Their name on the roll.
        name: String,
    },
    /// `member update` or a removal for someone not on the roll (or removed).
    #[error("refused: {0} is not on the roll (or was removed)")]
    NotOnRoll(String),
    /// `key protect` on a key that already has a passphrase.
    #[error("member key {0} is already protected by a passphrase")]
    AlreadyProtected(String),
    /// `init` was not run yet.
    #[error("this node has no identity yet: run `moot init --name NAME`")]
    NotInitialised,
    /// No node at this data directory (it, or its key file, does not exist): only `init`
    /// makes one, so a mistyped path is reported instead of silently becoming a new node.
    #[error(
        "no moot node at {}: run `moot init --name NAME` first (or check --data / MOOT_DATA)",
        dir.display()
    )]
    NoNode {
        /// The data directory.
        dir: PathBuf,
    },
    /// Something that should be a file (the key file) is not a regular file.
    #[error(
        "{} is {what}, not a moot key file; move it aside, or check --data / MOOT_DATA",
        path.display()
    )]
    NotAFile {
        /// The path.
        path: PathBuf,
        /// What it is instead ("a directory", "a device or other special file").
        what: &'static str,
    },
    /// `init` was run already.
    #[error("this node already has an identity ({0})")]
    AlreadyInitialised(String),
    /// The member key is not held on this node.
    #[error("member key {0} is not held on this node (see `moot keys`)")]
    UnknownKey(String),
    /// The keystore refused (passphrase needed or wrong).
    #[error("member key {member}")]
    Keystore {
        /// The member id.
        member: String,
        /// Why.
        source: KeystoreError,
    },
    /// No hub given and no default hub.
    #[error(
        "no hub yet: found one with `moot hub create NAME`, or join one with `moot hub join \
         TICKET` (a ticket from a node that serves it)"
    )]
    NoHub,
    /// Hubs, but none is the default and none was given.
    #[error(
        "no default hub: pick one with `--hub HUB_ID` or `moot hub use HUB_ID` (see `moot hubs`)"
    )]
    NoDefaultHub,
    /// The hub is not one this node belongs to.
    #[error("hub {0} is not known on this node")]
    UnknownHub(HubId),
    /// The op was refused by validation.
    #[error("refused: {0}")]
    Refused(Reason),
    /// The OS random generator failed.
    #[error("no randomness from the OS: {0}")]
    Random(String),
    /// The directory holds other files and none of moot's: it is not made a data directory.
    #[error(
        "{} is not empty and holds no moot files: choose a new or empty directory for --data",
        .0.display()
    )]
    ForeignDir(PathBuf),
    /// An op in the store is refused by this version's rules: loading the hub would silently
    /// change its state, so it does not load.
    #[error(
        "hub {hub}: stored op {op} is not accepted by this version of moot ({outcome}); \
         the store was written by an incompatible version or altered"
    )]
    StoredOpRefused {
        /// The hub.
        hub: HubId,
        /// The op.
        op: OpId,
        /// What the replica said.
        outcome: String,
    },
    /// A stored record does not decode.
    #[error("stored record {0} is corrupt")]
    Corrupt(String),
    /// No such poll in the hub (or it does not count).
    #[error("no poll {0} in this hub (see `moot polls`)")]
    NoSuchPoll(String),
    /// No such assembly in the hub.
    #[error("no assembly {0} in this hub (see `moot assemblies`)")]
    NoSuchAssembly(String),
    /// A bundle file was refused (damaged, altered, cut off, not a bundle, or an op in it is
    /// refused): nothing of it was imported.
    #[error("bundle refused: {0}")]
    BadBundle(String),
    /// A file could not be read or written.
    #[error("{}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// The IO error.
        source: std::io::Error,
    },
    /// This node's device key signed ops this node did not write: the data directory was
    /// copied or restored from a backup. Writing on would make the device equivocate.
    #[error(
        "the device key {device} of member {member} signed ops this node did not write: this \
         data directory was probably copied, or restored from a backup. To avoid signing \
         conflicting ops, this device writes no more. Make a new device key for the member \
         with `moot key new-device` (with `--as {member}` if it is not the node's own key), \
         on this copy or the other, so that the two copies no longer share a device key; the \
         copy with the new key may then revoke the old one (`moot member revoke-device \
         {device}`)"
    )]
    DeviceUsedElsewhere {
        /// The member.
        member: String,
        /// The device.
        device: String,
    },
    /// Syncing with a peer failed (its store, or the peer misbehaved).
    #[error("sync: {0}")]
    Sync(String),
    /// An address could not be listened on (its port taken, or not this machine's).
    #[error("listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        reason: String,
    },
    /// Ops of a bundle wait for dependencies that neither the bundle nor this node holds.
    #[error(
        "{0} op(s) of the bundle depend on ops neither it nor this node holds: import the \
         bundle they come after first (nothing was imported)"
    )]
    Incomplete(usize),
    /// No such proposal in the hub.
    #[error("no proposal {0} in this hub (see `moot proposals`)")]
    NoSuchProposal(String),
    /// No such comment on the proposal.
    #[error("no comment {0} on this proposal (see `moot proposal show`)")]
    NoSuchComment(String),
    /// No such amendment in the hub.
    #[error("no amendment {0} in this hub (see `moot proposal show`)")]
    NoSuchAmendment(String),
    /// No such offer or request in the hub.
    #[error("no offer or request {0} in this hub (see `moot aid list`)")]
    NoSuchItem(String),
    /// No such pledge.
    #[error("no pledge {0} (see `moot aid show ITEM`)")]
    NoSuchPledge(String),
    /// Consensus cannot be declared while an objection or block stands.
    #[error(
        "proposal {0} has an objection or block standing: consensus cannot be declared until \
         it is withdrawn (the member takes another stance), or send it to a vote"
    )]
    ObjectionStands(String),
    /// A change to an aid item or pledge that its status rules out (it would change nothing).
    #[error("refused: {what} is {status} already, so it cannot be {change}")]
    AidClosed {
        /// The item or pledge, as the user would name it.
        what: String,
        /// Its status now.
        status: &'static str,
        /// The change asked for.
        change: &'static str,
    },
    /// An edit counted in a version of the text (its heads: `proposal edit --base`) this node
    /// does not hold, e.g. one seen on another node.
    #[error(
        "the edit is counted in a version of the text this node does not have (--base): show \
         the proposal again here and edit from its heads"
    )]
    UnknownBase,
    /// No device with this key is certified in the hub.
    #[error("no device {0} is certified in this hub")]
    UnknownDevice(String),
    /// A device revoked already.
    #[error("refused: device {0} is revoked already")]
    DeviceRevoked(String),
    /// The device a command would revoke is the one it signs with.
    #[error(
        "refused: device {0} is the one this command signs with; make a new device key first \
         (`moot key new-device`), then revoke this one with it"
    )]
    RevokingOwnDevice(String),
    /// A gift passed on must have been fulfilled first.
    #[error("refused: {0} is not fulfilled yet, so it cannot be passed on")]
    NotFulfilled(String),
    /// Automatic societies follow the roll: nobody joins or leaves them.
    #[error(
        "{0} is an automatic society: every member belongs to it (constituency societies follow \
         the roll's constituencies)"
    )]
    Automatic(String),
    /// Results of a poll that is not open yet.
    #[error("poll {0} is not open yet: a convener opens it with `moot poll open {0}`")]
    PollNotOpenYet(String),
    /// A constituency society no member is in: nobody could ever vote in its poll (a
    /// constituency is matched exactly, so a different case or spelling is another one).
    #[error(
        "no constituency {name:?} on the roll{}; a steward sets a member's with `moot member \
         update MEMBER_ID --constituency NAME` (see `moot assemblies`)",
        constituency_hint(name, known)
    )]
    NoSuchConstituency {
        /// The name given.
        name: String,
        /// The constituencies on the roll.
        known: Vec<String>,
    },
    /// A poll officer, a committee seat or a convener named who is not an active member.
    #[error("refused: {member} is {standing}: {role} must be members (see `moot members`)")]
    NotAMember {
        /// The member id named.
        member: String,
        /// `a guest`, `removed from the roll` or `not on the roll`.
        standing: &'static str,
        /// What they were named as: `returning officers`, `station officers`…
        role: &'static str,
    },
    /// A ballot by someone not in the poll's electorate.
    #[error(
        "refused: {0} is not in the poll's electorate, which the open fixed: the assembly's \
         members when the poll opened (joining it or being seated since does not count; see \
         `moot polls`)"
    )]
    NotInElectorate(String),
    /// Opening a poll whose electorate would be empty: nobody could ever vote in it.
    #[error(
        "refused: nobody is in {0} now, so nobody could vote in this poll (the open fixes \
         the electorate): members join a working group or society with `moot assembly join`, a \
         committee's convener seats them with `moot assembly seat`; then open the poll"
    )]
    EmptyElectorate(String),
}

/// `: did you mean "North Ward"?` or the list of constituencies on the roll.
fn constituency_hint(name: &str, known: &[String]) -> String {
    let folded = moot_text::fold(name);
    if let Some(near) = known.iter().find(|k| moot_text::fold(k) == folded) {
        return format!(" (did you mean constituency:{near}?)");
    }
    if known.is_empty() {
        " (no member has a constituency yet)".into()
    } else {
        format!(
            " (constituencies: {})",
            known
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

impl From<StoreError> for NodeError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Damaged { path, detail } => NodeError::StoreDamaged {
                keys: path.with_file_name(KEYS_FILE),
                path,
                detail,
            },
            missing @ StoreError::Missing { .. } => NodeError::StoreMissing(missing),
            other => NodeError::Store(other),
        }
    }
}

/// `text` normalised (NFC, trimmed) and checked: not blank (empty, or only invisible
/// characters such as zero-width spaces: [`moot_text::is_blank`]), at most
/// [`MAX_TEXT_BYTES`] bytes (the limit of every text field of a signed op). `what` names it in
/// the error.
pub fn clean_text(what: &'static str, text: &str) -> Result<String, NodeError> {
    let text = moot_text::normalize(text);
    if text.is_empty() {
        return Err(NodeError::BadText {
            what,
            reason: "is empty".into(),
        });
    }
    if moot_text::is_blank(&text) {
        return Err(NodeError::BadText {
            what,
            reason: "has nothing visible (only spaces or invisible characters)".into(),
        });
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(NodeError::BadText {
            what,
            reason: format!(
                "is {} bytes long; the limit is {MAX_TEXT_BYTES} bytes",
                text.len()
            ),
        });
    }
    Ok(text)
}

/// [`clean_text`] for an optional field: empty after trimming means "none".
pub fn clean_optional(what: &'static str, text: &str) -> Result<Option<String>, NodeError> {
    if moot_text::normalize(text).is_empty() {
        return Ok(None);
    }
    clean_text(what, text).map(Some)
}

/// A hub id from its 64 hex digits.
pub fn parse_hub_id(text: &str) -> Option<HubId> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).ok()?;
    Some(HubId(bytes))
}

/// A hub this node belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubInfo {
    /// The hub id.
    pub hub_id: String,
    /// Its name.
    pub name: String,
    /// Is it the node's default hub?
    pub default: bool,
}

/// A hub's summary (`moot hub show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HubSummary {
    /// The hub id.
    pub hub_id: String,
    /// Its name.
    pub name: String,
    /// The founder's member id.
    pub founder: String,
    /// Active members (not guests, not removed).
    pub members: usize,
    /// Active stewards.
    pub stewards: usize,
    /// Active guests.
    pub guests: usize,
    /// Who may receive the hub from its nodes: "public" (guests and unknown peers get its
    /// public lane) or "members-only" (unknown peers get nothing).
    pub access: String,
}

/// What `member update` changes (each `None` is left as it is).
#[derive(Debug, Clone, Default)]
pub struct MemberUpdate {
    /// A new name (already [`clean_text`]ed).
    pub name: Option<String>,
    /// A new standing and role, as `member add --role` sets them.
    pub role: Option<AddAs>,
    /// A new constituency (`Some(None)` clears it).
    pub constituency: Option<Option<String>>,
}

/// Active stewards on a roll.
fn stewards(roll: &Roll) -> usize {
    roll.members
        .keys()
        .filter(|member| roll.is_steward(member))
        .count()
}

/// The stored verdict of an op that an older version kept without judging it and a newer
/// one refused when it could (kept in the store as evidence; skipped when loading).
const REFUSED_ON_UPGRADE: u8 = 3;

/// Ops read from the store at a time when a hub is loaded.
pub(crate) const LOAD_BATCH: usize = 4096;
/// Estimated bytes of rolls of causal pasts a node's replica caches (`Limits`; performance
/// only). A history's roll ops mostly extend the newest roll, so a few hundred cached pasts
/// serve a full sync as fast as thousands did (docs/BENCHMARKS.md, sync_workload).
pub const ROLL_CACHE_BYTES: usize = 4 * 1024 * 1024;
/// Ops stored per transaction when taking in many (each commit costs an fsync).
const STORE_BATCH_BYTES: usize = 4 << 20;

/// Signs and validates `body` (in its lane, naming the roll heads; checkpoints first when
/// they are too many) and returns the ops to store with their verdicts.
fn write_body(
    replica: &mut Replica,
    device: &SecretKey,
    body: &Body,
) -> Result<Vec<(Authentic<SignedOp>, Verdict)>, NodeError> {
    let lane = body.lane().unwrap_or(Lane::Members);
    let ops = replica
        .write_ops(device, lane, body, &[])
        .map_err(|r| NodeError::Refused(r.reason))?;
    ops.into_iter()
        .map(|op| {
            let verdict = replica.verdict(&op.id()).ok_or_else(|| {
                NodeError::Corrupt(format!("written op {} is not in the replica", op.id()))
            })?;
            Ok((op, verdict))
        })
        .collect()
}

/// This node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The node's own member id.
    pub member_id: String,
    /// The node's libp2p peer id (its device key); `None` if the node's key is protected and
    /// its passphrase was not given.
    pub node_id: Option<String>,
    /// The node member's name.
    pub name: String,
}

/// A member key held on this node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyInfo {
    /// The member id.
    pub member_id: String,
    /// The name given.
    pub name: String,
    /// Protected by a passphrase?
    pub protected: bool,
    /// The node's own key?
    pub node: bool,
}

/// One person on a hub's roll.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Member id.
    pub member_id: String,
    /// Name.
    pub name: String,
    /// Roles held.
    pub roles: Vec<String>,
    /// Constituency.
    pub constituency: Option<String>,
    /// `member`, `guest` or `removed`.
    pub status: String,
}

/// The most ops [`Node::activity`] lists.
pub const MAX_ACTIVITY: usize = 500;

/// An op in the activity list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Activity {
    pub op_id: String,
    /// Its kind's name (`ballot`, `doc_change`, `aid_item`…).
    pub kind: String,
    /// Its family (`roll`, `assemblies`, `documents`, `polls`, `aid`, `housekeeping`).
    pub family: String,
    /// Its author's member (`None`: a device the roll does not know).
    pub member_id: Option<String>,
    /// That member's name on the roll, if known here.
    pub name: Option<String>,
    /// `public` or `members`.
    pub lane: String,
}

/// How a member is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddAs {
    /// A member.
    Member,
    /// A guest.
    Guest,
    /// A member who is also a steward.
    Steward,
    /// A member who is also a convener.
    Convener,
    /// A member who also coordinates the mutual-aid board (may change anyone's items).
    Coordinator,
}

impl AddAs {
    /// The role it grants, if any.
    fn role(self) -> Option<Role> {
        match self {
            AddAs::Steward => Some(Role::Steward),
            AddAs::Convener => Some(Role::Convener),
            AddAs::Coordinator => Some(Role::Coordinator),
            AddAs::Member | AddAs::Guest => None,
        }
    }
}

/// The roll view: a derived, rebuildable copy of the roll for fast reads, valid while the hub
/// still holds `op_count` ops (ops are only ever added).
#[derive(Serialize, Deserialize)]
struct RollView {
    op_count: u64,
    /// The replica's roll op count it was derived from (must match the stamp's).
    roll_ops: u64,
    founder: Option<String>,
    members: Vec<MemberInfo>,
    /// The hub is members-only (last: a view stored before it existed fails to decode, and is
    /// derived again).
    members_only: bool,
}

/// [`RollView`] borrowed from a roll, for storing: it serializes to the same bytes without
/// first building each member's record (10,000 members: ~2 MB at a node's peak, each time the
/// roll changes during a sync).
#[derive(Serialize)]
struct RollViewOf<'a> {
    op_count: u64,
    roll_ops: u64,
    founder: Option<String>,
    members: MembersOf<'a>,
    members_only: bool,
}

impl<'a> RollViewOf<'a> {
    fn new(roll: &'a moot_state::Roll, op_count: u64, roll_ops: u64) -> RollViewOf<'a> {
        RollViewOf {
            op_count,
            roll_ops,
            founder: roll.founder.map(|f| f.to_string()),
            members: MembersOf(roll),
            members_only: roll.members_only,
        }
    }
}

/// The roll's members as a sequence of [`MemberInfo`]s.
struct MembersOf<'a>(&'a moot_state::Roll);

impl Serialize for MembersOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.0
                .members
                .iter()
                .map(|(id, record)| MemberInfoOf { id, record }),
        )
    }
}

/// One member as a [`MemberInfo`] (the same fields, in the same order).
struct MemberInfoOf<'a> {
    id: &'a moot_state::MemberId,
    record: &'a moot_state::MemberRecord,
}

impl Serialize for MemberInfoOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        struct Roles<'a>(&'a std::collections::BTreeMap<moot_state::Role, OpId>);
        impl Serialize for Roles<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_seq(self.0.keys().map(|r| r.as_str()))
            }
        }
        struct Display<'a>(&'a moot_state::MemberId);
        impl Serialize for Display<'_> {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self.0)
            }
        }
        let mut s = serializer.serialize_struct("MemberInfo", 5)?;
        s.serialize_field("member_id", &Display(self.id))?;
        s.serialize_field("name", &self.record.name)?;
        s.serialize_field("roles", &Roles(&self.record.roles))?;
        s.serialize_field("constituency", &self.record.constituency)?;
        s.serialize_field("status", self.record.status.as_str())?;
        s.end()
    }
}

const ROLL_VIEW: &str = "roll";
/// Bytes of checksum after a stored view.
const VIEW_SEAL: usize = 8;

/// A view followed by its checksum.
fn seal(view: &[u8]) -> Vec<u8> {
    let mut sealed = Vec::with_capacity(view.len() + VIEW_SEAL);
    sealed.extend_from_slice(view);
    sealed.extend_from_slice(&view_seal(view));
    sealed
}

fn view_seal(view: &[u8]) -> [u8; VIEW_SEAL] {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(view);
    let mut seal = [0u8; VIEW_SEAL];
    seal.copy_from_slice(&digest[..VIEW_SEAL]);
    seal
}
/// Which ops the stored roll view was made from: the store's op count (it is current while
/// the store holds that many) and the replica's roll op count (it needs deriving again only
/// when that grows).
const ROLL_STAMP: &str = "roll-stamp";

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct RollStamp {
    op_count: u64,
    roll_ops: u64,
}

/// The roll stamp, as a view to store.
fn roll_stamp_view(op_count: u64, roll_ops: u64) -> Result<(String, Vec<u8>), NodeError> {
    let stamp = RollStamp { op_count, roll_ops };
    let bytes = postcard::to_allocvec(&stamp).map_err(|e| NodeError::Corrupt(e.to_string()))?;
    Ok((ROLL_STAMP.to_string(), bytes))
}

/// Hub metadata kept in the store.
#[derive(Serialize, Deserialize)]
pub(crate) struct HubRecord {
    name: String,
}

/// A member key and its device key on this node, unsealed.
#[derive(Clone)]
pub struct Signer {
    pub(crate) member: SecretKey,
    pub(crate) device: SecretKey,
}

impl Signer {
    /// The member id.
    pub fn member_id(&self) -> PublicKey {
        self.member.public()
    }

    /// The node id of this signer's device (its libp2p peer id).
    pub fn node_id(&self) -> Option<String> {
        moot_net::peer_id(&self.device.public())
            .ok()
            .map(|p| p.to_string())
    }
}

pub(crate) fn random<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Random(e.to_string()))?;
    Ok(bytes)
}

/// A node's data directory, opened: it holds the directory's lock until dropped.
pub struct Node {
    dir: PathBuf,
    /// The key file as loaded, replaced whole when a key is added or changed (a running node
    /// runs key commands for its control socket's clients while its network task reads).
    keys: std::sync::RwLock<KeyFile>,
    /// Opened on first use, so commands that only need keys (`id`, `keys`) work even when the
    /// op store is damaged. Declared before the lock: fields drop in order, and the store must
    /// be closed before the lock lets the next command in.
    store: OnceCell<Store>,
    /// Held from loading a replica to storing what was written with this node's devices: a
    /// running node writes from two places (commands through its control socket, and the
    /// network task certifying its device), and two writers must never pick the same sequence
    /// number for a device (see [`Node::own_writes`]).
    writing: std::sync::Mutex<()>,
    /// The replica reads use (views: proposals, polls, aid…), kept between them and brought
    /// up to date from the store before each, so a running node's web UI does not load the
    /// whole hub for every page; dropped when unused (see [`Node::forget_idle_reads`]).
    reads: std::sync::Mutex<Option<ReadCache>>,
    _lock: File,
}

/// A hub loaded from the store up to a position, and when a read last used it.
struct ReadCache {
    hub: HubId,
    loaded: Loaded,
    used: std::time::Instant,
}

/// A replica loaded from the store: up to which position, and the ops refused on an upgrade
/// so far (what later ops resting on them go with).
struct Loaded {
    replica: Replica,
    position: u64,
    refused: std::collections::HashSet<OpId>,
}

impl Drop for Node {
    /// Closes the store, then records that it was closed cleanly, so that the next command
    /// can skip the full page check (the lock is still held here).
    fn drop(&mut self) {
        if let Some(store) = self.store.take() {
            let path = store.path().to_path_buf();
            let healthy = store.healthy();
            drop(store);
            // Only a session in which nothing failed is recorded as a clean close.
            if healthy {
                moot_store::mark_closed(&path);
            }
        }
    }
}

impl Node {
    /// Opens a data directory that holds a node (its key file), waiting at most `wait` for
    /// another command using it: [`NodeError::NoNode`] if the directory or its key file does
    /// not exist, checked before anything is created or changed (a mistyped `--data` must not
    /// become a new node, nor have its files' modes changed). Every command but `init` opens
    /// the node this way.
    pub fn open_existing(
        dir: &Path,
        wait: Duration,
        on_wait: &mut dyn FnMut(),
    ) -> Result<Node, NodeError> {
        keyfile::require(dir)?;
        Node::open_waiting(dir, wait, on_wait)
    }

    /// Notes about the key file worth telling the user (it was damaged and its backup was
    /// used): see [`KeyFile::note`].
    pub fn key_file_note(&self) -> Option<String> {
        self.read_keys().note.clone()
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, KeyFile> {
        // A writer that panicked left the last key file saved whole (saves are atomic).
        self.keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write_keys(&self) -> std::sync::RwLockWriteGuard<'_, KeyFile> {
        self.keys
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Opens (creating if needed) the data directory, waiting up to [`LOCK_WAIT`] for another
    /// command using it.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        Node::open_waiting(dir, LOCK_WAIT, &mut || {})
    }

    /// [`Node::open`] with the wait bounded by `wait`; `on_wait` runs once after about a second
    /// of waiting (the CLI says why it pauses).
    pub fn open_waiting(
        dir: &Path,
        wait: Duration,
        on_wait: &mut dyn FnMut(),
    ) -> Result<Node, NodeError> {
        dir::prepare(dir)?;
        let lock = dir::lock(dir, wait, on_wait)?;
        let keys = KeyFile::load(dir)?;
        Ok(Node {
            dir: dir.to_path_buf(),
            _lock: lock,
            keys: std::sync::RwLock::new(keys),
            store: OnceCell::new(),
            writing: std::sync::Mutex::new(()),
            reads: std::sync::Mutex::new(None),
        })
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The op store, opened (or created) on first use.
    pub fn store(&self) -> Result<&Store, NodeError> {
        if let Some(store) = self.store.get() {
            return Ok(store);
        }
        let store = Store::open(&self.dir.join(STORE_FILE))?;
        Ok(self.store.get_or_init(|| store))
    }

    /// Creates this node's own member key and device key: one atomic write of the key file, so
    /// a crash leaves either no identity (and `init` can run again) or a whole one.
    pub fn init(&self, name: &str, passphrase: Option<&str>) -> Result<Identity, NodeError> {
        let member = SecretKey::from_seed(random()?);
        let device = SecretKey::from_seed(random()?);
        self.init_as(name, passphrase, member, device)
    }

    /// [`Node::init`] with given keys, unprotected: for tools that build a data directory from
    /// fixed keys (`examples/sample_hub.rs`), never for people.
    pub fn init_with_keys(
        &self,
        name: &str,
        member: SecretKey,
        device: SecretKey,
    ) -> Result<Identity, NodeError> {
        self.init_as(name, None, member, device)
    }

    fn init_as(
        &self,
        name: &str,
        passphrase: Option<&str>,
        member: SecretKey,
        device: SecretKey,
    ) -> Result<Identity, NodeError> {
        let name = clean_text("name", name)?;
        if let Some(existing) = self.node_member()? {
            return Err(NodeError::AlreadyInitialised(existing.to_string()));
        }
        let mut held = self.write_keys();
        let mut keys = held.clone();
        let member = add_key(&mut keys, &name, passphrase, member, device)?;
        keys.node_member = Some(member.to_bytes());
        keys.save(&self.dir)?;
        *held = keys;
        drop(held);
        self.identity_with(passphrase)
    }

    /// Stores a hub and its ops as they come (each validated here first, in order), making it
    /// the default hub: for tools that import a prepared history (`examples/sample_hub.rs`).
    /// Returns the number of ops stored.
    pub fn import_hub(&self, hub: &HubId, name: &str, ops: &[Vec<u8>]) -> Result<u64, NodeError> {
        let record = HubRecord {
            name: clean_text("hub name", name)?,
        };
        let bytes =
            postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let store = self.store()?;
        let replica = Replica::new(
            *hub,
            Limits {
                retain: Retain::IndexOnly,
                ..Limits::default()
            },
        );
        store.create_hub(hub, &bytes, &[], &[(DEFAULT_HUB, &hub.0)])?;
        let mut replica = replica;
        let stored = self.ingest(hub, &mut replica, ops)?;
        // A prepared history may hold ops of this node's own device (a tool importing a hub
        // written with this node's keys): they are recorded as written here, or the node would
        // take them for another copy's and write no more.
        if let Ok(signer) = self.signer(None, None) {
            let device = signer.device.public();
            for head in store.raw_heads(hub)? {
                if head.device == device.to_bytes() {
                    let key = wrote_key(hub, &device, head.lane);
                    if self.recorded_seq_by_key(&key)?.unwrap_or(0) < head.seq {
                        store.put_config(&key, &head.seq.to_le_bytes())?;
                    }
                }
            }
        }
        Ok(stored)
    }

    /// Validates `ops` (signatures checked on worker threads, then each op at its causal
    /// position) in `replica` — the hub's, as loaded by [`Node::replica`] — and stores the ops
    /// kept, one durable transaction per `STORE_BATCH_BYTES` (4 MiB) of them; then refreshes the
    /// hub's views (roll, polls). Stops after the run of ops holding the first one refused
    /// (for tools importing a prepared history; every op the replica accepted is stored, and
    /// the error is returned). Returns the number of ops stored.
    pub fn ingest<B: AsRef<[u8]> + Sync>(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        ops: &[B],
    ) -> Result<u64, NodeError> {
        self.take_in(hub, replica, ops, None, &mut |_| {})
            .map(|stored| stored.unwrap_or(0))
    }

    /// [`Node::ingest`], or with `atomic` all or nothing: every op is validated and stored in
    /// one transaction, committed only if none is refused and none is left waiting for a
    /// dependency (`Ok(None)`: aborted, nothing stored — the reason is in the error). `atomic`
    /// carries the metadata of a hub not stored yet. `progress` hears the ops validated so far.
    fn take_in<B: AsRef<[u8]> + Sync>(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        ops: &[B],
        atomic: Option<Option<Vec<u8>>>,
        progress: &mut dyn FnMut(usize),
    ) -> Result<Option<u64>, NodeError> {
        let store = self.store()?;
        let make_default =
            atomic.as_ref().is_some_and(Option::is_some) && self.default_hub()?.is_none();
        let pending_before = replica.pending_len();
        // Storing runs on its own thread, one batch behind validation: the commits' writes
        // and fsyncs overlap the next batch's signature checks. At most one batch waits.
        let (sender, receiver) =
            std::sync::mpsc::sync_channel::<Option<Vec<(Authentic<SignedOp>, Verdict)>>>(1);
        let is_atomic = atomic.is_some();
        // Document changes taken in: (op, document, change bytes).
        let mut doc_changes: Vec<(OpId, OpId, Vec<u8>)> = Vec::new();
        let (validated, stored, counts) = std::thread::scope(|scope| {
            let writer = scope.spawn(move || -> Result<Option<u64>, NodeError> {
                if let Some(new_hub) = atomic {
                    // A new hub becomes the default only on a node without one.
                    let config: [(&str, &[u8]); 1] = [(DEFAULT_HUB, &hub.0)];
                    let config = if make_default { &config[..] } else { &[] };
                    let new_hub = new_hub.as_deref().map(|m| (m, config));
                    let batches = receiver.iter().map(|batch| {
                        batch.map(|batch| {
                            batch
                                .into_iter()
                                .map(|(op, verdict)| (op.into_inner(), verdict.to_byte()))
                                .collect::<Vec<_>>()
                        })
                    });
                    return Ok(store.put_all(hub, new_hub, batches)?);
                }
                let mut stored = 0u64;
                for batch in receiver {
                    let Some(batch) = batch else {
                        break;
                    };
                    let refs: Vec<(&SignedOp, u8)> = batch
                        .iter()
                        .map(|(op, verdict)| (op.get(), verdict.to_byte()))
                        .collect();
                    store.put_kept(hub, &refs)?;
                    stored += refs.len() as u64;
                }
                Ok(Some(stored))
            });
            let validated = (|| -> Result<(), NodeError> {
                let mut kept: Vec<(Authentic<SignedOp>, Verdict)> = Vec::new();
                let mut kept_bytes = 0;
                let mut done = 0;
                let mut refused = None;
                // One pass over all the ops: signature checks keep running while validation
                // goes on, with no pause at chunk boundaries.
                replica.insert_batch_runs(moot_state::Source::DEFAULT, ops, &mut |run| {
                    done += run.len();
                    // The whole run was inserted: after a refusal, the ops the replica accepted
                    // later in the run are still collected (and stored, unless all or nothing),
                    // and the pass stops after the run.
                    for insertion in run {
                        if let moot_state::Outcome::Rejected(rejection) = &insertion.outcome
                            && refused.is_none()
                        {
                            refused = Some(NodeError::Refused(rejection.reason.clone()));
                        }
                        kept_bytes += insertion
                            .kept
                            .iter()
                            .map(|(op, _)| op.bytes().len())
                            .sum::<usize>();
                        for (op, _) in &insertion.kept {
                            if let Some((doc, change)) =
                                moot_state::body::stored_doc_change(op.kind(), op.body())
                            {
                                doc_changes.push((op.id(), doc.unwrap_or(op.id()), change));
                            }
                        }
                        kept.extend(insertion.kept);
                    }
                    progress(done);
                    if refused.is_some() {
                        return false;
                    }
                    // One durable transaction per STORE_BATCH_BYTES of ops (a commit costs
                    // an fsync); the rest after the pass.
                    if kept_bytes >= STORE_BATCH_BYTES {
                        kept_bytes = 0;
                        // A send fails only if the writer stopped: its error is reported below.
                        return sender.send(Some(std::mem::take(&mut kept))).is_ok();
                    }
                    true
                });
                if let Some(refused) = refused {
                    if !is_atomic && !kept.is_empty() {
                        // The ops the replica accepted are held by it: they are stored too.
                        let _ = sender.send(Some(std::mem::take(&mut kept)));
                    }
                    return Err(refused);
                }
                if !kept.is_empty() {
                    // The last batch. A failed send: the writer stopped, and its error is
                    // reported below.
                    let _ = sender.send(Some(std::mem::take(&mut kept)));
                }
                // All or nothing: ops still waiting for a dependency neither held nor given
                // would be silently left out.
                if is_atomic && replica.pending_len() > pending_before {
                    return Err(NodeError::Incomplete(
                        replica.pending_len() - pending_before,
                    ));
                }
                Ok(())
            })();
            if is_atomic && validated.is_err() {
                // Abort the transaction: nothing of it is stored.
                let _ = sender.send(None);
            }
            drop(sender);
            // While the last ops are stored: the polls' counts for their views.
            let counts = validated.is_ok().then(|| polls::count_polls(replica));
            let stored = writer
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (validated, stored, counts)
        });
        // What was stored stays stored (each batch durably); the first error is reported.
        let stored = stored?;
        if let Err(error) = validated {
            if stored.is_some_and(|n| n > 0) {
                // Ops were stored before the refusal: the views follow them. (A view left
                // behind would not be believed anyway: each is trusted only while the hub
                // holds the op count it was derived at; the refusal is the error reported.)
                let _ = self.refresh_view(hub, replica);
            }
            return Err(error);
        }
        if stored.is_none() {
            return Ok(None);
        }
        match counts {
            Some(counts) => self.refresh_view_counted(hub, replica, counts?)?,
            None => self.refresh_view(hub, replica)?,
        }
        // Documents that took in many changes get a fresh snapshot now, built from the changes
        // in hand (the rest are read from the store).
        let mut per_doc: std::collections::BTreeMap<OpId, usize> =
            std::collections::BTreeMap::new();
        for (_, doc, _) in &doc_changes {
            *per_doc.entry(*doc).or_default() += 1;
        }
        let docs: Vec<OpId> = per_doc
            .into_iter()
            .filter(|(_, n)| *n >= deliberation::SNAPSHOT_EVERY)
            .map(|(doc, _)| doc)
            .collect();
        if !docs.is_empty() {
            let known: std::collections::HashMap<OpId, Vec<u8>> = doc_changes
                .into_iter()
                .map(|(op, _, change)| (op, change))
                .collect();
            self.refresh_documents(hub, replica, &docs, &known)?;
        }
        Ok(stored)
    }

    /// Adds another member key held on this node.
    pub fn new_member_key(
        &self,
        name: &str,
        passphrase: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        let name = clean_text("name", name)?;
        self.node_member()?.ok_or(NodeError::NotInitialised)?;
        let mut held = self.write_keys();
        let mut keys = held.clone();
        let member = make_key(&mut keys, &name, passphrase)?;
        keys.save(&self.dir)?;
        *held = keys;
        drop(held);
        Ok(member)
    }

    /// Seals a key that was stored without a passphrase (default: the node's own) under
    /// `passphrase`.
    pub fn protect_key(
        &self,
        member: Option<PublicKey>,
        passphrase: &str,
    ) -> Result<PublicKey, NodeError> {
        let member = match member {
            Some(m) => m,
            None => self.node_member()?.ok_or(NodeError::NotInitialised)?,
        };
        let entry = self.entry(&member)?;
        if keystore::is_encrypted(&entry.member_sealed) {
            return Err(NodeError::AlreadyProtected(member.to_string()));
        }
        let keystore_error = |source| NodeError::Keystore {
            member: member.to_string(),
            source,
        };
        let member_key = keystore::unseal(&entry.member_sealed, None).map_err(keystore_error)?;
        let device_key = keystore::unseal(&entry.device_sealed, None).map_err(keystore_error)?;
        let seal = |key: &SecretKey| -> Result<Vec<u8>, NodeError> {
            keystore::seal(key, Some(passphrase), random()?, random()?).map_err(keystore_error)
        };
        let sealed = KeyEntry {
            member: entry.member,
            name: entry.name.clone(),
            member_sealed: seal(&member_key)?,
            device_sealed: seal(&device_key)?,
        };
        let mut held = self.write_keys();
        let mut keys = held.clone();
        for e in &mut keys.entries {
            if e.member == sealed.member {
                *e = sealed.clone();
            }
        }
        keys.save(&self.dir)?;
        *held = keys;
        drop(held);
        Ok(member)
    }

    /// Gives a member key held here a new device key (after [`NodeError::DeviceUsedElsewhere`]),
    /// sealed as the member key is (with `passphrase` when it is protected). The next write
    /// certifies the new device. Returns the new device's public key.
    pub fn new_device_key(
        &self,
        member: Option<PublicKey>,
        passphrase: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        let member = match member {
            Some(m) => m,
            None => self.node_member()?.ok_or(NodeError::NotInitialised)?,
        };
        let entry = self.entry(&member)?.clone();
        let keystore_error = |source| NodeError::Keystore {
            member: member.to_string(),
            source,
        };
        let protected = keystore::is_encrypted(&entry.member_sealed);
        // Opening the member key proves the passphrase (when protected) before anything changes.
        keystore::unseal(&entry.member_sealed, passphrase).map_err(keystore_error)?;
        let device = SecretKey::from_seed(random()?);
        let sealed = keystore::seal(
            &device,
            if protected { passphrase } else { None },
            random()?,
            random()?,
        )
        .map_err(keystore_error)?;
        let mut held = self.write_keys();
        let mut keys = held.clone();
        for e in &mut keys.entries {
            if e.member == entry.member {
                e.device_sealed = sealed.clone();
            }
        }
        keys.save(&self.dir)?;
        *held = keys;
        drop(held);
        Ok(device.public())
    }

    fn node_member(&self) -> Result<Option<PublicKey>, NodeError> {
        let node_member = self.read_keys().node_member;
        match node_member {
            None => Ok(None),
            Some(bytes) => PublicKey::from_bytes(&bytes)
                .map(Some)
                .map_err(|_| NodeError::Corrupt("node member".into())),
        }
    }

    fn entry(&self, member: &PublicKey) -> Result<KeyEntry, NodeError> {
        self.read_keys()
            .entry(&member.to_bytes())
            .cloned()
            .ok_or_else(|| NodeError::UnknownKey(member.to_string()))
    }

    /// The node's identity.
    pub fn identity(&self) -> Result<Identity, NodeError> {
        self.identity_with(None)
    }

    /// The node's identity, opening its key with `passphrase` if it is protected.
    pub fn identity_with(&self, passphrase: Option<&str>) -> Result<Identity, NodeError> {
        let member = self.node_member()?.ok_or(NodeError::NotInitialised)?;
        let entry = self.entry(&member)?;
        // The device key's public half is needed for the node id: a protected node key is
        // opened with the passphrase given, if any.
        let device = keystore::unseal(&entry.device_sealed, None)
            .ok()
            .or_else(|| keystore::unseal(&entry.device_sealed, passphrase).ok());
        let node_id =
            device.and_then(|d| moot_net::peer_id(&d.public()).ok().map(|p| p.to_string()));
        Ok(Identity {
            member_id: member.to_string(),
            node_id,
            name: entry.name.clone(),
        })
    }

    /// Every member key held on this node.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, NodeError> {
        let node = self.node_member()?;
        let mut out = Vec::new();
        for entry in &self.read_keys().entries {
            let member = PublicKey::from_bytes(&entry.member)
                .map_err(|_| NodeError::Corrupt("member key id".into()))?;
            out.push(KeyInfo {
                member_id: member.to_string(),
                name: entry.name.clone(),
                protected: keystore::is_encrypted(&entry.member_sealed),
                node: node == Some(member),
            });
        }
        Ok(out)
    }

    /// Is `member`'s key held on this node? ([`NodeError::UnknownKey`] if not.)
    pub fn holds(&self, member: &PublicKey) -> Result<(), NodeError> {
        self.entry(member).map(drop)
    }

    /// Unseals the keys of `member` (default: the node's own member).
    pub fn signer(
        &self,
        member: Option<PublicKey>,
        passphrase: Option<&str>,
    ) -> Result<Signer, NodeError> {
        let member = match member {
            Some(m) => m,
            None => self.node_member()?.ok_or(NodeError::NotInitialised)?,
        };
        let entry = self.entry(&member)?;
        let unseal = |sealed: &[u8]| {
            keystore::unseal(sealed, passphrase).map_err(|source| NodeError::Keystore {
                member: member.to_string(),
                source,
            })
        };
        Ok(Signer {
            member: unseal(&entry.member_sealed)?,
            device: unseal(&entry.device_sealed)?,
        })
    }

    /// True if `member`'s key held here (the node's own for `None`) is protected by a
    /// passphrase.
    pub fn key_has_passphrase(&self, member: Option<PublicKey>) -> Result<bool, NodeError> {
        let member = match member {
            Some(m) => m,
            None => self.node_member()?.ok_or(NodeError::NotInitialised)?,
        };
        Ok(keystore::has_passphrase(
            &self.entry(&member)?.member_sealed,
        ))
    }

    fn default_hub(&self) -> Result<Option<HubId>, NodeError> {
        match self.store()?.config(DEFAULT_HUB)? {
            None => Ok(None),
            Some(bytes) => Ok(Some(HubId(
                bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| NodeError::Corrupt(DEFAULT_HUB.into()))?,
            ))),
        }
    }

    /// The hub to act on: `explicit`, or the default one.
    pub fn hub(&self, explicit: Option<HubId>) -> Result<HubId, NodeError> {
        let hubs = self.store()?.hubs()?;
        let hub = match explicit {
            Some(hub) => hub,
            None => match self.default_hub()? {
                Some(hub) => hub,
                None if hubs.is_empty() => return Err(NodeError::NoHub),
                None => return Err(NodeError::NoDefaultHub),
            },
        };
        if hubs.iter().any(|(h, _)| *h == hub) {
            Ok(hub)
        } else {
            Err(NodeError::UnknownHub(hub))
        }
    }

    /// Every hub this node belongs to, ascending by id.
    pub fn hubs(&self) -> Result<Vec<HubInfo>, NodeError> {
        let default = self.default_hub()?;
        self.store()?
            .hubs()?
            .into_iter()
            .map(|(hub, bytes)| {
                Ok(HubInfo {
                    hub_id: hub.to_string(),
                    name: self.shown_name(&hub, &bytes)?,
                    default: default == Some(hub),
                })
            })
            .collect()
    }

    /// Makes `hub` (one this node belongs to) the default hub.
    pub fn use_hub(&self, hub: &HubId) -> Result<(), NodeError> {
        let hub = self.hub(Some(*hub))?;
        self.store()?.put_config(DEFAULT_HUB, &hub.0)?;
        Ok(())
    }

    /// The newest `limit` ops this node holds of a hub (at most [`MAX_ACTIVITY`]), newest
    /// first, in the order it accepted them (no clock: a peer's old ops arriving now are
    /// recent here), each with its author's member and name as the roll has them now.
    pub fn activity(&self, hub: &HubId, limit: usize) -> Result<Vec<Activity>, NodeError> {
        let limit = limit.min(MAX_ACTIVITY);
        let store = self.store()?;
        let count = store.op_count(hub)?;
        let from = count.saturating_sub(limit as u64);
        let ops = store.ops_from(hub, from, limit)?;
        self.with_read_replica(hub, |replica| {
            let roll = replica.roll();
            let mut out = Vec::with_capacity(ops.len());
            for (_, bytes) in ops.iter().rev() {
                let op = SignedOp::decode(bytes)
                    .map_err(|e| NodeError::Corrupt(format!("a stored op does not decode: {e}")))?;
                let member = roll.member_of(&op.author());
                let name = member
                    .as_ref()
                    .and_then(|m| roll.member(m))
                    .map(|r| r.name.clone())
                    .filter(|n| !n.is_empty());
                out.push(Activity {
                    op_id: op.id().to_string(),
                    kind: moot_state::body::kind::name(op.kind()).to_string(),
                    family: moot_state::body::kind::family(op.kind()).to_string(),
                    member_id: member.map(|m| m.to_string()),
                    name,
                    lane: match op.lane() {
                        moot_crypto::Lane::Public => "public",
                        moot_crypto::Lane::Members => "members",
                    }
                    .to_string(),
                });
            }
            Ok(out)
        })
    }

    /// A hub's name, founder and counts.
    pub fn hub_summary(&self, hub: &HubId) -> Result<HubSummary, NodeError> {
        let name = self.hub_name(hub)?;
        // From the roll view (current while the store holds the ops it was made from), so a
        // summary does not load the hub.
        let view = self.roll_view(hub)?;
        let count = |status: Status| {
            view.members
                .iter()
                .filter(|m| m.status == status.as_str())
                .count()
        };
        Ok(HubSummary {
            hub_id: hub.to_string(),
            name,
            founder: view.founder.unwrap_or_default(),
            members: count(Status::Member),
            stewards: view
                .members
                .iter()
                .filter(|m| {
                    m.status == Status::Member.as_str()
                        && m.roles.iter().any(|r| r == Role::Steward.as_str())
                })
                .count(),
            guests: count(Status::Guest),
            access: if view.members_only {
                "members-only"
            } else {
                "public"
            }
            .to_string(),
        })
    }

    /// Makes the hub members-only (unknown peers receive nothing of it) or public (stewards).
    pub fn set_access(
        &self,
        hub: &HubId,
        signer: &Signer,
        members_only: bool,
    ) -> Result<OpId, NodeError> {
        let ids = self.write(
            hub,
            signer,
            &[Body::SetAccess(moot_state::body::SetAccess {
                members_only,
            })],
        )?;
        ids.last()
            .copied()
            .ok_or_else(|| NodeError::Corrupt("nothing written".into()))
    }

    /// Loads a hub's replica from the store: its compact index and roll, not its op bytes.
    /// Ops come in acceptance order, in bounded batches, with the verdicts given when they
    /// arrived, so nothing is verified or judged again except roll ops (re-applied to rebuild
    /// the roll) and ops a newer version may now understand (their new verdicts are stored).
    pub fn replica(&self, hub: &HubId) -> Result<Replica, NodeError> {
        Ok(self.load(hub)?.replica)
    }

    /// [`Node::replica`], with how far it was loaded.
    fn load(&self, hub: &HubId) -> Result<Loaded, NodeError> {
        let store = self.store()?;
        let limits = Limits {
            retain: Retain::IndexOnly,
            max_cached_roll_bytes: ROLL_CACHE_BYTES,
            ..Limits::default()
        };
        let mut loaded = Loaded {
            replica: Replica::new(*hub, limits),
            position: 0,
            refused: std::collections::HashSet::new(),
        };
        loaded
            .replica
            .reserve(usize::try_from(store.op_count(hub)?).unwrap_or(0));
        self.load_more(hub, &mut loaded)?;
        Ok(loaded)
    }

    /// Runs `f` on the hub's replica as the store holds it now: the one the last read used,
    /// brought up to date with what was stored since (or loaded whole, the first time or for
    /// another hub). For reads: `f` must not add ops (writes load their own, under
    /// [`Node::own_writes`]).
    pub(crate) fn with_read_replica<R>(
        &self,
        hub: &HubId,
        f: impl FnOnce(&mut Replica) -> Result<R, NodeError>,
    ) -> Result<R, NodeError> {
        let mut reads = self
            .reads
            .lock()
            .map_err(|_| NodeError::Corrupt("the read cache was poisoned".into()))?;
        // Taken out: if anything below fails, the next read starts afresh.
        let cached = reads.take().filter(|c| c.hub == *hub);
        let mut cache = match cached {
            Some(mut cache) => {
                self.load_more(hub, &mut cache.loaded)?;
                cache
            }
            None => ReadCache {
                hub: *hub,
                loaded: self.load(hub)?,
                used: std::time::Instant::now(),
            },
        };
        let out = f(&mut cache.loaded.replica);
        cache.used = std::time::Instant::now();
        if out.is_ok() {
            *reads = Some(cache);
        }
        out
    }

    /// Drops the read cache if no read used it for `idle` (a running node calls this now and
    /// then: an open web page keeps it, an idle node gives the memory back — with
    /// [`memory::give_back`] after it, on a blocking thread). True if it dropped one.
    pub fn forget_idle_reads(&self, idle: Duration) -> bool {
        if let Ok(mut reads) = self.reads.lock()
            && reads.as_ref().is_some_and(|c| c.used.elapsed() >= idle)
        {
            *reads = None;
            return true;
        }
        false
    }

    /// Loads the ops stored from `loaded.position` on into `loaded.replica`, with the verdicts
    /// given when they arrived.
    fn load_more(&self, hub: &HubId, loaded: &mut Loaded) -> Result<(), NodeError> {
        let store = self.store()?;
        let replica = &mut loaded.replica;
        let refused = &mut loaded.refused;
        let mut changed = Vec::new();
        let mut position = loaded.position;
        loop {
            let batch = store.load_from(hub, position, LOAD_BATCH)?;
            let Some((last, _, _)) = batch.last() else {
                break;
            };
            position = last + 1;
            for (at, op, stored) in batch {
                let id = op.id();
                if stored == REFUSED_ON_UPGRADE {
                    refused.insert(id);
                    continue;
                }
                let stored = Verdict::from_byte(stored).ok_or_else(|| {
                    NodeError::Corrupt(format!("verdict of the op at position {at}"))
                })?;
                match replica.restore(op, stored) {
                    Ok(now) if now != stored => changed.push((id, now.to_byte())),
                    Ok(_) => {}
                    // An op an older version kept without judging it (an unknown kind, or one
                    // resting on one) may be refused once it can be judged: that is its verdict,
                    // recorded so later loads skip it.
                    Err(_) if stored != Verdict::Accepted => {
                        refused.insert(id);
                        changed.push((id, REFUSED_ON_UPGRADE));
                    }
                    // An op that rests on one refused after an upgrade (e.g. continues its
                    // chain) goes with it: recorded the same way, not fatal.
                    Err(rejection)
                        if matches!(
                            rejection.reason,
                            Reason::InvalidDependency(dep) if refused.contains(&dep)
                        ) =>
                    {
                        refused.insert(id);
                        changed.push((id, REFUSED_ON_UPGRADE));
                    }
                    // An accepted op the current rules refuse is a loud error, never a quiet
                    // skip: the derived state would silently differ from what was acknowledged.
                    Err(rejection) => {
                        return Err(NodeError::StoredOpRefused {
                            hub: *hub,
                            op: id,
                            outcome: rejection.reason.to_string(),
                        });
                    }
                }
            }
        }
        loaded.position = position;
        if !changed.is_empty() {
            store.set_verdicts(hub, &changed)?;
        }
        Ok(())
    }

    /// Founds a hub with `signer` as founder and first steward; it becomes the default hub. The
    /// genesis op, the hub record and the default are stored in one transaction.
    pub fn create_hub(&self, name: &str, signer: &Signer) -> Result<HubId, NodeError> {
        let name = clean_text("hub name", name)?;
        let nonce: [u8; 16] = random()?;
        let founder = signer.member.public();
        let hub = hub_id(&founder, &nonce);
        let record = HubRecord { name: name.clone() };
        let bytes =
            postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let mut replica = Replica::new(hub, Limits::default());
        let body = Body::Found(Box::new(Found {
            name,
            founder,
            nonce,
            protocol: PROTOCOL,
            device_certificate: Certificate::issue(&signer.member, &hub, &signer.device.public()),
        }));
        let mut ops = write_body(&mut replica, &signer.device, &body)?;
        // The founder's name is personal data: it goes in the members lane.
        let name_op = Body::SetName(SetName {
            member: founder,
            name: self.entry(&founder)?.name.clone(),
        });
        ops.extend(write_body(&mut replica, &signer.device, &name_op)?);
        let ops: Vec<&SignedOp> = ops.iter().map(|(op, _)| op.get()).collect();
        // What the founder's device wrote, recorded with the hub (see `check_own_device`).
        let mut config: Vec<(String, Vec<u8>)> = vec![(DEFAULT_HUB.to_string(), hub.0.to_vec())];
        for op in &ops {
            let key = wrote_key(&hub, &op.author(), op.lane());
            config.retain(|(k, _)| *k != key);
            config.push((key, op.seq().to_le_bytes().to_vec()));
        }
        let config: Vec<(&str, &[u8])> = config
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        self.store()?.create_hub(&hub, &bytes, &ops, &config)?;
        Ok(hub)
    }

    /// Stores written ops with their verdicts, in one durable transaction.
    fn persist(
        &self,
        hub: &HubId,
        ops: &[(Authentic<SignedOp>, Verdict)],
    ) -> Result<(), NodeError> {
        let kept: Vec<(&SignedOp, u8)> = ops
            .iter()
            .map(|(op, verdict)| (op.get(), verdict.to_byte()))
            .collect();
        self.record_own(hub, ops.iter().map(|(op, _)| op.get()))?;
        self.store()?.put_kept(hub, &kept)?;
        Ok(())
    }

    /// Records the highest sequence number this node wrote with each device, before the ops
    /// are stored: a crash between the two leaves the record ahead of the store, never behind
    /// (so a restart never mistakes its own ops for someone else's).
    pub(crate) fn record_own<'a>(
        &self,
        hub: &HubId,
        ops: impl Iterator<Item = &'a SignedOp>,
    ) -> Result<(), NodeError> {
        let mut wrote: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for op in ops {
            let key = wrote_key(hub, &op.author(), op.lane());
            let seq = wrote.entry(key).or_default();
            *seq = (*seq).max(op.seq());
        }
        for (key, seq) in &wrote {
            let recorded = self.recorded_seq_by_key(key)?.unwrap_or(0);
            if *seq > recorded {
                self.store()?.put_config(key, &seq.to_le_bytes())?;
            }
        }
        Ok(())
    }

    fn recorded_seq_by_key(&self, key: &str) -> Result<Option<u64>, NodeError> {
        Ok(self
            .store()?
            .config(key)?
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(u64::from_le_bytes))
    }

    /// Refuses to write with a device whose key signed ops this node did not write (found in
    /// the hub's replica: a chain longer than what this node recorded writing, or forked) — the
    /// data directory was copied or restored from a backup, and writing on would make the
    /// device equivocate.
    fn check_own_device(
        &self,
        hub: &HubId,
        signer: &Signer,
        replica: &Replica,
    ) -> Result<(), NodeError> {
        let device = signer.device.public();
        for lane in Lane::ALL {
            let forked = replica.is_forked(&device, lane);
            let head = replica.chain_head(&device, lane).map(|(seq, _)| seq);
            let recorded = self.recorded_seq_by_key(&wrote_key(hub, &device, lane))?;
            // Ops of this device with no record of writing any: another copy wrote them (a
            // directory copied after joining the hub, before this copy wrote).
            let ahead = match (head, recorded) {
                (Some(h), Some(r)) => h > r,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if forked || ahead {
                return Err(NodeError::DeviceUsedElsewhere {
                    member: signer.member_id().to_string(),
                    device: device.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Writes `bodies` as `signer` in `hub`, certifying the signer's device on this node first
    /// if the roll does not know it yet. All are stored in one durable transaction.
    pub fn write(
        &self,
        hub: &HubId,
        signer: &Signer,
        bodies: &[Body],
    ) -> Result<Vec<OpId>, NodeError> {
        self.write_with(hub, signer, |_, _| Ok(bodies.to_vec()))
    }

    /// Serialises writes with this node's devices: held from loading the replica a write is
    /// built on to storing it. (A poisoned lock only means another writer panicked; what it
    /// guards is the store, which redb keeps consistent, so it is taken anyway.)
    pub(crate) fn own_writes(&self) -> std::sync::MutexGuard<'_, ()> {
        self.writing
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`Node::write`] with bodies built from the hub's current replica (loaded once); `build`
    /// may refuse, before anything is written.
    fn write_with(
        &self,
        hub: &HubId,
        signer: &Signer,
        build: impl FnOnce(&Replica, &Roll) -> Result<Vec<Body>, NodeError>,
    ) -> Result<Vec<OpId>, NodeError> {
        let _writing = self.own_writes();
        let mut replica = self.replica(hub)?;
        let roll = replica.roll();
        let bodies = build(&replica, &roll)?;
        let mut written = self.certify_if_needed(hub, signer, &mut replica)?;
        for body in &bodies {
            written.extend(write_body(&mut replica, &signer.device, body)?);
        }
        self.persist(hub, &written)?;
        self.refresh_after_commit(hub, &mut replica);
        Ok(written.iter().map(|(op, _)| op.id()).collect())
    }

    /// Brings the hub's derived views up to date after a write was committed. A failure here
    /// does not fail the write (it is saved: a caller told otherwise would write it again);
    /// the views are stamped with the op count they were derived at, so a stale one is derived
    /// again when next read.
    pub(crate) fn refresh_after_commit(&self, hub: &HubId, replica: &mut Replica) {
        if let Err(error) = self.refresh_view(hub, replica) {
            tracing::warn!(%hub, %error, "the write is saved; its derived views are refreshed later");
        }
    }

    /// The signer's device certificate, written in `replica` if the roll does not know the
    /// device yet (to be stored with what follows).
    fn certify_if_needed(
        &self,
        hub: &HubId,
        signer: &Signer,
        replica: &mut Replica,
    ) -> Result<Vec<(Authentic<SignedOp>, Verdict)>, NodeError> {
        self.check_own_device(hub, signer, replica)?;
        if replica.roll().member_of(&signer.device.public()).is_some() {
            return Ok(Vec::new());
        }
        let certify = Body::CertifyDevice(CertifyDevice {
            member: signer.member.public(),
            device: signer.device.public(),
            certificate: Certificate::issue(&signer.member, hub, &signer.device.public()),
        });
        write_body(replica, &signer.device, &certify)
    }

    /// Admits a member (or guest), with a role if asked. Someone already on the roll (and not
    /// removed) is refused: changes go through [`Node::update_member`].
    pub fn add_member(
        &self,
        hub: &HubId,
        signer: &Signer,
        member: PublicKey,
        name: &str,
        constituency: Option<String>,
        add_as: AddAs,
    ) -> Result<Vec<OpId>, NodeError> {
        let name = clean_text("name", name)?;
        let constituency = match constituency {
            Some(c) => clean_optional("constituency", &c)?,
            None => None,
        };
        self.write_with(hub, signer, |_, roll| {
            if let Some(record) = roll.member(&member)
                && record.status != Status::Removed
            {
                return Err(NodeError::AlreadyOnRoll {
                    member: member.to_string(),
                    name: record.name.clone(),
                });
            }
            let standing = if add_as == AddAs::Guest {
                Standing::Guest
            } else {
                Standing::Member
            };
            // The admission is public; name and constituency are personal data (members lane).
            let mut bodies = vec![
                Body::Admit(Admit { member, standing }),
                Body::SetName(SetName { member, name }),
            ];
            if let Some(constituency) = constituency {
                bodies.push(Body::SetConstituency(SetConstituency {
                    member,
                    constituency: Some(as_on_roll(roll, constituency)),
                }));
            }
            if let Some(role) = add_as.role() {
                bodies.push(Body::Grant(RoleChange { member, role }));
            }
            Ok(bodies)
        })
    }

    /// Changes a member's name, standing and role, or constituency. `--role` sets standing and
    /// role as `member add` does (`steward` → a member whose only role is steward; `member` → a
    /// member with no role; `guest` → a guest). Refused if it would leave no steward.
    pub fn update_member(
        &self,
        hub: &HubId,
        signer: &Signer,
        member: PublicKey,
        update: &MemberUpdate,
    ) -> Result<Vec<OpId>, NodeError> {
        if update.name.is_none() && update.role.is_none() && update.constituency.is_none() {
            return Err(NodeError::NothingToUpdate);
        }
        self.write_with(hub, signer, |replica, roll| {
            let record = roll
                .member(&member)
                .filter(|r| r.status != Status::Removed)
                .ok_or_else(|| NodeError::NotOnRoll(member.to_string()))?;
            let standing = match update.role {
                Some(AddAs::Guest) => Standing::Guest,
                Some(_) => Standing::Member,
                None if record.status == Status::Guest => Standing::Guest,
                None => Standing::Member,
            };
            let wanted: Vec<Role> = match update.role {
                None => record.roles.keys().copied().collect(),
                Some(add_as) => add_as.role().into_iter().collect(),
            };
            // (Asked by someone who may not change the roll, the rules' own refusal says why.)
            if roll.is_steward(&member)
                && !wanted.contains(&Role::Steward)
                && stewards(roll) <= 1
                && roll.is_steward(&signer.member_id())
            {
                return Err(NodeError::LastSteward(member.to_string()));
            }
            let was_guest = record.status == Status::Guest;
            // The founder's steward role came with the genesis, which is also their admission:
            // a revocation of it could cut none of their ops (all rest on the genesis), so
            // another steward takes it away as a guest's membership is, by a removal with its
            // cuts and a re-admission — what the founder writes without following it, beyond
            // the cut, counts for nothing, and the roles they keep are granted again. (The
            // founder stepping down themselves revokes it: they cannot re-admit themselves
            // once removed, and have no one to guard against but themselves.)
            let founder_steps_down = roll.founder == Some(member)
                && signer.member_id() != member
                && roll.genesis.is_some()
                && record.roles.get(&Role::Steward) == roll.genesis.as_ref()
                && !wanted.contains(&Role::Steward)
                && standing == Standing::Member;
            let mut bodies = Vec::new();
            // Standing is public (an admission); name and constituency are personal data, each
            // its own members-lane op. Roles are kept when the standing stays "member" and
            // dropped for a guest.
            if (standing == Standing::Guest) != was_guest || founder_steps_down {
                // A member made a guest is removed, with the cuts a removal states, then
                // admitted as a guest: what their devices write without following the change
                // (a ballot back-dated to before it, or cast on a laptop that had not heard)
                // is beyond the cut and counts for nothing, as after a removal. A guest admission
                // alone cuts nothing, and a member-lane op not following it would still count.
                if standing == Standing::Guest || founder_steps_down {
                    bodies.push(Body::Remove(Remove {
                        member,
                        cuts: member_cuts(replica, roll, &member),
                    }));
                }
                bodies.push(Body::Admit(Admit { member, standing }));
            }
            // What the roll already says is not written again: an update that changes nothing
            // writes no op.
            if let Some(name) = update.name.as_ref().filter(|n| **n != record.name) {
                bodies.push(Body::SetName(SetName {
                    member,
                    name: name.clone(),
                }));
            }
            let constituency = update
                .constituency
                .clone()
                .map(|c| c.map(|c| as_on_roll(roll, c)));
            if let Some(constituency) = constituency.as_ref().filter(|c| **c != record.constituency)
            {
                bodies.push(Body::SetConstituency(SetConstituency {
                    member,
                    constituency: constituency.clone(),
                }));
            }
            if standing == Standing::Member {
                let held: Vec<Role> = if was_guest || founder_steps_down {
                    Vec::new()
                } else {
                    record.roles.keys().copied().collect()
                };
                for role in &wanted {
                    if !held.contains(role) {
                        bodies.push(Body::Grant(RoleChange {
                            member,
                            role: *role,
                        }));
                    }
                }
                for role in &held {
                    if !wanted.contains(role) {
                        // With the cut of what this node holds of the member's devices, so
                        // that ops resting on the role that do not follow the revocation, and
                        // come after what this node has seen, do not count.
                        bodies.push(Body::Revoke(RevokeRole {
                            member,
                            role: *role,
                            cuts: Some(member_cuts(replica, roll, &member)),
                        }));
                    }
                }
            }
            Ok(bodies)
        })
    }

    /// Removes a member, accepting their devices' ops up to what this node holds. Removing the
    /// last steward is refused.
    pub fn remove_member(
        &self,
        hub: &HubId,
        signer: &Signer,
        member: PublicKey,
    ) -> Result<Vec<OpId>, NodeError> {
        self.write_with(hub, signer, |replica, roll| {
            if roll
                .member(&member)
                .is_none_or(|r| r.status == Status::Removed)
            {
                return Err(NodeError::NotOnRoll(member.to_string()));
            }
            // (Asked by someone who may not change the roll, the rules' own refusal says why.)
            if roll.is_steward(&member)
                && stewards(roll) <= 1
                && roll.is_steward(&signer.member_id())
            {
                return Err(NodeError::LastSteward(member.to_string()));
            }
            let cuts = member_cuts(replica, roll, &member);
            Ok(vec![Body::Remove(Remove { member, cuts })])
        })
    }

    /// Revokes a certified device (lost, stolen, or left on a copied data directory): the
    /// member themself or a steward. Its ops up to what this node holds stay; later ones that do
    /// not follow the revocation count for nothing. Returns the device's member and the op.
    pub fn revoke_device(
        &self,
        hub: &HubId,
        signer: &Signer,
        device: PublicKey,
    ) -> Result<(PublicKey, Vec<OpId>), NodeError> {
        if device == signer.device.public() {
            return Err(NodeError::RevokingOwnDevice(device.to_string()));
        }
        let mut member = None;
        let ops = self.write_with(hub, signer, |replica, roll| {
            let record = roll
                .devices
                .get(&device)
                .ok_or_else(|| NodeError::UnknownDevice(device.to_string()))?;
            if record.revoked {
                return Err(NodeError::DeviceRevoked(device.to_string()));
            }
            member = Some(record.member);
            Ok(vec![Body::RevokeDevice(moot_state::body::RevokeDevice {
                device,
                cut: replica.lane_cut(&device),
            })])
        })?;
        let member = member.ok_or_else(|| NodeError::UnknownDevice(device.to_string()))?;
        Ok((member, ops))
    }

    /// The roll of a hub: from the stored roll view when it is current, otherwise derived from
    /// the ops (and the view refreshed).
    pub fn members(&self, hub: &HubId) -> Result<Vec<MemberInfo>, NodeError> {
        Ok(self.roll_view(hub)?.members)
    }

    /// The roll view: from the store when it is current, otherwise derived from the ops (and
    /// stored again).
    fn roll_view(&self, hub: &HubId) -> Result<RollView, NodeError> {
        let store = self.store()?;
        let op_count = store.op_count(hub)?;
        if let Some(stamp) = self.roll_stamp(hub)?
            && stamp.op_count == op_count
            && let Some(bytes) = self.view(hub, ROLL_VIEW)?
            && let Ok(view) = postcard::from_bytes::<RollView>(&bytes)
            && view.roll_ops == stamp.roll_ops
        {
            return Ok(view);
        }
        self.with_read_replica(hub, |replica| self.write_view(hub, replica))
    }

    /// Stores a derived view, sealed with a checksum: the first 8 bytes of SHA-256 of the
    /// view, after it. A view is a cache: one whose bytes changed on disk is derived again
    /// from the ops, never believed.
    pub(crate) fn put_view(&self, hub: &HubId, name: &str, view: &[u8]) -> Result<(), NodeError> {
        self.store()?.put_view(hub, name, &seal(view))?;
        Ok(())
    }

    /// [`Node::put_view`] for several views, in one transaction.
    pub(crate) fn put_views(
        &self,
        hub: &HubId,
        views: &[(String, Vec<u8>)],
    ) -> Result<(), NodeError> {
        let sealed: Vec<(String, Vec<u8>)> = views
            .iter()
            .map(|(name, view)| (name.clone(), seal(view)))
            .collect();
        self.store()?.put_views(hub, &sealed)?;
        Ok(())
    }

    /// A derived view, if stored and its checksum holds.
    pub(crate) fn view(&self, hub: &HubId, name: &str) -> Result<Option<Vec<u8>>, NodeError> {
        let Some(mut sealed) = self.store()?.view(hub, name)? else {
            return Ok(None);
        };
        let Some(at) = sealed.len().checked_sub(VIEW_SEAL) else {
            return Ok(None);
        };
        let (view, seal) = sealed.split_at(at);
        if seal != view_seal(view) {
            return Ok(None);
        }
        sealed.truncate(at);
        Ok(Some(sealed))
    }

    fn roll_stamp(&self, hub: &HubId) -> Result<Option<RollStamp>, NodeError> {
        Ok(self
            .view(hub, ROLL_STAMP)?
            .and_then(|bytes| postcard::from_bytes::<RollStamp>(&bytes).ok()))
    }

    /// Brings the hub's views up to date with `replica` (just written to): the roll view is
    /// derived again only when the replica holds roll ops the stored view was not made from
    /// (ballots and other ops leave it as it is: only its stamp moves on); the poll views
    /// always.
    fn refresh_view(&self, hub: &HubId, replica: &mut Replica) -> Result<(), NodeError> {
        let counts = polls::count_polls(replica)?;
        self.refresh_view_counted(hub, replica, counts)
    }

    /// [`Node::refresh_view`] with the polls counted already (ahead, while the last ops were
    /// being stored). Every view and the stamp are stored in one transaction.
    fn refresh_view_counted(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        counts: polls::PollCounts,
    ) -> Result<(), NodeError> {
        let roll_ops = replica.roll_op_count() as u64;
        if self
            .roll_stamp(hub)?
            .is_some_and(|s| s.roll_ops == roll_ops)
        {
            let op_count = self.store()?.op_count(hub)?;
            let mut views = Self::poll_views(&counts, op_count)?;
            views.push(roll_stamp_view(op_count, roll_ops)?);
            return self.put_views(hub, &views);
        }
        self.write_view_bytes(hub, replica, counts).map(drop)
    }

    /// Derives the roll view from `replica` and stores it (with the poll views).
    fn write_view(&self, hub: &HubId, replica: &mut Replica) -> Result<RollView, NodeError> {
        let counts = polls::count_polls(replica)?;
        let bytes = self.write_view_bytes(hub, replica, counts)?;
        postcard::from_bytes(&bytes).map_err(|e| NodeError::Corrupt(e.to_string()))
    }

    /// Derives the roll view from `replica` with the polls counted already; stores the roll
    /// view, the poll views and the stamp in one transaction, and returns the roll view's bytes.
    fn write_view_bytes(
        &self,
        hub: &HubId,
        replica: &mut Replica,
        counts: polls::PollCounts,
    ) -> Result<Vec<u8>, NodeError> {
        let roll = replica.roll();
        // The store's count (what `members` compares with): it also counts ops kept as
        // evidence but not loaded (refused after an upgrade).
        let op_count = self.store()?.op_count(hub)?;
        let roll_ops = replica.roll_op_count() as u64;
        let bytes = postcard::to_allocvec(&RollViewOf::new(&roll, op_count, roll_ops))
            .map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let mut views = vec![(ROLL_VIEW.to_string(), bytes)];
        views.extend(Self::poll_views(&counts, op_count)?);
        // The stamp names only views stored with it.
        views.push(roll_stamp_view(op_count, roll_ops)?);
        self.put_views(hub, &views)?;
        Ok(views
            .into_iter()
            .next()
            .map(|(_, bytes)| bytes)
            .unwrap_or_default())
    }

    /// The name of a hub.
    pub fn hub_name(&self, hub: &HubId) -> Result<String, NodeError> {
        for (id, bytes) in self.store()?.hubs()? {
            if id == *hub {
                return self.shown_name(hub, &bytes);
            }
        }
        Err(NodeError::UnknownHub(*hub))
    }

    /// A hub's recorded name; for a hub recorded before its join completed (a join cut short
    /// by Ctrl-C or a crash leaves the placeholder), the name its genesis gives, once held.
    fn shown_name(&self, hub: &HubId, record: &[u8]) -> Result<String, NodeError> {
        let name = hub_record_name(record)?;
        if name != serve::JOINING_NAME {
            return Ok(name);
        }
        Ok(self
            .genesis_name(hub)?
            .and_then(|n| clean_text("hub name", &n).ok())
            .unwrap_or(name))
    }

    /// The name a hub's genesis gives it, if the genesis is held.
    pub(crate) fn genesis_name(&self, hub: &HubId) -> Result<Option<String>, NodeError> {
        let first = self.store()?.load_from(hub, 0, 1)?;
        Ok(first
            .first()
            .and_then(|(_, op, _)| match Body::decode(op.kind(), op.body()) {
                Ok(Body::Found(found)) => Some(found.name),
                _ => None,
            }))
    }
}

/// A constituency as the roll already spells it, if one there differs from `name` only in what
/// a reader cannot see (case, invisible characters, compatibility forms: `moot_text::fold`).
/// Each constituency has a society and an electorate of its own: `Nor\u{200b}th` must not
/// quietly make a second North.
fn as_on_roll(roll: &Roll, name: String) -> String {
    let key = moot_text::fold(&name);
    roll.members
        .values()
        .filter_map(|r| r.constituency.as_ref())
        .filter(|c| moot_text::fold(c) == key)
        .min()
        .cloned()
        .unwrap_or(name)
}

/// A removal's cuts: each of the member's devices' ops are accepted up to what this node holds.
fn member_cuts(
    replica: &Replica,
    roll: &Roll,
    member: &PublicKey,
) -> Vec<(PublicKey, moot_state::body::LaneCut)> {
    roll.devices
        .iter()
        .filter(|(_, d)| d.member == *member)
        .map(|(device, _)| (*device, replica.lane_cut(device)))
        .collect()
}

/// The config key recording the highest seq this node wrote with `device` in `hub`'s `lane`.
fn wrote_key(hub: &HubId, device: &PublicKey, lane: Lane) -> String {
    format!("wrote/{hub}/{device}/{}", lane.as_str())
}

fn hub_record_name(bytes: &[u8]) -> Result<String, NodeError> {
    postcard::from_bytes::<HubRecord>(bytes)
        .map(|r| r.name)
        .map_err(|_| NodeError::Corrupt("hub".into()))
}

/// Makes a member key and its device key, sealed, and adds them to `keys` (not yet saved).
fn make_key(
    keys: &mut KeyFile,
    name: &str,
    passphrase: Option<&str>,
) -> Result<PublicKey, NodeError> {
    let member = SecretKey::from_seed(random()?);
    let device = SecretKey::from_seed(random()?);
    add_key(keys, name, passphrase, member, device)
}

fn add_key(
    keys: &mut KeyFile,
    name: &str,
    passphrase: Option<&str>,
    member: SecretKey,
    device: SecretKey,
) -> Result<PublicKey, NodeError> {
    let seal = |key: &SecretKey| -> Result<Vec<u8>, NodeError> {
        keystore::seal(key, passphrase, random()?, random()?).map_err(|source| {
            NodeError::Keystore {
                member: member.public().to_string(),
                source,
            }
        })
    };
    keys.entries.push(KeyEntry {
        member: member.public().to_bytes(),
        name: name.to_string(),
        member_sealed: seal(&member)?,
        device_sealed: seal(&device)?,
    });
    Ok(member.public())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use moot_state::{MemberRecord, Role, Status};

    /// The roll view stored from the borrowed roll is byte for byte the [`RollView`] built
    /// member by member, which is what readers decode.
    #[test]
    fn the_borrowed_roll_view_stores_the_same_bytes() {
        let mut roll = moot_state::Roll::default();
        let statuses = [Status::Member, Status::Guest, Status::Removed];
        for i in 0..40u8 {
            let id = SecretKey::from_seed([i; 32]).public();
            let mut roles = std::collections::BTreeMap::new();
            if i % 3 == 0 {
                roles.insert(Role::Steward, OpId([i; 32]));
            }
            if i % 4 == 0 {
                roles.insert(Role::Coordinator, OpId([i; 32]));
                roles.insert(Role::Convener, OpId([i; 32]));
            }
            roll.members.insert(
                id,
                MemberRecord {
                    name: format!("member \u{e9}\u{1f600} {i}"),
                    public_name: None,
                    status: statuses[usize::from(i % 3)],
                    admitted_by: OpId([i; 32]),
                    roles,
                    constituency: (i % 2 == 0).then(|| format!("ward {i}")),
                    contribution: None,
                },
            );
            if i == 5 {
                roll.founder = Some(id);
            }
        }
        roll.members_only = true;
        let owned = RollView {
            op_count: 1_234,
            roll_ops: 56,
            founder: roll.founder.map(|f| f.to_string()),
            members: roll
                .members
                .iter()
                .map(|(id, record)| MemberInfo {
                    member_id: id.to_string(),
                    name: record.name.clone(),
                    roles: record
                        .roles
                        .keys()
                        .map(|r| r.as_str().to_string())
                        .collect(),
                    constituency: record.constituency.clone(),
                    status: record.status.as_str().to_string(),
                })
                .collect(),
            members_only: roll.members_only,
        };
        let expected = postcard::to_allocvec(&owned).unwrap();
        let stored = postcard::to_allocvec(&RollViewOf::new(&roll, 1_234, 56)).unwrap();
        assert_eq!(stored, expected);
        let read: RollView = postcard::from_bytes(&stored).unwrap();
        assert_eq!(read.members, owned.members);
        assert_eq!(read.members.len(), 40);
    }
}
