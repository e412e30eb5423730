//! Confined path resolution: every child is opened with `openat2(RESOLVE_BENEATH | …)`.

use crate::sys;
use dpfs_core::Errno;
use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

/// `struct open_how` of `openat2(2)` (libc's is `non_exhaustive`).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

/// The resolution rules every open of a child uses: stay beneath the directory, never
/// follow `/proc` magic links, never cross a mount point.
const RESOLVE: u64 = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS | libc::RESOLVE_NO_XDEV;

/// Opens `name` relative to `dir`, confined beneath it. `O_CLOEXEC` is always added.
pub(crate) fn openat2(dir: BorrowedFd<'_>, name: &CStr, flags: i32, mode: u32) -> Result<OwnedFd, Errno> {
    let how = OpenHow { flags: (flags | libc::O_CLOEXEC) as u32 as u64, mode: mode as u64, resolve: RESOLVE };
    let mut tries = 0;
    loop {
        // SAFETY: `name` is NUL-terminated, `how` is a valid open_how of the size passed.
        let r = unsafe {
            libc::syscall(libc::SYS_openat2, dir.as_raw_fd(), name.as_ptr(), &how, std::mem::size_of::<OpenHow>())
        };
        match sys::owned(r) {
            // EAGAIN: the kernel saw a concurrent rename and refused to guess; retry a little.
            Err(e) if (e == Errno::EAGAIN || e.0 == libc::EINTR) && tries < 8 => tries += 1,
            other => return other,
        }
    }
}

/// Opens child `name` of `dir` as an `O_PATH | O_NOFOLLOW` descriptor (for LOOKUP).
pub(crate) fn open_child(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    openat2(dir, name, libc::O_PATH | libc::O_NOFOLLOW, 0)
}

/// Checks a name that a create-type operation will add or remove: a single component,
/// not `.` or `..`, at most 255 bytes.
pub(crate) fn check_name(name: &[u8]) -> Result<CString, Errno> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(Errno::EINVAL);
    }
    if name.len() > 255 {
        return Err(Errno::ENAMETOOLONG);
    }
    sys::cstr(name)
}
