//! The lowlevel file-system API every backend implements.
//!
//! Shaped like libfuse's lowlevel operations: inodes are node ids, open files are handles,
//! and every operation receives a [`Context`] and a typed reply token. A backend answers by
//! consuming the token, inline or later from any thread; the token cannot be used twice,
//! and dropping it unanswered answers EIO so no request can hang the guest. Every method
//! has a default: ENOSYS for operations, nothing for notifications (FORGET, INTERRUPT).
//!
//! Names arrive as bytes without the trailing NUL, never containing `/` or NUL. Borrowed
//! arguments live only for the call: a backend that replies later copies what it needs.

mod types;

pub use types::*;

use crate::errno::Errno;
use crate::reply::*;
use crate::segments::SegList;

/// Payload of a WRITE: segments of request memory (zero copy).
pub struct WriteData {
    /// The payload, exactly `len()` bytes in order.
    pub segs: SegList,
}

impl WriteData {
    /// Payload length in bytes.
    pub fn len(&self) -> usize {
        crate::segments::total_len(&self.segs)
    }

    /// True if the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies the payload into `dst`, which must be exactly `len()` bytes.
    pub fn copy_to(&self, dst: &mut [u8]) -> usize {
        let mut r = crate::segments::SegReader::new(&self.segs, usize::MAX);
        let n = r.remaining().min(dst.len());
        let _ = r.read_exact(&mut dst[..n]);
        n
    }

    /// The payload as iovecs, for `pwritev` / io_uring.
    pub fn iovecs(&self) -> smallvec::SmallVec<[libc::iovec; 4]> {
        self.segs.iter().map(|s| s.as_iovec()).collect()
    }
}

/// Arguments of READ / READDIR beyond the node and handle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReadArgs {
    /// File handle from OPEN/OPENDIR.
    pub fh: u64,
    /// Byte offset (READ) or directory cookie (READDIR).
    pub offset: u64,
    /// Largest reply payload the guest accepts.
    pub size: u32,
    /// `open(2)` flags of the handle.
    pub flags: u32,
    /// Lock owner, if `READ_LOCKOWNER` is set.
    pub lock_owner: Option<u64>,
}

/// Arguments of WRITE beyond the node and payload.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteArgs {
    /// File handle from OPEN/CREATE.
    pub fh: u64,
    /// Byte offset.
    pub offset: u64,
    /// `FUSE_WRITE_*` bits (CACHE, LOCKOWNER, KILL_SUIDGID).
    pub write_flags: u32,
    /// `open(2)` flags of the handle.
    pub flags: u32,
    /// Lock owner, if `WRITE_LOCKOWNER` is set.
    pub lock_owner: Option<u64>,
}

/// Arguments of COPY_FILE_RANGE(_64).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CopyRange {
    /// Source handle.
    pub fh_in: u64,
    /// Source offset.
    pub off_in: u64,
    /// Destination node.
    pub ino_out: u64,
    /// Destination handle.
    pub fh_out: u64,
    /// Destination offset.
    pub off_out: u64,
    /// Bytes to copy.
    pub len: u64,
    /// Flags (must be 0 today).
    pub flags: u64,
}

