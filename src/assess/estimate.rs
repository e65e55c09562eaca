//! Design-based estimators for a map's accuracy and its error-adjusted class areas, from a
//! probability sample of reference observations. Pure: no IO, no GDAL.
//!
//! One estimator serves every design: the stratified estimator of totals and ratios of
//! Stehman (2014, Int. J. Remote Sens. 35:4923–4939), with each sample unit carrying its
//! stratum, its map class and its reference class.
//! * Strata = map classes gives exactly the estimators of Olofsson et al. (2013, Remote Sens.
//!   Environ. 129:122–131; 2014, 148:42–57): area proportions p̂·k = Σᵢ Wᵢ nᵢₖ/nᵢ·, user's,
//!   producer's and overall accuracy with their standard errors.
//! * Strata from another map (e.g. a stratification made before the map was revised) is
//!   Stehman's general case.
//! * A simple random or systematic sample is one stratum covering the whole area; the
//!   variance of a systematic sample is estimated as if it were simple random, the usual
//!   (mostly conservative) approximation.
//!
//! Variances ignore the finite-population correction: a map has millions of pixels and a
//! sample hundreds. Intervals are estimate ± 1.96 SE (normal approximation, as Olofsson 2014).

/// z value of a two-sided 95 % normal interval.
pub const Z95: f64 = 1.959_963_984_540_054;

/// One reference observation: indices into the strata and the class list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unit {
    /// Index of the unit's stratum (docs/science.md §6.1).
    pub stratum: usize,
    /// Index of the class the map shows at the unit.
    pub map_class: usize,
    /// Index of the class the reference observation found.
    pub ref_class: usize,
}

/// An estimate with its standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Est {
    /// The estimate (in the unit of what is estimated: a proportion, an accuracy, ha, t C/ha).
    pub value: f64,
    /// Its standard error (same unit).
    pub se: f64,
}

impl Est {
    /// The 95 % interval `value ± 1.96 SE` (normal approximation), as (low, high).
    pub fn ci95(&self) -> (f64, f64) {
        (self.value - Z95 * self.se, self.value + Z95 * self.se)
    }
    /// The estimate of `k ×` the quantity: value × k, SE × |k| (e.g. a proportion × the total
    /// area).
    pub fn scaled(&self, k: f64) -> Est {
        Est {
            value: self.value * k,
            se: self.se * k.abs(),
        }
    }
}

/// Why a sample cannot be analysed as declared.
#[derive(Debug, Clone, PartialEq)]
pub enum DesignError {
    /// A stratum with area but no sample unit: its share cannot be estimated.
    EmptyStratum {
        /// Index of the stratum.
        stratum: usize,
    },
    /// A stratum with a single unit: its within-stratum variance cannot be estimated.
    SingleUnit {
        /// Index of the stratum.
        stratum: usize,
    },
    /// Sample units in a stratum the design gives no area (the sample does not match it).
    UnitsWithoutArea {
        /// Index of the stratum.
        stratum: usize,
        /// Number of units in it.
        units: usize,
    },
    /// An index beyond the strata or classes.
    OutOfRange {
        /// Index of the unit in the sample.
        unit: usize,
    },
    /// The strata have no area at all.
    NoArea,
}

impl std::fmt::Display for DesignError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DesignError::EmptyStratum { stratum } => write!(f, "stratum {stratum} has mapped area but no sample unit; every stratum needs at least 2"),
            DesignError::SingleUnit { stratum } => write!(f, "stratum {stratum} has a single sample unit; its variance cannot be estimated (at least 2 per stratum)"),
            DesignError::UnitsWithoutArea { stratum, units } => write!(f, "{units} sample unit(s) fall in stratum {stratum}, which has no area in the strata map: the sample does not match the declared design"),
            DesignError::OutOfRange { unit } => write!(f, "sample unit {unit} names a stratum or class outside the scheme"),
            DesignError::NoArea => write!(f, "the strata have no area"),
        }
    }
}

/// The per-stratum moments of a pair of unit variables (y, x).
struct Moments {
    n: f64,
    mean_y: f64,
    mean_x: f64,
    var_y: f64,
    var_x: f64,
    cov_xy: f64,
}

/// A checked stratified sample: units grouped by stratum, with stratum areas.
pub struct Sample<'a> {
    by_stratum: Vec<Vec<&'a Unit>>,
    /// Area of each stratum (any unit; the estimators use shares and scaled totals).
    strata_area: Vec<f64>,
}

