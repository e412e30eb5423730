//! Open files and directories: FUSE handle numbers are keys of this table. A file handle
//! holds its NFS open (stateid) and the verifier of its uncommitted UNSTABLE writes; a
//! directory handle holds the cookie verifier of its READDIR pages.

use dpfs_core::Errno;
use dpfs_nfs4::ops::{StateId, Verifier};
use dpfs_nfs4::{Creds, FileHandle};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Most bytes of UNSTABLE writes kept for a resend before they are committed at once.
pub const MAX_UNSTABLE: usize = 64 << 20;

/// UNSTABLE writes of an open file not yet committed: kept (offset and bytes) so that they
/// can be sent again if the server's write verifier changes before their COMMIT (it
/// restarted and may have dropped them).
#[derive(Debug, Default)]
pub struct Unstable {
    /// The write verifier they were written under.
    pub verifier: Option<Verifier>,
    /// The writes, in order: (sequence number, offset, bytes).
    pub writes: Vec<(u64, u64, Vec<u8>)>,
    /// Their bytes.
    pub bytes: usize,
    /// The sequence number of the next write kept (a COMMIT covers those before it was sent).
    pub next: u64,
}

/// An open file.
#[derive(Debug)]
pub struct OpenFile {
    /// The file's server handle.
    pub fh: FileHandle,
    /// The open's stateid, and the client epoch it was obtained in.
    pub stateid: Mutex<(StateId, u64)>,
    /// OPEN4_SHARE_ACCESS_* it was opened with.
    pub share: u32,
    /// Its open owner (the handle number).
    pub owner: u64,
    /// Who opened it (a re-open after a server restart runs as them).
    pub creds: Creds,
    /// Writes awaiting COMMIT.
    pub unstable: Mutex<Unstable>,
    /// Lock stateid (and client epoch) of each FUSE lock owner with locks on this open.
    pub locks: Mutex<HashMap<u64, (StateId, u64)>>,
    /// The ranges each FUSE lock owner holds (reclaimed after a server restart).
    pub held: Mutex<HashMap<u64, crate::ranges::Ranges>>,
    /// Taken while the open's state on the server changes as a whole: its reclaim after a
    /// server restart, an unlock, its release. `true` once released: a reclaim that comes
    /// later leaves it alone (it would re-create an open nobody closes).
    pub released: tokio::sync::Mutex<bool>,
}

/// An open directory.
#[derive(Debug, Default)]
pub struct OpenDir {
    /// The cookie verifier of the last page read.
    pub verifier: Mutex<Verifier>,
}

/// What a handle number names (each lives in an `Arc` of the table: the size difference of
/// the variants costs one allocation's slack, not a copy).
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
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

    /// Every open handle, left in place (to reclaim after a server restart).
    pub fn all(&self) -> Vec<Arc<Handle>> {
        self.map.lock().values().cloned().collect()
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
