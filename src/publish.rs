//! Whole-or-nothing publication of a result into an output folder, one writer at a time.
//!
//! Layout of an output folder `OUT` written by sinkmap:
//!
//! ```text
//! OUT/.sinkmap/lock              one-writer lock (flock) holding the writer's PID and command
//! OUT/.sinkmap/sets/RUN_ID/      one complete result (maps, tables, manifest.json, report/)
//! OUT/.sinkmap/current           symlink → sets/RUN_ID: the published result
//! OUT/NAME                       symlink → .sinkmap/current/NAME, one per output
//! ```
//!
//! A command writes everything into a staging set `sets/RUN_ID` (invisible through `OUT/NAME`
//! because `current` still names the previous set), writes `manifest.json` last, adds the
//! links for names the previous set did not have (dangling until the switch: "no such file"),
//! then switches `current` with one `rename(2)` of a symlink, which POSIX makes atomic. Every
//! `OUT/NAME` resolves through `current`, so a reader sees either every file of the previous
//! set or every file of the new one, never a mix — after a failure, a kill at any instant or
//! a full disk. Names of the previous set that the new one lacks dangle (read as absent) from
//! the switch until the old links are removed, right after it or by the next writer.
//!
//! The lock is `flock(2)` on `OUT/.sinkmap/lock`: the kernel drops it when its holder exits,
//! however it exits, so a lock is never stale; a second writer stops at once, naming the PID
//! and command of the holder. Staging sets of dead writers are removed only by a writer that
//! holds the lock (hence no other writer is alive).
//!
//! Hand-written on std + libc: no maintained crate does staged multi-file publication; the
//! lock needs only `flock`.

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::manifest::{self, Manifest};

/// The hidden state folder inside an output folder.
pub const STATE_DIR: &str = ".sinkmap";

/// Content hashes of inputs seen by earlier writers of this folder (see `manifest::FingerprintCache`).
pub const FINGERPRINT_CACHE: &str = "fingerprints.json";

fn state_dir(out: &Path) -> PathBuf {
    out.join(STATE_DIR)
}

/// The set currently published in `out` (`out/.sinkmap/sets/RUN_ID`, canonical), if any.
pub fn current_set(out: &Path) -> Option<PathBuf> {
    let cur = state_dir(out).join("current");
    std::fs::symlink_metadata(&cur).ok()?;
    std::fs::canonicalize(&cur).ok().filter(|p| p.is_dir())
}

/// The folder holding a result's files as one consistent snapshot: the published set of an
/// output folder, or the folder itself (a set folder or a folder assembled by hand).
pub fn result_root(dir: &Path) -> PathBuf {
    current_set(dir).unwrap_or_else(|| dir.to_path_buf())
}

/// The same error with paths (and mentions in its message) below `from` moved below `to`:
/// files of a hidden set named by the folder the user gave.
pub fn remap_paths(e: Error, from: &Path, to: &Path) -> Error {
    let (f, t) = (from.to_string_lossy(), to.to_string_lossy());
    let fix = |p: PathBuf| match p.strip_prefix(from) {
        Ok(rest) => to.join(rest),
        Err(_) => p,
    };
    let msg = |m: String| m.replace(f.as_ref(), t.as_ref());
    match e {
        Error::Io { path, source } => Error::Io {
            path: fix(path),
            source,
        },
        Error::Parse { path, message } => Error::Parse {
            path: fix(path),
            message: msg(message),
        },
        Error::Invalid { path, message } => Error::Invalid {
            path: fix(path),
            message: msg(message),
        },
        Error::Raster { path, message } => Error::Raster {
            path: fix(path),
            message: msg(message),
        },
        Error::Vector { path, message } => Error::Vector {
            path: fix(path),
            message: msg(message),
        },
        Error::Output { path, message } => Error::Output {
            path: fix(path),
            message: msg(message),
        },
        Error::Pixel {
            path,
            col,
            row,
            message,
        } => Error::Pixel {
            path: fix(path),
            col,
            row,
            message: msg(message),
        },
        e => e,
    }
}

