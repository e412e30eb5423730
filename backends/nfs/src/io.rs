//! File data: open and create (an NFS OPEN per FUSE handle, each under its own open owner so
//! that closing one never closes another), read, UNSTABLE write, COMMIT on fsync and flush,
//! release. Open state lost with a server restart is reclaimed in its grace period (locks
//! too), else re-opened when next used, and UNSTABLE writes whose
//! write verifier changed before their COMMIT are sent again (FILE_SYNC).

use crate::errno::errno;
use crate::handles::{Handle, OpenFile, Unstable, MAX_UNSTABLE};
use crate::namei::check_name;
use crate::{nfs, Inner};
use dpfs_core::fs::Entry;
use dpfs_core::Errno;
use dpfs_nfs4::compound::Replies;
use dpfs_nfs4::ops::io::{SHARE_ACCESS_BOTH, SHARE_ACCESS_READ, SHARE_ACCESS_WANT_NO_DELEG, SHARE_ACCESS_WRITE};
use dpfs_nfs4::ops::{Bitmap, Claim, CreateHow, LockArgs, Locker, NewAttrs, Op, OpenArgs, SetTime, Stable, StateId};
use dpfs_nfs4::{Creds, Error, FileHandle, Status};
use parking_lot::Mutex;

/// OPEN4_SHARE_ACCESS_* of `open(2)` flags.
fn share_access(flags: u32) -> u32 {
    let access = match flags as i32 & libc::O_ACCMODE {
        libc::O_WRONLY => SHARE_ACCESS_WRITE,
        libc::O_RDWR => SHARE_ACCESS_BOTH,
        _ => SHARE_ACCESS_READ,
    };
    access | SHARE_ACCESS_WANT_NO_DELEG
}

/// Whether the server no longer knows the open (it restarted, or the lease expired).
fn stale(e: &Error) -> bool {
    matches!(
        e,
        Error::Nfs {
            status: Status::BadStateId
                | Status::StaleStateId
                | Status::Expired
                | Status::AdminRevoked
                | Status::OldStateId,
            ..
        }
    )
}

/// Puts `s` into every op of `ops` that carries the open's stateid.
fn set_stateid(ops: &mut [Op], s: StateId) {
    for op in ops {
        match op {
            Op::Read { stateid, .. }
            | Op::Write { stateid, .. }
            | Op::Close(stateid)
            | Op::Seek { stateid, .. }
            | Op::Allocate { stateid, .. }
            | Op::Deallocate { stateid, .. }
            | Op::Copy(dpfs_nfs4::ops::CopyArgs { dst_stateid: stateid, .. }) => *stateid = s,
            Op::Lock(LockArgs { locker: Locker::New { open_stateid, .. }, .. }) => *open_stateid = s,
            _ => {}
        }
    }
}

impl Inner {
    fn open_args(&self, owner: u64, share: u32, how: CreateHow, claim: Claim) -> OpenArgs {
        OpenArgs {
            share_access: share,
            share_deny: 0,
            clientid: self.client.clientid(),
            owner: owner.to_be_bytes().to_vec(),
            how,
            claim,
        }
    }

    fn new_open(
        &self,
        fh: FileHandle,
        stateid: StateId,
        epoch: u64,
        share: u32,
        owner: u64,
        creds: &Creds,
    ) -> OpenFile {
        OpenFile {
            fh,
            stateid: Mutex::new((stateid, epoch)),
            share,
            owner,
            creds: creds.clone(),
            unstable: Mutex::new(Unstable::default()),
            locks: Mutex::new(Default::default()),
            held: Mutex::new(Default::default()),
            released: tokio::sync::Mutex::new(false),
        }
    }

    /// OPEN of an existing file (CLAIM_FH): its stateid.
    async fn open_fh(&self, creds: &Creds, fh: &FileHandle, owner: u64, share: u32) -> Result<StateId, Errno> {
        let ops = [Op::PutFh(fh.clone()), Op::Open(self.open_args(owner, share, CreateHow::NoCreate, Claim::Fh))];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        Ok(nfs(r.open())?.stateid)
    }

