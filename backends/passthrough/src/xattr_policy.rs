//! [`XattrPolicy`]: how the guest's `trusted.*` and `security.*` attribute names reach host
//! files, and how host names are shown back to the guest.

use dpfs_core::Errno;
use serde::Deserialize;
use std::borrow::Cow;

/// The private host prefix [`XattrPolicy::Map`] stores privileged guest names under.
pub const PRIVATE_PREFIX: &[u8] = b"trusted.dpfs.";

/// What happens to guest attribute names in the namespaces the host kernel guards with
/// capabilities (`trusted.*` and `security.*`, `security.capability` included).
///
/// Whatever the policy, a non-root guest caller is refused these namespaces first
/// ([`dpfs_core::xattr::check_caller`]): the policy only decides where a *root* guest's
/// attributes go.
///
/// # Why `Map` is the default
/// The daemon runs as host root. Passing a guest's `security.capability` to the host file
/// as it is hands whoever executes that file *on the host* the capabilities the guest
/// chose; a guest's `trusted.*` (overlayfs in the guest keeps its whiteouts there) or
/// `security.selinux` would be read by host software and host LSMs as if the host had set
/// them. Refusing them is safe but breaks what a root guest legitimately does with its own
/// files: `setcap`, overlayfs upper directories, `cp -a`/`tar --xattrs` of such files, and
/// guest LSM labels. Mapping keeps all of that working for the guest, while the host file
/// carries only a `trusted.dpfs.` attribute that grants nothing and that no host kernel
/// code interprets.
///
/// # Why the private prefix is `trusted.dpfs.` and not `user.dpfs.`
/// The mapped attributes are what the guest kernel trusts: a mapped `security.capability`
/// gives capabilities *in the guest*. Under `user.*` anyone who may write the host file could
/// forge them: a host user owning a file in the share sets `user.dpfs.security.capability`
/// and gets guest capabilities by running the file in the guest (and a guest user could do
/// the same while a non-mapping policy was in force). Under `trusted.*` only host root can
/// write them, and a guest reaches them only through the mapping, which only root guests may
/// use. `trusted.*` also works on every file type (`user.*` only on regular files and
/// directories). The price: the daemon needs `CAP_SYS_ADMIN` for these attributes (it has
/// it today; a daemon without it gets EPERM for root guests' privileged attributes, the
/// `refuse` behaviour with another errno), the host file system needs `trusted.*` support,
/// a mapped name is 13 bytes longer (guest names close to the 255-byte limit fail with
/// ERANGE), and the guest no longer sees the host's own `trusted.*` and `security.*`, which
/// it could not have set legitimately anyway.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum XattrPolicy {
    /// Store guest `trusted.X` and `security.X` on the host as `trusted.dpfs.trusted.X` and
    /// `trusted.dpfs.security.X`, and translate them back; the host's own `trusted.*` and
    /// `security.*` are hidden. The private prefix lies inside the mapped namespace (a guest
    /// `trusted.dpfs.X` becomes `trusted.dpfs.trusted.dpfs.X`), so a guest can never name
    /// the private attributes directly, and unprivileged host users cannot write them.
    #[default]
    Map,
    /// Answer EOPNOTSUPP for guest `trusted.*` and `security.*` names (as a file system
    /// without those namespaces does) and hide the host's own from listings.
    Refuse,
    /// Pass every name through unchanged: a root guest sets real `trusted.*` and
    /// `security.*` attributes (file capabilities included) on host files. Only for
    /// deployments where the guest's root is trusted with the host's files.
    Passthrough,
}

impl XattrPolicy {
    /// The names accepted by [`FromStr`](std::str::FromStr), for messages.
    pub const NAMES: &'static str = "map, refuse or passthrough";
}

impl std::str::FromStr for XattrPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<XattrPolicy, String> {
        match s {
            "map" => Ok(XattrPolicy::Map),
            "refuse" => Ok(XattrPolicy::Refuse),
            "passthrough" => Ok(XattrPolicy::Passthrough),
            _ => Err(format!("{s:?} is not an xattr policy (expected {})", XattrPolicy::NAMES)),
        }
    }
}

/// A guest name as the host sees it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HostName<'a> {
    /// The guest's name, unchanged: the caller's credentials apply on the host.
    Same(&'a [u8]),
    /// A name under [`PRIVATE_PREFIX`]: dpfs's own attribute, accessed with the daemon's
    /// credentials once the caller-privilege rules have passed.
    Private(Vec<u8>),
}

impl HostName<'_> {
    /// The bytes to hand to the host.
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            HostName::Same(n) => n,
            HostName::Private(n) => n,
        }
    }
}

/// Names the host kernel guards with capabilities.
fn guarded(name: &[u8]) -> bool {
    name.starts_with(b"trusted.") || name.starts_with(b"security.")
}

fn private(name: &[u8]) -> Vec<u8> {
    [PRIVATE_PREFIX, name].concat()
}

