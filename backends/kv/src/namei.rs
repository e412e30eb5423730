//! Namespace operations on one name: LOOKUP, MKNOD/MKDIR/SYMLINK (and the creating half of
//! CREATE), LINK, UNLINK and RMDIR.

use crate::error::Fail;
use crate::fs::{now, Inner};
use crate::perm;
use crate::schema::{self, decode, encode, Dirent, Inode};
use crate::store::Store;
use crate::tx::Tx;
use crate::{NAME_MAX, SYMLINK_MAX};
use dpfs_core::fs::{Context, Entry};
use dpfs_core::Errno;

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

/// `DT_DIR`.
pub(crate) const DT_DIR: u32 = libc::S_IFDIR >> 12;

/// Checks a name of a new or existing entry.
pub(crate) fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// `.` or `..`.
pub(crate) fn dot(name: &[u8]) -> bool {
    name == b"." || name == b".."
}

/// Reads directory `parent` (ENOTDIR if it is not one) and its entry `name`, in one
/// store round trip.
pub(crate) async fn dir_and_entry<S: Store>(
    tx: &mut Tx<'_, S>,
    parent: u64,
    name: &[u8],
) -> Result<(Inode, Option<Dirent>), Fail> {
    let pk = schema::inode_key(parent);
    let dk = schema::dentry_key(parent, name);
    let mut v = tx.get_many(&[pk.clone(), dk.clone()]).await?.into_iter();
    let p: Inode = match v.next().flatten() {
        Some(b) => decode(&pk, &b)?,
        None => return Err(Errno::ENOENT.into()),
    };
    if !p.is_dir() {
        return Err(Errno::ENOTDIR.into());
    }
    let d = match v.next().flatten() {
        Some(b) if !dot(name) => Some(decode(&dk, &b)?),
        _ => None,
    };
    Ok((p, d))
}

/// Adds entry `name` → `ino` to directory `parent` (as read: `p`), bumping its counts.
pub(crate) fn add_entry<S: Store>(
    tx: &mut Tx<'_, S>,
    parent: u64,
    p: &Inode,
    name: &[u8],
    ino: u64,
    typ: u32,
) -> Inode {
    let mut np = p.clone();
    let de = Dirent { ino, typ, cookie: np.next_cookie, name: name.to_vec() };
    np.next_cookie = np.next_cookie.saturating_add(1);
    np.entries += 1;
    let t = now();
    np.mtime = t;
    np.ctime = t;
    let v = encode(&de);
    tx.put(schema::cookie_key(parent, de.cookie), v.clone());
    tx.put(schema::dentry_key(parent, name), v);
    np
}

/// Removes entry `de` from directory `parent` (as `p`), dropping its counts.
pub(crate) fn remove_entry<S: Store>(tx: &mut Tx<'_, S>, parent: u64, p: &Inode, de: &Dirent) -> Inode {
    let mut np = p.clone();
    np.entries = np.entries.saturating_sub(1);
    let t = now();
    np.mtime = t;
    np.ctime = t;
    tx.del(schema::dentry_key(parent, &de.name));
    tx.del(schema::cookie_key(parent, de.cookie));
    np
}

/// A child that lost its last name: deleted now if it is small and closed, else kept as
/// an orphan. True if it must be reclaimed after the commit; `open` ones are remembered in
/// `orphans` for their last release.
pub(crate) fn drop_child<S: Store>(
    tx: &mut Tx<'_, S>,
    orphans: &parking_lot::Mutex<std::collections::HashSet<u64>>,
    open: bool,
    ino: u64,
    old: &Inode,
    new: &Inode,
) -> bool {
    if open {
        orphans.lock().insert(ino);
    }
    if !open && new.chunks == 0 && new.xattrs == 0 {
        tx.del_inode(ino, old);
        return false;
    }
    tx.put_inode(ino, Some(old), new);
    tx.put(schema::orphan_key(ino), Vec::new());
    !open
}

