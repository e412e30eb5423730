//! NFSv4.2 data operations, with `--nfs-minor 2`: lseek SEEK_DATA/SEEK_HOLE (SEEK),
//! fallocate (ALLOCATE, DEALLOCATE) and copy_file_range (a synchronous COPY on the server).
//! With minor version 1, or a server that answers NFS4ERR_NOTSUPP or OP_ILLEGAL, lseek and
//! copy_file_range answer ENOSYS (the guest's kernel falls back to its own) and fallocate
//! EOPNOTSUPP.

use crate::errno::errno;
use crate::handles::OpenFile;
use crate::{nfs, Inner};
use dpfs_core::Errno;
use dpfs_nfs4::ops::{Bitmap, Content, CopyArgs, NewAttrs, Op, Stable, StateId};
use dpfs_nfs4::{Creds, Error, Status};

/// Whether the server does not do the op (or the minor version lacks it).
fn unsupported(e: &Error) -> bool {
    matches!(e, Error::Nfs { status: Status::NotSupp | Status::OpIllegal | Status::MinorVersMismatch, .. })
}

/// The guest's errno of a failed NFSv4.2 op: `fallback` when the server does not do it.
pub(crate) fn v42_errno(e: &Error, fallback: Errno) -> Errno {
    if unsupported(e) {
        fallback
    } else {
        errno(e)
    }
}

impl Inner {
    fn v42(&self, fallback: Errno) -> Result<(), Errno> {
        if self.client.minor() >= 2 {
            Ok(())
        } else {
            Err(fallback)
        }
    }

    /// The stateid of `f`, re-opened first when the client id changed since its open.
    async fn current_stateid(&self, f: &OpenFile) -> Result<StateId, Errno> {
        let (sid, epoch) = *f.stateid.lock();
        if epoch == self.client.epoch() {
            return Ok(sid);
        }
        self.reopen_raw(f).await.map_err(|e| errno(&e))
    }

    /// lseek(2) with SEEK_DATA or SEEK_HOLE on open file `n`: the offset found.
    pub async fn lseek(&self, creds: &Creds, n: u64, offset: u64, whence: u32) -> Result<u64, Errno> {
        let what = match whence as i32 {
            libc::SEEK_DATA => Content::Data,
            libc::SEEK_HOLE => Content::Hole,
            _ => return Err(Errno::EINVAL),
        };
        self.v42(Errno::ENOSYS)?;
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let ops = vec![Op::PutFh(f.fh.clone()), Op::Seek { stateid: StateId::ANONYMOUS, offset, what }];
        let (mut r, _) = self.with_open_raw(creds, f, ops).await.map_err(|e| v42_errno(&e, Errno::ENOSYS))?;
        nfs(r.skip())?;
        let res = nfs(r.seek())?;
        // No data at or after `offset`: ENXIO, as lseek(2) says (and Linux's NFS client does).
        if what == Content::Data && res.eof {
            return Err(Errno::ENXIO);
        }
        Ok(res.offset)
    }

    /// fallocate(2) on open file `n`: mode 0 or KEEP_SIZE reserve (ALLOCATE; mode 0 also
    /// extends the size), PUNCH_HOLE|KEEP_SIZE frees (DEALLOCATE); other modes EOPNOTSUPP.
    /// Servers extend the file for an ALLOCATE past its end (ganesha and knfsd call
    /// fallocate with mode 0), so KEEP_SIZE reserves only up to the current size: the size
    /// stays, the reservation past the end is not made.
    pub async fn fallocate(&self, creds: &Creds, n: u64, offset: u64, length: u64, mode: u32) -> Result<(), Errno> {
        const KEEP_SIZE: u32 = libc::FALLOC_FL_KEEP_SIZE as u32;
        const PUNCH: u32 = libc::FALLOC_FL_PUNCH_HOLE as u32 | KEEP_SIZE;
        let end = offset.checked_add(length).filter(|&e| e <= i64::MAX as u64).ok_or(Errno::EFBIG)?;
        if length == 0 {
            return Err(Errno::EINVAL);
        }
        if !matches!(mode, 0 | KEEP_SIZE | PUNCH) {
            return Err(Errno::EOPNOTSUPP);
        }
        self.v42(Errno::EOPNOTSUPP)?;
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let (op, extend) = match mode {
            0 => (Op::Allocate { stateid: StateId::ANONYMOUS, offset, length }, true),
            KEEP_SIZE => {
                let size = nfs(self.client.getattr_as(creds, &f.fh).await)?.size.unwrap_or(0);
                if offset >= size {
                    return Ok(());
                }
                let length = end.min(size) - offset;
                (Op::Allocate { stateid: StateId::ANONYMOUS, offset, length }, false)
            }
            _ => (Op::Deallocate { stateid: StateId::ANONYMOUS, offset, length }, false),
        };
        let ops = vec![Op::PutFh(f.fh.clone()), op, Op::GetAttr(Bitmap::file())];
        let (mut r, _) = self.with_open_raw(creds, f, ops).await.map_err(|e| v42_errno(&e, Errno::EOPNOTSUPP))?;
        nfs(r.skip())?;
        nfs(r.skip())?;
        let attrs = nfs(r.getattr())?;
        // RFC 7862 leaves the size after an ALLOCATE past the end to the server: mode 0
        // must leave the file at least `end` long.
        if extend && attrs.size.is_some_and(|s| s < end) {
            let sid = self.current_stateid(f).await?;
            let size = NewAttrs { size: Some(end), ..NewAttrs::default() };
            self.call(creds, &[Op::PutFh(f.fh.clone()), Op::SetAttr(sid, size)]).await?;
        }
        Ok(())
    }

    /// copy_file_range(2) from open file `src` to open file `dst`: one synchronous COPY on
    /// the server (and a COMMIT when it left the data unstable). The bytes copied.
    pub async fn copy_file_range(
        &self,
        creds: &Creds,
        (src, src_offset): (u64, u64),
        (dst, dst_offset): (u64, u64),
        len: u64,
        flags: u64,
    ) -> Result<u64, Errno> {
        if flags != 0 {
            return Err(Errno::EINVAL);
        }
        self.v42(Errno::ENOSYS)?;
        if len == 0 {
            return Ok(0);
        }
        let (hs, hd) = (self.handles.file(src)?, self.handles.file(dst)?);
        let (fs, fd) = (hs.as_file().ok_or(Errno::EBADF)?, hd.as_file().ok_or(Errno::EBADF)?);
        let src_stateid = self.current_stateid(fs).await?;
        let args = CopyArgs { src_stateid, dst_stateid: StateId::ANONYMOUS, src_offset, dst_offset, count: len };
        let ops = vec![Op::PutFh(fs.fh.clone()), Op::SaveFh, Op::PutFh(fd.fh.clone()), Op::Copy(args)];
        let (mut r, _) = self.with_open_raw(creds, fd, ops).await.map_err(|e| v42_errno(&e, Errno::ENOSYS))?;
        for _ in 0..3 {
            nfs(r.skip())?;
        }
        let res = nfs(r.copy())?;
        if res.count > len {
            tracing::warn!(asked = len, got = res.count, "NFS COPY copied more than asked");
            return Err(Errno::EIO);
        }
        if res.committed == Stable::Unstable && res.count > 0 {
            self.call(creds, &[Op::PutFh(fd.fh.clone()), Op::Commit { offset: dst_offset, count: 0 }]).await?;
        }
        Ok(res.count)
    }
}