impl XattrPolicy {
    /// The host name for the guest's `name`; EOPNOTSUPP when the policy refuses it.
    pub(crate) fn to_host(self, name: &[u8]) -> Result<HostName<'_>, Errno> {
        match self {
            XattrPolicy::Passthrough => Ok(HostName::Same(name)),
            XattrPolicy::Refuse if guarded(name) => Err(Errno::EOPNOTSUPP),
            XattrPolicy::Refuse => Ok(HostName::Same(name)),
            XattrPolicy::Map if guarded(name) || name.starts_with(PRIVATE_PREFIX) => {
                Ok(HostName::Private(private(name)))
            }
            XattrPolicy::Map => Ok(HostName::Same(name)),
        }
    }

    /// The guest's name for the host's `name`, or `None` when the guest must not see it.
    pub(crate) fn to_guest(self, name: &[u8]) -> Option<Cow<'_, [u8]>> {
        match self {
            XattrPolicy::Passthrough => Some(Cow::Borrowed(name)),
            XattrPolicy::Refuse if guarded(name) => None,
            XattrPolicy::Refuse => Some(Cow::Borrowed(name)),
            XattrPolicy::Map => match name.strip_prefix(PRIVATE_PREFIX) {
                // Only names `to_host` makes come back; anything else under the prefix is
                // not the guest's.
                Some(inner) if guarded(inner) => Some(Cow::Borrowed(inner)),
                Some(_) => None,
                None if guarded(name) => None,
                None => Some(Cow::Borrowed(name)),
            },
        }
    }

    /// The guest's view of a host LISTXATTR buffer (NUL-terminated names): translated by
    /// [`to_guest`](Self::to_guest) and filtered by `show` (the caller-privilege rule).
    pub(crate) fn guest_list(self, host: &[u8], show: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(host.len());
        for name in host.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            if let Some(g) = self.to_guest(name).filter(|g| show(g)) {
                out.extend_from_slice(&g);
                out.push(0);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUEST_NAMES: [&[u8]; 7] = [
        b"user.a",
        b"trusted.overlay.opaque",
        b"security.capability",
        b"security.selinux",
        b"system.posix_acl_access",
        b"trusted.dpfs.trusted.x",
        b"user.dpfs.y",
    ];

    #[test]
    fn map_keeps_privileged_names_off_the_host_and_round_trips() {
        let m = XattrPolicy::Map;
        assert_eq!(m.to_host(b"trusted.foo"), Ok(HostName::Private(b"trusted.dpfs.trusted.foo".to_vec())));
        let cap = b"trusted.dpfs.security.capability".to_vec();
        assert_eq!(m.to_host(b"security.capability"), Ok(HostName::Private(cap)));
        assert_eq!(m.to_host(b"user.a"), Ok(HostName::Same(b"user.a")));
        assert_eq!(m.to_host(b"user.dpfs.trusted.a"), Ok(HostName::Same(b"user.dpfs.trusted.a")));
        assert_eq!(m.to_host(b"system.posix_acl_access"), Ok(HostName::Same(b"system.posix_acl_access")));
        for name in GUEST_NAMES {
            let host = m.to_host(name).unwrap();
            let b = host.bytes();
            assert!(
                !guarded(b) || b.starts_with(PRIVATE_PREFIX),
                "{:?} reaches the host as it is",
                String::from_utf8_lossy(name)
            );
            assert_eq!(m.to_guest(host.bytes()).as_deref(), Some(name), "{:?}", String::from_utf8_lossy(name));
        }
    }

    #[test]
    fn map_cannot_be_bypassed_through_the_private_prefix() {
        let m = XattrPolicy::Map;
        // A guest naming the private form of trusted.x lands one level deeper, not on it.
        let host = m.to_host(b"trusted.dpfs.trusted.x").unwrap();
        assert_eq!(host.bytes(), b"trusted.dpfs.trusted.dpfs.trusted.x");
        assert_ne!(host.bytes(), m.to_host(b"trusted.x").unwrap().bytes());
        // user.* names that look private are plain user attributes both ways.
        assert_eq!(
            m.to_guest(b"user.dpfs.security.capability").as_deref(),
            Some(&b"user.dpfs.security.capability"[..])
        );
        // Host attributes under the prefix the mapping does not make are hidden, and so
        // are the host's own trusted.* and security.*.
        assert_eq!(m.to_guest(b"trusted.dpfs.other"), None);
        assert_eq!(m.to_guest(b"trusted.host"), None);
        assert_eq!(m.to_guest(b"security.selinux"), None);
    }

    #[test]
    fn refuse_and_passthrough() {
        let r = XattrPolicy::Refuse;
        assert_eq!(r.to_host(b"trusted.a"), Err(Errno::EOPNOTSUPP));
        assert_eq!(r.to_host(b"security.capability"), Err(Errno::EOPNOTSUPP));
        assert_eq!(r.to_host(b"user.a"), Ok(HostName::Same(b"user.a")));
        assert_eq!(r.to_guest(b"trusted.a"), None);
        let p = XattrPolicy::Passthrough;
        for name in GUEST_NAMES {
            assert_eq!(p.to_host(name), Ok(HostName::Same(name)));
            assert_eq!(p.to_guest(name).as_deref(), Some(name));
        }
    }

    #[test]
    fn lists_are_translated_and_filtered() {
        let host = b"user.a\0trusted.dpfs.trusted.t\0trusted.host\0trusted.dpfs.security.capability\0\0";
        let all = XattrPolicy::Map.guest_list(host, |_| true);
        assert_eq!(all, b"user.a\0trusted.t\0security.capability\0");
        let no_trusted = XattrPolicy::Map.guest_list(host, |n| !n.starts_with(b"trusted."));
        assert_eq!(no_trusted, b"user.a\0security.capability\0");
        assert_eq!(XattrPolicy::Passthrough.guest_list(b"trusted.x\0", |_| true), b"trusted.x\0");
        assert_eq!(XattrPolicy::Map.guest_list(b"", |_| true), b"");
    }

    #[test]
    fn names_parse() {
        assert_eq!("map".parse(), Ok(XattrPolicy::Map));
        assert_eq!("refuse".parse(), Ok(XattrPolicy::Refuse));
        assert_eq!("passthrough".parse(), Ok(XattrPolicy::Passthrough));
        let e = "mapp".parse::<XattrPolicy>().unwrap_err();
        assert!(e.contains("mapp") && e.contains("passthrough"), "{e}");
    }
}
