//! How a chain reaches the DPU's file system, as a [`Handler`] in front of core's.
//!
//! The incoming request's segments stand for host memory. Two flows are modelled:
//!
//! - [`Flow::Snap`] (BlueField-2, SNAP): every device-readable descriptor is copied into its
//!   own DPU buffer before the handler runs (one DMA each, the header first); the handler
//!   writes DPU buffers; after completion the written bytes of each data descriptor are
//!   copied back, then the out-header (one DMA each). A failed DMA aborts the request
//!   (`SNAP_FS_DEV_OP_IO_ERROR`): the chain goes back with no reply (0 bytes).
//! - [`Flow::Doca`] (BlueField-3, DOCA DevEmu vfs): the device hands the FUSE headers in DPU
//!   memory; payloads stay host buffers that the application moves with DMA tasks: one
//!   task per host segment into an Arm buffer before the handler (datain), one task per
//!   host segment after it (dataout: DOCA DMA cannot chain destinations). A failed task
//!   completes the request with an error status: the device answers EIO.
//!
//! Either way the host request is completed exactly once, and after a reset of the device
//! (a new generation) nothing is written into host memory any more: the host may have
//! reused it.

// Host memory is guest input: no unchecked indexing.
#![cfg_attr(not(test), deny(clippy::indexing_slicing))]

use crate::dma::Dma;
use dpfs_core::abi::{InHeader, OutHeader};
use dpfs_core::segments::{total_len, IoSeg, SegList, SegReader};
use dpfs_core::{DeviceId, Handler, HandlerError, Request};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use zerocopy::IntoBytes;

/// Most DPU buffer bytes one request may take (readable plus writable): a 1 MiB WRITE or
/// READ and its headers fit. Larger chains are refused before anything is allocated.
pub const MAX_DPU_BYTES: usize = (1 << 20) + (64 << 10);

const OUT_HEADER: usize = std::mem::size_of::<OutHeader>();
const IN_HEADER: usize = std::mem::size_of::<InHeader>();
const FUSE_WRITE: u32 = 16;
/// `fuse_write_in` is 40 bytes in protocol 7.9 and later.
const WRITE_IN: usize = 40;

/// Which device API delivers the chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Flow {
    /// SNAP (BlueField-2): everything copied into DPU buffers first.
    Snap,
    /// DOCA DevEmu vfs (BlueField-3): headers in DPU memory, payload by DMA tasks.
    Doca,
}

/// What happened to requests, per flow.
#[derive(Debug, Default)]
pub struct FlowStats {
    /// Requests handed to core.
    pub handled: AtomicU64,
    /// Requests aborted or answered EIO because a DMA failed.
    pub dma_failed: AtomicU64,
    /// Requests refused because their chain was larger than [`MAX_DPU_BYTES`].
    pub too_large: AtomicU64,
    /// Replies not written back because the device was reset meanwhile.
    pub stale: AtomicU64,
}

/// The DPU side of the device in front of core's handler.
pub struct DpuFlow {
    flow: Flow,
    dma: Arc<Dma>,
    inner: Arc<dyn Handler>,
    generations: Mutex<HashMap<DeviceId, Arc<AtomicU64>>>,
    stats: Arc<FlowStats>,
}

impl DpuFlow {
    /// `flow` in front of `inner`, moving bytes with `dma`.
    pub fn new(flow: Flow, dma: Arc<Dma>, inner: Arc<dyn Handler>) -> DpuFlow {
        DpuFlow { flow, dma, inner, generations: Mutex::new(HashMap::new()), stats: Arc::default() }
    }

    /// Counters.
    pub fn stats(&self) -> &Arc<FlowStats> {
        &self.stats
    }

    /// The DMA engine.
    pub fn dma(&self) -> &Arc<Dma> {
        &self.dma
    }

    fn generation(&self, dev: DeviceId) -> Arc<AtomicU64> {
        self.generations.lock().entry(dev).or_default().clone()
    }

    fn fail(&self, host: Request, reply_eio: bool) {
        self.stats.dma_failed.fetch_add(1, Ordering::Relaxed);
        let written = if reply_eio { answer_eio(&self.dma, &host) } else { 0 };
        host.complete(written);
    }
}

