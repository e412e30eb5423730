//! A descriptor chain becomes device-readable and device-writable segments over the host
//! mapping of guest memory, or a [`ChainError`].
//!
//! Nothing in a chain is trusted: every descriptor range is looked up in the guest memory
//! map (and split where it crosses regions), readable descriptors must come before writable
//! ones, and a chain that loops, runs past its table or is too long ends in an error. Indirect
//! tables are followed by virtio-queue's iterator, which bounds each table by its length.

use dpfs_core::abi::{InHeader, OutHeader};
use dpfs_core::segments::{IoSeg, SegList, SegReader, SegWriter};
use std::ops::Deref;
use virtio_queue::DescriptorChain;
use vm_memory::{GuestMemory, GuestMemoryBackend, GuestMemoryMmap};
use zerocopy::IntoBytes;

/// Most segments (after region splits) one chain may have: a 1 MiB WRITE in 4 KiB pages
/// needs about 260, so this leaves room for odd layouts while bounding the work per chain.
pub const MAX_SEGMENTS: usize = 4096;

/// Why a chain was not handed to core.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The chain had no descriptors (bad head index, unreadable descriptor table).
    #[error("empty descriptor chain")]
    Empty,
    /// A descriptor's buffer is not inside guest memory.
    #[error("descriptor buffer {addr:#x}+{len:#x} is outside guest memory")]
    OutOfMemory {
        /// Guest address of the buffer.
        addr: u64,
        /// Its length.
        len: u32,
    },
    /// A device-readable descriptor followed a device-writable one.
    #[error("device-readable descriptor after a device-writable one")]
    ReadableAfterWritable,
    /// The chain ended while a descriptor still pointed to a next one: a loop, a next index
    /// past the table, a bad indirect table, or more than 4 GiB in total.
    #[error("descriptor chain is truncated (loop, bad next index or bad indirect table)")]
    Truncated,
    /// More than [`MAX_SEGMENTS`] segments.
    #[error("descriptor chain has more than {MAX_SEGMENTS} segments")]
    TooManySegments,
}

/// The segments of a chain, and what was wrong with it if anything.
///
/// On error the segments hold the valid prefix of the chain, so a reply can still be
/// written when the in-header was readable and an out-header fits.
#[derive(Debug, Default)]
pub struct ParsedChain {
    /// Device-readable segments, in order.
    pub readable: SegList,
    /// Device-writable segments, in order.
    pub writable: SegList,
    /// The first problem found, if any.
    pub error: Option<ChainError>,
}

impl ParsedChain {
    /// The FUSE in-header, if the readable segments hold one.
    pub fn in_header(&self) -> Option<InHeader> {
        SegReader::new(&self.readable, usize::MAX).read_obj::<InHeader>().ok()
    }

    /// Writes an error reply for a broken chain where that is possible; returns the bytes
    /// written (0 if there is no header to answer or no room for an out-header, and for
    /// requests that take no reply).
    pub fn answer_error(&self, errno: i32) -> usize {
        let Some(h) = self.in_header() else { return 0 };
        // FORGET, INTERRUPT and BATCH_FORGET take no reply.
        if matches!(h.opcode, 2 | 36 | 42) {
            return 0;
        }
        let out = OutHeader { len: std::mem::size_of::<OutHeader>() as u32, error: -errno, unique: h.unique };
        match SegWriter::new(&self.writable).write_at(0, out.as_bytes()) {
            Ok(()) => std::mem::size_of::<OutHeader>(),
            Err(_) => 0,
        }
    }
}

