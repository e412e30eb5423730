//! Every operation against a host directory.

use crate::common::*;
use crate::posix_flags::*;
use dpfs_backend_passthrough::{DirectIo, LocalMirror, PassthroughConfig};
use dpfs_core::abi;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

#[test]
fn lookup_getattr_forget() {
    let g = Guest::default_fs();
    std::fs::write(g.host("f"), b"hello").unwrap();
    let e = g.lookup(ROOT, "f").unwrap();
    assert_eq!(e.attr.size, 5);
    assert_eq!(e.attr.ino, std::fs::metadata(g.host("f")).unwrap().ino());
    let e2 = g.lookup(ROOT, "f").unwrap();
    assert_eq!(e.nodeid, e2.nodeid, "same host inode, same node id");
    assert_eq!(g.getattr(e.nodeid).unwrap().size, 5);
    assert_eq!(g.lookup(ROOT, "missing").unwrap_err(), libc::ENOENT);
    assert_eq!(g.fs.stats().inodes, 2);
    g.forget(e.nodeid, 2);
    assert_eq!(g.fs.stats().inodes, 1);
    assert_eq!(g.getattr(e.nodeid).unwrap_err(), libc::ENOENT);
}

#[test]
fn create_write_read() {
    let g = Guest::default_fs();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(g.write(ino, fh, 0, &data).unwrap(), data.len() as u32);
    assert_eq!(std::fs::read(g.host("f")).unwrap(), data);
    assert_eq!(g.read(ino, fh, 0, 131072).unwrap(), &data[..131072]);
    assert_eq!(g.read(ino, fh, 199_990, 100).unwrap(), &data[199_990..]);
    assert!(g.read(ino, fh, 1 << 30, 100).unwrap().is_empty());
    g.flush(ino, fh, 1).unwrap();
    g.release(ino, fh).unwrap();
    assert_eq!(g.read(ino, fh, 0, 10).unwrap_err(), libc::EBADF);
    let fh = g.open(ino, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.read(ino, fh, 0, 4).unwrap(), &data[..4]);
    g.release(ino, fh).unwrap();
    assert_eq!(
        g.create(ROOT, "f", libc::S_IFREG | 0o644, (libc::O_RDWR | libc::O_EXCL) as u32).unwrap_err(),
        libc::EEXIST
    );
    assert_eq!(g.fs.stats().handles, 0);
}

#[test]
fn setattr_mode_owner_size_times() {
    let g = Guest::default_fs();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(ino, fh).unwrap();
    assert_eq!(g.chmod(ino, 0o600).unwrap().mode & 0o7777, 0o600);
    let s = abi::SetattrIn { valid: abi::fattr::UID | abi::fattr::GID, uid: 1234, gid: 4321, ..Default::default() };
    let a = g.setattr(ino, s).unwrap();
    assert_eq!((a.uid, a.gid), (1234, 4321));
    assert_eq!(g.truncate(ino, 5000).unwrap().size, 5000);
    assert_eq!(std::fs::metadata(g.host("f")).unwrap().len(), 5000);
    let s = abi::SetattrIn {
        valid: abi::fattr::ATIME | abi::fattr::MTIME,
        atime: 1000,
        atimensec: 5,
        mtime: 2000,
        mtimensec: 7,
        ..Default::default()
    };
    let a = g.setattr(ino, s).unwrap();
    assert_eq!((a.atime, a.atimensec, a.mtime, a.mtimensec), (1000, 5, 2000, 7));
    let s = abi::SetattrIn { valid: abi::fattr::MTIME | abi::fattr::MTIME_NOW, ..Default::default() };
    let a = g.setattr(ino, s).unwrap();
    assert!(a.mtime > 1_600_000_000, "UTIME_NOW sets the current time");
    assert_eq!(a.atime, 1000, "atime untouched");
}