impl<'a> Sample<'a> {
    /// Groups `units` by stratum and checks that the design can be estimated: every stratum
    /// with area has ≥ 2 units, no unit lies in a stratum without area.
    pub fn new(
        units: &'a [Unit],
        strata_area: &[f64],
        n_classes: usize,
    ) -> Result<Self, DesignError> {
        let mut by_stratum: Vec<Vec<&Unit>> = vec![Vec::new(); strata_area.len()];
        for (i, u) in units.iter().enumerate() {
            if u.stratum >= strata_area.len()
                || u.map_class >= n_classes
                || u.ref_class >= n_classes
            {
                return Err(DesignError::OutOfRange { unit: i });
            }
            by_stratum[u.stratum].push(u);
        }
        for (h, us) in by_stratum.iter().enumerate() {
            let area = strata_area[h];
            if area > 0.0 && us.is_empty() {
                return Err(DesignError::EmptyStratum { stratum: h });
            }
            if area > 0.0 && us.len() == 1 {
                return Err(DesignError::SingleUnit { stratum: h });
            }
            if area <= 0.0 && !us.is_empty() {
                return Err(DesignError::UnitsWithoutArea {
                    stratum: h,
                    units: us.len(),
                });
            }
        }
        if strata_area.iter().sum::<f64>() <= 0.0 {
            return Err(DesignError::NoArea);
        }
        Ok(Sample {
            by_stratum,
            strata_area: strata_area.to_vec(),
        })
    }

    fn total_area(&self) -> f64 {
        self.strata_area.iter().sum()
    }

    fn moments(&self, h: usize, y: &dyn Fn(&Unit) -> f64, x: &dyn Fn(&Unit) -> f64) -> Moments {
        let us = &self.by_stratum[h];
        let n = us.len() as f64;
        let mean_y = us.iter().map(|u| y(u)).sum::<f64>() / n;
        let mean_x = us.iter().map(|u| x(u)).sum::<f64>() / n;
        let (mut vy, mut vx, mut cxy) = (0.0, 0.0, 0.0);
        for u in us {
            let (dy, dx) = (y(u) - mean_y, x(u) - mean_x);
            vy += dy * dy;
            vx += dx * dx;
            cxy += dx * dy;
        }
        let d = n - 1.0;
        Moments {
            n,
            mean_y,
            mean_x,
            var_y: vy / d,
            var_x: vx / d,
            cov_xy: cxy / d,
        }
    }

    /// Estimated population share of the area where the unit variable `y` holds
    /// (Stehman 2014 eqs. 3–5): Σₕ Wₕ ȳₕ with V = Σₕ Wₕ² s²ᵧₕ / nₕ.
    pub fn proportion(&self, y: &dyn Fn(&Unit) -> f64) -> Est {
        let total = self.total_area();
        let (mut p, mut v) = (0.0, 0.0);
        for h in 0..self.strata_area.len() {
            if self.strata_area[h] <= 0.0 {
                continue;
            }
            let w = self.strata_area[h] / total;
            let m = self.moments(h, y, y);
            p += w * m.mean_y;
            v += w * w * m.var_y / m.n;
        }
        Est {
            value: p,
            se: v.sqrt(),
        }
    }

    /// Ratio R = Y/X of two estimated totals (Stehman 2014 eqs. 26–28):
    /// V(R̂) = 1/X̂² Σₕ Nₕ² (s²ᵧₕ + R̂² s²ₓₕ − 2R̂ sₓᵧₕ)/nₕ. `None` when X̂ = 0 (nothing to divide by).
    pub fn ratio(&self, y: &dyn Fn(&Unit) -> f64, x: &dyn Fn(&Unit) -> f64) -> Option<Est> {
        let total = self.total_area();
        let ms: Vec<(f64, Moments)> = (0..self.strata_area.len())
            .filter(|&h| self.strata_area[h] > 0.0)
            .map(|h| (self.strata_area[h] / total, self.moments(h, y, x)))
            .collect();
        let yhat: f64 = ms.iter().map(|(w, m)| w * m.mean_y).sum();
        let xhat: f64 = ms.iter().map(|(w, m)| w * m.mean_x).sum();
        if xhat <= 0.0 {
            return None;
        }
        let r = yhat / xhat;
        let v: f64 = ms
            .iter()
            .map(|(w, m)| w * w * (m.var_y + r * r * m.var_x - 2.0 * r * m.cov_xy) / m.n)
            .sum::<f64>()
            / (xhat * xhat);
        Some(Est {
            value: r,
            se: v.max(0.0).sqrt(),
        })
    }
}