impl<S: Store> Inner<S> {
    /// Creates `name` in `parent`.
    pub(crate) async fn make_node(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        node: NewNode<'_>,
    ) -> Result<(u64, Entry), Errno> {
        check_name(name)?;
        // Let go once the commit is queued (see `Tx::commit_release`); retries run unlocked.
        let held = parking_lot::Mutex::new(Some(self.lock(&[parent]).await));
        let held = &held;
        let ino = self.alloc_ino().await.map_err(|e| match e {
            Fail::Errno(e) => e,
            _ => Errno::EIO,
        })?;
        let entry = self
            .run(|mut tx| async move {
                let (p, de) = dir_and_entry(&mut tx, parent, name).await?;
                perm::check(ctx, p.owner(), perm::X)?;
                if dot(name) || de.is_some() {
                    return Err(Errno::EEXIST.into());
                }
                perm::check(ctx, p.owner(), perm::W)?;
                if p.is_dead_dir() {
                    return Err(Errno::ENOENT.into());
                }
                let is_dir = matches!(node, NewNode::Dir);
                let (mode, gid) = perm::new_owner(ctx, p.owner(), mode);
                let t = now();
                let mut child = Inode {
                    mode,
                    uid: ctx.uid,
                    gid,
                    nlink: if is_dir { 2 } else { 1 },
                    rdev,
                    atime: t,
                    mtime: t,
                    ctime: t,
                    parent,
                    ..Default::default()
                };
                match node {
                    NewNode::Dir => child.next_cookie = 3,
                    NewNode::File => child.inline = Some(Vec::new()),
                    NewNode::Symlink(target) => {
                        child.target = target.to_vec();
                        child.size = target.len() as u64;
                    }
                    NewNode::Special => {}
                }
                let mut np = add_entry(&mut tx, parent, &p, name, ino, dirent_type(mode));
                if is_dir {
                    np.nlink = np.nlink.checked_add(1).ok_or(Fail::Errno(Errno::EMLINK))?;
                }
                tx.put_inode(parent, Some(&p), &np);
                tx.put_inode(ino, None, &child);
                tx.commit_release(|| drop(held.lock().take())).await?;
                Ok(self.entry(ino, &child))
            })
            .await?;
        Ok((ino, entry))
    }

    pub(crate) async fn do_lookup(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        if name.len() > NAME_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        self.run(|mut tx| async move {
            let (p, de) = dir_and_entry(&mut tx, parent, name).await?;
            perm::check(ctx, p.owner(), perm::X)?;
            if p.is_dead_dir() && name != b"." {
                return Err(Errno::ENOENT.into());
            }
            let ino = match name {
                b"." => parent,
                b".." => p.parent,
                _ => de.ok_or(Fail::Errno(Errno::ENOENT))?.ino,
            };
            let child = tx.inode(ino).await?;
            Ok(self.entry(ino, &child))
        })
        .await
    }

    pub(crate) async fn do_mknod(
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
        self.make_node(ctx, parent, name, mode, rdev, node).await.map(|(_, e)| e)
    }

    pub(crate) async fn do_mkdir(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
    ) -> Result<Entry, Errno> {
        let mode = libc::S_IFDIR | (mode & 0o1777 & !umask);
        self.make_node(ctx, parent, name, mode, 0, NewNode::Dir).await.map(|(_, e)| e)
    }

    pub(crate) async fn do_symlink(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        target: &[u8],
    ) -> Result<Entry, Errno> {
        if target.is_empty() {
            return Err(Errno::ENOENT);
        }
        if target.len() > SYMLINK_MAX {
            return Err(Errno::ENAMETOOLONG);
        }
        let mode = libc::S_IFLNK | 0o777;
        self.make_node(ctx, parent, name, mode, 0, NewNode::Symlink(target)).await.map(|(_, e)| e)
    }

