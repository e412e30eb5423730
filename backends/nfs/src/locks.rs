//! POSIX byte-range locks as NFSv4 locks: getlk is LOCKT, setlk LOCK or LOCKU, setlkw a
//! LOCK retried (with a growing pause) on a task until it is granted: the waiting never
//! occupies a poller thread, and the request ends by the deadline (EINTR: the caller may
//! retry).

use crate::handles::{Handle, OpenFile};
use crate::{nfs, Inner};
use dpfs_core::fs::Lock;
use dpfs_core::Errno;
use dpfs_nfs4::ops::{LockArgs, LockOwner, LockTestArgs, LockType, Locker, Op, StateId, UnlockArgs};
use dpfs_nfs4::{Creds, Error};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

/// Which open holds each lock owner's locks on each file: (node id, FUSE lock owner) →
/// handle number. POSIX locks belong to the process and the file, not to the open they were
/// taken through: a lock taken through one open is unlocked through another, or by closing
/// any descriptor of the file, and a process never conflicts with itself. So every lock
/// request of an owner on a file goes through the open that took its first lock (its NFS
/// lock owner and lock stateid live there).
#[derive(Debug, Default)]
pub struct LockHomes(Mutex<HashMap<(u64, u64), u64>>);

impl LockHomes {
    fn get(&self, node: u64, owner: u64) -> Option<u64> {
        self.0.lock().get(&(node, owner)).copied()
    }

    fn set(&self, node: u64, owner: u64, handle: u64) {
        self.0.lock().entry((node, owner)).or_insert(handle);
    }

    fn take(&self, node: u64, owner: u64) -> Option<u64> {
        self.0.lock().remove(&(node, owner))
    }

    /// Handle `n` was released: its owners' locks went with it.
    pub fn forget_handle(&self, n: u64) {
        self.0.lock().retain(|_, h| *h != n);
    }
}

/// The NFS range of a FUSE lock (`end` inclusive, OFFSET_MAX for "to the end").
fn range(l: &Lock) -> Result<(u64, u64), Errno> {
    if l.end < l.start {
        Err(Errno::EINVAL)
    } else if l.end >= i64::MAX as u64 {
        Ok((l.start, u64::MAX))
    } else {
        Ok((l.start, l.end - l.start + 1))
    }
}

fn nfs_type(l: &Lock, wait: bool) -> LockType {
    match (l.typ as i32 == libc::F_WRLCK, wait) {
        (true, false) => LockType::Write,
        (true, true) => LockType::WriteWait,
        (false, false) => LockType::Read,
        (false, true) => LockType::ReadWait,
    }
}

impl Inner {
    fn lock_owner(&self, n: u64, owner: u64) -> LockOwner {
        let mut bytes = owner.to_be_bytes().to_vec();
        bytes.extend_from_slice(&n.to_be_bytes());
        LockOwner { clientid: self.client.clientid(), owner: bytes }
    }

    /// The open that holds `owner`'s locks on node `node` (handle number and handle), or `n`
    /// if it holds none there (or that open is gone).
    fn lock_home(&self, node: u64, n: u64, owner: u64) -> Result<(u64, Arc<Handle>), Errno> {
        if let Some(home) = self.lock_homes.get(node, owner).filter(|&h| h != n) {
            if let Ok(h) = self.handles.file(home) {
                return Ok((home, h));
            }
        }
        Ok((n, self.handles.file(n)?))
    }

