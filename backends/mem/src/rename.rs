//! RENAME and RENAME2: plain, `RENAME_NOREPLACE` and `RENAME_EXCHANGE`, with Linux's
//! errors (`RENAME_WHITEOUT` is refused with EINVAL).

use crate::dir::Directory;
use crate::inode::{Inode, Ts};
use crate::namei::dirent_type;
use crate::{check_name, dot, perm, MemFs};
use dpfs_core::abi::ROOT_ID;
use dpfs_core::fs::Context;
use dpfs_core::posix::{check_rename_flags, RENAME_EXCHANGE, RENAME_NOREPLACE};
use dpfs_core::Errno;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl MemFs {
    /// True if directory `anc` is `ino` or one of its ancestors. Called under the rename
    /// lock, which keeps the `..` pointers still.
    fn is_ancestor(&self, anc: u64, mut ino: u64) -> bool {
        // A walk longer than the number of inodes means a corrupt chain: stop.
        for _ in 0..=self.space.max_inodes() {
            if ino == anc {
                return true;
            }
            if ino == ROOT_ID {
                return false;
            }
            match self.inodes.get(ino) {
                Some(i) => ino = i.parent.load(Ordering::Acquire),
                None => return false,
            }
        }
        false
    }

    pub(crate) fn do_rename(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_rename_flags(flags)?;
        let exchange = flags & RENAME_EXCHANGE != 0;
        check_name(name)?;
        check_name(newname)?;
        if dot(name) || dot(newname) {
            return Err(Errno::EBUSY);
        }
        let op = self.inode(parent)?;
        let np = self.inode(newparent)?;
        let od = op.dir()?;
        let nd = np.dir()?;
        let same = parent == newparent;
        let _rename_guard = (!same).then(|| self.rename_lock.lock());
        let (mut g_old, mut g_new) = if same {
            (od.write(), None)
        } else if parent < newparent {
            let a = od.write();
            (a, Some(nd.write()))
        } else {
            let b = nd.write();
            (od.write(), Some(b))
        };
        macro_rules! ndir {
            () => {
                match g_new.as_mut() {
                    Some(g) => &mut **g,
                    None => &mut *g_old,
                }
            };
        }
        let oowner = self.dir_check(ctx, &op, perm::X)?;
        let nowner = self.dir_check(ctx, &np, perm::X)?;
        let src = g_old.get(name).cloned().ok_or(Errno::ENOENT)?;
        let dst = ndir!().get(newname).cloned();
        match (&dst, exchange, flags & RENAME_NOREPLACE != 0) {
            (None, true, _) => return Err(Errno::ENOENT),
            (Some(_), _, true) => return Err(Errno::EEXIST),
            _ => {}
        }
        if dst.as_ref().is_some_and(|d| d.ino == src.ino) {
            return Ok(());
        }
        self.dir_check(ctx, &op, perm::W)?;
        self.dir_check(ctx, &np, perm::W)?;
        let dir_t = dirent_type(libc::S_IFDIR);
        let src_dir = src.typ == dir_t;
        let dst_dir = dst.as_ref().is_some_and(|d| d.typ == dir_t);
        let sinode = self.inode(src.ino)?;
        let dinode = match &dst {
            Some(d) => Some(self.inode(d.ino)?),
            None => None,
        };
        perm::check_sticky(ctx, oowner, sinode.meta.lock().uid)?;
        if let Some(di) = &dinode {
            perm::check_sticky(ctx, nowner, di.meta.lock().uid)?;
        }
        if !same {
            // A directory that changes parent must be writable (its `..` changes).
            if src_dir {
                perm::check(ctx, sinode.meta.lock().owner(), perm::W)?;
            }
            if let (Some(di), true, true) = (&dinode, exchange, dst_dir) {
                perm::check(ctx, di.meta.lock().owner(), perm::W)?;
            }
            if src_dir && self.is_ancestor(src.ino, newparent) {
                return Err(Errno::EINVAL);
            }
            if dst_dir && self.is_ancestor(ino_of(&dst), parent) {
                return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY });
            }
        }
        if exchange {
            let Some(di) = dinode else { return Err(Errno::ENOENT) };
            return self.exchange(
                &op,
                &np,
                name,
                newname,
                (&sinode, src.typ),
                (&di, dst_typ(&dst)),
                &mut g_old,
                g_new.as_deref_mut(),
            );
        }
        if let Some(_d) = &dst {
            if src_dir && !dst_dir {
                return Err(Errno::ENOTDIR);
            }
            if !src_dir && dst_dir {
                return Err(Errno::EISDIR);
            }
        }
        self.space.reserve_bytes(newname.len() as u64)?;
        // The victim first: its checks are the last that can fail, and a new parent that
        // holds it cannot have been removed.
        let mut victim_freed = false;
        if let Some(di) = &dinode {
            let mut m = di.meta.lock();
            if dst_dir {
                if m.entries > 0 {
                    drop(m);
                    self.space.release_bytes(newname.len() as u64);
                    return Err(Errno::ENOTEMPTY);
                }
                m.nlink = 0;
            } else {
                m.nlink = m.nlink.saturating_sub(1);
            }
            m.ctime = Ts::now();
            victim_freed = m.try_free();
        }
        let replaced = dst.is_some() as i64;
        let moved_dir = (src_dir && !same) as i64;
        let r = if same {
            self.dir_changed(&np, -replaced, -(dst_dir as i64), false)
        } else {
            self.dir_changed(&np, 1 - replaced, moved_dir - dst_dir as i64, true)
        };
        if let Err(e) = r {
            // Only reachable without a victim: nothing else to undo.
            self.space.release_bytes(newname.len() as u64);
            return Err(e);
        }
        if !same {
            let _ = self.dir_changed(&op, -1, -moved_dir, false);
        }
        if dst.is_some() {
            ndir!().remove(newname);
            self.space.release_bytes(newname.len() as u64);
        }
        g_old.remove(name);
        self.space.release_bytes(name.len() as u64);
        ndir!().insert(newname, src.ino, src.typ);
        if src_dir && !same {
            sinode.parent.store(newparent, Ordering::Release);
        }
        self.touch_ctime(&sinode);
        if let Some(d) = &dst {
            self.reap(d.ino, victim_freed);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn exchange(
        &self,
        op: &Inode,
        np: &Inode,
        name: &[u8],
        newname: &[u8],
        (si, styp): (&Arc<Inode>, u32),
        (di, dtyp): (&Arc<Inode>, u32),
        old: &mut Directory,
        new: Option<&mut Directory>,
    ) -> Result<(), Errno> {
        let dir_t = dirent_type(libc::S_IFDIR);
        let (src_dir, dst_dir) = (styp == dir_t, dtyp == dir_t);
        match new {
            None => {
                old.set_target(name, di.ino, dtyp);
                old.set_target(newname, si.ino, styp);
                let _ = self.dir_changed(op, 0, 0, false);
            }
            Some(new) => {
                // A directory moving one way and a non-directory the other moves a link.
                let delta = src_dir as i64 - dst_dir as i64;
                self.dir_changed(np, 0, delta, true)?;
                let _ = self.dir_changed(op, 0, -delta, false);
                old.set_target(name, di.ino, dtyp);
                new.set_target(newname, si.ino, styp);
                if src_dir {
                    si.parent.store(np.ino, Ordering::Release);
                }
                if dst_dir {
                    di.parent.store(op.ino, Ordering::Release);
                }
            }
        }
        self.touch_ctime(si);
        self.touch_ctime(di);
        Ok(())
    }
}

fn ino_of(d: &Option<crate::dir::DirEntry>) -> u64 {
    d.as_ref().map(|d| d.ino).unwrap_or(0)
}

fn dst_typ(d: &Option<crate::dir::DirEntry>) -> u32 {
    d.as_ref().map(|d| d.typ).unwrap_or(0)
}
