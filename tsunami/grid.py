"""Regular computational grids: geometry, coordinates and metric terms.

A :class:`Grid` is a north-up lattice of ``ny`` x ``nx`` cells. Cell (j, i) has its centre
at ``(x[i], y[j])``; rows run south to north. The grid knows its coordinate reference
system: a projected CRS or a local Cartesian frame (coordinates in metres, Cartesian
equations) or a geographic CRS (coordinates in degrees, spherical equations with
Coriolis). It carries no field data; bathymetry and state belong to the model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
from pyproj import CRS

EARTH_RADIUS = 6_371_000.0  # m, mean radius (as in TUNAMI/COMCOT spherical codes)
EARTH_ROTATION = 7.2921e-5  # rad/s
GRAVITY = 9.81  # m/s^2


def great_circle_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance (m) between two points (degrees) on a sphere of the mean Earth radius
    (haversine)."""
    lat1, lat2 = np.radians(lat1), np.radians(lat2)
    dlon = np.radians(lon2 - lon1)
    central = 2 * np.arcsin(np.sqrt(np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(
        lat2) * np.sin(dlon / 2) ** 2))
    return float(EARTH_RADIUS * central)


def bounds_text(west: float, south: float, east: float, north: float, degrees: bool) -> str:
    """Bounds for a message, without float noise (140.2, not 140.20000000000002):
    "(138.8...140.2 E, 41.2...42.8 N)" in degrees, "(x 500000...520000 m, y ... m)"
    otherwise."""
    def number(v: float) -> str:
        return f"{v:.{6 if degrees else 2}f}".rstrip("0").rstrip(".")
    if degrees:
        return f"({number(west)}...{number(east)} E, {number(south)}...{number(north)} N)"
    return f"(x {number(west)}...{number(east)} m, y {number(south)}...{number(north)} m)"


@dataclass(frozen=True)
class Metrics:
    """Per-row metric factors the kernels need, in the state's precision.

    ``inv_dx_c[j]``: 1/dx (1/m) on cell row j; ``inv_dx_v[j]``: the same on y-face row j
    (south edge of cell row j); ``inv_dy``: 1/dy; ``cos_north``/``cos_south``: the ratio
    of the cosine of latitude at the north/south face to that at the cell centre;
    ``coriolis_c``/``coriolis_v``: Coriolis parameter f (1/s) on cell and y-face rows.
    """

    inv_dx_c: np.ndarray
    inv_dx_v: np.ndarray
    inv_dy: np.floating
    cos_north: np.ndarray
    cos_south: np.ndarray
    coriolis_c: np.ndarray
    coriolis_v: np.ndarray


