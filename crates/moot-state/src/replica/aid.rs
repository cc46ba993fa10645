//! The mutual-aid board in the replica: the checks its ops get, the records kept, and the
//! derived board (see `crate::aid` for the rules).
//!
//! No aid op is a roll op: what an op is about (the item, the pledge, the fulfilment a passed-on
//! gift came from) must be named in its dependencies, so every check is a lookup.

use std::collections::BTreeMap;

use moot_crypto::{Lane, OpId, SignedOp};

use super::{HashMap, Replica, Resolution};
use crate::aid::{AidStatus, ItemInfo, PledgeInfo};
use crate::body::{AidChange, AidDetails, AidKind, Body, MemberId};
use crate::roll::Denied;

#[derive(Debug, Clone)]
struct ItemRecord {
    kind: AidKind,
    author: MemberId,
    lane: Lane,
    details: AidDetails,
    forwarded_from: Option<OpId>,
    forwarded_to: Vec<OpId>,
    /// Accepted updates: (op, change).
    updates: Vec<(OpId, AidChange)>,
    pledges: Vec<OpId>,
}

#[derive(Debug, Clone)]
struct PledgeRecord {
    item: OpId,
    pledger: MemberId,
    quantity: Option<u32>,
    note: String,
    contact: Vec<u8>,
    replies: Vec<(OpId, Vec<u8>)>,
    withdrawals: Vec<OpId>,
}

/// What the replica keeps of the aid board.
#[derive(Debug, Default)]
pub(super) struct AidBoard {
    items: BTreeMap<OpId, ItemRecord>,
    pledges: HashMap<OpId, PledgeRecord>,
}

/// Checks a sealed contact's shape (no key needed): empty, or a well-formed sealed box.
fn check_contact(contact: &[u8]) -> Result<(), Denied> {
    if contact.is_empty() {
        return Ok(());
    }
    moot_aid::check_sealed(contact).map_err(|e| Denied::BadContact(e.to_string()))
}

impl Replica {
    /// Checks an aid op at its causal position. `by` is the author's member, `past` the roll
    /// there. Returns the role grant the authority rests on, if any.
    pub(super) fn check_aid(
        &self,
        by: MemberId,
        lane: Lane,
        body: &Body,
        op: &SignedOp,
        past: &Resolution,
    ) -> Result<Vec<OpId>, Denied> {
        let deps: &[OpId] = &Self::parents(op).collect::<Vec<_>>();
        match body {
            Body::AidItem(item) => {
                if item.details.title.trim().is_empty() || item.details.category.trim().is_empty() {
                    return Err(Denied::NoSuchItem);
                }
                if let Some(f) = &item.forwarded {
                    let source = self.named_item(&f.item, deps)?;
                    let fulfilled_pledge =
                        match source.updates.iter().find(|(id, _)| *id == f.fulfilment) {
                            Some((_, AidChange::Fulfil { pledge }))
                                if deps.contains(&f.fulfilment) =>
                            {
                                *pledge
                            }
                            _ => return Err(Denied::NotRecipient),
                        };
                    let recipient = match source.kind {
                        AidKind::Offer => {
                            self.aid.pledges.get(&fulfilled_pledge).map(|p| p.pledger)
                        }
                        AidKind::Request => Some(source.author),
                    };
                    if item.kind != AidKind::Offer || recipient != Some(by) {
                        return Err(Denied::NotRecipient);
                    }
                }
                Ok(Vec::new())
            }
            Body::AidUpdate(u) => {
                let item = self.named_item(&u.item, deps)?;
                if item.lane != lane {
                    return Err(Denied::ItemLane);
                }
                let fact = self.item_authority(&item, &by, past)?;
                if let AidChange::Fulfil { pledge } = &u.change {
                    match self.aid.pledges.get(pledge) {
                        Some(p) if p.item == u.item && deps.contains(pledge) => {}
                        _ => return Err(Denied::NoSuchPledge),
                    }
                }
                Ok(fact.into_iter().collect())
            }
            Body::AidPledge(p) => {
                let item = self.named_item(&p.item, deps)?;
                if item.lane != lane {
                    return Err(Denied::ItemLane);
                }
                if item.author == by {
                    return Err(Denied::OwnItem);
                }
                check_contact(&p.contact)?;
                Ok(Vec::new())
            }
            Body::AidUnpledge(u) => {
                let pledge = self.named_pledge(&u.pledge, deps, lane)?;
                if pledge.pledger != by {
                    return Err(Denied::NotYourPledge);
                }
                Ok(Vec::new())
            }
            Body::AidContact(c) => {
                let pledge = self.named_pledge(&c.pledge, deps, lane)?;
                let author = self.aid.items.get(&pledge.item).map(|i| i.author);
                if author != Some(by) {
                    return Err(Denied::NotYourItem);
                }
                check_contact(&c.contact)?;
                Ok(Vec::new())
            }
            _ => Ok(Vec::new()),
        }
    }

