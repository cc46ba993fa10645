//! The bundle file: a hub's signed ops carried between nodes that never meet on a network (a
//! USB stick from one branch meeting to the next). Pure: generic over `std::io::Read`/`Write`,
//! no files, no clock.
//!
//! # Format (version 1)
//! ```text
//! magic    b"moot-bundle\n"                    12 bytes
//! version  1                                   1 byte
//! hub      the hub id                          32 bytes
//! lanes    bit 0 public, bit 1 members         1 byte (at least one bit, no other bits)
//! frames   length (u32 LE, 1..=MAX_OP_BYTES) ‖ one signed op's exact bytes, repeated
//! end      0u32 LE
//! count    number of frames (u64 LE)
//! digest   SHA-256 of every byte before it      32 bytes
//! ```
//! Ops are written in the exporter's acceptance order (a causal order: each after its
//! dependencies). The digest covers the header and every frame, so a flipped byte anywhere,
//! a dropped or added frame, or a cut-off file is refused ([`BundleError`]) before any op is
//! used; nothing may follow the digest. The digest is not a signature: it tells damage from
//! an intact file, while each op's own signature (checked on import) tells who wrote it.
//!
//! ```
//! use moot_bundle::{Header, Lanes, Reader, Writer};
//! let header = Header { hub: [7; 32], lanes: Lanes::ALL };
//! let mut writer = Writer::new(Vec::new(), &header).unwrap();
//! let op = vec![1u8; moot_bundle::MIN_FRAME_BYTES]; // an op's bytes
//! writer.op(&op).unwrap();
//! let file = writer.finish().unwrap();
//! let (read, ops) = moot_bundle::read_all(&file[..], 10).unwrap();
//! assert_eq!((read, ops), (header, vec![op]));
//! ```

use std::io::{Read, Write};

use sha2::{Digest as _, Sha256};

/// The first bytes of every bundle.
pub const MAGIC: &[u8; 12] = b"moot-bundle\n";
/// The format version this code writes and reads.
pub const VERSION: u8 = 1;
/// The largest frame: one op.
pub const MAX_FRAME_BYTES: usize = moot_crypto::op::MAX_OP_BYTES;
/// Smallest frame: the smallest op. A file of tiny frames would otherwise hold more ops than
/// bytes' worth of memory (each op read is a vector of its own).
pub const MIN_FRAME_BYTES: usize = moot_crypto::op::MIN_OP_BYTES;

/// Which lanes a bundle carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lanes(u8);

impl Lanes {
    /// The public lane only.
    pub const PUBLIC: Lanes = Lanes(1);
    /// The members lane only.
    pub const MEMBERS: Lanes = Lanes(2);
    /// Both lanes.
    pub const ALL: Lanes = Lanes(3);

    /// The lanes of a byte: `None` for no lane or unknown bits.
    pub fn from_byte(byte: u8) -> Option<Lanes> {
        (1..=3).contains(&byte).then_some(Lanes(byte))
    }

    /// The byte.
    pub fn to_byte(self) -> u8 {
        self.0
    }

    /// True if the lanes include `lane`.
    pub fn contains(self, lane: moot_crypto::Lane) -> bool {
        match lane {
            moot_crypto::Lane::Public => self.0 & 1 != 0,
            moot_crypto::Lane::Members => self.0 & 2 != 0,
        }
    }

    /// `public`, `members` or `public+members`.
    pub fn as_str(self) -> &'static str {
        match self.0 {
            1 => "public",
            2 => "members",
            _ => "public+members",
        }
    }
}

/// What a bundle says about itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The hub its ops belong to.
    pub hub: [u8; 32],
    /// The lanes it carries.
    pub lanes: Lanes,
}