/// A lowlevel file system. See the module documentation for the contract.
#[allow(unused_variables)]
pub trait FileSystem: Send + Sync + 'static {
    /// The guest's INIT: adjust `conn.want` and limits. An error refuses the session.
    fn init(&self, conn: &mut ConnInfo) -> Result<(), Errno> {
        Ok(())
    }
    /// The guest unmounted (DESTROY) or the device was reset: drop all per-session state
    /// (lookup counts, open handles). A later INIT starts afresh.
    fn destroy(&self) {}

    /// Resolve `name` in directory `parent`; a successful reply adds one lookup reference.
    fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        reply.error(Errno::ENOSYS)
    }
    /// Drop `nlookup` lookup references of `ino` (no reply).
    fn forget(&self, ctx: &Context, ino: u64, nlookup: u64) {}
    /// Drop several lookup references at once (no reply).
    fn batch_forget(&self, ctx: &Context, items: &[(u64, u64)]) {
        for &(ino, n) in items {
            self.forget(ctx, ino, n);
        }
    }
    /// Attributes of `ino` (`fh` if the guest asked through an open file).
    fn getattr(&self, ctx: &Context, ino: u64, fh: Option<u64>, reply: ReplyAttr) {
        reply.error(Errno::ENOSYS)
    }
    /// Change attributes of `ino`; reply with the new attributes.
    fn setattr(&self, ctx: &Context, ino: u64, attr: &SetAttr, reply: ReplyAttr) {
        reply.error(Errno::ENOSYS)
    }
    /// Target of symlink `ino`.
    fn readlink(&self, ctx: &Context, ino: u64, reply: ReplyData) {
        reply.error(Errno::ENOSYS)
    }
    /// Create symlink `name` in `parent` pointing at `target`.
    fn symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8], reply: ReplyEntry) {
        reply.error(Errno::ENOSYS)
    }
    /// Create a node (file, fifo, socket, device) `name` in `parent`.
    #[allow(clippy::too_many_arguments)]
    fn mknod(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, rdev: u32, umask: u32, reply: ReplyEntry) {
        reply.error(Errno::ENOSYS)
    }
    /// Create directory `name` in `parent`.
    fn mkdir(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, reply: ReplyEntry) {
        reply.error(Errno::ENOSYS)
    }
    /// Remove non-directory `name` from `parent`.
    fn unlink(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Remove empty directory `name` from `parent`.
    fn rmdir(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Rename; `flags` are `RENAME_NOREPLACE` / `RENAME_EXCHANGE` / `RENAME_WHITEOUT` (0 for RENAME).
    #[allow(clippy::too_many_arguments)]
    fn rename(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS)
    }
    /// Hard-link `ino` as `newname` in `newparent`.
    fn link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8], reply: ReplyEntry) {
        reply.error(Errno::ENOSYS)
    }
    /// Open `ino` with `open(2)` `flags`.
    fn open(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        reply.error(Errno::ENOSYS)
    }
    /// Read up to `args.size` bytes at `args.offset`; the reply can be filled in place.
    fn read(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyData) {
        reply.error(Errno::ENOSYS)
    }
    /// Write `data` at `args.offset`; reply with the bytes written.
    fn write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        reply.error(Errno::ENOSYS)
    }
    /// File-system statistics.
    fn statfs(&self, ctx: &Context, ino: u64, reply: ReplyStatfs) {
        reply.error(Errno::ENOSYS)
    }
    /// Last close of an open file. `flush` asks for a FLUSH first (and so for dropping
    /// `lock_owner`'s POSIX locks); `flock_release` asks to drop the owner's flock.
    #[allow(clippy::too_many_arguments)]
    fn release(
        &self,
        ctx: &Context,
        ino: u64,
        fh: u64,
        flags: u32,
        lock_owner: u64,
        flush: bool,
        flock_release: bool,
        reply: ReplyEmpty,
    ) {
        reply.ok()
    }
    /// Flush file data (and metadata unless `datasync`) to stable storage.
    fn fsync(&self, ctx: &Context, ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Set extended attribute `name`; `flags` are `XATTR_CREATE` / `XATTR_REPLACE`.
    #[allow(clippy::too_many_arguments)]
    fn setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
        setxattr_flags: u32,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS)
    }
    /// Get extended attribute `name`; `size == 0` asks for the length only.
    fn getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS)
    }
    /// List extended attribute names (NUL-separated); `size == 0` asks for the length.
    fn listxattr(&self, ctx: &Context, ino: u64, size: u32, reply: ReplyXattr) {
        reply.error(Errno::ENOSYS)
    }
    /// Remove extended attribute `name`.
    fn removexattr(&self, ctx: &Context, ino: u64, name: &[u8], reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// A `close(2)` of a descriptor of this open file. The guest keeps no record of locks
    /// held on the device, so the backend drops `lock_owner`'s POSIX locks here.
    fn flush(&self, ctx: &Context, ino: u64, fh: u64, lock_owner: u64, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Open directory `ino`.
    fn opendir(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        reply.opened(0, 0)
    }
    /// List entries after cookie `args.offset`, into at most `args.size` bytes.
    fn readdir(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        reply.error(Errno::ENOSYS)
    }
    /// As `readdir`, with a lookup (one reference) for every entry other than `.` and `..`.
    fn readdirplus(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        reply.error(Errno::ENOSYS)
    }
    /// Close an open directory.
    fn releasedir(&self, ctx: &Context, ino: u64, fh: u64, flags: u32, reply: ReplyEmpty) {
        reply.ok()
    }
    /// Sync directory contents.
    fn fsyncdir(&self, ctx: &Context, ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Test for a POSIX lock (F_GETLK): reply with the conflicting lock or `F_UNLCK`.
    fn getlk(&self, ctx: &Context, ino: u64, fh: u64, owner: u64, lock: Lock, reply: ReplyLock) {
        reply.error(Errno::ENOSYS)
    }
    /// Acquire or release a lock. `flock` selects BSD `flock(2)` semantics; `sleep` is
    /// SETLKW (a backend must not block a poller thread while waiting).
    #[allow(clippy::too_many_arguments)]
    fn setlk(
        &self,
        ctx: &Context,
        ino: u64,
        fh: u64,
        owner: u64,
        lock: Lock,
        sleep: bool,
        flock: bool,
        reply: ReplyEmpty,
    ) {
        reply.error(Errno::ENOSYS)
    }
    /// `access(2)` check of `mask` for the caller.
    fn access(&self, ctx: &Context, ino: u64, mask: u32, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Create and open regular file `name` in `parent`.
    #[allow(clippy::too_many_arguments)]
    fn create(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.error(Errno::ENOSYS)
    }
    /// The guest gave up waiting for request `unique` (no reply).
    fn interrupt(&self, ctx: &Context, unique: u64) {}
    /// Map a file block to a device block.
    fn bmap(&self, ctx: &Context, ino: u64, blocksize: u32, block: u64, reply: ReplyBmap) {
        reply.error(Errno::ENOSYS)
    }
    /// A restricted ioctl: `input` is the caller's data, `out_size` the room for output.
    #[allow(clippy::too_many_arguments)]
    fn ioctl(
        &self,
        ctx: &Context,
        ino: u64,
        fh: u64,
        flags: u32,
        cmd: u32,
        arg: u64,
        input: &[u8],
        out_size: u32,
        reply: ReplyIoctl,
    ) {
        reply.error(Errno::ENOSYS)
    }
    /// Poll for I/O readiness.
    #[allow(clippy::too_many_arguments)]
    fn poll(&self, ctx: &Context, ino: u64, fh: u64, kh: u64, flags: u32, events: u32, reply: ReplyPoll) {
        reply.error(Errno::ENOSYS)
    }
    /// Allocate or punch space (`fallocate(2)` mode bits).
    #[allow(clippy::too_many_arguments)]
    fn fallocate(&self, ctx: &Context, ino: u64, fh: u64, offset: u64, length: u64, mode: u32, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Reposition: SEEK_DATA / SEEK_HOLE (others are handled by the guest).
    fn lseek(&self, ctx: &Context, ino: u64, fh: u64, offset: u64, whence: u32, reply: ReplyLseek) {
        reply.error(Errno::ENOSYS)
    }
    /// Copy a byte range between open files; reply with the bytes copied.
    fn copy_file_range(&self, ctx: &Context, ino_in: u64, range: CopyRange, reply: ReplyCopy) {
        reply.error(Errno::ENOSYS)
    }
    /// DAX: map a file range into the device's shared-memory window.
    fn setupmapping(&self, ctx: &Context, ino: u64, args: &crate::abi::SetupmappingIn, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// DAX: unmap ranges of the shared-memory window.
    fn removemapping(&self, ctx: &Context, ranges: &[(u64, u64)], reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Sync the whole file system.
    fn syncfs(&self, ctx: &Context, ino: u64, reply: ReplyEmpty) {
        reply.error(Errno::ENOSYS)
    }
    /// Create an unnamed open file in directory `parent` (`O_TMPFILE`).
    fn tmpfile(&self, ctx: &Context, parent: u64, mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.error(Errno::ENOSYS)
    }
    /// `statx(2)` of `ino`; `mask` says which fields the caller wants.
    #[allow(clippy::too_many_arguments)]
    fn statx(&self, ctx: &Context, ino: u64, fh: Option<u64>, flags: u32, mask: u32, reply: ReplyStatx) {
        reply.error(Errno::ENOSYS)
    }
}
