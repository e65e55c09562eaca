//! `manifest.json`: what a result was made from and what it holds — run id, command line,
//! version, the scene and model files, a fingerprint of every input (path, size, modification
//! time, SHA-256) and every output file with its SHA-256, size and row count. Commands that
//! read a result back (`report`, `balance --cube`, `merge`) verify it first and refuse a
//! folder whose files do not belong together.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Name of the manifest in a result folder.
pub const FILE_NAME: &str = "manifest.json";
/// Format tag of the manifest.
pub const FORMAT: &str = "sinkmap-manifest/1";

/// Names the run writes at the top of its output folder.
pub const RUN_OUTPUTS: &[&str] = &[
    "stock_tc_per_ha.tif",
    "sink_tco2_per_ha_yr.tif",
    "potential_tco2_per_ha_yr.tif",
    "best_intervention.tif",
    "summary.json",
    "cube.csv",
    "zones.csv",
    "zones.geojson",
    "trajectory.csv",
    "sink_inputs.csv",
    "balance.csv",
    "accounting.json",
    "report.html",
    "report",
];
/// Names `balance` (and the accounting of `run`) writes.
pub const ACCOUNTING_OUTPUTS: &[&str] = &[
    "trajectory.csv",
    "sink_inputs.csv",
    "balance.csv",
    "accounting.json",
    "summary.json",
];
/// Names `balance --series` writes besides [`ACCOUNTING_OUTPUTS`]: history + projection.
pub const HISTORY_OUTPUTS: &[&str] = &["history_projection.csv", "history_projection.png"];
/// Names `report` writes.
pub const REPORT_OUTPUTS: &[&str] = &["report.html", "report"];
/// Names `change` writes.
pub const CHANGE_OUTPUTS: &[&str] = &[
    "stock_change_tc_per_ha.tif",
    "transition.csv",
    "change_zones.csv",
    "change.json",
];
/// Names `project` writes.
pub const PROJECT_OUTPUTS: &[&str] = &["project.csv", "project.json"];
/// Names `fit` writes (besides its charts).
pub const FIT_OUTPUTS: &[&str] = &["fit_table.csv", "fit_table.md", "forest.toml"];
/// `series` also writes `forest_age_YEAR.tif` (the last year's ages).
pub const SERIES_OUTPUTS: &[&str] = &["series.csv", "series_transitions.csv"];
/// Names `assess` writes.
pub const ASSESS_OUTPUTS: &[&str] = &[
    "error_matrix_counts.csv",
    "error_matrix_area_proportions.csv",
    "accuracy.csv",
    "adjusted_area.csv",
    "assessment.json",
];
/// Names `sample` writes.
pub const SAMPLE_OUTPUTS: &[&str] = &["sample_points.gpkg", "sample_points.csv", "allocation.csv"];
/// Names `calibrate` writes (besides an optional map).
pub const CALIBRATE_OUTPUTS: &[&str] = &[
    "calibration_plots.csv",
    "residuals.csv",
    "calibrated_totals.csv",
    "calibration.json",
];
/// A synthetic scene (`synth`); `--years` adds `landcover_YEAR.tif` and `events_YEAR.tif`.
/// Not among [`is_known_output`]: these are inputs of other commands, never removed.
pub const SYNTH_OUTPUTS: &[&str] = &[
    "scene.toml",
    "landcover.tif",
    "forest_age.tif",
    "forest_type.tif",
    "water_access.tif",
    "degraded_grassland.tif",
    "desert_subtype.tif",
    "synth_stats.json",
    "zones.geojson",
    "rollout.toml",
];
/// Names `bench` writes beside its scene.
pub const BENCH_OUTPUTS: &[&str] = &["bench.json", "bench_series.json"];

/// Whether `name` is one a sinkmap command writes at the top of an output folder (plain files
/// of older versions with such names are removed when a new set no longer has them).
pub fn is_known_output(name: &str) -> bool {
    [
        RUN_OUTPUTS,
        ACCOUNTING_OUTPUTS,
        HISTORY_OUTPUTS,
        CHANGE_OUTPUTS,
        PROJECT_OUTPUTS,
        FIT_OUTPUTS,
        SERIES_OUTPUTS,
        ASSESS_OUTPUTS,
        SAMPLE_OUTPUTS,
        CALIBRATE_OUTPUTS,
        BENCH_OUTPUTS,
    ]
    .iter()
    .any(|l| l.contains(&name))
        || name == FILE_NAME
        || (name.starts_with("fit_") && name.ends_with(".png"))
}

