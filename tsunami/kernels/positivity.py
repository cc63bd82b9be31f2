"""Exact positivity (outflow) limiter for the leapfrog fluxes.

An explicit flux step can drain a shallow cell below zero depth. Clipping the depth
afterwards would create water; instead, where a cell's total outflow over the next step
would exceed its water, every outgoing face flux of that cell is scaled by
``available / outflow``. The scaled fluxes are then used by both neighbours, so volume is
conserved to round-off and depth stays non-negative.

Only rows flagged by the momentum and boundary kernels (a face draining more than a
quarter of its upwind cell) are visited: a cell whose faces each drain at most a quarter
of it cannot be over-drained, so elsewhere the limiter is exactly the identity.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import (
    FASTMATH,
    aligned_range,
    block_start,
    block_width,
    span_union,
    typed,
)

U1 = np.uint64(1)


@njit(inline="always", cache=True)
def row_limited(limit_rows, j):
    """Whether cells in row j have a flagged face (x-faces of row j, y-faces j and j+1)."""
    return limit_rows[j] != 0 or limit_rows[j + 1] != 0


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def limit_outflow(eta, h, M, N, inv_dx_c, inv_dy, cos_north, cos_south, dt, col_lo, col_hi,
                  limit_rows, ratio):
    """Scale the outgoing fluxes of over-drained cells in place.

    ``ratio`` is scratch space of the cell shape; it is only read where it was written
    (active cells of limited rows, with the rest of their blocks:
    :func:`~tsunami.kernels.scalar.aligned_range`). The faces on a span's ends carry no
    flux (the spans hold every cell next to water or to a flux), so they are left alone.
    """
    ny, nx = eta.shape
    zero = typed(0.0, dt)
    one = typed(1.0, dt)
    for j in prange(ny):
        if row_limited(limit_rows, j):
            # In blocks of one length, as the momentum kernel's faces: a cell and its
            # east-west mirror then take the same code (on AVX-512 a 9-cell row's ninth
            # cell took the scalar remainder, its mirror the vector epilogue: 1 ulp).
            lo, hi = aligned_range(col_lo[j], col_hi[j], 0, nx)
            width = block_width(nx)
            for k in range((hi - lo + width - 1) // width):
                base = np.uint64(block_start(lo, hi, width, k))
                for offset in range(np.uint64(width)):
                    i = base + offset
                    outflow = dt * (
                        (max(M[j, i + U1], zero) - min(M[j, i], zero)) * inv_dx_c[j]
                        + (max(N[j + 1, i], zero) * cos_north[j]
                           - min(N[j, i], zero) * cos_south[j]) * inv_dy)
                    available = eta[j, i] + h[j, i]
                    ratio[j, i] = available / outflow if outflow > available else one
    for j in prange(ny + 1):
        here = j < ny and row_limited(limit_rows, j) and col_lo[j] < col_hi[j]
        below = j >= 1 and row_limited(limit_rows, j - 1) and col_lo[j - 1] < col_hi[j - 1]
        if here:
            for i in range(col_lo[j], col_hi[j] + 1):
                q = M[j, i]
                if q > 0 and i > col_lo[j]:
                    M[j, i] = q * ratio[j, i - 1]
                elif q < 0 and i < col_hi[j]:
                    M[j, i] = q * ratio[j, i]
        if here or below:
            lo_here, hi_here = (col_lo[j], col_hi[j]) if here else (0, 0)
            lo_below, hi_below = (col_lo[j - 1], col_hi[j - 1]) if below else (0, 0)
            start, stop = span_union(lo_here, hi_here, lo_below, hi_below)
            for i in range(start, stop):
                q = N[j, i]
                if q > 0 and below and lo_below <= i < hi_below:
                    N[j, i] = q * ratio[j - 1, i]
                elif q < 0 and here and lo_here <= i < hi_here:
                    N[j, i] = q * ratio[j, i]
