//! Thread roles: a hook each long-lived thread calls when it starts, so the binary can
//! narrow what that thread may do (a per-role seccomp filter stacked on the process-wide
//! one) without the HALs and backends depending on the binary.
//!
//! The hook is set at most once, by the program, before the first role starts; without it
//! [`enter`] does nothing (tests, benches, other embedders).

use std::sync::OnceLock;

/// What a thread is for. Each role has its own allowlist in the binary's sandbox
/// (`docs/sandbox.md` has the table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ThreadRole {
    /// The main thread once every other thread is started: waits, reports, tears down.
    Main,
    /// The thread that waits for SIGINT/SIGTERM and starts the shutdown.
    Signals,
    /// A vhost-user device's accept loop (and, inherited, the vhost-user protocol and vring
    /// worker threads it starts).
    VhostUserAccept,
    /// A vhost-user vring worker (poller) thread: runs requests.
    VhostUserWorker,
    /// A `/dev/fuse` reader thread of `dpfs mount`: runs requests.
    FuseReader,
    /// An io_uring or Linux AIO completion (reaper) thread of the passthrough backend.
    IoCompletion,
    /// A thread blocked in a lock request (`F_OFD_SETLKW`, `flock`) for one request.
    LockWait,
    /// A thread that re-signals a lock waiter after INTERRUPT.
    LockInterrupt,
}

impl ThreadRole {
    /// Every role.
    pub const ALL: [ThreadRole; 8] = [
        ThreadRole::Main,
        ThreadRole::Signals,
        ThreadRole::VhostUserAccept,
        ThreadRole::VhostUserWorker,
        ThreadRole::FuseReader,
        ThreadRole::IoCompletion,
        ThreadRole::LockWait,
        ThreadRole::LockInterrupt,
    ];

    /// Short stable name (logs, docs, test hooks).
    pub fn name(self) -> &'static str {
        match self {
            ThreadRole::Main => "main",
            ThreadRole::Signals => "signals",
            ThreadRole::VhostUserAccept => "vu-accept",
            ThreadRole::VhostUserWorker => "vu-worker",
            ThreadRole::FuseReader => "fuse-reader",
            ThreadRole::IoCompletion => "io-completion",
            ThreadRole::LockWait => "lock-wait",
            ThreadRole::LockInterrupt => "lock-interrupt",
        }
    }

    /// The role called `name` (see [`ThreadRole::name`]).
    pub fn from_name(name: &str) -> Option<ThreadRole> {
        ThreadRole::ALL.into_iter().find(|r| r.name() == name)
    }
}

static HOOK: OnceLock<fn(ThreadRole)> = OnceLock::new();

/// Sets the hook [`enter`] calls. Only the first call counts; returns whether it did.
pub fn set_hook(hook: fn(ThreadRole)) -> bool {
    HOOK.set(hook).is_ok()
}

/// Called by a thread as it starts acting as `role` (once per thread). Runs the hook if
/// one is set; otherwise does nothing.
pub fn enter(role: ThreadRole) {
    if let Some(hook) = HOOK.get() {
        hook(role);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in ThreadRole::ALL {
            assert_eq!(ThreadRole::from_name(r.name()), Some(r));
        }
        assert_eq!(ThreadRole::from_name("nope"), None);
    }
}
