"""Forecast 1 from an earthquake alert: an ensemble of scaling-law faults, ranked cheaply.

One fault centred on the hypocentre does not err on the safe side: in 1993 the slip that
flooded Aonae lay some 40 km from where such a fault puts it, and the alert fault gives
Aida K = 3.2 against the surveyed runup there (README, "Running the watch service"). An
alert's hypocentre, mechanism and magnitude are uncertain, so forecast 1 spans them:

- where the hypocentre lies on the fault: ``along_strike`` fractions of the length
  (+-0.5: at either end, a unilateral rupture) and ``down_dip`` fractions of the width
  from the centroid (ruptures often start near an end: the 1993 one at its northern end,
  2011 in the middle);
- the mechanism: strike and dip offsets, one angle at a time (alerts' mechanisms come
  from long-period waves and are uncertain by 10-20 degrees);
- the magnitude: the alert's value and ``magnitude_offsets`` above it; at or above
  ``saturation_magnitude`` (or when the alert says "more than"), early magnitudes of great
  earthquakes saturate (JMA's first 2011 estimate was Mj 7.9 for Mw 9.0): then
  ``saturation_offsets`` are added;
- the scaling law's scatter: length and width at ``size_sigmas`` standard deviations of
  the law (log10 units, :mod:`tsunami.source.scaling`), the slip following from the moment.
  The compact members (-2 and -1 sigma) also stand in for what a uniform-slip fault lacks:
  real ruptures concentrate their slip (asperities with about twice the mean slip), which
  is what floods the nearest coast.

Two cores cannot run hundreds of nested 10 m runs in minutes, so the members are
ranked in two tiers with the unit-source database (:mod:`tsunami.realtime.database`):

1. Every member's initial sea surface on the database's outer grid is projected by
   non-negative least squares onto the unit sources' surfaces; the units' linear
   waveforms at the forecast points, weighted by that projection, give the member's
   offshore maximum in front of every town (about 10 ms of CPU a member on the Okushiri
   2' grid, 0.34 s on the Japan Trench 1' grid of 201,000 cells; what depends on the
   database only, the QR factors and the Kajiura filter, is prepared once per open
   database and kept with it, 175 MB on that grid). The ranking height
   of a member at a forecast point is the larger of that maximum and the highest
   initial sea surface within ``near_km`` (30 km) of the point: a coarse outer grid
   cannot carry a near-field source's short waves onto the coast (on the Okushiri demo
   a member matching the benchmark source's offshore heights on the 2' grid still gave
   Aida K = 2.2 against the surveyed runup in the 10 m nest), while the uplift in front
   of a town is what floods it. A member whose fault
   reaches beyond the planes the units tile projects badly (its relative residual is
   reported, ``projection_residual``), so this tier only shortlists: the ``verify``
   highest members in front of each town of the region.
2. The shortlisted members are run exactly as the database's units were (linear
   long-wave equations on its outer grid, about 0.6 s of CPU each on the Okushiri 2'
   grid), which gives their offshore maxima without the projection's error.

The members that are then decisive (the highest in front of some town of the region) are
run with the full nested model, at most ``full_runs`` of them, and the forecast
publishes their envelope (the largest maximum depth, height, speed and momentum flux and
the earliest arrival in every cell), together with the ensemble's percentiles at the
forecast points (``ensemble.csv``; from tier 1, so biased low where the projection
residual is large: read them as a ranking, not as a forecast).

Percentile maps (:func:`percentile_maps`). Cell-wise percentiles of the members' maximum
heights would need every member's field: hundreds of runs, or unit-source fields the
database does not store (a maximum does not superpose). Instead the members are ordered
by their *severity*, the mean over the region's town forecast points of the ranking
height divided by the ensemble's median there (each town weighs the same), and the
member at each percentile rank (nearest rank: the 50th, 84th and 95th by default) is run
with the linear long-wave equations on the database's outer grid, as the tier-2 check
(0.6 s of CPU on the Okushiri 2' grid). Its maximum sea-surface height is published as
the map of that percentile: one physically consistent earthquake per percentile, as
scenario databases publish (JMA), not a cell-wise percentile (which no single
earthquake produces), and offshore (the database grid) rather than inundation.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import xarray as xr
from scipy.optimize import nnls

from tsunami.boundaries import SIDES
from tsunami.errors import InputError
from tsunami.realtime.alerts import EarthquakeAlert
from tsunami.realtime.database import UnitSourceDatabase
from tsunami.source.okada import FaultModel, Subfault, plane_point
from tsunami.source.scaling import (
    LAWS,
    MIN_TOP_DEPTH,
    default_law,
    moment_from_magnitude,
)
from tsunami.source.sea_surface import KajiuraFilter, fault_sea_surface


@dataclass(frozen=True)
class EnsembleSettings:
    """The alert's uncertainty the ensemble spans (module doc); angles in degrees."""

    along_strike: tuple[float, ...] = (-0.5, -0.3, 0.0, 0.3, 0.5)
    down_dip: tuple[float, ...] = (-0.25, 0.0, 0.25)
    strike_offsets: tuple[float, ...] = (-15.0, 0.0, 15.0)
    dip_offsets: tuple[float, ...] = (-10.0, 0.0, 10.0)
    magnitude_offsets: tuple[float, ...] = (0.0, 0.2)
    saturation_magnitude: float = 8.0
    saturation_offsets: tuple[float, ...] = (0.5, 1.0)
    size_sigmas: tuple[float, ...] = (-2.0, -1.0, 0.0)
    #: Members run with the full nested model (the decisive ones, module doc).
    full_runs: int = 2
    #: Members per town shortlisted by the projection and run on the database's grid.
    verify: int = 4
    #: Percentiles of severity whose members are mapped (module doc); () for none.
    percentile_maps: tuple[float, ...] = (50.0, 84.0, 95.0)
    #: Radius (km) of the sea in front of a town whose initial surface counts (module doc).
    near_km: float = 30.0
    #: Depth (m) and mechanism (strike, dip, rake) when the alert gives none.
    default_depth_m: float = 15000.0
    default_mechanism: tuple[float, float, float] = (0.0, 30.0, 90.0)

    def __post_init__(self) -> None:
        if self.full_runs < 1 or self.verify < 1:
            raise ValueError("full_runs and verify must be at least 1")
        if not all(0.0 < q <= 100.0 for q in self.percentile_maps):
            raise ValueError("percentile_maps must lie in (0, 100]")


