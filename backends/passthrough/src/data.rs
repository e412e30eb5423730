//! Open files and their data: OPEN, CREATE, TMPFILE, READ, WRITE, FLUSH, RELEASE, FSYNC,
//! FALLOCATE, LSEEK, COPY_FILE_RANGE, SYNCFS.

use crate::handle::{ForcedDirect, Handle};
use crate::resolve::{check_name, openat2};
use crate::{sys, PassthroughFs};
use dpfs_core::abi::misc;
use dpfs_core::fs::{Context, CopyRange, Entry, ReadArgs, WriteArgs, WriteData};
use dpfs_core::reply::{ReplyData, ReplyWrite};
use dpfs_core::Errno;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::Arc;

/// Guest open flags the host open keeps (creation, directory and tty bits are ours).
const PASS: i32 = libc::O_ACCMODE
    | libc::O_APPEND
    | libc::O_TRUNC
    | libc::O_DIRECT
    | libc::O_SYNC
    | libc::O_DSYNC
    | libc::O_NOATIME
    | libc::O_LARGEFILE;

impl PassthroughFs {
    /// Host flags for a guest open: filtered, direct-I/O policy applied, never blocking.
    fn host_flags(&self, flags: u32) -> Result<i32, Errno> {
        let f = flags as i32 & PASS;
        if self.cfg.readonly && (f & libc::O_ACCMODE != libc::O_RDONLY || f & libc::O_TRUNC != 0) {
            return Err(Errno::EROFS);
        }
        Ok(self.cfg.directio.apply(f) | libc::O_NONBLOCK | libc::O_NOCTTY)
    }

    /// directio_mode 2 on a file the guest opened without `O_DIRECT`: turn it on now (not
    /// at open, so a file system without direct I/O still opens the file, buffered).
    fn force_direct(&self, host_flags: i32, file: &OwnedFd) -> Option<ForcedDirect> {
        if !self.cfg.directio.forces(host_flags) {
            return None;
        }
        let d = ForcedDirect::enable(file.as_fd());
        if d.is_none() {
            tracing::debug!("directio_mode 2: the file system refuses O_DIRECT; buffered I/O");
        }
        d
    }

    /// The descriptor for a transfer at `offset` over `iov` through `h`, and whether it does
    /// buffered I/O: its own, or the buffered twin when dpfs forced `O_DIRECT` and the
    /// alignment does not allow it.
    fn io_fd(
        &self,
        h: &Handle,
        offset: u64,
        iov: impl IntoIterator<Item = libc::iovec>,
    ) -> Result<(Arc<OwnedFd>, bool), Errno> {
        match &h.direct {
            Some(d) if !d.allows(offset, iov) => d
                .buffered(|| {
                    // SAFETY: plain fcntl on a descriptor we own.
                    let fl = sys::cvt(unsafe { libc::fcntl(h.fd.as_raw_fd(), libc::F_GETFL) })?;
                    let keep = libc::O_ACCMODE | libc::O_APPEND | libc::O_SYNC | libc::O_DSYNC | libc::O_NONBLOCK;
                    self.reopen(h.fd.as_fd(), fl & keep)
                })
                .map(|fd| (fd, true)),
            _ => Ok((h.fd.clone(), !h.o_direct)),
        }
    }

    pub(crate) fn do_open(&self, ctx: &Context, ino: u64, flags: u32) -> Result<(u64, u32), Errno> {
        let f = self.host_flags(flags)?;
        let fd = self.inodes.fd(ino)?;
        match sys::ftype(sys::fstat(fd.as_fd())?.st_mode) {
            libc::S_IFREG => {}
            libc::S_IFDIR => return Err(Errno::EISDIR),
            libc::S_IFLNK => return Err(Errno::ELOOP),
            // Devices, fifos and sockets are opened by the guest kernel, never on the host.
            _ => return Err(Errno::ENXIO),
        }
        let file = {
            let _g = self.creds(ctx)?;
            self.reopen(fd.as_fd(), f)?
        };
        let direct = self.force_direct(f, &file);
        let fh = self.handles.insert_file(ino, file, f, direct)?;
        Ok((fh, self.cfg.fopen_flags(false)))
    }

