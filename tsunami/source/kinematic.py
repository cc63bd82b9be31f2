"""Kinematic rupture: the sea floor rises while the model runs, subfault by subfault.

A large earthquake ruptures for tens of seconds to minutes (Tohoku 2011: about 150 s
over 500 km), comparable with the time the first waves take to reach a near-source
coast. With a kinematic rupture each subfault starts to slip at its ``rupture_time``
(given, or the distance from the hypocentre over a rupture velocity) and its uplift grows
linearly over its ``rise_time``. :class:`KinematicRupture` is a
:class:`~tsunami.simulation.Simulation` callback that adds, after every root step, the
sea-surface uplift gained since the previous call to the wet cells of every grid.

Each subfault's (or each group of subfaults sharing onset and rise time) sea-surface
uplift is computed once per grid at set-up (Okada, then Tanioka-Satake and Kajiura, which
are linear, so the parts sum exactly to the static source); memory is one array of the
grid's shape per group and grid. Times in seconds after the origin, lengths in metres.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from tsunami.grid import EARTH_RADIUS
from tsunami.source.okada import Subfault, seafloor_displacement
from tsunami.source.sea_surface import grid_lonlat, sea_surface

#: A single rectangle ruptured kinematically is cut into patches no larger than this (m):
#: a 2.5 km/s rupture front crosses one in 8 s, short against tsunami periods.
PATCH_SIZE = 20_000.0


def rupture_times(subfaults: Sequence[Subfault], hypocentre: tuple[float, float, float],
                  rupture_velocity: float) -> np.ndarray:
    """Onset (s) of each subfault: straight-line distance from the hypocentre
    (longitude deg, latitude deg, depth m) to its centroid over ``rupture_velocity`` (m/s).
    Distances are flat-earth around the hypocentre."""
    if not rupture_velocity > 0:
        raise ValueError(f"rupture velocity must be positive, got {rupture_velocity}")
    lon0, lat0, depth0 = hypocentre
    times = []
    for s in subfaults:
        lon, lat, depth = s.centroid
        east = EARTH_RADIUS * math.cos(math.radians(0.5 * (lat + lat0))) * math.radians(
            (lon - lon0 + 180.0) % 360.0 - 180.0)
        north = EARTH_RADIUS * math.radians(lat - lat0)
        times.append(math.sqrt(east**2 + north**2 + (depth - depth0) ** 2) / rupture_velocity)
    return np.array(times)


def with_timing(subfaults: Sequence[Subfault], hypocentre: tuple[float, float, float] | None
                = None, rupture_velocity: float | None = None, rise_time: float | None = None
                ) -> list[Subfault]:
    """Subfaults with onsets from ``rupture_velocity`` (m/s, needs ``hypocentre``) and/or
    a common ``rise_time`` (s); what is not given keeps the subfaults' own values."""
    out = list(subfaults)
    if rupture_velocity is not None:
        if hypocentre is None:
            raise ValueError("a rupture velocity needs a hypocentre")
        onsets = rupture_times(out, hypocentre, rupture_velocity)
        out = [dataclasses.replace(s, rupture_time=float(t))
               for s, t in zip(out, onsets, strict=True)]
    if rise_time is not None:
        out = [dataclasses.replace(s, rise_time=float(rise_time)) for s in out]
    return out


def patches(subfault: Subfault, size: float = PATCH_SIZE) -> list[Subfault]:
    """``subfault`` cut into equal patches no longer or wider than ``size`` (m)."""
    return subfault.split(max(1, math.ceil(subfault.length / size - 1e-9)),
                          max(1, math.ceil(subfault.width / size - 1e-9)))


def is_kinematic(subfaults: Sequence[Subfault]) -> bool:
    """True when any subfault starts after the origin or takes time to slip."""
    return any(s.rupture_time > 0 or s.rise_time > 0 for s in subfaults)


