//! The libnfs engine (NFSv3) driven through a real dpfs-core device (core's typed guest)
//! against a private nfs-ganesha serving v3 on loopback (rpcbind needed): the operations the
//! bench uses, end to end, checked against the export's files on the host.
#![cfg(feature = "libnfs")]

#[path = "../client/tests/support/mod.rs"]
mod support;

use dpfs_backend_nfs::{LibnfsFs, NfsClient, NfsConfig};
use dpfs_core::abi;
use dpfs_core::guest::{self, ROOT};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

type Guest = guest::Guest<LibnfsFs>;

/// A guest on a fresh export subdirectory `name` (mode 0777).
fn guest(server: &support::Ganesha, name: &str) -> (Guest, PathBuf) {
    let dir = server.export_dir.join(name);
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let mut cfg = NfsConfig::new(support::ADDR.parse().unwrap(), format!("{}/{name}", support::EXPORT));
    cfg.client = NfsClient::Libnfs;
    cfg.deadline = Duration::from_secs(20);
    cfg.entry_timeout = Duration::ZERO;
    cfg.attr_timeout = Duration::ZERO;
    let fs = Arc::new(LibnfsFs::connect(cfg).unwrap());
    let (g, _init) = Guest::new(fs).expect("INIT");
    (g, dir)
}

fn data(g: &Guest, dir: &Path) {
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    assert_eq!(g.write(ino, fh, 0, b"hello world").unwrap(), 11);
    assert_eq!(g.read(ino, fh, 6, 100).unwrap(), b"world");
    assert_eq!(g.read(ino, fh, 100, 10).unwrap(), b"");
    let a = g.getattr(ino).unwrap();
    assert_eq!((a.size, a.nlink, a.mode & libc::S_IFMT), (11, 1, libc::S_IFREG));
    assert_eq!(a.ino, std::fs::metadata(dir.join("f")).unwrap().ino());
    g.fsync(ino, fh, false).unwrap();
    assert_eq!(std::fs::read(dir.join("f")).unwrap(), b"hello world");
    // A write past the end leaves a hole of zeros; a large one spans several WRITEs.
    let big: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    assert_eq!(g.write(ino, fh, 20_000, &big).unwrap() as usize, big.len());
    g.flush(ino, fh, 0).unwrap();
    g.release(ino, fh).unwrap();
    assert_eq!(g.read(ino, fh, 0, 1), Err(libc::EBADF));
    let host = std::fs::read(dir.join("f")).unwrap();
    assert_eq!(host.len(), 320_000);
    assert!(host[11..20_000].iter().all(|&b| b == 0));
    assert_eq!(host[20_000..], big[..]);
    // Host-side changes are seen; O_TRUNC empties.
    std::fs::write(dir.join("f"), b"from the host").unwrap();
    let fh = g.open(ino, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.read(ino, fh, 0, 100).unwrap(), b"from the host");
    g.release(ino, fh).unwrap();
    let fh = g.open(ino, (libc::O_WRONLY | libc::O_TRUNC) as u32).unwrap();
    assert_eq!(g.getattr(ino).unwrap().size, 0);
    g.release(ino, fh).unwrap();
    // O_EXCL on an existing name.
    assert_eq!(g.create(ROOT, "f", 0o644, (libc::O_RDWR | libc::O_EXCL) as u32).map(|_| ()), Err(libc::EEXIST));
}

