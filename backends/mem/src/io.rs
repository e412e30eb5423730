//! Open files and their data: OPEN, CREATE, TMPFILE, READ, WRITE, RELEASE, FALLOCATE,
//! LSEEK, COPY_FILE_RANGE, and DESTROY (which drops every handle).

use crate::data::{CHUNK, MAX_FILE};
use crate::inode::{Content, Inode, Ts};
use crate::namei::NewNode;
use crate::{dot, perm, Handle, MemFs};
use dpfs_core::abi::misc;
use dpfs_core::fs::{Context, CopyRange, Entry, ReadArgs, WriteArgs, WriteData};
use dpfs_core::reply::ReplyData;
use dpfs_core::segments::{SegReader, SegWriter};
use dpfs_core::Errno;
use std::sync::atomic::Ordering;
use std::sync::Arc;

const FALLOC_KEEP_SIZE: u32 = libc::FALLOC_FL_KEEP_SIZE as u32;
const FALLOC_PUNCH_HOLE: u32 = libc::FALLOC_FL_PUNCH_HOLE as u32;
const SEEK_DATA: u32 = libc::SEEK_DATA as u32;
const SEEK_HOLE: u32 = libc::SEEK_HOLE as u32;
/// Largest COPY_FILE_RANGE done in one request (a short copy is a valid answer).
const MAX_COPY: u64 = 16 << 20;

fn accmode(flags: u32) -> u32 {
    flags & libc::O_ACCMODE as u32
}
fn readable(flags: u32) -> bool {
    accmode(flags) != libc::O_WRONLY as u32
}
fn writable(flags: u32) -> bool {
    accmode(flags) != libc::O_RDONLY as u32
}

/// The permission an `open(2)` with `flags` needs.
fn open_mask(flags: u32) -> Result<u32, Errno> {
    let mut mask = match accmode(flags) as i32 {
        libc::O_RDONLY => perm::R,
        libc::O_WRONLY => perm::W,
        libc::O_RDWR => perm::R | perm::W,
        _ => return Err(Errno::EINVAL),
    };
    if flags & libc::O_TRUNC as u32 != 0 {
        mask |= perm::W;
    }
    Ok(mask)
}

impl MemFs {
    /// Registers an open handle on `inode`; the caller reserved the handle slot and
    /// already counted it in `opens`.
    fn insert_handle(&self, inode: &Arc<Inode>, flags: u32) -> u64 {
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.handles.insert(fh, Arc::new(Handle { ino: inode.ino, inode: inode.clone(), flags }));
        fh
    }

    /// Counts one more open of `inode` and registers the handle (reserves the slot).
    pub(crate) fn open_handle(&self, inode: &Arc<Inode>, flags: u32) -> Result<u64, Errno> {
        self.space.reserve_handle()?;
        {
            let mut m = inode.meta.lock();
            if m.freed {
                drop(m);
                self.space.release_handle();
                return Err(Errno::ENOENT);
            }
            m.opens += 1;
        }
        Ok(self.insert_handle(inode, flags))
    }

    pub(crate) fn do_open(&self, ctx: &Context, ino: u64, flags: u32) -> Result<u64, Errno> {
        let inode = self.inode(ino)?;
        match inode.content {
            Content::Dir(_) => return Err(Errno::EISDIR),
            Content::Symlink(_) => return Err(Errno::ELOOP),
            _ => {}
        }
        let mask = open_mask(flags)?;
        self.space.reserve_handle()?;
        let r = self.open_counted(ctx, &inode, flags, mask);
        if let Err(e) = r {
            self.space.release_handle();
            return Err(e);
        }
        Ok(self.insert_handle(&inode, flags))
    }

    /// Permission check, O_TRUNC and the `opens` count of an OPEN.
    fn open_counted(&self, ctx: &Context, inode: &Inode, flags: u32, mask: u32) -> Result<(), Errno> {
        let trunc = flags & libc::O_TRUNC as u32 != 0;
        let mut data = match (&inode.content, trunc) {
            (Content::File(d), true) => Some(d.write()),
            _ => None,
        };
        let mut m = inode.meta.lock();
        if m.freed {
            return Err(Errno::ENOENT);
        }
        perm::check(ctx, m.owner(), mask)?;
        if let Some(d) = data.as_mut() {
            if m.size > 0 {
                let freed = d.truncate(0);
                self.space.release_bytes(freed * CHUNK);
                m.chunks = d.nchunks();
                m.size = 0;
                let now = Ts::now();
                m.mtime = now;
                m.ctime = now;
            }
            if ctx.uid != 0 {
                m.kill_suid();
            }
        }
        m.opens += 1;
        Ok(())
    }

