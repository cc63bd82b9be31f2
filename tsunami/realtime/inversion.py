"""Slip of every unit source from the gauge records available so far.

Input: per station a quality-controlled, de-tided record (:class:`GaugeRecord`: times in
s after the origin, sea-surface anomaly in m with NaN where missing or flagged; for a
bottom-pressure gauge the water-column anomaly, which the database models as eta - uz).
Output: a :class:`~tsunami.realtime.estimate.SourceEstimate`.

Method (documented in README.md, "Source estimation"):

1. Windows. Each station's window runs from its first possible arrival until ``now``.
   The first possible arrival T is the earliest time at which any unit source's response
   at the station reaches ``arrival_fraction`` (5 %) of the largest response of any unit
   there; the window opens ``lead_s`` (60 s) before it, so the quiet water just before
   the wave is fitted too. Bottom-pressure gauges are also held shut for
   ``seismic_gate_s`` (180 s) after the origin: seismic waves and the rupture's own
   shaking dominate them then (the 2011 records at P02 and P06 swing by +-10 m during
   the first 3 minutes). Windows end at ``now`` (or at the end of the database's
   Green's functions). A station joins the fit once its window holds
   ``min_samples`` valid samples.
2. Data. Records are resampled onto the database's time step: averaged over each step
   where they are sampled more finely, interpolated linearly where coarser; samples with
   no valid data near them (gaps, NaN, QC flags) are masked, not filled.
3. Fit. The slip s (m, one value per unit) minimises ||G s - d||^2 + lambda^2 ||L s||^2
   subject to s >= 0, with G the stacked unit responses (each delayed by the travel
   time of a ``rupture_velocity`` front, 2 km/s, from the hypocentre when the alert
   gives one; bottom-pressure responses include the permanent -uz offset), d the
   stacked observations (every sample weighs the same) and
   L the Laplacian of neighbouring units, with zero slip beyond the lateral and deepest
   edges of the zone and a free top edge (:func:`tsunami.realtime.zone.laplacian`;
   Tikhonov smoothing of the second kind);
   solved as a non-negative least-squares problem on the augmented system
   [G; lambda L] s = [d; 0] (Lawson & Hanson 1974, scipy.optimize.nnls).
4. Regularisation weight. lambda is taken at the corner of the L-curve (Hansen 1992,
   SIAM Review 34(4), 561-580; Hansen & O'Leary 1993): the residual norm ||G s - d||
   against the roughness ||L s||, both on log scales, for ``lambdas`` values spaced
   evenly in log between ``lambda_range`` times sigma_max(G) / sigma_max(L); the corner
   is the point of largest Menger curvature of consecutive triples (the circle through
   three points; Cultrera & Callegaro 2020, IOP SciNotes 1, 025004). A corner at either
   end of the range is flagged in the estimate.
5. Moment and magnitude: M0 = mu sum(A_i s_i) with the zone's rigidity mu (40 GPa by
   default), Mw = (2/3)(log10 M0 - 9.1) (Hanks & Kanamori 1979, IASPEI form). Misfit:
   variance reduction 1 - ||G s - d||^2 / ||d||^2 and the root-mean-square residual.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import nnls

from tsunami.errors import InputError
from tsunami.realtime.database import UnitSourceDatabase
from tsunami.realtime.estimate import SourceEstimate, StationFit
from tsunami.source.kinematic import rupture_times
from tsunami.source.scaling import magnitude_from_moment


@dataclass(frozen=True)
class GaugeRecord:
    """One station's quality-controlled, de-tided record.

    ``time``: s after the origin time, strictly increasing (uniform sampling expected,
    not required). ``eta``: m above the pre-event level (NaN where missing). ``flags``:
    optional, non-zero where quality control rejected a sample (masked like NaN).
    """

    time: np.ndarray
    eta: np.ndarray
    flags: np.ndarray | None = None

    def valid(self) -> tuple[np.ndarray, np.ndarray]:
        """Times and values of the usable samples."""
        ok = np.isfinite(self.eta) & np.isfinite(self.time)
        if self.flags is not None:
            ok &= np.asarray(self.flags) == 0
        return self.time[ok], self.eta[ok]


@dataclass(frozen=True)
class InversionSettings:
    """The rules of :func:`invert` (module doc); times in s."""

    arrival_fraction: float = 0.05
    lead_s: float = 60.0
    seismic_gate_s: float = 180.0
    min_samples: int = 4
    lambdas: int = 40
    lambda_range: tuple[float, float] = (1e-4, 1.0)
    #: A fixed lambda (relative to sigma_max(G) / sigma_max(L)) instead of the L-curve.
    fixed_lambda: float | None = None
    #: Kinds of station whose records include minus the sea-floor uplift under them
    #: (eta - uz): bottom-pressure gauges. Empty for records whose processing removed the
    #: coseismic offset; add "sea_surface_height" for GNSS buoys positioned against a
    #: reference station on a coast that moved with the sea floor.
    seafloor_offset_kinds: tuple[str, ...] = ("bottom_pressure",)
    #: With a hypocentre (from the alert), each unit's response is delayed by the time a
    #: rupture front at this speed (m/s) takes from the hypocentre to its centroid;
    #: great ruptures last minutes (2011: about 150 s over 500 km at about 2 km/s,
    #: Satake et al. 2013). None: every unit slips at the origin time.
    rupture_velocity: float | None = 2000.0

    def __post_init__(self) -> None:
        if not 0 < self.arrival_fraction < 1:
            raise ValueError("arrival_fraction must lie in (0, 1)")
        if self.lead_s < 0 or self.seismic_gate_s < 0 or self.min_samples < 1:
            raise ValueError("lead_s and seismic_gate_s must be >= 0, min_samples >= 1")
        low, high = self.lambda_range
        if not (0 < low < high) or self.lambdas < 3:
            raise ValueError("need 0 < lambda_range[0] < lambda_range[1] and lambdas >= 3")


def as_record(station: str, record: GaugeRecord | tuple) -> GaugeRecord:
    """A :class:`GaugeRecord` from itself or a ``(time, eta)`` / ``(time, eta, flags)``
    tuple, checked: equal lengths, finite strictly increasing times."""
    if not isinstance(record, GaugeRecord):
        record = GaugeRecord(*record)
    t = np.asarray(record.time, dtype=np.float64)
    eta = np.asarray(record.eta, dtype=np.float64)
    flags = None if record.flags is None else np.asarray(record.flags)
    if t.ndim != 1 or eta.shape != t.shape or (flags is not None and flags.shape != t.shape):
        raise ValueError(f"station {station!r}: time, eta (and flags) must be 1-D arrays of "
                         f"one length, got {t.shape}, {eta.shape}")
    if not np.all(np.isfinite(t)):
        raise ValueError(f"station {station!r}: times must be finite")
    if t.size > 1 and np.any(np.diff(t) <= 0):
        k = int(np.argmax(np.diff(t) <= 0)) + 1
        raise ValueError(f"station {station!r}: times must increase (sample {k}: "
                         f"{t[k]:g} s after {t[k - 1]:g} s)")
    return GaugeRecord(t, eta, flags)


def read_record_csv(path: Path) -> GaugeRecord:
    """A record from a CSV file with the header ``time_s,eta_m`` and optionally ``flag``
    (time s after the origin, sea-surface anomaly m, non-zero flag = rejected); an empty
    or ``nan`` value is a missing sample; ``#`` lines are comments."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except FileNotFoundError:
        raise InputError(path, None, "record file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read the record: {exc}") from None
    rows = [(n, line) for n, line in enumerate(lines, start=1)
            if line.strip() and not line.lstrip().startswith("#")]
    if not rows:
        raise InputError(path, None, "empty record")
    header = [h.strip() for h in rows[0][1].split(",")]
    if header[:2] != ["time_s", "eta_m"] or header[2:] not in ([], ["flag"]):
        raise InputError(path, f"line {rows[0][0]}", "expected the header time_s,eta_m "
                         f"or time_s,eta_m,flag, got {rows[0][1]!r}")
    values = []
    for n, line in rows[1:]:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != len(header):
            raise InputError(path, f"line {n}", f"expected {len(header)} values: {line!r}")
        try:
            values.append([float(p) if p else math.nan for p in parts])
        except ValueError:
            raise InputError(path, f"line {n}", f"not numbers: {line!r}") from None
    if not values:
        raise InputError(path, None, "no samples below the header")
    data = np.array(values)
    try:
        return as_record(path.stem, (data[:, 0], data[:, 1],
                                     np.nan_to_num(data[:, 2], nan=1.0) if data.shape[1] > 2
                                     else None))
    except ValueError as exc:
        raise InputError(path, "time_s", str(exc)) from None


