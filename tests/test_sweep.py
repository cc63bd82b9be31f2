"""Scenario sweeps: scenario sets, stochastic slip, Dask runs into Zarr, resumption,
failures, input warnings, probabilistic maps and their products (tsunami.sweep)."""

import json
import math
import shutil
import textwrap
from pathlib import Path

import numpy as np
import pytest
import rasterio
import xarray as xr
import zarr
from distributed import Client
from rio_cogeo.cogeo import cog_validate

from tsunami import cli
from tsunami.errors import BlowUpError, InputError, InputWarning
from tsunami.region import Region
from tsunami.source.scaling import fault_from_alert
from tsunami.sweep import (
    Sweep,
    SweepStore,
    exceedance_probability,
    publish_sweep,
    run_sweep,
    scenario_id,
    statistics,
    weighted_percentile,
)
from tsunami.sweep import worker as sweep_worker
from tsunami.sweep.slip import (
    KarhunenLoeve,
    SlipField,
    correlation_lengths,
    stochastic_fault,
    von_karman,
)

ROOT = Path(__file__).resolve().parents[1]
BAY = ROOT / "scenarios" / "synthetic_bay_sweep.toml"
REGION = ROOT / "grids" / "synthetic_bay" / "region.toml"


def write_sweep(tmp_path: Path, body: str, name: str = "s.toml", region: Path = REGION
                ) -> Path:
    path = tmp_path / name
    path.write_text(f'[sweep]\nname = "t"\nregion = "{region}"\nduration = 600.0\n'
                    + textwrap.dedent(body))
    return path


EARTHQUAKE = """
[earthquake]
magnitude = 7.6
longitude = 139.6
latitude = 42.0
depth_m = 15000.0
strike = 0.0
dip = 20.0
rake = 90.0
law = "wells_coppersmith1994_reverse"
"""


# -- scenario sets ---------------------------------------------------------------------------
def test_a_parameter_grid_combines_every_value_with_product_weights():
    sweep = Sweep.load(BAY)
    assert len(sweep.scenarios) == 9 and len({s.id for s in sweep.scenarios}) == 9
    by_name = {s.name: s for s in sweep.scenarios}
    assert set(by_name) == {f"Mw{m}_x{x}km" for m in ("7.4", "7.7", "8")
                            for x in ("-40", "+0", "+40")}
    assert [by_name[f"Mw{m}_x+0km"].weight for m in ("7.4", "7.7", "8")] == [0.6, 0.3, 0.1]
    north, centre = by_name["Mw7.7_x+40km"].parameters, by_name["Mw7.7_x+0km"].parameters
    # strike 0: 40 km along strike is 40 km north, 0.3597 degrees of latitude
    assert north["latitude"] - centre["latitude"] == pytest.approx(40e3 / 6371e3 * 180 / math.pi)
    assert north["longitude"] == pytest.approx(centre["longitude"])
    assert north["along_strike_m"] == 40e3 and north["magnitude"] == 7.7
    fault = by_name["Mw8_x+0km"].scenario.source.fault
    expected = fault_from_alert(139.6, 42.0, 15000.0, 8.0, 0.0, 20.0, 90.0,
                                law="wells_coppersmith1994_reverse")
    assert fault.subfaults == expected.subfaults


def test_stochastic_sets_are_reproducible_and_stable_when_the_grid_grows(tmp_path):
    body = EARTHQUAKE + "[stochastic]\nrealisations = 3\nseed = 7\n"
    one = Sweep.load(write_sweep(tmp_path, body))
    again = Sweep.load(write_sweep(tmp_path, body, "again.toml"))
    assert [s.id for s in one.scenarios] == [s.id for s in again.scenarios]
    slips = [[p.slip for p in s.scenario.source.subfaults] for s in one.scenarios]
    assert len(slips) == 3 and slips[0] != slips[1]
    grown = Sweep.load(write_sweep(tmp_path, body + "[parameters]\nmagnitude = [7.6, 7.9]\n",
                                   "grown.toml"))
    assert len(grown.scenarios) == 6
    # the Mw 7.6 realisations are the same draws whatever else the grid holds
    assert {s.id for s in one.scenarios} < {s.id for s in grown.scenarios}
    other = Sweep.load(write_sweep(tmp_path, body.replace("seed = 7", "seed = 8"), "o.toml"))
    assert not {s.id for s in one.scenarios} & {s.id for s in other.scenarios}


