//! The client against a real nfs-ganesha on loopback: connect, resolve the export, GETATTR
//! the root under an advancing slot sequence, many calls in flight, and a clean shutdown.

mod support;

use dpfs_nfs4::{Client, ClientConfig, Creds, Error, FileType, Owner, Status};
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{Ganesha, ADDR, EXPORT};

/// The tests take turns: each starts its own ganesha on the one port.
static ONE_SERVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_root_getattr_and_shutdown() {
    let _turn = ONE_SERVER.lock().await;
    let Some(server) = Ganesha::start() else { return };
    let addr = ADDR.parse().unwrap();
    let config = ClientConfig { timeout: Duration::from_secs(10), ..ClientConfig::default() };

    let t = Instant::now();
    let client = Client::connect_with(addr, EXPORT, Creds::root(), config).await.unwrap();
    eprintln!("connected in {:?}; fore channel {:?}", t.elapsed(), client.fore_channel());
    let root = client.root_attrs().clone();
    assert_eq!(root.file_type, Some(FileType::Directory));
    assert_eq!(root.owner, Some(Owner::Id(0)));
    assert!(root.fileid.is_some() && root.mode.is_some() && root.time_modify.is_some());
    assert!(!client.slots().is_empty());
    // The root is the export directory ganesha serves.
    let meta = std::fs::metadata(&server.export_dir).unwrap();
    assert_eq!(root.fileid, Some(meta.ino()));
    assert_eq!(root.mode, Some(meta.mode() & 0o7777));
    assert_eq!(root.time_modify.map(|t| t.seconds), Some(meta.mtime()));

    // Two sequenced compounds so far (RECLAIM_COMPLETE, the root lookup): slot 0 is at 2.
    assert_eq!(client.slots().last_seq(0), Some(2));
    let a = client.getattr(client.root()).await.unwrap();
    assert_eq!(client.slots().last_seq(0), Some(3));
    let b = client.getattr(client.root()).await.unwrap();
    assert_eq!(client.slots().last_seq(0), Some(4));
    assert_eq!((a.fileid, a.file_type), (root.fileid, root.file_type));
    assert_eq!(a, b);

    // AUTH_SYS as another user with supplementary groups: the root (0755) is readable to all.
    let user = Creds::new(1000, 1000, &[4, 24, 27, 100]).unwrap();
    assert_eq!(client.getattr_as(&user, client.root()).await.unwrap().fileid, root.fileid);

    // ... and the server applies its identity: it cannot search a 0700 root-owned directory.
    let private = server.export_dir.join("private");
    std::fs::create_dir_all(private.join("inner")).unwrap();
    std::fs::set_permissions(&private, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let inner = format!("{EXPORT}/private/inner");
    let denied = Client::connect_with(addr, &inner, user, config).await;
    assert!(matches!(denied, Err(Error::Nfs { status: Status::Access, .. })), "{denied:?}");
    let as_root = Client::connect_with(addr, &inner, Creds::root(), config).await.unwrap();
    assert_eq!(as_root.root_attrs().file_type, Some(FileType::Directory));
    as_root.shutdown().await.unwrap();

    // Many calls in flight on one connection and session.
    let client = Arc::new(client);
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let c = client.clone();
            tokio::spawn(async move { c.getattr(c.root()).await.map(|a| a.fileid) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), root.fileid);
    }

    // While idle, SEQUENCE-only compounds renew the lease (ganesha's is 10 s here: one every
    // ~3.3 s); the session is the same one afterwards.
    assert_eq!(client.lease(), Duration::from_secs(10));
    let renewal = client.renew_while_idle();
    let (before, clientid) = (client.slots().last_seq(0).unwrap(), client.clientid());
    tokio::time::sleep(Duration::from_secs(7)).await;
    let renewed = client.slots().last_seq(0).unwrap() - before;
    assert!(renewed >= 1, "no renewal while idle");
    assert_eq!(client.getattr(client.root()).await.unwrap().fileid, root.fileid);
    assert_eq!((client.clientid(), client.epoch()), (clientid, 0));
    renewal.abort();
    let client = Arc::into_inner(client).unwrap();

    // Three connections trunked to one client id: a session each, compounds over all.
    let trunk = Arc::new(
        Client::connect_with(addr, EXPORT, Creds::root(), ClientConfig { nconnect: 3, ..config }).await.unwrap(),
    );
    assert_eq!(trunk.connections(), 3);
    let sessions: Vec<_> = (0..3).map(|i| trunk.session_of(i)).collect();
    assert!(sessions.iter().all(|(c, _)| *c == trunk.clientid()), "{sessions:?}");
    assert!(sessions[0].1 != sessions[1].1 && sessions[1].1 != sessions[2].1 && sessions[0].1 != sessions[2].1);
    let calls: Vec<_> = (0..30)
        .map(|_| {
            let c = trunk.clone();
            tokio::spawn(async move { c.getattr(c.root()).await.map(|a| a.fileid) })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap().unwrap(), root.fileid);
    }
    Arc::into_inner(trunk).unwrap().shutdown().await.unwrap();

    // A missing export is LOOKUP's NOENT, not a hang or a panic.
    let missing = Client::connect_with(addr, "/no-such-export", Creds::root(), config).await;
    assert!(matches!(missing, Err(Error::Nfs { status: Status::NoEnt, .. })), "{missing:?}");

    let t = Instant::now();
    client.shutdown().await.unwrap();
    eprintln!("shut down in {:?}", t.elapsed());
}

