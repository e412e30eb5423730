//! The daemon's `/proc/self/fd` directory, opened once (before any sandbox pivots the root
//! away from `/proc`), and the per-thread working directory that lets path-only system
//! calls (`getxattr`, `chmod` on an `O_PATH` descriptor) name a descriptor as `"N"`.

use dpfs_core::Errno;
use std::cell::Cell;
use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::OnceLock;

static PROC_SELF_FD: OnceLock<OwnedFd> = OnceLock::new();

thread_local! {
    /// Whether this thread has its own working directory set to `/proc/self/fd`.
    static IN_PROC_FD: Cell<bool> = const { Cell::new(false) };
}

/// Hands the backend a `/proc/self/fd` descriptor (`O_PATH | O_DIRECTORY`) opened before
/// the process confined itself; without one the backend opens `/proc/self/fd` on first
/// use. Returns the descriptor back if one was set already.
pub fn set_proc_self_fd(fd: OwnedFd) -> Result<(), OwnedFd> {
    PROC_SELF_FD.set(fd)
}

/// The process's `/proc/self/fd` directory.
pub(crate) fn proc_self_fd() -> std::io::Result<BorrowedFd<'static>> {
    if let Some(fd) = PROC_SELF_FD.get() {
        return Ok(fd.as_fd());
    }
    let path = c"/proc/self/fd";
    // SAFETY: NUL-terminated path; the result is a fresh descriptor.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let _ = PROC_SELF_FD.set(unsafe { OwnedFd::from_raw_fd(fd) });
    PROC_SELF_FD.get().map(|f| f.as_fd()).ok_or_else(|| std::io::Error::from_raw_os_error(libc::EBADF))
}

/// A path naming descriptor `fd` for path-only system calls: `"N"`, relative to this
/// thread's working directory, which is made `/proc/self/fd` on first use (the thread
/// first gets its own file-system context, `unshare(CLONE_FS)`, so no other thread's
/// working directory changes). Works whether or not `/proc` is reachable from the root.
pub(crate) fn fd_path(fd: RawFd) -> Result<CString, Errno> {
    if !IN_PROC_FD.with(Cell::get) {
        let dir = proc_self_fd().map_err(|e| Errno(e.raw_os_error().unwrap_or(libc::EIO)))?;
        // SAFETY: unshare(CLONE_FS) gives this thread a private copy of cwd/root/umask.
        crate::sys::cvt(unsafe { libc::unshare(libc::CLONE_FS) })?;
        // SAFETY: fchdir on a directory descriptor we hold for the process's lifetime.
        crate::sys::cvt(unsafe { libc::fchdir(dir.as_raw_fd()) })?;
        IN_PROC_FD.with(|c| c.set(true));
    }
    crate::sys::cstr(fd.to_string().as_bytes())
}
