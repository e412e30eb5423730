//! Locks (POSIX ranges, flock, parked SETLKW, INTERRUPT) and extended attributes.

use crate::common::*;
use dpfs_core::abi;
use dpfs_core::operation::Operation;
use std::time::Duration;

const RD: i32 = libc::F_RDLCK;
const WR: i32 = libc::F_WRLCK;
const UN: i32 = libc::F_UNLCK;

#[test]
fn posix_lock_conflicts_and_ranges() {
    let g = Guest::default_fs();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.setlk(f, g.lk(fh, 1, 0, 99, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 2, 50, 50, RD, false)).err(), Some(libc::EAGAIN));
    let c = g.getlk(f, g.lk(fh, 2, 50, 60, RD, false)).unwrap();
    assert_eq!((c.start, c.end, c.typ), (0, 99, WR as u32));
    // Owner 1 unlocks the middle; owner 2 can take it, but not the remaining ends.
    g.setlk(f, g.lk(fh, 1, 40, 59, UN, false)).unwrap();
    g.setlk(f, g.lk(fh, 2, 40, 59, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 2, 30, 45, RD, false)).err(), Some(libc::EAGAIN));
    assert_eq!(g.getlk(f, g.lk(fh, 3, 100, 200, WR, false)).unwrap().typ, UN as u32);
    // Shared locks coexist.
    g.setlk(f, g.lk(fh, 3, 200, 300, RD, false)).unwrap();
    g.setlk(f, g.lk(fh, 4, 250, 260, RD, false)).unwrap();
    // FLUSH drops the owner's POSIX locks.
    g.flush(f, fh, 1).unwrap();
    g.setlk(f, g.lk(fh, 5, 0, 39, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 2, 10, 5, WR, false)).err(), Some(libc::EINVAL));
}

#[test]
fn flock_conflicts_and_release() {
    let g = Guest::default_fs();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    let fh2 = g.open(f, libc::O_RDONLY as u32).unwrap();
    g.setlk(f, g.lk(fh, 10, 0, u64::MAX >> 1, WR, true)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh2, 20, 0, 0, RD, true)).err(), Some(libc::EAGAIN));
    // Independent of POSIX locks.
    g.setlk(f, g.lk(fh2, 20, 0, 10, WR, false)).unwrap();
    g.release_flock(f, fh, 10).unwrap();
    g.setlk(f, g.lk(fh2, 20, 0, 0, RD, true)).unwrap();
}

#[test]
fn setlkw_waits_without_blocking_and_interrupt_cancels() {
    let g = Guest::default_fs();
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.setlk(f, g.lk(fh, 1, 0, 9, WR, false)).unwrap();
    let waiting = g.send(f, &Operation::Setlkw(g.lk(fh, 2, 5, 5, WR, false)), &[], 0);
    // The call returned at once; the reply is parked.
    assert!(waiting.recv_timeout(Duration::from_millis(50)).is_err());
    g.setlk(f, g.lk(fh, 1, 0, 9, UN, false)).unwrap();
    let r = waiting.recv_timeout(Duration::from_secs(5)).expect("woken");
    assert_eq!(body(r).map(|_| ()), Ok(()));
    assert_eq!(g.setlk(f, g.lk(fh, 1, 5, 5, RD, false)).err(), Some(libc::EAGAIN));
    // A parked waiter answered EINTR by INTERRUPT.
    let parked = g.send_unique(777_777, f, &Operation::Setlkw(g.lk(fh, 3, 0, 9, WR, false)), &[], 0);
    assert!(parked.recv_timeout(Duration::from_millis(20)).is_err());
    let _ = g.send(0, &Operation::Interrupt(abi::InterruptIn { unique: 777_777 }), &[], 0).recv();
    let r = parked.recv_timeout(Duration::from_secs(5)).expect("interrupted");
    assert_eq!(body(r).err(), Some(libc::EINTR));
    // Mutual wait is refused with EDEADLK.
    g.setlk(f, g.lk(fh, 4, 100, 100, WR, false)).unwrap();
    let w = g.send(f, &Operation::Setlkw(g.lk(fh, 4, 5, 5, WR, false)), &[], 0);
    assert_eq!(g.call(f, &Operation::Setlkw(g.lk(fh, 2, 100, 100, WR, false)), &[], 0).err(), Some(libc::EDEADLK));
    g.flush(f, fh, 2).unwrap();
    assert!(body(w.recv_timeout(Duration::from_secs(5)).unwrap()).is_ok());
}

#[test]
fn xattr_semantics() {
    let g = Guest::default_fs();
    let (f, _) = g.mkfile(ROOT, "f").unwrap();
    g.setxattr(f, "user.a", b"1", 0).unwrap();
    g.setxattr(f, "user.bb", b"22", 0).unwrap();
    assert_eq!(g.setxattr(f, "user.a", b"x", 1).err(), Some(libc::EEXIST));
    assert_eq!(g.setxattr(f, "user.c", b"x", 2).err(), Some(libc::ENODATA));
    g.setxattr(f, "user.a", b"111", 2).unwrap();
    // Size probe, exact fit, too small.
    let probe = g.getxattr(f, "user.a", 0).unwrap();
    assert_eq!(u32::from_le_bytes(probe[..4].try_into().unwrap()), 3);
    assert_eq!(g.getxattr(f, "user.a", 3).unwrap(), b"111");
    assert_eq!(g.getxattr(f, "user.a", 2).err(), Some(libc::ERANGE));
    assert_eq!(g.getxattr(f, "user.zz", 10).err(), Some(libc::ENODATA));
    assert_eq!(g.listxattr(f, 100).unwrap(), b"user.a\0user.bb\0");
    let probe = g.listxattr(f, 0).unwrap();
    assert_eq!(u32::from_le_bytes(probe[..4].try_into().unwrap()), 15);
    assert_eq!(g.listxattr(f, 5).err(), Some(libc::ERANGE));
    g.removexattr(f, "user.a").unwrap();
    assert_eq!(g.removexattr(f, "user.a").err(), Some(libc::ENODATA));
    assert_eq!(g.setxattr(f, "user.big", &vec![0u8; 65537], 0).err(), Some(libc::E2BIG));
    g.setxattr(f, "user.max", &vec![0u8; 65536], 0).unwrap();
    assert_eq!(g.setxattr(f, &format!("user.{}", "n".repeat(251)), b"", 0).err(), Some(libc::ERANGE));
    assert_eq!(g.setxattr(f, "system.posix_acl_access", b"", 0).err(), Some(libc::EOPNOTSUPP));
    // Namespaces: trusted is root's, user needs write permission.
    g.setxattr(f, "trusted.t", b"t", 0).unwrap();
    let user = g.as_user(1000, 1000);
    assert_eq!(user.setxattr(f, "user.u", b"", 0).err(), Some(libc::EACCES));
    assert_eq!(user.setxattr(f, "trusted.u", b"", 0).err(), Some(libc::EPERM));
    assert_eq!(user.getxattr(f, "trusted.t", 10).err(), Some(libc::ENODATA));
    assert_eq!(user.listxattr(f, 1000).unwrap(), b"user.bb\0user.max\0");
    let before = g.fs.used_bytes();
    g.removexattr(f, "user.max").unwrap();
    assert_eq!(g.fs.used_bytes(), before - 65536 - 8);
}
