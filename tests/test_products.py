"""Published products: COG layers, extent GeoJSON, STAC metadata, atomic outbox."""

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest
import rasterio
from pyproj import CRS
from rio_cogeo.cogeo import cog_validate
from shapely.geometry import shape

from tsunami.fields import grid_dataset
from tsunami.grid import Grid
from tsunami.products.layers import (
    DEPTH_CLASSES,
    NODATA,
    classify_depth,
    default_output_crs,
    town_layers,
    write_cog,
)
from tsunami.products.outbox import publish
from tsunami.products.stac import ForecastInfo, validate_item
from tsunami.products.vectors import extent_features


def synthetic_town(crs="EPSG:6677", x0=-10000.0, y0=-20000.0, dx=10.0, n=(120, 100)):
    """A town field: a bay flooding up a slope, depth rising towards the sea."""
    ny, nx = n
    grid = Grid(nx=nx, ny=ny, x0=x0, y0=y0, dx=dx, dy=dx, crs=crs, name="bay")
    x, y = np.meshgrid(np.arange(nx), np.arange(ny))
    elevation = 0.2 * (x - 40) + 2 * np.sin(y / 9)  # sea in the west
    land = elevation > 0
    depth = np.where(land, np.clip(12.0 - 0.25 * (x - 40) + np.cos(y / 7), 0, None), np.nan)
    eta = np.where(land & (depth > 0), elevation + depth, np.where(land, np.nan, 5.0))
    arrival = np.where(np.isfinite(eta), 300.0 + 6.0 * x, np.nan)
    attrs = {"m": {"units": "m", "long_name": "x"}}["m"]
    ds = grid_dataset(grid, {
        "max_depth": (depth, attrs), "max_eta": (eta, attrs),
        "max_speed": (np.where(np.isfinite(eta), 3.0, np.nan), attrs),
        "max_momentum_flux": (np.where(np.isfinite(eta), 9.0, np.nan), attrs),
        "arrival_time": (arrival, {"units": "s", "long_name": "arrival"}),
        "elevation": (elevation, attrs)}, {"town": "bay"})
    return ds


def info(n=1):
    return ForecastInfo("test-event", n, datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
                        datetime(2026, 1, 1, 0, 0, tzinfo=UTC), "0.1.0", "displacement",
                        "test region", "test scenario", {"simulation": 1.0})


@pytest.mark.parametrize("lon, lat, epsg", [(139.45, 42.1, 6679), (139.75, 35.68, 6677),
                                            (140.87, 38.27, 6678), (135.5, 34.69, 6674),
                                            (141.35, 43.06, 6680)])
def test_default_crs_is_the_jgd2011_zone_of_the_place(lon, lat, epsg):
    assert default_output_crs(lon, lat).to_epsg() == epsg


def test_layers_equal_the_solver_fields_where_grids_coincide():
    ds = synthetic_town()
    layers, grid = town_layers(ds, CRS.from_epsg(6677), 10.0)
    assert grid.transform.c == -10000.0 and grid.transform.f == -20000.0 + 120 * 10.0
    by_name = {layer.name: layer for layer in layers}
    for name, variable, scale in (("max_depth", "max_depth", 1.0), ("max_eta", "max_eta", 1.0),
                                  ("arrival_time", "arrival_time", 60.0)):
        expected = ds[variable].values[::-1] / scale  # north-up
        got = by_name[name].values
        finite = np.isfinite(expected)
        assert np.allclose(got[finite], expected[finite], atol=1e-5), name
        assert np.all(got[~finite] == NODATA), name


def test_classes_agree_with_the_depth_layer():
    ds = synthetic_town()
    layers, _ = town_layers(ds, CRS.from_epsg(6677), 10.0)
    by_name = {layer.name: layer for layer in layers}
    depth = np.where(by_name["max_depth"].values == NODATA, np.nan, by_name["max_depth"].values)
    classes = by_name["depth_class"].values
    assert np.array_equal(classes, classify_depth(depth))
    edges = [0.01] + [b for b, _, _ in DEPTH_CLASSES[:-1]] + [np.inf]
    for k in range(1, len(DEPTH_CLASSES) + 1):
        inside = depth[classes == k]
        assert np.all((inside >= edges[k - 1]) & (inside < edges[k])), k
    assert classify_depth(np.array([0.005, 0.01, 0.3, 20.0, np.nan])).tolist() == [0, 1, 2, 8, 0]


