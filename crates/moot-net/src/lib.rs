//! The libp2p adapter: the only crate that imports libp2p. A node's libp2p identity *is* its
//! device key (this file), so the peer a Noise handshake authenticates is the device that signs
//! that node's ops; and the sans-IO sync engine (`moot-sync`) runs on the network.
//!
//! - [`protocol`]: the sync protocol id, `/moot/sync/2`, and its framing.
//! - [`node`]: [`NetNode`], the tokio driver of the engine over a libp2p swarm (TCP and QUIC,
//!   Noise, Yamux, identify, ping, optional mDNS, relay client and server, DCUtR), kept
//!   connected to the peers it was given, and [`NetHandle`] to talk to it.
//! - [`backoff`]: the redial delays.
//!
//! Logs go through `tracing` (connections, dials, backoff, misbehaving peers at info/warn;
//! frames and ops at debug); the binary decides where they go.

pub mod backoff;
mod ip_limits;
pub mod node;
pub mod protocol;

pub use backoff::Backoff;
pub use libp2p::multiaddr::Protocol;
pub use libp2p::{Multiaddr, PeerId as Libp2pPeerId};
pub use node::{
    Discovery, LanesFor, NetConfig, NetError, NetEvent, NetHandle, NetNode, NetStats,
    PROTOCOL_VERSION, Presenter, RelayServer, RollWatch,
};

use libp2p_identity::{Keypair, PeerId, PublicKey as Libp2pPublicKey};
use moot_crypto::{PublicKey, SecretKey};

/// Why a libp2p identity could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// Not an Ed25519 key.
    #[error("not an Ed25519 libp2p key")]
    NotEd25519,
    /// The key bytes were refused.
    #[error("invalid key: {0}")]
    Invalid(String),
}

/// The libp2p keypair of a device key (same secret, same public key).
pub fn keypair(device: &SecretKey) -> Result<Keypair, IdentityError> {
    let mut seed = device.seed();
    Keypair::ed25519_from_bytes(&mut seed).map_err(|e| IdentityError::Invalid(e.to_string()))
}

/// The libp2p peer id of a device: what `moot` prints as the node id.
pub fn peer_id(device: &PublicKey) -> Result<PeerId, IdentityError> {
    let key = libp2p_identity::ed25519::PublicKey::try_from_bytes(&device.to_bytes())
        .map_err(|e| IdentityError::Invalid(e.to_string()))?;
    Ok(PeerId::from_public_key(&Libp2pPublicKey::from(key)))
}

/// The device key a peer id embeds (Ed25519 peer ids carry their public key).
pub fn device_of(peer: &PeerId) -> Result<PublicKey, IdentityError> {
    let key = Libp2pPublicKey::try_decode_protobuf(peer.as_ref().digest())
        .map_err(|_| IdentityError::NotEd25519)?;
    let ed = key
        .try_into_ed25519()
        .map_err(|_| IdentityError::NotEd25519)?;
    PublicKey::from_bytes(&ed.to_bytes()).map_err(|e| IdentityError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_key_is_its_nodes_libp2p_identity() {
        let device = SecretKey::from_seed([8; 32]);
        let pair = keypair(&device).unwrap();
        let peer = pair.public().to_peer_id();
        assert_eq!(peer, peer_id(&device.public()).unwrap());
        assert_eq!(device_of(&peer).unwrap(), device.public());
        // A libp2p signature by the keypair verifies with the Moot device key, and back.
        let message = b"same key, two roles";
        let signature: [u8; 64] = pair.sign(message).unwrap().try_into().unwrap();
        assert!(device.public().verify(message, &signature));
        let ours = device.sign(message);
        assert!(pair.public().verify(message, &ours));
    }

    #[test]
    fn peer_ids_of_other_key_types_are_refused() {
        // A sha2-256 multihash peer id (as RSA keys get): no public key inside.
        let mut bytes = vec![0x12, 0x20];
        bytes.extend_from_slice(&[7; 32]);
        let peer = PeerId::from_bytes(&bytes).unwrap();
        assert!(device_of(&peer).is_err());
    }
}
