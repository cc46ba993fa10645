//! The sync protocol on the wire: `/moot/sync/2`, one engine frame per request-response
//! exchange, answered by a one-byte acknowledgement when the receiver takes the frame up.
//!
//! A request is a 4-byte big-endian length and that many bytes, at most
//! [`MAX_MESSAGE_BYTES`] (the engine's own frame limit): a larger length is refused before
//! anything more is read or allocated, so a peer cannot make this node buffer more than one
//! frame per stream, and is handed up as [`SyncRequest::Oversized`] so the driver can drop
//! the peer (libp2p's request-response does not report a request that fails to read). The
//! acknowledgement is what keeps frames in order and paced: the driver sends a peer its next
//! frame only when the previous one is acknowledged, i.e. taken up for handling (see
//! `docs/PROTOCOL.md`, "On the network"). The codec counts the frames it is reading
//! ([`SyncCodec::counting`]): on a slow link a frame takes seconds to cross (500 KB at
//! 1 Mbit/s: 4 s), and the count shows it coming before it is whole.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use libp2p::request_response;
use moot_crypto::HubId;
use moot_sync::Incoming;
use moot_sync::wire::MAX_MESSAGE_BYTES;

/// The protocol id of the sync protocol (the engine's wire version, `moot_sync::WIRE_VERSION`,
/// inside).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/moot/sync/2");

/// The acknowledgement byte: the frame was taken up for handling.
const ACK: u8 = 1;

/// Sync streams open at once on one connection, both directions, at most.
pub const MAX_STREAMS_PER_CONNECTION: usize = 4;

/// Counts a frame as being read until dropped (read whole, failed, or abandoned with its
/// stream).
struct Reading<'a>(&'a AtomicU64);

impl<'a> Reading<'a> {
    fn start(count: &'a AtomicU64) -> Reading<'a> {
        count.fetch_add(1, Ordering::Relaxed);
        Reading(count)
    }
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reads and writes sync frames: length-prefixed requests, one-byte responses. Keeps count of
/// the frames being read ([`SyncCodec::counting`]). Given a hub ([`SyncCodec::checking`]), it
/// decodes each frame read and starts checking its ops' signatures at once
/// ([`Incoming::start`]): the frame waits for its turn (the one before it is being handled)
/// with its checks under way.
#[derive(Debug, Clone, Default)]
pub struct SyncCodec {
    reading: Arc<AtomicU64>,
    hub: Option<HubId>,
    points: Option<moot_state::DevicePoints>,
}

impl SyncCodec {
    /// A codec keeping in `reading` the number of frames whose length it has read and whose
    /// body it has not yet read whole.
    pub fn counting(reading: Arc<AtomicU64>) -> SyncCodec {
        SyncCodec {
            reading,
            hub: None,
            points: None,
        }
    }

    /// This codec, reading frames as [`SyncRequest::Received`], their ops (of `hub`) being
    /// checked.
    pub fn checking(self, hub: HubId) -> SyncCodec {
        SyncCodec {
            hub: Some(hub),
            ..self
        }
    }

    /// This codec, its checks taking the points of the devices in `points` (those of the
    /// replica handling the frames: [`moot_state::Replica::device_points`]).
    pub fn consulting(self, points: moot_state::DevicePoints) -> SyncCodec {
        SyncCodec {
            points: Some(points),
            ..self
        }
    }
}

/// An engine frame on the wire (at most [`MAX_MESSAGE_BYTES`]).
pub type Frame = Vec<u8>;

/// A request of the sync protocol.
#[derive(Debug)]
pub enum SyncRequest {
    /// An engine frame.
    Frame(Frame),
    /// Only ever read, by a codec given a hub ([`SyncCodec::checking`]): a frame decoded, its
    /// ops' checks started.
    Received(Incoming),
    /// Only ever read, never written: the peer announced a frame of `len` bytes, over
    /// [`MAX_MESSAGE_BYTES`]; nothing more was read.
    Oversized {
        /// The length announced.
        len: u64,
    },
}

/// Bytes of a frame's buffer before any arrive (it grows as they do).
const FIRST_READ: usize = 64 * 1024;

/// The response to a frame: it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack;

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = SyncRequest;
    type Response = Ack;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<SyncRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = u32::from_be_bytes(len);
        let Some(len) = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_MESSAGE_BYTES)
        else {
            return Ok(SyncRequest::Oversized { len: len.into() });
        };
        let _reading = Reading::start(&self.reading);
        // Grown as the bytes come, not allocated up front: a peer that announces a large frame
        // on each of its streams and stalls holds 64 KiB per stream, not 1 MiB.
        let mut frame = Vec::with_capacity(len.min(FIRST_READ));
        (&mut *io).take(len as u64).read_to_end(&mut frame).await?;
        if frame.len() != len {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(match self.hub {
            Some(hub) => {
                SyncRequest::Received(Incoming::start_with(hub, &frame, self.points.as_ref()))
            }
            None => SyncRequest::Frame(frame),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Ack>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut byte = [0u8; 1];
        io.read_exact(&mut byte).await?;
        if byte[0] == ACK {
            Ok(Ack)
        } else {
            Err(io::Error::new(io::ErrorKind::InvalidData, "not an ack"))
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        request: SyncRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let SyncRequest::Frame(frame) = request else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a frame to write",
            ));
        };
        let len = u32::try_from(frame.len())
            .ok()
            .filter(|_| frame.len() <= MAX_MESSAGE_BYTES)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
        io.write_all(&len.to_be_bytes()).await?;
        io.write_all(&frame).await
    }

