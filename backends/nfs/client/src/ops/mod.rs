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
mod fh;
mod session;
mod status;

pub use attr::{Attrs, Bitmap, FileType, Owner, Time};
pub use fh::{FileHandle, MAX_FH, MAX_NAME};
pub use session::{
    ChannelAttrs, CreateSessionArgs, CreateSessionRes, ExchangeIdArgs, ExchangeIdRes, SequenceArgs, SequenceRes,
    SessionId,
};
pub use status::Status;

use crate::error::{Error, Result};
use crate::xdr::{Decoder, Encoder};

wire_enum! {
    /// The operations this client sends or decodes (nfs_opnum4).
    OpCode, Error::UnknownOp;
    GetAttr = 9, GetFh = 10, Lookup = 15, PutFh = 22, PutRootFh = 24, ExchangeId = 42,
    CreateSession = 43, DestroySession = 44, Sequence = 53, DestroyClientId = 57,
    ReclaimComplete = 58, Illegal = 10044,
}

/// One operation of a COMPOUND request, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Establish or confirm a client id.
    ExchangeId(ExchangeIdArgs),
    /// Create a session for a client id.
    CreateSession(CreateSessionArgs),
    /// First op of every compound in a session: slot and sequence id.
    Sequence(SequenceArgs),
    /// Set the current file handle to the server's root.
    PutRootFh,
    /// Set the current file handle.
    PutFh(FileHandle),
    /// Replace the current file handle (a directory) by its entry `name`.
    Lookup(String),
    /// Return the current file handle.
    GetFh,
    /// Return the attributes in the bitmap of the current file handle.
    GetAttr(Bitmap),
    /// Tell the server the client has no more state to reclaim (`one_fs`: for one fs only).
    ReclaimComplete {
        /// Whether the completion covers the current file system only.
        one_fs: bool,
    },
    /// Destroy a session.
    DestroySession(SessionId),
    /// Destroy a client id (after its sessions).
    DestroyClientId(u64),
}

impl Op {
    /// The op's number.
    pub fn code(&self) -> OpCode {
        match self {
            Op::ExchangeId(_) => OpCode::ExchangeId,
            Op::CreateSession(_) => OpCode::CreateSession,
            Op::Sequence(_) => OpCode::Sequence,
            Op::PutRootFh => OpCode::PutRootFh,
            Op::PutFh(_) => OpCode::PutFh,
            Op::Lookup(_) => OpCode::Lookup,
            Op::GetFh => OpCode::GetFh,
            Op::GetAttr(_) => OpCode::GetAttr,
            Op::ReclaimComplete { .. } => OpCode::ReclaimComplete,
            Op::DestroySession(_) => OpCode::DestroySession,
            Op::DestroyClientId(_) => OpCode::DestroyClientId,
        }
    }

    /// Encodes the op number and arguments (nfs_argop4).
    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.code() as u32);
        match self {
            Op::ExchangeId(a) => a.encode(e),
            Op::CreateSession(a) => a.encode(e),
            Op::Sequence(a) => a.encode(e),
            Op::PutRootFh | Op::GetFh => {}
            Op::PutFh(fh) => fh.encode(e),
            Op::Lookup(name) => {
                e.string(name);
            }
            Op::GetAttr(b) => b.encode(e),
            Op::ReclaimComplete { one_fs } => {
                e.bool(*one_fs);
            }
            Op::DestroySession(s) => {
                e.opaque_fixed(s);
            }
            Op::DestroyClientId(c) => {
                e.u64(*c);
            }
        }
    }
}

/// The successful result of one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum OpReply {
    ExchangeId(ExchangeIdRes),
    CreateSession(CreateSessionRes),
    Sequence(SequenceRes),
    PutRootFh,
    PutFh,
    Lookup,
    GetFh(FileHandle),
    GetAttr(Attrs),
    ReclaimComplete,
    DestroySession,
    DestroyClientId,
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
}

impl OpResult {
    /// Decodes an nfs_resop4: an unknown op or status is an error.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let op = OpCode::from_u32(d.u32()?)?;
        let status = Status::from_u32(d.u32()?)?;
        if status != Status::Ok {
            // None of these ops has a body on failure.
            return Ok(Self { op, status, reply: None });
        }
        let reply = match op {
            OpCode::ExchangeId => OpReply::ExchangeId(ExchangeIdRes::decode(d)?),
            OpCode::CreateSession => OpReply::CreateSession(CreateSessionRes::decode(d)?),
            OpCode::Sequence => OpReply::Sequence(SequenceRes::decode(d)?),
            OpCode::PutRootFh => OpReply::PutRootFh,
            OpCode::PutFh => OpReply::PutFh,
            OpCode::Lookup => OpReply::Lookup,
            OpCode::GetFh => OpReply::GetFh(FileHandle::decode(d)?),
            OpCode::GetAttr => OpReply::GetAttr(Attrs::decode(d)?),
            OpCode::ReclaimComplete => OpReply::ReclaimComplete,
            OpCode::DestroySession => OpReply::DestroySession,
            OpCode::DestroyClientId => OpReply::DestroyClientId,
            OpCode::Illegal => return Err(Error::Protocol("OP_ILLEGAL with status OK")),
        };
        Ok(Self { op, status, reply: Some(reply) })
    }
}
