//! Seed inputs for the fuzz targets: a realistic byte stream in each direction (the
//! handshake, then requests or replies), as `cargo run -p dpfs-remote-wire --example
//! remote_fuzz_corpus` writes them under `fuzz/corpus/`.

use crate::auth::{Nonce, Proof};
use crate::message::Message;
use crate::{RefuseReason, VERSION};

/// What a forwarder sends: Hello, Auth, requests (a LOOKUP-sized one, a WRITE-sized one),
/// a reset, an acknowledgement.
pub fn dpu_stream() -> Vec<u8> {
    let mut out = Vec::new();
    let lookup = [vec![48, 0, 0, 0, 1, 0, 0, 0], vec![0u8; 32], b"name\0\0\0\0".to_vec()].concat();
    let write = [vec![0u8; 80], vec![0xab; 4096]].concat();
    let msgs = [
        Message::Hello { version: VERSION, probe: false, resume: 0, nonce: Nonce([1; 32]), identity: "dpu:dpfs/0" },
        Message::Auth { proof: Proof([2; 32]) },
        Message::Request { seq: 1, ack: 1, capacity: 144, body: &lookup },
        Message::Request { seq: 2, ack: 1, capacity: 40, body: &write },
        Message::Reset { seq: 3, ack: 3 },
        Message::Ack { below: 4, seqs: Default::default() },
    ];
    for m in &msgs {
        m.encode(&mut out);
    }
    out
}

/// What a gateway sends: Challenge, Welcome, replies (an error, a READ's data), and a
/// Refused.
pub fn gateway_stream() -> Vec<u8> {
    let mut out = Vec::new();
    let error = [16u32.to_le_bytes(), (-2i32).to_le_bytes()].concat();
    let read = [vec![0u8; 16], vec![0x5a; 4096]].concat();
    let msgs = [
        Message::Challenge { version: VERSION, nonce: Nonce([3; 32]), proof: Proof([4; 32]) },
        Message::Welcome { session: 0x1234_5678, resumed: true },
        Message::Reply { seq: 1, body: &error },
        Message::Reply { seq: 2, body: &read },
        Message::Reply { seq: 3, body: &[] },
        Message::Refused { reason: RefuseReason::Auth, text: "authentication failed" },
    ];
    for m in &msgs {
        m.encode(&mut out);
    }
    out
}

/// Splits `stream` into frames and decodes each with `decode` until the bytes end or one
/// fails; returns how many decoded. The fuzz targets run exactly this.
pub fn decode_stream(stream: &[u8], decode: impl Fn(&[u8]) -> bool) -> usize {
    let mut rest = stream;
    let mut n = 0;
    while let Ok(Some((start, end))) = crate::frame::split(rest) {
        let Some(frame) = rest.get(start..end) else { break };
        if !decode(frame) {
            break;
        }
        n += 1;
        rest = rest.get(end..).unwrap_or_default();
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_decode_completely_on_their_side_only() {
        let dpu = |f: &[u8]| Message::decode_from_dpu(f).is_ok();
        let gw = |f: &[u8]| Message::decode_from_gateway(f).is_ok();
        assert_eq!(decode_stream(&dpu_stream(), dpu), 6);
        assert_eq!(decode_stream(&gateway_stream(), gw), 6);
        assert_eq!(decode_stream(&dpu_stream(), gw), 0);
        assert_eq!(decode_stream(&gateway_stream(), dpu), 0);
    }
}
