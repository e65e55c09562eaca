//! Map error in the Monte Carlo (docs/science.md §6.8): the error-adjusted class areas of an
//! accuracy assessment and the forest density ratio of a plot calibration become per-class
//! area multipliers, centred on the adjusted estimates and drawn from their sampling
//! distributions.

use std::path::{Path, PathBuf};

use nalgebra::{DMatrix, DVector};
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use serde::Deserialize;

use crate::assess::estimate::EcosystemAreas;
use crate::assess::identity::MapIdentity;
use crate::config::{Models, Scene};
use crate::error::{Error, Result};
use crate::model::EcosystemClass;

/// A multiplier per ecosystem class (`EcosystemClass::index`) on the cube's areas.
pub type Multipliers = [f64; 9];

/// No map error: every area as mapped.
pub const UNIT: Multipliers = [1.0; 9];

/// Relative differences of an adjusted from a mapped area below this are the estimator's
/// floating-point noise (a perfect reference sample gives A·(Aₖ/A)), not a correction.
const SAME: f64 = 1e-12;

/// How often a truncated draw is retried before the central values are used.
const MAX_REDRAWS: usize = 10_000;

/// The forest density ratio of a calibration: GREG mean over the map's mean, with its SE.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Density {
    /// f = μ̂_GREG / μ̂_map, the factor on the forest cohorts' carbon (dimensionless).
    pub ratio: f64,
    /// Standard error of f: SE(μ̂_GREG) / μ̂_map (the draws take f* ~ N(f, se) truncated at 0).
    pub se: f64,
}

/// Everything the Monte Carlo needs about the map's error.
#[derive(Debug, Clone)]
pub struct MapError {
    /// The assessed ecosystem classes, their mapped and adjusted areas (ha).
    classes: Vec<EcosystemClass>,
    mapped_ha: Vec<f64>,
    adjusted_ha: Vec<f64>,
    /// F with F Fᵀ = the covariance of the adjusted areas (ha): A = Â + F z.
    factor: DMatrix<f64>,
    density: Option<Density>,
    /// What the draws include, for the tables (e.g. "map area (assessment.json sha256 …)").
    pub sources: Vec<String>,
    /// Warnings for the console (e.g. area observed in a class the map never shows).
    pub warnings: Vec<String>,
}

#[derive(Deserialize)]
struct AssessmentFile {
    map: String,
    #[serde(default)]
    map_identity: Option<MapIdentity>,
    #[serde(default)]
    ecosystem_areas: Option<EcosystemAreas>,
}

#[derive(Deserialize)]
struct IntervalIn {
    value: f64,
    se: f64,
}

#[derive(Deserialize)]
struct TotalIn {
    zone_id: String,
    estimator: String,
    mean_tc_per_ha: Option<IntervalIn>,
}

#[derive(Deserialize)]
struct CalibrationFile {
    #[serde(default)]
    map_identity: Option<MapIdentity>,
    population_classes: Vec<i32>,
    totals: Vec<TotalIn>,
}

/// The JSON file of an output folder (or the file itself).
fn json_in(path: &Path, name: &str) -> PathBuf {
    if path.is_dir() {
        path.join(name)
    } else {
        path.to_path_buf()
    }
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path, what: &str) -> Result<(T, String)> {
    let text = std::fs::read_to_string(p).map_err(|e| {
        Error::invalid(
            p,
            format!("cannot read the {what} ({e}); give the folder `sinkmap {what}` wrote or its JSON file"),
        )
    })?;
    let v = serde_json::from_str(&text).map_err(|e| {
        Error::invalid(
            p,
            format!("not a {what} file of this sinkmap version ({e}); rerun `sinkmap {what}`"),
        )
    })?;
    let (sha, _) = crate::manifest::sha256_of(p)?;
    Ok((v, sha))
}

/// (role, JSON file) of an assessment and a calibration, for the manifest's inputs.
pub fn input_files(
    assessment: Option<&Path>,
    calibration: Option<&Path>,
) -> Vec<(String, PathBuf)> {
    let mut v = Vec::new();
    if let Some(a) = assessment {
        v.push(("assessment".to_string(), json_in(a, "assessment.json")));
    }
    if let Some(c) = calibration {
        v.push(("calibration".to_string(), json_in(c, "calibration.json")));
    }
    v
}

