//! One TCP connection carrying many RPC calls at once: callers hand whole records to a writer
//! task (so a cancelled call never leaves half a record on the wire), a reader task routes
//! each reply to its caller by xid, and a closed connection fails every pending call instead
//! of leaving it waiting.

use crate::error::{Error, Result};
use crate::record::{read_record_into, single_fragment_header};
use crate::rpc::{parse_reply, reply_xid, CallHeader, Creds};
use crate::xdr::{Decoder, Encoder};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Callers waiting for replies; `None` once the connection is closed, so that a call that
/// starts after the reader ended fails at once.
type Pending = Mutex<Option<HashMap<u32, oneshot::Sender<(Vec<u8>, Arc<Buffers>)>>>>;

/// Limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnConfig {
    /// Longest reply record accepted (bytes).
    pub max_record: usize,
    /// How long a call waits for its reply.
    pub timeout: Duration,
    /// The NFSv4 minor version of the compounds sent on it (1 or 2).
    pub minor: u32,
}

impl Default for ConnConfig {
    fn default() -> Self {
        Self { max_record: 2 << 20, timeout: Duration::from_secs(30), minor: 1 }
    }
}

/// A reply whose RPC header said MSG_ACCEPTED/SUCCESS: the record and where the results start.
#[derive(Debug)]
pub struct RpcReply {
    record: Vec<u8>,
    start: usize,
    /// Where the record's buffer goes back when the reply is dropped.
    buffers: Arc<Buffers>,
}

impl Drop for RpcReply {
    fn drop(&mut self) {
        self.buffers.put(std::mem::take(&mut self.record));
    }
}

/// Large record buffers kept for the next replies (1 MiB READ replies would otherwise each
/// take fresh pages from the kernel, fault them in and give them back).
#[derive(Debug, Default)]
pub(crate) struct Buffers(Mutex<Vec<Vec<u8>>>);

/// Buffers at least this large are kept.
const KEEP_FROM: usize = 128 << 10;
/// Most bytes kept per connection (a few 1 MiB READ replies in flight; with one connection
/// per poller thread, what a burst of large reads leaves behind stays bounded).
const KEEP_BYTES: usize = 8 << 20;

impl Buffers {
    fn take(&self) -> Vec<u8> {
        self.0.lock().pop().unwrap_or_default()
    }

    fn put(&self, buf: Vec<u8>) {
        if buf.capacity() >= KEEP_FROM {
            let mut kept = self.0.lock();
            let bytes: usize = kept.iter().map(Vec::capacity).sum();
            if bytes + buf.capacity() <= KEEP_BYTES {
                kept.push(buf);
            }
        }
    }
}

impl RpcReply {
    /// The procedure's results.
    pub fn body(&self) -> &[u8] {
        self.record.get(self.start..).unwrap_or_default()
    }
}

/// A TCP (or any byte-stream) connection to an RPC server.
pub struct Connection {
    outgoing: mpsc::Sender<Vec<u8>>,
    pending: Arc<Pending>,
    next_xid: AtomicU32,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
    config: ConnConfig,
}

