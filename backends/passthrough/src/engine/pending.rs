//! What the asynchronous engines share: an I/O in flight ([`Pending`]), how a completion
//! answers it ([`finish`]), and the in-flight count that parks a completion thread while
//! the submitting thread reaps everything itself ([`Inflight`]).

use super::sync::{advance, pread_full, pwrite_full};
use super::{Engine, SyncEngine};
use crate::sys;
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use dpfs_core::Errno;
use parking_lot::{Condvar, Mutex};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// An I/O in flight: everything the kernel points into stays here until it completes.
/// `offset` and `iov` describe what is left after the `done` bytes moved on submission.
pub(super) enum Pending {
    /// A READ into the reply's segments.
    Read { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, reply: ReplyData, done: usize },
    /// A WRITE from the request's segments.
    Write { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, data: WriteData, reply: ReplyWrite, done: usize },
}

// SAFETY: the iovecs point into request memory owned by the reply token / write payload
// stored alongside them; they are only dereferenced by the kernel or by the one thread
// that owns the `Pending` at a time.
unsafe impl Send for Pending {}

/// Most iovecs one submission takes (the kernel's UIO_MAXIOV).
const IOV_MAX: usize = 1024;

impl Pending {
    /// The READ an asynchronous engine submits, or `None` after serving it synchronously
    /// when it does not fit one submission (no buffer, too many segments, huge offset).
    pub(super) fn read(fd: Arc<OwnedFd>, offset: u64, reply: ReplyData) -> Option<Pending> {
        let iov = iovecs(reply.buffer(reply.capacity()).iter().map(|s| s.as_iovec()));
        if iov.is_empty() || iov.len() > IOV_MAX || offset > i64::MAX as u64 {
            SyncEngine.read_into(fd, false, offset, reply);
            return None;
        }
        Some(Pending::Read { fd, offset, iov, reply, done: 0 })
    }

    /// The WRITE an asynchronous engine submits, or `None` after serving it synchronously.
    pub(super) fn write(fd: Arc<OwnedFd>, offset: u64, data: WriteData, reply: ReplyWrite) -> Option<Pending> {
        let iov = iovecs(data.iovecs());
        if iov.is_empty() || iov.len() > IOV_MAX || offset > i64::MAX as u64 {
            SyncEngine.write_from(fd, false, offset, data, reply);
            return None;
        }
        Some(Pending::Write { fd, offset, iov, data, reply, done: 0 })
    }

    /// The same transfer with its first `n` bytes already moved.
    pub(super) fn advanced(self, n: usize) -> Pending {
        match self {
            Pending::Read { fd, offset, iov, reply, done } => {
                Pending::Read { fd, offset: offset + n as u64, iov: skip(iov, n), reply, done: done + n }
            }
            Pending::Write { fd, offset, iov, data, reply, done } => {
                Pending::Write { fd, offset: offset + n as u64, iov: skip(iov, n), data, reply, done: done + n }
            }
        }
    }

    /// Moves what is left synchronously and answers (a full queue, no queue).
    pub(super) fn finish_sync(self) {
        finish(self, -i64::from(libc::EAGAIN))
    }

    /// The iovecs the kernel reads or fills.
    pub(super) fn iov(&self) -> &[libc::iovec] {
        match self {
            Pending::Read { iov, .. } | Pending::Write { iov, .. } => iov,
        }
    }

    /// The host descriptor.
    pub(super) fn fd(&self) -> i32 {
        match self {
            Pending::Read { fd, .. } | Pending::Write { fd, .. } => fd.as_raw_fd(),
        }
    }

    /// The file offset.
    pub(super) fn offset(&self) -> u64 {
        match self {
            Pending::Read { offset, .. } | Pending::Write { offset, .. } => *offset,
        }
    }
}

/// What a non-blocking attempt on the submitting thread achieved.
pub(super) enum Attempt {
    /// The transfer finished (a read short only at end of file): the byte count.
    Done(usize),
    /// This many bytes moved; the rest would have to wait (not in the page cache, locks).
    Partial(usize),
    /// The file system does not do non-blocking buffered I/O (EOPNOTSUPP).
    Unsupported,
}

/// Tries the transfer with `preadv2`/`pwritev2(RWF_NOWAIT)`: a page-cache hit completes
/// here with one system call, anything that would wait stops at once.
pub(super) fn try_nowait(fd: RawFd, iov: &[libc::iovec], offset: u64, write: bool) -> Result<Attempt, Errno> {
    let want: usize = iov.iter().map(|v| v.iov_len).sum();
    let mut rest: Option<Vec<libc::iovec>> = None;
    let mut done = 0usize;
    loop {
        let v = rest.as_deref().unwrap_or(iov);
        let (ptr, cnt, off) = (v.as_ptr(), v.len() as libc::c_int, (offset + done as u64) as libc::off_t);
        // SAFETY: the iovecs describe live request memory (the caller's contract): the
        // reply's writable segments for a read, the payload for a write.
        let n = unsafe {
            if write {
                libc::pwritev2(fd, ptr, cnt, off, libc::RWF_NOWAIT)
            } else {
                libc::preadv2(fd, ptr, cnt, off, libc::RWF_NOWAIT)
            }
        };
        if n < 0 {
            let e = sys::last();
            return match e.0 {
                libc::EINTR => continue,
                libc::EAGAIN => Ok(Attempt::Partial(done)),
                libc::EOPNOTSUPP if done == 0 => Ok(Attempt::Unsupported),
                _ if done > 0 => Ok(Attempt::Done(done)),
                _ => Err(e),
            };
        }
        let n = n as usize;
        if n == 0 {
            // End of file for a read; a write that moved nothing is left to the ring.
            return Ok(if write { Attempt::Partial(done) } else { Attempt::Done(done) });
        }
        done += n;
        if done >= want {
            return Ok(Attempt::Done(done));
        }
        advance(rest.get_or_insert_with(|| iov.to_vec()), n);
    }
}