#[test]
fn namespace_ops() {
    let g = Guest::default_fs();
    let d = g.mkdir(ROOT, "d", 0o755).unwrap();
    assert!(std::fs::metadata(g.host("d")).unwrap().is_dir());
    let s = g.symlink(d.nodeid, "s", "../target").unwrap();
    assert_eq!(s.attr.mode & libc::S_IFMT, libc::S_IFLNK);
    assert_eq!(g.readlink(s.nodeid).unwrap(), b"../target");
    let p = g.mknod(d.nodeid, "fifo", libc::S_IFIFO | 0o644, 0).unwrap();
    assert_eq!(p.attr.mode & libc::S_IFMT, libc::S_IFIFO);
    assert_eq!(g.open(p.nodeid, libc::O_RDONLY as u32).unwrap_err(), libc::ENXIO, "fifos are never opened on the host");
    assert_eq!(g.mknod(d.nodeid, "null", libc::S_IFCHR | 0o666, 0x103).unwrap_err(), libc::EPERM);
    assert_eq!(g.rmdir(ROOT, "d").unwrap_err(), libc::ENOTEMPTY);
    g.unlink(d.nodeid, "s").unwrap();
    g.unlink(d.nodeid, "fifo").unwrap();
    assert_eq!(g.unlink(d.nodeid, "fifo").unwrap_err(), libc::ENOENT);
    g.rmdir(ROOT, "d").unwrap();
    assert!(!g.host("d").exists());
    assert_eq!(g.mkdir(ROOT, "..", 0o755).unwrap_err(), libc::EINVAL);
    assert_eq!(g.mkdir(ROOT, ".", 0o755).unwrap_err(), libc::EINVAL);
    assert_eq!(g.unlink(ROOT, "..").unwrap_err(), libc::EINVAL);
}

#[test]
fn rename_with_flags_and_link() {
    let g = Guest::default_fs();
    std::fs::write(g.host("a"), b"A").unwrap();
    std::fs::write(g.host("b"), b"B").unwrap();
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", NOREPLACE).unwrap_err(), libc::EEXIST);
    g.rename(ROOT, "a", ROOT, "b", EXCHANGE).unwrap();
    assert_eq!(std::fs::read(g.host("a")).unwrap(), b"B");
    assert_eq!(std::fs::read(g.host("b")).unwrap(), b"A");
    g.rename(ROOT, "a", ROOT, "c", 0).unwrap();
    assert_eq!(std::fs::read(g.host("c")).unwrap(), b"B");
    g.rename(ROOT, "c", ROOT, "w", WHITEOUT).unwrap();
    let m = std::fs::symlink_metadata(g.host("c")).unwrap();
    assert_eq!(m.mode() & libc::S_IFMT, libc::S_IFCHR, "whiteout left behind");
    assert_eq!(g.rename(ROOT, "w", ROOT, "x", 0x100).unwrap_err(), libc::EINVAL);
    let b = g.lookup(ROOT, "b").unwrap();
    let l = g.link(b.nodeid, ROOT, "b2").unwrap();
    assert_eq!(l.nodeid, b.nodeid);
    assert_eq!(l.attr.nlink, 2);
    assert_eq!(std::fs::read(g.host("b2")).unwrap(), b"A");
}

#[test]
fn tmpfile_then_link() {
    let g = Guest::default_fs();
    let (e, fh) = g.tmpfile(ROOT, libc::S_IFREG | 0o600, libc::O_RDWR as u32).unwrap();
    assert_eq!(g.write(e.nodeid, fh, 0, b"anon").unwrap(), 4);
    g.link(e.nodeid, ROOT, "named").unwrap();
    assert_eq!(std::fs::read(g.host("named")).unwrap(), b"anon");
    g.release(e.nodeid, fh).unwrap();
}

