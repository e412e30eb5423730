//! The DPU's DMA engine in the model: copies between host memory (segments that stand for
//! host RAM) and DPU buffers, counts operations and bytes (the timing model charges them),
//! and fails the operations a test asks it to.

use dpfs_core::segments::{IoSeg, SegReader, SegWriter};
use parking_lot::Mutex;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};

/// A DMA operation that failed (a PCIe error, a host that revoked the mapping).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("DMA {dir:?} of {len} bytes failed (operation {op})")]
pub struct DmaError {
    /// Direction.
    pub dir: Direction,
    /// Bytes asked for.
    pub len: usize,
    /// The operation's ordinal since the engine was created.
    pub op: u64,
}

/// Which way a DMA moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Host memory into a DPU buffer (fetching a request).
    HostToDpu,
    /// A DPU buffer into host memory (returning a reply).
    DpuToHost,
}

/// Operations and bytes moved so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DmaCounters {
    /// Host-to-DPU operations.
    pub reads: u64,
    /// DPU-to-host operations.
    pub writes: u64,
    /// Bytes read from the host.
    pub read_bytes: u64,
    /// Bytes written to the host.
    pub written_bytes: u64,
    /// Operations that failed.
    pub failed: u64,
}

/// The engine. Shared by every request of a device (or of a whole DPU).
#[derive(Default)]
pub struct Dma {
    next_op: AtomicU64,
    fail: Mutex<BTreeSet<u64>>,
    reads: AtomicU64,
    writes: AtomicU64,
    read_bytes: AtomicU64,
    written_bytes: AtomicU64,
    failed: AtomicU64,
}

impl Dma {
    /// A new engine with no faults planned.
    pub fn new() -> Dma {
        Dma::default()
    }

    /// Makes the operation with ordinal `op` (0-based, counting every read and write from
    /// now on as [`ops`](Self::ops) reports) fail.
    pub fn fail_op(&self, op: u64) {
        self.fail.lock().insert(op);
    }

    /// Operations started so far (the ordinal the next one gets).
    pub fn ops(&self) -> u64 {
        self.next_op.load(Ordering::Relaxed)
    }

    /// Counters so far.
    pub fn counters(&self) -> DmaCounters {
        DmaCounters {
            reads: self.reads.load(Ordering::Relaxed),
            writes: self.writes.load(Ordering::Relaxed),
            read_bytes: self.read_bytes.load(Ordering::Relaxed),
            written_bytes: self.written_bytes.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    fn start(&self, dir: Direction, len: usize) -> Result<(), DmaError> {
        let op = self.next_op.fetch_add(1, Ordering::Relaxed);
        if self.fail.lock().remove(&op) {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return Err(DmaError { dir, len, op });
        }
        let (n, b) = match dir {
            Direction::HostToDpu => (&self.reads, &self.read_bytes),
            Direction::DpuToHost => (&self.writes, &self.written_bytes),
        };
        n.fetch_add(1, Ordering::Relaxed);
        b.fetch_add(len as u64, Ordering::Relaxed);
        Ok(())
    }

    /// One operation: host segments (a gather list) into `dst`, which must be exactly as long.
    pub fn read(&self, src: &[IoSeg], dst: &mut [u8]) -> Result<(), DmaError> {
        self.start(Direction::HostToDpu, dst.len())?;
        SegReader::new(src, dst.len()).read_exact(dst).map_err(|_| DmaError {
            dir: Direction::HostToDpu,
            len: dst.len(),
            op: self.ops().saturating_sub(1),
        })
    }

    /// One operation: `src` into host segments at byte `off` (it must fit).
    pub fn write(&self, dst: &[IoSeg], off: usize, src: &[u8]) -> Result<(), DmaError> {
        self.start(Direction::DpuToHost, src.len())?;
        SegWriter::new(dst).write_at(off, src).map_err(|_| DmaError {
            dir: Direction::DpuToHost,
            len: src.len(),
            op: self.ops().saturating_sub(1),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_counts_and_fails_on_request() {
        let mut host = vec![1u8, 2, 3, 4];
        // SAFETY: `host` outlives every use of the segment in this test.
        let seg = unsafe { IoSeg::new(host.as_mut_ptr(), host.len()) };
        let dma = Dma::new();
        let mut buf = [0u8; 4];
        dma.read(&[seg], &mut buf).unwrap();
        assert_eq!(buf, [1, 2, 3, 4]);
        dma.fail_op(1);
        assert_eq!(dma.write(&[seg], 0, &[9, 9]).unwrap_err().op, 1);
        dma.write(&[seg], 2, &[7, 8]).unwrap();
        assert!(dma.write(&[seg], 3, &[7, 8]).is_err(), "past the end");
        let c = dma.counters();
        assert_eq!((c.reads, c.writes, c.read_bytes, c.failed), (1, 2, 4, 1));
        assert_eq!(host, [1, 2, 7, 8]);
    }
}
