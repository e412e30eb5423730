//! A fake NFS server that answers every call with a malformed reply: the client's connect
//! fails with an error (no panic, no hang, no unbounded allocation) for each kind of lie.

use dpfs_nfs4::corpus::seed_replies;
use dpfs_nfs4::record::{encode_record, read_record};
use dpfs_nfs4::{Client, ClientConfig, Creds};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

/// How the fake server lies.
#[derive(Clone, Copy, Debug)]
enum Lie {
    /// Random bytes in a well-formed record.
    Garbage,
    /// A record marker announcing 2 GiB, then nothing.
    HugeRecord,
    /// A valid RPC header and a seed reply with bytes flipped.
    Mutated(usize),
    /// A valid RPC header and a seed reply cut short.
    Truncated(usize),
    /// A valid RPC header and the reply of another exchange (CREATE_SESSION's to EXCHANGE_ID).
    WrongOp,
    /// The connection closes after the call.
    Close,
}

fn rpc_accepted(xid: u32, body: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [xid, 1, 0, 0, 0, 0] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    v.extend_from_slice(body);
    v
}

async fn serve(listener: TcpListener, lie: Lie) {
    let seeds = seed_replies();
    let mut rng = 0x9e37_79b9_u32;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 17;
        rng ^= rng << 5;
        rng
    };
    while let Ok((mut sock, _)) = listener.accept().await {
        let (mut r, mut w) = sock.split();
        while let Ok(Some(call)) = read_record(&mut r, 1 << 20).await {
            let xid = u32::from_be_bytes(call.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]));
            let payload = match lie {
                Lie::Garbage => (0..64).map(|_| next() as u8).collect(),
                Lie::HugeRecord => {
                    let _ = w.write_all(&0xffff_fff0u32.to_be_bytes()).await;
                    continue;
                }
                Lie::Mutated(i) => {
                    let mut body = seeds[i % seeds.len()].1.clone();
                    for _ in 0..4 {
                        let at = next() as usize % body.len();
                        body[at] = next() as u8;
                    }
                    rpc_accepted(xid, &body)
                }
                Lie::Truncated(i) => {
                    let body = &seeds[i % seeds.len()].1;
                    rpc_accepted(xid, &body[..body.len() / 2])
                }
                Lie::WrongOp => rpc_accepted(xid, &seeds[1].1),
                Lie::Close => break,
            };
            let mut wire = Vec::new();
            encode_record(&payload, 1 << 20, &mut wire);
            if w.write_all(&wire).await.is_err() {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_replies_are_errors() {
    let mut lies = vec![Lie::Garbage, Lie::HugeRecord, Lie::WrongOp, Lie::Close];
    lies.extend((0..24).map(Lie::Mutated));
    lies.extend((0..8).map(Lie::Truncated));
    let config = ClientConfig { timeout: Duration::from_secs(2), ..ClientConfig::default() };
    for lie in lies {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(listener, lie));
        // The bound only turns a hang into a failure; the client's own timeout answers first.
        let r =
            tokio::time::timeout(Duration::from_secs(30), Client::connect_with(addr, "/export", Creds::root(), config))
                .await
                .unwrap_or_else(|_| panic!("{lie:?}: connect hung"));
        assert!(r.is_err(), "{lie:?}: a lying server gave a client");
        server.abort();
    }
}
