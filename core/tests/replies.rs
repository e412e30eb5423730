//! Reply tokens through the whole request path: inline, from another thread, dropped,
//! in-place data, zero-copy write payloads, directory entries and the request context.

use dpfs_core::abi::{self, AttrOut, Dirent, EntryOut, WriteOut};
use dpfs_core::fs::{Context, Entry, ReadArgs, WriteArgs, WriteData};
use dpfs_core::local::{LocalClient, Split};
use dpfs_core::operation::Operation;
use dpfs_core::reply::*;
use dpfs_core::segments::SegWriter;
use dpfs_core::{Device, DeviceId, Errno, FileSystem, SessionConfig};
use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;
use zerocopy::FromBytes;

#[derive(Default)]
struct Scripted {
    last_ctx: Mutex<Option<Context>>,
    written: Mutex<Vec<u8>>,
}

fn entry(ino: u64) -> Entry {
    Entry {
        ino,
        generation: 7,
        attr: abi::Attr { ino, mode: libc::S_IFREG | 0o644, nlink: 1, ..Default::default() },
        entry_timeout: Duration::from_millis(1500),
        attr_timeout: Duration::from_secs(2),
    }
}

impl FileSystem for Scripted {
    fn lookup(&self, ctx: &Context, _parent: u64, name: &[u8], reply: ReplyEntry) {
        *self.last_ctx.lock() = Some(*ctx);
        match name {
            // Answer later, from another thread, as an io_uring or network backend does.
            b"async" => {
                std::thread::spawn(move || {
                    std::thread::sleep(Duration::from_millis(5));
                    reply.entry(&entry(42))
                });
            }
            // Forget to answer: the guest must still get EIO.
            b"dropped" => drop(reply),
            _ => reply.error(Errno::ENOENT),
        }
    }
    fn read(&self, _ctx: &Context, _ino: u64, args: ReadArgs, reply: ReplyData) {
        // Fill in place, as preadv into the segments would.
        let segs = reply.buffer(args.size as usize);
        let pattern: Vec<u8> = (0..args.size).map(|i| (i as u64 + args.offset) as u8).collect();
        SegWriter::new(&segs).write_at(0, &pattern[..dpfs_core::segments::total_len(&segs)]).unwrap();
        reply.commit(args.size as usize)
    }
    fn write(&self, _ctx: &Context, _ino: u64, _args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        let mut v = vec![0u8; data.len()];
        data.copy_to(&mut v);
        *self.written.lock() = v;
        reply.written(data.len() as u32)
    }
    fn readdir(&self, _ctx: &Context, _ino: u64, args: ReadArgs, mut reply: ReplyDir) {
        for i in args.offset..100 {
            let name = format!("file-{i}");
            if !reply.add(1000 + i, i + 1, libc::DT_REG as u32, name.as_bytes()) {
                break;
            }
        }
        reply.done()
    }
    fn readdirplus(&self, _ctx: &Context, _ino: u64, args: ReadArgs, mut reply: ReplyDirPlus) {
        for i in args.offset..3 {
            if !reply.fits(4) || !reply.add(&entry(2000 + i), i + 1, b"name") {
                break;
            }
        }
        reply.done()
    }
    fn setattr(&self, _ctx: &Context, ino: u64, attr: &dpfs_core::fs::SetAttr, reply: ReplyAttr) {
        let mut a = entry(ino).attr;
        a.size = attr.size.unwrap_or(0);
        reply.attr(&a, Duration::from_secs(1))
    }
}

fn setup() -> (Arc<Scripted>, Device) {
    let fs = Arc::new(Scripted::default());
    let dev = Device::new(DeviceId(3), fs.clone(), SessionConfig::default());
    (fs, dev)
}

#[test]
fn a_reply_from_another_thread_completes_the_request() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let out: EntryOut = c.expect_ok(c.call(1, &Operation::Lookup { name: b"async" }, &[], 128)).unwrap();
    assert_eq!((out.nodeid, out.generation, out.entry_valid, out.entry_valid_nsec), (42, 7, 1, 500_000_000));
    assert_eq!((out.attr_valid, out.attr_valid_nsec), (2, 0));
}

#[test]
fn a_dropped_token_answers_eio() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let r = c.call(1, &Operation::Lookup { name: b"dropped" }, &[], 128).unwrap();
    assert_eq!(r.error(), -libc::EIO);
    assert_eq!(r.written, 16);
}

#[test]
fn context_carries_caller_device_and_unique() {
    let (fs, dev) = setup();
    let mut c = LocalClient::new(&dev);
    c.init().unwrap();
    c.uid = 1000;
    c.gid = 100;
    c.call(1, &Operation::Lookup { name: b"x" }, &[], 128).unwrap();
    let ctx = fs.last_ctx.lock().unwrap();
    assert_eq!((ctx.uid, ctx.gid, ctx.pid, ctx.device), (1000, 100, 1, DeviceId(3)));
    assert_eq!(ctx.unique, 2, "INIT was 1");
}

