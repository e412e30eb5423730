//! Open files and directories: handle numbers are keys into a bounded table.

use dpfs_core::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// An open file or directory.
pub(crate) struct Handle {
    /// Node id it was opened on (checked against every request's node id).
    pub ino: u64,
    /// The open descriptor.
    pub fd: Arc<OwnedFd>,
    /// Serializes seek + getdents on directories.
    pub dir_lock: Mutex<()>,
}

/// Bounded table of open handles.
pub(crate) struct HandleTable {
    map: Mutex<HashMap<u64, Arc<Handle>>>,
    next: AtomicU64,
    max: usize,
}

impl HandleTable {
    /// A table of at most `max` handles.
    pub(crate) fn new(max: usize) -> HandleTable {
        HandleTable { map: Mutex::new(HashMap::new()), next: AtomicU64::new(1), max: max.max(1) }
    }

    /// Registers an open descriptor of node `ino`; EMFILE if the table is full.
    pub(crate) fn insert(&self, ino: u64, fd: OwnedFd) -> Result<u64, Errno> {
        let mut m = self.map.lock();
        if m.len() >= self.max {
            return Err(Errno::EMFILE);
        }
        let fh = self.next.fetch_add(1, Ordering::Relaxed);
        m.insert(fh, Arc::new(Handle { ino, fd: Arc::new(fd), dir_lock: Mutex::new(()) }));
        Ok(fh)
    }

    /// Handle `fh`, which must belong to node `ino` (EBADF otherwise).
    pub(crate) fn get(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        match self.map.lock().get(&fh) {
            Some(h) if h.ino == ino => Ok(h.clone()),
            _ => Err(Errno::EBADF),
        }
    }

    /// Removes handle `fh` of node `ino`.
    pub(crate) fn remove(&self, fh: u64, ino: u64) -> Result<Arc<Handle>, Errno> {
        let mut m = self.map.lock();
        match m.get(&fh) {
            Some(h) if h.ino == ino => m.remove(&fh).ok_or(Errno::EBADF),
            _ => Err(Errno::EBADF),
        }
    }

    /// Closes everything (DESTROY).
    pub(crate) fn clear(&self) {
        self.map.lock().clear();
    }

    /// Open handles now.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}
