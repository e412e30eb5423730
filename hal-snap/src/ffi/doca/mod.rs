//! DOCA DevEmu virtio-fs (BlueField-3, the DOCA 3.x "generation 2" API): requests arrive
//! per FUSE opcode with the headers in DPU memory and the payload as host-memory `doca_buf`
//! lists, which the application moves with DOCA DMA tasks (one per host segment: DOCA DMA
//! cannot chain destination buffers).
//!
//! The adapter registers a handler for every FUSE opcode of the note's list (see
//! [`ops::REGISTERED`]): INIT, DESTROY, LOOKUP, FORGET, GETATTR, SETATTR, READLINK,
//! SYMLINK, MKNOD, MKDIR, UNLINK, RMDIR, RENAME, RENAME2, LINK, OPEN, READ, WRITE, STATFS,
//! RELEASE, FSYNC, SETXATTR, GETXATTR, LISTXATTR, REMOVEXATTR, FLUSH, OPENDIR, READDIR,
//! READDIRPLUS, RELEASEDIR, CREATE, BMAP, IOCTL, FALLOCATE, LSEEK, COPY_FILE_RANGE,
//! SETUPMAPPING, REMOVEMAPPING, SYNCFS, TMPFILE and STATX, so every request is answered by
//! core (BMAP, IOCTL and the DAX mappings with ENOSYS) rather than by the device's default.
//! Each handler rebuilds the FUSE message (in-header, the op's argument struct, the
//! payload fetched from the host with [`HostDma`]), runs core's [`Handler`], and writes the
//! reply into the out-header, the op's out structs and the host's dataout buffers before
//! `doca_devemu_vfs_fuse_req_complete`. FORGET is completed without a reply.
//!
//! Signatures are restated from the research note, which documents the generic handler
//! shape and three examples; the shapes of the other ops are inferred from the FUSE
//! message layout (see [`ops`]). Check them against the SDK's headers before linking.

use crate::config::DeviceSpec;
use crate::contract::Controller;
use crate::Error;
use dpfs_core::{DeviceId, Handler};
use std::ffi::{c_int, c_void};
use std::ptr::NonNull;
use std::sync::Arc;

pub mod ops;
mod request;

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
        pub fn doca_devemu_vfs_fuse_req_get_vfs_io(req: *mut DocaDevemuVfsFuseReq) -> *mut DocaDevemuVfsIo;
        pub fn doca_ctx_set_user_data(ctx: *mut DocaCtx, data: DocaData) -> DocaError;
        pub fn doca_ctx_get_user_data(ctx: *const DocaCtx, data: *mut DocaData) -> DocaError;
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
    /// Copies `src` into the host buffers of `list` (a dataout list), segment by segment;
    /// fails rather than write past the list's end.
    fn flush(&self, list: *mut DocaBuf, src: &[u8]) -> Result<(), Error>;
    /// Total bytes of the host buffers of `list` (on the device: the sum over
    /// `buf_list_segments`, or the request's `_get_{datain,dataout}_data_len`).
    fn capacity(&self, list: *mut DocaBuf) -> Result<usize, Error>;
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

/// `union doca_data`: the user data of a DOCA context.
#[repr(C)]
#[derive(Clone, Copy)]
pub union DocaData {
    /// As a pointer.
    pub ptr: *mut c_void,
    /// As an integer.
    pub u64: u64,
}

/// The [`IoState`] a handler serves. In generation 2 the handler's second argument is the
/// request's scratch area (`req_user_data`), not a registration argument, so on the device
/// the state is the user data of the request's IO context (set in `create`; these two calls
/// are general DOCA context API, not from the note: check them with the headers). Without
/// the SDK (tests) handlers are called with the state itself as `user`.
///
/// # Safety
/// `req` is a request DOCA handed over; without the SDK, `user` is null or an `IoState`
/// that outlives the request.
unsafe fn state_of<'a>(req: NonNull<DocaDevemuVfsFuseReq>, user: *mut c_void) -> Option<&'a IoState> {
    #[cfg(dpfs_doca_linked)]
    {
        let _ = user;
        let mut data = DocaData { u64: 0 };
        // SAFETY: `req` is live; its IO context carries the state pointer set in `create`,
        // which the controller keeps alive while the context runs.
        unsafe {
            let io = sys::doca_devemu_vfs_fuse_req_get_vfs_io(req.as_ptr());
            if io.is_null()
                || sys::doca_ctx_get_user_data(sys::doca_devemu_vfs_io_as_ctx(io), &mut data) != DOCA_SUCCESS
            {
                return None;
            }
            data.ptr.cast::<IoState>().as_ref()
        }
    }
    #[cfg(not(dpfs_doca_linked))]
    {
        let _ = req;
        // SAFETY: the caller's promise.
        unsafe { user.cast::<IoState>().as_ref() }
    }
}

/// Requests completed without the SDK, with their status (tests look them up by address).
#[cfg(all(test, not(dpfs_doca_linked)))]
static COMPLETED: parking_lot::Mutex<Vec<(usize, DocaError)>> = parking_lot::Mutex::new(Vec::new());

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
        #[cfg(all(test, not(dpfs_doca_linked)))]
        COMPLETED.lock().push((self.0.as_ptr() as usize, status));
        #[cfg(not(dpfs_doca_linked))]
        let _ = (self, status);
    }
}

/// What the handlers need; the IO context's user data.
pub struct IoState {
    device: DeviceId,
    handler: Arc<dyn Handler>,
    dma: Arc<dyn HostDma>,
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
    state: &IoState,
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
        let ctx = sys::doca_devemu_vfs_io_as_ctx(io);
        let e = sys::doca_ctx_set_user_data(ctx, DocaData { ptr: (state as *const IoState).cast_mut().cast() });
        if e != DOCA_SUCCESS {
            return Err(err("io set_user_data", e));
        }
        if let Err((op, e)) = ops::register_all(io) {
            return Err(err(&format!("{op} handler registration"), e));
        }
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
mod tests;
