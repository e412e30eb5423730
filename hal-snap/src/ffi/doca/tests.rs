//! The handlers driven with fake requests and host buffers (no SDK): each op's message is
//! rebuilt for core and its reply lands in the out structs and the dataout buffers.

use super::ops::*;
use super::*;
use dpfs_core::abi::*;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};

const IN_HEADER: usize = std::mem::size_of::<InHeader>();

/// Host memory keyed by the (fake) list pointer; lists in `broken` fail to transfer.
#[derive(Default)]
struct FakeDma {
    mem: Mutex<HashMap<usize, Vec<u8>>>,
    broken: Mutex<HashSet<usize>>,
    flushed: Mutex<HashMap<usize, usize>>,
}

impl HostDma for FakeDma {
    fn fetch(&self, list: *mut DocaBuf, dst: &mut [u8]) -> Result<(), Error> {
        if self.broken.lock().contains(&(list as usize)) {
            return Err(Error::Vendor("DMA task failed".into()));
        }
        let m = self.mem.lock();
        let src = m.get(&(list as usize)).ok_or(Error::Vendor("no such list".into()))?;
        dst.copy_from_slice(src.get(..dst.len()).ok_or(Error::Vendor("short".into()))?);
        Ok(())
    }
    fn flush(&self, list: *mut DocaBuf, src: &[u8]) -> Result<(), Error> {
        let mut m = self.mem.lock();
        let dst = m.get_mut(&(list as usize)).ok_or(Error::Vendor("no such list".into()))?;
        dst.get_mut(..src.len()).ok_or(Error::Vendor("overflow".into()))?.copy_from_slice(src);
        self.flushed.lock().insert(list as usize, src.len());
        Ok(())
    }
    fn capacity(&self, list: *mut DocaBuf) -> Result<usize, Error> {
        self.mem.lock().get(&(list as usize)).map(Vec::len).ok_or(Error::Vendor("no such list".into()))
    }
}

/// Counts what reaches core.
struct Counting(Arc<dyn Handler>, AtomicUsize);

impl Handler for Counting {
    fn register_device(&self, dev: DeviceId) -> Result<(), dpfs_core::HandlerError> {
        self.0.register_device(dev)
    }
    fn unregister_device(&self, dev: DeviceId) {
        self.0.unregister_device(dev)
    }
    fn reset_device(&self, dev: DeviceId) {
        self.0.reset_device(dev)
    }
    fn handle(&self, req: dpfs_core::Request) {
        self.1.fetch_add(1, Ordering::Relaxed);
        self.0.handle(req)
    }
}

struct Fx {
    state: Box<IoState>,
    dma: Arc<FakeDma>,
    core: Arc<Counting>,
    unique: u64,
}

/// Fake request and list addresses, unique across the tests running in parallel.
fn addr() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0x1000);
    NEXT.fetch_add(8, Ordering::Relaxed)
}

fn req() -> *mut DocaDevemuVfsFuseReq {
    addr() as *mut DocaDevemuVfsFuseReq
}

fn status(req: *mut DocaDevemuVfsFuseReq) -> Vec<DocaError> {
    COMPLETED.lock().iter().filter(|(r, _)| *r == req as usize).map(|(_, s)| *s).collect()
}

impl Fx {
    /// A mem file system with file `f` = "hello, doca" (inode 2), INIT done through `on_init`.
    fn new() -> Fx {
        let fs = Arc::new(dpfs_backend_mem::MemFs::new(Default::default()));
        fs.seed_file("f", b"hello, doca").unwrap();
        let d =
            dpfs_core::Dispatcher::new(Default::default(), move |_| Ok(fs.clone() as Arc<dyn dpfs_core::FileSystem>));
        d.register_device(DeviceId(0)).unwrap();
        let core = Arc::new(Counting(Arc::new(d), AtomicUsize::new(0)));
        let dma = Arc::new(FakeDma::default());
        let state = Box::new(IoState { device: DeviceId(0), handler: core.clone(), dma: dma.clone() });
        let mut fx = Fx { state, dma, core, unique: 0 };
        let mut ii = InitIn { major: 7, minor: 45, max_readahead: 1 << 17, ..Default::default() };
        let (r, mut h, mut out, mut io) =
            (req(), fx.hdr(26, 0, std::mem::size_of::<InitIn>(), 0), OutHeader::default(), InitOut::default());
        // SAFETY: every pointer is a valid local for the call; the mem backend answers inline.
        unsafe { on_init(r, fx.user(), &mut h, &mut ii, &mut out, &mut io) };
        assert_eq!(status(r), [DOCA_SUCCESS]);
        assert_eq!((out.error, out.unique, io.major, io.minor), (0, h.unique, 7, 45));
        fx
    }