def test_mai_beroza_correlation_lengths_and_the_von_karman_function():
    # dip-slip: a_x = 1100 + 0.31 L, a_z = 580 + 0.35 W; strike-slip 1860 + 0.34 L, -390 + 0.44 W
    assert correlation_lengths(127e3, 39e3, 90.0) == pytest.approx((40470.0, 14230.0))
    assert correlation_lengths(100e3, 20e3, 180.0) == pytest.approx((35860.0, 8410.0))
    assert von_karman(np.array([0.0]), 0.71)[0] == 1.0
    # H = 0.5 is the exponential function
    r = np.array([0.1, 1.0, 3.0])
    np.testing.assert_allclose(von_karman(r, 0.5), np.exp(-r), rtol=1e-12)


def test_stochastic_slip_has_the_mean_spread_and_correlation_asked_for():
    length, width, a_x, a_z = 200e3, 100e3, 40e3, 20e3
    kl = KarhunenLoeve(20, 10, length, width, (a_x, a_z), hurst=0.71, slip_cv=0.5)
    rng = np.random.default_rng(2016)
    raw = kl.sample(rng, 3.0, count=4000, preserve_moment=False)  # (4000, 10, 20)
    assert raw.min() > 0  # lognormal: slip is positive everywhere
    assert raw.mean() == pytest.approx(3.0, rel=0.02)
    assert (raw.std(axis=0) / raw.mean(axis=0)).mean() == pytest.approx(0.5, rel=0.08)
    flat = raw.reshape(4000, -1)
    # the slip itself (not its logarithm) has the von Karman correlation: check it at lags
    # of a half and one correlation length along strike and down dip (patches 10 km apart)
    for (k0, i0), (k1, i1), r in [((4, 5), (4, 7), 0.5), ((4, 5), (4, 9), 1.0),
                                   ((3, 10), (5, 10), 1.0), ((2, 10), (6, 10), 2.0)]:
        c = np.corrcoef(flat[:, k0 * 20 + i0], flat[:, k1 * 20 + i1])[0, 1]
        assert c == pytest.approx(von_karman(np.array([r]), 0.71)[0], abs=0.06)
    kept = kl.sample(np.random.default_rng(1), 3.0, count=50)
    np.testing.assert_allclose(kept.mean(axis=(1, 2)), 3.0, rtol=1e-12)  # moment kept


def test_a_stochastic_fault_keeps_the_moment_of_the_scaling_law_fault():
    fault = fault_from_alert(139.18, 42.78, 17e3, 7.8, 5.0, 30.0, 90.0,
                             law="wells_coppersmith1994_reverse")
    one = stochastic_fault(fault, np.random.default_rng(3))
    assert len(one.subfaults) == 7 * 6  # two patches per correlation length, 127 x 39 km
    assert one.moment(3e10) == pytest.approx(fault.moment(3e10), rel=1e-12)
    assert one.metadata["correlation_lengths_m"] == "40488 along strike, 14134 down dip"
    assert max(s.slip for s in one.subfaults) == pytest.approx(one.metadata["max_slip_m"])
    # patches tile the rectangle: same strike, dip, total area
    assert sum(s.area for s in one.subfaults) == pytest.approx(fault.subfaults[0].area)
    assert len(stochastic_fault(fault, np.random.default_rng(3),
                                SlipField(subfaults=(3, 2))).subfaults) == 6


def test_scenario_ids_depend_on_what_sets_the_result_only():
    base = Sweep.load(BAY).scenarios[0].scenario
    import dataclasses

    renamed = dataclasses.replace(base, name="other", description="x")
    assert scenario_id(renamed) == scenario_id(base)
    assert scenario_id(dataclasses.replace(base, duration=1000.0)) != scenario_id(base)
    assert scenario_id(dataclasses.replace(base, still_water_level=0.5)) != scenario_id(base)


