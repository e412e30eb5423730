//! Fault injection through `dpfs serve --backend mem`: malformed descriptor chains, malformed
//! FUSE messages, requests racing FORGET, guest resets and frontend reconnects. Every case
//! checks that the daemon survives (still running, a GETATTR round trip works), that every
//! chain comes back on the used ring, that an error reply carries the right errno where one
//! fits, and that the file system is consistent afterwards.

mod common;

use common::Daemon;
use dpfs_core::abi::{self, init, InHeader, ROOT_ID};
use dpfs_core::operation::{Layout, Operation};
use dpfs_sim::client::{call_on, LINUX_INIT_FLAGS};
use dpfs_sim::memory::{GuestMemory, GUEST_BASE};
use dpfs_sim::queue::SlotConfig;
use dpfs_sim::virtq::SplitQueue;
use dpfs_sim::VhostUserDevice;
use dpfs_sim::{Client, ClientOptions, DeviceOptions, FsQueue, RawArea, RawCompletion, RawDesc, Reply, Request, Token};
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_user::VhostUserFrontend;
use vhost::VhostBackend;
use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use zerocopy::{FromBytes, IntoBytes};

const TIMEOUT: Duration = Duration::from_secs(5);
const NEXT: u16 = VRING_DESC_F_NEXT as u16;
const WRITE: u16 = VRING_DESC_F_WRITE as u16;
const GETATTR: u32 = 3;
const LOOKUP: u32 = 1;
const IN_HEADER: usize = 40;
const OUT_HEADER: usize = 16;
/// `fuse_attr_out`.
const ATTR_OUT: usize = 104;
const SLOTS: SlotConfig = SlotConfig { depth: 16, max_payload: 64 << 10, max_reply: 64 << 10 };

/// A guest built from the sim's parts, so a test controls INIT, raw chains and the rings.
struct Guest {
    dev: VhostUserDevice,
    mem: Arc<GuestMemory>,
    hiprio: FsQueue,
    queues: Vec<FsQueue>,
    unique: Arc<AtomicU64>,
    ring: DeviceOptions,
}

impl Guest {
    /// Connects (without INIT) with `nq` request queues of 64 entries.
    fn connect(socket: &Path, nq: usize) -> Guest {
        let mem = Arc::new(GuestMemory::new(48 << 20).unwrap());
        let ring = DeviceOptions { request_queues: nq, queue_size: 64, ..Default::default() };
        let (dev, vqs) = VhostUserDevice::connect(socket, mem.clone(), &ring).unwrap();
        let unique = Arc::new(AtomicU64::new(2));
        let mut queues: Vec<FsQueue> = vqs
            .into_iter()
            .enumerate()
            .map(|(i, vq)| FsQueue::new(i, vq, mem.clone(), SLOTS, unique.clone()).unwrap())
            .collect();
        let hiprio = queues.remove(0);
        Guest { dev, mem, hiprio, queues, unique, ring }
    }

    /// Connects and sends INIT.
    fn connect_init(socket: &Path, nq: usize) -> Guest {
        let mut g = Guest::connect(socket, nq);
        g.init().ok().unwrap();
        g
    }

    /// Sends INIT on request queue 0 and sets the wire layout from its reply.
    fn init(&mut self) -> Reply {
        let arg = abi::InitIn {
            major: abi::KERNEL_VERSION,
            minor: abi::KERNEL_MINOR_VERSION,
            max_readahead: 128 << 10,
            flags: LINUX_INIT_FLAGS as u32,
            flags2: (LINUX_INIT_FLAGS >> 32) as u32,
            unused: [0; 11],
        };
        let r = self.call(&Request::new(0, Operation::Init(arg)));
        if r.header.error == 0 {
            let out: abi::InitOut = r.parse_prefix();
            let flags = out.flags as u64 | ((out.flags2 as u64) << 32);
            let layout = Layout { minor: out.minor, setxattr_ext: flags & init::SETXATTR_EXT != 0 };
            for q in self.queues.iter_mut().chain(std::iter::once(&mut self.hiprio)) {
                q.set_layout(layout);
            }
        }
        r
    }

    fn call(&mut self, req: &Request<'_>) -> Reply {
        call_on(&mut self.queues[0], req, TIMEOUT).unwrap()
    }

    /// GETATTR of the root must succeed.
    fn getattr_root(&mut self) -> abi::AttrOut {
        let r = self.call(&Request::new(ROOT_ID, Operation::Getattr(abi::GetattrIn::default())));
        r.ok().unwrap().parse().unwrap()
    }

    /// Submits a raw chain on request queue 0 and waits for the device to return it.
    fn raw(&mut self, build: impl FnOnce(&GuestMemory, &RawArea) -> Vec<RawDesc>) -> RawCompletion {
        let q = &mut self.queues[0];
        let t = q.submit_raw(|m, a| Ok(build(m, a))).unwrap();
        wait_for(q, t);
        let c = q.take_raw(t).unwrap();
        assert_eq!(q.outstanding(), 0);
        c
    }

