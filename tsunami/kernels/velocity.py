"""Flow velocities from face fluxes, and the running maxima of speed and momentum flux.

The velocity of a cell in x is its discharge over its flow area: the sum of the fluxes
on its west and east faces over the sum of those faces' flow depths (likewise in y).
Dividing by the cell's own depth, or averaging flux/depth face by face, blows up at a
moving shoreline, where a face's flux was set while it was deeper than it is now, and
would put spurious peaks into the maximum-speed map; a nearly dry face has next to no
weight in the ratio of sums.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import (
    FASTMATH,
    aligned_range,
    face_depth,
    flush_denormals,
    record_flow_maxima,
    restore_fp_mode,
    typed,
)

U1 = np.uint64(1)


@njit(inline="always", cache=True)
def discharge_velocity(flux_a, flux_b, depth_a, depth_b, dry_depth):
    """(flux_a + flux_b) / (depth_a + depth_b), zero where both faces are dry."""
    zero = typed(0.0, flux_a)
    area = max(depth_a, zero) + max(depth_b, zero)
    return (flux_a + flux_b) / max(area, dry_depth) if area > dry_depth else zero


@njit(inline="always", cache=True)
def cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east, edge_south, edge_north, j, i):
    """(u, v) in m/s at cell (j, i); i is unsigned.

    A face on the grid's edge has no neighbour to take a face depth from: its flow depth
    is the cell's own, or the ``edge_*`` depth the flux there was set with if that is
    larger (a nested grid's edge, whose flux its parent shares out in proportion to that
    depth; 0 on other grids). The parent's flux is fixed for all of a child's sub-steps
    while the child's edge cell may drain to a film in between, and that flux over the
    film's depth gave spurious speeds of up to 54 m/s at the Okushiri nests' edges.
    """
    ny, nx = eta.shape
    here = eta[j, i] + h[j, i]
    west = face_depth(eta[j, i - U1], eta[j, i], h[j, i - U1], h[j, i]) if i > 0 else max(
        here, edge_west[j])
    east = face_depth(eta[j, i], eta[j, i + U1], h[j, i], h[j, i + U1]) if i < nx - 1 else max(
        here, edge_east[j])
    south = face_depth(eta[j - 1, i], eta[j, i], h[j - 1, i], h[j, i]) if j > 0 else max(
        here, edge_south[i])
    north = face_depth(eta[j, i], eta[j + 1, i], h[j, i], h[j + 1, i]) if j < ny - 1 else max(
        here, edge_north[i])
    u = discharge_velocity(M[j, i], M[j, i + U1], west, east, dry_depth)
    v = discharge_velocity(N[j, i], N[j + 1, i], south, north, dry_depth)
    return u, v


@njit(inline="always", cache=True)
def interior_velocity(eta, h, M, N, dry_depth, j, i):
    """(u, v) in m/s at a cell with neighbours on all four sides (i unsigned): the faces'
    flow depths from :func:`face_depth` as in :func:`cell_velocity`, without its edge
    branches, so that the row loop vectorises."""
    here_eta, here_h = eta[j, i], h[j, i]
    west = face_depth(eta[j, i - U1], here_eta, h[j, i - U1], here_h)
    east = face_depth(here_eta, eta[j, i + U1], here_h, h[j, i + U1])
    south = face_depth(eta[j - 1, i], here_eta, h[j - 1, i], here_h)
    north = face_depth(here_eta, eta[j + 1, i], here_h, h[j + 1, i])
    u = discharge_velocity(M[j, i], M[j, i + U1], west, east, dry_depth)
    v = discharge_velocity(N[j, i], N[j + 1, i], south, north, dry_depth)
    return u, v


@njit(parallel=True, fastmath=FASTMATH, cache=True)
def update_flow_maxima(eta, h, M, N, dry_depth, edge_west, edge_east, edge_south, edge_north,
                       speed_depth, col_lo, col_hi, speed_max, momentum_flux_max):
    """Running maximum speed (m/s) and momentum flux D u^2 (m^3/s^2) where D > speed_depth
    (``edge_*``: see :func:`cell_velocity`)."""
    ny, nx = eta.shape
    for row in prange(ny):
        j = np.int64(row)
        fp_mode = flush_denormals()
        # The grid's edge cells through cell_velocity, the rest branch-free; the active
        # cells with the rest of their blocks (aligned_range: the same path, the same bits,
        # as in a loop over the whole row).
        if j == 0 or j == ny - 1:
            lo, hi = aligned_range(col_lo[j], col_hi[j], 0, nx)
            for i in range(np.uint64(lo), np.uint64(hi)):
                u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east,
                                     edge_south, edge_north, j, i)
                record_flow_maxima(eta[j, i] + h[j, i], u, v, speed_depth, speed_max,
                                   momentum_flux_max, j, i)
            restore_fp_mode(fp_mode)
            continue
        first, last = aligned_range(col_lo[j], col_hi[j], 1, nx - 1)
        for i in range(np.uint64(first), np.uint64(last)):
            u, v = interior_velocity(eta, h, M, N, dry_depth, j, i)
            record_flow_maxima(eta[j, i] + h[j, i], u, v, speed_depth, speed_max,
                               momentum_flux_max, j, i)
        lo, hi = np.uint64(col_lo[j]), np.uint64(col_hi[j])
        for i in range(lo, min(U1, hi)):  # the west edge cell, if active
            u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east,
                                 edge_south, edge_north, j, i)
            record_flow_maxima(eta[j, i] + h[j, i], u, v, speed_depth, speed_max,
                               momentum_flux_max, j, i)
        for i in range(max(np.uint64(nx - 1), lo, U1), hi):  # the east edge cell, if active
            u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east,
                                 edge_south, edge_north, j, i)
            record_flow_maxima(eta[j, i] + h[j, i], u, v, speed_depth, speed_max,
                               momentum_flux_max, j, i)
        restore_fp_mode(fp_mode)


@njit(parallel=True, cache=True)
def velocity_field(eta, h, M, N, dry_depth, edge_west, edge_east, edge_south, edge_north,
                   u_out, v_out):
    """Cell velocities of the whole grid into ``u_out``/``v_out``."""
    ny, nx = eta.shape
    for row in prange(ny):
        j = np.int64(row)
        for i in range(np.uint64(0), np.uint64(nx)):
            u, v = cell_velocity(eta, h, M, N, dry_depth, edge_west, edge_east, edge_south,
                                 edge_north, j, i)
            u_out[j, i] = u
            v_out[j, i] = v