@dataclass(frozen=True)
class Member:
    """One scaling-law fault of the ensemble and its ranking."""

    index: int
    fault: Subfault
    magnitude: float
    hypocentre_position: tuple[float, float]  # along strike, down dip (fraction from centroid)
    size_sigma: float
    #: Forecast point -> ranking height (m): the larger of the offshore maximum there and
    #: the highest initial sea surface within ``near_km`` of it (module doc).
    heights: dict[str, float] = field(default_factory=dict)
    uplift_near: dict[str, float] = field(default_factory=dict)
    projection_residual: float = math.nan
    #: Maxima (m) of the linear run on the database's grid, for shortlisted members.
    verified: dict[str, float] | None = None

    def fault_model(self, law: str) -> FaultModel:
        f = self.fault
        metadata = {"law": law, "magnitude": self.magnitude, "slip_m": f.slip,
                    "length_m": f.length, "width_m": f.width, "strike": f.strike,
                    "dip": f.dip, "size_sigma": self.size_sigma,
                    "hypocentre_along_strike": self.hypocentre_position[0],
                    "hypocentre_down_dip": self.hypocentre_position[1],
                    "ensemble_member": self.index}
        return FaultModel((f,), metadata, None)


@dataclass
class Ensemble:
    """The ranked ensemble of an alert: members, the decisive ones, timings (s)."""

    alert: EarthquakeAlert
    law: str
    members: list[Member]
    points: list[str]
    towns: dict[str, str]  # forecast point -> its town
    decisive: list[Member]
    ranking_s: float
    verify_s: float = 0.0
    #: The forecast points of the region's towns the members were chosen for.
    chosen: list[str] = field(default_factory=list)
    #: Member index -> its tier-2 run with the maximum field, for the shortlisted
    #: members that are also at a percentile of the maps (:func:`rank`).
    linear_runs: dict[int, dict] = field(default_factory=dict)

    def severity(self) -> np.ndarray:
        """Per member the mean over ``chosen`` points of its ranking height divided by
        the ensemble's median there (module doc)."""
        points = self.chosen or self.points
        table = np.array([[m.heights[p] for p in points] for m in self.members])
        median = np.median(table, axis=0)
        return np.mean(table / np.where(median > 0, median, 1.0), axis=1)

    def at_percentiles(self, q: tuple[float, ...]) -> dict[float, Member]:
        """The member at each percentile ``q`` of severity (nearest rank)."""
        order = np.argsort(self.severity(), kind="stable")
        n = len(order)
        return {p: self.members[order[max(math.ceil(p / 100.0 * n), 1) - 1]] for p in q}

    def percentiles(self, q: tuple[float, ...] = (50.0, 84.0, 95.0, 100.0)
                    ) -> dict[str, list[float]]:
        """Per forecast point the percentiles ``q`` of the members' maxima (m)."""
        table = np.array([[m.heights[p] for p in self.points] for m in self.members])
        return {p: [float(np.percentile(table[:, j], v)) for v in q]
                for j, p in enumerate(self.points)}

    def write_csv(self, path) -> None:
        """``ensemble.csv``: per forecast point the ensemble's percentiles and the
        decisive members' heights; then every member with its parameters and heights."""
        from tsunami.atomic import atomic_path

        q = (50.0, 84.0, 95.0, 100.0)
        pct = self.percentiles(q)
        with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
            f.write(f"# Alert ensemble of {len(self.members)} scaling-law faults ({self.law}); "
                    "heights: maximum sea-surface height (m) at the forecast points from the "
                    "linear unit-source database (ranking, not the published fields)\n")
            f.write("# member<k>_m: the decisive members' maxima from their linear run on "
                    "the database's grid (tier 2)\n")
            f.write("point,town,p50_m,p84_m,p95_m,max_m,"
                    + ",".join(f"member{m.index}_m" for m in self.decisive) + "\n")
            for p in self.points:
                f.write(f"{p},{self.towns.get(p, '')},"
                        + ",".join(f"{v:.3f}" for v in pct[p]) + ","
                        + ",".join(f"{m.verified[p]:.3f}" for m in self.decisive) + "\n")
            f.write("\nmember,magnitude,longitude,latitude,top_depth_m,strike,dip,rake,slip_m,"
                    "length_m,width_m,size_sigma,hypocentre_along,hypocentre_down,"
                    "projection_residual," + ",".join(self.points) + "\n")
            for m in self.members:
                s = m.fault
                f.write(f"{m.index},{m.magnitude:.2f},{s.longitude:.4f},{s.latitude:.4f},"
                        f"{s.depth:.0f},{s.strike:.1f},{s.dip:.1f},{s.rake:.1f},{s.slip:.3f},"
                        f"{s.length:.0f},{s.width:.0f},{m.size_sigma:g},"
                        f"{m.hypocentre_position[0]:g},{m.hypocentre_position[1]:g},"
                        f"{m.projection_residual:.3f},"
                        + ",".join(f"{m.heights[p]:.3f}" for p in self.points) + "\n")


