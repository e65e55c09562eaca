//! A hostile corpus: inputs a careless or hostile user gives, across the commands. Every case
//! must end in a clear refusal (exit code 1, one `error:` line naming the file and, where it
//! applies, the line or field; no panic) — and a refusal must leave an output folder exactly as
//! it was. Each test prints its cases and outcomes (`cargo test --test hostile -- --nocapture`).

#![cfg(feature = "gdal")]

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::*;

/// A small scene with zones and an [accounting] table (the example rollout), models beside it.
fn scene_with_zones(dir: &Path) -> PathBuf {
    copy_models(dir);
    let spec = sinkmap::synth::SynthSpec {
        dir: dir.join("scene"),
        width: 160,
        height: 110,
        seed: 7,
        lon0: 85.2,
        lat0: 45.0,
        pixel_deg: 0.01,
        zones_path: Some(dir.join("scene/zones.geojson")),
        models_dir_in_scene: Some("../models".into()),
        output_dir_in_scene: "../out".into(),
        zones_path_in_scene: Some("zones.geojson".into()),
        base_year: 2020,
        name: "hostile (SYNTHETIC)".into(),
        with_accounting: true,
        field_texture: false,
    };
    let scene = sinkmap::synth::generate(&spec, false).unwrap();
    // The example rollout names a zone of the sample scene; keep only zone-free rules.
    std::fs::write(
        dir.join("scene/rollout.toml"),
        "[[rollout]]\nintervention = \"grazing_exclusion\"\nstart_year = 2025\nall_eligible_by_year = 2035\n",
    )
    .unwrap();
    scene
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The case was refused: a documented exit code of the user's or the environment's fault
/// (2 usage, 3 input data, 4 configuration, 5 environment; never 6, an internal bug, nor a
/// crash), an `error:` line holding every needle, no panic.
fn refused(case: &str, o: &Output, needles: &[&str]) -> String {
    let err = stderr(o);
    assert!(
        matches!(o.status.code(), Some(2..=5)),
        "{case}: exit code {:?}: {err}",
        o.status.code()
    );
    assert!(!err.contains("panicked"), "{case}: {err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("{case}: no error line: {err}"))
        .to_string();
    for n in needles {
        assert!(line.contains(n), "{case}: '{n}' not in: {line}");
    }
    eprintln!("  refused  {case}: {line}");
    line
}

/// A scene with zones and its complete result (with `extra` options) in `tmp/out`.
fn zoned_result(tmp: &Path, extra: &[&str]) -> (PathBuf, PathBuf) {
    let scene = scene_with_zones(tmp);
    let out = tmp.join("out");
    let mut a = vec!["run", s(&scene), "--quiet", "--out", s(&out)];
    a.extend(extra);
    run_ok(&a);
    (scene, out)
}

/// `run SCENE --quiet --out OUT EXTRA…`.
fn rerun(scene: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut a = vec!["run", s(scene), "--quiet", "--out", s(out)];
    a.extend(extra);
    sinkmap(&a)
}

fn run_ok(args: &[&str]) {
    let o = sinkmap(args);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
}

#[test]
fn a_failing_rerun_leaves_the_earlier_result_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let (scene, out) = zoned_result(tmp.path(), &["--draws", "20"]);
    let before = snapshot(&out);
    let run_id = sinkmap::manifest::verify_result(&out).unwrap().1.run_id;
    let bad = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let cases: Vec<(&str, PathBuf, Vec<&str>)> = vec![
        (
            "rollout with both ha_per_yr and all_eligible_by_year",
            bad("both.toml", "[[rollout]]\nintervention = \"grazing_exclusion\"\nstart_year = 2025\nha_per_yr = 5.0\nall_eligible_by_year = 2030\n"),
            vec!["both.toml", "exactly one of ha_per_yr or all_eligible_by_year"],
        ),
        (
            "rollout naming a zone that does not exist",
            bad("nozone.toml", "[[rollout]]\nintervention = \"grazing_exclusion\"\nzone = \"ATLANTIS\"\nstart_year = 2025\nha_per_yr = 5.0\n"),
            vec!["nozone.toml", "zone 'ATLANTIS' does not exist"],
        ),
        (
            "rollout with a negative rate",
            bad("neg.toml", "[[rollout]]\nintervention = \"grazing_exclusion\"\nstart_year = 2025\nha_per_yr = -5.0\n"),
            vec!["neg.toml", "ha_per_yr = -5"],
        ),
        (
            "rollout ending before it starts",
            bad("backwards.toml", "[[rollout]]\nintervention = \"grazing_exclusion\"\nstart_year = 2040\nall_eligible_by_year = 2030\n"),
            vec!["backwards.toml", "before start_year"],
        ),
    ];
    for (case, rollout, needles) in &cases {
        let t = std::time::Instant::now();
        let o = rerun(&scene, &out, &["--rollout", s(rollout)]);
        refused(case, &o, needles);
        // Checked before the first pixel: far quicker than the run itself.
        assert!(t.elapsed().as_secs_f64() < 20.0, "{case}");
        assert_still_holds(&out, &before, &run_id);
    }
    let scen = bad(
        "kg.toml",
        "region = \"X\"\nunit = \"kg\"\n[[series]]\nname = \"s\"\nkind = \"historical\"\nsource = \"t\"\npoints = [[2020, 5.0]]\n",
    );
    let o = rerun(&scene, &out, &["--scenarios", s(&scen)]);
    refused("scenario file in kg", &o, &["kg.toml", "Mt CO2"]);
    let unc = bad(
        "twice.toml",
        "[[parameter]]\ntarget = \"forest.tianshan_spruce.a_tc_per_ha\"\ndistribution = \"normal\"\nse = 1.0\nsource = \"x\"\n[[parameter]]\ntarget = \"forest.tianshan_spruce.a_tc_per_ha\"\ndistribution = \"normal\"\nse = 2.0\nsource = \"y\"\n",
    );
    let o = rerun(&scene, &out, &["--uncertainty", s(&unc)]);
    refused(
        "uncertainty target given twice",
        &o,
        &["twice.toml", "given twice"],
    );
    for (case, args, needles) in [
        (
            "--draws 2^64-1",
            vec!["--draws", "18446744073709551615"],
            vec!["--draws", "at most"],
        ),
        (
            "--draws 10^10",
            vec!["--draws", "10000000000"],
            vec!["--draws", "at most"],
        ),
        (
            "--threads 100000",
            vec!["--threads", "100000"],
            vec!["--threads 100000", "at most"],
        ),
        ("--threads 0", vec!["--threads", "0"], vec!["--threads 0"]),
        (
            "--until 9999",
            vec!["--until", "9999"],
            vec!["--until 9999"],
        ),
        (
            "--tile 1/100000 on 110 rows",
            vec!["--tile", "1/100000"],
            vec!["row bands"],
        ),
    ] {
        refused(case, &rerun(&scene, &out, &args), &needles);
    }
    assert_still_holds(&out, &before, &run_id);
}

#[test]
fn outputs_a_new_run_does_not_make_do_not_survive() {
    let tmp = tempfile::tempdir().unwrap();
    let (scene, out) = zoned_result(tmp.path(), &["--draws", "20"]);
    assert!(out.join("zones.csv").is_file() && out.join("trajectory.csv").is_file());
    // Without zones and without accounting: no zone table, no trajectory, no old report maps.
    let plain = tmp.path().join("plain.toml");
    let text = std::fs::read_to_string(&scene).unwrap();
    let text = text[..text.find("[accounting]").unwrap()].to_string();
    std::fs::write(
        &plain,
        text.replace(
            "models_dir = \"../models\"",
            &format!("models_dir = \"{}\"", s(&tmp.path().join("models"))),
        )
        .replace(
            "path = \"",
            &format!("path = \"{}/", s(&tmp.path().join("scene"))),
        ),
    )
    .unwrap();
    run_ok(&["run", s(&plain), "--quiet", "--no-zones", "--out", s(&out)]);
    let names = list(&out);
    for gone in [
        "zones.csv",
        "zones.geojson",
        "trajectory.csv",
        "balance.csv",
        "accounting.json",
    ] {
        assert!(
            !names.contains(&gone.to_string()),
            "{gone} survived: {names:?}"
        );
        assert!(
            std::fs::symlink_metadata(out.join(gone)).is_err(),
            "{gone} left as a link"
        );
    }
    let pngs = list(&out.join("report"));
    assert!(pngs.iter().all(|p| !p.starts_with("zones_")), "{pngs:?}");
    sinkmap::manifest::verify_result(&out).unwrap();
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(!html.contains("zones_sink.png"));
}

#[test]
fn inputs_are_never_replaced_by_name_link_or_hard_link() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = scene_with_zones(tmp.path());
    let scene_dir = scene.parent().unwrap().to_path_buf();
    let zones_before = std::fs::read(scene_dir.join("zones.geojson")).unwrap();
    // --out is the folder of the inputs, which holds zones.geojson.
    let o = sinkmap(&["run", s(&scene), "--quiet", "--out", s(&scene_dir)]);
    refused(
        "--out is the input folder",
        &o,
        &["zones.geojson", "would replace the zones input"],
    );
    assert_eq!(
        std::fs::read(scene_dir.join("zones.geojson")).unwrap(),
        zones_before
    );
    // The zones are a hard link of a file named like an output in the output folder.
    let out = tmp.path().join("out_hard");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::hard_link(scene_dir.join("zones.geojson"), out.join("zones.geojson")).unwrap();
    let o = sinkmap(&["run", s(&scene), "--quiet", "--out", s(&out)]);
    refused(
        "an input hard-linked into the output folder",
        &o,
        &["zones.geojson", "by a link"],
    );
    // The zones file is reached through a symlink into an earlier result's zone table.
    let out2 = tmp.path().join("out_sym");
    run_ok(&[
        "run",
        s(&scene),
        "--quiet",
        "--draws",
        "10",
        "--out",
        s(&out2),
    ]);
    let text = std::fs::read_to_string(&scene).unwrap();
    let linked = scene_dir.join("linked.toml");
    let via = tmp.path().join("via.geojson");
    std::os::unix::fs::symlink(out2.join("zones.geojson"), &via).unwrap();
    let text = text
        .replace(
            "path = \"zones.geojson\"",
            &format!("path = \"{}\"", s(&via)),
        )
        .replace("name_field = \"name\"", "name_field = \"zone_name\"");
    std::fs::write(&linked, text).unwrap();
    let before = snapshot(&out2);
    let o = sinkmap(&["run", s(&linked), "--quiet", "--out", s(&out2)]);
    refused(
        "an input reached by a symlink into the output folder",
        &o,
        &["zones.geojson", "would replace"],
    );
    assert_eq!(snapshot(&out2), before);
}

