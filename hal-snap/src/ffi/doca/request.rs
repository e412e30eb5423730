//! The request path every per-opcode handler shares: rebuild the FUSE message from the
//! headers DOCA parsed and the payload fetched from the host, run core, and spread core's
//! reply over the out-header, the op's out structs and the host reply buffers.

use super::{DocaBuf, HostDma, IoState, Req, DOCA_ERROR_UNKNOWN, DOCA_SUCCESS};
use crate::flow::MAX_DPU_BYTES;
use dpfs_core::abi::{InHeader, OutHeader};
use dpfs_core::{owned_request, OwnedReply};
use std::ptr::NonNull;
use std::sync::Arc;
use zerocopy::{FromBytes, IntoBytes};

const IN_HEADER: usize = std::mem::size_of::<InHeader>();
const OUT_HEADER: usize = std::mem::size_of::<OutHeader>();

/// One of the op's out structs (`entry_out`, `attr_out`, ...): DPU memory of `len` bytes
/// that DOCA keeps valid until the request is completed.
pub(super) struct OutStruct {
    ptr: NonNull<u8>,
    len: usize,
}

impl OutStruct {
    /// `None` for a null pointer.
    pub(super) fn new(ptr: *mut u8, len: usize) -> Option<OutStruct> {
        NonNull::new(ptr).map(|ptr| OutStruct { ptr, len })
    }
}

/// What a handler received, its pointers checked.
pub(super) struct Call<'a> {
    pub state: &'a IoState,
    pub req: Req,
    pub inh: &'a InHeader,
    /// The op's argument struct (empty for ops that have none).
    pub args: &'a [u8],
    /// Host payload (names, values, WRITE data).
    pub datain: Option<NonNull<DocaBuf>>,
    /// `None` for ops without a reply (FORGET).
    pub out: Option<NonNull<OutHeader>>,
    /// The op's out structs in reply order.
    pub outs: Vec<OutStruct>,
    /// GETXATTR/LISTXATTR: the out struct carries the reply only when the request's `size`
    /// (the first field of the argument struct) is 0.
    pub outs_only_if_size_zero: bool,
    /// Host reply buffers for the variable-length part of the reply.
    pub dataout: Option<NonNull<DocaBuf>>,
}

/// Rebuilds the FUSE request and hands it to core; the request is completed exactly once,
/// here on a refusal or in the reply's completion.
pub(super) fn dispatch(c: Call<'_>) {
    let Call { state, req, inh, args, datain, out, mut outs, outs_only_if_size_zero, dataout } = c;
    let dma = &state.dma;
    let din_len = match datain.map(|l| dma.capacity(l.as_ptr())) {
        None => 0,
        Some(Ok(n)) if n <= MAX_DPU_BYTES => n,
        Some(_) => return req.complete(DOCA_ERROR_UNKNOWN),
    };
    // The in-header's length covers header, argument struct and payload. Taking the
    // argument bytes it leaves room for keeps the shorter structs of older protocol minors
    // (and SETXATTR without SETXATTR_EXT) as the guest sent them.
    let args = (inh.len as usize).checked_sub(IN_HEADER + din_len).and_then(|n| args.get(..n));
    let Some(args) = args else { return req.complete(DOCA_ERROR_UNKNOWN) };
    let mut payload = vec![0u8; din_len];
    if let Some(list) = datain.filter(|_| din_len > 0) {
        if dma.fetch(list.as_ptr(), &mut payload).is_err() {
            return req.complete(DOCA_ERROR_UNKNOWN);
        }
    }
    if outs_only_if_size_zero && args.get(..4).is_some_and(|s| s != [0; 4]) {
        outs.clear();
    }
    let dout_cap = match dataout.map(|l| dma.capacity(l.as_ptr())) {
        None => 0,
        Some(Ok(n)) => n.min(MAX_DPU_BYTES),
        Some(Err(_)) => return req.complete(DOCA_ERROR_UNKNOWN),
    };
    let reply_len = match out {
        None => 0,
        Some(_) => OUT_HEADER + outs.iter().map(|o| o.len).sum::<usize>() + dout_cap,
    };
    let msg = [inh.as_bytes(), args, &payload].concat();
    let reply = Reply { req, out, outs, dataout, dma: dma.clone() };
    state.handler.handle(owned_request(state.device, vec![msg], &[reply_len], move |r| reply.finish(r)));
}

/// Where core's reply goes, moved to the thread that completes the request.
struct Reply {
    req: Req,
    out: Option<NonNull<OutHeader>>,
    outs: Vec<OutStruct>,
    dataout: Option<NonNull<DocaBuf>>,
    dma: Arc<dyn HostDma>,
}

// SAFETY: the out structs live in the request's DPU memory and the dataout list stays the
// host's until the request is completed, whichever thread completes it.
unsafe impl Send for Reply {}

impl Reply {
    /// Writes the reply and completes the request: `DOCA_SUCCESS` for a reply without
    /// FUSE error, `DOCA_ERROR_UNKNOWN` (what DOCA's sample answers a backend errno with)
    /// otherwise, including a reply that does not fit the host's buffers.
    fn finish(self, r: OwnedReply) {
        let Reply { req, out, outs, dataout, dma } = self;
        let Some(out) = out else { return req.complete(DOCA_SUCCESS) };
        let bytes = r.bytes();
        let Some(mut hdr) = bytes.get(..OUT_HEADER).and_then(|b| OutHeader::read_from_bytes(b).ok()) else {
            return req.complete(DOCA_ERROR_UNKNOWN);
        };
        let mut status = if hdr.error == 0 { DOCA_SUCCESS } else { DOCA_ERROR_UNKNOWN };
        if hdr.error == 0 {
            let mut body = bytes.get(OUT_HEADER..).unwrap_or_default();
            for o in &outs {
                let n = o.len.min(body.len());
                let (head, rest) = (body.get(..n).unwrap_or_default(), body.get(n..).unwrap_or_default());
                // SAFETY: `o.ptr` is DOCA's out struct of `o.len` bytes, valid until the
                // request is completed below; `n <= o.len` and `head` has `n` bytes.
                unsafe { std::ptr::copy_nonoverlapping(head.as_ptr(), o.ptr.as_ptr(), n) };
                body = rest;
            }
            let fits = |l: NonNull<DocaBuf>| dma.capacity(l.as_ptr()).is_ok_and(|c| c >= body.len());
            let flushed =
                body.is_empty() || dataout.filter(|l| fits(*l)).is_some_and(|l| dma.flush(l.as_ptr(), body).is_ok());
            if !flushed {
                hdr = OutHeader { len: OUT_HEADER as u32, error: -libc::EIO, unique: hdr.unique };
                status = DOCA_ERROR_UNKNOWN;
            }
        }
        // SAFETY: the out-header lives in the request's DPU memory until completion.
        unsafe { out.as_ptr().write_unaligned(hdr) };
        req.complete(status)
    }
}