def first_arrivals(db: UnitSourceDatabase, fraction: float) -> dict[str, float]:
    """Earliest time (s) at which any unit's response at each station reaches
    ``fraction`` of the largest response there (the first possible arrival)."""
    out = {}
    for sid in db.stations:
        response = np.abs(db.response(sid))
        peak = response.max()
        if peak <= 0:
            out[sid] = math.inf
            continue
        reached = np.nonzero((response >= fraction * peak).any(axis=0))[0]
        out[sid] = float(db.times[reached[0]])
    return out


def resample(record: GaugeRecord, times: np.ndarray) -> np.ndarray:
    """The record at ``times`` (uniform, step dt): the mean of its valid samples within
    dt/2 of each time where it is sampled more finely than dt, else linear interpolation
    between valid samples at most two of its own steps apart; NaN where no data."""
    t, eta = record.valid()
    out = np.full(times.shape, np.nan)
    if t.size == 0:
        return out
    dt = float(times[1] - times[0]) if times.size > 1 else 1.0
    step = float(np.median(np.diff(record.time))) if record.time.size > 1 else dt
    if step < dt:
        bins = np.floor((t - times[0]) / dt + 0.5).astype(np.int64)
        inside = (bins >= 0) & (bins < times.size)
        sums = np.bincount(bins[inside], eta[inside], minlength=times.size)
        counts = np.bincount(bins[inside], minlength=times.size)
        np.divide(sums, counts, out=out, where=counts > 0)
        return out
    k = np.searchsorted(t, times, side="right")  # t[k - 1] <= time < t[k]
    lo, hi = np.clip(k - 1, 0, t.size - 1), np.clip(k, 0, t.size - 1)
    ok = (times >= t[0]) & (times <= t[-1]) & (t[hi] - t[lo] <= 2.0 * step + 1e-9)
    out[ok] = np.interp(times[ok], t, eta)
    return out


