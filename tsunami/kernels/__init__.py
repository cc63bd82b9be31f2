"""Numba compute kernels of the shallow-water solver, one plain function per physical step.

They are kept apart from the orchestration in :mod:`tsunami.model` so each can be read,
tested and benchmarked alone. All take NumPy arrays (float32 or float64 state) and scalars
of the same precision, and work in place.

Importing this package sets the threading defaults (:func:`tsunami.threads.configure`):
they must be in place before the first parallel kernel starts Numba's threads.
"""

from tsunami import threads
from tsunami.kernels.boundary import INCIDENT, OPEN, PRESCRIBED, WALL, apply_boundaries
from tsunami.kernels.continuity import update_surface
from tsunami.kernels.finite_volume import cell_velocities, fv2_stage
from tsunami.kernels.health import surface_departure_rows
from tsunami.kernels.momentum import update_fluxes
from tsunami.kernels.positivity import limit_outflow
from tsunami.kernels.spans import grow_spans
from tsunami.kernels.time_step import wave_rate_rows
from tsunami.kernels.velocity import update_flow_maxima, velocity_field

threads.configure()

__all__ = [
    "INCIDENT",
    "OPEN",
    "PRESCRIBED",
    "WALL",
    "apply_boundaries",
    "cell_velocities",
    "fv2_stage",
    "grow_spans",
    "limit_outflow",
    "surface_departure_rows",
    "update_flow_maxima",
    "update_fluxes",
    "update_surface",
    "velocity_field",
    "wave_rate_rows",
]
