//! XDR (RFC 4506): an encoder into a `Vec<u8>` and a decoder over a borrowed reply that never
//! panics, never indexes, and checks every length against what remains and a limit before it
//! allocates or borrows.

use crate::error::{Error, Result};

/// Bytes of zero padding that round `len` up to a multiple of four.
fn pad(len: usize) -> usize {
    (4 - (len % 4)) % 4
}

/// Appends XDR items to a buffer.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
}

impl Encoder {
    /// An empty encoder.
    pub fn new() -> Self {
        Self::default()
    }

    /// An encoder that appends to `buf` (which may already hold a header).
    pub fn from_vec(buf: Vec<u8>) -> Self {
        Self { buf }
    }

    /// Bytes encoded so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing is encoded yet.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes, by value.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }

    /// An unsigned 32-bit integer.
    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A signed 32-bit integer.
    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// An unsigned hyper (64-bit) integer.
    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A signed hyper (64-bit) integer.
    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_be_bytes());
        self
    }

    /// A boolean (0 or 1).
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.u32(u32::from(v))
    }

    /// Fixed-length opaque data: the bytes and their padding, no length.
    pub fn opaque_fixed(&mut self, data: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(data);
        self.buf.resize(self.buf.len() + pad(data.len()), 0);
        self
    }

    /// Variable-length opaque data: a length, the bytes and their padding. The caller keeps
    /// `data` within the field's limit (and below 4 GiB); longer data is cut at `u32::MAX`.
    pub fn opaque(&mut self, data: &[u8]) -> &mut Self {
        let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
        self.u32(len);
        self.opaque_fixed(data.get(..len as usize).unwrap_or(data))
    }

    /// A string: as variable-length opaque data.
    pub fn string(&mut self, s: &str) -> &mut Self {
        self.opaque(s.as_bytes())
    }

    /// Overwrites the 32-bit integer at byte offset `at` (a count known only at the end).
    /// Returns false, changing nothing, if `at` is not the start of 4 encoded bytes.
    pub fn patch_u32(&mut self, at: usize, v: u32) -> bool {
        match at.checked_add(4).and_then(|end| self.buf.get_mut(at..end)) {
            Some(slot) => {
                slot.copy_from_slice(&v.to_be_bytes());
                true
            }
            None => false,
        }
    }
}

/// Reads XDR items from a borrowed buffer, front to back.
#[derive(Debug, Clone)]
pub struct Decoder<'a> {
    buf: &'a [u8],
}

impl<'a> Decoder<'a> {
    /// A decoder over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet decoded.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The bytes not yet decoded.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes `n` bytes, or fails without consuming anything.
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.buf.split_at_checked(n) {
            Some((head, tail)) => {
                self.buf = tail;
                Ok(head)
            }
            None => Err(Error::Truncated { needed: n as u64, remaining: self.buf.len() }),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// An unsigned 32-bit integer.
    pub fn u32(&mut self) -> Result<u32> {
        self.array().map(u32::from_be_bytes)
    }

    /// A signed 32-bit integer.
    pub fn i32(&mut self) -> Result<i32> {
        self.array().map(i32::from_be_bytes)
    }

    /// An unsigned hyper (64-bit) integer.
    pub fn u64(&mut self) -> Result<u64> {
        self.array().map(u64::from_be_bytes)
    }

    /// A signed hyper (64-bit) integer.
    pub fn i64(&mut self) -> Result<i64> {
        self.array().map(i64::from_be_bytes)
    }

    /// A boolean: 0 or 1, anything else is an error.
    pub fn bool(&mut self) -> Result<bool> {
        match self.u32()? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(Error::BadValue { what: "bool", value }),
        }
    }

