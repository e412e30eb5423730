//! Sparse file contents: fixed-size chunks in a `BTreeMap`, so holes cost nothing.
//!
//! Invariant: every byte of an allocated chunk at or beyond the file size is zero, so a
//! file that grows (truncate up, write past EOF) reads zeros in the gap.

use std::collections::BTreeMap;
use std::ops::Range;

/// Chunk size: the unit of allocation, of capacity accounting and of SEEK_HOLE.
pub(crate) const CHUNK: u64 = 4096;

/// Zeros to copy out for holes.
pub(crate) static ZEROS: [u8; CHUNK as usize] = [0; CHUNK as usize];

/// Largest file size and offset (Linux's `MAX_LFS_FILESIZE`).
pub(crate) const MAX_FILE: u64 = i64::MAX as u64;

/// The data of one regular file. Offsets and lengths are checked by callers
/// (`off + len <= MAX_FILE`).
#[derive(Debug, Default)]
pub(crate) struct SparseData {
    chunks: BTreeMap<u64, Box<[u8]>>,
}

fn chunk_range(off: u64, len: u64) -> Range<u64> {
    off / CHUNK..(off.saturating_add(len)).div_ceil(CHUNK)
}

impl SparseData {
    /// Number of allocated chunks.
    pub(crate) fn nchunks(&self) -> u64 {
        self.chunks.len() as u64
    }

    /// How many chunks writing or allocating `[off, off+len)` would add.
    pub(crate) fn missing(&self, off: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let r = chunk_range(off, len);
        let total = r.end - r.start;
        total - self.chunks.range(r).count() as u64
    }

    /// Writes `len` bytes at `off`: `fill` is called with each destination piece in order.
    /// The caller has reserved space for [`missing`](Self::missing) chunks.
    pub(crate) fn write(&mut self, off: u64, len: u64, mut fill: impl FnMut(&mut [u8])) {
        let end = off.saturating_add(len);
        let mut pos = off;
        while pos < end {
            let idx = pos / CHUNK;
            let at = (pos % CHUNK) as usize;
            let n = (CHUNK - at as u64).min(end - pos) as usize;
            let chunk = self.chunks.entry(idx).or_insert_with(new_chunk);
            if let Some(dst) = chunk.get_mut(at..at + n) {
                fill(dst);
            }
            pos += n as u64;
        }
    }

    /// Reads `[off, off+len)`: `out` gets each piece in order (zeros for holes).
    pub(crate) fn read(&self, off: u64, len: u64, mut out: impl FnMut(&[u8])) {
        let end = off.saturating_add(len);
        let mut pos = off;
        while pos < end {
            let idx = pos / CHUNK;
            let at = (pos % CHUNK) as usize;
            let n = (CHUNK - at as u64).min(end - pos) as usize;
            let piece = match self.chunks.get(&idx) {
                Some(c) => c.get(at..at + n).unwrap_or(&ZEROS[..n]),
                None => &ZEROS[..n],
            };
            out(piece);
            pos += n as u64;
        }
    }

    /// Shrinks to `size`: frees chunks past it and zeroes the tail of the last one.
    /// Returns the number of chunks freed.
    pub(crate) fn truncate(&mut self, size: u64) -> u64 {
        let tail = self.chunks.split_off(&size.div_ceil(CHUNK));
        let within = (size % CHUNK) as usize;
        if within != 0 {
            if let Some(c) = self.chunks.get_mut(&(size / CHUNK)) {
                if let Some(t) = c.get_mut(within..) {
                    t.fill(0);
                }
            }
        }
        tail.len() as u64
    }

    /// Zeroes `[off, off+len)`, freeing chunks it covers whole. Returns chunks freed.
    pub(crate) fn punch(&mut self, off: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let end = off.saturating_add(len);
        let idxs: Vec<u64> = self.chunks.range(chunk_range(off, len)).map(|(&i, _)| i).collect();
        let mut freed = 0;
        for idx in idxs {
            let cs = idx * CHUNK;
            let ce = cs + CHUNK;
            if off <= cs && end >= ce {
                self.chunks.remove(&idx);
                freed += 1;
            } else if let Some(c) = self.chunks.get_mut(&idx) {
                let a = off.max(cs) - cs;
                let b = end.min(ce) - cs;
                if let Some(p) = c.get_mut(a as usize..b as usize) {
                    p.fill(0);
                }
            }
        }
        freed
    }

