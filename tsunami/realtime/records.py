"""The record model every feed produces: one gauge sample, its time, value, unit and flags.

Time is an integer count of nanoseconds since 1970-01-01T00:00:00 UTC (``time_ns``), the
unit of :class:`numpy.datetime64` ``[ns]``: exact (no float rounding, so the database's
unique key on station + time + source is reliable), ordered, and valid until 2262.
:func:`to_ns` and :func:`to_datetime` convert from/to timezone-aware UTC datetimes.

A station's position, depth and kind come from the :class:`~tsunami.realtime.stations.
StationCatalogue` by ``station`` id; the record repeats ``kind`` so that a stream can be
checked against the catalogue. ``value`` is NaN where the feed says "missing" (the sample
is kept and flagged :attr:`Flag.MISSING`, never dropped). ``unit`` is ``m`` (sea-surface
height, or height of the water column above a bottom-pressure gauge) or a pressure unit
(:data:`PRESSURE_UNITS`, converted to metres by quality control).
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tsunami.realtime.stations import KINDS

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NS_PER_S = 1_000_000_000
#: Pressure units quality control converts to metres, with their size in Pa.
PRESSURE_UNITS = {"Pa": 1.0, "hPa": 100.0, "kPa": 1000.0, "dbar": 1.0e4, "bar": 1.0e5,
                  "psi": 6894.757293168}
UNITS = ("m", *PRESSURE_UNITS)


class Flag(enum.IntFlag):
    """Quality flags (bits of an integer, stored with every sample). Flags never delete."""

    MISSING = 1        # no value (NaN, "MM", fill value)
    DUPLICATE = 2      # another sample of the station has this time stamp (first kept)
    OUT_OF_ORDER = 4   # arrived after a later sample of the same station and source
    SPIKE = 8          # robust (MAD) outlier against its neighbours
    STEP = 16          # a level shift not explained by a tsunami (instrument step)
    SEISMIC = 32       # seismic shaking: high-frequency energy well above background
    COSEISMIC = 64     # after a static offset across the shaking (sea floor moved)
    GAP = 128          # resampled bin with no good sample
    INTERPOLATED = 256  # resampled bin filled across a short gap
    CLOCK = 512        # time stamps corrected for a detected clock offset
    TIDE = 1024        # de-tided by a degraded method (short pre-event window)
    EDGE = 2048        # within half a filter window of the series' end: provisional
    RANGE = 4096       # value outside the physically possible range

    @classmethod
    def names(cls, value: int) -> list[str]:
        """The names of the flags set in ``value``."""
        return [f.name for f in cls if value & f]


#: Samples a consumer (inversion, trigger) should not use.
BAD = Flag.MISSING | Flag.SPIKE | Flag.STEP | Flag.SEISMIC | Flag.GAP | Flag.RANGE


@dataclass(frozen=True, slots=True)
class Record:
    """One sample of one station: ``time_ns`` (ns since the Unix epoch, UTC), ``value`` in
    ``unit``, ``kind`` (bottom_pressure or sea_surface_height), ``source`` (the feed that
    delivered it: a file name, an HTTP client name) and ``flags`` (:class:`Flag`)."""

    station: str
    time_ns: int
    value: float
    unit: str
    kind: str
    source: str
    flags: int = 0

    def __post_init__(self) -> None:
        if self.unit not in UNITS:
            raise ValueError(f"unit {self.unit!r} is not one of {list(UNITS)}")
        if self.kind not in KINDS:
            raise ValueError(f"kind {self.kind!r} is not one of {list(KINDS)}")

    @property
    def time(self) -> datetime:
        return to_datetime(self.time_ns)


def to_ns(when: datetime | str | int) -> int:
    """ns since the epoch (UTC) from an aware datetime, an ISO 8601 text with a zone
    (``Z`` or an offset) or an int (ns, returned as is). Naive times are refused."""
    if isinstance(when, bool):
        raise ValueError(f"not a time: {when!r}")
    if isinstance(when, int):
        return when
    if isinstance(when, str):
        when = parse_iso(when, assume_utc=False)
    if when.tzinfo is None:
        raise ValueError(f"time {when.isoformat()} has no time zone; give UTC ('Z')")
    return (when - EPOCH) // timedelta(microseconds=1) * 1000


def parse_iso(text: str, assume_utc: bool) -> datetime:
    """An ISO 8601 date-time; without a zone it is UTC if ``assume_utc`` else refused."""
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 date-time") from None
    if when.tzinfo is None:
        if not assume_utc:
            raise ValueError(f"time {text!r} has no time zone; give UTC ('Z')")
        when = when.replace(tzinfo=UTC)
    return when


def to_datetime(time_ns: int) -> datetime:
    """The timezone-aware UTC datetime of ``time_ns`` (microsecond precision)."""
    return EPOCH + timedelta(microseconds=int(time_ns) // 1000)


def iso(time_ns: int) -> str:
    """``time_ns`` as ISO 8601 UTC with a ``Z`` (e.g. for logs and JSON)."""
    return to_datetime(time_ns).isoformat().replace("+00:00", "Z")


def seconds_to_ns(seconds: float) -> int:
    """A duration in s as integer ns (rounded to the nearest ns)."""
    if not math.isfinite(seconds):
        raise ValueError(f"not a finite number of seconds: {seconds!r}")
    return round(seconds * NS_PER_S)
