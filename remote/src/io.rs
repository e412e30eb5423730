//! Frames over a byte stream: a reader that buffers until a whole frame (bounded by
//! `MAX_FRAME`) is in, and small helpers to write messages.

use crate::RemoteError;
use bytes::{Buf, Bytes, BytesMut};
use dpfs_remote_wire::frame::{needed, split_limited, MAX_HANDSHAKE_FRAME};
use dpfs_remote_wire::Message;
use dpfs_remote_wire::MAX_FRAME;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads whole frames.
pub(crate) struct FrameReader<R> {
    r: R,
    buf: BytesMut,
    limit: usize,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// A reader that accepts only handshake-sized frames until [`Self::authenticated`].
    pub(crate) fn new(r: R) -> Self {
        FrameReader { r, buf: BytesMut::with_capacity(64 << 10), limit: MAX_HANDSHAKE_FRAME }
    }

    /// The peer proved the key: accept whole requests and replies from now on.
    pub(crate) fn authenticated(&mut self) {
        self.limit = MAX_FRAME;
    }

    /// A whole frame body (kind first) already buffered, if any.
    pub(crate) fn buffered(&mut self) -> Result<Option<Bytes>, RemoteError> {
        match split_limited(&self.buf, self.limit)? {
            Some((start, end)) => {
                let mut f = self.buf.split_to(end);
                f.advance(start);
                Ok(Some(f.freeze()))
            }
            None => Ok(None),
        }
    }

    /// The next frame body; [`RemoteError::Closed`] at end of stream.
    pub(crate) async fn next(&mut self) -> Result<Bytes, RemoteError> {
        loop {
            if let Some(f) = self.buffered()? {
                return Ok(f);
            }
            self.fill().await?;
        }
    }

    /// Reads what the peer sent (at least one byte); [`RemoteError::Closed`] at end of
    /// stream. Cancel safe: dropped before it resolves, it has read nothing.
    pub(crate) async fn fill(&mut self) -> Result<(), RemoteError> {
        // `split_limited` refused lengths over the limit before `needed` is asked: a
        // hostile one never sizes an allocation.
        self.buf.reserve(needed(&self.buf).max(16 << 10));
        if self.r.read_buf(&mut self.buf).await? == 0 {
            return Err(RemoteError::Closed);
        }
        Ok(())
    }
}

/// Encodes and writes one message (handshake and control traffic; not flushed).
pub(crate) async fn send<W: AsyncWrite + Unpin>(w: &mut W, m: &Message<'_>) -> Result<(), RemoteError> {
    let mut buf = Vec::with_capacity(128);
    m.encode(&mut buf);
    w.write_all(&buf).await?;
    Ok(())
}