    /// Records an accepted aid op.
    pub(super) fn record_aid(&mut self, id: OpId, member: MemberId, lane: Lane, body: &Body) {
        let board = &mut self.aid;
        match body {
            Body::AidItem(item) => {
                let forwarded_from = item.forwarded.as_ref().map(|f| f.item);
                if let Some(from) = forwarded_from
                    && let Some(source) = board.items.get_mut(&from)
                {
                    source.forwarded_to.push(id);
                }
                board.items.insert(
                    id,
                    ItemRecord {
                        kind: item.kind,
                        author: member,
                        lane,
                        details: item.details.clone(),
                        forwarded_from,
                        forwarded_to: Vec::new(),
                        updates: Vec::new(),
                        pledges: Vec::new(),
                    },
                );
            }
            Body::AidUpdate(u) => {
                if let Some(item) = board.items.get_mut(&u.item) {
                    item.updates.push((id, u.change.clone()));
                }
            }
            Body::AidPledge(p) => {
                if let Some(item) = board.items.get_mut(&p.item) {
                    item.pledges.push(id);
                }
                board.pledges.insert(
                    id,
                    PledgeRecord {
                        item: p.item,
                        pledger: member,
                        quantity: p.quantity,
                        note: p.note.clone(),
                        contact: p.contact.clone(),
                        replies: Vec::new(),
                        withdrawals: Vec::new(),
                    },
                );
            }
            Body::AidUnpledge(u) => {
                if let Some(p) = board.pledges.get_mut(&u.pledge) {
                    p.withdrawals.push(id);
                }
            }
            Body::AidContact(c) => {
                if let Some(p) = board.pledges.get_mut(&c.pledge) {
                    p.replies.push((id, c.contact.clone()));
                }
            }
            _ => {}
        }
    }

    fn named_item(&self, id: &OpId, deps: &[OpId]) -> Result<ItemRecord, Denied> {
        match self.aid.items.get(id) {
            Some(item) if deps.contains(id) => Ok(item.clone()),
            _ => Err(Denied::NoSuchItem),
        }
    }

    fn named_pledge(&self, id: &OpId, deps: &[OpId], lane: Lane) -> Result<PledgeRecord, Denied> {
        let pledge = match self.aid.pledges.get(id) {
            Some(p) if deps.contains(id) => p.clone(),
            _ => return Err(Denied::NoSuchPledge),
        };
        if self.aid.items.get(&pledge.item).map(|i| i.lane) != Some(lane) {
            return Err(Denied::ItemLane);
        }
        Ok(pledge)
    }

    /// The item's author, or a coordinator (or steward): the grant it rests on (none for the
    /// author).
    fn item_authority(
        &self,
        item: &ItemRecord,
        by: &MemberId,
        past: &Resolution,
    ) -> Result<Option<OpId>, Denied> {
        if item.author == *by {
            return Ok(None);
        }
        past.roll
            .coordinator_grant(by)
            .map(Some)
            .ok_or(Denied::NotYourItem)
    }

    /// Offers and requests held, ascending by id.
    pub fn aid_item_ids(&self) -> Vec<OpId> {
        self.aid.items.keys().copied().collect()
    }

