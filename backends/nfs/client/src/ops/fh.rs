//! File handles (nfs_fh4) and the ops that set or read the current one: PUTROOTFH, PUTFH,
//! LOOKUP, GETFH.

use crate::error::Result;
use crate::xdr::{Decoder, Encoder};

/// Most bytes of a file handle (NFS4_FHSIZE).
pub const MAX_FH: usize = 128;
/// Most bytes of a LOOKUP component this client sends or a server's name it accepts.
pub const MAX_NAME: usize = 1024;

/// An opaque server file handle (empty by default: no handle yet).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FileHandle(Vec<u8>);

impl FileHandle {
    /// A file handle of `bytes` (at most [`MAX_FH`]); `None` when longer.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        (bytes.len() <= MAX_FH).then(|| Self(bytes.to_vec()))
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Encodes the nfs_fh4.
    pub fn encode(&self, e: &mut Encoder) {
        e.opaque(&self.0);
    }

    /// Decodes an nfs_fh4.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self(d.opaque("nfs_fh4", MAX_FH)?.to_vec()))
    }
}
