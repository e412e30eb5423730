//! Small safe wrappers around the raw syscalls the backend uses.

use dpfs_core::Errno;
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The calling thread's last OS error as an `Errno`.
pub(crate) fn last() -> Errno {
    Errno(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO))
}

/// Turns a `-1`-on-error return into a `Result`.
pub(crate) fn cvt<T: Copy + PartialOrd + Default>(r: T) -> Result<T, Errno> {
    if r < T::default() {
        Err(last())
    } else {
        Ok(r)
    }
}

/// Wraps a fresh descriptor returned by a syscall.
pub(crate) fn owned(r: libc::c_long) -> Result<OwnedFd, Errno> {
    let fd = cvt(r)? as libc::c_int;
    // SAFETY: the syscall just returned this descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The empty path used with `AT_EMPTY_PATH`.
pub(crate) const EMPTY: &std::ffi::CStr = c"";

/// A name as a C string (names never contain NUL; core checked).
pub(crate) fn cstr(b: &[u8]) -> Result<CString, Errno> {
    CString::new(b).map_err(|_| Errno::EINVAL)
}

/// `fstatat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`: works on `O_PATH` descriptors.
pub(crate) fn fstat(fd: BorrowedFd<'_>) -> Result<libc::stat, Errno> {
    // SAFETY: all-zero is a valid `stat`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid out-pointer and EMPTY a NUL-terminated string.
    cvt(unsafe {
        libc::fstatat(fd.as_raw_fd(), EMPTY.as_ptr(), &mut st, libc::AT_EMPTY_PATH | libc::AT_SYMLINK_NOFOLLOW)
    })?;
    Ok(st)
}

/// `S_IFMT` type of a mode.
pub(crate) fn ftype(mode: u32) -> u32 {
    mode & libc::S_IFMT
}
