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

from tsunami.config import Range, read_text
from tsunami.errors import InputError
from tsunami.source.okada import REFERENCES, Subfault

#: Required columns, in the order of :class:`Subfault`'s parameters.
REQUIRED_COLUMNS = ("longitude", "latitude", "depth_m", "strike", "dip", "rake", "slip_m",
                    "length_m", "width_m")
OPTIONAL_COLUMNS = ("rupture_time_s", "rise_time_s")

#: Plausible ranges of fault parameters, shared by subfault tables and the scenario's
#: ``fault`` and ``alert`` sources (README, "Plausible ranges").
FAULT_RANGES = {
    "longitude": Range(-180.0, 360.0, "deg", why="0...360 allowed for Pacific sources"),
    "latitude": Range(-90.0, 90.0, "deg"),
    "depth_m": Range(0.0, 700_000.0, "m", why="the deepest earthquakes are about 700 km deep"),
    "strike": Range(-360.0, 360.0, "deg"),
    "dip": Range(0.0, 90.0, "deg"),
    "rake": Range(-360.0, 360.0, "deg"),
    "slip_m": Range(0.0, 100.0, "m", why="the largest inverted slips (Tohoku 2011) are "
                                         "50-70 m"),
    "length_m": Range(0.0, 2_000_000.0, "m", open_low=True,
                      why="Sumatra-Andaman 2004 ruptured about 1,500 km"),
    "width_m": Range(0.0, 500_000.0, "m", open_low=True,
                     why="the widest megathrust ruptures are about 200-300 km"),
    "rupture_time_s": Range(0.0, 3600.0, "s", why="Sumatra 2004 ruptured for about 500 s"),
    "rise_time_s": Range(0.0, 600.0, "s", why="slow tsunami earthquakes slip over minutes"),
    "magnitude": Range(5.0, 9.8, "Mw", why="smaller events make no tsunami worth modelling; "
                                           "the largest recorded is 9.5"),
    "rigidity": Range(1e9, 1e11, "Pa", why="soft sediments (10 GPa) to the mantle (70 GPa)"),
    "rupture_velocity": Range(100.0, 6000.0, "m/s",
                              why="slow tsunami earthquakes (1 km/s) to supershear (5 km/s)"),
}


def read_subfault_csv(path: str | Path, reference: str = "top_centre") -> list[Subfault]:
    """Read a subfault table (module doc); ``reference`` says which point of each
    rectangle the longitude, latitude and depth locate ("top_centre", "centroid" or
    "top_start", see :meth:`Subfault.from_reference`)."""
    path = Path(path)
    if reference not in REFERENCES:
        raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
    lines = enumerate(read_text(path, "subfault table").splitlines(), start=1)
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
    if problem := FAULT_RANGES[column].problem(value):
        raise InputError(path, where, problem)
    return value
