//! The passthrough backend: serves a host directory to the guest, confined to it.
//!
//! # Map
//! - [`config`]: [`PassthroughConfig`] (cache mode, direct I/O, limits) and DPFS's
//!   `[local_mirror]` mapping.
//! - `resolve`: `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV)`: every
//!   child is opened beneath its parent, never through a symlink or mount point.
//! - `inode` (+ `fhandle`, `fdcache`): node ids → host inodes keyed by (st_dev, st_ino),
//!   reached through kernel file handles and a bounded LRU of `O_PATH` fds (or pinned fds
//!   when the file system has no file handles). Bounded.
//! - `handle`: open files and directories, bounded; numbers are keys, never fds.
//! - `creds`: per-thread fsuid/fsgid/groups of the guest caller around each syscall.
//! - Operations, one domain per file: `namespace` (lookup, create-type ops, rename, link),
//!   `data` (open, create, tmpfile, read, write, sync, fallocate, lseek, copy), `attr`,
//!   `dir`, `xattr`, `locks`; `ops` is the [`FileSystem`](dpfs_core::FileSystem) glue.
//! - [`xattr_policy`](XattrPolicy): where a guest's `trusted.*` and `security.*` attributes
//!   land on host files (by default under the private prefix `trusted.dpfs.`, which
//!   unprivileged host users cannot forge).
//! - [`engine`]: the data path behind a small trait: synchronous, io_uring or Linux AIO.
//!
//! # Safety rules
//! Inode descriptors are fetched with the server's credentials (reopening a file handle
//! needs `CAP_DAC_READ_SEARCH`), then the caller's credentials are put on for the
//! operation itself. Files are reopened through `/proc/self/fd/N` of an `O_PATH` fd we
//! hold, so a symlink node is never followed (ELOOP). Only regular files can be opened.
//!
//! # Extended attributes and the caller's privilege
//! Switching fsuid leaves the daemon `CAP_SYS_ADMIN` and `CAP_SETFCAP`, with which the host
//! kernel would let any guest caller write `trusted.*` and `security.*` (file capabilities
//! included) and read `trusted.*`. So the caller's privilege is decided here, before the
//! host sees the request, by the rules of [`dpfs_core::xattr`] (its table says what each
//! namespace allows root and non-root callers): a non-root caller gets EPERM for setting or
//! removing `trusted.*`/`security.*` and for an ACL on a file it does not own, ENODATA for
//! reading `trusted.*`, and listings without `trusted.*`. Then [`XattrPolicy`] decides
//! where a root guest's privileged names go on the host. `user.*` and the ACLs are checked
//! by the host kernel against the caller's fsuid as before.
//!
//! # Limits of this cut
//! - New files get `mode & !umask` from the guest, and the process umask on top: run the
//!   daemon with umask 0.
//! - SETLKW and blocking flock wait on (at most 64) waiter threads; an INTERRUPT signals
//!   the waiter ([`interrupt_signal`], SIGRTMIN+7, handler installed on first use).
//! - IOCTL, POLL, BMAP and DAX mappings answer ENOSYS.
//! - `uring_cq_polling` makes each ring's completion thread spin; the number of polling
//!   threads follows the poller threads, whatever `uring_cq_polling_nthreads` says.
//! - `directio_mode` 2 sets `O_DIRECT` after opening, on file systems that take it; a
//!   transfer its alignment refuses uses a buffered descriptor of the same file (opened
//!   on first need), unless the guest asked for `O_DIRECT` itself.
#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

mod attr;
pub mod config;
mod creds;
mod data;
mod dir;
pub mod engine;
mod error;
mod fdcache;
mod fhandle;
mod handle;
mod inode;
mod locks;
mod namespace;
mod ops;
mod procfd;
mod resolve;
mod sys;
mod xattr;
mod xattr_policy;

pub use config::{CacheMode, DirectIo, EngineKind, LocalMirror, PassthroughConfig};
pub use engine::{AioEngine, Engine, SyncEngine, UringEngine};
pub use error::Error;
pub use locks::interrupt_signal;
pub use procfd::set_proc_self_fd;
pub use xattr_policy::{XattrPolicy, PRIVATE_PREFIX};

use dpfs_core::fs::{Context, Entry};
use dpfs_core::Errno;
use handle::HandleTable;
use inode::InodeTable;
use locks::LockTable;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

/// Counters for tests and monitoring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// Nodes in the inode table (root included).
    pub inodes: usize,
    /// `O_PATH` descriptors in the LRU.
    pub cached_fds: usize,
    /// Open file and directory handles.
    pub handles: usize,
    /// Whether inodes are reached through file handles.
    pub file_handles: bool,
}

/// A file system serving a host directory.
pub struct PassthroughFs {
    cfg: PassthroughConfig,
    inodes: InodeTable,
    handles: HandleTable,
    locks: LockTable,
    engine: Box<dyn Engine>,
    proc_fd: OwnedFd,
    groups: &'static [libc::gid_t],
}

