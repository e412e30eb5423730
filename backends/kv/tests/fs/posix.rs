//! POSIX semantics through the FUSE request path on each store: the shared backend suite
//! (names, rename, readdir cookies, permissions), then kv's own cases (data, links,
//! open-unlinked files and their reclaim, special files).

use crate::common::*;
use dpfs_backend_kv::Store;

pub fn file_write_read_and_attrs<S: Store>(g: Env<S>) {
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    assert_eq!(g.write(ino, fh, 0, b"hello world").unwrap(), 11);
    assert_eq!(g.read(ino, fh, 6, 100).unwrap(), b"world");
    assert_eq!(g.read(ino, fh, 100, 10).unwrap(), b"");
    let a = g.getattr(ino).unwrap();
    assert_eq!((a.size, a.nlink, a.mode), (11, 1, libc::S_IFREG | 0o644));
    assert_eq!(a.blocks, 8);
    // A write far away leaves a hole that reads as zeros.
    g.write(ino, fh, 10_000, b"x").unwrap();
    let v = g.read(ino, fh, 0, 20_000).unwrap();
    assert_eq!(v.len(), 10_001);
    assert_eq!(&v[..11], b"hello world");
    assert!(v[11..10_000].iter().all(|&b| b == 0));
    assert_eq!(v[10_000], b'x');
    g.release(ino, fh).unwrap();
    assert_eq!(g.read(ino, fh, 0, 1), Err(libc::EBADF));
}

pub fn link_counts_and_dot_dot<S: Store>(g: Env<S>) {
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 2);
    let a = g.mkdir(ROOT, "a", 0o755).unwrap().nodeid;
    let b = g.mkdir(a, "b", 0o755).unwrap().nodeid;
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 3);
    assert_eq!(g.getattr(a).unwrap().nlink, 3);
    let (f, _) = g.mkfile(b, "f").unwrap();
    let l = g.link(f, a, "hard").unwrap();
    assert_eq!((l.nodeid, l.attr.nlink), (f, 2));
    g.rename(a, "b", ROOT, "b", 0).unwrap();
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 4);
    assert_eq!(g.getattr(a).unwrap().nlink, 2);
    let dots = g.readdir(b, 0, 4096).unwrap();
    assert_eq!((dots[1].name.as_slice(), dots[1].ino), (&b".."[..], ROOT));
    g.unlink(b, "f").unwrap();
    assert_eq!(g.getattr(f).unwrap().nlink, 1);
    g.rmdir(ROOT, "b").unwrap();
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 3);
    // A removed directory is gone (nothing holds it open).
    assert_eq!(g.mkfile(b, "x").err(), Some(libc::ENOENT));
    assert_eq!(g.readdir(b, 0, 4096).err(), Some(libc::ENOENT));
}

pub fn open_unlinked_file_lives_until_release<S: Store>(g: Env<S>) {
    let base = inodes(&g);
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(ino, fh, 0, &[7u8; 100_000]).unwrap();
    g.setxattr(ino, "user.a", b"1", 0).unwrap();
    g.unlink(ROOT, "f").unwrap();
    assert_eq!(g.lookup(ROOT, "f").err(), Some(libc::ENOENT));
    assert_eq!(g.read(ino, fh, 99_990, 100).unwrap(), vec![7u8; 10]);
    g.write(ino, fh, 100_000, b"more").unwrap();
    assert_eq!(g.getattr(ino).unwrap().nlink, 0);
    assert_eq!(inodes(&g), base + 1);
    g.release(ino, fh).unwrap();
    assert_eq!(inodes(&g), base);
    assert_eq!(g.getattr(ino).err(), Some(libc::ENOENT));
    let st = g.statfs().unwrap();
    assert_eq!(st.blocks, st.bfree, "every byte was given back");
}

pub fn destroy_reclaims_open_orphans<S: Store>(g: Env<S>) {
    let base = g.fs.usage().unwrap().0;
    let (f, _fh) = g.mkfile(ROOT, "f").unwrap();
    g.unlink(ROOT, "f").unwrap();
    assert!(g.getattr(f).is_ok());
    assert_eq!(g.fs.handle_count(), 1);
    g.call(0, &dpfs_core::operation::Operation::Destroy, &[], 0).unwrap();
    assert_eq!(g.fs.handle_count(), 0);
    assert_eq!(g.fs.usage().unwrap(), (base, 0));
}

pub fn append_trunc_symlink_mknod<S: Store>(g: Env<S>) {
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, b"abc").unwrap();
    let ap = g.open(f, libc::O_WRONLY as u32 | libc::O_APPEND as u32).unwrap();
    g.write(f, ap, 0, b"def").unwrap();
    assert_eq!(g.read(f, fh, 0, 10).unwrap(), b"abcdef");
    g.open(f, libc::O_WRONLY as u32 | libc::O_TRUNC as u32).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, 0);
    let s = g.symlink(ROOT, "s", "f/../target").unwrap();
    assert_eq!(s.attr.mode, libc::S_IFLNK | 0o777);
    assert_eq!(g.readlink(s.nodeid).unwrap(), b"f/../target");
    assert_eq!(g.readlink(f).err(), Some(libc::EINVAL));
    assert_eq!(g.symlink(ROOT, "s2", &"t".repeat(4096)).err(), Some(libc::ENAMETOOLONG));
    let fifo = g.mknod(ROOT, "fifo", libc::S_IFIFO | 0o644, 0).unwrap();
    assert_eq!(fifo.attr.mode & libc::S_IFMT, libc::S_IFIFO);
    let chr = g.mknod(ROOT, "null", libc::S_IFCHR | 0o666, 0x103).unwrap();
    assert_eq!(chr.attr.rdev, 0x103);
    let user = g.as_user(1, 1);
    g.chmod(ROOT, 0o777).unwrap();
    assert_eq!(user.mknod(ROOT, "c2", libc::S_IFCHR | 0o666, 1).err(), Some(libc::EPERM));
    assert_eq!(g.mknod(ROOT, "d", libc::S_IFDIR | 0o755, 0).err(), Some(libc::EPERM));
    let ents = g.readdir(ROOT, 0, 4096).unwrap();
    let fifo_ent = ents.iter().find(|e| e.name == b"fifo").unwrap();
    assert_eq!(fifo_ent.typ, libc::DT_FIFO as u32);
}

crate::suite!(redb, crate::common::redb;
    file_write_read_and_attrs, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans,
    append_trunc_symlink_mknod);

crate::suite!(redis, crate::common::redis;
    file_write_read_and_attrs, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans,
    append_trunc_symlink_mknod);

crate::suite!(cluster, crate::common::cluster;
    file_write_read_and_attrs, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans,
    append_trunc_symlink_mknod);

/// The suite every backend with its own namespace runs, on each store.
mod suite {
    mod redb {
        dpfs_backend_suite::all_cases!(crate::common::redb());
    }
    mod redis {
        dpfs_backend_suite::all_cases!(crate::common::redis());
    }
    mod cluster {
        dpfs_backend_suite::all_cases!(crate::common::cluster());
    }
}
