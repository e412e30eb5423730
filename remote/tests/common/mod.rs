//! Test harness: an in-process gateway over the mem backend, a forwarder, a tiny guest that
//! sends FUSE requests through any `Handler`, and a TCP proxy that can reset or stall.
#![allow(dead_code)]

use dpfs_core::abi::{self, EntryOut, OutHeader};
use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
use dpfs_core::{owned_request, DeviceId, Handler, OwnedReply};
use dpfs_remote::{Forwarder, ForwarderConfig, Gateway, GatewayConfig, GatewayHandle, Key};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use zerocopy::FromBytes;

pub const KEY: &[u8] = b"test key: sixteen bytes at least";

pub fn key() -> Key {
    Key::new(KEY).unwrap()
}

/// A gateway over fresh mem backends on `addr` (port 0: any).
pub fn gateway_on(addr: SocketAddr, key: Key) -> GatewayHandle {
    let cfg = GatewayConfig {
        key,
        threads: 2,
        session: Default::default(),
        factory: Arc::new(|_| Ok(Arc::new(dpfs_backend_mem::MemFs::default()) as Arc<dyn dpfs_core::FileSystem>)),
    };
    // A restarted gateway binds the port its predecessor just closed: retry briefly.
    for _ in 0..100 {
        let cfg =
            GatewayConfig { key: cfg.key.clone(), factory: cfg.factory.clone(), session: cfg.session.clone(), ..cfg };
        match Gateway::bind(addr, cfg) {
            Ok(g) => return g.start().unwrap(),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("bind {addr}: {e}"),
        }
    }
    panic!("cannot bind {addr}")
}

pub fn gateway() -> GatewayHandle {
    gateway_on("127.0.0.1:0".parse().unwrap(), key())
}

pub fn forwarder(addr: SocketAddr, key: Key, deadline: Duration) -> Arc<Forwarder> {
    let mut cfg = ForwarderConfig::new(vec![addr], key, "test".into());
    cfg.deadline = deadline;
    cfg.connect_timeout = Duration::from_secs(2);
    let f = Arc::new(Forwarder::start(cfg).unwrap());
    f.register_device(DeviceId(0)).unwrap();
    f
}

/// A guest over a handler, device 0.
pub struct Guest {
    pub h: Arc<dyn Handler>,
    unique: AtomicU64,
}

impl Guest {
    pub fn new(h: Arc<dyn Handler>) -> Guest {
        Guest { h, unique: AtomicU64::new(1) }
    }