#[test]
fn tables_read_back_are_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let (scene, out) = zoned_result(tmp.path(), &["--draws", "10", "--no-report"]);
    let cube = std::fs::read_to_string(out.join("cube.csv")).unwrap();
    let lines: Vec<&str> = cube.lines().collect();
    let loose = tmp.path().join("loose");
    std::fs::create_dir_all(&loose).unwrap();
    let with = |name: &str, text: String| {
        let p = loose.join(name);
        std::fs::write(&p, text).unwrap();
        p
    };
    let header = lines[0];
    let row = lines[1];
    let cols: Vec<&str> = header.split(',').collect();
    let set = |col: &str, value: &str| -> String {
        let i = cols.iter().position(|c| *c == col).unwrap();
        let mut f: Vec<String> = row.split(',').map(String::from).collect();
        f[i] = value.into();
        f.join(",")
    };
    let cases = vec![
        (
            "empty cube",
            with("empty.csv", String::new()),
            vec!["empty.csv", "empty file"],
        ),
        (
            "header-only cube",
            with("header.csv", format!("{header}\n")),
            vec!["header.csv", "no rows"],
        ),
        (
            "negative area",
            with("neg.csv", format!("{header}\n{}\n", set("area_ha", "-3"))),
            vec!["neg.csv", "line 2", "negative area"],
        ),
        (
            "NaN area",
            with("nan.csv", format!("{header}\n{}\n", set("area_ha", "NaN"))),
            vec!["nan.csv", "line 2", "not a finite number"],
        ),
        (
            "duplicated row",
            with("dup.csv", format!("{header}\n{row}\n{row}\n")),
            vec!["dup.csv", "line 3", "duplicate of line 2"],
        ),
        (
            "unknown forest type",
            with(
                "type.csv",
                format!("{header}\n{}\n", set("forest_type", "baobab")),
            ),
            vec!["type.csv", "line 2", "baobab"],
        ),
        (
            "age out of range",
            with("age.csv", format!("{header}\n{}\n", set("age_yr", "5000"))),
            vec!["age.csv", "line 2", "age_yr 5000"],
        ),
        (
            "unknown class",
            with(
                "class.csv",
                format!("{header}\n{}\n", set("class", "volcano")),
            ),
            vec!["class.csv", "line 2"],
        ),
        (
            "not a cube",
            with("other.csv", "a,b\n1,2\n".into()),
            vec!["other.csv", "not a sinkmap cube"],
        ),
    ];
    for (case, cube, needles) in &cases {
        let o = sinkmap(&[
            "balance",
            s(&scene),
            "--cube",
            s(cube),
            "--draws",
            "5",
            "--quiet",
            "--out",
            s(&tmp.path().join("b")),
        ]);
        refused(case, &o, needles);
    }
    // A published cube cut in half: refused against the manifest.
    let cur = std::fs::canonicalize(out.join("cube.csv")).unwrap();
    let half = lines[..lines.len() / 2].join("\n") + "\n";
    std::fs::write(&cur, half).unwrap();
    let o = sinkmap(&[
        "balance",
        s(&scene),
        "--cube",
        s(&out.join("cube.csv")),
        "--draws",
        "5",
        "--quiet",
        "--out",
        s(&out),
    ]);
    refused(
        "cube cut in half",
        &o,
        &["cube.csv", "rows", "manifest.json"],
    );
    let o = sinkmap(&["report", s(&out)]);
    refused(
        "report of a folder with a cut cube",
        &o,
        &["cube.csv", "does not belong"],
    );
    // A file of another run put into the set.
    std::fs::write(&cur, cube.clone()).unwrap();
    sinkmap::manifest::verify_result(&out).unwrap();
    let summary = std::fs::canonicalize(out.join("summary.json")).unwrap();
    // Same size, other content: only the SHA-256 tells.
    let text = std::fs::read_to_string(&summary).unwrap();
    std::fs::write(&summary, text.replacen("SYNTHETIC", "SYNTHETIX", 1)).unwrap();
    let o = sinkmap(&["report", s(&out)]);
    refused("report of a mixed folder", &o, &["summary.json", "SHA-256"]);
    // A folder put together by hand (no manifest).
    let o = sinkmap(&["report", s(&loose)]);
    refused(
        "report of a folder without manifest",
        &o,
        &["no manifest.json"],
    );
}

