//! POSIX semantics through the FUSE request path (the mem backend's suite, on kv): names,
//! links, rename, permissions, readdir cookies, open-unlinked files.

use crate::common::*;
use crate::posix_flags::*;
use dpfs_backend_kv::Store;
use dpfs_core::abi;

const RW: u32 = libc::O_RDWR as u32;

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

pub fn namespace_errors_match_linux<S: Store>(g: Env<S>) {
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let (f, _) = g.mkfile(ROOT, "f").unwrap();
    assert_eq!(g.mkdir(ROOT, "d", 0o755).err(), Some(libc::EEXIST));
    assert_eq!(g.mkfile(ROOT, "d").err(), Some(libc::EISDIR));
    assert_eq!(g.create(ROOT, "f", 0o644, RW | libc::O_EXCL as u32).err(), Some(libc::EEXIST));
    assert_eq!(g.lookup(ROOT, "nope").err(), Some(libc::ENOENT));
    assert_eq!(g.lookup(f, "x").err(), Some(libc::ENOTDIR));
    assert_eq!(g.mkdir(f, "x", 0o755).err(), Some(libc::ENOTDIR));
    let long = "n".repeat(256);
    assert_eq!(g.lookup(ROOT, &long).err(), Some(libc::ENAMETOOLONG));
    assert_eq!(g.mkdir(ROOT, &long, 0o755).err(), Some(libc::ENAMETOOLONG));
    assert!(g.mkdir(ROOT, &"n".repeat(255), 0o755).is_ok());
    g.mkfile(d, "inner").unwrap();
    assert_eq!(g.rmdir(ROOT, "d").err(), Some(libc::ENOTEMPTY));
    assert_eq!(g.rmdir(ROOT, "f").err(), Some(libc::ENOTDIR));
    assert_eq!(g.unlink(ROOT, "d").err(), Some(libc::EISDIR));
    assert_eq!(g.unlink(ROOT, "nope").err(), Some(libc::ENOENT));
    assert_eq!(g.link(d, ROOT, "dl").err(), Some(libc::EPERM));
    assert_eq!(g.link(f, ROOT, "d").err(), Some(libc::EEXIST));
    assert_eq!(g.rmdir(d, ".").err(), Some(libc::EINVAL));
    assert_eq!(g.rmdir(d, "..").err(), Some(libc::ENOTEMPTY));
    assert_eq!(g.getattr(999_999).err(), Some(libc::ENOENT));
    assert_eq!(g.lookup(d, "..").unwrap().nodeid, ROOT);
    assert_eq!(g.lookup(d, ".").unwrap().nodeid, d);
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

pub fn rename_flags<S: Store>(g: Env<S>) {
    let (a, _) = g.mkfile(ROOT, "a").unwrap();
    let (b, _) = g.mkfile(ROOT, "b").unwrap();
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let e = g.mkdir(d, "e", 0o755).unwrap().nodeid;
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", NOREPLACE).err(), Some(libc::EEXIST));
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", WHITEOUT).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", NOREPLACE | EXCHANGE).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "zz", EXCHANGE).err(), Some(libc::ENOENT));
    assert_eq!(g.rename(ROOT, "zz", ROOT, "a", 0).err(), Some(libc::ENOENT));
    g.rename(ROOT, "a", ROOT, "b", EXCHANGE).unwrap();
    assert_eq!(g.lookup(ROOT, "a").unwrap().nodeid, b);
    assert_eq!(g.lookup(ROOT, "b").unwrap().nodeid, a);
    // Exchange a directory with a file across directories: link counts follow.
    g.rename(ROOT, "a", d, "e", EXCHANGE).unwrap();
    assert_eq!(g.lookup(ROOT, "a").unwrap().nodeid, e);
    assert_eq!(g.lookup(d, "e").unwrap().nodeid, b);
    assert_eq!(g.getattr(d).unwrap().nlink, 2);
    assert_eq!(g.getattr(ROOT).unwrap().nlink, 4);
    assert_eq!(g.readdir(e, 0, 4096).unwrap()[1].ino, ROOT);
    // Type and emptiness rules.
    assert_eq!(g.rename(ROOT, "a", ROOT, "b", 0).err(), Some(libc::ENOTDIR));
    assert_eq!(g.rename(ROOT, "b", ROOT, "a", 0).err(), Some(libc::EISDIR));
    g.mkfile(d, "x").unwrap();
    assert_eq!(g.rename(ROOT, "a", ROOT, "d", 0).err(), Some(libc::ENOTEMPTY));
    // A directory never moves into its own subtree.
    assert_eq!(g.rename(ROOT, "d", e, "sub", 0).ok(), Some(()));
    assert_eq!(g.rename(ROOT, "a", d, "inside", 0).err(), Some(libc::EINVAL));
    assert_eq!(g.rename(ROOT, "a", ROOT, "a", 0).ok(), Some(()));
    // Replacing an empty directory frees it.
    g.mkdir(ROOT, "empty", 0o755).unwrap();
    let before = inodes(&g);
    g.rename(ROOT, "a", ROOT, "empty", 0).unwrap();
    assert_eq!(inodes(&g), before - 1);
    assert_eq!(g.list(ROOT).unwrap(), vec!["b", "empty"]);
    // Hard links to the same inode: rename is a no-op.
    g.link(a, ROOT, "a2").unwrap();
    g.rename(ROOT, "b", ROOT, "a2", 0).unwrap();
    assert_eq!(g.list(ROOT).unwrap(), vec!["a2", "b", "empty"]);
}

