//! A byte reader for the automerge binary format: strict LEB128 integers (no overlong or
//! oversized encodings), fixed-size takes, and length-prefixed byte strings, each of which
//! fails with [`Short`] instead of reading past the end.

/// The input ended before the value did, or an integer was overlong or too large.
///
/// The two are told apart by the caller: running out of bytes at the top level of a chunk is
/// `Truncated`, inside a column it is `Malformed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Short {
    /// The input ended inside the value.
    End,
    /// An integer was overlong (a redundant final zero group) or did not fit its type.
    BadInt,
}

/// A cursor over a byte slice.
#[derive(Debug, Clone)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `bytes`.
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, pos: 0 }
    }

    /// Bytes left to read.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len().saturating_sub(self.pos)
    }

    /// True when every byte has been read.
    pub(crate) fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// One byte.
    pub(crate) fn byte(&mut self) -> Result<u8, Short> {
        let b = *self.bytes.get(self.pos).ok_or(Short::End)?;
        self.pos += 1;
        Ok(b)
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Short> {
        let end = self.pos.checked_add(n).ok_or(Short::End)?;
        let s = self.bytes.get(self.pos..end).ok_or(Short::End)?;
        self.pos = end;
        Ok(s)
    }

    /// The next `N` bytes as an array.
    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N], Short> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// An unsigned LEB128 integer of at most 64 bits, minimally encoded.
    pub(crate) fn uleb(&mut self) -> Result<u64, Short> {
        let mut result: u64 = 0;
        let mut shift: u32 = 0;
        loop {
            let b = self.byte()?;
            let low = u64::from(b & 0x7f);
            if shift == 63 && low > 1 {
                return Err(Short::BadInt);
            }
            result |= low << shift;
            if b & 0x80 == 0 {
                // A final group of zero after the first byte adds nothing: overlong.
                if shift > 0 && b == 0 {
                    return Err(Short::BadInt);
                }
                return Ok(result);
            }
            shift += 7;
            if shift > 63 {
                return Err(Short::BadInt);
            }
        }
    }

    /// A signed LEB128 integer of at most 64 bits, minimally encoded.
    pub(crate) fn sleb(&mut self) -> Result<i64, Short> {
        let mut result: i64 = 0;
        let mut shift: u32 = 0;
        let mut prev: u8 = 0;
        loop {
            let b = self.byte()?;
            let low = i64::from(b & 0x7f);
            if shift == 63 {
                // The tenth byte may only carry the sign: 0x00 or 0x7f, and no continuation.
                if b & 0x80 != 0 || (b != 0x00 && b != 0x7f) {
                    return Err(Short::BadInt);
                }
            }
            result |= low.wrapping_shl(shift);
            if b & 0x80 == 0 {
                // Overlong: the last byte only repeats the sign bit the previous one carried.
                if shift > 0 && ((b == 0x00 && prev & 0x40 == 0) || (b == 0x7f && prev & 0x40 != 0))
                {
                    return Err(Short::BadInt);
                }
                shift += 7;
                if shift < 64 && b & 0x40 != 0 {
                    result |= (-1i64).wrapping_shl(shift);
                }
                return Ok(result);
            }
            prev = b;
            shift += 7;
            if shift > 63 {
                return Err(Short::BadInt);
            }
        }
    }

    /// A uLEB128 length followed by that many bytes.
    pub(crate) fn prefixed(&mut self) -> Result<&'a [u8], Short> {
        let len = self.uleb()?;
        let len = usize::try_from(len).map_err(|_| Short::End)?;
        self.take(len)
    }
}

/// The minimal uLEB128 encoding of `v`, written into `out`; returns the bytes used.
pub(crate) fn write_uleb(mut v: u64, out: &mut [u8; 10]) -> usize {
    let mut i = 0;
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out[i] = byte;
            return i + 1;
        }
        out[i] = byte | 0x80;
        i += 1;
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn u(bytes: &[u8]) -> Result<u64, Short> {
        let mut r = Reader::new(bytes);
        let v = r.uleb()?;
        assert!(r.is_empty());
        Ok(v)
    }

    fn s(bytes: &[u8]) -> Result<i64, Short> {
        let mut r = Reader::new(bytes);
        let v = r.sleb()?;
        assert!(r.is_empty());
        Ok(v)
    }

    #[test]
    fn unsigned_round_trips_and_rejects_overlong() {
        for v in [
            0,
            1,
            127,
            128,
            300,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut buf = [0u8; 10];
            let n = write_uleb(v, &mut buf);
            assert_eq!(u(&buf[..n]), Ok(v));
        }
        assert_eq!(u(&[0x80, 0x00]), Err(Short::BadInt));
        assert_eq!(u(&[0x81, 0x80, 0x00]), Err(Short::BadInt));
        assert_eq!(
            u(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]),
            Err(Short::BadInt)
        );
        assert_eq!(u(&[0x80]), Err(Short::End));
    }

    #[test]
    fn signed_values_and_overlong() {
        assert_eq!(s(&[0x00]), Ok(0));
        assert_eq!(s(&[0x7f]), Ok(-1));
        assert_eq!(s(&[0x3f]), Ok(63));
        assert_eq!(s(&[0xc0, 0x00]), Ok(64));
        assert_eq!(s(&[0x40]), Ok(-64));
        assert_eq!(s(&[0xbf, 0x7f]), Ok(-65));
        assert_eq!(s(&[0x80, 0x7f]), Ok(-128));
        // Overlong forms of 0 and -1.
        assert_eq!(s(&[0x80, 0x00]), Err(Short::BadInt));
        assert_eq!(s(&[0xff, 0x7f]), Err(Short::BadInt));
        let min = [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7f];
        assert_eq!(s(&min), Ok(i64::MIN));
        let max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00];
        assert_eq!(s(&max), Ok(i64::MAX));
    }
}