/// Why a bundle was refused. Nothing of a refused bundle may be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BundleError {
    /// Reading or writing failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// Not a bundle.
    #[error("not a Moot bundle (it does not start with the bundle signature)")]
    NotABundle,
    /// A version this code does not read.
    #[error("bundle format version {0} is not one this version of moot reads (it reads 1)")]
    UnknownVersion(u8),
    /// The lanes byte names no lane or unknown ones.
    #[error("the bundle's lanes byte ({0:#04x}) is not valid")]
    BadLanes(u8),
    /// The file ends before its digest: cut off (a copy interrupted, a full stick).
    #[error("the bundle is truncated: it ends before its closing digest")]
    Truncated,
    /// A frame claims more bytes than an op may have.
    #[error("a frame of {0} bytes is larger than any op")]
    FrameTooLarge(u32),
    /// A frame claims fewer bytes than any op has.
    #[error("a frame of {0} bytes is smaller than any op")]
    FrameTooSmall(u32),
    /// More ops than the reader accepts.
    #[error("the bundle holds more than {0} ops")]
    TooManyOps(usize),
    /// The digest or the count does not match the contents: altered or damaged.
    #[error("the bundle was altered or damaged: its digest does not match its contents")]
    Tampered,
    /// Bytes follow the digest.
    #[error("bytes follow the bundle's closing digest")]
    TrailingBytes,
}

/// Writes a bundle, streaming.
pub struct Writer<W: Write> {
    out: W,
    digest: Sha256,
    count: u64,
    /// Bytes written so far.
    written: u64,
}

impl<W: Write> Writer<W> {
    /// Starts a bundle: writes its header.
    ///
    /// # Errors
    /// An IO error.
    pub fn new(mut out: W, header: &Header) -> Result<Self, BundleError> {
        let mut digest = Sha256::new();
        let mut head = Vec::with_capacity(46);
        head.extend_from_slice(MAGIC);
        head.push(VERSION);
        head.extend_from_slice(&header.hub);
        head.push(header.lanes.to_byte());
        out.write_all(&head)?;
        digest.update(&head);
        Ok(Writer {
            out,
            digest,
            count: 0,
            written: head.len() as u64,
        })
    }

    /// Appends one op's bytes.
    ///
    /// # Errors
    /// [`BundleError::FrameTooLarge`] for an oversized op, [`BundleError::FrameTooSmall`] for
    /// one shorter than any op; an IO error.
    pub fn op(&mut self, bytes: &[u8]) -> Result<(), BundleError> {
        let len = u32::try_from(bytes.len())
            .ok()
            .filter(|n| (*n as usize) <= MAX_FRAME_BYTES)
            .ok_or(BundleError::FrameTooLarge(
                u32::try_from(bytes.len()).unwrap_or(u32::MAX),
            ))?;
        if (len as usize) < MIN_FRAME_BYTES {
            return Err(BundleError::FrameTooSmall(len));
        }
        let prefix = len.to_le_bytes();
        self.out.write_all(&prefix)?;
        self.out.write_all(bytes)?;
        self.digest.update(prefix);
        self.digest.update(bytes);
        self.count += 1;
        self.written += prefix.len() as u64 + u64::from(len);
        Ok(())
    }

    /// The bundle's size once [`Writer::finish`]ed (the end, count and digest added): what a
    /// pipe or a terminal it went to cannot tell.
    pub fn finished_size(&self) -> u64 {
        self.written + 4 + 8 + 32
    }

    /// Ops written so far.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Writes the end, the count and the digest; returns the writer (flushed).
    ///
    /// # Errors
    /// An IO error.
    pub fn finish(mut self) -> Result<W, BundleError> {
        let mut tail = Vec::with_capacity(12);
        tail.extend_from_slice(&0u32.to_le_bytes());
        tail.extend_from_slice(&self.count.to_le_bytes());
        self.digest.update(&tail);
        self.out.write_all(&tail)?;
        let digest: [u8; 32] = self.digest.finalize().into();
        self.out.write_all(&digest)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads a bundle, streaming. [`Reader::next_op`] yields the ops; `None` comes only after the
/// count and digest were checked. A caller that must not use anything of a damaged bundle
/// reads it whole first ([`read_all`]).
pub struct Reader<R: Read> {
    input: R,
    digest: Sha256,
    count: u64,
    done: bool,
}

fn read_exact_or_truncated<R: Read>(input: &mut R, buf: &mut [u8]) -> Result<(), BundleError> {
    input.read_exact(buf).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            BundleError::Truncated
        } else {
            BundleError::Io(e)
        }
    })
}

