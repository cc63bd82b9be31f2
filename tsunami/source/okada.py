"""Okada (1985) surface displacement of rectangular dislocations in an elastic half-space.

:func:`okada85` evaluates the closed-form surface displacement (Okada 1985, BSSA 75(4),
1135-1154: the finite rectangular source, in Chinnery's notation) of a rectangular fault
in Okada's own frame. :class:`Subfault` describes one rectangle in geographic coordinates
and :func:`seafloor_displacement` sums any number of them on longitude/latitude points,
vectorised with NumPy over points and subfaults.

Geographic to Cartesian: each subfault is evaluated in a local flat-earth frame centred
on its reference point (east and north distances in metres on a sphere of radius
:data:`tsunami.grid.EARTH_RADIUS`, longitude differences scaled by the cosine of the
latitude midway between the point and the reference). This is the usual practice of
tsunami codes (GeoClaw's ``dtopotools`` does the same): the displacement decays within a
few fault dimensions, over which the curvature of the Earth is negligible against the
other source uncertainties.

Depths are metres below the half-space surface, taken to be the sea floor (the usual
simplification in tsunami modelling; GeoClaw's ``dtopotools`` makes it too). All lengths
are metres, angles degrees, displacements metres.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from tsunami.grid import EARTH_RADIUS

#: Reference points a subfault can be given by: the centre of its top edge (the default,
#: as in GeoClaw's "top center" and most published tables), its centroid, or the end of
#: its top edge where the strike starts (Satake et al. 2013, Yamazaki et al. 2018 tables).
REFERENCES = ("top_centre", "centroid", "top_start")

# Below this cosine of the dip the fault is treated as vertical: Okada's general
# expressions divide by cos(dip) and lose precision as eps / cos^2 near it, while the
# vertical forms are off by O(cos): 1e-5 keeps both errors near 1e-5 (relative).
_VERTICAL_COS = 1e-5
# Elements per block in seafloor_displacement: bounds the temporaries (about 30 float64
# arrays of this size) to some 100 MB however many points and subfaults are asked for.
_BLOCK = 1 << 19
# ... and at most this many points at a time: with one subfault on a big grid (an alert
# ensemble's member on 201,000 cells) blocks that fit the CPU's caches take 0.16 s of
# CPU instead of 0.27 s. The subfaults summed together stay those of _BLOCK, so the
# sums, each point's own, are bit-for-bit the same.
_POINT_BLOCK = 1 << 15


@dataclass(frozen=True)
class Subfault:
    """One rectangular fault patch with uniform slip.

    Parameters
    ----------
    longitude, latitude: degrees, of the centre of the TOP edge (the reference point; see
        :meth:`from_reference` for the centroid or the strike-start end of the top edge).
    depth: m below the sea floor, of the top edge (>= 0).
    strike: degrees clockwise from north; the fault dips to the right of the strike
        direction (Aki & Richards convention).
    dip: degrees below horizontal, 0...90.
    rake: degrees, direction of the hanging wall's slip in the fault plane measured from
        the strike direction: 0 left-lateral, 90 reverse (thrust), 180 right-lateral,
        -90 normal.
    slip: m (>= 0).
    length: m along strike; width: m down dip (> 0).
    rupture_time: s after the origin time when this patch starts to slip (>= 0).
    rise_time: s over which its slip grows linearly to the full value (>= 0; 0 is a step).
    """

    longitude: float
    latitude: float
    depth: float
    strike: float
    dip: float
    rake: float
    slip: float
    length: float
    width: float
    rupture_time: float = 0.0
    rise_time: float = 0.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float | np.floating
                                                          | np.integer):
                raise TypeError(f"subfault {f.name} must be a number, got {value!r}")
            if not math.isfinite(value):
                raise ValueError(f"subfault {f.name} must be finite, got {value!r}")
            object.__setattr__(self, f.name, float(value))
        if not -90.0 <= self.latitude <= 90.0:
            raise ValueError(f"subfault latitude must be within -90...90, got {self.latitude}")
        if not 0.0 <= self.dip <= 90.0:
            raise ValueError(f"subfault dip must be within 0...90 degrees, got {self.dip}")
        for name in ("depth", "slip", "rupture_time", "rise_time"):
            if getattr(self, name) < 0:
                raise ValueError(f"subfault {name} must be >= 0, got {getattr(self, name)}")
        for name in ("length", "width"):
            if getattr(self, name) <= 0:
                raise ValueError(f"subfault {name} must be positive, got {getattr(self, name)}")

    @classmethod
    def from_reference(cls, reference: str, longitude: float, latitude: float, depth: float,
                       strike: float, dip: float, rake: float, slip: float, length: float,
                       width: float, rupture_time: float = 0.0,
                       rise_time: float = 0.0) -> Subfault:
        """A subfault whose longitude, latitude (deg) and depth (m) locate ``reference``:
        ``"top_centre"`` (centre of the top edge), ``"centroid"`` (centre of the
        rectangle) or ``"top_start"`` (the top edge's end where the strike starts)."""
        if reference not in REFERENCES:
            raise ValueError(f"reference must be one of {REFERENCES}, got {reference!r}")
        along = down = 0.0  # m from the reference point to the top centre
        if reference == "centroid":
            down = -0.5 * width
        elif reference == "top_start":
            along = 0.5 * length
        lon, lat, top = plane_point(longitude, latitude, depth, strike, dip, along, down)
        if top < -1e-6:  # (a top edge at the floor may come out a rounding error above)
            raise ValueError(f"the top edge would lie {-top:.0f} m above the sea floor "
                             f"({reference} at {depth:g} m, width {width:g} m, dip {dip:g})")
        return cls(lon, lat, max(top, 0.0), strike, dip, rake, slip, length, width, rupture_time,
                   rise_time)

    # -- geometry ---------------------------------------------------------------------------
    @property
    def area(self) -> float:
        """Area of the rectangle (m^2)."""
        return self.length * self.width

    @property
    def bottom_depth(self) -> float:
        """Depth of the bottom edge (m)."""
        return self.depth + self.width * math.sin(math.radians(self.dip))

    @property
    def centroid(self) -> tuple[float, float, float]:
        """Longitude, latitude (deg) and depth (m) of the centre of the rectangle."""
        return self.point(0.0, 0.5 * self.width)

    def point(self, along: float, down: float) -> tuple[float, float, float]:
        """Longitude, latitude (deg) and depth (m) of the point ``along`` m along strike
        from the top centre and ``down`` m down dip from the top edge."""
        return plane_point(self.longitude, self.latitude, self.depth, self.strike, self.dip,
                           along, down)

    def moment(self, rigidity: float) -> float:
        """Seismic moment M0 = mu L W D (N m) for a rigidity ``mu`` (Pa)."""
        return rigidity * self.length * self.width * self.slip

    def split(self, along_strike: int, down_dip: int) -> list[Subfault]:
        """The same rectangle cut into ``along_strike`` x ``down_dip`` equal patches with
        the same slip and timing, ordered along strike first."""
        if along_strike < 1 or down_dip < 1:
            raise ValueError("split counts must be >= 1")
        length, width = self.length / along_strike, self.width / down_dip
        patches = []
        for k in range(down_dip):
            for i in range(along_strike):
                lon, lat, depth = self.point(-0.5 * self.length + (i + 0.5) * length,
                                             k * width)
                patches.append(dataclasses.replace(
                    self, longitude=lon, latitude=lat, depth=depth, length=length,
                    width=width))
        return patches


@dataclass(frozen=True)
class FaultModel:
    """A fault made of subfaults, with metadata saying where it came from.

    ``metadata`` holds text and numbers (the scaling law's name and coefficients, the
    magnitude, rigidity, the file it was read from...) that are recorded in the outputs.
    ``hypocentre`` is (longitude deg, latitude deg, depth m) where known.
    """

    subfaults: tuple[Subfault, ...]
    metadata: dict[str, str | float] = field(default_factory=dict)
    hypocentre: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "subfaults", tuple(self.subfaults))
        if not self.subfaults:
            raise ValueError("a fault model needs at least one subfault")

    def moment(self, rigidity: float) -> float:
        """Total seismic moment (N m) for a uniform rigidity (Pa)."""
        return sum(s.moment(rigidity) for s in self.subfaults)