def members(alert: EarthquakeAlert, settings: EnsembleSettings) -> tuple[str, list[Member]]:
    """The ensemble's faults for ``alert`` (module doc) and the scaling law's name."""
    args = alert.fault_arguments(settings.default_depth_m, settings.default_mechanism)
    strike0, dip0, rake = args["strike"], args["dip"], args["rake"]
    law_name = default_law(dip0, rake)
    law = LAWS[law_name]
    magnitudes = [alert.magnitude + d for d in settings.magnitude_offsets]
    if alert.magnitude >= settings.saturation_magnitude or alert.magnitude_lower_bound:
        magnitudes += [alert.magnitude + d for d in settings.saturation_offsets]
    out, seen = [], set()
    # The mechanism varies one angle at a time (strike, then dip): the uncertainties are
    # not that of a full product, and it keeps the ensemble small.
    mechanisms = [(d, 0.0) for d in settings.strike_offsets] + [
        (0.0, d) for d in settings.dip_offsets if d != 0.0 or 0.0 not in
        settings.strike_offsets]
    grid = itertools.product(sorted(set(magnitudes)), settings.size_sigmas, mechanisms,
                             settings.along_strike, settings.down_dip)
    for mw, sigma, (d_strike, d_dip), along, down in grid:
        dip = min(max(dip0 + d_dip, 5.0), 90.0)
        strike = (strike0 + d_strike) % 360.0
        length = law.length_m(mw) * 10 ** (sigma * law.sigma_length)
        width = law.width_m(mw) * 10 ** (sigma * law.sigma_width)
        slip = moment_from_magnitude(mw) / (law.rigidity * length * width)
        fault = place(args["longitude"], args["latitude"], args["depth"], strike, dip, rake,
                      slip, length, width, along, down)
        key = (round(fault.longitude, 4), round(fault.latitude, 4), round(fault.depth),
               strike, dip, round(slip, 3), round(length), round(width))
        if key in seen:  # a shallow hypocentre: slid to the same place as another member
            continue
        seen.add(key)
        out.append(Member(len(out), fault, mw, (along, down), sigma))
    return law_name, out


