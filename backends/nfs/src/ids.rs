//! Identities between the guest and the server: AUTH_SYS credentials of a caller (with its
//! supplementary groups from the host's group database), and NFSv4 owners (`"1000"` or
//! `name@domain`) as numeric ids through the host's user and group database.

use dpfs_nfs4::{Creds, Owner};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{CStr, CString};

/// The id of an owner the host does not know (`nobody`).
pub const NOBODY: u32 = 65534;
/// Most cached entries of each map before it is cleared.
const CACHE_LIMIT: usize = 4096;

/// Caches of the host's user and group database.
#[derive(Debug, Default)]
pub struct Ids {
    groups: Mutex<HashMap<(u32, u32), Vec<u32>>>,
    users: Mutex<HashMap<String, u32>>,
    group_names: Mutex<HashMap<String, u32>>,
}

fn bounded_insert<K: std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, k: K, v: V) {
    if map.len() >= CACHE_LIMIT {
        map.clear();
    }
    map.insert(k, v);
}

impl Ids {
    /// AUTH_SYS credentials of the guest's `uid`/`gid`: the supplementary groups the host's
    /// database gives the user (at most 16), plus the request's own supplementary group.
    pub fn creds(&self, uid: u32, gid: u32, supplementary: Option<u32>) -> Creds {
        let mut groups = self.groups.lock().get(&(uid, gid)).cloned();
        if groups.is_none() {
            let g = host_groups(uid, gid);
            bounded_insert(&mut self.groups.lock(), (uid, gid), g.clone());
            groups = Some(g);
        }
        let mut groups = groups.unwrap_or_default();
        if let Some(s) = supplementary {
            if s != gid && !groups.contains(&s) {
                groups.insert(0, s);
            }
        }
        groups.truncate(dpfs_nfs4::rpc::MAX_GROUPS);
        Creds::new(uid, gid, &groups).unwrap_or_else(|_| Creds::root())
    }

    /// The numeric id of a user owner.
    pub fn uid(&self, o: &Owner) -> u32 {
        self.id(o, &self.users, lookup_user)
    }

    /// The numeric id of a group owner.
    pub fn gid(&self, o: &Owner) -> u32 {
        self.id(o, &self.group_names, lookup_group)
    }

    fn id(&self, o: &Owner, cache: &Mutex<HashMap<String, u32>>, look: fn(&CStr) -> Option<u32>) -> u32 {
        match o {
            Owner::Id(id) => *id,
            Owner::Name(full) => {
                if let Some(id) = cache.lock().get(full) {
                    return *id;
                }
                let name = full.split('@').next().unwrap_or_default();
                let id = CString::new(name).ok().and_then(|c| look(&c)).unwrap_or(NOBODY);
                bounded_insert(&mut cache.lock(), full.clone(), id);
                id
            }
        }
    }
}

fn lookup_user(name: &CStr) -> Option<u32> {
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: all-zero is a valid passwd, which getpwnam_r fills (strings point into buf).
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: valid name, out-structs and buffer of the given length.
    let rc = unsafe { libc::getpwnam_r(name.as_ptr(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(pw.pw_uid)
}

fn lookup_group(name: &CStr) -> Option<u32> {
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: all-zero is a valid group, which getgrnam_r fills (strings point into buf).
    let mut gr: libc::group = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: valid name, out-structs and buffer of the given length.
    let rc = unsafe { libc::getgrnam_r(name.as_ptr(), &mut gr, buf.as_mut_ptr(), buf.len(), &mut out) };
    (rc == 0 && !out.is_null()).then_some(gr.gr_gid)
}

/// The supplementary groups of `uid` (primary `gid` excluded), empty if the host does not
/// know the user.
fn host_groups(uid: u32, gid: u32) -> Vec<u32> {
    let mut buf = vec![0 as libc::c_char; 16 << 10];
    // SAFETY: as in lookup_user.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut out = std::ptr::null_mut();
    // SAFETY: valid out-structs and buffer of the given length.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr(), buf.len(), &mut out) };
    if rc != 0 || out.is_null() {
        return Vec::new();
    }
    let mut groups = vec![0 as libc::gid_t; 64];
    let mut n = groups.len() as libc::c_int;
    // SAFETY: pw_name points into buf (alive); groups has room for n entries.
    let rc = unsafe { libc::getgrouplist(pw.pw_name, gid, groups.as_mut_ptr(), &mut n) };
    if rc < 0 {
        return Vec::new();
    }
    groups.truncate(n.max(0) as usize);
    groups.retain(|&g| g != gid);
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_map_through_the_host_database() {
        let ids = Ids::default();
        assert_eq!(ids.uid(&Owner::Id(1234)), 1234);
        assert_eq!(ids.uid(&Owner::Name("root@localdomain".into())), 0);
        assert_eq!(ids.gid(&Owner::Name("root@example.org".into())), 0);
        assert_eq!(ids.uid(&Owner::Name("no-such-user-dpfs@x".into())), NOBODY);
        let c = ids.creds(4321, 4321, Some(77));
        assert_eq!((c.uid(), c.gid(), c.groups()), (4321, 4321, &[77][..]));
    }
}
