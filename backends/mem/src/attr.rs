//! Attribute operations: GETATTR, SETATTR, STATX, ACCESS, READLINK and STATFS.

use crate::data::{CHUNK, MAX_FILE};
use crate::inode::{Content, Ts};
use crate::{perm, MemFs, NAME_MAX};
use dpfs_core::fs::{Attr, Context, SetAttr, Statfs, Statx, TimeOrNow};
use dpfs_core::Errno;

impl MemFs {
    pub(crate) fn do_getattr(&self, ino: u64) -> Result<Attr, Errno> {
        let inode = self.inode(ino)?;
        let m = inode.meta.lock();
        Ok(m.attr(ino))
    }

    pub(crate) fn do_statx(&self, ino: u64) -> Result<Statx, Errno> {
        let inode = self.inode(ino)?;
        let m = inode.meta.lock();
        Ok(m.statx(ino))
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let inode = self.inode(ino)?;
        match &inode.content {
            Content::Symlink(t) => Ok(t.to_vec()),
            _ => Err(Errno::EINVAL),
        }
    }

    pub(crate) fn do_access(&self, ctx: &Context, ino: u64, mask: u32) -> Result<(), Errno> {
        let inode = self.inode(ino)?;
        let m = inode.meta.lock();
        if mask & !7 != 0 {
            return Err(Errno::EINVAL);
        }
        perm::check(ctx, m.owner(), mask)
    }

    pub(crate) fn do_statfs(&self) -> Statfs {
        let s = &self.space;
        let blocks = s.cap_bytes() / CHUNK;
        let free = s.cap_bytes().saturating_sub(s.used_bytes()) / CHUNK;
        Statfs {
            blocks,
            bfree: free,
            bavail: free,
            files: s.max_inodes(),
            ffree: s.max_inodes().saturating_sub(s.used_inodes()),
            bsize: CHUNK as u32,
            namelen: NAME_MAX as u32,
            frsize: CHUNK as u32,
            ..Default::default()
        }
    }

    pub(crate) fn do_setattr(&self, ctx: &Context, ino: u64, sa: &SetAttr) -> Result<Attr, Errno> {
        let inode = self.inode(ino)?;
        // The data lock comes before the meta lock; take it only for a size change.
        let mut data = None;
        if let Some(size) = sa.size {
            if size > MAX_FILE {
                return Err(Errno::EFBIG);
            }
            data = Some(inode.file()?.write());
            if let Some(fh) = sa.fh {
                let h = self.handle(fh, ino)?;
                if h.flags & libc::O_ACCMODE as u32 == libc::O_RDONLY as u32 {
                    return Err(Errno::EBADF);
                }
            }
        }
        let mut m = inode.meta.lock();
        if m.freed {
            return Err(Errno::ENOENT);
        }
        // Every check first, so a refused request changes nothing.
        if sa.mode.is_some() && !perm::owner_or_root(ctx, m.owner()) {
            return Err(Errno::EPERM);
        }
        if let Some(uid) = sa.uid {
            if ctx.uid != 0 && !(ctx.uid == m.uid && uid == m.uid) {
                return Err(Errno::EPERM);
            }
        }
        if let Some(gid) = sa.gid {
            if ctx.uid != 0 && !(ctx.uid == m.uid && (gid == m.gid || perm::in_group(ctx, gid))) {
                return Err(Errno::EPERM);
            }
        }
        if sa.size.is_some() && sa.fh.is_none() {
            perm::check(ctx, m.owner(), perm::W)?;
        }
        for t in [sa.atime, sa.mtime].into_iter().flatten() {
            match t {
                TimeOrNow::Time { nsec, .. } if nsec >= 1_000_000_000 => return Err(Errno::EINVAL),
                TimeOrNow::Time { .. } if !perm::owner_or_root(ctx, m.owner()) => return Err(Errno::EPERM),
                TimeOrNow::Now if !perm::owner_or_root(ctx, m.owner()) => perm::check(ctx, m.owner(), perm::W)?,
                _ => {}
            }
        }
        let now = Ts::now();
        if let (Some(size), Some(d)) = (sa.size, data.as_mut()) {
            if size < m.size {
                let freed = d.truncate(size);
                self.space.release_bytes(freed * CHUNK);
                m.chunks = d.nchunks();
            }
            m.size = size;
            m.mtime = now;
        }
        if let Some(mode) = sa.mode {
            let mut mode = mode & 0o7777;
            let gid = sa.gid.unwrap_or(m.gid);
            if ctx.uid != 0 && !perm::in_group(ctx, gid) {
                mode &= !libc::S_ISGID;
            }
            m.mode = (m.mode & libc::S_IFMT) | mode;
        }
        if sa.uid.is_some() || sa.gid.is_some() {
            if let Some(uid) = sa.uid {
                m.uid = uid;
            }
            if let Some(gid) = sa.gid {
                m.gid = gid;
            }
            if !m.is_dir() {
                m.kill_suid();
            }
        }
        if sa.kill_suidgid {
            m.kill_suid();
        }
        let time = |t: TimeOrNow| match t {
            TimeOrNow::Now => now,
            TimeOrNow::Time { sec, nsec } => Ts { sec, nsec },
        };
        if let Some(t) = sa.atime {
            m.atime = time(t);
        }
        if let Some(t) = sa.mtime {
            m.mtime = time(t);
        }
        m.ctime = now;
        Ok(m.attr(ino))
    }
}
