"""Town fan-out: the region's recorded boundary forcing drives each town's grids alone.

On the two-town synthetic coast (grids/synthetic_bay/two_towns.toml): replaying the
forcing recorded in a two-way run into town tasks that build their own grids reproduces
that run's town fields and gauge series bit for bit, for an instantaneous and a kinematic
rupture (so the record/replay machinery and the towns' own set-up add nothing); the
fan-out proper (towns one-way from the region) agrees with the two-way run within stated
bounds, fields and gauges; and two towns run as tasks of an in-process Dask cluster give
the same fields and gauges as the stages run directly, written as a two-way run's. A
town's task's input warnings (a town at sea) reach the client and the run's summary; a
task's warnings found before it failed, and those of the towns' tasks finished by then,
reach the user before its error, and the towns whose tasks it cancelled are named.
"""

import dataclasses
import functools
import json
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tsunami import Region, Scenario, Simulation, cli, cluster
from tsunami.errors import InputError, InputWarning
from tsunami.fanout import (
    BoundaryRecorder,
    Window,
    regional_stage,
    run_fanout,
    town_of_grids,
    town_stage,
    town_subtrees,
)
from tsunami.fields import merge_finest
from tsunami.gauges import GaugeRecorder, merge
from tsunami.gauges import write_csv as gauge_csv
from tsunami.runner import build_model, grid_fields, run, town_figures, write_outputs

ROOT = Path(__file__).resolve().parents[1]
TWO_TOWNS = ROOT / "grids" / "synthetic_bay" / "two_towns.toml"
QUAKE = ROOT / "scenarios" / "synthetic_bay_quake.toml"
GRIDS = {"Bayside": "bay", "Northshore": "north"}  # each town's grid


@pytest.fixture(scope="module")
def region():
    return Region.load(TWO_TOWNS)


@pytest.fixture(scope="module")
def scenario():
    return Scenario.load(QUAKE)


@pytest.fixture(scope="module")
def two_way(region, scenario):
    return run(region, scenario)


@pytest.fixture(scope="module")
def regional(region, scenario):
    return regional_stage(region, scenario)


@pytest.fixture(scope="module")
def town_results(regional):
    """Both towns run directly (no Dask)."""
    return {town: town_stage(regional, town) for town in regional.tasks}


@pytest.fixture(scope="module")
def fanned(region, regional, town_results):
    """Merged town fields of the fan-out."""
    fields = dict(regional.fields)
    for result in town_results.values():
        fields.update(result.fields)
    return {t.name: merge_finest(fields, regional.grids, t.name, t.extent)
            for t in region.towns}


@pytest.fixture(scope="module")
def kinematic(tmp_path_factory):
    """The quake rupturing from its hypocentre at 2.5 km/s, each patch over 20 s."""
    law = 'law = "wells_coppersmith1994_reverse"'
    text = QUAKE.read_text().replace(law, law + "\nrupture_velocity = 2500.0\n"
                                     "rise_time = 20.0")
    path = tmp_path_factory.mktemp("kinematic") / "quake.toml"
    path.write_text(text)
    scenario = Scenario.load(path)
    assert scenario.source.kinematic
    return scenario


def test_each_town_gets_the_sub_tree_below_what_towns_share(region):
    assert town_subtrees(region) == {"Bayside": "bay", "Northshore": "north"}
    okushiri = Region.load(ROOT / "grids" / "okushiri1993" / "region.toml")
    assert town_subtrees(okushiri) == {"Aonae": "Aonae_30m", "Monai": "Monai_30m"}
    one_town = Region.load(ROOT / "grids" / "synthetic_bay" / "region.toml")
    assert town_subtrees(one_town) == {"Bayside": "coast"}
    assert town_subtrees(one_town, {"Bayside": "bay"}) == {"Bayside": "bay"}
    with pytest.raises(InputError, match="not below"):
        town_subtrees(one_town, {"Bayside": "sea"})


