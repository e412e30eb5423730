//! readdir and readdirplus replies from a directory libnfs read whole: FUSE offset 1 is
//! `.`, 2 is `..`, entry `i` is `i + 3`.

use super::calls::DirEnt;
use super::{dirent_attr, kind3, State};
use dpfs_core::reply::{ReplyDir, ReplyDirPlus};

/// Fills a readdir reply from `entries` after FUSE offset `offset` (`.` is 1, `..` 2, entry
/// `i` is `i + 3`).
pub(super) fn fill_dir(entries: &[DirEnt], ino: u64, offset: u64, mut reply: ReplyDir) {
    let dir = libc::S_IFDIR >> 12;
    if offset < 1 && !reply.add(ino, 1, dir, b".") {
        return reply.done();
    }
    if offset < 2 && !reply.add(ino, 2, dir, b"..") {
        return reply.done();
    }
    let skip = offset.saturating_sub(2) as usize;
    for (i, e) in entries.iter().enumerate().skip(skip) {
        if !reply.add(e.inode, i as u64 + 3, kind3(e.typ) >> 12, &e.name) {
            break;
        }
    }
    reply.done()
}

/// Fills a readdirplus reply: each entry given holds a lookup of its node.
pub(super) fn fill_dirplus(st: &State, dir: &[u8], entries: &[DirEnt], offset: u64, mut reply: ReplyDirPlus) {
    let dots = dpfs_core::fs::Entry {
        ino: 0,
        attr: dpfs_core::fs::Attr { mode: libc::S_IFDIR, ..Default::default() },
        ..Default::default()
    };
    if offset < 1 && !reply.add(&dots, 1, b".") {
        return reply.done();
    }
    if offset < 2 && !reply.add(&dots, 2, b"..") {
        return reply.done();
    }
    let skip = offset.saturating_sub(2) as usize;
    for (i, e) in entries.iter().enumerate().skip(skip) {
        if !reply.fits(e.name.len()) {
            break;
        }
        let mut path = dir.to_vec();
        if path != b"/" {
            path.push(b'/');
        }
        path.extend_from_slice(&e.name);
        let Ok(entry) = st.entry(path, dirent_attr(e)) else { continue };
        if !reply.add(&entry, i as u64 + 3, &e.name) {
            st.nodes.forget(entry.ino, 1);
            break;
        }
    }
    reply.done()
}
