//! One forwarder connection on the gateway: handshake, session lookup, then requests in
//! (run on this worker thread, inline) and replies out, batched, on the same task.

use super::session::{Admit, ReplyTx, Session};
use super::Shared;
use crate::handshake::{self};
use crate::io::{send, FrameReader};
use crate::RemoteError;
use bytes::Bytes;
use dpfs_core::owned_request;
use dpfs_remote_wire::message::reply_header;
use dpfs_remote_wire::{Message, RefuseReason};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves one accepted connection until it closes.
pub(crate) async fn serve(stream: std::net::TcpStream, shared: Arc<Shared>, thread: u16) {
    let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_else(|_| "?".into());
    if let Err(e) = serve_inner(stream, &shared, thread, &peer).await {
        match e {
            RemoteError::PeerAuth | RemoteError::Version(_) => {
                shared.stats.refused.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%peer, error = %e, "forwarder refused");
            }
            RemoteError::Closed => tracing::info!(%peer, "forwarder disconnected"),
            e => tracing::warn!(%peer, error = %e, "forwarder connection dropped"),
        }
    }
}

async fn serve_inner(
    stream: std::net::TcpStream,
    shared: &Arc<Shared>,
    thread: u16,
    peer: &str,
) -> Result<(), RemoteError> {
    stream.set_nonblocking(true)?;
    let stream = TcpStream::from_std(stream)?;
    stream.set_nodelay(true)?;
    let (r, mut w) = stream.into_split();
    let mut rd = FrameReader::new(r);
    let hello = match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake::server(&mut rd, &mut w, &shared.cfg.key)).await
    {
        Err(_) => return Err(RemoteError::Timeout("in the handshake")),
        Ok(Err(RemoteError::Closed)) => {
            shared.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, "forwarder hung up during the handshake (it did not accept our proof: another key?)");
            return Ok(());
        }
        Ok(r) => r?,
    };
    if hello.probe {
        send(&mut w, &Message::Welcome { session: 0, resumed: false }).await?;
        w.flush().await?;
        tracing::info!(%peer, identity = %hello.identity, "probe authenticated");
        return Ok(());
    }
    let (session, resumed) = match shared.session_for(&hello.identity, hello.resume) {
        Ok(s) => s,
        Err(e) => {
            handshake::refuse(&mut w, RefuseReason::Backend, &e).await;
            tracing::error!(%peer, identity = %hello.identity, error = %e, "no backend for the device");
            return Ok(());
        }
    };
    send(&mut w, &Message::Welcome { session: session.id, resumed }).await?;
    w.flush().await?;
    tracing::info!(%peer, identity = %hello.identity, session = session.id, resumed, "forwarder connected");
    let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let (tx, rx) = mpsc::unbounded_channel();
    session.attach(conn, tx.clone());
    let result = serve_frames(&mut rd, w, &session, shared, thread, conn, &tx, rx).await;
    session.detach(conn);
    result
}

/// Requests in, replies out, on this task: every request already buffered is run first,
/// then every reply ready by then goes out in one write, before the task waits for more
/// bytes or for a reply completed elsewhere. A reply never waits behind a read that has
/// nothing to return, and a burst of requests costs one read and one write.
#[allow(clippy::too_many_arguments)]
async fn serve_frames(
    rd: &mut FrameReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    session: &Arc<Session>,
    shared: &Arc<Shared>,
    thread: u16,
    conn: u64,
    tx: &ReplyTx,
    mut rx: mpsc::UnboundedReceiver<(u64, Bytes)>,
) -> Result<(), RemoteError> {
    // Bodies over the buffer's capacity bypass it (no copy of a large READ's reply).
    let mut w = BufWriter::with_capacity(256 << 10, w);
    let mut unflushed = false;
    loop {
        while let Some(frame) = rd.buffered()? {
            if !session.is_current(conn) {
                return Err(RemoteError::Protocol("a newer connection of the same session took over"));
            }
            on_frame(&frame, session, shared, thread, tx)?;
        }
        while let Ok((seq, body)) = rx.try_recv() {
            w.write_all(&reply_header(seq, body.len())).await?;
            w.write_all(&body).await?;
            unflushed = true;
        }
        if std::mem::take(&mut unflushed) {
            w.flush().await?;
        }
        tokio::select! {
            r = rd.fill() => r?,
            m = rx.recv() => {
                // The session holds a sender while this connection is attached; `tx` too.
                let Some((seq, body)) = m else { return Err(RemoteError::Closed) };
                w.write_all(&reply_header(seq, body.len())).await?;
                w.write_all(&body).await?;
                unflushed = true;
            }
        }
    }
}

/// One frame from the forwarder.
fn on_frame(
    frame: &[u8],
    session: &Arc<Session>,
    shared: &Arc<Shared>,
    thread: u16,
    tx: &ReplyTx,
) -> Result<(), RemoteError> {
    match Message::decode_from_dpu(frame)? {
        Message::Request { seq, ack, capacity, body } => {
            match session.admit(seq, ack).map_err(RemoteError::Protocol)? {
                Admit::Run => {
                    shared.stats.executed.fetch_add(1, Ordering::Relaxed);
                    let s = session.clone();
                    let mut req =
                        owned_request(session.device.id(), vec![body.to_vec()], &[capacity as usize], move |r| {
                            let mut w = r.writable;
                            let mut reply = w.pop().unwrap_or_default();
                            reply.truncate(r.written);
                            s.complete(seq, Bytes::from(reply));
                        });
                    req.thread = thread;
                    session.device.handle(req);
                }
                Admit::Replay(reply) => {
                    shared.stats.replayed.fetch_add(1, Ordering::Relaxed);
                    let _ = tx.send((seq, reply));
                }
                Admit::Wait | Admit::Stale => {}
            }
        }
        Message::Reset { seq, ack } => match session.admit(seq, ack).map_err(RemoteError::Protocol)? {
            Admit::Run => {
                session.device.reset();
                session.complete(seq, Bytes::new());
            }
            Admit::Replay(reply) => {
                let _ = tx.send((seq, reply));
            }
            Admit::Wait | Admit::Stale => {}
        },
        Message::Ack { below, seqs } => session.acknowledge(below, seqs.iter()),
        _ => return Err(RemoteError::Protocol("unexpected message after the handshake")),
    }
    Ok(())
}
