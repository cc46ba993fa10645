//! Incoming connections per remote IP address (at once, and new ones per minute), and a short
//! ban on the addresses of a misbehaving peer.
//!
//! libp2p's `connection_limits` bounds connections in all and per peer id, but a peer id costs
//! nothing to make: one machine could take every place with a few dozen keys and leave the node
//! no room for anyone else, its kept peers' redials included. Here each remote address holds
//! at most [`Limits::max_per_ip`] incoming connections and opens at most
//! [`Limits::max_new_per_ip`] a minute (each new connection starts a sync session, whose
//! exchange of heads costs this node a pass over its chains, and often a walk of its store:
//! connecting, closing and connecting again must not buy that without end), and the address of
//! a peer dropped for
//! misbehaviour (forged ops, garbage frames) is refused for [`Limits::ban_for`], so that
//! reconnecting under a new key to make the node check another frame of bad signatures costs
//! more than a handshake. The node asks [`Behaviour::allows_dial`] before dialing a peer that
//! mDNS found (anyone on the LAN can announce peers), so neither is dodged by being dialed.
//! An IPv6 address counts by its /64 (one host may hold all of it). Relayed connections (whose
//! address is the relay's) and, unless asked ([`Limits::loopback`]), this machine's are not
//! counted.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::net::IpAddr;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use libp2p::core::Endpoint;
use libp2p::core::transport::PortUse;
use libp2p::multiaddr::Protocol;
use libp2p::swarm::{
    ConnectionClosed, ConnectionDenied, ConnectionId, FromSwarm, NetworkBehaviour, THandler,
    THandlerInEvent, THandlerOutEvent, ToSwarm, dummy,
};
use libp2p::{Multiaddr, PeerId};

/// Addresses banned at once, at most (the oldest ban ends first past it).
const MAX_BANNED: usize = 1024;

/// Addresses whose new connections are counted at once, at most (past it, those whose minute
/// is over are forgotten, then the one counted longest ago).
const MAX_COUNTED: usize = 4096;

/// The span [`Limits::max_new_per_ip`] counts over.
const NEW_WINDOW: Duration = Duration::from_secs(60);

/// The bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Incoming connections from one IP address, at most.
    pub max_per_ip: u32,
    /// New incoming connections from one IP address per minute, at most.
    pub max_new_per_ip: u32,
    /// How long the address of a peer dropped for misbehaviour is refused.
    pub ban_for: Duration,
    /// Count loopback connections too (tests; this machine is trusted otherwise).
    pub loopback: bool,
}

/// Why a connection was refused.
#[derive(Debug, thiserror::Error)]
enum Refused {
    #[error("too many connections from {0}")]
    TooMany(IpAddr),
    #[error("too many new connections from {0} this minute")]
    TooFast(IpAddr),
    #[error("{0} misbehaved a moment ago")]
    Banned(IpAddr),
}

/// The behaviour (no protocol of its own).
pub struct Behaviour {
    limits: Limits,
    /// Incoming connections per address.
    inbound: HashMap<IpAddr, u32>,
    /// Every connection's peer and address, and whether it came in.
    by_connection: HashMap<ConnectionId, (PeerId, IpAddr, bool)>,
    /// Dials under way, by the address dialed.
    dialing: HashMap<ConnectionId, IpAddr>,
    /// Banned addresses with when their ban ends, oldest first.
    banned: VecDeque<(IpAddr, Instant)>,
    /// Incoming connections established per address since the start of its minute.
    new: HashMap<IpAddr, (Instant, u32)>,
}

impl Behaviour {
    pub fn new(limits: Limits) -> Behaviour {
        Behaviour {
            limits,
            inbound: HashMap::new(),
            by_connection: HashMap::new(),
            dialing: HashMap::new(),
            banned: VecDeque::new(),
            new: HashMap::new(),
        }
    }

    /// The address a connection comes from, if it is counted.
    fn counted(&self, remote: &Multiaddr) -> Option<IpAddr> {
        if remote.iter().any(|p| matches!(p, Protocol::P2pCircuit)) {
            return None;
        }
        let ip = remote.iter().find_map(|p| match p {
            Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
            Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
            _ => None,
        })?;
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if ip.is_loopback() && !self.limits.loopback {
            return None;
        }
        Some(match ip {
            // A host on the internet may hold a whole /64: it counts as one address. On a LAN
            // (link-local fe80::/10, unique local fc00::/7) the /64 is every device there, which
            // count one by one.
            IpAddr::V6(v6) if !is_lan_v6(v6) => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
            _ => ip,
        })
    }

    fn is_banned(&mut self, ip: IpAddr) -> bool {
        let now = Instant::now();
        while self.banned.front().is_some_and(|(_, until)| *until <= now) {
            self.banned.pop_front();
        }
        self.banned.iter().any(|(banned, _)| *banned == ip)
    }

