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

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_remote_wire::message::request_header;
    use dpfs_remote_wire::WireError;

    /// Many requests written back to back (as the network thread batches them), and the
    /// stream cut short in the middle of the last one.
    fn batch(n: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for seq in 1..=n {
            let body = vec![seq as u8; seq as usize * 7];
            out.extend_from_slice(&request_header(seq, 1, 4096, body.len()));
            out.extend_from_slice(&body);
        }
        out
    }

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
    }

    #[test]
    fn a_batch_of_frames_decodes_to_the_same_requests_and_a_cut_one_is_an_error() {
        let stream = batch(40);
        for cut in [0, 1, 5, 30] {
            let bytes = &stream[..stream.len() - cut];
            let mut r = FrameReader::new(bytes);
            r.authenticated();
            run(async {
                for seq in 1..=40u64 {
                    let f = match r.next().await {
                        Ok(f) => f,
                        Err(RemoteError::Closed) if cut > 0 && seq == 40 => return,
                        Err(e) => panic!("frame {seq} of a stream cut by {cut}: {e}"),
                    };
                    match Message::decode_from_dpu(&f).unwrap() {
                        Message::Request { seq: s, ack: 1, capacity: 4096, body } => {
                            assert_eq!(s, seq);
                            assert_eq!(body, vec![seq as u8; seq as usize * 7]);
                        }
                        m => panic!("not the request sent: {m:?}"),
                    }
                }
                assert!(matches!(r.next().await, Err(RemoteError::Closed)));
            });
        }
    }

    #[test]
    fn a_hostile_length_in_a_batch_is_refused_before_it_sizes_a_buffer() {
        let mut stream = batch(3);
        stream.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut r = FrameReader::new(&stream[..]);
        r.authenticated();
        run(async {
            for _ in 0..3 {
                r.next().await.unwrap();
            }
            assert!(matches!(r.next().await, Err(RemoteError::Wire(WireError::TooLong(_)))));
        });
    }
}