class KinematicRupture:
    """Simulation callback raising the sea surface as the rupture proceeds.

    Parameters
    ----------
    model: the ShallowWaterModel or NestedModel it will be called with (its grids must be
        georeferenced; ``model.models`` gives every grid's model), or a list of the grids'
        models it acts on (a town's grids under a recorded parent, :mod:`tsunami.fanout`).
    subfaults: the rupture, each with its ``rupture_time`` and ``rise_time`` (s).
    tanioka_satake, kajiura: corrections from sea floor to sea surface
        (:func:`tsunami.source.sea_surface.sea_surface`), using each grid's still depth.

    Calling it with the model adds, on each of its grids, the uplift gained between the previous
    call and ``model.time`` to ``eta`` where the cell is wet (``eta + h > dry_depth``),
    never letting the surface below the bed (``eta >= -h``). Call :meth:`start` before the
    first step so the part of the rupture done at time 0 is the initial state.
    """

    def __init__(self, model, subfaults: Sequence[Subfault], *, tanioka_satake: bool = True,
                 kajiura: bool = True) -> None:
        groups: dict[tuple[float, float], list[Subfault]] = {}
        for s in subfaults:
            groups.setdefault((s.rupture_time, s.rise_time), []).append(s)
        if not groups:
            raise ValueError("a kinematic rupture needs at least one subfault")
        keys = sorted(groups)
        self.models = list(model.models) if hasattr(model, "models") else list(model)
        self.onsets = np.array([k[0] for k in keys])
        self.rise_times = np.array([k[1] for k in keys])
        self.applied = np.zeros(len(keys))
        # Per grid name: one sea-surface uplift field (m) per group, in the model's dtype.
        self.fields: dict[str, np.ndarray] = {}
        for m in self.models:
            lon, lat = grid_lonlat(m.grid)
            depth = m.h.astype(np.float64)
            stack = np.empty((len(keys), *m.grid.shape), m.dtype)
            for g, key in enumerate(keys):
                ux, uy, uz = seafloor_displacement(groups[key], lon, lat)
                stack[g] = sea_surface(uz, ux, uy, depth, m.grid,
                                       tanioka_satake=tanioka_satake, kajiura=kajiura)
            self.fields[m.grid.name] = stack

    @property
    def end_time(self) -> float:
        """Time (s) when the last subfault has finished slipping."""
        return float(np.max(self.onsets + self.rise_times))

    def fractions(self, time: float) -> np.ndarray:
        """Share (0...1) of each group's slip done at ``time`` (s): a linear ramp over
        its rise time from its onset (a step for a zero rise time)."""
        elapsed = time - self.onsets
        with np.errstate(divide="ignore", invalid="ignore"):
            ramp = np.clip(elapsed / self.rise_times, 0.0, 1.0)
        step = (elapsed >= -1e-9 * max(1.0, abs(time))).astype(float)
        return np.where(self.rise_times > 0, ramp, step)

    def static_uplift(self, grid_name: str) -> np.ndarray:
        """The complete sea-surface uplift (m) on a grid, every subfault finished."""
        return self.fields[grid_name].astype(np.float64).sum(axis=0)

    def __call__(self, model) -> None:
        done = self.fractions(model.time)
        delta = np.maximum(done - self.applied, 0.0)  # (a clock set back adds nothing)
        if not np.any(delta > 0):
            return
        for m in self.models:
            stack = self.fields[m.grid.name]
            increment = np.tensordot(delta.astype(m.dtype), stack, axes=1)
            wet = (m.eta + m.h) > m.dry_depth
            m.eta[...] = np.where(wet, np.maximum(m.eta + increment, -m.h), m.eta)
            # fv2 keeps velocities q / D between steps: re-derived from the new depth.
            m.state_changed()
        self.applied = np.maximum(done, self.applied)

    def start(self, model) -> None:
        """Apply the rupture done by ``model.time`` (usually 0) as the initial state:
        surface raised on wet cells and the maxima and arrival times started from it."""
        self(model)
        for m in self.models:
            m.set(eta=m.eta.copy())
        if hasattr(model, "synchronise"):
            model.synchronise()

