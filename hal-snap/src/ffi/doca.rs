//! DOCA DevEmu virtio-fs (BlueField-3, the DOCA 3.x "generation 2" API): requests arrive
//! per FUSE opcode with the headers in DPU memory and the payload as host-memory `doca_buf`
//! lists, which the application moves with DOCA DMA tasks (one per host segment: DOCA DMA
//! cannot chain destination buffers).
//!
//! The adapter registers READ and WRITE (the data path); the device answers other opcodes
//! itself until their handlers are added here. Signatures are restated from the research
//! note; check them against the SDK's headers before linking.

use crate::config::DeviceSpec;
use crate::contract::Controller;
use crate::Error;
use dpfs_core::abi::{InHeader, OutHeader, ReadIn, WriteIn, WriteOut};
use dpfs_core::{owned_request, DeviceId, Handler, OwnedReply};
use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;
use zerocopy::IntoBytes;

/// `doca_error_t`: 0 is `DOCA_SUCCESS`.
pub type DocaError = c_int;
/// `DOCA_SUCCESS`.
pub const DOCA_SUCCESS: DocaError = 0;
/// `DOCA_ERROR_UNKNOWN` (what the DOCA sample answers a backend errno with).
pub const DOCA_ERROR_UNKNOWN: DocaError = 1;

macro_rules! opaque {
    ($($name:ident),*) => {$(
        /// An opaque DOCA object.
        #[repr(C)]
        pub struct $name {
            _private: [u8; 0],
        }
    )*};
}
opaque!(
    DocaDevemuVfsDev,
    DocaDevemuVfsIo,
    DocaDevemuVfsFuseReq,
    DocaBuf,
    DocaPe,
    DocaCtx,
    DocaDevemuVfsType,
    DocaDevRep
);

/// READ handler: `(req, req_user_data, in, read_in, out, dataout)`.
pub type ReadHandler = unsafe extern "C" fn(
    req: *mut DocaDevemuVfsFuseReq,
    user: *mut c_void,
    inh: *mut InHeader,
    read_in: *mut ReadIn,
    out: *mut OutHeader,
    dataout: *mut DocaBuf,
);
/// WRITE handler: `(req, req_user_data, in, write_in, datain, out, write_out)`.
pub type WriteHandler = unsafe extern "C" fn(
    req: *mut DocaDevemuVfsFuseReq,
    user: *mut c_void,
    inh: *mut InHeader,
    write_in: *mut WriteIn,
    datain: *mut DocaBuf,
    out: *mut OutHeader,
    write_out: *mut WriteOut,
);

#[cfg(dpfs_doca_linked)]
mod sys {
    use super::*;
    extern "C" {
        pub fn doca_devemu_vfs_dev_create(
            t: *mut DocaDevemuVfsType,
            rep: *mut DocaDevRep,
            pe: *mut DocaPe,
            dev: *mut *mut DocaDevemuVfsDev,
        ) -> DocaError;
        pub fn doca_devemu_vfs_dev_set_tag(dev: *mut DocaDevemuVfsDev, tag: *const std::ffi::c_char) -> DocaError;
        pub fn doca_devemu_vfs_dev_set_num_request_queues(dev: *mut DocaDevemuVfsDev, n: u32) -> DocaError;
        pub fn doca_devemu_vfs_dev_as_ctx(dev: *mut DocaDevemuVfsDev) -> *mut DocaCtx;
        pub fn doca_devemu_vfs_io_create(
            dev: *mut DocaDevemuVfsDev,
            pe: *mut DocaPe,
            io: *mut *mut DocaDevemuVfsIo,
        ) -> DocaError;
        pub fn doca_devemu_vfs_io_as_ctx(io: *mut DocaDevemuVfsIo) -> *mut DocaCtx;
        pub fn doca_devemu_vfs_io_event_vfs_fuse_read_req_handler_register(
            io: *mut DocaDevemuVfsIo,
            h: ReadHandler,
        ) -> DocaError;
        pub fn doca_devemu_vfs_io_event_vfs_fuse_write_req_handler_register(
            io: *mut DocaDevemuVfsIo,
            h: WriteHandler,
        ) -> DocaError;
        pub fn doca_devemu_vfs_fuse_req_complete(req: *mut DocaDevemuVfsFuseReq, status: DocaError) -> DocaError;
        pub fn doca_ctx_start(ctx: *mut DocaCtx) -> DocaError;
        pub fn doca_ctx_stop(ctx: *mut DocaCtx) -> DocaError;
        pub fn doca_pe_create(pe: *mut *mut DocaPe) -> DocaError;
        pub fn doca_pe_progress(pe: *mut DocaPe) -> u8;
        pub fn doca_buf_get_data(buf: *const DocaBuf, data: *mut *mut c_void) -> DocaError;
        pub fn doca_buf_get_data_len(buf: *const DocaBuf, len: *mut usize) -> DocaError;
        pub fn doca_buf_get_next_in_list(buf: *mut DocaBuf, next: *mut *mut DocaBuf) -> DocaError;
    }
}

