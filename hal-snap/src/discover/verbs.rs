//! libibverbs and libmlx5 loaded at run time with `libloading`: nothing of rdma-core is
//! needed to build dpfs, and a machine without it gets a one-line answer.

use super::{Devx, NoRdma, Rdma};
use libloading::{Library, Symbol};
use std::ffi::{c_char, c_int, c_void, CStr};

/// `struct mlx5dv_context_attr`.
#[repr(C)]
struct Mlx5dvContextAttr {
    flags: u32,
    comp_mask: u64,
}

/// `MLX5DV_CONTEXT_FLAGS_DEVX`.
const MLX5DV_CONTEXT_FLAGS_DEVX: u32 = 1;

type GetDeviceList = unsafe extern "C" fn(*mut c_int) -> *mut *mut c_void;
type FreeDeviceList = unsafe extern "C" fn(*mut *mut c_void);
type GetDeviceName = unsafe extern "C" fn(*mut c_void) -> *const c_char;
type CloseDevice = unsafe extern "C" fn(*mut c_void) -> c_int;
type IsSupported = unsafe extern "C" fn(*mut c_void) -> bool;
type OpenDevice = unsafe extern "C" fn(*mut c_void, *mut Mlx5dvContextAttr) -> *mut c_void;
type GeneralCmd = unsafe extern "C" fn(*mut c_void, *const c_void, usize, *mut c_void, usize) -> c_int;

/// rdma-core, loaded.
pub struct Verbs {
    ibv: Library,
    mlx5: Option<Library>,
    list: *mut *mut c_void,
    devices: Vec<(String, *mut c_void)>,
}

impl Verbs {
    /// Loads `libibverbs.so.1` (and `libmlx5.so.1` if present) and reads the device list.
    pub fn load() -> Result<Verbs, NoRdma> {
        // SAFETY: loading rdma-core runs its constructors, which only initialise the library.
        let ibv =
            unsafe { Library::new("libibverbs.so.1") }.map_err(|e| NoRdma::LibraryMissing { detail: e.to_string() })?;
        // SAFETY: as above.
        let mlx5 = unsafe { Library::new("libmlx5.so.1") }.ok();
        let mut v = Verbs { ibv, mlx5, list: std::ptr::null_mut(), devices: Vec::new() };
        v.read_list()?;
        Ok(v)
    }

    fn read_list(&mut self) -> Result<(), NoRdma> {
        let missing = |e: libloading::Error| NoRdma::LibraryMissing { detail: e.to_string() };
        // SAFETY: the symbols have the C signatures declared above (rdma-core's ABI).
        let (get, name): (Symbol<GetDeviceList>, Symbol<GetDeviceName>) = unsafe {
            (
                self.ibv.get(b"ibv_get_device_list\0").map_err(missing)?,
                self.ibv.get(b"ibv_get_device_name\0").map_err(missing)?,
            )
        };
        let mut n: c_int = 0;
        // SAFETY: `n` is a valid out-pointer.
        let list = unsafe { get(&mut n) };
        if list.is_null() {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::ENOSYS);
            return Err(NoRdma::NoKernelSupport { errno });
        }
        self.list = list;
        for i in 0..usize::try_from(n).unwrap_or(0).min(1024) {
            // SAFETY: the list holds `n` device pointers.
            let dev = unsafe { *list.add(i) };
            if dev.is_null() {
                break;
            }
            // SAFETY: `dev` is a device of the list; the name is a NUL-terminated string it owns.
            let s = unsafe { name(dev) };
            let s = if s.is_null() {
                format!("device{i}")
            } else {
                unsafe { CStr::from_ptr(s) }.to_string_lossy().into_owned()
            };
            self.devices.push((s, dev));
        }
        Ok(())
    }

    fn device(&self, name: &str) -> Option<*mut c_void> {
        self.devices.iter().find(|(n, _)| n == name).map(|(_, d)| *d)
    }
}

impl Drop for Verbs {
    fn drop(&mut self) {
        if self.list.is_null() {
            return;
        }
        // SAFETY: the list came from ibv_get_device_list and is freed once.
        if let Ok(free) = unsafe { self.ibv.get::<FreeDeviceList>(b"ibv_free_device_list\0") } {
            // SAFETY: as above.
            unsafe { free(self.list) };
        }
    }
}

struct Open<'a> {
    verbs: &'a Verbs,
    ctx: *mut c_void,
}

impl Devx for Open<'_> {
    fn cmd(&self, inbox: &[u8], out: &mut [u8]) -> Result<(), i32> {
        let lib = self.verbs.mlx5.as_ref().ok_or(libc::ENOSYS)?;
        // SAFETY: the symbol has the declared C signature.
        let cmd: Symbol<GeneralCmd> = unsafe { lib.get(b"mlx5dv_devx_general_cmd\0") }.map_err(|_| libc::ENOSYS)?;
        // SAFETY: `ctx` is an open DevX context; the boxes are valid for their lengths.
        let r = unsafe { cmd(self.ctx, inbox.as_ptr().cast(), inbox.len(), out.as_mut_ptr().cast(), out.len()) };
        match r {
            0 => Ok(()),
            e if e > 0 => Err(e),
            _ => Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO)),
        }
    }
}

impl Drop for Open<'_> {
    fn drop(&mut self) {
        // SAFETY: the symbol has the declared C signature; the context is closed once.
        if let Ok(close) = unsafe { self.verbs.ibv.get::<CloseDevice>(b"ibv_close_device\0") } {
            // SAFETY: as above.
            unsafe { close(self.ctx) };
        }
    }
}

impl Rdma for Verbs {
    fn devices(&self) -> Result<Vec<String>, NoRdma> {
        Ok(self.devices.iter().map(|(n, _)| n.clone()).collect())
    }

    fn is_mlx5(&self, name: &str) -> bool {
        let (Some(lib), Some(dev)) = (self.mlx5.as_ref(), self.device(name)) else { return false };
        // SAFETY: the symbol has the declared C signature; `dev` is from the device list.
        unsafe { lib.get::<IsSupported>(b"mlx5dv_is_supported\0").map(|f| f(dev)).unwrap_or(false) }
    }

    fn open(&self, name: &str) -> Result<Box<dyn Devx + '_>, i32> {
        let (Some(lib), Some(dev)) = (self.mlx5.as_ref(), self.device(name)) else { return Err(libc::ENODEV) };
        // SAFETY: the symbol has the declared C signature.
        let open: Symbol<OpenDevice> = unsafe { lib.get(b"mlx5dv_open_device\0") }.map_err(|_| libc::ENOSYS)?;
        let mut attr = Mlx5dvContextAttr { flags: MLX5DV_CONTEXT_FLAGS_DEVX, comp_mask: 0 };
        // SAFETY: `dev` is from the device list; `attr` is valid for the call.
        let ctx = unsafe { open(dev, &mut attr) };
        if ctx.is_null() {
            return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO));
        }
        Ok(Box::new(Open { verbs: self, ctx }))
    }
}

/// Discovery on this machine.
pub fn discover_here() -> super::Discovery {
    match Verbs::load() {
        Ok(v) => super::discover(&v),
        Err(e) => super::Discovery { no_rdma: Some(e), devices: vec![] },
    }
}
