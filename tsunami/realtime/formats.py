"""Readers of recorded gauge files, line by line, into :class:`~tsunami.realtime.records.Record`.

Each format is parsed one line at a time (the folder watcher feeds complete lines as they
are appended; replay feeds whole files). A line that cannot be read becomes a
:class:`Problem` naming the file, line and reason: it is logged and persisted, never fatal,
and the rest of the file is still read.

Formats (``FORMATS``):

- ``csv``: a header ``time,value``; ``time`` is ISO 8601 (UTC when no zone is written)
  or seconds after an epoch stated by a comment line ``# epoch: 2011-03-11T05:46:00Z``
  (or given by the caller). Optional comment ``# unit: hPa`` (default ``m``). Empty,
  ``NaN`` or ``MM`` values are missing samples.
- ``ndbc_dart``: the NDBC DART real-time text file, ``#YY MM DD hh mm ss T HEIGHT``
  (T: 1 = 15-min, 2 = 1-min, 3 = 15-s sample; HEIGHT: water column in m), newest row
  first, ``MM`` or the fill value 9999 for missing heights.
- ``two_column``: whitespace ``t value`` with ``t`` in seconds after an epoch the caller
  gives (the 2011 records of ``scenarios/tohoku2011/gauges``: t = 0 at
  2011-03-11T05:46:00Z, heights in m on an arbitrary datum, NaN for missing).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from tsunami.realtime.records import (
    NS_PER_S,
    UNITS,
    Flag,
    Record,
    parse_iso,
    seconds_to_ns,
    to_ns,
)
from tsunami.realtime.stations import Station

FORMATS = ("csv", "ndbc_dart", "two_column")
MISSING_TEXT = {"", "nan", "mm", "na", "null"}
DART_FILL = 9999.0
_DIRECTIVE = re.compile(r"^#\s*(epoch|unit)\s*[:=]\s*(\S+)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Problem:
    """A line or file that could not be read: where, why, and the offending text."""

    source: str
    line: int | None
    message: str
    text: str = ""

    def __str__(self) -> str:
        where = f"{self.source}, line {self.line}" if self.line else self.source
        return f"{where}: {self.message}" + (f" ({self.text[:80]!r})" if self.text else "")


class LineError(ValueError):
    """A line that is not a sample of the format."""


class LineParser:
    """Turns the lines of one file (one station) into records; keeps header state."""

    def __init__(self, fmt: str, station: Station, source: str,
                 epoch: datetime | str | int | None = None, unit: str = "m") -> None:
        if fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; expected one of {list(FORMATS)}")
        if unit not in UNITS:
            raise ValueError(f"unit {unit!r} is not one of {list(UNITS)}")
        self.format, self.station, self.source, self.unit = fmt, station, source, unit
        self.epoch_ns = None if epoch is None else to_ns(epoch)
        self.header_seen = False

    def parse(self, text: str) -> Record | None:
        """The record of one line, None for a blank, comment or header line; LineError
        when the line is not a sample."""
        line = text.strip().lstrip("\ufeff")
        if not line:
            return None
        if line.startswith("#"):
            self._comment(line)
            return None
        if self.format == "csv":
            return self._csv(line)
        if self.format == "ndbc_dart":
            return self._dart(line)
        return self._two_column(line)

    def _comment(self, line: str) -> None:
        if self.format == "ndbc_dart":
            self.header_seen = self.header_seen or ("YY" in line and "HEIGHT" in line)
            return
        match = _DIRECTIVE.match(line)
        if not match:
            return
        key, value = match.group(1).lower(), match.group(2)
        if key == "epoch":
            try:
                self.epoch_ns = to_ns(parse_iso(value, assume_utc=True))
            except ValueError as exc:
                raise LineError(f"bad epoch: {exc}") from None
        elif value not in UNITS:
            raise LineError(f"unit {value!r} is not one of {list(UNITS)}")
        else:
            self.unit = value

    def _record(self, time_ns: int, value: float, flags: int = 0) -> Record:
        if not math.isfinite(value):
            flags |= Flag.MISSING | (Flag.RANGE if not math.isnan(value) else 0)
            value = math.nan
        return Record(self.station.id, time_ns, value, self.unit, self.station.kind,
                      self.source, flags)

    def _seconds(self, text: str) -> int:
        seconds = _number(text, "time")
        if self.epoch_ns is None:
            raise LineError("time is in seconds but no epoch was stated "
                            "(a '# epoch: ISO-8601' line or the epoch option)")
        return self.epoch_ns + seconds_to_ns(seconds)

    def _csv(self, line: str) -> Record | None:
        fields = [f.strip() for f in line.split(",")]
        if not self.header_seen and [f.lower() for f in fields[:2]] == ["time", "value"]:
            self.header_seen = True
            return None
        if len(fields) != 2:
            raise LineError(f"expected 2 comma-separated fields time,value, got {len(fields)}")
        time_text, value_text = fields
        if _is_number(time_text):
            time_ns = self._seconds(time_text)
        else:
            try:
                time_ns = to_ns(parse_iso(time_text, assume_utc=True))
            except ValueError as exc:
                raise LineError(str(exc)) from None
        return self._record(time_ns, _value(value_text))

    def _dart(self, line: str) -> Record:
        fields = line.split()
        if len(fields) != 8:
            raise LineError(f"expected 8 fields 'YY MM DD hh mm ss T HEIGHT', got {len(fields)}")
        try:
            parts = [int(f) for f in fields[:7]]
            when = datetime(*parts[:6], tzinfo=UTC)
        except ValueError as exc:
            raise LineError(f"bad date/time: {exc}") from None
        if parts[6] not in (1, 2, 3):
            raise LineError(f"measurement type T must be 1, 2 or 3, got {parts[6]}")
        value = _value(fields[7])
        return self._record(to_ns(when), math.nan if value == DART_FILL else value)

    def _two_column(self, line: str) -> Record:
        fields = line.split()
        if len(fields) != 2:
            raise LineError(f"expected 2 whitespace-separated fields 't value', got {len(fields)}")
        return self._record(self._seconds(fields[0]), _value(fields[1]))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _number(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise LineError(f"{what} {text!r} is not a number") from None
    if not math.isfinite(value):
        raise LineError(f"{what} {text!r} is not finite")
    return value


def _value(text: str) -> float:
    if text.strip().lower() in MISSING_TEXT:
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise LineError(f"value {text!r} is not a number") from None


def parse_lines(parser: LineParser, lines: Iterable[str], first_line: int = 1
                ) -> tuple[list[Record], list[Problem]]:
    """Records and problems of consecutive lines (``first_line`` numbers the first)."""
    records: list[Record] = []
    problems: list[Problem] = []
    for number, text in enumerate(lines, start=first_line):
        try:
            record = parser.parse(text)
        except LineError as exc:
            problems.append(Problem(parser.source, number, str(exc), text.strip()))
            continue
        if record is not None:
            records.append(record)
    return records, problems


def detect_format(path: Path, head: str) -> str | None:
    """The format of a file from its suffix and first line(s); None if unknown."""
    first = head.lstrip("\ufeff").lstrip()
    if first.startswith("#") and "YY" in first.split("\n", 1)[0] and "HEIGHT" in first:
        return "ndbc_dart"
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".dart", ".txt") and first.startswith("#YY"):
        return "ndbc_dart"
    if suffix == ".dat":
        return "two_column"
    return None


def station_for(path: Path, stations) -> Station | None:
    """The catalogue station a file belongs to: its name's stem (``21418.dat``) or the
    part of the stem before the first ``_`` (``P02_20110311.csv``)."""
    stem = path.name.split(".")[0]
    for candidate in (stem, stem.split("_")[0]):
        if candidate in stations:
            return stations[candidate]
    return None


def read_file(path: str | Path, station: Station, fmt: str | None = None,
              epoch: datetime | str | int | None = None, unit: str = "m",
              source: str | None = None) -> tuple[list[Record], list[Problem]]:
    """All records of a recorded file (any row order) and the problems met.

    Unreadable files (missing, not text, unknown format) give a single problem rather
    than an exception, so a replay of many files goes on.
    """
    path = Path(path)
    source = source or path.name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [Problem(source, None, f"cannot read as UTF-8 text: {exc}")]
    fmt = fmt or detect_format(path, text[:4096])
    if fmt is None:
        return [], [Problem(source, None, f"unknown file format (suffix {path.suffix!r}); "
                            f"expected one of {list(FORMATS)}")]
    return parse_lines(LineParser(fmt, station, source, epoch, unit), text.splitlines())


#: The epoch of the 2011 Tohoku records (t = 0 s), 24 s before the origin time.
TOHOKU2011_EPOCH = datetime(2011, 3, 11, 5, 46, 0, tzinfo=UTC)
TOHOKU2011_ORIGIN_NS = to_ns(TOHOKU2011_EPOCH) + 24 * NS_PER_S
