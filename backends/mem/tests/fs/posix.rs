//! POSIX semantics through the FUSE request path: names, links, rename, permissions,
//! sparse data, capacity, reference counting.

use crate::common::*;
use dpfs_backend_mem::MemConfig;
use dpfs_core::abi;

const RW: u32 = libc::O_RDWR as u32;

#[test]
fn file_write_read_and_attrs() {
    let g = Guest::default_fs();
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
    assert!(v[11..10_000].iter().all(|&b| b == 0));
    assert_eq!(g.getattr(ino).unwrap().blocks, 16);
    g.release(ino, fh).unwrap();
    assert_eq!(g.read(ino, fh, 0, 1), Err(libc::EBADF));
}

#[test]
fn link_counts_and_dot_dot() {
    let g = Guest::default_fs();
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 2);
    let a = g.mkdir(ROOT, "a", 0o755).unwrap().nodeid;
    let b = g.mkdir(a, "b", 0o755).unwrap().nodeid;
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 3);
    assert_eq!(g.getattr(a).unwrap().nlink, 3);
    let (f, _) = g.mkfile(b, "f").unwrap();
    let l = g.link(f, a, "hard").unwrap();
    assert_eq!((l.nodeid, l.attr.nlink), (f, 2));
    // Moving b up a level moves its `..` link.
    g.rename(a, "b", ROOT, "b", 0).unwrap();
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 4);
    assert_eq!(g.getattr(a).unwrap().nlink, 2);
    let dots = g.readdir(b, 0, 4096).unwrap();
    assert_eq!((dots[1].name.as_slice(), dots[1].ino), (&b".."[..], ROOT));
    g.unlink(b, "f").unwrap();
    assert_eq!(g.getattr(f).unwrap().nlink, 1);
    g.rmdir(ROOT, "b").unwrap();
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 3);
    assert_eq!(g.getattr(b).unwrap().nlink, 0);
    // A removed directory accepts no new names and lists nothing.
    assert_eq!(g.mkfile(b, "x").err(), Some(libc::ENOENT));
    assert_eq!(g.readdir(b, 0, 4096).err(), Some(libc::ENOENT));
}

#[test]
fn open_unlinked_file_keeps_working_until_released_and_forgotten() {
    let g = Guest::default_fs();
    let base = g.fs.inode_count();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(ino, fh, 0, &[7u8; 10_000]).unwrap();
    let used = g.fs.used_bytes();
    g.unlink(ROOT, "f").unwrap();
    assert_eq!(g.lookup(ROOT, "f").err(), Some(libc::ENOENT));
    assert_eq!(g.read(ino, fh, 9_990, 100).unwrap(), vec![7u8; 10]);
    g.write(ino, fh, 10_000, b"more").unwrap();
    assert_eq!(g.getattr(ino).unwrap().nlink, 0);
    g.release(ino, fh).unwrap();
    // Still referenced by the guest's lookup.
    assert_eq!(g.fs.inode_count(), base + 1);
    assert!(g.getattr(ino).is_ok());
    g.forget(ino, 1);
    assert_eq!(g.fs.inode_count(), base);
    assert_eq!(g.getattr(ino).err(), Some(libc::ENOENT));
    assert!(g.fs.used_bytes() < used);
}

#[test]
fn forget_frees_only_unlinked_inodes() {
    let g = Guest::default_fs();
    let base = g.fs.inode_count();
    let (ino, fh) = g.mkfile(ROOT, "f").unwrap();
    g.release(ino, fh).unwrap();
    g.lookup(ROOT, "f").unwrap();
    g.forget(ino, 2);
    // Still linked: stays.
    assert_eq!(g.fs.inode_count(), base + 1);
    g.unlink(ROOT, "f").unwrap();
    assert_eq!(g.fs.inode_count(), base);
    // BATCH_FORGET and over-forgetting are harmless.
    let e = g.mkdir(ROOT, "d", 0o755).unwrap();
    g.rmdir(ROOT, "d").unwrap();
    let items = [abi::ForgetOne { nodeid: e.nodeid, nlookup: 5 }, abi::ForgetOne { nodeid: 12345, nlookup: 1 }];
    let bytes = dpfs_core::operation::item_bytes(&items);
    let op = dpfs_core::operation::Operation::BatchForget { items: dpfs_core::operation::item_list(&bytes) };
    let _ = g.send(0, &op, &[], 0).recv();
    assert_eq!(g.fs.inode_count(), base);
}

