//! RENAME and RENAME2: plain, `RENAME_NOREPLACE` and `RENAME_EXCHANGE`, with Linux's
//! errors (`RENAME_WHITEOUT` is refused with EINVAL). One transaction moves the names,
//! the link counts and the `..` pointers together.

use crate::error::Fail;
use crate::fs::{now, Inner};
use crate::namei::{check_name, dir_and_entry, dot, drop_child, DT_DIR};
use crate::perm;
use crate::schema::{self, encode, Dirent, Inode};
use crate::store::Store;
use crate::tx::Tx;
use crate::volume::ROOT;
use dpfs_core::fs::Context;
use dpfs_core::posix::{check_rename_flags, RENAME_EXCHANGE, RENAME_NOREPLACE};
use dpfs_core::Errno;

/// Longest `..` chain walked before the volume is taken for corrupt.
const MAX_DEPTH: usize = 1 << 16;

/// True if directory `anc` is `ino` or one of its ancestors (the walk reads every
/// directory on the way, so a concurrent move of any of them makes the commit conflict).
async fn is_ancestor<S: Store>(tx: &mut Tx<'_, S>, anc: u64, mut ino: u64) -> Result<bool, Fail> {
    for _ in 0..MAX_DEPTH {
        if ino == anc {
            return Ok(true);
        }
        if ino == ROOT {
            return Ok(false);
        }
        ino = tx.inode(ino).await?.parent;
    }
    Err(Errno::EIO.into())
}

fn put_entry<S: Store>(tx: &mut Tx<'_, S>, parent: u64, de: &Dirent) {
    let v = encode(de);
    tx.put(schema::cookie_key(parent, de.cookie), v.clone());
    tx.put(schema::dentry_key(parent, &de.name), v);
}

fn touch(i: &mut Inode) {
    let t = now();
    i.mtime = t;
    i.ctime = t;
}

impl<S: Store> Inner<S> {
    pub(crate) async fn do_rename(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_rename_flags(flags)?;
        check_name(name)?;
        check_name(newname)?;
        if dot(name) || dot(newname) {
            return Err(Errno::EBUSY);
        }
        let same = parent == newparent;
        let _r = if same { None } else { Some(self.rename_lock.lock().await) };
        let _g = self.lock(&[parent, newparent]).await;
        let reclaim = self
            .run(|tx| async move { self.rename_once(tx, ctx, parent, name, newparent, newname, flags).await })
            .await?;
        if let Some(ino) = reclaim {
            self.reclaim(ino).await?;
        }
        Ok(())
    }