    /// The out-header the device wrote at guest address `at`.
    fn out_header_at(&self, at: u64) -> abi::OutHeader {
        let mut raw = [0u8; OUT_HEADER];
        self.mem.read(vm_memory::GuestAddress(at), &mut raw).unwrap();
        abi::OutHeader::read_from_bytes(&raw).unwrap()
    }

    /// One past the last byte of guest memory.
    fn mem_end(&self) -> u64 {
        GUEST_BASE + self.mem.size() as u64
    }

    /// Stops every ring as QEMU does on a guest reset (GET_VRING_BASE: the device finishes
    /// what it started), then sets fresh rings up in the same memory. Returns the old request
    /// queues, whose used rings still hold what the device returned before it stopped.
    fn restart_rings(&mut self) -> Vec<FsQueue> {
        let n = 1 + self.queues.len();
        for i in 0..n {
            self.dev.frontend().get_vring_base(i).unwrap();
        }
        let mut fresh = Vec::with_capacity(n);
        for i in 0..n {
            let vq = SplitQueue::new(self.mem.clone(), self.ring.queue_size, self.dev.negotiated().ring).unwrap();
            let fe = self.dev.frontend();
            fe.set_vring_num(i, vq.size()).unwrap();
            fe.set_vring_addr(i, &vq.config().unwrap()).unwrap();
            fe.set_vring_base(i, 0).unwrap();
            fe.set_vring_call(i, vq.call_fd()).unwrap();
            fe.set_vring_kick(i, vq.kick_fd()).unwrap();
            fe.set_vring_enable(i, true).unwrap();
            fresh.push(FsQueue::new(i, vq, self.mem.clone(), SLOTS, self.unique.clone()).unwrap());
        }
        self.hiprio = fresh.remove(0);
        std::mem::replace(&mut self.queues, fresh)
    }
}

/// Waits (bounded) until `t` completes on `q`.
fn wait_for(q: &mut FsQueue, t: Token) {
    let deadline = Instant::now() + TIMEOUT;
    let mut done = Vec::new();
    while !done.contains(&t) {
        assert!(Instant::now() < deadline, "chain not returned on the used ring");
        q.wait(&mut done, Some(TIMEOUT)).unwrap();
    }
}

fn in_header(opcode: u32, unique: u64, nodeid: u64, len: usize) -> InHeader {
    InHeader { len: len as u32, opcode, unique, nodeid, uid: 0, gid: 0, pid: 1, total_extlen: 0, padding: 0 }
}

/// Writes a GETATTR of the root (header + args, 56 bytes) at `a.msg` with `len` in its
/// header; returns the guest address.
fn put_getattr(m: &GuestMemory, a: &RawArea, unique: u64, len: usize) -> u64 {
    let mut msg = in_header(GETATTR, unique, ROOT_ID, len).as_bytes().to_vec();
    msg.extend_from_slice(abi::GetattrIn::default().as_bytes());
    m.write(a.msg, &msg).unwrap();
    a.msg.0
}

fn rd(addr: u64, len: usize, next: Option<u16>) -> RawDesc {
    RawDesc { addr, len: len as u32, flags: if next.is_some() { NEXT } else { 0 }, next: next.unwrap_or(0) }
}

fn wr(addr: u64, len: usize, next: Option<u16>) -> RawDesc {
    RawDesc { flags: WRITE | rd(addr, len, next).flags, ..rd(addr, len, next) }
}

/// A well-formed GETATTR reply room.
fn out(a: &RawArea, next: Option<u16>) -> RawDesc {
    wr(a.reply.0, OUT_HEADER + ATTR_OUT, next)
}

/// Asserts a chain came back with exactly an error reply `errno` for request `unique`.
fn assert_error(c: &RawCompletion, unique: u64, errno: i32) {
    assert_eq!(c.used_len as usize, OUT_HEADER, "{c:?}");
    let h = c.header.unwrap();
    assert_eq!((h.error, h.unique, h.len as usize), (-errno, unique, OUT_HEADER), "{c:?}");
}

/// Asserts a chain came back with no reply written.
fn assert_dropped(c: &RawCompletion) {
    assert_eq!(c.used_len, 0, "{c:?}");
}

/// The daemon is alive, a GETATTR round trip works on this connection and, after it is
/// closed, on a new one.
fn assert_healthy(d: &mut Daemon, g: Guest) {
    let mut g = g;
    assert_eq!(g.getattr_root().attr.ino, ROOT_ID);
    d.assert_alive();
    drop(g);
    let c = connect_client(&d.socket, 1);
    assert_eq!(c.getattr(ROOT_ID, None).unwrap().attr.ino, ROOT_ID);
    drop(c);
    d.assert_alive();
}

