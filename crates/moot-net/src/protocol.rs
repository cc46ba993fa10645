//! The sync protocol on the wire: `/moot/sync/1`, one engine frame per request-response
//! exchange, answered by a one-byte acknowledgement once the frame has been handled.
//!
//! A request is a 4-byte big-endian length and that many bytes, at most
//! [`MAX_MESSAGE_BYTES`] (the engine's own frame limit): a larger length is refused before
//! anything is read or allocated, so a peer cannot make this node buffer more than one frame
//! per stream. The acknowledgement is what keeps frames in order and paced: the driver sends
//! a peer its next frame only when the previous one is acknowledged, i.e. handled (see
//! `docs/PROTOCOL.md`, "On the network").

use std::io;

use libp2p::StreamProtocol;
use libp2p::futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use libp2p::request_response;
use moot_sync::wire::MAX_MESSAGE_BYTES;

/// The protocol id of the sync protocol (the engine's wire version 1 inside).
pub const SYNC_PROTOCOL: StreamProtocol = StreamProtocol::new("/moot/sync/1");

/// The acknowledgement byte: the frame was handled.
const ACK: u8 = 1;

/// Reads and writes sync frames: length-prefixed requests, one-byte responses.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncCodec;

/// An engine frame on the wire (at most [`MAX_MESSAGE_BYTES`]).
pub type Frame = Vec<u8>;

/// The response to a frame: it was handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ack;

impl request_response::Codec for SyncCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Ack;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let mut len = [0u8; 4];
        io.read_exact(&mut len).await?;
        let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
        if len > MAX_MESSAGE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("frame of {len} bytes exceeds {MAX_MESSAGE_BYTES}"),
            ));
        }
        let mut frame = vec![0u8; len];
        io.read_exact(&mut frame).await?;
        Ok(frame)
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
        frame: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
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
    request_response::Behaviour::with_codec(
        SyncCodec,
        [(SYNC_PROTOCOL, request_response::ProtocolSupport::Full)],
        // One frame in flight per peer and direction (the driver waits for the ack), so a few
        // streams cover a reconnect overlapping the old connection.
        request_response::Config::default()
            .with_request_timeout(timeout)
            .with_max_concurrent_streams(8),
    )
}
