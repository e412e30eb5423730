//! Seed replies for the `nfs_compound_reply` fuzz target: COMPOUND reply bodies as a server
//! sends them to this client, one per kind of exchange, so the fuzzer starts from deep states.

use crate::ops::{Attrs, ChangeInfo, DirEntry, FileHandle, FileType, Owner, ReadDirRes, Time};
use crate::xdr::Encoder;

fn header(e: &mut Encoder, status: u32, results: u32) {
    e.u32(status).string("").u32(results);
}

fn sequence(e: &mut Encoder, seq: u32) {
    e.u32(53).u32(0).opaque_fixed(&[0x5e; 16]).u32(seq).u32(0).u32(63).u32(63).u32(0);
}

fn channel(e: &mut Encoder, slots: u32) {
    e.u32(0).u32(1 << 20).u32(1 << 20).u32(64 << 10).u32(16).u32(slots).u32(0);
}

fn root_attrs() -> Attrs {
    Attrs {
        file_type: Some(FileType::Directory),
        size: Some(4096),
        fileid: Some(2),
        mode: Some(0o755),
        numlinks: Some(3),
        owner: Some(Owner::Id(0)),
        owner_group: Some(Owner::Id(0)),
        time_modify: Some(Time { seconds: 1_764_000_000, nseconds: 123 }),
        time_access: Some(Time { seconds: 1_764_000_000, nseconds: 9 }),
        time_metadata: Some(Time { seconds: 1_764_000_001, nseconds: 0 }),
        space_used: Some(4096),
        rawdev: Some((0, 0)),
        ..Attrs::default()
    }
}

