//! What the asynchronous engines share: an I/O in flight ([`Pending`]), how a completion
//! answers it ([`finish`]), and the in-flight count that parks a completion thread while
//! the submitting thread reaps everything itself ([`Inflight`]).

use super::sync::{pread_full, pwrite_full};
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use dpfs_core::Errno;
use parking_lot::{Condvar, Mutex};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

/// An I/O in flight: everything the kernel points into stays here until it completes.
pub(super) enum Pending {
    /// A READ into the reply's segments.
    Read { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, reply: ReplyData },
    /// A WRITE from the request's segments.
    Write { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, data: WriteData, reply: ReplyWrite },
}

// SAFETY: the iovecs point into request memory owned by the reply token / write payload
// stored alongside them; they are only dereferenced by the kernel or by the one thread
// that owns the `Pending` at a time.
unsafe impl Send for Pending {}

impl Pending {
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

/// The non-empty iovecs of `v`.
pub(super) fn iovecs(v: impl IntoIterator<Item = libc::iovec>) -> Box<[libc::iovec]> {
    v.into_iter().filter(|v| v.iov_len > 0).collect()
}

/// Answers a completed I/O (`res` is a byte count or a negated errno), finishing short or
/// retryable transfers synchronously so the guest never mistakes a short read for end of file.
pub(super) fn finish(p: Pending, res: i64) {
    let retry = |e: i64| e == -(libc::EAGAIN as i64) || e == -(libc::EINTR as i64);
    let errno = |e: i64| Errno(i32::try_from(-e).unwrap_or(libc::EIO));
    match p {
        Pending::Read { fd, offset, iov, reply } => {
            let want: usize = iov.iter().map(|v| v.iov_len).sum();
            let r = match res {
                n if n >= 0 && (n as usize == want || n == 0) => Ok(n as usize),
                n if n > 0 => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, n as usize),
                e if retry(e) => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(errno(e)),
            };
            match r {
                Ok(n) => reply.commit(n),
                Err(e) => reply.error(e),
            }
        }
        Pending::Write { fd, offset, iov, data, reply } => {
            let want: usize = iov.iter().map(|v| v.iov_len).sum();
            let r = match res {
                n if n >= 0 && n as usize == want => Ok(n as usize),
                n if n > 0 => pwrite_full(fd.as_raw_fd(), iov.to_vec(), offset, n as usize),
                e if retry(e) => pwrite_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(errno(e)),
            };
            drop(data);
            match r {
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
