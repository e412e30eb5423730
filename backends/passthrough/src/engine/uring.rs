//! The io_uring engine: one ring per submitting (poller) thread, each with a completion
//! thread that answers the reply tokens (`commit(n)` / `written(n)`).
//!
//! Short transfers and `EAGAIN`/`EINTR` completions are finished synchronously on the
//! completion thread, so the guest never mistakes a short read for end of file.

use super::sync::{pread_full, pwrite_full};
use super::{Engine, SyncEngine};
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use dpfs_core::Errno;
use io_uring::{opcode, types, IoUring};
use parking_lot::Mutex;
use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// user_data of the wake-up NOP.
const WAKE: u64 = u64::MAX;

/// An I/O in flight: everything the kernel points into stays here until it completes.
enum Pending {
    Read { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, reply: ReplyData },
    Write { fd: Arc<OwnedFd>, offset: u64, iov: Box<[libc::iovec]>, data: WriteData, reply: ReplyWrite },
}

// SAFETY: the iovecs point into request memory owned by the reply token / write payload
// stored alongside them; they are only dereferenced by the kernel or by the one thread
// that owns the `Pending` at a time.
unsafe impl Send for Pending {}

struct Ring {
    ring: IoUring,
    sq: Mutex<()>,
    pending: Mutex<HashMap<u64, Box<Pending>>>,
    next: AtomicU64,
    stop: AtomicBool,
}

impl Ring {
    /// Queues `entry` for `p`; on failure hands `p` back.
    fn submit(&self, entry: io_uring::squeue::Entry, p: Box<Pending>) -> Result<(), Box<Pending>> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        self.pending.lock().insert(id, p);
        let pushed = {
            let _g = self.sq.lock();
            // SAFETY: `sq` is held, so this is the only SubmissionQueue; the entry's buffers
            // live in `pending` until its completion is reaped.
            unsafe { self.ring.submission_shared().push(&entry.user_data(id)).is_ok() }
        };
        if !pushed {
            // Ring full: hand the I/O back for a synchronous fallback (the completion thread
            // cannot have seen an id that was never queued).
            return self.pending.lock().remove(&id).map_or(Ok(()), Err);
        }
        // If this enter fails, the completion thread's next enter submits the entry.
        if self.ring.submit().is_err() {
            self.wake();
        }
        Ok(())
    }

    fn wake(&self) {
        let _g = self.sq.lock();
        // SAFETY: as in `submit`; a NOP has no buffers.
        unsafe {
            let _ = self.ring.submission_shared().push(&opcode::Nop::new().build().user_data(WAKE));
        }
        drop(_g);
        let _ = self.ring.submit();
    }

    /// The completion thread's loop.
    fn reap(self: Arc<Ring>) {
        loop {
            if let Err(e) = self.ring.submit_and_wait(1) {
                if e.raw_os_error() != Some(libc::EINTR) && e.raw_os_error() != Some(libc::EBUSY) {
                    tracing::error!(error = %e, "io_uring wait failed");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            // SAFETY: only this thread ever creates a CompletionQueue for this ring.
            let done: Vec<(u64, i32)> =
                unsafe { self.ring.completion_shared() }.map(|c| (c.user_data(), c.result())).collect();
            for (id, res) in done {
                if id == WAKE {
                    continue;
                }
                if let Some(p) = self.pending.lock().remove(&id) {
                    finish(*p, res);
                }
            }
            if self.stop.load(Ordering::Acquire) && self.pending.lock().is_empty() {
                return;
            }
        }
    }
}

/// Answers a completed I/O, finishing short or retryable transfers synchronously.
fn finish(p: Pending, res: i32) {
    match p {
        Pending::Read { fd, offset, iov, reply } => {
            let want: usize = iov.iter().map(|v| v.iov_len).sum();
            let r = match res {
                n if n >= 0 && (n as usize == want || n == 0) => Ok(n as usize),
                n if n > 0 => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, n as usize),
                e if -e == libc::EAGAIN || -e == libc::EINTR => pread_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(Errno(-e)),
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
                e if -e == libc::EAGAIN || -e == libc::EINTR => pwrite_full(fd.as_raw_fd(), iov.to_vec(), offset, 0),
                e => Err(Errno(-e)),
            };
            drop(data);
            match r {
                Ok(n) => reply.written(n.min(u32::MAX as usize) as u32),
                Err(e) => reply.error(e),
            }
        }
    }
}

