"""Exposed people by depth class and casualty estimates: PLANNING ESTIMATES.

Two published Japanese methods are implemented; which one, and every number it uses, is a
parameter (the defaults are the values of the research notes, with their sources):

``cabinet_office_2012`` (内閣府, Nankai Trough damage estimate, 2012, kept in 2025;
  bousai.go.jp/jishin/nankai/taisaku/pdf/2_2.pdf, as summarised in secondary sources [S]):
  - people start evacuating by behaviour class: 直接避難 (immediately) 5 min after the
    earthquake, 用事後避難 (after errands) 15 min, 切迫避難 (only when the tsunami is
    imminent) not before the tsunami reaches them; shares 20 / 50 / 30 % (2012
    "low awareness" case); at night +5 min and 80 % walking speed; walking speed
    2.65 km/h [S];
  - a person is "caught" when they cannot reach safe ground before the tsunami reaches
    their place (see :func:`caught_fraction`);
  - of those caught, the death rate by depth (浸水深別死者率, derived from 越村ほか 2009)
    is 0.01 % at 0.3 m, 4.8 % at 0.5 m, 71.1 % at 0.7 m and 100 % at 1 m, as the
    Cabinet Office analysis was reported (Tokyo Shimbun, 30 Aug 2012, "津波1メートルでも
    ほぼ死亡 内閣府分析") [S]; none die below 0.3 m and all at 1 m or more [P/S]. Between
    the points the central estimate interpolates linearly in depth (the source's own
    functional form was not found); the range takes, between two points, the rate of the
    lower and of the upper one, which brackets every curve rising through the points.

``cdmc_pre2012`` (中央防災会議, pre-2012, e.g. 2003 Tonankai-Nankai; third-party
  transcription of 専門調査会 第7回 sub6.pdf [S]):
  - death rate D(h) = 0.0282 exp(0.2328 h) for h >= 1 m, linear from 0 below 1 m, and
    0.9999 above 10 m (the transcribing code's own cap);
  - evacuation non-completion d(t) = 1 / (1 + 0.00525 exp(0.7 t / 3.565)), t = tsunami
    arrival time in minutes, d = 1 for t < 5 min;
  - deaths = people x D(h) x (share not evacuating + share evacuating x d(t)); shares
    (immediately / on warning / cannot receive warning / do not evacuate) 5/44/11/40 %
    (low awareness) or 15/80/0/5 % (high awareness). We read "cannot receive warning" as
    not evacuating.

Do not mix the two: D(1 m) = 3.6 % in the old method, 100 % in the 2012 rule.

Night or day (the +5 min and 80 % speed of the night case) follows the earthquake's origin
time in local time (:mod:`tsunami.localtime`): night is 20:00-06:00 (``night_hours``),
when residents are at home in the dark and many asleep (the night factors come from the
1993 Hokkaido Nansei-oki event, which struck at 22:17 JST); unknown origin: daytime,
stated. The range takes both.

Simplifications stated in every output: people are where the census puts them (night-time
residential population; no day/night occupancy factors, which were not found); the
distance to safety is the straight-line distance to the nearest cell the forecast keeps
dry (within the forecast field only), times ``detour_factor``; the tsunami "reaches" a
place at the field's ``arrival_time`` there.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from tsunami.depth_classes import DEPTH_BREAKS
from tsunami.localtime import NIGHT_HOURS

#: Death rate of people caught by the water, (depth m, fraction): Cabinet Office 2012
#: Nankai Trough analysis as reported by Tokyo Shimbun, 30 Aug 2012 (research notes s. 2.1)
CABINET_2012_DEATH_RATE = ((0.3, 0.0001), (0.5, 0.048), (0.7, 0.711), (1.0, 1.0))
CABINET_2012_DEATH_RATE_SOURCE = (
    "Cabinet Office (内閣府) 2012 Nankai Trough damage estimate, death rate by depth "
    "(浸水深別死者率, after 越村ほか 2009) as reported by Tokyo Shimbun, 30 Aug 2012, "
    "'津波1メートルでもほぼ死亡 内閣府分析' [secondary source; check against "
    "bousai.go.jp/jishin/nankai/taisaku/pdf/2_2.pdf]")


def depth_class_labels(threshold: float) -> list[str]:
    edges = [threshold, *DEPTH_BREAKS]
    labels = [f"{a:g}-{b:g} m" for a, b in itertools.pairwise(edges)]
    return [f"dry (< {threshold:g} m)", *labels, f">= {DEPTH_BREAKS[-1]:g} m"]


def depth_class_keys(threshold: float) -> list[str]:
    """Column-safe names of the depth classes (``dry``, ``0.01_0.3m``, ..., ``ge20m``)."""
    edges = [threshold, *DEPTH_BREAKS]
    keys = [f"{a:g}_{b:g}m" for a, b in itertools.pairwise(edges)]
    return ["dry", *keys, f"ge{DEPTH_BREAKS[-1]:g}m"]


@dataclass(frozen=True)
class EvacuationGroup:
    """A share of the population that starts evacuating ``start_min`` minutes after the
    earthquake (None: only when the tsunami reaches them, i.e. too late)."""

    name: str
    share: float
    start_min: float | None


CABINET_2012_GROUPS = (
    EvacuationGroup("direct (直接避難)", 0.20, 5.0),
    EvacuationGroup("after errands (用事後避難)", 0.50, 15.0),
    EvacuationGroup("when imminent (切迫避難)", 0.30, None),
)


@dataclass(frozen=True)
class CasualtyParameters:
    """Everything the casualty estimate assumes. Defaults: the research notes' values.

    Units: depths m, times min, speeds m/s.
    """

    model: str = "cabinet_office_2012"  # or "cdmc_pre2012"
    inundation_threshold_m: float = 0.01  # Cabinet Office inundation area: >= 1 cm [P]
    # cabinet_office_2012: death rate of caught people, (depth m, fraction) points; 0
    # below the first, linear between, the last rate above the last
    death_rate: tuple[tuple[float, float], ...] = CABINET_2012_DEATH_RATE
    groups: tuple[EvacuationGroup, ...] = CABINET_2012_GROUPS
    walking_speed_m_s: float = 2.65 / 3.6  # 2.65 km/h [S]
    #: None: from the origin time in local time (``night_hours``); True/False forces it
    night: bool | None = None
    night_hours: tuple[int, int] = NIGHT_HOURS  # local [start, end) hours of night
    night_extra_delay_min: float = 5.0  # [S]
    night_speed_factor: float = 0.8  # [S]
    detour_factor: float = 1.0  # straight line; >1 for road detours (assumption)
    # cdmc_pre2012
    cdmc_a: float = 0.0282
    cdmc_b: float = 0.2328
    cdmc_linear_below_m: float = 1.0
    cdmc_cap_depth_m: float = 10.0
    cdmc_rate_above_cap: float = 0.9999
    cdmc_shares: tuple[float, float, float, float] = (0.05, 0.44, 0.11, 0.40)
    cdmc_shares_high: tuple[float, float, float, float] = (0.15, 0.80, 0.0, 0.05)
    cdmc_shares_low: tuple[float, float, float, float] = (0.05, 0.44, 0.11, 0.40)
    cdmc_min_time_min: float = 5.0

    def __post_init__(self) -> None:
        if self.model not in ("cabinet_office_2012", "cdmc_pre2012"):
            raise ValueError(f"casualty model {self.model!r}: expected cabinet_office_2012 "
                             "or cdmc_pre2012")
        total = sum(g.share for g in self.groups)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"evacuation group shares add up to {total:g}, not 1")
        for shares in (self.cdmc_shares, self.cdmc_shares_low, self.cdmc_shares_high):
            if abs(sum(shares) - 1.0) > 1e-6:
                raise ValueError(f"CDMC evacuation shares {shares} do not add up to 1")
        depths, rates = zip(*self.death_rate, strict=True) if self.death_rate else ((), ())
        if (len(depths) < 2 or list(depths) != sorted(set(depths))
                or list(rates) != sorted(rates) or not 0 <= rates[0] <= rates[-1] <= 1):
            raise ValueError("death_rate: at least two (depth m, rate) points, depths "
                             "increasing and rates non-decreasing within [0, 1]")
        if not all(0 <= h < 24 for h in self.night_hours):
            raise ValueError("night_hours: two local hours 0-23 (start, end)")

    def assumptions(self) -> list[str]:
        """The assumptions in words, for every output's metadata."""
        common = [
            "PLANNING ESTIMATE: casualty figures depend on the assumptions below and are not "
            "a prediction of actual deaths.",
            f"inundated: depth >= {self.inundation_threshold_m:g} m (Cabinet Office inundation "
            "area, >= 1 cm)",
            "people: census (night-time residential) population, spread over buildings or "
            "land cells of each census cell; no day/night occupancy factors",
        ]
        if self.model == "cdmc_pre2012":
            return [
                *common,
                "model: Central Disaster Management Council, pre-2012 (secondary transcription "
                "of 専門調査会 第7回 sub6.pdf) [S]",
                f"death rate D(h) = {self.cdmc_a:g} exp({self.cdmc_b:g} h) for h >= "
                f"{self.cdmc_linear_below_m:g} m, linear to 0 below, {self.cdmc_rate_above_cap:g}"
                f" above {self.cdmc_cap_depth_m:g} m; PROVISIONAL: the part below "
                f"{self.cdmc_linear_below_m:g} m and the cap are the transcribing code's "
                "choices, not the source's",
                "non-completion d(t) = 1/(1 + 0.00525 exp(0.7 t/3.565)), t = arrival time "
                f"(min), d = 1 for t < {self.cdmc_min_time_min:g} min",
                f"shares immediately/on warning/no warning/no evacuation: {self.cdmc_shares}; "
                "'cannot receive warning' taken as not evacuating; range from the high- and "
                "low-awareness shares",
            ]
        groups = "; ".join(
            f"{g.name} {g.share:.0%} from "
            + (f"{g.start_min:g} min" if g.start_min is not None else "tsunami arrival")
            for g in self.groups)
        points = ", ".join(f"{r:.4%} at {h:g} m" for h, r in self.death_rate)
        night = ("night" if self.night else "daytime") if self.night is not None else \
            "time of day not resolved"
        return [
            *common,
            "model: Cabinet Office (内閣府) 2012 Nankai Trough method [P/S]",
            f"evacuation groups: {groups}; {night}"
            + (f" (+{self.night_extra_delay_min:g} min, speed x {self.night_speed_factor:g})"
               if self.night else ""),
            f"walking speed {self.walking_speed_m_s * 3.6:g} km/h; distance = straight line "
            f"to the nearest cell the forecast keeps dry x {self.detour_factor:g}; caught "
            "when the walk ends after the tsunami reaches the person's cell",
            f"death rate of people caught: {points}; 0 below {self.death_rate[0][0]:g} m, "
            "linear in depth between the points (the source's functional form was not "
            f"found); source: {CABINET_2012_DEATH_RATE_SOURCE}"
            if self.death_rate == CABINET_2012_DEATH_RATE else
            f"death rate of people caught: {points} (user-given); 0 below the first, linear "
            "between",
            "range: the death rate of the lower and of the upper neighbouring point between "
            "points (every curve rising through them lies between), and day and night",
        ]


