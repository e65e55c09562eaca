//! `sinkmap report`: report.html and its PNGs rebuilt from a published result.

use std::path::PathBuf;

use clap::Args;

use sinkmap::manifest;
use sinkmap::publish::{self, Spec};
use sinkmap::{Error, Result};

use super::publish_styled;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Output folder of a run (summary.json, maps, tables).
    pub out_dir: PathBuf,
}

/// Runs `sinkmap report`: the report of a verified published result, added to it.
pub fn cmd_report(a: ReportArgs) -> Result<()> {
    // The folder is verified against its manifest before anything is drawn from it.
    let root = manifest::verify_result(&a.out_dir)?.0;
    if publish::current_set(&a.out_dir).as_ref() != Some(&root) {
        return Err(Error::invalid(
            &a.out_dir,
            "not an output folder published by sinkmap (no .sinkmap/current); rerun the command that made it",
        ));
    }
    let keep = |n: &str| !manifest::REPORT_OUTPUTS.contains(&n);
    let spec = Spec {
        command: "report",
        inputs: Vec::new(),
        scene_sha256: None,
        tile: None,
        produces: manifest::REPORT_OUTPUTS,
        extend: Some(&keep),
    };
    publish_styled(&a.out_dir, spec, |staging| {
        publish::with_neighbours(&a.out_dir, staging, sinkmap::report::build)
    })?;
    println!("wrote {}", a.out_dir.join("report.html").display());
    Ok(())
}
