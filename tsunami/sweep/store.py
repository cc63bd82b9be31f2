"""The Zarr store of a sweep: one Dataset per town with a ``scenario`` dimension.

Layout (Zarr v3, readable with ``xarray.open_zarr(path, group=..., consolidated=False)``)::

    sweep.zarr/                  attributes: sweep, region, region file digest, version
      towns/<town>/              max_depth, max_eta, max_speed, arrival_time
                                 (scenario, y, x), chunked one scenario per chunk;
                                 elevation, source_grid (y, x); coordinates: scenario
                                 (the id), name, weight and the scenario parameters
      runs/                      one row per attempt (dimension ``attempt``): scenario
                                 id, name, state ("done"/"failed"), error, input
                                 warnings (one a line, "" for none), wall and CPU
                                 seconds, peak memory, worker, finish time

Only the client process writes, one scenario at a time. An append resizes and writes
every array of a town in turn and writes the scenario id last: the id is the commit
mark. Zarr writes each chunk and metadata document atomically (temporary file and
rename), so an append cut short by a kill leaves at most rows without an id, which
:meth:`SweepStore.open` truncates away; towns are appended in a fixed order and cut to
the scenarios every town holds. A lock file keeps a second sweep process out.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

from tsunami import __version__
from tsunami.errors import InputError
from tsunami.region import Region
from tsunami.sweep.scenarios import COORDINATE_UNITS, COORDINATES, SweepScenario
from tsunami.sweep.worker import FIELDS, Outcome

RUN_TEXT = ("scenario", "name", "state", "error", "input_warnings", "worker",
            "finished_at")
RUN_NUMBERS = ("wall_s", "cpu_s", "setup_s", "simulation_s", "peak_memory_mb",
               "numba_threads")
RUN_UNITS = {"wall_s": "s", "cpu_s": "s", "setup_s": "s", "simulation_s": "s",
             "peak_memory_mb": "MB", "numba_threads": "1"}


def region_digest(region: Region) -> str:
    """SHA-256 of the region file and every file it reads (DEMs, Manning rasters)."""
    digest = hashlib.sha256(region.path.read_bytes())
    files = [d.path for d in region.dems] + [g.manning for g in region.grids
                                             if isinstance(g.manning, Path)]
    for path in files:
        with open(path, "rb") as f:
            for block in iter(lambda f=f: f.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


class SweepStore:
    """A sweep's results on disk (module doc). Open with :meth:`open`; close (or use as a
    context manager) to release the lock."""

    def __init__(self, path: Path, lock_fd: int) -> None:
        self.path = path
        self._lock_fd = lock_fd
        self.root = zarr.open_group(path, mode="r+")

    @classmethod
    def open(cls, path: str | Path, region: Region, sweep_name: str) -> SweepStore:
        """Open (or create) the store at ``path`` for a sweep on ``region``; refuses a
        store made for another region or another version of its files, or one another
        process is writing. Repairs the end of an interrupted append."""
        path = Path(path)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InputError(path, None, f"cannot create the sweep store: {exc}") from None
        lock_fd = os.open(path / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(lock_fd)
            raise InputError(path, None, "another tsunami sweep is writing to this store; "
                             "wait for it or give another --out") from None
        try:
            digest = region_digest(region)
            if not (path / "zarr.json").exists():
                root = zarr.open_group(path, mode="a", zarr_format=3)
                root.attrs.update({
                    "title": f"tsunami scenario sweep {sweep_name}",
                    "sweep": sweep_name, "region": region.name,
                    "region_file": str(region.path), "region_sha256": digest,
                    "model_version": __version__,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "comment": "one group per town under towns/; attempts under runs/",
                })
            store = cls(path, lock_fd)
            made_for = store.root.attrs.get("region_sha256")
            if made_for != digest:
                raise InputError(path, None, f"this store holds results for region "
                                 f"{store.root.attrs.get('region')!r} "
                                 f"({store.root.attrs.get('region_file')}) as its files were "
                                 "then; the region or its DEMs differ now: give another --out")
            if store.root.attrs.get("sweep") != sweep_name:  # renamed in its file
                store.root.attrs["sweep"] = sweep_name
            store.repair()
            return store
        except BaseException:
            os.close(lock_fd)
            raise

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the lock
            self._lock_fd = None

    def __enter__(self) -> SweepStore:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- reading -----------------------------------------------------------------------
    @property
    def towns(self) -> list[str]:
        if "towns" not in self.root:
            return []
        return sorted(name for name, _ in self.root["towns"].groups())

    def done(self) -> list[str]:
        """Ids of the scenarios stored (in every town), in the order they were stored."""
        towns = self.towns
        if not towns:
            return []
        return [str(v) for v in self.root[f"towns/{towns[0]}/scenario"][:]]

    def town(self, name: str) -> xr.Dataset:
        """A town's Dataset: fields lazy (Dask arrays, one scenario per chunk), the
        scenario coordinates loaded."""
        ds = xr.open_zarr(self.path, group=f"towns/{name}", consolidated=False)
        return ds.assign_coords({k: ds[k].load() for k, v in ds.coords.items()
                                 if v.dims == ("scenario",)})

    def runs(self) -> xr.Dataset:
        """Every attempt: state, error, timings, memory (empty without any)."""
        if "runs" not in self.root:
            return xr.Dataset()
        return xr.open_zarr(self.path, group="runs", consolidated=False).load()

    def failed(self) -> dict[str, str]:
        """Scenario id -> error of the scenarios whose latest attempt failed and that
        are not stored."""
        runs = self.runs()
        if not runs.sizes:
            return {}
        done = set(self.done())
        latest = {}
        for sid, state, error in zip(runs.scenario.values, runs.state.values,
                                     runs.error.values, strict=True):
            latest[str(sid)] = (str(state), str(error))
        return {k: e for k, (s, e) in latest.items() if s == "failed" and k not in done}

    # -- writing -----------------------------------------------------------------------
    def add(self, outcome: Outcome, scenario: SweepScenario) -> None:
        """Store a finished scenario's town fields (when done) and its attempt record."""
        if outcome.state == "done":
            for name in sorted(outcome.towns):
                self._add_town(name, outcome.towns[name], scenario)
        self._add_run(outcome)

    def _add_town(self, name: str, ds: xr.Dataset, scenario: SweepScenario) -> None:
        row = {v: ds[v].values for v in FIELDS if v in ds}
        row["name"] = scenario.name
        row["weight"] = scenario.weight
        row.update({k: float(scenario.parameters[k]) for k in COORDINATES})
        group = f"towns/{name}"
        if group not in self.root:
            ds = ds.copy()
            for v in FIELDS:
                if v in ds:
                    ds[v] = ds[v].expand_dims("scenario")
            coords = {"scenario": ("scenario", np.array([""], dtype=object)),
                      "name": ("scenario", np.array([scenario.name], dtype=object),
                               {"long_name": "scenario name"}),
                      "weight": ("scenario", [scenario.weight], {
                          "long_name": "relative weight of the scenario", "units": "1"})}
            coords.update({k: ("scenario", [row[k]], {"units": COORDINATE_UNITS[k]})
                           for k in COORDINATES})
            ds = ds.assign_coords(coords)
            ds["scenario"].attrs["long_name"] = "scenario id (hash of what sets its result)"
            encoding = {v: {"chunks": (1, *ds[v].shape[1:])} for v in FIELDS if v in ds}
            ds.attrs["sweep_store"] = "appended one scenario at a time; scenario is the commit"
            ds.to_zarr(self.path, group=group, mode="w-", consolidated=False,
                       encoding=encoding)
            self.root[f"{group}/scenario"][0] = scenario.id  # commit
            return
        self._append(self.root[group], [*row, "scenario"], {**row, "scenario": scenario.id})

    def _add_run(self, outcome: Outcome) -> None:
        row = {"scenario": outcome.scenario_id, "name": outcome.name, "state": outcome.state,
               "error": outcome.error, "input_warnings": "\n".join(outcome.input_warnings),
               "worker": outcome.worker,
               "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        row.update({k: float(getattr(outcome, k)) for k in RUN_NUMBERS})
        if "runs" not in self.root:
            data = {k: ("attempt", np.array([row[k]], dtype=object)) for k in RUN_TEXT}
            data["scenario"] = ("attempt", np.array([""], dtype=object))
            data.update({k: ("attempt", [row[k]], {"units": RUN_UNITS[k]})
                         for k in RUN_NUMBERS})
            ds = xr.Dataset(data, attrs={"title": "scenario attempts of the sweep"})
            ds.to_zarr(self.path, group="runs", mode="w-", consolidated=False,
                       encoding={k: {"chunks": (4096,)} for k in ds.data_vars})
            self.root["runs/scenario"][0] = outcome.scenario_id
            return
        order = [k for k in (*RUN_TEXT, *RUN_NUMBERS) if k != "scenario"] + ["scenario"]
        self._append(self.root["runs"], order, row)

    @staticmethod
    def _append(group: zarr.Group, order: list[str], row: dict) -> None:
        """Grow every array of ``group`` named in ``order`` by one row along its first
        axis and write it, in that order (the last one is the commit mark)."""
        for name in order:
            array = group[name]
            n = array.shape[0]
            array.resize((n + 1, *array.shape[1:]))
            array[n] = row[name]

    # -- repair ------------------------------------------------------------------------
    def repair(self) -> None:
        """Drop rows an interrupted append left uncommitted (module doc)."""
        towns = self.towns
        if towns:
            rows = min(_committed(self.root[f"towns/{t}"]) for t in towns)
            for t in towns:
                if rows:
                    _truncate(self.root[f"towns/{t}"], rows)
                else:  # (maybe cut short while being created) made again by add()
                    del self.root[f"towns/{t}"]
        if "runs" in self.root:
            rows = _committed(self.root["runs"])
            if rows:
                _truncate(self.root["runs"], rows)
                _add_missing_text(self.root["runs"], rows)
            else:
                del self.root["runs"]


def _committed(group: zarr.Group) -> int:
    """Rows of a group before the first one without its id (its commit mark)."""
    if "scenario" not in group:
        return 0
    ids = group["scenario"][:]
    lengths = {a.shape[0] for _, a in group.arrays() if a.metadata.dimension_names and
               a.metadata.dimension_names[0] == group["scenario"].metadata.dimension_names[0]}
    empty = np.flatnonzero(ids == "")
    return min([*lengths, int(empty[0]) if empty.size else ids.size])


def _add_missing_text(runs: zarr.Group, rows: int) -> None:
    """Give a store made by an older version the text columns it lacks (``""`` for its
    attempts), so that a sweep started then can be finished now."""
    like = runs["error"]
    for name in RUN_TEXT:
        if name not in runs:
            runs.create_array(name, shape=(rows,), dtype=like.dtype, chunks=like.chunks,
                              dimension_names=like.metadata.dimension_names, fill_value="")


def _truncate(group: zarr.Group, rows: int) -> None:
    dim = group["scenario"].metadata.dimension_names[0]
    for _, array in group.arrays():
        names = array.metadata.dimension_names
        if names and names[0] == dim and array.shape[0] != rows:
            array.resize((rows, *array.shape[1:]))
