//! Property: whatever way a message is cut into descriptors (VIRTIO_F_ANY_LAYOUT: a header
//! may straddle two), the SNAP and DOCA flows give the host exactly the reply core gives
//! directly, complete each request once, and never panic, garbage included.

use dpfs_backend_mem::{MemConfig, MemFs};
use dpfs_core::abi::{InHeader, InitIn, OpenIn, ReadIn};
use dpfs_core::{owned_request, DeviceId, Dispatcher, FileSystem, Handler, OwnedReply, SessionConfig};
use dpfs_hal_snap::{Dma, DpuFlow, Flow};
use proptest::prelude::*;
use std::sync::mpsc;
use std::sync::Arc;
use zerocopy::IntoBytes;

fn msg(opcode: u32, unique: u64, nodeid: u64, args: &[u8]) -> Vec<u8> {
    let len = (std::mem::size_of::<InHeader>() + args.len()) as u32;
    [InHeader { len, opcode, unique, nodeid, ..Default::default() }.as_bytes(), args].concat()
}

/// A device with a seeded file, INIT done and the file open; returns the handler.
fn device(handler: impl FnOnce(Arc<dyn Handler>) -> Arc<dyn Handler>) -> (Arc<dyn Handler>, u64, u64) {
    let fs = Arc::new(MemFs::new(MemConfig::default()));
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let node = fs.seed_file("f", &data).unwrap();
    let d: Arc<dyn Handler> =
        Arc::new(Dispatcher::new(SessionConfig::default(), move |_| Ok(fs.clone() as Arc<dyn FileSystem>)));
    let h = handler(d);
    h.register_device(DeviceId(0)).unwrap();
    let init = InitIn { major: 7, minor: 45, max_readahead: 1 << 17, ..Default::default() };
    run(&h, vec![msg(26, 1, 0, init.as_bytes())], &[4096]);
    let open = OpenIn { flags: libc::O_RDONLY as u32, open_flags: 0 };
    let r = run(&h, vec![msg(14, 2, node, open.as_bytes())], &[16, 32]);
    let fh = u64::from_le_bytes(r.bytes()[16..24].try_into().unwrap());
    (h, node, fh)
}

fn run(h: &Arc<dyn Handler>, readable: Vec<Vec<u8>>, writable: &[usize]) -> OwnedReply {
    let (tx, rx) = mpsc::channel();
    h.handle(owned_request(DeviceId(0), readable, writable, move |r| tx.send(r).unwrap()));
    let r = rx.recv().expect("completed");
    assert!(rx.try_recv().is_err(), "completed twice");
    r
}

/// Cuts `bytes` at the given points.
fn cut(bytes: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut at = 0;
    for p in points.into_iter().chain([bytes.len()]) {
        if p > at {
            out.push(bytes[at..p].to_vec());
            at = p;
        }
    }
    out
}

fn sizes(total: usize, cuts: &[usize]) -> Vec<usize> {
    cut(&vec![0u8; total], cuts).iter().map(Vec::len).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn reads_match_the_direct_path(
        off in 0u64..22_000,
        size in 0u32..9000,
        rcuts in proptest::collection::vec(0usize..200, 0..4),
        wcuts in proptest::collection::vec(0usize..10_000, 0..5),
        flow in prop_oneof![Just(Flow::Snap), Just(Flow::Doca)],
    ) {
        let (direct, node, fh) = device(|d| d);
        let (modelled, _, fh2) = device(|d| Arc::new(DpuFlow::new(flow, Arc::new(Dma::new()), d)));
        prop_assert_eq!(fh, fh2);
        let arg = ReadIn { fh, offset: off, size, ..Default::default() };
        let m = msg(15, 10, node, arg.as_bytes());
        let w = sizes(16 + size as usize, &wcuts);
        let a = run(&direct, cut(&m, &rcuts), &w);
        let b = run(&modelled, cut(&m, &rcuts), &w);
        prop_assert_eq!(a.written, b.written);
        prop_assert_eq!(a.bytes(), b.bytes());
        // The read really read: data comes back for an offset inside the file.
        let want = (size as u64).min(20_000u64.saturating_sub(off)) as usize;
        prop_assert_eq!(a.written, 16 + want);
    }

    #[test]
    fn garbage_is_answered_once_as_core_answers_it(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        rcuts in proptest::collection::vec(0usize..300, 0..4),
        w in proptest::collection::vec(0usize..64, 0..4),
        flow in prop_oneof![Just(Flow::Snap), Just(Flow::Doca)],
    ) {
        let (direct, _, _) = device(|d| d);
        let (modelled, _, _) = device(|d| Arc::new(DpuFlow::new(flow, Arc::new(Dma::new()), d)));
        let a = run(&direct, cut(&bytes, &rcuts), &w);
        let b = run(&modelled, cut(&bytes, &rcuts), &w);
        prop_assert_eq!(a.written, b.written);
        prop_assert_eq!(a.bytes(), b.bytes());
    }
}