#[test]
fn readdirplus_takes_lookup_references() {
    let g = Guest::default_fs();
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let mut inos = Vec::new();
    for i in 0..5 {
        let (ino, fh) = g.mkfile(d, &format!("f{i}")).unwrap();
        g.release(ino, fh).unwrap();
        g.forget(ino, 1);
        inos.push(ino);
    }
    // A small buffer: only the entries that fit get a reference.
    let first = g.readdirplus(d, 0, 600).unwrap();
    assert!(first.len() >= 3 && first.len() < 7);
    let mut all = first.clone();
    let rest = g.readdirplus(d, first.last().unwrap().off, 4096).unwrap();
    all.extend(rest);
    assert_eq!(all.len(), 7);
    for i in 0..5 {
        g.unlink(d, &format!("f{i}")).unwrap();
    }
    let base = g.fs.inode_count();
    for ino in &inos {
        assert_eq!(g.getattr(*ino).unwrap().nlink, 0);
        g.forget(*ino, 1);
    }
    assert_eq!(g.fs.inode_count(), base - 5);
}

#[test]
fn capacity_limits_give_enospc() {
    let g = Guest::new_mem(MemConfig { capacity_bytes: 64 << 10, max_inodes: 4, ..Default::default() });
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    let st = g.statfs().unwrap();
    assert_eq!((st.blocks, st.bsize, st.files, st.ffree), (16, 4096, 4, 2));
    assert_eq!(g.write(f, fh, 0, &vec![1u8; 60 << 10]).unwrap(), 60 << 10);
    assert_eq!(g.write(f, fh, 60 << 10, &vec![1u8; 8 << 10]).err(), Some(libc::ENOSPC));
    assert_eq!(g.fallocate(f, fh, 1 << 20, 1 << 20, 0).err(), Some(libc::ENOSPC));
    assert!(g.statfs().unwrap().bfree <= 1);
    g.mkfile(ROOT, "g").unwrap();
    g.mkfile(ROOT, "h").unwrap();
    assert_eq!(g.mkfile(ROOT, "i").err(), Some(libc::ENOSPC));
    g.truncate(f, 0).unwrap();
    assert_eq!(g.statfs().unwrap().bfree, 15);
    assert_eq!(g.write(f, fh, 0, &vec![1u8; 32 << 10]).unwrap(), 32 << 10);
    // Sparse growth costs nothing.
    g.truncate(f, 1 << 40).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, 1 << 40);
    assert_eq!(g.truncate(f, u64::MAX).err(), Some(libc::EFBIG));
    assert_eq!(g.write(f, fh, u64::MAX - 2, b"abcd").err(), Some(libc::EINVAL));
    assert_eq!(g.write(f, fh, i64::MAX as u64 - 2, b"abcd").err(), Some(libc::EFBIG));
}

