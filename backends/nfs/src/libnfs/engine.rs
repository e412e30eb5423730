//! The libnfs service thread: it owns the `nfs_context` (libnfs 4.0 contexts are not
//! thread-safe), takes jobs from the poller threads through a queue and an eventfd, issues
//! them as `nfs_*_async` calls and drives them with `nfs_service` in a `poll(2)` loop. The
//! calls' callbacks run on this thread and answer the FUSE reply tokens from there: a poller
//! thread never waits on the network.

use super::ffi::{self, NfsContext, NfsDirent, NfsFh, NfsStat64, NfsStatvfs64};
use dpfs_core::Errno;
use parking_lot::Mutex;
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr, CString};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Work for the service thread.
pub type Job = Box<dyn FnOnce(&mut Ctx) + Send>;

/// What an async call's completion gets: its status (≥ 0) and data, or the errno.
type Done = Box<dyn FnOnce(&mut Ctx, Result<(c_int, *mut c_void), Errno>)>;

/// How often `nfs_service` runs with no event, so that libnfs's timeouts fire.
const TICK_MS: c_int = 100;

thread_local! {
    /// Set while the context is destroyed: calls are refused (EIO) instead of issued.
    static STOPPING: Cell<bool> = const { Cell::new(false) };
}

/// An open libnfs file. The pointer is only passed to libnfs on the service thread.
#[derive(Debug, Clone, Copy)]
pub struct Fh(*mut NfsFh);

// SAFETY: `Fh` is an opaque token handed between threads; libnfs only dereferences it on
// the service thread, which owns the context it belongs to.
unsafe impl Send for Fh {}
// SAFETY: as for Send: other threads only copy the pointer value.
unsafe impl Sync for Fh {}

/// One directory entry as libnfs read it (READDIRPLUS3).
#[derive(Debug, Clone)]
pub struct DirEnt {
    /// The name.
    pub name: Vec<u8>,
    /// The file id.
    pub inode: u64,
    /// NF3REG, NF3DIR, …
    pub typ: u32,
    /// Permission bits.
    pub mode: u32,
    /// Size.
    pub size: u64,
    /// Times (seconds, nanoseconds): access, modify, change.
    pub times: [(u64, u32); 3],
    /// Owner, group, links.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Links.
    pub nlink: u32,
    /// Bytes used.
    pub used: u64,
}

/// The service thread's side: the context, for the calls below.
pub struct Ctx {
    nfs: *mut NfsContext,
}

/// The trampoline every call completes through.
unsafe extern "C" fn complete(err: c_int, nfs: *mut NfsContext, data: *mut c_void, private: *mut c_void) {
    // SAFETY: `private` is the `Box<Done>` that `Ctx::call` leaked for this call; libnfs
    // invokes each callback exactly once, so it is taken back exactly once.
    let done = unsafe { Box::from_raw(private.cast::<Done>()) };
    let r = if err < 0 {
        if !data.is_null() {
            // SAFETY: on failure libnfs passes its NUL-terminated error string as `data`.
            let msg = unsafe { CStr::from_ptr(data.cast()) };
            tracing::debug!(err, msg = %msg.to_string_lossy(), "libnfs call failed");
        }
        Err(Errno(err.checked_neg().unwrap_or(libc::EIO)))
    } else {
        Ok((err, data))
    };
    done(&mut Ctx { nfs }, r);
}

/// A path as a C string (EINVAL if it holds a NUL: names were checked, so it never does).
pub fn cpath(path: &[u8]) -> Result<CString, Errno> {
    CString::new(path).map_err(|_| Errno::EINVAL)
}

impl Ctx {
    /// Issues one async call: `issue` gets the context, the trampoline and its argument;
    /// `done` runs with the result on this thread (at once if the call was not queued).
    fn call(
        &mut self,
        issue: impl FnOnce(*mut NfsContext, ffi::NfsCb, *mut c_void) -> c_int,
        done: impl FnOnce(&mut Ctx, Result<(c_int, *mut c_void), Errno>) + 'static,
    ) {
        if STOPPING.with(Cell::get) {
            return done(self, Err(Errno::EIO));
        }
        let boxed: Box<Done> = Box::new(Box::new(done));
        let private = Box::into_raw(boxed);
        let rc = issue(self.nfs, Some(complete), private.cast());
        if rc < 0 {
            // SAFETY: the call was not queued, so libnfs never calls back: the box is ours again.
            let done = unsafe { Box::from_raw(private) };
            done(self, Err(Errno::EIO));
        }
    }

