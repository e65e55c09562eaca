//! Progress bars for long runs (hidden when not asked for or not on a terminal).

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

pub fn bar(show: bool, total: u64, unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
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
    #[test]
    fn rates_in_megapixels_per_second() {
        // The example: "1,386,792.5308/s".
        assert_eq!(super::mpx_per_sec(1_386_792.530_8), "1.39 Mpx/s");
        assert_eq!(super::mpx(400_000_000.0), "400");
        assert_eq!(super::mpx(240_000.0), "0.240");
    }
}
