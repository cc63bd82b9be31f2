"""Two-way nested grids with sub-cycling in time.

A :class:`NestedModel` is a tree of :class:`~tsunami.model.ShallowWaterModel` s. Each child
covers a block of its parent's cells with an odd refinement ratio (3 by default) and is
coupled both ways (as in TUNAMI-N2 and COMCOT):

* parent -> child: the parent's face fluxes along the child's edges, interpolated
  linearly in space and shared among the child's edge faces in proportion to their
  water depth (so each parent face's flux is kept exactly and a thin edge cell gets a
  thin share), and linearly in time between the parent's flux levels, drive the child's
  boundary. A finite-volume (``fv2``) child also takes the parent's surface just outside
  its edges for the ghost states of its Riemann problems;
* child -> parent: after the child has caught up with the parent, its surface averaged
  over each parent cell replaces the parent's in every cell the child covers, and its
  fluxes averaged along each parent face replace the parent's on the faces inside the
  child's block (an ``fv2`` child's fluxes are the volumes it moved over its last step;
  an ``fv2`` parent also takes the child's discharges averaged over each cell).
  Both schemes conserve volume through the coupling: the child's boundary fluxes are
  the parent's, and the feedback averages conserved quantities. (Keeping a ring of
  parent-only cells along the child's edge let that ring and the child's edge cells drift apart,
  and the parent flux computed from the ring then drove the child's edge unstably: the
  Okushiri nest blew up at the OK03 edge in 620 m of water. Without the flux feedback the
  parent's own fluxes under a child no longer match the surface fed back to it, and on
  steep, partly wet ground they reached 50 m/s.)

Before stepping, the bathymetries are made consistent: near its edges the child's depth
is blended toward the parent's, and the parent's depth under the child becomes the mean
of the child's, so the feedback conserves volume and mismatching DEM sources make no
spurious waves at the nest edge. Each child takes ``n`` sub-steps per parent step, the
fewest its own CFL condition allows, re-chosen every parent step from the child's last
measured wave and flow speeds (:meth:`ShallowWaterModel.next_time_step`; an fv2 child's
are measured every parent step, a leapfrog child's every 4 of its steps). A parent's
cells under a child are left out of its own time step.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from tsunami.boundaries import Boundaries, Nested
from tsunami.kernels.nesting import (
    blend_edges,
    restrict_fluxes,
    restrict_max,
    restrict_surface,
    share_edge_flux,
)
from tsunami.model import SPEED_CHECK_STEPS, ShallowWaterModel

EDGE_BLEND_PARENT_CELLS = 2  # child depth blended to the parent's over this many parent cells


@dataclass
class Coupling:
    """A parent-child pair: alignment, sub-steps and edge-flux buffers."""

    parent: ShallowWaterModel
    child: ShallowWaterModel
    ratio: int
    row0: int  # parent row of the child's first row of cells
    col0: int
    substeps: int = 1
    stable: float | None = None  # the child's stable time step (s)
    measured_at: int = 0  # the child's iteration when ``stable`` was last measured
    old: dict[str, np.ndarray] = field(default_factory=dict)
    new: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.child.grid.ny // self.ratio

    @property
    def cols(self) -> int:
        return self.child.grid.nx // self.ratio

    def feed_flow_maximum(self, name: str, parent_values: np.ndarray) -> None:
        """Overwrite the parent's flow maximum ``name`` (``parent_values``: its
        ``speed_max`` or ``momentum_flux_max``) under the child with the child's highest
        in each block (the child's own read first, so a grandchild's reach it).

        The parent's own maxima there come from the child's averaged state, whose face
        depths over partly dry blocks are no flow depths (192 m/s under Aonae_10m), so
        they never stay: :class:`NestedModel` has the parent call this whenever its
        maxima are read. The parent's kernels only raise them, and the child's are
        running maxima too, so this gives what writing them after every parent step gave.
        """
        restrict_max(getattr(self.child, name), parent_values, self.row0, self.col0,
                     self.ratio)

    def parent_edges(self) -> dict[str, np.ndarray]:
        """Parent fluxes along the child's edges at child resolution (keys: sides), the
        flow depths they were shared out with (keys ``depth_<side>``), and for an fv2
        child the parent's surface outside them (keys ``eta_<side>``)."""
        p, r, c = self.parent, self.ratio, self.child
        j0, j1, i0, i1 = self.row0, self.row0 + self.rows, self.col0, self.col0 + self.cols
        rows, cols = slice(j0 - 1, j1 + 1), slice(i0 - 1, i1 + 1)
        # The parent's cells outside each edge, its face fluxes there, the sign of an
        # inflow, and the child's edge cells (still depth, total depth).
        # (only the edge cells: a 10 m child has 10^5 cells, its edges 10^3)
        cells = {"west": (slice(None), 0), "east": (slice(None), -1), "south": (0, slice(None)),
                 "north": (-1, slice(None))}
        still = {side: c.h[k].astype(np.float64) for side, k in cells.items()}
        own = {side: (c.eta[k] + c.h[k]).astype(np.float64) for side, k in cells.items()}
        faces = {"west": ((rows, i0 - 1), p.M[rows, i0], 1.0),
                 "east": ((rows, i1), p.M[rows, i1], -1.0),
                 "south": ((j0 - 1, cols), p.N[j0, cols], 1.0),
                 "north": ((j1, cols), p.N[j1, cols], -1.0)}
        edges = {}
        for side, (outside, flux, inward) in faces.items():
            out = np.empty((2, (flux.size - 2) * r), flux.dtype)
            share_edge_flux(flux, p.eta[outside], p.h[outside], still[side], own[side], r,
                            inward, c.dry_depth, c.max_speed, out[0], out[1])
            edges[side], edges[f"depth_{side}"] = out
        if c.scheme == "fv2":
            inside = {"west": c.eta[:, 0], "east": c.eta[:, -1], "south": c.eta[0],
                      "north": c.eta[-1]}
            for side, (outside, *_) in faces.items():
                eta = p.eta[outside]
                edges[f"eta_{side}"] = _refine_surface(eta, eta + p.h[outside] > p.dry_depth,
                                                       r, inside[side])
        return edges

    def drive(self, substep: int) -> None:
        """Set the child's edge fluxes (and fv2 edge surfaces) for its ``substep``-th step
        (1-based).

        Flux levels stand half a step after the surface of a leapfrog grid's step and
        half a step before it for an fv2 grid (its fluxes are the mean over the step);
        the weight places the child's flux time between the parent's two levels."""
        lag_parent = 1.5 if self.parent.scheme == "leapfrog" else 0.5
        lag_child = 1.5 if self.child.scheme == "leapfrog" else 0.5
        weight = (substep + lag_child - 1.0) / self.substeps - (lag_parent - 1.0)
        for side, out in self.child.edge_flux.items():
            blend_edges(out, self.old[side], self.new[side], weight)
            blend_edges(self.child.edge_depth[side], self.old[f"depth_{side}"],
                        self.new[f"depth_{side}"], weight)
        if self.child.scheme == "fv2":
            weight = (substep - 0.5) / self.substeps
            for side, out in self.child.edge_eta.items():
                blend_edges(out, self.old[f"eta_{side}"], self.new[f"eta_{side}"], weight)

    def feed_back(self) -> None:
        p, c = self.parent, self.child
        restrict_surface(c.eta, p.eta, self.row0, self.col0, self.ratio)
        restrict_fluxes(c.M, c.N, p.M, p.N, self.row0, self.col0, self.ratio)
        if p.scheme == "fv2":
            child_q = (c.qx, c.qy) if c.scheme == "fv2" else _cell_discharges(c)
            restrict_surface(child_q[0], p.qx, self.row0, self.col0, self.ratio)
            restrict_surface(child_q[1], p.qy, self.row0, self.col0, self.ratio)
        # The water and fluxes fed back may lie outside the parent's active spans (dry
        # land under the child that the child flooded).
        p.state_changed(slice(self.row0, self.row0 + self.rows),
                        slice(self.col0, self.col0 + self.cols))


