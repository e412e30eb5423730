//! The client id and session ops: EXCHANGE_ID, CREATE_SESSION, SEQUENCE, RECLAIM_COMPLETE,
//! DESTROY_SESSION and DESTROY_CLIENTID (RFC 8881 §18.35–18.51).

use crate::error::{Error, Result};
use crate::ops::attr::Bitmap;
use crate::xdr::{Decoder, Encoder};

/// Most bytes of the owner, scope and implementation strings accepted (NFS4_OPAQUE_LIMIT).
const OPAQUE_LIMIT: usize = 1024;
/// A session id (sessionid4).
pub type SessionId = [u8; 16];

/// EXCHANGE_ID's arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdArgs {
    /// The client's boot verifier: a new one tells the server the client restarted.
    pub verifier: [u8; 8],
    /// The client owner id, unique per client instance (at most 1024 bytes).
    pub owner_id: Vec<u8>,
    /// EXCHGID4_FLAG_* the client asks for.
    pub flags: u32,
}

impl ExchangeIdArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.opaque_fixed(&self.verifier).opaque(&self.owner_id).u32(self.flags);
        e.u32(0); // state_protect4_a: SP4_NONE
        e.u32(0); // eia_client_impl_id<1>: empty
    }
}

/// EXCHANGE_ID's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExchangeIdRes {
    /// The client id.
    pub clientid: u64,
    /// The sequence id CREATE_SESSION must carry.
    pub sequenceid: u32,
    /// EXCHGID4_FLAG_* the server grants.
    pub flags: u32,
    /// server_owner4's minor id.
    pub server_minor_id: u64,
    /// server_owner4's major id (equal ones can trunk sessions).
    pub server_major_id: Vec<u8>,
    /// The server scope.
    pub server_scope: Vec<u8>,
}

impl ExchangeIdRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let clientid = d.u64()?;
        let sequenceid = d.u32()?;
        let flags = d.u32()?;
        match d.u32()? {
            0 => {}
            1 => {
                // SP4_MACH_CRED: the ops the server enforces and allows.
                Bitmap::decode(d)?;
                Bitmap::decode(d)?;
            }
            value => return Err(Error::BadValue { what: "state_protect_how4", value }),
        }
        let server_minor_id = d.u64()?;
        let server_major_id = d.opaque("so_major_id", OPAQUE_LIMIT)?.to_vec();
        let server_scope = d.opaque("server scope", OPAQUE_LIMIT)?.to_vec();
        // eir_server_impl_id<1>: domain, name and date, read and dropped.
        for _ in 0..d.array_len("server impl id", 1, 20)? {
            d.string("nii_domain", OPAQUE_LIMIT)?;
            d.string("nii_name", OPAQUE_LIMIT)?;
            d.i64()?;
            d.u32()?;
        }
        Ok(Self { clientid, sequenceid, flags, server_minor_id, server_major_id, server_scope })
    }
}

/// channel_attrs4: one direction's limits, proposed by the client and negotiated down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChannelAttrs {
    /// Header padding (0).
    pub header_pad: u32,
    /// Largest request (bytes).
    pub max_request: u32,
    /// Largest response (bytes).
    pub max_response: u32,
    /// Largest response the server caches for replay.
    pub max_response_cached: u32,
    /// Most ops in one compound.
    pub max_ops: u32,
    /// Slots: requests in flight.
    pub max_requests: u32,
}

impl ChannelAttrs {
    fn encode(&self, e: &mut Encoder) {
        e.u32(self.header_pad)
            .u32(self.max_request)
            .u32(self.max_response)
            .u32(self.max_response_cached)
            .u32(self.max_ops)
            .u32(self.max_requests)
            .u32(0); // ca_rdma_ird<1>: empty
    }

    fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        let a = Self {
            header_pad: d.u32()?,
            max_request: d.u32()?,
            max_response: d.u32()?,
            max_response_cached: d.u32()?,
            max_ops: d.u32()?,
            max_requests: d.u32()?,
        };
        for _ in 0..d.array_len("ca_rdma_ird", 1, 4)? {
            d.u32()?;
        }
        Ok(a)
    }
}

/// CREATE_SESSION's arguments (no back channel: flags 0, AUTH_NONE callback security).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionArgs {
    /// From EXCHANGE_ID.
    pub clientid: u64,
    /// From EXCHANGE_ID.
    pub sequence: u32,
    /// CREATE_SESSION4_FLAG_*.
    pub flags: u32,
    /// The fore channel the client proposes.
    pub fore: ChannelAttrs,
    /// The back channel the client proposes.
    pub back: ChannelAttrs,
    /// The callback program number.
    pub cb_program: u32,
}

impl CreateSessionArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.u64(self.clientid).u32(self.sequence).u32(self.flags);
        self.fore.encode(e);
        self.back.encode(e);
        e.u32(self.cb_program);
        e.u32(1).u32(0); // csa_sec_parms: one entry, AUTH_NONE
    }
}

/// CREATE_SESSION's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateSessionRes {
    /// The new session.
    pub session: SessionId,
    /// The sequence echoed.
    pub sequence: u32,
    /// Flags granted.
    pub flags: u32,
    /// The fore channel as the server accepted it.
    pub fore: ChannelAttrs,
    /// The back channel as the server accepted it.
    pub back: ChannelAttrs,
}

impl CreateSessionRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self {
            session: d.opaque_array()?,
            sequence: d.u32()?,
            flags: d.u32()?,
            fore: ChannelAttrs::decode(d)?,
            back: ChannelAttrs::decode(d)?,
        })
    }
}

/// SEQUENCE's arguments: which slot of which session, at which sequence id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceArgs {
    /// The session.
    pub session: SessionId,
    /// The slot's sequence id for this request.
    pub sequenceid: u32,
    /// The slot.
    pub slotid: u32,
    /// The highest slot the client has in use.
    pub highest_slotid: u32,
    /// Whether the server should cache the reply.
    pub cachethis: bool,
}

impl SequenceArgs {
    pub(crate) fn encode(&self, e: &mut Encoder) {
        e.opaque_fixed(&self.session)
            .u32(self.sequenceid)
            .u32(self.slotid)
            .u32(self.highest_slotid)
            .bool(self.cachethis);
    }
}

/// SEQUENCE's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SequenceRes {
    /// The session.
    pub session: SessionId,
    /// The sequence id echoed.
    pub sequenceid: u32,
    /// The slot echoed.
    pub slotid: u32,
    /// The highest slot the server will accept now.
    pub highest_slotid: u32,
    /// The highest slot the server wants the client to use.
    pub target_highest_slotid: u32,
    /// SEQ4_STATUS_* flags (lease, state, callback path events).
    pub status_flags: u32,
}

impl SequenceRes {
    pub(crate) fn decode(d: &mut Decoder<'_>) -> Result<Self> {
        Ok(Self {
            session: d.opaque_array()?,
            sequenceid: d.u32()?,
            slotid: d.u32()?,
            highest_slotid: d.u32()?,
            target_highest_slotid: d.u32()?,
            status_flags: d.u32()?,
        })
    }
}
