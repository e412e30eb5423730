//! Request scripts: a byte format for a sequence of raw requests, each with its own
//! segmentation and reply buffers. The fuzz target reads arbitrary bytes as a script, the
//! seed-corpus generator writes scripts of real requests, and tests replay them.
//!
//! A script is a series of records `[u8 shape][u16le len][len bytes of message]`; a short
//! trailing record takes what is left. `shape` seeds where the message is cut and how the
//! reply buffers are sized, so the fuzzer explores layouts without a separate input.

use crate::abi::{self, OutHeader};
use crate::device::Device;
use crate::operation::{encode_message, Layout, MessageHeader, Operation};
use crate::request::owned_request;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use zerocopy::FromBytes;

/// One record of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Seed of the segmentation and reply-buffer layout.
    pub shape: u8,
    /// The raw message.
    pub message: &'a [u8],
}

/// Splits a script into records.
pub fn records(mut input: &[u8]) -> Vec<Record<'_>> {
    let mut out = Vec::new();
    while let [shape, rest @ ..] = input {
        let (len, rest) = match rest {
            [a, b, rest @ ..] => (u16::from_le_bytes([*a, *b]) as usize, rest),
            _ => (rest.len(), &[][..]),
        };
        let len = len.min(rest.len());
        out.push(Record { shape: *shape, message: &rest[..len] });
        input = &rest[len..];
    }
    out
}

/// Appends a record to a script.
pub fn push_record(script: &mut Vec<u8>, shape: u8, message: &[u8]) {
    let len = message.len().min(u16::MAX as usize);
    script.push(shape);
    script.extend_from_slice(&(len as u16).to_le_bytes());
    script.extend_from_slice(&message[..len]);
}

/// The readable segments and reply-buffer sizes that `shape` selects for `message`.
/// Shape 0 is the Linux layout with generous reply buffers.
pub fn layout_for(shape: u8, message: &[u8]) -> (Vec<Vec<u8>>, Vec<usize>) {
    let n = message.len();
    if shape == 0 {
        let cut = n.min(40);
        return (vec![message[..cut].to_vec(), message[cut..].to_vec()], vec![16, 1 << 17]);
    }
    // A small xorshift stream derived from the shape picks cut points and reply sizes.
    let mut x = 0x9e37_79b9u32 ^ (shape as u32).wrapping_mul(0x0101_0101);
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x
    };
    let ncuts = (shape & 7) as usize;
    let mut cuts: Vec<usize> = (0..ncuts).map(|_| next() as usize % (n + 1)).collect();
    cuts.sort_unstable();
    let mut segs = Vec::new();
    let mut prev = 0;
    for c in cuts.into_iter().chain(std::iter::once(n)) {
        segs.push(message[prev..c].to_vec());
        prev = c;
    }
    let replies = match shape >> 6 {
        0 => vec![16, 1 << 17],
        1 => vec![next() as usize % 24, next() as usize % 4096],
        2 => vec![next() as usize % 200],
        _ => vec![1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 4096],
    };
    (segs, replies)
}

/// What a replay observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    /// Requests sent.
    pub sent: usize,
    /// Requests completed (must equal `sent` after the final reset).
    pub completed: usize,
    /// Completions that wrote a reply.
    pub replied: usize,
    /// Replies with a non-zero error.
    pub errors: usize,
}

/// A reply that breaks the protocol, found during a replay.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation(pub String);

