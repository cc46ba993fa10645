//! The node: one data directory holding the redb store (ops, keystore, config), the member keys
//! held on this machine, and the hubs it belongs to. This is the API the CLI (and later the web
//! UI and the sync loop) call; it wires `moot-state` (pure validation) to `moot-store` (disk).
//!
//! Keys: `init` creates the node's own member key and its device key. `new_member_key` adds
//! another member key held on this node (members voting in turn on the branch laptop); each
//! gets its own device key here, sealed under that member's passphrase when one is given, so
//! only its holder can act as that member.

use std::path::{Path, PathBuf};

use moot_crypto::keystore::{self, KeystoreError};
use moot_crypto::{HubId, OpId, PublicKey, SecretKey};
use moot_state::body::{
    Admit, Certificate, CertifyDevice, Found, LaneCut, PROTOCOL, Remove, RoleChange,
    SetConstituency, SetName, hub_id,
};
use moot_state::{Body, Lane, Limits, Reason, Replica, Role, Standing};
use moot_store::{Store, StoreError};
use serde::{Deserialize, Serialize};

/// The store file inside the data directory.
pub const STORE_FILE: &str = "moot.redb";
const NODE_MEMBER: &str = "node_member";
const DEFAULT_HUB: &str = "default_hub";

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
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// `init` was not run yet.
    #[error("this node has no identity yet: run `moot init --name NAME`")]
    NotInitialised,
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
    #[error("no hub yet: create one with `moot hub create NAME` or join one")]
    NoHub,
    /// The hub is not one this node belongs to.
    #[error("hub {0} is not known on this node")]
    UnknownHub(HubId),
    /// The op was refused by validation.
    #[error("refused: {0}")]
    Refused(Reason),
    /// The OS random generator failed.
    #[error("no randomness from the OS: {0}")]
    Random(String),
    /// A stored record does not decode.
    #[error("stored record {0} is corrupt")]
    Corrupt(String),
}

/// This node's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// The node's own member id.
    pub member_id: String,
    /// The node's libp2p peer id (its device key).
    pub node_id: String,
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
}

/// A keystore entry: a member key and this node's device key for it.
#[derive(Serialize, Deserialize)]
struct KeyEntry {
    name: String,
    member: Vec<u8>,
    device: Vec<u8>,
}

/// The roll view: a derived, rebuildable copy of the roll for fast reads, valid while the hub
/// still holds `op_count` ops (ops are only ever added).
#[derive(Serialize, Deserialize)]
struct RollView {
    op_count: u64,
    members: Vec<MemberInfo>,
}

const ROLL_VIEW: &str = "roll";

/// Hub metadata kept in the store.
#[derive(Serialize, Deserialize)]
struct HubRecord {
    name: String,
}

/// A member key and its device key on this node, unsealed.
pub struct Signer {
    member: SecretKey,
    device: SecretKey,
}

impl Signer {
    /// The member id.
    pub fn member_id(&self) -> PublicKey {
        self.member.public()
    }
}

fn random<const N: usize>() -> Result<[u8; N], NodeError> {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).map_err(|e| NodeError::Random(e.to_string()))?;
    Ok(bytes)
}

fn entry_name(member: &PublicKey) -> String {
    format!("member/{member}")
}

/// A node's data directory, opened.
pub struct Node {
    store: Store,
}

