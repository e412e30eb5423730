//! Building one backend instance per device, seeding the mem backend, and the passthrough
//! backend's configuration.

use crate::cli::{BackendKind, CacheArg, EngineArg, XattrPolicyArg};
use crate::config::LocalMirrorTable;
use anyhow::Context as _;
use dpfs_backend_passthrough::{CacheMode, EngineKind, LocalMirror, PassthroughConfig, PassthroughFs};
use dpfs_core::FileSystem;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Files the mem backend starts with when no --shared-dir is given.
const DEFAULT_FILES: &[(&str, &[u8])] = &[
    ("hello.txt", b"Hello from dpfs!\n"),
    (
        "README",
        b"This file system is served by `dpfs serve --backend mem`: it lives in the daemon's\n\
memory and is lost when the daemon exits. Start the daemon with --shared-dir DIR to\n\
begin with a copy of DIR instead.\n",
    ),
];

/// Most bytes copied from --shared-dir into memory.
const SEED_LIMIT: u64 = 512 << 20;

/// One thing to create in the mem backend before the guest mounts it (paths are relative
/// to the root, `/`-separated).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seed {
    /// A directory.
    Dir(String),
    /// A regular file and its contents.
    File(String, Vec<u8>),
}

impl Seed {
    /// Number of files in a seed list.
    pub fn files(seed: &[Seed]) -> usize {
        seed.iter().filter(|s| matches!(s, Seed::File(..))).count()
    }
}

/// What every device's backend is built from.
#[derive(Clone, Debug)]
pub struct BackendSpec {
    /// Which backend.
    pub kind: BackendKind,
    /// Entry and attribute timeouts for the guest.
    pub timeout: Duration,
    /// What to seed the mem backend with.
    pub seed: Arc<Vec<Seed>>,
    /// The passthrough backend's configuration (passthrough only).
    pub passthrough: Option<Arc<PassthroughConfig>>,
    /// The nfs backend's configuration (nfs only; see [`with_nfs`](Self::with_nfs)).
    pub nfs: Option<Arc<dpfs_backend_nfs::NfsConfig>>,
    /// The kv backend's opened store (kv only).
    pub kv: Option<Arc<crate::kv::KvSpec>>,
}

impl BackendSpec {
    /// A spec; reads `shared_dir` once (for the mem backend) so that every device gets
    /// the same seed. `passthrough` is required for (and only used by) that backend.
    pub fn new(
        kind: BackendKind,
        timeout: Duration,
        shared_dir: Option<&Path>,
        passthrough: Option<PassthroughConfig>,
    ) -> anyhow::Result<BackendSpec> {
        let seed = match (kind, shared_dir) {
            (BackendKind::Mem, Some(dir)) => read_tree(dir)?,
            (BackendKind::Mem, None) => {
                DEFAULT_FILES.iter().map(|(p, b)| Seed::File(p.to_string(), b.to_vec())).collect()
            }
            (
                BackendKind::Null | BackendKind::Passthrough | BackendKind::Nfs | BackendKind::Kv | BackendKind::Remote,
                _,
            ) => Vec::new(),
        };
        anyhow::ensure!(
            (kind == BackendKind::Passthrough) == passthrough.is_some(),
            "internal: passthrough configuration given for the {kind:?} backend, or missing"
        );
        Ok(BackendSpec {
            kind,
            timeout,
            seed: Arc::new(seed),
            passthrough: passthrough.map(Arc::new),
            nfs: None,
            kv: None,
        })
    }

    /// The spec with the nfs backend's configuration.
    pub fn with_nfs(self, nfs: Option<dpfs_backend_nfs::NfsConfig>) -> BackendSpec {
        BackendSpec { nfs: nfs.map(Arc::new), ..self }
    }

    /// The spec with the kv backend's store (see [`crate::kv::spec`]).
    pub fn with_kv(mut self, kv: Option<Arc<crate::kv::KvSpec>>) -> BackendSpec {
        self.kv = kv;
        self
    }

    /// One backend instance.
    pub fn build(&self) -> Result<Arc<dyn FileSystem>, String> {
        match self.kind {
            BackendKind::Null => Ok(Arc::new(dpfs_backend_null::NullFs::new())),
            BackendKind::Mem => self.build_mem(),
            BackendKind::Kv => self.kv.as_deref().ok_or("no kv store (--kv-url)")?.build(self.timeout),
            BackendKind::Passthrough => {
                let cfg = self.passthrough.as_deref().ok_or("no passthrough configuration")?;
                Ok(Arc::new(PassthroughFs::new(cfg.clone()).map_err(|e| e.to_string())?))
            }
            BackendKind::Nfs => {
                let cfg = self.nfs.as_deref().ok_or("no nfs configuration")?;
                dpfs_backend_nfs::backend(cfg.clone()).map_err(|e| e.to_string())
            }
            // Not a per-device backend: `dpfs serve` runs the forwarding handler instead.
            BackendKind::Remote => Err("the remote backend is a forwarder, not a file system".into()),
        }
    }

