//! The seccomp-bpf allowlists (rust-vmm's `seccompiler`): one process-wide base list of the
//! system calls the daemon makes (collected with `strace -f` under the guest tests and
//! pjdfstest, on every backend and engine), installed before the first thread starts so
//! every thread inherits it; and one narrower list per [`ThreadRole`], which each thread
//! stacks on itself as it starts (the `dpfs_core::thread_role` hook).
//!
//! A forbidden call in `kill` mode traps (`SECCOMP_RET_TRAP`): the SIGSYS handler writes
//! `dpfs: seccomp: forbidden system call N (name)` to stderr and ends the process with
//! status 159 (128 + SIGSYS). `SECCOMP_RET_KILL_PROCESS` would only leave an audit record
//! that a container may not even show; the trap names the call in the daemon's own log.
//! `log` mode lets the call through and has the kernel log it (`SECCOMP_RET_LOG`).

use super::syscall_names;
use anyhow::Context as _;
use dpfs_core::ThreadRole;
use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// What a call outside the list does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnForbidden {
    /// Log line naming the call, then exit (status 159).
    Kill,
    /// Allowed, logged by the kernel.
    Log,
}

/// Calls every thread may make, by purpose. `unshare` is allowed only with `CLONE_FS`
/// (a passthrough thread's private working directory, see the backend's `procfd`).
const ALLOWED: &[(&str, &[libc::c_long])] = &[
    (
        "memory",
        &[libc::SYS_brk, libc::SYS_mmap, libc::SYS_munmap, libc::SYS_mremap, libc::SYS_mprotect, libc::SYS_madvise],
    ),
    (
        "threads and time",
        &[
            libc::SYS_clone,
            libc::SYS_clone3,
            libc::SYS_futex,
            libc::SYS_set_robust_list,
            libc::SYS_rseq,
            libc::SYS_sched_yield,
            libc::SYS_sched_getaffinity,
            libc::SYS_sched_setaffinity,
            libc::SYS_exit,
            libc::SYS_exit_group,
            libc::SYS_gettid,
            libc::SYS_getpid,
            libc::SYS_tgkill,
            libc::SYS_prctl,
            libc::SYS_nanosleep,
            libc::SYS_clock_nanosleep,
            libc::SYS_clock_gettime,
            libc::SYS_gettimeofday,
            libc::SYS_getrandom,
            libc::SYS_restart_syscall,
            libc::SYS_prlimit64,
            libc::SYS_getrlimit,
        ],
    ),
    (
        "signals (the signal thread's sigwait, SIGSYS and lock interrupts)",
        &[
            libc::SYS_rt_sigaction,
            libc::SYS_rt_sigprocmask,
            libc::SYS_rt_sigreturn,
            libc::SYS_rt_sigtimedwait,
            libc::SYS_sigaltstack,
        ],
    ),
    (
        "event loops and guest memory",
        &[
            libc::SYS_epoll_create1,
            libc::SYS_epoll_ctl,
            libc::SYS_epoll_wait,
            libc::SYS_epoll_pwait,
            libc::SYS_eventfd2,
            libc::SYS_poll,
            libc::SYS_ppoll,
            libc::SYS_pipe2,
        ],
    ),
    ("the vhost-user socket", SOCKET),
    (
        "descriptors and data",
        &[
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_readv,
            libc::SYS_writev,
            libc::SYS_pread64,
            libc::SYS_pwrite64,
            libc::SYS_preadv,
            libc::SYS_pwritev,
            libc::SYS_preadv2,
            libc::SYS_pwritev2,
            libc::SYS_close,
            libc::SYS_close_range,
            libc::SYS_dup,
            libc::SYS_dup3,
            libc::SYS_fcntl,
            libc::SYS_ioctl,
            libc::SYS_lseek,
            libc::SYS_fsync,
            libc::SYS_fdatasync,
            libc::SYS_syncfs,
            libc::SYS_sync_file_range,
            libc::SYS_fallocate,
            libc::SYS_ftruncate,
            libc::SYS_copy_file_range,
            libc::SYS_fadvise64,
            libc::SYS_readahead,
            libc::SYS_flock,
        ],
    ),
    (
        "file-system operations (passthrough)",
        &[
            libc::SYS_openat,
            libc::SYS_openat2,
            libc::SYS_open_by_handle_at,
            libc::SYS_name_to_handle_at,
            libc::SYS_newfstatat,
            libc::SYS_fstat,
            libc::SYS_statx,
            libc::SYS_fstatfs,
            libc::SYS_statfs,
            libc::SYS_getdents64,
            libc::SYS_readlinkat,
            libc::SYS_mkdirat,
            libc::SYS_mknodat,
            libc::SYS_symlinkat,
            libc::SYS_linkat,
            libc::SYS_unlinkat,
            libc::SYS_unlink,
            libc::SYS_renameat,
            libc::SYS_renameat2,
            libc::SYS_fchmod,
            libc::SYS_fchmodat,
            libc::SYS_fchmodat2,
            libc::SYS_chmod,
            libc::SYS_fchown,
            libc::SYS_fchownat,
            libc::SYS_utimensat,
            libc::SYS_fchdir,
            libc::SYS_getxattr,
            libc::SYS_lgetxattr,
            libc::SYS_fgetxattr,
            libc::SYS_setxattr,
            libc::SYS_lsetxattr,
            libc::SYS_fsetxattr,
            libc::SYS_listxattr,
            libc::SYS_llistxattr,
            libc::SYS_flistxattr,
            libc::SYS_removexattr,
            libc::SYS_lremovexattr,
            libc::SYS_fremovexattr,
        ],
    ),
    (
        "credentials (per-request fsuid/fsgid/groups)",
        &[
            libc::SYS_setfsuid,
            libc::SYS_setfsgid,
            libc::SYS_setgroups,
            libc::SYS_getgroups,
            libc::SYS_getuid,
            libc::SYS_geteuid,
            libc::SYS_getgid,
            libc::SYS_getegid,
            libc::SYS_capget,
        ],
    ),
    (
        "I/O engines (io_uring, Linux AIO)",
        &[
            libc::SYS_io_uring_setup,
            libc::SYS_io_uring_enter,
            libc::SYS_io_uring_register,
            libc::SYS_io_setup,
            libc::SYS_io_destroy,
            libc::SYS_io_submit,
            libc::SYS_io_getevents,
            333, // io_pgetevents (no libc constant)
            libc::SYS_io_cancel,
        ],
    ),
];

