"""The published products opened with the tools HQs and GIS teams use: GDAL (rasterio,
pyogrio, and gdalinfo/ogrinfo/ogr2ogr where installed), rio-cogeo, rio-tiler web-mercator
tiles, STAC validation offline, QGIS styles (parsed; rendered by QGIS when its Python
bindings are installed), Google Earth's KMZ, and maps with Japanese names."""

import json
import shutil
import subprocess
import sys
import warnings
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from xml.etree import ElementTree as ET

import geopandas as gpd
import numpy as np
import pyogrio
import pystac
import pytest
import rasterio
from pyproj import CRS, Transformer
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import Point, shape
from test_products import info, synthetic_town

from tsunami.depth_classes import DEPTH_CLASSES, classify_depth, hex_colour
from tsunami.products.layers import NODATA, Layer, write_cog
from tsunami.products.outbox import publish
from tsunami.products.stac import DATA_LICENSE, validate

QGIS_PYTHON = "/usr/bin/python3"


@pytest.fixture(scope="module")
def forecast(tmp_path_factory):
    """A published forecast of a small town with damage, gauges copied alongside."""
    from tsunami.pipeline import damage_writer
    from tsunami.region import ExposureSpec

    tmp = tmp_path_factory.mktemp("clients")
    town = synthetic_town(n=(300, 300), dx=5.0)  # big enough for overviews
    to_lonlat = Transformer.from_crs(6677, 4326, always_xy=True)
    xs = -10000.0 + np.array([230.0, 300.0, 420.0, 480.0])
    lon, lat = to_lonlat.transform(xs, np.full(4, -19400.0))
    buildings = tmp / "buildings.geojson"
    gpd.GeoDataFrame({"structure": ["wood", "wood", "rc", "wood"], "storeys": [1, 2, 3, 2]},
                     geometry=[Point(x, y) for x, y in zip(lon, lat, strict=True)],
                     crs="EPSG:4326").to_file(buildings, driver="GeoJSON")
    gauges = [tmp / "gauges.nc", tmp / "gauges.csv"]
    for path in gauges:
        path.write_text("gauge series stand-in")
    from tsunami.products.stac import Asset

    folder = publish({"bay": town}, tmp / "outbox", info(3), crs=CRS.from_epsg(6677),
                     resolution=5.0, copies=[Asset(p, p.name, ["data"]) for p in gauges],
                     writers=[damage_writer(ExposureSpec("bay", buildings), town,
                                            CRS.from_epsg(6677))])
    return folder


# -- QGIS styles ---------------------------------------------------------------------------

def qml_paint(path: Path):
    """(renderer type, function value -> colour or None) following QGIS's rules: a discrete
    ramp gives a value the colour of the first item whose value is >= it (the first item
    below all items); pixel-list transparency wins; a palette maps values to entries."""
    renderer = ET.parse(path).getroot().find("pipe/rasterrenderer")
    kind = renderer.get("type")
    if kind == "paletted":
        entries = {float(e.get("value")): e.get("color") for e in renderer.iter("paletteEntry")}
        return kind, entries.get
    items = [(float(i.get("value")), i.get("color"), int(i.get("alpha")))
             for i in renderer.iter("item")]
    assert renderer.find("rastershader/colorrampshader").get("colorRampType") == "DISCRETE"
    transparent = [(float(e.get("min")), float(e.get("max")))
                   for e in renderer.iter("pixelListEntry")
                   if float(e.get("percentTransparent")) == 100]

    def paint(value: float):
        if any(lo <= value <= hi for lo, hi in transparent):
            return None
        value_item = next((i for i in items if i[0] >= value), None)
        return None if value_item is None or value_item[2] == 0 else value_item[1]

    return kind, paint


def class_colour(k: int) -> str | None:
    return None if k == 0 else hex_colour(DEPTH_CLASSES[k - 1][2]).lower()


