//! Confining the daemon before it parses anything a guest sends: a mount/pid/ipc/uts/net
//! namespace with the shared directory pivoted to `/` (or a chroot), dropped
//! capabilities, no-new-privs and a seccomp allowlist.
//!
//! Order (see [`confine`]): everything that needs the host is done first by the caller
//! (sockets bound, `/dev/fuse` opened and mounted, the mem backend seeded); then the
//! process forks into a new pid namespace (the parent stays behind as a [`Supervisor`]:
//! it forwards signals, removes socket files, unmounts, and reports how the daemon
//! ended), the daemon unshares the other namespaces, mounts a fresh `/proc` just long
//! enough to open `/proc/self/fd`, pivots into the shared directory (or an empty tmpfs),
//! drops capabilities, sets no-new-privs and installs the filter. Only then do threads
//! start. The fork is needed because `unshare(CLONE_NEWPID)` only moves children, and
//! `CLONE_NEWNS` cannot be unshared by a process that already has threads.

mod caps;
mod namespace;
mod seccomp;
mod supervisor;
mod syscall_names;

pub use caps::CapSet;
pub use supervisor::{fork_daemon, Supervisor};

use crate::cli::{BackendKind, SandboxArg, SandboxOpts, SeccompArg};
use anyhow::Context as _;
use std::path::PathBuf;

/// The protections one daemon runs with, after defaults and privilege are settled.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Namespace, chroot or none.
    pub mode: SandboxArg,
    /// Seccomp mode.
    pub seccomp: SeccompArg,
    /// Capabilities kept (root only).
    pub caps: Option<CapSet>,
    /// New root: the shared directory (passthrough), or `None` for an empty tmpfs.
    pub root: Option<PathBuf>,
    /// Whether to confine the network too (every backend but nfs and remote, and kv on
    /// Redis, which the caller turns off); a kept network also allows the socket calls of
    /// an outgoing TCP connection.
    pub new_net: bool,
    /// Test hook: attempt a forbidden call once confined.
    pub test_forbidden_call: bool,
    /// Test hook: the thread role that attempts `openat` (allowed by the base list, not by
    /// the role's) once it has its filter.
    pub test_role_call: Option<dpfs_core::ThreadRole>,
}

/// Capabilities a backend needs. Passthrough: ownership and permission overrides for the
/// guest's root (CHOWN, DAC_OVERRIDE, FOWNER, FSETID), DAC_READ_SEARCH for file handles,
/// SETUID/SETGID for the per-request fsuid/fsgid/groups, MKNOD for device nodes; SYS_ADMIN
/// to write `trusted.*` when the xattr policy maps or passes privileged xattrs; SETFCAP
/// only when `security.capability` goes to host files unchanged (policy passthrough).
/// mem and null touch no host file: nothing.
pub fn backend_caps(kind: BackendKind, xattr: Option<dpfs_backend_passthrough::XattrPolicy>) -> CapSet {
    use dpfs_backend_passthrough::XattrPolicy;
    match kind {
        BackendKind::Passthrough => {
            let mut names =
                vec!["chown", "dac_override", "dac_read_search", "fowner", "fsetid", "setgid", "setuid", "mknod"];
            match xattr.unwrap_or_default() {
                XattrPolicy::Refuse => {}
                XattrPolicy::Map => names.push("sys_admin"),
                XattrPolicy::Passthrough => names.extend(["sys_admin", "setfcap"]),
            }
            CapSet::of(&names)
        }
        // nfs: AUTH_SYS carries any identity without privilege; no host file is touched.
        BackendKind::Mem | BackendKind::Null | BackendKind::Nfs | BackendKind::Kv | BackendKind::Remote => CapSet(0),
    }
}

