"""Source estimation from gauges: fault zones, the unit-source database, the inversion and
the twin experiment (a true source not in the database, corrupted synthetic records, at
most 10 minutes of data, forecast coastal maxima against the truth)."""

import csv
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
from scipy.ndimage import median_filter

from tsunami.cli import main
from tsunami.diagnostics import aida
from tsunami.errors import InputError
from tsunami.grid import Grid, great_circle_m
from tsunami.realtime import database as database_module
from tsunami.realtime.database import (
    ForecastPoint,
    UnitSourceDatabase,
    build_database,
    nearest_water,
    place_points,
    read_forecast_points,
)
from tsunami.realtime.inversion import (
    GaugeRecord,
    InversionSettings,
    _delayed,
    _solve,
    invert,
    l_curve_corner,
    read_record_csv,
    resample,
)
from tsunami.realtime.stations import StationCatalogue
from tsunami.realtime.zone import FaultZone, laplacian
from tsunami.region import Region
from tsunami.runner import run
from tsunami.scenario import Scenario
from tsunami.source import Subfault, fault_sea_surface, read_subfault_csv
from tsunami.source.okada import seafloor_displacement

ROOT = Path(__file__).resolve().parents[1]
OKUSHIRI = ROOT / "grids" / "okushiri1993"
TOHOKU = ROOT / "grids" / "tohoku2011"


# -- fault zones ---------------------------------------------------------------------------
def test_japan_trench_zone_follows_satake_2013():
    zone = FaultZone.load(TOHOKU / "japan_trench_zone.toml")
    assert (len(zone), zone.rows, zone.columns) == (55, 5, 11)
    # 10 along-strike pairs in each of 5 rows, 4 down-dip pairs in each of 11 columns.
    assert len(zone.neighbours()) == 5 * 10 + 4 * 11
    tops = [zone.units[r * 11].subfault.depth for r in range(5)]
    assert tops == [0.0, 3500.0, 7000.0, 15600.0, 26000.0]
    for u in zone.units[11:]:  # every row hangs from the bottom edge of the one above
        above = zone.units[u.index - 11].subfault
        lon, lat, bottom = above.point(0.0, above.width)
        assert abs(lon - u.subfault.longitude) < 1e-9 and abs(lat - u.subfault.latitude) < 1e-9
        assert abs(bottom - u.subfault.depth) < 150.0  # Satake's rounded depths
    # Each subfault of Satake et al. with slip has a unit within 12 km of it.
    with open(TOHOKU / "satake2013_subfaults.csv") as f:
        rows = [r for r in csv.reader(line for line in f if not line.startswith("#"))][1:]
    satake = {(float(r[0]), float(r[1]), float(r[2]), float(r[4]), float(r[8])) for r in rows}
    centres = []
    for lon, lat, depth, dip, width in satake:
        s = Subfault.from_reference("top_start", lon, lat, depth, 193.0, dip, 81.0, 1.0,
                                    50e3, width)
        centres.append((s.longitude, s.latitude))
    assert len(centres) == 49  # 6 of the 55 have no slip
    for x, y in centres:
        d = min(np.hypot((u.subfault.longitude - x) * 111.0 * np.cos(np.radians(y)),
                         (u.subfault.latitude - y) * 111.0) for u in zone.units)
        assert d < 12.0
    assert zone.rigidity == 4e10


@pytest.mark.parametrize("change, field", [
    ('trace = [[139.12, 41.55], [139.13, 41.7]]', "zone.trace"),
    ('trace = [[139.12, 41.55], "x"]', "zone.trace"),
    ('columns = 0', "zone.columns"),
    ('name = "a/b"', "zone.name"),
])
def test_bad_zone_names_file_and_key(tmp_path, change, field):
    text = (OKUSHIRI / "zone.toml").read_text()
    key = change.split(" = ")[0]
    lines = [change if line.startswith(f"{key} = ") else line for line in text.splitlines()]
    path = tmp_path / "zone.toml"
    path.write_text("\n".join(lines))
    with pytest.raises(InputError) as err:
        FaultZone.load(path)
    assert err.value.field == field and str(path) in str(err.value)