def test_depth_style_paints_dry_land_transparent_and_every_class_exactly(forecast):
    kind, paint = qml_paint(forecast / "bay_max_depth_6677.qml")
    assert kind == "singlebandpseudocolor"
    edges = [0.01, 0.3, 0.5, 1.0, 3.0, 5.0, 10.0, 20.0]
    probes = [0.0, 0.001, 50.0] + [float(np.float32(e) * f) for e in edges
                                   for f in (1.0, np.float32(1 - 1e-7), np.float32(1 + 1e-7))]
    probes = np.array(probes, dtype=np.float32)
    for value, k in zip(probes, classify_depth(probes), strict=True):
        assert paint(float(value)) == class_colour(int(k)), float(value)
    with rasterio.open(forecast / "bay_max_depth_6677.tif") as src:
        depth = src.read(1)
    values = np.unique(depth[depth != NODATA])
    assert (values == 0).any()  # the town has land that stayed dry
    for value, k in zip(values, classify_depth(values), strict=True):
        assert paint(float(value)) == class_colour(int(k)), float(value)


def test_class_layer_legend_reads_the_eight_depth_classes(forecast):
    kind, paint = qml_paint(forecast / "bay_depth_class_6677.qml")
    assert kind == "paletted"
    entries = list(ET.parse(forecast / "bay_depth_class_6677.qml").getroot().iter(
        "paletteEntry"))
    assert [e.get("label") for e in entries] == [label for _, label, _ in DEPTH_CLASSES]
    assert [paint(k) for k in range(9)] == [class_colour(k) for k in range(9)]
    pam = ET.parse(forecast / "bay_depth_class_6677.tif.aux.xml").getroot()
    names = [c.text for c in pam.iter("Category")]
    assert names[1:] == [label for _, label, _ in DEPTH_CLASSES] and len(names) == 9
    rows = pam.findall(".//Row")
    assert [r.findall("F")[1].text for r in rows[1:]] == names[1:]


QGIS_SCRIPT = """
import json, os, sys
from qgis.core import QgsApplication, QgsRasterLayer
QgsApplication.setPrefixPath("/usr", True)
app = QgsApplication([], False)
app.initQgis()
out = {}
for path in sys.argv[1:]:
    layer = QgsRasterLayer(path, "layer")
    renderer = layer.renderer()
    block = renderer.block(1, layer.extent(), layer.width(), layer.height())
    colours = [[("#%08x" % block.color(r, c)) for c in range(layer.width())]
               for r in range(layer.height())]
    out[path] = {"type": renderer.type(), "legend": [label for label, _ in
                                                       renderer.legendSymbologyItems()],
                 "colours": colours}
print(json.dumps(out), flush=True)
os._exit(0)  # QGIS 3.22 crashes in exitQgis() while layers are alive
"""


def qgis_available() -> bool:
    if not Path(QGIS_PYTHON).exists():
        return False
    done = subprocess.run([QGIS_PYTHON, "-c", "import qgis.core"], capture_output=True)
    return done.returncode == 0


@pytest.mark.skipif(not qgis_available(), reason="QGIS Python bindings not installed")
def test_qgis_renders_the_layers_with_their_styles(forecast):
    paths = [str(forecast / "bay_max_depth_6677.tif"), str(forecast / "bay_depth_class_6677.tif")]
    done = subprocess.run([QGIS_PYTHON, "-c", QGIS_SCRIPT, *paths], capture_output=True,
                          text=True, env={"QT_QPA_PLATFORM": "offscreen", "HOME": "/tmp"},
                          timeout=300, check=True)
    rendered = json.loads(done.stdout.strip().splitlines()[-1])
    labels = [label for _, label, _ in DEPTH_CLASSES]
    with rasterio.open(paths[0]) as src:
        classes = classify_depth(np.where(src.read(1) == NODATA, np.nan, src.read(1)))
    for path, kind in zip(paths, ("singlebandpseudocolor", "paletted"), strict=True):
        got = rendered[path]
        assert got["type"] == kind and got["legend"] == labels
        colours = np.array(got["colours"])
        for k in range(9):
            cells = colours[classes == k]
            if not cells.size:
                continue
            alpha = {c[1:3] for c in cells}
            if k == 0:
                assert alpha == {"00"}, path  # dry land, sea: transparent
            else:
                assert alpha == {"ff"} and {c[3:] for c in cells} == {class_colour(k)[1:]}


# -- GeoTIFFs: COG validity, overviews, GDAL, web tiles -----------------------------------

def tifs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.tif"))


