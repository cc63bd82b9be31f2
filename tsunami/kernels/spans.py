"""Active column spans: the part of each row that a step visits.

Every kernel of both schemes visits, in row j, the cells ``span_lo[j] <= i < span_hi[j]``
(and the faces around them). The spans are grown before each step to hold every cell
near an *active* one, and never narrowed, so the dry land the flow has not come near
(40 % of an inundation grid) is skipped.

A cell is active where it holds water (its depth ``eta + h`` differs from zero by more
than ``wet_depth``), where one of its four faces carries a flux, or where a flux is
prescribed on the grid-edge face beside it (a nested grid's inflow from its parent,
which floods a dry edge cell along a coast that crosses the nest edge). Elsewhere
nothing can change in a step: no face of the cell has flux, so its surface, maxima and
arrival time stay as they are, and its faces get flux only next to water.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(inline="always", cache=True)
def _active(eta, h, M, N, wet_depth, j, i):
    """Whether cell (j, i) holds water or has a face with flux."""
    return (abs(eta[j, i] + h[j, i]) > wet_depth or M[j, i] != 0 or M[j, i + 1] != 0
            or N[j, i] != 0 or N[j + 1, i] != 0)


@njit(parallel=True, cache=True)
def grow_spans(eta, h, M, N, wet_depth, edge_west, edge_east, edge_south, edge_north, margin,
               changed, active_lo, active_hi, span_lo, span_hi):
    """Widen each row's span [span_lo, span_hi) to hold every cell within ``margin`` rows
    and columns of an active cell; never narrows them.

    ``M``/``N``: the face fluxes (m^2/s) on x- and y-faces; ``edge_*``: the fluxes
    prescribed on the grid's edge faces (non-zero only on a nested grid's edges);
    ``active_lo``/``active_hi``: scratch, per row, receive the active cells' range.
    Active cells are looked for inside the spans, which is enough after steps (a step
    changes only cells inside them, and the margin holds the cells it can make active),
    and in the box ``changed`` (first row, last row + 1, first column, last column + 1)
    where the state was changed from outside since (an initial state: the whole grid;
    a nest's feedback: the block under a child).

    Water and flux advance at most one cell per step in the leapfrog and two in fv2 (one
    per stage), so a margin of 1 (leapfrog) or 3 (fv2) before every step keeps every cell
    that can change, and every face that can get flux, inside the spans; the faces on a
    span's ends then carry none.
    """
    ny, nx = eta.shape
    row0, row1, col0, col1 = changed
    for row in prange(ny):
        j = np.int64(row)
        start, stop = span_lo[j], span_hi[j]
        if row0 <= j < row1 and col0 < col1:
            start, stop = (col0, col1) if start >= stop else (min(start, col0),
                                                              max(stop, col1))
        lo = nx
        for i in range(start, stop):
            if _active(eta, h, M, N, wet_depth, j, i):
                lo = i
                break
        hi = 0
        for k in range(stop - max(lo, start)):
            i = stop - 1 - k
            if _active(eta, h, M, N, wet_depth, j, i):
                hi = i + 1
                break
        if edge_west[j] != 0:
            lo = 0
            hi = max(hi, 1)
        if edge_east[j] != 0:
            lo = min(lo, nx - 1)
            hi = nx
        for edge, flux in ((0, edge_south), (ny - 1, edge_north)):
            if j == edge:
                for i in range(nx):
                    if flux[i] != 0:
                        lo = min(lo, i)
                        hi = max(hi, i + 1)
        active_lo[j] = lo
        active_hi[j] = hi
    for j in range(ny):
        lo = nx
        hi = 0
        for k in range(max(j - margin, 0), min(j + margin + 1, ny)):
            lo = min(lo, active_lo[k])
            hi = max(hi, active_hi[k])
        if lo < hi:
            span_lo[j] = min(span_lo[j], max(lo - margin, 0))
            span_hi[j] = max(span_hi[j], min(hi + margin, nx))
