//! Where the gateway's QD1 latency goes: round trips of 4 KiB READs (null backend) through
//! the forwarder and an in-process gateway on loopback, against the floor of the same
//! exchange as a bare TCP ping-pong between two threads (80-byte request, 4112-byte reply).
//! Prints p50 and mean of each. `cargo run --release -p dpfs-remote --example rtt [N]`

use dpfs_core::abi::{self, OutHeader};
use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
use dpfs_core::{owned_request, DeviceId, Handler};
use dpfs_remote::{Forwarder, ForwarderConfig, Gateway, GatewayConfig, Key};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};
use zerocopy::FromBytes;

fn stats(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<44} p50 {:>7.1} us   mean {:>7.1} us",
        v[v.len() / 2].as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
}

fn call(h: &dyn Handler, unique: u64, op: &Operation<'_>, reply: usize) -> Vec<u8> {
    let msg =
        encode_message(MessageHeader { unique, nodeid: 2, uid: 0, gid: 0, pid: 1 }, op, &[], None, Layout::default());
    let (tx, rx) = mpsc::channel();
    h.handle(owned_request(DeviceId(0), vec![msg], &[16, reply], move |r| {
        let _ = tx.send(r.bytes());
    }));
    rx.recv_timeout(Duration::from_secs(10)).expect("reply")
}

fn main() {
    let n: usize = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(20_000);
    let key = Key::new(b"benchmark key, 16+ bytes").unwrap();

    // Bare TCP ping-pong: the floor of any design with one hop each way.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut s, _) = l.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let (mut req, reply) = ([0u8; 80], vec![0u8; 4112]);
        while s.read_exact(&mut req).is_ok() {
            if s.write_all(&reply).is_err() {
                break;
            }
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let (req, mut reply) = ([0u8; 80], vec![0u8; 4112]);
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        c.write_all(&req).unwrap();
        c.read_exact(&mut reply).unwrap();
        v.push(t.elapsed());
    }
    stats("bare TCP ping-pong (80 B / 4112 B)", v);

    // In-process null, no network.
    let fs: Arc<dyn dpfs_core::FileSystem> = Arc::new(dpfs_backend_null::NullFs::new());
    let local = dpfs_core::Dispatcher::new(Default::default(), move |_| Ok(fs.clone()));
    local.register_device(DeviceId(0)).unwrap();
    run("null in-process (Dispatcher)", &local, n);

    // Through the forwarder and the gateway.
    let cfg = GatewayConfig {
        key: key.clone(),
        threads: 1,
        session: Default::default(),
        factory: Arc::new(|_| Ok(Arc::new(dpfs_backend_null::NullFs::new()) as Arc<dyn dpfs_core::FileSystem>)),
    };
    let gw = Gateway::bind("127.0.0.1:0".parse().unwrap(), cfg).unwrap().start().unwrap();
    let f = Forwarder::start(ForwarderConfig::new(vec![gw.local_addr()], key, "rtt".into())).unwrap();
    f.register_device(DeviceId(0)).unwrap();
    run("null through forwarder + gateway", &f, n);
    gw.shutdown();
}

fn run(name: &str, h: &dyn Handler, n: usize) {
    let init =
        abi::InitIn { major: 7, minor: 45, max_readahead: 1 << 17, flags: u32::MAX, flags2: u32::MAX, unused: [0; 11] };
    let r = call(h, 1, &Operation::Init(init), 4096);
    assert_eq!(OutHeader::read_from_prefix(&r).unwrap().0.error, 0);
    let read = Operation::Read(abi::ReadIn { size: 4096, ..Default::default() });
    let mut v = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let r = call(h, 2 + i as u64, &read, 4096);
        v.push(t.elapsed());
        assert_eq!(OutHeader::read_from_prefix(&r).unwrap().0.error, 0);
    }
    stats(name, v);
}
