"""Gauge triggers: the DART on-board detector on every stream, and a de-tided anomaly
threshold over a network.

**DART detector** (Mofjeld 1997, NOAA Tech. Memo. ERL PMEL-112; as described by NDBC and
in ``shared/research/feeds_triggers_inversion.md`` section 2.1). Each 15-s sample is
compared with a prediction of the tide, a cubic extrapolation through four 10-min
averages of the past samples spaced one hour apart:

    H_p(t) = sum_{i=0..3} w_i H*(t - t' - i h),  t' = 5.25 min,  h = 1 h

with the published weights w = (1.16818457031250, -0.28197558593750, 0.14689746093750,
-0.03310644531250): the Lagrange weights of a cubic through nodes 0, -1, -2, -3 h read
at +0.0875 h (the newest 10-min average ends one sample before the predicted one, so
its centre lies 5 min + 15 s earlier). :func:`extrapolation_weights` computes them for
any lead; a test checks the published values. A sample whose |observed - H_p| exceeds
30 mm is out of bounds; two consecutive out-of-bound samples trigger, at the time of the
second (NDBC's T = 0). The station then stays in event mode for 3 h (``event_s``)
before it can trigger again.

Differences from the buoy, stated: streams finer than 15 s are first averaged into 15-s
bins (what the BPR reports); coarser streams (the 60-s samples of the 2011 DART files)
are used as they are, one sample each. A buoy runs for months, so its 3 h 10 min of
history always exists; a stream that has just started (a replay beginning at the
origin) has fewer complete hourly averages: the detector then extrapolates through
those it has (Lagrange of lower order: the last 10-min mean with one, a line with two),
which tracks the tide less well (a deep-ocean M2 of 0.5 m changes by up to about 2 cm in
5 min) and is reported as ``taps`` in each event. Samples flagged by quality control
(``ignore``: spikes, seismic shaking) are left out of the averages and are not tested:
run on raw samples (``ignore=0``) it behaves like the buoy, which in 2011 went into event
mode on the seismic waves, minutes before the tsunami.

**Anomaly trigger**: a quality-controlled, de-tided anomaly |eta| above ``threshold_m``
for ``persist`` consecutive good samples at ``min_stations`` stations.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from tsunami.realtime.qc import FINE_S, CleanSeries, sampling_interval
from tsunami.realtime.records import BAD, NS_PER_S, Flag, iso

#: Mofjeld's published weights (newest average first).
MOFJELD_WEIGHTS = (1.16818457031250, -0.28197558593750, 0.14689746093750,
                   -0.03310644531250)


def extrapolation_weights(taps: int, lead: float) -> np.ndarray:
    """Lagrange weights of the polynomial through nodes 0, -1, ..., -(taps-1) read at
    ``lead`` (in node spacings). taps = 4, lead = 0.0875 gives :data:`MOFJELD_WEIGHTS`."""
    nodes = -np.arange(taps, dtype=float)
    w = np.ones(taps)
    for i in range(taps):
        for j in range(taps):
            if i != j:
                w[i] *= (lead - nodes[j]) / (nodes[i] - nodes[j])
    return w


@dataclass(frozen=True)
class TriggerEvent:
    """A trigger: station(s), time (ns, UTC), which detector, the value that fired (m),
    the threshold and a sentence for the log."""

    kind: str
    stations: tuple[str, ...]
    time_ns: int
    value_m: float
    threshold_m: float
    message: str

    def __str__(self) -> str:
        return f"{self.kind} trigger at {iso(self.time_ns)}: {self.message}"


@dataclass(frozen=True)
class DartConfig:
    """Detector settings; defaults are the buoy's (module doc)."""

    threshold_m: float = 0.03
    exceedances: int = 2
    taps: int = 4
    average_s: float = 600.0
    spacing_s: float = 3600.0
    event_s: float = 3 * 3600.0
    min_coverage: float = 0.5
    ignore: int = int((BAD & ~Flag.GAP) | Flag.EDGE)


