//! The [`FileSystem`] implementation of the libnfs engine: each operation resolves its node
//! to a path here, queues a job to the service thread, and the job's libnfs callbacks answer
//! the reply token. Operations not listed in the module docs answer ENOSYS (the trait's
//! default).

use super::calls::{cpath, Ctx};
use super::dir::{fill_dir, fill_dirplus};
use super::setattr::{same, setattr_steps, Step};
use super::{attr, LibnfsFs, Open};
use dpfs_core::fs::{ConnInfo, Context, ReadArgs, SetAttr, Statfs, WriteArgs, WriteData};
use dpfs_core::reply::*;
use dpfs_core::{Errno, FileSystem};
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// `open(2)` flags libnfs is given: access mode, O_TRUNC and O_SYNC (O_APPEND is the guest
/// kernel's: its writes carry their offsets).
fn open_flags(flags: u32) -> i32 {
    flags as i32 & (libc::O_ACCMODE | libc::O_TRUNC | libc::O_SYNC)
}

impl LibnfsFs {
    fn job(&self, f: impl FnOnce(&mut Ctx) + Send + 'static) {
        self.engine.submit(Box::new(f))
    }

    /// The C path of node `ino`.
    fn path(&self, ino: u64) -> Result<CString, Errno> {
        cpath(&self.st.nodes.fh(ino)?)
    }

    /// Creates `name` in `parent` with `make` (a path call), then answers its entry.
    fn make(
        &self,
        parent: u64,
        name: &[u8],
        make: fn(
            *mut super::ffi::NfsContext,
            *const std::ffi::c_char,
            super::ffi::NfsCb,
            *mut std::ffi::c_void,
            u32,
        ) -> i32,
        mode: u32,
        reply: ReplyEntry,
    ) {
        let st = self.st.clone();
        let (path, c) = match st.child(parent, name).and_then(|p| Ok((cpath(&p)?, p))) {
            Ok((c, p)) => (p, c),
            Err(e) => return reply.error(e),
        };
        self.job(move |ctx| {
            let c2 = c.clone();
            ctx.path_op(
                &c,
                move |n, p, cb, pd| make(n, p, cb, pd, mode),
                move |ctx, r| match r {
                    Ok(()) => ctx.lstat(&c2, move |_, r| reply.answer(r.and_then(|s| st.entry(path, attr(&s))))),
                    Err(e) => reply.error(e),
                },
            )
        });
    }

    /// Removes `name` from `parent` with `remove` (a path call).
    fn remove(
        &self,
        parent: u64,
        name: &[u8],
        remove: fn(
            *mut super::ffi::NfsContext,
            *const std::ffi::c_char,
            super::ffi::NfsCb,
            *mut std::ffi::c_void,
        ) -> i32,
        reply: ReplyEmpty,
    ) {
        let c = match self.st.child(parent, name).and_then(|p| cpath(&p)) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        self.job(move |ctx| ctx.path_op(&c, remove, move |_, r| reply.answer(r)));
    }
}

fn mkdir(
    n: *mut super::ffi::NfsContext,
    p: *const std::ffi::c_char,
    cb: super::ffi::NfsCb,
    pd: *mut std::ffi::c_void,
    mode: u32,
) -> i32 {
    // SAFETY: called by `Ctx::path_op` on the service thread with its live context, a
    // NUL-terminated path libnfs copies, and the completion it owns.
    unsafe { super::ffi::nfs_mkdir2_async(n, p, (mode & 0o7777) as i32, cb, pd) }
}

fn unlink(
    n: *mut super::ffi::NfsContext,
    p: *const std::ffi::c_char,
    cb: super::ffi::NfsCb,
    pd: *mut std::ffi::c_void,
) -> i32 {
    // SAFETY: as in `mkdir`.
    unsafe { super::ffi::nfs_unlink_async(n, p, cb, pd) }
}

fn rmdir(
    n: *mut super::ffi::NfsContext,
    p: *const std::ffi::c_char,
    cb: super::ffi::NfsCb,
    pd: *mut std::ffi::c_void,
) -> i32 {
    // SAFETY: as in `mkdir`.
    unsafe { super::ffi::nfs_rmdir_async(n, p, cb, pd) }
}

impl FileSystem for LibnfsFs {
    fn init(&self, conn: &mut ConnInfo) -> Result<(), Errno> {
        self.init_conn(conn);
        Ok(())
    }

    fn lookup(&self, _ctx: &Context, parent: u64, name: &[u8], reply: ReplyEntry) {
        let st = self.st.clone();
        let (path, c) = match st.child(parent, name).and_then(|p| Ok((cpath(&p)?, p))) {
            Ok((c, p)) => (p, c),
            Err(e) => return reply.error(e),
        };
        self.job(move |ctx| ctx.lstat(&c, move |_, r| reply.answer(r.and_then(|s| st.entry(path, attr(&s))))));
    }

