//! One volume on a 3-node Redis Cluster: its metadata stays in one hash slot (one node),
//! its data chunks spread over the nodes, and fsck lists and repairs keys on every node.

use crate::common::*;
use dpfs_backend_kv::fsck::{self, Problem};
use dpfs_backend_kv::schema;
use dpfs_backend_kv::Store;
use std::process::Command;

/// Keys matching `pattern` on the node at `port`.
fn keys_on(port: u16, pattern: &str) -> usize {
    let out = Command::new("redis-cli")
        .args(["-p", &port.to_string(), "--scan", "--pattern", pattern])
        .output()
        .expect("redis-cli --scan");
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).count()
}

#[test]
fn data_spreads_over_nodes_and_fsck_sees_every_node() {
    let Some(g) = cluster() else { return };
    let ports = g.cluster.as_ref().expect("cluster").ports.clone();
    let (f, fh) = g.mkfile(ROOT, "big").unwrap();
    let mib = 1usize << 20;
    for n in 0..16u8 {
        g.write(f, fh, (n as usize * mib) as u64, &vec![n + 1; mib]).unwrap();
    }
    for n in 0..4 {
        let (s, sh) = g.mkfile(ROOT, &format!("s{n}")).unwrap();
        g.write(s, sh, 0, &vec![7u8; 100_000]).unwrap();
        g.release(s, sh).unwrap();
    }
    let data: Vec<usize> = ports.iter().map(|&p| keys_on(p, "dpfsd{test/*")).collect();
    let meta: Vec<usize> = ports.iter().map(|&p| keys_on(p, "dpfs{test}*")).collect();
    eprintln!("data keys per node {data:?}, metadata keys per node {meta:?}");
    assert_eq!(data.iter().sum::<usize>(), 16 * 16 + 4 * 2, "one data key per chunk");
    assert!(data.iter().filter(|&&n| n > 0).count() >= 2, "data on one node only: {data:?}");
    assert_eq!(meta.iter().filter(|&&n| n > 0).count(), 1, "metadata on one node: {meta:?}");
    // Overwriting replaces generations: the old data keys go.
    g.write(f, fh, 10, b"again").unwrap();
    assert_eq!(ports.iter().map(|&p| keys_on(p, "dpfsd{test/*")).sum::<usize>(), 16 * 16 + 4 * 2);
    assert_eq!(g.read(f, fh, 5 * mib as u64 - 2, 4).unwrap(), vec![5, 5, 6, 6]);

    let check = |repair| g.fs.block_on(fsck::check(g.fs.store(), repair)).unwrap();
    let r = check(false);
    assert!(r.clean(), "{:?}", r.problems);
    assert!(r.keys >= 16 * 16 + 4 * 2 + 6, "fsck read the data keys of every node: {}", r.keys);
    // Data left by a crash before its commit, on some node: found and deleted.
    let leak: Vec<(Vec<u8>, Vec<u8>)> = (0..8).map(|c| (schema::data_key(f, c * 16, 99), vec![1u8])).collect();
    g.fs.block_on(g.fs.store().put_data(leak)).unwrap();
    let r = check(true);
    assert_eq!(r.problems, vec![Problem::LeakedData { ino: f, keys: 8 }]);
    assert!(check(false).clean());
    // Unlinking reclaims every data key on every node.
    g.release(f, fh).unwrap();
    g.unlink(ROOT, "big").unwrap();
    assert_eq!(ports.iter().map(|&p| keys_on(p, "dpfsd{test/*")).sum::<usize>(), 4 * 2);
    assert!(check(false).clean());
}
