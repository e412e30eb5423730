//! The crate's one error type: every way an XDR decode, an RPC exchange or an NFS call fails.

use crate::ops::{OpCode, Status};

/// Every failure of the client, from a short XDR buffer to an NFS status.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The buffer ended before a value: `needed` bytes were wanted, `remaining` were left.
    #[error("XDR: truncated, needed {needed} bytes but {remaining} remain")]
    Truncated {
        /// Bytes the value needed.
        needed: u64,
        /// Bytes left in the buffer.
        remaining: usize,
    },
    /// A length or count on the wire exceeded the limit for that field.
    #[error("XDR: {what} of {len} exceeds the limit of {limit}")]
    TooLong {
        /// The field.
        what: &'static str,
        /// The length the peer sent.
        len: u64,
        /// The most this client accepts.
        limit: u64,
    },
    /// The padding after an opaque or string was not zero.
    #[error("XDR: nonzero padding after an opaque")]
    BadPadding,
    /// A value outside its enumeration (bool, message type, flavor, ...).
    #[error("XDR: invalid {what} {value}")]
    BadValue {
        /// The field.
        what: &'static str,
        /// The value the peer sent.
        value: u32,
    },
    /// A string that is not UTF-8.
    #[error("XDR: string is not UTF-8")]
    BadUtf8,
    /// Bytes left over after a complete value.
    #[error("XDR: {0} trailing bytes")]
    Trailing(usize),
    /// More supplementary groups than AUTH_SYS carries (16).
    #[error("AUTH_SYS carries at most 16 supplementary groups, got {0}")]
    TooManyGroups(usize),
    /// The server does not serve the program.
    #[error("RPC: program unavailable")]
    ProgUnavail,
    /// The server serves the program, but not this version.
    #[error("RPC: program version mismatch (server supports {low}..={high})")]
    ProgMismatch {
        /// Lowest version served.
        low: u32,
        /// Highest version served.
        high: u32,
    },
    /// The server does not know the procedure.
    #[error("RPC: procedure unavailable")]
    ProcUnavail,
    /// The server could not decode the arguments.
    #[error("RPC: garbage arguments")]
    GarbageArgs,
    /// The server failed internally.
    #[error("RPC: system error on the server")]
    SystemErr,
    /// The server speaks another RPC version.
    #[error("RPC: RPC version mismatch (server supports {low}..={high})")]
    RpcMismatch {
        /// Lowest RPC version.
        low: u32,
        /// Highest RPC version.
        high: u32,
    },
    /// The server refused the credentials (auth_stat in RFC 5531).
    #[error("RPC: authentication error {0}")]
    AuthError(u32),
    /// A record larger than the connection accepts.
    #[error("RPC: record of {len} bytes exceeds the limit of {limit}")]
    RecordTooLarge {
        /// Bytes the record would have.
        len: u64,
        /// Most bytes accepted.
        limit: usize,
    },
    /// A socket error.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The connection closed or was reset while the call was pending.
    #[error("connection closed")]
    ConnectionClosed,
    /// No reply arrived within the call's timeout.
    #[error("call timed out")]
    Timeout,
    /// An operation number this client does not know.
    #[error("NFS: unknown operation {0}")]
    UnknownOp(u32),
    /// A status this client does not know.
    #[error("NFS: unknown status {0}")]
    UnknownStatus(u32),
    /// An operation's result in an order the request did not ask for.
    #[error("NFS: expected the result of {expected:?}, got {got:?}")]
    UnexpectedOp {
        /// The operation asked for at this position.
        expected: OpCode,
        /// The operation the reply carried.
        got: Option<OpCode>,
    },
    /// An operation failed on the server.
    #[error("NFS: {op:?} failed with {status:?}")]
    Nfs {
        /// The operation.
        op: OpCode,
        /// Its status.
        status: Status,
    },
    /// LOCK or LOCKT found a conflicting lock.
    #[error("NFS: lock denied by a conflicting lock at {} (+{})", .0.offset, .0.length)]
    LockDenied(Box<crate::ops::Denied>),
    /// A reply that is well-formed XDR but breaks the protocol (wrong session, missing result...).
    #[error("NFS: protocol violation: {0}")]
    Protocol(&'static str),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;