def _cell_discharges(model: ShallowWaterModel) -> tuple[np.ndarray, np.ndarray]:
    """Cell-centred discharges (m2/s) of a leapfrog grid: the mean of its face fluxes."""
    return (np.ascontiguousarray(0.5 * (model.M[:, 1:] + model.M[:, :-1])),
            np.ascontiguousarray(0.5 * (model.N[1:] + model.N[:-1])))


def _refine_surface(eta: np.ndarray, wet: np.ndarray, ratio: int,
                    fallback: np.ndarray) -> np.ndarray:
    """Child-resolution surface just outside an edge from the parent's cells there (one
    extra at each end), linear between wet parent cells; ``fallback`` (the child's edge
    cells) where a dry parent cell is involved."""
    n = eta.size - 2
    centres = np.arange(-1, n + 1) + 0.5
    child = (np.arange(n * ratio) + 0.5) / ratio
    weight = np.interp(child, centres, wet.astype(np.float64))
    values = np.interp(child, centres, np.where(wet, eta, 0.0).astype(np.float64))
    good = weight > 1.0 - 1e-6
    return np.where(good, values / np.where(good, weight, 1.0), fallback).astype(eta.dtype)


class NestedModel:
    """A tree of grids advanced together; ``levels`` lists (model, parent name, ratio).

    The first entry is the outermost grid (parent ``None``); every other names a parent
    listed before it. Children must be aligned with their parent's cells.
    """

    def __init__(self, levels: list[tuple[ShallowWaterModel, str | None, int]],
                 prepare_bathymetry: bool = True) -> None:
        if not levels or levels[0][1] is not None:
            raise ValueError("the first level must be the outermost grid (parent None)")
        self.root = levels[0][0]
        by_name = {self.root.grid.name: self.root}
        self.couplings: list[Coupling] = []
        for model, parent_name, ratio in levels[1:]:
            if parent_name not in by_name:
                raise ValueError(f"grid {model.grid.name!r}: parent {parent_name!r} unknown")
            parent = by_name[parent_name]
            self.couplings.append(_align(parent, model, ratio))
            by_name[model.grid.name] = model
        self.by_name = by_name
        self._children: dict[str, list[Coupling]] = {}
        for c in self.couplings:
            self._children.setdefault(c.parent.grid.name, []).append(c)
        # Make the bathymetry consistent in two passes: blend every child's edge toward its
        # parent (coarse to fine), then set every parent's depth under a child to the
        # child's mean (fine to coarse, so each mean uses final values). In one pass a
        # grid's cells under its child could be reblended afterwards, which left phantom
        # water (6 mm over the Monai plateau) where parent and child no longer agreed.
        # (``prepare_bathymetry=False``: the grids come from a nest that already did this,
        # as when tsunami.fanout splits a nest into a region and its towns.)
        if prepare_bathymetry:
            for c in self.couplings:
                _blend_edge(c)
            for c in reversed(self.couplings):
                _average_into_parent(c)
        # A parent's cells under a child take the child's state after every parent step
        # (feed_back): their own speeds, from block means over partly dry blocks, are no
        # flow speeds (up to 144 m/s under Aonae_10m) and leave its time step alone.
        for c in self.couplings:
            if hasattr(c.parent, "time_step_cells"):  # (not a recorded stand-in parent)
                c.parent.time_step_cells[c.row0:c.row0 + c.rows, c.col0:c.col0 + c.cols] = 0
            # Likewise their flow maxima, whenever read. (A recorded stand-in parent,
            # tsunami.fanout's, keeps none, nor does one built with flow_maxima=False.)
            if getattr(c.parent, "flow_maxima", False):
                c.parent.flow_maxima_feeds.append(c.feed_flow_maximum)
        self._prepared = False
        # Called with each grid's model right after every step of that grid (before its
        # children catch up): tsunami.fanout records a town's boundary forcing here.
        self.after_step: list = []
        # Wall time (s) spent stepping each grid, coupling included (children excluded).
        self.wall_time = dict.fromkeys(self.by_name, 0.0)

    @property
    def models(self) -> list[ShallowWaterModel]:
        return list(self.by_name.values())

    @property
    def time(self) -> float:
        return self.root.time

    @property
    def dt(self) -> float:
        return self.root.dt

    def covered(self, model: ShallowWaterModel) -> np.ndarray:
        """Cells of ``model`` that a finer nested grid covers (its values there are coarse
        stand-ins: the finer grid's fields are the answer)."""
        mask = np.zeros(model.grid.shape, bool)
        for c in self.children_of(model):
            mask[c.row0:c.row0 + c.rows, c.col0:c.col0 + c.cols] = True
        return mask

    def check_health(self) -> None:
        """Check every grid for a blow-up, each outside the cells its children cover."""
        for m in self.models:
            m.check_health(ignore=self.covered(m))

    def children_of(self, model: ShallowWaterModel) -> list[Coupling]:
        return self._children.get(model.grid.name, [])

    def _set_time_steps(self, model: ShallowWaterModel) -> None:
        for c in self.children_of(model):
            self._set_substeps(c, model.dt)
            self._set_time_steps(c.child)

    @staticmethod
    def _set_substeps(c: Coupling, parent_dt: float) -> None:
        """Fewest sub-steps the child's CFL allows, from its actual speeds: an fv2
        child's every parent step (its last stage measures them), a leapfrog child's once
        it has taken ``SPEED_CHECK_STEPS`` steps since they were last measured, as a grid
        that chooses its own step does (a measurement costs a pass over the grid)."""
        if (c.stable is None or c.child.scheme == "fv2"
                or c.child.iteration - c.measured_at >= SPEED_CHECK_STEPS):
            c.stable = c.child.next_time_step(c.stable)
            c.measured_at = c.child.iteration
        c.substeps = max(1, math.ceil(parent_dt / c.stable - 1e-9))
        c.child.dt = parent_dt / c.substeps

    def synchronise(self) -> None:
        """Make parents agree with their children; call after setting an initial state."""
        for c in reversed(self.couplings):
            c.feed_back()
            c.parent._record_initial_maxima()

    def _prepare(self) -> None:
        """Fix the time steps from the initial state and load the children's edges."""
        self.root.dt = self.root.dt
        self._set_time_steps(self.root)
        for c in self.couplings:
            c.new = c.parent_edges()
        self._prepared = True

    def step(self) -> None:
        """Advance the outermost grid one step, its children catching up recursively."""
        if not self._prepared:
            self._prepare()
        self._advance(self.root)

    def _advance(self, model: ShallowWaterModel) -> None:
        start = time.perf_counter()
        children = self.children_of(model)
        for c in children:
            c.old = c.new
        model.step()
        for hook in self.after_step:
            hook(model)
        own = time.perf_counter() - start
        for c in children:
            start = time.perf_counter()
            c.new = c.parent_edges()
            self._set_substeps(c, model.dt)
            own += time.perf_counter() - start
            for k in range(1, c.substeps + 1):
                start = time.perf_counter()
                c.drive(k)
                own += time.perf_counter() - start
                self._advance(c.child)
            start = time.perf_counter()
            c.feed_back()
            own += time.perf_counter() - start
        self.wall_time[model.grid.name] += own


