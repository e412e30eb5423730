//! A device's connection to the gateway: connect (with backoff), authenticate, resume the
//! session and resend what is unanswered, then pump requests out and replies in until the
//! connection breaks; and, beside it, the deadline sweeper.

use super::link::{Link, Outgoing};
use super::ForwarderConfig;
use crate::handshake::{self, Welcome};
use crate::io::{send, FrameReader};
use crate::RemoteError;
use dpfs_remote_wire::message::{encode_ack, request_header, MAX_ACKS};
use dpfs_remote_wire::Message;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often acknowledgements go out at the latest (so the gateway can drop replies).
const ACK_EVERY: Duration = Duration::from_millis(50);
/// Acknowledgements sent at once when this many replies arrived since the last ones.
const ACK_BATCH: usize = 256;

/// Connects, authenticates and opens (or resumes) the session.
pub(crate) async fn connect(
    cfg: &ForwarderConfig,
    identity: &str,
    resume: u64,
    probe: bool,
) -> Result<(FrameReader<tokio::net::tcp::OwnedReadHalf>, tokio::net::tcp::OwnedWriteHalf, Welcome), RemoteError> {
    let attempt = async {
        let mut last = None;
        for addr in &cfg.addrs {
            match TcpStream::connect(addr).await {
                Ok(s) => {
                    s.set_nodelay(true)?;
                    let (r, mut w) = s.into_split();
                    let mut r = FrameReader::new(r);
                    let welcome = handshake::client(&mut r, &mut w, &cfg.key, identity, resume, probe).await?;
                    return Ok((r, w, welcome));
                }
                Err(e) => last = Some(e),
            }
        }
        Err(RemoteError::Io(last.unwrap_or_else(|| std::io::Error::other("no gateway address"))))
    };
    tokio::time::timeout(cfg.connect_timeout, attempt).await.map_err(|_| RemoteError::Timeout("connecting"))?
}

