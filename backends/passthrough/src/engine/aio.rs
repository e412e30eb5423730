//! The Linux native AIO engine (`io_submit`/`io_getevents`, DPFS's dpfs_aio): one AIO
//! context per submitting (poller) thread.
//!
//! As with io_uring, the submitter reaps right after `io_submit`: buffered I/O completes
//! inside `io_submit`, so its reply goes out on the poller thread. Each context's
//! completion thread waits in `io_getevents` only while I/O is outstanding (O_DIRECT on
//! a real device).

use super::pending::{finish, Inflight, Pending};
use super::per_thread::{PerThread, Queue};
use super::Engine;
use dpfs_core::fs::WriteData;
use dpfs_core::reply::{ReplyData, ReplyWrite};
use std::os::fd::OwnedFd;
use std::sync::Arc;

/// `IOCB_CMD_PREADV` of the kernel's aio_abi.h.
const IOCB_CMD_PREADV: u16 = 7;
/// `IOCB_CMD_PWRITEV`.
const IOCB_CMD_PWRITEV: u16 = 8;
/// Events taken per `io_getevents`.
const BATCH: usize = 32;

/// `struct io_event` of the kernel's aio_abi.h.
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct IoEvent {
    data: u64,
    obj: u64,
    res: i64,
    res2: i64,
}

/// One AIO context.
struct Context {
    ctx: libc::c_ulong,
    inflight: Inflight,
}

impl Context {
    fn new(nr_events: u32) -> std::io::Result<Context> {
        let mut ctx: libc::c_ulong = 0;
        // SAFETY: io_setup writes the context id to the valid out-pointer.
        if unsafe { libc::syscall(libc::SYS_io_setup, nr_events as libc::c_long, &mut ctx) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Context { ctx, inflight: Inflight::default() })
    }

    /// Submits `p` (a vectored read or write); on failure hands it back.
    fn submit(&self, p: Box<Pending>) -> Result<(), Box<Pending>> {
        let opcode = if matches!(*p, Pending::Read { .. }) { IOCB_CMD_PREADV } else { IOCB_CMD_PWRITEV };
        let (fd, iov, offset) = (p.fd(), p.iov(), p.offset());
        // SAFETY: iocb is plain data; all-zero is its "no flags, no eventfd" state.
        let mut cb: libc::iocb = unsafe { std::mem::zeroed() };
        cb.aio_lio_opcode = opcode;
        cb.aio_fildes = fd as u32;
        cb.aio_buf = iov.as_ptr() as u64;
        cb.aio_nbytes = iov.len() as u64;
        cb.aio_offset = offset as i64;
        let ptr = Box::into_raw(p);
        cb.aio_data = ptr as u64;
        let mut list = [&mut cb as *mut libc::iocb];
        self.inflight.add();
        // SAFETY: the iocb and its iovecs (inside the leaked `Pending`) are valid; the
        // buffers they name live in that `Pending` until its event is reaped.
        let r = unsafe { libc::syscall(libc::SYS_io_submit, self.ctx, 1 as libc::c_long, list.as_mut_ptr()) };
        if r != 1 {
            self.inflight.done();
            // SAFETY: not submitted, so the kernel holds no reference; reclaim the box.
            return Err(unsafe { Box::from_raw(ptr) });
        }
        self.reap(0, Some(libc::timespec { tv_sec: 0, tv_nsec: 0 }));
        self.inflight.kick();
        Ok(())
    }

    /// Answers completed events, waiting for at least `min` up to `timeout` (forever: None).
    fn reap(&self, min: usize, timeout: Option<libc::timespec>) {
        loop {
            let mut ev = [IoEvent::default(); BATCH];
            let tp = timeout.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
            // SAFETY: `ev` has room for BATCH events; `tp` is null or a valid timespec.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_io_getevents,
                    self.ctx,
                    min as libc::c_long,
                    BATCH as libc::c_long,
                    ev.as_mut_ptr(),
                    tp,
                )
            };
            if n <= 0 {
                return;
            }
            for e in ev.iter().take(n as usize) {
                // SAFETY: aio_data is always a `Box<Pending>` leaked by `submit`, and the
                // kernel reports each iocb exactly once.
                let p = unsafe { Box::from_raw(e.data as *mut Pending) };
                finish(*p, e.res);
                self.inflight.done();
            }
            if (n as usize) < BATCH {
                return;
            }
        }
    }
}

impl Queue for Context {
    fn reap_loop(self: Arc<Context>) {
        while self.inflight.wait(false) {
            // A bounded wait: the submitter may reap the event this thread waits for.
            self.reap(1, Some(libc::timespec { tv_sec: 0, tv_nsec: 20_000_000 }));
        }
    }

    fn stop(&self) {
        self.inflight.stop();
    }
}

impl Drop for Context {
    fn drop(&mut self) {
        // SAFETY: the context is ours and nothing is in flight (the completion thread
        // returned after draining).
        unsafe { libc::syscall(libc::SYS_io_destroy, self.ctx) };
    }
}

/// Linux AIO engine.
pub struct AioEngine {
    nr_events: u32,
    contexts: PerThread<Context>,
}

impl AioEngine {
    /// An engine whose contexts hold `nr_events` I/Os. Fails if Linux AIO is unavailable
    /// (or `/proc/sys/fs/aio-max-nr` is exhausted).
    pub fn new(nr_events: u32) -> std::io::Result<AioEngine> {
        drop(Context::new(nr_events)?);
        Ok(AioEngine { nr_events, contexts: PerThread::new("dpfs-aio-cq") })
    }

    /// Contexts created so far (one per submitting thread).
    pub fn contexts(&self) -> usize {
        self.contexts.len()
    }

    /// Submits `p` on this thread's context, or moves it synchronously if there is none or
    /// it is full.
    fn start(&self, p: Pending) {
        let Some(ctx) = self.contexts.get(|| Context::new(self.nr_events).ok()) else { return p.finish_sync() };
        if let Err(p) = ctx.submit(Box::new(p)) {
            p.finish_sync()
        }
    }
}

impl Engine for AioEngine {
    fn read_into(&self, fd: Arc<OwnedFd>, _buffered: bool, offset: u64, reply: ReplyData) {
        if let Some(p) = Pending::read(fd, offset, reply) {
            self.start(p)
        }
    }

    fn write_from(&self, fd: Arc<OwnedFd>, _buffered: bool, offset: u64, data: WriteData, reply: ReplyWrite) {
        if let Some(p) = Pending::write(fd, offset, data, reply) {
            self.start(p)
        }
    }

    fn name(&self) -> &'static str {
        "aio"
    }
}
