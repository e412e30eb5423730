//! What a redb volume keeps across daemons: the tree and data after a reopen, orphans
//! reclaimed at the next start, volumes of one file kept apart.

use crate::common::*;
use dpfs_backend_kv::store::redb::RedbStore;
use dpfs_backend_kv::{KvConfig, KvFs};
use std::path::Path;

fn open(path: &Path, volume: &str) -> G<RedbStore> {
    let store = RedbStore::open(path, volume).expect("redb");
    guest(KvFs::new(store, KvConfig::default()).expect("kv"))
}

#[test]
fn tree_and_data_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    let (d, big) = {
        let g = open(&path, "v");
        let d = g.mkdir(ROOT, "d", 0o750).unwrap().nodeid;
        let (f, fh) = g.mkfile(d, "big").unwrap();
        g.write(f, fh, 0, &vec![9u8; 200_000]).unwrap();
        g.fsync(f, fh, false).unwrap();
        g.symlink(d, "s", "big").unwrap();
        (d, f)
    };
    let g = open(&path, "v");
    assert_eq!(g.lookup(ROOT, "d").unwrap().nodeid, d);
    assert_eq!(g.list(d).unwrap(), vec!["big", "s"]);
    let e = g.lookup(d, "big").unwrap();
    assert_eq!((e.nodeid, e.attr.size), (big, 200_000));
    let fh = g.open(big, libc::O_RDONLY as u32).unwrap();
    assert_eq!(g.read(big, fh, 199_990, 100).unwrap(), vec![9u8; 10]);
    // New node ids never reuse old ones.
    let n = g.mkdir(ROOT, "n", 0o755).unwrap().nodeid;
    assert!(n != d && n != big);
    // Another volume in the same file is another file system.
    let other = open(&path, "w");
    assert_eq!(other.list(ROOT).unwrap(), Vec::<String>::new());
}

#[test]
fn orphans_of_a_dead_daemon_are_reclaimed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    {
        let g = open(&path, "v");
        let (f, fh) = g.mkfile(ROOT, "f").unwrap();
        g.write(f, fh, 0, &vec![1u8; 300_000]).unwrap();
        g.unlink(ROOT, "f").unwrap();
        // The daemon goes away with the file open (no RELEASE, no DESTROY).
        assert_eq!(inodes(&g), 2);
        g.syncfs().unwrap();
        // Dropped without RELEASE or DESTROY: what a crash leaves.
    }
    let g = open(&path, "v");
    let st = g.statfs().unwrap();
    assert_eq!((st.files - st.ffree, st.blocks - st.bfree), (1, 0));
}

#[test]
fn a_volume_of_another_format_is_refused_by_the_daemon_and_fsck() {
    use dpfs_backend_kv::schema::{self, encode, Super};
    use dpfs_backend_kv::store::Commit;
    use dpfs_backend_kv::Store;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fs.redb");
    {
        // A format-1 volume: chunk bytes under their references.
        let store = RedbStore::open(&path, "old").expect("redb");
        let rt = dpfs_backend_kv::runtime(1).unwrap();
        let sb = Super { version: 1, chunk: schema::CHUNK, next_ino: 2 };
        let c = Commit {
            writes: vec![(schema::super_key(), Some(encode(&sb))), (schema::chunk_key(5, 0), Some(vec![1; 100]))],
            ..Default::default()
        };
        assert!(rt.block_on(store.commit(&c)).unwrap());
        let e = rt.block_on(dpfs_backend_kv::fsck::check(&store, true)).expect_err("fsck refuses");
        assert!(e.to_string().contains("volume format 1"), "{e}");
    }
    let store = RedbStore::open(&path, "old").expect("redb");
    let e = KvFs::new(store, KvConfig::default()).err().expect("the daemon refuses");
    assert!(e.to_string().contains("volume format 1") && e.to_string().contains("format 2"), "{e}");
}