/// Named seed reply bodies (after the RPC header).
pub fn seed_replies() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();

    let mut e = Encoder::new();
    header(&mut e, 0, 1);
    e.u32(42).u32(0).u64(0x1234_5678_9abc_def0).u32(1).u32(0x0001_0000).u32(0);
    e.u64(0).opaque(b"ganesha-host").opaque(b"ganesha-scope");
    e.u32(1).string("nfs-ganesha.org").string("ganesha 4.3").i64(0).u32(0);
    out.push(("exchange-id", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 1);
    e.u32(43).u32(0).opaque_fixed(&[0x5e; 16]).u32(1).u32(0);
    channel(&mut e, 64);
    channel(&mut e, 1);
    out.push(("create-session", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 2);
    sequence(&mut e, 1);
    e.u32(58).u32(0);
    out.push(("reclaim-complete", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 2);
    e.u32(24).u32(0);
    e.u32(15).u32(0);
    e.u32(10).u32(0).opaque(&[0x43; 40]);
    e.u32(9).u32(0);
    root_attrs().encode(&mut e);
    out.push(("root-lookup", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 3);
    sequence(&mut e, 3);
    e.u32(22).u32(0);
    e.u32(9).u32(0);
    Attrs { owner: Some(Owner::Name("nobody@example.org".into())), ..root_attrs() }.encode(&mut e);
    out.push(("getattr", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 2, 3);
    sequence(&mut e, 4);
    e.u32(24).u32(0);
    e.u32(15).u32(2);
    out.push(("lookup-noent", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 10052, 1);
    e.u32(53).u32(10052);
    out.push(("badsession", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 1);
    e.u32(44).u32(0);
    out.push(("destroy-session", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 1);
    e.u32(41).u32(0).opaque_fixed(&[0x5e; 16]).u32(1).u32(0);
    out.push(("bind-conn-to-session", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 1);
    e.u32(57).u32(0);
    out.push(("destroy-clientid", e.into_bytes()));

    out.extend(file_op_replies());
    out
}

fn cinfo(e: &mut Encoder) {
    ChangeInfo { atomic: true, before: 10, after: 11 }.encode(e);
}

/// Seeds of the file and namespace ops the backend sends.
fn file_op_replies() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let stateid = |e: &mut Encoder| {
        e.u32(1).opaque_fixed(&[0x51; 12]);
    };

    // PUTFH OPEN(create) GETFH GETATTR
    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 5);
    e.u32(22).u32(0);
    e.u32(18).u32(0);
    stateid(&mut e);
    cinfo(&mut e);
    e.u32(4).u32(2).u32(0).u32(1 << 1).u32(3).u32(4); // rflags, attrset {mode}, NONE_EXT
    e.u32(10).u32(0).opaque(&[0x44; 28]);
    e.u32(9).u32(0);
    Attrs { file_type: Some(FileType::Regular), ..root_attrs() }.encode(&mut e);
    out.push(("open-create", e.into_bytes()));

    // PUTFH READ
    let mut e = Encoder::new();
    header(&mut e, 0, 3);
    sequence(&mut e, 6);
    e.u32(22).u32(0);
    e.u32(25).u32(0).bool(true).opaque(b"hello world");
    out.push(("read", e.into_bytes()));

    // PUTFH WRITE, PUTFH COMMIT
    let mut e = Encoder::new();
    header(&mut e, 0, 4);
    sequence(&mut e, 7);
    e.u32(22).u32(0);
    e.u32(38).u32(0).u32(4096).u32(0).opaque_fixed(&[9; 8]);
    e.u32(5).u32(0).opaque_fixed(&[9; 8]);
    out.push(("write-commit", e.into_bytes()));

    // PUTFH READDIR
    let mut e = Encoder::new();
    header(&mut e, 0, 3);
    sequence(&mut e, 8);
    e.u32(22).u32(0);
    e.u32(26).u32(0);
    let entry = |cookie, name: &[u8]| DirEntry {
        cookie,
        name: name.to_vec(),
        attrs: Attrs { filehandle: FileHandle::new(&[cookie as u8; 24]), ..root_attrs() },
    };
    ReadDirRes { verifier: [3; 8], entries: vec![entry(3, b"a"), entry(4, b"bb")], eof: true }.encode(&mut e);
    out.push(("readdir", e.into_bytes()));

    // PUTFH CREATE GETFH GETATTR
    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 9);
    e.u32(22).u32(0);
    e.u32(6).u32(0);
    cinfo(&mut e);
    e.u32(2).u32(0).u32(1 << 1);
    e.u32(10).u32(0).opaque(&[0x45; 28]);
    e.u32(9).u32(0);
    root_attrs().encode(&mut e);
    out.push(("create", e.into_bytes()));

    // PUTFH SAVEFH PUTFH RENAME / LINK RESTOREFH GETATTR, REMOVE, READLINK
    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 10);
    e.u32(22).u32(0).u32(32).u32(0).u32(22).u32(0);
    e.u32(29).u32(0);
    cinfo(&mut e);
    cinfo(&mut e);
    out.push(("rename", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 7);
    sequence(&mut e, 11);
    e.u32(22).u32(0).u32(32).u32(0).u32(22).u32(0);
    e.u32(11).u32(0);
    cinfo(&mut e);
    e.u32(31).u32(0).u32(9).u32(0);
    root_attrs().encode(&mut e);
    out.push(("link", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 4);
    sequence(&mut e, 12);
    e.u32(22).u32(0).u32(28).u32(0);
    cinfo(&mut e);
    e.u32(27).u32(0).opaque(b"../target");
    out.push(("remove-readlink", e.into_bytes()));

    // PUTFH SETATTR (failed: its bitmap still follows), ACCESS, CLOSE
    let mut e = Encoder::new();
    header(&mut e, 1, 3);
    sequence(&mut e, 13);
    e.u32(22).u32(0);
    e.u32(34).u32(1).u32(0);
    out.push(("setattr-perm", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 14);
    e.u32(22).u32(0);
    e.u32(34).u32(0).u32(2).u32(1 << 4).u32(1 << 1);
    e.u32(3).u32(0).u32(0x3f).u32(0x03);
    e.u32(4).u32(0);
    stateid(&mut e);
    out.push(("setattr-access-close", e.into_bytes()));

    // PUTFH LOCK (denied: the conflicting lock follows), PUTFH LOCKT, LOCKU
    let mut e = Encoder::new();
    header(&mut e, 10010, 3);
    sequence(&mut e, 15);
    e.u32(22).u32(0);
    e.u32(12).u32(10010);
    crate::ops::Denied {
        offset: 0,
        length: u64::MAX,
        locktype: crate::ops::LockType::Write,
        owner: crate::ops::LockOwner { clientid: 7, owner: b"other".to_vec() },
    }
    .encode(&mut e);
    out.push(("lock-denied", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 4);
    sequence(&mut e, 16);
    e.u32(22).u32(0);
    e.u32(12).u32(0);
    stateid(&mut e);
    e.u32(14).u32(0);
    stateid(&mut e);
    out.push(("lock-locku", e.into_bytes()));
    out.extend(v42_replies());
    out
}

/// NFSv4.2: SEEK, ALLOCATE, DEALLOCATE, COPY (and its refusal), OP_ILLEGAL.
fn v42_replies() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    let mut e = Encoder::new();
    header(&mut e, 0, 3);
    sequence(&mut e, 17);
    e.u32(22).u32(0);
    e.u32(69).u32(0).bool(false).u64(65536);
    out.push(("seek", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 18);
    e.u32(22).u32(0);
    e.u32(59).u32(0);
    e.u32(62).u32(0);
    e.u32(9).u32(0);
    root_attrs().encode(&mut e);
    out.push(("allocate-deallocate-getattr", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 0, 5);
    sequence(&mut e, 19);
    e.u32(22).u32(0);
    e.u32(32).u32(0);
    e.u32(22).u32(0);
    // COPY4resok: no callback id, 4096 bytes, FILE_SYNC, verifier, consecutive, synchronous.
    e.u32(60).u32(0).u32(0).u64(4096).u32(2).opaque_fixed(&[9; 8]).bool(true).bool(true);
    out.push(("copy", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 10094, 5);
    sequence(&mut e, 20);
    e.u32(22).u32(0);
    e.u32(32).u32(0);
    e.u32(22).u32(0);
    e.u32(60).u32(10094).bool(false).bool(true);
    out.push(("copy-offload-no-reqs", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 10044, 3);
    sequence(&mut e, 21);
    e.u32(22).u32(0);
    e.u32(10044).u32(10044);
    out.push(("seek-op-illegal", e.into_bytes()));

    // RFC 8276 xattrs.
    let mut e = Encoder::new();
    header(&mut e, 0, 6);
    sequence(&mut e, 22);
    e.u32(22).u32(0);
    e.u32(73).u32(0);
    cinfo(&mut e);
    e.u32(72).u32(0).opaque(b"value");
    e.u32(74).u32(0);
    crate::ops::ListXattrsRes { cookie: 9, names: vec![b"k".to_vec(), b"mime_type".to_vec()], eof: true }
        .encode(&mut e);
    e.u32(75).u32(0);
    cinfo(&mut e);
    out.push(("xattrs", e.into_bytes()));

    let mut e = Encoder::new();
    header(&mut e, 10095, 3);
    sequence(&mut e, 23);
    e.u32(22).u32(0);
    e.u32(72).u32(10095);
    out.push(("getxattr-noxattr", e.into_bytes()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compound::CompoundReply;
    use proptest::prelude::*;

    #[test]
    fn every_seed_decodes_and_every_truncation_fails() {
        for (name, bytes) in seed_replies() {
            assert!(CompoundReply::decode(&bytes).is_ok(), "{name}");
            for cut in 0..bytes.len() {
                assert!(CompoundReply::decode(bytes.get(..cut).unwrap()).is_err(), "{name} cut at {cut}");
            }
        }
    }

    proptest! {
        #[test]
        fn mutated_seeds_never_panic(seed in any::<prop::sample::Index>(),
                                     flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6)) {
            let seeds = seed_replies();
            let mut bytes = seeds.get(seed.index(seeds.len())).unwrap().1.clone();
            for (at, v) in flips {
                let i = at.index(bytes.len());
                bytes[i] = v;
            }
            let _ = CompoundReply::decode(&bytes);
        }
    }
}
