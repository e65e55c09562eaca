"""The sinkmap Processing provider: its algorithms and settings."""

import os

from qgis.core import QgsProcessingProvider
from qgis.PyQt.QtGui import QIcon

from . import runner
from .algorithms import ALGORITHMS

try:  # the Processing plugin ships with QGIS; settings need it, the algorithms do not.
    from processing.core.ProcessingConfig import ProcessingConfig, Setting
except ImportError:  # pragma: no cover
    ProcessingConfig = None


class SinkmapProvider(QgsProcessingProvider):
    def id(self):
        return "sinkmap"

    def name(self):
        return "sinkmap"

    def longName(self):  # noqa: N802
        return "sinkmap: carbon stock and sink"

    def icon(self):
        return QIcon(os.path.join(os.path.dirname(__file__), "icon.svg"))

    def load(self):
        if ProcessingConfig is not None:
            ProcessingConfig.settingIcons[self.name()] = self.icon()
            ProcessingConfig.addSetting(
                Setting(
                    self.name(),
                    runner.SETTING_BINARY,
                    "sinkmap executable (empty: SINKMAP_BIN, then PATH)",
                    "",
                    valuetype=Setting.FILE,
                )
            )
            ProcessingConfig.addSetting(
                Setting(
                    self.name(),
                    runner.SETTING_MODELS,
                    "models folder for generated scenes (empty: SINKMAP_MODELS, then beside the executable)",
                    "",
                    valuetype=Setting.FOLDER,
                )
            )
            ProcessingConfig.readSettings()
        self.refreshAlgorithms()
        return True

    def unload(self):
        if ProcessingConfig is not None:
            ProcessingConfig.removeSetting(runner.SETTING_BINARY)
            ProcessingConfig.removeSetting(runner.SETTING_MODELS)

    def loadAlgorithms(self):  # noqa: N802
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