/// A sim client, retrying (bounded) while the daemon still tears the last connection down.
fn connect_client(socket: &Path, nq: usize) -> Client {
    let deadline = Instant::now() + TIMEOUT;
    let device = DeviceOptions { request_queues: nq, queue_size: 64, ..Default::default() };
    let opts = ClientOptions { device, depth: 16, max_payload: 64 << 10, max_reply: 64 << 10, ..Default::default() };
    loop {
        match Client::connect(socket, &ClientOptions { timeout: TIMEOUT, ..opts.clone() }) {
            Ok(c) => return c,
            Err(e) if Instant::now() < deadline => {
                eprintln!("reconnect: {e}");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("cannot reconnect: {e}"),
        }
    }
}

fn daemon(queues: usize) -> Option<Daemon> {
    Daemon::dpfs("mem", queues)
}

#[test]
fn descriptor_outside_guest_memory() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let far = g.mem_end() + 0x10_0000;
    // The head itself points nowhere: nothing to answer.
    let c = g.raw(|_, _| vec![rd(far, 56, None)]);
    assert_dropped(&c);
    // A good header, then a reply buffer outside memory: no room for an answer.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 100, 56), 56, Some(1)), wr(far, 120, None)]);
    assert_dropped(&c);
    // A good header and out-header, then a bad buffer: answered EIO.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 102, 56), 56, Some(1)), out(a, Some(2)), wr(0x1000, 64, None)]);
    assert_error(&c, 102, libc::EIO);
    assert_healthy(&mut d, g);
}

#[test]
fn descriptor_loop() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    // Two readable descriptors pointing at each other.
    let c = g.raw(|m, a| {
        let h = put_getattr(m, a, 200, 56);
        vec![rd(h, 40, Some(1)), rd(h + 40, 16, Some(0))]
    });
    assert_dropped(&c);
    // header → out → extra writable → back to out: the loop is in the writable part, so an
    // out-header fits and the chain is answered EIO.
    let c = g.raw(|m, a| {
        let h = put_getattr(m, a, 202, 56);
        vec![rd(h, 56, Some(1)), out(a, Some(2)), wr(a.reply.0 + 4096, 64, Some(1))]
    });
    assert_error(&c, 202, libc::EIO);
    // A next index past the table.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 204, 56), 56, Some(1)), out(a, Some(5000))]);
    assert_error(&c, 204, libc::EIO);
    assert_healthy(&mut d, g);
}

#[test]
fn zero_length_descriptor() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    // Zero-length buffers inside a chain are skipped: the GETATTR is answered normally.
    let c = g.raw(|m, a| {
        let h = put_getattr(m, a, 300, 56);
        vec![rd(h, 40, Some(1)), rd(h, 0, Some(2)), rd(h + 40, 16, Some(3)), wr(a.reply.0, 0, Some(4)), out(a, None)]
    });
    assert_eq!(c.used_len as usize, OUT_HEADER + ATTR_OUT, "{c:?}");
    let h = c.header.unwrap();
    assert_eq!((h.error, h.unique), (0, 300));
    // A chain of one zero-length descriptor: nothing to read, nothing to answer.
    let c = g.raw(|_, a| vec![rd(a.msg.0, 0, None)]);
    assert_dropped(&c);
    // A header and a zero-length reply buffer: no room for an answer.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 302, 56), 56, Some(1)), wr(a.reply.0, 0, None)]);
    assert_dropped(&c);
    assert_healthy(&mut d, g);
}

#[test]
fn oversized_descriptor() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let last_page = g.mem_end() - 4096;
    // The reply buffer starts inside memory and runs past its end.
    // The part inside memory is a valid prefix of the writable buffers, so the error reply
    // goes there.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 400, 56), 56, Some(1)), wr(last_page, 1 << 20, None)]);
    assert_eq!(c.used_len as usize, OUT_HEADER, "{c:?}");
    let h = g.out_header_at(last_page);
    assert_eq!((h.error, h.unique, h.len as usize), (-libc::EIO, 400, OUT_HEADER));
    // A readable buffer of u32::MAX bytes.
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 402, 56), u32::MAX as usize, Some(1)), out(a, None)]);
    assert_dropped(&c);
    // After a good out-header: answered EIO.
    let c = g.raw(|m, a| {
        vec![rd(put_getattr(m, a, 404, 56), 56, Some(1)), out(a, Some(2)), wr(last_page, u32::MAX as usize, None)]
    });
    assert_error(&c, 404, libc::EIO);
    assert_healthy(&mut d, g);
}

#[test]
fn in_header_in_a_write_only_descriptor() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    // No readable part at all: there is no request header, so the reply (in the first
    // writable buffer, where the header was) can only say the request was invalid.
    let mut at = 0;
    let c = g.raw(|m, a| {
        at = put_getattr(m, a, 500, 56);
        vec![wr(at, 56, Some(1)), out(a, None)]
    });
    assert_eq!(c.used_len as usize, OUT_HEADER, "{c:?}");
    let h = g.out_header_at(at);
    assert_eq!((h.error, h.unique, h.len as usize), (-libc::EINVAL, 0, OUT_HEADER), "{h:?}");
    // Readable after writable.
    let c = g.raw(|m, a| {
        let h = put_getattr(m, a, 502, 56);
        vec![wr(h, 40, Some(1)), rd(h + 40, 16, Some(2)), out(a, None)]
    });
    assert_dropped(&c);
    assert_healthy(&mut d, g);
}

