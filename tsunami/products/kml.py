"""The inundation extent as a styled KMZ for Google Earth (OGC KML 2.2).

One placemark per depth class (name: the class label; description: depth range, area and
the forecast it belongs to), filled with the class's MLIT colour at 70 % opacity, with a
thin outline; the document is named after the event, forecast and town. Written with the
standard library's ElementTree from the GeoJSON features of
:func:`tsunami.products.vectors.extent_features` (longitude/latitude, WGS 84, as KML
requires), zipped as ``doc.kml`` into a ``.kmz``.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

KML_NS = "http://www.opengis.net/kml/2.2"
FILL_ALPHA = 0xB3  # 70 % opaque: the map below stays readable


def _kml_colour(hex_rgb: str, alpha: int) -> str:
    """KML colours are aabbggrr."""
    r, g, b = hex_rgb[1:3], hex_rgb[3:5], hex_rgb[5:7]
    return f"{alpha:02x}{b}{g}{r}".lower()


def _ring(parent: ET.Element, tag: str, coordinates: list) -> None:
    boundary = ET.SubElement(parent, tag)
    ring = ET.SubElement(boundary, "LinearRing")
    ET.SubElement(ring, "coordinates").text = " ".join(f"{x:.7f},{y:.7f}"
                                                       for x, y, *_ in coordinates)


def extent_kml(collection: dict, title: str) -> bytes:
    """KML document (bytes, UTF-8) of an extent FeatureCollection."""
    kml = ET.Element("kml", xmlns=KML_NS)
    document = ET.SubElement(kml, "Document")
    ET.SubElement(document, "name").text = title
    ET.SubElement(document, "description").text = (
        "Forecast maximum inundation depth by class (MLIT 2016 detailed palette). "
        "Planning information from a tsunami forecast model, not an observation.")
    for feature in collection["features"]:
        p = feature["properties"]
        style = ET.SubElement(document, "Style", id=f"class{p['depth_cls']}")
        line = ET.SubElement(style, "LineStyle")
        ET.SubElement(line, "color").text = _kml_colour(p["colour"], 0xFF)
        ET.SubElement(line, "width").text = "0.5"
        poly = ET.SubElement(style, "PolyStyle")
        ET.SubElement(poly, "color").text = _kml_colour(p["colour"], FILL_ALPHA)
    for feature in collection["features"]:
        p = feature["properties"]
        placemark = ET.SubElement(document, "Placemark")
        ET.SubElement(placemark, "name").text = f"depth {p['label']}"
        upper = "" if p["depth_hi_m"] is None else f" to {p['depth_hi_m']:g}"
        ET.SubElement(placemark, "description").text = (
            f"maximum inundation depth {p['depth_lo_m']:g}{upper} m; "
            f"area {p['area_m2'] / 1e4:.2f} ha; event {p.get('event_id', '?')}, forecast "
            f"{p.get('forecast', '?')}, issued {p.get('issued', '?')}")
        ET.SubElement(placemark, "styleUrl").text = f"#class{p['depth_cls']}"
        extended = ET.SubElement(placemark, "ExtendedData")
        for key in ("depth_cls", "depth_lo_m", "depth_hi_m", "area_m2", "event_id",
                    "forecast", "issued"):
            data = ET.SubElement(extended, "Data", name=key)
            ET.SubElement(data, "value").text = "" if p.get(key) is None else str(p[key])
        multi = ET.SubElement(placemark, "MultiGeometry")
        for polygon in feature["geometry"]["coordinates"]:
            element = ET.SubElement(multi, "Polygon")
            _ring(element, "outerBoundaryIs", polygon[0])
            for hole in polygon[1:]:
                _ring(element, "innerBoundaryIs", hole)
    return ET.tostring(kml, encoding="utf-8", xml_declaration=True)


def write_kmz(collection: dict, path: Path, title: str) -> Path:
    """Write the extent as a KMZ (zip holding ``doc.kml``) to ``path``."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as kmz:
        kmz.writestr("doc.kml", extent_kml(collection, title))
    return path
