//! The node table: FUSE node ids are keys of this table, each naming a server file handle
//! and its file id; hard links share a node, a reused file id with a new handle gets a new
//! one. Bounded: past `max` nodes a new one is refused (ENFILE). Generic over what names a
//! file on the server: an NFSv4 file handle for dpfs's client, a path for the libnfs engine.

use dpfs_core::abi::ROOT_ID;
use dpfs_core::Errno;
use dpfs_nfs4::FileHandle;
use parking_lot::Mutex;
use std::collections::HashMap;

#[derive(Debug)]
struct Node<H> {
    fh: H,
    fileid: u64,
    /// Lookups the guest holds (the root: never forgotten).
    nlookup: u64,
}

#[derive(Debug)]
struct Table<H> {
    by_id: HashMap<u64, Node<H>>,
    by_fileid: HashMap<u64, u64>,
    next: u64,
}

/// Node id → (file handle, file id).
#[derive(Debug)]
pub struct Nodes<H = FileHandle> {
    t: Mutex<Table<H>>,
    max: usize,
}

impl<H: Clone + PartialEq> Nodes<H> {
    /// A table holding the export's root as [`ROOT_ID`].
    pub fn new(root: H, root_fileid: u64, max: usize) -> Self {
        let mut by_id = HashMap::new();
        by_id.insert(ROOT_ID, Node { fh: root, fileid: root_fileid, nlookup: 1 });
        let mut by_fileid = HashMap::new();
        by_fileid.insert(root_fileid, ROOT_ID);
        Self { t: Mutex::new(Table { by_id, by_fileid, next: ROOT_ID + 1 }), max: max.max(2) }
    }

    /// The file handle of node `id`; ENOENT for an unknown node.
    pub fn fh(&self, id: u64) -> Result<H, Errno> {
        self.t.lock().by_id.get(&id).map(|n| n.fh.clone()).ok_or(Errno::ENOENT)
    }

    /// The file handle and file id of node `id`; ENOENT for an unknown node.
    #[cfg_attr(not(feature = "libnfs"), allow(dead_code))]
    pub fn get(&self, id: u64) -> Result<(H, u64), Errno> {
        self.t.lock().by_id.get(&id).map(|n| (n.fh.clone(), n.fileid)).ok_or(Errno::ENOENT)
    }

    /// The node of `fh` (file id `fileid`), with one more lookup held by the guest.
    pub fn remember(&self, fh: H, fileid: u64) -> Result<u64, Errno> {
        let mut t = self.t.lock();
        if let Some(&id) = t.by_fileid.get(&fileid) {
            if let Some(n) = t.by_id.get_mut(&id) {
                if n.fh == fh {
                    n.nlookup = n.nlookup.saturating_add(1);
                    return Ok(id);
                }
            }
        }
        if t.by_id.len() >= self.max {
            return Err(Errno::ENFILE);
        }
        let id = t.next;
        t.next += 1;
        t.by_id.insert(id, Node { fh, fileid, nlookup: 1 });
        t.by_fileid.insert(fileid, id);
        Ok(id)
    }

    /// Drops `n` of the guest's lookups of `id`; the node goes with its last one.
    pub fn forget(&self, id: u64, n: u64) {
        if id == ROOT_ID {
            return;
        }
        let mut t = self.t.lock();
        let Some(node) = t.by_id.get_mut(&id) else { return };
        node.nlookup = node.nlookup.saturating_sub(n);
        if node.nlookup == 0 {
            let fileid = node.fileid;
            t.by_id.remove(&id);
            if t.by_fileid.get(&fileid) == Some(&id) {
                t.by_fileid.remove(&fileid);
            }
        }
    }

    /// Nodes held.
    pub fn len(&self) -> usize {
        self.t.lock().by_id.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fh(b: u8) -> FileHandle {
        FileHandle::new(&[b; 8]).unwrap()
    }

    #[test]
    fn links_share_a_node_and_reused_fileids_do_not() {
        let n: Nodes = Nodes::new(fh(0), 2, 4);
        let a = n.remember(fh(1), 10).unwrap();
        assert_eq!(n.remember(fh(1), 10).unwrap(), a);
        let b = n.remember(fh(9), 10).unwrap(); // same inode number, new object
        assert_ne!(a, b);
        assert_eq!(n.fh(a).unwrap(), fh(1));
        n.remember(fh(3), 30).unwrap();
        assert_eq!(n.remember(fh(4), 40), Err(Errno::ENFILE));
        n.forget(a, 1);
        assert_eq!(n.fh(a).unwrap(), fh(1));
        n.forget(a, 1);
        assert_eq!(n.fh(a), Err(Errno::ENOENT));
        assert_eq!(n.fh(b).unwrap(), fh(9)); // b's file id mapping survived a's forget
        n.forget(ROOT_ID, 100);
        assert_eq!(n.fh(ROOT_ID).unwrap(), fh(0));
    }
}
