"""QGIS styles (QML) that QGIS loads with the layers: ``<layer>.qml`` beside ``<layer>.tif``.

- :func:`depth_style` for the float depth layer: the MLIT classes as a discrete colour
  ramp, with land that stayed dry (depth below 1 cm, 0 included) transparent. QGIS
  gives a value the colour of the first ramp item whose value is >= it (the "discrete"
  rule of ``QgsColorRampShader``), so each item's value is the largest float32 below the
  class's upper bound: a float32 depth then falls in exactly the class
  :func:`tsunami.depth_classes.classify_depth` gives it.
- :func:`class_style` for the uint8 class layer: a paletted renderer with the eight
  labelled classes (0, not flooded, is nodata and draws nothing), so the legend reads
  "0.01-0.3 m" ... ">= 20 m" instead of the 256 entries of a GeoTIFF colour table.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import numpy as np

from tsunami.depth_classes import DEPTH_CLASSES, FLOODED, hex_colour

HEADER = ("<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n"
          '<qgis version="3.22.0" styleCategories="Symbology">\n  <pipe>\n')
FOOTER = "  </pipe>\n</qgis>\n"


def _below(bound: float) -> float:
    """The largest float32 value below ``bound`` (as a Python float)."""
    return float(np.nextafter(np.float32(bound), np.float32(-np.inf), dtype=np.float32))


def depth_style(path: Path) -> Path:
    """Write the QML of the float depth layer (m) to ``path``."""
    items = []
    for upper, label, rgb in DEPTH_CLASSES:
        value = "inf" if np.isinf(upper) else repr(_below(upper))
        items.append(f'          <item alpha="255" value="{value}" label={quoteattr(label)} '
                     f'color="{hex_colour(rgb).lower()}"/>\n')
    path.write_text(
        HEADER
        + '    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" '
        f'alphaBand="-1" nodataColor="" classificationMin="{FLOODED:g}" '
        f'classificationMax="{DEPTH_CLASSES[-2][0]:g}">\n'
        "      <rasterTransparency>\n        <singleValuePixelList>\n"
        f'          <pixelListEntry min="0" max="{_below(FLOODED)!r}" '
        'percentTransparent="100"/>\n'
        "        </singleValuePixelList>\n      </rasterTransparency>\n"
        "      <rastershader>\n"
        '        <colorrampshader colorRampType="DISCRETE" classificationMode="1" clip="0" '
        f'minimumValue="{FLOODED:g}" maximumValue="{DEPTH_CLASSES[-2][0]:g}" '
        'labelPrecision="2">\n'
        + "".join(items)
        + "        </colorrampshader>\n      </rastershader>\n    </rasterrenderer>\n"
        + FOOTER, encoding="utf-8")
    return path


def class_style(path: Path) -> Path:
    """Write the QML of the uint8 depth-class layer to ``path``."""
    entries = "".join(
        f'        <paletteEntry value="{k}" alpha="255" color="{hex_colour(rgb).lower()}" '
        f"label={quoteattr(label)}/>\n"
        for k, (_, label, rgb) in enumerate(DEPTH_CLASSES, start=1))
    path.write_text(
        HEADER
        + '    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" '
        'nodataColor="">\n      <rasterTransparency/>\n      <colorPalette>\n'
        + entries
        + "      </colorPalette>\n    </rasterrenderer>\n"
        + FOOTER, encoding="utf-8")
    return path
