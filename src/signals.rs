//! SIGINT/SIGTERM handling shared by the long-running commands: block the signals in every
//! thread, then wait for them synchronously on one thread (no async-signal-safety concerns).

use anyhow::bail;

/// The blocked termination signals.
#[derive(Clone, Copy)]
pub struct Signals(libc::sigset_t);

/// Blocks SIGINT and SIGTERM in this thread and every thread started after it. Call before
/// starting any thread.
pub fn block() -> anyhow::Result<Signals> {
    // SAFETY: sigemptyset/sigaddset initialise the local set; pthread_sigmask changes only
    // this thread's mask. No other thread exists yet, so none can miss the change.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let r = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if r != 0 {
            bail!("pthread_sigmask: {}", std::io::Error::from_raw_os_error(r));
        }
        Ok(Signals(set))
    }
}

impl Signals {
    /// Waits for the next SIGINT or SIGTERM; `None` if waiting failed.
    pub fn wait(&self) -> Option<libc::c_int> {
        let mut sig: libc::c_int = 0;
        // SAFETY: the set is initialised and `sig` is a valid out pointer.
        (unsafe { libc::sigwait(&self.0, &mut sig) } == 0).then_some(sig)
    }
}
