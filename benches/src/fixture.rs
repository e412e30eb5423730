//! The file systems and requests of the request-path cases: a tree made through FUSE
//! requests (so every backend gets the same one), and one prepared request per operation.

use crate::prepared::{device, Case, Prepared};
use dpfs_backend_mem::{MemConfig, MemFs};
use dpfs_backend_null::{NullFs, FILE_ID};
use dpfs_backend_passthrough::{PassthroughConfig, PassthroughFs};
use dpfs_core::abi::{self, ROOT_ID};
use dpfs_core::local::LocalClient;
use dpfs_core::operation::Operation;
use dpfs_core::{Device, FileSystem};
use std::mem::size_of;
use std::path::PathBuf;
use std::sync::Arc;
use zerocopy::FromBytes;

/// Entries in the tree's directory (what one READDIRPLUS returns).
pub const DIR_ENTRIES: usize = 16;
/// Size of the tree's data file: the largest READ case.
pub const DATA_SIZE: usize = 128 << 10;
/// Where passthrough cases keep their trees: tmpfs on every Linux, so the figures do not
/// depend on the disk file system of the machine.
pub const PASSTHROUGH_BASE: &str = "/dev/shm/dpfs-bench";

/// Which backend serves a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// DPFS-null: the stack's own cost.
    Null,
    /// The in-memory file system.
    Mem,
    /// Passthrough (sync engine) of a directory on tmpfs.
    Passthrough,
}

/// The operation of a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// GETATTR of the data file.
    Getattr,
    /// LOOKUP of the data file's name in the root.
    Lookup,
    /// READ of this many bytes at offset 0.
    Read(u32),
    /// WRITE of this many bytes at offset 0.
    Write(u32),
    /// READDIRPLUS of the directory from its start (4 KiB buffer).
    Readdirplus,
    /// CREATE of a new file in the root.
    Create,
}

/// Node ids and handles of a prepared tree.
#[derive(Clone, Copy, Debug)]
pub struct Tree {
    /// The data file.
    pub file: u64,
    /// A read-write handle of it.
    pub fh: u64,
    /// The directory.
    pub dir: u64,
    /// An open handle of the directory.
    pub dir_fh: u64,
}

/// A device over `backend` with its tree; `label` names the passthrough directory.
pub fn backend_device(backend: Backend, label: &str) -> (Device, Tree) {
    let fs: Arc<dyn FileSystem> = match backend {
        Backend::Null => Arc::new(NullFs::new()),
        Backend::Mem => Arc::new(MemFs::new(MemConfig::default())),
        Backend::Passthrough => {
            let root = fresh_dir(label);
            Arc::new(PassthroughFs::new(PassthroughConfig::new(root)).expect("passthrough over tmpfs"))
        }
    };
    let dev = device(fs);
    let tree = match backend {
        // Null has a fixed namespace: the root and one file.
        Backend::Null => Tree { file: FILE_ID, fh: 0, dir: ROOT_ID, dir_fh: 0 },
        _ => populate(&dev),
    };
    (dev, tree)
}

/// A warmed-up case: `op` on `backend`.
pub fn case(backend: Backend, op: Op, label: &str) -> Case {
    let (dev, tree) = backend_device(backend, label);
    // CREATE warms up with another name so that the measured one really creates.
    let warm = prepare(&tree, op, b"warm-up-file");
    let mut case = Case::warmed(dev, warm);
    case.req = prepare(&tree, op, b"created-file");
    case
}

/// The request for `op` on `tree`; `name` is the CREATE name.
pub fn prepare(tree: &Tree, op: Op, name: &[u8]) -> Prepared {
    let read = |fh, size| abi::ReadIn { fh, size, ..Default::default() };
    match op {
        Op::Getattr => {
            Prepared::new(tree.file, &Operation::Getattr(Default::default()), &[], size_of::<abi::AttrOut>())
        }
        Op::Lookup => Prepared::new(ROOT_ID, &Operation::Lookup { name: b"data" }, &[], size_of::<abi::EntryOut>()),
        Op::Read(n) => Prepared::new(tree.file, &Operation::Read(read(tree.fh, n)), &[], n as usize),
        Op::Write(n) => {
            let arg = abi::WriteIn { fh: tree.fh, size: n, ..Default::default() };
            Prepared::new(tree.file, &Operation::Write(arg), &vec![0x5a; n as usize], size_of::<abi::WriteOut>())
        }
        Op::Readdirplus => Prepared::new(tree.dir, &Operation::Readdirplus(read(tree.dir_fh, 4096)), &[], 4096),
        Op::Create => {
            let arg = create_in();
            Prepared::new(
                ROOT_ID,
                &Operation::Create { arg, name },
                &[],
                size_of::<abi::EntryOut>() + size_of::<abi::OpenOut>(),
            )
        }
    }
}

fn create_in() -> abi::CreateIn {
    abi::CreateIn { flags: libc::O_RDWR as u32, mode: libc::S_IFREG | 0o644, umask: 0, open_flags: 0 }
}

/// Makes the tree through FUSE requests: `data` (128 KiB, open read-write), `dir` with
/// [`DIR_ENTRIES`] empty files, open.
pub fn populate(dev: &Device) -> Tree {
    let c = LocalClient::new(dev);
    let create = |parent, name: &[u8]| {
        let r = c
            .call(
                parent,
                &Operation::Create { arg: create_in(), name },
                &[],
                size_of::<abi::EntryOut>() + size_of::<abi::OpenOut>(),
            )
            .expect("CREATE answered");
        assert_eq!(r.error(), 0, "CREATE {}", String::from_utf8_lossy(name));
        let entry: abi::EntryOut = r.parse().expect("entry");
        let open = abi::OpenOut::read_from_prefix(&r.body[size_of::<abi::EntryOut>()..]).expect("open reply").0;
        (entry.nodeid, open.fh)
    };
    let (file, fh) = create(ROOT_ID, b"data");
    let data = vec![0xa5u8; DATA_SIZE];
    let write = abi::WriteIn { fh, size: DATA_SIZE as u32, ..Default::default() };
    let w: abi::WriteOut = c.expect_ok(c.call(file, &Operation::Write(write), &data, 8)).expect("WRITE");
    assert_eq!(w.size as usize, DATA_SIZE);
    let mkdir = abi::MkdirIn { mode: libc::S_IFDIR | 0o755, umask: 0 };
    let dir: abi::EntryOut =
        c.expect_ok(c.call(ROOT_ID, &Operation::Mkdir { arg: mkdir, name: b"dir" }, &[], 128)).expect("MKDIR");
    for i in 0..DIR_ENTRIES {
        let (ino, efh) = create(dir.nodeid, format!("entry-{i:02}").as_bytes());
        let rel = abi::ReleaseIn { fh: efh, ..Default::default() };
        assert_eq!(c.call(ino, &Operation::Release(rel), &[], 0).map(|r| r.error()), Some(0), "RELEASE");
    }
    let od: abi::OpenOut =
        c.expect_ok(c.call(dir.nodeid, &Operation::Opendir(Default::default()), &[], 16)).expect("OPENDIR");
    Tree { file, fh, dir: dir.nodeid, dir_fh: od.fh }
}

/// An empty directory for passthrough case `label`, under [`PASSTHROUGH_BASE`].
fn fresh_dir(label: &str) -> PathBuf {
    let dir = PathBuf::from(PASSTHROUGH_BASE).join(label);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the passthrough bench directory");
    dir
}
