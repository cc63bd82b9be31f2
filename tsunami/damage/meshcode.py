"""Japanese standard grid squares (地域メッシュ, JIS X 0410): codes to cell bounds and back.

Levels (latitude x longitude size; digits):

====================  =================  ======  ===========
level                 size               digits  about
====================  =================  ======  ===========
1st (第1次地域区画)   40' x 1 deg        4       80 km
2nd (第2次地域区画)   5' x 7'30"         6       10 km
3rd (基準地域メッシュ) 30" x 45"          8       1 km
1/2 (2分の1)          15" x 22.5"        9       500 m
1/4 (4分の1)          7.5" x 11.25"      10      250 m
1/8 (8分の1)          3.75" x 5.625"     11      125 m
====================  =================  ======  ===========

A 1st-level code ``ppuu`` has ``pp = floor(lat * 1.5)`` and ``uu = floor(lon) - 100``; the
2nd level adds one digit each for latitude and longitude (0-7, from the south and the
west), the 3rd level two more (0-9). Each halving level adds one digit 1-4: 1 south-west,
2 south-east, 3 north-west, 4 north-east. Coordinates are JGD2011 geographic (EPSG:6668);
the grid is defined on latitude/longitude, so the codes need no projection.

Internally a code maps to integer indices of its cell on the lattice of its level: latitude
in units of 30"/2^n and longitude in units of 45"/2^n (n = number of halvings), which keeps
encoding and decoding exact.
"""

from __future__ import annotations

import numpy as np

MESH_CRS = "EPSG:6668"  # JGD2011 geographic (lat/lon)

#: digits -> (level name, halvings below the 3rd level or None above it)
LEVELS: dict[int, str] = {4: "1st (80 km)", 6: "2nd (10 km)", 8: "3rd (1 km)",
                          9: "1/2 (500 m)", 10: "1/4 (250 m)", 11: "1/8 (125 m)"}


def _units(digits: int) -> tuple[float, float]:
    """Cell size (deg lat, deg lon) of a level."""
    if digits == 4:
        return 40.0 / 60.0, 1.0
    if digits == 6:
        return 5.0 / 60.0, 7.5 / 60.0
    n = digits - 8
    return 30.0 / 3600.0 / 2 ** n, 45.0 / 3600.0 / 2 ** n


def mesh_size(digits: int) -> tuple[float, float]:
    """(height, width) of a cell of this level in degrees of latitude and longitude."""
    if digits not in LEVELS:
        raise ValueError(f"a mesh code has 4, 6, 8, 9, 10 or 11 digits, not {digits}")
    return _units(digits)


def decode(codes, digits: int | None = None) -> np.ndarray:
    """Cell bounds of mesh codes: array (n, 4) of (west, south, east, north) in degrees.

    ``codes``: integers or digit strings, all of the same level. Raises ``ValueError``
    naming the first bad code (wrong length, digit out of range).
    """
    strs = [str(c).strip() for c in np.atleast_1d(np.asarray(codes, dtype=object))]
    if not strs:
        return np.zeros((0, 4))
    lengths = {len(s) for s in strs}
    if digits is None:
        if len(lengths) != 1:
            raise ValueError(f"mesh codes of mixed lengths {sorted(lengths)}")
        digits = lengths.pop()
    if digits not in LEVELS:
        raise ValueError(f"mesh code {strs[0]!r}: {digits} digits; expected one of "
                         f"{sorted(LEVELS)}")
    for s in strs:
        if len(s) != digits or not s.isdigit():
            raise ValueError(f"mesh code {s!r} is not a {digits}-digit code")
    arr = np.array([[int(ch) for ch in s] for s in strs], dtype=np.int64)
    p = arr[:, 0] * 10 + arr[:, 1]
    u = arr[:, 2] * 10 + arr[:, 3]
    lat_idx, lon_idx = p.copy(), u.copy()  # in units of this level's cells
    if digits >= 6:
        q, v = arr[:, 4], arr[:, 5]
        _check(strs, (q > 7) | (v > 7), "2nd-level digits must be 0-7")
        lat_idx, lon_idx = lat_idx * 8 + q, lon_idx * 8 + v
    if digits >= 8:
        lat_idx, lon_idx = lat_idx * 10 + arr[:, 6], lon_idx * 10 + arr[:, 7]
    for k in range(8, digits):
        d = arr[:, k]
        _check(strs, (d < 1) | (d > 4), "sub-division digits must be 1-4")
        lat_idx = lat_idx * 2 + (d - 1) // 2
        lon_idx = lon_idx * 2 + (d - 1) % 2
    dlat, dlon = _units(digits)
    south = lat_idx * dlat
    west = 100.0 + lon_idx * dlon
    return np.column_stack([west, south, west + dlon, south + dlat])


def _check(strs: list[str], bad: np.ndarray, message: str) -> None:
    if bad.any():
        raise ValueError(f"mesh code {strs[int(np.argmax(bad))]!r}: {message}")


def encode(lon, lat, digits: int) -> np.ndarray:
    """Mesh codes (int64) of the cells containing points (degrees, JGD2011)."""
    if digits not in LEVELS:
        raise ValueError(f"a mesh code has 4, 6, 8, 9, 10 or 11 digits, not {digits}")
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    dlat, dlon = _units(digits)
    # a tiny relative nudge so that points on a cell edge (e.g. lat = 42.05 exactly) land
    # in the cell to their north-east, as the half-open cell convention says
    lat_idx = np.floor(lat / dlat * (1 + 1e-12)).astype(np.int64)
    lon_idx = np.floor((lon - 100.0) / dlon * (1 + 1e-12)).astype(np.int64)
    code = np.zeros_like(lat_idx)
    subs = []
    for _ in range(8, digits):
        subs.append(1 + (lon_idx & 1) + 2 * (lat_idx & 1))
        lat_idx, lon_idx = lat_idx >> 1, lon_idx >> 1
    if digits >= 8:
        r, w = lat_idx % 10, lon_idx % 10
        lat_idx, lon_idx = lat_idx // 10, lon_idx // 10
    if digits >= 6:
        q, v = lat_idx % 8, lon_idx % 8
        lat_idx, lon_idx = lat_idx // 8, lon_idx // 8
    code = lat_idx * 100 + lon_idx
    if digits >= 6:
        code = code * 100 + q * 10 + v
    if digits >= 8:
        code = code * 100 + r * 10 + w
    for d in reversed(subs):
        code = code * 10 + d
    return code
