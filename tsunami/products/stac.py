"""STAC metadata: an Item per forecast listing every product, a Collection per event.

Built with pystac (STAC 1.1). Every file of a forecast is an asset, keyed by its file name
(GeoTIFFs by the name without ``.tif``, every other file with its suffix after an
underscore, so ``Aonae_max_depth_6679`` is the GeoTIFF and ``Aonae_max_depth_6679_qml``
its style) with its role, media type and size and SHA-256 (file extension). GeoTIFFs
also carry projection (``proj:code``, shape, transform) and raster fields (nodata, data
type, unit and spatial resolution per band) read back from the written file, and the
depth classes the classification extension. Forecast-level facts (event, forecast
number, origin and issue times, model version, source type, the wall time of each
pipeline stage) are Item properties prefixed ``tsunami:``.

Links are relative, so an outbox can be copied or served from anywhere: each Item links
to its Collection (``../collection.json``) as root, parent and collection; the
Collection links to itself as root and to every Item. Self links, which STAC requires to
be absolute, are written only when the outbox's public URL is known
(``TSUNAMI_OUTBOX_URL``, e.g. ``https://hq.example/tsunami``).

Licence: the forecasts are published under CC-BY-4.0 (:data:`DATA_LICENSE`, with a
``license`` link); the software is BSD-3-Clause.

:func:`validate` checks an Item or Collection offline against the STAC 1.1 core schemas
that pystac ships and the extension schemas shipped in ``stac_schemas/`` (provenance in
its ``SOURCE.md``); no schema is ever fetched from the network.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from pathlib import Path

import pystac
import rasterio
from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match
from pystac.validation.local_validator import get_local_schema_cache
from referencing import Registry, Resource
from shapely.geometry import box, mapping
from shapely.geometry.polygon import orient
from shapely.ops import unary_union

from tsunami.assets import COG, MEDIA, Asset

__all__ = ["COG", "DATA_LICENSE", "MEDIA", "Asset", "ForecastInfo", "asset_key",
           "classification_classes", "event_collection", "forecast_item", "validate",
           "validate_item", "write_json"]

DATA_LICENSE = "CC-BY-4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by/4.0/"
PUBLIC_URL_VARIABLE = "TSUNAMI_OUTBOX_URL"
EXTENSIONS = {  # schema URI -> file in stac_schemas/
    "https://stac-extensions.github.io/projection/v2.0.0/schema.json":
        "projection-v2.0.0.json",
    "https://stac-extensions.github.io/raster/v1.1.0/schema.json": "raster-v1.1.0.json",
    "https://stac-extensions.github.io/classification/v1.1.0/schema.json":
        "classification-v1.1.0.json",
    "https://stac-extensions.github.io/file/v2.1.0/schema.json": "file-v2.1.0.json",
}
PROJECTION, RASTER, CLASSIFICATION, FILE = EXTENSIONS


@dataclass
class ForecastInfo:
    """What identifies a forecast and how it was made."""

    event_id: str
    forecast_number: int
    issue_time: datetime
    origin_time: datetime | None
    model_version: str
    source_type: str
    region: str
    scenario: str
    timings_s: dict[str, float] = field(default_factory=dict)
    description: str = ""
    #: Further item properties (e.g. a watch service's source, data and stage timings),
    #: JSON-serialisable, keys namespaced ``tsunami:...``.
    properties: dict = field(default_factory=dict)
    #: One line on what the forecast rests on (e.g. "source: gauge inversion ..."), shown
    #: on the quick-look maps, where an officer reads no STAC item ("": none).
    headline: str = ""

    @property
    def item_id(self) -> str:
        return f"{self.event_id}-forecast-{self.forecast_number:03d}"

    def tags(self) -> dict[str, str]:
        """The identity every published file carries (GeoTIFF tags, GeoPackage metadata,
        summary fields)."""
        return {"event_id": self.event_id, "forecast_number": str(self.forecast_number),
                "issue_time": _iso(self.issue_time), "origin_time": _iso(self.origin_time) or "",
                "model_version": self.model_version, "source_type": self.source_type}


def _iso(moment: datetime | None) -> str | None:
    """ISO 8601 in whole seconds, UTC as Z."""
    if moment is None:
        return None
    return moment.replace(microsecond=0).isoformat().replace("+00:00", "Z")


def public_url() -> str | None:
    """The public URL of the outbox, if the operator gave one (absolute self links)."""
    url = os.environ.get(PUBLIC_URL_VARIABLE, "").strip()
    return url.rstrip("/") or None


def asset_key(path: Path) -> str:
    """Unique per file of a forecast folder: GeoTIFFs by stem, others stem_suffix."""
    if path.suffix.lower() == ".tif":
        return path.stem
    return path.name.replace(".", "_")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return "1220" + digest.hexdigest()  # multihash: sha2-256, 32 bytes


def _nodata(value: float | None):
    if value is None:
        return None
    if value != value:
        return "nan"
    return value


def _raster_fields(path: Path) -> dict:
    """Projection and raster extension fields of a GeoTIFF, read from the file."""
    with rasterio.open(path) as src:
        epsg = src.crs.to_epsg() if src.crs else None
        fields = {"proj:code": f"EPSG:{epsg}" if epsg else None,
                  "proj:shape": [src.height, src.width],
                  "proj:transform": list(src.transform)[:6],
                  "raster:bands": []}
        if epsg is None and src.crs:
            fields["proj:wkt2"] = src.crs.to_wkt()
        for b, (dtype, unit) in enumerate(zip(src.dtypes, src.units, strict=True), start=1):
            band = {"data_type": dtype, "spatial_resolution": abs(src.transform.a)}
            nodata = _nodata(src.nodatavals[b - 1])
            if nodata is not None:
                band["nodata"] = nodata
            if unit:
                band["unit"] = unit
            fields["raster:bands"].append(band)
    return fields


def classification_classes(categories: dict[int, str],
                           colormap: dict[int, tuple] | None) -> list[dict] | None:
    """STAC classification objects of a classified layer (None for a continuous one)."""
    if not categories:
        return None
    colours = colormap or {}
    return [{"value": k, "name": "not_flooded" if k == 0 else f"depth_class_{k}",
             "description": label}
            | ({"color_hint": "{:02X}{:02X}{:02X}".format(*colours[k][:3])}
               if k in colours and colours[k][3] else {})
            for k, label in sorted(categories.items())]


def forecast_item(info: ForecastInfo, assets: list[Asset], footprints: list[tuple]) -> dict:
    """The STAC Item (as a dict) of one forecast; asset hrefs relative to its folder.

    ``footprints`` are (west, south, east, north) boxes in EPSG:4326.
    """
    area = unary_union([box(*b) for b in footprints])
    area = orient(area, sign=1.0) if area.geom_type == "Polygon" else type(area)(
        [orient(p, sign=1.0) for p in area.geoms])  # RFC 7946: exteriors counter-clockwise
    item = pystac.Item(
        id=info.item_id, geometry=json.loads(json.dumps(mapping(area))),
        bbox=list(area.bounds),
        datetime=info.issue_time, collection=info.event_id,
        properties={
            "title": f"Tsunami forecast {info.forecast_number} for {info.event_id}",
            "description": info.description or f"{info.scenario} on {info.region}",
            "created": _iso(info.issue_time),
            "license": DATA_LICENSE,
            "tsunami:event_id": info.event_id,
            "tsunami:forecast_number": info.forecast_number,
            "tsunami:issue_time": _iso(info.issue_time),
            "tsunami:origin_time": _iso(info.origin_time),
            "tsunami:model_version": info.model_version,
            "tsunami:source_type": info.source_type,
            "tsunami:region": info.region,
            "tsunami:scenario": info.scenario,
            "tsunami:timings_s": {k: round(float(v), 3) for k, v in info.timings_s.items()},
            **info.properties,
        })
    extensions = {FILE}
    for asset in assets:
        fields = dict(asset.extra, **{"file:size": asset.path.stat().st_size,
                                      "file:checksum": _sha256(asset.path)})
        if asset.path.suffix.lower() == ".tif":
            fields.update(_raster_fields(asset.path))
            extensions |= {PROJECTION, RASTER}
        if asset.classes:
            fields["classification:classes"] = asset.classes
            extensions.add(CLASSIFICATION)
        key = asset_key(asset.path)
        if key in item.assets:
            raise ValueError(f"two products share the asset key {key!r}")
        item.add_asset(key, pystac.Asset(href=asset.path.name, title=asset.title,
                                         media_type=asset.type, roles=asset.roles,
                                         extra_fields=fields))
    item.stac_extensions = sorted(extensions)
    data = item.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = _links(info.event_id, f"forecast-{info.forecast_number:03d}/item.json",
                           "../collection.json")
    return data


def _links(event_id: str, own: str, collection: str) -> list[dict]:
    """Relative root/parent/collection links (and absolute self and root links where the
    outbox's public URL is known) plus the licence."""
    url = public_url()
    base = f"{url}/{event_id}/" if url else None
    links = []
    if base:
        links.append({"rel": "self", "href": base + own, "type": _json_type(own)})
    root = base + "collection.json" if base else collection
    links += [{"rel": rel, "href": root, "type": "application/json",
               "title": f"Tsunami forecasts for {event_id}"}
              for rel in (("root", "parent", "collection") if own != "collection.json"
                          else ("root",))]
    links.append({"rel": "license", "href": LICENSE_URL, "type": "text/html",
                  "title": f"{DATA_LICENSE}: Creative Commons Attribution 4.0"})
    return links


def _json_type(href: str) -> str:
    return "application/geo+json" if href.endswith("item.json") else "application/json"


def event_collection(event_id: str, items: list[dict], description: str) -> dict:
    """The STAC Collection of an event, linking every published forecast's Item."""
    boxes = [box(*i["bbox"]) for i in items]
    times = sorted(i["properties"]["datetime"] for i in items)
    origins = [i["properties"].get("tsunami:origin_time") for i in items]
    start = min([o for o in origins if o] + times[:1])
    extent = pystac.Extent(
        pystac.SpatialExtent([list(unary_union(boxes).bounds)]),
        pystac.TemporalExtent([[datetime.fromisoformat(start.replace("Z", "+00:00")),
                                datetime.fromisoformat(times[-1].replace("Z", "+00:00"))]]))
    collection = pystac.Collection(id=event_id, description=description, extent=extent,
                                   license=DATA_LICENSE,
                                   title=f"Tsunami forecasts for {event_id}")
    data = collection.to_dict(include_self_link=False, transform_hrefs=False)
    data["links"] = _links(event_id, "collection.json", "./collection.json")
    for i in items:
        n = i["properties"]["tsunami:forecast_number"]
        data["links"].append({"rel": "item", "href": f"forecast-{n:03d}/item.json",
                              "type": "application/geo+json",
                              "title": i["properties"]["title"]})
    return data


@cache
def _registry() -> Registry:
    folder = Path(__file__).with_name("stac_schemas")
    schemas = dict(get_local_schema_cache())
    for uri, name in EXTENSIONS.items():
        schemas[uri] = json.loads((folder / name).read_text(encoding="utf-8"))
    return Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in schemas.items())