    pub(crate) fn do_create(
        &self,
        ctx: &Context,
        parent: u64,
        name: &[u8],
        mode: u32,
        umask: u32,
        flags: u32,
    ) -> Result<(Entry, u64), Errno> {
        let mode = libc::S_IFREG | (mode & 0o7777 & !umask);
        open_mask(flags)?;
        match self.make_node(ctx, parent, name, mode, 0, NewNode::File) {
            Ok((inode, entry)) => match self.open_handle(&inode, flags) {
                Ok(fh) => Ok((entry, fh)),
                Err(e) => {
                    self.do_forget(inode.ino, 1);
                    Err(e)
                }
            },
            // Without O_EXCL an existing name is opened, as open(O_CREAT) does.
            Err(e) if e == Errno::EEXIST && flags & libc::O_EXCL as u32 == 0 && !dot(name) => {
                let mut entry = self.do_lookup(ctx, parent, name)?;
                match self.do_open(ctx, entry.ino, flags) {
                    Ok(fh) => {
                        if let Ok(a) = self.do_getattr(entry.ino) {
                            entry.attr = a;
                        }
                        Ok((entry, fh))
                    }
                    Err(e) => {
                        self.do_forget(entry.ino, 1);
                        Err(e)
                    }
                }
            }
            Err(e) => Err(e),
        }
    }

    pub(crate) fn do_tmpfile(
        &self,
        ctx: &Context,
        parent: u64,
        mode: u32,
        umask: u32,
        flags: u32,
    ) -> Result<(Entry, u64), Errno> {
        let pino = self.inode(parent)?;
        pino.dir()?;
        let powner = {
            let m = pino.meta.lock();
            perm::check(ctx, m.owner(), perm::W | perm::X)?;
            if m.is_dead_dir() {
                return Err(Errno::ENOENT);
            }
            m.owner()
        };
        let (mode, gid) = perm::new_owner(ctx, powner, libc::S_IFREG | (mode & 0o7777 & !umask));
        self.space.reserve_handle()?;
        let inode = match self.alloc_inode(mode, ctx.uid, gid, 0, 0, NewNode::File, parent) {
            Ok(i) => i,
            Err(e) => {
                self.space.release_handle();
                return Err(e);
            }
        };
        let entry = {
            let mut m = inode.meta.lock();
            m.lookups = 1;
            m.opens = 1;
            m.linkable = flags & libc::O_EXCL as u32 == 0;
            self.entry(inode.ino, &m)
        };
        Ok((entry, self.insert_handle(&inode, flags)))
    }

    pub(crate) fn do_read(&self, ino: u64, args: ReadArgs, reply: ReplyData) {
        let h = match self.handle(args.fh, ino) {
            Ok(h) if readable(h.flags) => h,
            Ok(_) => return reply.error(Errno::EBADF),
            Err(e) => return reply.error(e),
        };
        let file = match h.inode.file() {
            Ok(f) => f,
            Err(e) => return reply.error(e),
        };
        let data = file.read();
        let size = h.inode.meta.lock().size;
        if args.offset >= size {
            drop(data);
            return reply.data(&[]);
        }
        let want = (size - args.offset).min(args.size as u64).min(reply.capacity() as u64);
        let segs = reply.buffer(want as usize);
        let w = SegWriter::new(&segs);
        let n = want.min(w.capacity() as u64);
        let mut pos = 0;
        data.read(args.offset, n, |piece| {
            let _ = w.write_at(pos, piece);
            pos += piece.len();
        });
        drop(data);
        reply.commit(n as usize)
    }

    pub(crate) fn do_write(&self, ctx: &Context, ino: u64, args: WriteArgs, data: &WriteData) -> Result<u32, Errno> {
        let h = self.handle(args.fh, ino)?;
        if !writable(h.flags) {
            return Err(Errno::EBADF);
        }
        // Writeback-cache writes carry page offsets even on O_APPEND handles.
        let append = h.flags & libc::O_APPEND as u32 != 0 && args.write_flags & misc::WRITE_CACHE == 0;
        let kill = args.write_flags & misc::WRITE_KILL_SUIDGID != 0 || ctx.uid != 0;
        let len = data.len() as u64;
        let mut r = SegReader::new(&data.segs, len as usize);
        let off = (!append).then_some(args.offset);
        let n = self.write_at(&h.inode, off, len, kill, |dst| {
            let _ = r.read_exact(dst);
        })?;
        Ok(n as u32)
    }

