//! The committed baseline of a gate: figures per case, regression limits, and what the
//! figures were measured with.
//!
//! ```toml
//! [meta]                      # what the figures depend on (toolchain, valgrind…)
//! rustc = "1.95.0"
//! [limits]
//! default = 2.0               # percent; kept by hand
//! [limits.cases]
//! "hal/vring_getattr" = 3.0   # a noisier case
//! [cases]                     # rewritten by `--update`
//! "null/getattr" = 1234
//! ```

use crate::compare::Limits;
use crate::Error;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// A baseline file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Baseline {
    /// What the figures were measured with (tool versions): a mismatch explains a change.
    #[serde(default)]
    pub meta: BTreeMap<String, String>,
    /// Regression limits.
    #[serde(default)]
    pub limits: LimitsFile,
    /// The figures, by case name (whole numbers are written without a fraction).
    #[serde(default, serialize_with = "figures")]
    pub cases: BTreeMap<String, f64>,
}

/// The `[limits]` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsFile {
    /// Percent any case may regress.
    pub default: f64,
    /// Per-case overrides in percent.
    #[serde(default)]
    pub cases: BTreeMap<String, f64>,
}

impl Default for LimitsFile {
    fn default() -> LimitsFile {
        LimitsFile { default: 2.0, cases: BTreeMap::new() }
    }
}

/// Writes whole figures (instruction counts) as TOML integers.
fn figures<S: serde::Serializer>(cases: &BTreeMap<String, f64>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(cases.len()))?;
    for (k, v) in cases {
        if v.fract() == 0.0 && v.abs() < 9e15 {
            map.serialize_entry(k, &(*v as i64))?;
        } else {
            map.serialize_entry(k, v)?;
        }
    }
    map.end()
}

/// Table `key` of `doc`, created (or replacing a non-table value) if need be.
fn table_mut<'d>(doc: &'d mut toml_edit::DocumentMut, key: &str) -> &'d mut toml_edit::Table {
    if !doc.get(key).is_some_and(|i| i.is_table()) {
        doc.insert(key, toml_edit::Item::Table(toml_edit::Table::new()));
    }
    match doc.get_mut(key).and_then(|i| i.as_table_mut()) {
        Some(t) => t,
        None => unreachable!("inserted above"),
    }
}