# -- Okada (1985) -------------------------------------------------------------------------
def okada85(x: np.ndarray | float, y: np.ndarray | float, depth: np.ndarray | float,
            dip: np.ndarray | float, length: np.ndarray | float, width: np.ndarray | float,
            strike_slip: np.ndarray | float = 0.0, dip_slip: np.ndarray | float = 0.0,
            tensile: np.ndarray | float = 0.0, poisson: float = 0.25
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Surface displacement (m) of a finite rectangular dislocation, in Okada's frame.

    Okada (1985), finite rectangular source at the surface z = 0. Frame: x along strike,
    y horizontal and 90 degrees anticlockwise from x (the fault dips towards -y), z up.
    The fault occupies 0 <= x' <= ``length`` along strike and rises ``width`` up dip from
    its lower edge, whose strike-start corner lies at depth ``depth`` (m) below the
    origin. ``strike_slip`` (U1, positive left-lateral), ``dip_slip`` (U2, positive
    reverse) and ``tensile`` (U3, positive opening) are the hanging wall's dislocation
    (m); ``poisson`` is Poisson's ratio (0.25: lambda = mu). All arguments broadcast.

    Returns (ux, uy, uz) in metres along x, y and up.
    """
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        x, y, depth, dip, length, width, u1, u2, u3 = (np.asarray(a, dtype=np.float64) for a in
                                                       (x, y, depth, dip, length, width,
                                                        strike_slip, dip_slip, tensile))
        rad = np.deg2rad(dip)
        sd, cd = np.sin(rad), np.cos(rad)
        vertical = np.abs(cd) < _VERTICAL_COS
        cd = np.where(vertical, 0.0, cd)
        sd = np.where(vertical, np.copysign(1.0, sd), sd)
        p = y * cd + depth * sd
        q = y * sd - depth * cd
        ratio = 1.0 - 2.0 * poisson  # mu / (lambda + mu)
        ux = uy = uz = 0.0
        # Chinnery's notation: f(xi, eta)|| = f(x, p) - f(x, p - W) - f(x - L, p)
        # + f(x - L, p - W).
        for xi, eta, sign in ((x, p, 1.0), (x, p - width, -1.0), (x - length, p, -1.0),
                              (x - length, p - width, 1.0)):
            cx, cy, cz = _corner(xi, eta, q, sd, cd, vertical, ratio, u1, u2, u3)
            ux, uy, uz = ux + sign * cx, uy + sign * cy, uz + sign * cz
    return ux, uy, uz


def _corner(xi, eta, q, sd, cd, vertical, ratio, u1, u2, u3):
    """One term of the Chinnery sum: Okada's (1985) expressions at one corner."""
    r = np.sqrt(xi * xi + eta * eta + q * q)
    ytil = eta * cd + q * sd
    dtil = eta * sd - q * cd
    # Singular cases, treated as Okada (1992) does: R + eta = 0 happens when xi = q = 0 and
    # eta < 0 (then ln(R + eta) -> -ln(R - eta) and 1/(R + eta) -> 0), likewise R + xi;
    # the arctangent's limit is 0 when q = 0, and I5's when xi = 0.
    r_eta = r + eta
    r_eta_zero = r_eta <= 1e-12 * r
    ln_r_eta = np.where(r_eta_zero, -np.log(r - eta), np.log(r_eta))
    inv_r_eta = np.where(r_eta_zero, 0.0, 1.0 / r_eta)
    r_xi = r + xi
    inv_r_xi = np.where(r_xi <= 1e-12 * r, 0.0, 1.0 / r_xi)
    theta = np.where(q == 0.0, 0.0, np.arctan(xi * eta / (q * r)))
    r_d = r + dtil
    # I1...I5, and their cos(dip) = 0 forms where the fault is vertical.
    safe_cd = np.where(vertical, 1.0, cd)
    x_ = np.sqrt(xi * xi + q * q)
    i5 = np.where(xi == 0.0, 0.0, ratio * 2.0 / safe_cd * np.arctan(
        (eta * (x_ + q * cd) + x_ * (r + x_) * sd) / (xi * (r + x_) * safe_cd)))
    i4 = ratio / safe_cd * (np.log(r_d) - sd * ln_r_eta)
    i3 = ratio * (ytil / (safe_cd * r_d) - ln_r_eta) + sd / safe_cd * i4
    i1 = ratio * (-xi / (safe_cd * r_d)) - sd / safe_cd * i5
    if np.any(vertical):
        i1 = np.where(vertical, -0.5 * ratio * xi * q / (r_d * r_d), i1)
        i3 = np.where(vertical, 0.5 * ratio * (eta / r_d + ytil * q / (r_d * r_d) - ln_r_eta),
                      i3)
        i4 = np.where(vertical, -ratio * q / r_d, i4)
        i5 = np.where(vertical, -ratio * xi * sd / r_d, i5)
    i2 = ratio * -ln_r_eta - i3
    qr_eta = q * inv_r_eta / r
    qr_xi = q * inv_r_xi / r
    scale = -0.5 / np.pi
    # Strike-slip (U1), dip-slip (U2) and tensile (U3) parts.
    ux = scale * (u1 * (xi * qr_eta + theta + i1 * sd)
                  + u2 * (q / r - i3 * sd * cd)
                  - u3 * (q * qr_eta - i3 * sd * sd))
    uy = scale * (u1 * (ytil * qr_eta + q * cd * inv_r_eta + i2 * sd)
                  + u2 * (ytil * qr_xi + cd * theta - i1 * sd * cd)
                  - u3 * (-dtil * qr_xi - sd * (xi * qr_eta - theta) - i1 * sd * sd))
    uz = scale * (u1 * (dtil * qr_eta + q * sd * inv_r_eta + i4 * sd)
                  + u2 * (dtil * qr_xi + sd * theta - i5 * sd * cd)
                  - u3 * (ytil * qr_xi + cd * (xi * qr_eta - theta) - i5 * sd * sd))
    return ux, uy, uz


def seafloor_displacement(subfaults: Iterable[Subfault], lon: np.ndarray, lat: np.ndarray,
                          poisson: float = 0.25
                          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement of the sea floor (m) summed over ``subfaults`` at points ``lon``, ``lat``.

    ``lon``, ``lat``: degrees, arrays of any (common, broadcastable) shape. Returns
    (east, north, up) displacement arrays of that shape. Each subfault is evaluated with
    :func:`okada85` in a flat-earth frame around its own reference point (module doc).
    Points exactly on a corner of a fault that breaks the surface, where the solution is
    singular, get zero.
    """
    subs: Sequence[Subfault] = list(subfaults)
    lon, lat = np.broadcast_arrays(np.asarray(lon, np.float64), np.asarray(lat, np.float64))
    shape = lon.shape
    lon, lat = lon.ravel(), lat.ravel()
    out = [np.zeros(lon.size) for _ in range(3)]
    if not subs or lon.size == 0:
        return tuple(o.reshape(shape) for o in out)
    params = np.array([[s.longitude, s.latitude, s.depth, s.strike, s.dip, s.rake, s.slip,
                        s.length, s.width] for s in subs])
    points = min(lon.size, _BLOCK)
    per_block = max(1, _BLOCK // points)
    points = min(points, _POINT_BLOCK)
    for start in range(0, lon.size, points):
        part = slice(start, start + points)
        for first in range(0, len(subs), per_block):
            e, n, u = _displacement_block(params[first:first + per_block], lon[part],
                                          lat[part], poisson)
            out[0][part] += e
            out[1][part] += n
            out[2][part] += u
    for o in out:
        o[~np.isfinite(o)] = 0.0
    return tuple(o.reshape(shape) for o in out)


def _displacement_block(params: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                        poisson: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum over a block of subfaults (rows of ``params``) at a block of points."""
    lon0, lat0, top, strike, dip, rake, slip, length, width = (c[:, None] for c in params.T)
    east = EARTH_RADIUS * np.cos(np.deg2rad(0.5 * (lat[None, :] + lat0))) * np.deg2rad(
        (lon[None, :] - lon0 + 180.0) % 360.0 - 180.0)
    north = EARTH_RADIUS * np.deg2rad(lat[None, :] - lat0)
    phi, delta = np.deg2rad(strike), np.deg2rad(dip)
    sin_s, cos_s = np.sin(phi), np.cos(phi)
    # Okada's origin is above the strike-start end of the lower edge: half a length back
    # along strike and W cos(dip) down dip (horizontally) from the top centre.
    x = east * sin_s + north * cos_s + 0.5 * length
    y = -east * cos_s + north * sin_s + width * np.cos(delta)
    bottom = top + width * np.sin(delta)
    rk = np.deg2rad(rake)
    ux, uy, uz = okada85(x, y, bottom, dip, length, width, slip * np.cos(rk),
                         slip * np.sin(rk), 0.0, poisson)
    # Okada's x is the strike direction (sin, cos) in (east, north); y is (-cos, sin).
    return ((ux * sin_s - uy * cos_s).sum(axis=0), (ux * cos_s + uy * sin_s).sum(axis=0),
            uz.sum(axis=0))


# -- flat-earth geometry ------------------------------------------------------------------
def plane_point(longitude: float, latitude: float, depth: float, strike: float, dip: float,
                along: float, down: float) -> tuple[float, float, float]:
    """Longitude, latitude (deg) and depth (m) of the point ``along`` m along strike and
    ``down`` m down dip (negative: up dip) from (longitude, latitude, depth) in a fault
    plane of ``strike`` and ``dip`` (deg); flat earth around the starting point."""
    east, north, deeper = _fault_offset(strike, dip, along, down)
    lon, lat = _shift(longitude, latitude, east, north)
    return lon, lat, depth + deeper


def _fault_offset(strike: float, dip: float, along: float, down: float
                  ) -> tuple[float, float, float]:
    """East, north and downward offsets (m) of a point ``along`` m along strike and
    ``down`` m down dip in the fault plane."""
    phi, delta = math.radians(strike), math.radians(dip)
    horizontal = down * math.cos(delta)  # towards the dip direction, strike + 90 deg
    east = along * math.sin(phi) + horizontal * math.cos(phi)
    north = along * math.cos(phi) - horizontal * math.sin(phi)
    return east, north, down * math.sin(delta)


def _shift(lon: float, lat: float, east: float, north: float) -> tuple[float, float]:
    """The point ``east``, ``north`` metres from (lon, lat) degrees (flat earth)."""
    lat2 = lat + math.degrees(north / EARTH_RADIUS)
    # Longitude scaled at the mid latitude, as in _displacement_block: the shift is then
    # exactly undone by the opposite shift from the new point.
    mid = math.radians(0.5 * (lat + lat2))
    lon2 = lon + math.degrees(east / (EARTH_RADIUS * math.cos(mid)))
    return lon2, lat2