    /// Writes `len` bytes produced by `fill` at `off` (end of file if `None`).
    pub(crate) fn write_at(
        &self,
        inode: &Inode,
        off: Option<u64>,
        len: u64,
        kill_suid: bool,
        fill: impl FnMut(&mut [u8]),
    ) -> Result<u64, Errno> {
        let mut d = inode.file()?.write();
        let size = inode.meta.lock().size;
        let off = off.unwrap_or(size);
        if off > MAX_FILE {
            return Err(Errno::EINVAL);
        }
        let end = off.checked_add(len).filter(|&e| e <= MAX_FILE).ok_or(Errno::EFBIG)?;
        if len == 0 {
            return Ok(0);
        }
        self.space.reserve_bytes(d.missing(off, len) * CHUNK)?;
        d.write(off, len, fill);
        let mut m = inode.meta.lock();
        m.size = m.size.max(end);
        m.chunks = d.nchunks();
        let now = Ts::now();
        m.mtime = now;
        m.ctime = now;
        if kill_suid && m.mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
            m.kill_suid();
        }
        Ok(len)
    }

    /// RELEASE / RELEASEDIR: drops the handle (and the owner's flock if asked).
    pub(crate) fn do_release(&self, ino: u64, fh: u64, owner: u64, flock_release: bool) {
        if self.handle(fh, ino).is_err() {
            return;
        }
        let Some(h) = self.handles.remove(fh) else { return };
        self.space.release_handle();
        if flock_release {
            self.drop_owner_locks(h.ino, owner, false);
        }
        let freed = {
            let mut m = h.inode.meta.lock();
            m.opens = m.opens.saturating_sub(1);
            m.try_free()
        };
        self.reap(h.ino, freed);
    }

    pub(crate) fn do_fallocate(&self, ino: u64, fh: u64, offset: u64, length: u64, mode: u32) -> Result<(), Errno> {
        let h = self.handle(fh, ino)?;
        if !writable(h.flags) {
            return Err(Errno::EBADF);
        }
        let punch = mode & FALLOC_PUNCH_HOLE != 0;
        if mode & !(FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE) != 0 || (punch && mode & FALLOC_KEEP_SIZE == 0) {
            return Err(Errno::EOPNOTSUPP);
        }
        if length == 0 || offset > MAX_FILE || length > MAX_FILE {
            return Err(Errno::EINVAL);
        }
        let end = offset.checked_add(length).filter(|&e| e <= MAX_FILE).ok_or(Errno::EFBIG)?;
        let mut d = h.inode.file()?.write();
        let now = Ts::now();
        if punch {
            let freed = d.punch(offset, length);
            self.space.release_bytes(freed * CHUNK);
            let mut m = h.inode.meta.lock();
            m.chunks = d.nchunks();
            m.mtime = now;
            m.ctime = now;
            return Ok(());
        }
        self.space.reserve_bytes(d.missing(offset, length) * CHUNK)?;
        d.allocate(offset, length);
        let mut m = h.inode.meta.lock();
        m.chunks = d.nchunks();
        if mode & FALLOC_KEEP_SIZE == 0 && end > m.size {
            m.size = end;
        }
        m.ctime = now;
        Ok(())
    }

    pub(crate) fn do_lseek(&self, ino: u64, offset: u64, whence: u32) -> Result<u64, Errno> {
        if whence != SEEK_DATA && whence != SEEK_HOLE {
            return Err(Errno::EINVAL);
        }
        let inode = self.inode(ino)?;
        let d = inode.file()?.read();
        let size = inode.meta.lock().size;
        if offset >= size {
            return Err(Errno::ENXIO);
        }
        if whence == SEEK_DATA {
            d.seek_data(offset, size).ok_or(Errno::ENXIO)
        } else {
            Ok(d.seek_hole(offset, size))
        }
    }

    pub(crate) fn do_copy_file_range(&self, ctx: &Context, ino_in: u64, r: CopyRange) -> Result<u64, Errno> {
        if r.flags != 0 {
            return Err(Errno::EINVAL);
        }
        let hin = self.handle(r.fh_in, ino_in)?;
        let hout = self.handle(r.fh_out, r.ino_out)?;
        if !readable(hin.flags) || !writable(hout.flags) || hout.flags & libc::O_APPEND as u32 != 0 {
            return Err(Errno::EBADF);
        }
        if r.off_in > MAX_FILE || r.off_out > MAX_FILE {
            return Err(Errno::EINVAL);
        }
        let len = r.len.min(MAX_COPY);
        if ino_in == r.ino_out && r.off_in < r.off_out.saturating_add(len) && r.off_out < r.off_in.saturating_add(len) {
            return Err(Errno::EINVAL);
        }
        let buf = {
            let d = hin.inode.file()?.read();
            let size = hin.inode.meta.lock().size;
            if r.off_in >= size {
                return Ok(0);
            }
            let n = len.min(size - r.off_in);
            let mut buf = Vec::with_capacity(n as usize);
            d.read(r.off_in, n, |p| buf.extend_from_slice(p));
            buf
        };
        let mut pos = 0;
        self.write_at(&hout.inode, Some(r.off_out), buf.len() as u64, ctx.uid != 0, |dst| {
            if let Some(src) = buf.get(pos..pos + dst.len()) {
                dst.copy_from_slice(src);
            }
            pos += dst.len();
        })
    }

    /// DESTROY / reset: drops every handle, lookup reference, lock and parked waiter.
    pub(crate) fn do_destroy(&self) {
        let handles = self.handles.drain();
        for _ in &handles {
            self.space.release_handle();
        }
        self.waiters.lock().clear();
        let mut parked = Vec::new();
        for inode in self.inodes.values() {
            parked.extend(inode.locks.lock().clear());
            let freed = {
                let mut m = inode.meta.lock();
                m.lookups = 0;
                m.opens = 0;
                m.try_free()
            };
            self.reap(inode.ino, freed);
        }
        // Dropping the parked tokens answers them EIO.
        drop(parked);
        drop(handles);
    }
}