    /// `len` bytes of fixed-length opaque data and their zero padding.
    pub fn opaque_fixed(&mut self, len: usize) -> Result<&'a [u8]> {
        let padded =
            len.checked_add(pad(len)).ok_or(Error::Truncated { needed: u64::MAX, remaining: self.buf.len() })?;
        if padded > self.buf.len() {
            return Err(Error::Truncated { needed: padded as u64, remaining: self.buf.len() });
        }
        let data = self.take(len)?;
        if self.take(pad(len))?.iter().any(|&b| b != 0) {
            return Err(Error::BadPadding);
        }
        Ok(data)
    }

    /// A fixed-size opaque value such as a verifier or session id.
    pub fn opaque_array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let bytes = self.opaque_fixed(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    /// Variable-length opaque data of at most `limit` bytes, borrowed from the buffer.
    pub fn opaque(&mut self, what: &'static str, limit: usize) -> Result<&'a [u8]> {
        let len = self.u32()?;
        if len as usize > limit {
            return Err(Error::TooLong { what, len: len.into(), limit: limit as u64 });
        }
        self.opaque_fixed(len as usize)
    }

    /// A UTF-8 string of at most `limit` bytes, borrowed from the buffer.
    pub fn string(&mut self, what: &'static str, limit: usize) -> Result<&'a str> {
        std::str::from_utf8(self.opaque(what, limit)?).map_err(|_| Error::BadUtf8)
    }

    /// The count of a variable-length array of at most `limit` elements, each at least
    /// `min_elem` bytes on the wire: checked against both before the caller allocates.
    pub fn array_len(&mut self, what: &'static str, limit: usize, min_elem: usize) -> Result<usize> {
        let count = self.u32()? as usize;
        if count > limit {
            return Err(Error::TooLong { what, len: count as u64, limit: limit as u64 });
        }
        let needed = count.saturating_mul(min_elem);
        if needed > self.buf.len() {
            return Err(Error::Truncated { needed: needed as u64, remaining: self.buf.len() });
        }
        Ok(count)
    }

    /// A variable-length array of 32-bit integers (a bitmap4, say) of at most `limit` words.
    pub fn u32_array(&mut self, what: &'static str, limit: usize) -> Result<Vec<u32>> {
        let count = self.array_len(what, limit, 4)?;
        (0..count).map(|_| self.u32()).collect()
    }

    /// Succeeds only if every byte was decoded.
    pub fn finish(&self) -> Result<()> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(Error::Trailing(n)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone, PartialEq)]
    enum Item {
        U32(u32),
        I32(i32),
        U64(u64),
        I64(i64),
        Bool(bool),
        Opaque(Vec<u8>),
        Str(String),
        Fixed(Vec<u8>),
        Words(Vec<u32>),
    }

    fn item() -> impl Strategy<Value = Item> {
        prop_oneof![
            any::<u32>().prop_map(Item::U32),
            any::<i32>().prop_map(Item::I32),
            any::<u64>().prop_map(Item::U64),
            any::<i64>().prop_map(Item::I64),
            any::<bool>().prop_map(Item::Bool),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Item::Opaque),
            ".{0,20}".prop_map(Item::Str),
            proptest::collection::vec(any::<u8>(), 0..13).prop_map(Item::Fixed),
            proptest::collection::vec(any::<u32>(), 0..6).prop_map(Item::Words),
        ]
    }

    fn encode(items: &[Item]) -> Vec<u8> {
        let mut e = Encoder::new();
        for it in items {
            match it {
                Item::U32(v) => e.u32(*v),
                Item::I32(v) => e.i32(*v),
                Item::U64(v) => e.u64(*v),
                Item::I64(v) => e.i64(*v),
                Item::Bool(v) => e.bool(*v),
                Item::Opaque(v) => e.opaque(v),
                Item::Str(v) => e.string(v),
                Item::Fixed(v) => e.opaque_fixed(v),
                Item::Words(v) => {
                    e.u32(v.len() as u32);
                    for w in v {
                        e.u32(*w);
                    }
                    &mut e
                }
            };
        }
        e.into_bytes()
    }

    fn decode(items: &[Item], bytes: &[u8]) -> Result<Vec<Item>> {
        let mut d = Decoder::new(bytes);
        let mut out = Vec::new();
        for it in items {
            out.push(match it {
                Item::U32(_) => Item::U32(d.u32()?),
                Item::I32(_) => Item::I32(d.i32()?),
                Item::U64(_) => Item::U64(d.u64()?),
                Item::I64(_) => Item::I64(d.i64()?),
                Item::Bool(_) => Item::Bool(d.bool()?),
                Item::Opaque(_) => Item::Opaque(d.opaque("opaque", 1024)?.to_vec()),
                Item::Str(_) => Item::Str(d.string("string", 1024)?.to_owned()),
                Item::Fixed(v) => Item::Fixed(d.opaque_fixed(v.len())?.to_vec()),
                Item::Words(_) => Item::Words(d.u32_array("words", 8)?),
            });
        }
        d.finish()?;
        Ok(out)
    }

    proptest! {
        #[test]
        fn round_trip(items in proptest::collection::vec(item(), 0..12)) {
            let bytes = encode(&items);
            prop_assert_eq!(bytes.len() % 4, 0);
            prop_assert_eq!(decode(&items, &bytes).ok(), Some(items));
        }

        #[test]
        fn any_truncation_is_an_error(items in proptest::collection::vec(item(), 1..12), cut in any::<prop::sample::Index>()) {
            let bytes = encode(&items);
            prop_assume!(!bytes.is_empty());
            let short = bytes.get(..cut.index(bytes.len())).unwrap_or_default();
            prop_assert!(decode(&items, short).is_err());
        }

        #[test]
        fn garbage_never_panics(items in proptest::collection::vec(item(), 1..12), bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode(&items, &bytes);
        }

        #[test]
        fn lying_length_is_an_error(len in 5u32.., tail in proptest::collection::vec(any::<u8>(), 0..4)) {
            let mut e = Encoder::new();
            e.u32(len).opaque_fixed(&tail);
            let bytes = e.into_bytes();
            let mut d = Decoder::new(&bytes);
            prop_assert!(d.opaque("o", usize::MAX).is_err());
            let mut d = Decoder::new(&bytes);
            prop_assert!(d.array_len("a", usize::MAX, 4).is_err());
        }
    }

    #[test]
    fn limits_and_padding_are_checked() {
        let mut e = Encoder::new();
        e.opaque(b"abcde");
        let bytes = e.into_bytes();
        assert_eq!(bytes, [0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0]);
        assert!(matches!(Decoder::new(&bytes).opaque("o", 4), Err(Error::TooLong { len: 5, .. })));
        let mut dirty = bytes.clone();
        if let Some(b) = dirty.last_mut() {
            *b = 1;
        }
        assert!(matches!(Decoder::new(&dirty).opaque("o", 8), Err(Error::BadPadding)));
        assert!(matches!(Decoder::new(&[0, 0, 0, 2]).bool(), Err(Error::BadValue { .. })));
        assert!(matches!(Decoder::new(&[0, 0, 0, 2, 0xff, 0xfe, 0, 0]).string("s", 8), Err(Error::BadUtf8)));
        // A huge array count is refused before any allocation.
        assert!(Decoder::new(&[0xff, 0xff, 0xff, 0xff]).u32_array("a", usize::MAX).is_err());
    }

    #[test]
    fn patch_u32_overwrites_in_place_only() {
        let mut e = Encoder::new();
        e.u32(0).u32(7);
        assert!(e.patch_u32(0, 3));
        assert!(!e.patch_u32(6, 3));
        assert_eq!(e.as_bytes(), [0, 0, 0, 3, 0, 0, 0, 7]);
    }
}
