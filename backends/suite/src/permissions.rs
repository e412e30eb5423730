//! Who may do what: permission bits, sticky directories, set-ID bits and times, with
//! `default_permissions` semantics (the backend checks, not the host kernel).

use crate::RW;
use dpfs_core::abi;
use dpfs_core::guest::{Guest, ROOT};
use dpfs_core::FileSystem;

/// In a sticky directory only the entry's owner, the directory's owner or root removes or
/// renames an entry.
pub fn sticky_directories<F: FileSystem>(g: &Guest<F>) {
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

/// `default_permissions`: permission bits for owner, group and others, root's bypass (but
/// not of execute), chmod by the owner only, chown by root only, chgrp to one's own groups.
pub fn permissions_of_default_permissions<F: FileSystem>(g: &Guest<F>) {
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
    // chown only by root; chgrp by the owner to one of its groups.
    let chown = |who: &Guest<F>, uid: Option<u32>, gid: Option<u32>| {
        let valid = uid.map_or(0, |_| abi::fattr::UID) | gid.map_or(0, |_| abi::fattr::GID);
        who.setattr(f, abi::SetattrIn { valid, uid: uid.unwrap_or(0), gid: gid.unwrap_or(0), ..Default::default() })
    };
    assert_eq!(chown(&user, Some(0), None).err(), Some(libc::EPERM));
    assert_eq!(chown(&user, None, Some(50)).err(), Some(libc::EPERM));
    assert_eq!(chown(&user.with_supp(50), None, Some(50)).unwrap().gid, 50);
    assert_eq!(chown(g, Some(7), Some(8)).unwrap().uid, 7);
}

/// Writes and chown by non-root clear set-user-ID and set-group-ID; setgid directories pass
/// on their group.
pub fn suid_is_cleared_by_writes_and_chown<F: FileSystem>(g: &Guest<F>) {
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
    // A setgid directory hands down its group and, to subdirectories, the bit.
    g.chmod(d, 0o2777).unwrap();
    g.setattr(d, abi::SetattrIn { valid: abi::fattr::GID, gid: 77, ..Default::default() }).unwrap();
    let sub = user.mkdir(d, "sub", 0o755).unwrap();
    assert_eq!((sub.attr.gid, sub.attr.mode & libc::S_ISGID), (77, libc::S_ISGID));
}

/// Explicit times need the owner or root; UTIME_NOW also write permission.
pub fn times_and_utime_now<F: FileSystem>(g: &Guest<F>) {
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