/// Records queued for the writer before callers wait for room.
const WRITE_QUEUE: usize = 256;
/// Bytes the reader asks the socket for at once.
const READ_BUFFER: usize = 64 << 10;
/// Most bytes of queued records the writer sends in one system call.
const WRITE_BATCH: usize = 256 << 10;

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects over TCP to `addr`.
    pub async fn connect(addr: SocketAddr, config: ConnConfig) -> Result<Self> {
        let stream = tokio::time::timeout(config.timeout, tokio::net::TcpStream::connect(addr))
            .await
            .map_err(|_| Error::Timeout)??;
        stream.set_nodelay(true)?;
        let (r, w) = stream.into_split();
        Ok(Self::from_stream(r, w, config))
    }

    /// A connection over any split byte stream (tests use an in-memory duplex).
    pub fn from_stream<R, W>(r: R, w: W, config: ConnConfig) -> Self
    where
        R: AsyncRead + Send + Unpin + 'static,
        W: AsyncWrite + Send + Unpin + 'static,
    {
        let pending: Arc<Pending> = Arc::new(Mutex::new(Some(HashMap::new())));
        // Replies are parsed out of one buffer: a read of the socket brings in several at
        // QD>1, and a record header no longer costs a system call of its own.
        let r = tokio::io::BufReader::with_capacity(READ_BUFFER, r);
        let buffers = Arc::new(Buffers::default());
        let reader = tokio::spawn(read_loop(r, pending.clone(), config.max_record, buffers));
        let (outgoing, queue) = mpsc::channel(WRITE_QUEUE);
        let writer = tokio::spawn(write_loop(w, queue, pending.clone()));
        // A time-based start keeps xids of successive connections apart (the server's reply
        // cache is keyed by them).
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
        Self { outgoing, pending, next_xid: AtomicU32::new(seed), reader, writer, config }
    }

    /// Calls `proc` of `prog` version `vers` as `creds` with XDR-encoded `args`, and waits for
    /// the reply (at most the configured timeout).
    pub async fn call(&self, prog: u32, vers: u32, proc: u32, creds: &Creds, args: &[u8]) -> Result<RpcReply> {
        let xid = self.next_xid.fetch_add(1, Ordering::Relaxed);
        let mut msg = Encoder::from_vec(Vec::with_capacity(args.len() + 128));
        msg.u32(0); // record header, patched below
        CallHeader { xid, prog, vers, proc }.encode(creds, &mut msg);
        let mut msg = msg.into_bytes();
        msg.extend_from_slice(args);
        let header = single_fragment_header(msg.len() - 4)
            .ok_or(Error::RecordTooLarge { len: msg.len() as u64, limit: crate::record::MAX_FRAGMENT })?;
        if let Some(h) = msg.get_mut(..4) {
            h.copy_from_slice(&header);
        }

        let (tx, rx) = oneshot::channel();
        match self.pending.lock().as_mut() {
            Some(map) => map.insert(xid, tx),
            None => return Err(Error::ConnectionClosed),
        };
        let guard = PendingGuard { pending: &self.pending, xid };
        let exchange = async {
            self.outgoing.send(msg).await.map_err(|_| Error::ConnectionClosed)?;
            rx.await.map_err(|_| Error::ConnectionClosed)
        };
        let record = tokio::time::timeout(self.config.timeout, exchange).await.map_err(|_| Error::Timeout)??;
        drop(guard);
        let (record, buffers) = record;
        let (_, d) = parse_reply(&record)?;
        let start = record.len() - d.remaining();
        Ok(RpcReply { record, start, buffers })
    }

    /// The NFSv4 minor version of the compounds sent on this connection.
    pub fn minor(&self) -> u32 {
        self.config.minor
    }

    /// Number of calls waiting for a reply.
    pub fn in_flight(&self) -> usize {
        self.pending.lock().as_ref().map_or(0, HashMap::len)
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

/// Removes a call's entry when it ends for any reason (timeout, write error, cancellation).
struct PendingGuard<'a> {
    pending: &'a Pending,
    xid: u32,
}

impl Drop for PendingGuard<'_> {
    fn drop(&mut self) {
        if let Some(map) = self.pending.lock().as_mut() {
            map.remove(&self.xid);
        }
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut w: W, mut queue: mpsc::Receiver<Vec<u8>>, pending: Arc<Pending>) {
    let mut batch: Vec<Vec<u8>> = Vec::new();
    while let Some(msg) = queue.recv().await {
        // With other calls in flight, their callers are likely ready to run too: let them
        // queue their records first, so that one write carries them all (at QD1 nothing waits).
        if pending.lock().as_ref().is_some_and(|m| m.len() > 1 + queue.len()) {
            tokio::task::yield_now().await;
        }
        // Everything callers queued meanwhile goes out in the same write.
        let mut bytes = msg.len();
        batch.push(msg);
        while bytes < WRITE_BATCH {
            match queue.try_recv() {
                Ok(msg) => {
                    bytes += msg.len();
                    batch.push(msg);
                }
                Err(_) => break,
            }
        }
        let written = async {
            write_all_vectored(&mut w, &batch).await?;
            w.flush().await
        };
        let result = written.await;
        batch.clear();
        if let Err(e) = result {
            tracing::warn!(error = %e, "RPC connection write failed");
            // Dropping every sender wakes every pending caller with ConnectionClosed.
            pending.lock().take();
            return;
        }
    }
}

