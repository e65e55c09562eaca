"""sinkmap Processing provider: QGIS entry point."""


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from .plugin import SinkmapPlugin

    return SinkmapPlugin(iface)
