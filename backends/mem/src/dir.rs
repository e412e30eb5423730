//! Directory contents with stable readdir cookies.
//!
//! Every entry gets a cookie from a counter that only grows, so the offset a guest passes
//! to continue a READDIR names a position that stays meaningful while the directory
//! changes: entries that survive are neither repeated nor skipped. Cookies 1 and 2 are
//! the positions after `.` and `..`.

use std::collections::{BTreeMap, HashMap};

/// First cookie of a real entry.
pub(crate) const FIRST_COOKIE: u64 = 3;

/// One name in a directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DirEntry {
    pub name: Box<[u8]>,
    pub ino: u64,
    /// `DT_*` type of the inode.
    pub typ: u32,
}

/// The entries of a directory.
#[derive(Debug)]
pub(crate) struct Directory {
    by_cookie: BTreeMap<u64, DirEntry>,
    by_name: HashMap<Box<[u8]>, u64>,
    next: u64,
    name_bytes: u64,
}

impl Default for Directory {
    fn default() -> Self {
        Directory { by_cookie: BTreeMap::new(), by_name: HashMap::new(), next: FIRST_COOKIE, name_bytes: 0 }
    }
}

impl Directory {
    pub(crate) fn get(&self, name: &[u8]) -> Option<&DirEntry> {
        self.by_name.get(name).and_then(|c| self.by_cookie.get(c))
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.by_cookie.len()
    }

    /// Total bytes of all names (charged against the capacity).
    pub(crate) fn name_bytes(&self) -> u64 {
        self.name_bytes
    }

    /// Adds `name`; the caller checked it is absent. Returns the new cookie.
    pub(crate) fn insert(&mut self, name: &[u8], ino: u64, typ: u32) -> u64 {
        let cookie = self.next;
        // 2^64 insertions cannot happen; saturate rather than wrap.
        self.next = self.next.saturating_add(1);
        if let Some(old) = self.by_name.insert(name.into(), cookie) {
            if let Some(e) = self.by_cookie.remove(&old) {
                self.name_bytes -= e.name.len() as u64;
            }
        }
        self.by_cookie.insert(cookie, DirEntry { name: name.into(), ino, typ });
        self.name_bytes += name.len() as u64;
        cookie
    }

    /// Removes `name`, returning its entry.
    pub(crate) fn remove(&mut self, name: &[u8]) -> Option<DirEntry> {
        let cookie = self.by_name.remove(name)?;
        let e = self.by_cookie.remove(&cookie)?;
        self.name_bytes -= e.name.len() as u64;
        Some(e)
    }

    /// Points `name` at another inode, keeping its cookie (RENAME_EXCHANGE).
    pub(crate) fn set_target(&mut self, name: &[u8], ino: u64, typ: u32) {
        if let Some(e) = self.by_name.get(name).and_then(|c| self.by_cookie.get_mut(c)) {
            e.ino = ino;
            e.typ = typ;
        }
    }

    /// Entries whose cookie is greater than `after`, in cookie order.
    pub(crate) fn after(&self, after: u64) -> impl Iterator<Item = (u64, &DirEntry)> {
        self.by_cookie.range(after.saturating_add(1)..).map(|(&c, e)| (c, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_survive_changes() {
        let mut d = Directory::default();
        let a = d.insert(b"a", 10, 8);
        let b = d.insert(b"b", 11, 8);
        let c = d.insert(b"c", 12, 8);
        assert!(a < b && b < c);
        // A reader that saw "a" continues after a's cookie; "b" is removed and "d" added.
        d.remove(b"b");
        d.insert(b"d", 13, 8);
        let rest: Vec<&[u8]> = d.after(a).map(|(_, e)| &*e.name).collect();
        assert_eq!(rest, vec![&b"c"[..], &b"d"[..]]);
        assert_eq!(d.name_bytes(), 3);
        d.set_target(b"c", 99, 4);
        assert_eq!(d.get(b"c").map(|e| e.ino), Some(99));
        assert_eq!(d.after(u64::MAX).count(), 0);
        assert_eq!(d.len(), 3);
    }
}