@dataclass(frozen=True)
class Grid:
    """A regular grid of cells.

    Parameters
    ----------
    nx, ny: number of cells west-east and south-north.
    x0, y0: west and south edges, in CRS units (degrees for geographic CRSs, else m).
    dx, dy: cell size in CRS units.
    crs: the CRS, or ``None`` for a local Cartesian frame in metres (laboratory flumes).
    name: used in messages and output names.
    """

    nx: int
    ny: int
    x0: float
    y0: float
    dx: float
    dy: float
    crs: CRS | None = None
    name: str = "grid"
    coriolis: bool | None = field(default=None)

    def __post_init__(self) -> None:
        if self.nx < 2 or self.ny < 2:
            raise ValueError(f"grid {self.name!r}: needs at least 2 x 2 cells, got "
                             f"{self.nx} x {self.ny}")
        if not np.all(np.isfinite([self.x0, self.y0, self.dx, self.dy])):
            raise ValueError(f"grid {self.name!r}: origin and cell size must be finite, got "
                             f"x0={self.x0}, y0={self.y0}, dx={self.dx}, dy={self.dy}")
        if not (self.dx > 0 and self.dy > 0):
            raise ValueError(f"grid {self.name!r}: cell size must be positive, got "
                             f"dx={self.dx}, dy={self.dy}")
        if self.crs is not None and not isinstance(self.crs, CRS):
            object.__setattr__(self, "crs", CRS.from_user_input(self.crs))
        if self.spherical:
            south, north = self.y0, self.y0 + self.ny * self.dy
            if south <= -89.0 or north >= 89.0:
                raise ValueError(f"grid {self.name!r}: latitudes {south:.3f}..{north:.3f} "
                                 "reach a pole; spherical grids must stay within +-89 deg")

    @property
    def spherical(self) -> bool:
        """True when the grid is in a geographic CRS (spherical shallow-water equations)."""
        return self.crs is not None and self.crs.is_geographic

    @property
    def uses_coriolis(self) -> bool:
        return self.spherical if self.coriolis is None else bool(self.coriolis)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.ny, self.nx)

    @property
    def size(self) -> int:
        return self.nx * self.ny

    @cached_property
    def x(self) -> np.ndarray:
        """Cell-centre x (or longitude) coordinates."""
        return self.x0 + (np.arange(self.nx) + 0.5) * self.dx

    @cached_property
    def y(self) -> np.ndarray:
        """Cell-centre y (or latitude) coordinates, south to north."""
        return self.y0 + (np.arange(self.ny) + 0.5) * self.dy

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) edges in CRS units."""
        return (self.x0, self.y0, self.x0 + self.nx * self.dx, self.y0 + self.ny * self.dy)

    @property
    def bounds_text(self) -> str:
        """The bounds for a message (:func:`bounds_text`)."""
        return bounds_text(*self.bounds, degrees=self.spherical)

    def distance_m(self, x1: float, y1: float, x2: float, y2: float) -> float:
        """Distance (m) between two points in the grid's coordinates: great circle on a
        grid in degrees, straight on one in metres."""
        if self.spherical:
            return great_circle_m(x1, y1, x2, y2)
        return float(np.hypot(x2 - x1, y2 - y1))

    @property
    def units(self) -> str:
        return "degrees" if self.spherical else "m"

    def cell_widths(self) -> tuple[np.ndarray, float]:
        """Cell widths in metres: dx per row (varies with latitude) and dy."""
        if not self.spherical:
            return np.full(self.ny, self.dx), self.dy
        lat = np.deg2rad(self.y)
        return (EARTH_RADIUS * np.cos(lat) * np.deg2rad(self.dx),
                EARTH_RADIUS * np.deg2rad(self.dy))

    def cell_area(self) -> np.ndarray:
        """Area of each cell (m^2) as a (ny, 1) column, broadcastable to the grid."""
        widths, dy = self.cell_widths()
        return (widths * dy)[:, None]

    def min_spacing(self) -> float:
        """Smallest cell side in metres."""
        widths, dy = self.cell_widths()
        return float(min(widths.min(), dy))

    def metrics(self, dtype: np.dtype | type = np.float64) -> Metrics:
        """Metric factors for the kernels, in ``dtype``."""
        dtype = np.dtype(dtype)
        widths, dy_m = self.cell_widths()
        if self.spherical:
            face_lat = np.deg2rad(self.y0 + np.arange(self.ny + 1) * self.dy)
            centre_lat = np.deg2rad(self.y)
            cos_c, cos_v = np.cos(centre_lat), np.cos(face_lat)
            inv_dx_v = 1.0 / (EARTH_RADIUS * cos_v * np.deg2rad(self.dx))
            cos_north, cos_south = cos_v[1:] / cos_c, cos_v[:-1] / cos_c
        else:
            inv_dx_v = np.full(self.ny + 1, 1.0 / self.dx)
            cos_north = cos_south = np.ones(self.ny)
        if self.uses_coriolis:
            if not self.spherical:
                raise ValueError(f"grid {self.name!r}: Coriolis needs a geographic CRS")
            f_c = 2 * EARTH_ROTATION * np.sin(np.deg2rad(self.y))
            f_v = 2 * EARTH_ROTATION * np.sin(np.deg2rad(self.y0 + np.arange(self.ny + 1)
                                                         * self.dy))
        else:
            f_c, f_v = np.zeros(self.ny), np.zeros(self.ny + 1)
        return Metrics(
            inv_dx_c=(1.0 / widths).astype(dtype),
            inv_dx_v=inv_dx_v.astype(dtype),
            inv_dy=dtype.type(1.0 / dy_m),
            cos_north=np.ascontiguousarray(cos_north, dtype=dtype),
            cos_south=np.ascontiguousarray(cos_south, dtype=dtype),
            coriolis_c=f_c.astype(dtype),
            coriolis_v=f_v.astype(dtype),
        )

    def index_of(self, x: float, y: float) -> tuple[float, float]:
        """Fractional (row, column) index of a point, cell centres at integers."""
        return ((y - self.y0) / self.dy - 0.5, (x - self.x0) / self.dx - 0.5)

    def contains(self, x: float, y: float) -> bool:
        west, south, east, north = self.bounds
        return west <= x <= east and south <= y <= north

    def describe(self) -> str:
        unit = "deg" if self.spherical else "m"
        return (f"{self.name}: {self.nx} x {self.ny} cells of {self.dx:.6g} x {self.dy:.6g} "
                f"{unit} ({self.min_spacing():.1f} m)")
