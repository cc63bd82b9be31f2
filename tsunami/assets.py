"""A published file and how a catalogue describes it (shared by damage and products)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
GEOTIFF = "image/tiff; application=geotiff"
GEOPACKAGE = "application/geopackage+sqlite3"
MEDIA = {".tif": COG, ".geojson": "application/geo+json", ".png": "image/png",
         ".nc": "application/x-netcdf", ".csv": "text/csv", ".json": "application/json",
         ".gpkg": GEOPACKAGE, ".qml": "application/xml", ".xml": "application/xml",
         ".kmz": "application/vnd.google-earth.kmz", ".kml": "application/vnd.google-earth.kml+xml"}


@dataclass
class Asset:
    """A product file: its title, STAC roles and media type (default: from the suffix),
    and for a classified raster its classes (STAC classification objects)."""

    path: Path
    title: str
    roles: list[str]
    media_type: str | None = None
    classes: list[dict] | None = None
    extra: dict = field(default_factory=dict)

    @property
    def type(self) -> str:
        return self.media_type or MEDIA.get(self.path.suffix.lower(),
                                            "application/octet-stream")
