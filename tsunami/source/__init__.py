"""Earthquake sources for the tsunami model: from a fault to the initial sea surface.

Data flow: a fault (:class:`Subfault` rectangles in a :class:`FaultModel`, read from a
subfault table, given inline, or built from an earthquake alert by a magnitude-area
scaling law) -> sea-floor displacement (Okada 1985, :func:`seafloor_displacement`) ->
sea-surface displacement (Tanioka & Satake 1996 horizontal term and Kajiura 1963 filter,
:func:`sea_surface`) -> the model's initial surface, or, for a kinematic rupture, a
:class:`KinematicRupture` callback raising it during the run. SI units: m, s, Pa, N m;
angles in degrees.
"""

from tsunami.source.kinematic import KinematicRupture, patches, rupture_times, with_timing
from tsunami.source.okada import FaultModel, Subfault, okada85, seafloor_displacement
from tsunami.source.scaling import (
    LAWS,
    ScalingLaw,
    default_law,
    fault_from_alert,
    magnitude_from_moment,
    moment_from_magnitude,
)
from tsunami.source.sea_surface import (
    fault_sea_surface,
    grid_lonlat,
    kajiura_filter,
    sea_surface,
    tanioka_satake,
)
from tsunami.source.table import read_subfault_csv

__all__ = [
    "LAWS",
    "FaultModel",
    "KinematicRupture",
    "ScalingLaw",
    "Subfault",
    "default_law",
    "fault_from_alert",
    "fault_sea_surface",
    "grid_lonlat",
    "kajiura_filter",
    "magnitude_from_moment",
    "moment_from_magnitude",
    "okada85",
    "patches",
    "read_subfault_csv",
    "rupture_times",
    "sea_surface",
    "seafloor_displacement",
    "tanioka_satake",
    "with_timing",
]
