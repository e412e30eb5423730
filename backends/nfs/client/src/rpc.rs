//! ONC RPC (RFC 5531) messages: the call header with AUTH_SYS credentials, and the reply
//! header, whose every non-success outcome is an [`Error`] value.

use crate::error::{Error, Result};
use crate::xdr::{Decoder, Encoder};

/// The RPC protocol version this client speaks.
pub const RPC_VERSION: u32 = 2;
const CALL: u32 = 0;
const REPLY: u32 = 1;
const MSG_ACCEPTED: u32 = 0;
const MSG_DENIED: u32 = 1;
const AUTH_NONE: u32 = 0;
const AUTH_SYS: u32 = 1;
/// Most bytes of an opaque_auth body (RFC 5531 §8.2).
const MAX_AUTH_BYTES: usize = 400;
/// Most supplementary groups AUTH_SYS carries.
pub const MAX_GROUPS: usize = 16;
/// Most bytes of the AUTH_SYS machine name.
const MAX_MACHINE_NAME: usize = 255;

/// The identity a call runs as: AUTH_SYS's uid, gid and supplementary groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Creds {
    uid: u32,
    gid: u32,
    groups: Vec<u32>,
    machine_name: String,
}

impl Creds {
    /// Credentials of `uid`/`gid` with supplementary `groups` (at most [`MAX_GROUPS`]).
    pub fn new(uid: u32, gid: u32, groups: &[u32]) -> Result<Self> {
        if groups.len() > MAX_GROUPS {
            return Err(Error::TooManyGroups(groups.len()));
        }
        Ok(Self { uid, gid, groups: groups.to_vec(), machine_name: "dpfs".to_owned() })
    }

    /// Root with no supplementary groups.
    pub fn root() -> Self {
        Self { uid: 0, gid: 0, groups: Vec::new(), machine_name: "dpfs".to_owned() }
    }

    /// The user id.
    pub fn uid(&self) -> u32 {
        self.uid
    }

    /// The group id.
    pub fn gid(&self) -> u32 {
        self.gid
    }

    /// The supplementary groups.
    pub fn groups(&self) -> &[u32] {
        &self.groups
    }

    /// Encodes the AUTH_SYS opaque_auth (flavor and body).
    fn encode(&self, e: &mut Encoder) {
        let mut body = Encoder::new();
        body.u32(0) // stamp
            .string(self.machine_name.get(..MAX_MACHINE_NAME).unwrap_or(&self.machine_name))
            .u32(self.uid)
            .u32(self.gid)
            .u32(self.groups.len() as u32);
        for g in &self.groups {
            body.u32(*g);
        }
        e.u32(AUTH_SYS).opaque(body.as_bytes());
    }

    /// Decodes an AUTH_SYS body (for tests and for servers' view of a call).
    pub fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let _stamp = d.u32()?;
        let machine_name = d.string("machine name", MAX_MACHINE_NAME)?.to_owned();
        let uid = d.u32()?;
        let gid = d.u32()?;
        let count = d.array_len("groups", MAX_GROUPS, 4)?;
        let groups = (0..count).map(|_| d.u32()).collect::<Result<Vec<_>>>()?;
        Ok(Self { uid, gid, groups, machine_name })
    }
}

/// The fixed part of a call: which procedure of which program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallHeader {
    /// Transaction id, echoed by the reply.
    pub xid: u32,
    /// Program number (100003 for NFS).
    pub prog: u32,
    /// Program version.
    pub vers: u32,
    /// Procedure number.
    pub proc: u32,
}

impl CallHeader {
    /// Encodes the call header with `creds` and an AUTH_NONE verifier.
    pub fn encode(&self, creds: &Creds, e: &mut Encoder) {
        e.u32(self.xid).u32(CALL).u32(RPC_VERSION).u32(self.prog).u32(self.vers).u32(self.proc);
        creds.encode(e);
        e.u32(AUTH_NONE).opaque(&[]);
    }

    /// Decodes a call header and its AUTH_SYS credentials (what a server reads).
    pub fn decode(d: &mut Decoder<'_>) -> Result<(Self, Creds)> {
        let xid = d.u32()?;
        expect(d.u32()?, CALL, "message type")?;
        expect(d.u32()?, RPC_VERSION, "rpc version")?;
        let (prog, vers, proc) = (d.u32()?, d.u32()?, d.u32()?);
        expect(d.u32()?, AUTH_SYS, "credential flavor")?;
        let body = d.opaque("credential", MAX_AUTH_BYTES)?;
        let mut bd = Decoder::new(body);
        let creds = Creds::decode(&mut bd)?;
        bd.finish()?;
        let _verf_flavor = d.u32()?;
        d.opaque("verifier", MAX_AUTH_BYTES)?;
        Ok((Self { xid, prog, vers, proc }, creds))
    }
}

