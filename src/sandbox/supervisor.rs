//! The fork into a new pid namespace, and the parent left behind on the host.
//!
//! The daemon becomes pid 1 of its own pid namespace; the parent stays in the host's
//! namespaces with nothing but the child's pid: it forwards SIGINT/SIGTERM (or acts on
//! them on the host, e.g. unmounting), cleans up host paths when the daemon ends, and
//! exits with the daemon's status. If the parent is killed, the daemon gets SIGKILL
//! (`PR_SET_PDEATHSIG`), so killing the pid a service manager knows stops everything.

use anyhow::{bail, Context as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The parent's side of a forked daemon.
pub struct Supervisor {
    child: libc::pid_t,
    _alive: OwnedFd,
    set: libc::sigset_t,
}

fn sigset(sigs: &[libc::c_int]) -> libc::sigset_t {
    // SAFETY: sigemptyset/sigaddset initialise a local set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for &s in sigs {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

extern "C" fn ignore(_: libc::c_int) {}

/// Forks the daemon, into a new pid namespace when `pid_ns`. Returns `None` in the daemon
/// (then pid 1 of the namespace) and the [`Supervisor`] in the parent. Call while the
/// process has one thread: after the pid namespace is unshared the parent can start none.
pub fn fork_daemon(pid_ns: bool) -> anyhow::Result<Option<Supervisor>> {
    let set = sigset(&[libc::SIGINT, libc::SIGTERM, libc::SIGCHLD]);
    let mut fds = [0; 2];
    // SAFETY: blocking signals in this (only) thread; a pipe into a valid array; unshare
    // with CLONE_NEWPID only affects children created later.
    unsafe {
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(std::io::Error::last_os_error()).context("pipe2");
        }
        if pid_ns && libc::unshare(libc::CLONE_NEWPID) != 0 {
            return Err(std::io::Error::last_os_error()).context("unshare(CLONE_NEWPID)");
        }
    }
    // SAFETY: fresh descriptors.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: the process has one thread, so the child starts in a consistent state.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("fork");
    }
    if pid == 0 {
        drop(wr);
        // SAFETY: prctl with integer arguments; poll on a valid descriptor; sigaction with
        // a handler that does nothing (pid 1 drops signals that have no handler, even the
        // blocked ones the signal thread waits for).
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
            let mut p = libc::pollfd { fd: rd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            if libc::poll(&mut p, 1, 0) != 0 {
                // The parent died before PDEATHSIG was armed.
                libc::_exit(1);
            }
            for s in [libc::SIGINT, libc::SIGTERM] {
                let mut sa: libc::sigaction = std::mem::zeroed();
                sa.sa_sigaction = ignore as *const () as usize;
                libc::sigaction(s, &sa, std::ptr::null_mut());
            }
            let chld = sigset(&[libc::SIGCHLD]);
            libc::pthread_sigmask(libc::SIG_UNBLOCK, &chld, std::ptr::null_mut());
        }
        std::mem::forget(rd);
        return Ok(None);
    }
    drop(rd);
    if pid_ns {
        println!("dpfs: sandboxed daemon runs as pid {pid} (pid 1 of its own pid namespace)");
    } else {
        println!("dpfs: daemon runs as pid {pid}");
    }
    Ok(Some(Supervisor { child: pid, _alive: wr, set }))
}

impl Supervisor {
    /// Waits for the daemon to end; each SIGINT/SIGTERM is passed to `on_signal` with its
    /// number and how many came before it. Returns the exit status to end with: the
    /// daemon's, or 128 + the signal that killed it.
    pub fn wait(self, mut on_signal: impl FnMut(&Supervisor, libc::c_int, u32)) -> anyhow::Result<i32> {
        let mut count = 0;
        loop {
            let mut sig = 0;
            // SAFETY: a valid set and out pointer.
            if unsafe { libc::sigwait(&self.set, &mut sig) } != 0 {
                bail!("sigwait failed");
            }
            if sig != libc::SIGCHLD {
                on_signal(&self, sig, count);
                count += 1;
                continue;
            }
            let mut status = 0;
            // SAFETY: waiting for our own child, non-blocking.
            let r = unsafe { libc::waitpid(self.child, &mut status, libc::WNOHANG) };
            if r == self.child {
                if libc::WIFEXITED(status) {
                    return Ok(libc::WEXITSTATUS(status));
                }
                if libc::WIFSIGNALED(status) {
                    let s = libc::WTERMSIG(status);
                    eprintln!("dpfs: the sandboxed daemon was killed by signal {s}");
                    return Ok(128 + s);
                }
            }
        }
    }

    /// Sends `sig` to the daemon.
    pub fn forward(&self, sig: libc::c_int) {
        // SAFETY: kill with our child's pid.
        unsafe { libc::kill(self.child, sig) };
    }
}
