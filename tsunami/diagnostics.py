"""Diagnostics used by validation and reports: runup, snapshots, Aida's K and kappa."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def runup(model, min_depth: float | None = None, mask: np.ndarray | None = None) -> float:
    """Maximum runup (m above the still level): the highest ground ever covered by water.

    The runup of a cell is its maximum surface elevation, counted on initially dry land
    where the maximum depth exceeded ``min_depth`` (default: the model's dry depth).
    ``mask`` restricts the search (e.g. one valley). NaN if no land was wetted.
    """
    eta_max, wetted = _wetted_land(model, min_depth, mask)
    return float(eta_max[wetted].max()) if wetted.any() else float("nan")


def waterline_runup(model, min_depth: float | None = None,
                    mask: np.ndarray | None = None) -> float:
    """Maximum runup (m above the still level) as the waterline reached: the highest
    initially dry ground whose maximum depth exceeded ``min_depth``.

    A laboratory's runup is the waterline (the elevation of the flood's tip, read on the
    slope); :func:`runup` takes the highest surface over wetted land, which on a fine grid
    can be a bore piled up in a valley below the tip. NaN if no land was wetted.
    """
    _, wetted = _wetted_land(model, min_depth, mask)
    return float(-model.h[wetted].min()) if wetted.any() else float("nan")


def _wetted_land(model, min_depth: float | None, mask: np.ndarray | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Maximum surface (float64) and the initially dry cells (within ``mask``) whose
    maximum depth exceeded ``min_depth`` (default: the model's dry depth)."""
    min_depth = model.dry_depth if min_depth is None else min_depth
    eta_max = model.eta_max.astype(np.float64)
    wetted = ~model.initially_wet & np.isfinite(eta_max) & (eta_max + model.h > min_depth)
    if mask is not None:
        wetted &= mask
    return eta_max, wetted


class SnapshotRecorder:
    """Records ``extract(model)`` at requested times, interpolated linearly in time.

    A Simulation callback. ``extract`` returns an array (e.g. the surface along a flume).
    """

    def __init__(self, model, times: Sequence[float], extract: Callable) -> None:
        self.times = sorted(float(t) for t in times)
        self.extract = extract
        self.snapshots: dict[float, np.ndarray] = {}
        self._prev_time = model.time
        self._prev = np.asarray(extract(model), dtype=np.float64)

    def __call__(self, model) -> None:
        current = None
        for t in self.times:
            if t in self.snapshots or not (self._prev_time <= t <= model.time):
                continue
            if current is None:
                current = np.asarray(self.extract(model), dtype=np.float64)
            w = (t - self._prev_time) / (model.time - self._prev_time)
            both = np.isfinite(self._prev) & np.isfinite(current)
            value = np.where(both, (1 - w) * self._prev + w * current,
                             current if w >= 0.5 else self._prev)
            self.snapshots[t] = value
        self._prev_time = model.time
        self._prev = current if current is not None else np.asarray(
            self.extract(model), dtype=np.float64)


def aida(observed: np.ndarray, computed: np.ndarray) -> tuple[float, float]:
    """Aida's (1978) geometric-mean ratio K and spread kappa of observed/computed.

    log K = mean(log K_i), log kappa = std(log K_i) with K_i = observed_i / computed_i.
    K > 1 means the model under-predicts. Pairs with a non-positive value are skipped.
    """
    o = np.asarray(observed, dtype=float)
    c = np.asarray(computed, dtype=float)
    ok = (o > 0) & (c > 0) & np.isfinite(o) & np.isfinite(c)
    if not ok.any():
        return float("nan"), float("nan")
    logs = np.log(o[ok] / c[ok])
    log_k = logs.mean()
    log_kappa = np.sqrt(max(np.mean(logs**2) - log_k**2, 0.0))
    return float(np.exp(log_k)), float(np.exp(log_kappa))
