//! The mutual-aid board on a node: writing its ops, contact details sealed to the matched
//! member (`moot-aid`), the board as the CLI shows it, and matching.
//!
//! A pledge carries the pledger's contact sealed to the item's author; the author answers
//! with their own contact sealed to the pledger (`aid reply`). Sealed contacts are opened
//! here only with a member key this node holds: every other member's node holds the same
//! bytes and can read nothing but their length.

use moot_crypto::{HubId, OpId};
use moot_state::aid::{AidStatus, ItemInfo};
use moot_state::body::{
    AidChange, AidContact, AidDetails, AidItem, AidKind, AidPledge, AidUnpledge, AidUpdate,
    Forwarded,
};
use moot_state::{Body, Lane, Replica};
use serde::{Deserialize, Serialize};

use crate::deliberation::clean_prose;
use crate::polls::{PollWrite, format_utc};
use crate::{Node, NodeError, Signer, clean_text};

/// An offer or request as the CLI shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemView {
    /// Its id.
    pub item_id: String,
    /// `offer` or `request`.
    pub kind: String,
    /// Who posted it.
    pub author: String,
    /// Guests may read it.
    pub public: bool,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Area.
    pub area: Option<String>,
    /// Advisory start, UTC.
    pub from: Option<String>,
    /// Advisory end, UTC.
    pub until: Option<String>,
    /// How many.
    pub quantity: Option<u32>,
    /// `open`, `pledged`, `fulfilled`, `withdrawn` or `expired`.
    pub status: String,
    /// Pledges.
    pub pledges: Vec<PledgeView>,
    /// The gift this one passes on.
    pub forwarded_from: Option<String>,
    /// Gifts passing this one on.
    pub forwarded_to: Vec<String>,
    /// Flags for readers.
    pub flags: Vec<String>,
}

/// A pledge as the CLI shows it. Contacts appear only to the member they were sealed to,
/// when this node holds that member's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PledgeView {
    /// Its id.
    pub pledge_id: String,
    /// The pledger.
    pub pledger: String,
    /// How many.
    pub quantity: Option<u32>,
    /// The pledger's note.
    pub note: String,
    /// Withdrawn by the pledger.
    pub withdrawn: bool,
    /// The pledger's contact, if sealed to a member whose key this node holds.
    pub pledger_contact: Option<String>,
    /// The item author's contact, if sealed to a member whose key this node holds.
    pub author_contact: Option<String>,
}

/// A suggested counterpart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchView {
    /// The item.
    pub item: ItemView,
    /// Higher is better.
    pub score: u32,
    /// Why.
    pub reasons: Vec<String>,
}

/// What `aid list` filters on.
#[derive(Debug, Clone, Default)]
pub struct AidFilter {
    /// Offers or requests only.
    pub kind: Option<AidKind>,
    /// This category (folded).
    pub category: Option<String>,
    /// This area (folded).
    pub area: Option<String>,
    /// This status.
    pub status: Option<AidStatus>,
}

/// What a new item says, from the user.
#[derive(Debug, Clone, Default)]
pub struct ItemSpec {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Category.
    pub category: String,
    /// Area.
    pub area: Option<String>,
    /// Advisory start (seconds since the Unix epoch).
    pub from: Option<u64>,
    /// Advisory end.
    pub until: Option<u64>,
    /// How many.
    pub quantity: Option<u32>,
    /// Guests may read it.
    pub public: bool,
}

fn details(spec: &ItemSpec) -> Result<AidDetails, NodeError> {
    let area = match &spec.area {
        Some(a) => crate::clean_optional("area", a)?,
        None => None,
    };
    if let (Some(from), Some(until)) = (spec.from, spec.until)
        && until < from
    {
        return Err(NodeError::BadText {
            what: "time window",
            reason: "ends before it starts".into(),
        });
    }
    Ok(AidDetails {
        title: clean_text("title", &spec.title)?,
        description: clean_prose("description", &spec.description)?,
        category: clean_text("category", &spec.category)?,
        area,
        from: spec.from,
        until: spec.until,
        quantity: spec.quantity,
    })
}

fn held_item(replica: &mut Replica, id: &OpId) -> Result<ItemInfo, NodeError> {
    replica
        .aid_item(id)
        .ok_or_else(|| NodeError::NoSuchItem(id.to_string()))
}

