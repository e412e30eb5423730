//! File data: open and create (an NFS OPEN per FUSE handle, each under its own open owner so
//! that closing one never closes another), read, UNSTABLE write, COMMIT on fsync, flush and
//! release, and close.

use crate::handles::{Dirty, Handle, OpenFile};
use crate::namei::check_name;
use crate::{nfs, Inner};
use dpfs_core::fs::Entry;
use dpfs_core::Errno;
use dpfs_nfs4::ops::io::{SHARE_ACCESS_BOTH, SHARE_ACCESS_READ, SHARE_ACCESS_WANT_NO_DELEG, SHARE_ACCESS_WRITE};
use dpfs_nfs4::ops::{Bitmap, Claim, CreateHow, NewAttrs, Op, OpenArgs, Stable};
use dpfs_nfs4::{Creds, FileHandle};
use parking_lot::Mutex;

/// OPEN4_SHARE_ACCESS_* of `open(2)` flags.
fn share_access(flags: u32) -> u32 {
    let access = match flags as i32 & libc::O_ACCMODE {
        libc::O_WRONLY => SHARE_ACCESS_WRITE,
        libc::O_RDWR => SHARE_ACCESS_BOTH,
        _ => SHARE_ACCESS_READ,
    };
    access | SHARE_ACCESS_WANT_NO_DELEG
}

impl Inner {
    fn open_args(&self, n: u64, flags: u32, how: CreateHow, claim: Claim) -> OpenArgs {
        OpenArgs {
            share_access: share_access(flags),
            share_deny: 0,
            clientid: self.client.clientid(),
            owner: n.to_be_bytes().to_vec(),
            how,
            claim,
        }
    }

    /// OPEN of an existing file (CLAIM_FH).
    pub async fn open(&self, creds: &Creds, ino: u64, flags: u32) -> Result<(u64, u32), Errno> {
        let fh = self.nodes.fh(ino)?;
        let n = self.handles.reserve()?;
        let ops = [Op::PutFh(fh.clone()), Op::Open(self.open_args(n, flags, CreateHow::NoCreate, Claim::Fh))];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let stateid = nfs(r.open())?.stateid;
        self.handles.insert(n, Handle::File(OpenFile { fh, stateid, dirty: Mutex::new(Dirty::Clean) }));
        Ok((n, 0))
    }

    /// OPEN with create (GUARDED for O_EXCL, else UNCHECKED; O_TRUNC sets size 0).
    pub async fn create(
        &self,
        creds: &Creds,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> Result<(Entry, u64, u32), Errno> {
        check_name(name)?;
        let dir = self.nodes.fh(parent)?;
        let n = self.handles.reserve()?;
        let mut attrs = NewAttrs::mode(mode);
        let how = if flags as i32 & libc::O_EXCL != 0 {
            CreateHow::Guarded(attrs)
        } else {
            if flags as i32 & libc::O_TRUNC != 0 {
                attrs.size = Some(0);
            }
            CreateHow::Unchecked(attrs)
        };
        let open = self.open_args(n, flags, how, Claim::Null(name.to_vec()));
        let ops = [Op::PutFh(dir), Op::Open(open), Op::GetFh, Op::GetAttr(Bitmap::file())];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let stateid = nfs(r.open())?.stateid;
        let fh = nfs(r.getfh())?;
        let attrs = nfs(r.getattr())?;
        self.handles.insert(n, Handle::File(OpenFile { fh: fh.clone(), stateid, dirty: Mutex::new(Dirty::Clean) }));
        match self.entry(fh, &attrs) {
            Ok(e) => Ok((e, n, 0)),
            Err(e) => {
                self.release(creds, n).await?;
                Err(e)
            }
        }
    }

    /// READ of up to `size` bytes at `offset`, in READs of at most `max_io` until EOF.
    pub async fn read(&self, creds: &Creds, n: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let mut out = Vec::new();
        while out.len() < size as usize {
            let count = (size - out.len() as u32).min(self.max_io);
            let at = offset.checked_add(out.len() as u64).ok_or(Errno::EINVAL)?;
            let ops = [Op::PutFh(f.fh.clone()), Op::Read { stateid: f.stateid, offset: at, count }];
            let mut r = self.call(creds, &ops).await?;
            nfs(r.skip())?;
            let res = nfs(r.read())?;
            if res.data.len() > count as usize {
                tracing::warn!(asked = count, got = res.data.len(), "NFS READ returned more than asked");
                return Err(Errno::EIO);
            }
            let short = res.data.is_empty() || res.eof;
            if out.is_empty() {
                out = res.data;
            } else {
                out.extend_from_slice(&res.data);
            }
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// An UNSTABLE WRITE; its verifier is kept for the COMMIT of the next fsync.
    pub async fn write(&self, creds: &Creds, n: u64, offset: u64, data: Vec<u8>) -> Result<u32, Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let len = data.len();
        let ops = [Op::PutFh(f.fh.clone()), Op::Write { stateid: f.stateid, offset, stable: Stable::Unstable, data }];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let res = nfs(r.write())?;
        if res.count as usize > len {
            return Err(Errno::EIO);
        }
        if res.committed == Stable::Unstable {
            let mut d = f.dirty.lock();
            *d = match *d {
                Dirty::Clean => Dirty::Unstable(res.verifier),
                Dirty::Unstable(v) if v == res.verifier => Dirty::Unstable(v),
                _ => Dirty::Lost,
            };
        }
        Ok(res.count)
    }

    /// COMMIT of the file's unstable writes: EIO when the server's verifier changed since
    /// they were written (it restarted and may have dropped them).
    pub async fn commit(&self, creds: &Creds, fh: &FileHandle, dirty: &Mutex<Dirty>) -> Result<(), Errno> {
        let before = *dirty.lock();
        if before == Dirty::Clean {
            return Ok(());
        }
        let mut r = self.call(creds, &[Op::PutFh(fh.clone()), Op::Commit { offset: 0, count: 0 }]).await?;
        nfs(r.skip())?;
        let verifier = nfs(r.commit())?;
        let mut d = dirty.lock();
        let ok = matches!(before, Dirty::Unstable(v) if v == verifier);
        if *d == before {
            *d = Dirty::Clean;
        }
        if ok {
            Ok(())
        } else {
            tracing::warn!("NFS write verifier changed before COMMIT: unstable writes may be lost");
            Err(Errno::EIO)
        }
    }

    /// fsync (and flush): COMMIT of handle `n`'s unstable writes.
    pub async fn fsync(&self, creds: &Creds, n: u64) -> Result<(), Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        self.commit(creds, &f.fh, &f.dirty).await
    }

    /// release: COMMIT what is left, then CLOSE.
    pub async fn release(&self, creds: &Creds, n: u64) -> Result<(), Errno> {
        let Some(h) = self.handles.remove(n) else { return Ok(()) };
        let Some(f) = h.as_file() else { return Ok(()) };
        let committed = self.commit(creds, &f.fh, &f.dirty).await;
        let mut r = self.call(creds, &[Op::PutFh(f.fh.clone()), Op::Close(f.stateid)]).await?;
        nfs(r.skip())?;
        nfs(r.close())?;
        committed
    }
}
