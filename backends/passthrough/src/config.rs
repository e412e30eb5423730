//! Configuration: [`PassthroughConfig`] and the mapping from DPFS's `[local_mirror]` keys.

use crate::{Error, XattrPolicy};
use dpfs_core::abi::fopen;
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

/// Guest-side caching policy, as virtiofsd's `--cache`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheMode {
    /// Short metadata timeouts (1 s), page cache dropped on open.
    #[default]
    Auto,
    /// Long timeouts, page cache kept across opens (the share is only changed by the guest).
    Always,
    /// No caching: zero timeouts, direct I/O in the guest.
    Never,
    /// Metadata cached (long timeouts), data not (direct I/O in the guest).
    Metadata,
}

/// DPFS's `directio_mode`: what happens to `O_DIRECT` on the host side (hidden from the guest).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DirectIo {
    /// 0: pass the guest's `O_DIRECT` through.
    #[default]
    Passthrough,
    /// 1: never open host files with `O_DIRECT`.
    Never,
    /// 2: host files use `O_DIRECT` (no data caching on the server) where the file system
    /// supports it. When the guest did not ask for direct I/O itself, a READ or WRITE whose
    /// offset, length or buffers the file system's direct-I/O alignment refuses goes
    /// through a buffered descriptor of the same file instead of failing with EINVAL.
    Always,
}

impl DirectIo {
    /// Decodes DPFS's numeric mode.
    pub fn from_mode(m: u32) -> Option<DirectIo> {
        match m {
            0 => Some(DirectIo::Passthrough),
            1 => Some(DirectIo::Never),
            2 => Some(DirectIo::Always),
            _ => None,
        }
    }

    /// Applies the mode to host `open(2)` flags. `Always` adds `O_DIRECT` only where the
    /// guest asked for it: dpfs sets it on the others after opening (see `Always`).
    pub fn apply(self, flags: i32) -> i32 {
        match self {
            DirectIo::Passthrough | DirectIo::Always => flags,
            DirectIo::Never => flags & !libc::O_DIRECT,
        }
    }

    /// Whether dpfs adds `O_DIRECT` to a file the guest opened with `flags`.
    pub fn forces(self, flags: i32) -> bool {
        self == DirectIo::Always && flags & libc::O_DIRECT == 0
    }
}

/// The data-path engine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// Synchronous `preadv`/`pwritev` on the calling thread.
    #[default]
    Sync,
    /// io_uring: a ring per poller thread, replies from a completion thread per ring.
    /// Falls back to `Sync` if io_uring is unavailable.
    IoUring {
        /// Submission-queue entries per ring.
        entries: u32,
    },
    /// Linux native AIO (`io_submit`): a context per poller thread. Falls back to `Sync` if
    /// Linux AIO is unavailable.
    Aio {
        /// I/Os each context holds at once.
        nr_events: u32,
    },
}

/// Configuration of a [`PassthroughFs`](crate::PassthroughFs).
#[derive(Clone, Debug)]
pub struct PassthroughConfig {
    /// The shared host directory.
    pub root: PathBuf,
    /// Refuse every modifying operation with EROFS.
    pub readonly: bool,
    /// Guest caching policy.
    pub cache: CacheMode,
    /// Override of the entry timeout the cache mode implies.
    pub entry_timeout: Option<Duration>,
    /// Override of the attribute timeout the cache mode implies.
    pub attr_timeout: Option<Duration>,
    /// Host-side `O_DIRECT` policy.
    pub directio: DirectIo,
    /// Cached `O_PATH` descriptors (file-handle mode) or pinned ones (fallback mode). The
    /// effective cache size is also kept under a quarter of `RLIMIT_NOFILE`.
    pub max_open_fds: usize,
    /// Inodes the guest may hold lookup references on at once (ENFILE beyond).
    pub max_inodes: usize,
    /// Open files and directories at once (EMFILE beyond).
    pub max_handles: usize,
    /// Use `name_to_handle_at` file handles when the file system supports them.
    pub file_handles: bool,
    /// Allow MKNOD of character and block devices (off: EPERM).
    pub allow_devices: bool,
    /// Data-path engine.
    pub engine: EngineKind,
    /// DPFS `uring_cq_polling`: io_uring completion threads spin on their ring while I/O
    /// is outstanding instead of sleeping in the kernel.
    pub uring_cq_polling: bool,
    /// DPFS `uring_cq_polling_nthreads`. dpfs has one completion thread per ring, and one
    /// ring per poller thread, so the polling threads follow the poller count; a differing
    /// value is logged, not refused.
    pub uring_cq_polling_nthreads: u32,
    /// Where a root guest's `trusted.*` and `security.*` attributes go on host files
    /// (non-root callers are refused them whatever the policy).
    pub xattr_policy: XattrPolicy,
}

impl PassthroughConfig {
    /// Defaults for serving `root`.
    pub fn new(root: impl Into<PathBuf>) -> PassthroughConfig {
        PassthroughConfig {
            root: root.into(),
            readonly: false,
            cache: CacheMode::Auto,
            entry_timeout: None,
            attr_timeout: None,
            directio: DirectIo::Passthrough,
            max_open_fds: 4096,
            max_inodes: 1 << 20,
            max_handles: 1 << 16,
            file_handles: true,
            allow_devices: false,
            engine: EngineKind::Sync,
            uring_cq_polling: false,
            uring_cq_polling_nthreads: 1,
            xattr_policy: XattrPolicy::Map,
        }
    }

