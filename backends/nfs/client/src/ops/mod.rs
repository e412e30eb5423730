//! NFSv4.1 operations: their numbers, their arguments ([`Op`]) and their results
//! ([`OpReply`]), one file per family.

/// A wire enum of protocol numbers: `Name = number` pairs become a C-like enum whose
/// `from_u32` maps an unknown number to the given error, never to a value.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $ty:ident, $unknown:path; $($name:ident = $value:literal,)*) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[allow(missing_docs)]
        pub enum $ty { $($name = $value,)* }

        impl $ty {
            /// The value with number `value`; an unknown number is an error.
            pub fn from_u32(value: u32) -> Result<Self> {
                match value {
                    $($value => Ok(Self::$name),)*
                    _ => Err($unknown(value)),
                }
            }
        }
    };
}

pub mod attr;
pub mod dir;
mod fh;
pub mod io;
pub mod lock;
pub mod namespace;
pub mod newattr;
mod session;
pub mod state;
mod status;
pub mod v42;
pub mod xattr;

pub use attr::{Attrs, Bitmap, FileType, Owner, Time};
pub use dir::{DirEntry, ReadDirArgs, ReadDirRes};
pub use fh::{FileHandle, MAX_FH, MAX_NAME};
pub use io::{Claim, CreateHow, OpenArgs, OpenRes, ReadRes, Stable, WriteRes};
pub use lock::{Denied, LockArgs, LockOwner, LockTestArgs, LockType, Locker, UnlockArgs};
pub use namespace::{CreateArgs, CreateKind, CreateRes};
pub use newattr::{NewAttrs, SetTime};
pub use session::{
    ChannelAttrs, CreateSessionArgs, CreateSessionRes, ExchangeIdArgs, ExchangeIdRes, SequenceArgs, SequenceRes,
    SessionId,
};
pub use state::{ChangeInfo, StateId, Verifier};
pub use status::Status;
pub use v42::{Content, CopyArgs, CopyRes, SeekRes};
pub use xattr::{ListXattrsRes, SetXattrArgs, SetXattrHow};

use crate::error::{Error, Result};
use crate::xdr::{Decoder, Encoder};

wire_enum! {
    /// The operations this client sends or decodes (nfs_opnum4).
    OpCode, Error::UnknownOp;
    Access = 3, Close = 4, Commit = 5, Create = 6, GetAttr = 9, GetFh = 10, Link = 11, Lock = 12, LockT = 13, LockU = 14,
    Lookup = 15, LookupP = 16, Open = 18, PutFh = 22, PutRootFh = 24, Read = 25, ReadDir = 26,
    ReadLink = 27, Remove = 28, Rename = 29, RestoreFh = 31, SaveFh = 32, SetAttr = 34,
    Write = 38, BindConnToSession = 41, ExchangeId = 42, CreateSession = 43, DestroySession = 44, Sequence = 53,
    DestroyClientId = 57, ReclaimComplete = 58, Allocate = 59, Copy = 60, Deallocate = 62, Seek = 69,
    GetXattr = 72, SetXattr = 73, ListXattrs = 74, RemoveXattr = 75,
    Illegal = 10044,
}

/// ACCESS4_* bits (RFC 8881 §18.1).
pub mod access {
    /// Read data or list a directory.
    pub const READ: u32 = 0x01;
    /// Look up a name in a directory.
    pub const LOOKUP: u32 = 0x02;
    /// Rewrite data or change a directory's entries.
    pub const MODIFY: u32 = 0x04;
    /// Append data or add entries.
    pub const EXTEND: u32 = 0x08;
    /// Delete entries of a directory.
    pub const DELETE: u32 = 0x10;
    /// Execute a file.
    pub const EXECUTE: u32 = 0x20;
}

