//! The part of libnfs's public API (`nfsc/libnfs.h`, libnfs 4.0 as Debian 12 ships it) the
//! engine calls, from `libnfs-sys` (bindgen at build time: libclang and libnfs-dev needed),
//! under the names the engine uses.

pub use libnfs_sys::{
    nfs_cb as NfsCb, nfs_context as NfsContext, nfs_stat_64 as NfsStat64, nfs_statvfs_64 as NfsStatvfs64,
    nfsdir as NfsDir, nfsdirent as NfsDirent, nfsfh as NfsFh,
};
pub use libnfs_sys::{
    nfs_chmod_async, nfs_chown_async, nfs_close_async, nfs_closedir, nfs_create_async, nfs_destroy_context,
    nfs_destroy_url, nfs_fsync_async, nfs_get_error, nfs_get_fd, nfs_get_readmax, nfs_get_writemax, nfs_init_context,
    nfs_lstat64_async, nfs_mkdir2_async, nfs_mount, nfs_open_async, nfs_opendir_async, nfs_parse_url_dir,
    nfs_pread_async, nfs_pwrite_async, nfs_readdir, nfs_rmdir_async, nfs_service, nfs_set_dircache, nfs_set_gid,
    nfs_set_timeout, nfs_set_uid, nfs_statvfs64_async, nfs_truncate_async, nfs_unlink_async, nfs_utimes_async,
    nfs_which_events,
};
