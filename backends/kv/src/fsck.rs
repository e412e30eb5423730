//! `dpfs fsck`: checks a volume's keys against each other and, asked to, repairs them.
//!
//! Run it while no daemon serves the volume (a daemon's open orphans would look
//! reclaimable). It reads every key once, then checks:
//! - entries (`D`/`C`) whose directory or inode is missing, and the two halves of an entry
//!   that disagree: the entry goes;
//! - link counts, directory entry counts and `..` pointers against the entries: fixed;
//! - inodes no name reaches: put on the orphan list and reclaimed;
//! - chunks and xattrs of missing inodes (leaked), and chunk/xattr counts: deleted, fixed;
//! - data keys no chunk reference names (left by a crash between storing a chunk's data
//!   and its commit, or between a commit and deleting the data it replaced): deleted;
//!   chunk references whose data is missing (never left by a crash): dropped (a hole);
//! - orphans (files unlinked while open when a daemon stopped): listed, not a fault;
//!   reclaimed by `--repair` (and by the next daemon that starts);
//! - the statfs counters and the superblock's next node id: fixed.

use crate::error::StoreError;
use crate::schema::{self, decode, encode, Dirent, Inode, KeyKind, Super};
use crate::store::{counter, Commit, Store};
use crate::volume::ROOT;
use std::collections::{BTreeMap, BTreeSet};

/// Keys read per batch.
const BATCH: usize = 4096;
/// Writes per repair commit.
const REPAIR_BATCH: usize = 512;

/// One inconsistency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A record that does not decode.
    Corrupt(String),
    /// An entry of a missing (or non-directory) parent, or naming a missing inode.
    DanglingEntry {
        /// Directory.
        parent: u64,
        /// Name.
        name: String,
        /// Inode named.
        ino: u64,
    },
    /// An entry's name and cookie halves disagree.
    EntryHalves {
        /// Directory.
        parent: u64,
        /// Cookie or name, as found.
        what: String,
    },
    /// A stored link count differs from the names found.
    LinkCount {
        /// Inode.
        ino: u64,
        /// Stored.
        stored: u32,
        /// Counted.
        actual: u32,
    },
    /// A directory's entry count or `..` differs from what was found.
    DirCounts(u64),
    /// An inode that no name reaches and that is not an orphan.
    Unreachable(u64),
    /// Chunks or xattrs of an inode that does not exist.
    Leaked {
        /// The missing inode.
        ino: u64,
        /// Keys found.
        keys: usize,
    },
    /// Data keys of inode `ino` that no chunk reference names.
    LeakedData {
        /// The inode (it may be gone).
        ino: u64,
        /// Data keys found.
        keys: usize,
    },
    /// A chunk reference whose data key is missing.
    MissingData {
        /// The inode.
        ino: u64,
        /// The chunk.
        chunk: u64,
    },
    /// An inode's chunk or xattr count differs from its keys.
    DataCounts(u64),
    /// An orphan key that names a missing or named inode.
    Orphan(u64),
    /// The statfs counters or the next node id are off.
    Counters,
}

/// What fsck found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every problem found.
    pub problems: Vec<Problem>,
    /// Inodes unlinked while open when their daemon stopped: not a fault (the next daemon
    /// to start reclaims them, as does `--repair`).
    pub orphans: Vec<u64>,
    /// Keys read.
    pub keys: usize,
    /// Whether the problems were repaired.
    pub repaired: bool,
}

impl Report {
    /// True if nothing was wrong.
    pub fn clean(&self) -> bool {
        self.problems.is_empty()
    }
}

#[derive(Default)]
struct Volume {
    sup: Option<(Vec<u8>, Super)>,
    counters: BTreeMap<Vec<u8>, i64>,
    inodes: BTreeMap<u64, Inode>,
    dentries: Vec<(u64, Dirent)>,
    cookies: BTreeMap<(u64, u64), Dirent>,
    chunks: BTreeMap<u64, Vec<Vec<u8>>>,
    /// Chunk references: (inode, chunk) → generation.
    refs: BTreeMap<(u64, u64), u64>,
    /// Data keys: (inode, chunk, generation).
    data: BTreeSet<(u64, u64, u64)>,
    xattrs: BTreeMap<u64, Vec<Vec<u8>>>,
    orphans: BTreeSet<u64>,
}

