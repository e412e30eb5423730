//! The frame envelope: `u32` little-endian length of what follows, then a `u8` kind and
//! the message's fields. [`split`] checks the length against [`MAX_FRAME`] before a reader
//! reserves a byte for it.

use crate::WireError;

/// Bytes before a frame's kind: its `u32` length.
pub const FRAME_HEADER: usize = 4;

/// Largest frame body (kind + fields) accepted: a whole request or reply plus headers.
pub const MAX_FRAME: usize = crate::MAX_REQUEST + 64;

/// Finds the next frame in `buf`: `Ok(Some((start, end)))` when `buf[start..end]` holds a
/// whole frame body (kind first) and `end` bytes can be consumed; `Ok(None)` when more
/// bytes are needed (at most [`MAX_FRAME`] + 4 in total); an error when the announced
/// length is 0 or over the limit.
pub fn split(buf: &[u8]) -> Result<Option<(usize, usize)>, WireError> {
    split_limited(buf, MAX_FRAME)
}

/// Largest frame before the peer is authenticated (the handshake's messages are small, so
/// an unauthenticated peer never makes us buffer more than this).
pub const MAX_HANDSHAKE_FRAME: usize = 1024;

/// As [`split`], with a lower limit (e.g. [`MAX_HANDSHAKE_FRAME`]).
pub fn split_limited(buf: &[u8], limit: usize) -> Result<Option<(usize, usize)>, WireError> {
    let Some(len) = buf.first_chunk::<FRAME_HEADER>() else { return Ok(None) };
    let len = u32::from_le_bytes(*len) as usize;
    if len == 0 {
        return Err(WireError::Empty);
    }
    if len > limit.min(MAX_FRAME) {
        return Err(WireError::TooLong(len));
    }
    let end = FRAME_HEADER + len;
    Ok((buf.len() >= end).then_some((FRAME_HEADER, end)))
}

/// Bytes still missing for the frame that starts `buf` (to size a read), or 0.
pub fn needed(buf: &[u8]) -> usize {
    match buf.first_chunk::<FRAME_HEADER>() {
        None => FRAME_HEADER - buf.len(),
        Some(len) => {
            let len = (u32::from_le_bytes(*len) as usize).min(MAX_FRAME);
            (FRAME_HEADER + len).saturating_sub(buf.len())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_waits_for_whole_frames_and_rejects_bad_lengths() {
        assert_eq!(split(&[]), Ok(None));
        assert_eq!(split(&[3, 0, 0]), Ok(None));
        assert_eq!(split(&[3, 0, 0, 0, 9, 9]), Ok(None));
        assert_eq!(needed(&[3, 0, 0, 0, 9, 9]), 1);
        assert_eq!(split(&[3, 0, 0, 0, 9, 9, 9, 1]), Ok(Some((4, 7))));
        assert_eq!(split(&[0, 0, 0, 0]), Err(WireError::Empty));
        let big = ((MAX_FRAME + 1) as u32).to_le_bytes();
        assert_eq!(split(&big), Err(WireError::TooLong(MAX_FRAME + 1)));
        assert_eq!(split(&u32::MAX.to_le_bytes()), Err(WireError::TooLong(u32::MAX as usize)));
        assert_eq!(split_limited(&1025u32.to_le_bytes(), MAX_HANDSHAKE_FRAME), Err(WireError::TooLong(1025)));
    }
}