    /// Registers a freshly created open file, opened with host `flags`: its inode (one
    /// lookup reference) and handle.
    fn register_new(&self, file: OwnedFd, pin: bool, flags: i32) -> Result<(Entry, u64, u32), Errno> {
        if sys::ftype(sys::fstat(file.as_fd())?.st_mode) != libc::S_IFREG {
            return Err(Errno::EEXIST);
        }
        let path = self.reopen(file.as_fd(), libc::O_PATH)?;
        let e = self.entry_from(path, pin)?;
        let direct = self.force_direct(flags, &file);
        match self.handles.insert_file(e.ino, file, flags, direct) {
            Ok(fh) => Ok((e, fh, self.cfg.fopen_flags(false))),
            Err(err) => {
                self.inodes.forget(e.ino, 1);
                Err(err)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_create(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: u32,
    ) -> Result<(Entry, u64, u32), Errno> {
        self.check_rw()?;
        let c = check_name(name)?;
        let f = self.host_flags(flags)? | libc::O_CREAT | libc::O_NOFOLLOW | (flags as i32 & libc::O_EXCL);
        let pfd = self.inodes.fd(parent)?;
        let _g = self.creds(ctx)?;
        let file = openat2(pfd.as_fd(), &c, f, mode & !umask & 0o7777)?;
        self.register_new(file, false, f)
    }

    pub(crate) fn do_tmpfile(
        &self,
        ctx: &Context,
        parent: u64,
        mode: u32,
        umask: u32,
        flags: u32,
    ) -> Result<(Entry, u64, u32), Errno> {
        self.check_rw()?;
        let mut f = self.host_flags(flags)? & !libc::O_TRUNC;
        if f & libc::O_ACCMODE == libc::O_RDONLY {
            f |= libc::O_RDWR;
        }
        let pfd = self.inodes.fd(parent)?;
        let _g = self.creds(ctx)?;
        let file = openat2(pfd.as_fd(), c".", f | libc::O_TMPFILE, mode & !umask & 0o7777)?;
        // An unlinked inode cannot be reopened by handle: keep its descriptor pinned.
        self.register_new(file, true, f)
    }

    pub(crate) fn do_read(&self, ino: u64, args: ReadArgs, reply: ReplyData) {
        let h = match self.handles.get(args.fh, ino) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        let (fd, buffered) = if h.direct.is_some() {
            let segs = reply.buffer(reply.capacity());
            match self.io_fd(&h, args.offset, segs.iter().map(|s| s.as_iovec())) {
                Ok(t) => t,
                Err(e) => return reply.error(e),
            }
        } else {
            (h.fd.clone(), !h.o_direct)
        };
        self.engine.read_into(fd, buffered, args.offset, reply)
    }

    pub(crate) fn do_write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        if let Err(e) = self.check_rw() {
            return reply.error(e);
        }
        let h = match self.handles.get(args.fh, ino) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        // With the caller's fsuid the kernel clears setuid/setgid as for an unprivileged writer.
        let _g = if args.write_flags & misc::WRITE_KILL_SUIDGID != 0 {
            match self.creds(ctx) {
                Ok(g) => Some(g),
                Err(e) => return reply.error(e),
            }
        } else {
            None
        };
        let (fd, buffered) = match h.direct {
            Some(_) => match self.io_fd(&h, args.offset, data.iovecs()) {
                Ok(t) => t,
                Err(e) => return reply.error(e),
            },
            None => (h.fd.clone(), !h.o_direct),
        };
        self.engine.write_from(fd, buffered && !h.sync_writes, args.offset, data, reply)
    }

    pub(crate) fn do_flush(&self, ino: u64, fh: u64, owner: u64) -> Result<(), Errno> {
        let h = self.handles.get(fh, ino)?;
        self.locks.drop_owner(ino, owner);
        // Closing a duplicate gives network file systems their close-to-open flush.
        // SAFETY: dup of a descriptor we own; the copy is closed at once.
        let d = unsafe { libc::dup(h.fd.as_raw_fd()) };
        if d >= 0 {
            // SAFETY: `d` is the fresh duplicate.
            if unsafe { libc::close(d) } < 0 {
                return Err(sys::last());
            }
        }
        Ok(())
    }

    pub(crate) fn do_release(
        &self,
        ino: u64,
        fh: u64,
        owner: u64,
        flush: bool,
        flock_release: bool,
    ) -> Result<(), Errno> {
        let h = self.handles.remove(fh, ino)?;
        if flock_release {
            // SAFETY: plain syscall on a descriptor we own.
            unsafe { libc::flock(h.fd.as_raw_fd(), libc::LOCK_UN) };
        }
        if flush {
            self.locks.drop_owner(ino, owner);
        }
        Ok(())
    }

    pub(crate) fn do_fsync(&self, ino: u64, fh: u64, datasync: bool) -> Result<(), Errno> {
        let h = self.handles.get(fh, ino)?;
        let raw = h.fd.as_raw_fd();
        // SAFETY: plain syscalls on a descriptor we own.
        sys::cvt(unsafe {
            if datasync {
                libc::fdatasync(raw)
            } else {
                libc::fsync(raw)
            }
        })
        .map(|_| ())
    }

    pub(crate) fn do_syncfs(&self) -> Result<(), Errno> {
        // SAFETY: plain syscall on a descriptor we own.
        sys::cvt(unsafe { libc::syncfs(self.inodes.mount_fd().as_raw_fd()) }).map(|_| ())
    }

    pub(crate) fn do_fallocate(&self, ino: u64, fh: u64, offset: u64, length: u64, mode: u32) -> Result<(), Errno> {
        self.check_rw()?;
        let h = self.handles.get(fh, ino)?;
        let off = i64::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let len = i64::try_from(length).map_err(|_| Errno::EINVAL)?;
        // SAFETY: plain syscall on a descriptor we own.
        sys::cvt(unsafe { libc::fallocate(h.fd.as_raw_fd(), mode as i32, off, len) }).map(|_| ())
    }

    pub(crate) fn do_lseek(&self, ino: u64, fh: u64, offset: u64, whence: u32) -> Result<u64, Errno> {
        let whence = whence as i32;
        if whence != libc::SEEK_DATA && whence != libc::SEEK_HOLE {
            return Err(Errno::EINVAL);
        }
        let h = self.handles.get(fh, ino)?;
        let off = i64::try_from(offset).map_err(|_| Errno::ENXIO)?;
        // SAFETY: plain syscall; the handle's file position is never used for data (pread/pwrite).
        sys::cvt(unsafe { libc::lseek(h.fd.as_raw_fd(), off, whence) }).map(|o| o as u64)
    }

    pub(crate) fn do_copy_file_range(&self, ino_in: u64, r: &CopyRange) -> Result<u64, Errno> {
        self.check_rw()?;
        if r.flags != 0 {
            return Err(Errno::EINVAL);
        }
        let hin = self.handles.get(r.fh_in, ino_in)?;
        let hout = self.handles.get(r.fh_out, r.ino_out)?;
        let mut oin = i64::try_from(r.off_in).map_err(|_| Errno::EINVAL)?;
        let mut oout = i64::try_from(r.off_out).map_err(|_| Errno::EINVAL)?;
        let len = r.len.min(isize::MAX as u64) as usize;
        // SAFETY: the offsets are valid in/out pointers; descriptors are ours.
        let n = unsafe { libc::copy_file_range(hin.fd.as_raw_fd(), &mut oin, hout.fd.as_raw_fd(), &mut oout, len, 0) };
        sys::cvt(n).map(|n| n as u64)
    }
}
