//! End to end without QEMU: a vhost-user frontend (memfd guest memory, hand-built split
//! virtqueues) drives a `Server` whose devices run the null backend through core.

use dpfs_core::abi::{self, EntryOut, GetattrIn, InitIn, InitOut, OutHeader};
use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
use dpfs_core::{DeviceId, Dispatcher, FileSystem, SessionConfig};
use dpfs_hal_vhost_user::{bind_socket, DeviceConfig, Error, PollMode, Server, SocketSpec};
use std::fs::File;
use std::os::fd::FromRawFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use vhost::vhost_user::message::VhostUserProtocolFeatures;
use vhost::vhost_user::{Frontend, VhostUserFrontend};
use vhost::{VhostBackend, VhostUserMemoryRegionInfo, VringConfigData};
use virtio_bindings::bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use vm_memory::{Bytes, FileOffset, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;
use zerocopy::{FromBytes, IntoBytes};

const MEM_SIZE: usize = 4 << 20;
const QSIZE: u16 = 64;
const BUF_BASE: u64 = 0x10_0000;
const VIRTIO_RING_F_EVENT_IDX: u64 = 1 << 29;

/// A scratch directory removed when the test ends.
struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir(name: &str) -> TempDir {
    let d = std::env::temp_dir().join(format!("dpfs-vu-test-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}

fn start(dir: &Path, request_queues: u16, threads: u16) -> (Server, PathBuf) {
    start_with(dir, request_queues, threads, PollMode::Event)
}

fn start_with(dir: &Path, request_queues: u16, threads: u16, poll: PollMode) -> (Server, PathBuf) {
    let sock = dir.join("vfs.sock");
    let handler = Arc::new(Dispatcher::new(SessionConfig::default(), |_| {
        Ok(Arc::new(dpfs_backend_null::NullFs::new()) as Arc<dyn FileSystem>)
    }));
    let mut cfg = DeviceConfig::new(DeviceId(0), "test");
    cfg.request_queues = request_queues;
    cfg.threads = threads;
    cfg.max_queue_size = 256;
    cfg.poll = poll;
    let server = Server::start(handler, vec![(cfg, SocketSpec::Path(sock.clone()))]).unwrap();
    (server, sock)
}

/// One split virtqueue laid out in guest memory by the test (the "driver").
struct TestQueue {
    index: usize,
    desc: u64,
    avail: u64,
    used: u64,
    avail_idx: u16,
    used_seen: u16,
    next_buf: u64,
    kick: EventFd,
    call: EventFd,
}

/// The guest side: memory and queues.
struct Guest {
    mem: GuestMemoryMmap,
    frontend: Frontend,
    queues: Vec<TestQueue>,
    unique: u64,
}

impl Guest {
    fn connect(sock: &Path, num_queues: usize, event_idx: bool) -> Guest {
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut frontend = loop {
            match Frontend::connect(sock, num_queues as u64) {
                Ok(f) => break f,
                Err(e) if Instant::now() > deadline => panic!("connect: {e}"),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        // SAFETY: memfd_create with a valid NUL-terminated name; the fd is checked below.
        let fd = unsafe { libc::memfd_create(c"dpfs-test-guest".as_ptr(), libc::MFD_CLOEXEC) };
        assert!(fd >= 0, "memfd_create failed");
        // SAFETY: a fresh descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(fd) };
        file.set_len(MEM_SIZE as u64).unwrap();
        let mem = GuestMemoryMmap::<()>::from_ranges_with_files(&[(
            GuestAddress(0),
            MEM_SIZE,
            Some(FileOffset::new(file, 0)),
        )])
        .unwrap();

        frontend.set_owner().unwrap();
        let features = frontend.get_features().unwrap();
        let want = if event_idx { features } else { features & !VIRTIO_RING_F_EVENT_IDX };
        frontend.set_features(want).unwrap();
        let proto = frontend.get_protocol_features().unwrap();
        assert!(proto.contains(VhostUserProtocolFeatures::MQ));
        assert!(proto.contains(VhostUserProtocolFeatures::RESET_DEVICE));
        frontend.set_protocol_features(proto).unwrap();
        assert_eq!(frontend.get_queue_num().unwrap(), num_queues as u64);
        let region = mem.find_region(GuestAddress(0)).unwrap();
        let info = VhostUserMemoryRegionInfo::from_guest_region(region).unwrap();
        frontend.set_mem_table(&[info]).unwrap();

        let host = |gpa: u64| mem.get_host_address(GuestAddress(gpa)).unwrap() as u64;
        let mut queues = Vec::new();
        for q in 0..num_queues {
            let base = q as u64 * 0x4000;
            let tq = TestQueue {
                index: q,
                desc: base,
                avail: base + 0x1000,
                used: base + 0x2000,
                avail_idx: 0,
                used_seen: 0,
                next_buf: BUF_BASE + q as u64 * 0x4_0000,
                kick: EventFd::new(libc::EFD_NONBLOCK).unwrap(),
                call: EventFd::new(libc::EFD_NONBLOCK).unwrap(),
            };
            frontend.set_vring_num(q, QSIZE).unwrap();
            let cfg = VringConfigData {
                queue_max_size: QSIZE,
                queue_size: QSIZE,
                flags: 0,
                desc_table_addr: host(tq.desc),
                used_ring_addr: host(tq.used),
                avail_ring_addr: host(tq.avail),
                log_addr: None,
            };
            frontend.set_vring_addr(q, &cfg).unwrap();
            frontend.set_vring_base(q, 0).unwrap();
            frontend.set_vring_call(q, &tq.call).unwrap();
            frontend.set_vring_kick(q, &tq.kick).unwrap();
            frontend.set_vring_enable(q, true).unwrap();
            queues.push(tq);
        }
        Guest { mem, frontend, queues, unique: 1 }
    }

    /// Writes `descs` (gpa, len, device-writable, next) at table slots 0.. of queue `q`,
    /// makes slot 0 available and kicks.
    fn submit_raw(&mut self, q: usize, descs: &[(u64, u32, u16, u16)]) {
        let tq = &mut self.queues[q];
        for (i, &(addr, len, flags, next)) in descs.iter().enumerate() {
            let d = tq.desc + 16 * i as u64;
            self.mem.write_obj(addr, GuestAddress(d)).unwrap();
            self.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
            self.mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
            self.mem.write_obj(next, GuestAddress(d + 14)).unwrap();
        }
        let slot = tq.avail + 4 + 2 * (tq.avail_idx % QSIZE) as u64;
        self.mem.write_obj(0u16, GuestAddress(slot)).unwrap();
        tq.avail_idx = tq.avail_idx.wrapping_add(1);
        std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
        self.mem.write_obj(tq.avail_idx, GuestAddress(tq.avail + 2)).unwrap();
        tq.kick.write(1).unwrap();
    }

    /// Waits for the next used element of queue `q`: (head, len).
    fn wait_used(&mut self, q: usize) -> (u32, u32) {
        let tq = &mut self.queues[q];
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let idx: u16 = self.mem.read_obj(GuestAddress(tq.used + 2)).unwrap();
            if idx != tq.used_seen {
                let e = tq.used + 4 + 8 * (tq.used_seen % QSIZE) as u64;
                tq.used_seen = tq.used_seen.wrapping_add(1);
                let id: u32 = self.mem.read_obj(GuestAddress(e)).unwrap();
                let len: u32 = self.mem.read_obj(GuestAddress(e + 4)).unwrap();
                return (id, len);
            }
            assert!(Instant::now() < deadline, "queue {} never returned the chain", tq.index);
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Sends one FUSE request on queue `q` (message in one descriptor, out-header and reply
    /// in a second one) and returns the reply bytes.
    fn call(&mut self, q: usize, nodeid: u64, op: &Operation<'_>, reply: u32) -> Vec<u8> {
        let h = MessageHeader { unique: self.unique, nodeid, uid: 0, gid: 0, pid: 1 };
        self.unique += 1;
        let msg = encode_message(h, op, &[], None, Layout::default());
        let tq = &mut self.queues[q];
        let (inp, out) = (tq.next_buf, tq.next_buf + 0x1000);
        self.mem.write_slice(&msg, GuestAddress(inp)).unwrap();
        let out_len = 16 + reply;
        self.submit_raw(
            q,
            &[(inp, msg.len() as u32, VRING_DESC_F_NEXT as u16, 1), (out, out_len, VRING_DESC_F_WRITE as u16, 0)],
        );
        let (head, len) = self.wait_used(q);
        assert_eq!(head, 0);
        assert!(len <= out_len);
        let mut buf = vec![0u8; len as usize];
        self.mem.read_slice(&mut buf, GuestAddress(out)).unwrap();
        buf
    }

    fn init(&mut self, q: usize) -> InitOut {
        let arg = InitIn { major: 7, minor: 38, max_readahead: 1 << 17, flags: u32::MAX, flags2: 0, unused: [0; 11] };
        let r = self.call(q, 0, &Operation::Init(arg), std::mem::size_of::<InitOut>() as u32);
        let (h, body) = split_reply(&r);
        assert_eq!(h.error, 0, "INIT failed");
        InitOut::read_from_prefix(body).unwrap().0
    }
}

fn split_reply(r: &[u8]) -> (OutHeader, &[u8]) {
    let (h, body) = OutHeader::read_from_prefix(r).expect("reply shorter than an out-header");
    assert_eq!(h.len as usize, r.len(), "out-header length disagrees with the used length");
    (h, body)
}

#[test]
fn init_lookup_getattr_round_trip() {
    let dir = temp_dir("roundtrip");
    let (server, sock) = start(&dir, 1, 1);
    let mut g = Guest::connect(&sock, 2, true);
    let init = g.init(1);
    assert_eq!(init.major, 7);
    assert!(init.max_write >= 4096);

    let r = g.call(1, abi::ROOT_ID, &Operation::Lookup { name: b"file" }, std::mem::size_of::<EntryOut>() as u32);
    let (h, body) = split_reply(&r);
    assert_eq!(h.error, 0);
    let entry = EntryOut::read_from_prefix(body).unwrap().0;
    assert_eq!(entry.nodeid, dpfs_backend_null::FILE_ID);

    let r = g.call(1, entry.nodeid, &Operation::Getattr(GetattrIn::default()), 104);
    let (h, body) = split_reply(&r);
    assert_eq!(h.error, 0);
    let attr = abi::AttrOut::read_from_prefix(body).unwrap().0;
    assert_eq!(attr.attr.ino, entry.nodeid);
    assert!(g.queues[1].call.read().is_ok(), "the guest was never signalled");

    server.shutdown_trigger().trigger();
    server.wait();
    assert!(!sock.exists(), "socket file left behind");
}

#[test]
fn broken_chains_are_returned_and_the_device_keeps_working() {
    let dir = temp_dir("broken");
    let (server, sock) = start(&dir, 1, 1);
    let mut g = Guest::connect(&sock, 2, false);
    g.init(1);
    let next = VRING_DESC_F_NEXT as u16;
    let write = VRING_DESC_F_WRITE as u16;

    // A buffer outside guest memory.
    g.submit_raw(1, &[(MEM_SIZE as u64 + 0x1000, 64, next, 1), (BUF_BASE, 64, write, 0)]);
    assert_eq!(g.wait_used(1), (0, 0));

    // A loop of readable descriptors holding a valid GETATTR header: no room for a reply.
    let h = abi::InHeader { len: 56, opcode: 3, unique: 99, nodeid: 1, ..Default::default() };
    g.mem.write_slice(h.as_bytes(), GuestAddress(BUF_BASE)).unwrap();
    g.submit_raw(1, &[(BUF_BASE, 56, next, 1), (BUF_BASE + 0x100, 8, next, 0)]);
    assert_eq!(g.wait_used(1), (0, 0));

    // A loop through a writable descriptor: readable after writable, answered with EIO.
    g.submit_raw(1, &[(BUF_BASE, 56, next, 1), (BUF_BASE + 0x1000, 64, write | next, 0)]);
    assert_eq!(g.wait_used(1), (0, 16));
    let out: [u8; 16] = g.mem.read_obj(GuestAddress(BUF_BASE + 0x1000)).unwrap();
    let out = OutHeader::read_from_bytes(&out).unwrap();
    assert_eq!((out.error, out.unique), (-libc::EIO, 99));

    // A head index past the table.
    let tq = &mut g.queues[1];
    let slot = tq.avail + 4 + 2 * (tq.avail_idx % QSIZE) as u64;
    g.mem.write_obj(500u16, GuestAddress(slot)).unwrap();
    tq.avail_idx += 1;
    g.mem.write_obj(tq.avail_idx, GuestAddress(tq.avail + 2)).unwrap();
    tq.kick.write(1).unwrap();

    // An available index more than a queue ahead on hiprio: that queue is left alone,
    // the poller does not spin on it.
    g.mem.write_obj(1000u16, GuestAddress(g.queues[0].avail + 2)).unwrap();
    g.queues[0].kick.write(1).unwrap();
    std::thread::sleep(Duration::from_millis(20));

    // Still serving.
    let r = g.call(1, abi::ROOT_ID, &Operation::Getattr(GetattrIn::default()), 104);
    assert_eq!(split_reply(&r).0.error, 0);
    let q1 = server.devices()[0].1.snapshot()[1];
    assert_eq!(q1.broken, 4);
    assert_eq!(q1.requests, 6);
    server.shutdown_trigger().trigger();
    server.wait();
}

#[test]
fn requests_spread_over_queues_are_counted_per_queue() {
    let dir = temp_dir("mq");
    let (server, sock) = start(&dir, 3, 2);
    let mut g = Guest::connect(&sock, 4, true);
    g.init(1);
    for (q, n) in [(1, 3), (2, 5), (3, 2)] {
        for _ in 0..n {
            let r = g.call(q, abi::ROOT_ID, &Operation::Getattr(GetattrIn::default()), 104);
            assert_eq!(split_reply(&r).0.error, 0, "GETATTR on queue {q}");
        }
    }
    let counts: Vec<u64> = server.devices()[0].1.snapshot().iter().map(|s| s.requests).collect();
    assert_eq!(counts, vec![0, 4, 5, 2]);
    server.shutdown_trigger().trigger();
    server.wait();
}

#[test]
fn a_new_frontend_after_a_disconnect_starts_a_new_session() {
    let dir = temp_dir("reconnect");
    let (server, sock) = start(&dir, 1, 1);
    let mut g = Guest::connect(&sock, 2, true);
    g.init(1);
    drop(g);
    // The daemon resets the session and accepts the next frontend: INIT succeeds again.
    let mut g = Guest::connect(&sock, 2, true);
    g.init(1);
    // A reset without a reconnect (guest reboot inside the same QEMU): INIT works too.
    g.frontend.reset_device().unwrap();
    let features = g.frontend.get_features().unwrap();
    g.frontend.set_features(features).unwrap();
    for q in 0..2 {
        g.frontend.set_vring_enable(q, true).unwrap();
    }
    g.init(1);
    assert_eq!(server.devices()[0].1.connections(), 2);
    server.shutdown_trigger().trigger();
    server.wait();
}

#[test]
fn a_live_socket_is_refused_and_a_stale_one_replaced() {
    let dir = temp_dir("sockets");
    let (server, sock) = start(&dir, 1, 1);
    assert!(matches!(bind_socket(&sock), Err(Error::SocketInUse(_))));
    server.shutdown_trigger().trigger();
    server.wait();

    let stale = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    assert!(stale.exists());
    assert!(bind_socket(&stale).is_ok());

    let file = dir.join("plain");
    std::fs::write(&file, b"x").unwrap();
    assert!(matches!(bind_socket(&file), Err(Error::NotASocket(_))));
}

#[test]
fn several_devices_have_their_own_sessions_and_counters() {
    let dir = temp_dir("multi");
    let made = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = made.clone();
    let handler = Arc::new(Dispatcher::new(SessionConfig::default(), move |_| {
        counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Arc::new(dpfs_backend_null::NullFs::new()) as Arc<dyn FileSystem>)
    }));
    let socks: Vec<PathBuf> = (0..2).map(|i| dir.join(format!("d{i}.sock"))).collect();
    let devices = socks
        .iter()
        .enumerate()
        .map(|(i, s)| (DeviceConfig::new(DeviceId(i as u32), format!("t-{i}")), SocketSpec::Path(s.clone())))
        .collect();
    let server = Server::start(handler, devices).unwrap();
    assert_eq!(made.load(std::sync::atomic::Ordering::Relaxed), 2, "one backend instance per device");
    let mut a = Guest::connect(&socks[0], 2, true);
    let mut b = Guest::connect(&socks[1], 2, false);
    a.init(1);
    b.init(1);
    for _ in 0..3 {
        let r = a.call(1, abi::ROOT_ID, &Operation::Getattr(GetattrIn::default()), 104);
        assert_eq!(split_reply(&r).0.error, 0);
    }
    let r = b.call(1, abi::ROOT_ID, &Operation::Getattr(GetattrIn::default()), 104);
    assert_eq!(split_reply(&r).0.error, 0);
    let counts: Vec<u64> = server.devices().iter().map(|(_, s)| s.snapshot()[1].requests).collect();
    assert_eq!(counts, vec![4, 2]);
    server.shutdown_trigger().trigger();
    server.wait();
    assert!(socks.iter().all(|s| !s.exists()));
}

#[test]
fn busy_and_hybrid_polling_serve_requests() {
    for (name, mode) in [("hybrid", PollMode::Hybrid), ("busy", PollMode::Busy)] {
        let dir = temp_dir(name);
        let (server, sock) = start_with(&dir, 2, 1, mode);
        let mut g = Guest::connect(&sock, 3, true);
        g.init(1);
        for i in 0..20 {
            let r = g.call(1 + i % 2, abi::ROOT_ID, &Operation::Getattr(GetattrIn::default()), 104);
            assert_eq!(split_reply(&r).0.error, 0, "{name}: request {i}");
        }
        server.shutdown_trigger().trigger();
        server.wait();
    }
}

/// Completes requests inline, except that the `HOLD`-th of a burst waits until the guest
/// has seen `HOLD - 1` replies on the used ring (or 5 s pass), then records whether it did.
struct HoldingHandler {
    handled: std::sync::atomic::AtomicUsize,
    used_idx: Arc<dyn Fn() -> u16 + Send + Sync>,
    saw_early_replies: std::sync::atomic::AtomicBool,
}

const HOLD: usize = 12;

impl dpfs_core::Handler for HoldingHandler {
    fn register_device(&self, _: DeviceId) -> Result<(), dpfs_core::HandlerError> {
        Ok(())
    }
    fn unregister_device(&self, _: DeviceId) {}
    fn reset_device(&self, _: DeviceId) {}
    fn handle(&self, req: dpfs_core::Request) {
        let n = self.handled.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        if n == HOLD {
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if (self.used_idx)() as usize >= HOLD - 1 - 3 {
                    self.saw_early_replies.store(true, std::sync::atomic::Ordering::SeqCst);
                    break;
                }
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        req.complete(0);
    }
}

#[test]
fn replies_of_a_long_burst_reach_the_guest_before_the_burst_ends() {
    let dir = temp_dir("early");
    let sock = dir.join("vfs.sock");
    // The handler reads the used index straight from guest memory, which the test maps
    // before the device starts: share it through a cell filled after connecting.
    let used: Arc<std::sync::OnceLock<(GuestMemoryMmap, u64)>> = Arc::new(std::sync::OnceLock::new());
    let reader = used.clone();
    let handler = Arc::new(HoldingHandler {
        handled: Default::default(),
        used_idx: Arc::new(move || {
            reader.get().map_or(0, |(mem, used)| mem.read_obj::<u16>(GuestAddress(used + 2)).unwrap_or(0))
        }),
        saw_early_replies: Default::default(),
    });
    let mut cfg = DeviceConfig::new(DeviceId(0), "test");
    cfg.request_queues = 1;
    cfg.max_queue_size = 256;
    let server = Server::start(handler.clone(), vec![(cfg, SocketSpec::Path(sock.clone()))]).unwrap();
    let mut g = Guest::connect(&sock, 2, true);
    let _ = used.set((g.mem.clone(), g.queues[1].used));
    // 2 * HOLD chains made available at once, one kick: a single burst for the poller.
    post_getattrs(&mut g, 1, 2 * HOLD as u64);
    for _ in 0..2 * HOLD {
        g.wait_used(1);
    }
    assert!(
        handler.saw_early_replies.load(std::sync::atomic::Ordering::SeqCst),
        "the first replies of the burst stayed unpublished while the poller worked on the rest"
    );
    drop(server);
}

/// Makes `n` GETATTR chains available on queue `q` at once and kicks once (the test's own
/// descriptor layout: two descriptors and 0x200 bytes of buffers per chain).
fn post_getattrs(g: &mut Guest, q: usize, n: u64) {
    let tq = &mut g.queues[q];
    for i in 0..n {
        let h = MessageHeader { unique: 100 + i, nodeid: 1, uid: 0, gid: 0, pid: 1 };
        let msg = encode_message(h, &Operation::Getattr(GetattrIn::default()), &[], None, Layout::default());
        let (inp, out) = (tq.next_buf + i * 0x200, tq.next_buf + i * 0x200 + 0x100);
        g.mem.write_slice(&msg, GuestAddress(inp)).unwrap();
        for (slot, (addr, len, flags, next)) in [
            (2 * i, (inp, msg.len() as u32, VRING_DESC_F_NEXT as u16, (2 * i + 1) as u16)),
            (2 * i + 1, (out, 0x100u32, VRING_DESC_F_WRITE as u16, 0u16)),
        ] {
            let d = tq.desc + 16 * slot;
            g.mem.write_obj(addr, GuestAddress(d)).unwrap();
            g.mem.write_obj(len, GuestAddress(d + 8)).unwrap();
            g.mem.write_obj(flags, GuestAddress(d + 12)).unwrap();
            g.mem.write_obj(next, GuestAddress(d + 14)).unwrap();
        }
        let avail_slot = tq.avail + 4 + 2 * (tq.avail_idx % QSIZE) as u64;
        g.mem.write_obj((2 * i) as u16, GuestAddress(avail_slot)).unwrap();
        tq.avail_idx = tq.avail_idx.wrapping_add(1);
    }
    std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
    g.mem.write_obj(tq.avail_idx, GuestAddress(tq.avail + 2)).unwrap();
    tq.kick.write(1).unwrap();
}

/// Hands every request to a backend thread that holds its completions (`dpfs_core::hold`)
/// and completes them when the test says so.
struct ForeignHandler {
    to_backend: std::sync::Mutex<std::sync::mpsc::Sender<dpfs_core::Request>>,
}

impl dpfs_core::Handler for ForeignHandler {
    fn register_device(&self, _: DeviceId) -> Result<(), dpfs_core::HandlerError> {
        Ok(())
    }
    fn unregister_device(&self, _: DeviceId) {}
    fn reset_device(&self, _: DeviceId) {}
    fn handle(&self, req: dpfs_core::Request) {
        self.to_backend.lock().unwrap().send(req).unwrap();
    }
}

#[test]
fn completions_held_on_a_backend_thread_reach_the_ring_at_its_flush_or_exit() {
    let dir = temp_dir("held");
    let sock = dir.join("vfs.sock");
    let (to_backend, requests) = std::sync::mpsc::channel::<dpfs_core::Request>();
    let (to_test, step) = std::sync::mpsc::channel::<&str>();
    let (go_tx, go) = std::sync::mpsc::channel::<&str>();
    // The backend thread: completes three requests (held), flushes when told, then completes
    // three more when told and ends without flushing.
    let backend = std::thread::spawn(move || {
        dpfs_core::hold::hold_on_this_thread();
        for phase in ["completed", "ended"] {
            for _ in 0..3 {
                requests.recv().unwrap().complete(0);
            }
            if phase == "ended" {
                break;
            }
            to_test.send(phase).unwrap();
            assert_eq!(go.recv().unwrap(), "flush");
            dpfs_core::hold::flush();
            to_test.send("flushed").unwrap();
            assert_eq!(go.recv().unwrap(), "go on");
        }
    });
    let handler = Arc::new(ForeignHandler { to_backend: std::sync::Mutex::new(to_backend) });
    let mut cfg = DeviceConfig::new(DeviceId(0), "test");
    cfg.request_queues = 1;
    cfg.max_queue_size = 256;
    let server = Server::start(handler, vec![(cfg, SocketSpec::Path(sock.clone()))]).unwrap();
    let mut g = Guest::connect(&sock, 2, true);
    let used_idx = |g: &Guest| g.mem.read_obj::<u16>(GuestAddress(g.queues[1].used + 2)).unwrap();

    post_getattrs(&mut g, 1, 6);
    assert_eq!(step.recv_timeout(Duration::from_secs(10)).unwrap(), "completed");
    // Give a completion that was not held every chance to show up.
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(used_idx(&g), 0, "held completions reached the ring before the flush");
    go_tx.send("flush").unwrap();
    assert_eq!(step.recv_timeout(Duration::from_secs(10)).unwrap(), "flushed");
    assert_eq!(used_idx(&g), 3, "the flush put every held completion on the ring");
    go_tx.send("go on").unwrap();
    backend.join().unwrap();
    assert_eq!(used_idx(&g), 6, "a thread that ends returns what it held");
    assert!(g.queues[1].call.read().unwrap() >= 1, "the guest was signalled");
    drop(server);
}
