//! The libnfs engine (cargo feature `libnfs`, `--nfs-client libnfs`): the same FUSE
//! operations on libnfs's NFSv3 async API, the yardstick dpfs's own client is measured
//! against and the path to NFSv3-only filers. It shares the node table with the NFSv4
//! engine (keyed by path here: libnfs's API names files by path) and core's reply glue.
//!
//! One service thread per backend instance owns the libnfs context (`engine`: the thread,
//! its queue and `poll` loop; `calls`: the typed `nfs_*_async` calls and their one C
//! trampoline; `ffi`: the libnfs-sys names used). The FUSE operations (`ops`, with
//! `setattr` and `dir`) queue jobs to it and their reply tokens are answered from its
//! callbacks.
//!
//! Known limits of this yardstick engine:
//! - **One identity**: a libnfs context carries one AUTH_SYS credential. Every call goes
//!   as uid 0, gid 0 (root, as DPFS did), whoever the guest's caller is; new files are owned
//!   by root unless the guest changes their owner.
//! - ENOSYS: readlink, symlink, mknod, link, rename, xattrs, POSIX locks, lseek, fallocate,
//!   copy_file_range (access is not implemented either: the guest's kernel then checks
//!   permissions itself from the attributes).
//! - Times are set with microsecond precision (NFSv3 SETATTR through libnfs's `utimes`).
//! - The deadline is libnfs's RPC timeout (whole seconds); a call past it fails with its
//!   error (ETIMEDOUT or EIO). libnfs reconnects TCP by itself.

mod calls;
mod dir;
mod engine;
mod ffi;
mod ops;
mod setattr;

use crate::nodes::Nodes;
use crate::{NfsConfig, NfsError};
use calls::{DirEnt, Fh};
use dpfs_core::fs::{Attr, ConnInfo, Entry};
use dpfs_core::Errno;
use engine::{Engine, Mount};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// Block size reported to the guest.
const BLKSIZE: u32 = 4096;

/// An open file or directory.
enum Open {
    /// A file: libnfs's handle, and whether it was written since its last COMMIT.
    File { fh: Fh, dirty: AtomicBool },
    /// A directory: its entries, read whole at offset 0 (or on a first read elsewhere).
    Dir { entries: Mutex<Option<Arc<Vec<DirEnt>>>> },
}

/// The state the operations share (the poller threads' side).
struct State {
    nodes: Nodes<Vec<u8>>,
    opens: Mutex<HashMap<u64, Arc<Open>>>,
    next: AtomicU64,
    cfg: NfsConfig,
    max_io: u32,
}

impl State {
    /// `parent`'s path joined with `name` (checked: no `/`, NUL, `.` or `..`).
    fn child(&self, parent: u64, name: &[u8]) -> Result<Vec<u8>, Errno> {
        crate::namei::check_name(name)?;
        let mut p = self.nodes.fh(parent)?;
        if p != b"/" {
            p.push(b'/');
        }
        p.extend_from_slice(name);
        Ok(p)
    }

    /// A new handle number for `o` (EMFILE past the table's bound).
    fn open(&self, o: Open) -> Result<u64, Errno> {
        let mut t = self.opens.lock();
        if t.len() >= self.cfg.max_handles {
            return Err(Errno::EMFILE);
        }
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        t.insert(n, Arc::new(o));
        Ok(n)
    }

    fn get(&self, n: u64) -> Result<Arc<Open>, Errno> {
        self.opens.lock().get(&n).cloned().ok_or(Errno::EBADF)
    }

    /// The file handle `n` (EBADF for a directory or an unknown number).
    fn file(&self, n: u64) -> Result<(Fh, Arc<Open>), Errno> {
        let o = self.get(n)?;
        match &*o {
            Open::File { fh, .. } => Ok((*fh, o.clone())),
            Open::Dir { .. } => Err(Errno::EBADF),
        }
    }