/// Every allowed call number (for docs and tests).
#[cfg(test)]
pub fn allowed() -> impl Iterator<Item = libc::c_long> {
    ALLOWED.iter().flat_map(|(_, calls)| calls.iter().copied()).chain(NET.iter().copied()).chain([libc::SYS_unshare])
}

/// Installs the filter on this thread (threads started later inherit it), with the
/// [`NET`] calls if `network` (a backend that keeps the host's network namespace). Needs no-new-privs or CAP_SYS_ADMIN.
pub fn install(on_forbidden: OnForbidden, network: bool) -> anyhow::Result<()> {
    if on_forbidden == OnForbidden::Kill {
        install_sigsys_handler()?;
    }
    let mut calls: Vec<libc::c_long> = ALLOWED.iter().flat_map(|(_, calls)| calls.iter().copied()).collect();
    if network {
        calls.extend_from_slice(NET);
    }
    let prog = compile(calls, true, on_forbidden)?;
    seccompiler::apply_filter(&prog).context("cannot install the seccomp filter")?;
    Ok(())
}

/// A filter allowing `calls`, plus `unshare(CLONE_FS)` if `unshare` and
/// `seccomp(SECCOMP_SET_MODE_FILTER, 0, ..)` (stacking a narrower filter) always.
fn compile(calls: Vec<libc::c_long>, unshare: bool, on_forbidden: OnForbidden) -> anyhow::Result<BpfProgram> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = calls.into_iter().map(|nr| (nr, Vec::new())).collect();
    let arg =
        |i, v: u64| SeccompCondition::new(i, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, v).context("seccomp rule");
    if unshare {
        rules.insert(
            libc::SYS_unshare,
            vec![SeccompRule::new(vec![arg(0, libc::CLONE_FS as u64)?]).context("seccomp rule")?],
        );
    }
    let stack = vec![arg(0, u64::from(libc::SECCOMP_SET_MODE_FILTER))?, arg(1, 0)?];
    rules.insert(libc::SYS_seccomp, vec![SeccompRule::new(stack).context("seccomp rule")?]);
    let mismatch = match on_forbidden {
        OnForbidden::Kill => SeccompAction::Trap,
        OnForbidden::Log => SeccompAction::Log,
    };
    let arch = std::env::consts::ARCH.try_into().context("seccomp: unsupported architecture")?;
    let filter = SeccompFilter::new(rules, mismatch, SeccompAction::Allow, arch).context("seccomp filter")?;
    filter.try_into().context("seccomp filter")
}