#[test]
fn merge_refuses_parts_that_do_not_belong_together() {
    let tmp = tempfile::tempdir().unwrap();
    let a = synth_scene(&tmp.path().join("a"), 120, 80, 3);
    let b = synth_scene(&tmp.path().join("b"), 120, 80, 4);
    let part = |scene: &Path, i: usize, name: &str| {
        let out = tmp.path().join(name);
        run_ok(&[
            "run",
            s(scene),
            "--quiet",
            "--no-report",
            "--tile",
            &format!("{i}/2"),
            "--out",
            s(&out),
        ]);
        out
    };
    let a1 = part(&a, 1, "a1");
    let a2 = part(&a, 2, "a2");
    // Same scene file content at another place, but other rasters: copy b's rasters over a's names.
    let mixed = tmp.path().join("a/mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    for e in std::fs::read_dir(a.parent().unwrap()).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), mixed.join(e.file_name())).unwrap();
    }
    for r in ["landcover.tif", "forest_age.tif"] {
        std::fs::copy(b.parent().unwrap().join(r), mixed.join(r)).unwrap();
    }
    let m2 = part(&mixed.join("scene.toml"), 2, "m2");
    let out = tmp.path().join("merged");
    let o = sinkmap(&[
        "merge",
        s(&a),
        s(&a1),
        s(&m2),
        "--quiet",
        "--no-zones",
        "--out",
        s(&out),
    ]);
    refused(
        "parts made from different input rasters",
        &o,
        &["m2", "different inputs"],
    );
    // An emptied part cube.
    let cube = std::fs::canonicalize(a2.join("cube.csv")).unwrap();
    std::fs::write(&cube, "").unwrap();
    let o = sinkmap(&[
        "merge",
        s(&a),
        s(&a1),
        s(&a2),
        "--quiet",
        "--no-zones",
        "--out",
        s(&out),
    ]);
    refused("an emptied part cube", &o, &["a2", "cube.csv"]);
    assert!(list(&out).is_empty());
}