def test_first_row_needs_its_depth(tmp_path):
    text = (OKUSHIRI / "zone.toml").read_text().replace("top_depth_m = 2000.0", "")
    path = tmp_path / "zone.toml"
    path.write_text(text)
    with pytest.raises(InputError, match="top_depth_m"):
        FaultZone.load(path)


# -- inversion pieces ------------------------------------------------------------------------
def test_nnls_tikhonov_recovers_smooth_slip_and_lcurve_finds_the_corner():
    rng = np.random.default_rng(0)
    n = 12
    lap = np.zeros((n, n))
    for i in range(n - 1):
        lap[i, i + 1] = lap[i + 1, i] = -1
        lap[i, i] += 1
        lap[i + 1, i + 1] += 1
    g = np.abs(rng.normal(size=(300, n))) * np.exp(-np.arange(n) / 6.0)
    truth = np.maximum(0.0, 5.0 * np.sin(np.linspace(0, np.pi, n)) - 1.0)
    d = g @ truth + rng.normal(0, 0.05, 300)
    slip, reg = _solve(g, d, lap, InversionSettings())
    assert np.all(slip >= 0)
    assert not reg["at_edge"]
    assert np.abs(slip - truth).max() < 0.5
    # An L-shaped curve: the corner is where it bends.
    residual = np.array([1.0, 1.001, 1.002, 1.01, 1.1, 2.0, 4.0, 8.0])
    roughness = np.array([100.0, 30.0, 10.0, 3.0, 1.0, 0.9, 0.85, 0.8])
    assert l_curve_corner(residual, roughness) == 4


def test_smoothing_pins_lateral_and_bottom_edges_but_not_the_top():
    lap = laplacian([0, 0, 0, 1, 1, 1], [0, 1, 2, 0, 1, 2])
    # Uniform slip is rough only against the zero-slip ghosts beyond the pinned edges.
    assert list(lap @ np.ones(6)) == [1, 0, 1, 2, 1, 2]
    assert np.allclose(lap, lap.T)


def test_rupture_delay_shifts_each_unit():
    times = np.arange(0.0, 301.0, 15.0)
    response = np.vstack([np.minimum(times / 60.0, 1.0)] * 2)
    shifted = _delayed(response, times, np.array([0.0, 60.0]))
    assert np.array_equal(shifted[0], response[0])
    assert np.allclose(shifted[1], np.minimum(np.maximum(times - 60.0, 0.0) / 60.0, 1.0))


def test_resample_averages_fine_records_and_masks_gaps():
    times = np.arange(0.0, 121.0, 15.0)
    t = np.arange(0.0, 121.0, 1.0)
    eta = np.where((t > 40) & (t < 80), np.nan, t / 10.0)
    out = resample(GaugeRecord(t, eta), times)
    assert out[0] == pytest.approx(np.mean(t[t <= 7] / 10))
    assert np.isnan(out[4]) and np.isfinite(out[3]) and np.isfinite(out[6])
    # Coarser than the step: interpolated, except across a gap of more than two steps.
    t60 = np.array([0.0, 60.0, 120.0, 300.0, 360.0])
    out = resample(GaugeRecord(t60, t60 / 60), np.arange(0.0, 361.0, 30.0))
    assert out[1] == pytest.approx(0.5) and np.isnan(out[6]) and out[-1] == pytest.approx(6)
    flags = np.zeros(t.size)
    flags[:10] = 1
    assert np.isnan(resample(GaugeRecord(t, t / 10, flags), times)[0])


@pytest.mark.parametrize("text, field", [
    ("time,eta\n0,1\n", "line 1"),
    ("time_s,eta_m\n0,1\n1,x\n", "line 3"),
    ("time_s,eta_m\n0,1\n0,2\n", "time_s"),
    ("time_s,eta_m\n0,1\nnan,2\n", "time_s"),
    ("time_s,eta_m\n", None),
])
def test_bad_record_files_name_file_and_line(tmp_path, text, field):
    path = tmp_path / "P02.csv"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_record_csv(path)
    assert err.value.field == field and "P02.csv" in str(err.value)


