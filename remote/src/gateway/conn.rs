//! One forwarder connection on the gateway: handshake, session lookup, then requests in
//! (run on this worker thread, inline) and replies out (batched by a writer task).

use super::session::{Admit, Session};
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
    let result = tokio::select! {
        r = read_loop(&mut rd, &session, shared, thread, conn, &tx) => r,
        r = write_loop(w, rx) => r,
    };
    session.detach(conn);
    result
}

async fn read_loop(
    rd: &mut FrameReader<tokio::net::tcp::OwnedReadHalf>,
    session: &Arc<Session>,
    shared: &Arc<Shared>,
    thread: u16,
    conn: u64,
    tx: &mpsc::UnboundedSender<(u64, Bytes)>,
) -> Result<(), RemoteError> {
    loop {
        let frame = rd.next().await?;
        if !session.is_current(conn) {
            return Err(RemoteError::Protocol("a newer connection of the same session took over"));
        }
        match Message::decode_from_dpu(&frame)? {
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
    }
}

async fn write_loop(
    w: tokio::net::tcp::OwnedWriteHalf,
    mut rx: mpsc::UnboundedReceiver<(u64, Bytes)>,
) -> Result<(), RemoteError> {
    let mut w = BufWriter::with_capacity(256 << 10, w);
    while let Some((seq, body)) = rx.recv().await {
        let (mut seq, mut body) = (seq, body);
        loop {
            w.write_all(&reply_header(seq, body.len())).await?;
            w.write_all(&body).await?;
            match rx.try_recv() {
                Ok((s, b)) => (seq, body) = (s, b),
                Err(_) => break,
            }
        }
        w.flush().await?;
    }
    Ok(())
}
