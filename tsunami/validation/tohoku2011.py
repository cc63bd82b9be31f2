"""The 2011 Tohoku-oki tsunami at the offshore gauges of the Japan Trench grid.

Two checks that together separate solver error from inversion error:

1. Forward: the slip model of Satake et al. (2013), run on the ETOPO1 outer grid
   (``grids/tohoku2011``, 1', nonlinear where shallower than 100 m) with its kinematic
   rupture (and instantaneously, as the unit sources assume), against the records of the
   GPS buoys 802, 806, 807 and the bottom-pressure gauges P02, P06: Aida's K and kappa of
   the peak heights in the first hour, and the differences of arrival times (first rise
   to 20 % of each record's own peak, so that amplitude errors do not pass for timing
   errors) and of peak times.
2. Inversion: the records up to 10, 15, 20 and 30 minutes after the origin, inverted for
   the slip of the 55 Japan Trench unit sources (``japan_trench_zone.toml``, after
   Satake et al. 2013), each unit delayed by a 2 km/s rupture front from the JMA
   hypocentre (as an alert would give it): Mw, variance reduction and where the slip
   lies against the hypocentre. Judged: Mw 8.8-9.1 at 30 minutes (published models:
   8.8-9.1). For reference, the Satake et al. (2013) slip carried to the units is run
   through the database the same way (linear, instantaneous per unit): its variance
   reduction is what that published model achieves with this database and these data.

Records (``scenarios/tohoku2011/gauges``, see SOURCE.md there) get the minimal processing a
real-time system could apply (the full quality control of the feeds replaces it):
times shifted to the origin (file t = 0 is 24 s before it); the pre-event level
removed (bottom-pressure gauges: the mean before the origin, the only quiet stretch;
GPS buoys: the mean of the first 300 s of the file, before the tsunami arrives); the
bottom-pressure records low-passed (4th-order Butterworth, zero phase over the data up
to the time of the estimate, cut-off period :data:`BPR_LOWPASS_S`) against the seismic
waves of the first minutes. Tides are not removed (a few tens of centimetres over 30
minutes, against metres of tsunami). A bottom-pressure gauge on the deforming sea floor
records the water column, eta - uz: the model is compared in the same terms.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from scipy.signal import butter, sosfiltfilt

from tsunami.diagnostics import aida
from tsunami.validation import CaseResult, Metric

ROOT = Path(__file__).resolve().parents[2]
GRIDS = ROOT / "grids" / "tohoku2011"
RECORDS = ROOT / "scenarios" / "tohoku2011" / "gauges"  # the recorded feeds, replayed too
SCENARIO = ROOT / "scenarios" / "tohoku2011_satake2013.toml"
FILE_START_BEFORE_ORIGIN_S = 24.0  # file t = 0 at 05:46:00 UTC, origin 05:46:24 UTC
BUOY_REFERENCE_S = 300.0  # file time: buoys see no tsunami before this
BPR_LOWPASS_S = 120.0
COMPARISON_S = 3600.0
ARRIVAL_FRACTION = 0.2
INVERSION_TIMES_S = (600.0, 900.0, 1200.0, 1800.0)
HYPOCENTRE = (142.861, 38.104, 24000.0)  # JMA: lon, lat (deg), depth (m)
MW_RANGE = (8.8, 9.1)  # published estimates of the 2011 event


def read_dat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A two-column record ``t eta`` (s from 05:46:00 UTC, m; ``nan`` missing) as times
    after the origin and values."""
    data = np.loadtxt(path)
    return data[:, 0] - FILE_START_BEFORE_ORIGIN_S, data[:, 1]


