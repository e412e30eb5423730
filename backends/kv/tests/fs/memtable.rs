//! redb in `fsync` mode keeps commits in memory until a flush (the store's memtable):
//! creates and unlinks answer without a write transaction each, readdir and a second
//! file system on the volume see them at once, and a reopen finds the tree as left,
//! consistent.

use crate::common::*;
use dpfs_backend_kv::fsck;
use dpfs_backend_kv::store::redb::RedbStore;
use dpfs_backend_kv::{KvConfig, KvFs};
use std::path::Path;

const N: usize = 200;

fn open(path: &Path) -> G<RedbStore> {
    guest(KvFs::new(RedbStore::open(path, "v").unwrap(), KvConfig::default()).unwrap())
}

#[test]
fn a_create_unlink_storm_answers_from_memory_and_survives_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    let mut want: Vec<String> = Vec::new();
    {
        let g = open(&path);
        let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
        let before = g.fs.store().write_transactions();
        for n in 0..N {
            let name = format!("f{n:03}");
            g.mknod(d, &name, libc::S_IFREG | 0o644, 0).unwrap();
            if n % 2 == 0 {
                g.unlink(d, &name).unwrap();
            } else {
                want.push(name);
            }
        }
        // (The once-a-second sync may add one or two; one per create or unlink would be
        // 300.)
        let made = g.fs.store().write_transactions() - before;
        assert!(made < N as u64 / 10, "{made} write transactions for {N} creates");
        // Another file system on the same volume sees it all at once.
        let other = open(&path);
        assert_eq!(other.list(d).unwrap(), want);
        assert_eq!(g.list(d).unwrap(), want);
        g.mknod(d, "last", libc::S_IFREG | 0o600, 0).unwrap();
        want.push("last".into());
    }
    let g = open(&path);
    let d = g.lookup(ROOT, "d").unwrap().nodeid;
    assert_eq!(g.list(d).unwrap(), want, "a reopen finds what was committed, unsynced too");
    let report = g.fs.block_on(fsck::check(g.fs.store(), false)).unwrap();
    assert!(report.clean(), "{:?}", report.problems);
}

#[test]
fn an_unmount_leaves_nothing_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let g = open(&dir.path().join("fs.redb"));
    // (The once-a-second sync may empty memory between a create and the check: create
    // until something is left there.)
    for n in 0..100 {
        g.mknod(ROOT, &format!("f{n}"), libc::S_IFREG | 0o644, 0).unwrap();
        if g.fs.store().unflushed_keys() > 0 {
            break;
        }
    }
    assert!(g.fs.store().unflushed_keys() > 0);
    g.call(0, &dpfs_core::operation::Operation::Destroy, &[], 0).unwrap();
    assert_eq!(g.fs.store().unflushed_keys(), 0, "DESTROY syncs");
}