#[test]
fn seek_hole_seek_data_and_fallocate() {
    let g = Guest::default_fs();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, &[1u8; 100]).unwrap();
    g.write(f, fh, 1 << 20, &[2u8; 100]).unwrap();
    let size = (1 << 20) + 100;
    assert_eq!(g.lseek(f, fh, 0, libc::SEEK_DATA).unwrap(), 0);
    assert_eq!(g.lseek(f, fh, 0, libc::SEEK_HOLE).unwrap(), 4096);
    assert_eq!(g.lseek(f, fh, 5000, libc::SEEK_DATA).unwrap(), 1 << 20);
    assert_eq!(g.lseek(f, fh, 1 << 20, libc::SEEK_HOLE).unwrap(), size);
    assert_eq!(g.lseek(f, fh, size, libc::SEEK_DATA).err(), Some(libc::ENXIO));
    assert_eq!(g.lseek(f, fh, 0, libc::SEEK_END).err(), Some(libc::EINVAL));
    // Punch the first chunk: now a hole up to the second.
    g.fallocate(f, fh, 0, 4096, (libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE) as u32).unwrap();
    assert_eq!(g.lseek(f, fh, 0, libc::SEEK_DATA).unwrap(), 1 << 20);
    assert_eq!(g.read(f, fh, 0, 10).unwrap(), vec![0; 10]);
    assert_eq!(g.getattr(f).unwrap().size, size);
    // Allocation: KEEP_SIZE keeps the size, mode 0 extends it.
    g.fallocate(f, fh, size, 8192, libc::FALLOC_FL_KEEP_SIZE as u32).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, size);
    g.fallocate(f, fh, 0, 8192, 0).unwrap();
    assert_eq!(g.lseek(f, fh, 0, libc::SEEK_DATA).unwrap(), 0);
    g.fallocate(f, fh, size, 10, 0).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, size + 10);
    let punch_only = libc::FALLOC_FL_PUNCH_HOLE as u32;
    assert_eq!(g.fallocate(f, fh, 0, 1, punch_only).err(), Some(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(f, fh, 0, 1, libc::FALLOC_FL_COLLAPSE_RANGE as u32).err(), Some(libc::EOPNOTSUPP));
    assert_eq!(g.fallocate(f, fh, 0, 0, 0).err(), Some(libc::EINVAL));
}

#[test]
fn append_trunc_tmpfile_symlink_mknod() {
    let g = Guest::default_fs();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.write(f, fh, 0, b"abc").unwrap();
    let ap = g.open(f, libc::O_WRONLY as u32 | libc::O_APPEND as u32).unwrap();
    g.write(f, ap, 0, b"def").unwrap();
    assert_eq!(g.read(f, fh, 0, 10).unwrap(), b"abcdef");
    g.open(f, libc::O_WRONLY as u32 | libc::O_TRUNC as u32).unwrap();
    assert_eq!(g.getattr(f).unwrap().size, 0);
    // O_TMPFILE: unnamed until linked.
    let (t, tfh) = g.tmpfile(ROOT, 0o600, RW).unwrap();
    assert_eq!(t.attr.nlink, 0);
    g.write(t.nodeid, tfh, 0, b"tmp").unwrap();
    assert_eq!(g.list(ROOT).unwrap(), vec!["f"]);
    g.link(t.nodeid, ROOT, "named").unwrap();
    let e = g.lookup(ROOT, "named").unwrap();
    assert_eq!((e.nodeid, e.attr.nlink, e.attr.size), (t.nodeid, 1, 3));
    let (x, _) = g.tmpfile(ROOT, 0o600, RW | libc::O_EXCL as u32).unwrap();
    assert_eq!(g.link(x.nodeid, ROOT, "nope").err(), Some(libc::ENOENT));
    // Symlinks and special files.
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

#[test]
fn destroy_drops_session_state() {
    let g = Guest::default_fs();
    let base = g.fs.inode_count();
    let (f, _fh) = g.mkfile(ROOT, "f").unwrap();
    g.unlink(ROOT, "f").unwrap();
    assert!(g.getattr(f).is_ok());
    assert_eq!(g.fs.handle_count(), 1);
    g.call(0, &dpfs_core::operation::Operation::Destroy, &[], 0).unwrap();
    assert_eq!(g.fs.handle_count(), 0);
    assert_eq!(g.fs.inode_count(), base);
}

/// The suite every backend with its own namespace runs.
mod suite {
    use crate::common::*;
    dpfs_backend_suite::all_cases!(Some(Guest::default_fs()));
}