    async fn write_response<T>(&mut self, _: &StreamProtocol, io: &mut T, _: Ack) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&[ACK]).await
    }
}

/// The request-response behaviour of the sync protocol: one protocol, both directions,
/// `timeout` per exchange. Public so tests (and tools) can speak the protocol directly.
pub fn behaviour(timeout: std::time::Duration) -> request_response::Behaviour<SyncCodec> {
    with_codec(timeout, SyncCodec::default())
}

/// [`behaviour`] for a node of `hub`, keeping the number of frames being read in `reading`
/// ([`SyncCodec::counting`]) and checking the ops of each frame read at once
/// ([`SyncCodec::checking`]).
pub fn node_behaviour(
    timeout: std::time::Duration,
    reading: Arc<AtomicU64>,
    hub: HubId,
    points: moot_state::DevicePoints,
) -> request_response::Behaviour<SyncCodec> {
    with_codec(
        timeout,
        SyncCodec::counting(reading)
            .checking(hub)
            .consulting(points),
    )
}

fn with_codec(
    timeout: std::time::Duration,
    codec: SyncCodec,
) -> request_response::Behaviour<SyncCodec> {
    request_response::Behaviour::with_codec(
        codec,
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        // Per connection: this node's one frame in flight, and the peer's, which sends its next
        // frame once the last is acknowledged (so at most one waits here while the stream of
        // the one acknowledged closes). One spare. A peer opening more has its streams dropped
        // unread: a frame is never buffered beyond these (1 MiB each).
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(MAX_STREAMS_PER_CONNECTION),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use libp2p::futures::io::Cursor;
    use libp2p::request_response::Codec;

    use super::*;

    #[tokio::test]
    async fn a_frame_reads_back_as_written() {
        let frame = vec![7u8; 1000];
        let mut wire = Cursor::new(Vec::new());
        SyncCodec::default()
            .write_request(&SYNC_PROTOCOL, &mut wire, SyncRequest::Frame(frame.clone()))
            .await
            .unwrap();
        assert_eq!(wire.get_ref().len(), 4 + frame.len());
        wire.set_position(0);
        let read = SyncCodec::default()
            .read_request(&SYNC_PROTOCOL, &mut wire)
            .await;
        assert!(matches!(read.unwrap(), SyncRequest::Frame(read) if read == frame));
    }

    #[tokio::test]
    async fn a_frame_at_the_limit_passes_and_one_over_is_refused_unread() {
        for (len, fits) in [(MAX_MESSAGE_BYTES, true), (MAX_MESSAGE_BYTES + 1, false)] {
            let mut bytes = u32::try_from(len).unwrap().to_be_bytes().to_vec();
            bytes.resize(4 + len, 0);
            let mut wire = Cursor::new(bytes);
            let read = SyncCodec::default()
                .read_request(&SYNC_PROTOCOL, &mut wire)
                .await;
            match read.unwrap() {
                SyncRequest::Frame(frame) => assert!(fits && frame.len() == len),
                SyncRequest::Oversized { len: announced } => {
                    assert!(!fits && announced == len as u64);
                    // Nothing past the length was read.
                    assert_eq!(wire.position(), 4);
                }
                SyncRequest::Received(_) => panic!("a codec without a hub decodes nothing"),
            }
        }
        // The largest length the prefix can state is refused the same way.
        let mut wire = Cursor::new(u32::MAX.to_be_bytes().to_vec());
        let read = SyncCodec::default()
            .read_request(&SYNC_PROTOCOL, &mut wire)
            .await;
        assert!(matches!(read.unwrap(), SyncRequest::Oversized { .. }));
        // And this side never writes one.
        let mut wire = Cursor::new(Vec::new());
        let over = SyncRequest::Frame(vec![0; MAX_MESSAGE_BYTES + 1]);
        assert!(
            SyncCodec::default()
                .write_request(&SYNC_PROTOCOL, &mut wire, over)
                .await
                .is_err()
        );
        assert!(wire.get_ref().is_empty());
    }

    /// A frame counts as being read from its length until it is whole or its read ends: while
    /// its body has not all come, and no longer once it has, or once the read failed (a frame
    /// cut short after 40,000 of its 100,000 bytes).
    #[tokio::test]
    async fn a_frame_counts_as_being_read_until_its_read_ends() {
        let count = Arc::new(AtomicU64::new(0));
        let mut codec = SyncCodec::counting(count.clone());
        let reading = || count.load(Ordering::Relaxed);
        let (mut tx, rx) = libp2p::futures::channel::mpsc::unbounded::<io::Result<Vec<u8>>>();
        let mut half = 20_000u32.to_be_bytes().to_vec();
        half.resize(4 + 10_000, 1);
        tx.start_send(Ok(half)).unwrap();
        let mut stream = libp2p::futures::TryStreamExt::into_async_read(rx);
        let protocol = SYNC_PROTOCOL;
        {
            let mut read = std::pin::pin!(codec.read_request(&protocol, &mut stream));
            assert!(libp2p::futures::poll!(read.as_mut()).is_pending());
            assert_eq!(reading(), 1);
            tx.start_send(Ok(vec![1; 10_000])).unwrap();
            assert!(
                matches!(read.await.unwrap(), SyncRequest::Frame(read) if read == vec![1; 20_000])
            );
        }
        assert_eq!(reading(), 0);
        // A read abandoned midway (its stream dropped) counts no more.
        let mut half = 20_000u32.to_be_bytes().to_vec();
        half.resize(4 + 10_000, 1);
        tx.start_send(Ok(half)).unwrap();
        {
            let mut read = std::pin::pin!(codec.read_request(&protocol, &mut stream));
            assert!(libp2p::futures::poll!(read.as_mut()).is_pending());
            assert_eq!(reading(), 1);
        }
        assert_eq!(reading(), 0);
        // A frame cut short.
        let mut cut = 100_000u32.to_be_bytes().to_vec();
        cut.resize(4 + 40_000, 9);
        let read = codec
            .read_request(&SYNC_PROTOCOL, &mut Cursor::new(cut))
            .await;
        assert!(read.is_err());
        assert_eq!(reading(), 0);
    }

    #[tokio::test]
    async fn a_truncated_frame_or_a_missing_ack_is_an_error() {
        let mut bytes = 10u32.to_be_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        let read = SyncCodec::default()
            .read_request(&SYNC_PROTOCOL, &mut Cursor::new(bytes))
            .await;
        assert!(read.is_err());
        let mut wire = Cursor::new(Vec::new());
        SyncCodec::default()
            .write_response(&SYNC_PROTOCOL, &mut wire, Ack)
            .await
            .unwrap();
        wire.set_position(0);
        let ack = SyncCodec::default()
            .read_response(&SYNC_PROTOCOL, &mut wire)
            .await;
        assert_eq!(ack.unwrap(), Ack);
        let none = SyncCodec::default()
            .read_response(&SYNC_PROTOCOL, &mut Cursor::new(Vec::new()))
            .await;
        assert!(none.is_err());
    }
}
