//! The forwarder and the gateway together over loopback: requests round-trip, the key is
//! checked both ways, a connection reset in flight is invisible and runs nothing twice, a
//! stalled or dead gateway turns into EIO, and a restarted gateway serves the next mount.

mod common;

use common::*;
use dpfs_core::Handler;
use dpfs_remote::{probe, ForwarderConfig, Key, RemoteError};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

#[test]
fn requests_round_trip_through_the_gateway() {
    let gw = gateway();
    let f = forwarder(gw.local_addr(), key(), Duration::from_secs(10));
    let g = Guest::new(f.clone());
    let init = g.init().unwrap();
    assert_eq!(init.major, 7);
    let d = g.mkdir(1, "dir").unwrap();
    let (ino, fh) = g.create_excl(d.nodeid, "f").unwrap();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
    assert_eq!(g.write(ino, fh, 0, &data).unwrap(), data.len() as u32);
    assert_eq!(g.read(ino, fh, 0, data.len() as u32).unwrap(), data);
    assert_eq!(g.read(ino, fh, 299_990, 100).unwrap(), data[299_990..]);
    assert_eq!(g.lookup(d.nodeid, "nope").unwrap_err(), libc::ENOENT);
    assert_eq!(g.create_excl(d.nodeid, "f").unwrap_err(), libc::EEXIST);
    // A device reset reaches the gateway before the INIT that follows it (else that INIT
    // would answer EISCONN, or the reset would end the new session).
    for _ in 0..20 {
        f.reset_device(dpfs_core::DeviceId(0));
        g.init().unwrap();
        g.lookup(1, "dir").unwrap();
    }
    assert_eq!(gw.stats().sessions.load(Ordering::Relaxed), 1);
    gw.shutdown();
}

