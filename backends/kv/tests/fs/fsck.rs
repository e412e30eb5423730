//! fsck: each kind of corruption injected into a healthy volume is found, repaired, and the
//! volume is clean and usable afterwards.

use crate::common::*;
use dpfs_backend_kv::fsck::{self, Problem};
use dpfs_backend_kv::schema::{self, encode, Inode};
use dpfs_backend_kv::store::Commit;
use dpfs_backend_kv::Store;

fn put<S: Store>(g: &Env<S>, writes: Vec<(Vec<u8>, Option<Vec<u8>>)>) {
    let c = Commit { writes, ..Default::default() };
    assert!(g.fs.block_on(g.fs.store().commit(&c)).unwrap());
}

fn inode<S: Store>(g: &Env<S>, ino: u64) -> Inode {
    let k = schema::inode_key(ino);
    let v = g.fs.block_on(g.fs.store().get_many(std::slice::from_ref(&k))).unwrap();
    schema::decode(&k, v[0].as_ref().unwrap()).unwrap()
}

pub fn fsck_finds_and_repairs_each_corruption<S: Store>(g: Env<S>) {
    let check = |repair| g.fs.block_on(fsck::check(g.fs.store(), repair)).unwrap();
    let d = g.mkdir(ROOT, "d", 0o755).unwrap().nodeid;
    let (f, fh) = g.mkfile(d, "f").unwrap();
    g.write(f, fh, 0, &vec![1u8; 200_000]).unwrap();
    g.link(f, ROOT, "hard").unwrap();
    let (h, _) = g.mkfile(ROOT, "h").unwrap();
    g.setxattr(h, "user.a", b"1", 0).unwrap();
    let r = check(false);
    assert!(r.clean(), "{:?}", r.problems);
    assert!(r.keys > 10);

    // A name whose inode is gone; chunks of an inode that never existed; a wrong link
    // count; an inode no name reaches; an orphan whose daemon died.
    put(&g, vec![(schema::inode_key(h), None)]);
    put(&g, vec![(schema::chunk_key(999_999, 0), Some(schema::chunk_ref(schema::ZERO_GEN)))]);
    // Data no reference names (a crash between storing data and its commit), of a live
    // and of a missing inode; a reference whose data is gone.
    let data = vec![(schema::data_key(f, 0, 12_345), vec![9u8; 10]), (schema::data_key(999_998, 3, 5), vec![1u8])];
    g.fs.block_on(g.fs.store().put_data(data)).unwrap();
    put(&g, vec![(schema::chunk_key(f, 100), Some(schema::chunk_ref(777)))]);
    let mut fi = inode(&g, f);
    fi.nlink = 7;
    put(&g, vec![(schema::inode_key(f), Some(encode(&fi)))]);
    let lost = Inode { mode: libc::S_IFREG | 0o644, nlink: 1, inline: Some(Vec::new()), ..Default::default() };
    put(&g, vec![(schema::inode_key(888_888), Some(encode(&lost)))]);
    let orphan = Inode { mode: libc::S_IFREG | 0o644, nlink: 0, inline: Some(vec![5; 10]), ..Default::default() };
    put(&g, vec![(schema::inode_key(777_777), Some(encode(&orphan))), (schema::orphan_key(777_777), Some(Vec::new()))]);

    let r = check(false);
    let has = |p: &Problem| r.problems.contains(p);
    assert!(has(&Problem::DanglingEntry { parent: ROOT, name: "h".into(), ino: h }), "{:?}", r.problems);
    assert!(has(&Problem::Leaked { ino: 999_999, keys: 1 }), "{:?}", r.problems);
    assert!(has(&Problem::LeakedData { ino: f, keys: 1 }), "{:?}", r.problems);
    assert!(has(&Problem::LeakedData { ino: 999_998, keys: 1 }), "{:?}", r.problems);
    assert!(has(&Problem::MissingData { ino: f, chunk: 100 }), "{:?}", r.problems);
    assert!(has(&Problem::LinkCount { ino: f, stored: 7, actual: 2 }), "{:?}", r.problems);
    assert!(has(&Problem::Unreachable(888_888)), "{:?}", r.problems);
    assert_eq!(r.orphans, vec![777_777], "an orphan is listed, not a fault");
    assert!(has(&Problem::Leaked { ino: h, keys: 1 }), "the xattr of the lost inode: {:?}", r.problems);
    assert!(!r.repaired);
    assert!(!check(false).clean(), "a check without --repair changes nothing");

    let r = check(true);
    assert!(r.repaired);
    let r = check(false);
    assert!(r.clean() && r.orphans.is_empty(), "after repair: {:?} {:?}", r.problems, r.orphans);
    // The volume works and its counts are right again.
    assert_eq!(g.getattr(f).unwrap().nlink, 2);
    assert_eq!(g.lookup(ROOT, "h").err(), Some(libc::ENOENT));
    assert_eq!(g.list(ROOT).unwrap(), vec!["d", "hard"]);
    assert_eq!(g.read(f, fh, 199_990, 100).unwrap(), vec![1u8; 10]);
    assert_eq!(g.fs.usage().unwrap(), (3, 4 * 65536));
    g.mkfile(ROOT, "new").unwrap();
    assert!(check(false).clean());
}

crate::suite!(redb, crate::common::redb; fsck_finds_and_repairs_each_corruption);
crate::suite!(redis, crate::common::redis; fsck_finds_and_repairs_each_corruption);
crate::suite!(cluster, crate::common::cluster; fsck_finds_and_repairs_each_corruption);
