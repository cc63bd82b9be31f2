"""Kernels coupling a nested (child) grid to its parent."""

from __future__ import annotations

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