fn seal_contact(
    hub: &HubId,
    to: &moot_crypto::PublicKey,
    about: &OpId,
    contact: &str,
) -> Result<Vec<u8>, NodeError> {
    if contact.is_empty() {
        return Ok(Vec::new());
    }
    let seed: [u8; 32] = crate::random()?;
    moot_aid::seal(
        to,
        &moot_aid::contact_context(&hub.0, &about.0),
        contact.as_bytes(),
        seed,
    )
    .map_err(|e| NodeError::BadText {
        what: "contact",
        reason: e.to_string(),
    })
}

fn matching_view(item: &ItemInfo) -> moot_aid::ItemView {
    moot_aid::ItemView {
        id: item.id.0,
        kind: match item.kind {
            AidKind::Offer => moot_aid::ItemKind::Offer,
            AidKind::Request => moot_aid::ItemKind::Request,
        },
        status: match item.status {
            AidStatus::Open => moot_aid::Status::Open,
            AidStatus::Pledged => moot_aid::Status::Pledged,
            AidStatus::Fulfilled => moot_aid::Status::Fulfilled,
            AidStatus::Withdrawn => moot_aid::Status::Withdrawn,
            AidStatus::Expired => moot_aid::Status::Expired,
        },
        category: item.details.category.clone(),
        area: item.details.area.clone(),
        window: moot_aid::Window {
            from: item.details.from,
            until: item.details.until,
        },
        quantity: item.details.quantity,
        pledged: item
            .pledges
            .iter()
            .filter(|p| !p.withdrawn)
            .map(|p| p.quantity.unwrap_or(1))
            .fold(0u32, u32::saturating_add),
        author: item.author.to_bytes(),
    }
}

impl Node {
    /// Posts an offer or a request (or passes a fulfilled gift on, `forwarded`) → its id.
    pub fn post_item(
        &self,
        hub: &HubId,
        signer: &Signer,
        kind: AidKind,
        spec: &ItemSpec,
        forwarded: Option<OpId>,
    ) -> Result<OpId, NodeError> {
        let details = details(spec)?;
        let mut lane = if spec.public {
            Lane::Public
        } else {
            Lane::Members
        };
        self.write_poll_op(hub, signer, |replica| {
            let (forwarded, refs) = match forwarded {
                Some(item) => {
                    let source = held_item(replica, &item)?;
                    let fulfilment = source
                        .fulfilment
                        .ok_or_else(|| NodeError::NotFulfilled(item.to_string()))?;
                    // A public gift cannot name a members-lane one.
                    if source.lane == Lane::Members {
                        lane = Lane::Members;
                    }
                    (Some(Forwarded { item, fulfilment }), vec![item, fulfilment])
                }
                None => (None, Vec::new()),
            };
            Ok(PollWrite {
                body: Body::AidItem(Box::new(AidItem {
                    kind,
                    details,
                    forwarded,
                })),
                lane,
                refs,
                covering: false,
            })
        })
    }

    /// Changes an item (its author or a coordinator) → the update's id.
    pub fn update_item(
        &self,
        hub: &HubId,
        signer: &Signer,
        item: &OpId,
        change: ItemChange,
    ) -> Result<OpId, NodeError> {
        let item = *item;
        self.write_poll_op(hub, signer, |replica| {
            let info = held_item(replica, &item)?;
            // A change the status rules out would be written and then count for nothing (a
            // fulfilled item stays fulfilled, a withdrawn one withdrawn): refused here.
            let (name, ruled_out) = match (&change, info.status) {
                (ItemChange::Withdraw, AidStatus::Fulfilled | AidStatus::Withdrawn) => {
                    ("withdrawn", true)
                }
                (
                    ItemChange::Expire,
                    AidStatus::Fulfilled | AidStatus::Withdrawn | AidStatus::Expired,
                ) => ("expired", true),
                (ItemChange::Fulfil(_), AidStatus::Fulfilled) => ("fulfilled again", true),
                _ => ("", false),
            };
            if ruled_out {
                return Err(NodeError::AidClosed {
                    what: format!("item {item}"),
                    status: info.status.as_str(),
                    change: name,
                });
            }
            let mut refs = vec![item];
            let change = match change {
                ItemChange::Edit(spec) => AidChange::Edit {
                    revision: replica.aid_revision(&item).unwrap_or(0).saturating_add(1),
                    details: details(&spec)?,
                },
                ItemChange::Withdraw => AidChange::Withdraw,
                ItemChange::Expire => AidChange::Expire,
                ItemChange::Fulfil(pledge) => {
                    let active: Vec<OpId> = info
                        .pledges
                        .iter()
                        .filter(|p| !p.withdrawn)
                        .map(|p| p.id)
                        .collect();
                    let pledge = match pledge {
                        Some(p) if info.pledges.iter().any(|x| x.id == p) => p,
                        Some(p) => return Err(NodeError::NoSuchPledge(p.to_string())),
                        None if active.len() == 1 => active[0],
                        None => {
                            return Err(NodeError::BadText {
                                what: "item",
                                reason: format!(
                                    "has {} pledges standing: name the one that met it with \
                                     --pledge",
                                    active.len()
                                ),
                            });
                        }
                    };
                    refs.push(pledge);
                    AidChange::Fulfil { pledge }
                }
            };
            Ok(PollWrite {
                body: Body::AidUpdate(Box::new(AidUpdate { item, change })),
                lane: info.lane,
                refs,
                covering: false,
            })
        })
    }