async fn load<S: Store>(store: &S, report: &mut Report) -> Result<Volume, StoreError> {
    let mut v = Volume::default();
    let mut after = Vec::new();
    loop {
        let batch = store.scan_all(&after, BATCH).await?;
        let n = batch.len();
        for (k, val) in batch {
            report.keys += 1;
            let bad = |e: StoreError| Problem::Corrupt(e.to_string());
            match schema::kind(&k) {
                KeyKind::Meta if k == schema::super_key() => match decode::<Super>(&k, &val) {
                    Ok(s) => v.sup = Some((k.clone(), s)),
                    Err(e) => report.problems.push(bad(e)),
                },
                KeyKind::Meta => {
                    v.counters.insert(k.clone(), counter(Some(&val)));
                }
                KeyKind::Inode(i) => match decode::<Inode>(&k, &val) {
                    Ok(ino) => {
                        v.inodes.insert(i, ino);
                    }
                    Err(e) => report.problems.push(bad(e)),
                },
                KeyKind::Dentry(p, _) => match decode::<Dirent>(&k, &val) {
                    Ok(d) => v.dentries.push((p, d)),
                    Err(e) => report.problems.push(bad(e)),
                },
                KeyKind::Cookie(p, c) => match decode::<Dirent>(&k, &val) {
                    Ok(d) => {
                        v.cookies.insert((p, c), d);
                    }
                    Err(e) => report.problems.push(bad(e)),
                },
                KeyKind::Chunk(i, c) => {
                    v.chunks.entry(i).or_default().push(k.clone());
                    match schema::ref_gen(&k, &val) {
                        Ok(g) => {
                            v.refs.insert((i, c), g);
                        }
                        Err(e) => report.problems.push(bad(e)),
                    }
                }
                KeyKind::Data(i, c, g) => {
                    v.data.insert((i, c, g));
                }
                KeyKind::Xattr(i) => v.xattrs.entry(i).or_default().push(k.clone()),
                KeyKind::Orphan(i) => {
                    v.orphans.insert(i);
                }
                KeyKind::Unknown => report.problems.push(Problem::Corrupt(format!("unknown key {k:?}"))),
            }
            after = k;
        }
        if n < BATCH {
            return Ok(v);
        }
    }
}

