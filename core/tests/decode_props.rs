//! Property tests of the decoder: valid requests survive any segmentation unchanged, and
//! arbitrary bytes never panic, never hang and always yield a well-formed reply or none.

use dpfs_core::abi::{self, OutHeader};
use dpfs_core::fs::{Context, Entry};
use dpfs_core::local::{cut, LocalClient, Split};
use dpfs_core::operation::{encode_message, item_list, Layout, MessageHeader, Operation};
use dpfs_core::parse::{parse, ArgBuf};
use dpfs_core::reply::*;
use dpfs_core::segments::{gather, IoSeg};
use dpfs_core::{Device, DeviceId, FileSystem, SessionConfig};
use proptest::prelude::*;
use std::sync::Arc;
use zerocopy::FromBytes;

/// Cases per property: bounded for CI, `PROPTEST_CASES=1000000` for a soak.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Number of operation kinds `build` knows (every opcode 1–53 that exists).
const KINDS: usize = 51;

fn st<T: FromBytes>(raw: &[u8]) -> T {
    T::read_from_prefix(raw).expect("raw is 128 bytes").0
}

/// Builds operation `kind` from raw struct bytes and owned names, fixing the fields that
/// must agree with the variable parts (sizes, counts).
fn build<'a>(kind: usize, raw: &[u8], n1: &'a [u8], n2: &'a [u8], data: &'a [u8], layout: Layout) -> Operation<'a> {
    use Operation as O;
    let items16 = &data[..data.len() / 16 * 16];
    match kind {
        0 => O::Lookup { name: n1 },
        1 => O::Forget(st(raw)),
        2 => O::Getattr(st(raw)),
        3 => O::Setattr(st(raw)),
        4 => O::Readlink,
        5 => O::Symlink { name: n1, target: n2 },
        6 => O::Mknod { arg: st(raw), name: n1 },
        7 => O::Mkdir { arg: st(raw), name: n1 },
        8 => O::Unlink { name: n1 },
        9 => O::Rmdir { name: n1 },
        10 => O::Rename { arg: st(raw), old: n1, new: n2 },
        11 => O::Link { arg: st(raw), name: n1 },
        12 => O::Open(st(raw)),
        13 => O::Read(st(raw)),
        14 => O::Write(st(raw)),
        15 => O::Statfs,
        16 => O::Release(st(raw)),
        17 => O::Fsync(st(raw)),
        18 => {
            let mut arg: abi::SetxattrIn = st(raw);
            arg.size = data.len() as u32;
            if !layout.setxattr_ext {
                arg.setxattr_flags = 0;
                arg.padding = 0;
            }
            O::Setxattr { arg, name: n1, value: data }
        }
        19 => O::Getxattr { arg: st(raw), name: n1 },
        20 => O::Listxattr(st(raw)),
        21 => O::Removexattr { name: n1 },
        22 => O::Flush(st(raw)),
        23 => O::Init(st(raw)),
        24 => O::Opendir(st(raw)),
        25 => O::Readdir(st(raw)),
        26 => O::Releasedir(st(raw)),
        27 => O::Fsyncdir(st(raw)),
        28 => O::Getlk(st(raw)),
        29 => O::Setlk(st(raw)),
        30 => O::Setlkw(st(raw)),
        31 => O::Access(st(raw)),
        32 => O::Create { arg: st(raw), name: n1 },
        33 => O::Interrupt(st(raw)),
        34 => O::Bmap(st(raw)),
        35 => O::Destroy,
        36 => {
            let mut arg: abi::IoctlIn = st(raw);
            arg.in_size = data.len() as u32;
            O::Ioctl { arg, data }
        }
        37 => O::Poll(st(raw)),
        38 => O::NotifyReply,
        39 => O::BatchForget { items: item_list(items16) },
        40 => O::Fallocate(st(raw)),
        41 => O::Readdirplus(st(raw)),
        42 => O::Rename2 { arg: st(raw), old: n1, new: n2 },
        43 => O::Lseek(st(raw)),
        44 => O::CopyFileRange(st(raw)),
        45 => O::Setupmapping(st(raw)),
        46 => O::Removemapping { items: item_list(items16) },
        47 => O::Syncfs(st(raw)),
        48 => O::Tmpfile { arg: st(raw), name: n1 },
        49 => O::Statx(st(raw)),
        _ => O::CopyFileRange64(st(raw)),
    }
}

fn name() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 1..80)
        .prop_map(|v| v.into_iter().map(|b| if b == 0 || b == b'/' { b'x' } else { b }).collect())
}