/// Everything an accuracy assessment reports, for `n_classes` classes.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Assessment {
    /// Sample counts: `counts[map class][reference class]`.
    pub counts: Vec<Vec<usize>>,
    /// Estimated area proportions p̂ᵢⱼ (map class i, reference class j), summing to 1.
    pub proportions: Vec<Vec<f64>>,
    /// Overall accuracy: the estimated proportion of the area where map and reference agree
    /// (docs/science.md §6.2).
    pub overall: Est,
    /// User's accuracy of each map class (None: no unit mapped as it).
    pub users: Vec<Option<Est>>,
    /// Producer's accuracy of each reference class (None: estimated area of the class is 0).
    pub producers: Vec<Option<Est>>,
    /// Estimated proportion of the total area in each reference class.
    pub area_proportion: Vec<Est>,
    /// The total area the proportions refer to (units of the strata areas).
    pub total_area: f64,
}

impl Assessment {
    /// Error-adjusted area of class `k` (units of the strata areas), with its SE.
    pub fn adjusted_area(&self, k: usize) -> Est {
        self.area_proportion[k].scaled(self.total_area)
    }
}

/// The full assessment of a stratified sample (any of the designs above).
pub fn assess(
    units: &[Unit],
    strata_area: &[f64],
    n_classes: usize,
) -> Result<Assessment, DesignError> {
    let s = Sample::new(units, strata_area, n_classes)?;
    let k = n_classes;
    let mut counts = vec![vec![0usize; k]; k];
    for u in units {
        counts[u.map_class][u.ref_class] += 1;
    }
    let ind = |b: bool| if b { 1.0 } else { 0.0 };
    let proportions = (0..k)
        .map(|i| {
            (0..k)
                .map(|j| {
                    s.proportion(&|u: &Unit| ind(u.map_class == i && u.ref_class == j))
                        .value
                })
                .collect()
        })
        .collect();
    let overall = s.proportion(&|u: &Unit| ind(u.map_class == u.ref_class));
    let users = (0..k)
        .map(|i| {
            s.ratio(
                &|u: &Unit| ind(u.map_class == i && u.ref_class == i),
                &|u: &Unit| ind(u.map_class == i),
            )
        })
        .collect();
    let producers = (0..k)
        .map(|j| {
            s.ratio(
                &|u: &Unit| ind(u.map_class == j && u.ref_class == j),
                &|u: &Unit| ind(u.ref_class == j),
            )
        })
        .collect();
    let area_proportion = (0..k)
        .map(|j| s.proportion(&|u: &Unit| ind(u.ref_class == j)))
        .collect();
    Ok(Assessment {
        counts,
        proportions,
        overall,
        users,
        producers,
        area_proportion,
        total_area: s.total_area(),
    })
}

/// Estimated mean over the area of a per-reference-class value v (e.g. a class's mean
/// carbon density): Σₕ Wₕ mean(v[ref class]) — the class proportions weighted by v in one
/// unit variable, so that the covariances between class areas enter its SE.
pub fn mean_of_class_values(
    units: &[Unit],
    strata_area: &[f64],
    n_classes: usize,
    values: &[f64],
) -> Result<Est, DesignError> {
    let s = Sample::new(units, strata_area, n_classes)?;
    Ok(s.proportion(&|u: &Unit| values[u.ref_class]))
}

