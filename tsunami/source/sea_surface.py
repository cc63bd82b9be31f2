"""From sea-floor displacement to the initial sea surface: Tanioka-Satake and Kajiura.

Two corrections turn the sea-floor displacement of an earthquake into the sea-surface
displacement a long-wave model starts from:

- Tanioka & Satake (1996, GRL 23(8), 861-864): a sloping sea floor moved horizontally by
  (ux, uy) lifts the water column by ``uh = ux dH/dx + uy dH/dy``, H the still water depth
  (positive down): the bottom arriving at a point comes from where the water was shallower
  (dH/dx > 0, ux > 0) or deeper. It is added to the vertical displacement uz.
- Kajiura (1963, Bull. Earthq. Res. Inst. 41, 535-571): water of depth h does not follow
  sea-floor features shorter than about h. For a sudden bottom displacement the linear
  potential-flow solution gives the surface as the bottom displacement filtered by
  ``1 / cosh(k h)`` in wavenumber k (Kajiura's Green's function, in Fourier space).

The depth varies over a source, while the filter holds for a uniform depth. It is applied
here with the local depth: the displacement is filtered by FFT for a ladder of depths
(0, then a geometric series up to the deepest water, 25 % apart) and each cell takes the
linear interpolation between the two filtered fields bracketing its own depth, so that
deep water smooths over its own depth and shallow water keeps the detail it can carry,
without the cost of a space-varying convolution. Depth 0 (and land) is the identity. On
geographic grids the FFT uses the cell width in metres at the grid's middle latitude.
Units: metres throughout.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import scipy.fft
from pyproj import CRS, Transformer

from tsunami.grid import Grid
from tsunami.source.okada import Subfault, seafloor_displacement

# Depth ladder for the Kajiura filter: consecutive depths differ by this factor (the
# filtered field is smooth in depth, so linear interpolation over 25 % is accurate to a
# fraction of a percent of the displacement).
KAJIURA_DEPTH_RATIO = 1.25
# The response to a point displacement decays as exp(-pi r / 2h): beyond 8 h it is below
# 1e-5 of its peak, so that much padding keeps the periodic FFT from wrapping around.
KAJIURA_REACH = 8.0
# On cells wider than the depth the sampled 1/cosh(kh) still has a kink at the grid's
# shortest wavelength, and the discrete kernel then decays only as 1/n^2 in cells: at
# least 16 cells of padding keep its wrap-around below about 1e-4 of the displacement.
MIN_PADDING = 16


def grid_lonlat(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Longitude and latitude (deg) of every cell centre of a georeferenced grid."""
    if grid.crs is None:
        raise ValueError(f"grid {grid.name!r} is in a local frame: a fault source needs "
                         "longitude and latitude")
    x, y = np.meshgrid(grid.x, grid.y)
    if grid.spherical:
        return x, y
    to_lonlat = Transformer.from_crs(grid.crs, CRS.from_epsg(4326), always_xy=True)
    lon, lat = to_lonlat.transform(x, y)
    return np.asarray(lon), np.asarray(lat)


def tanioka_satake(ux: np.ndarray, uy: np.ndarray, depth: np.ndarray, grid: Grid
                   ) -> np.ndarray:
    """Vertical displacement (m) of the water column from horizontal sea-floor motion.

    ``ux``, ``uy``: east and north displacement (m); ``depth``: still water depth (m,
    positive down, negative on land), all of ``grid.shape``. Returns ``ux dH/dx + uy
    dH/dy`` with centred differences. Land counts as zero depth: dry ground moved sideways
    displaces no water, while a submerged slope (or cliff face) moved by ux displaces
    ux times the water depth against it. Zero on land. On projected grids the grid axes
    are taken as east and north (meridian convergence, a few degrees, is ignored).
    """
    h = np.maximum(np.asarray(depth, dtype=np.float64), 0.0)
    widths, dy = grid.cell_widths()
    dh_dy, dh_dx = np.gradient(h, edge_order=1)
    uplift = ux * dh_dx / widths[:, None] + uy * dh_dy / dy
    return np.where(h > 0, uplift, 0.0)