/// A publication in progress: the lock is held, the staging set exists.
#[derive(Debug)]
pub struct Publication {
    out: PathBuf,
    run_id: String,
    staging: PathBuf,
    inputs: Vec<(String, PathBuf)>,
    /// Names brought from the published set (same files: never a replaced input).
    carried: Vec<String>,
    lock: Option<std::fs::File>,
    done: bool,
}

fn io_err(path: &Path, e: std::io::Error) -> Error {
    Error::output(path, e)
}

/// Takes the one-writer lock of `out`, or says who holds it.
fn lock(out: &Path, state: &Path) -> Result<std::fs::File> {
    use std::os::unix::io::AsRawFd;
    let path = state.join("lock");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| io_err(&path, e))?;
    // SAFETY: flock on a file descriptor we own; no memory is shared with the call.
    let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if r != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EWOULDBLOCK) {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim().replace('\n', ": ");
            let holder = if holder.is_empty() {
                "another sinkmap process".to_string()
            } else {
                format!("another sinkmap process ({holder})")
            };
            return Err(Error::output(
                out,
                format!("{holder} is writing into this folder; wait for it to finish or choose another output folder"),
            ));
        }
        return Err(io_err(&path, err));
    }
    let cmd: Vec<String> = std::env::args().collect();
    f.set_len(0).map_err(|e| io_err(&path, e))?;
    writeln!(f, "PID {}\n{}", std::process::id(), cmd.join(" ")).map_err(|e| io_err(&path, e))?;
    Ok(f)
}

/// Whether `link` is one of our output links (`.sinkmap/current/NAME`).
fn is_our_link(link: &Path) -> bool {
    std::fs::read_link(link)
        .map(|t| t.starts_with(Path::new(STATE_DIR).join("current")))
        .unwrap_or(false)
}