    /// Allocates (zeroed) every chunk of `[off, off+len)`. Returns chunks added.
    pub(crate) fn allocate(&mut self, off: u64, len: u64) -> u64 {
        if len == 0 {
            return 0;
        }
        let mut added = 0;
        for idx in chunk_range(off, len) {
            if let std::collections::btree_map::Entry::Vacant(v) = self.chunks.entry(idx) {
                v.insert(new_chunk());
                added += 1;
            }
        }
        added
    }

    /// SEEK_DATA: the first offset at or after `off` inside an allocated chunk, below `size`.
    pub(crate) fn seek_data(&self, off: u64, size: u64) -> Option<u64> {
        let (&idx, _) = self.chunks.range(off / CHUNK..).next()?;
        let pos = off.max(idx.saturating_mul(CHUNK));
        (pos < size).then_some(pos)
    }

    /// SEEK_HOLE: the first offset at or after `off` not inside an allocated chunk, or `size`.
    pub(crate) fn seek_hole(&self, off: u64, size: u64) -> u64 {
        let mut want = off / CHUNK;
        for (&idx, _) in self.chunks.range(want..) {
            if idx != want {
                break;
            }
            want += 1;
        }
        off.max(want.saturating_mul(CHUNK)).min(size)
    }
}

fn new_chunk() -> Box<[u8]> {
    vec![0u8; CHUNK as usize].into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(d: &SparseData, off: u64, len: u64) -> Vec<u8> {
        let mut v = Vec::new();
        d.read(off, len, |p| v.extend_from_slice(p));
        v
    }

    #[test]
    fn write_read_across_chunks_and_holes() {
        let mut d = SparseData::default();
        let src: Vec<u8> = (0..10000u32).map(|i| i as u8).collect();
        assert_eq!(d.missing(5000, 10000), 3);
        let mut pos = 0;
        d.write(5000, 10000, |dst| {
            dst.copy_from_slice(&src[pos..pos + dst.len()]);
            pos += dst.len();
        });
        assert_eq!(d.nchunks(), 3);
        assert_eq!(read_all(&d, 5000, 10000), src);
        assert_eq!(read_all(&d, 0, 5000), vec![0; 5000]);
        assert_eq!(read_all(&d, 100_000, 10), vec![0; 10]);
    }

    #[test]
    fn truncate_zeroes_tail() {
        let mut d = SparseData::default();
        d.write(0, 10000, |dst| dst.fill(7));
        assert_eq!(d.truncate(4100), 1);
        assert_eq!(d.nchunks(), 2);
        let v = read_all(&d, 4090, 20);
        assert_eq!(&v[..10], &[7; 10]);
        assert_eq!(&v[10..], &[0; 10]);
    }

    #[test]
    fn punch_frees_whole_chunks_only() {
        let mut d = SparseData::default();
        d.write(0, 3 * CHUNK, |dst| dst.fill(1));
        assert_eq!(d.punch(100, 2 * CHUNK), 1);
        assert_eq!(d.nchunks(), 2);
        let v = read_all(&d, 0, 3 * CHUNK);
        assert!(v[..100].iter().all(|&b| b == 1));
        assert!(v[100..(2 * CHUNK + 100) as usize].iter().all(|&b| b == 0));
        assert!(v[(2 * CHUNK + 100) as usize..].iter().all(|&b| b == 1));
    }

    #[test]
    fn seek_data_and_hole() {
        let mut d = SparseData::default();
        d.write(2 * CHUNK, 10, |dst| dst.fill(1));
        d.allocate(3 * CHUNK, 1);
        let size = 10 * CHUNK;
        assert_eq!(d.seek_data(0, size), Some(2 * CHUNK));
        assert_eq!(d.seek_data(2 * CHUNK + 5, size), Some(2 * CHUNK + 5));
        assert_eq!(d.seek_data(4 * CHUNK, size), None);
        assert_eq!(d.seek_hole(0, size), 0);
        assert_eq!(d.seek_hole(2 * CHUNK, size), 4 * CHUNK);
        assert_eq!(d.seek_hole(9 * CHUNK, size), 9 * CHUNK);
        assert_eq!(d.seek_hole(2 * CHUNK, 3 * CHUNK), 3 * CHUNK);
        assert_eq!(d.missing(0, 5 * CHUNK), 3);
        assert_eq!(d.allocate(0, 5 * CHUNK), 3);
    }
}