def kajiura_filter(uplift: np.ndarray, depth: np.ndarray | float, grid: Grid) -> np.ndarray:
    """Sea-surface displacement (m) over a sea-floor displacement ``uplift`` (m).

    ``depth``: still water depth (m, positive down; land and depths <= 0 leave the
    displacement unfiltered), a number or an array of ``grid.shape``. Each cell gets the
    field filtered by 1/cosh(k h) for its own depth h (interpolated between a ladder of
    depths, module doc). The filter keeps the volume (its value at k = 0 is 1) and
    flattens features shorter than about the depth. The grid's edges are mirrored, so
    a displacement that does not vanish there is not pulled down at the edge.
    Many displacements on one grid: :class:`KajiuraFilter`, which prepares the
    depth's part once.
    """
    uplift = np.asarray(uplift, dtype=np.float64)
    return KajiuraFilter(depth, grid, uplift.shape, keep_transfers=False)(uplift)


class KajiuraFilter:
    """:func:`kajiura_filter` for one depth field on one grid, with what depends on the
    depth only (padding, wavenumbers, each cell's bracketing levels and weights) computed
    once, and with ``keep_transfers`` the depth ladder's transfer functions too (one
    real array of half the padded grid per level, about 20 levels: keep them only to
    filter many displacements, an ensemble's members). Filtering then costs one forward
    FFT and one inverse FFT per level, with results bit-for-bit those of
    :func:`kajiura_filter`."""

    def __init__(self, depth: np.ndarray | float, grid: Grid,
                 shape: tuple[int, int] | None = None, keep_transfers: bool = True) -> None:
        shape = grid.shape if shape is None else shape
        h = np.broadcast_to(np.maximum(np.asarray(depth, dtype=np.float64), 0.0), shape)
        self.shape = shape
        self.deepest = deepest = float(h.max()) if h.size else 0.0
        if deepest <= 0.0:
            return
        widths, dy = grid.cell_widths()
        dx = float(widths[len(widths) // 2])
        ny, nx = shape
        self._padding = (_mirror_padding(ny, KAJIURA_REACH * deepest / dy),
                         _mirror_padding(nx, KAJIURA_REACH * deepest / dx))
        self._padded = tuple(n + sum(pad) for n, pad in zip(shape, self._padding,
                                                             strict=True))
        ky = 2 * np.pi * scipy.fft.fftfreq(self._padded[0], dy)[:, None]
        kx = 2 * np.pi * scipy.fft.rfftfreq(self._padded[1], dx)[None, :]
        self._k = np.hypot(kx, ky)
        # The shallowest non-zero level: below a tenth of a cell the filter differs from
        # the identity by under 5 % at the shortest resolved wavelength, so interpolating
        # from depth 0 is accurate there.
        first = min(deepest, 0.1 * min(dx, dy))
        count = max(1, math.ceil(math.log(deepest / first) / math.log(KAJIURA_DEPTH_RATIO)))
        self._levels = [0.0, *np.geomspace(first, deepest, count + 1)[:-1], deepest]
        # Per pair of levels (h0, h1]: the cells (flat indices, ascending) whose depth it
        # brackets, and their interpolation weights.
        flat = h.ravel()
        self._cells = []
        for h0, h1 in itertools.pairwise(self._levels):
            cells = np.flatnonzero((flat > h0) & (flat <= h1))
            self._cells.append((cells, (flat[cells] - h0) / (h1 - h0)))
        self._keep = keep_transfers
        self._transfers: dict[int, np.ndarray] = {}

    def _transfer(self, level: int) -> np.ndarray:
        """1/cosh(kh) at the ladder's ``level`` (without overflow: 2 e^-kh / (1 + e^-2kh))."""
        transfer = self._transfers.get(level)
        if transfer is None:
            kh = self._k * float(self._levels[level])
            transfer = 2.0 * np.exp(-kh) / (1.0 + np.exp(-2.0 * kh))
            if self._keep:
                self._transfers[level] = transfer
        return transfer

    def __call__(self, uplift: np.ndarray) -> np.ndarray:
        """The sea-surface displacement (m) over ``uplift`` (m, of the grid's shape)."""
        uplift = np.asarray(uplift, dtype=np.float64)
        if uplift.shape != self.shape:
            raise ValueError(f"expected a displacement of shape {self.shape}, got "
                             f"{uplift.shape}")
        if self.deepest <= 0.0 or not np.any(uplift):
            return uplift.copy()
        (south, _), (west, _) = self._padding
        ny, nx = self.shape
        padded = np.pad(uplift, self._padding, mode="symmetric")
        spectrum = scipy.fft.rfft2(padded, workers=-1)
        result = uplift.copy()
        out, lower = result.reshape(-1), uplift.reshape(-1)
        for level, (cells, weight) in enumerate(self._cells, start=1):
            field = scipy.fft.irfft2(spectrum * self._transfer(level), s=self._padded,
                                     workers=-1)
            upper = np.ascontiguousarray(field[south:south + ny, west:west + nx]).reshape(-1)
            if cells.size:
                out[cells] = (1 - weight) * lower[cells] + weight * upper[cells]
            lower = upper
        return result


def _mirror_padding(n: int, reach: float) -> tuple[int, int]:
    """Cells to mirror before and after n cells for a filter reaching ``reach`` cells.

    The FFT treats the padded row as periodic. Mirrored by at least the reach (and
    :data:`MIN_PADDING` cells) on both sides, and up to a fast FFT length after, the seam
    of that periodicity lies beyond the filter's reach. Where the reach exceeds the row,
    the row and its mirror image (2n cells) are exactly periodic: the even extension,
    with no seam at all.
    """
    before = max(math.ceil(reach), MIN_PADDING)
    if before >= n:
        return 0, n
    total = scipy.fft.next_fast_len(n + 2 * before, real=True)
    return before, total - n - before


def sea_surface(uz: np.ndarray, ux: np.ndarray | None, uy: np.ndarray | None,
                depth: np.ndarray, grid: Grid, tanioka_satake: bool = False,
                kajiura: bool | KajiuraFilter = False) -> np.ndarray:
    """Initial sea-surface displacement (m) from the sea floor's (m).

    ``uz``: upward, ``ux``/``uy``: east/north sea-floor displacement (m) on ``grid``'s
    cells; ``depth``: still water depth (m, positive down, negative on land). With
    ``tanioka_satake`` the horizontal motion's contribution on sloping bathymetry is
    added to uz; with ``kajiura`` the sum is low-pass filtered for the water depth (by
    that filter where ``kajiura`` is a :class:`KajiuraFilter` prepared for ``depth`` on
    ``grid``). On land the result is uz (plus nothing): the model leaves land alone.
    """
    eta = np.array(uz, dtype=np.float64)
    if tanioka_satake:
        if ux is None or uy is None:
            raise ValueError("the Tanioka-Satake term needs the horizontal displacement")
        eta += _tanioka_satake(np.asarray(ux, np.float64), np.asarray(uy, np.float64),
                               depth, grid)
    if isinstance(kajiura, KajiuraFilter):
        eta = kajiura(eta)
    elif kajiura:
        eta = kajiura_filter(eta, depth, grid)
    return eta


# sea_surface's keyword shadows the function inside it.
_tanioka_satake = tanioka_satake


def fault_sea_surface(subfaults: list[Subfault] | tuple[Subfault, ...], grid: Grid,
                      depth: np.ndarray, tanioka_satake: bool = True,
                      kajiura: bool | KajiuraFilter = True) -> np.ndarray:
    """Initial sea-surface displacement (m) of ``subfaults`` on the cells of ``grid``
    (georeferenced), for still water depth ``depth`` (m, positive down); ``kajiura``
    as in :func:`sea_surface`."""
    lon, lat = grid_lonlat(grid)
    ux, uy, uz = seafloor_displacement(subfaults, lon, lat)
    return sea_surface(uz, ux, uy, depth, grid, tanioka_satake=tanioka_satake,
                       kajiura=kajiura)