    fn forget(&self, _ctx: &Context, ino: u64, nlookup: u64) {
        self.st.nodes.forget(ino, nlookup);
    }

    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        let (c, fileid) = match self.st.nodes.get(ino).and_then(|(p, id)| Ok((cpath(&p)?, id))) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let timeout = self.st.cfg.attr_timeout;
        self.job(move |ctx| {
            ctx.lstat(&c, move |_, r| reply.answer(r.and_then(|s| same(ino, fileid, &s)).map(|s| (attr(&s), timeout))))
        });
    }

    fn setattr(&self, _ctx: &Context, ino: u64, a: &SetAttr, reply: ReplyAttr) {
        let c = match self.path(ino) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        // Popped from the end: the size first, then mode, owner, times.
        let mut steps = Vec::new();
        if a.atime.is_some() || a.mtime.is_some() {
            steps.push(Step::Times(a.atime, a.mtime));
        }
        if a.uid.is_some() || a.gid.is_some() {
            steps.push(Step::Owner(a.uid, a.gid));
        }
        if let Some(m) = a.mode {
            steps.push(Step::Mode(m));
        }
        if let Some(s) = a.size {
            steps.push(Step::Size(s));
        }
        let st = self.st.clone();
        self.job(move |ctx| setattr_steps(ctx, st, c, steps, reply));
    }

    fn mkdir(&self, _ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, reply: ReplyEntry) {
        self.make(parent, name, mkdir, mode & !(umask & 0o777), reply)
    }

    fn unlink(&self, _ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        self.remove(parent, name, unlink, reply)
    }

    fn rmdir(&self, _ctx: &Context, parent: u64, name: &[u8], reply: ReplyEmpty) {
        self.remove(parent, name, rmdir, reply)
    }

    fn open(&self, _ctx: &Context, ino: u64, flags: u32, reply: ReplyOpen) {
        let c = match self.path(ino) {
            Ok(c) => c,
            Err(e) => return reply.error(e),
        };
        let st = self.st.clone();
        self.job(move |ctx| {
            ctx.open(&c, open_flags(flags), move |ctx, r| match r {
                Err(e) => reply.error(e),
                Ok(fh) => match st.open(Open::File { fh, dirty: AtomicBool::new(false) }) {
                    Ok(n) => reply.opened(n, 0),
                    Err(e) => ctx.close(fh, move |_, _| reply.error(e)),
                },
            })
        });
    }

    fn create(&self, _ctx: &Context, parent: u64, name: &[u8], mode: u32, umask: u32, flags: u32, reply: ReplyCreate) {
        let st = self.st.clone();
        let (path, c) = match st.child(parent, name).and_then(|p| Ok((cpath(&p)?, p))) {
            Ok((c, p)) => (p, c),
            Err(e) => return reply.error(e),
        };
        let flags = open_flags(flags) | (flags as i32 & libc::O_EXCL) | libc::O_CREAT;
        let mode = mode & !(umask & 0o777);
        self.job(move |ctx| {
            let c2 = c.clone();
            ctx.create(&c, flags, mode, move |ctx, r| match r {
                Err(e) => reply.error(e),
                Ok(fh) => ctx.lstat(&c2, move |ctx, r| {
                    let opened = r.and_then(|s| {
                        let e = st.entry(path, attr(&s))?;
                        match st.open(Open::File { fh, dirty: AtomicBool::new(false) }) {
                            Ok(n) => Ok((e, n)),
                            Err(err) => {
                                st.nodes.forget(e.ino, 1);
                                Err(err)
                            }
                        }
                    });
                    match opened {
                        Ok((e, n)) => reply.answer(Ok((e, n, 0))),
                        Err(e) => ctx.close(fh, move |_, _| reply.error(e)),
                    }
                }),
            })
        });
    }

    fn read(&self, _ctx: &Context, _ino: u64, args: ReadArgs, reply: ReplyData) {
        let fh = match self.st.file(args.fh) {
            Ok((fh, _)) => fh,
            Err(e) => return reply.error(e),
        };
        let size = args.size.min(reply.capacity().try_into().unwrap_or(u32::MAX)).min(self.st.max_io);
        self.job(move |ctx| {
            ctx.pread(fh, args.offset, size, move |r| match r {
                Ok(bytes) => reply.data(bytes),
                Err(e) => reply.error(e),
            })
        });
    }

    fn write(&self, _ctx: &Context, _ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        let (fh, open) = match self.st.file(args.fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        // The payload is in guest memory: copied here, before the request completes.
        let mut bytes = vec![0u8; data.len()];
        let n = data.copy_to(&mut bytes);
        bytes.truncate(n);
        if let Open::File { dirty, .. } = &*open {
            dirty.store(true, Ordering::Relaxed);
        }
        self.job(move |ctx| ctx.pwrite(fh, args.offset, bytes, move |r| reply.answer(r)));
    }

    fn fsync(&self, _ctx: &Context, _ino: u64, fh: u64, _datasync: bool, reply: ReplyEmpty) {
        let (fh, open) = match self.st.file(fh) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        if let Open::File { dirty, .. } = &*open {
            dirty.store(false, Ordering::Relaxed);
        }
        self.job(move |ctx| ctx.fsync(fh, move |r| reply.answer(r)));
    }

    fn flush(&self, ctx: &Context, ino: u64, fh: u64, _lock_owner: u64, reply: ReplyEmpty) {
        // Close-to-open: what a close wrote is stable when close returns.
        match self.st.file(fh) {
            Ok((_, open)) if matches!(&*open, Open::File { dirty, .. } if dirty.load(Ordering::Relaxed)) => {
                self.fsync(ctx, ino, fh, false, reply)
            }
            Ok(_) => reply.ok(),
            Err(e) => reply.error(e),
        }
    }

    fn release(
        &self,
        _ctx: &Context,
        _ino: u64,
        fh: u64,
        _flags: u32,
        _lock_owner: u64,
        _flush: bool,
        _flock_release: bool,
        reply: ReplyEmpty,
    ) {
        let Some(open) = self.st.opens.lock().remove(&fh) else { return reply.ok() };
        let Open::File { fh, .. } = *open else { return reply.ok() };
        self.job(move |ctx| ctx.close(fh, move |_, r| reply.answer(r)));
    }

    fn statfs(&self, _ctx: &Context, _ino: u64, reply: ReplyStatfs) {
        self.job(move |ctx| {
            ctx.statvfs(move |r| {
                reply.answer(r.map(|s| Statfs {
                    blocks: s.f_blocks,
                    bfree: s.f_bfree,
                    bavail: s.f_bavail,
                    files: s.f_files,
                    ffree: s.f_ffree,
                    bsize: u32::try_from(s.f_bsize).unwrap_or(super::BLKSIZE),
                    namelen: s.f_namemax.min(crate::namei::NAME_MAX as u64) as u32,
                    frsize: u32::try_from(s.f_frsize).unwrap_or(super::BLKSIZE),
                    ..Statfs::default()
                }))
            })
        });
    }

    fn opendir(&self, _ctx: &Context, _ino: u64, _flags: u32, reply: ReplyOpen) {
        reply.answer(self.st.open(Open::Dir { entries: Default::default() }).map(|n| (n, 0)))
    }

    fn readdir(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDir) {
        let (o, c) = match self.st.get(args.fh).and_then(|o| Ok((o, self.path(ino)?))) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let Open::Dir { entries } = &*o else { return reply.error(Errno::EBADF) };
        let cached = entries.lock().clone();
        match cached {
            Some(es) if args.offset > 0 => fill_dir(&es, ino, args.offset, reply),
            _ => self.job(move |ctx| {
                ctx.readdir(&c, move |r| match r {
                    Ok(es) => {
                        let es = Arc::new(es);
                        if let Open::Dir { entries } = &*o {
                            *entries.lock() = Some(es.clone());
                        }
                        fill_dir(&es, ino, args.offset, reply)
                    }
                    Err(e) => reply.error(e),
                })
            }),
        }
    }

    fn readdirplus(&self, _ctx: &Context, ino: u64, args: ReadArgs, reply: ReplyDirPlus) {
        let (o, dir) = match self.st.get(args.fh).and_then(|o| Ok((o, self.st.nodes.fh(ino)?))) {
            Ok(v) => v,
            Err(e) => return reply.error(e),
        };
        let Open::Dir { entries } = &*o else { return reply.error(Errno::EBADF) };
        let cached = entries.lock().clone();
        let st = self.st.clone();
        match cached {
            Some(es) if args.offset > 0 => fill_dirplus(&st, &dir, &es, args.offset, reply),
            _ => {
                let c = match cpath(&dir) {
                    Ok(c) => c,
                    Err(e) => return reply.error(e),
                };
                self.job(move |ctx| {
                    ctx.readdir(&c, move |r| match r {
                        Ok(es) => {
                            let es = Arc::new(es);
                            if let Open::Dir { entries } = &*o {
                                *entries.lock() = Some(es.clone());
                            }
                            fill_dirplus(&st, &dir, &es, args.offset, reply)
                        }
                        Err(e) => reply.error(e),
                    })
                })
            }
        }
    }

    fn releasedir(&self, _ctx: &Context, _ino: u64, fh: u64, _flags: u32, reply: ReplyEmpty) {
        self.st.opens.lock().remove(&fh);
        reply.ok()
    }

    fn fsyncdir(&self, _ctx: &Context, _ino: u64, _fh: u64, _datasync: bool, reply: ReplyEmpty) {
        reply.ok()
    }
}
