"""Momentum step of the staggered leapfrog scheme (TUNAMI-N2 / COMCOT family).

Layout (row index j runs south to north, column index i west to east):

* ``eta[j, i]``  surface elevation (m) at cell centres, shape (ny, nx);
* ``h[j, i]``    still-water depth (m, positive down, negative on land);
* ``M[j, i]``    x (or longitude) volume flux per unit width (m^2/s) on the face between
  cells (j, i-1) and (j, i), shape (ny, nx+1);
* ``N[j, i]``    y (or latitude) flux on the face between cells (j-1, i) and (j, i),
  shape (ny+1, nx).

The equations (Cartesian form; spherical grids pass per-row metric factors):

    dM/dt + d(M^2/D)/dx + d(MN/D)/dy + g D d(eta)/dx = f N - g n^2 M |Q| / D^(7/3)
    dN/dt + d(MN/D)/dx + d(N^2/D)/dy + g D d(eta)/dy = -f M - g n^2 N |Q| / D^(7/3)

with first-order upwind advection, dropped where the still depth exceeds
``linear_depth`` (the linear long-wave equations offshore). Boundary faces are set by
:mod:`tsunami.kernels.boundary`.

Performance notes. The face update is written without branches (selects only) and the
interior faces are visited with unsigned indices: Numba then emits no negative-index
wrap-around, and LLVM vectorises the loop (AVX2/AVX-512) with contiguous loads, about
7x faster than the branchy scalar form. A row's faces are visited in blocks of one length
(the last one overlapping the block before), so none falls into the loop's scalar
remainder, which rounds differently: a symmetric problem stays bit-for-bit symmetric.
Faces next to the grid edge, which lack an upwind neighbour, go through the same
function with the missing neighbours flagged.

Every face also checks whether its outflow over one step could exceed a quarter of the
upwind cell's water; rows where that may happen are flagged in ``limit_rows`` for the
exact positivity limiter (:mod:`tsunami.kernels.positivity`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import (
    FASTMATH,
    aligned_range,
    block_start,
    block_width,
    face_depth,
    flush_denormals,
    flux_update,
    mean_of_pairs,
    restore_fp_mode,
    span_union,
    typed,
    upwind_difference,
)

U1 = np.uint64(1)
U2 = np.uint64(2)


@njit(inline="always", cache=True)
def advected(flux, carrier, depth, dry_depth, fallback, exists):
    """flux * carrier / depth at a neighbouring face, or ``fallback`` (zero gradient)
    where that face is dry or outside the grid."""
    value = flux * carrier / max(depth, dry_depth)
    return value if (exists and depth > dry_depth) else fallback


@njit(inline="always", cache=True)
def x_face_flux(eta, h, n2, M, N, j, i, west_ok, east_ok, js, jn, south_ok, north_ok, inv_dx,
                inv_dy, f, dt, g, dry_depth, linear_depth, max_speed):
    """New M on the x-face (j, i), between cells (j, i-1) and (j, i).

    ``west_ok``/``east_ok``: the x-faces i-1 and i+1 are interior faces;
    ``js``/``jn``: rows of the x-faces below and above (j itself where missing) with
    ``south_ok``/``north_ok`` saying whether they exist.
    """
    iw = i - U1
    iww = iw - U1 if west_ok else iw
    ie = i + U1 if east_ok else i
    zero = typed(0.0, dt)
    depth = face_depth(eta[j, iw], eta[j, i], h[j, iw], h[j, i])
    wet_depth = max(depth, dry_depth)
    m = M[j, i]
    n = mean_of_pairs(N[j, iw], N[j, i], N[j + 1, iw], N[j + 1, i])
    pressure = g * depth * (eta[j, i] - eta[j, iw]) * inv_dx

    here = m * m / wet_depth
    behind = advected(M[j, iw], M[j, iw],
                      face_depth(eta[j, iww], eta[j, iw], h[j, iww], h[j, iw]),
                      dry_depth, here, west_ok)
    ahead = advected(M[j, ie], M[j, ie], face_depth(eta[j, i], eta[j, ie], h[j, i], h[j, ie]),
                     dry_depth, here, east_ok)
    advection = upwind_difference(m, here, behind, ahead) * inv_dx
    here = m * n / wet_depth
    n_south = mean_of_pairs(N[js, iw], N[js, i], N[js + 1, iw], N[js + 1, i])
    behind = advected(M[js, i], n_south, face_depth(eta[js, iw], eta[js, i], h[js, iw], h[js, i]),
                      dry_depth, here, south_ok)
    n_north = mean_of_pairs(N[jn, iw], N[jn, i], N[jn + 1, iw], N[jn + 1, i])
    ahead = advected(M[jn, i], n_north, face_depth(eta[jn, iw], eta[jn, i], h[jn, iw], h[jn, i]),
                     dry_depth, here, north_ok)
    advection += upwind_difference(n, here, behind, ahead) * inv_dy
    nonlinear = min(h[j, iw], h[j, i]) < linear_depth
    advection = advection if nonlinear else zero

    n2_face = typed(0.5, dt) * (n2[j, iw] + n2[j, i])
    q = flux_update(m, wet_depth, pressure, advection, f * n, n, n2_face, dt, g, max_speed)
    return q if depth > dry_depth else zero


@njit(inline="always", cache=True)
def y_face_flux(eta, h, n2, M, N, j, i, west_ok, east_ok, js, jn, south_ok, north_ok, inv_dx,
                inv_dy, f, dt, g, dry_depth, linear_depth, max_speed):
    """New N on the y-face (j, i), between cells (j-1, i) and (j, i).

    ``west_ok``/``east_ok``: the y-faces (j, i-1) and (j, i+1) exist;
    ``js``/``jn``: rows of the y-faces below and above (j itself where missing).
    """
    iw = i - U1 if west_ok else i
    ie = i + U1 if east_ok else i
    jb = j - 1
    zero = typed(0.0, dt)
    depth = face_depth(eta[jb, i], eta[j, i], h[jb, i], h[j, i])
    wet_depth = max(depth, dry_depth)
    n = N[j, i]
    m = mean_of_pairs(M[jb, i], M[jb, i + U1], M[j, i], M[j, i + U1])
    pressure = g * depth * (eta[j, i] - eta[jb, i]) * inv_dy

    here = n * n / wet_depth
    behind = advected(N[js, i], N[js, i],
                      face_depth(eta[js - 1, i], eta[js, i], h[js - 1, i], h[js, i]),
                      dry_depth, here, south_ok)
    ahead = advected(N[jn, i], N[jn, i],
                     face_depth(eta[jn - 1, i], eta[jn, i], h[jn - 1, i], h[jn, i]),
                     dry_depth, here, north_ok)
    advection = upwind_difference(n, here, behind, ahead) * inv_dy
    here = n * m / wet_depth
    m_west = mean_of_pairs(M[jb, iw], M[jb, iw + U1], M[j, iw], M[j, iw + U1])
    behind = advected(N[j, iw], m_west, face_depth(eta[jb, iw], eta[j, iw], h[jb, iw], h[j, iw]),
                      dry_depth, here, west_ok)
    m_east = mean_of_pairs(M[jb, ie], M[jb, ie + U1], M[j, ie], M[j, ie + U1])
    ahead = advected(N[j, ie], m_east, face_depth(eta[jb, ie], eta[j, ie], h[jb, ie], h[j, ie]),
                     dry_depth, here, east_ok)
    advection += upwind_difference(m, here, behind, ahead) * inv_dx
    nonlinear = min(h[jb, i], h[j, i]) < linear_depth
    advection = advection if nonlinear else zero

    n2_face = typed(0.5, dt) * (n2[jb, i] + n2[j, i])
    q = flux_update(n, wet_depth, pressure, advection, -f * m, m, n2_face, dt, g, max_speed)
    return q if depth > dry_depth else zero


@njit(inline="always", cache=True)
def drains_quarter(q, outflow_per_flux, available_if_positive, available_if_negative, dt):
    """Whether flux q empties more than a quarter of its upwind cell in one step."""
    available = available_if_positive if q > 0 else available_if_negative
    return abs(q) * dt * outflow_per_flux > typed(0.25, dt) * available


@njit(inline="always", cache=True)
def x_faces_of_row(eta, h, n2, M, N, M_new, j, start, stop, inv_dx, inv_dy, f, dt, g, dry_depth,
                   linear_depth, max_speed):
    """Update interior x-faces start..stop-1 of row j; return whether any needs limiting.

    The faces 2..nx-2 (with upwind neighbours on both sides) go through the vectorised
    loop together with the rest of their blocks (:func:`aligned_range`), in blocks of one
    length (:func:`block_start`: no face takes a scalar remainder, so a face and its
    east-west mirror are computed alike); faces 1 and nx-1 through the same function with
    the missing neighbours flagged."""
    ny, nx = eta.shape
    south_ok = j >= 1
    north_ok = j <= ny - 2
    js = j - 1 if south_ok else j
    jn = j + 1 if north_ok else j
    flagged = False
    fast_start, fast_stop = aligned_range(start, stop, 2, nx - 1)
    width = block_width(nx - 3)
    for k in range((fast_stop - fast_start + width - 1) // width):
        base = np.uint64(block_start(fast_start, fast_stop, width, k))
        for offset in range(np.uint64(width)):
            i = base + offset
            q = x_face_flux(eta, h, n2, M, N, j, i, True, True, js, jn, south_ok, north_ok,
                            inv_dx, inv_dy, f, dt, g, dry_depth, linear_depth, max_speed)
            M_new[j, i] = q
            flagged |= drains_quarter(q, inv_dx, eta[j, i - U1] + h[j, i - U1],
                                      eta[j, i] + h[j, i], dt)
    for edge in (start, stop - 1):
        if start <= edge < stop and (edge < 2 or edge >= nx - 1):
            i = np.uint64(edge)
            q = x_face_flux(eta, h, n2, M, N, j, i, edge >= 2, edge <= nx - 2, js, jn, south_ok,
                            north_ok, inv_dx, inv_dy, f, dt, g, dry_depth, linear_depth,
                            max_speed)
            M_new[j, i] = q
            flagged |= drains_quarter(q, inv_dx, eta[j, i - U1] + h[j, i - U1],
                                      eta[j, i] + h[j, i], dt)
    return flagged


@njit(inline="always", cache=True)
def y_faces_of_row(eta, h, n2, M, N, N_new, j, start, stop, inv_dx, inv_dy, f, cos_north_below,
                   cos_south_above, dt, g, dry_depth, linear_depth, max_speed):
    """Update y-faces start..stop-1 of face row j (1 <= j <= ny-1); return the limit flag.

    Columns 1..nx-2 go through the vectorised loop together with the rest of their blocks
    (:func:`aligned_range`), in blocks of one length as the x-faces, the edge columns
    through the flagged path."""
    ny, nx = eta.shape
    south_ok = j >= 2
    north_ok = j <= ny - 2
    js = j - 1 if south_ok else j
    jn = j + 1 if north_ok else j
    flagged = False
    fast_start, fast_stop = aligned_range(start, stop, 1, nx - 1)
    width = block_width(nx - 2)
    for k in range((fast_stop - fast_start + width - 1) // width):
        base = np.uint64(block_start(fast_start, fast_stop, width, k))
        for offset in range(np.uint64(width)):
            i = base + offset
            q = y_face_flux(eta, h, n2, M, N, j, i, True, True, js, jn, south_ok, north_ok,
                            inv_dx, inv_dy, f, dt, g, dry_depth, linear_depth, max_speed)
            N_new[j, i] = q
            weight = cos_north_below if q > 0 else cos_south_above
            flagged |= drains_quarter(q, inv_dy * weight, eta[j - 1, i] + h[j - 1, i],
                                      eta[j, i] + h[j, i], dt)
    for edge in (start, stop - 1):
        if start <= edge < stop and (edge < 1 or edge >= nx - 1):
            i = np.uint64(edge)
            q = y_face_flux(eta, h, n2, M, N, j, i, edge >= 1, edge <= nx - 2, js, jn, south_ok,
                            north_ok, inv_dx, inv_dy, f, dt, g, dry_depth, linear_depth,
                            max_speed)
            N_new[j, i] = q
            weight = cos_north_below if q > 0 else cos_south_above
            flagged |= drains_quarter(q, inv_dy * weight, eta[j - 1, i] + h[j - 1, i],
                                      eta[j, i] + h[j, i], dt)
    return flagged


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def update_fluxes(eta, h, n2, M, N, M_new, N_new, inv_dx_c, inv_dx_v, inv_dy, coriolis_c,
                  coriolis_v, cos_north, cos_south, dt, g, dry_depth, linear_depth, max_speed,
                  col_lo, col_hi, limit_rows):
    """Compute M_new, N_new on all interior faces of the active cells.

    ``inv_dx_c``/``coriolis_c`` are per cell row (x-faces), ``inv_dx_v``/``coriolis_v``
    per y-face row; ``cos_north``/``cos_south`` are the continuity metric ratios used to
    weigh a y-face's outflow from a cell (all 1 on a Cartesian grid). Cells outside
    [col_lo[j], col_hi[j]) are inactive. ``limit_rows[j]`` is set to 1 when a face in
    flux row j could drain more than a quarter of its upwind cell in one step.
    """
    ny, nx = eta.shape
    for row in prange(ny + 1):
        j = np.int64(row)  # the parfor index may be unsigned; row arithmetic needs signed
        fp_mode = flush_denormals()
        flagged = False
        if j < ny and col_lo[j] < col_hi[j]:
            flagged |= x_faces_of_row(eta, h, n2, M, N, M_new, j, max(col_lo[j], 1),
                                      min(col_hi[j], nx - 1) + 1, inv_dx_c[j], inv_dy,
                                      coriolis_c[j], dt, g, dry_depth, linear_depth, max_speed)
        if 1 <= j < ny:
            start, stop = span_union(col_lo[j - 1], col_hi[j - 1], col_lo[j], col_hi[j])
            if start < stop:
                flagged |= y_faces_of_row(eta, h, n2, M, N, N_new, j, start, stop, inv_dx_v[j],
                                          inv_dy, coriolis_v[j], cos_north[j - 1], cos_south[j],
                                          dt, g, dry_depth, linear_depth, max_speed)
        limit_rows[j] = 1 if flagged else 0
        restore_fp_mode(fp_mode)