#[test]
fn in_header_len_lies() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    for (unique, len) in [(600, 56 + 100), (602, 4096), (604, u32::MAX as usize), (606, 48), (608, 40), (610, 0)] {
        let c = g.raw(|m, a| vec![rd(put_getattr(m, a, unique, len), 56, Some(1)), out(a, None)]);
        assert_error(&c, unique, libc::EINVAL);
    }
    // The chain carries more than `len` says (trailing garbage after a correct message).
    let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 612, 56), 56 + 64, Some(1)), out(a, None)]);
    assert_error(&c, 612, libc::EINVAL);
    assert_healthy(&mut d, g);
}

#[test]
fn unterminated_name() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let entry_out = 128;
    for (unique, name) in [(700u64, &b"abc"[..]), (702, b""), (704, &[b'x'; 300][..])] {
        let c = g.raw(|m, a| {
            let len = IN_HEADER + name.len();
            let mut msg = in_header(LOOKUP, unique, ROOT_ID, len).as_bytes().to_vec();
            msg.extend_from_slice(name);
            m.write(a.msg, &msg).unwrap();
            vec![rd(a.msg.0, len, Some(1)), wr(a.reply.0, OUT_HEADER + entry_out, None)]
        });
        assert_error(&c, unique, libc::EINVAL);
    }
    assert_healthy(&mut d, g);
}

#[test]
fn unknown_opcodes() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    for (i, opcode) in [7u32, 19, 60, 4096, u32::MAX].into_iter().enumerate() {
        let unique = 800 + 2 * i as u64;
        let c = g.raw(|m, a| {
            let mut msg = in_header(opcode, unique, ROOT_ID, 56).as_bytes().to_vec();
            msg.extend_from_slice(&[0u8; 16]);
            m.write(a.msg, &msg).unwrap();
            vec![rd(a.msg.0, 56, Some(1)), out(a, None)]
        });
        assert_error(&c, unique, libc::ENOSYS);
    }
    assert_healthy(&mut d, g);
}

#[test]
fn request_before_init() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect(&d.socket, 1);
    let r = g.call(&Request::new(ROOT_ID, Operation::Getattr(abi::GetattrIn::default())));
    assert_eq!(r.header.error, -libc::EIO);
    let r = g.call(&Request::new(ROOT_ID, Operation::Lookup { name: b"x" }));
    assert_eq!(r.header.error, -libc::EIO);
    g.init().ok().unwrap();
    assert_healthy(&mut d, g);
}

#[test]
fn lookup_races_forget_on_two_queues() {
    let Some(mut d) = daemon(2) else { return };
    let c = connect_client(&d.socket, 2);
    let (e, o) = c.create(ROOT_ID, b"f", libc::O_RDWR as u32, 0o644).unwrap();
    c.release(e.nodeid, o.fh, 0).unwrap();
    const ROUNDS: usize = 300;
    std::thread::scope(|s| {
        for q in 0..2 {
            let c = &c;
            s.spawn(move || {
                for _ in 0..ROUNDS {
                    let r = c.call_queue(q, &Request::new(ROOT_ID, Operation::Lookup { name: b"f" }));
                    let entry: abi::EntryOut = r.unwrap().ok().unwrap().parse().unwrap();
                    assert_eq!(entry.nodeid, e.nodeid);
                    c.forget(entry.nodeid, 1).unwrap();
                }
            });
        }
        // Meanwhile a third thread takes and drops extra references in one go.
        s.spawn(|| {
            for _ in 0..ROUNDS / 10 {
                let n = c.lookup(ROOT_ID, b"f").unwrap().nodeid;
                assert_eq!(c.getattr(n, None).unwrap().attr.nlink, 1);
                c.forget(n, 1).unwrap();
            }
        });
    });
    // Our own reference from CREATE is still held: the node is the same and works.
    let again = c.lookup(ROOT_ID, b"f").unwrap();
    assert_eq!(again.nodeid, e.nodeid);
    let attr = c.getattr(again.nodeid, None).unwrap().attr;
    assert_eq!((attr.nlink, attr.size), (1, 0));
    c.forget(again.nodeid, 2).unwrap();
    // Once every reference is gone a new lookup still works.
    let fresh = c.lookup(ROOT_ID, b"f").unwrap();
    assert_eq!(c.getattr(fresh.nodeid, None).unwrap().attr.nlink, 1);
    drop(c);
    d.assert_alive();
    let g = Guest::connect_init(&d.socket, 1);
    assert_healthy(&mut d, g);
}

/// Creates `name` in the root and returns (nodeid, fh).
fn create(g: &mut Guest, name: &[u8]) -> (u64, u64) {
    let arg = abi::CreateIn { flags: libc::O_RDWR as u32, mode: 0o644, umask: 0, open_flags: 0 };
    let r = g.call(&Request::new(ROOT_ID, Operation::Create { arg, name })).ok().unwrap();
    let e: abi::EntryOut = r.parse().unwrap();
    let o: abi::OpenOut = abi::OpenOut::read_from_prefix(&r.body[std::mem::size_of::<abi::EntryOut>()..]).unwrap().0;
    (e.nodeid, o.fh)
}

const BLOCK: usize = 4096;