    fn check(&mut self, remote: &Multiaddr) -> Result<(), ConnectionDenied> {
        let Some(ip) = self.counted(remote) else {
            return Ok(());
        };
        if self.is_banned(ip) {
            return Err(ConnectionDenied::new(Refused::Banned(ip)));
        }
        if self.inbound.get(&ip).copied().unwrap_or(0) >= self.limits.max_per_ip {
            return Err(ConnectionDenied::new(Refused::TooMany(ip)));
        }
        if self.new_this_minute(ip, Instant::now()) >= self.limits.max_new_per_ip {
            return Err(ConnectionDenied::new(Refused::TooFast(ip)));
        }
        Ok(())
    }

    /// Incoming connections from `ip` established in its current minute, as of `now`.
    fn new_this_minute(&self, ip: IpAddr, now: Instant) -> u32 {
        match self.new.get(&ip) {
            Some((since, count)) if now.duration_since(*since) < NEW_WINDOW => *count,
            _ => 0,
        }
    }

    /// Counts an incoming connection from `ip`, established at `now`.
    fn count_new(&mut self, ip: IpAddr, now: Instant) {
        if !self.new.contains_key(&ip) && self.new.len() >= MAX_COUNTED {
            self.new
                .retain(|_, (since, _)| now.duration_since(*since) < NEW_WINDOW);
            if self.new.len() >= MAX_COUNTED
                && let Some(oldest) = self
                    .new
                    .iter()
                    .min_by_key(|(_, (since, _))| *since)
                    .map(|(ip, _)| *ip)
            {
                self.new.remove(&oldest);
            }
        }
        let entry = self.new.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= NEW_WINDOW {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
    }

    /// True if a peer found on the LAN at `addr` may be dialed: its address is not banned, and
    /// holds fewer than [`Limits::max_per_ip`] connections either way, dials under way included.
    pub fn allows_dial(&mut self, addr: &Multiaddr) -> bool {
        let Some(ip) = self.counted(addr) else {
            return true;
        };
        let held = self
            .by_connection
            .values()
            .filter(|(_, at, _)| *at == ip)
            .count()
            + self.dialing.values().filter(|at| **at == ip).count();
        !self.is_banned(ip) && held < self.limits.max_per_ip as usize
    }

    /// Refuses the addresses `peer` is connected from or to for a while.
    pub fn ban(&mut self, peer: &PeerId) {
        let until = Instant::now() + self.limits.ban_for;
        let ips: Vec<IpAddr> = self
            .by_connection
            .values()
            .filter(|(p, _, _)| p == peer)
            .map(|(_, ip, _)| *ip)
            .collect();
        for ip in ips {
            if self.banned.len() >= MAX_BANNED {
                self.banned.pop_front();
            }
            self.banned.push_back((ip, until));
        }
    }
}

/// Link-local (fe80::/10) or unique local (fc00::/7): an address on a LAN.
fn is_lan_v6(v6: std::net::Ipv6Addr) -> bool {
    let first = v6.segments()[0];
    first & 0xffc0 == 0xfe80 || first & 0xfe00 == 0xfc00
}

impl NetworkBehaviour for Behaviour {
    type ConnectionHandler = dummy::ConnectionHandler;
    type ToSwarm = Infallible;

    fn handle_pending_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<(), ConnectionDenied> {
        self.check(remote)
    }

    fn handle_established_inbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        remote: &Multiaddr,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        // Again: many may have been pending at once.
        self.check(remote)?;
        Ok(dummy::ConnectionHandler)
    }

    fn handle_pending_outbound_connection(
        &mut self,
        connection_id: ConnectionId,
        _: Option<PeerId>,
        addresses: &[Multiaddr],
        _: Endpoint,
    ) -> Result<Vec<Multiaddr>, ConnectionDenied> {
        if let Some(ip) = addresses.first().and_then(|a| self.counted(a)) {
            self.dialing.insert(connection_id, ip);
        }
        Ok(Vec::new())
    }

    fn handle_established_outbound_connection(
        &mut self,
        _: ConnectionId,
        _: PeerId,
        _: &Multiaddr,
        _: Endpoint,
        _: PortUse,
    ) -> Result<THandler<Self>, ConnectionDenied> {
        Ok(dummy::ConnectionHandler)
    }

    fn on_swarm_event(&mut self, event: FromSwarm) {
        match event {
            // Counted once established (a connection another behaviour refused never is).
            FromSwarm::ConnectionEstablished(established) => {
                self.dialing.remove(&established.connection_id);
                let (remote, incoming) = match established.endpoint {
                    libp2p::core::ConnectedPoint::Listener { send_back_addr, .. } => {
                        (send_back_addr, true)
                    }
                    libp2p::core::ConnectedPoint::Dialer { address, .. } => (address, false),
                };
                if let Some(ip) = self.counted(remote) {
                    if incoming {
                        *self.inbound.entry(ip).or_insert(0) += 1;
                        self.count_new(ip, Instant::now());
                    }
                    self.by_connection.insert(
                        established.connection_id,
                        (established.peer_id, ip, incoming),
                    );
                }
            }
            FromSwarm::DialFailure(failure) => {
                self.dialing.remove(&failure.connection_id);
            }
            FromSwarm::ConnectionClosed(ConnectionClosed { connection_id, .. }) => {
                if let Some((_, ip, true)) = self.by_connection.remove(&connection_id)
                    && let Some(count) = self.inbound.get_mut(&ip)
                {
                    *count = count.saturating_sub(1);
                    if *count == 0 {
                        self.inbound.remove(&ip);
                    }
                }
            }
            _ => {}
        }
    }

