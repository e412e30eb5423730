//! File data: READ, WRITE, truncation and FALLOCATE (allocate, punch a hole).
//!
//! A file up to [`INLINE_MAX`] bytes keeps its bytes in its inode record, so reading it
//! costs the one round trip a GETATTR costs. A larger file moves to chunks of [`CHUNK`]
//! bytes (and stays there); a chunk that does not exist is a hole and reads as zeros, and
//! a stored chunk shorter than [`CHUNK`] ends in zeros. fallocate stores chunks of zeros
//! (references without data). A chunk's bytes are never changed in place: a write stores
//! them under a fresh generation (see `schema`).

use crate::error::Fail;
use crate::fs::{now, Inner};
use crate::schema::{self, Inode, CHUNK, INLINE_MAX, MAX_FILE};
use crate::store::Store;
use crate::tx::{timed, Tx};
use dpfs_core::abi::misc;
use dpfs_core::fs::{Context, ReadArgs, WriteArgs};
use dpfs_core::Errno;

const FALLOC_KEEP_SIZE: u32 = libc::FALLOC_FL_KEEP_SIZE as u32;
const FALLOC_PUNCH_HOLE: u32 = libc::FALLOC_FL_PUNCH_HOLE as u32;
/// Most chunks one FALLOCATE may create.
const MAX_ALLOC_CHUNKS: u64 = 1 << 16;
/// Keys per scan while listing a file's chunks.
const SCAN_BATCH: usize = 1024;

pub(crate) fn accmode(flags: u32) -> u32 {
    flags & libc::O_ACCMODE as u32
}
pub(crate) fn readable(flags: u32) -> bool {
    accmode(flags) != libc::O_WRONLY as u32
}
pub(crate) fn writable(flags: u32) -> bool {
    accmode(flags) != libc::O_RDONLY as u32
}

/// EISDIR for a directory, EINVAL for anything else that is not a regular file.
pub(crate) fn need_file(i: &Inode) -> Result<(), Errno> {
    if i.is_file() {
        Ok(())
    } else if i.is_dir() {
        Err(Errno::EISDIR)
    } else {
        Err(Errno::EINVAL)
    }
}

/// Moves an inline file's bytes to chunk 0: the file is chunked from now on.
fn unline<S: Store>(tx: &mut Tx<'_, S>, ino: u64, i: &mut Inode) {
    if let Some(d) = i.inline.take() {
        if !d.is_empty() {
            tx.set_chunk(ino, 0, None, d);
            i.chunks += 1;
        }
    }
}

impl<S: Store> Inner<S> {
    /// Indexes and generations of the chunks of `ino` that exist in `[from, to]`.
    pub(crate) async fn existing_chunks(&self, ino: u64, from: u64, to: u64) -> Result<Vec<(u64, u64)>, Fail> {
        let fam = schema::chunk_family(ino);
        let mut out = Vec::new();
        let mut after = match from.checked_sub(1) {
            Some(p) => p.to_be_bytes().to_vec(),
            None => Vec::new(),
        };
        loop {
            let batch = timed(self.cfg.op_timeout, self.store.scan(&fam, &after, SCAN_BATCH)).await?;
            let n = batch.len();
            for (k, v) in batch {
                match schema::suffix_u64(&k) {
                    Some(idx) if idx <= to => out.push((idx, schema::ref_gen(&k, &v)?)),
                    Some(_) => return Ok(out),
                    None => {}
                }
                after = k.get(fam.len()..).unwrap_or_default().to_vec();
            }
            if n < SCAN_BATCH {
                return Ok(out);
            }
        }
    }

