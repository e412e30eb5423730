//! The io_uring engine: one ring per submitting (poller) thread.
//!
//! Buffered transfers first try RWF_NOWAIT on the poller thread: a page-cache hit costs
//! one system call and never waits (see `UringEngine::try_inline`). The rest goes to the
//! ring; the poller submits and then drains the completion queue itself, so whatever
//! completes during submission is answered with no wake-up of anyone. Each ring also has a completion thread for I/O that finishes
//! later; it sleeps while nothing is outstanding, or spins on the ring with
//! `uring_cq_polling`.

use super::pending::{finish, try_nowait, Attempt, Inflight, Pending};
use super::per_thread::{PerThread, Queue};
use super::Engine;
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use io_uring::{opcode, types, IoUring};
use parking_lot::Mutex;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// user_data of the wake-up NOP (a `Pending` is never at address 0).
const WAKE: u64 = 0;

/// Completions taken off the ring per lock hold.
const BATCH: usize = 32;

struct Ring {
    ring: IoUring,
    /// Serialises the submission queue (its owner and the stop path).
    sq: Mutex<()>,
    /// Serialises the completion queue (the submitter's reap and the completion thread's).
    cq: Mutex<()>,
    inflight: Inflight,
    /// Spin instead of sleeping while I/O is outstanding.
    polling: bool,
    /// Flag every entry IOSQE_ASYNC.
    force_async: bool,
}

impl Ring {
    /// Queues `p` (whose buffers `entry` points into); on a full ring hands `p` back.
    fn submit(&self, entry: io_uring::squeue::Entry, p: Box<Pending>) -> Result<(), Box<Pending>> {
        let ptr = Box::into_raw(p);
        let entry = if self.force_async { entry.flags(io_uring::squeue::Flags::ASYNC) } else { entry };
        let pushed = {
            let _g = self.sq.lock();
            // SAFETY: `sq` is held, so this is the only SubmissionQueue; the entry's buffers
            // live in the `Pending` behind user_data until its completion is reaped.
            unsafe { self.ring.submission_shared().push(&entry.user_data(ptr as u64)).is_ok() }
        };
        if !pushed {
            // SAFETY: `ptr` came from `Box::into_raw` above and the kernel never saw it.
            return Err(unsafe { Box::from_raw(ptr) });
        }
        self.inflight.add();
        // A failed enter leaves the entry queued: the completion thread's enter submits it.
        let _ = self.ring.submit();
        self.reap();
        self.inflight.kick();
        Ok(())
    }

    /// Answers every completion on the ring.
    fn reap(&self) {
        loop {
            let mut done = [(0u64, 0i32); BATCH];
            let mut n = 0;
            {
                let _g = self.cq.lock();
                // SAFETY: `cq` is held, so this is the only CompletionQueue of the ring.
                for c in unsafe { self.ring.completion_shared() }.take(BATCH) {
                    if let Some(slot) = done.get_mut(n) {
                        *slot = (c.user_data(), c.result());
                        n += 1;
                    }
                }
            }
            for &(id, res) in done.iter().take(n) {
                if id == WAKE {
                    continue;
                }
                // SAFETY: every other user_data is a `Box<Pending>` leaked by `submit`, and
                // the kernel posts each exactly once.
                let p = unsafe { Box::from_raw(id as *mut Pending) };
                finish(*p, i64::from(res));
                self.inflight.done();
            }
            if n < BATCH {
                return;
            }
        }
    }

    /// Posts a NOP so a completion thread blocked in the kernel returns.
    fn wake(&self) {
        let _g = self.sq.lock();
        // SAFETY: as in `submit`; a NOP has no buffers.
        unsafe {
            let _ = self.ring.submission_shared().push(&opcode::Nop::new().build().user_data(WAKE));
        }
        drop(_g);
        let _ = self.ring.submit();
    }
}

impl Queue for Ring {
    fn reap_loop(self: Arc<Ring>) {
        let mut spins = 0u32;
        while self.inflight.wait(self.polling) {
            if self.polling {
                // Reaping is a read of shared memory; enter the kernel only now and then, to
                // submit what a failed enter left queued and flush an overflowed ring.
                spins = spins.wrapping_add(1);
                if spins.is_multiple_of(4096) {
                    let _ = self.ring.submit_and_wait(0);
                }
                self.reap();
                std::hint::spin_loop();
                continue;
            }
            // Also submits anything a failed enter left queued; `stop` posts a NOP to end
            // this wait, and the loop then drains what is still outstanding.
            if let Err(e) = self.ring.submit_and_wait(1) {
                if !matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY | libc::EAGAIN)) {
                    tracing::error!(error = %e, "io_uring wait failed");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            self.reap();
        }
    }

    fn stop(&self) {
        self.inflight.stop();
        self.wake();
    }
}

