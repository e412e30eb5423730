//! The mem backend: a complete in-memory POSIX file system. It is dpfs's embedded default
//! and the reference file system of the tests, so it follows Linux tmpfs closely.
//!
//! # Map
//! - [`config`]: [`MemConfig`] (capacity, inode limit, cache timeouts, root owner).
//! - `space`: capacity accounting (bytes, inodes, handles) with atomic reservations.
//! - `table`: sharded tables; node ids and handle numbers are keys, never pointers.
//! - `inode`: an inode's metadata and content; `data`: sparse file data in 4 KiB chunks;
//!   `dir`: directory entries with stable readdir cookies.
//! - Operations, one domain per file: `namei` (lookup, forget, create-type ops, link,
//!   unlink, rmdir), `rename`, `attr` (getattr, setattr, access, statx, statfs),
//!   `io` (open, create, tmpfile, read, write, release, fallocate, lseek), `readdir`,
//!   `xattr`, `locks`; `perm` holds the permission rules and `seed` the host-side helpers.
//!
//! # Reference counting
//! An inode lives while it has a name (`nlink`), a lookup reference held by the guest or
//! an open handle. LOOKUP, CREATE, MKDIR, MKNOD, SYMLINK, LINK, TMPFILE and READDIRPLUS
//! entries add lookup references; FORGET drops them. When all three reach zero the inode
//! leaves the table, and its capacity is returned when the last `Arc` goes.
//!
//! # Lock order
//! 1. `rename_lock`: taken by cross-directory renames only (it keeps `..` pointers and
//!    the ancestor check stable, as Linux's `s_vfs_rename_mutex` does).
//! 2. Directory content locks: at most two at once, in ascending node id order.
//! 3. A file's data lock.
//! 4. An inode's `meta` mutex: at most one at a time. A directory's emptiness and
//!    liveness are mirrored in its meta (`entries`, `nlink == 0`), so RMDIR never locks a
//!    child's contents while holding its parent's.
//! 5. Leaves: xattrs, locks, the table shards, the waiter index (locks → waiter index).
//!
//! Reply tokens are answered with no lock held, except that READDIR(PLUS) fills its
//! buffer (without completing) under the directory's read lock.
#![deny(unsafe_op_in_unsafe_fn)]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod attr;
pub mod config;
mod data;
mod dir;
mod inode;
mod io;
mod locks;
mod namei;
mod readdir;
mod rename;
mod seed;
mod space;
mod table;
mod xattr;

pub use config::MemConfig;

use crate::dir::Directory;
use crate::inode::{Content, Inode, Meta, Ts};
use crate::space::Space;
use crate::table::Sharded;
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::fs::{Context, CopyRange, Entry, Lock, ReadArgs, SetAttr, WriteArgs, WriteData};
/// Permission rules shared with the other backends that keep their own inodes.
use dpfs_core::posix as perm;
use dpfs_core::reply::*;
use dpfs_core::{Errno, FileSystem};
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

/// Longest name of a directory entry.
pub const NAME_MAX: usize = 255;
/// Longest symlink target.
pub const SYMLINK_MAX: usize = 4095;

/// An open file or directory.
pub(crate) struct Handle {
    pub ino: u64,
    pub inode: Arc<Inode>,
    /// `open(2)` flags.
    pub flags: u32,
}

/// The in-memory file system. Safe to share between threads (`Arc<MemFs>`).
pub struct MemFs {
    cfg: MemConfig,
    space: Arc<Space>,
    inodes: Sharded<Arc<Inode>>,
    handles: Sharded<Arc<Handle>>,
    next_ino: AtomicU64,
    next_fh: AtomicU64,
    rename_lock: Mutex<()>,
    /// Parked SETLKW requests: unique → node id (for INTERRUPT).
    waiters: Mutex<HashMap<u64, u64>>,
}

impl Default for MemFs {
    fn default() -> Self {
        MemFs::new(MemConfig::default())
    }
}

impl MemFs {
    /// An empty file system (just the root directory).
    pub fn new(cfg: MemConfig) -> MemFs {
        let space = Arc::new(Space::new(cfg.capacity_bytes, cfg.max_inodes.max(1), cfg.max_handles));
        let fs = MemFs {
            space,
            inodes: Sharded::new(),
            handles: Sharded::new(),
            next_ino: AtomicU64::new(ROOT_ID + 1),
            next_fh: AtomicU64::new(1),
            rename_lock: Mutex::new(()),
            waiters: Mutex::new(HashMap::new()),
            cfg,
        };
        // The root is always the first inode; max_inodes >= 1 so this cannot fail.
        let _ = fs.space.reserve_inode();
        let mode = libc::S_IFDIR | (fs.cfg.root_mode & 0o7777);
        let meta = Meta::new(mode, fs.cfg.root_uid, fs.cfg.root_gid, 2, 0);
        let root =
            Inode::new(ROOT_ID, Content::Dir(RwLock::new(Directory::default())), meta, ROOT_ID, fs.space.clone());
        fs.inodes.insert(ROOT_ID, Arc::new(root));
        fs
    }

