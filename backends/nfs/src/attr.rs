//! Attributes: NFS fattr4 → FUSE attributes, and getattr, setattr, access and statfs.

use crate::{nfs, Inner};
use dpfs_core::fs::{Attr, Entry, SetAttr, Statfs, TimeOrNow};
use dpfs_core::Errno;
use dpfs_nfs4::ops::{access, Bitmap, NewAttrs, Op, SetTime, StateId, Time};
use dpfs_nfs4::{Attrs, Creds, FileHandle, FileType, Owner};
use std::time::Duration;

/// Block size reported to the guest.
const BLKSIZE: u32 = 4096;

/// The `S_IF*` bits of a file type.
pub fn kind(ft: FileType) -> u32 {
    match ft {
        FileType::Regular | FileType::NamedAttr => libc::S_IFREG,
        FileType::Directory | FileType::AttrDir => libc::S_IFDIR,
        FileType::Block => libc::S_IFBLK,
        FileType::Char => libc::S_IFCHR,
        FileType::Symlink => libc::S_IFLNK,
        FileType::Socket => libc::S_IFSOCK,
        FileType::Fifo => libc::S_IFIFO,
    }
}

fn time(t: Option<Time>) -> (u64, u32) {
    t.map_or((0, 0), |t| (t.seconds as u64, t.nseconds))
}

impl Inner {
    /// FUSE attributes of a file whose fattr4 carried [`Bitmap::file`]: type and file id
    /// are required (EIO without them).
    pub fn to_attr(&self, a: &Attrs) -> Result<Attr, Errno> {
        let (Some(ft), Some(fileid)) = (a.file_type, a.fileid) else {
            tracing::warn!("NFS attributes without type or file id");
            return Err(Errno::EIO);
        };
        let kind = kind(ft);
        let (atime, atimensec) = time(a.time_access);
        let (mtime, mtimensec) = time(a.time_modify);
        let (ctime, ctimensec) = time(a.time_metadata.or(a.time_modify));
        let (major, minor) = a.rawdev.unwrap_or((0, 0));
        let size = a.size.unwrap_or(0);
        Ok(Attr {
            ino: fileid,
            size,
            blocks: a.space_used.unwrap_or(size).div_ceil(512),
            atime,
            mtime,
            ctime,
            atimensec,
            mtimensec,
            ctimensec,
            mode: kind | (a.mode.unwrap_or(0) & 0o7777),
            nlink: a.numlinks.unwrap_or(1),
            uid: a.owner.as_ref().map_or(ids_nobody(), |o| self.ids.uid(o)),
            gid: a.owner_group.as_ref().map_or(ids_nobody(), |o| self.ids.gid(o)),
            rdev: libc::makedev(major, minor) as u32,
            blksize: BLKSIZE,
            flags: 0,
        })
    }

    /// The guest's entry for `fh` with attributes `a`: one more lookup of its node.
    pub fn entry(&self, fh: FileHandle, a: &Attrs) -> Result<Entry, Errno> {
        let attr = self.to_attr(a)?;
        let ino = self.nodes.remember(fh, attr.ino)?;
        Ok(Entry {
            ino,
            generation: 0,
            attr,
            entry_timeout: self.cfg.entry_timeout,
            attr_timeout: self.cfg.attr_timeout,
        })
    }

    /// GETATTR.
    pub async fn getattr(&self, creds: &Creds, ino: u64) -> Result<(Attr, Duration), Errno> {
        let fh = self.nodes.fh(ino)?;
        let mut r = self.call(creds, &[Op::PutFh(fh), Op::GetAttr(Bitmap::file())]).await?;
        nfs(r.skip())?;
        Ok((self.to_attr(&nfs(r.getattr())?)?, self.cfg.attr_timeout))
    }

