//! The tests' guest: core's typed guest over a `PassthroughFs` serving a temp directory.
#![allow(dead_code)]

use dpfs_backend_passthrough::{PassthroughConfig, PassthroughFs};
use dpfs_core::abi;
#[allow(unused_imports)] // each test binary uses a different part
pub use dpfs_core::guest::{body, ROOT};
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Core's guest plus the shared directory it serves (removed when the last clone drops).
#[derive(Clone)]
pub struct Guest {
    pub inner: dpfs_core::guest::Guest<PassthroughFs>,
    pub dir: Arc<TempDir>,
}

impl Deref for Guest {
    type Target = dpfs_core::guest::Guest<PassthroughFs>;
    fn deref(&self) -> &Self::Target {
        &self.inner
    }
}

impl Guest {
    /// A guest over a fresh temp directory, configured by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut PassthroughConfig)) -> Guest {
        // SAFETY: umask only affects file creation; the tests pass explicit modes.
        unsafe { libc::umask(0) };
        let dir = Arc::new(TempDir::new("share"));
        let mut cfg = PassthroughConfig::new(dir.path());
        tweak(&mut cfg);
        let fs = Arc::new(PassthroughFs::new(cfg).expect("passthrough fs"));
        let (inner, init) = dpfs_core::guest::Guest::new(fs).expect("INIT");
        assert_ne!(init.flags as u64 & abi::init::POSIX_LOCKS, 0);
        Guest { inner, dir }
    }

    /// A guest over a fresh temp directory whose data path is `engine`.
    pub fn with_engine(engine: Box<dyn dpfs_backend_passthrough::Engine>) -> Guest {
        // SAFETY: as in `with`.
        unsafe { libc::umask(0) };
        let dir = Arc::new(TempDir::new("share"));
        let fs =
            Arc::new(PassthroughFs::with_engine(PassthroughConfig::new(dir.path()), engine).expect("passthrough fs"));
        let (inner, _) = dpfs_core::guest::Guest::new(fs).expect("INIT");
        Guest { inner, dir }
    }

    pub fn default_fs() -> Guest {
        Guest::with(|_| {})
    }

    /// Host path of `rel` inside the share.
    pub fn host(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// A directory under /tmp removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "dpfs-pt-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("mkdir temp");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