/// Runs the device's link until the task is aborted.
pub(crate) async fn run(link: Arc<Link>, cfg: Arc<ForwarderConfig>, mut rx: mpsc::UnboundedReceiver<Outgoing>) {
    let mut session = 0u64;
    let mut backoff = BACKOFF_MIN;
    let mut last_error = String::new();
    loop {
        match connect(&cfg, &link.identity, session, false).await {
            Ok((rd, wr, welcome)) => {
                backoff = BACKOFF_MIN;
                last_error.clear();
                if session != 0 && !welcome.resumed {
                    let n = link.fail_all(libc::EIO);
                    tracing::warn!(identity = %link.identity, failed = n,
                        "the gateway lost the session (restarted?): requests in flight failed with EIO; the guest must mount again");
                } else if session != 0 {
                    tracing::info!(identity = %link.identity, "reconnected to the gateway; session resumed");
                } else {
                    tracing::info!(identity = %link.identity, session = welcome.session, "connected to the gateway");
                }
                session = welcome.session;
                let e = pump(&link, rd, wr, &mut rx).await;
                link.direct.disconnect();
                tracing::warn!(identity = %link.identity, error = %e, "connection to the gateway lost; reconnecting");
            }
            Err(e) => {
                let msg = e.to_string();
                if msg != last_error {
                    if e.is_refusal() {
                        tracing::error!(identity = %link.identity, error = %e, "the gateway refused us; retrying");
                    } else {
                        tracing::warn!(identity = %link.identity, error = %e, "cannot reach the gateway; retrying");
                    }
                    last_error = msg;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Resends what is pending, then moves requests out and replies in; returns why it
/// stopped.
async fn pump(
    link: &Link,
    mut rd: FrameReader<tokio::net::tcp::OwnedReadHalf>,
    wr: tokio::net::tcp::OwnedWriteHalf,
    rx: &mut mpsc::UnboundedReceiver<Outgoing>,
) -> RemoteError {
    // The pollers' handle on the same socket (non-blocking, like the original).
    let direct = wr.as_ref().as_fd().try_clone_to_owned().map(std::net::TcpStream::from);
    let mut w = BufWriter::with_capacity(256 << 10, wr);
    let (resend, covered) = link.resend_list();
    let writer = async {
        // Resend under the writer's turn, then let pollers write directly.
        let _ = link.direct.acquire().await;
        let mut acked = link.ack_below();
        for o in &resend {
            write(&mut w, o, acked).await?;
        }
        w.flush().await?;
        drop(resend);
        match direct {
            Ok(sock) => link.direct.connect(sock),
            Err(e) => tracing::warn!(error = %e, "no direct socket for the pollers; every request is queued"),
        }
        link.direct.done();
        let mut tick = tokio::time::interval(ACK_EVERY);
        let mut batch = Vec::new();
        loop {
            let mut ack_due = false;
            tokio::select! {
                o = rx.recv() => {
                    let Some(o) = o else { return Err(RemoteError::Closed) };
                    batch.push(o);
                    while let Ok(o) = rx.try_recv() {
                        batch.push(o);
                    }
                }
                _ = tick.tick() => ack_due = true,
                _ = link.direct.kicked() => {}
            }
            // Pollers write while we wait for our turn; a frame one of them could only
            // partly write comes first.
            if let Some(rest) = link.direct.acquire().await {
                w.write_all(&rest).await?;
            }
            link.direct.taken(batch.len());
            acked = link.ack_below();
            // Entries below `covered` went out with the resend; entries no longer pending
            // were answered (or timed out) already.
            batch.retain(|o| o.seq >= covered);
            link.retain_pending(&mut batch);
            for o in batch.drain(..) {
                write(&mut w, &o, acked).await?;
            }
            if ack_due || link.unacked() >= ACK_BATCH {
                send_acks(&mut w, link, &mut acked).await?;
            }
            w.flush().await?;
            link.direct.done();
        }
    };
    let reader = async {
        loop {
            let frame = rd.next().await?;
            match Message::decode_from_gateway(&frame)? {
                Message::Reply { seq, body } => link.on_reply(seq, body),
                _ => return Err(RemoteError::Protocol("expected Reply")),
            }
        }
    };
    let r: Result<(), RemoteError> = tokio::select! {
        r = writer => r,
        r = reader => r,
    };
    r.err().unwrap_or(RemoteError::Closed)
}

/// Sends what was received since the last acknowledgement (nothing if nothing changed).
async fn send_acks<W: AsyncWrite + Unpin>(w: &mut W, link: &Link, acked: &mut u64) -> Result<(), RemoteError> {
    let Some((below, seqs)) = link.take_acks(*acked) else { return Ok(()) };
    *acked = below;
    let mut buf = Vec::new();
    let mut chunks = seqs.chunks(MAX_ACKS);
    encode_ack(&mut buf, below, chunks.next().unwrap_or_default());
    for c in chunks {
        encode_ack(&mut buf, below, c);
    }
    w.write_all(&buf).await?;
    Ok(())
}

async fn write<W: AsyncWrite + Unpin>(w: &mut W, o: &Outgoing, ack: u64) -> Result<(), RemoteError> {
    match &o.body {
        Some(body) => {
            w.write_all(&request_header(o.seq, ack, o.capacity, body.len())).await?;
            w.write_all(body).await?;
        }
        None => send(w, &Message::Reset { seq: o.seq, ack }).await?,
    }
    Ok(())
}

/// Answers requests past their deadline, so a dead or stalled gateway never holds a
/// virtqueue entry longer than the deadline (plus one sweep interval).
pub(crate) async fn sweep(link: Arc<Link>, deadline: Duration) {
    let every = (deadline / 4).clamp(Duration::from_millis(10), Duration::from_millis(250));
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let n = link.expire(Instant::now());
        if n > 0 {
            tracing::warn!(identity = %link.identity, expired = n, ?deadline, "no reply from the gateway in time: answered EIO");
        }
    }
}