    /// The highest edit revision of an item (0 before any edit): an edit goes one higher.
    pub fn aid_revision(&self, item: &OpId) -> Option<u32> {
        let record = self.aid.items.get(item)?;
        Some(
            record
                .updates
                .iter()
                .filter_map(|(_, c)| match c {
                    AidChange::Edit { revision, .. } => Some(*revision),
                    _ => None,
                })
                .max()
                .unwrap_or(0),
        )
    }

    /// An item as the ops held show it (only ops that count by the validity rule).
    pub fn aid_item(&mut self, id: &OpId) -> Option<ItemInfo> {
        let record = self.aid.items.get(id)?.clone();
        if !self.shown(id) {
            return None;
        }
        let mut flags = Vec::new();
        let mut updates: Vec<(OpId, AidChange)> = record
            .updates
            .iter()
            .filter(|(u, _)| self.shown(u))
            .cloned()
            .collect();
        updates.sort_by_key(|a| a.0);
        // Details: the highest revision, then the lower op id.
        let mut details = record.details.clone();
        let mut best: Option<(u32, OpId)> = None;
        for (u, change) in &updates {
            if let AidChange::Edit {
                revision,
                details: d,
            } = change
            {
                let better = match best {
                    None => true,
                    Some((r, b)) => *revision > r || (*revision == r && *u < b),
                };
                if better {
                    best = Some((*revision, *u));
                    details = d.clone();
                }
            }
        }
        let fulfilments: Vec<(OpId, OpId)> = updates
            .iter()
            .filter_map(|(u, c)| match c {
                AidChange::Fulfil { pledge } => Some((*u, *pledge)),
                _ => None,
            })
            .collect();
        let withdrawn = updates
            .iter()
            .any(|(_, c)| matches!(c, AidChange::Withdraw));
        let expired = updates.iter().any(|(_, c)| matches!(c, AidChange::Expire));
        let mut pledges = Vec::new();
        for p in &record.pledges {
            if !self.shown(p) {
                continue;
            }
            let Some(r) = self.aid.pledges.get(p).cloned() else {
                continue;
            };
            let mut withdrawn = false;
            for w in &r.withdrawals {
                withdrawn |= self.shown(w);
            }
            let mut replies = Vec::new();
            for (reply, contact) in &r.replies {
                if self.shown(reply) {
                    replies.push(contact.clone());
                }
            }
            pledges.push(PledgeInfo {
                id: *p,
                pledger: r.pledger,
                quantity: r.quantity,
                note: r.note,
                contact: r.contact,
                replies,
                withdrawn,
            });
        }
        pledges.sort_by_key(|a| a.id);
        if fulfilments.len() > 1 {
            flags.push(format!(
                "fulfilled {} times concurrently; the lowest op id stands",
                fulfilments.len()
            ));
        }
        if !fulfilments.is_empty() && withdrawn {
            flags.push("fulfilled and withdrawn concurrently; fulfilled stands".to_string());
        }
        let fulfilment = fulfilments.first().copied();
        let status = if fulfilment.is_some() {
            AidStatus::Fulfilled
        } else if withdrawn {
            AidStatus::Withdrawn
        } else if expired {
            AidStatus::Expired
        } else if pledges.iter().any(|p| !p.withdrawn) {
            AidStatus::Pledged
        } else {
            AidStatus::Open
        };
        let mut forwarded_to: Vec<OpId> = Vec::new();
        for f in &record.forwarded_to {
            if self.shown(f) {
                forwarded_to.push(*f);
            }
        }
        forwarded_to.sort();
        Some(ItemInfo {
            id: *id,
            kind: record.kind,
            author: record.author,
            lane: record.lane,
            details,
            status,
            pledges,
            fulfilment: fulfilment.map(|(u, _)| u),
            fulfilled_by: fulfilment.map(|(_, p)| p),
            forwarded_from: record.forwarded_from,
            forwarded_to,
            flags,
        })
    }

    /// The whole board, ascending by id.
    pub fn aid_items(&mut self) -> Vec<ItemInfo> {
        let ids = self.aid_item_ids();
        ids.iter().filter_map(|id| self.aid_item(id)).collect()
    }

    /// The item a pledge is for, if the pledge is held.
    pub fn pledge_item(&self, pledge: &OpId) -> Option<OpId> {
        self.aid.pledges.get(pledge).map(|p| p.item)
    }
}
