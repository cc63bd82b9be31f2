"""A hostile operator's battery: bad inputs through the real CLI end with exit 2 and a
message naming the file and the field, and publish nothing (issue 9, "Never a silent
all-clear").

Every case starts from one small, valid case (a 25 x 20-cell geographic grid with a
DEM, a displacement raster, a fault table and an incident wave) and breaks one thing.
Most fail while the files are read; the source cases fail when the source meets the
grid, before any time step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from tsunami import cli

# The valid case: sea up to 50 m deep in the west, land rising to 60 m in the east.
LON0, LAT0, RES = 139.0, 42.1, 0.01
SOURCE_CENTRE = (139.15, 41.8)


def geotiff(path: Path, values: np.ndarray, west: float, north: float, res: float,
            crs: str = "EPSG:4326", nodata: float | None = None) -> Path:
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1],
                       height=values.shape[0], count=1, dtype="float32", crs=crs,
                       transform=Affine(res, 0, west, 0, -res, north), nodata=nodata) as dst:
        dst.write(values.astype("float32"), 1)
    return path


def bump(west: float = 139.0, north: float = 41.95, n: int = 30) -> np.ndarray:
    lon = west + (np.arange(n) + 0.5) * RES
    lat = north - (np.arange(n) + 0.5) * RES
    x0, y0 = SOURCE_CENTRE
    return 2.0 * np.exp(-((lon[None, :] - x0) ** 2 + (lat[:, None] - y0) ** 2) / 0.05**2)


REGION = """\
[region]
name = "bay"
crs = "EPSG:4326"
output_crs = "EPSG:6679"

[[dem]]
path = "dem.tif"

[[grid]]
name = "outer"
extent = [139.0, 139.5, 41.6, 42.0]
spacing = 0.02
manning = 0.025

[[gauge]]
name = "harbour"
x = 139.3
y = 41.8

[[town]]
name = "Bayside"
extent = [139.3, 139.48, 41.7, 41.9]
"""

DISPLACEMENT = """\
[scenario]
name = "bay_bump"
duration = 60.0

[source]
type = "displacement"
path = "source.tif"
"""

FAULT = """\
[scenario]
name = "bay_fault"
duration = 60.0

[source]
type = "fault"
longitude = 139.15
latitude = 41.8
depth_m = 5000.0
strike = 0.0
dip = 30.0
rake = 90.0
slip_m = 3.0
length_m = 20000.0
width_m = 10000.0
"""

WAVE = """\
[scenario]
name = "bay_wave"
duration = 60.0

[source]
type = "incident_wave"
path = "wave.csv"
side = "west"
"""


def make_case(folder: Path) -> Path:
    """Write the valid case into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    lon = LON0 + (np.arange(60) + 0.5) * RES
    elevation = np.tile(np.clip(-50.0 + 110.0 * (lon - 139.0) / 0.6, -50.0, 60.0), (60, 1))
    geotiff(folder / "dem.tif", elevation, LON0, LAT0, RES)
    geotiff(folder / "source.tif", bump(), 139.0, 41.95, RES)
    (folder / "faults.csv").write_text(
        "longitude,latitude,depth_m,strike,dip,rake,slip_m,length_m,width_m\n"
        "139.15,41.8,5000,0,30,90,3.0,20000,10000\n")
    (folder / "wave.csv").write_text("time_s,eta_m\n0,0\n10,0.5\n20,0\n")
    (folder / "region.toml").write_text(REGION)
    (folder / "scenario.toml").write_text(DISPLACEMENT)
    return folder


def replace(name: str, old: str, new: str):
    def edit(folder: Path) -> None:
        path = folder / name
        text = path.read_text()
        assert old in text, (old, name)
        path.write_text(text.replace(old, new, 1))
    return edit


def write(name: str, text: str | bytes):
    def edit(folder: Path) -> None:
        path = folder / name
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return edit


def both(*edits):
    def edit(folder: Path) -> None:
        for e in edits:
            e(folder)
    return edit


def raster(values_or_edit, west=139.0, north=41.95, crs="EPSG:4326", nodata=None):
    def edit(folder: Path) -> None:
        values = bump() if callable(values_or_edit) or values_or_edit is None else \
            values_or_edit
        if callable(values_or_edit):
            values = values_or_edit(values)
        geotiff(folder / "source.tif", values, west, north, RES, crs=crs, nodata=nodata)
    return edit