def test_cogs_are_valid_tiled_compressed_with_overviews_and_metadata(tmp_path):
    ds = synthetic_town(n=(600, 600), dx=5.0)  # big enough for overviews
    layers, grid = town_layers(ds, CRS.from_epsg(6677), 5.0, tags={"event_id": "e1"})
    for layer in layers:
        path = write_cog(layer, tmp_path / f"{layer.name}.tif")
        valid, errors, _ = cog_validate(str(path))
        assert valid, errors
        with rasterio.open(path) as src:
            assert src.crs.to_epsg() == 6677
            assert src.transform == grid.transform
            assert src.block_shapes == [(256, 256)]
            assert src.overviews(1)
            assert src.compression.name == "deflate"
            assert src.nodata == layer.nodata
            assert src.units[0] == layer.unit and src.tags()["event_id"] == "e1"
            if layer.name == "depth_class":
                assert src.colormap(1)[4][:3] == DEPTH_CLASSES[3][2]


def test_reprojection_to_a_zone_keeps_positions_to_the_cell():
    """A geographic town reprojected to zone XI: a flooded cell lands where it should."""
    grid = Grid(nx=200, ny=150, x0=139.44, y0=42.04, dx=0.0001, dy=0.0001, crs="EPSG:4326",
                name="geo")
    depth = np.zeros(grid.shape)
    depth[75, 100] = 4.0  # one flooded cell at (139.45005, 42.04755)
    values = {v: (depth if v in ("max_depth", "max_eta") else np.zeros(grid.shape),
                  {"units": "m", "long_name": v}) for v in
              ("max_depth", "max_eta", "max_speed", "max_momentum_flux", "arrival_time")}
    values["elevation"] = (np.ones(grid.shape), {"units": "m", "long_name": "e"})
    ds = grid_dataset(grid, values)
    layers, out = town_layers(ds, None, 5.0)
    assert out.crs.to_epsg() == 6679
    depth_layer = next(layer for layer in layers if layer.name == "max_depth")
    row, col = np.unravel_index(np.argmax(depth_layer.values), depth_layer.shape)
    from pyproj import Transformer
    x, y = Transformer.from_crs(4326, 6679, always_xy=True).transform(139.45005, 42.04755)
    cx = out.transform.c + (col + 0.5) * 5.0
    cy = out.transform.f - (row + 0.5) * 5.0
    assert abs(cx - x) <= 8.3 / 2 + 2.5 and abs(cy - y) <= 11.1 / 2 + 2.5  # within a cell


def test_extent_geojson_is_valid_closed_counter_clockwise_and_in_lonlat():
    ds = synthetic_town()
    layers, _ = town_layers(ds, CRS.from_epsg(6677), 10.0)
    classes = next(layer for layer in layers if layer.name == "depth_class")
    collection = extent_features(classes)
    assert collection["type"] == "FeatureCollection" and collection["features"]
    total = 0.0
    for feature in collection["features"]:
        geometry = shape(feature["geometry"])
        assert geometry.is_valid
        for polygon in geometry.geoms:
            ring = list(polygon.exterior.coords)
            assert ring[0] == ring[-1]
            assert polygon.exterior.is_ccw
            lon, lat = np.array(ring).T
            assert np.all((lon > 120) & (lon < 150) & (lat > 20) & (lat < 50))
        total += feature["properties"]["area_m2"]
    assert total == pytest.approx(np.sum(classes.values > 0) * 100.0)


def test_publish_makes_a_valid_stac_item_and_collection(tmp_path):
    folder = publish({"bay": synthetic_town()}, tmp_path, info(1), crs=CRS.from_epsg(6677),
                     resolution=10.0)
    item = json.loads((folder / "item.json").read_text())
    validate_item(item)
    assert item["properties"]["tsunami:forecast_number"] == 1
    assert item["properties"]["tsunami:timings_s"]["export"] > 0
    for key, asset in item["assets"].items():
        assert (folder / asset["href"]).exists(), key
        assert asset["roles"] and asset["type"]
        if asset["href"].endswith(".tif"):
            assert asset["proj:code"] == "EPSG:6677" and len(asset["proj:transform"]) == 6
            assert asset["raster:bands"][0]["unit"]
    assert "classification:classes" in item["assets"]["bay_depth_class_6677"]
    event = tmp_path / "test-event"
    assert (event / "latest").resolve() == folder.resolve()
    collection = json.loads((event / "collection.json").read_text())
    assert [link["href"] for link in collection["links"] if link["rel"] == "item"] == [
        "forecast-001/item.json"]
    with pytest.raises(FileExistsError):
        publish({"bay": synthetic_town()}, tmp_path, info(1))


KILL_SCRIPT = textwrap.dedent("""
    import os, sys
    sys.path.insert(0, {tests!r})
    from test_products import info, synthetic_town
    import tsunami.products.outbox as outbox
    from pyproj import CRS
    def die(*args, **kwargs):
        os._exit(9)  # killed in the middle of writing the products
    outbox.write_geojson = die
    outbox.publish({{"bay": synthetic_town()}}, {outbox!r}, info(2),
                           crs=CRS.from_epsg(6677), resolution=10.0)
""")