#[test]
fn parsers_refuse_nonsense() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 60, 40, 5);
    let models = tmp.path().join("models");
    let out = tmp.path().join("out");
    // Desert rates of −1e3 and −1e9 g C/m²/yr.
    let desert = std::fs::read_to_string(models.join("desert.toml")).unwrap();
    let with_rate = |v: &str, head: &str| -> String {
        let mut done = false;
        let body: Vec<String> = desert
            .lines()
            .map(|l| {
                if !done && l.starts_with("inorganic_gc_per_m2_yr") {
                    done = true;
                    format!("inorganic_gc_per_m2_yr = {v}")
                } else {
                    l.to_string()
                }
            })
            .collect();
        format!("{head}{}\n", body.join("\n"))
    };
    std::fs::write(models.join("desert.toml"), with_rate("-1e3", "")).unwrap();
    let o = sinkmap(&["run", s(&scene), "--quiet", "--out", s(&out)]);
    refused(
        "desert rate of -1e3 g C/m2/yr",
        &o,
        &["desert.toml", "plausible range", "accept_implausible"],
    );
    // … accepted when the file says so explicitly.
    std::fs::write(
        models.join("desert.toml"),
        with_rate("-1e3", "accept_implausible = true\n"),
    )
    .unwrap();
    run_ok(&["run", s(&scene), "--quiet", "--no-report", "--out", s(&out)]);
    // … but never beyond the hard limits (the exact sums would overflow).
    std::fs::write(
        models.join("desert.toml"),
        with_rate("-1e93", "accept_implausible = true\n"),
    )
    .unwrap();
    let o = sinkmap(&["run", s(&scene), "--quiet", "--out", s(&out)]);
    refused(
        "desert rate of -1e93 with accept_implausible",
        &o,
        &["desert.toml", "even accept_implausible cannot"],
    );
    std::fs::write(models.join("desert.toml"), desert).unwrap();
    // A pool table with a code twice.
    let pools = tmp.path().join("pools.csv");
    std::fs::write(
        &pools,
        "lucode,c_above,c_below,c_soil,c_dead\n1,1,1,1,1\n2,2,2,2,2\n1,9,9,9,9\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(&scene).unwrap();
    let pooled = scene.with_file_name("pooled.toml");
    std::fs::write(
        &pooled,
        text.replacen(
            "scheme = ",
            &format!("pool_table = \"{}\"\nscheme = ", s(&pools)),
            1,
        ),
    )
    .unwrap();
    let o = sinkmap(&["run", s(&pooled), "--quiet", "--out", s(&out)]);
    refused(
        "pool table with a duplicate code",
        &o,
        &["pools.csv", "line 4", "already given on line 2"],
    );
    // A grid reaching past the pole.
    let polar = tmp.path().join("polar");
    std::fs::create_dir_all(&polar).unwrap();
    let lc = polar.join("landcover.tif");
    let st = std::process::Command::new("gdal_translate")
        .args(["-q", "-a_ullr", "80", "95", "81", "85"])
        .arg(scene.with_file_name("landcover.tif"))
        .arg(&lc)
        .status()
        .unwrap();
    assert!(st.success());
    let polar_scene = polar.join("scene.toml");
    std::fs::write(&polar_scene, format!("name = 'polar'\nbase_year = 2020\nmodels_dir = '{}'\noutput_dir = 'out'\n[landcover]\npath = 'landcover.tif'\nscheme = 'clcd'\n", s(&models))).unwrap();
    let o = sinkmap(&["run", s(&polar_scene), "--quiet", "--out", s(&out)]);
    refused("grid past 90° N", &o, &["landcover.tif", "beyond ±90°"]);
    // A 3e6 × 2e6 px header (a VRT: no data behind it).
    let huge = polar.join("huge.vrt");
    std::fs::write(&huge, "<VRTDataset rasterXSize=\"3000000\" rasterYSize=\"2000000\"><SRS>EPSG:4326</SRS><GeoTransform>80, 0.00001, 0, 46, 0, -0.00001</GeoTransform><VRTRasterBand dataType=\"Byte\" band=\"1\"/></VRTDataset>").unwrap();
    let huge_scene = polar.join("huge.toml");
    std::fs::write(&huge_scene, format!("name = 'huge'\nbase_year = 2020\nmodels_dir = '{}'\noutput_dir = 'out'\n[landcover]\npath = 'huge.vrt'\nscheme = 'clcd'\n", s(&models))).unwrap();
    let o = sinkmap(&["run", s(&huge_scene), "--quiet", "--out", s(&out)]);
    refused("3e6 x 2e6 px raster", &o, &["huge.vrt", "pixels"]);
    // A symlink loop and an overlong path as the land cover.
    let loop_a = polar.join("loop_a.tif");
    std::os::unix::fs::symlink(polar.join("loop_b.tif"), &loop_a).unwrap();
    std::os::unix::fs::symlink(&loop_a, polar.join("loop_b.tif")).unwrap();
    std::fs::write(&huge_scene, format!("name = 'loop'\nbase_year = 2020\nmodels_dir = '{}'\noutput_dir = 'out'\n[landcover]\npath = 'loop_a.tif'\nscheme = 'clcd'\n", s(&models))).unwrap();
    let o = sinkmap(&["run", s(&huge_scene), "--quiet", "--out", s(&out)]);
    refused(
        "land cover is a symlink loop",
        &o,
        &["loop_a.tif", "loop of symbolic links"],
    );
    std::fs::write(&huge_scene, format!("name = 'long'\nbase_year = 2020\nmodels_dir = '{}'\noutput_dir = 'out'\n[landcover]\npath = '{}.tif'\nscheme = 'clcd'\n", s(&models), "x".repeat(300))).unwrap();
    let o = sinkmap(&["run", s(&huge_scene), "--quiet", "--out", s(&out)]);
    refused(
        "land cover path too long",
        &o,
        &["longer than the system allows"],
    );
    // fit on plots whose densities are all zero.
    let plots = tmp.path().join("plots.csv");
    let mut t = String::from("forest_type,age_yr,density\n");
    for a in 1..12 {
        t += &format!("spruce,{},0\n", a * 5);
    }
    std::fs::write(&plots, t).unwrap();
    let o = sinkmap(&[
        "fit",
        s(&plots),
        "--quiet",
        "--out",
        s(&tmp.path().join("fit")),
    ]);
    refused(
        "fit on all-zero densities",
        &o,
        &["plots.csv", "same density"],
    );
    // change with a discount rate of −100 %.
    let lc = scene.with_file_name("landcover.tif");
    for (case, flag, v) in [
        ("change --discount-rate -100", "--discount-rate", "-100"),
        ("change --rate-change -150", "--rate-change", "-150"),
        ("change --price-per-tc NaN", "--price-per-tc", "NaN"),
    ] {
        let arg = format!("{flag}={v}");
        let o = sinkmap(&[
            "change",
            s(&scene),
            "--before",
            s(&lc),
            "--after",
            s(&lc),
            "--years",
            "2000",
            "2020",
            &arg,
            "--quiet",
            "--out",
            s(&tmp.path().join("change")),
        ]);
        refused(case, &o, &[flag]);
    }
}

#[test]
fn concurrent_runs_into_one_folder_one_writer_wins() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = synth_scene(tmp.path(), 500, 350, 11);
    let out = tmp.path().join("out");
    let mut first = std::process::Command::new(env!("CARGO_BIN_EXE_sinkmap"))
        .args(["run", s(&scene), "--quiet", "--out", s(&out)])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first run holds the lock.
    let lock = out.join(".sinkmap/lock");
    let t = std::time::Instant::now();
    while !std::fs::read_to_string(&lock).is_ok_and(|s| s.starts_with("PID")) {
        assert!(
            t.elapsed().as_secs() < 60,
            "the first run never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let t = std::time::Instant::now();
    let o = sinkmap(&["run", s(&scene), "--quiet", "--out", s(&out)]);
    let holder = format!("PID {}", first.id());
    if first.try_wait().unwrap().is_none() {
        refused(
            "a second run into a folder being written",
            &o,
            &[&holder, "is writing into this folder"],
        );
        assert!(
            t.elapsed().as_secs_f64() < 10.0,
            "the second run did not stop at once"
        );
    }
    let st = first.wait().unwrap();
    assert!(st.success());
    sinkmap::manifest::verify_result(&out).unwrap();
    assert_eq!(
        std::fs::read_dir(out.join(".sinkmap/sets"))
            .unwrap()
            .count(),
        1
    );
    // Eight runs at once: every one either publishes or is refused naming a holder; the
    // folder ends with exactly one complete set.
    let kids: Vec<_> = (0..8)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_sinkmap"))
                .args(["run", s(&scene), "--quiet", "--no-report", "--out", s(&out)])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut ok, mut refusedn) = (0, 0);
    for k in kids {
        let o = k.wait_with_output().unwrap();
        if o.status.success() {
            ok += 1;
        } else {
            assert!(
                stderr(&o).contains("is writing into this folder"),
                "{}",
                stderr(&o)
            );
            refusedn += 1;
        }
    }
    eprintln!("  8 concurrent runs: {ok} published, {refusedn} refused");
    assert!(ok >= 1);
    sinkmap::manifest::verify_result(&out).unwrap();
    assert_eq!(
        std::fs::read_dir(out.join(".sinkmap/sets"))
            .unwrap()
            .count(),
        1
    );
}

