//! Attributes the client sets (SETATTR, and CREATE's and OPEN's createattrs): size, mode,
//! owner, group, and access/modify times to a client time or the server's time (settime4).

use crate::ops::attr::{num, Bitmap, Owner, Time};
use crate::xdr::Encoder;

/// settime4: a time to set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SetTime {
    /// SET_TO_SERVER_TIME4: the server's clock (`utimensat(UTIME_NOW)`).
    ServerTime,
    /// SET_TO_CLIENT_TIME4: this time.
    Client(Time),
}

/// Attributes to set; `None` leaves one unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewAttrs {
    /// New size (truncate or extend).
    pub size: Option<u64>,
    /// New permission bits (12 bits).
    pub mode: Option<u32>,
    /// New owner.
    pub owner: Option<Owner>,
    /// New group.
    pub owner_group: Option<Owner>,
    /// New access time.
    pub atime: Option<SetTime>,
    /// New modification time.
    pub mtime: Option<SetTime>,
}

impl NewAttrs {
    /// Only a mode (CREATE, MKDIR).
    pub fn mode(mode: u32) -> Self {
        Self { mode: Some(mode & 0o7777), ..Self::default() }
    }

    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// Encodes the fattr4, attributes in ascending order.
    pub fn encode(&self, e: &mut Encoder) {
        let mut bits = Vec::new();
        let mut v = Encoder::new();
        if let Some(s) = self.size {
            bits.push(num::SIZE);
            v.u64(s);
        }
        if let Some(m) = self.mode {
            bits.push(num::MODE);
            v.u32(m);
        }
        if let Some(o) = &self.owner {
            bits.push(num::OWNER);
            o.encode(&mut v);
        }
        if let Some(g) = &self.owner_group {
            bits.push(num::OWNER_GROUP);
            g.encode(&mut v);
        }
        for (bit, t) in [(num::TIME_ACCESS_SET, self.atime), (num::TIME_MODIFY_SET, self.mtime)] {
            match t {
                None => continue,
                Some(SetTime::ServerTime) => v.u32(0),
                Some(SetTime::Client(t)) => {
                    v.u32(1);
                    t.encode(&mut v);
                    &mut v
                }
            };
            bits.push(bit);
        }
        Bitmap::of(&bits).encode(e);
        e.opaque(v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xdr::Decoder;

    #[test]
    fn times_and_owners_encode_in_attribute_order() {
        let a = NewAttrs {
            size: Some(5),
            owner: Some(Owner::Id(7)),
            atime: Some(SetTime::ServerTime),
            mtime: Some(SetTime::Client(Time { seconds: 3, nseconds: 4 })),
            ..NewAttrs::default()
        };
        let mut e = Encoder::new();
        a.encode(&mut e);
        let mut d = Decoder::new(e.as_bytes());
        let mask = Bitmap::decode(&mut d).unwrap();
        assert_eq!(mask.iter().collect::<Vec<_>>(), vec![4, 36, 48, 54]);
        let mut v = Decoder::new(d.opaque("attrs", 1024).unwrap());
        assert_eq!(v.u64().unwrap(), 5);
        assert_eq!(v.string("owner", 10).unwrap(), "7");
        assert_eq!(v.u32().unwrap(), 0);
        assert_eq!((v.u32().unwrap(), v.i64().unwrap(), v.u32().unwrap()), (1, 3, 4));
        assert!(v.finish().is_ok() && d.finish().is_ok());
        assert!(NewAttrs::default().is_empty() && !NewAttrs::mode(0o644).is_empty());
    }
}