# -- the twin experiment ---------------------------------------------------------------------
# A coarse (2') outer grid over the Okushiri demo's 24" bathymetry, the 16 unit sources off
# south-west Hokkaido, the virtual offshore network and the forecast points of the demo.
REGION = """
[region]
name = "okushiri_coarse"
crs = "EPSG:4326"
[[dem]]
path = "{dem}"
[[grid]]
name = "coarse"
extent = [138.3, 140.7, 41.0, 43.8]
spacing = 0.0333333333333
manning = 0.025
linear_depth = 100.0
"""
# The "true" earthquake: one rectangle of another strike, dip, size, depth and rake than
# any unit (Mw 7.77, like 1993), straddling several units.
TRUE_FAULT = dict(longitude=139.20, latitude=42.35, depth_m=4000.0, strike=10.0, dip=35.0,
                  rake=95.0, slip_m=4.0, length_m=100000.0, width_m=35000.0)
RECORD_S = 600.0  # at most 10 minutes of records
FORECAST_S = 2400.0


def _scenario(path: Path, name: str, source: str) -> Scenario:
    path.write_text(f'[scenario]\nname = "{name}"\nduration = {FORECAST_S}\n'
                    f"[source]\n{source}\n[output]\ngauge_interval = 0\n")
    return Scenario.load(path)


