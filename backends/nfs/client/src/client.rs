//! The NFSv4.1 client: a client id and a session over one connection, the export's root
//! resolved at connect time, and compounds sent under a slot of the session.

use crate::compound::{encode_compound, encode_sequenced, CompoundReply, Replies, NFS_PROGRAM, NFS_V4, PROC_COMPOUND};
use crate::conn::{ConnConfig, Connection};
use crate::error::{Error, Result};
use crate::ops::{
    Attrs, Bitmap, ChannelAttrs, CreateSessionArgs, ExchangeIdArgs, FileHandle, Op, OpCode, OpReply, SessionId, Status,
    MAX_NAME,
};
use crate::rpc::Creds;
use crate::session::SlotTable;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// What the client asks of the server and of its connection.
#[derive(Debug, Clone, Copy)]
pub struct ClientConfig {
    /// Fore-channel slots proposed (the server may grant fewer).
    pub slots: u32,
    /// Largest request proposed (bytes).
    pub max_request: u32,
    /// Largest response proposed (bytes).
    pub max_response: u32,
    /// How long one call waits for its reply.
    pub timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self { slots: 64, max_request: 1 << 20, max_response: 1 << 20, timeout: Duration::from_secs(30) }
    }
}

/// A connected NFSv4.1 client with one session, rooted at an export.
#[derive(Debug)]
pub struct Client {
    conn: Connection,
    creds: Creds,
    clientid: u64,
    session: SessionId,
    fore: ChannelAttrs,
    slots: SlotTable,
    root: FileHandle,
    root_attrs: Attrs,
    /// When the client was created: the epoch of `last_sent`.
    born: Instant,
    /// Milliseconds after `born` at which the last sequenced compound was sent.
    last_sent: AtomicU64,
}

/// A client owner id unique to this process and call, so that two clients never share state.
fn owner_id() -> (Vec<u8>, [u8; 8]) {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    (format!("dpfs-nfs4/{}/{nanos}/{n}", std::process::id()).into_bytes(), nanos.to_be_bytes())
}

impl Client {
    /// Connects to `addr` with default limits; see [`connect_with`](Self::connect_with).
    pub async fn connect(addr: SocketAddr, export_path: &str, creds: Creds) -> Result<Self> {
        Self::connect_with(addr, export_path, creds, ClientConfig::default()).await
    }

    /// Connects to `addr`: EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE, then PUTROOTFH,
    /// LOOKUP of each component of `export_path`, GETFH and GETATTR of the export's root.
    pub async fn connect_with(addr: SocketAddr, export_path: &str, creds: Creds, config: ClientConfig) -> Result<Self> {
        let conn_config =
            ConnConfig { max_record: config.max_response.saturating_add(64 << 10) as usize, timeout: config.timeout };
        let components: Vec<&str> = export_path.split('/').filter(|p| !p.is_empty()).collect();
        if let Some(long) = components.iter().find(|c| c.len() > MAX_NAME) {
            return Err(Error::TooLong { what: "export component", len: long.len() as u64, limit: MAX_NAME as u64 });
        }
        let conn = Connection::connect(addr, conn_config).await?;

        let (owner_id, verifier) = owner_id();
        let op = Op::ExchangeId(ExchangeIdArgs { verifier, owner_id, flags: 0 });
        let eid = call(&conn, &creds, vec![op]).await?.exchange_id()?;

        let fore = ChannelAttrs {
            header_pad: 0,
            max_request: config.max_request,
            max_response: config.max_response,
            max_response_cached: 64 << 10,
            max_ops: 16,
            max_requests: config.slots,
        };
        let back = ChannelAttrs {
            header_pad: 0,
            max_request: 4096,
            max_response: 4096,
            max_response_cached: 0,
            max_ops: 2,
            max_requests: 1,
        };
        let op = Op::CreateSession(CreateSessionArgs {
            clientid: eid.clientid,
            sequence: eid.sequenceid,
            flags: 0,
            fore,
            back,
            cb_program: 0x4000_0000,
        });
        let cs = match call(&conn, &creds, vec![op]).await.and_then(|mut r| r.create_session()) {
            Ok(cs) => cs,
            Err(e) => {
                // Leave no client id behind on the server.
                if let Err(d) = call(&conn, &creds, vec![Op::DestroyClientId(eid.clientid)]).await {
                    tracing::debug!(error = %d, "destroying the client id after a failed CREATE_SESSION");
                }
                return Err(e);
            }
        };
        tracing::debug!(clientid = eid.clientid, fore = ?cs.fore, "NFSv4.1 session created");
        let slots = cs.fore.max_requests.clamp(1, config.slots.max(1));

        let mut client = Self {
            conn,
            creds,
            clientid: eid.clientid,
            session: cs.session,
            fore: cs.fore,
            slots: SlotTable::new(slots as usize),
            root: FileHandle::default(),
            root_attrs: Attrs::default(),
            born: Instant::now(),
            last_sent: AtomicU64::new(0),
        };
        // A session the server granted is destroyed again if the export cannot be opened.
        match client.open_export(&components).await {
            Ok(()) => Ok(client),
            Err(e) => {
                if let Err(d) = client.shutdown().await {
                    tracing::debug!(error = %d, "destroying the session after a failed connect");
                }
                Err(e)
            }
        }
    }