def mortality_2012(depth: np.ndarray, p: CasualtyParameters, bound: str = "central"
                   ) -> np.ndarray:
    """Death rate of people caught at depth (m) from the ``death_rate`` points: 0 below
    the first point, the last rate from the last point on; between two points linear
    ("central"), the lower point's rate ("low") or the upper point's ("high")."""
    h = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    xs, ys = (np.array(v, dtype=np.float64) for v in zip(*p.death_rate, strict=True))
    if bound == "central":
        rate = np.interp(h, xs, ys)
    else:
        i = np.searchsorted(xs, h, side="right")  # points at or below h
        lower = ys[np.maximum(i - 1, 0)]
        on_point = np.isin(h, xs)
        rate = lower if bound == "low" else np.where(on_point, lower,
                                                     ys[np.minimum(i, xs.size - 1)])
    return np.where(h < xs[0], 0.0, rate)


def death_rate_cdmc(depth: np.ndarray, p: CasualtyParameters) -> np.ndarray:
    """Pre-2012 CDMC death rate D(h) (fraction) for depth h (m)."""
    h = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    at_break = p.cdmc_a * np.exp(p.cdmc_b * p.cdmc_linear_below_m)
    rate = np.where(h >= p.cdmc_linear_below_m, p.cdmc_a * np.exp(p.cdmc_b * h),
                    at_break * np.clip(h, 0.0, None) / p.cdmc_linear_below_m)
    return np.clip(np.where(h > p.cdmc_cap_depth_m, p.cdmc_rate_above_cap, rate), 0.0, 1.0)