pub fn readdir_cookies_survive_concurrent_changes<S: Store>(g: Env<S>) {
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    for i in 0..60 {
        g.mkfile(d, &format!("f{i:02}")).unwrap();
    }
    let mut seen: Vec<String> = Vec::new();
    let mut off = 0;
    let mut round = 0;
    loop {
        let batch = g.readdir(d, off, 200).unwrap();
        let Some(last) = batch.last() else { break };
        off = last.off;
        seen.extend(batch.iter().map(|e| String::from_utf8_lossy(&e.name).into_owned()));
        round += 1;
        let _ = g.unlink(d, &format!("f{:02}", round));
        let _ = g.unlink(d, &format!("f{:02}", 59 - round));
        if round < 8 {
            g.mkfile(d, &format!("new{round}")).unwrap();
        }
    }
    let mut uniq = seen.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), seen.len(), "an entry was returned twice");
    assert_eq!(&seen[..2], &[".", ".."]);
    for i in 0..60 {
        let n = format!("f{i:02}");
        if g.lookup(d, &n).is_ok() {
            assert!(seen.contains(&n), "{n} skipped");
        }
    }
    assert!(round > 3);
    assert!(seen.contains(&"new7".to_string()));
    // READDIRPLUS lists the same names with attributes.
    let plus = g.readdirplus_all(d).unwrap();
    assert_eq!(plus.len(), g.list(d).unwrap().len());
}

pub fn sticky_directories<S: Store>(g: Env<S>) {
    let tmp = g.mkdir(ROOT, "tmp", 0o1777).unwrap().nodeid;
    let alice = g.as_user(1000, 1000);
    let bob = g.as_user(1001, 1001);
    alice.mkfile(tmp, "a").unwrap();
    bob.mkfile(tmp, "b").unwrap();
    assert_eq!(bob.unlink(tmp, "a").err(), Some(libc::EPERM));
    assert_eq!(bob.rename(tmp, "a", tmp, "c", 0).err(), Some(libc::EPERM));
    assert_eq!(bob.rename(tmp, "b", tmp, "a", 0).err(), Some(libc::EPERM));
    bob.rename(tmp, "b", tmp, "c", 0).unwrap();
    alice.unlink(tmp, "a").unwrap();
    g.unlink(tmp, "c").unwrap();
}

pub fn permissions_of_default_permissions<S: Store>(g: Env<S>) {
    let user = g.as_user(1000, 1000);
    assert_eq!(user.mkfile(ROOT, "x").err(), Some(libc::EACCES));
    let home = g.mkdir(ROOT, "home", 0o755).unwrap().nodeid;
    g.setattr(
        home,
        abi::SetattrIn { valid: abi::fattr::UID | abi::fattr::GID, uid: 1000, gid: 1000, ..Default::default() },
    )
    .unwrap();
    let (f, fh) = user.mkfile(home, "f").unwrap();
    user.release(f, fh).unwrap();
    user.chmod(f, 0o400).unwrap();
    assert_eq!(user.open(f, libc::O_WRONLY as u32).err(), Some(libc::EACCES));
    assert!(user.open(f, libc::O_RDONLY as u32).is_ok());
    assert!(g.open(f, RW).is_ok(), "root bypasses read/write bits");
    assert_eq!(user.access(f, 2).err(), Some(libc::EACCES));
    assert!(user.access(f, 4).is_ok());
    assert_eq!(g.access(f, 1).err(), Some(libc::EACCES), "root needs an x bit to execute");
    let other = g.as_user(2000, 2000);
    assert_eq!(other.chmod(f, 0o777).err(), Some(libc::EPERM));
    assert_eq!(other.lookup(home, "f").map(|e| e.nodeid), Ok(f));
    user.chmod(home, 0o700).unwrap();
    assert_eq!(other.lookup(home, "f").err(), Some(libc::EACCES));
    let chown = |who: &G<S>, uid: Option<u32>, gid: Option<u32>| {
        let valid = uid.map_or(0, |_| abi::fattr::UID) | gid.map_or(0, |_| abi::fattr::GID);
        who.setattr(f, abi::SetattrIn { valid, uid: uid.unwrap_or(0), gid: gid.unwrap_or(0), ..Default::default() })
    };
    assert_eq!(chown(&user, Some(0), None).err(), Some(libc::EPERM));
    assert_eq!(chown(&user, None, Some(50)).err(), Some(libc::EPERM));
    assert_eq!(chown(&user.with_supp(50), None, Some(50)).unwrap().gid, 50);
    assert_eq!(chown(&g, Some(7), Some(8)).unwrap().uid, 7);
}