#[test]
fn many_requests_in_flight_each_get_their_own_reply() {
    // Sent without waiting, from two threads: all but the first of a burst go through the
    // network thread's batched writes, and the gateway answers them in batches.
    use dpfs_core::abi;
    use dpfs_core::operation::Operation;
    let gw = gateway();
    let f = forwarder(gw.local_addr(), key(), Duration::from_secs(10));
    let g = Arc::new(Guest::new(f.clone()));
    g.init().unwrap();
    let (ino, fh) = g.create_excl(1, "f").unwrap();
    let data: Vec<u8> = (0..256u32 * 1024).map(|i| (i / 1024 + i * 13) as u8).collect();
    assert_eq!(g.write(ino, fh, 0, &data).unwrap(), data.len() as u32);
    let threads: Vec<_> = (0..2u64)
        .map(|t| {
            let g = g.clone();
            std::thread::spawn(move || {
                let rx: Vec<_> = (0..128u64)
                    .map(|i| {
                        let off = (i * 2 + t) * 1024;
                        let arg = abi::ReadIn { fh, offset: off, size: 1024, ..Default::default() };
                        (off, g.send(ino, &Operation::Read(arg), &[], 1024))
                    })
                    .collect();
                rx.into_iter()
                    .map(|(off, rx)| (off, body(rx.recv_timeout(Duration::from_secs(20)).expect("a reply")).unwrap()))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for t in threads {
        for (off, got) in t.join().unwrap() {
            assert_eq!(got, data[off as usize..off as usize + 1024], "the reply to the READ at {off}");
        }
    }
    assert_eq!(gw.stats().replayed.load(Ordering::Relaxed), 0);
    gw.shutdown();
}

#[test]
fn devices_get_their_own_sessions() {
    let gw = gateway();
    let f = forwarder(gw.local_addr(), key(), Duration::from_secs(10));
    f.register_device(dpfs_core::DeviceId(1)).unwrap();
    let g0 = Guest::new(f.clone());
    g0.init().unwrap();
    g0.mkdir(1, "only-on-0").unwrap();
    // Device 1 is another tenant: its own FUSE session (no INIT yet) and namespace.
    assert_eq!(Guest1(f.clone()).lookup_uninit(), libc::EIO, "device 1's session is not initialised");
    assert_eq!(gw.stats().sessions.load(Ordering::Relaxed), 2);
    gw.shutdown();
}

/// Sends to device 1 (the common guest talks to device 0).
struct Guest1(Arc<dpfs_remote::Forwarder>);

impl Guest1 {
    fn lookup_uninit(&self) -> i32 {
        use dpfs_core::operation::{encode_message, Layout, MessageHeader, Operation};
        let h = MessageHeader { unique: 9, nodeid: 1, uid: 0, gid: 0, pid: 1 };
        let msg = encode_message(h, &Operation::Lookup { name: b"only-on-0" }, &[], None, Layout::default());
        let (tx, rx) = std::sync::mpsc::channel();
        let req = dpfs_core::owned_request(dpfs_core::DeviceId(1), vec![msg], &[16, 256], move |r| {
            let _ = tx.send(r);
        });
        self.0.handle(req);
        body(rx.recv_timeout(Duration::from_secs(20)).unwrap()).unwrap_err()
    }
}

#[test]
fn a_wrong_key_is_refused_on_both_sides() {
    let gw = gateway();
    let other = Key::new(b"another key, also long enough").unwrap();
    let cfg = ForwarderConfig::new(vec![gw.local_addr()], other.clone(), "t".into());
    let e = probe(&cfg).unwrap_err();
    assert!(matches!(e, RemoteError::GatewayAuth), "{e}");
    let ok = ForwarderConfig::new(vec![gw.local_addr()], key(), "t".into());
    probe(&ok).unwrap();
    // The gateway logged and counted the refusal: it notices on its own task, after the
    // forwarder hung up, so wait for the count (bounded) rather than race it.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while gw.stats().refused.load(Ordering::Relaxed) == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gw.stats().refused.load(Ordering::Relaxed) >= 1);
    // A forwarder with the wrong key never gets a request through: EIO at the deadline.
    let g = Guest::new(forwarder(gw.local_addr(), other, Duration::from_millis(300)));
    assert_eq!(g.init().unwrap_err(), libc::EIO);
    assert_eq!(gw.stats().executed.load(Ordering::Relaxed), 0);
    gw.shutdown();
}

#[test]
fn an_unreachable_gateway_is_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let mut cfg = ForwarderConfig::new(vec![port], key(), "t".into());
    cfg.connect_timeout = Duration::from_secs(2);
    let e = probe(&cfg).unwrap_err().to_string();
    assert!(e.contains("refused"), "{e}");
}

#[test]
fn resets_in_flight_are_invisible_and_nothing_runs_twice() {
    let gw = gateway();
    let proxy = Proxy::start(gw.local_addr());
    let g = Arc::new(Guest::new(forwarder(proxy.addr, key(), Duration::from_secs(20))));
    g.init().unwrap();
    let d = g.mkdir(1, "d").unwrap().nodeid;
    let before = gw.stats().executed.load(Ordering::Relaxed);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let resetter = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(15));
                proxy.reset();
                n += 1;
            }
            (n, proxy)
        })
    };
    // 4 threads x 150 exclusive creates and a write each: a create run twice would answer
    // EEXIST, a lost one ENOENT on lookup.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let g = g.clone();
            std::thread::spawn(move || {
                for i in 0..150 {
                    let name = format!("f{t}-{i}");
                    let (ino, fh) = g.create_excl(d, &name).unwrap_or_else(|e| panic!("create {name}: errno {e}"));
                    assert_eq!(g.write(ino, fh, 0, name.as_bytes()), Ok(name.len() as u32));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let (resets, proxy) = resetter.join().unwrap();
    for t in 0..4 {
        for i in 0..150 {
            let e = g.lookup(d, &format!("f{t}-{i}")).unwrap();
            assert_eq!(e.attr.size, format!("f{t}-{i}").len() as u64);
        }
    }
    let executed = gw.stats().executed.load(Ordering::Relaxed) - before;
    assert_eq!(executed, 4 * 150 * 2 + 600, "each create, write and lookup ran exactly once");
    let connections = proxy.accepted.load(Ordering::Relaxed);
    eprintln!(
        "{resets} resets, {connections} connections, {} replies replayed",
        gw.stats().replayed.load(Ordering::Relaxed)
    );
    assert!(connections > 2, "the proxy reset the link during the run ({connections} connections)");
    gw.shutdown();
}

#[test]
fn a_stalled_gateway_answers_eio_at_the_deadline_then_recovers() {
    let gw = gateway();
    let proxy = Proxy::start(gw.local_addr());
    let g = Guest::new(forwarder(proxy.addr, key(), Duration::from_millis(500)));
    g.init().unwrap();
    proxy.stall(true);
    assert_eq!(g.mkdir(1, "stalled").unwrap_err(), libc::EIO);
    proxy.stall(false);
    // The stalled request may still have run once the bytes moved; new ones work.
    g.mkdir(1, "after").unwrap();
    gw.shutdown();
}

#[test]
fn a_restarted_gateway_fails_requests_in_flight_then_serves_the_next_mount() {
    let gw = gateway();
    let addr = gw.local_addr();
    let proxy = Proxy::start(addr);
    let g = Guest::new(forwarder(proxy.addr, key(), Duration::from_secs(20)));
    g.init().unwrap();
    g.mkdir(1, "before").unwrap();
    // A request in flight (held by the proxy) when the gateway dies.
    proxy.stall(true);
    let rx = g.send(1, &dpfs_core::operation::Operation::Lookup { name: b"before" }, &[], 256);
    std::thread::sleep(Duration::from_millis(100));
    gw.shutdown();
    proxy.reset();
    proxy.stall(false);
    let gw = gateway_on(addr, key());
    let r = body(rx.recv_timeout(Duration::from_secs(20)).expect("answered, not hung"));
    assert_eq!(r.unwrap_err(), libc::EIO);
    // The new gateway has a fresh session: the guest mounts again (INIT) and it works.
    g.init().unwrap();
    assert_eq!(g.lookup(1, "before").unwrap_err(), libc::ENOENT, "a new gateway, a new mem backend");
    g.mkdir(1, "after").unwrap();
    gw.shutdown();
}
