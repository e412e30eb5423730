//! The `/dev/fuse` descriptor: opening it, cloning it per reader thread, reading one request
//! and writing one reply.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `FUSE_DEV_IOC_CLONE` = `_IOR(229, 0, uint32_t)`: attaches a fresh `/dev/fuse` descriptor
/// to the connection of an existing one, with its own processing queue.
const FUSE_DEV_IOC_CLONE: libc::c_ulong = 0x8004_e500;

/// The smallest read buffer the kernel accepts (`FUSE_MIN_READ_BUFFER`).
pub const MIN_READ_BUFFER: usize = 8192;

/// One open `/dev/fuse` descriptor.
#[derive(Debug)]
pub struct FuseDev {
    fd: OwnedFd,
}

impl FuseDev {
    /// Opens `/dev/fuse` (a new, not yet mounted connection).
    pub fn open() -> io::Result<FuseDev> {
        Self::open_raw()
    }

    fn open_raw() -> io::Result<FuseDev> {
        // SAFETY: the path is a NUL-terminated literal; open has no other preconditions.
        let fd = unsafe { libc::open(c"/dev/fuse".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by open and is owned by nobody else.
        Ok(FuseDev { fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    /// A new descriptor on the same connection (`FUSE_DEV_IOC_CLONE`). Replies must be
    /// written to the descriptor the request was read from.
    pub fn try_clone_dev(&self) -> io::Result<FuseDev> {
        let new = Self::open_raw()?;
        let old: u32 = self.fd.as_raw_fd() as u32;
        // SAFETY: both descriptors are open; the ioctl reads one u32 from a valid pointer.
        let r = unsafe { libc::ioctl(new.fd.as_raw_fd(), FUSE_DEV_IOC_CLONE as _, &old as *const u32) };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(new)
    }

    /// Reads one request into `buf`; returns its length. Errors are raw: the caller decides
    /// about EINTR/EAGAIN/ENOENT (retry) and ENODEV (unmounted).
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: `buf` is a valid writable region of `buf.len()` bytes for the call.
        let n = unsafe { libc::read(self.fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(n as usize)
    }

    /// Writes one reply (out-header and payload) in a single `write(2)`.
    pub fn write_reply(&self, reply: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: `reply` is a valid readable region of `reply.len()` bytes for the call.
            let n = unsafe { libc::write(self.fd.as_raw_fd(), reply.as_ptr().cast(), reply.len()) };
            if n >= 0 {
                if n as usize != reply.len() {
                    return Err(io::Error::new(io::ErrorKind::WriteZero, "short write of a FUSE reply"));
                }
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }
}

impl AsRawFd for FuseDev {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