def test_the_coast_benchmark_region_has_fourteen_disjoint_towns_on_the_shore():
    """grids/okushiri1993/coast_towns.toml (``tsunami bench --fan-out``): every town is
    its own sub-tree (a 30 m grid under the island grid), the towns' grids do not
    overlap, and each 10 m grid holds both sea and land."""
    coast = Region.load(ROOT / "grids" / "okushiri1993" / "coast_towns.toml")
    subtrees = town_subtrees(coast)
    assert len(subtrees) == 14
    assert town_of_grids(coast, subtrees) == {
        g.name: g.name.split("_")[0] for g in coast.grids if g.name.startswith("Coast")}
    boxes = [coast.grid(top).bounds for top in subtrees.values()]
    for i, (w, s, e, n) in enumerate(boxes):
        for w2, s2, e2, n2 in boxes[i + 1:]:
            assert e < w2 or e2 < w or n < s2 or n2 < s
    model = build_model(coast, Scenario.load(ROOT / "scenarios" / "okushiri1993_hno.toml"),
                        callbacks=[])
    for town in subtrees:
        depth = model.by_name[f"{town}_10m"].h
        assert (depth > 0).mean() > 0.1 and (depth < 0).mean() > 0.1


def _replay_two_way(region, scenario, regional):
    """A full two-way run with the coast grid's forcing recorded at the towns' edges;
    each town's task (from ``regional``) replays it. Returns the two-way nest, its
    gauge series and the towns' results."""
    callbacks = []
    full = build_model(region, scenario, callbacks=callbacks)
    coast = full.by_name["coast"]
    windows = {town: Window.of(coast.grid, full.by_name[name].grid, 3)
               for town, name in GRIDS.items()}
    recorder = BoundaryRecorder(coast, windows)
    full.after_step.append(recorder)
    gauges = GaugeRecorder(full, region.gauges, scenario.output.gauge_interval)
    root_times = []
    Simulation(full, scenario.duration,
               callbacks=[*callbacks, gauges, lambda model: root_times.append(model.time)]).run()
    results = {}
    for town in GRIDS:
        task = regional.tasks[town]
        # The parent's depth under the town as the two-way nest had it before putting
        # the town's means there (the regional stage never does).
        recording = dataclasses.replace(recorder.recordings[town],
                                        still_depth=task.recording.still_depth)
        results[town] = town_stage(dataclasses.replace(
            task, scenario=scenario, recording=recording, root_times=np.array(root_times)))
    return full, gauges.to_dataset(), results


def _assert_replayed_exactly(full, two_way_gauges, results):
    for town, name in GRIDS.items():
        reference = grid_fields([full.by_name[name]], {}, full.covered)[name]
        for field in ("max_eta", "max_depth", "max_speed", "arrival_time"):
            np.testing.assert_array_equal(results[town].fields[name][field].values,
                                          reference[field].values, err_msg=field)
        series = results[town].gauges
        assert set(series.grid.values) == {name}
        expected = two_way_gauges.sel(gauge=series.gauge.values)
        np.testing.assert_allclose(series.time.values, expected.time.values, rtol=0,
                                   atol=1e-6)
        for var in ("eta", "depth", "speed"):
            np.testing.assert_array_equal(series[var].values, expected[var].values)


def test_replaying_a_two_way_runs_forcing_reproduces_its_towns_exactly(region, scenario,
                                                                       regional):
    """Forcing recorded at the coast grid during a full two-way run, replayed into town
    tasks that build their own grids: the towns' fields and gauge series are identical
    to the two-way run's."""
    _assert_replayed_exactly(*_replay_two_way(region, scenario, regional))


def test_a_kinematic_rupture_acts_on_the_towns_grids_as_in_the_two_way_run(
        region, regional, kinematic):
    """The rupture deforms the sea floor under the bay grid too (its final uplift
    there reaches several centimetres); a town's task applies it to its own grids at the
    two-way run's times, so replaying a kinematic two-way run's forcing is exact too."""
    callbacks = []
    build_model(region, kinematic, callbacks=callbacks)
    uplift = callbacks[0].static_uplift("bay")
    assert np.abs(uplift).max() > 0.05
    _assert_replayed_exactly(*_replay_two_way(region, kinematic, regional))


# Measured on this case: max depth +1.1 % / +0.2 %, flooded area -0.2 % / 0.0 %, runup
# +2.4 % / +0.2 % (Bayside / Northshore); first arrival identical. (With the kinematic
# rupture: +0.9 % / +0.1 %, +0.4 % / +0.4 %, +2.0 % / +0.1 %, identical.)
BOUNDS = {"max_inundation_depth_m": 0.03, "flooded_area_km2": 0.03, "runup_m": 0.05}