def _align(parent: ShallowWaterModel, child: ShallowWaterModel, ratio: int) -> Coupling:
    pg, cg = parent.grid, child.grid
    name = cg.name
    if (pg.crs is None) != (cg.crs is None) or (pg.crs is not None and pg.crs != cg.crs):
        raise ValueError(f"grid {name!r}: nested grids must share their parent's CRS")
    if ratio < 1 or ratio % 2 == 0:
        raise ValueError(f"grid {name!r}: the refinement ratio must be odd, got {ratio}")
    if not (math.isclose(pg.dx, cg.dx * ratio, rel_tol=1e-6)
            and math.isclose(pg.dy, cg.dy * ratio, rel_tol=1e-6)):
        raise ValueError(f"grid {name!r}: spacing {cg.dx:g} x {cg.dy:g} is not 1/{ratio} of "
                         f"its parent's {pg.dx:g} x {pg.dy:g}")
    col = (cg.x0 - pg.x0) / pg.dx
    row = (cg.y0 - pg.y0) / pg.dy
    if abs(col - round(col)) > 1e-6 or abs(row - round(row)) > 1e-6 or \
            cg.nx % ratio or cg.ny % ratio:
        raise ValueError(f"grid {name!r}: must cover whole cells of its parent {pg.name!r}")
    col0, row0 = round(col), round(row)
    if col0 < 2 or row0 < 2 or col0 + cg.nx // ratio > pg.nx - 2 or \
            row0 + cg.ny // ratio > pg.ny - 2:
        raise ValueError(f"grid {name!r}: needs two parent cells to spare on every side")
    child.boundaries = Boundaries.all(Nested())
    child.adaptive = False  # the nest sets its time step
    if child.dtype != parent.dtype:
        raise ValueError(f"grid {name!r}: all grids of a nest share one precision")
    return Coupling(parent, child, ratio, row0, col0)