/// One operation of a COMPOUND request, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Establish or confirm a client id.
    ExchangeId(ExchangeIdArgs),
    /// Create a session for a client id.
    CreateSession(CreateSessionArgs),
    /// Bind this connection to a session's fore channel (after a reconnect).
    BindConnToSession(SessionId),
    /// First op of every compound in a session: slot and sequence id.
    Sequence(SequenceArgs),
    /// Set the current file handle to the server's root.
    PutRootFh,
    /// Set the current file handle.
    PutFh(FileHandle),
    /// Replace the current file handle (a directory) by its entry `name`.
    Lookup(Vec<u8>),
    /// Replace the current file handle (a directory) by its parent.
    LookupP,
    /// Save the current file handle.
    SaveFh,
    /// Make the saved file handle current again.
    RestoreFh,
    /// Return the current file handle.
    GetFh,
    /// Return the attributes in the bitmap of the current file handle.
    GetAttr(Bitmap),
    /// Set attributes of the current file handle (the stateid of an open for a size change).
    SetAttr(StateId, NewAttrs),
    /// Which of the ACCESS4_* bits the caller has on the current file handle.
    Access(u32),
    /// Read a page of the current directory.
    ReadDir(ReadDirArgs),
    /// Open (and maybe create) a file.
    Open(OpenArgs),
    /// Close an open.
    Close(StateId),
    /// Read `count` bytes at `offset`.
    Read {
        /// The open's stateid.
        stateid: StateId,
        /// Offset.
        offset: u64,
        /// Bytes wanted.
        count: u32,
    },
    /// Write `data` at `offset`.
    Write {
        /// The open's stateid.
        stateid: StateId,
        /// Offset.
        offset: u64,
        /// How stable the data must be before the reply.
        stable: Stable,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Make `count` bytes at `offset` (0, 0: the whole file) stable.
    Commit {
        /// Offset.
        offset: u64,
        /// Bytes (0: to the end).
        count: u32,
    },
    /// Create a non-regular object in the current directory.
    Create(CreateArgs),
    /// Remove the entry `name` of the current directory.
    Remove(Vec<u8>),
    /// Rename the saved directory's `old` to the current directory's `new`.
    Rename(Vec<u8>, Vec<u8>),
    /// Link the saved file handle as `name` in the current directory.
    Link(Vec<u8>),
    /// Read the current symlink.
    ReadLink,
    /// Take or extend a byte-range lock.
    Lock(LockArgs),
    /// Test for a conflicting lock.
    LockT(LockTestArgs),
    /// Release a byte range.
    LockU(UnlockArgs),
    /// Tell the server the client has no more state to reclaim (`one_fs`: for one fs only).
    ReclaimComplete {
        /// Whether the completion covers the current file system only.
        one_fs: bool,
    },
    /// Destroy a session.
    DestroySession(SessionId),
    /// Destroy a client id (after its sessions).
    DestroyClientId(u64),
    /// NFSv4.2: reserve `length` bytes at `offset` of the current file.
    Allocate {
        /// An open stateid of the file.
        stateid: StateId,
        /// Offset.
        offset: u64,
        /// Bytes.
        length: u64,
    },
    /// NFSv4.2: punch a hole of `length` bytes at `offset` of the current file.
    Deallocate {
        /// An open stateid of the file.
        stateid: StateId,
        /// Offset.
        offset: u64,
        /// Bytes.
        length: u64,
    },
    /// NFSv4.2: the next data or hole at or after `offset` of the current file.
    Seek {
        /// An open stateid of the file.
        stateid: StateId,
        /// Where to start.
        offset: u64,
        /// Data or hole.
        what: Content,
    },
    /// NFSv4.2: copy from the saved file handle to the current one, synchronously.
    Copy(CopyArgs),
    /// RFC 8276: the value of the current file's `user.` attribute `name`.
    GetXattr(Vec<u8>),
    /// RFC 8276: set a `user.` attribute of the current file.
    SetXattr(SetXattrArgs),
    /// RFC 8276: a page of the current file's `user.` attribute names.
    ListXattrs {
        /// 0 first, then the previous page's cookie.
        cookie: u64,
        /// Most bytes of names wanted.
        maxcount: u32,
    },
    /// RFC 8276: remove a `user.` attribute of the current file.
    RemoveXattr(Vec<u8>),
}

