//! The [`FileSystem`] implementation: each operation copies its arguments, becomes a task on
//! the backend's runtime and answers its token from there.

use crate::NfsFs;
use dpfs_core::fs::{ConnInfo, Context, CopyRange, Lock, ReadArgs, SetAttr, WriteArgs, WriteData};
use dpfs_core::reply::*;
use dpfs_core::{Errno, FileSystem};
use dpfs_nfs4::ops::CreateKind;

impl FileSystem for NfsFs {
    fn init(&self, conn: &mut ConnInfo) -> Result<(), Errno> {
        self.init_conn(conn);
        Ok(())
    }

    fn lookup(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        self.run(reply, |i| async move { i.lookup(&c, parent, &name).await });
    }

    fn forget(&self, _ctx: &Context, ino: u64, nlookup: u64) {
        self.inner.nodes.forget(ino, nlookup);
    }

    fn getattr(&self, ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.getattr(&c, ino).await });
    }

    fn setattr(&self, ctx: &Context, ino: u64, attr: &SetAttr, reply: ReplyAttr) {
        let (c, attr) = (self.creds(ctx), *attr);
        self.run(reply, |i| async move { i.setattr(&c, ino, attr).await });
    }

    fn readlink(&self, ctx: &Context, ino: u64, reply: ReplyData) {
        let c = self.creds(ctx);
        let inner = self.inner.clone();
        let deadline = inner.cfg.deadline;
        self.spawn(async move {
            match tokio::time::timeout(deadline, inner.readlink(&c, ino)).await.unwrap_or(Err(Errno::EIO)) {
                Ok(target) => reply.data(&target),
                Err(e) => reply.error(e),
            }
        });
    }

    fn symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8], reply: ReplyEntry) {
        if target.len() > crate::namei::SYMLINK_MAX {
            return reply.error(Errno(libc::ENAMETOOLONG));
        }
        let (c, name, kind) = (self.creds(ctx), name.to_vec(), CreateKind::Symlink(target.to_vec()));
        self.run(reply, |i| async move { i.create_node(&c, parent, &name, kind, 0o777).await });
    }

    fn mknod(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, _rdev: u32, umask: u32, reply: ReplyEntry) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        let mode = mode & !(umask & 0o777);
        self.run(reply, |i| async move { i.mknod(&c, parent, &name, mode).await });
    }

    fn mkdir(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, reply: ReplyEntry) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        let mode = mode & !(umask & 0o777);
        self.run(reply, |i| async move { i.create_node(&c, parent, &name, CreateKind::Dir, mode).await });
    }

    fn unlink(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        self.run(reply, |i| async move { i.remove(&c, parent, &name, false).await });
    }

    fn rmdir(&self, ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        self.run(reply, |i| async move { i.remove(&c, parent, &name, true).await });
    }

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
        let (c, name, newname) = (self.creds(ctx), name.to_vec(), newname.to_vec());
        self.run(reply, |i| async move { i.rename(&c, parent, &name, newparent, &newname, flags).await });
    }

    fn link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8], reply: ReplyEntry) {
        let (c, name) = (self.creds(ctx), newname.to_vec());
        self.run(reply, |i| async move { i.link(&c, ino, newparent, &name).await });
    }

    fn open(&self, ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.open(&c, ino, flags).await });
    }

    fn create(&self, ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        let mode = mode & !(umask & 0o777);
        self.run(reply, |i| async move { i.create(&c, parent, &name, mode, flags).await });
    }

    fn read(&self, ctx: &Context, _ino: u64, args: ReadArgs, reply: ReplyData) {
        let c = self.creds(ctx);
        let inner = self.inner.clone();
        let deadline = inner.cfg.deadline;
        let size = args.size.min(reply.capacity().try_into().unwrap_or(u32::MAX));
        self.spawn(async move {
            let read = inner.read(&c, args.fh, args.offset, size);
            match tokio::time::timeout(deadline, read).await.unwrap_or(Err(Errno::EIO)) {
                Ok(data) => reply.data(&data),
                Err(e) => reply.error(e),
            }
        });
    }

    fn write(&self, ctx: &Context, _ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        let c = self.creds(ctx);
        // The payload is in guest memory: copied here, before the request completes.
        let mut bytes = vec![0u8; data.len()];
        let n = data.copy_to(&mut bytes);
        bytes.truncate(n);
        self.run(reply, |i| async move { i.write(&c, args.fh, args.offset, bytes).await });
    }

    fn statfs(&self, ctx: &Context, _ino: u64, reply: ReplyStatfs) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.statfs(&c).await });
    }

    fn release(
        &self,
        ctx: &Context,
        _ino: u64,
        fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
        _flock_release: bool,
        reply: ReplyEmpty,
    ) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.release(&c, fh).await });
    }

    fn setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
        _setxattr_flags: u32,
        reply: ReplyEmpty,
    ) {
        let (c, name, value) = (self.creds(ctx), name.to_vec(), value.to_vec());
        self.run(reply, |i| async move { i.setxattr(&c, ino, &name, value, flags).await });
    }

    fn getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32, reply: ReplyXattr) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        self.run(reply, |i| async move { Xattr::sized(i.getxattr(&c, ino, &name).await?, size) });
    }

    fn listxattr(&self, ctx: &Context, ino: u64, size: u32, reply: ReplyXattr) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { Xattr::sized(i.listxattr(&c, ino).await?, size) });
    }

    fn removexattr(&self, ctx: &Context, ino: u64, name: &[u8], reply: ReplyEmpty) {
        let (c, name) = (self.creds(ctx), name.to_vec());
        self.run(reply, |i| async move { i.removexattr(&c, ino, &name).await });
    }

    fn lseek(&self, ctx: &Context, _ino: u64, fh: u64, offset: u64, whence: u32, reply: ReplyLseek) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.lseek(&c, fh, offset, whence).await });
    }

    fn fallocate(&self, ctx: &Context, _ino: u64, fh: u64, offset: u64, length: u64, mode: u32, reply: ReplyEmpty) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.fallocate(&c, fh, offset, length, mode).await });
    }

    fn copy_file_range(&self, ctx: &Context, _ino_in: u64, r: CopyRange, reply: ReplyCopy) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move {
            i.copy_file_range(&c, (r.fh_in, r.off_in), (r.fh_out, r.off_out), r.len, r.flags).await
        });
    }

    fn fsync(&self, ctx: &Context, _ino: u64, fh: u64, _datasync: bool, reply: ReplyEmpty) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.fsync(&c, fh).await });
    }

    fn flush(&self, ctx: &Context, ino: u64, fh: u64, lock_owner: u64, reply: ReplyEmpty) {
        // A close: the closing process's POSIX locks on the file go (through whichever open
        // they were taken), and, close-to-open, what it wrote is stable when close returns.
        let c = self.creds(ctx);
        self.run(reply, |i| async move {
            i.drop_owner_locks(&c, ino, lock_owner).await;
            i.fsync(&c, fh).await
        });
    }

    fn opendir(&self, _ctx: &Context, _ino: u64, _flags: u32, reply: ReplyOpen) {
        reply.answer(self.inner.opendir())
    }

    fn readdir(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        let c = self.creds(ctx);
        let inner = self.inner.clone();
        let deadline = inner.cfg.deadline;
        self.spawn(async move {
            match tokio::time::timeout(deadline, inner.readdir(&c, ino, args.fh, args.offset, args.size, reply)).await {
                Ok(Ok(r)) => r.done(),
                Ok(Err((r, e))) => r.error(e),
                // The token went with the cancelled future: dropped, it answers EIO.
                Err(_) => {}
            }
        });
    }

    fn readdirplus(&self, ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        let c = self.creds(ctx);
        let inner = self.inner.clone();
        let deadline = inner.cfg.deadline;
        self.spawn(async move {
            match tokio::time::timeout(deadline, inner.readdirplus(&c, ino, args.fh, args.offset, args.size, reply))
                .await
            {
                Ok(Ok(r)) => r.done(),
                Ok(Err((r, e))) => r.error(e),
                Err(_) => {}
            }
        });
    }

    fn releasedir(&self, _ctx: &Context, _ino: u64, fh: u64, _flags: u32, reply: ReplyEmpty) {
        self.inner.handles.remove(fh);
        reply.ok()
    }

    fn fsyncdir(&self, _ctx: &Context, _ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply.ok()
    }

    fn getlk(&self, ctx: &Context, ino: u64, fh: u64, owner: u64, lock: Lock, reply: ReplyLock) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.getlk(&c, ino, fh, owner, lock).await });
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
        if flock {
            // flock(2) locks stay with the guest's kernel (FLOCK_LOCKS is not negotiated).
            return reply.error(Errno(libc::EOPNOTSUPP));
        }
        let c = self.creds(ctx);
        let inner = self.inner.clone();
        let deadline = inner.cfg.deadline;
        // A waiting SETLKW can be interrupted (INTERRUPT with its unique).
        let (tx, mut interrupted) = tokio::sync::oneshot::channel();
        let (waiters, unique) = (self.waiters.clone(), ctx.unique);
        if sleep {
            waiters.lock().insert(unique, tx);
        }
        self.spawn(async move {
            // A wait that outlasts the deadline ends as an interrupted call (the caller retries).
            let set = tokio::time::timeout(deadline, inner.setlk(&c, ino, fh, owner, lock, sleep));
            let r = tokio::select! {
                r = set => r.unwrap_or(Err(Errno(if sleep { libc::EINTR } else { libc::EIO }))),
                Ok(()) = &mut interrupted => Err(Errno(libc::EINTR)),
            };
            if sleep {
                waiters.lock().remove(&unique);
            }
            reply.answer(r);
        });
    }

    fn interrupt(&self, _ctx: &Context, unique: u64) {
        if let Some(tx) = self.waiters.lock().remove(&unique) {
            let _ = tx.send(());
        }
    }

    fn access(&self, ctx: &Context, ino: u64, mask: u32, reply: ReplyEmpty) {
        let c = self.creds(ctx);
        self.run(reply, |i| async move { i.access(&c, ino, mask).await });
    }
}
