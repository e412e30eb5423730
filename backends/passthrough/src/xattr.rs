//! Extended attributes. `O_PATH` descriptors refuse the fd-based calls, so the path-based
//! ones are used on `/proc/self/fd/N`, whose magic link lands on the very inode we hold.
//!
//! Every operation first applies the caller-privilege rules ([`dpfs_core::xattr`]), then
//! the [`XattrPolicy`](crate::XattrPolicy) turns the guest's name into the host's. A name
//! the policy maps into the private prefix is dpfs's own attribute: it is accessed with the
//! daemon's credentials (the caller's privilege was decided already, by the guest's rules
//! for the guest's name); any other name is accessed with the caller's.

use crate::xattr_policy::HostName;
use crate::{creds, sys, PassthroughFs};
use dpfs_core::fs::Context;
use dpfs_core::reply::Xattr;
use dpfs_core::xattr::{check_caller, listed_for, Access};
use dpfs_core::Errno;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

/// Largest value or list the backend hands out (the kernel's `XATTR_SIZE_MAX`).
const XATTR_MAX: usize = 65536;

/// `/proc/self/fd/N` for a descriptor we hold.
fn proc_path(fd: &impl AsRawFd) -> Result<CString, Errno> {
    crate::procfd::fd_path(fd.as_raw_fd())
}

/// The owner uid of the inode `fd` refers to.
fn owner(fd: &OwnedFd) -> Result<u32, Errno> {
    sys::fstat(fd.as_fd()).map(|st| st.st_uid)
}

/// The whole host name list of `p` (retried if it grows between the probe and the read).
fn host_list(p: &CString) -> Result<Vec<u8>, Errno> {
    for _ in 0..4 {
        // SAFETY: `p` is NUL-terminated; a null buffer of length 0 asks for the size.
        let len = sys::cvt(unsafe { libc::listxattr(p.as_ptr(), std::ptr::null_mut(), 0) })? as usize;
        let mut buf = vec![0u8; len.min(XATTR_MAX)];
        // SAFETY: `p` is NUL-terminated; `buf` is valid for its length.
        match sys::cvt(unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) }) {
            Ok(n) => {
                buf.truncate(n as usize);
                return Ok(buf);
            }
            Err(Errno::ERANGE) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(Errno::ERANGE)
}

/// The guest's answer from host `getxattr(2)`'s return `r` into `buf` (`size` bytes): the
/// host already refused, with ERANGE, a value that does not fit.
fn sized(r: isize, size: u32, mut buf: Vec<u8>) -> Result<Xattr, Errno> {
    let len = sys::cvt(r)? as usize;
    Ok(if size == 0 {
        Xattr::Size(len as u32)
    } else {
        buf.truncate(len);
        Xattr::Data(buf)
    })
}

impl PassthroughFs {
    /// The caller's credentials for a host name that is the guest's, none for dpfs's own.
    fn creds_for(&self, ctx: &Context, host: &HostName<'_>) -> Result<Option<creds::CredGuard>, Errno> {
        match host {
            HostName::Same(_) => self.creds(ctx).map(Some),
            HostName::Private(_) => Ok(None),
        }
    }

    pub(crate) fn do_setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.check_rw()?;
        let fd = self.inodes.fd(ino)?;
        check_caller(ctx, name, Access::Write, || owner(&fd))?;
        let host = self.cfg.xattr_policy.to_host(name)?;
        let n = sys::cstr(host.bytes())?;
        let p = proc_path(&*fd)?;
        let _g = self.creds_for(ctx, &host)?;
        // SAFETY: `p` and `n` are NUL-terminated; `value` is valid for its length.
        let r = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags as i32) };
        sys::cvt(r).map(|_| ())
    }

    pub(crate) fn do_getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32) -> Result<Xattr, Errno> {
        let fd = self.inodes.fd(ino)?;
        check_caller(ctx, name, Access::Read, || owner(&fd))?;
        let host = self.cfg.xattr_policy.to_host(name)?;
        let n = sys::cstr(host.bytes())?;
        let p = proc_path(&*fd)?;
        let _g = self.creds_for(ctx, &host)?;
        let mut buf = vec![0u8; (size as usize).min(XATTR_MAX)];
        // SAFETY: `p` and `n` are NUL-terminated; `buf` is valid for its length.
        let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        sized(r, size, buf)
    }

    /// The host's list, translated by the policy and without the names the caller may not
    /// see; `size` applies to that list, not the host's.
    pub(crate) fn do_listxattr(&self, ctx: &Context, ino: u64, size: u32) -> Result<Xattr, Errno> {
        let fd = self.inodes.fd(ino)?;
        let p = proc_path(&*fd)?;
        let raw = {
            let _g = self.creds(ctx)?;
            host_list(&p)?
        };
        Xattr::sized(self.cfg.xattr_policy.guest_list(&raw, |n| listed_for(ctx, n)), size)
    }

    pub(crate) fn do_removexattr(&self, ctx: &Context, ino: u64, name: &[u8]) -> Result<(), Errno> {
        self.check_rw()?;
        let fd = self.inodes.fd(ino)?;
        check_caller(ctx, name, Access::Write, || owner(&fd))?;
        let host = self.cfg.xattr_policy.to_host(name)?;
        let n = sys::cstr(host.bytes())?;
        let p = proc_path(&*fd)?;
        let _g = self.creds_for(ctx, &host)?;
        // SAFETY: `p` and `n` are NUL-terminated.
        sys::cvt(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) }).map(|_| ())
    }
}
