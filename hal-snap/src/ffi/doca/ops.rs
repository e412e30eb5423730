//! One `extern "C"` handler per FUSE opcode, generated from a table.
//!
//! Each entry states the handler's shape after `(req, req_user_data, in)`: the op's
//! argument struct (`args`), a host payload list (`datain`), the out-header with the op's
//! out structs in reply order (`out`), and a host reply list (`dataout`). The research note
//! gives the generic shape and the READ, WRITE and LOOKUP examples; the other shapes follow
//! the FUSE message layout of each op and are assumptions to check against the SDK headers
//! before linking:
//!
//! - names and other variable-length arguments (LOOKUP, MKNOD, SYMLINK, RENAME, the xattr
//!   names and values...) come as `datain`; ops whose request is only a name have no
//!   argument struct;
//! - fixed-size replies go to out structs; CREATE and TMPFILE have two (`entry_out`, then
//!   `open_out`, as on the wire); variable-length replies (READ, READLINK, READDIR, READDIRPLUS,
//!   GETXATTR/LISTXATTR values, IOCTL data) go to `dataout`;
//! - GETXATTR/LISTXATTR fill `getxattr_out` only when the request's size is 0 (the FUSE
//!   rule), otherwise the value goes to `dataout`;
//! - FORGET has no reply, so no out-header. BATCH_FORGET is not in the note's list (the
//!   device presumably splits it); nothing is registered for it;
//! - COPY_FILE_RANGE answers with `write_out` (the 32-bit reply of opcode 47).

use super::request::{dispatch, Call, OutStruct};
use super::{DocaBuf, DocaDevemuVfsFuseReq, Req, DOCA_ERROR_UNKNOWN};
use dpfs_core::abi::*;
use std::ffi::c_void;
use std::ptr::NonNull;
use zerocopy::IntoBytes;

