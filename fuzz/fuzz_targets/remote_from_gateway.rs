//! Bytes a gateway (or a man in the middle before the handshake fails) sends → frame
//! splitter → the forwarder's decoder (`Message::decode_from_gateway`). Must never panic or
//! allocate past the frame limit. Seeds: `cargo run -p dpfs-remote-wire --example
//! remote_fuzz_corpus`.
#![no_main]

use dpfs_remote_wire::corpus::decode_stream;
use dpfs_remote_wire::Message;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    decode_stream(data, |f| Message::decode_from_gateway(f).is_ok());
    let _ = Message::decode_from_gateway(data);
});