impl Node {
    /// Opens (creating if needed) the data directory.
    pub fn open(dir: &Path) -> Result<Node, NodeError> {
        std::fs::create_dir_all(dir).map_err(|source| NodeError::DataDir {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(Node {
            store: Store::open(&dir.join(STORE_FILE))?,
        })
    }

    /// The store (for tools and tests).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Creates this node's own member key and device key.
    pub fn init(&self, name: &str, passphrase: Option<&str>) -> Result<Identity, NodeError> {
        if let Some(existing) = self.node_member()? {
            return Err(NodeError::AlreadyInitialised(existing.to_string()));
        }
        let member = self.create_key(name, passphrase)?;
        self.store.put_config(NODE_MEMBER, &member.to_bytes())?;
        self.identity()
    }

    /// Adds another member key held on this node.
    pub fn new_member_key(
        &self,
        name: &str,
        passphrase: Option<&str>,
    ) -> Result<PublicKey, NodeError> {
        self.node_member()?.ok_or(NodeError::NotInitialised)?;
        self.create_key(name, passphrase)
    }

    fn create_key(&self, name: &str, passphrase: Option<&str>) -> Result<PublicKey, NodeError> {
        let member = SecretKey::from_seed(random()?);
        let device = SecretKey::from_seed(random()?);
        let seal = |key: &SecretKey| -> Result<Vec<u8>, NodeError> {
            keystore::seal(key, passphrase, random()?, random()?).map_err(|source| {
                NodeError::Keystore {
                    member: member.public().to_string(),
                    source,
                }
            })
        };
        let entry = KeyEntry {
            name: name.to_string(),
            member: seal(&member)?,
            device: seal(&device)?,
        };
        let bytes = postcard::to_allocvec(&entry).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.store.put_key(&entry_name(&member.public()), &bytes)?;
        Ok(member.public())
    }

    fn node_member(&self) -> Result<Option<PublicKey>, NodeError> {
        match self.store.config(NODE_MEMBER)? {
            None => Ok(None),
            Some(bytes) => {
                let bytes: [u8; 32] = bytes
                    .as_slice()
                    .try_into()
                    .map_err(|_| NodeError::Corrupt(NODE_MEMBER.into()))?;
                PublicKey::from_bytes(&bytes)
                    .map(Some)
                    .map_err(|_| NodeError::Corrupt(NODE_MEMBER.into()))
            }
        }
    }

    fn entry(&self, member: &PublicKey) -> Result<KeyEntry, NodeError> {
        let bytes = self
            .store
            .key(&entry_name(member))?
            .ok_or_else(|| NodeError::UnknownKey(member.to_string()))?;
        postcard::from_bytes(&bytes).map_err(|_| NodeError::Corrupt(entry_name(member)))
    }

    /// The node's identity.
    pub fn identity(&self) -> Result<Identity, NodeError> {
        let member = self.node_member()?.ok_or(NodeError::NotInitialised)?;
        let entry = self.entry(&member)?;
        // The device key's public half is needed for the node id; a protected node key cannot
        // be opened without its passphrase, so its node id is derived when first unsealed.
        let node_id = match keystore::unseal(&entry.device, None) {
            Ok(device) => moot_net::peer_id(&device.public())
                .map(|p| p.to_string())
                .unwrap_or_default(),
            Err(_) => String::from("(protected)"),
        };
        Ok(Identity {
            member_id: member.to_string(),
            node_id,
            name: entry.name,
        })
    }

    /// Every member key held on this node.
    pub fn keys(&self) -> Result<Vec<KeyInfo>, NodeError> {
        let node = self.node_member()?;
        let mut out = Vec::new();
        for name in self.store.key_names()? {
            let Some(hex) = name.strip_prefix("member/") else {
                continue;
            };
            let member: PublicKey = hex.parse().map_err(|_| NodeError::Corrupt(name.clone()))?;
            let entry = self.entry(&member)?;
            out.push(KeyInfo {
                member_id: member.to_string(),
                name: entry.name,
                protected: keystore::is_encrypted(&entry.member),
                node: node == Some(member),
            });
        }
        Ok(out)
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
            member: unseal(&entry.member)?,
            device: unseal(&entry.device)?,
        })
    }

    /// The hub to act on: `explicit`, or the default one.
    pub fn hub(&self, explicit: Option<HubId>) -> Result<HubId, NodeError> {
        let hub = match explicit {
            Some(hub) => hub,
            None => {
                let bytes = self.store.config(DEFAULT_HUB)?.ok_or(NodeError::NoHub)?;
                HubId(
                    bytes
                        .as_slice()
                        .try_into()
                        .map_err(|_| NodeError::Corrupt(DEFAULT_HUB.into()))?,
                )
            }
        };
        if self.store.hubs()?.iter().any(|(h, _)| *h == hub) {
            Ok(hub)
        } else {
            Err(NodeError::UnknownHub(hub))
        }
    }

    /// Loads a hub's replica from the store.
    pub fn replica(&self, hub: &HubId) -> Result<Replica, NodeError> {
        let ops = self.store.load_ops(hub)?;
        let limits = Limits {
            max_pending: ops.len().max(Limits::default().max_pending),
            ..Limits::default()
        };
        let mut replica = Replica::new(*hub, limits);
        for op in ops {
            replica.insert_authentic(op);
        }
        Ok(replica)
    }

    /// Founds a hub with `signer` as founder and first steward; it becomes the default hub.
    pub fn create_hub(&self, name: &str, signer: &Signer) -> Result<HubId, NodeError> {
        let nonce: [u8; 16] = random()?;
        let founder = signer.member.public();
        let hub = hub_id(&founder, &nonce);
        let record = HubRecord {
            name: name.to_string(),
        };
        let bytes =
            postcard::to_allocvec(&record).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        let mut replica = Replica::new(hub, Limits::default());
        let body = Body::Found(Found {
            name: name.to_string(),
            founder,
            nonce,
            protocol: PROTOCOL,
            device_certificate: Certificate::issue(&signer.member, &hub, &signer.device.public()),
        });
        let mut ids = Vec::new();
        ids.push(
            replica
                .write(&signer.device, &body)
                .map_err(|r| NodeError::Refused(r.reason))?,
        );
        // The founder's name is personal data: it goes in the members lane.
        let name_op = Body::SetName(SetName {
            member: founder,
            name: self.entry(&founder)?.name,
        });
        ids.push(
            replica
                .write(&signer.device, &name_op)
                .map_err(|r| NodeError::Refused(r.reason))?,
        );
        self.persist(&replica, &ids)?;
        self.store.put_hub(&hub, &bytes)?;
        self.store.put_config(DEFAULT_HUB, &hub.0)?;
        Ok(hub)
    }

