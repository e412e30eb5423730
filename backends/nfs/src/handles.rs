//! Open files and directories: FUSE handle numbers are keys of this table. A file handle
//! holds its NFS open (stateid) and the verifier of its uncommitted UNSTABLE writes; a
//! directory handle holds the cookie verifier of its READDIR pages.

use dpfs_core::Errno;
use dpfs_nfs4::ops::{StateId, Verifier};
use dpfs_nfs4::FileHandle;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Uncommitted writes of an open file.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Dirty {
    /// Nothing to commit.
    #[default]
    Clean,
    /// UNSTABLE writes under this write verifier await a COMMIT.
    Unstable(Verifier),
    /// The verifier changed between unstable writes: the server restarted and may have
    /// lost data; the next fsync reports EIO.
    Lost,
}

/// An open file.
#[derive(Debug)]
pub struct OpenFile {
    /// The file's server handle.
    pub fh: FileHandle,
    /// The open's stateid.
    pub stateid: StateId,
    /// Uncommitted writes.
    pub dirty: Mutex<Dirty>,
}

/// An open directory.
#[derive(Debug, Default)]
pub struct OpenDir {
    /// The cookie verifier of the last page read.
    pub verifier: Mutex<Verifier>,
}

/// What a handle number names.
#[derive(Debug)]
pub enum Handle {
    /// A file.
    File(OpenFile),
    /// A directory.
    Dir(OpenDir),
}

/// Handle number → handle.
#[derive(Debug)]
pub struct Handles {
    map: Mutex<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
    max: usize,
}

impl Handles {
    /// An empty table of at most `max` handles.
    pub fn new(max: usize) -> Self {
        Self { map: Mutex::new(HashMap::new()), next: AtomicU64::new(1), max: max.max(1) }
    }

    /// A fresh handle number (used as the open owner too, so every open has its own state).
    pub fn reserve(&self) -> Result<u64, Errno> {
        if self.map.lock().len() >= self.max {
            return Err(Errno::EMFILE);
        }
        Ok(self.next.fetch_add(1, Ordering::Relaxed))
    }

    /// Stores `h` under the reserved number `n`.
    pub fn insert(&self, n: u64, h: Handle) {
        self.map.lock().insert(n, Arc::new(h));
    }

    /// The handle `n`.
    pub fn get(&self, n: u64) -> Result<Arc<Handle>, Errno> {
        self.map.lock().get(&n).cloned().ok_or(Errno::EBADF)
    }

    /// The open file `n` (EBADF if it is not one).
    pub fn file(&self, n: u64) -> Result<Arc<Handle>, Errno> {
        let h = self.get(n)?;
        match *h {
            Handle::File(_) => Ok(h),
            Handle::Dir(_) => Err(Errno::EBADF),
        }
    }

    /// Removes handle `n`.
    pub fn remove(&self, n: u64) -> Option<Arc<Handle>> {
        self.map.lock().remove(&n)
    }

    /// Every open file (for shutdown).
    pub fn drain(&self) -> Vec<Arc<Handle>> {
        self.map.lock().drain().map(|(_, h)| h).collect()
    }
}

impl Handle {
    /// The open file, if this is one.
    pub fn as_file(&self) -> Option<&OpenFile> {
        match self {
            Handle::File(f) => Some(f),
            Handle::Dir(_) => None,
        }
    }

    /// The open directory, if this is one.
    pub fn as_dir(&self) -> Option<&OpenDir> {
        match self {
            Handle::Dir(d) => Some(d),
            Handle::File(_) => None,
        }
    }
}
