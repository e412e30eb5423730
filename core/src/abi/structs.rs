//! Fixed-size FUSE structs (protocol 7.45), laid out exactly as on the wire.
#![allow(missing_docs)] // field names are the protocol's own

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! wire {
    ($($(#[$m:meta])* pub struct $name:ident { $(pub $f:ident : $t:ty),* $(,)? })*) => {
        $(
            $(#[$m])*
            #[repr(C)]
            #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
            pub struct $name { $(pub $f: $t),* }
        )*
    };
}

wire! {
    /// Header of every request.
    pub struct InHeader {
        pub len: u32, pub opcode: u32, pub unique: u64, pub nodeid: u64,
        pub uid: u32, pub gid: u32, pub pid: u32,
        pub total_extlen: u16, pub padding: u16,
    }
    /// Header of every reply.
    pub struct OutHeader { pub len: u32, pub error: i32, pub unique: u64 }
    /// Inode attributes.
    pub struct Attr {
        pub ino: u64, pub size: u64, pub blocks: u64,
        pub atime: u64, pub mtime: u64, pub ctime: u64,
        pub atimensec: u32, pub mtimensec: u32, pub ctimensec: u32,
        pub mode: u32, pub nlink: u32, pub uid: u32, pub gid: u32, pub rdev: u32,
        pub blksize: u32, pub flags: u32,
    }
    pub struct SxTime { pub tv_sec: i64, pub tv_nsec: u32, pub reserved: i32 }
    pub struct Statx {
        pub mask: u32, pub blksize: u32, pub attributes: u64,
        pub nlink: u32, pub uid: u32, pub gid: u32, pub mode: u16, pub spare0: u16,
        pub ino: u64, pub size: u64, pub blocks: u64, pub attributes_mask: u64,
        pub atime: SxTime, pub btime: SxTime, pub ctime: SxTime, pub mtime: SxTime,
        pub rdev_major: u32, pub rdev_minor: u32, pub dev_major: u32, pub dev_minor: u32,
        pub spare2: [u64; 14],
    }
    pub struct Kstatfs {
        pub blocks: u64, pub bfree: u64, pub bavail: u64, pub files: u64, pub ffree: u64,
        pub bsize: u32, pub namelen: u32, pub frsize: u32, pub padding: u32, pub spare: [u32; 6],
    }
    pub struct FileLock { pub start: u64, pub end: u64, pub typ: u32, pub pid: u32 }
    pub struct EntryOut {
        pub nodeid: u64, pub generation: u64, pub entry_valid: u64, pub attr_valid: u64,
        pub entry_valid_nsec: u32, pub attr_valid_nsec: u32, pub attr: Attr,
    }
    pub struct ForgetIn { pub nlookup: u64 }
    pub struct ForgetOne { pub nodeid: u64, pub nlookup: u64 }
    pub struct BatchForgetIn { pub count: u32, pub dummy: u32 }
    pub struct GetattrIn { pub getattr_flags: u32, pub dummy: u32, pub fh: u64 }
    pub struct AttrOut { pub attr_valid: u64, pub attr_valid_nsec: u32, pub dummy: u32, pub attr: Attr }
    pub struct StatxIn {
        pub getattr_flags: u32, pub reserved: u32, pub fh: u64, pub sx_flags: u32, pub sx_mask: u32,
    }
    pub struct StatxOut {
        pub attr_valid: u64, pub attr_valid_nsec: u32, pub flags: u32, pub spare: [u64; 2],
        pub stat: Statx,
    }
    pub struct MknodIn { pub mode: u32, pub rdev: u32, pub umask: u32, pub padding: u32 }
    pub struct MkdirIn { pub mode: u32, pub umask: u32 }
    pub struct RenameIn { pub newdir: u64 }
    pub struct Rename2In { pub newdir: u64, pub flags: u32, pub padding: u32 }
    pub struct LinkIn { pub oldnodeid: u64 }
    pub struct SetattrIn {
        pub valid: u32, pub padding: u32, pub fh: u64, pub size: u64, pub lock_owner: u64,
        pub atime: u64, pub mtime: u64, pub ctime: u64,
        pub atimensec: u32, pub mtimensec: u32, pub ctimensec: u32, pub mode: u32,
        pub unused4: u32, pub uid: u32, pub gid: u32, pub unused5: u32,
    }
    pub struct OpenIn { pub flags: u32, pub open_flags: u32 }
    pub struct CreateIn { pub flags: u32, pub mode: u32, pub umask: u32, pub open_flags: u32 }
    pub struct OpenOut { pub fh: u64, pub open_flags: u32, pub backing_id: i32 }
    pub struct ReleaseIn { pub fh: u64, pub flags: u32, pub release_flags: u32, pub lock_owner: u64 }
    pub struct FlushIn { pub fh: u64, pub unused: u32, pub padding: u32, pub lock_owner: u64 }
    pub struct ReadIn {
        pub fh: u64, pub offset: u64, pub size: u32, pub read_flags: u32,
        pub lock_owner: u64, pub flags: u32, pub padding: u32,
    }
    pub struct WriteIn {
        pub fh: u64, pub offset: u64, pub size: u32, pub write_flags: u32,
        pub lock_owner: u64, pub flags: u32, pub padding: u32,
    }
    pub struct WriteOut { pub size: u32, pub padding: u32 }
    pub struct StatfsOut { pub st: Kstatfs }
    pub struct FsyncIn { pub fh: u64, pub fsync_flags: u32, pub padding: u32 }
    pub struct SetxattrIn { pub size: u32, pub flags: u32, pub setxattr_flags: u32, pub padding: u32 }
    pub struct GetxattrIn { pub size: u32, pub padding: u32 }
    pub struct GetxattrOut { pub size: u32, pub padding: u32 }
    pub struct LkIn { pub fh: u64, pub owner: u64, pub lk: FileLock, pub lk_flags: u32, pub padding: u32 }
    pub struct LkOut { pub lk: FileLock }
    pub struct AccessIn { pub mask: u32, pub padding: u32 }
    pub struct InitIn {
        pub major: u32, pub minor: u32, pub max_readahead: u32, pub flags: u32,
        pub flags2: u32, pub unused: [u32; 11],
    }
    pub struct InitOut {
        pub major: u32, pub minor: u32, pub max_readahead: u32, pub flags: u32,
        pub max_background: u16, pub congestion_threshold: u16, pub max_write: u32,
        pub time_gran: u32, pub max_pages: u16, pub map_alignment: u16, pub flags2: u32,
        pub max_stack_depth: u32, pub request_timeout: u16, pub unused: [u16; 11],
    }
    pub struct InterruptIn { pub unique: u64 }
    pub struct BmapIn { pub block: u64, pub blocksize: u32, pub padding: u32 }
    pub struct BmapOut { pub block: u64 }
    pub struct IoctlIn {
        pub fh: u64, pub flags: u32, pub cmd: u32, pub arg: u64, pub in_size: u32, pub out_size: u32,
    }
    pub struct IoctlOut { pub result: i32, pub flags: u32, pub in_iovs: u32, pub out_iovs: u32 }
    pub struct PollIn { pub fh: u64, pub kh: u64, pub flags: u32, pub events: u32 }
    pub struct PollOut { pub revents: u32, pub padding: u32 }
    pub struct FallocateIn { pub fh: u64, pub offset: u64, pub length: u64, pub mode: u32, pub padding: u32 }
    pub struct Dirent { pub ino: u64, pub off: u64, pub namelen: u32, pub typ: u32 }
    pub struct LseekIn { pub fh: u64, pub offset: u64, pub whence: u32, pub padding: u32 }
    pub struct LseekOut { pub offset: u64 }
    pub struct CopyFileRangeIn {
        pub fh_in: u64, pub off_in: u64, pub nodeid_out: u64, pub fh_out: u64,
        pub off_out: u64, pub len: u64, pub flags: u64,
    }
    pub struct CopyFileRangeOut { pub bytes_copied: u64 }
    pub struct SetupmappingIn { pub fh: u64, pub foffset: u64, pub len: u64, pub flags: u64, pub moffset: u64 }
    pub struct RemovemappingIn { pub count: u32 }
    pub struct RemovemappingOne { pub moffset: u64, pub len: u64 }
    pub struct SyncfsIn { pub padding: u64 }
    pub struct ExtHeader { pub size: u32, pub typ: u32 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::size_of;

    #[test]
    fn sizes_match_the_protocol() {
        assert_eq!(size_of::<InHeader>(), 40);
        assert_eq!(size_of::<OutHeader>(), 16);
        assert_eq!(size_of::<Attr>(), 88);
        assert_eq!(size_of::<Statx>(), 256);
        assert_eq!(size_of::<Kstatfs>(), 80);
        assert_eq!(size_of::<FileLock>(), 24);
        assert_eq!(size_of::<EntryOut>(), 128);
        assert_eq!(size_of::<AttrOut>(), 104);
        assert_eq!(size_of::<StatxIn>(), 24);
        assert_eq!(size_of::<StatxOut>(), 288);
        assert_eq!(size_of::<SetattrIn>(), 88);
        assert_eq!(size_of::<ReadIn>(), 40);
        assert_eq!(size_of::<WriteIn>(), 40);
        assert_eq!(size_of::<LkIn>(), 48);
        assert_eq!(size_of::<InitIn>(), 64);
        assert_eq!(size_of::<InitOut>(), 64);
        assert_eq!(size_of::<IoctlIn>(), 32);
        assert_eq!(size_of::<FallocateIn>(), 32);
        assert_eq!(size_of::<Dirent>(), super::super::DIRENT_NAME_OFFSET);
        assert_eq!(size_of::<EntryOut>() + size_of::<Dirent>(), super::super::DIRENTPLUS_NAME_OFFSET);
        assert_eq!(size_of::<CopyFileRangeIn>(), 56);
        assert_eq!(size_of::<SetupmappingIn>(), 40);
        assert_eq!(size_of::<RemovemappingIn>(), 4);
    }
}
