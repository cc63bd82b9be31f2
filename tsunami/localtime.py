"""Local time of a forecast: the time zone of a region and times as an HQ reads them.

Model times are UTC. People read local time, and the casualty estimate needs it (night
or day). A region may name its IANA time zone (``[region] timezone = "Asia/Tokyo"``);
without one, places inside Japan's geodetic area (the EPSG area of use of JGD2011,
EPSG:6668) use Japan Standard Time and other places UTC, with a warning that says so.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pyproj import CRS

JAPAN = "Asia/Tokyo"
#: local hours counted as night for the casualty estimate: [start, end) wrapping midnight
NIGHT_HOURS = (20, 6)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ValueError naming it when unknown."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise ValueError(f"unknown time zone {name!r}: expected an IANA name such as "
                         "'Asia/Tokyo' or 'UTC'") from error


def in_japan(lon: float, lat: float) -> bool:
    area = CRS.from_epsg(6668).area_of_use
    return area.west <= lon <= area.east and area.south <= lat <= area.north


def resolve_timezone(configured: str | None, lon: float | None = None,
                     lat: float | None = None) -> ZoneInfo:
    """The configured zone, else Japan's for a place in Japan, else UTC (with a warning)."""
    if configured:
        return zone(configured)
    if lon is not None and lat is not None and in_japan(lon, lat):
        return ZoneInfo(JAPAN)
    warnings.warn("no time zone configured for a place outside Japan: local times are "
                  "given in UTC (set [region] timezone)", stacklevel=2)
    return ZoneInfo("UTC")


def format_time(moment: datetime | None, tz: tzinfo | None = None) -> str:
    """``1993-07-12 13:17 UTC (22:17 JST)``; the date is repeated when it differs."""
    if moment is None:
        return "n/a"
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%d %H:%M UTC")
    if tz is None or utc.astimezone(tz).utcoffset().total_seconds() == 0:
        return text
    local = utc.astimezone(tz)
    fmt = "%H:%M %Z" if local.date() == utc.date() else "%Y-%m-%d %H:%M %Z"
    return f"{text} ({local.strftime(fmt)})"


def is_night(moment: datetime, tz: tzinfo, hours: tuple[int, int] = NIGHT_HOURS) -> bool:
    """Whether ``moment`` falls in the night hours [start, end) of local time."""
    start, end = hours
    hour = moment.astimezone(tz).hour
    return hour >= start or hour < end if start > end else start <= hour < end