    fn user(&self) -> *mut c_void {
        (&*self.state as *const IoState).cast_mut().cast()
    }

    fn hdr(&mut self, opcode: u32, nodeid: u64, args: usize, payload: usize) -> InHeader {
        self.unique += 1;
        let len = (IN_HEADER + args + payload) as u32;
        InHeader { len, opcode, unique: self.unique, nodeid, ..Default::default() }
    }

    /// A host list holding `bytes`.
    fn host(&self, bytes: &[u8]) -> *mut DocaBuf {
        let a = addr();
        self.dma.mem.lock().insert(a, bytes.to_vec());
        a as *mut DocaBuf
    }

    fn host_bytes(&self, list: *mut DocaBuf) -> Vec<u8> {
        let n = self.dma.flushed.lock().get(&(list as usize)).copied().unwrap_or(0);
        self.dma.mem.lock().get(&(list as usize)).map(|b| b[..n].to_vec()).unwrap_or_default()
    }

    fn lookup(&mut self, parent: u64, name: &[u8]) -> (i32, EntryOut) {
        let din = self.host(name);
        let (r, mut h) = (req(), self.hdr(1, parent, 0, name.len()));
        let (mut out, mut eo) = (OutHeader::default(), EntryOut::default());
        // SAFETY: as in `new`.
        unsafe { on_lookup(r, self.user(), &mut h, din, &mut out, &mut eo) };
        assert_eq!(status(r).len(), 1, "completed once");
        (out.error, eo)
    }
}

#[test]
fn lookup_getattr_and_forget() {
    let mut fx = Fx::new();
    let (err, eo) = fx.lookup(1, b"f\0");
    assert_eq!((err, eo.nodeid, eo.attr.size), (0, 2, 11));
    assert_eq!(fx.lookup(1, b"nope\0").0, -libc::ENOENT);
    let mut gi = GetattrIn::default();
    let (r, mut h) = (req(), fx.hdr(3, 2, std::mem::size_of::<GetattrIn>(), 0));
    let (mut out, mut ao) = (OutHeader::default(), AttrOut::default());
    // SAFETY: as in `Fx::new`.
    unsafe { on_getattr(r, fx.user(), &mut h, &mut gi, &mut out, &mut ao) };
    assert_eq!(status(r), [DOCA_SUCCESS]);
    assert_eq!((out.error, out.unique, ao.attr.ino, ao.attr.size), (0, h.unique, 2, 11));
    // FORGET: core takes it, nothing is written, the request completes successfully.
    let mut fi = ForgetIn { nlookup: 1 };
    let (r, mut h) = (req(), fx.hdr(2, 2, std::mem::size_of::<ForgetIn>(), 0));
    let before = fx.core.1.load(Ordering::Relaxed);
    // SAFETY: as above.
    unsafe { on_forget(r, fx.user(), &mut h, &mut fi) };
    assert_eq!(status(r), [DOCA_SUCCESS]);
    assert_eq!(fx.core.1.load(Ordering::Relaxed), before + 1);
}

