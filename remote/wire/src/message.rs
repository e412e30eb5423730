//! Every message of the protocol, its decoder (one per direction, so each side accepts
//! only what its peer may send) and its encoder.
//!
//! Layout (all integers little-endian; `[n]` = n bytes; `str16` = `u16` length + UTF-8):
//!
//! | kind | message | fields after the kind byte | sent by |
//! |---|---|---|---|
//! | 1 | Hello | magic `[4]`, version `u16`, flags `u8` (bit 0 probe), resume `u64`, nonce `[32]`, identity `str16` | forwarder |
//! | 2 | Challenge | version `u16`, nonce `[32]`, proof `[32]` | gateway |
//! | 3 | Auth | proof `[32]` | forwarder |
//! | 4 | Welcome | session `u64`, resumed `u8` | gateway |
//! | 5 | Refused | reason `u8`, text `str16` | gateway |
//! | 6 | Request | seq `u64`, ack `u64`, capacity `u32`, FUSE request bytes (rest) | forwarder |
//! | 7 | Reply | seq `u64`, FUSE reply bytes (rest) | gateway |
//! | 8 | Reset | seq `u64`, ack `u64` | forwarder |
//! | 9 | Ack | below `u64`, count `u16`, count × seq `u64` (at most [`MAX_ACKS`]) | forwarder |
//!
//! `ack` / `below`: every sequence number under it has been answered to the guest (or
//! abandoned at its deadline), so the gateway may forget those replies. An Ack also lists
//! sequence numbers above `below` whose replies arrived, so one slow request (a lock
//! wait) does not keep every later reply cached.

use crate::auth::{Nonce, Proof, NONCE_LEN};
use crate::frame::FRAME_HEADER;
use crate::{WireError, MAGIC, MAX_IDENTITY, MAX_REPLY, MAX_REQUEST, MAX_TEXT};

const HELLO: u8 = 1;
const CHALLENGE: u8 = 2;
const AUTH: u8 = 3;
const WELCOME: u8 = 4;
const REFUSED: u8 = 5;
const REQUEST: u8 = 6;
const REPLY: u8 = 7;
const RESET: u8 = 8;
const ACK: u8 = 9;

/// Hello flag: only check that the gateway is reachable and the key matches; no session.
pub const FLAG_PROBE: u8 = 1;

/// Why a gateway refused a forwarder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// The peers speak different protocol versions.
    Version,
    /// The forwarder's proof did not match: another key.
    Auth,
    /// The gateway could not create the device's backend.
    Backend,
    /// Anything else (the text says what).
    Other(u8),
}

impl RefuseReason {
    fn code(self) -> u8 {
        match self {
            RefuseReason::Version => 1,
            RefuseReason::Auth => 2,
            RefuseReason::Backend => 3,
            RefuseReason::Other(c) => c,
        }
    }

    fn from_code(c: u8) -> RefuseReason {
        match c {
            1 => RefuseReason::Version,
            2 => RefuseReason::Auth,
            3 => RefuseReason::Backend,
            c => RefuseReason::Other(c),
        }
    }
}

