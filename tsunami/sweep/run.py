"""Running a sweep on dask.distributed: one task per scenario, results appended as they come.

The client submits every scenario not yet in the store as one task
(:func:`tsunami.sweep.worker.simulate`), then takes results as they finish, appends each
to the Zarr store (:class:`~tsunami.sweep.store.SweepStore`), writes a line to the log
and moves the progress bar. A failed scenario is recorded (store and log) and the sweep
goes on; an interruption (Ctrl-C, a killed client) cancels the tasks still pending and
leaves the store with every scenario finished so far, so the next run does only the rest.
A scenario's input warnings (a town at sea, DEM holes filled: found on its worker) go to
the store and the log with it, a failed scenario's (those found before it failed) too;
the client raises each different one once, as an :class:`~tsunami.errors.InputWarning`
naming the first scenario that had it, and the report counts them.

Workers: a :class:`~distributed.LocalCluster` of ``workers`` processes with one Dask
thread each (a scenario is one task) and ``NUMBA_NUM_THREADS`` set so that workers times
Numba threads fill the machine's cores; or any running cluster (``scheduler`` address,
e.g. from dask-jobqueue on an HPC system or dask-gateway), whose workers need this
package installed and the region's files at the same path.
"""

from __future__ import annotations

import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from tsunami.errors import InputError, InputWarning
from tsunami.region import Region
from tsunami.scenario import FaultSource
from tsunami.sweep.config import Sweep
from tsunami.sweep.store import SweepStore
from tsunami.sweep.worker import Outcome, simulate

STORE = "sweep.zarr"
LOG = "sweep.log"


@dataclass
class SweepReport:
    """What a :func:`run_sweep` call did."""

    store: Path
    log: Path
    total: int  # scenarios in the sweep
    already_done: int  # found in the store
    done: list[Outcome] = field(default_factory=list)  # finished now (fields dropped)
    failed: list[Outcome] = field(default_factory=list)
    wall_s: float = 0.0
    #: Each different input warning -> the names of the scenarios run now that had it.
    input_warnings: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ran(self) -> int:
        return len(self.done) + len(self.failed)

    @property
    def cpu_s_per_scenario(self) -> float:
        runs = self.done or self.failed
        return sum(o.cpu_s for o in runs) / len(runs) if runs else float("nan")

    @property
    def peak_memory_mb(self) -> float:
        """Largest peak resident memory a worker reported."""
        return max((o.peak_memory_mb for o in self.done + self.failed), default=float("nan"))

    def summary(self) -> str:
        lines = [f"{self.ran} scenarios run in {self.wall_s:.1f} s wall ({len(self.done)} done, "
                 f"{len(self.failed)} failed; {self.already_done} of {self.total} were "
                 "already in the store)"]
        if self.ran:
            lines.append(f"  CPU per scenario {self.cpu_s_per_scenario:.1f} s, peak worker "
                         f"memory {self.peak_memory_mb:.0f} MB")
        for o in self.failed:
            lines.append(f"  failed: {o.name} ({o.scenario_id}): "
                         f"{o.error.strip().splitlines()[-1] if o.error else 'unknown'}")
        if self.input_warnings:
            warned = sum(bool(o.input_warnings) for o in self.done + self.failed)
            lines.append(f"  input warnings: {len(self.input_warnings)} different, in {warned} "
                         f"of {self.ran} scenarios (each scenario's in the store's runs/ and "
                         "the log):")
            lines += [f"    {len(names)} scenario{'s' * (len(names) > 1)}: {text}"
                      for text, names in self.input_warnings.items()]
        lines.append(f"store: {self.store}\nlog: {self.log}")
        return "\n".join(lines)


def check(sweep: Sweep, region: Region) -> None:
    """Refuse, before any work, what no scenario could run: a region without towns, a
    fault source on a region without a CRS."""
    if not region.towns:
        raise InputError(region.path, "town", "a sweep stores town maxima: the region needs "
                         "at least one [[town]]")
    if region.crs is None:
        for where, s in zip(sweep.sources, sweep.scenarios, strict=True):
            if isinstance(s.scenario.source, FaultSource):
                raise InputError(sweep.path, where, f"an earthquake source needs a "
                                 f"georeferenced region; region {region.name!r} is a local "
                                 "frame")


