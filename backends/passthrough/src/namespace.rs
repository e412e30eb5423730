//! Names: LOOKUP, FORGET, READLINK, MKNOD, MKDIR, SYMLINK, UNLINK, RMDIR, RENAME, LINK.

use crate::inode::ROOT_ID;
use crate::resolve::{check_name, open_child, openat2};
use crate::{sys, PassthroughFs};
use dpfs_core::fs::{Context, Entry};
use dpfs_core::Errno;
use std::os::fd::{AsFd, AsRawFd};

const RENAME_FLAGS: u32 = libc::RENAME_NOREPLACE | libc::RENAME_EXCHANGE | libc::RENAME_WHITEOUT;

impl PassthroughFs {
    pub(crate) fn do_lookup(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        if name.len() > 255 {
            return Err(Errno::ENAMETOOLONG);
        }
        if name.is_empty() || name.contains(&b'/') {
            return Err(Errno::EINVAL);
        }
        let pfd = self.inodes.fd(parent)?;
        let _g = self.creds(ctx)?;
        if name == b"." || (name == b".." && parent == ROOT_ID) {
            // `..` of the root is the root: the share has no outside.
            let fd = openat2(pfd.as_fd(), c".", libc::O_PATH, 0)?;
            return self.entry_from(fd, false);
        }
        if name == b".." {
            return self.lookup_dotdot(pfd.as_fd());
        }
        let c = sys::cstr(name)?;
        let fd = open_child(pfd.as_fd(), &c)?;
        self.entry_from(fd, false)
    }

    /// `..` of a non-root directory: RESOLVE_BENEATH refuses it, so open it plainly and
    /// accept it only if the guest already holds that inode (it is then inside the share).
    fn lookup_dotdot(&self, dir: std::os::fd::BorrowedFd<'_>) -> Result<Entry, Errno> {
        // SAFETY: the path is NUL-terminated; the result is a fresh descriptor.
        let r =
            unsafe { libc::openat(dir.as_raw_fd(), c"..".as_ptr(), libc::O_PATH | libc::O_NOFOLLOW | libc::O_CLOEXEC) };
        let fd = sys::owned(r as libc::c_long)?;
        let st = sys::fstat(fd.as_fd())?;
        if self.inodes.id_of((st.st_dev, st.st_ino)).is_none() {
            return Err(Errno::EACCES);
        }
        self.entry_from(fd, false)
    }