/// The device answers EIO itself (DOCA's error status, or a chain too large to stage): the
/// out-header is written with one DMA; if even that fails the chain goes back with 0 bytes.
fn answer_eio(dma: &Dma, host: &Request) -> usize {
    let mut hdr = [0u8; IN_HEADER];
    if SegReader::new(host.readable(), IN_HEADER).read_exact(&mut hdr).is_err() {
        return 0;
    }
    let opcode = u32::from_le_bytes(hdr.get(4..8).and_then(|b| b.try_into().ok()).unwrap_or_default());
    if matches!(opcode, 2 | 36 | 42) {
        return 0; // FORGET, INTERRUPT, BATCH_FORGET take no reply.
    }
    let unique = u64::from_le_bytes(hdr.get(8..16).and_then(|b| b.try_into().ok()).unwrap_or_default());
    let out = OutHeader { len: OUT_HEADER as u32, error: -libc::EIO, unique };
    match dma.write(host.writable(), 0, out.as_bytes()) {
        Ok(()) => OUT_HEADER,
        Err(_) => 0,
    }
}

impl Handler for DpuFlow {
    fn register_device(&self, dev: DeviceId) -> Result<(), HandlerError> {
        self.generation(dev);
        self.inner.register_device(dev)
    }

    fn unregister_device(&self, dev: DeviceId) {
        self.generation(dev).fetch_add(1, Ordering::AcqRel);
        self.inner.unregister_device(dev)
    }

    fn reset_device(&self, dev: DeviceId) {
        self.generation(dev).fetch_add(1, Ordering::AcqRel);
        self.inner.reset_device(dev)
    }

    fn handle(&self, host: Request) {
        let r_len = total_len(host.readable());
        let w_len = total_len(host.writable());
        if r_len.saturating_add(w_len) > MAX_DPU_BYTES {
            self.stats.too_large.fetch_add(1, Ordering::Relaxed);
            let written = answer_eio(&self.dma, &host);
            return host.complete(written);
        }
        let generation = self.generation(host.device);
        let fetched_in = generation.load(Ordering::Acquire);
        let staged = match self.flow {
            Flow::Snap => stage_snap(&self.dma, &host),
            Flow::Doca => stage_doca(&self.dma, &host, r_len),
        };
        let Ok(mut staged) = staged else { return self.fail(host, self.flow == Flow::Doca) };
        let mut wbufs: Vec<Box<[u8]>> = host.writable().iter().map(|s| vec![0u8; s.len()].into_boxed_slice()).collect();
        if self.flow == Flow::Doca {
            // Out-header in DPU memory, the rest one Arm buffer that DMA tasks flush.
            wbufs = vec![
                vec![0u8; w_len.min(OUT_HEADER)].into_boxed_slice(),
                vec![0u8; w_len.saturating_sub(OUT_HEADER)].into_boxed_slice(),
            ];
        }
        // SAFETY: the boxes are moved into the completion below, which keeps their heap
        // memory (whose address does not change when a Box moves) alive until core calls it.
        let rsegs: SegList = staged.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect();
        // SAFETY: as above.
        let wsegs: SegList = wbufs.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect();
        let (dma, stats, flow) = (self.dma.clone(), self.stats.clone(), self.flow);
        let (device, queue, thread) = (host.device, host.queue, host.thread);
        let done = move |written: usize| {
            drop(staged);
            if generation.load(Ordering::Acquire) != fetched_in {
                // The host reset the device: its memory may hold new rings and requests now.
                stats.stale.fetch_add(1, Ordering::Relaxed);
                return host.complete(0);
            }
            match write_back(&dma, &host, &wbufs, written, flow) {
                Ok(()) => host.complete(written),
                Err(_) if flow == Flow::Doca => {
                    stats.dma_failed.fetch_add(1, Ordering::Relaxed);
                    let n = answer_eio(&dma, &host);
                    host.complete(n)
                }
                Err(_) => {
                    stats.dma_failed.fetch_add(1, Ordering::Relaxed);
                    host.complete(0)
                }
            }
        };
        self.stats.handled.fetch_add(1, Ordering::Relaxed);
        self.inner.handle(Request::new(device, queue, thread, rsegs, wsegs, Box::new(done)));
    }
}

