//! The NFSv4.1 client: a client id and a session over one connection, the export's root
//! resolved at connect time, and compounds sent under a slot of the session. A lost
//! connection or session is recovered while callers wait: reconnect with backoff and
//! BIND_CONN_TO_SESSION, or (server restarted) a new client id and session.

use crate::compound::{encode_sequenced, CompoundReply, Replies, NFS_PROGRAM, NFS_V4, PROC_COMPOUND};
use crate::conn::ConnConfig;
use crate::error::{Error, Result};
use crate::establish::{call, establish, rebind, Established, Identity, Wanted};
use crate::ops::{Attrs, Bitmap, ChannelAttrs, FileHandle, Op, OpCode, OpReply, Status, MAX_NAME};
use crate::rpc::Creds;
use crate::session::SlotTable;
use parking_lot::RwLock;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
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
    /// TCP connections, each with its own session of the one client id (client-id
    /// trunking); compounds take them in turn.
    pub nconnect: usize,
    /// The NFSv4 minor version: 1, or 2 for SEEK, ALLOCATE, DEALLOCATE and COPY.
    pub minor: u32,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            slots: 64,
            // 1 MiB of data and room for the compound around it.
            max_request: (1 << 20) + (16 << 10),
            max_response: (1 << 20) + (16 << 10),
            timeout: Duration::from_secs(30),
            nconnect: 1,
            minor: crate::compound::MINOR_VERSION,
        }
    }
}

/// Most connections of one client.
pub const MAX_NCONNECT: usize = 16;

/// One connection and its session, re-established on its own when lost.
#[derive(Debug)]
struct Lane {
    state: RwLock<Arc<Established>>,
    /// Held by the one task re-establishing this lane.
    recovering: tokio::sync::Mutex<()>,
}

impl Lane {
    fn new(est: Established) -> Self {
        Self { state: RwLock::new(Arc::new(est)), recovering: tokio::sync::Mutex::new(()) }
    }

    fn current(&self) -> Arc<Established> {
        self.state.read().clone()
    }
}

/// First and longest pause between reconnect attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(50), Duration::from_secs(2));

/// A connected NFSv4.1 client with one session, rooted at an export.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    creds: Creds,
    id: Identity,
    want: Wanted,
    /// The first connection, and the others (`nconnect` in all).
    first: Lane,
    more: Vec<Lane>,
    /// The lane the next compound takes.
    next: AtomicUsize,
    /// The client id the server gave last.
    clientid: AtomicU64,
    /// Counts client ids (server restarts): open state of an older epoch is gone.
    epoch: AtomicU64,
    root: FileHandle,
    root_attrs: Attrs,
    /// When the client was created: the epoch of `last_sent`.
    born: Instant,
    /// Milliseconds after `born` at which the last sequenced compound was sent.
    last_sent: AtomicU64,
    /// Reclaims open state after the server lost it (see [`Client::on_server_restart`]).
    restart_hook: std::sync::OnceLock<RestartHook>,
}

/// What runs when the server lost this client's state.
struct RestartHook(Box<dyn Fn() + Send + Sync>);

impl std::fmt::Debug for RestartHook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RestartHook")
    }
}

/// A client owner id unique to this process and call, so that two clients never share state.
fn owner_id() -> Identity {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    Identity {
        owner_id: format!("dpfs-nfs4/{}/{nanos}/{n}", std::process::id()).into_bytes(),
        verifier: nanos.to_be_bytes(),
    }
}

/// Whether a failed compound needs a new connection or session before it is sent again.
fn lost(e: &Error) -> bool {
    matches!(
        e,
        Error::ConnectionClosed
            | Error::Io(_)
            | Error::Timeout
            | Error::Nfs {
                status: Status::BadSession
                    | Status::DeadSession
                    | Status::StaleClientId
                    | Status::ConnNotBoundToSession
                    | Status::Expired,
                op: OpCode::Sequence,
            }
    ) || matches!(e, Error::Nfs { status: Status::StaleClientId | Status::BadSession, .. })
}

impl Client {
    /// Connects to `addr` with default limits; see [`connect_with`](Self::connect_with).
    pub async fn connect(addr: SocketAddr, export_path: &str, creds: Creds) -> Result<Self> {
        Self::connect_with(addr, export_path, creds, ClientConfig::default()).await
    }

