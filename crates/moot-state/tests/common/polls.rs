//! Fixtures for assembly and poll tests: a hall of people, and writing ops as a node does.

use moot_crypto::{Lane, OpId, SecretKey};
use moot_state::{Body, Reason, Replica, Role, Standing};

use super::{Person, founded, grant_body, join, person};

/// A hall: Fay founds (a steward), Cy is a convener, Ann, Ben, Dee are members, Gus is a guest.
pub struct Hall {
    pub replica: Replica,
    pub fay: Person,
    pub cy: Person,
    pub ann: Person,
    pub ben: Person,
    pub dee: Person,
    pub gus: Person,
}

pub fn hall() -> Hall {
    let (fay, cy, ann, ben, dee, gus) = (
        person(1),
        person(2),
        person(3),
        person(4),
        person(5),
        person(6),
    );
    let mut replica = founded(&fay);
    for p in [&cy, &ann, &ben, &dee] {
        join(&mut replica, &fay, p, Standing::Member);
    }
    join(&mut replica, &fay, &gus, Standing::Guest);
    replica
        .write(&fay.device, &grant_body(&cy, Role::Convener))
        .unwrap();
    Hall {
        replica,
        fay,
        cy,
        ann,
        ben,
        dee,
        gus,
    }
}

/// Writes `body` as `device` in `lane` naming `refs` → the op's id (after any checkpoints).
/// Closes follow everything held, as a node writes them.
pub fn try_write(
    replica: &mut Replica,
    device: &SecretKey,
    lane: Lane,
    body: Body,
    refs: &[OpId],
) -> Result<OpId, Reason> {
    let written = if matches!(
        body,
        Body::ClosePoll(_) | Body::CloseStation(_) | Body::Decide(_)
    ) {
        replica
            .write_covering(device, lane, &body, refs)
            .map(|ops| ops.iter().map(|op| op.id()).collect::<Vec<_>>())
    } else {
        replica.write_in(device, lane, &body, refs)
    };
    written
        .map(|ids| *ids.last().unwrap())
        .map_err(|r| r.reason)
}

/// [`try_write`], which must succeed.
pub fn write(
    replica: &mut Replica,
    device: &SecretKey,
    lane: Lane,
    body: Body,
    refs: &[OpId],
) -> OpId {
    try_write(replica, device, lane, body, refs).unwrap()
}
