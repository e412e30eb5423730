//! The [`Answer`] glue through the whole request path: every token is answered from another
//! thread through the trait, and the guest sees the success body for `Ok` and the errno
//! (with no body) for `Err`.

use dpfs_core::abi::{self, AttrOut, EntryOut, GetxattrOut, LseekOut, OpenOut, StatfsOut, WriteOut};
use dpfs_core::fs::{Attr, Context, Entry, Statfs, WriteArgs, WriteData};
use dpfs_core::local::{LocalClient, Reply};
use dpfs_core::operation::Operation;
use dpfs_core::reply::*;
use dpfs_core::{Device, DeviceId, Errno, FileSystem, SessionConfig};
use std::sync::Arc;
use std::time::Duration;
use zerocopy::FromBytes;

/// Node ids at or above this fail with ESTALE; below it they succeed.
const FAIL: u64 = 100;

fn entry(ino: u64) -> Entry {
    Entry {
        ino,
        generation: 9,
        attr: Attr { ino, mode: libc::S_IFREG | 0o600, nlink: 1, ..Default::default() },
        entry_timeout: Duration::from_secs(3),
        attr_timeout: Duration::from_millis(250),
    }
}

/// Answers `reply` with `result` from a new thread, as a tokio task or a completion thread
/// would: generic over the token, so only the trait decides which path is taken.
fn later<R>(reply: R, result: Result<R::Value, Errno>)
where
    R: Answer + 'static,
    R::Value: Send + 'static,
{
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(2));
        reply.answer(result)
    });
}

fn ok_below<T>(ino: u64, v: T) -> Result<T, Errno> {
    if ino < FAIL {
        Ok(v)
    } else {
        Err(Errno::ESTALE)
    }
}

struct Late;

impl FileSystem for Late {
    fn lookup(&self, _ctx: &Context, parent: u64, _name: &[u8], reply: ReplyEntry) {
        later(reply, ok_below(parent, entry(42)))
    }
    fn getattr(&self, _ctx: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        later(reply, ok_below(ino, (entry(ino).attr, Duration::new(5, 7))))
    }
    fn unlink(&self, _ctx: &Context, parent: u64, _name: &[u8], reply: ReplyEmpty) {
        later(reply, ok_below(parent, ()))
    }
    fn readlink(&self, _ctx: &Context, ino: u64, reply: ReplyData) {
        later(reply, ok_below(ino, b"target/of/link".to_vec()))
    }
    fn open(&self, _ctx: &Context, ino: u64, _flags: u32, reply: ReplyOpen) {
        later(reply, ok_below(ino, (77, abi::fopen::KEEP_CACHE)))
    }
    fn write(&self, _ctx: &Context, ino: u64, _args: WriteArgs, data: WriteData, reply: ReplyWrite) {
        later(reply, ok_below(ino, data.len() as u32))
    }
    fn statfs(&self, _ctx: &Context, ino: u64, reply: ReplyStatfs) {
        later(reply, ok_below(ino, Statfs { blocks: 1234, bsize: 4096, namelen: 255, ..Default::default() }))
    }
    fn getxattr(&self, _ctx: &Context, ino: u64, _name: &[u8], size: u32, reply: ReplyXattr) {
        later(reply, ok_below(ino, ()).and_then(|()| Xattr::sized(b"value".to_vec(), size)))
    }
    fn create(&self, _ctx: &Context, parent: u64, _name: &[u8], _m: u32, _u: u32, _f: u32, reply: ReplyCreate) {
        later(reply, ok_below(parent, (entry(43), 88, abi::fopen::DIRECT_IO)))
    }
    fn lseek(&self, _ctx: &Context, ino: u64, _fh: u64, offset: u64, _whence: u32, reply: ReplyLseek) {
        later(reply, ok_below(ino, offset + 4096))
    }
}