/// Calls every role keeps: memory, futexes, time, thread exit, signal return, logging
/// (`write`/`writev` to stderr) and `close`.
const CORE: &[libc::c_long] = &[
    libc::SYS_brk,
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_mprotect,
    libc::SYS_madvise,
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_exit,
    libc::SYS_exit_group,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    libc::SYS_restart_syscall,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_sigaltstack,
    libc::SYS_write,
    libc::SYS_writev,
    libc::SYS_close,
];

/// The base group called `name`.
fn group(name: &str) -> &'static [libc::c_long] {
    ALLOWED.iter().find(|(n, _)| n.starts_with(name)).map_or(&[], |(_, calls)| calls)
}

/// Socket calls: the vhost-user connection (SCM_RIGHTS messages), accepting and shutting
/// it down.
const SOCKET: &[libc::c_long] = &[
    libc::SYS_accept4,
    libc::SYS_accept,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_shutdown,
    libc::SYS_getsockopt,
    libc::SYS_getsockname,
];

/// A TCP client (nfs, kv on Redis, the remote forwarder): connect with a timeout,
/// TCP_NODELAY, send and receive. Only a daemon that keeps the host's network namespace gets
/// them in its base filter ([`install`]); the request-thread roles keep them because the nfs
/// backend's tokio threads start from request threads and inherit their filters.
const NET: &[libc::c_long] = &[
    libc::SYS_bind,
    libc::SYS_socket,
    libc::SYS_connect,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_getpeername,
    libc::SYS_getsockname,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_shutdown,
];

/// What a role may call beyond [`CORE`], and whether it keeps `unshare(CLONE_FS)`.
/// A thread inherits its creator's filters, so a role that starts threads keeps what they
/// need (`clone`, `prctl` for the name, `seccomp` to stack their filter, and their calls).
pub fn role_calls(role: ThreadRole) -> (Vec<libc::c_long>, bool) {
    let base = || ALLOWED.iter().flat_map(|(_, calls)| calls.iter().copied()).chain(NET.iter().copied());
    let mut calls: Vec<libc::c_long> = match role {
        // Everything its vhost-user protocol thread and vring workers need (they are its
        // children), except removing socket files.
        ThreadRole::VhostUserAccept => base().filter(|&n| n != libc::SYS_unlink).collect(),
        // Requests (every file-system call), thread starts; no sockets, no unlink.
        ThreadRole::VhostUserWorker | ThreadRole::FuseReader => {
            base().filter(|n| (!SOCKET.contains(n) || NET.contains(n)) && *n != libc::SYS_unlink).collect()
        }
        // Waits, reports, drops the backends (closing descriptors, stopping engines) and
        // removes socket files (no supervisor).
        ThreadRole::Main => [
            group("descriptors"),
            group("I/O engines"),
            &[libc::SYS_unlink, libc::SYS_newfstatat, libc::SYS_statx, libc::SYS_shutdown],
        ]
        .concat(),
        // sigwait, then stop accepting (shutdown of listeners and connections).
        ThreadRole::Signals => vec![libc::SYS_rt_sigtimedwait, libc::SYS_shutdown],
        // Reap completions and answer them (descriptors and data only).
        ThreadRole::IoCompletion => {
            [group("descriptors"), group("I/O engines"), &[libc::SYS_poll, libc::SYS_ppoll]].concat()
        }
        // One blocking lock call, then the reply.
        ThreadRole::LockWait => group("descriptors").to_vec(),
        // pthread_kill the waiter now and then.
        ThreadRole::LockInterrupt => vec![libc::SYS_tgkill],
    };
    calls.extend_from_slice(CORE);
    calls.sort_unstable();
    calls.dedup();
    let unshare = matches!(role, ThreadRole::VhostUserAccept | ThreadRole::VhostUserWorker | ThreadRole::FuseReader);
    (calls, unshare)
}

