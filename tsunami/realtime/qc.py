"""Quality control: from the raw samples of one station to a clean, uniformly sampled,
de-tided sea-surface anomaly (m) with a flag per sample and a log.

Bad samples are flagged (:class:`~tsunami.realtime.records.Flag`), counted and logged;
nothing is deleted and nothing raises on bad data. :func:`clean` runs, in order:

1. **Duplicates and order.** Samples sharing a time stamp (two feeds delivering the same
   sample, or the repeated stamps of the 2011 DART files): the first to arrive is used,
   the others are flagged ``DUPLICATE``; conflicting values the store refused are counted.
   Samples that arrived after a later sample are flagged ``OUT_OF_ORDER`` (and used in
   time order).
2. **Pressure to height.** eta = (p - p_ref) / (rho g) for pressure units, rho = 1030 kg
   m-3 (``QCConfig.rho``): sea water is 1025 kg m-3 at the surface and about 1050 kg m-3
   in situ at 5 km, and a long wave's bottom-pressure change is set by the column-mean
   density, so 1030 errs by at most about 2 % at any depth of interest. g is the WGS84
   normal gravity at the station's latitude (Somigliana's formula, NIMA TR8350.2, 3rd ed.,
   2000, eq. 4-1: 9.780 m s-2 at the equator, 9.800 at 38 N). p_ref is removed with the
   datum at step 8; records already in metres of water (DART HEIGHT, the 2011 files) pass.
3. **Clock.** Sample times are checked against the station's sampling lattice (the
   catalogue's ``sampling_s``): a consistent phase offset (>= 80 % of the samples within
   2 % of an interval of the same offset) is a clock offset; it is logged, flagged
   ``CLOCK`` and, with ``correct_clock``, removed. Known offsets (``clock_offsets_s``)
   are applied first. Limits: only offsets that are not whole intervals are visible this
   way; :func:`clock_offset` estimates any offset by cross-correlation against a
   reference (a neighbour, or the forecast's synthetic at the station) when the record
   holds a clear signal (a tsunami), with the ambiguity of periodic signals.
4. **Range.** Values farther than ``max_anomaly_m`` (50 m) from the record's median.
5. **Seismic waves** (bottom-pressure gauges: they sense the sea floor's acceleration,
   p = rho h a). For streams sampled at 15 s or finer: the root mean square of the
   signal above the low-pass band (periods < ``lowpass_s``) over a minute; samples where
   it exceeds ``seismic_rms_m`` (1 m: where the low-passed series may be off by more
   than a few cm) are flagged ``SEISMIC``. Coarser streams (60 s DART samples) cannot
   resolve that band: from the origin time, ``coarse_seismic_mask_s`` (10 min) of them
   are flagged ``SEISMIC``.
6. **Spikes**: Hampel filter: residual from a running median (5 samples, at least 15 s),
   against 1.4826 times the running median of absolute residuals (15 samples, at least
   60 s; floor ``spike_floor_m``), ``spike_k`` (6) times: single-sample outliers, while a
   tsunami's smooth rise, or a seismic wave's crest at 1 s sampling, moves the median
   with it. **Steps** (outside shaking): one interval's change above ``step_m`` and 10
   times the spread of its neighbours that persists (the 5 samples and the 10 minutes on
   either side differ by as much; a tsunami front comes back down): flagged ``STEP`` and
   removed from what follows (an instrument offset, as S-net showed in 2016). A level
   change across the shaking of a bottom-pressure gauge (more than ``coseismic_m``) is the
   **coseismic** signal: the sea floor moved, and the gauge measures the water column,
   i.e. the sea surface minus the sea floor's vertical displacement. It cannot be told
   from the tsunami's own rise in the first minutes, so it is not removed: following
   samples are flagged ``COSEISMIC`` and the estimate logged; an inversion should model
   such a gauge as eta - u_z (both linear in slip).
7. **Low-pass and resampling.** Bottom-pressure streams sampled at 15 s or finer go
   through a Hann window of full width ``lowpass_s`` (120 s: no response at 60 s, less
   than 3 % at shorter periods, where seismic waves are; a 5-min tsunami keeps 90 % of
   its amplitude), centred, so the last half window is provisional (``EDGE``); they are
   then sampled every ``step_s`` (default 15 s, DART's interval). Sea-surface streams
   (GNSS buoys, tide gauges: no seismic signal, their own processing removes wind waves)
   are bin-averaged every ``step_s`` (a low-pass would blunt their crests: 6.3 instead of
   6.6 m at buoy 802 in 2011); coarser streams are bin-averaged at their own interval.
   Bins without good data: gaps up to ``max_gap_s`` are interpolated
   (``INTERPOLATED``), longer ones stay NaN (``GAP``).
8. **De-tiding** (:func:`tide_model`) over the pre-event reference window (before the
   origin, at most ``max_fit_days``): least squares of a mean, a linear drift (gauges
   drift) and the principal constituents the window resolves by the Rayleigh criterion
   (Pawlowicz et al. 2002, T_TIDE: constituents closer in frequency than 1 / window are
   not separable), from M2, K1, S2, O1, N2, P1, K2, Q1, M4 in that order: 12.4 h of data
   resolve M2, 25 h M2 and K1, 15 days the main semidiurnal and diurnal constituents.
   Nodal modulation is absorbed by fitting amplitudes and phases over at most 30 days.
   Shorter windows fall back to a linear trend (>= 1 h) or the mean (the 2011 records hold
   24 s before the origin), extrapolated over the event and flagged ``TIDE``: the tide's
   change since the origin then remains in the anomaly (tens of cm over hours; a few cm
   over the first half hour). DART's own detector predicts the tide 5.25 min ahead by a
   cubic through 10-min averages (:mod:`tsunami.realtime.triggers`); NOAA's inversions
   subtract a harmonic fit to the 29 days before the event or precomputed constituents
   (Percival et al. 2015). Without an origin the whole record is the reference window.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.ndimage import convolve1d, median_filter

from tsunami.realtime.records import BAD, NS_PER_S, PRESSURE_UNITS, Flag, iso
from tsunami.realtime.stations import Station
from tsunami.realtime.store import RecordArray

log = logging.getLogger(__name__)

#: Tidal constituents in the order they are admitted (frequencies in cycles per hour).
CONSTITUENTS = {"M2": 0.0805114007, "K1": 0.0417807462, "S2": 0.0833333333,
                "O1": 0.0387306544, "N2": 0.0789992488, "P1": 0.0415525871,
                "K2": 0.0835614924, "Q1": 0.0372185026, "M4": 0.1610228013}
FINE_S = 15.0  # bottom-pressure streams sampled this finely or finer are low-passed


@dataclass(frozen=True)
class QCConfig:
    """Quality-control settings (module doc: what each does and why the defaults)."""

    rho: float = 1030.0
    step_s: float = FINE_S
    lowpass_s: float = 120.0
    seismic_rms_m: float = 1.0
    coarse_seismic_mask_s: float = 600.0
    max_anomaly_m: float = 50.0
    spike_k: float = 6.0
    spike_floor_m: float = 0.02
    step_m: float = 0.1
    coseismic_m: float = 0.05
    max_gap_s: float = 120.0
    max_fit_days: float = 30.0
    correct_clock: bool = True
    clock_offsets_s: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class QCNote:
    """One line of the QC log: what was flagged, how often, when."""

    station: str
    what: str
    count: int
    first_ns: int | None
    last_ns: int | None
    message: str

    def __str__(self) -> str:
        when = f" {iso(self.first_ns)} .. {iso(self.last_ns)}" if self.first_ns else ""
        return f"{self.station}: {self.what} x{self.count}{when}: {self.message}"


@dataclass(frozen=True)
class CleanSeries:
    """A station's quality-controlled sea-surface anomaly.

    ``time_ns`` uniform (every ``step_s``), ``eta`` (m, de-tided; NaN in gaps) and
    ``flags`` per output sample; ``input_flags`` per input sample (time-sorted), the
    per-flag counts over the input samples (``counts``), the log (``notes``), the tide
    method, the coseismic level change (m, None if none seen) and the clock offset
    removed (s). For bottom-pressure gauges eta is the change of the water column above
    the gauge (module doc, step 6).
    """

    station: str
    kind: str
    step_s: float
    time_ns: np.ndarray
    eta: np.ndarray
    flags: np.ndarray
    input_time_ns: np.ndarray
    input_flags: np.ndarray
    counts: dict[str, int]
    notes: list[QCNote]
    tide_method: str
    coseismic_offset_m: float | None
    clock_offset_s: float

    def good(self) -> np.ndarray:
        """Mask of output samples a consumer may use (no :data:`BAD` flag, finite)."""
        return ((self.flags & int(BAD)) == 0) & np.isfinite(self.eta)

    def window(self, start_ns: int, end_ns: int) -> CleanSeries:
        """The output samples with start_ns <= time < end_ns."""
        m = (self.time_ns >= start_ns) & (self.time_ns < end_ns)
        return replace(self, time_ns=self.time_ns[m], eta=self.eta[m], flags=self.flags[m])


def normal_gravity(latitude: float) -> float:
    """WGS84 normal gravity (m s-2) on the ellipsoid at ``latitude`` (deg), Somigliana."""
    s2 = math.sin(math.radians(latitude)) ** 2
    return 9.7803253359 * (1 + 0.00193185265241 * s2) / math.sqrt(1 - 0.00669437999013 * s2)


def to_metres(value: np.ndarray, unit: np.ndarray, latitude: float, rho: float) -> np.ndarray:
    """Values in metres (of sea surface, or of water column for pressure units)."""
    out = np.array(value, dtype=np.float64)
    g = normal_gravity(latitude)
    for name, pascal in PRESSURE_UNITS.items():
        m = unit == name
        out[m] = out[m] * pascal / (rho * g)
    return out


class _Log:
    def __init__(self, station: str) -> None:
        self.station, self.notes = station, []

    def add(self, what: str, mask_or_count, times: np.ndarray | None, message: str) -> None:
        if isinstance(mask_or_count, np.ndarray):
            count = int(mask_or_count.sum())
            sel = times[mask_or_count] if count else np.array([], dtype=np.int64)
        else:
            count, sel = int(mask_or_count), np.array([], dtype=np.int64)
        if count == 0:
            return
        note = QCNote(self.station, what, count, int(sel[0]) if len(sel) else None,
                      int(sel[-1]) if len(sel) else None, message)
        self.notes.append(note)
        log.info("%s", note)


def clean(data: RecordArray, station: Station, origin_ns: int | None = None,
          config: QCConfig | None = None, conflicts: int = 0) -> CleanSeries:
    """Quality-control the samples of one station (module doc). ``origin_ns``: the
    earthquake's origin time, if known (reference window, seismic mask); ``conflicts``:
    the number of conflicting duplicates the store refused (counted in the log)."""
    cfg = config or QCConfig()
    notes = _Log(station.id)
    t = data.time_ns.astype(np.int64).copy()
    flags = data.flags.astype(np.int64).copy()
    n = len(t)
    if n == 0:
        notes.add("empty", 1, None, "no samples")
        empty = np.array([], dtype=np.int64)
        return CleanSeries(station.id, station.kind, cfg.step_s, empty, np.array([]), empty,
                           empty, empty, {}, notes.notes, "none", None, 0.0)
    # 1. duplicates (first arrival kept) and arrival order
    order = np.lexsort((data.seq, t))
    t, flags, seq = t[order], flags[order], data.seq[order]
    dup = np.zeros(n, bool)
    dup[1:] = t[1:] == t[:-1]
    flags[dup] |= Flag.DUPLICATE
    notes.add("DUPLICATE", dup, t, "repeated time stamp: the first sample received is used")
    notes.add("DUPLICATE", conflicts, None, "samples repeating a stored key with another "
              "value: refused at ingest, kept in the store's conflict log")
    late = np.zeros(n, bool)
    late[:-1] = seq[:-1] > np.minimum.accumulate(seq[::-1])[::-1][1:]
    flags[late] |= Flag.OUT_OF_ORDER
    notes.add("OUT_OF_ORDER", late, t, "arrived after a later sample; used in time order")
    # 2. units
    x = to_metres(data.value[order], data.unit[order], station.lat, cfg.rho)
    missing = ~np.isfinite(x)
    flags[missing] |= Flag.MISSING
    notes.add("MISSING", missing, t, "no value (NaN, MM or fill value)")
    # 3. clock
    offset_s = _clock(t, flags, station, cfg, notes)
    t = t - round(offset_s * NS_PER_S)
    usable = ~(missing | dup)
    # 4. range
    if usable.any():
        far = usable & (np.abs(x - np.median(x[usable])) > cfg.max_anomaly_m)
        flags[far] |= Flag.RANGE
        notes.add("RANGE", far, t, f"more than {cfg.max_anomaly_m:g} m from the median")
        usable &= ~far
    # the catalogue's interval is the stream's (a DART's 15-s event-mode bursts among its
    # 60-s samples do not make it a 15-s stream); else the most common interval
    dt = station.sampling_s or (sampling_interval(t[usable]) if usable.sum() > 1
                                else cfg.step_s)
    fine = dt <= FINE_S
    # 5. seismic waves
    seismic = _seismic(t, x, usable, dt, fine, station, origin_ns, cfg)
    flags[seismic] |= Flag.SEISMIC
    notes.add("SEISMIC", seismic, t, "seismic waves: high-frequency energy above "
              f"{cfg.seismic_rms_m:g} m rms" if fine else "seismic waves: within "
              f"{cfg.coarse_seismic_mask_s:g} s of the origin (stream too coarse to resolve)")
    # 6. spikes, steps, coseismic offset
    quiet = usable & ~seismic
    spikes = _spikes(x, quiet, dt, cfg)
    flags[spikes] |= Flag.SPIKE
    notes.add("SPIKE", spikes, t, f"outlier: over {cfg.spike_k:g} robust deviations "
              "from the running median")
    quiet &= ~spikes
    x = _steps(t, x, quiet, seismic, flags, station, cfg, notes)
    good = quiet & ~((flags & Flag.STEP) > 0)
    coseismic = _coseismic(t, x, good, seismic, flags, station, origin_ns, cfg, notes)
    # 7. low-pass and resampling
    use = usable & ~spikes & ~((flags & Flag.STEP) > 0)  # seismic samples are low-passed
    step = cfg.step_s if fine else dt
    lowpass = fine and station.kind == "bottom_pressure"
    grid, y, out = _resample(t, x, use, seismic, lowpass, dt, step, cfg)
    out[np.isin(grid, _bins(t[(flags & Flag.COSEISMIC) > 0], grid, step))] |= Flag.COSEISMIC
    if offset_s:
        out |= Flag.CLOCK
    notes.add("GAP", (out & Flag.GAP) > 0, grid, f"no good sample for more than "
              f"{cfg.max_gap_s:g} s")
    notes.add("INTERPOLATED", (out & Flag.INTERPOLATED) > 0, grid, "short gap interpolated")
    # 8. de-tiding
    method, tide = tide_model(grid, y, (out & int(BAD)) == 0, origin_ns, cfg.max_fit_days)
    eta = y - tide
    degraded = {"linear": "a linear trend fitted over a pre-event window too short for a "
                "harmonic fit", "mean": "the mean of a pre-event window too short for a "
                "trend", "first": "the first good sample (no pre-event data)"}
    if method in degraded:
        out |= Flag.TIDE
        notes.add("TIDE", len(grid), None, f"datum and tide taken as {degraded[method]}; "
                  "the tide's change since then stays in the anomaly")
    counts = {f.name: int(((flags & f) > 0).sum()) for f in Flag if ((flags & f) > 0).any()}
    return CleanSeries(station.id, station.kind, step, grid, eta, out, t, flags, counts,
                       notes.notes, method, coseismic, offset_s)


def sampling_interval(t: np.ndarray) -> float:
    """The most common positive interval (s) between samples."""
    d = np.diff(t)
    d = d[d > 0]
    if not len(d):
        return FINE_S
    values, counts = np.unique(d, return_counts=True)
    return float(values[np.argmax(counts)]) / NS_PER_S


def _clock(t, flags, station: Station, cfg: QCConfig, notes: _Log) -> float:
    known = cfg.clock_offsets_s.get(station.id, 0.0)
    if known:
        flags |= Flag.CLOCK
        notes.add("CLOCK", len(t), None, f"known clock offset {known:+g} s removed")
    if station.sampling_s is None or len(t) < 10:
        return known
    lattice = round(station.sampling_s * NS_PER_S)
    t_known = t - round(known * NS_PER_S)
    phase = (t_known + lattice // 2) % lattice - lattice // 2  # in [-lattice/2, lattice/2)
    offset = float(np.median(phase))
    tol = 0.02 * lattice
    consistent = np.mean(np.abs(phase - offset) <= tol) >= 0.8
    if abs(offset) <= tol or not consistent:
        return known
    offset_s = offset / NS_PER_S
    flags |= Flag.CLOCK
    action = "removed" if cfg.correct_clock else "not removed (correct_clock off)"
    notes.add("CLOCK", len(t), None, f"time stamps {offset_s:+.3f} s off the "
              f"{station.sampling_s:g} s sampling lattice: clock offset {action}")
    return known + (offset_s if cfg.correct_clock else 0.0)


def _hann(span_s: float, dt: float) -> np.ndarray:
    """Hann window of full width ``span_s`` at interval ``dt`` (odd length: centred)."""
    width = 2 * max(1, round(span_s / dt / 2)) + 1
    w = np.hanning(width + 2)[1:-1]
    return w / w.sum()


def _smooth(x: np.ndarray, weight: np.ndarray, kernel: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Normalised convolution: weighted mean of ``x`` under ``kernel`` where ``weight``
    is 1 (good) or 0; returns the mean and the share of the kernel that had data."""
    num = convolve1d(np.where(weight > 0, x, 0.0), kernel, mode="constant")
    den = convolve1d(weight, kernel, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den, den


def _seismic(t, x, usable, dt, fine, station: Station, origin_ns, cfg: QCConfig):
    out = np.zeros(len(t), bool)
    if station.kind != "bottom_pressure":
        return out
    if not fine:
        if origin_ns is not None:
            out = (t >= origin_ns) & (t < origin_ns + round(cfg.coarse_seismic_mask_s
                                                             * NS_PER_S))
        return out & usable
    # on the sample index (fine streams are regular); gaps just widen the window
    low, _ = _smooth(x, usable.astype(float), _hann(cfg.lowpass_s, dt))
    high = np.where(usable, x - low, 0.0)
    minute = np.ones(2 * round(30.0 / dt) + 1)
    power, _ = _smooth(high**2, usable.astype(float), minute / minute.sum())
    return usable & (np.sqrt(np.nan_to_num(power)) > cfg.seismic_rms_m)


def _spikes(x, quiet, dt: float, cfg: QCConfig) -> np.ndarray:
    """Hampel filter over windows of at least 5 samples / 15 s (median) and 15 samples /
    60 s (scale): at 1 s sampling a seismic wave's crest is not a spike."""
    out = np.zeros(len(x), bool)
    idx = np.flatnonzero(quiet)
    if len(idx) < 5:
        return out
    v = x[idx]
    residual = v - median_filter(v, max(5, 2 * round(7.5 / dt) + 1), mode="nearest")
    scale = 1.4826 * median_filter(np.abs(residual), max(15, 2 * round(30 / dt) + 1),
                                   mode="nearest")
    out[idx] = np.abs(residual) > cfg.spike_k * np.maximum(scale, cfg.spike_floor_m)
    return out


def _steps(t, x, quiet, seismic, flags, station: Station, cfg: QCConfig, notes: _Log):
    """Flag abrupt level changes outside shaking and remove them from what follows.

    A step: one interval's change over ``step_m`` and over 10 times the robust spread of
    the neighbouring intervals, that persists: the medians of the 5 samples either side
    differ by the same amount (within 25 %), and so do those of the 10 minutes either side
    (within 50 %; a tsunami's steep front comes back down, a spike at once)."""
    idx = np.flatnonzero(quiet)
    if len(idx) < 12:
        return x
    tq, v = t[idx], x[idx].copy()
    d = np.diff(v)
    spread = 1.4826 * median_filter(np.abs(d), 21, mode="nearest")
    slope = median_filter(d, 21, mode="nearest")
    span = 600 * NS_PER_S
    x = x.copy()
    for i in np.flatnonzero(np.abs(d) > np.maximum(cfg.step_m, 10 * spread)) + 1:
        if i < 5 or i + 5 > len(v) or seismic[idx[i - 1]:idx[i] + 1].any():
            continue
        jump = d[i - 1] - slope[i - 1]
        short = np.median(v[i:i + 5]) - np.median(v[i - 5:i])
        lo, mid, hi = np.searchsorted(tq, [tq[i] - span, tq[i], tq[i] + span])
        long = np.median(v[mid:hi]) - np.median(v[lo:mid])
        if abs(short - jump) > 0.25 * abs(jump) or abs(long - jump) > 0.5 * abs(jump):
            continue
        flags[idx[i]] |= Flag.STEP
        notes.add("STEP", 1, None, f"level step of {jump:+.3f} m at {iso(int(tq[i]))} "
                  "removed from the samples after it")
        x[idx[i]:] -= jump
        v[i:] -= jump
    return x


def _coseismic(t, x, good, seismic, flags, station: Station, origin_ns, cfg: QCConfig,
               notes: _Log) -> float | None:
    """Level change across the shaking of a bottom-pressure gauge (module doc, step 6)."""
    if station.kind != "bottom_pressure" or not seismic.any() or origin_ns is None:
        return None
    # the end of the shaking that began with the earthquake (runs of SEISMIC samples less
    # than two minutes apart; later aftershocks start new runs)
    shaking = np.flatnonzero(seismic & (t >= origin_ns - 60 * NS_PER_S))
    if not len(shaking):
        return None
    breaks = np.flatnonzero(np.diff(t[shaking]) > 120 * NS_PER_S)
    end = t[shaking[breaks[0]] if len(breaks) else shaking[-1]]
    before = good & (t < origin_ns)
    if not before.any():
        return None
    after = good & (t > end) & (t <= end + 120 * NS_PER_S)
    if after.sum() < 3:
        return None
    change = float(np.median(x[after]) - np.median(x[before]))
    if abs(change) <= cfg.coseismic_m:
        return None
    later = t >= origin_ns
    flags[later] |= Flag.COSEISMIC
    notes.add("COSEISMIC", later, t, f"level changed {change:+.3f} m across the shaking "
              "(sea-floor displacement and the tsunami's first rise, not separable in real "
              "time): kept; model this gauge as eta - u_z")
    return change


def _bins(times: np.ndarray, grid: np.ndarray, step: float) -> np.ndarray:
    if not len(times) or not len(grid):
        return np.array([], dtype=np.int64)
    k = np.clip(np.round((times - grid[0]) / (step * NS_PER_S)).astype(np.int64), 0,
                len(grid) - 1)
    return grid[np.unique(k)]


def _resample(t, x, use, seismic, lowpass, dt, step, cfg: QCConfig):
    """Uniform grid every ``step`` s: low-passed then sampled, or bin-averaged."""
    step_ns = round(step * NS_PER_S)
    if not use.any():
        return (np.array([], dtype=np.int64), np.array([]), np.array([], dtype=np.int64))
    first = -(-int(t[use][0]) // step_ns) * step_ns
    last = int(t[use][-1]) // step_ns * step_ns
    grid = np.arange(first, last + 1, step_ns, dtype=np.int64)
    out = np.zeros(len(grid), dtype=np.int64)
    k = np.round((t - first) / step_ns).astype(np.int64)
    inside = (k >= 0) & (k < len(grid))
    if lowpass:
        low, share = _smooth(x, use.astype(float), _hann(cfg.lowpass_s, dt))
        ok = use | (share >= 0.5)
        ok &= np.isfinite(low)
        y = np.interp(grid, t[ok], low[ok]) if ok.any() else np.full(len(grid), np.nan)
        has = np.zeros(len(grid), bool)
        np.logical_or.at(has, k[inside & use], True)
        shake = np.zeros(len(grid), bool)
        np.logical_or.at(shake, k[inside & seismic], True)
        out[shake] |= Flag.SEISMIC
        edge = grid > t[use][-1] - round(cfg.lowpass_s / 2 * NS_PER_S)
        out[edge] |= Flag.EDGE
    else:
        total = np.zeros(len(grid))
        count = np.zeros(len(grid))
        sel = inside & use & ~seismic
        np.add.at(total, k[sel], x[sel])
        np.add.at(count, k[sel], 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            y = total / count
        has = count > 0
        shake = np.zeros(len(grid), bool)
        np.logical_or.at(shake, k[inside & seismic & use], True)
        out[shake & ~has] |= Flag.SEISMIC
        y[shake & ~has] = np.nan
        has |= shake
    # gaps: interpolate the short ones
    empty = ~has
    if empty.any():
        runs = _runs(empty)
        for a, b in runs:
            long_gap = (b - a) * step > cfg.max_gap_s or a == 0 or b == len(grid)
            if long_gap:
                y[a:b] = np.nan
                out[a:b] |= Flag.GAP
            else:
                y[a:b] = np.interp(grid[a:b], grid[[a - 1, b]], y[[a - 1, b]])
                out[a:b] |= Flag.INTERPOLATED
    return grid, y, out


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index ranges where ``mask`` is True."""
    d = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(d == 1), np.flatnonzero(d == -1), strict=True))


def tide_model(time_ns: np.ndarray, y: np.ndarray, good: np.ndarray, origin_ns: int | None,
               max_fit_days: float = 30.0) -> tuple[str, np.ndarray]:
    """The tide (and drift) to subtract from ``y``, fitted over the good samples before
    ``origin_ns`` (all samples if None), at most ``max_fit_days`` back. Returns the method
    ("harmonic M2+K1+...", "linear", "mean", "first" or "none") and the model on
    ``time_ns`` (module doc, step 8)."""
    if not len(y):
        return "none", np.zeros(0)
    end = int(time_ns[-1]) + 1 if origin_ns is None else origin_ns
    ref = good & (time_ns < end) & (time_ns >= end - max_fit_days * 86400 * NS_PER_S)
    if not ref.any():
        # no pre-event sample at all: the first good sample is the datum
        first = np.flatnonzero(good & np.isfinite(y))
        base = y[first[0]] if len(first) else 0.0
        return "first", np.full(len(y), base)
    hours = (time_ns - end) / (3600 * NS_PER_S)
    span = float(hours[ref].max() - hours[ref].min())
    freqs = []
    for name, f in CONSTITUENTS.items():
        if all(abs(f - g) * span >= 1.0 for g in [0.0, *[CONSTITUENTS[c] for c in freqs]]):
            freqs.append(name)
    if freqs:
        columns = [np.ones_like(hours), hours]
        for name in freqs:
            w = 2 * np.pi * CONSTITUENTS[name] * hours
            columns += [np.cos(w), np.sin(w)]
        a = np.column_stack(columns)
        coef, *_ = np.linalg.lstsq(a[ref], y[ref], rcond=None)
        return "harmonic " + "+".join(freqs), a @ coef
    if span >= 1.0:
        coef = np.polyfit(hours[ref], y[ref], 1)
        return "linear", np.polyval(coef, hours)
    return "mean", np.full(len(y), float(np.mean(y[ref])))


def clock_offset(time_ns: np.ndarray, eta: np.ndarray, ref_time_ns: np.ndarray,
                 ref_eta: np.ndarray, max_lag_s: float, step_s: float = 1.0) -> float:
    """The time offset (s) to subtract from ``time_ns`` so that ``eta`` best matches the
    reference (maximum correlation over lags within +-``max_lag_s``, every ``step_s``).
    Needs a distinct signal (a tsunami) in both; periodic signals make it ambiguous."""
    good = np.isfinite(eta)
    ref_good = np.isfinite(ref_eta)
    lags = np.arange(-max_lag_s, max_lag_s + step_s / 2, step_s)
    best, best_lag = -np.inf, 0.0
    for lag in lags:
        shifted = time_ns[good] - round(lag * NS_PER_S)
        inside = (shifted >= ref_time_ns[ref_good][0]) & (shifted <= ref_time_ns[ref_good][-1])
        if inside.sum() < 10:
            continue
        r = np.interp(shifted[inside], ref_time_ns[ref_good], ref_eta[ref_good])
        o = eta[good][inside]
        c = np.corrcoef(o, r)[0, 1] if np.std(o) > 0 and np.std(r) > 0 else -np.inf
        if c > best:
            best, best_lag = c, float(lag)
    return best_lag
