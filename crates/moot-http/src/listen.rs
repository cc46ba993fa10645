//! The web server's listener: a bound on the connections it holds, in all and from one
//! address, and TCP keepalive so that a phone that left the hall's Wi-Fi without closing its
//! connections does not hold them for ever.
//!
//! On the hall's network anyone may connect. Without these, a few hundred idle connections (or
//! a page left open on many phones) use up the process's file descriptors, which the node needs
//! for its peers and its store. Past [`MAX_CONNECTIONS`], or [`MAX_PER_ADDRESS`] from one
//! address, a new connection is closed at once. Connections from this machine (loopback) are not counted in the total, so that a
//! flood from the hall's network never keeps the node's owner out of their own page; they
//! have a share of their own ([`MAX_PER_LOOPBACK`]).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections held at once, in all (a hall of phones, each with a few).
pub const MAX_CONNECTIONS: usize = 256;

/// Connections held at once from one address (a browser opens up to six per site).
pub const MAX_PER_ADDRESS: usize = 32;

/// Connections held at once from this machine (loopback): its own share, outside the total.
pub const MAX_PER_LOOPBACK: usize = 128;

/// A connection silent this long is probed, and closed if nobody answers (about a minute
/// more).
const KEEPALIVE_IDLE: Duration = Duration::from_secs(60);
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(10);
const KEEPALIVE_RETRIES: u32 = 6;

/// Where a connection comes from, for [`MAX_PER_ADDRESS`]: its address
/// ([`crate::guard::address_key`], as sign-ins are counted).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Origin(IpAddr);

impl Origin {
    /// Every connection from this machine, whatever loopback address it comes from.
    const THIS_MACHINE: Origin = Origin(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    fn of(ip: IpAddr) -> Origin {
        Origin(crate::guard::address_key(ip))
    }
}

/// A [`TcpListener`] holding at most [`MAX_CONNECTIONS`], [`MAX_PER_ADDRESS`] from one origin;
/// loopback connections outside the total, [`MAX_PER_LOOPBACK`] of them.
pub struct Capped {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    per_origin: Arc<Mutex<HashMap<Origin, usize>>>,
    max_per_origin: usize,
    max_local: usize,
    /// Which origins are this machine (loopback; a test names its own).
    is_local: fn(&IpAddr) -> bool,
}

impl Capped {
    /// Caps `inner` at `max` connections, `max_per_origin` from one origin, loopback aside.
    pub fn new(inner: TcpListener, max: usize, max_per_origin: usize) -> Capped {
        Capped {
            inner,
            slots: Arc::new(Semaphore::new(max)),
            per_origin: Arc::new(Mutex::new(HashMap::new())),
            max_per_origin,
            max_local: MAX_PER_LOOPBACK,
            is_local: IpAddr::is_loopback,
        }
    }

    /// Counts a connection from `origin` → its share, or `None` if the origin holds its most.
    fn admit(&self, origin: Origin, local: bool) -> Option<OriginShare> {
        let mut counts = self.per_origin.lock().ok()?;
        let count = counts.entry(origin).or_insert(0);
        let max = if local {
            self.max_local
        } else {
            self.max_per_origin
        };
        if *count >= max {
            return None;
        }
        *count += 1;
        Some(OriginShare {
            origin,
            counts: Arc::clone(&self.per_origin),
        })
    }
}

/// One connection's part of its origin's count, given back when it closes.
struct OriginShare {
    origin: Origin,
    counts: Arc<Mutex<HashMap<Origin, usize>>>,
}

impl Drop for OriginShare {
    fn drop(&mut self) {
        if let Ok(mut counts) = self.counts.lock()
            && let Some(count) = counts.get_mut(&self.origin)
        {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.origin);
            }
        }
    }
}

/// An accepted connection, holding its places until it is dropped.
pub struct Held {
    stream: TcpStream,
    /// Its place in the total (none for this machine's).
    _slot: Option<OwnedSemaphorePermit>,
    _share: OriginShare,
}

