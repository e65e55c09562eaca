"""The sinkmap algorithms: run, zonal, change, project, balance, report."""

import os

from qgis.core import (
    QgsProcessing,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorLayer,
    QgsProcessingOutputFile,
    QgsProject,
    QgsProviderRegistry,
    QgsRasterLayer,
    QgsVectorFileWriter,
    QgsVectorLayer,
)

from . import runner

# Outputs added to the project, bottom to top; each with the .qml of the same base name.
LAYER_FILES = [
    "stock_tc_per_ha.tif",
    "sink_tco2_per_ha_yr.tif",
    "potential_tco2_per_ha_yr.tif",
    "best_intervention.tif",
    "stock_change_tc_per_ha.tif",
    "zones.geojson",
]


def add_outputs_to_project(folder, project, group_name):
    """Adds the sinkmap outputs found in `folder` to `project` in a group of their own, each
    with its style applied (the .qml beside it) and named after the style's title. Returns
    the layers added."""
    root = project.layerTreeRoot()
    group = root.findGroup(group_name) or root.insertGroup(0, group_name)
    added = []
    for name in LAYER_FILES:
        path = os.path.join(folder, name)
        if not os.path.exists(path):
            continue
        qml = os.path.splitext(path)[0] + ".qml"
        title = runner.style_title(qml) or os.path.splitext(name)[0]
        if name.endswith(".tif"):
            layer = QgsRasterLayer(path, title, "gdal")
        else:
            layer = QgsVectorLayer(path, title, "ogr")
        if not layer.isValid():
            continue
        if os.path.exists(qml):
            _, ok = layer.loadNamedStyle(qml)
            if not ok:
                continue
        project.addMapLayer(layer, False)
        group.insertLayer(0, layer)
        added.append(layer)
    return added


def _source_file(layer, folder, stem, feedback):
    """(path, layer name or None) of a layer GDAL/OGR can open; a vector layer that is not a
    file (memory, database) is saved to a GeoPackage in `folder` first."""
    provider = layer.providerType()
    decoded = QgsProviderRegistry.instance().decodeUri(provider, layer.source())
    path = decoded.get("path") or ""
    if provider in ("gdal", "ogr") and path and os.path.exists(path):
        return os.path.abspath(path), decoded.get("layerName") or None
    if isinstance(layer, QgsVectorLayer):
        out = os.path.join(folder, stem + ".gpkg")
        options = QgsVectorFileWriter.SaveVectorOptions()
        options.driverName = "GPKG"
        err = QgsVectorFileWriter.writeAsVectorFormatV3(
            layer, out, layer.transformContext(), options
        )
        if err[0] != QgsVectorFileWriter.NoError:
            raise QgsProcessingException(f"{layer.name()}: cannot be saved for sinkmap: {err[1]}")
        feedback.pushInfo(f"{layer.name()} saved to {out} for sinkmap")
        return out, None
    raise QgsProcessingException(
        f"{layer.name()}: not a file GDAL can read ({layer.source()}); save it as a GeoTIFF first"
    )


