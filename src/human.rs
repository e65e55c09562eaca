//! Numbers for people: engineering prefixes (k, M, G) and 3–4 significant digits, used by the
//! console summaries, the progress bar and the report. Pure functions; the files keep full
//! precision.

/// `x` with `sig` significant digits (1–17), without exponent, trailing zeros kept only as
/// far as the digits are significant (`sig_digits(1234.5, 3)` = "1230", `(0.012345, 3)` =
/// "0.0123", `(0.0, 3)` = "0").
pub fn sig_digits(x: f64, sig: usize) -> String {
    if !x.is_finite() {
        return format!("{x}");
    }
    if x == 0.0 {
        return "0".into();
    }
    let sig = sig.clamp(1, 17) as i32;
    // Round first, then find the magnitude of the rounded value (999.96 → 1000 at 4 digits).
    let mag = x.abs().log10().floor() as i32;
    let decimals = (sig - 1 - mag).max(0) as usize;
    let s = format!("{:.*}", decimals, x);
    let rounded: f64 = s.parse().unwrap_or(x);
    let mag2 = if rounded == 0.0 {
        mag
    } else {
        rounded.abs().log10().floor() as i32
    };
    if mag2 > mag {
        let decimals = (sig - 1 - mag2).max(0) as usize;
        let s2 = format!("{:.*}", decimals, x);
        return round_integer_part(&s2, sig, mag2);
    }
    round_integer_part(&s, sig, mag)
}

/// Zeroes the integer digits beyond the significant ones ("12345" at 3 → "12300").
fn round_integer_part(s: &str, sig: i32, mag: i32) -> String {
    if mag < sig {
        return s.to_string();
    }
    let x: f64 = s.parse().unwrap_or(0.0);
    let unit = 10f64.powi(mag - sig + 1);
    format!("{:.0}", (x / unit).round() * unit)
}

/// A value with an engineering prefix chosen so that 1 ≤ |mantissa| < 1000 (k, M, G, T; no
/// prefix below 1000), 4 significant digits, and the unit: `engineering(3.4229e7, "t")` =
/// "34.23 Mt".
pub fn engineering(x: f64, unit: &str) -> String {
    let a = x.abs();
    let (div, prefix) = if a >= 1e12 {
        (1e12, "T")
    } else if a >= 1e9 {
        (1e9, "G")
    } else if a >= 1e6 {
        (1e6, "M")
    } else if a >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let mant = sig_digits(x / div, 4);
    // 999 950 rounds to "1000 k": move up a prefix instead.
    if mant.trim_start_matches('-').starts_with("1000") && prefix != "T" {
        return engineering(x.signum() * 1000.0 * div, unit);
    }
    format!("{mant} {prefix}{unit}")
}

/// A mass of carbon: "10.55 Mt C".
pub fn tonnes_c(x: f64) -> String {
    engineering(x, "t C")
}

/// An annual CO₂ flux: "218.7 kt CO₂/yr".
pub fn tonnes_co2_yr(x: f64) -> String {
    engineering(x, "t CO₂/yr")
}

/// An area: "645.9 kha", "1.325 Mha", "950 ha".
pub fn hectares(x: f64) -> String {
    engineering(x, "ha")
}

/// A density or rate per hectare, 3 significant digits: "7.97 t C/ha".
pub fn per_ha(x: f64, unit: &str) -> String {
    format!("{} {unit}", sig_digits(x, 3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn significant_digits_by_hand() {
        assert_eq!(sig_digits(1234.5, 3), "1230");
        assert_eq!(sig_digits(1234.6, 4), "1235");
        assert_eq!(sig_digits(0.012345, 3), "0.0123");
        assert_eq!(sig_digits(7.966, 3), "7.97");
        assert_eq!(sig_digits(-42.0, 3), "-42.0");
        assert_eq!(sig_digits(999.96, 4), "1000");
        assert_eq!(sig_digits(9.9996, 4), "10.00");
        assert_eq!(sig_digits(0.0, 4), "0");
        assert_eq!(sig_digits(5.0e-7, 2), "0.00000050");
    }

    #[test]
    fn engineering_prefixes_by_hand() {
        // The issue's own examples.
        assert_eq!(engineering(3.4229e7, "t CO₂/yr"), "34.23 Mt CO₂/yr");
        assert_eq!(engineering(0.0, "t"), "0 t");
        assert_eq!(tonnes_c(1.0554e7), "10.55 Mt C");
        assert_eq!(tonnes_co2_yr(2.1867e5), "218.7 kt CO₂/yr");
        assert_eq!(tonnes_co2_yr(-3004.4), "-3.004 kt CO₂/yr");
        assert_eq!(hectares(645_932.0), "645.9 kha");
        assert_eq!(hectares(1_324_554.0), "1.325 Mha");
        assert_eq!(hectares(950.0), "950.0 ha");
        assert_eq!(engineering(12.0, "t"), "12.00 t");
        assert_eq!(engineering(999_960.0, "t"), "1.000 Mt");
        assert_eq!(engineering(5.2e11, "t"), "520.0 Gt");
        assert_eq!(per_ha(7.966, "t C/ha"), "7.97 t C/ha");
    }

    /// The printed value, read back with its prefix, is within half a unit of the 4th
    /// significant digit of the input, for values across 15 orders of magnitude.
    #[test]
    fn engineering_round_trips_within_four_digits() {
        let mut x = 1.234_567e-2;
        while x < 1e13 {
            for v in [x, -x, x * 7.77] {
                let s = engineering(v, "t");
                let (num, unit) = s.split_once(' ').unwrap();
                let mult = match unit.chars().next().unwrap() {
                    'k' => 1e3,
                    'M' => 1e6,
                    'G' => 1e9,
                    'T' => 1e12,
                    _ => 1.0,
                };
                let back: f64 = num.parse::<f64>().unwrap() * mult;
                let tol = 0.5 * 10f64.powi(v.abs().log10().floor() as i32 - 3) * 1.0001;
                assert!((back - v).abs() <= tol, "{v} printed as {s}");
                let digits = num.trim_start_matches('-').replace('.', "");
                assert!(
                    digits.trim_start_matches('0').len() <= 4 || v.abs() < 1.0,
                    "{s}"
                );
            }
            x *= 3.7;
        }
    }
}