    /// One attempt; returns a replaced inode to reclaim.
    #[allow(clippy::too_many_arguments)]
    async fn rename_once(
        &self,
        mut tx: Tx<'_, S>,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<Option<u64>, Fail> {
        let exchange = flags & RENAME_EXCHANGE != 0;
        let same = parent == newparent;
        let (op, src) = dir_and_entry(&mut tx, parent, name).await?;
        let (np, dst) = dir_and_entry(&mut tx, newparent, newname).await?;
        perm::check(ctx, op.owner(), perm::X)?;
        perm::check(ctx, np.owner(), perm::X)?;
        let src = src.ok_or(Fail::Errno(Errno::ENOENT))?;
        match (&dst, exchange, flags & RENAME_NOREPLACE != 0) {
            (None, true, _) => return Err(Errno::ENOENT.into()),
            (Some(_), _, true) => return Err(Errno::EEXIST.into()),
            _ => {}
        }
        if dst.as_ref().is_some_and(|d| d.ino == src.ino) {
            return Ok(None);
        }
        perm::check(ctx, op.owner(), perm::W)?;
        perm::check(ctx, np.owner(), perm::W)?;
        let src_dir = src.typ == DT_DIR;
        let dst_dir = dst.as_ref().is_some_and(|d| d.typ == DT_DIR);
        let si = tx.inode(src.ino).await?;
        let di = match &dst {
            Some(d) => Some(tx.inode(d.ino).await?),
            None => None,
        };
        perm::check_sticky(ctx, op.owner(), si.uid)?;
        if let Some(di) = &di {
            perm::check_sticky(ctx, np.owner(), di.uid)?;
        }
        if !same {
            if src_dir {
                perm::check(ctx, si.owner(), perm::W)?;
            }
            if let (Some(di), true, true) = (&di, exchange, dst_dir) {
                perm::check(ctx, di.owner(), perm::W)?;
            }
            if src_dir && is_ancestor(&mut tx, src.ino, newparent).await? {
                return Err(Errno::EINVAL.into());
            }
            if let Some(d) = dst.as_ref().filter(|_| dst_dir) {
                if is_ancestor(&mut tx, d.ino, parent).await? {
                    return Err(if exchange { Errno::EINVAL } else { Errno::ENOTEMPTY }.into());
                }
            }
        }
        let mut opn = op.clone();
        let mut npn = if same { None } else { Some(np.clone()) };
        let mut sin = si.clone();
        sin.ctime = now();
        let mut reclaim = None;
        if exchange {
            let (Some(d), Some(di)) = (&dst, &di) else { return Err(Errno::ENOENT.into()) };
            let mut din = di.clone();
            din.ctime = now();
            put_entry(&mut tx, parent, &Dirent { ino: d.ino, typ: d.typ, cookie: src.cookie, name: name.to_vec() });
            put_entry(
                &mut tx,
                newparent,
                &Dirent { ino: src.ino, typ: src.typ, cookie: d.cookie, name: newname.to_vec() },
            );
            if let Some(npn) = npn.as_mut() {
                let delta = src_dir as i64 - dst_dir as i64;
                npn.nlink = add_links(npn.nlink, delta)?;
                opn.nlink = add_links(opn.nlink, -delta)?;
                if src_dir {
                    sin.parent = newparent;
                }
                if dst_dir {
                    din.parent = parent;
                }
                touch(npn);
            }
            touch(&mut opn);
            tx.put_inode(d.ino, Some(di), &din);
        } else {
            if dst.is_some() {
                if src_dir && !dst_dir {
                    return Err(Errno::ENOTDIR.into());
                }
                if !src_dir && dst_dir {
                    return Err(Errno::EISDIR.into());
                }
            }
            if let (Some(d), Some(di)) = (&dst, &di) {
                let mut din = di.clone();
                if dst_dir {
                    if di.entries > 0 {
                        return Err(Errno::ENOTEMPTY.into());
                    }
                    din.nlink = 0;
                } else {
                    din.nlink = din.nlink.saturating_sub(1);
                }
                din.ctime = now();
                tx.del(schema::cookie_key(newparent, d.cookie));
                if din.nlink == 0 {
                    if drop_child(&mut tx, &self.orphans, self.is_open(d.ino), d.ino, di, &din) {
                        reclaim = Some(d.ino);
                    }
                } else {
                    tx.put_inode(d.ino, Some(di), &din);
                }
            }
            tx.del(schema::dentry_key(parent, name));
            tx.del(schema::cookie_key(parent, src.cookie));
            let replaced = dst.is_some() as i64;
            let moved_dir = (src_dir && !same) as i64;
            opn.entries = opn.entries.saturating_sub(1);
            opn.nlink = add_links(opn.nlink, -moved_dir)?;
            touch(&mut opn);
            let target = npn.as_mut().unwrap_or(&mut opn);
            let cookie = target.next_cookie;
            target.next_cookie = cookie.saturating_add(1);
            target.entries = (target.entries + 1).saturating_sub(replaced as u64);
            target.nlink = add_links(target.nlink, moved_dir - dst_dir as i64)?;
            touch(target);
            put_entry(&mut tx, newparent, &Dirent { ino: src.ino, typ: src.typ, cookie, name: newname.to_vec() });
            if src_dir && !same {
                sin.parent = newparent;
            }
        }
        tx.put_inode(src.ino, Some(&si), &sin);
        tx.put_inode(parent, Some(&op), &opn);
        if let Some(npn) = &npn {
            tx.put_inode(newparent, Some(&np), npn);
        }
        tx.commit().await?;
        Ok(reclaim)
    }
}

fn add_links(n: u32, d: i64) -> Result<u32, Fail> {
    let v = n as i64 + d;
    u32::try_from(v.max(0)).map_err(|_| Fail::Errno(Errno::EMLINK))
}
