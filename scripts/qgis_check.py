"""The sinkmap plugin in a real QGIS (headless): driven by scripts/qgis-check.

Loads the plugin from the folder its zip was unpacked into, runs `run` (scene file) and
`zonal` (layers picked from the project, scene generated) through processing.run on the
sample scene (then change, project, balance and report), checks that the outputs are in the project with their styles applied (renderer
type, class count, colours, against the .qml files read here independently), that progress
reaches 100 %, that cancelling stops sinkmap and that an error reaches the log, and renders
the project to PNG files checked to be non-blank and to contain the styles' colours.

Usage: python3 scripts/qgis_check.py PLUGINS_DIR OUT_DIR  (the project root is the cwd)
"""

import os
import shutil
import sys
import tempfile
import tomllib
import xml.etree.ElementTree as ET

from qgis.core import (
    QgsApplication,
    QgsMapRendererParallelJob,
    QgsMapSettings,
    QgsProcessingContext,
    QgsProcessingException,
    QgsProcessingFeedback,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.PyQt.QtCore import QSize
from qgis.PyQt.QtGui import QColor

PLUGINS, OUT = sys.argv[1], sys.argv[2]
os.makedirs(OUT, exist_ok=True)
app = QgsApplication([], False)
app.initQgis()
sys.path.insert(0, "/usr/share/qgis/python/plugins")
sys.path.insert(0, PLUGINS)
import processing  # noqa: E402
from processing.core.Processing import Processing  # noqa: E402

Processing.initialize()
import sinkmap_processing  # noqa: E402
from sinkmap_processing import runner  # noqa: E402

FAILURES = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what, flush=True)
    if not cond:
        FAILURES.append(what)


class Feedback(QgsProcessingFeedback):
    """Records progress, log messages and errors; cancels at a given progress."""

    def __init__(self, cancel_at=None):
        super().__init__()
        self.progress, self.errors, self.infos, self.cancel_at = [], [], [], cancel_at

    def setProgress(self, p):  # noqa: N802 (the plugin calls it for every progress line)
        self.progress.append(p)
        super().setProgress(p)
        if self.cancel_at is not None and p >= self.cancel_at:
            self.cancel()

    def reportError(self, error, fatalError=False):  # noqa: N802
        self.errors.append(error)

    def pushInfo(self, info):  # noqa: N802
        self.infos.append(info)


# The plugin loads and registers its algorithms.
plugin = sinkmap_processing.classFactory(None)
plugin.initProcessing()
ids = sorted(a.id() for a in QgsApplication.processingRegistry().providerById("sinkmap").algorithms())
check(
    ids == sorted(f"sinkmap:{c}" for c in ["run", "zonal", "change", "project", "balance", "report"]),
    f"provider lists the six algorithms: {ids}",
)

# Generated scene text is valid TOML with the layers given.
scene = tomllib.loads(
    runner.scene_toml("t \"q\"", 2020, "/m", "/o", "/l.tif", forest_age="/a.tif", age_reference_year=2020,
                      zones={"path": "/z.gpkg", "id_field": "id", "name_field": "nm", "layer": "L"})
)
check(
    scene["name"] == 't "q"' and scene["landcover"]["path"] == "/l.tif" and scene["forest_age"]["reference_year"] == 2020
    and scene["zones"] == {"path": "/z.gpkg", "id_field": "id", "name_field": "nm", "layer": "L"},
    "generated scene parses as TOML with the layers picked",
)
check(runner.parse_line('{"progress":0.25,"done":1,"total":4}') == ("progress", 25.0), "progress lines parsed")
check(runner.parse_line("error: x.tif: file not found") == ("message", "error: x.tif: file not found"), "messages passed on")

project = QgsProject.instance()


def qml_ramp(path):
    """[(value, '#rrggbb')] of a stretched style, read from the .qml file."""
    root = ET.parse(path).getroot()
    return [(float(i.get("value")), i.get("color").lower()) for i in root.iter("item")]


def layer_named(folder, file_name):
    src = os.path.realpath(os.path.join(folder, file_name))
    for layer in project.mapLayers().values():
        if os.path.realpath(layer.source().split("|")[0]) == src:
            return layer
    return None


# 1. run, with the sample scene file.
run_dir = os.path.join(OUT, "run")
fb = Feedback()
ctx = QgsProcessingContext()
ctx.setProject(project)
res = processing.run("sinkmap:run", {"SCENE": "rasters/sample/scene.toml", "NO_REPORT": True, "OUTPUT": run_dir}, context=ctx, feedback=fb)
check(res["OUTPUT"] == run_dir, "run returns its output folder")
check(len(fb.progress) >= 2 and fb.progress[0] < 100.0 and fb.progress[-1] == 100.0 and fb.progress == sorted(fb.progress),
      f"progress reported while running, up to 100 % ({fb.progress})")
