//! File locks: POSIX record locks (per owner, split and merged by range) and BSD `flock`
//! locks, plus SETLKW waiters parked with their reply token and completed when the
//! conflicting lock goes away. No thread ever blocks on a lock.

use crate::MemFs;
use dpfs_core::fs::{Context, Lock};
use dpfs_core::reply::ReplyEmpty;
use dpfs_core::Errno;
use std::collections::VecDeque;

const RDLCK: u32 = libc::F_RDLCK as u32;
const WRLCK: u32 = libc::F_WRLCK as u32;
const UNLCK: u32 = libc::F_UNLCK as u32;
/// Most POSIX lock records per inode (ENOLCK beyond).
const MAX_LOCKS: usize = 4096;
/// Most parked SETLKW requests per file system (ENOLCK beyond).
const MAX_WAITERS: usize = 4096;

/// A held POSIX lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RangeLock {
    pub owner: u64,
    pub start: u64,
    pub end: u64,
    pub typ: u32,
    pub pid: u32,
}

struct Waiter {
    unique: u64,
    owner: u64,
    lock: Lock,
    flock: bool,
    reply: ReplyEmpty,
}

/// The locks of one inode.
#[derive(Default)]
pub(crate) struct LockState {
    posix: Vec<RangeLock>,
    flock: Vec<(u64, u32)>,
    waiters: VecDeque<Waiter>,
}

fn overlaps(a: &RangeLock, start: u64, end: u64) -> bool {
    a.start <= end && start <= a.end
}

impl LockState {
    /// The first lock of another owner that conflicts with `lock`.
    pub(crate) fn posix_conflict(&self, owner: u64, lock: &Lock) -> Option<RangeLock> {
        self.posix
            .iter()
            .find(|l| l.owner != owner && overlaps(l, lock.start, lock.end) && (l.typ == WRLCK || lock.typ == WRLCK))
            .copied()
    }

    fn flock_conflict(&self, owner: u64, typ: u32) -> bool {
        self.flock.iter().any(|&(o, t)| o != owner && (t == WRLCK || typ == WRLCK))
    }

    fn conflicts(&self, owner: u64, lock: &Lock, flock: bool) -> bool {
        if lock.typ == UNLCK {
            return false;
        }
        if flock {
            self.flock_conflict(owner, lock.typ)
        } else {
            self.posix_conflict(owner, lock).is_some()
        }
    }

    /// Sets `lock` for `owner` without checking conflicts.
    fn apply(&mut self, owner: u64, lock: &Lock, flock: bool) -> Result<(), Errno> {
        if flock {
            self.flock.retain(|&(o, _)| o != owner);
            if lock.typ != UNLCK {
                self.flock.push((owner, lock.typ));
            }
            return Ok(());
        }
        if self.posix.len() + 2 > MAX_LOCKS {
            return Err(Errno(libc::ENOLCK));
        }
        let (start, end) = (lock.start, lock.end);
        let mut kept = Vec::with_capacity(self.posix.len() + 2);
        for l in self.posix.drain(..) {
            if l.owner != owner || !overlaps(&l, start, end) {
                kept.push(l);
                continue;
            }
            if l.start < start {
                kept.push(RangeLock { end: start - 1, ..l });
            }
            if l.end > end {
                kept.push(RangeLock { start: end + 1, ..l });
            }
        }
        self.posix = kept;
        if lock.typ != UNLCK {
            let mut new = RangeLock { owner, start, end, typ: lock.typ, pid: lock.pid };
            // Merge with the owner's touching locks of the same type.
            self.posix.retain(|l| {
                let touches = l.owner == owner
                    && l.typ == new.typ
                    && l.start <= new.end.saturating_add(1)
                    && new.start <= l.end.saturating_add(1);
                if touches {
                    new.start = new.start.min(l.start);
                    new.end = new.end.max(l.end);
                }
                !touches
            });
            self.posix.push(new);
        }
        Ok(())
    }

