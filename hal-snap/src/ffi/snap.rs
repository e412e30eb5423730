//! SNAP's virtio-fs controller (BlueField-2), with DPFS's patches: device type
//! `virtiofs_emu` and asynchronous completion through `snap_fs_dev_io_done_ctx`.

use super::segs_from_iovecs;
use crate::config::DeviceSpec;
use crate::contract::{CompletionStatus, Controller};
use crate::Error;
use dpfs_core::{DeviceId, Handler, Request};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CString};
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

/// `enum snap_fs_dev_op_status`: `SNAP_FS_DEV_OP_SUCCESS`.
pub const SNAP_FS_DEV_OP_SUCCESS: c_int = 0;
/// `SNAP_FS_DEV_OP_IO_ERROR`.
pub const SNAP_FS_DEV_OP_IO_ERROR: c_int = 1;

/// `struct snap_fs_dev_io_done_ctx`: call `cb(status, user_arg)` exactly once.
#[repr(C)]
pub struct SnapFsDevIoDoneCtx {
    /// Completion callback.
    pub cb: Option<unsafe extern "C" fn(status: c_int, user_arg: *mut c_void)>,
    /// Its argument.
    pub user_arg: *mut c_void,
}

/// The request callback DPFS's SNAP patch adds.
pub type HandleReqFn = unsafe extern "C" fn(
    ctrl: *mut c_void,
    in_iov: *mut libc::iovec,
    in_iovcnt: c_int,
    out_iov: *mut libc::iovec,
    out_iovcnt: c_int,
    done: *mut SnapFsDevIoDoneCtx,
) -> c_int;

/// `vf_change_cb_t(ctx, pf_id, num_vfs)`.
pub type VfChangeFn = unsafe extern "C" fn(ctx: *mut c_void, pf_id: c_int, num_vfs: c_int);

/// `struct virtio_fs_ctrl_init_attr` with DPFS's two extra fields (order as DPFS's `snap.c`
/// sets them; check against the SDK header).
#[repr(C)]
pub struct VirtioFsCtrlInitAttr {
    /// RDMA device that manages the emulation (`mlx5_0`).
    pub emu_manager_name: *const c_char,
    /// SNAP-internal threads (DPFS: 1).
    pub nthreads: c_int,
    /// Tag the host mounts.
    pub tag: *const c_char,
    /// Physical function.
    pub pf_id: c_int,
    /// Virtual function, -1 for the PF.
    pub vf_id: c_int,
    /// `"virtiofs_emu"`.
    pub dev_type: *const c_char,
    /// Queues: hiprio + request queues (DPFS: 2).
    pub num_queues: c_int,
    /// Entries per queue (a power of two).
    pub queue_depth: c_int,
    /// Complete in order.
    pub force_in_order: bool,
    /// Recover a previous controller's state.
    pub recover: bool,
    /// Start suspended.
    pub suspended: bool,
    /// DPFS patch: the request callback.
    pub virtiofs_emu_handle_req: Option<HandleReqFn>,
    /// VF count changes.
    pub vf_change_cb: Option<VfChangeFn>,
    /// Its argument.
    pub vf_change_cb_arg: *mut c_void,
    /// DPFS patch: user pointer.
    pub virtiofs_emu: *mut c_void,
}

#[cfg(dpfs_snap_linked)]
mod sys {
    use super::*;
    extern "C" {
        pub fn nvme_init_logger() -> c_int;
        pub fn mlnx_snap_pci_manager_init() -> c_int;
        pub fn mlnx_snap_pci_manager_clear();
        pub fn virtio_fs_ctrl_init(attr: *const VirtioFsCtrlInitAttr) -> *mut c_void;
        pub fn virtio_fs_ctrl_progress_all_io(ctrl: *mut c_void) -> c_int;
        pub fn virtio_fs_ctrl_progress(ctrl: *mut c_void);
        pub fn virtio_fs_ctrl_suspend(ctrl: *mut c_void);
        pub fn virtio_fs_ctrl_is_suspended(ctrl: *mut c_void) -> bool;
        pub fn virtio_fs_ctrl_destroy(ctrl: *mut c_void);
    }
}

