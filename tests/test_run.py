"""`tsunami run` end to end: outputs with units and CRS, progress, failures keep old files."""

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
from affine import Affine

from tsunami import cli
from tsunami.errors import BlowUpError

ROOT = Path(__file__).resolve().parents[1]
REGION = ROOT / "grids" / "conical_island" / "region.toml"
SCENARIO = ROOT / "scenarios" / "conical_island_case_a.toml"


@pytest.fixture(scope="module")
def lab_region(tmp_path_factory):
    """The shipped laboratory region at the DEM's own 0.1 m spacing (its 0.05 m grid takes
    eight times the work and tests nothing more here)."""
    text = REGION.read_text()
    assert 'spacing = 0.05' in text and 'path = "conical_island.xyz"' in text
    text = text.replace("spacing = 0.05", "spacing = 0.1").replace(
        'path = "conical_island.xyz"', f'path = "{REGION.parent / "conical_island.xyz"}"')
    path = tmp_path_factory.mktemp("region") / "region.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, lab_region):
    """The laboratory case, run once for the module; its stderr is kept."""
    out = tmp_path_factory.mktemp("run")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        assert cli.main(["run", str(lab_region), str(SCENARIO), "--out", str(out)]) == 0
    (out / "stderr.txt").write_text(stderr.getvalue())
    return out


def test_fields_carry_units_long_names_coordinates_and_frame(lab_run):
    ds = xr.open_dataset(lab_run / "fields_basin.nc")
    for name in ("max_eta", "max_depth", "max_speed", "max_momentum_flux", "arrival_time",
                 "elevation"):
        assert ds[name].attrs["units"] and ds[name].attrs["long_name"], name
        assert ds[name].dims == ("y", "x")
    assert ds.x.attrs["units"] == "m" and ds.y.attrs["units"] == "m"
    assert ds.crs.attrs["long_name"] == "local Cartesian frame"
    assert ds.attrs["Conventions"] == "CF-1.8"
    # the island's front face floods: runup of a few cm within seconds
    assert 0.02 < float(ds.max_depth.max()) < 0.1
    assert np.isfinite(ds.arrival_time).any()


def test_gauges_as_netcdf_and_csv(lab_run):
    ds = xr.open_dataset(lab_run / "gauges.nc")
    assert list(ds.gauge.values) == ["g6", "g9", "g16", "g22"]
    assert ds.eta.attrs["units"] == "m" and ds.time.attrs["units"] == "s"
    header = (lab_run / "gauges.csv").read_text().splitlines()[0].split(",")
    assert header[:4] == ["time_s", "g6_eta_m", "g6_depth_m", "g6_speed_m_s"]
    summary = json.loads((lab_run / "run.json").read_text())
    assert summary["grids"]["basin"]["runup_m"] > 0


def test_progress_shows_simulated_time(lab_run):
    err = (lab_run / "stderr.txt").read_text()
    assert "simulated" in err and "14/14 s" in err


def test_a_failed_run_leaves_the_earlier_outputs(tmp_path, monkeypatch, capsys, lab_run):
    out = tmp_path / "out"
    out.mkdir()
    earlier = (lab_run / "fields_basin.nc").read_bytes()
    (out / "fields_basin.nc").write_bytes(earlier)

    def blow_up(self):
        raise BlowUpError("basin", 3.2, (10.0, 13.8), "the surface elevation is not finite")

    monkeypatch.setattr("tsunami.simulation.Simulation.run", blow_up)
    code = cli.main(["run", str(REGION), str(SCENARIO), "--out", str(out), "--no-progress"])
    assert code == 2
    assert "numerical blow-up on grid 'basin'" in capsys.readouterr().err
    assert (out / "fields_basin.nc").read_bytes() == earlier
    assert sorted(p.name for p in out.iterdir()) == ["fields_basin.nc"]


