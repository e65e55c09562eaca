//! Temporary outputs: every result file is written under a temporary name in its folder
//! and renamed to its final name only when complete ([`TempFile`]), so that an interrupted
//! command never leaves a half-written file under a final name. GDAL-free: the map writers
//! (`raster::writer`), the tables, the charts and the report all use it.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// An output error about `path`. GDAL's own message on a full disk is often only "IO
/// error writing …", so when the file system of `path` has (almost) no room left, say so.
pub(crate) fn output_error(path: impl Into<PathBuf>, message: impl std::fmt::Display) -> Error {
    let path = path.into();
    let mut message = message.to_string();
    // GDAL names the temporary file; the user knows the final one.
    if let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) {
        while let Some(i) = message.find(TEMP_PREFIX) {
            match message[i..].find(&name) {
                Some(j) => message.replace_range(i..i + j, ""),
                None => break,
            }
        }
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    if let Some(free) = free_bytes(dir) {
        if free < 1 << 20 && !message.contains("No space left on device") {
            message += &format!(" (No space left on device: {free} bytes free)");
        }
    }
    Error::output(path, message)
}

/// Bytes available to this user on the file system holding `dir` (Unix).
fn free_bytes(dir: &Path) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = CString::new(dir.as_os_str().as_bytes()).ok()?;
        let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
            return None;
        }
        Some(st.f_bavail as u64 * st.f_frsize as u64)
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// A temporary file that is deleted unless committed.
#[derive(Debug)]
pub struct TempFile {
    /// Where the temporary file is.
    pub path: PathBuf,
    keep: bool,
}

/// GDAL's side-car file of `path` (`NAME.aux.xml`: category names, attribute tables).
pub fn aux_xml(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_os_string();
    s.push(".aux.xml");
    PathBuf::from(s)
}

impl TempFile {
    /// A temporary file at `path`, deleted on drop unless committed.
    pub fn new(path: PathBuf) -> Self {
        TempFile { path, keep: false }
    }
    /// A temporary file for the output `final_path` at `stage`, in the same folder
    /// ([`temp_path`]), so that committing it is a rename on one file system.
    pub fn beside(final_path: &Path, stage: &str) -> Self {
        let dir = final_path.parent().unwrap_or(Path::new("."));
        let name = final_path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        TempFile::new(temp_path(dir, &name, stage))
    }
    /// Renames the file to `final_path` (atomic on one file system), with its GDAL side-car
    /// file when it has one (an earlier run's side-car of `final_path` is removed otherwise).
    pub fn commit(mut self, final_path: &Path) -> Result<()> {
        let (aux, final_aux) = (aux_xml(&self.path), aux_xml(final_path));
        if aux.exists() {
            std::fs::rename(&aux, &final_aux).map_err(|e| output_error(&final_aux, e))?;
        } else if final_aux.exists() {
            let _ = std::fs::remove_file(&final_aux);
        }
        std::fs::rename(&self.path, final_path).map_err(|e| output_error(final_path, e))?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
            let _ = std::fs::remove_file(aux_xml(&self.path));
        }
    }
}

/// Prefix and suffix of every temporary output name, so stale ones can be found and removed.
pub const TEMP_PREFIX: &str = ".sinkmap-partial-";

/// A temporary name in `dir` for the output `file_name` at `stage`, unique to this process.
pub fn temp_path(dir: &Path, file_name: &str, stage: &str) -> PathBuf {
    dir.join(format!(
        "{TEMP_PREFIX}{stage}-{}-{file_name}",
        std::process::id()
    ))
}

/// Removes temporary files left by an interrupted earlier run.
pub fn remove_stale_temp_files(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_errors_name_the_final_file_not_the_temporary_one() {
        let e = output_error(
            "out/stock_tc_per_ha.tif",
            "Error msg: 'out/.sinkmap-partial-copy-4242-stock_tc_per_ha.tif: bad magic number'",
        );
        let text = e.to_string();
        assert!(!text.contains(TEMP_PREFIX), "{text}");
        assert!(
            text.contains("'out/stock_tc_per_ha.tif: bad magic number'"),
            "{text}"
        );
    }
}
