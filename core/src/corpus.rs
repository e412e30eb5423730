//! Seed scripts for the `fuse_decoder` fuzz target: realistic sessions a guest would send,
//! one per area of the protocol, so the fuzzer starts from deep states.

use crate::abi::{self, init, ROOT_ID};
use crate::operation::{item_bytes, item_list, Operation as O};
use crate::script::ScriptBuilder;

fn init_in(minor: u32) -> abi::InitIn {
    let flags = u64::MAX;
    abi::InitIn {
        major: 7,
        minor,
        max_readahead: 1 << 17,
        flags: flags as u32,
        flags2: (flags >> 32) as u32,
        unused: [0; 11],
    }
}

fn started(minor: u32) -> ScriptBuilder {
    let mut s = ScriptBuilder::default();
    s.push(0, 0, &O::Init(init_in(minor)), &[]);
    s
}

/// Named seed scripts. Node ids after the root follow the mem backend's allocation order
/// (2, 3, …); the fuzzer mutates them anyway.
pub fn seed_scripts() -> Vec<(&'static str, Vec<u8>)> {
    let mut out = Vec::new();
    out.push(("init-7.45", started(45).bytes));
    out.push(("init-7.37", started(37).bytes));
    let mut old = ScriptBuilder::default();
    old.push(
        0,
        0,
        &O::Init(abi::InitIn { major: 7, minor: 22, flags: init::ASYNC_READ as u32, ..Default::default() }),
        &[],
    );
    out.push(("init-7.22", old.bytes));

    let mut s = started(45);
    s.push(0, ROOT_ID, &O::Mkdir { arg: abi::MkdirIn { mode: 0o755, umask: 0o022 }, name: b"dir" }, &[])
        .push(0, ROOT_ID, &O::Lookup { name: b"dir" }, &[])
        .push(
            0,
            2,
            &O::Create { arg: abi::CreateIn { flags: 0o102, mode: 0o644, umask: 0o22, open_flags: 0 }, name: b"file" },
            &[],
        )
        .push(0, 3, &O::Write(abi::WriteIn { fh: 1, offset: 0, size: 13, ..Default::default() }), b"hello, world\n")
        .push(0, 3, &O::Read(abi::ReadIn { fh: 1, offset: 0, size: 4096, ..Default::default() }), &[])
        .push(0, 3, &O::Getattr(abi::GetattrIn { getattr_flags: abi::misc::GETATTR_FH, dummy: 0, fh: 1 }), &[])
        .push(
            0,
            3,
            &O::Setattr(abi::SetattrIn {
                valid: abi::fattr::SIZE | abi::fattr::MODE,
                size: 5,
                mode: 0o600,
                ..Default::default()
            }),
            &[],
        )
        .push(0, 3, &O::Flush(abi::FlushIn { fh: 1, ..Default::default() }), &[])
        .push(0, 3, &O::Release(abi::ReleaseIn { fh: 1, ..Default::default() }), &[])
        .push(0, 2, &O::Symlink { name: b"link", target: b"file" }, &[])
        .push(0, 4, &O::Readlink, &[])
        .push(0, 3, &O::Link { arg: abi::LinkIn { oldnodeid: 3 }, name: b"hard" }, &[])
        .push(
            0,
            2,
            &O::Rename2 {
                arg: abi::Rename2In { newdir: ROOT_ID, flags: libc::RENAME_NOREPLACE, padding: 0 },
                old: b"hard",
                new: b"moved",
            },
            &[],
        )
        .push(0, 2, &O::Rename { arg: abi::RenameIn { newdir: 2 }, old: b"file", new: b"renamed" }, &[])
        .push(0, 2, &O::Unlink { name: b"link" }, &[])
        .push(0, ROOT_ID, &O::Rmdir { name: b"dir" }, &[])
        .push(0, 3, &O::Forget(abi::ForgetIn { nlookup: 1 }), &[]);
    out.push(("namespace", s.bytes));

    let mut s = started(45);
    s.push(0, ROOT_ID, &O::Opendir(abi::OpenIn::default()), &[]);
    for name in [&b"a"[..], b"bb", b"ccc", b"dddd"] {
        s.push(
            0,
            ROOT_ID,
            &O::Mknod { arg: abi::MknodIn { mode: libc::S_IFREG | 0o644, rdev: 0, umask: 0, padding: 0 }, name },
            &[],
        );
    }
    s.push(0, ROOT_ID, &O::Readdir(abi::ReadIn { fh: 1, size: 80, ..Default::default() }), &[])
        .push(0, ROOT_ID, &O::Readdirplus(abi::ReadIn { fh: 1, offset: 2, size: 4096, ..Default::default() }), &[])
        .push(0, ROOT_ID, &O::Fsyncdir(abi::FsyncIn { fh: 1, ..Default::default() }), &[])
        .push(0, ROOT_ID, &O::Releasedir(abi::ReleaseIn { fh: 1, ..Default::default() }), &[]);
    let forgets = item_bytes(&[abi::ForgetOne { nodeid: 2, nlookup: 1 }, abi::ForgetOne { nodeid: 3, nlookup: 1 }]);
    s.push(0, 0, &O::BatchForget { items: item_list(&forgets) }, &[]);
    out.push(("readdir", s.bytes));

    let mut s = started(45);
    s.push(
        0,
        ROOT_ID,
        &O::Create { arg: abi::CreateIn { flags: 2, mode: 0o644, umask: 0, open_flags: 0 }, name: b"x" },
        &[],
    )
    .push(
        0,
        2,
        &O::Setxattr {
            arg: abi::SetxattrIn { size: 5, flags: 0, setxattr_flags: 0, padding: 0 },
            name: b"user.k",
            value: b"value",
        },
        &[],
    )
    .push(0, 2, &O::Getxattr { arg: abi::GetxattrIn { size: 0, padding: 0 }, name: b"user.k" }, &[])
    .push(0, 2, &O::Getxattr { arg: abi::GetxattrIn { size: 64, padding: 0 }, name: b"user.k" }, &[])
    .push(0, 2, &O::Listxattr(abi::GetxattrIn { size: 64, padding: 0 }), &[])
    .push(0, 2, &O::Removexattr { name: b"user.k" }, &[])
    .push(0, 2, &O::Fallocate(abi::FallocateIn { fh: 1, offset: 0, length: 1 << 20, mode: 0, padding: 0 }), &[])
    .push(0, 2, &O::Fallocate(abi::FallocateIn { fh: 1, offset: 4096, length: 8192, mode: 3, padding: 0 }), &[])
    .push(0, 2, &O::Lseek(abi::LseekIn { fh: 1, offset: 0, whence: 4, padding: 0 }), &[])
    .push(0, 2, &O::Lseek(abi::LseekIn { fh: 1, offset: 0, whence: 3, padding: 0 }), &[])
    .push(0, 2, &O::Statx(abi::StatxIn { getattr_flags: 0, reserved: 0, fh: 0, sx_flags: 0, sx_mask: 0xfff }), &[])
    .push(
        0,
        2,
        &O::CopyFileRange(abi::CopyFileRangeIn {
            fh_in: 1,
            off_in: 0,
            nodeid_out: 2,
            fh_out: 1,
            off_out: 100,
            len: 50,
            flags: 0,
        }),
        &[],
    )
    .push(
        0,
        2,
        &O::CopyFileRange64(abi::CopyFileRangeIn {
            fh_in: 1,
            off_in: 0,
            nodeid_out: 2,
            fh_out: 1,
            off_out: 200,
            len: 50,
            flags: 0,
        }),
        &[],
    )
    .push(0, 2, &O::Access(abi::AccessIn { mask: 6, padding: 0 }), &[])
    .push(0, 2, &O::Fsync(abi::FsyncIn { fh: 1, fsync_flags: 1, padding: 0 }), &[])
    .push(0, ROOT_ID, &O::Statfs, &[])
    .push(0, ROOT_ID, &O::Syncfs(abi::SyncfsIn::default()), &[])
    .push(
        0,
        ROOT_ID,
        &O::Tmpfile { arg: abi::CreateIn { flags: 2, mode: 0o600, umask: 0, open_flags: 0 }, name: b"/" },
        &[],
    );
    out.push(("attributes", s.bytes));

    let mut s = started(45);
    let lk = |typ: u32, start: u64, end: u64, owner: u64, flags: u32| abi::LkIn {
        fh: 1,
        owner,
        lk: abi::FileLock { start, end, typ, pid: 7 },
        lk_flags: flags,
        padding: 0,
    };
    s.push(
        0,
        ROOT_ID,
        &O::Create { arg: abi::CreateIn { flags: 2, mode: 0o644, umask: 0, open_flags: 0 }, name: b"l" },
        &[],
    )
    .push(0, 2, &O::Setlk(lk(libc::F_WRLCK as u32, 0, 99, 1, 0)), &[])
    .push(0, 2, &O::Getlk(lk(libc::F_RDLCK as u32, 50, 60, 2, 0)), &[])
    .push(0, 2, &O::Setlk(lk(libc::F_RDLCK as u32, 0, u64::MAX, 2, 0)), &[])
    .push(0, 2, &O::Setlkw(lk(libc::F_WRLCK as u32, 10, 20, 2, 0)), &[])
    .push(0, 2, &O::Setlk(lk(libc::F_WRLCK as u32, 0, u64::MAX, 3, abi::misc::LK_FLOCK)), &[])
    .push(0, 2, &O::Setlk(lk(libc::F_UNLCK as u32, 0, u64::MAX, 1, 0)), &[]);
    out.push(("locks", s.bytes));

    let mut s = started(45);
    let big: Vec<u8> = (0..16384u32).map(|i| i as u8).collect();
    s.push(
        0,
        ROOT_ID,
        &O::Create { arg: abi::CreateIn { flags: 2, mode: 0o644, umask: 0, open_flags: 0 }, name: b"big" },
        &[],
    );
    for (shape, off) in [(0u8, 0u64), (5, 1 << 20), (0x47, 4095), (0x83, 1 << 40)] {
        s.push(
            shape,
            2,
            &O::Write(abi::WriteIn { fh: 1, offset: off, size: big.len() as u32, ..Default::default() }),
            &big,
        );
        s.push(shape, 2, &O::Read(abi::ReadIn { fh: 1, offset: off, size: 16384, ..Default::default() }), &[]);
    }
    out.push(("data", s.bytes));

    let mut s = started(45);
    s.push(0, ROOT_ID, &O::Interrupt(abi::InterruptIn { unique: 1 }), &[])
        .push(0, ROOT_ID, &O::Bmap(abi::BmapIn::default()), &[])
        .push(
            0,
            ROOT_ID,
            &O::Ioctl { arg: abi::IoctlIn { in_size: 4, out_size: 8, ..Default::default() }, data: b"abcd" },
            &[],
        )
        .push(0, ROOT_ID, &O::Poll(abi::PollIn::default()), &[])
        .push(0, ROOT_ID, &O::Setupmapping(abi::SetupmappingIn::default()), &[])
        .push(0, ROOT_ID, &O::NotifyReply, &[])
        .push(0, ROOT_ID, &O::Init(init_in(45)), &[])
        .push(0, ROOT_ID, &O::Destroy, &[])
        .push(0, ROOT_ID, &O::Init(init_in(37)), &[]);
    out.push(("misc", s.bytes));
    out
}