class SinkmapAlgorithm(QgsProcessingAlgorithm):
    """Common parts: the command line, progress, errors and the outputs in the project."""

    OUTPUT = "OUTPUT"
    command = ""
    display = ""
    help_text = ""
    adds_layers = True

    def name(self):
        return self.command

    def displayName(self):  # noqa: N802
        return self.display

    def group(self):
        return "sinkmap"

    def groupId(self):  # noqa: N802
        return "sinkmap"

    def shortHelpString(self):  # noqa: N802
        return self.help_text

    def createInstance(self):  # noqa: N802
        return type(self)()

    # Scene: a file, or layers from the project written into a generated scene.
    def add_scene_parameters(self, zones=True, zones_required=False, optional_scene=True):
        self.addParameter(
            QgsProcessingParameterFile(
                "SCENE",
                "Scene file (TOML); leave empty to use the layers below",
                extension="toml",
                optional=optional_scene,
            )
        )
        if optional_scene:
            self.addParameter(
                QgsProcessingParameterRasterLayer("LANDCOVER", "Land cover (class codes)", optional=True)
            )
            self.addParameter(
                QgsProcessingParameterString("SCHEME", "Land-cover scheme (a name in models/schemes or a .toml file)", defaultValue="clcd")
            )
            self.addParameter(
                QgsProcessingParameterRasterLayer("FOREST_AGE", "Forest age (years)", optional=True)
            )
            self.addParameter(
                QgsProcessingParameterNumber("BASE_YEAR", "Base year of the land cover", QgsProcessingParameterNumber.Integer, defaultValue=2020, minValue=1900, maxValue=2100)
            )
            for key, label in (("FOREST_TYPE", "Forest type (codes)"), ("DESERT_SUBTYPE", "Desert subtype (codes)")):
                p = QgsProcessingParameterRasterLayer(key, label, optional=True)
                p.setFlags(p.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
                self.addParameter(p)
        if zones:
            self.addParameter(
                QgsProcessingParameterVectorLayer("ZONES", "Zones (polygons)", [QgsProcessing.TypeVectorPolygon], optional=not zones_required)
            )
            self.addParameter(
                QgsProcessingParameterField("ZONE_ID", "Zone id field", parentLayerParameterName="ZONES", optional=not zones_required)
            )
            self.addParameter(
                QgsProcessingParameterField("ZONE_NAME", "Zone name field", parentLayerParameterName="ZONES", optional=True)
            )

    def add_output_folder(self):
        self.addParameter(QgsProcessingParameterFolderDestination(self.OUTPUT, "Output folder"))

    def zones_args(self, parameters, context, folder, feedback):
        """(--zones PATH --id F [--name F] [--layer L]) or [] when no zone layer is given."""
        layer = self.parameterAsVectorLayer(parameters, "ZONES", context)
        if layer is None:
            return [], None
        path, layer_name = _source_file(layer, folder, "zones_input", feedback)
        id_field = self.parameterAsString(parameters, "ZONE_ID", context)
        if not id_field:
            raise QgsProcessingException("Zones: choose the zone id field")
        name_field = self.parameterAsString(parameters, "ZONE_NAME", context)
        args = ["--zones", path, "--id", id_field]
        if name_field:
            args += ["--name", name_field]
        if layer_name:
            args += ["--layer", layer_name]
        spec = {"path": path, "id_field": id_field, "name_field": name_field, "layer": layer_name}
        return args, spec

    def scene_path(self, parameters, context, folder, feedback, zones=None):
        """The scene file given, or one generated in `folder` from the layers picked."""
        scene = self.parameterAsFile(parameters, "SCENE", context)
        if scene:
            return scene
        lc = self.parameterAsRasterLayer(parameters, "LANDCOVER", context)
        if lc is None:
            raise QgsProcessingException("Give a scene file, or pick at least a land-cover layer")
        binary = runner.find_binary()
        paths = {}
        for key in ("FOREST_AGE", "FOREST_TYPE", "DESERT_SUBTYPE"):
            layer = self.parameterAsRasterLayer(parameters, key, context)
            paths[key] = _source_file(layer, folder, key.lower(), feedback)[0] if layer else None
        base_year = self.parameterAsInt(parameters, "BASE_YEAR", context)
        text = runner.scene_toml(
            name=f"QGIS scene ({lc.name()})",
            base_year=base_year,
            models_dir=runner.find_models(binary),
            output_dir=folder,
            landcover=_source_file(lc, folder, "landcover", feedback)[0],
            scheme=self.parameterAsString(parameters, "SCHEME", context) or "clcd",
            forest_age=paths["FOREST_AGE"],
            age_reference_year=base_year if paths["FOREST_AGE"] else None,
            forest_type=paths["FOREST_TYPE"],
            desert_subtype=paths["DESERT_SUBTYPE"],
            zones=zones,
        )
        path = os.path.join(folder, "scene.toml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        feedback.pushInfo(f"scene written to {path}")
        return path

    def output_folder(self, parameters, context):
        folder = self.parameterAsString(parameters, self.OUTPUT, context)
        os.makedirs(folder, exist_ok=True)
        return folder

    def run_sinkmap(self, args, feedback, folder=None):
        try:
            return runner.run(args, feedback)
        except RuntimeError as e:
            if folder and feedback is not None and feedback.isCanceled():
                # A stopped sinkmap leaves its temporary files (the next run would remove them).
                for name in os.listdir(folder):
                    if name.startswith(runner.TEMP_PREFIX):
                        try:
                            os.remove(os.path.join(folder, name))
                        except OSError:
                            pass
            raise QgsProcessingException(str(e))

    def postProcessAlgorithm(self, context, feedback):  # noqa: N802
        folder = getattr(self, "_folder", None)
        if self.adds_layers and folder:
            project = context.project() or QgsProject.instance()
            layers = add_outputs_to_project(folder, project, f"sinkmap {self.command}: {os.path.basename(folder)}")
            feedback.pushInfo(f"{len(layers)} layer(s) added to the project with their styles")
        return {}


class RunAlgorithm(SinkmapAlgorithm):
    command = "run"
    display = "Carbon stock and sink maps (run)"
    help_text = (
        "Computes the carbon stock and annual CO2 sink maps, the restoration potential, the "
        "summary, the cohort cube and (with zones) the zone tables and zones.geojson, then the "
        "HTML report. Give a scene file, or pick a land-cover layer (and a forest-age layer, "
        "zones) from the project: a scene file is generated in the output folder. The maps and "
        "zones are added to the project with their styles."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_scene_parameters()
        self.addParameter(QgsProcessingParameterBoolean("NO_REPORT", "Skip the HTML report", defaultValue=False))
        threads = QgsProcessingParameterNumber("THREADS", "Threads (0: all cores)", QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0)
        threads.setFlags(threads.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(threads)
        layout = QgsProcessingParameterEnum("LAYOUT", "Map layout", options=["cog", "tiled"], defaultValue=0)
        layout.setFlags(layout.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
        self.addParameter(layout)
        self.add_output_folder()
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (HTML)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.output_folder(parameters, context)
        zone_args, zones = self.zones_args(parameters, context, folder, feedback)
        scene = self.scene_path(parameters, context, folder, feedback, zones)
        args = [self.command, scene, "--out", folder, "--quiet"]
        if zone_args and self.parameterAsFile(parameters, "SCENE", context):
            # A scene file with zones picked in QGIS: the zonal command takes them.
            args = ["zonal", scene] + zone_args + ["--out", folder, "--quiet"]
        if self.parameterAsBool(parameters, "NO_REPORT", context) and args[0] == "run":
            args.append("--no-report")
        threads = self.parameterAsInt(parameters, "THREADS", context)
        if threads > 0:
            args += ["--threads", threads]
        args += ["--layout", ["cog", "tiled"][self.parameterAsEnum(parameters, "LAYOUT", context)]]
        self.run_sinkmap(args, feedback, folder)
        self._folder = folder
        report = os.path.join(folder, "report.html")
        return {self.OUTPUT: folder, "REPORT": report if os.path.exists(report) else None}


class ZonalAlgorithm(SinkmapAlgorithm):
    command = "zonal"
    display = "Zone tables for a polygon layer (zonal)"
    help_text = (
        "Runs a scene with another polygon layer as zones: zones.csv, zones.geojson (styled as a "
        "choropleth of the mean sink per ha, labelled with the zone names) and the maps."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_scene_parameters(zones_required=True)
        self.add_output_folder()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.output_folder(parameters, context)
        zone_args, zones = self.zones_args(parameters, context, folder, feedback)
        if not zone_args:
            raise QgsProcessingException("Pick a zone layer")
        scene = self.scene_path(parameters, context, folder, feedback, None)
        self.run_sinkmap(["zonal", scene] + zone_args + ["--out", folder, "--quiet"], feedback, folder)
        self._folder = folder
        return {self.OUTPUT: folder}


class ChangeAlgorithm(SinkmapAlgorithm):
    command = "change"
    display = "Land-cover change between two years (change)"
    help_text = (
        "Stock-difference map (stock_change_tc_per_ha.tif, styled with a diverging ramp "
        "around 0), transition matrices by zone, mean annual change and its value. The scene "
        "(file or layers) gives the models, zones and forest-type/desert-subtype layers."
    )

    def initAlgorithm(self, config=None):  # noqa: N802
        self.add_scene_parameters()
        self.addParameter(QgsProcessingParameterRasterLayer("BEFORE", "Land cover, first year"))
        self.addParameter(QgsProcessingParameterRasterLayer("AFTER", "Land cover, second year"))
        self.addParameter(QgsProcessingParameterNumber("YEAR_BEFORE", "First year", QgsProcessingParameterNumber.Integer, defaultValue=2000))
        self.addParameter(QgsProcessingParameterNumber("YEAR_AFTER", "Second year", QgsProcessingParameterNumber.Integer, defaultValue=2020))
        self.addParameter(QgsProcessingParameterNumber("PRICE", "Price per t C (yuan)", QgsProcessingParameterNumber.Double, defaultValue=0.0, minValue=0.0))
        self.addParameter(QgsProcessingParameterNumber("DISCOUNT", "Discount rate (% per year)", QgsProcessingParameterNumber.Double, defaultValue=0.0))
        self.add_output_folder()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.output_folder(parameters, context)
        _, zones = self.zones_args(parameters, context, folder, feedback)
        if not self.parameterAsFile(parameters, "SCENE", context) and self.parameterAsRasterLayer(parameters, "LANDCOVER", context) is None:
            parameters = dict(parameters, LANDCOVER=parameters["BEFORE"])
        scene = self.scene_path(parameters, context, folder, feedback, zones)
        before = _source_file(self.parameterAsRasterLayer(parameters, "BEFORE", context), folder, "before", feedback)[0]
        after = _source_file(self.parameterAsRasterLayer(parameters, "AFTER", context), folder, "after", feedback)[0]
        args = [
            "change", scene, "--before", before, "--after", after, "--years",
            self.parameterAsInt(parameters, "YEAR_BEFORE", context),
            self.parameterAsInt(parameters, "YEAR_AFTER", context),
            "--price-per-tc", self.parameterAsDouble(parameters, "PRICE", context),
            "--discount-rate", self.parameterAsDouble(parameters, "DISCOUNT", context),
            "--out", folder, "--quiet",
        ]
        self.run_sinkmap(args, feedback, folder)
        self._folder = folder
        return {self.OUTPUT: folder}


class ProjectAlgorithm(SinkmapAlgorithm):
    command = "project"
    display = "Restoration project evaluation (project)"
    help_text = "Evaluates one restoration project file: project.csv (one row per year) and project.json (totals)."
    adds_layers = False

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("PROJECT", "Project file (TOML)", extension="toml"))
        self.add_output_folder()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.output_folder(parameters, context)
        project = self.parameterAsFile(parameters, "PROJECT", context)
        out = self.run_sinkmap(["project", project, "--out", folder], feedback)
        for line in out.splitlines():
            feedback.pushInfo(line)
        return {self.OUTPUT: folder}


class BalanceAlgorithm(SinkmapAlgorithm):
    command = "balance"
    display = "Projection and emission balance (balance)"
    help_text = (
        "Projects the sink year by year from a saved cube with Monte Carlo bands and balances it "
        "against emission scenarios: trajectory.csv, sink_inputs.csv, balance.csv."
    )
    adds_layers = False

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("SCENE", "Scene file (TOML) of the run", extension="toml"))
        self.addParameter(QgsProcessingParameterFile("CUBE", "Cube (cube.csv; default: the scene's output folder)", extension="csv", optional=True))
        self.addParameter(QgsProcessingParameterNumber("UNTIL", "Until year", QgsProcessingParameterNumber.Integer, defaultValue=2060))
        self.addParameter(QgsProcessingParameterNumber("DRAWS", "Monte Carlo draws", QgsProcessingParameterNumber.Integer, defaultValue=1000, minValue=1))
        self.addParameter(QgsProcessingParameterNumber("SEED", "Seed", QgsProcessingParameterNumber.Integer, defaultValue=42, minValue=0))
        self.addParameter(QgsProcessingParameterFile("ROLLOUT", "Restoration rollout (TOML)", extension="toml", optional=True))
        self.add_output_folder()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.output_folder(parameters, context)
        args = [
            "balance", self.parameterAsFile(parameters, "SCENE", context),
            "--until", self.parameterAsInt(parameters, "UNTIL", context),
            "--draws", self.parameterAsInt(parameters, "DRAWS", context),
            "--seed", self.parameterAsInt(parameters, "SEED", context),
            "--out", folder,
        ]
        for key, flag in (("CUBE", "--cube"), ("ROLLOUT", "--rollout")):
            value = self.parameterAsFile(parameters, key, context)
            if value:
                args += [flag, value]
        out = self.run_sinkmap(args, feedback)
        for line in out.splitlines():
            feedback.pushInfo(line)
        return {self.OUTPUT: folder}


class ReportAlgorithm(SinkmapAlgorithm):
    command = "report"
    display = "HTML report of a run's outputs (report)"
    help_text = "Rebuilds report.html and report/*.png (and the QGIS styles) from the outputs of a run."
    adds_layers = False

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterFile("FOLDER", "Output folder of a run", behavior=QgsProcessingParameterFile.Folder))
        self.addOutput(QgsProcessingOutputFile("REPORT", "Report (HTML)"))

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        folder = self.parameterAsFile(parameters, "FOLDER", context)
        self.run_sinkmap(["report", folder], feedback)
        return {"REPORT": os.path.join(folder, "report.html")}


ALGORITHMS = [
    RunAlgorithm,
    ZonalAlgorithm,
    ChangeAlgorithm,
    ProjectAlgorithm,
    BalanceAlgorithm,
    ReportAlgorithm,
]