def invert(db: UnitSourceDatabase, records: Mapping[str, GaugeRecord | tuple], now: float,
           settings: InversionSettings | None = None,
           hypocentre: tuple[float, float, float] | None = None) -> SourceEstimate:
    """Estimate the slip of every unit source of ``db`` from ``records`` (by station id)
    up to ``now`` (s after the origin). ``hypocentre`` (lon deg, lat deg, depth m; from
    the alert) delays each unit by the rupture front's travel time to it. Stations the
    database does not know are left out and listed in the estimate."""
    start = time.perf_counter()
    settings = settings or InversionSettings()
    fits, ignored = _windows(db, records, now, settings, hypocentre)
    slip, regularisation = np.zeros(len(db)), {"rule": "none (no data)"}
    if fits:
        g = np.vstack([response[:, fit.used].T for fit, response in fits])
        d = np.concatenate([fit.observed[fit.used] for fit, _ in fits])
        slip, regularisation = _solve(g, d, db.laplacian(), settings)
    return _estimate(db, now, slip, fits, ignored, regularisation, start, hypocentre,
                     settings)


def evaluate(db: UnitSourceDatabase, records: Mapping[str, GaugeRecord | tuple], now: float,
             slip: np.ndarray, settings: InversionSettings | None = None,
             hypocentre: tuple[float, float, float] | None = None) -> SourceEstimate:
    """How a given ``slip`` (m per unit: a published model, an alert scenario) fits the
    records up to ``now``, with the windows and delays :func:`invert` would use."""
    slip = np.asarray(slip, dtype=np.float64)
    if slip.shape != (len(db),):
        raise ValueError(f"expected {len(db)} slip values, got shape {slip.shape}")
    start = time.perf_counter()
    settings = settings or InversionSettings()
    fits, ignored = _windows(db, records, now, settings, hypocentre)
    return _estimate(db, now, slip, fits, ignored, {"rule": "given slip"}, start, hypocentre,
                     settings)


def _windows(db: UnitSourceDatabase, records: Mapping[str, GaugeRecord | tuple], now: float,
             settings: InversionSettings, hypocentre: tuple[float, float, float] | None
             ) -> tuple[list[tuple[StationFit, np.ndarray]], dict[str, str]]:
    """Per usable station its window with the resampled record (NaN where not fitted)
    and the units' responses over the window; and the stations left out, with why."""
    arrivals = first_arrivals(db, settings.arrival_fraction)
    delays = np.zeros(len(db))
    if hypocentre is not None and settings.rupture_velocity is not None:
        delays = rupture_times(db.units, hypocentre, settings.rupture_velocity)
    ignored: dict[str, str] = {}
    fits = []
    end = min(float(now), float(db.times[-1]))
    for sid, raw in records.items():
        if sid not in db.points or db.points[sid].kind == "forecast_point":
            ignored[sid] = "not a station of the database (outside its grid?)"
            continue
        record = as_record(sid, raw)
        opens = arrivals[sid] - settings.lead_s
        if db.points[sid].kind == "bottom_pressure":
            opens = max(opens, settings.seismic_gate_s)
        opens = max(opens, 0.0)
        in_window = (db.times >= opens - 1e-9) & (db.times <= end + 1e-9)
        observed = resample(record, db.times)
        use = in_window & np.isfinite(observed)
        if use.sum() < settings.min_samples:
            ignored[sid] = (f"{int(use.sum())} valid samples between {opens:.0f} and "
                            f"{end:.0f} s (first possible arrival {arrivals[sid]:.0f} s)")
            continue
        fits.append((StationFit(sid, db.points[sid].kind, opens, end, arrivals[sid],
                                db.times[in_window], np.where(use, observed, np.nan)[in_window],
                                np.zeros(int(in_window.sum()))),
                     _delayed(db.response(sid, settings.seafloor_offset_kinds), db.times,
                              delays)[:, in_window]))
    return fits, ignored


