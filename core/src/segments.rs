//! Scatter-gather segments of a request and the cursors that read and write them.
//!
//! A request arrives as device-readable segments (in-header, args, write payload) and
//! device-writable segments (out-header, reply). Segments point into memory the HAL keeps
//! alive until the request is completed: guest RAM, DPU DMA buffers or plain buffers. The
//! guest may change that memory at any time, so nothing here hands out references into it:
//! structs and names are copied out, payloads stay segments.

// Every byte here came from the guest: indexing must be checked.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use smallvec::SmallVec;
use std::ptr::NonNull;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// One contiguous region of request or reply memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IoSeg {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: an IoSeg is an address and a length; whoever creates it promises (see `new`) that
// the memory stays valid until the request completes, whichever thread completes it.
unsafe impl Send for IoSeg {}
// SAFETY: as above; shared access only ever copies bytes in or out.
unsafe impl Sync for IoSeg {}

impl IoSeg {
    /// Wraps a region. A null `ptr` is accepted only with `len == 0`.
    ///
    /// # Safety
    /// `ptr..ptr+len` must be valid for reads (and for writes if used as a writable segment)
    /// until the request that carries this segment has been completed. Other parties (the
    /// guest) may write it concurrently; dpfs only copies bytes in and out.
    pub unsafe fn new(ptr: *mut u8, len: usize) -> IoSeg {
        IoSeg { ptr: NonNull::new(ptr).unwrap_or(NonNull::dangling()), len: if ptr.is_null() { 0 } else { len } }
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True if the segment holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Start address.
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// The segment as a `libc::iovec`, for `readv`/`writev`/io_uring.
    pub fn as_iovec(&self) -> libc::iovec {
        libc::iovec { iov_base: self.ptr.as_ptr().cast(), iov_len: self.len }
    }

    /// The sub-range `[off, off+len)`, clamped to the segment.
    pub fn slice(&self, off: usize, len: usize) -> IoSeg {
        let off = off.min(self.len);
        let len = len.min(self.len - off);
        // SAFETY: a sub-range of a valid segment is valid for the same lifetime.
        IoSeg { ptr: unsafe { NonNull::new_unchecked(self.ptr.as_ptr().add(off)) }, len }
    }

    /// Copies `dst.len()` bytes starting at `off` out of the segment.
    /// The caller guarantees `off + dst.len() <= self.len()`.
    fn copy_out(&self, off: usize, dst: &mut [u8]) {
        debug_assert!(off + dst.len() <= self.len);
        // SAFETY: bounds checked by callers; the memory is valid per `new`'s contract and
        // `dst` is our own buffer, so the ranges cannot overlap.
        unsafe { std::ptr::copy_nonoverlapping(self.ptr.as_ptr().add(off), dst.as_mut_ptr(), dst.len()) }
    }

    /// Copies `src` into the segment at `off`. The caller guarantees it fits.
    fn copy_in(&self, off: usize, src: &[u8]) {
        debug_assert!(off + src.len() <= self.len);
        // SAFETY: as in `copy_out`, for a writable segment.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.ptr.as_ptr().add(off), src.len()) }
    }
}

/// A list of segments; four fit without allocating (the usual virtio-fs layout).
pub type SegList = SmallVec<[IoSeg; 4]>;

/// Total length of a list of segments.
pub fn total_len(segs: &[IoSeg]) -> usize {
    segs.iter().map(|s| s.len).fold(0usize, usize::saturating_add)
}

/// Copies all bytes of `segs` into a vector (tests, fuzzing and slow paths only).
pub fn gather(segs: &[IoSeg]) -> Vec<u8> {
    let mut out = vec![0u8; total_len(segs)];
    let mut pos = 0;
    for s in segs {
        if let Some(chunk) = out.get_mut(pos..pos + s.len) {
            s.copy_out(0, chunk);
        }
        pos += s.len;
    }
    out
}

/// Sequential reader over device-readable segments.
pub struct SegReader<'a> {
    segs: &'a [IoSeg],
    idx: usize,
    off: usize,
    remaining: usize,
}

/// The readable segments ended before the requested bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShortRead;

impl<'a> SegReader<'a> {
    /// A reader over at most `limit` bytes of `segs`.
    pub fn new(segs: &'a [IoSeg], limit: usize) -> Self {
        SegReader { segs, idx: 0, off: 0, remaining: total_len(segs).min(limit) }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.remaining
    }

    /// Fills `dst` completely, or fails without a partial guarantee on `dst`.
    pub fn read_exact(&mut self, dst: &mut [u8]) -> Result<(), ShortRead> {
        if dst.len() > self.remaining {
            return Err(ShortRead);
        }
        let mut done = 0;
        while done < dst.len() {
            let Some(seg) = self.segs.get(self.idx) else { return Err(ShortRead) };
            let n = (seg.len - self.off).min(dst.len() - done);
            let Some(chunk) = dst.get_mut(done..done + n) else { return Err(ShortRead) };
            seg.copy_out(self.off, chunk);
            done += n;
            self.advance_in_seg(n);
        }
        self.remaining -= dst.len();
        Ok(())
    }