    /// open(2) of node `ino`; with O_TRUNC (the session negotiates atomic O_TRUNC) the file
    /// is cut to 0 and its mtime and ctime set, as open(2) does even for an empty file.
    pub async fn open(&self, creds: &Creds, ino: u64, flags: u32) -> Result<(u64, u32), Errno> {
        let fh = self.nodes.fh(ino)?;
        let n = self.handles.reserve()?;
        let share = share_access(flags);
        let epoch = self.client.epoch();
        let stateid = self.open_fh(creds, &fh, n, share).await?;
        self.handles.insert(n, Handle::File(self.new_open(fh.clone(), stateid, epoch, share, n, creds)));
        if flags as i32 & libc::O_TRUNC != 0 {
            let now = NewAttrs { mtime: Some(SetTime::ServerTime), ..NewAttrs::default() };
            let size = NewAttrs { size: Some(0), ..NewAttrs::default() };
            let ops = [Op::PutFh(fh), Op::SetAttr(stateid, size), Op::SetAttr(StateId::ANONYMOUS, now)];
            if let Err(e) = self.call(creds, &ops).await {
                self.release(creds, n).await?;
                return Err(e);
            }
        }
        Ok((n, 0))
    }

    /// OPEN with create (GUARDED for O_EXCL, else UNCHECKED; O_TRUNC sets size 0).
    pub async fn create(
        &self,
        creds: &Creds,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: u32,
    ) -> Result<(Entry, u64, u32), Errno> {
        check_name(name)?;
        let dir = self.nodes.fh(parent)?;
        let n = self.handles.reserve()?;
        let mut attrs = NewAttrs::mode(mode);
        let how = if flags as i32 & libc::O_EXCL != 0 {
            CreateHow::Guarded(attrs)
        } else {
            if flags as i32 & libc::O_TRUNC != 0 {
                attrs.size = Some(0);
            }
            CreateHow::Unchecked(attrs)
        };
        let share = share_access(flags);
        let epoch = self.client.epoch();
        let open = self.open_args(n, share, how, Claim::Null(name.to_vec()));
        let ops = [Op::PutFh(dir), Op::Open(open), Op::GetFh, Op::GetAttr(Bitmap::file())];
        let mut r = self.call(creds, &ops).await?;
        nfs(r.skip())?;
        let stateid = nfs(r.open())?.stateid;
        let fh = nfs(r.getfh())?;
        let attrs = nfs(r.getattr())?;
        self.handles.insert(n, Handle::File(self.new_open(fh.clone(), stateid, epoch, share, n, creds)));
        match self.entry(fh, &attrs) {
            Ok(e) => Ok((e, n, 0)),
            Err(e) => {
                self.release(creds, n).await?;
                Err(e)
            }
        }
    }

    /// A new stateid for `f` (its open was lost), as whoever opened it.
    pub(crate) async fn reopen_raw(&self, f: &OpenFile) -> Result<StateId, Error> {
        self.open_again(f, Claim::Fh).await
    }

    /// OPENs `f` again by its file handle with `claim` (CLAIM_FH, or CLAIM_PREVIOUS in a grace
    /// period), as whoever opened it, and keeps the stateid for the current client epoch.
    async fn open_again(&self, f: &OpenFile, claim: Claim) -> Result<StateId, Error> {
        let epoch = self.client.epoch();
        let open = self.open_args(f.owner, f.share, CreateHow::NoCreate, claim);
        let mut r = self.call_raw(&f.creds, &[Op::PutFh(f.fh.clone()), Op::Open(open)]).await?;
        r.skip()?;
        let sid = r.open()?.stateid;
        tracing::debug!(owner = f.owner, "NFS open re-established");
        *f.stateid.lock() = (sid, epoch);
        Ok(sid)
    }