/// `F` with `F Fᵀ = cov` for a symmetric positive semi-definite (often singular: the class
/// areas sum to the fixed map area) covariance, by the eigen decomposition (nalgebra);
/// negative eigenvalues of rounding size count as 0.
fn psd_factor(cov: &DMatrix<f64>) -> DMatrix<f64> {
    let e = nalgebra::linalg::SymmetricEigen::new(cov.clone());
    let d = DMatrix::from_diagonal(&e.eigenvalues.map(|l| l.max(0.0).sqrt()));
    &e.eigenvectors * d
}

impl MapError {
    /// No classes, no density, no sources: what `load` fills.
    fn empty() -> MapError {
        MapError {
            classes: Vec::new(),
            mapped_ha: Vec::new(),
            adjusted_ha: Vec::new(),
            factor: DMatrix::zeros(0, 0),
            density: None,
            sources: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Reads and checks an assessment and/or a calibration against the scene's map; `None`
    /// when neither is given.
    pub fn load(
        scene: &Scene,
        models: &Models,
        assessment: Option<&Path>,
        calibration: Option<&Path>,
    ) -> Result<Option<MapError>> {
        if assessment.is_none() && calibration.is_none() {
            return Ok(None);
        }
        let me = MapIdentity::of_scene(scene, models)?;
        let mut m = MapError::empty();
        if let Some(a) = assessment {
            let p = json_in(a, "assessment.json");
            let (f, sha): (AssessmentFile, String) = read_json(&p, "assess")?;
            let (Some(id), Some(eco)) = (f.map_identity, f.ecosystem_areas) else {
                return Err(Error::invalid(
                    &p,
                    format!("an assessment of '{}', not of the scene's land-cover map (made with --map, or by an older sinkmap): only an assessment of the land cover gives class areas for the accounting; rerun `sinkmap assess` without --map", f.map),
                ));
            };
            me.check(&id, &p, "assess")?;
            m.set_areas(&eco, &p)?;
            m.sources
                .push(format!("map area (assessment {})", &sha[..12]));
        }
        if let Some(c) = calibration {
            let p = json_in(c, "calibration.json");
            let (f, sha): (CalibrationFile, String) = read_json(&p, "calibrate")?;
            let id = f.map_identity.as_ref().ok_or_else(|| {
                Error::invalid(
                    &p,
                    "no map identity (an older sinkmap); rerun `sinkmap calibrate`",
                )
            })?;
            me.check(id, &p, "calibrate")?;
            m.density = Some(density_of(&f, models, &p)?);
            m.sources
                .push(format!("forest density (calibration {})", &sha[..12]));
        }
        Ok(Some(m))
    }

    fn set_areas(&mut self, eco: &EcosystemAreas, p: &Path) -> Result<()> {
        let k = eco.classes.len();
        let bad = [
            eco.mapped_area_ha.len(),
            eco.adjusted_area_ha.len(),
            eco.covariance_ha2.len(),
        ]
        .iter()
        .any(|&n| n != k)
            || eco.covariance_ha2.iter().any(|r| r.len() != k);
        if bad {
            return Err(Error::invalid(
                p,
                "ecosystem_areas: classes, areas and covariance differ in size",
            ));
        }
        for (i, name) in eco.classes.iter().enumerate() {
            let c = EcosystemClass::from_name(name).ok_or_else(|| {
                Error::invalid(p, format!("ecosystem_areas: unknown class '{name}'"))
            })?;
            let (a, m) = (eco.adjusted_area_ha[i], eco.mapped_area_ha[i]);
            if !(a.is_finite() && a >= 0.0 && m.is_finite() && m >= 0.0) {
                return Err(Error::invalid(
                    p,
                    format!("ecosystem_areas: class '{name}' has area {a} (adjusted) / {m} (mapped); areas are finite and ≥ 0"),
                ));
            }
            if m == 0.0 && a > 0.0 {
                self.warnings.push(format!("{}: {name} is never mapped but the reference sample finds {a:.1} ha of it; the accounting has no cohorts to carry that area (it is left out)", p.display()));
            }
            self.classes.push(c);
        }
        self.mapped_ha = eco.mapped_area_ha.clone();
        self.adjusted_ha = eco.adjusted_area_ha.clone();
        let cov = DMatrix::from_fn(k, k, |i, j| {
            0.5 * (eco.covariance_ha2[i][j] + eco.covariance_ha2[j][i])
        });
        if cov.iter().any(|x| !x.is_finite()) {
            return Err(Error::invalid(
                p,
                "ecosystem_areas: a covariance that is not finite",
            ));
        }
        self.factor = psd_factor(&cov);
        Ok(())
    }

    /// The central multipliers: adjusted over mapped area, times the density ratio for forest.
    pub fn central(&self) -> Multipliers {
        let a = DVector::from_vec(self.adjusted_ha.clone());
        self.multipliers(&a, self.density.map(|d| d.ratio))
    }

    fn multipliers(&self, areas: &DVector<f64>, density: Option<f64>) -> Multipliers {
        let mut m = UNIT;
        for (i, c) in self.classes.iter().enumerate() {
            if self.mapped_ha[i] > 0.0 {
                let r = areas[i] / self.mapped_ha[i];
                m[c.index()] = if (r - 1.0).abs() < SAME { 1.0 } else { r };
            }
        }
        if let Some(f) = density {
            m[EcosystemClass::Forest.index()] *= f;
        }
        m
    }

    /// True when the draws differ from the central multipliers.
    fn is_random(&self) -> bool {
        self.factor.iter().any(|x| *x != 0.0) || self.density.is_some_and(|d| d.se > 0.0)
    }

    /// The multipliers of draw `draw`: areas from the multivariate normal of the adjusted
    /// areas, truncated at 0 (the whole vector redrawn), and the density ratio from its
    /// normal truncated at 0. Seeded by (seed, draw) on a stream of its own, so the model
    /// parameters' draws are the same with and without map error.
    pub fn draw(&self, seed: u64, draw: usize) -> Multipliers {
        if !self.is_random() {
            return self.central();
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0x6d61_705f_6572_726f);
        rng.set_stream(draw as u64);
        let k = self.adjusted_ha.len();
        let centre = DVector::from_vec(self.adjusted_ha.clone());
        let mut areas = centre.clone();
        if k > 0 && self.factor.iter().any(|x| *x != 0.0) {
            for _ in 0..MAX_REDRAWS {
                let z = DVector::from_fn(k, |_, _| StandardNormal.sample(&mut rng));
                let a = &centre + &self.factor * z;
                if a.iter().all(|x| *x >= 0.0) {
                    areas = a;
                    break;
                }
            }
        }
        let density = self.density.map(|d| {
            if d.se <= 0.0 {
                return d.ratio;
            }
            for _ in 0..MAX_REDRAWS {
                let z: f64 = StandardNormal.sample(&mut rng);
                let f = d.ratio + d.se * z;
                if f >= 0.0 {
                    return f;
                }
            }
            d.ratio
        });
        self.multipliers(&areas, density)
    }
}

/// The forest density ratio of a calibration: its population must be forest codes only.
fn density_of(f: &CalibrationFile, models: &Models, p: &Path) -> Result<Density> {
    let not_forest: Vec<String> = f
        .population_classes
        .iter()
        .filter(|code| {
            models
                .scheme
                .codes
                .iter()
                .find(|c| c.value == **code)
                .is_none_or(|c| c.class != EcosystemClass::Forest)
        })
        .map(|c| c.to_string())
        .collect();
    if !not_forest.is_empty() || f.population_classes.is_empty() {
        let forest: Vec<String> = models
            .scheme
            .codes
            .iter()
            .filter(|c| c.class == EcosystemClass::Forest)
            .map(|c| c.value.to_string())
            .collect();
        return Err(Error::invalid(
            p,
            format!(
                "the calibration's population includes non-forest codes ({}); the accounting corrects forest density only: rerun `sinkmap calibrate … --classes {}`",
                not_forest.join(","),
                forest.join(",")
            ),
        ));
    }
    let mean = |e: &str| {
        f.totals
            .iter()
            .find(|t| t.zone_id == "all" && t.estimator == e)
            .and_then(|t| t.mean_tc_per_ha.as_ref())
    };
    let (Some(map), Some(greg)) = (mean("map"), mean("greg")) else {
        return Err(Error::invalid(
            p,
            "no map and GREG mean density for the whole population ('all'): the plots did not support a GREG estimate",
        ));
    };
    if !(map.value > 0.0 && greg.value.is_finite() && greg.se.is_finite() && greg.se >= 0.0) {
        return Err(Error::invalid(
            p,
            format!(
                "map mean {} and GREG mean {} ± {} t C/ha: a density ratio needs a map mean > 0 and a finite GREG estimate",
                map.value, greg.value, greg.se
            ),
        ));
    }
    Ok(Density {
        ratio: greg.value / map.value,
        se: greg.se / map.value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_areas(mapped: Vec<f64>, adjusted: Vec<f64>, cov: Vec<Vec<f64>>) -> MapError {
        let mut m = MapError::empty();
        let names = ["forest", "grassland", "barren"];
        let eco = EcosystemAreas {
            classes: names[..mapped.len()]
                .iter()
                .map(|s| s.to_string())
                .collect(),
            se_ha: cov.iter().enumerate().map(|(i, r)| r[i].sqrt()).collect(),
            mapped_area_ha: mapped,
            adjusted_area_ha: adjusted,
            covariance_ha2: cov,
        };
        m.set_areas(&eco, Path::new("a.json")).unwrap();
        m
    }

    #[test]
    fn the_factor_reproduces_a_singular_covariance() {
        // Two classes whose areas sum to a constant: cov = [[v, −v], [−v, v]].
        let cov = DMatrix::from_row_slice(2, 2, &[4.0, -4.0, -4.0, 4.0]);
        let f = psd_factor(&cov);
        assert!((&f * f.transpose() - &cov).abs().max() < 1e-12);
    }

    #[test]
    fn draws_have_the_adjusted_means_the_covariance_and_keep_the_total() {
        let m = with_areas(
            vec![100.0, 300.0, 600.0],
            vec![120.0, 280.0, 600.0],
            vec![
                vec![25.0, -25.0, 0.0],
                vec![-25.0, 100.0, -75.0],
                vec![0.0, -75.0, 75.0],
            ],
        );
        let c = m.central();
        let (f, g, b) = (
            EcosystemClass::Forest.index(),
            EcosystemClass::Grassland.index(),
            EcosystemClass::Barren.index(),
        );
        assert_eq!((c[f], c[g], c[b]), (1.2, 280.0 / 300.0, 1.0));
        let n = 40_000;
        let draws: Vec<[f64; 3]> = (0..n)
            .map(|d| {
                let x = m.draw(7, d);
                [x[f] * 100.0, x[g] * 300.0, x[b] * 600.0]
            })
            .collect();
        let mean = |i: usize| draws.iter().map(|d| d[i]).sum::<f64>() / n as f64;
        let var =
            |i: usize, mu: f64| draws.iter().map(|d| (d[i] - mu).powi(2)).sum::<f64>() / n as f64;
        for (i, (mu, v)) in [(120.0, 25.0), (280.0, 100.0), (600.0, 75.0)]
            .into_iter()
            .enumerate()
        {
            let (m_i, v_i) = (mean(i), var(i, mean(i)));
            // Standard error of the mean √(v/n) ≤ 0.05; of the variance ≈ v √(2/n) ≤ 0.7.
            assert!((m_i - mu).abs() < 0.25, "class {i}: mean {m_i} vs {mu}");
            assert!((v_i - v).abs() < 0.05 * v, "class {i}: var {v_i} vs {v}");
        }
        // The covariance rows sum to 0: every draw keeps the total area.
        for d in &draws {
            assert!((d.iter().sum::<f64>() - 1000.0).abs() < 1e-9);
        }
        // Reproducible.
        assert_eq!(m.draw(7, 3), m.draw(7, 3));
    }

    #[test]
    fn zero_covariance_and_equal_areas_give_unit_multipliers() {
        // Adjusted = mapped up to the estimator's rounding, SE 0: exactly 1.
        let m = with_areas(
            vec![100.0, 300.0],
            vec![100.0 * (1.0 + 1e-15), 300.0],
            vec![vec![0.0, 0.0], vec![0.0, 0.0]],
        );
        assert!(!m.is_random());
        assert_eq!(m.central(), UNIT);
        assert_eq!(m.draw(1, 5), UNIT);
    }

    fn shipped_models() -> crate::model::Models {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let mut m =
            crate::model::Models::load_dir(&root, &root.join("schemes/clcd.toml"), None).unwrap();
        m.restoration = None;
        m
    }

    #[test]
    fn band_width_of_one_class_is_the_closed_form() {
        // 1000 ha of grassland, adjusted 1100 ± 40 ha (barren takes the rest of a 5000 ha
        // map): the net flux is r × A*, so its 5–95 % band is r × 2 × 1.6449 × 40 wide and
        // its nominal r × 1100; the map-based value stays r × 1000.
        let m = with_areas(
            vec![0.0, 1000.0, 4000.0],
            vec![0.0, 1100.0, 3900.0],
            vec![
                vec![0.0, 0.0, 0.0],
                vec![0.0, 1600.0, -1600.0],
                vec![0.0, -1600.0, 1600.0],
            ],
        );
        let mut models = shipped_models();
        for c in models.other.classes.iter_mut() {
            if c.class == EcosystemClass::Grassland {
                c.sink_tc_per_ha_yr = 0.5;
            }
        }
        let mut cube = crate::cube::Cube::default();
        cube.zone_names.insert("Z".into(), "Z".into());
        let key = crate::cube::CubeKey {
            zone_id: "Z".into(),
            class: EcosystemClass::Grassland,
            forest_type: None,
            age_yr: None,
            desert_subtype: None,
            intervention: None,
        };
        let q = crate::cube::CubeSums {
            area: crate::cube::quantize(1000.0),
            ..Default::default()
        };
        cube.cells.insert(key, q);
        let rate = models
            .other
            .classes
            .iter()
            .find(|c| c.class == EcosystemClass::Grassland)
            .unwrap()
            .sink_tco2_per_ha_yr();
        assert!(rate > 0.0);
        let draws = 20_000;
        let acc = crate::accounting::Projection {
            cube: &cube,
            nominal: &models,
            params: &[],
            pools: crate::model::Pools::default(),
            rollout: &Default::default(),
            base_year: 2020,
            until: 2021,
            draws,
            seed: 11,
            map_error: Some(&m),
        }
        .account();
        let total = acc.components.len() - 1;
        let region = acc.zones.len() - 1;
        let b = acc.bands[region][0][total];
        assert!(
            (b.nominal - rate * 1100.0).abs() < 1e-9 * rate * 1100.0,
            "{b:?}"
        );
        let map = acc.map_net[region][0][total];
        assert!((map - rate * 1000.0).abs() < 1e-9 * rate * 1000.0, "{map}");
        let width = b.p95 - b.p05;
        let expected = rate * 2.0 * 1.644_853_6 * 40.0;
        // The 5 % and 95 % quantiles of 20 000 draws have an SD of about 0.015 σ each.
        assert!(
            (width / expected - 1.0).abs() < 0.02,
            "band width {width} vs closed form {expected}"
        );
        assert!((b.mean / (rate * 1100.0) - 1.0).abs() < 0.002, "{b:?}");
        assert_eq!(
            acc.uncertainty_sources,
            vec!["model parameters (0)".to_string()],
            "sources come from the loaded files; a hand-made error lists none"
        );
    }

    #[test]
    fn identity_mismatches_are_named() {
        let id = MapIdentity {
            landcover_sha256: "ab".repeat(32),
            width: 10,
            height: 5,
            geo_transform: [80.0, 0.01, 0.0, 44.0, 0.0, -0.01],
            crs_wkt: "WGS 84".into(),
            scheme: "clcd".into(),
            scheme_codes: vec![(1, "cropland".into()), (2, "forest".into())],
        };
        let p = Path::new("x/assessment.json");
        assert!(id.check(&id, p, "assess").is_ok());
        let other = |f: &dyn Fn(&mut MapIdentity)| {
            let mut o = id.clone();
            f(&mut o);
            id.check(&o, p, "assess").unwrap_err().to_string()
        };
        let e = other(&|o| o.width = 11);
        assert!(
            e.contains("assessment.json") && e.contains("another grid"),
            "{e}"
        );
        let e = other(&|o| o.geo_transform[0] = 80.5);
        assert!(e.contains("another grid"), "{e}");
        let e = other(&|o| o.scheme_codes[1].1 = "shrub".into());
        assert!(e.contains("class scheme"), "{e}");
        let e = other(&|o| o.landcover_sha256 = "cd".repeat(32));
        assert!(
            e.contains("stale") && e.contains("rerun `sinkmap assess`"),
            "{e}"
        );
    }

    #[test]
    fn truncation_keeps_areas_non_negative() {
        // A rare class with SE larger than its area: draws redrawn, never negative.
        let m = with_areas(
            vec![10.0, 990.0],
            vec![5.0, 995.0],
            vec![vec![25.0, -25.0], vec![-25.0, 25.0]],
        );
        let f = EcosystemClass::Forest.index();
        assert!((0..5000).all(|d| m.draw(3, d)[f] >= 0.0));
    }
}