def place(lon: float, lat: float, depth: float, strike: float, dip: float, rake: float,
          slip: float, length: float, width: float, along: float, down: float,
          min_top_depth: float = MIN_TOP_DEPTH) -> Subfault:
    """The rectangle whose hypocentre (lon, lat, depth m) lies ``along`` x length along
    strike and ``down`` x width down dip from its centroid; slid down dip in its plane
    where its top edge would be shallower than ``min_top_depth`` (as
    :func:`tsunami.source.scaling.fault_from_alert`)."""
    sin_dip = math.sin(math.radians(dip))
    to_top = -down * width - 0.5 * width  # hypocentre -> top edge, down dip (m)
    shift = max(0.0, (min_top_depth - (depth + to_top * sin_dip)) / sin_dip)
    x, y, top = plane_point(lon, lat, depth, strike, dip, -along * length, to_top + shift)
    return Subfault(x, y, max(top, 0.0), strike, dip, rake, slip, length, width)


def rank(alert: EarthquakeAlert, db: UnitSourceDatabase, towns: set[str] | None = None,
         settings: EnsembleSettings | None = None) -> Ensemble:
    """Build and rank the ensemble of ``alert`` with ``db`` (module doc). ``towns``: the
    names of the towns the forecast publishes; the members decisive in front of them (at
    the forecast points of those towns) are chosen (None or no such point: all points).

    The tier-2 runs use the caller's Numba threads (through the core budget, as every
    run), and a shortlisted member that is also at one of ``settings.percentile_maps``
    keeps its map (:attr:`Ensemble.linear_runs`), which :func:`percentile_maps` then
    does not run again."""
    import numba

    settings = settings or EnsembleSettings()
    start = time.perf_counter()
    law, faults = members(alert, settings)
    basis = _basis(db)
    points = [p for p in db.forecast_points]
    responses = np.stack([db.response(p) for p in points])  # (point, unit, time)
    near = _near_masks(db, points, settings.near_km, basis.wet)

    def project(m: Member) -> tuple[dict[str, float], dict[str, float], float]:
        target = fault_sea_surface([m.fault], db.grid, basis.depth,
                                   kajiura=basis.kajiura)[basis.wet]
        # Least squares on the basis, through its QR factors: min |R c - Q^T b|, c >= 0.
        coeff, _ = nnls(basis.r, basis.q.T @ target)
        norm = float(np.linalg.norm(target))
        resid = float(np.linalg.norm(basis.surfaces @ coeff - target)) / norm if norm > 0 \
            else 1.0
        series = np.einsum("u,put->pt", coeff, responses)
        uplift = {p: float(target[near[p]].max()) if near[p].any() else 0.0 for p in points}
        return uplift, {p: max(float(series[j].max()), uplift[p])
                        for j, p in enumerate(points)}, resid

    # Members are independent and their numpy and FFT work releases the GIL: one thread
    # per kernel thread the caller has (each member's result is the same either way).
    with ThreadPoolExecutor(max(1, numba.get_num_threads())) as pool:
        for m, (uplift, heights, resid) in zip(faults, pool.map(project, faults),
                                               strict=True):
            object.__setattr__(m, "uplift_near", uplift)
            object.__setattr__(m, "heights", heights)
            object.__setattr__(m, "projection_residual", resid)
    town_of = {p: db.points[p].town for p in points}
    chosen = [p for p in points if towns and town_of[p] in towns] or points
    ranked = time.perf_counter()
    ensemble = Ensemble(alert, law, faults, points, town_of, [], ranked - start, 0.0, chosen)
    shortlist = {m.index: m for p in chosen for m in
                 sorted(faults, key=lambda m: -m.heights[p])[:settings.verify]}
    mapped = {m.index for m in ensemble.at_percentiles(settings.percentile_maps).values()}
    for m in shortlist.values():
        run = _linear_run(db, m.fault, max_field=m.index in mapped)
        if m.index in mapped:
            ensemble.linear_runs[m.index] = run
        object.__setattr__(m, "verified", {p: max(float(run["eta"][k].max()),
                                                  m.uplift_near[p])
                                           for k, p in enumerate(points)})
    ensemble.decisive = decisive_members(list(shortlist.values()), chosen,
                                         settings.full_runs, key="verified")
    ensemble.verify_s = time.perf_counter() - ranked
    return ensemble


