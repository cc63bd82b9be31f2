"""Subfault tables: a published finite-fault model as a CSV file.

One row per rectangular subfault, comma-separated, with a header naming the columns (any
order). Required columns:

| column | unit | meaning |
|---|---|---|
| ``longitude``, ``latitude`` | degrees | reference point (default: centre of the top edge) |
| ``depth_m`` | m | depth of the reference point below the sea floor |
| ``strike``, ``dip``, ``rake`` | degrees | orientation and slip direction (Aki & Richards) |
| ``slip_m`` | m | slip |
| ``length_m``, ``width_m`` | m | along strike and down dip |

Optional columns: ``rupture_time_s`` (s after the origin time when the subfault starts
to slip, default 0) and ``rise_time_s`` (s over which its slip grows linearly, default
0). Blank lines and lines starting with ``#`` (a citation, say) are skipped. Every value
is checked; a bad one raises :class:`~tsunami.errors.InputError` naming the file, line
and column.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

from tsunami.errors import InputError
from tsunami.source.okada import REFERENCES, Subfault

#: Required columns, in the order of :class:`Subfault`'s parameters.
REQUIRED_COLUMNS = ("longitude", "latitude", "depth_m", "strike", "dip", "rake", "slip_m",
                    "length_m", "width_m")
OPTIONAL_COLUMNS = ("rupture_time_s", "rise_time_s")

# Allowed range per column: (minimum, maximum, minimum excluded).
_RANGES = {
    "longitude": (-360.0, 360.0, False), "latitude": (-90.0, 90.0, False),
    "depth_m": (0.0, math.inf, False), "strike": (-360.0, 360.0, False),
    "dip": (0.0, 90.0, False), "rake": (-360.0, 360.0, False),
    "slip_m": (0.0, math.inf, False), "length_m": (0.0, math.inf, True),
    "width_m": (0.0, math.inf, True), "rupture_time_s": (0.0, math.inf, False),
    "rise_time_s": (0.0, math.inf, False),
}


def read_subfault_csv(path: str | Path, reference: str = "top_centre") -> list[Subfault]:
    """Read a subfault table (module doc); ``reference`` says which point of each
    rectangle the longitude, latitude and depth locate ("top_centre", "centroid" or
    "top_start", see :meth:`Subfault.from_reference`)."""
    path = Path(path)
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            lines = list(enumerate(f, start=1))
    except FileNotFoundError:
        raise InputError(path, None, "subfault table not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(path, None, f"cannot read the subfault table: {exc}") from None
    rows = []
    for n, line in lines:
        row = next(csv.reader([line]), [])
        if row and "".join(row).strip() and not row[0].lstrip().startswith("#"):
            rows.append((n, row))
    if not rows:
        raise InputError(path, "header", "empty table: expected the header "
                         f"'{','.join(REQUIRED_COLUMNS)}'")
    number, header = rows[0]
    columns = [h.strip() for h in header]
    allowed = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
    for name in columns:
        if name not in allowed:
            raise InputError(path, f"line {number}, column '{name}'",
                             f"unknown column; expected {', '.join(allowed)}")
        if columns.count(name) > 1:
            raise InputError(path, f"line {number}, column '{name}'", "repeated column")
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise InputError(path, f"line {number}", f"header lacks the column(s) "
                         f"{', '.join(missing)} (required: {','.join(REQUIRED_COLUMNS)})")
    subfaults = []
    for number, row in rows[1:]:
        if len(row) != len(columns):
            raise InputError(path, f"line {number}", f"{len(row)} values for "
                             f"{len(columns)} columns: {row!r}")
        values = {name: _value(path, number, name, text)
                  for name, text in zip(columns, row, strict=True)}
        try:
            subfaults.append(Subfault.from_reference(
                reference, values["longitude"], values["latitude"], values["depth_m"],
                values["strike"], values["dip"], values["rake"], values["slip_m"],
                values["length_m"], values["width_m"], values.get("rupture_time_s", 0.0),
                values.get("rise_time_s", 0.0)))
        except ValueError as exc:  # e.g. a centroid too shallow for the width: top < 0
            raise InputError(path, f"line {number}", str(exc)) from None
    if not subfaults:
        raise InputError(path, "rows", "no subfaults below the header")
    return subfaults


def _value(path: Path, line: int, column: str, text: str) -> float:
    where = f"line {line}, column '{column}'"
    try:
        value = float(text)
    except ValueError:
        raise InputError(path, where, f"not a number: {text.strip()!r}") from None
    if not math.isfinite(value):
        raise InputError(path, where, f"NaN or infinite value: {text.strip()!r}")
    low, high, open_low = _RANGES[column]
    if value < low or (open_low and value <= low) or value > high:
        bound = "positive" if open_low else f"within {low:g}...{high:g}"
        raise InputError(path, where, f"must be {bound}, got {value:g}")
    return value