    fn build_mem(&self) -> Result<Arc<dyn FileSystem>, String> {
        let cfg = dpfs_backend_mem::MemConfig {
            entry_timeout: self.timeout,
            attr_timeout: self.timeout,
            ..Default::default()
        };
        let fs = dpfs_backend_mem::MemFs::new(cfg);
        for s in self.seed.iter() {
            let r = match s {
                Seed::Dir(p) => fs.seed_dir(p).map_err(|e| format!("cannot create directory {p}: {e}")),
                Seed::File(p, bytes) => fs.seed_file(p, bytes).map_err(|e| format!("cannot create file {p}: {e}")),
            };
            r?;
        }
        Ok(Arc::new(fs))
    }
}

/// The backend to run: the one asked for, else passthrough when there is a directory to
/// share, else mem.
pub fn choose(asked: Option<BackendKind>, shared_dir: Option<&Path>) -> BackendKind {
    asked.unwrap_or(if shared_dir.is_some() { BackendKind::Passthrough } else { BackendKind::Mem })
}

/// Refuses `--readonly` for backends that would not enforce it.
pub fn check_readonly(kind: BackendKind, readonly: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        !readonly || kind == BackendKind::Passthrough,
        "--readonly is only enforced by the passthrough backend; refusing to serve the {} backend writable",
        format!("{kind:?}").to_lowercase()
    );
    Ok(())
}

/// Warns that `--xattr-policy` means nothing to a backend without host files.
pub fn check_xattr_policy(kind: BackendKind, policy: Option<XattrPolicyArg>) {
    if let (Some(p), false) = (policy, kind == BackendKind::Passthrough) {
        tracing::warn!(policy = ?p, backend = ?kind,
            "--xattr-policy only applies to the passthrough backend (host files); ignored");
    }
}

/// The passthrough configuration: `[local_mirror]` keys first (through
/// [`PassthroughConfig::from_local_mirror`]), then the command line on top. `dir` is the
/// merged directory (--shared-dir, else `[local_mirror] dir`).
pub fn passthrough_config(
    dir: Option<&Path>,
    mirror: Option<&LocalMirrorTable>,
    cache: Option<CacheArg>,
    readonly: bool,
    engine: Option<EngineArg>,
    xattr_policy: Option<XattrPolicyArg>,
) -> anyhow::Result<PassthroughConfig> {
    let dir = dir.context("the passthrough backend needs a directory: --shared-dir DIR (or [local_mirror] dir)")?;
    anyhow::ensure!(dir.is_dir(), "--shared-dir {}: not a directory", dir.display());
    let mut cfg = match mirror {
        Some(m) => {
            let lm = LocalMirror {
                dir: dir.to_path_buf(),
                metadata_timeout: m.metadata_timeout.unwrap_or(1.0),
                directio_mode: m.directio_mode.unwrap_or(0),
                uring_cq_polling: m.uring_cq_polling.unwrap_or(false),
                uring_cq_polling_nthreads: m.uring_cq_polling_nthreads.unwrap_or(1),
                xattr_policy: m.xattr_policy()?.unwrap_or_default(),
            };
            let mut c = PassthroughConfig::from_local_mirror(&lm).context("[local_mirror]")?;
            if m.metadata_timeout.is_none() {
                // No timeout in the file: the default cache policy, not DPFS's fixed one.
                (c.cache, c.entry_timeout, c.attr_timeout) = (CacheMode::Auto, None, None);
            }
            c
        }
        None => PassthroughConfig::new(dir),
    };
    if let Some(cache) = cache {
        cfg.cache = match cache {
            CacheArg::Auto => CacheMode::Auto,
            CacheArg::Always => CacheMode::Always,
            CacheArg::Never => CacheMode::Never,
            CacheArg::Metadata => CacheMode::Metadata,
        };
        (cfg.entry_timeout, cfg.attr_timeout) = (None, None);
    }
    cfg.readonly = readonly;
    if let Some(p) = xattr_policy {
        cfg.xattr_policy = p.into();
    }
    cfg.engine = match engine {
        Some(EngineArg::Sync) => EngineKind::Sync,
        Some(EngineArg::IoUring) => EngineKind::IoUring { entries: URING_ENTRIES },
        Some(EngineArg::Aio) => EngineKind::Aio { nr_events: URING_ENTRIES },
        None if in_memory_fs(dir) => EngineKind::Sync,
        None => EngineKind::IoUring { entries: URING_ENTRIES },
    };
    Ok(cfg)
}

