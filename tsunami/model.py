"""The shallow-water model on one grid: state, parameters and the leapfrog step.

A :class:`ShallowWaterModel` owns the bathymetry in the kernels' precision, the state
(surface elevation ``eta`` at cell centres, volume fluxes ``M`` and ``N`` on faces) and
the running maxima. Two schemes advance it (a per-grid choice, ``scheme``):

* ``"leapfrog"``: the staggered leapfrog of the TUNAMI-N2 / COMCOT family, cheap and
  accurate in deep water; :meth:`ShallowWaterModel.step` calls continuity (with maxima),
  momentum, boundary fluxes and the positivity limiter;
* ``"fv2"``: a second-order well-balanced finite-volume scheme (hydrostatic
  reconstruction, HLL, MUSCL, Heun) with cell-centred discharges ``qx``, ``qy``, for the
  grids where the coast floods (:mod:`tsunami.kernels.finite_volume`); ``M``/``N`` hold
  the volume fluxes it moved through each face over the last step.

Both take their time step from the actual wave and flow speeds, re-evaluated as the flow
evolves (:meth:`ShallowWaterModel.next_time_step`).

 Several models are coupled into a nest by :class:`tsunami.nesting.NestedModel`;
time loops, output and progress belong to :class:`tsunami.simulation.Simulation`.

Units are SI throughout: m, s, m^2/s for fluxes, s/m^(1/3) for Manning's n.
"""

from __future__ import annotations

from collections.abc import Callable

import numba
import numpy as np

from tsunami import kernels
from tsunami.boundaries import Boundaries
from tsunami.errors import BlowUpError
from tsunami.grid import GRAVITY, Grid

SCHEMES = ("leapfrog", "fv2")
# fv2 slope limiter: generalised minmod (1 = minmod, 2 = monotonised central); 1.3 is
# sharper than minmod and stays free of wiggles at bores.
LIMITER_THETA = 1.3


# Each step skips the cells farther than this (rows and columns) from an active cell
# (water, or a face with flux: tsunami.kernels.spans). Water and flux advance at most one
# cell per leapfrog step and two per fv2 step (one per stage); the spans are grown before
# every step.
SPAN_MARGIN = {"leapfrog": 1, "fv2": 3}
FV2_SPACING = 25.0  # m: "auto" picks fv2 on grids with land and cells this fine or finer
# The leapfrog measures its wave and flow speeds every SPEED_CHECK_STEPS steps (a nested
# child: at the first parent step after as many of its own) and sets its step for speeds
# STEP_MARGIN above those measured (room for them to grow until the next measurement); it
# keeps that step while the measured speeds stay below that or fall by no more than as
# much again: a staggered leapfrog whose step changed every step would keep shifting its
# half-step flux levels.
STEP_MARGIN = 1.1
# fv2's stage kernel works down blocks of rows, handed to the threads one at a time as
# they come free (Numba's dynamic scheduling), not one contiguous share each: rows cost
# unequal amounts (their active spans). About this many blocks per thread, of at least
# FV2_MIN_BLOCK_ROWS rows (each block recomputes two rows beyond either end). Same bits
# for any blocks: every row is computed alike whichever block holds it.
FV2_BLOCKS_PER_THREAD = 4
FV2_MIN_BLOCK_ROWS = 16
BLOWUP_COURANT = 1.5  # a Courant number above this is a blow-up (check_health)
SPEED_CHECK_STEPS = 4


def default_scheme(grid: Grid, depth: np.ndarray) -> str:
    """The scheme ``"auto"`` stands for: ``"fv2"`` on a grid that holds land (initially
    dry cells) with cells of 25 m or finer, where the coast floods and the shoreline
    needs the second-order scheme; ``"leapfrog"`` elsewhere (deep and coarse grids, where
    it is cheaper and as accurate). The parent's scheme does not matter: an fv2 grid
    nested in a leapfrog grid (the Okushiri demo's Monai_10m, the full hour) couples both
    ways and conserves volume as under an fv2 parent (tests/test_finite_volume.py).
    An fv2 grid costs about 4x the leapfrog per cell-step (README, "Performance").
    """
    has_land = bool(np.any(np.asarray(depth) <= 0))
    fine = grid.min_spacing() <= FV2_SPACING
    return "fv2" if has_land and fine else "leapfrog"