#[test]
fn mkdir_create_and_readdir_into_dataout() {
    let mut fx = Fx::new();
    let mut mi = MkdirIn { mode: 0o755, umask: 0 };
    let din = fx.host(b"d\0");
    let (r, mut h) = (req(), fx.hdr(9, 1, std::mem::size_of::<MkdirIn>(), 2));
    let (mut out, mut eo) = (OutHeader::default(), EntryOut::default());
    // SAFETY: as in `Fx::new`.
    unsafe { on_mkdir(r, fx.user(), &mut h, &mut mi, din, &mut out, &mut eo) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    assert_eq!(eo.attr.mode & libc::S_IFMT, libc::S_IFDIR);
    let dir = eo.nodeid;
    assert_eq!(fx.lookup(1, b"d\0").1.nodeid, dir);
    // CREATE d/x: entry_out then open_out.
    let mut ci = CreateIn { flags: libc::O_RDWR as u32, mode: libc::S_IFREG | 0o644, ..Default::default() };
    let din = fx.host(b"x\0");
    let (r, mut h) = (req(), fx.hdr(35, dir, std::mem::size_of::<CreateIn>(), 2));
    let (mut out, mut eo, mut oo) = (OutHeader::default(), EntryOut::default(), OpenOut::default());
    // SAFETY: as above.
    unsafe { on_create(r, fx.user(), &mut h, &mut ci, din, &mut out, &mut eo, &mut oo) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    assert_eq!(fx.lookup(dir, b"x\0").1.nodeid, eo.nodeid);
    assert_ne!(eo.nodeid, 0);
    // OPENDIR + READDIR: the dirents land in the host's dataout buffer.
    let mut oi = OpenIn::default();
    let (r, mut h) = (req(), fx.hdr(27, dir, std::mem::size_of::<OpenIn>(), 0));
    let (mut out, mut oo) = (OutHeader::default(), OpenOut::default());
    // SAFETY: as above.
    unsafe { on_opendir(r, fx.user(), &mut h, &mut oi, &mut out, &mut oo) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    let dout = fx.host(&[0u8; 4096]);
    let mut ri = ReadIn { fh: oo.fh, offset: 0, size: 4096, ..Default::default() };
    let (r, mut h) = (req(), fx.hdr(28, dir, std::mem::size_of::<ReadIn>(), 0));
    let mut out = OutHeader::default();
    // SAFETY: as above.
    unsafe { on_readdir(r, fx.user(), &mut h, &mut ri, &mut out, dout) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    let ents = fx.host_bytes(dout);
    assert_eq!(out.len as usize, 16 + ents.len());
    let mut names = Vec::new();
    let mut rest = &ents[..];
    while let Ok((d, tail)) = zerocopy::FromBytes::read_from_prefix(rest) {
        let d: Dirent = d;
        names.push(tail[..d.namelen as usize].to_vec());
        rest = &tail[(d.namelen as usize).next_multiple_of(8)..];
    }
    assert!(names.contains(&b"x".to_vec()), "{names:?}");
}

#[test]
fn setxattr_then_getxattr_size_and_value() {
    let mut fx = Fx::new();
    // Without SETXATTR_EXT the guest sends the 8-byte compat setxattr_in: the in-header's
    // length says so and the rebuilt message keeps it.
    let mut si = SetxattrIn { size: 3, ..Default::default() };
    let din = fx.host(b"user.k\0abc");
    let (r, mut h) = (req(), fx.hdr(21, 2, 8, 10));
    let mut out = OutHeader::default();
    // SAFETY: as in `Fx::new`.
    unsafe { on_setxattr(r, fx.user(), &mut h, &mut si, din, &mut out) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    // size 0: the value's length in getxattr_out, nothing in dataout.
    let getx = |fx: &mut Fx, size: u32, dout_len: usize| {
        let mut gi = GetxattrIn { size, padding: 0 };
        let (din, dout) = (fx.host(b"user.k\0"), fx.host(&vec![0u8; dout_len]));
        let (r, mut h) = (req(), fx.hdr(22, 2, std::mem::size_of::<GetxattrIn>(), 7));
        let (mut out, mut go) = (OutHeader::default(), GetxattrOut::default());
        // SAFETY: as above.
        unsafe { on_getxattr(r, fx.user(), &mut h, &mut gi, din, &mut out, &mut go, dout) };
        (status(r), out, go, dout)
    };
    let (st, out, go, _) = getx(&mut fx, 0, 0);
    assert_eq!((st, out.error, go.size), (vec![DOCA_SUCCESS], 0, 3));
    let (st, out, go, dout) = getx(&mut fx, 16, 16);
    assert_eq!((st, out.error, go.size), (vec![DOCA_SUCCESS], 0, 0));
    assert_eq!(fx.host_bytes(dout), b"abc");
    // A value larger than the host's dataout: an error status, the buffer untouched.
    let (st, out, _, dout) = getx(&mut fx, 16, 2);
    assert_eq!(st, [DOCA_ERROR_UNKNOWN]);
    assert_ne!(out.error, 0);
    assert_eq!(fx.dma.mem.lock().get(&(dout as usize)).unwrap(), &[0u8; 2]);
}

#[test]
fn datain_dma_failure_never_reaches_the_backend() {
    let mut fx = Fx::new();
    let mut mi = MkdirIn { mode: 0o755, umask: 0 };
    let din = fx.host(b"d\0");
    fx.dma.broken.lock().insert(din as usize);
    let (r, mut h) = (req(), fx.hdr(9, 1, std::mem::size_of::<MkdirIn>(), 2));
    let (mut out, mut eo) = (OutHeader::default(), EntryOut::default());
    let before = fx.core.1.load(Ordering::Relaxed);
    // SAFETY: as in `Fx::new`.
    unsafe { on_mkdir(r, fx.user(), &mut h, &mut mi, din, &mut out, &mut eo) };
    assert_eq!(status(r), [DOCA_ERROR_UNKNOWN]);
    assert_eq!(fx.core.1.load(Ordering::Relaxed), before, "core never saw it");
    assert_eq!(out.unique, 0, "no reply header was written");
    assert_eq!(fx.lookup(1, b"d\0").0, -libc::ENOENT);
    // An in-header whose length disagrees with the payload is refused the same way.
    let din = fx.host(b"d\0");
    let (r, mut h) = (req(), fx.hdr(9, 1, std::mem::size_of::<MkdirIn>() + 64, 2));
    // SAFETY: as above.
    unsafe { on_mkdir(r, fx.user(), &mut h, &mut mi, din, &mut out, &mut eo) };
    assert_eq!(status(r), [DOCA_ERROR_UNKNOWN]);
    assert_eq!(fx.core.1.load(Ordering::Relaxed), before + 1, "only the LOOKUP reached core");
}

#[test]
fn read_and_write_go_through_core() {
    let mut fx = Fx::new();
    let mut oi = OpenIn { flags: libc::O_RDWR as u32, ..Default::default() };
    let (r, mut h) = (req(), fx.hdr(14, 2, std::mem::size_of::<OpenIn>(), 0));
    let (mut out, mut oo) = (OutHeader::default(), OpenOut::default());
    // SAFETY: as in `Fx::new`.
    unsafe { on_open(r, fx.user(), &mut h, &mut oi, &mut out, &mut oo) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    let mut wi = WriteIn { fh: oo.fh, offset: 0, size: 5, ..Default::default() };
    let din = fx.host(b"HELLO");
    let (r, mut h) = (req(), fx.hdr(16, 2, std::mem::size_of::<WriteIn>(), 5));
    let (mut out, mut wo) = (OutHeader::default(), WriteOut::default());
    // SAFETY: as above.
    unsafe { on_write(r, fx.user(), &mut h, &mut wi, din, &mut out, &mut wo) };
    assert_eq!((status(r), out.error, wo.size), (vec![DOCA_SUCCESS], 0, 5));
    let mut ri = ReadIn { fh: oo.fh, offset: 0, size: 11, ..Default::default() };
    let dout = fx.host(&[0u8; 11]);
    let (r, mut h) = (req(), fx.hdr(15, 2, std::mem::size_of::<ReadIn>(), 0));
    let mut out = OutHeader::default();
    // SAFETY: as above.
    unsafe { on_read(r, fx.user(), &mut h, &mut ri, &mut out, dout) };
    assert_eq!((status(r), out.error), (vec![DOCA_SUCCESS], 0));
    assert_eq!(fx.host_bytes(dout), b"HELLO, doca");
}

#[test]
fn every_registered_op_is_a_fuse_opcode_core_knows() {
    let mut seen = HashSet::new();
    for (name, code) in REGISTERED {
        assert!(!matches!(Opcode::from_u32(*code), Opcode::Unknown(_)), "{name}");
        assert!(seen.insert(*code), "{name} twice");
    }
    for op in ["init", "lookup", "forget", "getattr", "readdirplus", "create", "statx", "copy_file_range", "syncfs"] {
        assert!(REGISTERED.iter().any(|(n, _)| *n == op), "{op}");
    }
    assert_eq!(REGISTERED.len(), 41);
}
