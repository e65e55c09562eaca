//! Reading back the tables a run writes (`summary.json`, `cube.csv`, `zones.csv`,
//! `trajectory.csv`, `balance.csv`) as the typed rows their producers serialize, with errors
//! that name the file and the line.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// An error about `line` of `path` (line 1 is the header of a CSV file).
pub fn line_error(path: &Path, line: usize, message: impl std::fmt::Display) -> Error {
    Error::Parse {
        path: path.into(),
        message: format!("line {line}: {message}"),
    }
}

/// Reads every row of the CSV file `path` as a `T`, after checking that the header has the
/// `required` columns (`what` names the table in the message: "a sinkmap trajectory").
pub fn read_csv_rows<T: DeserializeOwned>(
    path: &Path,
    required: &[&str],
    what: &str,
) -> Result<Vec<T>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() == 0 {
        return Err(Error::invalid(
            path,
            format!("empty file (0 bytes): not {what}"),
        ));
    }
    let mut r = csv::Reader::from_path(path).map_err(|e| Error::Parse {
        path: path.into(),
        message: e.to_string(),
    })?;
    let header = r.headers().map_err(|e| line_error(path, 1, e))?.clone();
    for col in required {
        if !header.iter().any(|h| h == *col) {
            return Err(line_error(
                path,
                1,
                format!("no column '{col}': not {what}"),
            ));
        }
    }
    r.deserialize::<T>()
        .enumerate()
        .map(|(i, row)| row.map_err(|e| line_error(path, i + 2, csv_message(&e))))
        .collect()
}

/// A CSV error without the record position the caller already names as a line.
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Deserialize { err, .. } => match err.field() {
            Some(f) => format!("field {}: {}", f + 1, err.kind()),
            None => err.kind().to_string(),
        },
        _ => e.to_string(),
    }
}

/// Reads the JSON file `path` as a `T` (serde's message names the line and column).
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: path.into(),
        message: e.to_string(),
    })
}

/// Deserializes a number that may have been written as `null` (serde_json writes NaN and
/// ±∞ as `null`) as NaN.
pub fn f64_or_nan<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    use serde::Deserialize;
    Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
}