class ShallowWaterModel:
    """Nonlinear shallow-water equations on one :class:`~tsunami.grid.Grid`.

    Parameters
    ----------
    grid: the grid.
    depth: still-water depth (m), positive down, negative on land; shape ``grid.shape``.
    manning: Manning's n (s/m^(1/3)), a number or an array of ``grid.shape``.
    boundaries: conditions on the four sides (default: all open).
    dtype: precision of the state, ``np.float32`` (default) or ``np.float64``.
    cfl: safety factor on the CFL time step (0 < cfl <= 1).
    dt: time step (s); by default the CFL step from the deepest water.
    dry_depth: water thinner than this (m) is dry.
    linear_depth: where the still depth exceeds this (m), advection is dropped (linear
        long-wave equations); ``inf`` keeps the full nonlinear equations everywhere and
        ``0`` gives the linear equations wherever the sea was (unit-source databases).
    max_speed: cap on the flow speed (m/s) guarding thin-film spikes at the shoreline.
    arrival_threshold: rise above the still level (m) that defines the arrival time.
    blowup_elevation: a surface this far (m) above the still level is a blow-up.
    scheme: ``"leapfrog"`` (default) or ``"fv2"`` (see the module docstring). A grid
        without a fixed ``dt`` re-evaluates its time step every step
        (:meth:`next_time_step`).
    limiter_theta: fv2's slope limiter (generalised minmod: 1 minmod, 2 monotonised
        central; 0 makes the scheme first order, for comparisons).
    track_activity: skip the cells far from any water (``True``, the default): each row's
        kernels visit only the columns ``col_lo[j] <= i < col_hi[j]`` around the cells
        that hold water or have a face with flux, grown before every step and never
        narrowed, so dry land the flow has not come near costs nothing
        (:mod:`tsunami.kernels.spans`). ``False`` visits every cell every step; a leapfrog
        grid then gives bit-for-bit the same results (the switch is there to check that
        and to compare speeds), an fv2 grid the same to round-off.
    flow_maxima: record the running maximum flow speed and momentum flux (``speed_max``,
        ``momentum_flux_max``; the default). ``False`` skips them, for runs that read
        only the surface (the linear unit-source runs of :mod:`tsunami.realtime`, where
        they cost about an eighth of each step) and only with the leapfrog (fv2 records
        them in the loop that records ``eta_max``, at no cost to speak of). The two
        attributes are then absent: reading them (and so
        :func:`~tsunami.fields.maxima_dataset`) raises AttributeError, rather than
        products being made from maps that were never recorded. ``eta_max``,
        ``arrival_time`` and every other result are bit for bit the same either way.
    """

    def __init__(self, grid: Grid, depth: np.ndarray, *, manning: float | np.ndarray = 0.0,
                 boundaries: Boundaries | None = None, dtype: type = np.float32,
                 cfl: float = 0.7, dt: float | None = None, dry_depth: float = 1e-3,
                 linear_depth: float = np.inf, max_speed: float = 20.0,
                 arrival_threshold: float = 0.2, speed_depth: float | None = None,
                 blowup_elevation: float = 200.0, gravity: float = GRAVITY,
                 scheme: str = "leapfrog", limiter_theta: float = LIMITER_THETA,
                 track_activity: bool = True, flow_maxima: bool = True) -> None:
        if scheme not in SCHEMES:
            raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
        if not flow_maxima and scheme != "leapfrog":
            raise ValueError(f"flow_maxima=False is for the leapfrog scheme only, got "
                             f"{scheme!r} (fv2 records them at no cost to speak of)")
        self.scheme = scheme
        self.grid = grid
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        depth = np.asarray(depth, dtype=np.float64)
        if depth.shape != grid.shape:
            raise ValueError(f"grid {grid.name!r}: depth has shape {depth.shape}, grid is "
                             f"{grid.shape}")
        if not np.all(np.isfinite(depth)):
            bad = np.argwhere(~np.isfinite(depth))[0]
            raise ValueError(f"grid {grid.name!r}: depth has no value at x = "
                             f"{grid.x[bad[1]]:.6f}, y = {grid.y[bad[0]]:.6f}")
        if not 0 < cfl <= 1:
            raise ValueError(f"cfl must be in (0, 1], got {cfl}")
        for name, value in (("dry_depth", dry_depth), ("max_speed", max_speed),
                            ("arrival_threshold", arrival_threshold)):
            if not 0 < value < np.inf:  # inf would make dt 0 (max_speed) or stop nothing
                raise ValueError(f"{name} must be positive and finite, got {value}")
        if not linear_depth >= 0:  # inf: nonlinear everywhere
            raise ValueError(f"linear_depth must be 0 or more, got {linear_depth}")
        if not 0 <= limiter_theta <= 2:  # generalised minmod is TVD for theta in [1, 2]
            raise ValueError(f"limiter_theta must be in [0, 2], got {limiter_theta}")
        self.boundaries = boundaries if boundaries is not None else Boundaries()
        self.gravity = gravity
        self.cfl = cfl
        self.dry_depth = dry_depth
        self.linear_depth = linear_depth
        self.max_speed = max_speed
        self.arrival_threshold = arrival_threshold
        self.speed_depth = 10 * dry_depth if speed_depth is None else speed_depth
        self.blowup_elevation = blowup_elevation

        t = self.dtype.type
        self.h = np.ascontiguousarray(depth, dtype=self.dtype)
        n = np.broadcast_to(np.asarray(manning, dtype=np.float64), grid.shape)
        if np.any(~np.isfinite(n)) or np.any(n < 0):
            raise ValueError(f"grid {grid.name!r}: Manning's n must be finite and >= 0")
        self.n2 = np.ascontiguousarray(n * n, dtype=self.dtype)
        self.metrics = grid.metrics(self.dtype)
        ny, nx = grid.shape
        self.eta = np.maximum(np.zeros(grid.shape), -depth).astype(self.dtype)
        self.M = np.zeros((ny, nx + 1), self.dtype)
        self.N = np.zeros((ny + 1, nx), self.dtype)
        self._M_next = np.zeros_like(self.M)
        self._N_next = np.zeros_like(self.N)
        self._limit_rows = np.zeros(ny + 1, np.uint8)
        # Per row, the CFL rate of the state (1/s): the time step's measurement.
        self._rate_rows = np.zeros(ny, self.dtype)
        self._still_rate = None  # that of a wave in the deepest water, for a still grid
        # 1 where a cell's speeds count toward the leapfrog's step; a nest sets 0 under a
        # child, whose feedback replaces this grid's state there every step.
        self.time_step_cells = np.ones(grid.shape, np.uint8)
        self._ratio = np.ones(grid.shape, self.dtype)
        # Active columns [col_lo, col_hi) of each row: the whole grid without activity
        # tracking; with it, none until the first step grows them (_grow_spans).
        self.track_activity = bool(track_activity)
        self.col_lo = np.full(ny, nx if self.track_activity else 0, np.int64)
        self.col_hi = np.full(ny, 0 if self.track_activity else nx, np.int64)
        self._active_lo = np.zeros(ny, np.int64)
        self._active_hi = np.zeros(ny, np.int64)
        # Where the state changed from outside the step since the spans were last grown
        # (rows, columns: first, last + 1): active cells may lie outside the spans there.
        self._changed = (0, ny, 0, nx)
        # Prescribed edge fluxes (used on sides with a Nested condition).
        self.edge_flux = {
            "west": np.zeros(ny, self.dtype), "east": np.zeros(ny, self.dtype),
            "south": np.zeros(nx, self.dtype), "north": np.zeros(nx, self.dtype)}
        # Flow depth (m) those fluxes were set with (0: the edge cell's own depth counts).
        self.edge_depth = {side: np.zeros_like(q) for side, q in self.edge_flux.items()}
        self.eta_max = np.full(grid.shape, -np.inf, self.dtype)
        self.flow_maxima = bool(flow_maxima)
        self._speed_max = np.zeros(grid.shape, self.dtype) if self.flow_maxima else None
        self._momentum_flux_max = np.zeros_like(self._speed_max) if self.flow_maxima else None
        # Called as feed(name, values) before the flow maxima are read: a nest's children
        # write their own into the cells they cover (NestedModel), when read rather than
        # after every step (two passes over every child per parent step, about 2 % of the
        # demo).
        self.flow_maxima_feeds: list[Callable[[str, np.ndarray], None]] = []
        self.arrival_time = np.full(grid.shape, np.nan, self.dtype)
        self.initially_wet = depth > dry_depth
        self.time = 0.0
        self.iteration = 0
        # None: the CFL step of the state at the first step (set() may still change it).
        self._dt = float(dt) if dt is not None else None
        # dt is re-evaluated every step unless it was fixed (by the user or a nest).
        self.adaptive = dt is None
        if scheme == "fv2":
            self._allocate_finite_volume()
        self._scalars = dict(g=t(gravity), dry=t(dry_depth), linear=t(min(linear_depth, 1e30)),
                             umax=t(max_speed), speed_depth=t(self.speed_depth),
                             threshold=t(arrival_threshold), theta=t(limiter_theta))
        self._record_initial_maxima()

    @property
    def dt(self) -> float:
        """Time step (s); until the first step, the one the current state calls for."""
        return self._dt if self._dt is not None else self.next_time_step(None)

    @dt.setter
    def dt(self, value: float) -> None:
        if not value > 0:
            raise ValueError(f"time step must be positive, got {value}")
        self._dt = float(value)

    # -- set-up ---------------------------------------------------------------------------
    def stable_time_step(self) -> float:
        """CFL time step (s) of the current state, from the actual wave and flow speeds
        (c = sqrt(g D) over wet cells; for a still or dry grid, that of a wave in its
        deepest water).

        fv2: cfl / max((|u| + c) / dx + (|v| + c) / dy).

        leapfrog: cfl / max((|u, v| + c) sqrt(1/dx^2 + 1/dy^2)) over cells deeper than
        ``speed_depth`` (:mod:`tsunami.kernels.time_step`: the leapfrog's stability limit
        counts the wave in both directions at once; films are left out, their flux is
        capped at ``max_speed`` times their depth).
        """
        if self.scheme == "fv2":
            return self.cfl / self._wave_rate()
        if self._changed is not None:  # (before the first step: the spans must hold the water)
            self._grow_spans()
        m, s = self.metrics, self._scalars
        kernels.wave_rate_rows(self.eta, self.h, self.M, self.N, s["g"], s["dry"],
                               *self.edge_depth.values(), s["speed_depth"],
                               self.time_step_cells, m.inv_dx_c, m.inv_dy, self.col_lo,
                               self.col_hi, self._rate_rows)
        if self._still_rate is None:
            widths, dy = self.grid.cell_widths()
            self._still_rate = np.sqrt(self.gravity * max(float(self.h.max()), self.dry_depth)
                                       ) * np.sqrt(1.0 / widths.min() ** 2 + 1.0 / dy**2)
        return float(self.cfl / max(float(self._rate_rows.max()), self._still_rate))

    def next_time_step(self, current: float | None) -> float:
        """The time step (s) to take next, given the current one (``None`` before the
        first step). Grids that choose their own step call this every step (the leapfrog
        every ``SPEED_CHECK_STEPS``), and a nest for each child (its sub-steps follow).

        fv2: the CFL step of the current state (its cost is part of the step's last stage).

        leapfrog: the CFL step for speeds ``STEP_MARGIN`` above those measured now; the
        current step is kept while it lies between that and ``STEP_MARGIN`` below it
        again, so the step changes only when the measured speeds change by more than about
        10 % (the Courant number stays between 0.83 and 1 times ``cfl``).
        """
        stable = self.stable_time_step()
        if self.scheme == "fv2":
            return stable
        if current is None or current > stable or current * STEP_MARGIN**2 < stable:
            return stable / STEP_MARGIN
        return current

    def set(self, eta: np.ndarray | float | None = None, u: np.ndarray | None = None,
            v: np.ndarray | None = None) -> None:
        """Set the initial surface elevation (m) and optionally velocities (m/s).

        ``eta`` is applied where there is water after the displacement; on land the
        surface stays at the ground. ``u``/``v`` are cell-centre velocities, converted to
        face fluxes with the face depth.
        """
        h = self.h.astype(np.float64)
        if eta is not None:
            surface = np.broadcast_to(np.asarray(eta, dtype=np.float64), self.grid.shape)
            if not np.all(np.isfinite(surface)):
                raise ValueError(f"grid {self.grid.name!r}: initial surface has NaN values")
            self.eta[...] = np.maximum(surface, -h)
        depth = self.eta.astype(np.float64) + h
        if self.scheme == "fv2":
            if u is not None:
                self.qx[...] = np.broadcast_to(np.asarray(u, dtype=np.float64), depth.shape) * depth
            if v is not None:
                self.qy[...] = np.broadcast_to(np.asarray(v, dtype=np.float64), depth.shape) * depth
        if u is not None:
            uc = np.broadcast_to(np.asarray(u, dtype=np.float64), self.grid.shape)
            face_u = np.zeros(self.M.shape)
            face_u[:, 1:-1] = 0.5 * (uc[:, 1:] + uc[:, :-1])
            face_d = np.zeros(self.M.shape)
            face_d[:, 1:-1] = 0.5 * (depth[:, 1:] + depth[:, :-1])
            self.M[...] = face_u * face_d
        if v is not None:
            vc = np.broadcast_to(np.asarray(v, dtype=np.float64), self.grid.shape)
            face_v = np.zeros(self.N.shape)
            face_v[1:-1] = 0.5 * (vc[1:] + vc[:-1])
            face_d = np.zeros(self.N.shape)
            face_d[1:-1] = 0.5 * (depth[1:] + depth[:-1])
            self.N[...] = face_v * face_d
        self.state_changed()
        self._record_initial_maxima()

    def reset_depth(self, depth: np.ndarray) -> None:
        """Replace the still-water depth (m) before the run starts (used by nesting).

        Wet cells keep their surface (clipped to the new ground); dry cells stay dry on
        the new ground, or fill to the still level where the new ground lies below it.
        """
        if self.iteration:
            raise RuntimeError(f"grid {self.grid.name!r}: depth can only change before stepping")
        depth = np.asarray(depth, dtype=np.float64)
        if depth.shape != self.grid.shape or not np.all(np.isfinite(depth)):
            raise ValueError(f"grid {self.grid.name!r}: new depth must be finite, shape "
                             f"{self.grid.shape}")
        wet = (self.eta + self.h) > self.dry_depth
        surface = np.where(wet, self.eta.astype(np.float64), 0.0)
        self.h[...] = depth
        self.eta[...] = np.maximum(surface, -depth)
        self.initially_wet = depth > self.dry_depth
        self._still_rate = None
        self.state_changed()
        self._record_initial_maxima()

    def _record_initial_maxima(self) -> None:
        depth = self.eta + self.h
        wet = depth > self.dry_depth
        self.eta_max[...] = np.where(wet, self.eta, -np.inf)
        still_level = np.maximum(-self.h, 0)
        arrived = wet & (self.eta > still_level + self.arrival_threshold)
        self.arrival_time[...] = np.where(arrived, self.time, np.nan)
        if self.flow_maxima:
            self._speed_max[...] = 0
            self._momentum_flux_max[...] = 0

    @property
    def speed_max(self) -> np.ndarray:
        """Running maximum flow speed (m/s) where the water is deeper than
        ``speed_depth``; absent (AttributeError) on a model built with
        ``flow_maxima=False``."""
        return self._flow_maximum(self._speed_max, "speed_max")

    @property
    def momentum_flux_max(self) -> np.ndarray:
        """Running maximum momentum flux per unit width D u^2 (m^3/s^2); absent
        (AttributeError) on a model built with ``flow_maxima=False``."""
        return self._flow_maximum(self._momentum_flux_max, "momentum_flux_max")

    def _flow_maximum(self, values: np.ndarray | None, name: str) -> np.ndarray:
        if values is None:
            raise AttributeError(f"grid {self.grid.name!r} records no {name}: its model was "
                                 f"built with flow_maxima=False")
        for feed in self.flow_maxima_feeds:
            feed(name, values)
        return values

    # -- finite-volume state -----------------------------------------------------------------
    def _allocate_finite_volume(self) -> None:
        ny, nx = self.grid.shape
        cells = lambda: np.zeros((ny, nx), self.dtype)  # noqa: E731
        self.qx, self.qy, self._u, self._v = cells(), cells(), cells(), cells()
        # Stage state of Heun's method.
        self._stage = tuple(cells() for _ in range(5))
        self._rate_floor = None
        # Surface (m) outside the edges of a nested grid, set by its parent.
        self.edge_eta = {
            "west": np.zeros(ny, self.dtype), "east": np.zeros(ny, self.dtype),
            "south": np.zeros(nx, self.dtype), "north": np.zeros(nx, self.dtype)}
        self._fresh = False

    def state_changed(self, rows: slice = slice(None), cols: slice = slice(None)) -> None:
        """Call after changing ``eta``, ``M``/``N``, ``qx`` or ``qy`` from outside the step
        (set-up, nest feedback) in the cells ``[rows, cols]`` (default: anywhere): the next
        step then looks for water there too to grow the active spans from, and fv2
        re-derives velocities and its time step from the new state. (Raising the surface
        of wet cells only, as a kinematic source does, adds no active cells, but fv2's
        velocities must follow the new depth: :class:`~tsunami.source.KinematicRupture`
        calls this.)"""
        ny, nx = self.grid.shape
        box = (*rows.indices(ny)[:2], *cols.indices(nx)[:2])
        if self._changed is not None:  # the box holding both
            box = (min(box[0], self._changed[0]), max(box[1], self._changed[1]),
                   min(box[2], self._changed[2]), max(box[3], self._changed[3]))
        self._changed = box
        if self.scheme == "fv2":
            self._fresh = False
            self._rate_floor = None

    def _refresh(self) -> None:
        if not self._fresh:
            kernels.cell_velocities(self.eta, self.h, self.qx, self.qy, self._scalars["dry"],
                                    self._scalars["umax"], self._u, self._v)
            widths, dy = self.grid.cell_widths()
            depth = np.maximum(self.depth.astype(np.float64), 0.0)
            c = np.sqrt(self.gravity * depth)
            wet = depth > self.dry_depth
            rate = np.where(wet, (np.abs(self._u) + c) / widths[:, None]
                            + (np.abs(self._v) + c) / dy, 0.0)
            self._rate_rows[...] = rate.max(axis=1)
            self._fresh = True

    def _wave_rate(self) -> float:
        """max((|u| + c)/dx + (|v| + c)/dy) (1/s) of the current state; for still or dry
        grids, that of a wave in the deepest water."""
        self._refresh()
        if self._rate_floor is None:
            widths, dy = self.grid.cell_widths()
            self._rate_floor = np.sqrt(self.gravity * max(float(self.h.max()),
                                                          self.dry_depth)) * (
                1.0 / widths.min() + 1.0 / dy)
        return max(float(self._rate_rows.max()), self._rate_floor)

    # -- time stepping --------------------------------------------------------------------
    def _grow_spans(self) -> None:
        """Grow the active spans (``col_lo``/``col_hi``) to hold every cell within
        ``SPAN_MARGIN`` of water, of a face with flux or of a prescribed edge inflow.
        The leapfrog counts any water (a film, or a cell a nest's feedback left a rounding
        below its ground, still changes), fv2 water deeper than ``dry_depth``."""
        if not self.track_activity:
            return
        wet_depth = self._scalars["dry"] if self.scheme == "fv2" else self.dtype.type(0)
        kernels.grow_spans(self.eta, self.h, self.M, self.N, wet_depth,
                           *self.edge_flux.values(), SPAN_MARGIN[self.scheme],
                           self._changed or (0, 0, 0, 0), self._active_lo, self._active_hi,
                           self.col_lo, self.col_hi)
        self._changed = None

    @property
    def active_fraction(self) -> float:
        """Share of the grid's cells inside the active spans (1 without tracking)."""
        return float(np.maximum(self.col_hi - self.col_lo, 0).sum()) / self.grid.size

    def step(self) -> None:
        """Advance one time step of ``self.dt`` seconds."""
        if self.scheme == "fv2":
            self._grow_spans()
            with numba.parallel_chunksize(1):
                self._step_fv2()
            return
        self._grow_spans()
        if self._dt is None or (self.adaptive and self.iteration % SPEED_CHECK_STEPS == 0):
            self._dt = self.next_time_step(self._dt)
        m, s, t = self.metrics, self._scalars, self.dtype.type
        dt = t(self._dt)
        new_time = self.time + self.dt
        # Speeds first: the fluxes were computed from (and capped with) the face depths of
        # the current surface, so flux / face depth is the momentum equation's velocity.
        if self.flow_maxima:
            kernels.update_flow_maxima(
                self.eta, self.h, self.M, self.N, s["dry"], *self.edge_depth.values(),
                s["speed_depth"], self.col_lo, self.col_hi, self._speed_max,
                self._momentum_flux_max)
        kernels.update_surface(
            self.eta, self.h, self.M, self.N, m.inv_dx_c, m.inv_dy, m.cos_north, m.cos_south,
            dt, self.col_lo, self.col_hi, new_time, s["dry"], s["threshold"], self.eta_max,
            self.arrival_time)
        kernels.update_fluxes(
            self.eta, self.h, self.n2, self.M, self.N, self._M_next, self._N_next,
            m.inv_dx_c, m.inv_dx_v, m.inv_dy, m.coriolis_c, m.coriolis_v, m.cos_north,
            m.cos_south, dt, s["g"], s["dry"], s["linear"], s["umax"], self.col_lo,
            self.col_hi, self._limit_rows)
        # Fluxes now stand half a step ahead of the new surface.
        flux_time = new_time + 0.5 * self.dt
        eta_in = np.array([c.elevation(flux_time) for c in self.boundaries.sides()],
                          dtype=self.dtype)
        e = self.edge_flux
        kernels.apply_boundaries(
            self.eta, self.h, self._M_next, self._N_next, self.boundaries.modes(), eta_in,
            e["west"], e["east"], e["south"], e["north"], s["g"], s["dry"], dt, m.inv_dx_c,
            m.inv_dy, m.cos_north, m.cos_south, self._limit_rows)
        if self._limit_rows.any():
            kernels.limit_outflow(
                self.eta, self.h, self._M_next, self._N_next, m.inv_dx_c, m.inv_dy,
                m.cos_north, m.cos_south, dt, self.col_lo, self.col_hi, self._limit_rows,
                self._ratio)
        self.M, self._M_next = self._M_next, self.M
        self.N, self._N_next = self._N_next, self.N
        self.time = new_time
        self.iteration += 1

    def _step_fv2(self) -> None:
        self._refresh()
        if self.adaptive or self._dt is None:
            self._dt = self.stable_time_step()
        m, s, t = self.metrics, self._scalars, self.dtype.type
        dt = t(self._dt)
        new_time = self.time + self._dt
        e, ee = self.edge_flux, self.edge_eta
        modes = self.boundaries.modes()
        state = (self.eta, self.qx, self.qy, self._u, self._v)
        stage = self._stage
        blocks = max(1, FV2_BLOCKS_PER_THREAD * numba.get_num_threads())
        block_rows = max(FV2_MIN_BLOCK_ROWS, -(-self.grid.shape[0] // blocks))
        # The second stage writes into the start-of-step state, which it averages with.
        for final, start, out, time in ((False, state, stage, self.time),
                                        (True, stage, state, new_time)):
            eta_in = np.array([c.elevation(time) for c in self.boundaries.sides()],
                              dtype=self.dtype)
            kernels.fv2_stage(
                start[0], self.h, *start[1:], *out, self.M, self.N, self.n2, modes, eta_in,
                e["west"], e["east"], e["south"], e["north"], ee["west"], ee["east"],
                ee["south"], ee["north"], m.inv_dx_c, m.inv_dy, m.cos_north, m.cos_south,
                m.coriolis_c, dt, s["g"], s["dry"], s["theta"], s["umax"], self.col_lo,
                self.col_hi, final, t(new_time), s["speed_depth"], s["threshold"],
                self.eta_max, self.arrival_time, self._speed_max, self._momentum_flux_max,
                self._rate_rows, block_rows)
        self.time = new_time
        self.iteration += 1

    def check_health(self, ignore: np.ndarray | None = None) -> None:
        """Raise :class:`BlowUpError` if the solution is non-finite or has run away.

        ``ignore`` masks cells whose values are stand-ins (covered by a finer nested grid,
        which the nest checks itself).

        Runaway means a surface more than ``blowup_elevation`` from rest, or a flow whose
        Courant number (|u| + sqrt(g D)) dt sqrt(1/dx^2 + 1/dy^2) exceeds 1.5: the explicit
        scheme is unstable there, even if the speed cap and the positivity limiter keep
        the numbers bounded. Films thinner than 1 % of the deepest water are left out of
        the Courant test: their speed is bounded by ``max_speed`` and cannot destabilise
        the scheme, while an instability soon piles water far deeper than that.
        """
        keep = np.ones(self.grid.shape, bool) if ignore is None else ~ignore
        if self._looks_healthy(keep):
            return
        # Something may be wrong: find the first bad cell and say what.
        still = np.maximum(-self.h, 0)
        excess = np.abs(self.eta - still)
        bad = ~np.isfinite(excess)
        detail = "the surface elevation is not finite"
        if not bad.any():
            bad = (excess > self.blowup_elevation) & keep
            detail = f"the surface departs more than {self.blowup_elevation:g} m from rest"
        if not bad.any():
            u, v = self.velocities()
            widths, dy = self.grid.cell_widths()
            depth = np.maximum(self.depth.astype(np.float64), 0.0)
            courant = (np.hypot(u, v) + np.sqrt(self.gravity * depth)) * self.dt * np.sqrt(
                1.0 / widths[:, None] ** 2 + 1.0 / dy**2)
            bad = (courant > BLOWUP_COURANT) & (depth > self._health_film()) & keep
            detail = (f"the flow breaks the CFL limit (Courant number {courant.max():.2f} "
                      f"with dt = {self.dt:.4g} s)")
        if bad.any():
            j, i = np.argwhere(bad)[0]
            raise BlowUpError(self.grid.name, self.time,
                              (float(self.grid.x[i]), float(self.grid.y[j])), detail)

    def _looks_healthy(self, keep: np.ndarray) -> bool:
        """The tests of :meth:`check_health` in one kernel pass each (rows of maxima), so
        that a healthy grid costs little; False sends the check through the whole-grid
        NumPy expressions, which find the cell to report. fv2 grids (small, inundation
        only) take that path always."""
        if self.scheme != "leapfrog":
            return False
        counted = keep.view(np.uint8)
        rows = np.empty(self.grid.ny, self.dtype)
        kernels.surface_departure_rows(self.eta, self.h, counted, rows)
        if not (np.isfinite(rows).all() and rows.max() <= self.blowup_elevation):
            return False
        film = self._health_film()
        m, s = self.metrics, self._scalars
        kernels.wave_rate_rows(self.eta, self.h, self.M, self.N, s["g"], s["dry"],
                               *self.edge_depth.values(), self.dtype.type(film), counted,
                               m.inv_dx_c, m.inv_dy, self.col_lo, self.col_hi, rows)
        # (float32 rates: the NumPy test reconsiders anything within 1 % of the limit.)
        return float(rows.max()) * self.dt <= BLOWUP_COURANT * 0.99

    def _health_film(self) -> float:
        """Films thinner than this (m) are left out of the health check's Courant test."""
        return max(self.speed_depth, 0.01 * float(self.h.max()))

    # -- diagnostics ----------------------------------------------------------------------
    @property
    def models(self) -> list[ShallowWaterModel]:
        """The grids' models (one here; a nest has several)."""
        return [self]

    def covered(self, model: ShallowWaterModel) -> np.ndarray:
        """Cells covered by a finer grid: none on a single grid."""
        return np.zeros(model.grid.shape, bool)

    @property
    def depth(self) -> np.ndarray:
        """Total water depth D = eta + h (m) at cell centres."""
        return self.eta + self.h

    def volume(self) -> float:
        """Water volume (m^3) above the still-water datum's bed, over the whole grid."""
        return float(np.sum(self.depth.astype(np.float64) * self.grid.cell_area()))

    def velocities(self) -> tuple[np.ndarray, np.ndarray]:
        """Cell-centre velocities u, v (m/s); zero in dry cells.

        fv2: discharge over depth. leapfrog: the mean of the face velocities (flux over
        face flow depth)."""
        if self.scheme == "fv2":
            self._refresh()
            return self._u.astype(np.float64), self._v.astype(np.float64)
        u = np.empty(self.grid.shape, self.dtype)
        v = np.empty(self.grid.shape, self.dtype)
        kernels.velocity_field(self.eta, self.h, self.M, self.N, self._scalars["dry"],
                               *self.edge_depth.values(), u, v)
        return u.astype(np.float64), v.astype(np.float64)
