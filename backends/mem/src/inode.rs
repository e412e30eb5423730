//! An inode: its identity, its content behind a lock of its own, and its metadata.

use crate::data::{SparseData, CHUNK};
use crate::dir::Directory;
use crate::locks::LockState;
use crate::space::Space;
use crate::xattr::Xattrs;
use dpfs_core::abi::{Attr, SxTime};
use dpfs_core::fs::Statx;
use dpfs_core::Errno;
use parking_lot::{Mutex, RwLock};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Block size reported to the guest.
pub(crate) const BLKSIZE: u32 = 4096;
/// Apparent size of one directory entry, as tmpfs reports it.
const BOGO_DIRENT: u64 = 20;

/// A timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Ts {
    pub sec: i64,
    pub nsec: u32,
}

impl Ts {
    pub(crate) fn now() -> Ts {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => Ts { sec: d.as_secs() as i64, nsec: d.subsec_nanos() },
            Err(_) => Ts::default(),
        }
    }
}

/// Everything about an inode that changes under its `meta` mutex.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub nlink: u32,
    pub rdev: u32,
    /// Size in bytes (files: changed only while holding the data write lock).
    pub size: u64,
    /// Allocated chunks (files).
    pub chunks: u64,
    /// Number of entries (directories; mirrors the content, updated under its write lock).
    pub entries: u64,
    pub atime: Ts,
    pub mtime: Ts,
    pub ctime: Ts,
    pub btime: Ts,
    /// Lookup references held by the guest.
    pub lookups: u64,
    /// Open handles.
    pub opens: u64,
    /// An O_TMPFILE without O_EXCL: LINK may give it a name although `nlink == 0`.
    pub linkable: bool,
    /// Removed from the table; never comes back.
    pub freed: bool,
}

impl Meta {
    pub(crate) fn new(mode: u32, uid: u32, gid: u32, nlink: u32, rdev: u32) -> Meta {
        let now = Ts::now();
        Meta { mode, uid, gid, nlink, rdev, atime: now, mtime: now, ctime: now, btime: now, ..Default::default() }
    }

    pub(crate) fn is_dir(&self) -> bool {
        self.mode & libc::S_IFMT == libc::S_IFDIR
    }

    /// What the permission rules of `dpfs_core::posix` look at.
    pub(crate) fn owner(&self) -> dpfs_core::posix::Owner {
        dpfs_core::posix::Owner { mode: self.mode, uid: self.uid, gid: self.gid }
    }

    /// A directory that was removed (rmdir, or replaced by rename).
    pub(crate) fn is_dead_dir(&self) -> bool {
        self.is_dir() && self.nlink == 0
    }

    /// Marks the inode freed if nothing refers to it any more; true if it just was.
    pub(crate) fn try_free(&mut self) -> bool {
        if self.nlink == 0 && self.lookups == 0 && self.opens == 0 && !self.freed {
            self.freed = true;
            return true;
        }
        false
    }

    /// Clears setuid, and setgid if group-executable (as a write or chown does).
    pub(crate) fn kill_suid(&mut self) {
        self.mode &= !libc::S_ISUID;
        if self.mode & (libc::S_ISGID | libc::S_IXGRP) == (libc::S_ISGID | libc::S_IXGRP) {
            self.mode &= !libc::S_ISGID;
        }
    }

    fn apparent_size(&self) -> u64 {
        if self.is_dir() {
            (self.entries + 2) * BOGO_DIRENT
        } else {
            self.size
        }
    }

    /// The wire attributes.
    pub(crate) fn attr(&self, ino: u64) -> Attr {
        Attr {
            ino,
            size: self.apparent_size(),
            blocks: self.chunks * (CHUNK / 512),
            atime: self.atime.sec as u64,
            mtime: self.mtime.sec as u64,
            ctime: self.ctime.sec as u64,
            atimensec: self.atime.nsec,
            mtimensec: self.mtime.nsec,
            ctimensec: self.ctime.nsec,
            mode: self.mode,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            rdev: self.rdev,
            blksize: BLKSIZE,
            flags: 0,
        }
    }

    /// The statx attributes (basic stats and birth time).
    pub(crate) fn statx(&self, ino: u64) -> Statx {
        let t = |t: Ts| SxTime { tv_sec: t.sec, tv_nsec: t.nsec, reserved: 0 };
        Statx {
            mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME,
            blksize: BLKSIZE,
            nlink: self.nlink,
            uid: self.uid,
            gid: self.gid,
            mode: self.mode as u16,
            ino,
            size: self.apparent_size(),
            blocks: self.chunks * (CHUNK / 512),
            atime: t(self.atime),
            btime: t(self.btime),
            ctime: t(self.ctime),
            mtime: t(self.mtime),
            // The wire rdev is the kernel's new_encode_dev() form.
            rdev_major: (self.rdev & 0xfff00) >> 8,
            rdev_minor: (self.rdev & 0xff) | ((self.rdev >> 12) & 0xfff00),
            ..Default::default()
        }
    }
}

/// What an inode holds, by type.
pub(crate) enum Content {
    File(RwLock<SparseData>),
    Dir(RwLock<Directory>),
    Symlink(Box<[u8]>),
    /// Device nodes, fifos and sockets: attributes only.
    Special,
}

/// One inode. Shared through `Arc` by the inode table and open handles; capacity is given
/// back when the last reference goes.
pub(crate) struct Inode {
    pub ino: u64,
    pub content: Content,
    pub meta: Mutex<Meta>,
    /// Directories: the node id of the parent (for `..`), changed under the rename lock.
    pub parent: AtomicU64,
    pub xattrs: Mutex<Xattrs>,
    pub locks: Mutex<LockState>,
    space: Arc<Space>,
}

impl Inode {
    /// An inode whose inode slot and content bytes the caller has reserved in `space`.
    pub(crate) fn new(ino: u64, content: Content, meta: Meta, parent: u64, space: Arc<Space>) -> Inode {
        Inode {
            ino,
            content,
            meta: Mutex::new(meta),
            parent: AtomicU64::new(parent),
            xattrs: Mutex::new(Xattrs::default()),
            locks: Mutex::new(LockState::default()),
            space,
        }
    }

    /// The directory contents, or ENOTDIR.
    pub(crate) fn dir(&self) -> Result<&RwLock<Directory>, Errno> {
        match &self.content {
            Content::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }

    /// The file data, or the errno for using this type as a regular file.
    pub(crate) fn file(&self) -> Result<&RwLock<SparseData>, Errno> {
        match &self.content {
            Content::File(d) => Ok(d),
            Content::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }
}

impl Drop for Inode {
    fn drop(&mut self) {
        let mut bytes = self.xattrs.get_mut().bytes();
        bytes += match &mut self.content {
            Content::File(d) => d.get_mut().nchunks() * CHUNK,
            Content::Dir(d) => d.get_mut().name_bytes(),
            Content::Symlink(t) => t.len() as u64,
            Content::Special => 0,
        };
        self.space.release_bytes(bytes);
        self.space.release_inode();
    }
}
