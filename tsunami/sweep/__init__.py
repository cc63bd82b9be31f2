"""Scenario sweeps: many scenarios over one region on dask.distributed, probabilistic maps.

Data flow: a sweep file (:class:`Sweep`) -> scenario set (:mod:`tsunami.sweep.scenarios`:
explicit scenarios, parameter grids around an earthquake, stochastic slip from
:mod:`tsunami.sweep.slip`) -> one Dask task per scenario (:func:`tsunami.sweep.worker.
simulate`: a full nested run reduced on the worker to town maxima) -> Zarr store with a
``scenario`` dimension (:class:`SweepStore`, appended as results arrive, resumable) ->
probabilistic maps (:mod:`tsunami.sweep.probability`: exceedance probabilities, weighted
percentiles, envelope) -> published COGs and STAC (:func:`publish_sweep`).

    from tsunami.sweep import Sweep, dask_client, run_sweep, publish_sweep

    sweep = Sweep.load("scenarios/okushiri1993_sweep.toml")
    with dask_client(workers=2) as client:
        report = run_sweep(sweep, "out/sweep", client)
"""

from tsunami.cluster import dask_client
from tsunami.sweep.config import Sweep
from tsunami.sweep.probability import (
    PERCENTILES,
    THRESHOLDS,
    envelope,
    exceedance_probability,
    statistics,
    weighted_percentile,
)
from tsunami.sweep.products import publish_sweep, sweep_statistics
from tsunami.sweep.run import SweepReport, run_sweep
from tsunami.sweep.scenarios import (
    Earthquake,
    ScenarioSettings,
    SweepScenario,
    earthquake_scenarios,
    parameter_grid,
    scenario_id,
)
from tsunami.sweep.slip import SlipField, stochastic_fault
from tsunami.sweep.store import SweepStore

__all__ = [
    "PERCENTILES",
    "THRESHOLDS",
    "Earthquake",
    "ScenarioSettings",
    "SlipField",
    "Sweep",
    "SweepReport",
    "SweepScenario",
    "SweepStore",
    "dask_client",
    "earthquake_scenarios",
    "envelope",
    "exceedance_probability",
    "parameter_grid",
    "publish_sweep",
    "run_sweep",
    "scenario_id",
    "statistics",
    "stochastic_fault",
    "sweep_statistics",
    "weighted_percentile",
]
