//! Getting a session on a connection: a new one (EXCHANGE_ID, CREATE_SESSION) or, after a
//! reconnect, the old one (BIND_CONN_TO_SESSION). What a client holds while it is
//! [`Established`].

use crate::compound::{encode_compound, CompoundReply, Replies, NFS_PROGRAM, NFS_V4, PROC_COMPOUND};
use crate::conn::{ConnConfig, Connection};
use crate::error::{Error, Result};
use crate::ops::{ChannelAttrs, CreateSessionArgs, ExchangeIdArgs, Op, OpCode, SessionId};
use crate::rpc::Creds;
use crate::session::SlotTable;
use std::net::SocketAddr;
use std::sync::Arc;

/// A connection and the session it is bound to.
#[derive(Debug)]
pub(crate) struct Established {
    pub conn: Connection,
    pub clientid: u64,
    pub session: SessionId,
    pub fore: ChannelAttrs,
    pub slots: Arc<SlotTable>,
    /// Counts re-establishments: a failure under generation `g` recovers only once.
    pub generation: u64,
}

/// Who the client is to the server: kept across reconnects so the server recognises it.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub owner_id: Vec<u8>,
    pub verifier: [u8; 8],
}

/// What a session asks of the server.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    pub slots: u32,
    pub max_request: u32,
    pub max_response: u32,
    pub conn: ConnConfig,
}

/// Sends a compound outside any session (EXCHANGE_ID, CREATE_SESSION, DESTROY_*, BIND_*).
pub(crate) async fn call(conn: &Connection, creds: &Creds, ops: Vec<Op>) -> Result<Replies> {
    let asked: Vec<OpCode> = ops.iter().map(Op::code).collect();
    let reply = conn.call(NFS_PROGRAM, NFS_V4, PROC_COMPOUND, creds, &encode_compound(conn.minor(), &ops)).await?;
    CompoundReply::decode(reply.body())?.expect(&asked)
}

/// A new client id (or the same one, if the server still knows this identity) and a new
/// session on a new connection to `addr`.
pub(crate) async fn establish(
    addr: SocketAddr,
    id: &Identity,
    creds: &Creds,
    want: Wanted,
    generation: u64,
) -> Result<Established> {
    let conn = Connection::connect(addr, want.conn).await?;
    let op = Op::ExchangeId(ExchangeIdArgs { verifier: id.verifier, owner_id: id.owner_id.clone(), flags: 0 });
    let eid = call(&conn, creds, vec![op]).await?.exchange_id()?;
    let fore = ChannelAttrs {
        header_pad: 0,
        max_request: want.max_request,
        max_response: want.max_response,
        max_response_cached: 64 << 10,
        max_ops: 16,
        max_requests: want.slots,
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
    let cs = match call(&conn, creds, vec![op]).await.and_then(|mut r| r.create_session()) {
        Ok(cs) => cs,
        Err(e) => {
            // Leave no client id behind on the server.
            if let Err(d) = call(&conn, creds, vec![Op::DestroyClientId(eid.clientid)]).await {
                tracing::debug!(error = %d, "destroying the client id after a failed CREATE_SESSION");
            }
            return Err(e);
        }
    };
    tracing::debug!(clientid = eid.clientid, fore = ?cs.fore, "NFSv4.1 session created");
    // The slot count the server granted, never more than asked.
    let slots = cs.fore.max_requests.clamp(1, want.slots.max(1));
    Ok(Established {
        conn,
        clientid: eid.clientid,
        session: cs.session,
        fore: cs.fore,
        slots: Arc::new(SlotTable::new(slots as usize)),
        generation,
    })
}

/// The old session on a new connection (BIND_CONN_TO_SESSION): state and slots carry on.
pub(crate) async fn rebind(addr: SocketAddr, old: &Established, creds: &Creds, want: Wanted) -> Result<Established> {
    let conn = Connection::connect(addr, want.conn).await?;
    let bound = call(&conn, creds, vec![Op::BindConnToSession(old.session)]).await?.bind_conn_to_session()?;
    if bound != old.session {
        return Err(Error::Protocol("BIND_CONN_TO_SESSION answered for another session"));
    }
    Ok(Established {
        conn,
        clientid: old.clientid,
        session: old.session,
        fore: old.fore,
        slots: old.slots.clone(),
        generation: old.generation + 1,
    })
}