def test_every_geotiff_is_a_valid_cog_and_opens_in_gdal(forecast):
    assert len(tifs(forecast)) == 6 + 5  # town layers and damage rasters
    for path in tifs(forecast):
        valid, errors, _ = cog_validate(str(path))
        assert valid, (path.name, errors)
        if shutil.which("gdalinfo"):
            meta = json.loads(subprocess.run(["gdalinfo", "-json", str(path)], check=True,
                                             capture_output=True, text=True).stdout)
            assert meta["coordinateSystem"]["wkt"]
            assert meta["metadata"][""]["event_id"] == "test-event", path.name
    cli = Path(sys.executable).with_name("rio")
    done = subprocess.run([str(cli), "cogeo", "validate", str(tifs(forecast)[0])],
                          capture_output=True, text=True)
    assert done.returncode == 0 and "is a valid cloud optimized GeoTIFF" in done.stdout


@pytest.mark.skipif(not shutil.which("gdalinfo"), reason="gdalinfo not installed")
def test_gdalinfo_lists_the_depth_class_names_and_attribute_table(forecast):
    meta = json.loads(subprocess.run(
        ["gdalinfo", "-json", str(forecast / "bay_depth_class_6677.tif")], check=True,
        capture_output=True, text=True).stdout)
    band = meta["bands"][0]
    assert band["categories"][1:] == [label for _, label, _ in DEPTH_CLASSES]
    assert len(meta["rat"]["row"]) == 9


def spread_flood(n: int = 1024) -> np.ndarray:
    """Isolated flooded cells every 4 cells (as 40 m blocks flooded along narrow streets
    look at 10 m), dry land elsewhere."""
    depth = np.zeros((n, n), np.float32)
    depth[1::4, 2::4] = 2.5
    return depth


def layer(values, name, nodata, overview) -> Layer:
    return Layer(name, values, rasterio.Affine(10, 0, 0, 0, -10, 0), CRS.from_epsg(6677), "m",
                 name, nodata, overview)


@pytest.mark.parametrize("name, dtype, nodata, rule", [
    ("max_depth", np.float32, NODATA, "max"), ("depth_class", np.uint8, 0, "max"),
    ("arrival_time", np.float32, NODATA, "min")])
def test_zoomed_out_views_keep_flooded_blocks_flooded(tmp_path, name, dtype, nodata, rule):
    depth = spread_flood()
    if name == "depth_class":
        values = classify_depth(depth)
    elif name == "arrival_time":
        values = np.where(depth > 0, 30.0, NODATA).astype(np.float32)
        values[1::8, 2::8] = 12.0  # the earliest arrivals, one cell in 64
    else:
        values = depth
    path = write_cog(layer(values.astype(dtype), name, nodata, rule), tmp_path / "x.tif")
    with rasterio.open(path) as src:
        assert src.overviews(1) == [2, 4]
    with rasterio.open(path, overview_level=1) as src:  # x4: every 4 x 4 block one cell
        zoomed = src.read(1)
    if name == "arrival_time":
        assert (zoomed != NODATA).all()
        assert (zoomed[::2, ::2] == 12.0).all()  # the earliest arrival wins each block
    else:
        assert (zoomed == values.max()).all()  # every block flooded, at its worst


def test_rio_tiler_cuts_web_mercator_tiles_from_every_cog(forecast):
    from rio_tiler.io import Reader

    for path in tifs(forecast):
        with Reader(str(path)) as cog:
            west, south, east, north = cog.get_geographic_bounds("EPSG:4326")
            lon, lat = (west + east) / 2, (south + north) / 2
            for zoom in (cog.minzoom, cog.maxzoom):
                tile = cog.tms.tile(lon, lat, zoom)
                image = cog.tile(tile.x, tile.y, tile.z)
                assert image.data.shape[1:] == (256, 256)
                assert image.mask.any(), (path.name, zoom)
    with Reader(str(forecast / "bay_max_depth_6677.tif")) as cog:
        # at the zoom of the coarsest overview, warped by maximum as a tile server should
        # for peak layers: the peak depth is still there
        tile = cog.tms.tile(lon, lat, cog.minzoom)
        image = cog.tile(tile.x, tile.y, tile.z, reproject_method="max")
        with rasterio.open(forecast / "bay_max_depth_6677.tif") as src:
            peak = src.read(1).max()
        assert image.data[0][image.mask > 0].max() == pytest.approx(peak)


# -- vectors: GeoJSON, KMZ, GeoPackage ------------------------------------------------------