def binned(time_ns: np.ndarray, height: np.ndarray, good: np.ndarray, width_s: float
           ) -> tuple[np.ndarray, np.ndarray]:
    """Means of the good samples in bins of ``width_s`` (time stamped at the bin's end,
    as the buoy stamps its 15-s averages); bins without a good sample are left out."""
    w = round(width_s * NS_PER_S)
    k = -(-time_ns[good] // w)  # ceil: a sample at the bin's end belongs to it
    keys, inverse = np.unique(k, return_inverse=True)
    sums = np.bincount(inverse, weights=height[good])
    counts = np.bincount(inverse)
    return keys * w, sums / counts


def dart_residuals(time_ns: np.ndarray, height: np.ndarray, config: DartConfig | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Observed minus predicted height (m) of every sample of a regular series
    (``time_ns`` sorted, good samples only), and the number of taps each prediction used
    (0: no complete 10-min average yet, residual NaN)."""
    cfg = config or DartConfig()
    n = len(time_ns)
    if n < 2:
        return np.full(n, np.nan), np.zeros(n, dtype=int)
    dt = sampling_interval(time_ns) * NS_PER_S
    avg, spacing = cfg.average_s * NS_PER_S, cfg.spacing_s * NS_PER_S
    lead = (dt + avg / 2) / spacing
    csum = np.concatenate(([0.0], np.cumsum(height)))
    means = np.full((cfg.taps, n), np.nan)
    for i in range(cfg.taps):
        hi = time_ns - dt - i * spacing
        a = np.searchsorted(time_ns, hi - avg, side="right")
        b = np.searchsorted(time_ns, hi, side="right")
        count = b - a
        ok = (count >= cfg.min_coverage * avg / dt) & (time_ns[0] <= hi - avg + dt)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[i] = np.where(ok, (csum[b] - csum[a]) / count, np.nan)
    # taps usable: consecutive complete averages from the newest
    available = np.cumprod(np.isfinite(means), axis=0).sum(axis=0)
    prediction = np.full(n, np.nan)
    for k in range(1, cfg.taps + 1):
        m = available == k
        if m.any():
            w = extrapolation_weights(k, lead)
            prediction[m] = w @ means[:k, m]
    return height - prediction, available


class DartDetector:
    """The DART detector over many streams, fed as samples arrive (module doc).

    :meth:`update` takes the samples received for one station (any order, repeats
    allowed) with their QC flags and returns the triggers they cause. State per station:
    a buffer of the last taps x spacing + average, the bins already tested, the run of
    consecutive exceedances and the end of the current event mode.
    """

    def __init__(self, config: DartConfig | None = None) -> None:
        self.config = config or DartConfig()
        self._buffer: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tested: dict[str, int] = {}
        self._run: dict[str, int] = {}
        self._event_until: dict[str, int] = {}

    def update(self, station: str, time_ns: np.ndarray, height: np.ndarray,
               flags: np.ndarray | None = None) -> list[TriggerEvent]:
        cfg = self.config
        time_ns = np.asarray(time_ns, dtype=np.int64)
        height = np.asarray(height, dtype=float)
        good = np.isfinite(height)
        if flags is not None:
            good &= (np.asarray(flags) & cfg.ignore) == 0
        t, h = time_ns[good], height[good]
        if station in self._buffer:
            t = np.concatenate((self._buffer[station][0], t))
            h = np.concatenate((self._buffer[station][1], h))
        t, first = np.unique(t, return_index=True)  # sorted, first arrival kept
        h = h[first]
        if not len(t):
            return []
        keep = t >= t[-1] - round((cfg.taps * cfg.spacing_s + 2 * cfg.average_s) * NS_PER_S)
        t, h = t[keep], h[keep]
        self._buffer[station] = (t, h)
        dt = sampling_interval(t) if len(t) > 1 else FINE_S
        if dt < FINE_S:
            bt, bh = binned(t, h, np.ones(len(t), bool), FINE_S)
            complete = bt <= t[-1]  # the last bin may still be filling
            bt, bh = bt[complete], bh[complete]
        else:
            bt, bh = t, h
        residual, taps = dart_residuals(bt, bh, cfg)
        events = []
        last = self._tested.get(station, np.iinfo(np.int64).min)
        for j in np.flatnonzero(bt > last):
            self._tested[station] = int(bt[j])
            if bt[j] < self._event_until.get(station, np.iinfo(np.int64).min):
                continue
            out = taps[j] > 0 and abs(residual[j]) > cfg.threshold_m
            self._run[station] = self._run.get(station, 0) + 1 if out else 0
            if self._run[station] >= cfg.exceedances:
                self._run[station] = 0
                self._event_until[station] = int(bt[j]) + round(cfg.event_s * NS_PER_S)
                events.append(TriggerEvent(
                    "dart", (station,), int(bt[j]), float(residual[j]), cfg.threshold_m,
                    f"{station}: {cfg.exceedances} consecutive samples off the predicted "
                    f"tide by more than {cfg.threshold_m * 1e3:.0f} mm (last "
                    f"{residual[j]:+.3f} m; prediction from {taps[j]} hourly average"
                    f"{'s' if taps[j] > 1 else ''})"))
        return events


@dataclass
class AnomalyTrigger:
    """Fires once ``min_stations`` stations each had ``persist`` consecutive good samples
    of |eta| > ``threshold_m`` at or after ``after_ns`` (e.g. the origin time)."""

    threshold_m: float = 0.1
    min_stations: int = 1
    persist: int = 2
    after_ns: int | None = None
    fired: bool = False
    crossed: dict[str, tuple[int, float]] = field(default_factory=dict)

    def update(self, series: Mapping[str, CleanSeries]) -> list[TriggerEvent]:
        """Test the stations' current clean series; returns the trigger once."""
        if self.fired:
            return []
        for station, s in series.items():
            if station in self.crossed:
                continue
            ok = s.good() & (np.abs(np.nan_to_num(s.eta)) > self.threshold_m)
            if self.after_ns is not None:
                ok &= s.time_ns >= self.after_ns
            run = 0
            for j in np.flatnonzero(s.good()):
                run = run + 1 if ok[j] else 0
                if run >= self.persist:
                    self.crossed[station] = (int(s.time_ns[j]), float(s.eta[j]))
                    break
        if len(self.crossed) < self.min_stations:
            return []
        self.fired = True
        first = sorted(self.crossed.items(), key=lambda kv: kv[1][0])[:self.min_stations]
        when, value = first[-1][1]
        return [TriggerEvent(
            "anomaly", tuple(s for s, _ in first), when, value, self.threshold_m,
            f"de-tided anomaly above {self.threshold_m:g} m at {len(first)} station(s): "
            + ", ".join(f"{s} ({iso(t)}, {v:+.2f} m)" for s, (t, v) in first))]
