//! Attributes: GETATTR, SETATTR, ACCESS, STATX, STATFS.

use crate::{sys, PassthroughFs};
use dpfs_core::fs::{Attr, Context, SetAttr, Statfs, Statx, TimeOrNow};
use dpfs_core::Errno;
use std::os::fd::{AsFd, AsRawFd};

/// Host `stat` → wire attributes.
pub(crate) fn to_attr(st: &libc::stat) -> Attr {
    Attr {
        ino: st.st_ino,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: st.st_atime as u64,
        mtime: st.st_mtime as u64,
        ctime: st.st_ctime as u64,
        atimensec: st.st_atime_nsec as u32,
        mtimensec: st.st_mtime_nsec as u32,
        ctimensec: st.st_ctime_nsec as u32,
        mode: st.st_mode,
        nlink: st.st_nlink as u32,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev as u32,
        blksize: st.st_blksize as u32,
        flags: 0,
    }
}

fn timespec(t: Option<TimeOrNow>) -> libc::timespec {
    match t {
        None => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT },
        Some(TimeOrNow::Now) => libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_NOW },
        Some(TimeOrNow::Time { sec, nsec }) => libc::timespec { tv_sec: sec, tv_nsec: nsec.min(999_999_999) as i64 },
    }
}

impl PassthroughFs {
    pub(crate) fn do_getattr(&self, ino: u64, fh: Option<u64>) -> Result<Attr, Errno> {
        let st = match fh {
            Some(fh) => sys::fstat(self.handles.get(fh, ino)?.fd.as_fd())?,
            None => sys::fstat(self.inodes.fd(ino)?.as_fd())?,
        };
        Ok(to_attr(&st))
    }

    pub(crate) fn do_setattr(&self, ctx: &Context, ino: u64, a: &SetAttr) -> Result<Attr, Errno> {
        self.check_rw()?;
        let h = a.fh.map(|fh| self.handles.get(fh, ino)).transpose()?;
        // Through the open file when there is one: it works even after the name is gone.
        let fd = match &h {
            Some(h) => h.fd.clone(),
            None => self.inodes.fd(ino)?,
        };
        let _g = self.creds(ctx)?;
        let raw = fd.as_raw_fd();
        if let Some(mode) = a.mode {
            let mode = mode & 0o7777;
            match &h {
                // SAFETY: plain syscall on a descriptor we own.
                Some(h) => sys::cvt(unsafe { libc::fchmod(h.fd.as_raw_fd(), mode) })?,
                None => {
                    // SAFETY: EMPTY is NUL-terminated; fchmodat2 takes (dirfd, path, mode, flags).
                    let r = unsafe {
                        libc::syscall(libc::SYS_fchmodat2, raw, sys::EMPTY.as_ptr(), mode, libc::AT_EMPTY_PATH)
                    };
                    match sys::cvt(r) {
                        Err(e) if e == Errno::ENOSYS || e == Errno::EINVAL => {
                            let f = self.reopen(fd.as_fd(), libc::O_PATH)?;
                            let p = crate::procfd::fd_path(f.as_raw_fd())?;
                            // SAFETY: `p` is NUL-terminated.
                            sys::cvt(unsafe { libc::chmod(p.as_ptr(), mode) })?
                        }
                        other => other? as i32,
                    }
                }
            };
        }
        if a.uid.is_some() || a.gid.is_some() {
            let uid = a.uid.unwrap_or(u32::MAX);
            let gid = a.gid.unwrap_or(u32::MAX);
            // SAFETY: EMPTY is NUL-terminated.
            sys::cvt(unsafe {
                libc::fchownat(raw, sys::EMPTY.as_ptr(), uid, gid, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
            })?;
        }
        if let Some(size) = a.size {
            let size = i64::try_from(size).map_err(|_| Errno::EFBIG)?;
            match &h {
                // SAFETY: plain syscall on a descriptor we own.
                Some(h) => sys::cvt(unsafe { libc::ftruncate(h.fd.as_raw_fd(), size) })?,
                None => {
                    if sys::ftype(sys::fstat(fd.as_fd())?.st_mode) != libc::S_IFREG {
                        return Err(Errno::EINVAL);
                    }
                    let f = self.reopen(fd.as_fd(), libc::O_WRONLY | libc::O_NONBLOCK)?;
                    // SAFETY: plain syscall on a descriptor we own.
                    sys::cvt(unsafe { libc::ftruncate(f.as_raw_fd(), size) })?
                }
            };
        }
        if a.atime.is_some() || a.mtime.is_some() {
            let ts = [timespec(a.atime), timespec(a.mtime)];
            // SAFETY: `ts` holds two timespecs; EMPTY is NUL-terminated.
            sys::cvt(unsafe {
                libc::utimensat(raw, sys::EMPTY.as_ptr(), ts.as_ptr(), libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
            })?;
        }
        Ok(to_attr(&sys::fstat(fd.as_fd())?))
    }

    pub(crate) fn do_access(&self, ctx: &Context, ino: u64, mask: u32) -> Result<(), Errno> {
        if self.cfg.readonly && mask & libc::W_OK as u32 != 0 {
            return Err(Errno::EROFS);
        }
        let fd = self.inodes.fd(ino)?;
        let _g = self.creds(ctx)?;
        // SAFETY: EMPTY is NUL-terminated.
        let r = unsafe {
            libc::syscall(
                libc::SYS_faccessat2,
                fd.as_raw_fd(),
                sys::EMPTY.as_ptr(),
                mask as libc::c_int,
                libc::AT_EMPTY_PATH | libc::AT_EACCESS,
            )
        };
        sys::cvt(r).map(|_| ())
    }

    pub(crate) fn do_statfs(&self, ino: u64) -> Result<Statfs, Errno> {
        let fd = self.inodes.fd(ino)?;
        // SAFETY: all-zero is a valid statvfs.
        let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `s` is a valid out-pointer; fstatvfs works on O_PATH descriptors.
        sys::cvt(unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut s) })?;
        Ok(Statfs {
            blocks: s.f_blocks,
            bfree: s.f_bfree,
            bavail: s.f_bavail,
            files: s.f_files,
            ffree: s.f_ffree,
            bsize: s.f_bsize as u32,
            namelen: s.f_namemax as u32,
            frsize: s.f_frsize as u32,
            ..Default::default()
        })
    }