fn segs_of(bufs: &mut [Vec<u8>]) -> Vec<IoSeg> {
    // SAFETY: every test keeps `bufs` alive while the segments are used.
    bufs.iter_mut().map(|b| unsafe { IoSeg::new(b.as_mut_ptr(), b.len()) }).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2000), ..ProptestConfig::default() })]

    #[test]
    fn valid_requests_decode_identically_under_any_segmentation(
        kind in 0..KINDS,
        raw in proptest::collection::vec(any::<u8>(), 128),
        n1 in name(),
        n2 in name(),
        data in proptest::collection::vec(any::<u8>(), 0..300),
        payload in proptest::collection::vec(any::<u8>(), 0..5000),
        supp in proptest::option::of(any::<u32>()),
        ext in any::<bool>(),
        hdr in (any::<u64>(), any::<u64>(), any::<u32>(), any::<u32>(), any::<u32>()),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12),
    ) {
        let layout = Layout { minor: 45, setxattr_ext: ext };
        let mut op = build(kind, &raw, &n1, &n2, &data, layout);
        let payload: &[u8] = if let Operation::Write(w) = &mut op {
            w.size = payload.len() as u32;
            &payload
        } else {
            &[]
        };
        let h = MessageHeader { unique: hdr.0, nodeid: hdr.1, uid: hdr.2, gid: hdr.3, pid: hdr.4 };
        let msg = encode_message(h, &op, payload, supp, layout);
        let at: Vec<usize> = cuts.iter().map(|i| i.index(msg.len() + 1)).collect();
        let mut bufs = cut(&msg, &Split::At(at), 0);
        let segs = segs_of(&mut bufs);
        let mut buf = ArgBuf::new();
        let parsed = parse(&segs, &mut buf, layout);
        prop_assert!(parsed.is_ok(), "{:?} failed: {:?}", op.opcode(), parsed.err());
        let p = parsed.unwrap();
        prop_assert_eq!(p.op, op);
        prop_assert_eq!((p.header.unique, p.header.nodeid), (h.unique, h.nodeid));
        prop_assert_eq!((p.header.uid, p.header.gid, p.header.pid), (h.uid, h.gid, h.pid));
        prop_assert_eq!(p.header.len as usize, msg.len());
        prop_assert_eq!(gather(&p.payload), payload.to_vec());
        prop_assert_eq!(p.supplementary_gid, supp);
    }
}

/// Answers the operations that carry data so that arbitrary requests reach real encoders.
struct Answering;

impl FileSystem for Answering {
    fn lookup(&self, _c: &Context, _p: u64, _n: &[u8], reply: ReplyEntry) {
        reply.entry(&Entry { ino: 2, ..Default::default() })
    }
    fn getattr(&self, _c: &Context, ino: u64, _fh: Option<u64>, reply: ReplyAttr) {
        reply.attr(&abi::Attr { ino, ..Default::default() }, Default::default())
    }
    fn read(&self, _c: &Context, _i: u64, a: dpfs_core::fs::ReadArgs, reply: ReplyData) {
        reply.commit(a.size as usize)
    }
    fn write(&self, _c: &Context, _i: u64, _a: dpfs_core::fs::WriteArgs, d: dpfs_core::fs::WriteData, r: ReplyWrite) {
        r.written(d.len() as u32)
    }
    fn readdir(&self, _c: &Context, _i: u64, a: dpfs_core::fs::ReadArgs, mut reply: ReplyDir) {
        for i in a.offset..a.offset.saturating_add(50) {
            if !reply.add(i, i + 1, 8, b"entry") {
                break;
            }
        }
        reply.done()
    }
    fn getxattr(&self, _c: &Context, _i: u64, _n: &[u8], size: u32, reply: ReplyXattr) {
        if size == 0 {
            reply.size(5)
        } else {
            reply.data(b"value")
        }
    }
}

fn message() -> impl Strategy<Value = Vec<u8>> {
    let valid_header = (0u32..60, any::<u64>(), any::<u64>(), 0u16..4, proptest::collection::vec(any::<u8>(), 0..400))
        .prop_map(|(opcode, unique, nodeid, extlen, body)| {
            let h = abi::InHeader {
                len: (40 + body.len()) as u32,
                opcode,
                unique,
                nodeid,
                total_extlen: extlen,
                ..Default::default()
            };
            let mut v = zerocopy::IntoBytes::as_bytes(&h).to_vec();
            v.extend_from_slice(&body);
            v
        });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..200), valid_header]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(3000), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_always_complete_with_a_wellformed_reply_or_none(
        msg in message(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        reply_segs in proptest::collection::vec(0usize..300, 0..4),
        initialised in any::<bool>(),
    ) {
        let dev = Device::new(DeviceId(1), Arc::new(Answering), SessionConfig::default());
        let c = LocalClient::new(&dev);
        if initialised {
            prop_assert!(c.init().is_some());
        }
        let at: Vec<usize> = cuts.iter().map(|i| i.index(msg.len() + 1)).collect();
        let r = c.send_raw(cut(&msg, &Split::At(at), 0), &reply_segs);
        prop_assert!(r.is_some(), "request was never completed");
        let r = r.unwrap();
        prop_assert!(r.written <= reply_segs.iter().sum::<usize>());
        if r.written > 0 {
            let h: OutHeader = r.header.unwrap();
            prop_assert_eq!(h.len as usize, r.written);
            prop_assert!(h.error <= 0 && h.error > -4096);
            if let Ok((ih, _)) = abi::InHeader::read_from_prefix(&msg) {
                prop_assert_eq!(h.unique, ih.unique);
            }
        }
    }
}