/// Settles the sandbox for `kind`: namespace by default as root, none otherwise (with one
/// line per protection that is off).
pub fn plan(
    opts: &SandboxOpts,
    kind: BackendKind,
    shared_dir: Option<&std::path::Path>,
    xattr: Option<dpfs_backend_passthrough::XattrPolicy>,
) -> anyhow::Result<Plan> {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    let mode = match (opts.sandbox, root) {
        (Some(m), true) => m,
        (Some(SandboxArg::None), false) => SandboxArg::None,
        (Some(m), false) => anyhow::bail!("--sandbox {m:?} needs root (namespaces and chroot need CAP_SYS_ADMIN)"),
        (None, true) => SandboxArg::Namespace,
        (None, false) => {
            eprintln!("dpfs: protection off: sandbox (not root: no namespaces, no chroot; the whole file system is reachable)");
            SandboxArg::None
        }
    };
    let caps = if root {
        Some(backend_caps(kind, xattr).modify(opts.modcaps.as_deref().unwrap_or(""))?)
    } else {
        eprintln!("dpfs: protection off: capability drop (not root: the daemon has no capabilities to drop)");
        None
    };
    if mode == SandboxArg::None && root && opts.sandbox.is_some() {
        eprintln!("dpfs: protection off: sandbox (--sandbox none: the whole host file system is reachable)");
    }
    if opts.seccomp == SeccompArg::None {
        eprintln!("dpfs: protection off: seccomp (--seccomp none: every system call is allowed)");
    }
    let root_dir = match kind {
        BackendKind::Passthrough => {
            Some(shared_dir.context("the passthrough backend needs --shared-dir")?.canonicalize()?)
        }
        BackendKind::Mem | BackendKind::Null | BackendKind::Nfs | BackendKind::Kv | BackendKind::Remote => None,
    };
    Ok(Plan {
        mode,
        seccomp: opts.seccomp,
        caps,
        root: root_dir,
        // nfs reaches its server and remote its gateway: they keep the host's network.
        new_net: !matches!(kind, BackendKind::Nfs | BackendKind::Remote),
        test_forbidden_call: std::env::var_os("DPFS_TEST_FORBIDDEN_SYSCALL").is_some_and(|v| v == "1"),
        test_role_call: match std::env::var("DPFS_TEST_ROLE_SYSCALL") {
            Ok(name) => Some(
                dpfs_core::ThreadRole::from_name(&name)
                    .with_context(|| format!("DPFS_TEST_ROLE_SYSCALL: no thread role {name:?}"))?,
            ),
            Err(_) => None,
        },
    })
}

impl Plan {
    /// Whether the daemon runs in its own pid namespace (a forked child).
    pub fn forks(&self) -> bool {
        self.mode == SandboxArg::Namespace
    }

    /// The directory the backend serves once confined (`/` after pivot or chroot).
    pub fn served_root(&self) -> Option<PathBuf> {
        match self.mode {
            SandboxArg::None => self.root.clone(),
            SandboxArg::Namespace | SandboxArg::Chroot => self.root.as_ref().map(|_| PathBuf::from("/")),
        }
    }
}

/// Raises `RLIMIT_NOFILE` to its hard limit (the passthrough fd cache sizes itself from
/// it). Done before capabilities are dropped.
pub fn raise_nofile() {
    // SAFETY: all-zero is a valid rlimit; get/setrlimit read and write it.
    unsafe {
        let mut rl: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                tracing::warn!(error = %std::io::Error::last_os_error(), "cannot raise RLIMIT_NOFILE");
            }
        }
    }
}

/// Confines this (single-threaded) process as `plan` says. In namespace mode call it in
/// the forked daemon (see [`fork_daemon`]).
pub fn confine(plan: &Plan) -> anyhow::Result<()> {
    match plan.mode {
        SandboxArg::Namespace => namespace::enter(plan.root.as_deref(), plan.new_net)?,
        SandboxArg::Chroot => namespace::chroot(plan.root.as_deref())?,
        SandboxArg::None => {}
    }
    if let Some(keep) = plan.caps {
        caps::restrict(keep)?;
    }
    // SAFETY: prctl with integer arguments.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(std::io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS)");
    }
    let on_forbidden = match plan.seccomp {
        SeccompArg::Kill => Some(seccomp::OnForbidden::Kill),
        SeccompArg::Log => Some(seccomp::OnForbidden::Log),
        SeccompArg::None => None,
    };
    if let Some(on_forbidden) = on_forbidden {
        // The base list first (every thread inherits it), then each thread role stacks its
        // own narrower filter as it starts (`dpfs_core::thread_role::enter`).
        seccomp::install(on_forbidden, !plan.new_net)?;
        seccomp::enable_roles(on_forbidden, plan.test_role_call)?;
    }
    tracing::info!(sandbox = ?plan.mode, seccomp = ?plan.seccomp, caps = %caps::effective().names(), "confined");
    if plan.test_forbidden_call {
        seccomp::attempt_forbidden_call();
    }
    Ok(())
}