#[test]
fn readdir_stable_offsets_and_plus() {
    let g = Guest::default_fs();
    for i in 0..150 {
        std::fs::write(g.host(&format!("file{i:03}")), b"x").unwrap();
    }
    let names = g.list(ROOT).unwrap();
    assert_eq!(names.len(), 150);
    // Resume from a cookie after deleting an entry already returned: nothing is repeated or lost.
    let fh = g.opendir(ROOT).unwrap();
    let first = g.dents(ROOT, fh, 0, 512, false).unwrap();
    assert!(!first.is_empty() && first.len() < 152);
    let victim = first.iter().find(|d| d.name.starts_with(b"file")).unwrap().name.clone();
    std::fs::remove_file(g.host(std::str::from_utf8(&victim).unwrap())).unwrap();
    let mut seen: Vec<Vec<u8>> = first.iter().map(|d| d.name.clone()).collect();
    let mut off = first.last().unwrap().off;
    loop {
        let b = g.dents(ROOT, fh, off, 512, false).unwrap();
        let Some(l) = b.last() else { break };
        off = l.off;
        seen.extend(b.into_iter().map(|d| d.name));
    }
    g.releasedir(ROOT, fh).unwrap();
    let n = seen.len();
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), n, "no entry twice");
    assert_eq!(n, 152);
    // READDIRPLUS takes a lookup reference per entry.
    let before = g.fs.stats().inodes;
    let plus = g.readdirplus(ROOT, 0, 8192).unwrap();
    let real: Vec<_> = plus.iter().filter(|d| d.name != b"." && d.name != b"..").collect();
    assert!(real.iter().all(|d| d.nodeid != 0));
    assert_eq!(g.fs.stats().inodes, before + real.len());
    assert_eq!(g.readdir(12345, 0, 4096).unwrap_err(), libc::ENOENT);
}

#[test]
fn statfs_statx_access_sync() {
    let g = Guest::default_fs();
    let st = g.statfs().unwrap();
    assert!(st.bsize > 0 && st.namelen >= 255);
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(ino, fh, 0, b"12345").unwrap();
    let sx = g.statx(ino).unwrap();
    assert_eq!(sx.size, 5);
    assert_eq!(sx.mode as u32 & libc::S_IFMT, libc::S_IFREG);
    g.fsync(ino, fh, false).unwrap();
    let dfh = g.opendir(ROOT).unwrap();
    g.fsync(ROOT, dfh, true).unwrap();
    g.releasedir(ROOT, dfh).unwrap();
    g.syncfs().unwrap();
    g.access(ino, libc::R_OK as u32).unwrap();
    let d = g.mkdir(ROOT, "private", 0o700).unwrap();
    assert_eq!(g.as_user(1000, 1000).access(d.nodeid, libc::R_OK as u32).unwrap_err(), libc::EACCES);
}

#[test]
fn xattrs() {
    let g = Guest::default_fs();
    let (ino, _fh) = g.mkfile(ROOT, "f").unwrap();
    g.setxattr(ino, "user.k", b"value", 0).unwrap();
    let probe = g.getxattr(ino, "user.k", 0).unwrap();
    assert_eq!(u32::from_ne_bytes(probe[..4].try_into().unwrap()), 5);
    assert_eq!(g.getxattr(ino, "user.k", 100).unwrap(), b"value");
    assert_eq!(g.getxattr(ino, "user.k", 2).unwrap_err(), libc::ERANGE);
    let list = g.listxattr(ino, 1024).unwrap();
    assert!(list.split(|&b| b == 0).any(|n| n == b"user.k"));
    assert_eq!(g.setxattr(ino, "user.k", b"v", libc::XATTR_CREATE as u32).unwrap_err(), libc::EEXIST);
    g.removexattr(ino, "user.k").unwrap();
    assert_eq!(g.getxattr(ino, "user.k", 100).unwrap_err(), libc::ENODATA);
}