/// Moves bytes between host `doca_buf` lists and DPU memory. On the device this is a DOCA
/// DMA context (one memcpy task per host segment); the trait keeps the request logic
/// testable without one.
pub trait HostDma: Send + Sync {
    /// Copies the host buffers of `list` (a datain list) into `dst`.
    fn fetch(&self, list: *mut DocaBuf, dst: &mut [u8]) -> Result<(), Error>;
    /// Copies `src` into the host buffers of `list` (a dataout list), segment by segment.
    fn flush(&self, list: *mut DocaBuf, src: &[u8]) -> Result<(), Error>;
}

/// The host segments (address, length) of a `doca_buf` list, at most `max` of them: what a
/// [`HostDma`] turns into one DMA task each.
#[cfg(dpfs_doca_linked)]
pub fn buf_list_segments(list: *mut DocaBuf, max: usize) -> Result<Vec<(usize, usize)>, Error> {
    let mut out = Vec::new();
    let mut cur = list;
    while !cur.is_null() {
        if out.len() == max {
            return Err(Error::Vendor(format!("doca_buf list longer than {max} segments")));
        }
        let (mut data, mut len, mut next) = (std::ptr::null_mut(), 0usize, std::ptr::null_mut());
        // SAFETY: `cur` is a buffer of the list DOCA handed over; out-pointers are locals.
        let e = unsafe {
            sys::doca_buf_get_data(cur, &mut data)
                | sys::doca_buf_get_data_len(cur, &mut len)
                | sys::doca_buf_get_next_in_list(cur, &mut next)
        };
        if e != DOCA_SUCCESS {
            return Err(Error::Vendor(format!("doca_buf query failed: error {e}")));
        }
        out.push((data as usize, len));
        cur = next;
    }
    Ok(out)
}

/// A request's handle, moved to the thread that completes it.
#[cfg_attr(not(dpfs_doca_linked), allow(dead_code))]
struct Req(NonNull<DocaDevemuVfsFuseReq>);
// SAFETY: "ownership of req is transferred to the user"; completing from another thread
// is how the DOCA sample hands it to its DMA completion.
unsafe impl Send for Req {}

impl Req {
    fn complete(self, status: DocaError) {
        #[cfg(dpfs_doca_linked)]
        // SAFETY: the request is completed once (`self` is consumed).
        unsafe {
            sys::doca_devemu_vfs_fuse_req_complete(self.0.as_ptr(), status);
        }
        #[cfg(not(dpfs_doca_linked))]
        let _ = (self, status);
    }
}

/// What the handlers need; passed as the IO context's user data.
pub struct IoState {
    device: DeviceId,
    handler: Arc<dyn Handler>,
    dma: Arc<dyn HostDma>,
}

struct Out(NonNull<OutHeader>, Option<NonNull<WriteOut>>);
// SAFETY: the out structs live in the request's DPU memory until it is completed.
unsafe impl Send for Out {}

/// Finishes a request from core's reply: copies the out-header (and `write_out`), flushes
/// READ data to the host, completes with the status DOCA expects.
fn finish(req: Req, out: Out, dataout: Option<(usize, Arc<dyn HostDma>)>, reply: OwnedReply) {
    let bytes = reply.bytes();
    let hdr_len = std::mem::size_of::<OutHeader>();
    let Some(hdr) = bytes.get(..hdr_len).and_then(|b| zerocopy::FromBytes::read_from_bytes(b).ok()) else {
        return req.complete(DOCA_ERROR_UNKNOWN);
    };
    let hdr: OutHeader = hdr;
    // SAFETY: the out-header lives in the request's DPU memory until completion.
    unsafe { out.0.as_ptr().write(hdr) };
    let body = bytes.get(hdr_len..).unwrap_or_default();
    if let Some(wo) = out.1 {
        if let Some(v) = zerocopy::FromBytes::read_from_prefix(body).ok().map(|(v, _): (WriteOut, _)| v) {
            // SAFETY: as above, for write_out.
            unsafe { wo.as_ptr().write(v) };
        }
    }
    let status = match dataout {
        Some((list, dma)) if hdr.error == 0 => match dma.flush(list as *mut DocaBuf, body) {
            Ok(()) => DOCA_SUCCESS,
            Err(_) => DOCA_ERROR_UNKNOWN,
        },
        _ if hdr.error == 0 => DOCA_SUCCESS,
        _ => DOCA_ERROR_UNKNOWN,
    };
    req.complete(status)
}

