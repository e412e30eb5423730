//! Bytes → RPC reply header → NFSv4.1 COMPOUND reply decoder of dpfs-nfs4.
//!
//! The input is a COMPOUND reply body as a hostile server would send it (seeds:
//! `cargo run -p dpfs-nfs4 --example fuzz_corpus`). Decoding must give a value or an error,
//! never a panic or an unbounded allocation; a decoded reply is then matched against the op
//! lists the client sends. The same bytes are also parsed as a whole RPC reply record.
#![no_main]

use dpfs_nfs4::compound::CompoundReply;
use dpfs_nfs4::ops::OpCode;
use libfuzzer_sys::fuzz_target;

const SENT: &[&[OpCode]] = &[
    &[OpCode::ExchangeId],
    &[OpCode::CreateSession],
    &[OpCode::Sequence, OpCode::ReclaimComplete],
    &[OpCode::Sequence, OpCode::PutRootFh, OpCode::Lookup, OpCode::GetFh, OpCode::GetAttr],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::GetAttr],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Open, OpCode::GetFh, OpCode::GetAttr],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Read],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Write, OpCode::Commit],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::ReadDir],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Create, OpCode::GetFh, OpCode::GetAttr],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::SaveFh, OpCode::PutFh, OpCode::Rename],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::SaveFh, OpCode::PutFh, OpCode::Link, OpCode::RestoreFh, OpCode::GetAttr],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Remove, OpCode::ReadLink],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::SetAttr, OpCode::Access, OpCode::Close],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::Lock, OpCode::LockU],
    &[OpCode::Sequence, OpCode::PutFh, OpCode::LockT],
    &[OpCode::BindConnToSession],
    &[OpCode::DestroySession],
    &[OpCode::DestroyClientId],
];

fuzz_target!(|data: &[u8]| {
    if let Ok(reply) = CompoundReply::decode(data) {
        for asked in SENT {
            let _ = reply.clone().expect(asked);
        }
    }
    if let Ok((_xid, body)) = dpfs_nfs4::rpc::parse_reply(data) {
        let _ = CompoundReply::decode(body.rest());
    }
});
