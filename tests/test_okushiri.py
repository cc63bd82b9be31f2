"""The shipped Okushiri 1993 demo region: nest structure, consistent bathymetry, a short run.

The full 60-minute run is timed by `tsunami bench --demo` and checked against the surveyed
runup by `tsunami validate okushiri_field` (make validate).
"""

from pathlib import Path

import numpy as np
import pytest

from tsunami.nesting import NestedModel
from tsunami.region import Region
from tsunami.runner import build_model, run
from tsunami.scenario import Scenario
from tsunami.simulation import Simulation

ROOT = Path(__file__).resolve().parents[1]
REGION = ROOT / "grids" / "okushiri1993" / "region.toml"
SCENARIO = ROOT / "scenarios" / "okushiri1993_hno.toml"


@pytest.fixture(scope="module")
def nest():
    return build_model(Region.load(REGION), Scenario.load(SCENARIO))


def test_levels_refine_by_three_down_to_about_ten_metres(nest):
    assert isinstance(nest, NestedModel)
    names = [m.grid.name for m in nest.models]
    assert names == ["OK24", "OK08", "OK03", "Aonae_30m", "Monai_30m", "Aonae_10m",
                     "Monai_10m"]
    for c in nest.couplings:
        assert c.ratio == 3
        assert np.isclose(c.parent.grid.dx, 3 * c.child.grid.dx)
    for name in ("Aonae_10m", "Monai_10m"):
        grid = nest.by_name[name].grid
        assert np.isclose(grid.dx * 3600, 8 / 27) and 5 < grid.min_spacing() < 10


def test_parent_depth_under_every_child_is_its_mean_and_land_is_dry(nest):
    for c in nest.couplings:
        r = c.ratio
        block = c.child.h.astype(float).reshape(c.rows, r, c.cols, r).mean(axis=(1, 3))
        under = c.parent.h[c.row0:c.row0 + c.rows, c.col0:c.col0 + c.cols]
        assert np.allclose(under, block, atol=1e-3), c.child.grid.name
    for m in nest.models:  # (a parent cell under a child holds the child's mean depth)
        own_land = (m.h < 0) & ~nest.covered(m)
        assert m.depth[own_land].max() < 1e-4, m.grid.name  # float32 rounding only


def test_the_derived_8_arcsecond_level_lies_between_its_neighbours(nest):
    ok08 = nest.by_name["OK08"]
    assert ok08.h.max() > 3000 and (ok08.h < 0).any()  # deep sea and the island


def test_the_source_subsides_aonae_and_the_first_minute_is_stable(nest):
    harbour = nest.by_name["Aonae_10m"]
    grid = harbour.grid
    row, col = (int(v) for v in np.round(grid.index_of(139.4605, 42.05)))
    assert -1.2 < float(harbour.eta[row, col]) < -0.6  # HNO1993 lowers the sea at Aonae
    Simulation(nest, 60.0, health_interval=5).run()
    assert nest.time >= 60.0


def test_towns_merge_the_finest_grids(tmp_path):
    region = Region.load(REGION)
    scenario = Scenario.load(SCENARIO)
    scenario.duration = 30.0
    result = run(region, scenario)
    town = result.towns["Aonae"]
    assert town.attrs["source_grids"].split()[-1] == "Aonae_10m"
    assert np.isclose(float(town.lon[1] - town.lon[0]) * 3600, 8 / 27)
    used = set(np.unique(town.source_grid.values))
    assert len(used) >= 2  # the 10 m grid and the 30 m grid around it
    summary = result.town_summary()["Aonae"]
    assert np.isnan(summary["first_arrival_min"])  # no wave reaches Aonae in 30 s
    assert summary["flooded_area_km2"] == 0.0


def test_the_valley_head_level_nests_in_monai_10m_around_the_surveyed_31_7_m():
    """`tsunami validate okushiri_monai_3m`'s extra level: a third of Monai_10m's spacing,
    at least two of its cells inside it on every side, around the survey's highest point
    (its geometry only; the run is in make validate)."""
    from tsunami.validation.okushiri import survey_points, with_valley_head_level

    region = with_valley_head_level(Region.load(REGION))
    head, monai = region.grid("Monai_valley_head"), region.grid("Monai_10m")
    assert np.isclose(3 * head.dx, monai.dx) and np.isclose(3 * head.dy, monai.dy)
    assert 2 < head.min_spacing() < 3.5
    (hw, hs, he, hn), (mw, ms, me, mn) = head.bounds, monai.bounds
    assert hw >= mw + 2 * monai.dx and he <= me - 2 * monai.dx
    assert hs >= ms + 2 * monai.dy and hn <= mn - 2 * monai.dy
    points = survey_points()
    lon, lat = points[np.argmax(points[:, 2]), :2]
    assert head.contains(lon, lat) and points[:, 2].max() == 31.7
    assert region.spec("Monai_valley_head").scheme == "fv2"
