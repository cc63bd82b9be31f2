"""The task a Dask worker runs for one scenario: a full nested run reduced to town maxima.

:func:`simulate` runs the scenario on the region (every grid, two-way nesting, no gauge
histories) and returns only what a sweep keeps: per town, the maximum inundation depth,
surface, flow speed and arrival time on the town's finest-available lattice, plus the
static ground elevation. Everything else (the model, the per-grid fields) is dropped
before the result leaves the worker, so a worker's memory is that of one run and the
result is a few MB. Errors are caught and returned with their traceback: a failing
scenario never stops a sweep. The input checks' warnings (a town at sea, DEM holes
filled) are returned too, for a failed scenario those found before it failed: raised
here they would reach only the worker's log.
"""

from __future__ import annotations

import dataclasses
import resource
import socket
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import xarray as xr

from tsunami.errors import findings_of
from tsunami.region import Region
from tsunami.runner import run
from tsunami.scenario import Scenario

#: Fields kept per scenario (each a maximum over the run, or the first arrival).
FIELDS = ("max_depth", "max_eta", "max_speed", "arrival_time")
#: Fields the same for every scenario of a region (stored once per town).
STATIC = ("elevation", "source_grid")

_regions: dict[tuple[str, float], Region] = {}
_lock = threading.Lock()


@dataclass
class Outcome:
    """What one scenario produced: ``towns`` (town name -> Dataset of :data:`FIELDS` and
    :data:`STATIC`) when ``state`` is "done", the ``error`` (with traceback) when
    "failed"; wall and CPU seconds, the worker's peak memory (MB, resident set high-water
    mark of its process), the Numba threads it used and where it ran; ``input_warnings``:
    the run's input warnings (:attr:`~tsunami.runner.RunResult.input_warnings`), for the
    client to show and store."""

    scenario_id: str
    name: str
    state: str
    towns: dict[str, xr.Dataset] = field(default_factory=dict)
    error: str = ""
    wall_s: float = float("nan")
    cpu_s: float = float("nan")
    setup_s: float = float("nan")
    simulation_s: float = float("nan")
    peak_memory_mb: float = float("nan")
    numba_threads: int = 0
    worker: str = ""
    input_warnings: list[str] = field(default_factory=list)


def region(path: str | Path) -> Region:
    """The region of ``path``, loaded once per process (its DEMs are then read once per
    worker, not once per scenario) and reloaded if the file changes."""
    path = Path(path).resolve()
    key = (str(path), path.stat().st_mtime)
    with _lock:
        if key not in _regions:
            _regions.clear()
            _regions[key] = Region.load(path)
        return _regions[key]


def simulate(region_path: str, scenario: Scenario, scenario_id: str,
             numba_threads: int | None = None) -> Outcome:
    """Run ``scenario`` on the region at ``region_path``; never raises (module doc).
    ``numba_threads`` caps the Numba threads of this task (the setting is per thread, so
    tasks running side by side in one worker each keep to their share)."""
    wall, cpu = time.perf_counter(), time.process_time()
    outcome = Outcome(scenario_id, scenario.name, "failed", worker=_where())
    if numba_threads is not None:
        numba.set_num_threads(max(1, min(numba_threads, numba.config.NUMBA_NUM_THREADS)))
    outcome.numba_threads = numba.get_num_threads()
    try:
        # No gauges: a sweep keeps maxima only, not time series.
        quiet = dataclasses.replace(region(region_path), gauges=[])
        result = run(quiet, scenario)
        outcome.towns = {name: reduce_town(ds) for name, ds in result.towns.items()}
        outcome.setup_s = result.timings["setup_s"]
        outcome.simulation_s = result.timings["simulation_s"]
        outcome.input_warnings = result.input_warnings
        outcome.state = "done"
        del result
    except Exception as exc:  # recorded in the store and the log, and the sweep goes on
        outcome.error = traceback.format_exc()
        # What the checks found before the failure often explains it (land and sea swapped).
        outcome.input_warnings = [str(f) for f in findings_of(exc)]
    outcome.wall_s = time.perf_counter() - wall
    outcome.cpu_s = time.process_time() - cpu
    outcome.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return outcome


#: Dataset attributes that hold for every scenario of a region (the others describe one
#: scenario and are not kept).
REGION_ATTRS = ("Conventions", "source", "region", "region_file", "town", "source_grids")


def reduce_town(ds: xr.Dataset) -> xr.Dataset:
    """A town's merged fields cut to what a sweep stores, floats as float32."""
    keep = [v for v in (*FIELDS, *STATIC) if v in ds]
    out = ds[[*keep, "crs"]]
    out.attrs = {k: ds.attrs[k] for k in REGION_ATTRS if k in ds.attrs}
    for name in keep:
        if out[name].dtype.kind == "f":
            out[name] = out[name].astype(np.float32)
    return out


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except (ImportError, ValueError):
        return socket.gethostname()
