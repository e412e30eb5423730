//! Open state and file data: OPEN, CLOSE, READ, WRITE and COMMIT (RFC 8881 §18.16–18.32).

use crate::error::{Error, Result};
use crate::ops::attr::{Bitmap, MAX_OWNER};
use crate::ops::newattr::NewAttrs;
use crate::ops::state::{ChangeInfo, StateId, Verifier};
use crate::xdr::{Decoder, Encoder};

/// OPEN4_SHARE_ACCESS_READ.
pub const SHARE_ACCESS_READ: u32 = 1;
/// OPEN4_SHARE_ACCESS_WRITE.
pub const SHARE_ACCESS_WRITE: u32 = 2;
/// OPEN4_SHARE_ACCESS_BOTH.
pub const SHARE_ACCESS_BOTH: u32 = 3;
/// OPEN4_SHARE_ACCESS_WANT_NO_DELEG: this client has no callback channel.
pub const SHARE_ACCESS_WANT_NO_DELEG: u32 = 0x0400;
/// Most bytes of READ data accepted from a server.
pub const MAX_DATA: usize = 4 << 20;

/// How OPEN creates a file (createhow4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CreateHow {
    /// No create: the file must exist.
    NoCreate,
    /// UNCHECKED4: create or open the existing file.
    Unchecked(NewAttrs),
    /// GUARDED4: create; an existing file is NFS4ERR_EXIST (`O_EXCL`).
    Guarded(NewAttrs),
}

/// Which file OPEN opens (open_claim4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// CLAIM_NULL: the entry `name` of the current file handle (a directory).
    Null(Vec<u8>),
    /// CLAIM_FH: the current file handle itself.
    Fh,
    /// CLAIM_PREVIOUS: reclaim this file's open after a server restart, in its grace period.
    Previous,
}

/// OPEN's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenArgs {
    /// OPEN4_SHARE_ACCESS_* (and WANT_* flags).
    pub share_access: u32,
    /// OPEN4_SHARE_DENY_*.
    pub share_deny: u32,
    /// The client id.
    pub clientid: u64,
    /// The open owner (at most 1024 bytes).
    pub owner: Vec<u8>,
    /// Whether and how to create.
    pub how: CreateHow,
    /// Which file.
    pub claim: Claim,
}

impl OpenArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(0).u32(self.share_access).u32(self.share_deny);
        e.u64(self.clientid).opaque(&self.owner);
        match &self.how {
            CreateHow::NoCreate => {
                e.u32(0);
            }
            CreateHow::Unchecked(a) => {
                e.u32(1).u32(0);
                a.encode(e);
            }
            CreateHow::Guarded(a) => {
                e.u32(1).u32(1);
                a.encode(e);
            }
        }
        match &self.claim {
            Claim::Null(name) => {
                e.u32(0).opaque(name);
            }
            Claim::Previous => {
                e.u32(1).u32(0); // delegation type: none
            }
            Claim::Fh => {
                e.u32(4);
            }
        }
    }
}

/// OPEN's result (the delegation, if any, is decoded and dropped: this client asks for none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenRes {
    /// The open stateid.
    pub stateid: StateId,
    /// The directory's change info.
    pub cinfo: ChangeInfo,
    /// OPEN4_RESULT_* flags.
    pub rflags: u32,
    /// The attributes the server set at create.
    pub attrset: Bitmap,
    /// Whether the server granted a delegation anyway.
    pub delegated: bool,
}

fn skip_ace(d: &mut Decoder<'_>) -> Result<()> {
    d.u32()?;
    d.u32()?;
    d.u32()?;
    d.opaque("ace who", MAX_OWNER)?;
    Ok(())
}

impl OpenRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let stateid = StateId::decode(d)?;
        let cinfo = ChangeInfo::decode(d)?;
        let rflags = d.u32()?;
        let attrset = Bitmap::decode(d)?;
        let delegated = match d.u32()? {
            0 => false,
            1 => {
                StateId::decode(d)?;
                d.bool()?;
                skip_ace(d)?;
                true
            }
            2 => {
                StateId::decode(d)?;
                d.bool()?;
                match d.u32()? {
                    1 => drop(d.u64()?),
                    2 => drop((d.u32()?, d.u32()?)),
                    value => return Err(Error::BadValue { what: "limit_by4", value }),
                }
                skip_ace(d)?;
                true
            }
            3 => {
                // OPEN_DELEGATE_NONE_EXT: why, and for CONTENTION/RESOURCE a bool.
                if matches!(d.u32()?, 7 | 8) {
                    d.bool()?;
                }
                false
            }
            value => return Err(Error::BadValue { what: "open_delegation_type4", value }),
        };
        Ok(Self { stateid, cinfo, rflags, attrset, delegated })
    }
}

/// stable_how4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stable {
    /// UNSTABLE4: the server may cache the data until COMMIT.
    Unstable = 0,
    /// DATA_SYNC4.
    DataSync = 1,
    /// FILE_SYNC4.
    FileSync = 2,
}

/// WRITE's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRes {
    /// Bytes written.
    pub count: u32,
    /// How stable the data is.
    pub committed: Stable,
    /// The server's write verifier.
    pub verifier: Verifier,
}

impl WriteRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let count = d.u32()?;
        let committed = match d.u32()? {
            0 => Stable::Unstable,
            1 => Stable::DataSync,
            2 => Stable::FileSync,
            value => return Err(Error::BadValue { what: "stable_how4", value }),
        };
        Ok(Self { count, committed, verifier: d.opaque_array()? })
    }
}

/// READ's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRes {
    /// Whether the read reached the end of the file.
    pub eof: bool,
    /// The bytes.
    pub data: Vec<u8>,
}

impl ReadRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let eof = d.bool()?;
        Ok(Self { eof, data: d.opaque("read data", MAX_DATA)?.to_vec() })
    }
}