for name, n_items in [("stock_tc_per_ha", 4), ("sink_tco2_per_ha_yr", 4), ("potential_tco2_per_ha_yr", 4)]:
    layer = layer_named(run_dir, name + ".tif")
    check(layer is not None, f"{name}.tif is in the project")
    if layer is None:
        continue
    r = layer.renderer()
    check(r.type() == "singlebandpseudocolor", f"{name}: renderer {r.type()}")
    items = r.shader().rasterShaderFunction().colorRampItemList()
    want = qml_ramp(os.path.join(run_dir, name + ".qml"))
    got = [(i.value, i.color.name()) for i in items]
    check(len(got) == n_items and all(abs(a[0] - b[0]) <= 1e-6 * max(1, abs(b[0])) and a[1] == b[1] for a, b in zip(got, want)),
          f"{name}: {len(got)} stops, values and colours as in the .qml and the report {got}")
    check("(" in layer.name() and ")" in layer.name(), f"{name}: layer title with unit: {layer.name()!r}")
best = layer_named(run_dir, "best_intervention.tif")
check(best is not None and best.renderer().type() == "paletted", "best_intervention.tif is in the project, paletted")
if best is not None:
    classes = best.renderer().classes()
    root = ET.parse(os.path.join(run_dir, "best_intervention.qml")).getroot()
    want = [(int(e.get("value")), e.get("color").lower(), e.get("label")) for e in root.iter("paletteEntry")]
    got = [(c.value, c.color.name(), c.label) for c in classes]
    check(got == want and len(got) >= 2, f"best_intervention: {len(got)} classes with the style's colours and names")

# 2. zonal, with layers picked from the project (a scene is generated).
# Copies: QGIS writes statistics (.aux.xml) beside the rasters it shows.
sample = os.path.join(OUT, "inputs")
os.makedirs(sample, exist_ok=True)
for f in ["rasters/sample/landcover.tif", "rasters/sample/forest_age.tif", "vectors/sample_zones.geojson"]:
    shutil.copy(f, sample)
lc = QgsRasterLayer(os.path.join(sample, "landcover.tif"), "land cover")
age = QgsRasterLayer(os.path.join(sample, "forest_age.tif"), "forest age")
zones_in = QgsVectorLayer(os.path.join(sample, "sample_zones.geojson"), "prefectures", "ogr")
check(lc.isValid() and age.isValid() and zones_in.isValid(), "sample layers load")
project.addMapLayers([lc, age, zones_in], False)
zonal_dir = os.path.join(OUT, "zonal")
fb = Feedback()
processing.run("sinkmap:zonal", {
    "LANDCOVER": lc, "FOREST_AGE": age, "BASE_YEAR": 2020, "ZONES": zones_in,
    "ZONE_ID": "zone_id", "ZONE_NAME": "name", "OUTPUT": zonal_dir,
}, context=ctx, feedback=fb)
check(os.path.exists(os.path.join(zonal_dir, "scene.toml")), "zonal: scene generated from the layers")
zones = layer_named(zonal_dir, "zones.geojson")
check(zones is not None, "zones.geojson is in the project")
zone_colours = set()
if zones is not None:
    r = zones.renderer()
    check(r.type() == "graduatedSymbol" and r.classAttribute() == "mean_sink_tco2_per_ha_yr", f"zones: {r.type()} on {r.classAttribute()}")
    root = ET.parse(os.path.join(zonal_dir, "zones.qml")).getroot()
    want = [tuple(int(x) for x in o.get("value").split(",")[:3]) for o in root.find("renderer-v2").find("symbols").iter("Option") if o.get("name") == "color"]
    ranges = r.ranges()  # keep the copies alive while their symbols are read
    got = [tuple(x.symbol().color().getRgb()[:3]) for x in ranges]
    check(len(got) == 5 and got == want, f"zones: 5 classes with the style's colours {got}")
    check("(t CO₂/ha/yr)" in zones.name(), f"zones: layer title with unit: {zones.name()!r}")
    check(zones.labelsEnabled() and zones.labeling().settings().fieldName == "zone_name", "zones labelled with zone_name")
    for f in zones.getFeatures():
        rng = r.rangeForValue(f["mean_sink_tco2_per_ha_yr"])
        if rng is not None:
            zone_colours.add(tuple(rng.symbol().color().getRgb()[:3]))

# 2b. The other algorithms: change (layers picked, a stock-change map styled diverging),
# project, balance and report (tables and the HTML report).
change_dir = os.path.join(OUT, "change")
before = QgsRasterLayer(os.path.join(sample, "landcover.tif"), "land cover 2000")
processing.run("sinkmap:change", {
    "BEFORE": before, "AFTER": lc, "YEAR_BEFORE": 2000, "YEAR_AFTER": 2020, "OUTPUT": change_dir,
}, context=ctx, feedback=Feedback())
change = layer_named(change_dir, "stock_change_tc_per_ha.tif")
check(change is not None and change.renderer().type() == "singlebandpseudocolor", "change: stock-change map in the project, stretched")
if change is not None:
    items = change.renderer().shader().rasterShaderFunction().colorRampItemList()
    check(len(items) == 3 and abs(items[0].value + items[2].value) < 1e-9 and items[1].value == 0.0,
          f"change: diverging ramp symmetric around 0 {[(i.value, i.color.name()) for i in items]}")