impl Op {
    /// The op's number.
    pub fn code(&self) -> OpCode {
        match self {
            Op::ExchangeId(_) => OpCode::ExchangeId,
            Op::CreateSession(_) => OpCode::CreateSession,
            Op::BindConnToSession(_) => OpCode::BindConnToSession,
            Op::Sequence(_) => OpCode::Sequence,
            Op::PutRootFh => OpCode::PutRootFh,
            Op::PutFh(_) => OpCode::PutFh,
            Op::Lookup(_) => OpCode::Lookup,
            Op::LookupP => OpCode::LookupP,
            Op::SaveFh => OpCode::SaveFh,
            Op::RestoreFh => OpCode::RestoreFh,
            Op::GetFh => OpCode::GetFh,
            Op::GetAttr(_) => OpCode::GetAttr,
            Op::SetAttr(..) => OpCode::SetAttr,
            Op::Access(_) => OpCode::Access,
            Op::ReadDir(_) => OpCode::ReadDir,
            Op::Open(_) => OpCode::Open,
            Op::Close(_) => OpCode::Close,
            Op::Read { .. } => OpCode::Read,
            Op::Write { .. } => OpCode::Write,
            Op::Commit { .. } => OpCode::Commit,
            Op::Create(_) => OpCode::Create,
            Op::Remove(_) => OpCode::Remove,
            Op::Rename(..) => OpCode::Rename,
            Op::Link(_) => OpCode::Link,
            Op::ReadLink => OpCode::ReadLink,
            Op::Lock(_) => OpCode::Lock,
            Op::LockT(_) => OpCode::LockT,
            Op::LockU(_) => OpCode::LockU,
            Op::ReclaimComplete { .. } => OpCode::ReclaimComplete,
            Op::DestroySession(_) => OpCode::DestroySession,
            Op::DestroyClientId(_) => OpCode::DestroyClientId,
            Op::Allocate { .. } => OpCode::Allocate,
            Op::Deallocate { .. } => OpCode::Deallocate,
            Op::Seek { .. } => OpCode::Seek,
            Op::Copy(_) => OpCode::Copy,
            Op::GetXattr(_) => OpCode::GetXattr,
            Op::SetXattr(_) => OpCode::SetXattr,
            Op::ListXattrs { .. } => OpCode::ListXattrs,
            Op::RemoveXattr(_) => OpCode::RemoveXattr,
        }
    }

    /// Encodes the op number and arguments (nfs_argop4).
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.code() as u32);
        match self {
            Op::ExchangeId(a) => a.encode(e),
            Op::CreateSession(a) => a.encode(e),
            Op::BindConnToSession(s) => {
                // CDFC4_FORE, not in RDMA mode.
                e.opaque_fixed(s).u32(1).bool(false);
            }
            Op::Sequence(a) => a.encode(e),
            Op::PutRootFh | Op::GetFh | Op::LookupP | Op::SaveFh | Op::RestoreFh | Op::ReadLink => {}
            Op::PutFh(fh) => fh.encode(e),
            Op::Lookup(name) | Op::Remove(name) | Op::Link(name) | Op::GetXattr(name) | Op::RemoveXattr(name) => {
                e.opaque(name);
            }
            Op::GetAttr(b) => b.encode(e),
            Op::SetAttr(stateid, attrs) => {
                stateid.encode(e);
                attrs.encode(e);
            }
            Op::Access(bits) => {
                e.u32(*bits);
            }
            Op::ReadDir(a) => a.encode(e),
            Op::Open(a) => a.encode(e),
            Op::Close(stateid) => {
                e.u32(0);
                stateid.encode(e);
            }
            Op::Read { stateid, offset, count } => {
                stateid.encode(e);
                e.u64(*offset).u32(*count);
            }
            Op::Write { stateid, offset, stable, data } => {
                stateid.encode(e);
                e.u64(*offset).u32(*stable as u32).opaque(data);
            }
            Op::Commit { offset, count } => {
                e.u64(*offset).u32(*count);
            }
            Op::Create(a) => a.encode(e),
            Op::Lock(a) => a.encode(e),
            Op::LockT(a) => a.encode(e),
            Op::LockU(a) => a.encode(e),
            Op::Rename(old, new) => {
                e.opaque(old).opaque(new);
            }
            Op::ReclaimComplete { one_fs } => {
                e.bool(*one_fs);
            }
            Op::DestroySession(s) => {
                e.opaque_fixed(s);
            }
            Op::DestroyClientId(c) => {
                e.u64(*c);
            }
            Op::Allocate { stateid, offset, length } | Op::Deallocate { stateid, offset, length } => {
                stateid.encode(e);
                e.u64(*offset).u64(*length);
            }
            Op::Seek { stateid, offset, what } => {
                stateid.encode(e);
                e.u64(*offset).u32(*what as u32);
            }
            Op::Copy(a) => a.encode(e),
            Op::SetXattr(a) => a.encode(e),
            Op::ListXattrs { cookie, maxcount } => {
                e.u64(*cookie).u32(*maxcount);
            }
        }
    }
}

