//! The [`FileSystem`] glue: decode nothing, delegate to the domain files, answer the token.

use crate::PassthroughFs;
use dpfs_core::abi;
use dpfs_core::fs::*;
use dpfs_core::reply::*;
use dpfs_core::Errno;

impl FileSystem for PassthroughFs {
    fn init(&self, conn: &mut ConnInfo) -> Result<(), Errno> {
        conn.want |= (abi::init::FLOCK_LOCKS | abi::init::POSIX_LOCKS) & conn.capable;
        conn.want &= !(abi::init::DONT_MASK | abi::init::WRITEBACK_CACHE);
        Ok(())
    }
    fn destroy(&self) {
        self.handles.clear();
        self.locks.clear();
        self.inodes.clear();
    }
    fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        reply.answer(self.do_lookup(ctx, parent, name))
    }
    fn forget(&self, _ctx: &Context, ino: u64, nlookup: u64) {
        self.do_forget(ino, nlookup)
    }
    fn batch_forget(&self, _ctx: &Context, items: &[(u64, u64)]) {
        for &(ino, n) in items {
            self.do_forget(ino, n)
        }
    }
    fn getattr(&self, _ctx: &Context, ino: u64, fh: Option<u64>, reply: ReplyAttr) {
        reply.answer(self.do_getattr(ino, fh).map(|a| (a, self.cfg.attr_ttl())))
    }
    fn setattr(&self, ctx: &Context, ino: u64, attr: &SetAttr, reply: ReplyAttr) {
        reply.answer(self.do_setattr(ctx, ino, attr).map(|a| (a, self.cfg.attr_ttl())))
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
        reply.answer(self.do_open(ctx, ino, flags))
    }
    fn read(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyData) {
        self.do_read(ino, args, reply)
    }
    fn write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        self.do_write(ctx, ino, args, data, reply)
    }
    fn statfs(&self, _ctx: &Context, ino: u64, reply: ReplyStatfs) {
        reply.answer(self.do_statfs(ino))
    }
    fn release(
        &self,
        _ctx: &Context,
        ino: u64,
        fh: u64,
        _flags: u32,
        lock_owner: u64,
        flush: bool,
        flock_release: bool,
        reply: ReplyEmpty,
    ) {
        reply.answer(self.do_release(ino, fh, lock_owner, flush, flock_release))
    }
    fn fsync(&self, _ctx: &Context, ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        reply.answer(self.do_fsync(ino, fh, datasync))
    }
    fn setxattr(&self, ctx: &Context, ino: u64, name: &[u8], value: &[u8], flags: u32, _sf: u32, reply: ReplyEmpty) {
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
    fn flush(&self, _ctx: &Context, ino: u64, fh: u64, lock_owner: u64, reply: ReplyEmpty) {
        reply.answer(self.do_flush(ino, fh, lock_owner))
    }
    fn opendir(&self, ctx: &Context, ino: u64, _flags: u32, reply: ReplyOpen) {
        reply.answer(self.do_opendir(ctx, ino))
    }
    fn readdir(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        self.do_readdir(ino, args, reply)
    }
    fn readdirplus(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        self.do_readdirplus(ctx, ino, args, reply)
    }
    fn releasedir(&self, _ctx: &Context, ino: u64, fh: u64, _flags: u32, reply: ReplyEmpty) {
        reply.answer(self.do_releasedir(ino, fh))
    }
    fn fsyncdir(&self, _ctx: &Context, ino: u64, fh: u64, datasync: bool, reply: ReplyEmpty) {
        reply.answer(self.do_fsyncdir(ino, fh, datasync))
    }
    fn getlk(&self, _ctx: &Context, ino: u64, fh: u64, owner: u64, lock: Lock, reply: ReplyLock) {
        reply.answer(self.do_getlk(ino, fh, owner, lock))
    }
    fn interrupt(&self, _ctx: &Context, unique: u64) {
        self.locks.interrupt(unique)
    }

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
        self.do_setlk(ctx.unique, ino, fh, owner, lock, sleep, flock, reply)
    }
    fn access(&self, ctx: &Context, ino: u64, mask: u32, reply: ReplyEmpty) {
        reply.answer(self.do_access(ctx, ino, mask))
    }
    fn create(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.answer(self.do_create(ctx, parent, name, mode, umask, flags))
    }
    fn fallocate(&self, _ctx: &Context, ino: u64, fh: u64, offset: u64, length: u64, mode: u32, reply: ReplyEmpty) {
        reply.answer(self.do_fallocate(ino, fh, offset, length, mode))
    }
    fn lseek(&self, _ctx: &Context, ino: u64, fh: u64, offset: u64, whence: u32, reply: ReplyLseek) {
        reply.answer(self.do_lseek(ino, fh, offset, whence))
    }
    fn copy_file_range(&self, _ctx: &Context, ino_in: u64, range: CopyRange, reply: ReplyCopy) {
        reply.answer(self.do_copy_file_range(ino_in, &range))
    }
    fn syncfs(&self, _ctx: &Context, _ino: u64, reply: ReplyEmpty) {
        reply.answer(self.do_syncfs())
    }
    fn tmpfile(&self, ctx: &Context, parent: u64, mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        reply.answer(self.do_tmpfile(ctx, parent, mode, umask, flags))
    }
    fn statx(&self, _ctx: &Context, ino: u64, fh: Option<u64>, flags: u32, mask: u32, reply: ReplyStatx) {
        reply.answer(self.do_statx(ino, fh, flags, mask).map(|s| (s, self.cfg.attr_ttl())))
    }
}