@pytest.mark.parametrize("body, field, message", [
    (EARTHQUAKE.replace("rake = 90.0", ""), "earthquake.rake", "missing required key"),
    (EARTHQUAKE.replace("7.6", "11.0"), "earthquake.magnitude", "at most 10"),
    (EARTHQUAKE + "[parameters]\nmagnitude = [7.0, 7.0]\n", "parameters.magnitude", "repeats"),
    (EARTHQUAKE + "[parameters]\ndip = [0.0, 20.0]\n", "parameters.dip", "out of range"),
    (EARTHQUAKE + "[parameters]\nmagnitude = [7.0, 7.5]\n[parameters.weights]\n"
     "magnitude = [1.0]\n", "parameters.weights.magnitude", "expected 2 weights"),
    (EARTHQUAKE + "[parameters]\nwidth = [1.0]\n", "parameters.width", "unknown key"),
    (EARTHQUAKE + "[stochastic]\nrealisations = 2\n", "stochastic.seed", "missing"),
    (EARTHQUAKE + "[stochastic]\nrealisations = 2\nseed = 1\nsubfaults = [3]\n",
     "stochastic.subfaults", r"expected \[along strike, down dip\]"),
    ("[parameters]\nmagnitude = [7.0]\n", "parameters", r"needs an \[earthquake\]"),
    ("[[scenario]]\nname = \"x\"\n", "scenario[0]", "either path"),
    ("[[scenario]]\nname = \"a\"\nsource = { type = \"fault\", longitude = 139.6, latitude = "
     "42.0, depth_m = 5e3, strike = 0.0, dip = 20.0, rake = 90.0, slip_m = -1.0, length_m = "
     "4e4, width_m = 2e4 }\n", "scenario[0].source.slip_m", "outside the plausible range"),
    ("[[scenario]]\nname = \"a\"\nweight = -1.0\nsource = { type = \"alert\", magnitude = 7.5,"
     " longitude = 139.6, latitude = 42.0, depth_m = 1.5e4, strike = 0.0, dip = 20.0,"
     " rake = 90.0 }\n", "scenario[0].weight", "at least 0"),
    ("[[scenario]]\nname = \"a\"\nsource = { type = \"alert\", magnitude = 7.5, longitude ="
     " 139.6, latitude = 42.0, depth_m = 1.5e4, strike = 0.0, dip = 20.0, rake = 90.0 }\n"
     "[[scenario]]\nname = \"b\"\nsource = { type = \"alert\", magnitude = 7.5, longitude ="
     " 139.6, latitude = 42.0, depth_m = 1.5e4, strike = 0.0, dip = 20.0, rake = 90.0 }\n",
     "scenario[1]", "is the same as 'a'"),
])
def test_sweep_file_errors_name_the_file_and_field(tmp_path, body, field, message):
    path = write_sweep(tmp_path, body)
    with pytest.raises(InputError, match=message) as info:
        Sweep.load(path)
    assert info.value.source == str(path) and info.value.field == field


