//! nfsstat4 (RFC 8881 §15.1, RFC 7862, RFC 8276): every status a server may return; an
//! unknown number is an error, not a value.

use crate::error::{Error, Result};

wire_enum! {
    /// An NFSv4 status code.
    Status, Error::UnknownStatus;
    Ok = 0, Perm = 1, NoEnt = 2, Io = 5, NxIo = 6, Access = 13, Exist = 17, XDev = 18,
    NotDir = 20, IsDir = 21, Inval = 22, FBig = 27, NoSpc = 28, RoFs = 30, MLink = 31,
    NameTooLong = 63, NotEmpty = 66, DQuot = 69, Stale = 70,
    BadHandle = 10001, BadCookie = 10003, NotSupp = 10004, TooSmall = 10005,
    ServerFault = 10006, BadType = 10007, Delay = 10008, Same = 10009, Denied = 10010,
    Expired = 10011, Locked = 10012, Grace = 10013, FhExpired = 10014, ShareDenied = 10015,
    WrongSec = 10016, ClidInUse = 10017, Resource = 10018, Moved = 10019,
    NoFileHandle = 10020, MinorVersMismatch = 10021, StaleClientId = 10022,
    StaleStateId = 10023, OldStateId = 10024, BadStateId = 10025, BadSeqId = 10026,
    NotSame = 10027, LockRange = 10028, Symlink = 10029, RestoreFh = 10030,
    LeaseMoved = 10031, AttrNotSupp = 10032, NoGrace = 10033, ReclaimBad = 10034,
    ReclaimConflict = 10035, BadXdr = 10036, LocksHeld = 10037, OpenMode = 10038,
    BadOwner = 10039, BadChar = 10040, BadName = 10041, BadRange = 10042,
    LockNotSupp = 10043, OpIllegal = 10044, Deadlock = 10045, FileOpen = 10046,
    AdminRevoked = 10047, CbPathDown = 10048, BadIoMode = 10049, BadLayout = 10050,
    BadSessionDigest = 10051, BadSession = 10052, BadSlot = 10053, CompleteAlready = 10054,
    ConnNotBoundToSession = 10055, DelegAlreadyWanted = 10056, BackChanBusy = 10057,
    LayoutTryLater = 10058, LayoutUnavailable = 10059, NoMatchingLayout = 10060,
    RecallConflict = 10061, UnknownLayoutType = 10062, SeqMisordered = 10063,
    SequencePos = 10064, ReqTooBig = 10065, RepTooBig = 10066, RepTooBigToCache = 10067,
    RetryUncachedRep = 10068, UnsafeCompound = 10069, TooManyOps = 10070,
    OpNotInSession = 10071, HashAlgUnsupp = 10072, ClientIdBusy = 10074,
    PnfsIoHole = 10075, SeqFalseRetry = 10076, BadHighSlot = 10077, DeadSession = 10078,
    EncrAlgUnsupp = 10079, PnfsNoLayout = 10080, NotOnlyOp = 10081, WrongCred = 10082,
    WrongType = 10083, DirDelegUnavail = 10084, RejectDeleg = 10085,
    ReturnConflict = 10086, DelegRevoked = 10087, PartnerNotSupp = 10088,
    PartnerNoAuth = 10089, UnionNotSupp = 10090, OffloadDenied = 10091, WrongLfs = 10092,
    BadLabel = 10093, OffloadNoReqs = 10094, NoXattr = 10095, Xattr2Big = 10096,
}