    pub(crate) fn do_statx(&self, ino: u64, fh: Option<u64>, flags: u32, mask: u32) -> Result<Statx, Errno> {
        let fd = match fh {
            Some(fh) => self.handles.get(fh, ino)?.fd.clone(),
            None => self.inodes.fd(ino)?,
        };
        // SAFETY: all-zero is a valid statx.
        let mut sx: libc::statx = unsafe { std::mem::zeroed() };
        let fl = libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW | (flags as i32 & libc::AT_STATX_SYNC_TYPE);
        // SAFETY: `sx` is a valid out-pointer; EMPTY is NUL-terminated.
        sys::cvt(unsafe { libc::statx(fd.as_raw_fd(), sys::EMPTY.as_ptr(), fl, mask, &mut sx) })?;
        let t = |t: libc::statx_timestamp| dpfs_core::abi::SxTime { tv_sec: t.tv_sec, tv_nsec: t.tv_nsec, reserved: 0 };
        Ok(Statx {
            mask: sx.stx_mask,
            blksize: sx.stx_blksize,
            attributes: sx.stx_attributes,
            nlink: sx.stx_nlink,
            uid: sx.stx_uid,
            gid: sx.stx_gid,
            mode: sx.stx_mode,
            ino: sx.stx_ino,
            size: sx.stx_size,
            blocks: sx.stx_blocks,
            attributes_mask: sx.stx_attributes_mask,
            atime: t(sx.stx_atime),
            btime: t(sx.stx_btime),
            ctime: t(sx.stx_ctime),
            mtime: t(sx.stx_mtime),
            rdev_major: sx.stx_rdev_major,
            rdev_minor: sx.stx_rdev_minor,
            dev_major: sx.stx_dev_major,
            dev_minor: sx.stx_dev_minor,
            ..Default::default()
        })
    }
}
