//! The file edges that are not rasters or vectors: configuration files (TOML, hashing), the
//! pool table (CSV) and the loading of the model set. Rasters are in `raster`, polygon
//! layers in `zones`, published outputs in `publish`.

pub mod files;
pub mod models;
pub mod pool_table;
pub mod temp;
