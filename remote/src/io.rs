//! Frames over a byte stream: a reader that buffers until a whole frame (bounded by
//! `MAX_FRAME`) is in, and small helpers to write messages.

use crate::RemoteError;
use bytes::{Buf, Bytes, BytesMut};
use dpfs_remote_wire::frame::{needed, split};
use dpfs_remote_wire::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Reads whole frames.
pub(crate) struct FrameReader<R> {
    r: R,
    buf: BytesMut,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    pub(crate) fn new(r: R) -> Self {
        FrameReader { r, buf: BytesMut::with_capacity(64 << 10) }
    }

    /// A whole frame body (kind first) already buffered, if any.
    pub(crate) fn buffered(&mut self) -> Result<Option<Bytes>, RemoteError> {
        match split(&self.buf)? {
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
            // `needed` is bounded by MAX_FRAME: a hostile length never sizes an allocation.
            self.buf.reserve(needed(&self.buf).max(16 << 10));
            if self.r.read_buf(&mut self.buf).await? == 0 {
                return Err(RemoteError::Closed);
            }
        }
    }
}

/// Encodes and writes one message (handshake and control traffic; not flushed).
pub(crate) async fn send<W: AsyncWrite + Unpin>(w: &mut W, m: &Message<'_>) -> Result<(), RemoteError> {
    let mut buf = Vec::with_capacity(128);
    m.encode(&mut buf);
    w.write_all(&buf).await?;
    Ok(())
}