/// An input file as the command read it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Fingerprint {
    /// What the file is to the command: scene, landcover, forest_age, zones, model, rollout, …
    pub role: String,
    /// Absolute path.
    pub path: String,
    /// Size.
    pub size_bytes: u64,
    /// Modification time, seconds since 1970.
    pub mtime_unix_s: i64,
    /// Nanoseconds of the modification time.
    pub mtime_ns: u32,
    /// SHA-256 of the content.
    pub sha256: String,
}

/// An output file of the result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OutputEntry {
    /// Path inside the result folder, `/`-separated.
    pub name: String,
    /// Size.
    pub size_bytes: u64,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Data rows (lines after the header) of a CSV file.
    pub rows: Option<u64>,
}

/// `manifest.json`: what made a result folder and what it holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: String,
    /// Unique id of the publication.
    pub run_id: String,
    /// The command that made the set (`run`, `balance`, …).
    pub command: String,
    /// The full command line.
    pub command_line: Vec<String>,
    /// sinkmap version.
    pub version: String,
    /// Creation time, seconds since 1970.
    pub created_unix_s: u64,
    /// The run this set extends (`balance`, `report` keep the files of the set they read).
    #[serde(default)]
    pub based_on: Option<String>,
    /// SHA-256 of the scene file, when the command has a scene.
    #[serde(default)]
    pub scene_sha256: Option<String>,
    /// `I/N` for a partial result of `run --tile I/N`.
    #[serde(default)]
    pub tile: Option<String>,
    /// Every input file.
    pub inputs: Vec<Fingerprint>,
    /// Every output file.
    pub outputs: Vec<OutputEntry>,
    /// What fingerprinting the inputs cost in this run (absent in older manifests).
    #[serde(default)]
    pub fingerprint_cost: Option<FingerprintCost>,
}

/// The cost of the input fingerprints of one run: content hashed now, and content whose hash
/// was reused from the output folder's cache because the file is provably unchanged.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FingerprintCost {
    /// Wall time spent on fingerprints (s).
    pub seconds: f64,
    /// Files whose content was hashed now.
    pub hashed_files: usize,
    /// Bytes hashed now.
    pub hashed_bytes: u64,
    /// Files whose hash came from the cache.
    pub reused_files: usize,
    /// Bytes not read again thanks to the cache.
    pub reused_bytes: u64,
}