def _blend_edge(c: Coupling) -> None:
    """Blend the child's depth toward the parent's over the child's outer band."""
    from scipy.ndimage import map_coordinates

    r = c.ratio
    # The child's block and a ring of one parent cell, indexed from the ring's corner,
    # so the interpolation weights do not depend on where the block lies in the parent
    # (tsunami.fanout blends a town's grid toward a cut of its parent: the same depths).
    parent_h = c.parent.h[c.row0 - 1:c.row0 + c.rows + 1,
                          c.col0 - 1:c.col0 + c.cols + 1].astype(np.float64)
    child_h = c.child.h.astype(np.float64)
    # Parent depth interpolated to child cell centres (bilinear, edge cells included).
    rows = 0.5 + (np.arange(c.child.grid.ny) + 0.5) / r
    cols = 0.5 + (np.arange(c.child.grid.nx) + 0.5) / r
    rr, cc = np.meshgrid(rows, cols, indexing="ij")
    parent_on_child = map_coordinates(parent_h, [rr, cc], order=1, mode="nearest")
    ny, nx = child_h.shape
    j = np.minimum(np.arange(ny), np.arange(ny)[::-1])[:, None]
    i = np.minimum(np.arange(nx), np.arange(nx)[::-1])[None, :]
    distance = np.minimum(j, i) / r  # in parent cells from the edge
    weight = np.clip(distance / EDGE_BLEND_PARENT_CELLS, 0.0, 1.0)
    c.child.reset_depth(weight * child_h + (1 - weight) * parent_on_child)


def _average_into_parent(c: Coupling) -> None:
    """The parent's depth under the child becomes the child's block mean."""
    r = c.ratio
    block = c.child.h.astype(np.float64).reshape(c.rows, r, c.cols, r).mean(axis=(1, 3))
    new_parent = c.parent.h.astype(np.float64)
    new_parent[c.row0:c.row0 + c.rows, c.col0:c.col0 + c.cols] = block
    c.parent.reset_depth(new_parent)