@pytest.mark.parametrize("town", ["Bayside", "Northshore"])
def test_fanned_out_towns_agree_with_the_two_way_run(two_way, fanned, town):
    reference, fan = town_figures(two_way.towns[town]), town_figures(fanned[town])
    assert reference["max_inundation_depth_m"] > 2.0 and reference["flooded_area_km2"] > 5.0
    for key, bound in BOUNDS.items():
        assert abs(fan[key] / reference[key] - 1) <= bound, (key, fan[key], reference[key])
    # Within one step of the coast grid (2.4 s).
    assert abs(fan["first_arrival_min"] - reference["first_arrival_min"]) * 60 <= 2.5
    # Cell by cell: the flooded cells are the same but for a thin fringe.
    a = np.nan_to_num(two_way.towns[town].max_depth.values) > 0.01
    b = np.nan_to_num(fanned[town].max_depth.values) > 0.01
    assert np.sum(a ^ b) <= 0.03 * np.sum(a)


# Measured on this case (gauge every 5 s, 301 samples): the largest difference of the
# surface is 0.01 % (offshore, sea grid), 0.19 % (shelf, coast grid), 0.64 % and 0.42 %
# (bay_head, bay_plain: bay grid) and 0.58 % (north_shore: north grid) of each gauge's
# largest |eta|; every peak at the same sample; largest depths within 13 mm (0.6 %).
# With the kinematic rupture of test_a_kinematic_rupture_...: at most 0.63 %, peaks at
# most one sample apart.
GAUGE_BOUND = 0.02


def _fanned_gauges(region, regional, town_results):
    return merge([regional.gauges, *(r.gauges for r in town_results.values())],
                 [g.name for g in region.gauges])


def test_fanned_out_gauges_agree_with_the_two_way_run(region, two_way, regional,
                                                      town_results):
    """Each gauge is recorded by the task that runs its finest grid (regional for sea and
    coast, the town's for bay and north); merged, the series match the two-way run's."""
    series, reference = _fanned_gauges(region, regional, town_results), two_way.gauges
    assert list(series.gauge.values) == list(reference.gauge.values)
    assert list(series.grid.values) == list(reference.grid.values) == [
        "sea", "coast", "bay", "bay", "north"]
    np.testing.assert_allclose(series.time.values, reference.time.values, rtol=0, atol=1e-6)
    for name in reference.gauge.values:
        a, b = reference.sel(gauge=name), series.sel(gauge=name)
        eta_a, eta_b = a.eta.values, b.eta.values
        amplitude = np.nanmax(np.abs(eta_a))
        assert amplitude > 1.0, name  # the wave reaches every gauge
        np.testing.assert_array_equal(np.isfinite(eta_a), np.isfinite(eta_b))  # wet alike
        assert np.nanmax(np.abs(eta_a - eta_b)) <= GAUGE_BOUND * amplitude, name
        assert abs(np.nanargmax(eta_a) - np.nanargmax(eta_b)) <= 1, name
        assert abs(b.depth.max() - a.depth.max()) <= GAUGE_BOUND * a.depth.max(), name


def test_a_town_runs_as_far_as_the_region_when_its_last_step_passes_the_duration(
        region, scenario, regional):
    """The region's outermost grid ends its last step after the duration; the town's
    parent, a third of its step, passes the duration sooner: the town still runs to
    where the region stopped, and samples its gauges at every step of the region."""
    step = float(regional.tasks["Bayside"].root_times[0])
    every_step = dataclasses.replace(scenario.output, gauge_interval=0.0)
    short = dataclasses.replace(scenario, duration=10.5 * step, output=every_step)
    stage = regional_stage(region, short)
    assert stage.tasks["Bayside"].root_times[-1] == pytest.approx(11 * step)
    towns = [town_stage(stage, town) for town in stage.tasks]
    series = merge([stage.gauges, *(t.gauges for t in towns)], [g.name for g in region.gauges])
    assert series.sizes["time"] == 12  # the initial state and 11 steps
    assert float(series.time[-1]) == pytest.approx(11 * step)