/// Whether `dir` is on tmpfs or ramfs. Their I/O is a memory copy that never waits for a
/// device, so the synchronous engine is the fastest there; io_uring cannot even try their
/// reads without blocking first (no RWF_NOWAIT on tmpfs), so every read takes the ring:
/// 4 KiB random reads at QD 32, hybrid polling, ran at 277k IOPS against 438k with sync
/// (`ci/bench-passthrough.sh` and `dpfs bench`).
fn in_memory_fs(dir: &Path) -> bool {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    const RAMFS_MAGIC: i64 = 0x8584_58f6;
    let Ok(c) = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes()) else { return false };
    // SAFETY: all-zero is a valid statfs, which statfs fills from a NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: valid path and out-pointer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return false;
    }
    matches!(st.f_type as i64, TMPFS_MAGIC | RAMFS_MAGIC)
}

/// Submission-queue entries of each passthrough io_uring ring (and events of each AIO context).
const URING_ENTRIES: u32 = 512;

/// Process-wide settings a backend needs before it serves: passthrough creates files with
/// the guest's mode and umask, so the daemon's own umask must not mask them again.
pub fn prepare_process(kind: BackendKind) {
    if kind == BackendKind::Passthrough {
        // SAFETY: umask only sets the process file-creation mask.
        let old = unsafe { libc::umask(0) };
        tracing::info!(previous = format_args!("{old:04o}"), "passthrough: umask set to 0 (the guest's umask applies)");
    }
}

/// Every directory and regular file under `dir`, recursively, parents first. Symlinks,
/// special files and names that are not UTF-8 are skipped with a warning.
fn read_tree(dir: &Path) -> anyhow::Result<Vec<Seed>> {
    anyhow::ensure!(dir.is_dir(), "--shared-dir {}: not a directory", dir.display());
    let mut out = Vec::new();
    let mut total = 0u64;
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let mut entries: Vec<_> = std::fs::read_dir(&abs)
            .with_context(|| format!("cannot read {}", abs.display()))?
            .collect::<Result<_, _>>()
            .with_context(|| format!("cannot read {}", abs.display()))?;
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let Some(name) = e.file_name().to_str().map(str::to_owned) else {
                tracing::warn!(path = %e.path().display(), "name is not UTF-8; not copied");
                continue;
            };
            let rel = if rel.is_empty() { name } else { format!("{rel}/{name}") };
            let ft = e.file_type()?;
            if ft.is_dir() {
                out.push(Seed::Dir(rel.clone()));
                stack.push(rel);
            } else if ft.is_file() {
                let bytes = std::fs::read(e.path()).with_context(|| format!("cannot read {}", e.path().display()))?;
                total += bytes.len() as u64;
                anyhow::ensure!(
                    total <= SEED_LIMIT,
                    "--shared-dir {}: more than {} MiB of files to copy into memory",
                    dir.display(),
                    SEED_LIMIT >> 20
                );
                out.push(Seed::File(rel, bytes));
            } else {
                tracing::warn!(path = %e.path().display(), "not a regular file or directory; not copied");
            }
        }
    }
    Ok(out)
}

