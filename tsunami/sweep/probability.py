"""Probabilistic maps from a set of scenarios: exceedance, percentiles, envelope.

Given per-scenario maximum inundation depths ``d_s`` and scenario weights ``w_s`` (relative,
normalised here to sum to 1 over the scenarios given):

- exceedance probability: ``P(d > t) = sum_s w_s [d_s > t]`` for each threshold t (m);
- weighted percentile q: the smallest depth ``d_(k)`` (depths sorted) whose cumulative
  weight reaches q / 100 (the inverted empirical distribution; with equal weights the same
  as ``numpy.percentile(..., method="inverted_cdf")``);
- envelope: the largest depth of any scenario (the worst case).

NaN marks a cell with no depth in a scenario (sea, or outside the grids): it counts as not
exceeding any threshold, as 0 m for the percentiles, and a cell NaN in every scenario is
NaN in every map. The functions take the scenario axis last (NumPy arrays of any shape)
and are wrapped for xarray, where Dask computes them block by block over space with all
scenarios in each block.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import xarray as xr

#: Depth thresholds (m) of the published exceedance maps (the 0.3 m at which people can
#: no longer walk, 1 m, 2 m at which houses are heavily damaged, 5 m).
THRESHOLDS = (0.3, 1.0, 2.0, 5.0)
#: Percentiles of the published depth maps: median, about mean + 1 sigma, 95 %.
PERCENTILES = (50.0, 84.0, 95.0)


def normalised_weights(weights: Sequence[float] | np.ndarray | None, count: int) -> np.ndarray:
    """Weights summing to 1 (equal without ``weights``); they must be >= 0, finite and
    not all zero."""
    if weights is None:
        return np.full(count, 1.0 / count)
    w = np.asarray(weights, dtype=np.float64)
    if w.shape != (count,):
        raise ValueError(f"expected {count} weights, got shape {w.shape}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, >= 0 and not all zero")
    return w / w.sum()


def exceedance_probability(depth: np.ndarray, weights=None,
                           thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """P(depth > t) over the last axis (scenarios) for each threshold: shape
    ``depth.shape[:-1] + (len(thresholds),)``."""
    depth = np.asarray(depth)
    w = normalised_weights(weights, depth.shape[-1])
    out = np.stack([(np.nan_to_num(depth, nan=-np.inf) > t) @ w for t in thresholds],
                   axis=-1)
    return np.where(_all_missing(depth)[..., None], np.nan, out)


def weighted_percentile(depth: np.ndarray, weights=None,
                        percentiles: Sequence[float] = PERCENTILES) -> np.ndarray:
    """Weighted percentiles over the last axis (module doc): shape
    ``depth.shape[:-1] + (len(percentiles),)``."""
    depth = np.asarray(depth)
    if any(not 0.0 <= q <= 100.0 for q in percentiles):
        raise ValueError(f"percentiles must lie within 0...100, got {percentiles}")
    w = normalised_weights(weights, depth.shape[-1])
    values = np.nan_to_num(depth, nan=0.0)
    order = np.argsort(values, axis=-1, kind="stable")
    ranked = np.take_along_axis(values, order, axis=-1)
    cumulative = np.cumsum(w[order], axis=-1)
    out = []
    for q in percentiles:
        # Round-off in the cumulative sum must not skip the value that reaches q exactly.
        index = np.sum(cumulative < q / 100.0 - 1e-12, axis=-1, keepdims=True)
        index = np.minimum(index, depth.shape[-1] - 1)
        out.append(np.take_along_axis(ranked, index, axis=-1)[..., 0])
    return np.where(_all_missing(depth)[..., None], np.nan, np.stack(out, axis=-1))


def envelope(depth: np.ndarray) -> np.ndarray:
    """The largest depth over the last axis (NaN where every scenario is NaN)."""
    depth = np.asarray(depth)
    filled = np.where(np.isnan(depth), -np.inf, depth).max(axis=-1)
    return np.where(_all_missing(depth), np.nan, filled)


def _all_missing(depth: np.ndarray) -> np.ndarray:
    return np.all(np.isnan(depth), axis=-1)


def statistics(town: xr.Dataset, weights: xr.DataArray | np.ndarray | None = None, *,
               thresholds: Sequence[float] = THRESHOLDS,
               percentiles: Sequence[float] = PERCENTILES) -> xr.Dataset:
    """Probabilistic maps of a sweep town Dataset (``max_depth`` and the other fields
    along ``scenario``): ``exceedance_probability`` (threshold, y, x),
    ``depth_percentile`` (percentile, y, x) and the envelopes ``max_depth``,
    ``max_eta``, ``max_speed`` (largest over scenarios) and ``arrival_time`` (earliest),
    with ``elevation`` and ``crs`` as in a forecast's town fields. ``weights`` default
    to the town's ``weight`` coordinate."""
    if weights is None:
        weights = town["weight"].values
    w = normalised_weights(np.asarray(weights), town.sizes["scenario"])
    depth = town["max_depth"]
    spatial = [d for d in depth.dims if d != "scenario"]
    # All scenarios in every block, blocks of rows sized to about 64 M values.
    rows = max(1, int(64e6 // max(1, depth.size // depth.sizes[spatial[0]])))
    depth = depth.chunk({"scenario": -1, spatial[0]: rows, spatial[1]: -1})
    exceed = xr.apply_ufunc(
        exceedance_probability, depth, input_core_dims=[["scenario"]],
        output_core_dims=[["threshold"]], dask="parallelized", output_dtypes=[np.float32],
        kwargs={"weights": w, "thresholds": tuple(thresholds)},
        dask_gufunc_kwargs={"output_sizes": {"threshold": len(thresholds)}})
    ranked = xr.apply_ufunc(
        weighted_percentile, depth, input_core_dims=[["scenario"]],
        output_core_dims=[["percentile"]], dask="parallelized", output_dtypes=[np.float32],
        kwargs={"weights": w, "percentiles": tuple(percentiles)},
        dask_gufunc_kwargs={"output_sizes": {"percentile": len(percentiles)}})
    n = town.sizes["scenario"]
    out = xr.Dataset(
        {"exceedance_probability": exceed.transpose("threshold", *spatial).astype(np.float32)
            .assign_attrs(long_name="probability that the maximum inundation depth exceeds "
                          "the threshold", units="1"),
         "depth_percentile": ranked.transpose("percentile", *spatial).astype(np.float32)
            .assign_attrs(long_name="weighted percentile of the maximum inundation depth "
                          "over the scenarios", units="m")},
        coords={"threshold": ("threshold", np.asarray(thresholds, float),
                              {"long_name": "inundation depth threshold", "units": "m"}),
                "percentile": ("percentile", np.asarray(percentiles, float),
                               {"long_name": "percentile", "units": "%"})})
    for name in ("max_depth", "max_eta", "max_speed"):
        out[name] = town[name].max("scenario").astype(np.float32).assign_attrs(
            dict(town[name].attrs, long_name=f"{town[name].attrs.get('long_name', name)}, "
                 f"largest over {n} scenarios (envelope)"))
    out["arrival_time"] = town["arrival_time"].min("scenario").astype(np.float32).assign_attrs(
        dict(town["arrival_time"].attrs, long_name="earliest tsunami arrival time over "
             f"{n} scenarios"))
    for name in ("elevation", "source_grid", "crs"):
        if name in town:
            out[name] = town[name]
    for name in out.data_vars:
        if name != "crs":
            out[name].attrs["grid_mapping"] = "crs"
    out.attrs.update({k: v for k, v in town.attrs.items() if k != "sweep_store"})
    out.attrs.update(title=f"probabilistic inundation maps of {town.attrs.get('town', '')} "
                     f"over {n} scenarios", scenarios=n,
                     weights="scenario weights" if len(set(w)) > 1 else "equal weights")
    # Cells that stay dry (NaN) in every scenario stay NaN in the envelopes: expected,
    # so numpy's "All-NaN slice" warning says nothing to the user.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "All-NaN slice", RuntimeWarning)
        return out.compute()