/// Estimated area proportions of groups of reference classes (e.g. the land-cover codes of
/// one ecosystem class), with their full sampling covariance matrix:
/// p̂_g = Σₕ Wₕ ȳ_gh and Cov(p̂_g, p̂_g') = Σₕ Wₕ² s_gg'h / nₕ (Stehman 2014 eq. 5 applied to
/// the product of two indicator variables; the diagonal is the variance of `proportion`).
pub fn group_proportions_with_covariance(
    units: &[Unit],
    strata_area: &[f64],
    n_classes: usize,
    groups: &[Vec<usize>],
) -> Result<(Vec<f64>, Vec<Vec<f64>>), DesignError> {
    let s = Sample::new(units, strata_area, n_classes)?;
    let total = s.total_area();
    let g = groups.len();
    let ind = |k: usize| {
        move |u: &Unit| {
            if groups[k].contains(&u.ref_class) {
                1.0
            } else {
                0.0
            }
        }
    };
    let mut p = vec![0.0; g];
    let mut cov = vec![vec![0.0; g]; g];
    for h in 0..s.strata_area.len() {
        if s.strata_area[h] <= 0.0 {
            continue;
        }
        let w = s.strata_area[h] / total;
        for (a, (pa, row)) in p.iter_mut().zip(cov.iter_mut()).enumerate() {
            for (b, c) in row.iter_mut().enumerate() {
                let m = s.moments(h, &ind(a), &ind(b));
                if a == b {
                    *pa += w * m.mean_y;
                }
                *c += w * w * m.cov_xy / m.n;
            }
        }
    }
    Ok((p, cov))
}

/// Expands an error matrix of counts (`counts[map][ref]`, strata = map classes) to units.
pub fn units_from_matrix(counts: &[Vec<usize>]) -> Vec<Unit> {
    let mut out = Vec::new();
    for (i, row) in counts.iter().enumerate() {
        for (j, &n) in row.iter().enumerate() {
            out.extend(std::iter::repeat_n(
                Unit {
                    stratum: i,
                    map_class: i,
                    ref_class: j,
                },
                n,
            ));
        }
    }
    out
}