    /// lstat(2) of `path`.
    pub fn lstat(&mut self, path: &CStr, done: impl FnOnce(&mut Ctx, Result<NfsStat64, Errno>) + 'static) {
        let p = path.as_ptr();
        self.call(
            // SAFETY: `p` is a NUL-terminated path libnfs copies before it returns.
            |nfs, cb, pd| unsafe { ffi::nfs_lstat64_async(nfs, p, cb, pd) },
            move |c, r| {
                // SAFETY: on success `data` is a `struct nfs_stat_64`, valid during the callback.
                done(c, r.and_then(|(_, d)| unsafe { d.cast::<NfsStat64>().as_ref() }.copied().ok_or(Errno::EIO)))
            },
        );
    }

    /// open(2) of `path` (no O_CREAT).
    pub fn open(&mut self, path: &CStr, flags: c_int, done: impl FnOnce(&mut Ctx, Result<Fh, Errno>) + 'static) {
        let p = path.as_ptr();
        self.call(
            // SAFETY: as in `lstat`.
            |nfs, cb, pd| unsafe { ffi::nfs_open_async(nfs, p, flags, cb, pd) },
            move |c, r| done(c, r.and_then(|(_, d)| fh(d))),
        );
    }

    /// open(2) of `path` with O_CREAT (and `flags`' O_EXCL, O_TRUNC).
    pub fn create(
        &mut self,
        path: &CStr,
        flags: c_int,
        mode: u32,
        done: impl FnOnce(&mut Ctx, Result<Fh, Errno>) + 'static,
    ) {
        let p = path.as_ptr();
        let mode = (mode & 0o7777) as c_int;
        self.call(
            // SAFETY: as in `lstat`.
            |nfs, cb, pd| unsafe { ffi::nfs_create_async(nfs, p, flags, mode, cb, pd) },
            move |c, r| done(c, r.and_then(|(_, d)| fh(d))),
        );
    }

    /// Closes `f` (frees libnfs's handle; NFSv3 has no CLOSE).
    pub fn close(&mut self, f: Fh, done: impl FnOnce(&mut Ctx, Result<(), Errno>) + 'static) {
        self.call(
            // SAFETY: `f` is an open handle of this context, closed once (its table entry is gone).
            |nfs, cb, pd| unsafe { ffi::nfs_close_async(nfs, f.0, cb, pd) },
            move |c, r| done(c, r.map(drop)),
        );
    }

    /// READ of `count` bytes at `offset`: `done` gets the bytes, borrowed for its call.
    pub fn pread(&mut self, f: Fh, offset: u64, count: u32, done: impl FnOnce(Result<&[u8], Errno>) + 'static) {
        self.call(
            // SAFETY: `f` is an open handle of this context.
            |nfs, cb, pd| unsafe { ffi::nfs_pread_async(nfs, f.0, offset, u64::from(count), cb, pd) },
            move |_, r| match r {
                Ok((n, d)) if n as u32 <= count && (n == 0 || !d.is_null()) => {
                    let bytes = if n == 0 {
                        &[][..]
                    } else {
                        // SAFETY: on success `data` holds `n` bytes, valid during the callback.
                        unsafe { std::slice::from_raw_parts(d.cast::<u8>(), n as usize) }
                    };
                    done(Ok(bytes))
                }
                Ok(_) => done(Err(Errno::EIO)),
                Err(e) => done(Err(e)),
            },
        );
    }

    /// WRITE of `data` at `offset` (kept alive until the call completes): bytes written.
    pub fn pwrite(&mut self, f: Fh, offset: u64, data: Vec<u8>, done: impl FnOnce(Result<u32, Errno>) + 'static) {
        let (ptr, len) = (data.as_ptr(), data.len() as u64);
        self.call(
            // SAFETY: `f` is an open handle of this context; `ptr` points at `len` bytes owned
            // by the completion closure, which lives until libnfs calls back.
            |nfs, cb, pd| unsafe { ffi::nfs_pwrite_async(nfs, f.0, offset, len, ptr.cast(), cb, pd) },
            move |_, r| {
                let n =
                    r.and_then(|(n, _)| u32::try_from(n).ok().filter(|&n| n as usize <= data.len()).ok_or(Errno::EIO));
                done(n)
            },
        );
    }

    /// COMMIT of `f`'s writes.
    pub fn fsync(&mut self, f: Fh, done: impl FnOnce(Result<(), Errno>) + 'static) {
        self.call(
            // SAFETY: `f` is an open handle of this context.
            |nfs, cb, pd| unsafe { ffi::nfs_fsync_async(nfs, f.0, cb, pd) },
            move |_, r| done(r.map(drop)),
        );
    }