def dem(values: np.ndarray, nodata=None):
    def edit(folder: Path) -> None:
        geotiff(folder / "dem.tif", values, LON0, LAT0, RES, nodata=nodata)
    return edit


USE_ASC = replace("region.toml", 'path = "dem.tif"', 'path = "dem.asc"\ncrs = "EPSG:4326"')


def scenario(text: str, *edits):
    def edit(folder: Path) -> None:
        (folder / "scenario.toml").write_text(text)
        for e in edits:
            e(folder)
    return edit


def hole(values: np.ndarray) -> np.ndarray:
    values = values.copy()
    values[12:19, 12:19] = np.nan  # over the peak
    return values


def pixel_hole(values: np.ndarray) -> np.ndarray:
    """One no-data pixel at 139.16 E, 41.80 N (on a raster shifted half a pixel), next to
    the peak, between the outer grid's cell centres: only a finer grid samples it."""
    values = values.copy()
    values[15, 15] = np.nan
    return values


INNER = ('[[grid]]\nname = "inner"\nparent = "outer"\nextent = [139.1, 139.24, 41.72, 41.88]\n'
         'manning = 0.025\n')


def town(name: str) -> callable:
    return replace("region.toml", 'name = "Bayside"', f'name = "{name}"')


DUPLICATE_TOWN = '\n[[town]]\nname = "Bayside"\nextent = [139.3, 139.4, 41.7, 41.8]\n'
DUPLICATE_GAUGE = '\n[[gauge]]\nname = "harbour"\nx = 139.2\ny = 41.8\n'
R, S = "region.toml", "scenario.toml"
ASC = ("ncols 3\nnrows 2\nxllcorner 139\nyllcorner 41.6\ncellsize {cellsize}\n"
       "NODATA_value -9999\n-10 -20 -30\n-40 -50 -60\n")
CLI = "command line"
SHIFT_JIS = '[region]\nname = "奥尻"\n'.encode("cp932")