fn expect(value: u32, want: u32, what: &'static str) -> Result<()> {
    if value == want {
        Ok(())
    } else {
        Err(Error::BadValue { what, value })
    }
}

/// The xid of a reply record, so a connection can route it before parsing the rest.
pub fn reply_xid(record: &[u8]) -> Result<u32> {
    Decoder::new(record).u32()
}

/// Parses a reply header; on MSG_ACCEPTED/SUCCESS returns the decoder positioned at the
/// procedure's results, every other outcome is its error.
pub fn parse_reply<'a>(record: &'a [u8]) -> Result<(u32, Decoder<'a>)> {
    let mut d = Decoder::new(record);
    let xid = d.u32()?;
    expect(d.u32()?, REPLY, "message type")?;
    match d.u32()? {
        MSG_ACCEPTED => {
            let _flavor = d.u32()?;
            d.opaque("verifier", MAX_AUTH_BYTES)?;
            match d.u32()? {
                0 => Ok((xid, d)),
                1 => Err(Error::ProgUnavail),
                2 => Err(Error::ProgMismatch { low: d.u32()?, high: d.u32()? }),
                3 => Err(Error::ProcUnavail),
                4 => Err(Error::GarbageArgs),
                5 => Err(Error::SystemErr),
                value => Err(Error::BadValue { what: "accept_stat", value }),
            }
        }
        MSG_DENIED => match d.u32()? {
            0 => Err(Error::RpcMismatch { low: d.u32()?, high: d.u32()? }),
            1 => Err(Error::AuthError(d.u32()?)),
            value => Err(Error::BadValue { what: "reject_stat", value }),
        },
        value => Err(Error::BadValue { what: "reply_stat", value }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reply(words: &[u32]) -> Vec<u8> {
        let mut e = Encoder::new();
        for w in words {
            e.u32(*w);
        }
        e.into_bytes()
    }

    #[test]
    fn accepted_success_leaves_the_results() {
        let r = reply(&[7, REPLY, MSG_ACCEPTED, AUTH_NONE, 0, 0, 42]);
        let (xid, mut d) = parse_reply(&r).unwrap();
        assert_eq!((xid, d.u32().unwrap()), (7, 42));
        assert_eq!(reply_xid(&r).unwrap(), 7);
    }

    #[test]
    fn every_failure_is_an_error() {
        let acc = |stat: &[u32]| [&[1, REPLY, MSG_ACCEPTED, AUTH_NONE, 0][..], stat].concat();
        assert!(matches!(parse_reply(&reply(&acc(&[1]))), Err(Error::ProgUnavail)));
        assert!(matches!(parse_reply(&reply(&acc(&[2, 4, 4]))), Err(Error::ProgMismatch { low: 4, high: 4 })));
        assert!(matches!(parse_reply(&reply(&acc(&[3]))), Err(Error::ProcUnavail)));
        assert!(matches!(parse_reply(&reply(&acc(&[4]))), Err(Error::GarbageArgs)));
        assert!(matches!(parse_reply(&reply(&acc(&[5]))), Err(Error::SystemErr)));
        assert!(matches!(parse_reply(&reply(&acc(&[9]))), Err(Error::BadValue { .. })));
        assert!(matches!(
            parse_reply(&reply(&[1, REPLY, MSG_DENIED, 0, 2, 2])),
            Err(Error::RpcMismatch { low: 2, high: 2 })
        ));
        assert!(matches!(parse_reply(&reply(&[1, REPLY, MSG_DENIED, 1, 5])), Err(Error::AuthError(5))));
        assert!(matches!(parse_reply(&reply(&[1, CALL])), Err(Error::BadValue { .. })));
        assert!(matches!(parse_reply(&reply(&[1, REPLY, 2])), Err(Error::BadValue { .. })));
    }

    #[test]
    fn seventeen_groups_are_refused() {
        assert!(matches!(Creds::new(1, 1, &[0; 17]), Err(Error::TooManyGroups(17))));
    }

    proptest! {
        #[test]
        fn call_header_round_trips(xid: u32, prog: u32, vers: u32, proc: u32, uid: u32, gid: u32,
                                   groups in proptest::collection::vec(any::<u32>(), 0..=MAX_GROUPS)) {
            let creds = Creds::new(uid, gid, &groups).unwrap();
            let h = CallHeader { xid, prog, vers, proc };
            let mut e = Encoder::new();
            h.encode(&creds, &mut e);
            let bytes = e.into_bytes();
            let mut d = Decoder::new(&bytes);
            prop_assert_eq!(CallHeader::decode(&mut d).unwrap(), (h, creds));
            prop_assert!(d.finish().is_ok());
            for cut in 0..bytes.len() {
                prop_assert!(CallHeader::decode(&mut Decoder::new(bytes.get(..cut).unwrap())).is_err());
            }
        }

        #[test]
        fn garbage_replies_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = parse_reply(&bytes);
        }
    }
}