/// Splits `chain` into segments over `mem`, the memory the chain was read from.
///
/// The segments point into `mem`'s mappings; the caller keeps `mem` alive until the request
/// built from them completes.
pub fn parse_chain<M>(mem: &GuestMemoryMmap, chain: DescriptorChain<M>) -> ParsedChain
where
    M: Deref,
    M::Target: GuestMemory,
{
    let mut out = ParsedChain::default();
    let mut seen = 0usize;
    let mut last_has_next = false;
    let mut in_writable = false;
    for desc in chain {
        seen += 1;
        last_has_next = desc.has_next();
        let writable = desc.is_write_only();
        if writable {
            in_writable = true;
        } else if in_writable {
            out.error = Some(ChainError::ReadableAfterWritable);
            return out;
        }
        if desc.len() == 0 {
            continue;
        }
        let (addr, len) = (desc.addr(), desc.len());
        for slice in GuestMemoryBackend::get_slices(mem, addr, len as usize) {
            let Ok(slice) = slice else {
                out.error = Some(ChainError::OutOfMemory { addr: addr.0, len });
                return out;
            };
            if out.readable.len() + out.writable.len() >= MAX_SEGMENTS {
                out.error = Some(ChainError::TooManySegments);
                return out;
            }
            // SAFETY: the slice lies inside a region of `mem` (get_slices checked the range
            // against the region); the caller keeps `mem` (an Arc of the mapping) alive until
            // the request completes, so the memory stays mapped for the segment's lifetime.
            // The guest may change it concurrently; core only copies bytes in and out.
            let seg = unsafe { IoSeg::new(slice.ptr_guard_mut().as_ptr(), slice.len()) };
            if writable {
                out.writable.push(seg);
            } else {
                out.readable.push(seg);
            }
        }
    }
    if seen == 0 {
        out.error = Some(ChainError::Empty);
    } else if last_has_next {
        out.error = Some(ChainError::Truncated);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_core::segments::gather;
    use std::sync::Arc;
    use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
    use virtio_queue::desc::{split::Descriptor as SplitDescriptor, RawDescriptor};
    use virtio_queue::mock::MockSplitQueue;
    use virtio_queue::{Queue, QueueOwnedT};
    use vm_memory::{Bytes, GuestAddress};

    const NEXT: u16 = VRING_DESC_F_NEXT as u16;
    const WRITE: u16 = VRING_DESC_F_WRITE as u16;

    fn mem() -> Arc<GuestMemoryMmap> {
        Arc::new(GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10000), (GuestAddress(0x10000), 0x10000)]).unwrap())
    }

    fn desc(addr: u64, len: u32, flags: u16, next: u16) -> RawDescriptor {
        RawDescriptor::from(SplitDescriptor::new(addr, len, flags, next))
    }

    /// Builds a queue whose first available chain is `descs` (indices 0..), parses it.
    fn parse_descs(m: &Arc<GuestMemoryMmap>, descs: &[RawDescriptor]) -> ParsedChain {
        let vq = MockSplitQueue::new(&**m, 16);
        for (i, d) in descs.iter().enumerate() {
            vq.desc_table().store(i as u16, *d).unwrap();
        }
        vq.avail().ring().ref_at(0).unwrap().store(u16::to_le(0));
        vq.avail().idx().store(u16::to_le(1));
        let mut q: Queue = vq.create_queue().unwrap();
        let chain = q.iter(m.clone()).unwrap().next().unwrap();
        parse_chain(m, chain)
    }

    #[test]
    fn splits_readable_and_writable_and_crosses_regions() {
        let m = mem();
        m.write_slice(&[7u8; 8], GuestAddress(0xfffc)).unwrap();
        let p = parse_descs(&m, &[desc(0xfffc, 8, NEXT, 1), desc(0x8000, 64, WRITE, 0)]);
        assert_eq!(p.error, None);
        assert_eq!(p.readable.len(), 2, "a buffer across two regions becomes two segments");
        assert_eq!(gather(&p.readable), vec![7u8; 8]);
        assert_eq!(p.writable.len(), 1);
        assert_eq!(p.writable[0].len(), 64);
    }

    #[test]
    fn address_outside_memory_is_an_error() {
        let m = mem();
        let p = parse_descs(&m, &[desc(0x1000, 40, NEXT, 1), desc(0x1_0000_0000, 16, WRITE, 0)]);
        assert_eq!(p.error, Some(ChainError::OutOfMemory { addr: 0x1_0000_0000, len: 16 }));
        let p = parse_descs(&m, &[desc(0x1fff0, 0x20, 0, 0)]);
        assert!(matches!(p.error, Some(ChainError::OutOfMemory { .. })));
    }

    #[test]
    fn loops_and_bad_next_indices_are_truncated_chains() {
        let m = mem();
        let p = parse_descs(&m, &[desc(0x1000, 8, NEXT, 1), desc(0x2000, 8, NEXT, 0)]);
        assert_eq!(p.error, Some(ChainError::Truncated));
        let p = parse_descs(&m, &[desc(0x1000, 8, NEXT, 200)]);
        assert_eq!(p.error, Some(ChainError::Truncated));
    }

    #[test]
    fn readable_after_writable_is_rejected() {
        let m = mem();
        let p = parse_descs(&m, &[desc(0x1000, 8, WRITE | NEXT, 1), desc(0x2000, 8, 0, 0)]);
        assert_eq!(p.error, Some(ChainError::ReadableAfterWritable));
    }

    #[test]
    fn indirect_tables_are_followed_and_bad_ones_rejected() {
        let m = mem();
        // Indirect table at 0x4000: one readable and one writable descriptor.
        m.write_obj(SplitDescriptor::new(0x1000, 40, NEXT, 1), GuestAddress(0x4000)).unwrap();
        m.write_obj(SplitDescriptor::new(0x2000, 32, WRITE, 0), GuestAddress(0x4010)).unwrap();
        let p = parse_descs(&m, &[desc(0x4000, 32, VRING_DESC_F_INDIRECT as u16, 0)]);
        assert_eq!(p.error, None);
        assert_eq!((p.readable.len(), p.writable.len()), (1, 1));
        // A table whose length is not a multiple of 16, and one outside memory.
        let p = parse_descs(&m, &[desc(0x4000, 30, VRING_DESC_F_INDIRECT as u16, 0)]);
        assert_eq!(p.error, Some(ChainError::Empty));
        let p = parse_descs(&m, &[desc(0x9000_0000, 32, VRING_DESC_F_INDIRECT as u16, 0)]);
        assert_eq!(p.error, Some(ChainError::Empty));
    }

    #[test]
    fn broken_chain_with_a_header_gets_an_error_reply() {
        let m = mem();
        let h = InHeader { len: 40, opcode: 3, unique: 77, ..Default::default() };
        m.write_slice(h.as_bytes(), GuestAddress(0x1000)).unwrap();
        let p =
            parse_descs(&m, &[desc(0x1000, 40, NEXT, 1), desc(0x2000, 16, WRITE | NEXT, 2), desc(0x3000, 8, NEXT, 1)]);
        assert_eq!(p.error, Some(ChainError::ReadableAfterWritable));
        assert_eq!(p.answer_error(libc::EIO), 16);
        let mut raw = [0u8; 16];
        m.read_slice(&mut raw, GuestAddress(0x2000)).unwrap();
        let out = <OutHeader as zerocopy::FromBytes>::read_from_bytes(&raw).unwrap();
        assert_eq!((out.error, out.unique, out.len), (-libc::EIO, 77, 16));
    }
}