def numba_threads(client) -> int:
    """Numba threads per task: with every worker on this machine (a LocalCluster, an
    in-process cluster), its cores shared among all the Dask threads; on a remote
    cluster 1 (give workers one Dask thread per core, the best throughput for many
    independent runs)."""
    from distributed.utils import get_ip

    here = {"127.0.0.1", "localhost", socket.gethostname(), get_ip()}
    workers = client.scheduler_info(n_workers=-1)["workers"]
    if workers and all(address.startswith("inproc://") or info.get("host") in here
                       for address, info in workers.items()):
        return max(1, (os.cpu_count() or 1) // sum(w["nthreads"] for w in workers.values()))
    return 1


def run_sweep(sweep: Sweep, out_dir: str | Path, client, *, region: Region | None = None,
              progress: bool = True, threads: int | None = None,
              on_outcome: Callable[[Outcome], None] | None = None) -> SweepReport:
    """Run the scenarios of ``sweep`` not yet stored in ``out_dir/sweep.zarr`` on the
    Dask ``client``; returns what was done. ``threads``: Numba threads per scenario
    (default :func:`numba_threads`). ``on_outcome`` is called after each result is
    stored."""
    region = region or Region.load(sweep.region_path)
    check(sweep, region)
    out_dir = Path(out_dir)
    start = time.perf_counter()
    with SweepStore.open(out_dir / STORE, region, sweep.name) as store, \
            open(out_dir / LOG, "a") as log:
        done = set(store.done())
        todo = [s for s in sweep.scenarios if s.id not in done]
        report = SweepReport(store.path, out_dir / LOG, len(sweep.scenarios),
                             len(sweep.scenarios) - len(todo))
        _log(log, f"sweep {sweep.name} ({sweep.path}) on region {region.name}: "
                  f"{len(todo)} to run, {report.already_done} already stored")
        if progress:
            print(f"Dask dashboard: {client.dashboard_link}", file=sys.stderr)
        if not todo:
            return report
        from distributed import as_completed

        threads = threads or numba_threads(client)
        futures = client.map(simulate, [str(region.path)] * len(todo),
                             [s.scenario for s in todo], [s.id for s in todo],
                             [threads] * len(todo), pure=False)
        owner = {f.key: s for f, s in zip(futures, todo, strict=True)}
        pending = set(futures)
        bar = tqdm(total=len(todo), desc=f"sweep {sweep.name}", unit="scenario",
                   file=sys.stderr, disable=not progress, dynamic_ncols=True)
        try:
            for future in as_completed(futures):
                pending.discard(future)
                scenario = owner[future.key]
                try:
                    outcome = future.result()
                except Exception as exc:  # the worker died (killed, out of memory...)
                    outcome = Outcome(scenario.id, scenario.name, "failed",
                                      error=f"{type(exc).__name__}: {exc}")
                future.release()
                store.add(outcome, scenario)
                outcome.towns = {}  # stored: do not hold the fields
                (report.done if outcome.state == "done" else report.failed).append(outcome)
                _log(log, f"{outcome.state} {scenario.name} ({scenario.id}) on "
                          f"{outcome.worker}: {outcome.wall_s:.1f} s wall, "
                          f"{outcome.cpu_s:.1f} s CPU, {outcome.peak_memory_mb:.0f} MB"
                          + "".join(f"\n  input warning: {w}" for w in outcome.input_warnings)
                          + (f"\n{outcome.error}" if outcome.error else ""))
                _warn(report, outcome)
                bar.set_postfix(failed=len(report.failed), refresh=False)
                bar.update()
                if on_outcome is not None:
                    on_outcome(outcome)
        except BaseException as exc:
            client.cancel(list(pending))
            _log(log, f"interrupted ({type(exc).__name__}) with {len(pending)} scenarios "
                      "not run; run again to complete the sweep")
            raise
        finally:
            bar.close()
            report.wall_s = time.perf_counter() - start
        _log(log, f"finished: {len(report.done)} done, {len(report.failed)} failed in "
                  f"{report.wall_s:.1f} s")
        return report


def _warn(report: SweepReport, outcome: Outcome) -> None:
    """Raise the outcome's input warnings not yet raised in this sweep, naming it: a
    region's warning (a town at sea) is the same in every scenario, and thousands of
    copies would hide the others."""
    for text in outcome.input_warnings:
        names = report.input_warnings.setdefault(text, [])
        if not names:
            warnings.warn(f"{text} (sweep: scenario {outcome.name!r}, {outcome.scenario_id}, "
                          "the first with it)", InputWarning, stacklevel=3)
        names.append(outcome.name)


def _log(log, message: str) -> None:
    log.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n")
    log.flush()