/// A ring and its completion thread.
type Reaper = (Arc<Ring>, Option<JoinHandle<()>>);

struct Shared {
    id: u64,
    entries: u32,
    rings: Mutex<Vec<Reaper>>,
}

thread_local! {
    /// This thread's ring for each engine (keyed by engine id).
    static RINGS: RefCell<HashMap<u64, Arc<Ring>>> = RefCell::new(HashMap::new());
}

/// io_uring engine. Falls back to synchronous I/O when a ring cannot be set up.
pub struct UringEngine {
    shared: Arc<Shared>,
}

impl UringEngine {
    /// An engine whose rings have `entries` submission slots. Fails if io_uring is unavailable.
    pub fn new(entries: u32) -> std::io::Result<UringEngine> {
        drop(IoUring::new(entries)?);
        static IDS: AtomicU64 = AtomicU64::new(1);
        let shared = Shared { id: IDS.fetch_add(1, Ordering::Relaxed), entries, rings: Mutex::new(Vec::new()) };
        Ok(UringEngine { shared: Arc::new(shared) })
    }

    /// Rings created so far (one per submitting thread).
    pub fn rings(&self) -> usize {
        self.shared.rings.lock().len()
    }

    /// This thread's ring, created (with its completion thread) on first use.
    fn ring(&self) -> Option<Arc<Ring>> {
        RINGS.with(|r| {
            if let Some(ring) = r.borrow().get(&self.shared.id) {
                return Some(ring.clone());
            }
            let ring = Arc::new(Ring {
                ring: IoUring::new(self.shared.entries).ok()?,
                sq: Mutex::new(()),
                pending: Mutex::new(HashMap::new()),
                next: AtomicU64::new(0),
                stop: AtomicBool::new(false),
            });
            let reaper = ring.clone();
            let t = std::thread::Builder::new().name("dpfs-uring-cq".into()).spawn(move || reaper.reap()).ok()?;
            self.shared.rings.lock().push((ring.clone(), Some(t)));
            r.borrow_mut().insert(self.shared.id, ring.clone());
            Some(ring)
        })
    }
}

impl Drop for UringEngine {
    fn drop(&mut self) {
        let rings = std::mem::take(&mut *self.shared.rings.lock());
        for (ring, t) in rings {
            ring.stop.store(true, Ordering::Release);
            ring.wake();
            if let Some(t) = t {
                let _ = t.join();
            }
        }
    }
}

fn iovecs(v: impl IntoIterator<Item = libc::iovec>) -> Box<[libc::iovec]> {
    v.into_iter().filter(|v| v.iov_len > 0).collect()
}

impl Engine for UringEngine {
    fn read_into(&self, fd: Arc<OwnedFd>, offset: u64, reply: ReplyData) {
        let Some(ring) = self.ring() else { return SyncEngine.read_into(fd, offset, reply) };
        let iov = iovecs(reply.buffer(reply.capacity()).iter().map(|s| s.as_iovec()));
        if iov.is_empty() || iov.len() > 1024 || offset > i64::MAX as u64 {
            return SyncEngine.read_into(fd, offset, reply);
        }
        let e = opcode::Readv::new(types::Fd(fd.as_raw_fd()), iov.as_ptr(), iov.len() as u32).offset(offset).build();
        if let Err(p) = ring.submit(e, Box::new(Pending::Read { fd, offset, iov, reply })) {
            if let Pending::Read { fd, reply, .. } = *p {
                SyncEngine.read_into(fd, offset, reply)
            }
        }
    }

    fn write_from(&self, fd: Arc<OwnedFd>, offset: u64, data: WriteData, reply: ReplyWrite) {
        let Some(ring) = self.ring() else { return SyncEngine.write_from(fd, offset, data, reply) };
        let iov = iovecs(data.iovecs());
        if iov.is_empty() || iov.len() > 1024 || offset > i64::MAX as u64 {
            return SyncEngine.write_from(fd, offset, data, reply);
        }
        let e = opcode::Writev::new(types::Fd(fd.as_raw_fd()), iov.as_ptr(), iov.len() as u32).offset(offset).build();
        if let Err(p) = ring.submit(e, Box::new(Pending::Write { fd, offset, iov, data, reply })) {
            if let Pending::Write { fd, data, reply, .. } = *p {
                SyncEngine.write_from(fd, offset, data, reply)
            }
        }
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }
}