    /// After a server restart: reclaims every open file with CLAIM_PREVIOUS, and the locks
    /// held on it (accepted only in the server's grace period; the first NFS4ERR_NO_GRACE ends
    /// it, and files are then re-opened when next used), bounded by the deadline; then, in
    /// every case, tells the server the reclaim is complete (until then it refuses every
    /// ordinary OPEN of this client).
    pub(crate) async fn recover_state(&self) {
        let deadline = self.cfg.deadline;
        if tokio::time::timeout(deadline, self.reclaim_opens()).await.is_err() {
            tracing::warn!(?deadline, "reclaim after the server restart cut short at the deadline: the files left are re-opened when used, their locks are lost");
            let epoch = self.client.epoch();
            for h in self.handles.all() {
                if let Some(f) = h.as_file().filter(|f| f.stateid.lock().1 != epoch) {
                    forget_locks(f);
                }
            }
        }
        match tokio::time::timeout(deadline, self.client.finish_reclaim()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "RECLAIM_COMPLETE after a server restart failed"),
            Err(_) => tracing::warn!("RECLAIM_COMPLETE after a server restart timed out"),
        }
    }

    async fn reclaim_opens(&self) {
        let epoch = self.client.epoch();
        for h in self.handles.all() {
            let Some(f) = h.as_file() else { continue };
            // Not while the file is being released or unlocked; not at all once released.
            let released = f.released.lock().await;
            if *released {
                continue;
            }
            if f.stateid.lock().1 == epoch {
                // Re-opened already, so not in a grace period: its locks are gone.
                forget_locks(f);
                continue;
            }
            match self.open_again(f, Claim::Previous).await {
                Ok(sid) => {
                    self.reclaimed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.reclaim_locks(f, sid).await;
                }
                Err(Error::Nfs { status: Status::NoGrace, .. }) => {
                    tracing::debug!("the server is not in its grace period: open files are re-opened when used");
                    // Their locks are gone for good: never reclaim them at a later restart.
                    for h in self.handles.all() {
                        if let Some(f) = h.as_file() {
                            forget_locks(f);
                        }
                    }
                    break;
                }
                Err(e) => {
                    tracing::warn!(owner = f.owner, error = %e, "reclaiming an open file failed; it is re-opened when used");
                    forget_locks(f);
                }
            }
            drop(released);
        }
    }

    /// Sends `ops` under `f`'s stateid, re-opening first if the client id changed since the
    /// open, and once more if the server says the state is gone. Returns the ops too (a
    /// WRITE's bytes are kept for a resend).
    async fn with_open(&self, creds: &Creds, f: &OpenFile, ops: Vec<Op>) -> Result<(Replies, Vec<Op>), Errno> {
        self.with_open_raw(creds, f, ops).await.map_err(|e| errno(&e))
    }

    /// [`with_open`](Self::with_open) with the client's error.
    pub(crate) async fn with_open_raw(
        &self,
        creds: &Creds,
        f: &OpenFile,
        mut ops: Vec<Op>,
    ) -> Result<(Replies, Vec<Op>), Error> {
        let (mut sid, epoch) = *f.stateid.lock();
        if epoch != self.client.epoch() {
            sid = self.reopen_raw(f).await?;
        }
        set_stateid(&mut ops, sid);
        let mut retried = false;
        loop {
            match self.call_raw(creds, &ops).await {
                Ok(r) => return Ok((r, ops)),
                Err(e) if stale(&e) && !retried => {
                    retried = true;
                    let sid = self.reopen_raw(f).await?;
                    set_stateid(&mut ops, sid);
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// READ of up to `size` bytes at `offset`, in READs of at most `max_io` until EOF.
    pub async fn read(&self, creds: &Creds, n: u64, offset: u64, size: u32) -> Result<Vec<u8>, Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let mut out = Vec::new();
        while out.len() < size as usize {
            let count = (size - out.len() as u32).min(self.max_io);
            let at = offset.checked_add(out.len() as u64).ok_or(Errno::EINVAL)?;
            let ops = vec![Op::PutFh(f.fh.clone()), Op::Read { stateid: StateId::ANONYMOUS, offset: at, count }];
            let (mut r, _) = self.with_open(creds, f, ops).await?;
            nfs(r.skip())?;
            let res = nfs(r.read())?;
            if res.data.len() > count as usize {
                tracing::warn!(asked = count, got = res.data.len(), "NFS READ returned more than asked");
                return Err(Errno::EIO);
            }
            let short = res.data.is_empty() || res.eof;
            if out.is_empty() {
                out = res.data;
            } else {
                out.extend_from_slice(&res.data);
            }
            if short {
                break;
            }
        }
        Ok(out)
    }

    /// One WRITE of `data` at `offset`: (bytes written, how stable, verifier, the bytes).
    async fn write_once(
        &self,
        creds: &Creds,
        f: &OpenFile,
        offset: u64,
        stable: Stable,
        data: Vec<u8>,
    ) -> Result<(dpfs_nfs4::ops::WriteRes, Vec<u8>), Errno> {
        let len = data.len();
        let ops = vec![Op::PutFh(f.fh.clone()), Op::Write { stateid: StateId::ANONYMOUS, offset, stable, data }];
        let (mut r, ops) = self.with_open(creds, f, ops).await?;
        nfs(r.skip())?;
        let res = nfs(r.write())?;
        if res.count as usize > len {
            tracing::warn!(asked = len, got = res.count, "NFS WRITE wrote more than sent");
            return Err(Errno::EIO);
        }
        let data = match ops.into_iter().nth(1) {
            Some(Op::Write { data, .. }) => data,
            _ => Vec::new(),
        };
        Ok((res, data))
    }

    /// An UNSTABLE WRITE; its bytes are kept until a COMMIT under the same verifier.
    pub async fn write(&self, creds: &Creds, n: u64, offset: u64, data: Vec<u8>) -> Result<u32, Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        let (res, mut data) = self.write_once(creds, f, offset, Stable::Unstable, data).await?;
        if res.committed != Stable::Unstable {
            return Ok(res.count);
        }
        data.truncate(res.count as usize);
        let (resend, over) = {
            let mut u = f.unstable.lock();
            let resend = match u.verifier {
                Some(v) if v != res.verifier => {
                    u.bytes = 0;
                    std::mem::take(&mut u.writes)
                }
                _ => Vec::new(),
            };
            u.verifier = Some(res.verifier);
            u.bytes += data.len();
            let seq = u.next;
            u.next += 1;
            u.writes.push((seq, offset, data));
            (resend, u.bytes > MAX_UNSTABLE)
        };
        if !resend.is_empty() {
            tracing::warn!(writes = resend.len(), "NFS write verifier changed: resending earlier unstable writes");
            self.resend(creds, f, resend).await?;
        }
        if over {
            self.commit(creds, f).await?;
        }
        Ok(res.count)
    }

    /// Writes `writes` again, FILE_SYNC.
    async fn resend(&self, creds: &Creds, f: &OpenFile, writes: Vec<(u64, u64, Vec<u8>)>) -> Result<(), Errno> {
        self.resent.fetch_add(writes.len() as u64, std::sync::atomic::Ordering::Relaxed);
        for (_, mut offset, mut data) in writes {
            while !data.is_empty() {
                let (res, mut rest) = self.write_once(creds, f, offset, Stable::FileSync, data).await?;
                if res.count == 0 {
                    return Err(Errno::EIO);
                }
                offset += u64::from(res.count);
                data = rest.split_off(res.count as usize);
            }
        }
        Ok(())
    }

    /// COMMIT of `f`'s unstable writes; if the verifier changed since they were written,
    /// they are sent again FILE_SYNC.
    async fn commit(&self, creds: &Creds, f: &OpenFile) -> Result<(), Errno> {
        // The COMMIT covers the writes answered before it is sent (sequence numbers below
        // `upto`); later ones stay for the next COMMIT.
        let upto = {
            let u = f.unstable.lock();
            if u.writes.is_empty() {
                return Ok(());
            }
            u.next
        };
        let mut r = self.call(creds, &[Op::PutFh(f.fh.clone()), Op::Commit { offset: 0, count: 0 }]).await?;
        nfs(r.skip())?;
        let verifier = nfs(r.commit())?;
        let resend = {
            let mut u = f.unstable.lock();
            if u.verifier == Some(verifier) {
                u.writes.retain(|(seq, _, _)| *seq >= upto);
                u.bytes = u.writes.iter().map(|(_, _, d)| d.len()).sum();
                Vec::new()
            } else {
                u.verifier = None;
                u.bytes = 0;
                std::mem::take(&mut u.writes)
            }
        };
        if !resend.is_empty() {
            tracing::warn!(writes = resend.len(), "NFS write verifier changed before COMMIT: resending");
            self.resend(creds, f, resend).await?;
        }
        Ok(())
    }

    /// fsync (and flush): handle `n`'s unstable writes made stable.
    pub async fn fsync(&self, creds: &Creds, n: u64) -> Result<(), Errno> {
        let h = self.handles.file(n)?;
        let f = h.as_file().ok_or(Errno::EBADF)?;
        self.commit(creds, f).await
    }

    /// release: COMMIT what is left, then CLOSE (unless the open went with the server's
    /// previous life).
    pub async fn release(&self, creds: &Creds, n: u64) -> Result<(), Errno> {
        let Some(h) = self.handles.remove(n) else { return Ok(()) };
        let Some(f) = h.as_file() else { return Ok(()) };
        self.lock_homes.forget_handle(n);
        let committed = self.commit(creds, f).await;
        // After a reclaim of this file that is under way, never during it.
        let mut released = f.released.lock().await;
        *released = true;
        self.unlock_all(creds, f).await;
        let (sid, epoch) = *f.stateid.lock();
        if epoch == self.client.epoch() {
            match self.call_raw(creds, &[Op::PutFh(f.fh.clone()), Op::Close(sid)]).await {
                Ok(_) => {}
                Err(e) if stale(&e) => {}
                Err(e) => return Err(errno(&e)),
            }
        }
        committed
    }
}

/// Forgets the locks held on `f`: the server lost them and they cannot be reclaimed.
fn forget_locks(f: &OpenFile) {
    let lost = f.held.lock().drain().filter(|(_, r)| !r.is_empty()).count();
    if lost > 0 {
        tracing::warn!(lost, "locks held before the server restarted are lost (no grace period to reclaim them)");
    }
}
