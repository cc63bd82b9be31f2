"""Boundary conditions on the four sides of a grid."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsunami import kernels

SIDES = ("west", "east", "south", "north")


class BoundaryCondition:
    """Base class; ``mode`` is the kernel's code for the condition."""

    mode: int = kernels.WALL

    def elevation(self, time: float) -> float:
        """Incident surface elevation (m) at ``time`` (s); zero unless forced."""
        return 0.0


@dataclass(frozen=True)
class Wall(BoundaryCondition):
    """Reflective wall: no flux through the side."""

    mode: int = field(default=kernels.WALL, init=False)


@dataclass(frozen=True)
class Open(BoundaryCondition):
    """Radiating side: outgoing long waves leave with little reflection."""

    mode: int = field(default=kernels.OPEN, init=False)


@dataclass(frozen=True)
class IncidentWave(BoundaryCondition):
    """A wave forced through the side from a time series of surface elevation.

    ``time`` (s) and ``eta`` (m) sample the incident wave at the boundary; it is linearly
    interpolated and zero outside the series. Reflected waves leave through the side.
    """

    time: np.ndarray
    eta: np.ndarray
    mode: int = field(default=kernels.INCIDENT, init=False)

    def __post_init__(self) -> None:
        t = np.asarray(self.time, dtype=float)
        e = np.asarray(self.eta, dtype=float)
        if t.ndim != 1 or t.shape != e.shape or t.size < 2:
            raise ValueError("incident wave: time and eta must be 1-D of equal length >= 2")
        if not np.all(np.isfinite(t)) or not np.all(np.isfinite(e)):
            raise ValueError("incident wave: time and eta must be finite")
        if np.any(np.diff(t) <= 0):
            raise ValueError("incident wave: times must increase strictly")
        object.__setattr__(self, "time", t)
        object.__setattr__(self, "eta", e)

    def elevation(self, time: float) -> float:
        return float(np.interp(time, self.time, self.eta, left=0.0, right=0.0))


@dataclass(frozen=True)
class Nested(BoundaryCondition):
    """Fluxes prescribed by a parent grid (set by :class:`tsunami.nesting.NestedModel`)."""

    mode: int = field(default=kernels.PRESCRIBED, init=False)


@dataclass(frozen=True)
class Boundaries:
    """Conditions on the west, east, south and north sides (default: all open)."""

    west: BoundaryCondition = field(default_factory=Open)
    east: BoundaryCondition = field(default_factory=Open)
    south: BoundaryCondition = field(default_factory=Open)
    north: BoundaryCondition = field(default_factory=Open)

    @classmethod
    def all(cls, condition: BoundaryCondition) -> Boundaries:
        return cls(condition, condition, condition, condition)

    def sides(self) -> tuple[BoundaryCondition, ...]:
        return (self.west, self.east, self.south, self.north)

    def modes(self) -> np.ndarray:
        return np.array([c.mode for c in self.sides()], dtype=np.int64)
