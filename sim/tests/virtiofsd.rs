//! Round trips through virtiofsd (skipped, with a message, if it is not installed).

mod common;

use common::Daemon;
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::operation::Operation;
use dpfs_sim::ops::Xattr;
use dpfs_sim::Request;
use dpfs_sim::{Client, ClientOptions, DeviceOptions, Segmentation};
use std::time::Duration;

fn connect(d: &Daemon, opts: ClientOptions) -> Client {
    Client::connect(&d.socket, &opts).expect("connect and INIT")
}

#[test]
fn init_create_write_read_readdir_unlink() {
    let Some(d) = Daemon::virtiofsd() else { return };
    round_trip(&d, ClientOptions::default());
}

/// No indirect tables, no EVENT_IDX, one descriptor each way.
#[test]
fn contiguous_direct_chains_without_event_idx() {
    let Some(d) = Daemon::virtiofsd() else { return };
    let device = DeviceOptions { event_idx: false, indirect: false, queue_size: 256, ..Default::default() };
    round_trip(&d, ClientOptions { device, segmentation: Segmentation::Contiguous, ..Default::default() });
}

/// Headers straddling descriptors: the device must honour VIRTIO_F_ANY_LAYOUT.
#[test]
fn odd_cuts_in_headers_and_replies() {
    let Some(d) = Daemon::virtiofsd() else { return };
    let segmentation = Segmentation::At { readable: vec![1, 13, 39, 41, 47, 60, 4000], writable: vec![3, 15, 17, 100] };
    let device = DeviceOptions { indirect: false, ..Default::default() };
    round_trip(&d, ClientOptions { device, segmentation, ..Default::default() });
}

fn round_trip(d: &Daemon, opts: ClientOptions) {
    let c = connect(d, opts);
    let init = c.init_out();
    assert_eq!(init.major, 7);
    assert!(init.minor >= 27, "virtiofsd speaks 7.{}", init.minor);
    assert!(c.max_write() >= 4096);

    let (entry, open) = c.create(ROOT_ID, b"hello.txt", libc::O_RDWR as u32, 0o644).unwrap();
    assert_ne!(entry.nodeid, 0);
    let data: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(c.write(entry.nodeid, open.fh, 0, &data).unwrap(), data.len() as u32);
    assert_eq!(c.read(entry.nodeid, open.fh, 0, 65536).unwrap(), data);
    assert_eq!(c.read(entry.nodeid, open.fh, 9000, 4096).unwrap(), data[9000..]);
    assert_eq!(std::fs::read(d.shared.join("hello.txt")).unwrap(), data, "the host sees the write");

    let attr = c.getattr(entry.nodeid, None).unwrap();
    assert_eq!(attr.attr.size, data.len() as u64);
    c.flush(entry.nodeid, open.fh, 0).unwrap();
    c.release(entry.nodeid, open.fh, libc::O_RDWR as u32).unwrap();

    let names: Vec<Vec<u8>> = c.list_dir(ROOT_ID).unwrap().into_iter().map(|e| e.name).collect();
    assert!(names.contains(&b"hello.txt".to_vec()), "{names:?}");

    c.unlink(ROOT_ID, b"hello.txt").unwrap();
    c.forget(entry.nodeid, 1).unwrap();
    assert_eq!(c.lookup(ROOT_ID, b"hello.txt").unwrap_err().errno(), Some(dpfs_core::Errno::ENOENT));
    assert!(!d.shared.join("hello.txt").exists());
}