    /// Pledges to meet an item, with the signer's contact sealed to its author → the
    /// pledge's id.
    pub fn pledge(
        &self,
        hub: &HubId,
        signer: &Signer,
        item: &OpId,
        quantity: Option<u32>,
        note: &str,
        contact: &str,
    ) -> Result<OpId, NodeError> {
        let note = clean_prose("note", note)?;
        let contact = moot_text::normalize(contact);
        let item = *item;
        self.write_poll_op(hub, signer, |replica| {
            let info = held_item(replica, &item)?;
            let contact = seal_contact(hub, &info.author, &item, &contact)?;
            Ok(PollWrite {
                body: Body::AidPledge(AidPledge {
                    item,
                    quantity,
                    note,
                    contact,
                }),
                lane: info.lane,
                refs: vec![item],
                covering: false,
            })
        })
    }

    /// Withdraws the signer's pledge → the withdrawal's id.
    pub fn unpledge(&self, hub: &HubId, signer: &Signer, pledge: &OpId) -> Result<OpId, NodeError> {
        let pledge = *pledge;
        self.write_poll_op(hub, signer, |replica| {
            let item = replica
                .pledge_item(&pledge)
                .ok_or_else(|| NodeError::NoSuchPledge(pledge.to_string()))?;
            let info = held_item(replica, &item)?;
            // The pledge that met the item stays: withdrawing it would count for nothing.
            if info.fulfilled_by == Some(pledge) {
                return Err(NodeError::AidClosed {
                    what: format!("pledge {pledge}, which met item {item},"),
                    status: "fulfilled",
                    change: "withdrawn",
                });
            }
            Ok(PollWrite {
                body: Body::AidUnpledge(AidUnpledge { pledge }),
                lane: info.lane,
                refs: vec![pledge],
                covering: false,
            })
        })
    }

    /// Answers a pledge with the signer's contact, sealed to the pledger → the reply's id.
    pub fn reply_to_pledge(
        &self,
        hub: &HubId,
        signer: &Signer,
        pledge: &OpId,
        contact: &str,
    ) -> Result<OpId, NodeError> {
        let contact = moot_text::normalize(contact);
        if contact.is_empty() {
            return Err(NodeError::BadText {
                what: "contact",
                reason: "is empty".into(),
            });
        }
        let pledge = *pledge;
        self.write_poll_op(hub, signer, |replica| {
            let item = replica
                .pledge_item(&pledge)
                .ok_or_else(|| NodeError::NoSuchPledge(pledge.to_string()))?;
            let info = held_item(replica, &item)?;
            let pledger = info
                .pledges
                .iter()
                .find(|p| p.id == pledge)
                .map(|p| p.pledger)
                .ok_or_else(|| NodeError::NoSuchPledge(pledge.to_string()))?;
            let contact = seal_contact(hub, &pledger, &pledge, &contact)?;
            Ok(PollWrite {
                body: Body::AidContact(AidContact { pledge, contact }),
                lane: info.lane,
                refs: vec![pledge],
                covering: false,
            })
        })
    }

    /// The item an id names, or the item of the pledge it names.
    pub fn item_or_pledge(&self, hub: &HubId, id: &OpId) -> Result<ItemOrPledge, NodeError> {
        self.with_read_replica(hub, |replica| {
            if replica.aid_item_ids().contains(id) {
                return Ok(ItemOrPledge::Item);
            }
            if replica.pledge_item(id).is_some() {
                return Ok(ItemOrPledge::Pledge);
            }
            Err(NodeError::NoSuchItem(id.to_string()))
        })
    }