impl Manifest {
    /// An empty manifest for `command`, stamped with this process's command line, version and time.
    pub fn new(command: &str) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            run_id: String::new(),
            command: command.into(),
            command_line: std::env::args().collect(),
            version: env!("CARGO_PKG_VERSION").into(),
            created_unix_s: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            based_on: None,
            scene_sha256: None,
            tile: None,
            inputs: Vec::new(),
            outputs: Vec::new(),
            fingerprint_cost: None,
        }
    }

    /// A manifest for a set that extends `base` (its inputs are kept).
    pub fn extending(command: &str, base: &Manifest) -> Manifest {
        Manifest {
            based_on: Some(base.run_id.clone()),
            scene_sha256: base.scene_sha256.clone(),
            tile: base.tile.clone(),
            inputs: base.inputs.clone(),
            ..Manifest::new(command)
        }
    }

    /// Adds the fingerprints of `inputs` (role, path), hashing them in parallel.
    pub fn fingerprint_inputs(&mut self, inputs: &[(String, PathBuf)]) -> Result<()> {
        self.fingerprint_inputs_cached(inputs, None).map(|_| ())
    }

    /// Adds the fingerprints of `inputs`, reusing the content hash recorded in `cache` (a
    /// [`FingerprintCache`] file) for every file whose device, inode, size, modification time
    /// and change time are all unchanged, hashing the others in parallel; the cache is
    /// rewritten with what was seen. Returns (and records) what it cost.
    pub fn fingerprint_inputs_cached(
        &mut self,
        inputs: &[(String, PathBuf)],
        cache: Option<&Path>,
    ) -> Result<FingerprintCost> {
        use rayon::prelude::*;
        let t = std::time::Instant::now();
        let mut known = cache.map(FingerprintCache::read).unwrap_or_default();
        // (fingerprint, key, Some(cacheable) when hashed now / None when reused)
        let done: Vec<(Fingerprint, CacheKey, Option<bool>)> = inputs
            .par_iter()
            .map(|(role, p)| {
                let (key, md) = CacheKey::of(p)?;
                if let Some(sha) = known.lookup(&key) {
                    return Ok((fingerprint_with(role, p, &md, sha.to_string()), key, None));
                }
                let (sha, _) = sha256_of(p)?;
                // Changed while hashed, the hash may mix two versions; changed less than a
                // second ago, a further write could keep the same times (timestamps are
                // coarser than writes). Either way the hash is not cached.
                let stable = CacheKey::of(p).is_ok_and(|(k, _)| k == key);
                let settled = now_ns() - key.ctime_ns > 1_000_000_000;
                Ok((
                    fingerprint_with(role, p, &md, sha),
                    key,
                    Some(stable && settled),
                ))
            })
            .collect::<Result<_>>()?;
        let mut cost = FingerprintCost::default();
        let mut fps = Vec::new();
        for (f, key, hashed) in done {
            match hashed {
                None => {
                    cost.reused_files += 1;
                    cost.reused_bytes += f.size_bytes;
                }
                Some(cacheable) => {
                    cost.hashed_files += 1;
                    cost.hashed_bytes += f.size_bytes;
                    if cacheable {
                        known.insert(key, f.sha256.clone());
                    }
                }
            }
            fps.push(f);
        }
        if let Some(c) = cache {
            // Only an optimisation: a cache that cannot be written is rebuilt next time.
            let _ = known.write(c);
        }
        cost.seconds = t.elapsed().as_secs_f64();
        self.fingerprint_cost = Some(cost.clone());
        for f in fps {
            self.inputs
                .retain(|x| !(x.role == f.role && x.path == f.path));
            self.inputs.push(f);
        }
        Ok(cost)
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
}

/// Streaming SHA-256 of a file (large rasters are never read whole into memory).
pub fn sha256_of(path: &Path) -> Result<(String, u64)> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        h.update(&buf[..k]);
        n += k as u64;
    }
    Ok((format!("{:x}", h.finalize()), n))
}

/// Size, modification time and SHA-256 of the input `path`.
pub fn fingerprint(role: &str, path: &Path) -> Result<Fingerprint> {
    let md = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    let (sha256, _) = sha256_of(path)?;
    Ok(fingerprint_with(role, path, &md, sha256))
}

fn fingerprint_with(
    role: &str,
    path: &Path,
    md: &std::fs::Metadata,
    sha256: String,
) -> Fingerprint {
    let (mtime_unix_s, mtime_ns) = match md
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
    {
        Some(d) => (d.as_secs() as i64, d.subsec_nanos()),
        None => (0, 0),
    };
    let abs = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    Fingerprint {
        role: role.into(),
        path: abs.to_string_lossy().into_owned(),
        size_bytes: md.len(),
        mtime_unix_s,
        mtime_ns,
        sha256,
    }
}

/// What identifies one version of a file without reading it: canonical path, device, inode,
/// size, modification time and change time (ns). The change time cannot be set by a user
/// (only the clock can), and any write, truncation, rename or `touch` moves it, so a file
/// edited and given its old modification time back still gets a new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheKey {
    /// Canonical path.
    pub path: String,
    /// Device number.
    pub dev: u64,
    /// Inode number.
    pub ino: u64,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Modification time (ns since the epoch).
    pub mtime_ns: i128,
    /// Change time (ns since the epoch).
    pub ctime_ns: i128,
}

impl CacheKey {
    /// The key of `path` now, with its metadata.
    pub fn of(path: &Path) -> Result<(CacheKey, std::fs::Metadata)> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let abs = std::fs::canonicalize(path).map_err(|e| Error::io(path, e))?;
        let ns = |s: i64, n: i64| s as i128 * 1_000_000_000 + n as i128;
        Ok((
            CacheKey {
                path: abs.to_string_lossy().into_owned(),
                dev: md.dev(),
                ino: md.ino(),
                size_bytes: md.size(),
                mtime_ns: ns(md.mtime(), md.mtime_nsec()),
                ctime_ns: ns(md.ctime(), md.ctime_nsec()),
            },
            md,
        ))
    }
}