    pub(crate) async fn do_link(
        &self,
        ctx: &Context,
        ino: u64,
        newparent: u64,
        newname: &[u8],
    ) -> Result<Entry, Errno> {
        check_name(newname)?;
        let _g = self.lock(&[newparent, ino]).await;
        self.run(|mut tx| async move {
            let target = tx.inode(ino).await?;
            if target.is_dir() {
                return Err(Errno::EPERM.into());
            }
            let (p, de) = dir_and_entry(&mut tx, newparent, newname).await?;
            perm::check(ctx, p.owner(), perm::X)?;
            if dot(newname) || de.is_some() {
                return Err(Errno::EEXIST.into());
            }
            perm::check(ctx, p.owner(), perm::W)?;
            if p.is_dead_dir() || target.nlink == 0 {
                return Err(Errno::ENOENT.into());
            }
            let mut nt = target.clone();
            nt.nlink = nt.nlink.checked_add(1).ok_or(Fail::Errno(Errno::EMLINK))?;
            nt.ctime = now();
            let np = add_entry(&mut tx, newparent, &p, newname, ino, dirent_type(target.mode));
            tx.put_inode(newparent, Some(&p), &np);
            tx.put_inode(ino, Some(&target), &nt);
            tx.commit().await?;
            Ok(self.entry(ino, &nt))
        })
        .await
    }

    pub(crate) async fn do_unlink(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        if dot(name) {
            return Err(Errno::EISDIR);
        }
        let held = parking_lot::Mutex::new(Some(self.lock(&[parent]).await));
        let held = &held;
        let reclaim = self
            .run(|mut tx| async move {
                let (p, de) = dir_and_entry(&mut tx, parent, name).await?;
                perm::check(ctx, p.owner(), perm::X)?;
                let de = de.ok_or(Fail::Errno(Errno::ENOENT))?;
                if de.typ == DT_DIR {
                    return Err(Errno::EISDIR.into());
                }
                let child = tx.inode(de.ino).await?;
                perm::check(ctx, p.owner(), perm::W)?;
                perm::check_sticky(ctx, p.owner(), child.uid)?;
                let mut nc = child.clone();
                nc.nlink = nc.nlink.saturating_sub(1);
                nc.ctime = now();
                let np = remove_entry(&mut tx, parent, &p, &de);
                tx.put_inode(parent, Some(&p), &np);
                let reclaim = if nc.nlink == 0 {
                    drop_child(&mut tx, &self.orphans, self.is_open(de.ino), de.ino, &child, &nc)
                } else {
                    tx.put_inode(de.ino, Some(&child), &nc);
                    false
                };
                tx.commit_release(|| drop(held.lock().take())).await?;
                Ok(reclaim.then_some(de.ino))
            })
            .await?;
        if let Some(ino) = reclaim {
            self.reclaim(ino).await?;
        }
        Ok(())
    }

    pub(crate) async fn do_rmdir(&self, ctx: &Context, parent: u64, name: &[u8]) -> Result<(), Errno> {
        check_name(name)?;
        match name {
            b"." => return Err(Errno::EINVAL),
            b".." => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let _g = self.lock(&[parent]).await;
        let reclaim = self
            .run(|mut tx| async move {
                let (p, de) = dir_and_entry(&mut tx, parent, name).await?;
                perm::check(ctx, p.owner(), perm::X)?;
                let de = de.ok_or(Fail::Errno(Errno::ENOENT))?;
                if de.typ != DT_DIR {
                    return Err(Errno::ENOTDIR.into());
                }
                let child = tx.inode(de.ino).await?;
                perm::check(ctx, p.owner(), perm::W)?;
                perm::check_sticky(ctx, p.owner(), child.uid)?;
                if child.entries > 0 {
                    return Err(Errno::ENOTEMPTY.into());
                }
                let mut nc = child.clone();
                nc.nlink = 0;
                nc.ctime = now();
                let mut np = remove_entry(&mut tx, parent, &p, &de);
                np.nlink = np.nlink.saturating_sub(1);
                tx.put_inode(parent, Some(&p), &np);
                let reclaim = drop_child(&mut tx, &self.orphans, self.is_open(de.ino), de.ino, &child, &nc);
                tx.commit().await?;
                Ok(reclaim.then_some(de.ino))
            })
            .await?;
        if let Some(ino) = reclaim {
            self.reclaim(ino).await?;
        }
        Ok(())
    }
}