@dataclass(frozen=True)
class _Basis:
    """What the projection needs of a database, whatever the alert (:func:`_basis`)."""

    wet: np.ndarray  # the grid's sea cells (elevation < 0)
    depth: np.ndarray  # still water depth (m), 0 on land
    surfaces: np.ndarray  # (wet cell, unit): the units' initial sea surfaces there
    q: np.ndarray  # QR factors of ``surfaces``
    r: np.ndarray
    kajiura: KajiuraFilter  # the Kajiura filter of the grid's depth, transfers kept


#: Per open database its :class:`_Basis`, built on the first ranking (seconds on a big
#: grid: the float64 copy and QR of 201,000 x 55 surfaces on the Japan Trench database).
_BASES: weakref.WeakKeyDictionary[UnitSourceDatabase, _Basis] = weakref.WeakKeyDictionary()


def _basis(db: UnitSourceDatabase) -> _Basis:
    """The database's :class:`_Basis`, built once per database object."""
    basis = _BASES.get(db)
    if basis is None:
        wet = db.elevation < 0
        surfaces = np.ascontiguousarray(db.load_sea_surfaces().astype(np.float64)[:, wet].T)
        q, r = np.linalg.qr(surfaces)
        depth = np.where(wet, -db.elevation, 0.0)
        basis = _Basis(wet, depth, surfaces, q, r, KajiuraFilter(depth, db.grid))
        _BASES[db] = basis
    return basis


def _near_masks(db: UnitSourceDatabase, points: list[str], km: float, wet: np.ndarray
                ) -> dict[str, np.ndarray]:
    """Per point, which wet cells of the database's grid lie within ``km`` of it (as
    given, before any move off land), as a mask over the wet cells."""
    from tsunami.source.sea_surface import grid_lonlat

    lon, lat = grid_lonlat(db.grid)
    out = {}
    for p in points:
        q = db.points[p]
        east = (lon - q.lon) * 111.195 * np.cos(np.radians(q.lat))
        out[p] = (np.hypot(east, (lat - q.lat) * 111.195) <= km)[wet]
    return out


def _linear_run(db: UnitSourceDatabase, fault: Subfault, max_field: bool = False) -> dict:
    """``fault`` run exactly as the database's units were (linear long-wave equations on
    its outer grid, its time step and duration), on the caller's Numba threads: the
    sea surface at the forecast points (``eta``, in the order of ``db.forecast_points``)
    and with ``max_field`` the maximum sea-surface height of every cell
    (:func:`~tsunami.realtime.database.unit_response`)."""
    import numba

    from tsunami.realtime.database import unit_response

    return unit_response(fault, db.grid, -db.elevation, _boundaries(db),
                         [db.points[p] for p in db.forecast_points], db.times,
                         float(db.attrs["dt_s"]), str(db.attrs.get("dtype", "float32")),
                         kernel_threads=numba.get_num_threads(), max_field=max_field)