/// `iov` without its first `n` bytes.
fn skip(iov: Box<[libc::iovec]>, n: usize) -> Box<[libc::iovec]> {
    if n == 0 {
        return iov;
    }
    let mut v = iov.into_vec();
    advance(&mut v, n);
    v.into_boxed_slice()
}

/// The non-empty iovecs of `v`.
fn iovecs(v: impl IntoIterator<Item = libc::iovec>) -> Box<[libc::iovec]> {
    v.into_iter().filter(|v| v.iov_len > 0).collect()
}

/// Answers a completed I/O (`res` is a byte count or a negated errno), finishing short or
/// retryable transfers synchronously so the guest never mistakes a short read for end of file.
pub(super) fn finish(p: Pending, res: i64) {
    let retry = |e: i64| e == -(libc::EAGAIN as i64) || e == -(libc::EINTR as i64);
    let errno = |e: i64| Errno(i32::try_from(-e).unwrap_or(libc::EIO));
    // Bytes moved at submission count; an error after them makes a short transfer.
    let total = |r: Result<usize, Errno>, done: usize| match r {
        Ok(n) => Ok(n + done),
        Err(_) if done > 0 => Ok(done),
        Err(e) => Err(e),
    };
    match p {
        Pending::Read { fd, offset, iov, reply, done } => {
            let want: usize = iov.iter().map(|v| v.iov_len).sum();
            let r = match res {
                n if n >= 0 && (n as usize == want || n == 0) => Ok(n as usize),
                n if n > 0 => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, n as usize),
                e if retry(e) => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(errno(e)),
            };
            match total(r, done) {
                Ok(n) => reply.commit(n),
                Err(e) => reply.error(e),
            }
        }
        Pending::Write { fd, offset, iov, data, reply, done } => {
            let want: usize = iov.iter().map(|v| v.iov_len).sum();
            let r = match res {
                n if n >= 0 && n as usize == want => Ok(n as usize),
                n if n > 0 => pwrite_full(fd.as_raw_fd(), iov.to_vec(), offset, n as usize),
                e if retry(e) => pwrite_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(errno(e)),
            };
            drop(data);
            match total(r, done) {
                Ok(n) => reply.written(n.min(u32::MAX as usize) as u32),
                Err(e) => reply.error(e),
            }
        }
    }
}

/// I/Os submitted and not yet answered on one queue, and the parking spot of the queue's
/// completion thread.
///
/// The submitting (poller) thread reaps right after it submits; on a page-cache hit the
/// I/O is already complete and the completion thread is never woken. Only when I/O is
/// still outstanding after that reap does the submitter wake it (`kick`).
#[derive(Default)]
pub(super) struct Inflight {
    count: AtomicUsize,
    parked: AtomicBool,
    stopping: AtomicBool,
    lock: Mutex<()>,
    cv: Condvar,
}

impl Inflight {
    /// One more I/O submitted.
    pub(super) fn add(&self) {
        self.count.fetch_add(1, SeqCst);
    }

    /// One I/O answered.
    pub(super) fn done(&self) {
        self.count.fetch_sub(1, SeqCst);
    }

    /// After the submitter's own reap: wakes the completion thread if I/O is outstanding.
    pub(super) fn kick(&self) {
        // Pairs with `wait`: it sets `parked` before reading `count`, we increment `count`
        // before reading `parked`, both SeqCst, so one side always sees the other.
        if self.count.load(SeqCst) > 0 && self.parked.load(SeqCst) {
            let _g = self.lock.lock();
            self.cv.notify_one();
        }
    }

    /// The completion thread: returns `true` once I/O is outstanding, `false` when stopping
    /// with nothing outstanding. With `spin`, polls instead of sleeping.
    pub(super) fn wait(&self, spin: bool) -> bool {
        if spin {
            loop {
                if self.count.load(SeqCst) > 0 {
                    return true;
                }
                if self.stopping.load(SeqCst) {
                    return false;
                }
                std::hint::spin_loop();
            }
        }
        let mut g = self.lock.lock();
        loop {
            self.parked.store(true, SeqCst);
            let busy = self.count.load(SeqCst) > 0;
            if busy || self.stopping.load(SeqCst) {
                self.parked.store(false, SeqCst);
                return busy;
            }
            // The timeout only bounds the damage of a missed wake-up; `kick` is the path.
            self.cv.wait_for(&mut g, Duration::from_millis(100));
        }
    }

    /// Asks the completion thread to exit once nothing is outstanding.
    pub(super) fn stop(&self) {
        self.stopping.store(true, SeqCst);
        let _g = self.lock.lock();
        self.cv.notify_all();
    }
}