    fn on_connection_handler_event(
        &mut self,
        _: PeerId,
        _: ConnectionId,
        event: THandlerOutEvent<Self>,
    ) {
        match event {}
    }

    fn poll(&mut self, _: &mut Context<'_>) -> Poll<ToSwarm<Self::ToSwarm, THandlerInEvent<Self>>> {
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn limits() -> Behaviour {
        Behaviour::new(Limits {
            max_per_ip: 2,
            max_new_per_ip: 3,
            ban_for: Duration::from_secs(60),
            loopback: false,
        })
    }

    /// What counts as one address: an IPv6 /64, an IPv4-mapped address as its IPv4; relayed
    /// connections and (by default) loopback not at all.
    #[test]
    fn addresses_are_counted_by_host() {
        let b = limits();
        let at = |s: &str| b.counted(&s.parse::<Multiaddr>().unwrap());
        assert_eq!(
            at("/ip6/2001:db8:1:2:aaaa::1/tcp/1"),
            at("/ip6/2001:db8:1:2:bbbb::9/udp/2/quic-v1")
        );
        assert_ne!(
            at("/ip6/2001:db8:1:2::1/tcp/1"),
            at("/ip6/2001:db8:1:3::1/tcp/1")
        );
        // On a LAN, each device is its own.
        assert_ne!(at("/ip6/fe80::1/tcp/1"), at("/ip6/fe80::2/tcp/1"));
        assert_ne!(at("/ip6/fd00::1/tcp/1"), at("/ip6/fd00::2/tcp/1"));
        assert_eq!(
            at("/ip6/::ffff:192.0.2.7/tcp/1"),
            at("/ip4/192.0.2.7/tcp/9")
        );
        assert_eq!(at("/ip4/127.0.0.1/tcp/1"), None);
        assert_eq!(at("/ip6/::1/tcp/1"), None);
        assert_eq!(
            at(
                "/ip4/192.0.2.7/tcp/1/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp/p2p-circuit"
            ),
            None
        );
        assert!(at("/ip4/192.0.2.7/tcp/1").is_some());
    }

    /// A LAN peer's address is not dialed again once its share of dials (under way or
    /// established) is taken, however many peer ids it announces, nor while it is banned.
    #[test]
    fn dials_under_way_count_against_an_address() {
        let mut b = limits();
        let addr: Multiaddr = "/ip4/192.0.2.7/tcp/1".parse().unwrap();
        assert!(b.allows_dial(&addr));
        for n in 0..2 {
            b.handle_pending_outbound_connection(
                ConnectionId::new_unchecked(n),
                None,
                std::slice::from_ref(&addr),
                Endpoint::Dialer,
            )
            .unwrap();
        }
        assert!(!b.allows_dial(&addr));
        assert!(b.allows_dial(&"/ip4/192.0.2.8/tcp/1".parse().unwrap()));
        // A dial that failed frees its place.
        b.dialing.remove(&ConnectionId::new_unchecked(0));
        assert!(b.allows_dial(&addr));
        b.banned.push_back((
            b.counted(&addr).unwrap(),
            Instant::now() + Duration::from_secs(60),
        ));
        assert!(!b.allows_dial(&addr));
    }

    /// An address opens at most `max_new_per_ip` connections a minute, however short-lived:
    /// the next is refused until its minute is over. Other addresses are not held up, and the
    /// table of counts stays bounded however many addresses come.
    #[test]
    fn new_connections_per_address_are_counted_per_minute() {
        let mut b = limits();
        let addr: Multiaddr = "/ip4/192.0.2.7/tcp/1".parse().unwrap();
        let ip = b.counted(&addr).unwrap();
        let start = Instant::now();
        for _ in 0..3 {
            assert!(b.new_this_minute(ip, start) < 3);
            b.count_new(ip, start);
        }
        assert_eq!(b.new_this_minute(ip, start), 3);
        assert!(b.check(&addr).is_err(), "a fourth connection this minute");
        assert!(b.check(&"/ip4/192.0.2.8/tcp/1".parse().unwrap()).is_ok());
        // Loopback is not counted unless asked.
        assert!(b.check(&"/ip4/127.0.0.1/tcp/1".parse().unwrap()).is_ok());
        let later = start + NEW_WINDOW;
        assert_eq!(b.new_this_minute(ip, later), 0);
        b.count_new(ip, later);
        assert_eq!(b.new_this_minute(ip, later), 1);
        for n in 0..(MAX_COUNTED as u32 + 10) {
            b.count_new(IpAddr::V4(std::net::Ipv4Addr::from(0x0a00_0000 + n)), later);
        }
        assert!(b.new.len() <= MAX_COUNTED);
    }
}
