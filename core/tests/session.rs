//! Session behaviour through the whole request path: INIT negotiation for old and new
//! guests, the before-INIT gate, DESTROY, reset, no-reply requests and malformed headers.

use dpfs_core::abi::{self, init, InitIn, InitOut, OutHeader};
use dpfs_core::fs::{ConnInfo, Context};
use dpfs_core::local::{LocalClient, Split};
use dpfs_core::operation::Operation;
use dpfs_core::reply::ReplyAttr;
use dpfs_core::{Device, DeviceId, Errno, FileSystem, SessionConfig};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use zerocopy::{FromBytes, IntoBytes};

#[derive(Default)]
struct Probe {
    inits: AtomicUsize,
    destroys: AtomicUsize,
    forgets: AtomicUsize,
}

impl FileSystem for Probe {
    fn init(&self, conn: &mut ConnInfo) -> Result<(), Errno> {
        self.inits.fetch_add(1, Ordering::SeqCst);
        conn.want |= init::FLOCK_LOCKS | init::POSIX_LOCKS;
        Ok(())
    }
    fn destroy(&self) {
        self.destroys.fetch_add(1, Ordering::SeqCst);
    }
    fn forget(&self, _ctx: &Context, _ino: u64, n: u64) {
        self.forgets.fetch_add(n as usize, Ordering::SeqCst);
    }
    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        reply.attr(
            &abi::Attr { ino, mode: libc::S_IFDIR | 0o755, nlink: 2, ..Default::default() },
            Duration::from_secs(1),
        )
    }
}

fn device(config: SessionConfig) -> (Arc<Probe>, Device) {
    let fs = Arc::new(Probe::default());
    (fs.clone(), Device::new(DeviceId(0), fs, config))
}

fn init_in(minor: u32, flags: u64) -> InitIn {
    InitIn {
        major: 7,
        minor,
        max_readahead: 128 << 10,
        flags: flags as u32,
        flags2: (flags >> 32) as u32,
        unused: [0; 11],
    }
}

fn getattr(c: &LocalClient<'_>) -> i32 {
    c.call(1, &Operation::Getattr(Default::default()), &[], 104).map(|r| r.error()).unwrap_or(i32::MIN)
}

// Flags a Linux 6.1 guest (7.37) offers; 6.18 adds bits in flags2.
const LINUX_6_1: u64 = 0x3fff_fffb;

#[test]
fn linux_6_1_guest_negotiates_7_37_with_the_compat_layout() {
    let (fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    assert_eq!(getattr(&c), -libc::EIO, "requests before INIT are refused");
    let r = c.call(1, &Operation::Init(init_in(37, LINUX_6_1)), &[], 64).unwrap();
    assert_eq!(r.error(), 0);
    assert_eq!(r.body.len(), 64);
    let out = InitOut::read_from_prefix(&r.body).unwrap().0;
    assert_eq!((out.major, out.minor), (7, 45));
    assert_eq!(out.max_write, 1 << 20);
    assert_eq!(out.max_pages, 256);
    assert_eq!(out.max_background, 4096);
    assert_eq!(out.congestion_threshold, 3072);
    assert_eq!(out.time_gran, 1);
    let flags = out.flags as u64;
    for bit in [init::ASYNC_READ, init::BIG_WRITES, init::MAX_PAGES, init::DO_READDIRPLUS, init::FLOCK_LOCKS] {
        assert_ne!(flags & bit, 0, "bit {bit:#x} not negotiated");
    }
    assert_eq!(flags & init::WRITEBACK_CACHE, 0, "not asked for");
    assert_eq!(fs.inits.load(Ordering::SeqCst), 1);
    assert_eq!(dev.session().layout().minor, 37);
    assert_eq!(getattr(&c), 0);
}

#[test]
fn linux_6_18_guest_gets_flags2_through_init_ext() {
    let cfg = SessionConfig { want_extra: init::CREATE_SUPP_GROUP, ..Default::default() };
    let (_fs, dev) = device(cfg);
    let c = LocalClient::new(&dev);
    let offered = LINUX_6_1 | init::INIT_EXT | init::CREATE_SUPP_GROUP | init::HAS_RESEND;
    let r = c.call(1, &Operation::Init(init_in(45, offered)), &[], 64).unwrap();
    let out = InitOut::read_from_prefix(&r.body).unwrap().0;
    assert_ne!(out.flags as u64 & init::INIT_EXT, 0);
    assert_eq!(out.flags2 as u64, init::CREATE_SUPP_GROUP >> 32, "only what was asked and offered");
}

#[test]
fn old_minor_gets_a_24_byte_reply_and_small_max_write_without_max_pages() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    let r = c.call(1, &Operation::Init(init_in(22, init::ASYNC_READ | init::BIG_WRITES)), &[], 64).unwrap();
    assert_eq!(r.error(), 0);
    assert_eq!(r.body.len(), 24);
    let mut full = [0u8; 64];
    full[..24].copy_from_slice(&r.body);
    let out = InitOut::read_from_bytes(&full).unwrap();
    assert_eq!(out.max_write, 32 * 4096, "no MAX_PAGES: the kernel's 32-page limit");
}

#[test]
fn future_major_is_answered_with_our_version_only() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    let mut arg = init_in(0, 0);
    arg.major = 8;
    let r = c.call(1, &Operation::Init(arg), &[], 64).unwrap();
    assert_eq!(r.error(), 0);
    assert_eq!(r.body.len(), 8);
    assert!(!dev.session().is_ready(), "still waiting for a 7.x INIT");
}