fn namespace(g: &Guest, dir: &Path) {
    let d = g.mkdir(ROOT, "d", 0o755).unwrap();
    assert_eq!(d.attr.mode, libc::S_IFDIR | 0o755);
    assert!(dir.join("d").is_dir());
    assert_eq!(g.mkdir(ROOT, "d", 0o755).map(|_| ()), Err(libc::EEXIST));
    let (f, fh) = g.mkfile(d.nodeid, "inner").unwrap();
    g.release(f, fh).unwrap();
    assert_eq!(g.lookup(d.nodeid, "inner").unwrap().nodeid, f);
    assert_eq!(g.lookup(ROOT, "missing").map(|_| ()), Err(libc::ENOENT));
    for i in 0..40 {
        std::fs::write(dir.join("d").join(format!("h{i}")), b"x").unwrap();
    }
    let mut names = g.list(d.nodeid).unwrap();
    names.sort();
    assert_eq!(names.len(), 41);
    assert!(names.contains(&"inner".to_string()) && names.contains(&"h39".to_string()));
    let plus = g.readdirplus_all(d.nodeid).unwrap();
    assert_eq!(plus.len(), 41);
    let (_, node) = plus.iter().find(|(n, _)| n == "h7").unwrap();
    assert_eq!(g.getattr(*node).unwrap().size, 1);
    assert_eq!(g.rmdir(ROOT, "d"), Err(libc::ENOTEMPTY));
    g.unlink(d.nodeid, "inner").unwrap();
    for i in 0..40 {
        g.unlink(d.nodeid, &format!("h{i}")).unwrap();
    }
    assert!(!dir.join("d").join("inner").exists());
    g.rmdir(ROOT, "d").unwrap();
    assert!(!dir.join("d").exists());
    assert_eq!(g.unlink(ROOT, "d"), Err(libc::ENOENT));
    // A node whose name now names another file is stale (this engine names files by path).
    // (A host-side link keeps the old inode, so the new file cannot reuse its number.)
    let (old, fh) = g.mkfile(ROOT, "r").unwrap();
    g.release(old, fh).unwrap();
    std::fs::hard_link(dir.join("r"), dir.join("r.keep")).unwrap();
    g.unlink(ROOT, "r").unwrap();
    let (_, fh) = g.create(ROOT, "r", 0o644, libc::O_RDWR as u32).unwrap();
    assert_eq!(g.getattr(old).map(|_| ()), Err(libc::ESTALE));
    let new = g.lookup(ROOT, "r").unwrap();
    assert_ne!(new.nodeid, old);
    g.write(new.nodeid, fh, 0, b"new").unwrap();
    assert_eq!(g.getattr(new.nodeid).unwrap().size, 3);
    g.release(new.nodeid, fh).unwrap();
    // What this engine does not do answers ENOSYS.
    assert_eq!(g.rename(ROOT, "f", ROOT, "g", 0), Err(libc::ENOSYS));
    assert_eq!(g.symlink(ROOT, "l", "f").map(|_| ()), Err(libc::ENOSYS));
}

fn attrs(g: &Guest, dir: &Path) {
    let (ino, fh) = g.mkfile(ROOT, "s").unwrap();
    g.write(ino, fh, 0, &[1; 100]).unwrap();
    assert_eq!(g.truncate(ino, 10).unwrap().size, 10);
    assert_eq!(std::fs::metadata(dir.join("s")).unwrap().len(), 10);
    assert_eq!(g.chmod(ino, 0o600).unwrap().mode, libc::S_IFREG | 0o600);
    let set = abi::SetattrIn {
        valid: abi::fattr::ATIME | abi::fattr::MTIME,
        atime: 1_000_000,
        atimensec: 5_000,
        mtime: 2_000_000,
        mtimensec: 7_000,
        ..Default::default()
    };
    let a = g.setattr(ino, set).unwrap();
    assert_eq!((a.atime, a.atimensec, a.mtime, a.mtimensec), (1_000_000, 5_000, 2_000_000, 7_000));
    // Only the mtime: the atime stays.
    let set = abi::SetattrIn { valid: abi::fattr::MTIME, mtime: 3_000_000, ..Default::default() };
    let a = g.setattr(ino, set).unwrap();
    assert_eq!((a.atime, a.mtime), (1_000_000, 3_000_000));
    let set = abi::SetattrIn { valid: abi::fattr::UID | abi::fattr::GID, uid: 4321, gid: 8765, ..Default::default() };
    let a = g.setattr(ino, set).unwrap();
    assert_eq!((a.uid, a.gid), (4321, 8765));
    let host = std::fs::metadata(dir.join("s")).unwrap();
    assert_eq!((host.uid(), host.gid(), host.mode() & 0o7777), (4321, 8765, 0o600));
    g.release(ino, fh).unwrap();
    let st = g.statfs().unwrap();
    assert!(st.blocks > 0 && st.bsize > 0 && st.namelen > 0, "{st:?}");
}

#[test]
fn libnfs_engine_against_ganesha_v3() {
    let Some(server) = support::Ganesha::start_v3() else { return };
    for (name, case) in [("data", data as fn(&Guest, &Path)), ("namespace", namespace), ("attrs", attrs)] {
        let (g, dir) = guest(&server, name);
        case(&g, &dir);
        eprintln!("case {name} ... ok");
    }
}
