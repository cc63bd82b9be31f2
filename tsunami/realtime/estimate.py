"""A source estimate from gauge records, and the files that let others rerun it.

:class:`SourceEstimate` is what :func:`tsunami.realtime.inversion.invert` returns: the
slip of every unit source (m), the seismic moment and Mw, the misfit, the stations and
windows used and the regularisation chosen. It writes

- ``slip.csv``: the units as a subfault table in the format ``tsunami run`` reads
  (``type = "subfaults"``, reference point the centre of each top edge; see
  :mod:`tsunami.source.table`), with ``#`` lines saying where it came from;
- ``initial_sea_surface.tif``: the initial sea-surface displacement (m) on the outer grid
  (the slip-weighted sum of the unit surfaces), a GeoTIFF in the grid's CRS that a
  ``type = "displacement"`` scenario reads;
- ``slip_map.png`` (slip per unit over the coast, with the initial sea surface) and
  ``fit.png`` (observed and fitted records per station);
- ``source.json``: Mw, moment, rigidity, misfit, windows, regularisation, slip per unit.

Every file is written atomically. Units: m, s (after the origin time), N m, Pa.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import rasterio
from affine import Affine
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from tsunami.atomic import atomic_path
from tsunami.source.table import REQUIRED_COLUMNS


@dataclass
class StationFit:
    """One station's part of the fit: window (s after the origin), the first possible
    arrival, and over the window's time steps (s) the observed record (m; NaN where no
    valid data, not fitted) and the prediction of the estimate (m)."""

    station: str
    kind: str
    window_start_s: float
    window_end_s: float
    first_arrival_s: float
    times: np.ndarray
    observed: np.ndarray
    predicted: np.ndarray

    @property
    def used(self) -> np.ndarray:
        """Mask of the samples fitted."""
        return np.isfinite(self.observed)

    @property
    def rms_m(self) -> float:
        return _rms(self.observed[self.used], self.predicted[self.used])

    @property
    def variance_reduction(self) -> float:
        return _variance_reduction(self.observed[self.used], self.predicted[self.used])


def _variance_reduction(observed: np.ndarray, predicted: np.ndarray) -> float:
    power = float(np.sum(observed**2))
    return 1.0 - float(np.sum((observed - predicted) ** 2)) / power if power > 0 else math.nan


def _rms(observed: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.sqrt(np.mean((observed - predicted) ** 2))) if observed.size else math.nan


@dataclass
class SourceEstimate:
    """The slip of every unit source of ``db`` fitted to the records up to ``time_s``."""

    db: object  # UnitSourceDatabase (not imported: the database module imports nothing here)
    time_s: float
    slip: np.ndarray
    moment_Nm: float
    magnitude: float
    stations: list[StationFit]
    ignored: dict[str, str] = field(default_factory=dict)
    regularisation: dict = field(default_factory=dict)
    inversion_wall_s: float = 0.0
    #: (lon deg, lat deg, depth m) of the hypocentre where an alert gave it: drawn on maps.
    hypocentre: tuple[float, float, float] | None = None
    #: The rules the windows and the fit followed (InversionSettings as a dict).
    settings: dict = field(default_factory=dict)

    # -- figures ------------------------------------------------------------------------
    @property
    def variance_reduction(self) -> float:
        """1 - |residual|^2 / |data|^2 over every sample used (NaN without data)."""
        observed, predicted = self._samples()
        return _variance_reduction(observed, predicted)

    @property
    def rms_m(self) -> float:
        """Root-mean-square residual (m) over every sample used."""
        return _rms(*self._samples())

    def _samples(self) -> tuple[np.ndarray, np.ndarray]:
        """Observed and predicted values of every sample fitted."""
        if not self.stations:
            return np.zeros(0), np.zeros(0)
        return (np.concatenate([s.observed[s.used] for s in self.stations]),
                np.concatenate([s.predicted[s.used] for s in self.stations]))

    @property
    def windows(self) -> dict[str, tuple[float, float]]:
        """Data window (start, end; s after the origin) of every station used."""
        return {s.station: (s.window_start_s, s.window_end_s) for s in self.stations}

    @cached_property
    def sea_surface(self) -> np.ndarray:
        """Initial sea-surface displacement (m) on the database's outer grid."""
        return self.db.sea_surface(self.slip)

    def subfaults(self) -> list:
        """The unit rectangles carrying the estimated slip (m)."""
        return self.db.subfaults(self.slip)

    def summary(self) -> dict:
        """Everything but the arrays, JSON-ready."""
        db = self.db
        peak = int(np.argmax(self.slip)) if self.slip.size else 0
        return {
            "zone": db.zone, "database": str(db.path),
            "database_fingerprint": db.attrs.get("fingerprint", ""),
            "time_after_origin_s": self.time_s,
            "moment_Nm": self.moment_Nm, "magnitude_Mw": self.magnitude,
            "rigidity_Pa": db.rigidity,
            "max_slip_m": float(self.slip.max()) if self.slip.size else 0.0,
            "max_slip_unit": db.unit_names[peak] if self.slip.size else "",
            "misfit": {
                "variance_reduction": self.variance_reduction, "rms_m": self.rms_m,
                "stations": {s.station: {"variance_reduction": s.variance_reduction,
                                         "rms_m": s.rms_m, "samples": int(s.used.sum())}
                             for s in self.stations}},
            "windows_s": {s.station: {"start": s.window_start_s, "end": s.window_end_s,
                                      "first_possible_arrival": s.first_arrival_s,
                                      "kind": s.kind} for s in self.stations},
            "stations_ignored": self.ignored,
            "regularisation": {k: v for k, v in self.regularisation.items() if k != "curve"},
            "hypocentre": list(self.hypocentre) if self.hypocentre is not None else None,
            "settings": self.settings,
            "slip_m": {name: float(v) for name, v in zip(db.unit_names, self.slip,
                                                         strict=True)},
            "inversion_wall_s": self.inversion_wall_s,
        }

    def title(self) -> str:
        mw = f"Mw {self.magnitude:.2f}" if math.isfinite(self.magnitude) else "no slip"
        return (f"{self.db.zone}: estimate at {self.time_s / 60:.1f} min, {mw}, variance "
                f"reduction {100 * self.variance_reduction:.0f} %, "
                f"{len(self.stations)} stations")

    # -- files --------------------------------------------------------------------------
    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write every product into ``folder``; returns their paths by role."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        return {
            "slip_table": self.write_slip_table(folder / "slip.csv"),
            "initial_sea_surface": self.write_sea_surface(folder / "initial_sea_surface.tif"),
            "slip_map": self.plot_slip_map(folder / "slip_map.png"),
            "fit": self.plot_fit(folder / "fit.png"),
            "summary": self.write_summary(folder / "source.json"),
        }

    def write_summary(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            json.dump(_finite(self.summary()), f, indent=2, allow_nan=False)
        return path

    def write_slip_table(self, path: str | Path) -> Path:
        """The estimate as a subfault table (reference point: centre of each top edge)."""
        path = Path(path)
        lines = [
            f"# source estimate of zone {self.db.zone} from gauge records up to "
            f"{self.time_s:.0f} s after the origin",
            f"# Mw {self.magnitude:.3f}, M0 {self.moment_Nm:.4g} N m (rigidity "
            f"{self.db.rigidity:.3g} Pa); database {self.db.path}",
            "# longitude/latitude/depth_m: centre of the top edge (reference = top_centre)",
            ",".join(REQUIRED_COLUMNS),
        ]
        for s in self.subfaults():
            lines.append(f"{s.longitude:.6f},{s.latitude:.6f},{s.depth:.1f},{s.strike:.3f},"
                         f"{s.dip:.3f},{s.rake:.3f},{s.slip:.4f},{s.length:.1f},{s.width:.1f}")
        with atomic_path(path) as tmp:
            tmp.write_text("\n".join(lines) + "\n")
        return path

    def write_sea_surface(self, path: str | Path) -> Path:
        """The initial sea surface (m) as a float32 GeoTIFF on the outer grid."""
        path = Path(path)
        grid = self.db.grid
        transform = Affine(grid.dx, 0.0, grid.x0, 0.0, -grid.dy, grid.y0 + grid.ny * grid.dy)
        profile = dict(driver="GTiff", width=grid.nx, height=grid.ny, count=1,
                       dtype="float32", crs=grid.crs.to_wkt() if grid.crs else None,
                       transform=transform, compress="deflate", predictor=3, tiled=True,
                       blockxsize=256, blockysize=256)
        with atomic_path(path) as tmp:
            with rasterio.open(tmp, "w", **profile) as dst:
                dst.write(self.sea_surface[::-1].astype(np.float32), 1)
                dst.set_band_description(1, "initial sea-surface displacement")
                dst.update_tags(1, units="m")
                dst.update_tags(units="m", zone=self.db.zone, magnitude_Mw=f"{self.magnitude:.3f}",
                                time_after_origin_s=f"{self.time_s:.0f}",
                                description="initial sea-surface displacement of a source "
                                            "estimated from gauge records (unit sources, "
                                            "Okada + Tanioka-Satake + Kajiura)")
        return path

    def plot_slip_map(self, path: str | Path) -> Path:
        """Slip per unit (left) and the initial sea surface (right), over the coast."""
        path = Path(path)
        db = self.db
        grid = db.grid
        x, y = grid.x, grid.y
        polygons = [_outline(s) for s in db.units]
        xs = np.concatenate([p[:, 0] for p in polygons])
        ys = np.concatenate([p[:, 1] for p in polygons])
        pad = 0.6
        extent = [max(xs.min() - pad, x[0]), min(xs.max() + pad, x[-1]),
                  max(ys.min() - pad, y[0]), min(ys.max() + pad, y[-1])]
        aspect = 1.0 / math.cos(math.radians(0.5 * (extent[2] + extent[3]))) \
            if grid.spherical else 1.0
        fig = Figure(figsize=(13, 7.5), constrained_layout=True)
        axes = fig.subplots(1, 2)
        top = max(float(self.slip.max()), 1e-3)
        collection = PolyCollection(polygons, array=self.slip, cmap="hot_r", clim=(0, top),
                                    edgecolors="0.4", linewidths=0.5)
        axes[0].add_collection(collection)
        fig.colorbar(collection, ax=axes[0], shrink=0.8, label="slip (m)")
        for poly in polygons:  # the trench side: the top edge of each unit
            axes[0].plot(poly[:2, 0], poly[:2, 1], color="0.2", lw=0.6)
        surface = self.sea_surface
        bound = max(float(np.abs(surface).max()), 1e-3)
        image = axes[1].pcolormesh(x, y, surface, cmap="RdBu_r", vmin=-bound, vmax=bound,
                                   shading="auto")
        fig.colorbar(image, ax=axes[1], shrink=0.8, label="initial sea surface (m)")
        axes[1].add_collection(PolyCollection(polygons, facecolors="none", edgecolors="0.5",
                                              linewidths=0.3))
        for ax in axes:
            ax.contour(x, y, db.elevation, levels=[0.0], colors="k", linewidths=0.8)
            if self.hypocentre is not None:
                ax.plot(*self.hypocentre[:2], "*", color="#2ca02c", mec="k", ms=14,
                        label="hypocentre")
            for s in self.stations:
                p = db.points[s.station]
                ax.plot(p.lon, p.lat, "^", color="#1f77b4", mec="k", ms=8)
                ax.annotate(s.station, (p.lon, p.lat), xytext=(4, 4),
                            textcoords="offset points", fontsize=8)
            ax.set_xlim(extent[:2])
            ax.set_ylim(extent[2:])
            ax.set_aspect(aspect)
            ax.set_xlabel("longitude (deg)" if grid.spherical else "x (m)")
            ax.set_ylabel("latitude (deg)" if grid.spherical else "y (m)")
        axes[0].set_title(f"slip per unit source (max {top:.1f} m)")
        axes[1].set_title(f"initial sea surface ({surface.min():.2f} to {surface.max():.2f} m)")
        fig.suptitle(self.title())
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
        return path

    def plot_fit(self, path: str | Path) -> Path:
        """Observed (black) and fitted (red) records in each station's window."""
        path = Path(path)
        n = max(len(self.stations), 1)
        fig = Figure(figsize=(9, 1.9 * n + 1), constrained_layout=True)
        axes = fig.subplots(n, 1, squeeze=False)
        for ax, s in zip(axes[:, 0], self.stations, strict=False):
            ax.plot(s.times / 60, s.observed, "k.", ms=2.5, label="observed (used)")
            ax.plot(s.times / 60, s.predicted, "r-", lw=1.2, label="fitted")
            ax.axvline(s.first_arrival_s / 60, color="0.6", lw=0.8, ls=":",
                       label="first possible arrival")
            ax.set_xlim(0, self.time_s / 60)
            ax.set_ylabel("m")
            ax.set_title(f"{s.station} ({s.kind.replace('_', ' ')}): variance reduction "
                         f"{100 * s.variance_reduction:.0f} %, rms {s.rms_m:.2f} m",
                         fontsize=9, loc="left")
        axes[-1, 0].set_xlabel("minutes after the origin")
        if self.stations:
            axes[0, 0].legend(fontsize=8, loc="upper left")
        fig.suptitle(self.title(), fontsize=10)
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=100, format="png")
        return path


def _outline(s) -> np.ndarray:
    """Surface projection of a subfault: top edge (strike start, end), bottom edge."""
    half = 0.5 * s.length
    corners = [s.point(-half, 0.0), s.point(half, 0.0), s.point(half, s.width),
               s.point(-half, s.width)]
    return np.array([(lon, lat) for lon, lat, _ in corners])


def _finite(value):
    """``value`` with NumPy scalars made plain and NaN/inf made None (strict JSON)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