def test_the_cli_lists_a_sweep_and_reports_bad_files(tmp_path, capsys):
    assert cli.main(["sweep", str(BAY), "--list"]) == 0
    out = capsys.readouterr().out
    assert "9 scenarios" in out and "Mw7.7_x+40km" in out
    bad = write_sweep(tmp_path, "[sweep2]\n")
    assert cli.main(["sweep", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert f"error: {bad}, field 'sweep2': unknown key" in capsys.readouterr().err


# -- running on an in-process cluster ---------------------------------------------------------
@pytest.fixture(scope="module")
def client():
    with Client(processes=False, dashboard_address=":0") as c:
        yield c


@pytest.fixture(scope="module")
def small():
    """Six scenarios: Mw 7.4 and 8.0 at three positions (weights 0.6 and 0.1)."""
    sweep = Sweep.load(BAY)
    return sweep.subset([0, 1, 2, 6, 7, 8]), Region.load(REGION)


@pytest.fixture(scope="module")
def swept(small, client, tmp_path_factory):
    sweep, region = small
    out = tmp_path_factory.mktemp("swept")
    report = run_sweep(sweep, out, client, region=region, progress=False)
    assert len(report.done) == 6 and not report.failed
    return out


def arrays_by_id(store_dir: Path, town: str = "Bayside") -> dict[str, np.ndarray]:
    ds = xr.open_zarr(store_dir / "sweep.zarr", group=f"towns/{town}", consolidated=False)
    return {str(i): ds.max_depth.sel(scenario=i).values for i in ds.scenario.values}


def test_a_sweep_writes_one_zarr_dataset_per_town_chunked_by_scenario(small, swept):
    sweep, _ = small
    ds = xr.open_zarr(swept / "sweep.zarr", group="towns/Bayside", consolidated=False)
    assert ds.sizes["scenario"] == 6
    assert set(ds.scenario.values) == {s.id for s in sweep.scenarios}
    for name in ("max_depth", "max_eta", "max_speed", "arrival_time"):
        assert ds[name].dims == ("scenario", "lat", "lon")
        assert ds[name].encoding["chunks"] == (1, *ds[name].shape[1:])
        assert ds[name].dtype == np.float32
    assert ds.max_depth.attrs["units"] == "m" and ds.arrival_time.attrs["units"] == "s"
    assert ds.elevation.dims == ("lat", "lon") and "crs_wkt" in ds.crs.attrs
    by_id = {s.id: s for s in sweep.scenarios}
    for sid, magnitude, weight in zip(ds.scenario.values, ds.magnitude.values,
                                      ds.weight.values, strict=True):
        assert magnitude == by_id[str(sid)].parameters["magnitude"]
        assert weight == by_id[str(sid)].weight
    assert ds.magnitude.attrs["units"] == "1" and ds.depth_m.attrs["units"] == "m"
    # the scenarios flood the town, the larger ones more
    depth, magnitude = ds.max_depth.values, ds.magnitude.values
    assert 0.5 < np.nanmax(depth[magnitude == 7.4]) < np.nanmax(depth[magnitude == 8.0]) < 10.0
    runs = xr.open_zarr(swept / "sweep.zarr", group="runs", consolidated=False)
    assert list(runs.state.values) == ["done"] * 6
    assert np.all(runs.peak_memory_mb.values > 50) and np.all(runs.wall_s.values > 0)
    log = (swept / "sweep.log").read_text()
    assert log.count(" done ") == 6 and "6 to run, 0 already stored" in log


def test_an_interrupted_sweep_resumes_with_only_the_rest(small, swept, client, tmp_path):
    sweep, region = small
    seen = []

    def interrupt(outcome):
        seen.append(outcome.scenario_id)
        if len(seen) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep, tmp_path, client, region=region, progress=False,
                  on_outcome=interrupt)
    with SweepStore.open(tmp_path / "sweep.zarr", region, sweep.name) as store:
        assert store.done() == seen
    assert "interrupted (KeyboardInterrupt)" in (tmp_path / "sweep.log").read_text()
    report = run_sweep(sweep, tmp_path, client, region=region, progress=False)
    assert report.already_done == 2 and report.ran == 4
    assert not {o.scenario_id for o in report.done} & set(seen)
    resumed, reference = arrays_by_id(tmp_path), arrays_by_id(swept)
    assert resumed.keys() == reference.keys()
    for sid in reference:
        np.testing.assert_array_equal(resumed[sid], reference[sid])
    # a third run has nothing to do
    assert run_sweep(sweep, tmp_path, client, region=region, progress=False).ran == 0


def test_a_failing_scenario_is_recorded_and_the_sweep_goes_on(small, client, tmp_path,
                                                              monkeypatch):
    sweep, region = small
    sweep = sweep.subset([0, 1, 2])
    doomed = sweep.scenarios[1]
    real_run = sweep_worker.run

    def fragile(region_, scenario):
        if scenario.name == doomed.name:
            raise BlowUpError("bay", 312.0, (139.9, 42.0), "non-finite surface")
        return real_run(region_, scenario)

    monkeypatch.setattr(sweep_worker, "run", fragile)
    report = run_sweep(sweep, tmp_path, client, region=region, progress=False)
    assert len(report.done) == 2 and [o.name for o in report.failed] == [doomed.name]
    assert "BlowUpError: numerical blow-up on grid 'bay'" in report.failed[0].error
    with SweepStore.open(tmp_path / "sweep.zarr", region, sweep.name) as store:
        assert doomed.id not in store.done() and len(store.done()) == 2
        assert "numerical blow-up" in store.failed()[doomed.id]
    log = (tmp_path / "sweep.log").read_text()
    assert f"failed {doomed.name}" in log and "Traceback" in log
    monkeypatch.setattr(sweep_worker, "run", real_run)
    again = run_sweep(sweep, tmp_path, client, region=region, progress=False)
    assert [o.name for o in again.done] == [doomed.name] and again.already_done == 2
    with SweepStore.open(tmp_path / "sweep.zarr", region, sweep.name) as store:
        assert store.failed() == {} and len(store.done()) == 3


def test_input_warnings_reach_the_client_once_and_the_store_log_and_summary_each_time(
        tmp_path, client_warnings):
    """A second town far offshore, all sea: each scenario's run finds it on its worker.
    The client raises the warning once, naming the first scenario that had it; the
    outcomes, the store's runs/, the log and the summary keep it for both scenarios."""
    region_path = tmp_path / "region.toml"
    region_path.write_text(REGION.read_text().replace(
        '"synthetic_bay.tif"', f'"{REGION.parent / "synthetic_bay.tif"}"')
        + '\n[[town]]\nname = "Offshore"\nextent = [139.0, 139.2, 42.0, 42.2]\n')
    sweep_path = tmp_path / "sweep.toml"
    sweep_path.write_text(BAY.read_text().replace('"../grids/synthetic_bay/region.toml"',
                                                  f'"{region_path}"'))
    sweep = Sweep.load(sweep_path, duration=300.0).subset([0, 1])
    with Client(processes=False, dashboard_address=":0") as client:
        report = run_sweep(sweep, tmp_path / "out", client, progress=False)
    text = (f"{region_path.resolve()}, field 'town[1].extent': town 'Offshore' [139.0, "
            "139.2, 42.0, 42.2] has no land cell on any grid: it lies entirely at sea, so "
            "its maps can show no flooding. Check its extent")
    assert list(report.input_warnings) == [text]
    first = report.input_warnings[text][0]  # the two may finish in either order
    ids = {s.name: s.id for s in sweep.scenarios}
    assert [t for category, t in client_warnings if category is InputWarning] == [
        f"{text} (sweep: scenario {first!r}, {ids[first]}, the first with it)"]
    assert sorted(report.input_warnings[text]) == sorted(ids)
    assert [o.input_warnings for o in report.done] == [[text], [text]]
    with SweepStore.open(tmp_path / "out" / "sweep.zarr", Region.load(region_path),
                         sweep.name) as store:
        assert list(store.runs().input_warnings.values) == [text, text]
    assert (tmp_path / "out" / "sweep.log").read_text().count(f"input warning: {text}") == 2
    summary = report.summary()
    assert "input warnings: 1 different, in 2 of 2 scenarios" in summary
    assert f"    2 scenarios: {text}" in summary


def test_a_failed_scenario_keeps_the_warnings_found_before_it_failed(tmp_path, client,
                                                                    client_warnings):
    """The DEM read with vertical = "depth" and a small earthquake over the (true) deep
    sea: the set-up warns that land and sea look swapped, then refuses the source, which
    reaches no water. The warning, which says why, is kept with the failure (outcome,
    runs/, log, summary) and the client shows it."""
    region_path = tmp_path / "region.toml"
    region_path.write_text(REGION.read_text().replace(
        'path = "synthetic_bay.tif"',
        f'path = "{REGION.parent / "synthetic_bay.tif"}"\nvertical = "depth"'))
    sweep_path = write_sweep(tmp_path, EARTHQUAKE.replace("7.6", "6.5")
                             .replace("139.6", "138.9"), region=region_path)
    sweep = Sweep.load(sweep_path)
    report = run_sweep(sweep, tmp_path / "out", client, progress=False)
    [failed] = report.failed
    assert failed.error.strip().splitlines()[-1].startswith(
        f"tsunami.errors.InputError: {sweep_path}, field 'source': the alert source")
    assert "does not reach the water of grid 'sea'" in failed.error
    text = (f"{region_path.resolve()}, field 'dem[0].vertical': grid 'sea' is 83% land and "
            "65% of its open sides (west, east, south, north) is land: are land and sea "
            "swapped? A DEM of elevations (positive up) read with vertical = \"depth\", or "
            "the reverse, does this")
    assert failed.input_warnings == [text]
    assert [t for category, t in client_warnings if category is InputWarning] == [
        f"{text} (sweep: scenario {failed.name!r}, {failed.scenario_id}, the first with it)"]
    with SweepStore.open(tmp_path / "out" / "sweep.zarr", Region.load(region_path),
                         sweep.name) as store:
        runs = store.runs()
        assert list(runs.state.values) == ["failed"]
        assert list(runs.input_warnings.values) == [text]
    log = (tmp_path / "out" / "sweep.log").read_text()
    assert log.count(f"input warning: {text}") == 1
    assert log.index(f"input warning: {text}") < log.index("Traceback")
    assert "input warnings: 1 different, in 1 of 1 scenarios" in report.summary()


def test_a_store_from_before_input_warnings_were_kept_is_resumed(small, swept, tmp_path):
    """Its runs/ lacks the column: opening adds it, empty for the attempts it holds."""
    sweep, region = small
    copy = tmp_path / "sweep.zarr"
    shutil.copytree(swept / "sweep.zarr", copy)
    del zarr.open_group(copy, mode="r+")["runs"]["input_warnings"]
    scenario = sweep.scenarios[0]
    with SweepStore.open(copy, region, sweep.name) as store:
        assert list(store.runs().input_warnings.values) == [""] * 6
        store.add(sweep_worker.Outcome(scenario.id, scenario.name, "failed", error="lost",
                                       input_warnings=["one", "two"]), scenario)
        assert list(store.runs().input_warnings.values) == [""] * 6 + ["one\ntwo"]


def test_an_append_cut_short_is_rolled_back_and_the_store_is_locked(small, swept, tmp_path):
    sweep, region = small
    copy = tmp_path / "sweep.zarr"
    shutil.copytree(swept / "sweep.zarr", copy)
    town = zarr.open_group(copy, mode="r+")["towns/Bayside"]
    for name in ("max_depth", "name", "scenario"):  # grown, id not yet written
        array = town[name]
        array.resize((7, *array.shape[1:]))
    town["max_depth"][6] = np.ones(town["max_depth"].shape[1:], np.float32)
    with SweepStore.open(copy, region, sweep.name) as store:
        assert len(store.done()) == 6
        assert store.town("Bayside").sizes["scenario"] == 6
        with pytest.raises(InputError, match="another tsunami sweep is writing"):
            SweepStore.open(copy, region, sweep.name)
    other = Region.load(ROOT / "grids" / "conical_island" / "region.toml")
    with pytest.raises(InputError, match="holds results for region 'synthetic_bay'"):
        SweepStore.open(copy, other, sweep.name)


# -- probabilistic maps ---------------------------------------------------------------------
def test_exceedance_and_percentiles_by_hand():
    depth = np.array([[0.2, 0.5, 1.5, 3.0], [np.nan, 0.0, 0.4, np.nan],
                      [np.nan] * 4])
    w = [0.1, 0.2, 0.3, 0.4]
    p = exceedance_probability(depth, w, (0.3, 1.0, 2.0, 5.0))
    np.testing.assert_allclose(p[0], [0.9, 0.7, 0.4, 0.0])
    np.testing.assert_allclose(p[1], [0.3, 0.0, 0.0, 0.0])  # NaN counts as not exceeding
    assert np.all(np.isnan(p[2]))  # sea in every scenario
    q = weighted_percentile(depth, w, (10.0, 50.0, 84.0, 100.0))
    np.testing.assert_allclose(q[0], [0.2, 1.5, 3.0, 3.0])  # cumulative 0.1 0.3 0.6 1.0
    np.testing.assert_allclose(q[1], [0.0, 0.0, 0.4, 0.4])  # NaN as 0 m: 0 0 0 0.4
    # weights multiplied by a constant change nothing; equal weights are numpy's inverted CDF
    np.testing.assert_allclose(exceedance_probability(depth[:2], [1, 2, 3, 4]), p[:2, :4])
    rng = np.random.default_rng(0)
    values = rng.gamma(2.0, 1.0, (50, 7))
    np.testing.assert_allclose(weighted_percentile(values, None, (50.0, 84.0)),
                               np.percentile(values, [50, 84], axis=-1,
                                             method="inverted_cdf").T)


def test_the_maps_of_a_sweep_match_a_hand_calculation_and_honour_weights(swept):
    town = xr.open_zarr(swept / "sweep.zarr", group="towns/Bayside", consolidated=False)
    depth, weight = town.max_depth.values, town.weight.values
    assert sorted(set(weight)) == [0.1, 0.6]
    stats = statistics(town)
    for t in (0.3, 1.0, 2.0, 5.0):
        by_hand = sum(w * (np.nan_to_num(d, nan=0.0) > t) for d, w in zip(depth, weight,
                                                                           strict=True))
        by_hand = np.where(np.all(np.isnan(depth), axis=0), np.nan, by_hand / weight.sum())
        np.testing.assert_allclose(stats.exceedance_probability.sel(threshold=t).values,
                                   by_hand, rtol=1e-6)
    p1 = stats.exceedance_probability.sel(threshold=1.0)
    assert 0.0 < float(p1.max()) <= 1.0 and float(p1.min()) == 0.0
    # all weight on one scenario: probabilities are that scenario's 0/1 and every
    # percentile is its depth
    only = np.zeros(weight.size)
    only[3] = 1.0
    single = statistics(town, only)
    np.testing.assert_array_equal(
        single.exceedance_probability.sel(threshold=1.0).values,
        np.where(np.isnan(depth[3]), np.nan, (np.nan_to_num(depth[3]) > 1.0).astype(float)))
    np.testing.assert_allclose(single.depth_percentile.sel(percentile=50.0).values, depth[3])
    np.testing.assert_allclose(stats.max_depth.values, np.fmax.reduce(depth, axis=0))
    assert float(stats.depth_percentile.sel(percentile=95.0).max()) <= float(
        stats.max_depth.max())


def test_published_maps_are_cogs_in_a_stac_item(small, swept, tmp_path):
    sweep, region = small
    with SweepStore.open(swept / "sweep.zarr", region, sweep.name) as store:
        folder = publish_sweep(store, region, tmp_path, event_id="bay_hazard")
    assert folder == tmp_path / "bay_hazard" / "forecast-001"
    item = json.loads((folder / "item.json").read_text())
    assert item["properties"]["tsunami:source_type"] == "scenario sweep"
    assert "6 scenarios" in item["properties"]["description"]
    assets = item["assets"]
    for t in ("0.3", "1", "2", "5"):
        asset = assets[f"Bayside_exceedance_{t}m_6679"]
        assert asset["tsunami:threshold_m"] == float(t)
        assert asset["raster:bands"][0]["unit"] == "1" and asset["proj:code"] == "EPSG:6679"
    assert assets["Bayside_depth_p84_6679"]["tsunami:percentile"] == 84.0
    assert {"Bayside_max_depth_6679", "Bayside_depth_class_6679", "Bayside_quicklook_png",
            "Bayside_exceedance_png", "sweep_Bayside_nc"} <= set(assets)
    path = folder / "Bayside_exceedance_1m_6679.tif"
    assert cog_validate(str(path))[0]
    with rasterio.open(path) as src:
        values = src.read(1)
        tags = src.tags()
        assert src.nodata == -9999.0 and src.crs.to_epsg() == 6679
    assert tags["event_id"] == "bay_hazard" and tags["scenarios"] == "6"
    assert tags["units"] == "1" and tags["resampling"] == "max"
    valid = values[values != -9999.0]
    assert valid.min() >= 0.0 and valid.max() <= 1.0
    # reprojected by maximum: the layer keeps the largest probability of the model cells
    stats = xr.open_dataset(folder / "sweep_Bayside.nc")
    assert valid.max() == pytest.approx(
        float(stats.exceedance_probability.sel(threshold=1.0).max()), abs=1e-6)