impl Baseline {
    /// Reads and checks `path`; errors name the file and the bad key.
    pub fn load(path: &Path) -> Result<Baseline, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
        Baseline::parse(&text).map_err(|msg| Error::Parse { path: path.into(), msg })
    }

    /// Parses the TOML text of a baseline.
    pub fn parse(text: &str) -> Result<Baseline, String> {
        let b: Baseline = toml::from_str(text).map_err(|e| e.to_string())?;
        let limits =
            std::iter::once(("default", b.limits.default)).chain(b.limits.cases.iter().map(|(k, v)| (k.as_str(), *v)));
        for (name, pct) in limits {
            if !pct.is_finite() || pct < 0.0 {
                return Err(format!("limit {name:?} must be a percentage >= 0, not {pct}"));
            }
        }
        if let Some((name, v)) = b.cases.iter().find(|(_, v)| !v.is_finite()) {
            return Err(format!("case {name:?} has no finite figure ({v})"));
        }
        Ok(b)
    }

    /// The limits in the form [`compare`](crate::compare()) takes.
    pub fn limits(&self) -> Limits {
        Limits { default_pct: self.limits.default, per_case: self.limits.cases.clone() }
    }

    /// Writes `[meta]` and `[cases]` into the existing file at `path`, keeping everything
    /// else as it is (the hand-kept `[limits]` and their comments); a missing file is
    /// written whole with `header` on top, as [`save`](Self::save) does.
    pub fn update_file(&self, path: &Path, header: &str) -> Result<(), Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return self.save(path, header),
            Err(source) => return Err(Error::Io { path: path.into(), source }),
        };
        let parse_err = |msg: String| Error::Parse { path: path.into(), msg };
        let mut doc: toml_edit::DocumentMut =
            text.parse().map_err(|e: toml_edit::TomlError| parse_err(e.to_string()))?;
        // Entries are replaced inside the existing tables, so their comments stay.
        let meta = table_mut(&mut doc, "meta");
        meta.clear();
        for (k, v) in &self.meta {
            meta.insert(k, toml_edit::value(v.as_str()));
        }
        let cases = table_mut(&mut doc, "cases");
        cases.clear();
        for (k, v) in &self.cases {
            let item =
                if v.fract() == 0.0 && v.abs() < 9e15 { toml_edit::value(*v as i64) } else { toml_edit::value(*v) };
            cases.insert(k, item);
        }
        std::fs::write(path, doc.to_string()).map_err(|source| Error::Io { path: path.into(), source })
    }

    /// Writes the baseline to `path` with `header` (comment lines, without `#`) on top.
    pub fn save(&self, path: &Path, header: &str) -> Result<(), Error> {
        let body = toml::to_string(self).map_err(|e| Error::Parse { path: path.into(), msg: e.to_string() })?;
        let mut text: String = header.lines().map(|l| format!("# {l}\n")).collect();
        text.push_str(&body);
        std::fs::write(path, text).map_err(|source| Error::Io { path: path.into(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() {
        let mut b = Baseline::default();
        b.meta.insert("rustc".into(), "1.95.0".into());
        b.limits.cases.insert("hal/x".into(), 5.0);
        b.cases.insert("null/getattr".into(), 1234.0);
        b.cases.insert("iops".into(), 1.5);
        let dir = std::env::temp_dir().join(format!("dpfs-gate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.toml");
        b.save(&path, "written by a test\nsecond line").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("# written by a test\n# second line\n"), "{text}");
        assert!(text.contains("\"null/getattr\" = 1234\n") && text.contains("iops = 1.5"), "{text}");
        assert_eq!(Baseline::load(&path).unwrap(), b);
        assert_eq!(b.limits().for_case("hal/x"), 5.0);
        assert_eq!(b.limits().for_case("other"), 2.0);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn updating_keeps_hand_written_limits_and_comments() {
        let dir = std::env::temp_dir().join(format!("dpfs-gate-upd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.toml");
        let hand = "# top\n[meta]\nrustc = \"1.0\"\n[limits]\ndefault = 2.0\n\n[limits.cases]\n# why it is noisy\n\"x/y\" = 5.0\n\n[cases]\n\"old\" = 1\n";
        std::fs::write(&path, hand).unwrap();
        let mut b = Baseline::load(&path).unwrap();
        b.cases = [("new/case".to_string(), 77.0)].into_iter().collect();
        b.meta.insert("rustc".into(), "1.95.0".into());
        b.update_file(&path, "unused").unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("# why it is noisy") && text.contains("# top"), "{text}");
        let again = Baseline::load(&path).unwrap();
        assert_eq!(again.cases, b.cases);
        assert_eq!(again.limits().for_case("x/y"), 5.0);
        assert_eq!(again.meta["rustc"], "1.95.0");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn bad_files_name_the_key() {
        let e = Baseline::parse("[limits]\ndefault = -1.0\n").unwrap_err();
        assert!(e.contains("default"), "{e}");
        let e = Baseline::parse("[limits]\ndefault = 2.0\n[limits.cases]\n\"a/b\" = -3.0\n").unwrap_err();
        assert!(e.contains("a/b"), "{e}");
        let e = Baseline::parse("[case]\nx = 1\n").unwrap_err();
        assert!(e.contains("case"), "{e}");
    }

    #[test]
    fn a_missing_file_names_the_path() {
        let e = Baseline::load(Path::new("/nonexistent/baseline.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/baseline.toml"), "{e}");
    }
}