/// Error-adjusted areas of the ecosystem classes (the scheme's codes grouped by class) of the
/// whole map, with the covariance matrix of their estimators (ha²).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct EcosystemAreas {
    /// Names of the ecosystem classes the scheme's codes belong to.
    pub classes: Vec<String>,
    /// Their areas on the map (ha).
    pub mapped_area_ha: Vec<f64>,
    /// Their error-adjusted areas Â_E (ha).
    pub adjusted_area_ha: Vec<f64>,
    /// Standard errors of the adjusted areas (ha).
    pub se_ha: Vec<f64>,
    /// Covariance matrix of the adjusted areas, `[E][F]` (ha²).
    pub covariance_ha2: Vec<Vec<f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Olofsson et al. (2014) §5 worked example: Table 8 (sample counts, rows = map classes
    /// deforestation, forest gain, stable forest, stable non-forest; columns = reference),
    /// mapped areas in 30 m pixels from the same table.
    fn olofsson_2014() -> (Vec<Vec<usize>>, Vec<f64>) {
        let counts = vec![
            vec![66, 0, 5, 4],
            vec![0, 55, 8, 12],
            vec![1, 0, 153, 11],
            vec![2, 1, 9, 313],
        ];
        let pixels = vec![200_000.0, 150_000.0, 3_200_000.0, 6_450_000.0];
        (counts, pixels)
    }

    fn round_to(x: f64, digits: i32) -> f64 {
        let f = 10f64.powi(digits);
        (x * f).round() / f
    }

    #[test]
    fn olofsson_2014_worked_example_to_the_published_digits() {
        let (counts, pixels) = olofsson_2014();
        let a = assess(&units_from_matrix(&counts), &pixels, 4).unwrap();
        // Table 9 of Olofsson et al. (2014): estimated area proportions, 4 decimals.
        let table9 = [
            [0.0176, 0.0000, 0.0013, 0.0011],
            [0.0000, 0.0110, 0.0016, 0.0024],
            [0.0019, 0.0000, 0.2967, 0.0213],
            [0.0040, 0.0020, 0.0179, 0.6212],
        ];
        for (i, row) in table9.iter().enumerate() {
            for (j, want) in row.iter().enumerate() {
                assert_eq!(round_to(a.proportions[i][j], 4), *want, "p[{i}][{j}]");
            }
        }
        // §5 text: areas in hectares (1 pixel = 0.09 ha) with 95 % CI half-widths:
        // deforestation 21 158 ± 6 158 ha, forest gain 11 686 ± 3 756 ha, stable forest
        // 285 770 ± 15 510 ha, stable non-forest 581 386 ± 16 282 ha; deforestation in pixels
        // 235 086 ± 68 418. (The same figures are the expected values of the Python package
        // accuracyAssessmentTools, tests/test_olofsson.py.)
        let published_ha = [
            (21_158.0, 6_158.0),
            (11_686.0, 3_756.0),
            (285_770.0, 15_510.0),
            (581_386.0, 16_282.0),
        ];
        for (k, (area, half)) in published_ha.iter().enumerate() {
            let e = a.adjusted_area(k).scaled(0.09);
            assert_eq!(e.value.round(), *area, "area of class {k}");
            // The paper's half-widths use z = 1.96.
            assert_eq!((1.96 * e.se).round(), *half, "CI of class {k}");
        }
        let px = a.adjusted_area(0);
        assert_eq!(px.value.round(), 235_086.0);
        assert_eq!((1.96 * px.se).round(), 68_418.0);
        // §5: user's accuracies 0.88 ± 0.07, 0.73 ± 0.10, 0.93 ± 0.04, 0.96 ± 0.02;
        // producer's 0.75 ± 0.21, 0.85 ± 0.23, 0.93 ± 0.03, 0.96 ± 0.01; overall 0.95 ± 0.02.
        let users = [(0.88, 0.07), (0.73, 0.10), (0.93, 0.04), (0.96, 0.02)];
        for (k, (u, half)) in users.iter().enumerate() {
            let e = a.users[k].unwrap();
            assert_eq!(round_to(e.value, 2), *u, "user's {k}");
            assert_eq!(round_to(1.96 * e.se, 2), *half, "user's CI {k}");
        }
        let producers = [(0.75, 0.21), (0.85, 0.23), (0.93, 0.03), (0.96, 0.01)];
        for (k, (p, half)) in producers.iter().enumerate() {
            let e = a.producers[k].unwrap();
            assert_eq!(round_to(e.value, 2), *p, "producer's {k}");
            // Two published half-widths do not follow from the paper's own variance formula
            // (Olofsson 2014 eq. 7): forest gain gives 0.254 (printed 0.23), stable
            // non-forest 0.018 (printed 0.01). The matrix-form test below checks eq. 7 itself;
            // the Python package accuracyAssessmentTools skips the same two values for the
            // same reason. Those two are held to ±0.025 of print, the rest exactly.
            let got = round_to(1.96 * e.se, 2);
            if k == 1 || k == 3 {
                assert!((got - half).abs() <= 0.025, "producer's CI {k}: {got}");
            } else {
                assert_eq!(got, *half, "producer's CI {k}");
            }
        }
        assert_eq!(round_to(a.overall.value, 2), 0.95);
        assert_eq!(round_to(1.96 * a.overall.se, 2), 0.02);
    }

    /// Olofsson et al. (2014) eqs. 5–7 and Olofsson et al. (2013) eq. for producer's
    /// accuracy variance, written out directly on the matrix: an independent computation
    /// that the unit-level (Stehman) estimator must match when strata = map classes.
    #[test]
    fn unit_level_estimator_equals_the_matrix_formulas() {
        let (counts, pixels) = olofsson_2014();
        let a = assess(&units_from_matrix(&counts), &pixels, 4).unwrap();
        let total: f64 = pixels.iter().sum();
        let w: Vec<f64> = pixels.iter().map(|p| p / total).collect();
        let ni: Vec<f64> = counts
            .iter()
            .map(|r| r.iter().sum::<usize>() as f64)
            .collect();
        for k in 0..4 {
            let mut p = 0.0;
            let mut v = 0.0;
            for i in 0..4 {
                let f = counts[i][k] as f64 / ni[i];
                p += w[i] * f;
                v += w[i] * w[i] * f * (1.0 - f) / (ni[i] - 1.0);
            }
            assert!((a.area_proportion[k].value - p).abs() < 1e-12);
            assert!((a.area_proportion[k].se - v.sqrt()).abs() < 1e-12);
            // Producer's accuracy variance, Olofsson 2013 eq. (the Card 1982 form).
            let nj_hat: f64 = (0..4)
                .map(|i| pixels[i] / ni[i] * counts[i][k] as f64)
                .sum();
            let u = counts[k][k] as f64 / ni[k];
            let pa = pixels[k] / ni[k] * counts[k][k] as f64 / nj_hat;
            let mut s = pixels[k].powi(2) * (1.0 - pa).powi(2) * u * (1.0 - u) / (ni[k] - 1.0);
            for i in (0..4).filter(|&i| i != k) {
                let f = counts[i][k] as f64 / ni[i];
                s += pa * pa * pixels[i].powi(2) * f * (1.0 - f) / (ni[i] - 1.0);
            }
            let se = (s / (nj_hat * nj_hat)).sqrt();
            let got = a.producers[k].unwrap();
            assert!((got.value - pa).abs() < 1e-12);
            assert!((got.se - se).abs() < 1e-12, "{} vs {se}", got.se);
            let gu = a.users[k].unwrap();
            assert!((gu.se - (u * (1.0 - u) / (ni[k] - 1.0)).sqrt()).abs() < 1e-12);
        }
        let sum: f64 = a.proportions.iter().flatten().sum();
        assert!((sum - 1.0).abs() < 1e-12);
    }

    /// Stehman (2014) Table 2: 40 units in 4 strata (N = 40 000, 30 000, 20 000, 10 000
    /// pixels, 10 units each) that differ from the map classes A–D. Published: p̂(A) = 0.35
    /// (SE 0.082), p̂(C) = 0.20 (SE 0.064), O = 0.63 (SE 0.085), U(B) = 0.574 (SE 0.125),
    /// P(B) = 0.794, p̂(B,C) = 0.08. (The paper's SE of P(B), 0.114, uses s²ₓ = 0 in stratum 4
    /// where its own Table 3 has 0.1; with 0.1 it is 0.1166, as the Python package
    /// accuracyAssessmentTools also notes in its tests/test_stehman.py.)
    #[test]
    fn stehman_2014_strata_differ_from_map_classes() {
        let rows = [
            "1AA", "1AA", "1AA", "1AA", "1AA", "1AC", "1AB", "1BA", "1BB", "1BC", "2AA", "2BB",
            "2BB", "2BB", "2BB", "2BB", "2BA", "2BA", "2BB", "2BB", "3BC", "3BC", "3CC", "3CC",
            "3CC", "3CD", "3CD", "3CB", "3BB", "3BA", "4DD", "4DD", "4DD", "4DD", "4DD", "4DD",
            "4DD", "4DC", "4DC", "4DB",
        ];
        let units: Vec<Unit> = rows
            .iter()
            .map(|r| {
                let b = r.as_bytes();
                Unit {
                    stratum: (b[0] - b'1') as usize,
                    map_class: (b[1] - b'A') as usize,
                    ref_class: (b[2] - b'A') as usize,
                }
            })
            .collect();
        let a = assess(&units, &[40_000.0, 30_000.0, 20_000.0, 10_000.0], 4).unwrap();
        let r3 = |x: f64| round_to(x, 3);
        assert_eq!(round_to(a.area_proportion[0].value, 2), 0.35);
        assert_eq!(r3(a.area_proportion[0].se), 0.082);
        assert_eq!(round_to(a.area_proportion[2].value, 2), 0.20);
        assert_eq!(r3(a.area_proportion[2].se), 0.064);
        assert_eq!(round_to(a.overall.value, 2), 0.63);
        assert_eq!(r3(a.overall.se), 0.085);
        assert_eq!(r3(a.users[1].unwrap().value), 0.574);
        assert_eq!(r3(a.users[1].unwrap().se), 0.125);
        assert_eq!(r3(a.producers[1].unwrap().value), 0.794);
        // 0.1166 with s²ₓ₄ = 0.1 from the paper's Table 3 (0.114 as printed uses 0).
        assert!((a.producers[1].unwrap().se - 0.1166).abs() < 5e-5);
        assert_eq!(round_to(a.proportions[1][2], 2), 0.08);
    }

    #[test]
    fn simple_random_is_one_stratum_with_binomial_variance() {
        // 10 units: 6 of class 0 (5 correct), 4 of class 1 (3 correct).
        let mut units = Vec::new();
        for (m, r, n) in [(0, 0, 5), (0, 1, 1), (1, 1, 3), (1, 0, 1)] {
            for _ in 0..n {
                units.push(Unit {
                    stratum: 0,
                    map_class: m,
                    ref_class: r,
                });
            }
        }
        let a = assess(&units, &[1000.0], 2).unwrap();
        // Reference class 0: 6 of 10 → p = 0.6, SE = sqrt(0.6·0.4/9).
        assert!((a.area_proportion[0].value - 0.6).abs() < 1e-12);
        assert!((a.area_proportion[0].se - (0.24f64 / 9.0).sqrt()).abs() < 1e-12);
        assert!((a.adjusted_area(0).value - 600.0).abs() < 1e-9);
        assert!((a.overall.value - 0.8).abs() < 1e-12);
        assert!((a.overall.se - (0.16f64 / 9.0).sqrt()).abs() < 1e-12);
        // User's accuracy of class 0 as a ratio: 5/6.
        assert!((a.users[0].unwrap().value - 5.0 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn class_value_mean_is_the_weighted_sum_of_proportions_with_covariance() {
        let (counts, pixels) = olofsson_2014();
        let units = units_from_matrix(&counts);
        let a = assess(&units, &pixels, 4).unwrap();
        let d = [10.0, 20.0, 100.0, 5.0];
        let m = mean_of_class_values(&units, &pixels, 4, &d).unwrap();
        let direct: f64 = (0..4).map(|k| d[k] * a.area_proportion[k].value).sum();
        assert!((m.value - direct).abs() < 1e-12);
        // Equal values for every class: the mean is that value, with no error at all.
        let flat = mean_of_class_values(&units, &pixels, 4, &[7.0; 4]).unwrap();
        assert!((flat.value - 7.0).abs() < 1e-12 && flat.se < 1e-12);
        // Hand check in one stratum: values 1 (×2) and 3 (×2) → mean 2, s² = 4/3, SE = √(1/3).
        let u = |r| Unit {
            stratum: 0,
            map_class: 0,
            ref_class: r,
        };
        let two = [u(0), u(0), u(1), u(1)];
        let e = mean_of_class_values(&two, &[5.0], 2, &[1.0, 3.0]).unwrap();
        assert!((e.value - 2.0).abs() < 1e-12 && (e.se - (1.0f64 / 3.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn grouped_proportions_have_the_covariance_of_the_sum() {
        // Olofsson 2014: classes 0 and 1 grouped, 2 and 3 alone.
        let (counts, areas) = olofsson_2014();
        let units = units_from_matrix(&counts);
        let groups = vec![vec![0, 1], vec![2], vec![3]];
        let (p, cov) = group_proportions_with_covariance(&units, &areas, 4, &groups).unwrap();
        let s = Sample::new(&units, &areas, 4).unwrap();
        let one = |set: Vec<usize>| {
            s.proportion(&move |u: &Unit| if set.contains(&u.ref_class) { 1.0 } else { 0.0 })
        };
        // Diagonal = the variance of the grouped proportion computed directly.
        for (g, set) in groups.iter().enumerate() {
            let e = one(set.clone());
            assert!((p[g] - e.value).abs() < 1e-12);
            assert!((cov[g][g] - e.se * e.se).abs() < 1e-14, "{g}");
        }
        // Var(p̂0 + p̂1) = V0 + V1 + 2 C01, against the proportion of the union of their classes.
        let u = one(vec![0, 1, 2]);
        let v = cov[0][0] + cov[1][1] + 2.0 * cov[0][1];
        assert!((v - u.se * u.se).abs() < 1e-14, "{v} vs {}", u.se * u.se);
        // The proportions sum to 1 exactly, so every row of the covariance sums to 0.
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        for row in &cov {
            assert!(row.iter().sum::<f64>().abs() < 1e-15, "{row:?}");
        }
    }

    #[test]
    fn design_errors_are_named() {
        let u = |s, m, r| Unit {
            stratum: s,
            map_class: m,
            ref_class: r,
        };
        let one = [u(0, 0, 0), u(0, 0, 0), u(1, 1, 1)];
        assert_eq!(
            assess(&one, &[1.0, 1.0], 2).unwrap_err(),
            DesignError::SingleUnit { stratum: 1 }
        );
        let none = [u(0, 0, 0), u(0, 0, 1)];
        assert_eq!(
            assess(&none, &[1.0, 1.0], 2).unwrap_err(),
            DesignError::EmptyStratum { stratum: 1 }
        );
        let stray = [u(0, 0, 0), u(0, 0, 1), u(1, 1, 1), u(1, 1, 1)];
        assert_eq!(
            assess(&stray, &[1.0, 0.0], 2).unwrap_err(),
            DesignError::UnitsWithoutArea {
                stratum: 1,
                units: 2
            }
        );
        assert!(assess(&[u(0, 5, 0)], &[1.0], 2).is_err());
    }
}