project_dir = os.path.join(OUT, "project")
processing.run("sinkmap:project", {"PROJECT": "rasters/sample/project_grazing_exclusion.toml", "OUTPUT": project_dir}, context=ctx, feedback=Feedback())
check(os.path.exists(os.path.join(project_dir, "project.csv")), "project: project.csv written")
balance_dir = os.path.join(OUT, "balance")
processing.run("sinkmap:balance", {
    "SCENE": "rasters/sample/scene.toml", "CUBE": os.path.join(run_dir, "cube.csv"), "UNTIL": 2060, "DRAWS": 20, "OUTPUT": balance_dir,
}, context=ctx, feedback=Feedback())
check(os.path.exists(os.path.join(balance_dir, "balance.csv")), "balance: balance.csv written")
res = processing.run("sinkmap:report", {"FOLDER": run_dir}, context=ctx, feedback=Feedback())
check(os.path.exists(res["REPORT"]), f"report: {os.path.basename(res['REPORT'])} written")

# 3. Errors reach the log; cancelling stops sinkmap.
fb = Feedback()
try:
    processing.run("sinkmap:run", {"SCENE": os.path.join(OUT, "missing.toml"), "OUTPUT": os.path.join(OUT, "bad")}, context=ctx, feedback=fb)
    check(False, "a missing scene fails")
except QgsProcessingException as e:
    check("missing.toml" in str(e) or any("missing.toml" in x for x in fb.errors), f"a missing scene fails with sinkmap's error in the log: {fb.errors[-1:] or e}")
fb = Feedback(cancel_at=0.0)  # at the first progress line (sinkmap is mid-run)
cancel_dir = os.path.join(OUT, "cancelled")
try:
    processing.run("sinkmap:run", {"SCENE": "rasters/sample/scene.toml", "NO_REPORT": True, "OUTPUT": cancel_dir}, context=ctx, feedback=fb)
    check(False, "cancelling stops the run")
except QgsProcessingException as e:
    left = [f for f in os.listdir(cancel_dir) if f.endswith(".tif") or f.startswith(".sinkmap-partial")] if os.path.isdir(cancel_dir) else []
    check("cancelled" in str(e) and not left, f"cancelling stops sinkmap: no map left, final or partial ({e}; {left})")


# 4. Render: each styled raster alone, then the project (zones over the maps).
def render(layers, path):
    settings = QgsMapSettings()
    settings.setLayers(layers)
    ext = QgsRectangle()
    for l in layers:
        ext.combineExtentWith(l.extent())
    settings.setExtent(ext)
    settings.setOutputSize(QSize(900, 620))
    settings.setBackgroundColor(QColor(255, 255, 255))
    settings.setDestinationCrs(layers[0].crs())
    job = QgsMapRendererParallelJob(settings)
    job.start()
    job.waitForFinished()
    img = job.renderedImage()
    img.save(path, "png")
    counts = {}
    for y in range(0, img.height(), 2):
        for x in range(0, img.width(), 2):
            c = QColor(img.pixel(x, y)).getRgb()[:3]
            counts[c] = counts.get(c, 0) + 1
    return counts


stock = layer_named(run_dir, "stock_tc_per_ha.tif")
if stock is not None:
    counts = render([stock], os.path.join(OUT, "stock_tc_per_ha.png"))
    ramp = qml_ramp(os.path.join(run_dir, "stock_tc_per_ha.qml"))
    ends = [tuple(int(c[i:i + 2], 16) for i in (1, 3, 5)) for c in (ramp[0][1], ramp[-1][1])]
    check(len(counts) > 50, f"stock map rendered with {len(counts)} colours (not blank)")
    check(all(counts.get(c, 0) > 0 for c in ends), f"stock map shows the ramp's end colours {ends}")
if best is not None:
    counts = render([best], os.path.join(OUT, "best_intervention.png"))
    pal = [tuple(c.color.getRgb()[:3]) for c in best.renderer().classes()]
    check(sum(1 for c in pal if counts.get(c, 0) > 0) >= 2, "best-intervention map shows its class colours")
if zones is not None and stock is not None:
    counts = render([zones, best, stock], os.path.join(OUT, "project.png"))
    white = counts.get((255, 255, 255), 0)
    check(white < 0.9 * sum(counts.values()), "project render is not blank")
    check(zone_colours and all(counts.get(c, 0) > 0 for c in zone_colours), f"project render shows the zone classes' colours {sorted(zone_colours)}")
    project.write(os.path.join(OUT, "sinkmap_check.qgz"))

print(f"{len(FAILURES)} failure(s)", flush=True)
# Leave without QgsApplication.exitQgis(): with Processing loaded, QGIS 3.22's teardown in a
# standalone script can abort on heap corruption after everything is done.
os._exit(1 if FAILURES else 0)