    /// The configuration.
    pub fn config(&self) -> &MemConfig {
        &self.cfg
    }

    /// Inodes in existence (the root included).
    pub fn inode_count(&self) -> u64 {
        self.space.used_inodes()
    }

    /// Bytes charged against the capacity.
    pub fn used_bytes(&self) -> u64 {
        self.space.used_bytes()
    }

    /// Open handles.
    pub fn handle_count(&self) -> u64 {
        self.space.used_handles()
    }

    /// Inodes in the table (differs from [`inode_count`](Self::inode_count) only while
    /// an operation still holds a freed inode).
    pub fn table_len(&self) -> usize {
        self.inodes.len()
    }

    pub(crate) fn inode(&self, ino: u64) -> Result<Arc<Inode>, Errno> {
        self.inodes.get(ino).ok_or(Errno::ENOENT)
    }

    /// The handle `fh`, which must belong to `ino` (EBADF otherwise).
    pub(crate) fn handle(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        match self.handles.get(fh) {
            Some(h) if h.ino == ino => Ok(h),
            _ => Err(Errno::EBADF),
        }
    }

    pub(crate) fn entry(&self, ino: u64, m: &Meta) -> Entry {
        Entry {
            ino,
            generation: 1,
            attr: m.attr(ino),
            entry_timeout: self.cfg.entry_timeout,
            attr_timeout: self.cfg.attr_timeout,
        }
    }

    /// Removes `ino` from the table if its meta said it just became free.
    pub(crate) fn reap(&self, ino: u64, freed: bool) {
        if freed {
            self.inodes.remove(ino);
        }
    }

    pub(crate) fn touch_ctime(&self, inode: &Inode) {
        inode.meta.lock().ctime = Ts::now();
    }
}

/// Checks a name of a new or existing entry.
pub(crate) fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

