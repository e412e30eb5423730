//! A typed software guest for backend tests: encodes FUSE requests, sends them through a
//! real [`Device`] over any [`FileSystem`], and decodes the replies. Backends' test suites
//! share it, so each tests its semantics through the same request path the HALs use.

use crate::abi::{self, AttrOut, Dirent, EntryOut, FileLock, OutHeader};
use crate::local::LocalClient;
use crate::operation::{encode_message, Layout, MessageHeader, Operation};
use crate::{owned_request, Device, DeviceId, FileSystem, OwnedReply, SessionConfig};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use zerocopy::FromBytes;

/// The root directory's node id.
pub const ROOT: u64 = 1;

/// A decoded reply: `Err(errno)` (positive) or the body.
pub type Res<T> = Result<T, i32>;

/// Who sends requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller {
    /// Caller uid.
    pub uid: u32,
    /// Caller gid.
    pub gid: u32,
    /// Supplementary group sent with create-type requests.
    pub supp: Option<u32>,
}

/// A guest talking to one device over the file system `F`.
pub struct Guest<F> {
    /// The device the requests go through.
    pub dev: Arc<Device>,
    /// The backend, for tests that inspect its state.
    pub fs: Arc<F>,
    unique: Arc<AtomicU64>,
    /// Who the requests come from.
    pub who: Caller,
}

impl<F> Clone for Guest<F> {
    fn clone(&self) -> Self {
        Guest { dev: self.dev.clone(), fs: self.fs.clone(), unique: self.unique.clone(), who: self.who }
    }
}

/// The body of a reply, or its errno (positive).
pub fn body(r: OwnedReply) -> Res<Vec<u8>> {
    let bytes = r.bytes();
    let (h, _) = OutHeader::read_from_prefix(&bytes).map_err(|_| libc::EPROTO)?;
    if h.error != 0 {
        return Err(-h.error);
    }
    Ok(bytes[16..].to_vec())
}

fn parse<T: FromBytes>(b: Vec<u8>) -> Res<T> {
    T::read_from_prefix(&b).map(|(v, _)| v).map_err(|_| libc::EPROTO)
}

/// A directory entry read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dent {
    /// Inode number.
    pub ino: u64,
    /// Cookie of the next entry.
    pub off: u64,
    /// Dirent type (`DT_*`).
    pub typ: u32,
    /// Entry name.
    pub name: Vec<u8>,
    /// READDIRPLUS: the entry's node id (0 for `.`/`..` in some servers).
    pub nodeid: u64,
}

impl<F: FileSystem> Guest<F> {
    /// A guest of a fresh device over `fs`, after a 7.45 INIT; `None` if INIT failed.
    /// Returns the negotiated INIT reply too.
    pub fn new(fs: Arc<F>) -> Option<(Guest<F>, abi::InitOut)> {
        let dyn_fs: Arc<dyn FileSystem> = fs.clone();
        let dev = Arc::new(Device::new(DeviceId(0), dyn_fs, SessionConfig::default()));
        let init = LocalClient::new(&dev).init()?;
        Some((Guest { dev, fs, unique: Arc::new(AtomicU64::new(100)), who: Caller::default() }, init))
    }

    /// The same guest, calling as another user.
    pub fn as_user(&self, uid: u32, gid: u32) -> Guest<F> {
        Guest { who: Caller { uid, gid, supp: None }, ..self.clone() }
    }

    /// The same guest, sending a supplementary group with create-type requests.
    pub fn with_supp(&self, gid: u32) -> Guest<F> {
        let mut g = self.clone();
        g.who.supp = Some(gid);
        g
    }