/// io_uring engine. Falls back to synchronous I/O when a ring cannot be set up.
pub struct UringEngine {
    entries: u32,
    /// The page-cache fast path is on (see `try_inline`).
    fast: bool,
    /// The file system does RWF_NOWAIT reads / writes (cleared on EOPNOTSUPP: a share is
    /// one file system).
    nowait_reads: AtomicBool,
    nowait_writes: AtomicBool,
    polling: bool,
    force_async: bool,
    rings: PerThread<Ring>,
}

impl UringEngine {
    /// An engine whose rings have `entries` submission slots. Fails if io_uring is unavailable.
    pub fn new(entries: u32) -> std::io::Result<UringEngine> {
        drop(IoUring::new(entries)?);
        Ok(UringEngine {
            entries,
            fast: true,
            nowait_reads: AtomicBool::new(true),
            nowait_writes: AtomicBool::new(true),
            polling: false,
            force_async: false,
            rings: PerThread::new("dpfs-uring-cq"),
        })
    }

    /// Completion threads spin on their ring instead of sleeping (DPFS `uring_cq_polling`).
    pub fn with_cq_polling(mut self, polling: bool) -> UringEngine {
        self.polling = polling;
        self
    }

    /// Sends every I/O through io_uring's worker threads (`IOSQE_ASYNC`, and no page-cache
    /// fast path), so it completes after submission as on a slow device, and the
    /// completion threads answer it. For tests and measurements.
    pub fn with_forced_async(mut self, force: bool) -> UringEngine {
        self.force_async = force;
        self.fast = !force;
        self
    }

    /// Turns the page-cache fast path (see the module documentation) on or off.
    pub fn with_inline_hits(mut self, on: bool) -> UringEngine {
        self.fast = on;
        self
    }

    /// Rings created so far (one per submitting thread).
    pub fn rings(&self) -> usize {
        self.rings.len()
    }

    fn ring(&self) -> Option<Arc<Ring>> {
        self.rings.get(|| {
            Some(Ring {
                ring: IoUring::new(self.entries).ok()?,
                sq: Mutex::new(()),
                cq: Mutex::new(()),
                inflight: Inflight::default(),
                polling: self.polling,
                force_async: self.force_async,
            })
        })
    }
}

impl UringEngine {
    /// The page-cache fast path, for descriptors that do buffered I/O (`buffered`). A read
    /// or write is tried with RWF_NOWAIT on this thread: a page-cache hit is answered at
    /// once; what would wait goes to the ring. A file system without RWF_NOWAIT reads
    /// leaves reads to the ring. One without RWF_NOWAIT buffered writes (ext4, tmpfs)
    /// gets its buffered writes written here, synchronously, as virtiofsd does: io_uring
    /// would only hand them to a worker thread to block there (4 KiB random writes at QD
    /// 32 on ext4: 106k IOPS through the ring against 309k written here).
    /// `Some(p)` is `p` with what is left for the ring.
    fn try_inline(&self, buffered: bool, p: Pending) -> Option<Pending> {
        let write = matches!(p, Pending::Write { .. });
        let nowait = if write { &self.nowait_writes } else { &self.nowait_reads };
        if !buffered || !self.fast {
            return Some(p);
        }
        if !nowait.load(Ordering::Relaxed) {
            if write {
                p.finish_sync();
                return None;
            }
            return Some(p);
        }
        match try_nowait(p.fd(), p.iov(), p.offset(), write) {
            Ok(Attempt::Done(n)) => {
                finish(p, n as i64);
                None
            }
            Ok(Attempt::Partial(n)) => Some(p.advanced(n)),
            Ok(Attempt::Unsupported) => {
                nowait.store(false, Ordering::Relaxed);
                self.try_inline(buffered, p)
            }
            Err(e) => {
                finish(p, -i64::from(e.0));
                None
            }
        }
    }

    /// Serves `p`: inline from the page cache if possible, else through this thread's ring,
    /// else (no ring, ring full) synchronously.
    fn start(&self, buffered: bool, p: Pending) {
        let Some(p) = self.try_inline(buffered, p) else { return };
        let Some(ring) = self.ring() else { return p.finish_sync() };
        let (fd, iov, off) = (types::Fd(p.fd()), p.iov(), p.offset());
        let e = match p {
            Pending::Read { .. } => opcode::Readv::new(fd, iov.as_ptr(), iov.len() as u32).offset(off).build(),
            Pending::Write { .. } => opcode::Writev::new(fd, iov.as_ptr(), iov.len() as u32).offset(off).build(),
        };
        if let Err(p) = ring.submit(e, Box::new(p)) {
            p.finish_sync();
        }
    }
}

impl Engine for UringEngine {
    fn read_into(&self, fd: Arc<OwnedFd>, buffered: bool, offset: u64, reply: ReplyData) {
        if let Some(p) = Pending::read(fd, offset, reply) {
            self.start(buffered, p)
        }
    }

    fn write_from(&self, fd: Arc<OwnedFd>, buffered: bool, offset: u64, data: WriteData, reply: ReplyWrite) {
        if let Some(p) = Pending::write(fd, offset, data, reply) {
            self.start(buffered, p)
        }
    }

    fn name(&self) -> &'static str {
        "io_uring"
    }
}
