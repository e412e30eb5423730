//! The libnfs service thread: it owns the `nfs_context` (libnfs 4.0 contexts are not
//! thread-safe), takes jobs from the poller threads through a queue and an eventfd, issues
//! them as `nfs_*_async` calls ([`Ctx`]) and drives them with `nfs_service` in a `poll(2)`
//! loop. The calls' callbacks run on this thread and answer the FUSE reply tokens from
//! there: a poller thread never waits on the network.

use super::calls::Ctx;
use super::ffi::{self, NfsContext};
use parking_lot::Mutex;
use std::ffi::{c_int, CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Work for the service thread.
pub type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

/// How often `nfs_service` runs with no event, so that libnfs's timeouts fire.
const TICK_MS: c_int = 100;

/// The handle the poller threads submit jobs through.
pub struct Engine {
    queue: Arc<Mutex<Vec<Job>>>,
    wake: Arc<OwnedFd>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What the service thread needs to mount.
pub struct Mount {
    /// `nfs://server/export?options`.
    pub url: String,
    /// RPC timeout in milliseconds (whole seconds).
    pub timeout_ms: c_int,
    /// The AUTH_SYS identity of every call.
    pub uid: c_int,
    /// Its group.
    pub gid: c_int,
}

impl Engine {
    /// Starts the service thread and mounts `m.url` there; the error is libnfs's message.
    pub fn start(m: Mount) -> Result<(Self, u64, u64), String> {
        // SAFETY: plain syscall; the fd is owned below.
        let efd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if efd < 0 {
            return Err(format!("eventfd: {}", std::io::Error::last_os_error()));
        }
        // SAFETY: `efd` is a fresh descriptor nothing else owns.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(efd) });
        let queue: Arc<Mutex<Vec<Job>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let (q, w, s) = (queue.clone(), wake.clone(), stop.clone());
        let thread = std::thread::Builder::new()
            .name("dpfs-libnfs".into())
            .spawn(move || match mount(&m) {
                Ok((nfs, rmax, wmax)) => {
                    let _ = tx.send(Ok((rmax, wmax)));
                    serve(nfs, &q, &w, &s);
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            })
            .map_err(|e| format!("cannot start the libnfs thread: {e}"))?;
        let r = rx.recv().unwrap_or_else(|_| Err("the libnfs thread died".into()));
        let engine = Self { queue, wake, stop, thread: Some(thread) };
        let (rmax, wmax) = r?;
        Ok((engine, rmax, wmax))
    }

    /// Runs `job` on the service thread (dropped, its reply tokens answering EIO, once the
    /// engine stopped).
    pub fn submit(&self, job: Job) {
        {
            // `stop` is read under the queue's lock: the thread sets it and drops what is
            // queued under the same lock when it ends, so no job is left behind unanswered.
            let mut q = self.queue.lock();
            if self.stop.load(Ordering::Relaxed) {
                return;
            }
            q.push(job);
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our eventfd.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.submit_wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Engine {
    fn submit_wake(&self) {
        let one: u64 = 1;
        // SAFETY: as in `submit`.
        let _ = unsafe { libc::write(self.wake.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }
}

/// Creates the context and mounts (blocking: this thread only).
fn mount(m: &Mount) -> Result<(*mut NfsContext, u64, u64), String> {
    // SAFETY: no argument; a null return is handled.
    let nfs = unsafe { ffi::nfs_init_context() };
    if nfs.is_null() {
        return Err("libnfs: cannot create a context".into());
    }
    let fail = |what: &str| {
        // SAFETY: `nfs` is live; the message is copied before the context goes.
        let msg = unsafe { ffi::nfs_get_error(nfs).as_ref().map(|p| CStr::from_ptr(p).to_string_lossy().into_owned()) };
        // SAFETY: the context is not used after.
        unsafe { ffi::nfs_destroy_context(nfs) };
        Err(format!("{what}: {}", msg.unwrap_or_default()))
    };
    let url = CString::new(m.url.as_str()).map_err(|_| "NUL in the URL".to_string())?;
    // SAFETY: `nfs` is live, the URL NUL-terminated; the settings are plain values.
    unsafe {
        ffi::nfs_set_uid(nfs, m.uid);
        ffi::nfs_set_gid(nfs, m.gid);
        ffi::nfs_set_timeout(nfs, m.timeout_ms);
        // Directories are read afresh for every opendir: another client may change them.
        ffi::nfs_set_dircache(nfs, 0);
    }
    // SAFETY: as above; the URL is destroyed once, after its strings were used.
    let u = unsafe { ffi::nfs_parse_url_dir(nfs, url.as_ptr()) };
    // SAFETY: a non-null URL is libnfs's, live until destroyed.
    let Some(parsed) = (unsafe { u.as_ref() }) else { return fail("bad NFS URL") };
    // SAFETY: the URL's strings are live until `nfs_destroy_url`.
    let rc = unsafe { ffi::nfs_mount(nfs, parsed.server, parsed.path) };
    // SAFETY: destroyed once, not used after.
    unsafe { ffi::nfs_destroy_url(u) };
    if rc < 0 {
        return fail("mount");
    }
    // SAFETY: `nfs` is mounted.
    let (rmax, wmax) = unsafe { (ffi::nfs_get_readmax(nfs), ffi::nfs_get_writemax(nfs)) };
    Ok((nfs, rmax, wmax))
}

/// When the service thread ends, normally or by a panic: later jobs are refused and the
/// queued ones dropped, their reply tokens answering EIO.
struct Closed<'a> {
    queue: &'a Mutex<Vec<Job>>,
    stop: &'a AtomicBool,
}

impl Drop for Closed<'_> {
    fn drop(&mut self) {
        let mut q = self.queue.lock();
        self.stop.store(true, Ordering::Relaxed);
        q.clear();
    }
}

/// The service loop, until `stop`; then the context is destroyed.
fn serve(nfs: *mut NfsContext, queue: &Mutex<Vec<Job>>, wake: &OwnedFd, stop: &AtomicBool) {
    let closed = Closed { queue, stop };
    let mut ctx = Ctx::new(nfs);
    let mut jobs = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        // SAFETY: `nfs` is live on this thread.
        let (fd, events) = unsafe { (ffi::nfs_get_fd(nfs), ffi::nfs_which_events(nfs)) };
        let mut fds = [
            libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd, events: events as i16, revents: 0 },
        ];
        // SAFETY: `fds` is a live array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, TICK_MS) };
        if n < 0 {
            continue; // EINTR
        }
        let [w, s] = fds;
        if w.revents & libc::POLLIN != 0 {
            let mut v: u64 = 0;
            // SAFETY: reads 8 bytes into a live u64 from our eventfd.
            let _ = unsafe { libc::read(wake.as_raw_fd(), (&mut v as *mut u64).cast(), 8) };
            std::mem::swap(&mut jobs, &mut *queue.lock());
            for job in jobs.drain(..) {
                job(&mut ctx);
            }
        }
        // With no event, nfs_service(0) runs libnfs's timeouts.
        // SAFETY: `nfs` is live on this thread.
        if unsafe { ffi::nfs_service(nfs, i32::from(s.revents)) } < 0 {
            // SAFETY: as above.
            let msg = unsafe { ffi::nfs_get_error(nfs).as_ref().map(|p| CStr::from_ptr(p).to_string_lossy()) };
            tracing::debug!(msg = %msg.unwrap_or_default(), "libnfs service failed");
        }
    }
    Ctx::stop_issuing();
    // Jobs never started are dropped with their tokens (EIO).
    drop(closed);
    // SAFETY: the context is destroyed once, on its thread, and not used after.
    unsafe { ffi::nfs_destroy_context(nfs) };
}