    /// Sends a request; the reply arrives on the returned channel (maybe later).
    pub fn send(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> mpsc::Receiver<OwnedReply> {
        self.send_unique(self.unique.fetch_add(1, Ordering::Relaxed), nodeid, op, payload, reply)
    }

    /// As `send`, with a chosen `unique`.
    pub fn send_unique(
        &self,
        unique: u64,
        nodeid: u64,
        op: &Operation<'_>,
        payload: &[u8],
        reply: usize,
    ) -> mpsc::Receiver<OwnedReply> {
        let h = MessageHeader { unique, nodeid, uid: self.who.uid, gid: self.who.gid, pid: 7 };
        let msg = encode_message(h, op, payload, self.who.supp, Layout::default());
        let (tx, rx) = mpsc::channel();
        let req = owned_request(DeviceId(0), vec![msg], &[16, reply], move |r| {
            let _ = tx.send(r);
        });
        self.dev.handle(req);
        rx
    }

    /// Sends a request and waits (10 s at most) for its reply body.
    pub fn call(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> Res<Vec<u8>> {
        let rx = self.send(nodeid, op, payload, reply);
        body(rx.recv_timeout(Duration::from_secs(10)).map_err(|_| libc::ETIMEDOUT)?)
    }

    fn entry(&self, nodeid: u64, op: &Operation<'_>) -> Res<EntryOut> {
        parse(self.call(nodeid, op, &[], 256)?)
    }

    /// LOOKUP.
    pub fn lookup(&self, parent: u64, name: &str) -> Res<EntryOut> {
        self.entry(parent, &Operation::Lookup { name: name.as_bytes() })
    }
    /// MKDIR.
    pub fn mkdir(&self, parent: u64, name: &str, mode: u32) -> Res<EntryOut> {
        self.entry(parent, &Operation::Mkdir { arg: abi::MkdirIn { mode, umask: 0 }, name: name.as_bytes() })
    }
    /// MKNOD.
    pub fn mknod(&self, parent: u64, name: &str, mode: u32, rdev: u32) -> Res<EntryOut> {
        let arg = abi::MknodIn { mode, rdev, umask: 0, padding: 0 };
        self.entry(parent, &Operation::Mknod { arg, name: name.as_bytes() })
    }
    /// SYMLINK.
    pub fn symlink(&self, parent: u64, name: &str, target: &str) -> Res<EntryOut> {
        self.entry(parent, &Operation::Symlink { name: name.as_bytes(), target: target.as_bytes() })
    }
    /// LINK.
    pub fn link(&self, ino: u64, newparent: u64, name: &str) -> Res<EntryOut> {
        self.entry(newparent, &Operation::Link { arg: abi::LinkIn { oldnodeid: ino }, name: name.as_bytes() })
    }
    /// READLINK.
    pub fn readlink(&self, ino: u64) -> Res<Vec<u8>> {
        self.call(ino, &Operation::Readlink, &[], 4096)
    }
    /// CREATE; returns the entry and the handle.
    pub fn create(&self, parent: u64, name: &str, mode: u32, flags: u32) -> Res<(EntryOut, u64)> {
        let arg = abi::CreateIn { flags, mode, umask: 0, open_flags: 0 };
        let b = self.call(parent, &Operation::Create { arg, name: name.as_bytes() }, &[], 256)?;
        let e: EntryOut = parse(b.clone())?;
        let o: abi::OpenOut = parse(b[128..].to_vec())?;
        Ok((e, o.fh))
    }
    /// Creates `name` read-write and returns (node id, fh).
    pub fn mkfile(&self, parent: u64, name: &str) -> Res<(u64, u64)> {
        self.create(parent, name, libc::S_IFREG | 0o644, libc::O_RDWR as u32).map(|(e, fh)| (e.nodeid, fh))
    }
    /// TMPFILE; returns the entry and the handle.
    pub fn tmpfile(&self, parent: u64, mode: u32, flags: u32) -> Res<(EntryOut, u64)> {
        let arg = abi::CreateIn { flags, mode, umask: 0, open_flags: 0 };
        let b = self.call(parent, &Operation::Tmpfile { arg, name: b"" }, &[], 256)?;
        let o: abi::OpenOut = parse(b[128..].to_vec())?;
        Ok((parse(b)?, o.fh))
    }
    /// OPEN; returns the handle.
    pub fn open(&self, ino: u64, flags: u32) -> Res<u64> {
        let b = self.call(ino, &Operation::Open(abi::OpenIn { flags, open_flags: 0 }), &[], 64)?;
        parse::<abi::OpenOut>(b).map(|o| o.fh)
    }
    /// OPENDIR; returns the handle.
    pub fn opendir(&self, ino: u64) -> Res<u64> {
        let b = self.call(ino, &Operation::Opendir(abi::OpenIn { flags: 0, open_flags: 0 }), &[], 64)?;
        parse::<abi::OpenOut>(b).map(|o| o.fh)
    }
    /// RELEASE.
    pub fn release(&self, ino: u64, fh: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: 0, lock_owner: 0 };
        self.call(ino, &Operation::Release(arg), &[], 0).map(|_| ())
    }
    /// RELEASE dropping `owner`'s flock.
    pub fn release_flock(&self, ino: u64, fh: u64, owner: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: abi::misc::RELEASE_FLOCK_UNLOCK, lock_owner: owner };
        self.call(ino, &Operation::Release(arg), &[], 0).map(|_| ())
    }
    /// FLUSH.
    pub fn flush(&self, ino: u64, fh: u64, owner: u64) -> Res<()> {
        let arg = abi::FlushIn { fh, unused: 0, padding: 0, lock_owner: owner };
        self.call(ino, &Operation::Flush(arg), &[], 0).map(|_| ())
    }
    /// WRITE; returns bytes written.
    pub fn write(&self, ino: u64, fh: u64, off: u64, data: &[u8]) -> Res<u32> {
        let arg = abi::WriteIn { fh, offset: off, size: data.len() as u32, ..Default::default() };
        let b = self.call(ino, &Operation::Write(arg), data, 16)?;
        parse::<abi::WriteOut>(b).map(|w| w.size)
    }
    /// READ.
    pub fn read(&self, ino: u64, fh: u64, off: u64, size: u32) -> Res<Vec<u8>> {
        let arg = abi::ReadIn { fh, offset: off, size, ..Default::default() };
        self.call(ino, &Operation::Read(arg), &[], size as usize)
    }
    /// UNLINK.
    pub fn unlink(&self, parent: u64, name: &str) -> Res<()> {
        self.call(parent, &Operation::Unlink { name: name.as_bytes() }, &[], 0).map(|_| ())
    }
    /// RMDIR.
    pub fn rmdir(&self, parent: u64, name: &str) -> Res<()> {
        self.call(parent, &Operation::Rmdir { name: name.as_bytes() }, &[], 0).map(|_| ())
    }
    /// RENAME2 with `flags`.
    pub fn rename(&self, p: u64, name: &str, np: u64, newname: &str, flags: u32) -> Res<()> {
        let arg = abi::Rename2In { newdir: np, flags, padding: 0 };
        self.call(p, &Operation::Rename2 { arg, old: name.as_bytes(), new: newname.as_bytes() }, &[], 0).map(|_| ())
    }
    /// FORGET (no reply).
    pub fn forget(&self, ino: u64, n: u64) {
        let _ = self.send(ino, &Operation::Forget(abi::ForgetIn { nlookup: n }), &[], 0).recv();
    }
    /// GETATTR.
    pub fn getattr(&self, ino: u64) -> Res<abi::Attr> {
        let b = self.call(ino, &Operation::Getattr(abi::GetattrIn::default()), &[], 128)?;
        parse::<AttrOut>(b).map(|a| a.attr)
    }
    /// SETATTR.
    pub fn setattr(&self, ino: u64, s: abi::SetattrIn) -> Res<abi::Attr> {
        let b = self.call(ino, &Operation::Setattr(s), &[], 128)?;
        parse::<AttrOut>(b).map(|a| a.attr)
    }
    /// SETATTR of the size.
    pub fn truncate(&self, ino: u64, size: u64) -> Res<abi::Attr> {
        self.setattr(ino, abi::SetattrIn { valid: abi::fattr::SIZE, size, ..Default::default() })
    }
    /// SETATTR of the mode.
    pub fn chmod(&self, ino: u64, mode: u32) -> Res<abi::Attr> {
        self.setattr(ino, abi::SetattrIn { valid: abi::fattr::MODE, mode, ..Default::default() })
    }
    /// ACCESS.
    pub fn access(&self, ino: u64, mask: u32) -> Res<()> {
        self.call(ino, &Operation::Access(abi::AccessIn { mask, padding: 0 }), &[], 0).map(|_| ())
    }
    /// STATFS.
    pub fn statfs(&self) -> Res<abi::Kstatfs> {
        parse::<abi::StatfsOut>(self.call(ROOT, &Operation::Statfs, &[], 128)?).map(|s| s.st)
    }
    /// FALLOCATE.
    pub fn fallocate(&self, ino: u64, fh: u64, offset: u64, length: u64, mode: u32) -> Res<()> {
        let arg = abi::FallocateIn { fh, offset, length, mode, padding: 0 };
        self.call(ino, &Operation::Fallocate(arg), &[], 0).map(|_| ())
    }
    /// LSEEK.
    pub fn lseek(&self, ino: u64, fh: u64, offset: u64, whence: i32) -> Res<u64> {
        let arg = abi::LseekIn { fh, offset, whence: whence as u32, padding: 0 };
        parse::<abi::LseekOut>(self.call(ino, &Operation::Lseek(arg), &[], 16)?).map(|o| o.offset)
    }
    /// A lock request argument.
    pub fn lk(&self, fh: u64, owner: u64, start: u64, end: u64, typ: i32, flock: bool) -> abi::LkIn {
        abi::LkIn {
            fh,
            owner,
            lk: FileLock { start, end, typ: typ as u32, pid: 1 },
            lk_flags: if flock { abi::misc::LK_FLOCK } else { 0 },
            padding: 0,
        }
    }
    /// SETLK.
    pub fn setlk(&self, ino: u64, lk: abi::LkIn) -> Res<()> {
        self.call(ino, &Operation::Setlk(lk), &[], 0).map(|_| ())
    }
    /// GETLK.
    pub fn getlk(&self, ino: u64, lk: abi::LkIn) -> Res<FileLock> {
        parse::<abi::LkOut>(self.call(ino, &Operation::Getlk(lk), &[], 64)?).map(|o| o.lk)
    }
    /// SETXATTR.
    pub fn setxattr(&self, ino: u64, name: &str, value: &[u8], flags: u32) -> Res<()> {
        let arg = abi::SetxattrIn { size: value.len() as u32, flags, setxattr_flags: 0, padding: 0 };
        self.call(ino, &Operation::Setxattr { arg, name: name.as_bytes(), value }, &[], 0).map(|_| ())
    }
    /// GETXATTR.
    pub fn getxattr(&self, ino: u64, name: &str, size: u32) -> Res<Vec<u8>> {
        let arg = abi::GetxattrIn { size, padding: 0 };
        self.call(ino, &Operation::Getxattr { arg, name: name.as_bytes() }, &[], 1 << 17)
    }
    /// LISTXATTR.
    pub fn listxattr(&self, ino: u64, size: u32) -> Res<Vec<u8>> {
        self.call(ino, &Operation::Listxattr(abi::GetxattrIn { size, padding: 0 }), &[], 1 << 17)
    }
    /// REMOVEXATTR.
    pub fn removexattr(&self, ino: u64, name: &str) -> Res<()> {
        self.call(ino, &Operation::Removexattr { name: name.as_bytes() }, &[], 0).map(|_| ())
    }