def test_extent_geojson_and_kmz_name_the_forecast_and_keep_short_field_names(forecast,
                                                                                tmp_path):
    extent = json.loads((forecast / "bay_inundation_extent.geojson").read_text())
    for feature in extent["features"]:
        p = feature["properties"]
        assert (p["event_id"], p["forecast"], p["issued"]) == (
            "test-event", 3, "2026-01-01T00:05:00Z")
        assert max(len(k) for k in p) <= 10
    kmz = forecast / "bay_inundation_extent.kmz"
    kml = pyogrio.read_dataframe(f"/vsizip/{kmz}/doc.kml")
    assert len(kml) == len(extent["features"])
    assert list(kml["Name"]) == [f"depth {f['properties']['label']}"
                                 for f in extent["features"]]
    with zipfile.ZipFile(kmz) as z:
        doc = ET.fromstring(z.read("doc.kml"))
    ns = {"k": "http://www.opengis.net/kml/2.2"}
    assert "test-event: forecast 3" in doc.find("k:Document/k:name", ns).text
    for style in doc.iterfind("k:Document/k:Style", ns):
        k = int(style.get("id").removeprefix("class"))
        r, g, b = DEPTH_CLASSES[k - 1][2]
        assert style.find("k:PolyStyle/k:color", ns).text == f"b3{b:02x}{g:02x}{r:02x}"
    shp = tmp_path / "extent.shp"
    pyogrio.write_dataframe(gpd.read_file(forecast / "bay_inundation_extent.geojson"), shp)
    assert set(gpd.read_file(shp).columns) == set(extent["features"][0]["properties"]) | {
        "geometry"}
    if shutil.which("ogrinfo"):
        for target in (str(kmz), str(forecast / "bay_inundation_extent.geojson"),
                       str(forecast / "bay_buildings_damage.gpkg")):
            done = subprocess.run(["ogrinfo", "-ro", "-so", "-al", target],
                                  capture_output=True, text=True)
            assert done.returncode == 0, done.stderr
            assert "Feature Count" in done.stdout, target
            assert "partially supported" not in done.stderr, target  # GeoPackage 1.4


# -- STAC ---------------------------------------------------------------------------------

def test_stac_item_lists_every_file_once_and_validates_offline(forecast):
    item = json.loads((forecast / "item.json").read_text())
    validate(item)
    files = {p.name for p in forecast.iterdir()} - {"item.json"}
    hrefs = [a["href"] for a in item["assets"].values()]
    assert sorted(hrefs) == sorted(files)  # every file, each once
    assets = item["assets"]
    assert assets["bay_max_depth_6677"]["href"] == "bay_max_depth_6677.tif"
    assert assets["bay_max_depth_6677_qml"]["href"] == "bay_max_depth_6677.qml"
    assert {"gauges_nc", "gauges_csv", "bay_damage_summary_json"} <= set(assets)
    for key, asset in assets.items():
        assert asset["file:size"] > 0 and asset["file:checksum"].startswith("1220"), key
        if asset["href"].endswith(".tif"):
            assert asset["proj:code"] == "EPSG:6677" and len(asset["proj:shape"]) == 2
            assert all("data_type" in b for b in asset["raster:bands"]), key
    assert assets["bay_ds4plus_range_100m"]["raster:bands"][1]["nodata"] == "nan"
    assert item["collection"] == "test-event"
    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert rels["root"] == rels["parent"] == rels["collection"] == "../collection.json"
    assert "self" not in rels  # relative self links are not allowed; no public URL known
    assert shape(item["geometry"]).exterior.is_ccw


def test_stac_collection_validates_and_pystac_walks_the_outbox(forecast):
    collection = json.loads((forecast.parent / "collection.json").read_text())
    validate(collection)
    assert collection["license"] == DATA_LICENSE
    rels = [link["rel"] for link in collection["links"]]
    assert "root" in rels and "license" in rels and "item" in rels
    stac = pystac.Collection.from_file(str(forecast.parent / "collection.json"))
    items = list(stac.get_items())
    assert [i.id for i in items] == ["test-event-forecast-003"]
    assert items[0].get_collection().id == "test-event"