def _delayed(response: np.ndarray, times: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """Each unit's response (unit, time) starting ``delays`` (s) later: zero before."""
    if not np.any(delays):
        return response
    return np.stack([np.interp(times - d, times, r, left=0.0)
                     for r, d in zip(response, delays, strict=True)])


def _estimate(db, now, slip, fits, ignored, regularisation, start, hypocentre, settings
              ) -> SourceEstimate:
    for fit, response in fits:
        fit.predicted[:] = slip @ response
    moment = db.moment(slip)
    return SourceEstimate(db=db, time_s=float(now), slip=slip, moment_Nm=moment,
                          magnitude=magnitude_from_moment(moment) if moment > 0 else math.nan,
                          stations=[f for f, _ in fits], ignored=ignored,
                          regularisation=regularisation,
                          inversion_wall_s=time.perf_counter() - start,
                          hypocentre=hypocentre, settings=dataclasses.asdict(settings))


def _solve(g: np.ndarray, d: np.ndarray, lap: np.ndarray, settings: InversionSettings
           ) -> tuple[np.ndarray, dict]:
    """Non-negative Tikhonov solution with the weight from the L-curve (module doc)."""
    scale = np.linalg.norm(g, 2) / max(np.linalg.norm(lap, 2), 1e-30)
    if settings.fixed_lambda is not None:
        relative = np.array([settings.fixed_lambda])
    else:
        relative = np.geomspace(*settings.lambda_range, settings.lambdas)
    zeros = np.zeros(lap.shape[0])
    solutions, residuals, roughness = [], [], []
    for lam in relative * scale:
        s, _ = nnls(np.vstack([g, lam * lap]), np.concatenate([d, zeros]),
                    maxiter=50 * g.shape[1])
        solutions.append(s)
        residuals.append(float(np.linalg.norm(g @ s - d)))
        roughness.append(float(np.linalg.norm(lap @ s)))
    if len(relative) == 1:
        best, rule, at_edge = 0, "fixed lambda", False
    else:
        best = l_curve_corner(np.array(residuals), np.array(roughness))
        rule = "L-curve corner (largest Menger curvature, log-log)"
        at_edge = best in (0, len(relative) - 1)
        if at_edge:
            warnings.warn(f"the L-curve corner lies at the end of the lambda range "
                          f"({relative[best]:.2g} of sigma_max(G)/sigma_max(L)): widen "
                          "lambda_range", stacklevel=3)
    return solutions[best], {
        "rule": rule, "lambda": float(relative[best] * scale),
        "lambda_relative": float(relative[best]), "at_edge": at_edge,
        "curve": [{"lambda_relative": float(r), "residual_norm": a, "roughness_norm": b}
                  for r, a, b in zip(relative, residuals, roughness, strict=True)]}


def l_curve_corner(residual: np.ndarray, roughness: np.ndarray) -> int:
    """Index of the L-curve corner: largest Menger curvature of consecutive triples of
    (log residual, log roughness) points, ordered by increasing regularisation."""
    tiny = 1e-12 * max(float(residual.max()), float(roughness.max()), 1e-300)
    x = np.log(np.maximum(residual, tiny))
    y = np.log(np.maximum(roughness, tiny))
    best, best_curvature = 0, -np.inf
    for k in range(1, x.size - 1):
        (x1, y1), (x2, y2), (x3, y3) = (x[k - 1], y[k - 1]), (x[k], y[k]), (x[k + 1], y[k + 1])
        twice_area = (x2 - x1) * (y3 - y2) - (y2 - y1) * (x3 - x2)
        sides = math.hypot(x2 - x1, y2 - y1) * math.hypot(x3 - x2, y3 - y2) * math.hypot(
            x3 - x1, y3 - y1)
        if sides > 0 and 2 * twice_area / sides > best_curvature:
            best, best_curvature = k, 2 * twice_area / sides
    return best