/// Checks volume `store`; with `repair`, also fixes what it found.
pub async fn check<S: Store>(store: &S, repair: bool) -> Result<Report, StoreError> {
    let mut report = Report::default();
    let v = load(store, &mut report).await?;
    if let Some((_, sb)) = v.sup.as_ref().filter(|(_, sb)| sb.version != schema::VERSION || sb.chunk != schema::CHUNK) {
        // Another format's keys mean other things: checking (or repairing) them as ours
        // would destroy the volume.
        return Err(StoreError::Corrupt { key: "S".into(), why: crate::volume::format_mismatch(sb) });
    }
    if v.sup.is_none() && v.inodes.is_empty() && report.problems.is_empty() {
        return Ok(report); // no volume by that name: nothing to check
    }
    let mut fix = Commit::default();
    let mut data_dels: Vec<Vec<u8>> = Vec::new();
    // Chunk references whose data is missing go (the chunk reads as a hole).
    let mut dropped: BTreeMap<u64, u64> = BTreeMap::new();
    for (&(ino, c), &g) in &v.refs {
        if g != schema::ZERO_GEN && !v.data.contains(&(ino, c, g)) && v.inodes.contains_key(&ino) {
            report.problems.push(Problem::MissingData { ino, chunk: c });
            fix.writes.push((schema::chunk_key(ino, c), None));
            *dropped.entry(ino).or_default() += 1;
        }
    }
    let dt_dir = libc::S_IFDIR >> 12;
    // Entries: both halves present and agreeing, parent a directory, inode present.
    let mut names: BTreeMap<u64, u32> = BTreeMap::new();
    let mut subdirs: BTreeMap<u64, u32> = BTreeMap::new();
    let mut entries: BTreeMap<u64, u64> = BTreeMap::new();
    let mut parent_of: BTreeMap<u64, u64> = BTreeMap::new();
    let mut good_cookies = BTreeSet::new();
    for (p, d) in &v.dentries {
        let parent_ok = v.inodes.get(p).is_some_and(Inode::is_dir);
        if !parent_ok || !v.inodes.contains_key(&d.ino) {
            report.problems.push(Problem::DanglingEntry {
                parent: *p,
                name: String::from_utf8_lossy(&d.name).into_owned(),
                ino: d.ino,
            });
            fix.writes.push((schema::dentry_key(*p, &d.name), None));
            fix.writes.push((schema::cookie_key(*p, d.cookie), None));
            continue;
        }
        if v.cookies.get(&(*p, d.cookie)) != Some(d) {
            report.problems.push(Problem::EntryHalves { parent: *p, what: String::from_utf8_lossy(&d.name).into() });
            fix.writes.push((schema::cookie_key(*p, d.cookie), Some(encode(d))));
        }
        good_cookies.insert((*p, d.cookie));
        *names.entry(d.ino).or_default() += 1;
        *entries.entry(*p).or_default() += 1;
        if d.typ == dt_dir {
            *subdirs.entry(*p).or_default() += 1;
            parent_of.insert(d.ino, *p);
        }
    }
    for ((p, c), d) in &v.cookies {
        if !good_cookies.contains(&(*p, *c)) && !fix.writes.iter().any(|(k, _)| *k == schema::cookie_key(*p, *c)) {
            report.problems.push(Problem::EntryHalves { parent: *p, what: format!("cookie {c} ({:?})", d.name) });
            fix.writes.push((schema::cookie_key(*p, *c), None));
        }
    }
    // Inodes: link counts, directory counts, reachability, data counts.
    let (mut n_inodes, mut bytes) = (0i64, 0i64);
    let mut reclaim = Vec::new();
    for (&ino, i) in &v.inodes {
        let mut new = i.clone();
        let named = names.get(&ino).copied().unwrap_or(0);
        if ino != ROOT && named == 0 {
            if i.nlink > 0 || !v.orphans.contains(&ino) {
                report.problems.push(Problem::Unreachable(ino));
            } else {
                report.orphans.push(ino);
            }
            reclaim.push(ino);
            continue;
        }
        let want_nlink = if i.is_dir() { 2 + subdirs.get(&ino).copied().unwrap_or(0) } else { named };
        if i.nlink != want_nlink {
            report.problems.push(Problem::LinkCount { ino, stored: i.nlink, actual: want_nlink });
            new.nlink = want_nlink;
        }
        if i.is_dir() {
            let want_parent = if ino == ROOT { ROOT } else { parent_of.get(&ino).copied().unwrap_or(ROOT) };
            let want_entries = entries.get(&ino).copied().unwrap_or(0);
            if i.entries != want_entries || i.parent != want_parent {
                report.problems.push(Problem::DirCounts(ino));
                (new.entries, new.parent) = (want_entries, want_parent);
            }
            let max_cookie = v.cookies.range((ino, 0)..=(ino, u64::MAX)).map(|((_, c), _)| *c).max().unwrap_or(2);
            new.next_cookie = new.next_cookie.max(max_cookie + 1);
        }
        let chunks = v.chunks.get(&ino).map_or(0, Vec::len) as u64;
        let chunks = chunks.saturating_sub(dropped.get(&ino).copied().unwrap_or(0));
        let xattrs = v.xattrs.get(&ino).map_or(0, Vec::len) as u32;
        if (i.inline.is_none() && i.chunks != chunks) || i.xattrs != xattrs {
            report.problems.push(Problem::DataCounts(ino));
            new.chunks = if i.inline.is_none() { chunks } else { 0 };
            new.xattrs = xattrs;
        }
        if v.orphans.contains(&ino) {
            // Named again: the orphan key is stale.
            report.problems.push(Problem::Orphan(ino));
            fix.writes.push((schema::orphan_key(ino), None));
        }
        if new != *i {
            fix.writes.push((schema::inode_key(ino), Some(encode(&new))));
        }
        n_inodes += 1;
        bytes += new.alloc_bytes() as i64;
    }
    for &ino in &reclaim {
        fix.writes.push((schema::inode_key(ino), None));
        fix.writes.push((schema::orphan_key(ino), None));
        for k in v.chunks.get(&ino).into_iter().chain(v.xattrs.get(&ino)).flatten() {
            fix.writes.push((k.clone(), None));
        }
    }
    for (ino, keys) in v.chunks.iter().chain(&v.xattrs) {
        if !v.inodes.contains_key(ino) {
            report.problems.push(Problem::Leaked { ino: *ino, keys: keys.len() });
            fix.writes.extend(keys.iter().map(|k| (k.clone(), None)));
        }
    }
    // Data keys: kept only if a reference of a live inode names them.
    let live = |ino: &u64| v.inodes.contains_key(ino) && !reclaim.contains(ino);
    let mut leaked: BTreeMap<u64, usize> = BTreeMap::new();
    for &(ino, c, g) in &v.data {
        if live(&ino) && v.refs.get(&(ino, c)) == Some(&g) {
            continue;
        }
        data_dels.push(schema::data_key(ino, c, g));
        if !reclaim.contains(&ino) {
            *leaked.entry(ino).or_default() += 1;
        }
    }
    for (ino, keys) in leaked {
        report.problems.push(Problem::LeakedData { ino, keys });
    }
    for ino in &v.orphans {
        if !v.inodes.contains_key(ino) {
            report.problems.push(Problem::Orphan(*ino));
            fix.writes.push((schema::orphan_key(*ino), None));
        }
    }
    // Counters and the next node id.
    let stored = |k: Vec<u8>| v.counters.get(&k).copied().unwrap_or(0);
    let (di, db) = (n_inodes - stored(schema::inodes_key()), bytes - stored(schema::bytes_key()));
    let max_ino = v.inodes.keys().next_back().copied().unwrap_or(ROOT);
    let sup_off = v.sup.as_ref().is_none_or(|(_, s)| s.next_ino <= max_ino);
    if di != 0 || db != 0 || sup_off {
        report.problems.push(Problem::Counters);
        fix.adds.push((schema::inodes_key(), di));
        fix.adds.push((schema::bytes_key(), db));
        if sup_off {
            let s = Super { version: schema::VERSION, chunk: schema::CHUNK, next_ino: max_ino + 1 };
            fix.writes.push((schema::super_key(), Some(encode(&s))));
        }
    }
    if repair && !(report.clean() && report.orphans.is_empty()) {
        apply(store, fix).await?;
        for batch in data_dels.chunks(REPAIR_BATCH) {
            store.del_data(batch.to_vec()).await?;
        }
        report.repaired = true;
    }
    Ok(report)
}

/// Applies the repairs in batches (no checks: the volume is not being served).
async fn apply<S: Store>(store: &S, fix: Commit) -> Result<(), StoreError> {
    let adds = fix.adds;
    let mut writes = fix.writes.into_iter().peekable();
    let mut first = true;
    while writes.peek().is_some() || first {
        let batch: Vec<_> = writes.by_ref().take(REPAIR_BATCH).collect();
        let c = Commit { checks: Vec::new(), writes: batch, adds: if first { adds.clone() } else { Vec::new() } };
        first = false;
        store.commit(&c).await?;
    }
    Ok(())
}