/// What the C callback needs to reach core; looked up by controller address.
struct Callback {
    device: DeviceId,
    handler: Arc<dyn Handler>,
    thread: std::sync::atomic::AtomicU16,
}

fn callbacks() -> &'static Mutex<HashMap<usize, Arc<Callback>>> {
    static T: OnceLock<Mutex<HashMap<usize, Arc<Callback>>>> = OnceLock::new();
    T.get_or_init(Default::default)
}

/// The done context, moved to whichever thread completes the request.
struct Done(NonNull<SnapFsDevIoDoneCtx>);
// SAFETY: SNAP's completion path is concurrency-safe (DPFS's patch: an SPSC ring), and the
// context stays valid until its callback has been called.
unsafe impl Send for Done {}

impl Done {
    fn complete(self, status: CompletionStatus) {
        let code = match status {
            CompletionStatus::Success => SNAP_FS_DEV_OP_SUCCESS,
            CompletionStatus::IoError => SNAP_FS_DEV_OP_IO_ERROR,
        };
        // SAFETY: the context is valid until its callback runs, which happens here once
        // (`self` is consumed).
        unsafe {
            let ctx = self.0.as_ptr();
            if let Some(cb) = (*ctx).cb {
                cb(code, (*ctx).user_arg);
            }
        }
    }
}

/// The request callback: SNAP's iovecs (already in DPU memory) become a core request; the
/// reply is always asynchronous (`EWOULDBLOCK`), completed exactly once from any thread.
unsafe extern "C" fn handle_req(
    ctrl: *mut c_void,
    in_iov: *mut libc::iovec,
    in_iovcnt: c_int,
    out_iov: *mut libc::iovec,
    out_iovcnt: c_int,
    done: *mut SnapFsDevIoDoneCtx,
) -> c_int {
    let Some(done) = NonNull::new(done).map(Done) else { return libc::EINVAL };
    let cb = callbacks().lock().get(&(ctrl as usize)).cloned();
    // SAFETY: SNAP hands valid iovecs that stay valid until `done` is called.
    let segs = unsafe { (segs_from_iovecs(in_iov, in_iovcnt), segs_from_iovecs(out_iov, out_iovcnt)) };
    let (Some(cb), (Some(r), Some(w))) = (cb, segs) else {
        done.complete(CompletionStatus::IoError);
        return libc::EWOULDBLOCK;
    };
    let thread = cb.thread.load(std::sync::atomic::Ordering::Relaxed);
    let completion = move |_written: usize| done.complete(CompletionStatus::Success);
    cb.handler.handle(Request::new(cb.device, 1, thread, r, w, Box::new(completion)));
    libc::EWOULDBLOCK
}

/// One SNAP virtio-fs controller.
pub struct SnapController {
    spec: DeviceSpec,
    ctrl: NonNull<c_void>,
    callback: Arc<Callback>,
}

// SAFETY: a controller is used by one poller thread at a time (the HAL's Mutex); SNAP
// allows moving it between threads between calls.
unsafe impl Send for SnapController {}

impl SnapController {
    /// Creates the controller for `spec` on `manager` (`virtio_fs_ctrl_init`).
    pub fn new(spec: DeviceSpec, manager: &str, handler: Arc<dyn Handler>) -> Result<SnapController, Error> {
        let manager = CString::new(manager).map_err(|_| Error::Config("emulation manager contains NUL".into()))?;
        let tag = CString::new(spec.tag.clone()).map_err(|_| Error::Config("tag contains NUL".into()))?;
        let dev_type = c"virtiofs_emu";
        let attr = VirtioFsCtrlInitAttr {
            emu_manager_name: manager.as_ptr(),
            nthreads: 1,
            tag: tag.as_ptr(),
            pf_id: c_int::from(spec.pf_id),
            vf_id: spec.vf_id.map_or(-1, c_int::from),
            dev_type: dev_type.as_ptr(),
            num_queues: 2,
            queue_depth: c_int::from(spec.queue_depth),
            force_in_order: false,
            recover: false,
            suspended: false,
            virtiofs_emu_handle_req: Some(handle_req),
            vf_change_cb: None,
            vf_change_cb_arg: std::ptr::null_mut(),
            virtiofs_emu: std::ptr::null_mut(),
        };
        let ctrl = NonNull::new(init(&attr)?)
            .ok_or_else(|| Error::Vendor(format!("virtio_fs_ctrl_init failed for PF {}", spec.pf_id)))?;
        let callback = Arc::new(Callback { device: spec.id, handler, thread: Default::default() });
        callbacks().lock().insert(ctrl.as_ptr() as usize, callback.clone());
        Ok(SnapController { spec, ctrl, callback })
    }
}