def make_twin(tmp_path_factory) -> dict:
    """The twin experiment's database and true run (the session fixture ``twin`` in
    conftest.py, shared with tests/test_realtime_watch.py)."""
    folder = tmp_path_factory.mktemp("twin")
    zone = FaultZone.load(OKUSHIRI / "zone.toml")
    stations = StationCatalogue.load(OKUSHIRI / "stations_virtual.toml")
    points = read_forecast_points(OKUSHIRI / "forecast_points.csv")
    (folder / "region.toml").write_text(REGION.format(dem=OKUSHIRI / "OK24.tif"))
    region = Region.load(folder / "region.toml")
    out = folder / "db"
    # An interrupted build (a unit fails) leaves the finished units; the rerun reuses them.
    real = database_module.unit_response

    def failing(subfault, *args, **kwargs):
        if abs(subfault.latitude - zone.units[5].subfault.latitude) < 1e-9:
            raise RuntimeError("simulated crash")
        return real(subfault, *args, **kwargs)

    settings = dict(forecast_points=points, duration=900.0, interval=15.0, workers=1,
                    processes=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # coastal points moved off land on the 2' grid
        database_module.unit_response = failing
        try:
            with pytest.raises(RuntimeError, match="r0c5"):
                build_database(zone, region, stations, out, **settings)
        finally:
            database_module.unit_response = real
        done_before = len(list((out / "parts").glob("unit_*.nc")))
        report = build_database(zone, region, stations, out, **settings)
        again = build_database(zone, region, stations, out, **settings)
    db = UnitSourceDatabase(out)
    # The true run, with every station and forecast point as a gauge.
    text = REGION.format(dem=OKUSHIRI / "OK24.tif") + "".join(
        f'[[gauge]]\nname = "{p.id}"\nx = {p.model_lon}\ny = {p.model_lat}\n'
        for p in db.points.values())
    (folder / "region_gauges.toml").write_text(text)
    region = Region.load(folder / "region_gauges.toml")
    source = 'type = "fault"\n' + "\n".join(f"{k} = {v}" for k, v in TRUE_FAULT.items())
    truth = run(region, _scenario(folder / "true.toml", "true", source))
    return dict(folder=folder, db=db, region=region, truth=truth, report=report,
                again=again, done_before=done_before, zone=zone)


def _corrupted_records(twin, seed: int) -> dict[str, GaugeRecord]:
    """What the virtual network sends during the first 10 minutes (5 s sampling): the
    true record (bottom-pressure gauges: the water column eta - uz) plus 2 cm noise, a
    one-minute gap, three 2 m spikes and, at OKV1, a clock 20 s late; then the simplest
    honest cleaning (running-median despiking; gaps stay NaN and are masked)."""
    rng = np.random.default_rng(seed)
    db, gauges = twin["db"], twin["truth"].gauges
    t_model = gauges["time"].values
    true_fault = Subfault(*(TRUE_FAULT[k] for k in (
        "longitude", "latitude", "depth_m", "strike", "dip", "rake", "slip_m", "length_m",
        "width_m")))
    records = {}
    for sid in db.stations:
        p = db.points[sid]
        eta = gauges["eta"].sel(gauge=sid).values
        if p.kind == "bottom_pressure":
            eta = eta - seafloor_displacement([true_fault], p.model_lon, p.model_lat)[2]
        t = np.arange(0.0, RECORD_S + 1.0, 5.0)
        late = 20.0 if sid == "OKV1" else 0.0
        value = np.interp(t - late, t_model, eta) + rng.normal(0.0, 0.02, t.size)
        value[rng.choice(t.size, 3, replace=False)] += rng.choice([-2.0, 2.0], 3)
        gap = int(rng.integers(0, t.size - 12))
        value[gap:gap + 12] = np.nan
        median = median_filter(np.nan_to_num(value), size=9, mode="nearest")
        spread = np.nanmedian(np.abs(value - median))
        value[np.abs(value - median) > 10 * spread + 0.1] = np.nan
        records[sid] = GaugeRecord(t, value)
    return records


def test_a_point_moved_off_land_is_said_to_be_as_far_from_its_gauge_as_it_is():
    """A forecast point in the west of a dry cell, water two cells east (0.01 degree
    cells at 42 N): it is sampled at the centre of the nearest wet cell, and the distance
    reported, in the warning too, is the great circle from the point itself to there
    (1,909 m), as coastal_maxima.csv's moved_m gives it, not from its cell's centre
    (1,652 m, two cell widths, as before)."""
    grid = Grid(nx=8, ny=6, x0=139.0, y0=42.0, dx=0.01, dy=0.01, crs="EPSG:4326")
    depth = np.zeros((6, 8))
    depth[:, 6:] = 50.0
    lon, lat = 139.0421, 42.0327  # in cell (row 3, column 4), centre (139.045, 42.035)
    water = nearest_water(grid, depth, lon, lat)
    assert (water.lon, water.lat) == (grid.x[6], grid.y[3]) == pytest.approx((139.065,
                                                                              42.035))
    gauge = great_circle_m(lon, lat, water.lon, water.lat)
    assert round(gauge) == 1909 and water.distance_m == gauge
    with pytest.warns(UserWarning) as moved:
        (point,), _ = place_points(grid, depth, None, [ForecastPoint("FP", lon, lat)])
    assert (point.model_lon, point.model_lat) == (water.lon, water.lat)
    (message,) = [str(w.message) for w in moved]
    assert message == ("forecast_point 'FP' at (139.0421, 42.0327) lies in a cell 0.0 m "
                       "deep on grid 'grid': sampled 1909 m away at (139.0650, 42.0350), "
                       "50 m deep")


def test_a_point_on_land_is_moved_to_the_wet_cell_nearest_itself_not_its_cells_centre():
    """The point lies near the north edge of a dry cell; water two cells east of that
    cell (1,652 m from its centre, 1,968 m from the point) and two cells north (2,224 m
    from its centre, 1,696 m from the point). It is sampled in the northern one, the
    water nearest where the gauge stands (chosen from the cell's centre before)."""
    grid = Grid(nx=8, ny=6, x0=139.0, y0=42.0, dx=0.01, dy=0.01, crs="EPSG:4326")
    depth = np.zeros((6, 8))
    depth[3, 6] = depth[5, 4] = 50.0
    lon, lat = 139.0421, 42.0399  # in cell (row 3, column 4), centre (139.045, 42.035)
    water = nearest_water(grid, depth, lon, lat)
    assert (water.lon, water.lat) == (grid.x[4], grid.y[5])
    assert round(water.distance_m) == round(great_circle_m(lon, lat, grid.x[4], grid.y[5]))
    assert water.distance_m < great_circle_m(lon, lat, grid.x[6], grid.y[3])


def test_database_build_is_resumable_with_provenance(twin):
    db, report = twin["db"], twin["report"]
    assert 0 < twin["done_before"] < len(twin["zone"])
    assert report.reused == twin["done_before"]
    assert report.computed == len(twin["zone"]) - twin["done_before"]
    assert twin["again"].up_to_date and not (db.path.parent / "parts").exists()
    assert db.eta.shape == (16, 16, 61)
    for key in ("zone_sha256", "region", "code_version", "grid", "dt_s", "equations",
                "fingerprint"):
        assert db.attrs[key] not in ("", None)
    assert db.attrs["zone_sha256"] == twin["zone"].sha256
    # Every unit has a wave at every point (the grid is connected) and its own surface.
    assert np.all(np.abs(db.eta).max(axis=2) > 0)
    assert np.all(np.abs(db.load_sea_surfaces()).max(axis=(1, 2)) > 0.05)


def test_unit_runs_skip_the_flow_maxima_and_give_bit_for_bit_the_same_results(
        twin, monkeypatch):
    """A unit-source run (database build, tier-2 checks, percentile maps) builds its
    model with flow_maxima=False; its gauge series, eta maxima, surface and uplift are
    bit for bit those of the same run recording the flow maxima."""
    import tsunami.model
    from tsunami.realtime.database import unit_response
    from tsunami.realtime.ensemble import _boundaries

    db = twin["db"]
    built = []

    class Recorded(tsunami.model.ShallowWaterModel):
        flow_maxima_forced = None

        def __init__(self, *args, **kwargs):
            if Recorded.flow_maxima_forced is not None:
                kwargs["flow_maxima"] = Recorded.flow_maxima_forced
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(tsunami.model, "ShallowWaterModel", Recorded)
    runs = []
    for forced in (None, True):
        Recorded.flow_maxima_forced = forced
        runs.append(unit_response(twin["zone"].units[3].subfault, db.grid, -db.elevation,
                                  _boundaries(db), list(db.points.values()), db.times,
                                  float(db.attrs["dt_s"]), str(db.attrs["dtype"]),
                                  max_field=True))
    assert [m.flow_maxima for m in built] == [False, True]
    assert built[1].speed_max.max() > 0  # the reference did record them
    bare, full = runs
    assert bare["steps"] == full["steps"] > 0
    for key in ("eta", "max_eta", "sea_surface", "uplift"):
        assert bare[key].dtype == full[key].dtype and bare[key].shape == full[key].shape
        assert bare[key].tobytes() == full[key].tobytes(), key
    assert np.abs(bare["eta"]).max() > 0 and np.isfinite(bare["max_eta"]).any()


def test_twin_experiment_recovers_the_coastal_maxima(twin):
    """The requirement: 0.8 <= K <= 1.25 and kappa < 1.4 at the forecast points from at
    most 10 minutes of corrupted records, with the estimate rerun by ``tsunami run``
    (nonlinear) from the published slip table."""
    db = twin["db"]
    estimate = invert(db, _corrupted_records(twin, seed=1), RECORD_S)
    assert len(estimate.stations) == len(db.stations) and not estimate.ignored
    assert all(end <= RECORD_S for _, end in estimate.windows.values())
    true_mw = (2 / 3) * (np.log10(4e10 * 4.0 * 100e3 * 35e3) - 9.1)
    assert abs(estimate.magnitude - true_mw) < 0.15
    assert estimate.variance_reduction > 0.9
    files = estimate.write(twin["folder"] / "estimate")
    forecast = run(twin["region"], _scenario(
        twin["folder"] / "estimate.toml", "estimate",
        f'type = "subfaults"\npath = "{files["slip_table"]}"'))
    truth = twin["truth"].gauges
    observed = [float(np.nanmax(truth["eta"].sel(gauge=p).values)) for p in db.forecast_points]
    predicted = [float(np.nanmax(forecast.gauges["eta"].sel(gauge=p).values))
                 for p in db.forecast_points]
    k, kappa = aida(np.array(observed), np.array(predicted))
    assert 0.8 <= k <= 1.25, (k, kappa, observed, predicted)
    assert kappa < 1.4, (k, kappa)


def test_estimate_files_let_others_rerun_it(twin):
    db = twin["db"]
    estimate = invert(db, _corrupted_records(twin, seed=2), RECORD_S)
    files = estimate.write(twin["folder"] / "estimate2")
    # The slip table reproduces the superposed initial surface (Okada etc. are linear).
    subfaults = read_subfault_csv(files["slip_table"])
    assert len(subfaults) == len(db)
    direct = fault_sea_surface(subfaults, db.grid, -db.elevation)
    direct = np.where(db.elevation < 0, direct, 0.0)
    with rasterio.open(files["initial_sea_surface"]) as src:
        raster = src.read(1)[::-1]
        assert src.crs.to_epsg() == 4326 and src.tags(1)["units"] == "m"
        assert src.transform.c == pytest.approx(db.grid.x0)
    assert np.abs(raster - direct).max() < 1e-3 * np.abs(direct).max()
    summary = files["summary"].read_text()
    assert '"magnitude_Mw"' in summary and "NaN" not in summary
    for key in ("slip_map", "fit"):
        assert files[key].stat().st_size > 20_000
    assert estimate.inversion_wall_s < 5.0


def test_invert_cli(twin, tmp_path, capsys):
    records = _corrupted_records(twin, seed=3)
    paths = []
    for sid, r in records.items():
        path = tmp_path / f"{sid}.csv"
        rows = "\n".join(f"{t:g},{'' if np.isnan(e) else f'{e:.4f}'}"
                         for t, e in zip(r.time, r.eta, strict=True))
        path.write_text(f"time_s,eta_m\n{rows}\n")
        paths.append(str(path))
    out = tmp_path / "estimate"
    code = main(["invert", str(twin["db"].path.parent), *paths, "DART1=" + paths[0],
                 "--at", "600", "--out", str(out), "--hypocentre", "139.3", "42.35", "15000"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Mw 7." in printed.out and "DART1 not used" in printed.out
    assert (out / "slip.csv").exists() and (out / "initial_sea_surface.tif").exists()
    bad = tmp_path / "bad_zone.toml"
    bad.write_text(textwrap.dedent("""
        [zone]
        name = "x"
        trace = [[139.0, 41.0], [139.0, 41.1]]
        columns = 4
        length_m = 25000.0
        rake = 90.0
        [[row]]
        width_m = 20000.0
        dip = 30.0
        top_depth_m = 2000.0
        """))
    code = main(["database", "build", str(bad), str(twin["folder"] / "region.toml"),
                 str(OKUSHIRI / "stations_virtual.toml"), "--out", str(tmp_path / "db")])
    assert code == 2 and "field 'zone.trace'" in capsys.readouterr().err
    assert main(["database", "info", str(twin["db"].path.parent)]) == 0
    assert "16 unit sources" in capsys.readouterr().out


def test_a_build_interrupted_after_its_last_unit_resumes_without_computing(tmp_path,
                                                                          monkeypatch):
    """Killed between the last unit and gathering them: the rerun computes nothing and
    gathers every part (it used to fail unpacking an empty task list)."""
    zone = FaultZone.load(OKUSHIRI / "zone.toml")
    stations = StationCatalogue.load(OKUSHIRI / "stations_virtual.toml")
    (tmp_path / "region.toml").write_text(REGION.format(dem=OKUSHIRI / "OK24.tif"))
    region = Region.load(tmp_path / "region.toml")
    settings = dict(duration=300.0, interval=15.0, workers=1, processes=False,
                    progress=False)
    real = database_module._consolidate

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        monkeypatch.setattr(database_module, "_consolidate", killed)
        with pytest.raises(KeyboardInterrupt):
            build_database(zone, region, stations, tmp_path / "db", **settings)
        assert len(list((tmp_path / "db" / "parts").glob("unit_*.nc"))) == len(zone)
        monkeypatch.setattr(database_module, "_consolidate", real)
        report = build_database(zone, region, stations, tmp_path / "db", **settings)
    assert (report.computed, report.reused) == (0, len(zone))
    assert UnitSourceDatabase(report.path).eta.shape[0] == len(zone)
