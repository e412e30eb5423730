//! Extended attributes. `O_PATH` descriptors refuse the fd-based calls, so the path-based
//! ones are used on `/proc/self/fd/N`, whose magic link lands on the very inode we hold.

use crate::{sys, PassthroughFs};
use dpfs_core::fs::Context;
use dpfs_core::Errno;
use std::ffi::CString;
use std::os::fd::AsRawFd;

/// Largest value or list the backend hands out (the kernel's `XATTR_SIZE_MAX`).
const XATTR_MAX: usize = 65536;

/// Result of a get/list: the length probe or the bytes.
pub(crate) enum XattrReply {
    /// `size == 0`: the length.
    Size(u32),
    /// The value or name list.
    Data(Vec<u8>),
}

/// `/proc/self/fd/N` for a descriptor we hold.
fn proc_path(fd: &impl AsRawFd) -> Result<CString, Errno> {
    sys::cstr(format!("/proc/self/fd/{}", fd.as_raw_fd()).as_bytes())
}

fn sized(r: isize, size: u32, mut buf: Vec<u8>) -> Result<XattrReply, Errno> {
    let len = sys::cvt(r)? as usize;
    Ok(if size == 0 {
        XattrReply::Size(len as u32)
    } else {
        buf.truncate(len);
        XattrReply::Data(buf)
    })
}

impl PassthroughFs {
    pub(crate) fn do_setxattr(
        &self,
        ctx: &Context,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        self.check_rw()?;
        let n = sys::cstr(name)?;
        let fd = self.inodes.fd(ino)?;
        let p = proc_path(&*fd)?;
        let _g = self.creds(ctx)?;
        // SAFETY: `p` and `n` are NUL-terminated; `value` is valid for its length.
        let r = unsafe { libc::setxattr(p.as_ptr(), n.as_ptr(), value.as_ptr().cast(), value.len(), flags as i32) };
        sys::cvt(r).map(|_| ())
    }

    pub(crate) fn do_getxattr(&self, ctx: &Context, ino: u64, name: &[u8], size: u32) -> Result<XattrReply, Errno> {
        let n = sys::cstr(name)?;
        let fd = self.inodes.fd(ino)?;
        let p = proc_path(&*fd)?;
        let _g = self.creds(ctx)?;
        let mut buf = vec![0u8; (size as usize).min(XATTR_MAX)];
        // SAFETY: `p` and `n` are NUL-terminated; `buf` is valid for its length.
        let r = unsafe { libc::getxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        sized(r, size, buf)
    }

    pub(crate) fn do_listxattr(&self, ctx: &Context, ino: u64, size: u32) -> Result<XattrReply, Errno> {
        let fd = self.inodes.fd(ino)?;
        let p = proc_path(&*fd)?;
        let _g = self.creds(ctx)?;
        let mut buf = vec![0u8; (size as usize).min(XATTR_MAX)];
        // SAFETY: `p` is NUL-terminated; `buf` is valid for its length.
        let r = unsafe { libc::listxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        sized(r, size, buf)
    }

    pub(crate) fn do_removexattr(&self, ctx: &Context, ino: u64, name: &[u8]) -> Result<(), Errno> {
        self.check_rw()?;
        let n = sys::cstr(name)?;
        let fd = self.inodes.fd(ino)?;
        let p = proc_path(&*fd)?;
        let _g = self.creds(ctx)?;
        // SAFETY: `p` and `n` are NUL-terminated.
        sys::cvt(unsafe { libc::removexattr(p.as_ptr(), n.as_ptr()) }).map(|_| ())
    }
}
