//! Names: lookup, mkdir, mknod, symlink, link, unlink, rmdir, rename, readlink.

use crate::{nfs, Inner};
use dpfs_core::fs::Entry;
use dpfs_core::Errno;
use dpfs_nfs4::ops::io::{SHARE_ACCESS_READ, SHARE_ACCESS_WANT_NO_DELEG};
use dpfs_nfs4::ops::{Bitmap, Claim, CreateArgs, CreateHow, CreateKind, NewAttrs, Op, OpenArgs};
use dpfs_nfs4::{Creds, FileType};

/// Longest name the guest may use (NAME_MAX).
pub const NAME_MAX: usize = 255;
/// Longest symlink target.
pub const SYMLINK_MAX: usize = 4095;

/// Refuses names NFS or POSIX cannot take here.
pub fn check_name(name: &[u8]) -> Result<(), Errno> {
    if name.len() > NAME_MAX {
        return Err(Errno(libc::ENAMETOOLONG));
    }
    if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl Inner {
    /// LOOKUP (LOOKUPP for `..`, the node itself for `.`).
    pub async fn lookup(&self, creds: &Creds, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        check_name(name)?;
        let dir = self.nodes.fh(parent)?;
        let step = match name {
            b"." => None,
            b".." => Some(Op::LookupP),
            _ => Some(Op::Lookup(name.to_vec())),
        };
        let mut ops = vec![Op::PutFh(dir)];
        ops.extend(step);
        ops.push(Op::GetFh);
        ops.push(Op::GetAttr(Bitmap::file()));
        let mut r = self.call(creds, &ops).await?;
        for _ in 2..ops.len() {
            nfs(r.skip())?;
        }
        let fh = nfs(r.getfh())?;
        let attrs = nfs(r.getattr())?;
        self.entry(fh, &attrs)
    }

    /// CREATE of a directory, symlink, FIFO or socket in `parent`.
    pub async fn create_node(
        &self,
        creds: &Creds,
        parent: u64,
        name: &[u8],
        kind: CreateKind,
        mode: u32,
    ) -> Result<Entry, Errno> {
        check_name(name)?;
        let dir = self.nodes.fh(parent)?;
        let create = CreateArgs { kind, name: name.to_vec(), attrs: NewAttrs::mode(mode) };
        let ops = [Op::PutFh(dir), Op::Create(create), Op::GetFh, Op::GetAttr(Bitmap::file())];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        nfs(r.create())?;
        let fh = nfs(r.getfh())?;
        self.entry(fh, &nfs(r.getattr())?)
    }

    /// MKNOD: FIFOs and sockets through CREATE, regular files through OPEN+CLOSE; device
    /// nodes are refused (EPERM): a tenant does not make devices on the filer.
    pub async fn mknod(&self, creds: &Creds, parent: u64, name: &[u8], mode: u32) -> Result<Entry, Errno> {
        match mode & libc::S_IFMT {
            libc::S_IFIFO => self.create_node(creds, parent, name, CreateKind::Fifo, mode).await,
            libc::S_IFSOCK => self.create_node(creds, parent, name, CreateKind::Socket, mode).await,
            libc::S_IFREG | 0 => self.mkfile(creds, parent, name, mode).await,
            libc::S_IFBLK | libc::S_IFCHR => Err(Errno::EPERM),
            _ => Err(Errno::EINVAL),
        }
    }

    /// A regular file created exclusively and closed at once.
    async fn mkfile(&self, creds: &Creds, parent: u64, name: &[u8], mode: u32) -> Result<Entry, Errno> {
        check_name(name)?;
        let dir = self.nodes.fh(parent)?;
        let owner = self.handles.reserve()?.to_be_bytes().to_vec();
        let open = OpenArgs {
            share_access: SHARE_ACCESS_READ | SHARE_ACCESS_WANT_NO_DELEG,
            share_deny: 0,
            clientid: self.client.clientid(),
            owner,
            how: CreateHow::Guarded(NewAttrs::mode(mode)),
            claim: Claim::Null(name.to_vec()),
        };
        let ops = [Op::PutFh(dir), Op::Open(open), Op::GetFh, Op::GetAttr(Bitmap::file())];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let stateid = nfs(r.open())?.stateid;
        let fh = nfs(r.getfh())?;
        let attrs = nfs(r.getattr())?;
        let close = [Op::PutFh(fh.clone()), Op::Close(stateid)];
        if let Err(e) = self.call(creds, &close).await {
            tracing::debug!(?e, "CLOSE after MKNOD failed");
        }
        self.entry(fh, &attrs)
    }

    /// READLINK.
    pub async fn readlink(&self, creds: &Creds, ino: u64) -> Result<Vec<u8>, Errno> {
        let fh = self.nodes.fh(ino)?;
        let mut r = self.call(creds, &[Op::PutFh(fh), Op::ReadLink]).await?;
        nfs(r.skip())?;
        nfs(r.readlink())
    }

    /// LINK `ino` as `name` in `parent`.
    pub async fn link(&self, creds: &Creds, ino: u64, parent: u64, name: &[u8]) -> Result<Entry, Errno> {
        check_name(name)?;
        let file = self.nodes.fh(ino)?;
        let dir = self.nodes.fh(parent)?;
        let ops = [
            Op::PutFh(file.clone()),
            Op::SaveFh,
            Op::PutFh(dir),
            Op::Link(name.to_vec()),
            Op::RestoreFh,
            Op::GetAttr(Bitmap::file()),
        ];
        let mut r = match self.call(creds, &ops).await {
            // POSIX: hard links to directories are EPERM.
            Err(e) if e.0 == libc::EISDIR => return Err(Errno::EPERM),
            r => r?,
        };
        for _ in 0..5 {
            nfs(r.skip())?;
        }
        self.entry(file, &nfs(r.getattr())?)
    }

    /// The type of `parent`'s entry `name`.
    async fn type_of(&self, creds: &Creds, parent: u64, name: &[u8]) -> Result<Option<FileType>, Errno> {
        let dir = self.nodes.fh(parent)?;
        let ops = [Op::PutFh(dir), Op::Lookup(name.to_vec()), Op::GetAttr(Bitmap::of(&[1]))];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        nfs(r.skip())?;
        Ok(nfs(r.getattr())?.file_type)
    }

    /// UNLINK (EISDIR for a directory) and RMDIR (ENOTDIR for anything else): NFS REMOVE
    /// removes both, so the entry's type is checked first.
    pub async fn remove(&self, creds: &Creds, parent: u64, name: &[u8], dir: bool) -> Result<(), Errno> {
        check_name(name)?;
        match (dir, name) {
            (true, b".") => return Err(Errno::EINVAL),
            (true, b"..") => return Err(Errno(libc::ENOTEMPTY)),
            (false, b"." | b"..") => return Err(Errno::EISDIR),
            _ => {}
        }
        let is_dir = self.type_of(creds, parent, name).await? == Some(FileType::Directory);
        match (dir, is_dir) {
            (false, true) => return Err(Errno::EISDIR),
            (true, false) => return Err(Errno::ENOTDIR),
            _ => {}
        }
        let fh = self.nodes.fh(parent)?;
        let mut r = match self.call(creds, &[Op::PutFh(fh), Op::Remove(name.to_vec())]).await {
            // A non-empty directory.
            Err(e) if dir && e.0 == libc::EEXIST => return Err(Errno(libc::ENOTEMPTY)),
            r => r?,
        };
        nfs(r.skip())?;
        nfs(r.remove()).map(drop)
    }

    /// RENAME (RENAME_NOREPLACE checked first, RENAME_EXCHANGE refused with EINVAL).
    pub async fn rename(
        &self,
        creds: &Creds,
        parent: u64,
        name: &[u8],
        newparent: u64,
        newname: &[u8],
        flags: u32,
    ) -> Result<(), Errno> {
        check_name(name)?;
        check_name(newname)?;
        const NOREPLACE: u32 = 1;
        if flags & !NOREPLACE != 0 {
            return Err(Errno::EINVAL);
        }
        if flags & NOREPLACE != 0 {
            match self.type_of(creds, newparent, newname).await {
                Ok(_) => return Err(Errno::EEXIST),
                Err(e) if e == Errno::ENOENT => {}
                Err(e) => return Err(e),
            }
        }
        let from = self.nodes.fh(parent)?;
        let to = self.nodes.fh(newparent)?;
        let ops = [Op::PutFh(from), Op::SaveFh, Op::PutFh(to), Op::Rename(name.to_vec(), newname.to_vec())];
        let mut r = match self.call(creds, &ops).await {
            // Over a non-empty directory.
            Err(e) if e.0 == libc::EEXIST => return Err(Errno(libc::ENOTEMPTY)),
            r => r?,
        };
        for _ in 0..3 {
            nfs(r.skip())?;
        }
        nfs(r.rename()).map(drop)
    }
}
