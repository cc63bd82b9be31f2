"""Fluxes on the four outer edges of a grid.

Each side has a mode:

* ``WALL``: no flux (reflective).
* ``OPEN``: radiating; ``INCIDENT`` with a zero incident wave.
* ``INCIDENT``: a wave of surface elevation ``eta_in`` enters through the side while
  waves leaving the domain radiate out (Flather-type characteristic condition):
  inward flux = eta_in sqrt(g (h + eta_in)) + sqrt(g h) (eta_in - eta_cell).
* ``PRESCRIBED``: fluxes given per boundary face (a nested grid driven by its parent).

Outflow faces that could drain more than a quarter of their cell in one step are flagged
in ``limit_rows`` like the interior faces.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from tsunami.kernels.scalar import typed

WALL = 0
OPEN = 1
INCIDENT = 2
PRESCRIBED = 3

WEST, EAST, SOUTH, NORTH = 0, 1, 2, 3


@njit(inline="always", cache=True)
def characteristic_flux(eta_cell, h_cell, eta_in, g, dry_depth):
    """Inward-normal flux (m^2/s) at an open or wave-forced edge."""
    zero = typed(0.0, eta_cell)
    if h_cell <= dry_depth or eta_cell + h_cell <= dry_depth:
        return zero
    celerity = np.sqrt(g * h_cell)
    incident = eta_in * np.sqrt(g * max(h_cell + eta_in, zero))
    return incident + celerity * (eta_in - eta_cell)


@njit(inline="always", cache=True)
def edge_flux(mode, inward_sign, eta_cell, h_cell, eta_in, prescribed, g, dry_depth):
    if mode == WALL:
        return typed(0.0, eta_cell)
    if mode == PRESCRIBED:
        return prescribed
    forcing = eta_in if mode == INCIDENT else typed(0.0, eta_cell)
    return inward_sign * characteristic_flux(eta_cell, h_cell, forcing, g, dry_depth)


@njit(cache=True)
def apply_boundaries(eta, h, M, N, modes, eta_in, west, east, south, north, g, dry_depth, dt,
                     inv_dx_c, inv_dy, cos_north, cos_south, limit_rows):
    """Set the edge fluxes of M (columns 0 and nx) and N (rows 0 and ny).

    ``modes`` and ``eta_in`` hold one entry per side (WEST, EAST, SOUTH, NORTH);
    ``west``/``east`` (length ny) and ``south``/``north`` (length nx) are the prescribed
    fluxes, read only where that side is ``PRESCRIBED``.
    """
    ny, nx = eta.shape
    one = typed(1.0, dt)
    quarter = typed(0.25, dt)
    for j in range(ny):
        q = edge_flux(modes[WEST], one, eta[j, 0], h[j, 0], eta_in[WEST], west[j], g,
                      dry_depth)
        M[j, 0] = q
        if q < 0 and -q * dt * inv_dx_c[j] > quarter * (eta[j, 0] + h[j, 0]):
            limit_rows[j] = 1
        q = edge_flux(modes[EAST], -one, eta[j, nx - 1], h[j, nx - 1], eta_in[EAST], east[j],
                      g, dry_depth)
        M[j, nx] = q
        if q > 0 and q * dt * inv_dx_c[j] > quarter * (eta[j, nx - 1] + h[j, nx - 1]):
            limit_rows[j] = 1
    for i in range(nx):
        q = edge_flux(modes[SOUTH], one, eta[0, i], h[0, i], eta_in[SOUTH], south[i], g,
                      dry_depth)
        N[0, i] = q
        if q < 0 and -q * dt * inv_dy * cos_south[0] > quarter * (eta[0, i] + h[0, i]):
            limit_rows[0] = 1
        q = edge_flux(modes[NORTH], -one, eta[ny - 1, i], h[ny - 1, i], eta_in[NORTH],
                      north[i], g, dry_depth)
        N[ny, i] = q
        if q > 0 and q * dt * inv_dy * cos_north[ny - 1] > quarter * (
                eta[ny - 1, i] + h[ny - 1, i]):
            limit_rows[ny] = 1