    /// A path call with no result beyond success: `issue` gets the context, the path, the
    /// trampoline and its argument.
    pub fn path_op(
        &mut self,
        path: &CStr,
        issue: impl FnOnce(*mut NfsContext, *const std::ffi::c_char, ffi::NfsCb, *mut c_void) -> c_int,
        done: impl FnOnce(&mut Ctx, Result<(), Errno>) + 'static,
    ) {
        let p = path.as_ptr();
        self.call(|nfs, cb, pd| issue(nfs, p, cb, pd), move |c, r| done(c, r.map(drop)));
    }

    /// Reads the directory `path` whole (READDIRPLUS3 pages), `.` and `..` left out.
    pub fn readdir(&mut self, path: &CStr, done: impl FnOnce(Result<Vec<DirEnt>, Errno>) + 'static) {
        let p = path.as_ptr();
        self.call(
            // SAFETY: as in `lstat`.
            |nfs, cb, pd| unsafe { ffi::nfs_opendir_async(nfs, p, cb, pd) },
            move |c, r| done(r.and_then(|(_, d)| c.entries(d.cast()))),
        );
    }

    /// The entries of a directory `nfs_opendir_async` returned, which is closed after.
    fn entries(&mut self, dir: *mut ffi::NfsDir) -> Result<Vec<DirEnt>, Errno> {
        if dir.is_null() {
            return Err(Errno::EIO);
        }
        let mut out = Vec::new();
        loop {
            // SAFETY: `dir` is the directory libnfs gave this context, not yet closed.
            let e = unsafe { ffi::nfs_readdir(self.nfs, dir) };
            // SAFETY: a non-null entry is libnfs's, valid until the directory is closed.
            let Some(e) = (unsafe { e.as_ref() }) else { break };
            if let Some(d) = dirent(e) {
                out.push(d);
            }
        }
        // SAFETY: closed once; no entry is used after.
        unsafe { ffi::nfs_closedir(self.nfs, dir) };
        Ok(out)
    }

    /// statvfs of the export.
    pub fn statvfs(&mut self, done: impl FnOnce(Result<NfsStatvfs64, Errno>) + 'static) {
        let root = c"/";
        self.call(
            // SAFETY: a static NUL-terminated path.
            |nfs, cb, pd| unsafe { ffi::nfs_statvfs64_async(nfs, root.as_ptr(), cb, pd) },
            move |_, r| {
                // SAFETY: on success `data` is a `struct nfs_statvfs_64`, valid during the callback.
                done(r.and_then(|(_, d)| unsafe { d.cast::<NfsStatvfs64>().as_ref() }.copied().ok_or(Errno::EIO)))
            },
        );
    }
}

fn fh(d: *mut c_void) -> Result<Fh, Errno> {
    if d.is_null() {
        Err(Errno::EIO)
    } else {
        Ok(Fh(d.cast()))
    }
}

/// An entry copied out of libnfs (`None` for `.`, `..` and names without their string).
fn dirent(e: &NfsDirent) -> Option<DirEnt> {
    if e.name.is_null() {
        return None;
    }
    // SAFETY: a non-null name is the entry's NUL-terminated string.
    let name = unsafe { CStr::from_ptr(e.name) }.to_bytes().to_vec();
    if name == b"." || name == b".." {
        return None;
    }
    let t = |tv: libnfs_sys::timeval, ns: u32| (tv.tv_sec.max(0) as u64, ns.min(999_999_999));
    Some(DirEnt {
        name,
        inode: e.inode,
        typ: e.type_,
        mode: e.mode,
        size: e.size,
        times: [t(e.atime, e.atime_nsec), t(e.mtime, e.mtime_nsec), t(e.ctime, e.ctime_nsec)],
        uid: e.uid,
        gid: e.gid,
        nlink: e.nlink,
        used: e.used,
    })
}

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
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        self.queue.lock().push(job);
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

/// The service loop, until `stop`; then the context is destroyed.
fn serve(nfs: *mut NfsContext, queue: &Mutex<Vec<Job>>, wake: &OwnedFd, stop: &AtomicBool) {
    let mut ctx = Ctx { nfs };
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
    STOPPING.with(|s| s.set(true));
    // Jobs never started are dropped with their tokens (EIO).
    queue.lock().clear();
    // SAFETY: the context is destroyed once, on its thread, and not used after.
    unsafe { ffi::nfs_destroy_context(nfs) };
}