def test_bad_input_exits_with_a_message_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "s.toml"
    bad.write_text('[scenario]\nname = "x"\nduration = -5\n[source]\ntype = "displacement"\n')
    assert cli.main(["run", str(REGION), str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "scenario.duration" in err


def test_a_geographic_region_with_a_projected_displacement_raster(tmp_path):
    """Spherical grid in lon/lat; the source raster is in JGD2011 zone XI (EPSG:6679)."""
    lon = np.arange(139.0, 140.0, 0.01)
    lat = np.arange(42.5, 41.5, -0.01)
    elevation = np.tile(-1500 + 1700 * (lon - 139.0), (lat.size, 1))  # land in the east
    with rasterio.open(tmp_path / "dem.tif", "w", driver="GTiff", width=lon.size,
                       height=lat.size, count=1, dtype="float32", crs="EPSG:4326",
                       transform=Affine(0.01, 0, 139.0, 0, -0.01, 42.5)) as dst:
        dst.write(elevation.astype("float32"), 1)
    from pyproj import Transformer

    x0, y0 = Transformer.from_crs(4326, 6679, always_xy=True).transform(139.3, 42.0)
    xs = x0 + np.arange(-20000, 20000, 500.0)
    ys = y0 + np.arange(20000, -20000, -500.0)
    bump = 2.0 * np.exp(-((xs[None, :] - x0) ** 2 + (ys[:, None] - y0) ** 2) / 8000.0**2)
    with rasterio.open(tmp_path / "source.tif", "w", driver="GTiff", width=xs.size,
                       height=ys.size, count=1, dtype="float32", crs="EPSG:6679",
                       transform=Affine(500.0, 0, xs[0] - 250, 0, -500.0, ys[0] + 250)) as dst:
        dst.write(bump.astype("float32"), 1)
    (tmp_path / "r.toml").write_text(
        '[region]\nname = "geo"\ncrs = "EPSG:4326"\n[[dem]]\npath = "dem.tif"\n'
        '[[grid]]\nname = "sea"\nextent = [139.0, 139.98, 41.6, 42.4]\nspacing = 0.02\n'
        'manning = 0.025\n[[gauge]]\nname = "coast"\nx = 139.85\ny = 42.0\n'
        '[[town]]\nname = "coast"\nextent = [139.6, 139.9, 41.8, 42.2]\n')
    (tmp_path / "s.toml").write_text(
        '[scenario]\nname = "bump"\nduration = 900.0\n'
        '[source]\ntype = "displacement"\npath = "source.tif"\n'
        '[output]\ngauge_interval = 30.0\n')
    out = tmp_path / "out"
    assert cli.main(["run", str(tmp_path / "r.toml"), str(tmp_path / "s.toml"), "--out",
                     str(out), "--no-progress"]) == 0
    ds = xr.open_dataset(out / "fields_sea.nc")
    assert ds.lon.attrs["units"] == "degrees_east" and ds.crs.attrs["epsg_code"] == "EPSG:4326"
    peak = ds.max_eta.sel(lon=139.3, lat=42.0, method="nearest")
    assert 1.5 < float(peak) < 2.1
    arrival = ds.arrival_time.sel(lon=139.7, lat=42.0, method="nearest")
    assert np.isfinite(arrival)
    gauges = xr.open_dataset(out / "gauges.nc")
    assert float(gauges.eta.max()) > 0.05
    # products are published at the end of the run
    published = out / "outbox" / "bump" / "forecast-001"
    item = json.loads((published / "item.json").read_text())
    assert item["properties"]["tsunami:source_type"] == "displacement"
    assert (out / "outbox" / "bump" / "latest").resolve() == published.resolve()
    with rasterio.open(published / "coast_max_depth_6679.tif") as src:
        # 0.02 deg is about 1660 x 2220 m: the nearest 1-2-5 step is 2 km
        assert src.crs.to_epsg() == 6679 and src.res == (2000.0, 2000.0)