/// The READ handler: core reads into an Arm buffer, which is flushed to the host.
///
/// # Safety
/// Called by DOCA with valid pointers and `user` = the `IoState` registered with the IO.
pub unsafe extern "C" fn on_read(
    req: *mut DocaDevemuVfsFuseReq,
    user: *mut c_void,
    inh: *mut InHeader,
    read_in: *mut ReadIn,
    out: *mut OutHeader,
    dataout: *mut DocaBuf,
) {
    let (Some(req), Some(out)) = (NonNull::new(req).map(Req), NonNull::new(out)) else { return };
    // SAFETY: DOCA passes the IO's user data and headers valid for the handler's duration.
    let (Some(state), Some(h), Some(a)) =
        (unsafe { user.cast::<IoState>().as_ref() }, unsafe { inh.as_ref() }, unsafe { read_in.as_ref() })
    else {
        return req.complete(DOCA_ERROR_UNKNOWN);
    };
    let msg = [h.as_bytes(), a.as_bytes()].concat();
    let reply_len = std::mem::size_of::<OutHeader>() + (a.size as usize).min(crate::flow::MAX_DPU_BYTES);
    let (dma, list) = (state.dma.clone(), dataout as usize);
    let out = Out(out, None);
    let done = move |r: OwnedReply| finish(req, out, Some((list, dma)), r);
    state.handler.handle(owned_request(state.device, vec![msg], &[reply_len], done));
}

/// The WRITE handler: the payload is fetched from the host before core runs.
///
/// # Safety
/// As for [`on_read`].
pub unsafe extern "C" fn on_write(
    req: *mut DocaDevemuVfsFuseReq,
    user: *mut c_void,
    inh: *mut InHeader,
    write_in: *mut WriteIn,
    datain: *mut DocaBuf,
    out: *mut OutHeader,
    write_out: *mut WriteOut,
) {
    let (Some(req), Some(out)) = (NonNull::new(req).map(Req), NonNull::new(out)) else { return };
    // SAFETY: as in `on_read`.
    let (Some(state), Some(h), Some(a)) =
        (unsafe { user.cast::<IoState>().as_ref() }, unsafe { inh.as_ref() }, unsafe { write_in.as_ref() })
    else {
        return req.complete(DOCA_ERROR_UNKNOWN);
    };
    let n = a.size as usize;
    if n > crate::flow::MAX_DPU_BYTES {
        return req.complete(DOCA_ERROR_UNKNOWN);
    }
    let mut payload = vec![0u8; n];
    if state.dma.fetch(datain, &mut payload).is_err() {
        return req.complete(DOCA_ERROR_UNKNOWN);
    }
    let msg = [h.as_bytes(), a.as_bytes(), &payload].concat();
    let out = Out(out, NonNull::new(write_out));
    let reply_len = std::mem::size_of::<OutHeader>() + std::mem::size_of::<WriteOut>();
    let done = move |r: OwnedReply| finish(req, out, None, r);
    state.handler.handle(owned_request(state.device, vec![msg], &[reply_len], done));
}

/// One DevEmu virtio-fs device with its IO context and progress engine.
pub struct DocaController {
    spec: DeviceSpec,
    #[cfg_attr(not(dpfs_doca_linked), allow(dead_code))]
    pe: NonNull<DocaPe>,
    io: NonNull<DocaDevemuVfsIo>,
    _state: Box<IoState>,
    stopped: bool,
}

// SAFETY: one poller thread drives a controller at a time ("io_create must be invoked from
// the CPU core responsible for the IO context": create it on its poller thread).
unsafe impl Send for DocaController {}

impl DocaController {
    /// Creates the device on `rep` (a PF/VF representor of the vfs type) and its IO context.
    pub fn new(
        spec: DeviceSpec,
        vfs_type: *mut DocaDevemuVfsType,
        rep: *mut DocaDevRep,
        handler: Arc<dyn Handler>,
        dma: Arc<dyn HostDma>,
    ) -> Result<DocaController, Error> {
        let state = Box::new(IoState { device: spec.id, handler, dma });
        let (pe, io) = create(&spec, vfs_type, rep, &state)?;
        Ok(DocaController { spec, pe, io, _state: state, stopped: false })
    }
}