#[test]
fn read_fills_reply_segments_in_place_across_boundaries() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let read = abi::ReadIn { offset: 10, size: 4096, ..Default::default() };
    let r = c.call_split(1, &Operation::Read(read), &[], &Split::Linux, &[10, 1000, 0, 4000]).unwrap();
    assert_eq!(r.error(), 0);
    assert_eq!(r.body.len(), 4096);
    assert!(r.body.iter().enumerate().all(|(i, &b)| b == (i as u64 + 10) as u8));
    // A reply buffer smaller than the request's size bounds the read.
    let r = c.call_split(1, &Operation::Read(read), &[], &Split::Linux, &[16, 100]).unwrap();
    assert_eq!((r.error(), r.body.len()), (0, 100));
}

#[test]
fn write_payload_arrives_intact_whatever_the_segmentation() {
    let (fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let payload: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
    let w = abi::WriteIn { size: payload.len() as u32, offset: 5, ..Default::default() };
    for cuts in [vec![], vec![13, 80, 81, 4000, 9000], vec![40, 80]] {
        let r = c.call_split(2, &Operation::Write(w), &payload, &Split::At(cuts.clone()), &[16, 8]).unwrap();
        let out = WriteOut::read_from_bytes(&r.body).unwrap();
        assert_eq!(out.size, 10_000, "cuts {cuts:?}");
        assert_eq!(*fs.written.lock(), payload);
    }
    // A size field that disagrees with the payload is refused before the backend sees it.
    let bad = abi::WriteIn { size: 9_999, ..w };
    let r = c.call(2, &Operation::Write(bad), &payload, 8).unwrap();
    assert_eq!(r.error(), -libc::EINVAL);
}

fn dirents(body: &[u8]) -> Vec<(u64, u64, String)> {
    let mut out = vec![];
    let mut b = body;
    while let Ok((d, rest)) = Dirent::read_from_prefix(b) {
        let name = String::from_utf8(rest[..d.namelen as usize].to_vec()).unwrap();
        out.push((d.ino, d.off, name));
        b = &b[abi::dirent_align(24 + d.namelen as usize)..];
    }
    out
}

#[test]
fn readdir_stops_at_the_buffer_size_and_resumes_at_the_cookie() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let mut seen = vec![];
    let mut off = 0;
    loop {
        let arg = abi::ReadIn { offset: off, size: 256, ..Default::default() };
        let r = c.call(1, &Operation::Readdir(arg), &[], 4096).unwrap();
        assert!(r.body.len() <= 256);
        let ents = dirents(&r.body);
        if ents.is_empty() {
            break;
        }
        off = ents.last().unwrap().1;
        seen.extend(ents);
    }
    assert_eq!(seen.len(), 100);
    assert!(seen.iter().enumerate().all(|(i, e)| e.2 == format!("file-{i}") && e.0 == 1000 + i as u64));
}

#[test]
fn readdirplus_entries_carry_entry_out_and_dirent() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let arg = abi::ReadIn { size: 4096, ..Default::default() };
    let r = c.call(1, &Operation::Readdirplus(arg), &[], 4096).unwrap();
    assert_eq!(r.body.len(), 3 * abi::dirent_align(152 + 4));
    let e = EntryOut::read_from_prefix(&r.body).unwrap().0;
    assert_eq!((e.nodeid, e.attr.ino), (2000, 2000));
    let d = Dirent::read_from_prefix(&r.body[128..]).unwrap().0;
    assert_eq!((d.ino, d.off, d.namelen, d.typ), (2000, 1, 4, libc::DT_REG as u32));
    // Too small for even one entry: an empty (end-of-directory) answer, not an error.
    let arg = abi::ReadIn { size: 100, ..Default::default() };
    let r = c.call(1, &Operation::Readdirplus(arg), &[], 4096).unwrap();
    assert_eq!((r.error(), r.body.len()), (0, 0));
}

#[test]
fn setattr_reaches_the_backend_decoded() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let arg = abi::SetattrIn { valid: abi::fattr::SIZE, size: 12345, ..Default::default() };
    let out: AttrOut = c.expect_ok(c.call(9, &Operation::Setattr(arg), &[], 104)).unwrap();
    assert_eq!((out.attr.ino, out.attr.size), (9, 12345));
}

#[test]
fn a_reply_that_does_not_fit_the_buffers_becomes_eio() {
    let (_fs, dev) = setup();
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    let arg = abi::SetattrIn { valid: abi::fattr::SIZE, size: 1, ..Default::default() };
    let r = c.call_split(9, &Operation::Setattr(arg), &[], &Split::Linux, &[16, 50]).unwrap();
    assert_eq!(r.error(), -libc::EIO);
}