def test_the_quicklook_title_carries_the_forecasts_headline(tmp_path, monkeypatch):
    """An officer reads the map, not the STAC item: what the forecast rests on (a watch
    service's source, an envelope) is the map's last title line."""
    import dataclasses

    import tsunami.products.outbox as outbox

    titles = []
    draw = outbox.depth_map
    monkeypatch.setattr(outbox, "depth_map",
                        lambda *a, **k: titles.append(a[-1]) or draw(*a, **k))
    publish({"bay": synthetic_town()}, tmp_path, info(1), crs=CRS.from_epsg(6677),
            resolution=10.0)
    headline = "Source: gauge inversion, 5 gauges to 13.2 min, Mw 8.97"
    publish({"bay": synthetic_town()}, tmp_path,
            dataclasses.replace(info(2), headline=headline), crs=CRS.from_epsg(6677),
            resolution=10.0)
    assert len(titles) == 2 and "Source" not in titles[0]
    assert titles[1].splitlines()[-1] == headline


def test_the_quicklook_outlines_where_the_finest_grid_ends(tmp_path, monkeypatch):
    """A town window reaching past its 10 m grid shows coarser cells beyond (the demo's
    Monai window is mostly 30 m): the map outlines the finest grid's cells."""
    import tsunami.products.outbox as outbox

    calls = []
    draw = outbox.depth_map
    monkeypatch.setattr(outbox, "depth_map",
                        lambda *a, **k: calls.append(k["finest"]) or draw(*a, **k))
    town = synthetic_town()
    publish({"bay": town}, tmp_path, info(1), crs=CRS.from_epsg(6677), resolution=10.0)
    ny, nx = town["max_depth"].shape
    source = np.zeros((ny, nx), np.int16)
    source[20:80, 30:90] = 1  # the finer grid
    nested = town.assign(source_grid=(town["max_depth"].dims, source)).assign_attrs(
        source_grids="coarse fine")
    publish({"bay": nested}, tmp_path, info(2), crs=CRS.from_epsg(6677), resolution=10.0)
    assert calls[0] is None
    covered, name = calls[1]
    assert name == "fine" and covered.sum() == 60 * 60  # the block, cell for cell


def test_a_killed_export_leaves_the_previous_forecast_published(tmp_path):
    first = publish({"bay": synthetic_town()}, tmp_path, info(1), crs=CRS.from_epsg(6677),
                    resolution=10.0)
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), outbox=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert done.returncode == 9, done.stderr.decode()
    event = tmp_path / "test-event"
    assert not (event / "forecast-002").exists()
    assert (event / "latest").resolve() == first.resolve()
    assert list(event.glob(".incoming-forecast-002-*"))  # the dead process's staging
    second = publish({"bay": synthetic_town()}, tmp_path, info(2), crs=CRS.from_epsg(6677),
                     resolution=10.0)
    assert not list(event.glob(".incoming-*"))  # cleaned up by the next publish
    assert (event / "latest").resolve() == second.resolve()


def test_a_failing_export_cleans_up_and_keeps_latest(tmp_path, monkeypatch):
    first = publish({"bay": synthetic_town()}, tmp_path, info(1), crs=CRS.from_epsg(6677),
                    resolution=10.0)

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("tsunami.products.outbox.depth_map", broken)
    with pytest.raises(OSError, match="disk full"):
        publish({"bay": synthetic_town()}, tmp_path, info(2), crs=CRS.from_epsg(6677),
                resolution=10.0)
    event = tmp_path / "test-event"
    assert sorted(p.name for p in event.iterdir() if not p.name.startswith(".")) == [
        "collection.json", "forecast-001", "latest"]
    assert not list(event.glob(".incoming-*")) and not list(event.glob(".reservations/*"))
    assert (event / "latest").resolve() == first.resolve()