def non_completion_cdmc(arrival_min: np.ndarray, p: CasualtyParameters) -> np.ndarray:
    """Pre-2012 CDMC evacuation non-completion ratio d(t), t in minutes (NaN: never
    reached -> 0)."""
    t = np.asarray(arrival_min, dtype=np.float64)
    with np.errstate(over="ignore"):
        d = 1.0 / (1.0 + 0.00525 * np.exp(0.7 * t / 3.565))
    d = np.where(t < p.cdmc_min_time_min, 1.0, d)
    return np.where(np.isnan(t), 0.0, d)


def caught_fraction(arrival_s: np.ndarray, distance_m: np.ndarray, p: CasualtyParameters,
                    night: bool | None = None) -> np.ndarray:
    """Share of people at a place who have not reached safety when the tsunami arrives.

    A group starting ``start_min`` after the earthquake walks ``distance x detour`` at the
    walking speed; it is caught if it arrives after ``arrival_s`` (s after the origin).
    Groups that only start when the tsunami comes are caught wherever the water comes.
    Arrival NaN (never reached) -> 0; distance inf (no dry ground in the field) -> caught.
    """
    night = p.night if night is None else night
    speed = p.walking_speed_m_s * (p.night_speed_factor if night else 1.0)
    delay = p.night_extra_delay_min if night else 0.0
    arrival = np.asarray(arrival_s, dtype=np.float64)
    walk = np.asarray(distance_m, dtype=np.float64) * p.detour_factor / speed
    caught = np.zeros_like(arrival)
    for g in p.groups:
        if g.start_min is None:
            late = np.ones_like(arrival, dtype=bool)
        else:
            late = (g.start_min + delay) * 60.0 + walk > arrival
        caught += g.share * late
    return np.where(np.isnan(arrival), 0.0, caught)


