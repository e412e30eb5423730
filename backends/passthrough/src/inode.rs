//! The inode table: node ids → host inodes, identified by (st_dev, st_ino), reachable
//! through a file handle (plus an LRU of `O_PATH` fds) or, as a fallback, a pinned fd.

use crate::fdcache::FdCache;
use crate::fhandle::FileHandle;
use crate::sys;
use dpfs_core::Errno;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

/// The root's node id.
pub(crate) const ROOT_ID: u64 = 1;

/// Host identity of an inode.
pub(crate) type Key = (u64, u64);

/// How to reach the host inode.
enum Source {
    /// Re-openable through a file handle (its fd lives in the LRU).
    Handle(FileHandle),
    /// A pinned `O_PATH` descriptor (root, tmpfiles, file systems without handles).
    Fd(Arc<OwnedFd>),
}

struct Node {
    key: Key,
    nlookup: u64,
    src: Source,
}

struct Inner {
    by_id: HashMap<u64, Node>,
    by_key: HashMap<Key, u64>,
    next: u64,
    pinned: usize,
}

/// Bounded table of the inodes the guest holds lookup references on.
pub(crate) struct InodeTable {
    inner: Mutex<Inner>,
    cache: FdCache,
    /// A non-`O_PATH` descriptor of the root: `open_by_handle_at` refuses `O_PATH` ones.
    mount_fd: OwnedFd,
    root_key: Key,
    root_mount: Option<i32>,
    max_inodes: usize,
    max_pinned: usize,
}

impl InodeTable {
    /// A table whose root is `root` (an `O_PATH` fd of the shared directory); `mount_fd`
    /// is the same directory opened for reading.
    pub(crate) fn new(
        root: OwnedFd,
        mount_fd: OwnedFd,
        use_handles: bool,
        max_fds: usize,
        max_inodes: usize,
    ) -> Result<Self, Errno> {
        let st = sys::fstat(root.as_fd())?;
        let root_key = (st.st_dev, st.st_ino);
        let root_mount = if use_handles { FileHandle::of(root.as_fd()).ok().map(|h| h.mount_id) } else { None };
        let root = Arc::new(root);
        let mut by_id = HashMap::new();
        by_id.insert(ROOT_ID, Node { key: root_key, nlookup: 1, src: Source::Fd(root) });
        let by_key = HashMap::from([(root_key, ROOT_ID)]);
        Ok(InodeTable {
            inner: Mutex::new(Inner { by_id, by_key, next: ROOT_ID + 1, pinned: 0 }),
            cache: FdCache::new(max_fds),
            mount_fd,
            root_key,
            root_mount,
            max_inodes: max_inodes.max(2),
            max_pinned: max_fds.max(1),
        })
    }

