//! The io_uring engine: one ring per submitting (poller) thread.
//!
//! The poller submits and then drains the completion queue itself: buffered I/O that hits
//! the page cache completes during submission, so its reply goes out on the poller thread
//! with no wake-up of anyone. Each ring also has a completion thread for I/O that finishes
//! later; it sleeps while nothing is outstanding, or spins on the ring with
//! `uring_cq_polling`.

use super::pending::{finish, iovecs, Inflight, Pending};
use super::per_thread::{PerThread, Queue};
use super::{Engine, SyncEngine};
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use io_uring::{opcode, types, IoUring};
use parking_lot::Mutex;
use std::os::fd::{AsRawFd, OwnedFd};
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
    polling: bool,
    force_async: bool,
    rings: PerThread<Ring>,
}

impl UringEngine {
    /// An engine whose rings have `entries` submission slots. Fails if io_uring is unavailable.
    pub fn new(entries: u32) -> std::io::Result<UringEngine> {
        drop(IoUring::new(entries)?);
        Ok(UringEngine { entries, polling: false, force_async: false, rings: PerThread::new("dpfs-uring-cq") })
    }

    /// Completion threads spin on their ring instead of sleeping (DPFS `uring_cq_polling`).
    pub fn with_cq_polling(mut self, polling: bool) -> UringEngine {
        self.polling = polling;
        self
    }

    /// Sends every I/O through io_uring's worker threads (`IOSQE_ASYNC`), so it completes
    /// after submission as on a slow device, and the completion threads answer it. For
    /// tests and measurements.
    pub fn with_forced_async(mut self, force: bool) -> UringEngine {
        self.force_async = force;
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