/// The successful result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
// Results live for one reply and are matched by value; boxing the attributes would cost an
// allocation per GETATTR for nothing.
#[allow(clippy::large_enum_variant)]
pub enum OpReply {
    ExchangeId(ExchangeIdRes),
    CreateSession(CreateSessionRes),
    /// The session the connection is now bound to.
    BindConnToSession(SessionId),
    Sequence(SequenceRes),
    PutRootFh,
    PutFh,
    Lookup,
    LookupP,
    SaveFh,
    RestoreFh,
    GetFh(FileHandle),
    GetAttr(Attrs),
    /// The attributes set.
    SetAttr(Bitmap),
    /// (supported, granted) ACCESS4_* bits.
    Access((u32, u32)),
    ReadDir(ReadDirRes),
    Open(OpenRes),
    Close(StateId),
    Read(ReadRes),
    Write(WriteRes),
    Commit(Verifier),
    Create(CreateRes),
    Remove(ChangeInfo),
    /// Source and target directories' change info.
    Rename((ChangeInfo, ChangeInfo)),
    Link(ChangeInfo),
    ReadLink(Vec<u8>),
    /// The lock stateid.
    Lock(StateId),
    LockT,
    /// The lock stateid after the release.
    LockU(StateId),
    ReclaimComplete,
    DestroySession,
    DestroyClientId,
    Allocate,
    Deallocate,
    Seek(SeekRes),
    Copy(CopyRes),
    /// The value.
    GetXattr(Vec<u8>),
    /// The file's change info.
    SetXattr(ChangeInfo),
    ListXattrs(ListXattrsRes),
    /// The file's change info.
    RemoveXattr(ChangeInfo),
}

/// One operation's result: its number, status and, on success, its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpResult {
    /// The op.
    pub op: OpCode,
    /// Its status.
    pub status: Status,
    /// Its value when the status is OK.
    pub reply: Option<OpReply>,
    /// The lock in the way, for a LOCK or LOCKT denied (NFS4ERR_DENIED).
    pub denied: Option<Denied>,
}