def test_two_towns_run_as_tasks_of_an_in_process_cluster(region, scenario, fanned, two_way,
                                                         regional, town_results, tmp_path):
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        result, report = run_fanout(region, scenario, client)
    assert set(report.towns) == {"Bayside", "Northshore"}
    assert all(t.worker.startswith("inproc://") for t in report.towns.values())
    assert set(result.fields) == {"sea", "coast", "bay", "north"}
    for town in ("Bayside", "Northshore"):
        for field in ("max_depth", "max_eta", "arrival_time"):
            np.testing.assert_array_equal(result.towns[town][field].values,
                                          fanned[town][field].values)
    assert report.recording_mb > 0 and "Bayside" in report.summary()
    # The gauges as the stages recorded them, written as a two-way run writes its own.
    series = result.gauges
    np.testing.assert_array_equal(series.eta.values,
                                  _fanned_gauges(region, regional, town_results).eta.values)
    for var in ("eta", "depth", "speed", "time", "gauge_x", "grid"):
        assert series[var].attrs == two_way.gauges[var].attrs, var
    assert series.attrs.keys() == two_way.gauges.attrs.keys()
    write_outputs(result, tmp_path / "fan")
    header = (tmp_path / "fan" / "gauges.csv").read_text().splitlines()[0]
    assert header == gauge_csv(two_way.gauges, tmp_path / "two.csv").read_text().splitlines()[0]
    assert xr.open_dataset(tmp_path / "fan" / "gauges.nc").sizes == two_way.gauges.sizes


