//! Building one backend instance per device, and seeding the mem backend.

use crate::cli::BackendKind;
use anyhow::Context as _;
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
}

impl BackendSpec {
    /// A spec; reads `shared_dir` once (for the mem backend) so that every device gets
    /// the same seed.
    pub fn new(kind: BackendKind, timeout: Duration, shared_dir: Option<&Path>) -> anyhow::Result<BackendSpec> {
        let seed = match (kind, shared_dir) {
            (BackendKind::Mem, Some(dir)) => read_tree(dir)?,
            (BackendKind::Mem, None) => {
                DEFAULT_FILES.iter().map(|(p, b)| Seed::File(p.to_string(), b.to_vec())).collect()
            }
            (BackendKind::Null, _) => Vec::new(),
        };
        Ok(BackendSpec { kind, timeout, seed: Arc::new(seed) })
    }

    /// One backend instance.
    pub fn build(&self) -> Result<Arc<dyn FileSystem>, String> {
        match self.kind {
            BackendKind::Null => Ok(Arc::new(dpfs_backend_null::NullFs::new())),
            BackendKind::Mem => self.build_mem(),
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