#[test]
fn flock_and_posix_locks() {
    let g = Guest::default_fs();
    let (ino, fh1) = g.mkfile(ROOT, "f").unwrap();
    let fh2 = g.open(ino, libc::O_RDWR as u32).unwrap();
    g.setlk(ino, g.lk(fh1, 1, 0, 0, libc::F_WRLCK, true)).unwrap();
    assert_eq!(g.setlk(ino, g.lk(fh2, 2, 0, 0, libc::F_WRLCK, true)).unwrap_err(), libc::EAGAIN);
    g.setlk(ino, g.lk(fh1, 1, 0, 0, libc::F_UNLCK, true)).unwrap();
    g.setlk(ino, g.lk(fh2, 2, 0, 0, libc::F_WRLCK, true)).unwrap();
    g.setlk(ino, g.lk(fh2, 2, 0, 0, libc::F_UNLCK, true)).unwrap();

    // POSIX: owners conflict, the same owner does not.
    g.setlk(ino, g.lk(fh1, 10, 0, 9, libc::F_WRLCK, false)).unwrap();
    g.setlk(ino, g.lk(fh2, 10, 5, 20, libc::F_WRLCK, false)).unwrap();
    assert_eq!(g.setlk(ino, g.lk(fh2, 20, 0, 0, libc::F_RDLCK, false)).unwrap_err(), libc::EAGAIN);
    let c = g.getlk(ino, g.lk(fh2, 20, 0, u64::MAX, libc::F_WRLCK, false)).unwrap();
    assert_eq!(c.typ, libc::F_WRLCK as u32);
    assert_eq!(c.start, 0);
    let free = g.getlk(ino, g.lk(fh2, 20, 100, 200, libc::F_WRLCK, false)).unwrap();
    assert_eq!(free.typ, libc::F_UNLCK as u32);
    // SETLKW waits, then completes when the holder's locks go with FLUSH.
    let rx = g.setlkw(ino, g.lk(fh2, 20, 0, 0, libc::F_WRLCK, false));
    assert!(rx.recv_timeout(std::time::Duration::from_millis(100)).is_err(), "still waiting");
    g.flush(ino, fh1, 10).unwrap();
    let r = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("SETLKW answered");
    assert_eq!(body(r).map(|_| ()), Ok(()));
}

#[test]
fn fallocate_lseek_copy() {
    let g = Guest::default_fs();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(ino, fh, 1 << 20, &[7u8; 4096]).unwrap();
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_DATA).unwrap(), 1 << 20);
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_HOLE).unwrap(), 0);
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_SET).unwrap_err(), libc::EINVAL);
    g.write(ino, fh, 0, &[1u8; 8192]).unwrap();
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_DATA).unwrap(), 0);
    let punch = (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE) as u32;
    g.fallocate(ino, fh, 0, 8192, punch).unwrap();
    assert_eq!(g.lseek(ino, fh, 0, libc::SEEK_DATA).unwrap(), 1 << 20);
    g.fallocate(ino, fh, 2 << 20, 4096, 0).unwrap();
    assert_eq!(g.getattr(ino).unwrap().size, (2 << 20) + 4096);
    let (ino2, fh2) = g.mkfile(ROOT, "g").unwrap();
    assert_eq!(g.copy_range(ino, fh, 1 << 20, ino2, fh2, 0, 4096).unwrap(), 4096);
    assert_eq!(std::fs::read(g.host("g")).unwrap(), vec![7u8; 4096]);
    assert_eq!(g.copy_range(ino, fh, 0, ino2, fh, 0, 1).unwrap_err(), libc::EBADF, "fh of another node");
}

#[test]
fn readonly_refuses_changes() {
    let g = Guest::with(|c| c.readonly = true);
    std::fs::write(g.host("f"), b"data").unwrap();
    let e = g.lookup(ROOT, "f").unwrap();
    assert_eq!(g.mkdir(ROOT, "d", 0o755).unwrap_err(), libc::EROFS);
    assert_eq!(g.open(e.nodeid, libc::O_RDWR as u32).unwrap_err(), libc::EROFS);
    assert_eq!(g.chmod(e.nodeid, 0o777).unwrap_err(), libc::EROFS);
    assert_eq!(g.unlink(ROOT, "f").unwrap_err(), libc::EROFS);
    assert_eq!(g.setxattr(e.nodeid, "user.a", b"1", 0).unwrap_err(), libc::EROFS);
    let fh = g.open(e.nodeid, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.read(e.nodeid, fh, 0, 10).unwrap(), b"data");
}