# (id, edit of the valid case, extra CLI arguments, file named, field named)
BATTERY = [
    # -- region TOML: numbers ------------------------------------------------------------
    ("spacing nan", replace(R, "spacing = 0.02", "spacing = nan"), [], R, "grid[0].spacing"),
    ("spacing inf", replace(R, "spacing = 0.02", "spacing = inf"), [], R, "grid[0].spacing"),
    ("spacing 0", replace(R, "spacing = 0.02", "spacing = 0"), [], R, "grid[0].spacing"),
    ("spacing negative", replace(R, "spacing = 0.02", "spacing = -0.02"), [], R,
     "grid[0].spacing"),
    ("spacing 1e-9 deg", replace(R, "spacing = 0.02", "spacing = 1e-9"), [], R,
     "grid[0].spacing"),
    ("too many cells", replace(R, "spacing = 0.02", "spacing = 0.00002"), [], R,
     "grid[0].extent"),
    ("extent nan", replace(R, "[139.0, 139.5, 41.6, 42.0]", "[139.0, nan, 41.6, 42.0]"), [],
     R, "grid[0].extent"),
    ("extent inf", replace(R, "[139.0, 139.5, 41.6, 42.0]", "[-inf, 139.5, 41.6, 42.0]"), [],
     R, "grid[0].extent"),
    ("extent lon 500", replace(R, "[139.0, 139.5, 41.6, 42.0]", "[499.0, 499.5, 41.6, 42.0]"),
     [], R, "grid[0].extent"),
    ("extent at the pole", replace(R, "[139.0, 139.5, 41.6, 42.0]", "[139.0, 139.5, 80, 95]"),
     [], R, "grid[0].extent"),
    ("extent reversed", replace(R, "[139.0, 139.5, 41.6, 42.0]", "[139.5, 139.0, 41.6, 42.0]"),
     [], R, "grid[0].extent"),
    ("manning negative", replace(R, "manning = 0.025", "manning = -0.1"), [], R,
     "grid[0].manning"),
    ("manning nan", replace(R, "manning = 0.025", "manning = nan"), [], R, "grid[0].manning"),
    ("linear_depth inf", replace(R, "manning = 0.025", "manning = 0.025\nlinear_depth = inf"),
     [], R, "grid[0].linear_depth"),
    ("ratio 0", replace(R, "manning = 0.025", "manning = 0.025\nratio = 0"), [], R,
     "grid[0].ratio"),
    ("gauge x nan", replace(R, "x = 139.3", "x = nan"), [], R, "gauge[0].x"),
    ("gauge y inf", replace(R, "y = 41.8", "y = inf"), [], R, "gauge[0].y"),
    ("town extent inf", replace(R, "[139.3, 139.48, 41.7, 41.9]", "[139.3, inf, 41.7, 41.9]"),
     [], R, "town[0].extent"),
    # -- region TOML: names ----------------------------------------------------------------
    ("town name ../", town("../escaped"), [], R, "town[0].name"),
    ("town name with /", town("North/South"), [], R, "town[0].name"),
    ("town name empty", town(""), [], R, "town[0].name"),
    ("town name CON", town("CON"), [], R, "town[0].name"),
    ("duplicate town", replace(R, "[[town]]", DUPLICATE_TOWN.strip() + "\n\n[[town]]"), [], R,
     "town[1].name"),
    ("grid name a/b", replace(R, 'name = "outer"', 'name = "a/b"'), [], R, "grid[0].name"),
    ("gauge name a:b", replace(R, 'name = "harbour"', 'name = "a:b"'), [], R,
     "gauge[0].name"),
    ("duplicate gauge", replace(R, "[[town]]", DUPLICATE_GAUGE.strip() + "\n\n[[town]]"), [],
     R, "gauge[1].name"),
    # -- region TOML: CRSs and DEMs --------------------------------------------------------
    ("output_crs geographic", replace(R, 'output_crs = "EPSG:6679"', 'output_crs = "EPSG:4326"'),
     [], R, "region.output_crs"),
    ("dem crs local in a georeferenced region",
     replace(R, 'path = "dem.tif"', 'path = "dem.tif"\ncrs = "local"'), [], R, "dem[0].crs"),
    ("dem nodata inf", replace(R, 'path = "dem.tif"', 'path = "dem.tif"\nnodata = inf'), [], R,
     "dem[0].nodata"),
    ("dem undeclared -32768", dem(np.full((60, 60), -32768.0)), [], R, "dem[0].path"),
    ("dem all land", dem(np.full((60, 60), 25.0)), [], R, "dem"),
    ("dem binary", both(write("dem.xyz", b"\x00\x01\x02" * 100),
                        replace(R, 'path = "dem.tif"', 'path = "dem.xyz"\ncrs = "EPSG:4326"')),
     [], R, "dem[0].path"),
    ("dem cellsize nan", both(write("dem.asc", ASC.format(cellsize="nan")), USE_ASC), [], R,
     "dem[0].path"),
    ("dem cellsize 0", both(write("dem.asc", ASC.format(cellsize="0")), USE_ASC), [], R,
     "dem[0].path"),
    ("dem xyz x inf", both(write("dem.xyz", "x y z\n139.0 41.6 -10\ninf 41.6 -10\n"
                                            "139.0 41.7 -10\n139.1 41.7 -10\n"),
                           replace(R, 'path = "dem.tif"', 'path = "dem.xyz"\ncrs = "EPSG:4326"')),
     [], R, "dem[0].path"),
    ("region Shift-JIS", write(R, SHIFT_JIS), [], R, None),
    ("region binary", write(R, b"\x89PNG\r\n\x1a\n\x00\x00"), [], R, None),
    # -- scenario TOML: numbers ----------------------------------------------------------
    ("duration inf", replace(S, "duration = 60.0", "duration = inf"), [], S,
     "scenario.duration"),
    ("duration nan", replace(S, "duration = 60.0", "duration = nan"), [], S,
     "scenario.duration"),
    ("duration negative", replace(S, "duration = 60.0", "duration = -5.0"), [], S,
     "scenario.duration"),
    ("duration 1e9 s", replace(S, "duration = 60.0", "duration = 1e9"), [], S,
     "scenario.duration"),
    ("tide 1e30", replace(S, "duration = 60.0", "duration = 60.0\nstill_water_level = 1e30"),
     [], S, "scenario.still_water_level"),
    ("tide nan", replace(S, "duration = 60.0", "duration = 60.0\nstill_water_level = nan"),
     [], S, "scenario.still_water_level"),
    ("max_speed inf", scenario(DISPLACEMENT + "[numerics]\nmax_speed = inf\n"), [], S,
     "numerics.max_speed"),
    ("cfl 1e-300", scenario(DISPLACEMENT + "[numerics]\ncfl = 1e-300\n"), [], S,
     "numerics.cfl"),
    ("cfl 2", scenario(DISPLACEMENT + "[numerics]\ncfl = 2.0\n"), [], S, "numerics.cfl"),
    ("dry_depth 0", scenario(DISPLACEMENT + "[numerics]\ndry_depth = 0.0\n"), [], S,
     "numerics.dry_depth"),
    ("arrival_threshold negative", scenario(DISPLACEMENT + "[output]\narrival_threshold = -1\n"),
     [], S, "output.arrival_threshold"),
    ("gauge_interval inf", scenario(DISPLACEMENT + "[output]\ngauge_interval = inf\n"), [], S,
     "output.gauge_interval"),
    ("scenario binary", write(S, b"\x00\x00\x00\x00garbage"), [], S, None),
    ("scenario name as event", replace(S, 'name = "bay_bump"', 'name = "2024/01/01"'), [], S,
     "scenario.name"),
    # -- displacement sources --------------------------------------------------------------
    ("raster 20 degrees away", raster(None, west=159.0), [], S, "source.path"),
    ("raster in the wrong CRS", replace(S, 'path = "source.tif"',
                                        'path = "source.tif"\ncrs = "EPSG:6679"'), [], S,
     "source.path"),
    ("raster NaN over the peak", raster(hole), [], S, "source.path"),
    ("raster hole seen only by a nested grid",
     both(replace(R, "[[gauge]]", INNER + "\n[[gauge]]"),
          raster(pixel_hole, west=139.005, north=41.955)), [], S, "source.path"),
    ("raster all zero", raster(np.zeros((30, 30))), [], S, "source.path"),
    ("raster undeclared 1e30", raster(lambda v: np.where(v < 0.01, 1e30, v)), [], S,
     "source.path"),
    ("raster crs local in a georeferenced region",
     replace(S, 'path = "source.tif"', 'path = "source.tif"\ncrs = "local"'), [], S,
     "source.crs"),
    ("dem read as depth (swapped)",
     replace(R, 'path = "dem.tif"', 'path = "dem.tif"\nvertical = "depth"'), [], S,
     "source.path"),
    # -- fault sources ---------------------------------------------------------------------
    ("fault far outside", scenario(FAULT.replace("longitude = 139.15", "longitude = 160.0")),
     [], S, "source"),
    ("fault slip inf", scenario(FAULT.replace("slip_m = 3.0", "slip_m = inf")), [], S,
     "source.slip_m"),
    ("fault slip 1000 m", scenario(FAULT.replace("slip_m = 3.0", "slip_m = 1000.0")), [], S,
     "source.slip_m"),
    ("fault depth negative", scenario(FAULT.replace("depth_m = 5000.0", "depth_m = -100.0")),
     [], S, "source.depth_m"),
    ("fault length nan", scenario(FAULT.replace("length_m = 20000.0", "length_m = nan")), [],
     S, "source.length_m"),
    ("fault rupture_velocity 1e9", scenario(FAULT + "rupture_velocity = 1e9\n"), [], S,
     "source.rupture_velocity"),
    ("fault rise_time inf", scenario(FAULT + "rise_time = inf\n"), [], S, "source.rise_time"),
    ("alert magnitude 12", scenario(FAULT.replace('type = "fault"', 'type = "alert"')
                                    .replace("slip_m = 3.0\nlength_m = 20000.0\n"
                                             "width_m = 10000.0\n", "magnitude = 12.0\n")),
     [], S, "source.magnitude"),
    ("subfault slip nan", scenario(
        '[scenario]\nname = "t"\nduration = 60.0\n[source]\ntype = "subfaults"\n'
        'path = "faults.csv"\n',
        write("faults.csv", "longitude,latitude,depth_m,strike,dip,rake,slip_m,length_m,"
                            "width_m\n139.15,41.8,5000,0,30,90,nan,20000,10000\n")),
     [], "faults.csv", "line 2, column 'slip_m'"),
    ("subfault Shift-JIS", scenario(
        '[scenario]\nname = "t"\nduration = 60.0\n[source]\ntype = "subfaults"\n'
        'path = "faults.csv"\n',
        write("faults.csv", "# 奥尻 1993\nlongitude,latitude,depth_m,strike,dip,rake,slip_m,"
                            "length_m,width_m\n".encode("cp932"))),
     [], "faults.csv", None),
    ("subfault far away", scenario(
        '[scenario]\nname = "t"\nduration = 60.0\n[source]\ntype = "subfaults"\n'
        'path = "faults.csv"\n',
        write("faults.csv", "longitude,latitude,depth_m,strike,dip,rake,slip_m,length_m,"
                            "width_m\n-40.0,41.8,5000,0,30,90,3,20000,10000\n")),
     [], S, "source.path"),
    # -- incident waves --------------------------------------------------------------------
    ("wave after the run", scenario(WAVE, write("wave.csv", "time_s,eta_m\n100,0\n110,0.5\n")),
     [], S, "source.path"),
    ("wave before the run", scenario(WAVE, write("wave.csv", "time_s,eta_m\n-50,0\n-40,0.5\n")),
     [], S, "source.path"),
    ("wave all zero", scenario(WAVE, write("wave.csv", "time_s,eta_m\n0,0\n10,0\n20,0\n")), [],
     S, "source.path"),
    ("wave on a dry side", scenario(WAVE.replace('side = "west"', 'side = "east"')), [], S,
     "source.side"),
    ("wave higher than the depth", scenario(WAVE, write("wave.csv",
                                                        "time_s,eta_m\n0,0\n10,45\n20,0\n")),
     [], S, "source.path"),
    ("wave eta 1e6", scenario(WAVE, write("wave.csv", "time_s,eta_m\n0,0\n10,1e6\n")), [],
     "wave.csv", "line 3, column 'eta_m'"),
    ("wave time inf", scenario(WAVE, write("wave.csv", "time_s,eta_m\n0,0\ninf,1\n")), [],
     "wave.csv", "line 3"),
    ("wave Shift-JIS", scenario(WAVE, write("wave.csv", "時間,水位\n0,0\n".encode("cp932"))),
     [], S, "source.path"),
    # -- command line ----------------------------------------------------------------------
    ("--event ../../escaped", None, ["--event", "../../escaped"], CLI, "--event"),
    ("--event a:b*?", None, ["--event", "a:b*?"], CLI, "--event"),
    ("--event .", None, ["--event", "."], CLI, "--event"),
    ("--forecast 0", None, ["--forecast", "0"], CLI, "--forecast"),
    ("--forecast -3", None, ["--forecast", "-3"], CLI, "--forecast"),
    ("--resolution nan", None, ["--resolution", "nan"], CLI, "--resolution"),
    ("--resolution inf", None, ["--resolution", "inf"], CLI, "--resolution"),
    ("--resolution -10", None, ["--resolution", "-10"], CLI, "--resolution"),
    ("--crs unknown", None, ["--crs", "EPSG:99999999"], CLI, "--crs"),
    ("--crs geographic", None, ["--crs", "EPSG:4326"], CLI, "--crs"),
    ("--crs local", None, ["--crs", "local"], CLI, "--crs"),
    ("--out is a file", write("taken", "x"), ["--out", "{case}/taken"], CLI, "--out"),
    ("--out under a file", write("taken", "x"), ["--out", "{case}/taken/out"], CLI, "--out"),
    ("--outbox under a file", write("taken", "x"), ["--outbox", "{case}/taken/box"], CLI,
     "--outbox"),
]