    pub fn send(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> mpsc::Receiver<OwnedReply> {
        let unique = self.unique.fetch_add(1, Ordering::Relaxed);
        let h = MessageHeader { unique, nodeid, uid: 0, gid: 0, pid: 7 };
        let msg = encode_message(h, op, payload, None, Layout::default());
        let (tx, rx) = mpsc::channel();
        let req = owned_request(DeviceId(0), vec![msg], &[16, reply], move |r| {
            let _ = tx.send(r);
        });
        self.h.handle(req);
        rx
    }

    /// The reply body or the errno (ETIMEDOUT if no reply came in 20 s: a hang).
    pub fn call(&self, nodeid: u64, op: &Operation<'_>, payload: &[u8], reply: usize) -> Result<Vec<u8>, i32> {
        let rx = self.send(nodeid, op, payload, reply);
        body(rx.recv_timeout(Duration::from_secs(20)).map_err(|_| libc::ETIMEDOUT)?)
    }

    pub fn init(&self) -> Result<abi::InitOut, i32> {
        let arg = abi::InitIn {
            major: 7,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: 128 << 10,
            flags: u32::MAX,
            flags2: u32::MAX,
            unused: [0; 11],
        };
        let b = self.call(1, &Operation::Init(arg), &[], 4096)?;
        Ok(abi::InitOut::read_from_prefix(&b).map_err(|_| libc::EPROTO)?.0)
    }

    pub fn mkdir(&self, parent: u64, name: &str) -> Result<EntryOut, i32> {
        let arg = abi::MkdirIn { mode: 0o755, umask: 0 };
        let b = self.call(parent, &Operation::Mkdir { arg, name: name.as_bytes() }, &[], 256)?;
        Ok(EntryOut::read_from_prefix(&b).map_err(|_| libc::EPROTO)?.0)
    }

    /// CREATE with O_EXCL: running it twice would answer EEXIST.
    pub fn create_excl(&self, parent: u64, name: &str) -> Result<(u64, u64), i32> {
        let arg = abi::CreateIn {
            flags: (libc::O_CREAT | libc::O_EXCL | libc::O_RDWR) as u32,
            mode: 0o644 | libc::S_IFREG,
            umask: 0,
            open_flags: 0,
        };
        let b = self.call(parent, &Operation::Create { arg, name: name.as_bytes() }, &[], 256)?;
        let e = EntryOut::read_from_prefix(&b).map_err(|_| libc::EPROTO)?.0;
        let o = abi::OpenOut::read_from_prefix(b.get(std::mem::size_of::<EntryOut>()..).unwrap_or_default())
            .map_err(|_| libc::EPROTO)?
            .0;
        Ok((e.nodeid, o.fh))
    }

    pub fn write(&self, ino: u64, fh: u64, off: u64, data: &[u8]) -> Result<u32, i32> {
        let arg = abi::WriteIn { fh, offset: off, size: data.len() as u32, ..Default::default() };
        let b = self.call(ino, &Operation::Write(arg), data, 16)?;
        Ok(abi::WriteOut::read_from_prefix(&b).map_err(|_| libc::EPROTO)?.0.size)
    }

    pub fn read(&self, ino: u64, fh: u64, off: u64, size: u32) -> Result<Vec<u8>, i32> {
        let arg = abi::ReadIn { fh, offset: off, size, ..Default::default() };
        self.call(ino, &Operation::Read(arg), &[], size as usize)
    }

    pub fn lookup(&self, parent: u64, name: &str) -> Result<EntryOut, i32> {
        let b = self.call(parent, &Operation::Lookup { name: name.as_bytes() }, &[], 256)?;
        Ok(EntryOut::read_from_prefix(&b).map_err(|_| libc::EPROTO)?.0)
    }
}

pub fn body(r: OwnedReply) -> Result<Vec<u8>, i32> {
    let bytes = r.bytes();
    let (h, rest) = OutHeader::read_from_prefix(&bytes).map_err(|_| libc::EPROTO)?;
    assert_eq!(h.len as usize, bytes.len(), "out-header length matches the bytes written");
    if h.error != 0 {
        return Err(-h.error);
    }
    Ok(rest.to_vec())
}

/// A TCP proxy in front of `target`: `reset()` drops every connection (with RST),
/// `stall(true)` stops moving bytes (connections stay open).
pub struct Proxy {
    pub addr: SocketAddr,
    stalled: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
    pub accepted: Arc<AtomicU64>,
}

impl Proxy {
    pub fn start(target: SocketAddr) -> Proxy {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let stalled = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let accepted = Arc::new(AtomicU64::new(0));
        let (st, cs, acc) = (stalled.clone(), conns.clone(), accepted.clone());
        std::thread::spawn(move || {
            for c in l.incoming() {
                let Ok(c) = c else { continue };
                let Ok(s) = TcpStream::connect(target) else { continue };
                acc.fetch_add(1, Ordering::Relaxed);
                c.set_nodelay(true).unwrap();
                s.set_nodelay(true).unwrap();
                {
                    let mut v = cs.lock().unwrap();
                    v.push(c.try_clone().unwrap());
                    v.push(s.try_clone().unwrap());
                }
                for (a, b) in [(c.try_clone().unwrap(), s.try_clone().unwrap()), (s, c)] {
                    let st = st.clone();
                    std::thread::spawn(move || pipe(a, b, st));
                }
            }
        });
        Proxy { addr, stalled, conns, accepted }
    }

    pub fn stall(&self, on: bool) {
        self.stalled.store(on, Ordering::SeqCst);
    }

    /// Resets every connection (SO_LINGER 0 then close: the peers see a TCP reset).
    pub fn reset(&self) {
        for s in self.conns.lock().unwrap().drain(..) {
            set_linger0(&s);
            let _ = s.shutdown(std::net::Shutdown::Both);
        }
    }
}

fn set_linger0(s: &TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: setsockopt with a valid fd and a linger struct of the right size.
    unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as u32,
        );
    }
}

fn pipe(mut from: TcpStream, mut to: TcpStream, stalled: Arc<AtomicBool>) {
    use std::io::{Read, Write};
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        while stalled.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
    let _ = from.shutdown(std::net::Shutdown::Both);
}
