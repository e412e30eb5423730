//! A software guest for the tests: encodes FUSE requests, sends them through a real
//! `dpfs_core::Device` over a `PassthroughFs` serving a temp directory, and decodes the replies.
#![allow(dead_code)]

use dpfs_backend_passthrough::{PassthroughConfig, PassthroughFs};
use dpfs_core::abi::{self, AttrOut, Dirent, EntryOut, FileLock, OutHeader};
use dpfs_core::local::LocalClient;
use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
use dpfs_core::{owned_request, Device, DeviceId, OwnedReply, SessionConfig};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;
use zerocopy::FromBytes;

pub const ROOT: u64 = 1;

/// A decoded reply: `Err(errno)` (positive) or the body.
pub type Res<T> = Result<T, i32>;

/// Who sends requests.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller {
    pub uid: u32,
    pub gid: u32,
    pub supp: Option<u32>,
}

/// A guest talking to one device over a mem file system.
#[derive(Clone)]
pub struct Guest {
    pub dev: Arc<Device>,
    pub fs: Arc<PassthroughFs>,
    pub dir: Arc<TempDir>,
    unique: Arc<AtomicU64>,
    pub who: Caller,
}

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
    pub ino: u64,
    pub off: u64,
    pub typ: u32,
    pub name: Vec<u8>,
    /// READDIRPLUS: the entry's node id (0 for `.`/`..` in some servers).
    pub nodeid: u64,
}

impl Guest {
    /// A guest over a fresh temp directory, configured by `tweak`.
    pub fn with(tweak: impl FnOnce(&mut PassthroughConfig)) -> Guest {
        // SAFETY: umask only affects file creation; the tests pass explicit modes.
        unsafe { libc::umask(0) };
        let dir = Arc::new(TempDir::new("share"));
        let mut cfg = PassthroughConfig::new(dir.path());
        tweak(&mut cfg);
        let fs = Arc::new(PassthroughFs::new(cfg).expect("passthrough fs"));
        let dev = Arc::new(Device::new(DeviceId(0), fs.clone(), SessionConfig::default()));
        let init = LocalClient::new(&dev).init().expect("INIT");
        assert_ne!(init.flags as u64 & abi::init::POSIX_LOCKS, 0);
        Guest { dev, fs, dir, unique: Arc::new(AtomicU64::new(100)), who: Caller::default() }
    }

    pub fn default_fs() -> Guest {
        Guest::with(|_| {})
    }