@pytest.mark.parametrize("edit, extra, file, field",
                         [pytest.param(*case[1:], id=case[0]) for case in BATTERY])
def test_a_bad_input_ends_with_exit_2_naming_file_and_field(tmp_path, capsys, edit, extra,
                                                            file, field):
    case = make_case(tmp_path / "case")
    if edit is not None:
        edit(case)
    out = tmp_path / "out"
    # (a second --out in `extra` wins: argparse keeps the last)
    code = cli.main(["run", str(case / "region.toml"), str(case / "scenario.toml"), "--out",
                     str(out), "--no-progress", *[a.format(case=case) for a in extra]])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2, err
    assert len(lines) == 1 and "Traceback" not in err, err
    named = CLI if file == CLI else str(case / file)
    expected = f"error: {named}" + (f", field '{field}'" if field else "")
    assert lines[0].startswith(expected), (expected, lines[0])
    # nothing simulated, nothing published
    assert not (out / "outbox").exists() and not list(out.glob("fields_*.nc"))


def test_the_battery_is_large_and_its_cases_distinct():
    ids = [case[0] for case in BATTERY]
    assert len(ids) >= 90 and len(set(ids)) == len(ids)


# -- the valid case runs, and what is legal but odd is accepted or warned about -------------
def run_case(case: Path, out: Path, *extra: str) -> int:
    return cli.main(["run", str(case / "region.toml"), str(case / "scenario.toml"), "--out",
                     str(out), "--no-progress", *extra])