/// Submits a WRITE of block `i` (filled with `i + 1`) without waiting.
fn submit_write(q: &mut FsQueue, node: u64, fh: u64, i: usize, data: &mut Vec<u8>) -> Token {
    data.clear();
    data.resize(BLOCK, i as u8 + 1);
    let arg = abi::WriteIn { fh, offset: (i * BLOCK) as u64, size: BLOCK as u32, ..Default::default() };
    q.submit(&Request::with_payload(node, Operation::Write(arg), data)).unwrap()
}

/// The file holds, for each block, either the data of its write or zeroes (a write lost in a
/// reset), and every write that was acknowledged is there; its size is a block boundary.
fn assert_blocks(c: &Client, name: &[u8], blocks: usize, acked: &[usize]) {
    let e = c.lookup(ROOT_ID, name).unwrap();
    let size = c.getattr(e.nodeid, None).unwrap().attr.size as usize;
    assert_eq!(size % BLOCK, 0, "size {size}");
    assert!(size <= blocks * BLOCK, "size {size}");
    let o = c.open(e.nodeid, libc::O_RDONLY as u32).unwrap();
    let data = c.read(e.nodeid, o.fh, 0, (blocks * BLOCK) as u32).unwrap();
    assert_eq!(data.len(), size);
    for (i, b) in data.chunks(BLOCK).enumerate() {
        let want = i as u8 + 1;
        assert!(b.iter().all(|&x| x == want) || b.iter().all(|&x| x == 0), "block {i} is torn");
        if acked.contains(&i) {
            assert!(b.iter().all(|&x| x == want), "acknowledged block {i} lost");
        }
    }
    for &i in acked {
        assert!((i + 1) * BLOCK <= size, "acknowledged block {i} beyond size {size}");
    }
    c.release(e.nodeid, o.fh, 0).unwrap();
}

#[test]
fn guest_reset_with_requests_in_flight() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let (node, fh) = create(&mut g, b"f");
    const BURST: usize = 12;
    let mut data = Vec::new();
    // Blocks 0..4 are written and acknowledged; 4..12 are in flight when the guest resets.
    let mut acked: Vec<usize> = Vec::new();
    for i in 0..4 {
        let t = submit_write(&mut g.queues[0], node, fh, i, &mut data);
        wait_for(&mut g.queues[0], t);
        assert_eq!(g.queues[0].take(t).unwrap().header.error, 0);
        acked.push(i);
    }
    let tokens: Vec<(usize, Token)> =
        (4..BURST).map(|i| (i, submit_write(&mut g.queues[0], node, fh, i, &mut data))).collect();
    g.queues[0].kick().unwrap();
    // Reset: stop every ring, set up fresh rings, INIT a new session.
    let mut old = g.restart_rings();
    let mut done = Vec::new();
    old[0].poll(&mut done).unwrap();
    eprintln!("{} of {} in-flight writes came back before the rings stopped", done.len(), tokens.len());
    for (i, t) in tokens {
        if done.contains(&t) {
            let r = old[0].take(t).unwrap();
            if r.header.error == 0 {
                acked.push(i);
            }
        }
    }
    let r = g.init();
    assert_eq!(r.header.error, 0, "INIT after a reset");
    assert_eq!(g.getattr_root().attr.ino, ROOT_ID);
    // Nothing the device returned after the reset lands in the old rings.
    assert_eq!(old[0].poll(&mut done).unwrap(), 0);
    d.assert_alive();
    drop(g);
    let c = connect_client(&d.socket, 1);
    assert_blocks(&c, b"f", BURST, &acked);
    // The file system still works normally.
    let e = c.lookup(ROOT_ID, b"f").unwrap();
    let o = c.open(e.nodeid, libc::O_RDWR as u32).unwrap();
    assert_eq!(c.write(e.nodeid, o.fh, 0, &[1u8; BLOCK]).unwrap() as usize, BLOCK);
    c.release(e.nodeid, o.fh, 0).unwrap();
    drop(c);
    d.assert_alive();
}

#[test]
fn reinit_with_requests_in_flight() {
    // A guest that reboots without reconnecting sends INIT on a live connection.
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let (node, fh) = create(&mut g, b"f");
    const BURST: usize = 12;
    let mut data = Vec::new();
    let q = &mut g.queues[0];
    let tokens: Vec<Token> = (0..BURST).map(|i| submit_write(q, node, fh, i, &mut data)).collect();
    let arg = abi::InitIn {
        major: abi::KERNEL_VERSION,
        minor: abi::KERNEL_MINOR_VERSION,
        max_readahead: 128 << 10,
        flags: LINUX_INIT_FLAGS as u32,
        flags2: (LINUX_INIT_FLAGS >> 32) as u32,
        unused: [0; 11],
    };
    let init = q.submit(&Request::new(0, Operation::Init(arg))).unwrap();
    let deadline = Instant::now() + TIMEOUT;
    let mut done = Vec::new();
    while done.len() < BURST + 1 {
        assert!(Instant::now() < deadline, "only {} of {} chains returned", done.len(), BURST + 1);
        q.wait(&mut done, Some(TIMEOUT)).unwrap();
    }
    assert_eq!(q.take(init).unwrap().header.error, 0, "INIT of the new session");
    let mut acked = Vec::new();
    for (i, t) in tokens.into_iter().enumerate() {
        let r = q.take(t).unwrap();
        if r.header.error == 0 {
            acked.push(i);
        } else {
            assert!([-libc::EIO, -libc::EBADF].contains(&r.header.error), "write {i}: {}", r.header.error);
        }
    }
    assert_eq!(q.outstanding(), 0);
    assert_eq!(g.getattr_root().attr.ino, ROOT_ID);
    drop(g);
    let c = connect_client(&d.socket, 1);
    assert_blocks(&c, b"f", BURST, &acked);
    drop(c);
    d.assert_alive();
}

