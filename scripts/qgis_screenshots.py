"""Run inside QGIS (`qgis --code`) by scripts/qgis-screenshots: loads the sinkmap plugin and the
styled outputs of a run, then saves two screenshots: the main window (styled maps and their
legend) and the Processing dialog of `run` with layers picked from the project."""

import os
import shutil
import sys

from qgis.core import QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import QTimer
from qgis.utils import iface

PLUGINS = os.environ["SINKMAP_SHOT_PLUGINS"]
RUN_DIR = os.environ["SINKMAP_SHOT_RUN"]
OUT = os.environ["SINKMAP_SHOT_OUT"]
sys.path.insert(0, PLUGINS)
import processing  # noqa: E402
import sinkmap_processing  # noqa: E402
from sinkmap_processing.algorithms import add_outputs_to_project  # noqa: E402

plugin = sinkmap_processing.classFactory(iface)
plugin.initProcessing()
project = QgsProject.instance()
# Copies: QGIS writes statistics (.aux.xml) beside the rasters it shows.
for f in ["rasters/sample/landcover.tif", "rasters/sample/forest_age.tif", "vectors/sample_zones.geojson"]:
    shutil.copy(f, OUT)
lc = QgsRasterLayer(os.path.join(OUT, "landcover.tif"), "land cover")
age = QgsRasterLayer(os.path.join(OUT, "forest_age.tif"), "forest age")
zones = QgsVectorLayer(os.path.join(OUT, "sample_zones.geojson"), "prefectures", "ogr")
project.addMapLayers([lc, age, zones], False)
layers = add_outputs_to_project(RUN_DIR, project, "sinkmap run: sample")
# Show the stock map with its legend; the other outputs listed, hidden and collapsed.
root = project.layerTreeRoot()
for layer in layers:
    visible = os.path.basename(layer.source().split("|")[0]) == "stock_tc_per_ha.tif"
    root.findLayer(layer.id()).setItemVisibilityChecked(visible)
    root.findLayer(layer.id()).setExpanded(visible)
iface.mainWindow().resize(1280, 800)
iface.mapCanvas().setExtent(layers[0].extent())
iface.mapCanvas().refresh()
state = {}


def main_window():
    iface.mainWindow().grab().save(os.path.join(OUT, "qgis_styled_map.png"))
    dlg = processing.createAlgorithmDialog(
        "sinkmap:run",
        {"LANDCOVER": lc.id(), "FOREST_AGE": age.id(), "ZONES": zones.id(), "ZONE_ID": "zone_id", "ZONE_NAME": "name"},
    )
    dlg.resize(900, 680)
    dlg.show()
    state["dlg"] = dlg
    QTimer.singleShot(2500, dialog)


def dialog():
    state["dlg"].grab().save(os.path.join(OUT, "qgis_processing_dialog.png"))
    state["dlg"].close()
    os._exit(0)  # no "save the project?" question


QTimer.singleShot(6000, main_window)