fn open_path(path: &std::path::Path, flags: i32) -> std::io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is NUL-terminated.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Descriptors the fd cache may use: the configured limit, kept under a quarter of
/// `RLIMIT_NOFILE` so open handles and in-flight I/O always have room.
fn fd_budget(configured: usize) -> usize {
    // SAFETY: all-zero is a valid rlimit, and getrlimit fills it.
    let mut rl: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `rl` is a valid out-pointer.
    let soft = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) } == 0 { rl.rlim_cur as usize } else { 1024 };
    configured.min(soft / 4).max(8)
}

impl PassthroughFs {
    /// Serves `cfg.root` with the engine `cfg.engine` names.
    pub fn new(cfg: PassthroughConfig) -> Result<PassthroughFs, Error> {
        let engine: Box<dyn Engine> = match cfg.engine {
            EngineKind::Sync => Box::new(SyncEngine),
            EngineKind::IoUring { entries } => match UringEngine::new(entries) {
                Ok(e) => Box::new(e.with_cq_polling(cfg.uring_cq_polling)),
                Err(e) => {
                    tracing::warn!(error = %e, "io_uring unavailable, using synchronous I/O");
                    Box::new(SyncEngine)
                }
            },
            EngineKind::Aio { nr_events } => match AioEngine::new(nr_events) {
                Ok(e) => Box::new(e),
                Err(e) => {
                    tracing::warn!(error = %e, "Linux AIO unavailable, using synchronous I/O");
                    Box::new(SyncEngine)
                }
            },
        };
        Self::with_engine(cfg, engine)
    }

    /// Serves `cfg.root` with a given I/O engine.
    pub fn with_engine(cfg: PassthroughConfig, engine: Box<dyn Engine>) -> Result<PassthroughFs, Error> {
        let root_err = |source| Error::Root { path: cfg.root.clone(), source };
        let root = open_path(&cfg.root, libc::O_PATH | libc::O_DIRECTORY).map_err(root_err)?;
        let root_dir = open_path(&cfg.root, libc::O_RDONLY | libc::O_DIRECTORY).map_err(root_err)?;
        let proc_fd = procfd::proc_self_fd().and_then(|fd| fd.try_clone_to_owned()).map_err(Error::Proc)?;
        // File handles need support from the file system and CAP_DAC_READ_SEARCH: probe both.
        let use_handles = cfg.file_handles
            && fhandle::FileHandle::of(root.as_fd()).and_then(|h| h.open(root_dir.as_fd()).map(drop)).is_ok();
        let budget = fd_budget(cfg.max_open_fds);
        let inodes = InodeTable::new(root, root_dir, use_handles, budget, cfg.max_inodes)
            .map_err(|e| root_err(std::io::Error::from_raw_os_error(e.0)))?;
        tracing::info!(root = %cfg.root.display(), file_handles = inodes.uses_handles(), fd_budget = budget,
            engine = engine.name(), "passthrough ready");
        Ok(PassthroughFs {
            handles: HandleTable::new(cfg.max_handles),
            locks: LockTable::new(cfg.max_handles),
            inodes,
            engine,
            proc_fd,
            groups: creds::server_groups(),
            cfg,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &PassthroughConfig {
        &self.cfg
    }

    /// Name of the I/O engine in use (`sync`, `io_uring`, `aio`).
    pub fn engine_name(&self) -> &'static str {
        self.engine.name()
    }

    /// Current table sizes.
    pub fn stats(&self) -> Stats {
        Stats {
            inodes: self.inodes.len(),
            cached_fds: self.inodes.cached_fds(),
            handles: self.handles.len(),
            file_handles: self.inodes.uses_handles(),
        }
    }

    /// Puts on the caller's credentials until the guard drops.
    fn creds(&self, ctx: &Context) -> Result<creds::CredGuard, Errno> {
        creds::switch(ctx, self.groups)
    }

    /// EROFS in read-only mode.
    fn check_rw(&self) -> Result<(), Errno> {
        if self.cfg.readonly {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }

    /// Reopens the inode `fd` refers to with `flags`, through `/proc/self/fd/N` (the magic
    /// link lands on that very inode; a symlink inode is not followed further: ELOOP).
    fn reopen(&self, fd: BorrowedFd<'_>, flags: i32) -> Result<OwnedFd, Errno> {
        let name = sys::cstr(fd.as_raw_fd().to_string().as_bytes())?;
        // SAFETY: `name` is NUL-terminated; the result is a fresh descriptor.
        let r = unsafe { libc::openat(self.proc_fd.as_raw_fd(), name.as_ptr(), flags | libc::O_CLOEXEC) };
        sys::owned(r as libc::c_long)
    }

    /// Registers the inode `fd` refers to (one lookup reference) and builds its entry.
    fn entry_from(&self, fd: OwnedFd, pin: bool) -> Result<Entry, Errno> {
        let st = sys::fstat(fd.as_fd())?;
        let ino = self.inodes.insert(fd, &st, pin)?;
        Ok(self.entry_of(ino, &st))
    }

    fn entry_of(&self, ino: u64, st: &libc::stat) -> Entry {
        Entry {
            ino,
            generation: 0,
            attr: attr::to_attr(st),
            entry_timeout: self.cfg.entry_ttl(),
            attr_timeout: self.cfg.attr_ttl(),
        }
    }
}