def test_the_valid_case_runs_and_publishes(tmp_path, capsys):
    case = make_case(tmp_path / "case")
    assert run_case(case, tmp_path / "out") == 0, capsys.readouterr().err
    latest = tmp_path / "out" / "outbox" / "bay_bump" / "latest"
    assert latest.exists()
    assert "warning" not in capsys.readouterr().err
    # Published files name their inputs but carry no local paths of this machine.
    for path in latest.iterdir():
        if path.suffix in {".nc", ".json", ".csv", ".geojson", ".xml"}:
            assert str(tmp_path) not in path.read_bytes().decode("latin-1"), path.name


def test_a_raster_covering_part_of_the_grid_is_fine(tmp_path, capsys):
    """A raster over only the western third of the grid (NaN elsewhere is 'outside it')."""
    case = make_case(tmp_path / "case")
    geotiff(case / "source.tif", bump()[:, :20], 139.0, 41.95, RES)
    assert run_case(case, tmp_path / "out") == 0, capsys.readouterr().err


def test_a_masked_quiet_area_in_a_raster_is_read_as_zero_with_a_warning(tmp_path, capsys):
    """NaN over water where the displacement around is negligible: a mask, not a hole."""
    case = make_case(tmp_path / "case")
    values = bump()
    values[25:29, 1:5] = np.nan  # the far south-west corner: around 1e-3 of the peak
    geotiff(case / "source.tif", values, 139.0, 41.95, RES)
    assert run_case(case, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert re.search(r"warning: .*scenario.toml, field 'source.path': source.tif has no data "
                     r"over \d+ wet cells .* read as zero", err), err


def test_bom_in_toml_and_csv_files_is_accepted(tmp_path, capsys):
    """Excel's "CSV UTF-8" and some Windows editors start files with a BOM."""
    case = make_case(tmp_path / "case")
    for name in ("region.toml", "wave.csv"):
        path = case / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    (case / "scenario.toml").write_bytes(b"\xef\xbb\xbf" + WAVE.encode())
    assert run_case(case, tmp_path / "out") == 0, capsys.readouterr().err
    (case / "scenario.toml").write_bytes(
        b"\xef\xbb\xbf" + b'[scenario]\nname = "t"\nduration = 60.0\n[source]\n'
        b'type = "subfaults"\npath = "faults.csv"\n')
    (case / "faults.csv").write_bytes(b"\xef\xbb\xbf" + (case / "faults.csv").read_bytes())
    assert run_case(case, tmp_path / "out2") == 0, capsys.readouterr().err


def test_swapped_land_and_sea_warn(tmp_path, capsys):
    """Elevations read as depths: the sea becomes land. With a source over the (true) sea
    the run is refused; the warning says why the sea went missing."""
    case = make_case(tmp_path / "case")
    lon = LON0 + (np.arange(60) + 0.5) * RES
    # mostly sea: 400 m deep in the west, the shore at 139.4 E, land up to 60 m east of it
    elevation = np.tile(np.clip(1000.0 * (lon - 139.4), -400.0, 60.0), (60, 1))
    geotiff(case / "dem.tif", elevation, LON0, LAT0, RES)
    (case / "region.toml").write_text(REGION.replace('path = "dem.tif"',
                                                     'path = "dem.tif"\nvertical = "depth"'))
    assert run_case(case, tmp_path / "out") == 2
    err = capsys.readouterr().err
    assert "land and sea swapped?" in err and "field 'dem[0].vertical'" in err, err
    assert "does not reach the water" in err


def test_a_town_at_sea_warns(tmp_path, capsys):
    case = make_case(tmp_path / "case")
    (case / "region.toml").write_text(REGION.replace("[139.3, 139.48, 41.7, 41.9]",
                                                     "[139.02, 139.1, 41.7, 41.9]"))
    assert run_case(case, tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "town 'Bayside'" in err and "entirely at sea" in err, err
    # run.json keeps what was shown (a fan-out's warnings too: tests/test_fanout.py)
    shown = [line.removeprefix("warning: ") for line in err.splitlines()
             if "entirely at sea" in line]
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["input_warnings"] == shown
    # and the products, read without the run's log, carry it
    item = json.loads((tmp_path / "out" / "outbox" / "bay_bump" / "latest" / "item.json")
                      .read_text())
    # (the file by name: published files carry no local paths of this machine)
    published = [w.replace(str(tmp_path / "case") + "/", "") for w in shown]
    assert published[0].startswith("region.toml, field 'town[0].extent': town 'Bayside'")
    assert item["properties"]["tsunami:input_warnings"] == published
    assert "INPUT WARNINGS: 1 input warning" in item["properties"]["description"]
    assert str(tmp_path) not in json.dumps(item)
    assert cli.main(["export", str(tmp_path / "out"), "--outbox", str(tmp_path / "again")]) == 0
    again = json.loads((tmp_path / "again" / "bay_bump" / "latest" / "item.json").read_text())
    assert again["properties"]["tsunami:input_warnings"] == published


def test_local_frames(tmp_path, capsys):
    """In a local (laboratory) region, a DEM and a displacement raster may say
    crs = "local" explicitly, as the error for a CRS-less raster suggests."""
    x = np.arange(0.5, 100, 1.0)
    lines = [f"{xi} {yi} {-5.0 + 0.1 * xi}" for yi in np.arange(0.5, 60, 1.0) for xi in x]
    (tmp_path / "lab.xyz").write_text("x y z\n" + "\n".join(lines) + "\n")
    values = np.zeros((30, 40))
    values[10:20, 5:15] = 0.05
    with open(tmp_path / "hump.asc", "w") as f:
        f.write("ncols 40\nnrows 30\nxllcorner 0\nyllcorner 0\ncellsize 1\n")
        f.write("\n".join(" ".join(f"{v:g}" for v in row) for row in values) + "\n")
    (tmp_path / "region.toml").write_text(
        '[region]\nname = "lab"\ncrs = "local"\n[[dem]]\npath = "lab.xyz"\ncrs = "local"\n'
        '[[grid]]\nname = "tank"\nextent = [0.0, 100.0, 0.0, 60.0]\nspacing = 2.0\n')
    (tmp_path / "scenario.toml").write_text(
        '[scenario]\nname = "hump"\nduration = 5.0\n[source]\ntype = "displacement"\n'
        'path = "hump.asc"\ncrs = "local"\n')
    assert run_case(tmp_path, tmp_path / "out") == 0, capsys.readouterr().err
    # and a projected raster in the local region is a clear error
    (tmp_path / "scenario.toml").write_text(
        '[scenario]\nname = "hump"\nduration = 5.0\n[source]\ntype = "displacement"\n'
        'path = "hump.asc"\ncrs = "EPSG:6677"\n')
    assert run_case(tmp_path, tmp_path / "out2") == 2
    assert "field 'source.crs': a raster in" in capsys.readouterr().err


def test_0_360_longitudes_give_the_right_answer(tmp_path, capsys):
    """A region west of the antimeridian (-180...180) with a raster in 0...360 longitudes:
    the warp wraps them, so the bump lands where it belongs."""
    case = make_case(tmp_path / "case")
    shift = -300.0  # the case moved to 161...160.4 W
    geotiff(case / "dem.tif", rasterio.open(case / "dem.tif").read(1), LON0 + shift, LAT0, RES)
    (case / "region.toml").write_text(
        REGION.replace("139.0, 139.5", "-161.0, -160.5")
        .replace("139.3, 139.48", "-160.7, -160.52").replace("x = 139.3", "x = -160.7"))
    geotiff(case / "source.tif", bump(), 139.0 + shift + 360.0, 41.95, RES)  # 199...199.3 E
    assert run_case(case, tmp_path / "out") == 0, capsys.readouterr().err
    with xr.open_dataset(tmp_path / "out" / "fields_outer.nc") as ds:
        peak = ds.max_eta.where(ds.max_eta == ds.max_eta.max(), drop=True)
        assert 1.5 < float(ds.max_eta.max()) < 2.1
        assert abs(float(peak.lon[0]) - (SOURCE_CENTRE[0] + shift)) < 0.03