#[test]
fn frontend_disconnect_and_reconnect() {
    let Some(mut d) = daemon(2) else { return };
    let mut g = Guest::connect_init(&d.socket, 2);
    let (node, fh) = create(&mut g, b"f");
    const BURST: usize = 12;
    let mut data = Vec::new();
    for (qi, q) in g.queues.iter_mut().enumerate() {
        for i in (qi..BURST).step_by(2) {
            submit_write(q, node, fh, i, &mut data);
        }
        q.kick().unwrap();
    }
    // Drop the frontend mid-burst: socket closed, memory unmapped on our side.
    drop(g);
    for round in 0..3 {
        let c = connect_client(&d.socket, 2);
        d.assert_alive();
        assert_eq!(c.getattr(ROOT_ID, None).unwrap().attr.ino, ROOT_ID);
        assert_blocks(&c, b"f", BURST, &[]);
        // Continue: more writes through the new connection, then disconnect again mid-burst.
        let e = c.lookup(ROOT_ID, b"f").unwrap();
        let o = c.open(e.nodeid, libc::O_RDWR as u32).unwrap();
        for i in 0..BURST {
            assert_eq!(c.write(e.nodeid, o.fh, (i * BLOCK) as u64, &[i as u8 + 1; BLOCK]).unwrap() as usize, BLOCK);
        }
        assert_blocks(&c, b"f", BURST, &(0..BURST).collect::<Vec<_>>());
        let mut q = c.queue(round % 2);
        for i in 0..4 {
            submit_write(&mut q, e.nodeid, o.fh, i, &mut data);
        }
        q.kick().unwrap();
        drop(q);
        drop(c);
    }
    let mut g = Guest::connect_init(&d.socket, 1);
    let _ = g.getattr_root();
    assert_healthy(&mut d, g);
}

#[test]
fn fault_errors_do_not_leak_into_the_session() {
    // A mix of broken chains and good requests on one connection keeps a consistent tree.
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let (node, fh) = create(&mut g, b"f");
    let far = g.mem_end() + 4096;
    let mut data = Vec::new();
    for i in 0..8 {
        let _ = g.raw(|_, _| vec![rd(far, 56, None)]);
        let t = submit_write(&mut g.queues[0], node, fh, i, &mut data);
        wait_for(&mut g.queues[0], t);
        assert_eq!(g.queues[0].take(t).unwrap().header.error, 0);
        let c = g.raw(|m, a| vec![rd(put_getattr(m, a, 900 + i as u64, 999), 56, Some(1)), out(a, None)]);
        assert_error(&c, 900 + i as u64, libc::EINVAL);
    }
    drop(g);
    let c = connect_client(&d.socket, 1);
    assert_blocks(&c, b"f", 8, &(0..8).collect::<Vec<_>>());
    drop(c);
    d.assert_alive();
}

/// Writes descriptor table `descs` (indexes as given) at `at`.
fn put_table(m: &GuestMemory, at: u64, descs: &[RawDesc]) {
    let mut raw = Vec::with_capacity(16 * descs.len());
    for d in descs {
        raw.extend_from_slice(&d.addr.to_le_bytes());
        raw.extend_from_slice(&d.len.to_le_bytes());
        raw.extend_from_slice(&d.flags.to_le_bytes());
        raw.extend_from_slice(&d.next.to_le_bytes());
    }
    m.write(vm_memory::GuestAddress(at), &raw).unwrap();
}

fn indirect(addr: u64, entries: usize) -> RawDesc {
    RawDesc { addr, len: (16 * entries) as u32, flags: INDIRECT, next: 0 }
}

const INDIRECT: u16 = virtio_bindings::virtio_ring::VRING_DESC_F_INDIRECT as u16;