/// Removes what dead writers left: staging sets, temporary links, dangling output links and
/// temporary files of older versions. Only called with the lock held.
fn clean_stale(out: &Path) {
    let state = state_dir(out);
    let current = current_set(out);
    if let Ok(rd) = std::fs::read_dir(state.join("sets")) {
        for e in rd.flatten() {
            let p = e.path();
            let live = current
                .as_ref()
                .is_some_and(|c| std::fs::canonicalize(&p).ok().as_ref() == Some(c));
            if !live {
                let _ = std::fs::remove_dir_all(&p);
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(&state) {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("current.tmp") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            let temporary = name.starts_with(crate::io::temp::TEMP_PREFIX)
                || name.starts_with(".sinkmap-link-");
            let dangling = is_our_link(&p) && !p.exists();
            if temporary || dangling {
                let _ = std::fs::remove_file(&p);
            }
        }
    }
}

/// (device, inode) and canonical path of what `path` names, following links.
fn identity(path: &Path) -> Option<((u64, u64), PathBuf)> {
    let m = std::fs::metadata(path).ok()?;
    Some(((m.dev(), m.ino()), std::fs::canonicalize(path).ok()?))
}

/// Refuses when publishing `names` into `out` would replace one of `inputs` — by name, through
/// a symlink or as a hard link of the same file.
pub fn check_inputs_not_replaced(
    out: &Path,
    names: &[String],
    inputs: &[(String, PathBuf)],
) -> Result<()> {
    let ids: Vec<_> = inputs
        .iter()
        .filter_map(|(role, p)| identity(p).map(|id| (role, p, id)))
        .collect();
    for name in names {
        let target = out.join(name);
        let Some((dev_ino, canon)) = identity(&target) else {
            continue;
        };
        for (role, p, (i_dev_ino, i_canon)) in &ids {
            if *i_dev_ino == dev_ino || *i_canon == canon {
                return Err(Error::output(
                    &target,
                    format!(
                        "this output would replace the {role} input {} (the same file{}); choose another output folder or move the input",
                        p.display(),
                        if *i_canon == canon { "" } else { ", by a link" }
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Top-level names of a folder, sorted.
fn names_in(dir: &Path) -> Result<Vec<String>> {
    let mut v = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        v.push(e.file_name().to_string_lossy().into_owned());
    }
    v.sort();
    Ok(v)
}

/// Forces every file and folder below `dir`, then `dir` itself, to stable storage (fsync), so
/// that a set named by `current` after a power cut holds its data, not empty or short files.
/// Symbolic links live in their folder's entries and are synced with it.
pub fn sync_tree(dir: &Path) -> Result<()> {
    for n in names_in(dir)? {
        let p = dir.join(&n);
        let md = std::fs::symlink_metadata(&p).map_err(|e| io_err(&p, e))?;
        if md.is_dir() {
            sync_tree(&p)?;
        } else if md.is_file() {
            sync_path(&p)?;
        }
    }
    sync_path(dir)
}

/// fsync of one file or folder (opened read-only: Linux accepts fsync on such a descriptor).
fn sync_path(p: &Path) -> Result<()> {
    std::fs::File::open(p)
        .and_then(|f| f.sync_all())
        .map_err(|e| {
            Error::output(
                p,
                format!("could not force it to disk (fsync: {e}); nothing new was published"),
            )
        })
}

/// Hard-links (or copies, where links are refused) `src` into `dst`, recursively.
fn link_tree(src: &Path, dst: &Path) -> Result<()> {
    let m = std::fs::symlink_metadata(src).map_err(|e| io_err(src, e))?;
    if m.is_dir() {
        std::fs::create_dir_all(dst).map_err(|e| io_err(dst, e))?;
        for n in names_in(src)? {
            link_tree(&src.join(&n), &dst.join(&n))?;
        }
    } else if std::fs::hard_link(src, dst).is_err() {
        std::fs::copy(src, dst).map_err(|e| io_err(dst, e))?;
    }
    Ok(())
}

impl Publication {
    /// Locks `out` (creating it), cleans what dead writers left and opens a staging set.
    pub fn begin(out: &Path) -> Result<Publication> {
        if std::fs::metadata(out).is_ok_and(|m| !m.is_dir()) {
            return Err(Error::invalid(
                out,
                "the output folder is a file; choose a folder (new or one sinkmap wrote)",
            ));
        }
        std::fs::create_dir_all(out).map_err(|e| crate::error::Error::io(out, e))?;
        let state = state_dir(out);
        std::fs::create_dir_all(state.join("sets")).map_err(|e| io_err(&state, e))?;
        let lock = lock(out, &state)?;
        clean_stale(out);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let run_id = format!(
            "{}-{:09}-{}",
            now.as_secs(),
            now.subsec_nanos(),
            std::process::id()
        );
        let staging = state.join("sets").join(&run_id);
        std::fs::create_dir(&staging).map_err(|e| io_err(&staging, e))?;
        Ok(Publication {
            out: out.to_path_buf(),
            run_id,
            staging,
            inputs: Vec::new(),
            carried: Vec::new(),
            lock: Some(lock),
            done: false,
        })
    }

    /// Where the command writes everything it produces.
    pub fn staging(&self) -> &Path {
        &self.staging
    }

    /// The final output folder.
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// This publication's run id.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Records an input file (for the manifest and the never-overwrite check).
    pub fn add_input(&mut self, role: &str, path: &Path) {
        if !self.inputs.iter().any(|(_, p)| p == path) {
            self.inputs.push((role.to_string(), path.to_path_buf()));
        }
    }

    /// (role, path) of the inputs recorded so far.
    pub fn inputs(&self) -> &[(String, PathBuf)] {
        &self.inputs
    }

    /// Brings the files of the published set whose top-level name passes `keep` into the
    /// staging set (hard links: no copy of the data), for commands that add to a result.
    pub fn carry(&mut self, keep: impl Fn(&str) -> bool) -> Result<Vec<String>> {
        let Some(cur) = current_set(&self.out) else {
            return Ok(Vec::new());
        };
        let mut carried = Vec::new();
        for n in names_in(&cur)? {
            if n != manifest::FILE_NAME && keep(&n) {
                link_tree(&cur.join(&n), &self.staging.join(&n))?;
                carried.push(n);
            }
        }
        self.carried.extend(carried.iter().cloned());
        Ok(carried)
    }

    /// The same error with paths inside the staging set replaced by their final names.
    pub fn final_names(&self, e: Error) -> Error {
        self.final_names_from(e, &self.staging.clone())
    }

    /// The same error with paths inside `root` (a set folder) named by the output folder.
    pub fn final_names_from(&self, e: Error, root: &Path) -> Error {
        remap_paths(e, root, &self.out)
    }

    /// Writes `manifest.json` into the staging set and publishes it whole: after this returns
    /// Ok, `out` holds exactly the new set; after an error, exactly the previous one.
    pub fn commit(mut self, mut m: Manifest) -> Result<PathBuf> {
        m.run_id = self.run_id.clone();
        manifest::write(&self.staging, &mut m).map_err(|e| self.final_names(e))?;
        let names = names_in(&self.staging)?;
        let fresh: Vec<String> = names
            .iter()
            .filter(|n| !self.carried.contains(n))
            .cloned()
            .collect();
        check_inputs_not_replaced(&self.out, &fresh, &self.inputs)?;
        let state = state_dir(&self.out);
        // Durability: the set's data and entries, and its own entry in sets/, reach the disk
        // before `current` can name it.
        sync_tree(&self.staging)?;
        sync_path(&state.join("sets"))?;
        // Links for the new names; they dangle until `current` names the new set.
        for n in &names {
            let link = self.out.join(n);
            if is_our_link(&link) {
                continue;
            }
            let tmp = self.out.join(format!(".sinkmap-link-{}", self.run_id));
            let _ = std::fs::remove_file(&tmp);
            std::os::unix::fs::symlink(Path::new(STATE_DIR).join("current").join(n), &tmp)
                .map_err(|e| io_err(&link, e))?;
            match std::fs::symlink_metadata(&link) {
                Ok(md) if md.is_dir() => {
                    // A folder of an older sinkmap (no links yet): moved aside, removed below.
                    let aside = state.join(format!("old-{}-{n}", self.run_id));
                    std::fs::rename(&link, &aside).map_err(|e| io_err(&link, e))?;
                    let _ = std::fs::remove_dir_all(&aside);
                }
                _ => {}
            }
            std::fs::rename(&tmp, &link).map_err(|e| io_err(&link, e))?;
        }
        // The new links are on disk before the switch (they dangle until then).
        sync_path(&self.out)?;
        // The switch: one atomic rename of a symlink.
        let tmp = state.join(format!("current.tmp-{}", self.run_id));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(Path::new("sets").join(&self.run_id), &tmp)
            .map_err(|e| io_err(&state, e))?;
        std::fs::rename(&tmp, state.join("current")).map_err(|e| io_err(&state, e))?;
        self.done = true;
        // The switch itself reaches the disk: fsync of the folder holding `current`.
        std::fs::File::open(&state)
            .and_then(|d| d.sync_all())
            .map_err(|e| {
                Error::output(
                    &state,
                    format!("the new result is in place but the system could not confirm it reached the disk (fsync: {e}); after a power cut the folder may hold the previous result"),
                )
            })?;
        // The output folder's own entry, when this run created it (best effort: the parent
        // may not be ours to open).
        let parent = match self.out.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let _ = std::fs::File::open(parent).and_then(|d| d.sync_all());
        // Old links and sets: the new set is published already, this is tidying only.
        clean_stale(&self.out);
        self.remove_legacy_outputs(&names);
        drop(self.lock.take());
        Ok(self.out.clone())
    }

    /// Plain files of an older sinkmap (before links) with an output name the new set lacks.
    fn remove_legacy_outputs(&self, names: &[String]) {
        let Ok(present) = names_in(&self.out) else {
            return;
        };
        for n in present {
            if !manifest::is_known_output(&n) || names.contains(&n) {
                continue;
            }
            let p = self.out.join(&n);
            let is_input = identity(&p).is_some_and(|(id, c)| {
                self.inputs
                    .iter()
                    .any(|(_, i)| identity(i).is_some_and(|(iid, ic)| iid == id || ic == c))
            });
            if is_input {
                continue;
            }
            if let Ok(md) = std::fs::symlink_metadata(&p) {
                if md.is_file() {
                    let _ = std::fs::remove_file(&p);
                } else if md.is_dir() {
                    let _ = std::fs::remove_dir_all(&p);
                }
            }
        }
    }
}

impl Drop for Publication {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_dir_all(&self.staging);
        }
    }
}

/// Refuses when a file of the result published in `out` was changed after sinkmap published
/// it — edited in place (size, or a modification time later than the set's manifest) or
/// replaced by another file under its name — since a new result would discard that work (e.g.
/// the reference classes typed into a sample's points). `what` says what the change may be.
pub fn refuse_edited(out: &Path, what: &str) -> Result<()> {
    let Some(cur) = current_set(out) else {
        return Ok(());
    };
    let Ok(m) = manifest::read(&cur) else {
        return Ok(());
    };
    let published = std::fs::metadata(cur.join(manifest::FILE_NAME)).and_then(|m| m.modified());
    let Ok(published) = published else {
        return Ok(());
    };
    let refuse = |name: &str, how: &str| {
        Err(Error::invalid(
            out.join(name),
            format!("{how} since sinkmap published it ({what}); a new result would discard that: move it out of the folder, or choose another output folder"),
        ))
    };
    for o in &m.outputs {
        let top = o.name.split('/').next().unwrap_or(&o.name);
        let link = out.join(top);
        if std::fs::symlink_metadata(&link).is_ok() && !is_our_link(&link) {
            return refuse(top, "replaced by another file");
        }
        let Ok(md) = std::fs::metadata(cur.join(&o.name)) else {
            continue;
        };
        let later = md.modified().is_ok_and(|t| t > published);
        if md.len() != o.size_bytes || later {
            return refuse(&o.name, "edited");
        }
    }
    Ok(())
}

/// The kind of result a command makes: commands of one kind may replace each other's
/// results (a run, a zonal run, a merge, a balance of a scene), others may not.
fn kind_of(command: &str) -> &str {
    match command {
        "run" | "zonal" | "merge" | "balance" | "report" => "scene result",
        "synth" | "bench scene" => "synthetic scene",
        other => other,
    }
}

/// Refuses to replace the result of another kind of command (a sample published into a run's
/// folder would make the run's maps vanish).
fn refuse_other_kind(out: &Path, command: &str) -> Result<()> {
    let Some(prev) = current_set(out).and_then(|c| manifest::read(&c).ok()) else {
        return Ok(());
    };
    if kind_of(&prev.command) != kind_of(command) {
        return Err(Error::Usage(format!(
            "{}: holds the result of `sinkmap {}` (run {}); `sinkmap {command}` would replace it whole — choose another output folder, or delete that one first",
            out.display(),
            prev.command,
            prev.run_id
        )));
    }
    Ok(())
}

/// What a command publishes and from what.
pub struct Spec<'a> {
    /// `run`, `balance`, …
    pub command: &'a str,
    /// (role, path) of every file the command reads.
    pub inputs: Vec<(String, PathBuf)>,
    /// SHA-256 of the scene file, when the command reads one.
    pub scene_sha256: Option<String>,
    /// `I/N` for a tile of `run --tile`.
    pub tile: Option<String>,
    /// Top-level names the command may write (checked against the inputs before any work).
    pub produces: &'a [&'a str],
    /// Extend the published set (verified first) with the files whose name passes this test,
    /// instead of replacing it.
    pub extend: Option<&'a dyn Fn(&str) -> bool>,
}

/// Runs `work` on a staging folder of `out` and publishes what it wrote whole, with a
/// manifest: the lock is taken, every input is checked (readable, not replaced by the
/// result) and fingerprinted before `work` starts.
pub fn transact<T>(out: &Path, mut spec: Spec, work: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    // Model files embedded in the binary are not on disk: their hashes travel in the
    // summary and the maps' metadata instead.
    spec.inputs
        .retain(|(_, p)| !crate::embedded::is_embedded(p));
    for (_, p) in &spec.inputs {
        crate::limits::check_input_path(p)?;
    }
    let mut p = Publication::begin(out)?;
    refuse_other_kind(out, spec.command)?;
    for (role, path) in &spec.inputs {
        p.add_input(role, path);
    }
    let mut m = Manifest::new(spec.command);
    let mut carried = Vec::new();
    if let Some(keep) = spec.extend {
        if let Some(cur) = current_set(out) {
            let base = manifest::verify(&cur).map_err(|e| p.final_names_from(e, &cur))?;
            m = Manifest::extending(spec.command, &base);
            carried = p.carry(keep)?;
        }
    }
    let at_risk = |mut names: Vec<String>| -> Vec<String> {
        if let Some(cur) = current_set(out) {
            names.extend(names_in(&cur).unwrap_or_default());
        }
        names.retain(|n| !carried.contains(n));
        names.sort();
        names.dedup();
        names
    };
    let produces: Vec<String> = spec.produces.iter().map(|s| s.to_string()).collect();
    check_inputs_not_replaced(out, &at_risk(produces), &p.inputs)?;
    if spec.scene_sha256.is_some() {
        m.scene_sha256 = spec.scene_sha256.clone();
    }
    if spec.tile.is_some() {
        m.tile = spec.tile.clone();
    }
    m.fingerprint_inputs_cached(&p.inputs, Some(&state_dir(out).join(FINGERPRINT_CACHE)))?;
    // Each input as the user named it, with its fingerprint. Checked through that name: an
    // input read through an earlier result's link stays the same file when that result is
    // republished by a command that keeps it (hard links: same size and times).
    let before: Vec<(PathBuf, manifest::Fingerprint)> = p
        .inputs
        .iter()
        .filter_map(|(_, i)| {
            let c = std::fs::canonicalize(i).ok()?;
            let c = c.to_string_lossy();
            let f = m.inputs.iter().find(|f| f.path == c)?;
            Some((i.clone(), f.clone()))
        })
        .collect();
    let value = work(p.staging()).map_err(|e| p.final_names(e))?;
    // An input changed while it was read: the result may mix two versions of it.
    for (named, f) in &before {
        let now = std::fs::metadata(named).ok();
        let same = now.as_ref().is_some_and(|md| {
            md.len() == f.size_bytes
                && md
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .is_some_and(|d| {
                        d.as_secs() as i64 == f.mtime_unix_s && d.subsec_nanos() == f.mtime_ns
                    })
        });
        if !same {
            return Err(Error::invalid(
                named,
                "this input changed (or vanished) while the command read it; nothing was published — run again when it is stable",
            ));
        }
    }
    let staged = names_in(p.staging())?;
    check_inputs_not_replaced(out, &at_risk(staged), &p.inputs)?;
    p.commit(m)?;
    Ok(value)
}

/// Runs `build` on `staging` with the folders of OTHER commands that sit in the output folder
/// (e.g. `assessment/` of `sinkmap assess`, read by the report) visible inside it through
/// links that are removed again, so that they never become part of the set.
pub fn with_neighbours<T>(
    out: &Path,
    staging: &Path,
    build: impl FnOnce(&Path) -> Result<T>,
) -> Result<T> {
    let mut links = Vec::new();
    if let Ok(rd) = std::fs::read_dir(out) {
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let p = e.path();
            let foreign_dir = !name.starts_with('.')
                && !manifest::is_known_output(&name)
                && !is_our_link(&p)
                && p.is_dir();
            let target = staging.join(&name);
            if foreign_dir && !target.exists() {
                if let Ok(abs) = std::fs::canonicalize(&p) {
                    if std::os::unix::fs::symlink(&abs, &target).is_ok() {
                        links.push(target);
                    }
                }
            }
        }
    }
    let r = build(staging);
    for l in links {
        let _ = std::fs::remove_file(l);
    }
    r
}

/// (role, path) of every file a scene run reads: the scene, its rasters, pool table, masks,
/// zones (when used) and model files — the models are loaded and checked on the way.
pub fn scene_inputs(
    scene: &crate::config::Scene,
    zones: Option<&Path>,
) -> Result<Vec<(String, PathBuf)>> {
    let mut v = vec![
        ("scene".to_string(), scene.source_path.clone()),
        ("landcover".to_string(), scene.landcover.path.clone()),
    ];
    if let Some(t) = &scene.landcover.pool_table {
        v.push(("pool_table".into(), t.clone()));
    }
    if let Some(a) = &scene.forest_age {
        v.push(("forest_age".into(), a.path.clone()));
    }
    if let Some(l) = &scene.forest_type {
        v.push(("forest_type".into(), l.path.clone()));
    }
    if let Some(l) = &scene.desert_subtype {
        v.push(("desert_subtype".into(), l.path.clone()));
    }
    for (name, l) in &scene.masks {
        v.push((format!("mask {name}"), l.path.clone()));
    }
    if let Some(z) = zones {
        if z.is_file() {
            v.push(("zones".into(), z.to_path_buf()));
        }
    }
    for (f, _) in crate::config::Models::load(scene)?.files {
        v.push(("model".into(), f));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) {
        std::fs::write(dir.join(name), text).unwrap();
    }

    fn publish(out: &Path, files: &[(&str, &str)]) -> Result<PathBuf> {
        let p = Publication::begin(out)?;
        for (n, t) in files {
            write(p.staging(), n, t);
        }
        p.commit(Manifest::new("test"))
    }

    #[test]
    fn a_new_set_replaces_the_old_one_and_old_names_go() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        publish(&out, &[("a.csv", "x\n1\n"), ("zones.csv", "z\n2\n")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("zones.csv")).unwrap(),
            "z\n2\n"
        );
        publish(&out, &[("a.csv", "x\n3\n")]).unwrap();
        assert_eq!(
            std::fs::read_to_string(out.join("a.csv")).unwrap(),
            "x\n3\n"
        );
        assert!(std::fs::symlink_metadata(out.join("zones.csv")).is_err());
        let sets = names_in(&out.join(".sinkmap/sets")).unwrap();
        assert_eq!(sets.len(), 1, "{sets:?}");
    }

    #[test]
    fn a_failed_publication_leaves_the_previous_set() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        publish(&out, &[("a.csv", "x\n1\n")]).unwrap();
        {
            let p = Publication::begin(&out).unwrap();
            write(p.staging(), "a.csv", "x\n2\n");
            // dropped without commit: a failure
        }
        assert_eq!(
            std::fs::read_to_string(out.join("a.csv")).unwrap(),
            "x\n1\n"
        );
        assert_eq!(names_in(&out.join(".sinkmap/sets")).unwrap().len(), 1);
    }

    #[test]
    fn a_second_writer_is_refused_naming_the_holder() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        let _first = Publication::begin(&out).unwrap();
        // flock locks belong to the open file description: a second open conflicts.
        let e = Publication::begin(&out).unwrap_err().to_string();
        assert!(e.contains(&format!("PID {}", std::process::id())), "{e}");
        assert!(e.contains("is writing into this folder"), "{e}");
    }

    #[test]
    fn an_input_is_never_replaced_by_name_link_or_hard_link() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        write(&out, "zones.geojson", "{}");
        let input = out.join("zones.geojson");
        let names = vec!["zones.geojson".to_string()];
        let by_name = [("zones".to_string(), input.clone())];
        assert!(check_inputs_not_replaced(&out, &names, &by_name).is_err());
        let sym = tmp.path().join("sym.geojson");
        std::os::unix::fs::symlink(&input, &sym).unwrap();
        let by_sym = [("zones".to_string(), sym)];
        assert!(check_inputs_not_replaced(&out, &names, &by_sym).is_err());
        let hard = tmp.path().join("hard.geojson");
        std::fs::hard_link(&input, &hard).unwrap();
        let by_hard = [("zones".to_string(), hard)];
        let e = check_inputs_not_replaced(&out, &names, &by_hard).unwrap_err();
        assert!(e.to_string().contains("by a link"), "{e}");
        let other = tmp.path().join("other.geojson");
        write(tmp.path(), "other.geojson", "{}");
        assert!(check_inputs_not_replaced(&out, &names, &[("zones".into(), other)]).is_ok());
    }
}