    /// Drops all POSIX locks of `owner` (FLUSH).
    pub(crate) fn drop_posix_owner(&mut self, owner: u64) {
        self.posix.retain(|l| l.owner != owner);
    }

    /// Drops the flock of `owner` (RELEASE with FLOCK_UNLOCK).
    pub(crate) fn drop_flock_owner(&mut self, owner: u64) {
        self.flock.retain(|&(o, _)| o != owner);
    }

    /// Grants every parked request that no longer conflicts, in arrival order; returns
    /// the replies to send (outside the lock) and the uniques to unindex.
    fn wake(&mut self) -> Vec<(u64, ReplyEmpty, Result<(), Errno>)> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.waiters.len() {
            let ready = match self.waiters.get(i) {
                Some(w) => !self.conflicts(w.owner, &w.lock, w.flock),
                None => false,
            };
            if !ready {
                i += 1;
                continue;
            }
            if let Some(w) = self.waiters.remove(i) {
                let r = self.apply(w.owner, &w.lock, w.flock);
                done.push((w.unique, w.reply, r));
            }
        }
        done
    }

    /// A simple deadlock check: the owner we would wait for is itself waiting for us.
    fn would_deadlock(&self, owner: u64, blocker: u64) -> bool {
        self.waiters.iter().any(|w| {
            w.owner == blocker
                && !w.flock
                && self.posix.iter().any(|l| l.owner == owner && overlaps(l, w.lock.start, w.lock.end))
        })
    }

    /// Removes everything, returning the parked replies (answered EIO when dropped).
    pub(crate) fn clear(&mut self) -> Vec<ReplyEmpty> {
        self.posix.clear();
        self.flock.clear();
        self.waiters.drain(..).map(|w| w.reply).collect()
    }

    #[cfg(test)]
    pub(crate) fn posix_locks(&self) -> Vec<RangeLock> {
        let mut v = self.posix.clone();
        v.sort_by_key(|l| (l.owner, l.start));
        v
    }
}