    /// Connects to `addr`: EXCHANGE_ID, CREATE_SESSION, RECLAIM_COMPLETE, then PUTROOTFH,
    /// LOOKUP of each component of `export_path`, GETFH and GETATTR of the export's root.
    pub async fn connect_with(addr: SocketAddr, export_path: &str, creds: Creds, config: ClientConfig) -> Result<Self> {
        if !(1..=crate::compound::MAX_MINOR_VERSION).contains(&config.minor) {
            return Err(Error::Protocol("unsupported NFSv4 minor version (1 or 2)"));
        }
        let conn = ConnConfig {
            max_record: config.max_response.saturating_add(64 << 10) as usize,
            timeout: config.timeout,
            minor: config.minor,
        };
        let components: Vec<&str> = export_path.split('/').filter(|p| !p.is_empty()).collect();
        if let Some(long) = components.iter().find(|c| c.len() > MAX_NAME) {
            return Err(Error::TooLong { what: "export component", len: long.len() as u64, limit: MAX_NAME as u64 });
        }
        let want =
            Wanted { slots: config.slots, max_request: config.max_request, max_response: config.max_response, conn };
        let id = owner_id();
        let est = establish(addr, &id, &creds, want, 0).await?;
        let clientid = est.clientid;
        let mut more = Vec::new();
        // More connections: the same owner gets the same client id and a session on each.
        for _ in 1..config.nconnect.clamp(1, MAX_NCONNECT) {
            let next = establish(addr, &id, &creds, want, 0).await;
            let trunked = matches!(&next, Ok(e) if e.clientid == clientid);
            match next {
                Ok(est) if trunked => more.push(Lane::new(est)),
                Ok(_) => return Err(Error::Protocol("the server gave another connection another client id")),
                Err(e) => return Err(e),
            }
        }
        let mut client = Self {
            addr,
            creds,
            id,
            want,
            first: Lane::new(est),
            more,
            next: AtomicUsize::new(0),
            clientid: AtomicU64::new(clientid),
            epoch: AtomicU64::new(0),
            restart_hook: std::sync::OnceLock::new(),
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
        self.reclaim_complete().await?;
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

    /// Sets what runs (once per restart, on the runtime, with the new session in place) when
    /// the server has lost this client's state: it should reclaim open files with
    /// CLAIM_PREVIOUS, which a server in its grace period accepts, then call
    /// [`finish_reclaim`](Self::finish_reclaim). Without a hook RECLAIM_COMPLETE goes at
    /// once and open state is re-opened later, when the grace period is over. Set once.
    pub fn on_server_restart(&self, hook: Box<dyn Fn() + Send + Sync>) {
        let _ = self.restart_hook.set(RestartHook(hook));
    }

    /// RECLAIM_COMPLETE after a server restart: nothing more will be reclaimed (a server
    /// ends its grace period early once every client has said so).
    pub async fn finish_reclaim(&self) -> Result<()> {
        self.reclaim_complete().await
    }

    async fn reclaim_complete(&self) -> Result<()> {
        match self.compound(vec![Op::ReclaimComplete { one_fs: false }]).await {
            Ok(_) | Err(Error::Nfs { status: Status::CompleteAlready, .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The first lane's connection and session (for what all lanes share).
    fn current(&self) -> Arc<Established> {
        self.lane(0).current()
    }

    /// Lane `i` modulo their count.
    fn lane(&self, i: usize) -> &Lane {
        match i % (self.more.len() + 1) {
            0 => &self.first,
            k => self.more.get(k - 1).unwrap_or(&self.first),
        }
    }

    fn lanes(&self) -> impl Iterator<Item = &Lane> {
        std::iter::once(&self.first).chain(&self.more)
    }

    /// TCP connections (sessions) of this client.
    pub fn connections(&self) -> usize {
        self.more.len() + 1
    }

    /// The client id and session of connection `i` (tests check the trunking).
    pub fn session_of(&self, i: usize) -> (u64, crate::ops::SessionId) {
        let est = self.lane(i).current();
        (est.clientid, est.session)
    }

    /// The export root's file handle.
    pub fn root(&self) -> &FileHandle {
        &self.root
    }

    /// The export root's attributes as read at connect time.
    pub fn root_attrs(&self) -> &Attrs {
        &self.root_attrs
    }

    /// The NFSv4 minor version of this client's compounds.
    pub fn minor(&self) -> u32 {
        self.want.conn.minor
    }

    /// The fore channel the server granted.
    pub fn fore_channel(&self) -> ChannelAttrs {
        self.current().fore
    }

    /// The client id.
    pub fn clientid(&self) -> u64 {
        self.clientid.load(Ordering::Relaxed)
    }

    /// Changes each time the client needs a new client id (the server restarted): open
    /// state taken under an older epoch is gone.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Relaxed)
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
                if client.idle_for() >= period {
                    let renew = tokio::time::timeout(period, client.compound(Vec::new()));
                    if let Ok(Err(e)) = renew.await {
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
    pub fn slots(&self) -> Arc<SlotTable> {
        self.current().slots.clone()
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
    /// their results (after the SEQUENCE's). A lost connection or session is recovered and
    /// the compound sent again, for as long as the caller waits (callers bound it with a
    /// deadline).
    pub async fn compound_as(&self, creds: &Creds, ops: &[Op]) -> Result<Replies> {
        let lane = self.lane(self.next.fetch_add(1, Ordering::Relaxed));
        loop {
            let est = lane.current();
            match self.try_compound(&est, creds, ops).await {
                Err(e) if lost(&e) && !est.slots.is_closed() => {
                    tracing::info!(error = %e, "NFS connection or session lost: recovering");
                    self.recover(lane, est.generation).await;
                }
                // A reply the server could not replay: the slot moved on, send it anew.
                Err(Error::Nfs { op: OpCode::Sequence, status: Status::RetryUncachedRep | Status::SeqMisordered }) => {}
                r => return r,
            }
        }
    }

    async fn try_compound(&self, est: &Established, creds: &Creds, ops: &[Op]) -> Result<Replies> {
        let mut slot = est.slots.acquire().await?;
        let args = slot.sequence_args(est.session);
        let asked: Vec<OpCode> = std::iter::once(OpCode::Sequence).chain(ops.iter().map(Op::code)).collect();
        self.last_sent.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
        let body = encode_sequenced(est.conn.minor(), &Op::Sequence(args), ops);
        let reply = est.conn.call(NFS_PROGRAM, NFS_V4, PROC_COMPOUND, creds, &body).await?;
        let reply = CompoundReply::decode(reply.body())?;
        match reply.results.first() {
            Some(r) if r.op == OpCode::Sequence => match &r.reply {
                Some(OpReply::Sequence(seq)) => {
                    if seq.session != est.session || seq.slotid != args.slotid || seq.sequenceid != args.sequenceid {
                        return Err(Error::Protocol("SEQUENCE reply for another session, slot or sequence id"));
                    }
                    slot.seen();
                }
                // The server had already seen this sequence id (a retry after a lost reply).
                _ if r.status == Status::RetryUncachedRep => slot.seen(),
                _ => {}
            },
            _ => {}
        }
        let mut r = reply.expect(&asked)?;
        r.sequence()?;
        Ok(r)
    }

    /// Re-establishes the session lost under `generation` (once, whoever asks first):
    /// reconnect with backoff, BIND_CONN_TO_SESSION to the old session, else a new client
    /// id and session (the server restarted) and RECLAIM_COMPLETE. Retries until it
    /// succeeds; callers give up by dropping the future.
    async fn recover(&self, lane: &Lane, generation: u64) {
        let _one = lane.recovering.lock().await;
        let old = lane.current();
        if old.generation != generation {
            return;
        }
        let mut backoff = BACKOFF.0;
        loop {
            match rebind(self.addr, &old, &self.creds, self.want).await {
                Ok(est) => {
                    tracing::info!("NFS connection re-established, session kept");
                    *lane.state.write() = Arc::new(est);
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "BIND_CONN_TO_SESSION failed"),
            }
            match establish(self.addr, &self.id, &self.creds, self.want, old.generation + 1).await {
                Ok(est) => {
                    old.slots.close();
                    if self.clientid.swap(est.clientid, Ordering::Relaxed) != est.clientid {
                        // A new client id: the server lost our state.
                        self.epoch.fetch_add(1, Ordering::Relaxed);
                        match self.restart_hook.get() {
                            // The hook reclaims (on its own task, over the new session once it
                            // is in place below) and sends RECLAIM_COMPLETE itself.
                            Some(hook) => {
                                *lane.state.write() = Arc::new(est);
                                tracing::info!("NFS session re-created with a new client id; reclaiming open files");
                                (hook.0)();
                                return;
                            }
                            None => {
                                let done = self
                                    .try_compound(&est, &self.creds, &[Op::ReclaimComplete { one_fs: false }])
                                    .await;
                                match done {
                                    Ok(_) | Err(Error::Nfs { status: Status::CompleteAlready, .. }) => {}
                                    Err(e) => tracing::warn!(error = %e, "RECLAIM_COMPLETE after recovery failed"),
                                }
                            }
                        }
                        tracing::info!("NFS session re-created with a new client id");
                    } else {
                        tracing::info!("NFS session re-created");
                    }
                    *lane.state.write() = Arc::new(est);
                    return;
                }
                Err(e) => tracing::debug!(error = %e, "NFS reconnect failed"),
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    /// Ends the session and the client id: DESTROY_SESSION, then DESTROY_CLIENTID.
    pub async fn shutdown(self) -> Result<()> {
        self.end().await
    }

    /// [`shutdown`](Self::shutdown) of a shared client: later compounds fail.
    pub async fn end(&self) -> Result<()> {
        let lanes: Vec<_> = self.lanes().map(Lane::current).collect();
        for est in &lanes {
            est.slots.close();
            call(&est.conn, &self.creds, vec![Op::DestroySession(est.session)]).await?;
        }
        let last = lanes.last().ok_or(Error::Protocol("no connection"))?;
        call(&last.conn, &self.creds, vec![Op::DestroyClientId(self.clientid())]).await?;
        Ok(())
    }
}
