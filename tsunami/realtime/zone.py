"""Fault zones tiled into unit sources: the geometry of a unit-source database.

A fault zone is a TOML file describing a subduction interface (or any fault) as a grid
of rectangular subfaults, ``columns`` along strike by one row per ``[[row]]`` down dip,
each of which becomes a unit source with 1 m of slip:

```toml
[zone]
name = "japan_trench"
description = "free text"
trace = [[144.35, 40.198], [144.331, 39.738], ...]  # lon, lat (deg): the top edge of the
                          # shallowest row, in the strike direction (fault dips to its right)
columns = 11              # subfaults along strike
length_m = 50000.0        # their length along strike (m)
rake = 81.0               # degrees (90: pure thrust)
strike = 193.0            # optional: one strike for every column; default: the trace's
                          # azimuth where each column's top edge is centred
rigidity = 4.0e10         # optional: Pa, for the seismic moment (default 40 GPa)

[[row]]                   # one table per row, shallowest first
width_m = 25000.0         # down dip (m)
dip = 8.0                 # degrees
top_depth_m = 0.0         # depth of the top edge (m); required for the first row,
                          # optional below (default: the bottom of the row above)
# strike, rake: optional per-row overrides
```

Placement: column k of the first row has the centre of its top edge at the arc distance
(k + 1/2) L along the trace (geodesics on the WGS84 ellipsoid between trace points), so
the trace must be at least ``columns`` x L long. Each further row hangs from the bottom
edge of the row above in the same column: its top edge's centre is the centre of that
bottom edge (horizontal position; its depth is the configured ``top_depth_m`` where
given), so rows tile the plane down dip without gaps. Lengths in m, angles in degrees.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pyproj import Geod

from tsunami.config import Table, load_toml
from tsunami.names import check_name
from tsunami.source.okada import Subfault
from tsunami.source.scaling import SUBDUCTION_RIGIDITY

_GEOD = Geod(ellps="WGS84")
# The trace may fall short of columns x length by this fraction (rounding in published
# coordinates) before it is refused.
_TRACE_TOLERANCE = 0.01


@dataclass(frozen=True)
class UnitSource:
    """One subfault of a zone with 1 m of slip; ``row`` 0 is the shallowest, ``column`` 0
    the first along strike."""

    index: int
    row: int
    column: int
    subfault: Subfault

    @property
    def name(self) -> str:
        """``r<row>c<column>``, e.g. ``r0c3``."""
        return f"r{self.row}c{self.column}"


@dataclass(frozen=True)
class FaultZone:
    """A fault zone: its unit sources (row-major: row 0 first) and where it came from."""

    name: str
    units: tuple[UnitSource, ...]
    rows: int
    columns: int
    rigidity: float
    description: str = ""
    path: Path | None = None
    text: str = ""

    @property
    def sha256(self) -> str:
        """SHA-256 of the zone file's text (provenance of a database built from it)."""
        return hashlib.sha256(self.text.encode()).hexdigest()

    def __len__(self) -> int:
        return len(self.units)

    def subfaults(self, slip: np.ndarray | None = None) -> list[Subfault]:
        """The units' rectangles with ``slip`` (m, one value per unit; default 1 m)."""
        if slip is None:
            return [u.subfault for u in self.units]
        slip = np.asarray(slip, dtype=np.float64)
        if slip.shape != (len(self.units),):
            raise ValueError(f"expected {len(self.units)} slip values, got shape {slip.shape}")
        return [dataclasses.replace(u.subfault, slip=float(s))
                for u, s in zip(self.units, slip, strict=True)]

    def neighbours(self) -> list[tuple[int, int]]:
        """Pairs of unit indices (i < j) that share an edge: along strike or down dip."""
        return neighbour_pairs([u.row for u in self.units], [u.column for u in self.units])

    @classmethod
    def load(cls, path: str | Path) -> FaultZone:
        """Read a zone file (module doc); errors name the file and the key."""
        path = Path(path)
        data = load_toml(path, "fault zone")
        root = Table(data, path, "")
        root.check_keys({"zone", "row"}, {"zone", "row"})
        meta = root.table("zone", required=True)
        meta.check_keys({"name", "description", "trace", "columns", "length_m", "rake",
                         "strike", "rigidity"}, {"name", "trace", "columns", "length_m",
                                                 "rake"})
        name = meta.str("name")
        check_name(name, path, meta.field("name"))
        columns = meta.integer("columns", minimum=1)
        length = meta.number("length_m", positive=True, maximum=1e6)
        rake = meta.number("rake", minimum=-360.0, maximum=360.0)
        strike = meta.number("strike", minimum=-360.0, maximum=360.0)
        rigidity = meta.number("rigidity", SUBDUCTION_RIGIDITY, minimum=1e9, maximum=1e12)
        trace = _trace(meta)
        rows = root.tables("row")
        if not rows:
            raise root.error("row", "at least one [[row]] is needed")
        top = _place_along_trace(meta, trace, columns, length, strike)
        units: list[UnitSource] = []
        above: list[Subfault] = []
        for r, t in enumerate(rows):
            t.check_keys({"width_m", "dip", "top_depth_m", "strike", "rake"},
                         {"width_m", "dip"} | ({"top_depth_m"} if r == 0 else set()))
            width = t.number("width_m", positive=True, maximum=1e6)
            dip = t.number("dip", positive=True, maximum=90.0)
            top_depth = t.number("top_depth_m", minimum=0.0, maximum=1e6)
            row_strike = t.number("strike", minimum=-360.0, maximum=360.0)
            row_rake = t.number("rake", rake, minimum=-360.0, maximum=360.0)
            row = []
            for c in range(columns):
                if r == 0:
                    lon, lat, col_strike = top[c]
                    depth = top_depth
                else:
                    prev = above[c]
                    lon, lat, bottom = prev.point(0.0, prev.width)
                    col_strike = prev.strike
                    depth = bottom if top_depth is None else top_depth
                try:
                    sub = Subfault(lon, lat, depth, row_strike if row_strike is not None
                                   else col_strike, dip, row_rake, 1.0, length, width)
                except ValueError as exc:
                    raise t.error(None, str(exc)) from None
                row.append(sub)
                units.append(UnitSource(len(units), r, c, sub))
            above = row
        return cls(name, tuple(units), len(rows), columns, rigidity,
                   meta.str("description", ""), path.resolve(), path.read_text())


