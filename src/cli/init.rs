//! `sinkmap init`: a starter scene and a copy of the models.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use sinkmap::Result;

#[derive(Args, Debug)]
pub struct InitArgs {
    /// Folder to create (or an empty one).
    pub dir: PathBuf,
    /// Land-cover scheme of your land-cover raster.
    #[arg(long, value_enum, default_value = "clcd")]
    pub scheme: SchemeArg,
}

#[derive(ValueEnum, Debug, Clone, Copy)]
#[value(rename_all = "snake_case")]
pub enum SchemeArg {
    Clcd,
    EsaWorldcover,
    ModisIgbp,
}

/// Runs `sinkmap init`.
pub fn cmd_init(a: InitArgs) -> Result<()> {
    let scheme = match a.scheme {
        SchemeArg::Clcd => "clcd",
        SchemeArg::EsaWorldcover => "esa_worldcover",
        SchemeArg::ModisIgbp => "modis_igbp",
    };
    let scene = sinkmap::init::init(&a.dir, scheme)?;
    println!(
        "wrote {} and {}: edit the paths, then `sinkmap run {}`",
        scene.display(),
        a.dir.join("models").display(),
        scene.display()
    );
    Ok(())
}