/// The guests' entry and attribute timeout: from --cache, else `[local_mirror]
/// metadata_timeout`, else one second.
pub fn entry_timeout(cache: Option<CacheArg>, mirror: Option<&LocalMirrorTable>) -> anyhow::Result<Duration> {
    Ok(match cache {
        Some(CacheArg::Auto) => Duration::from_secs(1),
        Some(CacheArg::Always | CacheArg::Metadata) => Duration::from_secs(86400),
        Some(CacheArg::Never) => Duration::ZERO,
        None => match mirror.and_then(|m| m.metadata_timeout) {
            Some(t) => Duration::try_from_secs_f64(t).context("[local_mirror] metadata_timeout")?,
            None => Duration::from_secs(1),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_backend_passthrough::DirectIo;

    fn mirror(timeout: Option<f64>, directio: Option<u32>) -> LocalMirrorTable {
        LocalMirrorTable { metadata_timeout: timeout, directio_mode: directio, ..Default::default() }
    }

    #[test]
    fn default_backend_follows_the_shared_dir() {
        assert_eq!(choose(None, Some(Path::new("/srv"))), BackendKind::Passthrough);
        assert_eq!(choose(None, None), BackendKind::Mem);
        assert_eq!(choose(Some(BackendKind::Mem), Some(Path::new("/srv"))), BackendKind::Mem);
        assert!(check_readonly(BackendKind::Passthrough, true).is_ok());
        assert!(check_readonly(BackendKind::Mem, false).is_ok());
        let e = check_readonly(BackendKind::Mem, true).unwrap_err().to_string();
        assert!(e.contains("passthrough") && e.contains("mem"), "{e}");
    }

    #[test]
    fn passthrough_needs_a_directory() {
        let e = passthrough_config(None, None, None, false, None, None).unwrap_err().to_string();
        assert!(e.contains("--shared-dir"), "{e}");
        let e = passthrough_config(Some(Path::new("/nonexistent/x")), None, None, false, None, None).unwrap_err();
        assert!(e.to_string().contains("not a directory"), "{e}");
    }

    #[test]
    fn cli_flags_map_to_passthrough_config() {
        let dir = std::env::temp_dir();
        let c = passthrough_config(Some(&dir), None, None, false, None, None).unwrap();
        assert_eq!((c.root.as_path(), c.cache, c.readonly), (dir.as_path(), CacheMode::Auto, false));
        let default =
            if in_memory_fs(&dir) { EngineKind::Sync } else { EngineKind::IoUring { entries: URING_ENTRIES } };
        assert_eq!(c.engine, default);
        let c = passthrough_config(Some(&dir), None, None, false, Some(EngineArg::IoUring), None).unwrap();
        assert_eq!(c.engine, EngineKind::IoUring { entries: URING_ENTRIES });
        let c =
            passthrough_config(Some(&dir), None, Some(CacheArg::Metadata), true, Some(EngineArg::Sync), None).unwrap();
        assert_eq!((c.cache, c.readonly, c.engine), (CacheMode::Metadata, true, EngineKind::Sync));
        let c = passthrough_config(Some(&dir), None, None, false, Some(EngineArg::Aio), None).unwrap();
        assert_eq!(c.engine, EngineKind::Aio { nr_events: URING_ENTRIES });
        for (arg, mode) in [
            (CacheArg::Auto, CacheMode::Auto),
            (CacheArg::Always, CacheMode::Always),
            (CacheArg::Never, CacheMode::Never),
        ] {
            assert_eq!(passthrough_config(Some(&dir), None, Some(arg), false, None, None).unwrap().cache, mode);
        }
    }

    #[test]
    fn tmpfs_and_ramfs_are_recognised() {
        assert!(in_memory_fs(Path::new("/dev/shm")) || !Path::new("/dev/shm").is_dir());
        assert!(!in_memory_fs(Path::new("/proc")));
        assert!(!in_memory_fs(Path::new("/nonexistent")));
    }

    #[test]
    fn local_mirror_keys_apply_and_flags_override_them() {
        let dir = std::env::temp_dir();
        let m = mirror(Some(0.0), Some(2));
        let c = passthrough_config(Some(&dir), Some(&m), None, false, None, None).unwrap();
        assert_eq!((c.cache, c.entry_ttl(), c.directio), (CacheMode::Never, Duration::ZERO, DirectIo::Always));
        let c = passthrough_config(Some(&dir), Some(&m), Some(CacheArg::Always), false, None, None).unwrap();
        assert_eq!((c.cache, c.entry_ttl()), (CacheMode::Always, Duration::from_secs(86400)));
        assert_eq!(c.directio, DirectIo::Always);
        // Only a dir in the file: the default policy.
        let c = passthrough_config(Some(&dir), Some(&mirror(None, None)), None, false, None, None).unwrap();
        assert_eq!(
            (c.cache, c.entry_ttl(), c.directio),
            (CacheMode::Auto, Duration::from_secs(1), DirectIo::Passthrough)
        );
        let e = passthrough_config(Some(&dir), Some(&mirror(None, Some(7))), None, false, None, None).unwrap_err();
        assert!(format!("{e:#}").contains("directio_mode"), "{e:#}");
    }

    #[test]
    fn xattr_policy_default_key_and_flag() {
        use dpfs_backend_passthrough::XattrPolicy;
        let dir = std::env::temp_dir();
        let policy = |m: Option<&LocalMirrorTable>, arg| passthrough_config(Some(&dir), m, None, false, None, arg);
        assert_eq!(policy(None, None).unwrap().xattr_policy, XattrPolicy::Map);
        let refuse = LocalMirrorTable { xattr_policy: Some("refuse".into()), ..Default::default() };
        assert_eq!(policy(Some(&refuse), None).unwrap().xattr_policy, XattrPolicy::Refuse);
        let c = policy(Some(&refuse), Some(XattrPolicyArg::Passthrough)).unwrap();
        assert_eq!(c.xattr_policy, XattrPolicy::Passthrough);
        assert_eq!(policy(None, Some(XattrPolicyArg::Refuse)).unwrap().xattr_policy, XattrPolicy::Refuse);
        let bad = LocalMirrorTable { xattr_policy: Some("none".into()), ..Default::default() };
        let e = policy(Some(&bad), None).unwrap_err();
        assert!(format!("{e:#}").contains("xattr_policy"), "{e:#}");
    }
}