/// NFSv4.2 with minor version 2: SEEK and ALLOCATE/DEALLOCATE on a file the client opened,
/// COPY as the server answers it; with minor version 1 the same SEEK is OP_ILLEGAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v42_ops_and_their_absence_in_v41() {
    use dpfs_nfs4::ops::io::{SHARE_ACCESS_BOTH, SHARE_ACCESS_WANT_NO_DELEG};
    use dpfs_nfs4::ops::{Claim, Content, CopyArgs, CreateHow, NewAttrs, Op, OpCode, OpenArgs, Stable};
    let _turn = ONE_SERVER.lock().await;
    let Some(server) = Ganesha::start() else { return };
    let addr = ADDR.parse().unwrap();
    for minor in [2, 1] {
        let config = ClientConfig { timeout: Duration::from_secs(10), minor, ..ClientConfig::default() };
        let client = Client::connect_with(addr, EXPORT, Creds::root(), config).await.unwrap();
        assert_eq!(client.minor(), minor);
        let name = format!("v4{minor}");
        let open = OpenArgs {
            share_access: SHARE_ACCESS_BOTH | SHARE_ACCESS_WANT_NO_DELEG,
            share_deny: 0,
            clientid: client.clientid(),
            owner: b"v42-test".to_vec(),
            how: CreateHow::Unchecked(NewAttrs::mode(0o644)),
            claim: Claim::Null(name.clone().into_bytes()),
        };
        let mut r = client.compound(vec![Op::PutFh(client.root().clone()), Op::Open(open), Op::GetFh]).await.unwrap();
        r.skip().unwrap();
        let stateid = r.open().unwrap().stateid;
        let fh = r.getfh().unwrap();
        let write = Op::Write { stateid, offset: 1 << 20, stable: Stable::FileSync, data: vec![5; 4096] };
        client.compound(vec![Op::PutFh(fh.clone()), write]).await.unwrap();
        let seek = Op::Seek { stateid, offset: 0, what: Content::Data };
        let got = client.compound(vec![Op::PutFh(fh.clone()), seek]).await;
        if minor == 1 {
            let e = got.unwrap_err();
            assert!(matches!(e, Error::Nfs { op: OpCode::Seek, status: Status::OpIllegal }), "{e:?}");
            continue;
        }
        let mut r = got.unwrap();
        r.skip().unwrap();
        let found = r.seek().unwrap();
        assert_eq!((found.eof, found.offset), (false, 1 << 20));
        let alloc = Op::Allocate { stateid, offset: 0, length: 8192 };
        let dealloc = Op::Deallocate { stateid, offset: 0, length: 4096 };
        client.compound(vec![Op::PutFh(fh.clone()), alloc, dealloc]).await.unwrap();
        let host = server.export_dir.join(&name);
        assert_eq!(std::fs::metadata(&host).unwrap().len(), (1 << 20) + 4096);
        let copy =
            CopyArgs { src_stateid: stateid, dst_stateid: stateid, src_offset: 1 << 20, dst_offset: 0, count: 4096 };
        let got = client.compound(vec![Op::PutFh(fh.clone()), Op::SaveFh, Op::PutFh(fh), Op::Copy(copy)]).await;
        // ganesha 4.3's FSAL_VFS has no COPY (NFS4ERR_NOTSUPP); a server that has one copies.
        match got {
            Err(Error::Nfs { op: OpCode::Copy, status: Status::NotSupp }) => eprintln!("COPY: NFS4ERR_NOTSUPP"),
            Ok(mut r) => {
                (0..3).for_each(|_| r.skip().unwrap());
                assert_eq!(r.copy().unwrap().count, 4096);
                assert_eq!(std::fs::read(&host).unwrap()[..4096], [5; 4096]);
            }
            Err(e) => panic!("COPY: {e:?}"),
        }
        client.shutdown().await.unwrap();
    }
}

