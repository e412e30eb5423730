//! The synchronous engine: `preadv`/`pwritev` on the calling thread.

use super::Engine;
use crate::sys;
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use dpfs_core::Errno;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;

/// Synchronous I/O on the poller thread.
#[derive(Debug, Default)]
pub struct SyncEngine;

/// Drops the first `n` bytes of `iov`.
pub(super) fn advance(iov: &mut Vec<libc::iovec>, mut n: usize) {
    while n > 0 && !iov.is_empty() {
        let first = iov[0];
        if n >= first.iov_len {
            n -= first.iov_len;
            iov.remove(0);
        } else {
            iov[0] = libc::iovec {
                // SAFETY: n < iov_len, so the pointer stays within the segment.
                iov_base: unsafe { first.iov_base.cast::<u8>().add(n) }.cast(),
                iov_len: first.iov_len - n,
            };
            n = 0;
        }
    }
}

/// Moves the whole `iov` with `op` (preadv or pwritev) starting at `offset`; stops at
/// end of file (0) and returns the total moved.
fn full<F>(mut iov: Vec<libc::iovec>, offset: u64, mut op: F) -> Result<usize, Errno>
where
    F: FnMut(&[libc::iovec], i64) -> isize,
{
    let mut done = 0usize;
    while !iov.is_empty() {
        let cnt = iov.len().min(1024);
        let n = op(&iov[..cnt], (offset + done as u64) as i64);
        if n < 0 {
            let e = sys::last();
            if e.0 == libc::EINTR {
                continue;
            }
            if done > 0 {
                break;
            }
            return Err(e);
        }
        if n == 0 {
            break;
        }
        done += n as usize;
        advance(&mut iov, n as usize);
    }
    Ok(done)
}

/// Reads into `iov` at `offset`, the first `done` bytes being filled already; returns the
/// total filled (short only at end of file).
pub(super) fn pread_full(fd: RawFd, mut iov: Vec<libc::iovec>, offset: u64, done: usize) -> Result<usize, Errno> {
    advance(&mut iov, done);
    // SAFETY: the iovecs describe live, writable reply segments (the caller's contract).
    let r =
        full(iov, offset + done as u64, |v, off| unsafe { libc::preadv(fd, v.as_ptr(), v.len() as i32, off) as isize });
    match r {
        Ok(n) => Ok(n + done),
        Err(_) if done > 0 => Ok(done),
        Err(e) => Err(e),
    }
}

/// Writes `iov` at `offset`, the first `done` bytes being written already; returns the total.
pub(super) fn pwrite_full(fd: RawFd, mut iov: Vec<libc::iovec>, offset: u64, done: usize) -> Result<usize, Errno> {
    advance(&mut iov, done);
    // SAFETY: the iovecs describe the live write payload (the caller's contract).
    let r = full(iov, offset + done as u64, |v, off| unsafe {
        libc::pwritev(fd, v.as_ptr(), v.len() as i32, off) as isize
    });
    match r {
        Ok(n) => Ok(n + done),
        Err(_) if done > 0 => Ok(done),
        Err(e) => Err(e),
    }
}

impl Engine for SyncEngine {
    fn read_into(&self, fd: Arc<OwnedFd>, _buffered: bool, offset: u64, reply: ReplyData) {
        if offset > i64::MAX as u64 {
            return reply.error(Errno::EINVAL);
        }
        let iov: Vec<libc::iovec> = reply.buffer(reply.capacity()).iter().map(|s| s.as_iovec()).collect();
        match pread_full(fd.as_raw_fd(), iov, offset, 0) {
            Ok(n) => reply.commit(n),
            Err(e) => reply.error(e),
        }
    }

    fn write_from(&self, fd: Arc<OwnedFd>, _buffered: bool, offset: u64, data: WriteData, reply: ReplyWrite) {
        if offset > i64::MAX as u64 {
            return reply.error(Errno::EINVAL);
        }
        let iov: Vec<libc::iovec> = data.iovecs().into_iter().filter(|v| v.iov_len > 0).collect();
        let r = pwrite_full(fd.as_raw_fd(), iov, offset, 0);
        drop(data);
        match r {
            Ok(n) => reply.written(n.min(u32::MAX as usize) as u32),
            Err(e) => reply.error(e),
        }
    }

    fn name(&self) -> &'static str {
        "sync"
    }
}
