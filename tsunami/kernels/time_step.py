"""The leapfrog's CFL rate from the actual wave and flow speeds.

One pass over the active cells gives, per row, the largest
(|u| + sqrt(g D)) sqrt(1/dx^2 + 1/dy^2) (1/s) over cells deeper than ``film_depth``: the
leapfrog is stable while dt times it stays below one (the linear part needs
c dt sqrt(1/dx^2 + 1/dy^2) <= 1, and |u|/dx + |v|/dy <= |(u, v)| sqrt(1/dx^2 + 1/dy^2)
bounds the upwind advection). Films thinner than ``film_depth`` are left out: their flux
is capped at ``max_speed`` times their depth and the positivity limiter keeps them from
over-draining, so their speed cannot destabilise the scheme (the same films are left out
of the speed maps). Cells where ``counted`` is 0 are left out too: a nest sets it under a
child, whose feedback replaces the parent's state there every parent step.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import (
    FASTMATH,
    aligned_range,
    flush_denormals,
    restore_fp_mode,
    typed,
)
from tsunami.kernels.velocity import cell_velocity


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def wave_rate_rows(eta, h, M, N, g, dry_depth, edge_west, edge_east, edge_south, edge_north,
                   film_depth, counted, inv_dx_c, inv_dy, col_lo, col_hi, rates):
    """``rates[j]``: max over row j's active cells deeper than ``film_depth`` where
    ``counted`` is non-zero of (|u| + sqrt(g D)) sqrt(1/dx^2 + 1/dy^2) (1/s); 0 where
    none is."""
    ny, nx = eta.shape
    zero = typed(0.0, g)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        factor = np.sqrt(inv_dx_c[j] * inv_dx_c[j] + inv_dy * inv_dy)
        rate = zero
        lo, hi = aligned_range(col_lo[j], col_hi[j], 0, nx)
        for i in range(np.uint64(lo), np.uint64(hi)):
            depth = eta[j, i] + h[j, i]
            if depth > film_depth and counted[j, i]:
                u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east,
                                     edge_south, edge_north, j, i)
                rate = max(rate, (np.sqrt(u * u + v * v) + np.sqrt(g * depth)) * factor)
        rates[j] = rate
        restore_fp_mode(fp_mode)
