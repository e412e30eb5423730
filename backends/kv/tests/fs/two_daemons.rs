//! Two daemons (two `KvFs`, each with its own runtime, connection and in-process locks)
//! creating and renaming in one directory of one volume, on Redis and on one redb file:
//! every commit conflict is retried, no entry is lost or doubled, and fsck finds the
//! volume clean.

use crate::common::*;
use crate::redis_server::{available, RedisServer};
use dpfs_backend_kv::fsck;
use dpfs_backend_kv::store::redb::RedbStore;
use dpfs_backend_kv::{KvConfig, KvFs, Store};

const PER_THREAD: usize = 40;

#[test]
fn two_daemons_on_one_redis_volume_lose_nothing() {
    if !available() {
        return;
    }
    let server = RedisServer::start();
    let a = guest(redis_fs(&server.url(), "shared"));
    let b = guest(redis_fs(&server.url(), "shared"));
    storm(a, b);
}

#[test]
fn two_daemons_on_one_redb_volume_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    let open = || {
        let store = RedbStore::open(&path, "shared").unwrap();
        guest(KvFs::new(store, KvConfig::default()).unwrap())
    };
    let (a, b) = (open(), open());
    storm(a, b);
}

fn storm<S: Store>(a: G<S>, b: G<S>) {
    let d = a.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    // b sees a's directory at once (no cache in the typed guest).
    assert_eq!(b.lookup(ROOT, "d").unwrap().nodeid, d);
    let mut threads = Vec::new();
    for (who, g) in [("a", a.clone()), ("b", b.clone()), ("a2", a.clone()), ("b2", b.clone())] {
        threads.push(std::thread::spawn(move || {
            for i in 0..PER_THREAD {
                let name = format!("{who}-{i}");
                let (ino, fh) = g.mkfile(d, &name).unwrap();
                g.write(ino, fh, 0, name.as_bytes()).unwrap();
                g.release(ino, fh).unwrap();
                if i % 2 == 0 {
                    g.rename(d, &name, d, &format!("{name}-r"), 0).unwrap();
                }
                if i % 5 == 0 {
                    g.mkdir(d, &format!("{name}-dir"), 0o755).unwrap();
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("worker");
    }
    let mut want = Vec::new();
    for who in ["a", "b", "a2", "b2"] {
        for i in 0..PER_THREAD {
            want.push(if i % 2 == 0 { format!("{who}-{i}-r") } else { format!("{who}-{i}") });
            if i % 5 == 0 {
                want.push(format!("{who}-{i}-dir"));
            }
        }
    }
    want.sort();
    let mut seen_a = a.list(d).unwrap();
    let mut seen_b = b.list(d).unwrap();
    seen_a.sort();
    seen_b.sort();
    assert_eq!(seen_a, want);
    assert_eq!(seen_b, want);
    let subdirs = 4 * PER_THREAD.div_ceil(5) as u32;
    assert_eq!(b.getattr(d).unwrap().nlink, 2 + subdirs);
    let r = a.fs.block_on(fsck::check(a.fs.store(), false)).unwrap();
    assert!(r.clean(), "{:?}", r.problems);
}