/// The compiled role filters and the role the test hook makes misbehave.
struct Roles {
    filters: Vec<(ThreadRole, BpfProgram)>,
    test_role: Option<ThreadRole>,
}

static ROLES: OnceLock<Roles> = OnceLock::new();

/// Compiles every role's filter (so a bad list fails at startup, and a thread starting
/// does no more than one `seccomp(2)`) and sets the [`dpfs_core::thread_role`] hook.
/// `test_role`: that role attempts `openat` (in the base list, not in its own) once
/// confined.
pub fn enable_roles(on_forbidden: OnForbidden, test_role: Option<ThreadRole>) -> anyhow::Result<()> {
    let mut filters = Vec::new();
    for role in ThreadRole::ALL {
        let (calls, unshare) = role_calls(role);
        filters.push((role, compile(calls, unshare, on_forbidden).with_context(|| format!("role {}", role.name()))?));
    }
    if ROLES.set(Roles { filters, test_role }).is_ok() {
        dpfs_core::thread_role::set_hook(enter_role);
    }
    Ok(())
}

/// The hook: stacks `role`'s filter on the calling thread. A thread that cannot narrow
/// itself ends the process (fail closed).
fn enter_role(role: ThreadRole) {
    let Some(roles) = ROLES.get() else { return };
    let Some((_, prog)) = roles.filters.iter().find(|(r, _)| *r == role) else { return };
    if let Err(e) = seccompiler::apply_filter(prog) {
        eprintln!("dpfs: seccomp: cannot install the {} thread filter: {e}; the daemon exits", role.name());
        std::process::exit(1);
    }
    tracing::debug!(role = role.name(), "thread filter installed");
    if roles.test_role == Some(role) {
        tracing::warn!(role = role.name(), "DPFS_TEST_ROLE_SYSCALL: calling openat(2), which this role forbids");
        // SAFETY: openat of a NUL-terminated path; the descriptor (if any) is closed.
        unsafe {
            let fd = libc::openat(libc::AT_FDCWD, c"/".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                libc::close(fd);
            }
        }
    }
}

fn install_sigsys_handler() -> anyhow::Result<()> {
    // SAFETY: a zeroed sigaction with a handler that only calls async-signal-safe
    // write(2) and exit_group(2).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_sigsys as *const () as usize;
        sa.sa_flags = libc::SA_SIGINFO;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(libc::SIGSYS, &sa, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error()).context("sigaction(SIGSYS)");
        }
    }
    Ok(())
}

/// SIGSYS from the filter: name the call on stderr and end the process.
extern "C" fn on_sigsys(_sig: libc::c_int, info: *mut libc::siginfo_t, _ctx: *mut libc::c_void) {
    // siginfo's _sigsys: { void *call_addr; int syscall; unsigned arch; } at offset 16.
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let nr = unsafe { (info as *const u8).add(16 + std::mem::size_of::<usize>()).cast::<i32>().read_unaligned() };
    let mut buf = [0u8; 160];
    let mut len = 0;
    let mut put = |b: &[u8]| {
        for &c in b {
            if len < buf.len() {
                buf[len] = c;
                len += 1;
            }
        }
    };
    put(b"dpfs: seccomp: forbidden system call ");
    let mut digits = [0u8; 12];
    let mut n = i64::from(nr).unsigned_abs();
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    put(&digits[i..]);
    put(b" (");
    put(name(i64::from(nr)).as_bytes());
    put(b"); the daemon exits\n");
    // SAFETY: write(2) and exit_group(2) are async-signal-safe; both are allowed.
    unsafe {
        libc::write(2, buf.as_ptr().cast(), len);
        libc::syscall(libc::SYS_exit_group, 128 + libc::SIGSYS);
    }
}