/// RFC 8276 xattrs with minor version 2, as ganesha answers them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v42_xattrs_as_the_server_answers_them() {
    use dpfs_nfs4::ops::{Op, OpCode, SetXattrArgs, SetXattrHow};
    let _turn = ONE_SERVER.lock().await;
    let Some(server) = Ganesha::start() else { return };
    std::fs::write(server.export_dir.join("x"), b"").unwrap();
    let addr = ADDR.parse().unwrap();
    let config = ClientConfig { timeout: Duration::from_secs(10), minor: 2, ..ClientConfig::default() };
    let client = Client::connect_with(addr, EXPORT, Creds::root(), config).await.unwrap();
    let root = Op::PutFh(client.root().clone());
    let look = Op::Lookup(b"x".to_vec());
    let set = SetXattrArgs { how: SetXattrHow::Either, name: b"k".to_vec(), value: b"v".to_vec() };
    let got = client.compound(vec![root.clone(), look.clone(), Op::SetXattr(set)]).await;
    let list = Op::ListXattrs { cookie: 0, maxcount: 4096 };
    match got {
        // ganesha 4.3's FSAL_VFS has no RFC 8276 xattrs.
        Err(Error::Nfs { op: OpCode::SetXattr, status: Status::NotSupp }) => {
            eprintln!("SETXATTR: NFS4ERR_NOTSUPP");
            for op in [list, Op::GetXattr(b"k".to_vec()), Op::RemoveXattr(b"k".to_vec())] {
                let code = op.code();
                let got = client.compound(vec![root.clone(), look.clone(), op]).await;
                assert!(matches!(got, Err(Error::Nfs { op, status: Status::NotSupp }) if op == code), "{got:?}");
            }
        }
        Ok(_) => {
            let mut r = client.compound(vec![root.clone(), look.clone(), Op::GetXattr(b"k".to_vec())]).await.unwrap();
            r.skip().unwrap();
            r.skip().unwrap();
            assert_eq!(r.getxattr().unwrap(), b"v");
            let mut r = client.compound(vec![root.clone(), look.clone(), list]).await.unwrap();
            r.skip().unwrap();
            r.skip().unwrap();
            assert!(r.listxattrs().unwrap().names.contains(&b"k".to_vec()));
        }
        Err(e) => panic!("SETXATTR: {e:?}"),
    }
    client.shutdown().await.unwrap();
}