impl axum::serve::Listener for Capped {
    type Io = Held;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Held, SocketAddr) {
        loop {
            let (stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(_) => {
                    // Out of file descriptors, say: wait rather than spin.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let origin = Origin::of(addr.ip());
            let local = (self.is_local)(&origin.0);
            // This machine is one origin, whichever of its addresses it uses (127.0.0.0/8 is
            // all loopback): its share is a share, not one per address.
            let origin = if local { Origin::THIS_MACHINE } else { origin };
            // Past the total, a connection from elsewhere is closed at once (dropped here).
            let slot = match local {
                true => None,
                false => match Arc::clone(&self.slots).try_acquire_owned() {
                    Ok(slot) => Some(slot),
                    Err(_) => {
                        tracing::debug!(%addr, "too many web connections: closed");
                        continue;
                    }
                },
            };
            let Some(share) = self.admit(origin, local) else {
                tracing::debug!(%addr, "too many web connections from one address: closed");
                continue;
            };
            let keepalive = socket2::TcpKeepalive::new()
                .with_time(KEEPALIVE_IDLE)
                .with_interval(KEEPALIVE_INTERVAL)
                .with_retries(KEEPALIVE_RETRIES);
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
            return (
                Held {
                    stream,
                    _slot: slot,
                    _share: share,
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for Held {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Held {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::serve::Listener as _;
    use tokio::io::AsyncWriteExt as _;

    #[test]
    fn origins_are_addresses() {
        let o = |s: &str| Origin::of(s.parse().unwrap());
        assert_eq!(o("192.168.1.20"), o("::ffff:192.168.1.20"));
        assert_ne!(o("192.168.1.20"), o("192.168.1.21"));
        // Two devices of the hall's network share a /64, not a count.
        assert_ne!(o("2001:db8:1:2::1"), o("2001:db8:1:2:ffff::9"));
        assert_ne!(o("0.0.0.1"), o("::1"));
    }

    /// A connection to `to` from the loopback address `from` (127.0.0.x).
    async fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind(SocketAddr::new(from.parse().unwrap(), 0))
            .unwrap();
        socket.connect(to).await.unwrap()
    }

    async fn accepted(listener: &mut Capped) -> Option<(Held, SocketAddr)> {
        tokio::time::timeout(Duration::from_millis(300), listener.accept())
            .await
            .ok()
    }

    /// Past its share, an address's next connection is closed at once, and past the total
    /// any other's; a place given back is taken again. This machine's connections are outside
    /// the total, within a share of their own. (127.0.0.1 stands for this machine here; the
    /// other loopback addresses for the hall's devices.)
    #[cfg(target_os = "linux")] // binds 127.0.0.2 and up
    #[tokio::test]
    async fn connections_are_capped_per_address_and_in_all_but_never_this_machines() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = Capped::new(inner, 2, 1);
        listener.max_local = 3;
        listener.is_local = |ip| *ip == IpAddr::from([127, 0, 0, 1]);
        let mut clients = Vec::new();
        let closed = |mut stream: TcpStream| async move {
            let mut byte = [0u8; 1];
            let read = tokio::time::timeout(
                Duration::from_secs(5),
                tokio::io::AsyncReadExt::read(&mut stream, &mut byte),
            )
            .await
            .unwrap();
            assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        };
        clients.push(connect_from("127.0.0.2", addr).await);
        let (first, _) = accepted(&mut listener).await.unwrap();
        // A second from 127.0.0.2 is past its share: closed, and the listener waits on.
        let second = connect_from("127.0.0.2", addr).await;
        assert!(accepted(&mut listener).await.is_none());
        closed(second).await;
        // 127.0.0.3 takes the last place in the total; 127.0.0.4 finds none.
        clients.push(connect_from("127.0.0.3", addr).await);
        let _third = accepted(&mut listener).await.unwrap();
        let fourth = connect_from("127.0.0.4", addr).await;
        assert!(accepted(&mut listener).await.is_none());
        closed(fourth).await;
        // This machine still gets in, three times, then no more.
        let mut held = Vec::new();
        for _ in 0..3 {
            clients.push(connect_from("127.0.0.1", addr).await);
            held.push(accepted(&mut listener).await.unwrap().0);
        }
        let local = connect_from("127.0.0.1", addr).await;
        assert!(accepted(&mut listener).await.is_none());
        closed(local).await;
        // A place in the total given back is taken again.
        drop(first);
        let mut again = connect_from("127.0.0.4", addr).await;
        again.write_all(b"x").await.unwrap();
        let (_, from) = accepted(&mut listener).await.unwrap();
        assert_eq!(from.ip(), IpAddr::from([127, 0, 0, 4]));
    }

    /// This machine's share is one, whichever loopback addresses its connections come from
    /// (each of 127.0.0.0/8 counted as its own origin once: 128 connections from each).
    #[cfg(target_os = "linux")] // binds 127.0.0.2 and up
    #[tokio::test]
    async fn this_machines_share_is_one_across_its_loopback_addresses() {
        let inner = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = inner.local_addr().unwrap();
        let mut listener = Capped::new(inner, 2, 1);
        listener.max_local = 3;
        let (mut clients, mut held) = (Vec::new(), Vec::new());
        for from in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
            clients.push(connect_from(from, addr).await);
            held.push(accepted(&mut listener).await.unwrap().0);
        }
        let _fourth = connect_from("127.0.0.4", addr).await;
        assert!(accepted(&mut listener).await.is_none());
    }
}