    /// SETATTR of what `s` sets (a size change under the open's stateid when the guest
    /// names an open file), then GETATTR.
    pub async fn setattr(&self, creds: &Creds, ino: u64, s: SetAttr) -> Result<(Attr, Duration), Errno> {
        let fh = self.nodes.fh(ino)?;
        let settime = |t: Option<TimeOrNow>| {
            t.map(|t| match t {
                TimeOrNow::Now => SetTime::ServerTime,
                TimeOrNow::Time { sec, nsec } => {
                    SetTime::Client(Time { seconds: sec, nseconds: nsec.min(999_999_999) })
                }
            })
        };
        let new = NewAttrs {
            size: s.size,
            mode: s.mode.map(|m| m & 0o7777),
            owner: s.uid.map(Owner::Id),
            owner_group: s.gid.map(Owner::Id),
            atime: settime(s.atime),
            mtime: settime(s.mtime),
        };
        let stateid = s
            .fh
            .and_then(|n| self.handles.get(n).ok())
            .and_then(|h| h.as_file().map(|f| *f.stateid.lock()).filter(|s| s.1 == self.client.epoch()).map(|s| s.0))
            .unwrap_or(StateId::ANONYMOUS);
        let mut ops = vec![Op::PutFh(fh)];
        // A size change goes in a SETATTR of its own: ganesha applies nothing else of a
        // SETATTR that changes the size (open(O_TRUNC) sends size 0 with mtime NOW, and the
        // times stayed unchanged).
        let mut new = new;
        if let (Some(size), false) = (new.size, NewAttrs { size: None, ..new.clone() }.is_empty()) {
            ops.push(Op::SetAttr(stateid, NewAttrs { size: Some(size), ..NewAttrs::default() }));
            new.size = None;
        }
        if !new.is_empty() {
            ops.push(Op::SetAttr(stateid, new));
        }
        ops.push(Op::GetAttr(Bitmap::file()));
        let mut r = self.call(creds, &ops).await?;
        for _ in 1..ops.len() {
            nfs(r.skip())?;
        }
        Ok((self.to_attr(&nfs(r.getattr())?)?, self.cfg.attr_timeout))
    }

    /// ACCESS: `mask` (R_OK, W_OK, X_OK) as ACCESS4 bits for the object's type; F_OK only
    /// checks the object exists.
    pub async fn access(&self, creds: &Creds, ino: u64, mask: u32) -> Result<(), Errno> {
        let fh = self.nodes.fh(ino)?;
        let ops = [Op::PutFh(fh), Op::GetAttr(Bitmap::of(&[1])), Op::Access(0x3f)];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let dir = nfs(r.getattr())?.file_type == Some(FileType::Directory);
        let (_, granted) = nfs(r.access())?;
        let mut want = 0;
        if mask & libc::R_OK as u32 != 0 {
            want |= access::READ;
        }
        if mask & libc::W_OK as u32 != 0 {
            want |=
                if dir { access::MODIFY | access::EXTEND | access::DELETE } else { access::MODIFY | access::EXTEND };
        }
        if mask & libc::X_OK as u32 != 0 {
            want |= if dir { access::LOOKUP } else { access::EXECUTE };
        }
        if granted & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    /// The file system's space and files, from the export root's attributes.
    pub async fn statfs(&self, creds: &Creds) -> Result<Statfs, Errno> {
        let fh = self.client.root().clone();
        let mut r = self.call(creds, &[Op::PutFh(fh), Op::GetAttr(Bitmap::fs())]).await?;
        nfs(r.skip())?;
        let a = nfs(r.getattr())?;
        let b = u64::from(BLKSIZE);
        Ok(Statfs {
            blocks: a.space_total.unwrap_or(0) / b,
            bfree: a.space_free.unwrap_or(0) / b,
            bavail: a.space_avail.unwrap_or(0) / b,
            files: a.files_total.unwrap_or(0),
            ffree: a.files_free.unwrap_or(0),
            bsize: BLKSIZE,
            namelen: a.maxname.unwrap_or(255).min(crate::namei::NAME_MAX as u32),
            frsize: BLKSIZE,
            ..Statfs::default()
        })
    }
}

fn ids_nobody() -> u32 {
    crate::ids::NOBODY
}