/// One decoded message; byte fields borrow from the frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message<'a> {
    /// Forwarder → gateway: opens a connection for one device.
    Hello {
        /// Protocol version of the forwarder.
        version: u16,
        /// Probe only (start-up check): no session is created.
        probe: bool,
        /// Session to resume after a reconnect (0: a new one).
        resume: u64,
        /// The forwarder's challenge.
        nonce: Nonce,
        /// The forwarded device's identity (one gateway session per identity).
        identity: &'a str,
    },
    /// Gateway → forwarder: the gateway's challenge and its own proof.
    Challenge {
        /// Protocol version of the gateway.
        version: u16,
        /// The gateway's challenge.
        nonce: Nonce,
        /// HMAC proving the gateway holds the key.
        proof: Proof,
    },
    /// Forwarder → gateway: the forwarder's proof.
    Auth {
        /// HMAC proving the forwarder holds the key.
        proof: Proof,
    },
    /// Gateway → forwarder: accepted.
    Welcome {
        /// The session (resumed or new).
        session: u64,
        /// Whether the session asked for in `resume` still existed.
        resumed: bool,
    },
    /// Gateway → forwarder: refused; the connection closes.
    Refused {
        /// Why.
        reason: RefuseReason,
        /// A line for the log.
        text: &'a str,
    },
    /// Forwarder → gateway: one FUSE request, as the guest sent it.
    Request {
        /// Sequence number (per session, from 1).
        seq: u64,
        /// Every sequence number below this one is done with.
        ack: u64,
        /// Bytes the guest's writable descriptors hold.
        capacity: u32,
        /// The request (in-header first).
        body: &'a [u8],
    },
    /// Gateway → forwarder: the reply to `seq`, exactly the bytes to write (empty for
    /// requests that take no reply).
    Reply {
        /// The request's sequence number.
        seq: u64,
        /// Reply bytes (out-header first), at most the request's capacity.
        body: &'a [u8],
    },
    /// Forwarder → gateway: the guest reset the device; end its FUSE session.
    Reset {
        /// Sequence number (answered with an empty Reply).
        seq: u64,
        /// As in Request.
        ack: u64,
    },
    /// Forwarder → gateway: acknowledgements.
    Ack {
        /// Every sequence number below is done with.
        below: u64,
        /// Further sequence numbers whose replies arrived.
        seqs: SeqList<'a>,
    },
}

/// Most sequence numbers listed in one Ack.
pub const MAX_ACKS: usize = 4096;

/// A list of little-endian `u64` sequence numbers inside a frame (length checked).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct SeqList<'a>(&'a [u8]);

impl<'a> SeqList<'a> {
    /// The sequence numbers.
    pub fn iter(&self) -> impl Iterator<Item = u64> + 'a {
        self.0.chunks_exact(8).map(|c| u64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len() / 8
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Appends an Ack frame for `below` and up to [`MAX_ACKS`] of `seqs` (the caller sends the
/// rest in further frames).
pub fn encode_ack(out: &mut Vec<u8>, below: u64, seqs: &[u64]) {
    let seqs = seqs.get(..seqs.len().min(MAX_ACKS)).unwrap_or_default();
    let len = (1 + 8 + 2 + 8 * seqs.len()) as u32;
    out.extend_from_slice(&len.to_le_bytes());
    out.push(ACK);
    out.extend_from_slice(&below.to_le_bytes());
    out.extend_from_slice(&(seqs.len() as u16).to_le_bytes());
    for s in seqs {
        out.extend_from_slice(&s.to_le_bytes());
    }
}

/// Reads fields in order; every read is bounds-checked.
struct Rd<'a> {
    b: &'a [u8],
    what: &'static str,
}

impl<'a> Rd<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], WireError> {
        let (head, tail) = self.b.split_at_checked(n).ok_or(WireError::Malformed(self.what))?;
        self.b = tail;
        Ok(head)
    }
    fn array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let (head, tail) = self.b.split_first_chunk::<N>().ok_or(WireError::Malformed(self.what))?;
        self.b = tail;
        Ok(*head)
    }
    fn u8(&mut self) -> Result<u8, WireError> {
        Ok(self.array::<1>()?[0])
    }
    fn u16(&mut self) -> Result<u16, WireError> {
        Ok(u16::from_le_bytes(self.array()?))
    }
    fn u32(&mut self) -> Result<u32, WireError> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, WireError> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    fn str16(&mut self, max: usize, field: &'static str) -> Result<&'a str, WireError> {
        let n = self.u16()? as usize;
        if n > max {
            return Err(WireError::Field(field, n));
        }
        std::str::from_utf8(self.bytes(n)?).map_err(|_| WireError::Malformed(self.what))
    }
    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.b)
    }
    fn finish(self) -> Result<(), WireError> {
        if self.b.is_empty() {
            Ok(())
        } else {
            Err(WireError::Malformed(self.what))
        }
    }
}