/// Name of system call `nr` on this architecture (`?` if unknown).
pub fn name(nr: i64) -> &'static str {
    if cfg!(target_arch = "x86_64") {
        syscall_names::name(nr).unwrap_or("?")
    } else {
        "?"
    }
}

/// Test hook: a call no role needs (`personality(0xffffffff)` only queries).
pub fn attempt_forbidden_call() {
    tracing::warn!("DPFS_TEST_FORBIDDEN_SYSCALL: calling personality(2), which the filter forbids");
    // SAFETY: personality(0xffffffff) only reads the persona.
    unsafe { libc::syscall(libc::SYS_personality, 0xffff_ffffu64) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_list() {
        assert_eq!(name(libc::SYS_personality), "personality");
        assert_eq!(name(libc::SYS_fchmodat2), "fchmodat2");
        assert!(!allowed().any(|n| n == libc::SYS_personality || n == libc::SYS_mount || n == libc::SYS_execve));
        assert!(allowed().all(|n| name(n) != "?"));
    }

    fn calls(role: ThreadRole) -> Vec<libc::c_long> {
        role_calls(role).0
    }

    #[test]
    fn roles_narrow_the_base_and_cover_the_threads_they_start() {
        let base: Vec<_> = allowed().collect();
        for role in ThreadRole::ALL {
            assert!(!group("descriptors").is_empty() && !group("I/O engines").is_empty());
            for n in calls(role) {
                assert!(base.contains(&n), "{}: {} not in the base list", role.name(), name(n));
            }
        }
        // A thread inherits its creator's filters: a child's list must be within its parent's.
        let children = [
            (ThreadRole::VhostUserAccept, ThreadRole::VhostUserWorker),
            (ThreadRole::VhostUserWorker, ThreadRole::IoCompletion),
            (ThreadRole::VhostUserWorker, ThreadRole::LockWait),
            (ThreadRole::VhostUserWorker, ThreadRole::LockInterrupt),
            (ThreadRole::FuseReader, ThreadRole::IoCompletion),
            (ThreadRole::FuseReader, ThreadRole::LockWait),
            (ThreadRole::FuseReader, ThreadRole::LockInterrupt),
        ];
        for (parent, child) in children {
            let p = calls(parent);
            for n in calls(child) {
                assert!(p.contains(&n), "{} starts {} but lacks {}", parent.name(), child.name(), name(n));
            }
            assert!(role_calls(parent).1 || !role_calls(child).1);
        }
        for role in [
            ThreadRole::Signals,
            ThreadRole::Main,
            ThreadRole::IoCompletion,
            ThreadRole::LockWait,
            ThreadRole::LockInterrupt,
        ] {
            let c = calls(role);
            for n in
                [libc::SYS_openat, libc::SYS_open_by_handle_at, libc::SYS_clone3, libc::SYS_accept4, libc::SYS_setfsuid]
            {
                assert!(!c.contains(&n), "{} may call {}", role.name(), name(n));
            }
            assert!(!role_calls(role).1);
        }
        for role in [ThreadRole::VhostUserWorker, ThreadRole::FuseReader] {
            assert!(!calls(role).contains(&libc::SYS_accept4) && !calls(role).contains(&libc::SYS_recvmsg));
        }
        for role in ThreadRole::ALL {
            assert!(compile(calls(role), role_calls(role).1, OnForbidden::Kill).is_ok());
        }
    }
}
