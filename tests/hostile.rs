//! A hostile corpus: inputs a careless or hostile user gives, across the commands. Every case
//! must end in a clear refusal (exit code 1, one `error:` line naming the file and, where it
//! applies, the line or field; no panic) — and a refusal must leave an output folder exactly as
//! it was. Each test prints its cases and outcomes (`cargo test --test hostile -- --nocapture`).

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
