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
    max_of_numbers,
    restore_fp_mode,
    typed,
)
from tsunami.kernels.velocity import U1, cell_velocity, interior_velocity


@njit(inline="always", cache=True)
def cell_rate(depth, u, v, g, film_depth, counted, factor):
    """(|u| + sqrt(g D)) * factor (1/s) of a cell deeper than ``film_depth`` where
    ``counted`` is non-zero; 0 elsewhere, and where it is not a number (a blow-up, which
    the health check reports). Branch-free, so that the row loop vectorises."""
    zero = typed(0.0, g)
    rate = (np.sqrt(u * u + v * v) + np.sqrt(g * max(depth, zero))) * factor
    return rate if (depth > film_depth) & (counted != 0) & (rate == rate) else zero


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def wave_rate_rows(eta, h, M, N, g, dry_depth, edge_west, edge_east, edge_south, edge_north,
                   film_depth, counted, inv_dx_c, inv_dy, col_lo, col_hi, rates):
    """``rates[j]``: max over row j's active cells deeper than ``film_depth`` where
    ``counted`` is non-zero of (|u| + sqrt(g D)) sqrt(1/dx^2 + 1/dy^2) (1/s); 0 where
    none is.

    The grid's edge cells take their velocities through :func:`cell_velocity`, the rest
    through its branch-free form, as in
    :func:`~tsunami.kernels.velocity.update_flow_maxima`: a loop with a branch per cell
    stayed scalar and cost half a leapfrog step on the Okushiri demo's 10 m grid (1.3 ms
    against 2.2 ms), once every four steps."""
    ny, nx = eta.shape
    zero = typed(0.0, g)
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        factor = np.sqrt(inv_dx_c[j] * inv_dx_c[j] + inv_dy * inv_dy)
        rate = zero
        lo, hi = np.uint64(col_lo[j]), np.uint64(col_hi[j])
        if j == 0 or j == ny - 1:
            edges = ((lo, hi), (hi, hi))
        else:
            first, last = aligned_range(col_lo[j], col_hi[j], 1, nx - 1)
            for i in range(np.uint64(first), np.uint64(last)):
                u, v = interior_velocity(eta, h, M, N, dry_depth, j, i)
                rate = max_of_numbers(rate, cell_rate(eta[j, i] + h[j, i], u, v, g,
                                                      film_depth, counted[j, i], factor))
            # The west and east edge cells, if active.
            edges = ((lo, min(U1, hi)), (max(np.uint64(nx - 1), lo, U1), hi))
        for start, stop in edges:
            for i in range(start, stop):
                u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east,
                                     edge_south, edge_north, j, i)
                rate = max_of_numbers(rate, cell_rate(eta[j, i] + h[j, i], u, v, g,
                                                      film_depth, counted[j, i], factor))
        rates[j] = rate
        restore_fp_mode(fp_mode)