macro_rules! fuse_ops {
    ($(
        $(#[$doc:meta])*
        $op:ident = $code:literal => $fn:ident, $hty:ident {
            $(args $a:ident: $aty:ty;)?
            $(datain $din:ident;)?
            $(out $oh:ident [$($o:ident: $oty:ty),*] $($z:ident)?;)?
            $(dataout $dout:ident;)?
        }
    )*) => {
        $(
            $(#[$doc])*
            pub type $hty = unsafe extern "C" fn(
                req: *mut DocaDevemuVfsFuseReq,
                user: *mut c_void,
                inh: *mut InHeader,
                $($a: *mut $aty,)?
                $($din: *mut DocaBuf,)?
                $($oh: *mut OutHeader, $($o: *mut $oty,)*)?
                $($dout: *mut DocaBuf,)?
            );

            $(#[$doc])*
            ///
            /// # Safety
            /// Called by DOCA with the pointers of one request: headers and out structs in
            /// DPU memory valid until the request is completed, payload lists of host memory,
            /// `user` as `state_of` (in the parent module) expects.
            #[allow(clippy::too_many_arguments)]
            pub unsafe extern "C" fn $fn(
                req: *mut DocaDevemuVfsFuseReq,
                user: *mut c_void,
                inh: *mut InHeader,
                $($a: *mut $aty,)?
                $($din: *mut DocaBuf,)?
                $($oh: *mut OutHeader, $($o: *mut $oty,)*)?
                $($dout: *mut DocaBuf,)?
            ) {
                let Some(req) = NonNull::new(req) else { return };
                // SAFETY: DOCA passes the request's pointers as documented above.
                let state = unsafe { super::state_of(req, user) };
                let req = Req(req);
                // SAFETY: the in-header is valid for the handler's duration.
                let (Some(state), Some(inh)) = (state, unsafe { inh.as_ref() }) else {
                    return req.complete(DOCA_ERROR_UNKNOWN);
                };
                let args = Some::<&[u8]>(&[]) $(.and_then(|_| {
                    // SAFETY: the op's argument struct is valid for the handler's duration.
                    unsafe { $a.as_ref() }.map(|a| a.as_bytes())
                }))?;
                let out = Some::<Option<NonNull<OutHeader>>>(None) $(.and(NonNull::new($oh).map(Some)))?;
                let outs: Option<Vec<OutStruct>> = Some(Vec::new());
                $($(
                    let outs = outs.and_then(|mut v| {
                        v.push(OutStruct::new($o.cast::<u8>(), std::mem::size_of::<$oty>())?);
                        Some(v)
                    });
                )*)?
                let (Some(args), Some(out), Some(outs)) = (args, out, outs) else {
                    return req.complete(DOCA_ERROR_UNKNOWN);
                };
                dispatch(Call {
                    state,
                    req,
                    inh,
                    args,
                    datain: None $(.or(NonNull::new($din)))?,
                    out,
                    outs,
                    outs_only_if_size_zero: false $($(|| !stringify!($z).is_empty())?)?,
                    dataout: None $(.or(NonNull::new($dout)))?,
                });
            }

            const _: $hty = $fn;
        )*

        /// The FUSE ops with a registered handler: (name in the DOCA symbol, opcode).
        pub const REGISTERED: &[(&str, u32)] = &[$((stringify!($op), $code)),*];

        #[cfg(dpfs_doca_linked)]
        mod register {
            $(
                pub mod $op {
                    extern "C" {
                        #[link_name = concat!(
                            "doca_devemu_vfs_io_event_vfs_fuse_", stringify!($op), "_req_handler_register"
                        )]
                        pub fn register(
                            io: *mut super::super::super::DocaDevemuVfsIo,
                            h: super::super::$hty,
                        ) -> super::super::super::DocaError;
                    }
                }
            )*
        }

        /// Registers every handler of the table on `io` (before its context is started).
        /// On failure, returns the op whose registration failed and DOCA's error.
        #[cfg(dpfs_doca_linked)]
        pub(super) fn register_all(io: *mut super::DocaDevemuVfsIo) -> Result<(), (&'static str, super::DocaError)> {
            $(
                // SAFETY: `io` is a live IO context; the handler has the op's shape.
                let e = unsafe { register::$op::register(io, $fn) };
                if e != super::DOCA_SUCCESS {
                    return Err((stringify!($op), e));
                }
            )*
            Ok(())
        }
    };
}

fuse_ops! {
    /// INIT: `(req, ud, in, init_in, out, init_out)`.
    init = 26 => on_init, InitHandler { args init_in: InitIn; out out [init_out: InitOut]; }
    /// DESTROY: `(req, ud, in, out)`.
    destroy = 38 => on_destroy, DestroyHandler { out out []; }
    /// LOOKUP: `(req, ud, in, datain = name, out, entry_out)`.
    lookup = 1 => on_lookup, LookupHandler { datain datain; out out [entry_out: EntryOut]; }
    /// FORGET: `(req, ud, in, forget_in)`; no reply.
    forget = 2 => on_forget, ForgetHandler { args forget_in: ForgetIn; }
    /// GETATTR: `(req, ud, in, getattr_in, out, attr_out)`.
    getattr = 3 => on_getattr, GetattrHandler { args getattr_in: GetattrIn; out out [attr_out: AttrOut]; }
    /// SETATTR: `(req, ud, in, setattr_in, out, attr_out)`.
    setattr = 4 => on_setattr, SetattrHandler { args setattr_in: SetattrIn; out out [attr_out: AttrOut]; }
    /// READLINK: `(req, ud, in, out, dataout = target)`.
    readlink = 5 => on_readlink, ReadlinkHandler { out out []; dataout dataout; }
    /// SYMLINK: `(req, ud, in, datain = name and target, out, entry_out)`.
    symlink = 6 => on_symlink, SymlinkHandler { datain datain; out out [entry_out: EntryOut]; }
    /// MKNOD: `(req, ud, in, mknod_in, datain = name, out, entry_out)`.
    mknod = 8 => on_mknod, MknodHandler {
        args mknod_in: MknodIn; datain datain; out out [entry_out: EntryOut];
    }
    /// MKDIR: `(req, ud, in, mkdir_in, datain = name, out, entry_out)`.
    mkdir = 9 => on_mkdir, MkdirHandler {
        args mkdir_in: MkdirIn; datain datain; out out [entry_out: EntryOut];
    }
    /// UNLINK: `(req, ud, in, datain = name, out)`.
    unlink = 10 => on_unlink, UnlinkHandler { datain datain; out out []; }
    /// RMDIR: `(req, ud, in, datain = name, out)`.
    rmdir = 11 => on_rmdir, RmdirHandler { datain datain; out out []; }
    /// RENAME: `(req, ud, in, rename_in, datain = old and new names, out)`.
    rename = 12 => on_rename, RenameHandler { args rename_in: RenameIn; datain datain; out out []; }
    /// RENAME2: `(req, ud, in, rename2_in, datain = old and new names, out)`.
    rename2 = 45 => on_rename2, Rename2Handler { args rename2_in: Rename2In; datain datain; out out []; }
    /// LINK: `(req, ud, in, link_in, datain = name, out, entry_out)`.
    link = 13 => on_link, LinkHandler { args link_in: LinkIn; datain datain; out out [entry_out: EntryOut]; }
    /// OPEN: `(req, ud, in, open_in, out, open_out)`.
    open = 14 => on_open, OpenHandler { args open_in: OpenIn; out out [open_out: OpenOut]; }
    /// READ: `(req, ud, in, read_in, out, dataout)` (the note's example).
    read = 15 => on_read, ReadHandler { args read_in: ReadIn; out out []; dataout dataout; }
    /// WRITE: `(req, ud, in, write_in, datain, out, write_out)` (the note's example).
    write = 16 => on_write, WriteHandler {
        args write_in: WriteIn; datain datain; out out [write_out: WriteOut];
    }
    /// STATFS: `(req, ud, in, out, statfs_out)`.
    statfs = 17 => on_statfs, StatfsHandler { out out [statfs_out: StatfsOut]; }
    /// RELEASE: `(req, ud, in, release_in, out)`.
    release = 18 => on_release, ReleaseHandler { args release_in: ReleaseIn; out out []; }
    /// FSYNC: `(req, ud, in, fsync_in, out)`.
    fsync = 20 => on_fsync, FsyncHandler { args fsync_in: FsyncIn; out out []; }
    /// SETXATTR: `(req, ud, in, setxattr_in, datain = name and value, out)`.
    setxattr = 21 => on_setxattr, SetxattrHandler { args setxattr_in: SetxattrIn; datain datain; out out []; }
    /// GETXATTR: `(req, ud, in, getxattr_in, datain = name, out, getxattr_out, dataout)`.
    getxattr = 22 => on_getxattr, GetxattrHandler {
        args getxattr_in: GetxattrIn; datain datain; out out [getxattr_out: GetxattrOut] size_zero; dataout dataout;
    }
    /// LISTXATTR: `(req, ud, in, getxattr_in, out, getxattr_out, dataout)`.
    listxattr = 23 => on_listxattr, ListxattrHandler {
        args getxattr_in: GetxattrIn; out out [getxattr_out: GetxattrOut] size_zero; dataout dataout;
    }
    /// REMOVEXATTR: `(req, ud, in, datain = name, out)`.
    removexattr = 24 => on_removexattr, RemovexattrHandler { datain datain; out out []; }
    /// FLUSH: `(req, ud, in, flush_in, out)`.
    flush = 25 => on_flush, FlushHandler { args flush_in: FlushIn; out out []; }
    /// OPENDIR: `(req, ud, in, open_in, out, open_out)`.
    opendir = 27 => on_opendir, OpendirHandler { args open_in: OpenIn; out out [open_out: OpenOut]; }
    /// READDIR: `(req, ud, in, read_in, out, dataout = dirents)`.
    readdir = 28 => on_readdir, ReaddirHandler { args read_in: ReadIn; out out []; dataout dataout; }
    /// RELEASEDIR: `(req, ud, in, release_in, out)`.
    releasedir = 29 => on_releasedir, ReleasedirHandler { args release_in: ReleaseIn; out out []; }
    /// CREATE: `(req, ud, in, create_in, datain = name, out, entry_out, open_out)`.
    create = 35 => on_create, CreateHandler {
        args create_in: CreateIn; datain datain; out out [entry_out: EntryOut, open_out: OpenOut];
    }
    /// BMAP: `(req, ud, in, bmap_in, out, bmap_out)` (core answers ENOSYS).
    bmap = 37 => on_bmap, BmapHandler { args bmap_in: BmapIn; out out [bmap_out: BmapOut]; }
    /// IOCTL: `(req, ud, in, ioctl_in, datain, out, ioctl_out, dataout)` (core answers ENOSYS).
    ioctl = 39 => on_ioctl, IoctlHandler {
        args ioctl_in: IoctlIn; datain datain; out out [ioctl_out: IoctlOut]; dataout dataout;
    }
    /// FALLOCATE: `(req, ud, in, fallocate_in, out)`.
    fallocate = 43 => on_fallocate, FallocateHandler { args fallocate_in: FallocateIn; out out []; }
    /// READDIRPLUS: `(req, ud, in, read_in, out, dataout = direntplus)`.
    readdirplus = 44 => on_readdirplus, ReaddirplusHandler { args read_in: ReadIn; out out []; dataout dataout; }
    /// LSEEK: `(req, ud, in, lseek_in, out, lseek_out)`.
    lseek = 46 => on_lseek, LseekHandler { args lseek_in: LseekIn; out out [lseek_out: LseekOut]; }
    /// COPY_FILE_RANGE: `(req, ud, in, copy_file_range_in, out, write_out)`.
    copy_file_range = 47 => on_copy_file_range, CopyFileRangeHandler {
        args copy_file_range_in: CopyFileRangeIn; out out [write_out: WriteOut];
    }
    /// SETUPMAPPING: `(req, ud, in, setupmapping_in, out)` (core answers ENOSYS).
    setupmapping = 48 => on_setupmapping, SetupmappingHandler { args setupmapping_in: SetupmappingIn; out out []; }
    /// REMOVEMAPPING: `(req, ud, in, removemapping_in, datain = entries, out)` (core
    /// answers ENOSYS).
    removemapping = 49 => on_removemapping, RemovemappingHandler {
        args removemapping_in: RemovemappingIn; datain datain; out out [];
    }
    /// SYNCFS: `(req, ud, in, syncfs_in, out)`.
    syncfs = 50 => on_syncfs, SyncfsHandler { args syncfs_in: SyncfsIn; out out []; }
    /// TMPFILE: `(req, ud, in, create_in, datain = name, out, entry_out, open_out)`.
    tmpfile = 51 => on_tmpfile, TmpfileHandler {
        args create_in: CreateIn; datain datain; out out [entry_out: EntryOut, open_out: OpenOut];
    }
    /// STATX: `(req, ud, in, statx_in, out, statx_out)`.
    statx = 52 => on_statx, StatxHandler { args statx_in: StatxIn; out out [statx_out: StatxOut]; }
}
