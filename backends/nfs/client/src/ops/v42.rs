//! NFSv4.2 data operations (RFC 7862): SEEK (§15.11), ALLOCATE (§15.1), DEALLOCATE (§15.4)
//! and a synchronous intra-server COPY (§15.2). Sent only with minor version 2.

use crate::error::{Error, Result};
use crate::ops::io::Stable;
use crate::ops::state::{StateId, Verifier};
use crate::xdr::{Decoder, Encoder};

/// data_content4: what SEEK looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    /// NFS4_CONTENT_DATA: the next byte of data (SEEK_DATA).
    Data = 0,
    /// NFS4_CONTENT_HOLE: the next hole (SEEK_HOLE).
    Hole = 1,
}

/// SEEK's result (seek_res4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeekRes {
    /// Whether `offset` is at or past the end of the file (nothing more to find).
    pub eof: bool,
    /// Where the data or hole starts.
    pub offset: u64,
}

impl SeekRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self { eof: d.bool()?, offset: d.u64()? })
    }
}

/// COPY's arguments: source (saved file handle) to destination (current file handle), on
/// the same server (no source servers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyArgs {
    /// The source's open (or read) stateid.
    pub src_stateid: StateId,
    /// The destination's open stateid.
    pub dst_stateid: StateId,
    /// Where reading starts in the source.
    pub src_offset: u64,
    /// Where writing starts in the destination.
    pub dst_offset: u64,
    /// Bytes to copy (0: to the end of the source).
    pub count: u64,
}

impl CopyArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        self.src_stateid.encode(e);
        self.dst_stateid.encode(e);
        e.u64(self.src_offset).u64(self.dst_offset).u64(self.count);
        // ca_consecutive, ca_synchronous: a synchronous copy of one consecutive range;
        // ca_source_server: none (intra-server copy).
        e.bool(true).bool(true).u32(0);
    }
}

/// COPY's result (COPY4resok).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyRes {
    /// Bytes copied.
    pub count: u64,
    /// How stable the copied data is.
    pub committed: Stable,
    /// The server's write verifier (for a COMMIT of unstable data).
    pub verifier: Verifier,
    /// Whether the copy was done consecutively and synchronously.
    pub consecutive: bool,
    /// Whether the server did it synchronously (this client never accepts otherwise).
    pub synchronous: bool,
}

impl CopyRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        // write_response4: wr_callback_id<1>, present only for an asynchronous copy, which
        // this client (no callback channel) cannot follow.
        let callbacks = d.array_len("wr_callback_id", 1, 16)?;
        if callbacks != 0 {
            StateId::decode(d)?;
        }
        let count = d.u64()?;
        let committed = match d.u32()? {
            0 => Stable::Unstable,
            1 => Stable::DataSync,
            2 => Stable::FileSync,
            value => return Err(Error::BadValue { what: "stable_how4", value }),
        };
        let verifier = d.opaque_array()?;
        let consecutive = d.bool()?;
        let synchronous = d.bool()?;
        if callbacks != 0 {
            return Err(Error::Protocol("asynchronous COPY asked to be synchronous"));
        }
        Ok(Self { count, committed, verifier, consecutive, synchronous })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compound::CompoundReply;
    use crate::ops::{OpCode, Status};

    fn copy_reply(body: impl FnOnce(&mut Encoder)) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u32(0).string("").u32(1).u32(60).u32(0);
        body(&mut e);
        e.into_bytes()
    }

    #[test]
    fn copy_result_decodes_and_an_asynchronous_copy_is_an_error() {
        let ok = copy_reply(|e| {
            e.u32(0).u64(10).u32(1).opaque_fixed(&[1; 8]).bool(true).bool(true);
        });
        let r = CompoundReply::decode(&ok).unwrap().expect(&[OpCode::Copy]).unwrap().copy().unwrap();
        assert_eq!((r.count, r.committed, r.verifier), (10, Stable::DataSync, [1; 8]));
        let asynchronous = copy_reply(|e| {
            e.u32(1).u32(1).opaque_fixed(&[2; 12]).u64(10).u32(2).opaque_fixed(&[1; 8]).bool(true).bool(false);
        });
        assert!(CompoundReply::decode(&asynchronous).is_err());
        // A callback id array "of 2^32-1 entries" is refused before anything is allocated.
        let lying = copy_reply(|e| {
            e.u32(u32::MAX).u64(10);
        });
        assert!(matches!(CompoundReply::decode(&lying), Err(Error::TooLong { .. })));
        let bad_stable = copy_reply(|e| {
            e.u32(0).u64(10).u32(7).opaque_fixed(&[1; 8]).bool(true).bool(true);
        });
        assert!(matches!(CompoundReply::decode(&bad_stable), Err(Error::BadValue { .. })));
    }

    #[test]
    fn op_illegal_in_place_of_an_op_is_that_ops_error() {
        let mut e = Encoder::new();
        e.u32(10044).string("").u32(2).u32(22).u32(0).u32(10044).u32(10044);
        let r = CompoundReply::decode(&e.into_bytes()).unwrap().expect(&[OpCode::PutFh, OpCode::Seek]);
        assert!(matches!(r, Err(Error::Nfs { op: OpCode::Seek, status: Status::OpIllegal })), "{r:?}");
    }

    #[test]
    fn seek_args_encode_as_rfc_7862_says() {
        let mut e = Encoder::new();
        crate::ops::Op::Seek { stateid: StateId::ANONYMOUS, offset: 5, what: Content::Hole }.encode(&mut e);
        let b = e.into_bytes();
        assert_eq!(b.len(), 4 + 16 + 8 + 4);
        assert_eq!(b.get(..4), Some(&69u32.to_be_bytes()[..]));
        assert_eq!(b.get(b.len() - 4..), Some(&1u32.to_be_bytes()[..]));
    }
}
