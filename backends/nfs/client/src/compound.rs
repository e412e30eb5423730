//! NFSv4.1 COMPOUND (RFC 8881 §16.2): a request of ops under one tag and minor version, and
//! its reply, decoded in full into typed results before anyone looks at them.

use crate::error::{Error, Result};
use crate::ops::{
    Attrs, Bitmap, ChangeInfo, CopyRes, CreateRes, CreateSessionRes, ExchangeIdRes, FileHandle, ListXattrsRes, Op,
    OpCode, OpReply, OpResult, OpenRes, ReadDirRes, ReadRes, SeekRes, SequenceRes, SessionId, StateId, Status,
    Verifier, WriteRes,
};
use crate::xdr::{Decoder, Encoder};

/// The NFS program number.
pub const NFS_PROGRAM: u32 = 100_003;
/// The NFS program version of NFSv4.x.
pub const NFS_V4: u32 = 4;
/// The COMPOUND procedure.
pub const PROC_COMPOUND: u32 = 1;
/// The minor version this client speaks by default.
pub const MINOR_VERSION: u32 = 1;
/// The highest minor version this client speaks (NFSv4.2: SEEK, ALLOCATE, DEALLOCATE, COPY).
pub const MAX_MINOR_VERSION: u32 = 2;
/// Most results accepted in one reply.
pub const MAX_OPS: usize = 64;
/// Most bytes of a reply tag accepted.
const MAX_TAG: usize = 1024;

/// Encodes COMPOUND4args: an empty tag, minor version `minor` and `ops`.
pub fn encode_compound(minor: u32, ops: &[Op]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.string("").u32(minor).u32(ops.len() as u32);
    for op in ops {
        op.encode(&mut e);
    }
    e.into_bytes()
}

/// Encodes COMPOUND4args of `first` followed by `ops` (a SEQUENCE and the caller's ops,
/// without moving them into one vector).
pub fn encode_sequenced(minor: u32, first: &Op, ops: &[Op]) -> Vec<u8> {
    let mut e = Encoder::new();
    e.string("").u32(minor).u32(ops.len() as u32 + 1);
    first.encode(&mut e);
    for op in ops {
        op.encode(&mut e);
    }
    e.into_bytes()
}

/// COMPOUND4res, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompoundReply {
    /// The compound's status: that of the last op evaluated.
    pub status: Status,
    /// One result per op evaluated, in order.
    pub results: Vec<OpResult>,
}

impl CompoundReply {
    /// Decodes a COMPOUND reply body; every byte must belong to it.
    pub fn decode(body: &[u8]) -> Result<Self> {
        let mut d = Decoder::new(body);
        let status = Status::from_u32(d.u32()?)?;
        d.string("tag", MAX_TAG)?;
        // Every result is at least an op number and a status.
        let count = d.array_len("results", MAX_OPS, 8)?;
        let results = (0..count).map(|_| OpResult::decode(&mut d)).collect::<Result<Vec<_>>>()?;
        d.finish()?;
        let last = results.last().map_or(Status::Ok, |r| r.status);
        if last != status {
            return Err(Error::Protocol("compound status differs from its last op's"));
        }
        Ok(Self { status, results })
    }

    /// The results of `asked` ops in order: the first failed op is its error, a result for
    /// another op than asked is an error, and so are missing results.
    pub fn expect(self, asked: &[OpCode]) -> Result<Replies> {
        if self.results.len() > asked.len() {
            return Err(Error::Protocol("more results than ops"));
        }
        let mut out = Vec::with_capacity(self.results.len());
        for (r, &expected) in self.results.into_iter().zip(asked) {
            // A server that does not know an op (an NFSv4.2 op sent to a 4.1-only server)
            // answers OP_ILLEGAL in its place: the op's error, not a broken reply.
            if r.op == OpCode::Illegal && r.status == Status::OpIllegal {
                return Err(Error::Nfs { op: expected, status: Status::OpIllegal });
            }
            if r.op != expected {
                return Err(Error::UnexpectedOp { expected, got: Some(r.op) });
            }
            match r.reply {
                Some(reply) => out.push(reply),
                None => match r.denied {
                    Some(d) => return Err(Error::LockDenied(Box::new(d))),
                    None => return Err(Error::Nfs { op: r.op, status: r.status }),
                },
            }
        }
        if out.len() != asked.len() {
            return Err(Error::Protocol("fewer results than ops, all OK"));
        }
        Ok(Replies(out.into_iter()))
    }
}