#[cfg(dpfs_doca_linked)]
fn create(
    spec: &DeviceSpec,
    vfs_type: *mut DocaDevemuVfsType,
    rep: *mut DocaDevRep,
    _state: &IoState,
) -> Result<(NonNull<DocaPe>, NonNull<DocaDevemuVfsIo>), Error> {
    let err = |what: &str, e: DocaError| Error::Vendor(format!("DOCA {what} for PF {}: error {e}", spec.pf_id));
    let tag = std::ffi::CString::new(spec.tag.clone()).map_err(|_| Error::Config("tag contains NUL".into()))?;
    let (mut pe, mut dev, mut io) = (std::ptr::null_mut(), std::ptr::null_mut(), std::ptr::null_mut());
    // SAFETY: out-pointers are valid locals; the objects are owned by the controller.
    unsafe {
        let e = sys::doca_pe_create(&mut pe);
        if e != DOCA_SUCCESS {
            return Err(err("pe_create", e));
        }
        let e = sys::doca_devemu_vfs_dev_create(vfs_type, rep, pe, &mut dev);
        if e != DOCA_SUCCESS {
            return Err(err("vfs_dev_create", e));
        }
        sys::doca_devemu_vfs_dev_set_tag(dev, tag.as_ptr());
        sys::doca_devemu_vfs_dev_set_num_request_queues(dev, 1);
        let e = sys::doca_ctx_start(sys::doca_devemu_vfs_dev_as_ctx(dev));
        if e != DOCA_SUCCESS {
            return Err(err("device start", e));
        }
        let e = sys::doca_devemu_vfs_io_create(dev, pe, &mut io);
        if e != DOCA_SUCCESS {
            return Err(err("io_create", e));
        }
        sys::doca_devemu_vfs_io_event_vfs_fuse_read_req_handler_register(io, on_read);
        sys::doca_devemu_vfs_io_event_vfs_fuse_write_req_handler_register(io, on_write);
        let e = sys::doca_ctx_start(sys::doca_devemu_vfs_io_as_ctx(io));
        if e != DOCA_SUCCESS {
            return Err(err("io start", e));
        }
    }
    match (NonNull::new(pe), NonNull::new(io)) {
        (Some(pe), Some(io)) => Ok((pe, io)),
        _ => Err(Error::Vendor("DOCA returned a null object".into())),
    }
}

#[cfg(not(dpfs_doca_linked))]
fn create(
    _: &DeviceSpec,
    _: *mut DocaDevemuVfsType,
    _: *mut DocaDevRep,
    _: &IoState,
) -> Result<(NonNull<DocaPe>, NonNull<DocaDevemuVfsIo>), Error> {
    Err(Error::Vendor("built without DOCA: rebuild with feature ffi-doca and DOCA_LIB_DIR=<DOCA SDK lib dir>".into()))
}

impl Controller for DocaController {
    fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    fn progress_io(&mut self, _thread: u16) -> usize {
        #[cfg(dpfs_doca_linked)]
        // SAFETY: the progress engine is live and owned by this controller.
        return usize::from(unsafe { sys::doca_pe_progress(self.pe.as_ptr()) });
        #[cfg(not(dpfs_doca_linked))]
        0
    }

    fn progress_mgmt(&mut self) {
        // Device events (reset, FLR) are delivered through the same progress engine.
        self.progress_io(0);
    }

    fn suspend(&mut self) {
        if !self.stopped {
            #[cfg(dpfs_doca_linked)]
            // SAFETY: the IO context is live; stopping it drains its requests.
            unsafe {
                sys::doca_ctx_stop(sys::doca_devemu_vfs_io_as_ctx(self.io.as_ptr()));
            }
            self.stopped = true;
        }
    }

    fn is_suspended(&self) -> bool {
        let _ = self.io;
        self.stopped
    }
}

#[cfg(all(test, not(dpfs_doca_linked)))]
mod tests {
    use super::*;
    use parking_lot::Mutex;

    /// Host memory keyed by the (fake) list pointer.
    #[derive(Default)]
    struct FakeDma(Mutex<std::collections::HashMap<usize, Vec<u8>>>);

    impl HostDma for FakeDma {
        fn fetch(&self, list: *mut DocaBuf, dst: &mut [u8]) -> Result<(), Error> {
            let m = self.0.lock();
            let src = m.get(&(list as usize)).ok_or(Error::Vendor("no such list".into()))?;
            dst.copy_from_slice(src.get(..dst.len()).ok_or(Error::Vendor("short".into()))?);
            Ok(())
        }
        fn flush(&self, list: *mut DocaBuf, src: &[u8]) -> Result<(), Error> {
            self.0.lock().insert(list as usize, src.to_vec());
            Ok(())
        }
    }