impl<R: Read> Reader<R> {
    /// Reads and checks the header.
    ///
    /// # Errors
    /// [`BundleError::NotABundle`], [`BundleError::UnknownVersion`], [`BundleError::BadLanes`],
    /// [`BundleError::Truncated`], or an IO error.
    pub fn open(mut input: R) -> Result<(Self, Header), BundleError> {
        let mut head = [0u8; 46];
        read_exact_or_truncated(&mut input, &mut head[..12]).map_err(|e| match e {
            BundleError::Truncated => BundleError::NotABundle,
            other => other,
        })?;
        if &head[..12] != MAGIC {
            return Err(BundleError::NotABundle);
        }
        read_exact_or_truncated(&mut input, &mut head[12..])?;
        if head[12] != VERSION {
            return Err(BundleError::UnknownVersion(head[12]));
        }
        let mut hub = [0u8; 32];
        hub.copy_from_slice(&head[13..45]);
        let lanes = Lanes::from_byte(head[45]).ok_or(BundleError::BadLanes(head[45]))?;
        let mut digest = Sha256::new();
        digest.update(head);
        Ok((
            Reader {
                input,
                digest,
                count: 0,
                done: false,
            },
            Header { hub, lanes },
        ))
    }

    /// The next op's bytes, or `None` at the end (after the count and digest matched).
    ///
    /// # Errors
    /// [`BundleError::Truncated`], [`BundleError::FrameTooLarge`],
    /// [`BundleError::FrameTooSmall`], [`BundleError::Tampered`],
    /// [`BundleError::TrailingBytes`], or an IO error.
    pub fn next_op(&mut self) -> Result<Option<Vec<u8>>, BundleError> {
        if self.done {
            return Ok(None);
        }
        let mut prefix = [0u8; 4];
        read_exact_or_truncated(&mut self.input, &mut prefix)?;
        self.digest.update(prefix);
        let len = u32::from_le_bytes(prefix);
        if len == 0 {
            let mut count = [0u8; 8];
            read_exact_or_truncated(&mut self.input, &mut count)?;
            self.digest.update(count);
            let mut stated = [0u8; 32];
            read_exact_or_truncated(&mut self.input, &mut stated)?;
            let actual: [u8; 32] = std::mem::take(&mut self.digest).finalize().into();
            if actual != stated || u64::from_le_bytes(count) != self.count {
                return Err(BundleError::Tampered);
            }
            let mut more = [0u8; 1];
            if self.input.read(&mut more)? != 0 {
                return Err(BundleError::TrailingBytes);
            }
            self.done = true;
            return Ok(None);
        }
        if len as usize > MAX_FRAME_BYTES {
            return Err(BundleError::FrameTooLarge(len));
        }
        if (len as usize) < MIN_FRAME_BYTES {
            return Err(BundleError::FrameTooSmall(len));
        }
        let mut bytes = vec![0u8; len as usize];
        read_exact_or_truncated(&mut self.input, &mut bytes)?;
        self.digest.update(&bytes);
        self.count += 1;
        Ok(Some(bytes))
    }
}

/// Reads a whole bundle, checking its digest before returning anything: at most `max_ops`
/// ops.
///
/// # Errors
/// Any [`BundleError`]; [`BundleError::TooManyOps`] past `max_ops`.
pub fn read_all<R: Read>(input: R, max_ops: usize) -> Result<(Header, Vec<Vec<u8>>), BundleError> {
    let (mut reader, header) = Reader::open(input)?;
    let mut ops = Vec::new();
    while let Some(op) = reader.next_op()? {
        if ops.len() == max_ops {
            return Err(BundleError::TooManyOps(max_ops));
        }
        ops.push(op);
    }
    Ok((header, ops))
}
