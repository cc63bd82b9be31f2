"""Gauges: named points where time series of the surface are recorded."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from tsunami.atomic import atomic_path


@dataclass(frozen=True)
class Gauge:
    """A named output point in the grid CRS (x/lon, y/lat)."""

    name: str
    x: float
    y: float


class GaugeRecorder:
    """Samples surface elevation, water depth and flow speed at gauges.

    A callback for :class:`tsunami.simulation.Simulation`. Each gauge reads the finest
    grid that contains it, interpolating bilinearly between the wet cells around it.
    Samples are taken at the first model time at or after each multiple of ``interval``
    (s); ``interval=0`` records every step.
    """

    def __init__(self, model, gauges: list[Gauge], interval: float = 0.0) -> None:
        self.gauges = list(gauges)
        self.interval = float(interval)
        self._next = 0.0
        self.times: list[float] = []
        self._eta: list[np.ndarray] = []
        self._depth: list[np.ndarray] = []
        self._speed: list[np.ndarray] = []
        self._probes = []
        for gauge in self.gauges:
            inside = [m for m in model.models if m.grid.contains(gauge.x, gauge.y)]
            if not inside:
                raise ValueError(f"gauge {gauge.name!r} at ({gauge.x}, {gauge.y}) lies outside "
                                 "every grid")
            finest = min(inside, key=lambda m: m.grid.min_spacing())
            self._probes.append((finest, *_bilinear(finest.grid, gauge.x, gauge.y)))
        self.grid_names = [p[0].grid.name for p in self._probes]
        self.sample()

    def __call__(self, model) -> None:
        if model.time >= self._next - 1e-9:
            self.sample()

    def sample(self) -> None:
        etas, depths, speeds = [], [], []
        time = None
        for model, rows, cols, weights in self._probes:
            time = model.time
            eta = model.eta[rows, cols].astype(np.float64)
            depth = eta + model.h[rows, cols]
            wet = depth > model.dry_depth
            w = np.where(wet, weights, 0.0)
            total = w.sum()
            if total > 0:
                u, v = _cell_velocity(model, rows, cols, depth)
                etas.append(float(np.dot(w, eta) / total))
                depths.append(float(np.dot(weights, np.maximum(depth, 0.0))))
                speeds.append(float(np.dot(w, np.hypot(u, v)) / total))
            else:
                etas.append(np.nan)
                depths.append(0.0)
                speeds.append(0.0)
        self.times.append(float(time))
        self._eta.append(np.array(etas))
        self._depth.append(np.array(depths))
        self._speed.append(np.array(speeds))
        if self.interval > 0:
            while self._next <= time + 1e-9:
                self._next += self.interval

    def to_dataset(self, attrs: dict | None = None) -> xr.Dataset:
        """The series as a Dataset with dims (time, gauge)."""
        names = [g.name for g in self.gauges]
        ds = xr.Dataset(
            {
                "eta": (("time", "gauge"), np.array(self._eta).reshape(-1, len(names)), {
                    "long_name": "water surface elevation above the still-water level "
                                 "(NaN while dry)", "units": "m"}),
                "depth": (("time", "gauge"), np.array(self._depth).reshape(-1, len(names)), {
                    "long_name": "total water depth", "units": "m"}),
                "speed": (("time", "gauge"), np.array(self._speed).reshape(-1, len(names)), {
                    "long_name": "flow speed", "units": "m s-1"}),
            },
            coords={
                "time": ("time", np.array(self.times), {
                    "long_name": "time after the start of the simulation", "units": "s"}),
                "gauge": ("gauge", names),
                "gauge_x": ("gauge", [g.x for g in self.gauges], {
                    "long_name": "gauge x or longitude in the grid CRS"}),
                "gauge_y": ("gauge", [g.y for g in self.gauges], {
                    "long_name": "gauge y or latitude in the grid CRS"}),
                "grid": ("gauge", self.grid_names, {"long_name": "grid sampled"}),
            },
            attrs={"title": "tsunami gauge time series", "Conventions": "CF-1.8"},
        )
        ds.attrs.update(attrs or {})
        return ds

    def write_csv(self, path: str | Path) -> Path:
        """Write the series as CSV (:func:`write_csv`), atomically."""
        return write_csv(self.to_dataset(), path)


def write_csv(ds: xr.Dataset, path: str | Path) -> Path:
    """Write a gauge Dataset (:meth:`GaugeRecorder.to_dataset`) as ``time_s`` and per
    gauge ``<gauge>_eta_m``, ``<gauge>_depth_m`` and ``<gauge>_speed_m_s`` columns
    (empty while dry), atomically."""
    path = Path(path)
    names = [str(g) for g in ds["gauge"].values]
    series = [ds[v].values for v in ("eta", "depth", "speed")]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        header = ["time_s"]
        for name in names:
            header += [f"{name}_eta_m", f"{name}_depth_m", f"{name}_speed_m_s"]
        writer.writerow(header)
        for k, t in enumerate(ds["time"].values):
            row = [f"{t:.3f}"]
            for n in range(len(names)):
                row += [_fmt(values[k, n]) for values in series]
            writer.writerow(row)
    return path


def merge(parts: list[xr.Dataset], order: list[str]) -> xr.Dataset:
    """One gauge Dataset from several recorded over the same run on different grids
    (:mod:`tsunami.fanout`: the region's and each town's), gauges in ``order``.

    Every part must have sampled at the same model times (to 1 ms): each samples at the
    first step of the region's outermost grid at or after each multiple of the interval.
    """
    first = parts[0]
    for part in parts[1:]:
        if part.sizes["time"] != first.sizes["time"] or not np.allclose(
                part["time"].values, first["time"].values, rtol=0.0, atol=1e-3):
            raise ValueError("gauge series sampled at different times cannot be merged "
                             f"({part.sizes['time']} and {first.sizes['time']} samples)")
    aligned = [p.assign_coords(time=first["time"]) for p in parts]
    merged = xr.concat(aligned, dim="gauge", data_vars="minimal", coords="minimal",
                       compat="override", combine_attrs="override")
    return merged.sel(gauge=order)


def _fmt(value: float) -> str:
    return "" if not np.isfinite(value) else f"{value:.5f}"


def _bilinear(grid, x: float, y: float):
    """Indices (4 cells) and bilinear weights of a point inside ``grid``."""
    r, c = grid.index_of(x, y)
    r = min(max(r, 0.0), grid.ny - 1.0)
    c = min(max(c, 0.0), grid.nx - 1.0)
    r0, c0 = min(int(np.floor(r)), grid.ny - 2), min(int(np.floor(c)), grid.nx - 2)
    fr, fc = r - r0, c - c0
    rows = np.array([r0, r0, r0 + 1, r0 + 1])
    cols = np.array([c0, c0 + 1, c0, c0 + 1])
    weights = np.array([(1 - fr) * (1 - fc), (1 - fr) * fc, fr * (1 - fc), fr * fc])
    return rows, cols, weights


def _cell_velocity(model, rows, cols, depth):
    safe = np.where(depth > model.speed_depth, depth, np.inf)
    u = 0.5 * (model.M[rows, cols] + model.M[rows, cols + 1]) / safe
    v = 0.5 * (model.N[rows, cols] + model.N[rows + 1, cols]) / safe
    return u, v