#[test]
fn indirect_table_faults() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let far = g.mem_end() + 0x1000;
    // A well-formed indirect GETATTR first.
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        put_table(m, t, &[rd(put_getattr(m, a, 1000, 56), 56, Some(1)), out(a, None)]);
        vec![indirect(t, 2)]
    });
    assert_eq!((c.used_len as usize, c.header.unwrap().error), (OUT_HEADER + ATTR_OUT, 0));
    // The table lies outside memory, or its length is not a multiple of 16.
    assert_dropped(&g.raw(|_, _| vec![indirect(far, 2)]));
    assert_dropped(&g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        put_table(m, t, &[rd(put_getattr(m, a, 1002, 56), 56, Some(1)), out(a, None)]);
        vec![RawDesc { len: 24, ..indirect(t, 2) }]
    }));
    // A loop inside the table, in its writable part: answered EIO.
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        let h = put_getattr(m, a, 1004, 56);
        put_table(m, t, &[rd(h, 56, Some(1)), out(a, Some(2)), wr(a.reply.0 + 4096, 64, Some(1))]);
        vec![indirect(t, 3)]
    });
    assert_error(&c, 1004, libc::EIO);
    // A nested indirect descriptor, and a next index past the table.
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        let h = put_getattr(m, a, 1006, 56);
        put_table(m, t, &[rd(h, 56, Some(1)), out(a, Some(2)), RawDesc { next: 0, ..indirect(t, 2) }]);
        vec![indirect(t, 3)]
    });
    assert!(c.used_len == 0 || c.header.is_some_and(|h| h.error == -libc::EIO && h.unique == 1006), "{c:?}");
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        put_table(m, t, &[rd(put_getattr(m, a, 1008, 56), 56, Some(1)), out(a, Some(7))]);
        vec![indirect(t, 2)]
    });
    assert_error(&c, 1008, libc::EIO);
    // INDIRECT and NEXT together on the head (the spec forbids it), followed by a readable.
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        let h = put_getattr(m, a, 1010, 56);
        put_table(m, t, &[rd(h, 56, Some(1)), out(a, None)]);
        vec![RawDesc { flags: INDIRECT | NEXT, next: 1, ..indirect(t, 2) }, rd(h, 8, None)]
    });
    assert!(c.used_len == 0 || c.header.is_some_and(|h| h.unique == 1010), "{c:?}");
    // More segments than the device takes: 4200 one-byte writable buffers. The out-header is
    // scattered over the first 16 of them.
    let c = g.raw(|m, a| {
        let t = a.msg.0 + 4096;
        let h = put_getattr(m, a, 1012, 56);
        let mut table = vec![rd(h, 56, Some(1))];
        for i in 0..4200u16 {
            table.push(wr(a.reply.0 + i as u64, 1, (i < 4199).then_some(i + 2)));
        }
        put_table(m, t, &table);
        vec![indirect(t, table.len())]
    });
    assert_error(&c, 1012, libc::EIO);
    assert_healthy(&mut d, g);
}

/// Writes header + `args` (+ `payload`) at `a.msg` with `len` = their size; returns it.
fn put_msg(m: &GuestMemory, a: &RawArea, opcode: u32, unique: u64, nodeid: u64, args: &[u8]) -> usize {
    let len = IN_HEADER + args.len();
    let mut msg = in_header(opcode, unique, nodeid, len).as_bytes().to_vec();
    msg.extend_from_slice(args);
    m.write(a.msg, &msg).unwrap();
    len
}