def validate(data: dict) -> None:
    """Validate a STAC Item or Collection (dict) against the core schema of its STAC
    version and the schema of every extension it declares, offline; ValueError with the
    most relevant error otherwise (also for a schema that is not shipped)."""
    data = json.loads(json.dumps(data))  # as a reader sees it: tuples become arrays
    kind = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}.get(
        data.get("type"))
    if kind is None:
        raise ValueError(f"not a STAC Item, Collection or Catalog: type {data.get('type')!r}")
    core = (f"https://schemas.stacspec.org/v{data.get('stac_version')}/{kind}-spec/"
            f"json-schema/{kind}.json")
    registry = _registry()
    for uri in [core, *data.get("stac_extensions", [])]:
        try:
            schema = registry.contents(uri)
        except LookupError as error:
            raise ValueError(f"no offline schema for {uri}") from error
        error = best_match(Draft7Validator(schema, registry=registry).iter_errors(data))
        if error is not None:
            raise ValueError(f"STAC {kind} {data.get('id')!r} fails {uri}: {error.message} "
                             f"at {'/'.join(map(str, error.absolute_path))}")


def validate_item(item: dict) -> None:
    """Validate a forecast's Item (see :func:`validate`); raises on failure."""
    validate(item)


def write_json(data: dict, path: Path) -> Path:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
