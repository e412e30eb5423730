//! Namespace operations on one name: LOOKUP, FORGET, MKNOD/MKDIR/SYMLINK (and the creating
//! half of CREATE/TMPFILE), LINK, UNLINK and RMDIR.

use crate::data::SparseData;
use crate::dir::Directory;
use crate::inode::{Content, Inode, Meta, Ts};
use crate::{check_name, dot, perm, MemFs, SYMLINK_MAX};
use dpfs_core::fs::{Context, Entry};
use dpfs_core::Errno;
use parking_lot::RwLock;
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// What kind of inode to create.
#[derive(Clone, Copy)]
pub(crate) enum NewNode<'a> {
    File,
    Dir,
    Symlink(&'a [u8]),
    Special,
}

/// `DT_*` type of a mode.
pub(crate) fn dirent_type(mode: u32) -> u32 {
    (mode & libc::S_IFMT) >> 12
}

fn add(v: u64, d: i64) -> u64 {
    if d >= 0 {
        v.saturating_add(d as u64)
    } else {
        v.saturating_sub(d.unsigned_abs())
    }
}

impl MemFs {
    /// Checks `mask` on directory `p` and returns its mode and owner (for the sticky rule).
    pub(crate) fn dir_check(&self, ctx: &Context, p: &Inode, mask: u32) -> Result<perm::Owner, Errno> {
        let owner = p.meta.lock().owner();
        perm::check(ctx, owner, mask)?;
        Ok(owner)
    }

    /// Records a change of directory `p`'s entries: adjusts its entry and link counts and
    /// times. With `alive`, fails with ENOENT (changing nothing) if `p` was removed.
    pub(crate) fn dir_changed(&self, p: &Inode, entries: i64, nlink: i64, alive: bool) -> Result<(), Errno> {
        let mut m = p.meta.lock();
        if alive && m.is_dead_dir() {
            return Err(Errno::ENOENT);
        }
        let new_nlink = add(m.nlink as u64, nlink);
        if new_nlink > u32::MAX as u64 {
            return Err(Errno::EMLINK);
        }
        m.nlink = new_nlink as u32;
        m.entries = add(m.entries, entries);
        let now = Ts::now();
        m.mtime = now;
        m.ctime = now;
        Ok(())
    }