    fn persist(&self, replica: &Replica, ids: &[OpId]) -> Result<(), NodeError> {
        let ops = ids
            .iter()
            .map(|id| {
                replica.op(id).ok_or_else(|| {
                    NodeError::Corrupt(format!("written op {id} is not in the replica"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.store.put_ops(&replica.hub(), &ops)?;
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
        self.write_with(hub, signer, |_, _| bodies.to_vec())
    }

    /// [`Node::write`] with bodies built from the hub's current replica (loaded once).
    fn write_with(
        &self,
        hub: &HubId,
        signer: &Signer,
        build: impl FnOnce(&Replica, &moot_state::Roll) -> Vec<Body>,
    ) -> Result<Vec<OpId>, NodeError> {
        let mut replica = self.replica(hub)?;
        let roll = replica.roll();
        let bodies = build(&replica, &roll);
        let mut written = Vec::new();
        if roll.member_of(&signer.device.public()).is_none() {
            let certify = Body::CertifyDevice(CertifyDevice {
                member: signer.member.public(),
                device: signer.device.public(),
                certificate: Certificate::issue(&signer.member, hub, &signer.device.public()),
            });
            written.push(
                replica
                    .write(&signer.device, &certify)
                    .map_err(|r| NodeError::Refused(r.reason))?,
            );
        }
        for body in &bodies {
            written.push(
                replica
                    .write(&signer.device, body)
                    .map_err(|r| NodeError::Refused(r.reason))?,
            );
        }
        self.persist(&replica, &written)?;
        self.refresh_view(hub, replica)?;
        Ok(written)
    }

    /// Admits a member (or guest), with a role if asked.
    pub fn add_member(
        &self,
        hub: &HubId,
        signer: &Signer,
        member: PublicKey,
        name: &str,
        constituency: Option<String>,
        add_as: AddAs,
    ) -> Result<Vec<OpId>, NodeError> {
        let standing = if add_as == AddAs::Guest {
            Standing::Guest
        } else {
            Standing::Member
        };
        // The admission is public; name and constituency are personal data (members lane).
        let mut bodies = vec![
            Body::Admit(Admit { member, standing }),
            Body::SetName(SetName {
                member,
                name: name.to_string(),
            }),
        ];
        if let Some(constituency) = constituency {
            bodies.push(Body::SetConstituency(SetConstituency {
                member,
                constituency: Some(constituency),
            }));
        }
        let role = match add_as {
            AddAs::Steward => Some(Role::Steward),
            AddAs::Convener => Some(Role::Convener),
            _ => None,
        };
        if let Some(role) = role {
            bodies.push(Body::Grant(RoleChange { member, role }));
        }
        self.write(hub, signer, &bodies)
    }

    /// Removes a member, accepting their devices' ops up to what this node holds.
    pub fn remove_member(
        &self,
        hub: &HubId,
        signer: &Signer,
        member: PublicKey,
    ) -> Result<Vec<OpId>, NodeError> {
        self.write_with(hub, signer, |replica, roll| {
            // Accept each of their devices' ops up to what this node holds.
            let cuts = roll
                .devices
                .iter()
                .filter(|(_, d)| d.member == member)
                .map(|(device, _)| {
                    (
                        *device,
                        LaneCut {
                            public: replica.last_seq(device, Lane::Public),
                            members: replica.last_seq(device, Lane::Members),
                        },
                    )
                })
                .collect();
            vec![Body::Remove(Remove { member, cuts })]
        })
    }

    /// The roll of a hub: from the stored roll view when it is current, otherwise derived from
    /// the ops (and the view refreshed).
    pub fn members(&self, hub: &HubId) -> Result<Vec<MemberInfo>, NodeError> {
        let op_count = self.store.op_count(hub)?;
        if let Some(bytes) = self.store.view(hub, ROLL_VIEW)?
            && let Ok(view) = postcard::from_bytes::<RollView>(&bytes)
            && view.op_count == op_count
        {
            return Ok(view.members);
        }
        let replica = self.replica(hub)?;
        self.refresh_view(hub, replica)
    }

    fn refresh_view(
        &self,
        hub: &HubId,
        mut replica: Replica,
    ) -> Result<Vec<MemberInfo>, NodeError> {
        let roll = replica.roll();
        let members: Vec<MemberInfo> = roll
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
            .collect();
        let view = RollView {
            op_count: replica.len() as u64,
            members,
        };
        let bytes = postcard::to_allocvec(&view).map_err(|e| NodeError::Corrupt(e.to_string()))?;
        self.store.put_view(hub, ROLL_VIEW, &bytes)?;
        Ok(view.members)
    }

    /// The name of a hub.
    pub fn hub_name(&self, hub: &HubId) -> Result<String, NodeError> {
        for (id, bytes) in self.store.hubs()? {
            if id == *hub {
                let record: HubRecord =
                    postcard::from_bytes(&bytes).map_err(|_| NodeError::Corrupt("hub".into()))?;
                return Ok(record.name);
            }
        }
        Err(NodeError::UnknownHub(*hub))
    }
}