    #[test]
    fn read_and_write_handlers_go_through_core() {
        let fs = Arc::new(dpfs_backend_mem::MemFs::new(Default::default()));
        fs.seed_file("f", b"hello, doca").unwrap();
        let d =
            dpfs_core::Dispatcher::new(Default::default(), move |_| Ok(fs.clone() as Arc<dyn dpfs_core::FileSystem>));
        d.register_device(DeviceId(0)).unwrap();
        let dma = Arc::new(FakeDma::default());
        let mut state = IoState { device: DeviceId(0), handler: Arc::new(d), dma: dma.clone() };
        let user = (&mut state as *mut IoState).cast::<c_void>();
        let fake_req = 0x10 as *mut DocaDevemuVfsFuseReq;
        // INIT through core first (DOCA's own init handler would do this).
        let init = dpfs_core::abi::InitIn { major: 7, minor: 45, ..Default::default() };
        let len = (std::mem::size_of::<InHeader>() + std::mem::size_of_val(&init)) as u32;
        let msg = [InHeader { len, opcode: 26, unique: 1, ..Default::default() }.as_bytes(), init.as_bytes()].concat();
        state.handler.handle(owned_request(DeviceId(0), vec![msg], &[4096], |_| {}));
        // OPEN the seeded file (inode 2) for its handle.
        let open = dpfs_core::abi::OpenIn { flags: libc::O_RDWR as u32, ..Default::default() };
        let len = (std::mem::size_of::<InHeader>() + std::mem::size_of_val(&open)) as u32;
        let msg =
            [InHeader { len, opcode: 14, unique: 9, nodeid: 2, ..Default::default() }.as_bytes(), open.as_bytes()]
                .concat();
        let fh = Arc::new(Mutex::new(None));
        let got = fh.clone();
        state.handler.handle(owned_request(DeviceId(0), vec![msg], &[4096], move |r| {
            let b = r.bytes();
            *got.lock() = b
                .get(16..)
                .and_then(|b| zerocopy::FromBytes::read_from_prefix(b).ok())
                .map(|(o, _): (dpfs_core::abi::OpenOut, _)| o.fh);
        }));
        let fh = fh.lock().expect("OPEN answered");
        // WRITE "HELLO" at 0 of inode 2 (the seeded file): the payload comes from the host.
        let list_in = 0x100 as *mut DocaBuf;
        dma.0.lock().insert(list_in as usize, b"HELLO".to_vec());
        let mut wi = WriteIn { fh, offset: 0, size: 5, ..Default::default() };
        let wlen = (std::mem::size_of::<InHeader>() + std::mem::size_of::<WriteIn>() + 5) as u32;
        let mut h = InHeader { len: wlen, opcode: 16, unique: 2, nodeid: 2, ..Default::default() };
        let (mut out, mut wo) = (OutHeader::default(), WriteOut::default());
        // SAFETY: every pointer is a valid local for the call; the mem backend answers inline.
        unsafe { on_write(fake_req, user, &mut h, &mut wi, list_in, &mut out, &mut wo) };
        assert_eq!((out.error, out.unique, wo.size), (0, 2, 5));
        // READ 11 bytes: they land in the dataout list.
        let list_out = 0x200 as *mut DocaBuf;
        let mut ri = ReadIn { fh, offset: 0, size: 11, ..Default::default() };
        let rlen = (std::mem::size_of::<InHeader>() + std::mem::size_of::<ReadIn>()) as u32;
        let mut h = InHeader { len: rlen, opcode: 15, unique: 3, nodeid: 2, ..Default::default() };
        let mut out = OutHeader::default();
        // SAFETY: as above.
        unsafe { on_read(fake_req, user, &mut h, &mut ri, &mut out, list_out) };
        assert_eq!(out.error, 0);
        assert_eq!(dma.0.lock().get(&(list_out as usize)).unwrap(), b"HELLO, doca");
        // A WRITE whose payload cannot be fetched never reaches the backend.
        let mut out = OutHeader::default();
        let mut h = InHeader { len: wlen, opcode: 16, unique: 4, nodeid: 2, ..Default::default() };
        // SAFETY: as above; list 0x300 is unknown to the fake DMA.
        unsafe { on_write(fake_req, user, &mut h, &mut wi, 0x300 as *mut DocaBuf, &mut out, &mut wo) };
        assert_eq!(out.unique, 0, "no reply header was written");
    }
}