    /// Sets `i`'s size to `size` (of inode `ino`), dropping data past it.
    pub(crate) async fn truncate(&self, tx: &mut Tx<'_, S>, ino: u64, i: &mut Inode, size: u64) -> Result<(), Fail> {
        if let Some(d) = i.inline.as_mut() {
            if size <= INLINE_MAX {
                d.resize(size as usize, 0);
                i.size = size;
                return Ok(());
            }
            unline(tx, ino, i);
        }
        if size < i.size || i.prealloc {
            let first_gone = size.div_ceil(CHUNK);
            for (idx, gen) in self.existing_chunks(ino, first_gone, u64::MAX).await? {
                tx.drop_chunk(ino, idx, gen);
                i.chunks = i.chunks.saturating_sub(1);
            }
            let within = (size % CHUNK) as usize;
            if within > 0 {
                let idx = size / CHUNK;
                let refs: Vec<(u64, Option<u64>)> =
                    vec![idx].into_iter().zip(tx.chunk_refs(ino, &[idx]).await?).collect();
                if let Some(mut v) = tx.chunk_data(ino, &refs).await?.into_iter().next().flatten() {
                    if v.len() > within {
                        v.truncate(within);
                        tx.set_chunk(ino, idx, refs.first().and_then(|r| r.1), v);
                    }
                }
            }
            i.prealloc = false;
        }
        i.size = size;
        Ok(())
    }