    /// Host path of `rel` inside the share.
    pub fn host(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// The same guest, calling as another user.
    pub fn as_user(&self, uid: u32, gid: u32) -> Guest {
        Guest { who: Caller { uid, gid, supp: None }, ..self.clone() }
    }

    pub fn with_supp(&self, gid: u32) -> Guest {
        let mut g = self.clone();
        g.who.supp = Some(gid);
        g
    }

    /// Sends a request; the reply arrives on the returned channel (maybe later).
    pub fn send(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> mpsc::Receiver<OwnedReply> {
        self.send_unique(self.unique.fetch_add(1, Ordering::Relaxed), nodeid, op, payload, reply)
    }

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

    pub fn call(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> Res<Vec<u8>> {
        let rx = self.send(nodeid, op, payload, reply);
        body(rx.recv_timeout(Duration::from_secs(10)).map_err(|_| libc::ETIMEDOUT)?)
    }

    fn entry(&self, nodeid: u64, op: &Operation<'_>) -> Res<EntryOut> {
        parse(self.call(nodeid, op, &[], 256)?)
    }

    pub fn lookup(&self, parent: u64, name: &str) -> Res<EntryOut> {
        self.entry(parent, &Operation::Lookup { name: name.as_bytes() })
    }
    pub fn mkdir(&self, parent: u64, name: &str, mode: u32) -> Res<EntryOut> {
        self.entry(parent, &Operation::Mkdir { arg: abi::MkdirIn { mode, umask: 0 }, name: name.as_bytes() })
    }
    pub fn mknod(&self, parent: u64, name: &str, mode: u32, rdev: u32) -> Res<EntryOut> {
        let arg = abi::MknodIn { mode, rdev, umask: 0, padding: 0 };
        self.entry(parent, &Operation::Mknod { arg, name: name.as_bytes() })
    }
    pub fn symlink(&self, parent: u64, name: &str, target: &str) -> Res<EntryOut> {
        self.entry(parent, &Operation::Symlink { name: name.as_bytes(), target: target.as_bytes() })
    }
    pub fn link(&self, ino: u64, newparent: u64, name: &str) -> Res<EntryOut> {
        self.entry(newparent, &Operation::Link { arg: abi::LinkIn { oldnodeid: ino }, name: name.as_bytes() })
    }
    pub fn readlink(&self, ino: u64) -> Res<Vec<u8>> {
        self.call(ino, &Operation::Readlink, &[], 4096)
    }
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
    pub fn tmpfile(&self, parent: u64, mode: u32, flags: u32) -> Res<(EntryOut, u64)> {
        let arg = abi::CreateIn { flags, mode, umask: 0, open_flags: 0 };
        let b = self.call(parent, &Operation::Tmpfile { arg, name: b"" }, &[], 256)?;
        let o: abi::OpenOut = parse(b[128..].to_vec())?;
        Ok((parse(b)?, o.fh))
    }
    pub fn open(&self, ino: u64, flags: u32) -> Res<u64> {
        let b = self.call(ino, &Operation::Open(abi::OpenIn { flags, open_flags: 0 }), &[], 64)?;
        parse::<abi::OpenOut>(b).map(|o| o.fh)
    }
    pub fn opendir(&self, ino: u64) -> Res<u64> {
        let b = self.call(ino, &Operation::Opendir(abi::OpenIn { flags: 0, open_flags: 0 }), &[], 64)?;
        parse::<abi::OpenOut>(b).map(|o| o.fh)
    }
    pub fn release(&self, ino: u64, fh: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: 0, lock_owner: 0 };
        self.call(ino, &Operation::Release(arg), &[], 0).map(|_| ())
    }
    pub fn release_flock(&self, ino: u64, fh: u64, owner: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: abi::misc::RELEASE_FLOCK_UNLOCK, lock_owner: owner };
        self.call(ino, &Operation::Release(arg), &[], 0).map(|_| ())
    }
    pub fn flush(&self, ino: u64, fh: u64, owner: u64) -> Res<()> {
        let arg = abi::FlushIn { fh, unused: 0, padding: 0, lock_owner: owner };
        self.call(ino, &Operation::Flush(arg), &[], 0).map(|_| ())
    }
    pub fn write(&self, ino: u64, fh: u64, off: u64, data: &[u8]) -> Res<u32> {
        let arg = abi::WriteIn { fh, offset: off, size: data.len() as u32, ..Default::default() };
        let b = self.call(ino, &Operation::Write(arg), data, 16)?;
        parse::<abi::WriteOut>(b).map(|w| w.size)
    }
    pub fn read(&self, ino: u64, fh: u64, off: u64, size: u32) -> Res<Vec<u8>> {
        let arg = abi::ReadIn { fh, offset: off, size, ..Default::default() };
        self.call(ino, &Operation::Read(arg), &[], size as usize)
    }
    pub fn unlink(&self, parent: u64, name: &str) -> Res<()> {
        self.call(parent, &Operation::Unlink { name: name.as_bytes() }, &[], 0).map(|_| ())
    }
    pub fn rmdir(&self, parent: u64, name: &str) -> Res<()> {
        self.call(parent, &Operation::Rmdir { name: name.as_bytes() }, &[], 0).map(|_| ())
    }
    pub fn rename(&self, p: u64, name: &str, np: u64, newname: &str, flags: u32) -> Res<()> {
        let arg = abi::Rename2In { newdir: np, flags, padding: 0 };
        self.call(p, &Operation::Rename2 { arg, old: name.as_bytes(), new: newname.as_bytes() }, &[], 0).map(|_| ())
    }
    pub fn forget(&self, ino: u64, n: u64) {
        let _ = self.send(ino, &Operation::Forget(abi::ForgetIn { nlookup: n }), &[], 0).recv();
    }
    pub fn getattr(&self, ino: u64) -> Res<abi::Attr> {
        let b = self.call(ino, &Operation::Getattr(abi::GetattrIn::default()), &[], 128)?;
        parse::<AttrOut>(b).map(|a| a.attr)
    }
    pub fn setattr(&self, ino: u64, s: abi::SetattrIn) -> Res<abi::Attr> {
        let b = self.call(ino, &Operation::Setattr(s), &[], 128)?;
        parse::<AttrOut>(b).map(|a| a.attr)
    }
    pub fn truncate(&self, ino: u64, size: u64) -> Res<abi::Attr> {
        self.setattr(ino, abi::SetattrIn { valid: abi::fattr::SIZE, size, ..Default::default() })
    }
    pub fn chmod(&self, ino: u64, mode: u32) -> Res<abi::Attr> {
        self.setattr(ino, abi::SetattrIn { valid: abi::fattr::MODE, mode, ..Default::default() })
    }
    pub fn access(&self, ino: u64, mask: u32) -> Res<()> {
        self.call(ino, &Operation::Access(abi::AccessIn { mask, padding: 0 }), &[], 0).map(|_| ())
    }
    pub fn statfs(&self) -> Res<abi::Kstatfs> {
        parse::<abi::StatfsOut>(self.call(ROOT, &Operation::Statfs, &[], 128)?).map(|s| s.st)
    }
    pub fn fallocate(&self, ino: u64, fh: u64, offset: u64, length: u64, mode: u32) -> Res<()> {
        let arg = abi::FallocateIn { fh, offset, length, mode, padding: 0 };
        self.call(ino, &Operation::Fallocate(arg), &[], 0).map(|_| ())
    }
    pub fn lseek(&self, ino: u64, fh: u64, offset: u64, whence: i32) -> Res<u64> {
        let arg = abi::LseekIn { fh, offset, whence: whence as u32, padding: 0 };
        parse::<abi::LseekOut>(self.call(ino, &Operation::Lseek(arg), &[], 16)?).map(|o| o.offset)
    }
    pub fn lk(&self, fh: u64, owner: u64, start: u64, end: u64, typ: i32, flock: bool) -> abi::LkIn {
        abi::LkIn {
            fh,
            owner,
            lk: FileLock { start, end, typ: typ as u32, pid: 1 },
            lk_flags: if flock { abi::misc::LK_FLOCK } else { 0 },
            padding: 0,
        }
    }
    pub fn setlk(&self, ino: u64, lk: abi::LkIn) -> Res<()> {
        self.call(ino, &Operation::Setlk(lk), &[], 0).map(|_| ())
    }
    pub fn getlk(&self, ino: u64, lk: abi::LkIn) -> Res<FileLock> {
        parse::<abi::LkOut>(self.call(ino, &Operation::Getlk(lk), &[], 64)?).map(|o| o.lk)
    }
    pub fn setxattr(&self, ino: u64, name: &str, value: &[u8], flags: u32) -> Res<()> {
        let arg = abi::SetxattrIn { size: value.len() as u32, flags, setxattr_flags: 0, padding: 0 };
        self.call(ino, &Operation::Setxattr { arg, name: name.as_bytes(), value }, &[], 0).map(|_| ())
    }
    pub fn getxattr(&self, ino: u64, name: &str, size: u32) -> Res<Vec<u8>> {
        let arg = abi::GetxattrIn { size, padding: 0 };
        self.call(ino, &Operation::Getxattr { arg, name: name.as_bytes() }, &[], 1 << 17)
    }
    pub fn listxattr(&self, ino: u64, size: u32) -> Res<Vec<u8>> {
        self.call(ino, &Operation::Listxattr(abi::GetxattrIn { size, padding: 0 }), &[], 1 << 17)
    }
    pub fn removexattr(&self, ino: u64, name: &str) -> Res<()> {
        self.call(ino, &Operation::Removexattr { name: name.as_bytes() }, &[], 0).map(|_| ())
    }

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
    pub fn readdir(&self, ino: u64, off: u64, size: u32) -> Res<Vec<Dent>> {
        let fh = self.opendir(ino)?;
        let r = self.dents(ino, fh, off, size, false);
        self.releasedir(ino, fh)?;
        r
    }
    pub fn readdirplus(&self, ino: u64, off: u64, size: u32) -> Res<Vec<Dent>> {
        let fh = self.opendir(ino)?;
        let r = self.dents(ino, fh, off, size, true);
        self.releasedir(ino, fh)?;
        r
    }
    pub fn releasedir(&self, ino: u64, fh: u64) -> Res<()> {
        let arg = abi::ReleaseIn { fh, flags: 0, release_flags: 0, lock_owner: 0 };
        self.call(ino, &Operation::Releasedir(arg), &[], 0).map(|_| ())
    }
    pub fn fsync(&self, ino: u64, fh: u64, dir: bool) -> Res<()> {
        let arg = abi::FsyncIn { fh, fsync_flags: 0, padding: 0 };
        let op = if dir { Operation::Fsyncdir(arg) } else { Operation::Fsync(arg) };
        self.call(ino, &op, &[], 0).map(|_| ())
    }
    pub fn syncfs(&self) -> Res<()> {
        self.call(ROOT, &Operation::Syncfs(abi::SyncfsIn::default()), &[], 0).map(|_| ())
    }
    pub fn statx(&self, ino: u64) -> Res<abi::Statx> {
        let arg = abi::StatxIn { sx_mask: libc::STATX_BASIC_STATS | libc::STATX_BTIME, ..Default::default() };
        parse::<abi::StatxOut>(self.call(ino, &Operation::Statx(arg), &[], 512)?).map(|o| o.stat)
    }
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

/// A directory under /tmp removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "dpfs-pt-{}-{}-{}",
            std::process::id(),
            tag,
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("mkdir temp");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