/// The id of the result published in `out`.
fn run_id_of(out: &Path) -> String {
    sinkmap::manifest::verify_result(out).unwrap().1.run_id
}

/// `name` is gone from `out`: neither a file nor a (dangling) link.
fn gone(out: &Path, name: &str) -> bool {
    std::fs::symlink_metadata(out.join(name)).is_err()
}

/// `synth` and `series` publish whole: a failure part-way leaves the previous result exactly
/// as it was; outputs the new result does not have (a year's rasters, a year's age map) do
/// not survive.
#[test]
fn synth_and_series_publish_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let models = root().join("models");
    let gen = tmp.path().join("gen");
    let synth = |extra: &[&str]| {
        let mut a = vec![
            "synth",
            "--out",
            s(&gen),
            "--width",
            "48",
            "--height",
            "36",
            "--quiet",
            "--models-dir",
            s(&models),
        ];
        a.extend(extra);
        sinkmap(&a)
    };
    let o = synth(&["--years", "2018..2020"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&gen);
    let id = run_id_of(&gen);
    assert!(gen.join("landcover_2019.tif").is_file());
    // Fails after the base rasters are written (a one-year series): nothing is published.
    refused(
        "synth --years with one year (fails after the rasters)",
        &synth(&["--years", "2020..2020"]),
        &["--years 2020..2020"],
    );
    assert_still_holds(&gen, &before, &id);
    // A relative models folder is written as given and still found by the series step.
    let rel = tmp.path().join("rel");
    copy_models(&rel);
    let o = sinkmap(&[
        "synth",
        "--out",
        s(&rel.join("scene")),
        "--width",
        "30",
        "--height",
        "20",
        "--years",
        "2019..2020",
        "--models-dir",
        "../models",
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = std::fs::read_to_string(rel.join("scene/scene.toml")).unwrap();
    assert!(text.contains("models_dir = \"../models\""), "{text}");
    // The series on the published scene, then a shorter one: the last year's map goes.
    let scene = gen.join("scene.toml");
    let out = tmp.path().join("series");
    let series = |extra: &[&str]| {
        let mut a = vec!["series", s(&scene), "--quiet", "--out", s(&out)];
        a.extend(extra);
        sinkmap(&a)
    };
    let o = series(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("forest_age_2020.tif").is_file());
    let o = series(&["--to", "2019"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("forest_age_2019.tif").is_file() && gone(&out, "forest_age_2020.tif"));
    let before = snapshot(&out);
    let id = run_id_of(&out);
    // A year's land cover GDAL cannot read: found part-way (its file exists), refused, the
    // earlier series whole.
    let lc = gen.join("landcover_2020.tif");
    let keep = std::fs::read(&lc).unwrap();
    std::fs::write(&lc, b"not a raster").unwrap();
    refused(
        "series with an unreadable year's land cover",
        &series(&[]),
        &["landcover_2020.tif"],
    );
    assert_still_holds(&out, &before, &id);
    std::fs::write(&lc, keep).unwrap();
    // A new scene without years: the year rasters do not survive, the series is refused.
    let o = synth(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(gone(&gen, "landcover_2019.tif") && gone(&gen, "events_2020.tif"));
    sinkmap::manifest::verify_result(&gen).unwrap();
    refused(
        "series on a scene without [series]",
        &series(&[]),
        &["[series]"],
    );
    assert_still_holds(&out, &before, &id);
}

/// `sample`, `assess` and `calibrate` publish whole; a sample whose points were filled in is
/// never replaced by a rerun.
#[test]
fn sample_assess_calibrate_publish_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let scene = root().join("rasters/sample/scene.toml");
    let run = tmp.path().join("run");
    run_ok(&["run", s(&scene), "--quiet", "--no-report", "--out", s(&run)]);
    let smp = tmp.path().join("smp");
    let sample = |extra: &[&str]| {
        let mut a = vec![
            "sample",
            s(&scene),
            "--quiet",
            "--out",
            s(&smp),
            "--n",
            "120",
        ];
        a.extend(extra);
        sinkmap(&a)
    };
    let o = sample(&["--min-per-class", "5", "--seed", "3"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&smp);
    let id = run_id_of(&smp);
    // More points than the map has pixels of a class: refused while drawing.
    refused(
        "sample larger than a class",
        &sample(&["--min-per-class", "100000"]),
        &[],
    );
    assert_still_holds(&smp, &before, &id);
    // Points filled in (edited in place, or saved as a new file under the name).
    let pts = smp.join("sample_points.csv");
    let text = std::fs::read_to_string(&pts).unwrap();
    std::fs::write(&pts, text.replacen(",\n", ",2\n", 1)).unwrap();
    refused(
        "sample rerun over filled-in points",
        &sample(&["--seed", "4"]),
        &[
            "sample_points.csv",
            "edited since sinkmap published it",
            "would discard",
        ],
    );
    std::fs::remove_file(&pts).unwrap();
    std::fs::write(&pts, &text).unwrap();
    refused(
        "sample rerun over points saved as a new file",
        &sample(&["--seed", "4"]),
        &["sample_points.csv", "replaced by another file"],
    );
    std::fs::remove_dir_all(&smp).unwrap();
    let o = sample(&["--min-per-class", "5", "--seed", "5"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // The reference: the map's own classes; assess into a folder holding the sample.
    let reference = tmp.path().join("reference.csv");
    let (h, rows) = read_csv(&smp.join("sample_points.csv"));
    let mut w = csv::Writer::from_path(&reference).unwrap();
    w.write_record(&h).unwrap();
    for r in &rows {
        let mut r = r.clone();
        r[6] = r[3].clone();
        w.write_record(&r).unwrap();
    }
    w.flush().unwrap();
    let aout = tmp.path().join("assess");
    let assess = |refp: &Path, out: &Path| {
        sinkmap(&[
            "assess",
            s(&scene),
            "--reference",
            s(refp),
            "--maps-dir",
            s(&run),
            "--no-zones",
            "--quiet",
            "--out",
            s(out),
        ])
    };
    let o = assess(&reference, &aout);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&aout);
    let id = run_id_of(&aout);
    let bad = tmp.path().join("bad_reference.csv");
    std::fs::write(
        &bad,
        std::fs::read_to_string(&reference)
            .unwrap()
            .replacen(",2\n", ",Atlantis\n", 1),
    )
    .unwrap();
    refused(
        "assess with a reference class the scheme lacks",
        &assess(&bad, &aout),
        &["bad_reference.csv"],
    );
    assert_still_holds(&aout, &before, &id);
    // Another command's result is never replaced: an assessment into the sample's folder, a
    // sample into the run's folder.
    let before = snapshot(&smp);
    let id = run_id_of(&smp);
    refused(
        "assess into a folder holding a sample",
        &assess(&reference, &smp),
        &[
            "holds the result of `sinkmap sample`",
            "choose another output folder",
        ],
    );
    assert_still_holds(&smp, &before, &id);
    let run_before = snapshot(&run);
    let run_id = run_id_of(&run);
    refused(
        "sample into a folder holding a run",
        &sinkmap(&[
            "sample",
            s(&scene),
            "--quiet",
            "--out",
            s(&run),
            "--n",
            "60",
            "--min-per-class",
            "5",
        ]),
        &["holds the result of `sinkmap run`"],
    );
    assert_still_holds(&run, &run_before, &run_id);
    // calibrate: plots at the sample points with the map's own density.
    let plots = tmp.path().join("plots.csv");
    let mut t = String::from("lon,lat,carbon_tc_ha\n");
    for r in rows.iter().take(40) {
        t += &format!("{},{},{}\n", r[1], r[2], 10.0);
    }
    std::fs::write(&plots, &t).unwrap();
    let cout = tmp.path().join("cal");
    let calibrate = |p: &Path| {
        sinkmap(&[
            "calibrate",
            s(&scene),
            "--plots",
            s(p),
            "--density-field",
            "carbon_tc_ha",
            "--plot-area-m2",
            "600",
            "--maps-dir",
            s(&run),
            "--no-zones",
            "--quiet",
            "--out",
            s(&cout),
        ])
    };
    let o = calibrate(&plots);
    assert!(o.status.success(), "{}", stderr(&o));
    let before = snapshot(&cout);
    let id = run_id_of(&cout);
    let nan = tmp.path().join("nan_plots.csv");
    std::fs::write(&nan, t.replacen(",10\n", ",NaN\n", 1)).unwrap();
    refused(
        "calibrate with a NaN density",
        &calibrate(&nan),
        &["nan_plots.csv"],
    );
    assert_still_holds(&cout, &before, &id);
    // An assessment into the run's own folder (whose maps it reads) is refused.
    refused(
        "assess --out is the folder of the maps it reads",
        &assess(&reference, &run),
        &["holds the result of `sinkmap run`"],
    );
    assert_still_holds(&run, &run_before, &run_id);
}

/// `init` writes its folder whole or not at all and never overwrites.
#[test]
fn init_is_whole_or_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mine");
    run_ok(&["init", s(&dir)]);
    assert_eq!(list(&dir), vec!["models", "scene.toml"]);
    // A folder with the user's rasters and a models folder of their own: refused, unchanged.
    let busy = tmp.path().join("busy");
    std::fs::create_dir_all(busy.join("models")).unwrap();
    std::fs::write(busy.join("landcover.tif"), b"x").unwrap();
    let before = snapshot(&busy);
    refused(
        "init into a folder with a models folder",
        &sinkmap(&["init", s(&busy)]),
        &["models", "already exists"],
    );
    assert_eq!(snapshot(&busy), before);
    assert_eq!(list(&busy), vec!["landcover.tif", "models"]);
    // Beside the user's files: both written, no temporary folder left.
    std::fs::remove_dir(busy.join("models")).unwrap();
    run_ok(&["init", s(&busy)]);
    assert_eq!(list(&busy), vec!["landcover.tif", "models", "scene.toml"]);
    let hidden: Vec<_> = std::fs::read_dir(&busy)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(hidden.is_empty());
    // A file where the folder should be.
    let file = tmp.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    refused(
        "init DIR where DIR is a file",
        &sinkmap(&["init", s(&file)]),
        &["file"],
    );
    assert_eq!(list(tmp.path()), vec!["busy", "file", "mine"]);
}

/// `bench` publishes its scene folder and `bench.json` whole: an InVEST step that fails after
/// every other step leaves the earlier `bench.json` (and its manifest) exactly as it was; bad
/// arguments are refused before any work.
#[test]
fn bench_publishes_whole() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let bench = |extra: &[&str]| {
        let mut a = vec!["bench", "--dir", s(&dir)];
        if !extra.contains(&"--width") {
            a.extend(["--width", "64", "--height", "48"]);
        }
        a.extend(extra);
        sinkmap(&a)
    };
    let o = bench(&[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let json_before = std::fs::read(dir.join("bench.json")).unwrap();
    let id = run_id_of(&dir);
    let scene_id = run_id_of(&dir.join("scene"));
    // A "venv" whose python fails: every step has run when it does.
    let venv = tmp.path().join("venv");
    std::fs::create_dir_all(venv.join("bin")).unwrap();
    let py = venv.join("bin/python");
    std::fs::write(&py, "#!/bin/sh\necho 'no natcap here' >&2\nexit 3\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&py, std::fs::Permissions::from_mode(0o755)).unwrap();
    refused(
        "bench whose InVEST step fails at the end",
        &bench(&["--invest", s(&venv)]),
        &[],
    );
    assert_eq!(std::fs::read(dir.join("bench.json")).unwrap(), json_before);
    assert_eq!(run_id_of(&dir), id);
    assert_eq!(run_id_of(&dir.join("scene")), scene_id);
    for (case, args, needles) in [
        ("bench --width 0", vec!["--width", "0"], vec!["--width 0"]),
        (
            "bench --threads 0",
            vec!["--threads", "0"],
            vec!["--threads 0"],
        ),
        (
            "bench --block-size 7",
            vec!["--block-size", "7"],
            vec!["block size 7"],
        ),
        (
            "bench --invest without python",
            vec!["--invest", "/nonexistent-venv"],
            vec!["bin/python"],
        ),
    ] {
        let t = std::time::Instant::now();
        refused(case, &bench(&args), &needles);
        assert!(
            t.elapsed().as_secs_f64() < 10.0,
            "{case}: not refused at once"
        );
    }
    assert_eq!(run_id_of(&dir), id);
}

/// Writes `text` to `dir/name` and returns the path as a String.
fn put(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

/// Hostile inputs of the commands beyond `run`: synth, sample, assess, calibrate, series,
/// fit, zonal, init. Each is refused with a clear line (naming the flag, file, line or
/// field); nothing is published.
#[test]
fn hostile_inputs_of_the_other_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let scene = root().join("rasters/sample/scene.toml");
    let sc = s(&scene).to_string();
    let run = t.join("run");
    run_ok(&["run", &sc, "--quiet", "--no-report", "--out", s(&run)]);
    let smp = t.join("smp");
    run_ok(&[
        "sample",
        &sc,
        "--quiet",
        "--n",
        "80",
        "--min-per-class",
        "5",
        "--out",
        s(&smp),
    ]);
    let (h, rows) = read_csv(&smp.join("sample_points.csv"));
    let mut reference = h.join(",") + "\n";
    let mut plots = String::from("lon,lat,carbon_tc_ha,bio\n");
    for r in &rows {
        reference += &format!(
            "{},{},{},{},{},{},{}\n",
            r[0], r[1], r[2], r[3], r[4], r[5], r[3]
        );
        plots += &format!("{},{},10,20\n", r[1], r[2]);
    }
    let refp = put(t, "ref.csv", &reference);
    let plotp = put(t, "plots.csv", &plots);
    let mut fit = String::from("forest_type,age_yr,density\n");
    for a in [5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 80] {
        fit += &format!("spruce,{a},{}\n", a * 2);
    }
    let models = root().join("models");
    let ser = t.join("ser");
    run_ok(&[
        "synth",
        "--out",
        s(&ser),
        "--width",
        "40",
        "--height",
        "30",
        "--years",
        "2018..2021",
        "--models-dir",
        s(&models),
        "--quiet",
    ]);
    let ser_scene = ser.join("scene.toml");
    let ss = s(&ser_scene).to_string();
    let out = t.join("o");
    let o = s(&out).to_string();
    let maps = s(&run).to_string();
    let afile = put(t, "afile", "x");
    let empty_zones = put(
        t,
        "z0.geojson",
        "{\"type\":\"FeatureCollection\",\"features\":[]}",
    );
    let row = |k: usize, f: &dyn Fn(&str) -> String| -> String {
        let mut lines: Vec<String> = fit.lines().map(String::from).collect();
        lines[k] = f(&lines[k]);
        lines.join("\n") + "\n"
    };
    let fit_old = put(t, "fit_old.csv", &row(1, &|_| "spruce,100000,10".into()));
    let fit_ok = put(t, "fit_ok.csv", &fit);
    let bin = s(&t.join("bin.csv")).to_string();
    std::fs::write(&bin, b"\xff\xfe,age_yr,density\n").unwrap();
    let plots_nan_area = plotp.clone();
    // Default arguments, each left out when the case gives its flag itself.
    let with = |head: &[&str], pairs: &[(&str, &str)], extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = head.iter().map(|x| x.to_string()).collect();
        for (flag, value) in pairs {
            if !extra.contains(flag) {
                v.push(flag.to_string());
                if !value.is_empty() {
                    v.push(value.to_string());
                }
            }
        }
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let cal = |extra: &[&str]| -> Vec<String> {
        with(
            &["calibrate", &sc, "--no-zones", "--quiet"],
            &[
                ("--plots", &plots_nan_area),
                ("--density-field", "carbon_tc_ha"),
                ("--maps-dir", &maps),
                ("--out", &o),
            ],
            extra,
        )
    };
    let asr = |extra: &[&str]| -> Vec<String> {
        with(
            &["assess", &sc, "--no-zones", "--quiet"],
            &[("--reference", &refp), ("--maps-dir", &maps), ("--out", &o)],
            extra,
        )
    };
    let synth = |extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = ["synth", "--out", &o, "--quiet"]
            .iter()
            .map(|x| x.to_string())
            .collect();
        if !extra.contains(&"--width") {
            v.extend(["--width", "10", "--height", "10"].map(String::from));
        }
        v.extend(extra.iter().map(|x| x.to_string()));
        v
    };
    let v = |a: &[&str]| -> Vec<String> { a.iter().map(|x| x.to_string()).collect() };
    let cases: Vec<(&str, Vec<String>, Vec<&str>)> = vec![
        (
            "synth --pixel-deg inf",
            synth(&["--pixel-deg", "inf"]),
            vec!["--pixel-deg inf"],
        ),
        (
            "synth --pixel-deg 1e-300",
            synth(&["--pixel-deg", "1e-300"]),
            vec!["--pixel-deg 1e-300"],
        ),
        (
            "synth --lat0 95 (past the pole)",
            synth(&["--lat0", "95"]),
            vec!["--lat0 95", "beyond ±90°"],
        ),
        (
            "synth --lat0 -89.99 (a negative number, past the pole)",
            synth(&["--lat0", "-89.99", "--pixel-deg", "0.5"]),
            vec!["--lat0 -89.99", "beyond ±90°"],
        ),
        (
            "synth --lon0 NaN",
            synth(&["--lon0", "NaN"]),
            vec!["--lon0 NaN"],
        ),
        (
            "synth 3e6 x 2e6 px",
            synth(&["--width", "3000000", "--height", "2000000"]),
            vec!["pixels, more than"],
        ),
        (
            "synth --width 100000 of 0.01° (more than a turn)",
            synth(&["--width", "100000", "--pixel-deg", "0.01"]),
            vec!["full turn of longitude"],
        ),
        (
            "synth --output-dir ''",
            synth(&["--output-dir", ""]),
            vec!["--output-dir"],
        ),
        (
            "synth --models-dir that does not exist",
            synth(&["--models-dir", "/nonexistent-models"]),
            vec!["--models-dir /nonexistent-models", "no such folder"],
        ),
        (
            "synth --out is a file",
            v(&[
                "synth", "--out", &afile, "--width", "10", "--height", "10", "--quiet",
            ]),
            vec!["afile", "is a file"],
        ),
        (
            "synth --years backwards",
            synth(&["--years", "2022..2018"]),
            vec!["--years 2022..2018"],
        ),
        (
            "sample --min-per-class 2^64-1 (overflowed)",
            v(&[
                "sample",
                &sc,
                "--min-per-class",
                "18446744073709551615",
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["cannot give 18446744073709551615 points"],
        ),
        (
            "sample --n 0",
            v(&["sample", &sc, "--n", "0", "--out", &o, "--quiet"]),
            vec!["--n"],
        ),
        (
            "assess with an empty reference file",
            asr(&["--reference", &put(t, "empty.csv", "")]),
            vec!["empty.csv"],
        ),
        (
            "assess with a header-only reference",
            asr(&["--reference", &put(t, "hdr.csv", "id,x,y,reference\n")]),
            vec!["hdr.csv", "no points"],
        ),
        (
            "assess --class-field that is not there",
            asr(&["--class-field", "nope"]),
            vec!["ref.csv", "'nope'"],
        ),
        (
            "assess with a NaN coordinate",
            asr(&[
                "--reference",
                &put(
                    t,
                    "nanx.csv",
                    &reference.replacen(
                        &format!("\n{},{},", rows[0][0], rows[0][1]),
                        &format!("\n{},NaN,", rows[0][0]),
                        1,
                    ),
                ),
            ]),
            vec!["nanx.csv", "line 2", "NaN"],
        ),
        (
            "assess with a point off the grid",
            asr(&[
                "--reference",
                &put(
                    t,
                    "far.csv",
                    &reference.replacen(
                        &format!("\n{},{},{},", rows[0][0], rows[0][1], rows[0][2]),
                        &format!("\n{},170,10,", rows[0][0]),
                        1,
                    ),
                ),
            ]),
            vec!["far.csv", "line 2", "outside the map grid"],
        ),
        (
            "assess --strata with a simple random design",
            asr(&[
                "--strata",
                s(&root().join("rasters/sample/forest_type.tif")),
                "--design",
                "simple-random",
            ]),
            vec!["--strata"],
        ),
        (
            "assess --reference is a folder",
            asr(&["--reference", s(t)]),
            vec!["is a folder"],
        ),
        (
            "assess --maps-dir without maps",
            asr(&["--maps-dir", s(t)]),
            vec!["stock_tc_per_ha.tif", "--maps-dir"],
        ),
        (
            "calibrate --plot-area-m2 -5",
            cal(&["--plot-area-m2", "-5"]),
            vec!["--plot-area-m2 -5"],
        ),
        (
            "calibrate --plot-area-m2 NaN",
            cal(&["--plot-area-m2", "NaN"]),
            vec!["--plot-area-m2 NaN"],
        ),
        (
            "calibrate --plot-area-m2 1e300",
            cal(&["--plot-area-m2", "1e300"]),
            vec!["--plot-area-m2", "at most"],
        ),
        (
            "calibrate with density and biomass",
            cal(&["--plot-area-m2", "600", "--biomass-field", "bio"]),
            vec!["exactly one of"],
        ),
        (
            "calibrate --carbon-fraction 2",
            cal(&["--plot-area-m2", "600", "--carbon-fraction", "2"]),
            vec!["--carbon-fraction 2"],
        ),
        (
            "calibrate --classes 999",
            cal(&["--plot-area-m2", "600", "--classes", "999"]),
            vec!["plots.csv", "line 2", "outside the population"],
        ),
        (
            "calibrate with a negative density",
            cal(&[
                "--plot-area-m2",
                "600",
                "--plots",
                &put(t, "negd.csv", &plots.replacen(",10,", ",-10,", 1)),
            ]),
            vec!["negd.csv", "line 2"],
        ),
        (
            "calibrate without a plot size",
            cal(&[]),
            vec!["--plot-area-m2"],
        ),
        (
            "calibrate --maps-dir without the stock map",
            v(&[
                "calibrate",
                &sc,
                "--plots",
                &plotp,
                "--density-field",
                "carbon_tc_ha",
                "--plot-area-m2",
                "600",
                "--maps-dir",
                s(t),
                "--no-zones",
                "--quiet",
                "--out",
                &o,
            ]),
            vec!["stock_tc_per_ha.tif"],
        ),
        (
            "series --from after --to",
            v(&[
                "series", &ss, "--from", "2021", "--to", "2018", "--out", &o, "--quiet",
            ]),
            vec!["--from 2021", "--to 2018"],
        ),
        (
            "series --threads 0",
            v(&["series", &ss, "--threads", "0", "--out", &o, "--quiet"]),
            vec!["--threads 0"],
        ),
        (
            "series --threads 100000",
            v(&["series", &ss, "--threads", "100000", "--out", &o, "--quiet"]),
            vec!["--threads 100000", "at most"],
        ),
        (
            "series --block-size 7",
            v(&["series", &ss, "--block-size", "7", "--out", &o, "--quiet"]),
            vec!["block size 7"],
        ),
        (
            "series --from a year it lacks",
            v(&["series", &ss, "--from", "1999", "--out", &o, "--quiet"]),
            vec!["--from 1999"],
        ),
        (
            "series --out is the scene's folder",
            v(&["series", &ss, "--out", s(&ser), "--quiet"]),
            vec!["holds the result of `sinkmap synth`"],
        ),
        (
            "change --threads 100000",
            v(&[
                "change",
                &sc,
                "--before",
                s(&root().join("rasters/sample/landcover.tif")),
                "--after",
                s(&root().join("rasters/sample/landcover.tif")),
                "--years",
                "2000",
                "2020",
                "--threads",
                "100000",
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["--threads 100000"],
        ),
        (
            "fit with an age of 100 000 yr",
            v(&["fit", &fit_old, "--out", &o, "--quiet"]),
            vec!["fit_old.csv", "line 2", "age 100000"],
        ),
        (
            "fit --root-shoot 1e308",
            v(&[
                "fit",
                &fit_ok,
                "--root-shoot",
                "1e308",
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["--root-shoot"],
        ),
        (
            "fit --out is the plots' folder, plots named fit_table.csv",
            v(&[
                "fit",
                &put(t, "fit_table.csv", &fit),
                "--out",
                s(t),
                "--quiet",
            ]),
            vec!["fit_table.csv", "would replace the plots input"],
        ),
        (
            "fit with invalid UTF-8",
            v(&["fit", &bin, "--out", &o, "--quiet"]),
            vec!["bin.csv", "UTF-8"],
        ),
        (
            "zonal with an empty layer",
            v(&[
                "zonal",
                &sc,
                "--zones",
                &empty_zones,
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["z0.geojson", "empty"],
        ),
        (
            "zonal --id that is not there",
            v(&[
                "zonal",
                &sc,
                "--zones",
                s(&root().join("vectors/sample_zones.geojson")),
                "--id",
                "nope",
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["sample_zones.geojson", "'nope'"],
        ),
        (
            "zonal --zones is a TOML file",
            v(&["zonal", &sc, "--zones", &sc, "--out", &o, "--quiet"]),
            vec!["scene.toml", "does not recognise it"],
        ),
        (
            "zonal --layer that is not there",
            v(&[
                "zonal",
                &sc,
                "--zones",
                s(&root().join("vectors/sample_zones.geojson")),
                "--layer",
                "nope",
                "--out",
                &o,
                "--quiet",
            ]),
            vec!["no layer named 'nope'"],
        ),
        (
            "init under a file",
            v(&["init", &format!("{afile}/sub")]),
            vec!["afile"],
        ),
    ];
    for (case, args, needles) in &cases {
        let a: Vec<&str> = args.iter().map(|x| x.as_str()).collect();
        refused(case, &sinkmap(&a), needles);
    }
    // Nothing was published by any of them.
    assert!(std::fs::read_dir(out.join(".sinkmap/sets")).map_or(true, |mut d| d.next().is_none()));
    assert!(list(&out).is_empty(), "{:?}", list(&out));
    eprintln!("  {} hostile inputs of other commands refused", cases.len());
}