    /// The root opened for reading (SYNCFS, file-handle reopening).
    pub(crate) fn mount_fd(&self) -> BorrowedFd<'_> {
        self.mount_fd.as_fd()
    }

    /// True if inodes are reached through file handles.
    pub(crate) fn uses_handles(&self) -> bool {
        self.root_mount.is_some()
    }

    /// An `O_PATH` descriptor of node `id` (ENOENT for unknown ids). Must be called with
    /// the server's own credentials: reopening a handle needs `CAP_DAC_READ_SEARCH`.
    pub(crate) fn fd(&self, id: u64) -> Result<Arc<OwnedFd>, Errno> {
        let (handle, key) = {
            let g = self.inner.lock();
            let n = g.by_id.get(&id).ok_or(Errno::ENOENT)?;
            match &n.src {
                Source::Fd(fd) => return Ok(fd.clone()),
                Source::Handle(h) => (h.clone(), n.key),
            }
        };
        if let Some(fd) = self.cache.get(id) {
            return Ok(fd);
        }
        let fd = handle.open(self.mount_fd.as_fd()).map_err(|e| if e == Errno::ESTALE { Errno::ENOENT } else { e })?;
        let st = sys::fstat(fd.as_fd())?;
        if (st.st_dev, st.st_ino) != key {
            return Err(Errno::ESTALE);
        }
        let fd = Arc::new(fd);
        self.cache.put(id, fd.clone());
        Ok(fd)
    }

    /// Node id already assigned to host inode `key`, if any.
    pub(crate) fn id_of(&self, key: Key) -> Option<u64> {
        self.inner.lock().by_key.get(&key).copied()
    }

    /// Adds one lookup reference to the inode `fd` refers to, creating its node if needed.
    /// `pin` keeps the descriptor instead of a file handle (unlinked tmpfiles).
    pub(crate) fn insert(&self, fd: OwnedFd, st: &libc::stat, pin: bool) -> Result<u64, Errno> {
        let key = (st.st_dev, st.st_ino);
        if st.st_dev != self.root_key.0 {
            return Err(Errno::EXDEV);
        }
        let handle = match self.root_mount {
            Some(m) if !pin => {
                let h = FileHandle::of(fd.as_fd())?;
                if h.mount_id != m {
                    // Another mount of the same file system (bind mount) under the share.
                    return Err(Errno::EXDEV);
                }
                Some(h)
            }
            _ => None,
        };
        let mut g = self.inner.lock();
        if let Some(&id) = g.by_key.get(&key) {
            // (same inode, node reached through a handle)
            let same = match (g.by_id.get(&id).map(|n| &n.src), &handle) {
                (Some(Source::Handle(old)), Some(new)) => (old == new).then_some(true),
                (Some(Source::Fd(_)), _) => Some(false),
                _ => None,
            };
            if let Some(by_handle) = same {
                if let Some(n) = g.by_id.get_mut(&id) {
                    n.nlookup += 1;
                }
                drop(g);
                if by_handle {
                    // Warm the LRU with the descriptor we already have.
                    self.cache.put(id, Arc::new(fd));
                }
                return Ok(id);
            }
            // The inode number was reused by a new file: the old node keeps its id until forgotten.
            g.by_key.remove(&key);
        }
        if g.by_id.len() >= self.max_inodes {
            return Err(Errno::ENFILE);
        }
        let id = g.next;
        let (src, cache_fd) = match handle {
            Some(h) => (Source::Handle(h), Some(fd)),
            None => {
                if g.pinned >= self.max_pinned {
                    return Err(Errno::ENFILE);
                }
                g.pinned += 1;
                (Source::Fd(Arc::new(fd)), None)
            }
        };
        g.next += 1;
        g.by_id.insert(id, Node { key, nlookup: 1, src });
        g.by_key.insert(key, id);
        drop(g);
        if let Some(fd) = cache_fd {
            self.cache.put(id, Arc::new(fd));
        }
        Ok(id)
    }

    /// Closes the cached descriptor of host inode `key`, if any, so a removed file's space
    /// is not held by the cache (nfsd-style silly renames are avoided too).
    pub(crate) fn uncache(&self, key: Key) {
        let id = self.inner.lock().by_key.get(&key).copied();
        if let Some(id) = id {
            self.cache.remove(id);
        }
    }

    /// Drops `n` lookup references of `id`; the node goes when none are left.
    pub(crate) fn forget(&self, id: u64, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let mut g = self.inner.lock();
        let Some(node) = g.by_id.get_mut(&id) else { return };
        node.nlookup = node.nlookup.saturating_sub(n);
        if node.nlookup > 0 {
            return;
        }
        if let Some(node) = g.by_id.remove(&id) {
            if g.by_key.get(&node.key) == Some(&id) {
                g.by_key.remove(&node.key);
            }
            if matches!(node.src, Source::Fd(_)) {
                g.pinned -= 1;
            }
        }
        drop(g);
        self.cache.remove(id);
    }

    /// Forgets every node but the root (DESTROY).
    pub(crate) fn clear(&self) {
        let mut g = self.inner.lock();
        g.by_id.retain(|&id, _| id == ROOT_ID);
        g.by_key.retain(|_, id| *id == ROOT_ID);
        g.pinned = 0;
        drop(g);
        self.cache.clear();
    }

    /// Number of nodes (root included).
    pub(crate) fn len(&self) -> usize {
        self.inner.lock().by_id.len()
    }

    /// Descriptors held by the LRU.
    pub(crate) fn cached_fds(&self) -> usize {
        self.cache.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(p: &str, flags: i32) -> OwnedFd {
        let c = std::ffi::CString::new(p).unwrap();
        // SAFETY: NUL-terminated path; fresh descriptor.
        sys::owned(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC) } as libc::c_long).unwrap()
    }

    #[test]
    fn ids_are_stable_refcounted_and_never_reused() {
        let dir = std::env::temp_dir().join(format!("dpfs-pt-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("f"), b"x").unwrap();
        let d = dir.to_str().unwrap();
        let t = InodeTable::new(open(d, libc::O_PATH), open(d, libc::O_RDONLY), true, 8, 100).unwrap();
        let f = || open(&format!("{d}/f"), libc::O_PATH);
        let st = sys::fstat(f().as_fd()).unwrap();
        let a = t.insert(f(), &st, false).unwrap();
        assert_eq!(t.insert(f(), &st, false).unwrap(), a);
        t.forget(a, 1);
        assert!(t.fd(a).is_ok());
        t.forget(a, 1);
        assert_eq!(t.fd(a).unwrap_err(), Errno::ENOENT);
        let b = t.insert(f(), &st, false).unwrap();
        assert_ne!(a, b, "node ids are not reused");
        let root = t.fd(ROOT_ID).unwrap();
        let rst = sys::fstat(root.as_fd()).unwrap();
        assert_eq!(t.id_of((rst.st_dev, rst.st_ino)), Some(ROOT_ID));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