def test_a_town_at_sea_is_reported_by_the_client_and_in_the_run_summary(region, scenario,
                                                                        tmp_path,
                                                                        client_warnings):
    """Northshore moved off the coast inside its grid (all of it 13 m deep or more): its
    task finds no land; the client warns, naming the town, the field and the task, once,
    and the result and run.json keep the warning."""
    from distributed import Client, LocalCluster

    at_sea = dataclasses.replace(region, towns=[
        region.towns[0], dataclasses.replace(region.towns[1], extent=(139.88, 139.92, 42.1,
                                                                      42.18))])
    short = dataclasses.replace(scenario, duration=30.0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        result, report = run_fanout(at_sea, short, client)
    expected = (f"{TWO_TOWNS}, field 'town[1].extent': town 'Northshore' [139.88, 139.92, "
                "42.1, 42.18] has no land cell on any grid: it lies entirely at sea, so its "
                "maps can show no flooding. Check its extent (fan-out: town 'Northshore''s "
                "task)")
    assert [text for category, text in client_warnings
            if category is InputWarning] == [expected]
    assert result.input_warnings == [expected]
    assert [str(f) for f in report.towns["Northshore"].findings] == [expected[:expected.index(
        " (fan-out")]]
    assert report.towns["Bayside"].findings == []
    write_outputs(result, tmp_path / "out")
    summary = json.loads((tmp_path / "out" / "run.json").read_text())
    assert summary["input_warnings"] == [expected]


def test_when_a_town_fails_the_warnings_of_towns_done_by_then_are_shown_before_its_error(
        region, scenario, monkeypatch, client_warnings):
    """Bayside's task (first in town order) fails with an input error and a warning of
    its own, after Northshore's task, moved out to sea, has finished, while Southport's
    (a third town, on a grid of its own south of the bay) is still running: the client
    warns Bayside's warning and Northshore's, once each, naming the town, then that
    Southport's task was cancelled unfinished (its warnings unknown), then raises
    Bayside's error. (Before, the client stopped at Bayside's error: Northshore's
    warning was lost; and it did not say which towns it cancelled.)"""
    from distributed import Client, Event, LocalCluster, Variable, secede, wait

    from tsunami.errors import Finding, findings_kept
    from tsunami.fanout import run as fanout_run

    north = region.spec("north")
    three = dataclasses.replace(
        region,
        grids=[*region.grids, dataclasses.replace(north, name="south", field="grid[4]",
                                                  extent=(139.88, 140.04, 41.82, 41.9))],
        towns=[region.towns[0],
               dataclasses.replace(region.towns[1], extent=(139.88, 139.92, 42.1, 42.18)),
               dataclasses.replace(region.towns[1], name="Southport",
                                   extent=(139.88, 140.04, 41.82, 41.9))])
    real_stage = fanout_run.town_stage

    def town_stage(task):  # (on a worker: what it shares with the test goes through Dask)
        if task.town == "Northshore":
            return real_stage(task)
        secede()  # Northshore may be queued on this worker
        if task.town == "Southport":  # running until the client has given up on it
            Event("release").wait(timeout=60)
            raise AssertionError("Southport's task should have been cancelled")
        # Northshore's future as the client sees it: finished before this error reaches it.
        wait(Variable("Northshore").get(timeout=60), timeout=60)
        with findings_kept([Finding("bay.tif", "dem", "a hole filled")]):
            raise InputError("bay.tif", "dem", "a hole touches the water")

    class Recording:
        """The client, handing each town's task's future (the regional stage's first,
        then the towns' in order) to the tasks through a Dask variable."""

        def __init__(self, client):
            self.client, self.towns = client, [None] + [t.name for t in three.towns]

        def __getattr__(self, name):
            return getattr(self.client, name)

        def submit(self, *args, **kwargs):
            future = self.client.submit(*args, **kwargs)
            town = self.towns.pop(0)
            if town:
                Variable(town, client=self.client).set(future)
            return future

    monkeypatch.setattr(fanout_run, "town_stage", town_stage)
    short = dataclasses.replace(scenario, duration=30.0)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as client:
        try:
            with pytest.raises(InputError, match="a hole touches the water"):
                run_fanout(three, short, Recording(client))
        finally:  # Southport's task ends (its result unused) before the cluster closes
            Event("release", client=client).set()
    assert [text for category, text in client_warnings if category is InputWarning] == [
        "bay.tif, field 'dem': a hole filled (fan-out: town 'Bayside''s task)",
        f"{TWO_TOWNS}, field 'town[1].extent': town 'Northshore' [139.88, 139.92, 42.1, "
        "42.18] has no land cell on any grid: it lies entirely at sea, so its maps can show "
        "no flooding. Check its extent (fan-out: town 'Northshore''s task)",
        "not finished, cancelled after town 'Bayside''s task failed: the tasks of towns "
        "'Southport'; their input warnings, if any, are not shown (fan-out)"]


def test_a_tasks_warning_found_before_it_failed_is_shown_before_the_error(tmp_path, capsys,
                                                                          monkeypatch,
                                                                          client_warnings):
    """tsunami run --fan-out with the DEM read with vertical = "depth" and a small
    earthquake over the (true) deep sea: the regional stage warns that land and sea look
    swapped, then refuses the source, which reaches no water. The warning, which says
    why, is shown once, naming the task, before the error, which names the file and the
    field (exit 2)."""
    region_path, scenario_path = tmp_path / "region.toml", tmp_path / "scenario.toml"
    region_path.write_text(TWO_TOWNS.read_text().replace(
        'path = "synthetic_bay.tif"',
        f'path = "{TWO_TOWNS.parent / "synthetic_bay.tif"}"\nvertical = "depth"'))
    scenario_path.write_text(QUAKE.read_text().replace("magnitude = 7.9", "magnitude = 6.5")
                             .replace("longitude = 139.6", "longitude = 138.9"))
    # The Dask workers as threads of this process: a cluster of processes takes seconds
    # to start (Dask hands an exception back pickled either way).
    monkeypatch.setattr(cluster, "dask_client", functools.partial(
        cluster.dask_client, processes=False, dashboard_address=":0"))
    code = cli.main(["run", str(region_path), str(scenario_path), "--fan-out", "--workers",
                     "1", "--out", str(tmp_path / "out"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2, err
    warning = (f"{region_path.resolve()}, field 'dem[0].vertical': grid 'sea' is 83% land "
               "and 65% of its open sides (west, east, south, north) is land: are land and "
               "sea swapped? A DEM of elevations (positive up) read with vertical = "
               "\"depth\", or the reverse, does this (fan-out: regional stage)")
    assert [t for category, t in client_warnings if category is InputWarning] == [warning]
    lines = [line for line in err.splitlines() if line.startswith(("warning:", "error:"))]
    assert len(lines) == 2 and lines[0] == f"warning: {warning}", err
    assert lines[1].startswith(f"error: {scenario_path.resolve()}, field 'source': the alert "
                               "source"), err
    assert "does not reach the water of grid 'sea'" in lines[1]