fn with_client(f: impl FnOnce(&LocalClient<'_>)) {
    let dev = Device::new(DeviceId(1), Arc::new(Late), SessionConfig::default());
    let c = LocalClient::new(&dev);
    c.init().unwrap();
    f(&c)
}

/// A successful reply's body, exactly `len` bytes long.
fn body(r: Option<Reply>, len: usize) -> Vec<u8> {
    let r = r.expect("the request was completed");
    assert_eq!(r.error(), 0, "expected success");
    assert_eq!(r.body.len(), len, "body length");
    assert_eq!(r.written, 16 + len);
    r.body
}

/// An error reply: the errno and nothing after the header.
fn errno(r: Option<Reply>) -> i32 {
    let r = r.expect("the request was completed");
    assert!(r.body.is_empty(), "an error carries no body");
    assert_eq!(r.written, 16);
    r.error()
}

fn parse<T: FromBytes>(b: &[u8]) -> T {
    T::read_from_prefix(b).unwrap().0
}

#[test]
fn ok_answers_with_each_tokens_success_body() {
    with_client(|c| {
        let e: EntryOut = parse(&body(c.call(1, &Operation::Lookup { name: b"x" }, &[], 256), 128));
        assert_eq!((e.nodeid, e.generation, e.entry_valid, e.attr_valid_nsec), (42, 9, 3, 250_000_000));

        let get = Operation::Getattr(abi::GetattrIn::default());
        let a: AttrOut = parse(&body(c.call(5, &get, &[], 256), 104));
        assert_eq!((a.attr.ino, a.attr_valid, a.attr_valid_nsec), (5, 5, 7));

        body(c.call(1, &Operation::Unlink { name: b"x" }, &[], 256), 0);

        assert_eq!(body(c.call(6, &Operation::Readlink, &[], 256), 14), b"target/of/link");

        let o: OpenOut = parse(&body(c.call(7, &Operation::Open(abi::OpenIn::default()), &[], 256), 16));
        assert_eq!((o.fh, o.open_flags), (77, abi::fopen::KEEP_CACHE));

        let w = abi::WriteIn { size: 5, ..Default::default() };
        let wo: WriteOut = parse(&body(c.call(8, &Operation::Write(w), b"hello", 256), 8));
        assert_eq!(wo.size, 5);

        let s: StatfsOut = parse(&body(c.call(1, &Operation::Statfs, &[], 256), 80));
        assert_eq!((s.st.blocks, s.st.bsize, s.st.namelen), (1234, 4096, 255));

        let probe = Operation::Getxattr { arg: abi::GetxattrIn { size: 0, padding: 0 }, name: b"user.a" };
        let x: GetxattrOut = parse(&body(c.call(9, &probe, &[], 256), 8));
        assert_eq!(x.size, 5);
        let get = Operation::Getxattr { arg: abi::GetxattrIn { size: 64, padding: 0 }, name: b"user.a" };
        assert_eq!(body(c.call(9, &get, &[], 256), 5), b"value");
        let small = Operation::Getxattr { arg: abi::GetxattrIn { size: 2, padding: 0 }, name: b"user.a" };
        assert_eq!(errno(c.call(9, &small, &[], 256)), -libc::ERANGE);

        let create = Operation::Create { arg: abi::CreateIn::default(), name: b"new" };
        let b = body(c.call(1, &create, &[], 256), 128 + 16);
        let (e, o): (EntryOut, OpenOut) = (parse(&b), parse(&b[128..]));
        assert_eq!((e.nodeid, o.fh, o.open_flags), (43, 88, abi::fopen::DIRECT_IO));

        let seek = Operation::Lseek(abi::LseekIn { offset: 10, whence: 3, ..Default::default() });
        let l: LseekOut = parse(&body(c.call(10, &seek, &[], 256), 8));
        assert_eq!(l.offset, 4106);
    })
}

#[test]
fn err_answers_with_the_errno_and_no_body() {
    with_client(|c| {
        let ops = [
            Operation::Lookup { name: b"x" },
            Operation::Getattr(abi::GetattrIn::default()),
            Operation::Unlink { name: b"x" },
            Operation::Readlink,
            Operation::Open(abi::OpenIn::default()),
            Operation::Statfs,
            Operation::Getxattr { arg: abi::GetxattrIn { size: 64, padding: 0 }, name: b"user.a" },
            Operation::Create { arg: abi::CreateIn::default(), name: b"new" },
            Operation::Lseek(abi::LseekIn::default()),
        ];
        for op in &ops {
            assert_eq!(errno(c.call(FAIL, op, &[], 256)), -libc::ESTALE, "{op:?}");
        }
        let w = abi::WriteIn { size: 5, ..Default::default() };
        assert_eq!(errno(c.call(FAIL, &Operation::Write(w), b"hello", 256)), -libc::ESTALE);
    })
}

#[test]
fn xattr_sized_probes_fits_and_refuses() {
    assert_eq!(Xattr::sized(b"abc".to_vec(), 0), Ok(Xattr::Size(3)));
    assert_eq!(Xattr::sized(b"abc".to_vec(), 3), Ok(Xattr::Data(b"abc".to_vec())));
    assert_eq!(Xattr::sized(b"abc".to_vec(), 2), Err(Errno::ERANGE));
}