def preprocess(kind: str, t: np.ndarray, eta: np.ndarray, now: float | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
    """The minimal processing of the module doc, using the samples up to ``now`` (s)."""
    if now is not None:
        keep = t <= now
        t, eta = t[keep], eta[keep]
    bpr = kind == "bottom_pressure"
    quiet = (t < 0) if bpr else (t + FILE_START_BEFORE_ORIGIN_S <= BUOY_REFERENCE_S)
    out = eta - np.nanmean(eta[quiet])
    if bpr and t.size > 12:
        step = float(np.median(np.diff(t)))
        sos = butter(4, step / BPR_LOWPASS_S * 2.0, output="sos")  # cut-off / Nyquist
        missing = ~np.isfinite(out)
        filled = np.interp(t, t[~missing], out[~missing])
        out = sosfiltfilt(sos, filled, padlen=min(3 * 12, t.size - 1))
        out[missing] = np.nan
    return t, out


def records(catalogue, now: float | None = None) -> dict:
    """Processed records of every catalogued station up to ``now`` (s after the origin)."""
    from tsunami.realtime.inversion import GaugeRecord

    out = {}
    for station in catalogue:
        t, eta = read_dat(RECORDS / f"{station.id}.dat")
        out[station.id] = GaugeRecord(*preprocess(station.kind, t, eta, now))
    return out


def forward(region, kinematic: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The Satake et al. (2013) model on the region: each gauge's modelled record
    (bottom-pressure gauges: eta less the final sea-floor uplift)."""
    from tsunami.runner import run
    from tsunami.scenario import FaultSource, Scenario
    from tsunami.source.kinematic import is_kinematic
    from tsunami.source.okada import FaultModel, seafloor_displacement

    scenario = Scenario.load(SCENARIO)
    source = scenario.source
    if not kinematic:
        still = [dataclasses.replace(s, rupture_time=0.0, rise_time=0.0)
                 for s in source.subfaults]
        assert not is_kinematic(still)
        scenario.source = FaultSource(source.kind, FaultModel(still, source.fault.metadata,
                                                              source.fault.hypocentre),
                                      source.tanioka_satake, source.kajiura, source.path)
    scenario.duration = COMPARISON_S
    result = run(region, scenario)
    catalogue = stations()
    series = {}
    for gauge in region.gauges:
        eta = result.gauges["eta"].sel(gauge=gauge.name).values
        if catalogue[gauge.name].kind == "bottom_pressure":
            eta = eta - seafloor_displacement(source.subfaults, gauge.x, gauge.y)[2]
        series[gauge.name] = (result.gauges["time"].values, eta)
    return series


def stations():
    from tsunami.realtime.stations import StationCatalogue

    return StationCatalogue.load(GRIDS / "stations.toml")


def arrival(t: np.ndarray, eta: np.ndarray, threshold: float) -> float:
    """First time (s) the record reaches ``threshold`` (m); NaN if never."""
    above = np.nonzero(np.nan_to_num(eta, nan=-np.inf) >= threshold)[0]
    return float(t[above[0]]) if above.size else float("nan")


def compare_forward(observed: dict, modelled: dict) -> dict:
    """Peaks (m), arrival times and peak times (s) of observed and modelled records in
    the first hour, after the BPRs' seismic gate."""
    rows = {}
    for sid, (t_obs, e_obs) in observed.items():
        t_mod, e_mod = modelled[sid]
        gate = 180.0 if sid.startswith("P") else 0.0
        o = (t_obs >= gate) & (t_obs <= COMPARISON_S)
        m = (t_mod >= gate) & (t_mod <= COMPARISON_S)
        peak_obs = float(np.nanmax(e_obs[o]))
        peak_mod = float(np.nanmax(e_mod[m]))
        rows[sid] = {
            "peak_observed_m": peak_obs, "peak_modelled_m": peak_mod,
            "arrival_observed_s": arrival(t_obs[o], e_obs[o], ARRIVAL_FRACTION * peak_obs),
            "arrival_modelled_s": arrival(t_mod[m], e_mod[m], ARRIVAL_FRACTION * peak_mod),
            "peak_time_observed_s": float(t_obs[o][np.nanargmax(e_obs[o])]),
            "peak_time_modelled_s": float(t_mod[m][np.nanargmax(e_mod[m])]),
        }
    return rows


def build_database(out: Path):
    """The Japan Trench unit-source database for this grid, built into ``out`` (reused
    when it is there)."""
    from tsunami.realtime.database import (
        UnitSourceDatabase,
        build_database,
        read_forecast_points,
    )
    from tsunami.realtime.zone import FaultZone
    from tsunami.region import Region

    report = build_database(FaultZone.load(GRIDS / "japan_trench_zone.toml"),
                            Region.load(GRIDS / "region.toml"), stations(), out,
                            forecast_points=read_forecast_points(GRIDS /
                                                                 "forecast_points.csv"),
                            duration=COMPARISON_S, interval=15.0, progress=True)
    print(report.summary())
    return UnitSourceDatabase(out)


def satake_on_units(db) -> np.ndarray:
    """The Satake et al. (2013) total slip (m) carried to the unit sources: each of its
    subfaults to the unit whose centroid is nearest (the zone follows its geometry, so
    this is one to one)."""
    from tsunami.source.table import read_subfault_csv

    centres = np.array([u.centroid[:2] for u in db.units])
    slip = np.zeros(len(db.units))
    for s in read_subfault_csv(GRIDS / "satake2013_subfaults.csv", "top_start"):
        lon, lat, _ = s.centroid
        k = int(np.argmin(np.hypot((centres[:, 0] - lon) * np.cos(np.radians(lat)),
                                   centres[:, 1] - lat)))
        slip[k] += s.slip
    return slip


def slip_centroid(estimate) -> tuple[float, float]:
    """Slip-weighted mean depth (m) of the unit centroids and the trench-normal distance
    (m, positive up dip) of that centroid from the hypocentre."""
    from tsunami.source.okada import EARTH_RADIUS

    slip = estimate.slip
    if slip.sum() <= 0:
        return float("nan"), float("nan")
    centroids = np.array([u.centroid for u in estimate.db.units])
    depth = float(np.dot(slip, centroids[:, 2]) / slip.sum())
    lon = float(np.dot(slip, centroids[:, 0]) / slip.sum())
    lat = float(np.dot(slip, centroids[:, 1]) / slip.sum())
    strike = np.radians(estimate.db.units[0].strike)
    east = EARTH_RADIUS * np.cos(np.radians(lat)) * np.radians(lon - HYPOCENTRE[0])
    north = EARTH_RADIUS * np.radians(lat - HYPOCENTRE[1])
    # Up dip is against the dip direction, strike - 90 degrees (the trench side).
    updip = east * np.sin(strike - np.pi / 2) + north * np.cos(strike - np.pi / 2)
    return depth, float(updip)


def case(out: Path | None) -> CaseResult:
    """Forward comparison of Satake et al. (2013) and inversions at 10-30 minutes."""
    from tsunami.realtime.inversion import evaluate, invert
    from tsunami.region import Region
    from tsunami.source.scaling import magnitude_from_moment

    start = time.perf_counter()
    out = Path(out or "validation_output") / "tohoku2011"
    out.mkdir(parents=True, exist_ok=True)
    name = "tohoku2011"
    result = CaseResult(name)
    region = Region.load(GRIDS / "region.toml")
    catalogue = stations()
    observed = {sid: (r.time, r.eta) for sid, r in records(catalogue).items()}
    for kinematic in (True, False):
        label = "kinematic" if kinematic else "instantaneous"
        modelled = forward(region, kinematic)
        rows = compare_forward(observed, modelled)
        k, kappa = aida(np.array([r["peak_observed_m"] for r in rows.values()]),
                        np.array([r["peak_modelled_m"] for r in rows.values()]))
        result.metrics += [
            Metric(name, f"Satake 2013 {label}: Aida K of peaks", k, 1.0, k - 1.0, None,
                   "absolute"),
            Metric(name, f"Satake 2013 {label}: kappa of peaks", kappa, 1.0, kappa - 1.0,
                   None, "absolute")]
        for sid, r in rows.items():
            result.metrics += [
                Metric(name, f"{label} {sid} peak", r["peak_modelled_m"],
                       r["peak_observed_m"], r["peak_modelled_m"] - r["peak_observed_m"],
                       None, "absolute", "m"),
                Metric(name, f"{label} {sid} arrival (20 % of own peak)",
                       r["arrival_modelled_s"], r["arrival_observed_s"],
                       r["arrival_modelled_s"] - r["arrival_observed_s"], None,
                       "absolute", "s"),
                Metric(name, f"{label} {sid} time of peak", r["peak_time_modelled_s"],
                       r["peak_time_observed_s"],
                       r["peak_time_modelled_s"] - r["peak_time_observed_s"], None,
                       "absolute", "s")]
        result.figures.append(_plot_forward(out / f"satake2013_{label}.png", observed,
                                            modelled, label))
    db = build_database(out / "japan_trench_db")
    # The published model carried to the units and run through the database (linear
    # equations, instantaneous): what a perfect inversion could reach at best.
    satake = satake_on_units(db)
    satake_mw = magnitude_from_moment(db.moment(satake))
    linear = {sid: (db.times, satake @ db.response(sid)) for sid in observed}
    rows = compare_forward(observed, linear)
    k, kappa = aida(np.array([r["peak_observed_m"] for r in rows.values()]),
                    np.array([r["peak_modelled_m"] for r in rows.values()]))
    result.metrics += [
        Metric(name, "Satake 2013 on the units (linear): Aida K of peaks", k, 1.0, k - 1.0,
               None, "absolute"),
        Metric(name, "Satake 2013 on the units (linear): kappa of peaks", kappa, 1.0,
               kappa - 1.0, None, "absolute"),
        Metric(name, "Satake 2013 on the units: Mw", satake_mw, 9.0, satake_mw - 9.0, None,
               "absolute")]
    for now in INVERSION_TIMES_S:
        data = records(catalogue, now)
        reference = evaluate(db, data, now, satake, hypocentre=HYPOCENTRE)
        result.metrics.append(Metric(
            name, f"Satake 2013 on the units: variance reduction {now / 60:.0f} min",
            reference.variance_reduction, 1.0, reference.variance_reduction - 1.0, None,
            "absolute"))
        estimate = invert(db, data, now, hypocentre=HYPOCENTRE)
        files = estimate.write(out / f"inversion_{now / 60:.0f}min")
        result.figures += [files["slip_map"], files["fit"]]
        depth, updip = slip_centroid(estimate)
        minutes = f"{now / 60:.0f} min"
        judged = now == INVERSION_TIMES_S[-1]
        centre = 0.5 * sum(MW_RANGE)
        result.metrics += [
            Metric(name, f"inversion {minutes}: Mw", estimate.magnitude, centre,
                   estimate.magnitude - centre,
                   0.5 * (MW_RANGE[1] - MW_RANGE[0]) if judged else None, "absolute"),
            Metric(name, f"inversion {minutes}: variance reduction",
                   estimate.variance_reduction, 1.0, estimate.variance_reduction - 1.0,
                   None, "absolute"),
            Metric(name, f"inversion {minutes}: rms misfit", estimate.rms_m, 0.0,
                   estimate.rms_m, None, "absolute", "m"),
            Metric(name, f"inversion {minutes}: slip centroid up dip of hypocentre",
                   updip / 1e3, 0.0, updip / 1e3, None, "absolute", "km"),
            Metric(name, f"inversion {minutes}: slip centroid depth", depth / 1e3,
                   HYPOCENTRE[2] / 1e3, (depth - HYPOCENTRE[2]) / 1e3, None, "absolute",
                   "km"),
            Metric(name, f"inversion {minutes}: stations used", len(estimate.stations),
                   len(catalogue), len(estimate.stations) - len(catalogue), None,
                   "absolute"),
            Metric(name, f"inversion {minutes}: wall time", estimate.inversion_wall_s, 0.0,
                   estimate.inversion_wall_s, None, "absolute", "s")]
    result.wall_time = time.perf_counter() - start
    return result


def _plot_forward(path: Path, observed: dict, modelled: dict, label: str) -> Path:
    fig = Figure(figsize=(9, 2.0 * len(observed) + 0.8), constrained_layout=True)
    axes = fig.subplots(len(observed), 1, sharex=True)
    for ax, (sid, (t, eta)) in zip(axes, observed.items(), strict=True):
        tm, em = modelled[sid]
        ax.plot(t / 60, eta, "k-", lw=0.8, label="observed (processed)")
        ax.plot(tm / 60, em, "r-", lw=1.0, label=f"Satake et al. (2013), {label}")
        ax.set_xlim(0, COMPARISON_S / 60)
        ax.set_ylabel("m")
        ax.set_title(sid, loc="left", fontsize=9)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("minutes after the origin (05:46:24 UTC)")
    fig.suptitle("2011 Tohoku-oki: records and the Satake et al. (2013) model on ETOPO1 1'")
    fig.savefig(path, dpi=100)
    return path