/// Content hashes of inputs seen by earlier runs into one output folder
/// (`.sinkmap/fingerprints.json`), keyed by [`CacheKey`]; at most [`FingerprintCache::MAX`]
/// entries, the most recent kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FingerprintCache {
    entries: Vec<(CacheKey, String)>,
}

impl FingerprintCache {
    /// Most entries kept.
    pub const MAX: usize = 4096;

    /// The cache in `path`, or an empty one when it is absent or unreadable.
    pub fn read(path: &Path) -> FingerprintCache {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The SHA-256 recorded for `key`, if any.
    pub fn lookup(&self, key: &CacheKey) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, s)| s.as_str())
    }

    /// Records `sha256` for `key`, replacing an older entry of the same path.
    pub fn insert(&mut self, key: CacheKey, sha256: String) {
        self.entries.retain(|(k, _)| k.path != key.path);
        self.entries.push((key, sha256));
        let n = self.entries.len();
        if n > Self::MAX {
            self.entries.drain(..n - Self::MAX);
        }
    }

    /// Written through a temporary name, so a reader sees the old or the new cache.
    pub fn write(&self, path: &Path) -> Result<()> {
        let text = serde_json::to_string(self).map_err(|e| Error::output(path, e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| Error::output(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::output(path, e))
    }
}

/// Data rows of a CSV file: newline-terminated lines after the header.
fn csv_rows(path: &Path) -> Result<u64> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut lines = 0u64;
    loop {
        let k = f.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if k == 0 {
            break;
        }
        lines += buf[..k].iter().filter(|b| **b == b'\n').count() as u64;
    }
    Ok(lines.saturating_sub(1))
}

/// Files below `dir` (relative, `/`-separated), without the manifest, sorted.
fn files_below(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<()> {
    let rd = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
    let mut names: Vec<String> = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error::io(dir, e))?;
        names.push(e.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    for n in names {
        let rel = format!("{prefix}{n}");
        let p = dir.join(&n);
        if p.is_dir() {
            files_below(&p, &format!("{rel}/"), out)?;
        } else if rel != FILE_NAME {
            out.push(rel);
        }
    }
    Ok(())
}

fn entry(root: &Path, name: &str) -> Result<OutputEntry> {
    let p = root.join(name);
    let (sha256, size_bytes) = sha256_of(&p)?;
    let rows = if name.ends_with(".csv") {
        Some(csv_rows(&p)?)
    } else {
        None
    };
    Ok(OutputEntry {
        name: name.into(),
        size_bytes,
        sha256,
        rows,
    })
}

/// Lists and hashes every file of the set in `root` into `m.outputs` and writes
/// `root/manifest.json` (through a temporary name).
pub fn write(root: &Path, m: &mut Manifest) -> Result<()> {
    use rayon::prelude::*;
    let mut names = Vec::new();
    files_below(root, "", &mut names)?;
    m.outputs = names
        .par_iter()
        .map(|n| entry(root, n))
        .collect::<Result<_>>()?;
    let text =
        serde_json::to_string_pretty(m).map_err(|e| Error::output(root.join(FILE_NAME), e))?;
    let tmp = root.join(".manifest.json.tmp");
    std::fs::write(&tmp, text + "\n").map_err(|e| Error::output(root.join(FILE_NAME), e))?;
    std::fs::rename(&tmp, root.join(FILE_NAME)).map_err(|e| Error::output(root.join(FILE_NAME), e))
}

/// Reads `root/manifest.json`.
pub fn read(root: &Path) -> Result<Manifest> {
    let p = root.join(FILE_NAME);
    let text = std::fs::read_to_string(&p).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::invalid(
                root,
                "no manifest.json: this folder was not published whole by this version of sinkmap (an older version, or files put together by hand); rerun the command that makes it",
            )
        } else {
            Error::io(&p, e)
        }
    })?;
    let m: Manifest = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: p.clone(),
        message: format!("not a sinkmap manifest: {e}"),
    })?;
    if m.format != FORMAT {
        return Err(Error::invalid(
            &p,
            format!("manifest format '{}', expected '{FORMAT}'", m.format),
        ));
    }
    Ok(m)
}