def distance_to_safety(depth: np.ndarray, covered: np.ndarray, cell_size_m: tuple[float, float],
                       threshold: float) -> np.ndarray:
    """Straight-line distance (m) from each cell to the nearest cell of land the forecast
    keeps dry (depth < threshold); inf where the field has no such cell."""
    safe = np.isfinite(depth) & (depth < threshold) & covered
    if not safe.any():
        return np.full(depth.shape, np.inf)
    dx, dy = cell_size_m
    return ndimage.distance_transform_edt(~safe, sampling=(dy, dx))


def casualties(people: np.ndarray, depth: np.ndarray, arrival_s: np.ndarray,
               distance_m: np.ndarray, p: CasualtyParameters) -> dict[str, np.ndarray]:
    """Deaths per parcel of people (central, low, high) and people caught.

    ``people``: persons; ``depth``: max inundation depth (m); ``arrival_s``: arrival time
    (s after origin); ``distance_m``: distance to safety. Returns arrays of the same shape:
    ``central``, ``low``, ``high`` deaths and ``caught`` (people not evacuated in time
    where the depth reaches the inundation threshold; for the CDMC method, people x
    (non-evacuating share + evacuating share x d(t))).
    """
    people = np.asarray(people, dtype=np.float64)
    h = np.nan_to_num(np.asarray(depth, dtype=np.float64), nan=0.0)
    wet = h >= p.inundation_threshold_m
    if p.model == "cdmc_pre2012":
        rate = death_rate_cdmc(h, p)
        d = non_completion_cdmc(np.asarray(arrival_s) / 60.0, p)
        # arrival NaN with water present should not happen (threshold 0.2 m); treat as
        # immediate arrival, the cautious reading
        d = np.where(np.isnan(arrival_s) & wet, 1.0, d)

        def deaths(shares):
            evac = shares[0] + shares[1]
            return np.where(wet, people * rate * ((1 - evac) + evac * d), 0.0)

        runs = [deaths(p.cdmc_shares), deaths(p.cdmc_shares_low), deaths(p.cdmc_shares_high)]
        evac = p.cdmc_shares[0] + p.cdmc_shares[1]
        caught = np.where(wet, people * ((1 - evac) + evac * d), 0.0)
        return {"central": runs[0], "low": np.minimum.reduce(runs),
                "high": np.maximum.reduce(runs), "caught": caught}
    arrival = np.where(np.isnan(arrival_s) & wet, 0.0, arrival_s)
    out = {}
    caught_day = caught_fraction(arrival, distance_m, p, night=False)
    caught_night = caught_fraction(arrival, distance_m, p, night=True)
    caught_now = caught_night if p.night else caught_day  # None (unknown): daytime
    out["caught"] = np.where(wet, people * caught_now, 0.0)
    out["central"] = np.where(wet, people * caught_now * mortality_2012(h, p, "central"), 0.0)
    low = np.minimum(caught_day, caught_night) * mortality_2012(h, p, "low")
    high = np.maximum(caught_day, caught_night) * mortality_2012(h, p, "high")
    out["low"] = np.where(wet, people * low, 0.0)
    out["high"] = np.where(wet, people * high, 0.0)
    return out


def depth_class(depth: np.ndarray, threshold: float) -> np.ndarray:
    """Index into :func:`depth_class_labels` (0 = dry; -1 = unknown / NaN depth)."""
    h = np.asarray(depth, dtype=np.float64)
    edges = np.array([threshold, *DEPTH_BREAKS])
    cls = np.searchsorted(edges, np.nan_to_num(h, nan=-1.0), side="right")
    return np.where(np.isnan(h), -1, cls)
