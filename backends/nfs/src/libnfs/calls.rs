//! The libnfs calls the service thread issues ([`Ctx`]): each `nfs_*_async` call gets a
//! boxed completion that the one C trampoline takes back and runs, with typed results
//! (stat, handle, bytes, directory entries) decoded from libnfs's `data` carefully.

use super::ffi::{self, NfsContext, NfsDirent, NfsFh, NfsStat64, NfsStatvfs64};
use dpfs_core::Errno;
use std::cell::Cell;
use std::ffi::{c_int, c_void, CStr, CString};

/// What an async call's completion gets: its status (≥ 0) and data, or the errno.
type Done = Box<dyn FnOnce(&mut Ctx, Result<(c_int, *mut c_void), Errno>)>;

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
    /// The calls of context `nfs` (to be used on its service thread only).
    pub(super) fn new(nfs: *mut NfsContext) -> Self {
        Self { nfs }
    }

    /// From now on calls on this thread are refused (EIO): the context is being destroyed.
    pub(super) fn stop_issuing() {
        STOPPING.with(|s| s.set(true));
    }

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
