"""Region and scenario files, DEM formats: bad input gets a message naming file and field."""

import textwrap

import numpy as np
import pytest
import rasterio
from affine import Affine

from tsunami.dem import read_raster, resample
from tsunami.errors import InputError
from tsunami.grid import Grid
from tsunami.region import Region
from tsunami.scenario import Scenario, read_wave_csv


def write(path, text):
    path.write_text(textwrap.dedent(text))
    return path


def geotiff(path, values, west=139.0, north=42.0, res=0.01, crs="EPSG:4326", nodata=None):
    transform = Affine(res, 0, west, 0, -res, north)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1],
                       height=values.shape[0], count=1, dtype="float32", crs=crs,
                       transform=transform, nodata=nodata) as dst:
        dst.write(values.astype("float32"), 1)
    return path


def region_text(dem="dem.tif", extra_grid="", extra_region="", crs="EPSG:4326"):
    return f"""
        [region]
        name = "test"
        crs = "{crs}"
        {extra_region}

        [[dem]]
        path = "{dem}"

        [[grid]]
        name = "outer"
        extent = [139.0, 139.5, 41.6, 42.0]
        spacing = 0.02
        {extra_grid}
        """


@pytest.fixture
def sloping_dem(tmp_path):
    x = np.linspace(0, 1, 60)
    elevation = np.tile(-200 + 260 * x, (50, 1))  # sea to the west, land to the east
    return geotiff(tmp_path / "dem.tif", elevation)


def test_a_valid_region_builds_its_grid_and_bathymetry(tmp_path, sloping_dem):
    region = Region.load(write(tmp_path / "r.toml", region_text()))
    grid = region.grid("outer")
    assert (grid.nx, grid.ny) == (25, 20) and grid.spherical
    elevation = region.elevation(grid)
    assert np.all(np.isfinite(elevation))
    assert elevation[:, 0].mean() < -150 and elevation[:, -1].mean() > 0


@pytest.mark.parametrize("bad, field", [
    ('extra_grid="spacng = 0.02"', "grid[0].spacng"),
    ('extra_region="colour = 3"', "region.colour"),
    ('crs="EPSG:99999999"', "region.crs"),
    ('dem="missing.tif"', "dem[0].path"),
])
def test_region_errors_name_the_file_and_field(tmp_path, sloping_dem, bad, field):
    kwargs = eval(f"dict({bad})")
    path = write(tmp_path / "r.toml", region_text(**kwargs))
    with pytest.raises(InputError) as info:
        Region.load(path)
    assert str(path) in str(info.value) and field in str(info.value)


def test_a_misplaced_town_is_reported_with_the_grids_bounds_as_written(tmp_path, sloping_dem):
    """The error gives the outer grid's edges as the region file gives them, named and in
    their unit: 139.5, not the 139.50000000000003 that x0 + nx dx rounds to."""
    path = write(tmp_path / "r.toml", region_text() + textwrap.dedent("""
        [[town]]
        name = "Faraway"
        extent = [139.6, 139.7, 41.7, 41.8]
        """))
    with pytest.raises(InputError) as info:
        Region.load(path)
    assert str(info.value).endswith("town 'Faraway' reaches outside grid 'outer' "
                                    "(139...139.5 E, 41.6...42 N)")
    assert Grid(nx=3, ny=2, x0=500000.0, y0=4.1e6, dx=0.1, dy=10.0,
                name="m").bounds_text == "(x 500000...500000.3 m, y 4100000...4100020 m)"


def test_malformed_toml_is_reported_with_its_file(tmp_path):
    path = write(tmp_path / "r.toml", "[region\nname = 'x'\n")
    with pytest.raises(InputError, match="malformed TOML"):
        Region.load(path)


def test_a_dem_hole_next_to_water_is_an_error_naming_the_dem(tmp_path):
    elevation = np.tile(np.linspace(-200, 60, 60), (50, 1))
    elevation[20:25, 10:15] = -9999
    geotiff(tmp_path / "dem.tif", elevation, nodata=-9999)
    region = Region.load(write(tmp_path / "r.toml", region_text()))
    with pytest.raises(InputError, match=r"dem\.tif\) has a hole of .* next to water"):
        region.elevation(region.grid("outer"))