impl OpResult {
    /// Decodes an nfs_resop4: an unknown op or status is an error.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let op = OpCode::from_u32(d.u32()?)?;
        let status = Status::from_u32(d.u32()?)?;
        if status != Status::Ok {
            // SETATTR4res carries the attributes set even on failure; no other op here has a
            // body on failure.
            if op == OpCode::SetAttr {
                Bitmap::decode(d)?;
            }
            // COPY refused for its requirements (NFS4ERR_OFFLOAD_NO_REQS) says which it
            // could meet: copy_requirements4, two bools.
            if (op, status) == (OpCode::Copy, Status::OffloadNoReqs) {
                d.bool()?;
                d.bool()?;
            }
            let denied = match (op, status) {
                (OpCode::Lock | OpCode::LockT, Status::Denied) => Some(Denied::decode(d)?),
                _ => None,
            };
            return Ok(Self { op, status, reply: None, denied });
        }
        let reply = match op {
            OpCode::ExchangeId => OpReply::ExchangeId(ExchangeIdRes::decode(d)?),
            OpCode::CreateSession => OpReply::CreateSession(CreateSessionRes::decode(d)?),
            OpCode::BindConnToSession => {
                let session = d.opaque_array()?;
                match d.u32()? {
                    1..=3 => {}
                    value => return Err(Error::BadValue { what: "channel_dir_from_server4", value }),
                }
                d.bool()?;
                OpReply::BindConnToSession(session)
            }
            OpCode::Sequence => OpReply::Sequence(SequenceRes::decode(d)?),
            OpCode::PutRootFh => OpReply::PutRootFh,
            OpCode::PutFh => OpReply::PutFh,
            OpCode::Lookup => OpReply::Lookup,
            OpCode::LookupP => OpReply::LookupP,
            OpCode::SaveFh => OpReply::SaveFh,
            OpCode::RestoreFh => OpReply::RestoreFh,
            OpCode::GetFh => OpReply::GetFh(FileHandle::decode(d)?),
            OpCode::GetAttr => OpReply::GetAttr(Attrs::decode(d)?),
            OpCode::SetAttr => OpReply::SetAttr(Bitmap::decode(d)?),
            OpCode::Access => OpReply::Access((d.u32()?, d.u32()?)),
            OpCode::ReadDir => OpReply::ReadDir(ReadDirRes::decode(d)?),
            OpCode::Open => OpReply::Open(OpenRes::decode(d)?),
            OpCode::Close => OpReply::Close(StateId::decode(d)?),
            OpCode::Read => OpReply::Read(ReadRes::decode(d)?),
            OpCode::Write => OpReply::Write(WriteRes::decode(d)?),
            OpCode::Commit => OpReply::Commit(d.opaque_array()?),
            OpCode::Create => OpReply::Create(CreateRes::decode(d)?),
            OpCode::Remove => OpReply::Remove(ChangeInfo::decode(d)?),
            OpCode::Rename => OpReply::Rename((ChangeInfo::decode(d)?, ChangeInfo::decode(d)?)),
            OpCode::Link => OpReply::Link(ChangeInfo::decode(d)?),
            OpCode::ReadLink => OpReply::ReadLink(d.opaque("linktext4", namespace::MAX_LINK)?.to_vec()),
            OpCode::Lock => OpReply::Lock(StateId::decode(d)?),
            OpCode::LockT => OpReply::LockT,
            OpCode::LockU => OpReply::LockU(StateId::decode(d)?),
            OpCode::ReclaimComplete => OpReply::ReclaimComplete,
            OpCode::DestroySession => OpReply::DestroySession,
            OpCode::DestroyClientId => OpReply::DestroyClientId,
            OpCode::Allocate => OpReply::Allocate,
            OpCode::Deallocate => OpReply::Deallocate,
            OpCode::Seek => OpReply::Seek(SeekRes::decode(d)?),
            OpCode::Copy => OpReply::Copy(CopyRes::decode(d)?),
            OpCode::GetXattr => OpReply::GetXattr(d.opaque("xattrvalue4", xattr::MAX_XATTR_VALUE)?.to_vec()),
            OpCode::SetXattr => OpReply::SetXattr(ChangeInfo::decode(d)?),
            OpCode::ListXattrs => OpReply::ListXattrs(ListXattrsRes::decode(d)?),
            OpCode::RemoveXattr => OpReply::RemoveXattr(ChangeInfo::decode(d)?),
            OpCode::Illegal => return Err(Error::Protocol("OP_ILLEGAL with status OK")),
        };
        Ok(Self { op, status, reply: Some(reply), denied: None })
    }
}