/// Replays `script` against `device` (which should already be initialised, or the script
/// starts with INIT), then resets the device so parked requests are released. Checks that
/// every request completed exactly once and every reply is well-formed.
pub fn replay(device: &Device, script: &[u8]) -> Result<ReplayStats, Violation> {
    let completed = Arc::new(AtomicUsize::new(0));
    let problems: Arc<Mutex<Vec<String>>> = Arc::default();
    let replied = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let recs = records(script);
    for rec in &recs {
        let (segs, replies) = layout_for(rec.shape, rec.message);
        let capacity: usize = replies.iter().sum();
        let unique = abi::InHeader::read_from_prefix(rec.message).ok().map(|(h, _)| h.unique);
        let (completed, problems, replied, errors) =
            (completed.clone(), problems.clone(), replied.clone(), errors.clone());
        let req = owned_request(device.id(), segs, &replies, move |r| {
            completed.fetch_add(1, Ordering::SeqCst);
            let bad = |s: String| problems.lock().map(|mut p| p.push(s)).unwrap_or(());
            if r.written > capacity {
                bad(format!("wrote {} bytes into {capacity}", r.written));
            }
            if r.written > 0 {
                replied.fetch_add(1, Ordering::SeqCst);
                let bytes = r.bytes();
                match OutHeader::read_from_prefix(&bytes) {
                    Ok((h, _)) => {
                        if h.len as usize != r.written {
                            bad(format!("header len {} but {} written", h.len, r.written));
                        }
                        if h.error > 0 || h.error <= -4096 {
                            bad(format!("error field {}", h.error));
                        }
                        if h.error != 0 {
                            errors.fetch_add(1, Ordering::SeqCst);
                        }
                        if let Some(u) = unique {
                            if h.unique != u {
                                bad(format!("unique {} answered as {}", u, h.unique));
                            }
                        }
                    }
                    Err(_) => bad(format!("{} bytes written, no header", r.written)),
                }
            }
        });
        device.handle(req);
    }
    // Parked requests (a SETLKW waiting for a lock) are released when the session ends.
    device.reset();
    // Backends may complete from their own threads: wait a bounded time for stragglers.
    for _ in 0..2000 {
        if completed.load(Ordering::SeqCst) >= recs.len() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let stats = ReplayStats {
        sent: recs.len(),
        completed: completed.load(Ordering::SeqCst),
        replied: replied.load(Ordering::SeqCst),
        errors: errors.load(Ordering::SeqCst),
    };
    if let Some(p) = problems.lock().ok().and_then(|p| p.first().cloned()) {
        return Err(Violation(p));
    }
    if stats.completed != stats.sent {
        return Err(Violation(format!("{} of {} requests never completed", stats.sent - stats.completed, stats.sent)));
    }
    Ok(stats)
}

/// Builds a script from operations (Linux layout unless `shape` says otherwise).
pub struct ScriptBuilder {
    /// The script so far.
    pub bytes: Vec<u8>,
    unique: u64,
    layout: Layout,
}

impl Default for ScriptBuilder {
    fn default() -> Self {
        ScriptBuilder { bytes: Vec::new(), unique: 1, layout: Layout::default() }
    }
}

impl ScriptBuilder {
    /// Appends one request as root.
    pub fn push(&mut self, shape: u8, nodeid: u64, op: &Operation<'_>, payload: &[u8]) -> &mut Self {
        let h = MessageHeader { unique: self.unique, nodeid, uid: 0, gid: 0, pid: 1 };
        self.unique += 1;
        let msg = encode_message(h, op, payload, None, self.layout);
        push_record(&mut self.bytes, shape, &msg);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_tolerate_truncation() {
        let mut s = Vec::new();
        push_record(&mut s, 3, b"hello");
        push_record(&mut s, 0, b"");
        push_record(&mut s, 200, b"world!");
        let r = records(&s);
        assert_eq!(r.len(), 3);
        assert_eq!((r[0].shape, r[0].message), (3, &b"hello"[..]));
        assert_eq!((r[2].shape, r[2].message), (200, &b"world!"[..]));
        assert_eq!(records(&s[..s.len() - 2]).last().unwrap().message, b"worl");
        assert_eq!(records(&[7]), vec![Record { shape: 7, message: b"" }]);
    }

    #[test]
    fn layouts_cover_the_whole_message() {
        let msg: Vec<u8> = (0..200u8).collect();
        for shape in 0..=255u8 {
            let (segs, replies) = layout_for(shape, &msg);
            assert_eq!(segs.concat(), msg, "shape {shape}");
            assert!(!replies.is_empty());
        }
    }
}