    /// Builds a configuration from DPFS's `[local_mirror]` section.
    ///
    /// `metadata_timeout` becomes the entry and attribute timeouts (0 disables metadata
    /// caching: cache mode `never`, otherwise `always`); `directio_mode` is 0/1/2.
    pub fn from_local_mirror(m: &LocalMirror) -> Result<PassthroughConfig, Error> {
        if !m.metadata_timeout.is_finite() || m.metadata_timeout < 0.0 || m.metadata_timeout > 1e12 {
            return Err(Error::Config {
                key: "local_mirror.metadata_timeout",
                msg: format!("{} is not a non-negative number of seconds", m.metadata_timeout),
            });
        }
        let directio = DirectIo::from_mode(m.directio_mode).ok_or_else(|| Error::Config {
            key: "local_mirror.directio_mode",
            msg: format!("{} is not 0 (passthrough), 1 (never) or 2 (always)", m.directio_mode),
        })?;
        if m.uring_cq_polling && m.uring_cq_polling_nthreads == 0 {
            return Err(Error::Config {
                key: "local_mirror.uring_cq_polling_nthreads",
                msg: "must be at least 1 when uring_cq_polling is on".into(),
            });
        }
        let t = Duration::from_secs_f64(m.metadata_timeout);
        let mut c = PassthroughConfig::new(&m.dir);
        c.cache = if t.is_zero() { CacheMode::Never } else { CacheMode::Always };
        c.entry_timeout = Some(t);
        c.attr_timeout = Some(t);
        c.directio = directio;
        c.engine = EngineKind::IoUring { entries: 512 };
        c.uring_cq_polling = m.uring_cq_polling;
        c.uring_cq_polling_nthreads = m.uring_cq_polling_nthreads;
        c.xattr_policy = m.xattr_policy;
        Ok(c)
    }

    fn default_timeout(&self) -> Duration {
        match self.cache {
            CacheMode::Auto => Duration::from_secs(1),
            CacheMode::Always | CacheMode::Metadata => Duration::from_secs(86400),
            CacheMode::Never => Duration::ZERO,
        }
    }

    /// Entry timeout to send.
    pub fn entry_ttl(&self) -> Duration {
        self.entry_timeout.unwrap_or_else(|| self.default_timeout())
    }

    /// Attribute timeout to send.
    pub fn attr_ttl(&self) -> Duration {
        self.attr_timeout.unwrap_or_else(|| self.default_timeout())
    }

    /// `FOPEN_*` flags for an open file (`dir == false`) or directory.
    pub fn fopen_flags(&self, dir: bool) -> u32 {
        match (self.cache, dir) {
            (CacheMode::Always, false) => fopen::KEEP_CACHE,
            (CacheMode::Always, true) => fopen::KEEP_CACHE | fopen::CACHE_DIR,
            (CacheMode::Never | CacheMode::Metadata, false) => fopen::DIRECT_IO,
            _ => 0,
        }
    }
}

/// DPFS's `[local_mirror]` section, key for key (all required, as in DPFS).
#[derive(Clone, Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LocalMirror {
    /// The mirrored directory.
    pub dir: PathBuf,
    /// Metadata cache timeout in seconds (0 disables it).
    pub metadata_timeout: f64,
    /// 0 passthrough, 1 never, 2 always direct I/O on the host.
    pub directio_mode: u32,
    /// Busy-poll the io_uring completion queues.
    pub uring_cq_polling: bool,
    /// Completion threads when polling.
    pub uring_cq_polling_nthreads: u32,
    /// dpfs's own key (optional, default `map`): the [`XattrPolicy`].
    #[serde(default)]
    pub xattr_policy: XattrPolicy,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_modes_map_to_timeouts_and_flags() {
        let mut c = PassthroughConfig::new("/x");
        assert_eq!(c.entry_ttl(), Duration::from_secs(1));
        assert_eq!(c.fopen_flags(false), 0);
        c.cache = CacheMode::Never;
        assert_eq!(c.attr_ttl(), Duration::ZERO);
        assert_eq!(c.fopen_flags(false), fopen::DIRECT_IO);
        c.cache = CacheMode::Always;
        assert_eq!(c.fopen_flags(true), fopen::KEEP_CACHE | fopen::CACHE_DIR);
        c.attr_timeout = Some(Duration::from_secs(3));
        assert_eq!(c.attr_ttl(), Duration::from_secs(3));
        assert!(DirectIo::Always.forces(libc::O_RDWR));
        assert!(!DirectIo::Always.forces(libc::O_RDWR | libc::O_DIRECT));
        assert!(!DirectIo::Passthrough.forces(libc::O_RDWR));
        assert_eq!(DirectIo::Never.apply(libc::O_DIRECT), 0);
        assert_eq!(DirectIo::from_mode(3), None);
    }
}
