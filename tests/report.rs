//! The report: non-blank PNGs, numbers equal to the CSV/JSON outputs, and (where Chromium is
//! installed) every image loads in a real browser with the headline numbers shown.

#![cfg(feature = "gdal")]

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// Variance of the luminance of a PNG (any colour type png decodes to 8-bit).
fn luminance_variance(path: &Path) -> f64 {
    let dec = png::Decoder::new(std::fs::File::open(path).unwrap());
    let mut reader = dec.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let ch = info.color_type.samples();
    let px: Vec<f64> = buf[..info.buffer_size()]
        .chunks(ch)
        .map(|p| {
            if ch >= 3 {
                0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64
            } else {
                p[0] as f64
            }
        })
        .collect();
    let m = px.iter().sum::<f64>() / px.len() as f64;
    px.iter().map(|v| (v - m).powi(2)).sum::<f64>() / px.len() as f64
}

/// `data-value` of the element with `id` in an HTML text.
fn value_of(html: &str, id: &str) -> Option<f64> {
    let i = html.find(&format!("id=\"{id}\""))?;
    let rest = &html[i..];
    let j = rest.find("data-value=\"")? + "data-value=\"".len();
    rest[j..].split('"').next()?.parse().ok()
}

fn run_sample(dir: &Path) -> std::path::PathBuf {
    let scene = synth_scene(dir, 200, 140, 5);
    let o = sinkmap(&[
        "run",
        scene.to_str().unwrap(),
        "--quiet",
        "--until",
        "2060",
        "--draws",
        "50",
        "--allow-subregion-balance",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    dir.join("out")
}

const HEADLINE: [(&str, &str); 6] = [
    ("h_area", "/totals/area_ha"),
    ("h_stock", "/totals/stock_tc"),
    ("h_sink", "/totals/sink_tco2_yr"),
    ("h_forest", "/totals/forest_sink_tco2_yr"),
    ("h_desert", "/totals/desert_sink_tco2_yr"),
    ("h_potential", "/restoration/potential_best_tco2_yr"),
];

#[test]
fn every_figure_has_content_and_the_numbers_match_the_outputs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = run_sample(tmp.path());
    let pngs = list(&out.join("report"));
    for want in [
        "stock_tc_per_ha.png",
        "sink_tco2_per_ha_yr.png",
        "potential_tco2_per_ha_yr.png",
        "best_intervention.png",
        "zones_sink.png",
        "zones_potential.png",
        "zones_bars.png",
        "trajectory.png",
        "emissions.png",
        "share_offset.png",
    ] {
        assert!(pngs.iter().any(|p| p == want), "{want} missing: {pngs:?}");
        let v = luminance_variance(&out.join("report").join(want));
        assert!(v > 100.0, "{want} looks blank (luminance variance {v})");
    }
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_eq!(
        html.matches("<img ").count(),
        pngs.len(),
        "every figure is embedded"
    );
    let s = json(&out.join("summary.json"));
    for (id, ptr) in HEADLINE {
        let want = s.pointer(ptr).and_then(|v| v.as_f64()).unwrap();
        assert_eq!(value_of(&html, id), Some(want), "{id}");
    }
    let share = s
        .pointer("/accounting/share_of_reference_emissions_offset_p50")
        .and_then(|v| v.as_f64())
        .unwrap();
    assert_eq!(value_of(&html, "h_share"), Some(share));
    // The zone table shows zones.csv's numbers.
    let (h, rows) = read_csv(&out.join("zones.csv"));
    let sink_col = h.iter().position(|c| c == "sink_tco2_yr").unwrap();
    for r in rows.iter().filter(|r| r[0] != "__outside__") {
        let tr = html
            .find(&format!("data-zone=\"{}\"", r[0]))
            .unwrap_or_else(|| panic!("zone {} missing", r[0]));
        let cell = &html[tr..];
        let k = cell
            .find("data-col=\"sink_tco2_yr\" data-value=\"")
            .unwrap()
            + "data-col=\"sink_tco2_yr\" data-value=\"".len();
        assert_eq!(
            cell[k..].split('"').next().unwrap(),
            r[sink_col],
            "zone {}",
            r[0]
        );
    }
    // "Inputs and parameters": every input file with its SHA-256, and the scene settings.
    let inputs = &html[html.find("id=\"inputs\"").expect("inputs table")..];
    let inputs = &inputs[..inputs.find("</table>").unwrap()];
    for f in s["inputs"].as_array().unwrap() {
        let p = std::path::PathBuf::from(f["path"].as_str().unwrap());
        let sha = sinkmap::io::files::sha256_file(&p).unwrap();
        assert!(
            inputs.contains(&sha),
            "{} not listed with its hash",
            p.display()
        );
    }
    for layer in ["landcover", "forest_age", "forest_type", "zones", "scene"] {
        assert!(
            inputs.contains(&format!("<td>{layer}</td>")),
            "{layer} missing from the inputs"
        );
    }
    assert!(html.contains("id=\"settings\"") && html.contains("base_year"));
    // A print stylesheet.
    assert!(html.contains("@media print") && html.contains("break-inside:avoid"));
    // Units travel with every map and chart title / legend.
    for unit in ["t C/ha", "t CO₂/ha/yr", "t CO₂/yr", "ha"] {
        assert!(html.contains(unit), "{unit}");
    }
    // Rebuilding from the saved outputs gives the same page.
    let o = sinkmap(&["report", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(out.join("report.html")).unwrap(),
        html
    );
}

#[test]
fn the_page_loads_every_image_in_headless_chromium() {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let Some(chromium) = chromium else {
        use std::io::Write;
        let _ = writeln!(std::io::stderr().lock(), "SKIPPED the_page_loads_every_image_in_headless_chromium: Chromium is not installed (apt-get install chromium)");
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = run_sample(tmp.path());
    let profile = tmp.path().join("chromium-profile");
    let url = format!(
        "file://{}",
        out.join("report.html").canonicalize().unwrap().display()
    );
    let o = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=10000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&o.stdout);
    let n = dom.matches("<img ").count();
    assert!(n >= 8, "{n} images in the rendered page");
    assert!(
        dom.contains(&format!("data-images-loaded=\"{n}/{n}\"")),
        "not every image loaded: {}",
        dom.lines().find(|l| l.contains("<body")).unwrap_or("")
    );
    let s = json(&out.join("summary.json"));
    for (id, ptr) in HEADLINE {
        assert_eq!(
            value_of(&dom, id),
            s.pointer(ptr).and_then(|v| v.as_f64()),
            "{id} in the rendered page"
        );
    }
}
