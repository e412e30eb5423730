//! How a client error becomes the guest's errno: NFS statuses map to their POSIX meaning,
//! and a lost, silent or lying server is EIO.

use dpfs_core::Errno;
use dpfs_nfs4::{Error, Status};

/// The errno of an NFS status.
pub fn status_errno(s: Status) -> Errno {
    use Status::*;
    Errno(match s {
        Ok => 0,
        Perm => libc::EPERM,
        NoEnt => libc::ENOENT,
        Io => libc::EIO,
        NxIo => libc::ENXIO,
        Access | WrongCred => libc::EACCES,
        Exist => libc::EEXIST,
        XDev => libc::EXDEV,
        NotDir => libc::ENOTDIR,
        IsDir => libc::EISDIR,
        Inval | BadType | WrongType | BadName | BadChar | BadOwner | BadRange | BadXdr => libc::EINVAL,
        FBig => libc::EFBIG,
        NoSpc => libc::ENOSPC,
        RoFs => libc::EROFS,
        MLink => libc::EMLINK,
        NameTooLong => libc::ENAMETOOLONG,
        NotEmpty => libc::ENOTEMPTY,
        DQuot => libc::EDQUOT,
        Stale | FhExpired | BadHandle => libc::ESTALE,
        NotSupp | AttrNotSupp | UnionNotSupp => libc::EOPNOTSUPP,
        TooSmall => libc::ERANGE,
        Symlink => libc::ELOOP,
        Delay | Grace | Locked | Denied => libc::EAGAIN,
        ShareDenied | FileOpen => libc::EBUSY,
        OpenMode => libc::EBADF,
        Deadlock => libc::EDEADLK,
        NoXattr => libc::ENODATA,
        Xattr2Big => libc::E2BIG,
        _ => libc::EIO,
    })
}

/// The errno of a failed call.
pub fn errno(e: &Error) -> Errno {
    match e {
        Error::Nfs { status, .. } => status_errno(*status),
        other => {
            tracing::warn!(error = %other, "NFS call failed");
            Errno::EIO
        }
    }
}

/// Whether the call may succeed if sent again a little later (the server asked for it).
pub fn retryable(e: &Error) -> bool {
    matches!(e, Error::Nfs { status: Status::Delay | Status::Grace, .. })
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpfs_nfs4::ops::OpCode;

    #[test]
    fn statuses_map_to_posix() {
        let e = |status| errno(&Error::Nfs { op: OpCode::Lookup, status }).0;
        assert_eq!(e(Status::NoEnt), libc::ENOENT);
        assert_eq!(e(Status::NotEmpty), libc::ENOTEMPTY);
        assert_eq!(e(Status::Stale), libc::ESTALE);
        assert_eq!(e(Status::BadSession), libc::EIO);
        assert_eq!(errno(&Error::Timeout).0, libc::EIO);
        assert!(retryable(&Error::Nfs { op: OpCode::Open, status: Status::Delay }));
        assert!(!retryable(&Error::ConnectionClosed));
    }
}
