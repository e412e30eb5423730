//! Typed FUSE operations on a [`Client`]: each builds the request Linux would send, waits,
//! and decodes the reply into a value or [`Error::Errno`](crate::Error::Errno).

use crate::client::Client;
use crate::error::Result;
use crate::reply::{parse_direntplus, parse_dirents, parse_xattr_names, DirEntry, DirEntryPlus};
use crate::request::Request;
use dpfs_core::abi::{self, misc};
use dpfs_core::operation::Operation as O;

/// A GETXATTR/LISTXATTR answer: the size (when asked with size 0) or the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Xattr {
    /// Size of the value.
    Size(u32),
    /// The value.
    Value(Vec<u8>),
}

impl Client {
    fn op(&self, nodeid: u64, op: O<'_>) -> Result<crate::reply::Reply> {
        self.call(&Request::new(nodeid, op))?.ok()
    }

    /// LOOKUP `name` in `parent`.
    pub fn lookup(&self, parent: u64, name: &[u8]) -> Result<abi::EntryOut> {
        self.op(parent, O::Lookup { name })?.parse()
    }

    /// FORGET `nlookup` references to `nodeid` (hiprio queue, no reply).
    pub fn forget(&self, nodeid: u64, nlookup: u64) -> Result<()> {
        self.call(&Request::new(nodeid, O::Forget(abi::ForgetIn { nlookup }))).map(drop)
    }

    /// GETATTR, optionally through an open handle.
    pub fn getattr(&self, nodeid: u64, fh: Option<u64>) -> Result<abi::AttrOut> {
        let arg = abi::GetattrIn {
            getattr_flags: if fh.is_some() { misc::GETATTR_FH } else { 0 },
            dummy: 0,
            fh: fh.unwrap_or(0),
        };
        self.op(nodeid, O::Getattr(arg))?.parse()
    }

    /// SETATTR with the fields selected by `arg.valid`.
    pub fn setattr(&self, nodeid: u64, arg: abi::SetattrIn) -> Result<abi::AttrOut> {
        self.op(nodeid, O::Setattr(arg))?.parse()
    }

    /// MKDIR `name` in `parent`.
    pub fn mkdir(&self, parent: u64, name: &[u8], mode: u32, umask: u32) -> Result<abi::EntryOut> {
        self.op(parent, O::Mkdir { arg: abi::MkdirIn { mode, umask }, name })?.parse()
    }

    /// MKNOD `name` in `parent`.
    pub fn mknod(&self, parent: u64, name: &[u8], mode: u32, rdev: u32, umask: u32) -> Result<abi::EntryOut> {
        self.op(parent, O::Mknod { arg: abi::MknodIn { mode, rdev, umask, padding: 0 }, name })?.parse()
    }

    /// CREATE and open `name` in `parent` (`flags` are open(2) flags).
    pub fn create(&self, parent: u64, name: &[u8], flags: u32, mode: u32) -> Result<(abi::EntryOut, abi::OpenOut)> {
        let arg = abi::CreateIn { flags, mode, umask: 0o022, open_flags: 0 };
        let r = self.op(parent, O::Create { arg, name })?;
        let (e, o): (abi::EntryOut, abi::OpenOut) = r.parse::<CreateOut>().map(|c| (c.entry, c.open))?;
        Ok((e, o))
    }

    /// SYMLINK `name` in `parent` pointing at `target`.
    pub fn symlink(&self, parent: u64, name: &[u8], target: &[u8]) -> Result<abi::EntryOut> {
        self.op(parent, O::Symlink { name, target })?.parse()
    }

    /// READLINK.
    pub fn readlink(&self, nodeid: u64) -> Result<Vec<u8>> {
        Ok(self.op(nodeid, O::Readlink)?.body)
    }

    /// LINK `nodeid` as `name` in `newparent`.
    pub fn link(&self, nodeid: u64, newparent: u64, name: &[u8]) -> Result<abi::EntryOut> {
        self.op(newparent, O::Link { arg: abi::LinkIn { oldnodeid: nodeid }, name })?.parse()
    }

    /// UNLINK `name` from `parent`.
    pub fn unlink(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.op(parent, O::Unlink { name }).map(drop)
    }

    /// RMDIR `name` from `parent`.
    pub fn rmdir(&self, parent: u64, name: &[u8]) -> Result<()> {
        self.op(parent, O::Rmdir { name }).map(drop)
    }