#[test]
fn caller_credentials() {
    let g = Guest::default_fs();
    std::fs::set_permissions(g.dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let u = g.as_user(1000, 1000);
    assert_eq!(u.mkfile(ROOT, "denied").unwrap_err(), libc::EACCES, "root-owned 0755 share root");
    let pub_dir = g.mkdir(ROOT, "pub", 0o777).unwrap();
    let (ino, fh) = u.mkfile(pub_dir.nodeid, "mine").unwrap();
    let m = std::fs::metadata(g.host("pub/mine")).unwrap();
    assert_eq!((m.uid(), m.gid()), (1000, 1000));
    u.release(ino, fh).unwrap();
    let secret = g.mkfile(ROOT, "secret").unwrap();
    g.chmod(secret.0, 0o600).unwrap();
    assert_eq!(u.open(secret.0, libc::O_RDONLY as u32).unwrap_err(), libc::EACCES);
    assert_eq!(u.chmod(secret.0, 0o666).unwrap_err(), libc::EPERM);
    // The server's own credentials are back after each request.
    assert_eq!(std::fs::metadata(g.host("secret")).unwrap().permissions().mode() & 0o777, 0o600);
    g.mkfile(ROOT, "root-again").unwrap();
    assert_eq!(std::fs::metadata(g.host("root-again")).unwrap().uid(), 0);
}

#[test]
fn pinned_fallback_is_bounded() {
    let g = Guest::with(|c| {
        c.file_handles = false;
        c.max_open_fds = 16;
    });
    assert!(!g.fs.stats().file_handles);
    for i in 0..40 {
        std::fs::write(g.host(&format!("f{i}")), b"x").unwrap();
    }
    let mut ok = Vec::new();
    let mut refused = 0;
    for i in 0..40 {
        match g.lookup(ROOT, &format!("f{i}")) {
            Ok(e) => ok.push(e.nodeid),
            Err(e) => {
                assert_eq!(e, libc::ENFILE);
                refused += 1
            }
        }
    }
    assert_eq!(ok.len(), 16);
    assert_eq!(refused, 24);
    for id in ok {
        g.forget(id, 1);
    }
    g.lookup(ROOT, "f39").unwrap();
}

#[test]
fn local_mirror_mapping() {
    let m = LocalMirror {
        dir: "/srv".into(),
        metadata_timeout: 2.5,
        directio_mode: 2,
        uring_cq_polling: true,
        uring_cq_polling_nthreads: 2,
        xattr_policy: dpfs_backend_passthrough::XattrPolicy::Refuse,
    };
    let c = PassthroughConfig::from_local_mirror(&m).unwrap();
    assert_eq!(c.directio, DirectIo::Always);
    assert_eq!(c.xattr_policy, dpfs_backend_passthrough::XattrPolicy::Refuse);
    assert_eq!(c.entry_ttl(), std::time::Duration::from_millis(2500));
    let bad = LocalMirror { directio_mode: 3, ..m.clone() };
    let err = PassthroughConfig::from_local_mirror(&bad).unwrap_err().to_string();
    assert!(err.contains("local_mirror.directio_mode"), "{err}");
    let bad = LocalMirror { metadata_timeout: -1.0, ..m };
    assert!(PassthroughConfig::from_local_mirror(&bad).is_err());
}

#[test]
fn removed_files_are_not_held_open() {
    let g = Guest::default_fs();
    let (ino, fh) = g.mkfile(ROOT, "big").unwrap();
    g.write(ino, fh, 0, &vec![1u8; 1 << 20]).unwrap();
    g.release(ino, fh).unwrap();
    let fh = g.open(ino, libc::O_RDWR as u32).unwrap();
    let before = g.fs.stats().cached_fds;
    g.unlink(ROOT, "big").unwrap();
    assert_eq!(g.fs.stats().cached_fds, before - 1, "the cached O_PATH fd of the removed file is closed");
    // The open file keeps working through its handle (fstat, ftruncate).
    let s = abi::SetattrIn { valid: abi::fattr::SIZE | abi::fattr::FH, fh, size: 10, ..Default::default() };
    assert_eq!(g.setattr(ino, s).unwrap().size, 10);
    assert_eq!(g.read(ino, fh, 0, 100).unwrap().len(), 10);
    g.release(ino, fh).unwrap();
}

#[test]
fn interrupt_cancels_a_waiting_lock() {
    use dpfs_core::abi;
    use dpfs_core::operation::Operation;
    use std::time::Duration;
    let g = Guest::default_fs();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    for flock in [false, true] {
        g.setlk(ino, g.lk(fh, 1, 0, 0, libc::F_WRLCK, flock)).unwrap();
        let fh2 = g.open(ino, libc::O_RDWR as u32).unwrap();
        let unique = if flock { 900_001 } else { 900_002 };
        let waiting = g.send_unique(unique, ino, &Operation::Setlkw(g.lk(fh2, 2, 0, 0, libc::F_WRLCK, flock)), &[], 0);
        assert!(waiting.recv_timeout(Duration::from_millis(50)).is_err(), "waits (flock={flock})");
        // An INTERRUPT of another request changes nothing.
        let _ = g.send(0, &Operation::Interrupt(abi::InterruptIn { unique: unique + 10 }), &[], 0).recv();
        assert!(waiting.recv_timeout(Duration::from_millis(50)).is_err(), "still waits (flock={flock})");
        let _ = g.send(0, &Operation::Interrupt(abi::InterruptIn { unique }), &[], 0).recv();
        let r = waiting.recv_timeout(Duration::from_secs(10)).expect("interrupted");
        assert_eq!(body(r).err(), Some(libc::EINTR), "flock={flock}");
        // The interrupted request did not take the lock: once the holder lets go, a third
        // owner gets it at once.
        g.setlk(ino, g.lk(fh, 1, 0, 0, libc::F_UNLCK, flock)).unwrap();
        if flock {
            g.release(ino, fh2).unwrap();
        }
        let fh3 = g.open(ino, libc::O_RDWR as u32).unwrap();
        g.setlk(ino, g.lk(fh3, 3, 0, 0, libc::F_WRLCK, flock)).unwrap();
        g.setlk(ino, g.lk(fh3, 3, 0, 0, libc::F_UNLCK, flock)).unwrap();
        g.release(ino, fh3).unwrap();
    }
}

#[test]
fn forced_direct_io_serves_any_alignment() {
    use dpfs_backend_passthrough::DirectIo;
    let g = Guest::with(|c| c.directio = DirectIo::Always);
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    let mut model = vec![0u8; 0];
    // Odd offsets and lengths that O_DIRECT refuses, and page-sized ones it may take.
    for (i, &(off, len)) in
        [(0usize, 4096usize), (3, 100), (4096, 8192), (5000, 1), (12_288, 4096), (1, 20_000)].iter().enumerate()
    {
        let data: Vec<u8> = (0..len).map(|j| (i * 31 + j) as u8).collect();
        assert_eq!(g.write(ino, fh, off as u64, &data).unwrap() as usize, len, "write {off}+{len}");
        if model.len() < off + len {
            model.resize(off + len, 0);
        }
        model[off..off + len].copy_from_slice(&data);
        assert_eq!(g.read(ino, fh, off as u64, len as u32).unwrap(), data, "read back {off}+{len}");
        assert_eq!(g.read(ino, fh, 0, 65536).unwrap(), model, "whole file after {off}+{len}");
    }
    assert_eq!(std::fs::read(g.host("f")).unwrap(), model);
    g.release(ino, fh).unwrap();
}