    /// Allocates an inode (its slot and payload bytes) and puts it in the table.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn alloc_inode(
        &self,
        mode: u32,
        uid: u32,
        gid: u32,
        nlink: u32,
        rdev: u32,
        node: NewNode<'_>,
        parent: u64,
    ) -> Result<Arc<Inode>, Errno> {
        self.space.reserve_inode()?;
        let payload = match node {
            NewNode::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        if let Err(e) = self.space.reserve_bytes(payload) {
            self.space.release_inode();
            return Err(e);
        }
        let ino = self.next_ino.fetch_add(1, Ordering::Relaxed);
        let content = match node {
            NewNode::File => Content::File(RwLock::new(SparseData::default())),
            NewNode::Dir => Content::Dir(RwLock::new(Directory::default())),
            NewNode::Symlink(t) => Content::Symlink(t.into()),
            NewNode::Special => Content::Special,
        };
        let mut meta = Meta::new(mode, uid, gid, nlink, rdev);
        meta.size = payload;
        let inode = Arc::new(Inode::new(ino, content, meta, parent, self.space.clone()));
        self.inodes.insert(ino, inode.clone());
        Ok(inode)
    }

    /// Creates `name` in `parent`; the new inode carries one lookup reference.
    pub(crate) fn make_node(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        node: NewNode<'_>,
    ) -> Result<(Arc<Inode>, Entry), Errno> {
        check_name(name)?;
        let pino = self.inode(parent)?;
        let d = pino.dir()?;
        let mut dir = d.write();
        let powner = self.dir_check(ctx, &pino, perm::X)?;
        if dot(name) || dir.get(name).is_some() {
            return Err(Errno::EEXIST);
        }
        self.dir_check(ctx, &pino, perm::W)?;
        let is_dir = matches!(node, NewNode::Dir);
        let (mode, gid) = perm::new_owner(ctx, powner, mode);
        let name_len = name.len() as u64;
        self.space.reserve_bytes(name_len)?;
        let child = match self.alloc_inode(mode, ctx.uid, gid, if is_dir { 2 } else { 1 }, rdev, node, parent) {
            Ok(c) => c,
            Err(e) => {
                self.space.release_bytes(name_len);
                return Err(e);
            }
        };
        if let Err(e) = self.dir_changed(&pino, 1, is_dir as i64, true) {
            child.meta.lock().freed = true;
            self.inodes.remove(child.ino);
            self.space.release_bytes(name_len);
            return Err(e);
        }
        // The name's reserved bytes are now carried by the directory entry.
        dir.insert(name, child.ino, dirent_type(mode));
        let entry = {
            let mut m = child.meta.lock();
            m.lookups = 1;
            self.entry(child.ino, &m)
        };
        Ok((child, entry))
    }

    pub(crate) fn do_lookup(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        if name.len() > crate::NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let pino = self.inode(parent)?;
        let d = pino.dir()?;
        let dir = d.read();
        {
            let m = pino.meta.lock();
            perm::check(ctx, m.owner(), perm::X)?;
            if m.is_dead_dir() && name != b"." {
                return Err(Errno::ENOENT);
            }
        }
        let ino = match name {
            b"." => parent,
            b".." => pino.parent.load(Ordering::Acquire),
            _ => dir.get(name).ok_or(Errno::ENOENT)?.ino,
        };
        let child = self.inode(ino)?;
        self.take_lookup(&child)
    }

    /// Adds a lookup reference and returns the entry.
    pub(crate) fn take_lookup(&self, inode: &Inode) -> Result<Entry, Errno> {
        let mut m = inode.meta.lock();
        if m.freed {
            return Err(Errno::ENOENT);
        }
        m.lookups = m.lookups.saturating_add(1);
        Ok(self.entry(inode.ino, &m))
    }

    pub(crate) fn do_forget(&self, ino: u64, n: u64) {
        let Ok(inode) = self.inode(ino) else { return };
        let freed = {
            let mut m = inode.meta.lock();
            m.lookups = m.lookups.saturating_sub(n);
            m.try_free()
        };
        self.reap(ino, freed);
    }

    pub(crate) fn do_mknod(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let (mode, rdev) = perm::mknod_mode(mode, rdev, umask, ctx.uid)?;
        let node = if mode & libc::S_IFMT == libc::S_IFREG { NewNode::File } else { NewNode::Special };
        self.make_node(ctx, parent, name, mode, rdev, node).map(|(_, e)| e)
    }

    pub(crate) fn do_mkdir(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let mode = libc::S_IFDIR | (mode & 0o1777 & !umask);
        self.make_node(ctx, parent, name, mode, 0, NewNode::Dir).map(|(_, e)| e)
    }

    pub(crate) fn do_symlink(&self, ctx: &Context, parent: u64, name: &[u8], target: &[u8]) -> Result<Entry, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.make_node(ctx, parent, name, libc::S_IFLNK | 0o777, 0, NewNode::Symlink(target)).map(|(_, e)| e)
    }

    pub(crate) fn do_link(&self, ctx: &Context, ino: u64, newparent: u64, newname: &[u8]) -> Result<Entry, Errno> {
        check_name(newname)?;
        let target = self.inode(ino)?;
        if matches!(target.content, Content::Dir(_)) {
            return Err(Errno::EPERM);
        }
        let pino = self.inode(newparent)?;
        let d = pino.dir()?;
        let mut dir = d.write();
        self.dir_check(ctx, &pino, perm::X)?;
        if dot(newname) || dir.get(newname).is_some() {
            return Err(Errno::EEXIST);
        }
        self.dir_check(ctx, &pino, perm::W)?;
        self.space.reserve_bytes(newname.len() as u64)?;
        let (entry, typ) = {
            let mut m = target.meta.lock();
            let r = if m.freed || (m.nlink == 0 && !m.linkable) {
                Err(Errno::ENOENT)
            } else if m.nlink == u32::MAX {
                Err(Errno::EMLINK)
            } else {
                Ok(())
            };
            if let Err(e) = r {
                drop(m);
                self.space.release_bytes(newname.len() as u64);
                return Err(e);
            }
            m.nlink += 1;
            m.ctime = Ts::now();
            m.lookups = m.lookups.saturating_add(1);
            (self.entry(ino, &m), dirent_type(m.mode))
        };
        if let Err(e) = self.dir_changed(&pino, 1, 0, true) {
            let freed = {
                let mut m = target.meta.lock();
                m.nlink -= 1;
                m.lookups = m.lookups.saturating_sub(1);
                m.try_free()
            };
            self.reap(ino, freed);
            self.space.release_bytes(newname.len() as u64);
            return Err(e);
        }
        dir.insert(newname, ino, typ);
        Ok(entry)
    }

    pub(crate) fn do_unlink(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        if dot(name) {
            return Err(Errno::EISDIR);
        }
        let pino = self.inode(parent)?;
        let d = pino.dir()?;
        let mut dir = d.write();
        self.dir_check(ctx, &pino, perm::X)?;
        let e = dir.get(name).ok_or(Errno::ENOENT)?;
        if e.typ == dirent_type(libc::S_IFDIR) {
            return Err(Errno::EISDIR);
        }
        let child = self.inode(e.ino)?;
        let powner = self.dir_check(ctx, &pino, perm::W)?;
        let freed = {
            let mut m = child.meta.lock();
            perm::check_sticky(ctx, powner, m.uid)?;
            m.nlink = m.nlink.saturating_sub(1);
            m.ctime = Ts::now();
            m.try_free()
        };
        dir.remove(name);
        self.space.release_bytes(name.len() as u64);
        let _ = self.dir_changed(&pino, -1, 0, false);
        self.reap(child.ino, freed);
        Ok(())
    }

    pub(crate) fn do_rmdir(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let pino = self.inode(parent)?;
        let d = pino.dir()?;
        let mut dir = d.write();
        self.dir_check(ctx, &pino, perm::X)?;
        let e = dir.get(name).ok_or(Errno::ENOENT)?;
        if e.typ != dirent_type(libc::S_IFDIR) {
            return Err(Errno::ENOTDIR);
        }
        let child = self.inode(e.ino)?;
        let powner = self.dir_check(ctx, &pino, perm::W)?;
        let freed = {
            let mut m = child.meta.lock();
            perm::check_sticky(ctx, powner, m.uid)?;
            if m.entries > 0 {
                return Err(Errno::ENOTEMPTY);
            }
            m.nlink = 0;
            m.ctime = Ts::now();
            m.try_free()
        };
        dir.remove(name);
        self.space.release_bytes(name.len() as u64);
        let _ = self.dir_changed(&pino, -1, -1, false);
        self.reap(child.ino, freed);
        Ok(())
    }
}