    /// READDIR(PLUS) on an open directory handle, decoded.
    pub fn dents(&self, ino: u64, fh: u64, off: u64, size: u32, plus: bool) -> Res<Vec<Dent>> {
        let arg = abi::ReadIn { fh, offset: off, size, ..Default::default() };
        let op = if plus { Operation::Readdirplus(arg) } else { Operation::Readdir(arg) };
        let b = self.call(ino, &op, &[], size as usize)?;
        let mut out = Vec::new();
        let mut rest = &b[..];
        while !rest.is_empty() {
            let (nodeid, skip) = if plus {
                let (e, _) = EntryOut::read_from_prefix(rest).map_err(|_| libc::EPROTO)?;
                (e.nodeid, 128)
            } else {
                (0, 0)
            };
            rest = &rest[skip..];
            let (d, _) = Dirent::read_from_prefix(rest).map_err(|_| libc::EPROTO)?;
            let name = rest[24..24 + d.namelen as usize].to_vec();
            out.push(Dent { ino: d.ino, off: d.off, typ: d.typ, name, nodeid });
            rest = &rest[abi::dirent_align(24 + d.namelen as usize)..];
        }
        Ok(out)
    }
    /// READDIR from cookie `off` on a fresh directory handle.
    pub fn readdir(&self, ino: u64, off: u64, size: u32) -> Res<Vec<Dent>> {
        let fh = self.opendir(ino)?;
        let r = self.dents(ino, fh, off, size, false);
        self.releasedir(ino, fh)?;
        r
    }
    /// READDIRPLUS from cookie `off` on a fresh directory handle.
    pub fn readdirplus(&self, ino: u64, off: u64, size: u32) -> Res<Vec<Dent>> {
        let fh = self.opendir(ino)?;
        let r = self.dents(ino, fh, off, size, true);
        self.releasedir(ino, fh)?;
        r
    }
    /// RELEASEDIR.
    pub fn releasedir(&self, ino: u64, fh: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: 0, lock_owner: 0 };
        self.call(ino, &Operation::Releasedir(arg), &[], 0).map(|_| ())
    }
    /// FSYNC, or FSYNCDIR if `dir`.
    pub fn fsync(&self, ino: u64, fh: u64, dir: bool) -> Res<()> {
        let arg = abi::FsyncIn { fh, fsync_flags: 0, padding: 0 };
        let op = if dir { Operation::Fsyncdir(arg) } else { Operation::Fsync(arg) };
        self.call(ino, &op, &[], 0).map(|_| ())
    }
    /// SYNCFS.
    pub fn syncfs(&self) -> Res<()> {
        self.call(ROOT, &Operation::Syncfs(abi::SyncfsIn::default()), &[], 0).map(|_| ())
    }
    /// STATX of the basic fields and the birth time.
    pub fn statx(&self, ino: u64) -> Res<abi::Statx> {
        let arg = abi::StatxIn { sx_mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME, ..Default::default() };
        parse::<abi::StatxOut>(self.call(ino, &Operation::Statx(arg), &[], 512)?).map(|o| o.stat)
    }
    /// COPY_FILE_RANGE; returns bytes copied.
    #[allow(clippy::too_many_arguments)]
    pub fn copy_range(
        &self,
        ino_in: u64,
        fh_in: u64,
        off_in: u64,
        ino_out: u64,
        fh_out: u64,
        off_out: u64,
        len: u64,
    ) -> Res<u64> {
        let arg = abi::CopyFileRangeIn { fh_in, off_in, nodeid_out: ino_out, fh_out, off_out, len, flags: 0 };
        parse::<abi::WriteOut>(self.call(ino_in, &Operation::CopyFileRange(arg), &[], 16)?).map(|o| o.size as u64)
    }
    /// SETLKW; the reply arrives when the lock is granted (or refused).
    pub fn setlkw(&self, ino: u64, lk: abi::LkIn) -> mpsc::Receiver<OwnedReply> {
        self.send(ino, &Operation::Setlkw(lk), &[], 0)
    }
    /// (name, node id) of every entry but `.`/`..`, by READDIRPLUS in 64 KiB batches.
    pub fn readdirplus_all(&self, ino: u64) -> Res<Vec<(String, u64)>> {
        let fh = self.opendir(ino)?;
        let mut out = Vec::new();
        let mut off = 0;
        loop {
            let batch = self.dents(ino, fh, off, 65536, true)?;
            let Some(last) = batch.last() else { break };
            off = last.off;
            for d in batch {
                if d.name != b"." && d.name != b".." {
                    out.push((String::from_utf8_lossy(&d.name).into_owned(), d.nodeid));
                }
            }
        }
        self.releasedir(ino, fh)?;
        Ok(out)
    }
    /// All names in a directory (without `.` and `..`), read in small batches.
    pub fn list(&self, ino: u64) -> Res<Vec<String>> {
        let mut names = Vec::new();
        let mut off = 0;
        let fh = self.opendir(ino)?;
        loop {
            let batch = self.dents(ino, fh, off, 256, false)?;
            let Some(last) = batch.last() else { break };
            off = last.off;
            for d in batch {
                if d.name != b"." && d.name != b".." {
                    names.push(String::from_utf8_lossy(&d.name).into_owned());
                }
            }
        }
        self.releasedir(ino, fh)?;
        names.sort();
        Ok(names)
    }
}
