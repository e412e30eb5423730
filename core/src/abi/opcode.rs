//! FUSE opcodes 1–53 (protocol 7.45).

/// A FUSE request opcode. Unknown numbers are kept as `Unknown` so they can be answered
/// with ENOSYS rather than treated as a decode failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Opcode {
    Lookup,
    Forget,
    Getattr,
    Setattr,
    Readlink,
    Symlink,
    Mknod,
    Mkdir,
    Unlink,
    Rmdir,
    Rename,
    Link,
    Open,
    Read,
    Write,
    Statfs,
    Release,
    Fsync,
    Setxattr,
    Getxattr,
    Listxattr,
    Removexattr,
    Flush,
    Init,
    Opendir,
    Readdir,
    Releasedir,
    Fsyncdir,
    Getlk,
    Setlk,
    Setlkw,
    Access,
    Create,
    Interrupt,
    Bmap,
    Destroy,
    Ioctl,
    Poll,
    NotifyReply,
    BatchForget,
    Fallocate,
    Readdirplus,
    Rename2,
    Lseek,
    CopyFileRange,
    Setupmapping,
    Removemapping,
    Syncfs,
    Tmpfile,
    Statx,
    CopyFileRange64,
    /// CUSE_INIT (4096): never valid on a file-system device.
    CuseInit,
    /// Any other number.
    Unknown(u32),
}

/// Number of slots in per-opcode tables (index = wire opcode, 0 and unknowns share slot 0).
pub const OPCODE_SLOTS: usize = 54;

impl Opcode {
    /// Maps a wire opcode to the enum.
    pub fn from_u32(v: u32) -> Opcode {
        use Opcode::*;
        match v {
            1 => Lookup,
            2 => Forget,
            3 => Getattr,
            4 => Setattr,
            5 => Readlink,
            6 => Symlink,
            8 => Mknod,
            9 => Mkdir,
            10 => Unlink,
            11 => Rmdir,
            12 => Rename,
            13 => Link,
            14 => Open,
            15 => Read,
            16 => Write,
            17 => Statfs,
            18 => Release,
            20 => Fsync,
            21 => Setxattr,
            22 => Getxattr,
            23 => Listxattr,
            24 => Removexattr,
            25 => Flush,
            26 => Init,
            27 => Opendir,
            28 => Readdir,
            29 => Releasedir,
            30 => Fsyncdir,
            31 => Getlk,
            32 => Setlk,
            33 => Setlkw,
            34 => Access,
            35 => Create,
            36 => Interrupt,
            37 => Bmap,
            38 => Destroy,
            39 => Ioctl,
            40 => Poll,
            41 => NotifyReply,
            42 => BatchForget,
            43 => Fallocate,
            44 => Readdirplus,
            45 => Rename2,
            46 => Lseek,
            47 => CopyFileRange,
            48 => Setupmapping,
            49 => Removemapping,
            50 => Syncfs,
            51 => Tmpfile,
            52 => Statx,
            53 => CopyFileRange64,
            4096 => CuseInit,
            other => Unknown(other),
        }
    }

    /// The wire number of this opcode.
    pub fn as_u32(self) -> u32 {
        use Opcode::*;
        match self {
            Lookup => 1,
            Forget => 2,
            Getattr => 3,
            Setattr => 4,
            Readlink => 5,
            Symlink => 6,
            Mknod => 8,
            Mkdir => 9,
            Unlink => 10,
            Rmdir => 11,
            Rename => 12,
            Link => 13,
            Open => 14,
            Read => 15,
            Write => 16,
            Statfs => 17,
            Release => 18,
            Fsync => 20,
            Setxattr => 21,
            Getxattr => 22,
            Listxattr => 23,
            Removexattr => 24,
            Flush => 25,
            Init => 26,
            Opendir => 27,
            Readdir => 28,
            Releasedir => 29,
            Fsyncdir => 30,
            Getlk => 31,
            Setlk => 32,
            Setlkw => 33,
            Access => 34,
            Create => 35,
            Interrupt => 36,
            Bmap => 37,
            Destroy => 38,
            Ioctl => 39,
            Poll => 40,
            NotifyReply => 41,
            BatchForget => 42,
            Fallocate => 43,
            Readdirplus => 44,
            Rename2 => 45,
            Lseek => 46,
            CopyFileRange => 47,
            Setupmapping => 48,
            Removemapping => 49,
            Syncfs => 50,
            Tmpfile => 51,
            Statx => 52,
            CopyFileRange64 => 53,
            CuseInit => 4096,
            Unknown(v) => v,
        }
    }

    /// Index into per-opcode tables (`0..OPCODE_SLOTS`); unknown opcodes map to 0.
    pub fn slot(self) -> usize {
        let v = self.as_u32() as usize;
        if v < OPCODE_SLOTS {
            v
        } else {
            0
        }
    }

    /// True for the opcodes the guest sends without expecting a reply.
    pub fn is_noreply(self) -> bool {
        matches!(self, Opcode::Forget | Opcode::BatchForget | Opcode::Interrupt | Opcode::NotifyReply)
    }

    /// A short lowercase name, for logs and metrics.
    pub fn name(self) -> &'static str {
        NAMES.get(self.slot()).copied().unwrap_or("unknown")
    }
}

const NAMES: [&str; OPCODE_SLOTS] = [
    "unknown",
    "lookup",
    "forget",
    "getattr",
    "setattr",
    "readlink",
    "symlink",
    "op7",
    "mknod",
    "mkdir",
    "unlink",
    "rmdir",
    "rename",
    "link",
    "open",
    "read",
    "write",
    "statfs",
    "release",
    "op19",
    "fsync",
    "setxattr",
    "getxattr",
    "listxattr",
    "removexattr",
    "flush",
    "init",
    "opendir",
    "readdir",
    "releasedir",
    "fsyncdir",
    "getlk",
    "setlk",
    "setlkw",
    "access",
    "create",
    "interrupt",
    "bmap",
    "destroy",
    "ioctl",
    "poll",
    "notify_reply",
    "batch_forget",
    "fallocate",
    "readdirplus",
    "rename2",
    "lseek",
    "copy_file_range",
    "setupmapping",
    "removemapping",
    "syncfs",
    "tmpfile",
    "statx",
    "copy_file_range_64",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_round_trips() {
        for v in 0..5000u32 {
            assert_eq!(Opcode::from_u32(v).as_u32(), v);
        }
    }

    #[test]
    fn names_match_numbers() {
        assert_eq!(Opcode::Lookup.name(), "lookup");
        assert_eq!(Opcode::CopyFileRange64.name(), "copy_file_range_64");
        assert_eq!(Opcode::Statx.name(), "statx");
        assert_eq!(Opcode::Unknown(7).name(), "op7");
        assert_eq!(Opcode::Unknown(999).name(), "unknown");
    }
}