    /// Reads one fixed-size struct by value.
    pub fn read_obj<T: FromBytes + IntoBytes>(&mut self) -> Result<T, ShortRead> {
        let mut v = T::new_zeroed();
        self.read_exact(v.as_mut_bytes())?;
        Ok(v)
    }

    /// Hands out the next `n` bytes as segments, without copying them.
    pub fn take_segs(&mut self, n: usize) -> Result<SegList, ShortRead> {
        if n > self.remaining {
            return Err(ShortRead);
        }
        let mut out = SegList::new();
        let mut left = n;
        while left > 0 {
            let Some(seg) = self.segs.get(self.idx) else { return Err(ShortRead) };
            let k = (seg.len - self.off).min(left);
            if k > 0 {
                out.push(seg.slice(self.off, k));
            }
            left -= k;
            self.advance_in_seg(k);
        }
        self.remaining -= n;
        Ok(out)
    }

    fn advance_in_seg(&mut self, n: usize) {
        self.off += n;
        // Skip exhausted (and empty) segments so `idx` always points at readable bytes.
        while let Some(seg) = self.segs.get(self.idx) {
            if self.off < seg.len {
                break;
            }
            self.off -= seg.len;
            self.idx += 1;
        }
    }
}

/// Random-access writer over device-writable segments.
pub struct SegWriter<'a> {
    segs: &'a [IoSeg],
    capacity: usize,
}

/// The writable segments are too small for the reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NoSpace;

impl<'a> SegWriter<'a> {
    /// A writer over `segs`.
    pub fn new(segs: &'a [IoSeg]) -> Self {
        SegWriter { segs, capacity: total_len(segs) }
    }

    /// Total writable bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Writes `src` at byte offset `pos` of the reply.
    pub fn write_at(&self, pos: usize, src: &[u8]) -> Result<(), NoSpace> {
        let end = pos.checked_add(src.len()).ok_or(NoSpace)?;
        if end > self.capacity {
            return Err(NoSpace);
        }
        let mut pos = pos;
        let mut done = 0;
        for seg in self.segs {
            if done == src.len() {
                break;
            }
            if pos >= seg.len {
                pos -= seg.len;
                continue;
            }
            let n = (seg.len - pos).min(src.len() - done);
            let Some(chunk) = src.get(done..done + n) else { return Err(NoSpace) };
            seg.copy_in(pos, chunk);
            done += n;
            pos = 0;
        }
        Ok(())
    }

    /// Writes a struct at `pos`, truncated to `size` bytes (compat reply sizes).
    pub fn write_obj_at<T: IntoBytes + Immutable>(&self, pos: usize, v: &T, size: usize) -> Result<(), NoSpace> {
        let b = v.as_bytes();
        self.write_at(pos, b.get(..size).unwrap_or(b))
    }

    /// The byte range `[pos, pos+len)` of the reply as segments (for in-place reads).
    pub fn range(&self, pos: usize, len: usize) -> Result<SegList, NoSpace> {
        let end = pos.checked_add(len).ok_or(NoSpace)?;
        if end > self.capacity {
            return Err(NoSpace);
        }
        let mut out = SegList::new();
        let mut pos = pos;
        let mut left = len;
        for seg in self.segs {
            if left == 0 {
                break;
            }
            if pos >= seg.len {
                pos -= seg.len;
                continue;
            }
            let n = (seg.len - pos).min(left);
            out.push(seg.slice(pos, n));
            left -= n;
            pos = 0;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs_of(bufs: &mut [Vec<u8>]) -> Vec<IoSeg> {
        // SAFETY: the vectors outlive the segments within each test.
        bufs.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect()
    }

    #[test]
    fn reader_crosses_segment_boundaries_and_skips_empty_ones() {
        let mut bufs = vec![vec![1, 2, 3], vec![], vec![4], vec![5, 6, 7, 8]];
        let segs = segs_of(&mut bufs);
        let mut r = SegReader::new(&segs, usize::MAX);
        let mut a = [0u8; 5];
        r.read_exact(&mut a).unwrap();
        assert_eq!(a, [1, 2, 3, 4, 5]);
        let rest = r.take_segs(3).unwrap();
        assert_eq!(gather(&rest), vec![6, 7, 8]);
        assert_eq!(r.read_exact(&mut [0u8; 1]), Err(ShortRead));
    }

    #[test]
    fn reader_honours_the_limit() {
        let mut bufs = vec![vec![0u8; 10]];
        let segs = segs_of(&mut bufs);
        let mut r = SegReader::new(&segs, 4);
        assert_eq!(r.take_segs(5), Err(ShortRead));
        assert!(r.take_segs(4).is_ok());
    }

    #[test]
    fn writer_splits_across_segments_and_rejects_overflow() {
        let mut bufs = vec![vec![0u8; 2], vec![0u8; 0], vec![0u8; 3]];
        let segs = segs_of(&mut bufs);
        let w = SegWriter::new(&segs);
        w.write_at(1, &[9, 8, 7]).unwrap();
        assert_eq!(w.write_at(4, &[1, 2]), Err(NoSpace));
        assert_eq!(w.write_at(usize::MAX, &[1]), Err(NoSpace));
        let r = w.range(1, 3).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(gather(&segs), vec![0, 9, 8, 7, 0]);
    }
}