impl<'a> Message<'a> {
    /// Decodes a frame body (kind first) sent by a forwarder.
    pub fn decode_from_dpu(frame: &'a [u8]) -> Result<Message<'a>, WireError> {
        match frame.first() {
            Some(&(HELLO | AUTH | REQUEST | RESET | ACK)) => Message::decode(frame),
            Some(&k) => Err(WireError::Kind(k)),
            None => Err(WireError::Empty),
        }
    }

    /// Decodes a frame body (kind first) sent by a gateway.
    pub fn decode_from_gateway(frame: &'a [u8]) -> Result<Message<'a>, WireError> {
        match frame.first() {
            Some(&(CHALLENGE | WELCOME | REFUSED | REPLY)) => Message::decode(frame),
            Some(&k) => Err(WireError::Kind(k)),
            None => Err(WireError::Empty),
        }
    }

    fn decode(frame: &'a [u8]) -> Result<Message<'a>, WireError> {
        let (&kind, b) = frame.split_first().ok_or(WireError::Empty)?;
        let mut r = Rd { b, what: kind_name(kind) };
        let m = match kind {
            HELLO => {
                if r.array::<4>()? != MAGIC {
                    return Err(WireError::Magic);
                }
                let version = r.u16()?;
                let flags = r.u8()?;
                let resume = r.u64()?;
                let nonce = Nonce(r.array::<NONCE_LEN>()?);
                let identity = r.str16(MAX_IDENTITY, "identity")?;
                Message::Hello { version, probe: flags & FLAG_PROBE != 0, resume, nonce, identity }
            }
            CHALLENGE => Message::Challenge { version: r.u16()?, nonce: Nonce(r.array()?), proof: Proof(r.array()?) },
            AUTH => Message::Auth { proof: Proof(r.array()?) },
            WELCOME => Message::Welcome { session: r.u64()?, resumed: r.u8()? != 0 },
            REFUSED => Message::Refused { reason: RefuseReason::from_code(r.u8()?), text: r.str16(MAX_TEXT, "text")? },
            REQUEST => {
                let (seq, ack, capacity) = (r.u64()?, r.u64()?, r.u32()?);
                if capacity as usize > MAX_REPLY {
                    return Err(WireError::Field("capacity", capacity as usize));
                }
                let body = r.rest();
                if body.len() > MAX_REQUEST {
                    return Err(WireError::Field("request", body.len()));
                }
                Message::Request { seq, ack, capacity, body }
            }
            REPLY => {
                let seq = r.u64()?;
                let body = r.rest();
                if body.len() > MAX_REPLY {
                    return Err(WireError::Field("reply", body.len()));
                }
                Message::Reply { seq, body }
            }
            RESET => Message::Reset { seq: r.u64()?, ack: r.u64()? },
            ACK => {
                let below = r.u64()?;
                let n = r.u16()? as usize;
                if n > MAX_ACKS {
                    return Err(WireError::Field("acknowledgements", n));
                }
                Message::Ack { below, seqs: SeqList(r.bytes(n * 8)?) }
            }
            k => return Err(WireError::Kind(k)),
        };
        r.finish()?;
        Ok(m)
    }

    /// Appends the whole frame (length prefix included) to `out`. Fields over their limits
    /// are the encoder's bug: identity and text are truncated to fit.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.extend_from_slice(&[0; FRAME_HEADER]);
        match *self {
            Message::Hello { version, probe, resume, nonce, identity } => {
                out.push(HELLO);
                out.extend_from_slice(&MAGIC);
                out.extend_from_slice(&version.to_le_bytes());
                out.push(if probe { FLAG_PROBE } else { 0 });
                out.extend_from_slice(&resume.to_le_bytes());
                out.extend_from_slice(&nonce.0);
                put_str16(out, identity, MAX_IDENTITY);
            }
            Message::Challenge { version, nonce, proof } => {
                out.push(CHALLENGE);
                out.extend_from_slice(&version.to_le_bytes());
                out.extend_from_slice(&nonce.0);
                out.extend_from_slice(&proof.0);
            }
            Message::Auth { proof } => {
                out.push(AUTH);
                out.extend_from_slice(&proof.0);
            }
            Message::Welcome { session, resumed } => {
                out.push(WELCOME);
                out.extend_from_slice(&session.to_le_bytes());
                out.push(u8::from(resumed));
            }
            Message::Refused { reason, text } => {
                out.push(REFUSED);
                out.push(reason.code());
                put_str16(out, text, MAX_TEXT);
            }
            Message::Request { seq, ack, capacity, body } => {
                out.extend_from_slice(&request_header(seq, ack, capacity, body.len())[FRAME_HEADER..]);
                out.extend_from_slice(body);
            }
            Message::Reply { seq, body } => {
                out.extend_from_slice(&reply_header(seq, body.len())[FRAME_HEADER..]);
                out.extend_from_slice(body);
            }
            Message::Reset { seq, ack } => {
                out.push(RESET);
                out.extend_from_slice(&seq.to_le_bytes());
                out.extend_from_slice(&ack.to_le_bytes());
            }
            Message::Ack { below, seqs } => {
                out.push(ACK);
                out.extend_from_slice(&below.to_le_bytes());
                out.extend_from_slice(&(seqs.len() as u16).to_le_bytes());
                out.extend_from_slice(seqs.0);
            }
        }
        let len = (out.len() - start - FRAME_HEADER) as u32;
        if let Some(prefix) = out.get_mut(start..start + FRAME_HEADER) {
            prefix.copy_from_slice(&len.to_le_bytes());
        }
    }
}

/// Bytes of a Request frame before its body.
pub const REQUEST_HEADER: usize = FRAME_HEADER + 1 + 8 + 8 + 4;
/// Bytes of a Reply frame before its body.
pub const REPLY_HEADER: usize = FRAME_HEADER + 1 + 8;

/// The start of a Request frame whose `body_len` bytes follow (written separately, so a
/// request kept for resending is never copied again).
pub fn request_header(seq: u64, ack: u64, capacity: u32, body_len: usize) -> [u8; REQUEST_HEADER] {
    let mut h = [0u8; REQUEST_HEADER];
    let len = (REQUEST_HEADER - FRAME_HEADER + body_len) as u32;
    let fields = [&len.to_le_bytes()[..], &[REQUEST], &seq.to_le_bytes(), &ack.to_le_bytes(), &capacity.to_le_bytes()];
    fill(&mut h, &fields);
    h
}

/// The start of a Reply frame whose `body_len` bytes follow.
pub fn reply_header(seq: u64, body_len: usize) -> [u8; REPLY_HEADER] {
    let mut h = [0u8; REPLY_HEADER];
    let len = (REPLY_HEADER - FRAME_HEADER + body_len) as u32;
    fill(&mut h, &[&len.to_le_bytes()[..], &[REPLY], &seq.to_le_bytes()]);
    h
}

fn fill(out: &mut [u8], fields: &[&[u8]]) {
    let mut pos = 0;
    for f in fields {
        if let Some(dst) = out.get_mut(pos..pos + f.len()) {
            dst.copy_from_slice(f);
        }
        pos += f.len();
    }
}

fn put_str16(out: &mut Vec<u8>, s: &str, max: usize) {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let s = s.get(..end).unwrap_or_default();
    out.extend_from_slice(&(s.len() as u16).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        HELLO => "Hello",
        CHALLENGE => "Challenge",
        AUTH => "Auth",
        WELCOME => "Welcome",
        REFUSED => "Refused",
        REQUEST => "Request",
        REPLY => "Reply",
        RESET => "Reset",
        ACK => "Ack",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::split;
    use proptest::prelude::*;

    fn round_trip(m: &Message<'_>, from_dpu: bool) {
        let mut buf = Vec::new();
        m.encode(&mut buf);
        let (s, e) = split(&buf).unwrap().unwrap();
        assert_eq!(e, buf.len());
        let got =
            if from_dpu { Message::decode_from_dpu(&buf[s..e]) } else { Message::decode_from_gateway(&buf[s..e]) };
        assert_eq!(got.as_ref(), Ok(m));
        // The other side refuses it.
        let other =
            if from_dpu { Message::decode_from_gateway(&buf[s..e]) } else { Message::decode_from_dpu(&buf[s..e]) };
        assert!(matches!(other, Err(WireError::Kind(_))), "{other:?}");
        // Every truncation of a fixed-size message is an error (a Request or Reply body
        // may legitimately be shorter).
        if !matches!(m, Message::Request { .. } | Message::Reply { .. }) {
            for cut in s..e {
                let r = if from_dpu {
                    Message::decode_from_dpu(&buf[s..cut])
                } else {
                    Message::decode_from_gateway(&buf[s..cut])
                };
                assert!(r.is_err(), "{cut}: {r:?}");
            }
        }
    }

    #[test]
    fn every_message_round_trips_one_way_only() {
        let n = Nonce([7; 32]);
        let p = Proof([9; 32]);
        round_trip(&Message::Hello { version: 1, probe: true, resume: 42, nonce: n, identity: "host:dpfs/0" }, true);
        round_trip(&Message::Auth { proof: p }, true);
        round_trip(&Message::Request { seq: 1, ack: 1, capacity: 4096, body: b"abc" }, true);
        round_trip(&Message::Reset { seq: 5, ack: 3 }, true);
        round_trip(&Message::Ack { below: 77, seqs: SeqList::default() }, true);
        let mut buf = Vec::new();
        encode_ack(&mut buf, 5, &[9, 11]);
        match Message::decode_from_dpu(&buf[4..]).unwrap() {
            Message::Ack { below, seqs } => assert_eq!((below, seqs.iter().collect::<Vec<_>>()), (5, vec![9, 11])),
            m => panic!("{m:?}"),
        }
        round_trip(&Message::decode_from_dpu(&buf[4..]).unwrap(), true);
        round_trip(&Message::Challenge { version: 1, nonce: n, proof: p }, false);
        round_trip(&Message::Welcome { session: 3, resumed: true }, false);
        round_trip(&Message::Refused { reason: RefuseReason::Auth, text: "wrong key" }, false);
        round_trip(&Message::Reply { seq: 9, body: &[1, 2, 3, 4] }, false);
    }

    #[test]
    fn limits_are_checked_before_use() {
        let mut buf = Vec::new();
        Message::Request { seq: 1, ack: 1, capacity: (MAX_REPLY + 1) as u32, body: b"" }.encode(&mut buf);
        assert!(matches!(Message::decode_from_dpu(&buf[4..]), Err(WireError::Field("capacity", _))));
        let mut hello = vec![HELLO];
        hello.extend_from_slice(&MAGIC);
        hello.extend_from_slice(&[1, 0, 0]);
        hello.extend_from_slice(&[0; 8 + 32]);
        hello.extend_from_slice(&u16::MAX.to_le_bytes());
        assert_eq!(Message::decode_from_dpu(&hello), Err(WireError::Field("identity", 65535)));
        hello[1] = b'X';
        assert_eq!(Message::decode_from_dpu(&hello), Err(WireError::Magic));
        assert_eq!(Message::decode_from_dpu(&[]), Err(WireError::Empty));
        assert_eq!(Message::decode_from_dpu(&[ACK, 1, 2]), Err(WireError::Malformed("Ack")));
        assert_eq!(Message::decode_from_dpu(&[ACK, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]), Err(WireError::Malformed("Ack")));
        // A count over the limit is refused before the list is looked at.
        let mut ack = vec![ACK, 0, 0, 0, 0, 0, 0, 0, 0];
        ack.extend_from_slice(&((MAX_ACKS + 1) as u16).to_le_bytes());
        assert_eq!(Message::decode_from_dpu(&ack), Err(WireError::Field("acknowledgements", MAX_ACKS + 1)));
        // A count that promises more than the frame holds.
        assert_eq!(
            Message::decode_from_dpu(&[ACK, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1, 2, 3, 4, 5, 6, 7, 8]),
            Err(WireError::Malformed("Ack"))
        );
    }

    #[test]
    fn long_strings_are_truncated_on_a_char_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let mut buf = Vec::new();
        Message::Refused { reason: RefuseReason::Other(9), text: &long }.encode(&mut buf);
        match Message::decode_from_gateway(&buf[4..]).unwrap() {
            Message::Refused { reason, text } => {
                assert_eq!(reason, RefuseReason::Other(9));
                assert!(text.len() <= MAX_TEXT && text.chars().all(|c| c == 'é'));
            }
            m => panic!("{m:?}"),
        }
    }

    proptest! {
        #[test]
        fn decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = Message::decode_from_dpu(&bytes);
            let _ = Message::decode_from_gateway(&bytes);
            let _ = split(&bytes);
        }
    }
}