def test_a_dem_hole_inside_land_is_filled_with_a_warning(tmp_path):
    elevation = np.tile(np.linspace(-200, 300, 60), (50, 1))  # shore near lon 139.24
    elevation[20:26, 40:46] = -9999  # on land (lon 139.40-139.46), away from the shore
    geotiff(tmp_path / "dem.tif", elevation, nodata=-9999)
    region = Region.load(write(tmp_path / "r.toml", region_text()))
    with pytest.warns(UserWarning, match="filled from the nearest values"):
        values = region.elevation(region.grid("outer"))
    assert np.all(np.isfinite(values))


def test_a_raster_without_crs_needs_one(tmp_path):
    path = tmp_path / "plain.asc"
    path.write_text("ncols 3\nnrows 2\nxllcorner 0\nyllcorner 0\ncellsize 1\n"
                    "NODATA_value -9999\n1 2 3\n4 5 6\n")
    with pytest.raises(InputError, match="carries no CRS"):
        read_raster(path, config="region.toml", field="dem[0].path")
    raster = read_raster(path, crs=None, local=True)
    assert raster.values[0].tolist() == [1, 2, 3] and raster.crs is None


def test_every_format_gives_the_same_field(tmp_path):
    """GeoTIFF, ESRI ASCII, NetCDF and x/y/z text of one grid resample identically."""
    values = np.arange(12.0).reshape(3, 4)  # north-up rows
    transform = Affine(10.0, 0, 1000.0, 0, -10.0, 2030.0)
    tif = tmp_path / "a.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=4, height=3, count=1,
                       dtype="float64", crs="EPSG:6677", transform=transform) as dst:
        dst.write(values, 1)
    asc = tmp_path / "a.asc"
    rows = "\n".join(" ".join(f"{v:g}" for v in row) for row in values)
    asc.write_text(f"ncols 4\nnrows 3\nxllcorner 1000\nyllcorner 2000\ncellsize 10\n{rows}\n")
    xyz = tmp_path / "a.xyz"
    lines = [f"{1005 + 10 * i} {2025 - 10 * j} {values[j, i]}" for j in range(3) for i in range(4)]
    xyz.write_text("x,y,z\n" + "\n".join(reversed(lines)) + "\n")
    import xarray as xr
    nc = tmp_path / "a.nc"
    ds = xr.Dataset({"z": (("y", "x"), values[::-1])},
                    coords={"x": 1005.0 + 10 * np.arange(4), "y": 2005.0 + 10 * np.arange(3)})
    ds["z"].attrs["grid_mapping"] = "crs"
    ds["crs"] = xr.DataArray(0, attrs={"spatial_ref": rasterio.crs.CRS.from_epsg(6677).to_wkt()})
    ds.to_netcdf(nc)
    grid = Grid(nx=4, ny=3, x0=1000.0, y0=2000.0, dx=10.0, dy=10.0, crs="EPSG:6677")
    reference = resample(read_raster(tif), grid, "nearest")
    for path in (asc, xyz, nc):
        raster = read_raster(path, crs=grid.crs)
        assert np.allclose(resample(raster, grid, "nearest"), reference), path.suffix


def test_depth_sign_convention(tmp_path, sloping_dem):
    depth_dem = geotiff(tmp_path / "depth.tif", 100.0 * np.ones((50, 60)))
    text = region_text(dem=depth_dem.name).replace('path = "depth.tif"',
                                                   'path = "depth.tif"\nvertical = "depth"')
    region = Region.load(write(tmp_path / "r.toml", text))
    assert np.allclose(region.elevation(region.grid("outer")), -100.0)


def scenario_text(source, extra=""):
    return f"""
        [scenario]
        name = "s"
        duration = 60.0
        origin_time = "1993-07-12T13:17:00Z"
        {extra}

        [source]
        {source}
        """


def test_a_valid_scenario(tmp_path, sloping_dem):
    path = write(tmp_path / "s.toml", scenario_text('type = "displacement"\npath = "dem.tif"'))
    scenario = Scenario.load(path)
    assert scenario.duration == 60.0 and scenario.origin_time.year == 1993