pub fn suid_is_cleared_by_writes_and_chown<S: Store>(g: Env<S>) {
    let d = g.mkdir(ROOT, "d", 0o777).unwrap().nodeid;
    let user = g.as_user(1000, 1000);
    let (f, fh) = user.mkfile(d, "f").unwrap();
    user.chmod(f, 0o6777).unwrap();
    assert_eq!(g.getattr(f).unwrap().mode & 0o7777, 0o6777);
    user.write(f, fh, 0, b"x").unwrap();
    assert_eq!(g.getattr(f).unwrap().mode & 0o7777, 0o777);
    g.chmod(f, 0o6755).unwrap();
    g.write(f, fh, 0, b"y").unwrap();
    assert_eq!(g.getattr(f).unwrap().mode & 0o7777, 0o6755, "root writes keep the bits");
    let a = g.setattr(f, abi::SetattrIn { valid: abi::fattr::UID, uid: 5, ..Default::default() }).unwrap();
    assert_eq!(a.mode & 0o7777, 0o755);
    g.chmod(d, 0o2777).unwrap();
    g.setattr(d, abi::SetattrIn { valid: abi::fattr::GID, gid: 77, ..Default::default() }).unwrap();
    let sub = user.mkdir(d, "sub", 0o755).unwrap();
    assert_eq!((sub.attr.gid, sub.attr.mode & libc::S_ISGID), (77, libc::S_ISGID));
}

pub fn times_and_utime_now<S: Store>(g: Env<S>) {
    let d = g.mkdir(ROOT, "d", 0o777).unwrap().nodeid;
    let (f, _) = g.as_user(1000, 1000).mkfile(d, "f").unwrap();
    g.as_user(1000, 1000).chmod(f, 0o666).unwrap();
    let other = g.as_user(2000, 2000);
    let set = abi::SetattrIn { valid: abi::fattr::MTIME, mtime: 12345, ..Default::default() };
    assert_eq!(other.setattr(f, set).err(), Some(libc::EPERM));
    let now = abi::SetattrIn { valid: abi::fattr::MTIME | abi::fattr::MTIME_NOW, ..Default::default() };
    assert!(other.setattr(f, now).is_ok(), "UTIME_NOW needs only write permission");
    let a = g.setattr(f, set).unwrap();
    assert_eq!(a.mtime, 12345);
    assert!(a.ctime > 12345);
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
    file_write_read_and_attrs, namespace_errors_match_linux, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans, rename_flags,
    readdir_cookies_survive_concurrent_changes, sticky_directories, permissions_of_default_permissions,
    suid_is_cleared_by_writes_and_chown, times_and_utime_now, append_trunc_symlink_mknod);

crate::suite!(redis, crate::common::redis;
    file_write_read_and_attrs, namespace_errors_match_linux, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans, rename_flags,
    readdir_cookies_survive_concurrent_changes, sticky_directories, permissions_of_default_permissions,
    suid_is_cleared_by_writes_and_chown, times_and_utime_now, append_trunc_symlink_mknod);

crate::suite!(cluster, crate::common::cluster;
    file_write_read_and_attrs, namespace_errors_match_linux, link_counts_and_dot_dot,
    open_unlinked_file_lives_until_release, destroy_reclaims_open_orphans, rename_flags,
    readdir_cookies_survive_concurrent_changes, sticky_directories, permissions_of_default_permissions,
    suid_is_cleared_by_writes_and_chown, times_and_utime_now, append_trunc_symlink_mknod);
