//! How a FUSE message is cut into descriptors.
//!
//! A request's readable bytes (in-header, arguments, payload) and its writable bytes
//! (out-header, reply) each sit contiguously in a request slot; a [`Segmentation`] only decides
//! where the descriptor boundaries fall, so a device that assumes any particular split
//! (rather than honouring VIRTIO_F_ANY_LAYOUT) is caught.

use crate::memory::PAGE_SIZE;

/// Size of `fuse_in_header`.
pub const IN_HEADER: usize = 40;
/// Size of `fuse_out_header`.
pub const OUT_HEADER: usize = 16;

/// Where descriptor boundaries fall.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Segmentation {
    /// As Linux's virtio-fs driver: readable = in-header | arguments | one descriptor per
    /// payload page; writable = out-header | reply arguments, or one descriptor per page for
    /// page replies (READ, READDIR, READDIRPLUS, READLINK).
    #[default]
    Linux,
    /// One readable and one writable descriptor.
    Contiguous,
    /// Readable bytes cut at these offsets, writable bytes cut at these offsets (offsets out
    /// of range are ignored; an empty list gives one descriptor).
    At {
        /// Cut points in the readable message.
        readable: Vec<usize>,
        /// Cut points in the writable area (out-header included).
        writable: Vec<usize>,
    },
}

/// The descriptor lengths for a message of `args_len` bytes after the in-header, followed by
/// `payload_len` bytes of payload; `(offset, len)` pairs within the message.
pub fn readable_cuts(seg: &Segmentation, args_len: usize, payload_len: usize, out: &mut Vec<(usize, usize)>) {
    let total = IN_HEADER + args_len + payload_len;
    match seg {
        Segmentation::Linux => {
            out.push((0, IN_HEADER));
            if args_len > 0 {
                out.push((IN_HEADER, args_len));
            }
            pages(IN_HEADER + args_len, payload_len, out);
        }
        Segmentation::Contiguous => out.push((0, total)),
        Segmentation::At { readable, .. } => cut_at(readable, total, out),
    }
}

/// The descriptor lengths for a reply area of `OUT_HEADER + reply_len` bytes; `paged` says
/// whether Linux would hand the reply body over as pages.
pub fn writable_cuts(seg: &Segmentation, reply_len: usize, paged: bool, out: &mut Vec<(usize, usize)>) {
    let total = OUT_HEADER + reply_len;
    match seg {
        Segmentation::Linux => {
            out.push((0, OUT_HEADER));
            if paged {
                pages(OUT_HEADER, reply_len, out);
            } else if reply_len > 0 {
                out.push((OUT_HEADER, reply_len));
            }
        }
        Segmentation::Contiguous => out.push((0, total)),
        Segmentation::At { writable, .. } => cut_at(writable, total, out),
    }
}

fn pages(start: usize, len: usize, out: &mut Vec<(usize, usize)>) {
    let mut off = 0;
    while off < len {
        let n = (len - off).min(PAGE_SIZE);
        out.push((start + off, n));
        off += n;
    }
}

fn cut_at(cuts: &[usize], total: usize, out: &mut Vec<(usize, usize)>) {
    let mut points: Vec<usize> = cuts.iter().copied().filter(|&c| c > 0 && c < total).collect();
    points.sort_unstable();
    points.dedup();
    let mut prev = 0;
    for c in points.into_iter().chain(std::iter::once(total)) {
        out.push((prev, c - prev));
        prev = c;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linux_layout_splits_header_args_and_pages() {
        let mut v = Vec::new();
        readable_cuts(&Segmentation::Linux, 40, 2 * PAGE_SIZE + 1, &mut v);
        assert_eq!(v, vec![(0, 40), (40, 40), (80, 4096), (4176, 4096), (8272, 1)]);
        v.clear();
        readable_cuts(&Segmentation::Linux, 0, 0, &mut v);
        assert_eq!(v, vec![(0, 40)]);
        v.clear();
        writable_cuts(&Segmentation::Linux, 8192, true, &mut v);
        assert_eq!(v, vec![(0, 16), (16, 4096), (4112, 4096)]);
        v.clear();
        writable_cuts(&Segmentation::Linux, 104, false, &mut v);
        assert_eq!(v, vec![(0, 16), (16, 104)]);
    }

    #[test]
    fn custom_cuts_cover_everything_once() {
        let mut v = Vec::new();
        let seg = Segmentation::At { readable: vec![7, 0, 7, 100, 41], writable: vec![3] };
        readable_cuts(&seg, 10, 0, &mut v);
        assert_eq!(v, vec![(0, 7), (7, 34), (41, 9)]);
        v.clear();
        writable_cuts(&seg, 0, false, &mut v);
        assert_eq!(v, vec![(0, 3), (3, 13)]);
    }
}