    pub(crate) fn do_forget(&self, ino: u64, n: u64) {
        self.inodes.forget(ino, n);
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let fd = self.inodes.fd(ino)?;
        let mut buf = vec![0u8; libc::PATH_MAX as usize];
        // SAFETY: `buf` has `len` bytes of room; EMPTY is NUL-terminated (readlinkat on an
        // O_PATH symlink fd with an empty path reads that link).
        let n = unsafe { libc::readlinkat(fd.as_raw_fd(), sys::EMPTY.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        buf.truncate(sys::cvt(n)? as usize);
        Ok(buf)
    }

    /// Runs `make(dirfd, name)` in `parent` with the caller's credentials, then looks the new name up.
    fn make<F>(&self, ctx: &Context, parent: u64, name: &[u8], make: F) -> Result<Entry, Errno>
    where
        F: FnOnce(libc::c_int, &std::ffi::CStr) -> libc::c_int,
    {
        self.check_rw()?;
        let c = check_name(name)?;
        let pfd = self.inodes.fd(parent)?;
        let _g = self.creds(ctx)?;
        sys::cvt(make(pfd.as_raw_fd(), &c))?;
        let fd = open_child(pfd.as_fd(), &c)?;
        self.entry_from(fd, false)
    }

    pub(crate) fn do_mkdir(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let mode = mode & !umask & 0o7777;
        // SAFETY: `n` is NUL-terminated.
        self.make(ctx, parent, name, |d, n| unsafe { libc::mkdirat(d, n.as_ptr(), mode) })
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_mknod(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let typ = sys::ftype(mode);
        match typ {
            libc::S_IFREG | libc::S_IFIFO | libc::S_IFSOCK => {}
            libc::S_IFCHR | libc::S_IFBLK if self.cfg.allow_devices => {}
            libc::S_IFCHR | libc::S_IFBLK => return Err(Errno::EPERM),
            _ => return Err(Errno::EINVAL),
        }
        let mode = typ | (mode & !umask & 0o7777);
        // SAFETY: `n` is NUL-terminated.
        self.make(ctx, parent, name, |d, n| unsafe { libc::mknodat(d, n.as_ptr(), mode, rdev as libc::dev_t) })
    }

    pub(crate) fn do_symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8]) -> Result<Entry, Errno> {
        if target.is_empty() || target.len() >= libc::PATH_MAX as usize {
            return Err(if target.is_empty() { Errno::ENOENT } else { Errno::ENAMETOOLONG });
        }
        let t = sys::cstr(target)?;
        // SAFETY: both strings are NUL-terminated.
        self.make(ctx, parent, name, |d, n| unsafe { libc::symlinkat(t.as_ptr(), d, n.as_ptr()) })
    }

    fn remove(&self, ctx: &Context, parent: u64, name: &[u8], flags: libc::c_int) -> Result<(), Errno> {
        self.check_rw()?;
        let c = check_name(name)?;
        let pfd = self.inodes.fd(parent)?;
        let _g = self.creds(ctx)?;
        let victim = self.stat_name(pfd.as_fd(), &c);
        // SAFETY: `c` is NUL-terminated.
        sys::cvt(unsafe { libc::unlinkat(pfd.as_raw_fd(), c.as_ptr(), flags) })?;
        if let Some(key) = victim {
            self.inodes.uncache(key);
        }
        Ok(())
    }

    /// Host identity of `name` in `dir`, if it exists (not following symlinks).
    fn stat_name(&self, dir: std::os::fd::BorrowedFd<'_>, name: &std::ffi::CStr) -> Option<crate::inode::Key> {
        // SAFETY: all-zero is a valid stat.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: `name` is NUL-terminated, `st` a valid out-pointer.
        let r = unsafe { libc::fstatat(dir.as_raw_fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        (r == 0).then_some((st.st_dev, st.st_ino))
    }

    pub(crate) fn do_unlink(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.remove(ctx, parent, name, 0)
    }

    pub(crate) fn do_rmdir(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.remove(ctx, parent, name, libc::AT_REMOVEDIR)
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_rename(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.check_rw()?;
        if flags & !RENAME_FLAGS != 0 {
            return Err(Errno::EINVAL);
        }
        let (a, b) = (check_name(name)?, check_name(newname)?);
        let (pa, pb) = (self.inodes.fd(parent)?, self.inodes.fd(newparent)?);
        let _g = self.creds(ctx)?;
        let replaced = if flags & libc::RENAME_EXCHANGE == 0 { self.stat_name(pb.as_fd(), &b) } else { None };
        // SAFETY: both names are NUL-terminated.
        sys::cvt(unsafe { libc::renameat2(pa.as_raw_fd(), a.as_ptr(), pb.as_raw_fd(), b.as_ptr(), flags) })?;
        if let Some(key) = replaced {
            self.inodes.uncache(key);
        }
        Ok(())
    }

    pub(crate) fn do_link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8]) -> Result<Entry, Errno> {
        self.check_rw()?;
        let c = check_name(newname)?;
        let src = self.inodes.fd(ino)?;
        let pfd = self.inodes.fd(newparent)?;
        let _g = self.creds(ctx)?;
        // Through /proc/self/fd: AT_EMPTY_PATH would need CAP_DAC_READ_SEARCH, which the
        // caller's fsuid drops. The magic link lands on the inode itself (symlinks included).
        let p = sys::cstr(src.as_raw_fd().to_string().as_bytes())?;
        // SAFETY: both names are NUL-terminated.
        sys::cvt(unsafe {
            libc::linkat(self.proc_fd.as_raw_fd(), p.as_ptr(), pfd.as_raw_fd(), c.as_ptr(), libc::AT_SYMLINK_FOLLOW)
        })?;
        let fd = open_child(pfd.as_fd(), &c)?;
        self.entry_from(fd, false)
    }
}
