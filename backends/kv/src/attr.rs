//! Attribute operations: GETATTR, SETATTR, ACCESS, READLINK and STATFS (from the volume's
//! counters).

use crate::data::need_file;
use crate::error::Fail;
use crate::fs::{now, Inner};
use crate::perm;
use crate::schema::{self, Ts, MAX_FILE};
use crate::store::{counter, Store};
use crate::NAME_MAX;
use dpfs_core::fs::{Attr, Context, SetAttr, Statfs, TimeOrNow};
use dpfs_core::Errno;

/// Block size statfs reports.
const BSIZE: u64 = 4096;

impl<S: Store> Inner<S> {
    pub(crate) async fn do_getattr(&self, ino: u64) -> Result<Attr, Errno> {
        self.run(|mut tx| async move {
            let i = tx.inode(ino).await?;
            Ok(self.attr(ino, &i))
        })
        .await
    }

    pub(crate) async fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        self.run(|mut tx| async move {
            let i = tx.inode(ino).await?;
            if i.mode & libc::S_IFMT != libc::S_IFLNK {
                return Err(Errno::EINVAL.into());
            }
            Ok(i.target)
        })
        .await
    }

    pub(crate) async fn do_access(&self, ctx: &Context, ino: u64, mask: u32) -> Result<(), Errno> {
        if mask & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        self.run(|mut tx| async move {
            let i = tx.inode(ino).await?;
            perm::check(ctx, i.owner(), mask)?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn do_statfs(&self) -> Result<Statfs, Errno> {
        let (inodes, bytes) = self
            .run(|mut tx| async move {
                let v = tx.get_many(&[schema::inodes_key(), schema::bytes_key()]).await?;
                let c = |n: usize| counter(v.get(n).and_then(|x| x.as_deref())).max(0) as u64;
                Ok((c(0), c(1)))
            })
            .await?;
        let blocks = self.cfg.capacity_bytes / BSIZE;
        let free = self.cfg.capacity_bytes.saturating_sub(bytes) / BSIZE;
        Ok(Statfs {
            blocks,
            bfree: free,
            bavail: free,
            files: self.cfg.max_inodes,
            ffree: self.cfg.max_inodes.saturating_sub(inodes),
            bsize: BSIZE as u32,
            namelen: NAME_MAX as u32,
            frsize: BSIZE as u32,
            ..Default::default()
        })
    }

    pub(crate) async fn do_setattr(&self, ctx: &Context, ino: u64, sa: &SetAttr) -> Result<Attr, Errno> {
        if let Some(size) = sa.size {
            if size > MAX_FILE {
                return Err(Errno::EFBIG);
            }
            if let Some(fh) = sa.fh {
                let h = self.handle(fh, ino)?;
                if h.flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
                    return Err(Errno::EBADF);
                }
            }
        }
        let _g = self.lock(&[ino]).await;
        self.run(|mut tx| async move {
            let old = tx.inode(ino).await?;
            if sa.size.is_some() {
                need_file(&old)?;
            }
            // Every check first, so a refused request changes nothing.
            if sa.mode.is_some() && !perm::owner_or_root(ctx, old.owner()) {
                return Err(Errno::EPERM.into());
            }
            if let Some(uid) = sa.uid {
                if ctx.uid != 0 && !(ctx.uid == old.uid && uid == old.uid) {
                    return Err(Errno::EPERM.into());
                }
            }
            if let Some(gid) = sa.gid {
                if ctx.uid != 0 && !(ctx.uid == old.uid && (gid == old.gid || perm::in_group(ctx, gid))) {
                    return Err(Errno::EPERM.into());
                }
            }
            if sa.size.is_some() && sa.fh.is_none() {
                perm::check(ctx, old.owner(), perm::W)?;
            }
            for t in [sa.atime, sa.mtime].into_iter().flatten() {
                match t {
                    TimeOrNow::Time { nsec, .. } if nsec >= 1_000_000_000 => return Err(Errno::EINVAL.into()),
                    TimeOrNow::Time { .. } if !perm::owner_or_root(ctx, old.owner()) => return Err(Errno::EPERM.into()),
                    TimeOrNow::Now if !perm::owner_or_root(ctx, old.owner()) => perm::check(ctx, old.owner(), perm::W)?,
                    _ => {}
                }
            }
            let t = now();
            let mut i = old.clone();
            if let Some(size) = sa.size {
                if size != i.size || i.prealloc {
                    self.truncate(&mut tx, ino, &mut i, size).await?;
                }
                i.mtime = t;
            }
            if let Some(mode) = sa.mode {
                let mut mode = mode & 0o7777;
                let gid = sa.gid.unwrap_or(i.gid);
                if ctx.uid != 0 && !perm::in_group(ctx, gid) {
                    mode &= !libc::S_ISGID;
                }
                i.mode = (i.mode & libc::S_IFMT) | mode;
            }
            if sa.uid.is_some() || sa.gid.is_some() {
                if let Some(uid) = sa.uid {
                    i.uid = uid;
                }
                if let Some(gid) = sa.gid {
                    i.gid = gid;
                }
                if !i.is_dir() {
                    i.kill_suid();
                }
            }
            if sa.kill_suidgid {
                i.kill_suid();
            }
            let time = |x: TimeOrNow| match x {
                TimeOrNow::Now => t,
                TimeOrNow::Time { sec, nsec } => Ts { sec, nsec },
            };
            if let Some(x) = sa.atime {
                i.atime = time(x);
            }
            if let Some(x) = sa.mtime {
                i.mtime = time(x);
            }
            i.ctime = t;
            tx.put_inode(ino, Some(&old), &i);
            tx.commit().await?;
            Ok::<_, Fail>(self.attr(ino, &i))
        })
        .await
    }
}
