"""A forecast field (``town_<name>.nc``) as a lattice that exposure can be sampled on.

Sampling rules (documented in the package docstring too):

- a point takes the values of the cell that contains it;
- a footprint (polygon) takes the maximum depth, speed and momentum flux, and the earliest
  arrival, over every cell it intersects (its bounding box first, then an exact
  polygon-box test), so a building is judged by the worst water at any of its walls;
- a building whose cells are all sea in the model (NaN depth: the model's coastline is
  a cell off) takes the worst land cell of the 3 x 3 block around it; if there is none it
  is left unresolved (NaN) and counted as such in the summary;
- exposure outside the lattice, or on cells no forecast grid covered (``source_grid`` =
  -1), is an error unless the caller asks to drop it.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import shapely
import xarray as xr
from affine import Affine
from pyproj import CRS

from tsunami.errors import InputError

EARTH_RADIUS = 6_371_000.0  # m; as tsunami.grid, for metric cell sizes on geographic grids
VARIABLES = ("max_depth", "max_speed", "max_momentum_flux", "arrival_time", "elevation")
#: how each variable is combined over a footprint's cells: worst water, earliest arrival
REDUCE = {"max_depth": np.fmax, "max_speed": np.fmax, "max_momentum_flux": np.fmax,
          "arrival_time": np.fmin, "elevation": np.fmin}


@dataclass
class TownField:
    """A regular north-up lattice of cell-centred fields with a CRS.

    Arrays are (ny, nx) with row 0 the southernmost; ``x0``, ``y0`` are the south-west
    corner of the lattice (cell edges), ``dx``, ``dy`` the spacing in CRS units.
    """

    name: str
    crs: CRS
    x0: float
    y0: float
    dx: float
    dy: float
    data: dict[str, np.ndarray]
    covered: np.ndarray  # bool: a forecast grid gave values here
    attrs: dict
    source: str

    @classmethod
    def from_dataset(cls, ds: xr.Dataset | str | Path, source: str | None = None
                     ) -> TownField:
        """From a Dataset like ``town_<name>.nc`` (or its path)."""
        if isinstance(ds, str | Path):
            path = Path(ds)
            if not path.exists():
                raise InputError(path, None, "forecast field not found")
            with xr.open_dataset(path) as opened:
                return cls.from_dataset(opened.load(), str(path))
        src = source or ds.encoding.get("source") or ds.attrs.get("town") or "forecast field"
        if "lat" in ds.dims and "lon" in ds.dims:
            ydim, xdim = "lat", "lon"
        elif "y" in ds.dims and "x" in ds.dims:
            ydim, xdim = "y", "x"
        else:
            raise InputError(src, "dims", f"expected (lat, lon) or (y, x), got {tuple(ds.dims)}")
        crs = _dataset_crs(ds, src, geographic=ydim == "lat")
        if "max_depth" not in ds:
            raise InputError(src, "max_depth", "the forecast field has no max_depth")
        x = np.asarray(ds[xdim].values, dtype=np.float64)
        y = np.asarray(ds[ydim].values, dtype=np.float64)
        if x.size < 2 or y.size < 2:
            raise InputError(src, xdim, "the lattice needs at least 2 x 2 cells")
        dx, dy = (x[-1] - x[0]) / (x.size - 1), (y[-1] - y[0]) / (y.size - 1)
        flip_y, flip_x = dy < 0, dx < 0
        dx, dy = abs(dx), abs(dy)
        for name, coord, step in ((xdim, x, dx), (ydim, y, dy)):
            if np.max(np.abs(np.abs(np.diff(coord)) - step)) > 1e-6 * step:
                raise InputError(src, name, "coordinates are not evenly spaced")
        data = {}
        for v in VARIABLES:
            if v in ds:
                arr = np.asarray(ds[v].transpose(ydim, xdim).values, dtype=np.float32)
                if flip_y:
                    arr = arr[::-1]
                if flip_x:
                    arr = arr[:, ::-1]
                data[v] = np.ascontiguousarray(arr)
        if "source_grid" in ds:
            cov = np.asarray(ds["source_grid"].transpose(ydim, xdim).values) >= 0
            cov = cov[::-1] if flip_y else cov
            cov = cov[:, ::-1] if flip_x else cov
        else:
            cov = np.ones(data["max_depth"].shape, dtype=bool)
        attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in ds.attrs.items()}
        return cls(name=str(ds.attrs.get("town", ds.attrs.get("grid_name", "town"))),
                   crs=crs, x0=float(min(x[0], x[-1]) - dx / 2),
                   y0=float(min(y[0], y[-1]) - dy / 2), dx=float(dx), dy=float(dy),
                   data=data, covered=np.ascontiguousarray(cov), attrs=attrs, source=src)

    # -- geometry --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return self.data["max_depth"].shape

    @property
    def geographic(self) -> bool:
        return self.crs.is_geographic

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(west, south, east, north) of the lattice's outer cell edges."""
        ny, nx = self.shape
        return self.x0, self.y0, self.x0 + nx * self.dx, self.y0 + ny * self.dy

    @property
    def transform(self) -> Affine:
        """North-up affine transform (row 0 at the north), for rasterio."""
        return Affine(self.dx, 0.0, self.x0, 0.0, -self.dy, self.bounds[3])

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        ny, nx = self.shape
        return self.x0 + (np.arange(nx) + 0.5) * self.dx, self.y0 + (np.arange(ny) + 0.5) * self.dy

    @cached_property
    def cell_area_m2(self) -> np.ndarray:
        """Area of each cell row (m2), shape (ny, 1) (constant for projected lattices)."""
        ny, _ = self.shape
        if not self.geographic:
            return np.full((ny, 1), self.dx * self.dy)
        lat = np.deg2rad(self.centres()[1])
        return (EARTH_RADIUS ** 2 * np.deg2rad(self.dx) * np.deg2rad(self.dy)
                * np.cos(lat))[:, None]

    def cell_size_m(self) -> tuple[float, float]:
        """(dx, dy) in metres; for geographic lattices at the middle latitude."""
        if not self.geographic:
            return self.dx, self.dy
        lat = np.deg2rad(self.y0 + self.shape[0] * self.dy / 2)
        return (EARTH_RADIUS * np.deg2rad(self.dx) * np.cos(lat),
                EARTH_RADIUS * np.deg2rad(self.dy))

    def locate(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(row, col, inside) of the cells containing points given in the field CRS."""
        ny, nx = self.shape
        col = np.floor((np.asarray(x) - self.x0) / self.dx).astype(np.int64)
        row = np.floor((np.asarray(y) - self.y0) / self.dy).astype(np.int64)
        inside = (col >= 0) & (col < nx) & (row >= 0) & (row < ny)
        col = np.clip(col, 0, nx - 1)
        row = np.clip(row, 0, ny - 1)
        inside &= self.covered[row, col]
        return row, col, inside

    # -- sampling --------------------------------------------------------------------
    def sample(self, geoms: np.ndarray, rep: np.ndarray | None = None
               ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        """Sample every variable for shapely geometries in the field CRS.

        ``rep``: the geometries' representative points (``shapely.point_on_surface``),
        if already computed. Returns ``(values, cell, inside)``: ``values[v]`` shape (n,)
        (see module docstring for points vs footprints); ``cell`` the flat index of the
        cell holding each geometry's representative point (-1 outside); ``inside``
        whether the geometry lies on covered cells.
        """
        geoms = np.asarray(geoms, dtype=object)
        n = geoms.size
        nx = self.shape[1]
        if rep is None:
            rep = shapely.point_on_surface(geoms)
        px, py = shapely.get_x(rep), shapely.get_y(rep)
        row, col, inside = self.locate(px, py)
        cell = np.where(inside, row * nx + col, -1)
        values = {v: np.full(n, np.nan) for v in self.data}
        for v, arr in self.data.items():
            values[v][inside] = arr[row[inside], col[inside]]
        area = shapely.area(geoms)
        poly = inside & (area > 0)
        if poly.any():
            self._footprints(geoms, np.flatnonzero(poly), values)
        # Shoreline fallback: a building on a cell the model treats as sea.
        sea = inside & np.isnan(values["max_depth"])
        if sea.any():
            self._neighbourhood(np.flatnonzero(sea), row, col, values)
        return values, cell, inside

    def _footprints(self, geoms: np.ndarray, idx: np.ndarray,
                    values: dict[str, np.ndarray], max_pairs: int = 4_000_000) -> None:
        """Worst value over the cells each polygon intersects (in chunks of pairs)."""
        ny, nx = self.shape
        b = shapely.bounds(geoms[idx])
        c0 = np.clip(np.floor((b[:, 0] - self.x0) / self.dx), 0, nx - 1).astype(np.int64)
        c1 = np.clip(np.floor((b[:, 2] - self.x0) / self.dx), 0, nx - 1).astype(np.int64)
        r0 = np.clip(np.floor((b[:, 1] - self.y0) / self.dy), 0, ny - 1).astype(np.int64)
        r1 = np.clip(np.floor((b[:, 3] - self.y0) / self.dy), 0, ny - 1).astype(np.int64)
        width = c1 - c0 + 1
        counts = width * (r1 - r0 + 1)
        single = counts == 1  # box inside one cell: that cell (already sampled)
        multi = np.flatnonzero(~single)
        if multi.size == 0:
            return
        shapely.prepare(geoms[idx[multi]])
        ends = np.cumsum(counts[multi])
        starts = ends - counts[multi]
        lo = 0
        while lo < multi.size:
            # a chunk of buildings whose cell pairs fit in max_pairs (at least one building)
            hi = max(lo + 1, int(np.searchsorted(ends, starts[lo] + max_pairs, side="right")))
            sel = multi[lo:hi]
            cnt = counts[sel]
            owner = np.repeat(np.arange(sel.size), cnt)
            local = np.arange(cnt.sum()) - np.repeat(np.cumsum(cnt) - cnt, cnt)
            col = c0[sel][owner] + local % width[sel][owner]
            row = r0[sel][owner] + local // width[sel][owner]
            boxes = shapely.box(self.x0 + col * self.dx, self.y0 + row * self.dy,
                                self.x0 + (col + 1) * self.dx, self.y0 + (row + 1) * self.dy)
            hit = shapely.intersects(geoms[idx[sel]][owner], boxes) & self.covered[row, col]
            owner, row, col = owner[hit], row[hit], col[hit]
            # owner is sorted, so each building's cells form one run: reduceat per run
            has = np.unique(owner)
            run_starts = np.searchsorted(owner, has)
            target = idx[sel[has]]
            for v, arr in self.data.items():
                reduced = REDUCE[v].reduceat(arr[row, col].astype(np.float64), run_starts)
                values[v][target] = reduced
            lo = hi

    def _neighbourhood(self, idx: np.ndarray, row: np.ndarray, col: np.ndarray,
                       values: dict[str, np.ndarray]) -> None:
        ny, nx = self.shape
        rr = np.clip(row[idx][:, None] + np.array([-1, -1, -1, 0, 0, 0, 1, 1, 1]), 0, ny - 1)
        cc = np.clip(col[idx][:, None] + np.array([-1, 0, 1, -1, 0, 1, -1, 0, 1]), 0, nx - 1)
        depth = self.data["max_depth"][rr, cc].astype(np.float64)
        land = np.isfinite(depth) & self.covered[rr, cc]
        ok = land.any(axis=1)
        for v, arr in self.data.items():
            vals = np.where(land, arr[rr, cc].astype(np.float64), np.nan)
            red = REDUCE[v].reduce(vals, axis=1)
            values[v][idx[ok]] = red[ok]


def _dataset_crs(ds: xr.Dataset, src: str, geographic: bool) -> CRS:
    """CRS from the CF grid-mapping variable ``crs`` (``crs_wkt``, ``spatial_ref`` or
    ``epsg_code``); geographic lattices without one default to EPSG:4326 (as written by
    ``tsunami run``, whose lat/lon outputs always carry it)."""
    attrs = dict(ds["crs"].attrs) if "crs" in ds else {}
    for key in ("crs_wkt", "spatial_ref", "epsg_code"):
        if attrs.get(key):
            try:
                return CRS.from_user_input(attrs[key])
            except Exception as exc:  # pyproj raises CRSError; keep the message
                raise InputError(src, f"crs.{key}", f"not a valid CRS: {exc}") from None
    if geographic:
        return CRS.from_epsg(4326)
    raise InputError(src, "crs", "the forecast field has no CRS (local Cartesian frame); "
                     "damage estimates need a georeferenced field")