def test_damage_is_published_with_the_forecast(tmp_path):
    """A town with exposure: the damage products enter the forecast and its STAC item."""
    import geopandas as gpd
    from pyproj import Transformer
    from shapely.geometry import Point

    from tsunami.pipeline import damage_writer
    from tsunami.region import ExposureSpec

    town = synthetic_town()
    to_lonlat = Transformer.from_crs(6677, 4326, always_xy=True)
    xs = -10000.0 + np.array([450.0, 600.0, 800.0, 950.0])  # flooded ... dry
    lon, lat = to_lonlat.transform(xs, np.full(4, -19400.0))
    buildings = tmp_path / "buildings.geojson"
    gpd.GeoDataFrame({"structure": ["wood", "wood", "rc", "wood"], "storeys": [1, 2, 3, 2]},
                     geometry=[Point(x, y) for x, y in zip(lon, lat, strict=True)],
                     crs="EPSG:4326").to_file(buildings, driver="GeoJSON")
    writer = damage_writer(ExposureSpec("bay", buildings), town, CRS.from_epsg(6677))
    folder = publish({"bay": town}, tmp_path / "outbox", info(1), crs=CRS.from_epsg(6677),
                     resolution=10.0, writers=[writer])
    item = json.loads((folder / "item.json").read_text())
    validate_item(item)
    assert "bay_buildings_damage_gpkg" in item["assets"]
    assert item["assets"]["bay_buildings_damage_gpkg"]["type"] == "application/geopackage+sqlite3"
    assert item["properties"]["tsunami:timings_s"]["damage_bay"] > 0
    summary = json.loads((folder / "bay_damage_summary.json").read_text())
    assert summary["town_summary"]["buildings"]["total"] == 4
    states = gpd.read_file(folder / "bay_buildings_damage.gpkg")
    # deeper water, worse damage: the buildings are ordered from the flooded shore inland
    assert states["exp_ds"].iloc[0] > states["exp_ds"].iloc[-1]


@pytest.mark.parametrize("old, new, match", [
    ('town = "Aonae"\nbuildings', 'town = "Aoane"\nbuildings',
     r"exposure\[0\]\.town.*no \[\[town\]\] named"),
    ('districts = "exposure/aonae_districts.geojson"',
     'districts = "exposure/aonae_districts.geojson"\nfragility_source = "koshimura2009"',
     r"exposure\[0\]\.fragility_source.*'koshimura2009' is not in fragility.csv"),
    ('districts = "exposure/aonae_districts.geojson"',
     'districts = "exposure/aonae_districts.geojson"\npartition_size = 0',
     r"exposure\[0\]\.partition_size.*at least 1"),
])
def test_exposure_errors_name_the_field(old, new, match):
    from tsunami.errors import InputError
    from tsunami.region import Region

    root = Path(__file__).resolve().parents[1] / "grids" / "okushiri1993"
    text = (root / "region.toml").read_text()
    assert old in text
    path = root / "test_exposure_region.toml"
    try:
        path.write_text(text.replace(old, new))
        with pytest.raises(InputError, match=match):
            Region.load(path)
    finally:
        path.unlink(missing_ok=True)



def test_the_quicklook_key_stands_beside_the_map_and_hides_no_data(tmp_path, monkeypatch):
    """A legend must never cover data (drawn inside the map, it hid the most flooded tip of
    Aonae): the legend, north arrow and scale bar stand right of the map, the saved image
    takes them in, and the scale bar, drawn outside, still measures the map."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.image import imread
    from matplotlib.offsetbox import AnchoredOffsetbox

    import tsunami.products.outbox as outbox
    from tsunami.products.quicklook import depth_figure

    calls = []
    draw = outbox.depth_map
    monkeypatch.setattr(outbox, "depth_map",
                        lambda *a, **k: calls.append((a, k)) or draw(*a, **k))
    town = synthetic_town()
    ny, nx = town["max_depth"].shape
    source = np.zeros((ny, nx), np.int16)
    source[20:80, 30:90] = 1  # a finer grid: its outline adds the legend's longest entry
    town = town.assign(source_grid=(town["max_depth"].dims, source)).assign_attrs(
        source_grids="coarse fine")
    folder = publish({"bay": town}, tmp_path, info(1), crs=CRS.from_epsg(6677),
                     resolution=10.0)
    (staged, elevation, layers, title), kwargs = calls[0]
    fig = depth_figure(elevation, layers, title, **kwargs)
    renderer = FigureCanvasAgg(fig).get_renderer()
    (ax,) = fig.axes
    map_box = ax.get_window_extent(renderer)
    legend = ax.get_legend()
    assert len(legend.get_texts()) == 10  # 8 depth classes, arrival time, the outline
    (arrow,) = [t for t in ax.texts if t.get_text() == "N"]
    (scale,) = [a for a in ax.artists if isinstance(a, AnchoredOffsetbox)]
    for key in (legend, arrow, scale):
        box = key.get_window_extent(renderer)
        assert not box.overlaps(map_box) and box.x0 > map_box.x1, (key, box, map_box)
    label, bar = scale.get_child().get_children()
    value, unit = label.get_text().split()
    west, east = ax.get_xlim()
    expected = float(value) * {"m": 1.0, "km": 1000.0}[unit] / (east - west) * map_box.width
    assert bar.get_window_extent(renderer).width == pytest.approx(expected, abs=1.0)
    # the PNG (110 dpi) is wide enough for the key right of the map
    width = imread(folder / staged.name).shape[1]
    assert width >= legend.get_window_extent(renderer).x1 * 110 / fig.dpi