    /// getlk: the lock that would conflict with `l`, or `l` as F_UNLCK.
    pub async fn getlk(&self, creds: &Creds, node: u64, n: u64, owner: u64, l: Lock) -> Result<Lock, Errno> {
        let (n, h) = self.lock_home(node, n, owner)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let (offset, length) = range(&l)?;
        let test = LockTestArgs { locktype: nfs_type(&l, false), offset, length, owner: self.lock_owner(n, owner) };
        match self.call_raw(creds, &[Op::PutFh(f.fh.clone()), Op::LockT(test)]).await {
            Ok(_) => Ok(Lock { typ: libc::F_UNLCK as u32, ..l }),
            Err(Error::LockDenied(d)) => Ok(Lock {
                start: d.offset,
                end: if d.length == u64::MAX {
                    i64::MAX as u64
                } else {
                    d.offset.saturating_add(d.length.saturating_sub(1))
                },
                typ: if d.locktype.is_write() { libc::F_WRLCK } else { libc::F_RDLCK } as u32,
                pid: 0,
            }),
            Err(e) => Err(crate::errno::errno(&e)),
        }
    }

    /// setlk and setlkw (`wait`), through the open that holds the owner's locks on the file.
    pub async fn setlk(&self, creds: &Creds, node: u64, n: u64, owner: u64, l: Lock, wait: bool) -> Result<(), Errno> {
        let (n, h) = self.lock_home(node, n, owner)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        if l.typ as i32 == libc::F_UNLCK {
            return self.unlock(creds, f, owner, &l).await;
        }
        let mut pause = Duration::from_millis(10);
        loop {
            let r = self.lock_once(creds, n, f, owner, &l, wait).await;
            if r.is_ok() {
                self.lock_homes.set(node, owner, n);
            }
            match r {
                Err(Error::LockDenied(_)) if wait => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(500));
                }
                Err(Error::LockDenied(_)) => return Err(Errno::EAGAIN),
                r => return r.map(drop).map_err(|e| crate::errno::errno(&e)),
            }
        }
    }

    async fn lock_once(
        &self,
        creds: &Creds,
        n: u64,
        f: &OpenFile,
        owner: u64,
        l: &Lock,
        wait: bool,
    ) -> Result<StateId, Error> {
        let epoch = self.client.epoch();
        let known = f.locks.lock().get(&owner).filter(|(_, e)| *e == epoch).map(|(s, _)| *s);
        let locker = match known {
            Some(sid) => Locker::Existing(sid),
            None => Locker::New { open_stateid: StateId::ANONYMOUS, owner: self.lock_owner(n, owner) },
        };
        let (offset, length) =
            range(l).map_err(|_| Error::Nfs { op: dpfs_nfs4::ops::OpCode::Lock, status: dpfs_nfs4::Status::Inval })?;
        let args = LockArgs { locktype: nfs_type(l, wait), offset, length, locker, reclaim: false };
        let ops = vec![Op::PutFh(f.fh.clone()), Op::Lock(args)];
        let (mut r, _) = self.with_open_raw(creds, f, ops).await?;
        r.skip()?;
        let sid = r.lock()?;
        f.locks.lock().insert(owner, (sid, epoch));
        f.held.lock().entry(owner).or_default().lock(l.start, l.end, l.typ as i32 == libc::F_WRLCK);
        Ok(sid)
    }

    async fn unlock(&self, creds: &Creds, f: &OpenFile, owner: u64, l: &Lock) -> Result<(), Errno> {
        // After a reclaim of this file that is under way (it would take the range again).
        let _serial = f.released.lock().await;
        if let Some(held) = f.held.lock().get_mut(&owner) {
            held.unlock(l.start, l.end);
        }
        let Some((sid, epoch)) = f.locks.lock().get(&owner).copied() else { return Ok(()) };
        if epoch != self.client.epoch() {
            f.locks.lock().remove(&owner);
            return Ok(());
        }
        let (offset, length) = range(l)?;
        let args = UnlockArgs { locktype: LockType::Write, stateid: sid, offset, length };
        let mut r = self.call(creds, &[Op::PutFh(f.fh.clone()), Op::LockU(args)]).await?;
        nfs(r.skip())?;
        let sid = nfs(r.locku())?;
        f.locks.lock().insert(owner, (sid, epoch));
        Ok(())
    }

    /// After a server restart, in its grace period: takes again, as reclaims, the locks `f`'s
    /// owners held, on `f`'s reclaimed open `open`. An owner whose reclaim fails has lost its
    /// locks (logged; what was granted of them is released again); its next lock starts
    /// afresh. Each grant is recorded at once, so a reclaim cut short leaves nothing on the
    /// server that the file's release would not unlock.
    pub async fn reclaim_locks(&self, f: &OpenFile, open: StateId) {
        let owners: Vec<(u64, crate::ranges::Ranges)> =
            f.held.lock().iter().filter(|(_, r)| !r.is_empty()).map(|(o, r)| (*o, r.clone())).collect();
        let epoch = self.client.epoch();
        for (owner, ranges) in owners {
            let (mut sid, mut lost) = (None, false);
            for (start, end, write) in ranges.iter() {
                let l = Lock { start, end, typ: if write { libc::F_WRLCK } else { libc::F_RDLCK } as u32, pid: 0 };
                let Ok((offset, length)) = range(&l) else { continue };
                let locker = match sid {
                    Some(s) => Locker::Existing(s),
                    None => Locker::New { open_stateid: open, owner: self.lock_owner(f.owner, owner) },
                };
                let args = LockArgs { locktype: nfs_type(&l, false), offset, length, locker, reclaim: true };
                let granted = async {
                    let mut r = self.call_raw(&f.creds, &[Op::PutFh(f.fh.clone()), Op::Lock(args)]).await?;
                    r.skip()?;
                    r.lock()
                };
                match granted.await {
                    Ok(s) => {
                        sid = Some(s);
                        f.locks.lock().insert(owner, (s, epoch));
                    }
                    Err(e) => {
                        tracing::warn!(owner, start, end, error = %e, "a lock held before the server restarted could not be reclaimed: it is lost");
                        lost = true;
                        break;
                    }
                }
            }
            if !lost {
                self.reclaimed_locks.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                continue;
            }
            f.held.lock().remove(&owner);
            f.locks.lock().remove(&owner);
            if let Some(s) = sid {
                // The ranges granted before the refusal: the owner holds none of them now.
                let args = UnlockArgs { locktype: LockType::Write, stateid: s, offset: 0, length: u64::MAX };
                if let Err(e) = self.call_raw(&f.creds, &[Op::PutFh(f.fh.clone()), Op::LockU(args)]).await {
                    tracing::warn!(owner, error = %e, "releasing the part of a lock reclaim that was granted failed");
                }
            }
        }
    }

    /// A close by `owner` (FLUSH): its locks on node `node` go, whichever open holds them.
    pub async fn drop_owner_locks(&self, creds: &Creds, node: u64, owner: u64) {
        let Some(home) = self.lock_homes.take(node, owner) else { return };
        let Ok(h) = self.handles.file(home) else { return };
        let Some(f) = h.as_file() else { return };
        let _serial = f.released.lock().await;
        f.held.lock().remove(&owner);
        let Some((sid, epoch)) = f.locks.lock().remove(&owner) else { return };
        if epoch != self.client.epoch() {
            return;
        }
        let args = UnlockArgs { locktype: LockType::Write, stateid: sid, offset: 0, length: u64::MAX };
        if let Err(e) = self.call_raw(creds, &[Op::PutFh(f.fh.clone()), Op::LockU(args)]).await {
            tracing::debug!(owner, error = %e, "LOCKU at close failed");
        }
    }

    /// Releases every lock `f`'s owners still hold (before its CLOSE).
    pub async fn unlock_all(&self, creds: &Creds, f: &OpenFile) {
        f.held.lock().clear();
        let held: Vec<(u64, (StateId, u64))> = f.locks.lock().drain().collect();
        for (_, (sid, epoch)) in held {
            if epoch != self.client.epoch() {
                continue;
            }
            let args = UnlockArgs { locktype: LockType::Write, stateid: sid, offset: 0, length: u64::MAX };
            if let Err(e) = self.call_raw(creds, &[Op::PutFh(f.fh.clone()), Op::LockU(args)]).await {
                tracing::debug!(error = %e, "LOCKU before CLOSE failed");
            }
        }
    }
}