#[test]
fn malformed_fuse_messages() {
    const WRITE_OP: u32 = 16;
    const SETXATTR: u32 = 21;
    const RENAME: u32 = 12;
    const SYMLINK: u32 = 6;
    const READ: u32 = 15;
    const FORGET: u32 = 2;
    const BATCH_FORGET: u32 = 42;
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    let (node, fh) = create(&mut g, b"f");
    let mut send = |unique: u64, opcode: u32, nodeid: u64, args: Vec<u8>, reply: usize| {
        g.raw(|m, a| {
            let len = put_msg(m, a, opcode, unique, nodeid, &args);
            vec![rd(a.msg.0, len, Some(1)), wr(a.reply.0, OUT_HEADER + reply, None)]
        })
    };
    // WRITE whose size disagrees with its payload (both ways).
    for (unique, size, payload) in [(1100, 100u32, 50usize), (1102, 10, 50), (1104, u32::MAX, 8)] {
        let mut args = abi::WriteIn { fh, offset: 0, size, ..Default::default() }.as_bytes().to_vec();
        args.resize(args.len() + payload, 7);
        assert_error(&send(unique, WRITE_OP, node, args, 8), unique, libc::EINVAL);
    }
    // WRITE without its arguments.
    assert_error(&send(1106, WRITE_OP, node, vec![0; 8], 8), 1106, libc::EINVAL);
    // total_extlen beyond the message.
    let c = g.raw(|m, a| {
        let mut h = in_header(GETATTR, 1108, ROOT_ID, 56);
        h.total_extlen = 100;
        let mut msg = h.as_bytes().to_vec();
        msg.extend_from_slice(&[0; 16]);
        m.write(a.msg, &msg).unwrap();
        vec![rd(a.msg.0, 56, Some(1)), out(a, None)]
    });
    assert_error(&c, 1108, libc::EINVAL);
    let mut send = |unique: u64, opcode: u32, nodeid: u64, args: Vec<u8>, reply: usize| {
        g.raw(|m, a| {
            let len = put_msg(m, a, opcode, unique, nodeid, &args);
            vec![rd(a.msg.0, len, Some(1)), wr(a.reply.0, OUT_HEADER + reply, None)]
        })
    };
    // SETXATTR whose value is shorter than its size.
    let mut args = abi::SetxattrIn { size: 64, flags: 0, setxattr_flags: 0, padding: 0 }.as_bytes().to_vec();
    args.extend_from_slice(b"user.x\0abc");
    assert_error(&send(1110, SETXATTR, node, args, 0), 1110, libc::EINVAL);
    // RENAME with one name; SYMLINK without a target; GETATTR with half its arguments.
    let mut args = abi::RenameIn { newdir: ROOT_ID }.as_bytes().to_vec();
    args.extend_from_slice(b"f\0");
    assert_error(&send(1112, RENAME, ROOT_ID, args, 0), 1112, libc::EINVAL);
    assert_error(&send(1114, SYMLINK, ROOT_ID, b"l\0".to_vec(), 128), 1114, libc::EINVAL);
    assert_error(&send(1116, GETATTR, ROOT_ID, vec![0; 8], ATTR_OUT), 1116, libc::EINVAL);
    // Unknown node ids.
    for (unique, nodeid) in [(1118, 0u64), (1120, 0xdead_beef), (1122, u64::MAX)] {
        let c = send(unique, GETATTR, nodeid, vec![0; 16], ATTR_OUT);
        let e = c.header.map(|h| -h.error);
        assert!(matches!(e, Some(libc::ENOENT | libc::ESTALE | libc::EINVAL)), "nodeid {nodeid:#x}: {c:?}");
    }
    // FORGET and BATCH_FORGET that lie (no reply either way; nothing may break).
    let forget = |nodeid: u64, args: Vec<u8>, opcode: u32, g: &mut Guest| {
        let q = &mut g.hiprio;
        let t = q
            .submit_raw(|m, a| {
                let len = put_msg(m, a, opcode, 1200, nodeid, &args);
                Ok(vec![rd(a.msg.0, len, None)])
            })
            .unwrap();
        wait_for(q, t);
        assert_eq!(q.take_raw(t).unwrap().used_len, 0);
    };
    forget(ROOT_ID, u64::MAX.to_le_bytes().to_vec(), FORGET, &mut g);
    forget(0xdead_beef, 1u64.to_le_bytes().to_vec(), FORGET, &mut g);
    forget(ROOT_ID, vec![1, 2], FORGET, &mut g);
    let mut batch = 1000u32.to_le_bytes().to_vec();
    batch.extend_from_slice(&[0; 4]);
    batch.extend_from_slice(&node.to_le_bytes());
    batch.extend_from_slice(&1u64.to_le_bytes());
    forget(0, batch, BATCH_FORGET, &mut g);
    // READ asking for more than its reply buffer holds: the device must stay inside it.
    let data = [9u8; 8192];
    let arg = abi::WriteIn { fh, offset: 0, size: data.len() as u32, ..Default::default() };
    let r = g.call(&Request::with_payload(node, Operation::Write(arg), &data));
    assert_eq!(r.header.error, 0);
    let mut canary_at = 0;
    let c = g.raw(|m, a| {
        let args = abi::ReadIn { fh, offset: 0, size: 8192, ..Default::default() };
        let len = put_msg(m, a, READ, 1202, node, args.as_bytes());
        canary_at = a.reply.0 + 16 + 100;
        m.write(vm_memory::GuestAddress(canary_at), &[0x5a; 4096]).unwrap();
        vec![rd(a.msg.0, len, Some(1)), wr(a.reply.0, OUT_HEADER + 100, None)]
    });
    assert!(c.used_len as usize <= OUT_HEADER + 100, "{c:?}");
    let mut canary = [0u8; 4096];
    g.mem.read(vm_memory::GuestAddress(canary_at), &mut canary).unwrap();
    assert!(canary.iter().all(|&b| b == 0x5a), "the device wrote past the reply buffer");
    // The file and its handle are intact.
    let arg = abi::ReadIn { fh, offset: 0, size: 8192, ..Default::default() };
    let r = g.call(&Request::new(node, Operation::Read(arg)));
    assert_eq!(r.ok().unwrap().body, data);
    assert_healthy(&mut d, g);
}

#[test]
fn bogus_available_ring() {
    let Some(mut d) = daemon(1) else { return };
    let mut g = Guest::connect_init(&d.socket, 1);
    // Heads past the descriptor table: skipped, and the queue keeps working.
    for head in [64u16, 5000, u16::MAX] {
        g.queues[0].publish_raw_head(head).unwrap();
        g.queues[0].kick().unwrap();
        assert_eq!(g.getattr_root().attr.ino, ROOT_ID);
    }
    d.assert_alive();
    // An available index further ahead than the ring holds: the device leaves the queue
    // alone until the guest resets it; after a reset the session works again.
    g.queues[0].advance_avail_idx_raw(1000).unwrap();
    g.queues[0].kick().unwrap();
    let t = g.queues[0].submit(&Request::new(ROOT_ID, Operation::Getattr(abi::GetattrIn::default()))).unwrap();
    let mut done = Vec::new();
    let r = g.queues[0].wait(&mut done, Some(Duration::from_millis(200)));
    assert!(matches!(r, Err(dpfs_sim::Error::Timeout)), "{r:?} {done:?} {t:?}");
    d.assert_alive();
    drop(g.restart_rings());
    assert_eq!(g.init().header.error, 0);
    assert_healthy(&mut d, g);
}