/// SNAP's global set-up: logger and the PCI manager (`mlnx_snap_pci_manager_init`).
pub fn global_init() -> Result<(), Error> {
    #[cfg(dpfs_snap_linked)]
    {
        // SAFETY: plain initialisation calls without arguments.
        if unsafe { sys::nvme_init_logger() } != 0 {
            return Err(Error::Vendor("SNAP logger: cannot initialise (is /var/log/mlnx_snap writable?)".into()));
        }
        // SAFETY: as above.
        if unsafe { sys::mlnx_snap_pci_manager_init() } != 0 {
            return Err(Error::Vendor(
                "SNAP PCI manager: no emulation capability in firmware, or the BlueField needs a power cycle".into(),
            ));
        }
        Ok(())
    }
    #[cfg(not(dpfs_snap_linked))]
    Err(not_linked())
}

#[cfg(not(dpfs_snap_linked))]
fn not_linked() -> Error {
    Error::Vendor("built without SNAP: rebuild with feature ffi-snap and SNAP_LIB_DIR=<mlnx-snap build>".into())
}

#[cfg(dpfs_snap_linked)]
fn init(attr: &VirtioFsCtrlInitAttr) -> Result<*mut c_void, Error> {
    // SAFETY: `attr` and the strings it points to outlive the call.
    Ok(unsafe { sys::virtio_fs_ctrl_init(attr) })
}

#[cfg(not(dpfs_snap_linked))]
fn init(_: &VirtioFsCtrlInitAttr) -> Result<*mut c_void, Error> {
    Err(not_linked())
}

impl Controller for SnapController {
    fn spec(&self) -> &DeviceSpec {
        &self.spec
    }

    fn progress_io(&mut self, thread: u16) -> usize {
        self.callback.thread.store(thread, std::sync::atomic::Ordering::Relaxed);
        #[cfg(dpfs_snap_linked)]
        // SAFETY: `ctrl` is a live controller owned by this value.
        return unsafe { sys::virtio_fs_ctrl_progress_all_io(self.ctrl.as_ptr()) }.max(0) as usize;
        #[cfg(not(dpfs_snap_linked))]
        0
    }

    fn progress_mgmt(&mut self) {
        #[cfg(dpfs_snap_linked)]
        // SAFETY: as above.
        unsafe {
            sys::virtio_fs_ctrl_progress(self.ctrl.as_ptr())
        }
    }

    fn suspend(&mut self) {
        #[cfg(dpfs_snap_linked)]
        // SAFETY: as above.
        unsafe {
            sys::virtio_fs_ctrl_suspend(self.ctrl.as_ptr())
        }
    }

    fn is_suspended(&self) -> bool {
        #[cfg(dpfs_snap_linked)]
        // SAFETY: as above.
        return unsafe { sys::virtio_fs_ctrl_is_suspended(self.ctrl.as_ptr()) };
        #[cfg(not(dpfs_snap_linked))]
        true
    }
}

impl Drop for SnapController {
    fn drop(&mut self) {
        callbacks().lock().remove(&(self.ctrl.as_ptr() as usize));
        #[cfg(dpfs_snap_linked)]
        // SAFETY: the controller is destroyed once, here; no callback can find it any more.
        unsafe {
            sys::virtio_fs_ctrl_destroy(self.ctrl.as_ptr())
        }
    }
}

