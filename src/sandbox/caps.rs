//! Capabilities: the set each backend keeps, `--modcaps` edits, and dropping the rest
//! (effective, permitted, inheritable, ambient and bounding sets).

use anyhow::{bail, Context as _};

/// Capability names by number (`capability.h`), lower case without `cap_`.
const NAMES: &[&str] = &[
    "chown",
    "dac_override",
    "dac_read_search",
    "fowner",
    "fsetid",
    "kill",
    "setgid",
    "setuid",
    "setpcap",
    "linux_immutable",
    "net_bind_service",
    "net_broadcast",
    "net_admin",
    "net_raw",
    "ipc_lock",
    "ipc_owner",
    "sys_module",
    "sys_rawio",
    "sys_chroot",
    "sys_ptrace",
    "sys_pacct",
    "sys_admin",
    "sys_boot",
    "sys_nice",
    "sys_resource",
    "sys_time",
    "sys_tty_config",
    "mknod",
    "lease",
    "audit_write",
    "audit_control",
    "setfcap",
    "mac_override",
    "mac_admin",
    "syslog",
    "wake_alarm",
    "block_suspend",
    "audit_read",
    "perfmon",
    "bpf",
    "checkpoint_restore",
];

/// A set of capabilities (bit `n` = capability `n`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CapSet(pub u64);

impl CapSet {
    /// The set holding the named capabilities (names as in [`NAMES`]).
    pub fn of(names: &[&str]) -> CapSet {
        CapSet(names.iter().filter_map(|n| number(n)).fold(0, |m, n| m | (1 << n)))
    }

    /// Applies `--modcaps`: a comma-separated list of `+cap` / `-cap` (`cap_` prefix and
    /// case optional), e.g. `+sys_admin,-mknod`.
    pub fn modify(mut self, spec: &str) -> anyhow::Result<CapSet> {
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (add, name) = match item.split_at(1) {
                ("+", n) => (true, n),
                ("-", n) => (false, n),
                _ => bail!("--modcaps {item:?}: each entry is +CAP or -CAP"),
            };
            let n = number(name).with_context(|| format!("--modcaps: unknown capability {name:?}"))?;
            if add {
                self.0 |= 1 << n;
            } else {
                self.0 &= !(1 << n);
            }
        }
        Ok(self)
    }

    /// The names in the set, comma-separated (`none` when empty).
    pub fn names(&self) -> String {
        let v: Vec<&str> = (0..NAMES.len()).filter(|&n| self.0 & (1 << n) != 0).map(|n| NAMES[n]).collect();
        if v.is_empty() {
            "none".into()
        } else {
            v.join(",")
        }
    }
}

fn number(name: &str) -> Option<u32> {
    let lower = name.to_ascii_lowercase();
    let n = lower.strip_prefix("cap_").unwrap_or(&lower);
    NAMES.iter().position(|&x| x == n).map(|p| p as u32)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const CAP_VERSION_3: u32 = 0x2008_0522;

/// Keeps only `keep` in this thread's effective and permitted sets (threads started later
/// inherit them), clears the inheritable and ambient sets and drops everything else from
/// the bounding set. Call while the process has one thread.
pub fn restrict(keep: CapSet) -> anyhow::Result<()> {
    for cap in 0..64u64 {
        if keep.0 & (1 << cap) != 0 {
            continue;
        }
        // SAFETY: prctl with integer arguments; EINVAL past the last capability.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
        if r != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINVAL) {
                break;
            }
            return Err(e).context("prctl(PR_CAPBSET_DROP)");
        }
    }
    // SAFETY: prctl with integer arguments.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong, 0, 0, 0) };
    let mut hdr = CapHeader { version: CAP_VERSION_3, pid: 0 };
    let lo = keep.0 as u32;
    let hi = (keep.0 >> 32) as u32;
    let data = [
        CapData { effective: lo, permitted: lo, inheritable: 0 },
        CapData { effective: hi, permitted: hi, inheritable: 0 },
    ];
    // SAFETY: header and two data structs of the v3 layout, valid for the call.
    let r = unsafe { libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr()) };
    if r != 0 {
        return Err(std::io::Error::last_os_error()).context("capset");
    }
    Ok(())
}

/// This thread's effective capabilities.
pub fn effective() -> CapSet {
    let mut hdr = CapHeader { version: CAP_VERSION_3, pid: 0 };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and room for two v3 data structs.
    let r = unsafe { libc::syscall(libc::SYS_capget, &mut hdr as *mut CapHeader, data.as_mut_ptr()) };
    if r != 0 {
        return CapSet(0);
    }
    CapSet(u64::from(data[0].effective) | (u64::from(data[1].effective) << 32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modcaps_adds_and_removes() {
        let s = CapSet::of(&["chown", "mknod"]);
        assert_eq!(s.0, 1 | (1 << 27));
        let s = s.modify("+CAP_SYS_ADMIN,-mknod").unwrap();
        assert_eq!(s.names(), "chown,sys_admin");
        assert!(s.modify("sys_admin").is_err());
        assert!(s.modify("+nonsense").is_err());
        assert_eq!(CapSet(0).names(), "none");
        assert_eq!(NAMES.len(), 41);
    }
}