/// Writes every buffer of `bufs`, in order, with as few system calls as the stream allows.
async fn write_all_vectored<W: AsyncWrite + Unpin>(w: &mut W, bufs: &[Vec<u8>]) -> std::io::Result<()> {
    let mut slices: Vec<std::io::IoSlice<'_>> = bufs.iter().map(|b| std::io::IoSlice::new(b)).collect();
    let mut rest = &mut slices[..];
    std::io::IoSlice::advance_slices(&mut rest, 0); // skips empty buffers
    while !rest.is_empty() {
        let n = w.write_vectored(rest).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        std::io::IoSlice::advance_slices(&mut rest, n);
    }
    Ok(())
}

async fn read_loop<R: AsyncRead + Unpin>(mut r: R, pending: Arc<Pending>, max_record: usize, buffers: Arc<Buffers>) {
    loop {
        match read_record_into(&mut r, max_record, buffers.take()).await {
            Ok(Some(record)) => {
                let Ok(xid) = reply_xid(&record) else {
                    tracing::warn!(len = record.len(), "RPC record too short for an xid, dropped");
                    continue;
                };
                let waiter = pending.lock().as_mut().and_then(|m| m.remove(&xid));
                match waiter {
                    // The caller may have given up (timeout); then the reply is dropped.
                    Some(tx) => drop(tx.send((record, buffers.clone()))),
                    None => tracing::warn!(xid, "RPC reply for an unknown xid, dropped"),
                }
            }
            Ok(None) => {
                tracing::debug!("RPC connection closed by the server");
                break;
            }
            Err(e) => {
                tracing::warn!(error = %e, "RPC connection failed");
                break;
            }
        }
    }
    // Dropping every sender wakes every pending caller with ConnectionClosed.
    pending.lock().take();
}