    /// RENAME2 (`flags` = 0 sends plain RENAME, as Linux does).
    pub fn rename(&self, parent: u64, old: &[u8], newparent: u64, new: &[u8], flags: u32) -> Result<()> {
        let op = if flags == 0 {
            O::Rename { arg: abi::RenameIn { newdir: newparent }, old, new }
        } else {
            O::Rename2 { arg: abi::Rename2In { newdir: newparent, flags, padding: 0 }, old, new }
        };
        self.op(parent, op).map(drop)
    }

    /// OPEN with open(2) `flags`.
    pub fn open(&self, nodeid: u64, flags: u32) -> Result<abi::OpenOut> {
        self.op(nodeid, O::Open(abi::OpenIn { flags, open_flags: 0 }))?.parse()
    }

    /// OPENDIR.
    pub fn opendir(&self, nodeid: u64, flags: u32) -> Result<abi::OpenOut> {
        self.op(nodeid, O::Opendir(abi::OpenIn { flags, open_flags: 0 }))?.parse()
    }

    /// READ up to `size` bytes at `offset`.
    pub fn read(&self, nodeid: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<u8>> {
        let arg = abi::ReadIn { fh, offset, size, flags: libc::O_RDWR as u32, ..Default::default() };
        Ok(self.op(nodeid, O::Read(arg))?.body)
    }

    /// WRITE `data` at `offset`; returns the bytes written.
    pub fn write(&self, nodeid: u64, fh: u64, offset: u64, data: &[u8]) -> Result<u32> {
        let arg =
            abi::WriteIn { fh, offset, size: data.len() as u32, flags: libc::O_RDWR as u32, ..Default::default() };
        let r = self.call(&Request::with_payload(nodeid, O::Write(arg), data))?.ok()?;
        Ok(r.parse::<abi::WriteOut>()?.size)
    }

    /// READDIR with a buffer of `size` bytes from `offset`.
    pub fn readdir(&self, nodeid: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<DirEntry>> {
        let arg = abi::ReadIn { fh, offset, size, ..Default::default() };
        parse_dirents(&self.op(nodeid, O::Readdir(arg))?.body)
    }

    /// READDIRPLUS with a buffer of `size` bytes from `offset`.
    pub fn readdirplus(&self, nodeid: u64, fh: u64, offset: u64, size: u32) -> Result<Vec<DirEntryPlus>> {
        let arg = abi::ReadIn { fh, offset, size, ..Default::default() };
        parse_direntplus(&self.op(nodeid, O::Readdirplus(arg))?.body)
    }

    /// Reads a whole directory with OPENDIR, READDIR until empty, RELEASEDIR.
    pub fn list_dir(&self, nodeid: u64) -> Result<Vec<DirEntry>> {
        let fh = self.opendir(nodeid, libc::O_RDONLY as u32)?.fh;
        let mut all = Vec::new();
        let mut off = 0;
        let r = loop {
            match self.readdir(nodeid, fh, off, 4096) {
                Ok(v) if v.is_empty() => break Ok(()),
                Ok(v) => {
                    off = v.last().map(|d| d.off).unwrap_or(off);
                    all.extend(v);
                }
                Err(e) => break Err(e),
            }
        };
        self.releasedir(nodeid, fh)?;
        r.map(|()| all)
    }

    /// RELEASE an open file.
    pub fn release(&self, nodeid: u64, fh: u64, flags: u32) -> Result<()> {
        self.op(nodeid, O::Release(abi::ReleaseIn { fh, flags, release_flags: 0, lock_owner: 0 })).map(drop)
    }

    /// RELEASEDIR an open directory.
    pub fn releasedir(&self, nodeid: u64, fh: u64) -> Result<()> {
        let arg = abi::ReleaseIn { fh, flags: libc::O_RDONLY as u32, release_flags: 0, lock_owner: 0 };
        self.op(nodeid, O::Releasedir(arg)).map(drop)
    }

    /// FLUSH (sent on every close(2)).
    pub fn flush(&self, nodeid: u64, fh: u64, lock_owner: u64) -> Result<()> {
        self.op(nodeid, O::Flush(abi::FlushIn { fh, unused: 0, padding: 0, lock_owner })).map(drop)
    }

    /// FSYNC (`datasync` sets FSYNC_FDATASYNC).
    pub fn fsync(&self, nodeid: u64, fh: u64, datasync: bool) -> Result<()> {
        let fsync_flags = if datasync { misc::FSYNC_FDATASYNC } else { 0 };
        self.op(nodeid, O::Fsync(abi::FsyncIn { fh, fsync_flags, padding: 0 })).map(drop)
    }

    /// FSYNCDIR.
    pub fn fsyncdir(&self, nodeid: u64, fh: u64, datasync: bool) -> Result<()> {
        let fsync_flags = if datasync { misc::FSYNC_FDATASYNC } else { 0 };
        self.op(nodeid, O::Fsyncdir(abi::FsyncIn { fh, fsync_flags, padding: 0 })).map(drop)
    }

    /// STATFS of the file system containing `nodeid`.
    pub fn statfs(&self, nodeid: u64) -> Result<abi::Kstatfs> {
        Ok(self.op(nodeid, O::Statfs)?.parse::<abi::StatfsOut>()?.st)
    }

    /// ACCESS check with `mask` (R_OK/W_OK/X_OK/F_OK).
    pub fn access(&self, nodeid: u64, mask: u32) -> Result<()> {
        self.op(nodeid, O::Access(abi::AccessIn { mask, padding: 0 })).map(drop)
    }

    /// SETXATTR `name` = `value` with setxattr(2) `flags`.
    pub fn setxattr(&self, nodeid: u64, name: &[u8], value: &[u8], flags: u32) -> Result<()> {
        let arg = abi::SetxattrIn { size: value.len() as u32, flags, setxattr_flags: 0, padding: 0 };
        self.op(nodeid, O::Setxattr { arg, name, value }).map(drop)
    }

    /// GETXATTR `name` with a buffer of `size` bytes (0 asks for the size).
    pub fn getxattr(&self, nodeid: u64, name: &[u8], size: u32) -> Result<Xattr> {
        let r = self.op(nodeid, O::Getxattr { arg: abi::GetxattrIn { size, padding: 0 }, name })?;
        xattr_reply(r, size)
    }

    /// LISTXATTR with a buffer of `size` bytes (0 asks for the size).
    pub fn listxattr(&self, nodeid: u64, size: u32) -> Result<Xattr> {
        let r = self.op(nodeid, O::Listxattr(abi::GetxattrIn { size, padding: 0 }))?;
        xattr_reply(r, size)
    }

    /// The names LISTXATTR returns (asks for the size first, as getfattr does).
    pub fn list_xattr_names(&self, nodeid: u64) -> Result<Vec<Vec<u8>>> {
        match self.listxattr(nodeid, 0)? {
            Xattr::Size(0) => Ok(Vec::new()),
            Xattr::Size(n) => match self.listxattr(nodeid, n)? {
                Xattr::Value(v) => Ok(parse_xattr_names(&v)),
                Xattr::Size(_) => Ok(Vec::new()),
            },
            Xattr::Value(v) => Ok(parse_xattr_names(&v)),
        }
    }

    /// REMOVEXATTR `name`.
    pub fn removexattr(&self, nodeid: u64, name: &[u8]) -> Result<()> {
        self.op(nodeid, O::Removexattr { name }).map(drop)
    }

    /// FALLOCATE `length` bytes at `offset` with fallocate(2) `mode`.
    pub fn fallocate(&self, nodeid: u64, fh: u64, offset: u64, length: u64, mode: u32) -> Result<()> {
        self.op(nodeid, O::Fallocate(abi::FallocateIn { fh, offset, length, mode, padding: 0 })).map(drop)
    }

    /// LSEEK (SEEK_DATA/SEEK_HOLE).
    pub fn lseek(&self, nodeid: u64, fh: u64, offset: u64, whence: u32) -> Result<u64> {
        let r = self.op(nodeid, O::Lseek(abi::LseekIn { fh, offset, whence, padding: 0 }))?;
        Ok(r.parse::<abi::LseekOut>()?.offset)
    }
}

/// The CREATE reply: entry then open.
#[derive(Clone, Copy, zerocopy::FromBytes, zerocopy::Immutable, zerocopy::KnownLayout)]
#[repr(C)]
struct CreateOut {
    entry: abi::EntryOut,
    open: abi::OpenOut,
}

fn xattr_reply(r: crate::reply::Reply, size: u32) -> Result<Xattr> {
    if size == 0 {
        Ok(Xattr::Size(r.parse::<abi::GetxattrOut>()?.size))
    } else {
        Ok(Xattr::Value(r.body))
    }
}