    /// RECLAIM_COMPLETE (nothing to reclaim yet), then the export root: PUTROOTFH, a LOOKUP
    /// per component, GETFH, GETATTR.
    async fn open_export(&mut self, components: &[&str]) -> Result<()> {
        match self.compound(vec![Op::ReclaimComplete { one_fs: false }]).await {
            Ok(_) | Err(Error::Nfs { status: Status::CompleteAlready, .. }) => {}
            Err(e) => return Err(e),
        }
        let mut ops = vec![Op::PutRootFh];
        ops.extend(components.iter().map(|c| Op::Lookup(c.as_bytes().to_vec())));
        ops.push(Op::GetFh);
        let mut attrs = Bitmap::basic();
        if let Some(w) = attrs.0.get_mut(0) {
            *w |= 1 << crate::ops::attr::num::LEASE_TIME;
        }
        ops.push(Op::GetAttr(attrs));
        let mut r = self.compound(ops).await?;
        for _ in 0..=components.len() {
            r.skip()?;
        }
        self.root = r.getfh()?;
        self.root_attrs = r.getattr()?;
        Ok(())
    }

    /// The export root's file handle.
    pub fn root(&self) -> &FileHandle {
        &self.root
    }

    /// The export root's attributes as read at connect time.
    pub fn root_attrs(&self) -> &Attrs {
        &self.root_attrs
    }

    /// The fore channel the server granted.
    pub fn fore_channel(&self) -> ChannelAttrs {
        self.fore
    }

    /// The client id.
    pub fn clientid(&self) -> u64 {
        self.clientid
    }

    /// The lease the server grants (its `lease_time`, 90 s if it did not say).
    pub fn lease(&self) -> Duration {
        Duration::from_secs(self.root_attrs.lease_time.filter(|&s| s > 0).unwrap_or(90).into())
    }

    /// Keeps the lease alive while the client is idle: a SEQUENCE-only compound whenever a
    /// third of the lease passed without a sequenced compound. The task ends when the last
    /// `Arc` of the client is dropped.
    pub fn renew_while_idle(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak: Weak<Self> = Arc::downgrade(self);
        let period = self.lease() / 3;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(period).await;
                let Some(client) = weak.upgrade() else { return };
                let idle = client.idle_for();
                if idle >= period {
                    if let Err(e) = client.compound(Vec::new()).await {
                        tracing::warn!(error = %e, "NFS lease renewal failed");
                    }
                }
            }
        })
    }

    /// How long since the last sequenced compound was sent.
    pub fn idle_for(&self) -> Duration {
        let now = self.born.elapsed().as_millis() as u64;
        Duration::from_millis(now.saturating_sub(self.last_sent.load(Ordering::Relaxed)))
    }

    /// The session's slot table.
    pub fn slots(&self) -> &SlotTable {
        &self.slots
    }

    /// The attributes of `fh` (the basic set), as the client's own credentials.
    pub async fn getattr(&self, fh: &FileHandle) -> Result<Attrs> {
        self.getattr_as(&self.creds, fh).await
    }

    /// The attributes of `fh` (the basic set), as `creds`.
    pub async fn getattr_as(&self, creds: &Creds, fh: &FileHandle) -> Result<Attrs> {
        let mut r = self.compound_as(creds, &[Op::PutFh(fh.clone()), Op::GetAttr(Bitmap::basic())]).await?;
        r.skip()?;
        r.getattr()
    }

    /// [`compound_as`](Self::compound_as) with the client's own credentials.
    pub async fn compound(&self, ops: Vec<Op>) -> Result<Replies> {
        self.compound_as(&self.creds, &ops).await
    }

    /// Sends `ops` as `creds` after a SEQUENCE on a free slot (waiting for one) and returns
    /// their results (after the SEQUENCE's). The slot's sequence id advances once the server
    /// has processed the SEQUENCE.
    pub async fn compound_as(&self, creds: &Creds, ops: &[Op]) -> Result<Replies> {
        let mut slot = self.slots.acquire().await?;
        let args = slot.sequence_args(self.session);
        let asked: Vec<OpCode> = std::iter::once(OpCode::Sequence).chain(ops.iter().map(Op::code)).collect();
        self.last_sent.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        let body = encode_sequenced(&Op::Sequence(args), ops);
        let reply = self.conn.call(NFS_PROGRAM, NFS_V4, PROC_COMPOUND, creds, &body).await?;
        let reply = CompoundReply::decode(reply.body())?;
        if let Some(OpReply::Sequence(seq)) = reply.results.first().and_then(|r| r.reply.as_ref()) {
            if seq.session != self.session || seq.slotid != args.slotid || seq.sequenceid != args.sequenceid {
                return Err(Error::Protocol("SEQUENCE reply for another session, slot or sequence id"));
            }
            slot.seen();
        }
        let mut r = reply.expect(&asked)?;
        r.sequence()?;
        Ok(r)
    }

    /// Ends the session and the client id: DESTROY_SESSION, then DESTROY_CLIENTID.
    pub async fn shutdown(self) -> Result<()> {
        self.end().await
    }

    /// [`shutdown`](Self::shutdown) of a shared client: later compounds fail.
    pub async fn end(&self) -> Result<()> {
        self.slots.close();
        call(&self.conn, &self.creds, vec![Op::DestroySession(self.session)]).await?;
        call(&self.conn, &self.creds, vec![Op::DestroyClientId(self.clientid)]).await?;
        Ok(())
    }
}

/// Sends a compound outside any session (EXCHANGE_ID, CREATE_SESSION, DESTROY_*).
async fn call(conn: &Connection, creds: &Creds, ops: Vec<Op>) -> Result<Replies> {
    let asked: Vec<OpCode> = ops.iter().map(Op::code).collect();
    let reply = conn.call(NFS_PROGRAM, NFS_V4, PROC_COMPOUND, creds, &encode_compound(&ops)).await?;
    CompoundReply::decode(reply.body())?.expect(&asked)
}
