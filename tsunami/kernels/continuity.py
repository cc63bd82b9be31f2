"""Continuity step (surface elevation update) with the running maxima fused in.

    d(eta)/dt + dM/dx + dN/dy = 0

On a spherical grid ``inv_dx[j] = 1 / (R cos(lat_j) dlon)`` and the y-divergence weighs
the face fluxes by ``cos(lat_face) / cos(lat_j)`` (``cos_north``/``cos_south``); on a
Cartesian grid those ratios are 1.

The maximum surface elevation and the arrival time (the first time the surface stands
``arrival_threshold`` above its still level: the sea at rest, or the ground on initially
dry land) are updated in the same pass, which already holds the new surface. Speed
maxima need the neighbours' surfaces and have their own kernel
(:mod:`tsunami.kernels.velocity`).
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import (
    EXACT_ORDER,
    aligned_range,
    flush_denormals,
    record_maxima,
    restore_fp_mode,
)


@njit(parallel=True, fastmath=EXACT_ORDER, cache=True)
def update_surface(eta, h, M, N, inv_dx_c, inv_dy, cos_north, cos_south, dt, col_lo, col_hi,
                   time, dry_depth, arrival_threshold, eta_max, arrival_time):
    """Advance ``eta`` one step in place over the active cells (and the rest of their
    blocks, :func:`~tsunami.kernels.scalar.aligned_range`); update its maximum and the
    arrival time."""
    ny, nx = eta.shape
    one = np.uint64(1)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        inv_dx = inv_dx_c[j]
        # inv_dy is applied after the difference: the ratios are 1 on a Cartesian grid, so
        # both products are exact, and an FMA can no longer round N[j+1] inv_dy and not
        # N[j] inv_dy (which broke the mirror symmetry of a symmetric problem).
        north = cos_north[j]
        south = cos_south[j]
        # Unsigned column indices: no wrap-around code, so the loop vectorises.
        lo, hi = aligned_range(col_lo[j], col_hi[j], 0, nx)
        for i in range(np.uint64(lo), np.uint64(hi)):
            divergence = (M[j, i + one] - M[j, i]) * inv_dx + (
                N[j + 1, i] * north - N[j, i] * south) * inv_dy
            ground = -h[j, i]
            # The outflow limiter keeps depth >= 0; the max only absorbs round-off.
            surface = max(eta[j, i] - dt * divergence, ground)
            eta[j, i] = surface
            record_maxima(surface, surface - ground, ground, time, dry_depth,
                          arrival_threshold, eta_max, arrival_time, j, i)
        restore_fp_mode(fp_mode)