/// The successful results of a compound, taken in order by type.
#[derive(Debug)]
pub struct Replies(std::vec::IntoIter<OpReply>);

macro_rules! take {
    ($($(#[$doc:meta])* $fn:ident => $variant:ident($ty:ty);)*) => {$(
        $(#[$doc])*
        pub fn $fn(&mut self) -> Result<$ty> {
            match self.0.next() {
                Some(OpReply::$variant(v)) => Ok(v),
                _ => Err(Error::UnexpectedOp { expected: OpCode::$variant, got: None }),
            }
        }
    )*};
}

impl Replies {
    take! {
        /// The next result, an EXCHANGE_ID's.
        exchange_id => ExchangeId(ExchangeIdRes);
        /// The next result, a CREATE_SESSION's.
        create_session => CreateSession(CreateSessionRes);
        /// The next result, a BIND_CONN_TO_SESSION's.
        bind_conn_to_session => BindConnToSession(SessionId);
        /// The next result, a SEQUENCE's.
        sequence => Sequence(SequenceRes);
        /// The next result, a GETFH's.
        getfh => GetFh(FileHandle);
        /// The next result, a GETATTR's.
        getattr => GetAttr(Attrs);
        /// The next result, a SETATTR's: the attributes set.
        setattr => SetAttr(Bitmap);
        /// The next result, an ACCESS's: (supported, granted).
        access => Access((u32, u32));
        /// The next result, a READDIR's.
        readdir => ReadDir(ReadDirRes);
        /// The next result, an OPEN's.
        open => Open(OpenRes);
        /// The next result, a CLOSE's.
        close => Close(StateId);
        /// The next result, a READ's.
        read => Read(ReadRes);
        /// The next result, a WRITE's.
        write => Write(WriteRes);
        /// The next result, a COMMIT's: the write verifier.
        commit => Commit(Verifier);
        /// The next result, a CREATE's.
        create => Create(CreateRes);
        /// The next result, a REMOVE's.
        remove => Remove(ChangeInfo);
        /// The next result, a RENAME's.
        rename => Rename((ChangeInfo, ChangeInfo));
        /// The next result, a LINK's.
        link => Link(ChangeInfo);
        /// The next result, a LOCK's: the lock stateid.
        lock => Lock(StateId);
        /// The next result, a LOCKU's: the lock stateid.
        locku => LockU(StateId);
        /// The next result, a READLINK's: the target.
        readlink => ReadLink(Vec<u8>);
        /// The next result, a SEEK's.
        seek => Seek(SeekRes);
        /// The next result, a COPY's.
        copy => Copy(CopyRes);
        /// The next result, a GETXATTR's: the value.
        getxattr => GetXattr(Vec<u8>);
        /// The next result, a LISTXATTRS': a page of names.
        listxattrs => ListXattrs(ListXattrsRes);
    }

    /// Skips the next result (one with no value: PUTFH, LOOKUP, ...).
    pub fn skip(&mut self) -> Result<()> {
        self.0.next().map(|_| ()).ok_or(Error::Protocol("missing result"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::{Bitmap, FileType, Owner};
    use proptest::prelude::*;

    /// A reply to SEQUENCE + PUTROOTFH + GETFH + GETATTR, as a server would send it.
    pub(crate) fn sample_reply() -> Vec<u8> {
        let mut e = Encoder::new();
        e.u32(0).string("").u32(4);
        e.u32(53).u32(0).opaque_fixed(&[7; 16]).u32(1).u32(0).u32(63).u32(63).u32(0);
        e.u32(24).u32(0);
        e.u32(10).u32(0).opaque(&[1, 2, 3, 4, 5]);
        e.u32(9).u32(0);
        Attrs {
            file_type: Some(FileType::Directory),
            fileid: Some(2),
            mode: Some(0o755),
            owner: Some(Owner::Id(0)),
            ..Attrs::default()
        }
        .encode(&mut e);
        e.into_bytes()
    }

    const ASKED: [OpCode; 4] = [OpCode::Sequence, OpCode::PutRootFh, OpCode::GetFh, OpCode::GetAttr];

    #[test]
    fn a_reply_decodes_into_typed_results() {
        let mut r = CompoundReply::decode(&sample_reply()).unwrap().expect(&ASKED).unwrap();
        assert_eq!(r.sequence().unwrap().sequenceid, 1);
        r.skip().unwrap();
        assert_eq!(r.getfh().unwrap().as_bytes(), &[1, 2, 3, 4, 5]);
        assert_eq!(r.getattr().unwrap().file_type, Some(FileType::Directory));
    }

    #[test]
    fn a_failed_op_is_its_error() {
        let mut e = Encoder::new();
        e.u32(2).string("").u32(2);
        e.u32(24).u32(0);
        e.u32(15).u32(2); // LOOKUP: NFS4ERR_NOENT
        let reply = CompoundReply::decode(e.as_bytes()).unwrap();
        assert!(matches!(
            reply.expect(&[OpCode::PutRootFh, OpCode::Lookup, OpCode::GetFh]),
            Err(Error::Nfs { op: OpCode::Lookup, status: Status::NoEnt })
        ));
    }

    #[test]
    fn unknown_ops_statuses_and_misorders_are_errors() {
        let mut e = Encoder::new();
        e.u32(0).string("").u32(1).u32(99).u32(0);
        assert!(matches!(CompoundReply::decode(e.as_bytes()), Err(Error::UnknownOp(99))));
        let mut e = Encoder::new();
        e.u32(0).string("").u32(1).u32(24).u32(12345);
        assert!(matches!(CompoundReply::decode(e.as_bytes()), Err(Error::UnknownStatus(12345))));
        let mut e = Encoder::new();
        e.u32(0).string("").u32(1).u32(24).u32(0);
        let reply = CompoundReply::decode(e.as_bytes()).unwrap();
        assert!(matches!(reply.expect(&[OpCode::GetFh]), Err(Error::UnexpectedOp { .. })));
        let mut e = Encoder::new();
        e.u32(0).string("").u32(0xffff_ffff);
        assert!(CompoundReply::decode(e.as_bytes()).is_err());
    }

    #[test]
    fn every_truncation_is_an_error() {
        let bytes = sample_reply();
        for cut in 0..bytes.len() {
            assert!(CompoundReply::decode(bytes.get(..cut).unwrap()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn requests_encode_ops_in_order() {
        let req = encode_compound(
            MINOR_VERSION,
            &[Op::PutRootFh, Op::Lookup(b"export".to_vec()), Op::GetAttr(Bitmap::basic())],
        );
        let mut d = Decoder::new(&req);
        assert_eq!(d.string("tag", 0).unwrap(), "");
        assert_eq!((d.u32().unwrap(), d.u32().unwrap(), d.u32().unwrap()), (1, 3, 24));
        assert_eq!((d.u32().unwrap(), d.string("n", 100).unwrap()), (15, "export"));
    }

    proptest! {
        #[test]
        fn mutated_replies_never_panic(flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)) {
            let mut bytes = sample_reply();
            for (at, v) in flips {
                let i = at.index(bytes.len());
                if let Some(b) = bytes.get_mut(i) {
                    *b = v;
                }
            }
            if let Ok(r) = CompoundReply::decode(&bytes) {
                let _ = r.expect(&ASKED);
            }
        }

        #[test]
        fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = CompoundReply::decode(&bytes);
        }
    }
}
