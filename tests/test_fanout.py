"""Town fan-out: the region's recorded boundary forcing drives each town's grids alone.

On the two-town synthetic coast (grids/synthetic_bay/two_towns.toml): replaying the
forcing recorded in a two-way run reproduces that run's town fields bit for bit (so the
record/replay machinery adds nothing); the fan-out proper (towns one-way from the
region) agrees with the two-way run within stated bounds; and two towns run as tasks of
an in-process Dask cluster give the same fields as the stages run directly.
"""

from pathlib import Path

import numpy as np
import pytest

from tsunami import Region, Scenario, Simulation
from tsunami.errors import InputError
from tsunami.fanout import (
    BoundaryRecorder,
    TownTask,
    Window,
    regional_stage,
    run_fanout,
    town_of_grids,
    town_stage,
    town_subtrees,
)
from tsunami.fields import merge_finest
from tsunami.runner import build_model, run, town_figures

ROOT = Path(__file__).resolve().parents[1]
TWO_TOWNS = ROOT / "grids" / "synthetic_bay" / "two_towns.toml"
QUAKE = ROOT / "scenarios" / "synthetic_bay_quake.toml"


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
def fanned(region, scenario):
    """Regional stage and both towns run directly (no Dask); merged town fields."""
    regional = regional_stage(region, scenario)
    fields = dict(regional.fields)
    for town in regional.tasks:
        fields.update(town_stage(regional, town).fields)
    return {t.name: merge_finest(fields, regional.grids, t.name, t.extent)
            for t in region.towns}


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


def test_replaying_a_two_way_runs_forcing_reproduces_its_towns_exactly(region, scenario,
                                                                       two_way):
    """Forcing recorded at the coast grid during a full two-way run, replayed into
    freshly built town grids: the towns' fields are identical to the two-way run's."""
    full = build_model(region, scenario, callbacks=[])
    coast = full.by_name["coast"]
    windows = {name: Window.of(coast, full.by_name[name], 3) for name in ("bay", "north")}
    recorder = BoundaryRecorder(coast, windows)
    full.after_step.append(recorder)
    Simulation(full, scenario.duration).run()
    fresh = build_model(region, scenario, callbacks=[])
    for name in ("bay", "north"):
        task = TownTask(name, [fresh.by_name[name]], [(name, "coast", 3)],
                        recorder.recordings[name], scenario.duration, {})
        result = town_stage(task)
        for field in ("max_eta", "max_depth", "max_speed", "arrival_time"):
            np.testing.assert_array_equal(result.fields[name][field].values,
                                          two_way.fields[name][field].values, err_msg=field)


# Measured on this case: max depth +0.4 % / -0.7 %, flooded area -0.4 % / -0.4 %, runup
# +2.4 % / -0.7 % (Bayside / Northshore); first arrival identical.
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


def test_two_towns_run_as_tasks_of_an_in_process_cluster(region, scenario, fanned):
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