    /// The board, filtered, ascending by id; contacts opened with the member keys this node
    /// holds unsealed in `readers`.
    pub fn aid_list(
        &self,
        hub: &HubId,
        filter: &AidFilter,
        readers: &[Signer],
    ) -> Result<Vec<ItemView>, NodeError> {
        self.with_read_replica(hub, |replica| {
            let category = filter.category.as_deref().map(moot_text::fold);
            let area = filter.area.as_deref().map(moot_text::fold);
            Ok(replica
                .aid_items()
                .iter()
                .filter(|i| filter.kind.is_none_or(|k| k == i.kind))
                .filter(|i| filter.status.is_none_or(|s| s == i.status))
                .filter(|i| {
                    category
                        .as_ref()
                        .is_none_or(|c| *c == moot_text::fold(&i.details.category))
                })
                .filter(|i| {
                    area.as_ref().is_none_or(|a| {
                        i.details
                            .area
                            .as_deref()
                            .is_some_and(|x| *a == moot_text::fold(x))
                    })
                })
                .map(|i| item_view(hub, i, readers))
                .collect())
        })
    }

    /// One item.
    pub fn aid_show(
        &self,
        hub: &HubId,
        item: &OpId,
        readers: &[Signer],
    ) -> Result<ItemView, NodeError> {
        self.with_read_replica(hub, |replica| {
            let info = held_item(replica, item)?;
            Ok(item_view(hub, &info, readers))
        })
    }

    /// Counterparts for an item, best first: requests an offer could meet, offers that could
    /// meet a request (see `moot_aid::matches`).
    pub fn aid_match(
        &self,
        hub: &HubId,
        item: &OpId,
        now: u64,
        limit: usize,
    ) -> Result<Vec<MatchView>, NodeError> {
        self.with_read_replica(hub, |replica| {
            let items = replica.aid_items();
            let target = items
                .iter()
                .find(|i| i.id == *item)
                .ok_or_else(|| NodeError::NoSuchItem(item.to_string()))?;
            let views: Vec<moot_aid::ItemView> = items.iter().map(matching_view).collect();
            let found = moot_aid::matches(&matching_view(target), &views, now, limit);
            Ok(found
                .into_iter()
                .filter_map(|m| {
                    let info = items.iter().find(|i| i.id.0 == m.id)?;
                    Some(MatchView {
                        item: item_view(hub, info, &[]),
                        score: m.score,
                        reasons: m.reasons.iter().map(|r| format!("{r:?}")).collect(),
                    })
                })
                .collect())
        })
    }
}

/// A change to an item.
#[derive(Debug, Clone)]
pub enum ItemChange {
    /// New details.
    Edit(ItemSpec),
    /// Met by this pledge (or the only one standing).
    Fulfil(Option<OpId>),
    /// Taken off the board.
    Withdraw,
    /// No longer current.
    Expire,
}

/// What an id names on the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemOrPledge {
    /// An offer or request.
    Item,
    /// A pledge.
    Pledge,
}

fn open_contact(hub: &HubId, sealed: &[u8], about: &OpId, readers: &[Signer]) -> Option<String> {
    if sealed.is_empty() {
        return None;
    }
    let context = moot_aid::contact_context(&hub.0, &about.0);
    readers.iter().find_map(|r| {
        moot_aid::open(&r.member, &context, sealed)
            .ok()
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    })
}

fn item_view(hub: &HubId, i: &ItemInfo, readers: &[Signer]) -> ItemView {
    ItemView {
        item_id: i.id.to_string(),
        kind: i.kind.as_str().to_string(),
        author: i.author.to_string(),
        public: i.lane == Lane::Public,
        title: i.details.title.clone(),
        description: i.details.description.clone(),
        category: i.details.category.clone(),
        area: i.details.area.clone(),
        from: i.details.from.map(format_utc),
        until: i.details.until.map(format_utc),
        quantity: i.details.quantity,
        status: i.status.as_str().to_string(),
        pledges: i
            .pledges
            .iter()
            .map(|p| PledgeView {
                pledge_id: p.id.to_string(),
                pledger: p.pledger.to_string(),
                quantity: p.quantity,
                note: p.note.clone(),
                withdrawn: p.withdrawn,
                pledger_contact: open_contact(hub, &p.contact, &i.id, readers),
                author_contact: p
                    .replies
                    .iter()
                    .find_map(|r| open_contact(hub, r, &p.id, readers)),
            })
            .collect(),
        forwarded_from: i.forwarded_from.map(|f| f.to_string()),
        forwarded_to: i.forwarded_to.iter().map(|f| f.to_string()).collect(),
        flags: i.flags.clone(),
    }
}