def test_stac_links_are_absolute_where_the_outbox_url_is_known(monkeypatch):
    from tsunami.products.stac import event_collection, forecast_item

    monkeypatch.setenv("TSUNAMI_OUTBOX_URL", "https://hq.example/tsunami/")
    item = forecast_item(info(4), [], [(139.0, 42.0, 139.1, 42.1)])
    rels = {link["rel"]: link["href"] for link in item["links"]}
    assert rels["self"] == "https://hq.example/tsunami/test-event/forecast-004/item.json"
    assert rels["root"] == "https://hq.example/tsunami/test-event/collection.json"
    validate(item)
    collection = event_collection("test-event", [item], "d")
    assert {link["rel"]: link["href"] for link in collection["links"]}["self"] == (
        "https://hq.example/tsunami/test-event/collection.json")


def test_stac_validation_can_fail(forecast):
    item = json.loads((forecast / "item.json").read_text())
    broken = json.loads(json.dumps(item))
    broken["assets"]["bay_max_depth_6677"]["proj:shape"] = "300 x 300"
    with pytest.raises(ValueError, match="projection"):
        validate(broken)
    broken = dict(item, stac_extensions=[*item["stac_extensions"],
                                         "https://example.com/unknown/v1.0.0/schema.json"])
    with pytest.raises(ValueError, match="no offline schema"):
        validate(broken)


# -- maps: local time and Japanese names ---------------------------------------------------

def test_quicklook_titles_show_utc_and_japan_time(monkeypatch, tmp_path):
    import tsunami.products.outbox as outbox

    titles = []

    def capture(path, elevation, layers, title, finest=None):
        titles.append(title)
        path.write_bytes(b"")
        return path

    monkeypatch.setattr(outbox, "depth_map", capture)
    publish({"bay": synthetic_town()}, tmp_path, info(1), crs=CRS.from_epsg(6677),
            resolution=10.0)
    assert "issued 2026-01-01 00:05 UTC (09:05 JST)" in titles[0]
    assert "origin 2026-01-01 00:00 UTC (09:00 JST)" in titles[0]


def test_japanese_names_render_with_a_font_that_has_them(tmp_path):
    from matplotlib.figure import Figure
    from matplotlib.ft2font import FT2Font

    from tsunami.maps import japanese_font_path, map_style

    title = "北海道南西沖地震: 奥尻町青苗, 予報 2"
    font = japanese_font_path()
    assert font is not None, "matplotlib-fontja (IPAexGothic) is a dependency"
    face = FT2Font(str(font))
    assert all(face.get_char_index(ord(c)) for c in title if ord(c) > 0x2E80)

    def render(styled: bool) -> list[str]:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if styled:
                with map_style():
                    fig = Figure(figsize=(4, 1))
                    fig.suptitle(title)
            else:
                fig = Figure(figsize=(4, 1))
                fig.suptitle(title)
            fig.savefig(tmp_path / f"{styled}.png")
        return [str(w.message) for w in caught if "missing from" in str(w.message)]

    assert render(styled=False)  # matplotlib's own font lacks them (the test can fail)
    assert render(styled=True) == []


def test_region_timezone_is_checked_and_reaches_the_products(tmp_path):
    from tsunami.errors import InputError
    from tsunami.region import Region

    root = Path(__file__).resolve().parents[1] / "grids" / "okushiri1993"
    text = (root / "region.toml").read_text()
    path = root / "test_timezone_region.toml"
    try:
        path.write_text(text.replace('output_crs = "EPSG:6679"',
                                     'output_crs = "EPSG:6679"\ntimezone = "Asia/Tokio"'))
        with pytest.raises(InputError, match=r"timezone.*unknown time zone 'Asia/Tokio'"):
            Region.load(path)
        path.write_text(text.replace('output_crs = "EPSG:6679"',
                                     'output_crs = "EPSG:6679"\ntimezone = "Asia/Tokyo"'))
        assert Region.load(path).timezone == "Asia/Tokyo"
    finally:
        path.unlink(missing_ok=True)


def test_origin_at_night_in_japan():
    from tsunami.localtime import format_time, is_night, resolve_timezone

    okushiri = datetime(1993, 7, 12, 13, 17, tzinfo=UTC)
    tz = resolve_timezone(None, 139.45, 42.05)
    assert tz.key == "Asia/Tokyo" and is_night(okushiri, tz)
    assert format_time(okushiri, tz) == "1993-07-12 13:17 UTC (22:17 JST)"
    assert not is_night(datetime(1993, 7, 12, 3, 17, tzinfo=UTC), tz)  # 12:17 JST
    with pytest.warns(UserWarning, match="outside Japan"):
        assert resolve_timezone(None, -70.0, -33.0).key == "UTC"
