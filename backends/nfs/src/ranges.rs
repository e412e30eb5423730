//! The byte ranges one lock owner holds on one open file, kept as POSIX does (a new lock
//! replaces whatever of the owner's it overlaps; an unlock may split a range), so the locks
//! can be reclaimed after a server restart.

use std::collections::BTreeMap;

/// Locked ranges: start → (end, inclusive; exclusive or not). Ends are FUSE's (`i64::MAX`
/// or more: to the end of the file).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Ranges(BTreeMap<u64, (u64, bool)>);

impl Ranges {
    /// Records a granted lock on `start..=end`.
    pub fn lock(&mut self, start: u64, end: u64, write: bool) {
        self.unlock(start, end);
        self.0.insert(start, (end, write));
    }

    /// Forgets `start..=end`, keeping what lies outside it of any range it overlaps.
    pub fn unlock(&mut self, start: u64, end: u64) {
        let overlapping: Vec<(u64, (u64, bool))> =
            self.0.range(..=end).filter(|(_, (e, _))| *e >= start).map(|(s, v)| (*s, *v)).collect();
        for (s, (e, write)) in overlapping {
            self.0.remove(&s);
            if s < start {
                self.0.insert(s, (start - 1, write));
            }
            if e > end {
                self.0.insert(end + 1, (e, write));
            }
        }
    }

    /// The ranges, by start: (start, end inclusive, exclusive).
    pub fn iter(&self) -> impl Iterator<Item = (u64, u64, bool)> + '_ {
        self.0.iter().map(|(s, (e, w))| (*s, *e, *w))
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The model: who holds each of the first 64 bytes.
    fn bytes(r: &Ranges) -> Vec<Option<bool>> {
        let mut v = vec![None; 64];
        for (s, e, w) in r.iter() {
            for b in v.iter_mut().take(e.min(63) as usize + 1).skip(s as usize) {
                assert!(b.is_none(), "ranges overlap: {r:?}");
                *b = Some(w);
            }
        }
        v
    }

    proptest! {
        #[test]
        fn ranges_follow_posix_byte_by_byte(ops in proptest::collection::vec((0u64..64, 0u64..64, 0u8..3), 0..30)) {
            let mut r = Ranges::default();
            let mut model = vec![None; 64];
            for (a, b, kind) in ops {
                let (s, e) = (a.min(b), a.max(b));
                match kind {
                    0 => r.unlock(s, e),
                    k => r.lock(s, e, k == 2),
                }
                for m in model.iter_mut().take(e as usize + 1).skip(s as usize) {
                    *m = if kind == 0 { None } else { Some(kind == 2) };
                }
                prop_assert_eq!(bytes(&r), model.clone());
            }
        }
    }

    #[test]
    fn to_the_end_of_the_file_splits_and_clears() {
        let mut r = Ranges::default();
        r.lock(10, u64::MAX, true);
        r.unlock(20, 29);
        assert_eq!(r.iter().collect::<Vec<_>>(), vec![(10, 19, true), (30, u64::MAX, true)]);
        r.unlock(0, u64::MAX);
        assert!(r.is_empty());
    }
}
