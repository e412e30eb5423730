//! Locks: BSD `flock` on the handle's descriptor; POSIX record locks as Linux OFD locks on
//! one open file description per (inode, lock owner), so owners conflict as processes do.
//! Blocking requests (SETLKW, blocking flock) wait on a bounded set of waiter threads and
//! reply from there; an INTERRUPT does not cancel a waiter in this first cut.

use crate::handle::Handle;
use crate::{sys, PassthroughFs};
use dpfs_core::fs::Lock;
use dpfs_core::reply::ReplyEmpty;
use dpfs_core::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Most threads blocked in a lock wait at once (ENOLCK beyond).
const MAX_WAITERS: usize = 64;

/// Per-owner open file descriptions holding POSIX locks.
pub(crate) struct LockTable {
    owners: Mutex<HashMap<(u64, u64), Arc<OwnedFd>>>,
    max: usize,
    waiters: Arc<AtomicUsize>,
}

fn to_flock(l: &Lock) -> Result<libc::flock, Errno> {
    let start = i64::try_from(l.start).map_err(|_| Errno::EINVAL)?;
    let len = if l.end >= i64::MAX as u64 { 0 } else { (l.end.checked_sub(l.start).ok_or(Errno::EINVAL)? + 1) as i64 };
    // SAFETY: all-zero is a valid flock.
    let mut f: libc::flock = unsafe { std::mem::zeroed() };
    f.l_type = l.typ as i16;
    f.l_whence = libc::SEEK_SET as i16;
    f.l_start = start;
    f.l_len = len;
    Ok(f)
}

fn from_flock(f: &libc::flock) -> Lock {
    let start = f.l_start.max(0) as u64;
    let end = if f.l_len == 0 { u64::MAX } else { start + f.l_len as u64 - 1 };
    Lock { start, end, typ: f.l_type as u32, pid: f.l_pid.max(0) as u32 }
}

fn fcntl_lock(fd: &OwnedFd, cmd: libc::c_int, f: &mut libc::flock) -> Result<(), Errno> {
    // SAFETY: `f` is a valid flock for the OFD lock commands.
    sys::cvt(unsafe { libc::fcntl(fd.as_raw_fd(), cmd, f as *mut libc::flock) }).map(|_| ())
}

impl LockTable {
    /// A table of at most `max` owner descriptions.
    pub(crate) fn new(max: usize) -> LockTable {
        LockTable { owners: Mutex::new(HashMap::new()), max: max.max(1), waiters: Arc::new(AtomicUsize::new(0)) }
    }

    /// Drops `owner`'s POSIX locks on `ino` (closing its description releases them).
    pub(crate) fn drop_owner(&self, ino: u64, owner: u64) {
        self.owners.lock().remove(&(ino, owner));
    }

    /// Drops everything (DESTROY).
    pub(crate) fn clear(&self) {
        self.owners.lock().clear();
    }

    /// Runs `wait` on a waiter thread that answers `reply`, or ENOLCK if too many wait.
    fn wait<F>(&self, reply: ReplyEmpty, wait: F)
    where
        F: FnOnce() -> Result<(), Errno> + Send + 'static,
    {
        if self.waiters.fetch_add(1, Ordering::AcqRel) >= MAX_WAITERS {
            self.waiters.fetch_sub(1, Ordering::AcqRel);
            return reply.error(Errno(libc::ENOLCK));
        }
        let waiters = self.waiters.clone();
        let spawned = std::thread::Builder::new().name("dpfs-lockwait".into()).spawn(move || {
            match wait() {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
            waiters.fetch_sub(1, Ordering::AcqRel);
        });
        if spawned.is_err() {
            // The closure (and the reply in it) was dropped: the token answered EIO.
            self.waiters.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl PassthroughFs {
    /// The open file description holding `owner`'s locks on `ino`, opened like `h`.
    fn owner_fd(&self, h: &Handle, ino: u64, owner: u64, create: bool) -> Result<Option<Arc<OwnedFd>>, Errno> {
        let mut m = self.locks.owners.lock();
        if let Some(fd) = m.get(&(ino, owner)) {
            return Ok(Some(fd.clone()));
        }
        if !create {
            return Ok(None);
        }
        if m.len() >= self.locks.max {
            return Err(Errno(libc::ENOLCK));
        }
        // SAFETY: plain syscall on a descriptor we own.
        let acc = sys::cvt(unsafe { libc::fcntl(h.fd.as_raw_fd(), libc::F_GETFL) })? & libc::O_ACCMODE;
        let fd = Arc::new(self.reopen(h.fd.as_fd(), acc | libc::O_NONBLOCK)?);
        m.insert((ino, owner), fd.clone());
        Ok(Some(fd))
    }

    pub(crate) fn do_getlk(&self, ino: u64, fh: u64, owner: u64, lock: Lock) -> Result<Lock, Errno> {
        let h = self.handles.get(fh, ino)?;
        let fd = self.owner_fd(&h, ino, owner, true)?.ok_or(Errno::EIO)?;
        let mut f = to_flock(&lock)?;
        fcntl_lock(&fd, libc::F_OFD_GETLK, &mut f)?;
        Ok(from_flock(&f))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_setlk(
        &self,
        ino: u64,
        fh: u64,
        owner: u64,
        lock: Lock,
        sleep: bool,
        flock: bool,
        reply: ReplyEmpty,
    ) {
        let h = match self.handles.get(fh, ino) {
            Ok(h) => h,
            Err(e) => return reply.error(e),
        };
        if flock {
            let op = match lock.typ as i32 {
                libc::F_RDLCK => libc::LOCK_SH,
                libc::F_WRLCK => libc::LOCK_EX,
                libc::F_UNLCK => libc::LOCK_UN,
                _ => return reply.error(Errno::EINVAL),
            };
            let raw = h.fd.as_raw_fd();
            // SAFETY: plain syscall on a descriptor we own.
            match sys::cvt(unsafe { libc::flock(raw, op | libc::LOCK_NB) }) {
                Err(e) if sleep && e == Errno::EAGAIN => {
                    let fd = h.fd.clone();
                    // SAFETY: plain syscall; `fd` keeps the descriptor open while waiting.
                    self.locks.wait(reply, move || sys::cvt(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(|_| ()))
                }
                Err(e) => reply.error(e),
                Ok(_) => reply.ok(),
            }
            return;
        }
        let mut f = match to_flock(&lock) {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let unlock = lock.typ as i32 == libc::F_UNLCK;
        let fd = match self.owner_fd(&h, ino, owner, !unlock) {
            Ok(Some(fd)) => fd,
            Ok(None) => return reply.ok(),
            Err(e) => return reply.error(e),
        };
        match fcntl_lock(&fd, libc::F_OFD_SETLK, &mut f) {
            Err(e) if sleep && e == Errno::EAGAIN => {
                self.locks.wait(reply, move || fcntl_lock(&fd, libc::F_OFD_SETLKW, &mut f))
            }
            Err(e) => reply.error(e),
            Ok(()) => reply.ok(),
        }
    }
}
