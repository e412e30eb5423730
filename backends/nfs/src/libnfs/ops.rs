//! The [`FileSystem`] implementation of the libnfs engine: each operation resolves its node
//! to a path here, queues a job to the service thread, and the job's libnfs callbacks answer
//! the reply token. Operations not listed in the module docs answer ENOSYS (the trait's
//! default).

use super::engine::{cpath, Ctx, DirEnt};
use super::ffi::NfsStat64;
use super::{attr, dirent_attr, kind3, LibnfsFs, Open, State};
use dpfs_core::fs::{ConnInfo, Context, ReadArgs, SetAttr, Statfs, TimeOrNow, WriteArgs, WriteData};
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

/// `s` if it is the file node `ino` (file id `fileid`) was looked up as: a path names
/// whatever has that name now, and a node whose file was removed or replaced is stale.
fn same(ino: u64, fileid: u64, s: &NfsStat64) -> Result<NfsStat64, Errno> {
    if ino == dpfs_core::abi::ROOT_ID || s.nfs_ino == fileid {
        Ok(*s)
    } else {
        Err(Errno::ESTALE)
    }
}

/// One SETATTR step, each a libnfs call on the path.
enum Step {
    Mode(u32),
    Owner(Option<u32>, Option<u32>),
    Size(u64),
    Times(Option<TimeOrNow>, Option<TimeOrNow>),
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

/// A time for `utimes`: `Now` as the host's clock, absent as `cur`.
fn timeval(t: Option<TimeOrNow>, cur: (u64, u64)) -> libnfs_sys::timeval {
    let (sec, usec) = match t {
        None => (cur.0 as i64, (cur.1 / 1000) as i64),
        Some(TimeOrNow::Time { sec, nsec }) => (sec, i64::from(nsec.min(999_999_999) / 1000)),
        Some(TimeOrNow::Now) => {
            let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            (d.as_secs() as i64, i64::from(d.subsec_micros()))
        }
    };
    libnfs_sys::timeval { tv_sec: sec, tv_usec: usec }
}

/// Runs the SETATTR `steps` one after the other, then answers the attributes.
fn setattr_steps(ctx: &mut Ctx, st: Arc<State>, path: CString, mut steps: Vec<Step>, reply: ReplyAttr) {
    let Some(step) = steps.pop() else {
        let timeout = st.cfg.attr_timeout;
        return ctx.lstat(&path.clone(), move |_, r| reply.answer(r.map(|s| (attr(&s), timeout))));
    };
    let p2 = path.clone();
    let next = move |ctx: &mut Ctx, r: Result<(), Errno>| match r {
        Ok(()) => setattr_steps(ctx, st, p2, steps, reply),
        Err(e) => reply.error(e),
    };
    match step {
        // SAFETY (each call below): on the service thread with its live context, a
        // NUL-terminated path libnfs copies, and the completion `path_op` owns.
        Step::Mode(m) => ctx.path_op(
            &path,
            |n, p, cb, pd| unsafe { super::ffi::nfs_chmod_async(n, p, (m & 0o7777) as i32, cb, pd) },
            next,
        ),
        Step::Size(s) => {
            ctx.path_op(&path, |n, p, cb, pd| unsafe { super::ffi::nfs_truncate_async(n, p, s, cb, pd) }, next)
        }
        Step::Owner(Some(u), Some(g)) => ctx.path_op(
            &path,
            |n, p, cb, pd| unsafe { super::ffi::nfs_chown_async(n, p, u as i32, g as i32, cb, pd) },
            next,
        ),
        Step::Times(Some(TimeOrNow::Now), Some(TimeOrNow::Now)) => ctx.path_op(
            &path,
            // A null `times` sets both to the server's time.
            |n, p, cb, pd| unsafe { super::ffi::nfs_utimes_async(n, p, std::ptr::null_mut(), cb, pd) },
            next,
        ),
        // A part left as it is: read it first.
        partial => ctx.lstat(&path.clone(), move |ctx, r| match r {
            Err(e) => next(ctx, Err(e)),
            Ok(s) => match partial {
                Step::Owner(u, g) => {
                    let (u, g) = (u.unwrap_or(s.nfs_uid as u32), g.unwrap_or(s.nfs_gid as u32));
                    ctx.path_op(
                        &path,
                        |n, p, cb, pd| unsafe { super::ffi::nfs_chown_async(n, p, u as i32, g as i32, cb, pd) },
                        next,
                    )
                }
                Step::Times(a, m) => {
                    let mut tv =
                        [timeval(a, (s.nfs_atime, s.nfs_atime_nsec)), timeval(m, (s.nfs_mtime, s.nfs_mtime_nsec))];
                    let tvp = tv.as_mut_ptr();
                    // libnfs copies the times into the request before it returns.
                    ctx.path_op(&path, |n, p, cb, pd| unsafe { super::ffi::nfs_utimes_async(n, p, tvp, cb, pd) }, next)
                }
                _ => next(ctx, Ok(())),
            },
        }),
    }
}

/// Fills a readdir reply from `entries` after FUSE offset `offset` (`.` is 1, `..` 2, entry
/// `i` is `i + 3`).
fn fill_dir(entries: &[DirEnt], ino: u64, offset: u64, mut reply: ReplyDir) {
    let dir = libc::S_IFDIR >> 12;
    if offset < 1 && !reply.add(ino, 1, dir, b".") {
        return reply.done();
    }
    if offset < 2 && !reply.add(ino, 2, dir, b"..") {
        return reply.done();
    }
    let skip = offset.saturating_sub(2) as usize;
    for (i, e) in entries.iter().enumerate().skip(skip) {
        if !reply.add(e.inode, i as u64 + 3, kind3(e.typ) >> 12, &e.name) {
            break;
        }
    }
    reply.done()
}

/// Fills a readdirplus reply: each entry given holds a lookup of its node.
fn fill_dirplus(st: &State, dir: &[u8], entries: &[DirEnt], offset: u64, mut reply: ReplyDirPlus) {
    let dots = dpfs_core::fs::Entry {
        ino: 0,
        attr: dpfs_core::fs::Attr { mode: libc::S_IFDIR, ..Default::default() },
        ..Default::default()
    };
    if offset < 1 && !reply.add(&dots, 1, b".") {
        return reply.done();
    }
    if offset < 2 && !reply.add(&dots, 2, b"..") {
        return reply.done();
    }
    let skip = offset.saturating_sub(2) as usize;
    for (i, e) in entries.iter().enumerate().skip(skip) {
        if !reply.fits(e.name.len()) {
            break;
        }
        let mut path = dir.to_vec();
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(&e.name);
        let Ok(entry) = st.entry(path, dirent_attr(e)) else { continue };
        if !reply.add(&entry, i as u64 + 3, &e.name) {
            st.nodes.forget(entry.ino, 1);
            break;
        }
    }
    reply.done()
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
