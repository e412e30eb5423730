//! NFSv4.2 extended attributes (RFC 8276): GETXATTR, SETXATTR, LISTXATTRS, REMOVEXATTR. The
//! names are those of the `user.` namespace without the prefix.

use crate::error::Result;
use crate::xdr::{Decoder, Encoder};

/// Longest attribute name accepted (Linux's XATTR_NAME_MAX).
pub const MAX_XATTR_NAME: usize = 255;
/// Largest attribute value accepted (Linux's XATTR_SIZE_MAX).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Most names in one LISTXATTRS reply accepted.
pub const MAX_XATTR_NAMES: usize = 4096;

/// setxattr_option4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetXattrHow {
    /// SETXATTR4_EITHER: create or replace.
    Either = 0,
    /// SETXATTR4_CREATE: the name must not exist (XATTR_CREATE).
    Create = 1,
    /// SETXATTR4_REPLACE: the name must exist (XATTR_REPLACE).
    Replace = 2,
}

/// SETXATTR's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetXattrArgs {
    /// Create, replace or either.
    pub how: SetXattrHow,
    /// The name (without `user.`).
    pub name: Vec<u8>,
    /// The value.
    pub value: Vec<u8>,
}

impl SetXattrArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(self.how as u32).opaque(&self.name).opaque(&self.value);
    }
}

/// LISTXATTRS' result: a page of names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListXattrsRes {
    /// The cookie of the next page.
    pub cookie: u64,
    /// The names (without `user.`).
    pub names: Vec<Vec<u8>>,
    /// Whether this is the last page.
    pub eof: bool,
}

impl ListXattrsRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let cookie = d.u64()?;
        let count = d.array_len("lxr_names", MAX_XATTR_NAMES, 4)?;
        let mut names = Vec::with_capacity(count);
        for _ in 0..count {
            names.push(d.opaque("xattrkey4", MAX_XATTR_NAME)?.to_vec());
        }
        Ok(Self { cookie, names, eof: d.bool()? })
    }

    /// Encodes the result (as a server would; tests and the fuzz corpus use it).
    pub fn encode(&self, e: &mut Encoder) {
        e.u64(self.cookie).u32(self.names.len() as u32);
        for n in &self.names {
            e.opaque(n);
        }
        e.bool(self.eof);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    #[test]
    fn lying_name_counts_and_lengths_are_refused_before_allocating() {
        let mut e = Encoder::new();
        e.u64(1).u32(u32::MAX);
        let b = e.into_bytes();
        assert!(matches!(ListXattrsRes::decode(&mut Decoder::new(&b)), Err(Error::TooLong { .. })));
        let mut e = Encoder::new();
        e.u64(1).u32(1).u32(100_000);
        let b = e.into_bytes();
        assert!(matches!(ListXattrsRes::decode(&mut Decoder::new(&b)), Err(Error::TooLong { .. })));
        let res = ListXattrsRes { cookie: 3, names: vec![b"a".to_vec()], eof: false };
        let mut e = Encoder::new();
        res.encode(&mut e);
        let b = e.into_bytes();
        assert_eq!(ListXattrsRes::decode(&mut Decoder::new(&b)).unwrap(), res);
    }
}