impl FileSystem for MemFs {
    fn init(&self, conn: &mut dpfs_core::fs::ConnInfo) -> Result<(), Errno> {
        let want = abi::init::FLOCK_LOCKS | abi::init::POSIX_LOCKS;
        conn.want |= want & conn.capable;
        conn.want &= !abi::init::DONT_MASK;
        Ok(())
    }
    fn destroy(&self) {
        self.do_destroy()
    }
    fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        reply.answer(self.do_lookup(ctx, parent, name))
    }
    fn forget(&self, _ctx: &Context, ino: u64, nlookup: u64) {
        self.do_forget(ino, nlookup)
    }
    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        reply.answer(self.do_getattr(ino).map(|a| (a, self.cfg.attr_timeout)))
    }
    fn setattr(&self, ctx: &Context, ino: u64, attr: &SetAttr, reply: ReplyAttr) {
        reply.answer(self.do_setattr(ctx, ino, attr).map(|a| (a, self.cfg.attr_timeout)))
    }
    fn readlink(&self, _ctx: &Context, ino: u64, reply: ReplyData) {
        reply.answer(self.do_readlink(ino))
    }
    fn symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8], reply: ReplyEntry) {
        reply.answer(self.do_symlink(ctx, parent, name, target))
    }
    fn mknod(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, rdev: u32, umask: u32, reply: ReplyEntry) {
        reply.answer(self.do_mknod(ctx, parent, name, mode, rdev, umask))
    }
    fn mkdir(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, reply: ReplyEntry) {
        reply.answer(self.do_mkdir(ctx, parent, name, mode, umask))
    }
    fn unlink(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        reply.answer(self.do_unlink(ctx, parent, name))
    }
    fn rmdir(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        reply.answer(self.do_rmdir(ctx, parent, name))
    }
    fn rename(&self, ctx: &Context, p: u64, name: &[u8], np: u64, newname: &[u8], flags: u32, reply: ReplyEmpty) {
        reply.answer(self.do_rename(ctx, p, name, np, newname, flags))
    }
    fn link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8], reply: ReplyEntry) {
        reply.answer(self.do_link(ctx, ino, newparent, newname))
    }
    fn open(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        reply.answer(self.do_open(ctx, ino, flags).map(|fh| (fh, 0)))
    }
    fn read(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyData) {
        self.do_read(ino, args, reply)
    }
    fn write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        reply.answer(self.do_write(ctx, ino, args, &data))
    }
    fn statfs(&self, _ctx: &Context, _ino: u64, reply: ReplyStatfs) {
        reply.statfs(&self.do_statfs())
    }
    fn release(
        &self,
        _c: &Context,
        ino: u64,
        fh: u64,
        _f: u32,
        owner: u64,
        _fl: bool,
        funlock: bool,
        reply: ReplyEmpty,
    ) {
        self.do_release(ino, fh, owner, funlock);
        reply.ok()
    }
    fn fsync(&self, _ctx: &Context, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply.answer(self.inode(ino).map(drop))
    }
    fn setxattr(&self, ctx: &Context, ino: u64, name: &[u8], value: &[u8], flags: u32, _x: u32, reply: ReplyEmpty) {
        reply.answer(self.do_setxattr(ctx, ino, name, value, flags))
    }
    fn getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        reply.answer(self.do_getxattr(ctx, ino, name, size))
    }
    fn listxattr(&self, ctx: &Context, ino: u64, size: u32, reply: ReplyXattr) {
        reply.answer(self.do_listxattr(ctx, ino, size))
    }
    fn removexattr(&self, ctx: &Context, ino: u64, name: &[u8], reply: ReplyEmpty) {
        reply.answer(self.do_removexattr(ctx, ino, name))
    }
    fn flush(&self, _ctx: &Context, ino: u64, _fh: u64, lock_owner: u64, reply: ReplyEmpty) {
        // The guest keeps no local record of remote POSIX locks: a close drops the owner's.
        self.drop_owner_locks(ino, lock_owner, true);
        reply.ok()
    }
    fn opendir(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        reply.answer(self.do_opendir(ctx, ino, flags).map(|fh| (fh, 0)))
    }
    fn readdir(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        self.do_readdir(ino, args, reply)
    }
    fn readdirplus(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        self.do_readdirplus(ino, args, reply)
    }
    fn releasedir(&self, _ctx: &Context, ino: u64, fh: u64, _flags: u32, reply: ReplyEmpty) {
        self.do_release(ino, fh, 0, false);
        reply.ok()
    }
    fn fsyncdir(&self, _ctx: &Context, ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply.answer(self.inode(ino).map(drop))
    }
    fn getlk(&self, _ctx: &Context, ino: u64, _fh: u64, owner: u64, lock: Lock, reply: ReplyLock) {
        reply.answer(self.do_getlk(ino, owner, lock))
    }
    fn setlk(
        &self,
        ctx: &Context,
        ino: u64,
        _fh: u64,
        owner: u64,
        lock: Lock,
        sleep: bool,
        flock: bool,
        reply: ReplyEmpty,
    ) {
        self.do_setlk(ctx, ino, owner, lock, sleep, flock, reply)
    }
    fn access(&self, ctx: &Context, ino: u64, mask: u32, reply: ReplyEmpty) {
        reply.answer(self.do_access(ctx, ino, mask))
    }
    fn create(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.answer(self.do_create(ctx, parent, name, mode, umask, flags).map(|(e, fh)| (e, fh, 0)))
    }
    fn interrupt(&self, _ctx: &Context, unique: u64) {
        self.do_interrupt(unique)
    }
    fn fallocate(&self, _ctx: &Context, ino: u64, fh: u64, offset: u64, length: u64, mode: u32, reply: ReplyEmpty) {
        reply.answer(self.do_fallocate(ino, fh, offset, length, mode))
    }
    fn lseek(&self, _ctx: &Context, ino: u64, _fh: u64, offset: u64, whence: u32, reply: ReplyLseek) {
        reply.answer(self.do_lseek(ino, offset, whence))
    }
    fn copy_file_range(&self, ctx: &Context, ino_in: u64, range: CopyRange, reply: ReplyCopy) {
        reply.answer(self.do_copy_file_range(ctx, ino_in, range))
    }
    fn syncfs(&self, _ctx: &Context, _ino: u64, reply: ReplyEmpty) {
        reply.ok()
    }
    fn tmpfile(&self, ctx: &Context, parent: u64, mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.answer(self.do_tmpfile(ctx, parent, mode, umask, flags).map(|(e, fh)| (e, fh, 0)))
    }
    fn statx(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, _flags: u32, _mask: u32, reply: ReplyStatx) {
        reply.answer(self.do_statx(ino).map(|s| (s, self.cfg.attr_timeout)))
    }
}
