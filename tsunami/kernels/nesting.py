"""Kernels coupling a nested (child) grid to its parent."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from tsunami.kernels.scalar import typed


@njit(cache=True)
def blend_edges(out, old, new, weight):
    """out = (1 - weight) * old + weight * new: edge fluxes at a child's flux time."""
    w = typed(weight, out[0])
    for k in range(out.size):
        out[k] = old[k] + w * (new[k] - old[k])


@njit(parallel=True, cache=True)
def restrict_surface(child_eta, parent_eta, row0, col0, ratio):
    """Overwrite parent cells covered by the child with the mean of the child's surface.

    With the parent's depth equal to the mean of the child's depth under it, the mean
    surface is the volume-conserving value (dry child cells count with their ground).
    """
    rows = child_eta.shape[0] // ratio
    cols = child_eta.shape[1] // ratio
    scale = 1.0 / (ratio * ratio)
    for jp in prange(rows):
        for ip in range(cols):
            total = 0.0
            for a in range(ratio):
                for b in range(ratio):
                    total += child_eta[jp * ratio + a, ip * ratio + b]
            parent_eta[row0 + jp, col0 + ip] = total * scale


@njit(parallel=True, cache=True)
def restrict_fluxes(child_M, child_N, parent_M, parent_N, row0, col0, ratio):
    """Parent fluxes on the faces inside a child's block become the child's, averaged over
    the ``ratio`` child faces along each parent face (per unit width, so volume-exact).

    The faces on the block's edge are left to the parent: they drive the child.
    """
    rows = child_N.shape[0] // ratio
    cols = child_M.shape[1] // ratio
    scale = 1.0 / ratio
    for jp in prange(rows):
        for ip in range(1, cols):
            total = 0.0
            for a in range(ratio):
                total += child_M[jp * ratio + a, ip * ratio]
            parent_M[row0 + jp, col0 + ip] = total * scale
        if jp > 0:
            for ip in range(cols):
                total = 0.0
                for b in range(ratio):
                    total += child_N[jp * ratio, ip * ratio + b]
                parent_N[row0 + jp, col0 + ip] = total * scale


@njit(parallel=True, cache=True)
def restrict_max(child, parent, row0, col0, ratio):
    """Overwrite parent cells covered by the child with the child's highest value in each
    block (flow maxima: speed, momentum flux)."""
    rows = child.shape[0] // ratio
    cols = child.shape[1] // ratio
    for jp in prange(rows):
        for ip in range(cols):
            top = child[jp * ratio, ip * ratio]
            for a in range(ratio):
                for b in range(ratio):
                    top = max(top, child[jp * ratio + a, ip * ratio + b])
            parent[row0 + jp, col0 + ip] = top


@njit(inline="always", cache=True)
def _along_edge(values, x):
    """Linear interpolation at ``x`` (in parent cells along the edge) of ``values`` given
    at parent cell centres -0.5, 0.5, ..., n + 0.5 (one extra at each end)."""
    m = min(max(int(np.floor(x - 0.5)), -1), values.size - 3)
    left = np.float64(values[m + 1])
    return (np.float64(values[m + 2]) - left) * (x - (m + 0.5)) + left


@njit(cache=True)
def share_edge_flux(profile, eta_out, h_out, still, own, ratio, inward, dry_depth, max_speed,
                    flux, depth):
    """A child's edge fluxes (m2/s, into ``flux``) and the flow depths they were shared
    out with (m, into ``depth``), from the parent's face fluxes along the edge
    (``profile``, one extra at each end), its cells outside the edge (``eta_out``,
    ``h_out``, likewise), the child's edge cells' still depth ``still`` and total depth
    ``own`` (float64). ``inward``: +1 where a positive flux enters the child (west,
    south edges), -1 otherwise.

    Linear interpolation between parent face centres, weighted by the child faces' flow
    depth over their mean along the parent face; then shifted, again in proportion to
    depth, so that together they carry the parent face's flux exactly. The face depth is
    the upwind one, as on every face: where the parent face's flux enters the child, the
    parent's water over the child's ground (the parent cells' depth interpolated along
    the edge, less the height by which the child's ground stands above theirs; none
    where they are dry); where it leaves, the child's edge cells' own depth. Child faces
    without water pass nothing, and a parent face with no wet child face passes nothing
    (the shoreline runs along the edge there). Sharing by depth keeps the velocity of a
    thin edge face at the parent's instead of forcing a parent face's whole flux through
    a film (spurious speeds of hundreds of m/s at nest edges); a share that would still
    exceed ``max_speed`` over its depth is capped there.

    An inflow shared by the child's own edge depth fed back on itself (a deeper edge
    cell drew more of the parent's flux and deepened further): the edge column sloshed
    along the edge, cell against cell, with films between deep cells, which gave metres
    of spurious depth and speeds of 54 m/s at the Okushiri nests' edges. An outflow
    shared by own depth damps itself (a deeper cell drains faster).
    """
    n = profile.size - 2
    parent_depth = np.empty(n + 2)
    parent_h = np.empty(n + 2)
    for m in range(n + 2):
        parent_h[m] = np.float64(h_out[m])
        parent_depth[m] = max(np.float64(eta_out[m]) + parent_h[m], 0.0)
    depths = np.empty(ratio)
    shares = np.empty(ratio)
    values = np.empty(ratio)
    for i in range(n):
        inner = np.float64(profile[i + 1])
        entering = inward * inner > 0
        total = 0.0
        for a in range(ratio):
            k = i * ratio + a
            if entering:
                x = (k + 0.5) / ratio
                rise = max(_along_edge(parent_h, x) - still[k], 0.0)
                d = max(_along_edge(parent_depth, x) - rise, 0.0)
            else:
                d = own[k]
            depths[a] = d if d > dry_depth else 0.0
            total += depths[a]
        carried = 0.0
        for a in range(ratio):
            k = i * ratio + a
            shares[a] = depths[a] / (total if total > 0 else 1.0)
            values[a] = _along_edge(profile, (k + 0.5) / ratio) * shares[a] * ratio
            carried += values[a]
        for a in range(ratio):
            k = i * ratio + a
            limit = max_speed * depths[a]
            v = values[a] + (ratio * inner - carried) * shares[a]
            flux[k] = min(max(v, -limit), limit)
            depth[k] = depths[a]