def neighbour_pairs(rows: Sequence[int], columns: Sequence[int]) -> list[tuple[int, int]]:
    """Pairs (i, j) of units, given by their row and column, that share an edge: the next
    column in the same row, or the next row in the same column."""
    at = {(int(r), int(c)): i for i, (r, c) in enumerate(zip(rows, columns, strict=True))}
    return [(i, at[key]) for (r, c), i in at.items()
            for key in ((r, c + 1), (r + 1, c)) if key in at]


def laplacian(rows: Sequence[int], columns: Sequence[int]) -> np.ndarray:
    """The smoothing operator of units given by their row and column (n x n): row i of
    ``L @ slip`` is the sum over i's four sides of (slip_i - slip of the unit beyond).
    Beyond the first and last columns and the deepest row lies a ghost unit of zero slip,
    so slip tapers towards those edges of the zone; the top edge is free (no ghost: slip
    may reach the trench). ``L @ slip`` vanishes for uniform slip away from the pinned
    edges and grows with roughness."""
    rows = np.asarray(rows, dtype=int)
    columns = np.asarray(columns, dtype=int)
    n = rows.size
    lap = np.zeros((n, n))
    for i, j in neighbour_pairs(rows, columns):
        lap[i, j] = lap[j, i] = -1.0
        lap[i, i] += 1.0
        lap[j, j] += 1.0
    if n:
        pinned = ((columns == columns.min()).astype(int) + (columns == columns.max())
                  + (rows == rows.max()))
        lap[np.arange(n), np.arange(n)] += pinned
    return lap


def _trace(meta: Table) -> np.ndarray:
    value = meta.data.get("trace")
    ok = isinstance(value, list) and len(value) >= 2 and all(
        isinstance(p, list) and len(p) == 2 and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in p) for p in value)
    if not ok:
        raise meta.error("trace", "expected at least two [longitude, latitude] points, "
                         f"got {value!r}")
    trace = np.array(value, dtype=np.float64)
    if np.any(np.abs(trace[:, 1]) > 90) or np.any(np.abs(trace[:, 0]) > 360):
        raise meta.error("trace", "longitudes must lie within -360...360 and latitudes "
                         "within -90...90")
    return trace


def _place_along_trace(meta: Table, trace: np.ndarray, columns: int, length: float,
                       strike: float | None) -> list[tuple[float, float, float]]:
    """(lon, lat, strike) of each column's top-edge centre along the trace."""
    azimuths, _, distances = _GEOD.inv(trace[:-1, 0], trace[:-1, 1], trace[1:, 0],
                                       trace[1:, 1])
    distances = np.atleast_1d(distances)
    azimuths = np.atleast_1d(azimuths)
    if np.any(distances <= 0):
        raise meta.error("trace", "repeats a point")
    ends = np.cumsum(distances)
    needed = columns * length
    if ends[-1] < needed * (1 - _TRACE_TOLERANCE):
        raise meta.error("trace", f"is {ends[-1] / 1e3:.1f} km long; {columns} columns of "
                         f"{length / 1e3:g} km need {needed / 1e3:.1f} km")
    placed = []
    for c in range(columns):
        along = min((c + 0.5) * length, ends[-1])
        k = min(int(np.searchsorted(ends, along)), len(ends) - 1)
        start = ends[k] - distances[k]
        lon, lat, back = _GEOD.fwd(trace[k, 0], trace[k, 1], azimuths[k], along - start)
        local = (back + 180.0) % 360.0  # azimuth onward, at the placed point
        placed.append((float(lon), float(lat), float(strike if strike is not None
                                                     else local)))
    return placed
