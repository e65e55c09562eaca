//! The accuracy section of report.html, from `assessment/assessment.json` beside the run's
//! outputs (empty when no assessment was made).

use std::path::Path;

use crate::error::{Error, Result};

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn f(v: &serde_json::Value, ptr: &str) -> Option<f64> {
    v.pointer(ptr).and_then(|x| x.as_f64())
}

fn pm(v: &serde_json::Value, ptr: &str, digits: usize) -> String {
    match (
        f(v, &format!("{ptr}/value")),
        f(v, &format!("{ptr}/ci95_high")),
    ) {
        (Some(x), Some(hi)) => format!("{x:.digits$} ± {:.digits$}", hi - x),
        _ => "–".into(),
    }
}

/// HTML of the accuracy section, or "" when `out_dir/assessment/assessment.json` is absent.
pub fn section(out_dir: &Path) -> Result<String> {
    let p = out_dir.join("assessment").join("assessment.json");
    if !p.exists() {
        return Ok(String::new());
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::io(&p, e))?;
    let j: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Parse {
        path: p.clone(),
        message: e.to_string(),
    })?;
    let Some(all) = j.pointer("/regions/0") else {
        return Ok(String::new());
    };
    let mut h = String::from("<h2>Map accuracy and error-adjusted areas</h2>\n");
    h += &format!(
        "<p>Reference sample of {} points ({} design, strata: {}), {}. Intervals are 95 %.</p>\n",
        all["sample_size"],
        esc(j["design"].as_str().unwrap_or("")),
        esc(j["strata"].as_str().unwrap_or("")),
        esc(j["reference"].as_str().unwrap_or(""))
    );
    if let Some(o) = f(all, "/overall_accuracy/value") {
        h += &format!(
            "<p>Overall accuracy <span id=\"overall_accuracy\" data-value=\"{o}\">{}</span>.</p>\n",
            pm(all, "/overall_accuracy", 3)
        );
    }
    h += "<table id=\"accuracy\"><tr><th>class</th><th>mapped area (ha)</th><th>adjusted area (ha)</th><th>user's accuracy</th><th>producer's accuracy</th><th>points mapped</th></tr>\n";
    for c in all["classes"].as_array().into_iter().flatten() {
        h += &format!(
            "<tr><td>{} {}</td><td class=\"num\">{:.1}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            c["code"],
            esc(c["label"].as_str().unwrap_or("")),
            c["mapped_area_ha"].as_f64().unwrap_or(f64::NAN),
            pm(c, "/adjusted_area_ha", 1),
            pm(c, "/users_accuracy", 3),
            pm(c, "/producers_accuracy", 3),
            c["sample_mapped"]
        );
    }
    h += "</table>\n";
    if let Some(c) = all.get("carbon").filter(|c| !c.is_null()) {
        h += &format!(
            "<table id=\"accuracy_carbon\"><tr><th></th><th>map</th><th>with adjusted areas</th></tr>\
             <tr><td>stock (t C)</td><td class=\"num\">{:.4e}</td><td class=\"num\">{:.4e} ± {:.2e}</td></tr>\
             <tr><td>sink (t CO₂/yr)</td><td class=\"num\">{:.4e}</td><td class=\"num\">{:.4e} ± {:.2e}</td></tr></table>\n",
            f(c, "/map_stock_tc").unwrap_or(f64::NAN),
            f(c, "/adjusted_stock_tc/value").unwrap_or(f64::NAN),
            f(c, "/adjusted_stock_tc/ci95_high").unwrap_or(f64::NAN) - f(c, "/adjusted_stock_tc/value").unwrap_or(f64::NAN),
            f(c, "/map_sink_tco2_yr").unwrap_or(f64::NAN),
            f(c, "/adjusted_sink_tco2_yr/value").unwrap_or(f64::NAN),
            f(c, "/adjusted_sink_tco2_yr/ci95_high").unwrap_or(f64::NAN) - f(c, "/adjusted_sink_tco2_yr/value").unwrap_or(f64::NAN),
        );
    }
    // Error matrix in sample counts (rows: map, columns: reference).
    let classes: Vec<String> = j["classes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| format!("{}", c["code"]))
        .collect();
    h += "<table id=\"error_matrix\"><tr><th>map \\ reference</th>";
    for c in &classes {
        h += &format!("<th>{c}</th>");
    }
    h += "</tr>\n";
    for (i, row) in all["error_matrix_counts"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        h += &format!("<tr><td>{}</td>", classes.get(i).map_or("", |s| s));
        for n in row.as_array().into_iter().flatten() {
            h += &format!("<td class=\"num\">{n}</td>");
        }
        h += "</tr>\n";
    }
    h += "</table>\n";
    h += &accounting_note(out_dir);
    Ok(h)
}

/// Whether the accounting's bands include the map's error (from its headline in
/// accounting.json or summary.json), in one paragraph; "" without an accounting.
fn accounting_note(out_dir: &Path) -> String {
    let headline = |file: &str, ptr: &str| -> Option<serde_json::Value> {
        let t = std::fs::read_to_string(out_dir.join(file)).ok()?;
        serde_json::from_str::<serde_json::Value>(&t)
            .ok()?
            .pointer(ptr)
            .cloned()
    };
    let sources: Option<Vec<String>> = headline("accounting.json", "/uncertainty_sources")
        .or_else(|| headline("summary.json", "/accounting/uncertainty_sources"))
        .and_then(|v| {
            v.as_array().map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
        });
    let Some(sources) = sources else {
        return String::new();
    };
    if sources.iter().any(|s| s.starts_with("map area")) {
        format!(
            "<p id=\"map_error_in_accounting\" data-included=\"true\">The accounting's 5–95 % bands include this map error: its central values use the error-adjusted areas, and each Monte Carlo draw takes the class areas from their sampling distribution (docs/science.md §6.8). Sources: {}.</p>\n",
            esc(&sources.join("; "))
        )
    } else {
        format!(
            "<p id=\"map_error_in_accounting\" data-included=\"false\">The accounting's bands do not include this map error (sources: {}); run <code>sinkmap balance SCENE --assessment DIR</code> to include it.</p>\n",
            esc(&sources.join("; "))
        )
    }
}