/// Clears SNAP's PCI manager (`mlnx_snap_pci_manager_clear`) after every controller is gone.
pub fn global_clear() {
    #[cfg(dpfs_snap_linked)]
    // SAFETY: called once at shutdown, after every controller was dropped.
    unsafe {
        sys::mlnx_snap_pci_manager_clear()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_core::abi::{self, InHeader, OutHeader};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use zerocopy::{FromBytes, IntoBytes};

    static CALLS: AtomicUsize = AtomicUsize::new(0);
    static LAST: AtomicUsize = AtomicUsize::new(99);

    unsafe extern "C" fn done_cb(status: c_int, _: *mut c_void) {
        CALLS.fetch_add(1, Ordering::SeqCst);
        LAST.store(status as usize, Ordering::SeqCst);
    }

    fn iov(b: &mut [u8]) -> libc::iovec {
        libc::iovec { iov_base: b.as_mut_ptr().cast(), iov_len: b.len() }
    }

    #[test]
    fn the_callback_reaches_core_and_completes_once() {
        let fs = Arc::new(dpfs_backend_null::NullFs::new());
        let d =
            dpfs_core::Dispatcher::new(Default::default(), move |_| Ok(fs.clone() as Arc<dyn dpfs_core::FileSystem>));
        d.register_device(DeviceId(0)).unwrap();
        let fake_ctrl = 0x1000usize;
        let cb = Arc::new(Callback { device: DeviceId(0), handler: Arc::new(d), thread: Default::default() });
        callbacks().lock().insert(fake_ctrl, cb);
        // An INIT in two descriptors, the reply in two: DPFS's layout.
        let init = abi::InitIn { major: 7, minor: 45, ..Default::default() };
        let len = (std::mem::size_of::<InHeader>() + std::mem::size_of::<abi::InitIn>()) as u32;
        let mut h = InHeader { len, opcode: 26, unique: 7, ..Default::default() }.as_bytes().to_vec();
        let mut a = init.as_bytes().to_vec();
        let (mut oh, mut ob) = (vec![0u8; 16], vec![0u8; 256]);
        let mut ins = [iov(&mut h), iov(&mut a)];
        let mut outs = [iov(&mut oh), iov(&mut ob)];
        let mut done = SnapFsDevIoDoneCtx { cb: Some(done_cb), user_arg: std::ptr::null_mut() };
        // SAFETY: every buffer outlives the call, and the null backend answers inline.
        let r = unsafe { handle_req(fake_ctrl as *mut c_void, ins.as_mut_ptr(), 2, outs.as_mut_ptr(), 2, &mut done) };
        assert_eq!(r, libc::EWOULDBLOCK);
        assert_eq!(CALLS.load(Ordering::SeqCst), 1);
        assert_eq!(LAST.load(Ordering::SeqCst), SNAP_FS_DEV_OP_SUCCESS as usize);
        let out = OutHeader::read_from_bytes(&oh).unwrap();
        assert_eq!((out.error, out.unique), (0, 7));
        // A count SNAP could not have produced aborts the request, once.
        // SAFETY: the counts are refused before any iovec is read.
        let r = unsafe { handle_req(fake_ctrl as *mut c_void, ins.as_mut_ptr(), -1, outs.as_mut_ptr(), 2, &mut done) };
        assert_eq!(r, libc::EWOULDBLOCK);
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
        assert_eq!(LAST.load(Ordering::SeqCst), SNAP_FS_DEV_OP_IO_ERROR as usize);
        // SAFETY: a null done context is refused without touching anything.
        let r = unsafe {
            handle_req(fake_ctrl as *mut c_void, ins.as_mut_ptr(), 2, outs.as_mut_ptr(), 2, std::ptr::null_mut())
        };
        assert_eq!(r, libc::EINVAL);
        callbacks().lock().remove(&fake_ctrl);
    }

    #[cfg(not(dpfs_snap_linked))]
    #[test]
    fn without_an_sdk_construction_says_so() {
        let spec =
            DeviceSpec { id: DeviceId(0), pf_id: 0, vf_id: None, tag: "t-0".into(), queue_depth: 64, mock: false };
        let h: Arc<dyn Handler> = Arc::new(dpfs_core::Dispatcher::new(Default::default(), |_| Err("none".into())));
        let e = SnapController::new(spec, "mlx5_0", h).err().unwrap().to_string();
        assert!(e.contains("SNAP_LIB_DIR"), "{e}");
        assert!(global_init().is_err());
    }
}