/// Checks that the files in `root` are exactly the set its manifest describes: every listed
/// file present with its size, SHA-256 and row count, and no file the manifest does not list.
pub fn verify(root: &Path) -> Result<Manifest> {
    use rayon::prelude::*;
    let m = read(root)?;
    let run = &m.run_id;
    m.outputs.par_iter().try_for_each(|o| -> Result<()> {
        let p = root.join(&o.name);
        if !p.is_file() {
            return Err(Error::invalid(
                &p,
                format!("missing: manifest.json (run {run}) lists it; the result is incomplete — rerun the command that makes it"),
            ));
        }
        let got = entry(root, &o.name)?;
        if got.size_bytes != o.size_bytes || got.rows != o.rows {
            let what = match (got.rows, o.rows) {
                (Some(g), Some(w)) if g != w => format!("{g} rows, manifest.json (run {run}) says {w}: truncated or replaced"),
                _ => format!("{} bytes, manifest.json (run {run}) says {}: truncated or replaced", got.size_bytes, o.size_bytes),
            };
            return Err(Error::invalid(&p, format!("{what}; it does not belong to this result — rerun")));
        }
        if got.sha256 != o.sha256 {
            return Err(Error::invalid(
                &p,
                format!("its SHA-256 differs from manifest.json (run {run}): the file comes from another run or was edited; it does not belong to this result — rerun"),
            ));
        }
        Ok(())
    })?;
    let mut present = Vec::new();
    files_below(root, "", &mut present)?;
    for n in present {
        if !m.outputs.iter().any(|o| o.name == n) {
            return Err(Error::invalid(
                root.join(&n),
                format!("not listed in manifest.json (run {run}): it does not belong to this result; remove it or rerun"),
            ));
        }
    }
    Ok(m)
}

/// Verifies the result in the output folder `dir` (its published set, or `dir` itself when it
/// has none) and returns the folder holding that set with its manifest.
pub fn verify_result(dir: &Path) -> Result<(PathBuf, Manifest)> {
    let root = crate::publish::result_root(dir);
    let m = verify(&root).map_err(|e| crate::publish::remap_paths(e, &root, dir))?;
    Ok((root, m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_names_the_file_that_does_not_belong() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("cube.csv"), "a,b\n1,2\n3,4\n").unwrap();
        std::fs::write(d.join("summary.json"), "{}\n").unwrap();
        let mut m = Manifest::new("test");
        write(d, &mut m).unwrap();
        let m = verify(d).unwrap();
        assert_eq!(m.outputs.len(), 2);
        let cube = m.outputs.iter().find(|o| o.name == "cube.csv").unwrap();
        assert_eq!(cube.rows, Some(2));
        // Truncated: a row gone.
        std::fs::write(d.join("cube.csv"), "a,b\n1,2\n").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(
            e.contains("cube.csv") && e.contains("1 rows") && e.contains("says 2"),
            "{e}"
        );
        // Same size, other content.
        std::fs::write(d.join("cube.csv"), "a,b\n1,2\n3,5\n").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(e.contains("cube.csv") && e.contains("SHA-256"), "{e}");
        // A stranger.
        std::fs::write(d.join("cube.csv"), "a,b\n1,2\n3,4\n").unwrap();
        std::fs::write(d.join("zones.csv"), "z\n").unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(e.contains("zones.csv") && e.contains("not listed"), "{e}");
        // Missing.
        std::fs::remove_file(d.join("zones.csv")).unwrap();
        std::fs::remove_file(d.join("summary.json")).unwrap();
        let e = verify(d).unwrap_err().to_string();
        assert!(e.contains("summary.json") && e.contains("missing"), "{e}");
    }

    #[test]
    fn sha256_streams_to_the_known_digest() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("abc");
        std::fs::write(&p, "abc").unwrap();
        // FIPS 180-2 example: SHA-256("abc").
        assert_eq!(
            sha256_of(&p).unwrap(),
            (
                "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
                3
            )
        );
    }
}
