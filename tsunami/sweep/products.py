"""Publishing a sweep's probabilistic maps with the conventions of forecast products.

The worst-case envelope of each town (largest depth, surface and speed, earliest arrival
over the scenarios) is published exactly as a forecast's town fields are
(:func:`tsunami.products.outbox.publish`: COGs in the output CRS, depth classes, QGIS
style, extent polygons, quick-look map, STAC Item and Collection, atomic outbox). A writer
adds, per town and on the same output grid:

| file | content | unit | resampling |
|---|---|---|---|
| ``<town>_exceedance_<t>m_<EPSG>.tif`` | probability that the maximum depth exceeds t | 1 | max |
| ``<town>_depth_p<q>_<EPSG>.tif`` | weighted q-th percentile of the maximum depth | m | max |
| ``<town>_exceedance.png`` | the exceedance maps side by side | | |
| ``sweep_<town>.nc`` | all the maps on the model lattice (NetCDF) | | |

Float layers use nodata -9999 (sea, outside); probabilities and percentiles are
reprojected by maximum, like depths, so a cell is never shown safer than its most exposed
part. Every layer is listed in the STAC Item with its threshold or percentile.
"""

from __future__ import annotations

import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from pyproj import CRS
from rasterio.warp import Resampling

from tsunami import __version__
from tsunami.fields import write_netcdf
from tsunami.maps import label_projected_axes
from tsunami.products.layers import NODATA, Layer, output_grid, reproject_field, write_cog
from tsunami.products.outbox import publish, reserve_forecast_number
from tsunami.products.stac import Asset, ForecastInfo
from tsunami.region import Region
from tsunami.sweep.probability import PERCENTILES, THRESHOLDS, statistics
from tsunami.sweep.store import SweepStore

SOURCE_TYPE = "scenario sweep"


def sweep_statistics(store: SweepStore, thresholds=THRESHOLDS, percentiles=PERCENTILES
                     ) -> dict[str, xr.Dataset]:
    """The probabilistic maps of every town of a store (:func:`statistics`)."""
    return {name: statistics(store.town(name), thresholds=thresholds,
                             percentiles=percentiles) for name in store.towns}


def publish_sweep(store: SweepStore, region: Region, outbox: str | Path, *,
                  event_id: str | None = None, forecast_number: int | None = None,
                  crs: CRS | None = None, resolution: float | None = None,
                  thresholds=THRESHOLDS, percentiles=PERCENTILES,
                  timings_s: dict[str, float] | None = None) -> Path:
    """Publish the probabilistic maps of the scenarios in ``store`` into
    ``outbox/<event_id>/forecast-NNN/`` (module doc; the event id defaults to the sweep's
    name, the number to the next free one); returns that folder. ``crs`` and
    ``resolution`` as for forecasts (default: the region's output CRS, else the JGD2011
    zone of each town; the 1-2-5 step nearest the finest spacing)."""
    start = time.perf_counter()
    sweep_name = str(store.root.attrs["sweep"])
    event_id = event_id or sweep_name
    stats = sweep_statistics(store, thresholds, percentiles)
    if not stats:
        raise ValueError("the store holds no finished scenario: nothing to publish")
    count = int(next(iter(stats.values())).attrs["scenarios"])
    failed = len(store.failed())
    weighting = next(iter(stats.values())).attrs["weights"]
    info = ForecastInfo(
        event_id, reserve_forecast_number(Path(outbox) / event_id, forecast_number),
        datetime.now(UTC), None,
        __version__, SOURCE_TYPE, region.name, f"{count} scenarios of sweep {sweep_name}",
        dict(timings_s or {}),
        description=f"Probabilistic inundation maps over {count} scenarios of sweep "
                    f"{sweep_name} on {region.name} ({weighting}"
                    + (f"; {failed} failed scenarios left out" if failed else "")
                    + "): exceedance probabilities of the maximum depth for "
                    + ", ".join(f"{t:g}" for t in thresholds) + " m, depth percentiles "
                    + ", ".join(f"{q:g}" for q in percentiles) + " %, and the worst-case "
                    "envelope as the forecast layers (largest depth, surface and speed, "
                    "earliest arrival over the scenarios).")
    info.timings_s["statistics"] = time.perf_counter() - start
    crs = crs or region.output_crs

    def write(folder: Path, info: ForecastInfo) -> list[Asset]:
        assets = []
        for name, ds in stats.items():
            assets += town_probability_products(name, ds, folder, info, crs, resolution)
        return assets

    write.stage = "probability_maps"
    with tempfile.TemporaryDirectory() as tmp:
        copies = []
        for name, ds in stats.items():
            path = write_netcdf(ds, Path(tmp) / f"sweep_{name}.nc")
            copies.append(Asset(path, f"{name}: probabilistic maps and envelope (NetCDF, "
                                      "model grid)", ["data"]))
        return publish(stats, Path(outbox), info, crs=crs, resolution=resolution,
                       copies=copies, writers=[write])


