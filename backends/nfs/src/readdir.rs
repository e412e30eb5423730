//! READDIR pages as FUSE readdir and readdirplus. A FUSE offset is the NFS cookie of the
//! entry before (cookies 1 and 2 are reserved by NFS, so they serve `.` and `..`); the
//! cookie verifier of the last page is kept in the directory's handle.

use crate::handles::{Handle, OpenDir};
use crate::{nfs, Inner};
use dpfs_core::fs::Entry;
use dpfs_core::reply::{ReplyDir, ReplyDirPlus};
use dpfs_core::Errno;
use dpfs_nfs4::ops::{Bitmap, DirEntry, Op, ReadDirArgs};
use dpfs_nfs4::Creds;

/// Most bytes asked of one READDIR reply.
const MAX_PAGE: u32 = 64 << 10;

/// Whether a server's entry name is one a guest can be given.
fn valid(name: &[u8]) -> bool {
    !name.is_empty()
        && name.len() <= crate::namei::NAME_MAX
        && !name.contains(&b'/')
        && !name.contains(&0)
        && name != b"."
        && name != b".."
}

impl Inner {
    /// opendir.
    pub fn opendir(&self) -> Result<(u64, u32), Errno> {
        let n = self.handles.reserve()?;
        self.handles.insert(n, Handle::Dir(OpenDir::default()));
        Ok((n, 0))
    }

    /// One READDIR page after `offset` (FUSE offset = NFS cookie).
    async fn page(
        &self,
        creds: &Creds,
        ino: u64,
        n: u64,
        offset: u64,
        size: u32,
        plus: bool,
    ) -> Result<(Vec<DirEntry>, bool), Errno> {
        let h = self.handles.get(n)?;
        let d = h.as_dir().ok_or(Errno::EBADF)?;
        let fh = self.nodes.fh(ino)?;
        let cookie = if offset <= 2 { 0 } else { offset };
        let verifier = if cookie == 0 { [0; 8] } else { *d.verifier.lock() };
        let attrs = if plus { Bitmap::file_and_handle() } else { Bitmap::of(&[1, 20]) };
        let maxcount = size.saturating_mul(if plus { 4 } else { 2 }).clamp(4096, MAX_PAGE.min(self.max_io));
        let args = ReadDirArgs { cookie, verifier, dircount: size.clamp(1024, MAX_PAGE), maxcount, attrs };
        let mut r = self.call(creds, &[Op::PutFh(fh), Op::ReadDir(args)]).await?;
        nfs(r.skip())?;
        let res = nfs(r.readdir())?;
        *d.verifier.lock() = res.verifier;
        Ok((res.entries, res.eof))
    }

    /// The dot entries' type and inode number.
    async fn dot_ino(&self, creds: &Creds, ino: u64) -> Result<u64, Errno> {
        Ok(self.getattr(creds, ino).await?.0.ino)
    }

    /// READDIR into `reply`.
    pub async fn readdir(
        &self,
        creds: &Creds,
        ino: u64,
        n: u64,
        offset: u64,
        size: u32,
        mut reply: ReplyDir,
    ) -> Result<ReplyDir, (ReplyDir, Errno)> {
        let dot = match self.dot_ino(creds, ino).await {
            Ok(i) => i,
            Err(e) => return Err((reply, e)),
        };
        let dtype = libc::S_IFDIR >> 12;
        if offset < 1 && !reply.add(dot, 1, dtype, b".") {
            return Ok(reply);
        }
        if offset < 2 && !reply.add(dot, 2, dtype, b"..") {
            return Ok(reply);
        }
        let (entries, _eof) = match self.page(creds, ino, n, offset, size, false).await {
            Ok(p) => p,
            Err(e) => return Err((reply, e)),
        };
        for e in entries.iter().filter(|e| valid(&e.name)) {
            let (Some(ft), Some(fileid)) = (e.attrs.file_type, e.attrs.fileid) else { continue };
            if !reply.add(fileid, e.cookie, crate::attr::kind(ft) >> 12, &e.name) {
                break;
            }
        }
        Ok(reply)
    }

    /// READDIRPLUS into `reply`: each entry's attributes and handle come with the page, and
    /// each entry given to the guest holds a lookup of its node.
    pub async fn readdirplus(
        &self,
        creds: &Creds,
        ino: u64,
        n: u64,
        offset: u64,
        size: u32,
        mut reply: ReplyDirPlus,
    ) -> Result<ReplyDirPlus, (ReplyDirPlus, Errno)> {
        let dot = match self.getattr(creds, ino).await {
            Ok((a, _)) => a,
            Err(e) => return Err((reply, e)),
        };
        // The kernel takes no lookup reference for `.` and `..`: node id 0 says "no entry".
        let dots = Entry { ino: 0, attr: dot, ..Entry::default() };
        if offset < 1 && !reply.add(&dots, 1, b".") {
            return Ok(reply);
        }
        if offset < 2 && !reply.add(&dots, 2, b"..") {
            return Ok(reply);
        }
        let (entries, _eof) = match self.page(creds, ino, n, offset, size, true).await {
            Ok(p) => p,
            Err(e) => return Err((reply, e)),
        };
        for e in entries.into_iter().filter(|e| valid(&e.name)) {
            if !reply.fits(e.name.len()) {
                break;
            }
            let Some(fh) = e.attrs.filehandle.clone() else { continue };
            let Ok(entry) = self.entry(fh, &e.attrs) else { continue };
            if !reply.add(&entry, e.cookie, &e.name) {
                self.nodes.forget(entry.ino, 1);
                break;
            }
        }
        Ok(reply)
    }
}