#[test]
fn pipelined_writes_then_reads() {
    let Some(d) = Daemon::virtiofsd() else { return };
    let c = connect(&d, ClientOptions { depth: 32, ..Default::default() });
    let (e, o) = c.create(ROOT_ID, b"pipe", libc::O_RDWR as u32, 0o644).unwrap();
    let mut q = c.queue(0);
    let mut tokens = Vec::new();
    for i in 0..32u8 {
        let buf = [i; 4096];
        let arg = abi::WriteIn { fh: o.fh, offset: i as u64 * 4096, size: 4096, ..Default::default() };
        tokens.push(q.submit(&Request::with_payload(e.nodeid, Operation::Write(arg), &buf)).unwrap());
    }
    assert!(q.submit(&Request::new(e.nodeid, Operation::Statfs)).is_err(), "all 32 slots are busy");
    let mut done = Vec::new();
    while done.len() < 32 {
        q.wait(&mut done, Some(Duration::from_secs(10))).unwrap();
    }
    for t in tokens {
        let st = q.status(t).unwrap();
        assert_eq!((st.error, st.body_len), (0, 8));
    }
    let mut tokens = Vec::new();
    for i in 0..32u64 {
        let arg = abi::ReadIn { fh: o.fh, offset: i * 4096, size: 4096, ..Default::default() };
        tokens.push(q.submit(&Request::new(e.nodeid, Operation::Read(arg))).unwrap());
    }
    let mut done = Vec::new();
    while done.len() < 32 {
        q.wait(&mut done, Some(Duration::from_secs(10))).unwrap();
    }
    for (i, t) in tokens.into_iter().enumerate() {
        let r = q.take(t).unwrap().ok().unwrap();
        assert_eq!(r.body, vec![i as u8; 4096]);
    }
    assert!(q.counters().kicks <= 4, "one kick per batch: {:?}", q.counters());
}

#[test]
fn namespace_and_xattr_ops() {
    let Some(d) = Daemon::virtiofsd() else { return };
    let c = connect(&d, ClientOptions::default());
    let dir = c.mkdir(ROOT_ID, b"dir", 0o755, 0o022).unwrap();
    let (f, o) = c.create(dir.nodeid, b"a", libc::O_RDWR as u32, 0o600).unwrap();
    c.release(f.nodeid, o.fh, libc::O_RDWR as u32).unwrap();
    c.rename(dir.nodeid, b"a", ROOT_ID, b"b", 0).unwrap();
    let l = c.link(f.nodeid, dir.nodeid, b"hard").unwrap();
    assert_eq!(l.attr.nlink, 2);
    let s = c.symlink(ROOT_ID, b"sym", b"dir/hard").unwrap();
    assert_eq!(c.readlink(s.nodeid).unwrap(), b"dir/hard");
    c.setxattr(f.nodeid, b"user.k", b"value", 0).unwrap();
    assert_eq!(c.getxattr(f.nodeid, b"user.k", 0).unwrap(), Xattr::Size(5));
    assert_eq!(c.getxattr(f.nodeid, b"user.k", 64).unwrap(), Xattr::Value(b"value".to_vec()));
    assert!(c.list_xattr_names(f.nodeid).unwrap().contains(&b"user.k".to_vec()));
    c.removexattr(f.nodeid, b"user.k").unwrap();
    let attr =
        abi::SetattrIn { valid: abi::fattr::SIZE | abi::fattr::MODE, size: 12345, mode: 0o640, ..Default::default() };
    let a = c.setattr(f.nodeid, attr).unwrap();
    assert_eq!((a.attr.size, a.attr.mode & 0o7777), (12345, 0o640));
    assert!(c.statfs(ROOT_ID).unwrap().bsize > 0);
    let plus = c.readdirplus(dir.nodeid, c.opendir(dir.nodeid, 0).unwrap().fh, 0, 4096).unwrap();
    assert!(plus.iter().any(|p| p.dirent.name == b"hard" && p.entry.nodeid == f.nodeid), "{plus:?}");
    assert_eq!(c.rmdir(ROOT_ID, b"dir").unwrap_err().errno(), Some(dpfs_core::Errno::ENOTEMPTY));
    c.unlink(dir.nodeid, b"hard").unwrap();
    c.rmdir(ROOT_ID, b"dir").unwrap();
    c.unlink(ROOT_ID, b"b").unwrap();
    c.unlink(ROOT_ID, b"sym").unwrap();
    assert!(c.list_dir(ROOT_ID).unwrap().iter().all(|e| e.name == b"." || e.name == b".."));
}
