//! Progress for long runs: a bar on a terminal (hidden when not asked for or not on a
//! terminal), or, with `--progress-json`, one JSON object a line on standard error for
//! programs that drive sinkmap (the QGIS plugin):
//! `{"progress":0.42,"done":420,"total":1000,"unit":"pixels"}`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use std::fmt::Write;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

/// A pixel count in Mpx, 3 significant digits: 1 386 792 → "1.39".
pub fn mpx(pixels: f64) -> String {
    crate::human::sig_digits(pixels / 1e6, 3)
}

/// A pixel rate: 1 386 792.53 px/s → "1.39 Mpx/s".
pub fn mpx_per_sec(pixels_per_sec: f64) -> String {
    format!(
        "{} Mpx/s",
        crate::human::sig_digits(pixels_per_sec / 1e6, 3)
    )
}

static JSON: AtomicBool = AtomicBool::new(false);

/// Reports progress as JSON lines on standard error (whether or not bars are asked for).
pub fn set_json(on: bool) {
    JSON.store(on, Ordering::Relaxed);
}

/// One progress line: the fraction done (0 when the total is 0), counts and unit.
pub fn json_line(done: u64, total: u64, unit: &str) -> String {
    let fraction = if total == 0 {
        0.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    serde_json::json!({
        "progress": (fraction * 1e4).round() / 1e4,
        "done": done,
        "total": total,
        "unit": unit,
    })
    .to_string()
}

/// How often the JSON reporter looks at the bars.
const JSON_PERIOD: Duration = Duration::from_millis(250);

/// Bars reported as JSON: the bar, its unit and the last position printed.
type Tracked = Vec<(ProgressBar, String, Option<u64>)>;

fn tracked() -> &'static Mutex<Tracked> {
    static T: OnceLock<Mutex<Tracked>> = OnceLock::new();
    T.get_or_init(|| {
        // One reporter thread for the life of the process.
        let _ = std::thread::Builder::new()
            .name("progress".into())
            .spawn(|| loop {
                std::thread::sleep(JSON_PERIOD);
                flush();
            });
        Mutex::new(Vec::new())
    })
}

/// Prints a JSON line for every tracked bar that moved since its last line, and forgets the
/// finished ones. The reporter calls it periodically; call it before exiting so that the last
/// state is printed.
pub fn flush() {
    if !JSON.load(Ordering::Relaxed) {
        return;
    }
    let Ok(mut bars) = tracked().lock() else {
        return;
    };
    for (b, unit, last) in bars.iter_mut() {
        let done = b.position();
        if *last != Some(done) {
            eprintln!("{}", json_line(done, b.length().unwrap_or(0), unit));
            *last = Some(done);
        }
    }
    bars.retain(|(b, _, _)| !b.is_finished());
}

/// A progress bar over `total` units (hidden unless `show`).
pub fn bar(show: bool, total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if JSON.load(Ordering::Relaxed) {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        // The first line goes out at once: a run shorter than the reporter's period still
        // says that it started (0 %) before its last line says that it finished.
        eprintln!("{}", json_line(0, total, unit));
        if let Ok(mut bars) = tracked().lock() {
            bars.push((bar.clone(), unit.to_string(), Some(0)));
        }
        return bar;
    }
    if !show {
        bar.set_draw_target(ProgressDrawTarget::hidden());
        return bar;
    }
    bar.set_draw_target(ProgressDrawTarget::stderr());
    // Pixels count in Mpx and Mpx/s (3 significant digits), other units as they are.
    let template = if unit == "pixels" {
        "{spinner} [{elapsed_precise}] {wide_bar} {mpx_pos}/{mpx_len} Mpx ({mpx_per_sec}, eta {eta})".to_string()
    } else {
        format!("{{spinner}} [{{elapsed_precise}}] {{wide_bar}} {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, eta {{eta}})")
    };
    if let Ok(style) = ProgressStyle::with_template(&template) {
        let style = style
            .with_key("mpx_pos", |s: &ProgressState, w: &mut dyn Write| {
                let _ = write!(w, "{}", mpx(s.pos() as f64));
            })
            .with_key("mpx_len", |s: &ProgressState, w: &mut dyn Write| {
                let _ = write!(w, "{}", mpx(s.len().unwrap_or(0) as f64));
            })
            .with_key("mpx_per_sec", |s: &ProgressState, w: &mut dyn Write| {
                let _ = write!(w, "{}", mpx_per_sec(s.per_sec()));
            });
        bar.set_style(style);
    }
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_in_megapixels_per_second() {
        // The example: "1,386,792.5308/s".
        assert_eq!(mpx_per_sec(1_386_792.530_8), "1.39 Mpx/s");
        assert_eq!(mpx(400_000_000.0), "400");
        assert_eq!(mpx(240_000.0), "0.240");
    }

    #[test]
    fn json_lines_carry_the_fraction_and_counts() {
        let v: serde_json::Value = serde_json::from_str(&json_line(1, 3, "pixels")).unwrap();
        assert_eq!(v["progress"], 0.3333);
        assert_eq!(
            (v["done"].as_u64(), v["total"].as_u64()),
            (Some(1), Some(3))
        );
        assert_eq!(v["unit"], "pixels");
        let z: serde_json::Value = serde_json::from_str(&json_line(0, 0, "px")).unwrap();
        assert_eq!(z["progress"], 0.0);
    }
}