/// Decodes the procedure's results with `f`, which must consume them all.
pub fn decode_body<T>(reply: &RpcReply, f: impl FnOnce(&mut Decoder<'_>) -> Result<T>) -> Result<T> {
    let mut d = Decoder::new(reply.body());
    let v = f(&mut d)?;
    d.finish()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode_record, read_record};
    use tokio::io::{AsyncReadExt, DuplexStream};

    /// A fake server end: reads calls, and answers with what the test tells it.
    async fn read_call(s: &mut DuplexStream) -> (u32, Vec<u8>) {
        let rec = read_record(s, 1 << 20).await.unwrap().unwrap();
        let mut d = Decoder::new(&rec);
        let (h, _creds) = CallHeader::decode(&mut d).unwrap();
        (h.xid, d.rest().to_vec())
    }

    async fn reply(s: &mut DuplexStream, xid: u32, body: &[u8]) {
        let mut e = Encoder::new();
        e.u32(xid).u32(1).u32(0).u32(0).u32(0).u32(0);
        let mut payload = e.into_bytes();
        payload.extend_from_slice(body);
        let mut wire = Vec::new();
        encode_record(&payload, 7, &mut wire); // several fragments
        s.write_all(&wire).await.unwrap();
    }

    fn pair(timeout: Duration) -> (Connection, DuplexStream) {
        let (client, server) = tokio::io::duplex(1 << 16);
        let (r, w) = tokio::io::split(client);
        (Connection::from_stream(r, w, ConnConfig { max_record: 1 << 20, timeout, minor: 1 }), server)
    }

    #[tokio::test]
    async fn replies_out_of_order_reach_their_callers() {
        let (conn, mut server) = pair(Duration::from_secs(5));
        let creds = Creds::root();
        let server_task = tokio::spawn(async move {
            let mut calls = Vec::new();
            for _ in 0..3 {
                calls.push(read_call(&mut server).await);
            }
            reply(&mut server, 0xdead, b"junk").await; // unknown xid: dropped
            for (xid, args) in calls.iter().rev() {
                reply(&mut server, *xid, args).await;
            }
            server
        });
        let (a, b, c) = tokio::join!(
            conn.call(1, 1, 1, &creds, b"aaaa"),
            conn.call(1, 1, 1, &creds, b"bbbbbbbb"),
            conn.call(1, 1, 1, &creds, b"cccc"),
        );
        assert_eq!(a.unwrap().body(), b"aaaa");
        assert_eq!(b.unwrap().body(), b"bbbbbbbb");
        assert_eq!(c.unwrap().body(), b"cccc");
        assert_eq!(conn.in_flight(), 0);
        drop(server_task.await.unwrap());
    }

    #[tokio::test]
    async fn many_calls_at_once_through_a_narrow_pipe_each_get_their_own_reply() {
        // A 16-byte pipe: batched records go out in many partial vectored writes, and replies
        // arrive split across reads.
        let (client, mut server) = tokio::io::duplex(16);
        let (r, w) = tokio::io::split(client);
        let conn = Connection::from_stream(
            r,
            w,
            ConnConfig { max_record: 1 << 20, timeout: Duration::from_secs(10), minor: 1 },
        );
        let server_task = tokio::spawn(async move {
            for _ in 0..40 {
                let (xid, args) = read_call(&mut server).await;
                reply(&mut server, xid, &args).await;
            }
            server
        });
        let conn = Arc::new(conn);
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..40u8 {
            let conn = conn.clone();
            calls.spawn(async move {
                let args = vec![i; 4 * (1 + i as usize % 5)];
                (conn.call(1, 1, 1, &Creds::root(), &args).await.unwrap().body().to_vec(), args)
            });
        }
        while let Some(done) = calls.join_next().await {
            let (got, sent) = done.unwrap();
            assert_eq!(got, sent);
        }
        assert_eq!(conn.in_flight(), 0);
        drop(server_task.await.unwrap());
    }

    #[test]
    fn large_record_buffers_are_kept_for_reuse_and_small_ones_are_not() {
        let b = Buffers::default();
        b.put(Vec::with_capacity(4096));
        assert_eq!(b.take().capacity(), 0, "a small buffer is not kept");
        let big = Vec::<u8>::with_capacity(1 << 20);
        let ptr = big.as_ptr();
        b.put(big);
        let again = b.take();
        assert_eq!(again.as_ptr(), ptr, "the next record reuses the large buffer");
        for _ in 0..2 * KEEP_BYTES / KEEP_FROM {
            b.put(Vec::with_capacity(KEEP_FROM));
        }
        let kept: usize = b.0.lock().iter().map(Vec::capacity).sum();
        assert!(kept <= KEEP_BYTES && kept + KEEP_FROM > KEEP_BYTES, "what is kept is bounded: {kept} bytes");
        b.put(Vec::with_capacity(2 * KEEP_BYTES));
        let after: usize = b.0.lock().iter().map(Vec::capacity).sum();
        assert_eq!(after, kept, "a buffer over the budget is not kept");
    }

    #[tokio::test]
    async fn a_closed_connection_fails_every_pending_call() {
        let (conn, mut server) = pair(Duration::from_secs(30));
        let creds = Creds::root();
        let closer = tokio::spawn(async move {
            read_call(&mut server).await;
            read_call(&mut server).await;
            drop(server);
        });
        let (a, b) = tokio::join!(conn.call(1, 1, 1, &creds, &[]), conn.call(1, 1, 1, &creds, &[]));
        assert!(matches!(a, Err(Error::ConnectionClosed)));
        assert!(matches!(b, Err(Error::ConnectionClosed)));
        closer.await.unwrap();
        // Later calls fail at once.
        assert!(matches!(conn.call(1, 1, 1, &creds, &[]).await, Err(Error::ConnectionClosed)));
    }

    #[tokio::test]
    async fn a_late_reply_is_dropped_and_the_connection_carries_on() {
        let (conn, mut server) = pair(Duration::from_millis(100));
        let creds = Creds::root();
        assert!(matches!(conn.call(1, 1, 1, &creds, b"late").await, Err(Error::Timeout)));
        let (late, _) = read_call(&mut server).await;
        reply(&mut server, late, b"late").await; // its caller gave up
        let server_task = tokio::spawn(async move {
            let (xid, args) = read_call(&mut server).await;
            reply(&mut server, xid, &args).await;
            server
        });
        assert_eq!(conn.call(1, 1, 1, &creds, b"next").await.unwrap().body(), b"next");
        drop(server_task.await.unwrap());
    }

    #[tokio::test]
    async fn a_silent_server_times_out() {
        let (conn, mut server) = pair(Duration::from_millis(50));
        let r = conn.call(1, 1, 1, &Creds::root(), &[]).await;
        assert!(matches!(r, Err(Error::Timeout)));
        assert_eq!(conn.in_flight(), 0);
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await.unwrap();
    }
}