    pub(crate) async fn do_read(&self, ino: u64, args: ReadArgs) -> Result<Vec<u8>, Errno> {
        let h = self.handle(args.fh, ino)?;
        if !readable(h.flags) {
            return Err(Errno::EBADF);
        }
        self.run(|mut tx| async move {
            // The inode and the chunk references the read may need, in one round trip.
            let mut keys = vec![schema::inode_key(ino)];
            if args.offset < MAX_FILE {
                let end = args.offset.saturating_add(args.size as u64).min(MAX_FILE);
                keys.extend((args.offset / CHUNK..end.div_ceil(CHUNK)).map(|c| schema::chunk_key(ino, c)));
            }
            tx.get_many(&keys).await?;
            let i = tx.inode(ino).await?;
            need_file(&i)?;
            if args.offset >= i.size {
                return Ok(Vec::new());
            }
            let n = (i.size - args.offset).min(args.size as u64) as usize;
            let off = args.offset;
            if let Some(d) = &i.inline {
                let mut out = d.get(off as usize..).unwrap_or_default().to_vec();
                out.resize(n, 0);
                out.truncate(n);
                return Ok(out);
            }
            let end = off + n as u64;
            let idxs: Vec<u64> = (off / CHUNK..end.div_ceil(CHUNK)).collect();
            let refs: Vec<(u64, Option<u64>)> = idxs.iter().copied().zip(tx.chunk_refs(ino, &idxs).await?).collect();
            let vals = tx.chunk_data(ino, &refs).await?;
            let mut out = vec![0u8; n];
            for (idx, v) in idxs.iter().zip(vals) {
                let Some(v) = v else { continue };
                let base = idx * CHUNK;
                let (a, b) = (off.max(base), end.min(base + CHUNK));
                let src = v.get((a - base) as usize..((b - base) as usize).min(v.len()));
                if let (Some(src), Some(dst)) = (src, out.get_mut((a - off) as usize..)) {
                    if let Some(dst) = dst.get_mut(..src.len()) {
                        dst.copy_from_slice(src);
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    pub(crate) async fn do_write(&self, ctx: &Context, ino: u64, args: WriteArgs, buf: Vec<u8>) -> Result<u32, Errno> {
        let h = self.handle(args.fh, ino)?;
        if !writable(h.flags) {
            return Err(Errno::EBADF);
        }
        // Writeback-cache writes carry page offsets even on O_APPEND handles.
        let append = h.flags & libc::O_APPEND as u32 != 0 && args.write_flags & misc::WRITE_CACHE == 0;
        let kill = args.write_flags & misc::WRITE_KILL_SUIDGID != 0 || ctx.uid != 0;
        let len = u32::try_from(buf.len()).map_err(|_| Errno::EINVAL)?;
        let _g = self.lock(&[ino]).await;
        let buf = &buf;
        self.run(|mut tx| async move {
            // The inode and the chunk references the write may replace, in one round trip.
            let mut keys = vec![schema::inode_key(ino)];
            if !append && args.offset < MAX_FILE {
                let end = args.offset.saturating_add(len as u64).min(MAX_FILE);
                keys.extend((args.offset / CHUNK..end.div_ceil(CHUNK)).map(|c| schema::chunk_key(ino, c)));
            }
            tx.get_many(&keys).await?;
            let old = tx.inode(ino).await?;
            need_file(&old)?;
            let off = if append { old.size } else { args.offset };
            if off > MAX_FILE {
                return Err(Errno::EINVAL.into());
            }
            let end = off.checked_add(len as u64).filter(|&e| e <= MAX_FILE).ok_or(Fail::Errno(Errno::EFBIG))?;
            if len == 0 {
                return Ok(0);
            }
            let mut i = old.clone();
            match i.inline.as_mut() {
                Some(d) if end <= INLINE_MAX => {
                    if d.len() < end as usize {
                        d.resize(end as usize, 0);
                    }
                    if let Some(dst) = d.get_mut(off as usize..end as usize) {
                        dst.copy_from_slice(buf);
                    }
                }
                _ => {
                    unline(&mut tx, ino, &mut i);
                    self.write_chunks(&mut tx, ino, &mut i, &old, off, buf).await?;
                }
            }
            i.size = i.size.max(end);
            let t = now();
            i.mtime = t;
            i.ctime = t;
            if kill && i.mode & (libc::S_ISUID | libc::S_ISGID) != 0 {
                i.kill_suid();
            }
            tx.put_inode(ino, Some(&old), &i);
            tx.commit().await?;
            Ok(len)
        })
        .await
    }

    /// Writes `buf` at `off` into the chunks of `i` (read as `old`).
    async fn write_chunks(
        &self,
        tx: &mut Tx<'_, S>,
        ino: u64,
        i: &mut Inode,
        old: &Inode,
        off: u64,
        buf: &[u8],
    ) -> Result<(), Fail> {
        let end = off + buf.len() as u64;
        let idxs: Vec<u64> = (off / CHUNK..end.div_ceil(CHUNK)).collect();
        // Chunks wholly past the old end cannot exist unless fallocate left some there.
        let (old_size, prealloc) = (old.size, old.prealloc);
        let maybe = move |idx: u64| idx * CHUNK < old_size || prealloc;
        let known: Vec<u64> = idxs.iter().copied().filter(|&c| maybe(c)).collect();
        let gens = tx.chunk_refs(ino, &known).await?;
        let gen_of = |idx: u64| known.iter().position(|&c| c == idx).and_then(|n| gens.get(n).copied().flatten());
        // Old bytes are needed only where the write covers part of a chunk.
        let partial = |idx: u64| {
            let base = idx * CHUNK;
            off > base || end < base + CHUNK
        };
        let want: Vec<(u64, Option<u64>)> =
            idxs.iter().filter(|&&c| partial(c)).map(|&c| (c, gen_of(c))).filter(|r| r.1.is_some()).collect();
        let olds = tx.chunk_data(ino, &want).await?;
        for idx in idxs {
            let gen = gen_of(idx);
            let cur = want.iter().position(|r| r.0 == idx).and_then(|n| olds.get(n).cloned().flatten());
            let base = idx * CHUNK;
            let (a, b) = (off.max(base), end.min(base + CHUNK));
            if gen.is_none() {
                i.chunks += 1;
            }
            let mut v = cur.unwrap_or_default();
            let (ra, rb) = ((a - base) as usize, (b - base) as usize);
            if v.len() < rb {
                v.resize(rb, 0);
            }
            if let (Some(dst), Some(src)) = (v.get_mut(ra..rb), buf.get((a - off) as usize..(b - off) as usize)) {
                dst.copy_from_slice(src);
            }
            tx.set_chunk(ino, idx, gen, v);
        }
        Ok(())
    }

    pub(crate) async fn do_fallocate(
        &self,
        ino: u64,
        fh: u64,
        offset: u64,
        length: u64,
        mode: u32,
    ) -> Result<(), Errno> {
        let h = self.handle(fh, ino)?;
        if !writable(h.flags) {
            return Err(Errno::EBADF);
        }
        let punch = mode & FALLOC_PUNCH_HOLE != 0;
        let keep = mode & FALLOC_KEEP_SIZE != 0;
        if mode & !(FALLOC_KEEP_SIZE | FALLOC_PUNCH_HOLE) != 0 || (punch && !keep) {
            return Err(Errno::EOPNOTSUPP);
        }
        if length == 0 || offset > MAX_FILE || length > MAX_FILE {
            return Err(Errno::EINVAL);
        }
        let end = offset.checked_add(length).filter(|&e| e <= MAX_FILE).ok_or(Errno::EFBIG)?;
        let _g = self.lock(&[ino]).await;
        self.run(|mut tx| async move {
            let old = tx.inode(ino).await?;
            need_file(&old)?;
            let mut i = old.clone();
            let t = now();
            if punch {
                self.punch(&mut tx, ino, &mut i, offset, end).await?;
                i.mtime = t;
            } else {
                match i.inline.as_mut() {
                    Some(d) if end <= INLINE_MAX => {
                        if !keep && d.len() < end as usize {
                            d.resize(end as usize, 0);
                        }
                    }
                    _ => {
                        unline(&mut tx, ino, &mut i);
                        let (first, last) = (offset / CHUNK, (end - 1) / CHUNK);
                        if last - first >= MAX_ALLOC_CHUNKS {
                            return Err(Errno::ENOSPC.into());
                        }
                        let have = self.existing_chunks(ino, first, last).await?;
                        for idx in first..=last {
                            if have.binary_search_by_key(&idx, |h| h.0).is_err()
                                && !(idx == 0 && old.inline.is_some() && i.chunks > 0)
                            {
                                tx.zero_chunk(ino, idx, None);
                                i.chunks += 1;
                            }
                        }
                        if keep && end > i.size {
                            i.prealloc = true;
                        }
                    }
                }
                if !keep && end > i.size {
                    i.size = end;
                }
            }
            i.ctime = t;
            tx.put_inode(ino, Some(&old), &i);
            tx.commit().await
        })
        .await
    }

    /// Zeros `[off, end)` of `i`, deleting the chunks it covers whole.
    async fn punch(&self, tx: &mut Tx<'_, S>, ino: u64, i: &mut Inode, off: u64, end: u64) -> Result<(), Fail> {
        if let Some(d) = i.inline.as_mut() {
            let e = (end.min(d.len() as u64)) as usize;
            if let Some(z) = d.get_mut((off as usize).min(e)..e) {
                z.fill(0);
            }
            return Ok(());
        }
        for (idx, gen) in self.existing_chunks(ino, off / CHUNK, (end - 1) / CHUNK).await? {
            let base = idx * CHUNK;
            let (a, b) = (off.max(base) - base, end.min(base + CHUNK) - base);
            if a == 0 && b == CHUNK {
                tx.drop_chunk(ino, idx, gen);
                i.chunks = i.chunks.saturating_sub(1);
                continue;
            }
            let gen = tx.chunk_refs(ino, &[idx]).await?.into_iter().next().flatten();
            if let Some(mut v) = tx.chunk_data(ino, &[(idx, gen)]).await?.into_iter().next().flatten() {
                let e = (b as usize).min(v.len());
                if let Some(z) = v.get_mut((a as usize).min(e)..e) {
                    if z.iter().any(|&x| x != 0) {
                        z.fill(0);
                        tx.set_chunk(ino, idx, gen, v);
                    }
                }
            }
        }
        Ok(())
    }
}
