//! Locks: BSD `flock` on the handle's descriptor; POSIX record locks as Linux OFD locks on
//! one open file description per (inode, lock owner), so owners conflict as processes do.
//! Blocking requests (SETLKW, blocking flock) wait on a bounded set of waiter threads and
//! reply from there. An INTERRUPT of a waiting request breaks its thread out of the kernel
//! wait with a signal ([`interrupt_signal`]) and answers EINTR without taking the lock.

use crate::handle::Handle;
use crate::{sys, PassthroughFs};
use dpfs_core::fs::Lock;
use dpfs_core::reply::ReplyEmpty;
use dpfs_core::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

/// Most threads blocked in a lock wait at once (ENOLCK beyond).
const MAX_WAITERS: usize = 64;

/// How often, and how many times, an INTERRUPT re-signals a waiter that has not left yet
/// (the first signal can land just before the waiter enters its blocking call).
const RESIGNAL_EVERY: Duration = Duration::from_millis(5);
const RESIGNAL_TIMES: u32 = 2000;

/// The signal that interrupts a waiter thread's blocking lock call: a real-time signal
/// (SIGRTMIN+7) with an empty handler installed without `SA_RESTART`, so `fcntl`/`flock`
/// return EINTR.
pub fn interrupt_signal() -> libc::c_int {
    libc::SIGRTMIN() + 7
}

extern "C" fn on_interrupt_signal(_: libc::c_int) {}

/// Installs the handler of [`interrupt_signal`] once per process.
fn install_handler() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: an all-zero sigaction with a handler that does nothing (async-signal-safe)
        // and no SA_RESTART; sigemptyset initialises the mask.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_interrupt_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            libc::sigemptyset(&mut sa.sa_mask);
            if libc::sigaction(interrupt_signal(), &sa, std::ptr::null_mut()) != 0 {
                tracing::warn!(error = %std::io::Error::last_os_error(), "lock waiters cannot be interrupted");
            }
        }
    });
}

/// A thread blocked in a lock wait for request `unique`.
struct Waiter {
    thread: libc::pthread_t,
    interrupted: Arc<AtomicBool>,
}

/// Per-owner open file descriptions holding POSIX locks, and the waiting requests.
pub(crate) struct LockTable {
    owners: Mutex<HashMap<(u64, u64), Arc<OwnedFd>>>,
    max: usize,
    waiters: Arc<AtomicUsize>,
    /// Waiting requests by `unique`. A thread's entry is removed (under this lock) before
    /// the thread exits, so a `pthread_t` found here under the lock is alive.
    waiting: Arc<Mutex<HashMap<u64, Waiter>>>,
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
        LockTable {
            owners: Mutex::new(HashMap::new()),
            max: max.max(1),
            waiters: Arc::new(AtomicUsize::new(0)),
            waiting: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// INTERRUPT of request `unique`: if it waits for a lock, it gives up with EINTR.
    pub(crate) fn interrupt(&self, unique: u64) {
        let flag = match self.waiting.lock().get(&unique) {
            Some(w) => w.interrupted.clone(),
            None => return,
        };
        flag.store(true, Ordering::SeqCst);
        let waiting = self.waiting.clone();
        let resignal = move || {
            dpfs_core::thread_role::enter(dpfs_core::ThreadRole::LockInterrupt);
            for _ in 0..RESIGNAL_TIMES {
                {
                    let map = waiting.lock();
                    match map.get(&unique) {
                        // SAFETY: the entry is present and we hold the lock, so the thread
                        // has not exited (see `waiting`).
                        Some(w) if Arc::ptr_eq(&w.interrupted, &flag) => unsafe {
                            libc::pthread_kill(w.thread, interrupt_signal());
                        },
                        _ => return,
                    }
                }
                std::thread::sleep(RESIGNAL_EVERY);
            }
        };
        if let Err(e) = std::thread::Builder::new().name("dpfs-lockintr".into()).spawn(resignal) {
            tracing::warn!(error = %e, unique, "cannot interrupt a lock waiter");
        }
    }

    /// Drops `owner`'s POSIX locks on `ino` (closing its description releases them).
    pub(crate) fn drop_owner(&self, ino: u64, owner: u64) {
        self.owners.lock().remove(&(ino, owner));
    }

    /// Drops everything (DESTROY).
    pub(crate) fn clear(&self) {
        self.owners.lock().clear();
    }

    /// Runs the blocking call `wait` on a waiter thread that answers `reply` (EINTR if
    /// request `unique` is interrupted first), or ENOLCK if too many wait.
    fn wait<F>(&self, unique: u64, reply: ReplyEmpty, mut wait: F)
    where
        F: FnMut() -> Result<(), Errno> + Send + 'static,
    {
        if self.waiters.fetch_add(1, Ordering::AcqRel) >= MAX_WAITERS {
            self.waiters.fetch_sub(1, Ordering::AcqRel);
            return reply.error(Errno(libc::ENOLCK));
        }
        install_handler();
        let (waiters, waiting) = (self.waiters.clone(), self.waiting.clone());
        let spawned = std::thread::Builder::new().name("dpfs-lockwait".into()).spawn(move || {
            dpfs_core::thread_role::enter(dpfs_core::ThreadRole::LockWait);
            // SAFETY: sigemptyset/sigaddset initialise the set; this changes only this
            // thread's mask (the spawning thread may block signals we need).
            unsafe {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, interrupt_signal());
                libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            }
            let interrupted = Arc::new(AtomicBool::new(false));
            // SAFETY: pthread_self has no preconditions.
            let thread = unsafe { libc::pthread_self() };
            waiting.lock().insert(unique, Waiter { thread, interrupted: interrupted.clone() });
            let r = loop {
                if interrupted.load(Ordering::SeqCst) {
                    break Err(Errno(libc::EINTR));
                }
                match wait() {
                    Err(e) if e.0 == libc::EINTR => continue,
                    r => break r,
                }
            };
            {
                let mut map = waiting.lock();
                if map.get(&unique).is_some_and(|w| Arc::ptr_eq(&w.interrupted, &interrupted)) {
                    map.remove(&unique);
                }
            }
            match r {
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
        unique: u64,
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
                    self.locks
                        .wait(unique, reply, move || sys::cvt(unsafe { libc::flock(fd.as_raw_fd(), op) }).map(|_| ()))
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
                self.locks.wait(unique, reply, move || fcntl_lock(&fd, libc::F_OFD_SETLKW, &mut f))
            }
            Err(e) => reply.error(e),
            Ok(()) => reply.ok(),
        }
    }
}
