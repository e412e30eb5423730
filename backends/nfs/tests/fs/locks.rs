//! POSIX byte-range locks as NFSv4 locks: conflicts between owners, ranges, LOCKT's
//! report of the conflicting lock, SETLKW waiting on a task, locks gone with the open, and
//! an owner's locks reached through any open of the file (unlock, test, close).

use crate::{Case, ROOT};
use dpfs_core::abi;
use dpfs_core::operation::Operation;
use std::time::Duration;

const RD: i32 = libc::F_RDLCK;
const WR: i32 = libc::F_WRLCK;
const UN: i32 = libc::F_UNLCK;

pub fn posix_locks(c: &Case) {
    let g = &c.g;
    let (f, fh) = g.mkfile(ROOT, "f").unwrap();
    g.setlk(f, g.lk(fh, 1, 0, 99, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 2, 50, 50, RD, false)).err(), Some(libc::EAGAIN));
    let conflict = g.getlk(f, g.lk(fh, 2, 50, 60, RD, false)).unwrap();
    assert_eq!((conflict.start, conflict.end, conflict.typ), (0, 99, WR as u32));
    // Owner 1 unlocks the middle; owner 2 can take it, but not the remaining ends.
    g.setlk(f, g.lk(fh, 1, 40, 59, UN, false)).unwrap();
    g.setlk(f, g.lk(fh, 2, 40, 59, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 2, 30, 45, RD, false)).err(), Some(libc::EAGAIN));
    assert_eq!(g.getlk(f, g.lk(fh, 3, 100, 200, WR, false)).unwrap().typ, UN as u32);
    // Shared locks coexist; a lock to the end of the file conflicts with everything after.
    g.setlk(f, g.lk(fh, 3, 200, 300, RD, false)).unwrap();
    g.setlk(f, g.lk(fh, 4, 250, 260, RD, false)).unwrap();
    g.setlk(f, g.lk(fh, 5, 1000, i64::MAX as u64, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh, 6, 5000, 5000, RD, false)).err(), Some(libc::EAGAIN));
    assert_eq!(g.setlk(f, g.lk(fh, 2, 10, 5, WR, false)).err(), Some(libc::EINVAL));

    // SETLKW waits (on a task) until owner 1 lets go of 0..39.
    let waiter = g.setlkw(f, g.lk(fh, 9, 0, 10, WR, false));
    assert!(waiter.recv_timeout(Duration::from_millis(300)).is_err(), "SETLKW granted over a held lock");
    g.setlk(f, g.lk(fh, 1, 0, 39, UN, false)).unwrap();
    let granted = waiter.recv_timeout(Duration::from_secs(30)).expect("SETLKW answered once the lock is free");
    assert_eq!(dpfs_core::guest::body(granted).map(|_| ()), Ok(()));
    assert_eq!(g.getlk(f, g.lk(fh, 1, 5, 5, RD, false)).unwrap().typ, WR as u32);

    // A waiting SETLKW ends with EINTR when the guest interrupts it.
    let parked = g.send_unique(777_777, f, &Operation::Setlkw(g.lk(fh, 3, 0, 9, WR, false)), &[], 0);
    assert!(parked.recv_timeout(Duration::from_millis(100)).is_err(), "SETLKW granted over a held lock");
    let _ = g.send(0, &Operation::Interrupt(abi::InterruptIn { unique: 777_777 }), &[], 0).recv();
    let r = parked.recv_timeout(Duration::from_secs(30)).expect("interrupted");
    assert_eq!(dpfs_core::guest::body(r).err(), Some(libc::EINTR));

    // Another open of the file sees them; once the first open is released they are gone.
    let fh2 = g.open(f, libc::O_RDWR as u32).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh2, 7, 0, 10, WR, false)).err(), Some(libc::EAGAIN));
    g.release(f, fh).unwrap();
    g.setlk(f, g.lk(fh2, 7, 0, i64::MAX as u64, WR, false)).unwrap();
    g.release(f, fh2).unwrap();
}

/// A process's locks are its own on the file, whichever descriptor it uses: taken through one
/// open, they are unlocked through another, never conflict with the owner's own test through
/// another, and go when the owner closes any descriptor of the file (FLUSH).
pub fn locks_belong_to_the_owner(c: &Case) {
    let g = &c.g;
    let (f, fh1) = g.mkfile(ROOT, "shared").unwrap();
    let fh2 = g.open(f, libc::O_RDWR as u32).unwrap();
    g.setlk(f, g.lk(fh1, 1, 0, 9, WR, false)).unwrap();
    assert_eq!(g.setlk(f, g.lk(fh2, 2, 0, 9, WR, false)).err(), Some(libc::EAGAIN));
    // Owner 1 unlocks through the other open: owner 2 gets the range.
    g.setlk(f, g.lk(fh2, 1, 0, 9, UN, false)).unwrap();
    g.setlk(f, g.lk(fh2, 2, 0, 9, WR, false)).unwrap();
    g.setlk(f, g.lk(fh2, 2, 0, 9, UN, false)).unwrap();
    // Owner 1 locks through the second open too; testing through the first sees no conflict
    // with itself, another owner does.
    g.setlk(f, g.lk(fh2, 1, 20, 29, WR, false)).unwrap();
    assert_eq!(g.getlk(f, g.lk(fh1, 1, 25, 25, WR, false)).unwrap().typ, UN as u32);
    assert_eq!(g.getlk(f, g.lk(fh1, 3, 25, 25, WR, false)).unwrap().typ, WR as u32);
    g.setlk(f, g.lk(fh1, 1, 40, 49, RD, false)).unwrap();
    // Owner 1 closes a descriptor of the file (the open it did not lock through first): all
    // its locks on the file go.
    g.flush(f, fh2, 1).unwrap();
    g.setlk(f, g.lk(fh1, 3, 20, 49, WR, false)).unwrap();
    // And a later lock of owner 1 starts afresh.
    assert_eq!(g.setlk(f, g.lk(fh2, 1, 20, 20, RD, false)).err(), Some(libc::EAGAIN));
    g.setlk(f, g.lk(fh2, 1, 60, 69, RD, false)).unwrap();
    g.release(f, fh1).unwrap();
    g.release(f, fh2).unwrap();
}