fn validate(lock: &Lock) -> Result<(), Errno> {
    if !matches!(lock.typ, RDLCK | WRLCK | UNLCK) || lock.start > lock.end {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

impl MemFs {
    pub(crate) fn do_getlk(&self, ino: u64, owner: u64, lock: Lock) -> Result<Lock, Errno> {
        validate(&lock)?;
        let inode = self.inode(ino)?;
        let st = inode.locks.lock();
        Ok(match st.posix_conflict(owner, &lock) {
            Some(l) => Lock { start: l.start, end: l.end, typ: l.typ, pid: l.pid },
            None => Lock { typ: UNLCK, ..lock },
        })
    }

    /// SETLK / SETLKW: replies now, or parks the reply until the lock can be granted.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_setlk(
        &self,
        ctx: &Context,
        ino: u64,
        owner: u64,
        lock: Lock,
        sleep: bool,
        flock: bool,
        reply: ReplyEmpty,
    ) {
        if let Err(e) = validate(&lock) {
            return reply.error(e);
        }
        let inode = match self.inode(ino) {
            Ok(i) => i,
            Err(e) => return reply.error(e),
        };
        // Decide under the lock; answer after dropping it.
        let (result, woken) = {
            let mut st = inode.locks.lock();
            if st.conflicts(owner, &lock, flock) {
                let refused = if !sleep {
                    Some(Errno::EAGAIN)
                } else if st.posix_conflict(owner, &lock).is_some_and(|b| !flock && st.would_deadlock(owner, b.owner)) {
                    Some(Errno::EDEADLK)
                } else {
                    let mut idx = self.waiters.lock();
                    if idx.len() >= MAX_WAITERS {
                        Some(Errno(libc::ENOLCK))
                    } else {
                        idx.insert(ctx.unique, ino);
                        None
                    }
                };
                match refused {
                    Some(e) => (Err(e), Vec::new()),
                    None => {
                        st.waiters.push_back(Waiter { unique: ctx.unique, owner, lock, flock, reply });
                        return;
                    }
                }
            } else {
                let r = st.apply(owner, &lock, flock);
                (r, st.wake())
            }
        };
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(e),
        }
        self.finish_waiters(woken);
    }

    /// Answers woken waiters (called with no lock held).
    fn finish_waiters(&self, woken: Vec<(u64, ReplyEmpty, Result<(), Errno>)>) {
        if woken.is_empty() {
            return;
        }
        {
            let mut idx = self.waiters.lock();
            for (u, _, _) in &woken {
                idx.remove(u);
            }
        }
        for (_, reply, r) in woken {
            match r {
                Ok(()) => reply.ok(),
                Err(e) => reply.error(e),
            }
        }
    }

    /// Drops `owner`'s POSIX locks (`posix`) or flock (`!posix`) on `ino` and wakes waiters.
    pub(crate) fn drop_owner_locks(&self, ino: u64, owner: u64, posix: bool) {
        let Ok(inode) = self.inode(ino) else { return };
        let woken = {
            let mut st = inode.locks.lock();
            if posix {
                st.drop_posix_owner(owner);
            } else {
                st.drop_flock_owner(owner);
            }
            st.wake()
        };
        self.finish_waiters(woken);
    }

    /// INTERRUPT of a parked SETLKW: answer it EINTR.
    pub(crate) fn do_interrupt(&self, unique: u64) {
        let Some(ino) = self.waiters.lock().remove(&unique) else { return };
        let Ok(inode) = self.inode(ino) else { return };
        let reply = {
            let mut st = inode.locks.lock();
            let pos = st.waiters.iter().position(|w| w.unique == unique);
            pos.and_then(|p| st.waiters.remove(p)).map(|w| w.reply)
        };
        if let Some(r) = reply {
            r.error(Errno(libc::EINTR));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lk(start: u64, end: u64, typ: u32) -> Lock {
        Lock { start, end, typ, pid: 1 }
    }

    #[test]
    fn split_and_merge() {
        let mut st = LockState::default();
        st.apply(1, &lk(0, 99, WRLCK), false).unwrap();
        st.apply(1, &lk(40, 59, UNLCK), false).unwrap();
        let v = st.posix_locks();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].start, v[0].end, v[1].start, v[1].end), (0, 39, 60, 99));
        st.apply(1, &lk(40, 59, WRLCK), false).unwrap();
        let v = st.posix_locks();
        assert_eq!(v.len(), 1);
        assert_eq!((v[0].start, v[0].end), (0, 99));
        st.apply(1, &lk(10, 19, RDLCK), false).unwrap();
        assert_eq!(st.posix_locks().len(), 3);
    }

    #[test]
    fn conflicts_between_owners() {
        let mut st = LockState::default();
        st.apply(1, &lk(0, 9, RDLCK), false).unwrap();
        assert!(st.posix_conflict(2, &lk(5, 5, RDLCK)).is_none());
        assert!(st.posix_conflict(2, &lk(5, 5, WRLCK)).is_some());
        assert!(st.posix_conflict(2, &lk(10, 20, WRLCK)).is_none());
        assert!(st.posix_conflict(1, &lk(0, 9, WRLCK)).is_none());
        st.apply(1, &lk(0, 0, WRLCK), true).unwrap();
        assert!(st.conflicts(2, &lk(0, 0, RDLCK), true));
        st.drop_flock_owner(1);
        assert!(!st.conflicts(2, &lk(0, 0, WRLCK), true));
    }

    #[test]
    fn invalid_locks() {
        assert_eq!(validate(&lk(5, 4, RDLCK)), Err(Errno::EINVAL));
        assert_eq!(validate(&lk(0, 4, 77)), Err(Errno::EINVAL));
    }
}