/// SNAP: one DPU buffer and one DMA per readable descriptor.
fn stage_snap(dma: &Dma, host: &Request) -> Result<Vec<Box<[u8]>>, ()> {
    let mut out = Vec::with_capacity(host.readable().len());
    for seg in host.readable() {
        let mut b = vec![0u8; seg.len()].into_boxed_slice();
        dma.read(std::slice::from_ref(seg), &mut b).map_err(|_| ())?;
        out.push(b);
    }
    Ok(out)
}

/// DOCA: the headers (in-header and a WRITE's `write_in`, or the whole message) in DPU
/// memory, then one DMA task per host segment of the payload into one Arm buffer.
fn stage_doca(dma: &Dma, host: &Request, r_len: usize) -> Result<Vec<Box<[u8]>>, ()> {
    let mut hdr = [0u8; IN_HEADER];
    let opcode = match SegReader::new(host.readable(), IN_HEADER).read_exact(&mut hdr) {
        Ok(()) => u32::from_le_bytes(hdr.get(4..8).and_then(|b| b.try_into().ok()).unwrap_or_default()),
        Err(_) => 0,
    };
    let head_len = if opcode == FUSE_WRITE { (IN_HEADER + WRITE_IN).min(r_len) } else { r_len };
    let mut r = SegReader::new(host.readable(), r_len);
    let head_segs = r.take_segs(head_len).map_err(|_| ())?;
    let mut head = vec![0u8; head_len].into_boxed_slice();
    // The device delivers the headers already in DPU memory (its own DMA).
    dma.read(&head_segs, &mut head).map_err(|_| ())?;
    let data_segs = r.take_segs(r_len - head_len).map_err(|_| ())?;
    let mut data = vec![0u8; r_len - head_len].into_boxed_slice();
    let mut at = 0;
    for seg in &data_segs {
        let chunk = data.get_mut(at..at + seg.len()).ok_or(())?;
        dma.read(std::slice::from_ref(seg), chunk).map_err(|_| ())?;
        at += seg.len();
    }
    Ok(vec![head, data])
}

/// Copies the first `written` bytes of the DPU reply into the host's writable segments.
fn write_back(dma: &Dma, host: &Request, wbufs: &[Box<[u8]>], written: usize, flow: Flow) -> Result<(), ()> {
    let reply: Vec<u8> = wbufs.iter().flat_map(|b| b.iter().copied()).take(written).collect();
    let hsegs = host.writable();
    if flow == Flow::Doca || hsegs.len() <= 1 {
        // DOCA: one task per host segment of the dataout, then the device writes the header.
        let mut pos = OUT_HEADER.min(reply.len());
        let mut seg_start = 0;
        for seg in hsegs {
            let end = seg_start + seg.len();
            while pos < end.min(reply.len()) {
                let n = end.min(reply.len()) - pos;
                dma.write(hsegs, pos, reply.get(pos..pos + n).ok_or(())?).map_err(|_| ())?;
                pos += n;
            }
            seg_start = end;
        }
        return dma.write(hsegs, 0, reply.get(..OUT_HEADER.min(reply.len())).ok_or(())?).map_err(|_| ());
    }
    // SNAP: data descriptors first (the written part of each), then the status (header).
    let first_len = hsegs.first().map_or(0, IoSeg::len).min(reply.len());
    let mut off = first_len;
    for (i, seg) in hsegs.iter().enumerate().skip(1) {
        let n = seg.len().min(reply.len().saturating_sub(off));
        if n > 0 {
            dma.write(hsegs.get(i..i + 1).ok_or(())?, 0, reply.get(off..off + n).ok_or(())?).map_err(|_| ())?;
        }
        off += seg.len();
    }
    dma.write(hsegs, 0, reply.get(..first_len).ok_or(())?).map_err(|_| ())
}