def town_probability_products(name: str, ds: xr.Dataset, folder: Path, info: ForecastInfo,
                              crs: CRS | None, resolution: float | None) -> list[Asset]:
    """The exceedance and percentile COGs of one town and their quick-look."""
    grid = output_grid(ds, crs, resolution)
    epsg = grid.crs.to_epsg() or "custom"
    tags = {"event_id": info.event_id, "forecast_number": str(info.forecast_number),
            "issue_time": info.issue_time.isoformat(), "origin_time": "",
            "model_version": info.model_version, "source_type": info.source_type,
            "town": name, "scenarios": str(ds.attrs["scenarios"]),
            "weights": ds.attrs["weights"], "resampling": "max"}
    count = ds.attrs["scenarios"]
    specs = [(f"exceedance_{t:g}m", "exceedance_probability", {"threshold": t}, "1",
              f"probability that the maximum inundation depth exceeds {t:g} m "
              f"({count} scenarios)", {"tsunami:threshold_m": float(t)})
             for t in ds.threshold.values]
    specs += [(f"depth_p{q:g}", "depth_percentile", {"percentile": q}, "m",
               f"{q:g}th percentile of the maximum inundation depth ({count} scenarios)",
               {"tsunami:percentile": float(q)}) for q in ds.percentile.values]
    assets, exceedance = [], []
    for layer_name, variable, where, unit, title, extra in specs:
        flat = ds.assign({layer_name: ds[variable].sel(where, drop=True)})
        values = reproject_field(flat, layer_name, grid, Resampling.max)
        layer = Layer(layer_name, np.where(np.isfinite(values), values, NODATA).astype(
            np.float32), grid.transform, grid.crs, unit, title, NODATA, tags=dict(tags))
        path = write_cog(layer, folder / f"{name}_{layer_name}_{epsg}.tif")
        assets.append(Asset(path, f"{name}: {title} ({unit})", ["data"], extra=extra))
        if variable == "exceedance_probability":
            exceedance.append(layer)
    elevation = reproject_field(ds, "elevation", grid, Resampling.bilinear)
    png = exceedance_map(folder / f"{name}_exceedance.png", elevation, exceedance,
                         f"{info.event_id}: {name}, probability of inundation deeper than "
                         f"each threshold over {count} scenarios ({ds.attrs['weights']})")
    assets.append(Asset(png, f"{name}: exceedance probability maps", ["overview", "visual"]))
    return assets


def exceedance_map(path: Path, elevation: np.ndarray, layers: list[Layer], title: str
                   ) -> Path:
    """Panels of exceedance probability (0-1) over the coastline, one per threshold."""
    west, south, east, north = layers[0].bounds
    extent = (west, east, south, north)
    ny, nx = layers[0].shape
    panel = 3.6  # inches per panel, across
    # (a Figure without pyplot: no backend is chosen for, or imposed on, the caller)
    fig = Figure(layout="constrained", figsize=(panel * len(layers) + 1.2,
                                                panel * ny / nx + 1.0))
    axes = fig.subplots(1, len(layers), squeeze=False, sharey=True)
    land = np.nan_to_num(elevation) > 0
    image = None
    for ax, layer in zip(axes[0], layers, strict=True):
        ax.imshow(np.where(land, 0.85, 0.97), extent=extent, cmap="gray", vmin=0, vmax=1,
                  interpolation="nearest")
        p = np.where(layer.values == NODATA, np.nan, layer.values)
        image = ax.imshow(np.where(p > 0, p, np.nan), extent=extent, cmap="magma_r", vmin=0,
                          vmax=1, interpolation="nearest")
        res = layer.transform.a
        ax.contour(west + (np.arange(nx) + 0.5) * res, north - (np.arange(ny) + 0.5) * res,
                   np.nan_to_num(elevation), levels=[0.0], colors="k", linewidths=0.5)
        ax.set_title(layer.title.split(" (")[0].replace("probability that the maximum "
                                                        "inundation depth exceeds", "P(depth >")
                     + ")", fontsize=10)
        ax.set_xlim(west, east)
        ax.set_ylim(south, north)
        ax.ticklabel_format(style="plain", useOffset=False)
        ax.tick_params(labelsize=7)
    for k, ax in enumerate(axes[0]):  # (the panels share the first one's northing)
        label_projected_axes(ax, layers[0].crs)
        ax.xaxis.label.set_fontsize(8)
        if k:
            ax.set_ylabel("")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="probability")
    fig.suptitle(title, fontsize=10)
    fig.savefig(path, dpi=100)
    return path