    /// The guest's entry for `path` with attributes `a`: one more lookup of its node.
    fn entry(&self, path: Vec<u8>, a: Attr) -> Result<Entry, Errno> {
        let ino = self.nodes.remember(path, a.ino)?;
        Ok(Entry {
            ino,
            generation: 0,
            attr: a,
            entry_timeout: self.cfg.entry_timeout,
            attr_timeout: self.cfg.attr_timeout,
        })
    }
}

/// FUSE attributes of libnfs's `stat`.
fn attr(s: &ffi::NfsStat64) -> Attr {
    let ns = |n: u64| n.min(999_999_999) as u32;
    Attr {
        ino: s.nfs_ino,
        size: s.nfs_size,
        blocks: s.nfs_used.div_ceil(512),
        atime: s.nfs_atime,
        mtime: s.nfs_mtime,
        ctime: s.nfs_ctime,
        atimensec: ns(s.nfs_atime_nsec),
        mtimensec: ns(s.nfs_mtime_nsec),
        ctimensec: ns(s.nfs_ctime_nsec),
        mode: s.nfs_mode as u32,
        nlink: u32::try_from(s.nfs_nlink).unwrap_or(u32::MAX),
        uid: u32::try_from(s.nfs_uid).unwrap_or(crate::ids::NOBODY),
        gid: u32::try_from(s.nfs_gid).unwrap_or(crate::ids::NOBODY),
        rdev: s.nfs_rdev as u32,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// The `S_IF*` bits of an NFSv3 file type (NF3REG = 1 … NF3FIFO = 7).
fn kind3(t: u32) -> u32 {
    match t {
        2 => libc::S_IFDIR,
        3 => libc::S_IFBLK,
        4 => libc::S_IFCHR,
        5 => libc::S_IFLNK,
        6 => libc::S_IFSOCK,
        7 => libc::S_IFIFO,
        _ => libc::S_IFREG,
    }
}

/// FUSE attributes of a READDIRPLUS3 entry.
fn dirent_attr(e: &DirEnt) -> Attr {
    let [(atime, atimensec), (mtime, mtimensec), (ctime, ctimensec)] = e.times;
    Attr {
        ino: e.inode,
        size: e.size,
        blocks: e.used.div_ceil(512),
        atime,
        mtime,
        ctime,
        atimensec,
        mtimensec,
        ctimensec,
        mode: kind3(e.typ) | (e.mode & 0o7777),
        nlink: e.nlink,
        uid: e.uid,
        gid: e.gid,
        rdev: 0,
        blksize: BLKSIZE,
        flags: 0,
    }
}

/// The NFS file system on libnfs's NFSv3 client: one context, one service thread.
pub struct LibnfsFs {
    st: Arc<State>,
    engine: Engine,
}

impl LibnfsFs {
    /// Mounts `cfg`'s export over NFSv3 (MOUNT and NFS ports from the server's rpcbind,
    /// unless `cfg.server` names a port other than 2049, which is then used for NFS).
    /// Errors name the server and the export.
    pub fn connect(cfg: NfsConfig) -> Result<Self, NfsError> {
        let (server, export) = (cfg.server, cfg.export.clone());
        let host = match server.ip() {
            std::net::IpAddr::V4(a) => a.to_string(),
            std::net::IpAddr::V6(a) => format!("[{a}]"),
        };
        let mut url = format!("nfs://{host}{export}");
        if server.port() != 2049 {
            url.push_str(&format!("?nfsport={}", server.port()));
        }
        let secs = cfg.deadline.as_secs().clamp(1, i32::MAX as u64 / 1000) as i32;
        let m = Mount { url, timeout_ms: secs * 1000, uid: 0, gid: 0 };
        let (engine, rmax, wmax) =
            Engine::start(m).map_err(|cause| NfsError::Libnfs { server, export: export.clone(), cause })?;
        let max_io = (rmax.min(wmax).min(u64::from(cfg.max_io)) as u32).max(4096) & !4095;
        tracing::info!(%server, export, max_io, "NFSv3 export mounted (libnfs)");
        let st = State {
            nodes: Nodes::new(b"/".to_vec(), 0, cfg.max_nodes),
            opens: Mutex::new(HashMap::new()),
            next: AtomicU64::new(1),
            cfg,
            max_io,
        };
        Ok(Self { st: Arc::new(st), engine })
    }

    /// Largest READ or WRITE payload (the FUSE session's max_write is capped to it).
    pub fn max_io(&self) -> u32 {
        self.st.max_io
    }

    /// Node ids held (for tests).
    pub fn nodes(&self) -> usize {
        self.st.nodes.len()
    }

    fn init_conn(&self, conn: &mut ConnInfo) {
        conn.max_write = conn.max_write.min(self.st.max_io);
        conn.want &= !(dpfs_core::abi::init::DONT_MASK
            | dpfs_core::abi::init::WRITEBACK_CACHE
            | dpfs_core::abi::init::POSIX_LOCKS);
    }
}

/// Connects once and stops again (the daemon's start-up check).
pub fn probe(cfg: &NfsConfig) -> Result<(), NfsError> {
    LibnfsFs::connect(cfg.clone()).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_keep_type_bits_and_clamp_what_does_not_fit() {
        let s = ffi::NfsStat64 {
            nfs_ino: 42,
            nfs_mode: u64::from(libc::S_IFREG | 0o640),
            nfs_nlink: 3,
            nfs_uid: 1000,
            nfs_gid: u64::MAX,
            nfs_size: 10_000,
            nfs_used: 12_288,
            nfs_mtime: 7,
            nfs_mtime_nsec: 2_000_000_000,
            ..zero_stat()
        };
        let a = attr(&s);
        assert_eq!((a.ino, a.mode, a.nlink, a.uid, a.gid), (42, libc::S_IFREG | 0o640, 3, 1000, crate::ids::NOBODY));
        assert_eq!((a.size, a.blocks, a.mtime, a.mtimensec, a.blksize), (10_000, 24, 7, 999_999_999, BLKSIZE));
    }

    /// An all-zero stat (the bindgen struct has no Default).
    fn zero_stat() -> ffi::NfsStat64 {
        ffi::NfsStat64 {
            nfs_dev: 0,
            nfs_ino: 0,
            nfs_mode: 0,
            nfs_nlink: 0,
            nfs_uid: 0,
            nfs_gid: 0,
            nfs_rdev: 0,
            nfs_size: 0,
            nfs_blksize: 0,
            nfs_blocks: 0,
            nfs_atime: 0,
            nfs_mtime: 0,
            nfs_ctime: 0,
            nfs_atime_nsec: 0,
            nfs_mtime_nsec: 0,
            nfs_ctime_nsec: 0,
            nfs_used: 0,
        }
    }

    #[test]
    fn nfs3_types_map_to_their_mode_bits() {
        let e = DirEnt {
            name: b"d".to_vec(),
            inode: 9,
            typ: 2,
            mode: libc::S_IFDIR | 0o755,
            size: 4096,
            times: [(1, 2), (3, 4), (5, 6)],
            uid: 1,
            gid: 2,
            nlink: 2,
            used: 4096,
        };
        let a = dirent_attr(&e);
        assert_eq!((a.ino, a.mode, a.mtime, a.mtimensec, a.blocks), (9, libc::S_IFDIR | 0o755, 3, 4, 8));
        assert_eq!(
            (1..=8).map(kind3).collect::<Vec<_>>(),
            [
                libc::S_IFREG,
                libc::S_IFDIR,
                libc::S_IFBLK,
                libc::S_IFCHR,
                libc::S_IFLNK,
                libc::S_IFSOCK,
                libc::S_IFIFO,
                libc::S_IFREG
            ]
        );
    }

    #[test]
    fn a_node_whose_path_names_another_file_is_stale() {
        let s = ffi::NfsStat64 { nfs_ino: 5, ..zero_stat() };
        assert!(setattr::same(7, 5, &s).is_ok());
        assert_eq!(setattr::same(7, 6, &s).map(|_| ()), Err(Errno::ESTALE));
        // The root's file id is not known up front: it is never stale.
        assert!(setattr::same(dpfs_core::abi::ROOT_ID, 0, &s).is_ok());
    }
}