#[test]
fn ancient_and_bogus_versions_are_refused() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    let r = c.call(1, &Operation::Init(init_in(8, 0)), &[], 64).unwrap();
    assert_eq!(r.error(), -libc::EPROTO);
    let mut arg = init_in(45, 0);
    arg.major = 6;
    assert_eq!(c.call(1, &Operation::Init(arg), &[], 64).unwrap().error(), -libc::EPROTO);
    assert!(!dev.session().is_ready());
}

#[test]
fn second_init_is_refused_destroy_and_reset_allow_a_new_one() {
    let (fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    assert_eq!(c.call(1, &Operation::Init(init_in(45, LINUX_6_1)), &[], 64).unwrap().error(), 0);
    assert_eq!(c.call(1, &Operation::Init(init_in(45, LINUX_6_1)), &[], 64).unwrap().error(), -libc::EISCONN);
    assert_eq!(c.call(1, &Operation::Destroy, &[], 0).unwrap().error(), 0);
    assert_eq!(fs.destroys.load(Ordering::SeqCst), 1);
    assert_eq!(getattr(&c), -libc::EIO, "closed after DESTROY");
    assert_eq!(c.call(1, &Operation::Init(init_in(37, LINUX_6_1)), &[], 64).unwrap().error(), 0);
    dev.reset();
    assert_eq!(fs.destroys.load(Ordering::SeqCst), 2);
    assert_eq!(c.call(1, &Operation::Init(init_in(45, LINUX_6_1)), &[], 64).unwrap().error(), 0);
    assert_eq!(fs.inits.load(Ordering::SeqCst), 3);
}

#[test]
fn forget_completes_without_a_reply_before_and_after_init() {
    let (fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    let r = c.call(5, &Operation::Forget(abi::ForgetIn { nlookup: 3 }), &[], 0).unwrap();
    assert_eq!((r.written, r.header), (0, None));
    assert_eq!(fs.forgets.load(Ordering::SeqCst), 0, "no session yet: nothing to forget");
    c.init().unwrap();
    let r = c.call(5, &Operation::Forget(abi::ForgetIn { nlookup: 3 }), &[], 0).unwrap();
    assert_eq!(r.written, 0);
    let items = dpfs_core::operation::item_bytes(&[
        abi::ForgetOne { nodeid: 2, nlookup: 1 },
        abi::ForgetOne { nodeid: 3, nlookup: 4 },
    ]);
    let op = Operation::BatchForget { items: dpfs_core::operation::item_list(&items) };
    assert_eq!(c.call(0, &op, &[], 0).unwrap().written, 0);
    assert_eq!(fs.forgets.load(Ordering::SeqCst), 8);
}

#[test]
fn unknown_opcodes_get_enosys_and_unimplemented_ops_too() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    for opcode in [7u32, 19, 54, 4096, 999_999] {
        let mut msg = vec![0u8; 40];
        let h = abi::InHeader { len: 40, opcode, unique: 77, nodeid: 1, ..Default::default() };
        msg.copy_from_slice(h.as_bytes());
        let r = c.send_raw(vec![msg], &[16]).unwrap();
        assert_eq!(r.error(), -libc::ENOSYS, "opcode {opcode}");
        assert_eq!(r.header.unwrap().unique, 77);
    }
    let r = c.call(1, &Operation::Statfs, &[], 80).unwrap();
    assert_eq!(r.error(), -libc::ENOSYS, "trait default");
}

#[test]
fn length_disagreeing_with_the_chain_is_einval_and_tiny_chains_are_returned() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let h = abi::InHeader { len: 41, opcode: 3, unique: 9, nodeid: 1, ..Default::default() };
    let mut msg = h.as_bytes().to_vec();
    msg.extend_from_slice(&[0u8; 16]);
    let r = c.send_raw(vec![msg], &[16, 104]).unwrap();
    assert_eq!(r.error(), -libc::EINVAL);
    // No header at all: answered EINVAL with unique 0 if there is room…
    let r = c.send_raw(vec![vec![1, 2, 3]], &[16]).unwrap();
    assert_eq!(r.header.map(|h: OutHeader| (h.error, h.unique)), Some((-libc::EINVAL, 0)));
    // …and returned with nothing written when there is not.
    let r = c.send_raw(vec![vec![1, 2, 3]], &[15]).unwrap();
    assert_eq!((r.written, r.header), (0, None));
}

#[test]
fn header_and_reply_may_straddle_any_segment_boundary() {
    let (_fs, dev) = device(SessionConfig::default());
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    for cut in 1..56 {
        let r = c
            .call_split(
                1,
                &Operation::Getattr(Default::default()),
                &[],
                &Split::At(vec![cut, cut + 3]),
                &[7, 0, 50, 63],
            )
            .unwrap();
        assert_eq!(r.error(), 0, "cut at {cut}");
        let out: abi::AttrOut = r.parse().unwrap();
        assert_eq!(out.attr.ino, 1);
        assert_eq!(out.attr.mode, libc::S_IFDIR | 0o755);
    }
}

#[test]
fn metrics_count_requests_per_opcode_when_enabled() {
    let (_fs, dev) = device(SessionConfig { metrics: true, ..Default::default() });
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    for _ in 0..5 {
        getattr(&c);
    }
    c.call(1, &Operation::Statfs, &[], 80);
    let snap = dev.metrics().snapshot();
    let get = |op: &str| snap.iter().find(|s| s.op == op).map(|s| (s.count, s.errors));
    assert_eq!(get("getattr"), Some((5, 0)));
    assert_eq!(get("statfs"), Some((1, 1)));
    assert_eq!(get("init"), Some((1, 0)));
}
