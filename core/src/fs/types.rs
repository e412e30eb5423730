//! Argument and result types of the [`FileSystem`](super::FileSystem) trait.

use crate::abi::{self, fattr};
use crate::request::DeviceId;
use std::time::Duration;

/// Who asked, and where the request was polled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Context {
    /// Device (tenant) the request came from.
    pub device: DeviceId,
    /// The request's `unique` id.
    pub unique: u64,
    /// Caller's fsuid in the guest.
    pub uid: u32,
    /// Caller's fsgid in the guest.
    pub gid: u32,
    /// Caller's thread-group id in the guest (0 for kernel-internal requests).
    pub pid: u32,
    /// A supplementary group of the caller, sent with create-type requests when
    /// `CREATE_SUPP_GROUP` is negotiated (the parent directory's group, if the caller is in it).
    pub supplementary_gid: Option<u32>,
    /// Index of the HAL thread handling the request.
    pub thread: u16,
    /// Virtqueue the request came from.
    pub queue: u16,
}

/// Inode attributes as sent to the guest (the wire struct itself: no conversion on replies).
pub type Attr = abi::Attr;

/// The answer to a name-creating or name-resolving request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// Node id the guest will use for this inode (0 = negative entry, cached as "absent").
    pub ino: u64,
    /// Generation: (ino, generation) must be unique over the file system's lifetime.
    pub generation: u64,
    /// Attributes of the inode.
    pub attr: Attr,
    /// How long the guest may cache the name → inode mapping.
    pub entry_timeout: Duration,
    /// How long the guest may cache the attributes.
    pub attr_timeout: Duration,
}

/// A time to set in SETATTR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOrNow {
    /// The current time of the server.
    Now,
    /// Seconds and nanoseconds since the epoch.
    Time {
        /// Seconds since the epoch (may be negative).
        sec: i64,
        /// Nanoseconds, 0..1e9.
        nsec: u32,
    },
}

/// What SETATTR changes; `None` fields stay as they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SetAttr {
    /// New permission bits (and type bits, which must be ignored).
    pub mode: Option<u32>,
    /// New owner.
    pub uid: Option<u32>,
    /// New group.
    pub gid: Option<u32>,
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New access time.
    pub atime: Option<TimeOrNow>,
    /// New modification time.
    pub mtime: Option<TimeOrNow>,
    /// New change time (sent by some clients; backends may ignore it).
    pub ctime: Option<(i64, u32)>,
    /// The open file the change was made through (ftruncate, futimens).
    pub fh: Option<u64>,
    /// Lock owner of that open file.
    pub lock_owner: Option<u64>,
    /// Clear setuid/setgid as a write by a non-owner would (`FATTR_KILL_SUIDGID`).
    pub kill_suidgid: bool,
}

impl SetAttr {
    /// Decodes the wire struct.
    pub fn from_wire(s: &abi::SetattrIn) -> SetAttr {
        let v = s.valid;
        let has = |bit: u32| v & bit != 0;
        let time = |set: u32, now: u32, sec: u64, nsec: u32| {
            if has(now) {
                Some(TimeOrNow::Now)
            } else if has(set) {
                Some(TimeOrNow::Time { sec: sec as i64, nsec })
            } else {
                None
            }
        };
        SetAttr {
            mode: has(fattr::MODE).then_some(s.mode),
            uid: has(fattr::UID).then_some(s.uid),
            gid: has(fattr::GID).then_some(s.gid),
            size: has(fattr::SIZE).then_some(s.size),
            atime: time(fattr::ATIME, fattr::ATIME_NOW, s.atime, s.atimensec),
            mtime: time(fattr::MTIME, fattr::MTIME_NOW, s.mtime, s.mtimensec),
            ctime: has(fattr::CTIME).then_some((s.ctime as i64, s.ctimensec)),
            fh: has(fattr::FH).then_some(s.fh),
            lock_owner: has(fattr::LOCKOWNER).then_some(s.lock_owner),
            kill_suidgid: has(fattr::KILL_SUIDGID),
        }
    }
}

/// A POSIX record lock or its description, as in `struct flock` (end inclusive).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Lock {
    /// First byte.
    pub start: u64,
    /// Last byte, inclusive (`u64::MAX` = to end of file).
    pub end: u64,
    /// `F_RDLCK`, `F_WRLCK` or `F_UNLCK`.
    pub typ: u32,
    /// Owning process in the guest.
    pub pid: u32,
}

impl From<abi::FileLock> for Lock {
    fn from(l: abi::FileLock) -> Lock {
        Lock { start: l.start, end: l.end, typ: l.typ, pid: l.pid }
    }
}

impl From<Lock> for abi::FileLock {
    fn from(l: Lock) -> abi::FileLock {
        abi::FileLock { start: l.start, end: l.end, typ: l.typ, pid: l.pid }
    }
}

/// File-system statistics.
pub type Statfs = abi::Kstatfs;

/// Extended attributes as in `statx(2)`.
pub type Statx = abi::Statx;

/// What the INIT handshake offers and what the file system wants from it.
///
/// Core fills it from the guest's INIT and the session configuration, then hands it to
/// [`FileSystem::init`](super::FileSystem::init), which may change `want` and the limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnInfo {
    /// Negotiated minor protocol version.
    pub proto_minor: u32,
    /// Capabilities the guest offers (`abi::init::*` bits).
    pub capable: u64,
    /// Capabilities to enable; bits the guest does not offer are dropped.
    pub want: u64,
    /// Largest WRITE payload.
    pub max_write: u32,
    /// Largest readahead the guest may do.
    pub max_readahead: u32,
    /// Outstanding background requests the guest may queue.
    pub max_background: u16,
    /// Background requests at which the guest considers the device congested.
    pub congestion_threshold: u16,
    /// Timestamp granularity in nanoseconds.
    pub time_gran: u32,
}

/// Extension helpers for attributes.
pub trait AttrExt {
    /// The `S_IFMT` part of the mode as a dirent type (`DT_*`).
    fn dirent_type(&self) -> u32;
}

impl AttrExt for Attr {
    fn dirent_type(&self) -> u32 {
        (self.mode & libc::S_IFMT) >> 12
    }
}
