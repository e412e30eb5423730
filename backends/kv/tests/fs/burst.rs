//! Bursts (`dpfs_core::burst`) on redb in `fsync` mode: the creates a HAL hands over in
//! one burst are answered after the burst ends, from one write transaction; creates
//! that another daemon's commit makes stale are run again (the name it took answers
//! EEXIST); outside a burst nothing waits for an end that never comes.

use crate::common::*;
use dpfs_backend_kv::store::redb::RedbStore;
use dpfs_backend_kv::{KvConfig, KvFs};
use dpfs_core::abi::MknodIn;
use dpfs_core::guest::body;
use dpfs_core::operation::Operation;
use dpfs_core::{Burst, OwnedReply};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::Duration;

const N: usize = 16;

fn send_mknod(g: &G<RedbStore>, name: &str) -> Receiver<OwnedReply> {
    let arg = MknodIn { mode: libc::S_IFREG | 0o644, rdev: 0, umask: 0, padding: 0 };
    g.send(ROOT, &Operation::Mknod { arg, name: name.as_bytes() }, &[], 256)
}

fn errno(rx: &Receiver<OwnedReply>) -> i32 {
    let r = rx.recv_timeout(Duration::from_secs(10)).expect("a reply");
    body(r).err().unwrap_or(0)
}

#[test]
fn a_burst_of_creates_is_one_write_transaction() {
    let env = redb().unwrap();
    let g = &env.g;
    g.mknod(ROOT, "warm", libc::S_IFREG | 0o644, 0).unwrap(); // reserves node ids
    let before = g.fs.store().write_transactions();
    let burst = Burst::on_device(&g.dev);
    let rxs: Vec<_> = (0..N).map(|n| send_mknod(g, &format!("f{n}"))).collect();
    // Queued, not applied: the replies wait for the end of the burst.
    for rx in &rxs {
        assert_eq!(rx.try_recv().err(), Some(TryRecvError::Empty));
    }
    assert_eq!(g.fs.store().write_transactions(), before);
    drop(burst);
    for rx in &rxs {
        assert_eq!(errno(rx), 0);
    }
    assert_eq!(g.fs.store().write_transactions(), before + 1, "one write transaction for the burst");
    for n in 0..N {
        g.lookup(ROOT, &format!("f{n}")).unwrap();
    }
}

#[test]
fn creates_made_stale_by_another_daemon_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    let open = || guest(KvFs::new(RedbStore::open(&path, "shared").unwrap(), KvConfig::default()).unwrap());
    let (a, b) = (open(), open());
    a.mknod(ROOT, "warm", libc::S_IFREG | 0o644, 0).unwrap();
    let burst = Burst::on_device(&a.dev);
    let mine: Vec<_> = (0..N).map(|n| send_mknod(&a, &format!("a{n}"))).collect();
    let race = send_mknod(&a, "race");
    // The other daemon (another thread: this one is inside a's burst) wins the name.
    std::thread::scope(|s| s.spawn(|| b.mknod(ROOT, "race", libc::S_IFREG | 0o600, 0).unwrap()).join().unwrap());
    drop(burst);
    for rx in &mine {
        // (The other daemon's create changed the directory they read: they were refused
        // too and run again; the store's tests show one stale commit failing alone.)
        assert_eq!(errno(rx), 0);
    }
    assert_eq!(errno(&race), libc::EEXIST, "run again, the create finds the other daemon's file");
    assert_eq!(a.lookup(ROOT, "race").unwrap().attr.mode & 0o777, 0o600);
}

#[test]
fn requests_outside_a_burst_are_answered_without_one() {
    let env = redb().unwrap();
    let g = &env.g;
    let rxs: Vec<_> = (0..N).map(|n| send_mknod(g, &format!("f{n}"))).collect();
    for rx in &rxs {
        assert_eq!(errno(rx), 0);
    }
}