def percentile_maps(ensemble: Ensemble, db: UnitSourceDatabase, folder,
                    q: tuple[float, ...] = (50.0, 84.0, 95.0)) -> dict[float, object]:
    """COGs ``ensemble_p<q>_max_eta.tif`` in ``folder``: the maximum sea-surface height
    (m, float32, nodata -9999 on land, overviews by maximum: the conventions of the
    published layers, :mod:`tsunami.products.layers`) of the member at each percentile
    of severity, run with the linear equations (module doc). They stay on the
    database's outer grid and CRS (EPSG:4326 for a geographic zone), which spans more
    than one plane-rectangular zone. Returns percentile -> (member, path)."""
    from pathlib import Path

    from affine import Affine

    from tsunami.atomic import atomic_path
    from tsunami.cog import write_cog
    from tsunami.products.layers import NODATA

    grid = db.grid
    transform = Affine(grid.dx, 0.0, grid.x0, 0.0, -grid.dy, grid.y0 + grid.ny * grid.dy)
    out = {}
    for p, m in ensemble.at_percentiles(q).items():
        result = ensemble.linear_runs.get(m.index) or _linear_run(db, m.fault,
                                                                  max_field=True)
        path = Path(folder) / f"ensemble_p{p:g}_max_eta.tif"
        f = m.fault
        with atomic_path(path) as tmp:
            values = np.nan_to_num(result["max_eta"][::-1], nan=NODATA)
            write_cog(tmp, [values.astype(np.float32)], transform=transform, crs=grid.crs,
                      nodata=NODATA,
                      overview="max", units=["m"],
                      descriptions=[f"maximum sea-surface height, ensemble member at the "
                                    f"{p:g}th percentile of severity"],
                      tags={"units": "m", "percentile": f"{p:g}",
                            "method": "ensemble member at this percentile rank of severity "
                                      "(mean ranking height at the towns' forecast points "
                                      "over the ensemble median), linear long-wave "
                                      "equations on the unit-source database's outer grid; "
                                      "not a cell-wise percentile; offshore heights, not "
                                      "inundation",
                            "member": str(m.index), "magnitude_Mw": f"{m.magnitude:.2f}",
                            "fault": f"{f.length / 1e3:.0f} x {f.width / 1e3:.0f} km, "
                                     f"slip {f.slip:.2f} m, strike {f.strike:g}, dip "
                                     f"{f.dip:g}",
                            "simulated_s": f"{float(db.times[-1]):.0f}"})
        out[p] = (m, path)
    return out


def _boundaries(db: UnitSourceDatabase) -> dict[str, str]:
    """The outer grid's boundary conditions from the database's region file (open where
    it cannot be read: the usual choice for an outer grid)."""
    from tsunami.region import Region

    with contextlib.suppress(InputError, OSError, KeyError):
        region = Region.load(db.attrs["region_file"])
        return dict(region.grids[0].boundaries)
    return dict.fromkeys(SIDES, "open")


def decisive_members(faults: list[Member], points: list[str], limit: int,
                     key: str = "heights", tolerance: float = 0.1) -> list[Member]:
    """The members to run at full nesting, at most ``limit``: first the one highest
    (``key``: "heights" from the projection or "verified") at the most town points (ties:
    the larger height), then, while some point's highest member is more than
    ``tolerance`` above every member chosen, the one highest at the most such points.
    A near-copy of a chosen member is so not run again."""
    best = {p: max(getattr(m, key)[p] for m in faults) for p in points}
    chosen: list[Member] = []
    open_points = list(points)
    while open_points and len(chosen) < limit:
        wins: dict[int, list[str]] = {}
        for p in open_points:
            top = max(faults, key=lambda m: getattr(m, key)[p])
            wins.setdefault(top.index, []).append(p)
        by_index = {m.index: m for m in faults}
        pick = min(wins, key=lambda i: (-len(wins[i]), -max(
            getattr(by_index[i], key)[p] for p in wins[i])))
        chosen.append(by_index[pick])
        open_points = [p for p in open_points if max(getattr(m, key)[p] for m in chosen)
                       < (1.0 - tolerance) * best[p]]
    return chosen


def envelope(towns: list[dict[str, xr.Dataset]]) -> dict[str, xr.Dataset]:
    """Cell by cell the largest maxima and the earliest arrival over several runs' town
    fields (same region, so the same grids)."""
    if len(towns) == 1:
        return towns[0]
    out = {}
    for name, first in towns[0].items():
        ds = first.copy()
        for other in towns[1:]:
            o = other[name]
            for var in ("max_eta", "max_depth", "max_speed", "max_momentum_flux"):
                if var in ds:
                    ds[var] = xr.where(np.isnan(ds[var]), o[var],
                                       np.fmax(ds[var], o[var])).assign_attrs(ds[var].attrs)
            if "arrival_time" in ds:
                ds["arrival_time"] = np.fmin(ds["arrival_time"], o["arrival_time"]
                                             ).assign_attrs(ds["arrival_time"].attrs)
        out[name] = ds.assign_attrs(envelope_of_runs=len(towns))
    return out