@pytest.mark.parametrize("source, extra, field", [
    ('type = "earthquake"', "", "source.type"),
    ('type = "displacement"\npath = "none.tif"', "", "source.path"),
    ('type = "displacement"\npath = "dem.tif"', "duration_s = 5", "scenario.duration_s"),
    ('type = "displacement"\npath = "dem.tif"', 'origin_time = "noon"', "origin_time"),
])
def test_scenario_errors_name_the_file_and_field(tmp_path, sloping_dem, source, extra, field):
    text = scenario_text(source, extra)
    if "origin_time = \"noon\"" in extra:
        text = text.replace('origin_time = "1993-07-12T13:17:00Z"\n', "")
    path = write(tmp_path / "s.toml", text)
    with pytest.raises(InputError) as info:
        Scenario.load(path)
    assert str(path) in str(info.value) and field in str(info.value)


@pytest.mark.parametrize("rows, message", [
    ("0,0\n2,0.1\n1,0.2\n", "does not increase"),
    ("0,0\n1,nan\n", "NaN"),
    ("0,0\n1,abc\n", "not two numbers"),
])
def test_wave_csv_errors_name_the_line(tmp_path, rows, message):
    path = tmp_path / "w.csv"
    path.write_text("time_s,eta_m\n" + rows)
    with pytest.raises(InputError, match=message) as info:
        read_wave_csv(path)
    assert "line" in str(info.value)


def test_wave_csv_needs_its_header(tmp_path):
    path = tmp_path / "w.csv"
    path.write_text("t,eta\n0,0\n1,1\n")
    with pytest.raises(InputError, match="time_s,eta_m"):
        read_wave_csv(path)


def test_every_plausible_range_is_documented_in_the_readme():
    """README's "Plausible ranges" table lists each range as the code states it."""
    from pathlib import Path

    from tsunami.cli import CLI_RANGES
    from tsunami.region import REGION_RANGES
    from tsunami.scenario import SCENARIO_RANGES
    from tsunami.source.table import FAULT_RANGES

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for where, ranges in (("region", REGION_RANGES), ("scenario", SCENARIO_RANGES),
                          ("fault", FAULT_RANGES), ("command line", CLI_RANGES)):
        for key, r in ranges.items():
            row = f"| {where} | `{key}` | {r.describe()} | {r.why} |"
            assert row in readme, row


def test_numbers_must_be_finite_and_plausible(tmp_path):
    from tsunami.config import Range, Table

    t = Table({"a": float("inf"), "b": float("nan"), "c": 5.0, "d": [1.0, float("inf")]},
              tmp_path / "f.toml", "x")
    for key in ("a", "b"):
        with pytest.raises(InputError, match="must be a finite number"):
            t.number(key)
    with pytest.raises(InputError, match=r"field 'x.c': 5 s is outside the plausible range "
                                         r"> 0 \.\.\. 4 s"):
        t.number("c", within=Range(0.0, 4.0, "s", open_low=True))
    with pytest.raises(InputError, match="every number must be finite"):
        t.numbers("d")


def test_bom_and_encodings_of_text_files(tmp_path):
    """A BOM is accepted (an x y z DEM without a header used to lose its first point to
    it); Shift-JIS and binary files are refused with a clear message."""
    lines = [f"{x} {y} {x + 10 * y}" for y in range(3) for x in range(4)]
    path = tmp_path / "a.xyz"
    path.write_bytes(b"\xef\xbb\xbf" + "\n".join(lines).encode())
    raster = read_raster(path, crs=None, local=True)
    assert raster.values.shape == (3, 4) and np.all(np.isfinite(raster.values))
    assert raster.values[-1, 0] == 0.0  # the first point (0, 0), south-west corner
    path.write_bytes("# 標高\n".encode("cp932") + "\n".join(lines).encode())
    with pytest.raises(InputError, match=r"not UTF-8 text .* Save it as UTF-8"):
        read_raster(path, crs=None, local=True, config="r.toml", field="dem[0].path")
    wave = tmp_path / "w.csv"
    wave.write_bytes(b"\xef\xbb\xbftime_s,eta_m\n0,0\n1,0.1\n")
    assert read_wave_csv(wave).eta.tolist() == [0.0, 0.1]
    wave.write_bytes(b"\x00\x01binary")
    with pytest.raises(InputError, match="binary file"):
        read_wave_csv(wave)
