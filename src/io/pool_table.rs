//! The InVEST carbon pool table (CSV: lucode, c_above, c_below, c_soil, c_dead).

use std::path::Path;

use crate::error::{Error, Result};
use crate::model::scheme::PoolRow;

/// Reads an InVEST carbon pool table.
pub fn read_pool_table(path: &Path) -> Result<Vec<PoolRow>> {
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(path)
        .map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    let headers = rdr
        .headers()
        .map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?
        .clone();
    for need in ["lucode", "c_above", "c_below", "c_soil", "c_dead"] {
        if !headers.iter().any(|h| h.eq_ignore_ascii_case(need)) {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                message: format!("missing column '{need}'"),
            });
        }
    }
    let mut rows = Vec::new();
    for (i, rec) in rdr.deserialize::<PoolRow>().enumerate() {
        let row = rec.map_err(|e| Error::Parse {
            path: path.to_path_buf(),
            message: format!("line {}: {e}", i + 2),
        })?;
        let vals = [row.c_above, row.c_below, row.c_soil, row.c_dead];
        if vals.iter().any(|v| !v.is_finite() || *v < 0.0) {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                message: format!("line {}: pools must be finite and ≥ 0 t C/ha", i + 2),
            });
        }
        if let Some(j) = rows.iter().position(|r: &PoolRow| r.lucode == row.lucode) {
            return Err(Error::Parse {
                path: path.to_path_buf(),
                message: format!(
                    "line {}: lucode {} already given on line {}; one row per code",
                    i + 2,
                    row.lucode,
                    j + 2
                ),
            });
        }
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(Error::Parse {
            path: path.to_path_buf(),
            message: "no rows".into(),
        });
    }
    Ok(rows)
}
