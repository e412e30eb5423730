//! Byte-range locks: LOCK, LOCKT and LOCKU (RFC 8881 §18.10–18.12), and the conflicting
//! lock a denied request reports.

use crate::error::{Error, Result};
use crate::ops::attr::MAX_OWNER;
use crate::ops::state::StateId;
use crate::xdr::{Decoder, Encoder};

/// nfs_lock_type4.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockType {
    /// READ_LT: shared.
    Read = 1,
    /// WRITE_LT: exclusive.
    Write = 2,
    /// READW_LT: shared, the client will wait.
    ReadWait = 3,
    /// WRITEW_LT: exclusive, the client will wait.
    WriteWait = 4,
}

impl LockType {
    fn from_u32(value: u32) -> Result<Self> {
        Ok(match value {
            1 => Self::Read,
            2 => Self::Write,
            3 => Self::ReadWait,
            4 => Self::WriteWait,
            value => return Err(Error::BadValue { what: "nfs_lock_type4", value }),
        })
    }

    /// Whether the lock is exclusive.
    pub fn is_write(self) -> bool {
        matches!(self, Self::Write | Self::WriteWait)
    }
}

/// lock_owner4: who holds a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// The client id.
    pub clientid: u64,
    /// The owner's name (at most 1024 bytes).
    pub owner: Vec<u8>,
}

impl LockOwner {
    fn encode(&self, e: &mut Encoder) {
        e.u64(self.clientid).opaque(&self.owner);
    }
}

/// Which lock state LOCK extends (locker4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Locker {
    /// The owner's first lock on this open: from the open's stateid.
    New {
        /// The open's stateid.
        open_stateid: StateId,
        /// The lock owner.
        owner: LockOwner,
    },
    /// A later lock: from the owner's lock stateid.
    Existing(StateId),
}

/// LOCK's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockArgs {
    /// Lock type.
    pub locktype: LockType,
    /// Start.
    pub offset: u64,
    /// Length (`u64::MAX`: to the end of the file).
    pub length: u64,
    /// Lock state to extend.
    pub locker: Locker,
    /// A reclaim, after a server restart, of a lock held before it (grace period only).
    pub reclaim: bool,
}

impl LockArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(self.locktype as u32).bool(self.reclaim).u64(self.offset).u64(self.length);
        match &self.locker {
            Locker::New { open_stateid, owner } => {
                e.bool(true).u32(0);
                open_stateid.encode(e);
                e.u32(0);
                owner.encode(e);
            }
            Locker::Existing(s) => {
                e.bool(false);
                s.encode(e);
                e.u32(0);
            }
        }
    }
}

/// LOCKT's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockTestArgs {
    /// Lock type.
    pub locktype: LockType,
    /// Start.
    pub offset: u64,
    /// Length.
    pub length: u64,
    /// Who asks (its own locks never conflict).
    pub owner: LockOwner,
}

impl LockTestArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(self.locktype as u32).u64(self.offset).u64(self.length);
        self.owner.encode(e);
    }
}

/// LOCKU's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnlockArgs {
    /// Lock type (ignored by servers, but sent).
    pub locktype: LockType,
    /// The owner's lock stateid.
    pub stateid: StateId,
    /// Start.
    pub offset: u64,
    /// Length.
    pub length: u64,
}

impl UnlockArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u32(self.locktype as u32).u32(0);
        self.stateid.encode(e);
        e.u64(self.offset).u64(self.length);
    }
}

/// LOCK4denied: the lock in the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denied {
    /// Its start.
    pub offset: u64,
    /// Its length.
    pub length: u64,
    /// Its type.
    pub locktype: LockType,
    /// Its owner.
    pub owner: LockOwner,
}

impl Denied {
    /// Decodes a LOCK4denied.
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self {
            offset: d.u64()?,
            length: d.u64()?,
            locktype: LockType::from_u32(d.u32()?)?,
            owner: LockOwner { clientid: d.u64()?, owner: d.opaque("lock owner", MAX_OWNER)?.to_vec() },
        })
    }

    /// Encodes it (as a server would; tests and the fuzz corpus use it).
    pub fn encode(&self, e: &mut Encoder) {
        e.u64(self.offset).u64(self.length).u32(self.locktype as u32);
        self.owner.encode(e);
    }
}
